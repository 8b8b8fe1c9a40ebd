#include "store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "limits.h"
#include "util.h"

/* 'nbkd' in the file header: a foreign SQLite file in the state directory is refused
 * instead of being "migrated" into something half ours. */
#define STORE_APPLICATION_ID 0x6e626b64
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* Step k brings the schema from user_version k to k+1. Append only: a released step
 * is never edited, because files in the field already went through it. */
const char *const store_migrations[] = {
        /* 0 -> 1: the two tables. AUTOINCREMENT so an intent id is never reused, even
         * after rows are pruned: an id in a log line always means one create. */
        "CREATE TABLE instances ("
        "  name TEXT PRIMARY KEY NOT NULL,"
        "  instance_id TEXT,"
        "  spec_hash TEXT,"
        "  status TEXT,"
        "  result TEXT,"
        "  http_status INTEGER NOT NULL DEFAULT 0,"
        "  error_code TEXT,"
        "  error_msg TEXT,"
        "  request_id TEXT,"
        "  result_at_ms INTEGER NOT NULL DEFAULT 0,"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  next_attempt_at_ms INTEGER NOT NULL DEFAULT 0,"
        "  created_at_ms INTEGER NOT NULL DEFAULT 0,"
        "  updated_at_ms INTEGER NOT NULL DEFAULT 0"
        ");"
        "CREATE TABLE create_intents ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  name TEXT NOT NULL,"
        "  spec_hash TEXT,"
        "  created_at_ms INTEGER NOT NULL,"
        "  resolved_at_ms INTEGER,"
        "  outcome TEXT"
        ");",
        /* 1 -> 2: open intents are read on every start and pass; resolved ones pile up. */
        "CREATE INDEX create_intents_open ON create_intents(name) WHERE resolved_at_ms IS NULL;",
        /* 2 -> 3: the workspace an instance lives in. A listing shows one workspace only,
         * so a recorded instance's workspace must be listed to see it. NULL for records
         * written before: their manifest's workspace is used. */
        "ALTER TABLE instances ADD COLUMN workspace_id TEXT;",
        /* 3 -> 4: pruning (store_prune). undesired_since_ms: when a full pass first
         * found the name gone from the tree; NULL while it is desired. The partial index
         * lets the retention sweep of resolved intents skip the open ones and the young. */
        "ALTER TABLE instances ADD COLUMN undesired_since_ms INTEGER;"
        "CREATE INDEX create_intents_resolved ON create_intents(resolved_at_ms) "
        "WHERE resolved_at_ms IS NOT NULL;",
        /* 4 -> 5: ownership, the first guard of prune: 1 when a create of ours made the
         * recorded instance (its answer named the id), 0 when it was adopted. A record
         * written before says so by its result. */
        "ALTER TABLE instances ADD COLUMN created_by_us INTEGER NOT NULL DEFAULT 0;"
        "UPDATE instances SET created_by_us = 1 WHERE result = 'accepted' AND instance_id IS NOT NULL;"
        /* ... and the tenant whose manifest it was (tenants:), for status and the journal
         * once the manifest is gone; NULL without tenants */
        "ALTER TABLE instances ADD COLUMN tenant TEXT;"
        /* ... and its manifest's state: (running, stopped; NULL: no opinion), so status
         * shows desired against actual */
        "ALTER TABLE instances ADD COLUMN desired_state TEXT;",
};
const size_t store_n_migrations = ELEMENTSOF(store_migrations);

typedef enum StatementId {
        STMT_BEGIN,
        STMT_COMMIT,
        STMT_ROLLBACK,
        STMT_GET_INSTANCE,
        STMT_LIST_INSTANCES,
        STMT_PUT_INSTANCE,
        STMT_DELETE_INSTANCE,
        STMT_ADD_INTENT,
        STMT_RESOLVE_INTENT,
        STMT_INTENT_EXISTS,
        STMT_LIST_OPEN_INTENTS,
        STMT_MARK_UNDESIRED,
        STMT_CLEAR_UNDESIRED,
        STMT_PRUNE_INSTANCE,
        STMT_PRUNE_INTENTS,
        _STMT_MAX,
} StatementId;

/* What store_put_instance writes; undesired_since_ms belongs to store_prune alone. */
#define INSTANCE_COLUMNS_V3                                                           \
        "name, instance_id, spec_hash, status, result, http_status, error_code, "    \
        "error_msg, request_id, result_at_ms, attempts, next_attempt_at_ms, "        \
        "created_at_ms, updated_at_ms, workspace_id"
