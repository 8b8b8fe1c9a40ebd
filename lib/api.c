/* The ModelArts API client: calls queued as operations, sent over lib/http.c when the
 * client-wide policies allow, answered through callbacks from the event loop.
 *
 * Why the client keeps its own queue instead of leaning on http.c's: a request is
 * signed the moment it goes on the wire (X-Sdk-Date must be fresh: the gateway allows
 * 15 minutes of skew, and a Retry-After or a long queue can exceed a stale date's
 * budget), a 429 must hold every request not yet sent, an auth failure must stop them
 * all, and an IAM token (or the ECS metadata service's keys) must be in hand before any
 * of them leaves.
 *
 * Invariants:
 *  - every accepted operation is in exactly one of `waiting` (FIFO) or `wire`;
 *  - user callbacks run only from the loop (defer source, timer, HTTP completion),
 *    never from inside api_create() & co; dispatch() is the only sender;
 *  - an operation is unlinked before its callback runs, so a callback may queue new
 *    calls or cancel all. */
#include "api.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "credentials.h"
#include "http.h"
#include "limits.h"
#include "metadata.h"
#include "sign.h"
#include "util.h"

#define API_MAX_QUERY_PARAMS 8

typedef struct ApiOp ApiOp;
struct ApiOp {
        ApiClient *client;
        ApiCall call;
        bool internal;          /* a credential fetch (IAM token, metadata): no user callback */
        int64_t signed_expires_ms;  /* METADATA: the expiry of the keys that signed it */
        uint64_t seq;

        char *method;
        char *path;             /* below the endpoint's base path, decoded */
        char *keys[API_MAX_QUERY_PARAMS];
        char *values[API_MAX_QUERY_PARAMS];
        size_t n_params;
        char *body;
        size_t body_len;

        union {
                api_instance_cb instance;
                api_list_cb list;
                api_done_cb done;
        } cb;
        void *userdata;

        /* list: every page gathered so far, of this workspace */
        RemoteInstanceList list;
        int64_t offset;
        char *workspace_id;
        /* A listing whose first page gave total_count fetches the other pages at once, each
         * an op of its own pointing at the listing (page_of), which waits in
         * ApiClient.gathering until pages_out reaches 0. A page's failure answers the
         * listing at once (answered); its other pages are dropped or run out. */
        ApiOp *page_of;
        unsigned pages_out;
        bool answered;

        uint64_t http_id;
        ApiOp *prev, *next;
};

typedef struct OpList {
        ApiOp *head, *tail;
        unsigned n;
} OpList;

struct ApiClient {
        sd_event *event;
        HttpClient *http;
        sd_event_source *defer;      /* dispatch soon */
        sd_event_source *release;    /* dispatch when the throttle ends */

        char *origin;                /* scheme://host[:port] */
        char *host;                  /* signed Host: host plus ":port" only if not default */
        char *base_path;             /* endpoint path without trailing '/', "" for none */
        char *project_id;
        const Credentials *credentials;
        char *iam_url;               /* {iam}/v3/auth/tokens, PASSWORD only */
        unsigned concurrency;

        OpList waiting, wire;
        OpList gathering;            /* listings waiting for their pages */
        unsigned n_user;             /* user operations accepted and unanswered */
        uint64_t next_seq;
        bool cancelling;

        int64_t throttled_until_ms;  /* monotonic */
        unsigned throttle_streak;    /* 429s in a row: the backoff doubles with each */
        bool auth_verified;          /* the server has accepted our credentials once */
        bool auth_failed;
        char *auth_message;
        api_observer_cb observer;    /* api_client_set_observer() */
        void *observer_userdata;
        bool clock_skewed;           /* the last Date header: see api_client_clock_skewed() */
        int64_t clock_offset_ms;

        /* IAM password flow */
        char *iam_token;             /* secret */
        int64_t iam_token_expires_ms;    /* realtime */
        /* The credential fetch, shared by the IAM token and the metadata keys: one at a
         * time, and none before this (monotonic) after a failure. */
        int64_t iam_retry_after_ms;
        bool iam_fetching;

        /* ECS metadata keys (CREDENTIALS_METADATA, lib/metadata.h) */
        char *meta_origin;               /* the metadata endpoint, no trailing '/' */
        MetadataKeys *meta_keys;         /* secrets in protected memory; NULL: none yet */
        char *meta_session;              /* secret: the X-Metadata-Token; NULL: none */
        bool meta_session_unsupported;   /* the service answered the PUT 404/405 */
        int64_t meta_session_expires_ms; /* realtime */
        int64_t meta_renew_at_ms;        /* realtime: fetch new keys from then on */
        unsigned meta_failures;          /* fetches failed in a row: the backoff grows */
        bool meta_session_renewed;       /* this fetch already replaced a refused session */
        char *meta_last_error;           /* why the last fetch failed (no secrets) */
};

/* ---- the v1 (DevEnviron "old version") routes: every path lives here ---- */

#define V1_COLLECTION "/v1/%s/demanager/instances"

static char *v1_collection_path(const ApiClient *c) {
        return xasprintf(V1_COLLECTION, c->project_id);
}

static char *v1_instance_path(const ApiClient *c, const char *id, const char *suffix) {
        return xasprintf(V1_COLLECTION "/%s%s", c->project_id, id, strempty(suffix));
}

/* ---- op lists ---- */

static void ops_append(OpList *l, ApiOp *op) {
        op->prev = l->tail;
        op->next = NULL;
        if (l->tail)
                l->tail->next = op;
        else
                l->head = op;
        l->tail = op;
        l->n++;
}

static void ops_prepend(OpList *l, ApiOp *op) {
        op->prev = NULL;
        op->next = l->head;
        if (l->head)
                l->head->prev = op;
        else
                l->tail = op;
        l->head = op;
        l->n++;
}

static void ops_remove(OpList *l, ApiOp *op) {
        if (op->prev)
                op->prev->next = op->next;
        else
                l->head = op->next;
        if (op->next)
                op->next->prev = op->prev;
        else
                l->tail = op->prev;
        op->prev = op->next = NULL;
        l->n--;
}

static ApiOp *op_free(ApiOp *op) {
        if (!op)
                return NULL;
        free(op->method);
        free(op->path);
        for (size_t i = 0; i < op->n_params; i++) {
                free(op->keys[i]);
                free(op->values[i]);
        }
        if (op->body) {
                /* The IAM request carries the password. */
                explicit_bzero(op->body, op->body_len);
                free(op->body);
        }
        remote_instance_list_clear(&op->list);
        free(op->workspace_id);
        free(op);
        return NULL;
}

static int op_add_param(ApiOp *op, const char *key, const char *value) {
        if (op->n_params >= API_MAX_QUERY_PARAMS)
                return -E2BIG;
        char *k = strdup(key), *v = strdup(value);
        if (!k || !v) {
                free(k);
                free(v);
                return -ENOMEM;
        }
        op->keys[op->n_params] = k;
        op->values[op->n_params] = v;
        op->n_params++;
        return 0;
}

static int op_set_param(ApiOp *op, const char *key, const char *value) {
        for (size_t i = 0; i < op->n_params; i++)
                if (streq(op->keys[i], key)) {
                        char *v = strdup(value);
                        if (!v)
                                return -ENOMEM;
                        free(op->values[i]);
                        op->values[i] = v;
                        return 0;
                }
        return op_add_param(op, key, value);
}

/* ---- results ---- */

/* Server text goes to logs: no control characters (a crafted message must not forge
 * log lines), and never a credential echoed back. */
