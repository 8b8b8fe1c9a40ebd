/* The create call's rules, written from Huawei's API reference and SDK page on
 * their own, never from lib/'s validator: the two are meant to disagree loudly when
 * either is wrong. The first failing rule wins; the order is documented in README.md:
 *   1. shape: body an object; each field present when required (6335, or 6316 for
 *      spec.storage, 6317 for an OBS path) and of the right JSON type (6332), walking
 *      name, profile_id, description, flavor, spec{storage{type, location{path,
 *      volume_size}}, annotations}, workspace{id};
 *   2. values: name (6334), description (6334), profile_id in the region's catalog
 *      (6336), flavor in it (6323), profile/flavor kind (6330, only when both kinds are
 *      known, i.e. neither is "any"), multi-card permission (6328), sold out (6329),
 *      storage type (6336), OBS path (6317, 6318, 6336, 6358) or EVS size (6331).
 * Unknown fields are ignored, like the cloud does. */
#include "emulator.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "util.h"

/* The profiles and flavors themselves are the region's catalog (catalog.c, --profiles,
 * --flavors). These need a permission granted to the account (contract: "the last two"). */
static const char *const permission_flavors[] = { "modelarts.vm.gpu.2p100", "modelarts.vm.gpu.4p100" };

static const char *const statuses[] = {
        "CREATE_QUEUING", "CREATING", "CREATE_FAILED", "START_QUEUING", "READY_TO_START",
        "STARTING",       "RESTARTING", "START_FAILED", "RUNNING",      "STOPPING",
        "STOPPED",        "UNAVAILABLE", "DELETED",     "RESIZING",     "RESIZE_FAILED",
        "UNKNOWN",
};

#define NAME_MAX_CHARS 64
#define DESCRIPTION_MAX_CHARS 512
#define EVS_MIN_GB 5
#define EVS_MAX_GB 4096
#define EVS_DEFAULT_GB 5
/* An OBS object path is at most 1024 bytes; with the bucket and slashes this bounds it. */
#define OBS_PATH_MAX 1100

static bool in_list(const char *s, const char *const *list, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (streq(s, list[i]))
                        return true;
        return false;
}

const char *emu_status_intern(const char *status) {
        for (size_t i = 0; status && i < ELEMENTSOF(statuses); i++)
                if (streq(status, statuses[i]))
                        return statuses[i];
        return NULL;
}

bool emu_status_is_known(const char *status) {
        return emu_status_intern(status) != NULL;
}

void emu_error_set(EmuError *e, unsigned http, const char *code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        free(e->msg);
        e->msg = xvasprintf(fmt, ap);
        va_end(ap);
        e->http = http;
        e->code = code;
        e->gateway = strncmp(code, "APIG.", 5) == 0;
}

void emu_error_done(EmuError *e) {
        free(e->msg);
        *e = (EmuError) {};
}

CreateRequest *emu_create_request_free(CreateRequest *c) {
        if (!c)
                return NULL;
        free(c->name);
        free(c->description);
        free(c->profile_id);
        free(c->flavor);
        free(c->workspace_id);
        free(c->storage_type);
        free(c->obs_path);
        cJSON_Delete(c->annotations);
        free(c);
        return NULL;
}

/* A JSON null counts as absent, for required and optional fields alike. */
static const cJSON *field(const cJSON *obj, const char *key) {
        const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
        return v && !cJSON_IsNull(v) ? v : NULL;
}

typedef enum Want { WANT_STRING, WANT_OBJECT, WANT_INTEGER } Want;

static const char *want_name(Want w) {
        return w == WANT_STRING ? "a string" : w == WANT_OBJECT ? "an object" : "an integer";
}

static bool has_type(const cJSON *v, Want w) {
        switch (w) {
        case WANT_STRING:
                return cJSON_IsString(v) && v->valuestring;
        case WANT_OBJECT:
                return cJSON_IsObject(v);
        case WANT_INTEGER:
                /* JSON has one number type: an integral value is an integer ("5" or "5.0") */
                return cJSON_IsNumber(v) && isfinite(v->valuedouble) && floor(v->valuedouble) == v->valuedouble &&
                       fabs(v->valuedouble) < 9.0e15;
        }
        return false;
}

/* Shape check for one field. required_code NULL: optional. Returns false with err set. */
static bool check(const cJSON *obj, const char *key, const char *path, Want w, const char *required_code,
                  const cJSON **ret, EmuError *err) {
        const cJSON *v = field(obj, key);
        if (!v) {
                if (required_code) {
                        emu_error_set(err, 400, required_code, "Missing required parameter: %s", path);
                        return false;
                }
                *ret = NULL;
                return true;
        }
        if (!has_type(v, w)) {
                emu_error_set(err, 400, "ModelArts.6332", "Invalid type of parameter %s: must be %s", path,
                              want_name(w));
                return false;
        }
        *ret = v;
        return true;
}

