#include "yamltree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <yaml.h>

#include "hashmap.h"
#include "limits.h"
#include "util.h"

#define CORE_TAG_PREFIX "tag:yaml.org,2002:"

YamlNode *yaml_node_free(YamlNode *n) {
        if (!n)
                return NULL;
        /* Recursion is bounded: the loader never builds deeper than YAML_MAX_DEPTH. */
        for (size_t i = 0; i < n->n_pairs; i++) {
                yaml_node_free(n->pairs[i].key);
                yaml_node_free(n->pairs[i].value);
        }
        free(n->pairs);
        for (size_t i = 0; i < n->n_items; i++)
                yaml_node_free(n->items[i]);
        free(n->items);
        free(n->scalar);
        free(n);
        return NULL;
}

YamlStream *yaml_stream_free(YamlStream *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_documents; i++)
                yaml_node_free(s->documents[i].root);
        free(s->documents);
        free(s);
        return NULL;
}

/* ---- text checks ---- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is not one. */
static size_t utf8_sequence(const unsigned char *p, size_t avail) {
        unsigned c = p[0];
        size_t k;
        uint32_t cp;
        if (c < 0x80)
                return 1;
        else if ((c & 0xE0) == 0xC0)
                k = 1, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0)
                k = 2, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0)
                k = 3, cp = c & 0x07;
        else
                return 0;
        if (avail < k + 1)
                return 0;
        for (size_t i = 1; i <= k; i++) {
                if ((p[i] & 0xC0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3F);
        }
        static const uint32_t min_cp[4] = { 0, 0x80, 0x800, 0x10000 };
        if (cp < min_cp[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        return k + 1;
}

/* Walks characters, tracking line and column the way libyaml counts them: a column is a
 * character; "\r\n", "\r" and "\n" end a line. A leading BOM takes no column. */
typedef struct TextPos {
        size_t offset;
        unsigned line, column;
} TextPos;

static void text_pos_start(const char *buf, size_t len, TextPos *p) {
        *p = (TextPos) { .offset = 0, .line = 1, .column = 1 };
        if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
                p->offset = 3;
}

/* Advance over one character; returns false at a bad byte (NUL or invalid UTF-8). */
static bool text_pos_step(const char *buf, size_t len, TextPos *p) {
        const unsigned char *s = (const unsigned char *) buf + p->offset;
        size_t avail = len - p->offset;
        if (s[0] == 0)
                return false;
        size_t k = utf8_sequence(s, avail);
        if (k == 0)
                return false;
        if (s[0] == '\n' || (s[0] == '\r' && (avail < 2 || s[1] != '\n'))) {
                p->line++;
                p->column = 1;
        } else if (s[0] != '\r')
                p->column++;
        p->offset += k;
        return true;
}

int yaml_check_text(const char *buf, size_t len, unsigned *ret_line, unsigned *ret_column,
                    size_t *ret_offset) {
        TextPos p;
        text_pos_start(buf, len, &p);
        while (p.offset < len)
                if (!text_pos_step(buf, len, &p)) {
                        *ret_line = p.line;
                        *ret_column = p.column;
                        if (ret_offset)
                                *ret_offset = p.offset;
                        return buf[p.offset] == 0 ? -EBADMSG : -EILSEQ;
                }
        return 0;
}

void yaml_offset_position(const char *buf, size_t len, size_t offset, unsigned *ret_line,
                          unsigned *ret_column) {
        TextPos p;
        text_pos_start(buf, len, &p);
        if (offset > len)
                offset = len;
        while (p.offset < offset) {
                if (!text_pos_step(buf, len, &p)) {
                        /* a bad byte before offset: count it as one column and go on */
                        p.offset++;
                        p.column++;
                }
        }
        *ret_line = p.line;
        *ret_column = p.column;
}

/* ---- messages ---- */

const char *yaml_quote(char *buf, size_t size, const char *s, size_t len) {
        static const char hex[] = "0123456789abcdef";
        /* Room for the worst escape (8, a C1 control), the "..." and the closing quote + NUL. */
        size_t limit = size < 16 ? 0 : size - 13;
        size_t o = 0, chars = 0;
        buf[o++] = '\'';
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];
                if (o >= limit || chars >= 64) {
                        memcpy(buf + o, "...", 3);
                        o += 3;
                        break;
                }
                if ((c & 0xC0) != 0x80)
                        chars++;
                if (c == '\'' || c == '\\') {
                        buf[o++] = '\\';
                        buf[o++] = (char) c;
                } else if (c < 0x20 || c == 0x7f) {
                        buf[o++] = '\\';
                        buf[o++] = 'x';
                        buf[o++] = hex[c >> 4];
                        buf[o++] = hex[c & 15];
                } else if (c == 0xc2 && i + 1 < len && (unsigned char) s[i + 1] >= 0x80 &&
                           (unsigned char) s[i + 1] <= 0x9f) {
                        /* a C1 control (U+0080..U+009F; 0x9b is a CSI) is one to a terminal too */
                        unsigned char c1 = (unsigned char) s[++i];
                        memcpy(buf + o, "\\xc2\\x", 6);
                        o += 6;
                        buf[o++] = hex[c1 >> 4];
                        buf[o++] = hex[c1 & 15];
                } else
                        buf[o++] = (char) c;
        }
        buf[o++] = '\'';
        buf[o] = 0;
        return buf;
}

