/* daemon/watch.c with real inotify on real temporary directories, on a real sd_event loop.
 *
 * The loop runs until the awaited callback fires, never slept on. "No callback" is
 * proved by running the loop until the watcher is idle (nothing unread on its inotify fd,
 * no burst open): inotify queues events synchronously with the syscall that causes them,
 * so once the writing syscall has returned, a counted event would open a burst and the
 * loop would run until its callback. The event counter shows the events were read and
 * ignored, not missed. watch.c is compiled in (the daemon's files are not in the
 * library), which also lets tests look at its state and inject an overflow event. */
#include "../../daemon/watch.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <poll.h>
#include <time.h>

/* A safety net only (no test measures time): fail instead of hanging forever when an
 * awaited callback never comes. */
#define FAILURE_TIMEOUT_USEC (60ULL * 1000000ULL)

typedef struct Fixture Fixture;

struct Fixture {
        sd_event *e;
        sd_event_source *failure;
        bool timed_out;
        char *base;              /* the temporary directory */
        char *m;                 /* base/m: the usual manifests directory */
        Watch *w;
        unsigned calls;
        unsigned root_changes;
        bool last_root_changed;
        void (*on_call)(Fixture *f);  /* runs inside the callback */
        /* the writer of test_burst_in_loop / test_max_delay */
        unsigned written;
        unsigned written_at_last_call;
        /* watch_changed_files() as the latest callback saw it: "a.yaml,sub/b.yaml", or
         * "ALL" when the whole tree must be read */
        char files[512];
};

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

static int on_failure(sd_event_source *s, uint64_t usec, void *userdata) {
        Fixture *f = userdata;
        (void) s;
        (void) usec;
        f->timed_out = true;
        return 0;
}

static void on_change(Watch *w, bool root_changed, void *userdata) {
        Fixture *f = userdata;
        assert_ptr_equal(w, f->w);
        f->calls++;
        if (root_changed)
                f->root_changes++;
        f->last_root_changed = root_changed;
        f->written_at_last_call = f->written;
        char *const *files;
        size_t n;
        if (!watch_changed_files(w, &files, &n))
                snprintf(f->files, sizeof f->files, "ALL");
        else {
                f->files[0] = 0;
                for (size_t i = 0; i < n; i++)
                        snprintf(f->files + strlen(f->files), sizeof f->files - strlen(f->files), "%s%s",
                                 i ? "," : "", files[i]);
        }
        if (f->on_call)
                f->on_call(f);
}

static bool watcher_idle(Fixture *f) {
        struct pollfd p = { .fd = f->w->fd, .events = POLLIN };
        return !f->w->pending && poll(&p, 1, 0) == 0;
}

static void arm_failure(Fixture *f) {
        assert_int_equal(sd_event_source_set_time(f->failure, mono_usec() + FAILURE_TIMEOUT_USEC), 0);
        assert_int_equal(sd_event_source_set_enabled(f->failure, SD_EVENT_ONESHOT), 0);
}

static void run_until_calls(Fixture *f, unsigned n) {
        arm_failure(f);
        while (f->calls < n && !f->timed_out)
                assert_true(sd_event_run(f->e, UINT64_MAX) >= 0);
        assert_false(f->timed_out);
        assert_int_equal(f->calls, n);
}

/* Until every event caused so far has been read and any burst it opened reported. */
static void run_until_idle(Fixture *f) {
        arm_failure(f);
        while (f->w && !watcher_idle(f) && !f->timed_out)
                assert_true(sd_event_run(f->e, UINT64_MAX) >= 0);
        assert_false(f->timed_out);
}

/* Cause something, then prove it made no callback though the watcher read its events. */
#define assert_no_callback(f, ...)                                      \
        do {                                                            \
                unsigned calls_ = (f)->calls;                           \
                uint64_t events_ = (f)->w->n_events;                    \
                __VA_ARGS__;                                            \
                run_until_idle(f);                                      \
                assert_int_equal((f)->calls, calls_);                   \
                assert_true((f)->w->n_events > events_);                \
        } while (0)

static char *join(const char *a, const char *b) {
        char *p = xasprintf("%s/%s", a, b);
        assert_non_null(p);
        return p;
}