bool emu_name_ok(const char *s) {
        size_t n = strlen(s);
        if (n < 1 || n > NAME_MAX_CHARS)
                return false;
        for (const char *p = s; *p; p++)
                if (!(isascii((unsigned char) *p) && (isalnum((unsigned char) *p) || *p == '-' || *p == '_')))
                        return false;
        return true;
}

/* Returns NULL when fine, else why not. */
static const char *description_problem(const char *s) {
        ssize_t chars = utf8_length(s, strlen(s));
        if (chars < 0)
                return "is not valid UTF-8";
        if (chars > DESCRIPTION_MAX_CHARS)
                return "is longer than 512 characters";
        if (strpbrk(s, "&<>\"'/"))
                return "contains one of the special characters & < > \" ' /";
        return NULL;
}

static bool list_contains(const char *csv, const char *word) {
        if (!csv)
                return false;
        size_t wn = strlen(word);
        for (const char *p = csv; *p;) {
                size_t n = strcspn(p, ",");
                if (n == wn && strncmp(p, word, n) == 0)
                        return true;
                p += n;
                if (*p == ',')
                        p++;
        }
        return false;
}

/* OBS bucket naming: 3-63 of [a-z0-9.-], starting and ending alphanumeric, no "..",
 * no "-." / ".-", not shaped like an IPv4 address. */
static bool bucket_ok(const char *b, size_t n) {
        if (n < 3 || n > 63)
                return false;
        if (!isalnum((unsigned char) b[0]) || !isalnum((unsigned char) b[n - 1]))
                return false;
        bool all_digits_dots = true;
        for (size_t i = 0; i < n; i++) {
                char c = b[i];
                if (!(islower((unsigned char) c) || isdigit((unsigned char) c) || c == '.' || c == '-'))
                        return false;
                if (c != '.' && !isdigit((unsigned char) c))
                        all_digits_dots = false;
                if (i > 0 && ((c == '.' && (b[i - 1] == '.' || b[i - 1] == '-')) || (c == '-' && b[i - 1] == '.')))
                        return false;
        }
        return !all_digits_dots;
}

/* "bucket/dir/.../" with an optional leading '/'. */
static bool obs_path_check(const char *path, EmuError *err) {
        size_t len = strlen(path);
        if (len == 0) {
                emu_error_set(err, 400, "ModelArts.6317", "OBS storage needs spec.storage.location.path");
                return false;
        }
        if (path[len - 1] != '/') {
                emu_error_set(err, 400, "ModelArts.6318", "OBS path must end with '/': %s", path);
                return false;
        }
        if (len > OBS_PATH_MAX) {
                emu_error_set(err, 400, "ModelArts.6336", "OBS path is longer than %d bytes", OBS_PATH_MAX);
                return false;
        }
        const char *p = path[0] == '/' ? path + 1 : path;
        size_t bn = strcspn(p, "/");
        if (!bucket_ok(p, bn)) {
                emu_error_set(err, 400, "ModelArts.6336", "Invalid OBS bucket name in path: %s", path);
                return false;
        }
        const char *rest = p + bn + 1; /* p[bn] is '/', the path ends with one */
        if (!*rest) {
                emu_error_set(err, 400, "ModelArts.6358", "OBS path must not be a bucket root: %s", path);
                return false;
        }
        for (const char *q = rest; *q; q++) {
                if ((unsigned char) *q < 0x20 || *q == 0x7f || *q == '\\' || (*q == '/' && q[1] == '/') ||
                    (*q == '/' && q == rest)) {
                        emu_error_set(err, 400, "ModelArts.6336", "Invalid OBS path: %s", path);
                        return false;
                }
        }
        if (utf8_length(rest, strlen(rest)) < 0) {
                emu_error_set(err, 400, "ModelArts.6336", "Invalid OBS path: not UTF-8");
                return false;
        }
        return true;
}

