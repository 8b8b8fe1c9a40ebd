/* What the emulator saw, for tests to assert on: counts by route and HTTP status, API
 * error codes, injected faults, protocol violations (with the last few details), and
 * creates per name.
 *
 * "duplicates" (per name and in total) counts create requests that reached the rules
 * and named an instance that already existed (not DELETED): exactly the requests
 * answered ModelArts.6301. A client that resolves an unknown outcome by listing first
 * never causes one, so a convergence test asserts duplicates == 0; and because 6301 is
 * enforced, the emulator never holds two live instances of one name. "created" per name
 * counts instances actually created (a name re-created after a delete counts twice). */
#include "emulator.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "util.h"

#define HTTP_MAX 600

typedef struct NameStats {
        char *name;
        uint64_t requests, created, duplicates;
} NameStats;

typedef struct CodeCount {
        char code[32];
        uint64_t n;
} CodeCount;

typedef struct Recent {
        EmuRoute route;
        unsigned http; /* 0: dropped, no answer */
        char *name;    /* NULL: none known */
        int64_t mono_ms;
} Recent;

struct Stats {
        uint64_t requests;
        uint64_t by_route[_ROUTE_MAX];
        uint64_t by_route_status[_ROUTE_MAX][HTTP_MAX];
        uint64_t dropped[_ROUTE_MAX];
        CodeCount codes[64]; /* distinct codes are few: the contract lists ~40 */
        size_t n_codes;
        uint64_t violations[_VIOLATION_MAX];
        char *violation_log[EMU_VIOLATION_LOG];
        size_t violation_next;
        uint64_t faults[_FAULT_MAX];
        EmuMap *names;
        uint64_t creates_requests, creates_created, creates_duplicates;
        CodeCount injected[16]; /* --inject-error supports fewer codes */
        size_t n_injected;
        Recent recent[EMU_RECENT_REQUESTS]; /* a ring */
        size_t recent_next;
};

static const char *const route_names[_ROUTE_MAX] = {
        [ROUTE_CREATE] = "create", [ROUTE_LIST] = "list",         [ROUTE_GET] = "get",         [ROUTE_DELETE] = "delete",
        [ROUTE_ACTION] = "action", [ROUTE_EMULATOR] = "emulator", [ROUTE_UNKNOWN] = "unknown", [ROUTE_METADATA] = "metadata",
};

const char *emu_route_name(EmuRoute r) {
        return r < _ROUTE_MAX ? route_names[r] : "?";
}

static const char *const violation_names[_VIOLATION_MAX] = {
        [VIOLATION_MISSING_AUTH] = "missing_auth",
        [VIOLATION_MALFORMED_AUTHORIZATION] = "malformed_authorization",
        [VIOLATION_UNKNOWN_AK] = "unknown_ak",
        [VIOLATION_BAD_SIGNATURE] = "bad_signature",
        [VIOLATION_AK_LOCKED] = "ak_locked",
        [VIOLATION_BAD_SDK_DATE] = "bad_sdk_date",
        [VIOLATION_CLOCK_SKEW] = "clock_skew",
        [VIOLATION_BAD_TOKEN] = "bad_token",
        [VIOLATION_BAD_SECURITY_TOKEN] = "bad_security_token",
        [VIOLATION_PROJECT_MISMATCH] = "project_mismatch",
        [VIOLATION_MISSING_X_PROJECT_ID] = "missing_x_project_id",
        [VIOLATION_UNSIGNED_X_PROJECT_ID] = "unsigned_x_project_id",
        [VIOLATION_QUERY_NOT_CANONICAL] = "query_not_canonical",
        [VIOLATION_MISSING_DE_TYPE] = "missing_de_type",
        [VIOLATION_BAD_DE_TYPE] = "bad_de_type",
        [VIOLATION_BAD_QUERY] = "bad_query",
        [VIOLATION_MALFORMED_JSON] = "malformed_json",
        [VIOLATION_BAD_CONTENT_TYPE] = "bad_content_type",
        [VIOLATION_BODY_TOO_LARGE] = "body_too_large",
        [VIOLATION_UNKNOWN_ROUTE] = "unknown_route",
};

const char *emu_violation_name(EmuViolation v) {
        return v < _VIOLATION_MAX ? violation_names[v] : "?";
}

static const char *const fault_names[_FAULT_MAX] = {
        [FAULT_THROTTLE] = "throttled_429",
        [FAULT_5XX] = "internal_500",
        [FAULT_DROP_AFTER_CREATE] = "dropped_after_create",
        [FAULT_SLOW] = "slow",
        [FAULT_LATENCY] = "latency",
};