static void scrub(const ApiClient *c, char *s) {
        if (!s)
                return;
        for (char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = ' ';
        const Credentials *k = c->credentials;
        const MetadataKeys *mk = c->meta_keys;
        const char *secrets[] = { k ? k->ak : NULL,        k ? k->sk : NULL,       k ? k->security_token : NULL,
                                  k ? k->token : NULL,     k ? k->password : NULL, c->iam_token,
                                  mk ? mk->ak : NULL,      mk ? mk->sk : NULL,     mk ? mk->security_token : NULL,
                                  c->meta_session };
        for (size_t i = 0; i < ELEMENTSOF(secrets); i++) {
                if (!secrets[i] || strlen(secrets[i]) < 4)
                        continue;
                size_t n = strlen(secrets[i]);
                for (char *p = strstr(s, secrets[i]); p; p = strstr(p + n, secrets[i]))
                        memset(p, '*', n);
        }
}

static const char *kind_string(const ApiClient *c) {
        return c->credentials ? credentials_kind_to_string(c->credentials) : "no";
}

static void page_finished(ApiClient *c, ApiOp *page, const ApiResult *r);

static void deliver(ApiClient *c, ApiOp *op, const ApiResult *r, const RemoteInstance *instance) {
        if (op->page_of) {
                page_finished(c, op, r);
                return;
        }
        if (op->internal)
                return;
        c->n_user--;
        switch (op->call) {
        case API_CALL_CREATE:
        case API_CALL_GET:
                if (op->cb.instance)
                        op->cb.instance(c, r, r->class == API_CLASS_OK ? instance : NULL, op->userdata);
                break;
        case API_CALL_LIST:
                /* A listing shows one workspace: an item that does not say so is in it. */
                for (size_t i = 0; r->class == API_CLASS_OK && i < op->list.n; i++)
                        if (!op->list.items[i].workspace_id)
                                op->list.items[i].workspace_id = xstrdup(op->workspace_id);
                if (op->cb.list)
                        op->cb.list(c, r, r->class == API_CLASS_OK ? &op->list : NULL, op->userdata);
                break;
        default:
                if (op->cb.done)
                        op->cb.done(c, r, op->userdata);
                break;
        }
}

/* Complete an operation that never got an answer of its own. */
static void fail_op(ApiClient *c, ApiOp *op, ApiClass class, int error, bool sent, const char *message) {
        ApiResult r = {
                .call = op->call,
                .class = class,
                .error = error,
                .message = message ? message : "request failed",
                .sent = sent,
        };
        deliver(c, op, &r, NULL);
        op_free(op);
}

/* ---- scheduling ---- */

static void schedule(ApiClient *c) {
        (void) sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
}

static int on_release(sd_event_source *s, uint64_t usec, void *userdata);

static void arm_release(ApiClient *c) {
        uint64_t when = (uint64_t) c->throttled_until_ms * 1000ULL;
        if (sd_event_source_set_time(c->release, when) < 0 ||
            sd_event_source_set_enabled(c->release, SD_EVENT_ONESHOT) < 0)
                schedule(c);   /* cannot wait precisely: poll on the next iteration */
}

static int enqueue(ApiClient *c, ApiOp *op) {
        op->client = c;
        op->seq = c->next_seq++;
        ops_append(&c->waiting, op);
        if (!op->internal)
                c->n_user++;
        schedule(c);
        return 0;
}

static ApiOp *op_new(ApiCall call, const char *method, char *path) {
        if (!path)
                return NULL;
        ApiOp *op = calloc(1, sizeof(*op));
        if (!op) {
                free(path);
                return NULL;
        }
        op->call = call;
        op->path = path;
        op->method = strdup(method);
        if (!op->method)
                return op_free(op);
        return op;
}

/* ---- sending ---- */

static int build_url(const ApiClient *c, const ApiOp *op, const char *wire_query, char **ret) {
        bool meta = op->call == API_CALL_METADATA_TOKEN || op->call == API_CALL_METADATA_KEYS;
        const char *origin = op->call == API_CALL_IAM_TOKEN ? c->iam_url : meta ? c->meta_origin : c->origin;
        const char *base = op->call == API_CALL_IAM_TOKEN || meta ? "" : c->base_path;
        char *u = xasprintf("%s%s%s%s%s", origin, base, op->path, wire_query && *wire_query ? "?" : "",
                            wire_query ? wire_query : "");
        if (!u)
                return -ENOMEM;
        *ret = u;
        return 0;
}

static void on_http_done(HttpClient *h, const HttpResponse *resp, void *userdata);

static int send_op(ApiClient *c, ApiOp *op) {
        SignParam params[API_MAX_QUERY_PARAMS];
        _cleanup_free_ char *wire_query = NULL, *url = NULL, *authorization = NULL;
        char date[SIGN_DATE_LEN + 1];
        HttpHeader headers[8];
        size_t n = 0;
        int r;

        for (size_t i = 0; i < op->n_params; i++)
                params[i] = (SignParam) { op->keys[i], op->values[i] };
        /* The wire query is the canonical query: the signature covers exactly what is sent. */
        r = sign_canonical_query_params(params, op->n_params, &wire_query);
        if (r < 0)
                return r;
        r = build_url(c, op, wire_query, &url);
        if (r < 0)
                return r;
        bool meta = op->call == API_CALL_METADATA_TOKEN || op->call == API_CALL_METADATA_KEYS;

        headers[n++] = (HttpHeader) { "Accept", "application/json" };
        if (op->body)
                headers[n++] = (HttpHeader) { "Content-Type", "application/json" };

        const Credentials *k = c->credentials;
        /* AK/SK from the credentials, or the metadata service's current keys: signed
         * alike, with X-Security-Token when there is one */
        const char *ak = NULL, *sk = NULL, *security_token = NULL;
        char ttl[24];
        if (k && k->kind == CREDENTIALS_AKSK) {
                ak = k->ak;
                sk = k->sk;
                security_token = k->security_token;
        } else if (k && k->kind == CREDENTIALS_METADATA && c->meta_keys) {
                ak = c->meta_keys->ak;
                sk = c->meta_keys->sk;
                security_token = c->meta_keys->security_token;
                op->signed_expires_ms = c->meta_keys->expires_ms;
        }
        if (op->call == API_CALL_METADATA_TOKEN) {
                snprintf(ttl, sizeof ttl, "%d", METADATA_SESSION_TTL_S);
                headers[n++] = (HttpHeader) { "X-Metadata-Token-Ttl-Seconds", ttl };
        } else if (op->call == API_CALL_METADATA_KEYS) {
                if (c->meta_session)
                        headers[n++] = (HttpHeader) { "X-Metadata-Token", c->meta_session };
        } else if (op->call != API_CALL_IAM_TOKEN) {
                headers[n++] = (HttpHeader) { "X-Project-Id", c->project_id };
                if (ak) {
                        /* Everything after Accept is signed: content-type (when there is a
                         * body), x-project-id, host, x-sdk-date, x-security-token. */
                        size_t first_signed = 1;
                        sign_format_date((long long) (now_realtime_ms() / 1000), date);
                        headers[n++] = (HttpHeader) { "Host", c->host };
                        headers[n++] = (HttpHeader) { "X-Sdk-Date", date };
                        if (security_token)
                                headers[n++] = (HttpHeader) { "X-Security-Token", security_token };

                        SignHeader sh[8];
                        size_t n_sh = 0;
                        for (size_t i = first_signed; i < n; i++)
                                sh[n_sh++] = (SignHeader) { headers[i].name, headers[i].value };
                        _cleanup_free_ char *path = xasprintf("%s%s", c->base_path, op->path);
                        if (!path)
                                return -ENOMEM;
                        SignRequest sr = {
                                .method = op->method,
                                .host = c->host,
                                .path = path,
                                .params = params,
                                .n_params = op->n_params,
                                .headers = sh,
                                .n_headers = n_sh,
                                .body = op->body,
                                .body_len = op->body_len,
                        };
                        r = sign_authorization(&sr, date, ak, sk, &authorization);
                        if (r < 0)
                                return r;
                        headers[n++] = (HttpHeader) { "Authorization", authorization };
                } else if (k && k->kind == CREDENTIALS_TOKEN)
                        headers[n++] = (HttpHeader) { "X-Auth-Token", k->token };
                else if (k && k->kind == CREDENTIALS_PASSWORD && c->iam_token)
                        headers[n++] = (HttpHeader) { "X-Auth-Token", c->iam_token };
        }

        HttpRequest req = {
                .method = op->method,
                .url = url,
                .headers = headers,
                .n_headers = n,
                .body = op->body,
                .body_len = op->body_len,
                /* plain http to the link-local metadata address for its calls only */
                .metadata = meta,
                /* the answers that carry credentials: the keys, the session token, the
                 * IAM token's body */
                .secret = meta || op->call == API_CALL_IAM_TOKEN,
        };
        return http_client_submit(c->http, &req, on_http_done, op, &op->http_id);
}

/* ---- IAM password flow ---- */

static int iam_token_op(ApiClient *c, ApiOp **ret) {
        const Credentials *k = c->credentials;
        cJSON *body = cJSON_CreateObject();
        if (!body)
                return -ENOMEM;
        cJSON *auth = cJSON_AddObjectToObject(body, "auth");
        cJSON *identity = auth ? cJSON_AddObjectToObject(auth, "identity") : NULL;
        cJSON *methods = identity ? cJSON_AddArrayToObject(identity, "methods") : NULL;
        cJSON *password = identity ? cJSON_AddObjectToObject(identity, "password") : NULL;
        cJSON *user = password ? cJSON_AddObjectToObject(password, "user") : NULL;
        cJSON *domain = NULL, *pw = NULL;
        if (user) {
                cJSON_AddStringToObject(user, "name", strempty(k->iam_user));
                pw = cJSON_AddStringToObject(user, "password", strempty(k->password));
                domain = cJSON_AddObjectToObject(user, "domain");
                if (domain)
                        cJSON_AddStringToObject(domain, "name", strempty(k->iam_domain));
        }
        cJSON *scope = auth ? cJSON_AddObjectToObject(auth, "scope") : NULL;
        cJSON *project = scope ? cJSON_AddObjectToObject(scope, "project") : NULL;
        if (methods)
                cJSON_AddItemToArray(methods, cJSON_CreateString("password"));
        if (project)
                cJSON_AddStringToObject(project, "id", c->project_id);

        /* Printed into one buffer of our own: cJSON's growing print buffer would leave
         * copies of the password in blocks it reallocs away, unwiped. */
        char *text = NULL;
        if (project && domain && pw) {
                size_t cap = 1024 + 6 * strlen(pw->valuestring ? pw->valuestring : "") +
                             2 * (strlen(strempty(k->iam_user)) + strlen(strempty(k->iam_domain)));
                text = malloc(cap);
                if (text && !cJSON_PrintPreallocated(body, text, (int) cap, false)) {
                        explicit_bzero(text, cap);
                        text = mfree(text);
                }
        }
        if (pw && pw->valuestring)
                explicit_bzero(pw->valuestring, strlen(pw->valuestring));
        cJSON_Delete(body);
        if (!text)
                return -ENOMEM;

        ApiOp *op = op_new(API_CALL_IAM_TOKEN, "POST", strdup(""));
        if (!op) {
                explicit_bzero(text, strlen(text));
                free(text);
                return -ENOMEM;
        }
        op->internal = true;
        op->body = text;
        op->body_len = strlen(text);
        *ret = op;
        return 0;
}

/* "2024-03-16T08:30:00.000000Z" -> ms; -EINVAL when not that shape. */
static int parse_expires_at(const char *s, int64_t *ret) {
        struct tm tm = { 0 };
        const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
        if (!end)
                return -EINVAL;
        time_t t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret = (int64_t) t * 1000;
        return 0;
}

static bool iam_token_usable(const ApiClient *c) {
        /* A minute of margin: a token must not expire on the way. */
        return c->iam_token && now_realtime_ms() < c->iam_token_expires_ms - 60 * 1000;
}

static bool iam_token_wanted(const ApiClient *c) {
        return !c->iam_token || now_realtime_ms() >= c->iam_token_expires_ms - API_TOKEN_RENEW_BEFORE_MS;
}

/* ---- ECS metadata keys (lib/metadata.h) ---- */

/* The next step of a fetch: a session token first, unless a live one is in hand or the
 * service has none; then the keys. */
static int metadata_op(ApiClient *c, ApiOp **ret) {
        bool session = !c->meta_session_unsupported &&
                       (!c->meta_session || now_realtime_ms() >= c->meta_session_expires_ms);
        ApiOp *op = session ? op_new(API_CALL_METADATA_TOKEN, "PUT", strdup(METADATA_TOKEN_PATH))
                            : op_new(API_CALL_METADATA_KEYS, "GET", strdup(METADATA_SECURITYKEY_PATH));
        if (!op)
                return -ENOMEM;
        op->internal = true;
        *ret = op;
        return 0;
}

static bool meta_keys_wanted(const ApiClient *c) {
        return metadata_keys_wanted(c->meta_keys, c->meta_renew_at_ms, now_realtime_ms());
}

/* ---- credentials fetched before requests leave: the IAM token, the metadata keys ---- */

static bool fetched_credentials(const ApiClient *c) {
        return c->credentials &&
               (c->credentials->kind == CREDENTIALS_PASSWORD || c->credentials->kind == CREDENTIALS_METADATA);
}

static bool fetched_usable(const ApiClient *c) {
        if (c->credentials->kind == CREDENTIALS_METADATA)
                return metadata_keys_usable(c->meta_keys, now_realtime_ms());
        return iam_token_usable(c);
}

static bool fetched_wanted(const ApiClient *c) {
        if (c->credentials->kind == CREDENTIALS_METADATA)
                return meta_keys_wanted(c);
        return iam_token_wanted(c);
}

static int fetch_op(ApiClient *c, ApiOp **ret) {
        if (c->credentials->kind == CREDENTIALS_METADATA)
                return metadata_op(c, ret);
        return iam_token_op(c, ret);
}

/* The wait before the next fetch after a failure: fixed for IAM, growing for the
 * metadata service (it is on the host's link and usually back soon, but a loop of
 * requests must not hammer it). */
static int64_t fetch_retry_ms(ApiClient *c) {
        if (c->credentials && c->credentials->kind == CREDENTIALS_METADATA)
                return metadata_retry_backoff_ms(++c->meta_failures, arc4random());
        return API_TOKEN_RETRY_MS;
}

/* Why calls fail fast while no credentials can be fetched. Caller frees. */
static char *fetch_failed_message(const ApiClient *c) {
        int64_t wait = MAX(c->iam_retry_after_ms - now_monotonic_ms(), (int64_t) 0);
        if (c->credentials->kind == CREDENTIALS_METADATA)
                return xasprintf("no keys from the ECS metadata service at %s: %s; asking again in %" PRId64 " ms",
                                 c->meta_origin, c->meta_last_error ? c->meta_last_error : "the last attempt failed",
                                 wait);
        return xasprintf("no IAM token: the last attempt to get one failed");
}

/* ---- dispatch: the only place requests leave ---- */

static void dispatch(ApiClient *c) {
        if (c->cancelling)
                return;
        for (;;) {
                ApiOp *op = c->waiting.head;
                if (!op)
                        return;

                if (c->auth_failed && !op->internal) {
                        /* 5 bad signatures lock the AK: after one failure, send nothing. */
                        ops_remove(&c->waiting, op);
                        _cleanup_free_ char *m = xasprintf("%s not sent: %s", api_call_to_string(op->call),
                                                           strempty(c->auth_message));
                        fail_op(c, op, API_CLASS_AUTH, -EACCES, false, m ? m : c->auth_message);
                        continue;
                }

                int64_t now = now_monotonic_ms();
                if (c->throttled_until_ms > now) {
                        arm_release(c);
                        return;
                }
                /* Until the server has accepted the credentials once, one request at a
                 * time: a wrong SK must cost one bad signature, not `concurrency` of them
                 * (5 in a row lock the AK for 5 minutes). */
                unsigned limit = c->auth_verified ? c->concurrency : 1;
                if (http_client_in_flight(c->http) + http_client_queued(c->http) >= limit)
                        return;   /* a completion dispatches again */

                if (!op->internal && fetched_credentials(c)) {
                        if (c->iam_fetching) {
                                if (!fetched_usable(c))
                                        return;   /* the token's completion dispatches again */
                        } else if (fetched_wanted(c)) {
                                if (now >= c->iam_retry_after_ms) {
                                        ApiOp *t = NULL;
                                        int r = fetch_op(c, &t);
                                        if (r >= 0) {
                                                t->client = c;
                                                t->seq = c->next_seq++;
                                                ops_prepend(&c->waiting, t);
                                                c->iam_fetching = true;
                                                continue;
                                        }
                                        c->iam_retry_after_ms = now + fetch_retry_ms(c);
                                }
                                if (!fetched_usable(c)) {
                                        /* The last attempt failed moments ago: fail fast, the
                                         * caller's backoff decides when to come back. */
                                        ops_remove(&c->waiting, op);
                                        _cleanup_free_ char *m = fetch_failed_message(c);
                                        fail_op(c, op, API_CLASS_TRANSIENT, -EAGAIN, false,
                                                m ? m : "no credentials: the last attempt to get them failed");
                                        continue;
                                }
                        }
                }

                ops_remove(&c->waiting, op);
                int r = send_op(c, op);
                if (r < 0) {
                        _cleanup_free_ char *m = xasprintf("%s: cannot send the request: %s",
                                                           api_call_to_string(op->call), strerror(-r));
                        if (op->internal) {
                                c->iam_fetching = false;
                                c->iam_retry_after_ms = now + fetch_retry_ms(c);
                        }
                        fail_op(c, op, r == -EINVAL || r == -EPERM ? API_CLASS_PERMANENT : API_CLASS_TRANSIENT, r,
                                false, m);
                        continue;
                }
                ops_append(&c->wire, op);
        }
}

static int on_defer(sd_event_source *s, void *userdata) {
        (void) s;
        dispatch(userdata);
        return 0;
}

static int on_release(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        dispatch(userdata);
        return 0;
}

/* ---- answers ---- */

static char *describe_failure(const ApiClient *c, const ApiOp *op, ApiClass class, const HttpResponse *resp,
                              const ApiError *e) {
        const char *call = api_call_to_string(op->call);

        if (resp->error && (resp->status <= 0 || class != API_CLASS_PERMANENT)) {
                if (class == API_CLASS_UNKNOWN_OUTCOME)
                        return xasprintf("%s: %s after the request was sent: the outcome is unknown, "
                                         "list before retrying", call, strempty(resp->error_message));
                return xasprintf("%s: %s%s", call, strempty(resp->error_message),
                                 resp->sent ? "" : " (not sent)");
        }

        _cleanup_free_ char *api = xasprintf("HTTP %ld%s%s%s%s", resp->status, e->error_code ? " " : "",
                                             strempty(e->error_code), e->error_msg ? ": " : "",
                                             strempty(e->error_msg));
        if (class == API_CLASS_AUTH && op->call == API_CALL_IAM_TOKEN)
                return xasprintf("IAM rejected the password of user %s in domain %s (%s): fix the "
                                 "credentials; sending nothing until then",
                                 strempty(c->credentials ? c->credentials->iam_user : NULL),
                                 strempty(c->credentials ? c->credentials->iam_domain : NULL), strempty(api));
        if (class == API_CLASS_AUTH) {
                _cleanup_free_ char *where = c->credentials ? credentials_describe(c->credentials) : NULL;
                if (resp->status == 403 && streq_ptr(e->error_code, "ModelArts.0210"))
                        return xasprintf("%s: project ID %s does not match the %s credentials (%s): fix "
                                         "project_id or the credentials; sending nothing until then",
                                         call, c->project_id, kind_string(c), strempty(api));
                if (c->clock_skewed && c->credentials &&
                    (c->credentials->kind == CREDENTIALS_AKSK || c->credentials->kind == CREDENTIALS_METADATA))
                        /* The signature carries our clock (X-Sdk-Date): the keys may be fine. */
                        return xasprintf("%s: the local clock is %lld s %s the API's (its Date: %s), more than "
                                         "the 15 minutes the gateway allows a signature, and the AK/SK "
                                         "signature was refused (%s): set the clock right (NTP); sending "
                                         "nothing until then",
                                         call, llabs(c->clock_offset_ms / 1000),
                                         c->clock_offset_ms > 0 ? "ahead of" : "behind", strempty(resp->date),
                                         strempty(api));
                return xasprintf("%s: the %s credentials were rejected (%s)%s%s: fix them; sending "
                                 "nothing until then (5 bad signatures lock an AK)",
                                 call, kind_string(c), strempty(api), where ? "; using " : "", strempty(where));
        }
        if (class == API_CLASS_FORBIDDEN)
                return xasprintf("%s: an IAM policy denies this operation (%s): the %s credentials are "
                                 "valid, but their user or agency needs permission to %s notebooks",
                                 call, strempty(api), kind_string(c), call);
        if (class == API_CLASS_ACCOUNT_FROZEN)
                return xasprintf("%s: the account is frozen, usually for arrears (%s): top it up in the "
                                 "Huawei Cloud console; creates are paused until then", call, strempty(api));
        if (class == API_CLASS_UNKNOWN_OUTCOME)
                return xasprintf("%s: %s: the outcome is unknown, list before retrying", call, strempty(api));
        return xasprintf("%s: %s", call, strempty(api));
}

static void free_list(OpList *l);

/* The pages after the first, all queued at once (the client's concurrency bounds how
 * many are on the wire), next in line before other work, in offset order. The listing
 * waits in c->gathering. total is at most API_LIST_MAX_INSTANCES (the caller checked).
 * Returns 1, or a negative errno (nothing queued). */
static int list_fan_out(ApiClient *c, ApiOp *op, int64_t total) {
        OpList pages = {};
        for (int64_t off = op->offset; off < total; off += API_LIST_PAGE_SIZE) {
                ApiOp *page = op_new(API_CALL_LIST, op->method, xstrdup(op->path));
                int r = page ? 0 : -ENOMEM;
                for (size_t i = 0; r >= 0 && i < op->n_params; i++)
                        r = op_add_param(page, op->keys[i], op->values[i]);
                char off_s[32];
                snprintf(off_s, sizeof(off_s), "%" PRId64, off);
                if (r >= 0)
                        r = op_set_param(page, "offset", off_s);
                if (r < 0) {
                        op_free(page);
                        free_list(&pages);
                        return r;
                }
                page->page_of = op;
                page->client = c;
                page->seq = c->next_seq++;
                ops_append(&pages, page);
        }
        op->pages_out = pages.n;
        /* in front of the waiting ops, in offset order */
        for (ApiOp *page; (page = pages.tail);) {
                ops_remove(&pages, page);
                ops_prepend(&c->waiting, page);
        }
        ops_append(&c->gathering, op);
        return 1;
}

/* A list page arrived: gather it. Returns 1 when more pages were queued (the op lives
 * on), 0 when the listing (or, for one of its parallel pages, this page) is complete,
 * or a negative errno. */
static int list_page_done(ApiClient *c, ApiOp *op, const HttpResponse *resp) {
        ApiOp *listing = op->page_of ? op->page_of : op;
        int64_t total = -1;
        size_t items = 0, before = listing->list.n;
        int r = api_parse_list_page(resp->body, resp->body_len, &listing->list, &total, &items);
        if (r < 0)
                return r;
        if (op->page_of)   /* complete when its last page is; a full page of nothing new:
                            * the server ignores offset, as below */
                return items >= API_LIST_PAGE_SIZE && listing->list.n == before ? -E2BIG : 0;
        bool first = op->offset == 0;
        op->offset += (int64_t) items;
        /* A server that ignores offset (a full page of nothing new) or never ends would
         * keep the pass listing forever: that is an error. */
        if (items >= API_LIST_PAGE_SIZE && (op->list.n == before || op->offset >= API_LIST_MAX_INSTANCES))
                return -E2BIG;
        /* Stop on a short page or once total_count is reached: a page can be short only
         * at the end, and total_count bounds a server that never is. */
        if (items < API_LIST_PAGE_SIZE || (total >= 0 && op->offset >= total))
                return 0;
        /* The first page says how many there are: ask for the rest together, one round
         * trip instead of one per page. A server that does not say pages one by one. */
        if (first && total > API_LIST_MAX_INSTANCES)
                return -E2BIG;
        if (first && total > 0)
                return list_fan_out(c, op, total);
        char off[32];
        snprintf(off, sizeof(off), "%" PRId64, op->offset);
        r = op_set_param(op, "offset", off);
        if (r < 0)
                return r;
        /* Next page first: a listing in progress finishes before new work. */
        ops_prepend(&c->waiting, op);
        return 1;
}

/* One of a listing's parallel pages is done (its items are in the listing already). The
 * first failure answers the listing (a listing with a hole in it must not judge
 * anything) and drops its pages not yet sent; the last page to finish answers it when
 * none failed, and frees it. */
static void page_finished(ApiClient *c, ApiOp *page, const ApiResult *r) {
        ApiOp *listing = page->page_of;
        page->page_of = NULL;
        listing->pages_out--;
        if (r->class != API_CLASS_OK && !listing->answered) {
                listing->answered = true;
                deliver(c, listing, r, NULL);
                for (ApiOp *w = c->waiting.head, *next; w; w = next) {
                        next = w->next;
                        if (w->page_of == listing) {
                                ops_remove(&c->waiting, w);
                                op_free(w);
                                listing->pages_out--;
                        }
                }
        }
        if (listing->pages_out > 0)
                return;
        ops_remove(&c->gathering, listing);
        if (!listing->answered) {
                ApiResult ok = { .call = API_CALL_LIST, .class = API_CLASS_OK, .http_status = r->http_status,
                                 .request_id = r->request_id, .sent = true };
                deliver(c, listing, &ok, NULL);
        }
        op_free(listing);
}

/* The IAM answer: keep the token (secret) and its expiry. */
static int iam_token_done(ApiClient *c, const HttpResponse *resp) {
        if (!resp->subject_token || !*resp->subject_token)
                return -EBADMSG;
        char *t = strdup(resp->subject_token);
        if (!t)
                return -ENOMEM;
        free_secret(c->iam_token);
        c->iam_token = t;
        c->iam_token_expires_ms = now_realtime_ms() + 60 * 60 * 1000;   /* if unsaid */
        cJSON *j = cJSON_ParseWithLength(resp->body, resp->body_len);
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "token");
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(tok, "expires_at");
        int64_t expires;
        if (cJSON_IsString(exp) && parse_expires_at(exp->valuestring, &expires) == 0)
                c->iam_token_expires_ms = expires;
        cJSON_Delete(j);
        return 0;
}