#define INSTANCE_COLUMNS INSTANCE_COLUMNS_V3 ", created_by_us, tenant, desired_state"
#define INSTANCE_SELECT INSTANCE_COLUMNS_V3 ", undesired_since_ms, created_by_us, tenant, desired_state"

static const char *const statement_sql[_STMT_MAX] = {
        [STMT_BEGIN] = "BEGIN IMMEDIATE",
        [STMT_COMMIT] = "COMMIT",
        [STMT_ROLLBACK] = "ROLLBACK",
        [STMT_GET_INSTANCE] = "SELECT " INSTANCE_SELECT " FROM instances WHERE name = ?1",
        [STMT_LIST_INSTANCES] = "SELECT " INSTANCE_SELECT " FROM instances ORDER BY name",
        [STMT_PUT_INSTANCE] =
                "INSERT INTO instances (" INSTANCE_COLUMNS ") "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) "
                "ON CONFLICT(name) DO UPDATE SET "
                "instance_id = excluded.instance_id, spec_hash = excluded.spec_hash, "
                "status = excluded.status, result = excluded.result, "
                "http_status = excluded.http_status, error_code = excluded.error_code, "
                "error_msg = excluded.error_msg, request_id = excluded.request_id, "
                "result_at_ms = excluded.result_at_ms, attempts = excluded.attempts, "
                "next_attempt_at_ms = excluded.next_attempt_at_ms, "
                "created_at_ms = CASE WHEN instances.created_at_ms > 0 "
                "  THEN instances.created_at_ms ELSE excluded.created_at_ms END, "
                "updated_at_ms = excluded.updated_at_ms, workspace_id = excluded.workspace_id, "
                "created_by_us = excluded.created_by_us, tenant = excluded.tenant, "
                "desired_state = excluded.desired_state",
        [STMT_DELETE_INSTANCE] = "DELETE FROM instances WHERE name = ?1",
        [STMT_ADD_INTENT] = "INSERT INTO create_intents (name, spec_hash, created_at_ms) VALUES (?1, ?2, ?3)",
        [STMT_RESOLVE_INTENT] = "UPDATE create_intents SET resolved_at_ms = ?2, outcome = ?3 "
                                "WHERE id = ?1 AND resolved_at_ms IS NULL",
        [STMT_INTENT_EXISTS] = "SELECT 1 FROM create_intents WHERE id = ?1",
        [STMT_LIST_OPEN_INTENTS] = "SELECT id, name, spec_hash, created_at_ms, resolved_at_ms, outcome "
                                   "FROM create_intents WHERE resolved_at_ms IS NULL ORDER BY id",
        [STMT_MARK_UNDESIRED] = "UPDATE instances SET undesired_since_ms = ?2 "
                                "WHERE name = ?1 AND undesired_since_ms IS NULL",
        [STMT_CLEAR_UNDESIRED] = "UPDATE instances SET undesired_since_ms = NULL "
                                 "WHERE name = ?1 AND undesired_since_ms IS NOT NULL",
        [STMT_PRUNE_INSTANCE] = "DELETE FROM instances WHERE name = ?1 AND undesired_since_ms <= ?2",
        [STMT_PRUNE_INTENTS] = "DELETE FROM create_intents WHERE resolved_at_ms <= ?1",
};

struct Store {
        sqlite3 *db;
        char *path;
        StoreMode mode;
        bool durable_txn;   /* the open transaction commits with synchronous=FULL */
        int64_t read_version; /* a reader on an older file (STORE_READ_COMPAT_MIN..): its
                               * statements leave out the columns added since; 0 = current */
        sqlite3_stmt *stmts[_STMT_MAX];
        /* Why the last statement failed, taken when it failed: what runs after a failure
         * (the PRAGMA that ends a durable transaction, a rollback) resets SQLite's own
         * message to "not an error", and the log must say "read-only" or "full". */
        char last_error[256];
};

/* A reader may meet a file the daemon has not migrated yet (status right after an
 * upgrade). Each version since STORE_READ_COMPAT_MIN only added columns: read the ones
 * it lacks as NULL (workspace_id "unknown", undesired_since_ms "desired") or 0
 * (created_by_us: not known to be ours, so never pruned). */
#define STORE_READ_COMPAT_MIN 2
#define INSTANCE_SELECT_V2                                                            \
        "name, instance_id, spec_hash, status, result, http_status, error_code, "    \
        "error_msg, request_id, result_at_ms, attempts, next_attempt_at_ms, "        \
        "created_at_ms, updated_at_ms, NULL, NULL, 0, NULL, NULL"
