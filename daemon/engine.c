#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "config.h"
#include "instance.h"
#include "limits.h"
#include "log.h"
#include "messages.h"
#include "metrics.h"
#include "plan.h"
#include "util.h"

/* What an op is doing. */
typedef enum OpKind {
        OP_CREATE,      /* a create, queued or on the wire */
        OP_FOLLOW,      /* polling an instance on its way (created, adopted, pending) */
        OP_START,       /* state: running: the start call, then following it */
        OP_STOP,        /* state: stopped: the stop call, then following it */
        OP_DELETE,      /* prune: stop (unless stopped), follow to STOPPED, delete, follow
                         * until the cloud no longer has it */
} OpKind;

/* Work in flight for one name. At most one per name: a create, a poll that follows an
 * instance, a start or stop, a deletion. Later passes leave a busy name alone. */
typedef struct Op {
        Engine *engine;
        OpKind kind;
        bool delete_sent;                       /* OP_DELETE: the delete was accepted */
        unsigned action_tries;                  /* start/stop calls sent for this op */
        char *name;
        char *instance_id;                      /* poll */
        char *last_status;                      /* poll: for STATUS_CHANGED */
        char spec_hash[SPEC_HASH_HEX_LEN + 1];  /* create */
        char *workspace_id;                     /* create: where the instance goes */
        int64_t intent_id;                      /* create */
        int64_t started_mono_ms;
        unsigned poll_attempt;
        bool in_request;                        /* a callback is still to come */
        const NotebookSpec *spec;               /* create, queued: engine_set_desired, which
                                                 * frees it, empties the queue first */
        struct Op *queue_next;
        sd_event_source *timer;                 /* poll: next get */
} Op;

struct Engine {
        sd_event *event;
        Store *store;
        ApiClient *api;
        EngineOptions options;

        SpecList desired;           /* owned copies */
        Hashmap *ops;               /* name -> Op* */
        Hashmap *reported;          /* name -> char* "what was last reported" (owned) */
        Hashmap *touched;           /* names whose record changed while a listing was out */
        Hashmap *standing;          /* desired name -> STANDING_PTR(EngineStanding) */

        bool pass_listing;          /* a pass waits for its listings */
        EnginePassKind pass_kind;   /* of the pass running */
        Hashmap *pass_ws;           /* the workspaces it lists */
        unsigned listings_out;      /* one per workspace, in flight together */
        RemoteInstanceList listed;  /* what they showed so far, merged */
        /* The cloud as last listed, kept between passes: an incremental pass plans
         * against it (plan.h, RemoteView.stale) instead of listing again. */
        RemoteInstanceList known;   /* the last listing of each workspace in known_ws */
        Hashmap *known_ws;          /* workspace -> NULL: listed, not failed since */
        Hashmap *relist_ws;         /* workspace -> NULL: the next pass lists it again */
        char **unlisted;            /* workspaces whose listing failed this pass */
        size_t n_unlisted;
        bool listing_throttled;     /* one of them was a 429: log with MESSAGE_THROTTLED */
        int64_t listing_retry_ms;   /* the longest wait a failed listing asked for */
        bool listing_lost;          /* a failure could not even be noted: no name is judged */
        char *listing_error;        /* this pass: why the last failed listing failed */
        char *list_paused;          /* no listing succeeded: STATUS='s reason, until one does */
        bool pass_again;            /* a pass was requested meanwhile */
        bool pass_again_full;       /* ... a full one */
        bool list_first;            /* a create got no HTTP answer: the API may be down, so
                                     * the next pass is a full one, whose listing probes it
                                     * for every name at once (and pauses them all while it
                                     * fails) instead of each name's retry probing it again */
        bool stopping;
        bool state_error;
        int64_t frozen_until_mono_ms;   /* ModelArts.6326: no create before this */
        int64_t state_paused_until_mono_ms; /* intents could not be written: creates wait */
        unsigned list_failures;     /* consecutive failed listings: pass-level backoff */
        int64_t deadline_mono_ms;
        sd_event_source *pass_timer;  /* a scheduled (retry) pass */
        int64_t pass_timer_at_mono_ms;
        sd_event_source *prune_timer; /* a full pass when the next absence passes its grace */
        int64_t prune_timer_at_mono_ms;
        char *tree_problem;           /* engine_set_tree_problem: the whole tree's */
        Hashmap *tenant_problems;     /* tenant -> its part's problem (char*, NULL: whole) */
        char *prune_held;             /* engine_prune_held */
        char *tenant_of_gone;         /* engine_tenant_of's answer for a name not desired */

        /* Creates with durable intents, waiting for the API client (ENGINE_CREATE_WINDOW). */
        Op *queue_head, *queue_tail;
        unsigned creates_out;       /* handed to the client, unanswered */

        EngineCounts counts;        /* the tally of standing, moved with it */
        Metrics *metrics;           /* engine_set_metrics: borrowed, may be NULL */
        int64_t pass_started_mono_ms;
        engine_settled_cb settled_cb;
        void *settled_userdata;
        engine_settled_cb progress_cb;
        void *progress_userdata;
};

/* sd-event coalesces a timer with accuracy 0 by its default of 250 ms: retries and
 * polls would all be late by that much. 1 ms is precise enough and still lets the
 * kernel batch wake-ups. */
#define ENGINE_TIMER_ACCURACY_USEC 1000

static void engine_maybe_settled(Engine *e);
static void op_poll_schedule(Op *op);
static void schedule_pass_at(Engine *e, int64_t delay_ms);
static void pass_start(Engine *e, EnginePassKind kind);
static void relist_workspace(Engine *e, const char *workspace_id);
static void on_create_result(ApiClient *c, const ApiResult *ar, const RemoteInstance *inst, void *userdata);
static void feed_creates(Engine *e, bool drop_all);
static void poll_settled(Op *op, InstanceStatusClass cls);
static void delete_done(Op *op);
static void schedule_full_pass_at(Engine *e, int64_t delay_ms);
static const char *tree_problem_of(const Engine *e, const char *tenant);

/* ---------------------------------------------------------------- helpers */

/* Standings live in a hashmap of pointers, which must not be NULL ("absent"). */
#define STANDING_PTR(s) ((void *) ((uintptr_t) (s) + 1))
#define PTR_STANDING(p) ((EngineStanding) ((uintptr_t) (p) - 1))

static size_t *tally_slot(EngineCounts *c, EngineStanding s) {
        switch (s) {
        case STANDING_PENDING:
                return &c->pending;
        case STANDING_RUNNING:
                return &c->running;
        case STANDING_FAILED:
                return &c->failed;
        case STANDING_REJECTED:
                return &c->rejected;
        case STANDING_RETRYING:
                return &c->retrying;
        default:
                return &c->waiting;
        }
}

/* A desired name moves to another bucket: STATUS= and `once` see it at once, not at
 * the next pass. A name no longer desired is in no bucket and stays out. */
static void standing_set(Engine *e, const char *name, EngineStanding s) {
        void *old = hashmap_get(e->standing, name);
        if (!old)
                return;
        (*tally_slot(&e->counts, PTR_STANDING(old)))--;
        (void) hashmap_put(e->standing, name, STANDING_PTR(s));   /* a replacement: cannot fail */
        (*tally_slot(&e->counts, s))++;
}

static int64_t jittered_backoff_ms(int64_t attempt, int64_t base, int64_t cap) {
        int64_t d = base;
        for (int64_t i = 1; i < attempt && d < cap; i++)
                d *= 2;
        d = MIN(d, cap);
        /* half jitter: between d/2 and d */
        return d / 2 + (int64_t) (random() % (d / 2 + 1));
}

static Op *op_free(Op *op) {
        if (!op)
                return NULL;
        sd_event_source_disable_unref(op->timer);
        free(op->name);
        free(op->instance_id);
        free(op->last_status);
        free(op->workspace_id);
        free(op);
        return NULL;
}

/* One op per name: a second would race the first over the same record. */
static int op_new(Engine *e, const char *name, Op **ret) {
        if (hashmap_contains(e->ops, name))
                return -EBUSY;
        Op *op = calloc(1, sizeof(*op));
        if (!op)
                return -ENOMEM;
        op->engine = e;
        op->started_mono_ms = now_monotonic_ms();
        op->name = strdup(name);
        if (!op->name || hashmap_put(e->ops, name, op) < 0) {
                op_free(op);
                return -ENOMEM;
        }
        *ret = op;
        return 0;
}

/* The op is done: forget it, and note that this name's record changed under any
 * listing now in flight (that listing predates the change and must not judge it).
 * Does not check for "settled": a caller with follow-up work (a poll, a pass) registers
 * it first, then calls engine_maybe_settled(), or `once` would end before it. */
static void op_detach(Op *op) {
        Engine *e = op->engine;
        hashmap_remove(e->ops, op->name);
        if (e->pass_listing)
                (void) hashmap_put(e->touched, op->name, NULL);
        op_free(op);
}

static void op_finish(Op *op) {
        Engine *e = op->engine;
        op_detach(op);
        engine_maybe_settled(e);
}

static void note_state_error(Engine *e, int r, const char *what, const char *name) {
        e->state_error = true;
        log_fields_errno(LOG_ERR, r, MESSAGE_STATE_ERROR,
                         LOG_FIELDS({ "NOTEBOOK", name }, { "STATE_FILE", store_path(e->store) }),
                         "State database: cannot %s%s%s: %s", what, name ? " for " : "", strempty(name),
                         store_error_message(e->store));
}

/* Load the record for name, or an empty one carrying the name. */
static int record_load(Engine *e, const char *name, InstanceRecord *ret) {
        int r = store_get_instance(e->store, name, ret);
        if (r == -ENOENT) {
                *ret = (InstanceRecord) { .name = strdup(name) };
                return ret->name ? 0 : -ENOMEM;
        }
        return r;
}

static const NotebookSpec *desired_spec(const Engine *e, const char *name);

/* What a record keeps of its manifest: its state: (for status), NULL for no opinion. */
static const char *spec_desired_state(const NotebookSpec *spec) {
        return spec->state != DESIRED_STATE_ANY ? desired_state_to_string(spec->state) : NULL;
}

/* The record's copy of its manifest's tenant and state: is not the manifest's. */
static bool record_desired_stale(const InstanceRecord *rec, const NotebookSpec *spec) {
        return !streq_ptr(rec->desired_state, spec_desired_state(spec)) ||
               (spec->tenant && !streq_ptr(rec->tenant, spec->tenant));
}

static int record_save(Engine *e, InstanceRecord *rec) {
        int64_t now = now_realtime_ms();
        /* the tenant of its manifest (kept for when the manifest is gone) and its state: */
        const NotebookSpec *spec = desired_spec(e, rec->name);
        if (spec && record_desired_stale(rec, spec)) {
                if (spec->tenant)
                        (void) strdup_replace(&rec->tenant, spec->tenant);
                (void) strdup_replace(&rec->desired_state, spec_desired_state(spec));
        }
        rec->updated_at_ms = now;
        if (!rec->created_at_ms)
                rec->created_at_ms = now;
        int r = store_put_instance(e->store, rec);
        if (r < 0)
                note_state_error(e, r, "record", rec->name);
        return r;
}

/* Copy what an API call said into the record. */
static void record_set_result(InstanceRecord *rec, const char *result, const ApiResult *ar) {
        (void) strdup_replace(&rec->result, result);
        rec->result_at_ms = now_realtime_ms();
        rec->http_status = ar ? (int) ar->http_status : 0;
        (void) strdup_replace(&rec->error_code, ar ? ar->error_code : NULL);
        (void) strdup_replace(&rec->error_msg, ar && ar->class != API_CLASS_OK ? (ar->error_msg ? ar->error_msg : ar->message) : NULL);
        (void) strdup_replace(&rec->request_id, ar ? ar->request_id : NULL);
}

static void resolve_intent(Engine *e, int64_t id, const char *outcome, const char *name) {
        if (id <= 0)
                return;
        int r = store_resolve_intent(e->store, id, outcome, now_realtime_ms());
        if (r < 0 && r != -EALREADY)
                note_state_error(e, r, "resolve the create intent", name);
}

/* Report a condition once per change: passes repeat every few minutes and the journal
 * must not fill with the same drift line. key says what was reported. */
static bool report_once(Engine *e, const char *name, const char *key) {
        char *old = hashmap_get(e->reported, name);
        if (old && streq(old, key))
                return false;
        char *k = strdup(key);
        if (!k || hashmap_put(e->reported, name, k) < 0) {
                free(k);
                return true;
        }
        free(old);
        return true;
}

static void report_forget(Engine *e, const char *name) {
        free(hashmap_remove(e->reported, name));
}

/* Fields every API-related entry carries. */
typedef struct FieldBuf {
        LogField f[20];
        size_t n;
} FieldBuf;

static void fb_add(FieldBuf *b, const char *name, const char *value) {
        if (value && b->n < ELEMENTSOF(b->f) - 1)
                b->f[b->n++] = (LogField) { name, value };
        b->f[b->n] = (LogField) { NULL, NULL };
}

static void fb_api(FieldBuf *b, const ApiResult *ar, char http_buf[static LOG_INT_BUFSIZE]) {
        if (!ar)
                return;
        if (ar->http_status > 0)
                fb_add(b, "HTTP_STATUS", log_int(http_buf, ar->http_status));
        fb_add(b, "API_ERROR_CODE", ar->error_code);
        fb_add(b, "API_ERROR_MSG", ar->error_msg);
        fb_add(b, "REQUEST_ID", ar->request_id);
}

/* ---- metrics: counted where the outcome is decided, rendered elsewhere */

/* A create's answer, by its class, as notebookd_creates_total's result. */
static const char *const create_result_label[_API_CLASS_MAX] = {
        [API_CLASS_OK] = "accepted",
        [API_CLASS_ALREADY_EXISTS] = "exists",
        [API_CLASS_NOT_FOUND] = "rejected",
        [API_CLASS_PERMANENT] = "rejected",
        [API_CLASS_FORBIDDEN] = "rejected",
        [API_CLASS_AUTH] = "auth_failed",
        [API_CLASS_ACCOUNT_FROZEN] = "frozen",
        [API_CLASS_THROTTLED] = "throttled",
        [API_CLASS_TRANSIENT] = "retrying",
        [API_CLASS_UNKNOWN_OUTCOME] = "unknown",
};

