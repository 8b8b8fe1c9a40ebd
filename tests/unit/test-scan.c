/* lib/scan.c on real temporary trees: which files count, in which order, and what is
 * refused (symlinks outside, fifos, depth, file count, unreadable directories). */
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "limits.h"
#include "scan.h"
#include "util.h"

typedef struct Tmp {
        char *dir;   /* the test's temp directory; the tree under test is usually dir/root */
        char *root;
} Tmp;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        return remove(path) < 0 ? -1 : 0;
}

static int setup(void **state) {
        Tmp *t = calloc(1, sizeof(*t));
        assert_non_null(t);
        t->dir = strdup("/tmp/test-scan-XXXXXX");
        assert_non_null(mkdtemp(t->dir));
        t->root = xasprintf("%s/root", t->dir);
        assert_int_equal(mkdir(t->root, 0755), 0);
        *state = t;
        return 0;
}

static int teardown(void **state) {
        Tmp *t = *state;
        /* undo what tests lock, so removal works */
        char *locked = xasprintf("%s/locked", t->root);
        chmod(locked, 0755);
        free(locked);
        nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(t->root);
        free(t->dir);
        free(t);
        return 0;
}

/* Create base/rel with content, making parent directories. */
static void put(const char *base, const char *rel, const char *content) {
        char *path = xasprintf("%s/%s", base, rel);
        assert_non_null(path);
        for (char *p = path + strlen(base) + 1; (p = strchr(p, '/')); p++) {
                *p = '\0';
                if (mkdir(path, 0755) < 0)
                        assert_int_equal(errno, EEXIST);
                *p = '/';
        }
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(content, f);
        assert_int_equal(fclose(f), 0);
        free(path);
}

static void link_at(const char *base, const char *rel, const char *target) {
        char *path = xasprintf("%s/%s", base, rel);
        assert_int_equal(symlink(target, path), 0);
        free(path);
}

static void mkdir_at(const char *base, const char *rel) {
        char *path = xasprintf("%s/%s", base, rel);
        assert_int_equal(mkdir(path, 0755), 0);
        free(path);
}

static void assert_files(const ScanResult *r, const char *const *expected, size_t n) {
        for (size_t i = 0; i < r->n_files && i < n; i++)
                assert_string_equal(r->files[i].path, expected[i]);
        assert_int_equal(r->n_files, n);
}

static const Diag *find_diag(const Diags *d, const char *file, const char *message) {
        for (size_t i = 0; i < d->n; i++)
                if (streq(d->items[i].file, file) && strstr(d->items[i].message, message))
                        return &d->items[i];
        return NULL;
}

static void test_names(void **state) {
        (void) state;
        assert_true(scan_name_is_manifest("a.yaml"));
        assert_true(scan_name_is_manifest("a.yml"));
        assert_false(scan_name_is_manifest(".yaml"));
        assert_false(scan_name_is_manifest("a.yaml~"));
        assert_false(scan_name_is_manifest(".a.yaml"));
        assert_false(scan_name_is_manifest("a.YAML"));
        assert_false(scan_name_is_manifest("a.json"));
        assert_true(scan_name_ignored(".git"));
        assert_true(scan_name_ignored(".#a.yaml"));
        assert_true(scan_name_ignored("a.yaml.swp"));
        assert_true(scan_name_ignored("a.tmp"));
        assert_true(scan_name_ignored("a~"));
        assert_false(scan_name_ignored("a.yaml"));
}

