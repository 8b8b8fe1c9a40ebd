/* The HTTP side: libmicrohttpd glue, routing, fault injection, and the handlers of the
 * ModelArts calls and of the /_emulator control plane.
 *
 * One request, in order (README.md has the same list):
 *   latency (suspend) -> route -> throttle fault (429) -> body size (413) -> auth (401)
 *   -> project checks (403) -> 5xx fault -> handler (a create: JSON body, then
 *   --inject-error, then the rules) -> drop-after-create fault -> slow fault (suspend,
 *   then answer).
 * Everything between "route" and "handler" runs under Emulator.lock, so a request sees
 * one consistent state and the counters are exact. */
#include "emulator.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "macro.h"
#include "sign.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON *, cJSON_Delete);

/* Headers kept for signature verification; a request with more is not a client of ours. */
#define MAX_HEADERS 256
/* Per-connection memory for headers and buffers: an IAM PKI token alone can be ~10 KiB.
 * Not more: libmicrohttpd clears the whole pool between keep-alive requests. */
#define CONNECTION_MEMORY (64 * 1024)
/* Idle keep-alive connections are closed after this long (seconds). */
#define CONNECTION_TIMEOUT_S 120

typedef struct Request {
        char *raw_uri;
        char request_id[33];
        bool started;
        EmuRoute route;
        char *project_id; /* from the path */
        char *instance_id;
        char *body;
        size_t body_len, body_cap;
        bool too_large;
        bool latency_done;
        struct MHD_Response *pending; /* a slow answer waiting for its resume */
        unsigned pending_status;
        char *name; /* the instance's name when known, for recent_requests */
} Request;

typedef struct Reply {
        unsigned http;
        cJSON *json;  /* success body, or */
        char *text;   /* the same already rendered */
        EmuError err; /* or an error */
        bool drop;
        bool retry_after;
        int64_t retry_after_s; /* settings copied under the lock, for the answer */
        int64_t error_field;
        int64_t slow_ms;
} Reply;

static void request_free(Request *r) {
        if (!r)
                return;
        if (r->pending)
                MHD_destroy_response(r->pending);
        free(r->raw_uri);
        free(r->project_id);
        free(r->instance_id);
        free(r->body);
        free(r->name);
        free(r);
}

static bool is_api(EmuRoute r) {
        return r <= ROUTE_ACTION;
}

/* ---- small parsing helpers ---- */

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static char *percent_decode(const char *s, size_t n) {
        char *out = malloc(n + 1), *o = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '%') {
                        int a = i + 1 < n ? unhex(s[i + 1]) : -1, b = i + 2 < n ? unhex(s[i + 2]) : -1;
                        if (a < 0 || b < 0) {
                                free(out);
                                return NULL;
                        }
                        *o++ = (char) (a * 16 + b);
                        i += 2;
                } else
                        *o++ = s[i];
        }
        *o = '\0';
        return out;
}

/* The first value of key in a raw query ("a=1&b=2"), percent-decoded ('+' is a plus,
 * as the signer reads it). 1 found, 0 absent, -EINVAL malformed, -ENOMEM. */
static int query_get(const char *raw, const char *key, char **ret) {
        size_t kn = strlen(key);
        for (const char *p = raw; p && *p;) {
                size_t n = strcspn(p, "&");
                const char *eq = memchr(p, '=', n);
                size_t klen = eq ? (size_t) (eq - p) : n;
                _cleanup_free_ char *k = percent_decode(p, klen);
                if (!k)
                        return -EINVAL;
                if (strlen(k) == kn && memcmp(k, key, kn) == 0) {
                        char *v = eq ? percent_decode(eq + 1, n - klen - 1) : strdup("");
                        if (!v)
                                return -EINVAL;
                        *ret = v;
                        return 1;
                }
                p += n;
                if (*p == '&')
                        p++;
        }
        return 0;
}

static const char *raw_query_of(const Request *r) {
        const char *q = r->raw_uri ? strchr(r->raw_uri, '?') : NULL;
        return q ? q + 1 : "";
}

/* The path part of the raw URI, for messages. */
static char *raw_path_of(const Request *r) {
        if (!r->raw_uri)
                return strdup("");
        return strndup(r->raw_uri, strcspn(r->raw_uri, "?"));
}

/* /v1/{pid}/demanager/instances[/{id}[/action]] and /_emulator/... */
static EmuRoute route_of(const char *url, const char *method, Request *r) {
        if (strncmp(url, "/_emulator/", 11) == 0)
                return ROUTE_EMULATOR;
        if (emu_metadata_path(url))
                return ROUTE_METADATA;
        if (strncmp(url, "/v1/", 4) != 0)
                return ROUTE_UNKNOWN;
        const char *p = url + 4;
        size_t n = strcspn(p, "/");
        if (n == 0)
                return ROUTE_UNKNOWN;
        const char *pid = p;
        size_t pid_n = n;
        p += n;
        if (strncmp(p, "/demanager/instances", 20) != 0)
                return ROUTE_UNKNOWN;
        p += 20;
        EmuRoute route = ROUTE_UNKNOWN;
        const char *id = NULL;
        size_t id_n = 0;
        if (!*p)
                route = streq(method, "POST") ? ROUTE_CREATE : streq(method, "GET") ? ROUTE_LIST : ROUTE_UNKNOWN;
        else if (*p == '/' && p[1]) {
                id = p + 1;
                id_n = strcspn(id, "/");
                const char *rest = id + id_n;
                if (!*rest)
                        route = streq(method, "GET")      ? ROUTE_GET
                                : streq(method, "DELETE") ? ROUTE_DELETE
                                                          : ROUTE_UNKNOWN;
                else if (streq(rest, "/action"))
                        route = streq(method, "POST") ? ROUTE_ACTION : ROUTE_UNKNOWN;
        }
        if (route == ROUTE_UNKNOWN)
                return route;
        r->project_id = strndup(pid, pid_n);
        if (id)
                r->instance_id = strndup(id, id_n);
        if (!r->project_id || (id && !r->instance_id))
                return ROUTE_UNKNOWN;
        return route;
}

