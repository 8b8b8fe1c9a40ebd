/* The config file: defaults, every key, every bad value (positioned), atomicity on
 * error, the derived endpoint. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* LDFLAGS: -Wl,--wrap=strdup,--wrap=free */

#include "config.h"
#include "limits.h"
#include "util.h"

static char tmpdir[64];

static int make_tmpdir(void **state) {
        (void) state;
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-config-XXXXXX");
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state) {
        (void) state;
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

/* Write text to a fresh file; returns its path (caller frees). */
/* The copies config.c makes of a proxy URL (strdup; the YAML tree's scalars come from
 * strndup and are not watched) are checked when freed: no password may be left in them. */
#define SECRET "Pr0xySecret"
static struct {
        void *p;
        size_t len;
} watched[16];
static unsigned n_unwiped;
char *__real_strdup(const char *s);
char *__wrap_strdup(const char *s);
char *__wrap_strdup(const char *s) {
        char *copy = __real_strdup(s);
        if (copy && strstr(s, SECRET))
                for (size_t i = 0; i < ELEMENTSOF(watched); i++)
                        if (!watched[i].p) {
                                watched[i].p = copy;
                                watched[i].len = strlen(s);
                                break;
                        }
        return copy;
}
void __real_free(void *p);
void __wrap_free(void *p);
void __wrap_free(void *p) {
        for (size_t i = 0; p && i < ELEMENTSOF(watched); i++)
                if (watched[i].p == p) {
                        if (memmem(p, watched[i].len, SECRET, strlen(SECRET)))
                                n_unwiped++;
                        watched[i].p = NULL;
                }
        __real_free(p);
}

static char *write_config(const char *text) {
        static unsigned counter;
        char *path = xasprintf("%s/c%u.yaml", tmpdir, counter++);
        assert_non_null(path);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        return path;
}

static void dump(const Diags *d) {
        for (size_t i = 0; i < d->n; i++)
                diag_print(&d->items[i], stderr);
}

static void assert_diag(const Diags *d, unsigned line, unsigned column, const char *message) {
        for (size_t i = 0; i < d->n; i++)
                if (d->items[i].line == line && d->items[i].column == column && streq(d->items[i].message, message) &&
                    d->items[i].severity == DIAG_ERROR)
                        return;
        dump(d);
        fail_msg("no error at %u:%u: %s", line, column, message);
}

/* Loading text must fail with exactly one error at line:column, leaving c as it was. */
static void bad1(const char *text, unsigned line, unsigned column, const char *message) {
        Config c;
        assert_int_equal(config_init(&c), 0);
        _cleanup_free_ char *path = write_config(text);
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(config_load(&c, path, &d), -EINVAL);
        assert_diag(&d, line, column, message);
        if (d.n != 1) {
                dump(&d);
                fail_msg("%zu diagnostics, want 1", d.n);
        }
        assert_string_equal(d.items[0].file, path);
        assert_null(c.file);
        assert_int_equal(c.concurrency, CONFIG_DEFAULT_CONCURRENCY);
        config_done(&c);
}

static void test_defaults(void **state) {
        (void) state;
        Config c;
        unsetenv("STATE_DIRECTORY");
        assert_int_equal(config_init(&c), 0);
        assert_null(c.file);
        assert_null(c.endpoint);
        assert_null(c.region);
        assert_null(c.project_id);
        assert_string_equal(c.manifests, CONFIG_DEFAULT_MANIFESTS);
        assert_string_equal(c.state_dir, CONFIG_DEFAULT_STATE_DIR);
        assert_int_equal(c.concurrency, CONFIG_DEFAULT_CONCURRENCY);
        assert_int_equal(c.resync_interval_ms, CONFIG_DEFAULT_RESYNC_INTERVAL_MS);
        assert_int_equal(c.request_timeout_ms, CONFIG_DEFAULT_REQUEST_TIMEOUT_MS);
        assert_int_equal(c.connect_timeout_ms, CONFIG_DEFAULT_CONNECT_TIMEOUT_MS);
        assert_int_equal(c.auth_retry_interval_ms, CONFIG_DEFAULT_AUTH_RETRY_INTERVAL_MS);
        assert_null(c.ak_file);
        config_done(&c);
        /* twice is harmless */
        config_done(&c);

        setenv("STATE_DIRECTORY", "/var/lib/notebookd-test", 1);
        assert_int_equal(config_init(&c), 0);
        assert_string_equal(c.state_dir, "/var/lib/notebookd-test");
        config_done(&c);

        /* StateDirectory= with several entries: the first one is ours */
        setenv("STATE_DIRECTORY", "/var/lib/a:/var/lib/b", 1);
        assert_int_equal(config_init(&c), 0);
        assert_string_equal(c.state_dir, "/var/lib/a");
        config_done(&c);

        setenv("STATE_DIRECTORY", "", 1);
        assert_int_equal(config_init(&c), 0);
        assert_string_equal(c.state_dir, CONFIG_DEFAULT_STATE_DIR);
        config_done(&c);
        unsetenv("STATE_DIRECTORY");
}

static void test_full_file(void **state) {
        (void) state;
        Config c;
        assert_int_equal(config_init(&c), 0);
        _cleanup_free_ char *path = write_config("# notebookd\n"
                                                 "endpoint: https://modelarts.example.test:8443/\n"
                                                 "region: cn-north-4\n"
                                                 "project_id: ed43aef64dff4e5c81cb84b71adcb3fd\n"
                                                 "manifests: /srv/manifests\n"
                                                 "state_dir: /srv/state\n"
                                                 "concurrency: 4\n"
                                                 "resync_interval: 1h30m\n"
                                                 "request_timeout: 45\n"
                                                 "connect_timeout: 5s\n"
                                                 "auth_retry_interval: 15s\n"
                                                 "ca_file: /etc/ssl/extra.pem\n"
                                                 "ak_file: /etc/notebookd/ak\n"
                                                 "sk_file: /etc/notebookd/sk\n"
                                                 "security_token_file: /etc/notebookd/token\n"
                                                 "token_file: /etc/notebookd/iam-token\n"
                                                 "iam_endpoint: https://iam.cn-north-4.myhuaweicloud.com\n"
                                                 "iam_user: ops\n"
                                                 "iam_domain: team\n"
                                                 "password_file: /etc/notebookd/password\n");
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(config_load(&c, path, &d), 0);
        assert_int_equal(d.n, 0);
        assert_string_equal(c.file, path);
        /* a trailing slash would double up with the request paths */
        assert_string_equal(c.endpoint, "https://modelarts.example.test:8443");
        assert_string_equal(c.region, "cn-north-4");
        assert_string_equal(c.project_id, "ed43aef64dff4e5c81cb84b71adcb3fd");
        assert_string_equal(c.manifests, "/srv/manifests");
        assert_string_equal(c.state_dir, "/srv/state");
        assert_int_equal(c.concurrency, 4);
        assert_int_equal(c.resync_interval_ms, 90 * 60 * 1000);
        assert_int_equal(c.request_timeout_ms, 45 * 1000);
        assert_int_equal(c.connect_timeout_ms, 5 * 1000);
        assert_int_equal(c.auth_retry_interval_ms, 15 * 1000);
        assert_string_equal(c.ca_file, "/etc/ssl/extra.pem");
        assert_string_equal(c.ak_file, "/etc/notebookd/ak");
        assert_string_equal(c.sk_file, "/etc/notebookd/sk");
        assert_string_equal(c.security_token_file, "/etc/notebookd/token");
        assert_string_equal(c.token_file, "/etc/notebookd/iam-token");
        assert_string_equal(c.iam_endpoint, "https://iam.cn-north-4.myhuaweicloud.com");
        assert_string_equal(c.iam_user, "ops");
        assert_string_equal(c.iam_domain, "team");
        assert_string_equal(c.password_file, "/etc/notebookd/password");
        _cleanup_free_ char *e = config_effective_endpoint(&c);
        assert_string_equal(e, "https://modelarts.example.test:8443");

        /* a second file overrides only what it names */
        _cleanup_free_ char *path2 = write_config("concurrency: 8\n");
        assert_int_equal(config_load(&c, path2, &d), 0);
        assert_int_equal(c.concurrency, 8);
        assert_string_equal(c.region, "cn-north-4");
        assert_string_equal(c.file, path2);
        config_done(&c);
}

static void test_empty_and_missing(void **state) {
        (void) state;
        Config c;
        assert_int_equal(config_init(&c), 0);
        _cleanup_diags_ Diags d = DIAGS_INIT;
        _cleanup_free_ char *missing = xasprintf("%s/nope.yaml", tmpdir);
        assert_int_equal(config_load(&c, missing, &d), -ENOENT);
        assert_int_equal(d.n, 0);

        _cleanup_free_ char *empty = write_config("# all defaults\n");
        assert_int_equal(config_load(&c, empty, &d), 0);
        assert_int_equal(d.n, 0);
        assert_int_equal(c.concurrency, CONFIG_DEFAULT_CONCURRENCY);
        assert_string_equal(c.file, empty);

        assert_int_equal(config_load(&c, tmpdir, &d), -EINVAL);
        assert_int_equal(d.n, 1);
        assert_int_equal(d.items[0].line, 0);
        assert_string_equal(d.items[0].message, "not a regular file");
        config_done(&c);
}

static void test_too_large(void **state) {
        (void) state;
        char *text = malloc(CONFIG_MAX_FILE_SIZE + 2);
        assert_non_null(text);
        memset(text, '#', CONFIG_MAX_FILE_SIZE + 1);
        text[CONFIG_MAX_FILE_SIZE + 1] = 0;
        _cleanup_free_ char *path = write_config(text);
        free(text);
        Config c;
        assert_int_equal(config_init(&c), 0);
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(config_load(&c, path, &d), -EINVAL);
        assert_int_equal(d.n, 1);
        assert_string_equal(d.items[0].message, "config file too large (limit 65536 bytes)");
        config_done(&c);
}

static void test_unknown_keys(void **state) {
        (void) state;
        bad1("regoin: cn-north-4\n", 1, 1, "unknown key 'regoin' (did you mean 'region'?)");
        bad1("concurrency: 2\nprojectid: x\n", 2, 1, "unknown key 'projectid' (did you mean 'project_id'?)");
        bad1("colour: red\n", 1, 1, "unknown key 'colour'");
        /* a secret written inline: pointed at the *_file key, and its value never echoed */
        bad1("sk: MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc\n", 1, 1,
             "unknown key 'sk' (secrets are not read from the config: use 'sk_file' naming a file)");
        bad1("password: hunter2\n", 1, 1,
             "unknown key 'password' (secrets are not read from the config: use 'password_file' naming a file)");
}

static void test_bad_values(void **state) {
        (void) state;
        bad1("endpoint: ftp://example.com\n", 1, 11, "invalid 'endpoint' 'ftp://example.com': expected an http:// or https:// URL");
        bad1("endpoint: https://\n", 1, 11, "invalid 'endpoint' 'https://': expected an http:// or https:// URL");
        bad1("endpoint: https://a b\n", 1, 11, "invalid 'endpoint' 'https://a b': expected an http:// or https:// URL");
        bad1("endpoint: https://x?y=1\n", 1, 11, "invalid 'endpoint' 'https://x?y=1': expected an http:// or https:// URL");
        bad1("iam_endpoint: iam.example.com\n", 1, 15,
             "invalid 'iam_endpoint' 'iam.example.com': expected an http:// or https:// URL");
        bad1("region: CN North\n", 1, 9, "invalid 'region' 'CN North': expected a region name like 'cn-north-4'");
        bad1("region: cn.north\n", 1, 9, "invalid 'region' 'cn.north': expected a region name like 'cn-north-4'");
        bad1("project_id: ed43aef64dff4e5c81cb84b71adcb3f\n", 1, 13,
             "invalid 'project_id' 'ed43aef64dff4e5c81cb84b71adcb3f': expected 32 hexadecimal digits");
        bad1("project_id: ed43aef64dff4e5c81cb84b71adcb3fg\n", 1, 13,
             "invalid 'project_id' 'ed43aef64dff4e5c81cb84b71adcb3fg': expected 32 hexadecimal digits");
        bad1("manifests: ''\n", 1, 12, "'manifests' must not be empty");
        bad1("manifests:\n", 1, 11, "'manifests' must be a string, got null");
        bad1("state_dir: [a]\n", 1, 12, "'state_dir' must be a string, got a list");
        bad1("ak_file: {}\n", 1, 10, "'ak_file' must be a string, got a mapping");
        bad1("credentials: aksk\n", 1, 14,
             "invalid 'credentials' 'aksk': expected 'metadata' (leave the key out to use ak_file/sk_file, "
             "$CREDENTIALS_DIRECTORY or the environment)");
        bad1("credentials: metadata\nmetadata_endpoint: 169.254.169.254\n", 2, 20,
             "invalid 'metadata_endpoint' '169.254.169.254': expected an http:// or https:// URL");
}

/* `credentials: metadata` and where the service is. */
static void test_credentials_metadata(void **state) {
        (void) state;
        Config c;
        assert_int_equal(config_init(&c), 0);
        assert_null(c.credentials);
        assert_null(c.metadata_endpoint);
        _cleanup_free_ char *path = write_config("credentials: metadata\nmetadata_endpoint: http://127.0.0.1:8080/\n");
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(config_load(&c, path, &d), 0);
        assert_string_equal(c.credentials, "metadata");
        assert_string_equal(c.metadata_endpoint, "http://127.0.0.1:8080");
        assert_int_equal(d.n, 0);
        config_done(&c);

        /* without 'credentials: metadata' the endpoint is unused: said where it is */
        assert_int_equal(config_init(&c), 0);
        _cleanup_free_ char *alone = write_config("region: cn-north-4\nmetadata_endpoint: http://127.0.0.1:8080\n");
        assert_int_equal(config_load(&c, alone, &d), 0);
        assert_int_equal(d.n, 1);
        assert_int_equal(d.n_warnings, 1);
        assert_int_equal(d.items[0].line, 2);
        assert_int_equal(d.items[0].column, 20);
        assert_string_equal(d.items[0].message, "'metadata_endpoint' is ignored without 'credentials: metadata'");
        config_done(&c);
}

static void test_concurrency(void **state) {
        (void) state;
        Config c;
        assert_int_equal(config_init(&c), 0);
        _cleanup_diags_ Diags d = DIAGS_INIT;
        _cleanup_free_ char *one = write_config("concurrency: 1\n");
        assert_int_equal(config_load(&c, one, &d), 0);
        assert_int_equal(c.concurrency, 1);
        _cleanup_free_ char *max = write_config("concurrency: 256\n");
        assert_int_equal(config_load(&c, max, &d), 0);
        assert_int_equal(c.concurrency, CONFIG_MAX_CONCURRENCY);
        config_done(&c);

        bad1("concurrency: 0\n", 1, 14, "'concurrency' must be between 1 and 256, got 0");
        bad1("concurrency: 257\n", 1, 14, "'concurrency' must be between 1 and 256, got 257");
        bad1("concurrency: -1\n", 1, 14, "'concurrency' must be between 1 and 256, got -1");
        bad1("concurrency: \"4\"\n", 1, 14, "'concurrency' must be an integer, got a string");
        bad1("concurrency: four\n", 1, 14, "'concurrency' must be an integer, got a string");
        bad1("concurrency: 2.5\n", 1, 14, "'concurrency' must be an integer, got a number");
}

static void test_durations(void **state) {
        (void) state;
        static const struct {
                const char *text;
                int64_t ms;
        } ok[] = {
                { "resync_interval: 10m\n", 10 * 60 * 1000 },   { "resync_interval: 30s\n", 30 * 1000 },
                { "resync_interval: 1h\n", 3600 * 1000 },       { "resync_interval: 600\n", 600 * 1000 },
                { "resync_interval: 1h30m\n", 5400 * 1000 },    { "resync_interval: 2d\n", 2 * 86400 * 1000LL },
                { "resync_interval: 10s\n", 10 * 1000 },        { "resync_interval: 7d\n", 7 * 86400 * 1000LL },
                { "resync_interval: \"10m\"\n", 10 * 60 * 1000 }, { "resync_interval: 10000ms\n", 10 * 1000 },
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                Config c;
                assert_int_equal(config_init(&c), 0);
                _cleanup_free_ char *path = write_config(ok[i].text);
                _cleanup_diags_ Diags d = DIAGS_INIT;
                assert_int_equal(config_load(&c, path, &d), 0);
                if (c.resync_interval_ms != ok[i].ms)
                        fail_msg("%s: %lld ms", ok[i].text, (long long) c.resync_interval_ms);
                config_done(&c);
        }
        Config c;
        assert_int_equal(config_init(&c), 0);
        _cleanup_free_ char *path = write_config("request_timeout: 1s\nconnect_timeout: 1h\n");
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(config_load(&c, path, &d), 0);
        assert_int_equal(c.request_timeout_ms, 1000);
        assert_int_equal(c.connect_timeout_ms, 3600 * 1000);
        config_done(&c);

        bad1("resync_interval: 9s\n", 1, 18, "'resync_interval' must be between 10s and 7d, got '9s'");
        bad1("resync_interval: 9\n", 1, 18, "'resync_interval' must be between 10s and 7d, got '9'");
        bad1("resync_interval: 8d\n", 1, 18, "'resync_interval' must be between 10s and 7d, got '8d'");
        bad1("resync_interval: 0\n", 1, 18, "'resync_interval' must be between 10s and 7d, got '0'");
        bad1("resync_interval: -60\n", 1, 18, "'resync_interval' must be between 10s and 7d, got '-60'");
        bad1("resync_interval: 99999999999999999999s\n", 1, 18,
             "'resync_interval' must be between 10s and 7d, got '99999999999999999999s'");
        bad1("resync_interval: 10 minutes\n", 1, 18,
             "invalid 'resync_interval' '10 minutes': expected seconds or a duration like 30s, 10m, 1h");
        bad1("resync_interval: 10x\n", 1, 18, "invalid 'resync_interval' '10x': expected seconds or a duration like 30s, 10m, 1h");
        bad1("resync_interval: m\n", 1, 18, "invalid 'resync_interval' 'm': expected seconds or a duration like 30s, 10m, 1h");
        bad1("resync_interval: 1.5h\n", 1, 18, "invalid 'resync_interval' '1.5h': expected seconds or a duration like 30s, 10m, 1h");
        bad1("resync_interval: [1]\n", 1, 18, "'resync_interval' must be a duration, got a list");
        bad1("resync_interval:\n", 1, 17, "'resync_interval' must be a duration, got null");
        bad1("resync_interval: true\n", 1, 18, "invalid 'resync_interval' 'true': expected seconds or a duration like 30s, 10m, 1h");
        bad1("request_timeout: 999ms\n", 1, 18, "'request_timeout' must be between 1s and 1h, got '999ms'");
        bad1("connect_timeout: 61m\n", 1, 18, "'connect_timeout' must be between 1s and 1h, got '61m'");
        bad1("auth_retry_interval: 9s\n", 1, 22, "'auth_retry_interval' must be between 10s and 1d, got '9s'");
}

static void test_structure(void **state) {
        (void) state;
        bad1("- endpoint: https://x\n", 1, 1, "the config file must be a mapping of settings, got a list");
        bad1("region: cn-north-4\n---\nregion: cn-north-1\n", 2, 1, "the config file must hold a single document");
        bad1("region: [\n", 2, 1, "invalid YAML: did not find expected node content (while parsing a flow node at line 2, column 1)");
        bad1("a: &x 1\n", 1, 4, "anchors are not allowed (anchor 'x')");
}

/* Several problems: all reported, sorted, and nothing applied. */
static void test_all_errors_nothing_applied(void **state) {
        (void) state;
        Config c;
        assert_int_equal(config_init(&c), 0);
        _cleanup_free_ char *good = write_config("region: cn-north-4\nconcurrency: 3\n");
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(config_load(&c, good, &d), 0);

        _cleanup_free_ char *path = write_config("concurrency: 9\n"
                                                 "region: eu-west-0\n"
                                                 "endpont: https://x\n"
                                                 "project_id: 12\n"
                                                 "region: ap-southeast-1\n");
        assert_int_equal(config_load(&c, path, &d), -EINVAL);
        assert_int_equal(d.n_errors, 3);
        assert_diag(&d, 3, 1, "unknown key 'endpont' (did you mean 'endpoint'?)");
        assert_diag(&d, 4, 13, "invalid 'project_id' '12': expected 32 hexadecimal digits");
        assert_diag(&d, 5, 1, "duplicate key 'region' (first defined at line 2)");
        for (size_t i = 1; i < d.n; i++)
                assert_true(d.items[i - 1].line <= d.items[i].line);
        /* unchanged: the good file's values */
        assert_int_equal(c.concurrency, 3);
        assert_string_equal(c.region, "cn-north-4");
        assert_string_equal(c.file, good);
        config_done(&c);
}

/* profiles: and flavors: lists of globs, owned by the config, handed out as a policy. */
static void test_patterns(void **state) {
        (void) state;
        Config c;
        assert_int_equal(config_init(&c), 0);
        ManifestPolicy none = config_manifest_policy(&c);
        assert_int_equal(none.n_profiles, 0);
        assert_int_equal(none.n_flavors, 0);
        _cleanup_free_ char *path = write_config("flavors: [\"modelarts.vm.cpu.*\", modelarts.kat1.xlarge]\n"
                                                 "profiles:\n"
                                                 "  - \"Multi-Engine *\"\n"
                                                 "  - Python3\n"
                                                 "  - 2\n");
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(config_load(&c, path, &d), 0);
        assert_int_equal(d.n, 0);
        assert_int_equal(c.flavors.n, 2);
        assert_string_equal(c.flavors.items[0], "modelarts.vm.cpu.*");
        assert_string_equal(c.flavors.items[1], "modelarts.kat1.xlarge");
        assert_int_equal(c.profiles.n, 3);
        assert_string_equal(c.profiles.items[0], "Multi-Engine *");
        assert_string_equal(c.profiles.items[2], "2"); /* a scalar as written, like other strings */
        ManifestPolicy p = config_manifest_policy(&c);
        assert_string_equal(p.source, path);
        assert_int_equal(p.n_profiles, 3);
        assert_int_equal(p.n_flavors, 2);
        assert_ptr_equal(p.flavors[1], c.flavors.items[1]);

        /* a later file without the keys keeps them (values layer like every key);
         * one that sets them replaces the list as a whole */
        _cleanup_free_ char *other = write_config("concurrency: 2\n");
        assert_int_equal(config_load(&c, other, &d), 0);
        assert_int_equal(c.flavors.n, 2);
        _cleanup_free_ char *replace = write_config("flavors: [\"*\"]\n");
        assert_int_equal(config_load(&c, replace, &d), 0);
        assert_int_equal(c.flavors.n, 1);
        assert_string_equal(c.flavors.items[0], "*");
        assert_int_equal(c.profiles.n, 3);
        config_done(&c);
        assert_int_equal(c.profiles.n, 0);
        assert_null(c.profiles.items);

        bad1("profiles: Python3\n", 1, 11, "'profiles' must be a list of patterns, got a string (write a list: [\"...\"])");
        bad1("flavors:\n", 1, 9, "'flavors' must be a list of patterns, got null");
        bad1("flavors: {a: b}\n", 1, 10, "'flavors' must be a list of patterns, got a mapping");
        bad1("flavors: []\n", 1, 10, "'flavors' must not be an empty list (leave the key out to allow any value)");
        bad1("flavors: [a, '']\n", 1, 14, "'flavors' pattern '' must not be empty");
        bad1("flavors:\n  - a\n  - [b]\n", 3, 5, "'flavors' items must be strings, got a list");
        bad1("profiles: [a, ~]\n", 1, 15, "'profiles' items must be strings, got null");
        bad1("profiles: [\"a\\tb\"]\n", 1, 12, "'profiles' pattern 'a\\x09b' contains a control character");
        bad1("profile: [a]\n", 1, 1, "unknown key 'profile' (did you mean 'profiles'?)");
        bad1("flavours: [a]\n", 1, 1, "unknown key 'flavours' (did you mean 'flavors'?)");

        /* limits: 256 patterns of 256 bytes are fine, one more of either is not */
        char *text = malloc(64 * 1024);
        assert_non_null(text);
        size_t o = (size_t) snprintf(text, 64 * 1024, "profiles:\n");
        for (int i = 0; i < CONFIG_MAX_PATTERNS; i++)
                o += (size_t) snprintf(text + o, 64 * 1024 - o, "  - p%d*\n", i);
        char *max = write_config(text);
        assert_int_equal(config_init(&c), 0);
        assert_int_equal(config_load(&c, max, &d), 0);
        assert_int_equal(c.profiles.n, CONFIG_MAX_PATTERNS);
        config_done(&c);
        free(max);
        snprintf(text + o, 64 * 1024 - o, "  - one-more\n");
        bad1(text, 2, 3, "'profiles' has 257 patterns (limit 256)");

        o = (size_t) snprintf(text, 64 * 1024, "flavors: [");
        for (int i = 0; i < CONFIG_MAX_PATTERN_LENGTH; i++)
                text[o++] = 'x';
        snprintf(text + o, 64 * 1024 - o, "]\n");
        max = write_config(text);
        assert_int_equal(config_init(&c), 0);
        assert_int_equal(config_load(&c, max, &d), 0);
        assert_int_equal(strlen(c.flavors.items[0]), CONFIG_MAX_PATTERN_LENGTH);
        config_done(&c);
        free(max);
        snprintf(text + o, 64 * 1024 - o, "y]\n");
        /* yaml_quote shortens what it shows */
        bad1(text, 1, 11, "'flavors' pattern 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' "
                          "is too long: 257 bytes (limit 256)");
        free(text);

        /* every bad item is reported, and nothing is applied */
        assert_int_equal(config_init(&c), 0);
        _cleanup_free_ char *two = write_config("flavors: ['', ok, '']\nregion: cn-north-4\n");
        _cleanup_diags_ Diags d2 = DIAGS_INIT;
        assert_int_equal(config_load(&c, two, &d2), -EINVAL);
        assert_int_equal(d2.n_errors, 2);
        assert_diag(&d2, 1, 11, "'flavors' pattern '' must not be empty");
        assert_diag(&d2, 1, 19, "'flavors' pattern '' must not be empty");
        assert_int_equal(c.flavors.n, 0);
        assert_null(c.region);
        config_done(&c);
}

/* proxy: and no_proxy: (lib/config.c stage_proxy, stage_hosts). A proxy URL may hold
 * a password: no diagnostic ever repeats it. */
static void test_proxy(void **state) {
        (void) state;
        Config c;
        assert_int_equal(config_init(&c), 0);
        assert_null(c.proxy);
        assert_null(c.no_proxy);
        _cleanup_free_ char *path = write_config("proxy: http://proxy.corp.example:3128\n"
                                                 "no_proxy: [internal.example, .corp.example, 10.0.0.0/8]\n");
        _cleanup_diags_ Diags d = DIAGS_INIT;
        assert_int_equal(config_load(&c, path, &d), 0);
        assert_int_equal(d.n, 0);
        assert_string_equal(c.proxy, "http://proxy.corp.example:3128");
        assert_string_equal(c.no_proxy, "internal.example,.corp.example,10.0.0.0/8");
        config_done(&c);

        /* the environment variable's form: one comma-separated string, spaces dropped */
        assert_int_equal(config_init(&c), 0);
        _cleanup_free_ char *path2 = write_config("no_proxy: \"a.example, b.example ,::1\"\n"
                                                  "proxy: http://[fd00::1]:8080/\n");
        diags_clear(&d);
        assert_int_equal(config_load(&c, path2, &d), 0);
        assert_int_equal(d.n, 0);
        assert_string_equal(c.no_proxy, "a.example,b.example,::1");
        assert_string_equal(c.proxy, "http://[fd00::1]:8080/");
        config_done(&c);

        /* "*" alone: every host goes direct */
        assert_int_equal(config_init(&c), 0);
        _cleanup_free_ char *path2b = write_config("no_proxy: [\"*\"]\n");
        diags_clear(&d);
        assert_int_equal(config_load(&c, path2b, &d), 0);
        assert_int_equal(d.n, 0);
        assert_string_equal(c.no_proxy, "*");
        config_done(&c);

        /* a password: accepted, with a warning that says where it belongs, not what it is */
        assert_int_equal(config_init(&c), 0);
        _cleanup_free_ char *path3 = write_config("proxy: http://nb:Pr0xySecret@proxy.example:3128\n");
        diags_clear(&d);
        assert_int_equal(config_load(&c, path3, &d), 0);
        assert_int_equal(d.n, 1);
        assert_int_equal(d.n_warnings, 1);
        assert_int_equal(d.items[0].line, 1);
        assert_int_equal(d.items[0].column, 8);
        assert_non_null(strstr(d.items[0].message, "EnvironmentFile="));
        assert_null(strstr(d.items[0].message, "Pr0xySecret"));
        assert_string_equal(c.proxy, "http://nb:Pr0xySecret@proxy.example:3128");
        config_done(&c);

        /* the password wiped wherever a copy is freed: a reload that replaces it, a
         * load that fails after staging it (all or nothing), config_done */
        n_unwiped = 0;
        assert_int_equal(config_init(&c), 0);
        _cleanup_free_ char *path4 = write_config("proxy: http://nb:" SECRET "@proxy.example:3128\n");
        _cleanup_free_ char *path5 = write_config("proxy: http://nb:" SECRET "2@proxy.example:3128\n");
        _cleanup_free_ char *path6 = write_config("proxy: http://nb:" SECRET "3@proxy.example:3128\n"
                                                  "concurrency: many\n");
        diags_clear(&d);
        assert_int_equal(config_load(&c, path4, &d), 0);
        assert_int_equal(config_load(&c, path5, &d), 0);
        assert_int_equal(config_load(&c, path6, &d), -EINVAL);
        assert_string_equal(c.proxy, "http://nb:" SECRET "2@proxy.example:3128");
        config_done(&c);
        assert_int_equal(n_unwiped, 0);
        for (size_t i = 0; i < ELEMENTSOF(watched); i++)
                assert_null(watched[i].p);   /* each copy was seen freed */

        bad1("proxy: https://proxy.example:3128\n", 1, 8,
             "invalid 'proxy': only an http:// proxy is supported (https:// endpoints are reached through it "
             "with CONNECT, still end to end encrypted)");
        bad1("proxy: proxy.example:3128\n", 1, 8, "invalid 'proxy': expected http://HOST:PORT");
        bad1("proxy: http://proxy.example\n", 1, 8, "invalid 'proxy': needs a port: expected http://HOST:PORT");
        bad1("proxy: http://nb:Pr0xySecret@proxy.example\n", 1, 8,
             "invalid 'proxy': needs a port: expected http://HOST:PORT");
        bad1("proxy: http://proxy.example:99999\n", 1, 8, "invalid 'proxy': has a port that is not a number from 1 to 65535");
        bad1("proxy: http://proxy.example:3128/path\n", 1, 8,
             "invalid 'proxy': must not have a path, query or fragment: expected http://HOST:PORT");
        bad1("proxy: http://:3128\n", 1, 8, "invalid 'proxy': has no host: expected http://HOST:PORT");
        bad1("proxy: http://@proxy.example:3128\n", 1, 8, "invalid 'proxy': has an empty user name before '@'");
        bad1("proxy: [http://p:1]\n", 1, 8, "invalid 'proxy': must be a string");
        bad1("no_proxy: []\n", 1, 11, "'no_proxy' must not be empty (leave the key out to use the environment's no_proxy)");
        bad1("no_proxy: \"a.example,,b\"\n", 1, 11, "'no_proxy' entry '' is empty");
        bad1("no_proxy: [ok.example, \"bad host\"]\n", 1, 24,
             "'no_proxy' entry 'bad host' is not a host name, domain, address or address/prefix");
        /* what libcurl 7.88 would read otherwise than meant: "*" beside others, a '*'
         * inside a name, a bracketed address (all taken literally: sent to the proxy) */
        bad1("no_proxy: [a.example, \"*\"]\n", 1, 23,
             "'no_proxy' entry '*' (every host goes direct) must be the only entry");
        bad1("no_proxy: \"a.example,*\"\n", 1, 11,
             "'no_proxy' entry '*' (every host goes direct) must be the only entry");
        bad1("no_proxy: [\"*.corp.example\"]\n", 1, 12,
             "'no_proxy' entry '*.corp.example' has a '*', which libcurl honours only as the whole list: write "
             "'.corp.example' for a domain and its hosts");
        bad1("no_proxy: \"a.example,[::1]\"\n", 1, 11,
             "'no_proxy' entry '[::1]' has brackets, which libcurl takes literally: write the address without them "
             "(::1)");
        bad1("no_proxy: {a: b}\n", 1, 11, "'no_proxy' must be a list of hosts or a comma-separated string, got a mapping");
}

static void test_effective_endpoint(void **state) {
        (void) state;
        Config c = {};
        assert_null(config_effective_endpoint(&c));
        c.region = (char *) (uintptr_t) "cn-north-4";
        _cleanup_free_ char *a = config_effective_endpoint(&c);
        assert_string_equal(a, "https://modelarts.cn-north-4.myhuaweicloud.com");
        c.region = (char *) (uintptr_t) "ap-southeast-1";
        _cleanup_free_ char *b = config_effective_endpoint(&c);
        assert_string_equal(b, "https://modelarts.ap-southeast-1.myhuaweicloud.cn");
        c.endpoint = (char *) (uintptr_t) "http://127.0.0.1:8080";
        _cleanup_free_ char *e = config_effective_endpoint(&c);
        assert_string_equal(e, "http://127.0.0.1:8080");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_full_file),
                cmocka_unit_test(test_empty_and_missing),
                cmocka_unit_test(test_too_large),
                cmocka_unit_test(test_unknown_keys),
                cmocka_unit_test(test_bad_values),
                cmocka_unit_test(test_credentials_metadata),
                cmocka_unit_test(test_concurrency),
                cmocka_unit_test(test_durations),
                cmocka_unit_test(test_structure),
                cmocka_unit_test(test_all_errors_nothing_applied),
                cmocka_unit_test(test_effective_endpoint),
                cmocka_unit_test(test_patterns),
                cmocka_unit_test(test_proxy),
        };
        return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
