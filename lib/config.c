#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "limits.h"
#include "util.h"
#include "yamltree.h"

typedef enum ValueType {
        VALUE_STRING,    /* any non-empty string: a name */
        VALUE_PATH,      /* a non-empty string: a file or directory */
        VALUE_URL,       /* http:// or https:// with a host */
        VALUE_REGION,    /* e.g. cn-north-4: becomes part of a host name */
        VALUE_PROJECT,   /* 32 hex digits */
        VALUE_COUNT,     /* concurrency */
        VALUE_DURATION,  /* seconds, or 500ms / 30s / 10m / 1h / 1d, combinable (1h30m) */
        VALUE_PATTERNS,  /* a list of fnmatch(3) patterns (a ConfigList) */
        VALUE_BOOL,      /* true or false (YAML 1.2 core: no yes/no/on/off) */
        VALUE_TENANTS,   /* a list of tenant mappings (lib/tenant.c) */
        VALUE_PROXY,     /* http://[USER:PASSWORD@]HOST:PORT; never echoed (a password) */
        VALUE_HOSTS,     /* a list of host patterns, or one comma-separated string */
} ValueType;

typedef struct ConfigKey {
        const char *name;
        ValueType type;
        size_t offset;          /* into Config */
        int64_t min, max;       /* COUNT: the range; DURATION: in ms */
} ConfigKey;

#define STR(field, t) { #field, t, offsetof(Config, field), 0, 0 }
static const ConfigKey config_keys[] = {
        STR(endpoint, VALUE_URL),
        STR(region, VALUE_REGION),
        STR(project_id, VALUE_PROJECT),
        STR(manifests, VALUE_PATH),
        STR(state_dir, VALUE_PATH),
        { "concurrency", VALUE_COUNT, offsetof(Config, concurrency), 1, CONFIG_MAX_CONCURRENCY },
        { "resync_interval", VALUE_DURATION, offsetof(Config, resync_interval_ms),
          CONFIG_MIN_RESYNC_INTERVAL_MS, CONFIG_MAX_RESYNC_INTERVAL_MS },
        { "request_timeout", VALUE_DURATION, offsetof(Config, request_timeout_ms),
          CONFIG_MIN_TIMEOUT_MS, CONFIG_MAX_TIMEOUT_MS },
        { "connect_timeout", VALUE_DURATION, offsetof(Config, connect_timeout_ms),
          CONFIG_MIN_TIMEOUT_MS, CONFIG_MAX_TIMEOUT_MS },
        { "auth_retry_interval", VALUE_DURATION, offsetof(Config, auth_retry_interval_ms),
          CONFIG_MIN_AUTH_RETRY_INTERVAL_MS, CONFIG_MAX_AUTH_RETRY_INTERVAL_MS },
        { "state_retention", VALUE_DURATION, offsetof(Config, state_retention_ms),
          CONFIG_MIN_STATE_RETENTION_MS, CONFIG_MAX_STATE_RETENTION_MS },
        STR(ca_file, VALUE_PATH),
        STR(proxy, VALUE_PROXY),
        STR(no_proxy, VALUE_HOSTS),
        STR(metrics_file, VALUE_PATH),
        STR(ak_file, VALUE_PATH),
        STR(sk_file, VALUE_PATH),
        STR(security_token_file, VALUE_PATH),
        STR(token_file, VALUE_PATH),
        STR(iam_endpoint, VALUE_URL),
        STR(iam_user, VALUE_STRING),
        STR(iam_domain, VALUE_STRING),
        STR(password_file, VALUE_PATH),
        STR(credentials, VALUE_STRING),
        STR(metadata_endpoint, VALUE_URL),
        STR(profiles, VALUE_PATTERNS),
        STR(flavors, VALUE_PATTERNS),
        STR(tenants, VALUE_TENANTS),
        STR(prune, VALUE_BOOL),
        STR(prune_adopted, VALUE_BOOL),
        { "prune_grace", VALUE_DURATION, offsetof(Config, prune_grace_ms), CONFIG_MIN_PRUNE_GRACE_MS,
          CONFIG_MAX_PRUNE_GRACE_MS },
        { "prune_max_per_pass", VALUE_COUNT, offsetof(Config, prune_max_per_pass), 1, CONFIG_MAX_PRUNE_PER_PASS },
};
#undef STR
#define N_KEYS ELEMENTSOF(config_keys)

