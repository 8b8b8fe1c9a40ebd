/* The planner: every kind, every transition, the safety rule, ties, scale. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "prune.h"
#include "util.h"

#define NOW INT64_C(1700000000000)
#define ID_A "11111111-1111-4111-8111-111111111111"
#define ID_B "22222222-2222-4222-8222-222222222222"

/* One scenario: inputs built with the helpers below, freed by teardown. */
typedef struct Scenario {
        NotebookSpec **specs;
        size_t n_specs;
        InstanceRecord *recs;
        size_t n_recs;
        CreateIntent *intents;
        size_t n_intents;
        RemoteInstanceList remote;
        bool listing;
        const char *unlisted[4];        /* workspaces whose listing failed */
        size_t n_unlisted;
        bool stale;                     /* remote is an earlier listing (RemoteView.stale) */
        const char *fresh[4];           /* ... but these workspaces were listed now */
        size_t n_fresh;
        Plan *plan;
        char hash[SPEC_HASH_HEX_LEN + 1];
} Scenario;

static int setup(void **state) {
        Scenario *s = calloc(1, sizeof(*s));
        assert_non_null(s);
        /* Room for the 10k test; realloc-free keeps pointers into the arrays stable. */
        s->specs = calloc(20000, sizeof(*s->specs));
        s->recs = calloc(20000, sizeof(*s->recs));
        s->intents = calloc(20000, sizeof(*s->intents));
        assert_non_null(s->specs);
        assert_non_null(s->recs);
        assert_non_null(s->intents);
        *state = s;
        return 0;
}

static int teardown(void **state) {
        Scenario *s = *state;
        for (size_t i = 0; i < s->n_specs; i++)
                spec_free(s->specs[i]);
        instance_records_free(s->recs, s->n_recs);
        create_intents_free(s->intents, s->n_intents);
        remote_instance_list_clear(&s->remote);
        plan_free(s->plan);
        free(s->specs);
        free(s);
        return 0;
}

static char *sdup(const char *v) {
        if (!v)
                return NULL;
        char *c = strdup(v);
        assert_non_null(c);
        return c;
}

static NotebookSpec *add_spec(Scenario *s, const char *name) {
        NotebookSpec *n = calloc(1, sizeof(*n));
        assert_non_null(n);
        n->name = sdup(name);
        n->profile_id = sdup("Python3");
        n->flavor = sdup("modelarts.vm.cpu.2u");
        n->storage_type = STORAGE_EVS;
        n->volume_size = 5;
        n->workspace_id = sdup("0");
        n->file = sdup("test.yaml");
        s->specs[s->n_specs++] = n;
        return n;
}

/* The hash of a spec, as the engine would record it. */
static const char *hash_of(Scenario *s, const NotebookSpec *spec) {
        assert_int_equal(spec_hash(spec, s->hash), 0);
        return s->hash;
}

static InstanceRecord *add_rec(Scenario *s, const char *name, const char *id, const char *status,
                               const char *result, const char *spec_hash) {
        InstanceRecord *r = &s->recs[s->n_recs++];
        *r = (InstanceRecord) {
                .name = sdup(name),
                .instance_id = sdup(id),
                .status = sdup(status),
                .result = sdup(result),
                .spec_hash = sdup(spec_hash),
                .created_at_ms = NOW - 60000,
                .updated_at_ms = NOW - 60000,
        };
        return r;
}

static CreateIntent *add_intent(Scenario *s, const char *name, int64_t id) {
        CreateIntent *i = &s->intents[s->n_intents++];
        *i = (CreateIntent) { .id = id, .name = sdup(name), .created_at_ms = NOW - 5000 };
        return i;
}

/* A listed instance that matches add_spec()'s defaults field for field. */
static RemoteInstance *add_remote(Scenario *s, const char *id, const char *name, const char *status) {
        s->listing = true;
        RemoteInstance r = {
                .id = sdup(id),
                .name = sdup(name),
                .status = sdup(status),
                .flavor = sdup("modelarts.vm.cpu.2u"),
                .profile_id = sdup("Python3"),
                .workspace_id = sdup("0"),
        };
        assert_int_equal(remote_instance_list_append(&s->remote, &r), 0);
        return &s->remote.items[s->remote.n - 1];
}

static const Plan *run(Scenario *s) {
        s->plan = plan_free(s->plan);
        RemoteView view = { .instances = &s->remote, .unlisted = s->unlisted, .n_unlisted = s->n_unlisted,
                            .stale = s->stale, .fresh = s->fresh, .n_fresh = s->n_fresh };
        assert_int_equal(plan_compute((const NotebookSpec *const *) s->specs, s->n_specs, s->recs, s->n_recs,
                                      s->intents, s->n_intents, s->listing ? &view : NULL, NOW, &s->plan),
                         0);
        assert_non_null(s->plan);
        /* Invariants of every plan: sorted, unique, counts add up. */
        size_t total = 0;
        for (size_t k = 0; k < _ACTION_KIND_MAX; k++)
                total += s->plan->counts[k];
        assert_int_equal(total, s->plan->n);
        for (size_t i = 1; i < s->plan->n; i++)
                assert_true(strcmp(s->plan->actions[i - 1].name, s->plan->actions[i].name) < 0);
        assert_int_equal(s->plan->offline, !s->listing);
        assert_int_equal(s->plan->stale, s->listing && s->stale);
        for (size_t i = 0; i < s->plan->n; i++) {
                const Action *a = &s->plan->actions[i];
                /* The safety rule, checked on every plan this suite makes: an open intent
                 * is sent again only when a listing taken now judged the name. */
                if (a->kind == ACTION_CREATE && !s->listing)
                        assert_null(a->intent);
                if (a->kind == ACTION_CREATE && a->intent)
                        assert_true(a->listed);
                _cleanup_free_ char *d = action_describe(a, NOW);
                assert_non_null(d);
                assert_true(strlen(d) > 0);
        }
        return s->plan;
}

static const Action *act(Scenario *s, const char *name) {
        const Action *a = plan_find(s->plan, name);
        if (!a)
                fail_msg("no action for %s", name);
        return a;
}

static void assert_action(const Action *a, ActionKind kind, ActionReason reason) {
        if (a->kind != kind || a->reason != reason)
                fail_msg("%s: got %s/%s, want %s/%s", a->name, action_kind_to_string(a->kind),
                         action_reason_to_string(a->reason), action_kind_to_string(kind),
                         action_reason_to_string(reason));
}

static void assert_describe_contains(const Action *a, const char *needle) {
        _cleanup_free_ char *d = action_describe(a, NOW);
        assert_non_null(d);
        if (!strstr(d, needle))
                fail_msg("describe(%s) = \"%s\", missing \"%s\"", a->name, d, needle);
}

/* ---- empty and trivial ---- */

static void test_empty(void **state) {
        Scenario *s = *state;
        const Plan *p = run(s);
        assert_int_equal(p->n, 0);
        assert_true(p->offline);
        assert_null(plan_find(p, "x"));

        s->listing = true; /* an empty listing is a listing */
        p = run(s);
        assert_int_equal(p->n, 0);
        assert_false(p->offline);
}

static void test_create_new(void **state) {
        Scenario *s = *state;
        NotebookSpec *spec = add_spec(s, "nb");
        run(s);
        const Action *a = act(s, "nb");
        assert_action(a, ACTION_CREATE, REASON_NEW);
        assert_ptr_equal(a->spec, spec);
        assert_null(a->record);
        assert_null(a->remote);
        assert_null(a->intent);
        assert_string_equal(a->spec_hash, hash_of(s, spec));
        assert_int_equal(s->plan->counts[ACTION_CREATE], 1);

        /* With a listing that doesn't have it: the same. Other names are irrelevant. */
        add_remote(s, ID_B, "someone-else", "RUNNING");
        run(s);
        assert_action(act(s, "nb"), ACTION_CREATE, REASON_NEW);
        assert_int_equal(s->plan->n, 1);
}

/* ---- adopt ---- */

