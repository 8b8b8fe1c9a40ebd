/* SDK-HMAC-SHA256 request signing and verification (Huawei Cloud's API signing guide,
 * AK/SK authentication).
 *
 * Everything here works on (pointer, length) byte strings rather than C strings where the
 * input is percent-decoded: a query may legitimately decode to a NUL byte ("%00"), and the
 * canonical form must re-encode it rather than cut the value short. */
#include "sign.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "limits.h"
#include "macro.h"
#include "util.h"

/* ---- a growable byte buffer; the first allocation failure sticks ---- */

typedef struct Buf {
        char *p;
        size_t n, cap;
        bool oom;
} Buf;

static void buf_add(Buf *b, const void *s, size_t n) {
        if (b->oom)
                return;
        if (b->n + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                while (cap < b->n + n + 1)
                        cap *= 2;
                char *p = realloc(b->p, cap);
                if (!p) {
                        b->oom = true;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        if (n > 0)
                memcpy(b->p + b->n, s, n);
        b->n += n;
        b->p[b->n] = 0;
}

static void buf_adds(Buf *b, const char *s) {
        buf_add(b, s, strlen(s));
}

static void buf_addc(Buf *b, char c) {
        buf_add(b, &c, 1);
}

static bool is_unreserved(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '_' || c == '.' || c == '~';
}

static void buf_add_encoded(Buf *b, const char *s, size_t n) {
        static const char hex[] = "0123456789ABCDEF";
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if (is_unreserved(c))
                        buf_addc(b, (char) c);
                else {
                        char e[3] = { '%', hex[c >> 4], hex[c & 15] };
                        buf_add(b, e, 3);
                }
        }
}

/* Hand over the buffer (an empty one becomes ""), or -ENOMEM. */
static int buf_steal(Buf *b, char **ret) {
        if (!b->oom && !b->p)
                buf_add(b, "", 0);
        if (b->oom) {
                free(b->p);
                *b = (Buf) { 0 };
                return -ENOMEM;
        }
        *ret = b->p;
        *b = (Buf) { 0 };
        return 0;
}

static void buf_done(Buf *b) {
        free(b->p);
        *b = (Buf) { 0 };
}

/* ---- encoding ---- */

int sign_uri_encode(const char *s, size_t len, char **ret) {
        if (!s && len > 0)
                return -EINVAL;
        Buf b = { 0 };
        buf_add_encoded(&b, s, len);
        return buf_steal(&b, ret);
}

int sign_canonical_uri(const char *path, char **ret) {
        Buf b = { 0 };
        const char *p = strempty(path);

        /* Encode segment by segment: '/' separates and is kept; a leading '/' is implied. */
        if (*p != '/')
                buf_addc(&b, '/');
        for (;;) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t) (slash - p) : strlen(p);
                buf_add_encoded(&b, p, n);
                if (!slash)
                        break;
                buf_addc(&b, '/');
                p = slash + 1;
        }
        if (!b.oom && b.p[b.n - 1] != '/')
                buf_addc(&b, '/');
        return buf_steal(&b, ret);
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Decode n bytes of s into out (room for n bytes); '+' stays '+'. A '%' not followed by
 * two hex digits is -EINVAL: guessing what was meant would sign something else. */
static int percent_decode(const char *s, size_t n, char *out, size_t *ret_len) {
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] != '%') {
                        out[o++] = s[i];
                        continue;
                }
                if (i + 2 >= n)
                        return -EINVAL;
                int hi = unhex(s[i + 1]), lo = unhex(s[i + 2]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                out[o++] = (char) (hi << 4 | lo);
                i += 2;
        }
        *ret_len = o;
        return 0;
}

typedef struct Param {
        const char *key, *value;  /* not NUL-terminated */
        size_t key_len, value_len;
} Param;

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn) {
        int c = memcmp(a, b, MIN(an, bn));
        if (c != 0)
                return c;
        return an < bn ? -1 : an > bn ? 1 : 0;
}