static void write_at(const char *dir, const char *rel, const char *content) {
        _cleanup_free_ char *p = join(dir, rel);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        size_t l = strlen(content);
        assert_int_equal(write(fd, content, l), (ssize_t) l);
        assert_int_equal(close(fd), 0);
}

static void mkdir_at(const char *dir, const char *rel) {
        _cleanup_free_ char *p = join(dir, rel);
        assert_int_equal(mkdir(p, 0755), 0);
}

static void rename_at(const char *dir, const char *from, const char *to) {
        _cleanup_free_ char *a = join(dir, from), *b = join(dir, to);
        assert_int_equal(rename(a, b), 0);
}

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        return type == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_rf(const char *p) {
        assert_int_equal(nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void start(Fixture *f, const char *path, int64_t debounce_ms, int64_t max_delay_ms) {
        assert_int_equal(watch_new(f->e, path, debounce_ms, max_delay_ms, on_change, f, &f->w), 0);
        assert_int_equal(watch_n_errors(f->w), 0);
}

static int fixture_setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->e), 0);
        assert_int_equal(sd_event_add_time(f->e, &f->failure, CLOCK_MONOTONIC, UINT64_MAX, 0, on_failure, f), 0);
        assert_int_equal(sd_event_source_set_enabled(f->failure, SD_EVENT_OFF), 0);
        const char *tmp = getenv("TMPDIR");
        f->base = xasprintf("%s/test-watch-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        assert_non_null(f->base);
        assert_non_null(mkdtemp(f->base));
        f->m = join(f->base, "m");
        assert_int_equal(mkdir(f->m, 0755), 0);
        *state = f;
        return 0;
}

static int fixture_teardown(void **state) {
        Fixture *f = *state;
        watch_free(f->w);
        sd_event_source_disable_unref(f->failure);
        sd_event_unref(f->e);
        rm_rf(f->base);
        free(f->base);
        free(f->m);
        free(f);
        return 0;
}

/* ---- tests ---- */

static void test_write_one_file(void **state) {
        Fixture *f = *state;
        start(f, f->m, 50, 1000);
        assert_int_equal(watch_n_watches(f->w), 2);  /* the guard (base, "m") and m */
        _cleanup_free_ char *real = realpath(f->m, NULL);
        assert_string_equal(watch_root(f->w), real);

        write_at(f->m, "a.yaml", "name: a\n");
        run_until_calls(f, 1);
        assert_false(f->last_root_changed);
        run_until_idle(f);
        assert_int_equal(f->calls, 1);

        /* rewritten in place, deleted, chmod: each a change */
        write_at(f->m, "a.yaml", "name: b\n");
        run_until_calls(f, 2);
        _cleanup_free_ char *a = join(f->m, "a.yaml");
        assert_int_equal(chmod(a, 0600), 0);
        run_until_calls(f, 3);
        assert_int_equal(unlink(a), 0);
        run_until_calls(f, 4);
        write_at(f->m, "b.yml", "name: b\n");
        run_until_calls(f, 5);
        run_until_idle(f);
        assert_int_equal(f->calls, 5);
        assert_int_equal(f->root_changes, 0);
        assert_int_equal(watch_n_errors(f->w), 0);
}

/* A burst that changed only manifest files names them (relative to the root), so the
 * daemon re-reads those instead of walking the tree; anything else, or too many, is
 * "read everything". */
static void test_changed_files(void **state) {
        Fixture *f = *state;
        mkdir_at(f->m, "sub");
        start(f, f->m, 50, 1000);
        write_at(f->m, "a.yaml", "name: a\n");
        write_at(f->m, "sub/b.yaml", "name: b\n");
        write_at(f->m, "a.yaml", "name: a2\n");   /* once in the list */
        write_at(f->m, "notes.txt", "not a manifest\n");
        run_until_calls(f, 1);
        assert_string_equal(f->files, "a.yaml,sub/b.yaml");

        _cleanup_free_ char *b = join(f->m, "sub/b.yaml");
        assert_int_equal(unlink(b), 0);
        run_until_calls(f, 2);
        assert_string_equal(f->files, "sub/b.yaml");

        /* a directory: everything */
        mkdir_at(f->m, "new");
        run_until_calls(f, 3);
        assert_string_equal(f->files, "ALL");

        /* more files than a list is worth: everything */
        for (unsigned i = 0; i < 100; i++) {
                char name[32];
                snprintf(name, sizeof name, "n%03u.yaml", i);
                write_at(f->m, name, "name: x\n");
        }
        run_until_calls(f, 4);
        run_until_idle(f);
        assert_string_equal(f->files, "ALL");

        /* and back to a list for the next burst */
        write_at(f->m, "a.yaml", "name: a3\n");
        run_until_calls(f, f->calls + 1);
        assert_string_equal(f->files, "a.yaml");
}

