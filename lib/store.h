/* The state store: what notebookd has recorded about each instance, and the create
 * intents that make a create safe to retry. SQLite in WAL mode, one file
 * (STORE_FILE_NAME) in the state directory.
 *
 * Why intents: a create whose response is lost (timeout, dropped connection) may or
 * may not have made an instance. The engine writes an intent row, durably, *before*
 * the POST leaves; it resolves the row once the outcome is known. An open intent at
 * startup means "outcome unknown": the planner will not create that name again until
 * a remote listing proves it absent (or adopts what the lost create made).
 *
 * Durability: the intents' transaction (store_begin_durable) commits with
 * synchronous=FULL, so in WAL mode that COMMIT fsyncs the WAL before returning.
 * NORMAL would be enough against a process crash, but not against power loss: the
 * intent could vanish while the POST it guarded was already sent, and nothing would
 * then ask for a listing before the retry. Many intents share one transaction
 * (store_begin_durable, N x store_add_intent, store_commit), so the cost is one fsync
 * per batch, not per create. Every other write (outcomes, adoptions, statuses) commits
 * with synchronous=NORMAL: losing one to a power cut leaves its intent open, and the
 * next pass recovers it from a listing; so an outcome costs no fsync.
 *
 * Concurrency: one writer (the daemon or `once`), any number of readers (`status`,
 * `plan`) at the same time: WAL readers never block the writer nor wait for it; a
 * writer that meets another writer waits up to STORE_BUSY_TIMEOUT_MS.
 *
 * The store is an interface, so that another backend (PostgreSQL, for several hosts)
 * can replace SQLite without touching plan or api: nothing outside store.c knows
 * it is SQLite. Not thread-safe; one Store per thread (notebookd has one thread). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define STORE_FILE_NAME "notebookd.db"

typedef struct Store Store;

typedef enum StoreMode {
        STORE_READ_WRITE,   /* daemon, once: creates the directory (0700) and file, migrates */
        STORE_READ_ONLY,    /* status, plan: never writes; a missing file is -ENOENT */
} StoreMode;

/* What a create (or adoption, or listing) last told us. Stored as text in `result`. */
#define RECORD_RESULT_ACCEPTED    "accepted"    /* create accepted: instance_id set */
#define RECORD_RESULT_ADOPTED     "adopted"     /* found remotely by name, recorded, not created */
#define RECORD_RESULT_REJECTED    "rejected"    /* permanent API error (400, quota...): no retry
                                                   until the spec hash changes */
#define RECORD_RESULT_RETRYING    "retrying"    /* transient failure: retry at next_attempt_at_ms */
#define RECORD_RESULT_AUTH_FAILED "auth-failed" /* 401/403: retry at next_attempt_at_ms (the fix is
                                                   in credentials, not the manifest) */
#define RECORD_RESULT_UNKNOWN     "unknown"     /* sent, outcome lost: an intent stays open */
#define RECORD_RESULT_GONE        "gone"        /* our instance_id vanished from a listing */
#define RECORD_RESULT_EXISTS      "exists"      /* create answered ModelArts.6301: the next listing
                                                   adopts the name, or finds it invisible */
