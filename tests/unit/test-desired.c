/* lib/desired.c on real temporary trees: the unique-by-name valid set, duplicate
 * names across files, re-parsing only what changed (counted through --wrap), one-file
 * updates, single-file roots, several roots, the git-sync symlink swap, and a file
 * swapped for a symlink between the walk and the read (with openat2() and without). */
/* LDFLAGS: -Wl,--wrap=manifest_parse_file -Wl,--wrap=syscall */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "config.h"
#include "desired.h"
#include "limits.h"
#include "manifest.h"
#include "util.h"

#include "openat2-switch.h"

/* Every parse goes through here: the tests count them, and a test can change the tree
 * between the walk and the read (once: the hook is cleared before it runs). */
static unsigned n_parses;
static void (*before_read)(const char *base);
static const char *before_read_base;
int __real_manifest_parse_file(int dirfd, const char *path, const char *display_path,
                               const ManifestPolicy *policy, Diags *diags, SpecList *specs,
                               ManifestResult *ret_result);
int __wrap_manifest_parse_file(int dirfd, const char *path, const char *display_path,
                               const ManifestPolicy *policy, Diags *diags, SpecList *specs,
                               ManifestResult *ret_result);
int __wrap_manifest_parse_file(int dirfd, const char *path, const char *display_path,
                               const ManifestPolicy *policy, Diags *diags, SpecList *specs,
                               ManifestResult *ret_result) {
        n_parses++;
        if (before_read) {
                void (*hook)(const char *) = before_read;
                before_read = NULL;
                hook(before_read_base);
        }
        return __real_manifest_parse_file(dirfd, path, display_path, policy, diags, specs, ret_result);
}


typedef struct Tmp {
        char *dir;
        char *root;
} Tmp;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        return remove(path) < 0 ? -1 : 0;
}

static int setup(void **state) {
        Tmp *t = calloc(1, sizeof(*t));
        assert_non_null(t);
        t->dir = strdup("/tmp/test-desired-XXXXXX");
        assert_non_null(mkdtemp(t->dir));
        t->root = xasprintf("%s/root", t->dir);
        assert_int_equal(mkdir(t->root, 0755), 0);
        n_parses = 0;
        before_read = NULL;
        openat2_errno = 0;
        n_openat2 = 0;
        *state = t;
        return 0;
}

static int teardown(void **state) {
        Tmp *t = *state;
        nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(t->root);
        free(t->dir);
        free(t);
        return 0;
}

