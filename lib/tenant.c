/* tenants: in the host config, outside the repository the teams commit to: which part
 * of the tree is whose, and what each team's manifests may ask for. Parsing (every
 * problem at its FILE:LINE:COLUMN) and the two lookups the rest of notebookd needs: the
 * tenant of a manifest (by its path) and the tenant that owns a name (by its prefix). */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "limits.h"
#include "util.h"

static void strlist_done(ConfigList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->items[i]);
        free(l->items);
        *l = (ConfigList) {};
}

static void tenant_done(Tenant *t) {
        free(t->name);
        free(t->path);
        free(t->name_prefix);
        strlist_done(&t->workspaces);
        strlist_done(&t->obs_paths);
        strlist_done(&t->flavors);
        strlist_done(&t->profiles);
        *t = (Tenant) {};
}

void tenant_list_done(TenantList *l) {
        for (size_t i = 0; i < l->n; i++)
                tenant_done(&l->items[i]);
        free(l->items);
        *l = (TenantList) {};
}

static int strlist_copy(const ConfigList *from, ConfigList *to) {
        *to = (ConfigList) {};
        if (from->n == 0)
                return 0;
        to->items = calloc(from->n, sizeof(char *));
        if (!to->items)
                return -ENOMEM;
        for (; to->n < from->n; to->n++)
                if (!(to->items[to->n] = strdup(from->items[to->n])))
                        return -ENOMEM;
        return 0;
}

int tenant_list_copy(const TenantList *from, TenantList *ret) {
        TenantList l = {};
        if (from->n > 0 && !(l.items = calloc(from->n, sizeof(Tenant))))
                return -ENOMEM;
        for (; l.n < from->n; l.n++) {
                const Tenant *f = &from->items[l.n];
                Tenant *t = &l.items[l.n];
                t->max_instances = f->max_instances;
                t->line = f->line;
                t->column = f->column;
                if (!(t->name = strdup(f->name)) || !(t->path = strdup(f->path)) ||
                    (f->name_prefix && !(t->name_prefix = strdup(f->name_prefix))) ||
                    strlist_copy(&f->workspaces, &t->workspaces) < 0 ||
                    strlist_copy(&f->obs_paths, &t->obs_paths) < 0 || strlist_copy(&f->flavors, &t->flavors) < 0 ||
                    strlist_copy(&f->profiles, &t->profiles) < 0) {
                        l.n++;
                        tenant_list_done(&l);
                        return -ENOMEM;
                }
        }
        *ret = l;
        return 0;
}

static bool strlist_equal(const ConfigList *a, const ConfigList *b) {
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (!streq(a->items[i], b->items[i]))
                        return false;
        return true;
}

bool tenant_list_equal(const TenantList *a, const TenantList *b) {
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++) {
                const Tenant *x = &a->items[i], *y = &b->items[i];
                /* the position is in the messages too */
                if (!streq(x->path, y->path) || !streq_ptr(x->name_prefix, y->name_prefix) ||
                    x->max_instances != y->max_instances || x->line != y->line || x->column != y->column ||
                    !strlist_equal(&x->workspaces, &y->workspaces) || !strlist_equal(&x->obs_paths, &y->obs_paths) ||
                    !strlist_equal(&x->flavors, &y->flavors) || !strlist_equal(&x->profiles, &y->profiles))
                        return false;
        }
        return true;
}

