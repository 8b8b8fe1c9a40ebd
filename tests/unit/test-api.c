/* lib/api*.c: parsing and classification (pure), then the client against a loopback
 * ModelArts stand-in on the same sd_event loop: signatures verified with sign_verify(),
 * paging, client-wide throttle and auth stop, unknown outcomes, the IAM password flow.
 * The loop runs until the awaited callback fires; nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "api.h"
#include "credentials.h"
#include "limits.h"
#include "loopback-server.h"
#include "sign.h"
#include "util.h"

#define IDLE_LIMIT_USEC (120ULL * 1000000ULL)   /* safety net against hangs, not a timing test */
#define PROJECT "ed43aef64dff4e5c81cb84b71adcb3fd"
#define AK "HPUAEXAMPLEAK0000001"
#define SK "exampleSecretKey0123456789abcdefghijABCD"

/* ======================= pure: parsing ======================= */

static void test_parse_error_forms(void **state) {
        (void) state;
        ApiError e;
        const char *b;

        b = "{\"error_code\":\"ModelArts.6301\",\"error_msg\":\"exists\"}";
        api_parse_error(b, strlen(b), &e);
        assert_string_equal(e.error_code, "ModelArts.6301");
        assert_string_equal(e.error_msg, "exists");
        assert_null(e.request_id);
        api_error_done(&e);

        b = "{\"error_code\":\"ModelArts.6309\",\"error_message\":\"old style\",\"extra\":[1,2]}";
        api_parse_error(b, strlen(b), &e);
        assert_string_equal(e.error_code, "ModelArts.6309");
        assert_string_equal(e.error_msg, "old style");
        api_error_done(&e);

        b = "{\"error_code\":\"APIG.0301\",\"error_msg\":\"Incorrect IAM authentication information\","
            "\"request_id\":\"abc123\"}";
        api_parse_error(b, strlen(b), &e);
        assert_string_equal(e.error_code, "APIG.0301");
        assert_string_equal(e.request_id, "abc123");
        api_error_done(&e);

        /* both message forms: error_msg wins */
        b = "{\"error_code\":\"X\",\"error_msg\":\"a\",\"error_message\":\"b\"}";
        api_parse_error(b, strlen(b), &e);
        assert_string_equal(e.error_msg, "a");
        api_error_done(&e);

        /* nested under "error" */
        b = "{\"error\":{\"error_code\":\"APIG.0308\",\"error_msg\":\"throttled\"},\"request_id\":\"r1\"}";
        api_parse_error(b, strlen(b), &e);
        assert_string_equal(e.error_code, "APIG.0308");
        assert_string_equal(e.request_id, "r1");
        api_error_done(&e);

        /* wrong types, not JSON, empty, not an object */
        const char *bad[] = { "{\"error_code\":6301,\"error_msg\":null}", "<html>502</html>", "", "[1]", "null" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                api_parse_error(bad[i], strlen(bad[i]), &e);
                assert_null(e.error_code);
                assert_null(e.error_msg);
                assert_null(e.request_id);
                api_error_done(&e);
        }
        api_parse_error(NULL, 0, &e);
        assert_null(e.error_code);
}

static const char *full_instance =
        "{\"id\":\"6fa459ea-ee8a-3ca4-894e-db77e160355e\",\"name\":\"nb-1\",\"description\":\"d\","
        "\"status\":\"CREATE_FAILED\",\"creation_timestamp\":\"1710491400000\","
        "\"latest_update_timestamp\":\"1710491500000\","
        "\"profile\":{\"id\":\"Python3\",\"name\":\"p\",\"de_type\":\"Notebook\","
        "\"provision\":{\"type\":\"Docker\",\"spec\":{\"engine\":\"CCE\",\"params\":{\"namespace\":\"n\"}}}},"
        "\"flavor\":\"modelarts.vm.cpu.2u\",\"flavor_details\":{\"name\":\"x\",\"params\":{\"cpu\":2}},"
        "\"spec\":{\"storage\":{\"type\":\"evs\",\"location\":{\"volume_size\":5}},"
        "\"annotations\":{\"url\":\"https://x\"},"
        "\"failed_reasons\":{\"code\":\"ModelArts.6329\",\"message\":\"sold out\",\"detail\":{}}},"
        "\"workspace\":{\"id\":\"0\"},\"some_future_field\":[{\"a\":null}]}";

static void test_parse_instance(void **state) {
        (void) state;
        RemoteInstance i;

        assert_int_equal(api_parse_instance(full_instance, strlen(full_instance), &i), 0);
        assert_string_equal(i.id, "6fa459ea-ee8a-3ca4-894e-db77e160355e");
        assert_string_equal(i.name, "nb-1");
        assert_string_equal(i.status, "CREATE_FAILED");
        assert_string_equal(i.description, "d");
        assert_string_equal(i.flavor, "modelarts.vm.cpu.2u");
        assert_string_equal(i.profile_id, "Python3");
        assert_string_equal(i.workspace_id, "0");
        assert_string_equal(i.failed_reason, "sold out");
        assert_int_equal(i.creation_timestamp_ms, 1710491400000LL);
        assert_int_equal(i.latest_update_timestamp_ms, 1710491500000LL);
        remote_instance_done(&i);

        /* minimal: only an id; numbers for timestamps; wrong types ignored */
        const char *b = "{\"id\":\"x1\",\"creation_timestamp\":1710491400123,\"latest_update_timestamp\":\"soon\","
                        "\"name\":42,\"profile\":\"Python3\",\"workspace\":[],\"spec\":null}";
        assert_int_equal(api_parse_instance(b, strlen(b), &i), 0);
        assert_string_equal(i.id, "x1");
        assert_null(i.name);
        assert_null(i.status);
        assert_null(i.profile_id);
        assert_null(i.workspace_id);
        assert_null(i.failed_reason);
        assert_int_equal(i.creation_timestamp_ms, 1710491400123LL);
        assert_int_equal(i.latest_update_timestamp_ms, 0);
        remote_instance_done(&i);

        /* failed_reasons as a list */
        b = "{\"id\":\"x2\",\"spec\":{\"failed_reasons\":[{\"message\":\"first\"},{\"message\":\"second\"}]}}";
        assert_int_equal(api_parse_instance(b, strlen(b), &i), 0);
        assert_string_equal(i.failed_reason, "first");
        remote_instance_done(&i);

        /* negative / huge timestamps are unknown, not garbage */
        b = "{\"id\":\"x3\",\"creation_timestamp\":-5,\"latest_update_timestamp\":\"99999999999999999999999\"}";
        assert_int_equal(api_parse_instance(b, strlen(b), &i), 0);
        assert_int_equal(i.creation_timestamp_ms, 0);
        assert_int_equal(i.latest_update_timestamp_ms, 0);
        remote_instance_done(&i);

        const char *bad[] = { "", "[]", "\"s\"", "{\"name\":\"no id\"}", "{\"id\":7}", "{broken" };
        for (size_t k = 0; k < ELEMENTSOF(bad); k++)
                assert_int_equal(api_parse_instance(bad[k], strlen(bad[k]), &i), -EBADMSG);
}

static void test_parse_list_page(void **state) {
        (void) state;
        RemoteInstanceList l = { 0 };
        int64_t total;
        size_t n;

        const char *b = "{\"total_count\":5,\"instances\":[{\"id\":\"a\",\"name\":\"na\"},7,{\"name\":\"noid\"},"
                        "{\"id\":\"b\",\"name\":\"nb\",\"status\":\"RUNNING\"},{\"id\":\"a\",\"name\":\"dup\"}],"
                        "\"unknown\":true}";
        assert_int_equal(api_parse_list_page(b, strlen(b), &l, &total, &n), 0);
        assert_int_equal(total, 5);
        assert_int_equal(n, 5);          /* raw items on the page, for the next offset */
        assert_int_equal(l.n, 2);        /* garbage and duplicates dropped */
        assert_string_equal(l.items[0].name, "na");
        assert_string_equal(l.items[1].status, "RUNNING");

        /* a second page appends; ids already seen are not repeated */
        b = "{\"total_count\":5,\"instances\":[{\"id\":\"b\"},{\"id\":\"c\"}]}";
        assert_int_equal(api_parse_list_page(b, strlen(b), &l, &total, &n), 0);
        assert_int_equal(l.n, 3);
        assert_non_null(remote_instance_list_find_id(&l, "c"));
        assert_string_equal(remote_instance_list_find_id(&l, "a")->name, "na");   /* the first one */
        assert_null(remote_instance_list_find_id(&l, "d"));
        assert_null(remote_instance_list_find_id(&l, NULL));
        remote_instance_list_clear(&l);
        assert_null(remote_instance_list_find_id(&l, "a"));

        /* no total_count: -1; empty list with the array left out */
        b = "{\"instances\":[]}";
        assert_int_equal(api_parse_list_page(b, strlen(b), &l, &total, &n), 0);
        assert_int_equal(total, -1);
        assert_int_equal(n, 0);
        b = "{\"total_count\":0}";
        assert_int_equal(api_parse_list_page(b, strlen(b), &l, &total, &n), 0);
        assert_int_equal(total, 0);
        assert_int_equal(l.n, 0);

        const char *bad[] = { "{\"total_count\":3}", "{\"instances\":{}}", "[]", "", "{\"instances\":[" };
        for (size_t k = 0; k < ELEMENTSOF(bad); k++)
                assert_int_equal(api_parse_list_page(bad[k], strlen(bad[k]), &l, &total, &n), -EBADMSG);
        remote_instance_list_clear(&l);
}

