/* libcurl multi on sd-event (models: systemd src/shared/curl-util.c, curl
 * docs/examples/ephiperfifo.c).
 *
 * Re-entrancy rules, the reason for most of the shape below:
 *  - curl's socket and timer callbacks only touch sd-event sources (and
 *    curl_multi_assign, which curl allows there); they never call back into curl.
 *  - curl_multi_socket_action() runs only from our own sd-event handlers; finished
 *    transfers are drained with curl_multi_info_read() afterwards, and completion
 *    callbacks run from there, outside any curl callback.
 *  - http_client_submit() never touches curl: it queues and arms a defer source, so a
 *    completion callback can never run inside submit, and the queue stays FIFO. */
#include "http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>

#include "config.h"
#include "limits.h"
#include "util.h"

#ifndef NOTEBOOKD_VERSION
#define NOTEBOOKD_VERSION "0"
#endif

typedef struct HttpTransfer HttpTransfer;

struct HttpTransfer {
        HttpClient *client;
        uint64_t id;
        HttpTransfer *prev, *next;  /* in client->queue or client->running */
        bool running;

        char *method;
        char *url;
        struct curl_slist *headers;
        void *body;
        size_t body_len;
        size_t body_read;           /* bytes of body handed to curl (on_read) */

        http_done_cb cb;
        void *userdata;

        CURL *easy;                 /* only while running */
        char errbuf[CURL_ERROR_SIZE];

        char *resp;
        size_t resp_len, resp_cap;
        bool secret;                /* HttpRequest.secret: grow resp without realloc */
        bool too_large;

        char *request_id;
        char *retry_after;
        char *subject_token;        /* secret: wiped on free */
        char *content_type;
        char *date;
};

typedef struct HttpSocket HttpSocket;
struct HttpSocket {
        HttpClient *client;
        curl_socket_t fd;
        sd_event_source *source;
        HttpSocket *prev, *next;
};

typedef struct TransferList {
        HttpTransfer *head, *tail;
        unsigned n;
} TransferList;

struct HttpClient {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;     /* curl's one timer */
        sd_event_source *pump;      /* defer: move queued transfers onto the wire */

        unsigned concurrency;
        int64_t connect_timeout_ms, total_timeout_ms;
        size_t max_response_size;
        char *ca_file;
        char *proxy;                /* may hold a password: wiped on free */
        char *no_proxy;             /* http_no_proxy_list() */

        TransferList queue, running;
        HttpSocket *sockets;

        /* Reset curl easy handles kept for reuse: creating one costs more than a request. */
        CURL **pool;
        size_t n_pool;

        uint64_t next_id;
        uint64_t connections;
        bool global_init;

        /* Origins ("https://host:port") whose last answer came over HTTP/2: POSTs to them
         * may share a connection (see setup_easy). A handful: the API and IAM. */
        char *h2_origins[HTTP_MAX_H2_ORIGINS];
};

const char *http_user_agent(void) {
        return "notebookd/" NOTEBOOKD_VERSION;
}

/* ---- lists ---- */

static void list_append(TransferList *l, HttpTransfer *t) {
        t->prev = l->tail;
        t->next = NULL;
        if (l->tail)
                l->tail->next = t;
        else
                l->head = t;
        l->tail = t;
        l->n++;
}

static void list_remove(TransferList *l, HttpTransfer *t) {
        if (t->prev)
                t->prev->next = t->next;
        else
                l->head = t->next;
        if (t->next)
                t->next->prev = t->prev;
        else
                l->tail = t->prev;
        t->prev = t->next = NULL;
        l->n--;
}

bool http_method_is_idempotent(const char *method) {
        /* RFC 9110 9.2.2 */
        static const char *const idempotent[] = { "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE" };
        for (size_t i = 0; i < ELEMENTSOF(idempotent); i++)
                if (streq_ptr(method, idempotent[i]))
                        return true;
        return false;
}

/* ---- URL policy ---- */

bool http_host_is_loopback(const char *host) {
        if (!host)
                return false;
        if (strcasecmp(host, "localhost") == 0)
                return true;

        char buf[INET6_ADDRSTRLEN + 2];
        size_t len = strlen(host);
        if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
                if (len - 2 >= sizeof(buf))
                        return false;
                memcpy(buf, host + 1, len - 2);
                buf[len - 2] = '\0';
                host = buf;
        }

        struct in_addr a4;
        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6);
        return false;
}