static bool value_is_string(ValueType t) {
        return t != VALUE_COUNT && t != VALUE_DURATION && t != VALUE_PATTERNS && t != VALUE_BOOL &&
               t != VALUE_TENANTS;
}

static void config_list_done(ConfigList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->items[i]);
        free(l->items);
        *l = (ConfigList) {};
}

int config_init(Config *c) {
        *c = (Config) {
                .concurrency = CONFIG_DEFAULT_CONCURRENCY,
                .resync_interval_ms = CONFIG_DEFAULT_RESYNC_INTERVAL_MS,
                .request_timeout_ms = CONFIG_DEFAULT_REQUEST_TIMEOUT_MS,
                .connect_timeout_ms = CONFIG_DEFAULT_CONNECT_TIMEOUT_MS,
                .auth_retry_interval_ms = CONFIG_DEFAULT_AUTH_RETRY_INTERVAL_MS,
                .state_retention_ms = CONFIG_DEFAULT_STATE_RETENTION_MS,
                .prune_grace_ms = CONFIG_DEFAULT_PRUNE_GRACE_MS,
                .prune_max_per_pass = CONFIG_DEFAULT_PRUNE_MAX_PER_PASS,
        };
        /* systemd sets $STATE_DIRECTORY from StateDirectory=; with several directories
         * it is a colon-separated list, and ours is the first. */
        const char *e = getenv("STATE_DIRECTORY");
        if (e && *e && *e != ':')
                c->state_dir = strndup(e, strcspn(e, ":"));
        else
                c->state_dir = strdup(CONFIG_DEFAULT_STATE_DIR);
        c->manifests = strdup(CONFIG_DEFAULT_MANIFESTS);
        if (!c->state_dir || !c->manifests) {
                config_done(c);
                return -ENOMEM;
        }
        return 0;
}

/* A string value freed; a proxy URL may hold a password, so it is wiped first (the
 * secrets' rule: none left behind in freed memory). */
static void value_free(ValueType t, char *s) {
        if (s && t == VALUE_PROXY)
                explicit_bzero(s, strlen(s));
        free(s);
}

void config_done(Config *c) {
        if (!c)
                return;
        free(c->file);
        for (size_t i = 0; i < N_KEYS; i++)
                if (value_is_string(config_keys[i].type))
                        value_free(config_keys[i].type, *(char **) ((char *) c + config_keys[i].offset));
                else if (config_keys[i].type == VALUE_PATTERNS)
                        config_list_done((ConfigList *) ((char *) c + config_keys[i].offset));
                else if (config_keys[i].type == VALUE_TENANTS)
                        tenant_list_done((TenantList *) ((char *) c + config_keys[i].offset));
        *c = (Config) {};
}

ManifestPolicy config_manifest_policy(const Config *c) {
        return (ManifestPolicy) {
                .source = c->file,
                .tenants = &c->tenants,
                .profiles = (const char *const *) c->profiles.items,
                .n_profiles = c->profiles.n,
                .flavors = (const char *const *) c->flavors.items,
                .n_flavors = c->flavors.n,
        };
}

/* ---- value checks ---- */

/* "30s", "10m", "1h30m", "500ms", "2d": a sum of number+unit parts. -EINVAL on
 * anything else, -ERANGE on overflow. */
