/* The reconcile engine (daemon/engine.c) on a real sd-event loop and a real SQLite store,
 * driven through a scripted API: api_create/list/get are wrapped (--wrap, see the
 * Makefile), every call is recorded, and each test answers the calls itself, in the
 * order it wants, with the ApiResult it wants. So every transition is reachable without
 * a server, and an interleaving (a create finishing while a listing is out) is written
 * down instead of hoped for. engine.c and log.c live in daemon/, outside the library, so
 * they are compiled into this suite. */
/* LDFLAGS: -Wl,--wrap=api_create,--wrap=api_list,--wrap=api_get,--wrap=api_start,--wrap=api_stop,--wrap=api_delete,--wrap=api_client_cancel_queued,--wrap=api_client_reset_auth,--wrap=api_client_auth_failed,--wrap=store_commit */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../daemon/engine.c"
#include "../../daemon/log.c"

/* ---------------------------------------------------------------- the scripted API */

typedef struct Call {
        ApiCall call;
        char *what;               /* create: the name; list: the workspace; get: the id */
        const NotebookSpec *spec; /* create: the engine's copy (valid while the call is open) */
        api_instance_cb instance_cb;
        api_list_cb list_cb;
        api_done_cb done_cb;      /* start, stop, delete */
        void *userdata;
        bool answered;
} Call;

#define MAX_CALLS 1024
static Call calls[MAX_CALLS];
static size_t n_calls;
static unsigned cancel_queued_calls, reset_auth_calls;

static Call *record_call(ApiCall call, const char *what, void *userdata) {
        assert_true(n_calls < MAX_CALLS);
        Call *c = &calls[n_calls++];
        *c = (Call) { .call = call, .what = strdup(what ? what : "0"), .userdata = userdata };
        assert_non_null(c->what);
        return c;
}

int __wrap_api_create(ApiClient *c, const NotebookSpec *spec, api_instance_cb cb, void *userdata);
int __wrap_api_create(ApiClient *c, const NotebookSpec *spec, api_instance_cb cb, void *userdata) {
        (void) c;
        Call *k = record_call(API_CALL_CREATE, spec->name, userdata);
        k->spec = spec;
        k->instance_cb = cb;
        return 0;
}

int __wrap_api_list(ApiClient *c, const char *workspace_id, api_list_cb cb, void *userdata);
int __wrap_api_list(ApiClient *c, const char *workspace_id, api_list_cb cb, void *userdata) {
        (void) c;
        record_call(API_CALL_LIST, workspace_id, userdata)->list_cb = cb;
        return 0;
}

int __wrap_api_get(ApiClient *c, const char *instance_id, api_instance_cb cb, void *userdata);
int __wrap_api_get(ApiClient *c, const char *instance_id, api_instance_cb cb, void *userdata) {
        (void) c;
        record_call(API_CALL_GET, instance_id, userdata)->instance_cb = cb;
        return 0;
}

/* start, stop, delete: what = the instance id */
static int wrap_done(ApiCall call, const char *instance_id, api_done_cb cb, void *userdata) {
        record_call(call, instance_id, userdata)->done_cb = cb;
        return 0;
}
int __wrap_api_start(ApiClient *c, const char *instance_id, api_done_cb cb, void *userdata);
int __wrap_api_start(ApiClient *c, const char *instance_id, api_done_cb cb, void *userdata) {
        (void) c;
        return wrap_done(API_CALL_START, instance_id, cb, userdata);
}
int __wrap_api_stop(ApiClient *c, const char *instance_id, api_done_cb cb, void *userdata);
int __wrap_api_stop(ApiClient *c, const char *instance_id, api_done_cb cb, void *userdata) {
        (void) c;
        return wrap_done(API_CALL_STOP, instance_id, cb, userdata);
}
int __wrap_api_delete(ApiClient *c, const char *instance_id, api_done_cb cb, void *userdata);
int __wrap_api_delete(ApiClient *c, const char *instance_id, api_done_cb cb, void *userdata) {
        (void) c;
        return wrap_done(API_CALL_DELETE, instance_id, cb, userdata);
}

void __wrap_api_client_cancel_queued(ApiClient *c);
void __wrap_api_client_cancel_queued(ApiClient *c) {
        (void) c;
        cancel_queued_calls++;
}

/* The client's "authentication failed, send nothing" state, which the engine reads
 * instead of keeping its own: set by a scripted 401/403, cleared by a reset. */
static const char *auth_failed_message;

void __wrap_api_client_reset_auth(ApiClient *c);
void __wrap_api_client_reset_auth(ApiClient *c) {
        (void) c;
        reset_auth_calls++;
        auth_failed_message = NULL;
}

bool __wrap_api_client_auth_failed(const ApiClient *c, const char **ret_message);
bool __wrap_api_client_auth_failed(const ApiClient *c, const char **ret_message) {
        (void) c;
        if (ret_message)
                *ret_message = auth_failed_message;
        return auth_failed_message != NULL;
}

/* What the real client does before it calls back with an answer. */
static void client_saw(const ApiResult *r) {
        if (r->class == API_CLASS_AUTH && !auth_failed_message)
                auth_failed_message = r->message ? r->message : "authentication failed";
}

/* The state database, failing on demand: the next N commits fail with -EIO. */
static unsigned fail_commits;
int __real_store_commit(Store *s);
int __wrap_store_commit(Store *s);
int __wrap_store_commit(Store *s) {
        if (fail_commits > 0) {
                fail_commits--;
                return -EIO;
        }
        return __real_store_commit(s);
}

/* The index of the first unanswered call of this kind and subject (NULL: any). */
static size_t open_call(ApiCall call, const char *what) {
        for (size_t i = 0; i < n_calls; i++)
                if (!calls[i].answered && calls[i].call == call && (!what || streq(calls[i].what, what)))
                        return i;
        fail_msg("no open %s call for %s", api_call_to_string(call), what ? what : "(any)");
        return 0;
}

static size_t count_calls(ApiCall call, const char *what) {
        size_t n = 0;
        for (size_t i = 0; i < n_calls; i++)
                n += calls[i].call == call && (!what || streq(calls[i].what, what));
        return n;
}

static size_t count_open(ApiCall call) {
        size_t n = 0;
        for (size_t i = 0; i < n_calls; i++)
                n += calls[i].call == call && !calls[i].answered;
        return n;
}

static ApiResult result(ApiCall call, ApiClass class, long http, const char *code) {
        return (ApiResult) {
                .call = call,
                .class = class,
                .error = class == API_CLASS_OK ? 0 : -EIO,
                .http_status = http,
                .error_code = code,
                .error_msg = code ? "scripted" : NULL,
                .message = class == API_CLASS_OK ? NULL : "scripted failure",
                .sent = true,
        };
}

/* A borrowed view: the engine copies what it keeps, and nothing here frees these. */
#define MUT(s) ((char *) (uintptr_t) (s))
static RemoteInstance instance(const char *id, const char *name, const char *status, const char *ws) {
        return (RemoteInstance) { .id = MUT(id), .name = MUT(name), .status = MUT(status),
                                  .flavor = MUT("modelarts.vm.cpu.2u"), .profile_id = MUT("Python3"),
                                  .workspace_id = MUT(ws) };
}

/* Answer the open listing of WORKSPACE with these instances (NULL-terminated). */
static void answer_list(const char *ws, const RemoteInstance *items, size_t n) {
        Call *c = &calls[open_call(API_CALL_LIST, ws)];
        c->answered = true;
        RemoteInstanceList l = {};
        for (size_t i = 0; i < n; i++) {
                RemoteInstance copy;
                assert_int_equal(remote_instance_copy(&items[i], &copy), 0);
                assert_int_equal(remote_instance_list_append(&l, &copy), 0);
        }
        ApiResult r = result(API_CALL_LIST, API_CLASS_OK, 200, NULL);
        c->list_cb(NULL, &r, &l, c->userdata);
        remote_instance_list_clear(&l);
}

