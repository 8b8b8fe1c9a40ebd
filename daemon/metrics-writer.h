/* The metrics file (metrics_file:) of `run` and `once`: when it is written, what the
 * gauges say at that moment, and what happens when it cannot be written.
 *
 * Coalescing: a change (a counter bumped, the engine's progress) arms one sd-event timer
 * for max(now, last write + METRICS_WRITE_INTERVAL_MS): a lone outcome is in the file at
 * the end of the loop iteration it happened in, and a burst of 1,000 outcomes is one
 * write every 250 ms, not 1,000 files. The gauges (instances by standing, desired,
 * invalid, paused) are read from the engine just before each write.
 *
 * A failed write is logged once (MESSAGE_METRICS_WRITE_FAILED), and once more when
 * writing works again; it is never fatal: reconciling matters more than its metrics. */
#pragma once

#include <stddef.h>

#include <systemd/sd-event.h>

#include "api.h"
#include "config.h"
#include "engine.h"
#include "macro.h"
#include "metrics.h"

typedef struct MetricsWriter MetricsWriter;

/* Sets the gauges just before a write (metrics_collect_engine, with the caller's state). */
typedef void (*metrics_collect_cb)(Metrics *m, void *userdata);

/* Write m to path (copied) when it changes. m is borrowed and must outlive the writer;
 * the writer installs itself as m's changed callback. */
int metrics_writer_new(sd_event *event, Metrics *m, const char *path, metrics_collect_cb collect, void *userdata,
                       MetricsWriter **ret);
/* Does not write: call metrics_writer_flush() first for a last write. */
MetricsWriter *metrics_writer_free(MetricsWriter *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(MetricsWriter *, metrics_writer_free);
const char *metrics_writer_path(const MetricsWriter *w);
/* Something changed: write soon (coalesced, see above). NULL-safe. */
void metrics_writer_schedule(MetricsWriter *w);
/* Write now (the end of `once`, the daemon stopping). NULL-safe. */
void metrics_writer_flush(MetricsWriter *w);

/* The gauges from the engine (NULL: left at 0): desired notebooks by standing and by
 * tenant (tenants: set), the desired count, the invalid manifests, the pauses. */
void metrics_collect_engine(Metrics *m, Engine *e, const TenantList *tenants, size_t n_invalid);

/* api_client_set_observer()'s callback, userdata the Metrics: one request by call and
 * HTTP status ("none" when no answer came), and the 429s. */
void metrics_api_observer(ApiClient *c, ApiCall call, long http_status, void *userdata);
