/* daemon/log.c: what reaches the journal (sd_journal_sendv is wrapped and its
 * iovecs recorded) and what the console line looks like (stderr captured).
 * log.c lives in daemon/, outside the library, so it is compiled into this suite. */
/* LDFLAGS: -Wl,--wrap=sd_journal_sendv */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../daemon/log.c"
#include "../../daemon/messages.h"

/* ---- the journal, recorded ---- */

#define MAX_ITEMS 64
static char *sent[MAX_ITEMS];
static size_t n_sent, n_calls;
static int sendv_result;

int __wrap_sd_journal_sendv(const struct iovec *iov, int n);
int __wrap_sd_journal_sendv(const struct iovec *iov, int n) {
        n_calls++;
        for (int i = 0; i < n && n_sent < MAX_ITEMS; i++)
                sent[n_sent++] = strndup(iov[i].iov_base, iov[i].iov_len);
        return sendv_result;
}

static void sent_clear(void) {
        for (size_t i = 0; i < n_sent; i++)
                free(sent[i]);
        n_sent = n_calls = 0;
        sendv_result = 0;
}

/* The value of NAME= in the last entry sent, or NULL. */
static const char *sent_field(const char *name) {
        size_t len = strlen(name);
        for (size_t i = 0; i < n_sent; i++)
                if (strncmp(sent[i], name, len) == 0 && sent[i][len] == '=')
                        return sent[i] + len + 1;
        return NULL;
}

static size_t sent_count(const char *name) {
        size_t len = strlen(name), c = 0;
        for (size_t i = 0; i < n_sent; i++)
                if (strncmp(sent[i], name, len) == 0 && sent[i][len] == '=')
                        c++;
        return c;
}

static int setup(void **state) {
        (void) state;
        sent_clear();
        return 0;
}

static int teardown(void **state) {
        (void) state;
        sent_clear();
        unsetenv("JOURNAL_STREAM");
        log_setup(LOG_TARGET_CONSOLE, LOG_INFO);
        return 0;
}

/* ---- stderr, captured ---- */

static int saved_stderr = -1;
static FILE *capture_file;

static void capture_start(void) {
        fflush(stderr);
        capture_file = tmpfile();
        assert_non_null(capture_file);
        saved_stderr = dup(STDERR_FILENO);
        assert_true(saved_stderr >= 0);
        assert_true(dup2(fileno(capture_file), STDERR_FILENO) >= 0);
}

static char *capture_end(void) {
        fflush(stderr);
        assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
        close(saved_stderr);
        saved_stderr = -1;
        long size = ftell(capture_file);
        (void) size;
        rewind(capture_file);
        char *buf = calloc(1, 65536);
        assert_non_null(buf);
        size_t n = fread(buf, 1, 65535, capture_file);
        buf[n] = 0;
        fclose(capture_file);
        capture_file = NULL;
        return buf;
}

/* ---- journal ---- */

static void test_journal_entry_fields(void **state) {
        (void) state;
        log_setup(LOG_TARGET_JOURNAL, LOG_INFO);
        int line = __LINE__ + 1;
        log_fields(LOG_ERR, MESSAGE_CREATE_FAILED,
                   LOG_FIELDS({ "NOTEBOOK", "train-01" }, { "HTTP_STATUS", LOG_INT(400) },
                              { "API_ERROR_CODE", NULL }),
                   "Creating %s failed: %s", "\"train-01\"", "quota");
        assert_int_equal(n_calls, 1);
        assert_string_equal(sent_field("MESSAGE"), "Creating \"train-01\" failed: quota");
        assert_string_equal(sent_field("PRIORITY"), "3");
        assert_string_equal(sent_field("MESSAGE_ID"), MESSAGE_CREATE_FAILED);
        assert_string_equal(sent_field("SYSLOG_IDENTIFIER"), "notebookd");
        assert_non_null(strstr(sent_field("CODE_FILE"), "test-log.c"));
        char buf[16];
        snprintf(buf, sizeof(buf), "%d", line);
        assert_string_equal(sent_field("CODE_LINE"), buf);
        assert_string_equal(sent_field("CODE_FUNC"), "test_journal_entry_fields");
        assert_string_equal(sent_field("NOTEBOOK"), "train-01");
        assert_string_equal(sent_field("HTTP_STATUS"), "400");
        /* a NULL value is skipped, and nothing is invented */
        assert_null(sent_field("API_ERROR_CODE"));
        assert_null(sent_field("ERRNO"));
        assert_int_equal(n_sent, 9);
}