static void fail_list(const char *ws, ApiClass class, long http, const char *code) {
        Call *c = &calls[open_call(API_CALL_LIST, ws)];
        c->answered = true;
        ApiResult r = result(API_CALL_LIST, class, http, code);
        client_saw(&r);
        c->list_cb(NULL, &r, NULL, c->userdata);
}

static void answer_instance(ApiCall call, const char *what, const ApiResult *r, const RemoteInstance *inst) {
        Call *c = &calls[open_call(call, what)];
        c->answered = true;
        client_saw(r);
        c->instance_cb(NULL, r, r->class == API_CLASS_OK ? inst : NULL, c->userdata);
}

/* Answer the open start/stop/delete of instance id. */
static void answer_done(ApiCall call, const char *id, ApiClass class, long http, const char *code) {
        Call *c = &calls[open_call(call, id)];
        c->answered = true;
        ApiResult r = result(call, class, http, code);
        client_saw(&r);
        c->done_cb(NULL, &r, c->userdata);
}

/* Answer the open poll of id with this status (NULL: 6309, not found). */
static void poll_answer(const char *id, const char *name, const char *status) {
        ApiResult r = status ? result(API_CALL_GET, API_CLASS_OK, 200, NULL)
                             : result(API_CALL_GET, API_CLASS_NOT_FOUND, 400, "ModelArts.6309");
        RemoteInstance i = instance(id, name, status, "0");
        answer_instance(API_CALL_GET, id, &r, &i);
}

static void create_ok(const char *name, const char *id, const char *status) {
        ApiResult r = result(API_CALL_CREATE, API_CLASS_OK, 201, NULL);
        RemoteInstance i = instance(id, name, status, NULL);
        answer_instance(API_CALL_CREATE, name, &r, &i);
}

static void create_fails(const char *name, ApiClass class, long http, const char *code, int64_t retry_after_ms) {
        ApiResult r = result(API_CALL_CREATE, class, http, code);
        r.retry_after_ms = retry_after_ms;
        answer_instance(API_CALL_CREATE, name, &r, NULL);
}

/* ---------------------------------------------------------------- fixture */

typedef struct Fixture {
        char dir[64];
        sd_event *event;
        Store *store;
        Engine *engine;
        SpecList specs;
        unsigned settled;
} Fixture;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        return remove(path);
}

static void on_settled(Engine *e, void *userdata) {
        (void) e;
        ((Fixture *) userdata)->settled++;
}

static Fixture *fixture_new(bool daemon, bool follow) {
        for (size_t i = 0; i < n_calls; i++)
                free(calls[i].what);
        n_calls = 0;
        cancel_queued_calls = reset_auth_calls = 0;
        auth_failed_message = NULL;

        Fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/test-engine-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        _cleanup_free_ char *err = NULL;
        assert_int_equal(store_open(f->dir, STORE_READ_WRITE, &f->store, &err), 0);
        assert_int_equal(sd_event_new(&f->event), 0);
        EngineOptions o = { .follow = follow, .daemon = daemon };
        /* The API client is never touched: every call the engine makes is wrapped. */
        assert_int_equal(engine_new(f->event, f->store, (ApiClient *) (uintptr_t) 0x1, &o, &f->engine), 0);
        engine_set_settled_callback(f->engine, on_settled, f);
        return f;
}

/* What api_client_cancel_all does at shutdown: every open call's callback runs with
 * -ECANCELED, so the engine frees what it passed as userdata. */
static void cancel_open_calls(void) {
        for (size_t i = 0; i < n_calls; i++) {
                Call *c = &calls[i];
                if (c->answered)
                        continue;
                c->answered = true;
                ApiResult r = result(c->call, API_CLASS_TRANSIENT, 0, NULL);
                r.error = -ECANCELED;
                r.sent = false;
                r.message = "request cancelled";
                if (c->list_cb)
                        c->list_cb(NULL, &r, NULL, c->userdata);
                else if (c->done_cb)
                        c->done_cb(NULL, &r, c->userdata);
                else
                        c->instance_cb(NULL, &r, NULL, c->userdata);
        }
}

/* Shut down as the daemon does: stop the engine, cancel the calls still open, free. */
static void fixture_free(Fixture *f) {
        engine_stop(f->engine);
        cancel_open_calls();
        engine_free(f->engine);
        spec_list_clear(&f->specs);
        store_free(f->store);
        sd_event_unref(f->event);
        nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
        free(f);
}

static NotebookSpec *add_spec(Fixture *f, const char *name, const char *ws) {
        NotebookSpec *s = calloc(1, sizeof(*s));
        assert_non_null(s);
        s->name = strdup(name);
        s->profile_id = strdup("Python3");
        s->flavor = strdup("modelarts.vm.cpu.2u");
        s->storage_type = STORAGE_EVS;
        s->volume_size = 5;
        s->workspace_id = strdup(ws ? ws : "0");
        s->file = strdup("test.yaml");
        assert_int_equal(spec_list_append(&f->specs, s), 0);
        return s;
}

static void set_desired(Fixture *f) {
        assert_int_equal(engine_set_desired(f->engine, (const NotebookSpec *const *) f->specs.items, f->specs.n), 0);
}

static InstanceRecord get_rec(Fixture *f, const char *name) {
        InstanceRecord r = {};
        assert_int_equal(store_get_instance(f->store, name, &r), 0);
        return r;
}

static size_t open_intents(Fixture *f) {
        CreateIntent *in = NULL;
        size_t n = 0;
        assert_int_equal(store_list_open_intents(f->store, &in, &n), 0);
        create_intents_free(in, n);
        return n;
}

/* Run the loop until a call of this kind is open (timers: polls, retry passes). */
static void run_until_call(Fixture *f, ApiCall call) {
        for (int i = 0; i < 10000 && count_open(call) == 0; i++)
                assert_true(sd_event_run(f->event, 30ULL * 1000000ULL) >= 0);
        assert_true(count_open(call) > 0);
}

/* A fixture whose first pass listed nothing and sent the create of NAME (open). */
static Fixture *create_sent(bool daemon, bool follow, const char *name) {
        Fixture *f = fixture_new(daemon, follow);
        add_spec(f, name, NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", NULL, 0);
        assert_int_equal(count_open(API_CALL_CREATE), 1);
        return f;
}

/* Outcomes counted into a registry of the test's (metrics_file:); free it after the
 * fixture. */
static Metrics *attach_metrics(Fixture *f) {
        Metrics *m = NULL;
        assert_int_equal(metrics_new(&m), 0);
        engine_set_metrics(f->engine, m);
        return m;
}

/* ---------------------------------------------------------------- tests */

static void test_create_and_settle(void **state) {
        (void) state;
        Fixture *f = fixture_new(false, false);
        add_spec(f, "nb-1", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        assert_int_equal(count_calls(API_CALL_LIST, "0"), 1);
        assert_int_equal(n_calls, 1);   /* nothing is created before the listing answers */
        answer_list("0", NULL, 0);
        assert_int_equal(count_calls(API_CALL_CREATE, "nb-1"), 1);
        /* the intent is on disk before the create answers */
        assert_int_equal(open_intents(f), 1);
        assert_int_equal(f->settled, 0);
        create_ok("nb-1", "id-1", "RUNNING");
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "nb-1");
        assert_string_equal(r.result, RECORD_RESULT_ACCEPTED);
        assert_string_equal(r.instance_id, "id-1");
        assert_string_equal(r.workspace_id, "0");
        assert_int_equal(open_intents(f), 0);
        assert_true(f->settled > 0);
        EngineCounts c;
        engine_get_counts(f->engine, &c);
        assert_int_equal(c.running, 1);
        assert_int_equal(c.pending, 0);
        fixture_free(f);
}

static void test_follow_to_running(void **state) {
        (void) state;
        Fixture *f = create_sent(false, true, "nb-1");
        create_ok("nb-1", "id-1", "CREATING");
        assert_int_equal(f->settled, 0);   /* following it: not settled */
        run_until_call(f, API_CALL_GET);
        ApiResult ok = result(API_CALL_GET, API_CLASS_OK, 200, NULL);
        RemoteInstance i = instance("id-1", "nb-1", "RUNNING", "0");
        answer_instance(API_CALL_GET, "id-1", &ok, &i);
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "nb-1");
        assert_string_equal(r.status, "RUNNING");
        assert_true(f->settled > 0);
        fixture_free(f);
}

