/*
 * evctl-loop.c - how evctl waits: libevd dispatched from its own poll() loop together
 * with a signalfd for SIGINT/SIGTERM, so Ctrl-C ends a waiting command cleanly; and the
 * clocks the waiting commands measure with.
 */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>

#include "evctl.h"

int sigfd = -1;
bool loop_done;
int loop_exit;

int signals_block(void) {
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        return sigfd < 0 ? -errno : 0;
}

/* Dispatch until a callback sets loop_done. Return: loop_exit, EXIT_INTERRUPTED on a
 * signal (or 0 if @signal_ok), EXIT_UNREACHABLE if the connection went. */
int loop_run(bool signal_ok) {
        for (;;) {
                struct pollfd p[2] = {
                        {.fd = evd_client_fd(client), .events = POLLIN},
                        {.fd = sigfd, .events = POLLIN},
                };
                int r = evd_client_dispatch(client);

                if (loop_done)
                        return loop_exit;
                if (r < 0)
                        return call_failed(NULL, r);
                if (poll(p, 2, -1) < 0 && errno != EINTR) {
                        errorf("poll: %s", strerror(errno));
                        return EXIT_FAIL;
                }
                if (p[1].revents & POLLIN)
                        return signal_ok ? 0 : EXIT_INTERRUPTED;
        }
}

double now_realtime(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double now_mono(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
