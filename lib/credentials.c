/* Loading credentials (the rules are in credentials.h). */
#include "credentials.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "limits.h"
#include "metadata.h"
#include "util.h"

/* ---- secret memory ----
 * Each secret gets its own anonymous mapping: madvise and mlock work on whole pages, and a
 * page shared with ordinary heap data would either drag that data out of core dumps or
 * leave the secret in them. A secret is at most CREDENTIAL_MAX_SIZE, and there are five,
 * so the page rounding costs nothing that matters. The mapping's size is kept in a header
 * in front of the string. */

#define SECRET_HEADER 16  /* keeps the string 16-byte aligned, holds the size */

static char *secret_alloc(size_t len) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);
        if (len > SIZE_MAX - SECRET_HEADER - page)
                return NULL;
        size_t size = (len + 1 + SECRET_HEADER + page - 1) / page * page;
        void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED)
                return NULL;
        /* Best effort, each: an old kernel or a small RLIMIT_MEMLOCK must not stop the
         * daemon; credentials_disable_core_dumps() is the stronger, process-wide guard. */
        (void) madvise(base, size, MADV_DONTDUMP);
#ifdef MADV_WIPEONFORK
        (void) madvise(base, size, MADV_WIPEONFORK);
#endif
        (void) mlock(base, size);
        memcpy(base, &size, sizeof size);
        return (char *) base + SECRET_HEADER;
}

static void secret_free(char *s) {
        if (!s)
                return;
        char *base = s - SECRET_HEADER;
        size_t size;
        memcpy(&size, base, sizeof size);
        explicit_bzero(base, size);
        (void) munlock(base, size);
        (void) munmap(base, size);
}

static void secret_freep(char **s) {
        secret_free(*s);
}
#define _cleanup_secret_mem_ _cleanup_(secret_freep)

static char *secret_dup(const char *s, size_t len) {
        char *c = secret_alloc(len);
        if (!c)
                return NULL;
        memcpy(c, s, len);
        c[len] = 0;
        return c;
}

char *credentials_secret_dup(const char *s, size_t len) {
        return s ? secret_dup(s, len) : NULL;
}

void credentials_secret_free(char *s) {
        secret_free(s);
}

/* ---- the struct ---- */

Credentials *credentials_free(Credentials *c) {
        if (!c)
                return NULL;
        secret_free(c->ak);
        secret_free(c->sk);
        secret_free(c->security_token);
        secret_free(c->token);
        secret_free(c->password);
        free(c->iam_user);
        free(c->iam_domain);
        free(c->project_id);
        free(c->metadata_endpoint);
        free(c->source);
        free(c->ak_source);
        free(c->sk_source);
        free(c->security_token_source);
        free(c->token_source);
        free(c->password_source);
        free(c->project_id_source);
        free(c);
        return NULL;
}

const char *credentials_kind_to_string(const Credentials *c) {
        if (!c)
                return "no credentials";
        switch (c->kind) {
        case CREDENTIALS_AKSK:
                return c->security_token ? "temporary AK/SK" : "AK/SK";
        case CREDENTIALS_TOKEN:
                return "IAM token";
        case CREDENTIALS_PASSWORD:
                return "IAM password";
        case CREDENTIALS_METADATA:
                return "ECS metadata (temporary AK/SK)";
        }
        return "unknown credentials";
}

char *credentials_describe(const Credentials *c) {
        if (!c)
                return strdup("no credentials");
        switch (c->kind) {
        case CREDENTIALS_AKSK:
                if (c->security_token)
                        return xasprintf("%s from %s, %s and %s", credentials_kind_to_string(c), c->ak_source,
                                         c->sk_source, c->security_token_source);
                return xasprintf("%s from %s and %s", credentials_kind_to_string(c), c->ak_source, c->sk_source);
        case CREDENTIALS_TOKEN:
                return xasprintf("%s from %s", credentials_kind_to_string(c), c->token_source);
        case CREDENTIALS_PASSWORD:
                return xasprintf("%s for user %s in domain %s from %s", credentials_kind_to_string(c),
                                 strempty(c->iam_user), strempty(c->iam_domain), c->password_source);
        case CREDENTIALS_METADATA:
                return xasprintf("temporary AK/SK from the ECS metadata service at %s (credentials: metadata)",
                                 strempty(c->metadata_endpoint));
        }
        return strdup("unknown credentials");
}

