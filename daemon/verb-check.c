/* notebookd check [PATH...]: validate manifests offline, like a compiler.
 * Needs no config (main skips the file when paths are named and no -c is given), no
 * state, no network: it is what CI runs on every manifest commit. With -c, the config's
 * profiles:/flavors: lists are enforced as the daemon would. Diagnostics and a one-line summary go to
 * stderr; --json puts one object on stdout instead. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "desired.h"
#include "util.h"

/* A path the user named must exist and be readable: that is a usage/I/O error (exit 2),
 * not a manifest problem. Reported for every bad path, not just the first. */
static bool path_usable(const char *path) {
        struct stat st;
        const char *problem = NULL;
        int fd = -1;

        if (stat(path, &st) < 0)
                problem = strerror(errno);
        else if (S_ISDIR(st.st_mode)) {
                if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
                        problem = strerror(errno);
        } else if (S_ISREG(st.st_mode)) {
                if ((fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC)) < 0)
                        problem = strerror(errno);
        } else
                problem = "not a regular file or directory";
        if (fd >= 0)
                close(fd);
        if (problem)
                fprintf(stderr, "%s: error: cannot read: %s\n", path, problem);
        return !problem;
}

static const char *plural(size_t n) {
        return n == 1 ? "" : "s";
}

static cJSON *json_report(const DesiredSet *set) {
        DesiredStats st;
        desired_set_stats(set, &st);
        const Diags *diags = desired_set_diags(set);
        size_t n_specs;
        const NotebookSpec *const *specs = desired_set_specs(set, &n_specs);

        cJSON *o = cJSON_CreateObject();
        if (!o)
                return NULL;
        cJSON *ds = NULL, *vs = NULL;
        bool ok = cJSON_AddNumberToObject(o, "files", (double) st.n_files) &&
                  cJSON_AddNumberToObject(o, "instances", (double) st.n_documents) &&
                  cJSON_AddNumberToObject(o, "errors", (double) diags->n_errors) &&
                  cJSON_AddNumberToObject(o, "warnings", (double) diags->n_warnings) &&
                  (ds = cJSON_AddArrayToObject(o, "diagnostics")) &&
                  (vs = cJSON_AddArrayToObject(o, "instances_valid"));
        for (size_t i = 0; ok && i < diags->n; i++) {
                const Diag *d = &diags->items[i];
                cJSON *x = cJSON_CreateObject();
                ok = x && cJSON_AddItemToArray(ds, x) &&
                     cJSON_AddStringToObject(x, "file", d->file) &&
                     cJSON_AddNumberToObject(x, "line", d->line) &&
                     cJSON_AddNumberToObject(x, "column", d->column) &&
                     cJSON_AddStringToObject(x, "severity", diag_severity_to_string(d->severity)) &&
                     cJSON_AddStringToObject(x, "message", d->message);
        }
        for (size_t i = 0; ok && i < n_specs; i++) {
                cJSON *x = cJSON_CreateObject();
                ok = x && cJSON_AddItemToArray(vs, x) &&
                     cJSON_AddStringToObject(x, "name", specs[i]->name) &&
                     cJSON_AddStringToObject(x, "file", strempty(specs[i]->file)) &&
                     cJSON_AddNumberToObject(x, "line", specs[i]->name_pos.line ? specs[i]->name_pos.line
                                                                                : specs[i]->doc_pos.line);
        }
        if (!ok) {
                cJSON_Delete(o);
                return NULL;
        }
        return o;
}

int verb_check(Cli *cli) {
        char *fallback[1] = { cli->config.manifests };
        char **paths = cli->args;
        size_t n_paths = cli->n_args > 0 ? (size_t) cli->n_args : 0;
        if (n_paths == 0) {
                if (!fallback[0]) {
                        fputs("notebookd: check: no manifests directory configured; name one\n", stderr);
                        return EXIT_USAGE;
                }
                paths = fallback;
                n_paths = 1;
        }

        bool usable = true;
        for (size_t i = 0; i < n_paths; i++)
                usable = path_usable(paths[i]) && usable;
        if (!usable)
                return EXIT_USAGE;

        /* the host config's profiles:/flavors: apply when it was read: with -c (CI checks
         * against the host's rules), or without paths (the configured directory) */
        ManifestPolicy policy = config_manifest_policy(&cli->config);
        _cleanup_(desired_set_freep) DesiredSet *set = NULL;
        int r = desired_set_new(paths[0], paths[0], &policy, &set);
        for (size_t i = 1; r >= 0 && i < n_paths; i++)
                r = desired_set_add_root(set, paths[i], paths[i]);
        if (r >= 0)
                r = desired_set_rescan(set);
        if (r < 0) {
                /* only a race with the checks above, or memory, gets here */
                fprintf(stderr, "notebookd: check: cannot read the manifests: %s\n", strerror(-r));
                return EXIT_USAGE;
        }

        const Diags *diags = desired_set_diags(set);
        if (cli->json) {
                cJSON *o = json_report(set);
                char *text = o ? cJSON_PrintUnformatted(o) : NULL;
                cJSON_Delete(o);
                if (!text) {
                        fputs("notebookd: check: out of memory\n", stderr);
                        return EXIT_USAGE;
                }
                puts(text);
                cJSON_free(text);
                if (fflush(stdout) != 0 || ferror(stdout)) {
                        fprintf(stderr, "notebookd: check: cannot write the report: %s\n", strerror(errno));
                        return EXIT_USAGE;
                }
        } else {
                DesiredStats st;
                desired_set_stats(set, &st);
                diags_print(diags, stderr);
                fprintf(stderr, "%zu file%s, %zu instance%s, %zu error%s, %zu warning%s\n",
                        st.n_files, plural(st.n_files), st.n_documents, plural(st.n_documents),
                        diags->n_errors, plural(diags->n_errors), diags->n_warnings, plural(diags->n_warnings));
        }
        return diags->n_errors > 0 ? EXIT_INVALID : EXIT_OK;
}
