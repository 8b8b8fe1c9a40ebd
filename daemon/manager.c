#include "manager.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "credwatch.h"
#include "desired.h"
#include "diag-log.h"
#include "engine.h"
#include "hashmap.h"
#include "limits.h"
#include "log.h"
#include "messages.h"
#include "metrics-writer.h"
#include "setup.h"
#include "util.h"
#include "watch.h"

/* A burst of file events (a git checkout) settles for this long before one rescan;
 * a never-ending trickle is still rescanned at least this often. */
#define MANAGER_DEBOUNCE_MS 200
#define MANAGER_DEBOUNCE_MAX_MS 1000
/* New credential files are two or three writes (AK, SK, their modes): reload once they
 * have been quiet this long, so the first try does not pair a new AK with an old SK. */
#define MANAGER_CREDENTIALS_DEBOUNCE_MS 500
/* SIGTERM: in-flight requests get this long to finish and be recorded; systemd's
 * default TimeoutStopSec (90 s) is far above it. */
#define MANAGER_STOP_GRACE_MS (10 * 1000)
/* New manifest diagnostics logged per scan: a broken tree says what is wrong in the
 * first thousand; ten thousand journal writes would hold the loop for a second. */
#define MANAGER_MAX_LOGGED_DIAGS 1000
/* ... and they are written this many per loop iteration (a journal write is ~20-50 us). */
#define MANAGER_LOG_SLICE 100

/* What a scan found that the journal has not had yet: computed on the scan thread
 * (tens of thousands of keys would hold the loop), logged by the loop. */
typedef struct NewDiags {
        bool computed;
        Diags fresh;               /* at most MANAGER_MAX_LOGGED_DIAGS */
        size_t n_unlogged;         /* new ones past that */
        Hashmap *now;              /* every key of this scan (NULL: out of memory) */
} NewDiags;

static void new_diags_done(NewDiags *nd) {
        diags_clear(&nd->fresh);
        hashmap_free(nd->now);
        *nd = (NewDiags) {};
}

/* The manifests are read and parsed on a thread of its own: a tree at the limits
 * takes seconds, and the loop must go on sending WATCHDOG=1 and answering signals.
 * While a scan is out, the thread owns m->desired; the loop touches it only after the
 * join (on_scan_done). Nothing on the thread logs (daemon/log.c is single-threaded):
 * its findings are diagnostics in the set, logged by the loop. */
typedef struct Scan {
        pthread_t thread;
        bool running;
        const char *why;            /* string literals only */
        bool full;                  /* its pass lists every workspace (start, resync, reload) */
        const char *again;          /* a change came in meanwhile: one more scan after this */
        bool again_full;
        int result;                 /* desired_set_rescan_cancellable()'s, read after the join */
        int64_t started_ms;
        int efd;                    /* the thread's "done" */
        sd_event_source *done_source;
        atomic_bool cancel;         /* stopping: give up between files */
        NewDiags new_diags;         /* the thread's, read after the join */
        char **files;               /* re-read only these (watch_changed_files); NULL: all */
        size_t n_files;
} Scan;

struct Manager {
        Cli *cli;
        Config config;             /* in force (a failed reload keeps it) */
        sd_event *event;
        Backend backend;
        Engine *engine;
        DesiredSet *desired;
        Watch *watch;
        CredWatch *credwatch;      /* the config's *_file credentials */
        sd_event_source *resync_timer;
        sd_event_source *stop_timer;
        Hashmap *logged_diags;     /* diagnostics already in the journal: "key" -> NULL */
        size_t n_invalid;
        unsigned watch_errors;     /* watch_n_errors() already reported */
        int state_lock_fd;         /* one writer per state directory */
        bool stopping;
        bool ready;                /* READY=1 sent: the first scan is in */
        bool reload_pending;       /* SIGHUP during a scan: reload once it is in */
        Scan scan;
        uint64_t loop_max_usec;    /* the longest loop iteration (prepare + dispatch) */
        uint64_t loop_max_cpu_usec; /* ... and the CPU time it took: less when preempted */
        Diags log_queue;           /* new manifest diagnostics still to be logged ... */
        size_t log_next;
        sd_event_source *log_source; /* ... MANAGER_LOG_SLICE per loop iteration */
        Metrics *metrics;          /* counted always (kept across reloads) ... */
        MetricsWriter *metrics_writer; /* ... written when metrics_file: is set */
};

