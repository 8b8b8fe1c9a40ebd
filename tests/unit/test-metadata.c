/* The pure parts of ECS metadata credentials (lib/metadata.h): the securitykey answer,
 * expires_at, and when keys are renewed, used and fetched again after a failure. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "credentials.h"
#include "limits.h"
#include "metadata.h"
#include "util.h"

#define AK "METADATAAK0000000042"
#define SK "3e94ba6f8153f6c83582461fad19a0afSK"
#define ST "gQpjbi1ub3J0aC00SECURITYTOKEN"
/* 2026-12-08T03:10:09Z */
#define T0_MS (1796699409LL * 1000)

static char *answer(const char *expires_at) {
        return xasprintf("{\"credential\":{\"access\":\"" AK "\",\"secret\":\"" SK "\",\"securitytoken\":\"" ST
                         "\",\"expires_at\":\"%s\"}}",
                         expires_at);
}

static void test_expires_at(void **state) {
        (void) state;
        int64_t ms;
        /* the SDK's layout, and the service's with microseconds */
        assert_int_equal(metadata_parse_expires_at("2026-12-08T03:10:09Z", &ms), 0);
        assert_int_equal(ms, T0_MS);
        assert_int_equal(metadata_parse_expires_at("2026-12-08T03:10:09.000000Z", &ms), 0);
        assert_int_equal(ms, T0_MS);
        assert_int_equal(metadata_parse_expires_at("2026-12-08T03:10:09.25Z", &ms), 0);
        assert_int_equal(ms, T0_MS + 250);
        assert_int_equal(metadata_parse_expires_at("2026-12-08T03:10:09.123456789Z", &ms), 0);
        assert_int_equal(ms, T0_MS + 123);
        /* not UTC, no zone, junk, nothing */
        assert_int_equal(metadata_parse_expires_at("2026-12-08T03:10:09+08:00", &ms), -EINVAL);
        assert_int_equal(metadata_parse_expires_at("2026-12-08T03:10:09", &ms), -EINVAL);
        assert_int_equal(metadata_parse_expires_at("2026-12-08T03:10:09.Z", &ms), -EINVAL);
        assert_int_equal(metadata_parse_expires_at("tomorrow", &ms), -EINVAL);
        assert_int_equal(metadata_parse_expires_at(NULL, &ms), -EINVAL);
}

static void test_parse(void **state) {
        (void) state;
        _cleanup_free_ char *body = answer("2026-12-08T03:10:09.000000Z");
        MetadataKeys *k = NULL;
        char *error = NULL;
        int64_t now = T0_MS - 3600 * 1000;
        assert_int_equal(metadata_parse_securitykey(body, strlen(body), now, &k, &error), 0);
        assert_null(error);
        assert_string_equal(k->ak, AK);
        assert_string_equal(k->sk, SK);
        assert_string_equal(k->security_token, ST);
        assert_int_equal(k->expires_ms, T0_MS);
        assert_int_equal(k->fetched_ms, now);
        metadata_keys_free(k);
}

/* Every refusal names what is wrong, never a key. */
static void assert_refused(const char *body, int want) {
        MetadataKeys *k = NULL;
        char *error = NULL;
        assert_int_equal(metadata_parse_securitykey(body, strlen(body), T0_MS - 1000, &k, &error), want);
        assert_null(k);
        assert_non_null(error);
        assert_null(strstr(error, SK));
        assert_null(strstr(error, ST));
        free(error);
}