/* The hold before anything else is sent: for a 429 client-wide and growing with every
 * 429 in a row (Retry-After is often absent, and a per-minute quota is not over in 2 s),
 * never less than the gateway asked; for a transient error what the server or its code
 * asked for. */
static int64_t note_retry_after(ApiClient *c, ApiClass class, const HttpResponse *resp, const char *error_code) {
        int64_t ms = 0;
        if (resp->retry_after)
                (void) api_parse_retry_after(resp->retry_after, now_realtime_ms(), &ms);
        if (class == API_CLASS_TRANSIENT)
                ms = MAX(ms, api_error_min_retry_ms(error_code));
        if (class == API_CLASS_THROTTLED) {
                c->throttle_streak++;
                ms = MAX(ms, api_throttle_backoff_ms(c->throttle_streak, arc4random()));
                c->throttled_until_ms = MAX(c->throttled_until_ms, now_monotonic_ms() + ms);
        } else if (resp->status > 0)
                c->throttle_streak = 0;   /* the gateway let a request through */
        return ms;
}

/* A credential fetch failed and nothing may be signed: every call waiting for it gets
 * the failure (result, with each call's own name), unless the client is being
 * cancelled (cancel_ops fails those itself, with -ECANCELED). */
static void fail_waiting(ApiClient *c, ApiResult *result) {
        ApiOp *w;
        while ((w = c->waiting.head) && !c->cancelling) {
                ops_remove(&c->waiting, w);
                result->call = w->call;
                deliver(c, w, result, NULL);
                op_free(w);
        }
}