const char *yaml_kind_to_string(YamlKind k) {
        switch (k) {
        case YAML_KIND_NULL:
                return "null";
        case YAML_KIND_BOOL:
                return "a boolean";
        case YAML_KIND_INT:
                return "an integer";
        case YAML_KIND_FLOAT:
                return "a number";
        case YAML_KIND_STRING:
                return "a string";
        case YAML_KIND_MAPPING:
                return "a mapping";
        case YAML_KIND_SEQUENCE:
                return "a list";
        }
        return "?";
}

/* ---- core schema ---- */

static bool is_digits(const char *s, const char *set) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!strchr(set, *s))
                        return false;
        return true;
}

#define DEC "0123456789"
#define OCT "01234567"
#define HEX "0123456789abcdefABCDEF"

static bool core_is_null(const char *s) {
        return !*s || streq(s, "~") || streq(s, "null") || streq(s, "Null") || streq(s, "NULL");
}

static int core_bool(const char *s) {
        if (streq(s, "true") || streq(s, "True") || streq(s, "TRUE"))
                return 1;
        if (streq(s, "false") || streq(s, "False") || streq(s, "FALSE"))
                return 0;
        return -1;
}

static bool core_is_int(const char *s) {
        if (strncmp(s, "0o", 2) == 0)
                return is_digits(s + 2, OCT);
        if (strncmp(s, "0x", 2) == 0)
                return is_digits(s + 2, HEX);
        if (*s == '-' || *s == '+')
                s++;
        return is_digits(s, DEC);
}

static bool core_is_float(const char *s) {
        bool signed_ = *s == '-' || *s == '+';
        if (signed_)
                s++;
        if (streq(s, ".inf") || streq(s, ".Inf") || streq(s, ".INF"))
                return true;
        /* the core schema has no signed NaN ("-.nan" is a string) */
        if (streq(s, ".nan") || streq(s, ".NaN") || streq(s, ".NAN"))
                return !signed_;
        size_t int_digits = strspn(s, DEC);
        s += int_digits;
        size_t frac_digits = 0;
        if (*s == '.') {
                s++;
                frac_digits = strspn(s, DEC);
                s += frac_digits;
        }
        /* "[0-9]+(\.[0-9]*)?" or "\.[0-9]+" */
        if (int_digits == 0 && frac_digits == 0)
                return false;
        if (*s == 'e' || *s == 'E') {
                s++;
                if (*s == '-' || *s == '+')
                        s++;
                size_t exp_digits = strspn(s, DEC);
                if (exp_digits == 0)
                        return false;
                s += exp_digits;
        }
        return *s == 0;
}

static YamlKind core_resolve_plain(const char *s) {
        if (core_is_null(s))
                return YAML_KIND_NULL;
        if (core_bool(s) >= 0)
                return YAML_KIND_BOOL;
        if (core_is_int(s))
                return YAML_KIND_INT;
        if (core_is_float(s))
                return YAML_KIND_FLOAT;
        return YAML_KIND_STRING;
}

int yaml_node_int64(const YamlNode *n, int64_t min, int64_t max, int64_t *ret) {
        if (!n || n->kind != YAML_KIND_INT)
                return -EINVAL;
        const char *s = n->scalar;
        int base = 10;
        if (strncmp(s, "0o", 2) == 0)
                base = 8, s += 2;
        else if (strncmp(s, "0x", 2) == 0)
                base = 16, s += 2;
        if (base == 10)
                return parse_int64(s, min, max, ret);
        errno = 0;
        char *end = NULL;
        unsigned long long v = strtoull(s, &end, base);
        if (!end || *end)
                return -EINVAL;
        if (errno == ERANGE || v > (unsigned long long) INT64_MAX || (int64_t) v < min ||
            (int64_t) v > max)
                return -ERANGE;
        *ret = (int64_t) v;
        return 0;
}