/* One outcome for a name: its tenant (tenants:) is a label too. */
static void count_outcome(Engine *e, MetricsFamily f, const char *name, const char *first, const char *code) {
        if (!e->metrics)
                return;
        const char *tenant = engine_tenant_of(e, name);
        if (f == METRICS_ADOPTIONS)
                metrics_add(e->metrics, f, METRICS_LABELS(tenant), 1);
        else
                metrics_add(e->metrics, f, METRICS_LABELS(first, code, tenant), 1);
}

/* Sending is paused after an authentication failure. The API client owns that state
 * (it refuses to send, since five bad signatures in a row lock the AK); the engine asks
 * it rather than keeping a copy that could disagree. */
static bool auth_paused(const Engine *e) {
        return api_client_auth_failed(e->api, NULL);
}

/* The "reported" map's keys for engine-wide conditions: no manifest name is empty or
 * starts with a space. */
#define REPORT_KEY_ENGINE ""
#define REPORT_KEY_PRUNE " prune"

/* 401/403: the API client already stopped sending; say so once per failure (several
 * requests in flight may each bring one), with what failed, and arm the retry. */
static void note_auth_failure(Engine *e, const ApiResult *ar, const LogField *fields) {
        if (!report_once(e, REPORT_KEY_ENGINE, "auth"))
                return;
        log_fields(LOG_ERR, MESSAGE_AUTH_FAILED, fields, "Authentication failed: %s; sending paused",
                   strempty(ar->message));
        /* Whatever call found out (a create, a poll, a listing), the daemon tries again
         * later: without the timer every pass would be refused until a reload. */
        if (e->options.daemon)
                schedule_pass_at(e, e->options.auth_retry_ms);
}

/* 6326: every create waits ENGINE_FROZEN_RETRY_MS; said once per freeze, not per name. */
static void note_account_frozen(Engine *e, const ApiResult *ar, const LogField *fields) {
        bool was_frozen = e->frozen_until_mono_ms > now_monotonic_ms();
        e->frozen_until_mono_ms = now_monotonic_ms() + ENGINE_FROZEN_RETRY_MS;
        if (was_frozen)
                return;
        log_fields(LOG_ERR, MESSAGE_ACCOUNT_FROZEN, fields,
                   "The Huawei Cloud account is frozen (%s): no notebook can be created until it is "
                   "topped up; creates paused, next try in %d min",
                   strempty(ar->message), ENGINE_FROZEN_RETRY_MS / 60000);
}

/* ---------------------------------------------------------------- polling */

/* A poll that finds the instance deleted (6309, or a DELETED status) hands the name
 * back to the planner at once: it will be created again. */
static void poll_found_gone(Op *op) {
        Engine *e = op->engine;
        if (op->kind == OP_DELETE) {
                delete_done(op);
                return;
        }
        log_fields(LOG_WARNING, MESSAGE_INSTANCE_MISSING,
                   LOG_FIELDS({ "NOTEBOOK", op->name }, { "INSTANCE_ID", op->instance_id }),
                   "Notebook %s (instance %s) disappeared while being followed; the next pass decides",
                   op->name, op->instance_id);
        standing_set(e, op->name, STANDING_WAITING);
        /* The record still says it exists: only a listing taken now can say otherwise. */
        _cleanup_(instance_record_done) InstanceRecord rec = {};
        relist_workspace(e, record_load(e, op->name, &rec) >= 0 ? rec.workspace_id : NULL);
        op_detach(op);
        pass_start(e, ENGINE_PASS_INCREMENTAL);
        engine_maybe_settled(e);
}

/* A poll that got no instance: authentication pauses everything, a policy denial ends
 * the following (asking again gets the same answer; the next pass's listing still shows
 * where the instance stands), anything else is asked again later. */
static void poll_failed(Op *op, const ApiResult *ar) {
        Engine *e = op->engine;
        char http_buf[LOG_INT_BUFSIZE];
        FieldBuf fb = {};
        fb_add(&fb, "NOTEBOOK", op->name);
        if (ar->class == API_CLASS_AUTH) {
                fb_api(&fb, ar, http_buf);
                note_auth_failure(e, ar, fb.f);
                op_finish(op);
        } else if (ar->class == API_CLASS_FORBIDDEN) {
                fb_add(&fb, "INSTANCE_ID", op->instance_id);
                fb_api(&fb, ar, http_buf);
                if (report_once(e, op->name, "forbidden:get"))
                        log_fields(LOG_WARNING, MESSAGE_FORBIDDEN, fb.f,
                                   "Cannot follow notebook %s: %s; passes still list it", op->name,
                                   strempty(ar->message));
                op_finish(op);
        } else {
                log_debug("Polling %s failed (%s), retrying", op->name, strempty(ar->message));
                op_poll_schedule(op);
        }
}

/* The instance's status differs from the last one seen: record it and say so. */
static void poll_status_changed(Op *op, const RemoteInstance *inst, InstanceStatusClass cls) {
        Engine *e = op->engine;
        _cleanup_(instance_record_done) InstanceRecord rec = {};
        if (record_load(e, op->name, &rec) >= 0) {
                (void) strdup_replace(&rec.status, inst->status);
                if (!rec.instance_id)
                        (void) strdup_replace(&rec.instance_id, inst->id);
                record_save(e, &rec);
        }
        char dur[LOG_INT_BUFSIZE];
        log_fields(cls == STATUS_CLASS_FAILED ? LOG_ERR : LOG_INFO,
                   cls == STATUS_CLASS_FAILED ? MESSAGE_INSTANCE_FAILED : MESSAGE_STATUS_CHANGED,
                   LOG_FIELDS({ "NOTEBOOK", op->name }, { "INSTANCE_ID", op->instance_id },
                              { "STATUS", inst->status }, { "PREVIOUS_STATUS", op->last_status },
                              { "FAILED_REASON", inst->failed_reason },
                              { "DURATION_MS", log_int(dur, now_monotonic_ms() - op->started_mono_ms) }),
                   "Notebook %s is now %s%s%s", op->name, strempty(inst->status),
                   inst->failed_reason ? ": " : "", strempty(inst->failed_reason));
        (void) strdup_replace(&op->last_status, inst->status);
        if (cls == STATUS_CLASS_FAILED) {
                char key[96];
                snprintf(key, sizeof key, "failed:%s", strempty(inst->status));
                report_once(e, op->name, key);
        }
}

/* An answer to op's request arrived: false (and the op finished) when the engine is
 * stopping and nothing more is to be done for it. */
static bool op_answered(Op *op) {
        op->in_request = false;
        if (!op->engine->stopping)
                return true;
        op_finish(op);
        return false;
}

static void on_poll_result(ApiClient *c, const ApiResult *ar, const RemoteInstance *inst, void *userdata) {
        (void) c;
        Op *op = userdata;
        if (!op_answered(op))
                return;
        if (ar->class == API_CLASS_NOT_FOUND ||
            (ar->class == API_CLASS_OK && inst && instance_status_class(inst->status) == STATUS_CLASS_GONE)) {
                poll_found_gone(op);
                return;
        }
        if (ar->class != API_CLASS_OK || !inst) {
                poll_failed(op, ar);
                return;
        }
        InstanceStatusClass cls = instance_status_class(inst->status);
        if (!streq_ptr(inst->status, op->last_status))
                poll_status_changed(op, inst, cls);
        if (cls == STATUS_CLASS_PENDING || cls == STATUS_CLASS_UNKNOWN) {
                op_poll_schedule(op);
                return;
        }
        poll_settled(op, cls);
}

static int on_poll_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        Op *op = userdata;
        if (op->engine->stopping) {
                op_finish(op);
                return 0;
        }
        int r = api_get(op->engine->api, op->instance_id, on_poll_result, op);
        if (r < 0) {
                log_warning_errno(r, "Cannot poll notebook %s: %m", op->name);
                op_finish(op);
                return 0;
        }
        op->in_request = true;
        return 0;
}

static void op_poll_schedule(Op *op) {
        if (op->engine->stopping) {
                op_finish(op);
                return;
        }
        int64_t delay = jittered_backoff_ms(++op->poll_attempt, ENGINE_POLL_BASE_MS, ENGINE_POLL_MAX_MS);
        int r;
        if (op->timer)
                r = sd_event_source_set_time_relative(op->timer, (uint64_t) delay * 1000);
        else
                r = sd_event_add_time_relative(op->engine->event, &op->timer, CLOCK_MONOTONIC,
                                               (uint64_t) delay * 1000, ENGINE_TIMER_ACCURACY_USEC,
                                               on_poll_timer, op);
        if (r >= 0)
                r = sd_event_source_set_enabled(op->timer, SD_EVENT_ONESHOT);
        if (r < 0) {
                log_warning_errno(r, "Cannot schedule polling of %s: %m", op->name);
                op_finish(op);
        }
}

/* Follow name's instance until RUNNING or failed (when following is on). */
/* An op about name's existing instance (follow, start, stop, delete), or NULL (busy, no
 * id, no memory). */
static Op *op_for_instance(Engine *e, const char *name, const char *instance_id, const char *status, OpKind kind) {
        Op *op;
        if (!instance_id || op_new(e, name, &op) < 0)
                return NULL;
        op->kind = kind;
        op->instance_id = strdup(instance_id);
        op->last_status = xstrdup(status);
        if (!op->instance_id) {
                hashmap_remove(e->ops, name);
                op_free(op);
                return NULL;
        }
        return op;
}

static void follow_instance(Engine *e, const char *name, const char *instance_id, const char *status) {
        if (!e->options.follow || e->stopping)
                return;
        Op *op = op_for_instance(e, name, instance_id, status, OP_FOLLOW);
        if (op)
                op_poll_schedule(op);
}

/* ---------------------------------------------------------------- lifecycle: start, stop, delete */

static int cmp_spec_name(const void *a, const void *b) {
        return strcmp((*(NotebookSpec *const *) a)->name, (*(NotebookSpec *const *) b)->name);
}

static int cmp_name_spec(const void *key, const void *item) {
        return strcmp(key, (*(NotebookSpec *const *) item)->name);
}

/* The desired set is sorted by name (engine_set_desired). */
static const NotebookSpec *desired_spec(const Engine *e, const char *name) {
        NotebookSpec **hit = bsearch(name, e->desired.items, e->desired.n, sizeof(*e->desired.items), cmp_name_spec);
        return hit ? *hit : NULL;
}

static DesiredState desired_state_of(const Engine *e, const char *name) {
        const NotebookSpec *s = desired_spec(e, name);
        return s ? s->state : DESIRED_STATE_ANY;
}

static void on_lifecycle_result(ApiClient *c, const ApiResult *ar, void *userdata);

/* Send the op's next call (start, stop or delete) for its instance. */
static void lifecycle_send(Op *op, ApiCall call) {
        Engine *e = op->engine;
        int r = call == API_CALL_START  ? api_start(e->api, op->instance_id, on_lifecycle_result, op)
                : call == API_CALL_STOP ? api_stop(e->api, op->instance_id, on_lifecycle_result, op)
                                        : api_delete(e->api, op->instance_id, on_lifecycle_result, op);
        if (r < 0) {
                log_warning_errno(r, "Cannot %s notebook %s: %m; a later pass tries again", api_call_to_string(call),
                                  op->name);
                schedule_full_pass_at(e, ENGINE_LIST_RETRY_MAX_MS);
                op_finish(op);
                return;
        }
        op->in_request = true;
        if (call != API_CALL_DELETE)
                op->action_tries++;
}

/* state: asks for the other status than cls: the call that gets it there, else _API_CALL_MAX. */
static ApiCall state_call_for(const Engine *e, const char *name, InstanceStatusClass cls) {
        DesiredState want = desired_state_of(e, name);
        if (want == DESIRED_STATE_STOPPED && cls == STATUS_CLASS_RUNNING)
                return API_CALL_STOP;
        if (want == DESIRED_STATE_RUNNING && cls == STATUS_CLASS_STOPPED)
                return API_CALL_START;
        return _API_CALL_MAX;
}

/* Start or stop the op's instance for the manifest's state:, and say so. */
static void state_action(Op *op, ApiCall call, const char *status) {
        op->kind = call == API_CALL_START ? OP_START : OP_STOP;
        const char *action = api_call_to_string(call);
        const char *want = desired_state_to_string(desired_state_of(op->engine, op->name));
        log_fields(LOG_NOTICE, MESSAGE_STATE_ACTION,
                   LOG_FIELDS({ "NOTEBOOK", op->name }, { "INSTANCE_ID", op->instance_id }, { "ACTION", action },
                              { "STATUS", status }, { "DESIRED_STATE", want }),
                   "Notebook %s is %s, its manifest says state: %s: %s it", op->name, strempty(status), want,
                   call == API_CALL_START ? "starting" : "stopping");
        standing_set(op->engine, op->name, STANDING_PENDING);
        lifecycle_send(op, call);
}

/* A followed instance reached a status that is not on its way anywhere (cls: RUNNING,
 * STOPPED or failed). */
static void poll_settled(Op *op, InstanceStatusClass cls) {
        Engine *e = op->engine;
        if (op->kind == OP_DELETE) {
                if (op->delete_sent) {          /* still listed after the delete: keep asking */
                        op_poll_schedule(op);
                        return;
                }
                if (cls == STATUS_CLASS_RUNNING && op->action_tries < ENGINE_STATE_ACTION_TRIES) {
                        lifecycle_send(op, API_CALL_STOP);   /* started again meanwhile */
                        return;
                }
                if (cls == STATUS_CLASS_STOPPED || cls == STATUS_CLASS_FAILED) {
                        lifecycle_send(op, API_CALL_DELETE);
                        return;
                }
                log_fields(LOG_ERR, MESSAGE_ACTION_FAILED,
                           LOG_FIELDS({ "NOTEBOOK", op->name }, { "INSTANCE_ID", op->instance_id }, { "ACTION", "delete" },
                                      { "STATUS", op->last_status }),
                           "Cannot delete notebook %s: it stays %s after %u stop calls; a later pass tries again",
                           op->name, strempty(op->last_status), op->action_tries);
                op_finish(op);
                return;
        }
        standing_set(e, op->name, cls == STATUS_CLASS_FAILED ? STANDING_FAILED : STANDING_RUNNING);
        /* Arrived: is that where the manifest wants it? A new instance of a "stopped"
         * manifest is stopped once it first runs. The tries bound a tug of war with
         * someone (or something) that keeps changing it back. */
        ApiCall call = state_call_for(e, op->name, cls);
        if (call != _API_CALL_MAX && op->action_tries < ENGINE_STATE_ACTION_TRIES) {
                state_action(op, call, op->last_status);
                return;
        }
        op_finish(op);
}