static void test_journal_no_id_no_fields(void **state) {
        (void) state;
        log_setup(LOG_TARGET_JOURNAL, LOG_INFO);
        log_info("plain %d", 42);
        assert_int_equal(n_calls, 1);
        assert_string_equal(sent_field("MESSAGE"), "plain 42");
        assert_string_equal(sent_field("PRIORITY"), "6");
        assert_null(sent_field("MESSAGE_ID"));
        log_fields(LOG_NOTICE, NULL, NULL, "no fields");
        assert_int_equal(n_calls, 2);
}

static void test_journal_field_names_checked(void **state) {
        (void) state;
        char longest[65], too_long[66];
        memset(longest, 'A', 64);
        longest[64] = 0;
        memset(too_long, 'B', 65);
        too_long[65] = 0;
        log_setup(LOG_TARGET_JOURNAL, LOG_INFO);
        log_fields(LOG_INFO, MESSAGE_PASS_STARTED,
                   LOG_FIELDS({ "lower", "x" }, { "_TRUSTED", "x" }, { "9LIVES", "x" }, { "", "x" },
                              { "BAD-DASH", "x" }, { too_long, "x" }, { longest, "kept" },
                              { "MESSAGE", "forged" }, { "PRIORITY", "0" }, { "MESSAGE_ID", "forged" },
                              { "CODE_LINE", "1" }, { "SYSLOG_IDENTIFIER", "x" }, { "ERRNO", "1" },
                              { "GOOD_1", "ok" }),
                   "names");
        assert_string_equal(sent_field(longest), "kept");
        assert_string_equal(sent_field("GOOD_1"), "ok");
        assert_null(sent_field("lower"));
        assert_null(sent_field("_TRUSTED"));
        assert_null(sent_field("9LIVES"));
        assert_null(sent_field("BAD-DASH"));
        assert_null(sent_field(too_long));
        assert_null(sent_field("ERRNO"));
        /* our own fields, exactly once, with our values */
        assert_int_equal(sent_count("MESSAGE"), 1);
        assert_string_equal(sent_field("MESSAGE"), "names");
        assert_int_equal(sent_count("PRIORITY"), 1);
        assert_string_equal(sent_field("PRIORITY"), "6");
        assert_int_equal(sent_count("MESSAGE_ID"), 1);
        assert_string_equal(sent_field("MESSAGE_ID"), MESSAGE_PASS_STARTED);
        assert_int_equal(sent_count("CODE_LINE"), 1);
        assert_int_equal(sent_count("SYSLOG_IDENTIFIER"), 1);
}

static void test_journal_redacts_secret_looking_fields(void **state) {
        (void) state;
        log_setup(LOG_TARGET_JOURNAL, LOG_INFO);
        log_fields(LOG_INFO, NULL,
                   LOG_FIELDS({ "TOKEN", "t0k3n" }, { "X_AUTH_TOKEN", "t0k3n" }, { "PASSWORD", "pw" },
                              { "SK", "s3cr3t" }, { "CLIENT_SECRET", "s3cr3t" }, { "TASK", "kept" },
                              { "AK_ID", "AKID" }),
                   "redaction");
        assert_string_equal(sent_field("TOKEN"), "[redacted]");
        assert_string_equal(sent_field("X_AUTH_TOKEN"), "[redacted]");
        assert_string_equal(sent_field("PASSWORD"), "[redacted]");
        assert_string_equal(sent_field("SK"), "[redacted]");
        assert_string_equal(sent_field("CLIENT_SECRET"), "[redacted]");
        assert_string_equal(sent_field("TASK"), "kept");
        assert_string_equal(sent_field("AK_ID"), "AKID");
        for (size_t i = 0; i < n_sent; i++) {
                assert_null(strstr(sent[i], "t0k3n"));
                assert_null(strstr(sent[i], "s3cr3t"));
        }
}

static void test_journal_values_verbatim(void **state) {
        (void) state;
        log_setup(LOG_TARGET_JOURNAL, LOG_INFO);
        log_fields(LOG_WARNING, NULL, LOG_FIELDS({ "API_ERROR_MSG", "line one\nline \"two\"\t\\" }, { "EMPTY", "" }),
                   "multi\nline");
        /* sendv carries newlines binary-safely: nothing is escaped on this path */
        assert_string_equal(sent_field("API_ERROR_MSG"), "line one\nline \"two\"\t\\");
        assert_string_equal(sent_field("EMPTY"), "");
        assert_string_equal(sent_field("MESSAGE"), "multi\nline");
}

