/* The manifests-tree watcher (see watch.h for what it promises).
 *
 * Two kinds of inotify watches share one fd:
 *  - tree watches: every directory under the resolved root, down to
 *    MANIFEST_MAX_DIR_DEPTH (the scanner reads no deeper), hidden ones left out;
 *  - guards: the directory holding the manifests path's last component, and the one
 *    holding every symlink on the way (so /srv/git/current/manifests notices git-sync
 *    swapping "current"), each for one name. An event on a guarded name means the path
 *    may now lead somewhere else: all watches are dropped and set up again from the
 *    path (root_changed). When a component does not exist, the directory that should
 *    hold it is guarded, and setup runs again when it appears.
 * A directory can be both (same inode, same wd): an Entry carries both roles, and every
 * directory is watched with the same mask so one role never narrows the other's.
 *
 * Setup is deferred to the end of a read batch: the events after a root change in the
 * same batch are moot (everything is rescanned), and a swap followed by a delete of the
 * old tree costs one setup, not several. */
#include "watch.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "limits.h"
#include "scan.h"
#include "util.h"

/* IN_ATTRIB: a chmod can make a manifest readable or unreadable, and desired_set_rescan()
 * notices the ctime change; git rarely chmods, and a burst is one callback anyway.
 * IN_CREATE of a plain file is not a change by itself (IN_CLOSE_WRITE follows), but it is
 * needed for directories, symlinks and hard links, which never get an IN_CLOSE_WRITE.
 * IN_EXCL_UNLINK: a file unlinked while a writer still has it open reports nothing more. */
#define DIR_MASK                                                                          \
        (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |           \
         IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB | IN_ONLYDIR | IN_DONT_FOLLOW |        \
         IN_EXCL_UNLINK)
/* The manifests path naming one file (check-style roots): its own writes and its end. */
#define FILE_MASK (IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_DONT_FOLLOW)

/* Reads per dispatch: a writer faster than we read must not keep us in one dispatch
 * forever; epoll is level-triggered, the rest is read on the next iteration (and
 * sd-event dispatches the oldest pending source first, so the timer is not starved). */
#define READS_PER_DISPATCH 64
/* Timer slack: sd-event's default (250 ms) would be longer than a typical debounce. */
#define TIMER_ACCURACY_USEC 1000
/* A burst that changed more manifest files than this is rescanned whole: re-reading a
 * few files saves the walk of the tree (about 40 ms at 10,000 files, by the daemon's
 * debug timing), a big checkout gains nothing from a list. */
#define WATCH_MAX_CHANGED_FILES 64
/* The path can change while setup walks it (a swap between two lookups): try again,
 * a few times; the guards catch anything later. */
#define SETUP_ATTEMPTS 4
/* debounce/max_delay bounds: past a day is a unit mix-up, and keeps usec math far from
 * overflow. */
#define WATCH_MAX_DELAY_MS (24LL * 3600 * 1000)

typedef struct Entry {
        int wd;
        char *dir;            /* tree directory or root file (absolute, resolved); NULL: guard only */
        unsigned depth;       /* below the root; 0 = the root itself */
        bool is_root;
        bool is_file;         /* the root is a single file, watched with FILE_MASK */
        char **guards;        /* names in this directory that the manifests path goes through */
        size_t n_guards;
} Entry;

struct Watch {
        sd_event *event;
        sd_event_source *io;
        sd_event_source *timer;
        int fd;
        char *path;           /* absolute, no empty or "." components */
        char *root;           /* the root as resolved by the latest setup; NULL while missing */
        Entry *entries;       /* sorted by wd, for lookups per event */
        size_t n_entries, cap_entries;
        unsigned max_watches; /* WATCH_MAX_WATCHES (tests lower it) */
        uint64_t debounce_usec, max_delay_usec;
        watch_cb cb;
        void *userdata;

        /* within one read batch */
        bool changed;
        bool root_changed;
        bool need_setup;

