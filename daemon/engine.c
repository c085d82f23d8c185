/* engine.c - the engine core: creation, backend choice and the loop
 *
 * The pieces: engine-source.c (memory, lifetime, enable/free), engine-io.c, engine-timer.c,
 * engine-signal.c, engine-defer.c; the backends engine-uring.c and engine-epoll.c; what they
 * share is engine-internal.h.
 *
 * The core owns every source and all policy; a backend (engine-uring.c, engine-epoll.c)
 * only turns "poll this fd for these events in this mode" into kernel requests and feeds
 * results back through engine_io_event(). Invariants:
 *  - fd_table[fd] is the one live io source on fd (so a second one is -EEXIST on both
 *    backends, and epoll events are looked up, never trusted as pointers).
 *  - A source's memory lives until its last reference: the user's (dropped by
 *    source_free()), a running callback's, and each io_uring poll still in the kernel.
 *  - An iteration is: wait (one syscall) -> io callbacks -> timers -> defers.
 */

#include "engine-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "macro.h"

static const char *const feature_names[_ENGINE_FEATURE_COUNT] = {
        "single-issuer", "defer-taskrun", "coop-taskrun", "taskrun-flag",
        "multishot-poll", "poll-update", "ext-arg", "nodrop",
        "cqe-skip", "registered-ring", "submit-all", "epoll-pwait2",
};

void engine_fail(Engine *e, int r) {
        if (e->failure == 0)
                e->failure = r;
}

void engine_update_now(Engine *e) {
        e->now[ENGINE_CLOCK_MONOTONIC] = monotonic_ns();
        e->now[ENGINE_CLOCK_REALTIME] = clock_ns(CLOCK_REALTIME);
}

/* ---- engine ------------------------------------------------------------------------ */

static int backend_from_env(EngineBackend *ret) {
        const char *v = getenv("EVD_BACKEND");

        if (!v || !*v || strcmp(v, "auto") == 0)
                *ret = ENGINE_BACKEND_AUTO;
        else if (strcmp(v, "io_uring") == 0 || strcmp(v, "io-uring") == 0 || strcmp(v, "uring") == 0)
                *ret = ENGINE_BACKEND_IO_URING;
        else if (strcmp(v, "epoll") == 0)
                *ret = ENGINE_BACKEND_EPOLL;
        else
                return -EINVAL;
        return 0;
}

static bool backend_unavailable(int r) {
        /* ENOSYS: no io_uring; EPERM: seccomp or kernel.io_uring_disabled; EOPNOTSUPP and
         * EINVAL: too old for what the backend needs; ENOMEM: locked-memory limits. */
        return r == -ENOSYS || r == -EPERM || r == -EACCES || r == -EOPNOTSUPP || r == -EINVAL ||
               r == -ENOMEM;
}

int engine_new(Engine **ret, const EngineOptions *opts) {
        static const EngineOptions defaults = { 0 };
        _cleanup_(engine_freep) Engine *e = NULL;
        EngineBackend backend;
        int r;

        if (!ret)
                return -EINVAL;
        if (!opts)
                opts = &defaults;
        backend = opts->backend;
        if ((unsigned)backend >= _ENGINE_BACKEND_MAX)
                return -EINVAL;
        if (backend == ENGINE_BACKEND_AUTO) {
                r = backend_from_env(&backend);
                if (r < 0)
                        return r;
        }

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->realtime_fd = -1;
        e->signal_fd = -1;
        engine_pool_init(e);
        sigemptyset(&e->signal_mask);
        e->timers[ENGINE_CLOCK_MONOTONIC] = TIMER_HEAP_NULL;
        e->timers[ENGINE_CLOCK_REALTIME] = TIMER_HEAP_NULL;
        engine_update_now(e);
        e->last_trim = e->now[ENGINE_CLOCK_MONOTONIC];

        if (backend != ENGINE_BACKEND_EPOLL) {
                e->backend = &engine_backend_uring;
                r = e->backend->init(e, opts);
                if (r >= 0)
                        goto done;
                e->backend = NULL;
                if (backend == ENGINE_BACKEND_IO_URING || !backend_unavailable(r))
                        return r;
                e->fallback_reason = r;
        }
        e->backend = &engine_backend_epoll;
        r = e->backend->init(e, opts);
        if (r < 0) {
                e->backend = NULL;
                return r;
        }
done:
        *ret = TAKE_PTR(e);
        return 0;
}

