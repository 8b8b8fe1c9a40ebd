/* A small string-keyed hash map (open addressing, linear probing). The engine keeps
 * per-name state (requests in flight, polls, what was already reported) in these;
 * thousands of names must not make each lookup a scan. Keys are copied; values are
 * the caller's (the map never frees them). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

typedef struct Hashmap Hashmap;

int hashmap_new(Hashmap **ret);
/* Frees the map and its key copies, not the values. */
Hashmap *hashmap_free(Hashmap *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Hashmap *, hashmap_free);
/* Insert or replace. -ENOMEM. */
int hashmap_put(Hashmap *m, const char *key, void *value);
void *hashmap_get(const Hashmap *m, const char *key);
bool hashmap_contains(const Hashmap *m, const char *key);
/* Returns the value removed, or NULL. */
void *hashmap_remove(Hashmap *m, const char *key);
size_t hashmap_size(const Hashmap *m);
/* Slots allocated (for tests: a churn of puts and removes must not grow it). */
size_t hashmap_capacity(const Hashmap *m);
/* Iterate: *state starts at 0; returns false at the end. Do not modify the map while
 * iterating. */
bool hashmap_iterate(const Hashmap *m, size_t *state, const char **ret_key, void **ret_value);