static bool content_type_is_json(const char *ct) {
        if (!ct)
                return false;
        while (*ct == ' ' || *ct == '\t')
                ct++;
        if (strncasecmp(ct, "application/json", 16) != 0)
                return false;
        ct += 16;
        while (*ct == ' ' || *ct == '\t')
                ct++;
        return *ct == '\0' || *ct == ';';
}

static bool name_matches_patterns(const char *name, const char *patterns) {
        if (!patterns)
                return false;
        for (const char *p = patterns; *p;) {
                size_t n = strcspn(p, ",");
                _cleanup_free_ char *glob = strndup(p, n);
                if (glob && *glob && fnmatch(glob, name, 0) == 0)
                        return true;
                p += n;
                if (*p == ',')
                        p++;
        }
        return false;
}

/* ---- per-request context ---- */

typedef struct Ctx {
        Emulator *e;
        Request *r;
        struct MHD_Connection *conn;
        const char *url;
        const char *method;
        int64_t now_mono;
        SignHeader headers[MAX_HEADERS];
        size_t n_headers;
} Ctx;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
        (void) kind;
        Ctx *c = cls;
        if (c->n_headers < MAX_HEADERS)
                c->headers[c->n_headers++] = (SignHeader) { .name = key, .value = value };
        return MHD_YES;
}

static const char *header(const Ctx *c, const char *name) {
        return MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, name);
}

static void violation(Ctx *c, EmuViolation v, const char *detail) {
        _cleanup_free_ char *path = raw_path_of(c->r);
        emu_stats_violation(c->e->stats, v, c->method, path, detail);
}

/* A ModelArts error caused by a protocol violation: count it and answer it. */
static void reject(Ctx *c, Reply *rep, EmuViolation v, unsigned http, const char *code, const char *msg) {
        violation(c, v, msg);
        emu_error_set(&rep->err, http, code, "%s", msg);
}

static cJSON *parse_body(Ctx *c, Reply *rep) {
        Request *r = c->r;
        if (!content_type_is_json(header(c, "Content-Type"))) {
                reject(c, rep, VIOLATION_BAD_CONTENT_TYPE, 400, "ModelArts.6332",
                       "Content-Type must be application/json for a request body");
                return NULL;
        }
        const char *end = NULL;
        cJSON *j = NULL;
        /* a NUL inside the body would end cJSON's input early: refuse it */
        if (r->body && strlen(r->body) == r->body_len)
                j = cJSON_ParseWithOpts(r->body, &end, true);
        if (!j)
                reject(c, rep, VIOLATION_MALFORMED_JSON, 400, "ModelArts.6332", "The request body is not valid JSON");
        return j;
}

/* ---- the ModelArts calls ---- */

/* A new instance with an id and its place in the creation order; the caller fills in
 * the rest. Under e->lock. */
static Instance *instance_alloc(Emulator *e) {
        static uint64_t seq; /* under e->lock */
        Instance *inst = calloc(1, sizeof(*inst));
        if (!inst)
                return NULL;
        emu_rng_uuid(&e->rng, inst->id);
        inst->seq = ++seq;
        return inst;
}

static void handle_create(Ctx *c, Reply *rep) {
        Emulator *e = c->e;
        Settings *s = &e->settings;
        _cleanup_(cJSON_Deletep) cJSON *body = parse_body(c, rep);
        if (!body)
                return;
        const cJSON *jname = cJSON_GetObjectItemCaseSensitive(body, "name");
        if (cJSON_IsString(jname) && jname->valuestring) {
                emu_stats_create(e->stats, jname->valuestring, CREATE_ATTEMPT);
                (void) strdup_replace(&c->r->name, jname->valuestring);
                /* the cloud's answers a local stand-in cannot provoke: before the rules,
                 * nothing is created */
                const InjectCode *ic = emu_inject_match(s->inject_error, e->inject_usage, jname->valuestring);
                if (ic) {
                        emu_stats_injected(e->stats, ic->code);
                        emu_error_set(&rep->err, ic->http, ic->code, "%s", ic->message);
                        return;
                }
        }

        CreateRequest *req = NULL;
        ValidateOptions o = {
                .grant_gpu = s->grant_gpu,
                .sold_out = s->sold_out,
                .flavors = s->flavors,
                .profiles = s->profiles,
        };
        int r = emu_validate_create(body, &o, &req, &rep->err);
        if (r == -ENOMEM)
                emu_error_set(&rep->err, 500, "ModelArts.0010", "Out of memory");
        if (r < 0)
                return;
        _cleanup_(emu_create_request_freep) CreateRequest *cr = req;

        if (emu_store_find_name(e->store, cr->name)) {
                emu_stats_create(e->stats, cr->name, CREATE_DUPLICATE);
                emu_error_set(&rep->err, 400, "ModelArts.6301", "Instance name %s already exists", cr->name);
                return;
        }
        if (s->max_instances > 0 && emu_store_count_live(e->store) >= (size_t) s->max_instances) {
                emu_error_set(&rep->err, 400, "ModelArts.6302", "The number of instances reached the limit (%" PRId64 ")",
                              s->max_instances);
                return;
        }

        Instance *inst = instance_alloc(e);
        if (!inst) {
                emu_error_set(&rep->err, 500, "ModelArts.0010", "Out of memory");
                return;
        }
        inst->name = TAKE_PTR(cr->name);
        inst->description = TAKE_PTR(cr->description);
        inst->profile_id = TAKE_PTR(cr->profile_id);
        inst->flavor = TAKE_PTR(cr->flavor);
        inst->workspace_id = TAKE_PTR(cr->workspace_id);
        inst->storage_type = TAKE_PTR(cr->storage_type);
        inst->obs_path = TAKE_PTR(cr->obs_path);
        inst->volume_size = cr->volume_size;
        inst->annotations = TAKE_PTR(cr->annotations);
        inst->failed_create = name_matches_patterns(inst->name, s->fail_pattern);
        emu_instance_set_status(inst, "CREATING", inst->failed_create ? "CREATE_FAILED" : "RUNNING",
                                s->create_delay_ms);
        inst->created_ms = inst->updated_ms;
        emu_instance_refresh(inst, now_monotonic_ms()); /* a zero delay is RUNNING at once */
        if (emu_store_add(e->store, inst) < 0) {
                emu_error_set(&rep->err, 500, "ModelArts.0010", "Out of memory");
                return;
        }
        emu_stats_create(e->stats, inst->name, CREATE_CREATED);
        rep->http = (unsigned) s->create_status;
        rep->json = emu_instance_to_json(inst);

        if (!(s->fault_routes & ROUTE_BIT(ROUTE_CREATE)))
                return;
        bool drop = false;
        if (s->drop_after_create_next > 0) {
                s->drop_after_create_next--;
                drop = true;
        } else
                drop = emu_rng_chance(&e->rng, s->drop_after_create_rate);
        if (drop) {
                emu_stats_fault(e->stats, FAULT_DROP_AFTER_CREATE);
                rep->drop = true;
        }
}

