/* lib/metrics.c: the exact text rendered for a known set of counters and gauges, label
 * escaping, the error-code token, the series cap, the gauges' reset, a failed growth of
 * the series array, and the atomic file write (mode, no temporary file left, an
 * unwritable directory). */
/* LDFLAGS: -Wl,--wrap=reallocarray */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "limits.h"
#include "metrics.h"
#include "util.h"

/* reallocarray fails while this is set (the library's calls go through here) */
static bool fail_reallocarray;
void *__real_reallocarray(void *p, size_t n, size_t size);
void *__wrap_reallocarray(void *p, size_t n, size_t size);
void *__wrap_reallocarray(void *p, size_t n, size_t size) {
        if (fail_reallocarray) {
                errno = ENOMEM;
                return NULL;
        }
        return __real_reallocarray(p, n, size);
}

static char *render(const Metrics *m) {
        char *buf = NULL;
        size_t len = 0;
        assert_int_equal(metrics_render(m, &buf, &len), 0);
        assert_int_equal(strlen(buf), len);
        return buf;
}

/* An empty registry still says the families a query must never find absent. */
static void test_render_empty(void **state) {
        (void) state;
        Metrics *m = NULL;
        assert_int_equal(metrics_new(&m), 0);
        char *text = render(m);
        assert_string_equal(
                text,
                "# HELP notebookd_invalid_manifests Manifest documents the last scan found invalid.\n"
                "# TYPE notebookd_invalid_manifests gauge\n"
                "notebookd_invalid_manifests 0\n"
                "# HELP notebookd_last_successful_pass_timestamp_seconds When the last pass that listed every "
                "workspace it needed and planned ended (unix time; 0: none yet).\n"
                "# TYPE notebookd_last_successful_pass_timestamp_seconds gauge\n"
                "notebookd_last_successful_pass_timestamp_seconds 0.000\n"
                "# HELP notebookd_pass_duration_seconds How long the last pass took, from its start to its plan "
                "acted on.\n"
                "# TYPE notebookd_pass_duration_seconds gauge\n"
                "notebookd_pass_duration_seconds 0.000\n"
                "# HELP notebookd_api_throttled_total HTTP 429 answers.\n"
                "# TYPE notebookd_api_throttled_total counter\n"
                "notebookd_api_throttled_total 0\n"
                "# HELP notebookd_metrics_series_dropped_total Series not made because the process already keeps "
                "its maximum.\n"
                "# TYPE notebookd_metrics_series_dropped_total counter\n"
                "notebookd_metrics_series_dropped_total 0\n");
        free(text);
        metrics_free(m);
}

/* The sample lines of a render, HELP and TYPE left out. */
static char *samples(const Metrics *m) {
        char *text = render(m);
        char *out = calloc(1, strlen(text) + 1), *o = out;
        assert_non_null(out);
        for (char *line = text, *nl; *line; line = nl + 1) {
                nl = strchr(line, '\n');
                assert_non_null(nl);   /* every line ends with a newline, the last too */
                if (line[0] != '#') {
                        memcpy(o, line, (size_t) (nl - line + 1));
                        o += nl - line + 1;
                }
        }
        free(text);
        return out;
}

/* A known set, added in a scrambled order: the lines are exact, families in their
 * order, series sorted by label values (absent first), labels absent where NULL. */
