/* notebookd plan: what a pass would do, changing nothing. Offline: the desired set from
 * the manifests, the recorded state (read-only, fine while a daemon writes), no
 * listing; so adoptions and "missing remotely" only show once `once`/the daemon lists.
 * With --live it lists the cloud first (daemon/live.c: ModelArts list calls only,
 * credentials fetched as configured, nothing recorded) and
 * plans exactly as a full pass would, then exits 4 when that pass has changes to make.
 * Manifest diagnostics go to stderr as with check; the plan goes to stdout. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "credentials.h"
#include "desired.h"
#include "live.h"
#include "log.h"
#include "plan.h"
#include "prune.h"
#include "setup.h"
#include "store.h"
#include "util.h"

/* --live: what the next pass would change, or put before the operator: a create, an
 * adoption, a start or stop, a create due after its backoff, drift (the API cannot fix
 * it in place: someone must decide), and a deletion prune will make or is holding for a
 * reason that passes (the grace, the cap, a tree not whole, a listing). Not a change:
 * ok, pending (followed), failed (reported), blocked (waits for its manifest to change),
 * and a gone instance prune will never delete (prune off, or adopted). */
static bool action_is_change(const Action *a) {
        switch (a->kind) {
        case ACTION_CREATE:
        case ACTION_ADOPT:
        case ACTION_START:
        case ACTION_STOP:
        case ACTION_DELETE:
        case ACTION_DRIFT:
        case ACTION_RETRY_LATER:
                return true;
        case ACTION_GONE:
                return a->prune_hold == PRUNE_HOLD_TREE || a->prune_hold == PRUNE_HOLD_GRACE ||
                       a->prune_hold == PRUNE_HOLD_CAP || a->prune_hold == PRUNE_HOLD_UNLISTED;
        default:
                return false;
        }
}

static size_t plan_changes(const Plan *p) {
        size_t n = 0;
        for (size_t i = 0; i < p->n; i++)
                n += action_is_change(&p->actions[i]);
        return n;
}

/* The tenant of an action's name: its manifest's, else its record's, else the one owning
 * its prefix; NULL without tenants. */
static const char *action_tenant(const Action *a, const TenantList *tenants) {
        if (tenants->n == 0)
                return NULL;
        if (a->spec && a->spec->tenant)
                return a->spec->tenant;
        if (a->record && a->record->tenant)
                return a->record->tenant;
        const Tenant *t = tenant_owning_name(tenants, a->name);
        return t ? t->name : NULL;
}

/* --tenant: keep only that tenant's actions (the counts follow). */
static void plan_filter_tenant(Plan *p, const TenantList *tenants, const char *tenant) {
        size_t kept = 0;
        memset(p->counts, 0, sizeof p->counts);
        for (size_t i = 0; i < p->n; i++)
                if (streq_ptr(action_tenant(&p->actions[i], tenants), tenant)) {
                        p->actions[kept] = p->actions[i];
                        p->counts[p->actions[kept++].kind]++;
                }
        p->n = kept;
}

static cJSON *action_to_json(const Action *a, const TenantList *tenants, int64_t now_ms) {
        static const struct {
                unsigned bit;
                const char *name;
        } drift_names[] = {
                { DRIFT_SPEC_HASH, "spec" },           { DRIFT_FLAVOR, "flavor" },
                { DRIFT_PROFILE, "profile_id" },       { DRIFT_DESCRIPTION, "description" },
                { DRIFT_WORKSPACE, "workspace.id" },
        };
        _cleanup_free_ char *detail = action_describe(a, now_ms);
        cJSON *o = cJSON_CreateObject(), *drift = NULL;
        const char *id = a->remote && a->remote->id ? a->remote->id : a->record ? a->record->instance_id : NULL;
        bool ok = o && detail && cJSON_AddStringToObject(o, "kind", action_kind_to_string(a->kind)) &&
                  cJSON_AddStringToObject(o, "name", a->name) &&
                  cJSON_AddStringToObject(o, "reason", action_reason_to_string(a->reason)) &&
                  cJSON_AddStringToObject(o, "detail", detail) &&
                  (id ? cJSON_AddStringToObject(o, "instance_id", id) : cJSON_AddNullToObject(o, "instance_id")) &&
                  (a->status ? cJSON_AddStringToObject(o, "status", a->status) : cJSON_AddNullToObject(o, "status")) &&
                  (drift = cJSON_AddArrayToObject(o, "drift"));
        for (size_t i = 0; ok && i < ELEMENTSOF(drift_names); i++)
                if (a->drift_fields & drift_names[i].bit)
                        ok = cJSON_AddItemToArray(drift, cJSON_CreateString(drift_names[i].name));
        if (ok && a->spec)
                ok = cJSON_AddStringToObject(o, "spec_hash", a->spec_hash) &&
                     cJSON_AddStringToObject(o, "file", strempty(a->spec->file)) &&
                     cJSON_AddNumberToObject(o, "line", a->spec->doc_pos.line);
        if (ok && a->intent)
                ok = cJSON_AddNumberToObject(o, "intent_id", (double) a->intent->id);
        if (ok && a->record && a->record->error_code)
                ok = cJSON_AddStringToObject(o, "error_code", a->record->error_code);
        if (ok && action_tenant(a, tenants))
                ok = cJSON_AddStringToObject(o, "tenant", action_tenant(a, tenants));
        if (ok && a->spec && a->spec->state != DESIRED_STATE_ANY)
                ok = cJSON_AddStringToObject(o, "desired_state", desired_state_to_string(a->spec->state));
        /* prune: why a deletion waits, and when it is due (ms since the epoch) */
        if (ok && a->prune_hold != PRUNE_HOLD_NONE)
                ok = cJSON_AddStringToObject(o, "prune_hold", prune_hold_to_string(a->prune_hold));
        if (ok && a->prune_due_ms > 0)
                ok = cJSON_AddNumberToObject(o, "prune_due_ms", (double) a->prune_due_ms);
        if (!ok) {
                cJSON_Delete(o);
                return NULL;
        }
        return o;
}

