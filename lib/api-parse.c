/* Response parsing for the ModelArts DevEnviron v1 API (instances, listings, error
 * bodies). Defensive by rule: a body comes from the network, so every field may be
 * missing or of another type; unknown fields are ignored (newer deployments add some);
 * nothing here trusts a shape it has not checked. A second API generation gets its own
 * parse functions next to these. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "limits.h"
#include "util.h"

static void cjson_deletep(cJSON **j) {
        if (*j)
                cJSON_Delete(*j);
}

static cJSON *parse_json(const char *body, size_t len) {
        if (!body || len == 0)
                return NULL;
        return cJSON_ParseWithLength(body, len);
}

static const char *get_string(const cJSON *o, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

static const cJSON *get_object(const cJSON *o, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        return cJSON_IsObject(v) ? v : NULL;
}

/* A timestamp in ms: the API sends a string of digits, older answers a number. Anything
 * else (absent, garbage, out of range) is 0 = unknown. */
static int64_t get_timestamp_ms(const cJSON *o, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        int64_t t = 0;
        if (cJSON_IsString(v) && v->valuestring) {
                if (parse_int64(v->valuestring, 0, INT64_MAX, &t) < 0)
                        return 0;
                return t;
        }
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0 && v->valuedouble < 9.2e18)
                return (int64_t) v->valuedouble;
        return 0;
}

static int dup_field(char **dst, const char *src) {
        if (!src)
                return 0;
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

void api_error_done(ApiError *e) {
        if (!e)
                return;
        free(e->error_code);
        free(e->error_msg);
        free(e->request_id);
        *e = (ApiError) { 0 };
}

void api_parse_error(const char *body, size_t len, ApiError *ret) {
        _cleanup_(cjson_deletep) cJSON *j = parse_json(body, len);
        ApiError e = { 0 };

        if (cJSON_IsObject(j)) {
                /* Old responses say error_message; the gateway adds request_id. Some gateway
                 * answers nest everything under "error": look there too. */
                const cJSON *o = j;
                if (!get_string(o, "error_code") && get_object(o, "error"))
                        o = get_object(o, "error");
                const char *msg = get_string(o, "error_msg");
                if (!msg)
                        msg = get_string(o, "error_message");
                const char *rid = get_string(o, "request_id");
                if (!rid)
                        rid = get_string(j, "request_id");
                /* Allocation failures only lose detail, never the classification by status. */
                (void) dup_field(&e.error_code, get_string(o, "error_code"));
                (void) dup_field(&e.error_msg, msg);
                (void) dup_field(&e.request_id, rid);
        }
        *ret = e;
}

bool api_body_is_error(ApiCall call, const char *body, size_t len) {
        /* Most answers are not errors, and a list page is 100 KB of JSON that its parser
         * reads anyway: without the key's bytes (or an escape that could spell them) it
         * cannot be an error body, so do not parse it twice. */
        if (!body || (!memmem(body, len, "error_code", 10) && !memmem(body, len, "\\u", 2)))
                return false;
        _cleanup_(cjson_deletep) cJSON *j = parse_json(body, len);
        if (!cJSON_IsObject(j) || !get_string(j, "error_code"))
                return false;
        switch (call) {
        case API_CALL_CREATE:
        case API_CALL_GET:
                return !get_string(j, "id");
        case API_CALL_LIST:
                return !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "instances"));
        default:
                return true;
        }
}