/* The instance is gone: record it (the record is pruned from the state database after
 * state_retention) and say so. */
static void delete_done(Op *op) {
        Engine *e = op->engine;
        _cleanup_(instance_record_done) InstanceRecord rec = {};
        if (record_load(e, op->name, &rec) >= 0) {
                (void) strdup_replace(&rec.status, "DELETED");
                record_set_result(&rec, RECORD_RESULT_DELETED, NULL);
                record_save(e, &rec);
        }
        count_outcome(e, METRICS_DELETIONS, op->name, "deleted", NULL);
        log_fields(LOG_NOTICE, MESSAGE_PRUNE_DELETED,
                   LOG_FIELDS({ "NOTEBOOK", op->name }, { "INSTANCE_ID", op->instance_id }),
                   "Deleted notebook %s (instance %s): its manifest left the tree", op->name, op->instance_id);
        report_forget(e, op->name);
        op_finish(op);
}

static void on_lifecycle_result(ApiClient *c, const ApiResult *ar, void *userdata) {
        (void) c;
        Op *op = userdata;
        Engine *e = op->engine;
        if (!op_answered(op))
                return;
        const char *action = api_call_to_string(ar->call);
        char http_buf[LOG_INT_BUFSIZE];
        FieldBuf fb = {};
        fb_add(&fb, "NOTEBOOK", op->name);
        fb_add(&fb, "INSTANCE_ID", op->instance_id);
        fb_add(&fb, "ACTION", action);
        fb_api(&fb, ar, http_buf);

        if (ar->class == API_CLASS_OK) {
                /* accepted, or already there (6305/6307), or on its way (6306/6308):
                 * follow it; a delete is followed until the cloud no longer has it */
                if (ar->call == API_CALL_DELETE)
                        op->delete_sent = true;
                op->poll_attempt = 0;
                op_poll_schedule(op);
                return;
        }
        if (ar->class == API_CLASS_NOT_FOUND) {
                poll_found_gone(op);
                return;
        }
        if (ar->call == API_CALL_DELETE && streq_ptr(ar->error_code, "ModelArts.6304") &&
            op->action_tries < ENGINE_STATE_ACTION_TRIES) {
                lifecycle_send(op, API_CALL_STOP);   /* "stop the instance before deleting it" */
                return;
        }
        if (ar->class == API_CLASS_AUTH) {
                note_auth_failure(e, ar, fb.f);
                op_finish(op);
                return;
        }
        if (ar->class == API_CLASS_THROTTLED || ar->class == API_CLASS_TRANSIENT) {
                int64_t delay = MAX(ar->retry_after_ms, ENGINE_POLL_BASE_MS);
                if (ar->call == API_CALL_DELETE)
                        count_outcome(e, METRICS_DELETIONS, op->name, "retrying", ar->error_code);
                log_fields(LOG_WARNING, MESSAGE_ACTION_FAILED, fb.f, "Cannot %s notebook %s now (%s); trying again",
                           action, op->name, strempty(ar->message));
                schedule_full_pass_at(e, delay);
                op_finish(op);
                return;
        }
        /* Refused for good (a policy, an odd status): once per refusal, until the next
         * full pass asks again. */
        count_outcome(e, METRICS_REJECTIONS, op->name, action, ar->error_code);
        if (ar->call == API_CALL_DELETE)
                count_outcome(e, METRICS_DELETIONS, op->name, "refused", ar->error_code);
        char key[96];
        snprintf(key, sizeof key, "refused:%s:%s", action, strempty(ar->error_code));
        if (report_once(e, op->name, key))
                log_fields(LOG_ERR, MESSAGE_ACTION_FAILED, fb.f, "Cannot %s notebook %s: %s", action, op->name,
                           strempty(ar->message));
        op_finish(op);
}

/* An op for an action's existing instance (the listed one, else the recorded one). */
static Op *lifecycle_op(Engine *e, const Action *a, OpKind kind) {
        const char *id = a->remote && a->remote->id ? a->remote->id : a->record ? a->record->instance_id : NULL;
        return op_for_instance(e, a->name, id, a->status, kind);
}

/* ---------------------------------------------------------------- creating */

/* One create's answer, as its handler sees it: the op, the answer, the record loaded
 * for it (saved by the handler) and the journal fields every outcome carries. */
typedef struct CreateAnswer {
        Engine *engine;
        Op *op;
        const ApiResult *ar;
        const RemoteInstance *instance;  /* OK only */
        InstanceRecord rec;
        FieldBuf fb;
        char http_buf[LOG_INT_BUFSIZE], attempt_buf[LOG_INT_BUFSIZE], retry_buf[LOG_INT_BUFSIZE],
                dur_buf[LOG_INT_BUFSIZE];
        int64_t retry_ms;                /* RETRY: when the next pass comes */
} CreateAnswer;

static void create_answer_done(CreateAnswer *x) {
        instance_record_done(&x->rec);
}

/* What the caller does after a handler: the handler may already have let go of the op
 * (it has follow-up work to register first), the op is done, or a retry is due. */
typedef enum CreateNext {
        CREATE_HANDLED,
        CREATE_DONE,
        CREATE_RETRY,
} CreateNext;

static CreateNext create_accepted(CreateAnswer *x) {
        Engine *e = x->engine;
        Op *op = x->op;
        const RemoteInstance *inst = x->instance;
        e->frozen_until_mono_ms = 0;   /* a create went through: the account is fine */
        (void) strdup_replace(&x->rec.instance_id, inst ? inst->id : NULL);
        (void) strdup_replace(&x->rec.workspace_id, inst && inst->workspace_id ? inst->workspace_id : op->workspace_id);
        (void) strdup_replace(&x->rec.status, inst && inst->status ? inst->status : "CREATING");
        record_set_result(&x->rec, RECORD_RESULT_ACCEPTED, x->ar);
        x->rec.created_by_us = x->rec.instance_id != NULL;   /* prune's ownership guard */
        x->rec.attempts = 0;
        x->rec.next_attempt_at_ms = 0;
        /* The intent stays open unless the instance id is on disk: then the next pass
         * adopts by name instead of trusting a record that is not there. */
        if (record_save(e, &x->rec) >= 0)
                resolve_intent(e, op->intent_id, "accepted", op->name);
        fb_add(&x->fb, "INSTANCE_ID", x->rec.instance_id);
        fb_add(&x->fb, "STATUS", x->rec.status);
        log_fields(LOG_NOTICE, MESSAGE_CREATE_ACCEPTED, x->fb.f, "Created notebook %s: instance %s, %s", op->name,
                   strempty(x->rec.instance_id), x->rec.status);
        report_forget(e, op->name);
        bool running = instance_status_class(x->rec.status) == STATUS_CLASS_RUNNING;
        if (running)
                standing_set(e, op->name, STANDING_RUNNING);
        _cleanup_free_ char *name = strdup(op->name);
        op_detach(op);
        /* the poll is registered before "settled" is checked, or `once` would end first;
         * one made RUNNING at once is followed too when its manifest says stopped: the
         * follow's end stops it */
        if (name && (!running || desired_state_of(e, name) == DESIRED_STATE_STOPPED))
                follow_instance(e, name, x->rec.instance_id, x->rec.status);
        return CREATE_HANDLED;
}

/* 6301: someone (or a lost earlier create) made it. A listing of its workspace, taken
 * now, adopts it; should that listing not show it, the name belongs to someone we cannot
 * see, and the planner blocks it as a conflict instead of sending the same create into
 * the same 6301 again. */
static CreateNext create_exists(CreateAnswer *x) {
        Op *op = x->op;
        resolve_intent(x->engine, op->intent_id, "exists", op->name);
        x->rec.attempts++;
        x->rec.next_attempt_at_ms = 0;
        record_set_result(&x->rec, RECORD_RESULT_EXISTS, x->ar);
        (void) strdup_replace(&x->rec.workspace_id, op->workspace_id);
        record_save(x->engine, &x->rec);
        fb_add(&x->fb, "WORKSPACE_ID", op->workspace_id);
        log_fields(LOG_INFO, NULL, x->fb.f, "Notebook %s already exists (ModelArts.6301); listing workspace %s to adopt it",
                   op->name, strempty(op->workspace_id));
        standing_set(x->engine, op->name, STANDING_WAITING);   /* no instance known yet: the listing decides */
        relist_workspace(x->engine, op->workspace_id);
        op_detach(op);
        pass_start(x->engine, ENGINE_PASS_INCREMENTAL);
        return CREATE_HANDLED;
}

/* The same create would be refused the same way: not sent again until the manifest
 * changes. A policy denial (FORBIDDEN) is one of these: the credentials are fine and
 * every other call goes on. */
static CreateNext create_rejected(CreateAnswer *x) {
        Engine *e = x->engine;
        Op *op = x->op;
        const ApiResult *ar = x->ar;
        record_set_result(&x->rec, RECORD_RESULT_REJECTED, ar);
        x->rec.attempts++;
        x->rec.next_attempt_at_ms = 0;
        record_save(e, &x->rec);
        resolve_intent(e, op->intent_id, "rejected", op->name);
        count_outcome(e, METRICS_REJECTIONS, op->name, "create", ar->error_code);
        fb_add(&x->fb, "ATTEMPT", log_int(x->attempt_buf, x->rec.attempts));
        if (ar->class == API_CLASS_FORBIDDEN)
                log_fields(LOG_ERR, MESSAGE_CREATE_FAILED, x->fb.f,
                           "Create of notebook %s refused: %s; not retried until the manifest changes", op->name,
                           strempty(ar->message));
        else
                log_fields(LOG_ERR, MESSAGE_CREATE_FAILED, x->fb.f,
                           "Create of notebook %s rejected: %s%s%s; not retried until the manifest changes", op->name,
                           strempty(ar->error_code), ar->error_code ? " " : "",
                           ar->error_msg ? ar->error_msg : strempty(ar->message));
        char key[SPEC_HASH_HEX_LEN + 16];
        snprintf(key, sizeof key, "rejected:%s", op->spec_hash);
        report_once(e, op->name, key);
        standing_set(e, op->name, STANDING_REJECTED);
        return CREATE_DONE;
}

/* The gateway refused the credentials: nothing was created, nothing more is sent. */
static CreateNext create_auth_refused(CreateAnswer *x) {
        record_set_result(&x->rec, RECORD_RESULT_AUTH_FAILED, x->ar);
        record_save(x->engine, &x->rec);
        resolve_intent(x->engine, x->op->intent_id, "auth-failed", x->op->name);
        standing_set(x->engine, x->op->name, STANDING_WAITING);   /* nothing was made */
        note_auth_failure(x->engine, x->ar, x->fb.f);
        return CREATE_DONE;
}

/* 6326: nothing was created, and nothing will be until the account is paid: every
 * create waits, not just this one. */
static CreateNext create_frozen(CreateAnswer *x) {
        resolve_intent(x->engine, x->op->intent_id, "account-frozen", x->op->name);
        x->retry_ms = ENGINE_FROZEN_RETRY_MS;
        record_set_result(&x->rec, RECORD_RESULT_RETRYING, x->ar);
        x->rec.next_attempt_at_ms = now_realtime_ms() + x->retry_ms;
        record_save(x->engine, &x->rec);
        note_account_frozen(x->engine, x->ar, x->fb.f);
        return CREATE_RETRY;
}

/* 429: the request was not processed; the client holds every request meanwhile. */
static CreateNext create_throttled(CreateAnswer *x) {
        resolve_intent(x->engine, x->op->intent_id, "throttled", x->op->name);
        x->retry_ms = x->ar->retry_after_ms > 0 ? x->ar->retry_after_ms : API_DEFAULT_RETRY_AFTER_MIN_MS;
        record_set_result(&x->rec, RECORD_RESULT_RETRYING, x->ar);
        x->rec.next_attempt_at_ms = now_realtime_ms() + x->retry_ms;
        record_save(x->engine, &x->rec);
        fb_add(&x->fb, "RETRY_IN_MS", log_int(x->retry_buf, x->retry_ms));
        log_fields(LOG_WARNING, MESSAGE_THROTTLED, x->fb.f, "Create of notebook %s throttled (HTTP 429); whole client waits %lld ms",
                   x->op->name, (long long) x->retry_ms);
        return CREATE_RETRY;
}

/* Sent and unanswered, or a 5xx (which may hide a created instance): the intent stays
 * open, so the next pass lists before anything is re-sent. A 4xx that says "later"
 * (6355, 6357...) was answered: nothing was made, no listing is needed. */
static CreateNext create_retry(CreateAnswer *x) {
        Op *op = x->op;
        const ApiResult *ar = x->ar;
        bool maybe_created = ar->sent && (ar->http_status <= 0 || ar->http_status >= 500);
        if (ar->http_status <= 0)
                x->engine->list_first = true;
        x->rec.attempts++;
        x->retry_ms = MAX(jittered_backoff_ms(x->rec.attempts, ENGINE_RETRY_BASE_MS, ENGINE_RETRY_MAX_MS),
                          ar->retry_after_ms);
        record_set_result(&x->rec, maybe_created ? RECORD_RESULT_UNKNOWN : RECORD_RESULT_RETRYING, ar);
        x->rec.next_attempt_at_ms = now_realtime_ms() + x->retry_ms;
        record_save(x->engine, &x->rec);
        if (!maybe_created)
                resolve_intent(x->engine, op->intent_id, ar->sent ? "retry-later" : "not-sent", op->name);
        fb_add(&x->fb, "ATTEMPT", log_int(x->attempt_buf, x->rec.attempts));
        fb_add(&x->fb, "RETRY_IN_MS", log_int(x->retry_buf, x->retry_ms));
        if (x->engine->stopping)
                log_fields(LOG_WARNING, MESSAGE_CREATE_RETRY, x->fb.f,
                           "Create of notebook %s cut short by the stop (%s); outcome unknown: the next run lists first",
                           op->name, strempty(ar->message));
        else
                log_fields(LOG_WARNING, MESSAGE_CREATE_RETRY, x->fb.f, "Create of notebook %s failed (%s)%s; retrying in %lld ms",
                           op->name, strempty(ar->message), maybe_created ? ", outcome unknown: will list first" : "",
                           (long long) x->retry_ms);
        return CREATE_RETRY;
}