static void test_parse_retry_after(void **state) {
        (void) state;
        int64_t ms;
        /* 2015-10-21T07:28:00Z */
        const int64_t now = 1445412480000LL;

        assert_int_equal(api_parse_retry_after("7", now, &ms), 0);
        assert_int_equal(ms, 7000);
        assert_int_equal(api_parse_retry_after(" 0", now, &ms), 0);
        assert_int_equal(ms, 0);
        assert_int_equal(api_parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now, &ms), 0);
        assert_int_equal(ms, 30000);
        assert_int_equal(api_parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now, &ms), 0);
        assert_int_equal(ms, 0);   /* in the past: go now */
        assert_int_equal(api_parse_retry_after("999999999999", now, &ms), 0);
        assert_int_equal(ms, API_MAX_RETRY_AFTER_MS);
        assert_int_equal(api_parse_retry_after("Thu, 01 Jan 2099 00:00:00 GMT", now, &ms), 0);
        assert_int_equal(ms, API_MAX_RETRY_AFTER_MS);

        const char *bad[] = { "", "-1", "1.5", "soon", "Wed, 21 Oct 2015 07:28:30", NULL };
        for (size_t k = 0; k < ELEMENTSOF(bad); k++)
                assert_int_equal(api_parse_retry_after(bad[k], now, &ms), -EINVAL);
}

/* ======================= pure: classification ======================= */

static void test_classify_table(void **state) {
        (void) state;
        static const struct {
                ApiCall call;
                int transport;
                bool sent;
                long status;
                const char *code;
                ApiClass class;
                int error;
        } t[] = {
                { API_CALL_CREATE, 0, true, 201, NULL, API_CLASS_OK, 0 },
                { API_CALL_CREATE, 0, true, 200, NULL, API_CLASS_OK, 0 },
                { API_CALL_LIST, 0, true, 204, NULL, API_CLASS_OK, 0 },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6301", API_CLASS_ALREADY_EXISTS, -EEXIST },
                { API_CALL_GET, 0, true, 400, "ModelArts.6309", API_CLASS_NOT_FOUND, -ENOENT },
                { API_CALL_DELETE, 0, true, 404, NULL, API_CLASS_NOT_FOUND, -ENOENT },
                /* start/stop: already there, or on the way, is the goal; the opposite
                 * transition is a retry; 6304 (stop before deleting) is the caller's */
                { API_CALL_START, 0, true, 400, "ModelArts.6305", API_CLASS_OK, 0 },
                { API_CALL_START, 0, true, 400, "ModelArts.6306", API_CLASS_OK, 0 },
                { API_CALL_START, 0, true, 400, "ModelArts.6308", API_CLASS_TRANSIENT, -EBUSY },
                { API_CALL_STOP, 0, true, 400, "ModelArts.6307", API_CLASS_OK, 0 },
                { API_CALL_STOP, 0, true, 400, "ModelArts.6308", API_CLASS_OK, 0 },
                { API_CALL_STOP, 0, true, 400, "ModelArts.6306", API_CLASS_TRANSIENT, -EBUSY },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6307", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_DELETE, 0, true, 400, "ModelArts.6304", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_STOP, 0, true, 400, "ModelArts.6309", API_CLASS_NOT_FOUND, -ENOENT },
                { API_CALL_LIST, 0, true, 404, "APIG.0101", API_CLASS_PERMANENT, -ENOENT },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6302", API_CLASS_PERMANENT, -EDQUOT },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.0113", API_CLASS_PERMANENT, -EDQUOT },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.0118", API_CLASS_PERMANENT, -EDQUOT },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6316", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6317", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6318", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6358", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6323", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6328", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6329", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6330", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6331", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6332", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6334", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6335", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6336", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 400, NULL, API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 418, "Unknown.1", API_CLASS_PERMANENT, -EINVAL },
                { API_CALL_CREATE, 0, true, 302, NULL, API_CLASS_PERMANENT, -EREMOTE },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6357", API_CLASS_TRANSIENT, -EBUSY },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6360", API_CLASS_TRANSIENT, -EAGAIN },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6355", API_CLASS_TRANSIENT, -EAGAIN },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6333", API_CLASS_TRANSIENT, -EAGAIN },
                { API_CALL_CREATE, 0, true, 400, "ModelArts.6326", API_CLASS_ACCOUNT_FROZEN, -EKEYREVOKED },
                /* a policy denial is not a credentials failure: only that call is refused */
                { API_CALL_CREATE, 0, true, 403, "ModelArts.0112", API_CLASS_FORBIDDEN, -EPERM },
                { API_CALL_LIST, 0, true, 403, "ModelArts.0108", API_CLASS_FORBIDDEN, -EPERM },
                { API_CALL_CREATE, 0, true, 401, "ModelArts.0201", API_CLASS_AUTH, -EACCES },
                { API_CALL_LIST, 0, true, 401, "APIG.0301", API_CLASS_AUTH, -EACCES },
                { API_CALL_LIST, 0, true, 401, NULL, API_CLASS_AUTH, -EACCES },
                { API_CALL_CREATE, 0, true, 403, "ModelArts.0210", API_CLASS_AUTH, -EACCES },
                { API_CALL_GET, 0, true, 403, NULL, API_CLASS_AUTH, -EACCES },
                { API_CALL_CREATE, 0, true, 429, "APIG.0308", API_CLASS_THROTTLED, -EBUSY },
                { API_CALL_LIST, 0, true, 429, NULL, API_CLASS_THROTTLED, -EBUSY },
                { API_CALL_LIST, 0, true, 400, "ModelArts.4206", API_CLASS_THROTTLED, -EBUSY },
                { API_CALL_CREATE, 0, true, 500, "ModelArts.0010", API_CLASS_TRANSIENT, -EIO },
                { API_CALL_CREATE, 0, true, 503, NULL, API_CLASS_TRANSIENT, -EAGAIN },
                { API_CALL_LIST, 0, true, 504, NULL, API_CLASS_TRANSIENT, -EIO },
                { API_CALL_CREATE, 0, true, 504, NULL, API_CLASS_UNKNOWN_OUTCOME, -EIO },
                { API_CALL_CREATE, 0, true, 502, "APIG.0202", API_CLASS_UNKNOWN_OUTCOME, -EIO },
                { API_CALL_CREATE, 0, true, 408, NULL, API_CLASS_TRANSIENT, -ETIMEDOUT },
                /* transport */
                { API_CALL_CREATE, -ECONNREFUSED, false, 0, NULL, API_CLASS_TRANSIENT, -ECONNREFUSED },
                { API_CALL_CREATE, -ETIMEDOUT, false, 0, NULL, API_CLASS_TRANSIENT, -ETIMEDOUT },
                { API_CALL_CREATE, -ETIMEDOUT, true, 0, NULL, API_CLASS_UNKNOWN_OUTCOME, -ETIMEDOUT },
                { API_CALL_CREATE, -ECONNRESET, true, 0, NULL, API_CLASS_UNKNOWN_OUTCOME, -ECONNRESET },
                { API_CALL_CREATE, -ECONNRESET, true, 201, NULL, API_CLASS_UNKNOWN_OUTCOME, -ECONNRESET },
                { API_CALL_CREATE, -ECANCELED, true, 0, NULL, API_CLASS_UNKNOWN_OUTCOME, -ECANCELED },
                { API_CALL_CREATE, -ECANCELED, false, 0, NULL, API_CLASS_TRANSIENT, -ECANCELED },
                { API_CALL_LIST, -ETIMEDOUT, true, 0, NULL, API_CLASS_TRANSIENT, -ETIMEDOUT },
                { API_CALL_GET, -ECONNRESET, true, 0, NULL, API_CLASS_TRANSIENT, -ECONNRESET },
                { API_CALL_LIST, -EFBIG, true, 200, NULL, API_CLASS_TRANSIENT, -EFBIG },
                /* a broken body after a real error status: the status decides */
                { API_CALL_CREATE, -EFBIG, true, 400, NULL, API_CLASS_PERMANENT, -EINVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                int e = 12345;
                ApiClass c = api_classify(t[i].call, t[i].transport, t[i].sent, t[i].status, t[i].code, &e);
                if (c != t[i].class || e != t[i].error)
                        fail_msg("row %zu (%s %ld %s): got %s/%d, want %s/%d", i, api_call_to_string(t[i].call),
                                 t[i].status, strempty(t[i].code), api_class_to_string(c), e,
                                 api_class_to_string(t[i].class), t[i].error);
        }
        for (int c = 0; c < _API_CLASS_MAX; c++)
                assert_string_not_equal(api_class_to_string((ApiClass) c), "invalid");
        for (int c = 0; c < _API_CALL_MAX; c++)
                assert_string_not_equal(api_call_to_string((ApiCall) c), "invalid");
}

