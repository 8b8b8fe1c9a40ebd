/* The credential-files watcher (see credwatch.h for what it promises). */
#include "credwatch.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "util.h"

/* What replaces or rewrites a file in a directory: a write, a rename into place (editors,
 * `install`, `mv`), a new file, a chmod (a file made readable at last). */
#define CREDWATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB | IN_ONLYDIR)
/* Timer slack: sd-event's default (250 ms) would be longer than the debounce. */
#define CREDWATCH_TIMER_ACCURACY_USEC 1000

typedef struct WatchedFile {
        int wd;        /* of the file's directory (several files may share it) */
        char *name;    /* the file's name in that directory */
} WatchedFile;

struct CredWatch {
        sd_event_source *io;
        sd_event_source *timer;
        int fd;
        uint64_t debounce_usec;
        WatchedFile *files;
        size_t n_files;
        credwatch_cb cb;
        void *userdata;
};

CredWatch *credwatch_free(CredWatch *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->timer);
        if (w->fd >= 0)
                close(w->fd);
        for (size_t i = 0; i < w->n_files; i++)
                free(w->files[i].name);
        free(w->files);
        free(w);
        return NULL;
}

static bool credwatch_matches(const CredWatch *w, const struct inotify_event *ev) {
        if (ev->len == 0)
                return false;
        for (size_t i = 0; i < w->n_files; i++)
                if (w->files[i].wd == ev->wd && streq(w->files[i].name, ev->name))
                        return true;
        return false;
}

static int on_credwatch_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        CredWatch *w = userdata;
        w->cb(w, w->userdata);
        return 0;
}

static int on_credwatch_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void) s;
        (void) revents;
        CredWatch *w = userdata;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool changed = false;
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
                for (char *p = buf; p < buf + n;) {
                        const struct inotify_event *ev = (const struct inotify_event *) p;
                        changed = changed || credwatch_matches(w, ev) || (ev->mask & IN_Q_OVERFLOW);
                        p += sizeof *ev + ev->len;
                }
        if (!changed)
                return 0;
        /* every change pushes the call back: the AK and the SK are two writes */
        int r = sd_event_source_set_time_relative(w->timer, w->debounce_usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
        if (r < 0)
                w->cb(w, w->userdata);
        return 0;
}

static int credwatch_add(CredWatch *w, const char *path) {
        _cleanup_free_ char *d = strdup(path), *b = strdup(path);
        if (!d || !b)
                return -ENOMEM;
        const char *name = basename(b);
        if (!*name || streq(name, "/"))
                return -EINVAL;
        int wd = inotify_add_watch(w->fd, dirname(d), CREDWATCH_MASK);
        if (wd < 0)
                return -errno;
        char *copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        w->files[w->n_files++] = (WatchedFile) { .wd = wd, .name = copy };
        return 0;
}

int credwatch_new(sd_event *event, const char *const *paths, size_t n, uint64_t debounce_ms, credwatch_cb cb,
                  void *userdata, CredWatch **ret) {
        *ret = NULL;
        size_t wanted = 0;
        for (size_t i = 0; i < n; i++)
                wanted += paths[i] != NULL;
        if (wanted == 0)
                return 0;
        _cleanup_(credwatch_freep) CredWatch *w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->fd = -1;
        w->cb = cb;
        w->userdata = userdata;
        w->debounce_usec = debounce_ms * 1000;
        w->files = calloc(wanted, sizeof *w->files);
        if (!w->files)
                return -ENOMEM;
        w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->fd < 0)
                return -errno;
        for (size_t i = 0; i < n; i++) {
                if (!paths[i])
                        continue;
                int r = credwatch_add(w, paths[i]);
                if (r < 0)
                        return r;
        }
        int r = sd_event_add_io(event, &w->io, w->fd, EPOLLIN, on_credwatch_io, w);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(event, &w->timer, CLOCK_MONOTONIC, w->debounce_usec,
                                       CREDWATCH_TIMER_ACCURACY_USEC, on_credwatch_timer, w);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        *ret = w;
        w = NULL;
        return 0;
}