        /* the open burst: the timer is armed while pending */
        bool pending;
        bool pending_root_changed;
        /* the manifest files it changed (relative to root), when that is all it changed:
         * the caller re-reads just those; files_all: something else changed too (a
         * directory, the root, more than WATCH_MAX_CHANGED_FILES files), read everything */
        char **files;
        size_t n_files;
        bool files_all;
        char **reported_files;     /* during the callback: watch_changed_files() */
        size_t n_reported_files;
        bool reported_all;
        uint64_t burst_start; /* CLOCK_MONOTONIC usec of the burst's first change */

        uint64_t n_events;    /* events read (tests prove "seen and ignored" with it) */
        unsigned n_errors;
        int last_error;
};

static void note_error(Watch *w, int r) {
        w->n_errors++;
        w->last_error = r;
}

static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

static char *path_join(const char *dir, const char *name) {
        size_t l = strlen(dir);
        return xasprintf("%s%s%s", dir, l > 0 && dir[l - 1] == '/' ? "" : "/", name);
}

/* Absolute (against the cwd), without empty and "." components, no trailing slash:
 * setup walks it component by component. ".." is kept: the kernel resolves it. */
static int normalize_path(const char *path, char **ret) {
        if (!path || !*path)
                return -EINVAL;

        _cleanup_free_ char *abs = NULL;
        if (path[0] == '/')
                abs = strdup(path);
        else {
                _cleanup_free_ char *cwd = get_current_dir_name();
                if (!cwd)
                        return errno == ENOMEM ? -ENOMEM : -errno;
                abs = path_join(cwd, path);
        }
        if (!abs)
                return -ENOMEM;

        char *out = malloc(strlen(abs) + 2);
        if (!out)
                return -ENOMEM;
        size_t n = 0;
        for (const char *p = abs; *p;) {
                while (*p == '/')
                        p++;
                const char *s = p;
                while (*p && *p != '/')
                        p++;
                size_t l = (size_t) (p - s);
                if (l == 0 || (l == 1 && s[0] == '.'))
                        continue;
                out[n++] = '/';
                memcpy(out + n, s, l);
                n += l;
        }
        if (n == 0)
                out[n++] = '/';
        out[n] = '\0';
        *ret = out;
        return 0;
}

/* ---- the wd -> entry table ---- */

static size_t entry_index(const Watch *w, int wd, bool *found) {
        size_t lo = 0, hi = w->n_entries;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (w->entries[mid].wd < wd)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = lo < w->n_entries && w->entries[lo].wd == wd;
        return lo;
}

static void entry_done(Entry *e) {
        free(e->dir);
        for (size_t i = 0; i < e->n_guards; i++)
                free(e->guards[i]);
        free(e->guards);
}

static void entry_remove_at(Watch *w, size_t i) {
        entry_done(&w->entries[i]);
        memmove(&w->entries[i], &w->entries[i + 1], (w->n_entries - i - 1) * sizeof(Entry));
        w->n_entries--;
}

static void drop_all(Watch *w) {
        for (size_t i = 0; i < w->n_entries; i++) {
                /* its IN_IGNORED arrives later for a wd we no longer know: dropped then */
                (void) inotify_rm_watch(w->fd, w->entries[i].wd);
                entry_done(&w->entries[i]);
        }
        w->n_entries = 0;
        free(w->root);
        w->root = NULL;
}

/* Watch path; *ret points into the table (valid until the next insert or removal).
 * Returns 1 for a new watch, 0 when the inode was watched already (inotify hands back
 * the same wd), or a negative errno. */
static int add_watch(Watch *w, const char *path, uint32_t mask, Entry **ret) {
        if (w->n_entries >= w->max_watches)
                return -ENOSPC;

        int wd = inotify_add_watch(w->fd, path, mask);
        if (wd < 0)
                return -errno;

        bool found;
        size_t i = entry_index(w, wd, &found);
        if (!found) {
                if (w->n_entries == w->cap_entries) {
                        size_t cap = w->cap_entries ? w->cap_entries * 2 : 16;
                        Entry *n = reallocarray(w->entries, cap, sizeof(Entry));
                        if (!n) {
                                (void) inotify_rm_watch(w->fd, wd);
                                return -ENOMEM;
                        }
                        w->entries = n;
                        w->cap_entries = cap;
                }
                memmove(&w->entries[i + 1], &w->entries[i], (w->n_entries - i) * sizeof(Entry));
                w->entries[i] = (Entry) { .wd = wd };
                w->n_entries++;
        }
        *ret = &w->entries[i];
        return !found;
}

