/* Huawei Cloud API signing, "SDK-HMAC-SHA256" (modelarts-api.md, Authentication),
 * pinned by the published test vectors. Pure: no I/O, no clock (the caller passes the
 * X-Sdk-Date), so the emulator can verify with the same code the client signs with. */
#pragma once

#include <stddef.h>

typedef struct SignHeader {
        const char *name;   /* as sent, any case */
        const char *value;
} SignHeader;

typedef struct SignRequest {
        const char *method;      /* "GET", "POST", ... */
        const char *host;        /* URL authority: host, plus ":port" only if non-default */
        const char *path;        /* raw path, e.g. /v1/{project}/demanager/instances */
        const char *query;       /* raw query without '?', decoded form rules apply; NULL = none */
        const SignHeader *headers;  /* headers to sign, x-sdk-date among them; host is added
                                     * from .host when not listed */
        size_t n_headers;
        const void *body;
        size_t body_len;
} SignRequest;

/* Canonical query string ("k=v&k2=v2", sorted, encoded), for the wire and for signing.
 * Caller frees. */
int sign_canonical_query(const char *raw_query, char **ret);

/* The canonical request text (step 7), for tests and the emulator's diagnostics. */
int sign_canonical_request(const SignRequest *req, char **ret_canonical, char **ret_signed_headers);

/* The full Authorization header value:
 * "SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex". Caller frees (not a
 * secret: the SK never leaves this function). x_sdk_date must equal the X-Sdk-Date header. */
int sign_authorization(const SignRequest *req, const char *x_sdk_date, const char *ak, const char *sk,
                       char **ret_authorization);

/* "YYYYMMDDTHHMMSSZ" for a UNIX time (UTC). */
void sign_format_date(long long unix_seconds, char out[17]);