/* True when one comma-separated entry of list is "*" (spaces around it allowed). */
static bool list_has_star(const char *list) {
        for (const char *p = list; *p;) {
                size_t len = strcspn(p, ",");
                const char *b = p, *e = p + len;
                while (b < e && *b == ' ')
                        b++;
                while (e > b && e[-1] == ' ')
                        e--;
                if (e - b == 1 && *b == '*')
                        return true;
                p += len + (p[len] == ',');
        }
        return false;
}

char *http_no_proxy_list(const char *configured, const char *env) {
        const char *base = configured ? configured : env && *env ? env : NULL;
        /* libcurl honours "*" only as the whole list: "localhost,*" would send every
         * other host to the proxy, when the operator meant none */
        if (base && list_has_star(base))
                return strdup("*");
        return xasprintf("%s%s" HTTP_NO_PROXY_ALWAYS, strempty(base), base ? "," : "");
}

static void set_message(char **ret_message, char *m) {
        if (ret_message)
                *ret_message = m;
        else
                free(m);
}

static int url_check(const char *url, bool metadata, char **ret_message) {
        if (!url || !*url) {
                set_message(ret_message, xasprintf("empty URL"));
                return -EINVAL;
        }

        CURLU *u = curl_url();
        if (!u)
                return -ENOMEM;
        char *scheme = NULL, *host = NULL;
        int r;
        _cleanup_free_ char *q = quote_for_log(url);

        /* Default scheme off: a URL without one is an error, not silently https. */
        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
                set_message(ret_message, xasprintf("invalid URL %s", strempty(q)));
                r = -EINVAL;
        } else if (strcasecmp(scheme, "https") != 0 && strcasecmp(scheme, "http") != 0) {
                set_message(ret_message, xasprintf("unsupported URL scheme in %s: only https "
                                                   "(and http to loopback) are allowed", strempty(q)));
                r = -EPROTONOSUPPORT;
        } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
                set_message(ret_message, xasprintf("URL %s has no host", strempty(q)));
                r = -EINVAL;
        } else if (strcasecmp(scheme, "https") == 0 || http_host_is_loopback(host) ||
                   (metadata && streq(host, HTTP_METADATA_HOST))) {
                /* The ECS metadata service answers plain http only, at a link-local
                 * address: its traffic never leaves the host's link. */
                r = 0;
        } else {
                /* Credentials and signatures must not cross a network in clear. */
                set_message(ret_message,
                            xasprintf("refusing plain http:// to %s: only loopback hosts "
                                      "(localhost, 127.0.0.0/8, ::1)%s may use http, use https",
                                      strempty(q),
                                      metadata ? " and the ECS metadata service (" HTTP_METADATA_HOST ")" : ""));
                r = -EPERM;
        }

        curl_free(scheme);
        curl_free(host);
        curl_url_cleanup(u);
        return r;
}

int http_url_check(const char *url, char **ret_message) {
        return url_check(url, false, ret_message);
}

int http_metadata_url_check(const char *url, char **ret_message) {
        return url_check(url, true, ret_message);
}

/* ---- transfers ---- */

static HttpTransfer *transfer_free(HttpTransfer *t) {
        if (!t)
                return NULL;
        free(t->method);
        free(t->url);
        /* Headers may hold X-Auth-Token, a body the IAM password: wipe, don't just free. */
        for (struct curl_slist *l = t->headers; l; l = l->next)
                explicit_bzero(l->data, strlen(l->data));
        curl_slist_free_all(t->headers);
        if (t->body)
                explicit_bzero(t->body, t->body_len);
        free(t->body);
        /* The answer may be the metadata service's keys or session token, or an IAM
         * token in a body: wipe every answer, whatever asked for it. */
        if (t->resp)
                explicit_bzero(t->resp, t->resp_cap);
        free(t->resp);
        free(t->request_id);
        free(t->retry_after);
        free_secret(t->subject_token);
        free(t->content_type);
        free(t->date);
        free(t);
        return NULL;
}

static char *mfree_str(char *p) {
        free(p);
        return NULL;
}