static void test_burst_before_loop(void **state) {
        Fixture *f = *state;
        start(f, f->m, 100, 1000);

        /* a git checkout faster than the loop: everything is queued before we read */
        for (unsigned i = 0; i < 500; i++) {
                char name[32];
                snprintf(name, sizeof(name), "n%03u.yaml", i);
                write_at(f->m, name, "name: x\n");
        }
        run_until_calls(f, 1);
        run_until_idle(f);
        /* every event (a create and a close-write per file) was read, and the burst was
         * one callback (a few at most, should a read be cut short) */
        assert_true(f->w->n_events >= 1000);
        assert_in_range(f->calls, 1, 3);
}

static int burst_writer(sd_event_source *s, void *userdata) {
        Fixture *f = userdata;
        for (unsigned i = 0; i < 50; i++) {
                char name[32];
                snprintf(name, sizeof(name), "n%03u.yaml", f->written);
                write_at(f->m, name, "name: x\n");
                f->written++;
        }
        (void) s;
        return 0;
}

/* Write the 500 files in chunks of 50, one chunk per dispatch, the watcher reading each
 * chunk whole before the next is written (alternation, not timing). Stops when all are
 * written and read, and (until_idle) the burst reported. */
static void run_chunks(Fixture *f, bool until_idle) {
        _cleanup_(sd_event_source_disable_unrefp) sd_event_source *writer = NULL;
        assert_int_equal(sd_event_add_defer(f->e, &writer, burst_writer, f), 0);
        assert_int_equal(sd_event_source_set_enabled(writer, SD_EVENT_OFF), 0);

        struct pollfd p = { .fd = f->w->fd, .events = POLLIN };
        arm_failure(f);
        while (!f->timed_out) {
                bool readable = poll(&p, 1, 0) > 0;
                if (!readable && f->written < 500)
                        assert_int_equal(sd_event_source_set_enabled(writer, SD_EVENT_ONESHOT), 0);
                else if (!readable && (!until_idle || !f->w->pending))
                        break;
                assert_true(sd_event_run(f->e, UINT64_MAX) >= 0);
        }
        assert_false(f->timed_out);
        assert_int_equal(f->written, 500);
}

static void test_burst_in_loop(void **state) {
        Fixture *f = *state;
        start(f, f->m, 100, 1000);

        /* 500 files in 10 chunks, the loop reading in between. Each chunk is read whole
         * in one dispatch, so each can open at most one burst: at most 10 callbacks
         * whatever the machine's speed (on any sane one: 1). */
        run_chunks(f, true);

        assert_in_range(f->calls, 1, 10);
        /* the last callback came after the last file: all 500 are covered */
        assert_int_equal(f->written_at_last_call, 500);
        assert_int_equal(f->root_changes, 0);
}

static void test_burst_pushed_out(void **state) {
        Fixture *f = *state;
        /* Quiet time and cap far beyond the test: each chunk, read in its own dispatch,
         * can only push the open burst's deadline out; none can end it. Speed-independent. */
        start(f, f->m, 10 * 60 * 1000, 20 * 60 * 1000);
        run_chunks(f, false);
        assert_int_equal(f->calls, 0);
        assert_true(f->w->pending);
        assert_true(f->w->n_events >= 1000);

        uint64_t at;
        assert_int_equal(sd_event_source_get_time(f->w->timer, &at), 0);
        assert_true(at > f->w->burst_start + f->w->debounce_usec);   /* pushed out */
        assert_true(at <= f->w->burst_start + f->w->max_delay_usec); /* within the cap */

        /* end the burst now: one callback for all 500 */
        assert_int_equal(sd_event_source_set_time(f->w->timer, 1), 0);
        run_until_calls(f, 1);
        run_until_idle(f);
        assert_int_equal(f->calls, 1);
        assert_int_equal(f->written_at_last_call, 500);
}