/* 6301: list again; the listing shows it: adopted, no second create. */
static void test_exists_then_adopted(void **state) {
        (void) state;
        Fixture *f = create_sent(false, false, "nb-1");
        Metrics *m = attach_metrics(f);
        create_fails("nb-1", API_CLASS_ALREADY_EXISTS, 400, "ModelArts.6301", 0);
        assert_int_equal(count_calls(API_CALL_LIST, "0"), 2);   /* listed again at once */
        RemoteInstance i = instance("id-9", "nb-1", "RUNNING", "0");
        answer_list("0", &i, 1);
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "nb-1");
        assert_string_equal(r.result, RECORD_RESULT_ADOPTED);
        assert_string_equal(r.instance_id, "id-9");
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 1);
        assert_int_equal(open_intents(f), 0);
        assert_int_equal(metrics_get(m, METRICS_CREATES, METRICS_LABELS("exists", "ModelArts.6301", NULL)), 1);
        assert_int_equal(metrics_get(m, METRICS_ADOPTIONS, NULL), 1);
        assert_true(metrics_get(m, METRICS_LAST_SUCCESSFUL_PASS, NULL) > 0);
        fixture_free(f);
        metrics_free(m);
}

/* 6301 and the listing does not show the name: a conflict, not sent again. */
static void test_exists_invisible_is_conflict(void **state) {
        (void) state;
        Fixture *f = create_sent(false, false, "nb-1");
        create_fails("nb-1", API_CLASS_ALREADY_EXISTS, 400, "ModelArts.6301", 0);
        answer_list("0", NULL, 0);
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "nb-1");
        assert_string_equal(r.result, RECORD_RESULT_CONFLICT);
        assert_null(r.instance_id);
        EngineCounts c;
        engine_get_counts(f->engine, &c);
        assert_int_equal(c.rejected, 1);
        /* later passes do not send it again */
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", NULL, 0);
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 1);
        assert_true(f->settled > 0);
        fixture_free(f);
}

/* A policy denial refuses that create alone: nothing pauses, others are created. */
static void test_forbidden_create_alone(void **state) {
        (void) state;
        Fixture *f = fixture_new(false, false);
        Metrics *m = attach_metrics(f);
        add_spec(f, "denied", NULL);
        add_spec(f, "fine", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", NULL, 0);
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 2);
        create_fails("denied", API_CLASS_FORBIDDEN, 403, "ModelArts.0112", 0);
        assert_false(engine_auth_failed(f->engine, NULL));
        assert_null(engine_pause_reason(f->engine, NULL));
        create_ok("fine", "id-2", "RUNNING");
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "denied");
        assert_string_equal(r.result, RECORD_RESULT_REJECTED);
        assert_string_equal(r.error_code, "ModelArts.0112");
        assert_int_equal(metrics_get(m, METRICS_CREATES, METRICS_LABELS("rejected", "ModelArts.0112", NULL)), 1);
        assert_int_equal(metrics_get(m, METRICS_REJECTIONS, METRICS_LABELS("create", "ModelArts.0112", NULL)), 1);
        assert_int_equal(metrics_get(m, METRICS_CREATES, METRICS_LABELS("accepted", NULL, NULL)), 1);
        fixture_free(f);
        metrics_free(m);
}

/* An auth failure met by a create (not a listing) still arms the daemon's retry timer. */
static void test_auth_on_create_arms_retry(void **state) {
        (void) state;
        Fixture *f = create_sent(true, false, "nb-1");
        create_fails("nb-1", API_CLASS_AUTH, 401, "APIG.0301", 0);
        assert_true(engine_auth_failed(f->engine, NULL));
        int64_t retry = 0;
        assert_string_equal(engine_pause_reason(f->engine, &retry), "authentication failed");
        assert_true(retry > now_monotonic_ms() + CONFIG_DEFAULT_AUTH_RETRY_INTERVAL_MS / 2);
        /* a pass asked for meanwhile sends nothing */
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        assert_int_equal(count_calls(API_CALL_LIST, NULL), 1);
        engine_reset_auth(f->engine);
        assert_int_equal(reset_auth_calls, 1);
        assert_null(engine_pause_reason(f->engine, NULL));
        fixture_free(f);
}

/* 6326 pauses every create, not only the one that found out. */
static void test_frozen_pauses_creates(void **state) {
        (void) state;
        Fixture *f = create_sent(true, false, "nb-1");
        create_fails("nb-1", API_CLASS_ACCOUNT_FROZEN, 400, "ModelArts.6326", 0);
        int64_t retry = 0;
        assert_string_equal(engine_pause_reason(f->engine, &retry), "account frozen (ModelArts.6326)");
        assert_true(retry > now_monotonic_ms() + ENGINE_FROZEN_RETRY_MS / 2);
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "nb-1");
        assert_string_equal(r.result, RECORD_RESULT_RETRYING);
        assert_int_equal(open_intents(f), 0);
        /* a new manifest during the freeze is listed but not created */
        add_spec(f, "nb-2", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", NULL, 0);
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 1);
        /* ... and counted as waiting, not as being created */
        assert_true(engine_account_frozen(f->engine));
        assert_int_equal(engine_standing(f->engine, "nb-2"), STANDING_WAITING);
        EngineCounts c;
        engine_get_counts(f->engine, &c);
        assert_int_equal(c.waiting, 1);
        assert_int_equal(c.pending, 0);
        fixture_free(f);
}

/* "Wait a minute" (6355) was answered: nothing was made, no listing needed, and the
 * retry waits what the cloud asked. */
static void test_named_wait_resolves_intent(void **state) {
        (void) state;
        Fixture *f = create_sent(false, false, "nb-1");
        int64_t before = now_realtime_ms();
        create_fails("nb-1", API_CLASS_TRANSIENT, 400, "ModelArts.6355", API_RETRY_6355_MS);
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "nb-1");
        assert_string_equal(r.result, RECORD_RESULT_RETRYING);
        assert_true(r.next_attempt_at_ms >= before + API_RETRY_6355_MS);
        assert_int_equal(open_intents(f), 0);
        fixture_free(f);
}

/* A create whose answer was lost keeps its intent; the next listing settles it. */
static void test_unknown_outcome_listed_then_adopted(void **state) {
        (void) state;
        Fixture *f = create_sent(true, false, "nb-1");
        create_fails("nb-1", API_CLASS_UNKNOWN_OUTCOME, 0, NULL, 0);
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "nb-1");
        assert_string_equal(r.result, RECORD_RESULT_UNKNOWN);
        assert_int_equal(open_intents(f), 1);
        run_until_call(f, API_CALL_LIST);   /* the retry pass */
        RemoteInstance i = instance("id-5", "nb-1", "RUNNING", "0");
        answer_list("0", &i, 1);
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 1);
        _cleanup_(instance_record_done) InstanceRecord r2 = get_rec(f, "nb-1");
        assert_string_equal(r2.result, RECORD_RESULT_ADOPTED);
        assert_int_equal(open_intents(f), 0);
        fixture_free(f);
}

/* What a process killed between saving a create's record and resolving its intent
 * leaves: the record has the answer (an instance id; a rejection), the intent is still
 * open. The next listing settles it (kept open, every pass would list first forever,
 * and `status` would show it), and nothing is sent. */
