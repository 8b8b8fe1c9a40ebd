/* Manifest validation: every rule of the create call, the positions of the diagnostics,
 * multiple errors per document, documents independent of each other, file reading. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "catalog.h"
#include "limits.h"
#include "manifest.h"
#include "util.h"

typedef struct Parsed {
        Diags d;
        SpecList specs;
        ManifestResult r;
} Parsed;

static void parse_policy(Parsed *p, const char *text, const ManifestPolicy *policy) {
        *p = (Parsed) { .d = DIAGS_INIT };
        p->r = (ManifestResult) { 99, 99 };
        assert_int_equal(manifest_parse_buffer("m.yaml", text, strlen(text), policy, &p->d, &p->specs, &p->r), 0);
}

static void parse(Parsed *p, const char *text) {
        parse_policy(p, text, NULL);
}

static void done(Parsed *p) {
        diags_clear(&p->d);
        spec_list_clear(&p->specs);
}

static void dump(const Parsed *p) {
        for (size_t i = 0; i < p->d.n; i++)
                diag_print(&p->d.items[i], stderr);
}

/* There is a diagnostic of severity sev at line:column with exactly this message. */
static void assert_diag(const Parsed *p, DiagSeverity sev, unsigned line, unsigned column, const char *message) {
        for (size_t i = 0; i < p->d.n; i++) {
                const Diag *d = &p->d.items[i];
                if (d->severity == sev && d->line == line && d->column == column && streq(d->message, message)) {
                        assert_string_equal(d->file, "m.yaml");
                        return;
                }
        }
        dump(p);
        fail_msg("no %s at %u:%u: %s", diag_severity_to_string(sev), line, column, message);
}

#define assert_error(p, line, col, msg) assert_diag(p, DIAG_ERROR, line, col, msg)
#define assert_warning(p, line, col, msg) assert_diag(p, DIAG_WARNING, line, col, msg)

static void assert_counts(const Parsed *p, size_t errors, size_t warnings) {
        if (p->d.n_errors != errors || p->d.n_warnings != warnings) {
                dump(p);
                fail_msg("%zu errors, %zu warnings; want %zu, %zu", p->d.n_errors, p->d.n_warnings, errors, warnings);
        }
}

/* A single document that must be valid: returns its spec. */
static const NotebookSpec *valid(Parsed *p, const char *text) {
        parse(p, text);
        assert_counts(p, 0, p->d.n_warnings);
        assert_int_equal(p->specs.n, 1);
        assert_int_equal(p->r.n_documents, 1);
        assert_int_equal(p->r.n_invalid, 0);
        return p->specs.items[0];
}

/* A single document that must be invalid with exactly one error at line:column. */
static void invalid1(const char *text, unsigned line, unsigned column, const char *message) {
        Parsed p;
        parse(&p, text);
        assert_error(&p, line, column, message);
        assert_counts(&p, 1, p.d.n_warnings);
        assert_int_equal(p.specs.n, 0);
        assert_int_equal(p.r.n_documents, 1);
        assert_int_equal(p.r.n_invalid, 1);
        done(&p);
}

/* A valid evs document with one line replaced by the caller's. Lines:
 * 1 name, 2 profile_id, 3 flavor, 4 spec, 5 storage, 6 type, 7 location, 8 volume_size */
#define EVS_HEAD "name: nb-1\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n"
#define EVS_SPEC "spec:\n  storage:\n    type: evs\n"

static const char *OBS_EXAMPLE = /* the example on Huawei's SDK page, as YAML */
        "name: notebook-instance\n"
        "profile_id: Python2\n"
        "description: create a notebook instance\n"
        "flavor: modelarts.vm.cpu.2u\n"
        "spec:\n"
        "  storage:\n"
        "    type: obs\n"
        "    location:\n"
        "      path: obs-bucket/test/\n"
        "workspace:\n"
        "  id: \"0\"\n";

static void test_seed_example(void **state) {
        (void) state;
        Parsed p;
        const NotebookSpec *s = valid(&p, OBS_EXAMPLE);
        assert_int_equal(p.d.n, 0);
        assert_string_equal(s->name, "notebook-instance");
        assert_string_equal(s->profile_id, "Python2");
        assert_string_equal(s->description, "create a notebook instance");
        assert_string_equal(s->flavor, "modelarts.vm.cpu.2u");
        assert_int_equal(s->storage_type, STORAGE_OBS);
        assert_string_equal(s->storage_path, "obs-bucket/test/");
        assert_string_equal(s->workspace_id, "0");
        assert_false(s->has_annotations);
        assert_string_equal(s->file, "m.yaml");
        assert_int_equal(s->doc_pos.line, 1);
        assert_int_equal(s->doc_pos.column, 1);
        assert_int_equal(s->name_pos.line, 1);
        assert_int_equal(s->name_pos.column, 7);
        done(&p);
}

/* "A user can copy the API docs' example body into a file and it works": JSON is YAML. */
static void test_json_body(void **state) {
        (void) state;
        Parsed p;
        const NotebookSpec *s = valid(&p,
                                      "{\"name\":\"notebook-demo_01\",\"profile_id\":\"Python3\",\"description\":\"created by daemon\","
                                      "\"flavor\":\"modelarts.vm.cpu.2u\",\"spec\":{\"storage\":{\"type\":\"evs\",\"location\":"
                                      "{\"volume_size\":5}}},\"workspace\":{\"id\":\"0\"}}");
        assert_int_equal(s->storage_type, STORAGE_EVS);
        assert_int_equal(s->volume_size, 5);
        assert_null(s->storage_path);
        done(&p);
}

static void test_defaults(void **state) {
        (void) state;
        Parsed p;
        const NotebookSpec *s = valid(&p, "---\n" EVS_HEAD EVS_SPEC);
        assert_int_equal(s->volume_size, EVS_VOLUME_DEFAULT_GB);
        assert_string_equal(s->workspace_id, "0");
        assert_null(s->description);
        assert_false(s->has_annotations);
        assert_int_equal(s->doc_pos.line, 1);
        assert_int_equal(s->name_pos.line, 2);
        done(&p);

        s = valid(&p, EVS_HEAD EVS_SPEC "workspace: {}\n");
        assert_string_equal(s->workspace_id, "0");
        done(&p);

        s = valid(&p, "apiVersion: notebookd/v1\nkind: Notebook\n" EVS_HEAD EVS_SPEC);
        assert_string_equal(s->name, "nb-1");
        done(&p);
}

