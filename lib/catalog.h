/* The profiles and flavors notebookd knows by name (those Huawei's ModelArts pages list).
 * They are information, not a closed list: the cloud decides what exists, by region and
 * release, and a value not listed here is sent as written. The table serves two
 * purposes only:
 * - a value close to a known one but not known ("Pyhton3") gets a "did you mean" warning;
 * - the profile/flavor kind check (ModelArts.6330) runs when both values are known. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef enum CatalogKind {
        CATALOG_KIND_ANY,       /* a profile that runs on any kind of flavor */
        CATALOG_KIND_CPU,
        CATALOG_KIND_GPU,
        CATALOG_KIND_ASCEND,
        _CATALOG_KIND_MAX,
} CatalogKind;

typedef struct CatalogEntry {
        const char *name;
        CatalogKind kind;
} CatalogEntry;

extern const CatalogEntry catalog_profiles[];
extern const size_t catalog_n_profiles;
extern const CatalogEntry catalog_flavors[];
extern const size_t catalog_n_flavors;

/* The entry for exactly this value (case-sensitive, as the cloud compares), or NULL. */
const CatalogEntry *catalog_find_profile(const char *profile_id);
const CatalogEntry *catalog_find_flavor(const char *flavor);

/* For a value that is not known: the known one it is probably a misspelling of (at most
 * two edits, or a difference in case only), else NULL. NULL for a known value too. */
const char *catalog_suggest_profile(const char *profile_id);
const char *catalog_suggest_flavor(const char *flavor);

/* Whether a profile of kind p cannot run on a flavor of kind f: both definite and
 * different (ANY never clashes). */
bool catalog_kinds_clash(CatalogKind p, CatalogKind f);

/* "CPU", "GPU", "Ascend", "any" */
const char *catalog_kind_to_string(CatalogKind k);