static void test_display_path(void **state) {
        (void) state;
        static const struct {
                const char *root, *rel, *expected;
        } cases[] = {
                { "manifests/", "a/b.yaml", "manifests/a/b.yaml" },
                { "manifests", "a/b.yaml", "manifests/a/b.yaml" },
                { "manifests//", "b.yaml", "manifests/b.yaml" },
                { "/", "b.yaml", "/b.yaml" },
                { ".", "b.yaml", "./b.yaml" },
                { "", "b.yaml", "b.yaml" },
                { "file.yaml", "", "file.yaml" },
                { "dir/", "", "dir/" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *p = scan_display_path(cases[i].root, cases[i].rel);
                assert_non_null(p);
                assert_string_equal(p, cases[i].expected);
                free(p);
        }
}

static void test_collects_sorted_and_ignores(void **state) {
        Tmp *t = *state;
        put(t->root, "b.yml", "");
        put(t->root, "a.yaml", "");
        put(t->root, "a-b.yaml", "");
        put(t->root, "a/b.yaml", "");
        put(t->root, "Z.yaml", "");
        put(t->root, "sub/deeper/e.yaml", "");
        put(t->root, "README.md", "");
        put(t->root, "notes.txt", "");
        /* never read: hidden, editor leftovers */
        put(t->root, ".git/config.yaml", "");
        put(t->root, ".git/objects/x.yaml", "");
        put(t->root, ".hidden.yaml", "");
        put(t->root, ".#a.yaml", "");
        put(t->root, "a.yaml~", "");
        put(t->root, "a.yaml.swp", "");
        put(t->root, ".a.yaml.swp", "");
        put(t->root, "a.yaml.tmp", "");
        put(t->root, "backup~/x.yaml", "");
        mkdir_at(t->root, "a.yaml.d");  /* a directory is not a manifest, whatever its name */
        mkdir_at(t->root, "empty.yaml");

        _cleanup_scan_result_ ScanResult r = SCAN_RESULT_INIT;
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(scan_root(&r, t->root, "m", &d), 0);
        /* byte order: '-' < '.' < '/', upper case before lower */
        static const char *const expected[] = {
                "Z.yaml", "a-b.yaml", "a.yaml", "a/b.yaml", "b.yml", "sub/deeper/e.yaml",
        };
        assert_files(&r, expected, ELEMENTSOF(expected));
        assert_int_equal(d.n, 0);
        assert_int_equal(r.n_roots, 1);
        assert_false(r.roots[0].is_file);
        assert_true(r.roots[0].fd >= 0);
        assert_false(r.truncated);
        for (size_t i = 0; i < r.n_files; i++)
                assert_int_equal(r.files[i].root, 0);
}

static void test_symlink_outside_refused(void **state) {
        Tmp *t = *state;
        put(t->dir, "outside/secret.yaml", "name: x\n");
        put(t->dir, "outside/other.txt", "");
        put(t->root, "good.yaml", "");
        char *target = xasprintf("%s/outside/secret.yaml", t->dir);
        link_at(t->root, "evil.yaml", target);               /* absolute, to a file */
        link_at(t->root, "evil-dir", "../outside");           /* relative, to a directory */
        link_at(t->root, "notes.txt", "../outside/other.txt"); /* never read: no diagnostic */
        link_at(t->root, "passwd.yml", "/etc/passwd");
        free(target);

        _cleanup_scan_result_ ScanResult r = SCAN_RESULT_INIT;
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(scan_root(&r, t->root, "m/", &d), 0);
        static const char *const expected[] = { "good.yaml" };
        assert_files(&r, expected, 1);
        assert_int_equal(d.n, 3);
        assert_int_equal(d.n_errors, 3);
        const Diag *x = find_diag(&d, "m/evil.yaml", "symlink leads outside the manifests directory");
        assert_non_null(x);
        assert_int_equal(x->line, 0);
        assert_int_equal(x->severity, DIAG_ERROR);
        assert_non_null(find_diag(&d, "m/evil-dir", "symlink leads outside the manifests directory"));
        assert_non_null(find_diag(&d, "m/passwd.yml", "symlink leads outside the manifests directory"));
}

static void test_symlink_inside_followed_once(void **state) {
        Tmp *t = *state;
        put(t->root, "a.yaml", "");
        put(t->root, "sub/d.yaml", "");
        link_at(t->root, "alias.yaml", "a.yaml");    /* the same file twice: read once */
        link_at(t->root, "sub/loop", "..");          /* a loop: must not hang */
        link_at(t->root, "sub/self", ".");
        link_at(t->root, "zlink", "sub");            /* the same directory twice */
        put(t->dir, "elsewhere/x.yaml", "");
        /* leaves the root and comes back in: judged by where it resolves */
        char *back = xasprintf("%s/root/sub/d.yaml", t->dir);
        link_at(t->root, "back.yaml", back);
        free(back);
        char *hard_src = xasprintf("%s/a.yaml", t->root), *hard_dst = xasprintf("%s/hard.yaml", t->root);
        assert_int_equal(link(hard_src, hard_dst), 0);
        free(hard_src);
        free(hard_dst);

        _cleanup_scan_result_ ScanResult r = SCAN_RESULT_INIT;
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(scan_root(&r, t->root, "m", &d), 0);
        /* a file or directory reached several ways is read once, under its real path
         * (symlinks are followed last, even when they sort first); a hard link is the
         * same file too, and the first in byte order names it */
        static const char *const expected[] = { "a.yaml", "sub/d.yaml" };
        assert_files(&r, expected, ELEMENTSOF(expected));
        assert_int_equal(d.n, 0);
}

static void test_symlink_only_path(void **state) {
        Tmp *t = *state;
        /* reachable only through symlinks (inside the root, under a hidden directory the
         * walk itself skips): read under the link's name, links inside it followed too */
        put(t->root, ".store/v1/x.yaml", "");
        put(t->root, ".store/v1/inner/y.yaml", "");
        link_at(t->root, ".store/v1/z.yaml", "inner/y.yaml");
        link_at(t->root, ".store/v1/more", "../v2");
        put(t->root, ".store/v2/w.yaml", "");
        link_at(t->root, "current", ".store/v1");
        put(t->root, "a.yaml", "");

        _cleanup_scan_result_ ScanResult r = SCAN_RESULT_INIT;
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(scan_root(&r, t->root, "m", &d), 0);
        static const char *const expected[] = {
                "a.yaml", "current/inner/y.yaml", "current/more/w.yaml", "current/x.yaml",
        };
        assert_files(&r, expected, ELEMENTSOF(expected));
        assert_int_equal(d.n, 0);
        /* what is read: where each really is, no symlink on the way (none: the path) */
        static const char *const resolved[] = {
                "a.yaml", ".store/v1/inner/y.yaml", ".store/v2/w.yaml", ".store/v1/x.yaml",
        };
        assert_null(r.files[0].resolved);
        for (size_t i = 0; i < ELEMENTSOF(resolved); i++)
                assert_string_equal(scan_file_read_path(&r.files[i]), resolved[i]);

        /* the one-file path resolves the same way */
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                ScanFile f = {};
                assert_int_equal(scan_file(&r.roots[0], 0, expected[i], "m", &d, &f), 1);
                assert_string_equal(f.path, expected[i]);
                assert_string_equal(scan_file_read_path(&f), resolved[i]);
                scan_file_done(&f);
        }
        ScanFile f = {};
        assert_int_equal(scan_file(&r.roots[0], 0, "current/z.yaml", "m", &d, &f), 1);
        assert_string_equal(scan_file_read_path(&f), ".store/v1/inner/y.yaml");
        scan_file_done(&f);
        assert_int_equal(d.n, 0);
}