int yaml_node_bool(const YamlNode *n, bool *ret) {
        if (!n || n->kind != YAML_KIND_BOOL)
                return -EINVAL;
        *ret = core_bool(n->scalar) == 1;
        return 0;
}

/* ---- lookup ---- */

const YamlPair *yaml_mapping_get_pair(const YamlNode *map, const char *key) {
        if (!map || map->kind != YAML_KIND_MAPPING)
                return NULL;
        for (size_t i = 0; i < map->n_pairs; i++)
                if (streq(map->pairs[i].key->scalar, key))
                        return &map->pairs[i];
        return NULL;
}

const YamlNode *yaml_mapping_get(const YamlNode *map, const char *key) {
        const YamlPair *p = yaml_mapping_get_pair(map, key);
        return p ? p->value : NULL;
}

/* ---- the loader ---- */

typedef struct Frame {
        YamlNode *node;       /* the open collection */
        YamlNode *key;        /* mapping: a key waiting for its value (owned here) */
        bool drop_value;      /* mapping: the next value belongs to a refused key */
        bool detached;        /* node is not in the tree: free it when it closes */
        Hashmap *keys;        /* mapping past KEY_INDEX_THRESHOLD keys: key -> first key node */
} Frame;

/* Small mappings (every real manifest) check for a duplicate key by a scan; past this
 * many keys an index keeps a hostile 1024-key mapping from costing ~n^2 compares of
 * up-to-4 KiB keys. */
#define KEY_INDEX_THRESHOLD 16

typedef struct Loader {
        const char *file;
        const char *buf;
        size_t len;
        Diags *diags;
        YamlStream *stream;

        YamlDocument doc;     /* the document being read */
        bool in_document;
        bool skipping;        /* the rest of this document is ignored after a fatal error */
        size_t n_started;     /* documents started, empty ones included */
        size_t doc_nodes;     /* nodes read in this document (scalars and collections) */
        size_t diags_base;    /* diags->n_errors before this file: its own are the rest */
        Frame stack[YAML_MAX_DEPTH];
        size_t depth;
        yaml_document_cb on_document;
        void *userdata;
} Loader;

static bool same_scalar(const YamlNode *a, const YamlNode *b) {
        return a->length == b->length && memcmp(a->scalar, b->scalar, a->length) == 0;
}

/* The key already in f's mapping equal to n, or NULL. The index is keyed by C string;
 * a scalar with a NUL inside is refused anyway, but a hit is still confirmed byte for
 * byte (and a mismatch falls back to the scan), so that never matters here. */
static const YamlNode *find_key(const Frame *f, const YamlNode *n) {
        if (f->keys) {
                const YamlNode *k = hashmap_get(f->keys, n->scalar);
                if (!k)
                        return NULL;
                if (same_scalar(k, n))
                        return k;
        }
        for (size_t i = 0; i < f->node->n_pairs; i++)
                if (same_scalar(f->node->pairs[i].key, n))
                        return f->node->pairs[i].key;
        return NULL;
}

static void loader_clear_stack(Loader *l) {
        while (l->depth > 0) {
                Frame *f = &l->stack[--l->depth];
                yaml_node_free(f->key);
                hashmap_free(f->keys);
                if (f->detached)
                        yaml_node_free(f->node);
        }
}

static void loader_discard_document(Loader *l) {
        loader_clear_stack(l);
        l->doc.root = yaml_node_free(l->doc.root);
}

static int errorf(Loader *l, unsigned line, unsigned column, const char *fmt, ...) _printf_(4, 5);
static int errorf(Loader *l, unsigned line, unsigned column, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = xvasprintf(fmt, ap);
        va_end(ap);
        if (!msg)
                return -ENOMEM;
        l->stream->n_errors++;
        if (l->in_document)
                l->doc.n_errors++;
        return diag_error(l->diags, l->file, line, column, "%s", msg);
}

/* An error that leaves the document's tree unusable: report it, drop the tree and
 * ignore the events until the document ends. */
static int fatalf(Loader *l, unsigned line, unsigned column, const char *fmt, ...) _printf_(4, 5);
static int fatalf(Loader *l, unsigned line, unsigned column, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = xvasprintf(fmt, ap);
        va_end(ap);
        if (!msg)
                return -ENOMEM;
        int r = errorf(l, line, column, "%s", msg);
        loader_discard_document(l);
        l->doc.complete = false;
        l->skipping = true;
        return r;
}