#define INSTANCE_SELECT_V3 INSTANCE_COLUMNS_V3 ", NULL, 0, NULL, NULL"
#define INSTANCE_SELECT_V4 INSTANCE_COLUMNS_V3 ", undesired_since_ms, 0, NULL, NULL"
static const char *const statement_sql_v2[_STMT_MAX] = {
        [STMT_GET_INSTANCE] = "SELECT " INSTANCE_SELECT_V2 " FROM instances WHERE name = ?1",
        [STMT_LIST_INSTANCES] = "SELECT " INSTANCE_SELECT_V2 " FROM instances ORDER BY name",
};
static const char *const statement_sql_v3[_STMT_MAX] = {
        [STMT_GET_INSTANCE] = "SELECT " INSTANCE_SELECT_V3 " FROM instances WHERE name = ?1",
        [STMT_LIST_INSTANCES] = "SELECT " INSTANCE_SELECT_V3 " FROM instances ORDER BY name",
};
static const char *const statement_sql_v4[_STMT_MAX] = {
        [STMT_GET_INSTANCE] = "SELECT " INSTANCE_SELECT_V4 " FROM instances WHERE name = ?1",
        [STMT_LIST_INSTANCES] = "SELECT " INSTANCE_SELECT_V4 " FROM instances ORDER BY name",
};

/* The SQL for statement id on this file: an older file's reader gets its own version. */
static const char *statement_sql_for(const Store *s, StatementId id) {
        const char *sql = NULL;
        if (s->read_version == 2)
                sql = statement_sql_v2[id];
        else if (s->read_version == 3)
                sql = statement_sql_v3[id];
        else if (s->read_version == 4)
                sql = statement_sql_v4[id];
        return sql ?: statement_sql[id];
}

/* SQLite result codes to the negative errno the rest of notebookd speaks. */
static int sqlite_to_errno(sqlite3 *db, int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_IOERR: {
                /* EROFS, ENOSPC, EIO ...: the system's own word is the useful one */
                int e = db ? sqlite3_system_errno(db) : 0;
                return e > 0 ? -e : -EIO;
        }
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_CANTOPEN: {
                int e = db ? sqlite3_system_errno(db) : 0;
                return e > 0 ? -e : -EACCES;
        }
        case SQLITE_MISUSE:
        case SQLITE_RANGE:
                return -EINVAL;
        default:
                return -EIO;
        }
}

static int set_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int set_error(char **ret_error, const char *fmt, ...) {
        if (ret_error) {
                va_list ap;
                va_start(ap, fmt);
                free(*ret_error);
                *ret_error = xvasprintf(fmt, ap);
                va_end(ap);
        }
        return 0;
}

static int mkdir_parents_0700(const char *dir) {
        _cleanup_free_ char *p = strdup(dir);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, 0700) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return -errno;
        struct stat st;
        if (stat(p, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        return 0;
}

/* Keep why the statement just run failed (see last_error): SQLite's message, and for a
 * failed write what the file system says of itself. SQLite reports a write refused by a
 * file system the kernel remounted read-only (errors=remount-ro) only as "disk I/O
 * error", and its errno is not reliably kept; the operator needs "read-only". */
static void note_failure(Store *s) {
        int ext = sqlite3_extended_errcode(s->db), rc = ext & 0xff;
        const char *fs = NULL;
        struct statvfs sv;
        if ((rc == SQLITE_IOERR || rc == SQLITE_FULL || rc == SQLITE_READONLY || rc == SQLITE_CANTOPEN) &&
            s->path && statvfs(s->path, &sv) == 0) {
                if (sv.f_flag & ST_RDONLY)
                        fs = "the file system is read-only";
                else if (sv.f_bavail == 0)
                        fs = "the file system is full";
        }
        (void) snprintf(s->last_error, sizeof s->last_error, "%s%s%s%s", sqlite3_errmsg(s->db), fs ? " (" : "",
                        fs ? fs : "", fs ? ")" : "");
}

static int stmt(Store *s, StatementId id, sqlite3_stmt **ret) {
        s->last_error[0] = '\0';
        if (!s->stmts[id]) {
                const char *sql = statement_sql_for(s, id);
                int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                            &s->stmts[id], NULL);
                if (rc != SQLITE_OK) {
                        note_failure(s);
                        int r = sqlite_to_errno(s->db, rc);
                        return r < 0 ? r : -EIO;
                }
        } else {
                sqlite3_reset(s->stmts[id]);
                sqlite3_clear_bindings(s->stmts[id]);
        }
        *ret = s->stmts[id];
        return 0;
}

