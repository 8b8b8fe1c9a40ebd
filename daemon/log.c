/* Where log entries go: the journal's native protocol, or one line on stderr.
 * The journal gets every field verbatim; the console gets a line a person can read. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* We send CODE_FILE/LINE/FUNC of the caller ourselves; without this, sd-journal.h
 * turns sd_journal_sendv() into a macro adding this file's location instead. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "log.h"
#include "util.h"

/* Where sd_journal_sendv() writes; libsystemd has this path built in. */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"
/* The journal's own limit on field names. */
#define JOURNAL_FIELD_NAME_MAX 64

static LogTarget log_target = LOG_TARGET_CONSOLE;
static int log_max_level = LOG_INFO;
/* A person watches a terminal: give each line its time of day. Files and pipes get
 * none, so tests can compare lines exactly. */
static bool console_timestamps;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",   [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit",
        [LOG_ERR] = "error",     [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",     [LOG_DEBUG] = "debug",
};

const char *log_int(char buf[static LOG_INT_BUFSIZE], long long v) {
        snprintf(buf, LOG_INT_BUFSIZE, "%lld", v);
        return buf;
}

/* $JOURNAL_STREAM is "DEVICE:INODE" of the stream systemd connected; it is inherited by
 * children whose stderr may point elsewhere, so it only counts if it names our stderr. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        if (!e)
                return false;
        char *end;
        errno = 0;
        unsigned long long dev = strtoull(e, &end, 10);
        if (errno != 0 || end == e || *end != ':')
                return false;
        const char *p = end + 1;
        unsigned long long ino = strtoull(p, &end, 10);
        if (errno != 0 || end == p || *end != 0)
                return false;
        struct stat st;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(LogTarget target, int max_level) {
        if (target == LOG_TARGET_AUTO) {
                /* Under systemd with stderr sent elsewhere (StandardError=null, a tty), the
                 * journal is still the place an operator looks. */
                bool under_systemd = getenv("INVOCATION_ID") && access(JOURNAL_SOCKET, W_OK) == 0;
                target = stderr_is_journal() || under_systemd ? LOG_TARGET_JOURNAL : LOG_TARGET_CONSOLE;
        }
        log_target = target;
        log_max_level = max_level < LOG_EMERG ? LOG_EMERG : max_level > LOG_DEBUG ? LOG_DEBUG : max_level;
        console_timestamps = isatty(STDERR_FILENO) == 1;
}

LogTarget log_get_target(void) {
        return log_target;
}

int log_get_max_level(void) {
        return log_max_level;
}

bool log_would_log(int priority) {
        return LOG_PRI(priority) <= log_max_level;
}

static bool field_name_valid(const char *name) {
        size_t len = strlen(name);
        if (len == 0 || len > JOURNAL_FIELD_NAME_MAX || name[0] == '_' || (name[0] >= '0' && name[0] <= '9'))
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        return true;
}

/* Fields this file writes itself: a caller's copy would make the entry ambiguous. */
static bool field_name_reserved(const char *name) {
        static const char *const reserved[] = {
                "MESSAGE", "MESSAGE_ID", "PRIORITY", "SYSLOG_IDENTIFIER",
                "CODE_FILE", "CODE_LINE", "CODE_FUNC", "ERRNO",
        };
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (streq(name, reserved[i]))
                        return true;
        return false;
}

/* Second line of defence (see log.h): a field that looks like it carries a secret. */
static bool field_name_secret(const char *name) {
        return strstr(name, "TOKEN") || strstr(name, "PASSWORD") || strstr(name, "SECRET") || streq(name, "SK");
}

static bool field_usable(const LogField *f) {
        return f->value && field_name_valid(f->name) && !field_name_reserved(f->name);
}

static const char *field_value(const LogField *f) {
        return field_name_secret(f->name) ? "[redacted]" : f->value;
}

static int write_journal(int priority, int error, const char *message_id, const LogField *fields,
                         const char *file, int line, const char *func, const char *message) {
        size_t n_fields = 0;
        for (const LogField *f = fields; f && f->name; f++)
                n_fields++;

        /* MESSAGE, PRIORITY, MESSAGE_ID, SYSLOG_IDENTIFIER, CODE_FILE/LINE/FUNC, ERRNO */
        size_t cap = n_fields + 8, n = 0;
        char **items = calloc(cap, sizeof(char *));
        struct iovec *iov = calloc(cap, sizeof(struct iovec));
        int r = -ENOMEM;
        if (!items || !iov)
                goto finish;

#define ADD(...)                                                 \
        do {                                                     \
                if (!(items[n] = xasprintf(__VA_ARGS__)))        \
                        goto finish;                             \
                n++;                                             \
        } while (0)

        ADD("MESSAGE=%s", message);
        ADD("PRIORITY=%d", LOG_PRI(priority));
        if (message_id)
                ADD("MESSAGE_ID=%s", message_id);
        ADD("SYSLOG_IDENTIFIER=notebookd");
        ADD("CODE_FILE=%s", file);
        ADD("CODE_LINE=%d", line);
        ADD("CODE_FUNC=%s", func);
        if (error != 0)
                ADD("ERRNO=%d", abs(error));
        for (const LogField *f = fields; f && f->name; f++)
                if (field_usable(f))
                        ADD("%s=%s", f->name, field_value(f));
#undef ADD

        for (size_t i = 0; i < n; i++)
                iov[i] = (struct iovec){ .iov_base = items[i], .iov_len = strlen(items[i]) };
        /* sendv, not send: it switches a value holding a newline to the binary-safe
         * encoding, so values reach the journal exactly as given. */
        r = sd_journal_sendv(iov, (int) n);
finish:
        for (size_t i = 0; items && i < n; i++)
                free(items[i]);
        free(items);
        free(iov);
        return r;
}

