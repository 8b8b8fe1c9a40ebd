/* Prometheus metrics (metrics_file:): the counters and gauges the daemon keeps, a pure
 * render to the text exposition format (version 0.0.4, what node_exporter's textfile
 * collector reads) and the atomic write of that text.
 *
 * Counters are bumped where things happen (the engine's outcomes, the API client's
 * answers); the gauges that describe the engine now (instances by standing, paused...)
 * are set by the daemon just before a render. Nothing here logs or owns a loop: the
 * daemon decides when to write and says when it cannot (daemon/metrics-writer.c).
 *
 * No label value is ever a credential: labels are fixed words, HTTP statuses, the API's
 * error codes (reduced to a token, see metrics_add) and the config's tenant names. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Every family notebookd exports, in the order they are rendered. */
typedef enum MetricsFamily {
        /* gauges the daemon sets before each render (metrics_reset_gauges zeroes them) */
        METRICS_INSTANCES,           /* {status, tenant}: desired notebooks by standing */
        METRICS_DESIRED,             /* {tenant} */
        METRICS_INVALID_MANIFESTS,
        METRICS_PAUSED,              /* {reason}: 0/1 */
        /* gauges set as passes end (kept across a reload's new engine) */
        METRICS_LAST_SUCCESSFUL_PASS,   /* ms since the epoch, rendered in seconds */
        METRICS_PASS_DURATION,          /* ms, rendered in seconds */
        /* counters */
        METRICS_CREATES,             /* {result, code, tenant} */
        METRICS_ADOPTIONS,           /* {tenant} */
        METRICS_DELETIONS,           /* {result, code, tenant} */
        METRICS_REJECTIONS,          /* {call, code, tenant} */
        METRICS_API_REQUESTS,        /* {call, status} */
        METRICS_API_THROTTLED,
        METRICS_SERIES_DROPPED,      /* code series refused past METRICS_MAX_SERIES */
        _METRICS_FAMILY_MAX,
} MetricsFamily;

#define METRICS_MAX_LABELS 3
/* The label values of one series, in the family's label order; NULL leaves a label out
 * (tenant without tenants:, code without an error code). */
#define METRICS_LABELS(...) ((const char *const[METRICS_MAX_LABELS]) { __VA_ARGS__ })

typedef struct Metrics Metrics;

/* Called after every change, so the owner can schedule a write. */
typedef void (*metrics_changed_cb)(Metrics *m, void *userdata);

int metrics_new(Metrics **ret);
Metrics *metrics_free(Metrics *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Metrics *, metrics_free);
void metrics_set_changed_callback(Metrics *m, metrics_changed_cb cb, void *userdata);

/* Add delta to a counter's series (created at 0), or set a gauge's. NULL-safe in m: a
 * daemon without metrics_file: passes no Metrics. A label named "code" is reduced to
 * [A-Za-z0-9._-], at most 64 bytes (it comes from the API's answer). Past
 * METRICS_MAX_SERIES a new series of a family with a "code" label is not made:
 * METRICS_SERIES_DROPPED counts each count so refused. */
void metrics_add(Metrics *m, MetricsFamily f, const char *const labels[METRICS_MAX_LABELS], int64_t delta);
void metrics_set(Metrics *m, MetricsFamily f, const char *const labels[METRICS_MAX_LABELS], int64_t value);
/* The value of a series, 0 when it does not exist (tests, and the daemon's own reads). */
int64_t metrics_get(const Metrics *m, MetricsFamily f, const char *const labels[METRICS_MAX_LABELS]);
/* Zero every series of the families the daemon sets before a render: one that no
 * longer applies (a tenant removed by a reload) then reads 0 instead of its last value. */
void metrics_reset_gauges(Metrics *m);

/* The text exposition: for each family with a series, # HELP, # TYPE, then its series
 * sorted by label values; label values escaped (backslash, double quote, newline).
 * *ret (NUL-terminated, caller frees) and *ret_len. -ENOMEM. */
int metrics_render(const Metrics *m, char **ret, size_t *ret_len);

/* Escape a label value for the exposition format: \ -> \\, " -> \", newline -> \n.
 * Caller frees; NULL on -ENOMEM. */
char *metrics_escape_label(const char *s);

/* Replace path with buf atomically: a hidden temporary file beside it (.NAME.XXXXXX,
 * which the textfile collector's *.prom glob skips) written, made mode 0644 whatever the
 * umask (node_exporter runs as another user), then renamed over path. No fsync: a crash
 * loses at most the last write, and the next pass writes again. Negative errno. */
int metrics_write_file(const char *path, const char *buf, size_t len);
