/* A tiny HTTP/1.1 server on 127.0.0.1 for unit tests, driven by the same sd_event loop
 * as the client under test (no threads, no sleeps): each request is handed to a
 * handler that replies now, later (held), or drops the connection. Keep-alive like a
 * real server, so connection reuse is observable. Header-only, for test-http.c and
 * test-api.c. */
#pragma once

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#define LS_MAX_HEADERS 64

typedef struct LsServer LsServer;
typedef struct LsConn LsConn;

typedef struct LsRequest {
        char *method;
        char *target;           /* path and query as sent */
        char *names[LS_MAX_HEADERS];
        char *values[LS_MAX_HEADERS];
        size_t n_headers;
        char *body;
        size_t body_len;
} LsRequest;

typedef void (*ls_handler)(LsServer *s, LsConn *conn, const LsRequest *req, void *userdata);

struct LsConn {
        LsServer *server;
        int fd;
        sd_event_source *io;
        char *in;
        size_t in_len, in_cap;
        char *out;
        size_t out_len, out_off;
        bool pending;           /* a request was handed out and not answered yet */
        bool close_after_write;
        LsConn *next;
};

struct LsServer {
        sd_event *event;
        int fd;
        uint16_t port;
        sd_event_source *io;
        ls_handler handler;
        void *userdata;
        LsConn *conns;
        unsigned connections_accepted;
        unsigned requests;
        unsigned pending, max_pending;
};

static inline const char *ls_header(const LsRequest *r, const char *name) {
        for (size_t i = 0; i < r->n_headers; i++)
                if (strcasecmp(r->names[i], name) == 0)
                        return r->values[i];
        return NULL;
}

static inline void ls_request_done(LsRequest *r) {
        free(r->method);
        free(r->target);
        for (size_t i = 0; i < r->n_headers; i++) {
                free(r->names[i]);
                free(r->values[i]);
        }
        free(r->body);
        memset(r, 0, sizeof(*r));
}

static inline void ls_conn_free(LsConn *c) {
        LsServer *s = c->server;
        for (LsConn **p = &s->conns; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        if (c->pending)
                s->pending--;
        sd_event_source_disable_unref(c->io);
        close(c->fd);
        free(c->in);
        free(c->out);
        free(c);
}

static inline int ls_flush(LsConn *c) {
        while (c->out_off < c->out_len) {
                ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
                if (n < 0) {
                        if (errno == EAGAIN)
                                break;
                        return -errno;
                }
                c->out_off += (size_t) n;
        }
        if (c->out_off == c->out_len) {
                c->out_off = c->out_len = 0;
                if (c->close_after_write)
                        return -ECONNRESET;
                sd_event_source_set_io_events(c->io, EPOLLIN);
        } else
                sd_event_source_set_io_events(c->io, EPOLLIN | EPOLLOUT);
        return 0;
}

/* Answer the pending request. extra_headers: "Name: value\r\n" lines or NULL. */
static inline void ls_reply(LsConn *c, int status, const char *extra_headers, const char *body, size_t body_len) {
        char *head = NULL;
        int n = asprintf(&head, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nContent-Type: application/json\r\n%s\r\n",
                         status, body_len, extra_headers ? extra_headers : "");
        if (n < 0)
                abort();
        char *out = realloc(c->out, c->out_len + (size_t) n + body_len);
        if (!out)
                abort();
        c->out = out;
        memcpy(c->out + c->out_len, head, (size_t) n);
        if (body_len)
                memcpy(c->out + c->out_len + n, body, body_len);
        c->out_len += (size_t) n + body_len;
        free(head);
        if (c->pending) {
                c->pending = false;
                c->server->pending--;
        }
        if (ls_flush(c) < 0)
                ls_conn_free(c);
}

static inline void ls_reply_str(LsConn *c, int status, const char *extra_headers, const char *body) {
        ls_reply(c, status, extra_headers, body, body ? strlen(body) : 0);
}

/* Send raw bytes as the answer (chunked bodies, broken responses). */
static inline void ls_reply_raw(LsConn *c, const char *data, size_t len) {
        char *out = realloc(c->out, c->out_len + len);
        if (!out)
                abort();
        c->out = out;
        memcpy(c->out + c->out_len, data, len);
        c->out_len += len;
        if (c->pending) {
                c->pending = false;
                c->server->pending--;
        }
        if (ls_flush(c) < 0)
                ls_conn_free(c);
}

/* Drop the connection without an answer (the "sent, no answer" case). */
static inline void ls_drop(LsConn *c) {
        ls_conn_free(c);
}

/* Parse one complete request out of c->in, or return 0 when more bytes are needed. */
static inline int ls_parse(LsConn *c, LsRequest *r) {
        char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end)
                return 0;
        size_t head_len = (size_t) (end - c->in) + 4;
        char *head = strndup(c->in, head_len - 2);   /* keep the last line's CRLF */
        size_t content_length = 0;
        memset(r, 0, sizeof(*r));
        char *line = head, *eol = strstr(line, "\r\n");
        if (!eol) {
                free(head);
                return -EBADMSG;
        }
        *eol = '\0';
        char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
        if (!sp1 || !sp2) {
                free(head);
                return -EBADMSG;
        }
        r->method = strndup(line, (size_t) (sp1 - line));
        r->target = strndup(sp1 + 1, (size_t) (sp2 - sp1 - 1));
        for (line = eol + 2; *line && r->n_headers < LS_MAX_HEADERS; line = eol + 2) {
                eol = strstr(line, "\r\n");
                if (!eol)
                        break;
                *eol = '\0';
                char *colon = strchr(line, ':');
                if (!colon)
                        continue;
                char *v = colon + 1;
                while (*v == ' ')
                        v++;
                r->names[r->n_headers] = strndup(line, (size_t) (colon - line));
                r->values[r->n_headers] = strdup(v);
                if (strcasecmp(r->names[r->n_headers], "Content-Length") == 0)
                        content_length = strtoul(v, NULL, 10);
                r->n_headers++;
        }
        free(head);
        if (c->in_len < head_len + content_length) {
                ls_request_done(r);
                return 0;
        }
        r->body = malloc(content_length + 1);
        memcpy(r->body, c->in + head_len, content_length);
        r->body[content_length] = '\0';
        r->body_len = content_length;
        memmove(c->in, c->in + head_len + content_length, c->in_len - head_len - content_length);
        c->in_len -= head_len + content_length;
        return 1;
}

