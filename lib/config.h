/* The configuration file (YAML, default /etc/notebookd/notebookd.yaml) and its
 * defaults. Command-line options override file values; main applies them after
 * config_load(). Unknown keys and bad values are diagnostics with FILE:LINE:COLUMN. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "manifest.h"
#include "yamltree.h"

#define CONFIG_DEFAULT_PATH "/etc/notebookd/notebookd.yaml"
#define CONFIG_DEFAULT_MANIFESTS "/etc/notebookd/manifests"
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/notebookd"
#define CONFIG_DEFAULT_CONCURRENCY 16
#define CONFIG_MAX_CONCURRENCY 256
#define CONFIG_DEFAULT_RESYNC_INTERVAL_MS (10 * 60 * 1000)
#define CONFIG_DEFAULT_REQUEST_TIMEOUT_MS (30 * 1000)
#define CONFIG_DEFAULT_CONNECT_TIMEOUT_MS (10 * 1000)
/* Five bad signatures in a row lock an AK for 5 minutes: one try every 6 minutes
 * can never lock it. */
#define CONFIG_DEFAULT_AUTH_RETRY_INTERVAL_MS (6 * 60 * 1000)
/* Long enough to answer "what happened to that notebook last month" from `status`. */
#define CONFIG_DEFAULT_STATE_RETENTION_MS (30 * 24 * 3600 * 1000LL)

/* prune: a manifest absent this long first (a half-finished checkout, a rename that
 * passes through "absent", never deletes anything), and at most this many deletions a
 * pass (a pass that would delete more deletes none). */
#define CONFIG_DEFAULT_PRUNE_GRACE_MS (10 * 60 * 1000)
#define CONFIG_DEFAULT_PRUNE_MAX_PER_PASS 5

/* An owned list of strings from the config file. */
typedef struct ConfigList {
        char **items;
        size_t n;
} ConfigList;

/* One team's share of the tree and of the account (tenants:, lib/tenant.c). Every list
 * empty means "any"; flavors and profiles empty fall back to the config's own. */
typedef struct Tenant {
        char *name;              /* path without its trailing '/': the journal's TENANT= */
        char *path;              /* "vision/": its manifests, relative to the manifests directory */
        char *name_prefix;       /* NULL: any name (and it owns none against another tenant) */
        ConfigList workspaces;   /* workspace ids a manifest may name */
        ConfigList obs_paths;    /* prefixes an OBS path must start with */
        ConfigList flavors;      /* fnmatch(3) patterns */
        ConfigList profiles;
        unsigned max_instances;  /* 0: no limit */
        unsigned line, column;   /* where it is defined in the config file */
} Tenant;

typedef struct TenantList {
        Tenant *items;
        size_t n;
} TenantList;

typedef struct Config {
        char *file;              /* where it was read from; NULL = defaults only */

        char *endpoint;          /* e.g. https://modelarts.cn-north-4.myhuaweicloud.com */
        char *region;            /* derives endpoint when endpoint is absent */
        char *project_id;        /* 32 hex digits */
        char *manifests;         /* directory of manifests */
        char *state_dir;         /* SQLite state lives here */
        unsigned concurrency;    /* requests in flight at most */
        int64_t resync_interval_ms;
        int64_t request_timeout_ms;
        int64_t connect_timeout_ms;
        int64_t auth_retry_interval_ms;  /* run: after an authentication failure, try again */
        int64_t state_retention_ms;      /* prune resolved intents and gone records this old */
        char *ca_file;           /* extra CA bundle; TLS verification is always on */
        /* proxy: http://[USER:PASSWORD@]HOST:PORT for every request, instead of what
         * libcurl reads from https_proxy/HTTPS_PROXY; no_proxy: the hosts that go direct,
         * comma-separated (instead of no_proxy/NO_PROXY). Loopback always goes direct
         * (lib/http.c). proxy may hold a password: never log or print it whole. */
        char *proxy;
        char *no_proxy;
        char *metrics_file;      /* Prometheus text exposition, rewritten atomically; NULL: none */

        /* local enforcement: fnmatch(3) patterns a manifest's profile_id / flavor must
         * match (n = 0: not set, any value the cloud takes) */
        ConfigList profiles;
        ConfigList flavors;
        /* tenants: when set, each manifest belongs to the tenant whose path holds it */
        TenantList tenants;
        /* prune: delete instances notebookd created whose manifest is gone (off by
         * default; the guards are in lib/prune.h) */
        bool prune;
        bool prune_adopted;      /* ... adopted ones too */
        int64_t prune_grace_ms;
        unsigned prune_max_per_pass;

        /* authentication: first match wins: $CREDENTIALS_DIRECTORY, these files, env */
        char *ak_file;
        char *sk_file;
        char *security_token_file;
        char *token_file;        /* a static IAM token (X-Auth-Token) */
        char *iam_endpoint;      /* password flow: https://iam.{region}.myhuaweicloud.com */
        char *iam_user;
        char *iam_domain;
        char *password_file;

        /* `credentials: metadata`: temporary keys from the ECS metadata service at
         * metadata_endpoint (NULL: http://169.254.169.254), lib/metadata.h */
        char *credentials;        /* "metadata" or NULL (the sources above) */
        char *metadata_endpoint;
} Config;

/* Fill in the defaults (state_dir honours $STATE_DIRECTORY). */
int config_init(Config *c);

/* Read path over the values already in c. A missing file is -ENOENT (main decides
 * whether that matters: the default path may be absent). Problems in the file are
 * diagnostics in *diags and the call returns -EINVAL; c is then unchanged. */
int config_load(Config *c, const char *path, Diags *diags);

/* The endpoint to use: c->endpoint, else derived from region (ap-southeast-1 uses
 * the .myhuaweicloud.cn domain), else NULL. Caller frees. */
char *config_effective_endpoint(const Config *c);

void config_done(Config *c);

/* The manifest policy this config sets (profiles:, flavors:), borrowing c's lists: valid
 * while c is. */
ManifestPolicy config_manifest_policy(const Config *c);

/* A project ID is 32 hexadecimal digits (the path segment every call carries). */
bool config_valid_project_id(const char *s);

/* ---- tenants (lib/tenant.c) ---- */

/* Parse the value of tenants: (a list of mappings) into *ret. Every problem is a
 * diagnostic at its FILE:LINE:COLUMN and the call returns -EINVAL; -ENOMEM. */
int tenants_parse(const char *file, const YamlNode *value, TenantList *ret, Diags *diags);
void tenant_list_done(TenantList *l);
int tenant_list_copy(const TenantList *from, TenantList *ret);
bool tenant_list_equal(const TenantList *a, const TenantList *b);
/* The tenant whose path holds relpath (a path relative to the manifests directory; the
 * longest path wins), or NULL. */
const Tenant *tenant_for_path(const TenantList *l, const char *relpath);
/* The tenant that owns a name: the longest name_prefix it starts with, or NULL. */
const Tenant *tenant_owning_name(const TenantList *l, const char *name);
/* A tenant by name, or NULL. */
const Tenant *tenant_find(const TenantList *l, const char *name);
