/* The state store against real SQLite files in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store.h"
#include "util.h"

typedef struct Fixture {
        char dir[64];
        char *state;   /* dir/state (not created: the store creates it) */
        char *db;      /* state/notebookd.db */
} Fixture;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        return remove(path);
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/test-store-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->state = xasprintf("%s/state", f->dir);
        f->db = xasprintf("%s/state/" STORE_FILE_NAME, f->dir);
        assert_non_null(f->state);
        assert_non_null(f->db);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(f->state);
        free(f->db);
        free(f);
        return 0;
}

/* Run SQL on the file with a plain connection (what another process would see). */
static void raw_exec(const char *path, const char *sql) {
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        char *err = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
        if (rc != SQLITE_OK)
                fail_msg("%s: %s", sql, err);
        sqlite3_close(db);
}

static char *raw_text(const char *path, const char *sql) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        char *v = xstrdup((const char *) sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

static void write_file(const char *path, const void *data, size_t n) {
        FILE *fp = fopen(path, "we");
        assert_non_null(fp);
        assert_int_equal(fwrite(data, 1, n, fp), n);
        assert_int_equal(fclose(fp), 0);
}

static InstanceRecord sample(char *name) {
        return (InstanceRecord) {
                .name = name,
                .instance_id = (char *) "6fa4a6e2-0000-4000-8000-000000000001",
                .spec_hash = (char *) "abc123",
                .status = (char *) "CREATING",
                .result = (char *) RECORD_RESULT_ACCEPTED,
                .http_status = 201,
                .request_id = (char *) "req-1",
                .result_at_ms = 1000,
                .attempts = 1,
                .next_attempt_at_ms = 0,
                .created_at_ms = 1000,
                .updated_at_ms = 1000,
        };
}

static void test_open_creates_dir_wal_and_schema(void **state) {
        Fixture *f = *state;
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, &err), 0);
        assert_null(err);
        assert_string_equal(store_path(s), f->db);
        assert_int_equal(store_schema_version(s), (int) store_n_migrations);

        struct stat st;
        assert_int_equal(stat(f->state, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);

        /* WAL is a property of the file: another connection sees it. */
        _cleanup_free_ char *mode = raw_text(f->db, "PRAGMA journal_mode");
        assert_string_equal(mode, "wal");
        _cleanup_free_ char *appid = raw_text(f->db, "PRAGMA application_id");
        assert_string_equal(appid, "1851943780"); /* 0x6e626b64, 'nbkd' */
}

static void test_open_existing_dir_keeps_mode(void **state) {
        Fixture *f = *state;
        assert_int_equal(mkdir(f->state, 0750), 0);
        _cleanup_(store_freep) Store *s = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);
        struct stat st;
        assert_int_equal(stat(f->state, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0750);
}

static void test_roundtrip(void **state) {
        Fixture *f = *state;
        _cleanup_(store_freep) Store *s = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);

        InstanceRecord in = sample("train-01");
        in.error_code = (char *) "ModelArts.6404";
        in.error_msg = (char *) "flavor 'x' \"quoted\" ünïcødé";
        in.next_attempt_at_ms = INT64_C(1700000000123);
        assert_int_equal(store_put_instance(s, &in), 0);

        InstanceRecord out = {};
        assert_int_equal(store_get_instance(s, "train-01", &out), 0);
        assert_string_equal(out.name, "train-01");
        assert_string_equal(out.instance_id, in.instance_id);
        assert_string_equal(out.spec_hash, "abc123");
        assert_string_equal(out.status, "CREATING");
        assert_string_equal(out.result, "accepted");
        assert_int_equal(out.http_status, 201);
        assert_string_equal(out.error_code, "ModelArts.6404");
        assert_string_equal(out.error_msg, in.error_msg);
        assert_string_equal(out.request_id, "req-1");
        assert_int_equal(out.result_at_ms, 1000);
        assert_int_equal(out.attempts, 1);
        assert_int_equal(out.next_attempt_at_ms, INT64_C(1700000000123));
        assert_int_equal(out.created_at_ms, 1000);
        assert_int_equal(out.updated_at_ms, 1000);
        instance_record_done(&out);

        /* NULLs stay NULL. */
        InstanceRecord bare = { .name = (char *) "bare" };
        assert_int_equal(store_put_instance(s, &bare), 0);
        assert_int_equal(store_get_instance(s, "bare", &out), 0);
        assert_string_equal(out.name, "bare");
        assert_null(out.instance_id);
        assert_null(out.spec_hash);
        assert_null(out.status);
        assert_null(out.result);
        assert_null(out.error_code);
        assert_int_equal(out.http_status, 0);
        instance_record_done(&out);

        /* Survives close and reopen (it is on disk, not in a cache). */
        s = store_free(s);
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);
        assert_int_equal(store_get_instance(s, "train-01", &out), 0);
        assert_string_equal(out.error_msg, in.error_msg);
        instance_record_done(&out);

        InstanceRecord copy = {};
        assert_int_equal(instance_record_copy(&in, &copy), 0);
        assert_string_equal(copy.error_code, "ModelArts.6404");
        assert_ptr_not_equal(copy.name, in.name);
        instance_record_done(&copy);
        assert_null(copy.name);
}