static inline int ls_on_conn_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        LsConn *c = userdata;
        (void) src;
        if (revents & EPOLLOUT) {
                if (ls_flush(c) < 0) {
                        ls_conn_free(c);
                        return 0;
                }
        }
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;
        for (;;) {
                if (c->in_cap - c->in_len < 4096) {
                        c->in_cap = c->in_cap * 2 + 8192;
                        c->in = realloc(c->in, c->in_cap);
                }
                ssize_t n = read(fd, c->in + c->in_len, c->in_cap - c->in_len);
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n <= 0) {
                        ls_conn_free(c);
                        return 0;
                }
                c->in_len += (size_t) n;
        }
        if (c->in_len > 0 && (unsigned char) c->in[0] == 0x16) {
                /* A TLS ClientHello: answer like a plain-HTTP server does, then hang up. */
                static const char bad[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";
                c->close_after_write = true;
                c->in_len = 0;
                ls_reply_raw(c, bad, sizeof(bad) - 1);
                return 0;
        }
        while (!c->pending) {
                LsRequest r;
                int k = ls_parse(c, &r);
                if (k < 0) {
                        ls_conn_free(c);
                        return 0;
                }
                if (k == 0)
                        break;
                LsServer *s = c->server;
                s->requests++;
                c->pending = true;
                s->pending++;
                if (s->pending > s->max_pending)
                        s->max_pending = s->pending;
                /* The handler may reply, hold, or drop (freeing c). */
                s->handler(s, c, &r, s->userdata);
                ls_request_done(&r);
                bool alive = false;
                for (LsConn *p = s->conns; p; p = p->next)
                        if (p == c)
                                alive = true;
                if (!alive)
                        return 0;
        }
        return 0;
}

static inline int ls_on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        LsServer *s = userdata;
        (void) src;
        (void) revents;
        for (;;) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0)
                        return 0;
                LsConn *c = calloc(1, sizeof(*c));
                c->server = s;
                c->fd = cfd;
                if (sd_event_add_io(s->event, &c->io, cfd, EPOLLIN, ls_on_conn_io, c) < 0)
                        abort();
                c->next = s->conns;
                s->conns = c;
                s->connections_accepted++;
        }
}

static inline LsServer *ls_new(sd_event *e, ls_handler handler, void *userdata) {
        LsServer *s = calloc(1, sizeof(*s));
        s->event = e;
        s->handler = handler;
        s->userdata = userdata;
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        if (s->fd < 0 || bind(s->fd, (struct sockaddr *) &a, sizeof(a)) < 0 || listen(s->fd, 128) < 0 ||
            getsockname(s->fd, (struct sockaddr *) &a, &len) < 0)
                abort();
        s->port = ntohs(a.sin_port);
        if (sd_event_add_io(e, &s->io, s->fd, EPOLLIN, ls_on_accept, s) < 0)
                abort();
        return s;
}

static inline void ls_free(LsServer *s) {
        if (!s)
                return;
        while (s->conns)
                ls_conn_free(s->conns);
        sd_event_source_disable_unref(s->io);
        close(s->fd);
        free(s);
}

/* The first held (pending) connection, or NULL. */
static inline LsConn *ls_first_pending(LsServer *s) {
        for (LsConn *c = s->conns; c; c = c->next)
                if (c->pending)
                        return c;
        return NULL;
}

/* A loopback port with nothing listening (bound then closed: connect is refused). */
static inline uint16_t ls_dead_port(void) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof(a)) < 0 ||
            getsockname(fd, (struct sockaddr *) &a, &len) < 0)
                abort();
        close(fd);
        return ntohs(a.sin_port);
}
