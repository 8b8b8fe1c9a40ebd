/* notify-recorder: stands in for systemd's end of $NOTIFY_SOCKET in tests.
 *
 *   notify-recorder [-t] SOCKET OUTPUT
 *
 * Binds an AF_UNIX datagram socket at SOCKET ("@name" for the abstract namespace),
 * prints "ready" on stdout once it is bound, and appends each datagram it receives to
 * OUTPUT as one line, written with a single write() so a reader following the file
 * never sees half a message. Newlines inside a datagram (sd_notify sends
 * "READY=1\nSTATUS=...") become the two characters \n, backslashes become \\.
 * -t prefixes each line with the CLOCK_REALTIME time of receipt in microseconds, to
 * order notifications against journal entries (__REALTIME_TIMESTAMP). Exits 0 on
 * SIGTERM or SIGINT and removes SOCKET. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* systemd reads notifications into a buffer of this order; a bigger datagram is cut. */
#define DATAGRAM_MAX (64 * 1024)

static int usage(void) {
        fputs("usage: notify-recorder [-t] SOCKET OUTPUT\n", stderr);
        return 2;
}

static int write_all(int fd, const char *buf, size_t len) {
        while (len > 0) {
                ssize_t k = write(fd, buf, len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                buf += k;
                len -= (size_t) k;
        }
        return 0;
}

int main(int argc, char **argv) {
        int timestamps = 0, c;
        while ((c = getopt(argc, argv, "t")) >= 0)
                if (c == 't')
                        timestamps = 1;
                else
                        return usage();
        if (argc - optind != 2)
                return usage();
        const char *path = argv[optind], *output = argv[optind + 1];

        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t plen = strlen(path);
        if (plen == 0 || plen >= sizeof(sa.sun_path)) {
                fprintf(stderr, "notify-recorder: socket path too long: %s\n", path);
                return 2;
        }
        memcpy(sa.sun_path, path, plen);
        socklen_t salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + plen);
        int abstract = path[0] == '@';
        if (abstract)
                sa.sun_path[0] = 0;
        else
                (void) unlink(path); /* a stale socket from a killed run */

        int out = open(output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (out < 0) {
                fprintf(stderr, "notify-recorder: %s: %s\n", output, strerror(errno));
                return 1;
        }
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, salen) < 0) {
                fprintf(stderr, "notify-recorder: %s: %s\n", path, strerror(errno));
                return 1;
        }

        /* Signals through a signalfd: no window between checking a flag and blocking. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return 1;
        int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sfd < 0)
                return 1;

        fputs("ready\n", stdout);
        fflush(stdout);

        static char buf[DATAGRAM_MAX];
        static char line[DATAGRAM_MAX * 2 + 32];
        int ret = 0;
        for (;;) {
                struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        ret = 1;
                        break;
                }
                if (p[1].revents)
                        break;
                if (!p[0].revents)
                        continue;
                /* No control buffer: descriptors sent along (FDSTORE=1) are closed by the kernel. */
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        ret = 1;
                        break;
                }
                size_t l = 0;
                if (timestamps) {
                        struct timespec ts;
                        clock_gettime(CLOCK_REALTIME, &ts);
                        l = (size_t) snprintf(line, 32, "%lld ",
                                              (long long) ts.tv_sec * 1000000LL + ts.tv_nsec / 1000);
                }
                size_t len = (size_t) n;
                while (len > 0 && buf[len - 1] == '\n')
                        len--;
                for (size_t i = 0; i < len; i++) {
                        if (buf[i] == '\n' || buf[i] == '\\') {
                                line[l++] = '\\';
                                line[l++] = buf[i] == '\n' ? 'n' : '\\';
                        } else
                                line[l++] = buf[i];
                }
                line[l++] = '\n';
                if (write_all(out, line, l) < 0) {
                        ret = 1;
                        break;
                }
        }
        if (!abstract)
                (void) unlink(path);
        return ret;
}