static int trickle(sd_event_source *s, uint64_t usec, void *userdata) {
        Fixture *f = userdata;
        (void) usec;
        write_at(f->m, "t.yaml", "name: t\n");
        f->written++;
        assert_int_equal(sd_event_source_set_time_relative(s, 5000), 0);
        assert_int_equal(sd_event_source_set_enabled(s, SD_EVENT_ONESHOT), 0);
        return 0;
}

static void test_max_delay(void **state) {
        Fixture *f = *state;
        /* A quiet time of 10 minutes never comes within the test's limit: only the
         * max_delay cap can make this callback, while the trickle goes on. */
        start(f, f->m, 10 * 60 * 1000, 200);
        _cleanup_(sd_event_source_disable_unrefp) sd_event_source *t = NULL;
        assert_int_equal(sd_event_add_time_relative(f->e, &t, CLOCK_MONOTONIC, 0, 1000, trickle, f), 0);

        run_until_calls(f, 1);
        assert_true(f->written >= 1);
        assert_false(f->last_root_changed);
}

static void test_burst_deadline(void **state) {
        (void) state;
        /* pushed out by each change... */
        assert_int_equal(burst_deadline(0, 0, 100, 1000), 100);
        assert_int_equal(burst_deadline(0, 500, 100, 1000), 600);
        /* ...but never past max_delay after the first */
        assert_int_equal(burst_deadline(0, 950, 100, 1000), 1000);
        assert_int_equal(burst_deadline(7, 5000, 100, 1000), 1007);
        assert_int_equal(burst_deadline(10, 10, 0, 0), 10);
}

static void test_ignored_names(void **state) {
        Fixture *f = *state;
        mkdir_at(f->m, ".old");
        mkdir_at(f->m, ".old/objects");
        mkdir_at(f->m, "backup~");
        start(f, f->m, 50, 1000);
        assert_int_equal(watch_n_watches(f->w), 2);  /* the guard and the root only */

        assert_no_callback(f, {
                write_at(f->m, ".old/objects/a.yaml", "x");
                write_at(f->m, "backup~/a.yaml", "x");
                write_at(f->m, ".hidden.yaml", "x");
                write_at(f->m, "a.yaml.swp", "x");
                write_at(f->m, ".a.yaml.swp", "x");
                write_at(f->m, "a.yaml~", "x");
                write_at(f->m, ".#a.yaml", "x");
                write_at(f->m, "a.tmp", "x");
                write_at(f->m, "README.md", "x");
                write_at(f->m, "yaml", "x");
        });
        /* .git and its churn: not watched at all */
        assert_no_callback(f, {
                mkdir_at(f->m, ".git");
                mkdir_at(f->m, ".git/objects");
                write_at(f->m, ".git/HEAD", "ref: refs/heads/main\n");
                write_at(f->m, ".git/objects/x.yaml", "x");
        });
        assert_int_equal(watch_n_watches(f->w), 2);
        /* not even read: no watch in .git */
        uint64_t events = f->w->n_events;
        write_at(f->m, ".git/index.yaml", "x");
        run_until_idle(f);
        assert_int_equal(f->w->n_events, events);
        assert_int_equal(f->calls, 0);

        /* the real one after them: one callback, for it */
        write_at(f->m, "real.yaml", "name: real\n");
        run_until_calls(f, 1);
        run_until_idle(f);
        assert_int_equal(f->calls, 1);
}

static void test_create_waits_for_close(void **state) {
        Fixture *f = *state;
        start(f, f->m, 50, 1000);

        _cleanup_free_ char *p = join(f->m, "slow.yaml");
        int fd;
        /* created, still being written: no callback yet */
        assert_no_callback(f, fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644); assert_true(fd >= 0));
        assert_int_equal(write(fd, "name: s\n", 8), 8);
        assert_int_equal(close(fd), 0);
        run_until_calls(f, 1);

        /* complete on creation: a symlink, a hard link */
        _cleanup_free_ char *l = join(f->m, "link.yaml"), *h = join(f->m, "hard.yaml");
        assert_int_equal(symlink("slow.yaml", l), 0);
        run_until_calls(f, 2);
        assert_int_equal(link(p, h), 0);
        run_until_calls(f, 3);
        run_until_idle(f);
        assert_int_equal(f->calls, 3);
}

