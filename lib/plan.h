/* The planner: the heart of correctness, and a pure function. It takes what the
 * manifests want, what the store recorded, and (optionally) what the cloud lists, and
 * says per name what a pass should do. No I/O, no clock (now is an argument), no
 * global state: every input case is a unit test.
 *
 * One action per name, sorted by name (byte order). Names come from the desired set,
 * the records and the open intents together. Actions point into the inputs (spec,
 * record, remote, intent): keep the inputs alive as long as the plan.
 *
 * Safety rule: the plan never says CREATE for a name with an open intent unless a
 * remote listing was given and proved the name absent. Without a listing that name is
 * WAIT. With a listing, an open intent is attached to the name's action and is
 * settled by it: `remote` set means an instance exists under that name (the lost
 * create made it, or someone did), NULL means none does; the engine resolves the
 * intent accordingly. A WAIT action's intent stays open.
 *
 * A recorded result "unknown" (sent, outcome lost) counts like an open intent.
 *
 * Workspaces: a listing shows one workspace, so the remote side is the merged listings
 * of several, each instance carrying its workspace_id. A name is looked up by name only
 * in its own workspace (the manifest's, else the record's), by instance id in all. A
 * name whose workspace could not be listed this time is WAIT: nothing about it is
 * judged from listings that could not see it.
 *
 * An earlier listing (RemoteView.stale): the engine keeps the last listing of each
 * workspace between passes, so an edit is planned without listing again. What such a
 * listing does not show proves nothing: an instance may have been made since. So it
 * never settles an open intent (the name is WAIT), never says an instance is missing
 * (a record with an instance id is judged by the record, which polls and later
 * listings keep current), and is used only to adopt a name it does show and to compare
 * a listed instance with its manifest. A workspace listed again during this pass (in
 * RemoteView.fresh) is judged as by a full listing. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "instance.h"
#include "macro.h"
#include "spec.h"
#include "store.h"

typedef enum ActionKind {
        ACTION_CREATE,       /* send a create (write an intent first) */
        ACTION_ADOPT,        /* the remote has it under this name: record it, don't create */
        ACTION_WAIT,         /* open intent (or "unknown" result), no listing: list first */
        ACTION_BLOCKED,      /* rejected permanently for this very spec: wait for a change */
        ACTION_RETRY_LATER,  /* transient failure in backoff: nothing before next_attempt_at_ms */
        ACTION_DRIFT,        /* exists, but differs from the manifest: report (the API can't update) */
        ACTION_FAILED,       /* exists in a failed status: report */
        ACTION_PENDING,      /* exists and is on its way (creating, starting...): follow it */
        ACTION_OK,           /* exists, running or stopped: nothing to do */
        ACTION_GONE,         /* recorded but no longer desired: report (and, with prune on,
                                the guard that holds its deletion: prune_hold) */
        ACTION_START,        /* exists, STOPPED, the manifest says state: running */
        ACTION_STOP,         /* exists, RUNNING, the manifest says state: stopped */
        ACTION_DELETE,       /* prune: not desired, and every guard of lib/prune.h holds */
        _ACTION_KIND_MAX,
} ActionKind;

/* Why: one per decision path, so tests and the journal can tell them apart. */
typedef enum ActionReason {
        REASON_NEW,               /* CREATE: never seen */
        REASON_MISSING_REMOTELY,  /* CREATE: our instance id is not (or DELETED) in the listing,
                                     or was recorded gone */
        REASON_SPEC_CHANGED,      /* CREATE: rejected before, the manifest changed since; or
                                     in backoff and the manifest changed (backoff reset) */
        REASON_RETRY_DUE,         /* CREATE: a failed attempt's backoff is over */
        REASON_INTENT_ABSENT,     /* CREATE: an open intent, and the listing proves no instance */
        REASON_FOUND_BY_NAME,     /* ADOPT: not recorded (or recorded without an id) but listed */
        REASON_INTENT_FOUND,      /* ADOPT: an open intent, and the listing has the name */
        REASON_ID_REPLACED,       /* ADOPT: our id is gone, another instance has the name */
        REASON_INTENT_OPEN,       /* WAIT */
        REASON_LISTING_FAILED,    /* WAIT: the listing of the name's workspace failed */
        REASON_REJECTED,          /* BLOCKED */
        REASON_NAME_CONFLICT,     /* BLOCKED: the create said the name exists (6301), yet no
                                     listing we can make shows it: someone we cannot see
                                     (another IAM user) has it */
        REASON_BACKOFF,           /* RETRY_LATER */
        REASON_DIFFERS,           /* DRIFT: see drift_fields */
        REASON_STATUS,            /* FAILED, PENDING, OK: see status */
        REASON_NOT_DESIRED,       /* GONE */
        REASON_STATE,             /* START, STOP: the manifest's state: differs from the status */
        REASON_PRUNE,             /* DELETE: gone from the manifests past the grace */
        _REASON_MAX,
} ActionReason;

/* Which parts differ from the manifest (DRIFT; also set on FAILED/PENDING/OK actions so
 * nothing is lost to the one-kind-per-name rule). */
enum {
        DRIFT_SPEC_HASH   = 1u << 0,  /* recorded spec_hash != the manifest's */
        DRIFT_FLAVOR      = 1u << 1,  /* listing only, below */
        DRIFT_PROFILE     = 1u << 2,
        DRIFT_DESCRIPTION = 1u << 3,
        DRIFT_WORKSPACE   = 1u << 4,
};

/* Why prune (lib/prune.h) has not deleted a GONE action's instance: the first guard
 * that held, in the order they are checked. */
