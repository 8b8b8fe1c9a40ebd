/* The ECS metadata service's credential endpoints, as Huawei's SDKs use them
 * (huaweicloud-sdk-go-v3 core/auth/internal/metadata_accessor.go):
 *   PUT /meta-data/latest/api/token with X-Metadata-Token-Ttl-Seconds (1-21600) answers
 *       a session token as the bare body;
 *   GET /openstack/latest/securitykey with X-Metadata-Token answers
 *       {"credential":{"access","secret","securitytoken","expires_at"}}, expires_at as
 *       "2006-01-02T15:04:05.000000Z".
 * A missing or unknown session token is 401; an ECS without an agency is 404 with the
 * sentence the SDK looks for; --metadata-fail-next answers 503 (the service down).
 *
 * Keys rotate in generations (emulator.h, MetaState): the service always hands out the
 * newest, and the API accepts every generation until its own expiry, so a client that
 * renews in the overlap never sees a 401, and one that keeps an expired key does. */
#include "emulator.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define META_TOKEN_PATH "/meta-data/latest/api/token"
#define META_KEY_PATH "/openstack/latest/securitykey"
#define META_AK_PREFIX "METADATAAK" /* + 10 digits: 20 characters, the length of a real AK */
#define META_MAX_TTL_S 21600         /* the SDK asks for 6 h, the most the service grants */
#define META_NO_AGENCY "Please configure Cloud Service Agency first"

void emu_metadata_init(MetaState *m, uint64_t seed, int64_t now_real_ms) {
        *m = (MetaState) {
                .epoch_ms = now_real_ms,
                .secret = emu_mix64(seed ^ 0x4d65746164617461ull),
                .last_gen_used = -1,
        };
}

bool emu_metadata_path(const char *url) {
        return streq(url, META_TOKEN_PATH) || streq(url, META_KEY_PATH);
}

static int64_t generation_at(const Settings *s, const MetaState *m, int64_t now_ms) {
        return now_ms < m->epoch_ms ? 0 : (now_ms - m->epoch_ms) / s->metadata_period_ms;
}

static int64_t expiry_of(const Settings *s, const MetaState *m, int64_t g) {
        return m->epoch_ms + (g + 1) * s->metadata_period_ms + s->metadata_overlap_ms;
}

static void keys_of(const MetaState *m, int64_t g, char *ak, char *sk, char *token) {
        uint64_t x = emu_mix64(m->secret ^ (uint64_t) g);
        if (ak)
                snprintf(ak, EMU_METADATA_KEY_MAX, META_AK_PREFIX "%010" PRId64, g);
        if (sk)
                snprintf(sk, EMU_METADATA_KEY_MAX, "%016" PRIx64 "%016" PRIx64 "SK", emu_mix64(x + 1), emu_mix64(x + 2));
        if (token)
                snprintf(token, EMU_METADATA_KEY_MAX, "gQpjbi1ub3J0aC00%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
                         emu_mix64(x + 3), emu_mix64(x + 4), emu_mix64(x + 5));
}

/* "2026-12-08T03:10:00.000000Z", the service's format (microseconds, always zero here). */
static void format_expiry(int64_t ms, char out[40]) {
        time_t t = (time_t) (ms / 1000);
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(out, 40, "%Y-%m-%dT%H:%M:%S.000000Z", &tm) == 0)
                snprintf(out, 40, "1970-01-01T00:00:00.000000Z");
}

static char *json_error(const char *code, const char *msg) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "error_code", code);
        cJSON_AddStringToObject(j, "error_msg", msg);
        char *t = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        return t;
}

/* The counter-th session token (1-based). */
static void session_token_of(const MetaState *m, uint64_t counter, char out[33]) {
        uint64_t x = emu_mix64(m->secret ^ 0x53657373696f6eull ^ counter);
        snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, x, emu_mix64(x));
}

