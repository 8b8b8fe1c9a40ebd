/* Temporary credentials from the ECS metadata service: parsing and timing (the rules
 * and what Huawei's SDK does are in metadata.h). */
#include "metadata.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credentials.h"
#include "limits.h"
#include "util.h"

MetadataKeys *metadata_keys_free(MetadataKeys *k) {
        if (!k)
                return NULL;
        credentials_secret_free(k->ak);
        credentials_secret_free(k->sk);
        credentials_secret_free(k->security_token);
        free(k);
        return NULL;
}

int metadata_parse_expires_at(const char *s, int64_t *ret_ms) {
        if (!s)
                return -EINVAL;
        struct tm tm = { 0 };
        const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!end)
                return -EINVAL;
        int64_t frac_ms = 0;
        if (*end == '.') {
                /* fractional seconds, any number of digits: keep the milliseconds */
                int digits = 0;
                for (end++; *end >= '0' && *end <= '9'; end++, digits++)
                        if (digits < 3)
                                frac_ms = frac_ms * 10 + (*end - '0');
                if (digits == 0)
                        return -EINVAL;
                for (; digits < 3; digits++)
                        frac_ms *= 10;
        }
        if (!streq(end, "Z"))
                return -EINVAL;
        time_t t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret_ms = (int64_t) t * 1000 + frac_ms;
        return 0;
}

/* A key goes into an HTTP header: printable ASCII without spaces. */
static bool header_safe(const char *s) {
        if (!*s)
                return false;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p <= 0x20 || *p >= 0x7f)
                        return false;
        return true;
}

/* cJSON keeps its own copies of the strings: wipe them before the tree is freed. */
static void wipe_strings(cJSON *j) {
        for (cJSON *c = j; c; c = c->next) {
                if (cJSON_IsString(c) && c->valuestring)
                        explicit_bzero(c->valuestring, strlen(c->valuestring));
                if (c->child)
                        wipe_strings(c->child);
        }
}

int metadata_parse_securitykey(const char *body, size_t len, int64_t now_ms, MetadataKeys **ret,
                               char **ret_error) {
        cJSON *j = body ? cJSON_ParseWithLength(body, len) : NULL;
        if (!j)
                return error_set(ret_error, -EBADMSG, "the securitykey answer is not JSON");
        int r;
        _cleanup_(metadata_keys_freep) MetadataKeys *k = NULL;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "credential");
        if (!cJSON_IsObject(c) || !c->child) {
                /* the service answers an empty credential for an ECS without agency */
                r = error_set(ret_error, -ENOKEY, "the securitykey answer holds no credential");
                goto finish;
        }
        const cJSON *ak = cJSON_GetObjectItemCaseSensitive(c, "access");
        const cJSON *sk = cJSON_GetObjectItemCaseSensitive(c, "secret");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(c, "securitytoken");
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c, "expires_at");
        const char *missing = !cJSON_IsString(ak) ? "access" : !cJSON_IsString(sk) ? "secret"
                              : !cJSON_IsString(st) ? "securitytoken" : !cJSON_IsString(exp) ? "expires_at" : NULL;
        if (missing) {
                r = error_set(ret_error, -EBADMSG, "the securitykey answer's credential has no string '%s'", missing);
                goto finish;
        }
        const char *bad = !header_safe(ak->valuestring) ? "access" : !header_safe(sk->valuestring) ? "secret"
                          : !header_safe(st->valuestring) ? "securitytoken" : NULL;
        if (bad) {
                r = error_set(ret_error, -EINVAL,
                         "the securitykey answer's '%s' is empty or holds whitespace, control or non-ASCII bytes", bad);
                goto finish;
        }
        if (strlen(ak->valuestring) > CREDENTIAL_MAX_SIZE || strlen(sk->valuestring) > CREDENTIAL_MAX_SIZE ||
            strlen(st->valuestring) > CREDENTIAL_MAX_SIZE) {
                r = error_set(ret_error, -EFBIG, "a key in the securitykey answer is longer than %d bytes",
                         CREDENTIAL_MAX_SIZE);
                goto finish;
        }
        int64_t expires;
        if (metadata_parse_expires_at(exp->valuestring, &expires) < 0) {
                _cleanup_free_ char *q = quote_for_log(exp->valuestring);
                r = error_set(ret_error, -EBADMSG, "the securitykey answer's expires_at %s is not YYYY-MM-DDTHH:MM:SS[.f]Z",
                         strempty(q));
                goto finish;
        }
        if (expires <= now_ms) {
                r = error_set(ret_error, -EKEYEXPIRED, "the metadata service handed out keys that expired %s",
                         exp->valuestring);
                goto finish;
        }
        k = calloc(1, sizeof(*k));
        if (!k) {
                r = -ENOMEM;
                goto finish;
        }
        k->ak = credentials_secret_dup(ak->valuestring, strlen(ak->valuestring));
        k->sk = credentials_secret_dup(sk->valuestring, strlen(sk->valuestring));
        k->security_token = credentials_secret_dup(st->valuestring, strlen(st->valuestring));
        if (!k->ak || !k->sk || !k->security_token) {
                r = -ENOMEM;
                goto finish;
        }
        k->expires_ms = expires;
        k->fetched_ms = now_ms;
        *ret = TAKE_PTR(k);
        r = 0;