/* The IAM token request failed: without a usable token nothing can be sent, so the
 * waiting calls get its failure (AUTH is handled in dispatch). */
static void iam_token_failed(ApiClient *c, const ApiResult *result) {
        c->iam_retry_after_ms = now_monotonic_ms() + API_TOKEN_RETRY_MS;
        if (iam_token_usable(c) || result->class == API_CLASS_AUTH)
                return;
        ApiResult copy = *result;
        copy.class = result->class == API_CLASS_UNKNOWN_OUTCOME ? API_CLASS_TRANSIENT : result->class;
        copy.sent = false;
        fail_waiting(c, &copy);
}

/* ---- the metadata service's answers ---- */

/* A metadata fetch failed: back off (the wait grows with each failure in a row) and,
 * unless the keys in hand still do, give the waiting calls the failure. AUTH (no
 * agency) stops the client like a refused signature: dispatch fails the waiting calls,
 * and the daemon's auth retry (api_client_reset_auth) asks again. Takes message. */
static void metadata_failed(ApiClient *c, ApiClass class, int error, long status, char *message) {
        c->iam_fetching = false;
        c->meta_session_renewed = false;
        int64_t wait = fetch_retry_ms(c);
        c->iam_retry_after_ms = now_monotonic_ms() + wait;
        free(c->meta_last_error);
        c->meta_last_error = message;
        if (class == API_CLASS_AUTH) {
                if (!c->auth_failed) {
                        c->auth_failed = true;
                        free(c->auth_message);
                        c->auth_message = xstrdup(message ? message : "no credentials from the ECS metadata service");
                }
                return;
        }
        if (metadata_keys_usable(c->meta_keys, now_realtime_ms()))
                return;   /* the old keys still work: the renewal is tried again later */
        _cleanup_free_ char *m = fetch_failed_message(c);
        ApiResult r = {
                .class = API_CLASS_TRANSIENT,
                .error = error < 0 ? error : -EAGAIN,
                .http_status = status,
                .message = m ? m : "no keys from the ECS metadata service",
                .retry_after_ms = wait,
        };
        fail_waiting(c, &r);
}