static void test_get_missing_and_delete(void **state) {
        Fixture *f = *state;
        _cleanup_(store_freep) Store *s = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);
        InstanceRecord out = { .attempts = 42 };
        assert_int_equal(store_get_instance(s, "nope", &out), -ENOENT);
        assert_int_equal(out.attempts, 42); /* untouched on failure */

        InstanceRecord in = sample("a");
        assert_int_equal(store_put_instance(s, &in), 0);
        assert_int_equal(store_delete_instance(s, "a"), 0);
        assert_int_equal(store_get_instance(s, "a", &out), -ENOENT);
        assert_int_equal(store_delete_instance(s, "a"), -ENOENT);

        InstanceRecord noname = {};
        assert_int_equal(store_put_instance(s, &noname), -EINVAL);
}

static void test_upsert_and_list_sorted(void **state) {
        Fixture *f = *state;
        _cleanup_(store_freep) Store *s = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);

        char *names[] = { "zeta", "alpha", "Mid", "beta-2", "beta" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                InstanceRecord r = sample(names[i]);
                r.created_at_ms = r.updated_at_ms = 100 + (int64_t) i;
                assert_int_equal(store_put_instance(s, &r), 0);
        }
        /* Upsert: a later write replaces every field but the first created_at_ms. */
        InstanceRecord up = sample("alpha");
        up.status = (char *) "RUNNING";
        up.result = (char *) RECORD_RESULT_ADOPTED;
        up.instance_id = NULL;
        up.created_at_ms = 999;
        up.updated_at_ms = 5000;
        up.attempts = 0;
        assert_int_equal(store_put_instance(s, &up), 0);

        InstanceRecord *list = NULL;
        size_t n = 0;
        assert_int_equal(store_list_instances(s, &list, &n), 0);
        assert_int_equal(n, 5);
        const char *sorted[] = { "Mid", "alpha", "beta", "beta-2", "zeta" };
        for (size_t i = 0; i < n; i++)
                assert_string_equal(list[i].name, sorted[i]);
        assert_string_equal(list[1].status, "RUNNING");
        assert_string_equal(list[1].result, "adopted");
        assert_null(list[1].instance_id);
        assert_int_equal(list[1].created_at_ms, 101);
        assert_int_equal(list[1].updated_at_ms, 5000);
        assert_int_equal(list[1].attempts, 0);
        list = instance_records_free(list, n);

        /* Empty table: n = 0, no error. */
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                assert_int_equal(store_delete_instance(s, names[i]), 0);
        assert_int_equal(store_list_instances(s, &list, &n), 0);
        assert_int_equal(n, 0);
        instance_records_free(list, n);
}

