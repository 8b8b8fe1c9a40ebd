/* Credentials loading: real temp directories and files with real modes, the real
 * environment. Every error path also checks that its message does not carry a secret. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "credentials.h"
#include "limits.h"
#include "macro.h"
#include "util.h"

/* Distinct, recognisable values per source, so a test sees which source won and can
 * search messages for any of them. */
#define DIR_AK "DIRAK0000000000000001"
#define DIR_SK "DirSecretKey000000000000000000000000001"
#define FILE_AK "FILEAK000000000000002"
#define FILE_SK "FileSecretKey00000000000000000000000002"
#define ENV_AK "ENVAK0000000000000003"
#define ENV_SK "EnvSecretKey000000000000000000000000003"
#define TOKEN "MIIEXAMPLEtoken-abc_def+ghi/jkl="
#define SEC_TOKEN "gQpjbi1ub3J0aC00SECURITYTOKEN"
#define PASSWORD "p4ss word with spaces"
#define PROJECT "ed43aef64dff4e5c81cb84b71adcb3fd"

static const char *const all_secrets[] = {
        DIR_AK, DIR_SK, FILE_AK, FILE_SK, ENV_AK, ENV_SK, TOKEN, SEC_TOKEN, PASSWORD,
        "DirSecretKey", "FileSecretKey", "EnvSecretKey", "SECURITYTOKEN", "p4ss",
};

static void assert_no_secret(const char *message) {
        assert_non_null(message);
        for (size_t i = 0; i < ELEMENTSOF(all_secrets); i++)
                if (strstr(message, all_secrets[i]))
                        fail_msg("message leaks a secret (%s): %s", all_secrets[i], message);
}

typedef struct Fixture {
        char dir[64];       /* temp root */
        char creds[96];     /* $CREDENTIALS_DIRECTORY candidate (created on demand) */
        char files[96];     /* where config-named files go */
        Config config;
} Fixture;

static void clear_env(void) {
        unsetenv("CREDENTIALS_DIRECTORY");
        unsetenv("HUAWEICLOUD_SDK_AK");
        unsetenv("HUAWEICLOUD_SDK_SK");
        unsetenv("HUAWEICLOUD_SDK_SECURITY_TOKEN");
        unsetenv("HUAWEICLOUD_SDK_PROJECT_ID");
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        assert_non_null(f);
        snprintf(f->dir, sizeof f->dir, "/tmp/test-credentials.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->creds, sizeof f->creds, "%s/creds", f->dir);
        snprintf(f->files, sizeof f->files, "%s/etc", f->dir);
        assert_int_equal(mkdir(f->creds, 0700), 0);
        assert_int_equal(mkdir(f->files, 0755), 0);
        f->config.file = (char *) "/etc/notebookd/notebookd.yaml";
        clear_env();
        *state = f;
        return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        return remove(path);
}

static void config_free_paths(Config *c) {
        free(c->ak_file);
        free(c->sk_file);
        free(c->security_token_file);
        free(c->token_file);
        free(c->password_file);
}

static int teardown(void **state) {
        Fixture *f = *state;
        clear_env();
        config_free_paths(&f->config);
        assert_int_equal(nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        free(f);
        return 0;
}

/* Write path with exactly these bytes and mode (fchmod: the umask must not decide). */
static void write_file_n(const char *path, const char *content, size_t len, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, len), (ssize_t) len);
        assert_int_equal(fchmod(fd, mode), 0);
        assert_int_equal(close(fd), 0);
}

static void write_file(const char *path, const char *content, mode_t mode) {
        write_file_n(path, content, strlen(content), mode);
}

static void put_cred(Fixture *f, const char *name, const char *content) {
        _cleanup_free_ char *p = xasprintf("%s/%s", f->creds, name);
        write_file(p, content, 0400);
        setenv("CREDENTIALS_DIRECTORY", f->creds, 1);
}

