#include "scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "limits.h"
#include "util.h"

/* ---- the visited set: dev/ino pairs, open addressing ----
 * A scan of MANIFEST_MAX_FILES files must stay linear: a sorted array would make
 * every insert a memmove. */

typedef struct InodeKey {
        dev_t dev;
        ino_t ino;
        bool used;
} InodeKey;

struct ScanInodeSet {
        InodeKey *slots;
        size_t n, cap;   /* cap is a power of two, kept at most half full */
};

static size_t inode_hash(dev_t dev, ino_t ino) {
        uint64_t h = (uint64_t) ino * UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t) dev * UINT64_C(0xC2B2AE3D27D4EB4F);
        return (size_t) (h ^ (h >> 29));
}

static InodeKey *inode_slot(InodeKey *slots, size_t cap, dev_t dev, ino_t ino) {
        size_t i = inode_hash(dev, ino) & (cap - 1);
        while (slots[i].used && !(slots[i].dev == dev && slots[i].ino == ino))
                i = (i + 1) & (cap - 1);
        return &slots[i];
}

/* 1 when newly added, 0 when already present, -ENOMEM. */
static int inode_set_add(ScanInodeSet **setp, dev_t dev, ino_t ino) {
        ScanInodeSet *set = *setp;
        if (!set) {
                set = calloc(1, sizeof(*set));
                if (!set)
                        return -ENOMEM;
                *setp = set;
        }
        if ((set->n + 1) * 2 > set->cap) {
                size_t cap = set->cap ? set->cap * 2 : 64;
                InodeKey *slots = calloc(cap, sizeof(InodeKey));
                if (!slots)
                        return -ENOMEM;
                for (size_t i = 0; i < set->cap; i++)
                        if (set->slots[i].used)
                                *inode_slot(slots, cap, set->slots[i].dev, set->slots[i].ino) = set->slots[i];
                free(set->slots);
                set->slots = slots;
                set->cap = cap;
        }
        InodeKey *k = inode_slot(set->slots, set->cap, dev, ino);
        if (k->used)
                return 0;
        *k = (InodeKey) { .dev = dev, .ino = ino, .used = true };
        set->n++;
        return 1;
}

static ScanInodeSet *inode_set_free(ScanInodeSet *set) {
        if (set) {
                free(set->slots);
                free(set);
        }
        return NULL;
}

/* ---- names and paths ---- */

static bool has_suffix(const char *s, const char *suffix) {
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && streq(s + n - m, suffix);
}

bool scan_name_ignored(const char *name) {
        /* hidden covers .git, .#* (emacs locks) and .*.swp (vim swap files) */
        return name[0] == '.' || has_suffix(name, "~") || has_suffix(name, ".swp") ||
               has_suffix(name, ".tmp");
}

bool scan_name_is_manifest(const char *name) {
        return !scan_name_ignored(name) &&
               ((has_suffix(name, ".yaml") && strlen(name) > 5) ||
                (has_suffix(name, ".yml") && strlen(name) > 4));
}

char *scan_display_path(const char *display_root, const char *relpath) {
        if (!relpath || !*relpath)
                return strdup(display_root);
        size_t n = strlen(display_root);
        while (n > 1 && display_root[n - 1] == '/')
                n--;
        if (n == 0)
                return strdup(relpath);
        if (n == 1 && display_root[0] == '/')
                return xasprintf("/%s", relpath);
        return xasprintf("%.*s/%s", (int) n, display_root, relpath);
}

static char *join_rel(const char *rel, const char *name) {
        return *rel ? xasprintf("%s/%s", rel, name) : strdup(name);
}

/* Where an open fd really is, through /proc (no path building, no PATH_MAX). Falls
 * back to realpath() of the path we know when /proc is not mounted. */
static int fd_real_path(int fd, const char *fallback, char **ret) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        for (size_t size = 256;; size *= 2) {
                _cleanup_free_ char *buf = malloc(size);
                if (!buf)
                        return -ENOMEM;
                ssize_t k = readlink(proc, buf, size);
                if (k < 0) {
                        if (errno != ENOENT)
                                return -errno;
                        char *r = realpath(fallback, NULL);
                        if (!r)
                                return errno == ENOMEM ? -ENOMEM : -errno;
                        *ret = r;
                        return 0;
                }
                if ((size_t) k < size) {
                        buf[k] = '\0';
                        *ret = TAKE_PTR(buf);
                        return 0;
                }
                if (size > (1u << 20))
                        return -ENAMETOOLONG;
        }
}