static void test_leftover_intent_settled_by_listing(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, false);
        NotebookSpec *made = add_spec(f, "made", NULL);
        NotebookSpec *refused = add_spec(f, "refused", NULL);
        set_desired(f);
        char hash[SPEC_HASH_HEX_LEN + 1];
        InstanceRecord r1 = { .name = (char *) "made", .instance_id = (char *) "id-1", .status = (char *) "RUNNING",
                              .workspace_id = (char *) "0", .result = (char *) RECORD_RESULT_ACCEPTED,
                              .spec_hash = hash };
        spec_hash(made, hash);
        assert_int_equal(store_put_instance(f->store, &r1), 0);
        char hash2[SPEC_HASH_HEX_LEN + 1];
        spec_hash(refused, hash2);
        InstanceRecord r2 = { .name = (char *) "refused", .result = (char *) RECORD_RESULT_REJECTED,
                              .spec_hash = hash2, .error_code = (char *) "ModelArts.6323" };
        assert_int_equal(store_put_instance(f->store, &r2), 0);
        int64_t id;
        assert_int_equal(store_add_intent(f->store, "made", hash, now_realtime_ms(), &id), 0);
        assert_int_equal(store_add_intent(f->store, "refused", hash2, now_realtime_ms(), &id), 0);
        assert_int_equal(open_intents(f), 2);

        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        RemoteInstance i = instance("id-1", "made", "RUNNING", "0");
        answer_list("0", &i, 1);
        assert_int_equal(open_intents(f), 0);
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 0);
        _cleanup_(instance_record_done) InstanceRecord a = get_rec(f, "made");
        assert_string_equal(a.instance_id, "id-1");
        _cleanup_(instance_record_done) InstanceRecord b = get_rec(f, "refused");
        assert_string_equal(b.result, RECORD_RESULT_REJECTED);
        fixture_free(f);
}

/* Without a listing of its workspace the same intent stays open: only a listing can
 * say what the create made. */
static void test_leftover_intent_kept_without_listing(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, false);
        NotebookSpec *made = add_spec(f, "made", NULL);
        set_desired(f);
        char hash[SPEC_HASH_HEX_LEN + 1];
        spec_hash(made, hash);
        InstanceRecord r1 = { .name = (char *) "made", .instance_id = (char *) "id-1", .status = (char *) "RUNNING",
                              .workspace_id = (char *) "0", .result = (char *) RECORD_RESULT_ACCEPTED,
                              .spec_hash = hash };
        assert_int_equal(store_put_instance(f->store, &r1), 0);
        int64_t id;
        assert_int_equal(store_add_intent(f->store, "made", hash, now_realtime_ms(), &id), 0);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        fail_list("0", API_CLASS_TRANSIENT, 503, NULL);
        assert_int_equal(open_intents(f), 1);
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 0);
        fixture_free(f);
}

/* Every workspace that matters is listed; a failed one holds only its names. */
static void test_workspaces_listed_and_isolated(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, false);
        add_spec(f, "in-a", "ws-a");
        add_spec(f, "in-zero", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        assert_int_equal(count_calls(API_CALL_LIST, "0"), 1);
        assert_int_equal(count_calls(API_CALL_LIST, "ws-a"), 1);
        answer_list("0", NULL, 0);
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 0);   /* plans once all are in */
        fail_list("ws-a", API_CLASS_TRANSIENT, 500, "ModelArts.0010");
        assert_int_equal(count_calls(API_CALL_CREATE, "in-zero"), 1);
        assert_int_equal(count_calls(API_CALL_CREATE, "in-a"), 0);
        create_ok("in-zero", "id-0", "RUNNING");
        /* the retry pass lists only the workspace that failed (part 6); now it answers */
        run_until_call(f, API_CALL_LIST);
        assert_int_equal(count_open(API_CALL_LIST), 1);
        assert_int_equal(count_calls(API_CALL_LIST, "0"), 1);
        answer_list("ws-a", NULL, 0);
        assert_int_equal(count_calls(API_CALL_CREATE, "in-a"), 1);
        create_ok("in-a", "id-a", "RUNNING");
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "in-a");
        assert_string_equal(r.workspace_id, "ws-a");
        /* the record's workspace is listed even when no manifest names it any more */
        spec_list_clear(&f->specs);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        assert_int_equal(count_open(API_CALL_LIST), 2);
        fixture_free(f);
}

/* Part 6: an edit is planned from what is known, with no listing. A new name is created
 * at once, an unchanged one left alone, a removed one reported gone; a resync (a full
 * pass) lists every workspace again. */
static void test_edit_lists_nothing(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, false);
        add_spec(f, "old", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", NULL, 0);
        create_ok("old", "id-1", "RUNNING");
        assert_int_equal(count_calls(API_CALL_LIST, NULL), 1);

        add_spec(f, "new", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_INCREMENTAL);
        assert_int_equal(count_calls(API_CALL_LIST, NULL), 1);
        assert_int_equal(count_calls(API_CALL_CREATE, "new"), 1);
        /* made after the listing, which does not show it: its record speaks for it */
        assert_int_equal(count_calls(API_CALL_CREATE, "old"), 1);
        create_ok("new", "id-2", "RUNNING");

        spec_list_clear(&f->specs);
        add_spec(f, "new", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_INCREMENTAL);
        assert_int_equal(count_calls(API_CALL_LIST, NULL), 1);
        EngineCounts c;
        engine_get_counts(f->engine, &c);
        assert_int_equal(c.gone, 1);
        assert_int_equal(c.running, 1);

        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        assert_int_equal(count_open(API_CALL_LIST), 1);
        answer_list("0", (RemoteInstance[]) { instance("id-1", "old", "RUNNING", "0"),
                                             instance("id-2", "new", "RUNNING", "0") }, 2);
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 2);
        assert_int_equal(count_calls(API_CALL_LIST, NULL), 2);
        fixture_free(f);
}

/* An incremental pass lists only what it has no listing of: a workspace new to the
 * tree. A 6301 is settled by one listing of the name's workspace, not of all. */
static void test_incremental_lists_only_what_it_lacks(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, false);
        add_spec(f, "a", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", NULL, 0);
        create_ok("a", "id-a", "RUNNING");

        add_spec(f, "b", "ws-b");
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_INCREMENTAL);
        assert_int_equal(count_open(API_CALL_LIST), 1);
        assert_int_equal(count_calls(API_CALL_LIST, "0"), 1);
        answer_list("ws-b", NULL, 0);
        create_ok("b", "id-b", "RUNNING");

        add_spec(f, "c", "ws-b");
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_INCREMENTAL);
        assert_int_equal(count_open(API_CALL_LIST), 0);
        create_fails("c", API_CLASS_ALREADY_EXISTS, 400, "ModelArts.6301", 0);
        assert_int_equal(count_open(API_CALL_LIST), 1);
        assert_int_equal(count_calls(API_CALL_LIST, "0"), 1);
        answer_list("ws-b", (RemoteInstance[]) { instance("id-b", "b", "RUNNING", "ws-b"),
                                                instance("id-c", "c", "RUNNING", "ws-b") }, 2);
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "c");
        assert_string_equal(r.result, RECORD_RESULT_ADOPTED);
        assert_string_equal(r.instance_id, "id-c");
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 3);
        fixture_free(f);
}

/* The invariant behind both: a create that finished after a listing was taken is never
 * judged by that listing, however late the edit that replans it comes. */
static void test_edit_after_listing_older_than_create(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, false);
        add_spec(f, "nb-1", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", NULL, 0);                 /* create sent */
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        create_ok("nb-1", "id-1", "RUNNING");      /* while the resync's listing is out */
        answer_list("0", NULL, 0);                 /* taken before the instance existed */
        spec_list_clear(&f->specs);
        NotebookSpec *s = add_spec(f, "nb-1", NULL);
        s->description = strdup("edited");
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_INCREMENTAL);
        assert_int_equal(count_calls(API_CALL_LIST, NULL), 2);
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 1);
        EngineCounts c;
        engine_get_counts(f->engine, &c);
        assert_int_equal(c.drift, 1);   /* the edit is reported, never applied by re-creating */
        fixture_free(f);
}

