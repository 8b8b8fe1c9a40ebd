/* The gateway's side of authentication: AK/SK signatures (verified with lib/'s signer,
 * which the published vectors pin), X-Auth-Token, and the AK lock after repeated bad
 * signatures. Every failure is a 401 whose body names what failed, never the secret.
 *
 * What counts toward the lock: signatures that do not verify (wrong SK, wrong canonical
 * request, x-sdk-date unsigned, a signed header missing). An unknown AK, a malformed
 * header or a stale date are rejected without counting: the cloud's rule is about bad
 * signatures for one AK, and only the configured AK is tracked (bounded memory).
 * A good signature resets the count; a lock expires after lock_ms and then the count
 * starts again from zero. */
#include "emulator.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "macro.h"
#include "sign.h"
#include "util.h"

/* The contract: the gateway rejects more than 15 minutes of clock skew. */
#define MAX_SKEW_S (15 * 60)

const char *emu_auth_header(const AuthRequest *req, const char *name) {
        for (size_t i = 0; i < req->n_headers; i++)
                if (req->headers[i].name && strcasecmp(req->headers[i].name, name) == 0)
                        return req->headers[i].value;
        return NULL;
}

static bool secret_eq(const char *a, const char *b) {
        size_t n = strlen(a);
        return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/* "YYYYMMDDTHHMMSSZ" -> UNIX seconds; -EINVAL if malformed. */
static int parse_sdk_date(const char *s, long long *ret) {
        if (!s || strlen(s) != SIGN_DATE_LEN || s[8] != 'T' || s[15] != 'Z')
                return -EINVAL;
        int v[6];
        static const int at[6] = { 0, 4, 6, 9, 11, 13 }, len[6] = { 4, 2, 2, 2, 2, 2 };
        for (size_t k = 0; k < 6; k++) {
                v[k] = 0;
                for (int i = 0; i < len[k]; i++) {
                        char c = s[at[k] + i];
                        if (c < '0' || c > '9')
                                return -EINVAL;
                        v[k] = v[k] * 10 + (c - '0');
                }
        }
        if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
                return -EINVAL;
        struct tm tm = {
                .tm_year = v[0] - 1900, .tm_mon = v[1] - 1, .tm_mday = v[2],
                .tm_hour = v[3],        .tm_min = v[4],     .tm_sec = v[5],
        };
        time_t t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret = (long long) t;
        return 0;
}

static bool list_has(const char *semicolon_list, const char *name) {
        size_t n = strlen(name);
        for (const char *p = semicolon_list; p && *p;) {
                size_t k = strcspn(p, ";");
                if (k == n && strncmp(p, name, n) == 0)
                        return true;
                p += k;
                if (*p == ';')
                        p++;
        }
        return false;
}

static int fail(Stats *stats, const AuthRequest *req, EmuViolation v, EmuError *err, const char *code,
                const char *msg) {
        emu_stats_violation(stats, v, req->method, req->path, msg);
        emu_error_set(err, 401, code, "%s", msg);
        return -EACCES;
}

static int check_aksk(const Settings *s, AuthState *st, MetaState *meta, Stats *stats, const AuthRequest *req,
                      const char *authz, int64_t now_mono, int64_t now_real_s, EmuError *err) {
        _cleanup_(sign_authorization_done) SignAuthorization a = {};
        if (sign_authorization_parse(authz, &a) < 0)
                return fail(stats, req, VIOLATION_MALFORMED_AUTHORIZATION, err, "APIG.0301",
                            "Incorrect IAM authentication information: malformed Authorization header");
        /* Temporary keys from the metadata service: their own SK and security token, and
         * an expiry of their own (metadata.c). */
        char meta_sk[EMU_METADATA_KEY_MAX], meta_token[EMU_METADATA_KEY_MAX];
        int64_t expired_at = 0;
        int m = meta ? emu_metadata_lookup(s, meta, a.access, now_realtime_ms(), meta_sk, meta_token, &expired_at)
                     : 0;
        if (m == -EKEYEXPIRED) {
                /* the gateway's answer to a temporary key past its expires_at */
                char now_s[32] = "", exp_s[32] = "";
                time_t tn = (time_t) now_real_s, te = (time_t) expired_at;
                struct tm tm;
                if (gmtime_r(&tn, &tm))
                        (void) strftime(now_s, sizeof now_s, "%Y-%m-%dT%H:%M:%SZ", &tm);
                if (gmtime_r(&te, &tm))
                        (void) strftime(exp_s, sizeof exp_s, "%Y-%m-%dT%H:%M:%SZ", &tm);
                _cleanup_free_ char *msg = xasprintf("Incorrect IAM authentication information: verify security token "
                                                     "fail, the token has expired, current time is %s, expire time "
                                                     "is %s", now_s, exp_s);
                explicit_bzero(meta_sk, sizeof meta_sk);
                return fail(stats, req, VIOLATION_BAD_SECURITY_TOKEN, err, "APIG.0301",
                            msg ? msg : "Incorrect IAM authentication information: security token expired");
        }
        const char *want_ak = m == 1 ? a.access : s->ak, *want_sk = m == 1 ? meta_sk : s->sk;
        const char *want_token = m == 1 ? meta_token : s->security_token;
        if (!want_ak || !want_sk)
                return fail(stats, req, VIOLATION_UNKNOWN_AK, err, "APIG.0301",
                            "Incorrect IAM authentication information: AK/SK authentication is not enabled");
        if (!streq(a.access, want_ak)) {
                /* the cloud's words for an AK that does not exist (never made, or deleted
                 * by a rotation) */
                _cleanup_free_ char *msg = xasprintf("Incorrect IAM authentication information: Get secretKey "
                                                     "failed,ak:%s,err:ak not exist", a.access);
                return fail(stats, req, VIOLATION_UNKNOWN_AK, err, "APIG.0301",
                            msg ? msg : "Incorrect IAM authentication information: Get secretKey failed");
        }

        if (m != 1 && st->locked_until) {
                if (now_mono < st->locked_until)
                        return fail(stats, req, VIOLATION_AK_LOCKED, err, "APIG.0301",
                                    "Incorrect IAM authentication information: access key locked after "
                                    "repeated signature failures");
                st->locked_until = 0;
                st->failures = 0;
        }

        const char *date = emu_auth_header(req, "X-Sdk-Date");
        long long t;
        if (!date || parse_sdk_date(date, &t) < 0)
                return fail(stats, req, VIOLATION_BAD_SDK_DATE, err, "APIG.0301",
                            "Incorrect IAM authentication information: X-Sdk-Date missing or not YYYYMMDDTHHMMSSZ");
        if (t < now_real_s - MAX_SKEW_S || t > now_real_s + MAX_SKEW_S) {
                /* The gateway's answer to a stale or future X-Sdk-Date, as the cloud words it
                 * (reported by a user of Huawei's Java SDK: "calc aksk signature fail:signature
                 * expired, signature time:20211217T064303Z,server time:20211217T065804Z"). */
                char server[SIGN_DATE_LEN + 1] = "";
                time_t now_t = (time_t) now_real_s;
                struct tm tm;
                if (gmtime_r(&now_t, &tm))
                        (void) strftime(server, sizeof server, "%Y%m%dT%H%M%SZ", &tm);
                _cleanup_free_ char *msg = xasprintf("Incorrect IAM authentication information: calc aksk signature "
                                                     "fail:signature expired, signature time:%s,server time:%s",
                                                     date, server);
                return fail(stats, req, VIOLATION_CLOCK_SKEW, err, "APIG.0301",
                            msg ? msg : "Incorrect IAM authentication information: signature expired");
        }

        const char *sec = emu_auth_header(req, "X-Security-Token");
        if (want_token || sec) {
                if (!want_token || !sec || !secret_eq(sec, want_token))
                        return fail(stats, req, VIOLATION_BAD_SECURITY_TOKEN, err, "APIG.0301",
                                    "Incorrect IAM authentication information: X-Security-Token missing or invalid");
                if (!list_has(a.signed_headers, "x-security-token"))
                        return fail(stats, req, VIOLATION_BAD_SECURITY_TOKEN, err, "APIG.0301",
                                    "Incorrect IAM authentication information: X-Security-Token must be signed");
        }

        SignRequest sr = {
                .method = req->method,
                .host = emu_auth_header(req, "Host"),
                .path = req->path,
                .query = req->raw_query && *req->raw_query ? req->raw_query : NULL,
                .headers = req->headers,
                .n_headers = req->n_headers,
                .body = req->body,
                .body_len = req->body_len,
        };
        int r = sign_verify(&sr, date, want_ak, want_sk, authz);
        explicit_bzero(meta_sk, sizeof meta_sk);
        if ((r == -EBADMSG || r == -EPERM) && m == 1) {
                _cleanup_free_ char *msg = xasprintf("Incorrect IAM authentication information: verify aksk signature "
                                                     "fail (%s)", r == -EPERM ? "signature mismatch" : "x-sdk-date not signed");
                return fail(stats, req, VIOLATION_BAD_SIGNATURE, err, "APIG.0301", msg ? msg : "signature mismatch");
        }
        if (r == -EBADMSG || r == -EPERM) {
                const char *why = r == -EPERM ? "signature mismatch"
                                              : "x-sdk-date not signed, or a signed header missing or repeated";
                if (++st->failures >= s->lock_after) {
                        st->locked_until = now_mono + s->lock_ms;
                        st->failures = 0;
                }
                _cleanup_free_ char *msg = xasprintf("Incorrect IAM authentication information: verify aksk signature "
                                                     "fail (%s)", why);
                return fail(stats, req, VIOLATION_BAD_SIGNATURE, err, "APIG.0301", msg ? msg : why);
        }
        if (r < 0) {
                emu_error_set(err, 500, "APIG.0101", "signature verification failed: %s", strerror(-r));
                return r;
        }
        if (m == 1)
                emu_metadata_note_used(meta, a.access);
        else
                st->failures = 0;

        if (emu_auth_header(req, "X-Project-Id") && !list_has(a.signed_headers, "x-project-id"))
                emu_stats_violation(stats, VIOLATION_UNSIGNED_X_PROJECT_ID, req->method, req->path,
                                    "X-Project-Id sent but not signed");
        return 0;
}

int emu_auth_check(const Settings *s, AuthState *st, Stats *stats, const AuthRequest *req, int64_t now_mono,
                   int64_t now_real_s, EmuError *err) {
        return emu_auth_check_meta(s, st, NULL, stats, req, now_mono, now_real_s, err);
}

int emu_auth_check_meta(const Settings *s, AuthState *st, MetaState *meta, Stats *stats, const AuthRequest *req,
                        int64_t now_mono, int64_t now_real_s, EmuError *err) {
        bool meta_on = meta && s->metadata_period_ms > 0;
        if (!s->ak && !s->token && !meta_on)
                return 0; /* documented: no credential configured, nothing checked */

        const char *authz = emu_auth_header(req, "Authorization");
        const char *token = emu_auth_header(req, "X-Auth-Token");
        if (token) {
                if (s->token && secret_eq(token, s->token))
                        return 0;
                return fail(stats, req, VIOLATION_BAD_TOKEN, err, "ModelArts.0201",
                            s->token ? "Invalid token: X-Auth-Token is not valid"
                                     : "Invalid token: token authentication is not enabled");
        }
        if (authz)
                return check_aksk(s, st, meta_on ? meta : NULL, stats, req, authz, now_mono, now_real_s, err);
        return fail(stats, req, VIOLATION_MISSING_AUTH, err, "APIG.0301",
                    "Incorrect IAM authentication information: no Authorization or X-Auth-Token header");
}