static void free_all_sources(Engine *e) {
        for (size_t fd = 0; fd < e->fd_table_size; fd++)
                if (e->fd_table[fd])
                        (void)source_free(e->fd_table[fd]);
        for (int c = 0; c < _ENGINE_CLOCK_MAX; c++)
                while (e->timers[c].n > 0)
                        (void)source_free(container_of(e->timers[c].nodes[0].item, EngineSource, timer.item));
        for (int sig = 0; sig < _NSIG; sig++)
                if (e->signal_sources[sig])
                        (void)source_free(e->signal_sources[sig]);
        while (e->defer_head)
                (void)source_free(e->defer_head);
}

Engine *engine_free(Engine *e) {
        if (!e)
                return NULL;
        free_all_sources(e);
        e->realtime_fd = safe_close(e->realtime_fd);
        e->signal_fd = safe_close(e->signal_fd);
        if (e->backend)
                e->backend->done(e); /* releases every source still held by the kernel */
        for (int c = 0; c < _ENGINE_CLOCK_MAX; c++)
                timer_heap_deinit(&e->timers[c]);
        free(e->fd_table);
        /* Disabled timers and defers, reachable only through the user's handles. */
        engine_pool_free(e);
        free(e);
        return NULL;
}

static int64_t next_timeout(Engine *e, int64_t timeout_ns) {
        uint64_t at;

        if (e->defer_again || e->failure || e->exit_requested)
                return 0;
        /* A monotonic deadline bounds the wait; wall-clock ones wake us via realtime_fd. */
        if (timer_heap_peek(&e->timers[ENGINE_CLOCK_MONOTONIC], &at)) {
                uint64_t now = monotonic_ns();

                if (at <= now)
                        return 0;
                if (at - now < (uint64_t)INT64_MAX && (timeout_ns < 0 || (int64_t)(at - now) < timeout_ns))
                        timeout_ns = (int64_t)(at - now);
        }
        return timeout_ns;
}

int engine_step(Engine *e, int64_t timeout_ns) {
        int r;

        if (!e)
                return -EINVAL;
        if (e->realtime_dirty) {
                r = engine_realtime_rearm(e);
                if (r < 0)
                        return r;
        }
        timeout_ns = next_timeout(e, timeout_ns);
        e->defer_again = false;
        r = e->backend->wait(e, timeout_ns);
        if (r < 0 && r != -EINTR)
                return r;
        /* io callbacks may have taken a while: timers are judged by the clock as it is. */
        engine_update_now(e);
        engine_run_timers(e, ENGINE_CLOCK_MONOTONIC);
        engine_run_timers(e, ENGINE_CLOCK_REALTIME);
        engine_run_defers(e);
        e->stats.iterations++;
        /* Once a second, give back heap memory left over from a burst of timers. */
        if (e->now[ENGINE_CLOCK_MONOTONIC] - e->last_trim >= NSEC_PER_SEC) {
                e->last_trim = e->now[ENGINE_CLOCK_MONOTONIC];
                for (int c = 0; c < _ENGINE_CLOCK_MAX; c++)
                        timer_heap_trim(&e->timers[c]);
        }
        return e->failure;
}

int engine_run(Engine *e) {
        int r = 0;

        if (!e)
                return -EINVAL;
        while (!e->exit_requested && r >= 0)
                r = engine_step(e, -1);
        e->exit_requested = false;
        if (r < 0) {
                e->failure = 0;
                return r;
        }
        return e->exit_code;
}

void engine_exit(Engine *e, int code) {
        if (!e)
                return;
        e->exit_requested = true;
        e->exit_code = code;
}

uint64_t engine_now(Engine *e, EngineClock clock) {
        if (!e || (unsigned)clock >= _ENGINE_CLOCK_MAX)
                return 0;
        return e->now[clock];
}

void engine_get_stats(Engine *e, EngineStats *ret) {
        *ret = e->stats;
}

const char *engine_backend_name(Engine *e) {
        return e && e->backend ? e->backend->name : NULL;
}

int engine_fallback_reason(Engine *e) {
        return e ? e->fallback_reason : 0;
}

unsigned engine_features(Engine *e) {
        return e ? e->features : 0;
}

const char *engine_feature_name(unsigned feature_bit) {
        for (unsigned i = 0; i < _ENGINE_FEATURE_COUNT; i++)
                if (feature_bit == 1u << i)
                        return feature_names[i];
        return NULL;
}