static void test_render_known_set(void **state) {
        (void) state;
        Metrics *m = NULL;
        assert_int_equal(metrics_new(&m), 0);
        metrics_add(m, METRICS_CREATES, METRICS_LABELS("rejected", "ModelArts.6323", "team-b"), 1);
        metrics_add(m, METRICS_CREATES, METRICS_LABELS("accepted", NULL, "team-a"), 1);
        metrics_add(m, METRICS_CREATES, METRICS_LABELS("accepted", NULL, "team-a"), 2);
        metrics_add(m, METRICS_CREATES, METRICS_LABELS("accepted", NULL, NULL), 1);
        metrics_add(m, METRICS_API_REQUESTS, METRICS_LABELS("list", "200"), 4);
        metrics_add(m, METRICS_API_REQUESTS, METRICS_LABELS("create", "429"), 1);
        metrics_add(m, METRICS_API_REQUESTS, METRICS_LABELS("create", "201"), 3);
        metrics_add(m, METRICS_API_THROTTLED, NULL, 1);
        metrics_add(m, METRICS_ADOPTIONS, METRICS_LABELS("team-b"), 1);
        metrics_add(m, METRICS_REJECTIONS, METRICS_LABELS("create", "ModelArts.6323", "team-b"), 1);
        metrics_add(m, METRICS_DELETIONS, METRICS_LABELS("deleted", NULL, NULL), 2);
        metrics_set(m, METRICS_PAUSED, METRICS_LABELS("listing"), 0);
        metrics_set(m, METRICS_PAUSED, METRICS_LABELS("authentication"), 1);
        metrics_set(m, METRICS_INSTANCES, METRICS_LABELS("running", "team-a"), 3);
        metrics_set(m, METRICS_INSTANCES, METRICS_LABELS("rejected", "team-b"), 1);
        metrics_set(m, METRICS_DESIRED, METRICS_LABELS("team-a"), 3);
        metrics_set(m, METRICS_INVALID_MANIFESTS, NULL, 2);
        metrics_set(m, METRICS_LAST_SUCCESSFUL_PASS, NULL, 1765170000123LL);
        metrics_set(m, METRICS_PASS_DURATION, NULL, 42);
        /* a label a family does not have is left out, whatever the caller passed */
        metrics_add(m, METRICS_API_THROTTLED, METRICS_LABELS("x", "y", "z"), 1);
        char *text = samples(m);
        assert_string_equal(text,
                            "notebookd_instances{status=\"rejected\",tenant=\"team-b\"} 1\n"
                            "notebookd_instances{status=\"running\",tenant=\"team-a\"} 3\n"
                            "notebookd_desired_instances{tenant=\"team-a\"} 3\n"
                            "notebookd_invalid_manifests 2\n"
                            "notebookd_paused{reason=\"authentication\"} 1\n"
                            "notebookd_paused{reason=\"listing\"} 0\n"
                            "notebookd_last_successful_pass_timestamp_seconds 1765170000.123\n"
                            "notebookd_pass_duration_seconds 0.042\n"
                            "notebookd_creates_total{result=\"accepted\"} 1\n"
                            "notebookd_creates_total{result=\"accepted\",tenant=\"team-a\"} 3\n"
                            "notebookd_creates_total{result=\"rejected\",code=\"ModelArts.6323\",tenant=\"team-b\"} 1\n"
                            "notebookd_adoptions_total{tenant=\"team-b\"} 1\n"
                            "notebookd_deletions_total{result=\"deleted\"} 2\n"
                            "notebookd_rejections_total{call=\"create\",code=\"ModelArts.6323\",tenant=\"team-b\"} 1\n"
                            "notebookd_api_requests_total{call=\"create\",status=\"201\"} 3\n"
                            "notebookd_api_requests_total{call=\"create\",status=\"429\"} 1\n"
                            "notebookd_api_requests_total{call=\"list\",status=\"200\"} 4\n"
                            "notebookd_api_throttled_total 2\n"
                            "notebookd_metrics_series_dropped_total 0\n");
        free(text);
        /* every family with a sample has its HELP and TYPE once, before its samples */
        text = render(m);
        assert_non_null(strstr(text, "# HELP notebookd_creates_total Create calls answered"));
        assert_non_null(strstr(text, "# TYPE notebookd_creates_total counter\nnotebookd_creates_total{"));
        assert_non_null(strstr(text, "# TYPE notebookd_instances gauge\nnotebookd_instances{"));
        assert_null(strstr(strstr(text, "# TYPE notebookd_creates_total") + 1, "# TYPE notebookd_creates_total"));
        free(text);
        assert_int_equal(metrics_get(m, METRICS_CREATES, METRICS_LABELS("accepted", NULL, "team-a")), 3);
        assert_int_equal(metrics_get(m, METRICS_CREATES, METRICS_LABELS("accepted", "ModelArts.6301", "team-a")), 0);
        metrics_free(m);
}

/* Backslash, double quote and newline are escaped; nothing else is touched. */
static void test_escape(void **state) {
        (void) state;
        char *e = metrics_escape_label("a\\b\"c\nd\te/é");
        assert_string_equal(e, "a\\\\b\\\"c\\nd\te/é");
        free(e);
        e = metrics_escape_label("");
        assert_string_equal(e, "");
        free(e);

        Metrics *m = NULL;
        assert_int_equal(metrics_new(&m), 0);
        /* a tenant name is the config's path: YAML can put any of them in it */
        metrics_add(m, METRICS_ADOPTIONS, METRICS_LABELS("we\"ird\\team\nx"), 1);
        char *text = samples(m);
        assert_non_null(strstr(text, "notebookd_adoptions_total{tenant=\"we\\\"ird\\\\team\\nx\"} 1\n"));
        free(text);
        metrics_free(m);
}