static void test_level_filter(void **state) {
        (void) state;
        log_setup(LOG_TARGET_JOURNAL, LOG_INFO);
        assert_int_equal(log_get_max_level(), LOG_INFO);
        assert_true(log_would_log(LOG_ERR));
        assert_true(log_would_log(LOG_INFO));
        assert_false(log_would_log(LOG_DEBUG));
        log_debug("not shown");
        assert_int_equal(n_calls, 0);
        log_setup(LOG_TARGET_JOURNAL, LOG_DEBUG);
        log_debug("shown");
        assert_int_equal(n_calls, 1);
        assert_string_equal(sent_field("PRIORITY"), "7");
        sent_clear();
        log_setup(LOG_TARGET_JOURNAL, LOG_ERR);
        log_warning("not shown");
        log_error("shown");
        assert_int_equal(n_calls, 1);
        /* out-of-range levels are clamped, not trusted */
        log_setup(LOG_TARGET_JOURNAL, 99);
        assert_int_equal(log_get_max_level(), LOG_DEBUG);
        log_setup(LOG_TARGET_JOURNAL, -3);
        assert_int_equal(log_get_max_level(), LOG_EMERG);
}

static void test_errno_variants(void **state) {
        (void) state;
        log_setup(LOG_TARGET_JOURNAL, LOG_INFO);
        errno = EBADF;
        int r = log_error_errno(ENOENT, "Failed to open %s: %m", "x.yaml");
        assert_int_equal(r, -ENOENT);
        assert_int_equal(errno, EBADF); /* logging never changes errno */
        assert_string_equal(sent_field("MESSAGE"), "Failed to open x.yaml: No such file or directory");
        assert_string_equal(sent_field("ERRNO"), "2");
        sent_clear();

        r = log_fields_errno(LOG_WARNING, -EACCES, MESSAGE_STATE_ERROR, LOG_FIELDS({ "STATE_DIR", "/var/lib/x" }), "state: %m");
        assert_int_equal(r, -EACCES);
        assert_string_equal(sent_field("MESSAGE"), "state: Permission denied");
        assert_string_equal(sent_field("ERRNO"), "13");
        assert_string_equal(sent_field("STATE_DIR"), "/var/lib/x");
        sent_clear();

        /* filtered out: still returns the error, still keeps errno */
        errno = EINTR;
        assert_int_equal(log_debug_errno(EIO, "hidden"), -EIO);
        assert_int_equal(errno, EINTR);
        assert_int_equal(n_calls, 0);

        /* no error: %m is the caller's errno */
        errno = ENOSPC;
        log_info("disk: %m");
        assert_string_equal(sent_field("MESSAGE"), "disk: No space left on device");
        assert_null(sent_field("ERRNO"));
        assert_int_equal(errno, ENOSPC);
}

static void test_journal_failure_falls_back_to_console(void **state) {
        (void) state;
        capture_start();
        log_setup(LOG_TARGET_JOURNAL, LOG_INFO);
        sendv_result = -ECONNREFUSED;
        log_fields(LOG_ERR, MESSAGE_AUTH_FAILED, LOG_FIELDS({ "HTTP_STATUS", "401" }), "refused");
        _cleanup_free_ char *out = capture_end();
        assert_int_equal(n_calls, 1);
        assert_string_equal(out, "notebookd: error: refused [HTTP_STATUS=401]\n");
}

/* ---- console ---- */

static void test_console_line(void **state) {
        (void) state;
        capture_start();
        log_setup(LOG_TARGET_CONSOLE, LOG_INFO);
        log_fields(LOG_WARNING, MESSAGE_CREATE_RETRY,
                   LOG_FIELDS({ "NOTEBOOK", "train-01" }, { "API_ERROR_MSG", "bad request" }, { "SKIPPED", NULL },
                              { "EMPTY", "" }, { "lower", "dropped" }),
                   "Creating %s failed, retrying", "\"train-01\"");
        log_fields(LOG_INFO, MESSAGE_CREATE_ACCEPTED, LOG_FIELDS({ "NOTEBOOK", "train-01" }),
                   "Created %s", "\"train-01\"");
        log_error("no fields at all");
        log_debug("filtered");
        _cleanup_free_ char *out = capture_end();
        assert_int_equal(n_calls, 0); /* the console never touches the journal */
        assert_string_equal(out,
                            "notebookd: warning: Creating \"train-01\" failed, retrying "
                            "[NOTEBOOK=train-01 API_ERROR_MSG=\"bad request\" EMPTY=\"\"]\n"
                            "notebookd: info: Created \"train-01\"\n"
                            "notebookd: error: no fields at all\n");
}