static int parse_duration_ms(const char *s, int64_t *ret) {
        static const struct {
                const char *suffix;
                int64_t ms;
        } units[] = {
                /* "ms" before "m": longest suffix first */
                { "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 }, { "h", 3600 * 1000 },
                { "d", 24 * 3600 * 1000LL },
        };
        int64_t total = 0;
        if (!*s)
                return -EINVAL;
        while (*s) {
                if (!isdigit((unsigned char) *s))
                        return -EINVAL;
                int64_t v = 0;
                for (; isdigit((unsigned char) *s); s++) {
                        if (v > (INT64_MAX - 9) / 10)
                                return -ERANGE;
                        v = v * 10 + (*s - '0');
                }
                size_t i;
                for (i = 0; i < ELEMENTSOF(units); i++) {
                        size_t n = strlen(units[i].suffix);
                        if (strncmp(s, units[i].suffix, n) == 0 && !isalpha((unsigned char) s[n]))
                                break;
                }
                if (i == ELEMENTSOF(units))
                        return -EINVAL;
                if (v > (INT64_MAX - total) / units[i].ms)
                        return -ERANGE;
                total += v * units[i].ms;
                s += strlen(units[i].suffix);
        }
        *ret = total;
        return 0;
}

static bool valid_url(const char *s) {
        const char *host;
        if (strncmp(s, "https://", 8) == 0)
                host = s + 8;
        else if (strncmp(s, "http://", 7) == 0)
                host = s + 7;
        else
                return false;
        /* a host, then optionally :port and a path; nothing a header or log could trip on */
        if (!*host || *host == '/' || *host == ':')
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
                        return false;
        return true;
}

static bool valid_region(const char *s) {
        if (!*s || strlen(s) > 63 || *s == '-')
                return false;
        for (; *s; s++)
                if (!islower((unsigned char) *s) && !isdigit((unsigned char) *s) && *s != '-')
                        return false;
        return true;
}

bool config_valid_project_id(const char *s) {
        if (strlen(s) != 32)
                return false;
        for (; *s; s++)
                if (!isxdigit((unsigned char) *s))
                        return false;
        return true;
}

static void format_duration(int64_t ms, char *buf, size_t size) {
        if (ms % (24 * 3600 * 1000LL) == 0)
                snprintf(buf, size, "%" PRId64 "d", (int64_t) (ms / (24 * 3600 * 1000LL)));
        else if (ms % (3600 * 1000) == 0)
                snprintf(buf, size, "%" PRId64 "h", ms / (3600 * 1000));
        else if (ms % (60 * 1000) == 0)
                snprintf(buf, size, "%" PRId64 "m", ms / (60 * 1000));
        else if (ms % 1000 == 0)
                snprintf(buf, size, "%" PRId64 "s", ms / 1000);
        else
                snprintf(buf, size, "%" PRId64 "ms", ms);
}

typedef struct Staged {
        bool set[N_KEYS];
        char *str[N_KEYS];
        int64_t num[N_KEYS];
        ConfigList list[N_KEYS];
        TenantList tenants;
} Staged;

static void staged_done(Staged *s) {
        for (size_t i = 0; i < N_KEYS; i++) {
                value_free(config_keys[i].type, s->str[i]);
                config_list_done(&s->list[i]);
        }
        tenant_list_done(&s->tenants);
}

/* A list of patterns: every item a non-empty scalar (taken as written, like the other
 * string values) without control characters, within the limits. Every bad item is
 * reported. Returns 0, -EINVAL (diagnosed) or -ENOMEM. */
static int stage_patterns(const char *file, size_t i, const YamlNode *v, Staged *st, Diags *diags) {
        const ConfigKey *k = &config_keys[i];
        char q[YAML_QUOTE_BUF];
        int r;
        if (v->kind != YAML_KIND_SEQUENCE) {
                r = diag_error(diags, file, v->line, v->column, "'%s' must be a list of patterns, got %s%s", k->name,
                               yaml_kind_to_string(v->kind),
                               v->kind == YAML_KIND_STRING ? " (write a list: [\"...\"])" : "");
                return r < 0 ? r : -EINVAL;
        }
        if (v->n_items == 0) {
                /* "nothing allowed" would refuse every manifest: surely not meant */
                r = diag_error(diags, file, v->line, v->column,
                               "'%s' must not be an empty list (leave the key out to allow any value)", k->name);
                return r < 0 ? r : -EINVAL;
        }
        if (v->n_items > CONFIG_MAX_PATTERNS) {
                r = diag_error(diags, file, v->line, v->column, "'%s' has %zu patterns (limit %d)", k->name,
                               v->n_items, CONFIG_MAX_PATTERNS);
                return r < 0 ? r : -EINVAL;
        }
        ConfigList l = { .items = calloc(v->n_items, sizeof(char *)) };
        if (!l.items)
                return -ENOMEM;
        bool bad = false;
        for (size_t j = 0; j < v->n_items; j++) {
                const YamlNode *item = v->items[j];
                const char *problem = NULL;
                char too_long[64];
                if (!yaml_node_is_scalar(item) || item->kind == YAML_KIND_NULL) {
                        r = diag_error(diags, file, item->line, item->column, "'%s' items must be strings, got %s",
                                       k->name, yaml_kind_to_string(item->kind));
                        if (r < 0)
                                goto oom;
                        bad = true;
                        continue;
                }
                if (item->length == 0)
                        problem = "must not be empty";
                else if (item->length > CONFIG_MAX_PATTERN_LENGTH) {
                        snprintf(too_long, sizeof(too_long), "is too long: %zu bytes (limit %d)", item->length,
                                 CONFIG_MAX_PATTERN_LENGTH);
                        problem = too_long;
                }
                else
                        for (size_t b = 0; b < item->length && !problem; b++)
                                if ((unsigned char) item->scalar[b] < 0x20 || item->scalar[b] == 0x7f)
                                        problem = "contains a control character";
                if (problem) {
                        r = diag_error(diags, file, item->line, item->column, "'%s' pattern %s %s", k->name,
                                       yaml_quote(q, sizeof(q), item->scalar, item->length), problem);
                        if (r < 0)
                                goto oom;
                        bad = true;
                        continue;
                }
                if (!(l.items[l.n++] = strdup(item->scalar)))
                        goto oom;
        }
        if (bad) {
                config_list_done(&l);
                return -EINVAL;
        }
        config_list_done(&st->list[i]);
        st->list[i] = l;
        st->set[i] = true;
        return 0;
oom:
        config_list_done(&l);
        return -ENOMEM;
}

/* proxy: http://[USER[:PASSWORD]@]HOST:PORT[/]. NULL when valid (*ret_password: the URL
 * holds a password), else what is wrong, in words that never repeat the value: it may
 * hold a password. Only http://: libcurl reaches an https:// endpoint through it with
 * CONNECT, so TLS is still end to end. */
static const char *proxy_problem(const char *s, bool *ret_password) {
        *ret_password = false;
        if (strncasecmp(s, "http://", 7) != 0)
                return strstr(s, "://") ? "only an http:// proxy is supported (https:// endpoints are reached "
                                          "through it with CONNECT, still end to end encrypted)"
                                        : "expected http://HOST:PORT";
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == 0x7f)
                        return "contains a space or a control character";
        const char *auth = s + 7, *end = auth + strcspn(auth, "/?#");
        if (*end && !streq(end, "/"))
                return "must not have a path, query or fragment: expected http://HOST:PORT";
        const char *at = memrchr(auth, '@', (size_t) (end - auth));
        if (at) {
                if (at == auth)
                        return "has an empty user name before '@'";
                *ret_password = memchr(auth, ':', (size_t) (at - auth)) != NULL;
        }
        const char *host = at ? at + 1 : auth, *colon;
        if (host < end && *host == '[') {
                const char *close = memchr(host, ']', (size_t) (end - host));
                if (!close || close == host + 1)
                        return "has a malformed [IPv6] host";
                for (const char *p = host + 1; p < close; p++)
                        if (!isxdigit((unsigned char) *p) && *p != ':' && *p != '.')
                                return "has a malformed [IPv6] host";
                colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        } else {
                colon = memrchr(host, ':', (size_t) (end - host));
                if (colon == host || host == end)
                        return "has no host: expected http://HOST:PORT";
                for (const char *p = host; p < (colon ? colon : end); p++)
                        if (!isalnum((unsigned char) *p) && *p != '.' && *p != '-' && *p != '_')
                                return "has a host name with a character other than letters, digits, '.', '-' or '_'";
        }
        /* libcurl would assume 1080 (SOCKS's): say the port rather than guess */
        if (!colon || colon + 1 == end)
                return "needs a port: expected http://HOST:PORT";
        unsigned port = 0;
        for (const char *p = colon + 1; p < end; p++) {
                if (!isdigit((unsigned char) *p) || port > 6553)
                        return "has a port that is not a number from 1 to 65535";
                port = port * 10 + (unsigned) (*p - '0');
        }
        if (port < 1 || port > 65535)
                return "has a port that is not a number from 1 to 65535";
        return NULL;
}