int credentials_disable_core_dumps(void) {
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return -errno;
        return 0;
}

/* Errors: error_set (lib/util.h). The messages here are built only from paths, names,
 * modes and sizes: callers never pass a secret in. */

/* ---- validating a value ---- */

typedef enum Charset {
        CHARSET_HEADER,    /* AK, SK, tokens: they travel in HTTP headers */
        CHARSET_PASSWORD,  /* goes into a JSON body: anything but NUL, CR, LF */
} Charset;

/* 0, or -EINVAL with the message naming what (the source) and the offending byte's
 * position, never the byte's value. */
static int check_value(const char *v, size_t len, Charset cs, const char *what, char **ret_error) {
        if (len == 0)
                return error_set(ret_error, -EINVAL, "%s is empty", what);
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) v[i];
                if (c == 0)
                        return error_set(ret_error, -EINVAL, "%s contains a NUL byte (at byte %zu)", what, i + 1);
                if (cs == CHARSET_PASSWORD ? (c == '\n' || c == '\r')
                                           : (c <= 0x20 || c >= 0x7f))
                        return error_set(ret_error, -EINVAL,
                                    cs == CHARSET_PASSWORD
                                            ? "%s contains a line break (at byte %zu); only one trailing newline is removed"
                                            : "%s contains whitespace, a control character or non-ASCII (at byte %zu)",
                                    what, i + 1);
        }
        return 0;
}

/* ---- reading a file ---- */

/* Read one credential file into secret memory.
 * check_perms: refuse group/other access and foreign owners (config-named files).
 * missing_ok: a file that does not exist is 0 with *ret = NULL, not an error. */