static void put(const char *base, const char *rel, const char *content) {
        char *path = xasprintf("%s/%s", base, rel);
        assert_non_null(path);
        for (char *p = path + strlen(base) + 1; (p = strchr(p, '/')); p++) {
                *p = '\0';
                if (mkdir(path, 0755) < 0)
                        assert_int_equal(errno, EEXIST);
                *p = '/';
        }
        /* replace, never rewrite in place: a new inode, like git and editors do */
        char *tmp = xasprintf("%s.new~", path);
        FILE *f = fopen(tmp, "we");
        assert_non_null(f);
        fputs(content, f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(rename(tmp, path), 0);
        free(tmp);
        free(path);
}

static void rm_at(const char *base, const char *rel) {
        char *path = xasprintf("%s/%s", base, rel);
        assert_int_equal(unlink(path), 0);
        free(path);
}

/* A valid manifest document with this name (one line per key: the name's value is at
 * column 7 of the document's first line). */
#define DOC(name)                                   \
        "name: " name "\n"                          \
        "profile_id: Python3\n"                     \
        "flavor: modelarts.vm.cpu.2u\n"             \
        "spec:\n"                                   \
        "  storage:\n"                              \
        "    type: evs\n"
/* Invalid: the required name is missing. */
#define BAD_DOC                                     \
        "profile_id: Python3\n"                     \
        "flavor: modelarts.vm.cpu.2u\n"             \
        "spec:\n"                                   \
        "  storage:\n"                              \
        "    type: evs\n"

static void assert_names(const DesiredSet *s, const char *const *names, size_t n) {
        size_t k;
        const NotebookSpec *const *specs = desired_set_specs(s, &k);
        for (size_t i = 0; i < k && i < n; i++)
                assert_string_equal(specs[i]->name, names[i]);
        assert_int_equal(k, n);
}

static void assert_stats(const DesiredSet *s, size_t files, size_t docs, size_t valid, size_t invalid) {
        DesiredStats st;
        desired_set_stats(s, &st);
        assert_int_equal(st.n_files, files);
        assert_int_equal(st.n_documents, docs);
        assert_int_equal(st.n_valid, valid);
        assert_int_equal(st.n_invalid, invalid);
}

static const NotebookSpec *spec_named(const DesiredSet *s, const char *name) {
        size_t k;
        const NotebookSpec *const *specs = desired_set_specs(s, &k);
        for (size_t i = 0; i < k; i++)
                if (streq(specs[i]->name, name))
                        return specs[i];
        return NULL;
}

static void test_basic(void **state) {
        Tmp *t = *state;
        put(t->root, "b.yaml", DOC("b"));
        put(t->root, "a.yaml", DOC("a2") "---\n" DOC("a1"));
        put(t->root, "sub/c.yml", DOC("c"));
        put(t->root, "README.md", "not yaml: [");
        put(t->root, ".git/x.yaml", "not yaml: [");

        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m/", NULL, &s), 0);
        assert_names(s, NULL, 0);  /* nothing before the first scan */
        assert_int_equal(desired_set_rescan(s), 0);
        static const char *const names[] = { "a1", "a2", "b", "c" };
        assert_names(s, names, ELEMENTSOF(names));
        assert_stats(s, 3, 4, 4, 0);
        assert_int_equal(desired_set_diags(s)->n, 0);
        assert_int_equal(n_parses, 3);
        const NotebookSpec *c = spec_named(s, "c");
        assert_string_equal(c->file, "m/sub/c.yml");
        const NotebookSpec *a1 = spec_named(s, "a1");
        assert_string_equal(a1->file, "m/a.yaml");
        assert_int_equal(a1->name_pos.line, 8);
        assert_int_equal(a1->name_pos.column, 7);
}

static void test_duplicates(void **state) {
        Tmp *t = *state;
        put(t->root, "x.yaml", DOC("dup"));
        put(t->root, "sub/y.yaml", DOC("other") "---\n" DOC("dup"));
        put(t->root, "z.yaml", DOC("ok"));

        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", NULL, &s), 0);
        assert_int_equal(desired_set_rescan(s), 0);
        static const char *const names[] = { "ok", "other" };
        assert_names(s, names, ELEMENTSOF(names));
        assert_stats(s, 3, 4, 2, 2);
        const Diags *d = desired_set_diags(s);
        assert_int_equal(d->n, 2);
        assert_int_equal(d->n_errors, 2);
        /* sorted by file: "m/sub/y.yaml" < "m/x.yaml" */
        assert_string_equal(d->items[0].file, "m/sub/y.yaml");
        assert_int_equal(d->items[0].line, 8);
        assert_int_equal(d->items[0].column, 7);
        assert_string_equal(d->items[0].message, "duplicate name 'dup', also defined at m/x.yaml:1:7");
        assert_string_equal(d->items[1].file, "m/x.yaml");
        assert_int_equal(d->items[1].line, 1);
        assert_string_equal(d->items[1].message, "duplicate name 'dup', also defined at m/sub/y.yaml:8:7");

        /* removing one makes the other desired again */
        rm_at(t->root, "x.yaml");
        assert_int_equal(desired_set_rescan(s), 0);
        static const char *const names2[] = { "dup", "ok", "other" };
        assert_names(s, names2, ELEMENTSOF(names2));
        assert_int_equal(desired_set_diags(s)->n, 0);
        assert_stats(s, 2, 3, 3, 0);
}

static void test_duplicates_in_one_file_and_three_places(void **state) {
        Tmp *t = *state;
        put(t->root, "a.yaml", DOC("n") "---\n" DOC("n"));
        put(t->root, "b.yaml", DOC("n"));

        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", NULL, &s), 0);
        assert_int_equal(desired_set_rescan(s), 0);
        assert_names(s, NULL, 0);
        const Diags *d = desired_set_diags(s);
        assert_int_equal(d->n, 3);
        assert_string_equal(d->items[0].message, "duplicate name 'n', also defined at m/a.yaml:8:7 and 1 other place");
        assert_string_equal(d->items[1].message, "duplicate name 'n', also defined at m/a.yaml:1:7 and 1 other place");
        assert_string_equal(d->items[2].file, "m/b.yaml");
        assert_string_equal(d->items[2].message, "duplicate name 'n', also defined at m/a.yaml:1:7 and 1 other place");
        assert_stats(s, 2, 3, 0, 3);
}

static void test_invalid_documents_and_sorting(void **state) {
        Tmp *t = *state;
        put(t->root, "b.yaml", DOC("b1") "---\n" BAD_DOC);
        put(t->root, "a.yaml", BAD_DOC);
        put(t->root, "c.yaml", DOC("c"));
        char *fifo = xasprintf("%s/a0.yaml", t->root);
        assert_int_equal(mkfifo(fifo, 0644), 0);
        free(fifo);

        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", NULL, &s), 0);
        assert_int_equal(desired_set_rescan(s), 0);
        static const char *const names[] = { "b1", "c" };
        assert_names(s, names, ELEMENTSOF(names));
        assert_stats(s, 3, 4, 2, 2);
        const Diags *d = desired_set_diags(s);
        assert_int_equal(d->n_warnings, 1);
        assert_true(d->n_errors >= 2);
        /* file order, whoever produced them: the walk (a0.yaml) or the parser */
        size_t first_other = 0;
        while (first_other < d->n && streq(d->items[first_other].file, "m/a.yaml"))
                first_other++;
        assert_true(first_other >= 1);
        assert_true(first_other < d->n);
        assert_string_equal(d->items[first_other].file, "m/a0.yaml");
        assert_int_equal(d->items[first_other].severity, DIAG_WARNING);
        assert_string_equal(d->items[d->n - 1].file, "m/b.yaml");
        for (size_t i = 1; i < d->n; i++) {
                int c = strcmp(d->items[i - 1].file, d->items[i].file);
                assert_true(c < 0 || (c == 0 && d->items[i - 1].line <= d->items[i].line));
        }
}

static void test_rescan_reparses_only_changes(void **state) {
        Tmp *t = *state;
        put(t->root, "a.yaml", DOC("a"));
        put(t->root, "b.yaml", DOC("b"));
        put(t->root, "c.yaml", DOC("c"));

        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", NULL, &s), 0);
        assert_int_equal(desired_set_rescan(s), 0);
        assert_int_equal(n_parses, 3);
        const NotebookSpec *a = spec_named(s, "a");

        n_parses = 0;
        assert_int_equal(desired_set_rescan(s), 0);
        assert_int_equal(n_parses, 0);
        assert_ptr_equal(spec_named(s, "a"), a);  /* kept as it was, not re-read */

        put(t->root, "b.yaml", DOC("b-renamed"));  /* new inode and size */
        rm_at(t->root, "c.yaml");
        put(t->root, "d.yaml", DOC("d"));
        n_parses = 0;
        assert_int_equal(desired_set_rescan(s), 0);
        assert_int_equal(n_parses, 2);
        static const char *const names[] = { "a", "b-renamed", "d" };
        assert_names(s, names, ELEMENTSOF(names));

        /* only the modification time changed: read again */
        char *p = xasprintf("%s/a.yaml", t->root);
        struct timespec times[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
        assert_int_equal(utimensat(AT_FDCWD, p, times, 0), 0);
        free(p);
        n_parses = 0;
        assert_int_equal(desired_set_rescan(s), 0);
        assert_int_equal(n_parses, 1);
        assert_names(s, names, ELEMENTSOF(names));
}

static void test_failed_rescan_keeps_state(void **state) {
        Tmp *t = *state;
        put(t->root, "a.yaml", DOC("a"));
        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", NULL, &s), 0);
        assert_int_equal(desired_set_rescan(s), 0);

        char *moved = xasprintf("%s/moved", t->dir);
        assert_int_equal(rename(t->root, moved), 0);
        assert_int_equal(desired_set_rescan(s), -ENOENT);
        static const char *const names[] = { "a" };
        assert_names(s, names, 1);
        assert_stats(s, 1, 1, 1, 0);

        assert_int_equal(rename(moved, t->root), 0);
        n_parses = 0;
        assert_int_equal(desired_set_rescan(s), 0);
        assert_int_equal(n_parses, 0);  /* same files, same identities */
        assert_names(s, names, 1);
        free(moved);
}

static void test_update_file(void **state) {
        Tmp *t = *state;
        put(t->root, "a.yaml", DOC("a"));
        put(t->dir, "outside.yaml", DOC("outside"));

        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", NULL, &s), 0);
        /* before any scan: a full scan */
        assert_int_equal(desired_set_update_file(s, "a.yaml"), 0);
        assert_int_equal(n_parses, 1);

        /* new file, in a new directory */
        put(t->root, "sub/b.yaml", DOC("b"));
        n_parses = 0;
        assert_int_equal(desired_set_update_file(s, "sub/b.yaml"), 0);
        assert_int_equal(n_parses, 1);
        static const char *const ab[] = { "a", "b" };
        assert_names(s, ab, 2);
        assert_stats(s, 2, 2, 2, 0);

        /* an unchanged-looking file is read again: the caller saw it change */
        n_parses = 0;
        assert_int_equal(desired_set_update_file(s, "a.yaml"), 0);
        assert_int_equal(n_parses, 1);
        assert_names(s, ab, 2);

        /* a duplicate appears, then goes */
        put(t->root, "c.yaml", DOC("a"));
        assert_int_equal(desired_set_update_file(s, "c.yaml"), 0);
        static const char *const b[] = { "b" };
        assert_names(s, b, 1);
        assert_int_equal(desired_set_diags(s)->n_errors, 2);
        rm_at(t->root, "c.yaml");
        assert_int_equal(desired_set_update_file(s, "c.yaml"), 0);
        assert_names(s, ab, 2);
        assert_int_equal(desired_set_diags(s)->n, 0);

        /* not manifests: ignored, no parse */
        put(t->root, ".hidden.yaml", DOC("h"));
        put(t->root, "x.yaml.swp", DOC("h"));
        n_parses = 0;
        assert_int_equal(desired_set_update_file(s, ".hidden.yaml"), 0);
        assert_int_equal(desired_set_update_file(s, "x.yaml.swp"), 0);
        assert_int_equal(desired_set_update_file(s, "missing.yaml"), 0);
        assert_int_equal(n_parses, 0);
        assert_names(s, ab, 2);

        /* a file replaced by a symlink leading outside: dropped, with the diagnostic;
         * then fixed: the stale diagnostic goes */
        rm_at(t->root, "sub/b.yaml");
        char *link = xasprintf("%s/sub/b.yaml", t->root);
        assert_int_equal(symlink("../../outside.yaml", link), 0);
        assert_int_equal(desired_set_update_file(s, "sub/b.yaml"), 0);
        static const char *const a[] = { "a" };
        assert_names(s, a, 1);
        const Diags *d = desired_set_diags(s);
        assert_int_equal(d->n, 1);
        assert_string_equal(d->items[0].file, "m/sub/b.yaml");
        assert_string_equal(d->items[0].message, "symlink leads outside the manifests directory");
        assert_int_equal(unlink(link), 0);
        free(link);
        put(t->root, "sub/b.yaml", DOC("b"));
        assert_int_equal(desired_set_update_file(s, "sub/b.yaml"), 0);
        assert_names(s, ab, 2);
        assert_int_equal(desired_set_diags(s)->n, 0);

        /* and a full rescan agrees with the updates */
        n_parses = 0;
        assert_int_equal(desired_set_rescan(s), 0);
        assert_int_equal(n_parses, 0);
        assert_names(s, ab, 2);
}

static void test_single_file_root(void **state) {
        Tmp *t = *state;
        put(t->root, "one.txt", DOC("x") "---\n" DOC("y"));  /* named explicitly: any name */
        char *file = xasprintf("%s/one.txt", t->root);
        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(file, "given/one.txt", NULL, &s), 0);
        assert_int_equal(desired_set_rescan(s), 0);
        static const char *const names[] = { "x", "y" };
        assert_names(s, names, 2);
        assert_stats(s, 1, 2, 2, 0);
        assert_string_equal(spec_named(s, "y")->file, "given/one.txt");

        put(t->root, "one.txt", DOC("z"));
        assert_int_equal(desired_set_update_file(s, ""), 0);
        static const char *const z[] = { "z" };
        assert_names(s, z, 1);
        free(file);
}

static void test_several_roots(void **state) {
        Tmp *t = *state;
        put(t->root, "a.yaml", DOC("a"));
        put(t->root, "sub/b.yaml", DOC("b"));
        put(t->dir, "other/c.yaml", DOC("a"));
        char *other = xasprintf("%s/other", t->dir), *sub = xasprintf("%s/sub", t->root);
        char *file = xasprintf("%s/a.yaml", t->root);

        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", NULL, &s), 0);
        /* named twice: read once */
        assert_int_equal(desired_set_add_root(s, sub, "m/sub/"), 0);
        assert_int_equal(desired_set_add_root(s, file, "m/a.yaml"), 0);
        assert_int_equal(desired_set_rescan(s), 0);
        static const char *const ab[] = { "a", "b" };
        assert_names(s, ab, 2);
        assert_stats(s, 2, 2, 2, 0);

        /* names are unique across roots */
        assert_int_equal(desired_set_add_root(s, other, "o"), 0);
        assert_int_equal(desired_set_rescan(s), 0);
        static const char *const b[] = { "b" };
        assert_names(s, b, 1);
        const Diags *d = desired_set_diags(s);
        assert_int_equal(d->n, 2);
        assert_string_equal(d->items[0].file, "m/a.yaml");
        assert_string_equal(d->items[0].message, "duplicate name 'a', also defined at o/c.yaml:1:7");
        assert_string_equal(d->items[1].file, "o/c.yaml");
        free(other);
        free(sub);
        free(file);
}

/* git-sync: manifests -> rev-1, then a new revision swapped in with one rename. */
static void test_symlink_swap(void **state) {
        Tmp *t = *state;
        put(t->dir, "rev-1/a.yaml", DOC("a"));
        put(t->dir, "rev-1/b.yaml", DOC("b"));
        char *current = xasprintf("%s/current", t->dir), *tmp = xasprintf("%s/current.tmp", t->dir);
        assert_int_equal(symlink("rev-1", current), 0);

        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(current, "current", NULL, &s), 0);
        assert_int_equal(desired_set_rescan(s), 0);
        static const char *const ab[] = { "a", "b" };
        assert_names(s, ab, 2);

        put(t->dir, "rev-2/a.yaml", DOC("a"));
        put(t->dir, "rev-2/c.yaml", DOC("c"));
        assert_int_equal(symlink("rev-2", tmp), 0);
        assert_int_equal(rename(tmp, current), 0);
        n_parses = 0;
        assert_int_equal(desired_set_rescan(s), 0);
        assert_int_equal(n_parses, 2);  /* a new tree: new inodes */
        static const char *const ac[] = { "a", "c" };
        assert_names(s, ac, 2);
        assert_string_equal(spec_named(s, "c")->file, "current/c.yaml");

        /* update_file reads in the tree of the last rescan */
        put(t->dir, "rev-2/d.yaml", DOC("d"));
        assert_int_equal(desired_set_update_file(s, "d.yaml"), 0);
        static const char *const acd[] = { "a", "c", "d" };
        assert_names(s, acd, 3);
        free(current);
        free(tmp);
}