/* Write a config-named file and point the config key at it. */
static char *put_file(Fixture *f, char **key, const char *name, const char *content, mode_t mode) {
        free(*key);
        *key = xasprintf("%s/%s", f->files, name);
        assert_non_null(*key);
        write_file(*key, content, mode);
        return *key;
}

/* Load expecting failure r; returns the message (caller frees) after the leak check. */
static char *load_fails(const Config *c, int r) {
        Credentials *cr = NULL;
        char *error = NULL;
        int got = credentials_load(c, &cr, &error);
        if (got != r)
                fail_msg("credentials_load: expected %d, got %d (%s)", r, got, strempty(error));
        assert_null(cr);
        assert_no_secret(error);
        return error;
}

static Credentials *load_ok(const Config *c) {
        Credentials *cr = NULL;
        char *error = NULL;
        int r = credentials_load(c, &cr, &error);
        if (r < 0)
                fail_msg("credentials_load: %d (%s)", r, strempty(error));
        assert_null(error);
        assert_non_null(cr);
        return cr;
}

/* ---- each source ---- */

static void test_environment(void **state) {
        Fixture *f = *state;
        setenv("HUAWEICLOUD_SDK_AK", ENV_AK, 1);
        setenv("HUAWEICLOUD_SDK_SK", ENV_SK, 1);
        _cleanup_(credentials_freep) Credentials *cr = load_ok(&f->config);
        assert_int_equal(cr->kind, CREDENTIALS_AKSK);
        assert_string_equal(cr->ak, ENV_AK);
        assert_string_equal(cr->sk, ENV_SK);
        assert_null(cr->security_token);
        assert_null(cr->project_id);
        assert_string_equal(cr->ak_source, "environment variable HUAWEICLOUD_SDK_AK");
        assert_string_equal(cr->sk_source, "environment variable HUAWEICLOUD_SDK_SK");
        assert_string_equal(cr->source, "the environment");
        assert_string_equal(credentials_kind_to_string(cr), "AK/SK");

        _cleanup_free_ char *d = credentials_describe(cr);
        assert_string_equal(d, "AK/SK from environment variable HUAWEICLOUD_SDK_AK and environment variable "
                               "HUAWEICLOUD_SDK_SK");
        assert_no_secret(d);
}

static void test_environment_security_token_and_project(void **state) {
        Fixture *f = *state;
        setenv("HUAWEICLOUD_SDK_AK", ENV_AK, 1);
        setenv("HUAWEICLOUD_SDK_SK", ENV_SK, 1);
        setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", SEC_TOKEN, 1);
        setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT, 1);
        _cleanup_(credentials_freep) Credentials *cr = load_ok(NULL);
        assert_string_equal(cr->security_token, SEC_TOKEN);
        assert_string_equal(cr->project_id, PROJECT);
        assert_string_equal(cr->project_id_source, "environment variable HUAWEICLOUD_SDK_PROJECT_ID");
        assert_string_equal(credentials_kind_to_string(cr), "temporary AK/SK");
        _cleanup_free_ char *d = credentials_describe(cr);
        assert_non_null(strstr(d, "HUAWEICLOUD_SDK_SECURITY_TOKEN"));
        assert_no_secret(d);
        (void) f;
}

static void test_credentials_directory(void **state) {
        Fixture *f = *state;
        /* one trailing newline goes, CRLF included */
        put_cred(f, "ak", DIR_AK "\n");
        put_cred(f, "sk", DIR_SK "\r\n");
        put_cred(f, "security-token", SEC_TOKEN);
        _cleanup_(credentials_freep) Credentials *cr = load_ok(&f->config);
        assert_int_equal(cr->kind, CREDENTIALS_AKSK);
        assert_string_equal(cr->ak, DIR_AK);
        assert_string_equal(cr->sk, DIR_SK);
        assert_string_equal(cr->security_token, SEC_TOKEN);
        _cleanup_free_ char *src = xasprintf("credential 'sk' in $CREDENTIALS_DIRECTORY (%s)", f->creds);
        assert_string_equal(cr->sk_source, src);
}

