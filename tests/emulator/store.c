/* Instances in memory. Status changes are lazy: an instance carries at most one pending
 * transition (CREATING -> RUNNING at t) that is applied whenever it is looked at, so no
 * timers exist and a paused emulator has nothing to catch up on.
 *
 * Invariant: by_name holds exactly the instances whose status is not DELETED (names are
 * unique among those; ModelArts.6301); by_id holds every instance; all[] keeps creation
 * order. */
#include "emulator.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "util.h"

struct Store {
        Instance **all;
        size_t n, cap;
        EmuMap *by_id;
        EmuMap *by_name;
};

Instance *emu_instance_free(Instance *inst) {
        if (!inst)
                return NULL;
        free(inst->name);
        free(inst->description);
        free(inst->profile_id);
        free(inst->flavor);
        free(inst->workspace_id);
        free(inst->storage_type);
        free(inst->obs_path);
        cJSON_Delete(inst->annotations);
        free(inst->text);
        free(inst);
        return NULL;
}

void emu_instance_changed(Instance *inst) {
        free(inst->text);
        inst->text = NULL;
        inst->text_len = 0;
}

const char *emu_instance_text(Instance *inst, size_t *ret_len) {
        if (!inst->text) {
                cJSON *j = emu_instance_to_json(inst);
                inst->text = j ? cJSON_PrintUnformatted(j) : NULL;
                cJSON_Delete(j);
                if (!inst->text)
                        return NULL;
                inst->text_len = strlen(inst->text);
        }
        *ret_len = inst->text_len;
        return inst->text;
}

