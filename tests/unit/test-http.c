/* lib/http.c against a real loopback HTTP server running on the same sd_event loop:
 * the loop is run until the awaited callback fires, never slept on. lib/http.c is
 * included, not linked, so a test can mark an origin as speaking HTTP/2
 * (h2_origin_note): the loopback server speaks HTTP/1.1 only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <malloc.h>

#include "../../lib/http.c"
#include "loopback-server.h"
#include "util.h"

/* LDFLAGS: -Wl,--wrap=free -Wl,--wrap=realloc */
/* While `watched` is set, every block freed (or given up by realloc) is searched for it:
 * an answer carrying credentials must leave no unwiped copy behind. realloc is made to
 * move always, as it may: the old block is then freed as it was. */
static const char *watched;
static unsigned n_unwiped;
void __real_free(void *p);
void *__real_realloc(void *p, size_t n);
void __wrap_free(void *p);
void *__wrap_realloc(void *p, size_t n);
static void check_block(void *p) {
        if (watched && p && memmem(p, malloc_usable_size(p), watched, strlen(watched)))
                n_unwiped++;
}
void __wrap_free(void *p) {
        check_block(p);
        __real_free(p);
}
void *__wrap_realloc(void *p, size_t n) {
        if (!watched || !p)
                return __real_realloc(p, n);
        void *q = malloc(n);
        if (!q)
                return NULL;
        memcpy(q, p, MIN(malloc_usable_size(p), n));
        check_block(p);
        __real_free(p);
        return q;
}

/* A safety net only (no test measures time): fail instead of hanging forever when an
 * awaited event never comes. */
#define IDLE_LIMIT_USEC (120ULL * 1000000ULL)

typedef struct Result {
        bool done;
        int calls;
        int error;
        bool sent;
        long status;
        char *body;
        size_t body_len;
        char *request_id;
        char *retry_after;
        char *subject_token;
        char *message;
} Result;

static void result_done(Result *r) {
        free(r->body);
        free(r->request_id);
        free(r->retry_after);
        free(r->subject_token);
        free(r->message);
        memset(r, 0, sizeof(*r));
}

static void on_done(HttpClient *c, const HttpResponse *resp, void *userdata) {
        Result *r = userdata;
        (void) c;
        r->calls++;
        r->done = true;
        r->error = resp->error;
        r->sent = resp->sent;
        r->status = resp->status;
        r->body = strndup(resp->body, resp->body_len);
        r->body_len = resp->body_len;
        r->request_id = xstrdup(resp->request_id);
        r->retry_after = xstrdup(resp->retry_after);
        r->subject_token = xstrdup(resp->subject_token);
        r->message = xstrdup(resp->error_message);
}

static void run_until(sd_event *e, const bool *flag) {
        while (!*flag) {
                int r = sd_event_run(e, IDLE_LIMIT_USEC);
                assert_true(r > 0);
        }
}

static void run_until_pending(sd_event *e, LsServer *s, unsigned n) {
        while (s->pending < n) {
                int r = sd_event_run(e, IDLE_LIMIT_USEC);
                assert_true(r > 0);
        }
}

typedef struct Fixture {
        sd_event *event;
        LsServer *server;
        HttpClient *client;
        char url[128];
        /* what the handler saw last */
        char *method, *target, *user_agent, *x_test, *body;
        enum { H_ECHO, H_HOLD, H_DROP, H_BIG, H_BIG_CHUNKED, H_DROP_POST, H_SECRET } mode;
        unsigned posts;
        size_t big_size;
} Fixture;