static void manager_update_status(Manager *m) {
        /* whatever STATUS= would say, the metrics file says too (coalesced) */
        metrics_writer_schedule(m->metrics_writer);
        if (!m->engine || m->stopping)   /* "Stopping..." stays until we are gone */
                return;
        EngineCounts c;
        engine_get_counts(m->engine, &c);
        /* A pause comes first: it is what an operator reading `systemctl status` must act on. */
        int64_t retry_ms = 0;
        const char *paused = engine_pause_reason(m->engine, &retry_ms);
        _cleanup_free_ char *pause = NULL, *clock = NULL;
        int64_t offset_ms;
        /* A refused signature with the server's clock far from ours: the clock is what
         * to fix, not the credentials, and `systemctl status` should say so. */
        if (paused && engine_auth_failed(m->engine, NULL) && api_client_clock_skewed(m->backend.api, &offset_ms))
                clock = xasprintf(" (the local clock is %llds %s the API's)", llabs(offset_ms / 1000),
                                  offset_ms > 0 ? "ahead of" : "behind");
        if (paused && retry_ms > 0)
                pause = xasprintf("Paused: %s%s, next try in %llds; ", paused, strempty(clock),
                                  (long long) MAX((retry_ms - now_monotonic_ms() + 999) / 1000, 0));
        else if (paused)
                pause = xasprintf("Paused: %s%s, waiting for a reload; ", paused, strempty(clock));
        const char *prune_held = engine_prune_held(m->engine);
        _cleanup_free_ char *s = xasprintf(
                "STATUS=%s%zu desired, %zu running, %zu creating, %zu waiting, %zu failed, %zu rejected, %zu retrying, "
                "%zu invalid manifest%s%s%s",
                strempty(pause), c.desired, c.running, c.pending, c.waiting, c.failed, c.rejected, c.retrying,
                m->n_invalid, m->n_invalid == 1 ? "" : "s", prune_held ? "; " : "", strempty(prune_held));
        if (s)
                (void) sd_notify(false, s);
}

static void on_engine_progress(Engine *e, void *userdata) {
        (void) e;
        manager_update_status(userdata);
}

static void on_engine_settled(Engine *e, void *userdata) {
        (void) e;
        Manager *m = userdata;
        if (m->stopping)
                sd_event_exit(m->event, 0);
}

static int on_log_slice(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        size_t k = MIN(m->log_queue.n - m->log_next, (size_t) MANAGER_LOG_SLICE);
        Diags slice = { .items = m->log_queue.items + m->log_next, .n = k };
        log_diagnostics(&slice, MESSAGE_MANIFEST_INVALID);
        m->log_next += k;
        if (m->log_next >= m->log_queue.n) {
                diags_clear(&m->log_queue);
                m->log_next = 0;
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        }
        return 0;
}

/* Queue diagnostics to be logged a slice per loop iteration; logged at once when
 * that cannot be set up. */
static void log_queued(Manager *m, Diags *d) {
        if (d->n == 0)
                return;
        int r = 0;
        if (!m->log_source)
                r = sd_event_add_defer(m->event, &m->log_source, on_log_slice, m);
        if (r >= 0)
                r = diags_move(&m->log_queue, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->log_source, SD_EVENT_ON);
        if (r < 0)
                log_diagnostics(d, MESSAGE_MANIFEST_INVALID);
}

/* Touches nothing but its arguments: safe on the scan thread while the loop leaves
 * m->desired and m->logged_diags alone. */
static void new_diags_compute(const Diags *d, const Hashmap *logged, NewDiags *ret) {
        NewDiags nd = { .computed = true };
        if (hashmap_new(&nd.now) < 0)
                nd.now = NULL;
        /* Whole-file problems (too large, unreadable, past the per-scan total) first:
         * when not all can be logged, those say the most. */
        for (int whole_file = 1; whole_file >= 0; whole_file--)
                for (size_t i = 0; i < d->n; i++) {
                        const Diag *g = &d->items[i];
                        if ((g->line == 0) != whole_file)
                                continue;
                        _cleanup_free_ char *key = xasprintf("%s:%u:%u:%d:%s", g->file, g->line, g->column,
                                                             (int) g->severity, g->message);
                        if (!key)
                                continue;
                        if (nd.now)
                                (void) hashmap_put(nd.now, key, NULL);
                        if (logged && hashmap_contains(logged, key))
                                continue;
                        if (nd.fresh.n >= MANAGER_MAX_LOGGED_DIAGS)
                                nd.n_unlogged++;
                        else
                                (void) diags_add(&nd.fresh, g->severity, g->file, g->line, g->column, "%s",
                                                 g->message);
                }
        diags_sort(&nd.fresh);
        *ret = nd;
}