/* One handler per answer class (api_classify() is the one place that decides it). */
static CreateNext (*const create_handlers[_API_CLASS_MAX])(CreateAnswer *x) = {
        [API_CLASS_OK] = create_accepted,
        [API_CLASS_ALREADY_EXISTS] = create_exists,
        [API_CLASS_NOT_FOUND] = create_rejected,
        [API_CLASS_PERMANENT] = create_rejected,
        [API_CLASS_FORBIDDEN] = create_rejected,
        [API_CLASS_AUTH] = create_auth_refused,
        [API_CLASS_ACCOUNT_FROZEN] = create_frozen,
        [API_CLASS_THROTTLED] = create_throttled,
        [API_CLASS_TRANSIENT] = create_retry,
        [API_CLASS_UNKNOWN_OUTCOME] = create_retry,
};

static void handle_create_result(const ApiResult *ar, const RemoteInstance *inst, void *userdata) {
        Op *op = userdata;
        Engine *e = op->engine;
        op->in_request = false;
        if (ar->error == -ECANCELED && !ar->sent) {
                /* Cut short (deadline, stop) before it left: nothing happened remotely, and
                 * the record keeps the last real answer. */
                resolve_intent(e, op->intent_id, "not-sent", op->name);
                standing_set(e, op->name, STANDING_WAITING);
                op_finish(op);
                return;
        }
        _cleanup_(create_answer_done) CreateAnswer x = { .engine = e, .op = op, .ar = ar, .instance = inst };
        int r = record_load(e, op->name, &x.rec);
        if (r < 0) {
                note_state_error(e, r, "load", op->name);
                op_finish(op);
                return;
        }
        (void) strdup_replace(&x.rec.spec_hash, op->spec_hash);
        fb_add(&x.fb, "NOTEBOOK", op->name);
        fb_api(&x.fb, ar, x.http_buf);
        fb_add(&x.fb, "DURATION_MS", log_int(x.dur_buf, now_monotonic_ms() - op->started_mono_ms));
        if ((unsigned) ar->class < _API_CLASS_MAX)
                count_outcome(e, METRICS_CREATES, op->name, create_result_label[ar->class], ar->error_code);

        switch ((unsigned) ar->class < _API_CLASS_MAX ? create_handlers[ar->class](&x) : create_retry(&x)) {
        case CREATE_HANDLED:
                engine_maybe_settled(e);
                break;
        case CREATE_DONE:
                op_finish(op);
                break;
        case CREATE_RETRY:
                standing_set(e, op->name, STANDING_RETRYING);
                op_detach(op);
                schedule_pass_at(e, x.retry_ms);
                engine_maybe_settled(e);
                break;
        }
}

/* An answer frees a place in the window: the next queued create takes it (or, when the
 * answer paused sending, the queue is let go). */
static void on_create_result(ApiClient *c, const ApiResult *ar, const RemoteInstance *inst, void *userdata) {
        (void) c;
        Engine *e = ((Op *) userdata)->engine;
        e->creates_out--;
        handle_create_result(ar, inst, userdata);
        feed_creates(e, false);
}

/* No intent could be made durable, so no create may leave: say so in STATUS= and try
 * again with the next pass. */
static void pause_for_state_error(Engine *e) {
        e->state_paused_until_mono_ms = now_monotonic_ms() + ENGINE_LIST_RETRY_MAX_MS;
        schedule_pass_at(e, ENGINE_LIST_RETRY_MAX_MS);
}

/* Write the intents for every create in one durable transaction, then send them all:
 * an intent is on disk before its POST leaves. */
/* Forget ops whose intents were never made durable (nothing was sent for them). */
static void drop_unsent_ops(Engine *e, Op **ops, size_t n) {
        for (size_t i = 0; i < n; i++) {
                hashmap_remove(e->ops, ops[i]->name);
                op_free(ops[i]);
        }
}

/* One op and one create intent per name, in one transaction: ops[] and specs[] get the
 * names that may be sent. Returns how many, or a negative errno when none may be (the
 * transaction failed: without a durable intent nothing is sent). */
static int record_create_intents(Engine *e, const Action *const *creates, size_t n, Op **ops,
                                 const NotebookSpec **specs) {
        int r = store_begin_durable(e->store);
        if (r < 0) {
                note_state_error(e, r, "begin a transaction", NULL);
                return r;
        }
        size_t k = 0;
        int64_t now = now_realtime_ms();
        for (size_t i = 0; i < n; i++) {
                const Action *a = creates[i];
                Op *op;
                r = op_new(e, a->name, &op);
                if (r == -ENOMEM) {
                        log_error("Out of memory preparing the create of %s; the next pass tries again", a->name);
                        schedule_pass_at(e, ENGINE_LIST_RETRY_MAX_MS);
                }
                if (r < 0)
                        continue;   /* -EBUSY: work for this name is already in flight */
                memcpy(op->spec_hash, a->spec_hash, sizeof op->spec_hash);
                op->workspace_id = strdup(plan_workspace_of(a->spec, NULL));
                r = op->workspace_id ? store_add_intent(e->store, a->name, a->spec_hash, now, &op->intent_id)
                                     : -ENOMEM;
                if (r < 0) {
                        note_state_error(e, r, "write the create intent", a->name);
                        hashmap_remove(e->ops, a->name);
                        op_free(op);
                        pause_for_state_error(e);
                        continue;
                }
                specs[k] = a->spec;
                ops[k++] = op;
        }
        r = store_commit(e->store);
        if (r < 0) {
                note_state_error(e, r, "commit the create intents", NULL);
                (void) store_rollback(e->store);
                drop_unsent_ops(e, ops, k);
                return r;
        }
        e->state_paused_until_mono_ms = 0;   /* intents are being written again */
        return (int) k;
}

/* Hand one queued create to the client; CREATE_SENT as it is handed over. */
static void send_queued_create(Engine *e, Op *op) {
        const NotebookSpec *spec = op->spec;
        op->spec = NULL;
        int r = api_create(e->api, spec, on_create_result, op);
        if (r < 0) {
                log_warning_errno(r, "Cannot send the create of %s: %m", op->name);
                resolve_intent(e, op->intent_id, "not-sent", op->name);
                standing_set(e, op->name, STANDING_WAITING);
                hashmap_remove(e->ops, op->name);
                op_free(op);
                schedule_pass_at(e, ENGINE_LIST_RETRY_MAX_MS);
                return;
        }
        op->in_request = true;
        e->creates_out++;
        log_fields(LOG_INFO, MESSAGE_CREATE_SENT,
                   LOG_FIELDS({ "NOTEBOOK", op->name }, { "CONFIG_FILE", spec->file },
                              { "FLAVOR", spec->flavor }, { "PROFILE_ID", spec->profile_id }),
                   "Creating notebook %s (%s, %s)", op->name, spec->profile_id, spec->flavor);
}

/* A queued create let go: nothing was sent, the next pass plans the name again. */
static void queued_create_drop(Engine *e, Op *op) {
        resolve_intent(e, op->intent_id, "not-sent", op->name);
        standing_set(e, op->name, STANDING_WAITING);
        hashmap_remove(e->ops, op->name);
        op_free(op);
}

/* The desired set is being replaced by l: a queued create whose manifest is unchanged
 * keeps its place, pointing at the new copy; the others are let go. */
static void requeue_creates(Engine *e, const SpecList *l) {
        _cleanup_(hashmap_freep) Hashmap *by_name = NULL;
        if (!e->queue_head)
                return;
        int r = hashmap_new(&by_name);
        for (size_t i = 0; r >= 0 && i < l->n; i++)
                r = hashmap_put(by_name, l->items[i]->name, l->items[i]);
        Op *head = NULL, *tail = NULL, *next;
        for (Op *op = e->queue_head; op; op = next) {
                next = op->queue_next;
                op->queue_next = NULL;
                const NotebookSpec *spec = r >= 0 ? hashmap_get(by_name, op->name) : NULL;
                char hash[SPEC_HASH_HEX_LEN + 1];
                if (!spec || spec_hash(spec, hash) < 0 || !streq(hash, op->spec_hash)) {
                        queued_create_drop(e, op);
                        continue;
                }
                op->spec = spec;
                if (tail)
                        tail->queue_next = op;
                else
                        head = op;
                tail = op;
        }
        e->queue_head = head;
        e->queue_tail = tail;
}

/* Keep the client's queue at ENGINE_CREATE_WINDOW creates. When nothing may be sent
 * (stopping, credentials refused, account frozen) or drop_all, the queued ones are let
 * go instead: nothing was sent for them, and the next pass plans them again. */
static void feed_creates(Engine *e, bool drop_all) {
        bool blocked = drop_all || e->stopping || auth_paused(e) || e->frozen_until_mono_ms > now_monotonic_ms();
        bool dropped = false;
        while (e->queue_head && (blocked || e->creates_out < ENGINE_CREATE_WINDOW)) {
                Op *op = e->queue_head;
                e->queue_head = op->queue_next;
                if (!e->queue_head)
                        e->queue_tail = NULL;
                op->queue_next = NULL;
                if (!blocked) {
                        send_queued_create(e, op);
                        continue;
                }
                queued_create_drop(e, op);
                dropped = true;
        }
        if (dropped)
                engine_maybe_settled(e);   /* `once` may be done now */
}

/* Queue each create whose intent is durable, and send what the window allows. */
static void send_recorded_creates(Engine *e, Op **ops, const NotebookSpec **specs, size_t n) {
        for (size_t i = 0; i < n; i++) {
                ops[i]->spec = specs[i];
                if (e->queue_tail)
                        e->queue_tail->queue_next = ops[i];
                else
                        e->queue_head = ops[i];
                e->queue_tail = ops[i];
                standing_set(e, ops[i]->name, STANDING_PENDING);
        }
        feed_creates(e, false);
}

static void send_creates(Engine *e, const Action *const *creates, size_t n) {
        if (n == 0 || e->stopping || auth_paused(e))
                return;
        int64_t frozen_ms = e->frozen_until_mono_ms - now_monotonic_ms();
        if (frozen_ms > 0) {
                /* The account is frozen: these wait with the one that found out. */
                schedule_pass_at(e, frozen_ms);
                return;
        }
        Op **ops = calloc(n, sizeof(Op *));
        const NotebookSpec **specs = calloc(n, sizeof(NotebookSpec *));
        if (!ops || !specs) {
                free(ops);
                free(specs);
                log_error("Out of memory preparing %zu creates; the next pass in %d s tries again", n,
                          ENGINE_LIST_RETRY_MAX_MS / 1000);
                schedule_pass_at(e, ENGINE_LIST_RETRY_MAX_MS);
                return;
        }
        int k = record_create_intents(e, creates, n, ops, specs);
        if (k < 0)
                pause_for_state_error(e);
        else
                send_recorded_creates(e, ops, specs, (size_t) k);
        free(ops);
        free(specs);
}

/* ---------------------------------------------------------------- a pass */

/* 6301 for a name that no listing of its workspace shows: once per manifest version,
 * with what to do; the record says "conflict" so that status and once show it. */
static void report_name_conflict(Engine *e, const Action *a, const char *why) {
        char key[SPEC_HASH_HEX_LEN + 16];
        snprintf(key, sizeof key, "conflict:%s", a->spec_hash);
        if (!report_once(e, a->name, key))
                return;
        const char *ws = plan_workspace_of(a->spec, a->record);
        log_fields(LOG_ERR, MESSAGE_NAME_CONFLICT,
                   LOG_FIELDS({ "NOTEBOOK", a->name }, { "WORKSPACE_ID", ws },
                              { "CONFIG_FILE", a->spec ? a->spec->file : NULL },
                              { "API_ERROR_CODE", a->record ? a->record->error_code : NULL },
                              { "REQUEST_ID", a->record ? a->record->request_id : NULL }),
                   "Notebook %s: %s; not sent again until the manifest changes or a listing shows the name",
                   a->name, strempty(why));
        if (a->record && !streq_ptr(a->record->result, RECORD_RESULT_CONFLICT)) {
                _cleanup_(instance_record_done) InstanceRecord rec = {};
                if (instance_record_copy(a->record, &rec) >= 0) {
                        (void) strdup_replace(&rec.result, RECORD_RESULT_CONFLICT);
                        record_save(e, &rec);
                }
        }
}

/* One pass acting on its plan: what the handlers share. */
typedef struct PassActions {
        Engine *engine;
        const CreateIntent *intents;    /* open ones, as the plan saw them */
        size_t n_intents;
        const Action **creates;         /* collected, sent together after the loop */
        size_t n_creates;
        int64_t now_ms;                 /* wall clock */
        int64_t next_retry_ms;          /* earliest backoff end (wall clock), 0 = none */
        int64_t next_prune_ms;          /* earliest absence past its grace (wall clock), 0 = none */
        bool relist;                    /* a workspace must be listed again: one more pass */
        bool prune_relist;              /* a deletion is due, but no current listing shows it */
} PassActions;

/* Where the plan puts a desired name. A create is WAITING until it is on the wire. */
static EngineStanding standing_of_action(const Action *a) {
        InstanceStatusClass remote = a->remote ? instance_status_class(a->remote->status) : STATUS_CLASS_UNKNOWN;
        switch (a->kind) {
        case ACTION_OK:
                return STANDING_RUNNING;
        case ACTION_FAILED:
                return STANDING_FAILED;
        case ACTION_BLOCKED:
                return STANDING_REJECTED;
        case ACTION_RETRY_LATER:
                return STANDING_RETRYING;
        case ACTION_PENDING:
                return STANDING_PENDING;
        case ACTION_DRIFT:
                return a->status_class == STATUS_CLASS_RUNNING || a->status_class == STATUS_CLASS_STOPPED
                               ? STANDING_RUNNING
                               : STANDING_PENDING;
        case ACTION_START:
        case ACTION_STOP:
                return STANDING_PENDING;
        case ACTION_ADOPT:
                return remote == STATUS_CLASS_RUNNING || remote == STATUS_CLASS_STOPPED ? STANDING_RUNNING
                       : remote == STATUS_CLASS_FAILED                                 ? STANDING_FAILED
                                                                                       : STANDING_PENDING;
        default:   /* CREATE, WAIT */
                return STANDING_WAITING;
        }
}

