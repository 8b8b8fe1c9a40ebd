/* What main hands every verb: the parsed command line on top of the config file. */
#pragma once

#include <stdbool.h>

#include "config.h"

/* Exit codes, the same for every verb (README "Exit codes"). */
enum {
        EXIT_OK = 0,
        EXIT_INVALID = 1,    /* some manifests invalid, creates rejected by the API, or instances
                              * failed; the rest applied */
        EXIT_USAGE = 2,      /* usage, config, credential, authentication, state or I/O error
                              * that restarting with the same files cannot fix */
        EXIT_TRANSIENT = 3,  /* once: transient failures remained at the deadline, or interrupted;
                              * precedence 2 > 3 > 1 > 0 */
        EXIT_CHANGES = 4,    /* plan --live: the next pass has something to do (like terraform
                              * plan -detailed-exitcode's 2); 2, 3 and 1 win over it */
        EXIT_TEMPFAIL = 75,  /* EX_TEMPFAIL: could not start for a reason time fixes (the state
                              * directory locked by another notebookd, the state database busy,
                              * its disk full or failing); nothing was done. The unit's
                              * Restart=on-failure retries it, while it never restarts on 2 */
};

typedef enum LogTarget {
        LOG_TARGET_AUTO,
        LOG_TARGET_JOURNAL,
        LOG_TARGET_CONSOLE,
} LogTarget;

/* Options that override the config file's values (NULL = not given). */
typedef struct CliOverrides {
        const char *manifests, *state_dir, *endpoint, *project_id;
} CliOverrides;

typedef struct Cli {
        const char *config_path;   /* -c; NULL = default (missing default file = defaults) */
        bool config_explicit;
        CliOverrides overrides;
        Config config;             /* file values with command-line overrides applied */
        bool json;                 /* --json */
        bool wait;                 /* once --wait */
        long long timeout_ms;      /* once --timeout */
        unsigned prune_confirm;    /* once --prune-confirm: 0 = not given */
        const char *tenant;        /* plan, status --tenant: only this tenant's */
        bool live;                 /* plan --live: list the cloud (ModelArts: list calls
                                    * only) and plan against it */
        LogTarget log_target;
        int log_level;             /* syslog priority, LOG_INFO by default */
        char **args;               /* positional arguments after the verb */
        int n_args;
} Cli;

/* Build *ret from the defaults, the config file (when read_file; the default path may
 * be absent, a path given with -c may not) and the command-line overrides. Problems go
 * to *diags; returns 0 or a negative errno, *ret then untouched. Used at start and by
 * the daemon's reload. */
int cli_load_config(const Cli *cli, bool read_file, Config *ret, Diags *diags);

/* Each verb returns an exit code from the enum above. */
int verb_check(Cli *cli);
int verb_plan(Cli *cli);
int verb_status(Cli *cli);
int verb_once(Cli *cli);
int verb_run(Cli *cli);
