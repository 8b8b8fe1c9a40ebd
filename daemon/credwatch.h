/* The credential files on disk, watched so that a pause for refused credentials ends as
 * soon as the operator writes new ones, without a SIGHUP.
 *
 * inotify on each file's directory (an editor or `mv` replaces the file, so the file's
 * own inode is the wrong thing to watch), filtered to the files' names. A burst of
 * changes (the AK, then the SK, then their modes) is one call, once it has been quiet
 * for the debounce. Files under $CREDENTIALS_DIRECTORY are not watched: systemd copies
 * them only when the service starts. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "macro.h"

typedef struct CredWatch CredWatch;
typedef void (*credwatch_cb)(CredWatch *w, void *userdata);

/* Watch PATHS (NULL entries skipped; none at all: *ret = NULL, 0). */
int credwatch_new(sd_event *event, const char *const *paths, size_t n, uint64_t debounce_ms, credwatch_cb cb,
                  void *userdata, CredWatch **ret);
CredWatch *credwatch_free(CredWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(CredWatch *, credwatch_free);
