/* Finding the manifest files under a manifests root: which files count, which are
 * refused and why. Only the walk lives here; reading and parsing is lib/manifest.c,
 * keeping state across scans is lib/desired.c.
 *
 * Rules (README "Manifest files"): *.yaml and *.yml regular files, recursively up to
 * MANIFEST_MAX_DIR_DEPTH; hidden names (.git!) and editor leftovers (*~, .#*, *.swp,
 * *.tmp) ignored; symlinks followed only when they resolve inside the root; the same
 * file or directory reached twice (symlinks, hard links, loops) counted once. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "diag.h"

/* One manifest file found by a scan, with the identity used to notice a change. */
typedef struct ScanFile {
        size_t root;             /* index of the root it was found under */
        char *path;              /* relative to that root, '/'-separated; "" = the root is this file */
        char *resolved;          /* where the walk checked it is, relative to the root, with no
                                  * symlink in it: what is read (yaml_read_file() opens it beneath
                                  * the root without following any symlink, so a path swapped for a
                                  * symlink after the walk is refused, not followed); NULL when that
                                  * is path itself (no symlink on the way) */
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime;
        struct timespec ctime;
} ScanFile;

/* One root as the scan resolved it. */
typedef struct ScanRoot {
        char *real;              /* canonical path, symlinks resolved (git-sync swaps it) */
        int fd;                  /* open directory to read files relative to; -1 for a file root */
        bool is_file;            /* the root named a single file (check takes files) */
} ScanRoot;

typedef struct ScanInodeSet ScanInodeSet;

/* Results of one or more scan_root() calls (several roots share one file limit and
 * one visited set, so a file named twice is read once). */
typedef struct ScanResult {
        ScanFile *files;         /* sorted by root, then path (byte order) */
        size_t n_files, cap_files;
        ScanRoot *roots;
        size_t n_roots;
        bool truncated;          /* MANIFEST_MAX_FILES reached; the rest were not read */
        ScanInodeSet *seen;      /* internal: dev/ino of every file and directory visited */
} ScanResult;

#define SCAN_RESULT_INIT ((ScanResult) { 0 })

/* Walk root (a directory, or a single regular file; a symlink to either is resolved
 * first) and append its manifest files to *res as root number res->n_roots.
 * display_root is how paths are shown in diagnostics (what the user typed).
 * Problems inside the tree (unreadable directory, symlink leading outside, too deep,
 * too many files, a fifo) are diagnostics in *diags. Returns 0; or, when the root
 * itself cannot be used, a negative errno (-ENOENT, -EACCES, -EINVAL when it is neither
 * a directory nor a regular file, ...) with nothing appended; or -ENOMEM. */
int scan_root(ScanResult *res, const char *root, const char *display_root, Diags *diags);

/* Check one path below an already scanned root (the daemon's inotify path), by the
 * same rules as the walk. Returns 1 and fills *ret (ret->path, ret->resolved allocated) when relpath is
 * a manifest file; 0 when it is not (absent, ignored, refused: refusals add a
 * diagnostic); -ENOMEM. Does not look at the visited set or the file limit: the caller
 * knows its other files. */
int scan_file(const ScanRoot *root, size_t root_index, const char *relpath,
              const char *display_root, Diags *diags, ScanFile *ret);

/* Names the walk ignores: hidden, editor leftovers. */
bool scan_name_ignored(const char *name);
/* Names the walk collects: *.yaml, *.yml. */
bool scan_name_is_manifest(const char *name);

/* "dir" + "a/b.yaml" -> "dir/a/b.yaml" (one separator, trailing ones of dir dropped;
 * relpath "" gives dir as it is). NULL on allocation failure. */
char *scan_display_path(const char *display_root, const char *relpath);

/* What to read for f, relative to its root: the checked, symlink-free location. */
static inline const char *scan_file_read_path(const ScanFile *f) {
        return f->resolved ? f->resolved : f->path;
}

void scan_file_done(ScanFile *f);
void scan_result_clear(ScanResult *res);
static inline void scan_result_clearp(ScanResult *res) {
        scan_result_clear(res);
}
#define _cleanup_scan_result_ _cleanup_(scan_result_clearp)
