/* The ModelArts DevEnviron v1 API on top of lib/http.h: request
 * building (cJSON), authentication (AK/SK signing, X-Auth-Token, IAM password flow),
 * defensive response parsing into RemoteInstance, and error classification the
 * engine switches on.
 *
 * Every call returns 0 (queued) or a negative errno immediately; the result arrives
 * through the callback, always from the event loop, exactly once.
 *
 * Client-wide policies (the engine reads them, it does not have to re-implement them):
 *  - after a 429, ALL new requests are held: for Retry-After when the gateway sends one,
 *    and never less than an exponential backoff over consecutive 429s (2-5 s, doubling,
 *    up to API_THROTTLE_MAX_MS), which any other answer resets;
 *  - after an AUTH failure nothing more is sent: every call fails fast with
 *    API_CLASS_AUTH until api_client_reset_auth() (5 bad signatures lock the AK);
 *  - until the server has accepted the credentials once (after creation or a reset), one
 *    request at a time, so wrong credentials cost one bad signature, not a batch;
 *  - callbacks may queue new calls or call api_client_cancel_all(), never
 *    api_client_free(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "instance.h"
#include "macro.h"
#include "spec.h"

typedef struct ApiClient ApiClient;
typedef struct Credentials Credentials;

/* What to do next; the engine switches on it. */
typedef enum ApiClass {
        API_CLASS_OK,
        API_CLASS_ALREADY_EXISTS,   /* ModelArts.6301: list and adopt */
        API_CLASS_NOT_FOUND,        /* ModelArts.6309 (a 400!), or 404 */
        API_CLASS_PERMANENT,        /* validation, quota, flavor permission, unknown 4xx:
                                     * don't retry until the manifest/config changes */
        API_CLASS_AUTH,             /* 401/403: credentials or project; client stops sending */
        API_CLASS_FORBIDDEN,        /* 403 ModelArts.0108/0112: authenticated, but an IAM policy
                                     * denies this operation: permanent for this call only,
                                     * every other request goes on */
        API_CLASS_ACCOUNT_FROZEN,   /* ModelArts.6326: the account is frozen (arrears): no
                                     * create can succeed until it is paid */
        API_CLASS_THROTTLED,        /* 429: retry after .retry_after_ms (client holds all) */
        API_CLASS_TRANSIENT,        /* 5xx, 6333/6355/6357/6360, connect failures, timeouts
                                     * before sending: retry with backoff, not before
                                     * .retry_after_ms */
        API_CLASS_UNKNOWN_OUTCOME,  /* a create that may have been delivered (timeout or
                                     * connection lost after sending): list before retrying */
        _API_CLASS_MAX,
} ApiClass;

const char *api_class_to_string(ApiClass c);   /* "ok", "already-exists", ... */

typedef enum ApiCall {
        API_CALL_CREATE,
        API_CALL_LIST,
        API_CALL_GET,
        API_CALL_DELETE,
        API_CALL_START,
        API_CALL_STOP,
        API_CALL_IAM_TOKEN,
        API_CALL_METADATA_TOKEN,   /* ECS metadata: PUT the session token (internal) */
        API_CALL_METADATA_KEYS,    /* ECS metadata: GET securitykey (internal) */
        _API_CALL_MAX,
} ApiCall;

const char *api_call_to_string(ApiCall c);     /* "create", "list", ... */

/* The outcome of one call. Strings are owned by the client and valid only during the
 * callback; NULL when unknown. */
