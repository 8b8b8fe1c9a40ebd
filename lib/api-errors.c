/* Error classification (the ModelArts and API gateway error codes): what the engine
 * does next depends only on this. Pure: no I/O, so the whole table is unit-tested. */
#include <curl/curl.h>
#include <errno.h>
#include <string.h>

#include "api.h"
#include "limits.h"

const char *api_class_to_string(ApiClass c) {
        static const char *const names[_API_CLASS_MAX] = {
                [API_CLASS_OK] = "ok",
                [API_CLASS_ALREADY_EXISTS] = "already-exists",
                [API_CLASS_NOT_FOUND] = "not-found",
                [API_CLASS_PERMANENT] = "permanent",
                [API_CLASS_AUTH] = "auth",
                [API_CLASS_FORBIDDEN] = "forbidden",
                [API_CLASS_ACCOUNT_FROZEN] = "account-frozen",
                [API_CLASS_THROTTLED] = "throttled",
                [API_CLASS_TRANSIENT] = "transient",
                [API_CLASS_UNKNOWN_OUTCOME] = "unknown-outcome",
        };
        return (unsigned) c < _API_CLASS_MAX ? names[c] : "invalid";
}

const char *api_call_to_string(ApiCall c) {
        static const char *const names[_API_CALL_MAX] = {
                [API_CALL_CREATE] = "create",   [API_CALL_LIST] = "list",
                [API_CALL_GET] = "get",         [API_CALL_DELETE] = "delete",
                [API_CALL_START] = "start",     [API_CALL_STOP] = "stop",
                [API_CALL_IAM_TOKEN] = "iam-token",
                [API_CALL_METADATA_TOKEN] = "metadata-token",
                [API_CALL_METADATA_KEYS] = "metadata-securitykey",
        };
        return (unsigned) c < _API_CALL_MAX ? names[c] : "invalid";
}

/* Codes that decide the class whatever the HTTP status (the contract sends them as 400,
 * but a gateway or a newer deployment may not: the code is the more specific signal). */
static const struct {
        const char *code;
        ApiClass class;
        int error;
        int64_t min_retry_ms;   /* the wait the code itself asks for */
} code_table[] = {
        { "ModelArts.6301", API_CLASS_ALREADY_EXISTS, -EEXIST, 0 },
        { "ModelArts.6309", API_CLASS_NOT_FOUND, -ENOENT, 0 },
        /* quota and instance count: permanent until something changes */
        { "ModelArts.0113", API_CLASS_PERMANENT, -EDQUOT, 0 },
        { "ModelArts.0118", API_CLASS_PERMANENT, -EDQUOT, 0 },
        { "ModelArts.6302", API_CLASS_PERMANENT, -EDQUOT, 0 },
        /* another operation in progress / insufficient backend resources: retry later */
        { "ModelArts.6357", API_CLASS_TRANSIENT, -EBUSY, 0 },
        { "ModelArts.6360", API_CLASS_TRANSIENT, -EAGAIN, 0 },
        /* "resources initialising, wait a minute" / "being restored, wait several minutes":
         * the cloud says when to come back */
        { "ModelArts.6355", API_CLASS_TRANSIENT, -EAGAIN, API_RETRY_6355_MS },
        { "ModelArts.6333", API_CLASS_TRANSIENT, -EAGAIN, API_RETRY_6333_MS },
        /* the account is frozen (arrears): nothing can be created until it is paid */
        { "ModelArts.6326", API_CLASS_ACCOUNT_FROZEN, -EKEYREVOKED, 0 },
        /* authenticated, but an IAM policy denies this operation: the credentials are
         * fine, only this call is refused (a 403, which would otherwise read as AUTH) */
        { "ModelArts.0108", API_CLASS_FORBIDDEN, -EPERM, 0 },
        { "ModelArts.0112", API_CLASS_FORBIDDEN, -EPERM, 0 },
        /* throttling codes, in case one arrives without a 429 */
        { "APIG.0308", API_CLASS_THROTTLED, -EBUSY, 0 },
        { "ModelArts.2799", API_CLASS_THROTTLED, -EBUSY, 0 },
        { "ModelArts.4206", API_CLASS_THROTTLED, -EBUSY, 0 },
        { "ModelArts.6101", API_CLASS_THROTTLED, -EBUSY, 0 },
};

static bool is_instance_call(ApiCall call) {
        return call == API_CALL_GET || call == API_CALL_DELETE || call == API_CALL_START || call == API_CALL_STOP;
}

