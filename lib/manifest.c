/* Manifest validation: one YAML document -> one NotebookSpec, every rule of the create
 * call (the ModelArts DevEnviron API) that a client can know checked here, so that
 * nothing the cloud would certainly refuse is sent (which profiles and flavors exist is
 * the cloud's to say).
 *
 * Decisions where the contract is silent:
 * - Strings are strings: `name: 123` or `description: true` is a type error (with a hint
 *   to quote it), because YAML reads them as an integer / a boolean. The exception is
 *   workspace.id: workspace ids are often written bare (`id: 0`), so an integer-looking
 *   plain scalar is taken as the string it is written as.
 * - volume_size is an integer: `"5"` (quoted) and `five` are type errors.
 * - OBS paths, after Huawei's own example "obs-bucket/test/": BUCKET/DIR.../ with
 *   an optional leading "/" (the form other ModelArts APIs use), sent as written. The
 *   bucket name follows OBS's rules (3-63 of a-z 0-9 - ., starting and ending with a
 *   letter or digit); the path must name a directory inside the bucket (the cloud refuses
 *   a bucket's root, ModelArts.6358) and end with "/" (ModelArts.6318); no empty
 *   segments, no control characters. "obs://bucket/dir/" is refused with the form to
 *   write instead, since the API takes the bare form.
 * - A key with no value (`description:`) is null, and null is a type error, never
 *   "absent": an accidentally emptied field should not silently fall back to a default.
 * - annotations: keys and values are any scalars, taken as written (`replicas: 3` is the
 *   string "3"); null values, lists and mappings are errors.
 * - Missing required keys are reported at the document's start (top level) or at the key
 *   of the mapping that lacks them (nested).
 * - profile_id and flavor are open sets (the cloud decides, by region and release): any
 *   non-empty string of at most 128 characters without control characters is sent as
 *   written. The known values (catalog.h) only give a "did you mean" warning for a near
 *   miss, and the kind check (ModelArts.6330) when both values are known. The host's
 *   config may narrow them (ManifestPolicy): that is an error, as the operator asked.
 * - pool and ai_project are like workspace, except that their id is required: an empty
 *   `pool: {}` would send an object the cloud cannot use. */
#include "manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "config.h"
#include "limits.h"
#include "util.h"
#include "yamltree.h"

#define API_VERSION "notebookd/v1"
#define KIND "Notebook"

/* MANIFEST_MAX_ERRORS_PER_FILE reached by validation: where the first error left unsaid was. */
typedef struct ErrorCap {
        bool hit;
        unsigned line, column;
} ErrorCap;

typedef struct Validator {
        const char *file;
        const ManifestPolicy *policy;   /* NULL: none */
        Diags *diags;
        size_t n_errors;
        int oom;                 /* -ENOMEM once a diagnostic could not be recorded */
        ErrorCap *cap;           /* NULL: no limit */
} Validator;

static void vdiag(Validator *v, DiagSeverity sev, unsigned line, unsigned column, const char *fmt, va_list ap)
        _printf_(5, 0);
static void vdiag(Validator *v, DiagSeverity sev, unsigned line, unsigned column, const char *fmt, va_list ap) {
        if (sev == DIAG_ERROR)
                v->n_errors++;
        /* Counted (the document is still invalid), not said: one document can have a
         * thousand unknown keys. */
        if (v->cap && v->diags->n_errors >= MANIFEST_MAX_ERRORS_PER_FILE) {
                if (!v->cap->hit)
                        *v->cap = (ErrorCap) { .hit = true, .line = line, .column = column };
                return;
        }
        _cleanup_free_ char *msg = xvasprintf(fmt, ap);
        if (!msg || diags_add(v->diags, sev, v->file, line, column, "%s", msg) < 0)
                v->oom = -ENOMEM;
}

static void error_at(Validator *v, unsigned line, unsigned column, const char *fmt, ...) _printf_(4, 5);
static void error_at(Validator *v, unsigned line, unsigned column, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vdiag(v, DIAG_ERROR, line, column, fmt, ap);
        va_end(ap);
}

static void error_node(Validator *v, const YamlNode *n, const char *fmt, ...) _printf_(3, 4);
static void error_node(Validator *v, const YamlNode *n, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vdiag(v, DIAG_ERROR, n->line, n->column, fmt, ap);
        va_end(ap);
}

static void warning_node(Validator *v, const YamlNode *n, const char *fmt, ...) _printf_(3, 4);
static void warning_node(Validator *v, const YamlNode *n, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vdiag(v, DIAG_WARNING, n->line, n->column, fmt, ap);
        va_end(ap);
}