static void test_credentials_directory_mode_not_checked(void **state) {
        Fixture *f = *state;
        /* systemd may grant access through an ACL, which shows as a group bit */
        put_cred(f, "token", TOKEN);
        _cleanup_free_ char *p = xasprintf("%s/token", f->creds);
        assert_int_equal(chmod(p, 0440), 0);
        _cleanup_(credentials_freep) Credentials *cr = load_ok(&f->config);
        assert_int_equal(cr->kind, CREDENTIALS_TOKEN);
        assert_string_equal(cr->token, TOKEN);
        assert_string_equal(credentials_kind_to_string(cr), "IAM token");
}

static void test_config_files(void **state) {
        Fixture *f = *state;
        put_file(f, &f->config.ak_file, "ak", FILE_AK "\n", 0600);
        put_file(f, &f->config.sk_file, "sk", FILE_SK, 0400);
        _cleanup_(credentials_freep) Credentials *cr = load_ok(&f->config);
        assert_string_equal(cr->ak, FILE_AK);
        assert_string_equal(cr->sk, FILE_SK);
        _cleanup_free_ char *src = xasprintf("file %s/sk (sk_file)", f->files);
        assert_string_equal(cr->sk_source, src);
        _cleanup_free_ char *d = credentials_describe(cr);
        assert_non_null(strstr(d, "(ak_file)"));
        assert_no_secret(d);
}

/* `credentials: metadata`: nothing is read here, whatever else is around; the API
 * client fetches the keys. A credential file named beside it is a contradiction. */
static void test_metadata(void **state) {
        Fixture *f = *state;
        put_cred(f, "ak", DIR_AK);
        put_cred(f, "sk", DIR_SK);
        setenv("HUAWEICLOUD_SDK_AK", ENV_AK, 1);
        setenv("HUAWEICLOUD_SDK_SK", ENV_SK, 1);
        f->config.credentials = (char *) "metadata";
        {
                _cleanup_(credentials_freep) Credentials *cr = load_ok(&f->config);
                assert_int_equal(cr->kind, CREDENTIALS_METADATA);
                assert_null(cr->ak);
                assert_null(cr->sk);
                assert_null(cr->security_token);
                assert_string_equal(cr->metadata_endpoint, "http://169.254.169.254");
                _cleanup_free_ char *d = credentials_describe(cr);
                assert_string_equal(d, "temporary AK/SK from the ECS metadata service at http://169.254.169.254 "
                                       "(credentials: metadata)");
        }
        f->config.metadata_endpoint = (char *) "http://127.0.0.1:9";
        {
                _cleanup_(credentials_freep) Credentials *cr = load_ok(&f->config);
                assert_string_equal(cr->metadata_endpoint, "http://127.0.0.1:9");
        }
        put_file(f, &f->config.sk_file, "sk", FILE_SK, 0600);
        _cleanup_free_ char *m = load_fails(&f->config, -EINVAL);
        assert_string_equal(m, "/etc/notebookd/notebookd.yaml sets both 'credentials: metadata' and sk_file: keep "
                               "one source of credentials");
        f->config.credentials = NULL;
        f->config.metadata_endpoint = NULL;
}

static void test_token_file(void **state) {
        Fixture *f = *state;
        put_file(f, &f->config.token_file, "token", TOKEN "\n", 0600);
        _cleanup_(credentials_freep) Credentials *cr = load_ok(&f->config);
        assert_int_equal(cr->kind, CREDENTIALS_TOKEN);
        assert_string_equal(cr->token, TOKEN);
        assert_null(cr->ak);
        assert_null(cr->sk);
}

