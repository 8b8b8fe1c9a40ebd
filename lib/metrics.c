#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hashmap.h"
#include "limits.h"
#include "util.h"

typedef struct FamilyInfo {
        const char *name;
        const char *type;            /* "counter" or "gauge" */
        const char *help;
        const char *labels[METRICS_MAX_LABELS];
        bool collected;              /* set by the daemon before a render */
        bool milli;                  /* the value is in thousandths of the rendered unit */
        bool always;                 /* no labels: rendered (as 0) before anything counted it */
} FamilyInfo;

static const FamilyInfo families[_METRICS_FAMILY_MAX] = {
        [METRICS_INSTANCES] = { "notebookd_instances", "gauge",
                                "Desired notebooks by standing (running, creating, waiting, failed, rejected, retrying), as in STATUS=.",
                                { "status", "tenant" }, .collected = true },
        [METRICS_DESIRED] = { "notebookd_desired_instances", "gauge", "Valid manifests, one notebook each.",
                              { "tenant" }, .collected = true },
        [METRICS_INVALID_MANIFESTS] = { "notebookd_invalid_manifests", "gauge",
                                        "Manifest documents the last scan found invalid.", {}, .collected = true,
                                        .always = true },
        [METRICS_PAUSED] = { "notebookd_paused", "gauge",
                             "1 while sending (or creating) is paused for this reason, else 0.", { "reason" },
                             .collected = true },
        [METRICS_LAST_SUCCESSFUL_PASS] = {
                "notebookd_last_successful_pass_timestamp_seconds", "gauge",
                "When the last pass that listed every workspace it needed and planned ended (unix time; 0: none yet).",
                {}, .milli = true, .always = true },
        [METRICS_PASS_DURATION] = { "notebookd_pass_duration_seconds", "gauge",
                                    "How long the last pass took, from its start to its plan acted on.", {},
                                    .milli = true, .always = true },
        [METRICS_CREATES] = { "notebookd_creates_total", "counter",
                              "Create calls answered, by result and the API's error code.",
                              { "result", "code", "tenant" } },
        [METRICS_ADOPTIONS] = { "notebookd_adoptions_total", "counter",
                                "Existing instances adopted for a manifest.", { "tenant" } },
        [METRICS_DELETIONS] = { "notebookd_deletions_total", "counter",
                                "Prune deletions, by result and the API's error code.", { "result", "code", "tenant" } },
        [METRICS_REJECTIONS] = {
                "notebookd_rejections_total", "counter",
                "Calls refused for good (not retried until the manifest changes or a later pass), by call and error code.",
                { "call", "code", "tenant" } },
        [METRICS_API_REQUESTS] = { "notebookd_api_requests_total", "counter",
                                   "HTTP requests answered (or failed: status none), by call and HTTP status.",
                                   { "call", "status" } },
        [METRICS_API_THROTTLED] = { "notebookd_api_throttled_total", "counter", "HTTP 429 answers.", {},
                                    .always = true },
        [METRICS_SERIES_DROPPED] = { "notebookd_metrics_series_dropped_total", "counter",
                                     "Series not made because the process already keeps its maximum.", {},
                                     .always = true },
};

typedef struct Series {
        MetricsFamily family;
        char *labels[METRICS_MAX_LABELS];
        int64_t value;
} Series;

struct Metrics {
        Series *series;
        size_t n, allocated;
        Hashmap *index;         /* key (series_key) -> index + 1 */
        metrics_changed_cb changed;
        void *userdata;
};

static void series_done(Series *s) {
        for (size_t i = 0; i < METRICS_MAX_LABELS; i++)
                free(s->labels[i]);
}

int metrics_new(Metrics **ret) {
        Metrics *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        int r = hashmap_new(&m->index);
        if (r < 0) {
                free(m);
                return r;
        }
        *ret = m;
        return 0;
}

Metrics *metrics_free(Metrics *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n; i++)
                series_done(&m->series[i]);
        free(m->series);
        hashmap_free(m->index);
        free(m);
        return NULL;
}

void metrics_set_changed_callback(Metrics *m, metrics_changed_cb cb, void *userdata) {
        m->changed = cb;
        m->userdata = userdata;
}

/* An error code comes from the API's body: keep what a code is made of, so that a
 * broken answer cannot put a long or odd string into the file. */
static char *code_token(const char *s) {
        char buf[65];
        size_t n = 0;
        for (; *s && n < sizeof buf - 1; s++) {
                char c = *s;
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                          c == '_' || c == '-';
                buf[n++] = ok ? c : '_';
        }
        buf[n] = 0;
        return strdup(buf);
}

/* One string per series: the family, then each value, with bytes no label value holds
 * apart from them (0x1f between values, 0x1e for "absent"), so "a" + absent and "" + "a"
 * cannot meet. */
