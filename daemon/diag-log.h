/* Manifest and config diagnostics, sent where the log goes: on the console exactly as
 * `check` prints them (FILE:LINE:COLUMN: error: ...), in the journal as structured
 * entries with CONFIG_FILE=, CONFIG_LINE=, CONFIG_COLUMN=. */
#pragma once

#include "diag.h"

/* message_id: MESSAGE_MANIFEST_INVALID or MESSAGE_CONFIG_INVALID. */
void log_diagnostics(const Diags *d, const char *message_id);
