/* notebookd: main only. Parse the command line, load the config, hand over to a verb. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "cli.h"
#include "diag.h"
#include "limits.h"
#include "util.h"

static void help(FILE *f) {
        fputs("notebookd " NOTEBOOKD_VERSION ": keep ModelArts notebook instances as the manifests say.\n"
              "\n"
              "Usage: notebookd [OPTIONS] [COMMAND] [PATH...]\n"
              "\n"
              "Commands:\n"
              "  run            watch the manifests and reconcile until stopped (default)\n"
              "  once           one full reconcile pass, then exit\n"
              "  check [PATH…]  validate manifests offline (files or directories;\n"
              "                 default: the manifests directory)\n"
              "  plan           show what a pass would do, changing nothing\n"
              "                 (--live: against the cloud's listing; ModelArts: list calls\n"
              "                 only, credentials fetched as configured)\n"
              "  status         show recorded instances\n"
              "\n"
              "Options:\n"
              "  -c, --config FILE      config file (default " CONFIG_DEFAULT_PATH ")\n"
              "  -m, --manifests DIR    manifests directory (default " CONFIG_DEFAULT_MANIFESTS ")\n"
              "  -s, --state-dir DIR    state directory (default $STATE_DIRECTORY, else\n"
              "                         " CONFIG_DEFAULT_STATE_DIR ")\n"
              "  -e, --endpoint URL     ModelArts endpoint\n"
              "  -p, --project-id ID    project ID\n"
              "      --json             machine-readable output (check, plan, status)\n"
              "      --wait             once: follow created instances until RUNNING or failed\n"
              "      --timeout SECONDS  once: a hard deadline (default 300): stop, cancel what is\n"
              "                         in flight, report\n"
              "      --tenant NAME      plan, status: only this tenant's notebooks (tenants:)\n"
              "      --live             plan: list the cloud (ModelArts: list calls only; needs\n"
              "                         credentials, fetched as configured) and show exactly\n"
              "                         what the next pass would do\n"
              "      --prune-confirm=N  once: with prune on, delete exactly N instances (the\n"
              "                         count plan shows), or none; replaces prune_max_per_pass\n"
              "      --log-target=auto|journal|console\n"
              "      --log-level=LEVEL  debug, info, notice, warning, err (default info)\n"
              "  -h, --help             this help\n"
              "      --version          print the version\n"
              "\n"
              "Exit codes: 0 ok; 1 invalid manifests, creates rejected by the API or failed\n"
              "instances; 2 usage, config, credential, authentication, state or I/O error;\n"
              "3 (once) transient failures remained at --timeout, or interrupted;\n"
              "4 (plan --live) the next pass has changes to make;\n"
              "75 could not start for now (state directory locked by another notebookd,\n"
              "state database busy, disk full or I/O error): try again later.\n"
              "See notebookd(8).\n",
              f);
}

static int parse_log_level(const char *s) {
        static const struct {
                const char *name;
                int level;
        } levels[] = {
                { "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "notice", LOG_NOTICE },
                { "warning", LOG_WARNING }, { "err", LOG_ERR }, { "error", LOG_ERR },
        };
        for (size_t i = 0; i < ELEMENTSOF(levels); i++)
                if (streq(s, levels[i].name))
                        return levels[i].level;
        return -EINVAL;
}

int main(int argc, char **argv) {
        enum { OPT_JSON = 0x100, OPT_VERSION, OPT_WAIT, OPT_TIMEOUT, OPT_LOG_TARGET, OPT_LOG_LEVEL, OPT_PRUNE_CONFIRM, OPT_TENANT,
               OPT_LIVE };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "manifests", required_argument, NULL, 'm' },
                { "state-dir", required_argument, NULL, 's' },
                { "endpoint", required_argument, NULL, 'e' },
                { "project-id", required_argument, NULL, 'p' },
                { "json", no_argument, NULL, OPT_JSON },
                { "wait", no_argument, NULL, OPT_WAIT },
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                { "prune-confirm", required_argument, NULL, OPT_PRUNE_CONFIRM },
                { "tenant", required_argument, NULL, OPT_TENANT },
                { "live", no_argument, NULL, OPT_LIVE },
                { "log-target", required_argument, NULL, OPT_LOG_TARGET },
                { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },
                {},
        };
        Cli cli = {
                .config_path = CONFIG_DEFAULT_PATH,
                .timeout_ms = 300 * 1000,
                .log_target = LOG_TARGET_AUTO,
                .log_level = LOG_INFO,
        };
        int c;
        int64_t v;

        while ((c = getopt_long(argc, argv, "c:m:s:e:p:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        cli.config_path = optarg;
                        cli.config_explicit = true;
                        break;
                case 'm':
                        cli.overrides.manifests = optarg;
                        break;
                case 's':
                        cli.overrides.state_dir = optarg;
                        break;
                case 'e':
                        cli.overrides.endpoint = optarg;
                        break;
                case 'p':
                        cli.overrides.project_id = optarg;
                        break;
                case OPT_JSON:
                        cli.json = true;
                        break;
                case OPT_WAIT:
                        cli.wait = true;
                        break;
                case OPT_TIMEOUT:
                        if (parse_int64(optarg, 1, 7 * 24 * 3600, &v) < 0) {
                                fprintf(stderr, "notebookd: --timeout: expected seconds (1 to 604800), got '%s'\n", optarg);
                                return EXIT_USAGE;
                        }
                        cli.timeout_ms = v * 1000;
                        break;
                case OPT_PRUNE_CONFIRM:
                        if (parse_int64(optarg, 1, CONFIG_MAX_PRUNE_PER_PASS, &v) < 0) {
                                fprintf(stderr, "notebookd: --prune-confirm: expected the number of deletions (1 to %d), got '%s'\n",
                                        CONFIG_MAX_PRUNE_PER_PASS, optarg);
                                return EXIT_USAGE;
                        }
                        cli.prune_confirm = (unsigned) v;
                        break;
                case OPT_TENANT:
                        cli.tenant = optarg;
                        break;
                case OPT_LIVE:
                        cli.live = true;
                        break;
                case OPT_LOG_TARGET:
                        if (streq(optarg, "auto"))
                                cli.log_target = LOG_TARGET_AUTO;
                        else if (streq(optarg, "journal"))
                                cli.log_target = LOG_TARGET_JOURNAL;
                        else if (streq(optarg, "console"))
                                cli.log_target = LOG_TARGET_CONSOLE;
                        else {
                                fprintf(stderr, "notebookd: --log-target: expected auto, journal or console, got '%s'\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case OPT_LOG_LEVEL:
                        if ((cli.log_level = parse_log_level(optarg)) < 0) {
                                fprintf(stderr, "notebookd: --log-level: expected debug, info, notice, warning or err, got '%s'\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h':
                        help(stdout);
                        return EXIT_OK;
                case OPT_VERSION:
                        puts("notebookd " NOTEBOOKD_VERSION);
                        return EXIT_OK;
                default:
                        fputs("Try 'notebookd --help'.\n", stderr);
                        return EXIT_USAGE;
                }

        const char *verb = optind < argc ? argv[optind++] : "run";
        cli.args = argv + optind;
        cli.n_args = argc - optind;

        static const struct {
                const char *name;
                int (*fn)(Cli *cli);
                bool takes_paths;
        } verbs[] = {
                { "run", verb_run, false },     { "once", verb_once, false },
                { "check", verb_check, true },  { "plan", verb_plan, false },
                { "status", verb_status, false },
        };
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                if (!streq(verb, verbs[i].name))
                        continue;
                if (cli.live && !streq(verb, "plan")) {
                        fprintf(stderr, "notebookd: --live is an option of plan only\n");
                        return EXIT_USAGE;
                }
                if (!verbs[i].takes_paths && cli.n_args > 0) {
                        fprintf(stderr, "notebookd: '%s' takes no arguments (got '%s')\n", verb, cli.args[0]);
                        return EXIT_USAGE;
                }
                /* check is offline and runs in CI: when it is told what to read (paths
                 * or -m) and no -c was given, the host's config file, broken or not, is
                 * none of its business */
                bool offline_check = streq(verb, "check") && !cli.config_explicit &&
                                     (cli.n_args > 0 || cli.overrides.manifests);
                _cleanup_diags_ Diags diags = DIAGS_INIT;
                int r = cli_load_config(&cli, !offline_check, &cli.config, &diags);
                diags_print(&diags, stderr);
                if (r < 0)
                        return EXIT_USAGE;
                int ret = verbs[i].fn(&cli);
                config_done(&cli.config);
                return ret;
        }
        fprintf(stderr, "notebookd: unknown command '%s'. Try 'notebookd --help'.\n", verb);
        return EXIT_USAGE;
}
