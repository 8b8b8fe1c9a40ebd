#include "metrics-writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "log.h"
#include "messages.h"
#include "setup.h"
#include "util.h"

struct MetricsWriter {
        sd_event *event;
        Metrics *metrics;
        char *path;
        metrics_collect_cb collect;
        void *userdata;
        sd_event_source *timer;
        int64_t last_write_mono_ms;
        bool writing;           /* collecting sets gauges, which must not schedule again */
        bool failing;           /* the last write failed, and that was logged */
};

static void on_metrics_changed(Metrics *m, void *userdata) {
        (void) m;
        metrics_writer_schedule(userdata);
}

int metrics_writer_new(sd_event *event, Metrics *m, const char *path, metrics_collect_cb collect, void *userdata,
                       MetricsWriter **ret) {
        MetricsWriter *w = calloc(1, sizeof(*w));
        if (!w || !(w->path = strdup(path))) {
                free(w);
                return -ENOMEM;
        }
        w->event = sd_event_ref(event);
        w->metrics = m;
        w->collect = collect;
        w->userdata = userdata;
        metrics_set_changed_callback(m, on_metrics_changed, w);
        *ret = w;
        return 0;
}

MetricsWriter *metrics_writer_free(MetricsWriter *w) {
        if (!w)
                return NULL;
        metrics_set_changed_callback(w->metrics, NULL, NULL);
        sd_event_source_disable_unref(w->timer);
        sd_event_unref(w->event);
        free(w->path);
        free(w);
        return NULL;
}

const char *metrics_writer_path(const MetricsWriter *w) {
        return w->path;
}

void metrics_writer_flush(MetricsWriter *w) {
        if (!w)
                return;
        if (w->timer)
                (void) sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
        w->writing = true;
        if (w->collect)
                w->collect(w->metrics, w->userdata);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = metrics_render(w->metrics, &buf, &len);
        if (r >= 0)
                r = metrics_write_file(w->path, buf, len);
        w->writing = false;
        w->last_write_mono_ms = now_monotonic_ms();
        if (r < 0 && !w->failing) {
                w->failing = true;
                log_fields_errno(LOG_WARNING, r, MESSAGE_METRICS_WRITE_FAILED, LOG_FIELDS({ "METRICS_FILE", w->path }),
                                 "Cannot write the metrics file %s: %m; reconciling goes on, the next change tries again "
                                 "(said once until it works)",
                                 w->path);
        } else if (r >= 0 && w->failing) {
                w->failing = false;
                log_fields(LOG_NOTICE, NULL, LOG_FIELDS({ "METRICS_FILE", w->path }), "Metrics file %s written again",
                           w->path);
        }
}

static int on_write_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        metrics_writer_flush(userdata);
        return 0;
}

void metrics_writer_schedule(MetricsWriter *w) {
        if (!w || w->writing)
                return;
        int enabled = SD_EVENT_OFF;
        if (w->timer && sd_event_source_get_enabled(w->timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return;   /* one write is due already: it will see this change too */
        int64_t at = MAX(now_monotonic_ms(), w->last_write_mono_ms + METRICS_WRITE_INTERVAL_MS);
        int r;
        if (w->timer)
                r = sd_event_source_set_time(w->timer, (uint64_t) at * 1000);
        else
                /* 1 ms accuracy: sd-event's default (250 ms) would add to the interval */
                r = sd_event_add_time(w->event, &w->timer, CLOCK_MONOTONIC, (uint64_t) at * 1000, 1000, on_write_timer,
                                      w);
        if (r >= 0)
                (void) sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
        /* No timer (out of memory): the next change tries again, and the end of the run
         * flushes. Not a write from here: this runs inside the engine's callbacks, even
         * while it is being freed, when the gauges cannot be read. */
}

typedef struct Tally {
        Metrics *metrics;
        Engine *engine;
        const TenantList *tenants;
} Tally;

static void tally_one(const char *name, EngineStanding s, void *userdata) {
        Tally *t = userdata;
        const char *tenant = tenant_of_notebook(t->engine, t->tenants, name);
        metrics_add(t->metrics, METRICS_INSTANCES, METRICS_LABELS(engine_standing_to_string(s), tenant), 1);
        metrics_add(t->metrics, METRICS_DESIRED, METRICS_LABELS(tenant), 1);
}

void metrics_collect_engine(Metrics *m, Engine *e, const TenantList *tenants, size_t n_invalid) {
        metrics_reset_gauges(m);
        metrics_set(m, METRICS_INVALID_MANIFESTS, NULL, (int64_t) n_invalid);
        bool by_tenant = tenants && tenants->n > 0;
        /* every standing (and pause) is a series from the start, at 0: a query sees a
         * value, not an absence, before the first notebook lands there */
        for (size_t k = 0; k < (by_tenant ? tenants->n : 1); k++) {
                const char *tenant = by_tenant ? tenants->items[k].name : NULL;
                for (EngineStanding s = 0; s < _STANDING_MAX; s++)
                        metrics_add(m, METRICS_INSTANCES, METRICS_LABELS(engine_standing_to_string(s), tenant), 0);
                metrics_add(m, METRICS_DESIRED, METRICS_LABELS(tenant), 0);
        }
        for (EnginePause p = 0; p < _ENGINE_PAUSE_MAX; p++)
                metrics_set(m, METRICS_PAUSED, METRICS_LABELS(engine_pause_to_string(p)), e && engine_paused(e, p));
        if (!e)
                return;
        if (by_tenant) {
                Tally t = { m, e, tenants };
                engine_foreach_standing(e, tally_one, &t);
                return;
        }
        /* without tenants the engine's own tally says it, with no walk over the names */
        EngineCounts c;
        engine_get_counts(e, &c);
        const struct {
                EngineStanding s;
                size_t n;
        } counts[] = { { STANDING_RUNNING, c.running }, { STANDING_PENDING, c.pending }, { STANDING_WAITING, c.waiting },
                       { STANDING_FAILED, c.failed },   { STANDING_REJECTED, c.rejected }, { STANDING_RETRYING, c.retrying } };
        for (size_t i = 0; i < ELEMENTSOF(counts); i++)
                metrics_set(m, METRICS_INSTANCES, METRICS_LABELS(engine_standing_to_string(counts[i].s)),
                            (int64_t) counts[i].n);
        metrics_set(m, METRICS_DESIRED, NULL, (int64_t) c.desired);
}

void metrics_api_observer(ApiClient *c, ApiCall call, long http_status, void *userdata) {
        (void) c;
        Metrics *m = userdata;
        char status[24];
        if (http_status > 0)
                snprintf(status, sizeof status, "%ld", http_status);
        else
                snprintf(status, sizeof status, "none");
        metrics_add(m, METRICS_API_REQUESTS, METRICS_LABELS(api_call_to_string(call), status), 1);
        if (http_status == 429)
                metrics_add(m, METRICS_API_THROTTLED, NULL, 1);
}