static int print_json(const Plan *p, const TenantList *tenants, const DesiredStats *st, size_t n_records,
                      size_t n_intents, const LiveListing *live, int64_t now_ms) {
        cJSON *o = cJSON_CreateObject(), *counts = NULL, *actions = NULL, *unlisted = NULL;
        size_t changes = plan_changes(p);
        bool ok = o && cJSON_AddBoolToObject(o, "offline", p->offline) &&
                  cJSON_AddBoolToObject(o, "live", live != NULL) &&
                  cJSON_AddNumberToObject(o, "desired", (double) st->n_valid) &&
                  cJSON_AddNumberToObject(o, "invalid", (double) st->n_invalid) &&
                  cJSON_AddNumberToObject(o, "recorded", (double) n_records) &&
                  cJSON_AddNumberToObject(o, "open_intents", (double) n_intents) &&
                  (counts = cJSON_AddObjectToObject(o, "counts")) &&
                  (actions = cJSON_AddArrayToObject(o, "actions"));
        for (int k = 0; ok && k < _ACTION_KIND_MAX; k++)
                ok = cJSON_AddNumberToObject(counts, action_kind_to_string((ActionKind) k), (double) p->counts[k]);
        /* --live: the verdict (exit 4 when changes > 0), and the workspaces not listed */
        if (ok && live)
                ok = cJSON_AddNumberToObject(o, "changes", (double) changes) &&
                     cJSON_AddBoolToObject(o, "nothing_to_do", changes == 0 && live->n_unlisted == 0) &&
                     (unlisted = cJSON_AddArrayToObject(o, "unlisted"));
        for (size_t i = 0; ok && live && i < live->n_unlisted; i++) {
                cJSON *u = cJSON_CreateObject();
                ok = u && cJSON_AddItemToArray(unlisted, u);
                if (!ok)
                        cJSON_Delete(u);
                else
                        ok = cJSON_AddStringToObject(u, "workspace_id", strempty(live->unlisted[i])) &&
                             cJSON_AddStringToObject(u, "error", strempty(live->unlisted_why[i]));
        }
        for (size_t i = 0; ok && i < p->n; i++) {
                cJSON *a = action_to_json(&p->actions[i], tenants, now_ms);
                ok = a && cJSON_AddItemToArray(actions, a);
                if (!a)
                        ok = false;
                if (ok && live)
                        ok = cJSON_AddBoolToObject(a, "change", action_is_change(&p->actions[i]));
        }
        char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!text)
                return -ENOMEM;
        puts(text);
        cJSON_free(text);
        return 0;
}