static void test_symlink_dangling(void **state) {
        Tmp *t = *state;
        link_at(t->root, "gone.yaml", "nowhere.yaml");
        link_at(t->root, "gone.txt", "nowhere.txt");
        _cleanup_scan_result_ ScanResult r = SCAN_RESULT_INIT;
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(scan_root(&r, t->root, "m", &d), 0);
        assert_int_equal(r.n_files, 0);
        assert_int_equal(d.n, 1);
        assert_string_equal(d.items[0].file, "m/gone.yaml");
        assert_string_equal(d.items[0].message, "cannot follow symlink: No such file or directory");
}

/* git-sync: the root is a symlink to a revision directory, swapped atomically. */
static void test_root_symlink_resolved(void **state) {
        Tmp *t = *state;
        put(t->dir, "rev-1/a.yaml", "");
        put(t->dir, "rev-1/shared/b.yaml", "");
        link_at(t->dir, "rev-1/b.yaml", "shared/b.yaml");
        link_at(t->dir, "current", "rev-1");
        char *root = xasprintf("%s/current", t->dir);
        char *rev = xasprintf("%s/rev-1", t->dir);

        _cleanup_scan_result_ ScanResult r = SCAN_RESULT_INIT;
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(scan_root(&r, root, "current", &d), 0);
        static const char *const expected[] = { "a.yaml", "shared/b.yaml" };
        assert_files(&r, expected, 2);
        assert_int_equal(d.n, 0);
        assert_string_equal(r.roots[0].real, rev);
        free(root);
        free(rev);
}

static void test_depth_limit(void **state) {
        Tmp *t = *state;
        /* a file at every level 0..MAX+1 */
        char *rel = strdup("f.yaml");
        char *dir = strdup("");
        for (int i = 0; i <= MANIFEST_MAX_DIR_DEPTH + 1; i++) {
                char *p = *dir ? xasprintf("%s/f.yaml", dir) : strdup("f.yaml");
                put(t->root, p, "");
                free(p);
                char *next = *dir ? xasprintf("%s/d", dir) : strdup("d");
                free(dir);
                dir = next;
        }
        free(rel);
        free(dir);

        _cleanup_scan_result_ ScanResult r = SCAN_RESULT_INIT;
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(scan_root(&r, t->root, "m", &d), 0);
        /* levels 0..MAX are read; the directory at MAX+1 is refused */
        assert_int_equal(r.n_files, MANIFEST_MAX_DIR_DEPTH + 1);
        assert_int_equal(d.n, 1);
        assert_int_equal(d.n_errors, 1);
        char *expect = strdup("m");
        for (int i = 0; i < MANIFEST_MAX_DIR_DEPTH + 1; i++) {
                char *n = xasprintf("%s/d", expect);
                free(expect);
                expect = n;
        }
        assert_string_equal(d.items[0].file, expect);
        assert_string_equal(d.items[0].message, "directories nested deeper than 16 levels; not read");
        free(expect);
}

