/* Flags and runtime settings, one table: the command line (--fail-5xx-rate 0.2) and
 * POST /_emulator/config?fail_5xx_rate=0.2 go through the same parser, so a setting
 * behaves the same wherever it is given. */
#include "emulator.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "util.h"

typedef enum SettingType {
        T_STRING,
        T_BOOL,
        T_INT,
        T_RATE,
        T_SEED,
        T_ROUTES,
        T_CHOICE, /* an int64_t index into choices[] */
} SettingType;

typedef struct SettingDef {
        const char *name; /* with '-' */
        SettingType type;
        size_t offset;
        int64_t min, max; /* T_INT */
        bool startup_only;
        bool secret;
        const char *help;
} SettingDef;

/* T_CHOICE's words (error-field is the only one), NULL-terminated. */
static const char *const error_fields[] = { [ERROR_FIELD_MESSAGE] = "message", [ERROR_FIELD_MSG] = "msg", NULL };
#define CHOICES(d) error_fields

#define OFF(f) offsetof(Settings, f)
static const SettingDef defs[] = {
        { "listen", T_STRING, OFF(listen), 0, 0, true, false, "ADDR:PORT to bind, loopback only (PORT 0: pick one)" },
        { "port-file", T_STRING, OFF(port_file), 0, 0, true, false, "write the bound port here (atomically)" },
        { "project-id", T_STRING, OFF(project_id), 0, 0, true, false, "the only project id accepted in paths (default: any)" },
        { "ak", T_STRING, OFF(ak), 0, 0, true, true, "access key: requests must be signed SDK-HMAC-SHA256" },
        { "sk", T_STRING, OFF(sk), 0, 0, true, true, "secret key for --ak" },
        { "token", T_STRING, OFF(token), 0, 0, true, true, "accepted X-Auth-Token" },
        { "security-token", T_STRING, OFF(security_token), 0, 0, true, true,
          "with --ak: required (and signed) X-Security-Token" },
        { "threads", T_INT, OFF(threads), 1, 64, true, false, "HTTP worker threads" },
        { "seed", T_SEED, OFF(seed), 0, 0, true, false, "seed for fault draws and ids (default: random)" },
        { "log", T_BOOL, OFF(log), 0, 0, true, false, "one line per request on stderr" },
        { "grant-gpu", T_BOOL, OFF(grant_gpu), 0, 0, false, false, "allow the multi-card GPU flavors (else 6328)" },
        { "error-field", T_CHOICE, OFF(error_field), 0, 0, false, false,
          "message|msg: ModelArts errors say error_message or error_msg" },
        { "fail-pattern", T_STRING, OFF(fail_pattern), 0, 0, false, false,
          "comma-separated globs: matching names end CREATE_FAILED" },
        { "sold-out", T_STRING, OFF(sold_out), 0, 0, false, false, "comma-separated flavors answered 6329" },
        { "flavors", T_STRING, OFF(flavors), 0, 0, false, false,
          "the region's flavors, NAME=KIND,... (KIND cpu|gpu|ascend|any; default: the contract's list)" },
        { "profiles", T_STRING, OFF(profiles), 0, 0, false, false,
          "the region's profiles, NAME=KIND,... (default: the contract's list)" },
        { "inject-error", T_STRING, OFF(inject_error), 0, 0, false, false,
          "CODE:GLOB[:COUNT],...: creates of matching names get CODE (COUNT times per name; 0: always)" },
        { "max-instances", T_INT, OFF(max_instances), 0, INT64_MAX, false, false,
          "instance count limit, 6302 beyond (0: none)" },
        { "create-delay-ms", T_INT, OFF(create_delay_ms), 0, INT64_MAX / 4, false, false, "CREATING -> RUNNING after" },
        { "action-delay-ms", T_INT, OFF(action_delay_ms), 0, INT64_MAX / 4, false, false,
          "STARTING/STOPPING -> RUNNING/STOPPED after" },
        { "create-status", T_INT, OFF(create_status), 200, 299, false, false, "HTTP status of a successful create" },
        { "lock-after", T_INT, OFF(lock_after), 1, 1000, false, false, "bad signatures in a row that lock the AK" },
        { "lock-ms", T_INT, OFF(lock_ms), 0, INT64_MAX / 4, false, false, "how long a locked AK stays locked" },
        { "latency-ms", T_INT, OFF(latency_ms), 0, 3600000, false, false, "delay before handling each API request" },
        { "slow-ms", T_INT, OFF(slow_ms), 0, 3600000, false, false,
          "hold responses this long after handling (for client timeouts)" },
        { "slow-rate", T_RATE, OFF(slow_rate), 0, 0, false, false, "share of API requests --slow-ms applies to" },
        { "fail-5xx-rate", T_RATE, OFF(fail_5xx_rate), 0, 0, false, false, "share answered 500 ModelArts.0010" },
        { "throttle-rate", T_RATE, OFF(throttle_rate), 0, 0, false, false, "share answered 429 APIG.0308" },
        { "retry-after", T_INT, OFF(retry_after), 0, 3600, false, false, "Retry-After seconds of a 429" },
        { "retry-after-header", T_BOOL, OFF(retry_after_header), 0, 0, false, false,
          "a 429 carries Retry-After (default: it does not)" },
        { "total-count-string", T_BOOL, OFF(total_count_string), 0, 0, false, false,
          "list answers send total_count as a JSON string" },
        { "drop-after-create-rate", T_RATE, OFF(drop_after_create_rate), 0, 0, false, false,
          "share of successful creates whose connection is closed without a response" },
        { "fail-5xx-next", T_INT, OFF(fail_5xx_next), 0, INT64_MAX, false, false, "the next N requests get a 500" },
        { "throttle-next", T_INT, OFF(throttle_next), 0, INT64_MAX, false, false, "the next N requests get a 429" },
        { "deny-next", T_INT, OFF(deny_next), 0, INT64_MAX, false, false,
          "the next N requests get 403 ModelArts.0108 (an IAM policy denies the call)" },
        { "refuse-next", T_INT, OFF(refuse_next), 0, INT64_MAX, false, false,
          "the next N requests get 400 ModelArts.9999 (a refusal no retry fixes)" },
        { "drop-after-create-next", T_INT, OFF(drop_after_create_next), 0, INT64_MAX, false, false,
          "the next N successful creates are dropped" },
        { "fault-routes", T_ROUTES, OFF(fault_routes), 0, 0, false, false,
          "routes faults apply to: all, none or a list of create,list,get,delete,action" },
        { "metadata-period-ms", T_INT, OFF(metadata_period_ms), 0, INT64_MAX / 4, true, false,
          "serve the ECS metadata service; a new key generation this often (0: off)" },
        { "metadata-overlap-ms", T_INT, OFF(metadata_overlap_ms), 0, INT64_MAX / 4, true, false,
          "a generation stays valid this long after the next is issued" },
        { "metadata-no-agency", T_BOOL, OFF(metadata_no_agency), 0, 0, false, false,
          "the ECS has no agency: securitykey answers 404" },
        { "metadata-fail-next", T_INT, OFF(metadata_fail_next), 0, INT64_MAX, false, false,
          "the next N metadata requests answer 503" },
};