/* The fetch goes on with its next request, first in line (iam_fetching stays set). */
static void metadata_continue(ApiClient *c) {
        ApiOp *t = NULL;
        int r = metadata_op(c, &t);
        if (r < 0) {
                metadata_failed(c, API_CLASS_TRANSIENT, r, 0, xasprintf("cannot queue a request: %s", strerror(-r)));
                return;
        }
        t->client = c;
        t->seq = c->next_seq++;
        ops_prepend(&c->waiting, t);
}

static void metadata_no_agency(ApiClient *c, long status, const char *how) {
        metadata_failed(c, API_CLASS_AUTH, -ENOKEY, status,
                        xasprintf("the ECS metadata service at %s has no credentials for this ECS (%s): configure a "
                                  "cloud service agency for this ECS (ECS console, the server's Management "
                                  "Information: Agency); sending nothing until then",
                                  c->meta_origin, how));
}

static void metadata_answered(ApiClient *c, ApiOp *op, const HttpResponse *resp) {
        bool session = op->call == API_CALL_METADATA_TOKEN;
        const char *what = session ? "session token" : "securitykey";
        bool ok = resp->status >= 200 && resp->status < 300;

        if (resp->error) {
                metadata_failed(c, API_CLASS_TRANSIENT, resp->error, resp->status,
                                xasprintf("%s: %s", what, strempty(resp->error_message)));
                return;
        }
        if (session) {
                if (resp->status == 404 || resp->status == 405) {
                        /* a service without session tokens: the SDK then asks for the keys
                         * without one, and so do we */
                        c->meta_session_unsupported = true;
                } else if (ok) {
                        size_t n = resp->body_len;
                        while (n > 0 && (resp->body[n - 1] == '\n' || resp->body[n - 1] == '\r'))
                                n--;
                        bool valid = n > 0 && n <= CREDENTIAL_MAX_SIZE;
                        for (size_t i = 0; valid && i < n; i++)
                                valid = (unsigned char) resp->body[i] > 0x20 && (unsigned char) resp->body[i] < 0x7f;
                        if (!valid) {
                                metadata_failed(c, API_CLASS_TRANSIENT, -EBADMSG, resp->status,
                                                xasprintf("session token: HTTP %ld but not a token", resp->status));
                                return;
                        }
                        credentials_secret_free(c->meta_session);
                        c->meta_session = credentials_secret_dup(resp->body, n);
                        if (!c->meta_session) {
                                metadata_failed(c, API_CLASS_TRANSIENT, -ENOMEM, resp->status, NULL);
                                return;
                        }
                        /* a minute early: a fetch must not carry one that expires on the way */
                        c->meta_session_expires_ms = now_realtime_ms() + METADATA_SESSION_TTL_S * 1000LL - 60 * 1000;
                } else {
                        metadata_failed(c, API_CLASS_TRANSIENT, -EIO, resp->status,
                                        xasprintf("session token: HTTP %ld", resp->status));
                        return;
                }
                metadata_continue(c);
                return;
        }

        if (resp->status == 401 && !metadata_answer_is_no_agency(resp->status, resp->body, resp->body_len)) {
                if (!c->meta_session_renewed) {
                        /* the session token expired, or the service forgot it: a new one, once */
                        c->meta_session_renewed = true;
                        c->meta_session_unsupported = false;
                        credentials_secret_free(c->meta_session);
                        c->meta_session = NULL;
                        metadata_continue(c);
                        return;
                }
                metadata_failed(c, API_CLASS_TRANSIENT, -EACCES, resp->status,
                                xasprintf("securitykey: HTTP 401 even with a new session token"));
                return;
        }
        if (metadata_answer_is_no_agency(resp->status, resp->body, resp->body_len)) {
                _cleanup_free_ char *how = xasprintf("securitykey: HTTP %ld", resp->status);
                metadata_no_agency(c, resp->status, how ? how : "securitykey refused");
                return;
        }
        if (!ok) {
                metadata_failed(c, API_CLASS_TRANSIENT, -EIO, resp->status,
                                xasprintf("securitykey: HTTP %ld", resp->status));
                return;
        }
        MetadataKeys *k = NULL;
        char *error = NULL;
        int r = metadata_parse_securitykey(resp->body, resp->body_len, now_realtime_ms(), &k, &error);
        if (r == -ENOKEY) {
                free(error);
                metadata_no_agency(c, resp->status, "securitykey: HTTP 200 with an empty credential");
                return;
        }
        if (r < 0) {
                metadata_failed(c, API_CLASS_TRANSIENT, r, resp->status, error);
                return;
        }
        /* The same expiry again: the service has not issued the next keys yet (it does
         * so 10 minutes before the old ones expire); ask again soon. The keys in hand
         * keep their age: their margin must not shrink with each re-fetch. */
        int64_t now = now_realtime_ms();
        bool same = metadata_keys_take(&c->meta_keys, k, now, &c->meta_renew_at_ms);
        if (same && !metadata_keys_usable(c->meta_keys, now)) {
                /* Nothing new, and the old keys are inside the margin: no request may be
                 * signed, so this is a failed fetch (backoff, the waiting calls fail). */
                metadata_failed(c, API_CLASS_TRANSIENT, -EKEYEXPIRED, resp->status,
                                xasprintf("the service still hands out keys that expire in %" PRId64
                                          " ms, too close to expiry to sign with",
                                          MAX(c->meta_keys->expires_ms - now, (int64_t) 0)));
                return;
        }
        c->meta_failures = 0;
        c->meta_session_renewed = false;
        c->iam_fetching = false;
        c->meta_last_error = mfree(c->meta_last_error);
}