/* Watch dir and every directory below it the scanner would read. Only -ENOMEM is
 * returned; anything else is counted (a directory gone meanwhile is not even that: its
 * parent's event says so). */
static int add_tree(Watch *w, const char *dir, unsigned depth, bool is_root) {
        _cleanup_free_ char *copy = strdup(dir);
        if (!copy)
                return -ENOMEM;

        Entry *e;
        int r = add_watch(w, dir, DIR_MASK, &e);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (r != -ENOENT && r != -ENOTDIR)
                        note_error(w, r);
                return 0;
        }
        /* an inode seen again (a directory moved within the tree): now known by this path */
        free(e->dir);
        e->dir = TAKE_PTR(copy);
        e->depth = depth;
        e->is_root = e->is_root || is_root;

        /* Watched first, listed second: a directory created after the watch is an event,
         * one created before it is in the listing (both is fine: same wd). */
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno != ENOENT && errno != ENOTDIR)
                        note_error(w, -errno);
                return 0;
        }
        _cleanup_(closedirp) DIR *d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                if (r == -ENOMEM)
                        return r;
                note_error(w, r);
                return 0;
        }

        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                note_error(w, -errno);
                        break;
                }
                if (scan_name_ignored(de->d_name))  /* also ".", ".." */
                        continue;
                bool isdir = de->d_type == DT_DIR;
                if (de->d_type == DT_UNKNOWN) {
                        struct stat st;
                        isdir = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                                S_ISDIR(st.st_mode);
                }
                /* Symlinked directories are not followed: the scanner follows only those
                 * leading inside the root, which are watched under their own name. */
                if (!isdir || depth + 1 > MANIFEST_MAX_DIR_DEPTH)
                        continue;
                _cleanup_free_ char *child = path_join(dir, de->d_name);
                if (!child)
                        return -ENOMEM;
                r = add_tree(w, child, depth + 1, false);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A directory moved away: its watches would go on reporting from wherever it went. */
static void drop_subtree(Watch *w, const char *dir) {
        size_t l = strlen(dir);
        for (size_t i = w->n_entries; i-- > 0;) {
                Entry *e = &w->entries[i];
                if (!e->dir || e->is_file || strncmp(e->dir, dir, l) != 0 ||
                    (e->dir[l] != '\0' && e->dir[l] != '/'))
                        continue;
                if (e->n_guards > 0) {
                        /* still guarding: its own IN_MOVE_SELF makes a new setup */
                        free(e->dir);
                        e->dir = NULL;
                        continue;
                }
                (void) inotify_rm_watch(w->fd, e->wd);
                entry_remove_at(w, i);
        }
}

static int add_guard(Watch *w, const char *dir, const char *name) {
        _cleanup_free_ char *copy = strdup(name);
        if (!copy)
                return -ENOMEM;

        Entry *e;
        int r = add_watch(w, dir, DIR_MASK, &e);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                note_error(w, r);
                return 0;
        }
        char **n = reallocarray(e->guards, e->n_guards + 1, sizeof(char *));
        if (!n)
                return -ENOMEM;
        e->guards = n;
        e->guards[e->n_guards++] = TAKE_PTR(copy);
        return 0;
}

/* Guard the path's components, then watch what it resolves to. -EAGAIN: the path
 * changed under the walk. */