/* ======================= the client against a loopback server ======================= */

typedef enum Mode {
        M_API,       /* a small faithful fake */
        M_FIXED,     /* reply fixed_status / fixed_headers / fixed_body to every API call */
        M_HOLD,      /* never answer */
        M_DROP,      /* close without answering */
} Mode;

typedef struct Fixture {
        sd_event *event;
        LsServer *server;
        ApiClient *api;
        Credentials creds;
        char endpoint[128];

        Mode mode;
        int fixed_status;
        const char *fixed_headers;
        const char *fixed_body;
        unsigned n_instances;
        bool omit_total;
        /* list pages past the first are held, not answered, until the test answers them */
        bool hold_pages;
        LsConn *held_pages[16];
        int64_t held_offsets[16];
        unsigned n_held_pages;
        int list_page_status;   /* nonzero: pages past the first answer this, an error */

        /* what the server saw */
        unsigned api_requests, iam_requests, bad_signatures, unsigned_project, noncanonical_queries;
        unsigned list_requests;
        int64_t last_request_mono_ms;
        char *last_method, *last_target, *last_body, *last_auth_token, *last_security_token,
                *last_content_type, *last_project, *last_authorization, *iam_body;
} Fixture;

static void setstr(char **p, const char *v) {
        free(*p);
        *p = xstrdup(v);
}

static char *instance_json(const char *id, const char *name) {
        return xasprintf("{\"id\":\"%s\",\"name\":\"%s\",\"status\":\"CREATING\",\"creation_timestamp\":\"1710491400000\","
                         "\"profile\":{\"id\":\"Python3\"},\"flavor\":\"modelarts.vm.cpu.2u\",\"workspace\":{\"id\":\"0\"},"
                         "\"newer_field\":{\"x\":1}}",
                         id, name);
}

static int64_t query_int(const char *query, const char *key, int64_t dflt) {
        size_t kl = strlen(key);
        for (const char *p = query; p && *p;) {
                if (strncmp(p, key, kl) == 0 && p[kl] == '=')
                        return strtoll(p + kl + 1, NULL, 10);
                p = strchr(p, '&');
                if (p)
                        p++;
        }
        return dflt;
}

static void check_signature(Fixture *f, const LsRequest *req, const char *path, const char *query) {
        const char *authorization = ls_header(req, "Authorization");
        if (f->creds.kind != CREDENTIALS_AKSK) {
                if (authorization)
                        f->bad_signatures++;
                return;
        }
        SignHeader h[LS_MAX_HEADERS];
        for (size_t i = 0; i < req->n_headers; i++)
                h[i] = (SignHeader) { req->names[i], req->values[i] };
        SignRequest sr = {
                .method = req->method,
                .host = ls_header(req, "Host"),
                .path = path,
                .query = query,
                .headers = h,
                .n_headers = req->n_headers,
                .body = req->body,
                .body_len = req->body_len,
        };
        if (!authorization || sign_verify(&sr, NULL, f->creds.ak, f->creds.sk, authorization) != 0)
                f->bad_signatures++;
        SignAuthorization a;
        if (authorization && sign_authorization_parse(authorization, &a) == 0) {
                if (!strstr(a.signed_headers, "x-project-id"))
                        f->unsigned_project++;
                if (req->body_len > 0 && !strstr(a.signed_headers, "content-type"))
                        f->unsigned_project++;
                if (f->creds.security_token && !strstr(a.signed_headers, "x-security-token"))
                        f->unsigned_project++;
                sign_authorization_done(&a);
        }
        /* The wire query must be exactly the canonical one. */
        char *canon = NULL;
        if (sign_canonical_query(query, &canon) < 0 || !streq(canon, strempty(query)))
                f->noncanonical_queries++;
        free(canon);
}

/* A page of the fixture's n_instances: ids id-00000..., names nb-00000..., oldest first. */
static void list_reply(Fixture *f, LsConn *conn, int64_t offset, int64_t limit) {
        cJSON *o = cJSON_CreateObject();
        if (!f->omit_total)
                cJSON_AddNumberToObject(o, "total_count", f->n_instances);
        cJSON *arr = cJSON_AddArrayToObject(o, "instances");
        for (int64_t i = offset; i < (int64_t) f->n_instances && (limit == 0 || i < offset + limit); i++) {
                char id[32], name[32];
                snprintf(id, sizeof(id), "id-%05" PRId64, i);
                snprintf(name, sizeof(name), "nb-%05" PRId64, i);
                char *j = instance_json(id, name);
                cJSON_AddItemToArray(arr, cJSON_Parse(j));
                free(j);
        }
        char *body = cJSON_PrintUnformatted(o);
        ls_reply_str(conn, 200, "X-Request-Id: list-req\r\n", body);
        free(body);
        cJSON_Delete(o);
}

static void handler(LsServer *s, LsConn *conn, const LsRequest *req, void *userdata) {
        Fixture *f = userdata;
        (void) s;
        char path[512], *query = NULL;
        snprintf(path, sizeof(path), "%s", req->target);
        char *q = strchr(path, '?');
        if (q) {
                *q = '\0';
                query = q + 1;
        }

        if (streq(path, "/v3/auth/tokens")) {
                f->iam_requests++;
                setstr(&f->iam_body, req->body);
                ls_reply_str(conn, 201, "X-Subject-Token: iam-token-xyz\r\n",
                             "{\"token\":{\"expires_at\":\"2099-01-01T00:00:00.000000Z\",\"methods\":[\"password\"]}}");
                return;
        }

        f->api_requests++;
        f->last_request_mono_ms = now_monotonic_ms();
        setstr(&f->last_method, req->method);
        setstr(&f->last_target, req->target);
        setstr(&f->last_body, req->body);
        setstr(&f->last_auth_token, ls_header(req, "X-Auth-Token"));
        setstr(&f->last_security_token, ls_header(req, "X-Security-Token"));
        setstr(&f->last_content_type, ls_header(req, "Content-Type"));
        setstr(&f->last_project, ls_header(req, "X-Project-Id"));
        setstr(&f->last_authorization, ls_header(req, "Authorization"));
        check_signature(f, req, path, query);

        switch (f->mode) {
        case M_HOLD:
                return;
        case M_DROP:
                ls_drop(conn);
                return;
        case M_FIXED:
                ls_reply_str(conn, f->fixed_status, f->fixed_headers, f->fixed_body);
                return;
        case M_API:
                break;
        }

        const char *coll = "/v1/" PROJECT "/demanager/instances";
        size_t cl = strlen(coll);
        if (streq(path, coll) && streq(req->method, "GET")) {
                f->list_requests++;
                int64_t offset = query_int(query, "offset", 0), limit = query_int(query, "limit", 0);
                if (!query || !strstr(query, "de_type=Notebook")) {
                        ls_reply_str(conn, 400, NULL, "{\"error_code\":\"ModelArts.6335\",\"error_msg\":\"de_type\"}");
                        return;
                }
                if (offset > 0 && f->list_page_status) {
                        ls_reply_str(conn, f->list_page_status, NULL, "{\"error_code\":\"APIG.0308\",\"error_msg\":\"slow down\"}");
                        return;
                }
                if (offset > 0 && f->hold_pages && f->n_held_pages < ELEMENTSOF(f->held_pages)) {
                        f->held_offsets[f->n_held_pages] = offset;
                        f->held_pages[f->n_held_pages++] = conn;
                        return;
                }
                list_reply(f, conn, offset, limit);
        } else if (streq(path, coll) && streq(req->method, "POST")) {
                cJSON *b = cJSON_ParseWithLength(req->body, req->body_len);
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "name");
                char *j = instance_json("new-id-1", cJSON_IsString(name) ? name->valuestring : "?");
                ls_reply_str(conn, 201, NULL, j);
                free(j);
                cJSON_Delete(b);
        } else if (strncmp(path, coll, cl) == 0 && path[cl] == '/') {
                const char *id = path + cl + 1;
                if (strncmp(id, "missing", 7) == 0) {
                        ls_reply_str(conn, 400, "X-Request-Id: hdr-req\r\n",
                                     "{\"error_code\":\"ModelArts.6309\",\"error_msg\":\"instance not found\"}");
                } else if (streq(req->method, "GET")) {
                        char *j = instance_json(id, "got");
                        ls_reply_str(conn, 200, NULL, j);
                        free(j);
                } else if (streq(req->method, "DELETE")) {
                        ls_reply_str(conn, 200, NULL, "{\"instance_id\":\"x\"}");
                } else {
                        ls_reply_str(conn, 200, NULL, "{\"current_status\":\"STOPPING\",\"previous_state\":\"RUNNING\"}");
                }
        } else
                ls_reply_str(conn, 404, NULL, "{\"error_code\":\"APIG.0101\",\"error_msg\":\"no route\"}");
}