/* An error code comes from the API's answer: only a code's characters, at most 64. */
static void test_code_token(void **state) {
        (void) state;
        Metrics *m = NULL;
        assert_int_equal(metrics_new(&m), 0);
        metrics_add(m, METRICS_REJECTIONS, METRICS_LABELS("create", "Model\"Arts\n.6323 x}", NULL), 1);
        char long_code[200];
        memset(long_code, 'A', sizeof long_code - 1);
        long_code[sizeof long_code - 1] = 0;
        metrics_add(m, METRICS_REJECTIONS, METRICS_LABELS("start", long_code, NULL), 1);
        char *text = samples(m);
        assert_non_null(strstr(text, "notebookd_rejections_total{call=\"create\",code=\"Model_Arts_.6323_x_\"} 1\n"));
        char want[128];
        snprintf(want, sizeof want, "{call=\"start\",code=\"%.64s\"} 1\n", long_code);
        assert_non_null(strstr(text, want));
        free(text);
        /* the same reduced code is the same series */
        assert_int_equal(metrics_get(m, METRICS_REJECTIONS, METRICS_LABELS("create", "Model_Arts_.6323_x_", NULL)), 1);
        metrics_free(m);
}

/* An absent label and an empty one are different series, and so are labels that only
 * concatenate alike. */
static void test_series_identity(void **state) {
        (void) state;
        Metrics *m = NULL;
        assert_int_equal(metrics_new(&m), 0);
        metrics_add(m, METRICS_API_REQUESTS, METRICS_LABELS("ab", "c"), 1);
        metrics_add(m, METRICS_API_REQUESTS, METRICS_LABELS("a", "bc"), 2);
        metrics_add(m, METRICS_CREATES, METRICS_LABELS("accepted", NULL, NULL), 1);
        metrics_add(m, METRICS_CREATES, METRICS_LABELS("accepted", "", NULL), 5);
        assert_int_equal(metrics_get(m, METRICS_API_REQUESTS, METRICS_LABELS("ab", "c")), 1);
        assert_int_equal(metrics_get(m, METRICS_API_REQUESTS, METRICS_LABELS("a", "bc")), 2);
        assert_int_equal(metrics_get(m, METRICS_CREATES, METRICS_LABELS("accepted", NULL, NULL)), 1);
        assert_int_equal(metrics_get(m, METRICS_CREATES, METRICS_LABELS("accepted", "", NULL)), 5);
        metrics_free(m);
}

/* The gauges the daemon sets are zeroed before it sets them again (a tenant a reload
 * removed reads 0); counters and the pass gauges are kept. */
static void test_reset_gauges(void **state) {
        (void) state;
        Metrics *m = NULL;
        assert_int_equal(metrics_new(&m), 0);
        metrics_set(m, METRICS_INSTANCES, METRICS_LABELS("running", "gone"), 4);
        metrics_set(m, METRICS_PAUSED, METRICS_LABELS("listing"), 1);
        metrics_set(m, METRICS_LAST_SUCCESSFUL_PASS, NULL, 5000);
        metrics_add(m, METRICS_CREATES, METRICS_LABELS("accepted", NULL, NULL), 7);
        metrics_reset_gauges(m);
        assert_int_equal(metrics_get(m, METRICS_INSTANCES, METRICS_LABELS("running", "gone")), 0);
        assert_int_equal(metrics_get(m, METRICS_PAUSED, METRICS_LABELS("listing")), 0);
        assert_int_equal(metrics_get(m, METRICS_LAST_SUCCESSFUL_PASS, NULL), 5000);
        assert_int_equal(metrics_get(m, METRICS_CREATES, METRICS_LABELS("accepted", NULL, NULL)), 7);
        metrics_free(m);
}

static unsigned n_changed;
static void on_changed(Metrics *m, void *userdata) {
        (void) m;
        assert_ptr_equal(userdata, &n_changed);
        n_changed++;
}

/* The owner hears of every change (to schedule a write), not of a gauge set to the
 * value it has; a NULL registry (no metrics_file:) is a no-op. */
