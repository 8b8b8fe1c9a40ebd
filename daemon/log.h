/* Structured logging: to the journal (sd_journal_sendv, one entry per event with
 * MESSAGE_ID and our own fields) or to the console (one readable line on stderr).
 *
 * Usage:
 *     log_fields(LOG_ERR, MESSAGE_CREATE_FAILED,
 *                LOG_FIELDS({ "NOTEBOOK", name }, { "HTTP_STATUS", LOG_INT(status) },
 *                           { "API_ERROR_CODE", code }),
 *                "Creating %s failed: %s", quoted_name, msg);
 *
 * Fields: NAME=value pairs. Names follow the journal's rules (A-Z, 0-9, _, at most 64,
 * not starting with _ or a digit); a field with a bad name, or one that would repeat a
 * field this file sets itself (MESSAGE, PRIORITY, MESSAGE_ID, CODE_*, SYSLOG_IDENTIFIER,
 * ERRNO), is dropped. A field whose value is NULL is skipped, so optional values can be
 * passed as they are. Values go to the journal verbatim (sendv is binary-safe, newlines
 * included); the console escapes control characters so one event stays one line.
 *
 * Credentials: there is deliberately no way to log one. No caller may pass an AK, SK,
 * token, security token or password as a field or in the message. As a second line of
 * defence, a field whose name contains TOKEN, PASSWORD or SECRET, or is SK, gets its
 * value replaced by "[redacted]".
 *
 * User-controlled strings (names, paths, API messages) embedded in MESSAGE sentences
 * must be quoted with quote_for_log() (lib/util.h) so they cannot forge lines; as
 * field values they need no quoting.
 *
 * Logging never changes errno. Not thread-safe (notebookd has one thread). */
#pragma once

#include <syslog.h>

#include "cli.h"
#include "macro.h"

typedef struct LogField {
        const char *name;
        const char *value;
} LogField;

/* A field array terminated by {NULL, NULL}, living as long as the enclosing block. */
#define LOG_FIELDS(...) ((const LogField[]){ __VA_ARGS__, { NULL, NULL } })

/* A decimal string for a field value, in a buffer living as long as the enclosing block:
 * { "HTTP_STATUS", LOG_INT(status) }. */
#define LOG_INT_BUFSIZE 24
const char *log_int(char buf[static LOG_INT_BUFSIZE], long long v);
#define LOG_INT(v) log_int((char[LOG_INT_BUFSIZE]){ 0 }, (long long) (v))

/* Choose where to log and the least important priority still logged (LOG_DEBUG logs
 * everything). LOG_TARGET_AUTO means the journal when stderr is connected to it
 * ($JOURNAL_STREAM names stderr's device:inode, systemd's convention) or when running
 * under systemd ($INVOCATION_ID) with the journal socket present; the console otherwise.
 * Before log_setup(): console, LOG_INFO. May be called again (reload). */
void log_setup(LogTarget target, int max_level);

/* Fields derived from another one, added to every entry that carries it: the tenant of
 * a NOTEBOOK= (tenants:), so every per-notebook entry gets TENANT= without each call
 * site having to know. fn returns the value (borrowed, valid during the call) or NULL.
 * NULL fn: none. */
typedef const char *(*log_derive_fn)(const char *value, void *userdata);
void log_set_derived_field(const char *from, const char *name, log_derive_fn fn, void *userdata);

/* The resolved target (never LOG_TARGET_AUTO) and level. */
LogTarget log_get_target(void);
int log_get_max_level(void);
/* Whether an entry of this priority would be written: skip costly preparation if not. */
bool log_would_log(int priority);

/* Use the macros below: they add CODE_FILE, CODE_LINE and CODE_FUNC. error is a
 * positive or negative errno or 0; when non-zero it is logged as ERRNO= and is what
 * %m prints. Returns -abs(error), so "return log_..._errno(r, ...);" logs and returns. */
int log_internal(int priority, int error, const char *message_id, const LogField *fields,
                 const char *file, int line, const char *func, const char *fmt, ...)
        _printf_(8, 9);

/* priority: LOG_ERR...LOG_DEBUG; message_id: a MESSAGE_* from messages.h or NULL;
 * fields: LOG_FIELDS(...) or NULL. */
#define log_fields(priority, message_id, fields, ...) \
        ((void) log_internal((priority), 0, (message_id), (fields), __FILE__, __LINE__, __func__, __VA_ARGS__))
#define log_fields_errno(priority, error, message_id, fields, ...) \
        log_internal((priority), (error), (message_id), (fields), __FILE__, __LINE__, __func__, __VA_ARGS__)

/* Plain entries: no MESSAGE_ID, no fields. */
#define log_message(priority, ...) \
        ((void) log_internal((priority), 0, NULL, NULL, __FILE__, __LINE__, __func__, __VA_ARGS__))
#define log_debug(...) log_message(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_message(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_message(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_message(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_message(LOG_ERR, __VA_ARGS__)

/* "return log_error_errno(r, "Failed to open %s: %m", path);" */
#define log_message_errno(priority, error, ...) \
        log_internal((priority), (error), NULL, NULL, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_debug_errno(error, ...) log_message_errno(LOG_DEBUG, error, __VA_ARGS__)
#define log_info_errno(error, ...) log_message_errno(LOG_INFO, error, __VA_ARGS__)
#define log_notice_errno(error, ...) log_message_errno(LOG_NOTICE, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_message_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...) log_message_errno(LOG_ERR, error, __VA_ARGS__)