#define Q(buf, n) yaml_quote(buf, sizeof(buf), (n)->scalar, (n)->length)

/* ---- the shape: which keys live where ---- */

typedef struct Level {
        const char *path;            /* "" for the top level, else dotted */
        const char *const *keys;
        size_t n_keys;
} Level;

static const char *const top_keys[] = { "name", "profile_id", "description", "flavor", "spec", "workspace",
                                        "pool", "ai_project", "apiVersion", "kind", "state" };
static const char *const spec_keys[] = { "storage", "annotations" };
static const char *const storage_keys[] = { "type", "location" };
static const char *const location_keys[] = { "path", "volume_size" };
static const char *const id_keys[] = { "id" };

static const Level levels[] = {
        { "", top_keys, ELEMENTSOF(top_keys) },
        { "spec", spec_keys, ELEMENTSOF(spec_keys) },
        { "spec.storage", storage_keys, ELEMENTSOF(storage_keys) },
        { "spec.storage.location", location_keys, ELEMENTSOF(location_keys) },
        { "workspace", id_keys, ELEMENTSOF(id_keys) },
        { "pool", id_keys, ELEMENTSOF(id_keys) },
        { "ai_project", id_keys, ELEMENTSOF(id_keys) },
};

/* Report every key of map that does not belong at this level, with a hint: a near miss
 * at this level ("flavour" -> "flavor"), or the level where that key does belong
 * ("volume_size" written directly under storage). */
static void check_keys(Validator *v, const YamlNode *map, const Level *lv) {
        char q[YAML_QUOTE_BUF];
        for (size_t i = 0; i < map->n_pairs; i++) {
                const YamlNode *key = map->pairs[i].key;
                bool known = false;
                for (size_t k = 0; k < lv->n_keys && !known; k++)
                        known = streq(key->scalar, lv->keys[k]);
                if (known)
                        continue;

                _cleanup_free_ char *where = *lv->path ? xasprintf(" in '%s'", lv->path) : strdup("");
                if (!where) {
                        v->oom = -ENOMEM;
                        return;
                }
                const char *hint = closest_match(key->scalar, lv->keys, lv->n_keys);
                if (hint) {
                        error_node(v, key, "unknown key %s%s (did you mean '%s'?)", Q(q, key), where, hint);
                        continue;
                }
                const char *elsewhere = NULL;
                for (size_t l = 0; l < ELEMENTSOF(levels) && !elsewhere; l++)
                        for (size_t k = 0; k < levels[l].n_keys; k++)
                                if (&levels[l] != lv && streq(key->scalar, levels[l].keys[k])) {
                                        elsewhere = levels[l].path;
                                        break;
                                }
                if (elsewhere && !*elsewhere)
                        error_node(v, key, "unknown key %s%s (it belongs at the top level)", Q(q, key), where);
                else if (elsewhere)
                        error_node(v, key, "unknown key %s%s (it belongs in '%s')", Q(q, key), where, elsewhere);
                else
                        error_node(v, key, "unknown key %s%s", Q(q, key), where);
        }
}

/* n must be of kind want; reports and returns false otherwise. */
static bool expect_kind(Validator *v, const YamlNode *n, const char *path, YamlKind want) {
        if (n->kind == want)
                return true;
        const char *hint = "";
        if (want == YAML_KIND_STRING && yaml_node_is_scalar(n) && n->kind != YAML_KIND_NULL)
                hint = " (quote it to make it a string)";
        else if (want == YAML_KIND_INT && n->kind == YAML_KIND_STRING && n->quoted) {
                int64_t ignored;
                YamlNode plain = *n;
                plain.kind = YAML_KIND_INT;
                if (yaml_node_int64(&plain, INT64_MIN, INT64_MAX, &ignored) >= 0)
                        hint = " (remove the quotes)";
        }
        error_node(v, n, "'%s' must be %s, got %s%s", path, yaml_kind_to_string(want),
                   yaml_kind_to_string(n->kind), hint);
        return false;
}

/* A string value, or NULL (reported) when it is of another kind. */
static const char *get_string(Validator *v, const YamlNode *n, const char *path) {
        return expect_kind(v, n, path, YAML_KIND_STRING) ? n->scalar : NULL;
}

static void missing_top(Validator *v, const YamlDocument *doc, const char *key) {
        error_at(v, doc->line, doc->column, "missing required key '%s'", key);
}

static void missing_nested(Validator *v, const YamlNode *parent_key, const char *key, const char *path,
                           const char *why) {
        error_node(v, parent_key, "missing required key '%s' in '%s'%s", key, path, why);
}