/* Log the manifest diagnostics not logged before: a bad file is reported when it
 * becomes bad, not again on every rescan. nd: as the scan thread computed it, or
 * not computed (then it is done here). */
static void log_new_diagnostics(Manager *m, NewDiags *nd) {
        if (!nd->computed)
                new_diags_compute(desired_set_diags(m->desired), m->logged_diags, nd);
        log_queued(m, &nd->fresh);
        if (nd->n_unlogged > 0)
                log_fields(LOG_ERR, MESSAGE_MANIFEST_INVALID,
                           LOG_FIELDS({ "CONFIG_FILE", m->config.manifests }, { "MANIFESTS_DIR", m->config.manifests }),
                           "%zu more manifest problems under %s not logged; `notebookd check` lists them all",
                           nd->n_unlogged, m->config.manifests);
        /* without a new key set (out of memory) the old one stays: some repeats, no loss */
        if (nd->now) {
                hashmap_free(m->logged_diags);
                m->logged_diags = TAKE_PTR(nd->now);
        }
        new_diags_done(nd);
}

/* Directories the watcher could not watch are noticed only by the periodic resync:
 * say so when that number grows. */
static void report_watch_errors(Manager *m) {
        unsigned n = m->watch ? watch_n_errors(m->watch) : 0;
        if (n > m->watch_errors)
                log_warning_errno(watch_last_error(m->watch),
                                  "%u director%s under %s cannot be watched (%m); changes there are seen at the next resync",
                                  n - m->watch_errors, n - m->watch_errors == 1 ? "y" : "ies", m->config.manifests);
        m->watch_errors = n;
}

/* A scan is in (r: its result): hand the set over to the engine. The caller starts
 * the pass. */
static int manager_apply_desired(Manager *m, int r, const char *why, NewDiags *nd) {
        if (r < 0) {
                /* the engine keeps its own copy of the previous set, and prunes nothing */
                (void) engine_set_tree_problem(m->engine, "the manifests directory cannot be read");
                return log_fields_errno(LOG_ERR, r, MESSAGE_MANIFEST_INVALID,
                                        LOG_FIELDS({ "CONFIG_FILE", m->config.manifests },
                                                   { "MANIFESTS_DIR", m->config.manifests }),
                                        "Cannot read the manifests directory %s: %m; keeping the previous desired set",
                                        m->config.manifests);
        }
        int64_t apply_ms = now_monotonic_ms();
        log_new_diagnostics(m, nd);
        DesiredStats st;
        desired_set_stats(m->desired, &st);
        m->n_invalid = st.n_invalid;
        size_t n;
        const NotebookSpec *const *specs = desired_set_specs(m->desired, &n);
        r = engine_apply_tree_problems(m->engine, m->desired, &m->config.tenants);
        if (r >= 0)
                r = engine_set_desired(m->engine, specs, n);
        if (r < 0)
                return log_error_errno(r, "Cannot update the desired set: %m");
        int64_t now = now_monotonic_ms();
        log_debug("Manifests rescanned (%s): %zu files, %zu valid, %zu invalid, in %lld ms (%lld ms of it on the loop)",
                  why, st.n_files, st.n_valid, st.n_invalid, (long long) (now - m->scan.started_ms),
                  (long long) (now - apply_ms));
        report_watch_errors(m);
        return 0;
}

static void scan_files_free(Scan *scan) {
        for (size_t i = 0; i < scan->n_files; i++)
                free(scan->files[i]);
        scan->files = mfree(scan->files);
        scan->n_files = 0;
}

static void *scan_thread(void *userdata) {
        Manager *m = userdata;
        if (m->scan.files) {
                /* an edit of a few files: re-read those, not the whole tree (the walk of
                 * 10,000 files is most of an edit's latency) */
                m->scan.result = 0;
                for (size_t i = 0; m->scan.result >= 0 && i < m->scan.n_files; i++) {
                        if (atomic_load(&m->scan.cancel)) {
                                m->scan.result = -ECANCELED;
                                break;
                        }
                        m->scan.result = desired_set_update_file(m->desired, m->scan.files[i]);
                }
        } else
                m->scan.result = desired_set_rescan_cancellable(m->desired, &m->scan.cancel);
        if (m->scan.result >= 0)
                new_diags_compute(desired_set_diags(m->desired), m->logged_diags, &m->scan.new_diags);
        /* Cannot fail short of a bad fd: the counter is far from overflowing. */
        uint64_t one = 1;
        (void) !write(m->scan.efd, &one, sizeof one);
        return NULL;
}