static int push_document(Loader *l) {
        YamlStream *s = l->stream;
        YamlDocument *d = realloc(s->documents, (s->n_documents + 1) * sizeof(YamlDocument));
        if (!d)
                return -ENOMEM;
        s->documents = d;
        YamlDocument *doc = &s->documents[s->n_documents++];
        *doc = l->doc;
        l->doc = (YamlDocument) {};
        if (!l->on_document)
                return 0;
        int r = l->on_document(doc, l->userdata);
        doc->root = yaml_node_free(doc->root);
        return r;
}

static int end_document(Loader *l) {
        loader_clear_stack(l);
        YamlNode *root = l->doc.root;
        l->in_document = false;
        l->skipping = false;
        /* An empty document (a stray or trailing "---") describes nothing: skip it. */
        if (l->doc.complete && l->doc.n_errors == 0 &&
            (!root || (root->kind == YAML_KIND_NULL && !root->quoted && root->length == 0))) {
                l->doc.root = yaml_node_free(l->doc.root);
                return 0;
        }
        return push_document(l);
}

static const char *tag_display(const char *tag, char *buf, size_t size) {
        if (strncmp(tag, CORE_TAG_PREFIX, strlen(CORE_TAG_PREFIX)) == 0) {
                snprintf(buf, size, "!!%s", tag + strlen(CORE_TAG_PREFIX));
                return buf;
        }
        return yaml_quote(buf, size, tag, strlen(tag));
}

/* Kind from an explicit tag; -1 if it is not a core tag. */
static int core_tag_kind(const char *tag) {
        static const struct {
                const char *name;
                YamlKind kind;
        } tags[] = {
                { "null", YAML_KIND_NULL },     { "bool", YAML_KIND_BOOL },
                { "int", YAML_KIND_INT },       { "float", YAML_KIND_FLOAT },
                { "str", YAML_KIND_STRING },    { "map", YAML_KIND_MAPPING },
                { "seq", YAML_KIND_SEQUENCE },
        };
        if (strncmp(tag, CORE_TAG_PREFIX, strlen(CORE_TAG_PREFIX)) != 0)
                return -1;
        tag += strlen(CORE_TAG_PREFIX);
        for (size_t i = 0; i < ELEMENTSOF(tags); i++)
                if (streq(tag, tags[i].name))
                        return (int) tags[i].kind;
        return -1;
}

/* Checks common to every node event. Returns 1 if the node may be built, 0 if the
 * document was given up, or -ENOMEM. */
static int check_node_event(Loader *l, const yaml_mark_t *mark, const yaml_char_t *anchor,
                            const yaml_char_t *tag, YamlKind structural, int *ret_tag_kind) {
        unsigned line = (unsigned) mark->line + 1, column = (unsigned) mark->column + 1;
        int r;
        char qbuf[YAML_QUOTE_BUF];

        *ret_tag_kind = -1;
        if (anchor) {
                /* An anchor is harmless alone, but it exists only to be aliased, and
                 * aliases are how "billion laughs" bombs are built: refuse both. */
                r = fatalf(l, line, column, "anchors are not allowed (anchor %s)",
                           yaml_quote(qbuf, sizeof(qbuf), (const char *) anchor,
                                      strlen((const char *) anchor)));
                return r < 0 ? r : 0;
        }
        if (tag) {
                int k = core_tag_kind((const char *) tag);
                bool ok;
                if (structural == YAML_KIND_MAPPING || structural == YAML_KIND_SEQUENCE)
                        ok = k == (int) structural;
                else
                        ok = k >= 0 && k <= YAML_KIND_STRING;
                if (!ok) {
                        if (k < 0)
                                r = fatalf(l, line, column,
                                           "unsupported tag %s (only the core tags !!str, !!int, !!float, !!bool, !!null, !!map and !!seq are allowed)",
                                           tag_display((const char *) tag, qbuf, sizeof(qbuf)));
                        else
                                r = fatalf(l, line, column, "tag %s cannot apply to %s",
                                           tag_display((const char *) tag, qbuf, sizeof(qbuf)),
                                           structural == YAML_KIND_MAPPING ? "a mapping"
                                           : structural == YAML_KIND_SEQUENCE ? "a list"
                                                                                : "a scalar");
                        return r < 0 ? r : 0;
                }
                *ret_tag_kind = k;
        }
        return 1;
}