/* Run a statement that returns no rows; leave it reset so it holds no read lock. */
static int step_done(Store *s, sqlite3_stmt *st) {
        int rc = sqlite3_step(st);
        int r = rc == SQLITE_DONE ? 0 : sqlite_to_errno(s->db, rc);
        if (rc != SQLITE_DONE)
                note_failure(s);
        if (r == 0 && rc != SQLITE_DONE)
                r = -EIO;
        sqlite3_reset(st);
        return r;
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *ret) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK) {
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        *ret = sqlite3_column_int64(st, 0);
                        rc = SQLITE_OK;
                }
        }
        sqlite3_finalize(st);
        return rc;
}

static int bind_text(sqlite3_stmt *st, int i, const char *v) {
        return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* NULL column -> NULL; otherwise a copy (-ENOMEM if that fails). */
static int column_strdup(sqlite3_stmt *st, int i, char **ret) {
        if (sqlite3_column_type(st, i) == SQLITE_NULL) {
                *ret = NULL;
                return 0;
        }
        const char *t = (const char *) sqlite3_column_text(st, i);
        if (!t)
                return -ENOMEM;
        *ret = strdup(t);
        return *ret ? 0 : -ENOMEM;
}

/* ---- open ---- */

static int check_integrity(Store *s, char **ret_error) {
        /* quick_check: the O(N) subset of integrity_check that finds torn and garbage
         * pages; enough for a file of this size, and it runs on every start. */
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const char *t = (const char *) sqlite3_column_text(st, 0);
                if (t && streq(t, "ok")) {
                        sqlite3_finalize(st);
                        return 0;
                }
                set_error(ret_error, "%s: state database is corrupt (integrity check: %s); "
                          "move it aside to start over (notebookd adopts existing instances)",
                          s->path, t ? t : "?");
                sqlite3_finalize(st);
                return -EBADMSG;
        }
        int r = sqlite_to_errno(s->db, rc);
        set_error(ret_error, "%s: cannot check the state database: %s", s->path, sqlite3_errmsg(s->db));
        sqlite3_finalize(st);
        return r < 0 ? r : -EIO;
}

static int count_objects(sqlite3 *db, int64_t *ret) {
        return pragma_int(db, "SELECT count(*) FROM sqlite_master", ret);
}

