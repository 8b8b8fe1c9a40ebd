/* openat2() made to look missing, as on Linux < 5.6 or under a seccomp filter that does
 * not know it: a test sets openat2_errno (ENOSYS, EPERM) and the reader's fallback does
 * the work; n_openat2 counts the calls either way. The suite links with
 * -Wl,--wrap=syscall (glibc has no openat2() wrapper: the reader calls syscall()). */
#pragma once
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>

static int openat2_errno;
static unsigned n_openat2;

long __real_syscall(long number, ...);
long __wrap_syscall(long number, ...);
long __wrap_syscall(long number, ...) {
        va_list ap;
        long a[6];
        va_start(ap, number);
        for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
                a[i] = va_arg(ap, long);
        va_end(ap);
        if (number == SYS_openat2) {
                n_openat2++;
                if (openat2_errno) {
                        errno = openat2_errno;
                        return -1;
                }
        }
        return __real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
