#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "hashmap.h"

static void test_put_get_remove(void **state) {
        (void) state;
        Hashmap *m = NULL;
        assert_int_equal(hashmap_new(&m), 0);
        int a = 1, b = 2;
        assert_null(hashmap_get(m, "x"));
        assert_int_equal(hashmap_put(m, "x", &a), 0);
        assert_int_equal(hashmap_put(m, "y", &b), 0);
        assert_ptr_equal(hashmap_get(m, "x"), &a);
        assert_ptr_equal(hashmap_get(m, "y"), &b);
        assert_int_equal(hashmap_put(m, "x", &b), 0); /* replace */
        assert_ptr_equal(hashmap_get(m, "x"), &b);
        assert_int_equal(hashmap_size(m), 2);
        assert_ptr_equal(hashmap_remove(m, "x"), &b);
        assert_false(hashmap_contains(m, "x"));
        assert_true(hashmap_contains(m, "y"));
        assert_null(hashmap_remove(m, "x"));
        assert_int_equal(hashmap_size(m), 1);
        hashmap_free(m);
}

/* Many keys, removals interleaved: tombstones must not hide later keys, growth must
 * keep every key, and iteration must see each live key once. */
static void test_many(void **state) {
        (void) state;
        Hashmap *m = NULL;
        assert_int_equal(hashmap_new(&m), 0);
        char key[32];
        for (intptr_t i = 0; i < 20000; i++) {
                snprintf(key, sizeof key, "nb-%ld", (long) i);
                assert_int_equal(hashmap_put(m, key, (void *) (i + 1)), 0);
                if (i % 3 == 0) {
                        snprintf(key, sizeof key, "nb-%ld", (long) (i / 2));
                        hashmap_remove(m, key);
                }
        }
        size_t live = 0, it = 0;
        const char *k;
        void *v;
        while (hashmap_iterate(m, &it, &k, &v)) {
                live++;
                assert_ptr_equal(hashmap_get(m, k), v);
        }
        assert_int_equal(live, hashmap_size(m));
        for (intptr_t i = 0; i < 20000; i++) {
                snprintf(key, sizeof key, "nb-%ld", (long) i);
                void *got = hashmap_get(m, key);
                if (got)
                        assert_ptr_equal(got, (void *) (i + 1));
        }
        snprintf(key, sizeof key, "nb-%d", 19999);
        assert_ptr_equal(hashmap_get(m, key), (void *) 20000);
        hashmap_free(m);
}

/* The daemon's per-name maps see names come and go (a tree where manifests are added
 * and removed for months): a churn of distinct keys, the live count bounded, must keep
 * the table bounded too, and every live key findable. Without a same-size rebuild the
 * tombstones made each round double the table. */
static void test_churn_bounded(void **state) {
        (void) state;
        Hashmap *m = NULL;
        assert_int_equal(hashmap_new(&m), 0);
        char key[32];
        const long live = 1000, rounds = 200;
        size_t cap_early = 0;
        for (long round = 0; round < rounds; round++) {
                for (long i = 0; i < live; i++) {
                        snprintf(key, sizeof key, "c%ld-%ld", round, i);
                        assert_int_equal(hashmap_put(m, key, (void *) (intptr_t) (i + 1)), 0);
                }
                /* the previous round's keys leave; this round's are all there */
                for (long i = 0; round > 0 && i < live; i++) {
                        snprintf(key, sizeof key, "c%ld-%ld", round - 1, i);
                        assert_ptr_equal(hashmap_remove(m, key), (void *) (intptr_t) (i + 1));
                }
                assert_int_equal(hashmap_size(m), (size_t) live);
                for (long i = 0; i < live; i++) {
                        snprintf(key, sizeof key, "c%ld-%ld", round, i);
                        assert_ptr_equal(hashmap_get(m, key), (void *) (intptr_t) (i + 1));
                        snprintf(key, sizeof key, "c%ld-%ld", round - 1, i);
                        assert_false(hashmap_contains(m, key));
                }
                if (round == 10)
                        cap_early = hashmap_capacity(m);
        }
        /* 2,000 keys live at the peak of a round: at most 4 slots a key (growth doubles
         * at 3/8 live), and no growth after the first rounds. 200,000 keys went
         * through: without the rebuild, 262,144 slots. */
        assert_true(hashmap_capacity(m) <= 8192);
        assert_int_equal(hashmap_capacity(m), cap_early);

        /* and it still grows when the live keys need it */
        for (long i = 0; i < 10 * live; i++) {
                snprintf(key, sizeof key, "g-%ld", i);
                assert_int_equal(hashmap_put(m, key, (void *) (intptr_t) (i + 1)), 0);
        }
        assert_int_equal(hashmap_size(m), (size_t) (11 * live));
        assert_true(hashmap_capacity(m) * 3 >= hashmap_size(m) * 4);
        for (long i = 0; i < 10 * live; i++) {
                snprintf(key, sizeof key, "g-%ld", i);
                assert_ptr_equal(hashmap_get(m, key), (void *) (intptr_t) (i + 1));
        }
        hashmap_free(m);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_put_get_remove),
                cmocka_unit_test(test_many),
                cmocka_unit_test(test_churn_bounded),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