static bool session_valid(const MetaState *m, const char *token, int64_t now_ms) {
        if (!token)
                return false;
        for (size_t i = 0; i < EMU_METADATA_SESSIONS; i++)
                if (m->sessions[i][0] && streq(m->sessions[i], token) && now_ms < m->session_expires_ms[i])
                        return true;
        return false;
}

void emu_metadata_answer(Settings *s, MetaState *m, const char *method, const char *url,
                         const char *ttl_header, const char *token_header, int64_t now_real_ms, unsigned *ret_http,
                         char **ret_text) {
        bool token_path = streq(url, META_TOKEN_PATH);
        if (token_path)
                m->token_requests++;
        else
                m->securitykey_requests++;

        if (s->metadata_period_ms <= 0) {
                *ret_http = 404;
                *ret_text = json_error("APIG.0101", "no metadata service (start with --metadata-period-ms)");
                return;
        }
        if (!streq(method, token_path ? "PUT" : "GET")) {
                *ret_http = 405;
                *ret_text = json_error("APIG.0101", "method not allowed");
                return;
        }
        if (s->metadata_fail_next > 0) {
                /* settings are shared state under the lock: the count is the test's budget */
                s->metadata_fail_next--; /* under the lock, as every setting */
                if (m->failed_injected < (int64_t) ELEMENTSOF(m->failed_at_ms))
                        m->failed_at_ms[m->failed_injected] = now_real_ms;
                m->failed_injected++;
                *ret_http = 503;
                *ret_text = json_error("APIG.0201", "service unavailable (injected)");
                return;
        }

        if (token_path) {
                char *end = NULL;
                long long ttl = ttl_header ? strtoll(ttl_header, &end, 10) : 0;
                if (!ttl_header || !*ttl_header || *end || ttl < 1 || ttl > META_MAX_TTL_S) {
                        *ret_http = 400;
                        *ret_text = json_error("APIG.0201", "X-Metadata-Token-Ttl-Seconds must be 1-21600");
                        return;
                }
                size_t slot = m->session_counter % EMU_METADATA_SESSIONS;
                session_token_of(m, ++m->session_counter, m->sessions[slot]);
                m->session_expires_ms[slot] = now_real_ms + ttl * 1000;
                *ret_http = 200;
                *ret_text = strdup(m->sessions[slot]);
                return;
        }

        if (!session_valid(m, token_header, now_real_ms)) {
                *ret_http = 401;
                *ret_text = json_error("APIG.0301", "X-Metadata-Token missing, unknown or expired");
                return;
        }
        if (s->metadata_no_agency) {
                *ret_http = 404;
                *ret_text = json_error("APIG.0101", META_NO_AGENCY);
                return;
        }
        int64_t g = generation_at(s, m, now_real_ms);
        char ak[EMU_METADATA_KEY_MAX], sk[EMU_METADATA_KEY_MAX], token[EMU_METADATA_KEY_MAX], exp[40];
        keys_of(m, g, ak, sk, token);
        format_expiry(expiry_of(s, m, g), exp);
        cJSON *j = cJSON_CreateObject();
        cJSON *c = cJSON_AddObjectToObject(j, "credential");
        cJSON_AddStringToObject(c, "access", ak);
        cJSON_AddStringToObject(c, "secret", sk);
        cJSON_AddStringToObject(c, "securitytoken", token);
        cJSON_AddStringToObject(c, "expires_at", exp);
        *ret_text = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        m->keys_served++;
        if (m->n_served_gens == 0 || m->served_gens[m->n_served_gens - 1] != g) {
                if (m->n_served_gens < ELEMENTSOF(m->served_gens))
                        m->served_gens[m->n_served_gens++] = g;
                else
                        m->served_gens_overflow = true;
        }
        *ret_http = 200;
}

static int generation_of(const char *ak, int64_t *ret) {
        size_t n = strlen(META_AK_PREFIX);
        if (strncmp(ak, META_AK_PREFIX, n) != 0 || strlen(ak) != n + 10)
                return -EINVAL;
        int64_t g = 0;
        for (const char *p = ak + n; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                g = g * 10 + (*p - '0');
        }
        *ret = g;
        return 0;
}