/* Work in flight for the name, or finished after this pass's listing was taken: the
 * listing cannot judge it (and its standing is the one that work set). */
static bool name_busy(const Engine *e, const char *name) {
        return hashmap_contains(e->ops, name) || hashmap_contains(e->touched, name);
}

/* Every desired name's standing as the plan sees it, and the tally. On ENOMEM the
 * previous standings stay (they are still moved by answers), only less fresh. */
static void standings_from_plan(Engine *e, const Plan *plan) {
        Hashmap *m = NULL;
        EngineCounts c = {};
        int r = hashmap_new(&m);
        for (size_t i = 0; r >= 0 && i < plan->n; i++) {
                const Action *a = &plan->actions[i];
                if (a->kind == ACTION_GONE)
                        c.gone++;
                if (a->kind == ACTION_DRIFT)
                        c.drift++;
                if (!a->spec)
                        continue;
                void *busy = name_busy(e, a->name) ? hashmap_get(e->standing, a->name) : NULL;
                EngineStanding st = busy ? PTR_STANDING(busy) : standing_of_action(a);
                r = hashmap_put(m, a->name, STANDING_PTR(st));
                (*tally_slot(&c, st))++;
        }
        if (r < 0) {
                hashmap_free(m);
                log_warning("Out of memory: notebook counts are refreshed by a later pass");
                return;
        }
        hashmap_free(e->standing);
        e->standing = m;
        e->counts = c;
}

/* Keep the recorded status (and workspace) current: the poller logs the transitions it
 * follows; this catches the ones between passes. */
static void record_sync_remote(Engine *e, const Action *a) {
        if (!a->record || !a->remote || !a->remote->status || !a->record->instance_id ||
            !streq_ptr(a->record->instance_id, a->remote->id) ||
            (streq_ptr(a->record->status, a->remote->status) && a->record->workspace_id))
                return;
        _cleanup_(instance_record_done) InstanceRecord rec = {};
        if (instance_record_copy(a->record, &rec) < 0)
                return;
        if (!streq_ptr(rec.status, a->remote->status))
                log_fields(LOG_INFO, MESSAGE_STATUS_CHANGED,
                           LOG_FIELDS({ "NOTEBOOK", a->name }, { "INSTANCE_ID", rec.instance_id },
                                      { "STATUS", a->remote->status }, { "PREVIOUS_STATUS", rec.status }),
                           "Notebook %s is now %s (was %s)", a->name, a->remote->status, strempty(rec.status));
        (void) strdup_replace(&rec.status, a->remote->status);
        if (!rec.workspace_id)
                rec.workspace_id = xstrdup(a->remote->workspace_id);
        record_save(e, &rec);
}

/* Keep what the record says of its manifest (tenant, state:) current when only the
 * manifest changed: status reads it. record_save fills both in. */
static void record_sync_desired(Engine *e, const Action *a) {
        if (!a->record || !a->spec || !record_desired_stale(a->record, a->spec))
                return;
        _cleanup_(instance_record_done) InstanceRecord rec = {};
        if (instance_record_copy(a->record, &rec) >= 0)
                record_save(e, &rec);
}

static void resolve_intents_of(PassActions *p, const char *name, const char *outcome) {
        for (size_t j = 0; j < p->n_intents; j++)
                if (streq(p->intents[j].name, name))
                        resolve_intent(p->engine, p->intents[j].id, outcome, name);
}

static void act_create(PassActions *p, const Action *a, const char *why) {
        (void) why;
        Engine *e = p->engine;
        if (a->reason == REASON_MISSING_REMOTELY && a->record && a->record->instance_id) {
                log_fields(LOG_WARNING, MESSAGE_INSTANCE_MISSING,
                           LOG_FIELDS({ "NOTEBOOK", a->name }, { "INSTANCE_ID", a->record->instance_id }),
                           "Notebook %s (instance %s) is missing remotely; creating it again", a->name,
                           a->record->instance_id);
                /* Forget the old id: the new create's outcome (a rejection, a backoff) must
                 * stand on its own, not behind a dead id. */
                _cleanup_(instance_record_done) InstanceRecord rec = {};
                if (instance_record_copy(a->record, &rec) >= 0) {
                        rec.instance_id = mfree(rec.instance_id);
                        rec.status = mfree(rec.status);
                        record_set_result(&rec, RECORD_RESULT_GONE, NULL);
                        rec.attempts = 0;
                        rec.next_attempt_at_ms = 0;
                        record_save(e, &rec);
                }
        }
        if (a->intent)
                resolve_intents_of(p, a->name, "absent");
        if (p->creates)
                p->creates[p->n_creates++] = a;
        else {
                log_error("Out of memory: the create of %s waits for the next pass", a->name);
                schedule_pass_at(e, ENGINE_LIST_RETRY_MAX_MS);
        }
}

static void act_adopt(PassActions *p, const Action *a, const char *why) {
        (void) why;
        Engine *e = p->engine;
        _cleanup_(instance_record_done) InstanceRecord rec = {};
        if (record_load(e, a->name, &rec) < 0)
                return;
        (void) strdup_replace(&rec.instance_id, a->remote->id);
        (void) strdup_replace(&rec.status, a->remote->status);
        (void) strdup_replace(&rec.spec_hash, a->spec_hash);
        (void) strdup_replace(&rec.workspace_id, a->remote->workspace_id);
        record_set_result(&rec, RECORD_RESULT_ADOPTED, NULL);
        rec.attempts = 0;
        rec.next_attempt_at_ms = 0;
        record_save(e, &rec);
        resolve_intents_of(p, a->name, "adopted");
        count_outcome(e, METRICS_ADOPTIONS, a->name, NULL, NULL);
        log_fields(LOG_NOTICE, MESSAGE_ADOPTED,
                   LOG_FIELDS({ "NOTEBOOK", a->name }, { "INSTANCE_ID", a->remote->id }, { "STATUS", a->remote->status }),
                   "Adopted notebook %s: instance %s already exists (%s)", a->name, strempty(a->remote->id),
                   strempty(a->remote->status));
        report_forget(e, a->name);
        InstanceStatusClass cls = instance_status_class(a->remote->status);
        ApiCall call = state_call_for(e, a->name, cls);
        Op *op;
        if (cls == STATUS_CLASS_PENDING || cls == STATUS_CLASS_UNKNOWN)
                follow_instance(e, a->name, a->remote->id, a->remote->status);
        else if (call != _API_CALL_MAX && (op = lifecycle_op(e, a, call == API_CALL_START ? OP_START : OP_STOP)))
                state_action(op, call, a->remote->status);   /* adopted, but not as the manifest wants it */
}

static void act_pending(PassActions *p, const Action *a, const char *why) {
        (void) why;
        if (a->follow)
                follow_instance(p->engine, a->name, a->remote ? a->remote->id : a->record ? a->record->instance_id : NULL,
                                a->status);
}

static void act_blocked(PassActions *p, const Action *a, const char *why) {
        Engine *e = p->engine;
        if (a->reason == REASON_NAME_CONFLICT) {
                report_name_conflict(e, a, why);
                return;
        }
        char key[SPEC_HASH_HEX_LEN + 16];
        snprintf(key, sizeof key, "rejected:%s", a->spec_hash);
        if (report_once(e, a->name, key))
                log_fields(LOG_WARNING, MESSAGE_CREATE_FAILED,
                           LOG_FIELDS({ "NOTEBOOK", a->name },
                                      { "HTTP_STATUS", a->record && a->record->http_status ? LOG_INT(a->record->http_status) : NULL },
                                      { "API_ERROR_CODE", a->record ? a->record->error_code : NULL },
                                      { "API_ERROR_MSG", a->record ? a->record->error_msg : NULL }),
                           "Notebook %s: %s", a->name, strempty(why));
}

static void act_retry_later(PassActions *p, const Action *a, const char *why) {
        (void) why;
        int64_t at = a->record ? a->record->next_attempt_at_ms : 0;
        if (at > p->now_ms && (p->next_retry_ms == 0 || at < p->next_retry_ms))
                p->next_retry_ms = at;
}

static void act_drift(PassActions *p, const Action *a, const char *why) {
        Engine *e = p->engine;
        char key[SPEC_HASH_HEX_LEN + 32];
        snprintf(key, sizeof key, "drift:%s:%u", a->spec_hash, a->drift_fields);
        if (report_once(e, a->name, key))
                log_fields(LOG_WARNING, MESSAGE_DRIFT,
                           LOG_FIELDS({ "NOTEBOOK", a->name }, { "CONFIG_FILE", a->spec ? a->spec->file : NULL },
                                      { "INSTANCE_ID", a->record ? a->record->instance_id : NULL }),
                           "Notebook %s differs from its manifest (%s); the API cannot change it in place", a->name,
                           strempty(why));
        if (a->follow)
                follow_instance(e, a->name, a->record ? a->record->instance_id : NULL, a->status);
}

static void act_failed(PassActions *p, const Action *a, const char *why) {
        (void) why;
        char key[96];
        snprintf(key, sizeof key, "failed:%s", strempty(a->status));
        if (report_once(p->engine, a->name, key))
                log_fields(LOG_ERR, MESSAGE_INSTANCE_FAILED,
                           LOG_FIELDS({ "NOTEBOOK", a->name }, { "STATUS", a->status },
                                      { "INSTANCE_ID", a->remote ? a->remote->id : a->record ? a->record->instance_id : NULL },
                                      { "FAILED_REASON", a->remote ? a->remote->failed_reason : NULL }),
                           "Notebook %s is in failed status %s", a->name, strempty(a->status));
}

/* Reported again when prune's verdict on it changes (the grace started, the cap held). */
static void act_gone(PassActions *p, const Action *a, const char *why) {
        Engine *e = p->engine;
        char key[32];
        snprintf(key, sizeof key, "gone:%s", prune_hold_to_string(a->prune_hold));
        if (report_once(e, a->name, key))
                log_fields(LOG_NOTICE, MESSAGE_GONE,
                           LOG_FIELDS({ "NOTEBOOK", a->name }, { "INSTANCE_ID", a->record ? a->record->instance_id : NULL },
                                      { "PRUNE_HOLD", a->prune_hold ? prune_hold_to_string(a->prune_hold) : NULL }),
                           "Notebook %s is recorded but no longer in the manifests: %s", a->name, strempty(why));
        /* the next absence to pass its grace is judged by a full pass at that time */
        if (a->prune_hold == PRUNE_HOLD_GRACE && a->prune_due_ms > 0 &&
            (p->next_prune_ms == 0 || a->prune_due_ms < p->next_prune_ms))
                p->next_prune_ms = a->prune_due_ms;
        if (a->prune_hold == PRUNE_HOLD_UNLISTED)
                p->prune_relist = true;
}

static void act_state(PassActions *p, const Action *a, const char *why) {
        Op *op = lifecycle_op(p->engine, a, a->kind == ACTION_START ? OP_START : OP_STOP);
        if (op)
                state_action(op, a->kind == ACTION_START ? API_CALL_START : API_CALL_STOP, a->status);
        if (a->drift_fields)
                act_drift(p, a, why);   /* its own report; follows nothing: the op is busy */
}

/* prune: every guard held (lib/prune.h). A running instance is stopped first. */
static void act_delete(PassActions *p, const Action *a, const char *why) {
        Op *op = lifecycle_op(p->engine, a, OP_DELETE);
        if (!op)
                return;
        char since[LOG_INT_BUFSIZE];
        log_fields(LOG_WARNING, MESSAGE_PRUNE_DELETING,
                   LOG_FIELDS({ "NOTEBOOK", a->name }, { "INSTANCE_ID", op->instance_id }, { "STATUS", a->status },
                              { "UNDESIRED_SINCE", log_int(since, a->record->undesired_since_ms) }),
                   "Deleting notebook %s (prune): %s", a->name, strempty(why));
        bool stopped = a->status_class == STATUS_CLASS_STOPPED || a->status_class == STATUS_CLASS_FAILED;
        lifecycle_send(op, stopped ? API_CALL_DELETE : API_CALL_STOP);
}

static void act_ok(PassActions *p, const Action *a, const char *why) {
        (void) why;
        if (!a->record || a->remote)
                report_forget(p->engine, a->name);   /* a condition that cleared is reported again if it comes back */
}

/* WAIT: an open intent the listing (an earlier one) cannot settle, or the name's
 * workspace was not listed (its retry is the listing's backoff). The first is settled
 * by listing its workspace again, right after this pass. */
static void act_wait(PassActions *p, const Action *a, const char *why) {
        (void) why;
        if (a->reason != REASON_INTENT_OPEN)
                return;
        relist_workspace(p->engine, plan_workspace_of(a->spec, a->record));
        p->relist = true;
}

/* An open intent attached to an action a listing judged, of a kind whose handler does
 * not settle it (CREATE and ADOPT do): the create it stands for has its outcome on
 * disk already (a process killed between saving the record and resolving the intent
 * leaves exactly this), or the listing shows no instance for it. Left open, it would
 * sit in `status` forever and make every later pass of the name list first. */
static void settle_leftover_intent(PassActions *p, const Action *a) {
        if (!a->intent || !a->listed || a->kind == ACTION_WAIT || a->kind == ACTION_CREATE ||
            a->kind == ACTION_ADOPT)
                return;
        resolve_intents_of(p, a->name, a->remote ? "recorded" : "absent");
}

/* One handler per action kind: a new kind is a new row. */
typedef void (*ActionHandler)(PassActions *p, const Action *a, const char *why);
static const ActionHandler action_handlers[_ACTION_KIND_MAX] = {
        [ACTION_CREATE] = act_create,   [ACTION_ADOPT] = act_adopt,
        [ACTION_WAIT] = act_wait,       [ACTION_BLOCKED] = act_blocked,
        [ACTION_RETRY_LATER] = act_retry_later, [ACTION_DRIFT] = act_drift,
        [ACTION_FAILED] = act_failed,   [ACTION_PENDING] = act_pending,
        [ACTION_OK] = act_ok,           [ACTION_GONE] = act_gone,
        [ACTION_START] = act_state,     [ACTION_STOP] = act_state,
        [ACTION_DELETE] = act_delete,
};