static int setup_once(Watch *w) {
        drop_all(w);

        const char *p = w->path;
        if (!streq(p, "/")) {
                size_t start = 1;
                for (size_t i = 1;; i++) {
                        if (p[i] != '/' && p[i] != '\0')
                                continue;
                        bool last = p[i] == '\0';
                        _cleanup_free_ char *child = strndup(p, i);
                        _cleanup_free_ char *parent = start > 1 ? strndup(p, start - 1) : strdup("/");
                        _cleanup_free_ char *name = strndup(p + start, i - start);
                        if (!child || !parent || !name)
                                return -ENOMEM;

                        struct stat st;
                        /* EACCES, ENOTDIR, ... as much as ENOENT: the guard waits for a fix */
                        bool missing = lstat(child, &st) < 0;
                        if (last || missing || S_ISLNK(st.st_mode)) {
                                _cleanup_free_ char *real = realpath(parent, NULL);
                                if (!real)
                                        return errno == ENOMEM ? -ENOMEM : -EAGAIN;
                                int r = add_guard(w, real, name);
                                if (r < 0)
                                        return r;
                        }
                        if (missing || last)
                                break;
                        start = i + 1;
                }
        }

        _cleanup_free_ char *real = realpath(w->path, NULL);
        if (!real) {
                if (errno == ENOMEM)
                        return -ENOMEM;
                if (errno != ENOENT)
                        note_error(w, -errno);
                return 0;  /* not there (yet): the guards wait for it */
        }
        struct stat st;
        if (stat(real, &st) < 0)
                return errno == ENOMEM ? -ENOMEM : -EAGAIN;

        int r = 0;
        if (S_ISDIR(st.st_mode))
                r = add_tree(w, real, 0, true);
        else if (S_ISREG(st.st_mode)) {
                _cleanup_free_ char *copy = strdup(real);
                if (!copy)
                        return -ENOMEM;
                Entry *e;
                r = add_watch(w, real, FILE_MASK, &e);
                if (r >= 0) {
                        free(e->dir);
                        e->dir = TAKE_PTR(copy);
                        e->is_root = e->is_file = true;
                        r = 0;
                } else if (r != -ENOMEM) {
                        note_error(w, r);
                        r = 0;
                }
        }
        if (r < 0)
                return r;
        w->root = TAKE_PTR(real);
        return 0;
}

static int setup(Watch *w) {
        w->need_setup = false;
        for (unsigned attempt = 1;; attempt++) {
                int r = setup_once(w);
                if (r != -EAGAIN)
                        return r;
                if (attempt == SETUP_ATTEMPTS) {
                        /* whatever guards are in place wait for the path to settle */
                        note_error(w, r);
                        return 0;
                }
        }
}

/* ---- events ---- */

static void root_change(Watch *w) {
        w->need_setup = w->changed = w->root_changed = true;
}

static bool name_in(char *const *names, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(names[i], name))
                        return true;
        return false;
}

static void files_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* This batch changed something that only a full rescan judges. */
static void changed_all(Watch *w) {
        w->changed = true;
        w->files_all = true;
}

/* This batch changed the manifest file name in the tree directory dir. */
static void changed_file(Watch *w, const char *dir, const char *name) {
        w->changed = true;
        if (w->files_all)
                return;
        size_t n = w->root ? strlen(w->root) : 0;
        char *rel = NULL;
        if (n > 0 && streq(dir, w->root))
                rel = strdup(name);
        else if (n > 0 && strncmp(dir, w->root, n) == 0 && dir[n] == '/')
                rel = xasprintf("%s/%s", dir + n + 1, name);
        for (size_t i = 0; rel && i < w->n_files; i++)
                if (streq(w->files[i], rel)) {
                        free(rel);
                        return;
                }
        char **t = rel && w->n_files < WATCH_MAX_CHANGED_FILES ? reallocarray(w->files, w->n_files + 1, sizeof(char *))
                                                               : NULL;
        if (!t) {
                free(rel);
                w->files_all = true;
                return;
        }
        w->files = t;
        w->files[w->n_files++] = rel;
}

