/* HTTP client: one libcurl multi handle driven by an sd-event loop. No threads, no
 * blocking calls: sockets are sd-event io sources, curl's timer is one sd-event time
 * source, finished transfers come back as completion callbacks dispatched from the loop.
 *
 * At most `concurrency` transfers are in flight; further requests wait in a FIFO queue.
 * Plain http:// is refused unless the host is a loopback address (the emulator, tests);
 * TLS peer and host verification are always on. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "macro.h"

typedef struct HttpClient HttpClient;

typedef struct HttpHeader {
        const char *name;
        const char *value;
} HttpHeader;

typedef struct HttpClientOptions {
        unsigned concurrency;         /* transfers in flight at most; 0 = CONFIG default */
        int64_t connect_timeout_ms;   /* 0 = default */
        int64_t total_timeout_ms;     /* whole transfer; 0 = default */
        const char *ca_file;          /* extra CA bundle, NULL = system store */
        size_t max_response_size;     /* body bytes; 0 = HTTP_MAX_RESPONSE_SIZE */
        const char *proxy;            /* CURLOPT_PROXY (may hold a password: copied, wiped on
                                       * free, never logged); NULL = what libcurl reads from
                                       * https_proxy/HTTPS_PROXY (http_proxy for http://) */
        const char *no_proxy;         /* hosts that go direct, comma-separated; NULL = the
                                       * environment's no_proxy/NO_PROXY. Either way loopback
                                       * and link-local are added (http_no_proxy_list) */
} HttpClientOptions;

/* One request. Everything is copied by http_client_submit(): the caller may free it
 * right after the call. */
typedef struct HttpRequest {
        const char *method;           /* "GET", "POST", "DELETE", ... */
        const char *url;              /* sent exactly as given (the signer's wire query) */
        const HttpHeader *headers;    /* extra request headers */
        size_t n_headers;
        const void *body;             /* NULL = no body */
        size_t body_len;
        bool metadata;                /* a call to the ECS metadata service: plain http to
                                       * HTTP_METADATA_HOST is allowed (http_metadata_url_check) */
        bool secret;                  /* the answer carries credentials (the metadata keys, an
                                       * IAM token): its buffer is never realloc'ed, so no
                                       * unwiped copy is left behind (every answer is wiped
                                       * when freed) */
} HttpRequest;

/* What came back. Valid only during the completion callback (copy what you keep). */
typedef struct HttpResponse {
        int error;                    /* 0 = a complete HTTP response arrived (any status);
                                       * else negative errno: -ECONNREFUSED, -ETIMEDOUT,
                                       * -ECONNRESET, -EFBIG (size cap), -EHOSTUNREACH (DNS),
                                       * -EPROTO (TLS), -ECANCELED (cancel-all), -EIO ... */
        const char *error_message;    /* one line for humans when error != 0, else NULL */
        bool sent;                    /* request bytes went out on a connection: the server
                                       * may have acted on it even if error != 0 */
        long status;                  /* HTTP status; 0 when no response */
        const char *request_id;       /* X-Request-Id, NULL when absent */
        const char *retry_after;      /* raw Retry-After, NULL when absent */
        const char *subject_token;    /* X-Subject-Token (a secret: never log), or NULL */
        const char *content_type;     /* Content-Type, NULL when absent */
        const char *date;             /* raw Date (the server's clock), NULL when absent */
        const char *body;             /* NUL-terminated for convenience; body_len excludes it */
        size_t body_len;
} HttpResponse;

/* Called once per submitted request, from the event loop (never from inside
 * http_client_submit()). May submit new requests and may call http_client_cancel_all();
 * must not free the client. */
typedef void (*http_done_cb)(HttpClient *c, const HttpResponse *r, void *userdata);

/* Attach a client to the loop e (a reference is taken). */
int http_client_new(sd_event *e, const HttpClientOptions *o, HttpClient **ret);
/* Frees everything; pending requests are dropped WITHOUT callbacks (use
 * http_client_cancel_all() first when callers need to hear about them). */
