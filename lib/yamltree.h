/* A bounded YAML loader: libyaml's event API into a small tree of scalars, mappings
 * and sequences, every node with its 1-based line and column. Used for manifests and
 * for the config file.
 *
 * Why not libyaml's document API: it expands nothing dangerous either, but it keeps no
 * limits and loses whether a scalar was quoted. Here the limits of lib/limits.h are
 * enforced while the events arrive, so hostile input stops early.
 *
 * Refused, each with a positioned diagnostic: libyaml syntax errors, invalid UTF-8 and
 * NUL bytes (checked before parsing), anchors and aliases (alias bombs), duplicate keys,
 * non-scalar keys, nesting deeper than YAML_MAX_DEPTH, more than MANIFEST_MAX_DOCUMENTS
 * documents, a document of more than
 * MANIFEST_MAX_DOCUMENT_NODES nodes, scalars over YAML_MAX_SCALAR_LENGTH bytes, more than
 * YAML_MAX_COLLECTION_ITEMS entries in one collection, tags other than the core ones.
 *
 * Scalar typing follows the YAML 1.2 core schema, for plain (unquoted) scalars only:
 *   null:  ~  null  Null  NULL  and the empty plain scalar ("key:" with no value)
 *   bool:  true True TRUE false False FALSE   (YAML 1.1's yes/no/on/off are strings)
 *   int:   [-+]?[0-9]+   0o[0-7]+   0x[0-9a-fA-F]+
 *   float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?  [-+]?\.inf  \.nan
 *   everything else: string.
 * Quoted ('5', "5") and block (|, >) scalars are always strings: `5` is an integer but
 * `"5"` is a string. The core tags override: !!str 5 is a string; !!int "5" an integer
 * (a value that does not match the tag's form is an error).
 *
 * Documents: a document whose whole content is empty (e.g. a trailing "---") is skipped
 * silently, as kubectl does. A document with a problem is still returned, marked, so
 * callers can count it; documents completed before a syntax error are returned too, but
 * a syntax error ends the stream (libyaml cannot resynchronise), and so does reaching
 * MANIFEST_MAX_ERRORS_PER_FILE errors in diags from this file (the callback's count too:
 * one more error says so, and the document being read is dropped). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "macro.h"

typedef enum YamlKind {
        YAML_KIND_NULL,
        YAML_KIND_BOOL,
        YAML_KIND_INT,
        YAML_KIND_FLOAT,
        YAML_KIND_STRING,
        YAML_KIND_MAPPING,
        YAML_KIND_SEQUENCE,
} YamlKind;

typedef struct YamlNode YamlNode;

typedef struct YamlPair {
        YamlNode *key;   /* always a scalar */
        YamlNode *value;
} YamlPair;

struct YamlNode {
        YamlKind kind;
        unsigned line, column;  /* 1-based, where the node starts */

        /* scalars (kind NULL..STRING): the text as written, NUL-terminated; never
         * contains a NUL byte (refused) */
        char *scalar;
        size_t length;
        bool quoted;            /* not a plain scalar: quoted or block style */

        YamlPair *pairs;        /* mapping, in document order, keys unique */
        size_t n_pairs;
        YamlNode **items;       /* sequence */
        size_t n_items;
};

typedef struct YamlDocument {
        YamlNode *root;         /* NULL when the document could not be loaded */
        unsigned line, column;  /* the document's start ("---" or its first token) */
        size_t n_errors;        /* loader errors inside this document */
        bool complete;          /* root holds the whole document: validation may run on it
                                 * (false: a limit, alias, tag or syntax error cut it short) */
} YamlDocument;

typedef struct YamlStream {
        YamlDocument *documents;
        size_t n_documents;
        size_t n_errors;        /* all loader errors, including stream-level ones */
        bool too_many_errors;   /* MANIFEST_MAX_ERRORS_PER_FILE reached: loading stopped there */
} YamlStream;

/* Load the len bytes at buf (need not be NUL-terminated). Problems become diagnostics
 * in *diags under the name file. Returns 0 and *ret (even when the input was refused:
 * then it has fewer documents and n_errors > 0), or -ENOMEM. */
int yaml_tree_load(const char *file, const char *buf, size_t len, Diags *diags, YamlStream **ret);
/* The same, handing each document to cb as soon as it is read (complete or cut short),
 * then freeing its tree: the stream returned keeps every document's position and
 * counts, but no root. Memory is then one document's tree, not the whole file's
 * (256 documents of 64 KiB of "[1,1,...]" make ~70 MB of nodes). A negative return
 * from cb ends the load with it. */
typedef int (*yaml_document_cb)(const YamlDocument *doc, void *userdata);
int yaml_tree_load_each(const char *file, const char *buf, size_t len, Diags *diags, yaml_document_cb cb,
                        void *userdata, YamlStream **ret);

YamlStream *yaml_stream_free(YamlStream *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(YamlStream *, yaml_stream_free);
YamlNode *yaml_node_free(YamlNode *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(YamlNode *, yaml_node_free);

/* Check that buf is valid UTF-8 without NUL bytes. On the first bad byte, returns
 * -EILSEQ (invalid UTF-8) or -EBADMSG (NUL) and its 1-based line and column (columns
 * count characters, as libyaml's do) and byte offset (ret_offset may be NULL). 0 when
 * the text is clean. */
int yaml_check_text(const char *buf, size_t len, unsigned *ret_line, unsigned *ret_column,
                    size_t *ret_offset);

/* 1-based line and column (in characters) of byte offset in buf. */
void yaml_offset_position(const char *buf, size_t len, size_t offset, unsigned *ret_line,
                          unsigned *ret_column);

/* The value for key in a mapping node, or NULL (also when map is not a mapping). */
const YamlNode *yaml_mapping_get(const YamlNode *map, const char *key);
const YamlPair *yaml_mapping_get_pair(const YamlNode *map, const char *key);

static inline bool yaml_node_is_scalar(const YamlNode *n) {
        return n && n->kind <= YAML_KIND_STRING;
}

/* The integer value of an INT node, in [min, max]: -EINVAL not an integer, -ERANGE
 * outside the range. */
int yaml_node_int64(const YamlNode *n, int64_t min, int64_t max, int64_t *ret);

/* The value of a BOOL node: -EINVAL for anything else. */
int yaml_node_bool(const YamlNode *n, bool *ret);

/* "a string", "an integer", "a mapping", ... for messages like "expected X, got Y". */
const char *yaml_kind_to_string(YamlKind k);

/* Render a user-controlled string for a one-line message: in single quotes, control
 * characters, quotes and backslashes escaped, cut to about 64 characters with "..."
 * (so a 4 KiB scalar cannot flood a terminal). Writes into buf (size >= 16); returns buf. */
#define YAML_QUOTE_BUF 300
const char *yaml_quote(char *buf, size_t size, const char *s, size_t len);

/* Read a whole regular file of at most max bytes into a NUL-terminated buffer. With
 * AT_FDCWD, path is opened as it is (a config file may be a symlink). With a directory
 * fd, path is resolved beneath it and no symlink is followed anywhere in it (openat2()
 * RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or one component at a time with O_NOFOLLOW where
 * the kernel lacks openat2()): a symlink is -ELOOP, ".." or an absolute path -EXDEV.
 * Never blocks on a FIFO or device: a directory is -EISDIR, any other non-regular file
 * -EINVAL; a file larger than max is -EFBIG; other failures are -errno. Caller frees
 * *ret_buf. */
int yaml_read_file(int dirfd, const char *path, size_t max, char **ret_buf, size_t *ret_len);