static void test_too_many_files(void **state) {
        Tmp *t = *state;
        int dfd = open(t->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        for (int i = 0; i <= MANIFEST_MAX_FILES; i++) {
                char name[32];
                snprintf(name, sizeof name, "f%05d.yaml", i);
                int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                assert_true(fd >= 0);
                close(fd);
        }
        close(dfd);

        _cleanup_scan_result_ ScanResult r = SCAN_RESULT_INIT;
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(scan_root(&r, t->root, "m", &d), 0);
        assert_true(r.truncated);
        assert_int_equal(r.n_files, MANIFEST_MAX_FILES);
        assert_string_equal(r.files[0].path, "f00000.yaml");
        assert_string_equal(r.files[MANIFEST_MAX_FILES - 1].path, "f09999.yaml");
        assert_int_equal(d.n, 1);
        assert_string_equal(d.items[0].file, "m");
        assert_int_equal(d.items[0].line, 0);
        assert_string_equal(d.items[0].message, "more than 10000 manifest files; only the first 10000 are read");

        /* a second root adds nothing once the limit is reached */
        put(t->dir, "more/x.yaml", "");
        char *more = xasprintf("%s/more", t->dir);
        assert_int_equal(scan_root(&r, more, "more", &d), 0);
        assert_int_equal(r.n_files, MANIFEST_MAX_FILES);
        assert_int_equal(r.n_roots, 2);
        free(more);
}

static void test_fifo_skipped(void **state) {
        Tmp *t = *state;
        put(t->root, "a.yaml", "");
        char *p = xasprintf("%s/pipe.yaml", t->root);
        assert_int_equal(mkfifo(p, 0644), 0);
        free(p);
        p = xasprintf("%s/pipe.txt", t->root);
        assert_int_equal(mkfifo(p, 0644), 0);
        free(p);

        _cleanup_scan_result_ ScanResult r = SCAN_RESULT_INIT;
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(scan_root(&r, t->root, "m", &d), 0);  /* and did not block */
        static const char *const expected[] = { "a.yaml" };
        assert_files(&r, expected, 1);
        assert_int_equal(d.n, 1);
        assert_int_equal(d.n_warnings, 1);
        assert_string_equal(d.items[0].file, "m/pipe.yaml");
        assert_string_equal(d.items[0].message, "a fifo, not a regular file; skipped");
}

/* Root ignores permissions: check the unreadable directory as nobody, in a child. */
static void test_unreadable_dir(void **state) {
        Tmp *t = *state;
        put(t->root, "a.yaml", "");
        put(t->root, "locked/b.yaml", "");
        put(t->root, "z.yaml", "");
        char *locked = xasprintf("%s/locked", t->root);
        assert_int_equal(chmod(locked, 0), 0);
        free(locked);
        assert_int_equal(chmod(t->dir, 0755), 0);

        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (geteuid() == 0 &&
                    (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                     setresuid(65534, 65534, 65534) < 0))
                        _exit(10);
                ScanResult r = SCAN_RESULT_INIT;
                Diags d = DIAGS_INIT;
                int ret = 0;
                if (scan_root(&r, t->root, "m", &d) < 0)
                        ret = 11;
                else if (r.n_files != 2 || !streq(r.files[0].path, "a.yaml") || !streq(r.files[1].path, "z.yaml"))
                        ret = 12;
                else if (d.n != 1 || d.n_errors != 1 || !streq(d.items[0].file, "m/locked") ||
                         !streq(d.items[0].message, "cannot open directory: Permission denied"))
                        ret = 13;
                scan_result_clear(&r);
                diags_clear(&d);
                _exit(ret);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_root_kinds(void **state) {
        Tmp *t = *state;
        put(t->root, "one.yaml", "");
        char *file = xasprintf("%s/one.yaml", t->root);
        char *missing = xasprintf("%s/missing", t->root);
        char *fifo = xasprintf("%s/fifo", t->root);
        assert_int_equal(mkfifo(fifo, 0644), 0);

        _cleanup_scan_result_ ScanResult r = SCAN_RESULT_INIT;
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(scan_root(&r, missing, "missing", &d), -ENOENT);
        assert_int_equal(scan_root(&r, fifo, "fifo", &d), -EINVAL);
        assert_int_equal(r.n_roots, 0);
        /* a single file is its own root, any name (check takes files) */
        assert_int_equal(scan_root(&r, file, "one.yaml", &d), 0);
        assert_int_equal(r.n_roots, 1);
        assert_true(r.roots[0].is_file);
        assert_int_equal(r.roots[0].fd, -1);
        assert_int_equal(r.n_files, 1);
        assert_string_equal(r.files[0].path, "");
        /* the directory holding it adds the file only once */
        assert_int_equal(scan_root(&r, t->root, "m", &d), 0);
        assert_int_equal(r.n_roots, 2);
        assert_int_equal(r.n_files, 1);
        assert_int_equal(d.n, 0);
        free(file);
        free(missing);
        free(fifo);
}

static void test_scan_file(void **state) {
        Tmp *t = *state;
        put(t->root, "a.yaml", "");
        put(t->root, "sub/b.yaml", "");
        put(t->root, ".git/c.yaml", "");
        put(t->root, "x.txt", "");
        put(t->dir, "outside/o.yaml", "");
        put(t->dir, "outside/p.yaml", "");
        link_at(t->root, "evil.yaml", "../outside/o.yaml");
        link_at(t->root, "evildir", "../outside");
        link_at(t->root, "good.yaml", "sub/b.yaml");
        char *fifo = xasprintf("%s/pipe.yaml", t->root);
        assert_int_equal(mkfifo(fifo, 0644), 0);
        free(fifo);

        _cleanup_scan_result_ ScanResult r = SCAN_RESULT_INIT;
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(scan_root(&r, t->root, "m", &d), 0);
        diags_clear(&d);

        ScanFile f = {};
        assert_int_equal(scan_file(&r.roots[0], 0, "a.yaml", "m", &d, &f), 1);
        assert_string_equal(f.path, "a.yaml");
        struct stat st;
        char *p = xasprintf("%s/a.yaml", t->root);
        assert_int_equal(stat(p, &st), 0);
        free(p);
        assert_int_equal(f.ino, st.st_ino);
        assert_int_equal(f.size, st.st_size);
        scan_file_done(&f);
        assert_int_equal(scan_file(&r.roots[0], 0, "sub/b.yaml", "m", &d, &f), 1);
        scan_file_done(&f);
        assert_int_equal(scan_file(&r.roots[0], 0, "good.yaml", "m", &d, &f), 1);
        scan_file_done(&f);
        assert_int_equal(d.n, 0);

        /* not manifests: no diagnostic */
        static const char *const nots[] = {
                ".git/c.yaml", "x.txt", "missing.yaml", "sub", "sub/missing/x.yaml", "a.yaml/x.yaml",
                "../root/a.yaml", "/a.yaml", "", "sub//b.yaml",
        };
        for (size_t i = 0; i < ELEMENTSOF(nots); i++)
                assert_int_equal(scan_file(&r.roots[0], 0, nots[i], "m", &d, &f), 0);
        assert_int_equal(d.n, 0);

        /* refused, with the walk's diagnostics */
        assert_int_equal(scan_file(&r.roots[0], 0, "evil.yaml", "m", &d, &f), 0);
        assert_int_equal(scan_file(&r.roots[0], 0, "evildir/p.yaml", "m", &d, &f), 0);
        assert_int_equal(scan_file(&r.roots[0], 0, "pipe.yaml", "m", &d, &f), 0);
        assert_int_equal(d.n, 3);
        assert_non_null(find_diag(&d, "m/evil.yaml", "symlink leads outside the manifests directory"));
        assert_non_null(find_diag(&d, "m/evildir", "symlink leads outside the manifests directory"));
        assert_non_null(find_diag(&d, "m/pipe.yaml", "a fifo, not a regular file; skipped"));
        assert_int_equal(d.n_warnings, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_display_path),
                cmocka_unit_test_setup_teardown(test_collects_sorted_and_ignores, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlink_outside_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlink_inside_followed_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlink_only_path, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlink_dangling, setup, teardown),
                cmocka_unit_test_setup_teardown(test_root_symlink_resolved, setup, teardown),
                cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_too_many_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fifo_skipped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unreadable_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_root_kinds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_scan_file, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