finish:
        wipe_strings(j);
        cJSON_Delete(j);
        return r;
}

bool metadata_answer_is_no_agency(long status, const char *body, size_t len) {
        if (status == 404)
                return true;
        return body && memmem(body, len, METADATA_NO_AGENCY_TEXT, strlen(METADATA_NO_AGENCY_TEXT)) != NULL;
}

static int64_t life_of(const MetadataKeys *k) {
        return MAX(k->expires_ms - k->fetched_ms, (int64_t) 0);
}

int64_t metadata_renew_at_ms(const MetadataKeys *k) {
        return k->expires_ms - MIN((int64_t) METADATA_RENEW_BEFORE_MS, life_of(k) / 3);
}

int64_t metadata_same_keys_retry_at_ms(const MetadataKeys *k, int64_t now_ms) {
        int64_t left = MAX(k->expires_ms - now_ms, (int64_t) 0);
        return now_ms + MAX(MIN((int64_t) METADATA_SAME_KEYS_RETRY_MS, left / 4), (int64_t) 1);
}

bool metadata_keys_usable(const MetadataKeys *k, int64_t now_ms) {
        return k && now_ms < k->expires_ms - MIN((int64_t) METADATA_EXPIRY_MARGIN_MS, life_of(k) / 10);
}

bool metadata_keys_wanted(const MetadataKeys *k, int64_t renew_at_ms, int64_t now_ms) {
        return !metadata_keys_usable(k, now_ms) || now_ms >= renew_at_ms;
}

bool metadata_keys_take(MetadataKeys **cur, MetadataKeys *fetched, int64_t now_ms, int64_t *ret_renew_at_ms) {
        MetadataKeys *old = *cur;
        bool same = old && old->expires_ms == fetched->expires_ms;
        if (same && streq(old->ak, fetched->ak) && streq(old->sk, fetched->sk) &&
            streq(old->security_token, fetched->security_token)) {
                metadata_keys_free(fetched);
        } else {
                if (same)
                        fetched->fetched_ms = old->fetched_ms;
                metadata_keys_free(old);
                *cur = fetched;
        }
        *ret_renew_at_ms = same ? metadata_same_keys_retry_at_ms(*cur, now_ms) : metadata_renew_at_ms(*cur);
        return same;
}

int64_t metadata_retry_backoff_ms(unsigned failures, uint32_t random_value) {
        int64_t ms = METADATA_RETRY_MIN_MS;
        for (unsigned i = 1; i < failures && ms < METADATA_RETRY_MAX_MS; i++)
                ms *= 2;
        ms = MIN(ms, (int64_t) METADATA_RETRY_MAX_MS);
        return ms + (int64_t) (random_value % (uint32_t) (ms / 4 + 1));
}
