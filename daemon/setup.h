/* What `once` and `run` both build before the loop: the API client from the config
 * and credentials, and the read-write store. Errors are printed/logged here, once,
 * at the level that decides; callers just exit with EXIT_USAGE. */
#pragma once

#include <systemd/sd-event.h>

#include "api.h"
#include "cli.h"
#include "credentials.h"
#include "desired.h"
#include "engine.h"
#include "prune.h"
#include "store.h"

typedef struct Backend {
        Credentials *credentials;
        ApiClient *api;
        Store *store;
        char *endpoint;
        char *project_id;
} Backend;

/* 0, or a negative errno after logging why (config, credentials, state). A failure to
 * open the state database that time may fix (busy, disk full, I/O error) is -EAGAIN. */
int backend_open(Backend *b, sd_event *event, const Config *config);
/* backend_open() without the store (b->store stays NULL): the endpoint, credentials and
 * API client only, with the same checks and messages. For plan --live, which must not
 * open the state database for writing (that may create or migrate it). */
int backend_open_api(Backend *b, sd_event *event, const Config *config);
/* The config's prune: keys as the engine's policy (tree_problem unset). */
PrunePolicy config_prune_policy(const Config *c);
/* The journal's TENANT= for a NOTEBOOK=: its manifest's tenant, else its record's, else
 * the tenant owning its prefix; NULL without tenants. Borrowed (engine_tenant_of). */
const char *tenant_of_notebook(Engine *e, const TenantList *tenants, const char *name);
/* Tell the engine whether the last scan read the whole tree, and each tenant's part. */
int engine_apply_tree_problems(Engine *e, const DesiredSet *desired, const TenantList *tenants);

/* The exit code for a start-up failure r: -EAGAIN (from backend_open() or
 * state_dir_lock()) is EXIT_TEMPFAIL, anything else EXIT_USAGE. */
int startup_exit_code(int r);

/* Before anything else at start: the manifests directory must be readable and
 * searchable by this process, and every directory above it searchable. If not (EACCES),
 * logs which directory, the user, the permission needed and how a service gets
 * it (BindReadOnlyPaths=), and returns -EACCES; other errors (ENOENT...) are left to
 * the manifest scan, which reports them. */
int manifests_dir_check(const char *dir);
void backend_close(Backend *b);

/* Whether a and b (opened from config_a and config_b) talk to the same API the same
 * way with the same credentials and state: a reload that changes none of it keeps the
 * running client (its in-flight requests, its 429 hold) instead of replacing it. */
bool backend_equivalent(const Backend *a, const Config *config_a, const Backend *b, const Config *config_b);

/* One writer per state directory: two (a daemon and a `once`) could each take the
 * other's create in flight for a lost one and create again. An exclusive flock on
 * STATE_DIR/notebookd.lock, held for the process's life; -EAGAIN (logged) when taken.
 * Taken before backend_open(), which opens (creates, migrates) the database for
 * writing: so it creates the directory (0700) when missing. */
int state_dir_lock(const char *state_dir, int *ret_fd);
