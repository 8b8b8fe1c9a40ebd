/* What `once` and `run` both build before the loop: the API client from the config
 * and credentials, and the read-write store. Errors are printed/logged here, once,
 * at the level that decides; callers just exit with EXIT_USAGE. */
#pragma once

#include <systemd/sd-event.h>

#include "api.h"
#include "cli.h"
#include "credentials.h"
#include "store.h"

typedef struct Backend {
        Credentials *credentials;
        ApiClient *api;
        Store *store;
        char *endpoint;
        char *project_id;
} Backend;

/* 0, or a negative errno after logging why (config, credentials, state). */
int backend_open(Backend *b, sd_event *event, const Config *config);
void backend_close(Backend *b);

/* Whether a and b (opened from config_a and config_b) talk to the same API the same
 * way with the same credentials and state: a reload that changes none of it keeps the
 * running client (its in-flight requests, its 429 hold) instead of replacing it. */
bool backend_equivalent(const Backend *a, const Config *config_a, const Backend *b, const Config *config_b);

/* One writer per state directory: two (a daemon and a `once`) could each take the
 * other's create in flight for a lost one and create again. An exclusive flock on
 * STATE_DIR/notebookd.lock, held for the process's life; -EBUSY (logged) when taken.
 * Taken before backend_open(), which opens (creates, migrates) the database for
 * writing: so it creates the directory (0700) when missing. */
int state_dir_lock(const char *state_dir, int *ret_fd);