int emu_metadata_lookup(const Settings *s, MetaState *m, const char *ak, int64_t now_real_ms, char *ret_sk,
                        char *ret_security_token, int64_t *ret_expired_at) {
        int64_t g;
        if (s->metadata_period_ms <= 0 || !ak || generation_of(ak, &g) < 0)
                return 0;
        if (g > generation_at(s, m, now_real_ms))
                return -ENOENT;
        int64_t expires = expiry_of(s, m, g);
        if (now_real_ms >= expires) {
                m->expired_rejected++;
                *ret_expired_at = expires / 1000;
                return -EKEYEXPIRED;
        }
        keys_of(m, g, NULL, ret_sk, ret_security_token);
        return 1;
}

void emu_metadata_note_used(MetaState *m, const char *ak) {
        int64_t g;
        if (generation_of(ak, &g) < 0)
                return;
        m->signed_ok++;
        /* requests signed with the previous generation may still land after the first
         * with the new one: count a generation once, when it first appears */
        if (g > m->last_gen_used) {
                m->distinct_aks++;
                m->last_gen_used = g;
        }
}

cJSON *emu_metadata_stats(const Settings *s, const MetaState *m, int64_t now_real_ms) {
        cJSON *j = cJSON_CreateObject();
        if (!j)
                return NULL;
        cJSON_AddBoolToObject(j, "enabled", s->metadata_period_ms > 0);
        cJSON_AddNumberToObject(j, "generation", s->metadata_period_ms > 0 ? (double) generation_at(s, m, now_real_ms) : 0);
        cJSON_AddNumberToObject(j, "token_requests", (double) m->token_requests);
        cJSON_AddNumberToObject(j, "securitykey_requests", (double) m->securitykey_requests);
        cJSON_AddNumberToObject(j, "failed_injected", (double) m->failed_injected);
        cJSON *at = cJSON_AddArrayToObject(j, "failed_at_ms");
        for (int64_t i = 0; at && i < m->failed_injected && i < (int64_t) ELEMENTSOF(m->failed_at_ms); i++)
                cJSON_AddItemToArray(at, cJSON_CreateNumber((double) m->failed_at_ms[i]));
        cJSON_AddNumberToObject(j, "keys_served", (double) m->keys_served);
        cJSON_AddNumberToObject(j, "signed_ok", (double) m->signed_ok);
        cJSON_AddNumberToObject(j, "distinct_aks", (double) m->distinct_aks);
        cJSON_AddNumberToObject(j, "expired_rejected", (double) m->expired_rejected);
        return j;
}

cJSON *emu_metadata_served(const MetaState *m) {
        cJSON *j = cJSON_CreateObject();
        if (!j)
                return NULL;
        cJSON_AddBoolToObject(j, "complete", !m->served_gens_overflow);
        cJSON *tokens = cJSON_AddArrayToObject(j, "session_tokens");
        for (uint64_t i = 1; tokens && i <= m->session_counter; i++) {
                char t[33];
                session_token_of(m, i, t);
                cJSON_AddItemToArray(tokens, cJSON_CreateString(t));
        }
        cJSON *keys = cJSON_AddArrayToObject(j, "keys");
        for (size_t i = 0; keys && i < m->n_served_gens; i++) {
                char ak[EMU_METADATA_KEY_MAX], sk[EMU_METADATA_KEY_MAX], token[EMU_METADATA_KEY_MAX];
                keys_of(m, m->served_gens[i], ak, sk, token);
                cJSON *k = cJSON_CreateObject();
                cJSON_AddStringToObject(k, "access", ak);
                cJSON_AddStringToObject(k, "secret", sk);
                cJSON_AddStringToObject(k, "securitytoken", token);
                cJSON_AddItemToArray(keys, k);
        }
        return j;
}