/* A pass whose deletions prune held as a whole (the cap, or a tree that is not whole):
 * an error naming the count and the first names, once per distinct situation, and
 * STATUS= says it while it lasts. */
static void note_prune_held(Engine *e, const Plan *plan) {
        _cleanup_free_ char *names = NULL;
        size_t n = 0, shown = 0;
        const char *tree_problem = NULL;   /* the first held name's part of the tree */
        int64_t now_ms = now_realtime_ms();
        for (size_t i = 0; i < plan->n; i++) {
                const Action *a = &plan->actions[i];
                /* held: over the cap, or due (marked, past the grace) while the tree is
                 * not whole */
                bool held = a->kind == ACTION_GONE &&
                            (a->prune_hold == PRUNE_HOLD_CAP ||
                             (a->prune_hold == PRUNE_HOLD_TREE && a->prune_due_ms > 0 && now_ms >= a->prune_due_ms));
                if (!held)
                        continue;
                if (!tree_problem && a->prune_hold == PRUNE_HOLD_TREE)
                        tree_problem = tree_problem_of(e, a->record ? a->record->tenant : NULL);
                n++;
                if (shown < ENGINE_PRUNE_NAMES_SHOWN) {
                        char *t = xasprintf("%s%s%s", strempty(names), names ? ", " : "", a->name);
                        if (t) {
                                free(names);
                                names = t;
                                shown++;
                        }
                }
        }
        e->prune_held = mfree(e->prune_held);
        if (n == 0) {
                report_forget(e, REPORT_KEY_PRUNE);
                return;
        }
        const char *reason = plan->prune_capped ? "cap" : "tree";
        if (plan->prune_capped && plan->prune_confirm > 0)
                e->prune_held = xasprintf("prune held: %zu deletions due, %u confirmed", n, plan->prune_confirm);
        else if (plan->prune_capped)
                e->prune_held = xasprintf("prune held: %zu deletions due, over prune_max_per_pass %u", n, plan->prune_max);
        else
                e->prune_held = xasprintf("prune held: the manifests tree is not whole (%s)", strempty(tree_problem));
        char key[96];
        snprintf(key, sizeof key, "%s:%zu", reason, n);
        if (!report_once(e, REPORT_KEY_PRUNE, key))
                return;
        char due[LOG_INT_BUFSIZE], max[LOG_INT_BUFSIZE];
        log_fields(LOG_ERR, MESSAGE_PRUNE_HELD,
                   LOG_FIELDS({ "PRUNE_DUE", log_int(due, n) }, { "PRUNE_MAX", log_int(max, plan->prune_max) },
                              { "PRUNE_REASON", reason }),
                   "Prune deletes nothing this pass: %s; the %zu instance%s: %s%s", strempty(e->prune_held), n,
                   n == 1 ? "" : "s", strempty(names), n > shown ? ", ..." : "");
}

/* The handlers that log the action's description (the others ignore their why). */
static bool action_needs_why(const Action *a) {
        switch (a->kind) {
        case ACTION_BLOCKED:
        case ACTION_DRIFT:
        case ACTION_GONE:
        case ACTION_DELETE:
                return true;
        case ACTION_START:
        case ACTION_STOP:
                return a->drift_fields != 0;   /* act_state reports the drift too */
        default:
                return false;
        }
}

static void act_on_plan(Engine *e, const Plan *plan, const CreateIntent *intents, size_t n_intents) {
        PassActions p = {
                .engine = e,
                .intents = intents,
                .n_intents = n_intents,
                .creates = calloc(plan->n ? plan->n : 1, sizeof(Action *)),
                .now_ms = now_realtime_ms(),
        };
        standings_from_plan(e, plan);

        for (size_t i = 0; i < plan->n; i++) {
                const Action *a = &plan->actions[i];
                /* An outcome that needs another decision schedules its own pass. */
                if (name_busy(e, a->name))
                        continue;
                if (a->listed)   /* an earlier listing is older than the record */
                        record_sync_remote(e, a);
                record_sync_desired(e, a);
                /* described only for the handlers that say it: an edit's pass over 10,000
                 * names that are fine formats no line */
                _cleanup_free_ char *why = action_needs_why(a) ? action_describe(a, p.now_ms) : NULL;
                action_handlers[a->kind](&p, a, why);
                settle_leftover_intent(&p, a);
        }

        send_creates(e, p.creates, p.n_creates);
        free(p.creates);
        if (p.next_retry_ms > 0)
                schedule_pass_at(e, p.next_retry_ms - p.now_ms);
        if (p.relist)
                e->pass_again = true;
        note_prune_held(e, plan);
        if (e->options.daemon && p.next_prune_ms > 0)
                schedule_full_pass_at(e, p.next_prune_ms - p.now_ms);
        /* (a full pass whose listing failed leaves it to the listing's own retry) */
        if (e->options.daemon && p.prune_relist && e->pass_kind == ENGINE_PASS_INCREMENTAL)
                schedule_full_pass_at(e, 0);
}

static void pass_finish(Engine *e, const char *outcome) {
        const char *kind = engine_pass_kind_to_string(e->pass_kind);
        metrics_set(e->metrics, METRICS_PASS_DURATION, NULL, now_monotonic_ms() - e->pass_started_mono_ms);
        char desired[LOG_INT_BUFSIZE], running[LOG_INT_BUFSIZE], pending[LOG_INT_BUFSIZE],
                waiting[LOG_INT_BUFSIZE], failed[LOG_INT_BUFSIZE], rejected[LOG_INT_BUFSIZE],
                retrying[LOG_INT_BUFSIZE], drift[LOG_INT_BUFSIZE], gone[LOG_INT_BUFSIZE];
        log_fields(LOG_INFO, MESSAGE_PASS_FINISHED,
                   LOG_FIELDS({ "PASS_KIND", kind }, { "DESIRED", log_int(desired, e->desired.n) },
                              { "RUNNING", log_int(running, e->counts.running) },
                              { "PENDING", log_int(pending, e->counts.pending) },
                              { "WAITING", log_int(waiting, e->counts.waiting) },
                              { "FAILED", log_int(failed, e->counts.failed) },
                              { "REJECTED", log_int(rejected, e->counts.rejected) },
                              { "RETRYING", log_int(retrying, e->counts.retrying) },
                              { "DRIFT", log_int(drift, e->counts.drift) },
                              { "GONE", log_int(gone, e->counts.gone) }),
                   "Pass (%s) %s: %zu desired, %zu running, %zu pending, %zu waiting, %zu failed, %zu rejected, "
                   "%zu retrying, %zu drifted, %zu gone",
                   kind, outcome, e->desired.n, e->counts.running, e->counts.pending, e->counts.waiting, e->counts.failed,
                   e->counts.rejected, e->counts.retrying, e->counts.drift, e->counts.gone);
        e->pass_listing = false;
        /* names touched during this listing are judged by the next one */
        Hashmap *fresh = NULL;
        if (hashmap_size(e->touched) > 0 && hashmap_new(&fresh) >= 0) {
                hashmap_free(e->touched);
                e->touched = fresh;
        }
        if (e->pass_again && !e->stopping) {
                EnginePassKind again = e->pass_again_full ? ENGINE_PASS_FULL : ENGINE_PASS_INCREMENTAL;
                e->pass_again = e->pass_again_full = false;
                pass_start(e, again);
                return;
        }
        engine_maybe_settled(e);
}

/* Forget the pass's listings (after planning, or when the pass is given up). */
static void listings_clear(Engine *e) {
        remote_instance_list_clear(&e->listed);
        e->pass_ws = hashmap_free(e->pass_ws);
        for (size_t i = 0; i < e->n_unlisted; i++)
                free(e->unlisted[i]);
        e->unlisted = mfree(e->unlisted);
        e->n_unlisted = 0;
        e->listing_throttled = false;
        e->listing_retry_ms = 0;
        e->listing_lost = false;
        e->listing_error = mfree(e->listing_error);
}

/* This pass's listing of workspace_id failed (the string is taken). */
static void listing_failed(Engine *e, char *workspace_id) {
        char **t = workspace_id ? reallocarray(e->unlisted, e->n_unlisted + 1, sizeof(char *)) : NULL;
        if (!t) {
                free(workspace_id);
                e->listing_lost = true;
                return;
        }
        e->unlisted = t;
        t[e->n_unlisted++] = workspace_id;
}

/* Forget every earlier listing: the next pass lists everything. */
static void known_forget(Engine *e) {
        remote_instance_list_clear(&e->known);
        hashmap_free(e->known_ws);
        hashmap_free(e->relist_ws);
        e->known_ws = e->relist_ws = NULL;
        if (hashmap_new(&e->known_ws) < 0 || hashmap_new(&e->relist_ws) < 0) {
                /* without the sets every pass is a full one (known_ws empty), and a
                 * relist request has nowhere to go: it is one anyway */
                e->known_ws = hashmap_free(e->known_ws);
                e->relist_ws = hashmap_free(e->relist_ws);
        }
}

static void relist_workspace(Engine *e, const char *workspace_id) {
        if (!e->relist_ws || hashmap_put(e->relist_ws, workspace_id ? workspace_id : "0", NULL) < 0)
                known_forget(e);   /* the next pass lists everything: that includes it */
}

static bool pass_listed(const Engine *e, const char *workspace_id) {
        if (!hashmap_contains(e->pass_ws, workspace_id))
                return false;
        for (size_t i = 0; i < e->n_unlisted; i++)
                if (streq(e->unlisted[i], workspace_id))
                        return false;
        return true;
}

/* Fold this pass's listings into what is known: each workspace it listed replaces its
 * earlier listing (a failed one is forgotten, so the next pass lists it again).
 * ret_fresh: the workspaces listed now (pointers into pass_ws, valid until
 * listings_clear). */
static int known_merge(Engine *e, const char ***ret_fresh, size_t *ret_n_fresh) {
        size_t n_ws = hashmap_size(e->pass_ws), n_fresh = 0;
        if (n_ws == 0 && e->listed.n == 0) {
                /* an edit's pass listed nothing: the known listing stands as it is (moving
                 * 10,000 items into a new list was about an eighth of an edit's pass under perf) */
                *ret_fresh = NULL;
                *ret_n_fresh = 0;
                return 0;
        }
        _cleanup_free_ const char **fresh = calloc(n_ws ?: 1, sizeof(*fresh));
        RemoteInstanceList merged = {};
        int r = fresh && e->known_ws ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < e->known.n; i++) {
                RemoteInstance *item = &e->known.items[i];
                if (hashmap_contains(e->pass_ws, item->workspace_id ? item->workspace_id : "0"))
                        continue;
                r = remote_instance_list_append(&merged, item);   /* moved */
        }
        /* By id: a deployment that ignores workspace_id lists everything every time. */
        for (size_t i = 0; r >= 0 && i < e->listed.n; i++)
                if (!remote_instance_list_find_id(&merged, e->listed.items[i].id))
                        r = remote_instance_list_append(&merged, &e->listed.items[i]);
        const char *key;
        void *unused;
        size_t it = 0;
        while (r >= 0 && hashmap_iterate(e->pass_ws, &it, &key, &unused))
                if (pass_listed(e, key)) {
                        fresh[n_fresh++] = key;
                        r = hashmap_put(e->known_ws, key, NULL);
                } else
                        (void) hashmap_remove(e->known_ws, key);
        remote_instance_list_clear(&e->known);
        remote_instance_list_clear(&e->listed);
        if (r < 0) {
                remote_instance_list_clear(&merged);
                known_forget(e);
                return r;
        }
        e->known = merged;
        *ret_fresh = TAKE_PTR(fresh);
        *ret_n_fresh = n_fresh;
        return 0;
}

/* Why the part of the tree a record's tenant owns is not whole (tenants:), else the
 * whole tree's problem; NULL when whole. */
static const char *tree_problem_of(const Engine *e, const char *tenant) {
        if (tenant && e->tenant_problems && hashmap_contains(e->tenant_problems, tenant))
                return hashmap_get(e->tenant_problems, tenant);
        return e->tree_problem;
}

static const char *tree_problem_cb(const char *tenant, void *userdata) {
        return tree_problem_of(userdata, tenant);
}

static void tenant_problems_free(Hashmap *m) {
        const char *k;
        void *v;
        size_t it = 0;
        while (m && hashmap_iterate(m, &it, &k, &v))
                free(v);
        hashmap_free(m);
}

/* What store_prune may do with a name this pass judged (store.h), or -1: leave it.
 * Every pass marks a name that left the tree (prune's grace counts from that mark)
 * and clears the mark of one that came back; only a full pass (full) lets a record
 * go. A tree that is not whole starts no mark: its "missing" names may only be
 * unreadable. */
static int prune_verdict(const Engine *e, const Action *a, bool full) {
        if (!a->record)
                return -1;
        /* Desired again: the mark goes now, whatever work the name has in flight, or
         * its next absence would be judged from the old one and skip the grace. */
        if (a->spec)
                return a->record->undesired_since_ms != 0 ? STORE_PRUNE_DESIRED : -1;
        /* In flight, or changed under this listing: the next pass judges it. */
        if (name_busy(e, a->name))
                return -1;
        if (tree_problem_of(e, a->record->tenant) && a->record->undesired_since_ms == 0)
                return -1;
        if (!full)
                return a->record->undesired_since_ms == 0 ? STORE_PRUNE_KEEP : -1;
        if (!a->listed)
                return STORE_PRUNE_KEEP;
        if (!a->record->instance_id)
                return STORE_PRUNE_GONE;
        if (a->remote)
                return instance_status_class(a->remote->status) == STATUS_CLASS_GONE ? STORE_PRUNE_GONE
                                                                                      : STORE_PRUNE_KEEP;
        /* Not in any listing. An older record without a workspace may live in one no
         * listing covered: it might still bill, so it stays. */
        return a->record->workspace_id ? STORE_PRUNE_GONE : STORE_PRUNE_KEEP;
}

