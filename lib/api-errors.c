/* Error classification (modelarts-api.md "Errors"): what the engine does next depends
 * only on this. Pure: no I/O, so the whole table is unit-tested. */
#include <errno.h>
#include <string.h>

#include "api.h"

const char *api_class_to_string(ApiClass c) {
        static const char *const names[_API_CLASS_MAX] = {
                [API_CLASS_OK] = "ok",
                [API_CLASS_ALREADY_EXISTS] = "already-exists",
                [API_CLASS_NOT_FOUND] = "not-found",
                [API_CLASS_PERMANENT] = "permanent",
                [API_CLASS_AUTH] = "auth",
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
        };
        return (unsigned) c < _API_CALL_MAX ? names[c] : "invalid";
}

/* Codes that decide the class whatever the HTTP status (the contract sends them as 400,
 * but a gateway or a newer deployment may not: the code is the more specific signal). */
static const struct {
        const char *code;
        ApiClass class;
        int error;
} code_table[] = {
        { "ModelArts.6301", API_CLASS_ALREADY_EXISTS, -EEXIST },
        { "ModelArts.6309", API_CLASS_NOT_FOUND, -ENOENT },
        /* quota and instance count: permanent until something changes */
        { "ModelArts.0113", API_CLASS_PERMANENT, -EDQUOT },
        { "ModelArts.0118", API_CLASS_PERMANENT, -EDQUOT },
        { "ModelArts.6302", API_CLASS_PERMANENT, -EDQUOT },
        /* another operation in progress / insufficient backend resources: retry later */
        { "ModelArts.6357", API_CLASS_TRANSIENT, -EBUSY },
        { "ModelArts.6360", API_CLASS_TRANSIENT, -EAGAIN },
        /* throttling codes, in case one arrives without a 429 */
        { "APIG.0308", API_CLASS_THROTTLED, -EBUSY },
        { "ModelArts.2799", API_CLASS_THROTTLED, -EBUSY },
        { "ModelArts.4206", API_CLASS_THROTTLED, -EBUSY },
        { "ModelArts.6101", API_CLASS_THROTTLED, -EBUSY },
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

        /* 401/403 first, whatever the code: 5 bad signatures lock the AK, so any doubt
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

        /* The contract's 400 table (6316..6336, 6358...), unknown 4xx, a 404 on the
         * collection (wrong endpoint), redirects (never followed): nothing a retry fixes. */
        class = API_CLASS_PERMANENT;
        error = http_status == 404 ? -ENOENT : (http_status >= 300 && http_status < 400) ? -EREMOTE : -EINVAL;
done:
        if (ret_errno)
                *ret_errno = error;
        return class;
}