static int print_table(const Plan *p, const TenantList *tenants, const DesiredStats *st, const LiveListing *live,
                       int64_t now_ms) {
        size_t w_name = 4, w_tenant = 6;
        for (size_t i = 0; i < p->n; i++) {
                w_name = MAX(w_name, strlen(p->actions[i].name));
                w_tenant = MAX(w_tenant, strlen(strempty(action_tenant(&p->actions[i], tenants))));
        }
        w_name = MIN(w_name, (size_t) 64);
        w_tenant = MIN(w_tenant, (size_t) 64);
        /* the TENANT column only where tenants are set */
        int wt = tenants->n > 0 ? (int) w_tenant : 0;
        const char *sep_t = tenants->n > 0 ? "  " : "";
        if (p->n > 0)
                printf("%-11s  %-*s%s%-*s  %s\n", "ACTION", wt, wt ? "TENANT" : "", sep_t, (int) w_name, "NAME",
                       "DETAIL");
        for (size_t i = 0; i < p->n; i++) {
                const Action *a = &p->actions[i];
                _cleanup_free_ char *detail = action_describe(a, now_ms);
                _cleanup_free_ char *name = terminal_safe(a->name);
                _cleanup_free_ char *safe = detail ? terminal_safe(detail) : NULL;
                _cleanup_free_ char *tenant = terminal_safe(wt ? action_tenant(a, tenants) ?: "-" : "");
                if (!name || !safe || !tenant)
                        return -ENOMEM;
                printf("%-11s  %-*s%s%-*s  %s\n", action_kind_to_string(a->kind), wt, tenant, sep_t, (int) w_name,
                       name, safe);
        }

        /* "5 desired, 1 invalid manifest: 2 create, 1 wait, 2 ok (offline: ...)" */
        printf("%zu desired", st->n_valid);
        if (st->n_invalid > 0)
                printf(", %zu invalid manifest%s (not applied)", st->n_invalid, st->n_invalid == 1 ? "" : "s");
        const char *sep = ": ";
        for (int k = 0; k < _ACTION_KIND_MAX; k++)
                if (p->counts[k] > 0) {
                        printf("%s%zu %s", sep, p->counts[k], action_kind_to_string((ActionKind) k));
                        sep = ", ";
                }
        if (p->n == 0 && !live)
                fputs(": nothing to do", stdout);
        if (p->offline)
                fputs(" (offline: the remote listing may turn creates into adoptions)", stdout);
        putchar('\n');
        if (p->prune_capped && p->prune_confirm == 0)
                printf("prune: %zu deletions due, more than prune_max_per_pass (%u): none is made; "
                       "notebookd once --prune-confirm=%zu makes them\n", p->prune_due, p->prune_max, p->prune_due);
        /* --live: the last line, the verdict a human or a script reads first */
        size_t changes = plan_changes(p);
        if (live && live->n_unlisted > 0)
                printf("incomplete: %zu workspace%s could not be listed (see stderr); %zu change%s so far\n",
                       live->n_unlisted, live->n_unlisted == 1 ? "" : "s", changes, changes == 1 ? "" : "s");
        else if (live && changes == 0)
                puts("nothing to do");
        else if (live)
                printf("%zu change%s for the next pass\n", changes, changes == 1 ? "" : "s");
        return 0;
}

static const char *tree_problem_of(const char *tenant, void *userdata) {
        return tree_problems_of(userdata, tenant);
}

/* --live: the API client as `once` builds it (the same checks, messages and exit code
 * for a missing endpoint, project or credentials), then one listing of every workspace
 * a full pass lists. No store is opened for writing and no engine runs, so nothing but
 * ModelArts list calls (and what the credentials need: an IAM token, the metadata
 * service's keys) can leave. EXIT_OK with *ret filled, else the exit code (already
 * reported). */
static int list_live(Cli *cli, const NotebookSpec *const *specs, size_t n_specs, const InstanceRecord *records,
                     size_t n_records, LiveListing *ret) {
        log_setup(cli->log_target, cli->log_level);
        (void) credentials_disable_core_dumps();
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        int r = sd_event_new(&event);
        if (r < 0) {
                log_error_errno(r, "Cannot create the event loop: %m");
                return EXIT_USAGE;
        }
        Backend b;
        r = backend_open_api(&b, event, &cli->config);
        if (r < 0)
                return EXIT_USAGE;
        /* the workspaces the engine's full pass lists, by the same function */
        const char **ws = NULL;
        size_t n_ws = 0;
        r = plan_workspaces_needed(specs, n_specs, records, n_records, &ws, &n_ws);
        if (r >= 0)
                r = live_list(event, b.api, ws, n_ws, ret);
        free(ws);
        backend_close(&b);
        if (r < 0) {
                log_error_errno(r, "Cannot list the cloud: %m");
                return EXIT_USAGE;
        }
        if (ret->auth_failed) {
                /* as once says it (logged above with MESSAGE_AUTH_FAILED, too) */
                _cleanup_free_ char *safe = terminal_safe(ret->auth_message);
                fprintf(stderr, "notebookd: authentication failed: %s\n", strempty(safe));
                live_listing_done(ret);
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < ret->n_unlisted; i++) {
                _cleanup_free_ char *w = terminal_safe(ret->unlisted[i]), *why = terminal_safe(ret->unlisted_why[i]);
                fprintf(stderr, "notebookd: plan: cannot list workspace %s: %s\n", strempty(w), strempty(why));
        }
        return EXIT_OK;
}