/* Every answer's Date says where the server's clock is: an AK/SK signature more than 15
 * minutes off it is refused, and that failure must be named as the clock's. */
static void note_server_clock(ApiClient *c, const HttpResponse *resp) {
        int64_t offset_ms;
        if (resp->status > 0 && api_clock_offset_ms(resp->date, now_realtime_ms(), &offset_ms) >= 0) {
                c->clock_offset_ms = offset_ms;
                c->clock_skewed = api_clock_offset_too_large(offset_ms);
        }
}

/* The answer's class, its error body parsed into *e (credentials scrubbed) and the
 * errno of a transport failure in *error. */
static ApiClass classify_answer(ApiClient *c, const ApiOp *op, const HttpResponse *resp, ApiError *e, int *error) {
        bool success_status = resp->status >= 200 && resp->status < 300;
        /* The documented create and get answers may carry error_code: a 2xx whose body is
         * an error and not the call's answer is that error, not "unexpected JSON". */
        bool error_in_2xx = success_status && !resp->error && op->call != API_CALL_IAM_TOKEN &&
                            api_body_is_error(op->call, resp->body, resp->body_len);
        if ((resp->status > 0 && !success_status) || error_in_2xx) {
                api_parse_error(resp->body, resp->body_len, e);
                scrub(c, e->error_code);
                scrub(c, e->error_msg);
                scrub(c, e->request_id);
        }
        /* Such an error is classified by its code as the 400s are (unknown codes: permanent). */
        ApiClass class = api_classify(op->call, resp->error, resp->sent, error_in_2xx ? 400 : resp->status,
                                      e->error_code, error);
        /* Any answer past authentication proves the credentials (429 may come before it). */
        if (!op->internal && resp->status >= 200 && resp->status < 500 && resp->status != 401 && resp->status != 403 &&
            resp->status != 429)
                c->auth_verified = true;
        return class;
}

static void on_http_done(HttpClient *h, const HttpResponse *resp, void *userdata) {
        ApiOp *op = userdata;
        ApiClient *c = op->client;
        _cleanup_(api_error_done) ApiError e = { 0 };
        _cleanup_free_ char *message = NULL;
        RemoteInstance instance = { 0 };
        int error = 0, r = 0;

        (void) h;
        ops_remove(&c->wire, op);
        if (c->observer)
                c->observer(c, op->call, resp->status, c->observer_userdata);
        if (op->call == API_CALL_METADATA_TOKEN || op->call == API_CALL_METADATA_KEYS) {
                metadata_answered(c, op, resp);
                op_free(op);
                dispatch(c);
                return;
        }
        note_server_clock(c, resp);
        ApiClass class = classify_answer(c, op, resp, &e, &error);
        /* Signed with metadata keys that expired on the way, or were replaced meanwhile
         * (both generations work during the overlap, but a stale clock may not agree): a
         * retry with the keys now in hand, not a reason to stop sending. */
        if (class == API_CLASS_AUTH && resp->status == 401 && op->signed_expires_ms > 0 &&
            (!c->meta_keys || c->meta_keys->expires_ms != op->signed_expires_ms ||
             !metadata_keys_usable(c->meta_keys, now_realtime_ms()))) {
                class = API_CLASS_TRANSIENT;
                c->meta_renew_at_ms = 0;
                message = xasprintf("%s: the temporary keys from the ECS metadata service expired on the way "
                                    "(HTTP 401): retrying with new ones", api_call_to_string(op->call));
        }

        if (class == API_CLASS_OK) {
                if (op->call == API_CALL_CREATE || op->call == API_CALL_GET)
                        r = api_parse_instance(resp->body, resp->body_len, &instance);
                else if (op->call == API_CALL_LIST && (r = list_page_done(c, op, resp)) > 0) {
                        dispatch(c);
                        return;
                } else if (op->call == API_CALL_IAM_TOKEN)
                        r = iam_token_done(c, resp);
        }
        if (r < 0) {
                error = r;
                class = r == -E2BIG ? API_CLASS_PERMANENT
                        : op->call == API_CALL_CREATE ? API_CLASS_UNKNOWN_OUTCOME   /* made, id unknown */
                                                      : API_CLASS_TRANSIENT;
                message = xasprintf("%s: HTTP %ld but %s", api_call_to_string(op->call), resp->status,
                                    r == -E2BIG ? "more instances than notebookd lists (API_LIST_MAX_INSTANCES)"
                                                : "the response is not the expected JSON");
        }
        int64_t retry_after_ms = note_retry_after(c, class, resp, e.error_code);
        if (class != API_CLASS_OK && !message)
                message = describe_failure(c, op, class, resp, &e);
        if (class == API_CLASS_AUTH && !c->auth_failed) {
                c->auth_failed = true;
                free(c->auth_message);
                c->auth_message = xstrdup(message);
        }

        ApiResult result = {
                .call = op->call,
                .class = class,
                .error = error,
                .http_status = resp->status,
                .error_code = e.error_code,
                .error_msg = e.error_msg,
                .request_id = e.request_id ? e.request_id : resp->request_id,
                .message = class == API_CLASS_OK ? NULL : (message ? message : "request failed"),
                .retry_after_ms = retry_after_ms,
                .sent = resp->sent,
        };
        if (op->internal) {
                c->iam_fetching = false;
                if (class != API_CLASS_OK)
                        iam_token_failed(c, &result);
        } else
                deliver(c, op, &result, &instance);

        remote_instance_done(&instance);
        op_free(op);
        dispatch(c);
}