static void transfer_reset_headers(HttpTransfer *t) {
        t->request_id = mfree_str(t->request_id);
        t->retry_after = mfree_str(t->retry_after);
        free_secret(t->subject_token);
        t->subject_token = NULL;
        t->content_type = mfree_str(t->content_type);
        t->date = mfree_str(t->date);
}

static size_t on_header(char *buf, size_t size, size_t n, void *userdata) {
        HttpTransfer *t = userdata;
        size_t len = size * n;

        /* A new status line starts a new response (after "100 Continue"): forget the old. */
        if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
                transfer_reset_headers(t);
                return len;
        }

        const char *colon = memchr(buf, ':', len);
        if (!colon)
                return len;
        size_t name_len = (size_t) (colon - buf);
        const char *v = colon + 1, *end = buf + len;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
        size_t v_len = (size_t) (end - v);
        if (v_len > HTTP_MAX_HEADER_VALUE)
                return len;

        char **slot = NULL;
        if (name_len == 12 && strncasecmp(buf, "X-Request-Id", 12) == 0)
                slot = &t->request_id;
        else if (name_len == 11 && strncasecmp(buf, "Retry-After", 11) == 0)
                slot = &t->retry_after;
        else if (name_len == 15 && strncasecmp(buf, "X-Subject-Token", 15) == 0)
                slot = &t->subject_token;
        else if (name_len == 12 && strncasecmp(buf, "Content-Type", 12) == 0)
                slot = &t->content_type;
        else if (name_len == 4 && strncasecmp(buf, "Date", 4) == 0)
                slot = &t->date;
        if (!slot)
                return len;

        char *copy = strndup(v, v_len);
        if (!copy)
                return 0;   /* abort the transfer: -ENOMEM beats a silently missing header */
        if (slot == &t->subject_token)
                free_secret(*slot);
        else
                free(*slot);
        *slot = copy;
        return len;
}

static size_t on_write(char *buf, size_t size, size_t n, void *userdata) {
        HttpTransfer *t = userdata;
        size_t len = size * n;
        size_t max = t->client->max_response_size;

        if (len > max - t->resp_len) {
                /* The cap protects the daemon's memory from a broken or hostile server. */
                t->too_large = true;
                return 0;
        }
        if (t->resp_len + len + 1 > t->resp_cap) {
                size_t cap = MAX(t->resp_cap * 2, t->resp_len + len + 1);
                cap = MAX(cap, (size_t) 4096);
                cap = MIN(cap, max + 1);
                char *p;
                if (t->secret) {
                        /* realloc may move the bytes and leave the old block unwiped:
                         * copy, wipe, free instead */
                        p = malloc(cap);
                        if (!p)
                                return 0;
                        if (t->resp) {
                                memcpy(p, t->resp, t->resp_len);
                                explicit_bzero(t->resp, t->resp_cap);
                                free(t->resp);
                        }
                } else {
                        p = realloc(t->resp, cap);
                        if (!p)
                                return 0;
                }
                t->resp = p;
                t->resp_cap = cap;
        }
        memcpy(t->resp + t->resp_len, buf, len);
        t->resp_len += len;
        t->resp[t->resp_len] = '\0';
        return len;
}

static int map_curl_error(CURLcode code, bool too_large) {
        if (too_large)
                return -EFBIG;
        switch (code) {
        case CURLE_OK:
                return 0;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_SEND_FAIL_REWIND: /* a POST on a shared connection lost: see on_seek */
                return -ECONNRESET;
        case CURLE_FILESIZE_EXCEEDED:
                return -EFBIG;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CRL_BADFILE:
                return -EPROTO;
        case CURLE_UNSUPPORTED_PROTOCOL:
                return -EPROTONOSUPPORT;
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_WEIRD_SERVER_REPLY:
                return -EBADMSG;
        default:
                return -EIO;
        }
}

static void complete(HttpClient *c, HttpTransfer *t, int error, const char *message, bool sent, long status) {
        HttpResponse r = {
                .error = error,
                .error_message = error ? message : NULL,
                .sent = sent,
                .status = status,
                .request_id = t->request_id,
                .retry_after = t->retry_after,
                .subject_token = t->subject_token,
                .content_type = t->content_type,
                .date = t->date,
                .body = t->resp ? t->resp : "",
                .body_len = t->resp_len,
        };
        if (t->cb)
                t->cb(c, &r, t->userdata);
}

/* ---- which origins speak HTTP/2 ---- */