static void handler(LsServer *s, LsConn *conn, const LsRequest *req, void *userdata) {
        Fixture *f = userdata;
        (void) s;
        free(f->method);
        free(f->target);
        free(f->user_agent);
        free(f->x_test);
        free(f->body);
        f->method = strdup(req->method);
        f->target = strdup(req->target);
        f->user_agent = xstrdup(ls_header(req, "User-Agent"));
        f->x_test = xstrdup(ls_header(req, "X-Test"));
        f->body = strndup(req->body, req->body_len);

        if (streq(req->method, "POST"))
                f->posts++;
        switch (f->mode) {
        case H_DROP_POST:
                if (streq(req->method, "POST")) {
                        ls_drop(conn);
                        break;
                }
                /* fall through */
        case H_ECHO:
                ls_reply_str(conn, 200,
                             "X-Request-Id: req-123\r\nRetry-After: 7\r\nX-Subject-Token: tok-abc\r\n",
                             "{\"ok\":true}");
                break;
        case H_HOLD:
                break;
        case H_DROP:
                ls_drop(conn);
                break;
        case H_BIG: {
                char *b = malloc(f->big_size);
                memset(b, 'x', f->big_size);
                ls_reply(conn, 200, NULL, b, f->big_size);
                free(b);
                break;
        }
        case H_SECRET: {
                /* "SECRET-MARKER" then 30000 bytes, the marker split across two chunks:
                 * only the client's decoded answer holds it whole, and its buffer grows
                 * after it arrived */
                size_t pad = 30000;
                char *msg = malloc(pad + 256);
                size_t hl = (size_t) snprintf(msg, 256,
                                              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                              "9\r\nSECRET-MA\r\n%zx\r\nRKER",
                                              pad + 4);
                memset(msg + hl, 'z', pad);
                memcpy(msg + hl + pad, "\r\n0\r\n\r\n", 7);
                ls_reply_raw(conn, msg, hl + pad + 7);
                free(msg);
                break;
        }
        case H_BIG_CHUNKED: {
                /* No Content-Length: only the write callback can notice the size. */
                size_t hl = 0;
                char *msg = malloc(f->big_size + 256);
                hl = (size_t) snprintf(msg, 256, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n",
                                       f->big_size);
                memset(msg + hl, 'y', f->big_size);
                memcpy(msg + hl + f->big_size, "\r\n0\r\n\r\n", 7);
                ls_reply_raw(conn, msg, hl + f->big_size + 7);
                free(msg);
                break;
        }
        }
}

static Fixture *fixture_new(const HttpClientOptions *o) {
        Fixture *f = calloc(1, sizeof(*f));
        assert_int_equal(sd_event_new(&f->event), 0);
        f->server = ls_new(f->event, handler, f);
        snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", f->server->port);
        assert_int_equal(http_client_new(f->event, o, &f->client), 0);
        return f;
}

static void fixture_free(Fixture *f) {
        http_client_free(f->client);
        ls_free(f->server);
        sd_event_unref(f->event);
        free(f->method);
        free(f->target);
        free(f->user_agent);
        free(f->x_test);
        free(f->body);
        free(f);
}

static int submit_get(Fixture *f, const char *path, Result *r) {
        char url[256];
        snprintf(url, sizeof(url), "%s%s", f->url, path);
        HttpRequest req = { .method = "GET", .url = url };
        return http_client_submit(f->client, &req, on_done, r, NULL);
}

/* ---- URL policy ---- */

/* The NOPROXY list: the config's, else the environment's (CURLOPT_NOPROXY replaces what
 * libcurl would read), and loopback and link-local always; "*" alone stays alone. */
static void test_no_proxy_list(void **state) {
        (void) state;
        static const struct {
                const char *configured, *env, *want;
        } cases[] = {
                { NULL, NULL, HTTP_NO_PROXY_ALWAYS },
                { NULL, "", HTTP_NO_PROXY_ALWAYS },
                { NULL, "corp.example", "corp.example," HTTP_NO_PROXY_ALWAYS },
                { "a.example,b.example", "corp.example", "a.example,b.example," HTTP_NO_PROXY_ALWAYS },
                { NULL, "*", "*" },
                { "*", "corp.example", "*" },
                /* "*" among others (the environment's list is not checked like the
                 * config's): every host direct, as meant, not "*" taken literally */
                { NULL, "corp.example,*", "*" },
                { NULL, "corp.example, * ,x.example", "*" },
                { "a.example,*", NULL, "*" },
                { NULL, "*.corp.example", "*.corp.example," HTTP_NO_PROXY_ALWAYS },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *l = http_no_proxy_list(cases[i].configured, cases[i].env);
                assert_non_null(l);
                assert_string_equal(l, cases[i].want);
        }
        /* the literal addresses too: libcurl < 7.86 ignores the ranges */
        assert_string_equal(HTTP_NO_PROXY_ALWAYS,
                            "localhost,127.0.0.1,127.0.0.0/8,::1,169.254.169.254,169.254.0.0/16");
}