static int stage_proxy(const char *file, size_t i, const YamlNode *v, Staged *st, Diags *diags) {
        const char *name = config_keys[i].name;
        const char *problem = NULL;
        bool password = false;
        int r;
        if (v->kind != YAML_KIND_STRING)
                problem = "must be a string";
        else if (v->length == 0 || strlen(v->scalar) != v->length)
                problem = v->length == 0 ? "must not be empty" : "contains a NUL byte";
        else
                problem = proxy_problem(v->scalar, &password);
        if (problem) {
                r = diag_error(diags, file, v->line, v->column, "invalid '%s': %s", name, problem);
                return r < 0 ? r : -EINVAL;
        }
        if (password) {
                /* allowed, since it works; but a config file is readable by whoever may read
                 * the settings, and the password belongs with the other secrets */
                r = diag_warning(diags, file, v->line, v->column,
                                 "'%s' holds a password: rather leave it out here and set https_proxy= in a "
                                 "root-owned mode 0600 EnvironmentFile= of the unit (see notebookd(8), PROXIES)",
                                 name);
                if (r < 0)
                        return r;
        }
        char *copy = strdup(v->scalar);
        if (!copy)
                return -ENOMEM;
        value_free(VALUE_PROXY, st->str[i]);
        st->str[i] = copy;
        st->set[i] = true;
        return 0;
}