static void test_subdirectories(void **state) {
        Fixture *f = *state;
        start(f, f->m, 50, 1000);

        mkdir_at(f->m, "sub");
        run_until_calls(f, 1);
        assert_int_equal(watch_n_watches(f->w), 3);
        write_at(f->m, "sub/a.yaml", "name: a\n");
        run_until_calls(f, 2);

        /* mkdir -p and a file, all before the watcher hears of "x": the walk finds them */
        mkdir_at(f->m, "x");
        mkdir_at(f->m, "x/y");
        mkdir_at(f->m, "x/y/z");
        write_at(f->m, "x/y/z/b.yaml", "name: b\n");
        run_until_calls(f, 3);
        run_until_idle(f);
        assert_int_equal(f->calls, 3);
        assert_int_equal(watch_n_watches(f->w), 6);
        write_at(f->m, "x/y/z/c.yaml", "name: c\n");
        run_until_calls(f, 4);

        /* removed: its watch goes */
        _cleanup_free_ char *sub = join(f->m, "sub");
        rm_rf(sub);
        run_until_calls(f, 5);
        run_until_idle(f);
        assert_int_equal(watch_n_watches(f->w), 5);
        assert_int_equal(f->root_changes, 0);
}

static void test_subdirectory_moved(void **state) {
        Fixture *f = *state;
        mkdir_at(f->m, "sub");
        mkdir_at(f->m, "sub/deeper");
        start(f, f->m, 50, 1000);
        assert_int_equal(watch_n_watches(f->w), 4);

        /* moved out of the tree: no longer watched */
        _cleanup_free_ char *out = join(f->base, "out"), *in = join(f->m, "sub");
        assert_int_equal(rename(in, out), 0);
        run_until_calls(f, 1);
        run_until_idle(f);
        assert_int_equal(watch_n_watches(f->w), 2);
        assert_no_callback(f, { write_at(out, "x.yaml", "x"); write_at(out, "deeper/x.yaml", "x"); write_at(f->m, "n.txt", "x"); });

        /* moved back in under another name: watched, subdirectories too */
        _cleanup_free_ char *in2 = join(f->m, "sub2");
        assert_int_equal(rename(out, in2), 0);
        run_until_calls(f, 2);
        run_until_idle(f);
        assert_int_equal(watch_n_watches(f->w), 4);
        write_at(in2, "deeper/y.yaml", "name: y\n");
        run_until_calls(f, 3);

        /* renamed within the tree */
        rename_at(f->m, "sub2", "sub3");
        run_until_calls(f, 4);
        run_until_idle(f);
        assert_int_equal(watch_n_watches(f->w), 4);
        write_at(f->m, "sub3/deeper/z.yaml", "name: z\n");
        run_until_calls(f, 5);
        assert_int_equal(f->root_changes, 0);
        assert_int_equal(watch_n_errors(f->w), 0);
}

static void test_atomic_rename(void **state) {
        Fixture *f = *state;
        start(f, f->m, 50, 1000);

        assert_no_callback(f, write_at(f->m, "foo.tmp", "name: foo\n"));
        rename_at(f->m, "foo.tmp", "foo.yaml");
        run_until_calls(f, 1);
        assert_false(f->last_root_changed);

        /* and moved away (renamed to an ignored name): a change too */
        rename_at(f->m, "foo.yaml", "foo.yaml~");
        run_until_calls(f, 2);
        run_until_idle(f);
        assert_int_equal(f->calls, 2);
}