/* base/rel becomes a symlink to target, atomically (rename over it, as an attacker would). */
static void swap_for_symlink(const char *base, const char *rel, const char *target) {
        char *path = xasprintf("%s/%s", base, rel), *tmp = xasprintf("%s/%s.swap~", base, rel);
        assert_int_equal(symlink(target, tmp), 0);
        assert_int_equal(rename(tmp, path), 0);
        free(path);
        free(tmp);
}

/* A directory swapped for a symlink: moved away, the symlink put in its place. */
static void swap_dir_for_symlink(const char *base, const char *rel, const char *target) {
        char *path = xasprintf("%s/%s", base, rel), *old = xasprintf("%s/%s.old~", base, rel);
        assert_int_equal(rename(path, old), 0);
        assert_int_equal(symlink(target, path), 0);
        free(path);
        free(old);
}

static void swap_file_out(const char *base) {
        swap_for_symlink(base, "a.yaml", "../outside/a.yaml");
}
static void swap_dir_out(const char *base) {
        swap_dir_for_symlink(base, "sub", "../outside");
}
static void retarget_link_out(const char *base) {
        swap_for_symlink(base, "current", "../outside");
}

static bool has_diag(const Diags *d, const char *file, const char *message) {
        for (size_t i = 0; i < d->n; i++)
                if (streq(d->items[i].file, file) && strstr(d->items[i].message, message))
                        return true;
        return false;
}