static int read_secret_file(const char *path, bool check_perms, bool missing_ok, Charset cs, const char *what,
                            char **ret, char **ret_error) {
        /* O_NONBLOCK: opening a FIFO someone put there must not hang the daemon before
         * the regular-file check can refuse it. */
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                int e = errno;
                if (e == ENOENT && missing_ok) {
                        *ret = NULL;
                        return 0;
                }
                if (e == ENOENT)
                        return error_set(ret_error, -ENOENT, "%s does not exist", what);
                if (e == EACCES || e == EPERM)
                        return error_set(ret_error, -EACCES, "cannot read %s: %s", what, strerror(e));
                return error_set(ret_error, -e, "cannot open %s: %s", what, strerror(e));
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return error_set(ret_error, -errno, "cannot stat %s: %s", what, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return error_set(ret_error, -EINVAL, "%s is not a regular file", what);
        if (check_perms) {
                if (st.st_mode & (S_IRWXG | S_IRWXO))
                        return error_set(ret_error, -EACCES,
                                    "%s has mode %04o: a credential file must not be accessible by group or others "
                                    "(chmod 600 %s)",
                                    what, (unsigned) (st.st_mode & 07777), path);
                if (st.st_uid != geteuid() && st.st_uid != 0)
                        return error_set(ret_error, -EACCES,
                                    "%s is owned by uid %u: a credential file must be owned by this user (uid %u) "
                                    "or root",
                                    what, (unsigned) st.st_uid, (unsigned) geteuid());
        }
        if (st.st_size > CREDENTIAL_MAX_SIZE)
                return error_set(ret_error, -EFBIG, "%s is %lld bytes, more than the %d a credential may have", what,
                            (long long) st.st_size, CREDENTIAL_MAX_SIZE);

        /* Read into a maximal secret buffer (the file may grow under us), then copy the
         * exact value into its own; both are secret memory, so nothing lingers. */
        _cleanup_secret_mem_ char *buf = secret_alloc(CREDENTIAL_MAX_SIZE + 1);
        if (!buf)
                return -ENOMEM;
        size_t n = 0;
        for (;;) {
                ssize_t k = read(fd, buf + n, CREDENTIAL_MAX_SIZE + 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return error_set(ret_error, -errno, "cannot read %s: %s", what, strerror(errno));
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > CREDENTIAL_MAX_SIZE)
                        return error_set(ret_error, -EFBIG, "%s has more than the %d bytes a credential may have", what,
                                    CREDENTIAL_MAX_SIZE);
        }
        /* editors and `echo` add a newline; one is not part of the secret */
        if (n > 0 && buf[n - 1] == '\n') {
                n--;
                if (n > 0 && buf[n - 1] == '\r')
                        n--;
        }
        int r = check_value(buf, n, cs, what, ret_error);
        if (r < 0)
                return r;
        char *v = secret_dup(buf, n);
        if (!v)
                return -ENOMEM;
        *ret = v;
        return 0;
}

/* ---- one source's findings ---- */

typedef enum Slot {
        SLOT_AK,
        SLOT_SK,
        SLOT_SECURITY_TOKEN,
        SLOT_TOKEN,
        SLOT_PASSWORD,
        _SLOT_MAX,
} Slot;

typedef struct Found {
        char *tier;                /* "$CREDENTIALS_DIRECTORY (/run/...)", ... */
        char *value[_SLOT_MAX];    /* secret memory */
        char *source[_SLOT_MAX];   /* where each value came from */
        char *missing[_SLOT_MAX];  /* where an absent one was looked for */
} Found;

static void found_done(Found *f) {
        free(f->tier);
        for (size_t i = 0; i < _SLOT_MAX; i++) {
                secret_free(f->value[i]);
                free(f->source[i]);
                free(f->missing[i]);
        }
        *f = (Found) { 0 };
}

static bool found_any(const Found *f) {
        for (size_t i = 0; i < _SLOT_MAX; i++)
                if (f->value[i])
                        return true;
        return false;
}

static const Charset slot_charset[_SLOT_MAX] = {
        [SLOT_AK] = CHARSET_HEADER,
        [SLOT_SK] = CHARSET_HEADER,
        [SLOT_SECURITY_TOKEN] = CHARSET_HEADER,
        [SLOT_TOKEN] = CHARSET_HEADER,
        [SLOT_PASSWORD] = CHARSET_PASSWORD,
};

/* Names in the credentials directory (systemd LoadCredential=ID:...). */
static const char *const slot_credential_name[_SLOT_MAX] = {
        [SLOT_AK] = "ak",
        [SLOT_SK] = "sk",
        [SLOT_SECURITY_TOKEN] = "security-token",
        [SLOT_TOKEN] = "token",
        [SLOT_PASSWORD] = "password",
};

static const char *const slot_config_key[_SLOT_MAX] = {
        [SLOT_AK] = "ak_file",
        [SLOT_SK] = "sk_file",
        [SLOT_SECURITY_TOKEN] = "security_token_file",
        [SLOT_TOKEN] = "token_file",
        [SLOT_PASSWORD] = "password_file",
};

/* The Huawei Cloud SDKs' names; there is none for a static token or a password. */
static const char *const slot_env[_SLOT_MAX] = {
        [SLOT_AK] = "HUAWEICLOUD_SDK_AK",
        [SLOT_SK] = "HUAWEICLOUD_SDK_SK",
        [SLOT_SECURITY_TOKEN] = "HUAWEICLOUD_SDK_SECURITY_TOKEN",
};

static const char *const slot_human[_SLOT_MAX] = {
        [SLOT_AK] = "an AK",
        [SLOT_SK] = "an SK",
        [SLOT_SECURITY_TOKEN] = "a security token",
        [SLOT_TOKEN] = "an IAM token",
        [SLOT_PASSWORD] = "an IAM password",
};

static const char *slot_config_value(const Config *c, Slot s) {
        if (!c)
                return NULL;
        switch (s) {
        case SLOT_AK:
                return c->ak_file;
        case SLOT_SK:
                return c->sk_file;
        case SLOT_SECURITY_TOKEN:
                return c->security_token_file;
        case SLOT_TOKEN:
                return c->token_file;
        case SLOT_PASSWORD:
                return c->password_file;
        case _SLOT_MAX:
                break;
        }
        return NULL;
}

static const char *config_name(const Config *c) {
        return c && c->file ? c->file : "the configuration";
}

/* Tier 1: systemd credentials. Leaves f->tier NULL when $CREDENTIALS_DIRECTORY is unset. */
static int from_credentials_directory(Found *f, char **ret_error) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        if (!dir || !*dir)
                return 0;
        struct stat st;
        if (stat(dir, &st) < 0) {
                int e = errno;
                return error_set(ret_error, -e, "$CREDENTIALS_DIRECTORY is %s, which cannot be used: %s", dir, strerror(e));
        }
        if (!S_ISDIR(st.st_mode))
                return error_set(ret_error, -ENOTDIR, "$CREDENTIALS_DIRECTORY is %s, which is not a directory", dir);

        f->tier = xasprintf("$CREDENTIALS_DIRECTORY (%s)", dir);
        if (!f->tier)
                return -ENOMEM;
        for (Slot s = 0; s < _SLOT_MAX; s++) {
                _cleanup_free_ char *path = xasprintf("%s/%s", dir, slot_credential_name[s]);
                _cleanup_free_ char *what = xasprintf("credential '%s' in %s", slot_credential_name[s], f->tier);
                if (!path || !what)
                        return -ENOMEM;
                /* systemd made these files and the directory is private to the service;
                 * with DynamicUser it may grant read access by ACL, which shows as a group
                 * bit: so no mode check here. */
                int r = read_secret_file(path, false, true, slot_charset[s], what, &f->value[s], ret_error);
                if (r < 0)
                        return r;
                if (f->value[s])
                        f->source[s] = TAKE_PTR(what);
                else {
                        f->missing[s] = xasprintf("no '%s' in %s", slot_credential_name[s], f->tier);
                        if (!f->missing[s])
                                return -ENOMEM;
                }
        }
        return 0;
}

