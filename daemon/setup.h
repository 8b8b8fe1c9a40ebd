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