/* One no_proxy entry, as libcurl (7.88) reads them: a host name or domain (a leading
 * '.' allowed), an IPv4 or IPv6 address, an address/prefix range, or "*" (every host;
 * stage_hosts checks it is alone). libcurl takes a '*' inside a name and a bracketed
 * address literally, so either would match nothing and send the traffic meant to go
 * direct to the proxy: refused here, with what to write instead. */
static const char *host_pattern_problem(const char *s, size_t len) {
        if (len == 0)
                return "is empty";
        if (len > CONFIG_MAX_PATTERN_LENGTH)
                return "is too long";
        if (len == 1 && s[0] == '*')
                return NULL;
        for (size_t b = 0; b < len; b++) {
                if (s[b] == '*')
                        return "has a '*', which libcurl honours only as the whole list: write '.corp.example' "
                               "for a domain and its hosts";
                if (s[b] == '[' || s[b] == ']')
                        return "has brackets, which libcurl takes literally: write the address without them "
                               "(::1)";
                if (!isalnum((unsigned char) s[b]) && !strchr(".-_:/", s[b]))
                        return "is not a host name, domain, address or address/prefix";
        }
        return NULL;
}

/* no_proxy: a list of entries, or one string of entries separated by commas (the
 * environment variable's form, so a value can be copied from one to the other). Kept
 * as that comma-separated string: what CURLOPT_NOPROXY takes. */
static int stage_hosts(const char *file, size_t i, const YamlNode *v, Staged *st, Diags *diags) {
        const char *name = config_keys[i].name;
        char q[YAML_QUOTE_BUF];
        int r;
        bool list = v->kind == YAML_KIND_SEQUENCE;
        if (!list && (!yaml_node_is_scalar(v) || v->kind == YAML_KIND_NULL)) {
                r = diag_error(diags, file, v->line, v->column,
                               "'%s' must be a list of hosts or a comma-separated string, got %s", name,
                               yaml_kind_to_string(v->kind));
                return r < 0 ? r : -EINVAL;
        }
        size_t n = list ? v->n_items : 1;
        if (n == 0 || (!list && v->length == 0)) {
                r = diag_error(diags, file, v->line, v->column,
                               "'%s' must not be empty (leave the key out to use the environment's no_proxy)", name);
                return r < 0 ? r : -EINVAL;
        }
        if (n > CONFIG_MAX_PATTERNS) {
                r = diag_error(diags, file, v->line, v->column, "'%s' has %zu hosts (limit %d)", name, n,
                               CONFIG_MAX_PATTERNS);
                return r < 0 ? r : -EINVAL;
        }
        _cleanup_free_ char *joined = NULL;
        size_t used = 0, n_entries = 0;
        bool bad = false;
        const YamlNode *star = NULL;   /* the item that holds a "*" entry */
        for (size_t j = 0; j < n; j++) {
                const YamlNode *item = list ? v->items[j] : v;
                if (!yaml_node_is_scalar(item) || item->kind == YAML_KIND_NULL) {
                        r = diag_error(diags, file, item->line, item->column, "'%s' items must be strings, got %s",
                                       name, yaml_kind_to_string(item->kind));
                        if (r < 0)
                                return r;
                        bad = true;
                        continue;
                }
                /* each comma-separated part, spaces around it dropped */
                for (const char *p = item->scalar, *stop = item->scalar + item->length; p <= stop;) {
                        size_t len = strcspn(p, ",");
                        const char *e = MIN(p + len, stop), *b = p;
                        while (b < e && *b == ' ')
                                b++;
                        while (e > b && e[-1] == ' ')
                                e--;
                        const char *problem = host_pattern_problem(b, (size_t) (e - b));
                        n_entries++;
                        if (e - b == 1 && *b == '*' && !star)
                                star = item;
                        if (problem) {
                                r = diag_error(diags, file, item->line, item->column, "'%s' entry %s %s", name,
                                               yaml_quote(q, sizeof(q), b, (size_t) (e - b)), problem);
                                if (r < 0)
                                        return r;
                                bad = true;
                        } else if (!bad) {
                                char *t = realloc(joined, used + (size_t) (e - b) + 2);
                                if (!t)
                                        return -ENOMEM;
                                joined = t;
                                if (used > 0)
                                        joined[used++] = ',';
                                memcpy(joined + used, b, (size_t) (e - b));
                                used += (size_t) (e - b);
                                joined[used] = '\0';
                        }
                        p += len + 1;
                }
        }
        if (star && n_entries > 1) {
                /* libcurl 7.88 honours "*" only as the whole list: beside other entries it
                 * matches no host, and everything would go to the proxy */
                r = diag_error(diags, file, star->line, star->column,
                               "'%s' entry '*' (every host goes direct) must be the only entry", name);
                return r < 0 ? r : -EINVAL;
        }
        if (bad)
                return -EINVAL;
        free(st->str[i]);
        st->str[i] = TAKE_PTR(joined);
        st->set[i] = true;
        return 0;
}