/* Control characters become \xNN so one event is one line and a crafted value cannot
 * forge another line. */
static void put_escaped(FILE *f, const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        fprintf(f, "\\x%02x", *p);
                else
                        fputc(*p, f);
}

static bool needs_quotes(const char *s) {
        if (!*s)
                return true;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '[' || *p == ']' || *p == 0x7f)
                        return true;
        return false;
}

static void write_all(int fd, const char *buf, size_t len) {
        while (len > 0) {
                ssize_t k = write(fd, buf, len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return; /* nowhere left to report it */
                buf += k;
                len -= (size_t) k;
        }
}

/* "notebookd: warning: MESSAGE [NAME=value ...]". The fields follow for warnings and
 * worse (the codes and request IDs an operator quotes to support) and, at debug level,
 * for everything; otherwise the sentence says enough. */
static void write_console(int priority, const LogField *fields, const char *message) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) {
                /* Out of memory: the bare message still beats silence. */
                write_all(STDERR_FILENO, message, strlen(message));
                write_all(STDERR_FILENO, "\n", 1);
                return;
        }

        if (console_timestamps) {
                struct timespec ts;
                struct tm tm;
                clock_gettime(CLOCK_REALTIME, &ts);
                if (localtime_r(&ts.tv_sec, &tm))
                        fprintf(f, "%02d:%02d:%02d.%03ld ", tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
        }
        fprintf(f, "notebookd: %s: ", level_names[LOG_PRI(priority)]);
        put_escaped(f, message);

        if (fields && (LOG_PRI(priority) <= LOG_WARNING || log_max_level >= LOG_DEBUG)) {
                bool first = true;
                for (const LogField *fl = fields; fl->name; fl++) {
                        if (!field_usable(fl))
                                continue;
                        const char *v = field_value(fl);
                        fprintf(f, "%s%s=", first ? " [" : " ", fl->name);
                        first = false;
                        if (needs_quotes(v)) {
                                _cleanup_free_ char *q = quote_for_log(v);
                                fputs(q ? q : "\"?\"", f);
                        } else
                                fputs(v, f);
                }
                if (!first)
                        fputc(']', f);
        }
        fputc('\n', f);

        /* One write per line, so lines from concurrent writers to the same stderr
         * (the test harness collects several processes) do not interleave. */
        if (fflush(f) == 0)
                write_all(STDERR_FILENO, buf, len);
        fclose(f);
        free(buf);
}

static struct {
        const char *from, *name;
        log_derive_fn fn;
        void *userdata;
} derived;

void log_set_derived_field(const char *from, const char *name, log_derive_fn fn, void *userdata) {
        derived.from = from;
        derived.name = name;
        derived.fn = fn;
        derived.userdata = userdata;
}

/* fields plus the derived one (log_set_derived_field), in buf; fields when none applies. */
#define LOG_MAX_FIELDS 32
static const LogField *with_derived(const LogField *fields, LogField buf[static LOG_MAX_FIELDS]) {
        if (!derived.fn || !fields)
                return fields;
        const char *value = NULL;
        size_t n = 0;
        for (const LogField *f = fields; f->name; f++, n++) {
                if (streq(f->name, derived.name))
                        return fields;   /* the caller said it */
                if (!value && f->value && streq(f->name, derived.from))
                        value = derived.fn(f->value, derived.userdata);
        }
        if (!value || n + 2 > LOG_MAX_FIELDS)
                return fields;
        memcpy(buf, fields, n * sizeof(LogField));
        buf[n] = (LogField) { derived.name, value };
        buf[n + 1] = (LogField) { NULL, NULL };
        return buf;
}

int log_internal(int priority, int error, const char *message_id, const LogField *fields,
                 const char *file, int line, const char *func, const char *fmt, ...) {
        int saved_errno = errno;
        int ret = error < 0 ? error : -error;

        if (log_would_log(priority)) {
                LogField all[LOG_MAX_FIELDS];
                fields = with_derived(fields, all);
                /* %m prints the error being logged; without one, the caller's errno. */
                errno = error != 0 ? -ret : saved_errno;
                va_list ap;
                va_start(ap, fmt);
                _cleanup_free_ char *message = xvasprintf(fmt, ap);
                va_end(ap);
                const char *m = message ? message : "(message lost: out of memory)";

                if (log_target != LOG_TARGET_JOURNAL ||
                    write_journal(priority, error, message_id, fields, file, line, func, m) < 0)
                        /* Also the fallback when the journal is gone: never lose an entry. */
                        write_console(priority, fields, m);
        }

        errno = saved_errno;
        return ret;
}
