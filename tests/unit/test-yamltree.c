/* The bounded YAML loader: typing, positions, every refusal and every limit (at the
 * limit and one past it); the file reader beneath a directory (no symlink followed),
 * with openat2() and, openat2() made to look missing, with its fallback. */
/* LDFLAGS: -Wl,--wrap=syscall */
#include <fcntl.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "limits.h"
#include "util.h"
#include "yamltree.h"

#include "openat2-switch.h"

typedef struct Loaded {
        YamlStream *s;
        Diags d;
} Loaded;

static void load_n(Loaded *l, const char *text, size_t len) {
        *l = (Loaded) { .d = DIAGS_INIT };
        assert_int_equal(yaml_tree_load("t.yaml", text, len, &l->d, &l->s), 0);
        assert_non_null(l->s);
}

static void load(Loaded *l, const char *text) {
        load_n(l, text, strlen(text));
}

static void unload(Loaded *l) {
        yaml_stream_free(l->s);
        diags_clear(&l->d);
}

/* The only diagnostic must be an error at line:column whose message contains substr. */
static void assert_one_error(const Loaded *l, unsigned line, unsigned column, const char *substr) {
        if (l->d.n != 1 || !strstr(l->d.items[0].message, substr) || l->d.items[0].line != line ||
            l->d.items[0].column != column) {
                for (size_t i = 0; i < l->d.n; i++)
                        diag_print(&l->d.items[i], stderr);
                fprintf(stderr, "expected one error at %u:%u containing \"%s\"\n", line, column, substr);
                fail();
        }
        assert_int_equal(l->d.items[0].severity, DIAG_ERROR);
        assert_string_equal(l->d.items[0].file, "t.yaml");
        assert_true(l->s->n_errors >= 1);
}

static const YamlNode *root(const Loaded *l, size_t i) {
        assert_true(i < l->s->n_documents);
        assert_non_null(l->s->documents[i].root);
        return l->s->documents[i].root;
}

static void test_scalar_kinds(void **state) {
        (void) state;
        Loaded l;
        load(&l, "a: 5\n"
                 "b: \"5\"\n"
                 "c: '5'\n"
                 "d: true\n"
                 "e: False\n"
                 "f: yes\n"
                 "g: ~\n"
                 "h:\n"
                 "i: null\n"
                 "j: 1.5\n"
                 "k: 0x1F\n"
                 "l: 0o17\n"
                 "m: -7\n"
                 "n: hello\n"
                 "o: |\n  5\n"
                 "p: .inf\n"
                 "q: 1e3\n"
                 "r: 10m\n"
                 "s: ''\n"
                 "t: 1.2.3\n"
                 /* unsigned .nan once read the byte before the scalar (ASan saw it) */
                 "u: .nan\n"
                 "v: -.nan\n");
        assert_int_equal(l.d.n, 0);
        const YamlNode *m = root(&l, 0);
        assert_int_equal(m->kind, YAML_KIND_MAPPING);
        static const struct {
                const char *key;
                YamlKind kind;
                bool quoted;
        } want[] = {
                { "a", YAML_KIND_INT, false },    { "b", YAML_KIND_STRING, true },
                { "c", YAML_KIND_STRING, true },  { "d", YAML_KIND_BOOL, false },
                { "e", YAML_KIND_BOOL, false },   { "f", YAML_KIND_STRING, false },
                { "g", YAML_KIND_NULL, false },   { "h", YAML_KIND_NULL, false },
                { "i", YAML_KIND_NULL, false },   { "j", YAML_KIND_FLOAT, false },
                { "k", YAML_KIND_INT, false },    { "l", YAML_KIND_INT, false },
                { "m", YAML_KIND_INT, false },    { "n", YAML_KIND_STRING, false },
                { "o", YAML_KIND_STRING, true },  { "p", YAML_KIND_FLOAT, false },
                { "q", YAML_KIND_FLOAT, false },  { "r", YAML_KIND_STRING, false },
                { "s", YAML_KIND_STRING, true },  { "t", YAML_KIND_STRING, false },
                { "u", YAML_KIND_FLOAT, false },  { "v", YAML_KIND_STRING, false },
        };
        assert_int_equal(m->n_pairs, ELEMENTSOF(want));
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                const YamlNode *v = yaml_mapping_get(m, want[i].key);
                assert_non_null(v);
                if (v->kind != want[i].kind)
                        fail_msg("key %s: kind %d, want %d", want[i].key, v->kind, want[i].kind);
                assert_int_equal(v->quoted, want[i].quoted);
        }
        assert_string_equal(yaml_mapping_get(m, "b")->scalar, "5");
        assert_string_equal(yaml_mapping_get(m, "o")->scalar, "5\n");
        assert_null(yaml_mapping_get(m, "zz"));
        assert_null(yaml_mapping_get(yaml_mapping_get(m, "a"), "x"));

        bool b = false;
        assert_int_equal(yaml_node_bool(yaml_mapping_get(m, "d"), &b), 0);
        assert_true(b);
        assert_int_equal(yaml_node_bool(yaml_mapping_get(m, "e"), &b), 0);
        assert_false(b);
        assert_int_equal(yaml_node_bool(yaml_mapping_get(m, "f"), &b), -EINVAL);
        unload(&l);
}

