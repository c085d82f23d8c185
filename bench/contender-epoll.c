/* contender-epoll.c - the baseline: the simplest fast loop one could write by hand
 *
 * Level-triggered epoll, the pipe index in data.u32, one epoll_wait() with a 1024-entry
 * array per iteration and a direct call of the shared callback work. No timers, no
 * deferred work, no bookkeeping: what every library pays on top of this is its overhead.
 */

#include "bench.h"

#include <sys/epoll.h>

#define MAX_EVENTS 1024

static int epfd = -1;
static int64_t iterations;

static int raw_setup(const char **ret_why) {
        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0)
                return -errno;
        for (unsigned i = 0; i < bench_pipes.n; i++) {
                struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

                if (epoll_ctl(epfd, EPOLL_CTL_ADD, bench_pipes.pipes[i].r, &ev) < 0)
                        return -errno;
        }
        iterations = 0;
        return 0;
}

static int raw_run(void) {
        struct epoll_event events[MAX_EVENTS];

        for (;;) {
                int k = epoll_wait(epfd, events, MAX_EVENTS, -1);
                bool done = false;

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                iterations++;
                for (int i = 0; i < k; i++)
                        done = bench_pipes_readable(events[i].data.u32);
                if (done)
                        return 0;
        }
}

static int64_t raw_waits(void) {
        return iterations;
}

static void raw_teardown(void) {
        if (epfd >= 0)
                (void)close(epfd);
        epfd = -1;
}

const IoContender contender_raw_epoll = {
        .name = "raw-epoll",
        .setup = raw_setup,
        .run = raw_run,
        .waits = raw_waits,
        .syscalls = raw_waits,
        .teardown = raw_teardown,
};