/* The length of URL's "scheme://authority" prefix. */
static size_t origin_length(const char *url) {
        const char *p = strstr(url, "://");
        p = p ? p + 3 : url;
        return (size_t) (p + strcspn(p, "/?#") - url);
}

static char **h2_origin_find(HttpClient *c, const char *url) {
        size_t n = origin_length(url);
        for (size_t i = 0; i < ELEMENTSOF(c->h2_origins); i++)
                if (c->h2_origins[i] && strlen(c->h2_origins[i]) == n &&
                    strncasecmp(c->h2_origins[i], url, n) == 0)
                        return &c->h2_origins[i];
        return NULL;
}

/* After an answer: remember whether its origin spoke HTTP/2. A server that answers in
 * HTTP/1.x again (its configuration changed) is forgotten. */
static void h2_origin_note(HttpClient *c, const char *url, bool h2) {
        char **slot = h2_origin_find(c, url);
        if (!h2) {
                if (slot)
                        *slot = mfree_str(*slot);
                return;
        }
        if (slot)
                return;
        for (size_t i = 0; i < ELEMENTSOF(c->h2_origins); i++)
                if (!c->h2_origins[i]) {
                        c->h2_origins[i] = strndup(url, origin_length(url)); /* NULL: stays unknown */
                        return;
                }
}

static void pool_put(HttpClient *c, CURL *easy) {
        if (!easy)
                return;
        if (c->n_pool < c->concurrency) {
                curl_easy_reset(easy);
                c->pool[c->n_pool++] = easy;
        } else
                curl_easy_cleanup(easy);
}

/* Take a running transfer off the wire; returns whether its request went out. */
static bool detach(HttpClient *c, HttpTransfer *t, long *ret_status) {
        long status = 0, request_size = 0, nconn = 0;
        curl_off_t uploaded = 0;

        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        /* Request bytes issued (headers): 0 when the connection never got that far, which
         * is what makes "connect failed" safe to retry and "sent, no answer" not. */
        curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &request_size);
        curl_easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &uploaded);
        curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &nconn);
        c->connections += (uint64_t) MAX(nconn, 0L);
        long version = 0;
        if (status > 0 && curl_easy_getinfo(t->easy, CURLINFO_HTTP_VERSION, &version) == CURLE_OK)
                h2_origin_note(c, t->url, version == CURL_HTTP_VERSION_2_0);

        curl_multi_remove_handle(c->multi, t->easy);
        pool_put(c, t->easy);
        t->easy = NULL;
        list_remove(&c->running, t);
        t->running = false;
        if (ret_status)
                *ret_status = status;
        return request_size > 0 || uploaded > 0;
}

static void pump(HttpClient *c);

static void finish(HttpClient *c, HttpTransfer *t, CURLcode code) {
        long status = 0;
        bool sent = detach(c, t, &status);
        int error = map_curl_error(code, t->too_large);
        _cleanup_free_ char *m = NULL;

        if (error) {
                if (t->too_large || code == CURLE_FILESIZE_EXCEEDED)
                        m = xasprintf("response larger than %zu bytes", c->max_response_size);
                else
                        m = xasprintf("%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
        }
        /* status stays as curl saw it: a status line with a broken body is still an answer. */
        complete(c, t, error, m ? m : "error", sent, status);
        transfer_free(t);
}

static void check_finished(HttpClient *c) {
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(c->multi, &left))) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                HttpTransfer *t = NULL;
                CURLcode code = msg->data.result;
                if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t) != CURLE_OK || !t)
                        continue;
                finish(c, t, code);
        }
        pump(c);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        HttpClient *c = userdata;
        int action = 0, running = 0;

        (void) s;
        if (revents & (EPOLLIN | EPOLLHUP))
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & EPOLLERR)
                action |= CURL_CSELECT_ERR;

        curl_multi_socket_action(c->multi, fd, action, &running);
        check_finished(c);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        HttpClient *c = userdata;
        int running = 0;

        (void) s;
        (void) usec;
        curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_finished(c);
        return 0;
}

static void socket_free(HttpSocket *k) {
        HttpClient *c = k->client;
        if (k->prev)
                k->prev->next = k->next;
        else
                c->sockets = k->next;
        if (k->next)
                k->next->prev = k->prev;
        sd_event_source_disable_unref(k->source);
        free(k);
}