static void test_intents(void **state) {
        Fixture *f = *state;
        _cleanup_(store_freep) Store *s = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);

        int64_t ids[3];
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_add_intent(s, "a", "h1", 10, &ids[0]), 0);
        assert_int_equal(store_add_intent(s, "b", "h2", 11, &ids[1]), 0);
        assert_int_equal(store_add_intent(s, "a", "h3", 12, &ids[2]), 0);
        assert_int_equal(store_commit(s), 0);
        assert_true(ids[0] < ids[1] && ids[1] < ids[2]);

        CreateIntent *list = NULL;
        size_t n = 0;
        assert_int_equal(store_list_open_intents(s, &list, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(list[0].id, ids[0]);
        assert_string_equal(list[0].name, "a");
        assert_string_equal(list[0].spec_hash, "h1");
        assert_int_equal(list[0].created_at_ms, 10);
        assert_int_equal(list[0].resolved_at_ms, 0);
        assert_null(list[0].outcome);
        assert_string_equal(list[2].spec_hash, "h3");
        list = create_intents_free(list, n);

        assert_int_equal(store_resolve_intent(s, ids[1], "accepted", 20), 0);
        assert_int_equal(store_resolve_intent(s, ids[1], "absent", 21), -EALREADY);
        assert_int_equal(store_resolve_intent(s, 9999, "absent", 21), -ENOENT);

        assert_int_equal(store_list_open_intents(s, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(list[0].id, ids[0]);
        assert_int_equal(list[1].id, ids[2]);
        list = create_intents_free(list, n);

        /* The first outcome stays. */
        _cleanup_free_ char *outcome = NULL;
        s = store_free(s);
        _cleanup_free_ char *sql = xasprintf("SELECT outcome || ':' || resolved_at_ms FROM create_intents WHERE id = %lld",
                                             (long long) ids[1]);
        outcome = raw_text(f->db, sql);
        assert_string_equal(outcome, "accepted:20");

        /* Ids are never reused, even after the newest row is gone. */
        raw_exec(f->db, "DELETE FROM create_intents");
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);
        int64_t id4;
        assert_int_equal(store_add_intent(s, "c", NULL, 30, &id4), 0);
        assert_true(id4 > ids[2]);
}

static void test_rollback_and_uncommitted(void **state) {
        Fixture *f = *state;
        _cleanup_(store_freep) Store *s = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);

        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_add_intent(s, "x", "h", 1, NULL), 0);
        InstanceRecord r = sample("x");
        assert_int_equal(store_put_instance(s, &r), 0);
        assert_int_equal(store_rollback(s), 0);

        CreateIntent *list = NULL;
        size_t n = 99;
        assert_int_equal(store_list_open_intents(s, &list, &n), 0);
        assert_int_equal(n, 0);
        create_intents_free(list, n);
        InstanceRecord out;
        assert_int_equal(store_get_instance(s, "x", &out), -ENOENT);

        /* Freed mid-transaction (a crash before COMMIT): nothing recorded. */
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_add_intent(s, "y", "h", 1, NULL), 0);
        s = store_free(s);
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);
        assert_int_equal(store_list_open_intents(s, &list, &n), 0);
        assert_int_equal(n, 0);
        create_intents_free(list, n);

        /* Commit without begin is an error, not a silent success. */
        assert_true(store_commit(s) < 0);
}

static void test_migrate_from_zero(void **state) {
        Fixture *f = *state;
        /* An empty file is a version-0 database. */
        assert_int_equal(mkdir(f->state, 0700), 0);
        write_file(f->db, "", 0);
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, &err), 0);
        assert_int_equal(store_schema_version(s), (int) store_n_migrations);
        InstanceRecord r = sample("a");
        assert_int_equal(store_put_instance(s, &r), 0);
}