static void test_int_values(void **state) {
        (void) state;
        Loaded l;
        load(&l, "[5, 0x1F, 0o17, -7, 9223372036854775807, 9223372036854775808, \"5\", 0xFFFFFFFFFFFFFFFFFF]");
        const YamlNode *s = root(&l, 0);
        assert_int_equal(s->kind, YAML_KIND_SEQUENCE);
        assert_int_equal(s->n_items, 8);
        int64_t v;
        assert_int_equal(yaml_node_int64(s->items[0], 0, 10, &v), 0);
        assert_int_equal(v, 5);
        assert_int_equal(yaml_node_int64(s->items[1], 0, 100, &v), 0);
        assert_int_equal(v, 31);
        assert_int_equal(yaml_node_int64(s->items[2], 0, 100, &v), 0);
        assert_int_equal(v, 15);
        assert_int_equal(yaml_node_int64(s->items[3], -10, 10, &v), 0);
        assert_int_equal(v, -7);
        assert_int_equal(yaml_node_int64(s->items[3], 0, 10, &v), -ERANGE);
        assert_int_equal(yaml_node_int64(s->items[0], 6, 10, &v), -ERANGE);
        assert_int_equal(yaml_node_int64(s->items[4], INT64_MIN, INT64_MAX, &v), 0);
        assert_true(v == INT64_MAX);
        assert_int_equal(yaml_node_int64(s->items[5], INT64_MIN, INT64_MAX, &v), -ERANGE);
        assert_int_equal(yaml_node_int64(s->items[6], INT64_MIN, INT64_MAX, &v), -EINVAL);
        assert_int_equal(yaml_node_int64(s->items[7], INT64_MIN, INT64_MAX, &v), -ERANGE);
        unload(&l);
}

static void test_positions(void **state) {
        (void) state;
        Loaded l;
        load(&l, "# comment\n"
                 "\n"
                 "top:\n"
                 "  inner: [a, \"b\"]\n"
                 "  deep:\n"
                 "    key: value\n"
                 "---\n"
                 "x: caf\xc3\xa9 1\n"
                 "y:     7\n");
        assert_int_equal(l.d.n, 0);
        assert_int_equal(l.s->n_documents, 2);
        /* the first document starts at its first token, past the comment */
        assert_int_equal(l.s->documents[0].line, 3);
        assert_int_equal(l.s->documents[0].column, 1);
        assert_int_equal(l.s->documents[1].line, 7);
        assert_int_equal(l.s->documents[1].column, 1);
        assert_true(l.s->documents[0].complete);

        const YamlNode *m = root(&l, 0);
        assert_int_equal(m->line, 3);
        assert_int_equal(m->column, 1);
        assert_int_equal(m->pairs[0].key->line, 3);
        assert_int_equal(m->pairs[0].key->column, 1);
        const YamlNode *top = yaml_mapping_get(m, "top");
        const YamlNode *inner = yaml_mapping_get(top, "inner");
        assert_int_equal(inner->line, 4);
        assert_int_equal(inner->column, 10);
        assert_int_equal(inner->items[1]->line, 4);
        assert_int_equal(inner->items[1]->column, 14);
        const YamlPair *p = yaml_mapping_get_pair(yaml_mapping_get(top, "deep"), "key");
        assert_int_equal(p->key->line, 6);
        assert_int_equal(p->key->column, 5);
        assert_int_equal(p->value->line, 6);
        assert_int_equal(p->value->column, 10);
        /* columns count characters, not bytes */
        const YamlNode *y = yaml_mapping_get(root(&l, 1), "y");
        assert_int_equal(y->line, 9);
        assert_int_equal(y->column, 8);
        assert_string_equal(yaml_mapping_get(root(&l, 1), "x")->scalar, "caf\xc3\xa9 1");
        unload(&l);
}

static void test_empty_documents_skipped(void **state) {
        (void) state;
        Loaded l;
        load(&l, "");
        assert_int_equal(l.s->n_documents, 0);
        assert_int_equal(l.s->n_errors, 0);
        unload(&l);

        load(&l, "# only a comment\n");
        assert_int_equal(l.s->n_documents, 0);
        unload(&l);

        load(&l, "---\n---\na: 1\n---\n");
        assert_int_equal(l.d.n, 0);
        assert_int_equal(l.s->n_documents, 1);
        assert_int_equal(l.s->documents[0].line, 2);
        unload(&l);

        /* a quoted empty string is content, not an empty document */
        load(&l, "''\n");
        assert_int_equal(l.s->n_documents, 1);
        unload(&l);
}

