/* modelarts-emulator: a local, in-memory implementation of the ModelArts DevEnviron
 * (v1) API as Huawei documents it, for tests, the demo and benchmarks.
 *
 * Written from the contract on its own: nothing here calls lib/'s manifest, spec or
 * validator code, so a bug in the client's rules is caught by these rules and the other
 * way round. The only lib/ code used is the signer (pinned by the published vectors) and
 * the small util/macro helpers.
 *
 * Threads: libmicrohttpd runs a pool of epoll threads; every piece of shared state
 * (settings, instances, stats, the RNG, the AK lock, the injection counts) is behind
 * Emulator.lock. Delays
 * (latency, slow responses) never block a pool thread: the connection is suspended and a
 * timer thread resumes it (delay.c). All non-static symbols start with emu_ so they can
 * never collide with a lib/ symbol pulled from libnotebookd.a. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "macro.h"

/* ---- routes ---- */
typedef enum EmuRoute {
        ROUTE_CREATE,
        ROUTE_LIST,
        ROUTE_GET,
        ROUTE_DELETE,
        ROUTE_ACTION,
        ROUTE_EMULATOR, /* /_emulator/...: control plane, never faulted, never authenticated */
        ROUTE_UNKNOWN,
        ROUTE_METADATA, /* the ECS metadata service (metadata.c): never faulted by the API faults */
        _ROUTE_MAX,
} EmuRoute;

const char *emu_route_name(EmuRoute r);
/* Bit for a route in Settings.fault_routes. */
#define ROUTE_BIT(r) (1u << (r))
#define ROUTE_API_BITS                                                                        \
        (ROUTE_BIT(ROUTE_CREATE) | ROUTE_BIT(ROUTE_LIST) | ROUTE_BIT(ROUTE_GET) |           \
         ROUTE_BIT(ROUTE_DELETE) | ROUTE_BIT(ROUTE_ACTION))

/* ---- protocol violations: requests a correct client never sends ---- */
typedef enum EmuViolation {
        VIOLATION_MISSING_AUTH,
        VIOLATION_MALFORMED_AUTHORIZATION,
        VIOLATION_UNKNOWN_AK,
        VIOLATION_BAD_SIGNATURE,
        VIOLATION_AK_LOCKED,
        VIOLATION_BAD_SDK_DATE,
        VIOLATION_CLOCK_SKEW,
        VIOLATION_BAD_TOKEN,
        VIOLATION_BAD_SECURITY_TOKEN,
        VIOLATION_PROJECT_MISMATCH,
        VIOLATION_MISSING_X_PROJECT_ID,
        VIOLATION_UNSIGNED_X_PROJECT_ID,
        VIOLATION_QUERY_NOT_CANONICAL,
        VIOLATION_MISSING_DE_TYPE,
        VIOLATION_BAD_DE_TYPE,
        VIOLATION_BAD_QUERY,
        VIOLATION_MALFORMED_JSON,
        VIOLATION_BAD_CONTENT_TYPE,
        VIOLATION_BODY_TOO_LARGE,
        VIOLATION_UNKNOWN_ROUTE,
        _VIOLATION_MAX,
} EmuViolation;

const char *emu_violation_name(EmuViolation v);

/* ---- injected faults ---- */
typedef enum EmuFault {
        FAULT_THROTTLE,
        FAULT_5XX,
        FAULT_DROP_AFTER_CREATE,
        FAULT_SLOW,
        FAULT_LATENCY,
        _FAULT_MAX,
} EmuFault;

const char *emu_fault_name(EmuFault f);