const char *emu_fault_name(EmuFault f) {
        return f < _FAULT_MAX ? fault_names[f] : "?";
}

int emu_stats_new(Stats **ret) {
        Stats *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        if (emu_map_new(&s->names) < 0) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

static void free_name(const char *key, void *value, void *userdata) {
        (void) key;
        (void) userdata;
        NameStats *n = value;
        free(n->name);
        free(n);
}

void emu_stats_clear(Stats *s) {
        emu_map_foreach(s->names, free_name, NULL);
        emu_map_clear(s->names);
        for (size_t i = 0; i < EMU_VIOLATION_LOG; i++)
                free(s->violation_log[i]);
        for (size_t i = 0; i < EMU_RECENT_REQUESTS; i++)
                free(s->recent[i].name);
        EmuMap *names = s->names;
        *s = (Stats) { .names = names };
}

Stats *emu_stats_free(Stats *s) {
        if (!s)
                return NULL;
        emu_stats_clear(s);
        emu_map_free(s->names);
        free(s);
        return NULL;
}

void emu_stats_request(Stats *s, EmuRoute r) {
        s->requests++;
        s->by_route[r]++;
}

static void count_code(CodeCount *codes, size_t *n, size_t max, const char *code) {
        for (size_t i = 0; i < *n; i++)
                if (streq(codes[i].code, code)) {
                        codes[i].n++;
                        return;
                }
        if (*n < max) {
                snprintf(codes[*n].code, sizeof(codes[0].code), "%s", code);
                codes[(*n)++].n = 1;
        }
}

void emu_stats_response(Stats *s, EmuRoute r, unsigned http, const char *error_code) {
        if (http < HTTP_MAX)
                s->by_route_status[r][http]++;
        if (error_code)
                count_code(s->codes, &s->n_codes, ELEMENTSOF(s->codes), error_code);
}

void emu_stats_injected(Stats *s, const char *code) {
        count_code(s->injected, &s->n_injected, ELEMENTSOF(s->injected), code);
}

void emu_stats_recent(Stats *s, EmuRoute r, unsigned http, const char *name, int64_t mono_ms) {
        Recent *rec = &s->recent[s->recent_next++ % EMU_RECENT_REQUESTS];
        free(rec->name);
        *rec = (Recent) { .route = r, .http = http, .name = name ? strdup(name) : NULL, .mono_ms = mono_ms };
}

void emu_stats_dropped(Stats *s, EmuRoute r) {
        s->dropped[r]++;
}

void emu_stats_violation(Stats *s, EmuViolation v, const char *method, const char *path, const char *detail) {
        s->violations[v]++;
        _cleanup_free_ char *q = quote_for_log(path ? path : "");
        char *line = xasprintf("%s %s %s: %s", emu_violation_name(v), strempty(method), strempty(q),
                               detail ? detail : "");
        size_t i = s->violation_next++ % EMU_VIOLATION_LOG;
        free(s->violation_log[i]);
        s->violation_log[i] = line;
}

void emu_stats_fault(Stats *s, EmuFault f) {
        s->faults[f]++;
}

void emu_stats_create(Stats *s, const char *name, CreateOutcome o) {
        NameStats *n = emu_map_get(s->names, name);
        if (!n) {
                n = calloc(1, sizeof(*n));
                if (!n)
                        return;
                n->name = strdup(name);
                if (!n->name || emu_map_put(s->names, n->name, n) < 0) {
                        free(n->name);
                        free(n);
                        return;
                }
        }
        switch (o) {
        case CREATE_ATTEMPT:
                n->requests++;
                s->creates_requests++;
                break;
        case CREATE_CREATED:
                n->created++;
                s->creates_created++;
                break;
        case CREATE_DUPLICATE:
                n->duplicates++;
                s->creates_duplicates++;
                break;
        }
}

static void add_name(const char *key, void *value, void *userdata) {
        cJSON *by_name = userdata;
        const NameStats *n = value;
        cJSON *o = cJSON_AddObjectToObject(by_name, key);
        if (!o)
                return;
        cJSON_AddNumberToObject(o, "requests", (double) n->requests);
        cJSON_AddNumberToObject(o, "created", (double) n->created);
        cJSON_AddNumberToObject(o, "duplicates", (double) n->duplicates);
}

cJSON *emu_stats_to_json(const Stats *s) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
                return NULL;
        char key[16];
        cJSON_AddNumberToObject(o, "requests", (double) s->requests);

        cJSON *by_route = cJSON_AddObjectToObject(o, "by_route");
        cJSON *by_status = cJSON_AddObjectToObject(o, "by_status");
        cJSON *by_route_status = cJSON_AddObjectToObject(o, "by_route_status");
        cJSON *dropped = cJSON_AddObjectToObject(o, "dropped");
        uint64_t status_tot[HTTP_MAX] = {};
        for (EmuRoute r = 0; r < _ROUTE_MAX; r++) {
                cJSON_AddNumberToObject(by_route, route_names[r], (double) s->by_route[r]);
                cJSON_AddNumberToObject(dropped, route_names[r], (double) s->dropped[r]);
                cJSON *rs = cJSON_AddObjectToObject(by_route_status, route_names[r]);
                for (unsigned h = 0; h < HTTP_MAX; h++) {
                        if (!s->by_route_status[r][h])
                                continue;
                        status_tot[h] += s->by_route_status[r][h];
                        snprintf(key, sizeof(key), "%u", h);
                        cJSON_AddNumberToObject(rs, key, (double) s->by_route_status[r][h]);
                }
        }
        for (unsigned h = 0; h < HTTP_MAX; h++)
                if (status_tot[h]) {
                        snprintf(key, sizeof(key), "%u", h);
                        cJSON_AddNumberToObject(by_status, key, (double) status_tot[h]);
                }

        cJSON *codes = cJSON_AddObjectToObject(o, "by_error_code");
        for (size_t i = 0; i < s->n_codes; i++)
                cJSON_AddNumberToObject(codes, s->codes[i].code, (double) s->codes[i].n);

        cJSON *faults = cJSON_AddObjectToObject(o, "faults");
        for (EmuFault f = 0; f < _FAULT_MAX; f++)
                cJSON_AddNumberToObject(faults, fault_names[f], (double) s->faults[f]);

        cJSON *viol = cJSON_AddObjectToObject(o, "protocol_violations");
        uint64_t vtot = 0;
        for (EmuViolation v = 0; v < _VIOLATION_MAX; v++) {
                vtot += s->violations[v];
                cJSON_AddNumberToObject(viol, violation_names[v], (double) s->violations[v]);
        }
        cJSON_AddNumberToObject(viol, "total", (double) vtot);
        cJSON *log = cJSON_AddArrayToObject(o, "recent_violations");
        size_t n = MIN(s->violation_next, (size_t) EMU_VIOLATION_LOG);
        for (size_t k = 0; log && k < n; k++) {
                size_t i = (s->violation_next - n + k) % EMU_VIOLATION_LOG;
                if (s->violation_log[i])
                        cJSON_AddItemToArray(log, cJSON_CreateString(s->violation_log[i]));
        }

        cJSON *injected = cJSON_AddObjectToObject(o, "injected");
        for (size_t i = 0; injected && i < s->n_injected; i++)
                cJSON_AddNumberToObject(injected, s->injected[i].code, (double) s->injected[i].n);

        /* oldest first */
        cJSON *recent = cJSON_AddArrayToObject(o, "recent_requests");
        size_t nr = MIN(s->recent_next, (size_t) EMU_RECENT_REQUESTS);
        for (size_t k = 0; recent && k < nr; k++) {
                const Recent *rec = &s->recent[(s->recent_next - nr + k) % EMU_RECENT_REQUESTS];
                cJSON *item = cJSON_CreateObject();
                if (!item)
                        break;
                cJSON_AddStringToObject(item, "route", route_names[rec->route]);
                cJSON_AddNumberToObject(item, "status", rec->http);
                if (rec->name)
                        cJSON_AddStringToObject(item, "name", rec->name);
                else
                        cJSON_AddNullToObject(item, "name");
                cJSON_AddNumberToObject(item, "mono_ms", (double) rec->mono_ms);
                cJSON_AddItemToArray(recent, item);
        }

        cJSON *creates = cJSON_AddObjectToObject(o, "creates");
        if (creates) {
                cJSON_AddNumberToObject(creates, "requests", (double) s->creates_requests);
                cJSON_AddNumberToObject(creates, "created", (double) s->creates_created);
                cJSON_AddNumberToObject(creates, "duplicates", (double) s->creates_duplicates);
                cJSON *by_name = cJSON_AddObjectToObject(creates, "by_name");
                if (by_name)
                        emu_map_foreach(s->names, add_name, by_name);
        }
        return o;
}
