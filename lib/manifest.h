/* A manifest file: YAML documents, each one notebook instance, keys exactly the create
 * call's body fields (plus the optional envelope apiVersion: notebookd/v1, kind: Notebook).
 * Parsing and validation never crash on any input: every problem is a diagnostic with
 * FILE:LINE:COLUMN, and one bad document never hides another's diagnostics. */
#pragma once

#include <stddef.h>

#include "diag.h"
#include "spec.h"

/* Empty documents (a stray "---") are not counted. A problem that belongs to no document
 * (unreadable or oversized file, NUL bytes, invalid UTF-8, a syntax error before the first
 * document, too many documents) counts as one more invalid document, so a refused file
 * never reads as "0 documents, all fine". */
typedef struct ManifestResult {
        size_t n_documents;   /* documents seen (valid or not) */
        size_t n_invalid;     /* documents with at least one error */
} ManifestResult;

/* The host's local rules on top of the cloud's (the config keys `profiles:` and
 * `flavors:`): when a list is given (n > 0), a value matching none of its fnmatch(3)
 * patterns is an error naming the key and source. Borrowed, not copied. */
typedef struct Tenant Tenant;
typedef struct TenantList TenantList;

typedef struct ManifestPolicy {
        const char *source;               /* the config file that sets the lists */
        const TenantList *tenants;        /* tenants: (config.h); NULL or empty: none. The
                                           * desired set picks each file's tenant by path */
        const Tenant *tenant;             /* the tenant of the file being parsed, whose rules
                                           * apply too; NULL: none */
        const char *const *profiles;      /* patterns for profile_id */
        size_t n_profiles;                /* 0: any profile_id */
        const char *const *flavors;       /* patterns for flavor */
        size_t n_flavors;                 /* 0: any flavor */
} ManifestPolicy;

/* Parse and validate the bytes of one manifest file named display_path, under policy
 * (NULL: none). Each valid document is appended to *specs (spec->file = display_path);
 * every problem goes to *diags. Returns 0, or -ENOMEM. Invalid input is never an error
 * return. */
int manifest_parse_buffer(const char *display_path, const char *buf, size_t len, const ManifestPolicy *policy,
                          Diags *diags, SpecList *specs, ManifestResult *ret_result);

/* Read (bounded by MANIFEST_MAX_FILE_SIZE, refusing NUL bytes / binary content) and
 * parse the file at path (relative to dirfd, or AT_FDCWD). I/O problems are diagnostics
 * too; returns 0 or -ENOMEM. */
int manifest_parse_file(int dirfd, const char *path, const char *display_path, const ManifestPolicy *policy,
                        Diags *diags, SpecList *specs, ManifestResult *ret_result);
