/* NotebookSpec: one validated manifest document, i.e. one desired instance.
 * Fields mirror the ModelArts create body one to one; defaults are
 * filled in by validation, so a spec is always complete and safe to send. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct cJSON cJSON;

typedef enum StorageType {
        STORAGE_OBS,
        STORAGE_EVS,
} StorageType;

/* The envelope's `state:`: what the instance should be doing. Not part of the create
 * body (nor its hash): a change of it is an action on the instance, never a re-create. */
typedef enum DesiredState {
        DESIRED_STATE_ANY,      /* absent: no opinion (ModelArts stops idle notebooks on its
                                 * own; an operator who never asked for running must not
                                 * have them restarted) */
        DESIRED_STATE_RUNNING,
        DESIRED_STATE_STOPPED,
        _DESIRED_STATE_MAX,
} DesiredState;

/* "any", "running", "stopped" (the first is never written in a manifest). */
const char *desired_state_to_string(DesiredState s);

typedef struct Annotation {
        char *key;
        char *value;
} Annotation;

/* Where something stands in its manifest (1-based; line 0 = unknown). */
typedef struct SourcePos {
        unsigned line, column;
} SourcePos;

#define SPEC_HASH_HEX_LEN 64

typedef struct NotebookSpec {
        char *name;
        char *profile_id;
        char *description;      /* NULL when absent (the API default is empty) */
        char *flavor;
        StorageType storage_type;
        char *storage_path;     /* obs only, ends in '/' */
        int64_t volume_size;    /* evs only, GB, defaulted to EVS_VOLUME_DEFAULT_GB */
        bool has_annotations;   /* annotations: present (possibly empty) */
        Annotation *annotations;
        size_t n_annotations;
        char *workspace_id;     /* defaulted to "0" */
        char *pool_id;          /* pool.id: a dedicated resource pool; NULL when absent */
        char *ai_project_id;    /* ai_project.id; NULL when absent */
        DesiredState state;     /* the envelope's state:, DESIRED_STATE_ANY when absent */
        char *tenant;           /* the tenant whose path holds the manifest (tenants:); NULL
                                 * when no tenants are configured */
        /* The SHA-256 spec_hash() gives, kept by spec_seal(): each pass compares every
         * desired spec with its record, and building, printing and hashing a create body
         * 10,000 times was 7% of a converge's CPU (perf). Binary: half the bytes of hex. */
        unsigned char digest[32];
        bool sealed;

        /* owners beyond the first (spec_ref): atomic, the scan thread drops its own while
         * the loop's engine holds another */
        atomic_int extra_refs;

        /* provenance, for diagnostics and the journal */
        char *file;             /* display path of the manifest */
        SourcePos doc_pos;      /* the document's start */
        SourcePos name_pos;     /* the name's value */
} NotebookSpec;

/* A growable list of owned specs. */
typedef struct SpecList {
        NotebookSpec **items;
        size_t n, cap;
} SpecList;

/* Drops one owner; the last frees it. */
NotebookSpec *spec_free(NotebookSpec *s);
/* One more owner of s, which is then freed by the last spec_free: a validated spec is
 * never changed, so the desired set and the engine share one instead of each holding a
 * copy (converge of 10,000 peaked 4 MiB lower, GNU time). Returns s. */
NotebookSpec *spec_ref(const NotebookSpec *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(NotebookSpec *, spec_free);
int spec_dup(const NotebookSpec *s, NotebookSpec **ret);

/* The create call's JSON body for this spec: exactly the API's fields, in the API's
 * documented order, with defaults explicit; pool and ai_project come last and only when
 * given, so the body (and hash) of a spec without them is what it always was. Caller
 * owns *ret (cJSON_Delete). */
int spec_to_create_body(const NotebookSpec *s, cJSON **ret);

/* Lowercase hex SHA-256 of the unformatted create body: two specs with the same hash
 * make the same create call. Used to notice a changed manifest (drift, reset backoff). */
/* The SHA-256 of the create body (hex): the sealed one when spec_seal() ran, else
 * computed now. */
int spec_hash(const NotebookSpec *s, char ret[SPEC_HASH_HEX_LEN + 1]);
/* Compute and keep the hash: call once the spec is complete; it must not change after. */
int spec_seal(NotebookSpec *s);

const char *storage_type_to_string(StorageType t);

int spec_list_append(SpecList *l, NotebookSpec *s); /* takes ownership on success */
void spec_list_clear(SpecList *l);
static inline void spec_list_clearp(SpecList *l) {
        spec_list_clear(l);
}
#define _cleanup_spec_list_ _cleanup_(spec_list_clearp)