static void test_migrate_from_one_keeps_rows(void **state) {
        Fixture *f = *state;
        assert_true(store_n_migrations >= 2);
        assert_int_equal(mkdir(f->state, 0700), 0);
        /* A file as the first schema version left it, with a row and an open intent. */
        _cleanup_free_ char *sql = xasprintf("%s PRAGMA user_version = 1;"
                                             "INSERT INTO instances (name, instance_id, status) VALUES ('old', 'id-1', 'RUNNING');"
                                             "INSERT INTO create_intents (name, created_at_ms) VALUES ('pending', 5);",
                                             store_migrations[0]);
        raw_exec(f->db, sql);

        _cleanup_(store_freep) Store *s = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);
        assert_int_equal(store_schema_version(s), (int) store_n_migrations);
        InstanceRecord out = {};
        assert_int_equal(store_get_instance(s, "old", &out), 0);
        assert_string_equal(out.instance_id, "id-1");
        assert_string_equal(out.status, "RUNNING");
        instance_record_done(&out);
        CreateIntent *list = NULL;
        size_t n = 0;
        assert_int_equal(store_list_open_intents(s, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(list[0].name, "pending");
        create_intents_free(list, n);
        s = store_free(s);

        /* Step 2 ran: its index exists. */
        _cleanup_free_ char *idx =
                raw_text(f->db, "SELECT count(*) FROM sqlite_master WHERE name = 'create_intents_open'");
        assert_string_equal(idx, "1");
}

static void test_newer_schema_refused(void **state) {
        Fixture *f = *state;
        assert_int_equal(mkdir(f->state, 0700), 0);
        _cleanup_free_ char *sql = xasprintf("%s PRAGMA user_version = %zu;", store_migrations[0],
                                             store_n_migrations + 7);
        raw_exec(f->db, sql);
        for (int mode = STORE_READ_WRITE; mode <= STORE_READ_ONLY; mode++) {
                Store *s = NULL;
                _cleanup_free_ char *err = NULL;
                assert_int_equal(store_open(f->state, (StoreMode) mode, &s, &err), -EPROTONOSUPPORT);
                assert_null(s);
                assert_non_null(err);
                assert_non_null(strstr(err, f->db));
                assert_non_null(strstr(err, "newer"));
        }
        /* And it was not touched. */
        _cleanup_free_ char *v = raw_text(f->db, "PRAGMA user_version");
        _cleanup_free_ char *want = xasprintf("%zu", store_n_migrations + 7);
        assert_string_equal(v, want);
}

static void test_garbage_file_reported(void **state) {
        Fixture *f = *state;
        assert_int_equal(mkdir(f->state, 0700), 0);
        char junk[8192];
        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (char) (i * 131 + 7);
        write_file(f->db, junk, sizeof(junk));
        for (int mode = STORE_READ_WRITE; mode <= STORE_READ_ONLY; mode++) {
                Store *s = NULL;
                _cleanup_free_ char *err = NULL;
                assert_int_equal(store_open(f->state, (StoreMode) mode, &s, &err), -EBADMSG);
                assert_null(s);
                assert_non_null(err);
                assert_non_null(strstr(err, f->db));
                assert_non_null(strstr(err, "not a notebookd state database"));
        }
        /* Nothing overwrote the user's file. */
        struct stat st;
        assert_int_equal(stat(f->db, &st), 0);
        assert_int_equal(st.st_size, (off_t) sizeof(junk));
}

static void test_corrupt_pages_reported(void **state) {
        Fixture *f = *state;
        {
                _cleanup_(store_freep) Store *s = NULL;
                assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);
                assert_int_equal(store_begin(s), 0);
                for (int i = 0; i < 400; i++) {
                        char name[32];
                        snprintf(name, sizeof(name), "nb-%04d", i);
                        InstanceRecord r = sample(name);
                        assert_int_equal(store_put_instance(s, &r), 0);
                }
                assert_int_equal(store_commit(s), 0);
        }
        /* Closing the last connection checkpointed everything into the main file. */
        struct stat st;
        assert_int_equal(stat(f->db, &st), 0);
        assert_true(st.st_size >= 4 * 4096);
        int fd = open(f->db, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        char junk[4096];
        memset(junk, 0x5a, sizeof(junk));
        for (off_t off = 4096; off + 4096 <= st.st_size; off += 4096 * 2)
                assert_int_equal(pwrite(fd, junk, sizeof(junk), off), (ssize_t) sizeof(junk));
        close(fd);

        for (int mode = STORE_READ_WRITE; mode <= STORE_READ_ONLY; mode++) {
                Store *s = NULL;
                _cleanup_free_ char *err = NULL;
                assert_int_equal(store_open(f->state, (StoreMode) mode, &s, &err), -EBADMSG);
                assert_null(s);
                assert_non_null(err);
                assert_non_null(strstr(err, f->db));
        }
}

static void test_foreign_database_refused(void **state) {
        Fixture *f = *state;
        assert_int_equal(mkdir(f->state, 0700), 0);
        raw_exec(f->db, "CREATE TABLE photos (id INTEGER);");
        Store *s = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, &err), -EBADMSG);
        assert_non_null(strstr(err, "not a notebookd state database"));
        free(err);
        err = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_ONLY, &s, &err), -EBADMSG);

        raw_exec(f->db, "DROP TABLE photos; PRAGMA application_id = 42; PRAGMA user_version = 1;");
        free(err);
        err = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, &err), -EBADMSG);
        assert_non_null(strstr(err, "application id"));
        assert_null(s);
}