static void manager_started(Manager *m);
static void manager_reload(Manager *m);

/* A scan's result is in force (R: what applying it returned): the first one makes the
 * daemon ready, and the first pass goes out even when the tree could not be read, since
 * it still follows what the state database records; later ones plan when they changed
 * something. */
static void manager_scan_applied(Manager *m, int r, bool full) {
        bool first = !m->ready;
        if (first)
                manager_started(m);
        if (r >= 0 || first)
                engine_request_pass(m->engine, full || first ? ENGINE_PASS_FULL : ENGINE_PASS_INCREMENTAL);
        manager_update_status(m);
}

/* Re-read the tree (only changed files are parsed again) on the scan thread; when it
 * is in, the engine gets it and a pass starts: a full one (every workspace listed) at
 * start, resync and reload, else an incremental one (an edit costs no listing). One
 * already out: one more after it. */
static void manager_rescan(Manager *m, const char *why, bool full) {
        if (m->stopping)
                return;
        if (m->scan.running) {
                /* the scan after this one reads the whole tree */
                m->scan.again = why;
                m->scan.again_full |= full;
                return;
        }
        m->scan.why = why;
        m->scan.full = full;
        m->scan.started_ms = now_monotonic_ms();
        log_debug("Scanning the manifests (%s)", why);
        /* The thread takes no signal: they are the loop's (signalfd). */
        sigset_t all, old;
        sigfillset(&all);
        (void) pthread_sigmask(SIG_SETMASK, &all, &old);
        int r = -pthread_create(&m->scan.thread, NULL, scan_thread, m);
        (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r >= 0) {
                m->scan.running = true;
                return;
        }
        /* No thread (EAGAIN under TasksMax=): scan here rather than not at all. */
        log_warning_errno(r, "Cannot start the manifest scan thread: %m; scanning on the main loop");
        scan_files_free(&m->scan);
        NewDiags nd = {};
        r = manager_apply_desired(m, desired_set_rescan(m->desired), why, &nd);
        new_diags_done(&nd);
        manager_scan_applied(m, r, full);
}

static int on_scan_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void) s;
        (void) revents;
        Manager *m = userdata;
        uint64_t v;
        (void) !read(fd, &v, sizeof v);
        if (!m->scan.running)
                return 0;
        /* it has written its last word: the join is immediate */
        int r = pthread_join(m->scan.thread, NULL);
        if (r != 0)
                log_warning_errno(r, "Cannot join the manifest scan thread: %m");
        m->scan.running = false;
        scan_files_free(&m->scan);
        if (m->stopping) {
                new_diags_done(&m->scan.new_diags);
                return 0;
        }
        r = manager_apply_desired(m, m->scan.result, m->scan.why, &m->scan.new_diags);
        new_diags_done(&m->scan.new_diags);  /* when the scan failed, it may hold nothing */
        manager_scan_applied(m, r, m->scan.full);
        if (m->reload_pending) {
                /* it rescans anyway, with the new config */
                m->reload_pending = false;
                m->scan.again = NULL;
                m->scan.again_full = false;
                manager_reload(m);
        } else if (m->scan.again) {
                const char *why = m->scan.again;
                bool full = m->scan.again_full;
                m->scan.again = NULL;
                m->scan.again_full = false;
                manager_rescan(m, why, full);
        }
        return 0;
}

/* Stop the scan thread (shutdown): it gives up at the next file. */
static void scan_join(Manager *m) {
        if (!m->scan.running)
                return;
        atomic_store(&m->scan.cancel, true);
        (void) pthread_join(m->scan.thread, NULL);
        m->scan.running = false;
        scan_files_free(&m->scan);
        new_diags_done(&m->scan.new_diags);
}