/* Every intent is durable before the first POST, but at most ENGINE_CREATE_WINDOW creates
 * are handed to the client; each answer lets the next one go. A tree change keeps a
 * queued create whose manifest is unchanged and lets a changed one go, unsent. */
static void test_create_window(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, false);
        char name[32];
        for (int i = 0; i < ENGINE_CREATE_WINDOW + 10; i++) {
                snprintf(name, sizeof name, "nb-%04d", i);
                add_spec(f, name, NULL);
        }
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", NULL, 0);
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), ENGINE_CREATE_WINDOW);
        assert_int_equal(open_intents(f), ENGINE_CREATE_WINDOW + 10);
        EngineCounts c;
        engine_get_counts(f->engine, &c);
        assert_int_equal(c.pending, ENGINE_CREATE_WINDOW + 10);

        create_ok("nb-0000", "id-0", "RUNNING");
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), ENGINE_CREATE_WINDOW + 1);
        assert_int_equal(count_calls(API_CALL_CREATE, "nb-0512"), 1);

        /* nb-0513 .. nb-0521 wait; nb-0520's manifest changes */
        NotebookSpec *changed = f->specs.items[520];
        assert_string_equal(changed->name, "nb-0520");
        free(changed->description);
        changed->description = strdup("edited");
        set_desired(f);
        for (int i = 1; i <= 9; i++) {
                snprintf(name, sizeof name, "nb-%04d", i);
                create_ok(name, name, "RUNNING");
        }
        assert_int_equal(count_calls(API_CALL_CREATE, "nb-0521"), 1);
        assert_int_equal(count_calls(API_CALL_CREATE, "nb-0520"), 0);
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), ENGINE_CREATE_WINDOW + 9);
        /* its intent is settled unsent; the others' are open until answered */
        assert_int_equal(open_intents(f), ENGINE_CREATE_WINDOW + 10 - 10 - 1);
        engine_get_counts(f->engine, &c);
        assert_int_equal(c.waiting, 1);
        fixture_free(f);
}

/* An instance of the same name in another workspace is not adopted. */
static void test_no_adoption_across_workspaces(void **state) {
        (void) state;
        Fixture *f = fixture_new(false, false);
        add_spec(f, "nb-1", "ws-a");
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", (RemoteInstance[]) { instance("id-x", "nb-1", "RUNNING", "0") }, 1);
        answer_list("ws-a", NULL, 0);
        assert_int_equal(count_calls(API_CALL_CREATE, "nb-1"), 1);
        fixture_free(f);
}

/* A create that finishes while a listing is out is not judged by that listing (it was
 * taken before the instance existed): no second create. */
static void test_listing_older_than_create_does_not_judge(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, false);
        add_spec(f, "nb-1", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", NULL, 0);                 /* pass 1: create sent */
        engine_request_pass(f->engine, ENGINE_PASS_FULL);            /* pass 2: its listing goes out */
        assert_int_equal(count_open(API_CALL_LIST), 1);
        create_ok("nb-1", "id-1", "RUNNING");      /* the create finishes meanwhile */
        answer_list("0", NULL, 0);                 /* a listing from before the instance */
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 1);
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "nb-1");
        assert_string_equal(r.result, RECORD_RESULT_ACCEPTED);
        fixture_free(f);
}

/* A 429 on the listing: the retry pass comes no sooner than the hold. */
static void test_throttled_listing_waits(void **state) {
        (void) state;
        Fixture *f = fixture_new(false, false);
        add_spec(f, "nb-1", NULL);
        set_desired(f);
        engine_set_deadline(f->engine, now_monotonic_ms() + 60 * 1000);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        Call *c = &calls[open_call(API_CALL_LIST, "0")];
        c->answered = true;
        ApiResult r = result(API_CALL_LIST, API_CLASS_THROTTLED, 429, "APIG.0308");
        r.retry_after_ms = 300;
        int64_t t0 = now_monotonic_ms();
        c->list_cb(NULL, &r, NULL, c->userdata);
        run_until_call(f, API_CALL_LIST);
        assert_true(now_monotonic_ms() - t0 >= 300);
        fixture_free(f);
}

/* Intents that cannot be made durable: no create leaves, STATUS= says why, and the
 * next pass tries again and sends it. */
static void test_state_write_failure_pauses(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, false);
        add_spec(f, "nb-1", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        fail_commits = 1;
        answer_list("0", NULL, 0);
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 0);
        assert_true(engine_state_error(f->engine));
        int64_t retry = 0;
        assert_string_equal(engine_pause_reason(f->engine, &retry), "the state database cannot be written");
        assert_true(retry > now_monotonic_ms());
        assert_int_equal(engine_standing(f->engine, "nb-1"), STANDING_WAITING);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", NULL, 0);
        assert_int_equal(count_calls(API_CALL_CREATE, "nb-1"), 1);
        assert_int_equal(engine_standing(f->engine, "nb-1"), STANDING_PENDING);
        assert_null(engine_pause_reason(f->engine, NULL));
        fixture_free(f);
}

/* No listing works (the API unreachable, a 5xx): nothing can be planned, and STATUS=
 * says so, why, and when the next try is, until a listing works again. A listing that
 * fails while another workspace's works is no pause. */
static void test_failed_listing_pauses(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, false);
        add_spec(f, "nb-1", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        fail_list("0", API_CLASS_TRANSIENT, 0, NULL);
        int64_t retry = 0;
        const char *why = engine_pause_reason(f->engine, &retry);
        assert_non_null(why);
        assert_string_equal(why, "listing failed (scripted failure)");
        assert_true(retry > now_monotonic_ms());
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 0);
        /* the retry pass lists again; this time it works */
        run_until_call(f, API_CALL_LIST);
        answer_list("0", NULL, 0);
        assert_null(engine_pause_reason(f->engine, NULL));
        assert_int_equal(count_calls(API_CALL_CREATE, "nb-1"), 1);
        fixture_free(f);

        f = fixture_new(true, false);
        add_spec(f, "in-a", "ws-a");
        add_spec(f, "in-zero", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", NULL, 0);
        fail_list("ws-a", API_CLASS_TRANSIENT, 500, "ModelArts.0010");
        assert_null(engine_pause_reason(f->engine, NULL));
        fixture_free(f);
}

static void assert_tally(Fixture *f, size_t waiting, size_t pending, size_t running, size_t rejected,
                         size_t retrying, size_t failed) {
        EngineCounts c;
        engine_get_counts(f->engine, &c);
        assert_int_equal(c.waiting, waiting);
        assert_int_equal(c.pending, pending);
        assert_int_equal(c.running, running);
        assert_int_equal(c.rejected, rejected);
        assert_int_equal(c.retrying, retrying);
        assert_int_equal(c.failed, failed);
        assert_int_equal(c.desired, waiting + pending + running + rejected + retrying + failed);
}

/* One standing per desired name, moved as answers arrive, not only by the next pass:
 * the tally STATUS=, PASS_FINISHED and `once` all read. */
