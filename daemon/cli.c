#include "cli.h"

#include <string.h>

#include "util.h"

/* Command-line values win over the file's. */
static int apply_overrides(Config *c, const CliOverrides *o) {
        if ((o->manifests && strdup_replace(&c->manifests, o->manifests) < 0) ||
            (o->state_dir && strdup_replace(&c->state_dir, o->state_dir) < 0) ||
            (o->endpoint && strdup_replace(&c->endpoint, o->endpoint) < 0) ||
            (o->project_id && strdup_replace(&c->project_id, o->project_id) < 0))
                return -ENOMEM;
        return 0;
}

int cli_load_config(const Cli *cli, bool read_file, Config *ret, Diags *diags) {
        Config c = {};
        int r = config_init(&c);
        if (r < 0)
                return r;
        if (read_file) {
                r = config_load(&c, cli->config_path, diags);
                if (r == -ENOENT && !cli->config_explicit)
                        r = 0;
                else if (r == -ENOENT)
                        diag_error(diags, cli->config_path, 0, 0, "config file not found");
                else if (r < 0 && diags->n == 0)
                        diag_error(diags, cli->config_path, 0, 0, "cannot read config: %s", strerror(-r));
        }
        if (r >= 0 && cli->overrides.project_id && !config_valid_project_id(cli->overrides.project_id)) {
                diag_error(diags, "--project-id", 0, 0, "'%s' is not a project ID (32 hexadecimal digits)",
                           cli->overrides.project_id);
                r = -EINVAL;
        }
        if (r >= 0)
                r = apply_overrides(&c, &cli->overrides);
        if (r < 0) {
                config_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}