static void test_password(void **state) {
        Fixture *f = *state;
        put_file(f, &f->config.password_file, "password", PASSWORD "\n", 0600);

        /* no iam_user/iam_domain: says which */
        _cleanup_free_ char *e = load_fails(&f->config, -EINVAL);
        assert_non_null(strstr(e, "iam_user and iam_domain not set in /etc/notebookd/notebookd.yaml"));
        f->config.iam_user = (char *) "robot";
        _cleanup_free_ char *e2 = load_fails(&f->config, -EINVAL);
        assert_non_null(strstr(e2, "but iam_domain not set"));

        f->config.iam_domain = (char *) "acme";
        _cleanup_(credentials_freep) Credentials *cr = load_ok(&f->config);
        assert_int_equal(cr->kind, CREDENTIALS_PASSWORD);
        /* spaces are fine in a password; the trailing newline is not part of it */
        assert_string_equal(cr->password, PASSWORD);
        assert_string_equal(cr->iam_user, "robot");
        assert_string_equal(cr->iam_domain, "acme");
        _cleanup_free_ char *d = credentials_describe(cr);
        assert_non_null(strstr(d, "IAM password for user robot in domain acme from file "));
        assert_no_secret(d);
        f->config.iam_user = f->config.iam_domain = NULL;
}

/* ---- precedence ---- */

static void test_precedence(void **state) {
        Fixture *f = *state;
        put_cred(f, "ak", DIR_AK);
        put_cred(f, "sk", DIR_SK);
        put_file(f, &f->config.ak_file, "ak", FILE_AK, 0600);
        put_file(f, &f->config.sk_file, "sk", FILE_SK, 0600);
        setenv("HUAWEICLOUD_SDK_AK", ENV_AK, 1);
        setenv("HUAWEICLOUD_SDK_SK", ENV_SK, 1);

        Credentials *cr = load_ok(&f->config);
        assert_string_equal(cr->ak, DIR_AK);
        assert_string_equal(cr->sk, DIR_SK);
        assert_false(cr->from_config_files);   /* the daemon does not watch them then */
        cr = credentials_free(cr);
        assert_null(cr);

        /* without the directory: the config's files */
        unsetenv("CREDENTIALS_DIRECTORY");
        cr = load_ok(&f->config);
        assert_string_equal(cr->ak, FILE_AK);
        assert_string_equal(cr->sk, FILE_SK);
        assert_true(cr->from_config_files);
        cr = credentials_free(cr);

        /* a directory holding none of ours does not stop the search */
        _cleanup_free_ char *empty = xasprintf("%s/empty", f->dir);
        assert_int_equal(mkdir(empty, 0700), 0);
        setenv("CREDENTIALS_DIRECTORY", empty, 1);
        cr = load_ok(&f->config);
        assert_string_equal(cr->ak, FILE_AK);
        cr = credentials_free(cr);

        /* no config files: the environment */
        cr = load_ok(NULL);
        assert_string_equal(cr->ak, ENV_AK);
        assert_string_equal(cr->sk, ENV_SK);
        assert_false(cr->from_config_files);
        cr = credentials_free(cr);
}

static void test_no_mixing_sources(void **state) {
        Fixture *f = *state;
        /* an AK in the directory and the SK in the environment is an error, not a mix */
        put_cred(f, "ak", DIR_AK);
        setenv("HUAWEICLOUD_SDK_SK", ENV_SK, 1);
        _cleanup_free_ char *e = load_fails(&f->config, -EINVAL);
        _cleanup_free_ char *want = xasprintf("found an AK (credential 'ak' in $CREDENTIALS_DIRECTORY (%s)) but no SK: "
                                              "no 'sk' in $CREDENTIALS_DIRECTORY (%s)",
                                              f->creds, f->creds);
        assert_string_equal(e, want);
}

static void test_broken_source_stops_search(void **state) {
        Fixture *f = *state;
        /* a configured file that is missing must not fall back to the environment */
        f->config.ak_file = xasprintf("%s/nope-ak", f->files);
        f->config.sk_file = xasprintf("%s/nope-sk", f->files);
        setenv("HUAWEICLOUD_SDK_AK", ENV_AK, 1);
        setenv("HUAWEICLOUD_SDK_SK", ENV_SK, 1);
        _cleanup_free_ char *e = load_fails(&f->config, -ENOENT);
        _cleanup_free_ char *want = xasprintf("file %s/nope-ak (ak_file) does not exist", f->files);
        assert_string_equal(e, want);
}