/* ---- the field rules ---- */

static bool check_name(Validator *v, const YamlNode *n) {
        char q[YAML_QUOTE_BUF];
        if (!get_string(v, n, "name"))
                return false;
        if (n->length == 0) {
                error_node(v, n, "'name' must not be empty");
                return false;
        }
        bool ok = true;
        ssize_t chars = utf8_length(n->scalar, n->length);
        if (chars > NAME_MAX_LENGTH) {
                error_node(v, n, "name too long: %zd characters (limit %d)", chars, NAME_MAX_LENGTH);
                ok = false;
        }
        for (size_t i = 0; i < n->length; i++) {
                char c = n->scalar[i];
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_')
                        continue;
                error_node(v, n, "invalid name %s: only letters, digits, '-' and '_' are allowed", Q(q, n));
                ok = false;
                break;
        }
        return ok;
}

static bool check_description(Validator *v, const YamlNode *n) {
        char q[YAML_QUOTE_BUF];
        if (!get_string(v, n, "description"))
                return false;
        bool ok = true;
        ssize_t chars = utf8_length(n->scalar, n->length);
        if (chars < 0 || chars > DESCRIPTION_MAX_CHARS) {
                error_node(v, n, "description too long: %zd characters (limit %d)", chars, DESCRIPTION_MAX_CHARS);
                ok = false;
        }
        size_t bad = strcspn(n->scalar, "&<>\"'/");
        if (bad < n->length) {
                /* the API refuses these (ModelArts.6334) */
                error_node(v, n, "description must not contain %s (none of & < > \" ' / are allowed)",
                           yaml_quote(q, sizeof(q), n->scalar + bad, 1));
                ok = false;
        }
        return ok;
}

/* label names the value in messages ("storage type"), path the key ("spec.storage.type"). */
static const char *check_choice(Validator *v, const YamlNode *n, const char *label, const char *path,
                                const char *const *choices, size_t n_choices) {
        char q[YAML_QUOTE_BUF];
        if (!get_string(v, n, path))
                return NULL;
        for (size_t i = 0; i < n_choices; i++)
                if (streq(n->scalar, choices[i]))
                        return choices[i];
        const char *hint = closest_match(n->scalar, choices, n_choices);
        if (hint) {
                error_node(v, n, "unknown %s %s (did you mean '%s'?)", label, Q(q, n), hint);
                return NULL;
        }
        /* the lists are short: name them all */
        char list[512];
        size_t o = 0;
        for (size_t i = 0; i < n_choices && o < sizeof(list); i++)
                o += (size_t) snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", choices[i]);
        error_node(v, n, "unknown %s %s (expected one of: %s)", label, Q(q, n), list);
        return NULL;
}

/* profile_id or flavor: an open set. label is the key ("flavor"), policy_key the config
 * key that may narrow it ("flavors"). Returns the value, or NULL (reported). */
static const char *check_open_value(Validator *v, const YamlNode *n, const char *label, const char *policy_key,
                                    const char *const *patterns, size_t n_patterns,
                                    const char *(*suggest)(const char *)) {
        char q[YAML_QUOTE_BUF];
        if (!get_string(v, n, label))
                return NULL;
        if (n->length == 0) {
                error_node(v, n, "'%s' must not be empty", label);
                return NULL;
        }
        ssize_t chars = utf8_length(n->scalar, n->length);
        if (chars < 0 || chars > PROFILE_FLAVOR_MAX_CHARS) {
                error_node(v, n, "%s too long: %zd characters (limit %d)", label, chars, PROFILE_FLAVOR_MAX_CHARS);
                return NULL;
        }
        for (size_t i = 0; i < n->length; i++) {
                const unsigned char *c = (const unsigned char *) n->scalar + i;
                /* C0, DEL and C1 (U+0080..U+009F, UTF-8 C2 80..C2 9F): never in a name */
                if (c[0] < 0x20 || c[0] == 0x7f || (c[0] == 0xc2 && i + 1 < n->length && c[1] >= 0x80 && c[1] <= 0x9f)) {
                        error_node(v, n, "%s %s contains a control character", label, Q(q, n));
                        return NULL;
                }
        }
        if (n_patterns > 0) {
                bool allowed = false;
                for (size_t i = 0; i < n_patterns && !allowed; i++)
                        allowed = fnmatch(patterns[i], n->scalar, 0) == 0;
                if (!allowed) {
                        error_node(v, n, "%s %s is not allowed by %s in %s", label, Q(q, n), policy_key,
                                   strempty(v->policy->source));
                        return NULL;
                }
        }
        const char *hint = suggest(n->scalar);
        if (hint)
                warning_node(v, n, "%s %s is not one notebookd knows (did you mean '%s'?); it is sent as written",
                             label, Q(q, n), hint);
        return n->scalar;
}