/* ---- public ---- */

static void set_message(char **ret_message, char *m) {
        if (ret_message)
                *ret_message = m;
        else
                free(m);
}

static bool id_is_safe(const char *s) {
        /* Goes into a URL path: IDs and project IDs are hex, dashes, maybe underscores. */
        if (!s || !*s || strlen(s) > 128)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                      *p == '_' || *p == '.'))
                        return false;
        return !streq(s, ".") && !streq(s, "..");
}

static int split_endpoint(const char *endpoint, char **ret_origin, char **ret_host, char **ret_path) {
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
        int r = -EINVAL;

        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
                goto finish;
        (void) curl_url_get(u, CURLUPART_PORT, &port, 0);   /* absent: the default */
        (void) curl_url_get(u, CURLUPART_PATH, &path, 0);
        if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK && query && *query)
                goto finish;

        /* curl sends Host without the port when it is the scheme's default; sign the same. */
        bool default_port = !port || (strcasecmp(scheme, "https") == 0 && streq(port, "443")) ||
                            (strcasecmp(scheme, "http") == 0 && streq(port, "80"));
        char *h = default_port ? xasprintf("%s", host) : xasprintf("%s:%s", host, port);
        char *o = xasprintf("%s://%s", scheme, h ? h : "");
        size_t pl = path ? strlen(path) : 0;
        while (pl > 0 && path[pl - 1] == '/')
                pl--;
        char *p = strndup(path ? path : "", pl);
        if (!h || !o || !p) {
                free(h);
                free(o);
                free(p);
                r = -ENOMEM;
                goto finish;
        }
        *ret_origin = o;
        *ret_host = h;
        *ret_path = p;
        r = 0;
finish:
        curl_free(scheme);
        curl_free(host);
        curl_free(port);
        curl_free(path);
        curl_free(query);
        curl_url_cleanup(u);
        return r;
}

int api_client_new(sd_event *e, const ApiClientOptions *o, ApiClient **ret, char **ret_message) {
        int r;

        if (!e || !o || !ret)
                return -EINVAL;
        if (!o->endpoint || !*o->endpoint) {
                set_message(ret_message, xasprintf("no ModelArts endpoint"));
                return -EINVAL;
        }
        if (!id_is_safe(o->project_id)) {
                _cleanup_free_ char *q = quote_for_log(strempty(o->project_id));
                set_message(ret_message, xasprintf("invalid project ID %s: expected letters and digits",
                                                   strempty(q)));
                return -EINVAL;
        }
        r = http_url_check(o->endpoint, ret_message);
        if (r < 0)
                return -EINVAL;
        const Credentials *k = o->credentials;
        if (k && k->kind == CREDENTIALS_AKSK && (!k->ak || !k->sk)) {
                set_message(ret_message, xasprintf("AK/SK credentials without both AK and SK"));
                return -EINVAL;
        }
        if (k && k->kind == CREDENTIALS_TOKEN && !k->token) {
                set_message(ret_message, xasprintf("IAM token credentials without a token"));
                return -EINVAL;
        }
        if (k && k->kind == CREDENTIALS_PASSWORD) {
                if (!o->iam_endpoint || !*o->iam_endpoint) {
                        set_message(ret_message, xasprintf("IAM password credentials need iam_endpoint: "
                                                           "(https://iam.{region}.myhuaweicloud.com)"));
                        return -EINVAL;
                }
                r = http_url_check(o->iam_endpoint, ret_message);
                if (r < 0)
                        return -EINVAL;
        }

        if (k && k->kind == CREDENTIALS_METADATA) {
                r = http_metadata_url_check(k->metadata_endpoint ? k->metadata_endpoint : METADATA_DEFAULT_ENDPOINT,
                                            ret_message);
                if (r < 0)
                        return -EINVAL;
        }

        ApiClient *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->credentials = k;
        c->next_seq = 1;
        c->concurrency = o->concurrency ? MIN(o->concurrency, (unsigned) CONFIG_MAX_CONCURRENCY)
                                        : CONFIG_DEFAULT_CONCURRENCY;
        c->project_id = strdup(o->project_id);
        if (!c->project_id) {
                r = -ENOMEM;
                goto fail;
        }
        r = split_endpoint(o->endpoint, &c->origin, &c->host, &c->base_path);
        if (r < 0) {
                _cleanup_free_ char *q = quote_for_log(o->endpoint);
                set_message(ret_message, xasprintf("invalid endpoint %s: expected https://host[:port][/path]",
                                                   strempty(q)));
                goto fail;
        }
        if (k && k->kind == CREDENTIALS_PASSWORD) {
                size_t l = strlen(o->iam_endpoint);
                while (l > 0 && o->iam_endpoint[l - 1] == '/')
                        l--;
                c->iam_url = xasprintf("%.*s/v3/auth/tokens", (int) l, o->iam_endpoint);
                if (!c->iam_url) {
                        r = -ENOMEM;
                        goto fail;
                }
        }

        if (k && k->kind == CREDENTIALS_METADATA) {
                const char *m = k->metadata_endpoint ? k->metadata_endpoint : METADATA_DEFAULT_ENDPOINT;
                size_t l = strlen(m);
                while (l > 0 && m[l - 1] == '/')
                        l--;
                c->meta_origin = strndup(m, l);
                if (!c->meta_origin) {
                        r = -ENOMEM;
                        goto fail;
                }
        }

        HttpClientOptions ho = {
                .concurrency = c->concurrency,
                .connect_timeout_ms = o->connect_timeout_ms,
                .total_timeout_ms = o->request_timeout_ms,
                .ca_file = o->ca_file,
                .proxy = o->proxy,
                .no_proxy = o->no_proxy,
        };
        r = http_client_new(e, &ho, &c->http);
        if (r < 0) {
                set_message(ret_message, xasprintf("cannot set up the HTTP client: %s", strerror(-r)));
                goto fail;
        }
        r = sd_event_add_defer(e, &c->defer, on_defer, c);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(c->defer, "api-dispatch");
        /* 1 ms accuracy: a default (0 = 250 ms) would needlessly stretch every throttle hold. */
        r = sd_event_add_time(e, &c->release, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_release, c);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(c->release, SD_EVENT_OFF);
        (void) sd_event_source_set_description(c->release, "api-throttle-release");

        *ret = c;
        return 0;
fail:
        api_client_free(c);
        return r;
}

static void free_list(OpList *l) {
        while (l->head) {
                ApiOp *op = l->head;
                ops_remove(l, op);
                op_free(op);
        }
}

