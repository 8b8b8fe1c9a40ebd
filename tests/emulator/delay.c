/* Delayed answers without blocking a worker: the access handler suspends its
 * connection and queues (due time, connection); this thread resumes it when due, and
 * libmicrohttpd calls the handler again to finish. So --latency-ms or --slow-ms costs
 * no worker threads and a thousand slow requests overlap instead of queueing.
 *
 * Ordering: suspension and the queue insert happen under d->lock, and resumption too,
 * so a connection is never resumed before it was suspended (undefined in MHD). Stop
 * resumes everything and refuses new suspensions: MHD_stop_daemon must not see a
 * suspended connection. */
#include "emulator.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <time.h>

#include "macro.h"
#include "util.h"

typedef struct Timer {
        int64_t due; /* monotonic ms */
        uint64_t seq; /* FIFO among equal due times */
        struct MHD_Connection *conn;
} Timer;

struct Delayer {
        pthread_mutex_t lock;
        pthread_cond_t cond; /* CLOCK_MONOTONIC */
        Timer *heap;
        size_t n, cap;
        uint64_t seq;
        bool stopping;
        bool thread_started;
        pthread_t thread;
};

static bool before(const Timer *a, const Timer *b) {
        return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_up(Timer *h, size_t i) {
        while (i > 0) {
                size_t p = (i - 1) / 2;
                if (!before(&h[i], &h[p]))
                        break;
                Timer t = h[i];
                h[i] = h[p];
                h[p] = t;
                i = p;
        }
}

static void heap_down(Timer *h, size_t n, size_t i) {
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;
                if (l < n && before(&h[l], &h[m]))
                        m = l;
                if (r < n && before(&h[r], &h[m]))
                        m = r;
                if (m == i)
                        return;
                Timer t = h[i];
                h[i] = h[m];
                h[m] = t;
                i = m;
        }
}

static Timer heap_pop(Delayer *d) {
        Timer top = d->heap[0];
        d->heap[0] = d->heap[--d->n];
        heap_down(d->heap, d->n, 0);
        return top;
}

static void *run(void *userdata) {
        Delayer *d = userdata;
        pthread_mutex_lock(&d->lock);
        while (!d->stopping) {
                if (d->n == 0) {
                        pthread_cond_wait(&d->cond, &d->lock);
                        continue;
                }
                int64_t now = now_monotonic_ms();
                if (d->heap[0].due <= now) {
                        Timer t = heap_pop(d);
                        MHD_resume_connection(t.conn);
                        continue;
                }
                struct timespec ts = {
                        .tv_sec = (time_t) (d->heap[0].due / 1000),
                        .tv_nsec = (long) (d->heap[0].due % 1000) * 1000000L,
                };
                pthread_cond_timedwait(&d->cond, &d->lock, &ts);
        }
        while (d->n > 0) {
                Timer t = heap_pop(d);
                MHD_resume_connection(t.conn);
        }
        pthread_mutex_unlock(&d->lock);
        return NULL;
}

int emu_delayer_new(Delayer **ret) {
        Delayer *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_mutex_init(&d->lock, NULL);
        pthread_cond_init(&d->cond, &ca);
        pthread_condattr_destroy(&ca);
        int r = pthread_create(&d->thread, NULL, run, d);
        if (r != 0) {
                pthread_cond_destroy(&d->cond);
                pthread_mutex_destroy(&d->lock);
                free(d);
                return -r;
        }
        d->thread_started = true;
        *ret = d;
        return 0;
}

bool emu_delayer_suspend(Delayer *d, struct MHD_Connection *c, int64_t ms) {
        bool ok = false;
        pthread_mutex_lock(&d->lock);
        if (d->stopping)
                goto out;
        if (d->n == d->cap) {
                size_t cap = d->cap ? d->cap * 2 : 256;
                Timer *h = reallocarray(d->heap, cap, sizeof(*h));
                if (!h)
                        goto out; /* answer now rather than never */
                d->heap = h;
                d->cap = cap;
        }
        MHD_suspend_connection(c);
        /* now_monotonic_ms() truncates: without the 1 the answer could come up to a
         * millisecond early, and a latency is a lower bound (t-emulator checks it). */
        d->heap[d->n] = (Timer) { .due = now_monotonic_ms() + ms + 1, .seq = d->seq++, .conn = c };
        heap_up(d->heap, d->n);
        d->n++;
        pthread_cond_signal(&d->cond);
        ok = true;
out:
        pthread_mutex_unlock(&d->lock);
        return ok;
}

void emu_delayer_stop(Delayer *d) {
        if (!d || !d->thread_started)
                return;
        pthread_mutex_lock(&d->lock);
        d->stopping = true;
        pthread_cond_signal(&d->cond);
        pthread_mutex_unlock(&d->lock);
        pthread_join(d->thread, NULL);
        d->thread_started = false;
}

Delayer *emu_delayer_free(Delayer *d) {
        if (!d)
                return NULL;
        emu_delayer_stop(d);
        pthread_cond_destroy(&d->cond);
        pthread_mutex_destroy(&d->lock);
        free(d->heap);
        free(d);
        return NULL;
}