static bool path_inside(const char *path, const char *root_real) {
        if (streq(root_real, "/"))
                return true;
        size_t n = strlen(root_real);
        return strncmp(path, root_real, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* A path inside the root (path_inside() said so), relative to it: "" for the root. */
static char *relative_to_root(const char *real, const char *root_real) {
        const char *p = real + (streq(root_real, "/") ? 0 : strlen(root_real));
        while (*p == '/')
                p++;
        return strdup(p);
}

/* Follow the symlink name in dfd. Returns 1 with an O_PATH fd, its stat and where it
 * resolved (relative to the root, no symlink in it) when it resolves inside the root;
 * 0 when it leads outside; negative errno when it cannot be resolved (dangling:
 * -ENOENT). */
static int follow_symlink(int dfd, const char *name, const char *root_real, const char *rel,
                          int *ret_fd, struct stat *ret_st, char **ret_resolved) {
        _cleanup_close_ int fd = openat(dfd, name, O_PATH | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        _cleanup_free_ char *fallback = xasprintf("%s/%s", root_real, rel);
        if (!fallback)
                return -ENOMEM;
        _cleanup_free_ char *real = NULL;
        int r = fd_real_path(fd, fallback, &real);
        if (r < 0)
                return r;
        if (!path_inside(real, root_real))
                return 0;
        char *resolved = relative_to_root(real, root_real);
        if (!resolved)
                return -ENOMEM;
        *ret_fd = TAKE_FD(fd);
        *ret_st = st;
        *ret_resolved = resolved;
        return 1;
}

/* The diagnostics, in one place so the walk and scan_file() say the same thing. */
#define MSG_OUTSIDE "symlink leads outside the manifests directory"
#define MSG_NOT_REGULAR "%s, not a regular file; skipped"

static int diag_path(Diags *diags, DiagSeverity sev, const char *display_root, const char *rel,
                     const char *fmt, ...) _printf_(5, 6);
static int diag_path(Diags *diags, DiagSeverity sev, const char *display_root, const char *rel,
                     const char *fmt, ...) {
        _cleanup_free_ char *p = scan_display_path(display_root, rel);
        if (!p)
                return -ENOMEM;
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = xvasprintf(fmt, ap);
        va_end(ap);
        if (!msg)
                return -ENOMEM;
        return diags_add(diags, sev, p, 0, 0, "%s", msg);
}

static const char *file_type_name(mode_t m) {
        if (S_ISFIFO(m))
                return "a fifo";
        if (S_ISSOCK(m))
                return "a socket";
        if (S_ISCHR(m))
                return "a character device";
        if (S_ISBLK(m))
                return "a block device";
        return "a special file";
}

/* resolved: where it was checked; kept only when it differs from the path. */
static int scan_file_set_paths(ScanFile *f, const char *path, const char *resolved) {
        if (!(f->path = strdup(path)))
                return -ENOMEM;
        if (!streq(resolved, path) && !(f->resolved = strdup(resolved))) {
                f->path = mfree(f->path);
                return -ENOMEM;
        }
        return 0;
}

static void scan_file_fill(ScanFile *f, size_t root, const struct stat *st) {
        f->root = root;
        f->dev = st->st_dev;
        f->ino = st->st_ino;
        f->size = st->st_size;
        f->mtime = st->st_mtim;
        f->ctime = st->st_ctim;
}

/* ---- the walk ---- */

typedef struct Deferred {
        char *rel;
        unsigned depth;   /* of the directory holding the symlink */
} Deferred;

typedef struct Walk {
        ScanResult *res;
        size_t root;
        const char *root_real;
        const char *display_root;
        Diags *diags;
        bool stop;        /* file limit reached: stop reading */
        Deferred *deferred;
        size_t n_deferred, cap_deferred;
} Walk;

static int add_file(Walk *w, const char *rel, const char *resolved, const struct stat *st) {
        int r = inode_set_add(&w->res->seen, st->st_dev, st->st_ino);
        if (r <= 0)
                return r;  /* already read under another name (symlink, hard link) */
        ScanResult *res = w->res;
        if (res->n_files >= MANIFEST_MAX_FILES) {
                res->truncated = true;
                w->stop = true;
                return diags_add(w->diags, DIAG_ERROR, w->display_root, 0, 0,
                                 "more than %d manifest files; only the first %d are read",
                                 MANIFEST_MAX_FILES, MANIFEST_MAX_FILES);
        }
        if (res->n_files == res->cap_files) {
                size_t cap = res->cap_files ? res->cap_files * 2 : 32;
                ScanFile *files = realloc(res->files, cap * sizeof(ScanFile));
                if (!files)
                        return -ENOMEM;
                res->files = files;
                res->cap_files = cap;
        }
        ScanFile f = {};
        scan_file_fill(&f, w->root, st);
        if (scan_file_set_paths(&f, rel, resolved) < 0)
                return -ENOMEM;
        res->files[res->n_files++] = f;
        return 0;
}

static int cmp_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void free_names(char **names, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

/* Read a directory's names, sorted, ignored ones left out: the walk visits entries in
 * byte order, so which file wins a limit or a duplicate inode never depends on the
 * file system's order. */
static int read_names(DIR *d, char ***ret, size_t *ret_n) {
        char **names = NULL;
        size_t n = 0, cap = 0;
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno != 0) {
                                int r = -errno;
                                free_names(names, n);
                                return r;
                        }
                        break;
                }
                if (scan_name_ignored(de->d_name))
                        continue;  /* includes "." and ".." */
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        char **nn = realloc(names, cap * sizeof(char *));
                        if (!nn) {
                                free_names(names, n);
                                return -ENOMEM;
                        }
                        names = nn;
                }
                if (!(names[n] = strdup(de->d_name))) {
                        free_names(names, n);
                        return -ENOMEM;
                }
                n++;
        }
        if (n > 1)
                qsort(names, n, sizeof(char *), cmp_names);
        *ret = names;
        *ret_n = n;
        return 0;
}