/* sk_file: <the SK itself> is a likely slip (the hint for an `sk:` key says to use
 * sk_file): the error must name the key, never echo the value. */
static void test_secret_pasted_as_file_name(void **state) {
        Fixture *f = *state;
        f->config.ak_file = strdup(FILE_AK);
        f->config.sk_file = strdup(FILE_SK);
        _cleanup_free_ char *e = load_fails(&f->config, -ENOENT);
        assert_null(strstr(e, FILE_AK));
        assert_null(strstr(e, FILE_SK));
        assert_non_null(strstr(e, "ak_file"));
}

/* ---- missing pieces ---- */

static void test_nothing(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *e = load_fails(&f->config, -ENOENT);
        assert_string_equal(e, "no credentials found: $CREDENTIALS_DIRECTORY is not set; "
                               "/etc/notebookd/notebookd.yaml names none of ak_file, sk_file, security_token_file, "
                               "token_file, password_file; HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK are not set");

        /* empty variables count as unset; an empty credentials directory is named */
        setenv("HUAWEICLOUD_SDK_AK", "", 1);
        setenv("CREDENTIALS_DIRECTORY", f->creds, 1);
        _cleanup_free_ char *e2 = load_fails(NULL, -ENOENT);
        _cleanup_free_ char *want = xasprintf("no credentials found: $CREDENTIALS_DIRECTORY (%s) holds none of ak, sk, "
                                              "security-token, token, password; the configuration names none of",
                                              f->creds);
        assert_true(strncmp(e2, want, strlen(want)) == 0);
}

static void test_ak_without_sk(void **state) {
        Fixture *f = *state;
        setenv("HUAWEICLOUD_SDK_AK", ENV_AK, 1);
        _cleanup_free_ char *e = load_fails(&f->config, -EINVAL);
        assert_string_equal(e, "found an AK (environment variable HUAWEICLOUD_SDK_AK) but no SK: HUAWEICLOUD_SDK_SK is "
                               "not set");

        unsetenv("HUAWEICLOUD_SDK_AK");
        setenv("HUAWEICLOUD_SDK_SK", ENV_SK, 1);
        _cleanup_free_ char *e2 = load_fails(&f->config, -EINVAL);
        assert_string_equal(e2, "found an SK (environment variable HUAWEICLOUD_SDK_SK) but no AK: HUAWEICLOUD_SDK_AK is "
                                "not set");

        /* config: the key that is not set is named */
        unsetenv("HUAWEICLOUD_SDK_SK");
        put_file(f, &f->config.ak_file, "ak", FILE_AK, 0600);
        _cleanup_free_ char *e3 = load_fails(&f->config, -EINVAL);
        assert_non_null(strstr(e3, "but no SK: sk_file is not set in /etc/notebookd/notebookd.yaml"));
}

static void test_security_token_alone(void **state) {
        Fixture *f = *state;
        put_cred(f, "security-token", SEC_TOKEN);
        _cleanup_free_ char *e = load_fails(&f->config, -EINVAL);
        assert_non_null(strstr(e, "found a security token (credential 'security-token' in"));
        assert_non_null(strstr(e, "but no AK and SK"));
}

static void test_two_kinds(void **state) {
        Fixture *f = *state;
        put_cred(f, "ak", DIR_AK);
        put_cred(f, "sk", DIR_SK);
        put_cred(f, "token", TOKEN);
        _cleanup_free_ char *e = load_fails(&f->config, -EINVAL);
        assert_non_null(strstr(e, "more than one kind of credential in $CREDENTIALS_DIRECTORY"));
        assert_non_null(strstr(e, "keep one kind"));

        put_file(f, &f->config.token_file, "token", TOKEN, 0600);
        put_file(f, &f->config.password_file, "password", PASSWORD, 0600);
        unsetenv("CREDENTIALS_DIRECTORY");
        _cleanup_free_ char *e2 = load_fails(&f->config, -EINVAL);
        assert_non_null(strstr(e2, "an IAM token from file"));
        assert_non_null(strstr(e2, "an IAM password from file"));
}

