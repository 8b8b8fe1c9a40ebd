#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>

char *xvasprintf(const char *fmt, va_list ap) {
        char *s = NULL;
        if (vasprintf(&s, fmt, ap) < 0)
                return NULL;
        return s;
}

int error_set(char **ret_error, int r, const char *fmt, ...) {
        if (ret_error) {
                va_list ap;
                va_start(ap, fmt);
                char *m = xvasprintf(fmt, ap);
                va_end(ap);
                free(*ret_error);
                *ret_error = m;
        }
        return r;
}

char *xasprintf(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *s = xvasprintf(fmt, ap);
        va_end(ap);
        return s;
}

char *xstrdup(const char *s) {
        return s ? strdup(s) : NULL;
}

int strdup_replace(char **dst, const char *src) {
        char *c = xstrdup(src);
        if (src && !c)
                return -ENOMEM;
        free(*dst);
        *dst = c;
        return 0;
}

int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret) {
        if (!s || !*s)
                return -EINVAL;
        const char *p = s;
        if (*p == '+' || *p == '-')
                p++;
        if (!isdigit((unsigned char) *p))
                return -EINVAL;
        for (const char *q = p; *q; q++)
                if (!isdigit((unsigned char) *q))
                        return -EINVAL;
        errno = 0;
        char *end = NULL;
        long long v = strtoll(s, &end, 10);
        if (errno == ERANGE || v < min || v > max)
                return -ERANGE;
        if (!end || *end)
                return -EINVAL;
        *ret = (int64_t) v;
        return 0;
}

static int64_t clock_ms(clockid_t id) {
        struct timespec ts;
        clock_gettime(id, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t now_realtime_ms(void) {
        return clock_ms(CLOCK_REALTIME);
}

int64_t now_monotonic_ms(void) {
        return clock_ms(CLOCK_MONOTONIC);
}

ssize_t utf8_length(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s, *end = p + len;
        ssize_t n = 0;
        while (p < end) {
                unsigned c = *p;
                size_t k;
                uint32_t cp;
                if (c < 0x80) {
                        p++;
                        n++;
                        continue;
                } else if ((c & 0xE0) == 0xC0) {
                        k = 1;
                        cp = c & 0x1F;
                } else if ((c & 0xF0) == 0xE0) {
                        k = 2;
                        cp = c & 0x0F;
                } else if ((c & 0xF8) == 0xF0) {
                        k = 3;
                        cp = c & 0x07;
                } else
                        return -EILSEQ;
                if ((size_t) (end - p) < k + 1)
                        return -EILSEQ;
                for (size_t i = 1; i <= k; i++) {
                        if ((p[i] & 0xC0) != 0x80)
                                return -EILSEQ;
                        cp = (cp << 6) | (p[i] & 0x3F);
                }
                static const uint32_t min_cp[4] = { 0, 0x80, 0x800, 0x10000 };
                if (cp < min_cp[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return -EILSEQ;
                p += k + 1;
                n++;
        }
        return n;
}

char *quote_for_log(const char *s) {
        if (!s)
                return strdup("(null)");
        size_t len = strlen(s);
        /* worst case every byte becomes \xNN (4 bytes), plus quotes and NUL */
        char *out = malloc(len * 4 + 3);
        if (!out)
                return NULL;
        char *o = out;
        *o++ = '"';
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '"' || *p == '\\') {
                        *o++ = '\\';
                        *o++ = (char) *p;
                } else if (*p < 0x20 || *p == 0x7f) {
                        static const char hex[] = "0123456789abcdef";
                        *o++ = '\\';
                        *o++ = 'x';
                        *o++ = hex[*p >> 4];
                        *o++ = hex[*p & 15];
                } else
                        *o++ = (char) *p;
        }
        *o++ = '"';
        *o = 0;
        return out;
}

void hex_lower(const unsigned char *in, size_t n, char *out) {
        static const char hex[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = hex[in[i] >> 4];
                out[2 * i + 1] = hex[in[i] & 15];
        }
        out[2 * n] = 0;
}

size_t edit_distance(const char *a, const char *b, size_t max) {
        size_t la = strlen(a), lb = strlen(b);
        if (la > 64 || lb > 64)
                return max + 1;
        if ((la > lb ? la - lb : lb - la) > max)
                return max + 1;
        size_t prev[65], cur[65];
        for (size_t j = 0; j <= lb; j++)
                prev[j] = j;
        for (size_t i = 1; i <= la; i++) {
                cur[0] = i;
                size_t row_min = cur[0];
                for (size_t j = 1; j <= lb; j++) {
                        size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
                        size_t v = MIN(prev[j] + 1, cur[j - 1] + 1);
                        cur[j] = MIN(v, prev[j - 1] + cost);
                        row_min = MIN(row_min, cur[j]);
                }
                if (row_min > max)
                        return max + 1;
                memcpy(prev, cur, sizeof(size_t) * (lb + 1));
        }
        return prev[lb];
}

const char *closest_match(const char *word, const char *const *candidates, size_t n) {
        const char *best = NULL;
        size_t best_d = 3;
        for (size_t i = 0; i < n; i++) {
                if (strcasecmp(word, candidates[i]) == 0)
                        return candidates[i];
                size_t d = edit_distance(word, candidates[i], 2);
                if (d < best_d) {
                        best_d = d;
                        best = candidates[i];
                }
        }
        return best;
}

char *terminal_safe(const char *s) {
        if (!s)
                return strdup("-");
        size_t len = strlen(s);
        char *out = malloc(len * 4 + 1), *o = out;
        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                bool c1 = p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f;
                if (*p < 0x20 || *p == 0x7f || c1) {
                        static const char hex[] = "0123456789abcdef";
                        unsigned v = c1 ? *++p : *p;
                        *o++ = '\\', *o++ = 'x', *o++ = hex[v >> 4], *o++ = hex[v & 15];
                } else
                        *o++ = (char) *p;
        }
        *o = 0;
        return out;
}

void format_age(int64_t ms, char buf[static 32]) {
        int64_t s = ms > 0 ? ms / 1000 : 0;
        if (s < 60)
                snprintf(buf, 32, "%" PRId64 "s", s);
        else if (s < 3600)
                snprintf(buf, 32, "%" PRId64 "m", s / 60);
        else if (s < 86400)
                snprintf(buf, 32, "%" PRId64 "h", s / 3600);
        else
                snprintf(buf, 32, "%" PRId64 "d", s / 86400);
}