static void test_url_policy(void **state) {
        (void) state;
        char *m = NULL;

        assert_int_equal(http_url_check("https://modelarts.cn-north-4.myhuaweicloud.com/v1", NULL), 0);
        assert_int_equal(http_url_check("http://127.0.0.1:8080/x", NULL), 0);
        assert_int_equal(http_url_check("http://127.200.3.4/x", NULL), 0);
        assert_int_equal(http_url_check("http://localhost:1/", NULL), 0);
        assert_int_equal(http_url_check("http://LOCALHOST/", NULL), 0);
        /* the ECS metadata service: plain http at its link-local address, only there and
         * only for its calls (an API or IAM endpoint there would get secrets in clear) */
        assert_int_equal(http_metadata_url_check("http://169.254.169.254/openstack/latest/securitykey", NULL), 0);
        assert_int_equal(http_metadata_url_check("https://metadata.example/", NULL), 0);
        assert_int_equal(http_metadata_url_check("http://127.0.0.1:9/", NULL), 0);
        assert_int_equal(http_metadata_url_check("http://169.254.169.253/", NULL), -EPERM);
        assert_int_equal(http_metadata_url_check("http://169.254.169.254.example.com/", NULL), -EPERM);
        assert_int_equal(http_url_check("http://169.254.169.254/v3/auth/tokens", &m), -EPERM);
        assert_non_null(strstr(m, "loopback"));
        free(m);
        m = NULL;
        assert_int_equal(http_metadata_url_check("http://10.0.0.1/", &m), -EPERM);
        assert_non_null(strstr(m, "metadata service"));
        free(m);
        m = NULL;
        assert_int_equal(http_url_check("http://[::1]:9/", NULL), 0);

        assert_int_equal(http_url_check("http://modelarts.cn-north-4.myhuaweicloud.com/", &m), -EPERM);
        assert_non_null(m);
        assert_non_null(strstr(m, "http://"));
        assert_non_null(strstr(m, "loopback"));
        free(m);
        assert_int_equal(http_url_check("http://10.0.0.1/", NULL), -EPERM);
        assert_int_equal(http_url_check("http://128.0.0.1/", NULL), -EPERM);
        assert_int_equal(http_url_check("http://localhost.evil.example/", NULL), -EPERM);
        assert_int_equal(http_url_check("http://[::2]/", NULL), -EPERM);
        assert_int_equal(http_url_check("ftp://127.0.0.1/", NULL), -EPROTONOSUPPORT);
        assert_int_equal(http_url_check("file:///etc/passwd", NULL), -EPROTONOSUPPORT);
        m = NULL;
        assert_int_equal(http_url_check("", &m), -EINVAL);
        free(m);

        assert_true(http_host_is_loopback("127.0.0.1"));
        assert_true(http_host_is_loopback("::1"));
        assert_true(http_host_is_loopback("[::1]"));
        assert_false(http_host_is_loopback("0.0.0.0"));
        assert_false(http_host_is_loopback("example.com"));
        assert_false(http_host_is_loopback(NULL));
}

static void test_submit_refuses_plain_http_remote(void **state) {
        (void) state;
        Fixture *f = fixture_new(NULL);
        Result r = { 0 };
        HttpRequest req = { .method = "GET", .url = "http://example.com/" };
        assert_int_equal(http_client_submit(f->client, &req, on_done, &r, NULL), -EPERM);
        assert_int_equal(http_client_queued(f->client), 0);
        assert_int_equal(r.calls, 0);
        fixture_free(f);
}