static const char *kind_article(CatalogKind k) {
        return k == CATALOG_KIND_ASCEND ? "an" : "a";
}

/* The kind check (ModelArts.6330), for known values only: an unknown one may be of any
 * kind, and the cloud will say. */
static void check_kinds(Validator *v, const YamlNode *flavor, const char *profile_id, const char *flavor_id) {
        const CatalogEntry *p = catalog_find_profile(profile_id), *f = catalog_find_flavor(flavor_id);
        if (!p || !f || !catalog_kinds_clash(p->kind, f->kind))
                return;
        error_node(v, flavor, "profile_id '%s' needs %s %s flavor, '%s' is %s %s flavor (ModelArts.6330)", p->name,
                   kind_article(p->kind), catalog_kind_to_string(p->kind), f->name, kind_article(f->kind),
                   catalog_kind_to_string(f->kind));
}

static bool valid_bucket_name(const char *s, size_t len) {
        if (len < 3 || len > 63)
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                if (!alnum && c != '-' && c != '.')
                        return false;
                if ((i == 0 || i == len - 1) && !alnum)
                        return false;
                if (c == '.' && i > 0 && (s[i - 1] == '.' || s[i - 1] == '-'))
                        return false;
                if (c == '-' && i > 0 && s[i - 1] == '.')
                        return false;
        }
        return true;
}

static bool check_obs_path(Validator *v, const YamlNode *n) {
        const char *path = "spec.storage.location.path";
        char q[YAML_QUOTE_BUF];
        if (!get_string(v, n, path))
                return false;
        const char *s = n->scalar;
        if (n->length == 0) {
                error_node(v, n, "'%s' must not be empty: obs storage needs a directory like 'bucket/notebooks/'", path);
                return false;
        }
        const char *scheme = strstr(s, "://");
        if (scheme) {
                const char *rest = scheme + 3;
                error_node(v, n, "OBS path %s must not have a scheme: write it as %s", Q(q, n),
                           yaml_quote((char[YAML_QUOTE_BUF]) {}, YAML_QUOTE_BUF, rest, strlen(rest)));
                return false;
        }
        for (size_t i = 0; i < n->length; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\') {
                        error_node(v, n, "OBS path %s contains a control character or backslash", Q(q, n));
                        return false;
                }
        if (s[n->length - 1] != '/') {
                error_node(v, n, "OBS path %s must end with '/' (ModelArts.6318)", Q(q, n));
                return false;
        }
        const char *p = s[0] == '/' ? s + 1 : s;
        const char *slash = strchr(p, '/');
        size_t bucket_len = slash ? (size_t) (slash - p) : strlen(p);
        if (!slash || !valid_bucket_name(p, bucket_len)) {
                error_node(v, n, "invalid OBS bucket name %s in %s (3-63 characters: lowercase letters, digits, '-' and '.')",
                           yaml_quote((char[YAML_QUOTE_BUF]) {}, YAML_QUOTE_BUF, p, bucket_len), Q(q, n));
                return false;
        }
        if (slash[1] == 0) {
                error_node(v, n, "OBS path %s is a bucket's root: name a directory in it, e.g. '%.*s/notebooks/' (ModelArts.6358)",
                           Q(q, n), (int) MIN(bucket_len, 63), p);
                return false;
        }
        if (strstr(slash, "//")) {
                error_node(v, n, "OBS path %s has an empty directory name ('//')", Q(q, n));
                return false;
        }
        return true;
}

static bool check_volume_size(Validator *v, const YamlNode *n, int64_t *ret) {
        const char *path = "spec.storage.location.volume_size";
        if (!expect_kind(v, n, path, YAML_KIND_INT))
                return false;
        int r = yaml_node_int64(n, EVS_VOLUME_MIN_GB, EVS_VOLUME_MAX_GB, ret);
        if (r < 0) {
                /* ModelArts.6331 */
                error_node(v, n, "volume_size %s out of range: %d to %d (GB)", n->scalar, EVS_VOLUME_MIN_GB,
                           EVS_VOLUME_MAX_GB);
                return false;
        }
        return true;
}

/* The pair (key and value) for key in map, or NULL. */
static const YamlPair *field(const YamlNode *map, const char *key) {
        return yaml_mapping_get_pair(map, key);
}