static void test_symlink_swap(void **state) {
        Fixture *f = *state;
        mkdir_at(f->base, "rev1");
        mkdir_at(f->base, "rev2");
        mkdir_at(f->base, "rev2/sub");
        _cleanup_free_ char *cur = join(f->base, "current"), *tmp = join(f->base, "tmp-link");
        _cleanup_free_ char *rev1 = join(f->base, "rev1"), *rev2 = join(f->base, "rev2");
        assert_int_equal(symlink("rev1", cur), 0);

        start(f, cur, 50, 1000);
        _cleanup_free_ char *real1 = realpath(rev1, NULL), *real2 = realpath(rev2, NULL);
        assert_string_equal(watch_root(f->w), real1);
        assert_int_equal(watch_n_watches(f->w), 2);

        write_at(rev1, "a.yaml", "name: a\n");
        run_until_calls(f, 1);
        assert_false(f->last_root_changed);

        /* the new link is made beside it: not the guarded name */
        assert_no_callback(f, assert_int_equal(symlink("rev2", tmp), 0));

        /* the swap: one rename */
        assert_int_equal(rename(tmp, cur), 0);
        run_until_calls(f, 2);
        assert_true(f->last_root_changed);
        assert_string_equal(watch_root(f->w), real2);
        run_until_idle(f);
        assert_int_equal(f->calls, 2);
        assert_int_equal(watch_n_watches(f->w), 3);

        /* the old revision is not watched any more, the new one is */
        unsigned calls = f->calls;
        write_at(rev1, "b.yaml", "name: b\n");
        run_until_idle(f);
        assert_int_equal(f->calls, calls);
        write_at(rev2, "c.yaml", "name: c\n");
        run_until_calls(f, 3);
        assert_false(f->last_root_changed);
        write_at(rev2, "sub/d.yaml", "name: d\n");
        run_until_calls(f, 4);

        /* git-sync then deletes the old revision: nothing to us */
        rm_rf(rev1);
        run_until_idle(f);
        assert_int_equal(f->calls, 4);
        assert_int_equal(watch_n_errors(f->w), 0);
}

static void test_symlink_in_the_middle(void **state) {
        Fixture *f = *state;
        /* /base/current -> rev1, manifests at /base/current/manifests: the swap of
         * "current" is one level above the path's last component */
        mkdir_at(f->base, "rev1");
        mkdir_at(f->base, "rev1/manifests");
        mkdir_at(f->base, "rev2");
        mkdir_at(f->base, "rev2/manifests");
        _cleanup_free_ char *cur = join(f->base, "current"), *tmp = join(f->base, "tmp-link");
        _cleanup_free_ char *path = join(cur, "manifests");
        assert_int_equal(symlink("rev1", cur), 0);

        start(f, path, 50, 1000);
        assert_int_equal(watch_n_watches(f->w), 3);  /* base ("current"), rev1 ("manifests"), the root */

        assert_int_equal(symlink("rev2", tmp), 0);
        assert_int_equal(rename(tmp, cur), 0);
        run_until_calls(f, 1);
        assert_true(f->last_root_changed);
        _cleanup_free_ char *real2 = join(f->base, "rev2/manifests"), *r2 = realpath(real2, NULL);
        assert_string_equal(watch_root(f->w), r2);
        run_until_idle(f);

        unsigned calls = f->calls;
        write_at(f->base, "rev1/manifests/a.yaml", "name: a\n");
        run_until_idle(f);
        assert_int_equal(f->calls, calls);
        write_at(f->base, "rev2/manifests/a.yaml", "name: a\n");
        run_until_calls(f, 2);
        assert_false(f->last_root_changed);
}

static void test_root_deleted_and_recreated(void **state) {
        Fixture *f = *state;
        mkdir_at(f->m, "sub");
        write_at(f->m, "sub/a.yaml", "name: a\n");
        start(f, f->m, 50, 1000);
        assert_int_equal(watch_n_watches(f->w), 3);

        rm_rf(f->m);
        run_until_calls(f, 1);
        assert_true(f->last_root_changed);
        run_until_idle(f);
        assert_int_equal(f->calls, 1);
        assert_null(watch_root(f->w));
        assert_int_equal(watch_n_watches(f->w), 1);  /* the guard, waiting */

        assert_no_callback(f, write_at(f->base, "m.yaml.tmp", "x"));

        assert_int_equal(mkdir(f->m, 0755), 0);
        run_until_calls(f, 2);
        assert_true(f->last_root_changed);
        run_until_idle(f);
        assert_int_equal(watch_n_watches(f->w), 2);
        write_at(f->m, "b.yaml", "name: b\n");
        run_until_calls(f, 3);
        assert_false(f->last_root_changed);
        assert_int_equal(watch_n_errors(f->w), 0);
}

static void test_root_moved_away(void **state) {
        Fixture *f = *state;
        start(f, f->m, 50, 1000);

        _cleanup_free_ char *old = join(f->base, "m.old");
        assert_int_equal(rename(f->m, old), 0);
        run_until_calls(f, 1);
        assert_true(f->last_root_changed);
        run_until_idle(f);
        assert_int_equal(watch_n_watches(f->w), 1);
        uint64_t events = f->w->n_events;
        write_at(old, "a.yaml", "x");  /* not watched any more: not even read */
        run_until_idle(f);
        assert_int_equal(f->w->n_events, events);
        assert_int_equal(f->calls, 1);

        /* something else moved in under the name */
        _cleanup_free_ char *other = join(f->base, "other");
        assert_int_equal(mkdir(other, 0755), 0);
        assert_int_equal(rename(other, f->m), 0);
        run_until_calls(f, 2);
        assert_true(f->last_root_changed);
        write_at(f->m, "b.yaml", "name: b\n");
        run_until_calls(f, 3);
        assert_false(f->last_root_changed);
}