/* ---- refusals ---- */

static void test_mode_refused(void **state) {
        Fixture *f = *state;
        static const mode_t bad[] = { 0644, 0640, 0604, 0620, 0602, 0610, 0666 };
        put_file(f, &f->config.sk_file, "sk", FILE_SK, 0600);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *path = put_file(f, &f->config.ak_file, "ak", FILE_AK, bad[i]);
                _cleanup_free_ char *e = load_fails(&f->config, -EACCES);
                _cleanup_free_ char *want = xasprintf("file %s (ak_file) has mode %04o: a credential file must not be "
                                                      "accessible by group or others (chmod 600 %s)",
                                                      path, (unsigned) bad[i], path);
                assert_string_equal(e, want);
        }
        /* owner-only modes are fine */
        put_file(f, &f->config.ak_file, "ak", FILE_AK, 0400);
        Credentials *cr = load_ok(&f->config);
        credentials_free(cr);
}

static void test_owner_refused(void **state) {
        Fixture *f = *state;
        if (geteuid() != 0)
                skip();
        const char *path = put_file(f, &f->config.ak_file, "ak", FILE_AK, 0600);
        put_file(f, &f->config.sk_file, "sk", FILE_SK, 0600);
        assert_int_equal(chown(path, 65534, 65534), 0);
        _cleanup_free_ char *e = load_fails(&f->config, -EACCES);
        assert_non_null(strstr(e, "is owned by uid 65534: a credential file must be owned by this user (uid 0) or root"));
}

static void test_not_regular(void **state) {
        Fixture *f = *state;
        put_file(f, &f->config.sk_file, "sk", FILE_SK, 0600);
        /* a directory */
        f->config.ak_file = xasprintf("%s", f->creds);
        _cleanup_free_ char *e = load_fails(&f->config, -EINVAL);
        _cleanup_free_ char *want = xasprintf("file %s (ak_file) is not a regular file", f->creds);
        assert_string_equal(e, want);

        /* a FIFO with no writer: refused, without blocking on open */
        free(f->config.ak_file);
        f->config.ak_file = xasprintf("%s/fifo", f->files);
        assert_int_equal(mkfifo(f->config.ak_file, 0600), 0);
        _cleanup_free_ char *e2 = load_fails(&f->config, -EINVAL);
        assert_non_null(strstr(e2, "is not a regular file"));

        /* in the credentials directory too */
        _cleanup_free_ char *d = xasprintf("%s/token", f->creds);
        assert_int_equal(mkdir(d, 0700), 0);
        setenv("CREDENTIALS_DIRECTORY", f->creds, 1);
        _cleanup_free_ char *e3 = load_fails(&f->config, -EINVAL);
        assert_non_null(strstr(e3, "credential 'token' in $CREDENTIALS_DIRECTORY"));
}

static void test_credentials_directory_missing(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *gone = xasprintf("%s/gone", f->dir);
        setenv("CREDENTIALS_DIRECTORY", gone, 1);
        setenv("HUAWEICLOUD_SDK_AK", ENV_AK, 1);
        setenv("HUAWEICLOUD_SDK_SK", ENV_SK, 1);
        _cleanup_free_ char *e = load_fails(&f->config, -ENOENT);
        assert_non_null(strstr(e, gone));
}