static void test_standings_move_with_answers(void **state) {
        (void) state;
        Fixture *f = fixture_new(false, true);
        add_spec(f, "ok", NULL);
        add_spec(f, "later", NULL);
        add_spec(f, "refused", NULL);
        add_spec(f, "exists", NULL);
        add_spec(f, "follow", NULL);
        add_spec(f, "broken", NULL);
        set_desired(f);
        assert_tally(f, 6, 0, 0, 0, 0, 0);   /* nothing planned yet */
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        assert_tally(f, 6, 0, 0, 0, 0, 0);   /* listing out */
        answer_list("0", NULL, 0);
        assert_tally(f, 0, 6, 0, 0, 0, 0);   /* every create on the wire */
        create_ok("ok", "id-1", "RUNNING");
        create_fails("later", API_CLASS_TRANSIENT, 400, "ModelArts.6355", API_RETRY_6355_MS);
        create_fails("refused", API_CLASS_PERMANENT, 400, "ModelArts.6323", 0);
        create_ok("follow", "id-5", "CREATING");
        create_ok("broken", "id-6", "CREATING");
        assert_tally(f, 0, 3, 1, 1, 1, 0);
        assert_int_equal(engine_standing(f->engine, "ok"), STANDING_RUNNING);
        assert_int_equal(engine_standing(f->engine, "later"), STANDING_RETRYING);
        assert_int_equal(engine_standing(f->engine, "refused"), STANDING_REJECTED);
        /* 6301: no instance known until the listing that follows shows one */
        create_fails("exists", API_CLASS_ALREADY_EXISTS, 400, "ModelArts.6301", 0);
        assert_int_equal(engine_standing(f->engine, "exists"), STANDING_WAITING);
        RemoteInstance listed[] = {
                instance("id-1", "ok", "RUNNING", "0"),
                instance("id-4", "exists", "STARTING", "0"),
                instance("id-5", "follow", "CREATING", "0"),
                instance("id-6", "broken", "CREATING", "0"),
        };
        answer_list("0", listed, ELEMENTSOF(listed));
        /* adopted on its way; the followed ones keep the standing their polls give */
        assert_int_equal(engine_standing(f->engine, "exists"), STANDING_PENDING);
        assert_tally(f, 0, 3, 1, 1, 1, 0);
        ApiResult got = result(API_CALL_GET, API_CLASS_OK, 200, NULL);
        RemoteInstance up = instance("id-5", "follow", "RUNNING", "0"), down = instance("id-6", "broken", "CREATE_FAILED", "0");
        run_until_call(f, API_CALL_GET);
        while (count_open(API_CALL_GET) < 3)
                assert_true(sd_event_run(f->event, 30ULL * 1000000ULL) >= 0);
        answer_instance(API_CALL_GET, "id-5", &got, &up);
        answer_instance(API_CALL_GET, "id-6", &got, &down);
        assert_tally(f, 0, 1, 2, 1, 1, 1);
        assert_int_equal(engine_standing(f->engine, "broken"), STANDING_FAILED);
        /* a name leaves the desired set: out of the tally; a new one waits */
        spec_list_clear(&f->specs);
        add_spec(f, "ok", NULL);
        add_spec(f, "new", NULL);
        set_desired(f);
        assert_tally(f, 1, 0, 1, 0, 0, 0);
        fixture_free(f);
}

/* Stopping sends nothing new and cancels what is queued. */
static void test_stop(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, false);
        add_spec(f, "nb-1", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        engine_stop(f->engine);
        assert_int_equal(cancel_queued_calls, 1);
        answer_list("0", NULL, 0);
        assert_int_equal(count_calls(API_CALL_CREATE, NULL), 0);
        assert_true(engine_settled(f->engine));
        fixture_free(f);
}


/* ---------------------------------------------------------------- the lifecycle */

/* state: stopped on a running instance: the stop, then following it to STOPPED; a flip
 * to running: the start. A state answer (6307: already stopped) is success. */
static void test_state_stop_then_start(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, true);
        NotebookSpec *spec = add_spec(f, "nb", NULL);
        spec->state = DESIRED_STATE_STOPPED;
        set_desired(f);
        RemoteInstance listed[] = { instance("id-1", "nb", "RUNNING", "0") };
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", listed, 1);   /* adopted (RUNNING): then the stop */
        run_until_call(f, API_CALL_STOP);
        assert_int_equal(engine_standing(f->engine, "nb"), STANDING_PENDING);
        answer_done(API_CALL_STOP, "id-1", API_CLASS_OK, 200, NULL);
        run_until_call(f, API_CALL_GET);
        poll_answer("id-1", "nb", "STOPPING");
        run_until_call(f, API_CALL_GET);
        poll_answer("id-1", "nb", "STOPPED");
        assert_int_equal(count_open(API_CALL_GET), 0);
        assert_int_equal(count_calls(API_CALL_START, NULL), 0);
        assert_int_equal(engine_standing(f->engine, "nb"), STANDING_RUNNING);
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "nb");
        assert_string_equal(r.status, "STOPPED");
        assert_false(r.created_by_us);   /* adopted */

        /* the manifest now says running: an edit's pass (no listing) starts it */
        f->specs.items[0]->state = DESIRED_STATE_RUNNING;
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_INCREMENTAL);
        assert_int_equal(count_open(API_CALL_LIST), 0);
        assert_int_equal(count_open(API_CALL_START), 1);
        answer_done(API_CALL_START, "id-1", API_CLASS_OK, 400, "ModelArts.6306");   /* starting: follow */
        run_until_call(f, API_CALL_GET);
        poll_answer("id-1", "nb", "RUNNING");
        assert_int_equal(count_calls(API_CALL_STOP, NULL), 1);
        assert_int_equal(count_open(API_CALL_GET), 0);

        /* no opinion: whatever it does, nothing is sent */
        f->specs.items[0]->state = DESIRED_STATE_ANY;
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        RemoteInstance stopped[] = { instance("id-1", "nb", "STOPPED", "0") };
        answer_list("0", stopped, 1);
        assert_int_equal(count_calls(API_CALL_START, NULL), 1);
        assert_int_equal(count_calls(API_CALL_STOP, NULL), 1);
        assert_int_equal(count_open(API_CALL_GET), 0);
        fixture_free(f);
}

/* A new instance of a "stopped" manifest is stopped once it first runs; a tug of war
 * (it keeps coming back RUNNING) ends after ENGINE_STATE_ACTION_TRIES calls. */
static void test_new_instance_stopped_once_running(void **state) {
        (void) state;
        Fixture *f = create_sent(true, true, "nb");
        f->specs.items[0]->state = DESIRED_STATE_STOPPED;
        set_desired(f);
        create_ok("nb", "id-1", "CREATING");
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "nb");
        assert_true(r.created_by_us);
        run_until_call(f, API_CALL_GET);
        poll_answer("id-1", "nb", "RUNNING");
        for (unsigned i = 0; i < ENGINE_STATE_ACTION_TRIES; i++) {
                assert_int_equal(count_open(API_CALL_STOP), 1);
                answer_done(API_CALL_STOP, "id-1", API_CLASS_OK, 200, NULL);
                run_until_call(f, API_CALL_GET);
                poll_answer("id-1", "nb", "RUNNING");   /* someone starts it again */
        }
        assert_int_equal(count_calls(API_CALL_STOP, NULL), ENGINE_STATE_ACTION_TRIES);
        assert_int_equal(count_open(API_CALL_STOP), 0);
        assert_int_equal(count_open(API_CALL_GET), 0);
        fixture_free(f);
}

/* A refused stop is reported once and not repeated by the same op; a transient one is
 * retried by a later pass. */
static void test_state_action_refused(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, true);
        Metrics *m = attach_metrics(f);
        add_spec(f, "nb", NULL)->state = DESIRED_STATE_STOPPED;
        set_desired(f);
        InstanceRecord rec = { .name = MUT("nb"), .instance_id = MUT("id-1"), .status = MUT("RUNNING"),
                               .result = MUT(RECORD_RESULT_ACCEPTED), .workspace_id = MUT("0"), .created_by_us = true };
        char hash[SPEC_HASH_HEX_LEN + 1];
        spec_hash(f->specs.items[0], hash);
        rec.spec_hash = hash;
        assert_int_equal(store_put_instance(f->store, &rec), 0);
        RemoteInstance listed[] = { instance("id-1", "nb", "RUNNING", "0") };
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", listed, 1);
        answer_done(API_CALL_STOP, "id-1", API_CLASS_FORBIDDEN, 403, "ModelArts.0112");
        assert_true(hashmap_contains(f->engine->reported, "nb"));
        assert_int_equal(count_open(API_CALL_GET), 0);
        /* a transient refusal: a full pass comes back for it */
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", listed, 1);
        answer_done(API_CALL_STOP, "id-1", API_CLASS_TRANSIENT, 400, "ModelArts.6357");
        run_until_call(f, API_CALL_LIST);
        answer_list("0", listed, 1);
        assert_int_equal(count_open(API_CALL_STOP), 1);
        /* the policy's refusal counted; the transient one is not a rejection */
        assert_int_equal(metrics_get(m, METRICS_REJECTIONS, METRICS_LABELS("stop", "ModelArts.0112", NULL)), 1);
        assert_int_equal(metrics_get(m, METRICS_REJECTIONS, METRICS_LABELS("stop", "ModelArts.6357", NULL)), 0);
        fixture_free(f);
        metrics_free(m);
}