static void test_adopt_found_by_name(void **state) {
        Scenario *s = *state;
        add_spec(s, "run");
        add_spec(s, "creating");
        add_remote(s, ID_A, "run", "RUNNING");
        const RemoteInstance *c = add_remote(s, ID_B, "creating", "CREATING");
        run(s);
        const Action *a = act(s, "run");
        assert_action(a, ACTION_ADOPT, REASON_FOUND_BY_NAME);
        assert_string_equal(a->remote->id, ID_A);
        assert_string_equal(a->status, "RUNNING");
        assert_false(a->follow);
        assert_int_equal(a->drift_fields, 0);
        assert_describe_contains(a, ID_A);

        a = act(s, "creating");
        assert_action(a, ACTION_ADOPT, REASON_FOUND_BY_NAME);
        assert_ptr_equal(a->remote, &s->remote.items[1]);
        assert_string_equal(a->remote->id, c->id);
        assert_true(a->follow);
        assert_int_equal(s->plan->counts[ACTION_ADOPT], 2);
}

static void test_adopt_when_record_has_no_id(void **state) {
        Scenario *s = *state;
        NotebookSpec *spec = add_spec(s, "nb");
        InstanceRecord *r = add_rec(s, "nb", NULL, NULL, RECORD_RESULT_RETRYING, hash_of(s, spec));
        r->next_attempt_at_ms = NOW + 60000;
        add_remote(s, ID_A, "nb", "RUNNING");
        run(s);
        /* The retry is moot: it exists (a create that "failed" but made it). */
        assert_action(act(s, "nb"), ACTION_ADOPT, REASON_FOUND_BY_NAME);
        assert_ptr_equal(act(s, "nb")->record, r);
}

static void test_adopt_even_when_rejected(void **state) {
        Scenario *s = *state;
        NotebookSpec *spec = add_spec(s, "nb");
        add_rec(s, "nb", NULL, NULL, RECORD_RESULT_REJECTED, hash_of(s, spec));
        add_remote(s, ID_A, "nb", "RUNNING");
        run(s);
        assert_action(act(s, "nb"), ACTION_ADOPT, REASON_FOUND_BY_NAME);
}

static void test_adopt_reports_differences(void **state) {
        Scenario *s = *state;
        add_spec(s, "nb");
        RemoteInstance *r = add_remote(s, ID_A, "nb", "RUNNING");
        free(r->flavor);
        r->flavor = sdup("modelarts.vm.cpu.8u");
        run(s);
        const Action *a = act(s, "nb");
        assert_action(a, ACTION_ADOPT, REASON_FOUND_BY_NAME);
        assert_int_equal(a->drift_fields, DRIFT_FLAVOR);
        assert_describe_contains(a, "modelarts.vm.cpu.8u");
}

static void test_name_twice_one_deleted(void **state) {
        Scenario *s = *state;
        add_spec(s, "first-deleted");
        add_spec(s, "first-live");
        add_spec(s, "only-deleted");
        add_remote(s, "d1", "first-deleted", "DELETED");
        add_remote(s, "l1", "first-deleted", "RUNNING");
        add_remote(s, "l2", "first-live", "CREATING");
        add_remote(s, "d2", "first-live", "DELETED");
        add_remote(s, "d3", "only-deleted", "DELETED");
        run(s);
        const Action *a = act(s, "first-deleted");
        assert_action(a, ACTION_ADOPT, REASON_FOUND_BY_NAME);
        assert_string_equal(a->remote->id, "l1");
        a = act(s, "first-live");
        assert_action(a, ACTION_ADOPT, REASON_FOUND_BY_NAME);
        assert_string_equal(a->remote->id, "l2");
        /* A DELETED entry is no instance: create. */
        a = act(s, "only-deleted");
        assert_action(a, ACTION_CREATE, REASON_NEW);
        assert_null(a->remote);
}

/* ---- intents: wait, resolve ---- */

static void test_wait_offline(void **state) {
        Scenario *s = *state;
        add_spec(s, "nb");
        add_intent(s, "nb", 7);
        run(s);
        const Action *a = act(s, "nb");
        assert_action(a, ACTION_WAIT, REASON_INTENT_OPEN);
        assert_non_null(a->intent);
        assert_int_equal(a->intent->id, 7);
        assert_describe_contains(a, "#7");
        assert_int_equal(s->plan->counts[ACTION_WAIT], 1);
        assert_int_equal(s->plan->counts[ACTION_CREATE], 0);
}

static void test_intent_found_adopts(void **state) {
        Scenario *s = *state;
        add_spec(s, "nb");
        add_intent(s, "nb", 7);
        add_remote(s, ID_A, "nb", "CREATING");
        run(s);
        const Action *a = act(s, "nb");
        assert_action(a, ACTION_ADOPT, REASON_INTENT_FOUND);
        assert_int_equal(a->intent->id, 7);
        assert_string_equal(a->remote->id, ID_A);
        assert_true(a->follow);
}

static void test_intent_absent_creates(void **state) {
        Scenario *s = *state;
        add_spec(s, "nb");
        add_intent(s, "nb", 7);
        add_remote(s, ID_B, "other", "RUNNING");
        run(s);
        const Action *a = act(s, "nb");
        assert_action(a, ACTION_CREATE, REASON_INTENT_ABSENT);
        assert_int_equal(a->intent->id, 7);
        assert_null(a->remote);
}

static void test_newest_intent_attached(void **state) {
        Scenario *s = *state;
        add_spec(s, "nb");
        add_intent(s, "nb", 3);
        add_intent(s, "nb", 9);
        add_intent(s, "nb", 5);
        CreateIntent *resolved = add_intent(s, "nb", 12);
        resolved->resolved_at_ms = NOW - 1; /* a resolved intent never counts */
        run(s);
        assert_action(act(s, "nb"), ACTION_WAIT, REASON_INTENT_OPEN);
        assert_int_equal(act(s, "nb")->intent->id, 9);
        assert_int_equal(s->plan->n, 1);
}

static void test_resolved_intent_ignored(void **state) {
        Scenario *s = *state;
        add_spec(s, "nb");
        CreateIntent *i = add_intent(s, "nb", 3);
        i->resolved_at_ms = NOW - 1;
        i->outcome = sdup("absent");
        run(s);
        assert_action(act(s, "nb"), ACTION_CREATE, REASON_NEW);
        assert_null(act(s, "nb")->intent);
}

static void test_unknown_result_waits_offline(void **state) {
        Scenario *s = *state;
        NotebookSpec *spec = add_spec(s, "nb");
        add_rec(s, "nb", NULL, NULL, RECORD_RESULT_UNKNOWN, hash_of(s, spec));
        run(s);
        assert_action(act(s, "nb"), ACTION_WAIT, REASON_INTENT_OPEN);

        add_remote(s, ID_B, "other", "RUNNING");
        run(s);
        assert_action(act(s, "nb"), ACTION_CREATE, REASON_RETRY_DUE);
}

/* Whatever else is recorded, an open intent without a listing never yields CREATE. */
static void test_never_create_with_open_intent_offline(void **state) {
        Scenario *s = *state;
        const char *results[] = { NULL, RECORD_RESULT_ACCEPTED, RECORD_RESULT_ADOPTED, RECORD_RESULT_REJECTED,
                                  RECORD_RESULT_RETRYING, RECORD_RESULT_AUTH_FAILED, RECORD_RESULT_UNKNOWN,
                                  RECORD_RESULT_GONE, "something-new" };
        const char *statuses[] = { NULL, "RUNNING", "CREATING", "CREATE_FAILED", "DELETED", "STOPPED", "WEIRD" };
        const char *ids[] = { NULL, ID_A };
        const int64_t nexts[] = { 0, NOW - 1, NOW, NOW + 1 };
        size_t n = 0;
        char name[64];
        for (size_t a = 0; a < ELEMENTSOF(results); a++)
                for (size_t b = 0; b < ELEMENTSOF(statuses); b++)
                        for (size_t c = 0; c < ELEMENTSOF(ids); c++)
                                for (size_t d = 0; d < ELEMENTSOF(nexts); d++)
                                        for (int changed = 0; changed < 2; changed++) {
                                                snprintf(name, sizeof(name), "nb-%zu", n++);
                                                NotebookSpec *spec = add_spec(s, name);
                                                InstanceRecord *r = add_rec(s, name, ids[c], statuses[b], results[a],
                                                                            changed ? "0000" : hash_of(s, spec));
                                                r->next_attempt_at_ms = nexts[d];
                                                r->attempts = (int64_t) d;
                                                add_intent(s, name, (int64_t) n);
                                        }
        add_intent(s, "no-record", 99999);
        add_spec(s, "no-record");
        run(s);
        assert_int_equal(s->plan->n, n + 1);
        assert_int_equal(s->plan->counts[ACTION_CREATE], 0);
        assert_true(s->plan->counts[ACTION_WAIT] > 0);
        for (size_t i = 0; i < s->plan->n; i++)
                assert_non_null(s->plan->actions[i].intent);
}

