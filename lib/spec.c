#include "spec.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

#include "limits.h"
#include "util.h"

const char *storage_type_to_string(StorageType t) {
        return t == STORAGE_OBS ? "obs" : "evs";
}

const char *desired_state_to_string(DesiredState s) {
        static const char *const table[_DESIRED_STATE_MAX] = {
                [DESIRED_STATE_ANY] = "any",
                [DESIRED_STATE_RUNNING] = "running",
                [DESIRED_STATE_STOPPED] = "stopped",
        };
        return (unsigned) s < _DESIRED_STATE_MAX ? table[s] : "?";
}

NotebookSpec *spec_ref(const NotebookSpec *s) {
        NotebookSpec *m = (NotebookSpec *) (uintptr_t) s;   /* the count is not the spec's value */
        atomic_fetch_add(&m->extra_refs, 1);
        return m;
}

NotebookSpec *spec_free(NotebookSpec *s) {
        if (!s)
                return NULL;
        if (atomic_fetch_sub(&s->extra_refs, 1) > 0)
                return NULL;   /* another owner still has it */
        free(s->name);
        free(s->profile_id);
        free(s->description);
        free(s->flavor);
        free(s->storage_path);
        for (size_t i = 0; i < s->n_annotations; i++) {
                free(s->annotations[i].key);
                free(s->annotations[i].value);
        }
        free(s->annotations);
        free(s->workspace_id);
        free(s->pool_id);
        free(s->ai_project_id);
        free(s->file);
        free(s->tenant);
        free(s);
        return NULL;
}