static void test_size_cap(void **state) {
        Fixture *f = *state;
        put_file(f, &f->config.sk_file, "sk", FILE_SK, 0600);
        char *big = malloc(CREDENTIAL_MAX_SIZE + 2);
        assert_non_null(big);
        memset(big, 'A', CREDENTIAL_MAX_SIZE + 1);

        /* exactly the cap: accepted (and the newline after it is not counted) */
        f->config.ak_file = xasprintf("%s/ak", f->files);
        big[CREDENTIAL_MAX_SIZE] = '\n';
        write_file_n(f->config.ak_file, big, CREDENTIAL_MAX_SIZE, 0600);
        Credentials *cr = load_ok(&f->config);
        assert_int_equal(strlen(cr->ak), CREDENTIAL_MAX_SIZE);
        cr = credentials_free(cr);

        /* one byte more: refused */
        big[CREDENTIAL_MAX_SIZE] = 'A';
        write_file_n(f->config.ak_file, big, CREDENTIAL_MAX_SIZE + 1, 0600);
        _cleanup_free_ char *e = load_fails(&f->config, -EFBIG);
        assert_non_null(strstr(e, "65537 bytes, more than the 65536"));

        /* the same in the environment */
        big[CREDENTIAL_MAX_SIZE + 1] = 0;
        setenv("HUAWEICLOUD_SDK_AK", big, 1);
        setenv("HUAWEICLOUD_SDK_SK", ENV_SK, 1);
        _cleanup_free_ char *e2 = load_fails(NULL, -EFBIG);
        assert_non_null(strstr(e2, "environment variable HUAWEICLOUD_SDK_AK is 65537 bytes"));
        free(big);
}

static void test_bad_content(void **state) {
        Fixture *f = *state;
        put_file(f, &f->config.sk_file, "sk", FILE_SK, 0600);
        static const struct {
                const char *content;
                const char *message_part;
        } cases[] = {
                { "", "is empty" },
                { "\n", "is empty" },
                /* only one newline is removed */
                { FILE_AK "\n\n", "contains whitespace, a control character or non-ASCII (at byte 22)" },
                { FILE_AK " ", "contains whitespace" },
                { " " FILE_AK, "(at byte 1)" },
                { "FILE AK", "(at byte 5)" },
                { "FILE\tAK", "(at byte 5)" },
                { FILE_AK "\xc3\xa9", "non-ASCII" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                put_file(f, &f->config.ak_file, "ak", cases[i].content, 0600);
                _cleanup_free_ char *e = load_fails(&f->config, -EINVAL);
                if (!strstr(e, cases[i].message_part))
                        fail_msg("case %zu: %s", i, e);
                assert_true(strncmp(e, "file ", 5) == 0);
        }

        /* NUL inside a file */
        write_file_n(f->config.ak_file, "AK\0AK", 5, 0600);
        _cleanup_free_ char *e = load_fails(&f->config, -EINVAL);
        assert_non_null(strstr(e, "contains a NUL byte (at byte 3)"));

        /* a password may not hold a line break either */
        put_file(f, &f->config.password_file, "password", "p4ss\nword", 0600);
        free(f->config.ak_file);
        free(f->config.sk_file);
        f->config.ak_file = f->config.sk_file = NULL;
        f->config.iam_user = f->config.iam_domain = (char *) "x";
        _cleanup_free_ char *e2 = load_fails(&f->config, -EINVAL);
        assert_non_null(strstr(e2, "contains a line break (at byte 5)"));
        f->config.iam_user = f->config.iam_domain = NULL;

        /* the environment gets the same checks */
        setenv("HUAWEICLOUD_SDK_AK", ENV_AK " ", 1);
        setenv("HUAWEICLOUD_SDK_SK", ENV_SK, 1);
        _cleanup_free_ char *e3 = load_fails(NULL, -EINVAL);
        assert_string_equal(e3, "environment variable HUAWEICLOUD_SDK_AK contains whitespace, a control character or "
                                "non-ASCII (at byte 22)");
}

static void test_bad_project_id(void **state) {
        Fixture *f = *state;
        setenv("HUAWEICLOUD_SDK_AK", ENV_AK, 1);
        setenv("HUAWEICLOUD_SDK_SK", ENV_SK, 1);
        /* someone pasted the SK into the project variable: refused, not echoed */
        setenv("HUAWEICLOUD_SDK_PROJECT_ID", ENV_SK, 1);
        _cleanup_free_ char *e = load_fails(&f->config, -EINVAL);
        assert_string_equal(e, "environment variable HUAWEICLOUD_SDK_PROJECT_ID is not a project ID (32 hexadecimal "
                               "digits; it has 39 characters)");
        setenv("HUAWEICLOUD_SDK_PROJECT_ID", "ed43aef64dff4e5c81cb84b71adcb3fg", 1);
        _cleanup_free_ char *e2 = load_fails(&f->config, -EINVAL);
        assert_non_null(strstr(e2, "it has 32 characters"));
}

static void test_error_optional(void **state) {
        Fixture *f = *state;
        /* ret_error may be NULL; the error code still comes back */
        Credentials *cr = NULL;
        assert_int_equal(credentials_load(&f->config, &cr, NULL), -ENOENT);
        assert_null(cr);
        assert_int_equal(credentials_load(&f->config, NULL, NULL), -EINVAL);
        assert_null(credentials_free(NULL));
}

/* ---- memory ---- */

/* The VmFlags of the mapping that holds p, from /proc/self/smaps. */
static bool mapping_has_flag(const void *p, const char *flag) {
        _cleanup_fclose_ FILE *sm = fopen("/proc/self/smaps", "re");
        assert_non_null(sm);
        char line[512];
        bool inside = false;
        uintptr_t a = (uintptr_t) p;
        while (fgets(line, sizeof line, sm)) {
                unsigned long lo, hi;
                if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
                        inside = a >= lo && a < hi;
                        continue;
                }
                if (inside && strncmp(line, "VmFlags:", 8) == 0) {
                        char want[8];
                        snprintf(want, sizeof want, " %s", flag);
                        return strstr(line + 7, want) != NULL;
                }
        }
        fail_msg("no mapping holds %p", p);
        return false;
}