HttpClient *http_client_free(HttpClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpClient *, http_client_free);

/* Queue a request. Returns 0 (the callback will be called exactly once), or a negative
 * errno and the callback is never called: -EPERM plain http:// to a non-loopback host
 * (other than HTTP_METADATA_HOST for a request flagged metadata),
 * -EPROTONOSUPPORT not http(s), -EINVAL bad URL/arguments, -ENOMEM.
 * *ret_id (optional) identifies the request for http_client_cancel(). */
int http_client_submit(HttpClient *c, const HttpRequest *req, http_done_cb cb, void *userdata,
                       uint64_t *ret_id);

/* Cancel one request (queued or in flight): its callback runs now with -ECANCELED.
 * -ENOENT if it already finished. */
int http_client_cancel(HttpClient *c, uint64_t id);
/* Cancel every request submitted so far (shutdown): each callback runs with -ECANCELED,
 * in-flight ones with .sent telling whether they may have reached the server. */
void http_client_cancel_all(HttpClient *c);

/* Transfers on the wire / waiting for a slot. */
unsigned http_client_in_flight(const HttpClient *c);
unsigned http_client_queued(const HttpClient *c);

/* Connections curl opened so far (a keep-alive health indicator; reuse keeps it low). */
uint64_t http_client_connections_opened(const HttpClient *c);

/* The policy http_client_submit() applies to a URL, for config checks: 0 when allowed;
 * else negative errno and, if ret_message, a one-line reason (caller frees). */
int http_url_check(const char *url, char **ret_message);
/* The same for the ECS metadata service's calls (HttpRequest.metadata, the
 * metadata_endpoint key): plain http is also allowed to HTTP_METADATA_HOST, which offers
 * nothing else. Only there: the API or IAM endpoint at that address would send the
 * password or signatures in clear. */
int http_metadata_url_check(const char *url, char **ret_message);

/* The CURLOPT_NOPROXY list every request gets: configured (the no_proxy: key), else env
 * (the environment's no_proxy, else NO_PROXY), else nothing; then always
 * HTTP_NO_PROXY_ALWAYS: setting CURLOPT_NOPROXY replaces what libcurl would read from
 * the environment, so the environment's list is carried over here. "*" (every host goes
 * direct) stays alone, and is the whole list when any entry is "*": libcurl honours it
 * only as the whole list. Caller frees; NULL on ENOMEM. */
char *http_no_proxy_list(const char *configured, const char *env);
/* Loopback (an emulator, a local gateway) and link-local (the ECS metadata service,
 * which a proxy would answer with its own host's data) never go through a proxy.
 * libcurl understands address/prefix ranges only from 7.86 on (older ones compare
 * "169.254.0.0/16" as a host name and match nothing), so the addresses that matter,
 * 127.0.0.1 and the metadata service's 169.254.169.254, are also listed as they are. */
#define HTTP_NO_PROXY_ALWAYS "localhost,127.0.0.1,127.0.0.0/8,::1,169.254.169.254,169.254.0.0/16"
/* The ECS metadata service's link-local address: the one non-loopback host that its
 * calls may reach over plain http (it offers nothing else). */
#define HTTP_METADATA_HOST "169.254.169.254"

/* True for "localhost", 127.0.0.0/8 and ::1 (with or without brackets). */
bool http_host_is_loopback(const char *host);

/* RFC 9110 idempotent methods. Curl re-sends a request whose reused connection died
 * before any answer, which for a create would be a second create; so the others (POST,
 * PATCH) go on a fresh connection, except to an origin that answered over HTTP/2, where
 * they share one and their body is given to curl in a way that refuses that resend. */
bool http_method_is_idempotent(const char *method);

/* The User-Agent every request carries: "notebookd/VERSION". */
const char *http_user_agent(void);
