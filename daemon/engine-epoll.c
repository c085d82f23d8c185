/* engine-epoll.c - the epoll backend: EPOLLET for edge sources, EPOLLONESHOT for oneshot
 *
 * The fallback where io_uring is unavailable (seccomp, kernel.io_uring_disabled, old
 * kernels). Semantics match engine-uring.c: the test suite runs against both.
 * epoll_event.data holds fd and generation, never a pointer: an fd closed while still
 * registered through a dup elsewhere can keep reporting, and such stale events are dropped
 * by the generation check instead of reaching freed memory or a newer source.
 */

#include "engine-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>

#include "macro.h"

#define EVENTS_MIN 64
#define EVENTS_MAX 4096

typedef struct Epoll {
        int fd;
        struct epoll_event *events;
        int n_events;
        bool pwait2;
} Epoll;

static int epoll_ctl_source(Engine *e, EngineSource *s, int op) {
        Epoll *p = e->backend_data;
        struct epoll_event ev = {
                .events = s->io.events | (s->io.mode == ENGINE_ONESHOT ? EPOLLONESHOT : EPOLLET),
                .data.u64 = (uint32_t)s->io.fd | (uint64_t)s->io.generation << 32,
        };

        e->stats.syscalls++;
        e->stats.submissions++;
        if (epoll_ctl(p->fd, op, s->io.fd, op == EPOLL_CTL_DEL ? NULL : &ev) < 0)
                return -errno;
        return 0;
}

static int epoll_io_start(Engine *e, EngineSource *s) {
        int r = epoll_ctl_source(e, s, s->io.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD);

        if (r < 0)
                return r;
        s->io.registered = true;
        s->io.kernel_armed = true;
        return 0;
}

static void epoll_io_stop(Engine *e, EngineSource *s) {
        /* DEL, not MOD to no events: epoll would still report ERR and HUP. ENOENT or EBADF
         * mean the fd was closed first; the kernel already dropped the registration. */
        if (s->io.registered)
                (void)epoll_ctl_source(e, s, EPOLL_CTL_DEL);
        s->io.registered = false;
        s->io.kernel_armed = false;
}

static int epoll_init(Engine *e, const EngineOptions *opts) {
        _cleanup_free_ Epoll *p = calloc(1, sizeof(*p));
        struct epoll_event ev;
        struct timespec zero = { 0 };

        if (!p)
                return -ENOMEM;
        p->fd = epoll_create1(EPOLL_CLOEXEC);
        if (p->fd < 0)
                return -errno;
        p->n_events = EVENTS_MIN;
        p->events = malloc(sizeof(*p->events) * (size_t)p->n_events);
        if (!p->events) {
                (void)safe_close(p->fd);
                return -ENOMEM;
        }
        /* Nanosecond timeouts where the kernel has them (5.11); else milliseconds, rounded up. */
        p->pwait2 = !(opts->disable_features & ENGINE_FEATURE_EPOLL_PWAIT2) &&
                    (epoll_pwait2(p->fd, &ev, 1, &zero, NULL) >= 0 || errno != ENOSYS);
        if (p->pwait2)
                e->features |= ENGINE_FEATURE_EPOLL_PWAIT2;
        e->backend_data = TAKE_PTR(p);
        return 0;
}

static void epoll_done(Engine *e) {
        Epoll *p = e->backend_data;

        if (!p)
                return;
        (void)safe_close(p->fd);
        free(p->events);
        free(p);
        e->backend_data = NULL;
}

static int epoll_wait_and_dispatch(Engine *e, int64_t timeout_ns) {
        Epoll *p = e->backend_data;
        int n;

        if (p->pwait2) {
                struct timespec ts = {
                        .tv_sec = timeout_ns / (int64_t)NSEC_PER_SEC,
                        .tv_nsec = timeout_ns % (int64_t)NSEC_PER_SEC,
                };
                n = epoll_pwait2(p->fd, p->events, p->n_events, timeout_ns < 0 ? NULL : &ts, NULL);
        } else {
                int64_t ms = timeout_ns < 0 ? -1 : (timeout_ns + (int64_t)NSEC_PER_MSEC - 1) / (int64_t)NSEC_PER_MSEC;
                n = epoll_wait(p->fd, p->events, p->n_events, (int)MIN(ms, (int64_t)INT32_MAX));
        }
        e->stats.syscalls++;
        engine_update_now(e);
        if (n < 0)
                return -errno;

        for (int i = 0; i < n; i++) {
                uint64_t data = p->events[i].data.u64;
                EngineSource *s = engine_io_lookup(e, (int)(uint32_t)data);

                if (!s || s->io.generation != (uint32_t)(data >> 32))
                        continue;
                if (s->io.mode == ENGINE_ONESHOT)
                        s->io.kernel_armed = false;
                engine_source_ref(s);
                engine_io_event(e, s, p->events[i].events);
                /* A filtered oneshot event (mask changed under it) re-arms silently. */
                if (!s->dead && s->enabled && !s->io.kernel_armed)
                        (void)epoll_io_start(e, s);
                engine_source_unref(s);
        }

        /* A full array means more may be waiting: grow, like libev, to take them in one go. */
        if (n == p->n_events && p->n_events < EVENTS_MAX) {
                struct epoll_event *bigger = realloc(p->events, sizeof(*bigger) * (size_t)p->n_events * 2);
                if (bigger) {
                        p->events = bigger;
                        p->n_events *= 2;
                }
        }
        return 0;
}

const EngineBackendOps engine_backend_epoll = {
        .name = "epoll",
        .init = epoll_init,
        .done = epoll_done,
        .io_validate = NULL,
        .io_start = epoll_io_start,
        .io_update = epoll_io_start,
        .io_stop = epoll_io_stop,
        .wait = epoll_wait_and_dispatch,
};