/* Plain http to the metadata address: only for requests flagged metadata. */
static void test_submit_metadata_host(void **state) {
        (void) state;
        Fixture *f = fixture_new(NULL);
        Result r = { 0 };
        HttpRequest req = { .method = "GET", .url = "http://169.254.169.254/openstack/latest/securitykey" };
        assert_int_equal(http_client_submit(f->client, &req, on_done, &r, NULL), -EPERM);
        assert_int_equal(http_client_queued(f->client), 0);
        req.metadata = true;
        uint64_t id;
        assert_int_equal(http_client_submit(f->client, &req, on_done, &r, &id), 0);
        assert_int_equal(http_client_cancel(f->client, id), 0);   /* never sent */
        assert_int_equal(r.error, -ECANCELED);
        result_done(&r);
        fixture_free(f);
}

/* An answer flagged secret leaves no copy unwiped: not where its buffer grew, not when
 * the transfer is freed. */
static void test_secret_answer_wiped(void **state) {
        (void) state;
        Fixture *f = fixture_new(NULL);
        f->mode = H_SECRET;
        char url[256];
        snprintf(url, sizeof(url), "%s/openstack/latest/securitykey", f->url);
        HttpRequest req = { .method = "GET", .url = url, .secret = true };
        Result r = { 0 };
        n_unwiped = 0;
        watched = "SECRET-MARKER";
        assert_int_equal(http_client_submit(f->client, &req, on_done, &r, NULL), 0);
        run_until(f->event, &r.done);
        watched = NULL;
        assert_int_equal(r.error, 0);
        assert_int_equal(r.body_len, 13 + 30000);
        assert_memory_equal(r.body, "SECRET-MARKERzzz", 16);
        assert_int_equal(n_unwiped, 0);
        result_done(&r);
        fixture_free(f);
}

/* ---- exchange ---- */

static void test_get_and_headers(void **state) {
        (void) state;
        Fixture *f = fixture_new(NULL);
        Result r = { 0 };
        char url[256];
        snprintf(url, sizeof(url), "%s/v1/p/x?a=1&b=2", f->url);
        HttpHeader h[] = { { "X-Test", "hello" } };
        HttpRequest req = { .method = "GET", .url = url, .headers = h, .n_headers = 1 };

        assert_int_equal(http_client_submit(f->client, &req, on_done, &r, NULL), 0);
        /* Never called from inside submit. */
        assert_false(r.done);
        run_until(f->event, &r.done);

        assert_int_equal(r.calls, 1);
        assert_int_equal(r.error, 0);
        assert_int_equal(r.status, 200);
        assert_true(r.sent);
        assert_string_equal(r.body, "{\"ok\":true}");
        assert_string_equal(r.request_id, "req-123");
        assert_string_equal(r.retry_after, "7");
        assert_string_equal(r.subject_token, "tok-abc");
        assert_null(r.message);
        assert_string_equal(f->method, "GET");
        assert_string_equal(f->target, "/v1/p/x?a=1&b=2");
        assert_string_equal(f->x_test, "hello");
        assert_string_equal(f->user_agent, "notebookd/" NOTEBOOKD_VERSION);
        assert_string_equal(http_user_agent(), "notebookd/" NOTEBOOKD_VERSION);
        result_done(&r);
        fixture_free(f);
}

static void test_methods_and_body(void **state) {
        (void) state;
        Fixture *f = fixture_new(NULL);
        const char *methods[] = { "POST", "DELETE", "PUT" };
        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                Result r = { 0 };
                char url[256];
                snprintf(url, sizeof(url), "%s/m", f->url);
                const char *body = "{\"name\":\"a b\"}";
                HttpRequest req = { .method = methods[i], .url = url, .body = body, .body_len = strlen(body) };
                assert_int_equal(http_client_submit(f->client, &req, on_done, &r, NULL), 0);
                run_until(f->event, &r.done);
                assert_int_equal(r.error, 0);
                assert_string_equal(f->method, methods[i]);
                assert_string_equal(f->body, body);
                result_done(&r);
        }
        /* DELETE without a body */
        Result r = { 0 };
        char url[256];
        snprintf(url, sizeof(url), "%s/d", f->url);
        HttpRequest req = { .method = "DELETE", .url = url };
        assert_int_equal(http_client_submit(f->client, &req, on_done, &r, NULL), 0);
        run_until(f->event, &r.done);
        assert_int_equal(r.error, 0);
        assert_string_equal(f->method, "DELETE");
        assert_string_equal(f->body, "");
        result_done(&r);
        fixture_free(f);
}

