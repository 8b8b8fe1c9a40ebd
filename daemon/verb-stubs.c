/* TEMPORARY during parallel development: weak stand-ins so the binary links while a
 * verb is being written. Each real verb-*.c overrides its symbol. Removed before landing. */
#include <stdio.h>

#include "cli.h"

#define STUB(name)                                                              \
        __attribute__((weak)) int name(Cli *cli) {                              \
                (void) cli;                                                     \
                fprintf(stderr, "notebookd: %s: not implemented yet\n", #name); \
                return EXIT_USAGE;                                              \
        }
STUB(verb_check)
STUB(verb_plan)
STUB(verb_status)
STUB(verb_once)
STUB(verb_run)
