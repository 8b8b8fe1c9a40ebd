/* The daemon's manager: owns the sd-event loop and everything hung on it. The
 * manifests watcher feeds the desired set, the resync timer and retries feed passes,
 * signals reload and stop, a credential file rewritten while sending is paused for
 * authentication reloads too, sd_notify tells systemd where we are.
 *
 * Lifecycle (notebookd run): manager_new() -> manager_startup() (config, credentials,
 * state, the first scan started on the scan thread) -> manager_loop() (the first scan
 * in: READY=1, first pass; then until stopped) -> manager_free().
 *
 * Manifests are always scanned and parsed on a thread of their own, never on the loop:
 * a tree at the manifest limits takes seconds, and the loop must keep sending WATCHDOG=1.
 * The longest loop iteration is logged at exit (debug, LOOP_MAX_USEC=). */
#pragma once

#include "cli.h"
#include "macro.h"

typedef struct Manager Manager;

int manager_new(Cli *cli, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Everything up to the first scan (READY=1 follows it, from the loop). A negative
 * errno has been logged. */
int manager_startup(Manager *m);
/* Run until SIGTERM/SIGINT and the in-flight work has drained. Returns an exit code. */
int manager_loop(Manager *m);