/* A full pass (every workspace listed) ends by pruning the state database, so its size
 * follows the tree and the retention, not the history; any pass marks and unmarks. */
static void prune_state(Engine *e, const Plan *plan, bool full) {
        _cleanup_free_ StorePruneItem *items = calloc(plan->n ?: 1, sizeof(*items));
        if (!items) {
                log_warning("Out of memory: the state database is pruned after a later pass");
                return;
        }
        size_t n = 0;
        for (size_t i = 0; i < plan->n; i++) {
                int v = prune_verdict(e, &plan->actions[i], full);
                if (v >= 0)
                        items[n++] = (StorePruneItem) { .name = plan->actions[i].name, .verdict = v };
        }
        if (n == 0 && !full)
                return;   /* an edit that moved no mark writes nothing */
        StorePruneCounts c = {};
        /* only a full pass sweeps: a retention no row can be past */
        int64_t retention = full ? e->options.state_retention_ms : INT64_MAX / 4;
        int r = store_prune(e->store, items, n, now_realtime_ms(), retention, &c);
        if (r < 0) {
                note_state_error(e, r, "prune", NULL);
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (items[i].pruned)
                        report_forget(e, items[i].name);
        char records_buf[LOG_INT_BUFSIZE], intents_buf[LOG_INT_BUFSIZE];
        if (c.instances > 0 || c.intents > 0)
                log_fields(LOG_INFO, NULL,
                           LOG_FIELDS({ "PRUNED_RECORDS", log_int(records_buf, c.instances) },
                                      { "PRUNED_INTENTS", log_int(intents_buf, c.intents) },
                                      { "STATE_FILE", store_path(e->store) }),
                           "Pruned the state database: %zu record%s of notebooks gone from the manifests "
                           "and from the cloud, %zu resolved create intent%s",
                           c.instances, c.instances == 1 ? "" : "s", c.intents, c.intents == 1 ? "" : "s");
}

/* Plan against what the listings showed (this pass's, and for an incremental pass the
 * earlier ones), and act. */
static void pass_plan(Engine *e) {
        _cleanup_(plan_freep) Plan *plan = NULL;
        _cleanup_free_ const char **fresh = NULL;
        InstanceRecord *records = NULL;
        CreateIntent *intents = NULL;
        size_t n_records = 0, n_intents = 0, n_fresh = 0;
        int r = known_merge(e, &fresh, &n_fresh);
        if (r < 0) {
                log_error_errno(r, "Cannot keep the listings: %m; the next pass lists everything");
                schedule_pass_at(e, ENGINE_LIST_RETRY_MAX_MS);
                listings_clear(e);
                pass_finish(e, "failed (out of memory)");
                return;
        }
        r = store_list_instances(e->store, &records, &n_records);
        if (r >= 0)
                r = store_list_open_intents(e->store, &intents, &n_intents);
        if (r < 0) {
                note_state_error(e, r, "read the records", NULL);
                schedule_pass_at(e, ENGINE_LIST_RETRY_MAX_MS);
                instance_records_free(records, n_records);
                listings_clear(e);
                pass_finish(e, "failed (state database)");
                return;
        }
        RemoteView view = {
                .instances = &e->known,
                .unlisted = (const char *const *) e->unlisted,
                .n_unlisted = e->n_unlisted,
                .stale = e->pass_kind == ENGINE_PASS_INCREMENTAL,
                .fresh = fresh,
                .n_fresh = n_fresh,
        };
        r = plan_compute((const NotebookSpec *const *) e->desired.items, e->desired.n, records, n_records,
                         intents, n_intents, &view, now_realtime_ms(), &plan);
        if (r < 0) {
                log_error_errno(r, "Planning failed: %m");
                schedule_pass_at(e, ENGINE_LIST_RETRY_MAX_MS);
        } else {
                PrunePolicy policy = e->options.prune;
                policy.tree_problem = e->tree_problem;
                policy.tree_problem_of = tree_problem_cb;
                policy.userdata = e;
                plan_apply_prune(plan, &policy, now_realtime_ms());
                act_on_plan(e, plan, intents, n_intents);
                prune_state(e, plan, e->pass_kind == ENGINE_PASS_FULL && e->n_unlisted == 0 && !e->listing_lost);
                /* what "no successful pass for 30 minutes" alerts on: every listing the
                 * pass needed worked, and its plan was acted on */
                if (e->n_unlisted == 0 && !e->listing_lost)
                        metrics_set(e->metrics, METRICS_LAST_SUCCESSFUL_PASS, NULL, now_realtime_ms());
        }
        plan = plan_free(plan);
        instance_records_free(records, n_records);
        create_intents_free(intents, n_intents);
        const char *outcome = e->n_unlisted > 0 ? "finished (some workspaces not listed)" : "finished";
        /* cleared before the next pass (pass_finish may start it) has anything in them */
        listings_clear(e);
        pass_finish(e, outcome);
}

/* Give the pass up before planning: what it was to list is listed by the next one. */
static void pass_abandon(Engine *e, const char *outcome) {
        const char *key;
        void *unused;
        size_t it = 0;
        while (e->pass_kind == ENGINE_PASS_INCREMENTAL && hashmap_iterate(e->pass_ws, &it, &key, &unused))
                relist_workspace(e, key);
        listings_clear(e);
        pass_finish(e, outcome);
}

/* The last listing of the pass is in: plan, or give the pass up. A failed listing
 * delays only the names of its workspace; when none succeeded there is nothing to plan
 * with, and the pass is retried with backoff. */
static void listings_done(Engine *e, size_t n_workspaces) {
        if (e->stopping) {
                pass_abandon(e, "cancelled (stopping)");
                return;
        }
        if (auth_paused(e)) {
                /* Nothing can be sent: plan when the credentials work again (the auth
                 * retry timer, armed when the failure was noted, or a reload). */
                pass_abandon(e, "stopped (authentication failed)");
                return;
        }
        if (e->n_unlisted > 0 || e->listing_lost) {
                e->list_failures++;
                int64_t delay = jittered_backoff_ms(e->list_failures, ENGINE_RETRY_BASE_MS, ENGINE_LIST_RETRY_MAX_MS);
                delay = MAX(delay, e->listing_retry_ms);
                char retry_buf[LOG_INT_BUFSIZE];
                log_fields(LOG_WARNING, e->listing_throttled ? MESSAGE_THROTTLED : NULL,
                           LOG_FIELDS({ "RETRY_IN_MS", log_int(retry_buf, delay) }),
                           "%zu of %zu workspace listings failed; their notebooks wait, next pass in %lld ms",
                           e->n_unlisted, n_workspaces, (long long) delay);
                schedule_pass_at(e, delay);
                /* the scheduled pass is the retry: an extra request must not skip its backoff */
                e->pass_again = false;
                if (e->listing_lost || (e->pass_kind == ENGINE_PASS_FULL && e->n_unlisted >= n_workspaces)) {
                        /* Nothing can be planned, so nothing is sent: STATUS= says so, and
                         * why (an unreachable API, a 5xx, a 429), until a listing works. */
                        free(e->list_paused);
                        e->list_paused = xasprintf("listing failed (%s)",
                                                   e->listing_error ? e->listing_error : "see the journal");
                        if (e->listing_lost)
                                known_forget(e);   /* which workspaces failed is lost too */
                        pass_abandon(e, "postponed (listing failed)");
                        return;
                }
        } else
                e->list_failures = 0;
        e->list_paused = mfree(e->list_paused);
        pass_plan(e);
}

typedef struct ListRequest {
        Engine *engine;
        char *workspace_id;
        size_t n_workspaces;    /* of this pass */
} ListRequest;

static void on_list_result(ApiClient *c, const ApiResult *ar, const RemoteInstanceList *list, void *userdata) {
        (void) c;
        ListRequest *lr = userdata;
        Engine *e = lr->engine;
        size_t n_workspaces = lr->n_workspaces;
        char http_buf[LOG_INT_BUFSIZE];
        FieldBuf fb = {};
        fb_api(&fb, ar, http_buf);
        fb_add(&fb, "WORKSPACE_ID", lr->workspace_id);
        /* reported-once state per workspace; ':' keeps it apart from notebook names */
        char report_key[160];
        snprintf(report_key, sizeof report_key, "workspace:%s", lr->workspace_id);

        int r = 0;
        if (ar->class == API_CLASS_OK && list)
                r = remote_instance_list_merge(&e->listed, list);
        if (ar->class != API_CLASS_OK || !list || r < 0) {
                if (ar->class == API_CLASS_AUTH)
                        note_auth_failure(e, ar, fb.f);
                else if (!e->stopping) {
                        if (ar->class == API_CLASS_FORBIDDEN && report_once(e, report_key, "forbidden"))
                                log_fields(LOG_ERR, MESSAGE_FORBIDDEN, fb.f,
                                           "Cannot list workspace %s: %s", lr->workspace_id, strempty(ar->message));
                        else if (ar->class != API_CLASS_FORBIDDEN)
                                log_fields(LOG_WARNING, NULL, fb.f, "Listing workspace %s failed: %s",
                                           lr->workspace_id, r < 0 ? strerror(-r) : strempty(ar->message));
                        e->listing_throttled |= ar->class == API_CLASS_THROTTLED;
                        free(e->listing_error);
                        e->listing_error = xstrdup(r < 0 ? strerror(-r) : strempty(ar->message));
                        e->listing_retry_ms = MAX(e->listing_retry_ms, ar->retry_after_ms);
                }
                listing_failed(e, TAKE_PTR(lr->workspace_id));
        } else
                report_forget(e, report_key);   /* a denial that comes back is reported again */
        free(lr->workspace_id);
        free(lr);

        if (--e->listings_out == 0)
                listings_done(e, n_workspaces);
}

/* Every workspace that matters: "0", each desired spec's, each record's (with_records).
 * A listing shows one workspace only, so an instance elsewhere would never be seen. */
static int workspaces_needed(Engine *e, bool with_records, Hashmap **ret) {
        Hashmap *ws = NULL;
        InstanceRecord *records = NULL;
        size_t n_records = 0, n = 0;
        const char **needed = NULL;
        int r = 0;
        if (with_records) {
                r = store_list_instances(e->store, &records, &n_records);
                if (r < 0)
                        note_state_error(e, r, "read the records", NULL);
        }
        /* the same answer plan --live gives (it promises exactly this pass) */
        if (r >= 0)
                r = plan_workspaces_needed((const NotebookSpec *const *) e->desired.items, e->desired.n, records,
                                           n_records, &needed, &n);
        if (r >= 0)
                r = hashmap_new(&ws);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = hashmap_put(ws, needed[i], NULL);   /* the key is copied */
        free(needed);
        instance_records_free(records, n_records);
        if (r < 0) {
                hashmap_free(ws);
                return r;
        }
        *ret = ws;
        return 0;
}

/* The workspaces this pass lists: every one for a full pass; for an incremental one,
 * those with no current listing and those to list again. */
static int pass_workspaces(Engine *e, EnginePassKind kind, Hashmap **ret) {
        _cleanup_(hashmap_freep) Hashmap *needed = NULL;
        Hashmap *ws = NULL;
        /* An incremental pass needs no record's workspace: a record made since the last
         * full pass is in a desired spec's workspace, and a name no longer desired is
         * only reported (an earlier listing of its workspace, or none, is enough). */
        int r = workspaces_needed(e, kind == ENGINE_PASS_FULL, &needed);
        if (r < 0)
                return r;
        if (kind == ENGINE_PASS_FULL) {
                *ret = TAKE_PTR(needed);
                return 0;
        }
        r = hashmap_new(&ws);
        const char *key;
        void *unused;
        size_t it = 0;
        while (r >= 0 && hashmap_iterate(needed, &it, &key, &unused))
                if (!hashmap_contains(e->known_ws, key) || hashmap_contains(e->relist_ws, key))
                        r = hashmap_put(ws, key, NULL);
        if (r < 0) {
                hashmap_free(ws);
                return r;
        }
        *ret = ws;
        return 0;
}

static void pass_start(Engine *e, EnginePassKind kind) {
        if (e->stopping)
                return;
        if (e->pass_listing) {
                e->pass_again = true;
                e->pass_again_full |= kind == ENGINE_PASS_FULL;
                return;
        }
        if (auth_paused(e)) {
                /* Credentials were refused: nothing is sent until the auth retry timer
                 * (daemon) or a reload. Five bad signatures in a row lock the AK. */
                engine_maybe_settled(e);
                return;
        }
        /* Nothing listed yet, or every listing failed: there is nothing to stand on. */
        if (hashmap_size(e->known_ws) == 0 || e->list_first)
                kind = ENGINE_PASS_FULL;
        if (kind == ENGINE_PASS_FULL)
                e->list_first = false;
        Hashmap *workspaces = NULL;
        int r = pass_workspaces(e, kind, &workspaces);
        if (r < 0) {
                log_error_errno(r, "Cannot start a pass: %m");
                schedule_pass_at(e, ENGINE_LIST_RETRY_MAX_MS);
                return;
        }
        if (kind == ENGINE_PASS_FULL)
                known_forget(e);   /* replaced by this listing; freed first, for the peak */
        else if (e->relist_ws && hashmap_size(e->relist_ws) > 0) {
                Hashmap *empty = NULL;
                if (hashmap_new(&empty) >= 0) {   /* they are in this pass's set now */
                        hashmap_free(e->relist_ws);
                        e->relist_ws = empty;
                }
        }
        e->pass_kind = kind;
        e->pass_ws = workspaces;
        e->pass_started_mono_ms = now_monotonic_ms();
        size_t n = hashmap_size(workspaces);
        char n_buf[LOG_INT_BUFSIZE], ws_buf[LOG_INT_BUFSIZE];
        log_fields(LOG_INFO, MESSAGE_PASS_STARTED,
                   LOG_FIELDS({ "PASS_KIND", engine_pass_kind_to_string(kind) },
                              { "DESIRED", log_int(n_buf, e->desired.n) }, { "WORKSPACES", log_int(ws_buf, n) }),
                   "Pass started (%s): %zu desired, %zu workspace%s to list", engine_pass_kind_to_string(kind),
                   e->desired.n, n, n == 1 ? "" : "s");
        e->pass_listing = true;
        /* Counted before any is queued: a callback never runs inside api_list(), but a
         * count that starts at n cannot reach 0 early either way. */
        e->listings_out = (unsigned) n;
        const char *key;
        void *unused;
        size_t it = 0;
        while (hashmap_iterate(workspaces, &it, &key, &unused)) {
                ListRequest *lr = calloc(1, sizeof(*lr));
                if (lr && !(lr->workspace_id = strdup(key)))
                        lr = mfree(lr);
                if (lr) {
                        lr->engine = e;
                        lr->n_workspaces = n;
                        r = api_list(e->api, key, on_list_result, lr);
                } else
                        r = -ENOMEM;
                if (r >= 0)
                        continue;
                log_error_errno(r, "Cannot list workspace %s: %m", key);
                if (lr) {
                        free(lr->workspace_id);
                        free(lr);
                }
                /* Stands in for the listing that was never asked for. */
                listing_failed(e, strdup(key));
                e->listings_out--;
        }
        if (e->listings_out == 0)
                listings_done(e, n);
}

static int on_pass_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        Engine *e = userdata;
        e->pass_timer_at_mono_ms = 0;
        if (auth_paused(e) && e->options.daemon) {
                /* The daemon tries again, one request, every auth_retry_ms: a
                 * passing 401 (clock skew, a token expiring) must not stop it for good,
                 * and one signature per interval cannot lock the AK. */
                log_notice("Retrying after the authentication failure");
                engine_reset_auth(e);
        }
        /* A retry, a backoff's end: what was listed stands; what failed is listed again. */
        pass_start(e, ENGINE_PASS_INCREMENTAL);
        return 0;
}