int spec_dup(const NotebookSpec *s, NotebookSpec **ret) {
        _cleanup_(spec_freep) NotebookSpec *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = *s;
        atomic_init(&c->extra_refs, 0);
        c->name = c->profile_id = c->description = c->flavor = c->storage_path = NULL;
        c->workspace_id = c->pool_id = c->ai_project_id = c->file = c->tenant = NULL;
        c->annotations = NULL;
        c->n_annotations = 0;
        if (!(c->name = xstrdup(s->name)) != !s->name ||
            !(c->profile_id = xstrdup(s->profile_id)) != !s->profile_id ||
            !(c->description = xstrdup(s->description)) != !s->description ||
            !(c->flavor = xstrdup(s->flavor)) != !s->flavor ||
            !(c->storage_path = xstrdup(s->storage_path)) != !s->storage_path ||
            !(c->workspace_id = xstrdup(s->workspace_id)) != !s->workspace_id ||
            !(c->pool_id = xstrdup(s->pool_id)) != !s->pool_id ||
            !(c->ai_project_id = xstrdup(s->ai_project_id)) != !s->ai_project_id ||
            !(c->file = xstrdup(s->file)) != !s->file || !(c->tenant = xstrdup(s->tenant)) != !s->tenant)
                return -ENOMEM;
        if (s->n_annotations > 0) {
                c->annotations = calloc(s->n_annotations, sizeof(Annotation));
                if (!c->annotations)
                        return -ENOMEM;
                for (size_t i = 0; i < s->n_annotations; i++) {
                        c->n_annotations++;
                        c->annotations[i].key = strdup(s->annotations[i].key);
                        c->annotations[i].value = strdup(s->annotations[i].value);
                        if (!c->annotations[i].key || !c->annotations[i].value)
                                return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(c);
        return 0;
}

static void cjson_deletep(cJSON **j) {
        if (*j)
                cJSON_Delete(*j);
}

int spec_to_create_body(const NotebookSpec *s, cJSON **ret) {
        _cleanup_(cjson_deletep) cJSON *body = cJSON_CreateObject();
        if (!body)
                return -ENOMEM;
        /* Order as in the API docs' example; cJSON keeps insertion order, which keeps the
         * body (and so the spec hash) stable. */
        if (!cJSON_AddStringToObject(body, "name", s->name) ||
            !cJSON_AddStringToObject(body, "profile_id", s->profile_id))
                return -ENOMEM;
        if (s->description && !cJSON_AddStringToObject(body, "description", s->description))
                return -ENOMEM;
        if (!cJSON_AddStringToObject(body, "flavor", s->flavor))
                return -ENOMEM;

        cJSON *spec = cJSON_AddObjectToObject(body, "spec");
        cJSON *storage = spec ? cJSON_AddObjectToObject(spec, "storage") : NULL;
        if (!storage || !cJSON_AddStringToObject(storage, "type", storage_type_to_string(s->storage_type)))
                return -ENOMEM;
        cJSON *location = cJSON_AddObjectToObject(storage, "location");
        if (!location)
                return -ENOMEM;
        if (s->storage_type == STORAGE_OBS) {
                if (!cJSON_AddStringToObject(location, "path", strempty(s->storage_path)))
                        return -ENOMEM;
        } else if (!cJSON_AddNumberToObject(location, "volume_size", (double) s->volume_size))
                return -ENOMEM;
        if (s->has_annotations) {
                cJSON *ann = cJSON_AddObjectToObject(spec, "annotations");
                if (!ann)
                        return -ENOMEM;
                for (size_t i = 0; i < s->n_annotations; i++)
                        if (!cJSON_AddStringToObject(ann, s->annotations[i].key, s->annotations[i].value))
                                return -ENOMEM;
        }
        cJSON *ws = cJSON_AddObjectToObject(body, "workspace");
        if (!ws || !cJSON_AddStringToObject(ws, "id", s->workspace_id ? s->workspace_id : "0"))
                return -ENOMEM;
        /* Newer deployments' optional objects, after everything older specs send: a spec
         * without them keeps the body, and so the spec hash recorded for it. */
        if (s->pool_id) {
                cJSON *pool = cJSON_AddObjectToObject(body, "pool");
                if (!pool || !cJSON_AddStringToObject(pool, "id", s->pool_id))
                        return -ENOMEM;
        }
        if (s->ai_project_id) {
                cJSON *proj = cJSON_AddObjectToObject(body, "ai_project");
                if (!proj || !cJSON_AddStringToObject(proj, "id", s->ai_project_id))
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(body);
        return 0;
}

/* The SHA-256 of the create body as sent (cJSON's unformatted print). */
static int spec_digest(const NotebookSpec *s, unsigned char ret[32]) {
        _cleanup_(cjson_deletep) cJSON *body = NULL;
        int r = spec_to_create_body(s, &body);
        if (r < 0)
                return r;
        _cleanup_free_ char *text = cJSON_PrintUnformatted(body);
        if (!text)
                return -ENOMEM;
        unsigned int md_len = 0;
        if (!EVP_Digest(text, strlen(text), ret, &md_len, EVP_sha256(), NULL) || md_len != 32)
                return -EIO;
        return 0;
}

int spec_hash(const NotebookSpec *s, char ret[SPEC_HASH_HEX_LEN + 1]) {
        unsigned char md[32];
        if (s->sealed)
                memcpy(md, s->digest, sizeof(md));
        else {
                int r = spec_digest(s, md);
                if (r < 0)
                        return r;
        }
        hex_lower(md, sizeof(md), ret);
        return 0;
}

int spec_seal(NotebookSpec *s) {
        s->sealed = false;
        int r = spec_digest(s, s->digest);
        if (r < 0)
                return r;
        s->sealed = true;
        return 0;
}

int spec_list_append(SpecList *l, NotebookSpec *s) {
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                NotebookSpec **items = realloc(l->items, cap * sizeof(*items));
                if (!items)
                        return -ENOMEM;
                l->items = items;
                l->cap = cap;
        }
        l->items[l->n++] = s;
        return 0;
}

void spec_list_clear(SpecList *l) {
        for (size_t i = 0; i < l->n; i++)
                spec_free(l->items[i]);
        free(l->items);
        *l = (SpecList) { 0 };
}