#define RECORD_RESULT_DELETED     "deleted"     /* prune deleted the instance (status DELETED) */
#define RECORD_RESULT_CONFLICT    "conflict"    /* 6301, yet no listing we can make shows the name
                                                   (another IAM user's instance): not re-sent until
                                                   the manifest changes or a listing shows it */

/* One row of `instances`. Strings are owned (NULL = SQL NULL); 0 = unset for numbers. */
typedef struct InstanceRecord {
        char *name;               /* primary key: the manifest's name */
        char *instance_id;        /* NULL until a create was accepted or an instance adopted */
        char *spec_hash;          /* spec_hash() of the spec last sent/adopted for */
        char *status;             /* last known remote status (RUNNING, CREATING, ...) */
        char *result;             /* RECORD_RESULT_* */
        int http_status;          /* of the last API call about it; 0 = none */
        char *error_code;         /* API error_code (e.g. ModelArts.6301), NULL when none */
        char *error_msg;          /* API error_msg / error_message */
        char *request_id;         /* X-Request-Id / request_id, for support tickets */
        int64_t result_at_ms;     /* wall clock of `result` */
        int64_t attempts;         /* create attempts since the last success or spec change */
        int64_t next_attempt_at_ms; /* backoff: no create before this (wall clock); 0 = now */
        int64_t created_at_ms;    /* first recorded; kept by store_put_instance upserts */
        int64_t updated_at_ms;    /* last written */
        char *workspace_id;       /* where the instance lives; NULL = unknown (older records) */
        int64_t undesired_since_ms; /* when a full pass first found the name gone from the
                                       manifests; 0 = desired. Written by store_prune only */
        bool created_by_us;       /* a create of ours made instance_id (its answer named it);
                                     false when adopted. Only such an instance is pruned
                                     (unless prune_adopted) */
        char *tenant;             /* the tenant of its manifest when last desired; NULL: none */
        char *desired_state;      /* its manifest's state: when last desired ("running",
                                     "stopped"); NULL: no opinion */
} InstanceRecord;

typedef struct CreateIntent {
        int64_t id;
        char *name;
        char *spec_hash;
        int64_t created_at_ms;
        int64_t resolved_at_ms;   /* 0 = open */
        char *outcome;            /* free text once resolved ("accepted", "adopted", "absent", ...) */
} CreateIntent;

/* Open (and in read-write mode create and migrate) the store in state_dir.
 * On failure *ret_error (if ret_error is non-NULL) gets a one-line message naming the
 * file, for the verb to print; the caller frees it. Errors:
 *   -ENOENT           read-only, and the directory or file does not exist (nothing recorded)
 *   -EBADMSG          not a database, not a notebookd database, or corrupt (integrity check)
 *   -EPROTONOSUPPORT  schema newer than this notebookd knows (a downgrade)
 *   -ESTALE           read-only, and the schema is older than this notebookd's (the
 *                     writer migrates; run it once)
 *   other -errno      I/O, permissions, -ENOMEM */
int store_open(const char *state_dir, StoreMode mode, Store **ret, char **ret_error);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

const char *store_path(const Store *s);
/* The schema version of the open file (PRAGMA user_version). */
int store_schema_version(Store *s);
/* SQLite's message for the last failed call on s, for logs ("database is locked"). */
const char *store_error_message(Store *s);

/* Explicit transactions (BEGIN IMMEDIATE: the write lock is taken up front, so a
 * transaction never fails half-way on a lock upgrade). Without one, each write below
 * commits by itself. */
int store_begin(Store *s);
/* The same, committed with synchronous=FULL: on disk (the WAL fsynced, with every
 * earlier commit in it) before store_commit returns. For create intents only: every
 * other write is recoverable from a listing, so it commits with synchronous=NORMAL
 * (safe against a crash of the process, not of the machine) and costs no fsync. */
int store_begin_durable(Store *s);
int store_commit(Store *s);
int store_rollback(Store *s);

/* Fill *ret (zeroed first; release with instance_record_done). -ENOENT when absent. */
int store_get_instance(Store *s, const char *name, InstanceRecord *ret);
/* All rows, sorted by name (byte order). Release with instance_records_free. */
int store_list_instances(Store *s, InstanceRecord **ret, size_t *ret_n);
/* Insert or replace the row for r->name; on update created_at_ms keeps its first value. */
int store_put_instance(Store *s, const InstanceRecord *r);
/* -ENOENT when there was no such row. */
int store_delete_instance(Store *s, const char *name);

int store_add_intent(Store *s, const char *name, const char *spec_hash, int64_t now_ms,
                     int64_t *ret_id);
/* -ENOENT: no such intent; -EALREADY: already resolved (the first outcome stays). */
int store_resolve_intent(Store *s, int64_t id, const char *outcome, int64_t now_ms);
/* Unresolved intents, oldest (smallest id) first. Release with create_intents_free. */
int store_list_open_intents(Store *s, CreateIntent **ret, size_t *ret_n);

/* Pruning: the store keeps what it needs and no more. At the end of a full pass (every
 * workspace listed) the engine gives a verdict per name that needs one:
 *   DESIRED  the name is in the manifests: never pruned; a mark it carried is cleared;
 *   KEEP     not desired, but its instance still exists (still billing: `status` must
 *            keep showing it), or cannot be judged: marked "not desired since now"
 *            if it was not, never deleted;
 *   GONE     not desired, and no instance is left (none recorded, or the listing of
 *            its workspace shows no live instance with the recorded id): marked the
 *            same way, and deleted once the mark is older than retention_ms.
 * Names not given are left alone. Resolved create intents older than retention_ms are
 * deleted too; open ones never are. All in one transaction: on failure nothing
 * changed (every item's pruned is false). A mark stamped by this call is never
 * deleted by it, whatever the retention. */
typedef enum StorePruneVerdict {
        STORE_PRUNE_DESIRED,
        STORE_PRUNE_KEEP,
        STORE_PRUNE_GONE,
} StorePruneVerdict;

typedef struct StorePruneItem {
        const char *name;
        StorePruneVerdict verdict;
        bool pruned;              /* out: the record was deleted */
} StorePruneItem;

typedef struct StorePruneCounts {
        size_t instances;         /* records deleted */
        size_t intents;           /* resolved intents deleted */
} StorePruneCounts;

int store_prune(Store *s, StorePruneItem *items, size_t n, int64_t now_ms, int64_t retention_ms,
                StorePruneCounts *ret);

void instance_record_done(InstanceRecord *r);
InstanceRecord *instance_records_free(InstanceRecord *r, size_t n);
int instance_record_copy(const InstanceRecord *src, InstanceRecord *dst);
void create_intent_done(CreateIntent *i);
CreateIntent *create_intents_free(CreateIntent *i, size_t n);

/* The schema, as applied in order: step k brings user_version from k to k+1.
 * Exposed for the tests (build an old-version file, then let store_open migrate it). */
extern const char *const store_migrations[];
extern const size_t store_n_migrations;