/* curl's socket callback: only sd-event calls here (see the top of the file). */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        HttpClient *c = userp;
        HttpSocket *k = socketp;
        uint32_t events = 0;

        (void) easy;
        if (what == CURL_POLL_REMOVE) {
                if (k) {
                        curl_multi_assign(c->multi, fd, NULL);
                        socket_free(k);
                }
                return 0;
        }

        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;

        if (k) {
                if (sd_event_source_set_io_events(k->source, events) < 0 ||
                    sd_event_source_set_enabled(k->source, SD_EVENT_ON) < 0)
                        return -1;
                return 0;
        }

        k = calloc(1, sizeof(*k));
        if (!k)
                return -1;
        k->client = c;
        k->fd = fd;
        if (sd_event_add_io(c->event, &k->source, fd, events, on_io, c) < 0) {
                free(k);
                return -1;
        }
        (void) sd_event_source_set_description(k->source, "http-socket");
        k->next = c->sockets;
        if (c->sockets)
                c->sockets->prev = k;
        c->sockets = k;
        if (curl_multi_assign(c->multi, fd, k) != CURLM_OK) {
                socket_free(k);
                return -1;
        }
        return 0;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* curl's timer callback: re-arm our one time source; never call curl from here. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
        HttpClient *c = userp;

        (void) multi;
        if (timeout_ms < 0)
                return sd_event_source_set_enabled(c->timer, SD_EVENT_OFF) < 0 ? -1 : 0;

        /* Round up: firing a hair early makes curl ask for the same timer again. */
        uint64_t when = now_usec() + (uint64_t) timeout_ms * 1000ULL + 999ULL;
        if (sd_event_source_set_time(c->timer, when) < 0 ||
            sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT) < 0)
                return -1;
        return 0;
}

#define SETOPT(easy, opt, val)                                          \
        do {                                                            \
                if (curl_easy_setopt((easy), (opt), (val)) != CURLE_OK) \
                        return -EIO;                                    \
        } while (0)

/* The body of a request that must never be re-sent (POST), fed to curl piecewise so
 * that curl has to ask before sending it again. */
static size_t on_read(char *buf, size_t size, size_t n, void *userdata) {
        HttpTransfer *t = userdata;
        size_t len = MIN(size * n, t->body_len - t->body_read);
        memcpy(buf, (const char *) t->body + t->body_read, len);
        t->body_read += len;
        return len;
}

/* curl rewinds a body before sending it again, which it does on its own when a REUSED
 * connection dies before any answer byte. For a POST whose body went out that is a
 * second create if the server acted before the connection died: a crash or a reset
 * says nothing. Refusing here makes the transfer fail (CURLE_SEND_FAIL_REWIND) with .sent
 * set, so the caller settles it by listing, as for any create lost on the wire. A body
 * not yet read may be "rewound": nothing of it left.
 * The price: a graceful HTTP/2 GOAWAY does say which streams the server left untouched,
 * but libcurl 7.88 resends those through the same "connection died" path, and nothing
 * tells the two apart here (its reason is only in its verbose text). nginx sends one
 * after 1,000 requests on a connection; converging 10,000 through it, 7 to 40 creates
 * were settled by a listing instead of resent (3 runs of once, 2026-12-08). */
static int on_seek(void *userdata, curl_off_t offset, int origin) {
        HttpTransfer *t = userdata;
        if (origin == SEEK_SET && offset == 0 && t->body_read == 0)
                return CURL_SEEKFUNC_OK;
        return CURL_SEEKFUNC_CANTSEEK;
}