/* A record of ours, gone from the tree, absent since mark_ms. */
static void put_gone(Fixture *f, const char *name, const char *id, const char *status, bool ours, int64_t mark_ms) {
        InstanceRecord r = { .name = MUT(name), .instance_id = MUT(id), .workspace_id = MUT("0"),
                             .status = MUT(status), .result = MUT(RECORD_RESULT_ACCEPTED), .created_by_us = ours };
        assert_int_equal(store_put_instance(f->store, &r), 0);
        StorePruneItem it = { .name = name, .verdict = STORE_PRUNE_KEEP };
        assert_int_equal(store_prune(f->store, &it, 1, mark_ms, INT64_MAX / 4, NULL), 0);
}

static const PrunePolicy engine_prune = { .enabled = true, .grace_ms = 600000, .max_per_pass = 5 };

/* prune: a running instance of ours past the grace is stopped (6304 would refuse the
 * delete), followed to STOPPED, deleted, followed until gone, and recorded deleted;
 * an adopted one and a young absence are left alone. */
static void test_prune_stop_delete_follow(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, true);
        Metrics *m = attach_metrics(f);
        f->engine->options.prune = engine_prune;
        add_spec(f, "keep", NULL);
        set_desired(f);
        int64_t hour_ago = now_realtime_ms() - 3600 * 1000;
        put_gone(f, "old", "id-o", "RUNNING", true, hour_ago);
        put_gone(f, "adopted", "id-a", "RUNNING", false, hour_ago);
        put_gone(f, "young", "id-y", "RUNNING", true, now_realtime_ms() - 1000);
        RemoteInstance listed[] = { instance("id-k", "keep", "RUNNING", "0"), instance("id-o", "old", "RUNNING", "0"),
                                    instance("id-a", "adopted", "RUNNING", "0"), instance("id-y", "young", "RUNNING", "0") };
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", listed, ELEMENTSOF(listed));
        assert_int_equal(count_calls(API_CALL_STOP, NULL), 1);
        assert_int_equal(count_open(API_CALL_STOP), 1);
        assert_int_equal(count_calls(API_CALL_DELETE, NULL), 0);
        /* the grace of "young" ends in 10 minutes: a full pass is armed for then */
        assert_true(f->engine->prune_timer_at_mono_ms > now_monotonic_ms() + 590000);
        answer_done(API_CALL_STOP, "id-o", API_CLASS_OK, 200, NULL);
        run_until_call(f, API_CALL_GET);
        poll_answer("id-o", "old", "STOPPED");
        assert_int_equal(count_open(API_CALL_DELETE), 1);
        answer_done(API_CALL_DELETE, "id-o", API_CLASS_OK, 200, NULL);
        run_until_call(f, API_CALL_GET);
        poll_answer("id-o", "old", "STOPPED");   /* not gone yet: asked again */
        run_until_call(f, API_CALL_GET);
        poll_answer("id-o", "old", NULL);        /* 6309: gone */
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "old");
        assert_string_equal(r.result, RECORD_RESULT_DELETED);
        assert_string_equal(r.status, "DELETED");
        assert_int_equal(count_calls(API_CALL_DELETE, NULL), 1);
        assert_int_equal(count_calls(API_CALL_DELETE, "id-a"), 0);
        assert_int_equal(count_calls(API_CALL_DELETE, "id-y"), 0);
        assert_int_equal(count_calls(API_CALL_STOP, NULL), 1);

        /* the next full pass: nothing more to delete (the listing no longer has it) */
        RemoteInstance after[] = { listed[0], listed[2], listed[3] };
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", after, ELEMENTSOF(after));
        assert_int_equal(count_calls(API_CALL_DELETE, NULL), 1);
        assert_int_equal(count_open(API_CALL_STOP), 0);
        assert_int_equal(metrics_get(m, METRICS_DELETIONS, METRICS_LABELS("deleted", NULL, NULL)), 1);
        fixture_free(f);
        metrics_free(m);
}

/* A name back in the tree loses its absence mark in that very pass, even when the pass
 * starts work for it (here a stop): else its next absence would be judged from the old
 * mark and deleted without any grace. */
static void test_mark_cleared_while_busy(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, true);
        f->engine->options.prune = engine_prune;
        add_spec(f, "nb", NULL)->state = DESIRED_STATE_STOPPED;
        set_desired(f);
        put_gone(f, "nb", "id-1", "RUNNING", true, now_realtime_ms() - 3600 * 1000);
        RemoteInstance listed[] = { instance("id-1", "nb", "RUNNING", "0") };
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", listed, 1);
        assert_int_equal(count_open(API_CALL_STOP), 1);   /* busy */
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "nb");
        assert_int_equal(r.undesired_since_ms, 0);
        fixture_free(f);
}

/* A stopped instance is deleted at once; a 6304 (it was started meanwhile) makes it
 * stop first. */
static void test_prune_6304_stops_first(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, true);
        f->engine->options.prune = engine_prune;
        add_spec(f, "keep", NULL);
        set_desired(f);
        put_gone(f, "old", "id-o", "STOPPED", true, now_realtime_ms() - 3600 * 1000);
        RemoteInstance listed[] = { instance("id-k", "keep", "RUNNING", "0"), instance("id-o", "old", "STOPPED", "0") };
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", listed, ELEMENTSOF(listed));
        assert_int_equal(count_calls(API_CALL_STOP, NULL), 0);
        answer_done(API_CALL_DELETE, "id-o", API_CLASS_PERMANENT, 400, "ModelArts.6304");
        assert_int_equal(count_open(API_CALL_STOP), 1);
        answer_done(API_CALL_STOP, "id-o", API_CLASS_OK, 400, "ModelArts.6308");   /* stopping */
        run_until_call(f, API_CALL_GET);
        poll_answer("id-o", "old", "STOPPED");
        answer_done(API_CALL_DELETE, "id-o", API_CLASS_NOT_FOUND, 400, "ModelArts.6309");
        _cleanup_(instance_record_done) InstanceRecord r = get_rec(f, "old");
        assert_string_equal(r.result, RECORD_RESULT_DELETED);
        fixture_free(f);
}

/* Over the cap, or with a tree that is not whole: nothing is deleted, one error says
 * so, and engine_prune_held (STATUS=) names it; marks are not started by a broken tree. */
static void test_prune_held(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, true);
        f->engine->options.prune = engine_prune;
        f->engine->options.prune.max_per_pass = 2;
        add_spec(f, "keep", NULL);
        set_desired(f);
        int64_t hour_ago = now_realtime_ms() - 3600 * 1000;
        RemoteInstance listed[4] = { instance("id-k", "keep", "RUNNING", "0") };
        const char *names[] = { "a", "b", "c" }, *ids[] = { "id-a", "id-b", "id-c" };
        for (size_t i = 0; i < 3; i++) {
                put_gone(f, names[i], ids[i], "STOPPED", true, hour_ago);
                listed[i + 1] = instance(ids[i], names[i], "STOPPED", "0");
        }
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", listed, 4);
        assert_int_equal(count_calls(API_CALL_DELETE, NULL), 0);
        assert_non_null(engine_prune_held(f->engine));
        assert_non_null(strstr(engine_prune_held(f->engine), "3 deletions due, over prune_max_per_pass 2"));

        /* a broken tree: held for that reason instead; a name leaving now gets no mark */
        assert_int_equal(engine_set_tree_problem(f->engine, "x.yaml:1:1: error: bad"), 0);
        spec_list_clear(&f->specs);
        add_spec(f, "other", NULL);
        set_desired(f);
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", listed, 4);
        assert_int_equal(count_calls(API_CALL_DELETE, NULL), 0);
        assert_non_null(strstr(engine_prune_held(f->engine), "not whole"));
        _cleanup_(instance_record_done) InstanceRecord k = get_rec(f, "keep");
        assert_int_equal(k.undesired_since_ms, 0);

        /* whole again, and the cap raised: all three go */
        assert_int_equal(engine_set_tree_problem(f->engine, NULL), 0);
        f->engine->options.prune.max_per_pass = 3;
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        run_until_call(f, API_CALL_LIST);
        answer_list("0", listed, 4);
        assert_int_equal(count_open(API_CALL_DELETE), 3);
        assert_null(engine_prune_held(f->engine));
        /* "keep" left the tree just now: marked, not deleted */
        instance_record_done(&k);
        k = get_rec(f, "keep");
        assert_true(k.undesired_since_ms > 0);
        assert_int_equal(count_calls(API_CALL_DELETE, "id-k"), 0);
        fixture_free(f);
}