static int take(char **dst, const char *s) {
        *dst = strdup(s);
        return *dst ? 0 : -ENOMEM;
}

static void check_storage(Validator *v, const YamlPair *storage_pair, NotebookSpec *spec) {
        const YamlNode *storage = storage_pair->value;
        if (!expect_kind(v, storage, "spec.storage", YAML_KIND_MAPPING))
                return;
        check_keys(v, storage, &levels[2]);

        const YamlPair *type = field(storage, "type"), *location = field(storage, "location");
        int type_ok = -1; /* -1 unknown, else the StorageType */
        if (!type)
                missing_nested(v, storage_pair->key, "type", "spec.storage", "");
        else {
                static const char *const types[] = { "obs", "evs" };
                const char *t = check_choice(v, type->value, "storage type", "spec.storage.type", types, ELEMENTSOF(types));
                if (t)
                        type_ok = streq(t, "obs") ? STORAGE_OBS : STORAGE_EVS;
        }

        const YamlNode *loc = NULL;
        if (location && expect_kind(v, location->value, "spec.storage.location", YAML_KIND_MAPPING)) {
                loc = location->value;
                check_keys(v, loc, &levels[3]);
        }
        const YamlPair *path = loc ? field(loc, "path") : NULL;
        const YamlPair *size = loc ? field(loc, "volume_size") : NULL;

        if (type_ok == STORAGE_OBS) {
                spec->storage_type = STORAGE_OBS;
                if (!location)
                        missing_nested(v, storage_pair->key, "location", "spec.storage",
                                       ": obs storage needs location.path (ModelArts.6317)");
                else if (loc && !path)
                        missing_nested(v, location->key, "path", "spec.storage.location",
                                       ": obs storage needs it (ModelArts.6317)");
                if (path && check_obs_path(v, path->value) && take(&spec->storage_path, path->value->scalar) < 0)
                        v->oom = -ENOMEM;
                if (size)
                        warning_node(v, size->key, "'volume_size' is not used with obs storage: ignored");
        } else if (type_ok == STORAGE_EVS) {
                spec->storage_type = STORAGE_EVS;
                spec->volume_size = EVS_VOLUME_DEFAULT_GB;
                if (size)
                        check_volume_size(v, size->value, &spec->volume_size);
                if (path)
                        warning_node(v, path->key, "'path' is not used with evs storage: ignored");
        } else {
                /* type unknown: still check the values' own shape */
                int64_t ignored;
                if (size)
                        check_volume_size(v, size->value, &ignored);
                if (path)
                        (void) get_string(v, path->value, "spec.storage.location.path");
        }
}

static void check_annotations(Validator *v, const YamlNode *n, NotebookSpec *spec) {
        char q[YAML_QUOTE_BUF];
        if (!expect_kind(v, n, "spec.annotations", YAML_KIND_MAPPING))
                return;
        spec->has_annotations = true;
        if (n->n_pairs == 0)
                return;
        if (n->n_pairs > MANIFEST_MAX_ANNOTATIONS) {
                error_node(v, n, "too many annotations: %zu (limit %d)", n->n_pairs, MANIFEST_MAX_ANNOTATIONS);
                return;
        }
        spec->annotations = calloc(n->n_pairs, sizeof(Annotation));
        if (!spec->annotations) {
                v->oom = -ENOMEM;
                return;
        }
        for (size_t i = 0; i < n->n_pairs; i++) {
                const YamlNode *key = n->pairs[i].key, *value = n->pairs[i].value;
                if (!yaml_node_is_scalar(value) || value->kind == YAML_KIND_NULL) {
                        error_node(v, value, "annotation %s must be a string, got %s", Q(q, key),
                                   yaml_kind_to_string(value->kind));
                        continue;
                }
                Annotation *a = &spec->annotations[spec->n_annotations];
                a->key = strdup(key->scalar);
                a->value = strdup(value->scalar);
                spec->n_annotations++;
                if (!a->key || !a->value)
                        v->oom = -ENOMEM;
        }
}

static void check_spec(Validator *v, const YamlPair *spec_pair, NotebookSpec *spec) {
        const YamlNode *n = spec_pair->value;
        if (!expect_kind(v, n, "spec", YAML_KIND_MAPPING))
                return;
        check_keys(v, n, &levels[1]);
        const YamlPair *storage = field(n, "storage"), *annotations = field(n, "annotations");
        if (!storage)
                missing_nested(v, spec_pair->key, "storage", "spec", " (ModelArts.6316)");
        else
                check_storage(v, storage, spec);
        if (annotations)
                check_annotations(v, annotations->value, spec);
}