static bool one_of(const char *v, const char *a, const char *b) {
        return streq(v, a) || streq(v, b);
}

static void handle_list(Ctx *c, Reply *rep) {
        const char *raw = raw_query_of(c->r);
        _cleanup_free_ char *de_type = NULL, *offset = NULL, *limit = NULL, *status = NULL, *sortby = NULL,
                            *order = NULL, *provision = NULL, *workspace = NULL, *show_self = NULL;
        if (query_get(raw, "de_type", &de_type) < 0 || query_get(raw, "offset", &offset) < 0 ||
            query_get(raw, "limit", &limit) < 0 || query_get(raw, "status", &status) < 0 ||
            query_get(raw, "sortby", &sortby) < 0 || query_get(raw, "order", &order) < 0 ||
            query_get(raw, "provision_type", &provision) < 0 || query_get(raw, "workspace_id", &workspace) < 0 ||
            query_get(raw, "show_self", &show_self) < 0)
                return reject(c, rep, VIOLATION_BAD_QUERY, 400, "ModelArts.6336", "Malformed query string");
        if (!de_type)
                return reject(c, rep, VIOLATION_MISSING_DE_TYPE, 400, "ModelArts.6335",
                              "Missing required parameter: de_type");
        if (!streq(de_type, "Notebook"))
                return reject(c, rep, VIOLATION_BAD_DE_TYPE, 400, "ModelArts.6336",
                              "Invalid de_type: must be Notebook");
        /* the cloud's defaults: the default workspace only, the caller's own instances only */
        ListQuery q = {
                .status = status,
                .workspace_id = workspace ? workspace : "0",
                .show_self = true,
                .total_count_string = c->e->settings.total_count_string,
        };
        if (show_self && !one_of(show_self, "true", "false"))
                return reject(c, rep, VIOLATION_BAD_QUERY, 400, "ModelArts.6336",
                              "Invalid show_self: must be true or false");
        if (show_self)
                q.show_self = streq(show_self, "true");
        if (offset && parse_int64(offset, 0, INT64_MAX, &q.offset) < 0)
                return reject(c, rep, VIOLATION_BAD_QUERY, 400, "ModelArts.6336",
                              "Invalid offset: must be a non-negative integer");
        if (limit && parse_int64(limit, 0, INT64_MAX, &q.limit) < 0)
                return reject(c, rep, VIOLATION_BAD_QUERY, 400, "ModelArts.6336",
                              "Invalid limit: must be a non-negative integer");
        if (sortby && !one_of(sortby, "name", "creation_timestamp"))
                return reject(c, rep, VIOLATION_BAD_QUERY, 400, "ModelArts.6336",
                              "Invalid sortby: must be name or creation_timestamp");
        if (order && !one_of(order, "asc", "desc"))
                return reject(c, rep, VIOLATION_BAD_QUERY, 400, "ModelArts.6336", "Invalid order: must be asc or desc");
        if (status && !emu_status_is_known(status))
                return reject(c, rep, VIOLATION_BAD_QUERY, 400, "ModelArts.6336", "Invalid status");
        if (provision && !streq(provision, "Docker"))
                return reject(c, rep, VIOLATION_BAD_QUERY, 400, "ModelArts.6336",
                              "Invalid provision_type: must be Docker");
        q.sort_by_time = sortby && streq(sortby, "creation_timestamp");
        q.descending = order && streq(order, "desc");
        rep->text = emu_store_list_text(c->e->store, &q, c->now_mono);
        rep->http = 200;
}

static Instance *find_or_6309(Ctx *c, Reply *rep) {
        Instance *inst = emu_store_find_id(c->e->store, c->r->instance_id);
        if (!inst) {
                _cleanup_free_ char *q = quote_for_log(c->r->instance_id);
                emu_error_set(&rep->err, 400, "ModelArts.6309", "Instance %s does not exist", strempty(q));
                return NULL;
        }
        emu_instance_refresh(inst, c->now_mono);
        (void) strdup_replace(&c->r->name, inst->name);
        return inst;
}

static void handle_get(Ctx *c, Reply *rep) {
        Instance *inst = find_or_6309(c, rep);
        if (!inst)
                return;
        size_t len;
        const char *t = emu_instance_text(inst, &len);
        rep->text = t ? strndup(t, len) : NULL;
        rep->http = 200;
}

/* The cloud deletes only an instance that does not run: stopped, failed, broken (or
 * already DELETED). Anything on its way up or down must be stopped first. */
static bool deletable(const char *status) {
        static const char *const ok[] = { "STOPPED",     "CREATE_FAILED", "START_FAILED",
                                          "RESIZE_FAILED", "UNAVAILABLE", "DELETED" };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++)
                if (streq(status, ok[i]))
                        return true;
        return false;
}

