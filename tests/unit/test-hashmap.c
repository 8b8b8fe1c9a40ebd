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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_put_get_remove),
                cmocka_unit_test(test_many),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