typedef struct ApiResult {
        ApiCall call;
        ApiClass class;
        int error;               /* 0 when class is OK; else negative errno (kept beside the
                                  * API's own code): -EEXIST, -ENOENT, -EINVAL, -EDQUOT,
                                  * -EACCES, -EBUSY (throttled), -EAGAIN, -ETIMEDOUT,
                                  * -ECONNREFUSED, -ECONNRESET, -ECANCELED, -EBADMSG ... */
        long http_status;        /* 0 when no response */
        const char *error_code;  /* "ModelArts.6301", "APIG.0301", ... */
        const char *error_msg;   /* the API's message (error_msg or error_message) */
        const char *request_id;  /* body request_id, else the X-Request-Id header */
        const char *message;     /* one line for the journal/user, always set when !OK:
                                  * says what failed (for AUTH: which credential kind) */
        int64_t retry_after_ms;  /* THROTTLED: the client-wide hold; TRANSIENT: what the server
                                  * asked (Retry-After, or the wait its error code names) */
        bool sent;               /* the request may have reached the server */
} ApiResult;

typedef void (*api_instance_cb)(ApiClient *c, const ApiResult *r, const RemoteInstance *instance,
                                void *userdata);   /* instance is NULL unless OK */
typedef void (*api_list_cb)(ApiClient *c, const ApiResult *r, const RemoteInstanceList *list,
                            void *userdata);        /* list is NULL unless OK: every page */
typedef void (*api_done_cb)(ApiClient *c, const ApiResult *r, void *userdata);

typedef struct ApiClientOptions {
        const char *endpoint;          /* https://modelarts.{region}.myhuaweicloud.com */
        const char *project_id;
        const Credentials *credentials;  /* borrowed: must outlive the client; NULL = send
                                          * no authentication (an emulator without auth) */
        unsigned concurrency;          /* 0 = CONFIG_DEFAULT_CONCURRENCY */
        int64_t connect_timeout_ms;    /* 0 = CONFIG_DEFAULT_CONNECT_TIMEOUT_MS */
        int64_t request_timeout_ms;    /* 0 = CONFIG_DEFAULT_REQUEST_TIMEOUT_MS */
        const char *ca_file;           /* NULL = system store */
        const char *iam_endpoint;      /* PASSWORD credentials: https://iam.{region}... */
        const char *proxy;             /* HttpClientOptions.proxy: NULL = the environment's */
        const char *no_proxy;          /* HttpClientOptions.no_proxy */
} ApiClientOptions;

/* -EINVAL with *ret_message (optional, caller frees) for a bad endpoint/project/URL
 * policy (plain http:// to a non-loopback host). */
int api_client_new(sd_event *e, const ApiClientOptions *o, ApiClient **ret, char **ret_message);
/* Drops everything without callbacks; call api_client_cancel_all() first if needed. */
ApiClient *api_client_free(ApiClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ApiClient *, api_client_free);

/* Every HTTP exchange that ends (each page of a listing, the IAM token request too):
 * its call and HTTP status (0: no answer). For counting (metrics_file:); the observer
 * must not call back into the client. NULL removes it. */
typedef void (*api_observer_cb)(ApiClient *c, ApiCall call, long http_status, void *userdata);
void api_client_set_observer(ApiClient *c, api_observer_cb cb, void *userdata);

/* ---- calls ---- */
int api_create(ApiClient *c, const NotebookSpec *spec, api_instance_cb cb, void *userdata);
/* All pages of one workspace (NULL = "0"): a listing shows only the workspace it names.
 * Items that do not say their workspace are given this one. */
int api_list(ApiClient *c, const char *workspace_id, api_list_cb cb, void *userdata);
int api_get(ApiClient *c, const char *instance_id, api_instance_cb cb, void *userdata);
int api_delete(ApiClient *c, const char *instance_id, api_done_cb cb, void *userdata);
int api_start(ApiClient *c, const char *instance_id, api_done_cb cb, void *userdata);
int api_stop(ApiClient *c, const char *instance_id, api_done_cb cb, void *userdata);

/* ---- state the engine reads ---- */
/* Calls accepted and not yet answered (queued, held or on the wire). */
unsigned api_client_pending(const ApiClient *c);
/* An AUTH failure happened: the client sends nothing until reset. *ret_message (optional)
 * is the message of that failure (borrowed, valid until reset/free). */