static void test_read_only_missing(void **state) {
        Fixture *f = *state;
        Store *s = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_ONLY, &s, &err), -ENOENT);
        assert_null(s);
        /* ...and it did not create anything. */
        struct stat st;
        assert_int_equal(stat(f->state, &st), -1);

        /* An empty file (created, never written) is "nothing recorded" as well. */
        assert_int_equal(mkdir(f->state, 0700), 0);
        write_file(f->db, "", 0);
        assert_int_equal(store_open(f->state, STORE_READ_ONLY, &s, NULL), -ENOENT);
        assert_int_equal(stat(f->db, &st), 0);
        assert_int_equal(st.st_size, 0);
}

static void test_read_only_older_schema(void **state) {
        Fixture *f = *state;
        assert_int_equal(mkdir(f->state, 0700), 0);
        _cleanup_free_ char *sql = xasprintf("%s PRAGMA user_version = 1;", store_migrations[0]);
        raw_exec(f->db, sql);
        Store *s = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_ONLY, &s, &err), -ESTALE);
        assert_non_null(strstr(err, "older"));
        _cleanup_free_ char *v = raw_text(f->db, "PRAGMA user_version");
        assert_string_equal(v, "1");
}

static void test_reader_while_writer_writes(void **state) {
        Fixture *f = *state;
        _cleanup_(store_freep) Store *w = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &w, NULL), 0);
        InstanceRecord r = sample("one");
        assert_int_equal(store_put_instance(w, &r), 0);

        /* The writer holds an open write transaction (the daemon mid-batch). */
        assert_int_equal(store_begin(w), 0);
        r = sample("two");
        assert_int_equal(store_put_instance(w, &r), 0);
        assert_int_equal(store_add_intent(w, "two", "h", 1, NULL), 0);

        _cleanup_(store_freep) Store *ro = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_ONLY, &ro, &err), 0);
        InstanceRecord *list = NULL;
        size_t n = 0;
        /* Not blocked, and sees only what was committed. */
        assert_int_equal(store_list_instances(ro, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(list[0].name, "one");
        list = instance_records_free(list, n);
        CreateIntent *intents = NULL;
        assert_int_equal(store_list_open_intents(ro, &intents, &n), 0);
        assert_int_equal(n, 0);
        intents = create_intents_free(intents, n);

        assert_int_equal(store_commit(w), 0);
        assert_int_equal(store_list_instances(ro, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(list[1].name, "two");
        list = instance_records_free(list, n);

        /* The reader cannot write. */
        r = sample("three");
        assert_int_equal(store_put_instance(ro, &r), -EROFS);
        assert_int_equal(store_add_intent(ro, "three", "h", 1, NULL), -EROFS);

        /* The writer goes on while the reader is open. */
        r = sample("four");
        assert_int_equal(store_put_instance(w, &r), 0);
}

static void test_reader_after_writer_closed(void **state) {
        Fixture *f = *state;
        {
                _cleanup_(store_freep) Store *w = NULL;
                assert_int_equal(store_open(f->state, STORE_READ_WRITE, &w, NULL), 0);
                InstanceRecord r = sample("one");
                assert_int_equal(store_put_instance(w, &r), 0);
        }
        /* No daemon running: no -wal/-shm files; a reader still works. */
        _cleanup_(store_freep) Store *ro = NULL;
        _cleanup_free_ char *err = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_ONLY, &ro, &err), 0);
        InstanceRecord out = {};
        assert_int_equal(store_get_instance(ro, "one", &out), 0);
        instance_record_done(&out);
}

/* A file as schema version v left it (migrations 0..v-1), with one row. */
static void write_version(const Fixture *f, size_t v, const char *row_sql) {
        assert_int_equal(mkdir(f->state, 0700), 0);
        for (size_t k = 0; k < v; k++)
                raw_exec(f->db, store_migrations[k]);
        _cleanup_free_ char *sql = xasprintf("%s PRAGMA user_version = %zu;", row_sql, v);
        raw_exec(f->db, sql);
}

/* `status` right after an upgrade reads a file the daemon has not migrated yet: each
 * version it knows reads, the columns it lacks as unset, and the file is untouched. */
static void test_read_only_previous_versions(void **state) {
        Fixture *f = *state;
        static const struct {
                size_t version;
                const char *row;
                const char *workspace;
        } cases[] = {
                { 2, "INSERT INTO instances (name, instance_id, updated_at_ms) VALUES ('old', 'id-1', 7);", NULL },
                { 3, "INSERT INTO instances (name, instance_id, updated_at_ms, workspace_id) "
                     "VALUES ('old', 'id-1', 7, 'ws-a');", "ws-a" },
                { 4, "INSERT INTO instances (name, instance_id, updated_at_ms, workspace_id, result) "
                     "VALUES ('old', 'id-1', 7, 'ws-a', 'accepted');", "ws-a" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                teardown(state);
                setup(state);
                f = *state;
                write_version(f, cases[i].version, cases[i].row);
                _cleanup_(store_freep) Store *ro = NULL;
                _cleanup_free_ char *err = NULL;
                assert_int_equal(store_open(f->state, STORE_READ_ONLY, &ro, &err), 0);
                InstanceRecord r = {};
                assert_int_equal(store_get_instance(ro, "old", &r), 0);
                assert_string_equal(r.instance_id, "id-1");
                assert_int_equal(r.updated_at_ms, 7);
                assert_int_equal(r.undesired_since_ms, 0);
                /* an older file is not known to be ours until the writer migrates it */
                assert_false(r.created_by_us);
                if (cases[i].workspace)
                        assert_string_equal(r.workspace_id, cases[i].workspace);
                else
                        assert_null(r.workspace_id);
                instance_record_done(&r);
                InstanceRecord *list = NULL;
                size_t n = 0;
                assert_int_equal(store_list_instances(ro, &list, &n), 0);
                assert_int_equal(n, 1);
                instance_records_free(list, n);
                _cleanup_free_ char *v = raw_text(f->db, "PRAGMA user_version");
                _cleanup_free_ char *want = xasprintf("%zu", cases[i].version);
                assert_string_equal(v, want);
        }
        *state = f;
}

/* The writer migrates a version-3 file: rows kept, nothing marked. */
static void test_migrate_from_three(void **state) {
        Fixture *f = *state;
        write_version(f, 3, "INSERT INTO instances (name, instance_id, workspace_id) VALUES ('old', 'id-1', 'ws-a');");
        _cleanup_(store_freep) Store *s = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);
        assert_int_equal(store_schema_version(s), (int) store_n_migrations);
        InstanceRecord r = {};
        assert_int_equal(store_get_instance(s, "old", &r), 0);
        assert_string_equal(r.workspace_id, "ws-a");
        assert_int_equal(r.undesired_since_ms, 0);
        instance_record_done(&r);
}

/* The writer migrates a version-4 file: what a create of ours made (result accepted,
 * with an id) is owned; an adopted instance, or a create with no id, is not. The
 * owner flag then follows what store_put_instance writes. */
static void test_migrate_ownership(void **state) {
        Fixture *f = *state;
        write_version(f, 4, "INSERT INTO instances (name, instance_id, result) VALUES ('made', 'id-1', 'accepted');"
                            "INSERT INTO instances (name, instance_id, result) VALUES ('found', 'id-2', 'adopted');"
                            "INSERT INTO instances (name, instance_id, result) VALUES ('lost', NULL, 'accepted');");
        _cleanup_(store_freep) Store *s = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);
        const struct {
                const char *name;
                bool owned;
        } want[] = { { "made", true }, { "found", false }, { "lost", false } };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                InstanceRecord r = {};
                assert_int_equal(store_get_instance(s, want[i].name, &r), 0);
                assert_int_equal(r.created_by_us, want[i].owned);
                if (i == 0) {   /* adopted over: the flag is what is written */
                        r.created_by_us = false;
                        assert_int_equal(store_put_instance(s, &r), 0);
                }
                instance_record_done(&r);
        }
        InstanceRecord r = {};
        assert_int_equal(store_get_instance(s, "made", &r), 0);
        assert_false(r.created_by_us);
        assert_null(r.tenant);
        r.created_by_us = true;
        r.tenant = strdup("vision");
        assert_null(r.desired_state);
        r.desired_state = strdup("stopped");
        assert_int_equal(store_put_instance(s, &r), 0);
        instance_record_done(&r);
        assert_int_equal(store_get_instance(s, "made", &r), 0);
        assert_true(r.created_by_us);
        assert_string_equal(r.tenant, "vision");
        assert_string_equal(r.desired_state, "stopped");
        instance_record_done(&r);
}