/* ---- blocked, retry ---- */

static void test_blocked_until_manifest_changes(void **state) {
        Scenario *s = *state;
        NotebookSpec *spec = add_spec(s, "nb");
        InstanceRecord *r = add_rec(s, "nb", NULL, NULL, RECORD_RESULT_REJECTED, hash_of(s, spec));
        r->http_status = 400;
        r->error_code = sdup("ModelArts.6404");
        r->error_msg = sdup("flavor not allowed");
        run(s);
        const Action *a = act(s, "nb");
        assert_action(a, ACTION_BLOCKED, REASON_REJECTED);
        assert_describe_contains(a, "HTTP 400 ModelArts.6404: flavor not allowed");
        assert_int_equal(s->plan->counts[ACTION_BLOCKED], 1);

        /* Still blocked with a listing that doesn't have it. */
        add_remote(s, ID_B, "other", "RUNNING");
        run(s);
        assert_action(act(s, "nb"), ACTION_BLOCKED, REASON_REJECTED);

        /* A later create with an unknown outcome: offline, only a listing can tell. */
        add_intent(s, "nb", 8);
        s->listing = false;
        run(s);
        assert_action(act(s, "nb"), ACTION_WAIT, REASON_INTENT_OPEN);
        s->listing = true;
        run(s);
        assert_action(act(s, "nb"), ACTION_BLOCKED, REASON_REJECTED);
        assert_int_equal(act(s, "nb")->intent->id, 8);

        /* The manifest changed: a new request deserves a try. */
        free(spec->flavor);
        spec->flavor = sdup("modelarts.vm.cpu.8u");
        run(s);
        a = act(s, "nb");
        assert_action(a, ACTION_CREATE, REASON_SPEC_CHANGED);
        assert_describe_contains(a, "ModelArts.6404");
}

static void test_rejected_without_hash_retries(void **state) {
        Scenario *s = *state;
        add_spec(s, "nb");
        add_rec(s, "nb", NULL, NULL, RECORD_RESULT_REJECTED, NULL);
        run(s);
        /* No hash recorded: we can't tell it changed; a retry is the safe failure. */
        assert_action(act(s, "nb"), ACTION_CREATE, REASON_SPEC_CHANGED);
}

static void test_retry_later_and_due(void **state) {
        Scenario *s = *state;
        const char *results[] = { RECORD_RESULT_RETRYING, RECORD_RESULT_AUTH_FAILED };
        for (size_t i = 0; i < ELEMENTSOF(results); i++) {
                char later[32], due[32], past[32];
                snprintf(later, sizeof(later), "later-%zu", i);
                snprintf(due, sizeof(due), "due-%zu", i);
                snprintf(past, sizeof(past), "past-%zu", i);
                InstanceRecord *r = add_rec(s, later, NULL, NULL, results[i], hash_of(s, add_spec(s, later)));
                r->next_attempt_at_ms = NOW + 42000;
                r->attempts = 3;
                r->http_status = 503;
                r = add_rec(s, due, NULL, NULL, results[i], hash_of(s, add_spec(s, due)));
                r->next_attempt_at_ms = NOW; /* due exactly now */
                r->attempts = 3;
                r = add_rec(s, past, NULL, NULL, results[i], hash_of(s, add_spec(s, past)));
                r->next_attempt_at_ms = NOW - 1;
        }
        run(s);
        for (size_t i = 0; i < ELEMENTSOF(results); i++) {
                char name[32];
                snprintf(name, sizeof(name), "later-%zu", i);
                assert_action(act(s, name), ACTION_RETRY_LATER, REASON_BACKOFF);
                assert_describe_contains(act(s, name), i ? "next try in 42s (attempt 4) after an authentication failure: HTTP 503"
                                                            : "next try in 42s (attempt 4) after a transient failure: HTTP 503");
                snprintf(name, sizeof(name), "due-%zu", i);
                assert_action(act(s, name), ACTION_CREATE, REASON_RETRY_DUE);
                assert_describe_contains(act(s, name), "attempt 4");
                snprintf(name, sizeof(name), "past-%zu", i);
                assert_action(act(s, name), ACTION_CREATE, REASON_RETRY_DUE);
        }
        assert_int_equal(s->plan->counts[ACTION_RETRY_LATER], 2);
        assert_int_equal(s->plan->counts[ACTION_CREATE], 4);
}

static void test_backoff_reset_by_spec_change(void **state) {
        Scenario *s = *state;
        add_spec(s, "nb");
        InstanceRecord *r = add_rec(s, "nb", NULL, NULL, RECORD_RESULT_RETRYING, "old-hash");
        r->next_attempt_at_ms = NOW + 3600 * 1000;
        run(s);
        assert_action(act(s, "nb"), ACTION_CREATE, REASON_SPEC_CHANGED);
}

static void test_retry_later_with_intent_absent(void **state) {
        Scenario *s = *state;
        NotebookSpec *spec = add_spec(s, "nb");
        InstanceRecord *r = add_rec(s, "nb", NULL, NULL, RECORD_RESULT_RETRYING, hash_of(s, spec));
        r->next_attempt_at_ms = NOW + 1000;
        add_intent(s, "nb", 4);
        run(s);
        assert_action(act(s, "nb"), ACTION_WAIT, REASON_INTENT_OPEN);
        add_remote(s, ID_B, "other", "RUNNING");
        run(s);
        /* The listing settles the intent (absent), the backoff still holds. */
        const Action *a = act(s, "nb");
        assert_action(a, ACTION_RETRY_LATER, REASON_BACKOFF);
        assert_int_equal(a->intent->id, 4);
        assert_null(a->remote);
}

/* ---- existing instances: ok, pending, failed, drift ---- */

static void test_existing_status_classes(void **state) {
        Scenario *s = *state;
        static const struct {
                const char *name, *status;
                ActionKind kind;
                bool follow;
        } cases[] = {
                { "running", "RUNNING", ACTION_OK, false },
                { "stopped", "STOPPED", ACTION_OK, false },
                { "creating", "CREATING", ACTION_PENDING, true },
                { "queuing", "CREATE_QUEUING", ACTION_PENDING, true },
                { "starting", "STARTING", ACTION_PENDING, true },
                { "unknown", NULL, ACTION_PENDING, true },
                { "weird", "SOMETHING_NEW", ACTION_PENDING, true },
                { "create-failed", "CREATE_FAILED", ACTION_FAILED, false },
                { "start-failed", "START_FAILED", ACTION_FAILED, false },
                { "error", "ERROR", ACTION_FAILED, false },
        };
        for (int listed = 0; listed < 2; listed++) {
                for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                        char id[32];
                        snprintf(id, sizeof(id), "id-%zu", i);
                        NotebookSpec *spec = add_spec(s, cases[i].name);
                        /* Listed: the remote status wins over a stale record. */
                        add_rec(s, cases[i].name, id, listed ? "RUNNING" : cases[i].status, RECORD_RESULT_ACCEPTED,
                                hash_of(s, spec));
                        if (listed)
                                add_remote(s, id, cases[i].name, cases[i].status);
                }
                run(s);
                for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                        const Action *a = act(s, cases[i].name);
                        assert_action(a, cases[i].kind, REASON_STATUS);
                        assert_int_equal(a->follow, cases[i].follow);
                        assert_int_equal(a->drift_fields, 0);
                        if (cases[i].status)
                                assert_string_equal(a->status, cases[i].status);
                        else
                                assert_null(a->status);
                        if (listed)
                                assert_non_null(a->remote);
                        else
                                assert_null(a->remote);
                }
                teardown(state);
                setup(state);
                s = *state;
        }
}