/* Nothing of the file outside the tree made it in: no spec, no message about it. */
static void assert_outside_unread(const DesiredSet *s) {
        assert_null(spec_named(s, "stolen"));
        const Diags *d = desired_set_diags(s);
        for (size_t i = 0; i < d->n; i++)
                assert_null(strstr(d->items[i].message, "stolen"));
}

/* The walk checks a path; the read must not follow it again: whatever is swapped for a
 * symlink in between (the file, a directory on the way, a checked symlink retargeted)
 * the read never leaves the tree, and says which file it could not read. */
static void read_after_swap(Tmp *t, bool fallback) {
        openat2_errno = fallback ? ENOSYS : 0;
        put(t->dir, "outside/a.yaml", DOC("stolen"));
        put(t->dir, "outside/b.yaml", DOC("stolen"));
        put(t->dir, "outside/x.yaml", DOC("stolen"));

        /* 1. the file itself, on a full rescan */
        put(t->root, "a.yaml", DOC("inside"));
        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", NULL, &s), 0);
        before_read = swap_file_out;
        before_read_base = t->root;
        assert_int_equal(desired_set_rescan(s), 0);
        assert_null(before_read);  /* the hook ran: the swap happened after the walk */
        assert_outside_unread(s);
        assert_true(has_diag(desired_set_diags(s), "m/a.yaml", "became a symlink after it was checked"));
        assert_stats(s, 1, 1, 0, 1);
        assert_true(n_openat2 > 0);

        /* 2. the same on the one-file path (the daemon's inotify): put it back, update,
         * swap again in between */
        put(t->root, "a.yaml", DOC("inside"));
        assert_int_equal(desired_set_update_file(s, "a.yaml"), 0);
        assert_non_null(spec_named(s, "inside"));
        before_read = swap_file_out;
        put(t->root, "a.yaml", DOC("inside"));  /* a change for update_file to read */
        assert_int_equal(desired_set_update_file(s, "a.yaml"), 0);
        assert_null(before_read);
        assert_outside_unread(s);
        assert_null(spec_named(s, "inside"));
        assert_true(has_diag(desired_set_diags(s), "m/a.yaml", "became a symlink after it was checked"));
        /* the next look at it sees the symlink for what it is */
        assert_int_equal(desired_set_update_file(s, "a.yaml"), 0);
        assert_true(has_diag(desired_set_diags(s), "m/a.yaml", "symlink leads outside the manifests directory"));
        rm_at(t->root, "a.yaml");

        /* 3. a directory on the way */
        put(t->root, "sub/b.yaml", DOC("inside"));
        before_read = swap_dir_out;
        assert_int_equal(desired_set_rescan(s), 0);
        assert_null(before_read);
        assert_outside_unread(s);
        assert_true(has_diag(desired_set_diags(s), "m/sub/b.yaml", "became a symlink after it was checked"));

        /* 4. a symlink inside the tree, checked by the walk, retargeted outside before
         * the read: what was checked is read (its target's real path), not the link */
        put(t->root, ".store/v1/x.yaml", DOC("inside"));
        char *current = xasprintf("%s/current", t->root);
        assert_int_equal(symlink(".store/v1", current), 0);
        free(current);
        before_read = retarget_link_out;
        assert_int_equal(desired_set_rescan(s), 0);
        assert_null(before_read);
        assert_outside_unread(s);
        const NotebookSpec *x = spec_named(s, "inside");
        assert_non_null(x);
        assert_string_equal(x->file, "m/current/x.yaml");
}

