/* modelarts-emulator: thin main. Parse flags, start the server, say where it listens
 * (stdout line and/or --port-file, so a test can wait for it without sleeping), wait
 * for SIGTERM/SIGINT, stop cleanly. */
#include "emulator.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "macro.h"
#include "util.h"

static int write_port_file(const char *path, unsigned port) {
        _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int) getpid());
        if (!tmp)
                return -ENOMEM;
        FILE *f = fopen(tmp, "we");
        if (!f)
                return -errno;
        fprintf(f, "%u\n", port);
        if (fclose(f) != 0 || rename(tmp, path) < 0) {
                int r = -errno;
                unlink(tmp);
                return r;
        }
        return 0;
}

int main(int argc, char **argv) {
        /* Block the stop signals first, before any thread exists: every thread inherits
         * the mask and only sigwait() below receives them (a SIGTERM during start-up
         * then also ends in a clean exit). */
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        pthread_sigmask(SIG_BLOCK, &stop, NULL);
        signal(SIGPIPE, SIG_IGN);

        Emulator e = {};
        emu_settings_init(&e.settings);
        int r = emu_settings_parse_argv(&e.settings, argc, argv);
        if (r != 0) {
                emu_settings_done(&e.settings);
                return r > 0 ? EXIT_SUCCESS : 2;
        }
        if (!!e.settings.ak != !!e.settings.sk) {
                fprintf(stderr, "modelarts-emulator: --ak and --sk go together\n");
                emu_settings_done(&e.settings);
                return 2;
        }

        uint64_t seed = e.settings.seed;
        if (!e.settings.seed_set && getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
                seed = (uint64_t) now_realtime_ms() ^ ((uint64_t) getpid() << 32);
        emu_rng_seed(&e.rng, seed);
        e.id_seed = emu_mix64(seed ^ 0x5265717565737449ull); /* request ids: their own stream */
        e.started_mono = now_monotonic_ms();
        emu_metadata_init(&e.meta, seed, now_realtime_ms());
        pthread_mutex_init(&e.lock, NULL);

        int exit_code = 1;
        _cleanup_free_ char *err = NULL;
        unsigned port = 0;
        if (emu_store_new(&e.store) < 0 || emu_stats_new(&e.stats) < 0 || emu_inject_usage_new(&e.inject_usage) < 0 ||
            emu_delayer_new(&e.delayer) < 0) {
                fprintf(stderr, "modelarts-emulator: out of memory\n");
                goto out;
        }
        r = emu_server_start(&e, &port, &err);
        if (r < 0) {
                fprintf(stderr, "modelarts-emulator: %s\n", err ? err : strerror(-r));
                goto out;
        }
        if (e.settings.port_file && (r = write_port_file(e.settings.port_file, port)) < 0) {
                fprintf(stderr, "modelarts-emulator: cannot write %s: %s\n", e.settings.port_file, strerror(-r));
                goto out;
        }
        const char *listen = e.settings.listen ? e.settings.listen : "127.0.0.1:0";
        const char *colon = strrchr(listen, ':');
        printf("listening on %.*s:%u\n", (int) (colon - listen), listen, port);
        fflush(stdout);

        int sig = 0;
        while (sigwait(&stop, &sig) != 0)
                ;
        exit_code = 0;
out:
        emu_server_stop(&e);
        e.delayer = emu_delayer_free(e.delayer);
        e.store = emu_store_free(e.store);
        e.stats = emu_stats_free(e.stats);
        e.inject_usage = emu_inject_usage_free(e.inject_usage);
        pthread_mutex_destroy(&e.lock);
        emu_settings_done(&e.settings);
        return exit_code;
}
