/* plan --live: the cloud as it is now, listed once the way a full pass lists it (every
 * workspace that matters, each through api_list's pager, all at once), but outside the
 * engine: nothing is recorded and nothing but list calls is ever sent to ModelArts
 * (credentials are fetched as configured: an IAM token by POST, the metadata service's
 * PUT and GETs), so a CI job or an operator can ask "what would the next pass do?" at
 * any time, next to a running daemon. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <systemd/sd-event.h>

#include "api.h"
#include "instance.h"
#include "spec.h"
#include "store.h"

typedef struct LiveListing {
        RemoteInstanceList instances;  /* every workspace listed, merged by id */
        char **unlisted;               /* workspaces whose listing failed */
        char **unlisted_why;           /* ... and why (the API client's message), same order */
        ApiClass *unlisted_class;      /* ... and the answer's class (API_CLASS_TRANSIENT for
                                        * a local failure to send), same order */
        size_t n_unlisted;
        bool auth_failed;              /* the API refused the credentials (logged) */
        char *auth_message;
} LiveListing;

/* List each workspace on event's loop, which runs until every listing answered. An
 * authentication failure is logged (MESSAGE_AUTH_FAILED) and noted in *ret, other
 * failures are noted per workspace (the caller reports them). 0, or -ENOMEM or the
 * loop's error (*ret then empty). */
/* workspaces: what a full pass lists (plan_workspaces_needed, as the engine asks it). */
int live_list(sd_event *event, ApiClient *api, const char *const *workspaces, size_t n, LiveListing *ret);
/* The exit status the workspaces not listed call for, most urgent first: EXIT_USAGE for
 * an authentication failure or a policy denial (as once), EXIT_TRANSIENT when any
 * failure may pass (run it again), EXIT_INVALID when every one was refused for good
 * (running again cannot help), EXIT_OK when all were listed. */
int live_exit_code(const LiveListing *l);
void live_listing_done(LiveListing *l);