/* workspace, pool, ai_project: {id: ...}. Without an id, workspace is the default one;
 * pool and ai_project have no default (id_required). */
static void check_id_object(Validator *v, const YamlPair *pair, const Level *lv, bool id_required, char **dst) {
        const YamlNode *n = pair->value;
        if (!expect_kind(v, n, lv->path, YAML_KIND_MAPPING))
                return;
        check_keys(v, n, lv);
        const YamlNode *id = yaml_mapping_get(n, "id");
        if (!id) {
                if (id_required)
                        missing_nested(v, pair->key, "id", lv->path, "");
                return;
        }
        _cleanup_free_ char *path = xasprintf("%s.id", lv->path);
        if (!path) {
                v->oom = -ENOMEM;
                return;
        }
        /* `id: 0` is how people write the default workspace: take an integer as written */
        if (!(id->kind == YAML_KIND_INT && !id->quoted) && !get_string(v, id, path))
                return;
        if (id->length == 0) {
                error_node(v, id, "'%s' must not be empty", path);
                return;
        }
        free(*dst);
        if (take(dst, id->scalar) < 0)
                v->oom = -ENOMEM;
}

static void check_envelope(Validator *v, const YamlNode *root, NotebookSpec *spec) {
        char q[YAML_QUOTE_BUF];
        const YamlNode *api = yaml_mapping_get(root, "apiVersion"), *kind = yaml_mapping_get(root, "kind");
        if (api && get_string(v, api, "apiVersion") && !streq(api->scalar, API_VERSION))
                error_node(v, api, "unsupported apiVersion %s (expected '" API_VERSION "')", Q(q, api));
        if (kind && get_string(v, kind, "kind") && !streq(kind->scalar, KIND))
                error_node(v, kind, "unsupported kind %s (expected '" KIND "')", Q(q, kind));
        /* state: notebookd's, not the create call's: what the instance should be doing */
        const YamlNode *state = yaml_mapping_get(root, "state");
        if (state && get_string(v, state, "state")) {
                if (streq(state->scalar, "running"))
                        spec->state = DESIRED_STATE_RUNNING;
                else if (streq(state->scalar, "stopped"))
                        spec->state = DESIRED_STATE_STOPPED;
                else
                        error_node(v, state, "state must be 'running' or 'stopped', got %s (leave it out for no "
                                   "opinion)", Q(q, state));
        }
}

/* ---- tenants (config.h): what one team's manifests may ask for ---- */

/* An open value under the patterns of its tenant's list when the tenant sets one, else
 * the config's own (list: "profiles" or "flavors", as the message names it). */
static const char *check_policy_value(Validator *v, const YamlNode *n, const char *label, const char *list,
                                      const ConfigList *tenant_list, const char *const *patterns, size_t n_patterns,
                                      const char *(*suggest)(const char *)) {
        char key[96];
        if (tenant_list && tenant_list->n > 0) {
                snprintf(key, sizeof key, "tenant %.48s's '%s'", v->policy->tenant->name, list);
                return check_open_value(v, n, label, key, (const char *const *) tenant_list->items, tenant_list->n,
                                        suggest);
        }
        snprintf(key, sizeof key, "'%s'", list);
        return check_open_value(v, n, label, key, patterns, n_patterns, suggest);
}

static bool in_list(const ConfigList *l, const char *s, bool as_prefix) {
        for (size_t i = 0; i < l->n; i++)
                if (as_prefix ? strncmp(s, l->items[i], strlen(l->items[i])) == 0 : streq(s, l->items[i]))
                        return true;
        return false;
}

/* The node at a dotted path of mappings, or NULL. */
static const YamlNode *node_at(const YamlNode *root, const char *const *path, size_t n) {
        const YamlNode *x = root;
        for (size_t i = 0; x && i < n; i++)
                x = yaml_mapping_get(x, path[i]);
        return x;
}

/* name_prefix, workspaces and obs_paths, each an error where the value stands (the
 * document's start for a default the manifest did not write). */
