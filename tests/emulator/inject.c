/* Create errors injected per name pattern (--inject-error), for the answers a client
 * cannot provoke from a local stand-in: "initialising, wait a minute" (6355), "being
 * restored" (6333), an account frozen for arrears (6326), an IAM policy that denies the
 * create (403 0108/0112), and a few flavor refusals for convenience.
 *
 * The list is "CODE:GLOB[:COUNT],...". A create whose body name matches GLOB (fnmatch)
 * gets CODE instead of being processed; with COUNT (> 0) only COUNT times per name, then
 * the item is as if absent and the next one (or the rules) apply. The usage counters live
 * in an InjectUsage map keyed by the item's text and the name, so a different list (or a
 * reset) starts afresh. */
#include "emulator.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "util.h"

static const InjectCode codes[] = {
        { "ModelArts.6355", 400, "Resources are initialising. Please wait a minute and try again" },
        { "ModelArts.6333", 400, "The instance is being restored. Please wait several minutes and try again" },
        { "ModelArts.6326", 400, "The account is frozen because it is in arrears. Top up the account and try again" },
        { "ModelArts.0108", 403,
          "Authorization failed: an IAM policy denies modelarts:notebook:create to this user" },
        { "ModelArts.0112", 403, "Policy doesn't allow modelarts:notebook:create to be performed" },
        { "ModelArts.6323", 400, "Flavor is not supported" },
        { "ModelArts.6328", 400, "No permission to use this flavor" },
        { "ModelArts.6329", 400, "The flavor is sold out" },
        { "ModelArts.6330", 400, "The profile does not match the flavor" },
};

const InjectCode *emu_inject_code(const char *code) {
        for (size_t i = 0; i < ELEMENTSOF(codes); i++)
                if (streq(codes[i].code, code))
                        return &codes[i];
        return NULL;
}

typedef struct Item {
        char *code, *glob; /* owned */
        int64_t count;     /* 0: always */
} Item;

static void item_done(Item *it) {
        free(it->code);
        free(it->glob);
        *it = (Item) {};
}

/* One "CODE:GLOB[:COUNT]" of length n. A trailing ":digits" is the count. */
static int item_parse(const char *p, size_t n, Item *ret) {
        const char *colon = memchr(p, ':', n);
        if (!colon || colon == p)
                return -EINVAL;
        const char *g = colon + 1, *end = p + n, *last = NULL;
        for (const char *q = g; q < end; q++)
                if (*q == ':')
                        last = q;
        Item it = { .code = strndup(p, (size_t) (colon - p)) };
        if (last && last + 1 < end && strspn(last + 1, "0123456789") >= (size_t) (end - last - 1)) {
                _cleanup_free_ char *num = strndup(last + 1, (size_t) (end - last - 1));
                if (!num || parse_int64(num, 0, INT64_MAX, &it.count) < 0) {
                        item_done(&it);
                        return -EINVAL;
                }
                end = last;
        }
        it.glob = strndup(g, (size_t) (end - g));
        if (!it.code || !it.glob || !*it.glob) {
                item_done(&it);
                return -EINVAL;
        }
        *ret = it;
        return 0;
}

int emu_inject_check(const char *list, char **ret_error) {
        for (const char *p = list; *p;) {
                size_t n = strcspn(p, ",");
                Item it;
                if (item_parse(p, n, &it) < 0) {
                        *ret_error = xasprintf("bad --inject-error item \"%.*s\": want CODE:GLOB[:COUNT]", (int) n, p);
                        return -EINVAL;
                }
                bool known = emu_inject_code(it.code) != NULL;
                if (!known)
                        *ret_error = xasprintf("--inject-error: unsupported code \"%s\" (supported: ModelArts.6355, "
                                               "6333, 6326, 0108, 0112, 6323, 6328, 6329, 6330)",
                                               it.code);
                item_done(&it);
                if (!known)
                        return -EINVAL;
                p += n;
                if (*p == ',')
                        p++;
        }
        return 0;
}

typedef struct Use {
        char *key; /* item text '\n' name */
        int64_t n;
} Use;

struct InjectUsage {
        EmuMap *uses;
};

int emu_inject_usage_new(InjectUsage **ret) {
        InjectUsage *u = calloc(1, sizeof(*u));
        if (!u || emu_map_new(&u->uses) < 0) {
                free(u);
                return -ENOMEM;
        }
        *ret = u;
        return 0;
}

static void free_use(const char *key, void *value, void *userdata) {
        (void) key;
        (void) userdata;
        Use *use = value;
        free(use->key);
        free(use);
}

void emu_inject_usage_clear(InjectUsage *u) {
        emu_map_foreach(u->uses, free_use, NULL);
        emu_map_clear(u->uses);
}

InjectUsage *emu_inject_usage_free(InjectUsage *u) {
        if (!u)
                return NULL;
        emu_inject_usage_clear(u);
        emu_map_free(u->uses);
        free(u);
        return NULL;
}

/* Count one use of a COUNT-limited item for name; false when none is left. */
static bool take_use(InjectUsage *u, const char *item, size_t item_len, const char *name, int64_t count) {
        _cleanup_free_ char *key = xasprintf("%.*s\n%s", (int) item_len, item, name);
        if (!key)
                return false;
        Use *use = emu_map_get(u->uses, key);
        if (!use) {
                use = calloc(1, sizeof(*use));
                if (!use)
                        return false;
                use->key = TAKE_PTR(key);
                if (emu_map_put(u->uses, use->key, use) < 0) {
                        free_use(NULL, use, NULL);
                        return false;
                }
        }
        if (use->n >= count)
                return false;
        use->n++;
        return true;
}

const InjectCode *emu_inject_match(const char *list, InjectUsage *u, const char *name) {
        for (const char *p = list; p && *p;) {
                size_t n = strcspn(p, ",");
                Item it;
                if (item_parse(p, n, &it) == 0) {
                        const InjectCode *c = emu_inject_code(it.code);
                        bool hit = c && fnmatch(it.glob, name, 0) == 0 &&
                                   (it.count == 0 || take_use(u, p, n, name, it.count));
                        item_done(&it);
                        if (hit)
                                return c;
                }
                p += n;
                if (*p == ',')
                        p++;
        }
        return NULL;
}
