#include "instance.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "util.h"

void remote_instance_done(RemoteInstance *i) {
        if (!i)
                return;
        free(i->id);
        free(i->name);
        free(i->status);
        free(i->description);
        free(i->flavor);
        free(i->profile_id);
        free(i->workspace_id);
        free(i->failed_reason);
        *i = (RemoteInstance) { 0 };
}

int remote_instance_copy(const RemoteInstance *src, RemoteInstance *dst) {
        RemoteInstance c = {
                .id = xstrdup(src->id),
                .name = xstrdup(src->name),
                .status = xstrdup(src->status),
                .description = xstrdup(src->description),
                .flavor = xstrdup(src->flavor),
                .profile_id = xstrdup(src->profile_id),
                .workspace_id = xstrdup(src->workspace_id),
                .failed_reason = xstrdup(src->failed_reason),
                .creation_timestamp_ms = src->creation_timestamp_ms,
                .latest_update_timestamp_ms = src->latest_update_timestamp_ms,
        };
        if (!c.id != !src->id || !c.name != !src->name || !c.status != !src->status ||
            !c.description != !src->description || !c.flavor != !src->flavor ||
            !c.profile_id != !src->profile_id || !c.workspace_id != !src->workspace_id ||
            !c.failed_reason != !src->failed_reason) {
                remote_instance_done(&c);
                return -ENOMEM;
        }
        *dst = c;
        return 0;
}

int remote_instance_list_append(RemoteInstanceList *l, RemoteInstance *i) {
        if (i->id) {
                if (!l->by_id && hashmap_new(&l->by_id) < 0)
                        return -ENOMEM;
                /* the first item with an id is the one find_id() answers */
                if (!hashmap_contains(l->by_id, i->id) &&
                    hashmap_put(l->by_id, i->id, (void *) (uintptr_t) (l->n + 1)) < 0)
                        return -ENOMEM;
        }
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                RemoteInstance *items = realloc(l->items, cap * sizeof(*items));
                if (!items)
                        return -ENOMEM;
                l->items = items;
                l->cap = cap;
        }
        l->items[l->n++] = *i;
        *i = (RemoteInstance) { 0 };
        return 0;
}

void remote_instance_list_clear(RemoteInstanceList *l) {
        for (size_t i = 0; i < l->n; i++)
                remote_instance_done(&l->items[i]);
        free(l->items);
        hashmap_free(l->by_id);
        *l = (RemoteInstanceList) { 0 };
}

const RemoteInstance *remote_instance_list_find_id(const RemoteInstanceList *l, const char *id) {
        if (!id || !l->by_id)
                return NULL;
        uintptr_t k = (uintptr_t) hashmap_get(l->by_id, id);
        return k > 0 && k <= l->n ? &l->items[k - 1] : NULL;
}

int remote_instance_list_merge(RemoteInstanceList *l, const RemoteInstanceList *from) {
        int r = 0;
        for (size_t i = 0; i < from->n && r >= 0; i++) {
                RemoteInstance copy;
                if (remote_instance_list_find_id(l, from->items[i].id))
                        continue;
                r = remote_instance_copy(&from->items[i], &copy);
                if (r >= 0 && (r = remote_instance_list_append(l, &copy)) < 0)
                        remote_instance_done(&copy);
        }
        return r;
}

InstanceStatusClass instance_status_class(const char *status) {
        static const struct {
                const char *status;
                InstanceStatusClass class;
        } table[] = {
                { "CREATE_QUEUING", STATUS_CLASS_PENDING }, { "CREATING", STATUS_CLASS_PENDING },
                { "START_QUEUING", STATUS_CLASS_PENDING },  { "READY_TO_START", STATUS_CLASS_PENDING },
                { "STARTING", STATUS_CLASS_PENDING },       { "RESTARTING", STATUS_CLASS_PENDING },
                { "RESIZING", STATUS_CLASS_PENDING },       { "STOPPING", STATUS_CLASS_PENDING },
                { "INIT", STATUS_CLASS_PENDING },           { "RUNNING", STATUS_CLASS_RUNNING },
                { "CREATE_FAILED", STATUS_CLASS_FAILED },   { "START_FAILED", STATUS_CLASS_FAILED },
                { "RESIZE_FAILED", STATUS_CLASS_FAILED },   { "UNAVAILABLE", STATUS_CLASS_FAILED },
                { "ERROR", STATUS_CLASS_FAILED },           { "STOPPED", STATUS_CLASS_STOPPED },
                { "DELETED", STATUS_CLASS_GONE },
        };
        if (!status)
                return STATUS_CLASS_UNKNOWN;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(status, table[i].status))
                        return table[i].class;
        return STATUS_CLASS_UNKNOWN;
}
