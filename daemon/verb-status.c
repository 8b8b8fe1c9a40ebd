/* notebookd status: the recorded instances, read-only (fine while a daemon writes).
 * What the store knows, not what the cloud says right now: `once` or the daemon
 * refresh it. A state directory without a database is "nothing recorded yet". */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "instance.h"
#include "store.h"
#include "util.h"

static bool add_str(cJSON *o, const char *k, const char *v) {
        return v ? cJSON_AddStringToObject(o, k, v) != NULL : cJSON_AddNullToObject(o, k) != NULL;
}

static bool add_num(cJSON *o, const char *k, int64_t v) {
        return cJSON_AddNumberToObject(o, k, (double) v) != NULL;
}

static const char *record_tenant(const InstanceRecord *r, const TenantList *tenants);

static int print_json(const char *path, const InstanceRecord *recs, size_t n, const CreateIntent *intents,
                      size_t n_intents, const TenantList *tenants, int64_t now_ms) {
        cJSON *o = cJSON_CreateObject(), *arr = NULL, *iarr = NULL;
        bool ok = o && add_str(o, "database", path) && (arr = cJSON_AddArrayToObject(o, "instances")) &&
                  (iarr = cJSON_AddArrayToObject(o, "open_intents"));
        for (size_t i = 0; ok && i < n; i++) {
                const InstanceRecord *r = &recs[i];
                cJSON *x = cJSON_CreateObject();
                ok = x && cJSON_AddItemToArray(arr, x) && add_str(x, "name", r->name) &&
                     add_str(x, "instance_id", r->instance_id) && add_str(x, "workspace_id", r->workspace_id) &&
                     add_str(x, "status", r->status) &&
                     add_str(x, "result", r->result) && add_str(x, "spec_hash", r->spec_hash) &&
                     add_num(x, "http_status", r->http_status) && add_str(x, "error_code", r->error_code) &&
                     add_str(x, "error_msg", r->error_msg) && add_str(x, "request_id", r->request_id) &&
                     add_num(x, "attempts", r->attempts) && add_num(x, "result_at_ms", r->result_at_ms) &&
                     add_num(x, "next_attempt_at_ms", r->next_attempt_at_ms) &&
                     add_num(x, "created_at_ms", r->created_at_ms) && add_num(x, "updated_at_ms", r->updated_at_ms) &&
                     add_num(x, "age_ms", r->created_at_ms > 0 ? MAX(now_ms - r->created_at_ms, 0) : 0) &&
                     cJSON_AddBoolToObject(x, "created_by_us", r->created_by_us) &&
                     add_num(x, "undesired_since_ms", r->undesired_since_ms) &&
                     add_str(x, "tenant", record_tenant(r, tenants)) &&
                     add_str(x, "desired_state", r->desired_state);
        }
        for (size_t i = 0; ok && i < n_intents; i++) {
                const CreateIntent *c = &intents[i];
                cJSON *x = cJSON_CreateObject();
                ok = x && cJSON_AddItemToArray(iarr, x) && add_num(x, "id", c->id) && add_str(x, "name", c->name) &&
                     add_str(x, "spec_hash", c->spec_hash) && add_num(x, "created_at_ms", c->created_at_ms);
        }
        char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!text)
                return -ENOMEM;
        puts(text);
        cJSON_free(text);
        return 0;
}

typedef struct Row {
        char *cell[6];
} Row;

/* The tenant of a record: its manifest's when last desired, else the one owning its
 * prefix; NULL without tenants. */
static const char *record_tenant(const InstanceRecord *r, const TenantList *tenants) {
        if (tenants->n == 0)
                return NULL;
        if (r->tenant)
                return r->tenant;
        const Tenant *t = tenant_owning_name(tenants, r->name);
        return t ? t->name : NULL;
}

static void rows_free(Row *rows, size_t n) {
        for (size_t i = 0; rows && i < n; i++)
                for (size_t c = 0; c < ELEMENTSOF(rows[i].cell); c++)
                        free(rows[i].cell[c]);
        free(rows);
}