static void process_event(Watch *w, const struct inotify_event *ev) {
        w->n_events++;

        if (ev->mask & IN_Q_OVERFLOW) {
                /* events were lost, new directories among them maybe: watch anew, rescan */
                root_change(w);
                return;
        }
        if (w->need_setup)
                return;  /* everything is watched anew after this batch, and rescanned */

        bool found;
        size_t i = entry_index(w, ev->wd, &found);
        if (!found)
                return;  /* a watch already dropped: the rest of its queue is moot */
        Entry *e = &w->entries[i];

        if (ev->mask & IN_IGNORED) {
                /* the kernel dropped the watch: the directory is gone, or its fs unmounted */
                bool vital = e->is_root || e->n_guards > 0;
                entry_remove_at(w, i);
                if (vital)
                        root_change(w);
                return;
        }

        const char *name = ev->len > 0 ? ev->name : NULL;
        if (!name) {
                if ((ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) && (e->is_root || e->n_guards > 0))
                        root_change(w);
                else if (e->is_root && (ev->mask & (IN_ATTRIB | IN_CLOSE_WRITE)))
                        changed_all(w);
                return;
        }

        if (name_in(e->guards, e->n_guards, name)) {
                if (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)) {
                        root_change(w);
                        return;
                }
                if (ev->mask & IN_ATTRIB)
                        changed_all(w);  /* a chmod of the root (or the root file) */
        }

        if (!e->dir || e->is_file || scan_name_ignored(name))
                return;

        if (ev->mask & IN_ISDIR) {
                if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && e->depth + 1 <= MANIFEST_MAX_DIR_DEPTH) {
                        /* files may be in it already: the rescan finds them (changed) */
                        unsigned depth = e->depth + 1;
                        _cleanup_free_ char *child = path_join(e->dir, name);
                        int r = child ? add_tree(w, child, depth, false) : -ENOMEM;
                        if (r < 0)
                                note_error(w, r);
                } else if (ev->mask & IN_MOVED_FROM) {
                        _cleanup_free_ char *child = path_join(e->dir, name);
                        if (child)
                                drop_subtree(w, child);
                        else
                                note_error(w, -ENOMEM);
                }
                changed_all(w);
                return;
        }

        if (!scan_name_is_manifest(name))
                return;

        if (ev->mask & IN_CREATE) {
                /* A file being written reports IN_CLOSE_WRITE when done: wait for that. What
                 * is complete on creation never does: symlinks, hard links (a link count
                 * above one), fifos (the scanner refuses them, with a diagnostic). */
                _cleanup_free_ char *child = path_join(e->dir, name);
                struct stat st;
                if (!child) {
                        note_error(w, -ENOMEM);
                        changed_all(w);  /* can't tell: a rescan too many is harmless */
                        return;
                }
                if (lstat(child, &st) < 0)
                        return;  /* gone already: its IN_DELETE follows */
                if (S_ISREG(st.st_mode) && st.st_nlink == 1)
                        return;
        }
        changed_file(w, e->dir, name);
}

/* The burst's timer: debounce after the latest change, never past max_delay after the
 * first (a never-ending trickle is still reported). */
static uint64_t burst_deadline(uint64_t burst_start, uint64_t now, uint64_t debounce, uint64_t max_delay) {
        uint64_t quiet = now + debounce;
        uint64_t cap = burst_start + max_delay;
        return quiet < cap ? quiet : cap;
}

static void arm(Watch *w) {
        uint64_t now;
        if (sd_event_now(w->event, CLOCK_MONOTONIC, &now) < 0)
                now = (uint64_t) now_monotonic_ms() * 1000;

        if (!w->pending) {
                w->pending = true;
                w->burst_start = now;
                w->pending_root_changed = false;
        }
        w->pending_root_changed = w->pending_root_changed || w->root_changed;
        w->changed = w->root_changed = false;

        /* the source exists since watch_new(): re-arming it cannot fail for want of memory */
        int r = sd_event_source_set_time(w->timer, burst_deadline(w->burst_start, now, w->debounce_usec,
                                                                  w->max_delay_usec));
        if (r >= 0)
                r = sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
        if (r < 0)
                note_error(w, r);
}

/* After a batch of events: watch anew if the path moved, then open or extend the burst
 * (in this order: the callback must come after the new watches are in place). */
static void batch_done(Watch *w) {
        if (w->need_setup) {
                int r = setup(w);
                if (r < 0)
                        note_error(w, r);
        }
        if (w->changed)
                arm(w);
}