int verb_plan(Cli *cli) {
        const char *manifests = cli->config.manifests;
        const char *state_dir = cli->config.state_dir;
        if (!manifests || !state_dir) {
                fputs("notebookd: plan: no manifests directory or state directory configured\n", stderr);
                return EXIT_USAGE;
        }
        if (cli->tenant && !tenant_find(&cli->config.tenants, cli->tenant)) {
                fprintf(stderr, "notebookd: plan: --tenant %s: no such tenant in %s\n", cli->tenant,
                        cli->config.file ? cli->config.file : "the configuration (no tenants: set)");
                return EXIT_USAGE;
        }

        _cleanup_(desired_set_freep) DesiredSet *set = NULL;
        ManifestPolicy policy = config_manifest_policy(&cli->config);
        int r = desired_set_new(manifests, manifests, &policy, &set);
        if (r >= 0)
                r = desired_set_rescan(set);
        if (r < 0) {
                fprintf(stderr, "%s: error: cannot read the manifests: %s\n", manifests, strerror(-r));
                return EXIT_USAGE;
        }
        const Diags *diags = desired_set_diags(set);
        diags_print(diags, stderr);
        DesiredStats st;
        desired_set_stats(set, &st);
        size_t n_specs = 0;
        const NotebookSpec *const *specs = desired_set_specs(set, &n_specs);

        _cleanup_(store_freep) Store *store = NULL;
        _cleanup_free_ char *err = NULL;
        InstanceRecord *records = NULL;
        CreateIntent *intents = NULL;
        size_t n_records = 0, n_intents = 0;
        r = store_open(state_dir, STORE_READ_ONLY, &store, &err);
        if (r == -ENOENT)
                r = 0; /* nothing recorded yet: everything desired is new */
        else if (r < 0) {
                fprintf(stderr, "notebookd: plan: %s\n", err ? err : strerror(-r));
                return EXIT_USAGE;
        } else if ((r = store_list_instances(store, &records, &n_records)) < 0 ||
                   (r = store_list_open_intents(store, &intents, &n_intents)) < 0) {
                fprintf(stderr, "notebookd: plan: %s: cannot read recorded state: %s\n", store_path(store),
                        r == -ENOMEM ? strerror(ENOMEM) : store_error_message(store));
                instance_records_free(records, n_records);
                return EXIT_USAGE;
        }

        _cleanup_(live_listing_done) LiveListing live = {};
        if (cli->live) {
                int code = list_live(cli, specs, n_specs, records, n_records, &live);
                if (code != EXIT_OK) {
                        instance_records_free(records, n_records);
                        create_intents_free(intents, n_intents);
                        return code;
                }
        }
        /* a full pass's view: every workspace listed just now, those that failed apart */
        RemoteView view = {
                .instances = &live.instances,
                .unlisted = (const char *const *) live.unlisted,
                .n_unlisted = live.n_unlisted,
        };

        int64_t now_ms = now_realtime_ms();
        _cleanup_(plan_freep) Plan *plan = NULL;
        r = plan_compute(specs, n_specs, records, n_records, intents, n_intents, cli->live ? &view : NULL, now_ms,
                         &plan);
        _cleanup_(tree_problems_done) TreeProblems tp = {};
        if (r >= 0)
                r = desired_set_tree_problems(set, &cli->config.tenants, &tp);
        if (r >= 0) {
                PrunePolicy prune = config_prune_policy(&cli->config);
                prune.tree_problem = tp.whole;
                prune.tree_problem_of = tree_problem_of;
                prune.userdata = &tp;
                plan_apply_prune(plan, &prune, now_ms);
        }
        const TenantList *tenants = &cli->config.tenants;
        if (r >= 0 && cli->tenant)
                plan_filter_tenant(plan, tenants, cli->tenant);
        const LiveListing *shown = cli->live ? &live : NULL;
        size_t changes = r >= 0 ? plan_changes(plan) : 0;
        if (r >= 0)
                r = cli->json ? print_json(plan, tenants, &st, n_records, n_intents, shown, now_ms)
                              : print_table(plan, tenants, &st, shown, now_ms);
        plan = plan_free(plan); /* points into records, intents and the listing */
        instance_records_free(records, n_records);
        create_intents_free(intents, n_intents);
        if (r < 0) {
                fprintf(stderr, "notebookd: plan: %s\n", strerror(-r));
                return EXIT_USAGE;
        }
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "notebookd: plan: cannot write the plan: %s\n", strerror(errno));
                return EXIT_USAGE;
        }
        /* --live, most urgent first: a workspace not listed (2 for a policy denial, 3
         * when running again may help, 1 when it was refused for good), then invalid
         * manifests (a human must fix them: 1 even when the valid ones have changes, as
         * terraform's error beats its "changes"), then changes */
        int unlisted = cli->live ? live_exit_code(&live) : EXIT_OK;
        if (unlisted != EXIT_OK)
                return unlisted;
        if (diags->n_errors > 0)
                return EXIT_INVALID;
        return cli->live && changes > 0 ? EXIT_CHANGES : EXIT_OK;
}