static int frame_append_item(Loader *l, Frame *f, YamlNode *n) {
        YamlNode *seq = f->node;
        YamlNode **items = realloc(seq->items, (seq->n_items + 1) * sizeof(YamlNode *));
        if (!items)
                return -ENOMEM;
        seq->items = items;
        seq->items[seq->n_items++] = n;
        (void) l;
        return 0;
}

/* Place a new node in the tree. Returns 1 if placed (ownership taken), 0 if the node
 * was refused or is to be dropped (the caller frees it or pushes it detached), -ENOMEM. */
static int attach(Loader *l, YamlNode *n, bool *ret_detached) {
        char qbuf[YAML_QUOTE_BUF];
        int r;

        *ret_detached = false;
        if (l->depth == 0) {
                l->doc.root = n;
                return 1;
        }
        Frame *f = &l->stack[l->depth - 1];
        if (f->node->kind == YAML_KIND_SEQUENCE) {
                if (f->node->n_items >= YAML_MAX_COLLECTION_ITEMS) {
                        r = fatalf(l, n->line, n->column, "too many items in a list (limit %d)",
                                   YAML_MAX_COLLECTION_ITEMS);
                        return r < 0 ? r : 0;
                }
                r = frame_append_item(l, f, n);
                return r < 0 ? r : 1;
        }

        /* a mapping: n is a key, or the value of the pending key */
        if (f->key || f->drop_value) {
                if (f->drop_value) {
                        f->drop_value = false;
                        *ret_detached = true;
                        return 0;
                }
                YamlNode *map = f->node;
                YamlPair *pairs = realloc(map->pairs, (map->n_pairs + 1) * sizeof(YamlPair));
                if (!pairs)
                        return -ENOMEM;
                map->pairs = pairs;
                map->pairs[map->n_pairs++] = (YamlPair) { .key = TAKE_PTR(f->key), .value = n };
                return 1;
        }

        if (!yaml_node_is_scalar(n)) {
                r = fatalf(l, n->line, n->column, "mapping keys must be scalars, not %s",
                           yaml_kind_to_string(n->kind));
                return r < 0 ? r : 0;
        }
        if (f->node->n_pairs >= YAML_MAX_COLLECTION_ITEMS) {
                r = fatalf(l, n->line, n->column, "too many keys in a mapping (limit %d)",
                           YAML_MAX_COLLECTION_ITEMS);
                return r < 0 ? r : 0;
        }
        const YamlNode *first = find_key(f, n);
        if (first) {
                /* The tree stays whole (the first value is kept), so validation can
                 * still report the document's other problems. */
                r = errorf(l, n->line, n->column, "duplicate key %s (first defined at line %u)",
                           yaml_quote(qbuf, sizeof(qbuf), n->scalar, n->length), first->line);
                if (r < 0)
                        return r;
                f->drop_value = true;
                return 0;
        }
        if (!f->keys && f->node->n_pairs + 1 >= KEY_INDEX_THRESHOLD) {
                if (hashmap_new(&f->keys) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < f->node->n_pairs; i++)
                        if (hashmap_put(f->keys, f->node->pairs[i].key->scalar, f->node->pairs[i].key) < 0)
                                return -ENOMEM;
        }
        if (f->keys && hashmap_put(f->keys, n->scalar, n) < 0)
                return -ENOMEM;
        f->key = n;
        return 1;
}

static YamlNode *node_new(YamlKind kind, const yaml_mark_t *mark) {
        YamlNode *n = calloc(1, sizeof(YamlNode));
        if (!n)
                return NULL;
        n->kind = kind;
        n->line = (unsigned) mark->line + 1;
        n->column = (unsigned) mark->column + 1;
        return n;
}

