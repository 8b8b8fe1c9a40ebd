#include "setup.h"

#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "messages.h"
#include "util.h"

static int config_error(int r, const char *message) {
        log_fields_errno(LOG_ERR, r, MESSAGE_CONFIG_INVALID, NULL, "%s", message);
        return r;
}

int backend_open_api(Backend *b, sd_event *event, const Config *config) {
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
                .proxy = config->proxy,
                .no_proxy = config->no_proxy,
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
        return 0;
}

int backend_open(Backend *b, sd_event *event, const Config *config) {
        _cleanup_free_ char *error = NULL;
        int r = backend_open_api(b, event, config);
        if (r < 0)
                return r;
        r = store_open(config->state_dir, STORE_READ_WRITE, &b->store, &error);
        if (r < 0) {
                /* Busy (another process mid-write), full or failing storage: a later start
                 * may well succeed, so say so and let the caller exit EXIT_TEMPFAIL. */
                bool temporary = r == -EBUSY || r == -EAGAIN || r == -ENOSPC || r == -EDQUOT || r == -EIO;
                log_fields_errno(LOG_ERR, r, MESSAGE_STATE_ERROR, LOG_FIELDS({ "STATE_DIRECTORY", config->state_dir }),
                                 "State: %s%s", error ? error : strerror(-r),
                                 temporary ? " (temporary: try again later)" : "");
                backend_close(b);
                return temporary ? -EAGAIN : r;
        }
        return 0;
}

int startup_exit_code(int r) {
        return r == -EAGAIN ? EXIT_TEMPFAIL : EXIT_USAGE;
}

int manifests_dir_check(const char *dir) {
        if (!dir || !dir[0])
                return 0;
        _cleanup_free_ char *p = strdup(dir);
        if (!p)
                return -ENOMEM;
        /* The first directory on the way that denies us: search (x) on each one above,
         * read and search (r-x) on the manifests directory itself. */
        const char *denied = NULL, *need = NULL;
        for (char *s = p + 1;; s++) {
                bool last = *s == 0;
                if (!last && *s != '/')
                        continue;
                *s = 0;
                int mode = last ? R_OK | X_OK : X_OK;
                if (faccessat(AT_FDCWD, p[0] ? p : "/", mode, AT_EACCESS) < 0) {
                        if (errno != EACCES)
                                return 0; /* missing, not a directory...: the scan says so */
                        denied = p;
                        need = last ? "read and search (r-x)" : "search (x)";
                        break;
                }
                if (last)
                        return 0;
                *s = '/';
        }
        uid_t uid = geteuid();
        const struct passwd *pw = getpwuid(uid);
        log_fields(LOG_ERR, MESSAGE_MANIFEST_INVALID,
                   LOG_FIELDS({ "CONFIG_FILE", dir }, { "MANIFESTS_DIR", dir }),
                   "Cannot read the manifests directory %s: user %s (uid %u) lacks %s permission on %s. "
                   "The service's user needs r-x on the manifests tree (r on its files) and x on every "
                   "directory above it; home directories are 0700 on Debian 12 and 0750 on Ubuntu 24.04, "
                   "so rather bind the tree to a readable path with "
                   "BindReadOnlyPaths=%s:/etc/notebookd/manifests in a drop-in (systemctl edit notebookd) "
                   "and set manifests: /etc/notebookd/manifests",
                   dir, pw ? pw->pw_name : "?", (unsigned) uid, need, denied, dir);
        return -EACCES;
}

PrunePolicy config_prune_policy(const Config *c) {
        return (PrunePolicy) {
                .enabled = c->prune,
                .adopted = c->prune_adopted,
                .grace_ms = c->prune_grace_ms,
                .max_per_pass = c->prune_max_per_pass,
        };
}

const char *tenant_of_notebook(Engine *e, const TenantList *tenants, const char *name) {
        if (!tenants || tenants->n == 0)
                return NULL;
        const char *t = e ? engine_tenant_of(e, name) : NULL;
        const Tenant *owner = t ? NULL : tenant_owning_name(tenants, name);
        return t ? t : owner ? owner->name : NULL;
}