static void test_secrets_not_dumped(void **state) {
        Fixture *f = *state;
        setenv("HUAWEICLOUD_SDK_AK", ENV_AK, 1);
        setenv("HUAWEICLOUD_SDK_SK", ENV_SK, 1);
        setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", SEC_TOKEN, 1);
        _cleanup_(credentials_freep) Credentials *cr = load_ok(&f->config);
        /* dd: MADV_DONTDUMP; wf: MADV_WIPEONFORK */
        assert_true(mapping_has_flag(cr->sk, "dd"));
        assert_true(mapping_has_flag(cr->ak, "dd"));
        assert_true(mapping_has_flag(cr->security_token, "dd"));
        assert_true(mapping_has_flag(cr->sk, "wf"));
        /* the sources are ordinary heap: the test can tell the difference */
        assert_false(mapping_has_flag(cr->sk_source, "dd"));

        /* a fork does not inherit the secret */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(cr->sk[0] == 0 ? 0 : 1);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_disable_core_dumps(void **state) {
        (void) state;
        /* process-wide: try it in a child, which exits without running atexit handlers */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (prctl(PR_GET_DUMPABLE) != 1)
                        _exit(2);
                if (credentials_disable_core_dumps() < 0)
                        _exit(3);
                _exit(prctl(PR_GET_DUMPABLE) == 0 ? 0 : 1);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_environment),
                T(test_environment_security_token_and_project),
                T(test_credentials_directory),
                T(test_credentials_directory_mode_not_checked),
                T(test_config_files),
                T(test_metadata),
                T(test_token_file),
                T(test_password),
                T(test_precedence),
                T(test_no_mixing_sources),
                T(test_broken_source_stops_search),
                T(test_secret_pasted_as_file_name),
                T(test_nothing),
                T(test_ak_without_sk),
                T(test_security_token_alone),
                T(test_two_kinds),
                T(test_mode_refused),
                T(test_owner_refused),
                T(test_not_regular),
                T(test_credentials_directory_missing),
                T(test_size_cap),
                T(test_bad_content),
                T(test_bad_project_id),
                T(test_error_optional),
                T(test_secrets_not_dumped),
                T(test_disable_core_dumps),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
