/* A small string-keyed hash map with chaining. Keys are borrowed: they must live as
 * long as the entry (they point into the value, e.g. an instance's name). Grows at load
 * factor 1 so lookups stay O(1) while a benchmark creates many thousands of instances. */
#include "emulator.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct Entry {
        const char *key;
        void *value;
        uint64_t hash;
        struct Entry *next;
} Entry;

struct EmuMap {
        Entry **buckets;
        size_t n_buckets; /* power of two */
        size_t size;
};

static uint64_t hash_str(const char *s) {
        /* FNV-1a: keys are names and ids we control the length of */
        uint64_t h = 0xcbf29ce484222325ull;
        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= 0x100000001b3ull;
        }
        return h;
}

int emu_map_new(EmuMap **ret) {
        EmuMap *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->n_buckets = 64;
        m->buckets = calloc(m->n_buckets, sizeof(Entry *));
        if (!m->buckets) {
                free(m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

void emu_map_clear(EmuMap *m) {
        if (!m)
                return;
        for (size_t i = 0; i < m->n_buckets; i++) {
                Entry *e = m->buckets[i];
                while (e) {
                        Entry *n = e->next;
                        free(e);
                        e = n;
                }
                m->buckets[i] = NULL;
        }
        m->size = 0;
}

EmuMap *emu_map_free(EmuMap *m) {
        if (!m)
                return NULL;
        emu_map_clear(m);
        free(m->buckets);
        free(m);
        return NULL;
}

static Entry *find(const EmuMap *m, const char *key, uint64_t h) {
        for (Entry *e = m->buckets[h & (m->n_buckets - 1)]; e; e = e->next)
                if (e->hash == h && strcmp(e->key, key) == 0)
                        return e;
        return NULL;
}

void *emu_map_get(const EmuMap *m, const char *key) {
        Entry *e = find(m, key, hash_str(key));
        return e ? e->value : NULL;
}

static void grow(EmuMap *m) {
        size_t n = m->n_buckets * 2;
        Entry **b = calloc(n, sizeof(Entry *));
        if (!b)
                return; /* keep working with longer chains */
        for (size_t i = 0; i < m->n_buckets; i++) {
                Entry *e = m->buckets[i];
                while (e) {
                        Entry *next = e->next;
                        size_t j = e->hash & (n - 1);
                        e->next = b[j];
                        b[j] = e;
                        e = next;
                }
        }
        free(m->buckets);
        m->buckets = b;
        m->n_buckets = n;
}

int emu_map_put(EmuMap *m, const char *key, void *value) {
        uint64_t h = hash_str(key);
        Entry *e = find(m, key, h);
        if (e) {
                e->key = key;
                e->value = value;
                return 0;
        }
        e = malloc(sizeof(*e));
        if (!e)
                return -ENOMEM;
        *e = (Entry) { .key = key, .value = value, .hash = h };
        size_t i = h & (m->n_buckets - 1);
        e->next = m->buckets[i];
        m->buckets[i] = e;
        if (++m->size > m->n_buckets)
                grow(m);
        return 0;
}

void *emu_map_remove(EmuMap *m, const char *key) {
        uint64_t h = hash_str(key);
        Entry **pp = &m->buckets[h & (m->n_buckets - 1)];
        for (; *pp; pp = &(*pp)->next) {
                Entry *e = *pp;
                if (e->hash == h && strcmp(e->key, key) == 0) {
                        void *v = e->value;
                        *pp = e->next;
                        free(e);
                        m->size--;
                        return v;
                }
        }
        return NULL;
}

size_t emu_map_size(const EmuMap *m) {
        return m->size;
}

void emu_map_foreach(const EmuMap *m, void (*fn)(const char *key, void *value, void *userdata), void *userdata) {
        for (size_t i = 0; i < m->n_buckets; i++)
                for (Entry *e = m->buckets[i]; e; e = e->next)
                        fn(e->key, e->value, userdata);
}