static int param_cmp(const void *x, const void *y) {
        const Param *a = x, *b = y;
        int c = bytes_cmp(a->key, a->key_len, b->key, b->key_len);
        return c != 0 ? c : bytes_cmp(a->value, a->value_len, b->value, b->value_len);
}

static int params_to_canonical(Param *params, size_t n, char **ret) {
        if (n > 0)
                qsort(params, n, sizeof(Param), param_cmp);
        Buf b = { 0 };
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        buf_addc(&b, '&');
                buf_add_encoded(&b, params[i].key, params[i].key_len);
                buf_addc(&b, '=');
                buf_add_encoded(&b, params[i].value, params[i].value_len);
        }
        return buf_steal(&b, ret);
}

int sign_canonical_query(const char *raw_query, char **ret) {
        const char *q = strempty(raw_query);
        size_t len = strlen(q);

        /* Decoding only shrinks, so one buffer of the raw length holds every decoded part;
         * and there are at most len/2+1 non-empty components. */
        _cleanup_free_ char *decoded = malloc(len + 1);
        _cleanup_free_ Param *params = calloc(len / 2 + 1, sizeof(Param));
        if (!decoded || !params)
                return -ENOMEM;

        size_t n = 0, used = 0;
        const char *p = q, *end = q + len;
        while (p < end) {
                const char *amp = memchr(p, '&', (size_t) (end - p));
                const char *comp_end = amp ? amp : end;
                if (comp_end > p) {
                        const char *eq = memchr(p, '=', (size_t) (comp_end - p));
                        const char *key_end = eq ? eq : comp_end;
                        size_t kl, vl = 0;
                        int r = percent_decode(p, (size_t) (key_end - p), decoded + used, &kl);
                        if (r < 0)
                                return r;
                        params[n].key = decoded + used;
                        params[n].key_len = kl;
                        used += kl;
                        if (eq) {
                                r = percent_decode(eq + 1, (size_t) (comp_end - eq - 1), decoded + used, &vl);
                                if (r < 0)
                                        return r;
                        }
                        params[n].value = decoded + used;
                        params[n].value_len = vl;
                        used += vl;
                        n++;
                }
                p = comp_end + (amp ? 1 : 0);
        }
        return params_to_canonical(params, n, ret);
}

int sign_canonical_query_params(const SignParam *in, size_t n_in, char **ret) {
        if (n_in > 0 && !in)
                return -EINVAL;
        _cleanup_free_ Param *params = calloc(n_in + 1, sizeof(Param));
        if (!params)
                return -ENOMEM;
        for (size_t i = 0; i < n_in; i++) {
                if (!in[i].key)
                        return -EINVAL;
                params[i] = (Param) {
                        .key = in[i].key,
                        .key_len = strlen(in[i].key),
                        .value = strempty(in[i].value),
                        .value_len = strlen(strempty(in[i].value)),
                };
        }
        return params_to_canonical(params, n_in, ret);
}

/* ---- headers ---- */

