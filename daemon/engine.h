/* The reconcile engine: the loop-driven half of a pass, shared by `once` and `run`.
 *
 * A pass is: list the remote side (a full pass: every workspace; an incremental one:
 * only what it has no current listing of, see EnginePassKind), plan (lib/plan.c, pure)
 * against the records, the open intents and the listings, then act: adopt, write
 * intents durably and send creates, report drift, failures and gone instances, follow
 * instances on their way to RUNNING. Every retry is a later pass, and a create whose
 * outcome was lost is re-sent only after a listing of its workspace taken since (the
 * planner makes it WAIT, and the engine lists that workspace again): a lost create that
 * made an instance is adopted, not made again. (A listing cannot see a create the
 * server is still processing; the API's name uniqueness, ModelArts.6301, is the
 * backstop for that window, and 6301 is adopted too.)
 *
 * Per-name work never waits on another name: creates and polls run concurrently
 * (the API client caps how many are on the wire), a name with work in flight is left
 * alone by later passes until that work finishes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <systemd/sd-event.h>

#include "api.h"
#include "macro.h"
#include "prune.h"
#include "spec.h"
#include "store.h"

typedef struct Engine Engine;

typedef struct EngineOptions {
        bool follow;            /* poll created/pending instances until RUNNING or failed */
        bool daemon;            /* run: keep retrying forever; once: settle when idle */
        int64_t auth_retry_ms;  /* run: after an authentication failure, one more try this
                                 * much later (0 = CONFIG_DEFAULT_AUTH_RETRY_INTERVAL_MS) */
        int64_t state_retention_ms; /* store_prune's retention after a full pass
                                     * (0 = CONFIG_DEFAULT_STATE_RETENTION_MS) */
        PrunePolicy prune;          /* prune: (lib/prune.h); tree_problem is set by
                                     * engine_set_tree_problem, not here */
} EngineOptions;

/* Where one desired name stands: exactly one of these per name, set when a pass plans
 * it and moved as answers arrive. It is the one tally: EngineCounts counts it (for
 * PASS_FINISHED and STATUS=), and `once` reports it per name and exits by it. */
typedef enum EngineStanding {
        STANDING_WAITING,       /* no instance, and no create on the wire: not planned yet,
                                 * its workspace not listed, or sending paused */
        STANDING_PENDING,       /* the create is on the wire, or the instance is on its way */
        STANDING_RUNNING,       /* RUNNING (or STOPPED: it exists, starting it is not ours) */
        STANDING_FAILED,        /* the instance is in a failed status */
        STANDING_REJECTED,      /* the create was refused for this spec: wait for a change */
        STANDING_RETRYING,      /* a transient failure; a retry is scheduled */
        _STANDING_MAX,
} EngineStanding;

/* The tally of the standings, and the latest pass's drift and gone counts. */
typedef struct EngineCounts {
        size_t desired;
        size_t running;         /* STANDING_RUNNING */
        size_t pending;         /* STANDING_PENDING ("creating" in STATUS=) */
        size_t waiting;         /* STANDING_WAITING */
        size_t failed;          /* STANDING_FAILED */
        size_t rejected;        /* STANDING_REJECTED */
        size_t retrying;        /* STANDING_RETRYING */
        size_t drift;           /* exists, differs from its manifest (also counted above) */
        size_t gone;            /* recorded, no longer desired (not counted above) */
} EngineCounts;

/* once: called when nothing is in flight and no retry is due before the deadline. */
typedef void (*engine_settled_cb)(Engine *e, void *userdata);

int engine_new(sd_event *event, Store *store, ApiClient *api, const EngineOptions *o, Engine **ret);
Engine *engine_free(Engine *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Engine *, engine_free);

/* Replace the desired set. The specs are shared (spec_ref), never changed by the engine:
 * the caller may free its own references. Does not start a pass by itself. */
int engine_set_desired(Engine *e, const NotebookSpec *const *specs, size_t n);
/* The tenant of a name: its manifest's (tenants:), else the one its record kept; NULL
 * when neither says. Borrowed: valid until the next call. */
const char *engine_tenant_of(Engine *e, const char *name);
/* Why the last scan of the tree was not whole (copied), or NULL when it was: prune
 * deletes nothing, and no name starts its grace, while it is set (lib/prune.h). */