static void test_failed_reason_described(void **state) {
        Scenario *s = *state;
        NotebookSpec *spec = add_spec(s, "nb");
        add_rec(s, "nb", ID_A, "CREATING", RECORD_RESULT_ACCEPTED, hash_of(s, spec));
        RemoteInstance *r = add_remote(s, ID_A, "nb", "CREATE_FAILED");
        r->failed_reason = sdup("insufficient resources");
        run(s);
        assert_action(act(s, "nb"), ACTION_FAILED, REASON_STATUS);
        assert_describe_contains(act(s, "nb"), "CREATE_FAILED: insufficient resources");
        assert_int_equal(s->plan->counts[ACTION_FAILED], 1);
}

static void test_drift_offline_by_hash(void **state) {
        Scenario *s = *state;
        add_spec(s, "nb");
        add_spec(s, "creating");
        add_rec(s, "nb", ID_A, "RUNNING", RECORD_RESULT_ACCEPTED, "old-hash");
        add_rec(s, "creating", ID_B, "CREATING", RECORD_RESULT_ACCEPTED, "old-hash");
        run(s);
        const Action *a = act(s, "nb");
        assert_action(a, ACTION_DRIFT, REASON_DIFFERS);
        assert_int_equal(a->drift_fields, DRIFT_SPEC_HASH);
        assert_false(a->follow);
        assert_describe_contains(a, "manifest changed");
        /* Drift wins the kind, but the engine still follows a creating instance. */
        a = act(s, "creating");
        assert_action(a, ACTION_DRIFT, REASON_DIFFERS);
        assert_true(a->follow);
        assert_int_equal(s->plan->counts[ACTION_DRIFT], 2);
}

static void test_drift_with_listing_fields(void **state) {
        Scenario *s = *state;
        NotebookSpec *spec = add_spec(s, "nb");
        spec->description = sdup("for training");
        free(spec->workspace_id);
        spec->workspace_id = sdup("ws-1");
        add_rec(s, "nb", ID_A, "RUNNING", RECORD_RESULT_ADOPTED, hash_of(s, spec));
        RemoteInstance *r = add_remote(s, ID_A, "nb", "RUNNING");
        free(r->flavor);
        r->flavor = sdup("modelarts.vm.gpu.p100");
        free(r->profile_id);
        r->profile_id = sdup("Python3-gpu");
        r->description = sdup("something else");
        /* workspace matches */
        free(r->workspace_id);
        r->workspace_id = sdup("ws-1");
        run(s);
        const Action *a = act(s, "nb");
        assert_action(a, ACTION_DRIFT, REASON_DIFFERS);
        assert_int_equal(a->drift_fields, DRIFT_FLAVOR | DRIFT_PROFILE | DRIFT_DESCRIPTION);
        assert_describe_contains(a, "flavor: manifest 'modelarts.vm.cpu.2u', remote 'modelarts.vm.gpu.p100'");
        assert_describe_contains(a, "profile_id: manifest 'Python3', remote 'Python3-gpu'");
        assert_describe_contains(a, "description");
}

static void test_no_drift_on_missing_or_empty_fields(void **state) {
        Scenario *s = *state;
        NotebookSpec *spec = add_spec(s, "nb");
        add_rec(s, "nb", ID_A, "RUNNING", RECORD_RESULT_ACCEPTED, hash_of(s, spec));
        add_rec(s, "nohash", ID_B, "RUNNING", RECORD_RESULT_ADOPTED, NULL);
        add_spec(s, "nohash");
        RemoteInstance *r = add_remote(s, ID_A, "nb", "RUNNING");
        /* The listing left fields out; description "" is the API's "none". */
        r->flavor = (free(r->flavor), NULL);
        r->workspace_id = (free(r->workspace_id), NULL);
        r->description = sdup("");
        add_remote(s, ID_B, "nohash", "RUNNING");
        run(s);
        assert_action(act(s, "nb"), ACTION_OK, REASON_STATUS);
        assert_action(act(s, "nohash"), ACTION_OK, REASON_STATUS);

        /* Workspace default "0" vs a listing saying "0": no drift either. */
        free(s->specs[0]->workspace_id);
        s->specs[0]->workspace_id = NULL;
        r->workspace_id = sdup("0");
        assert_int_equal(spec_hash(s->specs[0], s->hash), 0);
        free(s->recs[0].spec_hash);
        s->recs[0].spec_hash = sdup(s->hash);
        run(s);
        assert_action(act(s, "nb"), ACTION_OK, REASON_STATUS);
}

static void test_failed_wins_over_drift(void **state) {
        Scenario *s = *state;
        add_spec(s, "nb");
        add_rec(s, "nb", ID_A, "CREATE_FAILED", RECORD_RESULT_ACCEPTED, "old-hash");
        run(s);
        const Action *a = act(s, "nb");
        assert_action(a, ACTION_FAILED, REASON_STATUS);
        assert_int_equal(a->drift_fields, DRIFT_SPEC_HASH);
}

/* ---- missing remotely ---- */

static void test_missing_remotely(void **state) {
        Scenario *s = *state;
        const char *names[] = { "absent", "deleted", "replaced" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                NotebookSpec *spec = add_spec(s, names[i]);
                char id[32];
                snprintf(id, sizeof(id), "ours-%zu", i);
                add_rec(s, names[i], id, "RUNNING", RECORD_RESULT_ACCEPTED, hash_of(s, spec));
        }
        add_remote(s, "ours-1", "deleted", "DELETED");
        add_remote(s, "theirs", "replaced", "RUNNING");
        run(s);
        const Action *a = act(s, "absent");
        assert_action(a, ACTION_CREATE, REASON_MISSING_REMOTELY);
        assert_describe_contains(a, "ours-0");
        assert_action(act(s, "deleted"), ACTION_CREATE, REASON_MISSING_REMOTELY);
        assert_null(act(s, "deleted")->remote);
        a = act(s, "replaced");
        assert_action(a, ACTION_ADOPT, REASON_ID_REPLACED);
        assert_string_equal(a->remote->id, "theirs");
        assert_describe_contains(a, "ours-2");

        /* Offline, the record is all there is: the instance is presumed there. */
        s->listing = false;
        run(s);
        assert_action(act(s, "absent"), ACTION_OK, REASON_STATUS);
}

/* An earlier listing (an incremental pass) adopts what it shows and compares what it
 * lists, but its silence proves nothing: an instance made since is judged by its
 * record, an open intent waits. A workspace listed again now is judged in full. */
static void test_earlier_listing(void **state) {
        Scenario *s = *state;
        NotebookSpec *made = add_spec(s, "made-since");
        add_rec(s, "made-since", "id-9", "RUNNING", RECORD_RESULT_ACCEPTED, hash_of(s, made));
        NotebookSpec *listed = add_spec(s, "listed");
        add_rec(s, "listed", "id-1", "RUNNING", RECORD_RESULT_ACCEPTED, hash_of(s, listed));
        RemoteInstance *l = add_remote(s, "id-1", "listed", "CREATING");
        free(l->flavor);
        l->flavor = sdup("modelarts.vm.cpu.8u");
        add_spec(s, "intent");
        add_intent(s, "intent", 7);
        add_spec(s, "new");
        add_spec(s, "shown");
        add_remote(s, "id-2", "shown", "RUNNING");

        s->stale = true;
        run(s);
        assert_action(act(s, "made-since"), ACTION_OK, REASON_STATUS);
        assert_false(act(s, "made-since")->listed);
        /* compared with the listing, but the status is the record's (newer) */
        const Action *a = act(s, "listed");
        assert_action(a, ACTION_DRIFT, REASON_DIFFERS);
        assert_true(a->drift_fields & DRIFT_FLAVOR);
        assert_string_equal(a->status, "RUNNING");
        assert_ptr_equal(a->remote, l);
        assert_action(act(s, "intent"), ACTION_WAIT, REASON_INTENT_OPEN);
        assert_action(act(s, "new"), ACTION_CREATE, REASON_NEW);
        assert_action(act(s, "shown"), ACTION_ADOPT, REASON_FOUND_BY_NAME);

        /* the same listing taken now decides both */
        s->fresh[s->n_fresh++] = "0";
        run(s);
        assert_action(act(s, "made-since"), ACTION_CREATE, REASON_MISSING_REMOTELY);
        assert_action(act(s, "intent"), ACTION_CREATE, REASON_INTENT_ABSENT);
        assert_true(act(s, "intent")->listed);
        assert_string_equal(act(s, "listed")->status, "CREATING");

        /* another workspace listed now changes nothing here */
        s->fresh[0] = "ws-other";
        run(s);
        assert_action(act(s, "made-since"), ACTION_OK, REASON_STATUS);
        assert_action(act(s, "intent"), ACTION_WAIT, REASON_INTENT_OPEN);
}