static int setup_easy(HttpClient *c, HttpTransfer *t, CURL *easy) {
        t->errbuf[0] = '\0';
        SETOPT(easy, CURLOPT_PRIVATE, (char *) t);
        SETOPT(easy, CURLOPT_URL, t->url);
        SETOPT(easy, CURLOPT_NOSIGNAL, 1L);
        SETOPT(easy, CURLOPT_PROTOCOLS_STR, "http,https");
        SETOPT(easy, CURLOPT_FOLLOWLOCATION, 0L);
        SETOPT(easy, CURLOPT_ERRORBUFFER, t->errbuf);
        SETOPT(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) c->connect_timeout_ms);
        SETOPT(easy, CURLOPT_TIMEOUT_MS, (long) c->total_timeout_ms);
        SETOPT(easy, CURLOPT_USERAGENT, http_user_agent());
        SETOPT(easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS);
        /* With HTTP/2, wait for a connection that can multiplex rather than open another.
         * Only for https: ALPN says at the handshake whether h2 is on; over plain http curl
         * would wait for the first whole answer and serialise the start of a batch. */
        if (strncasecmp(t->url, "https:", 6) == 0)
                SETOPT(easy, CURLOPT_PIPEWAIT, 1L);
        SETOPT(easy, CURLOPT_SSL_VERIFYPEER, 1L);
        SETOPT(easy, CURLOPT_SSL_VERIFYHOST, 2L);
        if (c->ca_file)
                SETOPT(easy, CURLOPT_CAINFO, c->ca_file);
        /* without proxy: libcurl reads https_proxy itself; NOPROXY always, for loopback */
        if (c->proxy)
                SETOPT(easy, CURLOPT_PROXY, c->proxy);
        SETOPT(easy, CURLOPT_NOPROXY, c->no_proxy);
        SETOPT(easy, CURLOPT_TCP_KEEPALIVE, 1L);
        SETOPT(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) c->max_response_size);
        SETOPT(easy, CURLOPT_WRITEFUNCTION, on_write);
        SETOPT(easy, CURLOPT_WRITEDATA, t);
        SETOPT(easy, CURLOPT_HEADERFUNCTION, on_header);
        SETOPT(easy, CURLOPT_HEADERDATA, t);
        SETOPT(easy, CURLOPT_HTTPHEADER, t->headers);

        /* curl silently re-sends a request when a REUSED connection dies before any answer
         * byte. Harmless for GET; for a create whose server acted and then lost the
         * connection it is a second create. So a non-idempotent request with a body, to an
         * origin that answered over HTTP/2, shares a connection and gets its body through
         * on_read/on_seek, which refuse that resend; any other non-idempotent request gets a
         * fresh connection, on which curl never retries. Over HTTP/1.1 the fresh connection stays (a server closing an
         * idle keep-alive connection is routine there, and each would cost a listing);
         * over HTTP/2 the creates share the connection, which saves a TCP and TLS
         * handshake per create. Either way the caller sees a lost request as a failure
         * with .sent and settles it by listing. The connection is still kept for reuse. */
        bool once_only = !http_method_is_idempotent(t->method);
        bool guarded = once_only && t->body_len > 0 && h2_origin_find(c, t->url);
        if (once_only && !guarded)
                SETOPT(easy, CURLOPT_FRESH_CONNECT, 1L);

        if (streq(t->method, "GET"))
                SETOPT(easy, CURLOPT_HTTPGET, 1L);
        else if (streq(t->method, "HEAD"))
                SETOPT(easy, CURLOPT_NOBODY, 1L);
        else {
                if (guarded) {
                        /* Only here: a body read through a callback goes out in a write of
                         * its own and needs an upload buffer per handle, which over HTTP/1.1
                         * (one write with the headers) cost a converge of 10,000 creates
                         * 0.8 s of CPU and 1 MiB (GNU time), for nothing: a fresh
                         * connection is never resent on. 16 KiB is libcurl's least. */
                        t->body_read = 0;
                        SETOPT(easy, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
                        SETOPT(easy, CURLOPT_POST, 1L);
                        SETOPT(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) t->body_len);
                        SETOPT(easy, CURLOPT_READFUNCTION, on_read);
                        SETOPT(easy, CURLOPT_READDATA, t);
                        SETOPT(easy, CURLOPT_SEEKFUNCTION, on_seek);
                        SETOPT(easy, CURLOPT_SEEKDATA, t);
                } else if (t->body || streq(t->method, "POST") || streq(t->method, "PUT")) {
                        /* The buffer lives as long as the transfer: no copy needed. */
                        SETOPT(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) t->body_len);
                        SETOPT(easy, CURLOPT_POSTFIELDS, t->body ? (char *) t->body : "");
                }
                if (!streq(t->method, "POST"))
                        SETOPT(easy, CURLOPT_CUSTOMREQUEST, t->method);
        }
        return 0;
}