static void test_duplicate_key(void **state) {
        (void) state;
        Loaded l;
        load(&l, "name: a\nflavor: x\nname: b\nsub:\n  k: 1\n  k: [1, {z: 2}]\n");
        assert_int_equal(l.d.n, 2);
        assert_int_equal(l.d.items[0].line, 3);
        assert_int_equal(l.d.items[0].column, 1);
        assert_string_equal(l.d.items[0].message, "duplicate key 'name' (first defined at line 1)");
        assert_int_equal(l.d.items[1].line, 6);
        assert_int_equal(l.d.items[1].column, 3);
        assert_string_equal(l.d.items[1].message, "duplicate key 'k' (first defined at line 5)");
        /* the tree stays whole, with the first value, so validation can go on */
        assert_int_equal(l.s->n_documents, 1);
        assert_true(l.s->documents[0].complete);
        assert_int_equal(l.s->documents[0].n_errors, 2);
        const YamlNode *m = root(&l, 0);
        assert_int_equal(m->n_pairs, 3);
        assert_string_equal(yaml_mapping_get(m, "name")->scalar, "a");
        assert_int_equal(yaml_mapping_get(yaml_mapping_get(m, "sub"), "k")->kind, YAML_KIND_INT);
        unload(&l);

        /* keys compare by their text: 1 and "1" are the same JSON key */
        load(&l, "1: a\n\"1\": b\n");
        assert_one_error(&l, 2, 1, "duplicate key '1'");
        unload(&l);
}

/* Past KEY_INDEX_THRESHOLD keys the duplicate check uses an index: it must find the
 * same duplicates, with the first one's line. */
static void test_duplicate_key_many(void **state) {
        (void) state;
        char buf[4096];
        size_t o = 0;
        for (int i = 0; i < 40; i++)
                o += (size_t) snprintf(buf + o, sizeof buf - o, "key%02d: %d\n", i, i);
        o += (size_t) snprintf(buf + o, sizeof buf - o, "key03: again\nkey39: again\n");
        Loaded l;
        load(&l, buf);
        assert_int_equal(l.d.n, 2);
        assert_string_equal(l.d.items[0].message, "duplicate key 'key03' (first defined at line 4)");
        assert_int_equal(l.d.items[0].line, 41);
        assert_string_equal(l.d.items[1].message, "duplicate key 'key39' (first defined at line 40)");
        assert_int_equal(root(&l, 0)->n_pairs, 40);
        unload(&l);
}

static void test_non_scalar_key(void **state) {
        (void) state;
        Loaded l;
        load(&l, "a: 1\n? [x, y]\n: z\n");
        assert_one_error(&l, 2, 3, "mapping keys must be scalars, not a list");
        assert_int_equal(l.s->n_documents, 1);
        assert_false(l.s->documents[0].complete);
        assert_null(l.s->documents[0].root);
        unload(&l);

        load(&l, "{a: 1}: 2\n");
        assert_one_error(&l, 1, 1, "mapping keys must be scalars, not a mapping");
        unload(&l);
}

static void test_anchors_and_aliases(void **state) {
        (void) state;
        Loaded l;
        load(&l, "a: &base {x: 1}\nb: *base\n");
        assert_one_error(&l, 1, 4, "anchors are not allowed (anchor 'base')");
        assert_false(l.s->documents[0].complete);
        unload(&l);

        load(&l, "a: 1\nb: *nowhere\n");
        assert_one_error(&l, 2, 4, "aliases are not allowed (alias 'nowhere')");
        unload(&l);

        load(&l, "a: &s scalar\n");
        assert_one_error(&l, 1, 4, "anchors are not allowed");
        unload(&l);
}

/* "Billion laughs": nine levels of ten aliases each. Refused at the first anchor,
 * without expanding anything. */
