/* The region's catalog: which profiles and flavors exist, and of which kind (CPU, GPU,
 * Ascend). A real region decides these on its own and they change by release, so they
 * are flags (--profiles, --flavors) and a test can run a region with today's catalog or
 * a narrower one. Without the flags, the default table below is the catalog: every value
 * Huawei's pages list (the 2019 SDK page, the 2020 API reference and the 2023-24
 * "Historical APIs" page).
 *
 * A list is "NAME=KIND,NAME=KIND,..."; names may hold spaces, parentheses, '&' and '.',
 * but no ',' (the separator); the kind is after the last '='. Lookups walk the string
 * itself: the lists are a few dozen items and nothing is allocated per create. */
#include "emulator.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "util.h"

typedef struct CatalogItem {
        const char *name;
        EmuKind kind;
} CatalogItem;

/* THE default catalog, in one place. Kinds from the names: "-gpu"/".gpu." GPU,
 * "-cpu"/".cpu." CPU, "kat1"/"Ascend" Ascend; Python2/Python3 were the CPU profiles of
 * the 2019 page; the multi-engine images without a kind in the name run on any. */
static const CatalogItem default_profiles[] = {
        /* 2019 SDK page */
        { "Python2", KIND_CPU },
        { "Python3", KIND_CPU },
        { "Python2-gpu", KIND_GPU },
        { "Python3-gpu", KIND_GPU },
        /* 2020 API reference */
        { "TF-2.1.0&Pytorch-1.4.0-python3.6", KIND_ANY },
        /* 2023-24 "Historical APIs / DevEnviron (old version)" page */
        { "Multi-Engine 1.0 (python2)-cpu", KIND_CPU },
        { "Multi-Engine 1.0 (python2)-gpu", KIND_GPU },
        { "Multi-Engine 1.0 (python3)-cpu", KIND_CPU },
        { "Multi-Engine 1.0 (python3)-gpu", KIND_GPU },
        { "Multi-Engine 2.0 (python3)", KIND_ANY },
        { "Ascend-Power-Engine 1.0(python3)", KIND_ASCEND },
};

static const CatalogItem default_flavors[] = {
        { "modelarts.vm.cpu.2u", KIND_CPU },
        { "modelarts.vm.cpu.8u", KIND_CPU },
        { "modelarts.vm.gpu.p100", KIND_GPU },
        { "modelarts.vm.gpu.2p100", KIND_GPU },
        { "modelarts.vm.gpu.4p100", KIND_GPU },
        { "modelarts.vm.cpu.free", KIND_CPU },
        { "modelarts.vm.gpu.free", KIND_GPU },
        { "modelarts.vm.gpu.v100", KIND_GPU },
        { "modelarts.kat1.xlarge", KIND_ASCEND },
        { "modelarts.bm.gpu.v100NV32", KIND_GPU },
};

static const char *const kind_names[_KIND_MAX] = {
        [KIND_CPU] = "cpu",
        [KIND_GPU] = "gpu",
        [KIND_ASCEND] = "ascend",
        [KIND_ANY] = "any",
};

const char *emu_kind_name(EmuKind k) {
        return k < _KIND_MAX ? kind_names[k] : "?";
}

static int kind_parse(const char *s, size_t n, EmuKind *ret) {
        for (EmuKind k = 0; k < _KIND_MAX; k++)
                if (strlen(kind_names[k]) == n && strncmp(s, kind_names[k], n) == 0) {
                        *ret = k;
                        return 0;
                }
        return -EINVAL;
}

/* One item "NAME=KIND" of length n: the name's length and the kind. */
static int item_parse(const char *p, size_t n, size_t *ret_name_len, EmuKind *ret_kind) {
        const char *eq = NULL;
        for (const char *q = p; q < p + n; q++)
                if (*q == '=')
                        eq = q;
        if (!eq || eq == p)
                return -EINVAL;
        *ret_name_len = (size_t) (eq - p);
        return kind_parse(eq + 1, n - *ret_name_len - 1, ret_kind);
}

int emu_catalog_check(const char *list, char **ret_error) {
        for (const char *p = list; *p;) {
                size_t n = strcspn(p, ","), name_len;
                EmuKind k;
                if (item_parse(p, n, &name_len, &k) < 0) {
                        *ret_error = xasprintf("bad catalog item \"%.*s\": want NAME=KIND, KIND one of "
                                               "cpu, gpu, ascend, any",
                                               (int) n, p);
                        return -EINVAL;
                }
                p += n;
                if (*p == ',')
                        p++;
        }
        return 0;
}

static bool table_lookup(const CatalogItem *t, size_t n, const char *name, EmuKind *ret) {
        for (size_t i = 0; i < n; i++)
                if (streq(t[i].name, name)) {
                        *ret = t[i].kind;
                        return true;
                }
        return false;
}

bool emu_catalog_lookup(const char *list, bool profiles, const char *name, EmuKind *ret) {
        if (!list)
                return profiles ? table_lookup(default_profiles, ELEMENTSOF(default_profiles), name, ret)
                                : table_lookup(default_flavors, ELEMENTSOF(default_flavors), name, ret);
        size_t want = strlen(name);
        for (const char *p = list; *p;) {
                size_t n = strcspn(p, ","), name_len;
                EmuKind k;
                if (item_parse(p, n, &name_len, &k) == 0 && name_len == want && strncmp(p, name, want) == 0) {
                        *ret = k;
                        return true;
                }
                p += n;
                if (*p == ',')
                        p++;
        }
        return false;
}

char *emu_catalog_default(bool profiles) {
        const CatalogItem *t = profiles ? default_profiles : default_flavors;
        size_t n = profiles ? ELEMENTSOF(default_profiles) : ELEMENTSOF(default_flavors), len = 1;
        for (size_t i = 0; i < n; i++)
                len += strlen(t[i].name) + 1 + strlen(kind_names[t[i].kind]) + 1;
        char *out = malloc(len), *p = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        *p++ = ',';
                p = mempcpy(p, t[i].name, strlen(t[i].name));
                *p++ = '=';
                p = mempcpy(p, kind_names[t[i].kind], strlen(kind_names[t[i].kind]));
        }
        *p = '\0';
        return out;
}