/* Tier 2: files named in the config. A named file must be there: the user asked for it. */
static int from_config_files(const Config *c, Found *f, char **ret_error) {
        f->tier = xasprintf("the files named in %s", config_name(c));
        if (!f->tier)
                return -ENOMEM;
        for (Slot s = 0; s < _SLOT_MAX; s++) {
                const char *path = slot_config_value(c, s);
                if (!path) {
                        f->missing[s] = xasprintf("%s is not set in %s", slot_config_key[s], config_name(c));
                        if (!f->missing[s])
                                return -ENOMEM;
                        continue;
                }
                /* A value without a '/' is more likely a secret pasted in place of its file
                 * name (sk_file: <the SK>) than a relative path: name only the key then. */
                _cleanup_free_ char *what = strchr(path, '/')
                                                    ? xasprintf("file %s (%s)", path, slot_config_key[s])
                                                    : xasprintf("the file named by %s (not an absolute path)",
                                                                slot_config_key[s]);
                if (!what)
                        return -ENOMEM;
                int r = read_secret_file(path, true, false, slot_charset[s], what, &f->value[s], ret_error);
                if (r < 0)
                        return r;
                f->source[s] = TAKE_PTR(what);
        }
        return 0;
}

/* Tier 3: the environment. An empty variable is unset (`export HUAWEICLOUD_SDK_AK=`). */
static int from_environment(Found *f, char **ret_error) {
        f->tier = strdup("the environment");
        if (!f->tier)
                return -ENOMEM;
        for (Slot s = 0; s < _SLOT_MAX; s++) {
                if (!slot_env[s])
                        continue;
                const char *v = getenv(slot_env[s]);
                if (!v || !*v) {
                        f->missing[s] = xasprintf("%s is not set", slot_env[s]);
                        if (!f->missing[s])
                                return -ENOMEM;
                        continue;
                }
                _cleanup_free_ char *what = xasprintf("environment variable %s", slot_env[s]);
                if (!what)
                        return -ENOMEM;
                size_t len = strlen(v);
                if (len > CREDENTIAL_MAX_SIZE)
                        return error_set(ret_error, -EFBIG, "%s is %zu bytes, more than the %d a credential may have", what,
                                    len, CREDENTIAL_MAX_SIZE);
                int r = check_value(v, len, slot_charset[s], what, ret_error);
                if (r < 0)
                        return r;
                f->value[s] = secret_dup(v, len);
                if (!f->value[s])
                        return -ENOMEM;
                f->source[s] = TAKE_PTR(what);
        }
        return 0;
}