static char *series_key(MetricsFamily f, char *const values[METRICS_MAX_LABELS]) {
        return xasprintf("%d\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", (int) f, values[0] ? "" : "\x1e", strempty(values[0]),
                         values[1] ? "" : "\x1e", strempty(values[1]), values[2] ? "" : "\x1e", strempty(values[2]));
}

static void labels_free(char *values[METRICS_MAX_LABELS]) {
        for (size_t i = 0; i < METRICS_MAX_LABELS; i++)
                values[i] = mfree(values[i]);
}

/* The family's label values, owned (only those it has; "code" reduced to a token). */
static int labels_copy(MetricsFamily f, const char *const labels[METRICS_MAX_LABELS],
                       char *ret[METRICS_MAX_LABELS]) {
        for (size_t i = 0; i < METRICS_MAX_LABELS; i++) {
                ret[i] = NULL;
                const char *name = families[f].labels[i];
                if (!name || !labels || !labels[i])
                        continue;
                ret[i] = streq(name, "code") ? code_token(labels[i]) : strdup(labels[i]);
                if (!ret[i]) {
                        labels_free(ret);
                        return -ENOMEM;
                }
        }
        return 0;
}

static Series *series_find(const Metrics *m, MetricsFamily f, char *const values[METRICS_MAX_LABELS]) {
        _cleanup_free_ char *key = series_key(f, values);
        if (!key)
                return NULL;
        uintptr_t i = (uintptr_t) hashmap_get(m->index, key);
        return i > 0 ? &m->series[i - 1] : NULL;
}

static Series *series_dropped(Metrics *m);

static bool family_has_code(MetricsFamily f) {
        for (size_t i = 0; i < METRICS_MAX_LABELS; i++)
                if (families[f].labels[i] && streq(families[f].labels[i], "code"))
                        return true;
        return false;
}

/* The series, made at 0 when new; NULL when it cannot be (memory, the cap). */
static Series *series_get(Metrics *m, MetricsFamily f, const char *const labels[METRICS_MAX_LABELS]) {
        char *values[METRICS_MAX_LABELS];
        if (labels_copy(f, labels, values) < 0)
                return NULL;
        Series *s = series_find(m, f, values);
        if (s) {
                labels_free(values);
                return s;
        }
        /* Only a "code" label (the API's words) can make series without end; every other
         * family is bounded by the config (tenants, standings, pauses, calls, statuses)
         * and always gets its place. Were the gauges capped too, the daemon would try to
         * make each missing one again before every write, and the dropped counter would
         * grow with time instead of with what was refused. */
        if (m->n >= METRICS_MAX_SERIES && family_has_code(f)) {
                labels_free(values);
                if ((s = series_dropped(m)))
                        s->value++;
                return NULL;
        }
        _cleanup_free_ char *key = series_key(f, values);
        if (!key) {
                labels_free(values);
                return NULL;
        }
        if (m->n == m->allocated) {
                /* through a temporary: a failed growth must leave the live array (and
                 * its size) as they were, not NULL with every series leaked */
                size_t allocated = MAX(m->allocated * 2, 16);
                Series *series = reallocarray(m->series, allocated, sizeof(Series));
                if (!series) {
                        labels_free(values);
                        return NULL;
                }
                m->series = series;
                m->allocated = allocated;
        }
        if (hashmap_put(m->index, key, (void *) (uintptr_t) (m->n + 1)) < 0) {
                labels_free(values);
                return NULL;
        }
        s = &m->series[m->n++];
        *s = (Series) { .family = f };
        memcpy(s->labels, values, sizeof values);
        return s;
}

static Series *series_dropped(Metrics *m) {
        return series_get(m, METRICS_SERIES_DROPPED, NULL);
}

static void changed(Metrics *m) {
        if (m->changed)
                m->changed(m, m->userdata);
}

void metrics_add(Metrics *m, MetricsFamily f, const char *const labels[METRICS_MAX_LABELS], int64_t delta) {
        if (!m || (unsigned) f >= _METRICS_FAMILY_MAX)
                return;
        Series *s = series_get(m, f, labels);
        if (s)
                s->value += delta;
        changed(m);
}

void metrics_set(Metrics *m, MetricsFamily f, const char *const labels[METRICS_MAX_LABELS], int64_t value) {
        if (!m || (unsigned) f >= _METRICS_FAMILY_MAX)
                return;
        Series *s = series_get(m, f, labels);
        if (s && s->value != value) {
                s->value = value;
                changed(m);
        }
}

