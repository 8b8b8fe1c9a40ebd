/* log-probe: write one entry through daemon/log.c, so tests can check what reaches
 * the journal (or the console) from the real code path.
 *
 *   log-probe TARGET MAX_LEVEL PRIORITY MESSAGE_ID MESSAGE [NAME=VALUE | NAME]...
 *
 * TARGET: auto, journal or console. MAX_LEVEL, PRIORITY: syslog numbers (0-7).
 * MESSAGE_ID: 32 hex digits, or "-" for none. MESSAGE is logged as "%s". A bare NAME
 * is a field with a NULL value (which log.c skips). Prints the resolved target,
 * "journal" or "console", on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

int main(int argc, char **argv) {
        if (argc < 6) {
                fputs("usage: log-probe auto|journal|console MAX_LEVEL PRIORITY MESSAGE_ID|- MESSAGE [NAME=VALUE|NAME]...\n", stderr);
                return 2;
        }
        LogTarget target = streq(argv[1], "journal") ? LOG_TARGET_JOURNAL
                           : streq(argv[1], "console") ? LOG_TARGET_CONSOLE
                                                       : LOG_TARGET_AUTO;
        int64_t max_level, priority;
        if (parse_int64(argv[2], 0, 7, &max_level) < 0 || parse_int64(argv[3], 0, 7, &priority) < 0) {
                fputs("log-probe: levels are 0-7\n", stderr);
                return 2;
        }
        int n = argc - 6;
        LogField *fields = calloc((size_t) n + 1, sizeof(LogField));
        char **names = calloc((size_t) n + 1, sizeof(char *));
        if (!fields || !names)
                return 1;
        for (int i = 0; i < n; i++) {
                const char *arg = argv[6 + i];
                const char *eq = strchr(arg, '=');
                names[i] = eq ? strndup(arg, (size_t) (eq - arg)) : strdup(arg);
                if (!names[i])
                        return 1;
                fields[i] = (LogField){ names[i], eq ? eq + 1 : NULL };
        }
        fields[n] = (LogField){ NULL, NULL };

        log_setup(target, (int) max_level);
        puts(log_get_target() == LOG_TARGET_JOURNAL ? "journal" : "console");
        fflush(stdout);
        log_fields((int) priority, streq(argv[4], "-") ? NULL : argv[4], fields, "%s", argv[5]);

        for (int i = 0; i < n; i++)
                free(names[i]);
        free(names);
        free(fields);
        return 0;
}