/* Check one value; on success stage it. Returns 0, -EINVAL (diagnosed) or -ENOMEM. */
static int stage_value(const char *file, size_t i, const YamlNode *v, Staged *st, Diags *diags) {
        const ConfigKey *k = &config_keys[i];
        char q[YAML_QUOTE_BUF];
        int r;

        if (k->type == VALUE_PATTERNS)
                return stage_patterns(file, i, v, st, diags);
        if (k->type == VALUE_PROXY)
                return stage_proxy(file, i, v, st, diags);
        if (k->type == VALUE_HOSTS)
                return stage_hosts(file, i, v, st, diags);
        if (k->type == VALUE_TENANTS) {
                r = tenants_parse(file, v, &st->tenants, diags);
                if (r >= 0)
                        st->set[i] = true;
                return r;
        }
        if (value_is_string(k->type)) {
                if (v->kind != YAML_KIND_STRING) {
                        /* a number-looking project_id or region still is a string */
                        if (!yaml_node_is_scalar(v) || v->kind == YAML_KIND_NULL) {
                                r = diag_error(diags, file, v->line, v->column, "'%s' must be a string, got %s",
                                               k->name, yaml_kind_to_string(v->kind));
                                return r < 0 ? r : -EINVAL;
                        }
                }
                if (v->length == 0) {
                        r = diag_error(diags, file, v->line, v->column, "'%s' must not be empty", k->name);
                        return r < 0 ? r : -EINVAL;
                }
                const char *s = v->scalar;
                const char *problem = NULL;
                if (k->type == VALUE_URL && !valid_url(s))
                        problem = "expected an http:// or https:// URL";
                else if (k->type == VALUE_REGION && !valid_region(s))
                        problem = "expected a region name like 'cn-north-4'";
                else if (k->type == VALUE_PROJECT && !config_valid_project_id(s))
                        problem = "expected 32 hexadecimal digits";
                else if (streq(k->name, "credentials") && !streq(s, "metadata"))
                        /* the only source that needs naming: the others are found */
                        problem = "expected 'metadata' (leave the key out to use ak_file/sk_file, "
                                  "$CREDENTIALS_DIRECTORY or the environment)";
                if (problem) {
                        r = diag_error(diags, file, v->line, v->column, "invalid '%s' %s: %s", k->name,
                                       yaml_quote(q, sizeof(q), s, v->length), problem);
                        return r < 0 ? r : -EINVAL;
                }
                char *copy = strdup(s);
                if (!copy)
                        return -ENOMEM;
                if (k->type == VALUE_URL) {
                        /* paths are appended to it: "https://host/" + "/v1/..." would double the slash */
                        size_t n = strlen(copy);
                        while (n > 0 && copy[n - 1] == '/')
                                copy[--n] = 0;
                }
                free(st->str[i]);
                st->str[i] = copy;
                st->set[i] = true;
                return 0;
        }

        int64_t val;
        if (k->type == VALUE_BOOL) {
                /* only the two words: "prune: yes" deleting notebooks by a YAML 1.1 reading
                 * is exactly the surprise this key must not have */
                if (v->kind != YAML_KIND_BOOL) {
                        r = diag_error(diags, file, v->line, v->column, "'%s' must be true or false, got %s", k->name,
                                       yaml_node_is_scalar(v) && v->kind != YAML_KIND_NULL
                                               ? yaml_quote(q, sizeof(q), v->scalar, v->length)
                                               : yaml_kind_to_string(v->kind));
                        return r < 0 ? r : -EINVAL;
                }
                val = strcasecmp(v->scalar, "true") == 0;   /* true, True, TRUE */
        } else if (k->type == VALUE_COUNT) {
                r = yaml_node_int64(v, k->min, k->max, &val);
                if (r == -ERANGE) {
                        r = diag_error(diags, file, v->line, v->column, "'%s' must be between %" PRId64 " and %" PRId64 ", got %s",
                                       k->name, k->min, k->max, v->scalar);
                        return r < 0 ? r : -EINVAL;
                }
                if (r < 0) {
                        r = diag_error(diags, file, v->line, v->column, "'%s' must be an integer, got %s",
                                       k->name, yaml_kind_to_string(v->kind));
                        return r < 0 ? r : -EINVAL;
                }
        } else {
                /* a bare integer is seconds; a string carries its unit */
                if (v->kind == YAML_KIND_INT) {
                        r = yaml_node_int64(v, 0, INT64_MAX / 1000, &val);
                        if (r >= 0)
                                val *= 1000;
                        else
                                r = -ERANGE;
                } else if (v->kind == YAML_KIND_STRING)
                        r = parse_duration_ms(v->scalar, &val);
                else if (!yaml_node_is_scalar(v) || v->kind == YAML_KIND_NULL) {
                        r = diag_error(diags, file, v->line, v->column, "'%s' must be a duration, got %s", k->name,
                                       yaml_kind_to_string(v->kind));
                        return r < 0 ? r : -EINVAL;
                } else
                        r = -EINVAL;
                if (r == -EINVAL) {
                        r = diag_error(diags, file, v->line, v->column,
                                       "invalid '%s' %s: expected seconds or a duration like 30s, 10m, 1h",
                                       k->name, yaml_quote(q, sizeof(q), strempty(v->scalar), v->length));
                        return r < 0 ? r : -EINVAL;
                }
                if (r == -ERANGE || val < k->min || val > k->max) {
                        char lo[32], hi[32];
                        format_duration(k->min, lo, sizeof(lo));
                        format_duration(k->max, hi, sizeof(hi));
                        r = diag_error(diags, file, v->line, v->column, "'%s' must be between %s and %s, got %s",
                                       k->name, lo, hi, yaml_quote(q, sizeof(q), strempty(v->scalar), v->length));
                        return r < 0 ? r : -EINVAL;
                }
        }
        st->num[i] = val;
        st->set[i] = true;
        return 0;
}