static void check_tenant(Validator *v, const YamlDocument *doc, const Tenant *t, NotebookSpec *spec) {
        char q[YAML_QUOTE_BUF];
        const YamlNode *root = doc->root;
        if (take(&spec->tenant, t->name) < 0) {
                v->oom = -ENOMEM;
                return;
        }
        const YamlNode *name = yaml_mapping_get(root, "name");
        if (t->name_prefix && spec->name && strncmp(spec->name, t->name_prefix, strlen(t->name_prefix)) != 0)
                error_node(v, name, "name %s must start with '%s' (tenant %s in %s)", Q(q, name), t->name_prefix,
                           t->name, strempty(v->policy->source));
        const char *ws = spec->workspace_id ? spec->workspace_id : "0";
        if (t->workspaces.n > 0 && !in_list(&t->workspaces, ws, false)) {
                static const char *const ws_path[] = { "workspace", "id" };
                const YamlNode *at = node_at(root, ws_path, 2);
                if (at)
                        error_node(v, at, "workspace %s is not one of tenant %s's workspaces (in %s)", Q(q, at),
                                   t->name, strempty(v->policy->source));
                else
                        error_at(v, doc->line, doc->column,
                                 "workspace.id defaults to '0', which is not one of tenant %s's workspaces (in %s): "
                                 "name one", t->name, strempty(v->policy->source));
        }
        if (t->obs_paths.n > 0 && spec->storage_type == STORAGE_OBS && spec->storage_path &&
            !in_list(&t->obs_paths, spec->storage_path, true)) {
                static const char *const obs_path[] = { "spec", "storage", "location", "path" };
                const YamlNode *at = node_at(root, obs_path, 4);
                error_node(v, at ? at : root, "OBS path %s is outside tenant %s's obs_paths (in %s)",
                           at ? Q(q, at) : "''", t->name, strempty(v->policy->source));
        }
}

/* Validate one loaded document. Returns the spec (NULL if any error) via *ret; the
 * return value is 0 or -ENOMEM. */
static int validate_document(Validator *v, const YamlDocument *doc, NotebookSpec **ret) {
        const YamlNode *root = doc->root;
        *ret = NULL;
        if (root->kind != YAML_KIND_MAPPING) {
                error_node(v, root, "a manifest document must be a mapping of the create call's fields, got %s",
                           yaml_kind_to_string(root->kind));
                return v->oom;
        }
        _cleanup_(spec_freep) NotebookSpec *spec = calloc(1, sizeof(NotebookSpec));
        if (!spec)
                return -ENOMEM;
        spec->doc_pos = (SourcePos) { doc->line, doc->column };
        if (take(&spec->workspace_id, "0") < 0 || take(&spec->file, v->file) < 0)
                return -ENOMEM;

        check_keys(v, root, &levels[0]);
        check_envelope(v, root, spec);

        const YamlNode *name = yaml_mapping_get(root, "name");
        if (!name)
                missing_top(v, doc, "name");
        else if (check_name(v, name)) {
                spec->name_pos = (SourcePos) { name->line, name->column };
                if (take(&spec->name, name->scalar) < 0)
                        return -ENOMEM;
        }

        const ManifestPolicy none = {};
        const ManifestPolicy *policy = v->policy ? v->policy : &none;
        const YamlNode *profile = yaml_mapping_get(root, "profile_id");
        const char *profile_id = NULL;
        if (!profile)
                missing_top(v, doc, "profile_id");
        else
                profile_id = check_policy_value(v, profile, "profile_id", "profiles",
                                                policy->tenant ? &policy->tenant->profiles : NULL, policy->profiles,
                                                policy->n_profiles, catalog_suggest_profile);

        const YamlNode *description = yaml_mapping_get(root, "description");
        if (description && check_description(v, description) && take(&spec->description, description->scalar) < 0)
                return -ENOMEM;

        const YamlNode *flavor = yaml_mapping_get(root, "flavor");
        const char *flavor_id = NULL;
        if (!flavor)
                missing_top(v, doc, "flavor");
        else
                flavor_id = check_policy_value(v, flavor, "flavor", "flavors",
                                               policy->tenant ? &policy->tenant->flavors : NULL, policy->flavors,
                                               policy->n_flavors, catalog_suggest_flavor);

        if (profile_id && flavor_id)
                check_kinds(v, flavor, profile_id, flavor_id);
        if (profile_id && take(&spec->profile_id, profile_id) < 0)
                return -ENOMEM;
        if (flavor_id && take(&spec->flavor, flavor_id) < 0)
                return -ENOMEM;

        const YamlPair *spec_pair = field(root, "spec");
        if (!spec_pair)
                missing_top(v, doc, "spec");
        else
                check_spec(v, spec_pair, spec);

        const YamlPair *workspace = field(root, "workspace"), *pool = field(root, "pool"),
                       *ai_project = field(root, "ai_project");
        if (workspace)
                check_id_object(v, workspace, &levels[4], false, &spec->workspace_id);
        if (pool)
                check_id_object(v, pool, &levels[5], true, &spec->pool_id);
        if (ai_project)
                check_id_object(v, ai_project, &levels[6], true, &spec->ai_project_id);

        if (policy->tenant)
                check_tenant(v, doc, policy->tenant, spec);

        if (v->oom < 0)
                return v->oom;
        if (v->n_errors == 0) {
                int r = spec_seal(spec);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(spec);
        }
        return 0;
}

