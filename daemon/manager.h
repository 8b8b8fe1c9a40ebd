/* The daemon's manager: owns the sd-event loop and everything hung on it. The
 * manifests watcher feeds the desired set, the resync timer and retries feed passes,
 * signals reload and stop, sd_notify tells systemd where we are.
 *
 * Lifecycle (notebookd run): manager_new() -> manager_startup() (config, credentials,
 * state, first scan, READY=1, first pass) -> manager_loop() -> manager_free(). */
#pragma once

#include "cli.h"
#include "macro.h"

typedef struct Manager Manager;

int manager_new(Cli *cli, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Everything up to READY=1. A negative errno has been logged. */
int manager_startup(Manager *m);
/* Run until SIGTERM/SIGINT and the in-flight work has drained. Returns an exit code. */
int manager_loop(Manager *m);