static int migrate(Store *s, char **ret_error) {
        int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                goto fail;
        /* Read again under the write lock: another writer may have migrated meanwhile. */
        int64_t version = 0, app_id = 0, n_objects = 0;
        if ((rc = pragma_int(s->db, "PRAGMA user_version", &version)) != SQLITE_OK ||
            (rc = pragma_int(s->db, "PRAGMA application_id", &app_id)) != SQLITE_OK ||
            (rc = count_objects(s->db, &n_objects)) != SQLITE_OK)
                goto fail;
        if (version == 0 && n_objects > 0) {
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                set_error(ret_error, "%s: not a notebookd state database (it has tables but no schema version)",
                          s->path);
                return -EBADMSG;
        }
        for (size_t k = (size_t) version; k < store_n_migrations; k++) {
                if ((rc = sqlite3_exec(s->db, store_migrations[k], NULL, NULL, NULL)) != SQLITE_OK)
                        goto fail;
                _cleanup_free_ char *set = xasprintf("PRAGMA user_version = %zu", k + 1);
                if (!set) {
                        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                        return -ENOMEM;
                }
                if ((rc = sqlite3_exec(s->db, set, NULL, NULL, NULL)) != SQLITE_OK)
                        goto fail;
        }
        if (app_id == 0 &&
            (rc = sqlite3_exec(s->db, "PRAGMA application_id = " STRINGIFY(STORE_APPLICATION_ID), NULL, NULL,
                               NULL)) != SQLITE_OK)
                goto fail;
        if ((rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
                goto fail;
        return 0;
fail:;
        int r = sqlite_to_errno(s->db, rc);
        set_error(ret_error, "%s: cannot update the state database schema: %s", s->path, sqlite3_errmsg(s->db));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return r < 0 ? r : -EIO;
}

static int open_db(Store *s, char **ret_error) {
        int flags = s->mode == STORE_READ_ONLY ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
        int rc = sqlite3_open_v2(s->path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                int r = sqlite_to_errno(s->db, rc);
                set_error(ret_error, "%s: cannot open the state database: %s", s->path,
                          s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
                return r < 0 ? r : -EIO;
        }
        sqlite3_extended_result_codes(s->db, 1);
        /* Readers and the writer meet only on checkpoints and writer-vs-writer. */
        sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);

        /* The first read of the header: garbage fails here with SQLITE_NOTADB. */
        int64_t version = 0, app_id = 0;
        rc = pragma_int(s->db, "PRAGMA user_version", &version);
        if (rc == SQLITE_OK)
                rc = pragma_int(s->db, "PRAGMA application_id", &app_id);
        if (rc != SQLITE_OK) {
                int r = sqlite_to_errno(s->db, rc);
                if (r == -EBADMSG)
                        set_error(ret_error, "%s: not a notebookd state database (%s); move it aside to start over",
                                  s->path, sqlite3_errmsg(s->db));
                else
                        set_error(ret_error, "%s: cannot read the state database: %s", s->path,
                                  sqlite3_errmsg(s->db));
                return r < 0 ? r : -EIO;
        }
        if (app_id != 0 && app_id != STORE_APPLICATION_ID) {
                set_error(ret_error, "%s: not a notebookd state database (application id 0x%08llx)", s->path,
                          (unsigned long long) app_id);
                return -EBADMSG;
        }
        if (version > (int64_t) store_n_migrations) {
                set_error(ret_error,
                          "%s: state database schema version %lld is newer than this notebookd knows (%zu); "
                          "was it written by a newer version?",
                          s->path, (long long) version, store_n_migrations);
                return -EPROTONOSUPPORT;
        }
        int r = check_integrity(s, ret_error);
        if (r < 0)
                return r;

        if (s->mode == STORE_READ_ONLY) {
                if (version == 0) {
                        int64_t n_objects = 0;
                        if (count_objects(s->db, &n_objects) == SQLITE_OK && n_objects == 0) {
                                set_error(ret_error, "%s: nothing recorded yet", s->path);
                                return -ENOENT;
                        }
                        set_error(ret_error, "%s: not a notebookd state database (it has tables but no schema version)",
                                  s->path);
                        return -EBADMSG;
                }
                if (version >= STORE_READ_COMPAT_MIN && version < (int64_t) store_n_migrations) {
                        s->read_version = version;
                        return 0;
                }
                if (version < (int64_t) store_n_migrations) {
                        set_error(ret_error,
                                  "%s: state database schema version %lld is older than this notebookd's (%zu); "
                                  "it is updated when the daemon (or 'notebookd once') next opens it",
                                  s->path, (long long) version, store_n_migrations);
                        return -ESTALE;
                }
                return 0;
        }

        /* WAL: readers (status, plan) never block the daemon's writes. FULL: a COMMIT
         * is on disk before it returns, so an intent precedes its POST (store.h). */
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const char *mode = (const char *) sqlite3_column_text(st, 0);
                rc = mode && streq(mode, "wal") ? SQLITE_OK : SQLITE_ERROR;
        }
        sqlite3_finalize(st);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                r = sqlite_to_errno(s->db, rc);
                set_error(ret_error, "%s: cannot switch the state database to WAL mode: %s", s->path,
                          sqlite3_errmsg(s->db));
                return r < 0 ? r : -EIO;
        }
        if (version < (int64_t) store_n_migrations)
                return migrate(s, ret_error);
        return 0;
}

int store_open(const char *state_dir, StoreMode mode, Store **ret, char **ret_error) {
        if (!state_dir || !*state_dir)
                return -EINVAL;
        _cleanup_(store_freep) Store *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->mode = mode;
        s->path = xasprintf("%s/%s", state_dir, STORE_FILE_NAME);
        if (!s->path)
                return -ENOMEM;

        if (mode == STORE_READ_ONLY) {
                struct stat st;
                if (stat(s->path, &st) < 0) {
                        int r = -errno;
                        if (r == -ENOENT)
                                set_error(ret_error, "%s: nothing recorded yet", s->path);
                        else
                                set_error(ret_error, "%s: %s", s->path, strerror(-r));
                        return r;
                }
        } else {
                int r = mkdir_parents_0700(state_dir);
                if (r < 0) {
                        set_error(ret_error, "%s: cannot create the state directory: %s", state_dir, strerror(-r));
                        return r;
                }
        }
        int r = open_db(s, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < _STMT_MAX; i++)
                sqlite3_finalize(s->stmts[i]);
        /* An open transaction is rolled back by close: uncommitted means not recorded. */
        sqlite3_close(s->db);
        free(s->path);
        free(s);
        return NULL;
}

const char *store_path(const Store *s) {
        return s->path;
}

int store_schema_version(Store *s) {
        int64_t v = 0;
        int rc = pragma_int(s->db, "PRAGMA user_version", &v);
        return rc == SQLITE_OK ? (int) v : sqlite_to_errno(s->db, rc);
}

