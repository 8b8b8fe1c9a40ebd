/* LD_PRELOAD'ed before libfaketime by t-fault-clock.sh: the timer calls go straight to
 * the kernel, unfaked.
 *
 * Why: libfaketime (0.9.10) moves every absolute timer by its fake offset, CLOCK_MONOTONIC
 * ones included even under FAKETIME_DONT_FAKE_MONOTONIC=1. With the offset changed while
 * the daemon runs (the point of the test), an sd-event timer then fires at the wrong
 * moment; sd-event, which remembers what it armed, does not re-arm it, and the loop sleeps
 * for good. The daemon only ever arms CLOCK_MONOTONIC timers, which no real clock skew
 * moves, so leaving them alone fakes exactly what the test means: the wall clock. */
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

int timerfd_settime(int fd, int flags, const struct itimerspec *new_value, struct itimerspec *old_value) {
        return (int) syscall(SYS_timerfd_settime, fd, flags, new_value, old_value);
}

int timerfd_gettime(int fd, struct itimerspec *curr_value) {
        return (int) syscall(SYS_timerfd_gettime, fd, curr_value);
}