static int start(HttpClient *c, HttpTransfer *t) {
        CURL *easy = c->n_pool > 0 ? c->pool[--c->n_pool] : curl_easy_init();
        if (!easy)
                return -ENOMEM;
        int r = setup_easy(c, t, easy);
        if (r < 0) {
                curl_easy_cleanup(easy);
                return r;
        }
        if (curl_multi_add_handle(c->multi, easy) != CURLM_OK) {
                curl_easy_cleanup(easy);
                return -EIO;
        }
        t->easy = easy;
        t->running = true;
        list_append(&c->running, t);
        return 0;
}

/* Move queued transfers onto the wire while slots are free. Runs from the loop only. */
static void pump(HttpClient *c) {
        while (c->queue.head && c->running.n < c->concurrency) {
                HttpTransfer *t = c->queue.head;
                list_remove(&c->queue, t);
                int r = start(c, t);
                if (r < 0) {
                        _cleanup_free_ char *m = xasprintf("cannot start request: %s", strerror(-r));
                        complete(c, t, r, m ? m : "cannot start request", false, 0);
                        transfer_free(t);
                }
        }
}

static int on_pump(sd_event_source *s, void *userdata) {
        (void) s;
        pump(userdata);
        return 0;
}

/* ---- public ---- */

int http_client_new(sd_event *e, const HttpClientOptions *o, HttpClient **ret) {
        if (!e || !ret)
                return -EINVAL;

        HttpClient *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->next_id = 1;
        c->concurrency = o && o->concurrency ? o->concurrency : CONFIG_DEFAULT_CONCURRENCY;
        c->concurrency = MIN(c->concurrency, (unsigned) CONFIG_MAX_CONCURRENCY);
        c->connect_timeout_ms = o && o->connect_timeout_ms > 0 ? o->connect_timeout_ms
                                                               : CONFIG_DEFAULT_CONNECT_TIMEOUT_MS;
        c->total_timeout_ms = o && o->total_timeout_ms > 0 ? o->total_timeout_ms
                                                           : CONFIG_DEFAULT_REQUEST_TIMEOUT_MS;
        c->max_response_size = o && o->max_response_size ? o->max_response_size : HTTP_MAX_RESPONSE_SIZE;
        int r = -ENOMEM;
        if (o && o->ca_file && !(c->ca_file = strdup(o->ca_file)))
                goto fail;
        if (o && o->proxy && !(c->proxy = strdup(o->proxy)))
                goto fail;
        const char *env_no_proxy = getenv("no_proxy");
        if (!env_no_proxy || !*env_no_proxy)
                env_no_proxy = getenv("NO_PROXY");
        c->no_proxy = http_no_proxy_list(o ? o->no_proxy : NULL, env_no_proxy);
        if (!c->no_proxy)
                goto fail;
        c->pool = calloc(c->concurrency, sizeof(CURL *));
        if (!c->pool)
                goto fail;

        r = -EIO;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                goto fail;
        c->global_init = true;
        c->multi = curl_multi_init();
        if (!c->multi)
                goto fail;

        if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) c->concurrency) != CURLM_OK ||
            /* Keep as many idle connections as we may use at once: keep-alive reuse. */
            curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long) c->concurrency) != CURLM_OK)
                goto fail;

        /* Accuracy 1 us: sd-event's default (0 = 250 ms of coalescing) would add a quarter
         * second to every transfer, since curl's timer drives each state change. */
        r = sd_event_add_time(e, &c->timer, CLOCK_MONOTONIC, UINT64_MAX, 1, on_timer, c);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(c->timer, "http-curl-timer");

        r = sd_event_add_defer(e, &c->pump, on_pump, c);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(c->pump, SD_EVENT_OFF);
        (void) sd_event_source_set_description(c->pump, "http-pump");

        *ret = c;
        return 0;
fail:
        http_client_free(c);
        return r;
}

