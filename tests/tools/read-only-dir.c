/* LD_PRELOAD'ed by t-fault-statedir.sh: while the file $NB_READONLY_FLAG exists, every
 * write to a file under $NB_READONLY_DIR fails with EROFS, as after the kernel remounts
 * a filesystem read-only on an I/O error (errors=remount-ro).
 *
 * Why not a real read-only remount: Linux refuses `mount -o remount,ro` (EBUSY) while a
 * file on the mount is open for writing, and the daemon keeps its state database open.
 * Only the kernel's own emergency remount gets past that. The errors the daemon sees here
 * are the ones it would see then: EROFS from write, pwrite, ftruncate and from opening a
 * file there for writing, and statvfs() saying ST_RDONLY. (A full disk, the other half
 * of the test, is a real tmpfs.) */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

static bool active(void) {
        const char *flag = getenv("NB_READONLY_FLAG");
        struct stat st;
        return flag && syscall(SYS_newfstatat, AT_FDCWD, flag, &st, 0) == 0;
}

static bool under_dir(const char *path) {
        const char *dir = getenv("NB_READONLY_DIR");
        size_t n = dir ? strlen(dir) : 0;
        return n > 0 && strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static bool fd_read_only(int fd) {
        if (!active())
                return false;
        char link[64], path[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t k = readlink(link, path, sizeof path - 1);
        if (k <= 0)
                return false;
        path[k] = '\0';
        return under_dir(path);
}

ssize_t write(int fd, const void *buf, size_t n) {
        if (fd_read_only(fd)) {
                errno = EROFS;
                return -1;
        }
        return syscall(SYS_write, fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
        if (fd_read_only(fd)) {
                errno = EROFS;
                return -1;
        }
        return syscall(SYS_pwrite64, fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
        return pwrite(fd, buf, n, off);
}

int ftruncate(int fd, off_t len) {
        if (fd_read_only(fd)) {
                errno = EROFS;
                return -1;
        }
        return (int) syscall(SYS_ftruncate, fd, len);
}

int ftruncate64(int fd, off_t len) {
        return ftruncate(fd, len);
}

static int open_common(int dirfd, const char *path, int flags, mode_t mode) {
        if ((flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) && active()) {
                char abs[4096];
                if (path[0] != '/' && getcwd(abs, sizeof abs)) {
                        size_t l = strlen(abs);
                        snprintf(abs + l, sizeof abs - l, "/%s", path);
                } else
                        snprintf(abs, sizeof abs, "%s", path);
                if (under_dir(abs)) {
                        errno = EROFS;
                        return -1;
                }
        }
        return (int) syscall(SYS_openat, dirfd, path, flags, mode);
}

int open(const char *path, int flags, ...) {
        mode_t mode = 0;
        if (flags & (O_CREAT | O_TMPFILE)) {
                va_list ap;
                va_start(ap, flags);
                mode = (mode_t) va_arg(ap, int);
                va_end(ap);
        }
        return open_common(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...) {
        mode_t mode = 0;
        if (flags & (O_CREAT | O_TMPFILE)) {
                va_list ap;
                va_start(ap, flags);
                mode = (mode_t) va_arg(ap, int);
                va_end(ap);
        }
        return open_common(AT_FDCWD, path, flags, mode);
}

int statvfs(const char *path, struct statvfs *buf) {
        static int (*real)(const char *, struct statvfs *);
        if (!real)
                real = (int (*)(const char *, struct statvfs *)) dlsym(RTLD_NEXT, "statvfs");
        int r = real ? real(path, buf) : -1;
        if (r == 0 && active()) {
                char abs[4096];
                if (path[0] != '/' && getcwd(abs, sizeof abs)) {
                        size_t l = strlen(abs);
                        snprintf(abs + l, sizeof abs - l, "/%s", path);
                } else
                        snprintf(abs, sizeof abs, "%s", path);
                if (under_dir(abs))
                        buf->f_flag |= ST_RDONLY;
        }
        return r;
}

int statvfs64(const char *path, struct statvfs64 *buf) {
        /* the same layout on 64-bit systems, where glibc makes them one function */
        return statvfs(path, (struct statvfs *) buf);
}