static void handle_delete(Ctx *c, Reply *rep) {
        Instance *inst = find_or_6309(c, rep);
        if (!inst)
                return;
        if (!deletable(inst->status))
                return emu_error_set(&rep->err, 400, "ModelArts.6304",
                                     "Instance is %s: stop the instance before deleting it", inst->status);
        rep->json = cJSON_CreateObject();
        cJSON_AddStringToObject(rep->json, "instance_id", inst->id);
        emu_store_remove(c->e->store, inst);
        rep->http = 200;
}

static void handle_action(Ctx *c, Reply *rep) {
        _cleanup_(cJSON_Deletep) cJSON *body = parse_body(c, rep);
        if (!body)
                return;
        if (!cJSON_IsObject(body))
                return emu_error_set(&rep->err, 400, "ModelArts.6332", "The request body must be a JSON object");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(body, "action");
        if (!a || cJSON_IsNull(a))
                return emu_error_set(&rep->err, 400, "ModelArts.6335", "Missing required parameter: action");
        if (!cJSON_IsString(a) || !a->valuestring)
                return emu_error_set(&rep->err, 400, "ModelArts.6332", "Invalid type of parameter action: must be a string");
        bool start = streq(a->valuestring, "start"), stop = streq(a->valuestring, "stop");
        if (!start && !stop)
                return emu_error_set(&rep->err, 400, "ModelArts.6336", "Invalid action: must be start or stop");
        Instance *inst = find_or_6309(c, rep);
        if (!inst)
                return;
        const char *prev = inst->status;
        if (stop && streq(prev, "RUNNING"))
                emu_instance_set_status(inst, "STOPPING", "STOPPED", c->e->settings.action_delay_ms);
        else if (start && (streq(prev, "STOPPED") || streq(prev, "START_FAILED")))
                emu_instance_set_status(inst, "STARTING", "RUNNING", c->e->settings.action_delay_ms);
        else if (start && streq(prev, "RUNNING"))
                return emu_error_set(&rep->err, 400, "ModelArts.6305", "Instance is already running");
        else if (start && streq(prev, "STARTING"))
                return emu_error_set(&rep->err, 400, "ModelArts.6306", "Instance is starting");
        else if (stop && streq(prev, "STOPPED"))
                return emu_error_set(&rep->err, 400, "ModelArts.6307", "Instance is already stopped");
        else if (stop && streq(prev, "STOPPING"))
                return emu_error_set(&rep->err, 400, "ModelArts.6308", "Instance is stopping");
        else
                return emu_error_set(&rep->err, 400, "ModelArts.6357", "Instance is %s: cannot %s it now", prev,
                                     a->valuestring);
        rep->json = cJSON_CreateObject();
        cJSON_AddStringToObject(rep->json, "current_status", inst->status);
        cJSON_AddStringToObject(rep->json, "previous_state", prev);
        rep->http = 200;
}

/* ---- the control plane ---- */