HttpClient *http_client_free(HttpClient *c) {
        if (!c)
                return NULL;

        while (c->running.head) {
                HttpTransfer *t = c->running.head;
                detach(c, t, NULL);
                transfer_free(t);
        }
        while (c->queue.head) {
                HttpTransfer *t = c->queue.head;
                list_remove(&c->queue, t);
                transfer_free(t);
        }
        for (size_t i = 0; i < c->n_pool; i++)
                curl_easy_cleanup(c->pool[i]);
        free(c->pool);

        /* Cleanup closes cached connections and may still call our socket/timer callbacks. */
        if (c->multi)
                curl_multi_cleanup(c->multi);
        while (c->sockets)
                socket_free(c->sockets);
        sd_event_source_disable_unref(c->timer);
        sd_event_source_disable_unref(c->pump);
        if (c->global_init)
                curl_global_cleanup();
        sd_event_unref(c->event);
        free(c->ca_file);
        for (size_t i = 0; i < ELEMENTSOF(c->h2_origins); i++)
                free(c->h2_origins[i]);
        if (c->proxy)
                explicit_bzero(c->proxy, strlen(c->proxy));
        free(c->proxy);
        free(c->no_proxy);
        free(c);
        return NULL;
}

int http_client_submit(HttpClient *c, const HttpRequest *req, http_done_cb cb, void *userdata,
                       uint64_t *ret_id) {
        if (!c || !req || !req->method || !req->url || (req->body_len > 0 && !req->body))
                return -EINVAL;
        int r = url_check(req->url, req->metadata, NULL);
        if (r < 0)
                return r;

        HttpTransfer *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->client = c;
        t->cb = cb;
        t->userdata = userdata;
        t->secret = req->secret;
        t->method = strdup(req->method);
        t->url = strdup(req->url);
        if (!t->method || !t->url)
                goto oom;
        if (req->body) {
                t->body = malloc(req->body_len + 1);
                if (!t->body)
                        goto oom;
                memcpy(t->body, req->body, req->body_len);
                ((char *) t->body)[req->body_len] = '\0';
                t->body_len = req->body_len;
        }
        for (size_t i = 0; i < req->n_headers; i++) {
                _cleanup_free_ char *line = xasprintf("%s: %s", req->headers[i].name, req->headers[i].value);
                if (!line)
                        goto oom;
                struct curl_slist *l = curl_slist_append(t->headers, line);
                explicit_bzero(line, strlen(line));   /* it may carry X-Auth-Token */
                if (!l)
                        goto oom;
                t->headers = l;
        }
        /* Small JSON bodies: a 100-continue round trip only adds latency. */
        struct curl_slist *l = curl_slist_append(t->headers, "Expect:");
        if (!l)
                goto oom;
        t->headers = l;

        r = sd_event_source_set_enabled(c->pump, SD_EVENT_ONESHOT);
        if (r < 0) {
                transfer_free(t);
                return r;
        }
        t->id = c->next_id++;
        list_append(&c->queue, t);
        if (ret_id)
                *ret_id = t->id;
        return 0;
oom:
        transfer_free(t);
        return -ENOMEM;
}

static HttpTransfer *find(TransferList *l, uint64_t id) {
        for (HttpTransfer *t = l->head; t; t = t->next)
                if (t->id == id)
                        return t;
        return NULL;
}

static void cancel_one(HttpClient *c, HttpTransfer *t) {
        bool sent = false;
        if (t->running)
                sent = detach(c, t, NULL);
        else
                list_remove(&c->queue, t);
        complete(c, t, -ECANCELED, "request cancelled", sent, 0);
        transfer_free(t);
}

int http_client_cancel(HttpClient *c, uint64_t id) {
        if (!c)
                return -EINVAL;
        HttpTransfer *t = find(&c->running, id);
        if (!t)
                t = find(&c->queue, id);
        if (!t)
                return -ENOENT;
        cancel_one(c, t);
        if (c->queue.head)
                (void) sd_event_source_set_enabled(c->pump, SD_EVENT_ONESHOT);
        return 0;
}

void http_client_cancel_all(HttpClient *c) {
        if (!c)
                return;
        /* Callbacks may submit new requests meanwhile: cancel only ids up to now. */
        uint64_t last = c->next_id;
        for (;;) {
                HttpTransfer *t = c->running.head;
                while (t && t->id >= last)
                        t = t->next;
                if (!t) {
                        t = c->queue.head;
                        while (t && t->id >= last)
                                t = t->next;
                }
                if (!t)
                        break;
                cancel_one(c, t);
        }
}

unsigned http_client_in_flight(const HttpClient *c) {
        return c ? c->running.n : 0;
}

unsigned http_client_queued(const HttpClient *c) {
        return c ? c->queue.n : 0;
}

uint64_t http_client_connections_opened(const HttpClient *c) {
        return c ? c->connections : 0;
}