static bool has_rec(Fixture *f, const char *name) {
        InstanceRecord r = {};
        int x = store_get_instance(f->store, name, &r);
        instance_record_done(&r);
        assert_true(x == 0 || x == -ENOENT);
        return x == 0;
}

/* A record as an earlier run left it, marked "not desired since" an hour ago. */
static void put_old(Fixture *f, const char *name, const char *id, const char *ws, int64_t mark_ms) {
        InstanceRecord r = { .name = MUT(name), .instance_id = MUT(id), .workspace_id = MUT(ws),
                             .status = MUT(id ? "RUNNING" : NULL), .result = MUT(RECORD_RESULT_ACCEPTED) };
        assert_int_equal(store_put_instance(f->store, &r), 0);
        StorePruneItem it = { .name = name, .verdict = STORE_PRUNE_KEEP };
        assert_int_equal(store_prune(f->store, &it, 1, mark_ms, 1000, NULL), 0);
}

/* A full pass prunes: records of names gone from the tree whose instance is gone too,
 * once the retention has passed; never a desired name's, nor one whose instance lives
 * (or may: a record without a workspace that no listing showed). A pass that could
 * not list every workspace prunes nothing. */
static void test_prune_after_full_pass(void **state) {
        (void) state;
        Fixture *f = fixture_new(true, false);
        f->engine->options.state_retention_ms = 60 * 1000;
        int64_t hour_ago = now_realtime_ms() - 3600 * 1000;
        NotebookSpec *kept = add_spec(f, "kept", NULL);
        set_desired(f);
        char hash[SPEC_HASH_HEX_LEN + 1];
        spec_hash(kept, hash);
        put_old(f, "kept", "id-k", "0", hour_ago);         /* back in the tree */
        put_old(f, "live", "id-l", "0", hour_ago);         /* its instance runs */
        put_old(f, "deleted", "id-d", "0", hour_ago);      /* its instance is gone */
        put_old(f, "dead", "id-x", "0", hour_ago);         /* listed DELETED */
        put_old(f, "noid", NULL, NULL, hour_ago);          /* never had one */
        put_old(f, "nows", "id-n", NULL, hour_ago);        /* lives we know not where */
        put_old(f, "inb", "id-b", "ws-b", hour_ago);       /* in ws-b, gone */
        put_old(f, "young", NULL, NULL, now_realtime_ms()); /* left the tree just now */
        int64_t old_intent, young_intent;
        assert_int_equal(store_add_intent(f->store, "kept", hash, hour_ago, &old_intent), 0);
        assert_int_equal(store_resolve_intent(f->store, old_intent, "accepted", hour_ago), 0);
        assert_int_equal(store_add_intent(f->store, "kept", hash, hour_ago, &young_intent), 0);
        assert_int_equal(store_resolve_intent(f->store, young_intent, "accepted", now_realtime_ms()), 0);
        RemoteInstance listed0[] = {
                instance("id-k", "kept", "RUNNING", "0"),
                instance("id-l", "live", "RUNNING", "0"),
                instance("id-x", "dead", "DELETED", "0"),
        };

        /* ws-b fails: nothing is pruned, not even in the listed workspace */
        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", listed0, ELEMENTSOF(listed0));
        fail_list("ws-b", API_CLASS_TRANSIENT, 503, NULL);
        assert_true(has_rec(f, "deleted") && has_rec(f, "noid") && has_rec(f, "inb") && has_rec(f, "dead"));
        assert_int_equal(store_resolve_intent(f->store, old_intent, "x", 1), -EALREADY);
        assert_true(hashmap_contains(f->engine->reported, "deleted"));

        engine_request_pass(f->engine, ENGINE_PASS_FULL);
        answer_list("0", listed0, ELEMENTSOF(listed0));
        answer_list("ws-b", NULL, 0);
        assert_false(has_rec(f, "deleted"));
        assert_false(has_rec(f, "dead"));
        assert_false(has_rec(f, "noid"));
        assert_false(has_rec(f, "inb"));
        assert_true(has_rec(f, "live"));
        assert_true(has_rec(f, "nows"));
        assert_true(has_rec(f, "young"));
        _cleanup_(instance_record_done) InstanceRecord k = get_rec(f, "kept");
        assert_int_equal(k.undesired_since_ms, 0);
        _cleanup_(instance_record_done) InstanceRecord l = get_rec(f, "live");
        assert_int_equal(l.undesired_since_ms, hour_ago);
        assert_int_equal(store_resolve_intent(f->store, old_intent, "x", 1), -ENOENT);
        assert_int_equal(store_resolve_intent(f->store, young_intent, "x", 1), -EALREADY);
        /* what was reported about a pruned name is forgotten with it */
        assert_false(hashmap_contains(f->engine->reported, "deleted"));
        assert_true(hashmap_contains(f->engine->reported, "live"));
        fixture_free(f);
}

int main(void) {
        log_setup(LOG_TARGET_CONSOLE, LOG_WARNING);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_create_and_settle),
                cmocka_unit_test(test_follow_to_running),
                cmocka_unit_test(test_exists_then_adopted),
                cmocka_unit_test(test_exists_invisible_is_conflict),
                cmocka_unit_test(test_forbidden_create_alone),
                cmocka_unit_test(test_auth_on_create_arms_retry),
                cmocka_unit_test(test_frozen_pauses_creates),
                cmocka_unit_test(test_named_wait_resolves_intent),
                cmocka_unit_test(test_unknown_outcome_listed_then_adopted),
                cmocka_unit_test(test_edit_lists_nothing),
                cmocka_unit_test(test_create_window),
                cmocka_unit_test(test_incremental_lists_only_what_it_lacks),
                cmocka_unit_test(test_edit_after_listing_older_than_create),
                cmocka_unit_test(test_leftover_intent_settled_by_listing),
                cmocka_unit_test(test_leftover_intent_kept_without_listing),
                cmocka_unit_test(test_workspaces_listed_and_isolated),
                cmocka_unit_test(test_no_adoption_across_workspaces),
                cmocka_unit_test(test_listing_older_than_create_does_not_judge),
                cmocka_unit_test(test_throttled_listing_waits),
                cmocka_unit_test(test_state_write_failure_pauses),
                cmocka_unit_test(test_failed_listing_pauses),
                cmocka_unit_test(test_standings_move_with_answers),
                cmocka_unit_test(test_stop),
                cmocka_unit_test(test_prune_after_full_pass),
                cmocka_unit_test(test_state_stop_then_start),
                cmocka_unit_test(test_new_instance_stopped_once_running),
                cmocka_unit_test(test_state_action_refused),
                cmocka_unit_test(test_prune_stop_delete_follow),
                cmocka_unit_test(test_prune_6304_stops_first),
                cmocka_unit_test(test_mark_cleared_while_busy),
                cmocka_unit_test(test_prune_held),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        for (size_t i = 0; i < n_calls; i++)
                free(calls[i].what);
        return r;
}