int emu_validate_create(const cJSON *body, const ValidateOptions *o, CreateRequest **ret, EmuError *err) {
        if (!cJSON_IsObject(body)) {
                emu_error_set(err, 400, "ModelArts.6332", "The request body must be a JSON object");
                return -EINVAL;
        }

        /* 1. shape */
        const cJSON *name, *profile, *desc, *flavor, *spec, *storage, *type, *location, *path, *size, *ann,
                *ws, *ws_id = NULL;
        if (!check(body, "name", "name", WANT_STRING, "ModelArts.6335", &name, err) ||
            !check(body, "profile_id", "profile_id", WANT_STRING, "ModelArts.6335", &profile, err) ||
            !check(body, "description", "description", WANT_STRING, NULL, &desc, err) ||
            !check(body, "flavor", "flavor", WANT_STRING, "ModelArts.6335", &flavor, err) ||
            !check(body, "spec", "spec", WANT_OBJECT, "ModelArts.6335", &spec, err) ||
            !check(spec, "storage", "spec.storage", WANT_OBJECT, "ModelArts.6316", &storage, err) ||
            !check(storage, "type", "spec.storage.type", WANT_STRING, "ModelArts.6335", &type, err) ||
            !check(storage, "location", "spec.storage.location", WANT_OBJECT, NULL, &location, err) ||
            !check(location, "path", "spec.storage.location.path", WANT_STRING, NULL, &path, err) ||
            !check(location, "volume_size", "spec.storage.location.volume_size", WANT_INTEGER, NULL, &size, err) ||
            !check(spec, "annotations", "spec.annotations", WANT_OBJECT, NULL, &ann, err) ||
            !check(body, "workspace", "workspace", WANT_OBJECT, NULL, &ws, err) ||
            (ws && !check(ws, "id", "workspace.id", WANT_STRING, NULL, &ws_id, err)))
                return -EINVAL;

        /* 2. values */
        if (!emu_name_ok(name->valuestring)) {
                emu_error_set(err, 400, "ModelArts.6334",
                              "Invalid name: 1 to 64 characters, only letters, digits, '-' and '_'");
                return -EINVAL;
        }
        if (desc) {
                const char *why = description_problem(desc->valuestring);
                if (why) {
                        emu_error_set(err, 400, "ModelArts.6334", "Invalid description: it %s", why);
                        return -EINVAL;
                }
        }
        EmuKind pkind, fkind;
        if (!emu_catalog_lookup(o->profiles, true, profile->valuestring, &pkind)) {
                emu_error_set(err, 400, "ModelArts.6336", "Invalid profile_id: %s is not available in this region",
                              profile->valuestring);
                return -EINVAL;
        }
        if (!emu_catalog_lookup(o->flavors, false, flavor->valuestring, &fkind)) {
                emu_error_set(err, 400, "ModelArts.6323", "Flavor %s is not supported", flavor->valuestring);
                return -EINVAL;
        }
        if (pkind != KIND_ANY && fkind != KIND_ANY && pkind != fkind) {
                emu_error_set(err, 400, "ModelArts.6330", "Profile %s (%s) does not match flavor %s (%s)",
                              profile->valuestring, emu_kind_name(pkind), flavor->valuestring,
                              emu_kind_name(fkind));
                return -EINVAL;
        }
        if (!o->grant_gpu && in_list(flavor->valuestring, permission_flavors, ELEMENTSOF(permission_flavors))) {
                emu_error_set(err, 400, "ModelArts.6328", "No permission to use flavor %s", flavor->valuestring);
                return -EINVAL;
        }
        if (list_contains(o->sold_out, flavor->valuestring)) {
                emu_error_set(err, 400, "ModelArts.6329", "Flavor %s is sold out", flavor->valuestring);
                return -EINVAL;
        }
        bool obs = streq(type->valuestring, "obs"), evs = streq(type->valuestring, "evs");
        if (!obs && !evs) {
                emu_error_set(err, 400, "ModelArts.6336", "Invalid spec.storage.type: must be obs or evs");
                return -EINVAL;
        }
        int64_t volume = EVS_DEFAULT_GB;
        if (obs) {
                if (!path) {
                        emu_error_set(err, 400, "ModelArts.6317", "OBS storage needs spec.storage.location.path");
                        return -EINVAL;
                }
                if (!obs_path_check(path->valuestring, err))
                        return -EINVAL;
        } else if (size) {
                /* compare as a double: 1e300 must not wrap into range through a cast */
                if (size->valuedouble < EVS_MIN_GB || size->valuedouble > EVS_MAX_GB) {
                        emu_error_set(err, 400, "ModelArts.6331", "EVS volume_size must be 5 to 4096 GB");
                        return -EINVAL;
                }
                volume = (int64_t) size->valuedouble;
        }

        _cleanup_(emu_create_request_freep) CreateRequest *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->name = strdup(name->valuestring);
        c->description = strdup(desc ? desc->valuestring : "");
        c->profile_id = strdup(profile->valuestring);
        c->flavor = strdup(flavor->valuestring);
        c->workspace_id = strdup(ws_id ? ws_id->valuestring : "0");
        c->storage_type = strdup(type->valuestring);
        c->obs_path = obs ? strdup(path->valuestring) : NULL;
        c->volume_size = evs ? volume : 0;
        c->annotations = ann ? cJSON_Duplicate(ann, true) : NULL;
        if (!c->name || !c->description || !c->profile_id || !c->flavor || !c->workspace_id || !c->storage_type ||
            (obs && !c->obs_path) || (ann && !c->annotations))
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}
