#include "hashmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A removed slot keeps a tombstone so probes for later keys go on past it. */
static char tombstone;

typedef struct Entry {
        char *key;   /* NULL = empty, &tombstone = removed */
        void *value;
} Entry;

struct Hashmap {
        Entry *entries;
        size_t cap;     /* power of two */
        size_t n;       /* live keys */
        size_t used;    /* live + tombstones: what the load factor counts */
};

static uint64_t hash_string(const char *s) {
        /* FNV-1a: names are short; enough spread for a linear-probing table */
        uint64_t h = 1469598103934665603ULL;
        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= 1099511628211ULL;
        }
        return h;
}

int hashmap_new(Hashmap **ret) {
        Hashmap *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        *ret = m;
        return 0;
}

Hashmap *hashmap_free(Hashmap *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->cap; i++)
                if (m->entries[i].key && m->entries[i].key != &tombstone)
                        free(m->entries[i].key);
        free(m->entries);
        free(m);
        return NULL;
}

static Entry *find_slot(const Hashmap *m, const char *key, bool for_insert) {
        if (m->cap == 0)
                return NULL;
        size_t mask = m->cap - 1, i = hash_string(key) & mask;
        Entry *first_free = NULL;
        for (size_t probes = 0; probes < m->cap; probes++, i = (i + 1) & mask) {
                Entry *e = &m->entries[i];
                if (!e->key)
                        return for_insert ? (first_free ? first_free : e) : NULL;
                if (e->key == &tombstone) {
                        if (!first_free)
                                first_free = e;
                        continue;
                }
                if (strcmp(e->key, key) == 0)
                        return e;
        }
        return for_insert ? first_free : NULL;
}

/* Rebuild into cap slots (a power of two, over the live keys), dropping tombstones. */
static int rehash(Hashmap *m, size_t cap) {
        Entry *old = m->entries;
        size_t old_cap = m->cap;
        m->entries = calloc(cap, sizeof(Entry));
        if (!m->entries) {
                m->entries = old;
                return -ENOMEM;
        }
        m->cap = cap;
        m->n = m->used = 0;
        for (size_t i = 0; i < old_cap; i++)
                if (old[i].key && old[i].key != &tombstone) {
                        Entry *e = find_slot(m, old[i].key, true);
                        *e = old[i];
                        m->n++;
                        m->used++;
                }
        free(old);
        return 0;
}

int hashmap_put(Hashmap *m, const char *key, void *value) {
        Entry *e = find_slot(m, key, false);
        if (e) {
                e->value = value;
                return 0;
        }
        /* Keep the load (tombstones included) under 3/4 so probes stay short. When
         * tombstones are most of it, a churn of names (added, then removed) made them:
         * rebuild at the same size, or the table would double on every round of churn
         * while holding no more keys. Live keys over half the limit: grow. */
        if ((m->used + 1) * 4 > m->cap * 3) {
                size_t cap = m->cap == 0 ? 16 : (m->n + 1) * 8 > m->cap * 3 ? m->cap * 2 : m->cap;
                int r = rehash(m, cap);
                if (r < 0)
                        return r;
        }
        char *k = strdup(key);
        if (!k)
                return -ENOMEM;
        e = find_slot(m, key, true);
        if (!e->key)
                m->used++;
        e->key = k;
        e->value = value;
        m->n++;
        return 0;
}

void *hashmap_get(const Hashmap *m, const char *key) {
        Entry *e = find_slot(m, key, false);
        return e ? e->value : NULL;
}

bool hashmap_contains(const Hashmap *m, const char *key) {
        return find_slot(m, key, false) != NULL;
}

void *hashmap_remove(Hashmap *m, const char *key) {
        Entry *e = find_slot(m, key, false);
        if (!e)
                return NULL;
        void *v = e->value;
        free(e->key);
        e->key = &tombstone;
        e->value = NULL;
        m->n--;
        return v;
}

size_t hashmap_size(const Hashmap *m) {
        return m->n;
}

size_t hashmap_capacity(const Hashmap *m) {
        return m->cap;
}

bool hashmap_iterate(const Hashmap *m, size_t *state, const char **ret_key, void **ret_value) {
        for (; *state < m->cap; (*state)++) {
                Entry *e = &m->entries[*state];
                if (e->key && e->key != &tombstone) {
                        if (ret_key)
                                *ret_key = e->key;
                        if (ret_value)
                                *ret_value = e->value;
                        (*state)++;
                        return true;
                }
        }
        return false;
}