/* ---- the queue: concurrency cap and keep-alive ---- */

static void test_concurrency_cap(void **state) {
        (void) state;
        HttpClientOptions o = { .concurrency = 3 };
        Fixture *f = fixture_new(&o);
        Result r[10] = { 0 };
        f->mode = H_HOLD;

        for (size_t i = 0; i < ELEMENTSOF(r); i++)
                assert_int_equal(submit_get(f, "/c", &r[i]), 0);
        assert_int_equal(http_client_queued(f->client), 10);
        assert_int_equal(http_client_in_flight(f->client), 0);

        /* The server holds every answer: the client must stop at 3 on the wire. */
        run_until_pending(f->event, f->server, 3);
        assert_int_equal(f->server->pending, 3);
        assert_int_equal(http_client_in_flight(f->client), 3);
        assert_int_equal(http_client_queued(f->client), 7);

        /* Answer in batches: each time the server holds all it may get, release them. */
        unsigned answered = 0;
        while (answered < ELEMENTSOF(r)) {
                unsigned expect = MIN(3u, (unsigned) ELEMENTSOF(r) - answered);
                run_until_pending(f->event, f->server, expect);
                assert_true(http_client_in_flight(f->client) <= 3);
                LsConn *c;
                while ((c = ls_first_pending(f->server))) {
                        ls_reply_str(c, 200, NULL, "{}");
                        answered++;
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(r); i++) {
                run_until(f->event, &r[i].done);
                assert_int_equal(r[i].error, 0);
                assert_int_equal(r[i].calls, 1);
                result_done(&r[i]);
        }
        /* Never more than 3 at once, and HTTP/1.1 keep-alive: 3 connections for 10 requests. */
        assert_int_equal(f->server->max_pending, 3);
        assert_int_equal(f->server->requests, 10);
        assert_int_equal(f->server->connections_accepted, 3);
        assert_int_equal(http_client_connections_opened(f->client), 3);
        assert_int_equal(http_client_in_flight(f->client), 0);
        fixture_free(f);
}

static void test_keepalive_reuse(void **state) {
        (void) state;
        HttpClientOptions o = { .concurrency = 4 };
        Fixture *f = fixture_new(&o);
        for (int i = 0; i < 8; i++) {
                Result r = { 0 };
                assert_int_equal(submit_get(f, "/k", &r), 0);
                run_until(f->event, &r.done);
                assert_int_equal(r.error, 0);
                result_done(&r);
        }
        assert_int_equal(f->server->requests, 8);
        assert_int_equal(f->server->connections_accepted, 1);
        assert_int_equal(http_client_connections_opened(f->client), 1);
        fixture_free(f);
}

/* ---- failures ---- */

static void test_response_size_cap(void **state) {
        (void) state;
        HttpClientOptions o = { .max_response_size = 1000 };
        Fixture *f = fixture_new(&o);

        /* exactly the cap: fine */
        Result r = { 0 };
        f->mode = H_BIG;
        f->big_size = 1000;
        assert_int_equal(submit_get(f, "/b", &r), 0);
        run_until(f->event, &r.done);
        assert_int_equal(r.error, 0);
        assert_int_equal(r.body_len, 1000);
        result_done(&r);

        /* over it, announced by Content-Length */
        f->big_size = 5000;
        assert_int_equal(submit_get(f, "/b", &r), 0);
        run_until(f->event, &r.done);
        assert_int_equal(r.error, -EFBIG);
        assert_non_null(strstr(r.message, "1000"));
        result_done(&r);

        /* over it, chunked: caught by the write callback */
        f->mode = H_BIG_CHUNKED;
        f->big_size = 3000;
        assert_int_equal(submit_get(f, "/b", &r), 0);
        run_until(f->event, &r.done);
        assert_int_equal(r.error, -EFBIG);
        assert_true(r.body_len <= 1000);
        result_done(&r);

        /* chunked under the cap still works */
        f->big_size = 10;
        assert_int_equal(submit_get(f, "/b", &r), 0);
        run_until(f->event, &r.done);
        assert_int_equal(r.error, 0);
        assert_string_equal(r.body, "yyyyyyyyyy");
        result_done(&r);
        fixture_free(f);
}

static void test_timeout_after_send(void **state) {
        (void) state;
        HttpClientOptions o = { .total_timeout_ms = 200 };
        Fixture *f = fixture_new(&o);
        Result r = { 0 };
        f->mode = H_HOLD;
        assert_int_equal(submit_get(f, "/slow", &r), 0);
        run_until(f->event, &r.done);
        assert_int_equal(r.error, -ETIMEDOUT);
        assert_int_equal(r.status, 0);
        /* The server got the request: the outcome is unknown, not "never sent". */
        assert_true(r.sent);
        assert_int_equal(f->server->requests, 1);
        assert_non_null(r.message);
        result_done(&r);
        fixture_free(f);
}

static void test_connection_refused(void **state) {
        (void) state;
        Fixture *f = fixture_new(NULL);
        Result r = { 0 };
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/x", ls_dead_port());
        HttpRequest req = { .method = "POST", .url = url, .body = "{}", .body_len = 2 };
        assert_int_equal(http_client_submit(f->client, &req, on_done, &r, NULL), 0);
        assert_false(r.done);
        run_until(f->event, &r.done);
        assert_int_equal(r.error, -ECONNREFUSED);
        assert_false(r.sent);   /* safe to retry */
        assert_int_equal(r.status, 0);
        assert_non_null(r.message);
        result_done(&r);
        fixture_free(f);
}

/* https to a server that does not speak TLS: a handshake failure, nothing sent; and a
 * CA file that does not exist is an error, never a silent fallback to no verification. */
static void test_tls_failures(void **state) {
        (void) state;
        for (int i = 0; i < 2; i++) {
                HttpClientOptions o = { .ca_file = i ? "/nonexistent/ca.pem" : NULL };
                Fixture *f = fixture_new(&o);
                Result r = { 0 };
                char url[128];
                snprintf(url, sizeof(url), "https://127.0.0.1:%u/x", f->server->port);
                HttpRequest req = { .method = "POST", .url = url, .body = "{}", .body_len = 2 };
                assert_int_equal(http_client_submit(f->client, &req, on_done, &r, NULL), 0);
                run_until(f->event, &r.done);
                if (r.error != -EPROTO)
                        fail_msg("%d %s sent=%d", r.error, strempty(r.message), r.sent);
                assert_false(r.sent);
                assert_int_equal(r.status, 0);
                assert_int_equal(f->server->requests, 0);
                result_done(&r);
                fixture_free(f);
        }
}

static void test_dropped_after_send(void **state) {
        (void) state;
        Fixture *f = fixture_new(NULL);
        Result r = { 0 };
        f->mode = H_DROP;
        char url[256];
        snprintf(url, sizeof(url), "%s/create", f->url);
        HttpRequest req = { .method = "POST", .url = url, .body = "{\"a\":1}", .body_len = 7 };
        assert_int_equal(http_client_submit(f->client, &req, on_done, &r, NULL), 0);
        run_until(f->event, &r.done);
        assert_int_equal(r.error, -ECONNRESET);
        assert_true(r.sent);
        assert_int_equal(f->server->requests, 1);
        result_done(&r);
        fixture_free(f);
}

/* A POST whose connection dies before any answer must not be re-sent by curl behind our
 * back (that would be a second create): it never rides a reused connection. */
static void test_post_never_resent(void **state) {
        (void) state;
        HttpClientOptions o = { .concurrency = 1 };
        Fixture *f = fixture_new(&o);
        Result r = { 0 };
        f->mode = H_DROP_POST;

        assert_int_equal(submit_get(f, "/warm", &r), 0);   /* leaves a keep-alive connection */
        run_until(f->event, &r.done);
        assert_int_equal(r.error, 0);
        result_done(&r);

        char url[256];
        snprintf(url, sizeof(url), "%s/create", f->url);
        HttpRequest req = { .method = "POST", .url = url, .body = "{}", .body_len = 2 };
        assert_int_equal(http_client_submit(f->client, &req, on_done, &r, NULL), 0);
        run_until(f->event, &r.done);
        assert_int_equal(r.error, -ECONNRESET);
        assert_true(r.sent);
        assert_int_equal(f->posts, 1);
        assert_int_equal(f->server->connections_accepted, 2);
        result_done(&r);

        /* GETs still reuse connections */
        assert_int_equal(submit_get(f, "/a", &r), 0);
        run_until(f->event, &r.done);
        result_done(&r);
        assert_int_equal(submit_get(f, "/b", &r), 0);
        run_until(f->event, &r.done);
        assert_int_equal(r.error, 0);
        result_done(&r);
        assert_true(f->server->connections_accepted <= 3);

        assert_true(http_method_is_idempotent("GET"));
        assert_true(http_method_is_idempotent("DELETE"));
        assert_false(http_method_is_idempotent("POST"));
        assert_false(http_method_is_idempotent("PATCH"));
        fixture_free(f);
}

/* A POST to an origin known to speak HTTP/2 shares a kept connection; when that
 * connection dies before any answer, curl wants to send the body again, and on_seek
 * refuses: the caller sees the loss (.sent), the server saw the POST once. The loopback
 * server speaks HTTP/1.1, where curl's resend on a dead reused connection is the same. */
static void test_post_on_shared_connection_never_resent(void **state) {
        (void) state;
        HttpClientOptions o = { .concurrency = 1 };
        Fixture *f = fixture_new(&o);
        Result r = { 0 };

        assert_int_equal(submit_get(f, "/warm", &r), 0);   /* leaves a keep-alive connection */
        run_until(f->event, &r.done);
        assert_int_equal(r.error, 0);
        result_done(&r);
        /* Answered over HTTP/1.1: not an HTTP/2 origin, and the next POST goes fresh. */
        assert_null(h2_origin_find(f->client, f->url));
        h2_origin_note(f->client, f->url, true);
        assert_non_null(h2_origin_find(f->client, f->url));

        char url[256];
        snprintf(url, sizeof(url), "%s/create", f->url);
        HttpRequest req = { .method = "POST", .url = url, .body = "{\"name\":\"a\"}", .body_len = 12 };
        assert_int_equal(http_client_submit(f->client, &req, on_done, &r, NULL), 0);
        run_until(f->event, &r.done);
        assert_int_equal(r.error, 0);           /* answered on the shared connection */
        assert_string_equal(f->body, "{\"name\":\"a\"}");
        assert_int_equal(f->server->connections_accepted, 1);
        result_done(&r);
        /* That answer came over HTTP/1.1: the origin is unknown again (a server whose
         * configuration changed), so mark it once more for the loss below. */
        assert_null(h2_origin_find(f->client, f->url));
        h2_origin_note(f->client, f->url, true);

        f->mode = H_DROP_POST;
        assert_int_equal(http_client_submit(f->client, &req, on_done, &r, NULL), 0);
        run_until(f->event, &r.done);
        assert_int_equal(r.error, -ECONNRESET);
        assert_true(r.sent);
        assert_int_equal(f->posts, 2);   /* not resent */
        /* It rode the kept connection; curl then opened another to send it again, and
         * gave up when on_seek refused to rewind the body. */
        assert_int_equal(f->server->connections_accepted, 2);
        result_done(&r);
        fixture_free(f);
}

static void test_origin_length(void **state) {
        (void) state;
        assert_int_equal(origin_length("https://h:1/v1/p?x=1"), strlen("https://h:1"));
        assert_int_equal(origin_length("https://[::1]:8/"), strlen("https://[::1]:8"));
        assert_int_equal(origin_length("http://h?q"), strlen("http://h"));
        assert_int_equal(origin_length("http://h"), strlen("http://h"));
}

static void test_cancel_all(void **state) {
        (void) state;
        HttpClientOptions o = { .concurrency = 2 };
        Fixture *f = fixture_new(&o);
        Result r[5] = { 0 };
        f->mode = H_HOLD;
        for (size_t i = 0; i < ELEMENTSOF(r); i++)
                assert_int_equal(submit_get(f, "/h", &r[i]), 0);
        run_until_pending(f->event, f->server, 2);
        assert_int_equal(http_client_in_flight(f->client), 2);
        assert_int_equal(http_client_queued(f->client), 3);

        http_client_cancel_all(f->client);
        unsigned sent = 0;
        for (size_t i = 0; i < ELEMENTSOF(r); i++) {
                assert_int_equal(r[i].calls, 1);
                assert_int_equal(r[i].error, -ECANCELED);
                sent += r[i].sent;
                result_done(&r[i]);
        }
        assert_int_equal(sent, 2);   /* the two on the wire had reached the server */
        assert_int_equal(http_client_in_flight(f->client), 0);
        assert_int_equal(http_client_queued(f->client), 0);
        fixture_free(f);
}

static void test_cancel_one(void **state) {
        (void) state;
        HttpClientOptions o = { .concurrency = 1 };
        Fixture *f = fixture_new(&o);
        Result a = { 0 }, b = { 0 };
        uint64_t id_b = 0;
        char url[256];
        snprintf(url, sizeof(url), "%s/x", f->url);
        HttpRequest req = { .method = "GET", .url = url };
        assert_int_equal(http_client_submit(f->client, &req, on_done, &a, NULL), 0);
        assert_int_equal(http_client_submit(f->client, &req, on_done, &b, &id_b), 0);
        assert_int_equal(http_client_cancel(f->client, id_b), 0);
        assert_int_equal(b.error, -ECANCELED);
        assert_false(b.sent);
        assert_int_equal(http_client_cancel(f->client, id_b), -ENOENT);
        run_until(f->event, &a.done);
        assert_int_equal(a.error, 0);
        assert_int_equal(f->server->requests, 1);
        result_done(&a);
        result_done(&b);
        fixture_free(f);
}

/* Freeing with transfers queued and on the wire drops them without callbacks or leaks. */
static void test_free_with_pending(void **state) {
        (void) state;
        HttpClientOptions o = { .concurrency = 1 };
        Fixture *f = fixture_new(&o);
        Result r[3] = { 0 };
        f->mode = H_HOLD;
        for (size_t i = 0; i < ELEMENTSOF(r); i++)
                assert_int_equal(submit_get(f, "/h", &r[i]), 0);
        run_until_pending(f->event, f->server, 1);
        f->client = http_client_free(f->client);
        for (size_t i = 0; i < ELEMENTSOF(r); i++)
                assert_int_equal(r[i].calls, 0);
        fixture_free(f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_submit_metadata_host),
                cmocka_unit_test(test_secret_answer_wiped),
                cmocka_unit_test(test_url_policy),
                cmocka_unit_test(test_no_proxy_list),
                cmocka_unit_test(test_submit_refuses_plain_http_remote),
                cmocka_unit_test(test_get_and_headers),
                cmocka_unit_test(test_methods_and_body),
                cmocka_unit_test(test_concurrency_cap),
                cmocka_unit_test(test_keepalive_reuse),
                cmocka_unit_test(test_post_on_shared_connection_never_resent),
                cmocka_unit_test(test_origin_length),
                cmocka_unit_test(test_response_size_cap),
                cmocka_unit_test(test_timeout_after_send),
                cmocka_unit_test(test_connection_refused),
                cmocka_unit_test(test_tls_failures),
                cmocka_unit_test(test_dropped_after_send),
                cmocka_unit_test(test_post_never_resent),
                cmocka_unit_test(test_cancel_all),
                cmocka_unit_test(test_cancel_one),
                cmocka_unit_test(test_free_with_pending),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
