#include "plan.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Lookups are by sorted pointer arrays and binary search, so a plan over tens of
 * thousands of instances stays O(n log n): the daemon replans on every change. */

typedef struct Indexes {
        const NotebookSpec **desired;     /* by name */
        const InstanceRecord **records;   /* by name */
        const CreateIntent **intents;     /* by name, newest (largest id) first */
        size_t n_intents;
        const RemoteInstance **by_name;   /* by name, live before DELETED, then listing order */
        size_t n_by_name;
        const RemoteInstance **by_id;     /* by id, live first, then listing order */
        size_t n_by_id;
} Indexes;

static int cmp_spec(const void *a, const void *b) {
        return strcmp((*(const NotebookSpec *const *) a)->name, (*(const NotebookSpec *const *) b)->name);
}

static int cmp_record(const void *a, const void *b) {
        return strcmp((*(const InstanceRecord *const *) a)->name, (*(const InstanceRecord *const *) b)->name);
}

static int cmp_intent(const void *a, const void *b) {
        const CreateIntent *x = *(const CreateIntent *const *) a, *y = *(const CreateIntent *const *) b;
        int c = strcmp(x->name, y->name);
        if (c != 0)
                return c;
        return x->id > y->id ? -1 : x->id < y->id;
}

static bool remote_live(const RemoteInstance *r) {
        return instance_status_class(r->status) != STATUS_CLASS_GONE;
}

/* Ties: a live entry wins over a DELETED one of the same name or id (a listing can
 * hold both after a delete and re-create); then the listing's order, for determinism. */
static int cmp_remote_tail(const RemoteInstance *x, const RemoteInstance *y) {
        bool lx = remote_live(x), ly = remote_live(y);
        if (lx != ly)
                return lx ? -1 : 1;
        return x < y ? -1 : x > y;
}

static int cmp_remote_name(const void *a, const void *b) {
        const RemoteInstance *x = *(const RemoteInstance *const *) a, *y = *(const RemoteInstance *const *) b;
        int c = strcmp(x->name, y->name);
        return c != 0 ? c : cmp_remote_tail(x, y);
}

static int cmp_remote_id(const void *a, const void *b) {
        const RemoteInstance *x = *(const RemoteInstance *const *) a, *y = *(const RemoteInstance *const *) b;
        int c = strcmp(x->id, y->id);
        return c != 0 ? c : cmp_remote_tail(x, y);
}

static void indexes_done(Indexes *ix) {
        free(ix->desired);
        free(ix->records);
        free(ix->intents);
        free(ix->by_name);
        free(ix->by_id);
}

/* First index whose element's field is >= key, over a pointer array sorted by field. */
#define LOWER_BOUND(arr, n, key, field)                                  \
        ({                                                               \
                size_t _lo = 0, _hi = (n);                               \
                while (_lo < _hi) {                                      \
                        size_t _mid = _lo + (_hi - _lo) / 2;             \
                        if (strcmp((arr)[_mid]->field, (key)) < 0)       \
                                _lo = _mid + 1;                          \
                        else                                             \
                                _hi = _mid;                              \
                }                                                        \
                _lo;                                                     \
        })