int emu_store_new(Store **ret) {
        Store *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        if (emu_map_new(&s->by_id) < 0 || emu_map_new(&s->by_name) < 0) {
                emu_map_free(s->by_id);
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

void emu_store_clear(Store *s) {
        emu_map_clear(s->by_id);
        emu_map_clear(s->by_name);
        for (size_t i = 0; i < s->n; i++)
                emu_instance_free(s->all[i]);
        s->n = 0;
}

Store *emu_store_free(Store *s) {
        if (!s)
                return NULL;
        emu_store_clear(s);
        emu_map_free(s->by_id);
        emu_map_free(s->by_name);
        free(s->all);
        free(s);
        return NULL;
}

Instance *emu_store_find_id(Store *s, const char *id) {
        return emu_map_get(s->by_id, id);
}

Instance *emu_store_find_name(Store *s, const char *name) {
        return emu_map_get(s->by_name, name);
}

size_t emu_store_count_live(const Store *s) {
        return emu_map_size(s->by_name);
}

int emu_store_add(Store *s, Instance *inst) {
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 64;
                Instance **a = reallocarray(s->all, cap, sizeof(*a));
                if (!a) {
                        emu_instance_free(inst);
                        return -ENOMEM;
                }
                s->all = a;
                s->cap = cap;
        }
        if (emu_map_put(s->by_id, inst->id, inst) < 0) {
                emu_instance_free(inst);
                return -ENOMEM;
        }
        if (!streq(inst->status, "DELETED") && emu_map_put(s->by_name, inst->name, inst) < 0) {
                emu_map_remove(s->by_id, inst->id);
                emu_instance_free(inst);
                return -ENOMEM;
        }
        s->all[s->n++] = inst;
        return 0;
}

void emu_store_remove(Store *s, Instance *inst) {
        emu_map_remove(s->by_id, inst->id);
        if (emu_map_get(s->by_name, inst->name) == inst)
                emu_map_remove(s->by_name, inst->name);
        for (size_t i = 0; i < s->n; i++)
                if (s->all[i] == inst) {
                        memmove(&s->all[i], &s->all[i + 1], (s->n - i - 1) * sizeof(s->all[0]));
                        s->n--;
                        break;
                }
        emu_instance_free(inst);
}

void emu_store_mark_deleted(Store *s, Instance *inst) {
        if (emu_map_get(s->by_name, inst->name) == inst)
                emu_map_remove(s->by_name, inst->name);
        inst->status = "DELETED";
        inst->next_status = NULL;
        inst->updated_ms = now_realtime_ms();
        emu_instance_changed(inst);
}

void emu_instance_refresh(Instance *inst, int64_t now_mono) {
        if (inst->next_status && now_mono >= inst->next_at_mono) {
                inst->status = inst->next_status;
                inst->next_status = NULL;
                inst->updated_ms = inst->next_at_real;
                emu_instance_changed(inst);
        }
}

void emu_instance_set_status(Instance *inst, const char *status, const char *next, int64_t delay_ms) {
        int64_t now_real = now_realtime_ms();
        inst->status = status;
        inst->updated_ms = now_real;
        inst->next_status = next;
        inst->next_at_mono = now_monotonic_ms() + delay_ms;
        inst->next_at_real = now_real + delay_ms;
        emu_instance_changed(inst);
}

static char *ms_string(int64_t ms) {
        return xasprintf("%" PRId64, ms);
}

/* The profile block the cloud returns: fixed per profile id. */
static cJSON *profile_json(const char *profile_id) {
        cJSON *p = cJSON_CreateObject();
        if (!p)
                return NULL;
        bool gpu = strstr(profile_id, "gpu") != NULL, ascend = strstr(profile_id, "Ascend") != NULL;
        bool py2 = strncmp(profile_id, "Python2", 7) == 0;
        cJSON_AddStringToObject(p, "id", profile_id);
        cJSON_AddStringToObject(p, "name", profile_id);
        cJSON_AddStringToObject(p, "description", gpu      ? "GPU notebook environment"
                                                  : ascend ? "Ascend notebook environment"
                                                           : "CPU notebook environment");
        cJSON_AddStringToObject(p, "de_type", "Notebook");
        cJSON *prov = cJSON_AddObjectToObject(p, "provision");
        if (prov) {
                cJSON_AddStringToObject(prov, "type", "Docker");
                cJSON *spec = cJSON_AddObjectToObject(prov, "spec");
                if (spec) {
                        cJSON_AddStringToObject(spec, "engine", "CCE");
                        cJSON *params = cJSON_AddObjectToObject(spec, "params");
                        if (params) {
                                cJSON_AddStringToObject(params, "namespace", "modelarts");
                                cJSON_AddStringToObject(params, "image_name",
                                                        py2 ? (gpu ? "notebook-py2-gpu" : "notebook-py2")
                                                            : (gpu ? "notebook-py3-gpu" : "notebook-py3"));
                                cJSON_AddStringToObject(params, "image_tag", "1.1.0");
                                cJSON_AddNullToObject(params, "annotations");
                        }
                }
                cJSON_AddNullToObject(prov, "annotations");
        }
        return p;
}

cJSON *emu_instance_to_json(const Instance *inst) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
                return NULL;
        _cleanup_free_ char *created = ms_string(inst->created_ms), *updated = ms_string(inst->updated_ms);
        cJSON_AddStringToObject(o, "id", inst->id);
        cJSON_AddStringToObject(o, "name", inst->name);
        cJSON_AddStringToObject(o, "description", inst->description);
        cJSON_AddStringToObject(o, "status", inst->status);
        cJSON_AddStringToObject(o, "creation_timestamp", strempty(created));
        cJSON_AddStringToObject(o, "latest_update_timestamp", strempty(updated));
        cJSON_AddItemToObject(o, "profile", profile_json(inst->profile_id));
        cJSON_AddStringToObject(o, "flavor", inst->flavor);
        cJSON *spec = cJSON_AddObjectToObject(o, "spec");
        if (spec) {
                cJSON *storage = cJSON_AddObjectToObject(spec, "storage");
                if (storage) {
                        cJSON_AddStringToObject(storage, "type", inst->storage_type);
                        cJSON *loc = cJSON_AddObjectToObject(storage, "location");
                        if (loc) {
                                if (inst->obs_path)
                                        cJSON_AddStringToObject(loc, "path", inst->obs_path);
                                else
                                        cJSON_AddNumberToObject(loc, "volume_size", (double) inst->volume_size);
                        }
                }
                if (inst->annotations)
                        cJSON_AddItemToObject(spec, "annotations", cJSON_Duplicate(inst->annotations, true));
                else
                        cJSON_AddNullToObject(spec, "annotations");
                /* a newer-deployment field: clients must ignore what they don't know */
                if (inst->failed_create && streq(inst->status, "CREATE_FAILED")) {
                        cJSON *fr = cJSON_AddObjectToObject(spec, "failed_reasons");
                        if (fr) {
                                cJSON_AddStringToObject(fr, "code", "ModelArts.6360");
                                cJSON_AddStringToObject(fr, "message", "Insufficient backend resources");
                                cJSON_AddStringToObject(fr, "detail", "emulated failure (--fail-pattern)");
                        }
                }
        }
        cJSON *ws = cJSON_AddObjectToObject(o, "workspace");
        if (ws)
                cJSON_AddStringToObject(ws, "id", inst->workspace_id);
        return o;
}