static int on_scalar(Loader *l, const yaml_event_t *e) {
        const yaml_mark_t *mark = &e->start_mark;
        unsigned line = (unsigned) mark->line + 1, column = (unsigned) mark->column + 1;
        char qbuf[YAML_QUOTE_BUF], tbuf[YAML_QUOTE_BUF];
        int tag_kind, r;

        r = check_node_event(l, mark, e->data.scalar.anchor, e->data.scalar.tag, YAML_KIND_STRING,
                             &tag_kind);
        if (r <= 0)
                return r;
        const char *value = (const char *) e->data.scalar.value;
        size_t length = e->data.scalar.length;
        if (length > YAML_MAX_SCALAR_LENGTH) {
                r = fatalf(l, line, column, "value too long: %zu bytes (limit %d)", length,
                           YAML_MAX_SCALAR_LENGTH);
                return r < 0 ? r : 0;
        }
        /* The text was checked for NUL bytes, but a "\0" escape in a double-quoted
         * string makes one, and every consumer here works with C strings. */
        if (memchr(value, 0, length)) {
                r = fatalf(l, line, column, "NUL character in a string is not allowed");
                return r < 0 ? r : 0;
        }

        _cleanup_(yaml_node_freep) YamlNode *n = node_new(YAML_KIND_STRING, mark);
        if (!n || !(n->scalar = strndup(value, length)))
                return -ENOMEM;
        n->length = length;
        n->quoted = e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        if (tag_kind >= 0) {
                YamlKind k = (YamlKind) tag_kind;
                bool ok = k == YAML_KIND_STRING ||
                          (k == YAML_KIND_NULL && core_is_null(n->scalar)) ||
                          (k == YAML_KIND_BOOL && core_bool(n->scalar) >= 0) ||
                          (k == YAML_KIND_INT && core_is_int(n->scalar)) ||
                          (k == YAML_KIND_FLOAT && (core_is_float(n->scalar) || core_is_int(n->scalar)));
                if (!ok) {
                        r = fatalf(l, line, column, "%s is not a valid %s",
                                   yaml_quote(qbuf, sizeof(qbuf), n->scalar, n->length),
                                   tag_display((const char *) e->data.scalar.tag, tbuf, sizeof(tbuf)));
                        return r < 0 ? r : 0;
                }
                n->kind = k;
        } else
                n->kind = n->quoted ? YAML_KIND_STRING : core_resolve_plain(n->scalar);

        bool detached;
        r = attach(l, n, &detached);
        if (r > 0)
                TAKE_PTR(n);
        return r < 0 ? r : 0;
}

static int on_collection_start(Loader *l, const yaml_event_t *e, YamlKind kind) {
        const yaml_mark_t *mark = &e->start_mark;
        const yaml_char_t *anchor = kind == YAML_KIND_MAPPING ? e->data.mapping_start.anchor
                                                               : e->data.sequence_start.anchor;
        const yaml_char_t *tag = kind == YAML_KIND_MAPPING ? e->data.mapping_start.tag
                                                            : e->data.sequence_start.tag;
        int tag_kind, r;

        r = check_node_event(l, mark, anchor, tag, kind, &tag_kind);
        if (r <= 0)
                return r;
        if (l->depth >= YAML_MAX_DEPTH) {
                r = fatalf(l, (unsigned) mark->line + 1, (unsigned) mark->column + 1,
                           "nesting too deep (limit %d levels)", YAML_MAX_DEPTH);
                return r < 0 ? r : 0;
        }
        _cleanup_(yaml_node_freep) YamlNode *n = node_new(kind, mark);
        if (!n)
                return -ENOMEM;
        bool detached;
        r = attach(l, n, &detached);
        if (r < 0)
                return r;
        if (r == 0 && !detached)
                return 0; /* refused: the document is being skipped */
        /* Placed, or the value of a refused duplicate key: read it into a detached
         * node that is freed when it closes. */
        l->stack[l->depth++] = (Frame) { .node = TAKE_PTR(n), .detached = detached };
        return 0;
}

static int on_collection_end(Loader *l) {
        if (l->depth == 0)
                return 0;
        Frame *f = &l->stack[--l->depth];
        yaml_node_free(f->key);
        hashmap_free(f->keys);
        if (f->detached)
                yaml_node_free(f->node);
        *f = (Frame) {};
        return 0;
}

static int on_document_start(Loader *l, const yaml_event_t *e) {
        const yaml_mark_t *mark = &e->start_mark;
        l->n_started++;
        l->in_document = true;
        l->doc_nodes = 0;
        l->skipping = false;
        l->doc = (YamlDocument) {
                .line = (unsigned) mark->line + 1,
                .column = (unsigned) mark->column + 1,
                .complete = true,
        };
        if (l->n_started > MANIFEST_MAX_DOCUMENTS) {
                /* Not this document's fault: a stream-level error, and the end. */
                l->in_document = false;
                int r = errorf(l, l->doc.line, l->doc.column, "too many documents in one file (limit %d)",
                               MANIFEST_MAX_DOCUMENTS);
                return r < 0 ? r : 1;
        }
        return 0;
}