/* Turn one source's findings into Credentials, or say precisely what is missing or
 * contradictory. Moves the values out of f. */
static int settle(Found *f, const Config *c, Credentials **ret, char **ret_error) {
        bool aksk = f->value[SLOT_AK] || f->value[SLOT_SK] || f->value[SLOT_SECURITY_TOKEN];
        bool token = f->value[SLOT_TOKEN];
        bool password = f->value[SLOT_PASSWORD];

        if (aksk + token + password > 1) {
                Slot a = aksk ? (f->value[SLOT_AK] ? SLOT_AK : f->value[SLOT_SK] ? SLOT_SK : SLOT_SECURITY_TOKEN)
                              : SLOT_TOKEN;
                Slot b = token && aksk ? SLOT_TOKEN : SLOT_PASSWORD;
                return error_set(ret_error, -EINVAL,
                            "more than one kind of credential in %s (%s from %s, %s from %s): keep one kind",
                            f->tier, slot_human[a], f->source[a], slot_human[b], f->source[b]);
        }
        if (aksk) {
                if (!f->value[SLOT_AK] || !f->value[SLOT_SK]) {
                        Slot have = f->value[SLOT_AK]            ? SLOT_AK
                                    : f->value[SLOT_SK]          ? SLOT_SK
                                                                 : SLOT_SECURITY_TOKEN;
                        if (!f->value[SLOT_AK] && !f->value[SLOT_SK])
                                return error_set(ret_error, -EINVAL,
                                            "found a security token (%s) but no AK and SK: %s; %s", f->source[have],
                                            f->missing[SLOT_AK], f->missing[SLOT_SK]);
                        Slot miss = f->value[SLOT_AK] ? SLOT_SK : SLOT_AK;
                        return error_set(ret_error, -EINVAL, "found %s (%s) but no %s: %s", slot_human[have],
                                    f->source[have], miss == SLOT_SK ? "SK" : "AK", f->missing[miss]);
                }
        }
        if (password && (!c || !c->iam_user || !c->iam_domain))
                return error_set(ret_error, -EINVAL, "found an IAM password (%s) but %s%s%s not set in %s",
                            f->source[SLOT_PASSWORD], c && c->iam_user ? "" : "iam_user",
                            (!c || !c->iam_user) && (!c || !c->iam_domain) ? " and " : "",
                            c && c->iam_domain ? "" : "iam_domain", config_name(c));

        _cleanup_(credentials_freep) Credentials *cr = calloc(1, sizeof(Credentials));
        if (!cr)
                return -ENOMEM;
        cr->kind = aksk ? CREDENTIALS_AKSK : token ? CREDENTIALS_TOKEN : CREDENTIALS_PASSWORD;
        cr->source = TAKE_PTR(f->tier);
        cr->ak = TAKE_PTR(f->value[SLOT_AK]);
        cr->sk = TAKE_PTR(f->value[SLOT_SK]);
        cr->security_token = TAKE_PTR(f->value[SLOT_SECURITY_TOKEN]);
        cr->token = TAKE_PTR(f->value[SLOT_TOKEN]);
        cr->password = TAKE_PTR(f->value[SLOT_PASSWORD]);
        cr->ak_source = TAKE_PTR(f->source[SLOT_AK]);
        cr->sk_source = TAKE_PTR(f->source[SLOT_SK]);
        cr->security_token_source = TAKE_PTR(f->source[SLOT_SECURITY_TOKEN]);
        cr->token_source = TAKE_PTR(f->source[SLOT_TOKEN]);
        cr->password_source = TAKE_PTR(f->source[SLOT_PASSWORD]);
        if (password) {
                cr->iam_user = strdup(c->iam_user);
                cr->iam_domain = strdup(c->iam_domain);
                if (!cr->iam_user || !cr->iam_domain)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(cr);
        return 0;
}

static int project_id_from_environment(Credentials *cr, char **ret_error) {
        const char *v = getenv("HUAWEICLOUD_SDK_PROJECT_ID");
        if (!v || !*v)
                return 0;
        size_t len = strlen(v);
        bool ok = len == 32;
        for (size_t i = 0; ok && i < len; i++)
                ok = isxdigit((unsigned char) v[i]);
        /* not a secret, but someone may have pasted one here: the value is not echoed */
        if (!ok)
                return error_set(ret_error, -EINVAL,
                            "environment variable HUAWEICLOUD_SDK_PROJECT_ID is not a project ID (32 hexadecimal "
                            "digits; it has %zu characters)",
                            len);
        cr->project_id = strdup(v);
        cr->project_id_source = strdup("environment variable HUAWEICLOUD_SDK_PROJECT_ID");
        if (!cr->project_id || !cr->project_id_source)
                return -ENOMEM;
        return 0;
}

static bool config_names_files(const Config *c) {
        for (Slot s = 0; s < _SLOT_MAX; s++)
                if (slot_config_value(c, s))
                        return true;
        return false;
}

/* `credentials: metadata`: the source is the ECS metadata service, and nothing else is
 * read. A credential file named beside it is a contradiction, refused rather than one
 * of the two silently ignored. */
static int from_metadata(const Config *config, Credentials **ret, char **ret_error) {
        for (Slot s = 0; s < _SLOT_MAX; s++)
                if (slot_config_value(config, s))
                        return error_set(ret_error, -EINVAL,
                                    "%s sets both 'credentials: metadata' and %s: keep one source of credentials",
                                    config_name(config), slot_config_key[s]);
        _cleanup_(credentials_freep) Credentials *cr = calloc(1, sizeof(Credentials));
        if (!cr)
                return -ENOMEM;
        cr->kind = CREDENTIALS_METADATA;
        cr->metadata_endpoint = strdup(config->metadata_endpoint ? config->metadata_endpoint
                                                                 : METADATA_DEFAULT_ENDPOINT);
        cr->source = xasprintf("the ECS metadata service (%s)", strempty(cr->metadata_endpoint));
        if (!cr->metadata_endpoint || !cr->source)
                return -ENOMEM;
        int r = project_id_from_environment(cr, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(cr);
        return 0;
}

int credentials_load(const Config *config, Credentials **ret, char **ret_error) {
        if (!ret)
                return -EINVAL;
        _cleanup_free_ char *error = NULL;
        _cleanup_(credentials_freep) Credentials *cr = NULL;
        _cleanup_free_ char *looked_dir = NULL;
        int r;

        if (config && streq_ptr(config->credentials, "metadata"))
                return from_metadata(config, ret, ret_error);

        /* first source that holds anything wins; an error in a source stops the search (a
         * broken ak file must not silently fall back to an old AK in the environment) */
        Found f = { 0 };
        r = from_credentials_directory(&f, &error);
        if (r >= 0 && f.tier && found_any(&f))
                r = settle(&f, config, &cr, &error);
        else if (r >= 0) {
                looked_dir = f.tier ? xasprintf("%s holds none of ak, sk, security-token, token, password", f.tier)
                                    : strdup("$CREDENTIALS_DIRECTORY is not set");
                if (!looked_dir)
                        r = -ENOMEM;
                found_done(&f);
                if (r >= 0 && config_names_files(config)) {
                        r = from_config_files(config, &f, &error);
                        if (r >= 0)
                                r = settle(&f, config, &cr, &error);
                        if (r >= 0)
                                cr->from_config_files = true;
                } else if (r >= 0) {
                        r = from_environment(&f, &error);
                        if (r >= 0 && found_any(&f))
                                r = settle(&f, config, &cr, &error);
                        else if (r >= 0)
                                r = error_set(&error, -ENOENT,
                                         "no credentials found: %s; %s names none of ak_file, sk_file, "
                                         "security_token_file, token_file, password_file; HUAWEICLOUD_SDK_AK and "
                                         "HUAWEICLOUD_SDK_SK are not set",
                                         looked_dir, config_name(config));
                }
        }
        found_done(&f);
        if (r >= 0)
                r = project_id_from_environment(cr, &error);
        if (r < 0) {
                if (ret_error && error)
                        *ret_error = TAKE_PTR(error);
                return r;
        }
        *ret = TAKE_PTR(cr);
        return 0;
}
