/* libFuzzer target: config_load() on arbitrary file contents. config_load() reads a path,
 * so the input goes into one memfd (a regular file, as the loader requires) opened
 * through /proc/self/fd: no temporary files, nothing left behind. The contract: any
 * bytes give 0 or -EINVAL with diagnostics, and on -EINVAL the Config is unchanged. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (memfd < 0) {
                memfd = memfd_create("fuzz-config", MFD_CLOEXEC);
                if (memfd < 0)
                        abort();
                snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
        }
        if (ftruncate(memfd, 0) < 0 || (size > 0 && pwrite(memfd, data, size, 0) != (ssize_t) size))
                abort();

        Config c;
        Diags diags = DIAGS_INIT;
        if (config_init(&c) < 0)
                abort();
        unsigned before = c.concurrency;
        int r = config_load(&c, path, &diags);
        if (r == 0) {
                char *e = config_effective_endpoint(&c);
                free(e);
                if (c.concurrency < 1 || c.concurrency > CONFIG_MAX_CONCURRENCY)
                        abort();  /* a value the loader accepted must be within its limits */
        } else if (r == -EINVAL) {
                if (diags.n_errors == 0 || c.concurrency != before)
                        abort();  /* refused: says why, and leaves the config as it was */
        } else if (r != -ENOMEM)
                abort();
        config_done(&c);
        diags_clear(&diags);
        return 0;
}