static void test_parse_refusals(void **state) {
        (void) state;
        /* no agency: the service's empty credential */
        assert_refused("{\"credential\":{}}", -ENOKEY);
        assert_refused("{}", -ENOKEY);
        assert_refused("{\"credential\":null}", -ENOKEY);
        assert_refused("not json", -EBADMSG);
        assert_refused("{\"credential\":{\"access\":\"" AK "\",\"secret\":\"" SK "\",\"expires_at\":\"2026-12-08T03:10:09Z\"}}",
                       -EBADMSG);
        assert_refused("{\"credential\":{\"access\":\"" AK "\",\"secret\":42,\"securitytoken\":\"" ST
                       "\",\"expires_at\":\"2026-12-08T03:10:09Z\"}}",
                       -EBADMSG);
        assert_refused("{\"credential\":{\"access\":\"" AK "\",\"secret\":\"" SK "\",\"securitytoken\":\"" ST
                       "\",\"expires_at\":\"soon\"}}",
                       -EBADMSG);
        /* a header cannot carry it */
        assert_refused("{\"credential\":{\"access\":\"" AK "\",\"secret\":\"" SK " x\",\"securitytoken\":\"" ST
                       "\",\"expires_at\":\"2026-12-08T03:10:09Z\"}}",
                       -EINVAL);
        assert_refused("{\"credential\":{\"access\":\"\",\"secret\":\"" SK "\",\"securitytoken\":\"" ST
                       "\",\"expires_at\":\"2026-12-08T03:10:09Z\"}}",
                       -EINVAL);
        /* keys that expired already are no keys */
        _cleanup_free_ char *old = answer("2026-12-08T03:10:08Z");
        assert_refused(old, -EKEYEXPIRED);
}

static void test_no_agency(void **state) {
        (void) state;
        const char *b = "{\"error_msg\":\"" METADATA_NO_AGENCY_TEXT "\"}";
        assert_true(metadata_answer_is_no_agency(404, "", 0));
        assert_true(metadata_answer_is_no_agency(401, b, strlen(b)));
        assert_false(metadata_answer_is_no_agency(401, "{\"error_msg\":\"token expired\"}", 30));
        assert_false(metadata_answer_is_no_agency(503, NULL, 0));
}

static MetadataKeys keys(int64_t fetched, int64_t expires) {
        return (MetadataKeys) { .fetched_ms = fetched, .expires_ms = expires };
}

static void test_timing(void **state) {
        (void) state;
        const int64_t min = 60 * 1000;
        /* the cloud's keys: an hour, fetched at issue; renewed when the next are issued, 10
         * minutes before expiry, and used up to a minute before it */
        MetadataKeys k = keys(0, 60 * min);
        assert_int_equal(metadata_renew_at_ms(&k), 50 * min);
        assert_true(metadata_keys_usable(&k, 59 * min - 1));
        assert_false(metadata_keys_usable(&k, 59 * min));
        assert_false(metadata_keys_usable(NULL, 0));
        /* the same keys again: ask in 30 s, or a quarter of what is left when less */
        assert_int_equal(metadata_same_keys_retry_at_ms(&k, 50 * min), 50 * min + 30 * 1000);
        assert_int_equal(metadata_same_keys_retry_at_ms(&k, 60 * min - 40 * 1000), 60 * min - 30 * 1000);
        assert_true(metadata_same_keys_retry_at_ms(&k, 60 * min) > 60 * min);
        /* short-lived keys (a test's rotation): a third of the life, a tenth as margin */
        k = keys(0, 9000);
        assert_int_equal(metadata_renew_at_ms(&k), 6000);
        assert_true(metadata_keys_usable(&k, 8099));
        assert_false(metadata_keys_usable(&k, 8100));
        /* the renewal always comes before the keys stop being used */
        for (int64_t life = 1000; life <= 24 * 60 * min; life += 7 * min + 13) {
                k = keys(1000, 1000 + life);
                assert_true(metadata_renew_at_ms(&k) < k.expires_ms - MIN((int64_t) METADATA_EXPIRY_MARGIN_MS, life / 10));
        }
}

static MetadataKeys *new_keys(const char *ak, int64_t fetched, int64_t expires) {
        MetadataKeys *k = calloc(1, sizeof(*k));
        assert_non_null(k);
        k->ak = credentials_secret_dup(ak, strlen(ak));
        k->sk = credentials_secret_dup("sk", 2);
        k->security_token = credentials_secret_dup("st", 2);
        assert_true(k->ak && k->sk && k->security_token);
        k->fetched_ms = fetched;
        k->expires_ms = expires;
        return k;
}