static void control_error(Reply *rep, unsigned http, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void control_error(Reply *rep, unsigned http, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = xvasprintf(fmt, ap);
        va_end(ap);
        rep->http = http;
        rep->json = cJSON_CreateObject();
        cJSON_AddStringToObject(rep->json, "error", msg ? msg : "error");
}

static Instance *control_find(Ctx *c, Reply *rep) {
        const char *raw = raw_query_of(c->r);
        _cleanup_free_ char *name = NULL, *id = NULL;
        if (query_get(raw, "name", &name) < 0 || query_get(raw, "id", &id) < 0) {
                control_error(rep, 400, "malformed query");
                return NULL;
        }
        Instance *inst = id ? emu_store_find_id(c->e->store, id) : name ? emu_store_find_name(c->e->store, name) : NULL;
        if (!id && !name)
                control_error(rep, 400, "name= or id= required");
        else if (!inst)
                control_error(rep, 404, "no such instance");
        else
                emu_instance_refresh(inst, c->now_mono);
        return inst;
}

static void control_reset(Emulator *e) {
        emu_store_clear(e->store);
        emu_stats_clear(e->stats);
        emu_inject_usage_clear(e->inject_usage);
        e->auth = (AuthState) {};
        e->settings.fail_5xx_next = e->settings.throttle_next = e->settings.drop_after_create_next = 0;
        e->settings.deny_next = e->settings.refuse_next = 0;
}

/* Apply every name=value of the query, all or nothing. */
static void control_config(Ctx *c, Reply *rep) {
        const char *raw = raw_query_of(c->r);
        bool rearm = false;
        for (int pass = 0; pass < 2; pass++) {
                Settings scratch;
                emu_settings_init(&scratch);
                Settings *target = pass == 0 ? &scratch : &c->e->settings;
                for (const char *p = raw; *p;) {
                        size_t n = strcspn(p, "&");
                        const char *eq = memchr(p, '=', n);
                        size_t kn = eq ? (size_t) (eq - p) : n;
                        _cleanup_free_ char *k = percent_decode(p, kn);
                        _cleanup_free_ char *v = eq ? percent_decode(eq + 1, n - kn - 1) : strdup("true");
                        _cleanup_free_ char *err = NULL;
                        if (!k || !v) {
                                emu_settings_done(&scratch);
                                return control_error(rep, 400, "malformed query");
                        }
                        if (*k && emu_settings_set(target, k, v, true, &err) < 0) {
                                emu_settings_done(&scratch);
                                return control_error(rep, 400, "%s", err ? err : "bad setting");
                        }
                        if (streq(k, "inject_error") || streq(k, "inject-error"))
                                rearm = true;
                        p += n;
                        if (*p == '&')
                                p++;
                }
                emu_settings_done(&scratch);
        }
        /* a list given again starts its COUNTs afresh */
        if (rearm)
                emu_inject_usage_clear(c->e->inject_usage);
        rep->http = 200;
        rep->json = emu_settings_to_json(&c->e->settings);
}

static void control_status(Ctx *c, Reply *rep) {
        Instance *inst = control_find(c, rep);
        if (!inst)
                return;
        const char *raw = raw_query_of(c->r);
        _cleanup_free_ char *status = NULL, *then = NULL, *after = NULL;
        if (query_get(raw, "status", &status) < 0 || query_get(raw, "then", &then) < 0 ||
            query_get(raw, "after_ms", &after) < 0)
                return control_error(rep, 400, "malformed query");
        int64_t after_ms = 0;
        if (!status || !emu_status_is_known(status) || (then && !emu_status_is_known(then)) ||
            (then && streq(then, "DELETED")) || (after && parse_int64(after, 0, INT64_MAX / 4, &after_ms) < 0))
                return control_error(rep, 400, "status= (and optional then=, after_ms=) must be known statuses");
        if (streq(inst->status, "DELETED"))
                return control_error(rep, 409, "instance is DELETED");
        const char *st = emu_status_intern(status), *nx = emu_status_intern(then);
        if (!st)
                return control_error(rep, 400, "unknown status");
        if (streq(st, "DELETED"))
                emu_store_mark_deleted(c->e->store, inst);
        else
                emu_instance_set_status(inst, st, nx, after_ms);
        emu_instance_refresh(inst, now_monotonic_ms());
        rep->http = 200;
        rep->json = emu_instance_to_json(inst);
}

/* An instance someone made (us, or another IAM user: owner=other) without a create:
 * not counted in stats.creates. */
static void control_seed(Ctx *c, Reply *rep) {
        Emulator *e = c->e;
        const char *raw = raw_query_of(c->r);
        _cleanup_free_ char *name = NULL, *ws = NULL, *owner = NULL, *status = NULL, *flavor = NULL,
                            *profile = NULL, *id = NULL;
        if (query_get(raw, "name", &name) < 0 || query_get(raw, "workspace_id", &ws) < 0 ||
            query_get(raw, "owner", &owner) < 0 || query_get(raw, "status", &status) < 0 ||
            query_get(raw, "flavor", &flavor) < 0 || query_get(raw, "profile_id", &profile) < 0 ||
            query_get(raw, "id", &id) < 0)
                return control_error(rep, 400, "malformed query");
        if (!name || !emu_name_ok(name))
                return control_error(rep, 400, "name= required: 1 to 64 of A-Z a-z 0-9 - _");
        /* id=: an instance restored as it was (a test restarting the emulator keeps the
         * cloud's state): the UUID shape the API uses, unique */
        if (id && (strlen(id) != 36 || strspn(id, "0123456789abcdef-") != 36))
                return control_error(rep, 400, "id= must be a lower-case UUID (36 characters)");
        if (id && emu_store_find_id(e->store, id))
                return control_error(rep, 409, "an instance has id %s", id);
        if (owner && !one_of(owner, "self", "other"))
                return control_error(rep, 400, "owner= must be self or other");
        const char *st = emu_status_intern(status ? status : "RUNNING");
        if (!st || streq(st, "DELETED"))
                return control_error(rep, 400, "status= must be a known status other than DELETED");
        if ((ws && !*ws) || (flavor && !*flavor) || (profile && !*profile))
                return control_error(rep, 400, "workspace_id=, flavor= and profile_id= must not be empty");
        if (emu_store_find_name(e->store, name))
                return control_error(rep, 409, "a live instance is named %s", name);

        Instance *inst = instance_alloc(e);
        if (!inst)
                return control_error(rep, 500, "out of memory");
        if (id)
                memcpy(inst->id, id, sizeof(inst->id));   /* 36 characters and the NUL, checked above */
        inst->name = TAKE_PTR(name);
        inst->description = strdup("");
        inst->profile_id = profile ? TAKE_PTR(profile) : strdup("Python3");
        inst->flavor = flavor ? TAKE_PTR(flavor) : strdup("modelarts.vm.cpu.2u");
        inst->workspace_id = ws ? TAKE_PTR(ws) : strdup("0");
        inst->storage_type = strdup("evs");
        inst->volume_size = 5;
        inst->other_owner = owner && streq(owner, "other");
        emu_instance_set_status(inst, st, NULL, 0);
        inst->created_ms = inst->updated_ms;
        if (!inst->description || !inst->profile_id || !inst->flavor || !inst->workspace_id || !inst->storage_type) {
                emu_instance_free(inst);
                return control_error(rep, 500, "out of memory");
        }
        cJSON *j = emu_instance_to_json(inst);
        if (emu_store_add(e->store, inst) < 0) {
                cJSON_Delete(j);
                return control_error(rep, 500, "out of memory");
        }
        rep->http = 200;
        rep->json = j;
}

/* The key pair rotated in IAM: the new AK/SK is the only one accepted from now on, and
 * the old AK is unknown (as a deleted access key is), with the failure count and lock
 * of the old key gone with it. */
static void control_credentials(Ctx *c, Reply *rep) {
        Settings *s = &c->e->settings;
        const char *raw = raw_query_of(c->r);
        _cleanup_secret_ char *ak = NULL, *sk = NULL;
        if (query_get(raw, "ak", &ak) < 0 || query_get(raw, "sk", &sk) < 0)
                return control_error(rep, 400, "malformed query");
        if (!ak || !*ak || !sk || !*sk)
                return control_error(rep, 400, "ak= and sk= required, not empty");
        free_secret(s->ak);
        free_secret(s->sk);
        s->ak = TAKE_PTR(ak);
        s->sk = TAKE_PTR(sk);
        c->e->auth = (AuthState) {};
        rep->json = cJSON_CreateObject();
        cJSON_AddBoolToObject(rep->json, "rotated", true);
        rep->http = 200;
}

static void handle_control(Ctx *c, Reply *rep) {
        Emulator *e = c->e;
        const char *what = c->url + strlen("/_emulator/");
        bool get = streq(c->method, "GET"), post = streq(c->method, "POST");
        if (get && streq(what, "stats")) {
                rep->json = emu_stats_to_json(e->stats);
                cJSON *inst = cJSON_AddObjectToObject(rep->json, "instances");
                if (inst) {
                        cJSON_AddItemToObject(inst, "by_status", emu_store_status_counts(e->store, c->now_mono));
                        cJSON_AddNumberToObject(inst, "live", (double) emu_store_count_live(e->store));
                }
                cJSON *auth = cJSON_AddObjectToObject(rep->json, "auth");
                if (auth) {
                        cJSON_AddBoolToObject(auth, "ak_locked", e->auth.locked_until > c->now_mono);
                        cJSON_AddNumberToObject(auth, "failures_in_a_row", (double) e->auth.failures);
                }
                cJSON_AddItemToObject(rep->json, "metadata", emu_metadata_stats(&e->settings, &e->meta, now_realtime_ms()));
                rep->http = 200;
        } else if (get && streq(what, "metadata-served")) {
                rep->json = emu_metadata_served(&e->meta);
                rep->http = rep->json ? 200 : 500;
        } else if (post && streq(what, "reset")) {
                control_reset(e);
                rep->json = cJSON_CreateObject();
                cJSON_AddBoolToObject(rep->json, "reset", true);
                rep->http = 200;
        } else if (get && streq(what, "config")) {
                rep->json = emu_settings_to_json(&e->settings);
                rep->http = 200;
        } else if (post && streq(what, "config")) {
                control_config(c, rep);
        } else if (post && streq(what, "delete")) {
                Instance *inst = control_find(c, rep);
                if (!inst)
                        return;
                rep->json = cJSON_CreateObject();
                cJSON_AddStringToObject(rep->json, "deleted", inst->id);
                emu_store_remove(e->store, inst);
                rep->http = 200;
        } else if (post && streq(what, "status")) {
                control_status(c, rep);
        } else if (post && streq(what, "seed")) {
                control_seed(c, rep);
        } else if (post && streq(what, "credentials")) {
                control_credentials(c, rep);
        } else if (get && streq(what, "health")) {
                rep->json = cJSON_CreateObject();
                cJSON_AddBoolToObject(rep->json, "ok", true);
                rep->http = 200;
        } else
                control_error(rep, 404, "unknown control endpoint %s %s", c->method, c->url);
}

/* ---- one request ---- */

static void faulted(Ctx *c, Reply *rep, EmuFault f) {
        emu_stats_fault(c->e->stats, f);
        if (f == FAULT_THROTTLE) {
                /* the gateway's own words, a per-minute policy; Retry-After only on request */
                emu_error_set(&rep->err, 429, "APIG.0308",
                              "The throttling threshold has been reached: policy user over ratelimit,limit:5,time:1 minute");
                rep->retry_after = c->e->settings.retry_after_header;
        } else
                emu_error_set(&rep->err, 500, "ModelArts.0010", "Internal error (injected)");
}

static bool draw(Rng *rng, int64_t *next, double rate) {
        if (*next > 0) {
                (*next)--;
                return true;
        }
        return emu_rng_chance(rng, rate);
}

static void process_api(Ctx *c, Reply *rep) {
        Emulator *e = c->e;
        Settings *s = &e->settings;
        Request *r = c->r;
        bool faults = s->fault_routes & ROUTE_BIT(r->route);

        if (faults && draw(&e->rng, &s->throttle_next, s->throttle_rate))
                return faulted(c, rep, FAULT_THROTTLE);
        if (r->too_large)
                return reject(c, rep, VIOLATION_BODY_TOO_LARGE, 413, "APIG.0201", "Request entity too large");

        MHD_get_connection_values(c->conn, MHD_HEADER_KIND, collect_header, c);
        AuthRequest ar = {
                .method = c->method,
                .path = c->url,
                .raw_query = raw_query_of(r),
                .body = r->body,
                .body_len = r->body_len,
                .headers = c->headers,
                .n_headers = c->n_headers,
        };
        if (emu_auth_check_meta(s, &e->auth, &e->meta, e->stats, &ar, c->now_mono, now_realtime_ms() / 1000,
                                &rep->err) < 0)
                return;

        if (s->project_id && !streq(r->project_id, s->project_id))
                return reject(c, rep, VIOLATION_PROJECT_MISMATCH, 403, "ModelArts.0210",
                              "The project ID in the URL does not match the credentials");
        const char *xpid = header(c, "X-Project-Id");
        if (!xpid)
                violation(c, VIOLATION_MISSING_X_PROJECT_ID, "no X-Project-Id header");
        else if (!streq(xpid, r->project_id))
                return reject(c, rep, VIOLATION_PROJECT_MISMATCH, 403, "ModelArts.0210",
                              "X-Project-Id does not match the project ID in the URL");

        /* the contract: "Send the wire query in exactly this encoding" */
        const char *raw = raw_query_of(r);
        if (*raw) {
                _cleanup_free_ char *canon = NULL;
                if (sign_canonical_query(raw, &canon) < 0 || !streq(canon, raw))
                        violation(c, VIOLATION_QUERY_NOT_CANONICAL, raw);
        }

        if (faults && draw(&e->rng, &s->fail_5xx_next, s->fail_5xx_rate))
                return faulted(c, rep, FAULT_5XX);
        /* refusals no retry fixes, for any route (inject_error is for creates only) */
        if (faults && draw(&e->rng, &s->deny_next, 0))
                return emu_error_set(&rep->err, 403, "ModelArts.0108",
                                     "Authorization failed: an IAM policy denies this operation (injected)");
        if (faults && draw(&e->rng, &s->refuse_next, 0))
                return emu_error_set(&rep->err, 400, "ModelArts.9999", "Refused (injected)");

        switch (r->route) {
        case ROUTE_CREATE:
                handle_create(c, rep);
                break;
        case ROUTE_LIST:
                handle_list(c, rep);
                break;
        case ROUTE_GET:
                handle_get(c, rep);
                break;
        case ROUTE_DELETE:
                handle_delete(c, rep);
                break;
        case ROUTE_ACTION:
                handle_action(c, rep);
                break;
        default:
                break;
        }
        if (!rep->drop && faults && s->slow_ms > 0 && emu_rng_chance(&e->rng, s->slow_rate)) {
                emu_stats_fault(e->stats, FAULT_SLOW);
                rep->slow_ms = s->slow_ms;
        }
}

static void process(Ctx *c, Reply *rep) {
        Emulator *e = c->e;
        pthread_mutex_lock(&e->lock);
        c->now_mono = now_monotonic_ms();
        emu_stats_request(e->stats, c->r->route);
        if (is_api(c->r->route))
                process_api(c, rep);
        else if (c->r->route == ROUTE_EMULATOR)
                handle_control(c, rep);
        else if (c->r->route == ROUTE_METADATA) {
                emu_metadata_answer(&e->settings, &e->meta, c->method, c->url, header(c, "X-Metadata-Token-Ttl-Seconds"),
                                    header(c, "X-Metadata-Token"), now_realtime_ms(), &rep->http, &rep->text);
                if (!rep->text)
                        emu_error_set(&rep->err, 500, "ModelArts.0010", "Out of memory");
        }
        else
                reject(c, rep, VIOLATION_UNKNOWN_ROUTE, 404, "APIG.0101",
                       "The API does not exist or has not been published in the environment");
        if (!rep->err.http && !rep->json && !rep->text) /* a handler ran out of memory */
                emu_error_set(&rep->err, 500, "ModelArts.0010", "Out of memory");
        if (rep->err.http)
                rep->http = rep->err.http;
        rep->retry_after_s = e->settings.retry_after;
        rep->error_field = e->settings.error_field;
        if (rep->drop)
                emu_stats_dropped(e->stats, c->r->route);
        else
                emu_stats_response(e->stats, c->r->route, rep->http, rep->err.http ? rep->err.code : NULL);
        if (e->settings.log) {
                _cleanup_free_ char *q = quote_for_log(c->r->raw_uri ? c->r->raw_uri : "");
                if (rep->drop)
                        fprintf(stderr, "%s %s %s -> dropped\n", c->r->request_id, c->method, strempty(q));
                else
                        fprintf(stderr, "%s %s %s -> %u %s\n", c->r->request_id, c->method, strempty(q), rep->http,
                                rep->err.http ? rep->err.code : "");
        }
        pthread_mutex_unlock(&e->lock);
}

static struct MHD_Response *make_response(const Request *r, Reply *rep) {
        if (rep->err.http) {
                free(rep->text);
                rep->text = NULL;
                cJSON_Delete(rep->json);
                rep->json = cJSON_CreateObject();
                if (!rep->json)
                        return NULL;
                cJSON_AddStringToObject(rep->json, "error_code", rep->err.code);
                /* ModelArts says error_message (every v1 sample), newer services and the
                 * gateway error_msg */
                bool msg = rep->err.gateway || rep->error_field == ERROR_FIELD_MSG;
                cJSON_AddStringToObject(rep->json, msg ? "error_msg" : "error_message",
                                        rep->err.msg ? rep->err.msg : "");
                if (rep->err.gateway)
                        cJSON_AddStringToObject(rep->json, "request_id", r->request_id);
        }
        char *text = rep->text ? TAKE_PTR(rep->text) : cJSON_PrintUnformatted(rep->json);
        if (!text)
                return NULL;
        struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(text);
                return NULL;
        }
        MHD_add_response_header(resp, "Content-Type", "application/json;charset=UTF-8");
        MHD_add_response_header(resp, "X-Request-Id", r->request_id);
        if (rep->retry_after) {
                char ra[24];
                snprintf(ra, sizeof(ra), "%" PRId64, rep->retry_after_s);
                MHD_add_response_header(resp, "Retry-After", ra);
        }
        return resp;
}