static int64_t mark_of(Store *s, const char *name) {
        InstanceRecord r = {};
        assert_int_equal(store_get_instance(s, name, &r), 0);
        int64_t v = r.undesired_since_ms;
        instance_record_done(&r);
        return v;
}

static bool recorded(Store *s, const char *name) {
        InstanceRecord r = {};
        int x = store_get_instance(s, name, &r);
        assert_true(x == 0 || x == -ENOENT);
        instance_record_done(&r);
        return x == 0;
}

static void test_prune_records(void **state) {
        Fixture *f = *state;
        _cleanup_(store_freep) Store *s = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);
        char *names[] = { "desired", "gone", "live", "untold" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                InstanceRecord r = sample(names[i]);
                assert_int_equal(store_put_instance(s, &r), 0);
        }
        StorePruneItem items[] = {
                { .name = "desired", .verdict = STORE_PRUNE_DESIRED }, { .name = "gone", .verdict = STORE_PRUNE_GONE }, { .name = "live", .verdict = STORE_PRUNE_KEEP },
        };
        StorePruneCounts c = { 99, 99 };

        /* First seen undesired: marked, not deleted, even with a retention of 0. */
        assert_int_equal(store_prune(s, items, ELEMENTSOF(items), 1000, 0, &c), 0);
        assert_int_equal(c.instances, 0);
        assert_int_equal(c.intents, 0);
        assert_false(items[1].pruned);
        assert_int_equal(mark_of(s, "desired"), 0);
        assert_int_equal(mark_of(s, "gone"), 1000);
        assert_int_equal(mark_of(s, "live"), 1000);
        assert_int_equal(mark_of(s, "untold"), 0);

        /* Within the retention: kept; the mark keeps its first value. */
        assert_int_equal(store_prune(s, items, ELEMENTSOF(items), 1099, 100, &c), 0);
        assert_int_equal(c.instances, 0);
        assert_true(recorded(s, "gone"));
        assert_int_equal(mark_of(s, "gone"), 1000);

        /* An upsert (a listing's status) leaves the mark alone. */
        InstanceRecord up = sample((char *) "gone");
        up.status = (char *) "DELETED";
        assert_int_equal(store_put_instance(s, &up), 0);
        assert_int_equal(mark_of(s, "gone"), 1000);

        /* Past it: the gone one goes; the live one never does; the desired and the
         * name not given stay. */
        assert_int_equal(store_prune(s, items, ELEMENTSOF(items), 1100, 100, &c), 0);
        assert_int_equal(c.instances, 1);
        assert_true(items[1].pruned);
        assert_false(items[0].pruned || items[2].pruned);
        assert_false(recorded(s, "gone"));
        assert_true(recorded(s, "desired") && recorded(s, "live") && recorded(s, "untold"));
        assert_int_equal(store_prune(s, items, ELEMENTSOF(items), 1000000, 100, &c), 0);
        assert_true(recorded(s, "live"));
        assert_false(items[1].pruned);   /* nothing left to delete */

        /* A name back in the tree loses its mark: leaving again starts the clock anew. */
        StorePruneItem back[] = { { .name = "live", .verdict = STORE_PRUNE_DESIRED } };
        assert_int_equal(store_prune(s, back, 1, 2000000, 100, &c), 0);
        assert_int_equal(mark_of(s, "live"), 0);
        back[0].verdict = STORE_PRUNE_GONE;
        assert_int_equal(store_prune(s, back, 1, 3000000, 100, &c), 0);
        assert_false(back[0].pruned);
        assert_int_equal(mark_of(s, "live"), 3000000);
        assert_int_equal(store_prune(s, back, 1, 3000100, 100, &c), 0);
        assert_true(back[0].pruned);
        assert_false(recorded(s, "live"));

        /* Readers see the mark. */
        _cleanup_(store_freep) Store *ro = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_ONLY, &ro, NULL), 0);
        StorePruneItem mark[] = { { .name = "untold", .verdict = STORE_PRUNE_KEEP } };
        assert_int_equal(store_prune(s, mark, 1, 4000000, 100, &c), 0);
        assert_int_equal(mark_of(ro, "untold"), 4000000);
}