typedef enum CredKind { C_AKSK, C_TEMP, C_TOKEN, C_PASSWORD, C_NONE } CredKind;

static Fixture *fixture_new(CredKind kind, unsigned concurrency) {
        Fixture *f = calloc(1, sizeof(*f));
        assert_int_equal(sd_event_new(&f->event), 0);
        f->server = ls_new(f->event, handler, f);
        snprintf(f->endpoint, sizeof(f->endpoint), "http://127.0.0.1:%u", f->server->port);
        switch (kind) {
        case C_TEMP:
                f->creds.security_token = strdup("sec-token-123");
                f->creds.security_token_source = strdup("test");
                /* fall through */
        case C_AKSK:
                f->creds.kind = CREDENTIALS_AKSK;
                f->creds.ak = strdup(AK);
                f->creds.sk = strdup(SK);
                f->creds.ak_source = strdup("file /test/ak (ak_file)");
                f->creds.sk_source = strdup("file /test/sk (sk_file)");
                break;
        case C_TOKEN:
                f->creds.kind = CREDENTIALS_TOKEN;
                f->creds.token = strdup("static-token-1");
                f->creds.token_source = strdup("file /test/token (token_file)");
                break;
        case C_PASSWORD:
        case C_NONE:
                f->creds.kind = CREDENTIALS_PASSWORD;
                f->creds.password = strdup("pa55word");
                f->creds.iam_user = strdup("robot");
                f->creds.iam_domain = strdup("acme");
                f->creds.password_source = strdup("file /test/pw (password_file)");
                break;
        }
        ApiClientOptions o = {
                .endpoint = f->endpoint,
                .project_id = PROJECT,
                .credentials = kind == C_NONE ? NULL : &f->creds,
                .concurrency = concurrency,
                .request_timeout_ms = 2000,
                .iam_endpoint = f->endpoint,
        };
        char *m = NULL;
        int r = api_client_new(f->event, &o, &f->api, &m);
        if (r < 0)
                fail_msg("api_client_new: %d %s", r, strempty(m));
        free(m);
        return f;
}

static void fixture_free(Fixture *f) {
        api_client_free(f->api);
        ls_free(f->server);
        sd_event_unref(f->event);
        char **strs[] = { &f->last_method, &f->last_target, &f->last_body, &f->last_auth_token,
                          &f->last_security_token, &f->last_content_type, &f->last_project,
                          &f->last_authorization, &f->iam_body, &f->creds.ak, &f->creds.sk,
                          &f->creds.security_token, &f->creds.token, &f->creds.password, &f->creds.iam_user,
                          &f->creds.iam_domain, &f->creds.ak_source, &f->creds.sk_source,
                          &f->creds.security_token_source, &f->creds.token_source, &f->creds.password_source };
        for (size_t i = 0; i < ELEMENTSOF(strs); i++)
                free(*strs[i]);
        free(f);
}

typedef struct Got {
        bool done;
        int calls;
        ApiClass class;
        int error;
        long status;
        bool sent;
        char *code, *msg, *request_id, *message;
        int64_t retry_after_ms;
        RemoteInstance instance;
        bool has_instance;
        size_t list_n;
        char *list_first, *list_last;
        RemoteInstanceList kept;   /* on_list_keep: the whole listing */
} Got;

static void got_result(Got *g, const ApiResult *r) {
        g->done = true;
        g->calls++;
        g->class = r->class;
        g->error = r->error;
        g->status = r->http_status;
        g->sent = r->sent;
        g->code = xstrdup(r->error_code);
        g->msg = xstrdup(r->error_msg);
        g->request_id = xstrdup(r->request_id);
        g->message = xstrdup(r->message);
        g->retry_after_ms = r->retry_after_ms;
}

static void got_done(Got *g) {
        free(g->code);
        free(g->msg);
        free(g->request_id);
        free(g->message);
        free(g->list_first);
        free(g->list_last);
        remote_instance_done(&g->instance);
        memset(g, 0, sizeof(*g));
}

static void on_instance(ApiClient *c, const ApiResult *r, const RemoteInstance *i, void *userdata) {
        Got *g = userdata;
        (void) c;
        got_result(g, r);
        if (r->class == API_CLASS_OK)
                assert_non_null(i);
        else
                assert_null(i);
        if (i) {
                assert_int_equal(remote_instance_copy(i, &g->instance), 0);
                g->has_instance = true;
        }
}

static void on_list(ApiClient *c, const ApiResult *r, const RemoteInstanceList *l, void *userdata) {
        Got *g = userdata;
        (void) c;
        got_result(g, r);
        if (r->class == API_CLASS_OK) {
                assert_non_null(l);
                g->list_n = l->n;
                if (l->n) {
                        g->list_first = xstrdup(l->items[0].name);
                        g->list_last = xstrdup(l->items[l->n - 1].name);
                }
        } else
                assert_null(l);
}

static void on_list_keep(ApiClient *c, const ApiResult *r, const RemoteInstanceList *l, void *userdata) {
        Got *g = userdata;
        on_list(c, r, l, userdata);
        for (size_t i = 0; l && i < l->n; i++) {
                RemoteInstance copy;
                assert_int_equal(remote_instance_copy(&l->items[i], &copy), 0);
                assert_int_equal(remote_instance_list_append(&g->kept, &copy), 0);
        }
}

static void on_done(ApiClient *c, const ApiResult *r, void *userdata) {
        (void) c;
        got_result(userdata, r);
}

static void run_until(sd_event *e, const bool *flag) {
        while (!*flag)
                assert_true(sd_event_run(e, IDLE_LIMIT_USEC) > 0);
}

static NotebookSpec test_spec(void) {
        return (NotebookSpec) {
                .name = "notebook-demo_01",
                .profile_id = "Python3",
                .description = "created by daemon",
                .flavor = "modelarts.vm.cpu.2u",
                .storage_type = STORAGE_EVS,
                .volume_size = 5,
                .workspace_id = "0",
        };
}

static void test_client_new_policy(void **state) {
        (void) state;
        sd_event *e = NULL;
        assert_int_equal(sd_event_new(&e), 0);
        ApiClient *c = NULL;
        char *m = NULL;

        ApiClientOptions o = { .endpoint = "http://modelarts.cn-north-4.myhuaweicloud.com", .project_id = PROJECT };
        assert_int_equal(api_client_new(e, &o, &c, &m), -EINVAL);
        assert_null(c);
        assert_non_null(strstr(m, "http://"));
        free(m);
        m = NULL;

        o.endpoint = "https://modelarts.cn-north-4.myhuaweicloud.com";
        o.project_id = "../../etc";
        assert_int_equal(api_client_new(e, &o, &c, &m), -EINVAL);
        assert_non_null(strstr(m, "project"));
        free(m);
        m = NULL;

        Credentials pw = { .kind = CREDENTIALS_PASSWORD, .password = (char[]) { "x" } };
        o.project_id = PROJECT;
        o.credentials = &pw;
        assert_int_equal(api_client_new(e, &o, &c, &m), -EINVAL);
        assert_non_null(strstr(m, "iam_endpoint"));
        free(m);
        m = NULL;

        /* plain http to the metadata address is for the metadata calls only: neither the
         * IAM password nor signed API calls go there in clear */
        o.iam_endpoint = "http://169.254.169.254/v3";
        assert_int_equal(api_client_new(e, &o, &c, &m), -EINVAL);
        assert_non_null(strstr(m, "http://169.254.169.254"));
        free(m);
        m = NULL;
        o.iam_endpoint = NULL;
        o.credentials = NULL;
        o.endpoint = "http://169.254.169.254";
        assert_int_equal(api_client_new(e, &o, &c, &m), -EINVAL);
        free(m);
        m = NULL;
        Credentials md = { .kind = CREDENTIALS_METADATA, .metadata_endpoint = (char[]) { "http://169.254.169.254" } };
        o.endpoint = "https://modelarts.cn-north-4.myhuaweicloud.com";
        o.credentials = &md;
        assert_int_equal(api_client_new(e, &o, &c, &m), 0);
        api_client_free(c);
        c = NULL;

        o.credentials = NULL;
        assert_int_equal(api_client_new(e, &o, &c, &m), 0);
        assert_null(m);
        assert_int_equal(api_get(c, "a/b", on_instance, NULL), -EINVAL);   /* no path injection */
        assert_int_equal(api_get(c, "..", on_instance, NULL), -EINVAL);
        assert_int_equal(api_client_pending(c), 0);
        api_client_free(c);
        sd_event_unref(e);
}