static void test_read_after_swap(void **state) {
        read_after_swap(*state, false);
}

static void test_read_after_swap_without_openat2(void **state) {
        read_after_swap(*state, true);
}

/* Symlinks inside the tree still work (the read goes to the checked target), with and
 * without openat2(). */
static void symlinks_inside(Tmp *t, bool fallback) {
        openat2_errno = fallback ? ENOSYS : 0;
        put(t->root, "real/a.yaml", DOC("a"));
        put(t->root, ".hidden/b.yaml", DOC("b"));
        char *l1 = xasprintf("%s/linked", t->root), *l2 = xasprintf("%s/real/b.yaml", t->root);
        assert_int_equal(symlink(".hidden", l1), 0);
        assert_int_equal(symlink("../.hidden/b.yaml", l2), 0);
        free(l1);
        free(l2);
        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", NULL, &s), 0);
        assert_int_equal(desired_set_rescan(s), 0);
        static const char *const ab[] = { "a", "b" };
        assert_names(s, ab, 2);
        assert_int_equal(desired_set_diags(s)->n, 0);
        /* the one-file path too: re-read through the link */
        assert_int_equal(desired_set_update_file(s, "linked/b.yaml"), 0);
        assert_names(s, ab, 2);
        assert_int_equal(desired_set_diags(s)->n, 0);
        assert_true(n_openat2 > 0);
}

