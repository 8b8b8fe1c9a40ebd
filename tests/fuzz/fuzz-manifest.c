/* libFuzzer target: manifest_parse_buffer() (and through it the bounded YAML loader,
 * lib/yamltree.c, and the validator), then everything done with a spec that passed:
 * the create body and the spec hash. The contract under test: any bytes at all give
 * diagnostics and a count, never a crash, a hang, a leak or undefined behaviour. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "diag.h"
#include "manifest.h"
#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Diags diags = DIAGS_INIT;
        SpecList specs = { 0 };
        ManifestResult res = { 0 };

        /* every other input under a host policy too: the globs meet hostile values */
        static const char *const profiles[] = { "Multi-Engine *", "Python[23]*", "*-gpu" };
        static const char *const flavors[] = { "modelarts.vm.cpu.*", "modelarts.kat1.*" };
        static const ManifestPolicy policy = {
                .source = "fuzz.conf",
                .profiles = profiles, .n_profiles = 3,
                .flavors = flavors, .n_flavors = 2,
        };
        int r = manifest_parse_buffer("fuzz.yaml", (const char *) data, size, size % 2 ? &policy : NULL, &diags,
                                      &specs, &res);
        if (r < 0 && r != -ENOMEM)
                abort();  /* the header promises 0 or -ENOMEM, nothing else */
        /* Invariants of the result the callers rely on. */
        if (r == 0 && (res.n_invalid > res.n_documents || specs.n > res.n_documents ||
                       (res.n_invalid > 0 && diags.n_errors == 0)))
                abort();

        for (size_t i = 0; i < specs.n; i++) {
                cJSON *body = NULL;
                char hash[SPEC_HASH_HEX_LEN + 1];
                if (spec_to_create_body(specs.items[i], &body) == 0) {
                        char *s = cJSON_PrintUnformatted(body);
                        free(s);
                        cJSON_Delete(body);
                }
                (void) spec_hash(specs.items[i], hash);
        }
        /* Formatting every diagnostic exercises the messages built from hostile text. */
        static FILE *null;
        if (!null && !(null = fopen("/dev/null", "we")))
                abort();
        diags_sort(&diags);
        diags_print(&diags, null);
        spec_list_clear(&specs);
        diags_clear(&diags);
        return 0;
}