static void test_create_signed(void **state) {
        (void) state;
        Fixture *f = fixture_new(C_AKSK, 0);
        NotebookSpec s = test_spec();
        Got g = { 0 };

        assert_int_equal(api_create(f->api, &s, on_instance, &g), 0);
        assert_int_equal(api_client_pending(f->api), 1);
        assert_false(g.done);   /* never from inside the call */
        run_until(f->event, &g.done);

        assert_int_equal(g.calls, 1);
        assert_int_equal(g.class, API_CLASS_OK);
        assert_int_equal(g.error, 0);
        assert_int_equal(g.status, 201);
        assert_null(g.message);
        assert_true(g.has_instance);
        assert_string_equal(g.instance.id, "new-id-1");
        assert_string_equal(g.instance.name, "notebook-demo_01");
        assert_int_equal(g.instance.creation_timestamp_ms, 1710491400000LL);
        assert_int_equal(api_client_pending(f->api), 0);

        assert_string_equal(f->last_method, "POST");
        assert_string_equal(f->last_target, "/v1/" PROJECT "/demanager/instances");
        /* the body: exactly spec_to_create_body, unformatted (the body of the second
         * published signing vector, from Huawei's Node.js SDK signer) */
        assert_string_equal(f->last_body,
                            "{\"name\":\"notebook-demo_01\",\"profile_id\":\"Python3\",\"description\":\"created by "
                            "daemon\",\"flavor\":\"modelarts.vm.cpu.2u\",\"spec\":{\"storage\":{\"type\":\"evs\","
                            "\"location\":{\"volume_size\":5}}},\"workspace\":{\"id\":\"0\"}}");
        assert_string_equal(f->last_content_type, "application/json");
        assert_string_equal(f->last_project, PROJECT);
        assert_non_null(f->last_authorization);
        assert_non_null(strstr(f->last_authorization, "SDK-HMAC-SHA256 Access=" AK ", SignedHeaders="
                                                      "content-type;host;x-project-id;x-sdk-date, Signature="));
        assert_null(f->last_auth_token);
        assert_int_equal(f->bad_signatures, 0);
        assert_int_equal(f->unsigned_project, 0);
        got_done(&g);
        fixture_free(f);
}

