/* `notebookd once`: one full reconcile pass (with its retries, up to --timeout), then
 * a report and an exit status a script can trust. It runs the daemon's own engine on
 * the daemon's own loop; only the ending differs. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-event.h>

#include "cli.h"
#include "desired.h"
#include "diag-log.h"
#include "engine.h"
#include "instance.h"
#include "log.h"
#include "messages.h"
#include "metrics-writer.h"
#include "setup.h"
#include "util.h"

typedef struct OnceState {
        sd_event *event;
        Engine *engine;
        ApiClient *api;
        bool interrupted;
        const TenantList *tenants;
        size_t n_invalid;
        Metrics *metrics;           /* metrics_file: set */
        MetricsWriter *metrics_writer;
} OnceState;

static void once_collect_metrics(Metrics *m, void *userdata) {
        OnceState *s = userdata;
        metrics_collect_engine(m, s->engine, s->tenants, s->n_invalid);
}

static const char *once_tenant_of(const char *name, void *userdata) {
        OnceState *s = userdata;
        return tenant_of_notebook(s->engine, s->tenants, name);
}

static void on_settled(Engine *e, void *userdata) {
        (void) e;
        OnceState *s = userdata;
        sd_event_exit(s->event, 0);
}

/* Deadline or Ctrl-C: stop starting work; what is on the wire is cancelled and its
 * outcome recorded (a create whose answer is lost keeps its intent open). */
static void wind_down(OnceState *s) {
        engine_stop(s->engine);
        api_client_cancel_all(s->api);
        if (engine_settled(s->engine))
                sd_event_exit(s->event, 0);
}

static int on_deadline(sd_event_source *src, uint64_t usec, void *userdata) {
        (void) src;
        (void) usec;
        OnceState *s = userdata;
        log_warning("Deadline reached (--timeout); stopping");
        wind_down(s);
        return 0;
}

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        (void) src;
        OnceState *s = userdata;
        s->interrupted = true;
        log_notice("Received %s; stopping", strsignal((int) si->ssi_signo));
        wind_down(s);
        return 0;
}

/* The word for a name: its standing in the engine (the one tally), told apart by
 * what the record says where that helps the operator. */
static const char *verdict_of(EngineStanding st, const InstanceRecord *rec, bool wait, bool frozen) {
        bool adopted = streq_ptr(rec->result, RECORD_RESULT_ADOPTED);
        switch (st) {
        case STANDING_RUNNING:
                return adopted ? "adopted" : "ok";
        case STANDING_PENDING:
                /* without --wait an accepted create is the job done */
                if (wait || !rec->instance_id)
                        return "not running yet";
                return adopted ? "adopted" : "ok";
        case STANDING_FAILED:
                return "failed";
        case STANDING_REJECTED:
                /* 6301 for a name no listing of ours shows: a human must act */
                return streq_ptr(rec->result, RECORD_RESULT_CONFLICT) || streq_ptr(rec->result, RECORD_RESULT_EXISTS)
                               ? "conflict"
                               : "rejected";
        case STANDING_RETRYING:
                return frozen ? "frozen" : "retrying";
        default:
                return frozen ? "frozen" : "not created";
        }
}

/* One line per desired instance: the engine's verdict, and what the store recorded. */
static void report(const Engine *e, Store *store, const NotebookSpec *const *specs, size_t n, bool wait) {
        bool frozen = engine_account_frozen(e);
        for (size_t i = 0; i < n; i++) {
                _cleanup_(instance_record_done) InstanceRecord rec = {};
                _cleanup_free_ char *name = quote_for_log(specs[i]->name);
                (void) store_get_instance(store, specs[i]->name, &rec);   /* details only */
                const char *verdict = verdict_of(engine_standing(e, specs[i]->name), &rec, wait, frozen);
                /* what the server sent reaches the terminal escaped, like status shows it */
                _cleanup_free_ char *id = rec.instance_id ? terminal_safe(rec.instance_id) : NULL,
                                    *st = rec.status ? terminal_safe(rec.status) : NULL,
                                    *err = rec.error_code || rec.error_msg
                                                   ? terminal_safe(rec.error_code ? rec.error_code : rec.error_msg)
                                                   : NULL;
                printf("%-10s %s%s%s%s%s%s%s\n", verdict, name, id ? " " : "", strempty(id), st ? " " : "",
                       strempty(st), err ? ": " : "", strempty(err));
        }
}

/* The exit status from the tally, most urgent first (2 was decided before). A frozen
 * account holds every create back, and only a human (topping it up) changes that. */
static int exit_code_of(const EngineCounts *c, bool wait, bool frozen, bool invalid, bool interrupted) {
        if (frozen && (c->waiting > 0 || c->retrying > 0))
                return EXIT_INVALID;
        if (c->waiting > 0 || c->retrying > 0 || (wait && c->pending > 0))
                return EXIT_TRANSIENT;
        if (c->rejected > 0 || c->failed > 0 || invalid)
                return EXIT_INVALID;
        return interrupted ? EXIT_TRANSIENT : EXIT_OK;
}