/* ---- settings: command-line flags, most also changeable at runtime ---- */
typedef struct Settings {
        /* startup only */
        char *listen;
        char *port_file;
        char *project_id;     /* NULL: any project id in the path is accepted */
        char *ak;             /* secret-ish: never printed */
        char *sk;             /* secret: never printed, wiped on exit */
        char *token;          /* secret */
        char *security_token; /* secret */
        int64_t threads;
        uint64_t seed;
        bool seed_set;
        bool log;

        /* runtime (POST /_emulator/config) */
        bool grant_gpu;
        int64_t error_field; /* ERROR_FIELD_*: the message key of ModelArts (not gateway) errors */
        bool total_count_string; /* list answers send total_count as "12" */
        char *fail_pattern; /* comma-separated fnmatch globs: matching names -> CREATE_FAILED */
        char *sold_out;     /* comma-separated flavors answered with ModelArts.6329 */
        char *flavors;      /* the region's flavors, "NAME=KIND,..."; NULL: the default table */
        char *profiles;     /* the region's profiles, likewise */
        char *inject_error; /* "CODE:GLOB[:COUNT],...": creates of matching names get CODE */
        int64_t max_instances; /* 0 = no limit */
        int64_t create_delay_ms;
        int64_t action_delay_ms;
        int64_t create_status; /* HTTP status of a successful create */
        int64_t lock_after;    /* bad signatures in a row that lock the AK */
        int64_t lock_ms;
        int64_t latency_ms;
        int64_t slow_ms;
        double slow_rate;
        double fail_5xx_rate;
        double throttle_rate;
        int64_t retry_after; /* seconds, the Retry-After of a 429 */
        bool retry_after_header; /* a 429 carries Retry-After at all (the cloud's usually don't) */
        double drop_after_create_rate;
        int64_t fail_5xx_next; /* the next N faultable requests get the fault, then rates */
        int64_t throttle_next;
        int64_t drop_after_create_next;
        int64_t deny_next;     /* the next N faultable requests: 403 ModelArts.0108 (a policy) */
        int64_t refuse_next;   /* the next N faultable requests: 400 with an unknown code */
        unsigned fault_routes; /* ROUTE_BIT set */

        /* the ECS metadata service (metadata.c) */
        int64_t metadata_period_ms;  /* startup: a new key generation this often; 0 = no service */
        int64_t metadata_overlap_ms; /* startup: a generation outlives its successor's issue by this */
        bool metadata_no_agency;     /* runtime: the ECS has no agency: securitykey answers 404 */
        int64_t metadata_fail_next;  /* runtime: the next N metadata requests answer 503 */
} Settings;

enum {
        ERROR_FIELD_MESSAGE, /* "error_message", as in every v1 sample */
        ERROR_FIELD_MSG,     /* "error_msg", as newer services write */
};

void emu_settings_init(Settings *s);
void emu_settings_done(Settings *s);
/* Apply one "name=value" (name with '-' or '_'). runtime_only refuses startup-only
 * settings. On failure returns negative errno and an explanation in *ret_error. */
int emu_settings_set(Settings *s, const char *name, const char *value, bool runtime_only, char **ret_error);
/* Parse argv (--name value, --name=value, bare --flag for booleans). Returns 0, 1 for
 * --help/--version (already printed), or negative errno (message printed to stderr). */
int emu_settings_parse_argv(Settings *s, int argc, char **argv);
/* The settings as JSON, secrets replaced by whether they are set. */
cJSON *emu_settings_to_json(const Settings *s);

/* ---- seeded randomness (reproducible with --seed) ---- */
typedef struct Rng {
        uint64_t s[4];
} Rng;

void emu_rng_seed(Rng *r, uint64_t seed);
uint64_t emu_rng_next(Rng *r);
/* true with probability p (p <= 0: never and no draw; p >= 1: always and no draw). */
bool emu_rng_chance(Rng *r, double p);
/* A UUID-shaped (v4 layout) lowercase id, 37 bytes with the NUL. */
void emu_rng_uuid(Rng *r, char out[37]);
/* splitmix64 step: mixes a counter into an unpredictable-looking 64-bit value. */
uint64_t emu_mix64(uint64_t x);

/* ---- string-keyed hash map (keys borrowed from the values) ---- */
typedef struct EmuMap EmuMap;
int emu_map_new(EmuMap **ret);
EmuMap *emu_map_free(EmuMap *m);
void *emu_map_get(const EmuMap *m, const char *key);
/* Insert or replace. */
int emu_map_put(EmuMap *m, const char *key, void *value);
void *emu_map_remove(EmuMap *m, const char *key);
size_t emu_map_size(const EmuMap *m);
void emu_map_clear(EmuMap *m);
/* Visit every entry; order unspecified. */
void emu_map_foreach(const EmuMap *m, void (*fn)(const char *key, void *value, void *userdata), void *userdata);

/* ---- API errors ---- */
typedef struct EmuError {
        unsigned http;    /* 0: no error */
        const char *code; /* "ModelArts.6335", "APIG.0301", static */
        char *msg;        /* owned */
        bool gateway;     /* APIG body: adds request_id */
} EmuError;

