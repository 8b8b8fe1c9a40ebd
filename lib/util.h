/* Small, bounded string and time helpers (the banned list: sprintf, strcpy, strcat,
 * strtok, atoi; use these instead). */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* asprintf that returns NULL on failure instead of leaving the pointer undefined. */
char *xasprintf(const char *fmt, ...) _printf_(1, 2);
char *xvasprintf(const char *fmt, va_list ap) _printf_(1, 0);
/* Replace *ret_error (when ret_error is not NULL) by the formatted message and return r,
 * the negative errno: the "fail with a reason" step of the parsers that report one. When
 * the message cannot be built (-ENOMEM), *ret_error becomes NULL and r is still returned:
 * the error matters more than its wording. Callers never pass a secret in. */
int error_set(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
/* strdup that accepts NULL. */
char *xstrdup(const char *s);
/* Replace *dst by a copy of src (NULL allowed); -ENOMEM leaves *dst as it was. */
int strdup_replace(char **dst, const char *src);

/* Parse a whole decimal integer in [min, max]. -EINVAL not a number, -ERANGE outside. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret);

/* Milliseconds: wall clock (for records) and monotonic (for deadlines). */
int64_t now_realtime_ms(void);
int64_t now_monotonic_ms(void);

/* Number of Unicode code points in valid UTF-8 text; -EILSEQ if it is not valid UTF-8
 * (overlongs, surrogates and code points past U+10FFFF are invalid). */
ssize_t utf8_length(const char *s, size_t len);

/* Write a user-controlled string for a one-line message: quoted, with control
 * characters and quotes escaped, so a crafted name cannot forge log lines. Caller frees. */
char *quote_for_log(const char *s);

/* A user-controlled string for a terminal table: control characters (C0, DEL and the
 * C1 range) become \xNN so a crafted name cannot move the cursor or forge rows; NULL
 * shows as "-". Caller frees. */
char *terminal_safe(const char *s);

/* 5s, 3m, 2h, 4d: the unit a human reads at a glance (truncated, like ps and kubectl);
 * negative durations show as 0s. */
void format_age(int64_t ms, char buf[static 32]);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_lower(const unsigned char *in, size_t n, char *out);

/* Damerau-free Levenshtein distance, bounded: returns max+1 once it is exceeded. */
size_t edit_distance(const char *a, const char *b, size_t max);
/* The candidate closest to word within distance 2 (or a case-insensitive match), or NULL. */
const char *closest_match(const char *word, const char *const *candidates, size_t n);
