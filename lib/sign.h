/* Huawei Cloud API signing, "SDK-HMAC-SHA256" (Huawei Cloud's API signing guide),
 * pinned by the published test vectors. Pure: no I/O, no clock (the caller passes the
 * X-Sdk-Date), so the emulator can verify with the same code the client signs with.
 *
 * Encoding rule used everywhere below ("encode"): bytes A-Z a-z 0-9 - _ . ~ are kept,
 * every other byte (of the UTF-8 form) becomes %XX with uppercase hex.
 *
 * Errors: -EINVAL for a request that cannot be signed (bad method, header name, header
 * value with CR/LF, duplicate header, malformed %-escape, bad date), -ENOMEM, -EIO
 * (libcrypto failed). The verifier answers -EBADMSG / -EPERM, see sign_verify(). */
#pragma once

#include <stddef.h>

#define SIGN_ALGORITHM "SDK-HMAC-SHA256"
#define SIGN_DATE_LEN 16          /* "YYYYMMDDTHHMMSSZ" */
#define SIGN_SIGNATURE_HEX_LEN 64 /* lowercase hex HMAC-SHA256 */
/* SHA-256 of zero bytes: the payload hash of a request without a body. */
#define SIGN_EMPTY_PAYLOAD_HASH "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct SignHeader {
        const char *name;   /* as sent, any case */
        const char *value;  /* as sent; leading/trailing spaces and tabs are not signed */
} SignHeader;

/* A decoded query parameter (Huawei's SDK signers take the query this way). */
typedef struct SignParam {
        const char *key;
        const char *value;  /* NULL is the same as "" ("k" and "k=" both sign as "k=") */
} SignParam;

typedef struct SignRequest {
        const char *method;      /* "GET", "POST", ... */
        const char *host;        /* URL authority: host, plus ":port" only if non-default */
        /* The path as text, NOT percent-encoded (the SDKs and libmicrohttpd both hand the
         * decoded path): each '/'-separated segment is encoded here, and a '/' appended
         * when missing (for signing only). "" or NULL signs as "/". Paths built from
         * project and instance IDs need no encoding on the wire either. */
        const char *path;
        /* The query, either raw (wire form, without '?') or as decoded params; at most
         * one of the two. Raw: split on '&', then on the first '=', each part
         * percent-decoded; '+' is a literal plus (RFC 3986), not a space (that is HTML
         * form encoding): write %20 for a space. Whatever the input, the canonical query
         * never contains a raw '+', so the gateway decodes our wire query to the bytes we
         * signed whichever way it reads '+'. Empty components ("a=1&&b=2") are skipped. */
        const char *query;
        const SignParam *params;
        size_t n_params;
        const SignHeader *headers;  /* sign: the headers to sign, x-sdk-date among them; host
                                     * is added from .host when not listed. verify: every
                                     * header received (the signed ones are picked by name) */
        size_t n_headers;
        const void *body;
        size_t body_len;
} SignRequest;

/* Encode len bytes of s with the rule above (for building wire paths). Caller frees. */
int sign_uri_encode(const char *s, size_t len, char **ret);

/* Canonical URI of a path (rules at SignRequest.path). Caller frees. */
int sign_canonical_uri(const char *path, char **ret);

/* Canonical query string ("k=v&k2=v2", sorted by key then value in byte order, encoded),
 * for the wire and for signing; "" for NULL or an empty query. Caller frees. */
int sign_canonical_query(const char *raw_query, char **ret);
/* The same from decoded params. Caller frees. */
int sign_canonical_query_params(const SignParam *params, size_t n_params, char **ret);

/* The canonical request text (step 7) and the signed-headers list ("a;b;c"), for tests and
 * the emulator's diagnostics. Either output may be NULL. */
int sign_canonical_request(const SignRequest *req, char **ret_canonical, char **ret_signed_headers);

/* The full Authorization header value:
 * "SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex". Caller frees (not a
 * secret: the SK never leaves this function). x_sdk_date must equal the X-Sdk-Date header,
 * which must be among req->headers (-EINVAL otherwise). */
int sign_authorization(const SignRequest *req, const char *x_sdk_date, const char *ak, const char *sk,
                       char **ret_authorization);

/* A received Authorization header, parsed. */
typedef struct SignAuthorization {
        char *access;          /* the AK, as sent */
        char *signed_headers;  /* "a;b;c": lowercase names, strictly increasing */
        char signature[SIGN_SIGNATURE_HEX_LEN + 1];  /* lowercase hex */
} SignAuthorization;

/* Parse "SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=..." (the three in any
 * order, spaces after commas optional). -EBADMSG when it is not exactly that: another
 * algorithm, a missing, repeated or unknown part, an empty Access, a SignedHeaders list that
 * is not lowercase-sorted-unique (or longer than SIGN_MAX_HEADERS), a signature that is not
 * 64 lowercase hex digits. *ret is written only on success; release with
 * sign_authorization_done(). */
int sign_authorization_parse(const char *value, SignAuthorization *ret);
void sign_authorization_done(SignAuthorization *a);

/* Check a received request's Authorization header against the expected ak/sk.
 * x_sdk_date: the X-Sdk-Date the caller accepted (its own skew check: this file has no
 * clock), or NULL to take it from req->headers. Returns
 *   0        the signature is right;
 *   -EBADMSG the header is malformed, x-sdk-date is not signed, a signed header is absent
 *            or repeated in the request, the date is malformed or differs from x_sdk_date;
 *   -EPERM   the Access is not ak, or the signature does not match (compared in constant
 *            time). Parse the header with sign_authorization_parse() first to tell an
 *            unknown AK from a bad signature;
 *   -ENOMEM, -EIO. */
int sign_verify(const SignRequest *req, const char *x_sdk_date, const char *ak, const char *sk,
                const char *authorization);

/* "YYYYMMDDTHHMMSSZ" for a UNIX time (UTC). */
void sign_format_date(long long unix_seconds, char out[17]);
