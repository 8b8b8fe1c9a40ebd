/* Temporary credentials from the ECS metadata service (`credentials: metadata`): the
 * pure parts. The fetching is the API client's (lib/api.c), on the same path as the
 * IAM password flow's token: before a request leaves, keys must be in hand.
 *
 * What Huawei's SDKs do (huaweicloud-sdk-go-v3 core/auth/internal/metadata_accessor.go,
 * core/auth/base_credentials.go), and what notebookd does the same way:
 *   PUT {endpoint}/meta-data/latest/api/token, X-Metadata-Token-Ttl-Seconds: 21600
 *       -> 200, the session token as the body (404/405/503: a service without session
 *       tokens; the SDK then asks without one, and so does notebookd);
 *   GET {endpoint}/openstack/latest/securitykey, X-Metadata-Token: <session token>
 *       -> 200 {"credential":{"access","secret","securitytoken","expires_at"}};
 *       401 (without the agency sentence): the session token expired, get a new one.
 *   expires_at is "2006-01-02T15:04:05Z", with or without fractional seconds.
 * Where notebookd differs: the SDK refreshes when less than 40 minutes are left, on every
 * request until the keys change; notebookd renews when the service has new keys (10
 * minutes before expiry), retries failed fetches with backoff, and names a missing
 * agency. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define METADATA_DEFAULT_ENDPOINT "http://169.254.169.254"
#define METADATA_TOKEN_PATH "/meta-data/latest/api/token"
#define METADATA_SECURITYKEY_PATH "/openstack/latest/securitykey"
/* The service's words when the ECS has no agency (what the SDK looks for in a 401). */
#define METADATA_NO_AGENCY_TEXT "Please configure Cloud Service Agency first"

typedef struct MetadataKeys {
        char *ak;               /* secret memory (credentials_secret_dup) */
        char *sk;
        char *security_token;
        int64_t expires_ms;     /* realtime */
        int64_t fetched_ms;     /* realtime */
} MetadataKeys;

MetadataKeys *metadata_keys_free(MetadataKeys *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(MetadataKeys *, metadata_keys_free);

/* "2024-03-16T08:30:00Z" or "...:00.000000Z" (UTC) -> ms since the epoch; -EINVAL. */
int metadata_parse_expires_at(const char *s, int64_t *ret_ms);

/* A securitykey answer (2xx body). -ENOKEY: no credential in it (no agency); -EBADMSG:
 * not that JSON, or a field missing or not a string, or expires_at unparsable;
 * -EINVAL: a key with bytes a header cannot carry; -EKEYEXPIRED: already expired at
 * now_ms. *ret_error (optional) says which, never a value. The JSON's copies of the
 * secrets are wiped before they are freed. */
int metadata_parse_securitykey(const char *body, size_t len, int64_t now_ms, MetadataKeys **ret,
                               char **ret_error);

/* True when an answer means "this ECS has no agency": 404 from securitykey, or any body
 * holding METADATA_NO_AGENCY_TEXT. */
bool metadata_answer_is_no_agency(long status, const char *body, size_t len);

/* When to fetch new keys (realtime ms): METADATA_RENEW_BEFORE_MS before expiry, or a
 * third of their life when that is shorter. */
int64_t metadata_renew_at_ms(const MetadataKeys *k);
/* After a renewal that brought back keys expiring at the same time as the old ones. */
int64_t metadata_same_keys_retry_at_ms(const MetadataKeys *k, int64_t now_ms);
/* Keys may sign a request now (not within the expiry margin). */
bool metadata_keys_usable(const MetadataKeys *k, int64_t now_ms);
/* A fetch is due: no keys, renew_at_ms reached, or the keys in hand may no longer sign
 * (a same-keys retry pending must not let requests go out inside the margin). */
bool metadata_keys_wanted(const MetadataKeys *k, int64_t renew_at_ms, int64_t now_ms);
/* Take a fetch's keys (consumed) into *cur and set *ret_renew_at_ms. Returns true when
 * they expire when the keys in hand do: the service has not issued the next ones yet.
 * Then *cur keeps its fetched_ms (the margin is a share of the keys' life since issue,
 * which a re-fetch does not lengthen): the same keys keep the struct in hand, and
 * different keys with that expiry inherit it. */
bool metadata_keys_take(MetadataKeys **cur, MetadataKeys *fetched, int64_t now_ms, int64_t *ret_renew_at_ms);
/* The wait after the failures-th failed fetch in a row (1-based); random_value jitters. */
int64_t metadata_retry_backoff_ms(unsigned failures, uint32_t random_value);