static void on_manifests_changed(Watch *w, bool root_changed, void *userdata) {
        Manager *m = userdata;
        char *const *files;
        size_t n;
        if (!root_changed && !m->scan.running && !m->stopping && watch_changed_files(w, &files, &n)) {
                /* the scan thread gets its own copy: the watcher's list lives until its
                 * next callback, which may come before the thread is done */
                char **copy = calloc(n ?: 1, sizeof(char *));
                size_t k = 0;
                for (; copy && k < n; k++)
                        if (!(copy[k] = strdup(files[k])))
                                break;
                if (copy && k == n) {
                        m->scan.files = copy;
                        m->scan.n_files = n;
                        manager_rescan(m, "files changed", false);
                        return;
                }
                for (size_t i = 0; copy && i < k; i++)
                        free(copy[i]);
                free(copy);
        }
        manager_rescan(m, root_changed ? "manifests directory replaced" : "files changed", false);
}

static int arm_resync(Manager *m);

static int on_resync(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        Manager *m = userdata;
        log_debug("Periodic resync");
        manager_rescan(m, "periodic resync", true);
        (void) arm_resync(m);
        return 0;
}

/* resync_interval, +-10% so that several hosts or restarts do not list in lockstep. */
static int arm_resync(Manager *m) {
        int64_t base = m->config.resync_interval_ms, spread = base / 10;
        int64_t delay = base - spread + (spread > 0 ? (int64_t) (random() % (2 * spread + 1)) : 0);
        int r;
        if (m->resync_timer)
                r = sd_event_source_set_time_relative(m->resync_timer, (uint64_t) delay * 1000);
        else
                r = sd_event_add_time_relative(m->event, &m->resync_timer, CLOCK_MONOTONIC,
                                               (uint64_t) delay * 1000, 0, on_resync, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->resync_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_error_errno(r, "Cannot arm the resync timer: %m");
        return r;
}

/* Backend (API client, credentials, state) and engine, from the config in force. */
static int manager_open_backend(Manager *m, const Config *config, Backend *ret_backend, Engine **ret_engine) {
        Backend b;
        int r = backend_open(&b, m->event, config);
        if (r < 0)
                return r;
        Engine *e;
        EngineOptions eo = { .follow = true, .daemon = true, .auth_retry_ms = config->auth_retry_interval_ms,
                          .state_retention_ms = config->state_retention_ms,
                          .prune = config_prune_policy(config) };
        r = engine_new(m->event, b.store, b.api, &eo, &e);
        if (r < 0) {
                backend_close(&b);
                return log_error_errno(r, "Cannot start the engine: %m");
        }
        engine_set_settled_callback(e, on_engine_settled, m);
        engine_set_progress_callback(e, on_engine_progress, m);
        engine_set_metrics(e, m->metrics);
        api_client_set_observer(b.api, metrics_api_observer, m->metrics);
        *ret_backend = b;
        *ret_engine = e;
        return 0;
}

static void manager_close_backend(Manager *m) {
        if (m->engine) {
                engine_stop(m->engine);
                if (m->backend.api)
                        api_client_cancel_all(m->backend.api);
        }
        m->engine = engine_free(m->engine);
        backend_close(&m->backend);
}

/* Sending is paused because the API refused the credentials, and the operator has
 * written new ones: no need to wait for SIGHUP or auth_retry_interval. Outside a pause
 * a change waits for a reload, as every other file does. */
static void on_credentials_changed(CredWatch *w, void *userdata) {
        (void) w;
        Manager *m = userdata;
        if (m->stopping || !m->engine || !engine_auth_failed(m->engine, NULL))
                return;
        log_info("Credential files changed while sending is paused for authentication; reloading");
        manager_reload(m);
}

/* Watch the credential files the configuration in force names (a reload may name others),
 * when they are what the credentials were loaded from: $CREDENTIALS_DIRECTORY wins over
 * them, and systemd fills it only at start. */
static void manager_watch_credentials(Manager *m) {
        const Config *c = &m->config;
        const char *const paths[] = { c->ak_file, c->sk_file, c->security_token_file, c->token_file,
                                      c->password_file };
        m->credwatch = credwatch_free(m->credwatch);
        if (!m->backend.credentials || !m->backend.credentials->from_config_files)
                return;
        int r = credwatch_new(m->event, paths, ELEMENTSOF(paths), MANAGER_CREDENTIALS_DEBOUNCE_MS,
                              on_credentials_changed, m, &m->credwatch);
        if (r < 0)
                log_warning_errno(r, "Cannot watch the credential files: %m; after changing them, reload");
}

static void manager_collect_metrics(Metrics *metrics, void *userdata) {
        Manager *m = userdata;
        metrics_collect_engine(metrics, m->engine, &m->config.tenants, m->n_invalid);
}

/* The writer for the config's metrics_file: (a reload may name another, or none; the
 * counters go on). Without a writer nothing is written, and a failure here only costs
 * the metrics, so it is a warning. */
static void manager_setup_metrics_file(Manager *m) {
        const char *path = m->config.metrics_file;
        if (m->metrics_writer && streq_ptr(path, metrics_writer_path(m->metrics_writer)))
                return;
        m->metrics_writer = metrics_writer_free(m->metrics_writer);
        if (!path)
                return;
        int r = metrics_writer_new(m->event, m->metrics, path, manager_collect_metrics, m, &m->metrics_writer);
        if (r < 0)
                log_warning_errno(r, "Cannot set up the metrics file %s: %m; no metrics are written", path);
        else
                metrics_writer_schedule(m->metrics_writer);
}

static void manager_reload(Manager *m) {
        if (m->scan.running) {
                /* The set is the scan thread's until it is in; reload right after. */
                log_debug("Reload requested during a manifest scan; it follows the scan");
                m->reload_pending = true;
                return;
        }
        (void) sd_notify(false, "RELOADING=1\nSTATUS=Reloading configuration and manifests");
        log_fields(LOG_NOTICE, MESSAGE_RELOAD, NULL, "Reloading: configuration, credentials and manifests");

        Config config;
        _cleanup_diags_ Diags diags = DIAGS_INIT;
        int r = cli_load_config(m->cli, true, &config, &diags);
        if (r < 0) {
                log_diagnostics(&diags, MESSAGE_CONFIG_INVALID);
                log_fields_errno(LOG_ERR, r, MESSAGE_CONFIG_INVALID, LOG_FIELDS({ "CONFIG_FILE", m->cli->config_path }),
                                 "New configuration %s is invalid; keeping the one in force", m->cli->config_path);
                goto done;
        }
        if (!streq_ptr(config.state_dir, m->config.state_dir)) {
                log_fields(LOG_ERR, MESSAGE_CONFIG_INVALID, LOG_FIELDS({ "CONFIG_FILE", m->cli->config_path }),
                           "state_dir changed (%s -> %s): that needs a restart; keeping the configuration in force",
                           m->config.state_dir, config.state_dir);
                config_done(&config);
                goto done;
        }
        DesiredSet *new_desired = NULL;
        bool new_root = !streq_ptr(config.manifests, m->config.manifests);
        ManifestPolicy policy = config_manifest_policy(&config);
        if (new_root && (r = desired_set_new(config.manifests, config.manifests, &policy, &new_desired)) < 0) {
                log_error_errno(r, "Cannot set up the manifests %s: %m; keeping the configuration in force",
                                config.manifests);
                config_done(&config);
                goto done;
        }
        Backend b;
        Engine *e;
        r = manager_open_backend(m, &config, &b, &e);
        if (r < 0) {
                log_fields(LOG_ERR, MESSAGE_CONFIG_INVALID, NULL,
                           "Reloaded configuration is unusable; keeping the one in force");
                desired_set_free(new_desired);
                config_done(&config);
                goto done;
        }
        if (backend_equivalent(&m->backend, &m->config, &b, &config)) {
                /* Same API, credentials and state: keep the running engine, its requests
                 * in flight, its 429 hold and what it has reported. */
                e = engine_free(e);
                backend_close(&b);
                if (engine_auth_failed(m->engine, NULL))
                        engine_reset_auth(m->engine);
        } else {
                /* A create cut short keeps its intent open, so the new engine lists
                 * before anything is sent again; the server's name uniqueness (6301) is
                 * the backstop for a create it was still processing. */
                manager_close_backend(m);
                m->backend = b;
                m->engine = e;
        }
        config_done(&m->config);
        m->config = config;
        manager_watch_credentials(m);
        manager_setup_metrics_file(m);
        if (new_desired) {
                desired_set_free(m->desired);
                m->desired = new_desired;
        } else if ((r = desired_set_set_policy(m->desired, &policy)) < 0)
                /* m->config now owns the lists the policy borrows: still valid here */
                log_warning_errno(r, "Cannot apply the new profiles/flavors lists: %m; the old ones stay in force");
        r = watch_set_path(m->watch, m->config.manifests);
        if (r < 0)
                log_warning_errno(r, "Cannot watch %s: %m; changes are noticed at the next resync", m->config.manifests);
        /* a reload re-reports what is wrong, in case the operator asks after fixing */
        m->logged_diags = hashmap_free(m->logged_diags);
        manager_rescan(m, "reload", true);
        (void) arm_resync(m);
done:
        (void) sd_notify(false, "READY=1");
        manager_update_status(m);
}

static int on_stop_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        Manager *m = userdata;
        log_warning("In-flight requests did not finish within %d s; cancelling them", MANAGER_STOP_GRACE_MS / 1000);
        if (m->backend.api)
                api_client_cancel_all(m->backend.api);
        sd_event_exit(m->event, 0);
        return 0;
}