static void test_missing_remotely_offline_recorded_gone(void **state) {
        Scenario *s = *state;
        NotebookSpec *spec = add_spec(s, "gone");
        add_rec(s, "gone", ID_A, "RUNNING", RECORD_RESULT_GONE, hash_of(s, spec));
        spec = add_spec(s, "deleted");
        add_rec(s, "deleted", ID_B, "DELETED", RECORD_RESULT_ACCEPTED, hash_of(s, spec));
        run(s);
        assert_action(act(s, "gone"), ACTION_CREATE, REASON_MISSING_REMOTELY);
        assert_action(act(s, "deleted"), ACTION_CREATE, REASON_MISSING_REMOTELY);
        /* ...but not while an earlier create's outcome is unknown. */
        add_intent(s, "gone", 1);
        run(s);
        assert_action(act(s, "gone"), ACTION_WAIT, REASON_INTENT_OPEN);
}

/* ---- gone ---- */

static void test_gone_not_desired(void **state) {
        Scenario *s = *state;
        add_rec(s, "old", ID_A, "RUNNING", RECORD_RESULT_ACCEPTED, "h");
        add_rec(s, "old-rejected", NULL, NULL, RECORD_RESULT_REJECTED, "h");
        add_intent(s, "abandoned", 5);
        run(s);
        assert_int_equal(s->plan->n, 3);
        assert_int_equal(s->plan->counts[ACTION_GONE], 3);
        const Action *a = act(s, "old");
        assert_action(a, ACTION_GONE, REASON_NOT_DESIRED);
        assert_null(a->spec);
        assert_string_equal(a->spec_hash, "");
        assert_string_equal(a->status, "RUNNING");
        assert_describe_contains(a, "not deleted");
        a = act(s, "abandoned");
        assert_action(a, ACTION_GONE, REASON_NOT_DESIRED);
        assert_int_equal(a->intent->id, 5);
        assert_null(a->record);

        /* With a listing the remote facts are attached. */
        add_remote(s, ID_A, "old", "STOPPED");
        add_remote(s, ID_B, "abandoned", "RUNNING");
        run(s);
        assert_string_equal(act(s, "old")->status, "STOPPED");
        assert_string_equal(act(s, "abandoned")->remote->id, ID_B);
        assert_int_equal(s->plan->counts[ACTION_GONE], 3);
}

/* ---- ties, order, errors, scale ---- */

static void test_sorted_and_merged(void **state) {
        Scenario *s = *state;
        /* Desired, records and intents interleave; given in no particular order. */
        add_spec(s, "m");
        add_spec(s, "a-1");
        add_spec(s, "B");
        add_spec(s, "a");
        add_rec(s, "z", ID_A, "RUNNING", RECORD_RESULT_ACCEPTED, "h");
        add_rec(s, "a", ID_B, "RUNNING", RECORD_RESULT_ACCEPTED, "h");
        add_rec(s, "c", NULL, NULL, RECORD_RESULT_REJECTED, "h");
        add_intent(s, "m", 1);
        add_intent(s, "0", 2);
        add_intent(s, "c", 3);
        run(s);
        const char *want[] = { "0", "B", "a", "a-1", "c", "m", "z" };
        assert_int_equal(s->plan->n, ELEMENTSOF(want));
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                assert_string_equal(s->plan->actions[i].name, want[i]);
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                assert_ptr_equal(plan_find(s->plan, want[i]), &s->plan->actions[i]);
        assert_null(plan_find(s->plan, "b"));
        assert_null(plan_find(s->plan, "zz"));
        assert_action(act(s, "a"), ACTION_DRIFT, REASON_DIFFERS);
        assert_action(act(s, "m"), ACTION_WAIT, REASON_INTENT_OPEN);
        assert_action(act(s, "c"), ACTION_GONE, REASON_NOT_DESIRED);
        assert_int_equal(act(s, "c")->intent->id, 3);
}

/* A name is adopted only from its own workspace's listing: the same name elsewhere is
 * another team's instance, not this manifest's. */
static void test_adopt_only_in_own_workspace(void **state) {
        Scenario *s = *state;
        NotebookSpec *spec = add_spec(s, "nb");
        free(spec->workspace_id);
        spec->workspace_id = sdup("ws-a");
        RemoteInstance *other = add_remote(s, "id-0", "nb", "RUNNING");   /* workspace "0" */
        run(s);
        assert_action(act(s, "nb"), ACTION_CREATE, REASON_NEW);

        free(other->workspace_id);
        other->workspace_id = sdup("ws-a");
        run(s);
        assert_action(act(s, "nb"), ACTION_ADOPT, REASON_FOUND_BY_NAME);
        assert_string_equal(act(s, "nb")->remote->id, "id-0");
}

/* An instance id is found in whichever workspace listed it; a listing item without a
 * workspace counts as "0". */
static void test_recorded_id_found_in_any_workspace(void **state) {
        Scenario *s = *state;
        NotebookSpec *spec = add_spec(s, "nb");
        free(spec->workspace_id);
        spec->workspace_id = sdup("ws-b");
        InstanceRecord *r = add_rec(s, "nb", "id-1", "RUNNING", RECORD_RESULT_ACCEPTED, hash_of(s, spec));
        r->workspace_id = sdup("ws-b");
        RemoteInstance *ri = add_remote(s, "id-1", "nb", "RUNNING");
        free(ri->workspace_id);
        ri->workspace_id = sdup("ws-b");
        run(s);
        assert_action(act(s, "nb"), ACTION_OK, REASON_STATUS);

        add_spec(s, "plain");
        RemoteInstance *bare = add_remote(s, "id-2", "plain", "RUNNING");
        bare->workspace_id = mfree(bare->workspace_id);
        run(s);
        assert_action(act(s, "plain"), ACTION_ADOPT, REASON_FOUND_BY_NAME);
}

/* A failed listing of one workspace holds only that workspace's names: nothing there is
 * created, judged missing or gone; the other workspaces go on. */
static void test_unlisted_workspace_waits(void **state) {
        Scenario *s = *state;
        NotebookSpec *a = add_spec(s, "in-a");
        free(a->workspace_id);
        a->workspace_id = sdup("ws-a");
        NotebookSpec *b = add_spec(s, "recorded-in-a");
        InstanceRecord *r = add_rec(s, "recorded-in-a", "id-9", "RUNNING", RECORD_RESULT_ACCEPTED, hash_of(s, b));
        r->workspace_id = sdup("ws-a");   /* the manifest moved it to "0"; the instance is in ws-a */
        add_spec(s, "in-zero");
        s->listing = true;
        s->unlisted[s->n_unlisted++] = "ws-a";
        run(s);
        assert_action(act(s, "in-a"), ACTION_WAIT, REASON_LISTING_FAILED);
        assert_action(act(s, "recorded-in-a"), ACTION_WAIT, REASON_LISTING_FAILED);
        assert_action(act(s, "in-zero"), ACTION_CREATE, REASON_NEW);
        _cleanup_free_ char *why = action_describe(act(s, "in-a"), NOW);
        assert_non_null(strstr(why, "ws-a"));
}

/* 6301 and the listing does not show the name: blocked as a conflict until the manifest
 * changes or a listing shows the name. */