ApiClient *api_client_free(ApiClient *c) {
        if (!c)
                return NULL;
        /* Drops transfers without callbacks: the ops they point at are freed next. */
        c->http = http_client_free(c->http);
        free_list(&c->waiting);
        free_list(&c->wire);
        free_list(&c->gathering);
        sd_event_source_disable_unref(c->defer);
        sd_event_source_disable_unref(c->release);
        sd_event_unref(c->event);
        free(c->origin);
        free(c->host);
        free(c->base_path);
        free(c->project_id);
        free(c->iam_url);
        free(c->auth_message);
        free_secret(c->iam_token);
        free(c->meta_origin);
        metadata_keys_free(c->meta_keys);
        credentials_secret_free(c->meta_session);
        free(c->meta_last_error);
        free(c);
        return NULL;
}

int api_create(ApiClient *c, const NotebookSpec *spec, api_instance_cb cb, void *userdata) {
        if (!c || !spec)
                return -EINVAL;
        cJSON *body = NULL;
        int r = spec_to_create_body(spec, &body);
        if (r < 0)
                return r;
        char *text = cJSON_PrintUnformatted(body);
        cJSON_Delete(body);
        if (!text)
                return -ENOMEM;

        ApiOp *op = op_new(API_CALL_CREATE, "POST", v1_collection_path(c));
        if (!op) {
                free(text);
                return -ENOMEM;
        }
        op->body = text;
        op->body_len = strlen(text);
        op->cb.instance = cb;
        op->userdata = userdata;
        return enqueue(c, op);
}

int api_list(ApiClient *c, const char *workspace_id, api_list_cb cb, void *userdata) {
        if (!c)
                return -EINVAL;
        ApiOp *op = op_new(API_CALL_LIST, "GET", v1_collection_path(c));
        if (!op)
                return -ENOMEM;
        op->workspace_id = strdup(workspace_id ? workspace_id : "0");
        if (!op->workspace_id) {
                op_free(op);
                return -ENOMEM;
        }
        char limit[32];
        snprintf(limit, sizeof(limit), "%d", API_LIST_PAGE_SIZE);
        /* Oldest first: instances created while we page land at the end instead of
         * shifting the pages still to come (duplicates are dropped by id anyway). */
        int r = op_add_param(op, "de_type", "Notebook");
        if (r >= 0)
                r = op_add_param(op, "limit", limit);
        if (r >= 0)
                r = op_add_param(op, "offset", "0");
        if (r >= 0)
                r = op_add_param(op, "sortby", "creation_timestamp");
        if (r >= 0)
                r = op_add_param(op, "order", "asc");
        /* Without it the cloud lists workspace "0" only. */
        if (r >= 0)
                r = op_add_param(op, "workspace_id", op->workspace_id);
        if (r < 0) {
                op_free(op);
                return r;
        }
        op->cb.list = cb;
        op->userdata = userdata;
        return enqueue(c, op);
}

static int instance_op(ApiClient *c, ApiCall call, const char *method, const char *id, const char *suffix,
                       const char *body, ApiOp **ret) {
        if (!c || !id_is_safe(id))
                return -EINVAL;
        ApiOp *op = op_new(call, method, v1_instance_path(c, id, suffix));
        if (!op)
                return -ENOMEM;
        if (body) {
                op->body = strdup(body);
                if (!op->body) {
                        op_free(op);
                        return -ENOMEM;
                }
                op->body_len = strlen(body);
        }
        *ret = op;
        return 0;
}

int api_get(ApiClient *c, const char *instance_id, api_instance_cb cb, void *userdata) {
        ApiOp *op;
        int r = instance_op(c, API_CALL_GET, "GET", instance_id, NULL, NULL, &op);
        if (r < 0)
                return r;
        op->cb.instance = cb;
        op->userdata = userdata;
        return enqueue(c, op);
}

/* delete, start, stop: a call on one instance whose answer only says whether it worked. */
static int done_op(ApiClient *c, ApiCall call, const char *method, const char *instance_id, const char *suffix,
                   const char *body, api_done_cb cb, void *userdata) {
        ApiOp *op;
        int r = instance_op(c, call, method, instance_id, suffix, body, &op);
        if (r < 0)
                return r;
        op->cb.done = cb;
        op->userdata = userdata;
        return enqueue(c, op);
}

int api_delete(ApiClient *c, const char *instance_id, api_done_cb cb, void *userdata) {
        return done_op(c, API_CALL_DELETE, "DELETE", instance_id, NULL, NULL, cb, userdata);
}

int api_start(ApiClient *c, const char *instance_id, api_done_cb cb, void *userdata) {
        return done_op(c, API_CALL_START, "POST", instance_id, "/action", "{\"action\":\"start\"}", cb, userdata);
}

int api_stop(ApiClient *c, const char *instance_id, api_done_cb cb, void *userdata) {
        return done_op(c, API_CALL_STOP, "POST", instance_id, "/action", "{\"action\":\"stop\"}", cb, userdata);
}

unsigned api_client_pending(const ApiClient *c) {
        return c ? c->n_user : 0;
}

bool api_client_auth_failed(const ApiClient *c, const char **ret_message) {
        if (!c || !c->auth_failed)
                return false;
        if (ret_message)
                *ret_message = c->auth_message;
        return true;
}

bool api_client_clock_skewed(const ApiClient *c, int64_t *ret_offset_ms) {
        if (!c || !c->clock_skewed)
                return false;
        if (ret_offset_ms)
                *ret_offset_ms = c->clock_offset_ms;
        return true;
}

void api_client_reset_auth(ApiClient *c) {
        if (!c)
                return;
        c->auth_failed = false;
        c->auth_verified = false;
        free(c->auth_message);
        c->auth_message = NULL;
        /* A password may have changed too: get a fresh token. */
        free_secret(c->iam_token);
        c->iam_token = NULL;
        c->iam_retry_after_ms = 0;
        /* Metadata keys: ask the service again now (an agency may have been attached);
         * the keys in hand stay until new ones arrive. */
        c->meta_renew_at_ms = 0;
        c->meta_failures = 0;
        schedule(c);
}

void api_client_set_observer(ApiClient *c, api_observer_cb cb, void *userdata) {
        c->observer = cb;
        c->observer_userdata = userdata;
}

int64_t api_client_throttled_until_ms(const ApiClient *c) {
        if (!c || c->throttled_until_ms <= now_monotonic_ms())
                return 0;
        return c->throttled_until_ms;
}

/* Fail what is queued (and, with wire, what is on the wire) with -ECANCELED. Callbacks
 * run synchronously, here; ops they queue meanwhile (seq >= last) are left alone. */
static void cancel_ops(ApiClient *c, bool wire) {
        if (!c)
                return;
        uint64_t last = c->next_seq;
        bool was = c->cancelling;
        c->cancelling = true;   /* no dispatch from completions while we tear down */

        for (;;) {
                ApiOp *op = c->waiting.head;
                while (op && op->seq >= last)
                        op = op->next;
                if (op) {
                        ops_remove(&c->waiting, op);
                        if (op->internal)
                                c->iam_fetching = false;
                        fail_op(c, op, API_CLASS_TRANSIENT, -ECANCELED, false,
                                op->call == API_CALL_CREATE ? "create cancelled before it was sent"
                                                            : "request cancelled before it was sent");
                        continue;
                }
                if (!wire)
                        break;
                op = c->wire.head;
                while (op && op->seq >= last)
                        op = op->next;
                if (!op)
                        break;
                /* Completes through on_http_done with -ECANCELED: a create on the wire is
                 * classified UNKNOWN_OUTCOME there. */
                if (http_client_cancel(c->http, op->http_id) < 0) {
                        ops_remove(&c->wire, op);
                        fail_op(c, op, API_CLASS_TRANSIENT, -ECANCELED, false, "request cancelled");
                }
        }
        c->cancelling = was;
        if (!was && c->waiting.head)
                schedule(c);
}

void api_client_cancel_all(ApiClient *c) {
        cancel_ops(c, true);
}

void api_client_cancel_queued(ApiClient *c) {
        cancel_ops(c, false);
}