bool api_client_auth_failed(const ApiClient *c, const char **ret_message);
/* The last answer's Date header put the local clock further off the server's than the
 * gateway allows (api_clock_offset_too_large): true, and *ret_offset_ms (optional) is the
 * offset (positive: the local clock is ahead). False when it was close, or no answer
 * carried a Date yet. */
bool api_client_clock_skewed(const ApiClient *c, int64_t *ret_offset_ms);
/* Credentials were fixed (reload): send again. */
void api_client_reset_auth(ApiClient *c);
/* While throttled: the monotonic time (ms, util.h now_monotonic_ms) before which nothing
 * is sent; 0 when not throttled. */
int64_t api_client_throttled_until_ms(const ApiClient *c);
/* Shutdown: every pending call's callback runs with -ECANCELED (a create already on the
 * wire reports UNKNOWN_OUTCOME, anything else TRANSIENT). */
void api_client_cancel_all(ApiClient *c);
/* Stop starting work (SIGTERM): calls not yet on the wire fail with -ECANCELED and
 * sent=false; what is on the wire finishes normally. Both cancel functions run the
 * callbacks synchronously, before they return. */
void api_client_cancel_queued(ApiClient *c);

/* ---- pure parts, exposed for tests and the emulator's conformance checks ---- */

/* Classify a finished exchange. transport_error: 0 or the HttpResponse error; sent: it
 * may have reached the server; error_code: body error_code or NULL. Writes the class and
 * the negative errno. */
ApiClass api_classify(ApiCall call, int transport_error, bool sent, long http_status,
                      const char *error_code, int *ret_errno);

/* The least wait an error code asks for before the same call is tried again (6355:
 * "wait a minute"; 6333: "wait several minutes"), 0 when it names none. */
int64_t api_error_min_retry_ms(const char *error_code);

/* The client-wide hold after the streak-th 429 in a row (1-based), without Retry-After:
 * a uniform draw in [2 s, 5 s] doubled per further 429, capped at API_THROTTLE_MAX_MS. */
int64_t api_throttle_backoff_ms(unsigned streak, uint32_t random_value);

/* How far the local clock is from a server's, from its Date header (RFC 9110 HTTP-date,
 * one-second resolution): *ret_offset_ms = local_realtime_ms - the server's time, so
 * positive means the local clock is ahead. -EINVAL when date is NULL or not a date. */
int api_clock_offset_ms(const char *date, int64_t local_realtime_ms, int64_t *ret_offset_ms);

/* The offset is past API_CLOCK_SKEW_REPORT_MS either way: enough to explain a refused
 * signature (the gateway allows 15 minutes). */
bool api_clock_offset_too_large(int64_t offset_ms);

/* Parsed error body: every string owned (free with api_error_done). */
typedef struct ApiError {
        char *error_code;
        char *error_msg;
        char *request_id;
} ApiError;
void api_error_done(ApiError *e);
/* Accepts any JSON (or none): fields that are absent or not strings stay NULL. */
void api_parse_error(const char *body, size_t len, ApiError *ret);

/* A 2xx body that is an error answer (an object with error_code and without what the
 * call answers with: an instance id for create/get, an instances array for list). */
bool api_body_is_error(ApiCall call, const char *body, size_t len);

/* One instance object / a list page. -EBADMSG when the body is not the expected JSON
 * shape (not an object / instances not an array); missing fields are tolerated. */
int api_parse_instance(const char *body, size_t len, RemoteInstance *ret);
int api_parse_list_page(const char *body, size_t len, RemoteInstanceList *list,
                        int64_t *ret_total_count, size_t *ret_page_items);

/* Retry-After: delta-seconds or an HTTP date, relative to now_realtime_ms. -EINVAL when
 * unparsable. Result clamped to [0, API_MAX_RETRY_AFTER_MS]. */
int api_parse_retry_after(const char *value, int64_t now_realtime_ms, int64_t *ret_ms);