static void test_changed_callback(void **state) {
        (void) state;
        Metrics *m = NULL;
        assert_int_equal(metrics_new(&m), 0);
        metrics_set_changed_callback(m, on_changed, &n_changed);
        n_changed = 0;
        metrics_add(m, METRICS_API_THROTTLED, NULL, 1);
        metrics_set(m, METRICS_DESIRED, NULL, 3);
        metrics_set(m, METRICS_DESIRED, NULL, 3);
        assert_int_equal(n_changed, 2);
        metrics_add(NULL, METRICS_API_THROTTLED, NULL, 1);
        metrics_set(NULL, METRICS_DESIRED, NULL, 1);
        assert_int_equal(metrics_get(NULL, METRICS_DESIRED, NULL), 0);
        metrics_free(m);
}

/* Past METRICS_MAX_SERIES a new series is refused and counted; existing ones still
 * count, and the file stays bounded. */
static void test_series_cap(void **state) {
        (void) state;
        Metrics *m = NULL;
        assert_int_equal(metrics_new(&m), 0);
        char code[32];
        for (unsigned i = 0; i < METRICS_MAX_SERIES + 10; i++) {
                snprintf(code, sizeof code, "X.%u", i);
                metrics_add(m, METRICS_REJECTIONS, METRICS_LABELS("create", code, NULL), 1);
        }
        metrics_add(m, METRICS_REJECTIONS, METRICS_LABELS("create", "X.0", NULL), 1);
        assert_int_equal(metrics_get(m, METRICS_REJECTIONS, METRICS_LABELS("create", "X.0", NULL)), 2);
        /* the first METRICS_MAX_SERIES codes kept, the 10 after them refused */
        assert_int_equal(metrics_get(m, METRICS_SERIES_DROPPED, NULL), 10);
        snprintf(code, sizeof code, "X.%u", METRICS_MAX_SERIES - 1);
        assert_int_equal(metrics_get(m, METRICS_REJECTIONS, METRICS_LABELS("create", code, NULL)), 1);
        snprintf(code, sizeof code, "X.%u", METRICS_MAX_SERIES);
        assert_int_equal(metrics_get(m, METRICS_REJECTIONS, METRICS_LABELS("create", code, NULL)), 0);
        char *text = render(m);
        size_t lines = 0;
        for (const char *p = text; *p; p++)
                lines += *p == '\n';
        assert_true(lines <= METRICS_MAX_SERIES + 2 * _METRICS_FAMILY_MAX + 8);
        assert_non_null(strstr(text, "notebookd_metrics_series_dropped_total 10\n"));
        free(text);
        metrics_free(m);
}

/* Once the cap is reached, the gauges (bounded by the config) are still made: the
 * daemon sets them before every write, and were they refused, each write would try again
 * and the dropped counter would grow with time, not with what the API sent. */
static void test_series_cap_spares_gauges(void **state) {
        (void) state;
        Metrics *m = NULL;
        assert_int_equal(metrics_new(&m), 0);
        char code[32];
        for (unsigned i = 0; i < METRICS_MAX_SERIES + 3; i++) {
                snprintf(code, sizeof code, "X.%u", i);
                metrics_add(m, METRICS_DELETIONS, METRICS_LABELS("refused", code, NULL), 1);
        }
        assert_int_equal(metrics_get(m, METRICS_SERIES_DROPPED, NULL), 3);
        /* what the daemon's writer does before each of many writes, a new tenant's
         * gauges among them */
        for (unsigned w = 0; w < 5; w++) {
                metrics_reset_gauges(m);
                metrics_add(m, METRICS_INSTANCES, METRICS_LABELS("running", "late"), 0);
                metrics_add(m, METRICS_INSTANCES, METRICS_LABELS("running", "late"), 2);
                metrics_add(m, METRICS_DESIRED, METRICS_LABELS("late"), 2);
                metrics_set(m, METRICS_PAUSED, METRICS_LABELS("listing"), 1);
        }
        assert_int_equal(metrics_get(m, METRICS_INSTANCES, METRICS_LABELS("running", "late")), 2);
        assert_int_equal(metrics_get(m, METRICS_DESIRED, METRICS_LABELS("late")), 2);
        assert_int_equal(metrics_get(m, METRICS_PAUSED, METRICS_LABELS("listing")), 1);
        /* a counter without a code label is bounded too */
        metrics_add(m, METRICS_API_REQUESTS, METRICS_LABELS("list", "200"), 1);
        assert_int_equal(metrics_get(m, METRICS_API_REQUESTS, METRICS_LABELS("list", "200")), 1);
        /* nothing of that was refused; a new code still is, once per count */
        assert_int_equal(metrics_get(m, METRICS_SERIES_DROPPED, NULL), 3);
        metrics_add(m, METRICS_CREATES, METRICS_LABELS("rejected", "Y.1", NULL), 1);
        assert_int_equal(metrics_get(m, METRICS_CREATES, METRICS_LABELS("rejected", "Y.1", NULL)), 0);
        assert_int_equal(metrics_get(m, METRICS_SERIES_DROPPED, NULL), 4);
        metrics_free(m);
}