static void test_name_conflict(void **state) {
        Scenario *s = *state;
        NotebookSpec *spec = add_spec(s, "nb");
        InstanceRecord *r = add_rec(s, "nb", NULL, NULL, RECORD_RESULT_EXISTS, hash_of(s, spec));
        r->error_code = sdup("ModelArts.6301");
        s->listing = true;
        run(s);
        assert_action(act(s, "nb"), ACTION_BLOCKED, REASON_NAME_CONFLICT);
        _cleanup_free_ char *why = action_describe(act(s, "nb"), NOW);
        assert_non_null(strstr(why, "ModelArts.6301"));

        free(r->result);
        r->result = sdup(RECORD_RESULT_CONFLICT);
        run(s);
        assert_action(act(s, "nb"), ACTION_BLOCKED, REASON_NAME_CONFLICT);

        free(r->spec_hash);
        r->spec_hash = sdup("an-older-manifest");
        run(s);
        assert_action(act(s, "nb"), ACTION_CREATE, REASON_SPEC_CHANGED);

        free(r->spec_hash);
        r->spec_hash = sdup(hash_of(s, spec));
        add_remote(s, "id-7", "nb", "RUNNING");
        run(s);
        assert_action(act(s, "nb"), ACTION_ADOPT, REASON_FOUND_BY_NAME);
}

static void test_duplicates_rejected(void **state) {
        Scenario *s = *state;
        add_spec(s, "x");
        add_spec(s, "x");
        Plan *p = (Plan *) 0x1;
        assert_int_equal(plan_compute((const NotebookSpec *const *) s->specs, s->n_specs, NULL, 0, NULL, 0, NULL,
                                      NOW, &p),
                         -EINVAL);
        assert_ptr_equal(p, (Plan *) 0x1);

        add_rec(s, "y", NULL, NULL, NULL, NULL);
        add_rec(s, "y", NULL, NULL, NULL, NULL);
        assert_int_equal(plan_compute((const NotebookSpec *const *) s->specs, 1, s->recs, s->n_recs, NULL, 0, NULL,
                                      NOW, &p),
                         -EINVAL);
        assert_ptr_equal(p, (Plan *) 0x1);
}

static void test_pure_and_repeatable(void **state) {
        Scenario *s = *state;
        add_spec(s, "a");
        add_spec(s, "b");
        add_rec(s, "b", ID_A, "CREATING", RECORD_RESULT_ACCEPTED, "h");
        add_intent(s, "c", 1);
        add_remote(s, ID_A, "b", "RUNNING");
        run(s);
        Plan *first = TAKE_PTR(s->plan);
        run(s);
        assert_int_equal(first->n, s->plan->n);
        for (size_t i = 0; i < first->n; i++) {
                assert_string_equal(first->actions[i].name, s->plan->actions[i].name);
                assert_int_equal(first->actions[i].kind, s->plan->actions[i].kind);
                assert_int_equal(first->actions[i].reason, s->plan->actions[i].reason);
        }
        plan_free(first);
        /* Inputs untouched: the record still says CREATING. */
        assert_string_equal(s->recs[0].status, "CREATING");
}

static void test_ten_thousand(void **state) {
        Scenario *s = *state;
        enum { N = 10000 };
        char name[32], id[32];
        /* i % 5: 0 new; 1 recorded+listed RUNNING; 2 listed only (adopt); 3 open intent
         * (offline: wait, listed: by i%2); 4 recorded, missing from the listing. Plus N/10
         * recorded names that are no longer desired. Inserted in reverse order. */
        for (size_t k = 0; k < N; k++) {
                size_t i = N - 1 - k;
                snprintf(name, sizeof(name), "nb-%05zu", i);
                snprintf(id, sizeof(id), "id-%05zu", i);
                NotebookSpec *spec = add_spec(s, name);
                switch (i % 5) {
                case 1:
                        add_rec(s, name, id, "RUNNING", RECORD_RESULT_ACCEPTED, hash_of(s, spec));
                        add_remote(s, id, name, "RUNNING");
                        break;
                case 2:
                        add_remote(s, id, name, "RUNNING");
                        break;
                case 3:
                        add_intent(s, name, (int64_t) i);
                        if (i % 2)
                                add_remote(s, id, name, "CREATING");
                        break;
                case 4:
                        add_rec(s, name, id, "RUNNING", RECORD_RESULT_ACCEPTED, hash_of(s, spec));
                        break;
                }
        }
        for (size_t i = 0; i < N / 10; i++) {
                snprintf(name, sizeof(name), "old-%05zu", i);
                add_rec(s, name, "x", "RUNNING", RECORD_RESULT_ACCEPTED, "h");
        }
        run(s);
        assert_int_equal(s->plan->n, N + N / 10);
        size_t want_adopt = 0, want_create = 0;
        for (size_t i = 0; i < N; i++) {
                snprintf(name, sizeof(name), "nb-%05zu", i);
                const Action *a = act(s, name);
                switch (i % 5) {
                case 0:
                        assert_action(a, ACTION_CREATE, REASON_NEW);
                        want_create++;
                        break;
                case 1:
                        assert_action(a, ACTION_OK, REASON_STATUS);
                        break;
                case 2:
                        assert_action(a, ACTION_ADOPT, REASON_FOUND_BY_NAME);
                        want_adopt++;
                        break;
                case 3:
                        if (i % 2) {
                                assert_action(a, ACTION_ADOPT, REASON_INTENT_FOUND);
                                want_adopt++;
                        } else {
                                assert_action(a, ACTION_CREATE, REASON_INTENT_ABSENT);
                                want_create++;
                        }
                        break;
                case 4:
                        assert_action(a, ACTION_CREATE, REASON_MISSING_REMOTELY);
                        want_create++;
                        break;
                }
        }
        assert_int_equal(s->plan->counts[ACTION_ADOPT], want_adopt);
        assert_int_equal(s->plan->counts[ACTION_CREATE], want_create);
        assert_int_equal(s->plan->counts[ACTION_OK], N / 5);
        assert_int_equal(s->plan->counts[ACTION_GONE], N / 10);

        /* Offline the same inputs: intents wait, the rest is taken from the records. */
        s->listing = false;
        run(s);
        assert_int_equal(s->plan->counts[ACTION_WAIT], N / 5);
        assert_int_equal(s->plan->counts[ACTION_CREATE], N / 5 * 2); /* i%5 == 0 and 2 */
        assert_int_equal(s->plan->counts[ACTION_OK], N / 5 * 2);
}


/* ---- state: (the lifecycle) ---- */

/* state: running|stopped is acted on when the status is the other one; without it
 * (no opinion) a stopped instance stays stopped; an instance on its way is followed
 * first; drift does not hold the action back (and is kept in drift_fields). */
