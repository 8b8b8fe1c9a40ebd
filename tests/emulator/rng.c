/* Seeded randomness: xoshiro256** seeded through splitmix64. Not for secrets: it only
 * decides which requests get an injected fault and what the instance ids look like, and
 * a fixed --seed must make both reproducible. */
#include "emulator.h"

#include <stdio.h>

uint64_t emu_mix64(uint64_t x) {
        x += 0x9E3779B97F4A7C15ull;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
        return x ^ (x >> 31);
}

void emu_rng_seed(Rng *r, uint64_t seed) {
        for (size_t i = 0; i < 4; i++) {
                seed += 0x9E3779B97F4A7C15ull;
                r->s[i] = emu_mix64(seed);
        }
}

static inline uint64_t rotl(uint64_t x, int k) {
        return (x << k) | (x >> (64 - k));
}

uint64_t emu_rng_next(Rng *r) {
        uint64_t *s = r->s;
        uint64_t result = rotl(s[1] * 5, 7) * 9;
        uint64_t t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
}

bool emu_rng_chance(Rng *r, double p) {
        if (!(p > 0.0))
                return false;
        if (p >= 1.0)
                return true;
        /* 53 random bits -> [0, 1) */
        double u = (double) (emu_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
        return u < p;
}

void emu_rng_uuid(Rng *r, char out[37]) {
        uint64_t hi = emu_rng_next(r), lo = emu_rng_next(r);
        /* version 4, variant 10xx: looks like what the cloud hands out */
        hi = (hi & ~0xF000ull) | 0x4000ull;
        lo = (lo & ~(3ull << 62)) | (2ull << 62);
        snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned) (hi >> 32), (unsigned) ((hi >> 16) & 0xFFFF),
                 (unsigned) (hi & 0xFFFF), (unsigned) (lo >> 48), (unsigned long long) (lo & 0xFFFFFFFFFFFFull));
}