static void test_missing_at_start(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *a = join(f->base, "a"), *b = join(a, "b"), *path = join(b, "m");
        start(f, path, 50, 1000);
        assert_null(watch_root(f->w));
        assert_int_equal(watch_n_watches(f->w), 1);  /* base, for "a" */

        assert_no_callback(f, mkdir_at(f->base, "b"));  /* not on the path */

        assert_int_equal(mkdir(a, 0755), 0);
        run_until_calls(f, 1);
        assert_true(f->last_root_changed);
        assert_int_equal(mkdir(b, 0755), 0);
        run_until_calls(f, 2);
        assert_int_equal(mkdir(path, 0755), 0);
        run_until_calls(f, 3);
        assert_true(f->last_root_changed);
        _cleanup_free_ char *real = realpath(path, NULL);
        assert_string_equal(watch_root(f->w), real);
        run_until_idle(f);
        assert_int_equal(watch_n_watches(f->w), 2);

        write_at(path, "a.yaml", "name: a\n");
        run_until_calls(f, 4);
        assert_false(f->last_root_changed);
}

static void test_root_is_a_file(void **state) {
        Fixture *f = *state;
        write_at(f->base, "one.yaml", "name: one\n");
        _cleanup_free_ char *p = join(f->base, "one.yaml");
        start(f, p, 50, 1000);
        assert_int_equal(watch_n_watches(f->w), 2);

        assert_no_callback(f, write_at(f->base, "two.yaml", "x"));  /* beside it */
        write_at(f->base, "one.yaml", "name: uno\n");
        run_until_calls(f, 1);
        assert_false(f->last_root_changed);

        write_at(f->base, "one.yaml.tmp", "name: eins\n");
        rename_at(f->base, "one.yaml.tmp", "one.yaml");
        run_until_calls(f, 2);
        assert_true(f->last_root_changed);
        run_until_idle(f);
        write_at(f->base, "one.yaml", "name: un\n");
        run_until_calls(f, 3);
}

static void test_depth_limit(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *p = strdup(f->m);
        for (unsigned i = 0; i < MANIFEST_MAX_DIR_DEPTH + 2; i++) {
                char *n = join(p, "d");
                assert_int_equal(mkdir(n, 0755), 0);
                free(p);
                p = n;
        }
        start(f, f->m, 50, 1000);
        /* the guard, the root, and as deep as the scanner reads */
        assert_int_equal(watch_n_watches(f->w), 2 + MANIFEST_MAX_DIR_DEPTH);
}

static void test_watch_limit(void **state) {
        Fixture *f = *state;
        for (unsigned i = 0; i < 5; i++) {
                char name[8];
                snprintf(name, sizeof(name), "s%u", i);
                mkdir_at(f->m, name);
        }
        start(f, f->m, 50, 1000);
        assert_int_equal(watch_n_watches(f->w), 7);

        f->w->max_watches = 4;
        assert_int_equal(watch_set_path(f->w, f->m), 0);
        assert_int_equal(watch_n_watches(f->w), 4);
        assert_int_equal(watch_n_errors(f->w), 3);
        assert_int_equal(watch_last_error(f->w), -ENOSPC);
        /* what is watched still works */
        write_at(f->m, "a.yaml", "name: a\n");
        run_until_calls(f, 1);
}

static void test_overflow(void **state) {
        Fixture *f = *state;
        mkdir_at(f->m, "sub");
        start(f, f->m, 50, 1000);
        assert_int_equal(watch_n_watches(f->w), 3);

        /* A real overflow needs a tiny fs.inotify.max_queued_events, which is global:
         * inject the kernel's event instead. */
        struct inotify_event ev = { .wd = -1, .mask = IN_Q_OVERFLOW };
        process_event(f->w, &ev);
        batch_done(f->w);
        run_until_calls(f, 1);
        assert_true(f->last_root_changed);
        run_until_idle(f);
        assert_int_equal(watch_n_watches(f->w), 3);  /* watched anew */
        write_at(f->m, "sub/a.yaml", "name: a\n");
        run_until_calls(f, 2);
        assert_false(f->last_root_changed);
}

