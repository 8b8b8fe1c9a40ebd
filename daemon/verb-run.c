/* `notebookd run`: the daemon. All the work is in the manager. */
#include "cli.h"
#include "credentials.h"
#include "log.h"
#include "manager.h"
#include "setup.h"

int verb_run(Cli *cli) {
        log_setup(cli->log_target, cli->log_level);
        /* no core dump may carry the credentials */
        (void) credentials_disable_core_dumps();

        _cleanup_(manager_freep) Manager *m = NULL;
        int r = manager_new(cli, &m);
        if (r < 0) {
                log_error_errno(r, "Cannot start: %m");
                return EXIT_USAGE;
        }
        r = manager_startup(m);
        if (r < 0)
                return startup_exit_code(r);
        return manager_loop(m);
}