int engine_apply_tree_problems(Engine *e, const DesiredSet *desired, const TenantList *tenants) {
        _cleanup_(tree_problems_done) TreeProblems tp = {};
        int r = desired_set_tree_problems(desired, tenants, &tp);
        if (r >= 0)
                r = engine_set_tree_problem(e, tp.whole);
        _cleanup_free_ const char **names = r >= 0 ? calloc(tenants->n ?: 1, sizeof(char *)) : NULL;
        if (r >= 0 && !names)
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < tenants->n; i++)
                names[i] = tenants->items[i].name;
        if (r >= 0)
                r = engine_set_tenant_problems(e, names, (const char *const *) tp.of, tenants->n);
        return r;
}

bool backend_equivalent(const Backend *a, const Config *config_a, const Backend *b, const Config *config_b) {
        const Credentials *x = a->credentials, *y = b->credentials;
        return streq_ptr(a->endpoint, b->endpoint) && streq_ptr(a->project_id, b->project_id) &&
               x && y && x->kind == y->kind && streq_ptr(x->ak, y->ak) && streq_ptr(x->sk, y->sk) &&
               streq_ptr(x->security_token, y->security_token) && streq_ptr(x->token, y->token) &&
               streq_ptr(x->password, y->password) && streq_ptr(x->iam_user, y->iam_user) &&
               streq_ptr(x->iam_domain, y->iam_domain) && streq_ptr(x->metadata_endpoint, y->metadata_endpoint) &&
               config_a->concurrency == config_b->concurrency &&
               config_a->connect_timeout_ms == config_b->connect_timeout_ms &&
               config_a->request_timeout_ms == config_b->request_timeout_ms &&
               config_a->auth_retry_interval_ms == config_b->auth_retry_interval_ms &&
               config_a->state_retention_ms == config_b->state_retention_ms &&
               config_a->prune == config_b->prune && config_a->prune_adopted == config_b->prune_adopted &&
               config_a->prune_grace_ms == config_b->prune_grace_ms &&
               config_a->prune_max_per_pass == config_b->prune_max_per_pass &&
               streq_ptr(config_a->ca_file, config_b->ca_file) &&
               streq_ptr(config_a->proxy, config_b->proxy) && streq_ptr(config_a->no_proxy, config_b->no_proxy) &&
               streq_ptr(config_a->iam_endpoint, config_b->iam_endpoint) &&
               streq_ptr(config_a->state_dir, config_b->state_dir);
}

/* mkdir -p, 0700: the lock is taken before the store creates the directory. */
static int mkdir_parents_0700(const char *dir) {
        _cleanup_free_ char *p = strdup(dir);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1;; s++) {
                bool end = *s == '\0';
                if (!end && *s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0700) < 0 && errno != EEXIST)
                        return -errno;
                if (end)
                        return 0;
                *s = '/';
        }
}

int state_dir_lock(const char *state_dir, int *ret_fd) {
        _cleanup_free_ char *path = xasprintf("%s/notebookd.lock", state_dir);
        if (!path)
                return -ENOMEM;
        int r = mkdir_parents_0700(state_dir);
        if (r < 0)
                return log_fields_errno(LOG_ERR, r, MESSAGE_STATE_ERROR, LOG_FIELDS({ "STATE_DIRECTORY", state_dir }),
                                        "Cannot create the state directory %s: %m", state_dir);
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return log_fields_errno(LOG_ERR, errno, MESSAGE_STATE_ERROR, LOG_FIELDS({ "STATE_DIRECTORY", state_dir }),
                                        "Cannot open the lock %s: %m", path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        /* it ends (a `once` from cron), or this start is a mistake: retry */
                        return log_fields_errno(LOG_ERR, EAGAIN, MESSAGE_STATE_ERROR,
                                                LOG_FIELDS({ "STATE_DIRECTORY", state_dir }),
                                                "Another notebookd (run or once) is using the state directory %s",
                                                state_dir);
                return log_fields_errno(LOG_ERR, errno, MESSAGE_STATE_ERROR, LOG_FIELDS({ "STATE_DIRECTORY", state_dir }),
                                        "Cannot lock %s: %m", path);
        }
        *ret_fd = TAKE_FD(fd);
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
