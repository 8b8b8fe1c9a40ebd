#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int diags_add(Diags *d, DiagSeverity sev, const char *file, unsigned line, unsigned column,
              const char *fmt, ...) {
        if (d->n == d->cap) {
                size_t cap = d->cap ? d->cap * 2 : 8;
                Diag *items = realloc(d->items, cap * sizeof(Diag));
                if (!items)
                        return -ENOMEM;
                d->items = items;
                d->cap = cap;
        }
        va_list ap;
        va_start(ap, fmt);
        char *msg = xvasprintf(fmt, ap);
        va_end(ap);
        char *f = strdup(file ? file : "<input>");
        if (!msg || !f) {
                free(msg);
                free(f);
                return -ENOMEM;
        }
        d->items[d->n++] = (Diag) {
                .file = f, .line = line, .column = column, .severity = sev, .message = msg,
        };
        if (sev == DIAG_ERROR)
                d->n_errors++;
        else
                d->n_warnings++;
        return 0;
}

int diags_move(Diags *dst, Diags *src) {
        if (src->n == 0)
                return 0;
        if (dst->cap - dst->n < src->n) {
                size_t cap = dst->n + src->n;
                Diag *items = realloc(dst->items, cap * sizeof(Diag));
                if (!items)
                        return -ENOMEM;
                dst->items = items;
                dst->cap = cap;
        }
        memcpy(dst->items + dst->n, src->items, src->n * sizeof(Diag));
        dst->n += src->n;
        dst->n_errors += src->n_errors;
        dst->n_warnings += src->n_warnings;
        free(src->items);
        *src = DIAGS_INIT;
        return 0;
}

static int diag_cmp(const Diag *a, const Diag *b) {
        int r = strcmp(a->file, b->file);
        if (r)
                return r;
        if (a->line != b->line)
                return a->line < b->line ? -1 : 1;
        if (a->column != b->column)
                return a->column < b->column ? -1 : 1;
        return 0;
}

void diags_sort(Diags *d) {
        /* insertion sort: stable, and diagnostics arrive nearly sorted */
        for (size_t i = 1; i < d->n; i++) {
                Diag x = d->items[i];
                size_t j = i;
                while (j > 0 && diag_cmp(&d->items[j - 1], &x) > 0) {
                        d->items[j] = d->items[j - 1];
                        j--;
                }
                d->items[j] = x;
        }
}

const char *diag_severity_to_string(DiagSeverity s) {
        return s == DIAG_ERROR ? "error" : "warning";
}

void diag_print(const Diag *d, FILE *f) {
        if (d->line > 0)
                fprintf(f, "%s:%u:%u: %s: %s\n", d->file, d->line, d->column,
                        diag_severity_to_string(d->severity), d->message);
        else
                fprintf(f, "%s: %s: %s\n", d->file, diag_severity_to_string(d->severity), d->message);
}

void diags_print(const Diags *d, FILE *f) {
        for (size_t i = 0; i < d->n; i++)
                diag_print(&d->items[i], f);
}

void diags_clear(Diags *d) {
        for (size_t i = 0; i < d->n; i++) {
                free(d->items[i].file);
                free(d->items[i].message);
        }
        free(d->items);
        *d = DIAGS_INIT;
}