static void test_prune_intents(void **state) {
        Fixture *f = *state;
        _cleanup_(store_freep) Store *s = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);
        int64_t old = 0, young = 0, open = 0;
        assert_int_equal(store_add_intent(s, "a", "h", 1, &old), 0);
        assert_int_equal(store_add_intent(s, "b", "h", 2, &young), 0);
        assert_int_equal(store_add_intent(s, "c", "h", 3, &open), 0);
        assert_int_equal(store_resolve_intent(s, old, "accepted", 100), 0);
        assert_int_equal(store_resolve_intent(s, young, "accepted", 500), 0);

        StorePruneCounts c = {};
        assert_int_equal(store_prune(s, NULL, 0, 700, 300, &c), 0);
        assert_int_equal(c.intents, 1);
        assert_int_equal(c.instances, 0);
        assert_int_equal(store_resolve_intent(s, old, "x", 800), -ENOENT);
        assert_int_equal(store_resolve_intent(s, young, "x", 800), -EALREADY);

        /* An open intent is never pruned, however old. */
        assert_int_equal(store_prune(s, NULL, 0, INT64_MAX / 2, 300, &c), 0);
        assert_int_equal(c.intents, 1);
        CreateIntent *list = NULL;
        size_t n = 0;
        assert_int_equal(store_list_open_intents(s, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(list[0].id, open);
        create_intents_free(list, n);

        /* Ids are never reused after pruning (AUTOINCREMENT). */
        int64_t next = 0;
        assert_int_equal(store_add_intent(s, "d", "h", 4, &next), 0);
        assert_true(next > open);
}

/* One transaction: a failure half-way leaves everything as it was. */
static void test_prune_all_or_nothing(void **state) {
        Fixture *f = *state;
        _cleanup_(store_freep) Store *s = NULL;
        assert_int_equal(store_open(f->state, STORE_READ_WRITE, &s, NULL), 0);
        InstanceRecord r = sample((char *) "a");
        assert_int_equal(store_put_instance(s, &r), 0);
        int64_t id = 0;
        assert_int_equal(store_add_intent(s, "a", "h", 1, &id), 0);
        assert_int_equal(store_resolve_intent(s, id, "accepted", 1), 0);
        StorePruneItem items[] = { { .name = "a", .verdict = STORE_PRUNE_GONE }, { .name = NULL, .verdict = STORE_PRUNE_GONE } };
        assert_int_equal(store_prune(s, items, 2, 1000, 10, NULL), -EINVAL);
        assert_int_equal(mark_of(s, "a"), 0);
        assert_false(items[0].pruned);
        /* and the store is usable after */
        assert_int_equal(store_prune(s, items, 1, 1000, 10, NULL), 0);
        assert_int_equal(mark_of(s, "a"), 1000);
        assert_int_equal(store_resolve_intent(s, id, "x", 2), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
                T(test_open_creates_dir_wal_and_schema),
                T(test_open_existing_dir_keeps_mode),
                T(test_roundtrip),
                T(test_get_missing_and_delete),
                T(test_upsert_and_list_sorted),
                T(test_intents),
                T(test_rollback_and_uncommitted),
                T(test_migrate_from_zero),
                T(test_migrate_from_one_keeps_rows),
                T(test_newer_schema_refused),
                T(test_garbage_file_reported),
                T(test_corrupt_pages_reported),
                T(test_foreign_database_refused),
                T(test_read_only_missing),
                T(test_read_only_older_schema),
                T(test_reader_while_writer_writes),
                T(test_reader_after_writer_closed),
                T(test_read_only_previous_versions),
                T(test_migrate_from_three),
                T(test_migrate_ownership),
                T(test_prune_records),
                T(test_prune_intents),
                T(test_prune_all_or_nothing),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
