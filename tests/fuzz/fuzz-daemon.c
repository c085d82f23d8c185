/* fuzz-daemon.c - the daemon the daemon-level harnesses drive (fuzz-daemon.h) */

#include "fuzz-daemon.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "state.h"

static int never(EngineSource *s, uint64_t expirations, void *userdata) {
        return 0;
}

/* The sanitizers' symbolizer (absent from a build without them). */
void __sanitizer_symbolize_pc(void *pc, const char *fmt, char *buf, size_t size) __attribute__((weak));

/* libFuzzer names each newly covered function (NEW_FUNC) through a symbolizer process
 * whose two pipes then stay open for good: start it now, so they are in the baseline and
 * not taken for the daemon's leak (they were, the first time a NEW_FUNC was printed). */
static void start_symbolizer(void) {
        char name[128];

        if (__sanitizer_symbolize_pc)
                __sanitizer_symbolize_pc(__builtin_return_address(0), "%f", name, sizeof(name));
}

Daemon *fuzz_daemon_start(const ConfigSetting *cli, size_t n_cli) {
        DaemonOptions opts = { .no_listen = true, .cli = cli, .n_cli = n_cli };
        EngineSource *s = NULL;
        Daemon *d;

        log_set_max_level(LOG_CRIT);
        if (daemon_new(&d, &opts) < 0)
                abort();
        log_set_max_level(LOG_CRIT); /* the configuration set it */
        /* The engine makes its wall-clock timerfd with the first `at` timer and keeps it:
         * make it now, so that it is part of the baseline. */
        if (engine_add_timer(d->engine, &s, ENGINE_CLOCK_REALTIME, UINT64_MAX, 0, never, NULL) < 0)
                abort();
        (void)source_free(s);
        start_symbolizer();
        return d;
}

int fuzz_count_fds(void) {
        DIR *dir = opendir("/proc/self/fd");
        struct dirent *de;
        int n = 0;

        if (!dir)
                abort();
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(dir);
        return n - 1; /* the directory's own */
}

void fuzz_run_until_idle(Daemon *d) {
        for (int i = 0; i < 8; i++)
                (void)engine_step(d->engine, 0);
}

void fuzz_assert_holds_nothing(Daemon *d, int baseline_fds) {
        int fds = fuzz_count_fds();

        if (d->conns.n != 0 || d->n_watches != 0 || d->n_timers != 0) {
                fprintf(stderr, "daemon kept state after the client left: %zu clients, %u watches, %u timers\n",
                        d->conns.n, d->n_watches, d->n_timers);
                abort();
        }
        if (fds != baseline_fds) {
                fprintf(stderr, "fd leak: %d open, %d at start\n", fds, baseline_fds);
                abort();
        }
}