static int unknown_key(const char *file, const YamlNode *key, Diags *diags) {
        const char *names[N_KEYS];
        char q[YAML_QUOTE_BUF];
        for (size_t i = 0; i < N_KEYS; i++)
                names[i] = config_keys[i].name;
        yaml_quote(q, sizeof(q), key->scalar, key->length);

        /* "sk: ..." or "password: ...": the secret itself must not live in this file (it
         * is world-readable by default); point at the *_file key instead. */
        _cleanup_free_ char *as_file = xasprintf("%s_file", key->scalar);
        if (!as_file)
                return -ENOMEM;
        for (size_t i = 0; i < N_KEYS; i++)
                if (streq(as_file, config_keys[i].name))
                        return diag_error(diags, file, key->line, key->column,
                                          "unknown key %s (secrets are not read from the config: use '%s' naming a file)",
                                          q, config_keys[i].name);

        const char *hint = closest_match(key->scalar, names, N_KEYS);
        if (hint)
                return diag_error(diags, file, key->line, key->column, "unknown key %s (did you mean '%s'?)", q, hint);
        return diag_error(diags, file, key->line, key->column, "unknown key %s", q);
}

static int config_parse(Config *c, const char *path, const char *buf, size_t len, Diags *diags) {
        _cleanup_(yaml_stream_freep) YamlStream *s = NULL;
        _cleanup_diags_ Diags local = DIAGS_INIT;
        int r = yaml_tree_load(path, buf, len, &local, &s);
        if (r < 0)
                return r;
        _cleanup_(staged_done) Staged st = {};
        /* A duplicate key leaves the tree whole: go on and report the other problems too. */
        bool bad = s->n_errors > 0 && (s->n_documents == 0 || !s->documents[0].complete);

        if (!bad && s->n_documents > 1) {
                r = diag_error(&local, path, s->documents[1].line, s->documents[1].column,
                               "the config file must hold a single document");
                if (r < 0)
                        return r;
                bad = true;
        }
        const YamlNode *root = s->n_documents > 0 ? s->documents[0].root : NULL;
        if (!bad && root && root->kind != YAML_KIND_MAPPING) {
                r = diag_error(&local, path, root->line, root->column,
                               "the config file must be a mapping of settings, got %s",
                               yaml_kind_to_string(root->kind));
                if (r < 0)
                        return r;
                bad = true;
        }
        const YamlNode *metadata_endpoint = NULL;
        bool metadata_credentials = false;
        if (!bad && root)
                for (size_t p = 0; p < root->n_pairs; p++) {
                        const YamlNode *key = root->pairs[p].key, *value = root->pairs[p].value;
                        size_t i;
                        for (i = 0; i < N_KEYS; i++)
                                if (streq(key->scalar, config_keys[i].name))
                                        break;
                        if (i == N_KEYS)
                                r = unknown_key(path, key, &local) < 0 ? -ENOMEM : -EINVAL;
                        else
                                r = stage_value(path, i, value, &st, &local);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                bad = true;
                        else if (streq(key->scalar, "metadata_endpoint"))
                                metadata_endpoint = value;
                        else if (streq(key->scalar, "credentials"))
                                metadata_credentials = true;   /* "metadata" is its only value */
                }
        if (!bad && metadata_endpoint && !metadata_credentials) {
                /* Accepted but unused: whoever set it most likely meant the metadata
                 * service to be the source, and would otherwise not learn that it is not. */
                r = diag_warning(&local, path, metadata_endpoint->line, metadata_endpoint->column,
                                 "'metadata_endpoint' is ignored without 'credentials: metadata'");
                if (r < 0)
                        return r;
        }

        diags_sort(&local);
        if (bad || local.n_errors > 0) {
                r = diags_move(diags, &local);
                return r < 0 ? r : -EINVAL;
        }

        /* all checked: now, and only now, change c */
        char *file = strdup(path);
        if (!file)
                return -ENOMEM;
        free(c->file);
        c->file = file;
        for (size_t i = 0; i < N_KEYS; i++) {
                if (!st.set[i])
                        continue;
                char *field = (char *) c + config_keys[i].offset;
                if (value_is_string(config_keys[i].type)) {
                        value_free(config_keys[i].type, *(char **) field);
                        *(char **) field = TAKE_PTR(st.str[i]);
                } else if (config_keys[i].type == VALUE_PATTERNS) {
                        config_list_done((ConfigList *) field);
                        *(ConfigList *) field = st.list[i];
                        st.list[i] = (ConfigList) {};
                } else if (config_keys[i].type == VALUE_TENANTS) {
                        tenant_list_done((TenantList *) field);
                        *(TenantList *) field = st.tenants;
                        st.tenants = (TenantList) {};
                } else if (config_keys[i].type == VALUE_COUNT)
                        *(unsigned *) field = (unsigned) st.num[i];
                else if (config_keys[i].type == VALUE_BOOL)
                        *(bool *) field = st.num[i] != 0;
                else
                        *(int64_t *) field = st.num[i];
        }
        return diags_move(diags, &local);
}