/* Arm a one-shot timer (created on first use) for the monotonic time at (ms), unless it
 * is already armed earlier; *at_slot keeps when (0: not armed). */
static void arm_timer(Engine *e, sd_event_source **source, int64_t *at_slot, int64_t at,
                      sd_event_time_handler_t handler, const char *what) {
        if (*at_slot > 0 && *at_slot <= at)
                return;
        int r;
        if (*source)
                r = sd_event_source_set_time(*source, (uint64_t) at * 1000);
        else
                r = sd_event_add_time(e->event, source, CLOCK_MONOTONIC, (uint64_t) at * 1000,
                                      ENGINE_TIMER_ACCURACY_USEC, handler, e);
        if (r >= 0)
                r = sd_event_source_set_enabled(*source, SD_EVENT_ONESHOT);
        if (r < 0) {
                log_error_errno(r, "Cannot schedule %s: %m", what);
                return;
        }
        *at_slot = at;
}

/* Arm the pass timer for delay_ms from now, unless it is already armed earlier. */
static void schedule_pass_at(Engine *e, int64_t delay_ms) {
        if (e->stopping)
                return;
        if (delay_ms < 0)
                delay_ms = 0;
        int64_t at = now_monotonic_ms() + delay_ms;
        if (!e->options.daemon && e->deadline_mono_ms > 0 && at > e->deadline_mono_ms) {
                /* once: this retry would come after the deadline: settle now, and the
                 * name is reported as not done (exit 3) */
                return;
        }
        arm_timer(e, &e->pass_timer, &e->pass_timer_at_mono_ms, at, on_pass_timer, "the next pass");
}

static int on_prune_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        Engine *e = userdata;
        e->prune_timer_at_mono_ms = 0;
        pass_start(e, ENGINE_PASS_FULL);
        return 0;
}

/* A full pass delay_ms from now (prune: a deletion is judged against a listing taken
 * for it), unless one is armed earlier. */
static void schedule_full_pass_at(Engine *e, int64_t delay_ms) {
        if (e->stopping || !e->options.daemon)
                return;
        int64_t at = now_monotonic_ms() + MAX(delay_ms, 0);
        arm_timer(e, &e->prune_timer, &e->prune_timer_at_mono_ms, at, on_prune_timer, "a full pass");
}

/* ---------------------------------------------------------------- public */

int engine_new(sd_event *event, Store *store, ApiClient *api, const EngineOptions *o, Engine **ret) {
        Engine *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->event = sd_event_ref(event);
        e->store = store;
        e->api = api;
        e->options = *o;
        if (e->options.auth_retry_ms <= 0)
                e->options.auth_retry_ms = CONFIG_DEFAULT_AUTH_RETRY_INTERVAL_MS;
        if (e->options.state_retention_ms <= 0)
                e->options.state_retention_ms = CONFIG_DEFAULT_STATE_RETENTION_MS;
        if (hashmap_new(&e->ops) < 0 || hashmap_new(&e->reported) < 0 || hashmap_new(&e->touched) < 0 ||
            hashmap_new(&e->standing) < 0 || hashmap_new(&e->known_ws) < 0 || hashmap_new(&e->relist_ws) < 0) {
                engine_free(e);
                return -ENOMEM;
        }
        *ret = e;
        return 0;
}

Engine *engine_free(Engine *e) {
        if (!e)
                return NULL;
        const char *k;
        void *v;
        size_t it = 0;
        if (e->ops)
                while (hashmap_iterate(e->ops, &it, &k, &v))
                        op_free(v);
        it = 0;
        if (e->reported)
                while (hashmap_iterate(e->reported, &it, &k, &v))
                        free(v);
        hashmap_free(e->ops);
        hashmap_free(e->reported);
        hashmap_free(e->touched);
        hashmap_free(e->standing);
        sd_event_source_disable_unref(e->pass_timer);
        sd_event_source_disable_unref(e->prune_timer);
        free(e->tree_problem);
        tenant_problems_free(e->tenant_problems);
        free(e->prune_held);
        free(e->tenant_of_gone);
        spec_list_clear(&e->desired);
        listings_clear(e);
        remote_instance_list_clear(&e->known);
        hashmap_free(e->known_ws);
        hashmap_free(e->relist_ws);
        free(e->list_paused);
        sd_event_unref(e->event);
        free(e);
        return NULL;
}

int engine_set_desired(Engine *e, const NotebookSpec *const *specs, size_t n) {
        SpecList l = {};
        _cleanup_(hashmap_freep) Hashmap *standing = NULL;
        EngineCounts c = { .drift = e->counts.drift, .gone = e->counts.gone };
        int r = hashmap_new(&standing);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                /* a name keeps its standing; a new one waits for its first pass */
                void *old = hashmap_get(e->standing, specs[i]->name);
                EngineStanding st = old ? PTR_STANDING(old) : STANDING_WAITING;
                /* shared with the desired set, not copied (spec.h, spec_ref) */
                NotebookSpec *ref = spec_ref(specs[i]);
                if ((r = spec_list_append(&l, ref)) < 0)
                        spec_free(ref);
                if (r >= 0)
                        r = hashmap_put(standing, specs[i]->name, STANDING_PTR(st));
                (*tally_slot(&c, st))++;
        }
        if (r < 0) {
                spec_list_clear(&l);
                return r;
        }
        hashmap_free(e->standing);
        e->standing = TAKE_PTR(standing);
        e->counts = c;
        /* sorted by name: desired_spec() finds a name's state: by bisection */
        if (l.n > 1)
                qsort(l.items, l.n, sizeof(*l.items), cmp_spec_name);
        requeue_creates(e, &l);   /* queued creates point at the old specs */
        spec_list_clear(&e->desired);
        e->desired = l;
        return 0;
}

const char *engine_pass_kind_to_string(EnginePassKind k) {
        return k == ENGINE_PASS_FULL ? "full" : "incremental";
}

void engine_request_pass(Engine *e, EnginePassKind kind) {
        pass_start(e, kind);
}

void engine_set_deadline(Engine *e, int64_t deadline_mono_ms) {
        e->deadline_mono_ms = deadline_mono_ms;
}

void engine_set_settled_callback(Engine *e, engine_settled_cb cb, void *userdata) {
        e->settled_cb = cb;
        e->settled_userdata = userdata;
}

void engine_set_progress_callback(Engine *e, engine_settled_cb cb, void *userdata) {
        e->progress_cb = cb;
        e->progress_userdata = userdata;
}

void engine_stop(Engine *e) {
        e->stopping = true;
        /* Nothing new goes on the wire: queued calls fail now (their callbacks see
         * e->stopping or a not-sent cancel); the ones on the wire finish normally. */
        api_client_cancel_queued(e->api);
        feed_creates(e, true);
        e->pass_timer = sd_event_source_disable_unref(e->pass_timer);
        e->pass_timer_at_mono_ms = 0;
        /* polls not waiting for an answer can go now */
        const char *k;
        void *v;
        size_t it = 0;
        Op *idle[64];
        size_t n_idle;
        do {
                n_idle = 0;
                it = 0;
                while (n_idle < ELEMENTSOF(idle) && hashmap_iterate(e->ops, &it, &k, &v))
                        if (!((Op *) v)->in_request)
                                idle[n_idle++] = v;
                for (size_t i = 0; i < n_idle; i++) {
                        hashmap_remove(e->ops, idle[i]->name);
                        op_free(idle[i]);
                }
        } while (n_idle == ELEMENTSOF(idle));
        engine_maybe_settled(e);
}

bool engine_settled(const Engine *e) {
        return !e->pass_listing && hashmap_size(e->ops) == 0 && (e->stopping || e->pass_timer_at_mono_ms == 0);
}

static void engine_maybe_settled(Engine *e) {
        if (e->progress_cb)
                e->progress_cb(e, e->progress_userdata);
        if (e->settled_cb && engine_settled(e))
                e->settled_cb(e, e->settled_userdata);
}

bool engine_auth_failed(const Engine *e, const char **ret_message) {
        return api_client_auth_failed(e->api, ret_message);
}

const char *engine_pause_reason(const Engine *e, int64_t *ret_retry_mono_ms) {
        const char *reason = NULL;
        int64_t retry = 0;
        if (auth_paused(e)) {
                reason = "authentication failed";
                retry = e->pass_timer_at_mono_ms;
        } else if (e->frozen_until_mono_ms > now_monotonic_ms()) {
                reason = "account frozen (ModelArts.6326)";
                retry = e->frozen_until_mono_ms;
        } else if (e->state_paused_until_mono_ms > now_monotonic_ms()) {
                reason = "the state database cannot be written";
                retry = e->state_paused_until_mono_ms;
        } else if (e->list_paused) {
                reason = e->list_paused;
                retry = e->pass_timer_at_mono_ms;
        }
        if (ret_retry_mono_ms)
                *ret_retry_mono_ms = retry;
        return reason;
}

void engine_set_metrics(Engine *e, Metrics *m) {
        e->metrics = m;
}

const char *engine_pause_to_string(EnginePause p) {
        static const char *const names[_ENGINE_PAUSE_MAX] = {
                [ENGINE_PAUSE_AUTH] = "authentication",
                [ENGINE_PAUSE_FROZEN] = "account_frozen",
                [ENGINE_PAUSE_STATE] = "state_database",
                [ENGINE_PAUSE_LISTING] = "listing",
        };
        return (unsigned) p < _ENGINE_PAUSE_MAX ? names[p] : NULL;
}

/* The same conditions as engine_pause_reason(), each on its own. */
bool engine_paused(const Engine *e, EnginePause p) {
        switch (p) {
        case ENGINE_PAUSE_AUTH:
                return auth_paused(e);
        case ENGINE_PAUSE_FROZEN:
                return e->frozen_until_mono_ms > now_monotonic_ms();
        case ENGINE_PAUSE_STATE:
                return e->state_paused_until_mono_ms > now_monotonic_ms();
        case ENGINE_PAUSE_LISTING:
                return e->list_paused != NULL;
        default:
                return false;
        }
}

void engine_foreach_standing(const Engine *e, void (*cb)(const char *name, EngineStanding s, void *userdata),
                             void *userdata) {
        const char *name;
        void *v;
        size_t it = 0;
        while (hashmap_iterate(e->standing, &it, &name, &v))
                cb(name, PTR_STANDING(v), userdata);
}

const char *engine_standing_to_string(EngineStanding s) {
        static const char *const names[_STANDING_MAX] = {
                [STANDING_WAITING] = "waiting",   [STANDING_PENDING] = "creating", [STANDING_RUNNING] = "running",
                [STANDING_FAILED] = "failed",     [STANDING_REJECTED] = "rejected", [STANDING_RETRYING] = "retrying",
        };
        return (unsigned) s < _STANDING_MAX ? names[s] : NULL;
}

void engine_reset_auth(Engine *e) {
        report_forget(e, REPORT_KEY_ENGINE);
        api_client_reset_auth(e->api);
}

const char *engine_tenant_of(Engine *e, const char *name) {
        const NotebookSpec *s = desired_spec(e, name);
        if (s)
                return s->tenant;
        /* gone from the tree: the tenant its record kept (rare: gone names, prune) */
        InstanceRecord rec = {};
        if (store_get_instance(e->store, name, &rec) < 0)
                return NULL;
        free(e->tenant_of_gone);
        e->tenant_of_gone = TAKE_PTR(rec.tenant);
        instance_record_done(&rec);
        return e->tenant_of_gone;
}

int engine_set_tree_problem(Engine *e, const char *problem) {
        return strdup_replace(&e->tree_problem, problem);
}

int engine_set_tenant_problems(Engine *e, const char *const *tenants, const char *const *problems, size_t n) {
        Hashmap *m = NULL;
        int r = n > 0 ? hashmap_new(&m) : 0;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                char *p = problems[i] ? strdup(problems[i]) : NULL;
                if (problems[i] && !p)
                        r = -ENOMEM;
                else if ((r = hashmap_put(m, tenants[i], p)) < 0)
                        free(p);
        }
        if (r < 0) {
                tenant_problems_free(m);
                return r;
        }
        tenant_problems_free(e->tenant_problems);
        e->tenant_problems = m;
        return 0;
}

const char *engine_prune_held(const Engine *e) {
        return e->prune_held;
}

bool engine_state_error(const Engine *e) {
        return e->state_error;
}

void engine_get_counts(const Engine *e, EngineCounts *ret) {
        *ret = e->counts;
        ret->desired = e->desired.n;
}

EngineStanding engine_standing(const Engine *e, const char *name) {
        void *p = hashmap_get(e->standing, name);
        return p ? PTR_STANDING(p) : STANDING_WAITING;
}

bool engine_account_frozen(const Engine *e) {
        return e->frozen_until_mono_ms > now_monotonic_ms();
}