static void manager_stop(Manager *m, int signo) {
        if (m->stopping)
                return;
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping: finishing requests in flight");
        m->stopping = true;
        atomic_store(&m->scan.cancel, true);
        m->watch = watch_free(m->watch);
        m->credwatch = credwatch_free(m->credwatch);
        m->resync_timer = sd_event_source_disable_unref(m->resync_timer);
        /* first stop: what was only queued is dropped, what is left is on the wire */
        if (m->engine)
                engine_stop(m->engine);
        char n[LOG_INT_BUFSIZE];
        unsigned in_flight = m->backend.api ? api_client_pending(m->backend.api) : 0;
        log_fields(LOG_NOTICE, MESSAGE_STOPPING, LOG_FIELDS({ "IN_FLIGHT", log_int(n, in_flight) }),
                   "Received %s; stopping after %u request%s in flight", strsignal(signo), in_flight,
                   in_flight == 1 ? "" : "s");
        if (!m->engine || engine_settled(m->engine)) {
                sd_event_exit(m->event, 0);
                return;
        }
        if (sd_event_add_time_relative(m->event, &m->stop_timer, CLOCK_MONOTONIC,
                                       (uint64_t) MANAGER_STOP_GRACE_MS * 1000, 0, on_stop_timeout, m) < 0)
                sd_event_exit(m->event, 0);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) s;
        Manager *m = userdata;
        if (si->ssi_signo == SIGHUP) {
                if (!m->stopping)
                        manager_reload(m);
        } else
                manager_stop(m, (int) si->ssi_signo);
        return 0;
}