static int report_parser_error(Loader *l, const yaml_parser_t *p) {
        unsigned line, column;
        if (p->error == YAML_MEMORY_ERROR)
                return -ENOMEM;
        if (p->error == YAML_READER_ERROR) {
                /* problem_mark is not set by the reader: map the byte offset. */
                yaml_offset_position(l->buf, l->len, p->problem_offset, &line, &column);
                if (p->problem_value >= 0)
                        return errorf(l, line, column, "invalid YAML: %s (#x%X)", strempty(p->problem),
                                      (unsigned) p->problem_value);
                return errorf(l, line, column, "invalid YAML: %s", strempty(p->problem));
        }
        line = (unsigned) p->problem_mark.line + 1;
        column = (unsigned) p->problem_mark.column + 1;
        if (p->context)
                return errorf(l, line, column, "invalid YAML: %s (%s at line %zu, column %zu)",
                              strempty(p->problem), p->context, p->context_mark.line + 1,
                              p->context_mark.column + 1);
        return errorf(l, line, column, "invalid YAML: %s", strempty(p->problem));
}

static void parser_deletep(yaml_parser_t **p) {
        if (*p)
                yaml_parser_delete(*p);
}

static int load_events(Loader *l) {
        yaml_parser_t parser;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        /* only there to free the parser on every return (clang calls it unused) */
        _cleanup_(parser_deletep) _unused_ yaml_parser_t *pp = &parser;
        yaml_parser_set_input_string(&parser, (const unsigned char *) l->buf, l->len);
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);

        for (;;) {
                yaml_event_t e;
                int r = 0;
                if (!yaml_parser_parse(&parser, &e)) {
                        r = report_parser_error(l, &parser);
                        if (r < 0)
                                return r;
                        if (l->in_document) {
                                /* keep the partial document, so it is counted */
                                loader_discard_document(l);
                                l->doc.complete = false;
                                l->in_document = false;
                                r = push_document(l);
                        }
                        return r;
                }
                yaml_event_type_t type = e.type;
                /* Counting the callback's errors too (validation): one limit per file. */
                if (type != YAML_STREAM_END_EVENT &&
                    l->diags->n_errors - l->diags_base >= MANIFEST_MAX_ERRORS_PER_FILE) {
                        /* a stream-level error: the document being read is dropped */
                        l->in_document = false;
                        r = errorf(l, (unsigned) e.start_mark.line + 1, (unsigned) e.start_mark.column + 1,
                                   "too many errors (limit %d); the rest of the file is not checked",
                                   MANIFEST_MAX_ERRORS_PER_FILE);
                        l->stream->too_many_errors = true;
                        yaml_event_delete(&e);
                        return r < 0 ? r : 0;
                }
                if (l->in_document && !l->skipping &&
                    (type == YAML_SCALAR_EVENT || type == YAML_SEQUENCE_START_EVENT ||
                     type == YAML_MAPPING_START_EVENT) &&
                    ++l->doc_nodes > MANIFEST_MAX_DOCUMENT_NODES) {
                        /* Said where the document starts: that is what the reader looks for. */
                        r = fatalf(l, l->doc.line, l->doc.column, "document too large: more than %d YAML nodes (limit)",
                                   MANIFEST_MAX_DOCUMENT_NODES);
                        yaml_event_delete(&e);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (type == YAML_DOCUMENT_START_EVENT)
                        r = on_document_start(l, &e);
                else if (type == YAML_DOCUMENT_END_EVENT)
                        r = end_document(l);
                else if (l->skipping || !l->in_document)
                        ; /* the rest of a refused document */
                else if (type == YAML_SCALAR_EVENT)
                        r = on_scalar(l, &e);
                else if (type == YAML_SEQUENCE_START_EVENT)
                        r = on_collection_start(l, &e, YAML_KIND_SEQUENCE);
                else if (type == YAML_MAPPING_START_EVENT)
                        r = on_collection_start(l, &e, YAML_KIND_MAPPING);
                else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT)
                        r = on_collection_end(l);
                else if (type == YAML_ALIAS_EVENT) {
                        char qbuf[YAML_QUOTE_BUF];
                        const char *a = (const char *) e.data.alias.anchor;
                        r = fatalf(l, (unsigned) e.start_mark.line + 1, (unsigned) e.start_mark.column + 1,
                                   "aliases are not allowed (alias %s)",
                                   yaml_quote(qbuf, sizeof(qbuf), a, strlen(a)));
                }
                yaml_event_delete(&e);
                if (r != 0 || type == YAML_STREAM_END_EVENT)
                        return r < 0 ? r : 0;
        }
}

int yaml_tree_load(const char *file, const char *buf, size_t len, Diags *diags, YamlStream **ret) {
        return yaml_tree_load_each(file, buf, len, diags, NULL, NULL, ret);
}