static int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Watch *w = userdata;
        /* read(2) fills whole events; the buffer must hold the largest one (NAME_MAX) */
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        (void) s;
        (void) revents;

        for (unsigned n = 0; n < READS_PER_DISPATCH; n++) {
                ssize_t l = read(fd, buf, sizeof(buf));
                if (l < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                note_error(w, -errno);
                        break;
                }
                if (l == 0)
                        break;
                for (size_t off = 0; off + sizeof(struct inotify_event) <= (size_t) l;) {
                        const struct inotify_event *ev = (const struct inotify_event *) (buf + off);
                        process_event(w, ev);
                        off += sizeof(struct inotify_event) + ev->len;
                }
        }

        batch_done(w);
        /* never negative: sd-event would disable the source for good */
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Watch *w = userdata;
        (void) s;
        (void) usec;

        bool root_changed = w->pending_root_changed;
        w->pending = w->pending_root_changed = false;
        files_free(w->reported_files, w->n_reported_files);
        w->reported_files = w->files;
        w->n_reported_files = w->n_files;
        w->reported_all = w->files_all || root_changed || w->n_files == 0;
        w->files = NULL;
        w->n_files = 0;
        w->files_all = false;
        /* last: the callback may set a new path or free w */
        w->cb(w, root_changed, w->userdata);
        return 0;
}

/* ---- public ---- */

bool watch_changed_files(const Watch *w, char *const **ret, size_t *ret_n) {
        if (w->reported_all)
                return false;
        *ret = w->reported_files;
        *ret_n = w->n_reported_files;
        return true;
}

int watch_new(sd_event *e, const char *path, int64_t debounce_ms, int64_t max_delay_ms,
              watch_cb cb, void *userdata, Watch **ret) {
        if (!e || !path || !cb || !ret || debounce_ms < 0 || max_delay_ms < 0 ||
            debounce_ms > WATCH_MAX_DELAY_MS || max_delay_ms > WATCH_MAX_DELAY_MS)
                return -EINVAL;

        _cleanup_(watch_freep) Watch *w = calloc(1, sizeof(Watch));
        if (!w)
                return -ENOMEM;
        w->fd = -1;
        w->event = sd_event_ref(e);
        w->cb = cb;
        w->userdata = userdata;
        w->debounce_usec = (uint64_t) debounce_ms * 1000;
        w->max_delay_usec = (uint64_t) max_delay_ms * 1000;
        w->max_watches = WATCH_MAX_WATCHES;

        int r = normalize_path(path, &w->path);
        if (r < 0)
                return r;

        w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->fd < 0)
                return -errno;
        r = sd_event_add_io(e, &w->io, w->fd, EPOLLIN, on_inotify, w);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(w->io, "manifests-inotify");
        r = sd_event_add_time(e, &w->timer, CLOCK_MONOTONIC, UINT64_MAX, TIMER_ACCURACY_USEC, on_timer, w);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(w->timer, "manifests-debounce");

        r = setup(w);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(w);
        return 0;
}

Watch *watch_free(Watch *w) {
        if (!w)
                return NULL;
        /* closing the fd drops the kernel's watches all at once */
        for (size_t i = 0; i < w->n_entries; i++)
                entry_done(&w->entries[i]);
        free(w->entries);
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->timer);
        if (w->fd >= 0)
                close(w->fd);
        sd_event_unref(w->event);
        free(w->path);
        free(w->root);
        files_free(w->files, w->n_files);
        files_free(w->reported_files, w->n_reported_files);
        free(w);
        return NULL;
}

int watch_set_path(Watch *w, const char *path) {
        char *p;
        int r = normalize_path(path, &p);
        if (r < 0)
                return r;
        free(w->path);
        w->path = p;
        w->files_all = true;   /* what the burst listed was relative to the old root */
        return setup(w);
}

unsigned watch_n_watches(const Watch *w) {
        return (unsigned) w->n_entries;
}

unsigned watch_n_errors(const Watch *w) {
        return w->n_errors;
}

int watch_last_error(const Watch *w) {
        return w->last_error;
}

const char *watch_root(const Watch *w) {
        return w->root;
}
