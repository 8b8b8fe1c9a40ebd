#include "desired.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "limits.h"
#include "manifest.h"
#include "scan.h"
#include "util.h"

typedef struct Root {
        char *path;
        char *display;
} Root;

/* One manifest file as last read. */
typedef struct Entry {
        ScanFile id;            /* root, relative path and the identity that was read */
        char *display;          /* display path, as diagnostics and specs show it */
        SpecList specs;         /* its valid documents */
        Diags diags;            /* its own diagnostics (parse and validation) */
        ManifestResult result;
        bool reused;            /* during a rescan: carried over into the new list */
} Entry;

/* An owned copy of a ManifestPolicy (the config it came from is replaced on reload). */
typedef struct Policy {
        ManifestPolicy view;    /* points into the fields below (set where the Policy lives:
                                 * a copy of the struct must point it again) */
        char *source;
        char **profiles;
        char **flavors;
        TenantList tenants;
} Policy;

struct DesiredSet {
        Root *roots;
        size_t n_roots;
        bool scanned;
        Policy policy;
        bool reparse;           /* the policy changed: no file's last reading stands */
        ScanRoot *scan_roots;   /* as resolved by the last rescan (update_file reads there) */
        size_t n_scan_roots;
        bool truncated;

        Entry **entries;        /* sorted by root, then relative path */
        size_t n_entries;
        Diags scan_diags;       /* the walk's own: symlinks outside, fifos, limits */

        /* resolved */
        const NotebookSpec **specs;
        size_t n_specs;
        Diags diags;
        DesiredStats stats;
};

static void strv_free_n(char **v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

static void policy_done(Policy *p) {
        free(p->source);
        strv_free_n(p->profiles, p->view.n_profiles);
        strv_free_n(p->flavors, p->view.n_flavors);
        tenant_list_done(&p->tenants);
        *p = (Policy) {};
}

static int strv_copy_n(const char *const *v, size_t n, char ***ret) {
        *ret = NULL;
        if (n == 0)
                return 0;
        char **c = calloc(n, sizeof(char *));
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(c[i] = strdup(v[i]))) {
                        strv_free_n(c, i);
                        return -ENOMEM;
                }
        *ret = c;
        return 0;
}

static int policy_copy(const ManifestPolicy *from, Policy *ret) {
        Policy p = {};
        if (!from) {
                *ret = p;
                return 0;
        }
        p.view.n_profiles = from->n_profiles;
        p.view.n_flavors = from->n_flavors;
        if ((from->source && !(p.source = strdup(from->source))) ||
            strv_copy_n(from->profiles, from->n_profiles, &p.profiles) < 0 ||
            strv_copy_n(from->flavors, from->n_flavors, &p.flavors) < 0 ||
            (from->tenants && tenant_list_copy(from->tenants, &p.tenants) < 0)) {
                policy_done(&p);
                return -ENOMEM;
        }
        p.view.source = p.source;
        p.view.profiles = (const char *const *) p.profiles;
        p.view.flavors = (const char *const *) p.flavors;
        *ret = p;
        return 0;
}

static bool strv_equal_n(const char *const *a, size_t na, const char *const *b, size_t nb) {
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

static bool policy_equal(const ManifestPolicy *a, const ManifestPolicy *b) {
        static const ManifestPolicy none = {};
        a = a ? a : &none;
        b = b ? b : &none;
        /* the source is in the messages: a moved config file changes them too */
        static const TenantList no_tenants = {};
        return streq_ptr(a->source, b->source) &&
               strv_equal_n(a->profiles, a->n_profiles, b->profiles, b->n_profiles) &&
               strv_equal_n(a->flavors, a->n_flavors, b->flavors, b->n_flavors) &&
               tenant_list_equal(a->tenants ?: &no_tenants, b->tenants ?: &no_tenants);
}

int desired_set_set_policy(DesiredSet *s, const ManifestPolicy *policy) {
        if (policy_equal(&s->policy.view, policy))
                return 0;
        Policy p;
        int r = policy_copy(policy, &p);
        if (r < 0)
                return r;
        policy_done(&s->policy);
        s->policy = p;
        s->policy.view.tenants = &s->policy.tenants;   /* into the copy where it now lives */
        s->reparse = true;
        return 0;
}

static Entry *entry_free(Entry *e) {
        if (!e)
                return NULL;
        scan_file_done(&e->id);
        free(e->display);
        spec_list_clear(&e->specs);
        diags_clear(&e->diags);
        free(e);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Entry *, entry_free);

static void scan_roots_free(ScanRoot *roots, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(roots[i].real);
                if (roots[i].fd >= 0)
                        close(roots[i].fd);
        }
        free(roots);
}

