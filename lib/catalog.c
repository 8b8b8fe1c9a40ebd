#include "catalog.h"

#include <string.h>

#include "macro.h"
#include "util.h"

/* Every profile_id of Huawei's three lists: the 2019 SDK page, the 2020 API
 * reference and the 2023-24 "DevEnviron (old version)" page. Spelling exactly as Huawei
 * writes it (spaces, parentheses, no space before "(python3)" in the Ascend one). */
const CatalogEntry catalog_profiles[] = {
        /* 2019 */
        { "Python2", CATALOG_KIND_CPU },
        { "Python3", CATALOG_KIND_CPU },
        { "Python2-gpu", CATALOG_KIND_GPU },
        { "Python3-gpu", CATALOG_KIND_GPU },
        /* 2020: one image for CPU and GPU flavors */
        { "TF-2.1.0&Pytorch-1.4.0-python3.6", CATALOG_KIND_ANY },
        /* 2023-24 */
        { "Multi-Engine 1.0 (python2)-cpu", CATALOG_KIND_CPU },
        { "Multi-Engine 1.0 (python2)-gpu", CATALOG_KIND_GPU },
        { "Multi-Engine 1.0 (python3)-cpu", CATALOG_KIND_CPU },
        { "Multi-Engine 1.0 (python3)-gpu", CATALOG_KIND_GPU },
        { "Multi-Engine 2.0 (python3)", CATALOG_KIND_ANY },
        { "Ascend-Power-Engine 1.0(python3)", CATALOG_KIND_ASCEND },
};
const size_t catalog_n_profiles = ELEMENTSOF(catalog_profiles);

/* Flavors seen in those pages and public samples: modelarts.vm.cpu.* are CPU,
 * modelarts.vm.gpu.* and modelarts.bm.gpu.* (bare metal) GPU, modelarts.kat1.* Ascend. */
const CatalogEntry catalog_flavors[] = {
        { "modelarts.vm.cpu.2u", CATALOG_KIND_CPU },
        { "modelarts.vm.cpu.8u", CATALOG_KIND_CPU },
        { "modelarts.vm.cpu.free", CATALOG_KIND_CPU },
        { "modelarts.vm.gpu.p100", CATALOG_KIND_GPU },
        { "modelarts.vm.gpu.2p100", CATALOG_KIND_GPU },
        { "modelarts.vm.gpu.4p100", CATALOG_KIND_GPU },
        { "modelarts.vm.gpu.v100", CATALOG_KIND_GPU },
        { "modelarts.vm.gpu.free", CATALOG_KIND_GPU },
        { "modelarts.bm.gpu.v100NV32", CATALOG_KIND_GPU },
        { "modelarts.kat1.xlarge", CATALOG_KIND_ASCEND },
};
const size_t catalog_n_flavors = ELEMENTSOF(catalog_flavors);

static const CatalogEntry *find(const CatalogEntry *table, size_t n, const char *value) {
        for (size_t i = 0; i < n; i++)
                if (streq(table[i].name, value))
                        return &table[i];
        return NULL;
}

const CatalogEntry *catalog_find_profile(const char *profile_id) {
        return find(catalog_profiles, catalog_n_profiles, profile_id);
}

const CatalogEntry *catalog_find_flavor(const char *flavor) {
        return find(catalog_flavors, catalog_n_flavors, flavor);
}

/* closest_match() takes a list of names: one on the stack, as long as the longest table */
#define CATALOG_MAX_ENTRIES 16
_Static_assert(ELEMENTSOF(catalog_profiles) <= CATALOG_MAX_ENTRIES, "grow CATALOG_MAX_ENTRIES");
_Static_assert(ELEMENTSOF(catalog_flavors) <= CATALOG_MAX_ENTRIES, "grow CATALOG_MAX_ENTRIES");

static const char *suggest(const CatalogEntry *table, size_t n, const char *value) {
        if (find(table, n, value))
                return NULL;
        const char *names[CATALOG_MAX_ENTRIES];
        for (size_t i = 0; i < n; i++)
                names[i] = table[i].name;
        return closest_match(value, names, n);
}

const char *catalog_suggest_profile(const char *profile_id) {
        return suggest(catalog_profiles, catalog_n_profiles, profile_id);
}

const char *catalog_suggest_flavor(const char *flavor) {
        return suggest(catalog_flavors, catalog_n_flavors, flavor);
}

bool catalog_kinds_clash(CatalogKind p, CatalogKind f) {
        return p != CATALOG_KIND_ANY && f != CATALOG_KIND_ANY && p != f;
}

const char *catalog_kind_to_string(CatalogKind k) {
        static const char *const names[_CATALOG_KIND_MAX] = {
                [CATALOG_KIND_ANY] = "any",
                [CATALOG_KIND_CPU] = "CPU",
                [CATALOG_KIND_GPU] = "GPU",
                [CATALOG_KIND_ASCEND] = "Ascend",
        };
        return k >= 0 && k < _CATALOG_KIND_MAX ? names[k] : "unknown";
}