const char *store_error_message(Store *s) {
        return s->last_error[0] ? s->last_error : sqlite3_errmsg(s->db);
}

/* ---- transactions ---- */

static int run_simple(Store *s, StatementId id) {
        sqlite3_stmt *st;
        int r = stmt(s, id, &st);
        if (r < 0)
                return r;
        return step_done(s, st);
}

int store_begin(Store *s) {
        return run_simple(s, STMT_BEGIN);
}

/* synchronous can only change outside a transaction; back to NORMAL after it ends. */
static void end_durable(Store *s) {
        if (s->durable_txn) {
                s->durable_txn = false;
                (void) sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
        }
}

int store_begin_durable(Store *s) {
        s->last_error[0] = '\0';
        int rc = sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return sqlite_to_errno(s->db, rc);
        s->durable_txn = true;
        int r = run_simple(s, STMT_BEGIN);
        if (r < 0)
                end_durable(s);
        return r;
}

int store_commit(Store *s) {
        int r = run_simple(s, STMT_COMMIT);
        end_durable(s);
        return r;
}

int store_rollback(Store *s) {
        int r = run_simple(s, STMT_ROLLBACK);
        end_durable(s);
        return r;
}

/* ---- instances ---- */

void instance_record_done(InstanceRecord *r) {
        if (!r)
                return;
        free(r->name);
        free(r->instance_id);
        free(r->spec_hash);
        free(r->status);
        free(r->result);
        free(r->error_code);
        free(r->error_msg);
        free(r->request_id);
        free(r->workspace_id);
        free(r->tenant);
        free(r->desired_state);
        *r = (InstanceRecord) { 0 };
}

InstanceRecord *instance_records_free(InstanceRecord *r, size_t n) {
        for (size_t i = 0; r && i < n; i++)
                instance_record_done(&r[i]);
        free(r);
        return NULL;
}

int instance_record_copy(const InstanceRecord *src, InstanceRecord *dst) {
        InstanceRecord c = *src;
        c.name = xstrdup(src->name);
        c.instance_id = xstrdup(src->instance_id);
        c.spec_hash = xstrdup(src->spec_hash);
        c.status = xstrdup(src->status);
        c.result = xstrdup(src->result);
        c.error_code = xstrdup(src->error_code);
        c.error_msg = xstrdup(src->error_msg);
        c.request_id = xstrdup(src->request_id);
        c.workspace_id = xstrdup(src->workspace_id);
        c.tenant = xstrdup(src->tenant);
        c.desired_state = xstrdup(src->desired_state);
        if (!c.name != !src->name || !c.instance_id != !src->instance_id || !c.spec_hash != !src->spec_hash ||
            !c.tenant != !src->tenant || !c.desired_state != !src->desired_state || !c.status != !src->status || !c.result != !src->result || !c.error_code != !src->error_code ||
            !c.error_msg != !src->error_msg || !c.request_id != !src->request_id ||
            !c.workspace_id != !src->workspace_id) {
                instance_record_done(&c);
                return -ENOMEM;
        }
        *dst = c;
        return 0;
}

