#include "manager.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "desired.h"
#include "diag-log.h"
#include "engine.h"
#include "hashmap.h"
#include "limits.h"
#include "log.h"
#include "messages.h"
#include "setup.h"
#include "util.h"
#include "watch.h"

/* A burst of file events (a git checkout) settles for this long before one rescan;
 * a never-ending trickle is still rescanned at least this often. */
#define MANAGER_DEBOUNCE_MS 200
#define MANAGER_DEBOUNCE_MAX_MS 1000
/* SIGTERM: in-flight requests get this long to finish and be recorded; systemd's
 * default TimeoutStopSec (90 s) is far above it. */
#define MANAGER_STOP_GRACE_MS (10 * 1000)

struct Manager {
        Cli *cli;
        Config config;             /* in force (a failed reload keeps it) */
        sd_event *event;
        Backend backend;
        Engine *engine;
        DesiredSet *desired;
        Watch *watch;
        sd_event_source *resync_timer;
        sd_event_source *stop_timer;
        Hashmap *logged_diags;     /* diagnostics already in the journal: "key" -> NULL */
        size_t n_invalid;
        unsigned watch_errors;     /* watch_n_errors() already reported */
        int state_lock_fd;         /* one writer per state directory */
        bool stopping;
};

static void manager_update_status(Manager *m) {
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
        _cleanup_free_ char *s = xasprintf(
                "STATUS=%s%zu desired, %zu running, %zu creating, %zu failed, %zu rejected, %zu retrying, %zu invalid manifest%s",
                strempty(pause), c.desired, c.running, c.pending, c.failed, c.rejected, c.retrying, m->n_invalid,
                m->n_invalid == 1 ? "" : "s");
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

/* Log the manifest diagnostics not logged before: a bad file is reported when it
 * becomes bad, not again on every rescan. */
static void log_new_diagnostics(Manager *m) {
        const Diags *d = desired_set_diags(m->desired);
        Hashmap *now = NULL;
        if (hashmap_new(&now) < 0) {
                log_diagnostics(d, MESSAGE_MANIFEST_INVALID);
                return;
        }
        Diags fresh = DIAGS_INIT;
        for (size_t i = 0; i < d->n; i++) {
                const Diag *g = &d->items[i];
                _cleanup_free_ char *key = xasprintf("%s:%u:%u:%d:%s", g->file, g->line, g->column,
                                                     (int) g->severity, g->message);
                if (!key)
                        continue;
                (void) hashmap_put(now, key, NULL);
                if (!m->logged_diags || !hashmap_contains(m->logged_diags, key))
                        (void) diags_add(&fresh, g->severity, g->file, g->line, g->column, "%s", g->message);
        }
        log_diagnostics(&fresh, MESSAGE_MANIFEST_INVALID);
        diags_clear(&fresh);
        hashmap_free(m->logged_diags);
        m->logged_diags = now;
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

/* Re-read the tree (only changed files are parsed again) and hand the result over;
 * the caller starts the pass. */
static int manager_load_desired(Manager *m, const char *why) {
        int r = desired_set_rescan(m->desired);
        if (r < 0)
                /* the engine keeps its own copy of the previous set */
                return log_fields_errno(LOG_ERR, r, MESSAGE_MANIFEST_INVALID,
                                        LOG_FIELDS({ "CONFIG_FILE", m->config.manifests },
                                                   { "MANIFESTS_DIR", m->config.manifests }),
                                        "Cannot read the manifests directory %s: %m; keeping the previous desired set",
                                        m->config.manifests);
        log_new_diagnostics(m);
        DesiredStats st;
        desired_set_stats(m->desired, &st);
        m->n_invalid = st.n_invalid;
        size_t n;
        const NotebookSpec *const *specs = desired_set_specs(m->desired, &n);
        r = engine_set_desired(m->engine, specs, n);
        if (r < 0)
                return log_error_errno(r, "Cannot update the desired set: %m");
        log_debug("Manifests rescanned (%s): %zu files, %zu valid, %zu invalid", why, st.n_files, st.n_valid,
                  st.n_invalid);
        report_watch_errors(m);
        return 0;
}

static void manager_rescan(Manager *m, const char *why) {
        if (manager_load_desired(m, why) >= 0)
                engine_request_pass(m->engine);
        manager_update_status(m);
}

static void on_manifests_changed(Watch *w, bool root_changed, void *userdata) {
        (void) w;
        manager_rescan(userdata, root_changed ? "manifests directory replaced" : "files changed");
}

static int arm_resync(Manager *m);

static int on_resync(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        Manager *m = userdata;
        log_debug("Periodic resync");
        manager_rescan(m, "periodic resync");
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
        EngineOptions eo = { .follow = true, .daemon = true, .auth_retry_ms = config->auth_retry_interval_ms };
        r = engine_new(m->event, b.store, b.api, &eo, &e);
        if (r < 0) {
                backend_close(&b);
                return log_error_errno(r, "Cannot start the engine: %m");
        }
        engine_set_settled_callback(e, on_engine_settled, m);
        engine_set_progress_callback(e, on_engine_progress, m);
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

static void manager_reload(Manager *m) {
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
        manager_rescan(m, "reload");
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
        m->watch = watch_free(m->watch);
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

int manager_new(Cli *cli, Manager **ret) {
        Manager *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->cli = cli;
        m->state_lock_fd = -1;
        /* main's config becomes ours: reload replaces it */
        m->config = cli->config;
        cli->config = (Config) {};
        int r = sd_event_new(&m->event);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->watch = watch_free(m->watch);
        sd_event_source_disable_unref(m->resync_timer);
        sd_event_source_disable_unref(m->stop_timer);
        m->engine = engine_free(m->engine);
        backend_close(&m->backend);
        desired_set_free(m->desired);
        hashmap_free(m->logged_diags);
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

        ManifestPolicy policy = config_manifest_policy(&m->config);
        r = desired_set_new(m->config.manifests, m->config.manifests, &policy, &m->desired);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the manifests %s: %m", m->config.manifests);
        r = watch_new(m->event, m->config.manifests, MANAGER_DEBOUNCE_MS, MANAGER_DEBOUNCE_MAX_MS,
                      on_manifests_changed, m, &m->watch);
        if (r < 0)
                return log_error_errno(r, "Cannot watch %s: %m", m->config.manifests);
        r = arm_resync(m);
        if (r < 0)
                return r;

        /* The full scan is part of starting up; READY=1 then goes out before the first
         * pass, so systemd (and the tests) see us up before any request is sent. */
        (void) manager_load_desired(m, "startup");
        (void) sd_notify(false, "READY=1\nSTATUS=Started, first pass");
        log_fields(LOG_NOTICE, MESSAGE_STARTED,
                   LOG_FIELDS({ "MANIFESTS_DIR", m->config.manifests }, { "ENDPOINT", m->backend.endpoint }),
                   "notebookd " NOTEBOOKD_VERSION " started: watching %s, endpoint %s", m->config.manifests,
                   m->backend.endpoint);
        engine_request_pass(m->engine);
        manager_update_status(m);
        return 0;
}

int manager_loop(Manager *m) {
        int r = sd_event_loop(m->event);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                return EXIT_USAGE;
        }
        return r == 0 ? EXIT_OK : EXIT_USAGE;
}