static void test_symlinks_inside_read(void **state) {
        symlinks_inside(*state, false);
}

static void test_symlinks_inside_read_without_openat2(void **state) {
        symlinks_inside(*state, true);
}

static void test_many_files_linear(void **state) {
        Tmp *t = *state;
        /* more than the limit, all one name: the limit holds and every kept document is a
         * duplicate of every other (the resolve step must not go quadratic on this) */
        for (int i = 0; i <= MANIFEST_MAX_FILES; i++) {
                char name[32];
                snprintf(name, sizeof name, "d%02d/f%05d.yaml", i / 1000, i);
                put(t->root, name, DOC("same"));
        }
        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", NULL, &s), 0);
        assert_int_equal(desired_set_rescan(s), 0);
        assert_stats(s, MANIFEST_MAX_FILES, MANIFEST_MAX_FILES, 0, MANIFEST_MAX_FILES);
        const Diags *d = desired_set_diags(s);
        assert_int_equal(d->n, MANIFEST_MAX_FILES + 1);
        assert_string_equal(d->items[0].file, "m");
        assert_string_equal(d->items[0].message, "more than 10000 manifest files; only the first 10000 are read");
        assert_string_equal(d->items[1].file, "m/d00/f00000.yaml");
        assert_string_equal(d->items[1].message,
                            "duplicate name 'same', also defined at m/d00/f00001.yaml:1:7 and 9998 other places");
}

/* The host config's profiles:/flavors: reach every file's validation; the set keeps its
 * own copy of them; a changed policy re-parses every file, an equal one none. */
/* A manifest padded with comments to about 1 MiB (under the per-file limit). */
static void put_padded(const char *base, const char *rel, const char *name) {
        size_t pad = MANIFEST_MAX_FILE_SIZE - 8192;
        _cleanup_free_ char *doc = xasprintf(DOC("%s"), name);
        assert_non_null(doc);
        size_t n = strlen(doc);
        _cleanup_free_ char *text = malloc(n + pad + 1);
        assert_non_null(text);
        memcpy(text, doc, n);
        for (size_t i = 0; i < pad; i++)
                text[n + i] = i % 64 == 63 ? '\n' : '#';
        text[n + pad] = '\0';
        put(base, rel, text);
}

/* MANIFEST_MAX_TOTAL_SIZE: files are read in walk order until the total crosses it;
 * that file and the ones after it are left out, with one diagnostic on the first. */
static void test_total_size(void **state) {
        Tmp *t = *state;
        size_t per_file = MANIFEST_MAX_FILE_SIZE - 8192 + strlen(DOC("f-00"));
        size_t fit = MANIFEST_MAX_TOTAL_SIZE / per_file;
        assert_true(fit < 100);
        char rel[32], name[32];
        for (size_t i = 0; i <= fit + 1; i++) {
                snprintf(rel, sizeof rel, "f-%02zu.yaml", i);
                snprintf(name, sizeof name, "f-%02zu", i);
                put_padded(t->root, rel, name);
        }
        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", NULL, &s), 0);
        assert_int_equal(desired_set_rescan(s), 0);
        assert_stats(s, fit, fit, fit, 0);
        assert_int_equal(n_parses, fit);
        const Diags *d = desired_set_diags(s);
        assert_int_equal(d->n, 1);
        char file[32];
        snprintf(file, sizeof file, "m/f-%02zu.yaml", fit);
        assert_string_equal(d->items[0].file, file);
        assert_int_equal(d->items[0].line, 0);
        assert_string_equal(d->items[0].message,
                            "manifests total more than 67108864 bytes (limit per scan); this file and the 1 after it are not read");

        /* one file gone: the first one past the cut is read, by a rescan ... */
        rm_at(t->root, "f-00.yaml");
        assert_int_equal(desired_set_rescan(s), 0);
        assert_stats(s, fit, fit, fit, 0);
        snprintf(name, sizeof name, "f-%02zu", fit);
        assert_non_null(spec_named(s, name));
        d = desired_set_diags(s);
        assert_int_equal(d->n, 1);
        assert_string_equal(d->items[0].message,
                            "manifests total more than 67108864 bytes (limit per scan); this file is not read");

        /* ... and by a one-file update, which keeps to the same total */
        snprintf(rel, sizeof rel, "f-%02zu.yaml", fit + 1);
        assert_int_equal(desired_set_update_file(s, rel), 0);
        d = desired_set_diags(s);
        assert_int_equal(d->n, 1);
        assert_string_equal(d->items[0].message,
                            "manifests total more than 67108864 bytes (limit per scan); this file is not read");
        snprintf(rel, sizeof rel, "f-%02d.yaml", 1);
        rm_at(t->root, rel);
        assert_int_equal(desired_set_update_file(s, rel), 0);
        snprintf(rel, sizeof rel, "f-%02zu.yaml", fit + 1);
        assert_int_equal(desired_set_update_file(s, rel), 0);
        snprintf(name, sizeof name, "f-%02zu", fit + 1);
        assert_non_null(spec_named(s, name));
        assert_int_equal(desired_set_diags(s)->n, 0);
        assert_stats(s, fit, fit, fit, 0);
}

