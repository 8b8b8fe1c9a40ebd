/* Manifest and config diagnostics, sent where the log goes: on the console exactly as
 * `check` prints them (FILE:LINE:COLUMN: error: ...), in the journal as structured
 * MANIFEST_INVALID entries with CONFIG_FILE=, CONFIG_LINE=, CONFIG_COLUMN=. */
#pragma once

#include "diag.h"

void log_diagnostics(const Diags *d);