static int walk_dir(Walk *w, int fd, const char *rel, const char *resolved, unsigned depth);
static int walk_node(Walk *w, int dfd, const char *name, const char *rel, const char *resolved,
                     unsigned depth, const struct stat *st, int target);

/* A directory or a file, reached directly or through a checked symlink (target: an
 * O_PATH fd to what was checked, else -1). rel is the path the walk took, resolved
 * where it really is (both relative to the root; they differ below a symlink). */
static int walk_node(Walk *w, int dfd, const char *name, const char *rel, const char *resolved,
                     unsigned depth, const struct stat *st, int target) {
        if (S_ISDIR(st->st_mode)) {
                if (depth + 1 > MANIFEST_MAX_DIR_DEPTH)
                        return diag_path(w->diags, DIAG_ERROR, w->display_root, rel,
                                         "directories nested deeper than %d levels; not read",
                                         MANIFEST_MAX_DIR_DEPTH);
                int r = inode_set_add(&w->res->seen, st->st_dev, st->st_ino);
                if (r <= 0)
                        return r;  /* a loop, or a directory already read under another name */
                /* a symlink was resolved and checked once: open what was checked */
                int cfd = target >= 0 ? openat(target, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                                      : openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (cfd < 0)
                        return diag_path(w->diags, DIAG_ERROR, w->display_root, rel,
                                         "cannot open directory: %s", strerror(errno));
                return walk_dir(w, cfd, rel, resolved, depth + 1);
        }

        if (!scan_name_is_manifest(name))
                return 0;
        if (S_ISREG(st->st_mode))
                return add_file(w, rel, resolved, st);
        /* reading a fifo would block the scan forever; a device could be anything */
        return diag_path(w->diags, DIAG_WARNING, w->display_root, rel, MSG_NOT_REGULAR,
                         file_type_name(st->st_mode));
}

static int walk_symlink(Walk *w, int dfd, const char *name, const char *rel, unsigned depth) {
        struct stat st;
        if (fstatat(dfd, name, &st, 0) < 0) {
                if (!scan_name_is_manifest(name))
                        return 0;
                return diag_path(w->diags, DIAG_ERROR, w->display_root, rel,
                                 "cannot follow symlink: %s", strerror(errno));
        }
        if (!S_ISDIR(st.st_mode) && !scan_name_is_manifest(name))
                return 0;  /* would not be read anyway: where it leads does not matter */
        _cleanup_close_ int target = -1;
        _cleanup_free_ char *resolved = NULL;
        int r = follow_symlink(dfd, name, w->root_real, rel, &target, &st, &resolved);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return diag_path(w->diags, DIAG_ERROR, w->display_root, rel,
                                 "cannot follow symlink: %s", strerror(-r));
        if (r == 0)
                return diag_path(w->diags, DIAG_ERROR, w->display_root, rel, "%s", MSG_OUTSIDE);
        return walk_node(w, dfd, name, rel, resolved, depth, &st, target);
}

/* Symlinks are followed after everything reachable without them: a file or directory
 * reached both ways is then known by its real path, not by an alias that sorts first. */
static int defer_symlink(Walk *w, const char *rel, unsigned depth) {
        if (w->n_deferred == w->cap_deferred) {
                size_t cap = w->cap_deferred ? w->cap_deferred * 2 : 8;
                Deferred *d = realloc(w->deferred, cap * sizeof(Deferred));
                if (!d)
                        return -ENOMEM;
                w->deferred = d;
                w->cap_deferred = cap;
        }
        char *copy = strdup(rel);
        if (!copy)
                return -ENOMEM;
        w->deferred[w->n_deferred++] = (Deferred) { .rel = copy, .depth = depth };
        return 0;
}

static int walk_entry(Walk *w, int dfd, const char *name, const char *rel, const char *resolved,
                      unsigned depth) {
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;  /* removed while we looked */
                return diag_path(w->diags, DIAG_ERROR, w->display_root, rel, "cannot read: %s", strerror(errno));
        }
        if (S_ISLNK(st.st_mode))
                return defer_symlink(w, rel, depth);
        return walk_node(w, dfd, name, rel, resolved, depth, &st, -1);
}