/* MANIFEST_MAX_DIAGNOSTICS: past it, a file read keeps its first diagnostic and a count. */
static void test_diagnostics_cap(void **state) {
        Tmp *t = *state;
        /* 101 each: 100 duplicate keys, then "too many errors" */
        char text[8 + 120 * 5 + 1] = "name: x\n";
        for (size_t i = 0; i < 120; i++)
                memcpy(text + 8 + i * 5, "a: 1\n", 6);  /* the last NUL ends it */
        size_t per_file = MANIFEST_MAX_ERRORS_PER_FILE + 1, fit = MANIFEST_MAX_DIAGNOSTICS / per_file;
        char rel[32];
        for (size_t i = 0; i < fit + 2; i++) {
                snprintf(rel, sizeof rel, "f-%03zu.yaml", i);
                put(t->root, rel, text);
        }
        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", NULL, &s), 0);
        assert_int_equal(desired_set_rescan(s), 0);
        const Diags *d = desired_set_diags(s);
        assert_int_equal(d->n, fit * per_file + 2 * 2);
        /* the last file: its count (line 0 sorts first), then its first error */
        const Diag *last = &d->items[d->n - 2];
        snprintf(rel, sizeof rel, "m/f-%03zu.yaml", fit + 1);
        assert_string_equal(last->file, rel);
        assert_int_equal(last->line, 0);
        assert_string_equal(last->message, "100 more problems in this file not shown (limit 10000 per scan); "
                                           "`notebookd check` on this file alone shows them");
        assert_int_equal(d->items[d->n - 1].line, 3);
        assert_stats(s, fit + 2, fit + 2, 0, fit + 2);
}

/* The daemon's scan thread stops a rescan between files: -ECANCELED, the set as it was. */
static void test_cancel(void **state) {
        Tmp *t = *state;
        put(t->root, "a.yaml", DOC("a"));
        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", NULL, &s), 0);
        atomic_bool cancel = false;
        assert_int_equal(desired_set_rescan_cancellable(s, &cancel), 0);
        static const char *const names[] = { "a" };
        assert_names(s, names, 1);

        put(t->root, "b.yaml", DOC("b"));
        put(t->root, "a.yaml", DOC("a2"));
        atomic_store(&cancel, true);
        n_parses = 0;
        assert_int_equal(desired_set_rescan_cancellable(s, &cancel), -ECANCELED);
        assert_int_equal(n_parses, 0);
        assert_names(s, names, 1);
        assert_stats(s, 1, 1, 1, 0);

        atomic_store(&cancel, false);
        assert_int_equal(desired_set_rescan_cancellable(s, &cancel), 0);
        static const char *const names2[] = { "a2", "b" };
        assert_names(s, names2, 2);
}


/* Each tenant's part of the tree is judged on its own for prune: a broken manifest of
 * one team holds that team (and, being no one's, a file under no tenant holds all),
 * never another team; a tenant with no valid manifest is held. */