static int cmp_name(const void *a, const void *b) {
        const Instance *x = *(Instance *const *) a, *y = *(Instance *const *) b;
        int c = strcmp(x->name, y->name);
        if (c)
                return c;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_time(const void *a, const void *b) {
        const Instance *x = *(Instance *const *) a, *y = *(Instance *const *) b;
        if (x->created_ms != y->created_ms)
                return x->created_ms < y->created_ms ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A list answer is assembled from each instance's cached rendering: the pieces are
 * cJSON's own output, so the result is valid JSON, and a list of a hundred instances
 * costs a hundred memcpy instead of a hundred cJSON trees (the benchmark's hot path). */
char *emu_store_list_text(Store *s, const ListQuery *q, int64_t now_mono) {
        _cleanup_free_ Instance **match = s->n ? calloc(s->n, sizeof(*match)) : NULL;
        if (s->n && !match)
                return NULL;
        size_t n = 0;
        for (size_t i = 0; i < s->n; i++) {
                Instance *inst = s->all[i];
                emu_instance_refresh(inst, now_mono);
                if (q->status && !streq(inst->status, q->status))
                        continue;
                if (!streq(inst->workspace_id, q->workspace_id))
                        continue;
                if (q->show_self && inst->other_owner)
                        continue;
                match[n++] = inst;
        }
        if (n > 1)
                qsort(match, n, sizeof(*match), q->sort_by_time ? cmp_time : cmp_name);

        size_t start = q->offset < 0 ? 0 : (size_t) q->offset, end = n;
        if (start > n)
                start = n;
        if (q->limit > 0 && (uint64_t) q->limit < end - start)
                end = start + (size_t) q->limit;

        char head[64];
        int hn = snprintf(head, sizeof(head),
                          q->total_count_string ? "{\"total_count\":\"%zu\",\"instances\":["
                                                : "{\"total_count\":%zu,\"instances\":[",
                          n);
        size_t total = (size_t) hn + 3;
        for (size_t k = start; k < end; k++) {
                size_t idx = q->descending ? n - 1 - k : k, len;
                if (!emu_instance_text(match[idx], &len))
                        return NULL;
                total += len + 1;
        }
        char *out = malloc(total), *p = out;
        if (!out)
                return NULL;
        p = mempcpy(p, head, (size_t) hn);
        for (size_t k = start; k < end; k++) {
                size_t idx = q->descending ? n - 1 - k : k;
                if (k > start)
                        *p++ = ',';
                p = mempcpy(p, match[idx]->text, match[idx]->text_len);
        }
        p = mempcpy(p, "]}", 3); /* with the NUL */
        return out;
}

cJSON *emu_store_status_counts(Store *s, int64_t now_mono) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
                return NULL;
        for (size_t i = 0; i < s->n; i++) {
                Instance *inst = s->all[i];
                emu_instance_refresh(inst, now_mono);
                cJSON *c = cJSON_GetObjectItemCaseSensitive(o, inst->status);
                if (c)
                        cJSON_SetNumberValue(c, c->valuedouble + 1);
                else
                        cJSON_AddNumberToObject(o, inst->status, 1);
        }
        return o;
}