/* The value check of a T_STRING setting that has one. */
static int (*string_check(const SettingDef *d))(const char *, char **) {
        if (streq(d->name, "flavors") || streq(d->name, "profiles"))
                return emu_catalog_check;
        if (streq(d->name, "inject-error"))
                return emu_inject_check;
        return NULL;
}

void emu_settings_init(Settings *s) {
        *s = (Settings) {
                .threads = 2,
                .max_instances = 0,
                .create_delay_ms = 500,
                .action_delay_ms = 500,
                .create_status = 201,
                .lock_after = 5,
                .lock_ms = 300000,
                .slow_rate = 1.0,
                .retry_after = 1,
                .fault_routes = ROUTE_API_BITS,
        };
}

void emu_settings_done(Settings *s) {
        for (size_t i = 0; i < ELEMENTSOF(defs); i++)
                if (defs[i].type == T_STRING) {
                        char **p = (char **) ((char *) s + defs[i].offset);
                        if (defs[i].secret)
                                free_secret(*p);
                        else
                                free(*p);
                        *p = NULL;
                }
}

static const SettingDef *find_def(const char *name) {
        char norm[64];
        size_t n = strlen(name);
        if (n >= sizeof(norm))
                return NULL;
        for (size_t i = 0; i <= n; i++)
                norm[i] = name[i] == '_' ? '-' : name[i];
        for (size_t i = 0; i < ELEMENTSOF(defs); i++)
                if (streq(defs[i].name, norm))
                        return &defs[i];
        return NULL;
}