int engine_set_tree_problem(Engine *e, const char *problem);
/* With tenants: each tenant's part of the tree (desired_set_problem_of), NULL where it is
 * whole; replaces the whole tree's problem for the names whose record has that tenant.
 * Copied. */
int engine_set_tenant_problems(Engine *e, const char *const *tenants, const char *const *problems, size_t n);
/* Prune's deletions held this pass (over the cap, or the tree not whole), for STATUS=;
 * NULL when none are. Borrowed: valid until the next pass. */
const char *engine_prune_held(const Engine *e);
/* What a pass lists (part 6: an edit costs no relisting). */
typedef enum EnginePassKind {
        /* The tree changed, or a retry is due: plan every name from the records and the
         * last listing of each workspace, listing only the workspaces never listed, whose
         * listing failed, or that must be listed again (a 6301 to adopt, a create whose
         * outcome is unknown, an instance that vanished while followed). */
        ENGINE_PASS_INCREMENTAL,
        /* List every workspace: at start, at each resync, on SIGHUP. */
        ENGINE_PASS_FULL,
} EnginePassKind;
/* "incremental", "full": the journal's PASS_KIND. */
const char *engine_pass_kind_to_string(EnginePassKind k);

/* Start a pass now, or right after the one running (full if either asked for full).
 * An incremental pass before any listing worked is a full one. */
void engine_request_pass(Engine *e, EnginePassKind kind);
/* once: no retry is scheduled past this monotonic time (ms); 0 = no deadline. */
void engine_set_deadline(Engine *e, int64_t deadline_mono_ms);
void engine_set_settled_callback(Engine *e, engine_settled_cb cb, void *userdata);
/* run: called whenever something finished (a pass, a create, a poll): update STATUS=. */
void engine_set_progress_callback(Engine *e, engine_settled_cb cb, void *userdata);

/* Stop starting work (SIGTERM, deadline): no new pass, create or poll. In-flight
 * requests finish and are recorded. */
void engine_stop(Engine *e);
bool engine_settled(const Engine *e);

bool engine_auth_failed(const Engine *e, const char **ret_message);
/* Why sending (or creating) is paused, or NULL when it is not: "authentication failed",
 * "account frozen (ModelArts.6326)", "the state database cannot be written", or "listing
 * failed (WHY)" when no listing of the last pass worked (borrowed: valid until the engine
 * next runs). *ret_retry_mono_ms (optional): the next try, monotonic ms, 0 when none is
 * scheduled. */
const char *engine_pause_reason(const Engine *e, int64_t *ret_retry_mono_ms);
/* After a reload with new credentials: allow sending again. */
void engine_reset_auth(Engine *e);
/* A store write failed at least once (logged): `once` exits 2. */
bool engine_state_error(const Engine *e);
void engine_get_counts(const Engine *e, EngineCounts *ret);
/* The standing of a desired name (engine_set_desired's names; any other is WAITING). */
EngineStanding engine_standing(const Engine *e, const char *name);
/* ModelArts.6326 holds every create back now: a rerun cannot help until the account is
 * topped up. */
bool engine_account_frozen(const Engine *e);

/* ---- metrics (metrics_file:, lib/metrics.h) ---- */
typedef struct Metrics Metrics;
/* Count outcomes (creates, adoptions, deletions, rejections) and passes into m from now
 * on; borrowed, NULL stops. Only counting happens here: the daemon renders and writes. */
void engine_set_metrics(Engine *e, Metrics *m);
/* Why sending (or creating) can be paused, one gauge each (engine_pause_reason says the
 * first that holds in words). */
typedef enum EnginePause {
        ENGINE_PAUSE_AUTH,          /* the API refused the credentials */
        ENGINE_PAUSE_FROZEN,        /* ModelArts.6326 */
        ENGINE_PAUSE_STATE,         /* intents cannot be written */
        ENGINE_PAUSE_LISTING,       /* no listing of the last pass worked */
        _ENGINE_PAUSE_MAX,
} EnginePause;
const char *engine_pause_to_string(EnginePause p);   /* "authentication", ... */
bool engine_paused(const Engine *e, EnginePause p);
/* Each desired name and its standing, in no particular order. */
void engine_foreach_standing(const Engine *e, void (*cb)(const char *name, EngineStanding s, void *userdata),
                             void *userdata);
/* "running", "creating", ... (STATUS='s words for the standings). */
const char *engine_standing_to_string(EngineStanding s);