static void test_missing_required(void **state) {
        (void) state;
        Parsed p;
        /* top level: at the document's start */
        parse(&p, "# a comment\n\ndescription: nothing else\n");
        assert_error(&p, 3, 1, "missing required key 'name'");
        assert_error(&p, 3, 1, "missing required key 'profile_id'");
        assert_error(&p, 3, 1, "missing required key 'flavor'");
        assert_error(&p, 3, 1, "missing required key 'spec'");
        assert_counts(&p, 4, 0);
        done(&p);

        parse(&p, "a: 1\n---\n" EVS_SPEC);
        assert_error(&p, 2, 1, "missing required key 'name'");
        done(&p);

        /* nested: at the key of the mapping that lacks it */
        invalid1(EVS_HEAD "spec:\n  annotations: {}\n", 4, 1, "missing required key 'storage' in 'spec' (ModelArts.6316)");
        invalid1(EVS_HEAD "spec:\n  storage:\n    location: {}\n", 5, 3, "missing required key 'type' in 'spec.storage'");
        invalid1(EVS_HEAD "spec:\n  storage:\n    type: obs\n", 5, 3,
                 "missing required key 'location' in 'spec.storage': obs storage needs location.path (ModelArts.6317)");
        invalid1(EVS_HEAD "spec:\n  storage:\n    type: obs\n    location: {}\n", 7, 5,
                 "missing required key 'path' in 'spec.storage.location': obs storage needs it (ModelArts.6317)");
}

