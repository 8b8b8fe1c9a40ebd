#include "setup.h"

#include <string.h>

#include "log.h"
#include "messages.h"
#include "util.h"

static int config_error(int r, const char *message) {
        log_fields_errno(LOG_ERR, r, MESSAGE_CONFIG_INVALID, NULL, "%s", message);
        return r;
}

int backend_open(Backend *b, sd_event *event, const Config *config) {
        *b = (Backend) {};
        _cleanup_free_ char *error = NULL;
        int r;

        b->endpoint = config_effective_endpoint(config);
        if (!b->endpoint) {
                backend_close(b);
                return config_error(-EINVAL, "No ModelArts endpoint: set endpoint: or region: in the config, or pass --endpoint");
        }
        r = credentials_load(config, &b->credentials, &error);
        if (r < 0) {
                _cleanup_free_ char *m = xasprintf("Credentials: %s", error ? error : strerror(-r));
                config_error(r, m ? m : "Credentials unusable");
                backend_close(b);
                return r;
        }
        const char *project = config->project_id ? config->project_id : b->credentials->project_id;
        if (!project) {
                backend_close(b);
                return config_error(-EINVAL,
                                    "No project ID: set project_id: in the config, pass --project-id, or set HUAWEICLOUD_SDK_PROJECT_ID");
        }
        b->project_id = strdup(project);
        if (!b->project_id) {
                backend_close(b);
                return -ENOMEM;
        }

        ApiClientOptions o = {
                .endpoint = b->endpoint,
                .project_id = b->project_id,
                .credentials = b->credentials,
                .concurrency = config->concurrency,
                .connect_timeout_ms = config->connect_timeout_ms,
                .request_timeout_ms = config->request_timeout_ms,
                .ca_file = config->ca_file,
                .iam_endpoint = config->iam_endpoint,
        };
        free(error);
        error = NULL;
        r = api_client_new(event, &o, &b->api, &error);
        if (r < 0) {
                _cleanup_free_ char *m = xasprintf("API client: %s", error ? error : strerror(-r));
                config_error(r, m ? m : "API client unusable");
                backend_close(b);
                return r;
        }

        r = store_open(config->state_dir, STORE_READ_WRITE, &b->store, &error);
        if (r < 0) {
                log_fields_errno(LOG_ERR, r, MESSAGE_STATE_ERROR, LOG_FIELDS({ "STATE_DIRECTORY", config->state_dir }),
                                 "State: %s", error ? error : strerror(-r));
                backend_close(b);
                return r;
        }
        return 0;
}

void backend_close(Backend *b) {
        b->api = api_client_free(b->api);
        b->store = store_free(b->store);
        b->credentials = credentials_free(b->credentials);
        free(b->endpoint);
        free(b->project_id);
        *b = (Backend) {};
}