static void test_alias_bomb(void **state) {
        (void) state;
        char buf[4096];
        size_t o = 0;
        o += (size_t) snprintf(buf + o, sizeof(buf) - o, "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (char c = 'b'; c <= 'j'; c++)
                o += (size_t) snprintf(buf + o, sizeof(buf) - o, "%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", c,
                                       c, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
        Loaded l;
        load(&l, buf);
        assert_one_error(&l, 1, 4, "anchors are not allowed");
        assert_int_equal(l.s->n_documents, 1);
        assert_null(l.s->documents[0].root);
        unload(&l);
}

/* n nested flow sequences under a mapping key: the mapping is level 1. */
static char *nested(size_t levels) {
        size_t seqs = levels - 1;
        char *s = malloc(3 + 2 * seqs + 2);
        assert_non_null(s);
        size_t o = 0;
        memcpy(s, "a: ", 3);
        o = 3;
        for (size_t i = 0; i < seqs; i++)
                s[o++] = '[';
        for (size_t i = 0; i < seqs; i++)
                s[o++] = ']';
        s[o++] = '\n';
        s[o] = 0;
        return s;
}

static void test_depth_limit(void **state) {
        (void) state;
        Loaded l;
        _cleanup_free_ char *ok = nested(YAML_MAX_DEPTH);
        load(&l, ok);
        assert_int_equal(l.d.n, 0);
        const YamlNode *n = root(&l, 0);
        unsigned depth = 1;
        for (n = yaml_mapping_get(n, "a"); n; n = n->n_items ? n->items[0] : NULL)
                depth++;
        assert_int_equal(depth, YAML_MAX_DEPTH);
        unload(&l);

        _cleanup_free_ char *bad = nested(YAML_MAX_DEPTH + 1);
        load(&l, bad);
        /* the 9th level opens at column 3 + 8 */
        assert_one_error(&l, 1, 3 + YAML_MAX_DEPTH, "nesting too deep (limit 8 levels)");
        assert_false(l.s->documents[0].complete);
        unload(&l);

        /* deep block mappings too; and a huge flow nesting stops early, no stack growth */
        load(&l, "a:\n b:\n  c:\n   d:\n    e:\n     f:\n      g:\n       h:\n        i: 1\n");
        assert_one_error(&l, 9, 9, "nesting too deep");
        unload(&l);

        size_t big = 100000;
        char *s = malloc(big * 2 + 1);
        assert_non_null(s);
        memset(s, '[', big);
        memset(s + big, ']', big);
        s[2 * big] = 0;
        load(&l, s);
        assert_one_error(&l, 1, YAML_MAX_DEPTH + 1, "nesting too deep");
        free(s);
        unload(&l);
}

static char *scalar_doc(size_t n) {
        char *s = malloc(n + 5);
        assert_non_null(s);
        memcpy(s, "a: ", 3);
        memset(s + 3, 'x', n);
        s[3 + n] = '\n';
        s[4 + n] = 0;
        return s;
}

static void test_scalar_length_limit(void **state) {
        (void) state;
        Loaded l;
        _cleanup_free_ char *ok = scalar_doc(YAML_MAX_SCALAR_LENGTH);
        load(&l, ok);
        assert_int_equal(l.d.n, 0);
        assert_int_equal(yaml_mapping_get(root(&l, 0), "a")->length, YAML_MAX_SCALAR_LENGTH);
        unload(&l);

        _cleanup_free_ char *bad = scalar_doc(YAML_MAX_SCALAR_LENGTH + 1);
        load(&l, bad);
        assert_one_error(&l, 1, 4, "value too long: 4097 bytes (limit 4096)");
        unload(&l);

        /* keys are scalars too (explicit "? key": implicit keys stop at 1024 characters) */
        _cleanup_free_ char *key = malloc(YAML_MAX_SCALAR_LENGTH + 16);
        assert_non_null(key);
        memcpy(key, "? ", 2);
        memset(key + 2, 'k', YAML_MAX_SCALAR_LENGTH + 1);
        memcpy(key + 2 + YAML_MAX_SCALAR_LENGTH + 1, "\n: 1\n", 6);
        load(&l, key);
        assert_one_error(&l, 1, 3, "value too long");
        unload(&l);
}

static char *sequence_doc(size_t n) {
        char *s = malloc(n * 4 + 8);
        assert_non_null(s);
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                memcpy(s + o, "- 1\n", 4);
                o += 4;
        }
        s[o] = 0;
        return s;
}

static char *mapping_doc(size_t n) {
        char *s = malloc(n * 16 + 8);
        assert_non_null(s);
        size_t o = 0;
        for (size_t i = 0; i < n; i++)
                o += (size_t) snprintf(s + o, n * 16 + 8 - o, "k%zu: 1\n", i);
        return s;
}

static void test_collection_limit(void **state) {
        (void) state;
        Loaded l;
        _cleanup_free_ char *seq_ok = sequence_doc(YAML_MAX_COLLECTION_ITEMS);
        load(&l, seq_ok);
        assert_int_equal(l.d.n, 0);
        assert_int_equal(root(&l, 0)->n_items, YAML_MAX_COLLECTION_ITEMS);
        unload(&l);

        _cleanup_free_ char *seq_bad = sequence_doc(YAML_MAX_COLLECTION_ITEMS + 1);
        load(&l, seq_bad);
        assert_one_error(&l, YAML_MAX_COLLECTION_ITEMS + 1, 3, "too many items in a list (limit 1024)");
        unload(&l);

        _cleanup_free_ char *map_ok = mapping_doc(YAML_MAX_COLLECTION_ITEMS);
        load(&l, map_ok);
        assert_int_equal(l.d.n, 0);
        assert_int_equal(root(&l, 0)->n_pairs, YAML_MAX_COLLECTION_ITEMS);
        unload(&l);

        _cleanup_free_ char *map_bad = mapping_doc(YAML_MAX_COLLECTION_ITEMS + 1);
        load(&l, map_bad);
        assert_one_error(&l, YAML_MAX_COLLECTION_ITEMS + 1, 1, "too many keys in a mapping (limit 1024)");
        unload(&l);
}

static char *documents(size_t n) {
        char *s = malloc(n * 16 + 1);
        assert_non_null(s);
        size_t o = 0;
        for (size_t i = 0; i < n; i++)
                o += (size_t) snprintf(s + o, n * 16 + 1 - o, "---\nn: %zu\n", i);
        return s;
}

static void test_document_limit(void **state) {
        (void) state;
        Loaded l;
        _cleanup_free_ char *ok = documents(MANIFEST_MAX_DOCUMENTS);
        load(&l, ok);
        assert_int_equal(l.d.n, 0);
        assert_int_equal(l.s->n_documents, MANIFEST_MAX_DOCUMENTS);
        unload(&l);

        _cleanup_free_ char *bad = documents(MANIFEST_MAX_DOCUMENTS + 3);
        load(&l, bad);
        /* the 257th "---" is on line 2 * 256 + 1; the documents before it are kept */
        assert_one_error(&l, 2 * MANIFEST_MAX_DOCUMENTS + 1, 1, "too many documents in one file (limit 256)");
        assert_int_equal(l.s->n_documents, MANIFEST_MAX_DOCUMENTS);
        assert_int_equal(l.s->n_errors, 1);
        assert_int_equal(l.s->documents[MANIFEST_MAX_DOCUMENTS - 1].n_errors, 0);
        unload(&l);
}

static void test_syntax_error(void **state) {
        (void) state;
        Loaded l;
        load(&l, "a: 1\n---\nb: 2\n---\nc: 3\n  d: 4\n---\ne: 5\n");
        assert_one_error(&l, 6, 4, "invalid YAML: mapping values are not allowed in this context");
        /* the two documents before are returned; the broken one is counted; the stream ends */
        assert_int_equal(l.s->n_documents, 3);
        assert_true(l.s->documents[0].complete);
        assert_true(l.s->documents[1].complete);
        assert_false(l.s->documents[2].complete);
        assert_null(l.s->documents[2].root);
        assert_int_equal(l.s->documents[2].n_errors, 1);
        unload(&l);

        /* libyaml's context is part of the message */
        load(&l, "a:\n  - 1\n  b: 2\n");
        assert_int_equal(l.d.n, 1);
        assert_int_equal(l.d.items[0].line, 3);
        assert_int_equal(l.d.items[0].column, 3);
        assert_string_equal(l.d.items[0].message,
                            "invalid YAML: did not find expected '-' indicator (while parsing a block collection at line 2, column 3)");
        unload(&l);

        load(&l, "a: [1, 2\n");
        assert_int_equal(l.d.n, 1);
        assert_non_null(strstr(l.d.items[0].message, "invalid YAML: "));
        assert_int_equal(l.d.items[0].line, 2);
        unload(&l);

        load(&l, "a: \"unterminated\n");
        assert_int_equal(l.d.n, 1);
        assert_non_null(strstr(l.d.items[0].message, "found unexpected end of stream"));
        unload(&l);

        /* a tab where indentation is expected */
        load(&l, "a:\n\tb: 1\n");
        assert_int_equal(l.d.n, 1);
        assert_int_equal(l.d.items[0].line, 2);
        unload(&l);
}

static void test_bad_bytes(void **state) {
        (void) state;
        Loaded l;
        static const char nul[] = "a: 1\nbb: x\0y\n";
        load_n(&l, nul, sizeof(nul) - 1);
        assert_one_error(&l, 2, 6, "binary file, not YAML (NUL byte)");
        assert_int_equal(l.s->n_documents, 0);
        unload(&l);

        load(&l, "a: 1\nb: caf\xc3\xa9 \xff\n");
        assert_one_error(&l, 2, 9, "invalid UTF-8 (byte 0xff)");
        unload(&l);

        /* overlong "/", a surrogate, a truncated sequence at the end */
        load(&l, "a: \xc0\xaf\n");
        assert_one_error(&l, 1, 4, "invalid UTF-8 (byte 0xc0)");
        unload(&l);
        load(&l, "a: x\n\nb: \xed\xa0\x80\n");
        assert_one_error(&l, 3, 4, "invalid UTF-8 (byte 0xed)");
        unload(&l);
        load(&l, "a: \xe2\x82");
        assert_one_error(&l, 1, 4, "invalid UTF-8");
        unload(&l);

        /* a BOM is fine and takes no column */
        load(&l, "\xef\xbb\xbf" "a: [1, \xff]\n");
        assert_one_error(&l, 1, 8, "invalid UTF-8");
        unload(&l);
        load(&l, "\xef\xbb\xbf" "a: 1\n");
        assert_int_equal(l.d.n, 0);
        assert_int_equal(root(&l, 0)->n_pairs, 1);
        unload(&l);

        /* valid UTF-8 that YAML still refuses: libyaml's reader error, positioned */
        load(&l, "a: 1\nb: x\x01y\n");
        assert_one_error(&l, 2, 5, "invalid YAML: control characters are not allowed");
        unload(&l);

        /* CRLF line ends count as one line each */
        load(&l, "a: 1\r\nb: \xff\r\n");
        assert_one_error(&l, 2, 4, "invalid UTF-8");
        unload(&l);
}

static void test_nul_escape(void **state) {
        (void) state;
        Loaded l;
        load(&l, "a: ok\nb: \"x\\0y\"\n");
        assert_one_error(&l, 2, 4, "NUL character in a string is not allowed");
        unload(&l);
}

static void test_tags(void **state) {
        (void) state;
        Loaded l;
        load(&l, "a: !!str 5\nb: !!int \"7\"\nc: !!float 1\nd: !!bool true\ne: !!null ~\nf: !!map {x: 1}\ng: !!seq []\n");
        assert_int_equal(l.d.n, 0);
        const YamlNode *m = root(&l, 0);
        assert_int_equal(yaml_mapping_get(m, "a")->kind, YAML_KIND_STRING);
        assert_int_equal(yaml_mapping_get(m, "b")->kind, YAML_KIND_INT);
        assert_int_equal(yaml_mapping_get(m, "c")->kind, YAML_KIND_FLOAT);
        assert_int_equal(yaml_mapping_get(m, "d")->kind, YAML_KIND_BOOL);
        assert_int_equal(yaml_mapping_get(m, "e")->kind, YAML_KIND_NULL);
        assert_int_equal(yaml_mapping_get(m, "f")->kind, YAML_KIND_MAPPING);
        assert_int_equal(yaml_mapping_get(m, "g")->kind, YAML_KIND_SEQUENCE);
        unload(&l);

        load(&l, "a: !custom x\n");
        assert_one_error(&l, 1, 4, "unsupported tag '!custom' (only the core tags");
        unload(&l);
        load(&l, "a: !<tag:example.com,2024:x> 1\n");
        assert_one_error(&l, 1, 4, "unsupported tag 'tag:example.com,2024:x'");
        unload(&l);
        load(&l, "a: !!binary aGVsbG8=\n");
        assert_one_error(&l, 1, 4, "unsupported tag !!binary");
        unload(&l);
        load(&l, "a: !!int five\n");
        assert_one_error(&l, 1, 4, "'five' is not a valid !!int");
        unload(&l);
        load(&l, "a: !!map [1]\n");
        assert_one_error(&l, 1, 4, "tag !!map cannot apply to a list");
        unload(&l);
        load(&l, "a: !!str [1]\n");
        assert_one_error(&l, 1, 4, "tag !!str cannot apply to a list");
        unload(&l);
        load(&l, "a: !!seq x\n");
        assert_one_error(&l, 1, 4, "tag !!seq cannot apply to a scalar");
        unload(&l);
        /* %TAG may not remap !! to sneak a foreign tag in */
        load(&l, "%TAG !! tag:example.com,2000:\n---\na: !!str x\n");
        assert_one_error(&l, 3, 4, "unsupported tag");
        unload(&l);
}

/* A refused document never hides the next one. */
static void test_bad_document_does_not_hide_others(void **state) {
        (void) state;
        Loaded l;
        load(&l, "a: *x\n---\nb: 1\n---\nc: !foo 1\n---\nd: 2\n");
        assert_int_equal(l.d.n, 2);
        assert_int_equal(l.s->n_documents, 4);
        assert_false(l.s->documents[0].complete);
        assert_true(l.s->documents[1].complete);
        assert_int_equal(l.s->documents[1].n_errors, 0);
        assert_false(l.s->documents[2].complete);
        assert_true(l.s->documents[3].complete);
        assert_non_null(yaml_mapping_get(root(&l, 3), "d"));
        unload(&l);
}

static void test_quote(void **state) {
        (void) state;
        char buf[YAML_QUOTE_BUF];
        assert_string_equal(yaml_quote(buf, sizeof(buf), "flavour", 7), "'flavour'");
        assert_string_equal(yaml_quote(buf, sizeof(buf), "a'b\\c\n\x1b", 7), "'a\\'b\\\\c\\x0a\\x1b'");
        char long_text[200];
        memset(long_text, 'x', sizeof(long_text));
        yaml_quote(buf, sizeof(buf), long_text, sizeof(long_text));
        assert_int_equal(strlen(buf), 1 + 64 + 3 + 1);
        assert_string_equal(buf + 65, "...'");
        /* C1 controls are escaped (0x9b is a CSI to a terminal); other UTF-8 is kept */
        assert_string_equal(yaml_quote(buf, sizeof(buf), "a\xc2\x9b" "b\xc2\xa0\xc3\xa9", 8),
                            "'a\\xc2\\x9bb\xc2\xa0\xc3\xa9'");
        /* a small buffer is never overrun */
        char small[16];
        yaml_quote(small, sizeof(small), "\n\n\n\n\n\n\n\n", 8);
        assert_true(strlen(small) < sizeof(small));
        for (size_t size = 16; size < 40; size++) {
                char c1[40];
                yaml_quote(c1, size, "\xc2\x85\xc2\x85\xc2\x85\xc2\x85\xc2\x85\xc2\x85", 12);
                assert_true(strlen(c1) < size);
        }
}

static void test_offset_position(void **state) {
        (void) state;
        static const char t[] = "ab\ncd\xc3\xa9x\n";
        unsigned line, col;
        yaml_offset_position(t, sizeof(t) - 1, 0, &line, &col);
        assert_int_equal(line, 1);
        assert_int_equal(col, 1);
        yaml_offset_position(t, sizeof(t) - 1, 3, &line, &col);
        assert_int_equal(line, 2);
        assert_int_equal(col, 1);
        yaml_offset_position(t, sizeof(t) - 1, 7, &line, &col);
        assert_int_equal(line, 2);
        assert_int_equal(col, 4);
        size_t off = 0;
        assert_int_equal(yaml_check_text(t, sizeof(t) - 1, &line, &col, &off), 0);
        assert_int_equal(yaml_check_text("ab\n\0", 4, &line, &col, &off), -EBADMSG);
        assert_int_equal(line, 2);
        assert_int_equal(col, 1);
        assert_int_equal(off, 3);
}

static char tmpdir[64];

static int make_tmpdir(void **state) {
        (void) state;
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-yamltree-XXXXXX");
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state) {
        (void) state;
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, size_t size) {
        _cleanup_free_ char *p = xasprintf("%s/%s", tmpdir, name);
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        for (size_t i = 0; i < size; i++)
                fputc(i % 80 == 79 ? '\n' : '#', f);
        fclose(f);
}

static void test_read_file(void **state) {
        (void) state;
        _cleanup_close_ int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        char *buf = NULL;
        size_t len = 0;

        write_file("exact", 1000);
        assert_int_equal(yaml_read_file(dfd, "exact", 1000, &buf, &len), 0);
        assert_int_equal(len, 1000);
        assert_int_equal(buf[len], 0);
        free(buf);

        write_file("over", 1001);
        assert_int_equal(yaml_read_file(dfd, "over", 1000, &buf, &len), -EFBIG);

        write_file("empty", 0);
        assert_int_equal(yaml_read_file(dfd, "empty", 1000, &buf, &len), 0);
        assert_int_equal(len, 0);
        free(buf);

        assert_int_equal(yaml_read_file(dfd, "missing", 1000, &buf, &len), -ENOENT);
        assert_int_equal(mkdirat(dfd, "dir", 0755), 0);
        assert_int_equal(yaml_read_file(dfd, "dir", 1000, &buf, &len), -EISDIR);
        /* a FIFO must not block the reader */
        assert_int_equal(mkfifoat(dfd, "fifo", 0600), 0);
        assert_int_equal(yaml_read_file(dfd, "fifo", 1000, &buf, &len), -EINVAL);
        /* /dev/zero would never end: not a regular file */
        assert_int_equal(yaml_read_file(AT_FDCWD, "/dev/zero", 1000, &buf, &len), -EINVAL);
}


/* With a directory fd: beneath it, no symlink followed anywhere (the manifests tree). */
static void read_beneath(int openat2_error) {
        openat2_errno = openat2_error;
        n_openat2 = 0;
        _cleanup_free_ char *top = xasprintf("%s/beneath-%d", tmpdir, openat2_error);
        assert_int_equal(mkdir(top, 0755), 0);
        _cleanup_close_ int dfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        assert_int_equal(mkdirat(dfd, "sub", 0755), 0);
        _cleanup_close_ int sub = openat(dfd, "sub", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(sub >= 0);
        _cleanup_close_ int f = openat(sub, "m.yaml", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(f >= 0);
        assert_int_equal(write(f, "a: 1\n", 5), 5);
        assert_int_equal(symlinkat("sub/m.yaml", dfd, "link.yaml"), 0);
        assert_int_equal(symlinkat("sub", dfd, "linkdir"), 0);
        assert_int_equal(symlinkat("/etc/passwd", dfd, "abs.yaml"), 0);
        assert_int_equal(mkdirat(sub, "dir", 0755), 0);

        char *buf = NULL;
        size_t len = 0;
        assert_int_equal(yaml_read_file(dfd, "sub/m.yaml", 1000, &buf, &len), 0);
        assert_string_equal(buf, "a: 1\n");
        free(buf);
        assert_int_equal(yaml_read_file(dfd, "./sub//m.yaml", 1000, &buf, &len), 0);
        free(buf);
        assert_int_equal(yaml_read_file(dfd, "link.yaml", 1000, &buf, &len), -ELOOP);
        assert_int_equal(yaml_read_file(dfd, "linkdir/m.yaml", 1000, &buf, &len), -ELOOP);
        assert_int_equal(yaml_read_file(dfd, "abs.yaml", 1000, &buf, &len), -ELOOP);
        assert_int_equal(yaml_read_file(dfd, "sub/../sub/m.yaml", 1000, &buf, &len), -EXDEV);
        assert_int_equal(yaml_read_file(sub, "../sub/m.yaml", 1000, &buf, &len), -EXDEV);
        assert_int_equal(yaml_read_file(dfd, "/etc/passwd", 1000, &buf, &len), -EXDEV);
        assert_int_equal(yaml_read_file(dfd, "sub/missing.yaml", 1000, &buf, &len), -ENOENT);
        assert_int_equal(yaml_read_file(dfd, "sub/m.yaml/x", 1000, &buf, &len), -ENOTDIR);
        assert_int_equal(yaml_read_file(dfd, "sub/dir", 1000, &buf, &len), -EISDIR);
        /* the same link with AT_FDCWD is followed: a config file may be a symlink */
        _cleanup_free_ char *abs = xasprintf("%s/link.yaml", top);
        assert_int_equal(yaml_read_file(AT_FDCWD, abs, 1000, &buf, &len), 0);
        assert_string_equal(buf, "a: 1\n");
        free(buf);
        assert_true(n_openat2 > 0);
        openat2_errno = 0;
}

static void test_read_file_beneath(void **state) {
        (void) state;
        read_beneath(0);
}

static void test_read_file_beneath_without_openat2(void **state) {
        (void) state;
        read_beneath(ENOSYS);
        read_beneath(EPERM);
}

static void test_kind_names(void **state) {
        (void) state;
        assert_string_equal(yaml_kind_to_string(YAML_KIND_STRING), "a string");
        assert_string_equal(yaml_kind_to_string(YAML_KIND_INT), "an integer");
        assert_string_equal(yaml_kind_to_string(YAML_KIND_MAPPING), "a mapping");
        assert_string_equal(yaml_kind_to_string(YAML_KIND_SEQUENCE), "a list");
        assert_string_equal(yaml_kind_to_string(YAML_KIND_NULL), "null");
        assert_null(yaml_stream_free(NULL));
        assert_null(yaml_node_free(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_scalar_kinds),
                cmocka_unit_test(test_int_values),
                cmocka_unit_test(test_positions),
                cmocka_unit_test(test_duplicate_key_many),
                cmocka_unit_test(test_empty_documents_skipped),
                cmocka_unit_test(test_duplicate_key),
                cmocka_unit_test(test_non_scalar_key),
                cmocka_unit_test(test_anchors_and_aliases),
                cmocka_unit_test(test_alias_bomb),
                cmocka_unit_test(test_depth_limit),
                cmocka_unit_test(test_scalar_length_limit),
                cmocka_unit_test(test_collection_limit),
                cmocka_unit_test(test_document_limit),
                cmocka_unit_test(test_syntax_error),
                cmocka_unit_test(test_bad_bytes),
                cmocka_unit_test(test_nul_escape),
                cmocka_unit_test(test_tags),
                cmocka_unit_test(test_bad_document_does_not_hide_others),
                cmocka_unit_test(test_quote),
                cmocka_unit_test(test_offset_position),
                cmocka_unit_test(test_read_file),
                cmocka_unit_test(test_read_file_beneath),
                cmocka_unit_test(test_read_file_beneath_without_openat2),
                cmocka_unit_test(test_kind_names),
        };
        return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