static int parse_bool(const char *v, bool *ret) {
        static const char *const yes[] = { "1", "true", "yes", "on" }, *const no[] = { "0", "false", "no", "off" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (streq(v, yes[i])) {
                        *ret = true;
                        return 0;
                }
                if (streq(v, no[i])) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

static int parse_routes(const char *v, unsigned *ret) {
        if (streq(v, "all")) {
                *ret = ROUTE_API_BITS;
                return 0;
        }
        if (streq(v, "none") || !*v) {
                *ret = 0;
                return 0;
        }
        unsigned bits = 0;
        const char *p = v;
        while (*p) {
                size_t n = strcspn(p, ",");
                bool found = false;
                for (EmuRoute r = ROUTE_CREATE; r <= ROUTE_ACTION; r++) {
                        const char *name = emu_route_name(r);
                        if (strlen(name) == n && strncmp(p, name, n) == 0) {
                                bits |= ROUTE_BIT(r);
                                found = true;
                        }
                }
                if (!found)
                        return -EINVAL;
                p += n;
                if (*p == ',')
                        p++;
        }
        *ret = bits;
        return 0;
}

int emu_settings_set(Settings *s, const char *name, const char *value, bool runtime_only, char **ret_error) {
        const SettingDef *d = find_def(name);
        if (!d) {
                *ret_error = xasprintf("unknown setting \"%s\"", name);
                return -ENOENT;
        }
        if (runtime_only && d->startup_only) {
                *ret_error = xasprintf("setting \"%s\" can only be given at startup", d->name);
                return -EPERM;
        }
        void *field = (char *) s + d->offset;
        switch (d->type) {
        case T_STRING: {
                int (*check)(const char *, char **) = string_check(d);
                if (check && check(value, ret_error) < 0)
                        return -EINVAL;
                char *copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
                char **p = field;
                if (d->secret)
                        free_secret(*p);
                else
                        free(*p);
                *p = copy;
                return 0;
        }
        case T_BOOL:
                if (parse_bool(value, field) < 0)
                        break;
                return 0;
        case T_INT: {
                int64_t v;
                if (parse_int64(value, d->min, d->max, &v) < 0) {
                        *ret_error = xasprintf("--%s wants an integer in [%lld, %lld], not \"%s\"", d->name,
                                               (long long) d->min, (long long) d->max, value);
                        return -EINVAL;
                }
                *(int64_t *) field = v;
                return 0;
        }
        case T_RATE: {
                char *end = NULL;
                errno = 0;
                double v = strtod(value, &end);
                if (errno != 0 || !end || end == value || *end || !isfinite(v) || v < 0.0 || v > 1.0) {
                        *ret_error = xasprintf("--%s wants a rate in [0, 1], not \"%s\"", d->name, value);
                        return -EINVAL;
                }
                *(double *) field = v;
                return 0;
        }
        case T_SEED: {
                int64_t v;
                if (parse_int64(value, 0, INT64_MAX, &v) < 0)
                        break;
                s->seed = (uint64_t) v;
                s->seed_set = true;
                return 0;
        }
        case T_ROUTES:
                if (parse_routes(value, field) < 0)
                        break;
                return 0;
        case T_CHOICE:
                for (int64_t i = 0; CHOICES(d)[i]; i++)
                        if (streq(value, CHOICES(d)[i])) {
                                *(int64_t *) field = i;
                                return 0;
                        }
                break;
        }
        *ret_error = xasprintf("bad value for --%s: \"%s\"", d->name, value);
        return -EINVAL;
}

static void usage(void) {
        Settings d;
        emu_settings_init(&d);
        printf("Usage: modelarts-emulator [--FLAG VALUE | --FLAG=VALUE]...\n"
               "A local, in-memory ModelArts DevEnviron API for tests (see tests/emulator/README.md).\n"
               "[runtime]: also settable with POST /_emulator/config?flag_name=VALUE\n\n");
        for (size_t i = 0; i < ELEMENTSOF(defs); i++) {
                const SettingDef *def = &defs[i];
                const char *arg = def->type == T_BOOL     ? ""
                                  : def->type == T_RATE   ? " RATE"
                                  : def->type == T_INT    ? " N"
                                  : def->type == T_SEED   ? " N"
                                  : def->type == T_ROUTES ? " LIST"
                                  : def->type == T_CHOICE ? " WORD"
                                                          : " VALUE";
                char left[48], dflt[48] = "";
                const void *field = (const char *) &d + def->offset;
                if (def->type == T_INT && *(const int64_t *) field)
                        snprintf(dflt, sizeof(dflt), " (default %lld)", (long long) *(const int64_t *) field);
                else if (def->type == T_RATE && *(const double *) field > 0)
                        snprintf(dflt, sizeof(dflt), " (default %g)", *(const double *) field);
                else if (def->type == T_CHOICE)
                        snprintf(dflt, sizeof(dflt), " (default %s)", CHOICES(def)[*(const int64_t *) field]);
                snprintf(left, sizeof(left), "--%s%s", def->name, arg);
                printf("  %-30s %s%s%s\n", left, def->help, dflt, def->startup_only ? "" : " [runtime]");
        }
        printf("  %-30s %s\n", "--help", "this text");
}

int emu_settings_parse_argv(Settings *s, int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (streq(a, "--help") || streq(a, "-h")) {
                        usage();
                        return 1;
                }
                if (streq(a, "--version")) {
                        printf("modelarts-emulator %s\n", NOTEBOOKD_VERSION);
                        return 1;
                }
                if (strncmp(a, "--", 2) != 0) {
                        fprintf(stderr, "modelarts-emulator: unexpected argument \"%s\" (try --help)\n", a);
                        return -EINVAL;
                }
                a += 2;
                _cleanup_free_ char *name = NULL;
                const char *value;
                const char *eq = strchr(a, '=');
                if (eq) {
                        name = strndup(a, (size_t) (eq - a));
                        value = eq + 1;
                } else {
                        name = strdup(a);
                        const SettingDef *d = find_def(a);
                        if (d && d->type == T_BOOL)
                                value = "true";
                        else if (i + 1 < argc)
                                value = argv[++i];
                        else {
                                fprintf(stderr, "modelarts-emulator: --%s needs a value\n", a);
                                return -EINVAL;
                        }
                }
                if (!name)
                        return -ENOMEM;
                _cleanup_free_ char *err = NULL;
                int r = emu_settings_set(s, name, value, false, &err);
                if (r < 0) {
                        fprintf(stderr, "modelarts-emulator: %s\n", err ? err : strerror(-r));
                        return r;
                }
        }
        return 0;
}

cJSON *emu_settings_to_json(const Settings *s) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(defs); i++) {
                const SettingDef *d = &defs[i];
                char key[64];
                size_t n = strlen(d->name);
                for (size_t j = 0; j <= n && j < sizeof(key); j++)
                        key[j] = d->name[j] == '-' ? '_' : d->name[j];
                key[sizeof(key) - 1] = '\0';
                const void *field = (const char *) s + d->offset;
                switch (d->type) {
                case T_STRING: {
                        const char *v = *(char *const *) field;
                        if (d->secret)
                                cJSON_AddBoolToObject(o, key, v != NULL); /* never the value */
                        else if (!v && (field == &s->flavors || field == &s->profiles)) {
                                /* unset: the default table is in force; show it */
                                _cleanup_free_ char *dflt = emu_catalog_default(field == &s->profiles);
                                cJSON_AddStringToObject(o, key, strempty(dflt));
                        } else if (v)
                                cJSON_AddStringToObject(o, key, v);
                        else
                                cJSON_AddNullToObject(o, key);
                        break;
                }
                case T_BOOL:
                        cJSON_AddBoolToObject(o, key, *(const bool *) field);
                        break;
                case T_INT:
                        cJSON_AddNumberToObject(o, key, (double) *(const int64_t *) field);
                        break;
                case T_RATE:
                        cJSON_AddNumberToObject(o, key, *(const double *) field);
                        break;
                case T_SEED:
                        if (s->seed_set)
                                cJSON_AddNumberToObject(o, key, (double) s->seed);
                        else
                                cJSON_AddNullToObject(o, key);
                        break;
                case T_CHOICE:
                        cJSON_AddStringToObject(o, key, CHOICES(d)[*(const int64_t *) field]);
                        break;
                case T_ROUTES: {
                        cJSON *a = cJSON_AddArrayToObject(o, key);
                        for (EmuRoute r = ROUTE_CREATE; a && r <= ROUTE_ACTION; r++)
                                if (s->fault_routes & ROUTE_BIT(r))
                                        cJSON_AddItemToArray(a, cJSON_CreateString(emu_route_name(r)));
                        break;
                }
                }
        }
        return o;
}
