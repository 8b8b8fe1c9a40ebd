/* Prune: deleting the instances whose manifest left the tree, with guards that make
 * an accident impossible rather than unlikely. Pure, like the planner it follows: it
 * takes a plan and the policy, and turns GONE actions into DELETE only where every
 * guard holds; every case is a unit test.
 *
 * The guards, in the order they are checked (the first that holds is the action's
 * prune_hold, plan.h):
 *   1. ownership: notebookd created the instance (InstanceRecord.created_by_us); an
 *      adopted one only with prune_adopted;
 *   2. a whole tree: the last scan read every file and directory without an I/O error,
 *      found no invalid manifest (whose name might be the one "missing"), and found at
 *      least one manifest: an unmounted, emptied or half-broken checkout deletes nothing;
 *   3. grace: absent since undesired_since_ms for at least prune_grace (a name not yet
 *      marked absent is due a full grace from now);
 *   4. a cap per pass: at most prune_max_per_pass deletions due; a pass that would
 *      delete more deletes none. `once --prune-confirm=N` replaces the cap by an exact
 *      count: N deletions, or none;
 *   5. a current listing (Action.listed) shows the instance live: what is deleted is
 *      what exists now, not what an earlier listing showed. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "plan.h"

typedef struct PrunePolicy {
        bool enabled;
        bool adopted;               /* prune_adopted */
        int64_t grace_ms;
        unsigned max_per_pass;
        unsigned confirm;           /* > 0: exactly this many deletions, or none (the cap
                                     * then does not apply) */
        const char *tree_problem;   /* NULL: the tree is whole; else why not (for the journal) */
        /* With tenants: the problem of the part of the tree a record's tenant owns (its
         * record->tenant, NULL for none), replacing tree_problem; NULL fn: tree_problem
         * for every name. */
        const char *(*tree_problem_of)(const char *tenant, void *userdata);
        void *userdata;
} PrunePolicy;

/* Apply the policy to p's GONE actions (p's counts follow). A NULL or disabled policy
 * leaves the plan as it is. */
void plan_apply_prune(Plan *p, const PrunePolicy *policy, int64_t now_ms);