static void test_name(void **state) {
        (void) state;
        Parsed p;
        char doc[512];
        const char *n64 = "a234567890123456789012345678901234567890123456789012345678901234";
        snprintf(doc, sizeof(doc), "name: %s\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC, n64);
        valid(&p, doc);
        done(&p);
        snprintf(doc, sizeof(doc), "name: %s5\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC, n64);
        invalid1(doc, 1, 7, "name too long: 65 characters (limit 64)");

        valid(&p, "name: A-z_0-9\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC);
        done(&p);
        valid(&p, "name: x\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC);
        done(&p);

        invalid1("name: ''\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC, 1, 7,
                 "'name' must not be empty");
        invalid1("name: my notebook\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC, 1, 7,
                 "invalid name 'my notebook': only letters, digits, '-' and '_' are allowed");
        invalid1("name: nb.1\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC, 1, 7,
                 "invalid name 'nb.1': only letters, digits, '-' and '_' are allowed");
        invalid1("name: caf\xc3\xa9\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC, 1, 7,
                 "invalid name 'caf\xc3\xa9': only letters, digits, '-' and '_' are allowed");
        invalid1("name: \"a\\nb\"\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC, 1, 7,
                 "invalid name 'a\\x0ab': only letters, digits, '-' and '_' are allowed");
        invalid1("name: 123\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC, 1, 7,
                 "'name' must be a string, got an integer (quote it to make it a string)");
        invalid1("name:\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC, 1, 6,
                 "'name' must be a string, got null");
        invalid1("name: [a]\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC, 1, 7,
                 "'name' must be a string, got a list");
        /* quoted digits are a string, and a valid name */
        valid(&p, "name: \"123\"\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC);
        done(&p);
}

static void test_description(void **state) {
        (void) state;
        Parsed p;
        /* 512 Chinese characters (1536 bytes) are valid; 513 are not */
        char doc[4096];
        size_t o = (size_t) snprintf(doc, sizeof(doc), EVS_HEAD EVS_SPEC "description: ");
        for (int i = 0; i < DESCRIPTION_MAX_CHARS; i++)
                o += (size_t) snprintf(doc + o, sizeof(doc) - o, "\xe4\xb8\xad");
        snprintf(doc + o, sizeof(doc) - o, "\n");
        const NotebookSpec *s = valid(&p, doc);
        assert_int_equal(strlen(s->description), 3 * DESCRIPTION_MAX_CHARS);
        done(&p);
        snprintf(doc + o, sizeof(doc) - o, "\xe4\xb8\xad\n");
        invalid1(doc, 7, 14, "description too long: 513 characters (limit 512)");

        s = valid(&p, EVS_HEAD EVS_SPEC "description: ''\n");
        assert_string_equal(s->description, "");
        done(&p);

        static const char *const bad[] = { "&", "<", ">", "\"", "'", "/" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char want[128];
                snprintf(want, sizeof(want), "description must not contain '%s%s' (none of & < > \" ' / are allowed)",
                         streq(bad[i], "'") ? "\\" : "", bad[i]);
                snprintf(doc, sizeof(doc), EVS_HEAD EVS_SPEC "description: \"a %s%s b\"\n",
                         streq(bad[i], "\"") ? "\\" : "", bad[i]);
                invalid1(doc, 7, 14, want);
        }
        /* both rules at once: two errors */
        o = (size_t) snprintf(doc, sizeof(doc), EVS_HEAD EVS_SPEC "description: ");
        for (int i = 0; i < DESCRIPTION_MAX_CHARS; i++)
                doc[o++] = 'x';
        snprintf(doc + o, sizeof(doc) - o, "/\n");
        parse(&p, doc);
        assert_counts(&p, 2, 0);
        done(&p);
        invalid1(EVS_HEAD EVS_SPEC "description: 5\n", 7, 14,
                 "'description' must be a string, got an integer (quote it to make it a string)");
}

/* One document with this profile_id and flavor (written as given, so quote as needed). */
static void parse_pf(Parsed *p, const char *profile, const char *flavor, const ManifestPolicy *policy) {
        char doc[1024];
        snprintf(doc, sizeof(doc), "name: a\nprofile_id: %s\nflavor: %s\n" EVS_SPEC, profile, flavor);
        parse_policy(p, doc, policy);
}

/* profile_id and flavor are open sets: today's names, names nobody knows, any printable
 * string of at most 128 characters. */
static void test_profile_and_flavor_open(void **state) {
        (void) state;
        Parsed p;
        static const char *const open[][2] = {
                { "Multi-Engine 1.0 (python3)-cpu", "modelarts.vm.cpu.2u" },
                { "\"Multi-Engine 2.0 (python3)\"", "modelarts.vm.gpu.v100" },
                { "Ascend-Power-Engine 1.0(python3)", "modelarts.kat1.xlarge" },
                { "TF-2.1.0&Pytorch-1.4.0-python3.6", "modelarts.bm.gpu.v100NV32" },
                { "Multi-Engine 1.0 (python3)-gpu", "modelarts.bm.gpu.v100NV32" },
                /* unknown to notebookd and not close to a known name: no diagnostic */
                { "TensorFlow", "c6.large" },
                { "mindspore_1.7.0-cann_5.1.0-py_3.7-euler_2.8.3", "modelarts.p3.large.public" },
                { "\"caf\xc3\xa9 (beta) & co.\"", "exclusive.vm.cpu" },
        };
        for (size_t i = 0; i < ELEMENTSOF(open); i++) {
                parse_pf(&p, open[i][0], open[i][1], NULL);
                assert_counts(&p, 0, 0);
                assert_int_equal(p.specs.n, 1);
                done(&p);
        }
        /* sent as written */
        const NotebookSpec *s = valid(&p, "name: a\nprofile_id: Ascend-Power-Engine 1.0(python3)\n"
                                          "flavor: modelarts.kat1.xlarge\n" EVS_SPEC);
        assert_string_equal(s->profile_id, "Ascend-Power-Engine 1.0(python3)");
        assert_string_equal(s->flavor, "modelarts.kat1.xlarge");
        done(&p);

        /* 128 characters (multi-byte ones count once) are fine, 129 are not */
        char v[1024];
        size_t o = 0;
        v[o++] = '"';
        for (int i = 0; i < PROFILE_FLAVOR_MAX_CHARS; i++)
                o += (size_t) snprintf(v + o, sizeof(v) - o, "\xe4\xb8\xad");
        snprintf(v + o, sizeof(v) - o, "\"");
        parse_pf(&p, v, "modelarts.vm.cpu.2u", NULL);
        assert_counts(&p, 0, 0);
        done(&p);
        parse_pf(&p, "modelarts.vm.cpu.2u", v, NULL);
        assert_counts(&p, 0, 0);
        done(&p);
        snprintf(v + o, sizeof(v) - o, "x\"");
        parse_pf(&p, v, "modelarts.vm.cpu.2u", NULL);
        assert_error(&p, 2, 13, "profile_id too long: 129 characters (limit 128)");
        assert_counts(&p, 1, 0);
        done(&p);
        parse_pf(&p, "Python3", v, NULL);
        assert_error(&p, 3, 9, "flavor too long: 129 characters (limit 128)");
        assert_counts(&p, 1, 0);
        done(&p);

        invalid1("name: a\nprofile_id: ''\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC, 2, 13, "'profile_id' must not be empty");
        invalid1("name: a\nprofile_id: Python3\nflavor: \"\"\n" EVS_SPEC, 3, 9, "'flavor' must not be empty");
        invalid1("name: a\nprofile_id: \"Py\\tthon3\"\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC, 2, 13,
                 "profile_id 'Py\\x09thon3' contains a control character");
        invalid1("name: a\nprofile_id: Python3\nflavor: \"a\\x7fb\"\n" EVS_SPEC, 3, 9,
                 "flavor 'a\\x7fb' contains a control character");
        invalid1("name: a\nprofile_id: \"x\\u0085y\"\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC, 2, 13,
                 "profile_id 'x\\xc2\\x85y' contains a control character");
        invalid1("name: a\nprofile_id: Python3\nflavor: 2\n" EVS_SPEC, 3, 9,
                 "'flavor' must be a string, got an integer (quote it to make it a string)");
        invalid1("name: a\nprofile_id: [Python3]\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC, 2, 13,
                 "'profile_id' must be a string, got a list");
}

/* A near miss of a known value is a warning with the known one, never an error. */
static void test_profile_and_flavor_near_miss(void **state) {
        (void) state;
        Parsed p;
        static const struct {
                const char *profile, *flavor;
                unsigned line, column;
                const char *warning;
        } cases[] = {
                { "Pyhton3", "modelarts.vm.cpu.2u", 2, 13,
                  "profile_id 'Pyhton3' is not one notebookd knows (did you mean 'Python3'?); it is sent as written" },
                { "python3", "modelarts.vm.cpu.2u", 2, 13,
                  "profile_id 'python3' is not one notebookd knows (did you mean 'Python3'?); it is sent as written" },
                { "Multi-Engine 1.0 (python3) -cpu", "modelarts.vm.cpu.2u", 2, 13,
                  "profile_id 'Multi-Engine 1.0 (python3) -cpu' is not one notebookd knows "
                  "(did you mean 'Multi-Engine 1.0 (python3)-cpu'?); it is sent as written" },
                { "Ascend-Power-Engine 1.0 (python3)", "modelarts.kat1.xlarge", 2, 13,
                  "profile_id 'Ascend-Power-Engine 1.0 (python3)' is not one notebookd knows "
                  "(did you mean 'Ascend-Power-Engine 1.0(python3)'?); it is sent as written" },
                { "Python3", "modelarts.vm.cpu.2", 3, 9,
                  "flavor 'modelarts.vm.cpu.2' is not one notebookd knows (did you mean 'modelarts.vm.cpu.2u'?); "
                  "it is sent as written" },
                { "Python3", "MODELARTS.VM.CPU.2U", 3, 9,
                  "flavor 'MODELARTS.VM.CPU.2U' is not one notebookd knows (did you mean 'modelarts.vm.cpu.2u'?); "
                  "it is sent as written" },
                { "Python3-gpu", "modelarts.vm.gpu.p10", 3, 9,
                  "flavor 'modelarts.vm.gpu.p10' is not one notebookd knows (did you mean 'modelarts.vm.gpu.p100'?); "
                  "it is sent as written" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                parse_pf(&p, cases[i].profile, cases[i].flavor, NULL);
                assert_warning(&p, cases[i].line, cases[i].column, cases[i].warning);
                assert_counts(&p, 0, 1);
                assert_int_equal(p.specs.n, 1);
                done(&p);
        }
        /* a known value has no suggestion, however close another is */
        for (size_t i = 0; i < catalog_n_profiles; i++)
                assert_null(catalog_suggest_profile(catalog_profiles[i].name));
        for (size_t i = 0; i < catalog_n_flavors; i++)
                assert_null(catalog_suggest_flavor(catalog_flavors[i].name));
        assert_null(catalog_suggest_profile("TensorFlow"));
        assert_null(catalog_suggest_flavor("c6.large"));
}

/* The kind check runs on known values only, and ANY never clashes. */
static void test_profile_and_flavor_kinds(void **state) {
        (void) state;
        Parsed p;
        /* every known profile with every known flavor */
        size_t clashes = 0;
        for (size_t i = 0; i < catalog_n_profiles; i++)
                for (size_t j = 0; j < catalog_n_flavors; j++) {
                        char profile[128];
                        snprintf(profile, sizeof(profile), "\"%s\"", catalog_profiles[i].name);
                        parse_pf(&p, profile, catalog_flavors[j].name, NULL);
                        CatalogKind pk = catalog_profiles[i].kind, fk = catalog_flavors[j].kind;
                        bool clash = pk != CATALOG_KIND_ANY && pk != fk;
                        clashes += clash;
                        assert_int_equal(p.specs.n, clash ? 0 : 1);
                        assert_counts(&p, clash ? 1 : 0, 0);
                        done(&p);
                }
        assert_true(clashes > 0);

        /* each kind (CPU, GPU, Ascend, any) across the three generations of names */
        static const struct {
                const char *name;
                CatalogKind kind;
        } kinds[] = {
                { "Python2", CATALOG_KIND_CPU },
                { "Python3-gpu", CATALOG_KIND_GPU },
                { "Multi-Engine 2.0 (python3)", CATALOG_KIND_ANY },
                { "TF-2.1.0&Pytorch-1.4.0-python3.6", CATALOG_KIND_ANY },
                { "Ascend-Power-Engine 1.0(python3)", CATALOG_KIND_ASCEND },
                { "Multi-Engine 1.0 (python2)-cpu", CATALOG_KIND_CPU },
                { "Multi-Engine 1.0 (python3)-gpu", CATALOG_KIND_GPU },
        };
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                const CatalogEntry *e = catalog_find_profile(kinds[i].name);
                assert_non_null(e);
                assert_int_equal(e->kind, kinds[i].kind);
        }
        assert_int_equal(catalog_find_flavor("modelarts.vm.cpu.free")->kind, CATALOG_KIND_CPU);
        assert_int_equal(catalog_find_flavor("modelarts.bm.gpu.v100NV32")->kind, CATALOG_KIND_GPU);
        assert_int_equal(catalog_find_flavor("modelarts.kat1.xlarge")->kind, CATALOG_KIND_ASCEND);
        assert_null(catalog_find_flavor("modelarts.vm.cpu.4u"));
        assert_null(catalog_find_profile("python3"));

        invalid1("name: a\nprofile_id: Python3-gpu\nflavor: modelarts.vm.cpu.8u\n" EVS_SPEC, 3, 9,
                 "profile_id 'Python3-gpu' needs a GPU flavor, 'modelarts.vm.cpu.8u' is a CPU flavor (ModelArts.6330)");
        invalid1("name: a\nprofile_id: Python2\nflavor: modelarts.vm.gpu.p100\n" EVS_SPEC, 3, 9,
                 "profile_id 'Python2' needs a CPU flavor, 'modelarts.vm.gpu.p100' is a GPU flavor (ModelArts.6330)");
        invalid1("name: a\nprofile_id: Ascend-Power-Engine 1.0(python3)\nflavor: modelarts.bm.gpu.v100NV32\n" EVS_SPEC,
                 3, 9,
                 "profile_id 'Ascend-Power-Engine 1.0(python3)' needs an Ascend flavor, 'modelarts.bm.gpu.v100NV32' is a "
                 "GPU flavor (ModelArts.6330)");
        invalid1("name: a\nprofile_id: Multi-Engine 1.0 (python3)-cpu\nflavor: modelarts.kat1.xlarge\n" EVS_SPEC, 3, 9,
                 "profile_id 'Multi-Engine 1.0 (python3)-cpu' needs a CPU flavor, 'modelarts.kat1.xlarge' is an "
                 "Ascend flavor (ModelArts.6330)");

        /* an unknown flavor (or profile) skips the check: the cloud decides */
        parse_pf(&p, "Python3-gpu", "modelarts.p3.large.public", NULL);
        assert_counts(&p, 0, 0);
        assert_int_equal(p.specs.n, 1);
        done(&p);
        parse_pf(&p, "Python3-gpu", "modelarts.vm.cpu.4u", NULL);
        assert_counts(&p, 0, 1); /* only the near-miss warning */
        assert_int_equal(p.specs.n, 1);
        done(&p);
        parse_pf(&p, "pytorch-2.1-gpu", "modelarts.vm.cpu.8u", NULL);
        assert_counts(&p, 0, 0);
        done(&p);
}

/* The host config's profiles:/flavors: globs. */
static void test_profile_and_flavor_policy(void **state) {
        (void) state;
        Parsed p;
        static const char *const profiles[] = { "Multi-Engine *", "Python3" };
        static const char *const flavors[] = { "modelarts.vm.cpu.*", "modelarts.kat1.*" };
        const ManifestPolicy policy = {
                .source = "/etc/notebookd/notebookd.yaml",
                .profiles = profiles, .n_profiles = ELEMENTSOF(profiles),
                .flavors = flavors, .n_flavors = ELEMENTSOF(flavors),
        };
        parse_pf(&p, "Multi-Engine 1.0 (python3)-cpu", "modelarts.vm.cpu.2u", &policy);
        assert_counts(&p, 0, 0);
        assert_int_equal(p.specs.n, 1);
        done(&p);
        parse_pf(&p, "Python3", "modelarts.vm.cpu.anything-new", &policy);
        assert_counts(&p, 0, 0);
        done(&p);

        parse_pf(&p, "Python3", "modelarts.vm.gpu.p100", &policy);
        assert_error(&p, 3, 9, "flavor 'modelarts.vm.gpu.p100' is not allowed by 'flavors' in /etc/notebookd/notebookd.yaml");
        assert_counts(&p, 1, 0);
        assert_int_equal(p.specs.n, 0);
        done(&p);
        parse_pf(&p, "Python2", "modelarts.vm.cpu.2u", &policy);
        assert_error(&p, 2, 13, "profile_id 'Python2' is not allowed by 'profiles' in /etc/notebookd/notebookd.yaml");
        assert_counts(&p, 1, 0);
        done(&p);
        /* both refused: both reported; no kind check and no near-miss hint on a refused value */
        parse_pf(&p, "Pyhton3", "modelarts.vm.gpu.p100", &policy);
        assert_error(&p, 2, 13, "profile_id 'Pyhton3' is not allowed by 'profiles' in /etc/notebookd/notebookd.yaml");
        assert_error(&p, 3, 9, "flavor 'modelarts.vm.gpu.p100' is not allowed by 'flavors' in /etc/notebookd/notebookd.yaml");
        assert_counts(&p, 2, 0);
        done(&p);
        /* an allowed near miss still gets its warning */
        parse_pf(&p, "Python3", "modelarts.vm.cpu.2", &policy);
        assert_counts(&p, 0, 1);
        done(&p);

        /* one list only: the other key is free */
        const ManifestPolicy flavors_only = { .source = "c.yaml", .flavors = flavors, .n_flavors = 1 };
        parse_pf(&p, "Anything", "modelarts.kat1.xlarge", &flavors_only);
        assert_error(&p, 3, 9, "flavor 'modelarts.kat1.xlarge' is not allowed by 'flavors' in c.yaml");
        assert_counts(&p, 1, 0);
        done(&p);
        /* an empty policy is no policy */
        const ManifestPolicy none = {};
        parse_pf(&p, "Anything", "c6.large", &none);
        assert_counts(&p, 0, 0);
        done(&p);
}

static void test_storage_type(void **state) {
        (void) state;
        invalid1(EVS_HEAD "spec:\n  storage:\n    type: OBS\n    location:\n      path: b1b/x/\n", 6, 11,
                 "unknown storage type 'OBS' (did you mean 'obs'?)");
        invalid1(EVS_HEAD "spec:\n  storage:\n    type: nfs\n", 6, 11,
                 "unknown storage type 'nfs' (did you mean 'obs'?)");
        invalid1(EVS_HEAD "spec:\n  storage:\n    type: efs-turbo\n", 6, 11,
                 "unknown storage type 'efs-turbo' (expected one of: obs, evs)");
        invalid1(EVS_HEAD "spec:\n  storage:\n    type: [evs]\n", 6, 11, "'spec.storage.type' must be a string, got a list");
}

#define OBS_DOC(path) EVS_HEAD "spec:\n  storage:\n    type: obs\n    location:\n      path: " path "\n"

static void test_obs_path(void **state) {
        (void) state;
        Parsed p;
        const NotebookSpec *s = valid(&p, OBS_DOC("my-bucket/dir/sub/"));
        assert_string_equal(s->storage_path, "my-bucket/dir/sub/");
        done(&p);
        s = valid(&p, OBS_DOC("/my.bucket-1/dir/"));
        assert_string_equal(s->storage_path, "/my.bucket-1/dir/");
        done(&p);
        s = valid(&p, OBS_DOC("abc/\xe7\x9b\xae\xe5\xbd\x95 x/"));
        done(&p);

        invalid1(OBS_DOC("my-bucket/dir"), 8, 13, "OBS path 'my-bucket/dir' must end with '/' (ModelArts.6318)");
        invalid1(OBS_DOC("my-bucket"), 8, 13, "OBS path 'my-bucket' must end with '/' (ModelArts.6318)");
        invalid1(OBS_DOC("my-bucket/"), 8, 13,
                 "OBS path 'my-bucket/' is a bucket's root: name a directory in it, e.g. 'my-bucket/notebooks/' (ModelArts.6358)");
        invalid1(OBS_DOC("/my-bucket/"), 8, 13,
                 "OBS path '/my-bucket/' is a bucket's root: name a directory in it, e.g. 'my-bucket/notebooks/' (ModelArts.6358)");
        invalid1(OBS_DOC("obs://my-bucket/dir/"), 8, 13,
                 "OBS path 'obs://my-bucket/dir/' must not have a scheme: write it as 'my-bucket/dir/'");
        invalid1(OBS_DOC("My_Bucket/dir/"), 8, 13,
                 "invalid OBS bucket name 'My_Bucket' in 'My_Bucket/dir/' (3-63 characters: lowercase letters, digits, '-' and '.')");
        invalid1(OBS_DOC("ab/dir/"), 8, 13,
                 "invalid OBS bucket name 'ab' in 'ab/dir/' (3-63 characters: lowercase letters, digits, '-' and '.')");
        invalid1(OBS_DOC("/"), 8, 13,
                 "invalid OBS bucket name '' in '/' (3-63 characters: lowercase letters, digits, '-' and '.')");
        invalid1(OBS_DOC("-bucket/dir/"), 8, 13,
                 "invalid OBS bucket name '-bucket' in '-bucket/dir/' (3-63 characters: lowercase letters, digits, '-' and '.')");
        invalid1(OBS_DOC("bucket//dir/"), 8, 13, "OBS path 'bucket//dir/' has an empty directory name ('//')");
        invalid1(OBS_DOC("\"bucket/a\\tb/\""), 8, 13, "OBS path 'bucket/a\\x09b/' contains a control character or backslash");
        invalid1(OBS_DOC("''"), 8, 13,
                 "'spec.storage.location.path' must not be empty: obs storage needs a directory like 'bucket/notebooks/'");
        invalid1(OBS_DOC("7"), 8, 13,
                 "'spec.storage.location.path' must be a string, got an integer (quote it to make it a string)");

        /* 63-character bucket names are fine, 64 are not */
        char doc[512];
        snprintf(doc, sizeof(doc), OBS_DOC("%s/d/"), "b23456789012345678901234567890123456789012345678901234567890123");
        valid(&p, doc);
        done(&p);
        snprintf(doc, sizeof(doc), OBS_DOC("%s/d/"), "b234567890123456789012345678901234567890123456789012345678901234");
        parse(&p, doc);
        assert_counts(&p, 1, 0);
        done(&p);

        /* volume_size on obs: a warning, the spec is still valid */
        s = valid(&p, OBS_DOC("bucket/dir/") "      volume_size: 10\n");
        assert_counts(&p, 0, 1);
        assert_warning(&p, 9, 7, "'volume_size' is not used with obs storage: ignored");
        assert_string_equal(s->storage_path, "bucket/dir/");
        done(&p);
}

#define EVS_SIZE(v) EVS_HEAD EVS_SPEC "    location:\n      volume_size: " v "\n"

static void test_evs_volume_size(void **state) {
        (void) state;
        Parsed p;
        const NotebookSpec *s = valid(&p, EVS_SIZE("5"));
        assert_int_equal(s->volume_size, 5);
        done(&p);
        s = valid(&p, EVS_SIZE("4096"));
        assert_int_equal(s->volume_size, 4096);
        done(&p);
        s = valid(&p, EVS_SIZE("100"));
        assert_int_equal(s->volume_size, 100);
        done(&p);
        invalid1(EVS_SIZE("4"), 8, 20, "volume_size 4 out of range: 5 to 4096 (GB)");
        invalid1(EVS_SIZE("4097"), 8, 20, "volume_size 4097 out of range: 5 to 4096 (GB)");
        invalid1(EVS_SIZE("-5"), 8, 20, "volume_size -5 out of range: 5 to 4096 (GB)");
        invalid1(EVS_SIZE("99999999999999999999"), 8, 20, "volume_size 99999999999999999999 out of range: 5 to 4096 (GB)");
        invalid1(EVS_SIZE("\"5\""), 8, 20,
                 "'spec.storage.location.volume_size' must be an integer, got a string (remove the quotes)");
        invalid1(EVS_SIZE("five"), 8, 20, "'spec.storage.location.volume_size' must be an integer, got a string");
        invalid1(EVS_SIZE("5.0"), 8, 20, "'spec.storage.location.volume_size' must be an integer, got a number");
        invalid1(EVS_SIZE("10G"), 8, 20, "'spec.storage.location.volume_size' must be an integer, got a string");
        invalid1(EVS_SIZE(""), 8, 19, "'spec.storage.location.volume_size' must be an integer, got null");

        /* a path on evs: a warning */
        s = valid(&p, EVS_HEAD EVS_SPEC "    location:\n      path: bucket/dir/\n");
        assert_counts(&p, 0, 1);
        assert_warning(&p, 8, 7, "'path' is not used with evs storage: ignored");
        assert_null(s->storage_path);
        done(&p);
}

static void test_annotations(void **state) {
        (void) state;
        Parsed p;
        const NotebookSpec *s = valid(&p, EVS_HEAD EVS_SPEC "  annotations:\n    team: ml\n    replicas: 3\n    \"a/b\": 'x y'\n");
        assert_true(s->has_annotations);
        assert_int_equal(s->n_annotations, 3);
        assert_string_equal(s->annotations[0].key, "team");
        assert_string_equal(s->annotations[0].value, "ml");
        assert_string_equal(s->annotations[1].key, "replicas");
        assert_string_equal(s->annotations[1].value, "3");
        assert_string_equal(s->annotations[2].key, "a/b");
        assert_string_equal(s->annotations[2].value, "x y");
        done(&p);

        s = valid(&p, EVS_HEAD EVS_SPEC "  annotations: {}\n");
        assert_true(s->has_annotations);
        assert_int_equal(s->n_annotations, 0);
        done(&p);

        invalid1(EVS_HEAD EVS_SPEC "  annotations:\n    nested:\n      x: 1\n", 9, 7,
                 "annotation 'nested' must be a string, got a mapping");
        invalid1(EVS_HEAD EVS_SPEC "  annotations:\n    empty:\n", 8, 11, "annotation 'empty' must be a string, got null");
        invalid1(EVS_HEAD EVS_SPEC "  annotations: [a, b]\n", 7, 16, "'spec.annotations' must be a mapping, got a list");
        invalid1(EVS_HEAD EVS_SPEC "  annotations: x\n", 7, 16, "'spec.annotations' must be a mapping, got a string");
}

static void test_workspace(void **state) {
        (void) state;
        Parsed p;
        const NotebookSpec *s = valid(&p, EVS_HEAD EVS_SPEC "workspace:\n  id: 0\n");
        assert_string_equal(s->workspace_id, "0");
        done(&p);
        s = valid(&p, EVS_HEAD EVS_SPEC "workspace:\n  id: 0123\n");
        assert_string_equal(s->workspace_id, "0123");
        done(&p);
        s = valid(&p, EVS_HEAD EVS_SPEC "workspace:\n  id: 8e4c6a2b0f9a4b0c8d1e2f3a4b5c6d7e\n");
        assert_string_equal(s->workspace_id, "8e4c6a2b0f9a4b0c8d1e2f3a4b5c6d7e");
        done(&p);
        invalid1(EVS_HEAD EVS_SPEC "workspace:\n  id: [1]\n", 8, 7, "'workspace.id' must be a string, got a list");
        invalid1(EVS_HEAD EVS_SPEC "workspace:\n  id: true\n", 8, 7,
                 "'workspace.id' must be a string, got a boolean (quote it to make it a string)");
        invalid1(EVS_HEAD EVS_SPEC "workspace:\n  id: ''\n", 8, 7, "'workspace.id' must not be empty");
        invalid1(EVS_HEAD EVS_SPEC "workspace: 0\n", 7, 12, "'workspace' must be a mapping, got an integer");
        invalid1(EVS_HEAD EVS_SPEC "workspace:\n  name: x\n", 8, 3, "unknown key 'name' in 'workspace' (it belongs at the top level)");
}

/* pool and ai_project: like workspace, but the id is required. */
static void test_pool_and_ai_project(void **state) {
        (void) state;
        Parsed p;
        const NotebookSpec *s = valid(&p, EVS_HEAD EVS_SPEC);
        assert_null(s->pool_id);
        assert_null(s->ai_project_id);
        done(&p);
        s = valid(&p, EVS_HEAD EVS_SPEC "pool:\n  id: pool-8e4c6a2b\nai_project:\n  id: default-ai-project\n");
        assert_string_equal(s->pool_id, "pool-8e4c6a2b");
        assert_string_equal(s->ai_project_id, "default-ai-project");
        assert_string_equal(s->workspace_id, "0");
        NotebookSpec *copy = NULL;
        assert_int_equal(spec_dup(s, &copy), 0);
        assert_string_equal(copy->pool_id, "pool-8e4c6a2b");
        assert_string_equal(copy->ai_project_id, "default-ai-project");
        assert_ptr_not_equal(copy->pool_id, s->pool_id);
        spec_free(copy);
        done(&p);
        /* an unquoted integer is taken as written */
        s = valid(&p, EVS_HEAD EVS_SPEC "pool: {id: 0012}\nai_project: {id: 7}\n");
        assert_string_equal(s->pool_id, "0012");
        assert_string_equal(s->ai_project_id, "7");
        done(&p);

        invalid1(EVS_HEAD EVS_SPEC "pool: {}\n", 7, 1, "missing required key 'id' in 'pool'");
        invalid1(EVS_HEAD EVS_SPEC "ai_project: {}\n", 7, 1, "missing required key 'id' in 'ai_project'");
        invalid1(EVS_HEAD EVS_SPEC "pool: p1\n", 7, 7, "'pool' must be a mapping, got a string");
        invalid1(EVS_HEAD EVS_SPEC "ai_project:\n", 7, 12, "'ai_project' must be a mapping, got null");
        invalid1(EVS_HEAD EVS_SPEC "pool:\n  id: ''\n", 8, 7, "'pool.id' must not be empty");
        invalid1(EVS_HEAD EVS_SPEC "pool:\n  id: [1]\n", 8, 7, "'pool.id' must be a string, got a list");
        invalid1(EVS_HEAD EVS_SPEC "ai_project:\n  id: true\n", 8, 7,
                 "'ai_project.id' must be a string, got a boolean (quote it to make it a string)");
        parse(&p, EVS_HEAD EVS_SPEC "pool:\n  id: p\n  name: x\n");
        assert_error(&p, 9, 3, "unknown key 'name' in 'pool' (it belongs at the top level)");
        assert_counts(&p, 1, 0);
        done(&p);
        invalid1(EVS_HEAD EVS_SPEC "pools: {id: p}\n", 7, 1, "unknown key 'pools' (did you mean 'pool'?)");
}

static char *body_text(const NotebookSpec *s) {
        cJSON *body = NULL;
        assert_int_equal(spec_to_create_body(s, &body), 0);
        char *text = cJSON_PrintUnformatted(body);
        cJSON_Delete(body);
        assert_non_null(text);
        return text;
}

/* The body, and so the spec hash recorded for every instance, of a manifest without the
 * newer keys is what it was before they existed: a new notebookd must not see drift
 * everywhere. pool and ai_project come after workspace, only when given. */
static void test_body_and_hash_pinned(void **state) {
        (void) state;
        Parsed p;
        static const char *const doc = "name: notebook-instance\n"
                                       "profile_id: Python2\n"
                                       "description: create a notebook instance\n"
                                       "flavor: modelarts.vm.cpu.2u\n"
                                       "spec:\n"
                                       "  storage:\n"
                                       "    type: obs\n"
                                       "    location:\n"
                                       "      path: obs-bucket/test/\n"
                                       "  annotations:\n"
                                       "    team: vision\n"
                                       "workspace:\n"
                                       "  id: \"0\"\n";
        /* pinned from the code before pool/ai_project (commit 1de204f) */
        static const char *const pinned_body =
                "{\"name\":\"notebook-instance\",\"profile_id\":\"Python2\",\"description\":\"create a notebook instance\","
                "\"flavor\":\"modelarts.vm.cpu.2u\",\"spec\":{\"storage\":{\"type\":\"obs\",\"location\":"
                "{\"path\":\"obs-bucket/test/\"}},\"annotations\":{\"team\":\"vision\"}},\"workspace\":{\"id\":\"0\"}}";
        static const char *const pinned_hash = "d8b9e7c417a1a6e00f2f1f28a1315592c1f53920b2194e7df2dd2f790b7cae59";

        const NotebookSpec *s = valid(&p, doc);
        char *text = body_text(s);
        assert_string_equal(text, pinned_body);
        cJSON_free(text);
        char hash[SPEC_HASH_HEX_LEN + 1];
        assert_int_equal(spec_hash(s, hash), 0);
        assert_string_equal(hash, pinned_hash);
        /* sealed at validation, and the kept hash is the one computed from the body */
        assert_true(s->sealed);
        NotebookSpec unsealed = *s;
        unsealed.sealed = false;
        memset(unsealed.digest, 0, sizeof(unsealed.digest));
        memset(hash, 0, sizeof(hash));
        assert_int_equal(spec_hash(&unsealed, hash), 0);
        assert_string_equal(hash, pinned_hash);
        done(&p);

        char with[1024];
        snprintf(with, sizeof(with), "%sai_project: {id: proj-1}\npool: {id: pool-1}\n", doc);
        s = valid(&p, with);
        text = body_text(s);
        /* the same body up to workspace, then pool, then ai_project, whatever the YAML order */
        size_t n = strlen(pinned_body) - 1;
        assert_memory_equal(text, pinned_body, n);
        assert_string_equal(text + n, ",\"pool\":{\"id\":\"pool-1\"},\"ai_project\":{\"id\":\"proj-1\"}}");
        cJSON_free(text);
        char hash2[SPEC_HASH_HEX_LEN + 1];
        assert_int_equal(spec_hash(s, hash2), 0);
        assert_string_not_equal(hash2, pinned_hash);
        done(&p);

        snprintf(with, sizeof(with), "%sai_project: {id: proj-1}\n", doc);
        s = valid(&p, with);
        text = body_text(s);
        assert_string_equal(text + n, ",\"ai_project\":{\"id\":\"proj-1\"}}");
        cJSON_free(text);
        done(&p);
}

static void test_envelope(void **state) {
        (void) state;
        invalid1("apiVersion: v1\n" EVS_HEAD EVS_SPEC, 1, 13, "unsupported apiVersion 'v1' (expected 'notebookd/v1')");
        invalid1("kind: notebook\n" EVS_HEAD EVS_SPEC, 1, 7, "unsupported kind 'notebook' (expected 'Notebook')");
        invalid1("kind: 1\n" EVS_HEAD EVS_SPEC, 1, 7, "'kind' must be a string, got an integer (quote it to make it a string)");
}

static void test_unknown_keys(void **state) {
        (void) state;
        invalid1("name: a\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nflavour: x\n" EVS_SPEC, 4, 1,
                 "unknown key 'flavour' (did you mean 'flavor'?)");
        invalid1(EVS_HEAD EVS_SPEC "metadata: {}\n", 7, 1, "unknown key 'metadata'");
        invalid1(EVS_HEAD EVS_SPEC "    typ: evs\n", 7, 5, "unknown key 'typ' in 'spec.storage' (did you mean 'type'?)");
        invalid1(EVS_HEAD EVS_SPEC "    volume_size: 10\n", 7, 5,
                 "unknown key 'volume_size' in 'spec.storage' (it belongs in 'spec.storage.location')");
        invalid1(EVS_HEAD EVS_SPEC "    location:\n      size: 10\n", 8, 7,
                 "unknown key 'size' in 'spec.storage.location'");
        invalid1(EVS_HEAD "storage:\n  type: evs\n" EVS_SPEC, 4, 1, "unknown key 'storage' (it belongs in 'spec')");
        invalid1(EVS_HEAD EVS_SPEC "  annotation: {}\n", 7, 3, "unknown key 'annotation' in 'spec' (did you mean 'annotations'?)");
        /* a control character in a key cannot forge a line */
        invalid1(EVS_HEAD EVS_SPEC "\"x\\ny: 1\": 2\n", 7, 1, "unknown key 'x\\x0ay: 1'");
}

static void test_wrong_types(void **state) {
        (void) state;
        invalid1(EVS_HEAD "spec: [1, 2]\n", 4, 7, "'spec' must be a mapping, got a list");
        invalid1(EVS_HEAD "spec:\n  storage: evs\n", 5, 12, "'spec.storage' must be a mapping, got a string");
        invalid1(EVS_HEAD EVS_SPEC "    location: 5\n", 7, 15, "'spec.storage.location' must be a mapping, got an integer");
        invalid1(EVS_HEAD "spec:\n", 4, 6, "'spec' must be a mapping, got null");
}

static void test_top_level_not_mapping(void **state) {
        (void) state;
        invalid1("- name: a\n- name: b\n", 1, 1, "a manifest document must be a mapping of the create call's fields, got a list");
        invalid1("just text\n", 1, 1, "a manifest document must be a mapping of the create call's fields, got a string");
        invalid1("---\n42\n", 2, 1, "a manifest document must be a mapping of the create call's fields, got an integer");
}

/* Every error of a document is reported, not just the first. */
static void test_all_errors_reported(void **state) {
        (void) state;
        Parsed p;
        parse(&p, "name: bad name\n"
                  "profile_id: python3\n"
                  "flavour: modelarts.vm.cpu.2u\n"
                  "description: a<b\n"
                  "spec:\n"
                  "  storage:\n"
                  "    type: evs\n"
                  "    location:\n"
                  "      volume_size: five\n"
                  "      path: x/y/\n"
                  "  annotations:\n"
                  "    a: [1]\n"
                  "workspace:\n"
                  "  id: {}\n");
        assert_error(&p, 1, 7, "invalid name 'bad name': only letters, digits, '-' and '_' are allowed");
        assert_warning(&p, 2, 13,
                       "profile_id 'python3' is not one notebookd knows (did you mean 'Python3'?); it is sent as written");
        assert_error(&p, 3, 1, "unknown key 'flavour' (did you mean 'flavor'?)");
        assert_error(&p, 1, 1, "missing required key 'flavor'");
        assert_error(&p, 4, 14, "description must not contain '<' (none of & < > \" ' / are allowed)");
        assert_error(&p, 9, 20, "'spec.storage.location.volume_size' must be an integer, got a string");
        assert_warning(&p, 10, 7, "'path' is not used with evs storage: ignored");
        assert_error(&p, 12, 8, "annotation 'a' must be a string, got a list");
        assert_error(&p, 14, 7, "'workspace.id' must be a string, got a mapping");
        assert_counts(&p, 7, 2);
        assert_int_equal(p.specs.n, 0);
        assert_int_equal(p.r.n_invalid, 1);
        /* sorted by position */
        for (size_t i = 1; i < p.d.n; i++)
                assert_true(p.d.items[i - 1].line <= p.d.items[i].line);
        done(&p);
}

/* One bad document never hides the others, nor makes them invalid. */
static void test_documents_independent(void **state) {
        (void) state;
        Parsed p;
        parse(&p, "name: one\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC
                  "---\n"
                  "name: two\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\nspec: 1\n"
                  "---\n"
                  "name: three\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC
                  "---\n"
                  "a: *alias\n"
                  "---\n"
                  "name: five\nname: again\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC);
        assert_int_equal(p.r.n_documents, 5);
        assert_int_equal(p.r.n_invalid, 3);
        assert_int_equal(p.specs.n, 2);
        assert_string_equal(p.specs.items[0]->name, "one");
        assert_string_equal(p.specs.items[1]->name, "three");
        assert_int_equal(p.specs.items[1]->doc_pos.line, 12);
        assert_int_equal(p.specs.items[1]->name_pos.line, 13);
        assert_error(&p, 11, 7, "'spec' must be a mapping, got an integer");
        assert_error(&p, 20, 4, "aliases are not allowed (alias 'alias')");
        assert_error(&p, 23, 1, "duplicate key 'name' (first defined at line 22)");
        assert_counts(&p, 3, 0);
        done(&p);
}

/* A duplicate key leaves the document whole: its other errors are reported too. */
static void test_duplicate_key_and_more(void **state) {
        (void) state;
        Parsed p;
        parse(&p, "name: a\nname: b\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" EVS_SPEC "extra: 1\n");
        assert_error(&p, 2, 1, "duplicate key 'name' (first defined at line 1)");
        assert_error(&p, 8, 1, "unknown key 'extra'");
        assert_counts(&p, 2, 0);
        assert_int_equal(p.specs.n, 0);
        done(&p);
}

static void test_file_level_errors(void **state) {
        (void) state;
        Parsed p;
        parse(&p, "");
        assert_int_equal(p.r.n_documents, 0);
        assert_int_equal(p.r.n_invalid, 0);
        assert_int_equal(p.d.n, 0);
        done(&p);

        parse(&p, "a: \xff\n");
        assert_error(&p, 1, 4, "invalid UTF-8 (byte 0xff)");
        assert_int_equal(p.r.n_documents, 1);
        assert_int_equal(p.r.n_invalid, 1);
        done(&p);

        /* a syntax error: the documents before it still count and stay valid */
        parse(&p, EVS_HEAD EVS_SPEC "---\nname: [\n");
        assert_int_equal(p.specs.n, 1);
        assert_int_equal(p.r.n_documents, 2);
        assert_int_equal(p.r.n_invalid, 1);
        assert_counts(&p, 1, 0);
        done(&p);
}

static char tmpdir[64];

static int make_tmpdir(void **state) {
        (void) state;
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-manifest-XXXXXX");
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state) {
        (void) state;
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static void write_bytes(const char *name, const char *data, size_t len) {
        _cleanup_free_ char *path = xasprintf("%s/%s", tmpdir, name);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, len, f), len);
        fclose(f);
}

static void parse_file(Parsed *p, int dfd, const char *name) {
        *p = (Parsed) { .d = DIAGS_INIT };
        assert_int_equal(manifest_parse_file(dfd, name, "m.yaml", NULL, &p->d, &p->specs, &p->r), 0);
}

static void test_parse_file(void **state) {
        (void) state;
        _cleanup_close_ int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        Parsed p;

        write_bytes("ok.yaml", OBS_EXAMPLE, strlen(OBS_EXAMPLE));
        parse_file(&p, dfd, "ok.yaml");
        assert_int_equal(p.specs.n, 1);
        assert_int_equal(p.d.n, 0);
        done(&p);

        /* exactly at the size limit: fine; one byte over: refused before parsing */
        char *big = malloc(MANIFEST_MAX_FILE_SIZE + 1);
        assert_non_null(big);
        size_t n = strlen(OBS_EXAMPLE);
        memcpy(big, OBS_EXAMPLE, n);
        for (size_t i = n; i < MANIFEST_MAX_FILE_SIZE + 1; i++)
                big[i] = (i - n) % 64 == 0 ? '\n' : (i - n) % 64 == 1 ? '#' : 'x';
        write_bytes("max.yaml", big, MANIFEST_MAX_FILE_SIZE);
        parse_file(&p, dfd, "max.yaml");
        assert_int_equal(p.specs.n, 1);
        assert_int_equal(p.d.n, 0);
        done(&p);
        write_bytes("over.yaml", big, MANIFEST_MAX_FILE_SIZE + 1);
        free(big);
        parse_file(&p, dfd, "over.yaml");
        assert_error(&p, 0, 0, "file too large (limit 1048576 bytes)");
        assert_int_equal(p.r.n_documents, 1);
        assert_int_equal(p.r.n_invalid, 1);
        done(&p);

        static const char binary[] = "\x7f" "ELF\x02\x01\x01\0\0\0";
        write_bytes("bin.yaml", binary, sizeof(binary) - 1);
        parse_file(&p, dfd, "bin.yaml");
        assert_error(&p, 1, 8, "binary file, not YAML (NUL byte)");
        assert_counts(&p, 1, 0);
        assert_int_equal(p.r.n_invalid, 1);
        done(&p);

        parse_file(&p, dfd, "missing.yaml");
        assert_error(&p, 0, 0, "cannot read: No such file or directory");
        assert_int_equal(p.r.n_invalid, 1);
        done(&p);

        assert_int_equal(mkdirat(dfd, "dir.yaml", 0755), 0);
        parse_file(&p, dfd, "dir.yaml");
        assert_error(&p, 0, 0, "is a directory, not a manifest file");
        done(&p);

        assert_int_equal(mkfifoat(dfd, "fifo.yaml", 0600), 0);
        parse_file(&p, dfd, "fifo.yaml");
        assert_error(&p, 0, 0, "not a regular file");
        done(&p);

        /* relative to AT_FDCWD with a full path */
        _cleanup_free_ char *full = xasprintf("%s/ok.yaml", tmpdir);
        parse_file(&p, AT_FDCWD, full);
        assert_int_equal(p.specs.n, 1);
        done(&p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_seed_example),
                cmocka_unit_test(test_json_body),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_missing_required),
                cmocka_unit_test(test_name),
                cmocka_unit_test(test_description),
                cmocka_unit_test(test_profile_and_flavor_open),
                cmocka_unit_test(test_profile_and_flavor_near_miss),
                cmocka_unit_test(test_profile_and_flavor_kinds),
                cmocka_unit_test(test_profile_and_flavor_policy),
                cmocka_unit_test(test_pool_and_ai_project),
                cmocka_unit_test(test_body_and_hash_pinned),
                cmocka_unit_test(test_storage_type),
                cmocka_unit_test(test_obs_path),
                cmocka_unit_test(test_evs_volume_size),
                cmocka_unit_test(test_annotations),
                cmocka_unit_test(test_workspace),
                cmocka_unit_test(test_envelope),
                cmocka_unit_test(test_unknown_keys),
                cmocka_unit_test(test_wrong_types),
                cmocka_unit_test(test_top_level_not_mapping),
                cmocka_unit_test(test_all_errors_reported),
                cmocka_unit_test(test_documents_independent),
                cmocka_unit_test(test_duplicate_key_and_more),
                cmocka_unit_test(test_file_level_errors),
                cmocka_unit_test(test_parse_file),
        };
        return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
