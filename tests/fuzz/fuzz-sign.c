/* libFuzzer target: the signer's input-facing parts (lib/sign.h). sign_canonical_query()
 * also builds the wire query, and the emulator runs it on every request it verifies;
 * sign_authorization_parse() reads a header an attacker controls. Properties checked
 * beyond "no crash": a canonical query is a fixed point (canonicalising it again changes
 * nothing: otherwise client and gateway could sign different bytes), and the canonical
 * forms never contain a raw '+' or a byte outside the unreserved set and %XX, and a
 * canonical URI always ends in '/'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_encoded(const char *s, const char *extra) {
        for (const char *p = s; *p; p++) {
                if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                    strchr("-_.~", *p) || strchr(extra, *p))
                        continue;
                if (*p == '%' && strchr("0123456789ABCDEF", p[1]) && p[1] && strchr("0123456789ABCDEF", p[2]) && p[2]) {
                        p += 2;
                        continue;
                }
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;  /* inputs with a NUL are cut there, as a C string would be */

        char *q = NULL;
        if (sign_canonical_query(s, &q) == 0) {
                check_encoded(q, "=&");
                char *again = NULL;
                if (sign_canonical_query(q, &again) != 0 || strcmp(q, again) != 0)
                        abort();
                free(again);
        }
        free(q);

        char *uri = NULL;
        if (sign_canonical_uri(s, &uri) == 0) {
                check_encoded(uri, "/");
                if (uri[0] == 0 || uri[strlen(uri) - 1] != '/')
                        abort();
        }
        free(uri);

        char *enc = NULL;
        if (sign_uri_encode(s, strlen(s), &enc) == 0)
                check_encoded(enc, "");
        free(enc);

        SignAuthorization a;
        if (sign_authorization_parse(s, &a) == 0) {
                if (!a.access || !a.access[0] || strlen(a.signature) != SIGN_SIGNATURE_HEX_LEN)
                        abort();
                sign_authorization_done(&a);
        }
        free(s);
        return 0;
}
