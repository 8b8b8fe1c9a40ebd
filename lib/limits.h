/* Every limit notebookd enforces, in one place, each with what it protects.
 * Hostile or broken input hits one of these and gets a clear error instead of
 * exhausting the daemon. Change a value here, and the tests that pin it. */
#pragma once

/* ---- manifests ---- */
/* A manifest is a few hundred bytes; 1 MiB bounds the memory one file can take. */
#define MANIFEST_MAX_FILE_SIZE (1024 * 1024)
/* Documents ("---" separated) in one file: bounds work per file. */
#define MANIFEST_MAX_DOCUMENTS 256
/* Files under the manifests tree: bounds a scan of a wrong directory (say, /). */
#define MANIFEST_MAX_FILES 10000
/* Directory depth under the manifests root: bounds recursion. */
#define MANIFEST_MAX_DIR_DEPTH 16
/* Nesting of YAML collections: the deepest valid manifest is 4 (spec.storage.location). */
#define YAML_MAX_DEPTH 8
/* One scalar: the longest valid field is a 512-character description (<= 2 KiB UTF-8). */
#define YAML_MAX_SCALAR_LENGTH 4096
/* Keys in one mapping / items in one sequence: bounds a document's node count. */
#define YAML_MAX_COLLECTION_ITEMS 1024

/* ---- the create call's rules (from modelarts-api.md) ---- */
#define NAME_MAX_LENGTH 64
#define DESCRIPTION_MAX_CHARS 512
#define EVS_VOLUME_MIN_GB 5
#define EVS_VOLUME_MAX_GB 4096
#define EVS_VOLUME_DEFAULT_GB 5