static int parse_instance_object(const cJSON *o, RemoteInstance *ret) {
        RemoteInstance i = { 0 };
        const cJSON *profile = get_object(o, "profile");
        const cJSON *workspace = get_object(o, "workspace");
        const cJSON *spec = get_object(o, "spec");
        const char *failed = NULL;
        int r = 0;

        /* failed_reasons: an object in the docs; tolerate a list of them, or top level. */
        const cJSON *fr = spec ? cJSON_GetObjectItemCaseSensitive(spec, "failed_reasons") : NULL;
        if (!fr)
                fr = cJSON_GetObjectItemCaseSensitive(o, "failed_reasons");
        if (cJSON_IsArray(fr))
                fr = cJSON_GetArrayItem(fr, 0);
        if (cJSON_IsObject(fr)) {
                failed = get_string(fr, "message");
                if (!failed)
                        failed = get_string(fr, "detail");
                if (!failed)
                        failed = get_string(fr, "code");
        }

        const char *profile_id = profile ? get_string(profile, "id") : NULL;
        if (!profile_id)
                profile_id = get_string(o, "profile_id");

        r |= dup_field(&i.id, get_string(o, "id"));
        r |= dup_field(&i.name, get_string(o, "name"));
        r |= dup_field(&i.status, get_string(o, "status"));
        r |= dup_field(&i.description, get_string(o, "description"));
        r |= dup_field(&i.flavor, get_string(o, "flavor"));
        r |= dup_field(&i.profile_id, profile_id);
        r |= dup_field(&i.workspace_id, workspace ? get_string(workspace, "id") : NULL);
        r |= dup_field(&i.failed_reason, failed);
        i.creation_timestamp_ms = get_timestamp_ms(o, "creation_timestamp");
        i.latest_update_timestamp_ms = get_timestamp_ms(o, "latest_update_timestamp");
        if (r < 0) {
                remote_instance_done(&i);
                return -ENOMEM;
        }
        *ret = i;
        return 0;
}

int api_parse_instance(const char *body, size_t len, RemoteInstance *ret) {
        _cleanup_(cjson_deletep) cJSON *j = parse_json(body, len);
        if (!cJSON_IsObject(j))
                return -EBADMSG;
        /* An instance without an id is no instance we can ever address. */
        if (!get_string(j, "id"))
                return -EBADMSG;
        return parse_instance_object(j, ret);
}

int api_parse_list_page(const char *body, size_t len, RemoteInstanceList *list, int64_t *ret_total_count,
                        size_t *ret_page_items) {
        _cleanup_(cjson_deletep) cJSON *j = parse_json(body, len);
        if (!cJSON_IsObject(j))
                return -EBADMSG;

        int64_t total = -1;
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(j, "total_count");
        if (cJSON_IsNumber(tc) && isfinite(tc->valuedouble) && tc->valuedouble >= 0 && tc->valuedouble < 9.2e18)
                total = (int64_t) tc->valuedouble;
        else if (cJSON_IsString(tc) && parse_int64(tc->valuestring, 0, INT64_MAX, &total) < 0)
                total = -1;

        const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "instances");
        if (!items || cJSON_IsNull(items)) {
                /* Some deployments omit the array when there is nothing to list. */
                if (total > 0)
                        return -EBADMSG;
                if (ret_total_count)
                        *ret_total_count = total < 0 ? 0 : total;
                if (ret_page_items)
                        *ret_page_items = 0;
                return 0;
        }
        if (!cJSON_IsArray(items))
                return -EBADMSG;

        size_t n = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, items) {
                n++;
                if (!cJSON_IsObject(it))
                        continue;   /* garbage in a list does not hide the rest */
                if (!get_string(it, "id"))
                        continue;
                /* Offset paging over a changing set can show an instance twice. */
                if (remote_instance_list_find_id(list, get_string(it, "id")))
                        continue;
                if (list->n >= API_LIST_MAX_INSTANCES)
                        return -E2BIG;
                RemoteInstance i;
                int r = parse_instance_object(it, &i);
                if (r < 0)
                        return r;
                r = remote_instance_list_append(list, &i);
                if (r < 0) {
                        remote_instance_done(&i);
                        return r;
                }
        }
        if (ret_total_count)
                *ret_total_count = total;
        if (ret_page_items)
                *ret_page_items = n;
        return 0;
}

int api_parse_retry_after(const char *value, int64_t now_ms, int64_t *ret_ms) {
        if (!value)
                return -EINVAL;
        while (*value == ' ' || *value == '\t')
                value++;

        int64_t ms;
        int64_t secs;
        if (parse_int64(value, 0, INT64_MAX, &secs) == 0) {
                ms = secs > API_MAX_RETRY_AFTER_MS / 1000 ? API_MAX_RETRY_AFTER_MS : secs * 1000;
        } else {
                /* HTTP-date (RFC 9110): IMF-fixdate is what servers send. */
                struct tm tm = { 0 };
                const char *end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
                if (!end || *end)
                        return -EINVAL;
                time_t t = timegm(&tm);
                if (t == (time_t) -1)
                        return -EINVAL;
                ms = (int64_t) t * 1000 - now_ms;
        }
        *ret_ms = MAX(0, MIN(ms, (int64_t) API_MAX_RETRY_AFTER_MS));
        return 0;
}