/* The deferred symlinks, in walk order; following one may defer more (appended). */
static int walk_deferred(Walk *w, int root_fd) {
        int r = 0;
        for (size_t i = 0; i < w->n_deferred && r >= 0 && !w->stop; i++) {
                const char *rel = w->deferred[i].rel;
                const char *slash = strrchr(rel, '/');
                int dfd;
                if (slash) {
                        _cleanup_free_ char *parent = strndup(rel, (size_t) (slash - rel));
                        if (!parent)
                                return -ENOMEM;
                        dfd = openat(root_fd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                } else
                        dfd = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
                if (dfd < 0)
                        continue;  /* gone since the walk saw it */
                r = walk_symlink(w, dfd, slash ? slash + 1 : rel, rel, w->deferred[i].depth);
                close(dfd);
        }
        return r;
}

/* Takes ownership of fd. */
static int walk_dir(Walk *w, int fd, const char *rel, const char *resolved, unsigned depth) {
        DIR *d = fdopendir(fd);
        if (!d) {
                int e = errno;
                close(fd);
                return diag_path(w->diags, DIAG_ERROR, w->display_root, rel, "cannot read directory: %s", strerror(e));
        }
        char **names = NULL;
        size_t n = 0;
        int r = read_names(d, &names, &n);
        if (r < 0) {
                closedir(d);
                if (r == -ENOMEM)
                        return r;
                return diag_path(w->diags, DIAG_ERROR, w->display_root, rel, "cannot read directory: %s", strerror(-r));
        }
        for (size_t i = 0; i < n && r >= 0 && !w->stop; i++) {
                char *child = join_rel(rel, names[i]);
                char *child_resolved = join_rel(resolved, names[i]);
                if (!child || !child_resolved) {
                        free(child);
                        free(child_resolved);
                        r = -ENOMEM;
                        break;
                }
                r = walk_entry(w, dirfd(d), names[i], child, child_resolved, depth);
                free(child);
                free(child_resolved);
        }
        free_names(names, n);
        closedir(d);
        return r < 0 ? r : 0;
}

static int cmp_files(const void *a, const void *b) {
        const ScanFile *x = a, *y = b;
        if (x->root != y->root)
                return x->root < y->root ? -1 : 1;
        return strcmp(x->path, y->path);
}

int scan_root(ScanResult *res, const char *root, const char *display_root, Diags *diags) {
        _cleanup_free_ char *real = realpath(root, NULL);
        if (!real)
                return -errno;
        struct stat st;
        if (stat(real, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
                return -EINVAL;

        _cleanup_close_ int fd = -1;
        if (S_ISDIR(st.st_mode)) {
                fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                /* the directory we opened, not one swapped in since stat() */
                if (fstat(fd, &st) < 0)
                        return -errno;
        }

        ScanRoot *roots = realloc(res->roots, (res->n_roots + 1) * sizeof(ScanRoot));
        if (!roots)
                return -ENOMEM;
        res->roots = roots;
        size_t index = res->n_roots;
        size_t first = res->n_files;
        Walk w = {
                .res = res, .root = index, .root_real = real, .display_root = display_root,
                .diags = diags, .stop = res->truncated,
        };
        int r;
        if (fd < 0)
                r = w.stop ? 0 : add_file(&w, "", "", &st);
        else {
                r = inode_set_add(&res->seen, st.st_dev, st.st_ino);
                if (r > 0 && !w.stop) {
                        int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                        r = dfd < 0 ? -errno : walk_dir(&w, dfd, "", "", 0);
                        if (r >= 0)
                                r = walk_deferred(&w, fd);
                }
                for (size_t i = 0; i < w.n_deferred; i++)
                        free(w.deferred[i].rel);
                free(w.deferred);
        }
        if (r < 0) {
                for (size_t i = first; i < res->n_files; i++)
                        scan_file_done(&res->files[i]);
                res->n_files = first;
                return r;
        }
        res->roots[index] = (ScanRoot) { .real = TAKE_PTR(real), .fd = TAKE_FD(fd), .is_file = !S_ISDIR(st.st_mode) };
        res->n_roots++;
        if (res->n_files - first > 1)
                qsort(res->files + first, res->n_files - first, sizeof(ScanFile), cmp_files);
        return 0;
}

/* ---- one file (the daemon's inotify path) ---- */

int scan_file(const ScanRoot *root, size_t root_index, const char *relpath,
              const char *display_root, Diags *diags, ScanFile *ret) {
        struct stat st;
        if (root->is_file) {
                if (*relpath)
                        return 0;
                if (stat(root->real, &st) < 0 || !S_ISREG(st.st_mode))
                        return 0;
                *ret = (ScanFile) {};
                scan_file_fill(ret, root_index, &st);
                return (ret->path = strdup("")) ? 1 : -ENOMEM;
        }
        if (!*relpath || relpath[0] == '/')
                return 0;

        _cleanup_free_ char *copy = strdup(relpath);
        if (!copy)
                return -ENOMEM;
        /* the same checks as the walk, one component at a time */
        size_t n_components = 1;
        for (const char *p = copy; *p; p++)
                if (*p == '/')
                        n_components++;
        if (n_components - 1 > MANIFEST_MAX_DIR_DEPTH)
                return 0;

        _cleanup_close_ int cur = fcntl(root->fd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return -errno;
        /* where cur really is, relative to the root: what is read in the end */
        _cleanup_free_ char *resolved = strdup("");
        if (!resolved)
                return -ENOMEM;
        char *comp = copy;
        for (size_t i = 0; i < n_components; i++) {
                char *slash = strchr(comp, '/');
                if (slash)
                        *slash = '\0';
                bool last = i + 1 == n_components;
                if (!*comp || streq(comp, "..") || scan_name_ignored(comp) ||
                    (last && !scan_name_is_manifest(comp)))
                        return 0;
                /* the relative path so far, for messages: copy up to this component */
                _cleanup_free_ char *rel = xasprintf("%.*s", (int) (comp - copy + strlen(comp)), relpath);
                if (!rel)
                        return -ENOMEM;

                if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return errno == ENOENT || errno == ENOTDIR ? 0 :
                               diag_path(diags, DIAG_ERROR, display_root, rel, "cannot read: %s", strerror(errno));
                int next;
                char *next_resolved = NULL;
                if (S_ISLNK(st.st_mode)) {
                        int r = follow_symlink(cur, comp, root->real, rel, &next, &st, &next_resolved);
                        if (r == -ENOMEM)
                                return r;
                        if (r == -ENOENT && !last)
                                return 0;
                        if (r < 0)
                                return diag_path(diags, DIAG_ERROR, display_root, rel,
                                                 "cannot follow symlink: %s", strerror(-r));
                        if (r == 0)
                                return diag_path(diags, DIAG_ERROR, display_root, rel, "%s", MSG_OUTSIDE);
                } else {
                        next = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                        if (next < 0)
                                return errno == ENOENT ? 0 : -errno;
                        next_resolved = join_rel(resolved, comp);
                        if (!next_resolved) {
                                close(next);
                                return -ENOMEM;
                        }
                }
                closep(&cur);
                cur = next;
                free(resolved);
                resolved = next_resolved;
                if (!last) {
                        if (!S_ISDIR(st.st_mode))
                                return 0;
                        comp = slash + 1;
                        continue;
                }
                if (S_ISDIR(st.st_mode))
                        return 0;
                if (!S_ISREG(st.st_mode)) {
                        int r = diag_path(diags, DIAG_WARNING, display_root, rel, MSG_NOT_REGULAR,
                                          file_type_name(st.st_mode));
                        return r < 0 ? r : 0;
                }
        }
        *ret = (ScanFile) {};
        scan_file_fill(ret, root_index, &st);
        return scan_file_set_paths(ret, relpath, resolved) < 0 ? -ENOMEM : 1;
}

void scan_file_done(ScanFile *f) {
        f->path = mfree(f->path);
        f->resolved = mfree(f->resolved);
}

void scan_result_clear(ScanResult *res) {
        for (size_t i = 0; i < res->n_files; i++)
                scan_file_done(&res->files[i]);
        free(res->files);
        for (size_t i = 0; i < res->n_roots; i++) {
                free(res->roots[i].real);
                if (res->roots[i].fd >= 0)
                        close(res->roots[i].fd);
        }
        free(res->roots);
        inode_set_free(res->seen);
        *res = SCAN_RESULT_INIT;
}