static bool has_prefix(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

const Tenant *tenant_for_path(const TenantList *l, const char *relpath) {
        const Tenant *best = NULL;
        for (size_t i = 0; i < l->n; i++)
                if (has_prefix(relpath, l->items[i].path) &&
                    (!best || strlen(l->items[i].path) > strlen(best->path)))
                        best = &l->items[i];
        return best;
}

const Tenant *tenant_owning_name(const TenantList *l, const char *name) {
        const Tenant *best = NULL;
        for (size_t i = 0; i < l->n; i++)
                if (l->items[i].name_prefix && has_prefix(name, l->items[i].name_prefix) &&
                    (!best || strlen(l->items[i].name_prefix) > strlen(best->name_prefix)))
                        best = &l->items[i];
        return best;
}

const Tenant *tenant_find(const TenantList *l, const char *name) {
        for (size_t i = 0; l && name && i < l->n; i++)
                if (streq(l->items[i].name, name))
                        return &l->items[i];
        return NULL;
}

/* ---- parsing ---- */

typedef struct Parser {
        const char *file;
        Diags *diags;
        bool bad;
        int oom;
} Parser;

static void perr(Parser *p, const YamlNode *n, const char *fmt, ...) _printf_(3, 4);
static void perr(Parser *p, const YamlNode *n, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *m = xvasprintf(fmt, ap);
        va_end(ap);
        p->bad = true;
        if (!m || diag_error(p->diags, p->file, n->line, n->column, "%s", m) < 0)
                p->oom = -ENOMEM;
}

/* A non-empty string scalar without control characters, or NULL (reported). */
static const char *get_text(Parser *p, const YamlNode *n, const char *what) {
        char q[YAML_QUOTE_BUF];
        if (!yaml_node_is_scalar(n) || n->kind == YAML_KIND_NULL) {
                perr(p, n, "tenant '%s' must be a string, got %s", what, yaml_kind_to_string(n->kind));
                return NULL;
        }
        if (n->length == 0 || n->length > CONFIG_MAX_PATTERN_LENGTH) {
                perr(p, n, "tenant '%s' must be 1 to %d bytes, got %zu", what, CONFIG_MAX_PATTERN_LENGTH, n->length);
                return NULL;
        }
        for (size_t b = 0; b < n->length; b++)
                if ((unsigned char) n->scalar[b] < 0x20 || n->scalar[b] == 0x7f) {
                        perr(p, n, "tenant '%s' %s contains a control character", what,
                             yaml_quote(q, sizeof q, n->scalar, n->length));
                        return NULL;
                }
        return n->scalar;
}

static void get_list(Parser *p, const YamlNode *v, const char *what, ConfigList *ret) {
        if (v->kind != YAML_KIND_SEQUENCE || v->n_items == 0) {
                perr(p, v, "tenant '%s' must be a non-empty list of strings, got %s", what,
                     v->kind == YAML_KIND_SEQUENCE ? "an empty list" : yaml_kind_to_string(v->kind));
                return;
        }
        strlist_done(ret);
        ret->items = calloc(v->n_items, sizeof(char *));
        if (!ret->items) {
                p->oom = -ENOMEM;
                return;
        }
        for (size_t i = 0; i < v->n_items; i++) {
                const char *s = get_text(p, v->items[i], what);
                if (s && !(ret->items[ret->n++] = strdup(s)))
                        p->oom = -ENOMEM;
        }
}

/* path: relative to the manifests directory, no "." or ".." component, kept with one
 * trailing '/' so that "vision/" never holds "vision2/x.yaml". */
static char *normalize_path(Parser *p, const YamlNode *n) {
        char q[YAML_QUOTE_BUF];
        const char *s = get_text(p, n, "path");
        if (!s)
                return NULL;
        const char *why = NULL;
        if (s[0] == '/')
                why = "must be relative to the manifests directory";
        for (const char *c = s; !why && *c;) {
                size_t len = strcspn(c, "/");
                if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
                        why = "must not have a '.' or '..' component";
                else if (len == 0 && c != s)
                        why = "must not have an empty component ('//')";
                c += len;
                c += *c == '/';
        }
        if (why) {
                perr(p, n, "tenant path %s %s", yaml_quote(q, sizeof q, s, strlen(s)), why);
                return NULL;
        }
        size_t len = strlen(s);
        char *r = s[len - 1] == '/' ? strdup(s) : xasprintf("%s/", s);
        if (!r)
                p->oom = -ENOMEM;
        return r;
}

static void parse_prefix(Parser *p, const YamlNode *v, Tenant *t) {
        char q[YAML_QUOTE_BUF];
        const char *s = get_text(p, v, "name_prefix");
        if (!s)
                return;
        if (strlen(s) >= NAME_MAX_LENGTH ||
            strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != strlen(s)) {
                perr(p, v, "tenant name_prefix %s must be shorter than a name (%d) and only of A-Z a-z 0-9 - _",
                     yaml_quote(q, sizeof q, s, strlen(s)), NAME_MAX_LENGTH);
                return;
        }
        if (!(t->name_prefix = strdup(s)))
                p->oom = -ENOMEM;
}

static void parse_tenant(Parser *p, const YamlNode *m, Tenant *t) {
        static const char *const keys[] = { "path",     "name_prefix", "workspaces",   "obs_paths",
                                            "flavors",  "profiles",    "max_instances" };
        char q[YAML_QUOTE_BUF];
        t->line = m->line;
        t->column = m->column;
        if (m->kind != YAML_KIND_MAPPING) {
                perr(p, m, "each tenant must be a mapping (path:, name_prefix:, ...), got %s",
                     yaml_kind_to_string(m->kind));
                return;
        }
        for (size_t i = 0; i < m->n_pairs; i++) {
                const YamlNode *k = m->pairs[i].key, *v = m->pairs[i].value;
                if (streq(k->scalar, "path"))
                        t->path = normalize_path(p, v);
                else if (streq(k->scalar, "name_prefix"))
                        parse_prefix(p, v, t);
                else if (streq(k->scalar, "workspaces"))
                        get_list(p, v, "workspaces", &t->workspaces);
                else if (streq(k->scalar, "obs_paths"))
                        get_list(p, v, "obs_paths", &t->obs_paths);
                else if (streq(k->scalar, "flavors"))
                        get_list(p, v, "flavors", &t->flavors);
                else if (streq(k->scalar, "profiles"))
                        get_list(p, v, "profiles", &t->profiles);
                else if (streq(k->scalar, "max_instances")) {
                        int64_t n;
                        if (yaml_node_int64(v, 1, CONFIG_MAX_TENANT_INSTANCES, &n) < 0)
                                perr(p, v, "tenant max_instances must be an integer from 1 to %d",
                                     CONFIG_MAX_TENANT_INSTANCES);
                        else
                                t->max_instances = (unsigned) n;
                } else {
                        const char *hint = closest_match(k->scalar, keys, ELEMENTSOF(keys));
                        perr(p, k, "unknown tenant key %s%s%s%s", yaml_quote(q, sizeof q, k->scalar, k->length),
                             hint ? " (did you mean '" : "", strempty(hint), hint ? "'?)" : "");
                }
        }
        if (!yaml_mapping_get(m, "path")) {
                perr(p, m, "a tenant needs 'path': the directory of its manifests");
                return;
        }
        if (t->path && !(t->name = strndup(t->path, strlen(t->path) - 1)))
                p->oom = -ENOMEM;
}

int tenants_parse(const char *file, const YamlNode *value, TenantList *ret, Diags *diags) {
        Parser p = { .file = file, .diags = diags };
        if (value->kind != YAML_KIND_SEQUENCE || value->n_items == 0) {
                perr(&p, value, "'tenants' must be a non-empty list of tenants, got %s",
                     value->kind == YAML_KIND_SEQUENCE ? "an empty list" : yaml_kind_to_string(value->kind));
                return p.oom ?: -EINVAL;
        }
        if (value->n_items > CONFIG_MAX_TENANTS) {
                perr(&p, value, "at most %d tenants, got %zu", CONFIG_MAX_TENANTS, value->n_items);
                return p.oom ?: -EINVAL;
        }
        TenantList l = { .items = calloc(value->n_items, sizeof(Tenant)) };
        if (!l.items)
                return -ENOMEM;
        for (; l.n < value->n_items && p.oom == 0; l.n++)
                parse_tenant(&p, value->items[l.n], &l.items[l.n]);
        /* two tenants on one path would make a manifest belong to both */
        for (size_t i = 0; i < l.n && p.oom == 0; i++)
                for (size_t j = 0; j < i; j++)
                        if (l.items[i].path && l.items[j].path && streq(l.items[i].path, l.items[j].path)) {
                                char where[32];
                                snprintf(where, sizeof where, "line %u", l.items[j].line);
                                perr(&p, value->items[i], "tenant path '%s' is also the path of the tenant at %s",
                                     l.items[i].path, where);
                                break;
                        }
        if (p.oom < 0 || p.bad) {
                tenant_list_done(&l);
                return p.oom ?: -EINVAL;
        }
        tenant_list_done(ret);
        *ret = l;
        return 0;
}