static int print_table(const InstanceRecord *recs, size_t n, const CreateIntent *intents, size_t n_intents,
                       const TenantList *tenants, int64_t now_ms) {
        static const char *const header[6] = { "NAME", "INSTANCE-ID", "STATUS", "RESULT", "AGE", "TENANT" };
        size_t width[6];
        for (size_t c = 0; c < 6; c++)
                width[c] = strlen(header[c]);
        Row *rows = calloc(n ?: 1, sizeof(*rows));
        if (!rows)
                return -ENOMEM;
        size_t by_class[STATUS_CLASS_UNKNOWN + 1] = {};
        for (size_t i = 0; i < n; i++) {
                const InstanceRecord *r = &recs[i];
                char age[32] = "-";
                if (r->created_at_ms > 0)
                        format_age(now_ms - r->created_at_ms, age);
                /* RESULT carries the API's code when there is one: what a human searches for. */
                /* ... and says when the name left the manifests (prune's grace counts from it) */
                char gone[32] = "";
                if (r->undesired_since_ms > 0)
                        format_age(now_ms - r->undesired_since_ms, gone);
                _cleanup_free_ char *code = r->error_code ? xasprintf(" (%s)", r->error_code) : NULL;
                _cleanup_free_ char *result = xasprintf("%s%s%s%s", strempty(r->result), strempty(code),
                                                        *gone ? ", not in the manifests for " : "", gone);
                rows[i].cell[0] = terminal_safe(r->name);
                rows[i].cell[1] = terminal_safe(r->instance_id);
                /* desired against actual: the manifest's state: where the status is not it */
                InstanceStatusClass cls = instance_status_class(r->status);
                bool differs = r->desired_state && r->instance_id &&
                               !(streq(r->desired_state, "running") ? cls == STATUS_CLASS_RUNNING
                                                                    : cls == STATUS_CLASS_STOPPED);
                _cleanup_free_ char *status = differs ? xasprintf("%s (wants %s)", strempty(r->status), r->desired_state)
                                                      : xstrdup(r->status);
                rows[i].cell[2] = terminal_safe(status);
                rows[i].cell[3] = terminal_safe(result);
                rows[i].cell[4] = strdup(age);
                rows[i].cell[5] = terminal_safe(record_tenant(r, tenants) ?: "-");
                for (size_t c = 0; c < 6; c++) {
                        if (!rows[i].cell[c]) {
                                rows_free(rows, n);
                                return -ENOMEM;
                        }
                        width[c] = MAX(width[c], strlen(rows[i].cell[c]));
                }
                if (r->instance_id)
                        by_class[instance_status_class(r->status)]++;
        }
        /* TENANT leads, where tenants are set */
        int wt = tenants->n > 0 ? (int) width[5] : 0;
        const char *sep_t = tenants->n > 0 ? "  " : "";
        if (n > 0) {
                printf("%-*s%s%-*s  %-*s  %-*s  %-*s  %s\n", wt, wt ? header[5] : "", sep_t, (int) width[0], header[0],
                       (int) width[1], header[1], (int) width[2], header[2], (int) width[3], header[3], header[4]);
                for (size_t i = 0; i < n; i++)
                        printf("%-*s%s%-*s  %-*s  %-*s  %-*s  %s\n", wt, wt ? rows[i].cell[5] : "", sep_t,
                               (int) width[0], rows[i].cell[0], (int) width[1], rows[i].cell[1], (int) width[2],
                               rows[i].cell[2], (int) width[3], rows[i].cell[3], rows[i].cell[4]);
        }
        rows_free(rows, n);

        for (size_t i = 0; i < n_intents; i++) {
                char age[32];
                format_age(now_ms - intents[i].created_at_ms, age);
                _cleanup_free_ char *name = terminal_safe(intents[i].name);
                if (!name)
                        return -ENOMEM;
                printf("unresolved create: %s (intent #%" PRId64 ", %s ago): the next pass lists before retrying\n",
                       name, intents[i].id, age);
        }

        /* "4 instances recorded: 2 running, 1 pending, 1 without an instance; 1 unresolved create" */
        static const struct {
                InstanceStatusClass class;
                const char *what;
        } classes[] = {
                { STATUS_CLASS_RUNNING, "running" }, { STATUS_CLASS_PENDING, "pending" },
                { STATUS_CLASS_STOPPED, "stopped" }, { STATUS_CLASS_FAILED, "failed" },
                { STATUS_CLASS_GONE, "deleted" },    { STATUS_CLASS_UNKNOWN, "status unknown" },
        };
        printf("%zu instance%s recorded", n, n == 1 ? "" : "s");
        const char *sep = ": ";
        size_t with_id = 0;
        for (size_t i = 0; i < ELEMENTSOF(classes); i++) {
                with_id += by_class[classes[i].class];
                if (by_class[classes[i].class]) {
                        printf("%s%zu %s", sep, by_class[classes[i].class], classes[i].what);
                        sep = ", ";
                }
        }
        if (n > with_id)
                printf("%s%zu not created", sep, n - with_id);
        if (n_intents)
                printf("; %zu unresolved create%s", n_intents, n_intents == 1 ? "" : "s");
        putchar('\n');
        return 0;
}