static void test_set_path(void **state) {
        Fixture *f = *state;
        start(f, f->m, 50, 1000);
        _cleanup_free_ char *n = join(f->base, "n");
        assert_int_equal(mkdir(n, 0755), 0);

        assert_int_equal(watch_set_path(f->w, n), 0);
        run_until_idle(f);
        assert_int_equal(f->calls, 0);
        _cleanup_free_ char *real = realpath(n, NULL);
        assert_string_equal(watch_root(f->w), real);

        unsigned calls = f->calls;
        write_at(f->m, "a.yaml", "x");
        run_until_idle(f);
        assert_int_equal(f->calls, calls);
        write_at(n, "a.yaml", "name: a\n");
        run_until_calls(f, 1);
        assert_false(f->last_root_changed);
}

static void free_in_callback(Fixture *f) {
        f->w = watch_free(f->w);
}

static void repath_in_callback(Fixture *f) {
        _cleanup_free_ char *n = join(f->base, "n");
        assert_int_equal(watch_set_path(f->w, n), 0);
        f->on_call = NULL;
}

static void test_reentrancy(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *n = join(f->base, "n");
        assert_int_equal(mkdir(n, 0755), 0);
        start(f, f->m, 0, 0);

        f->on_call = repath_in_callback;
        write_at(f->m, "a.yaml", "x");
        run_until_calls(f, 1);
        write_at(n, "b.yaml", "x");
        run_until_calls(f, 2);

        f->on_call = free_in_callback;
        write_at(n, "c.yaml", "x");
        run_until_calls(f, 3);
        assert_null(f->w);
}

static void test_invalid(void **state) {
        Fixture *f = *state;
        Watch *w = NULL;
        assert_int_equal(watch_new(f->e, f->m, 100, 25LL * 3600 * 1000, on_change, f, &w), -EINVAL);
        assert_int_equal(watch_new(f->e, f->m, 100, -1, on_change, f, &w), -EINVAL);
        assert_int_equal(watch_new(f->e, f->m, -1, 50, on_change, f, &w), -EINVAL);
        assert_int_equal(watch_new(f->e, "", 0, 50, on_change, f, &w), -EINVAL);
        assert_int_equal(watch_new(f->e, NULL, 0, 50, on_change, f, &w), -EINVAL);
        assert_int_equal(watch_new(f->e, f->m, 0, 50, NULL, f, &w), -EINVAL);
        assert_null(w);
        assert_null(watch_free(NULL));
}

static void check_normalized(const char *in, const char *want) {
        _cleanup_free_ char *out = NULL;
        assert_int_equal(normalize_path(in, &out), 0);
        assert_string_equal(out, want);
}

static void test_normalize_path(void **state) {
        (void) state;
        check_normalized("/", "/");
        check_normalized("//", "/");
        check_normalized("/a//b/./c/", "/a/b/c");
        check_normalized("/a/../b", "/a/../b");
        _cleanup_free_ char *cwd = get_current_dir_name(), *want = NULL;
        assert_non_null(cwd);
        want = xasprintf("%s/x/y", streq(cwd, "/") ? "" : cwd);
        check_normalized("./x/y/", want);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)
        const struct CMUnitTest tests[] = {
                T(test_write_one_file),
                T(test_changed_files),
                T(test_burst_before_loop),
                T(test_burst_in_loop),
                T(test_burst_pushed_out),
                T(test_max_delay),
                cmocka_unit_test(test_burst_deadline),
                T(test_ignored_names),
                T(test_create_waits_for_close),
                T(test_subdirectories),
                T(test_subdirectory_moved),
                T(test_atomic_rename),
                T(test_symlink_swap),
                T(test_symlink_in_the_middle),
                T(test_root_deleted_and_recreated),
                T(test_root_moved_away),
                T(test_missing_at_start),
                T(test_root_is_a_file),
                T(test_depth_limit),
                T(test_watch_limit),
                T(test_overflow),
                T(test_set_path),
                T(test_reentrancy),
                T(test_invalid),
                cmocka_unit_test(test_normalize_path),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
