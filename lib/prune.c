#include "prune.h"

#include "instance.h"

/* The instance a GONE action would delete: recorded by id, and not known to be gone. */
static bool has_instance(const Action *a) {
        if (!a->record || !a->record->instance_id)
                return false;
        if (a->listed)
                return a->remote && instance_status_class(a->remote->status) != STATUS_CLASS_GONE;
        return instance_status_class(a->status) != STATUS_CLASS_GONE;
}

/* Guards 1 to 3 for one action: the hold, or NONE when it is due. */
static PruneHold hold_of(Action *a, const PrunePolicy *pp, int64_t now_ms) {
        if (!a->record->created_by_us && !pp->adopted)
                return PRUNE_HOLD_ADOPTED;
        int64_t mark = a->record->undesired_since_ms;
        if (mark > 0)
                a->prune_due_ms = mark + pp->grace_ms;
        /* a tree that is not whole starts no grace (prune_due_ms stays 0 when unmarked) */
        const char *problem =
                pp->tree_problem_of ? pp->tree_problem_of(a->record->tenant, pp->userdata) : pp->tree_problem;
        if (problem)
                return PRUNE_HOLD_TREE;
        if (mark == 0) {
                a->prune_due_ms = now_ms + pp->grace_ms;
                return PRUNE_HOLD_GRACE;
        }
        if (now_ms < a->prune_due_ms)
                return PRUNE_HOLD_GRACE;
        return PRUNE_HOLD_NONE;
}

void plan_apply_prune(Plan *p, const PrunePolicy *pp, int64_t now_ms) {
        if (!pp || !pp->enabled)
                return;
        p->prune_max = pp->max_per_pass;
        p->prune_confirm = pp->confirm;
        size_t due = 0;
        for (size_t i = 0; i < p->n; i++) {
                Action *a = &p->actions[i];
                if (a->kind != ACTION_GONE || !has_instance(a))
                        continue;
                a->prune_hold = hold_of(a, pp, now_ms);
                if (a->prune_hold == PRUNE_HOLD_NONE)
                        due++;
        }
        p->prune_due = due;
        /* Guard 4, the cap: all or nothing, so an operator never finds "some" of a mass
         * deletion done. It counts what is due whether or not listed now, so `plan`
         * (offline) shows the count to confirm, and a pass whose listing missed some can
         * only be held more often, never less. */
        p->prune_capped = pp->confirm > 0 ? due != pp->confirm : due > pp->max_per_pass;
        for (size_t i = 0; i < p->n && due > 0; i++) {
                Action *a = &p->actions[i];
                if (a->kind != ACTION_GONE || !has_instance(a) || a->prune_hold != PRUNE_HOLD_NONE)
                        continue;
                if (p->prune_capped) {
                        a->prune_hold = PRUNE_HOLD_CAP;
                        continue;
                }
                /* Guard 5: what is deleted is what a listing taken now shows */
                if (!a->listed) {
                        a->prune_hold = PRUNE_HOLD_UNLISTED;
                        continue;
                }
                p->counts[ACTION_GONE]--;
                p->counts[ACTION_DELETE]++;
                a->kind = ACTION_DELETE;
                a->reason = REASON_PRUNE;
        }
}