static void test_temporary_credentials_signed(void **state) {
        (void) state;
        Fixture *f = fixture_new(C_TEMP, 0);
        Got g = { 0 };
        assert_int_equal(api_get(f->api, "abc-1", on_instance, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_OK);
        assert_string_equal(g.instance.id, "abc-1");
        assert_string_equal(f->last_security_token, "sec-token-123");
        if (!strstr(f->last_authorization, "SignedHeaders=host;x-project-id;x-sdk-date;x-security-token,"))
                fail_msg("%s", f->last_authorization);
        assert_null(f->last_content_type);   /* no body, nothing to type */
        assert_int_equal(f->bad_signatures, 0);
        assert_int_equal(f->unsigned_project, 0);
        got_done(&g);
        fixture_free(f);
}

static void test_token_auth(void **state) {
        (void) state;
        Fixture *f = fixture_new(C_TOKEN, 0);
        Got g = { 0 };
        assert_int_equal(api_delete(f->api, "abc-2", on_done, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_OK);
        assert_string_equal(f->last_method, "DELETE");
        assert_string_equal(f->last_target, "/v1/" PROJECT "/demanager/instances/abc-2");
        assert_string_equal(f->last_auth_token, "static-token-1");
        assert_null(f->last_authorization);
        assert_string_equal(f->last_project, PROJECT);
        assert_int_equal(f->bad_signatures, 0);
        got_done(&g);

        assert_int_equal(api_stop(f->api, "abc-2", on_done, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_OK);
        assert_string_equal(f->last_method, "POST");
        assert_string_equal(f->last_target, "/v1/" PROJECT "/demanager/instances/abc-2/action");
        assert_string_equal(f->last_body, "{\"action\":\"stop\"}");
        got_done(&g);
        assert_int_equal(api_start(f->api, "abc-2", on_done, &g), 0);
        run_until(f->event, &g.done);
        assert_string_equal(f->last_body, "{\"action\":\"start\"}");
        got_done(&g);
        fixture_free(f);
}

/* Pages may arrive in any order: every instance once, whatever the order. */
static void assert_all_listed(const RemoteInstanceList *l, unsigned n) {
        assert_int_equal(l->n, n);
        for (unsigned i = 0; i < n; i++) {
                char id[32], name[32];
                snprintf(id, sizeof(id), "id-%05u", i);
                snprintf(name, sizeof(name), "nb-%05u", i);
                const RemoteInstance *x = remote_instance_list_find_id(l, id);
                assert_non_null(x);
                assert_string_equal(x->name, name);
        }
}

static void list_case(unsigned n_instances, bool omit_total, unsigned want_requests) {
        Fixture *f = fixture_new(C_AKSK, 0);
        Got g = { 0 };
        f->n_instances = n_instances;
        f->omit_total = omit_total;
        assert_int_equal(api_list(f->api, NULL, on_list_keep, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_OK);
        assert_int_equal(g.list_n, n_instances);
        assert_all_listed(&g.kept, n_instances);
        remote_instance_list_clear(&g.kept);
        assert_int_equal(f->list_requests, want_requests);
        assert_int_equal(f->bad_signatures, 0);
        assert_int_equal(f->noncanonical_queries, 0);
        assert_non_null(strstr(f->last_target, "de_type=Notebook"));
        assert_non_null(strstr(f->last_target, "limit=100"));
        got_done(&g);
        fixture_free(f);
}

static void test_list_paging(void **state) {
        (void) state;
        list_case(0, false, 1);
        list_case(3, false, 1);
        list_case(250, false, 3);    /* 100 + 100 + 50 */
        list_case(200, false, 2);    /* total_count reached: no empty third page */
        list_case(200, true, 3);     /* without total_count: stop on the empty page */
        list_case(150, true, 2);     /* ... or on a short one */
}

/* With total_count on the first page, the other pages are asked for together: all of
 * them are at the server before any is answered (one round trip, not one per page), and
 * answered in reverse order they still make the whole listing. */
static void test_list_pages_in_parallel(void **state) {
        (void) state;
        Fixture *f = fixture_new(C_AKSK, 8);
        Got g = { 0 };
        f->n_instances = 750;   /* 8 pages: the first, then 7 at once */
        f->hold_pages = true;
        assert_int_equal(api_list(f->api, NULL, on_list_keep, &g), 0);
        /* a client that pages one by one waits for the held page: quiet, it fails here */
        while (f->n_held_pages < 7) {
                int r = sd_event_run(f->event, 30ULL * 1000000ULL);
                assert_true(r >= 0);
                if (r == 0)
                        break;
        }
        assert_int_equal(f->n_held_pages, 7);
        assert_false(g.done);
        for (unsigned i = f->n_held_pages; i-- > 0;)
                list_reply(f, f->held_pages[i], f->held_offsets[i], API_LIST_PAGE_SIZE);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_OK);
        assert_all_listed(&g.kept, 750);
        assert_int_equal(f->list_requests, 8);
        remote_instance_list_clear(&g.kept);
        got_done(&g);
        fixture_free(f);

        /* one page failing fails the listing, once; a listing with a hole judges nothing */
        f = fixture_new(C_AKSK, 8);
        g = (Got) { 0 };
        f->n_instances = 750;
        f->list_page_status = 429;
        assert_int_equal(api_list(f->api, NULL, on_list, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_THROTTLED);
        assert_int_equal(g.calls, 1);
        /* the pages still out end (here: cancelled) without a second answer */
        api_client_cancel_all(f->api);
        assert_int_equal(g.calls, 1);
        got_done(&g);
        fixture_free(f);

        /* more than notebookd lists: refused after the first page, no page asked for */
        f = fixture_new(C_AKSK, 8);
        g = (Got) { 0 };
        f->n_instances = API_LIST_MAX_INSTANCES + 1;
        assert_int_equal(api_list(f->api, NULL, on_list, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_PERMANENT);
        assert_int_equal(g.error, -E2BIG);
        assert_int_equal(f->list_requests, 1);
        got_done(&g);
        fixture_free(f);
}

static void test_list_wire_query(void **state) {
        (void) state;
        Fixture *f = fixture_new(C_AKSK, 0);
        Got g = { 0 };
        f->n_instances = 1;
        assert_int_equal(api_list(f->api, NULL, on_list, &g), 0);
        run_until(f->event, &g.done);
        assert_string_equal(f->last_target, "/v1/" PROJECT "/demanager/instances"
                                            "?de_type=Notebook&limit=100&offset=0&order=asc&sortby=creation_timestamp"
                                            "&workspace_id=0");
        assert_string_equal(g.request_id, "list-req");
        got_done(&g);
        fixture_free(f);

        /* another workspace is named; items that do not say theirs are in it */
        f = fixture_new(C_AKSK, 0);
        f->mode = M_FIXED;
        f->fixed_status = 200;
        f->fixed_body = "{\"total_count\":\"2\",\"instances\":[{\"id\":\"i-1\",\"name\":\"a\"},"
                        "{\"id\":\"i-2\",\"name\":\"b\",\"workspace\":{\"id\":\"ws-b\"}}]}";
        assert_int_equal(api_list(f->api, "ws-a", on_list_keep, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_OK);
        assert_non_null(strstr(f->last_target, "&workspace_id=ws-a"));
        assert_int_equal(g.kept.n, 2);
        assert_string_equal(g.kept.items[0].workspace_id, "ws-a");
        assert_string_equal(g.kept.items[1].workspace_id, "ws-b");
        remote_instance_list_clear(&g.kept);
        got_done(&g);
        fixture_free(f);
}

static void fixed_case(CredKind kind, ApiCall call, int status, const char *headers, const char *body, ApiClass want,
                       Got *g, Fixture **ret) {
        Fixture *f = fixture_new(kind, 0);
        f->mode = M_FIXED;
        f->fixed_status = status;
        f->fixed_headers = headers;
        f->fixed_body = body;
        NotebookSpec s = test_spec();
        switch (call) {
        case API_CALL_CREATE:
                assert_int_equal(api_create(f->api, &s, on_instance, g), 0);
                break;
        case API_CALL_LIST:
                assert_int_equal(api_list(f->api, NULL, on_list, g), 0);
                break;
        default:
                assert_int_equal(api_get(f->api, "x-1", on_instance, g), 0);
                break;
        }
        run_until(f->event, &g->done);
        if (g->class != want)
                fail_msg("got %s, want %s (%s)", api_class_to_string(g->class), api_class_to_string(want),
                         strempty(g->message));
        *ret = f;
}

static void test_errors_end_to_end(void **state) {
        (void) state;
        Fixture *f;
        Got g = { 0 };

        fixed_case(C_AKSK, API_CALL_CREATE, 400, "X-Request-Id: hdr-1\r\n",
                   "{\"error_code\":\"ModelArts.6301\",\"error_msg\":\"The instance name already exists\"}",
                   API_CLASS_ALREADY_EXISTS, &g, &f);
        assert_int_equal(g.error, -EEXIST);
        assert_int_equal(g.status, 400);
        assert_string_equal(g.code, "ModelArts.6301");
        assert_string_equal(g.msg, "The instance name already exists");
        assert_string_equal(g.request_id, "hdr-1");   /* from the header when the body has none */
        assert_non_null(strstr(g.message, "ModelArts.6301"));
        got_done(&g);
        fixture_free(f);

        fixed_case(C_AKSK, API_CALL_GET, 400, NULL,
                   "{\"error_code\":\"ModelArts.6309\",\"error_message\":\"not found\",\"request_id\":\"body-1\"}",
                   API_CLASS_NOT_FOUND, &g, &f);
        assert_string_equal(g.msg, "not found");
        assert_string_equal(g.request_id, "body-1");
        got_done(&g);
        fixture_free(f);

        fixed_case(C_AKSK, API_CALL_CREATE, 400, NULL,
                   "{\"error_code\":\"ModelArts.6336\",\"error_msg\":\"bad\\nvalue\"}", API_CLASS_PERMANENT, &g, &f);
        assert_int_equal(g.error, -EINVAL);
        assert_null(strchr(g.msg, '\n'));   /* server text cannot forge log lines */
        got_done(&g);
        fixture_free(f);

        fixed_case(C_AKSK, API_CALL_LIST, 500, NULL, "{\"error_code\":\"ModelArts.0010\",\"error_msg\":\"internal\"}",
                   API_CLASS_TRANSIENT, &g, &f);
        got_done(&g);
        fixture_free(f);

        fixed_case(C_AKSK, API_CALL_LIST, 502, NULL, "<html>bad gateway</html>", API_CLASS_TRANSIENT, &g, &f);
        assert_null(g.code);
        assert_int_equal(g.status, 502);
        got_done(&g);
        fixture_free(f);

        /* 2xx with a body that is no instance: made, but unknown id: list before retrying */
        fixed_case(C_AKSK, API_CALL_CREATE, 201, NULL, "not json", API_CLASS_UNKNOWN_OUTCOME, &g, &f);
        assert_int_equal(g.error, -EBADMSG);
        got_done(&g);
        fixture_free(f);
        fixed_case(C_AKSK, API_CALL_GET, 200, NULL, "[]", API_CLASS_TRANSIENT, &g, &f);
        got_done(&g);
        fixture_free(f);

        /* 2xx whose body is an error, not an instance: that error, with its code */
        fixed_case(C_AKSK, API_CALL_CREATE, 200, NULL,
                   "{\"error_code\":\"ModelArts.6323\",\"error_message\":\"flavor not supported\"}",
                   API_CLASS_PERMANENT, &g, &f);
        assert_string_equal(g.code, "ModelArts.6323");
        assert_string_equal(g.msg, "flavor not supported");
        assert_int_equal(g.status, 200);
        assert_non_null(strstr(g.message, "ModelArts.6323"));
        got_done(&g);
        fixture_free(f);
        fixed_case(C_AKSK, API_CALL_LIST, 200, NULL, "{\"error_code\":\"ModelArts.6355\",\"error_msg\":\"wait\"}",
                   API_CLASS_TRANSIENT, &g, &f);
        assert_true(g.retry_after_ms >= API_RETRY_6355_MS);
        got_done(&g);
        fixture_free(f);
        /* the key spelt with a JSON escape is still the key (the quick check before
         * parsing must not miss it) */
        fixed_case(C_AKSK, API_CALL_CREATE, 200, NULL,
                   "{\"error\\u005fcode\":\"ModelArts.6323\",\"error_msg\":\"flavor not supported\"}",
                   API_CLASS_PERMANENT, &g, &f);
        assert_string_equal(g.code, "ModelArts.6323");
        got_done(&g);
        fixture_free(f);
        /* ... but an instance that also carries an empty error_code is an instance */
        fixed_case(C_AKSK, API_CALL_CREATE, 201, NULL,
                   "{\"id\":\"i-1\",\"name\":\"nb\",\"status\":\"CREATING\",\"error_code\":\"\"}",
                   API_CLASS_OK, &g, &f);
        got_done(&g);
        fixture_free(f);

        /* the codes that name their wait: never retried sooner */
        fixed_case(C_AKSK, API_CALL_CREATE, 400, NULL, "{\"error_code\":\"ModelArts.6355\",\"error_message\":\"init\"}",
                   API_CLASS_TRANSIENT, &g, &f);
        assert_int_equal(g.retry_after_ms, API_RETRY_6355_MS);
        got_done(&g);
        fixture_free(f);
        fixed_case(C_AKSK, API_CALL_CREATE, 400, NULL, "{\"error_code\":\"ModelArts.6333\",\"error_message\":\"restoring\"}",
                   API_CLASS_TRANSIENT, &g, &f);
        assert_int_equal(g.retry_after_ms, API_RETRY_6333_MS);
        got_done(&g);
        fixture_free(f);

        /* IAM policy denial: the message says what is denied, and the client goes on */
        fixed_case(C_AKSK, API_CALL_CREATE, 403, NULL,
                   "{\"error_code\":\"ModelArts.0112\",\"error_msg\":\"Policy doesn't allow modelarts:notebook:create\"}",
                   API_CLASS_FORBIDDEN, &g, &f);
        assert_int_equal(g.error, -EPERM);
        assert_non_null(strstr(g.message, "denies"));
        assert_non_null(strstr(g.message, "create"));
        assert_false(api_client_auth_failed(f->api, NULL));
        got_done(&g);
        f->mode = M_API;
        assert_int_equal(api_get(f->api, "a-1", on_instance, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_OK);
        got_done(&g);
        fixture_free(f);

        fixed_case(C_AKSK, API_CALL_CREATE, 400, NULL, "{\"error_code\":\"ModelArts.6326\",\"error_message\":\"frozen\"}",
                   API_CLASS_ACCOUNT_FROZEN, &g, &f);
        assert_non_null(strstr(g.message, "frozen"));
        assert_false(api_client_auth_failed(f->api, NULL));
        got_done(&g);
        fixture_free(f);
}

/* Consecutive 429s without Retry-After: 2-5 s, then doubling, capped; Retry-After is a
 * floor; any other answer starts over. */
static void test_throttle_backoff_grows(void **state) {
        (void) state;
        for (uint32_t rnd = 0; rnd < 4000; rnd += 997) {
                int64_t prev = 0;
                for (unsigned streak = 1; streak <= 12; streak++) {
                        int64_t d = api_throttle_backoff_ms(streak, rnd);
                        int64_t lo = MIN((int64_t) API_DEFAULT_RETRY_AFTER_MIN_MS << (streak - 1), (int64_t) API_THROTTLE_MAX_MS);
                        int64_t hi = MIN((int64_t) API_DEFAULT_RETRY_AFTER_MAX_MS << (streak - 1), (int64_t) API_THROTTLE_MAX_MS);
                        assert_true(d >= lo && d <= hi);
                        assert_true(d >= prev);
                        prev = d;
                }
                assert_int_equal(prev, API_THROTTLE_MAX_MS);
        }
        assert_true(API_THROTTLE_MAX_MS >= 2 * 60 * 1000);

        Fixture *f;
        Got g = { 0 };
        fixed_case(C_AKSK, API_CALL_GET, 429, NULL, "{}", API_CLASS_THROTTLED, &g, &f);
        int64_t first = g.retry_after_ms;
        got_done(&g);
        assert_int_equal(api_get(f->api, "a-1", on_instance, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_THROTTLED);
        assert_true(g.retry_after_ms >= 2 * API_DEFAULT_RETRY_AFTER_MIN_MS);
        assert_true(g.retry_after_ms <= 2 * API_DEFAULT_RETRY_AFTER_MAX_MS);
        (void) first;
        got_done(&g);
        /* a success resets the streak */
        f->mode = M_API;
        assert_int_equal(api_get(f->api, "a-2", on_instance, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_OK);
        got_done(&g);
        f->mode = M_FIXED;
        f->fixed_headers = "Retry-After: 7\r\n";
        assert_int_equal(api_get(f->api, "a-3", on_instance, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_THROTTLED);
        assert_int_equal(g.retry_after_ms, 7000);   /* first of a new streak: 2-5 s, Retry-After is longer */
        got_done(&g);
        fixture_free(f);
}

static void test_throttle_holds_everything(void **state) {
        (void) state;
        Fixture *f;
        Got g = { 0 }, g2 = { 0 }, g3 = { 0 };

        fixed_case(C_AKSK, API_CALL_LIST, 429, "Retry-After: 1\r\n",
                   "{\"error_code\":\"APIG.0308\",\"error_msg\":\"The request is throttled\"}", API_CLASS_THROTTLED, &g,
                   &f);
        /* Retry-After is a floor under the backoff, not a replacement for it */
        assert_true(g.retry_after_ms >= API_DEFAULT_RETRY_AFTER_MIN_MS);
        assert_true(g.retry_after_ms <= API_DEFAULT_RETRY_AFTER_MAX_MS);
        assert_int_equal(g.error, -EBUSY);
        int64_t until = api_client_throttled_until_ms(f->api);
        assert_true(until > 0);
        unsigned before = f->api_requests;

        /* Two new calls: neither may leave before Retry-After has passed. */
        f->mode = M_API;
        assert_int_equal(api_get(f->api, "a-1", on_instance, &g2), 0);
        assert_int_equal(api_get(f->api, "a-2", on_instance, &g3), 0);
        assert_int_equal(api_client_pending(f->api), 2);
        run_until(f->event, &g2.done);
        run_until(f->event, &g3.done);
        assert_int_equal(g2.class, API_CLASS_OK);
        assert_int_equal(g3.class, API_CLASS_OK);
        assert_int_equal(f->api_requests, before + 2);
        assert_true(f->last_request_mono_ms >= until);
        assert_int_equal(api_client_throttled_until_ms(f->api), 0);
        /* The date was taken when sent, after the hold: still a valid signature. */
        assert_int_equal(f->bad_signatures, 0);
        got_done(&g);
        got_done(&g2);
        got_done(&g3);
        fixture_free(f);

        /* No Retry-After: the contract's 2-5 s */
        fixed_case(C_AKSK, API_CALL_GET, 429, NULL, "{}", API_CLASS_THROTTLED, &g, &f);
        assert_true(g.retry_after_ms >= API_DEFAULT_RETRY_AFTER_MIN_MS);
        assert_true(g.retry_after_ms <= API_DEFAULT_RETRY_AFTER_MAX_MS);
        got_done(&g);
        fixture_free(f);
}

static void test_auth_failure_stops_sending(void **state) {
        (void) state;
        Fixture *f;
        Got g = { 0 }, g2 = { 0 };
        const char *msg = NULL;

        fixed_case(C_AKSK, API_CALL_LIST, 401, NULL,
                   "{\"error_code\":\"APIG.0301\",\"error_msg\":\"Incorrect IAM authentication information: "
                   "verify aksk signature fail, AK " AK "\",\"request_id\":\"r-9\"}",
                   API_CLASS_AUTH, &g, &f);
        assert_int_equal(g.error, -EACCES);
        assert_non_null(strstr(g.message, "AK/SK"));           /* which credential kind */
        assert_non_null(strstr(g.message, "/test/ak"));        /* and where it came from */
        assert_null(strstr(g.message, SK));
        assert_null(strstr(g.msg, AK));                         /* echoed secrets are masked */
        assert_true(api_client_auth_failed(f->api, &msg));
        assert_non_null(msg);
        unsigned before = f->api_requests;

        /* Fail fast: nothing more goes out (5 bad signatures lock the AK). */
        for (int i = 0; i < 6; i++) {
                assert_int_equal(api_get(f->api, "a-1", on_instance, &g2), 0);
                assert_false(g2.done);
                run_until(f->event, &g2.done);
                assert_int_equal(g2.class, API_CLASS_AUTH);
                assert_false(g2.sent);
                got_done(&g2);
        }
        assert_int_equal(f->api_requests, before);

        api_client_reset_auth(f->api);
        assert_false(api_client_auth_failed(f->api, NULL));
        f->mode = M_API;
        assert_int_equal(api_get(f->api, "a-1", on_instance, &g2), 0);
        run_until(f->event, &g2.done);
        assert_int_equal(g2.class, API_CLASS_OK);
        assert_int_equal(f->api_requests, before + 1);
        got_done(&g);
        got_done(&g2);
        fixture_free(f);

        fixed_case(C_TOKEN, API_CALL_CREATE, 403, NULL,
                   "{\"error_code\":\"ModelArts.0210\",\"error_msg\":\"project id mismatch\"}", API_CLASS_AUTH, &g, &f);
        assert_non_null(strstr(g.message, "project ID " PROJECT));
        assert_non_null(strstr(g.message, "IAM token"));
        got_done(&g);
        fixture_free(f);
}

/* A refused signature while the server's Date is far from our clock is named as the
 * clock's fault (the gateway allows 15 minutes), with the offset; a near Date leaves the
 * usual "credentials rejected". */
static void test_clock_skew_named(void **state) {
        (void) state;
        int64_t off;
        /* 2019-11-15T03:36:55Z = 1573789015 */
        assert_int_equal(api_clock_offset_ms("Fri, 15 Nov 2019 03:36:55 GMT", 1573789015000LL + 1800000, &off), 0);
        assert_int_equal(off, 1800000);
        assert_true(api_clock_offset_too_large(off));
        assert_int_equal(api_clock_offset_ms("Friday, 15-Nov-19 03:36:55 GMT", 1573789015000LL - 1800000, &off), 0);
        assert_int_equal(off, -1800000);
        assert_true(api_clock_offset_too_large(off));
        assert_int_equal(api_clock_offset_ms("Fri, 15 Nov 2019 03:36:55 GMT", 1573789015000LL + 120000, &off), 0);
        assert_false(api_clock_offset_too_large(off));
        assert_false(api_clock_offset_too_large(API_CLOCK_SKEW_REPORT_MS));
        assert_true(api_clock_offset_too_large(-API_CLOCK_SKEW_REPORT_MS - 1));
        assert_int_equal(api_clock_offset_ms(NULL, 0, &off), -EINVAL);
        assert_int_equal(api_clock_offset_ms("not a date", 0, &off), -EINVAL);

        /* end to end: a 401 whose Date is an hour before our clock */
        time_t now = time(NULL) - 3600;
        struct tm tm;
        char hdr[128];
        assert_non_null(gmtime_r(&now, &tm));
        assert_true(strftime(hdr, sizeof hdr, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm) > 0);
        Fixture *f;
        Got g = { 0 };
        fixed_case(C_AKSK, API_CALL_LIST, 401, hdr,
                   "{\"error_code\":\"APIG.0301\",\"error_msg\":\"Incorrect IAM authentication information: "
                   "calc aksk signature fail:signature expired\",\"request_id\":\"r-9\"}",
                   API_CLASS_AUTH, &g, &f);
        assert_non_null(strstr(g.message, "the local clock is "));
        assert_non_null(strstr(g.message, " s ahead of the API's"));
        assert_non_null(strstr(g.message, "set the clock right"));
        assert_true(api_client_clock_skewed(f->api, &off));
        assert_true(off > 3500000 && off < 3700000);
        got_done(&g);
        fixture_free(f);

        /* the same refusal with a Date in step: the credentials are blamed */
        now = time(NULL);
        assert_non_null(gmtime_r(&now, &tm));
        assert_true(strftime(hdr, sizeof hdr, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm) > 0);
        g = (Got) { 0 };
        fixed_case(C_AKSK, API_CALL_LIST, 401, hdr,
                   "{\"error_code\":\"APIG.0301\",\"error_msg\":\"verify aksk signature fail\"}", API_CLASS_AUTH,
                   &g, &f);
        assert_null(strstr(g.message, "clock"));
        assert_non_null(strstr(g.message, "credentials were rejected"));
        assert_false(api_client_clock_skewed(f->api, NULL));
        got_done(&g);
        fixture_free(f);
}

static void test_unknown_outcome(void **state) {
        (void) state;
        Fixture *f = fixture_new(C_AKSK, 0);
        NotebookSpec s = test_spec();
        Got g = { 0 };

        /* connection dropped after the create was sent: unknown, list first */
        f->mode = M_DROP;
        assert_int_equal(api_create(f->api, &s, on_instance, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_UNKNOWN_OUTCOME);
        assert_true(g.sent);
        assert_non_null(strstr(g.message, "unknown"));
        got_done(&g);

        /* the same for a read is just transient */
        assert_int_equal(api_get(f->api, "x", on_instance, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_TRANSIENT);
        got_done(&g);

        /* timeout after sending */
        f->mode = M_HOLD;
        assert_int_equal(api_create(f->api, &s, on_instance, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_UNKNOWN_OUTCOME);
        assert_int_equal(g.error, -ETIMEDOUT);
        got_done(&g);
        fixture_free(f);

        /* connection refused: never sent, safe to retry */
        sd_event *e = NULL;
        assert_int_equal(sd_event_new(&e), 0);
        char ep[64];
        snprintf(ep, sizeof(ep), "http://127.0.0.1:%u", ls_dead_port());
        ApiClientOptions o = { .endpoint = ep, .project_id = PROJECT };
        ApiClient *c = NULL;
        assert_int_equal(api_client_new(e, &o, &c, NULL), 0);
        assert_int_equal(api_create(c, &s, on_instance, &g), 0);
        run_until(e, &g.done);
        assert_int_equal(g.class, API_CLASS_TRANSIENT);
        assert_int_equal(g.error, -ECONNREFUSED);
        assert_false(g.sent);
        got_done(&g);
        api_client_free(c);
        sd_event_unref(e);
}

/* One answered call, so the client trusts the credentials and uses its full concurrency. */
static void warm_up(Fixture *f) {
        Got g = { 0 };
        Mode m = f->mode;
        f->mode = M_API;
        assert_int_equal(api_get(f->api, "warm-up", on_instance, &g), 0);
        run_until(f->event, &g.done);
        assert_int_equal(g.class, API_CLASS_OK);
        got_done(&g);
        f->mode = m;
}

static void test_cancel_all(void **state) {
        (void) state;
        Fixture *f = fixture_new(C_AKSK, 2);
        NotebookSpec s = test_spec();
        Got g[4] = { 0 };
        warm_up(f);
        f->mode = M_HOLD;

        assert_int_equal(api_create(f->api, &s, on_instance, &g[0]), 0);
        assert_int_equal(api_get(f->api, "a", on_instance, &g[1]), 0);
        assert_int_equal(api_create(f->api, &s, on_instance, &g[2]), 0);
        assert_int_equal(api_list(f->api, NULL, on_list, &g[3]), 0);
        while (f->server->pending < 2)
                assert_true(sd_event_run(f->event, IDLE_LIMIT_USEC) > 0);
        /* concurrency 2: the other two wait in the client */
        assert_int_equal(f->server->max_pending, 2);
        assert_int_equal(api_client_pending(f->api), 4);

        api_client_cancel_all(f->api);
        for (int i = 0; i < 4; i++) {
                assert_int_equal(g[i].calls, 1);
                assert_int_equal(g[i].error, -ECANCELED);
        }
        assert_int_equal(g[0].class, API_CLASS_UNKNOWN_OUTCOME);   /* create on the wire */
        assert_int_equal(g[1].class, API_CLASS_TRANSIENT);
        assert_int_equal(g[2].class, API_CLASS_TRANSIENT);         /* create never sent */
        assert_false(g[2].sent);
        assert_int_equal(g[3].class, API_CLASS_TRANSIENT);
        assert_int_equal(api_client_pending(f->api), 0);
        for (int i = 0; i < 4; i++)
                got_done(&g[i]);
        fixture_free(f);
}

static void test_concurrency(void **state) {
        (void) state;
        Fixture *f = fixture_new(C_TOKEN, 3);
        Got g[10] = { 0 };
        warm_up(f);
        f->mode = M_HOLD;
        for (int i = 0; i < 10; i++)
                assert_int_equal(api_get(f->api, "c-1", on_instance, &g[i]), 0);
        unsigned answered = 0;
        while (answered < 10) {
                unsigned expect = MIN(3u, 10 - answered);
                while (f->server->pending < expect)
                        assert_true(sd_event_run(f->event, IDLE_LIMIT_USEC) > 0);
                LsConn *c;
                while ((c = ls_first_pending(f->server))) {
                        char *j = instance_json("c-1", "n");
                        ls_reply_str(c, 200, NULL, j);
                        free(j);
                        answered++;
                }
        }
        for (int i = 0; i < 10; i++) {
                run_until(f->event, &g[i].done);
                assert_int_equal(g[i].class, API_CLASS_OK);
                got_done(&g[i]);
        }
        assert_int_equal(f->server->max_pending, 3);
        assert_int_equal(f->server->connections_accepted, 3);
        fixture_free(f);
}

/* Wrong credentials and a batch of creates: one bad signature reaches the server, not
 * one per slot (5 in a row lock the AK). */
static void test_unproven_credentials_probe_alone(void **state) {
        (void) state;
        Fixture *f = fixture_new(C_AKSK, 8);
        NotebookSpec s = test_spec();
        Got g[8] = { 0 };
        f->mode = M_FIXED;
        f->fixed_status = 401;
        f->fixed_body = "{\"error_code\":\"APIG.0301\",\"error_msg\":\"verify aksk signature fail\"}";
        for (int i = 0; i < 8; i++)
                assert_int_equal(api_create(f->api, &s, on_instance, &g[i]), 0);
        for (int i = 0; i < 8; i++) {
                run_until(f->event, &g[i].done);
                assert_int_equal(g[i].class, API_CLASS_AUTH);
                assert_int_equal(g[i].sent, i == 0);
                got_done(&g[i]);
        }
        assert_int_equal(f->api_requests, 1);
        assert_int_equal(f->server->max_pending, 1);
        fixture_free(f);
}

static void test_iam_password_flow(void **state) {
        (void) state;
        Fixture *f = fixture_new(C_PASSWORD, 0);
        Got g[3] = { 0 };
        f->n_instances = 2;
        assert_int_equal(api_list(f->api, NULL, on_list, &g[0]), 0);
        assert_int_equal(api_get(f->api, "p-1", on_instance, &g[1]), 0);
        assert_int_equal(api_get(f->api, "p-2", on_instance, &g[2]), 0);
        for (int i = 0; i < 3; i++) {
                run_until(f->event, &g[i].done);
                assert_int_equal(g[i].class, API_CLASS_OK);
                got_done(&g[i]);
        }
        assert_int_equal(f->iam_requests, 1);   /* one token for all of them */
        assert_string_equal(f->last_auth_token, "iam-token-xyz");
        assert_null(f->last_authorization);

        cJSON *b = cJSON_Parse(f->iam_body);
        assert_non_null(b);
        const cJSON *user = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
                                                         cJSON_GetObjectItemCaseSensitive(b, "auth"), "identity"),
                                                 "password"),
                "user");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(user, "name")->valuestring, "robot");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(user, "password")->valuestring, "pa55word");
        assert_string_equal(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(user, "domain"), "name")->valuestring,
                "acme");
        const cJSON *project = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b, "auth"), "scope"), "project");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(project, "id")->valuestring, PROJECT);
        cJSON_Delete(b);
        fixture_free(f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_error_forms),
                cmocka_unit_test(test_parse_instance),
                cmocka_unit_test(test_parse_list_page),
                cmocka_unit_test(test_parse_retry_after),
                cmocka_unit_test(test_classify_table),
                cmocka_unit_test(test_client_new_policy),
                cmocka_unit_test(test_create_signed),
                cmocka_unit_test(test_temporary_credentials_signed),
                cmocka_unit_test(test_token_auth),
                cmocka_unit_test(test_list_paging),
                cmocka_unit_test(test_list_pages_in_parallel),
                cmocka_unit_test(test_list_wire_query),
                cmocka_unit_test(test_errors_end_to_end),
                cmocka_unit_test(test_throttle_holds_everything),
                cmocka_unit_test(test_throttle_backoff_grows),
                cmocka_unit_test(test_auth_failure_stops_sending),
                cmocka_unit_test(test_clock_skew_named),
                cmocka_unit_test(test_unknown_outcome),
                cmocka_unit_test(test_cancel_all),
                cmocka_unit_test(test_concurrency),
                cmocka_unit_test(test_unproven_credentials_probe_alone),
                cmocka_unit_test(test_iam_password_flow),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