void emu_error_set(EmuError *e, unsigned http, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
void emu_error_done(EmuError *e);

/* ---- the region's catalog (catalog.c) ---- */
typedef enum EmuKind {
        KIND_CPU,
        KIND_GPU,
        KIND_ASCEND,
        KIND_ANY, /* runs on every kind of flavor */
        _KIND_MAX,
} EmuKind;

const char *emu_kind_name(EmuKind k);
/* A "NAME=KIND,..." list is well-formed; else -EINVAL and why in *ret_error. */
int emu_catalog_check(const char *list, char **ret_error);
/* Is name in list (NULL: the default table of profiles or flavors)? Its kind in *ret. */
bool emu_catalog_lookup(const char *list, bool profiles, const char *name, EmuKind *ret);
/* The default table as a "NAME=KIND,..." list (malloc'd; NULL on ENOMEM). */
char *emu_catalog_default(bool profiles);

/* ---- injected create errors (inject.c) ---- */
typedef struct InjectCode {
        const char *code; /* "ModelArts.6355" */
        unsigned http;
        const char *message;
} InjectCode;

/* The supported code, or NULL. */
const InjectCode *emu_inject_code(const char *code);
/* A "CODE:GLOB[:COUNT],..." list is well-formed with supported codes; else -EINVAL. */
int emu_inject_check(const char *list, char **ret_error);
/* The per-name usage of COUNT-limited items: a map of counters. */
typedef struct InjectUsage InjectUsage;
int emu_inject_usage_new(InjectUsage **ret);
InjectUsage *emu_inject_usage_free(InjectUsage *u);
void emu_inject_usage_clear(InjectUsage *u);
/* The first item of list matching name that has uses left (and counts the use), or
 * NULL: no error to inject. */
const InjectCode *emu_inject_match(const char *list, InjectUsage *u, const char *name);

/* ---- create validation (validate.c) ---- */
typedef struct CreateRequest {
        char *name;
        char *description;
        char *profile_id;
        char *flavor;
        char *workspace_id;
        char *storage_type; /* "obs" | "evs" */
        char *obs_path;     /* obs only */
        int64_t volume_size; /* evs only */
        cJSON *annotations; /* spec.annotations (object) or NULL */
} CreateRequest;

typedef struct ValidateOptions {
        bool grant_gpu;
        const char *sold_out; /* comma-separated flavors */
        const char *flavors;  /* catalog lists, NULL: the default table */
        const char *profiles;
} ValidateOptions;

CreateRequest *emu_create_request_free(CreateRequest *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(CreateRequest *, emu_create_request_free);
/* The create body rules, first failing rule wins (order in README.md). On success *ret
 * is the normalised request (defaults filled in); on a rule failure returns -EINVAL and
 * fills err (400 + ModelArts code). */
int emu_validate_create(const cJSON *body, const ValidateOptions *o, CreateRequest **ret, EmuError *err);
/* The create rule for names: 1-64 of A-Z a-z 0-9 - _. */
bool emu_name_ok(const char *s);
/* Exposed for the stats and the status endpoint. */
bool emu_status_is_known(const char *status);
/* The static copy of a known status string (instances store statuses as those), or NULL. */
const char *emu_status_intern(const char *status);

/* ---- instances (store.c) ---- */
typedef struct Instance {
        char id[37];
        char *name;
        char *description;
        char *profile_id;
        char *flavor;
        char *workspace_id;
        char *storage_type;
        char *obs_path;
        int64_t volume_size;
        cJSON *annotations;
        uint64_t seq; /* creation order, the last sort key */
        int64_t created_ms; /* wall clock, shown */
        int64_t updated_ms;
        const char *status;      /* static string */
        const char *next_status; /* pending lazy transition, or NULL */
        int64_t next_at_mono;
        int64_t next_at_real;
        bool failed_create; /* show spec.failed_reasons */
        bool other_owner;   /* made by another IAM user (seeded): hidden by show_self */
        char *text;         /* cached rendering; NULL after any change (emu_instance_changed) */
        size_t text_len;
} Instance;

typedef struct Store Store;
int emu_store_new(Store **ret);
Store *emu_store_free(Store *s);
void emu_store_clear(Store *s);
Instance *emu_store_find_id(Store *s, const char *id);
/* Non-deleted instance with this name. */
Instance *emu_store_find_name(Store *s, const char *name);
size_t emu_store_count_live(const Store *s);
/* Takes ownership of inst (also on failure). */
int emu_store_add(Store *s, Instance *inst);
void emu_store_remove(Store *s, Instance *inst);
/* Mark DELETED (kept visible, name freed for re-use). */
void emu_store_mark_deleted(Store *s, Instance *inst);
Instance *emu_instance_free(Instance *inst);
/* Apply a due lazy transition. */
void emu_instance_refresh(Instance *inst, int64_t now_mono);
void emu_instance_set_status(Instance *inst, const char *status, const char *next, int64_t delay_ms);
cJSON *emu_instance_to_json(const Instance *inst);
/* The instance rendered (cached until it changes); NULL on ENOMEM. Owned by inst. */
const char *emu_instance_text(Instance *inst, size_t *ret_len);
/* Call after changing a rendered field by hand. */
void emu_instance_changed(Instance *inst);

typedef struct ListQuery {
        const char *status; /* NULL = any */
        const char *workspace_id; /* never NULL: the cloud's default is "0" */
        bool show_self;           /* only the caller's own instances */
        bool total_count_string;
        bool sort_by_time;
        bool descending;
        int64_t offset;
        int64_t limit; /* 0 = all */
} ListQuery;

/* {"total_count": N, "instances": [...]} as text; refreshes statuses. Caller frees. */
char *emu_store_list_text(Store *s, const ListQuery *q, int64_t now_mono);
/* Count instances by status, into a JSON object. */
cJSON *emu_store_status_counts(Store *s, int64_t now_mono);

/* ---- stats (stats.c) ---- */
typedef struct Stats Stats;
int emu_stats_new(Stats **ret);
Stats *emu_stats_free(Stats *s);
void emu_stats_clear(Stats *s);
void emu_stats_request(Stats *s, EmuRoute r);
void emu_stats_response(Stats *s, EmuRoute r, unsigned http, const char *error_code);
void emu_stats_dropped(Stats *s, EmuRoute r);
void emu_stats_violation(Stats *s, EmuViolation v, const char *method, const char *path, const char *detail);
void emu_stats_fault(Stats *s, EmuFault f);
typedef enum CreateOutcome {
        CREATE_ATTEMPT,   /* a create that reached the rules (auth passed, not faulted) */
        CREATE_CREATED,   /* an instance was created */
        CREATE_DUPLICATE, /* answered ModelArts.6301 */
} CreateOutcome;
void emu_stats_create(Stats *s, const char *name, CreateOutcome o);
void emu_stats_injected(Stats *s, const char *code);
/* An API request was answered (http 0: dropped without an answer) at mono_ms. */
void emu_stats_recent(Stats *s, EmuRoute r, unsigned http, const char *name, int64_t mono_ms);
cJSON *emu_stats_to_json(const Stats *s);

/* ---- auth (auth.c) ---- */
typedef struct AuthState {
        int64_t failures;      /* bad signatures in a row for the configured AK */
        int64_t locked_until;  /* monotonic ms; 0 = not locked */
} AuthState;

typedef struct AuthRequest {
        const char *method;
        const char *path;      /* decoded, as libmicrohttpd hands it (the signer encodes) */
        const char *raw_query; /* as on the wire, without '?'; NULL or "" = none */
        const void *body;
        size_t body_len;
        const struct SignHeader *headers; /* every header received */
        size_t n_headers;
} AuthRequest;

/* Case-insensitive lookup in req->headers; NULL if absent. */
const char *emu_auth_header(const AuthRequest *req, const char *name);

/* Verify the request's credentials against the settings. Returns 0 when accepted (or
 * when no credential is configured; then nothing is checked), -EACCES with err (401)
 * otherwise. Records its protocol violations in stats (also the non-fatal one: an
 * X-Project-Id sent but not signed). Called with Emulator.lock held: it updates the
 * AK lock. */
int emu_auth_check(const Settings *settings, AuthState *st, Stats *stats, const AuthRequest *req,
                   int64_t now_mono, int64_t now_real_s, EmuError *err);
/* The same, also accepting the metadata service's temporary keys (meta may be NULL). */
typedef struct MetaState MetaState;
int emu_auth_check_meta(const Settings *settings, AuthState *st, struct MetaState *meta, Stats *stats,
                        const AuthRequest *req, int64_t now_mono, int64_t now_real_s, EmuError *err);

/* ---- the ECS metadata service (metadata.c) ----
 * Temporary keys come in generations: generation g is issued at epoch + g * period and
 * expires at epoch + (g + 1) * period + overlap, so two generations are valid during
 * each overlap, as the cloud's are for 10 minutes of every hour. Keys are derived from a
 * secret and g, so nothing but counters is stored. Under Emulator.lock like the rest. */
#define EMU_METADATA_SESSIONS 8
struct MetaState {
        int64_t epoch_ms;       /* realtime: generation 0's issue */
        uint64_t secret;        /* keys and session tokens derive from it */
        uint64_t session_counter;
        char sessions[EMU_METADATA_SESSIONS][33];     /* the last session tokens issued */
        int64_t session_expires_ms[EMU_METADATA_SESSIONS];
        /* what tests assert on (/_emulator/stats "metadata") */
        int64_t token_requests, securitykey_requests, failed_injected, keys_served;
        int64_t failed_at_ms[8];  /* realtime of the first injected failures: the client's backoff */
        int64_t signed_ok;        /* API requests signed with metadata keys and accepted */
        int64_t distinct_aks;     /* generations that signed an accepted request */
        int64_t last_gen_used;    /* -1: none yet */
        int64_t expired_rejected; /* 401: a generation past its expiry */
        /* the generations whose keys were handed out, in order (the session tokens need
         * no list: they derive from the secret and the counter) */
        int64_t served_gens[256];
        size_t n_served_gens;
        bool served_gens_overflow;
};

void emu_metadata_init(MetaState *m, uint64_t seed, int64_t now_real_ms);
/* The metadata routes: PUT /meta-data/latest/api/token, GET /openstack/latest/securitykey. */
bool emu_metadata_path(const char *url);
/* Answer one metadata request: *ret_http and a body in *ret_text (caller frees; a JSON
 * object or the bare session token). */
void emu_metadata_answer(Settings *s, MetaState *m, const char *method, const char *url,
                         const char *ttl_header, const char *token_header, int64_t now_real_ms, unsigned *ret_http,
                         char **ret_text);
/* An AK the metadata service made: 1 and its SK and security token (static buffers of
 * the caller, EMU_METADATA_KEY_MAX each) when valid at now_real_ms; 0 when the AK is not
 * one of them; -EKEYEXPIRED (and *ret_expired_at, the expiry in seconds) when it was one
 * but expired; -ENOENT for one not issued yet. */
#define EMU_METADATA_KEY_MAX 96
int emu_metadata_lookup(const Settings *s, MetaState *m, const char *ak, int64_t now_real_ms, char *ret_sk,
                        char *ret_security_token, int64_t *ret_expired_at);
/* An accepted request signed with this metadata AK: counted for the stats. */
void emu_metadata_note_used(MetaState *m, const char *ak);
cJSON *emu_metadata_stats(const Settings *s, const MetaState *m, int64_t now_real_ms);
/* Every secret the service handed out (GET /_emulator/metadata-served), for a test to
 * look for in what the client left behind: {"complete": false when the list of
 * generations overflowed, "session_tokens": [...], "keys": [{"access", "secret",
 * "securitytoken"}...]}. */
cJSON *emu_metadata_served(const MetaState *m);

/* ---- delayed responses (delay.c) ---- */
struct MHD_Connection;
typedef struct Delayer Delayer;
int emu_delayer_new(Delayer **ret);
/* Suspend the connection (call from the access handler) and resume it after ms.
 * false once stopping: then the caller answers without the delay. */
bool emu_delayer_suspend(Delayer *d, struct MHD_Connection *c, int64_t ms);
/* Resume everything now, refuse new suspensions, join the thread. Call before
 * MHD_stop_daemon (suspended connections must not exist then). */
void emu_delayer_stop(Delayer *d);
Delayer *emu_delayer_free(Delayer *d);

/* ---- the emulator ---- */
typedef struct Emulator {
        pthread_mutex_t lock;
        Settings settings;
        Store *store;
        Stats *stats;
        Rng rng;
        AuthState auth;
        MetaState meta;
        InjectUsage *inject_usage;
        Delayer *delayer;
        struct MHD_Daemon *mhd;
        uint64_t id_seed;               /* request ids: mix(id_seed + counter) */
        atomic_uint_fast64_t request_counter;
        int64_t started_mono;
} Emulator;

/* server.c: start listening per settings; *ret_port is the bound port. */
int emu_server_start(Emulator *e, unsigned *ret_port, char **ret_error);
void emu_server_stop(Emulator *e);

/* A body larger than this is refused (413) before it is parsed: a create body is a few
 * hundred bytes, annotations included. */
#define EMU_MAX_BODY (1024 * 1024)
/* Remembered protocol-violation details in the stats (a ring; counts are exact). */
#define EMU_VIOLATION_LOG 32
/* Remembered API requests in the stats (recent_requests): enough for a test to see the
 * gaps around a run of 429s. */
#define EMU_RECENT_REQUESTS 64
