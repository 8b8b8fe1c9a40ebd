#include "diag-log.h"

#include <stdio.h>

#include "log.h"

void log_diagnostics(const Diags *d, const char *message_id) {
        for (size_t i = 0; i < d->n; i++) {
                const Diag *g = &d->items[i];
                if (log_get_target() == LOG_TARGET_CONSOLE) {
                        /* the compiler format editors and CI already parse */
                        diag_print(g, stderr);
                        continue;
                }
                char line[LOG_INT_BUFSIZE], col[LOG_INT_BUFSIZE];
                log_fields(g->severity == DIAG_ERROR ? LOG_ERR : LOG_WARNING, message_id,
                           LOG_FIELDS({ "CONFIG_FILE", g->file },
                                      { "CONFIG_LINE", g->line ? log_int(line, g->line) : NULL },
                                      { "CONFIG_COLUMN", g->line ? log_int(col, g->column) : NULL }),
                           "%s:%u:%u: %s: %s", g->file, g->line, g->column,
                           diag_severity_to_string(g->severity), g->message);
        }
}
