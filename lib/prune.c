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

/* Guards 1 to 4 for one action: the hold, or NONE when it is due and may go. */
static PruneHold hold_of(Action *a, const PrunePolicy *pp, int64_t now_ms) {
        if (!a->record->created_by_us && !pp->adopted)
                return PRUNE_HOLD_ADOPTED;
        if (pp->tree_problem)
                return PRUNE_HOLD_TREE;
        int64_t since = a->record->undesired_since_ms > 0 ? a->record->undesired_since_ms : now_ms;
        a->prune_due_ms = since + pp->grace_ms;
        if (a->record->undesired_since_ms == 0 || now_ms < a->prune_due_ms)
                return PRUNE_HOLD_GRACE;
        if (!a->listed)
                return PRUNE_HOLD_UNLISTED;
        return PRUNE_HOLD_NONE;
}

void plan_apply_prune(Plan *p, const PrunePolicy *pp, int64_t now_ms) {
        if (!pp || !pp->enabled)
                return;
        p->prune_max = pp->max_per_pass;
        p->prune_confirm = pp->confirm;
        p->prune_tree_problem = pp->tree_problem;
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
        /* Guard 5: all or nothing, so an operator never finds "some" of a mass deletion
         * done. */
        p->prune_capped = pp->confirm > 0 ? due != pp->confirm : due > pp->max_per_pass;
        for (size_t i = 0; i < p->n && due > 0; i++) {
                Action *a = &p->actions[i];
                if (a->kind != ACTION_GONE || !has_instance(a) || a->prune_hold != PRUNE_HOLD_NONE)
                        continue;
                if (p->prune_capped) {
                        a->prune_hold = PRUNE_HOLD_CAP;
                        continue;
                }
                p->counts[ACTION_GONE]--;
                p->counts[ACTION_DELETE]++;
                a->kind = ACTION_DELETE;
                a->reason = REASON_PRUNE;
        }
}