int desired_set_new(const char *root, const char *display_root, const ManifestPolicy *policy, DesiredSet **ret) {
        _cleanup_(desired_set_freep) DesiredSet *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        int r = policy_copy(policy, &s->policy);
        s->policy.view.tenants = &s->policy.tenants;
        if (r < 0)
                return r;
        r = desired_set_add_root(s, root, display_root);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int desired_set_add_root(DesiredSet *s, const char *root, const char *display_root) {
        Root *roots = realloc(s->roots, (s->n_roots + 1) * sizeof(Root));
        if (!roots)
                return -ENOMEM;
        s->roots = roots;
        Root r = { .path = strdup(root), .display = strdup(display_root ? display_root : root) };
        if (!r.path || !r.display) {
                free(r.path);
                free(r.display);
                return -ENOMEM;
        }
        s->roots[s->n_roots++] = r;
        return 0;
}

static void entries_free(Entry **entries, size_t n) {
        for (size_t i = 0; i < n; i++)
                entry_free(entries[i]);
        free(entries);
}

DesiredSet *desired_set_free(DesiredSet *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_roots; i++) {
                free(s->roots[i].path);
                free(s->roots[i].display);
        }
        free(s->roots);
        policy_done(&s->policy);
        scan_roots_free(s->scan_roots, s->n_scan_roots);
        entries_free(s->entries, s->n_entries);
        diags_clear(&s->scan_diags);
        free(s->specs);
        diags_clear(&s->diags);
        free(s);
        return NULL;
}

/* ---- entries ---- */

static int cmp_key(size_t root_a, const char *path_a, size_t root_b, const char *path_b) {
        if (root_a != root_b)
                return root_a < root_b ? -1 : 1;
        return strcmp(path_a, path_b);
}