int verb_once(Cli *cli) {
        log_setup(cli->log_target, cli->log_level);
        (void) credentials_disable_core_dumps();
        /* backoff jitter: hosts running `once` from cron must not retry in lockstep */
        srandom((unsigned) (now_realtime_ms() ^ getpid()));

        _cleanup_(desired_set_freep) DesiredSet *desired = NULL;
        if (manifests_dir_check(cli->config.manifests) < 0)
                return EXIT_USAGE;
        ManifestPolicy policy = config_manifest_policy(&cli->config);
        int r = desired_set_new(cli->config.manifests, cli->config.manifests, &policy, &desired);
        if (r >= 0)
                r = desired_set_rescan(desired);
        if (r < 0) {
                log_error_errno(r, "Cannot read manifests in %s: %m", cli->config.manifests);
                return EXIT_USAGE;
        }
        log_diagnostics(desired_set_diags(desired), MESSAGE_MANIFEST_INVALID);
        DesiredStats stats;
        desired_set_stats(desired, &stats);
        size_t n_specs;
        const NotebookSpec *const *specs = desired_set_specs(desired, &n_specs);

        if (cli->prune_confirm > 0 && !cli->config.prune) {
                fprintf(stderr, "notebookd: --prune-confirm: prune is off in %s (set prune: true)\n",
                        cli->config.file ? cli->config.file : "the configuration");
                return EXIT_USAGE;
        }
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        r = sd_event_new(&event);
        if (r < 0) {
                log_error_errno(r, "Cannot create the event loop: %m");
                return EXIT_USAGE;
        }
        /* the lock before the database is opened for writing (and maybe migrated) */
        _cleanup_close_ int lock_fd = -1;
        r = state_dir_lock(cli->config.state_dir, &lock_fd);
        if (r < 0)
                return startup_exit_code(r);
        Backend b;
        r = backend_open(&b, event, &cli->config);
        if (r < 0)
                return startup_exit_code(r);

        OnceState s = { .event = event, .api = b.api, .tenants = &cli->config.tenants, .n_invalid = stats.n_invalid };
        EngineOptions eo = { .follow = cli->wait, .daemon = false,
                             .state_retention_ms = cli->config.state_retention_ms,
                             .prune = config_prune_policy(&cli->config) };
        eo.prune.confirm = cli->prune_confirm;
        int exit_code = EXIT_USAGE;
        r = engine_new(event, b.store, b.api, &eo, &s.engine);
        if (r >= 0)
                r = engine_apply_tree_problems(s.engine, desired, &cli->config.tenants);
        if (r >= 0)
                r = engine_set_desired(s.engine, specs, n_specs);
        if (r < 0) {
                log_error_errno(r, "Cannot start: %m");
                goto finish;
        }
        log_set_derived_field("NOTEBOOK", "TENANT", once_tenant_of, &s);
        /* the same file as the daemon's, written as outcomes come and at the end; a
         * failure to set it up costs only the metrics */
        if (cli->config.metrics_file) {
                r = metrics_new(&s.metrics);
                if (r >= 0)
                        r = metrics_writer_new(event, s.metrics, cli->config.metrics_file, once_collect_metrics, &s,
                                               &s.metrics_writer);
                if (r < 0)
                        log_warning_errno(r, "Cannot set up the metrics file %s: %m; no metrics are written",
                                          cli->config.metrics_file);
                engine_set_metrics(s.engine, s.metrics);
                api_client_set_observer(b.api, metrics_api_observer, s.metrics);
        }
        int64_t deadline = now_monotonic_ms() + cli->timeout_ms;
        engine_set_deadline(s.engine, deadline);
        engine_set_settled_callback(s.engine, on_settled, &s);

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if ((r = sd_event_add_signal(event, NULL, SIGINT, on_signal, &s)) < 0 ||
            (r = sd_event_add_signal(event, NULL, SIGTERM, on_signal, &s)) < 0 ||
            (r = sd_event_add_time(event, NULL, CLOCK_MONOTONIC, (uint64_t) deadline * 1000, 1000, on_deadline, &s)) < 0) {
                log_error_errno(r, "Cannot set up the loop: %m");
                goto finish;
        }

        engine_request_pass(s.engine, ENGINE_PASS_FULL);
        if (!engine_settled(s.engine)) {
                r = sd_event_loop(event);
                if (r < 0) {
                        log_error_errno(r, "Event loop failed: %m");
                        goto finish;
                }
        }

        const char *auth_message;
        if (engine_auth_failed(s.engine, &auth_message)) {
                /* already logged; the console line for the operator */
                _cleanup_free_ char *safe = terminal_safe(auth_message);
                fprintf(stderr, "notebookd: authentication failed: %s\n", strempty(safe));
                exit_code = EXIT_USAGE;
                goto finish;
        }
        if (engine_state_error(s.engine)) {
                exit_code = EXIT_USAGE;
                goto finish;
        }

        EngineCounts c;
        engine_get_counts(s.engine, &c);
        report(s.engine, b.store, specs, n_specs, cli->wait);
        printf("%zu desired: %zu running, %zu creating, %zu waiting, %zu failed, %zu rejected, %zu retrying; "
               "%zu invalid manifest document%s\n",
               c.desired, c.running, c.pending, c.waiting, c.failed, c.rejected, c.retrying, stats.n_invalid,
               stats.n_invalid == 1 ? "" : "s");
        const char *prune_held = engine_prune_held(s.engine);
        if (prune_held)
                fprintf(stderr, "notebookd: %s (notebookd plan lists them)\n", prune_held);
        exit_code = exit_code_of(&c, cli->wait, engine_account_frozen(s.engine),
                                 stats.n_invalid > 0 || desired_set_diags(desired)->n_errors > 0 || prune_held,
                                 s.interrupted);

finish:
        metrics_writer_flush(s.metrics_writer);
        s.metrics_writer = metrics_writer_free(s.metrics_writer);
        log_set_derived_field(NULL, NULL, NULL, NULL);
        s.engine = engine_free(s.engine);
        backend_close(&b);
        metrics_free(s.metrics);
        return exit_code;
}