static void test_console_debug_shows_all_fields(void **state) {
        (void) state;
        capture_start();
        log_setup(LOG_TARGET_CONSOLE, LOG_DEBUG);
        log_fields(LOG_INFO, NULL, LOG_FIELDS({ "NOTEBOOK", "a" }, { "STATUS", "RUNNING" }), "status");
        log_debug("dbg");
        _cleanup_free_ char *out = capture_end();
        assert_string_equal(out,
                            "notebookd: info: status [NOTEBOOK=a STATUS=RUNNING]\n"
                            "notebookd: debug: dbg\n");
}

static void test_console_one_line_per_event(void **state) {
        (void) state;
        capture_start();
        log_setup(LOG_TARGET_CONSOLE, LOG_INFO);
        log_fields(LOG_ERR, NULL, LOG_FIELDS({ "API_ERROR_MSG", "a\nnotebookd: error: forged" }, { "TOKEN", "t0k3n" }),
                   "msg\nnotebookd: info: forged\x1b[31m");
        _cleanup_free_ char *out = capture_end();
        assert_string_equal(out,
                            "notebookd: error: msg\\x0anotebookd: info: forged\\x1b[31m "
                            "[API_ERROR_MSG=\"a\\x0anotebookd: error: forged\" TOKEN=\"[redacted]\"]\n");
}

/* ---- target selection ---- */

static void test_auto_target(void **state) {
        (void) state;
        struct stat st;
        char buf[64];

        /* stderr is a tmpfile here: JOURNAL_STREAM naming it means the journal */
        capture_start();
        assert_int_equal(fstat(STDERR_FILENO, &st), 0);
        snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
        setenv("JOURNAL_STREAM", buf, 1);
        log_setup(LOG_TARGET_AUTO, LOG_INFO);
        assert_int_equal(log_get_target(), LOG_TARGET_JOURNAL);

        /* inherited from a parent whose stderr was the journal: not ours */
        snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino + 1);
        setenv("JOURNAL_STREAM", buf, 1);
        log_setup(LOG_TARGET_AUTO, LOG_INFO);
        assert_int_equal(log_get_target(), LOG_TARGET_CONSOLE);

        static const char *const garbage[] = { "", ":", "12", "12:", ":34", "a:b", "1:2:3", "1 :2" };
        for (size_t i = 0; i < ELEMENTSOF(garbage); i++) {
                setenv("JOURNAL_STREAM", garbage[i], 1);
                log_setup(LOG_TARGET_AUTO, LOG_INFO);
                assert_int_equal(log_get_target(), LOG_TARGET_CONSOLE);
        }
        unsetenv("JOURNAL_STREAM");

        /* explicit targets are taken as they are */
        log_setup(LOG_TARGET_JOURNAL, LOG_INFO);
        assert_int_equal(log_get_target(), LOG_TARGET_JOURNAL);
        log_setup(LOG_TARGET_CONSOLE, LOG_INFO);
        assert_int_equal(log_get_target(), LOG_TARGET_CONSOLE);
        _cleanup_free_ char *out = capture_end();
        assert_string_equal(out, "");
}

static void test_log_int(void **state) {
        (void) state;
        char buf[LOG_INT_BUFSIZE];
        assert_string_equal(log_int(buf, 0), "0");
        assert_string_equal(log_int(buf, -5), "-5");
        assert_string_equal(log_int(buf, INT64_MIN), "-9223372036854775808");
        assert_string_equal(LOG_INT(429), "429");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_journal_entry_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_journal_no_id_no_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_journal_field_names_checked, setup, teardown),
                cmocka_unit_test_setup_teardown(test_journal_redacts_secret_looking_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_journal_values_verbatim, setup, teardown),
                cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errno_variants, setup, teardown),
                cmocka_unit_test_setup_teardown(test_journal_failure_falls_back_to_console, setup, teardown),
                cmocka_unit_test_setup_teardown(test_console_line, setup, teardown),
                cmocka_unit_test_setup_teardown(test_console_debug_shows_all_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_console_one_line_per_event, setup, teardown),
                cmocka_unit_test_setup_teardown(test_auto_target, setup, teardown),
                cmocka_unit_test_setup_teardown(test_log_int, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
