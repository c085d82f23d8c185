/* contender-libev.c - libev 4.x, used as its documentation shows
 *
 * io: one ev_io per pipe in a user array (libev's own idiom: watchers are embedded in the
 * user's structures), level-triggered, ev_run(loop, 0) until a callback calls ev_break().
 * The backend is forced with ev_loop_new(EVBACKEND_*) and checked with ev_backend().
 * timers: ev_timer_init() + ev_timer_start() on a user array allocated (and pre-faulted)
 * once for the whole program, so no timed phase pays libev any allocation of ours.
 */

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <ev.h>
#pragma GCC diagnostic pop

static struct ev_loop *loop;
static ev_io *watchers;

static const char *libev_version(void) {
        static char buf[32];

        (void)snprintf(buf, sizeof(buf), "libev %d.%d", ev_version_major(), ev_version_minor());
        return buf;
}

static void io_cb(struct ev_loop *l, ev_io *w, int revents) {
        if (bench_pipes_readable((unsigned)(w - watchers)))
                ev_break(l, EVBREAK_ONE);
}

static void libev_teardown(void) {
        if (loop && watchers)
                for (unsigned i = 0; i < bench_pipes.n; i++)
                        ev_io_stop(loop, &watchers[i]);
        free(watchers);
        watchers = NULL;
        if (loop)
                ev_loop_destroy(loop);
        loop = NULL;
}

static int libev_setup(unsigned backend, const char **ret_why) {
        loop = ev_loop_new(backend | EVFLAG_NOENV);
        if (!loop) {
                *ret_why = "ev_loop_new() failed for this backend";
                return -EOPNOTSUPP;
        }
        if (ev_backend(loop) != backend) {
                *ret_why = "ev_backend() is not the one asked for";
                libev_teardown();
                return -EOPNOTSUPP;
        }
        watchers = calloc(bench_pipes.n, sizeof(*watchers));
        if (!watchers)
                return -ENOMEM;
        for (unsigned i = 0; i < bench_pipes.n; i++) {
                ev_io_init(&watchers[i], io_cb, bench_pipes.pipes[i].r, EV_READ);
                ev_io_start(loop, &watchers[i]);
        }
        (void)ev_run(loop, EVRUN_NOWAIT);
        return 0;
}

static int libev_setup_epoll(const char **ret_why) {
        return libev_setup(EVBACKEND_EPOLL, ret_why);
}

static int libev_setup_iouring(const char **ret_why) {
        return libev_setup(EVBACKEND_IOURING, ret_why);
}

static int libev_run(void) {
        (void)ev_run(loop, 0);
        return 0;
}

static int64_t libev_waits(void) {
        return (int64_t)ev_iteration(loop);
}

const IoContender contender_libev_epoll = {
        .name = "libev-epoll",
        .version = libev_version,
        .setup = libev_setup_epoll,
        .run = libev_run,
        .waits = libev_waits,
        .teardown = libev_teardown,
};

const IoContender contender_libev_iouring = {
        .name = "libev-iouring",
        .version = libev_version,
        .setup = libev_setup_iouring,
        .run = libev_run,
        .waits = libev_waits,
        .teardown = libev_teardown,
};

/* timers */

static ev_timer *timers;
static size_t timers_size;
static size_t fired, fire_target;

static void timer_cb(struct ev_loop *l, ev_timer *w, int revents) {
        if (++fired == fire_target)
                ev_break(l, EVBREAK_ONE);
}

static int libev_timer_setup(size_t n, const char **ret_why) {
        if (timers_size < n) {
                free(timers);
                timers = calloc(n, sizeof(*timers));
                if (!timers)
                        return -ENOMEM;
                bench_prefault(timers, n * sizeof(*timers));
                timers_size = n;
        }
        loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
        if (!loop) {
                *ret_why = "ev_loop_new() failed";
                return -EOPNOTSUPP;
        }
        return 0;
}

static int libev_timer_insert(size_t n, const uint64_t *after_ns, const double *after_s) {
        for (size_t i = 0; i < n; i++) {
                ev_timer_init(&timers[i], timer_cb, after_s[i], 0.);
                ev_timer_start(loop, &timers[i]);
        }
        return 0;
}

static int libev_timer_cancel(size_t n) {
        for (size_t i = 0; i < n; i++)
                ev_timer_stop(loop, &timers[i]);
        return 0;
}

static int64_t libev_timer_run(size_t n) {
        fired = 0;
        fire_target = n;
        (void)ev_run(loop, 0);
        return (int64_t)fired;
}

static void libev_timer_release(size_t n) {
        /* Fired one-shot ev_timers are stopped already; the memory is ours. */
}

static void libev_timer_now_update(void) {
        ev_now_update(loop);
}

static void libev_timer_teardown(void) {
        if (loop)
                ev_loop_destroy(loop);
        loop = NULL;
}

const TimerContender timer_libev = {
        .name = "libev",
        .setup = libev_timer_setup,
        .insert = libev_timer_insert,
        .cancel = libev_timer_cancel,
        .run = libev_timer_run,
        .release = libev_timer_release,
        .now_update = libev_timer_now_update,
        .teardown = libev_timer_teardown,
};