const char *plan_workspace_of(const NotebookSpec *spec, const InstanceRecord *record) {
        if (spec && spec->workspace_id)
                return spec->workspace_id;
        if (record && record->workspace_id)
                return record->workspace_id;
        return "0";
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

int plan_workspaces_needed(const NotebookSpec *const *specs, size_t n_specs, const InstanceRecord *records,
                           size_t n_records, const char ***ret, size_t *ret_n) {
        const char **all = calloc(1 + n_specs + n_records, sizeof(char *));
        if (!all)
                return -ENOMEM;
        size_t n = 0;
        all[n++] = "0";
        for (size_t i = 0; i < n_specs; i++)
                all[n++] = plan_workspace_of(specs[i], NULL);
        for (size_t i = 0; i < n_records; i++)
                if (records[i].workspace_id)
                        all[n++] = records[i].workspace_id;
        qsort(all, n, sizeof(char *), cmp_str);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                if (k == 0 || !streq(all[k - 1], all[i]))
                        all[k++] = all[i];
        *ret = all;
        *ret_n = k;
        return 0;
}

static const char *remote_workspace(const RemoteInstance *r) {
        return r->workspace_id ? r->workspace_id : "0";
}

/* The live remote instance with this name in this workspace, or NULL (only DELETED
 * ones count as none). Another workspace's instance of the same name is not ours to
 * adopt: the manifest asked for this workspace. */
static const RemoteInstance *find_live_by_name(const Indexes *ix, const char *name, const char *workspace_id) {
        for (size_t i = LOWER_BOUND(ix->by_name, ix->n_by_name, name, name);
             i < ix->n_by_name && streq(ix->by_name[i]->name, name); i++)
                if (remote_live(ix->by_name[i]) && streq(remote_workspace(ix->by_name[i]), workspace_id))
                        return ix->by_name[i];
        return NULL;
}

static bool workspace_unlisted(const RemoteView *remote, const char *workspace_id) {
        for (size_t i = 0; remote && workspace_id && i < remote->n_unlisted; i++)
                if (streq(remote->unlisted[i], workspace_id))
                        return true;
        return false;
}

/* The remote instance with this id (live preferred), DELETED included, or NULL. */
static const RemoteInstance *find_by_id(const Indexes *ix, const char *id) {
        size_t i = LOWER_BOUND(ix->by_id, ix->n_by_id, id, id);
        if (i < ix->n_by_id && streq(ix->by_id[i]->id, id))
                return ix->by_id[i];
        return NULL;
}

static bool field_differs(const char *manifest, const char *remote) {
        /* A field the listing left out tells us nothing: tolerate, don't report. */
        if (!remote)
                return false;
        return !streq(strempty(manifest), remote);
}

static unsigned remote_drift(const NotebookSpec *spec, const RemoteInstance *r) {
        unsigned d = 0;
        if (field_differs(spec->flavor, r->flavor))
                d |= DRIFT_FLAVOR;
        if (field_differs(spec->profile_id, r->profile_id))
                d |= DRIFT_PROFILE;
        if (field_differs(spec->description, r->description))
                d |= DRIFT_DESCRIPTION;
        if (field_differs(spec->workspace_id ? spec->workspace_id : "0", r->workspace_id))
                d |= DRIFT_WORKSPACE;
        return d;
}

static void set_status(Action *a, const char *status) {
        a->status = status;
        a->status_class = instance_status_class(status);
        a->follow = a->status_class == STATUS_CLASS_PENDING || a->status_class == STATUS_CLASS_UNKNOWN;
}

/* An instance exists (listed, or recorded when offline): classify it. */
static void plan_existing(Action *a, const RemoteInstance *remote, const char *status) {
        a->remote = remote;
        set_status(a, status);
        if (a->record && a->record->spec_hash && !streq(a->record->spec_hash, a->spec_hash))
                a->drift_fields |= DRIFT_SPEC_HASH;
        if (remote)
                a->drift_fields |= remote_drift(a->spec, remote);
        /* One kind per name; the order says what a human must hear first. A failed
         * instance needs attention whatever else differs; drift next; the rest is
         * progress. drift_fields and follow keep the other facts. */
        if (a->status_class == STATUS_CLASS_FAILED) {
                a->kind = ACTION_FAILED;
                a->reason = REASON_STATUS;
        } else if (a->drift_fields) {
                a->kind = ACTION_DRIFT;
                a->reason = REASON_DIFFERS;
        } else if (a->follow) {
                a->kind = ACTION_PENDING;
                a->reason = REASON_STATUS;
        } else {
                /* RUNNING, or STOPPED: without a state: in the manifest, someone (or the
                 * cloud's idle stop) stopped it on purpose, and starting it is not ours
                 * to decide. */
                a->kind = ACTION_OK;
                a->reason = REASON_STATUS;
        }
        /* state: is acted on even when other fields drifted (drift_fields keeps that):
         * stopping a notebook over the holidays must not wait for a re-creation. */
        if (a->kind == ACTION_OK || a->kind == ACTION_DRIFT) {
                if (a->spec->state == DESIRED_STATE_STOPPED && a->status_class == STATUS_CLASS_RUNNING) {
                        a->kind = ACTION_STOP;
                        a->reason = REASON_STATE;
                } else if (a->spec->state == DESIRED_STATE_RUNNING && a->status_class == STATUS_CLASS_STOPPED) {
                        a->kind = ACTION_START;
                        a->reason = REASON_STATE;
                }
        }
}

static void plan_adopt(Action *a, const RemoteInstance *remote, ActionReason reason) {
        a->kind = ACTION_ADOPT;
        a->reason = reason;
        a->remote = remote;
        set_status(a, remote->status);
        a->drift_fields = remote_drift(a->spec, remote);
}

/* A create was sent whose outcome nobody recorded: an open intent, or a record that
 * says so without an instance id. */
static bool unresolved_create(const Action *a) {
        return a->intent || (a->record && !a->record->instance_id && a->record->result &&
                             streq(a->record->result, RECORD_RESULT_UNKNOWN));
}

/* listing: some listing (current or earlier) shows the name's workspace; current: it
 * was taken for this pass (plan.h: what an earlier one may and may not decide). */
static void plan_desired(Action *a, const Indexes *ix, bool listing, bool current, int64_t now_ms) {
        const InstanceRecord *rec = a->record;
        const CreateIntent *intent = a->intent;
        const RemoteInstance *by_name =
                listing ? find_live_by_name(ix, a->name, plan_workspace_of(a->spec, rec)) : NULL;

        if (rec && rec->instance_id) {
                if (current) {
                        const RemoteInstance *by_id = find_by_id(ix, rec->instance_id);
                        if (by_id && remote_live(by_id))
                                return plan_existing(a, by_id, by_id->status);
                        if (by_name)
                                return plan_adopt(a, by_name, REASON_ID_REPLACED);
                        /* Deleted behind our back (gone from the listing, or DELETED). */
                        a->kind = ACTION_CREATE;
                        a->reason = REASON_MISSING_REMOTELY;
                        return;
                }
                if ((rec->result && streq(rec->result, RECORD_RESULT_GONE)) ||
                    instance_status_class(rec->status) == STATUS_CLASS_GONE) {
                        a->kind = ACTION_CREATE;
                        a->reason = REASON_MISSING_REMOTELY;
                        return;
                }
                /* An earlier listing still gives the fields to compare with the
                 * manifest; the status is the record's, which is newer. */
                const RemoteInstance *by_id = listing ? find_by_id(ix, rec->instance_id) : NULL;
                if (by_id && !remote_live(by_id))
                        by_id = NULL;
                return plan_existing(a, by_id, rec->status ? rec->status : by_id ? by_id->status : NULL);
        }

        if (by_name)
                return plan_adopt(a, by_name, intent ? REASON_INTENT_FOUND : REASON_FOUND_BY_NAME);
        if (!current && unresolved_create(a)) {
                /* Whatever the record says, the newest fact is a create that may have
                 * succeeded: only a listing taken now can tell. */
                a->kind = ACTION_WAIT;
                a->reason = REASON_INTENT_OPEN;
                return;
        }

        /* No instance known, none listed (or no listing). */
        if (!rec || !rec->result) {
                a->kind = ACTION_CREATE;
                a->reason = REASON_NEW;
        } else if (streq(rec->result, RECORD_RESULT_REJECTED)) {
                /* Permanent: the same body would be rejected the same way. A changed
                 * manifest (hash) is a new request and deserves a try. */
                bool same = rec->spec_hash && streq(rec->spec_hash, a->spec_hash);
                a->kind = same ? ACTION_BLOCKED : ACTION_CREATE;
                a->reason = same ? REASON_REJECTED : REASON_SPEC_CHANGED;
        } else if (streq(rec->result, RECORD_RESULT_EXISTS) || streq(rec->result, RECORD_RESULT_CONFLICT)) {
                /* The cloud said the name is taken, and the listing of its workspace does
                 * not show it: someone we cannot see has it. Sending the same create again
                 * gets the same 6301; a changed manifest (a new name is a new action) or a
                 * listing that shows the name (adopted above) ends it. */
                bool same = rec->spec_hash && streq(rec->spec_hash, a->spec_hash);
                a->kind = same ? ACTION_BLOCKED : ACTION_CREATE;
                a->reason = same ? REASON_NAME_CONFLICT : REASON_SPEC_CHANGED;
        } else if (streq(rec->result, RECORD_RESULT_GONE)) {
                a->kind = ACTION_CREATE;
                a->reason = REASON_MISSING_REMOTELY;
        } else if (rec->spec_hash && !streq(rec->spec_hash, a->spec_hash) && rec->next_attempt_at_ms > now_ms) {
                /* In backoff, but the manifest changed: the user fixed something; the
                 * backoff was for the old request, so a change resets it. */
                a->kind = ACTION_CREATE;
                a->reason = REASON_SPEC_CHANGED;
        } else if (rec->next_attempt_at_ms > now_ms) {
                a->kind = ACTION_RETRY_LATER;
                a->reason = REASON_BACKOFF;
        } else {
                a->kind = ACTION_CREATE;
                a->reason = rec->attempts > 0 || !streq(rec->result, RECORD_RESULT_ACCEPTED) ? REASON_RETRY_DUE
                                                                                             : REASON_NEW;
        }
        if (a->kind == ACTION_CREATE && intent && (a->reason == REASON_NEW || a->reason == REASON_RETRY_DUE))
                a->reason = REASON_INTENT_ABSENT;
}

static bool workspace_fresh(const RemoteView *remote, const char *workspace_id) {
        for (size_t i = 0; workspace_id && i < remote->n_fresh; i++)
                if (streq(remote->fresh[i], workspace_id))
                        return true;
        return false;
}

static void plan_one(Action *a, const Indexes *ix, const RemoteView *remote, int64_t now_ms) {
        /* A listing that could not see the name's workspace cannot judge it. */
        const char *ws = plan_workspace_of(a->spec, a->record), *rec_ws = a->record ? a->record->workspace_id : NULL;
        bool listing = remote && !workspace_unlisted(remote, ws) && !workspace_unlisted(remote, rec_ws);
        bool current = listing && (!remote->stale || (workspace_fresh(remote, ws) &&
                                                      (!rec_ws || workspace_fresh(remote, rec_ws))));
        a->listed = current;
        if (!a->spec) {
                a->kind = ACTION_GONE;
                a->reason = REASON_NOT_DESIRED;
                const RemoteInstance *r = NULL;
                if (listing && a->record && a->record->instance_id)
                        r = find_by_id(ix, a->record->instance_id);
                else if (listing)
                        r = find_live_by_name(ix, a->name, plan_workspace_of(NULL, a->record));
                a->remote = r;
                a->status = r ? r->status : a->record ? a->record->status : NULL;
                a->status_class = instance_status_class(a->status);
                return;
        }
        if (remote && !listing) {
                /* Its workspace's listing failed: wait for the next one. Creating now
                 * could duplicate what that listing would have shown. */
                a->kind = ACTION_WAIT;
                a->reason = REASON_LISTING_FAILED;
                if (a->record && a->record->instance_id) {
                        a->status = a->record->status;
                        a->status_class = instance_status_class(a->status);
                }
                return;
        }
        plan_desired(a, ix, listing, current, now_ms);

        /* The safety rule (plan.h): an unresolved create is settled by a listing
         * taken now before anything is sent again for that name. */
        if (!current && unresolved_create(a) && a->kind == ACTION_CREATE) {
                a->kind = ACTION_WAIT;
                a->reason = REASON_INTENT_OPEN;
        }
}

/* qsort unless already in order: the desired set and the records arrive sorted by name
 * (the engine and the store keep them so), and a merge sort of sorted input still costs
 * n log n comparisons. */
static void sort_unless_sorted(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
        const char *b = base;
        for (size_t i = 1; i < n; i++)
                if (cmp(b + (i - 1) * size, b + i * size) > 0) {
                        qsort(base, n, size, cmp);
                        return;
                }
}

static int build_indexes(const NotebookSpec *const *desired, size_t n_desired, const InstanceRecord *records,
                         size_t n_records, const CreateIntent *open_intents, size_t n_intents,
                         const RemoteInstanceList *remote, Indexes *ix) {
        ix->desired = calloc(n_desired ?: 1, sizeof(*ix->desired));
        ix->records = calloc(n_records ?: 1, sizeof(*ix->records));
        ix->intents = calloc(n_intents ?: 1, sizeof(*ix->intents));
        size_t n_remote = remote ? remote->n : 0;
        ix->by_name = calloc(n_remote ?: 1, sizeof(*ix->by_name));
        ix->by_id = calloc(n_remote ?: 1, sizeof(*ix->by_id));
        if (!ix->desired || !ix->records || !ix->intents || !ix->by_name || !ix->by_id)
                return -ENOMEM;

        for (size_t i = 0; i < n_desired; i++) {
                if (!desired[i] || !desired[i]->name)
                        return -EINVAL;
                ix->desired[i] = desired[i];
        }
        sort_unless_sorted(ix->desired, n_desired, sizeof(*ix->desired), cmp_spec);
        for (size_t i = 1; i < n_desired; i++)
                if (streq(ix->desired[i - 1]->name, ix->desired[i]->name))
                        return -EINVAL;

        for (size_t i = 0; i < n_records; i++) {
                if (!records[i].name)
                        return -EINVAL;
                ix->records[i] = &records[i];
        }
        sort_unless_sorted(ix->records, n_records, sizeof(*ix->records), cmp_record);
        for (size_t i = 1; i < n_records; i++)
                if (streq(ix->records[i - 1]->name, ix->records[i]->name))
                        return -EINVAL;

        for (size_t i = 0; i < n_intents; i++)
                if (open_intents[i].name && open_intents[i].resolved_at_ms == 0)
                        ix->intents[ix->n_intents++] = &open_intents[i];
        qsort(ix->intents, ix->n_intents, sizeof(*ix->intents), cmp_intent);

        for (size_t i = 0; i < n_remote; i++) {
                if (remote->items[i].name)
                        ix->by_name[ix->n_by_name++] = &remote->items[i];
                if (remote->items[i].id)
                        ix->by_id[ix->n_by_id++] = &remote->items[i];
        }
        qsort(ix->by_name, ix->n_by_name, sizeof(*ix->by_name), cmp_remote_name);
        qsort(ix->by_id, ix->n_by_id, sizeof(*ix->by_id), cmp_remote_id);
        return 0;
}

int plan_compute(const NotebookSpec *const *desired, size_t n_desired,
                 const InstanceRecord *records, size_t n_records,
                 const CreateIntent *open_intents, size_t n_intents,
                 const RemoteView *remote,
                 int64_t now_ms, Plan **ret) {
        if ((n_desired && !desired) || (n_records && !records) || (n_intents && !open_intents) || !ret)
                return -EINVAL;
        _cleanup_(indexes_done) Indexes ix = {};
        int r = build_indexes(desired, n_desired, records, n_records, open_intents, n_intents,
                              remote ? remote->instances : NULL, &ix);
        if (r < 0)
                return r;

        _cleanup_(plan_freep) Plan *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->offline = !remote;
        p->stale = remote && remote->stale;
        size_t max = n_desired + n_records + ix.n_intents;
        p->actions = calloc(max ?: 1, sizeof(*p->actions));
        if (!p->actions)
                return -ENOMEM;

        /* Merge the three sorted name lists: every name once, in order. Intents are
         * grouped by name (newest first), so skip the rest of a name's group. */
        size_t di = 0, ri = 0, ii = 0;
        while (di < n_desired || ri < n_records || ii < ix.n_intents) {
                const char *name = NULL;
                if (di < n_desired)
                        name = ix.desired[di]->name;
                if (ri < n_records && (!name || strcmp(ix.records[ri]->name, name) < 0))
                        name = ix.records[ri]->name;
                if (ii < ix.n_intents && (!name || strcmp(ix.intents[ii]->name, name) < 0))
                        name = ix.intents[ii]->name;

                Action *a = &p->actions[p->n++];
                *a = (Action) { .name = name, .status_class = STATUS_CLASS_UNKNOWN };
                if (di < n_desired && streq(ix.desired[di]->name, name))
                        a->spec = ix.desired[di++];
                if (ri < n_records && streq(ix.records[ri]->name, name))
                        a->record = ix.records[ri++];
                if (ii < ix.n_intents && streq(ix.intents[ii]->name, name)) {
                        a->intent = ix.intents[ii];
                        while (ii < ix.n_intents && streq(ix.intents[ii]->name, name))
                                ii++;
                }
                if (a->spec && (r = spec_hash(a->spec, a->spec_hash)) < 0)
                        return r;

                plan_one(a, &ix, remote, now_ms);
                p->counts[a->kind]++;
        }
        *ret = TAKE_PTR(p);
        return 0;
}

Plan *plan_free(Plan *p) {
        if (p) {
                free(p->actions);
                free(p);
        }
        return NULL;
}

const Action *plan_find(const Plan *p, const char *name) {
        size_t lo = 0, hi = p->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(p->actions[mid].name, name);
                if (c == 0)
                        return &p->actions[mid];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

const char *action_kind_to_string(ActionKind k) {
        static const char *const table[_ACTION_KIND_MAX] = {
                [ACTION_CREATE] = "create",   [ACTION_ADOPT] = "adopt",
                [ACTION_WAIT] = "wait",       [ACTION_BLOCKED] = "blocked",
                [ACTION_RETRY_LATER] = "retry-later", [ACTION_DRIFT] = "drift",
                [ACTION_FAILED] = "failed",   [ACTION_PENDING] = "pending",
                [ACTION_OK] = "ok",           [ACTION_GONE] = "gone",
                [ACTION_START] = "start",     [ACTION_STOP] = "stop",
                [ACTION_DELETE] = "delete",
        };
        return (unsigned) k < _ACTION_KIND_MAX ? table[k] : "?";
}

const char *action_reason_to_string(ActionReason r) {
        static const char *const table[_REASON_MAX] = {
                [REASON_NEW] = "new",
                [REASON_MISSING_REMOTELY] = "missing-remotely",
                [REASON_SPEC_CHANGED] = "spec-changed",
                [REASON_RETRY_DUE] = "retry-due",
                [REASON_INTENT_ABSENT] = "intent-absent",
                [REASON_FOUND_BY_NAME] = "found-by-name",
                [REASON_INTENT_FOUND] = "intent-found",
                [REASON_ID_REPLACED] = "id-replaced",
                [REASON_INTENT_OPEN] = "intent-open",
                [REASON_LISTING_FAILED] = "listing-failed",
                [REASON_REJECTED] = "rejected",
                [REASON_NAME_CONFLICT] = "name-conflict",
                [REASON_BACKOFF] = "backoff",
                [REASON_DIFFERS] = "differs",
                [REASON_STATUS] = "status",
                [REASON_NOT_DESIRED] = "not-desired",
                [REASON_STATE] = "state",
                [REASON_PRUNE] = "prune",
        };
        return (unsigned) r < _REASON_MAX ? table[r] : "?";
}

const char *prune_hold_to_string(PruneHold h) {
        static const char *const table[_PRUNE_HOLD_MAX] = {
                [PRUNE_HOLD_NONE] = "",         [PRUNE_HOLD_ADOPTED] = "adopted",
                [PRUNE_HOLD_TREE] = "tree",     [PRUNE_HOLD_GRACE] = "grace",
                [PRUNE_HOLD_CAP] = "cap",       [PRUNE_HOLD_UNLISTED] = "unlisted",
        };
        return (unsigned) h < _PRUNE_HOLD_MAX ? table[h] : "?";
}

/* ---- describe ---- */

/* A growing line; on ENOMEM the line is dropped and describe returns NULL. */
typedef struct Line {
        char *s;
        bool oom;
} Line;

static void line_add(Line *l, const char *fmt, ...) _printf_(2, 3);
static void line_add(Line *l, const char *fmt, ...) {
        if (l->oom)
                return;
        va_list ap;
        va_start(ap, fmt);
        char *part = xvasprintf(fmt, ap);
        va_end(ap);
        char *joined = part ? xasprintf("%s%s", strempty(l->s), part) : NULL;
        free(part);
        free(l->s);
        l->s = joined;
        if (!joined)
                l->oom = true;
}

/* "HTTP 400 ModelArts.6404: message", or "no details recorded". */
static void add_api_error(Line *l, const InstanceRecord *rec) {
        const char *sep = "";
        if (rec && rec->http_status > 0) {
                line_add(l, "HTTP %d", rec->http_status);
                sep = " ";
        }
        if (rec && rec->error_code) {
                line_add(l, "%s%s", sep, rec->error_code);
                sep = " ";
        }
        if (rec && rec->error_msg)
                line_add(l, "%s%s", *sep ? ": " : "", rec->error_msg);
        else if (!*sep)
                line_add(l, "no details recorded");
}

static void add_drift(Line *l, const Action *a) {
        static const struct {
                unsigned bit;
                const char *what;
        } fields[] = {
                { DRIFT_FLAVOR, "flavor" },
                { DRIFT_PROFILE, "profile_id" },
                { DRIFT_DESCRIPTION, "description" },
                { DRIFT_WORKSPACE, "workspace.id" },
        };
        const char *sep = "";
        if (a->drift_fields & DRIFT_SPEC_HASH) {
                line_add(l, "manifest changed since it was created");
                sep = "; ";
        }
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                if (!(a->drift_fields & fields[i].bit) || !a->remote)
                        continue;
                const char *want = "", *have = "";
                switch (fields[i].bit) {
                case DRIFT_FLAVOR:
                        want = a->spec->flavor, have = a->remote->flavor;
                        break;
                case DRIFT_PROFILE:
                        want = a->spec->profile_id, have = a->remote->profile_id;
                        break;
                case DRIFT_DESCRIPTION:
                        want = a->spec->description, have = a->remote->description;
                        break;
                case DRIFT_WORKSPACE:
                        want = a->spec->workspace_id ? a->spec->workspace_id : "0";
                        have = a->remote->workspace_id;
                        break;
                }
                line_add(l, "%s%s: manifest '%s', remote '%s'", sep, fields[i].what, strempty(want), strempty(have));
                sep = "; ";
        }
}

static const char *failure_kind(const InstanceRecord *rec) {
        if (!rec || !rec->result)
                return "a failure";
        if (streq(rec->result, RECORD_RESULT_RETRYING))
                return "a transient failure";
        if (streq(rec->result, RECORD_RESULT_AUTH_FAILED))
                return "an authentication failure";
        if (streq(rec->result, RECORD_RESULT_UNKNOWN))
                return "an unknown outcome";
        return rec->result;
}

/* GONE: what happens to the instance, by prune's verdict (PruneHold). */
static void describe_gone(Line *l, const Action *a, const char *id, int64_t now_ms) {
        char d[32];
        line_add(l, "not in any valid manifest");
        if (id)
                line_add(l, ": %s %s", id, strempty(a->status));
        switch (a->prune_hold) {
        case PRUNE_HOLD_ADOPTED:
                line_add(l, " (adopted, not created by notebookd: kept; prune_adopted is off)");
                break;
        case PRUNE_HOLD_TREE:
                line_add(l, " (kept: prune holds while the manifests tree is not whole)");
                break;
        case PRUNE_HOLD_GRACE:
                format_age(a->prune_due_ms - now_ms, d);
                line_add(l, " (to be deleted in %s, once absent for the grace)", d);
                break;
        case PRUNE_HOLD_UNLISTED:
                line_add(l, " (due for deletion: the next full listing decides)");
                break;
        case PRUNE_HOLD_CAP:
                line_add(l, " (due for deletion, held: this pass would delete more than prune allows)");
                break;
        default:
                if (a->record && streq_ptr(a->record->result, RECORD_RESULT_DELETED))
                        line_add(l, " (deleted by prune)");
                else if (id && a->status_class == STATUS_CLASS_GONE)
                        line_add(l, " (the instance is gone)");
                else
                        line_add(l, " (kept, not deleted)");
        }
}

char *action_describe(const Action *a, int64_t now_ms) {
        Line l = {};
        char d[32];
        const InstanceRecord *rec = a->record;
        const char *id = a->remote && a->remote->id ? a->remote->id : rec ? rec->instance_id : NULL;

        switch (a->reason) {
        case REASON_NEW:
                line_add(&l, "not created yet");
                break;
        case REASON_MISSING_REMOTELY:
                line_add(&l, "instance %s is gone remotely: create again", strempty(rec ? rec->instance_id : NULL));
                break;
        case REASON_SPEC_CHANGED:
                if (rec && rec->result && streq(rec->result, RECORD_RESULT_REJECTED)) {
                        line_add(&l, "manifest changed since it was rejected (");
                        add_api_error(&l, rec);
                        line_add(&l, "): try again");
                } else
                        line_add(&l, "manifest changed: backoff reset, try again");
                break;
        case REASON_RETRY_DUE:
                line_add(&l, "retry (attempt %" PRId64 ") after %s: ", (rec ? rec->attempts : 0) + 1,
                         failure_kind(rec));
                add_api_error(&l, rec);
                break;
        case REASON_INTENT_ABSENT:
                format_age(now_ms - a->intent->created_at_ms, d);
                line_add(&l, "create intent #%" PRId64 " (%s ago) made no instance: create again", a->intent->id, d);
                break;
        case REASON_FOUND_BY_NAME:
                line_add(&l, "exists remotely as %s (%s): adopt", strempty(id), strempty(a->status));
                break;
        case REASON_INTENT_FOUND:
                line_add(&l, "create intent #%" PRId64 " made %s (%s): adopt", a->intent->id, strempty(id),
                         strempty(a->status));
                break;
        case REASON_ID_REPLACED:
                line_add(&l, "recorded instance %s is gone; %s has the name (%s): adopt",
                         strempty(rec ? rec->instance_id : NULL), strempty(id), strempty(a->status));
                break;
        case REASON_INTENT_OPEN:
                if (a->intent) {
                        format_age(now_ms - a->intent->created_at_ms, d);
                        line_add(&l, "create intent #%" PRId64 " (%s ago) has an unknown outcome: list before retrying",
                                 a->intent->id, d);
                } else
                        line_add(&l, "the last create has an unknown outcome: list before retrying");
                break;
        case REASON_LISTING_FAILED:
                line_add(&l, "the listing of workspace %s failed: decided after the next one",
                         plan_workspace_of(a->spec, rec));
                break;
        case REASON_NAME_CONFLICT:
                line_add(&l, "the name is taken in workspace %s by an instance our listings cannot show "
                         "(another IAM user's?): ", plan_workspace_of(a->spec, rec));
                add_api_error(&l, rec);
                line_add(&l, " (rename it, or ask the owner to delete theirs)");
                break;
        case REASON_REJECTED:
                line_add(&l, "rejected: ");
                add_api_error(&l, rec);
                line_add(&l, " (change the manifest to retry)");
                break;
        case REASON_BACKOFF:
                format_age(rec->next_attempt_at_ms - now_ms, d);
                line_add(&l, "next try in %s (attempt %" PRId64 ") after %s: ", d, rec->attempts + 1,
                         failure_kind(rec));
                add_api_error(&l, rec);
                break;
        case REASON_DIFFERS:
                line_add(&l, "%s %s differs: ", strempty(id), strempty(a->status));
                add_drift(&l, a);
                /* the API changes none of these in place; re-creating loses the disk, so
                 * it is the operator's call, never notebookd's */
                line_add(&l, " (needs re-creation)");
                break;
        case REASON_STATUS:
                line_add(&l, "%s %s", strempty(id), a->status ? a->status : "status unknown");
                /* desired against actual: the manifest's state: beside the status */
                if (a->spec && a->spec->state != DESIRED_STATE_ANY)
                        line_add(&l, " (state: %s)", desired_state_to_string(a->spec->state));
                if (a->status_class == STATUS_CLASS_FAILED && a->remote && a->remote->failed_reason)
                        line_add(&l, ": %s", a->remote->failed_reason);
                break;
        case REASON_NOT_DESIRED:
                describe_gone(&l, a, id, now_ms);
                break;
        case REASON_STATE:
                line_add(&l, "%s is %s, the manifest says state: %s: %s", strempty(id), strempty(a->status),
                         desired_state_to_string(a->spec->state), a->kind == ACTION_START ? "start" : "stop");
                if (a->drift_fields) {
                        line_add(&l, "; differs: ");
                        add_drift(&l, a);
                }
                break;
        case REASON_PRUNE:
                format_age(now_ms - (a->record ? a->record->undesired_since_ms : now_ms), d);
                line_add(&l, "not in any valid manifest for %s: delete %s (%s%s)", d, strempty(id),
                         strempty(a->status), a->status_class == STATUS_CLASS_STOPPED ||
                                                      a->status_class == STATUS_CLASS_FAILED
                                                 ? ""
                                                 : ", stopped first");
                break;
        default:
                line_add(&l, "?");
        }
        if (a->kind == ACTION_ADOPT && a->drift_fields) {
                line_add(&l, "; differs: ");
                add_drift(&l, a);
        }
        if (a->intent && a->listed && a->kind != ACTION_WAIT && a->reason != REASON_INTENT_ABSENT &&
            a->reason != REASON_INTENT_FOUND)
                line_add(&l, " (settles create intent #%" PRId64 ")", a->intent->id);
        if (l.oom)
                return NULL;
        return l.s ? l.s : strdup("");
}