/* A re-fetch that brings back the keys in hand must not make them younger: the margin
 * (a minute of an hour's keys) would shrink to a tenth of what is left, and requests
 * would go out signed with keys about to expire. */
static void test_same_keys(void **state) {
        (void) state;
        const int64_t min = 60 * 1000;
        _cleanup_(metadata_keys_freep) MetadataKeys *cur = NULL;
        int64_t renew_at;
        assert_false(metadata_keys_take(&cur, new_keys("AK1", 0, 60 * min), 0, &renew_at));
        assert_int_equal(renew_at, 50 * min);
        MetadataKeys *held = cur;

        /* at 58:30 the service still hands out the same keys: the struct in hand stays,
         * with its age; they stop signing at 59:00 as before */
        assert_true(metadata_keys_take(&cur, new_keys("AK1", 58 * min + 30000, 60 * min), 58 * min + 30000,
                                       &renew_at));
        assert_ptr_equal(cur, held);
        assert_int_equal(cur->fetched_ms, 0);
        assert_int_equal(renew_at, 58 * min + 30000 + 22500);   /* a quarter of the 90 s left */
        assert_true(metadata_keys_usable(cur, 59 * min - 1));
        assert_false(metadata_keys_usable(cur, 59 * min));
        /* ... and a fetch is due then, though a same-keys retry is still ahead */
        assert_false(metadata_keys_wanted(cur, renew_at, renew_at - 1));
        assert_false(metadata_keys_wanted(cur, 59 * min + 30000, 59 * min - 1));
        assert_true(metadata_keys_wanted(cur, 59 * min + 30000, 59 * min));
        assert_true(metadata_keys_wanted(NULL, INT64_MAX, 0));
        assert_true(metadata_keys_wanted(cur, 10 * min, 10 * min));

        /* other keys with the same expiry: taken, with the age of the ones in hand */
        assert_true(metadata_keys_take(&cur, new_keys("AK2", 58 * min + 40000, 60 * min), 58 * min + 40000,
                                       &renew_at));
        assert_string_equal(cur->ak, "AK2");
        assert_int_equal(cur->fetched_ms, 0);
        assert_false(metadata_keys_usable(cur, 59 * min));

        /* the next keys: taken as they are, renewed on their own schedule */
        assert_false(metadata_keys_take(&cur, new_keys("AK3", 59 * min, 119 * min), 59 * min, &renew_at));
        assert_string_equal(cur->ak, "AK3");
        assert_int_equal(cur->fetched_ms, 59 * min);
        assert_int_equal(renew_at, 109 * min);
        assert_true(metadata_keys_usable(cur, 59 * min));
}

static void test_backoff(void **state) {
        (void) state;
        /* 1 s doubling to a minute, jittered by at most a quarter */
        assert_int_equal(metadata_retry_backoff_ms(1, 0), 1000);
        assert_int_equal(metadata_retry_backoff_ms(2, 0), 2000);
        assert_int_equal(metadata_retry_backoff_ms(3, 0), 4000);
        assert_int_equal(metadata_retry_backoff_ms(7, 0), 60000);
        assert_int_equal(metadata_retry_backoff_ms(1000, 0), 60000);
        assert_true(metadata_retry_backoff_ms(1, UINT32_MAX) <= 1250);
        assert_true(metadata_retry_backoff_ms(1000, UINT32_MAX) <= 75000);
        for (unsigned f = 1; f < 10; f++)
                assert_true(metadata_retry_backoff_ms(f + 1, 0) >= metadata_retry_backoff_ms(f, 0));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_expires_at),  cmocka_unit_test(test_parse),
                cmocka_unit_test(test_parse_refusals), cmocka_unit_test(test_no_agency),
                cmocka_unit_test(test_timing),      cmocka_unit_test(test_same_keys),
                cmocka_unit_test(test_backoff),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