static const char *manager_tenant_of(const char *name, void *userdata) {
        Manager *m = userdata;
        return tenant_of_notebook(m->engine, &m->config.tenants, name);
}

int manager_new(Cli *cli, Manager **ret) {
        Manager *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->cli = cli;
        m->state_lock_fd = -1;
        m->scan.efd = -1;
        /* main's config becomes ours: reload replaces it */
        m->config = cli->config;
        cli->config = (Config) {};
        int r = sd_event_new(&m->event);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        r = metrics_new(&m->metrics);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        log_set_derived_field("NOTEBOOK", "TENANT", manager_tenant_of, m);
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        log_set_derived_field(NULL, NULL, NULL, NULL);
        scan_join(m);
        scan_files_free(&m->scan);
        sd_event_source_disable_unref(m->scan.done_source);
        sd_event_source_disable_unref(m->log_source);
        diags_clear(&m->log_queue);
        if (m->scan.efd >= 0)
                close(m->scan.efd);
        m->watch = watch_free(m->watch);
        credwatch_free(m->credwatch);
        sd_event_source_disable_unref(m->resync_timer);
        sd_event_source_disable_unref(m->stop_timer);
        m->engine = engine_free(m->engine);
        backend_close(&m->backend);
        desired_set_free(m->desired);
        hashmap_free(m->logged_diags);
        metrics_writer_free(m->metrics_writer);
        metrics_free(m->metrics);
        config_done(&m->config);
        sd_event_unref(m->event);
        if (m->state_lock_fd >= 0)
                close(m->state_lock_fd);
        free(m);
        return NULL;
}

