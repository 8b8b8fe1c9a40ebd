#include "live.h"

#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "messages.h"
#include "util.h"

typedef struct LiveState {
        sd_event *event;
        LiveListing *listing;
        size_t out;             /* listings not answered yet */
        int error;              /* -ENOMEM while merging */
} LiveState;

typedef struct LiveRequest {
        LiveState *state;
        char *workspace_id;
} LiveRequest;

static int note_unlisted(LiveListing *l, const char *workspace_id, ApiClass class, const char *why) {
        char **u = reallocarray(l->unlisted, l->n_unlisted + 1, sizeof(char *));
        if (u)
                l->unlisted = u;
        char **w = u ? reallocarray(l->unlisted_why, l->n_unlisted + 1, sizeof(char *)) : NULL;
        if (w)
                l->unlisted_why = w;
        ApiClass *k = w ? reallocarray(l->unlisted_class, l->n_unlisted + 1, sizeof(ApiClass)) : NULL;
        if (k)
                l->unlisted_class = k;
        if (!u || !w || !k)
                return -ENOMEM;
        l->unlisted_class[l->n_unlisted] = class;
        l->unlisted[l->n_unlisted] = strdup(workspace_id);
        l->unlisted_why[l->n_unlisted] = strdup(strempty(why));
        l->n_unlisted++;   /* counted even when a copy failed: the entry is freed either way */
        return l->unlisted[l->n_unlisted - 1] && l->unlisted_why[l->n_unlisted - 1] ? 0 : -ENOMEM;
}

static void on_list(ApiClient *c, const ApiResult *ar, const RemoteInstanceList *list, void *userdata) {
        (void) c;
        LiveRequest *lr = userdata;
        LiveState *s = lr->state;
        LiveListing *l = s->listing;
        int r = 0;
        if (ar->class == API_CLASS_OK && list)
                r = remote_instance_list_merge(&l->instances, list); /* as the engine merges */
        else if (ar->class == API_CLASS_AUTH) {
                /* once per run: the client refuses the other listings without sending */
                if (!l->auth_failed) {
                        char http_buf[LOG_INT_BUFSIZE];
                        log_fields(LOG_ERR, MESSAGE_AUTH_FAILED,
                                   LOG_FIELDS({ "HTTP_STATUS", ar->http_status > 0 ? log_int(http_buf, ar->http_status) : NULL },
                                              { "API_ERROR_CODE", ar->error_code }, { "API_ERROR_MSG", ar->error_msg },
                                              { "REQUEST_ID", ar->request_id }, { "WORKSPACE_ID", lr->workspace_id }),
                                   "Authentication failed: %s", strempty(ar->message));
                        l->auth_failed = true;
                        l->auth_message = xstrdup(strempty(ar->message));
                }
                r = note_unlisted(l, lr->workspace_id, ar->class, ar->message);
        } else
                /* an OK class without a list (memory) is for running again */
                r = note_unlisted(l, lr->workspace_id, ar->class == API_CLASS_OK ? API_CLASS_TRANSIENT : ar->class,
                                  ar->message);
        if (r < 0)
                s->error = r;
        free(lr->workspace_id);
        free(lr);
        if (--s->out == 0)
                (void) sd_event_exit(s->event, 0);
}

int live_list(sd_event *event, ApiClient *api, const char *const *workspaces, size_t n, LiveListing *ret) {
        *ret = (LiveListing) {};
        LiveState s = { .event = event, .listing = ret };
        int r = 0;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                LiveRequest *lr = calloc(1, sizeof(*lr));
                if (lr && !(lr->workspace_id = strdup(workspaces[i])))
                        lr = mfree(lr);
                if (!lr) {
                        r = -ENOMEM;
                        break;
                }
                lr->state = &s;
                /* callbacks come from the loop, never from inside api_list() */
                r = api_list(api, workspaces[i], on_list, lr);
                if (r < 0) {
                        free(lr->workspace_id);
                        free(lr);
                        r = note_unlisted(ret, workspaces[i], API_CLASS_TRANSIENT, strerror(-r));
                        continue;
                }
                s.out++;
        }
        if (r >= 0 && s.out > 0)
                r = sd_event_loop(event);
        if (r >= 0 && s.error < 0)
                r = s.error;
        if (r < 0) {
                /* what is still queued answers into s, which ends here: drop it first */
                api_client_cancel_all(api);
                live_listing_done(ret);
        }
        return r;
}

int live_exit_code(const LiveListing *l) {
        int code = EXIT_OK;
        for (size_t i = 0; i < l->n_unlisted; i++)
                switch (l->unlisted_class[i]) {
                case API_CLASS_AUTH:
                case API_CLASS_FORBIDDEN:
                        /* the credentials, or a policy on them: as once says it */
                        return EXIT_USAGE;
                case API_CLASS_PERMANENT:
                case API_CLASS_NOT_FOUND:
                case API_CLASS_ACCOUNT_FROZEN:
                        /* refused for good: running again cannot help, a human must act */
                        if (code != EXIT_TRANSIENT)
                                code = EXIT_INVALID;
                        break;
                default:
                        code = EXIT_TRANSIENT;
                        break;
                }
        return code;
}

void live_listing_done(LiveListing *l) {
        remote_instance_list_clear(&l->instances);
        for (size_t i = 0; i < l->n_unlisted; i++) {
                free(l->unlisted[i]);
                free(l->unlisted_why[i]);
        }
        free(l->unlisted);
        free(l->unlisted_why);
        free(l->unlisted_class);
        free(l->auth_message);
        *l = (LiveListing) {};
}