static void test_state_start_stop(void **state) {
        Scenario *s = *state;
        static const struct {
                DesiredState want;
                const char *status;
                ActionKind kind;
        } t[] = {
                { DESIRED_STATE_STOPPED, "RUNNING", ACTION_STOP },
                { DESIRED_STATE_RUNNING, "STOPPED", ACTION_START },
                { DESIRED_STATE_ANY, "STOPPED", ACTION_OK },
                { DESIRED_STATE_ANY, "RUNNING", ACTION_OK },
                { DESIRED_STATE_STOPPED, "STOPPED", ACTION_OK },
                { DESIRED_STATE_RUNNING, "RUNNING", ACTION_OK },
                { DESIRED_STATE_STOPPED, "CREATING", ACTION_PENDING },
                { DESIRED_STATE_RUNNING, "STOPPING", ACTION_PENDING },
                { DESIRED_STATE_RUNNING, "START_FAILED", ACTION_FAILED },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                teardown(state);
                setup(state);
                s = *state;
                NotebookSpec *spec = add_spec(s, "nb");
                spec->state = t[i].want;
                add_rec(s, "nb", ID_A, t[i].status, RECORD_RESULT_ACCEPTED, hash_of(s, spec));
                /* offline: judged by the record's status */
                run(s);
                assert_int_equal(act(s, "nb")->kind, t[i].kind);
                /* listed: by the listing's */
                add_remote(s, ID_A, "nb", t[i].status);
                run(s);
                const Action *a = act(s, "nb");
                assert_int_equal(a->kind, t[i].kind);
                if (a->kind == ACTION_OK && t[i].want != DESIRED_STATE_ANY)
                        assert_describe_contains(a, t[i].want == DESIRED_STATE_RUNNING ? "(state: running)"
                                                                                       : "(state: stopped)");
                if (a->kind == ACTION_START || a->kind == ACTION_STOP) {
                        assert_int_equal(a->reason, REASON_STATE);
                        assert_describe_contains(a, a->kind == ACTION_START ? "state: running: start"
                                                                            : "state: stopped: stop");
                }
        }

        /* Drift and state: the stop goes ahead, the drift is kept and told. */
        teardown(state);
        setup(state);
        s = *state;
        NotebookSpec *spec = add_spec(s, "nb");
        spec->state = DESIRED_STATE_STOPPED;
        add_rec(s, "nb", ID_A, "RUNNING", RECORD_RESULT_ACCEPTED, hash_of(s, spec));
        RemoteInstance *r = add_remote(s, ID_A, "nb", "RUNNING");
        free(r->flavor);
        r->flavor = sdup("modelarts.vm.cpu.8u");
        run(s);
        const Action *a = act(s, "nb");
        assert_action(a, ACTION_STOP, REASON_STATE);
        assert_true(a->drift_fields & DRIFT_FLAVOR);
        assert_describe_contains(a, "flavor");

        /* state: is not part of the create call: no spec change, no drift. */
        NotebookSpec *plain = add_spec(s, "plain");
        char h1[SPEC_HASH_HEX_LEN + 1], h2[SPEC_HASH_HEX_LEN + 1];
        assert_int_equal(spec_hash(plain, h1), 0);
        plain->state = DESIRED_STATE_STOPPED;
        assert_int_equal(spec_hash(plain, h2), 0);
        assert_string_equal(h1, h2);
}

/* Drift says what differs and that only a re-creation applies it. */
static void test_drift_needs_recreation(void **state) {
        Scenario *s = *state;
        NotebookSpec *spec = add_spec(s, "nb");
        add_rec(s, "nb", ID_A, "RUNNING", RECORD_RESULT_ACCEPTED, hash_of(s, spec));
        RemoteInstance *r = add_remote(s, ID_A, "nb", "RUNNING");
        free(r->profile_id);
        r->profile_id = sdup("Python2");
        run(s);
        const Action *a = act(s, "nb");
        assert_action(a, ACTION_DRIFT, REASON_DIFFERS);
        assert_describe_contains(a, "profile_id: manifest 'Python3', remote 'Python2'");
        assert_describe_contains(a, "needs re-creation");
}

/* ---- prune (lib/prune.h): each guard refuses, and all of them pass ---- */

#define GRACE_MS (10 * 60 * 1000)

static const PrunePolicy prune_on = { .enabled = true, .grace_ms = GRACE_MS, .max_per_pass = 5 };

/* A name gone from the tree: created by us, marked absent mark_ago_ms ago (0: not
 * marked yet), listed RUNNING now unless !listed. */
static InstanceRecord *add_gone(Scenario *s, const char *name, const char *id, int64_t mark_ago_ms) {
        InstanceRecord *r = add_rec(s, name, id, "RUNNING", RECORD_RESULT_ACCEPTED, "h");
        r->created_by_us = true;
        r->workspace_id = sdup("0");
        r->undesired_since_ms = mark_ago_ms > 0 ? NOW - mark_ago_ms : 0;
        return r;
}

static const Plan *run_prune(Scenario *s, const PrunePolicy *policy) {
        run(s);
        plan_apply_prune(s->plan, policy, NOW);
        size_t total = 0;
        for (size_t k = 0; k < _ACTION_KIND_MAX; k++)
                total += s->plan->counts[k];
        assert_int_equal(total, s->plan->n);
        for (size_t i = 0; i < s->plan->n; i++) {
                const Action *a = &s->plan->actions[i];
                /* nothing is deleted that a current listing does not show live, nor
                 * anything adopted without prune_adopted */
                if (a->kind == ACTION_DELETE) {
                        assert_true(a->listed && a->remote);
                        assert_true(a->record->created_by_us || policy->adopted);
                        assert_true(NOW >= a->record->undesired_since_ms + policy->grace_ms);
                }
                _cleanup_free_ char *d = action_describe(a, NOW);
                assert_non_null(d);
        }
        return s->plan;
}

static void test_prune_guards(void **state) {
        Scenario *s = *state;
        add_spec(s, "keep");                      /* the tree is not empty */
        add_gone(s, "due", ID_A, GRACE_MS + 1000);
        InstanceRecord *adopted = add_gone(s, "adopted", ID_B, GRACE_MS + 1000);
        adopted->created_by_us = false;
        add_gone(s, "young", "33333333-3333-4333-8333-333333333333", GRACE_MS - 1000);
        add_gone(s, "unmarked", "44444444-4444-4444-8444-444444444444", 0);
        add_gone(s, "gone-already", "55555555-5555-4555-8555-555555555555", GRACE_MS + 1000);
        add_rec(s, "never-made", NULL, NULL, RECORD_RESULT_REJECTED, "h")->undesired_since_ms = NOW - GRACE_MS * 2;
        add_remote(s, ID_A, "due", "RUNNING");
        add_remote(s, ID_B, "adopted", "RUNNING");
        add_remote(s, "33333333-3333-4333-8333-333333333333", "young", "RUNNING");
        add_remote(s, "44444444-4444-4444-8444-444444444444", "unmarked", "STOPPED");
        add_remote(s, "55555555-5555-4555-8555-555555555555", "gone-already", "DELETED");

        /* off: nothing changes */
        const PrunePolicy off = { .grace_ms = GRACE_MS, .max_per_pass = 5 };
        run_prune(s, &off);
        assert_int_equal(s->plan->counts[ACTION_DELETE], 0);
        assert_int_equal(act(s, "due")->prune_hold, PRUNE_HOLD_NONE);
        assert_describe_contains(act(s, "due"), "kept, not deleted");

        run_prune(s, &prune_on);
        assert_int_equal(s->plan->counts[ACTION_DELETE], 1);
        assert_action(act(s, "due"), ACTION_DELETE, REASON_PRUNE);
        assert_describe_contains(act(s, "due"), "stopped first");
        /* 1. ownership */
        assert_action(act(s, "adopted"), ACTION_GONE, REASON_NOT_DESIRED);
        assert_int_equal(act(s, "adopted")->prune_hold, PRUNE_HOLD_ADOPTED);
        assert_describe_contains(act(s, "adopted"), "prune_adopted is off");
        /* 3. grace: a young mark, and no mark yet (due a full grace from now) */
        assert_int_equal(act(s, "young")->prune_hold, PRUNE_HOLD_GRACE);
        assert_int_equal(act(s, "young")->prune_due_ms, NOW + 1000);
        assert_describe_contains(act(s, "young"), "to be deleted in 1s");
        assert_int_equal(act(s, "unmarked")->prune_hold, PRUNE_HOLD_GRACE);
        assert_int_equal(act(s, "unmarked")->prune_due_ms, NOW + GRACE_MS);
        /* nothing to delete: no instance, or already DELETED */
        assert_int_equal(act(s, "gone-already")->prune_hold, PRUNE_HOLD_NONE);
        assert_int_equal(act(s, "gone-already")->kind, ACTION_GONE);
        assert_int_equal(act(s, "never-made")->prune_hold, PRUNE_HOLD_NONE);
        assert_int_equal(s->plan->prune_due, 1);
        assert_false(s->plan->prune_capped);

        /* prune_adopted: the adopted one goes too */
        PrunePolicy adopted_too = prune_on;
        adopted_too.adopted = true;
        run_prune(s, &adopted_too);
        assert_int_equal(act(s, "adopted")->kind, ACTION_DELETE);
        assert_int_equal(s->plan->counts[ACTION_DELETE], 2);

        /* 2. a tree that is not whole deletes nothing */
        PrunePolicy broken = prune_on;
        broken.tree_problem = "x.yaml:1:1: error: bad";
        run_prune(s, &broken);
        assert_int_equal(s->plan->counts[ACTION_DELETE], 0);
        assert_int_equal(act(s, "due")->prune_hold, PRUNE_HOLD_TREE);
        assert_describe_contains(act(s, "due"), "not whole");

        /* 4. no current listing (offline, or an earlier one) */
        s->stale = true;
        run_prune(s, &prune_on);
        assert_int_equal(s->plan->counts[ACTION_DELETE], 0);
        assert_int_equal(act(s, "due")->prune_hold, PRUNE_HOLD_UNLISTED);
        s->listing = false;
        run_prune(s, &prune_on);
        assert_int_equal(act(s, "due")->prune_hold, PRUNE_HOLD_UNLISTED);
}