/* A series array that cannot grow refuses the new series and keeps the old ones: they
 * still count, render and are freed (the sanitizer build sees a leak or a NULL read). */
static void test_grow_fails(void **state) {
        (void) state;
        Metrics *m = NULL;
        assert_int_equal(metrics_new(&m), 0);
        char code[32];
        /* 16 series fill the first allocation; the 17th needs it to grow */
        for (unsigned i = 0; i < 16; i++) {
                snprintf(code, sizeof code, "X.%u", i);
                metrics_add(m, METRICS_REJECTIONS, METRICS_LABELS("create", code, NULL), 1);
        }
        fail_reallocarray = true;
        metrics_add(m, METRICS_REJECTIONS, METRICS_LABELS("create", "X.16", NULL), 1);
        fail_reallocarray = false;
        assert_int_equal(metrics_get(m, METRICS_REJECTIONS, METRICS_LABELS("create", "X.16", NULL)), 0);
        metrics_add(m, METRICS_REJECTIONS, METRICS_LABELS("create", "X.3", NULL), 1);
        assert_int_equal(metrics_get(m, METRICS_REJECTIONS, METRICS_LABELS("create", "X.3", NULL)), 2);
        assert_int_equal(metrics_get(m, METRICS_REJECTIONS, METRICS_LABELS("create", "X.15", NULL)), 1);
        /* and it grows once memory is back */
        metrics_add(m, METRICS_REJECTIONS, METRICS_LABELS("create", "X.16", NULL), 1);
        assert_int_equal(metrics_get(m, METRICS_REJECTIONS, METRICS_LABELS("create", "X.16", NULL)), 1);
        char *text = render(m);
        assert_non_null(strstr(text, "notebookd_rejections_total{call=\"create\",code=\"X.0\"} 1\n"));
        free(text);
        metrics_free(m);
}

/* Written beside itself and renamed: the content exact, mode 0644 whatever the umask,
 * nothing else left in the directory; an unwritable directory is an error, not a crash,
 * and leaves the old file alone. */
static void test_write_file(void **state) {
        (void) state;
        char dir[] = "/tmp/test-metrics.XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *path = xasprintf("%s/notebookd.prom", dir);
        mode_t old_umask = umask(0077);
        assert_int_equal(metrics_write_file(path, "a 1\n", 4), 0);
        assert_int_equal(metrics_write_file(path, "b 2\n", 4), 0);
        umask(old_umask);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char buf[16] = {};
        assert_int_equal(fread(buf, 1, sizeof buf - 1, f), 4);
        fclose(f);
        assert_string_equal(buf, "b 2\n");
        DIR *d = opendir(dir);
        assert_non_null(d);
        struct dirent *de;
        unsigned n = 0;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
                        assert_string_equal(de->d_name, "notebookd.prom");
                        n++;
                }
        closedir(d);
        assert_int_equal(n, 1);

        _cleanup_free_ char *missing = xasprintf("%s/no-such-dir/notebookd.prom", dir);
        assert_int_equal(metrics_write_file(missing, "c 3\n", 4), -ENOENT);
        if (geteuid() != 0) {   /* root writes anywhere */
                assert_int_equal(chmod(dir, 0555), 0);
                assert_int_equal(metrics_write_file(path, "d 4\n", 4), -EACCES);
                assert_int_equal(chmod(dir, 0755), 0);
        }
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_render_empty),     cmocka_unit_test(test_render_known_set),
                cmocka_unit_test(test_escape),           cmocka_unit_test(test_code_token),
                cmocka_unit_test(test_series_identity),  cmocka_unit_test(test_reset_gauges),
                cmocka_unit_test(test_changed_callback), cmocka_unit_test(test_series_cap),
                cmocka_unit_test(test_series_cap_spares_gauges), cmocka_unit_test(test_grow_fails),
                cmocka_unit_test(test_write_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