static void test_tenant_problems(void **state) {
        Tmp *t = *state;
        put(t->root, "vision/a.yaml", DOC("vis-a"));
        put(t->root, "nlp/a.yaml", DOC("nlp-a"));
        put(t->root, "nlp/broken.yaml", "name: [\n");
        Tenant items[3] = {
                { .name = (char *) "vision", .path = (char *) "vision/", .name_prefix = (char *) "vis-" },
                { .name = (char *) "nlp", .path = (char *) "nlp/", .name_prefix = (char *) "nlp-" },
                { .name = (char *) "empty", .path = (char *) "empty/" },
        };
        TenantList tenants = { .items = items, .n = 3 };
        ManifestPolicy policy = { .source = "c.yaml", .tenants = &tenants };
        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", &policy, &s), 0);
        assert_int_equal(desired_set_rescan(s), 0);
        _cleanup_free_ char *whole = NULL, *vision = NULL, *nlp = NULL, *empty = NULL, *unknown = NULL;
        assert_int_equal(desired_set_problem(s, &whole), 0);
        assert_int_equal(desired_set_problem_of(s, "vision", &vision), 0);
        assert_int_equal(desired_set_problem_of(s, "nlp", &nlp), 0);
        assert_int_equal(desired_set_problem_of(s, "empty", &empty), 0);
        assert_int_equal(desired_set_problem_of(s, "gone-tenant", &unknown), 0);
        assert_non_null(whole);
        assert_null(vision);
        assert_non_null(nlp);
        assert_non_null(strstr(nlp, "m/nlp/broken.yaml:"));
        assert_non_null(empty);
        assert_string_equal(empty, "no valid manifest under empty/");
        assert_non_null(unknown);   /* an unknown tenant: the whole tree's */

        /* a file under no tenant is no one's, so it holds every tenant */
        put(t->root, "stray.yaml", DOC("stray"));
        assert_int_equal(desired_set_rescan(s), 0);
        free(vision);
        vision = NULL;
        assert_int_equal(desired_set_problem_of(s, "vision", &vision), 0);
        assert_non_null(vision);
        assert_non_null(strstr(vision, "m/stray.yaml"));
}

static void test_policy(void **state) {
        Tmp *t = *state;
        put(t->root, "cpu.yaml", DOC("cpu"));
        put(t->root, "gpu.yaml",
            "name: gpu\nprofile_id: Python3-gpu\nflavor: modelarts.vm.gpu.p100\nspec:\n  storage:\n    type: evs\n");

        char *flavors[] = { strdup("modelarts.vm.cpu.*") };
        char *source = strdup("/etc/notebookd/notebookd.yaml");
        ManifestPolicy policy = { .source = source, .flavors = (const char *const *) flavors, .n_flavors = 1 };
        _cleanup_(desired_set_freep) DesiredSet *s = NULL;
        assert_int_equal(desired_set_new(t->root, "m", &policy, &s), 0);
        /* the set copied them: what the caller had may go (a config reload frees it) */
        free(flavors[0]);
        free(source);
        flavors[0] = strdup("garbage");

        assert_int_equal(desired_set_rescan(s), 0);
        static const char *const cpu[] = { "cpu" };
        assert_names(s, cpu, 1);
        const Diags *d = desired_set_diags(s);
        assert_int_equal(d->n, 1);
        assert_string_equal(d->items[0].file, "m/gpu.yaml");
        assert_int_equal(d->items[0].line, 3);
        assert_int_equal(d->items[0].column, 9);
        assert_string_equal(d->items[0].message,
                            "flavor 'modelarts.vm.gpu.p100' is not allowed by 'flavors' in /etc/notebookd/notebookd.yaml");
        assert_int_equal(n_parses, 2);

        /* the same policy again (another copy): nothing re-read */
        free(flavors[0]);
        flavors[0] = strdup("modelarts.vm.cpu.*");
        policy.source = "/etc/notebookd/notebookd.yaml";
        assert_int_equal(desired_set_set_policy(s, &policy), 0);
        assert_int_equal(desired_set_rescan(s), 0);
        assert_int_equal(n_parses, 2);

        /* no policy: every file read again, both valid */
        assert_int_equal(desired_set_set_policy(s, NULL), 0);
        assert_names(s, cpu, 1); /* unchanged until the next rescan */
        assert_int_equal(desired_set_rescan(s), 0);
        assert_int_equal(n_parses, 4);
        static const char *const both[] = { "cpu", "gpu" };
        assert_names(s, both, 2);
        assert_int_equal(desired_set_diags(s)->n, 0);

        /* a changed policy reaches an update_file too (it rescans) */
        static const char *const gpu_profiles[] = { "*-gpu" };
        ManifestPolicy p2 = { .source = "c.yaml", .profiles = gpu_profiles, .n_profiles = 1 };
        assert_int_equal(desired_set_set_policy(s, &p2), 0);
        assert_int_equal(desired_set_update_file(s, "cpu.yaml"), 0);
        assert_int_equal(n_parses, 6);
        static const char *const gpu[] = { "gpu" };
        assert_names(s, gpu, 1);
        d = desired_set_diags(s);
        assert_int_equal(d->n, 1);
        assert_string_equal(d->items[0].message, "profile_id 'Python3' is not allowed by 'profiles' in c.yaml");
        free(flavors[0]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
                cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_duplicates_in_one_file_and_three_places, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invalid_documents_and_sorting, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rescan_reparses_only_changes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failed_rescan_keeps_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_update_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_single_file_root, setup, teardown),
                cmocka_unit_test_setup_teardown(test_several_roots, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlink_swap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_after_swap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_after_swap_without_openat2, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlinks_inside_read, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlinks_inside_read_without_openat2, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many_files_linear, setup, teardown),
                cmocka_unit_test_setup_teardown(test_policy, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tenant_problems, setup, teardown),
                cmocka_unit_test_setup_teardown(test_total_size, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_diagnostics_cap, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