int manager_startup(Manager *m) {
        int r;
        srandom((unsigned) (now_monotonic_ms() ^ getpid()));

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if ((r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGHUP, on_signal, m)) < 0)
                return log_error_errno(r, "Cannot handle signals: %m");
        /* WATCHDOG=1 at half of WatchdogSec, from the loop itself: a stuck loop is killed */
        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Cannot enable the watchdog: %m");

        r = manifests_dir_check(m->config.manifests);
        if (r < 0)
                return r;
        /* the lock before the database is opened for writing (and maybe migrated) */
        r = state_dir_lock(m->config.state_dir, &m->state_lock_fd);
        if (r < 0)
                return r;
        r = manager_open_backend(m, &m->config, &m->backend, &m->engine);
        if (r < 0)
                return r;
        manager_setup_metrics_file(m);

        ManifestPolicy policy = config_manifest_policy(&m->config);
        r = desired_set_new(m->config.manifests, m->config.manifests, &policy, &m->desired);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the manifests %s: %m", m->config.manifests);
        r = watch_new(m->event, m->config.manifests, MANAGER_DEBOUNCE_MS, MANAGER_DEBOUNCE_MAX_MS,
                      on_manifests_changed, m, &m->watch);
        if (r < 0)
                return log_error_errno(r, "Cannot watch %s: %m", m->config.manifests);
        manager_watch_credentials(m);
        r = arm_resync(m);
        if (r < 0)
                return r;

        m->scan.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->scan.efd < 0)
                return log_error_errno(errno, "Cannot create an eventfd: %m");
        r = sd_event_add_io(m->event, &m->scan.done_source, m->scan.efd, EPOLLIN, on_scan_done, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the scan thread: %m");

        /* The full scan is part of starting up, but on the scan thread, with the loop
         * (watchdog, signals) running: READY=1 goes out when it is in (manager_started()),
         * before the first pass, so systemd (and the tests) see us up before any request
         * is sent. */
        (void) sd_notify(false, "STATUS=Starting: reading the manifests");
        manager_rescan(m, "startup", true);
        return 0;
}

/* The first scan is in, and its pass requested. */
static void manager_started(Manager *m) {
        m->ready = true;
        (void) sd_notify(false, "READY=1\nSTATUS=Started, first pass");
        log_fields(LOG_NOTICE, MESSAGE_STARTED,
                   LOG_FIELDS({ "MANIFESTS_DIR", m->config.manifests }, { "ENDPOINT", m->backend.endpoint }),
                   "notebookd " NOTEBOOKD_VERSION " started: watching %s, endpoint %s", m->config.manifests,
                   m->backend.endpoint);
}

static uint64_t clock_usec(clockid_t id) {
        struct timespec ts;
        clock_gettime(id, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}
#define now_usec() clock_usec(CLOCK_MONOTONIC)

/* sd_event_loop(), timing each iteration's own work (prepare, then dispatch: not the
 * wait) so that the longest one can be reported: a long one is what delays WATCHDOG=1
 * and signals. Four clock reads per iteration (one a system call). */
static int run_loop(Manager *m) {
        sd_event *e = m->event;
        for (;;) {
                int state = sd_event_get_state(e);
                if (state < 0)
                        return state;
                if (state == SD_EVENT_FINISHED)
                        break;
                uint64_t t0 = now_usec(), c0 = clock_usec(CLOCK_THREAD_CPUTIME_ID);
                int r = sd_event_prepare(e);
                uint64_t busy = now_usec() - t0;
                if (r == 0)
                        r = sd_event_wait(e, UINT64_MAX);
                /* the thread's CPU time includes the wait's few system calls, not its sleep */
                if (r > 0) {
                        uint64_t t1 = now_usec();
                        r = sd_event_dispatch(e);
                        busy += now_usec() - t1;
                }
                if (busy > m->loop_max_usec) {
                        m->loop_max_usec = busy;
                        m->loop_max_cpu_usec = clock_usec(CLOCK_THREAD_CPUTIME_ID) - c0;
                }
                if (r < 0)
                        return r;
        }
        int code = 0;
        int r = sd_event_get_exit_code(e, &code);
        return r < 0 ? r : code;
}

int manager_loop(Manager *m) {
        int r = run_loop(m);
        /* the last outcomes (requests drained at the stop) reach the file too; it stays,
         * and its last successful pass ages: a stopped daemon is noticed by that alert */
        metrics_writer_flush(m->metrics_writer);
        char usec[LOG_INT_BUFSIZE], cpu[LOG_INT_BUFSIZE];
        log_fields(LOG_DEBUG, NULL,
                   LOG_FIELDS({ "LOOP_MAX_USEC", log_int(usec, (long long) m->loop_max_usec) },
                              { "LOOP_MAX_CPU_USEC", log_int(cpu, (long long) m->loop_max_cpu_usec) }),
                   "Longest event loop iteration: %llu ms (%llu ms of CPU)",
                   (unsigned long long) (m->loop_max_usec / 1000), (unsigned long long) (m->loop_max_cpu_usec / 1000));
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                return EXIT_USAGE;
        }
        return r == 0 ? EXIT_OK : EXIT_USAGE;
}