static int cmp_record_name(const void *a, const void *b) {
        return strcmp(((const InstanceRecord *) a)->name, ((const InstanceRecord *) b)->name);
}

int verb_status(Cli *cli) {
        const char *state_dir = cli->config.state_dir;
        if (!state_dir) {
                fputs("notebookd: status: no state directory configured\n", stderr);
                return EXIT_USAGE;
        }
        _cleanup_(store_freep) Store *store = NULL;
        _cleanup_free_ char *err = NULL;
        InstanceRecord *records = NULL;
        CreateIntent *intents = NULL;
        size_t n = 0, n_intents = 0, n_intents_shown;
        if (cli->tenant && !tenant_find(&cli->config.tenants, cli->tenant)) {
                fprintf(stderr, "notebookd: status: --tenant %s: no such tenant in %s\n", cli->tenant,
                        cli->config.file ? cli->config.file : "the configuration (no tenants: set)");
                return EXIT_USAGE;
        }
        int r = store_open(state_dir, STORE_READ_ONLY, &store, &err);
        if (r < 0 && r != -ENOENT) {
                fprintf(stderr, "notebookd: status: %s\n", err ? err : strerror(-r));
                return EXIT_USAGE;
        }
        if (store && ((r = store_list_instances(store, &records, &n)) < 0 ||
                      (r = store_list_open_intents(store, &intents, &n_intents)) < 0)) {
                fprintf(stderr, "notebookd: status: %s: cannot read recorded state: %s\n", store_path(store),
                        r == -ENOMEM ? strerror(ENOMEM) : store_error_message(store));
                instance_records_free(records, n);
                return EXIT_USAGE;
        }

        n_intents_shown = n_intents;
        int64_t now_ms = now_realtime_ms();
        const TenantList *tenants = &cli->config.tenants;
        size_t n_all = n;
        if (cli->tenant) {   /* only that tenant's records (and its names' open intents) */
                size_t kept = 0, kept_intents = 0;
                /* an intent's tenant is its name's record's (records are sorted by name:
                 * look them up before the records are filtered) */
                for (size_t i = 0; i < n_intents; i++) {
                        InstanceRecord key = { .name = intents[i].name };
                        const InstanceRecord *rec = bsearch(&key, records, n, sizeof(*records), cmp_record_name);
                        const Tenant *o = rec ? NULL : tenant_owning_name(tenants, intents[i].name);
                        const char *t = rec ? record_tenant(rec, tenants) : o ? o->name : NULL;
                        if (streq_ptr(t, cli->tenant)) {
                                CreateIntent x = intents[kept_intents];
                                intents[kept_intents++] = intents[i];
                                intents[i] = x;
                        }
                }
                for (size_t i = 0; i < n; i++)
                        if (streq_ptr(record_tenant(&records[i], tenants), cli->tenant)) {
                                InstanceRecord t = records[kept];
                                records[kept++] = records[i];
                                records[i] = t;
                        }
                n = kept;
                n_intents_shown = kept_intents;
        }
        _cleanup_free_ char *path = store ? NULL : xasprintf("%s/%s", state_dir, STORE_FILE_NAME);
        if (cli->json)
                r = print_json(store ? store_path(store) : path, records, n, intents, n_intents_shown, tenants, now_ms);
        else
                r = print_table(records, n, intents, n_intents_shown, tenants, now_ms);
        n = n_all;
        instance_records_free(records, n);
        create_intents_free(intents, n_intents);
        if (r < 0) {
                fprintf(stderr, "notebookd: status: %s\n", strerror(-r));
                return EXIT_USAGE;
        }
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "notebookd: status: cannot write: %s\n", strerror(errno));
                return EXIT_USAGE;
        }
        return EXIT_OK;
}