typedef struct ParseContext {
        const char *file;
        const ManifestPolicy *policy;
        Diags *diags;
        SpecList *specs;
        ManifestResult result;
        size_t doc_errors;
        ErrorCap cap;
} ParseContext;

/* Each document as the loader finishes it (its tree is freed right after). */
static int on_document(const YamlDocument *doc, void *userdata) {
        ParseContext *c = userdata;
        int r;
        c->doc_errors += doc->n_errors;
        c->result.n_documents++;
        /* Past the error limit the rest is not checked (the loader stops at its next
         * event, and says so), so not accepted either. */
        if (c->diags->n_errors >= MANIFEST_MAX_ERRORS_PER_FILE) {
                c->result.n_invalid++;
                return 0;
        }
        Validator v = { .file = c->file, .policy = c->policy, .diags = c->diags, .cap = &c->cap };
        _cleanup_(spec_freep) NotebookSpec *spec = NULL;
        /* A document cut short by the loader is not validated: its tree is gone.
         * One with only a duplicate key is whole, so report its other problems too. */
        if (doc->complete && doc->root) {
                r = validate_document(&v, doc, &spec);
                if (r < 0)
                        return r;
        }
        if (doc->n_errors > 0 || v.n_errors > 0 || !spec) {
                c->result.n_invalid++;
                return 0;
        }
        r = spec_list_append(c->specs, spec);
        if (r < 0)
                return r;
        TAKE_PTR(spec);
        return 0;
}

int manifest_parse_buffer(const char *display_path, const char *buf, size_t len, const ManifestPolicy *policy,
                          Diags *diags, SpecList *specs, ManifestResult *ret_result) {
        _cleanup_(yaml_stream_freep) YamlStream *s = NULL;
        _cleanup_diags_ Diags local = DIAGS_INIT;
        ParseContext c = { .file = display_path, .policy = policy, .diags = &local, .specs = specs };

        int r = yaml_tree_load_each(display_path, buf, len, &local, on_document, &c, &s);
        if (r < 0)
                return r;
        /* The loader says so when anything follows; after the last document, say it here. */
        if (c.cap.hit && !s->too_many_errors) {
                r = diag_error(&local, display_path, c.cap.line, c.cap.column,
                               "too many errors (limit %d); the rest of the file is not checked",
                               MANIFEST_MAX_ERRORS_PER_FILE);
                if (r < 0)
                        return r;
        }
        /* A problem outside any document (bad bytes, a syntax error before the first
         * document, too many documents) counts as one more invalid document, so that a
         * refused file never reads as "0 documents, all fine". */
        if (s->n_errors > c.doc_errors) {
                c.result.n_documents++;
                c.result.n_invalid++;
        }

        diags_sort(&local);
        r = diags_move(diags, &local);
        if (r < 0)
                return r;
        if (ret_result)
                *ret_result = c.result;
        return 0;
}

int manifest_parse_file(int dirfd, const char *path, const char *display_path, const ManifestPolicy *policy,
                        Diags *diags, SpecList *specs, ManifestResult *ret_result) {
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = yaml_read_file(dirfd, path, MANIFEST_MAX_FILE_SIZE, &buf, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (r == -EFBIG)
                        r = diag_error(diags, display_path, 0, 0, "file too large (limit %d bytes)", MANIFEST_MAX_FILE_SIZE);
                else if (r == -EISDIR)
                        r = diag_error(diags, display_path, 0, 0, "is a directory, not a manifest file");
                else if (r == -EINVAL)
                        r = diag_error(diags, display_path, 0, 0, "not a regular file");
                else if (r == -ELOOP || r == -EXDEV)
                        /* read beneath the root with no symlink followed: the path changed
                         * into (or through) a symlink after the scan checked it */
                        r = diag_error(diags, display_path, 0, 0,
                                       "became a symlink after it was checked; not read (judged again on the next scan)");
                else
                        r = diag_error(diags, display_path, 0, 0, "cannot read: %s", strerror(-r));
                if (r < 0)
                        return r;
                if (ret_result)
                        *ret_result = (ManifestResult) { .n_documents = 1, .n_invalid = 1 };
                return 0;
        }
        return manifest_parse_buffer(display_path, buf, len, policy, diags, specs, ret_result);
}
