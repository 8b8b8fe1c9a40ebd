/* RemoteInstance: what the cloud says about one notebook instance (create/get
 * responses, list items). Parsed defensively by the API client: every field may be
 * missing (NULL / 0); unknown fields are ignored. Consumed by the planner. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct RemoteInstance {
        char *id;
        char *name;
        char *status;          /* CREATING, RUNNING, CREATE_FAILED, ... */
        char *description;
        char *flavor;
        char *profile_id;      /* profile.id */
        char *workspace_id;    /* workspace.id */
        char *failed_reason;   /* spec.failed_reasons.message when present */
        int64_t creation_timestamp_ms;
        int64_t latest_update_timestamp_ms;
} RemoteInstance;

typedef struct Hashmap Hashmap;

typedef struct RemoteInstanceList {
        RemoteInstance *items;
        size_t n, cap;
        Hashmap *by_id;   /* id -> index + 1 of its first item: a listing of 100,000 checks
                           * each new item against the ones before, so no linear find */
} RemoteInstanceList;

void remote_instance_done(RemoteInstance *i);
int remote_instance_copy(const RemoteInstance *src, RemoteInstance *dst);
int remote_instance_list_append(RemoteInstanceList *l, RemoteInstance *i); /* moves *i in */
void remote_instance_list_clear(RemoteInstanceList *l);
const RemoteInstance *remote_instance_list_find_id(const RemoteInstanceList *l, const char *id);
/* Copy into l each instance of from whose id l does not hold yet: listings are merged by
 * id, since a deployment that ignores workspace_id answers every listing with every
 * instance. Negative errno (memory) with what was merged so far kept. */
int remote_instance_list_merge(RemoteInstanceList *l, const RemoteInstanceList *from);

/* Status classes: the API's statuses, grouped by what the engine does with them. */
typedef enum InstanceStatusClass {
        STATUS_CLASS_PENDING,   /* CREATE_QUEUING, CREATING, START_QUEUING, READY_TO_START,
                                   STARTING, RESTARTING, RESIZING, STOPPING */
        STATUS_CLASS_RUNNING,   /* RUNNING */
        STATUS_CLASS_FAILED,    /* CREATE_FAILED, START_FAILED, RESIZE_FAILED, UNAVAILABLE, ERROR */
        STATUS_CLASS_STOPPED,   /* STOPPED */
        STATUS_CLASS_GONE,      /* DELETED */
        STATUS_CLASS_UNKNOWN,   /* UNKNOWN, NULL, anything new */
} InstanceStatusClass;
InstanceStatusClass instance_status_class(const char *status);