typedef enum PruneHold {
        PRUNE_HOLD_NONE,          /* prune is off, there is nothing to delete, or DELETE */
        PRUNE_HOLD_ADOPTED,       /* not created by notebookd, and prune_adopted is off */
        PRUNE_HOLD_TREE,          /* the last scan of the tree was not whole, or found nothing */
        PRUNE_HOLD_GRACE,         /* absent for less than prune_grace: due at prune_due_ms */
        PRUNE_HOLD_CAP,           /* due, but this pass would delete more than the cap (or
                                     not exactly the confirmed count): none is deleted */
        PRUNE_HOLD_UNLISTED,      /* due, but no listing taken this pass shows it: the next
                                     full pass decides */
        _PRUNE_HOLD_MAX,
} PruneHold;

typedef struct Action {
        ActionKind kind;
        ActionReason reason;
        const char *name;
        const NotebookSpec *spec;        /* desired spec; NULL for GONE */
        const InstanceRecord *record;    /* NULL when nothing recorded */
        const RemoteInstance *remote;    /* the listed instance (by id, else live by name), or NULL */
        const CreateIntent *intent;      /* the newest open intent for the name, or NULL */
        const char *status;              /* remote status, else recorded; NULL when unknown */
        InstanceStatusClass status_class;
        unsigned drift_fields;           /* DRIFT_* */
        /* The instance exists and is in a transitional or unknown status: the engine
         * should poll it until RUNNING or failed (true for PENDING, and for DRIFT when
         * the instance is still on its way). */
        bool follow;
        /* A current listing of the name's workspace(s) judged this action (not an
         * earlier one, RemoteView.stale). Only then does an open intent attached to it
         * get settled (by any kind but WAIT). */
        bool listed;
        char spec_hash[SPEC_HASH_HEX_LEN + 1];  /* of spec; "" for GONE */
        PruneHold prune_hold;            /* GONE: see PruneHold */
        int64_t prune_due_ms;            /* GONE with an instance, DELETE: when its absence is
                                          * past the grace (wall clock); 0 = prune off, or not
                                          * marked absent (a tree that is not whole) */
} Action;

typedef struct Plan {
        Action *actions;
        size_t n;
        size_t counts[_ACTION_KIND_MAX];
        bool offline;                    /* planned without a remote listing */
        bool stale;                      /* planned against an earlier listing (RemoteView.stale) */
        /* prune (lib/prune.h): deletions due this pass, and whether the cap held them all */
        size_t prune_due;
        bool prune_capped;
        unsigned prune_max;              /* the cap in force; 0 = prune off */
        unsigned prune_confirm;          /* the exact count confirmed; 0 = none */
} Plan;

/* What the cloud's listings showed in one pass. */
typedef struct RemoteView {
        const RemoteInstanceList *instances;  /* every workspace listed, merged; items whose
                                               * workspace_id is NULL count as workspace "0" */
        const char *const *unlisted;          /* workspaces whose listing failed */
        size_t n_unlisted;
        bool stale;                           /* instances is an earlier listing (see above) */
        const char *const *fresh;             /* stale: workspaces listed again just now */
        size_t n_fresh;
} RemoteView;

/* The workspace a name lives in: the manifest's, else the record's, else "0". */
const char *plan_workspace_of(const NotebookSpec *spec, const InstanceRecord *record);

/* The workspaces a full pass lists: "0", each spec's (plan_workspace_of) and each
 * record's; sorted, each once. A listing shows one workspace only: an instance in any
 * other would never be seen, and its name would look absent (a create that 6301 then
 * refuses). The one answer for the engine's passes and plan --live, which promises
 * exactly what the next pass would do. *ret (caller frees the array only) borrows from
 * specs and records; -ENOMEM. */
int plan_workspaces_needed(const NotebookSpec *const *specs, size_t n_specs, const InstanceRecord *records,
                           size_t n_records, const char ***ret, size_t *ret_n);

/* desired: valid specs with unique names (any order). records: any order, unique names.
 * open_intents: unresolved intents, any order (several per name allowed; the newest
 * counts). remote: NULL = no listing (offline). -EINVAL for duplicate desired or
 * recorded names; -ENOMEM. */
int plan_compute(const NotebookSpec *const *desired, size_t n_desired,
                 const InstanceRecord *records, size_t n_records,
                 const CreateIntent *open_intents, size_t n_intents,
                 const RemoteView *remote,
                 int64_t now_ms, Plan **ret);
Plan *plan_free(Plan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Plan *, plan_free);

/* The action for name, or NULL (binary search: the plan is sorted). */
const Action *plan_find(const Plan *p, const char *name);

/* "create", "adopt", "wait", "blocked", "retry-later", "drift", "failed", "pending",
 * "ok", "gone", "start", "stop", "delete": stable, used in --json output and the journal. */
const char *action_kind_to_string(ActionKind k);
/* A stable token per reason ("new", "missing-remotely", ...). */
const char *action_reason_to_string(ActionReason r);
/* "", "adopted", "tree", "grace", "unlisted", "cap": stable, for --json. */
const char *prune_hold_to_string(PruneHold h);

/* One readable line for humans and the journal, e.g. "rejected: ModelArts.6404 flavor
 * not allowed (unchanged manifest)" or "differs: flavor (manifest modelarts.vm.cpu.2u,
 * remote modelarts.vm.cpu.8u)". User strings in it are not escaped: quote for output.
 * now_ms is only used to say "in 42s" for backoff. Caller frees; NULL on ENOMEM. */
char *action_describe(const Action *a, int64_t now_ms);