static int read_instance_row(sqlite3_stmt *st, InstanceRecord *ret) {
        InstanceRecord r = {
                .http_status = sqlite3_column_int(st, 5),
                .result_at_ms = sqlite3_column_int64(st, 9),
                .attempts = sqlite3_column_int64(st, 10),
                .next_attempt_at_ms = sqlite3_column_int64(st, 11),
                .created_at_ms = sqlite3_column_int64(st, 12),
                .updated_at_ms = sqlite3_column_int64(st, 13),
                .undesired_since_ms = sqlite3_column_int64(st, 15),
                .created_by_us = sqlite3_column_int(st, 16) != 0,
        };
        if (column_strdup(st, 17, &r.tenant) < 0 || column_strdup(st, 18, &r.desired_state) < 0 ||
            column_strdup(st, 0, &r.name) < 0 || column_strdup(st, 1, &r.instance_id) < 0 ||
            column_strdup(st, 2, &r.spec_hash) < 0 || column_strdup(st, 3, &r.status) < 0 ||
            column_strdup(st, 4, &r.result) < 0 || column_strdup(st, 6, &r.error_code) < 0 ||
            column_strdup(st, 7, &r.error_msg) < 0 || column_strdup(st, 8, &r.request_id) < 0 ||
            column_strdup(st, 14, &r.workspace_id) < 0) {
                instance_record_done(&r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

int store_get_instance(Store *s, const char *name, InstanceRecord *ret) {
        sqlite3_stmt *st;
        int r = stmt(s, STMT_GET_INSTANCE, &st);
        if (r < 0)
                return r;
        bind_text(st, 1, name);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                r = read_instance_row(st, ret);
        else if (rc == SQLITE_DONE)
                r = -ENOENT;
        else
                r = sqlite_to_errno(s->db, rc) ?: -EIO;
        sqlite3_reset(st);
        return r;
}

/* Room for row n of a list being read: doubles the array as rows come. */
static int grow_rows(void **items, size_t *cap, size_t n, size_t size) {
        if (n < *cap)
                return 0;
        size_t ncap = *cap ? *cap * 2 : 16;
        void *t = reallocarray(*items, ncap, size);
        if (!t)
                return -ENOMEM;
        *items = t;
        *cap = ncap;
        return 0;
}

int store_list_instances(Store *s, InstanceRecord **ret, size_t *ret_n) {
        sqlite3_stmt *st;
        int r = stmt(s, STMT_LIST_INSTANCES, &st);
        if (r < 0)
                return r;
        InstanceRecord *items = NULL;
        size_t n = 0, cap = 0;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                void *rows = items;  /* no T** punned to void** */
                if ((r = grow_rows(&rows, &cap, n, sizeof(*items))) < 0)
                        break;
                items = rows;
                if ((r = read_instance_row(st, &items[n])) < 0)
                        break;
                n++;
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = sqlite_to_errno(s->db, rc) ?: -EIO;
        sqlite3_reset(st);
        if (r < 0) {
                instance_records_free(items, n);
                return r;
        }
        *ret = items;
        *ret_n = n;
        return 0;
}

int store_put_instance(Store *s, const InstanceRecord *rec) {
        if (!rec || !rec->name)
                return -EINVAL;
        sqlite3_stmt *st;
        int r = stmt(s, STMT_PUT_INSTANCE, &st);
        if (r < 0)
                return r;
        bind_text(st, 1, rec->name);
        bind_text(st, 2, rec->instance_id);
        bind_text(st, 3, rec->spec_hash);
        bind_text(st, 4, rec->status);
        bind_text(st, 5, rec->result);
        sqlite3_bind_int(st, 6, rec->http_status);
        bind_text(st, 7, rec->error_code);
        bind_text(st, 8, rec->error_msg);
        bind_text(st, 9, rec->request_id);
        sqlite3_bind_int64(st, 10, rec->result_at_ms);
        sqlite3_bind_int64(st, 11, rec->attempts);
        sqlite3_bind_int64(st, 12, rec->next_attempt_at_ms);
        sqlite3_bind_int64(st, 13, rec->created_at_ms);
        sqlite3_bind_int64(st, 14, rec->updated_at_ms);
        bind_text(st, 15, rec->workspace_id);
        sqlite3_bind_int(st, 16, rec->created_by_us);
        bind_text(st, 17, rec->tenant);
        bind_text(st, 18, rec->desired_state);
        return step_done(s, st);
}

int store_delete_instance(Store *s, const char *name) {
        sqlite3_stmt *st;
        int r = stmt(s, STMT_DELETE_INSTANCE, &st);
        if (r < 0)
                return r;
        bind_text(st, 1, name);
        r = step_done(s, st);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

/* ---- intents ---- */

void create_intent_done(CreateIntent *i) {
        if (!i)
                return;
        free(i->name);
        free(i->spec_hash);
        free(i->outcome);
        *i = (CreateIntent) { 0 };
}

CreateIntent *create_intents_free(CreateIntent *i, size_t n) {
        for (size_t k = 0; i && k < n; k++)
                create_intent_done(&i[k]);
        free(i);
        return NULL;
}

int store_add_intent(Store *s, const char *name, const char *spec_hash, int64_t now_ms, int64_t *ret_id) {
        if (!name)
                return -EINVAL;
        sqlite3_stmt *st;
        int r = stmt(s, STMT_ADD_INTENT, &st);
        if (r < 0)
                return r;
        bind_text(st, 1, name);
        bind_text(st, 2, spec_hash);
        sqlite3_bind_int64(st, 3, now_ms);
        r = step_done(s, st);
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = sqlite3_last_insert_rowid(s->db);
        return 0;
}

int store_resolve_intent(Store *s, int64_t id, const char *outcome, int64_t now_ms) {
        sqlite3_stmt *st;
        int r = stmt(s, STMT_RESOLVE_INTENT, &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, now_ms);
        bind_text(st, 3, outcome);
        r = step_done(s, st);
        if (r < 0)
                return r;
        if (sqlite3_changes(s->db) > 0)
                return 0;
        if ((r = stmt(s, STMT_INTENT_EXISTS, &st)) < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_ROW)
                return -EALREADY;
        if (rc == SQLITE_DONE)
                return -ENOENT;
        return sqlite_to_errno(s->db, rc) ?: -EIO;
}

int store_list_open_intents(Store *s, CreateIntent **ret, size_t *ret_n) {
        sqlite3_stmt *st;
        int r = stmt(s, STMT_LIST_OPEN_INTENTS, &st);
        if (r < 0)
                return r;
        CreateIntent *items = NULL;
        size_t n = 0, cap = 0;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                void *rows = items;  /* no T** punned to void** */
                if ((r = grow_rows(&rows, &cap, n, sizeof(*items))) < 0)
                        break;
                items = rows;
                CreateIntent c = {
                        .id = sqlite3_column_int64(st, 0),
                        .created_at_ms = sqlite3_column_int64(st, 3),
                        .resolved_at_ms = sqlite3_column_int64(st, 4),
                };
                if (column_strdup(st, 1, &c.name) < 0 || column_strdup(st, 2, &c.spec_hash) < 0 ||
                    column_strdup(st, 5, &c.outcome) < 0) {
                        create_intent_done(&c);
                        r = -ENOMEM;
                        break;
                }
                items[n++] = c;
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = sqlite_to_errno(s->db, rc) ?: -EIO;
        sqlite3_reset(st);
        if (r < 0) {
                create_intents_free(items, n);
                return r;
        }
        *ret = items;
        *ret_n = n;
        return 0;
}

/* ---- pruning ---- */

/* The read-compat statements above know versions 2, 3 and 4; a new version adds its own
 * (and a reader test) before this number moves. */
_Static_assert(ELEMENTSOF(store_migrations) == 5, "add read-compat statements for the previous version");

static int bind_name_step(Store *s, StatementId id, const char *name, bool has_ms, int64_t ms) {
        sqlite3_stmt *st;
        int r = stmt(s, id, &st);
        if (r < 0)
                return r;
        bind_text(st, 1, name);
        if (has_ms)
                sqlite3_bind_int64(st, 2, ms);
        return step_done(s, st);
}

static int prune_one(Store *s, StorePruneItem *it, int64_t now_ms, int64_t cutoff_ms) {
        int r;
        it->pruned = false;
        switch (it->verdict) {
        case STORE_PRUNE_DESIRED:
                return bind_name_step(s, STMT_CLEAR_UNDESIRED, it->name, false, 0);
        case STORE_PRUNE_KEEP:
                return bind_name_step(s, STMT_MARK_UNDESIRED, it->name, true, now_ms);
        case STORE_PRUNE_GONE:
                r = bind_name_step(s, STMT_MARK_UNDESIRED, it->name, true, now_ms);
                if (r < 0)
                        return r;
                r = bind_name_step(s, STMT_PRUNE_INSTANCE, it->name, true, cutoff_ms);
                if (r < 0)
                        return r;
                it->pruned = sqlite3_changes(s->db) > 0;
                return 0;
        default:
                return -EINVAL;
        }
}

int store_prune(Store *s, StorePruneItem *items, size_t n, int64_t now_ms, int64_t retention_ms,
                StorePruneCounts *ret) {
        if (retention_ms < 0 || (n > 0 && !items))
                return -EINVAL;
        /* A mark this old or older has outlived the retention; a mark stamped by this
         * very call (now_ms) never has, whatever the retention. */
        int64_t cutoff_ms = now_ms - MAX(retention_ms, (int64_t) 1);
        StorePruneCounts c = {};
        int r = store_begin(s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (!items[i].name) {
                        r = -EINVAL;
                        goto fail;
                }
                if ((r = prune_one(s, &items[i], now_ms, cutoff_ms)) < 0)
                        goto fail;
                c.instances += items[i].pruned;
        }
        sqlite3_stmt *st;
        if ((r = stmt(s, STMT_PRUNE_INTENTS, &st)) < 0)
                goto fail;
        sqlite3_bind_int64(st, 1, cutoff_ms);
        if ((r = step_done(s, st)) < 0)
                goto fail;
        c.intents = (size_t) sqlite3_changes(s->db);
        if ((r = store_commit(s)) < 0)
                goto fail;
        if (ret)
                *ret = c;
        return 0;
fail:
        (void) store_rollback(s);
        for (size_t i = 0; i < n; i++)
                items[i].pruned = false;
        return r;
}