/* Binary search; *ret_pos is where it is or would be inserted. */
static Entry *find_entry(const DesiredSet *s, size_t root, const char *path, size_t *ret_pos) {
        size_t lo = 0, hi = s->n_entries;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = cmp_key(s->entries[mid]->id.root, s->entries[mid]->id.path, root, path);
                if (c == 0) {
                        if (ret_pos)
                                *ret_pos = mid;
                        return s->entries[mid];
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (ret_pos)
                *ret_pos = lo;
        return NULL;
}

static bool same_identity(const ScanFile *a, const ScanFile *b) {
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
               a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
               a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Read and parse one file; takes f's paths on success. It is read where the walk
 * checked it is, beneath the root with no symlink followed: a file or directory swapped
 * for a symlink since the walk is refused, never read through (a diagnostic). */
static int entry_read(const DesiredSet *s, const ScanRoot *roots, ScanFile *f, Entry **ret) {
        _cleanup_(entry_freep) Entry *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        const ScanRoot *root = &roots[f->root];
        e->display = scan_display_path(s->roots[f->root].display, f->path);
        if (!e->display)
                return -ENOMEM;
        /* tenants: the file is its tenant's, under its rules; under none, it is refused */
        ManifestPolicy policy_of_file = s->policy.view;
        const ManifestPolicy *policy = &policy_of_file;
        if (s->policy.tenants.n > 0) {
                policy_of_file.tenant = tenant_for_path(&s->policy.tenants, f->path);
                if (!policy_of_file.tenant) {
                        int r = diag_error(&e->diags, e->display, 1, 1,
                                           "not under the path of any tenant in %s: its manifests are not applied",
                                           strempty(s->policy.source));
                        if (r < 0)
                                return r;
                        e->result.n_documents = e->result.n_invalid = 1;
                        e->id = *f;
                        f->path = NULL;
                        f->resolved = NULL;
                        *ret = TAKE_PTR(e);
                        return 0;
                }
        }
        int r = root->is_file
                ? manifest_parse_file(AT_FDCWD, root->real, e->display, policy, &e->diags, &e->specs, &e->result)
                : manifest_parse_file(root->fd, scan_file_read_path(f), e->display, policy, &e->diags, &e->specs,
                                      &e->result);
        if (r < 0)
                return r;
        e->id = *f;
        f->path = NULL;
        f->resolved = NULL;
        *ret = TAKE_PTR(e);
        return 0;
}

/* ---- resolve: the unique-by-name valid set, all diagnostics in order ---- */

static int cmp_specs(const void *a, const void *b) {
        const NotebookSpec *x = *(const NotebookSpec *const *) a, *y = *(const NotebookSpec *const *) b;
        int c = strcmp(x->name, y->name);
        if (c)
                return c;
        c = strcmp(x->file, y->file);
        if (c)
                return c;
        if (x->name_pos.line != y->name_pos.line)
                return x->name_pos.line < y->name_pos.line ? -1 : 1;
        if (x->name_pos.column != y->name_pos.column)
                return x->name_pos.column < y->name_pos.column ? -1 : 1;
        return 0;
}

static SourcePos spec_pos(const NotebookSpec *sp) {
        return sp->name_pos.line > 0 ? sp->name_pos : sp->doc_pos;
}

/* Every document of a name defined more than once gets an error naming another place. */
static int duplicate_diags(const NotebookSpec **all, size_t i, size_t k, Diags *out) {
        for (size_t j = i; j < i + k; j++) {
                const NotebookSpec *other = all[j == i ? i + 1 : i];
                SourcePos here = spec_pos(all[j]), there = spec_pos(other);
                int r;
                if (k > 2)
                        r = diag_error(out, all[j]->file, here.line, here.column,
                                       "duplicate name '%s', also defined at %s:%u:%u and %zu other place%s",
                                       all[j]->name, other->file, there.line, there.column, k - 2,
                                       k - 2 == 1 ? "" : "s");
                else
                        r = diag_error(out, all[j]->file, here.line, here.column,
                                       "duplicate name '%s', also defined at %s:%u:%u",
                                       all[j]->name, other->file, there.line, there.column);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* tenants: a name defined in two tenants' trees is the one of the tenant that owns its
 * prefix, when exactly one of the documents is that tenant's: one team can never block
 * another's notebook by copying its name. NULL: no such owner, all of them are errors. */
static const NotebookSpec *duplicate_owner(const TenantList *tenants, const NotebookSpec **run, size_t k) {
        const Tenant *owner = tenants->n > 0 ? tenant_owning_name(tenants, run[0]->name) : NULL;
        const NotebookSpec *winner = NULL;
        for (size_t j = 0; owner && j < k; j++)
                if (streq_ptr(run[j]->tenant, owner->name)) {
                        if (winner)
                                return NULL;
                        winner = run[j];
                }
        return winner;
}

static int duplicate_owner_diags(const NotebookSpec **run, size_t k, const NotebookSpec *winner,
                                 const TenantList *tenants, Diags *out) {
        const Tenant *owner = tenant_owning_name(tenants, winner->name);
        SourcePos there = spec_pos(winner);
        for (size_t j = 0; j < k; j++) {
                if (run[j] == winner)
                        continue;
                SourcePos here = spec_pos(run[j]);
                int r = diag_error(out, run[j]->file, here.line, here.column,
                                   "name '%s' belongs to tenant %s (name_prefix '%s'), which defines it at %s:%u:%u; "
                                   "this one is not applied",
                                   run[j]->name, owner->name, owner->name_prefix, winner->file, there.line, there.column);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* tenants' max_instances: past it, a tenant's manifests (in name order) are refused, and
 * the rest still converge. valid is sorted by name; refused ones are removed in place.
 * Returns how many were refused, or -ENOMEM. */
static ssize_t apply_max_instances(const TenantList *tenants, const char *source, const NotebookSpec **valid,
                                   size_t *n_valid, Diags *out) {
        if (tenants->n == 0)
                return 0;
        _cleanup_free_ size_t *count = calloc(tenants->n, sizeof(size_t));
        if (!count)
                return -ENOMEM;
        size_t kept = 0, refused = 0;
        for (size_t i = 0; i < *n_valid; i++) {
                const Tenant *t = tenant_find(tenants, valid[i]->tenant);
                if (t && t->max_instances > 0 && ++count[t - tenants->items] > t->max_instances) {
                        SourcePos here = spec_pos(valid[i]);
                        int r = diag_error(out, valid[i]->file, here.line, here.column,
                                           "tenant %s may have %u instances (max_instances in %s): '%s' is number %zu "
                                           "in name order and is not applied",
                                           t->name, t->max_instances, strempty(source), valid[i]->name,
                                           count[t - tenants->items]);
                        if (r < 0)
                                return r;
                        refused++;
                        continue;
                }
                valid[kept++] = valid[i];
        }
        *n_valid = kept;
        return (ssize_t) refused;
}

typedef struct DiagRef {
        const Diag *d;
        size_t order;   /* arrival order: keeps the sort stable */
} DiagRef;

static int cmp_diag_refs(const void *a, const void *b) {
        const DiagRef *x = a, *y = b;
        int c = strcmp(x->d->file, y->d->file);
        if (c)
                return c;
        if (x->d->line != y->d->line)
                return x->d->line < y->d->line ? -1 : 1;
        if (x->d->column != y->d->column)
                return x->d->column < y->d->column ? -1 : 1;
        return x->order < y->order ? -1 : x->order > y->order;
}

static int add_refs(DiagRef *refs, size_t *n, const Diags *d) {
        for (size_t i = 0; i < d->n; i++) {
                refs[*n] = (DiagRef) { .d = &d->items[i], .order = *n };
                (*n)++;
        }
        return 0;
}

static int resolve_view(DesiredSet *s) {
        size_t n_all = 0, n_diags = s->scan_diags.n;
        for (size_t i = 0; i < s->n_entries; i++) {
                n_all += s->entries[i]->specs.n;
                n_diags += s->entries[i]->diags.n;
        }
        _cleanup_free_ const NotebookSpec **all = calloc(n_all ? n_all : 1, sizeof(NotebookSpec *));
        if (!all)
                return -ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < s->n_entries; i++)
                for (size_t j = 0; j < s->entries[i]->specs.n; j++)
                        all[k++] = s->entries[i]->specs.items[j];
        /* sorting once keeps duplicate detection O(n log n) for a tree of thousands */
        qsort(all, n_all, sizeof(NotebookSpec *), cmp_specs);

        _cleanup_diags_ Diags dups = DIAGS_INIT;
        _cleanup_free_ const NotebookSpec **valid = calloc(n_all ? n_all : 1, sizeof(NotebookSpec *));
        if (!valid)
                return -ENOMEM;
        size_t n_valid = 0, n_dup_docs = 0;
        for (size_t i = 0; i < n_all;) {
                size_t run = 1;
                while (i + run < n_all && streq(all[i]->name, all[i + run]->name))
                        run++;
                const NotebookSpec *owner = run > 1 ? duplicate_owner(&s->policy.tenants, all + i, run) : NULL;
                if (run == 1)
                        valid[n_valid++] = all[i];
                else if (owner) {
                        int r = duplicate_owner_diags(all + i, run, owner, &s->policy.tenants, &dups);
                        if (r < 0)
                                return r;
                        valid[n_valid++] = owner;
                        n_dup_docs += run - 1;
                } else {
                        int r = duplicate_diags(all, i, run, &dups);
                        if (r < 0)
                                return r;
                        n_dup_docs += run;
                }
                i += run;
        }
        ssize_t n_refused = apply_max_instances(&s->policy.tenants, s->policy.source, valid, &n_valid, &dups);
        if (n_refused < 0)
                return (int) n_refused;
        n_dup_docs += (size_t) n_refused;

        /* all diagnostics, copied into one list in reading order */
        n_diags += dups.n;
        _cleanup_free_ DiagRef *refs = calloc(n_diags ? n_diags : 1, sizeof(DiagRef));
        if (!refs)
                return -ENOMEM;
        size_t n_refs = 0;
        for (size_t i = 0; i < s->n_entries; i++)
                add_refs(refs, &n_refs, &s->entries[i]->diags);
        add_refs(refs, &n_refs, &s->scan_diags);
        add_refs(refs, &n_refs, &dups);
        qsort(refs, n_refs, sizeof(DiagRef), cmp_diag_refs);
        _cleanup_diags_ Diags diags = DIAGS_INIT;
        for (size_t i = 0; i < n_refs; i++) {
                const Diag *d = refs[i].d;
                int r = diags_add(&diags, d->severity, d->file, d->line, d->column, "%s", d->message);
                if (r < 0)
                        return r;
        }
        diags_sort(&diags);  /* already in order: linear, and the one definition of "sorted" */

        DesiredStats st = { .n_files = s->n_entries, .n_valid = n_valid, .n_invalid = n_dup_docs };
        for (size_t i = 0; i < s->n_entries; i++) {
                st.n_documents += s->entries[i]->result.n_documents;
                st.n_invalid += s->entries[i]->result.n_invalid;
        }

        free(s->specs);
        s->specs = TAKE_PTR(valid);
        s->n_specs = n_valid;
        diags_clear(&s->diags);
        s->diags = diags;
        diags = DIAGS_INIT;
        s->stats = st;
        return 0;
}

/* The view is rebuilt after entries changed (some may be freed already): on failure
 * it must not keep pointing into them, so it is emptied; the caller reports the
 * error and the next rescan rebuilds it. */
static int resolve(DesiredSet *s) {
        int r = resolve_view(s);
        if (r < 0) {
                s->specs = mfree(s->specs);
                s->n_specs = 0;
        }
        return r;
}


/* ---- rescan ---- */

/* What a file counts against MANIFEST_MAX_TOTAL_SIZE: the bytes a reading holds. One
 * over the per-file limit is refused unread, so it holds nothing. */
static uint64_t file_budget_size(const ScanFile *f) {
        return f->size > 0 && f->size <= MANIFEST_MAX_FILE_SIZE ? (uint64_t) f->size : 0;
}

/* One error for the files past the total: on the first of them, counting the rest. */
static int total_size_diag(Diags *d, const DesiredSet *s, const ScanFile *first, size_t n_more) {
        _cleanup_free_ char *display = scan_display_path(s->roots[first->root].display, first->path);
        if (!display)
                return -ENOMEM;
        if (n_more == 0)
                return diag_error(d, display, 0, 0,
                                  "manifests total more than %d bytes (limit per scan); this file is not read",
                                  MANIFEST_MAX_TOTAL_SIZE);
        return diag_error(d, display, 0, 0,
                          "manifests total more than %d bytes (limit per scan); this file and the %zu after it are not read",
                          MANIFEST_MAX_TOTAL_SIZE, n_more);
}

/* Past MANIFEST_MAX_DIAGNOSTICS in the scan so far, a file just read keeps its first
 * diagnostic and one saying how many more it has (when that cannot be allocated, only the
 * first). Returns how many it keeps. */
static size_t entry_cap_diags(Entry *e, size_t n_before) {
        Diags *d = &e->diags;
        if (n_before + d->n <= MANIFEST_MAX_DIAGNOSTICS || d->n <= 2)
                return d->n;
        size_t more = d->n - 1;
        for (size_t i = 1; i < d->n; i++) {
                free(d->items[i].file);
                free(d->items[i].message);
        }
        d->n = 1;
        d->n_errors = d->items[0].severity == DIAG_ERROR;
        d->n_warnings = !d->n_errors;
        (void) diags_add(d, DIAG_ERROR, e->display, 0, 0,
                         "%zu more problems in this file not shown (limit %d per scan); `notebookd check` on this file alone shows them",
                         more, MANIFEST_MAX_DIAGNOSTICS);
        return d->n;
}

int desired_set_rescan(DesiredSet *s) {
        return desired_set_rescan_cancellable(s, NULL);
}

int desired_set_rescan_cancellable(DesiredSet *s, const atomic_bool *cancel) {
        _cleanup_scan_result_ ScanResult sr = SCAN_RESULT_INIT;
        _cleanup_diags_ Diags scan_diags = DIAGS_INIT;
        int r;

        for (size_t i = 0; i < s->n_roots; i++) {
                r = scan_root(&sr, s->roots[i].path, s->roots[i].display, &scan_diags);
                if (r < 0)
                        return r;
        }

        Entry **entries = calloc(sr.n_files ? sr.n_files : 1, sizeof(Entry *));
        if (!entries)
                return -ENOMEM;
        size_t n = 0, n_diags = scan_diags.n;
        uint64_t total = 0;
        r = 0;
        for (size_t i = 0; i < sr.n_files; i++) {
                ScanFile *f = &sr.files[i];
                /* Between files, not within one: a file costs at most a fraction of a
                 * second, and the set stays whole. */
                if (cancel && atomic_load(cancel)) {
                        r = -ECANCELED;
                        break;
                }
                /* In walk order, so the same tree always keeps the same files. */
                total += file_budget_size(f);
                if (total > MANIFEST_MAX_TOTAL_SIZE) {
                        r = total_size_diag(&scan_diags, s, f, sr.n_files - i - 1);
                        break;
                }
                Entry *old = find_entry(s, f->root, f->path, NULL);
                if (old && !old->reused && !s->reparse && same_identity(&old->id, f)) {
                        old->reused = true;
                        n_diags += old->diags.n;
                        entries[n++] = old;
                        continue;
                }
                r = entry_read(s, sr.roots, f, &entries[n]);
                if (r < 0)
                        break;
                /* As each is read, so that they never pile up; in walk order, the files
                 * kept as they were counted as they are. */
                n_diags += entry_cap_diags(entries[n], n_diags);
                n++;
        }
        if (r < 0) {
                /* leave the set as it was: drop only what this call read */
                for (size_t i = 0; i < n; i++)
                        if (entries[i]->reused)
                                entries[i]->reused = false;
                        else
                                entry_free(entries[i]);
                free(entries);
                return r;
        }

        for (size_t i = 0; i < s->n_entries; i++)
                if (s->entries[i]->reused)
                        s->entries[i]->reused = false;
                else
                        entry_free(s->entries[i]);
        free(s->entries);
        s->entries = entries;
        s->n_entries = n;

        scan_roots_free(s->scan_roots, s->n_scan_roots);
        s->scan_roots = TAKE_PTR(sr.roots);
        s->n_scan_roots = sr.n_roots;
        sr.n_roots = 0;
        s->truncated = sr.truncated;
        diags_clear(&s->scan_diags);
        s->scan_diags = scan_diags;
        scan_diags = DIAGS_INIT;
        s->scanned = true;
        s->reparse = false;
        return resolve(s);
}

/* ---- one file ---- */

/* Drop the walk's diagnostics about this path: they are about to be re-derived. */
static void drop_scan_diags(Diags *d, const char *file) {
        size_t w = 0;
        for (size_t i = 0; i < d->n; i++) {
                Diag *x = &d->items[i];
                if (streq(x->file, file)) {
                        if (x->severity == DIAG_ERROR)
                                d->n_errors--;
                        else
                                d->n_warnings--;
                        free(x->file);
                        free(x->message);
                        continue;
                }
                d->items[w++] = *x;
        }
        d->n = w;
}

static void remove_entry(DesiredSet *s, size_t pos) {
        entry_free(s->entries[pos]);
        memmove(s->entries + pos, s->entries + pos + 1, (s->n_entries - pos - 1) * sizeof(Entry *));
        s->n_entries--;
}

int desired_set_update_file(DesiredSet *s, const char *relpath) {
        if (!s->scanned || s->n_scan_roots == 0 || s->reparse)
                return desired_set_rescan(s);

        const ScanRoot *root = &s->scan_roots[0];
        const char *display_root = s->roots[0].display;
        _cleanup_free_ char *display = scan_display_path(display_root, root->is_file ? "" : relpath);
        if (!display)
                return -ENOMEM;
        _cleanup_diags_ Diags found = DIAGS_INIT;
        _cleanup_(scan_file_done) ScanFile f = {};  /* its paths freed unless an entry takes them */
        int r = scan_file(root, 0, root->is_file ? "" : relpath, display_root, &found, &f);
        if (r < 0)
                return r;

        size_t pos;
        Entry *old = find_entry(s, 0, root->is_file ? "" : relpath, &pos);

        if (r > 0)
                /* the same file already read under another name is not read twice */
                for (size_t i = 0; i < s->n_entries; i++)
                        if (s->entries[i] != old && s->entries[i]->id.dev == f.dev &&
                            s->entries[i]->id.ino == f.ino) {
                                r = 0;
                                break;
                        }
        if (r > 0 && !old && s->n_entries >= MANIFEST_MAX_FILES) {
                r = 0;
                if (!s->truncated) {
                        s->truncated = true;
                        if (diags_add(&found, DIAG_ERROR, display_root, 0, 0,
                                      "more than %d manifest files; only the first %d are read",
                                      MANIFEST_MAX_FILES, MANIFEST_MAX_FILES) < 0)
                                return -ENOMEM;
                }
        }

        if (r > 0) {
                uint64_t total = file_budget_size(&f);
                for (size_t i = 0; i < s->n_entries; i++)
                        if (s->entries[i] != old)
                                total += file_budget_size(&s->entries[i]->id);
                if (total > MANIFEST_MAX_TOTAL_SIZE) {
                        r = diag_error(&found, display, 0, 0,
                                       "manifests total more than %d bytes (limit per scan); this file is not read",
                                       MANIFEST_MAX_TOTAL_SIZE);
                        if (r < 0)
                                return r;
                }
        }

        Entry *e = NULL;
        if (r > 0) {
                r = entry_read(s, s->scan_roots, &f, &e);
                if (r < 0)
                        return r;
                if (!old) {
                        Entry **entries = realloc(s->entries, (s->n_entries + 1) * sizeof(Entry *));
                        if (!entries) {
                                entry_free(e);
                                return -ENOMEM;
                        }
                        s->entries = entries;
                }
        }

        /* from here on nothing fails but resolve(): commit */
        drop_scan_diags(&s->scan_diags, display);
        r = diags_move(&s->scan_diags, &found);
        if (r < 0) {
                entry_free(e);
                return r;
        }
        if (e && old) {
                entry_free(old);
                s->entries[pos] = e;
        } else if (e) {
                memmove(s->entries + pos + 1, s->entries + pos, (s->n_entries - pos) * sizeof(Entry *));
                s->entries[pos] = e;
                s->n_entries++;
        } else if (old)
                remove_entry(s, pos);
        return resolve(s);
}

/* ---- results ---- */

const NotebookSpec *const *desired_set_specs(const DesiredSet *s, size_t *ret_n) {
        if (ret_n)
                *ret_n = s->n_specs;
        return s->specs;
}

const Diags *desired_set_diags(const DesiredSet *s) {
        return &s->diags;
}

void desired_set_stats(const DesiredSet *s, DesiredStats *ret) {
        *ret = s->stats;
}

/* The tenant a diagnostic is about: by its file's path under the first root, whose
 * display path with its '/' is root_prefix; NULL when it is about no tenant's part of the
 * tree (the root itself, a file under no tenant). */
static const Tenant *diag_tenant(const DesiredSet *s, const char *root_prefix, const Diag *d) {
        size_t n = strlen(root_prefix);
        if (strncmp(d->file, root_prefix, n) != 0)
                return NULL;
        return tenant_for_path(&s->policy.tenants, d->file + n);
}

int desired_set_problem(const DesiredSet *s, char **ret) {
        return desired_set_problem_of(s, NULL, ret);
}

int desired_set_problem_of(const DesiredSet *s, const char *tenant, char **ret) {
        const Diags *d = desired_set_diags(s);
        const Tenant *t = tenant && s->n_roots > 0 ? tenant_find(&s->policy.tenants, tenant) : NULL;
        *ret = NULL;
        /* "DISPLAY/": what a diagnostic's file starts with under the first root */
        _cleanup_free_ char *root_prefix = t ? scan_display_path(s->roots[0].display, "x") : NULL;
        if (t && !root_prefix)
                return -ENOMEM;
        if (root_prefix)
                root_prefix[strlen(root_prefix) - 1] = 0;
        for (size_t i = 0; i < d->n; i++) {
                const Diag *x = &d->items[i];
                if (x->severity != DIAG_ERROR)
                        continue;
                /* a tenant is held by its own part of the tree and by what is no tenant's */
                const Tenant *about = t ? diag_tenant(s, root_prefix, x) : NULL;
                if (t && about && about != t)
                        continue;
                *ret = x->line > 0 ? xasprintf("%s:%u:%u: %s", x->file, x->line, x->column, x->message)
                                   : xasprintf("%s: %s", x->file, x->message);
                return *ret ? 0 : -ENOMEM;
        }
        size_t n_valid = 0;
        for (size_t i = 0; i < s->n_specs; i++)
                n_valid += !t || streq_ptr(s->specs[i]->tenant, t->name);
        if (n_valid == 0) {
                *ret = t ? xasprintf("no valid manifest under %s", t->path) : strdup("no valid manifest in the tree");
                return *ret ? 0 : -ENOMEM;
        }
        return 0;
}

int desired_set_tree_problems(const DesiredSet *s, const TenantList *tenants, TreeProblems *ret) {
        TreeProblems tp = { .tenants = tenants, .of = calloc(tenants->n ?: 1, sizeof(char *)) };
        int r = tp.of ? desired_set_problem(s, &tp.whole) : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < tenants->n; i++)
                r = desired_set_problem_of(s, tenants->items[i].name, &tp.of[i]);
        if (r < 0) {
                tree_problems_done(&tp);
                return r;
        }
        *ret = tp;
        return 0;
}

const char *tree_problems_of(const TreeProblems *tp, const char *tenant) {
        const Tenant *t = tenant_find(tp->tenants, tenant);
        return t ? tp->of[t - tp->tenants->items] : tp->whole;
}

void tree_problems_done(TreeProblems *tp) {
        for (size_t i = 0; tp->of && i < tp->tenants->n; i++)
                free(tp->of[i]);
        free(tp->of);
        free(tp->whole);
        *tp = (TreeProblems) {};
}
