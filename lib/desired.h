/* The desired set: every valid spec in the manifests tree, by name.
 * Kept per file so the daemon re-parses only what changed; names defined in two
 * places are an error on both and neither is desired until one is removed. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "manifest.h"
#include "spec.h"

typedef struct DesiredSet DesiredSet;

/* root: the manifests directory (or a single file); display_root: how paths are shown
 * in diagnostics (normally what the user typed); policy: the host config's limits on
 * the values (NULL: none), copied. */
int desired_set_new(const char *root, const char *display_root, const ManifestPolicy *policy, DesiredSet **ret);
DesiredSet *desired_set_free(DesiredSet *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(DesiredSet *, desired_set_free);
/* More roots in the same set (check with several paths): names must be unique across
 * all of them, and a file reached through two roots is read once. */
int desired_set_add_root(DesiredSet *s, const char *root, const char *display_root);

/* Validate under another policy (NULL: none), copied. When it differs from the one in
 * force, the next rescan (or update) parses every file again; the set is unchanged until
 * then. Returns 0 or -ENOMEM (the old policy then stays). */
int desired_set_set_policy(DesiredSet *s, const ManifestPolicy *policy);

/* Scan the whole tree again: files gone are dropped, new and changed ones parsed
 * (unchanged files, by size+mtime+ctime+inode, are kept as they are). Files are taken
 * in walk order until they total MANIFEST_MAX_TOTAL_SIZE bytes: the one that crosses it
 * and all after it are left out, with one diagnostic on the first. The roots are
 * resolved again (a git-sync symlink swap is followed). Returns 0; a negative errno
 * when a root itself cannot be read (missing, EACCES, neither directory nor file), the
 * set then left exactly as it was; or -ENOMEM (likewise). */
int desired_set_rescan(DesiredSet *s);
/* The same, run on a thread of its own (the daemon's): gives up between two files once
 * *cancel is set (by another thread), returning -ECANCELED with the set left exactly as
 * it was. Touches nothing outside s; s must not be used by anyone else meanwhile. */
int desired_set_rescan_cancellable(DesiredSet *s, const atomic_bool *cancel);
/* Re-read one file (path relative to the first root, as of the last rescan; before any
 * rescan this is a rescan); a file that no longer exists, or is no longer a manifest, is
 * dropped. The file is parsed again even when it looks unchanged: the caller saw it
 * change. */
int desired_set_update_file(DesiredSet *s, const char *relpath);

/* After rescan/update: the valid, unique-by-name specs (owned by the set, valid until
 * the next rescan/update), sorted by name, and all diagnostics (tree-level ones such as
 * duplicate names included), sorted by file, line, column. */
const NotebookSpec *const *desired_set_specs(const DesiredSet *s, size_t *ret_n);
const Diags *desired_set_diags(const DesiredSet *s);

/* Counts for summaries and STATUS=. */
typedef struct DesiredStats {
        size_t n_files;
        size_t n_documents;
        size_t n_valid;       /* unique valid specs */
        size_t n_invalid;     /* documents rejected, duplicates included */
} DesiredStats;
void desired_set_stats(const DesiredSet *s, DesiredStats *ret);

/* Whether the last rescan read the whole tree: 0 with *ret NULL when it did (every
 * file and directory read, no invalid manifest, at least one valid one), else *ret is
 * why not, for the journal (the first error, and how many more; caller frees).
 * -ENOMEM. Prune deletes nothing from a tree that is not whole (lib/prune.h). */
int desired_set_problem(const DesiredSet *s, char **ret);
/* The same for one tenant's part of the tree (tenants:): its own files and directories,
 * and whatever is no tenant's (the root, a file under no tenant path), and at least one
 * valid manifest of its own. NULL or an unknown tenant: the whole tree. One team's broken
 * manifest never holds another team's prune. */
int desired_set_problem_of(const DesiredSet *s, const char *tenant, char **ret);

/* The whole tree's problem and each tenant's (tenants, borrowed: in config order), as
 * prune judges them. */
typedef struct TreeProblems {
        const TenantList *tenants;
        char *whole;        /* desired_set_problem */
        char **of;          /* desired_set_problem_of, per tenant */
} TreeProblems;
int desired_set_tree_problems(const DesiredSet *s, const TenantList *tenants, TreeProblems *ret);
/* The problem of a tenant's part, or the whole tree's for NULL or a tenant not listed. */
const char *tree_problems_of(const TreeProblems *tp, const char *tenant);
void tree_problems_done(TreeProblems *tp);