/* RFC 9110 token characters: what a header name (and a method) may be made of. */
static bool is_tchar(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token(const char *s) {
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (!is_tchar((unsigned char) *s))
                        return false;
        return true;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t';
}

/* The value as signed: trimmed of spaces and tabs at both ends. Inner runs are kept (the
 * contract says trimmed, nothing more). CR, LF and other controls except tab are refused:
 * they would forge lines in the canonical request and are invalid on the wire anyway. */
static int header_value_trimmed(const char *v, const char **ret, size_t *ret_len) {
        v = strempty(v);
        for (const char *p = v; *p; p++)
                if (((unsigned char) *p < 0x20 && *p != '\t') || *p == 0x7f)
                        return -EINVAL;
        while (is_space(*v))
                v++;
        size_t n = strlen(v);
        while (n > 0 && is_space(v[n - 1]))
                n--;
        *ret = v;
        *ret_len = n;
        return 0;
}

static bool is_valid_date(const char *d) {
        if (!d || strlen(d) != SIGN_DATE_LEN)
                return false;
        for (size_t i = 0; i < SIGN_DATE_LEN; i++) {
                char c = d[i];
                if (i == 8 ? c != 'T' : i == 15 ? c != 'Z' : !(c >= '0' && c <= '9'))
                        return false;
        }
        return true;
}

/* Find the one header called name (lowercase) in req; "host" falls back to req->host.
 * -ENOENT if absent, -ENOTUNIQ if repeated. */
static int find_header(const SignRequest *req, const char *name, const char **ret) {
        const char *found = NULL;
        for (size_t i = 0; i < req->n_headers; i++) {
                if (!req->headers[i].name || strcasecmp(req->headers[i].name, name) != 0)
                        continue;
                if (found)
                        return -ENOTUNIQ;
                found = strempty(req->headers[i].value);
        }
        if (!found && streq(name, "host") && req->host)
                found = req->host;
        if (!found)
                return -ENOENT;
        *ret = found;
        return 0;
}

static int name_cmp(const void *x, const void *y) {
        return strcmp(*(char *const *) x, *(char *const *) y);
}

typedef struct Names {
        char **v;
        size_t n;
} Names;

static void names_done(Names *names) {
        for (size_t i = 0; i < names->n; i++)
                free(names->v[i]);
        free(names->v);
        *names = (Names) { 0 };
}

/* The names to sign for a request being signed: its headers' names lowercased, plus host
 * from req->host when not among them; sorted. A repeated name is -EINVAL: one header, one
 * value, no guessing how a gateway would join them. */
static int names_for_signing(const SignRequest *req, Names *ret) {
        if (req->n_headers > 0 && !req->headers)
                return -EINVAL;
        Names names = { .v = calloc(req->n_headers + 1, sizeof(char *)) };
        if (!names.v)
                return -ENOMEM;
        bool have_host = false;
        for (size_t i = 0; i < req->n_headers; i++) {
                const char *name = req->headers[i].name;
                if (!is_token(name)) {
                        names_done(&names);
                        return -EINVAL;
                }
                char *l = strdup(name);
                if (!l) {
                        names_done(&names);
                        return -ENOMEM;
                }
                for (char *c = l; *c; c++)
                        if (*c >= 'A' && *c <= 'Z')
                                *c = (char) (*c - 'A' + 'a');
                names.v[names.n++] = l;
                have_host = have_host || streq(l, "host");
        }
        if (!have_host && req->host) {
                names.v[names.n] = strdup("host");
                if (!names.v[names.n]) {
                        names_done(&names);
                        return -ENOMEM;
                }
                names.n++;
        }
        if (names.n > 0)
                qsort(names.v, names.n, sizeof(char *), name_cmp);
        for (size_t i = 1; i < names.n; i++)
                if (streq(names.v[i - 1], names.v[i])) {
                        names_done(&names);
                        return -EINVAL;
                }
        *ret = names;
        return 0;
}

static int sha256_hex(const void *data, size_t len, char out[SIGN_SIGNATURE_HEX_LEN + 1]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        if (!EVP_Digest(data ? data : "", len, md, &md_len, EVP_sha256(), NULL) || md_len != 32)
                return -EIO;
        hex_lower(md, md_len, out);
        return 0;
}

/* Build the canonical request for the given (sorted, lowercase) signed names. A signed name
 * missing from the request or repeated in it is -ENOENT / -ENOTUNIQ (the callers map them). */
static int canonical_request_for(const SignRequest *req, char *const *names, size_t n_names,
                                 char **ret_canonical, char **ret_signed) {
        if (!req || !is_token(req->method))
                return -EINVAL;
        if (req->query && req->n_params > 0)
                return -EINVAL;

        _cleanup_free_ char *uri = NULL, *query = NULL;
        int r = sign_canonical_uri(req->path, &uri);
        if (r < 0)
                return r;
        r = req->query ? sign_canonical_query(req->query, &query)
                       : sign_canonical_query_params(req->params, req->n_params, &query);
        if (r < 0)
                return r;
        char payload_hash[SIGN_SIGNATURE_HEX_LEN + 1];
        if (req->body_len > 0 && !req->body)
                return -EINVAL;
        r = sha256_hex(req->body, req->body_len, payload_hash);
        if (r < 0)
                return r;

        Buf b = { 0 }, sh = { 0 };
        buf_adds(&b, req->method);
        buf_addc(&b, '\n');
        buf_adds(&b, uri);
        buf_addc(&b, '\n');
        buf_adds(&b, query);
        buf_addc(&b, '\n');
        for (size_t i = 0; i < n_names; i++) {
                const char *v;
                size_t vl;
                r = find_header(req, names[i], &v);
                if (r >= 0)
                        r = header_value_trimmed(v, &v, &vl);
                if (r < 0) {
                        buf_done(&b);
                        buf_done(&sh);
                        return r;
                }
                buf_adds(&b, names[i]);
                buf_addc(&b, ':');
                buf_add(&b, v, vl);
                buf_addc(&b, '\n');
                if (i > 0)
                        buf_addc(&sh, ';');
                buf_adds(&sh, names[i]);
        }
        buf_addc(&b, '\n');
        buf_adds(&b, sh.oom ? "" : strempty(sh.p));
        buf_addc(&b, '\n');
        buf_adds(&b, payload_hash);

        _cleanup_free_ char *canonical = NULL, *signed_headers = NULL;
        r = buf_steal(&b, &canonical);
        int r2 = buf_steal(&sh, &signed_headers);
        if (r < 0 || r2 < 0)
                return -ENOMEM;
        if (ret_canonical)
                *ret_canonical = TAKE_PTR(canonical);
        if (ret_signed)
                *ret_signed = TAKE_PTR(signed_headers);
        return 0;
}

int sign_canonical_request(const SignRequest *req, char **ret_canonical, char **ret_signed_headers) {
        if (!req)
                return -EINVAL;
        Names names = { 0 };
        int r = names_for_signing(req, &names);
        if (r < 0)
                return r;
        r = canonical_request_for(req, names.v, names.n, ret_canonical, ret_signed_headers);
        names_done(&names);
        /* every name came from the request itself, so absence cannot happen; repetition was
         * refused above */
        return r == -ENOENT || r == -ENOTUNIQ ? -EINVAL : r;
}

/* Hex HMAC-SHA256(sk, string to sign) over the canonical request. */
static int signature_hex(const char *canonical, const char *x_sdk_date, const char *sk,
                         char out[SIGN_SIGNATURE_HEX_LEN + 1]) {
        char canonical_hash[SIGN_SIGNATURE_HEX_LEN + 1];
        int r = sha256_hex(canonical, strlen(canonical), canonical_hash);
        if (r < 0)
                return r;
        _cleanup_free_ char *sts = xasprintf("%s\n%s\n%s", SIGN_ALGORITHM, x_sdk_date, canonical_hash);
        if (!sts)
                return -ENOMEM;
        /* The SK is used as-is (no derived key, unlike AWS SigV4). */
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        size_t sk_len = strlen(sk);
        if (sk_len > INT32_MAX)
                return -EINVAL;
        if (!HMAC(EVP_sha256(), sk, (int) sk_len, (const unsigned char *) sts, strlen(sts), md, &md_len) ||
            md_len != 32)
                return -EIO;
        hex_lower(md, md_len, out);
        OPENSSL_cleanse(md, sizeof md);
        return 0;
}

int sign_authorization(const SignRequest *req, const char *x_sdk_date, const char *ak, const char *sk,
                       char **ret_authorization) {
        if (!req || !is_valid_date(x_sdk_date) || !ak || !*ak || !sk || !*sk || !ret_authorization)
                return -EINVAL;
        /* The AK travels in a comma-separated header: keep it a plain token. */
        for (const char *c = ak; *c; c++)
                if (!is_tchar((unsigned char) *c) || *c == ',')
                        return -EINVAL;

        /* The date signed must be the date sent. */
        const char *sent;
        size_t sent_len;
        int r = find_header(req, "x-sdk-date", &sent);
        if (r < 0)
                return -EINVAL;
        r = header_value_trimmed(sent, &sent, &sent_len);
        if (r < 0 || sent_len != SIGN_DATE_LEN || memcmp(sent, x_sdk_date, SIGN_DATE_LEN) != 0)
                return -EINVAL;

        _cleanup_free_ char *canonical = NULL, *signed_headers = NULL;
        r = sign_canonical_request(req, &canonical, &signed_headers);
        if (r < 0)
                return r;
        char sig[SIGN_SIGNATURE_HEX_LEN + 1];
        r = signature_hex(canonical, x_sdk_date, sk, sig);
        if (r < 0)
                return r;
        char *a = xasprintf("%s Access=%s, SignedHeaders=%s, Signature=%s", SIGN_ALGORITHM, ak, signed_headers,
                            sig);
        if (!a)
                return -ENOMEM;
        *ret_authorization = a;
        return 0;
}

/* ---- verification ---- */

void sign_authorization_done(SignAuthorization *a) {
        if (!a)
                return;
        free(a->access);
        free(a->signed_headers);
        *a = (SignAuthorization) { 0 };
}

/* "a;b;c": non-empty lowercase tokens, strictly increasing, at most SIGN_MAX_HEADERS. */
static bool signed_headers_valid(const char *s, size_t n) {
        size_t count = 0;
        const char *prev = NULL;
        size_t prev_len = 0;
        const char *p = s, *end = s + n;
        while (p <= end) {
                const char *semi = memchr(p, ';', (size_t) (end - p));
                const char *e = semi ? semi : end;
                if (e == p)
                        return false;
                for (const char *c = p; c < e; c++)
                        if (!is_tchar((unsigned char) *c) || (*c >= 'A' && *c <= 'Z'))
                                return false;
                if (prev && bytes_cmp(prev, prev_len, p, (size_t) (e - p)) >= 0)
                        return false;
                if (++count > SIGN_MAX_HEADERS)
                        return false;
                prev = p;
                prev_len = (size_t) (e - p);
                if (!semi)
                        break;
                p = semi + 1;
        }
        return true;
}

int sign_authorization_parse(const char *value, SignAuthorization *ret) {
        if (!value || !ret)
                return -EINVAL;
        size_t alg_len = strlen(SIGN_ALGORITHM);
        if (strncmp(value, SIGN_ALGORITHM, alg_len) != 0 || !is_space(value[alg_len]))
                return -EBADMSG;

        _cleanup_free_ char *access = NULL, *signed_headers = NULL;
        char signature[SIGN_SIGNATURE_HEX_LEN + 1] = "";
        bool have_signature = false;

        const char *p = value + alg_len;
        for (;;) {
                while (is_space(*p))
                        p++;
                const char *eq = strchr(p, '=');
                if (!eq)
                        return -EBADMSG;
                size_t key_len = (size_t) (eq - p);
                const char *v = eq + 1;
                const char *comma = strchr(v, ',');
                size_t vl = comma ? (size_t) (comma - v) : strlen(v);
                while (vl > 0 && is_space(v[vl - 1]))
                        vl--;
                if (vl == 0)
                        return -EBADMSG;
                for (size_t i = 0; i < vl; i++)
                        if (!is_tchar((unsigned char) v[i]) && v[i] != ';')
                                return -EBADMSG;

                if (key_len == 6 && strncmp(p, "Access", 6) == 0) {
                        if (access)
                                return -EBADMSG;
                        access = strndup(v, vl);
                        if (!access)
                                return -ENOMEM;
                } else if (key_len == 13 && strncmp(p, "SignedHeaders", 13) == 0) {
                        if (signed_headers || !signed_headers_valid(v, vl))
                                return -EBADMSG;
                        signed_headers = strndup(v, vl);
                        if (!signed_headers)
                                return -ENOMEM;
                } else if (key_len == 9 && strncmp(p, "Signature", 9) == 0) {
                        if (have_signature || vl != SIGN_SIGNATURE_HEX_LEN)
                                return -EBADMSG;
                        for (size_t i = 0; i < vl; i++)
                                if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
                                        return -EBADMSG;
                        memcpy(signature, v, vl);
                        signature[vl] = 0;
                        have_signature = true;
                } else
                        return -EBADMSG;

                if (!comma)
                        break;
                p = comma + 1;
        }
        if (!access || !signed_headers || !have_signature)
                return -EBADMSG;

        *ret = (SignAuthorization) {
                .access = TAKE_PTR(access),
                .signed_headers = TAKE_PTR(signed_headers),
        };
        memcpy(ret->signature, signature, sizeof signature);
        return 0;
}

int sign_verify(const SignRequest *req, const char *x_sdk_date, const char *ak, const char *sk,
                const char *authorization) {
        if (!req || !ak || !sk || !*sk)
                return -EINVAL;
        if (!authorization)
                return -EBADMSG;

        _cleanup_(sign_authorization_done) SignAuthorization auth = { 0 };
        int r = sign_authorization_parse(authorization, &auth);
        if (r < 0)
                return r;

        /* Split the (validated) list; x-sdk-date must be among the signed names, or the
         * signature would not bind the date the skew check looked at. */
        char *names[SIGN_MAX_HEADERS];
        size_t n = 0;
        bool date_signed = false;
        for (char *p = auth.signed_headers; p && n < SIGN_MAX_HEADERS;) {
                char *semi = strchr(p, ';');
                if (semi)
                        *semi = 0;
                names[n++] = p;
                date_signed = date_signed || streq(p, "x-sdk-date");
                p = semi ? semi + 1 : NULL;
        }
        if (!date_signed)
                return -EBADMSG;

        const char *date;
        size_t date_len;
        r = find_header(req, "x-sdk-date", &date);
        if (r < 0)
                return -EBADMSG;
        r = header_value_trimmed(date, &date, &date_len);
        if (r < 0 || date_len != SIGN_DATE_LEN)
                return -EBADMSG;
        char date_z[SIGN_DATE_LEN + 1];
        memcpy(date_z, date, SIGN_DATE_LEN);
        date_z[SIGN_DATE_LEN] = 0;
        if (!is_valid_date(date_z) || (x_sdk_date && !streq(x_sdk_date, date_z)))
                return -EBADMSG;

        _cleanup_free_ char *canonical = NULL;
        r = canonical_request_for(req, names, n, &canonical, NULL);
        if (r == -ENOENT || r == -ENOTUNIQ || r == -EINVAL)
                return -EBADMSG;
        if (r < 0)
                return r;

        char expected[SIGN_SIGNATURE_HEX_LEN + 1];
        r = signature_hex(canonical, date_z, sk, expected);
        if (r < 0)
                return r;

        /* Both comparisons run every time, in constant time for the signature: the verifier
         * must not tell an attacker how many leading hex digits were right. */
        bool ak_ok = streq(auth.access, ak);
        bool sig_ok = CRYPTO_memcmp(expected, auth.signature, SIGN_SIGNATURE_HEX_LEN) == 0;
        return ak_ok && sig_ok ? 0 : -EPERM;
}

/* ---- date ---- */

void sign_format_date(long long unix_seconds, char out[17]) {
        struct tm tm;
        time_t t = (time_t) unix_seconds;
        if (!gmtime_r(&t, &tm) || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != SIGN_DATE_LEN)
                memcpy(out, "19700101T000000Z", 17);
}