int64_t metrics_get(const Metrics *m, MetricsFamily f, const char *const labels[METRICS_MAX_LABELS]) {
        char *values[METRICS_MAX_LABELS];
        if (!m || (unsigned) f >= _METRICS_FAMILY_MAX || labels_copy(f, labels, values) < 0)
                return 0;
        const Series *s = series_find(m, f, values);
        labels_free(values);
        return s ? s->value : 0;
}

void metrics_reset_gauges(Metrics *m) {
        if (!m)
                return;
        for (size_t i = 0; i < m->n; i++)
                if (families[m->series[i].family].collected)
                        m->series[i].value = 0;
}

char *metrics_escape_label(const char *s) {
        size_t n = 0;
        for (const char *p = s; *p; p++)
                n += (*p == '\\' || *p == '"' || *p == '\n') ? 2 : 1;
        char *out = malloc(n + 1), *o = out;
        if (!out)
                return NULL;
        for (const char *p = s; *p; p++) {
                if (*p == '\\' || *p == '"')
                        *o++ = '\\', *o++ = *p;
                else if (*p == '\n')
                        *o++ = '\\', *o++ = 'n';
                else
                        *o++ = *p;
        }
        *o = 0;
        return out;
}

/* Absent first, then byte order: the same file for the same counters, whatever order
 * they were made in (diffable, and testable). */
static int cmp_label(const char *a, const char *b) {
        if (!a || !b)
                return (a != NULL) - (b != NULL);
        return strcmp(a, b);
}

static int cmp_series(const void *x, const void *y) {
        const Series *a = *(const Series *const *) x, *b = *(const Series *const *) y;
        if (a->family != b->family)
                return a->family < b->family ? -1 : 1;
        for (size_t i = 0; i < METRICS_MAX_LABELS; i++) {
                int c = cmp_label(a->labels[i], b->labels[i]);
                if (c != 0)
                        return c;
        }
        return 0;
}

static int render_value(FILE *f, const FamilyInfo *fi, int64_t v) {
        if (!fi->milli)
                return fprintf(f, "%" PRId64 "\n", v);
        /* thousandths: exact, no floating point in the file */
        return fprintf(f, "%s%" PRId64 ".%03" PRId64 "\n", v < 0 ? "-" : "", (v < 0 ? -v : v) / 1000,
                       (v < 0 ? -v : v) % 1000);
}

static int render_series(FILE *f, const FamilyInfo *fi, const Series *s) {
        if (fputs(fi->name, f) < 0)
                return -EIO;
        bool first = true;
        for (size_t i = 0; i < METRICS_MAX_LABELS; i++) {
                if (!s->labels[i])
                        continue;
                _cleanup_free_ char *v = metrics_escape_label(s->labels[i]);
                if (!v)
                        return -ENOMEM;
                if (fprintf(f, "%s%s=\"%s\"", first ? "{" : ",", fi->labels[i], v) < 0)
                        return -EIO;
                first = false;
        }
        if (fputs(first ? " " : "} ", f) < 0 || render_value(f, fi, s->value) < 0)
                return -EIO;
        return 0;
}

int metrics_render(const Metrics *m, char **ret, size_t *ret_len) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        _cleanup_free_ const Series **sorted = calloc(m->n ?: 1, sizeof(Series *));
        int r = sorted ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < m->n; i++)
                sorted[i] = &m->series[i];
        if (r >= 0)
                qsort(sorted, m->n, sizeof(Series *), cmp_series);
        size_t next = 0;
        for (int fam = 0; r >= 0 && fam < _METRICS_FAMILY_MAX; fam++) {
                const FamilyInfo *fi = &families[fam];
                bool any = next < m->n && sorted[next]->family == (MetricsFamily) fam;
                if (!any && !fi->always)
                        continue;
                if (fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", fi->name, fi->help, fi->name, fi->type) < 0)
                        r = -EIO;
                if (!any && r >= 0)
                        r = render_series(f, fi, &(Series) { .family = (MetricsFamily) fam });
                for (; r >= 0 && next < m->n && sorted[next]->family == (MetricsFamily) fam; next++)
                        r = render_series(f, fi, sorted[next]);
        }
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

int metrics_write_file(const char *path, const char *buf, size_t len) {
        const char *slash = strrchr(path, '/');
        _cleanup_free_ char *tmp = slash ? xasprintf("%.*s/.%s.XXXXXX", (int) (slash - path), path, slash + 1)
                                         : xasprintf(".%s.XXXXXX", path);
        if (!tmp)
                return -ENOMEM;
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = 0;
        for (size_t done = 0; done < len;) {
                ssize_t k = write(fd, buf + done, len - done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        break;
                }
                done += (size_t) k;
        }
        /* mkostemp makes it 0600, and the unit's UMask=0077 would too: node_exporter reads
         * it as its own user */
        if (r >= 0 && fchmod(fd, 0644) < 0)
                r = -errno;
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}
