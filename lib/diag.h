/* Diagnostics: what is wrong, where. Every manifest and config problem becomes one
 * Diag with a 1-based FILE:LINE:COLUMN, printed exactly like a compiler's so editors
 * and CI annotate it. Library code collects; the caller decides where they go. */
#pragma once

#include <stdio.h>

#include "macro.h"

typedef enum DiagSeverity {
        DIAG_WARNING,
        DIAG_ERROR,
} DiagSeverity;

typedef struct Diag {
        char *file;       /* as the user named it, e.g. "manifests/train.yaml" */
        unsigned line;    /* 1-based; 0 when the problem has no position (I/O) */
        unsigned column;  /* 1-based */
        DiagSeverity severity;
        char *message;    /* one line, no trailing period */
} Diag;

typedef struct Diags {
        Diag *items;
        size_t n, cap;
        size_t n_errors, n_warnings;
} Diags;

#define DIAGS_INIT ((Diags) { 0 })

/* Append a diagnostic. Returns 0, or -ENOMEM (the diagnostic is then lost, never the caller). */
int diags_add(Diags *d, DiagSeverity sev, const char *file, unsigned line, unsigned column,
              const char *fmt, ...) _printf_(6, 7);
#define diag_error(d, file, line, col, ...) diags_add(d, DIAG_ERROR, file, line, col, __VA_ARGS__)
#define diag_warning(d, file, line, col, ...) diags_add(d, DIAG_WARNING, file, line, col, __VA_ARGS__)

/* Move all of src's diagnostics to the end of dst; src is left empty. */
int diags_move(Diags *dst, Diags *src);

/* Stable sort by file (byte order), line, column: the order a reader expects. */
void diags_sort(Diags *d);

/* "FILE:LINE:COLUMN: error: MESSAGE\n" (no ":LINE:COLUMN" when line is 0). */
void diag_print(const Diag *d, FILE *f);
void diags_print(const Diags *d, FILE *f);

void diags_clear(Diags *d);
static inline void diags_clearp(Diags *d) {
        diags_clear(d);
}
#define _cleanup_diags_ _cleanup_(diags_clearp)

const char *diag_severity_to_string(DiagSeverity s);