/* recent_requests: an API request answered now (http 0: dropped). The name: what a
 * handler saw, else a create body's name (a 429 comes before the body is read), else
 * the instance's of the path's id. */
static void record_answer(Emulator *e, Request *r, unsigned http) {
        if (!is_api(r->route))
                return;
        _cleanup_free_ char *body_name = NULL;
        if (!r->name && r->route == ROUTE_CREATE && r->body && strlen(r->body) == r->body_len) {
                _cleanup_(cJSON_Deletep) cJSON *j = cJSON_Parse(r->body);
                const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "name");
                if (cJSON_IsString(n) && n->valuestring)
                        body_name = strdup(n->valuestring);
        }
        pthread_mutex_lock(&e->lock);
        const char *name = r->name ? r->name : body_name;
        if (!name && r->instance_id) {
                Instance *inst = emu_store_find_id(e->store, r->instance_id);
                name = inst ? inst->name : NULL;
        }
        emu_stats_recent(e->stats, r->route, http, name, now_monotonic_ms());
        pthread_mutex_unlock(&e->lock);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **req_cls) {
        (void) version;
        Emulator *e = cls;
        Request *r = *req_cls;
        if (!r)
                return MHD_NO; /* the URI callback ran out of memory */

        if (!r->started) {
                r->started = true;
                r->route = route_of(url, method, r);
                return MHD_YES;
        }
        if (*upload_size > 0) {
                size_t n = *upload_size;
                *upload_size = 0;
                if (r->too_large || r->body_len + n > EMU_MAX_BODY) {
                        r->too_large = true; /* keep reading, answer 413 at the end */
                        return MHD_YES;
                }
                if (r->body_len + n + 1 > r->body_cap) {
                        size_t cap = MAX(r->body_cap * 2, r->body_len + n + 1);
                        char *b = realloc(r->body, cap);
                        if (!b)
                                return MHD_NO;
                        r->body = b;
                        r->body_cap = cap;
                }
                memcpy(r->body + r->body_len, upload, n);
                r->body_len += n;
                r->body[r->body_len] = '\0';
                return MHD_YES;
        }
        if (r->pending) {
                record_answer(e, r, r->pending_status);
                enum MHD_Result ret = MHD_queue_response(conn, r->pending_status, r->pending);
                MHD_destroy_response(r->pending);
                r->pending = NULL;
                return ret;
        }
        if (is_api(r->route) && !r->latency_done) {
                r->latency_done = true;
                pthread_mutex_lock(&e->lock);
                int64_t latency = e->settings.latency_ms;
                if (latency > 0)
                        emu_stats_fault(e->stats, FAULT_LATENCY);
                pthread_mutex_unlock(&e->lock);
                if (latency > 0 && emu_delayer_suspend(e->delayer, conn, latency))
                        return MHD_YES;
        }

        Ctx *c = calloc(1, sizeof(*c)); /* MAX_HEADERS entries: not for the stack */
        if (!c)
                return MHD_NO;
        *c = (Ctx) { .e = e, .r = r, .conn = conn, .url = url, .method = method };
        Reply rep = {};
        process(c, &rep);
        free(c);
        if (rep.drop) {
                free(rep.text);
                cJSON_Delete(rep.json);
                emu_error_done(&rep.err);
                record_answer(e, r, 0);
                return MHD_NO; /* the instance exists; the client never hears of it */
        }
        struct MHD_Response *resp = make_response(r, &rep);
        free(rep.text);
        cJSON_Delete(rep.json);
        emu_error_done(&rep.err);
        if (!resp)
                return MHD_NO;
        if (rep.slow_ms > 0 && emu_delayer_suspend(e->delayer, conn, rep.slow_ms)) {
                r->pending = resp;
                r->pending_status = rep.http;
                return MHD_YES;
        }
        record_answer(e, r, rep.http);
        enum MHD_Result ret = MHD_queue_response(conn, rep.http, resp);
        MHD_destroy_response(resp);
        return ret;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
        (void) conn;
        Emulator *e = cls;
        Request *r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->raw_uri = strdup(uri ? uri : "");
        uint64_t n = atomic_fetch_add(&e->request_counter, 1);
        uint64_t a = emu_mix64(e->id_seed + 2 * n), b = emu_mix64(e->id_seed + 2 * n + 1);
        snprintf(r->request_id, sizeof(r->request_id), "%016" PRIx64 "%016" PRIx64, a, b);
        return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe) {
        (void) cls;
        (void) conn;
        (void) toe;
        request_free(*req_cls);
        *req_cls = NULL;
}