int config_load(Config *c, const char *path, Diags *diags) {
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = yaml_read_file(AT_FDCWD, path, CONFIG_MAX_FILE_SIZE, &buf, &len);
        if (r == -ENOENT || r == -ENOMEM)
                return r;
        if (r == -EFBIG)
                r = diag_error(diags, path, 0, 0, "config file too large (limit %d bytes)", CONFIG_MAX_FILE_SIZE);
        else if (r == -EISDIR || r == -EINVAL)
                r = diag_error(diags, path, 0, 0, "not a regular file");
        else if (r < 0)
                r = diag_error(diags, path, 0, 0, "cannot read config: %s", strerror(-r));
        else {
                r = config_parse(c, path, buf, len, diags);
                /* the file's text may hold a proxy password */
                explicit_bzero(buf, len);
                return r;
        }
        return r < 0 ? r : -EINVAL;
}

char *config_effective_endpoint(const Config *c) {
        if (c->endpoint)
                return strdup(c->endpoint);
        if (!c->region)
                return NULL;
        /* ap-southeast-1 (Hong Kong) is under .cn, the other regions under .com */
        return xasprintf("https://modelarts.%s.myhuaweicloud.%s", c->region,
                         streq(c->region, "ap-southeast-1") ? "cn" : "com");
}