/* 5. the cap: a pass that would delete more deletes none; --prune-confirm=N replaces
 * it with an exact count. */
static void test_prune_cap(void **state) {
        Scenario *s = *state;
        add_spec(s, "keep");
        char name[16], id[40];
        for (int i = 0; i < 6; i++) {
                snprintf(name, sizeof name, "old-%d", i);
                snprintf(id, sizeof id, "00000000-0000-4000-8000-00000000000%d", i);
                add_gone(s, name, id, GRACE_MS * 2);
                add_remote(s, id, name, i % 2 ? "RUNNING" : "STOPPED");
        }
        run_prune(s, &prune_on);
        assert_int_equal(s->plan->counts[ACTION_DELETE], 0);
        assert_true(s->plan->prune_capped);
        assert_int_equal(s->plan->prune_due, 6);
        for (size_t i = 0; i < s->plan->n; i++)
                if (s->plan->actions[i].kind == ACTION_GONE)
                        assert_int_equal(s->plan->actions[i].prune_hold, PRUNE_HOLD_CAP);
        assert_describe_contains(act(s, "old-0"), "more than prune allows");

        PrunePolicy p = prune_on;
        p.max_per_pass = 6;
        run_prune(s, &p);
        assert_int_equal(s->plan->counts[ACTION_DELETE], 6);
        assert_false(s->plan->prune_capped);

        p = prune_on;
        p.confirm = 5;   /* not the count: none */
        run_prune(s, &p);
        assert_int_equal(s->plan->counts[ACTION_DELETE], 0);
        assert_true(s->plan->prune_capped);
        p.confirm = 6;   /* the exact count, past the cap */
        run_prune(s, &p);
        assert_int_equal(s->plan->counts[ACTION_DELETE], 6);
        p.confirm = 7;
        run_prune(s, &p);
        assert_int_equal(s->plan->counts[ACTION_DELETE], 0);

        /* offline (plan): the cap is judged before the listing, so plan shows the count
         * to confirm; under the cap, what no listing shows now waits for one */
        s->listing = false;
        run_prune(s, &prune_on);
        assert_true(s->plan->prune_capped);
        assert_int_equal(s->plan->prune_due, 6);
        assert_int_equal(act(s, "old-1")->prune_hold, PRUNE_HOLD_CAP);
        p = prune_on;
        p.max_per_pass = 6;
        run_prune(s, &p);
        assert_false(s->plan->prune_capped);
        assert_int_equal(act(s, "old-1")->prune_hold, PRUNE_HOLD_UNLISTED);
        assert_int_equal(s->plan->counts[ACTION_DELETE], 0);

        /* a tree that is not whole: an unmarked name starts no grace (no due time) */
        InstanceRecord *fresh = add_gone(s, "fresh", "66666666-6666-4666-8666-666666666666", 0);
        (void) fresh;
        PrunePolicy broken = prune_on;
        broken.tree_problem = "x";
        run_prune(s, &broken);
        assert_int_equal(act(s, "fresh")->prune_hold, PRUNE_HOLD_TREE);
        assert_int_equal(act(s, "fresh")->prune_due_ms, 0);
        assert_int_equal(act(s, "old-1")->prune_due_ms, NOW - GRACE_MS * 2 + GRACE_MS);
}

static void test_kind_and_reason_strings(void **state) {
        (void) state;
        for (int k = 0; k < _ACTION_KIND_MAX; k++) {
                assert_string_not_equal(action_kind_to_string((ActionKind) k), "?");
                for (int j = 0; j < k; j++)
                        assert_string_not_equal(action_kind_to_string((ActionKind) k),
                                                action_kind_to_string((ActionKind) j));
        }
        for (int r = 0; r < _REASON_MAX; r++)
                assert_string_not_equal(action_reason_to_string((ActionReason) r), "?");
        for (int h = 1; h < _PRUNE_HOLD_MAX; h++)
                assert_true(strlen(prune_hold_to_string((PruneHold) h)) > 0);
        assert_string_equal(action_kind_to_string(ACTION_RETRY_LATER), "retry-later");
        assert_string_equal(action_kind_to_string(_ACTION_KIND_MAX), "?");
}

/* The workspaces a full pass lists, which plan --live lists too: "0" always, each
 * spec's, each record's (a name no longer desired still has its instance there);
 * sorted, each once. */
static void test_workspaces_needed(void **state) {
        Scenario *s = *state;
        const char **ws = NULL;
        size_t n = 99;
        assert_int_equal(plan_workspaces_needed(NULL, 0, NULL, 0, &ws, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(ws[0], "0");
        free(ws);

        NotebookSpec *a = add_spec(s, "a"), *b = add_spec(s, "b");
        add_spec(s, "c");   /* workspace "0", already there */
        free(a->workspace_id);
        a->workspace_id = sdup("ws-b");
        free(b->workspace_id);
        b->workspace_id = sdup("ws-a");
        add_rec(s, "gone", "id-1", "RUNNING", "created", "h")->workspace_id = sdup("ws-c");
        add_rec(s, "b", "id-2", "RUNNING", "created", "h")->workspace_id = sdup("ws-a");
        add_rec(s, "old", "id-3", "RUNNING", "created", "h");   /* none recorded: no entry */
        assert_int_equal(plan_workspaces_needed((const NotebookSpec *const *) s->specs, s->n_specs, s->recs,
                                                s->n_recs, &ws, &n),
                         0);
        assert_int_equal(n, 4);
        assert_string_equal(ws[0], "0");
        assert_string_equal(ws[1], "ws-a");
        assert_string_equal(ws[2], "ws-b");
        assert_string_equal(ws[3], "ws-c");
        free(ws);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
                T(test_empty),
                T(test_create_new),
                T(test_adopt_found_by_name),
                T(test_adopt_when_record_has_no_id),
                T(test_adopt_even_when_rejected),
                T(test_adopt_reports_differences),
                T(test_name_twice_one_deleted),
                T(test_wait_offline),
                T(test_intent_found_adopts),
                T(test_intent_absent_creates),
                T(test_newest_intent_attached),
                T(test_resolved_intent_ignored),
                T(test_unknown_result_waits_offline),
                T(test_never_create_with_open_intent_offline),
                T(test_blocked_until_manifest_changes),
                T(test_rejected_without_hash_retries),
                T(test_retry_later_and_due),
                T(test_backoff_reset_by_spec_change),
                T(test_retry_later_with_intent_absent),
                T(test_existing_status_classes),
                T(test_failed_reason_described),
                T(test_drift_offline_by_hash),
                T(test_drift_with_listing_fields),
                T(test_no_drift_on_missing_or_empty_fields),
                T(test_failed_wins_over_drift),
                T(test_missing_remotely),
                T(test_earlier_listing),
                T(test_missing_remotely_offline_recorded_gone),
                T(test_gone_not_desired),
                T(test_state_start_stop),
                T(test_drift_needs_recreation),
                T(test_prune_guards),
                T(test_prune_cap),
                T(test_sorted_and_merged),
                T(test_duplicates_rejected),
                T(test_adopt_only_in_own_workspace),
                T(test_recorded_id_found_in_any_workspace),
                T(test_unlisted_workspace_waits),
                T(test_name_conflict),
                T(test_pure_and_repeatable),
                T(test_ten_thousand),
                T(test_kind_and_reason_strings),
                T(test_workspaces_needed),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