/* "127.0.0.1:PORT", "[::1]:PORT", "localhost:PORT"; loopback only: this server has
 * no TLS and, without --ak/--token, no authentication. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, char **ret_error) {
        _cleanup_free_ char *host = NULL;
        const char *port;
        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                if (!end || end[1] != ':')
                        goto bad;
                host = strndup(s + 1, (size_t) (end - s - 1));
                port = end + 2;
        } else {
                const char *colon = strrchr(s, ':');
                if (!colon)
                        goto bad;
                host = strndup(s, (size_t) (colon - s));
                port = colon + 1;
        }
        if (!host)
                return -ENOMEM;
        int64_t p;
        if (parse_int64(port, 0, 65535, &p) < 0)
                goto bad;
        memset(ss, 0, sizeof(*ss));
        struct sockaddr_in *in4 = (struct sockaddr_in *) ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ss;
        if (streq(host, "localhost"))
                inet_pton(AF_INET, "127.0.0.1", &in4->sin_addr);
        else if (inet_pton(AF_INET, host, &in4->sin_addr) != 1) {
                if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
                        goto bad;
                if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) {
                        *ret_error = xasprintf("refusing to listen on %s: loopback addresses only", s);
                        return -EPERM;
                }
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t) p);
                *len = sizeof(*in6);
                return 0;
        }
        if ((ntohl(in4->sin_addr.s_addr) >> 24) != 127) {
                *ret_error = xasprintf("refusing to listen on %s: loopback addresses only", s);
                return -EPERM;
        }
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t) p);
        *len = sizeof(*in4);
        return 0;
bad:
        *ret_error = xasprintf("--listen wants HOST:PORT (e.g. 127.0.0.1:0 or [::1]:8080), not \"%s\"", s);
        return -EINVAL;
}

int emu_server_start(Emulator *e, unsigned *ret_port, char **ret_error) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        int r = parse_listen(e->settings.listen ? e->settings.listen : "127.0.0.1:0", &ss, &len, ret_error);
        if (r < 0)
                return r;
        unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
        if (ss.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        if (e->settings.log)
                flags |= MHD_USE_ERROR_LOG;
        unsigned threads = (unsigned) e->settings.threads;
        e->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_access, e,
                                  MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
                                  MHD_OPTION_URI_LOG_CALLBACK, on_uri, e,
                                  MHD_OPTION_NOTIFY_COMPLETED, on_completed, e,
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONNECTION_MEMORY,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) CONNECTION_TIMEOUT_S,
                                  MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                                  MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0u,
                                  MHD_OPTION_END);
        if (!e->mhd) {
                *ret_error = xasprintf("cannot listen on %s (address in use?)",
                                       e->settings.listen ? e->settings.listen : "127.0.0.1:0");
                return -EADDRINUSE;
        }
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(e->mhd, MHD_DAEMON_INFO_LISTEN_FD);
        struct sockaddr_storage bound;
        socklen_t blen = sizeof(bound);
        if (!info || getsockname(info->listen_fd, (struct sockaddr *) &bound, &blen) < 0) {
                *ret_error = xasprintf("cannot read the bound port: %m");
                emu_server_stop(e);
                return -errno;
        }
        *ret_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &bound)->sin6_port
                                                      : ((struct sockaddr_in *) &bound)->sin_port);
        return 0;
}

void emu_server_stop(Emulator *e) {
        /* first the delayer: MHD_stop_daemon must not find a suspended connection */
        emu_delayer_stop(e->delayer);
        if (e->mhd)
                MHD_stop_daemon(e->mhd);
        e->mhd = NULL;
}