int yaml_tree_load_each(const char *file, const char *buf, size_t len, Diags *diags, yaml_document_cb cb,
                        void *userdata, YamlStream **ret) {
        _cleanup_(yaml_stream_freep) YamlStream *s = calloc(1, sizeof(YamlStream));
        if (!s)
                return -ENOMEM;
        Loader l = { .file = file, .buf = buf, .len = len, .diags = diags, .stream = s,
                     .on_document = cb, .userdata = userdata, .diags_base = diags->n_errors };

        unsigned line, column;
        size_t offset;
        int r = yaml_check_text(buf, len, &line, &column, &offset);
        if (r < 0) {
                if (r == -EBADMSG)
                        r = errorf(&l, line, column, "binary file, not YAML (NUL byte)");
                else
                        r = errorf(&l, line, column, "invalid UTF-8 (byte 0x%02x)",
                                   (unsigned char) buf[offset]);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(s);
                return 0;
        }

        r = load_events(&l);
        loader_clear_stack(&l);
        yaml_node_free(l.doc.root);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

static bool has_dotdot(const char *path) {
        for (const char *p = path; (p = strstr(p, "..")); p += 2)
                if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
                        return true;
        return false;
}

/* Where openat2() is missing (Linux < 5.6, or a seccomp filter that does not know it
 * and answers ENOSYS or EPERM): one component at a time, each opened O_PATH|O_NOFOLLOW
 * from the one before and fstat()ed, so a symlink anywhere is seen and refused the way
 * openat2() refuses it. path is relative and has no "..": open_beneath() checked. */
static int open_beneath_by_component(int dirfd, const char *path, int flags) {
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        _cleanup_close_ int cur = -1;  /* -1: still at dirfd */
        char *comp = copy;
        for (char *slash; (slash = strchr(comp, '/')); comp = slash + 1) {
                *slash = '\0';
                if (!*comp || streq(comp, "."))
                        continue;
                int next = openat(cur >= 0 ? cur : dirfd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0)
                        return -errno;
                closep(&cur);
                cur = next;
                struct stat st;
                if (fstat(cur, &st) < 0)
                        return -errno;
                if (S_ISLNK(st.st_mode))
                        return -ELOOP;
                if (!S_ISDIR(st.st_mode))
                        return -ENOTDIR;
        }
        int fd = openat(cur >= 0 ? cur : dirfd, *comp ? comp : ".", flags | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* Open path beneath dirfd without following any symlink anywhere in it (-ELOOP). A
 * manifest is read where the walk checked it is: a file or directory swapped for a
 * symlink since then is refused, never read through. An absolute path or ".." is
 * -EXDEV (openat2() would allow a ".." that stays beneath; the walk never makes one, and
 * refusing it here keeps the fallback as simple as the rule). */
static int open_beneath(int dirfd, const char *path, int flags) {
        if (path[0] == '/' || has_dotdot(path))
                return -EXDEV;
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
        };
        for (unsigned tries = 0;; tries++) {
                long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
                if (fd >= 0)
                        return (int) fd;
                /* a rename elsewhere raced the lookup: the kernel asks for another try */
                if (errno == EAGAIN && tries < 16)
                        continue;
                if (errno != ENOSYS && errno != EPERM)
                        return -errno;
                return open_beneath_by_component(dirfd, path, flags);
        }
}

int yaml_read_file(int dirfd, const char *path, size_t max, char **ret_buf, size_t *ret_len) {
        /* O_NONBLOCK: opening a FIFO planted in the tree must not hang the daemon. */
        const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
        _cleanup_close_ int fd = -1;
        if (dirfd == AT_FDCWD) {
                fd = openat(AT_FDCWD, path, flags);
                if (fd < 0)
                        return -errno;
        } else {
                fd = open_beneath(dirfd, path, flags);
                if (fd < 0)
                        return fd;
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((uintmax_t) st.st_size > max)
                return -EFBIG;

        /* The size may change under us: read at most max + 1 bytes, whatever fstat said. */
        size_t cap = (size_t) st.st_size + 1, len = 0;
        _cleanup_free_ char *buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap > max)
                                return -EFBIG;
                        size_t ncap = MIN(cap * 2, max + 1);
                        char *nbuf = realloc(buf, ncap + 1);
                        if (!nbuf)
                                return -ENOMEM;
                        buf = nbuf;
                        cap = ncap;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (len > max)
                return -EFBIG;
        buf[len] = 0;
        *ret_buf = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}
