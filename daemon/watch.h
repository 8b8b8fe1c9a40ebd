/* The manifests-tree watcher: inotify on the sd-event loop, debounced.
 *
 * It says "something under the manifests path changed, rescan" once a burst of changes
 * has settled; it does not say what (desired_set_rescan() finds that out by size, mtime
 * and inode). Every directory under the resolved root is watched (hidden ones such as
 * .git are not: their churn during a git fetch must not cause passes), new directories
 * get watches as they appear, and the path itself is guarded: the directory holding it,
 * and every symlink on the way to it, so that a git-sync style symlink swap, the root
 * being moved, deleted or created later are all noticed (root_changed).
 *
 * Ordering guarantee the caller builds on: a callback is only ever made after the
 * watches for the current tree are in place, so a full rescan done in (or after) the
 * callback sees every change made before it, and every change after it makes another
 * callback. Create the watcher before the first scan for the same reason. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "macro.h"

typedef struct Watch Watch;

/* Called from the loop after a burst of changes settled. root_changed: the manifests path
 * itself was replaced (symlink swap, directory moved/recreated, overflow) — the caller
 * rescans everything (it always does a full rescan anyway; this is for logging).
 * The callback may call watch_set_path() or watch_free() on w. */
typedef void (*watch_cb)(Watch *w, bool root_changed, void *userdata);

/* path: the manifests directory (a symlink to one, or a path that does not exist yet:
 * the watcher then waits for it to appear). debounce_ms: quiet time that ends a burst;
 * max_delay_ms: a burst is reported at most this long after its first event, however
 * long it goes on (normally >= debounce_ms; below it, it is the delay). Both 0 .. 24 h.
 * Returns 0, -EINVAL, -ENOMEM, or what
 * inotify_init1()/sd-event returned; problems with single directories are not errors
 * (see watch_n_errors()). */
int watch_new(sd_event *e, const char *path, int64_t debounce_ms, int64_t max_delay_ms,
              watch_cb cb, void *userdata, Watch **ret);
Watch *watch_free(Watch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Watch *, watch_free);

/* Re-create all watches (after SIGHUP, or when path changes in a reload). Does not make
 * a callback by itself (the caller rescans after a reload anyway). Returns 0, -ENOMEM. */
int watch_set_path(Watch *w, const char *path);

/* During the callback: true when the burst changed nothing but manifest files, listed in
 * *ret (paths relative to the manifests directory as resolved, at most
 * WATCH_MAX_CHANGED_FILES, owned by w, valid until the next callback); the caller may
 * then re-read just those. False: rescan the whole tree (a directory, the root, more
 * files than that, or a lost event). */
bool watch_changed_files(const Watch *w, char *const **ret, size_t *ret_n);

/* inotify watches held now (tree directories plus guards): for tests and debugging. */
unsigned watch_n_watches(const Watch *w);
/* Directories that could not be watched (WATCH_MAX_WATCHES reached, the per-user inotify
 * limit, EACCES, ...) and failed reads, since watch_new(): the library does not log, the
 * manager reports an increase. watch_last_error(): the latest of them, a negative errno
 * (0 if none). Changes in directories not watched are seen by the periodic resync only. */
unsigned watch_n_errors(const Watch *w);
int watch_last_error(const Watch *w);
/* The manifests root as resolved by the latest setup (symlinks followed), or NULL while
 * the path does not exist: for logging what a root change led to. */
const char *watch_root(const Watch *w);