ApiClass api_classify(ApiCall call, int transport_error, bool sent, long http_status, const char *error_code,
                      int *ret_errno) {
        ApiClass class;
        int error;

        if (transport_error != 0 && (http_status <= 0 || (http_status >= 200 && http_status < 300))) {
                /* No usable answer. A create that reached the server may have made the
                 * instance: only a listing can tell, never a blind retry (duplicates). A
                 * cancelled create on the wire is the same case. "Connect failed" (not sent)
                 * is safe to retry. */
                error = transport_error < 0 ? transport_error : -EIO;
                class = call == API_CALL_CREATE && sent ? API_CLASS_UNKNOWN_OUTCOME : API_CLASS_TRANSIENT;
                goto done;
        }

        /* A policy denial is a 403 with its own code: the one 403 that says the
         * credentials were accepted, so it must not stop the client. */
        if (http_status == 403 && error_code &&
            (streq(error_code, "ModelArts.0108") || streq(error_code, "ModelArts.0112"))) {
                class = API_CLASS_FORBIDDEN;
                error = -EPERM;
                goto done;
        }
        /* Any other 401/403, whatever the code: 5 bad signatures lock the AK, so any doubt
         * about the credentials stops the client. 403 includes ModelArts.0210 (project). */
        if (http_status == 401 || http_status == 403) {
                class = API_CLASS_AUTH;
                error = -EACCES;
                goto done;
        }
        if (http_status == 429) {
                class = API_CLASS_THROTTLED;
                error = -EBUSY;
                goto done;
        }
        if (http_status >= 200 && http_status < 300) {
                class = API_CLASS_OK;
                error = 0;
                goto done;
        }

        /* The state answers of start/stop: the instance is (or is on its way to) where
         * the call wanted it, which is the goal: success, and the caller follows it.
         * The opposite transition in progress (a stop while it starts) is a retry. */
        if (error_code && (call == API_CALL_START || call == API_CALL_STOP)) {
                bool start = call == API_CALL_START;
                if (streq(error_code, start ? "ModelArts.6305" : "ModelArts.6307") ||
                    streq(error_code, start ? "ModelArts.6306" : "ModelArts.6308")) {
                        class = API_CLASS_OK;
                        error = 0;
                        goto done;
                }
                if (streq(error_code, start ? "ModelArts.6308" : "ModelArts.6306")) {
                        class = API_CLASS_TRANSIENT;
                        error = -EBUSY;
                        goto done;
                }
        }

        if (error_code)
                for (size_t i = 0; i < ELEMENTSOF(code_table); i++)
                        if (streq(error_code, code_table[i].code)) {
                                class = code_table[i].class;
                                error = code_table[i].error;
                                goto done;
                        }

        if (http_status >= 500) {
                /* A gateway that timed out or lost the backend (502/504, no ModelArts code)
                 * may have forwarded a create that then succeeded. */
                bool from_service = error_code && strncmp(error_code, "ModelArts.", 10) == 0;
                if (call == API_CALL_CREATE && (http_status == 502 || http_status == 504) && !from_service) {
                        class = API_CLASS_UNKNOWN_OUTCOME;
                        error = -EIO;
                } else {
                        class = API_CLASS_TRANSIENT;
                        error = http_status == 503 ? -EAGAIN : -EIO;
                }
                goto done;
        }
        if (http_status == 408) {
                /* The server gave up reading the request: it was not processed. */
                class = API_CLASS_TRANSIENT;
                error = -ETIMEDOUT;
                goto done;
        }
        if (http_status == 404 && is_instance_call(call)) {
                class = API_CLASS_NOT_FOUND;
                error = -ENOENT;
                goto done;
        }

        /* The documented 400 codes (6316..6336, 6358...), unknown 4xx, a 404 on the
         * collection (wrong endpoint), redirects (never followed): nothing a retry fixes. */
        class = API_CLASS_PERMANENT;
        error = http_status == 404 ? -ENOENT : (http_status >= 300 && http_status < 400) ? -EREMOTE : -EINVAL;
done:
        if (ret_errno)
                *ret_errno = error;
        return class;
}

int64_t api_error_min_retry_ms(const char *error_code) {
        if (error_code)
                for (size_t i = 0; i < ELEMENTSOF(code_table); i++)
                        if (streq(error_code, code_table[i].code))
                                return code_table[i].min_retry_ms;
        return 0;
}

int64_t api_throttle_backoff_ms(unsigned streak, uint32_t random_value) {
        int64_t span = API_DEFAULT_RETRY_AFTER_MAX_MS - API_DEFAULT_RETRY_AFTER_MIN_MS + 1;
        int64_t d = API_DEFAULT_RETRY_AFTER_MIN_MS + (int64_t) (random_value % (uint32_t) span);
        for (unsigned i = 1; i < streak && d < API_THROTTLE_MAX_MS; i++)
                d *= 2;
        return MIN(d, (int64_t) API_THROTTLE_MAX_MS);
}

int api_clock_offset_ms(const char *date, int64_t local_realtime_ms, int64_t *ret_offset_ms) {
        if (!date)
                return -EINVAL;
        /* curl_getdate: every HTTP-date form (IMF-fixdate, RFC 850, asctime), pure */
        time_t t = curl_getdate(date, NULL);
        if (t == (time_t) -1 || t < 0)
                return -EINVAL;
        *ret_offset_ms = local_realtime_ms - (int64_t) t * 1000;
        return 0;
}

bool api_clock_offset_too_large(int64_t offset_ms) {
        return offset_ms > API_CLOCK_SKEW_REPORT_MS || offset_ms < -API_CLOCK_SKEW_REPORT_MS;
}
