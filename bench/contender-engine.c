/* contender-engine.c - evd's own engine (daemon/engine.h), one contender per backend
 *
 * io: one ENGINE_EDGE source per pipe (multishot poll on io_uring, EPOLLET on epoll),
 * userdata holds the index, engine_run() until a callback calls engine_exit(). Edge mode
 * needs the callback to drain, which bench_pipes_readable() does for every contender.
 * timers: engine_add_timer_after() / source_free() / engine_run(); the engine allocates
 * its sources itself, which is part of what the timed phases measure. Our array of
 * handles is allocated once, like libev's ev_timer array.
 *
 * With -DBENCH_NO_ENGINE (engine not buildable yet) every engine contender reports itself
 * unavailable, so the others can still be run.
 */

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef BENCH_NO_ENGINE

#include "engine.h"

static Engine *engine;
static EngineSource **sources;
static size_t sources_n;

static int engine_setup_backend(EngineBackend backend, const char *name, const char **ret_why) {
        EngineOptions opts = { .backend = backend };
        int r;

        r = engine_new(&engine, &opts);
        if (r < 0) {
                *ret_why = "engine_new() refused this backend";
                return -EOPNOTSUPP;
        }
        if (strcmp(engine_backend_name(engine), name) != 0) {
                *ret_why = "engine_backend_name() is not the one asked for";
                return -EOPNOTSUPP;
        }
        return 0;
}

static int io_cb(EngineSource *s, int fd, uint32_t revents, void *userdata) {
        if (bench_pipes_readable((unsigned)(uintptr_t)userdata))
                engine_exit(engine, 0);
        return 0;
}

static int engine_io_setup(EngineBackend backend, const char *name, const char **ret_why) {
        int r;

        r = engine_setup_backend(backend, name, ret_why);
        if (r < 0)
                return r;
        sources = calloc(bench_pipes.n, sizeof(*sources));
        if (!sources)
                return -ENOMEM;
        for (unsigned i = 0; i < bench_pipes.n; i++) {
                r = engine_add_io(engine, &sources[i], bench_pipes.pipes[i].r, ENGINE_IN,
                                  ENGINE_EDGE, io_cb, (void *)(uintptr_t)i);
                if (r < 0)
                        return r;
                sources_n = i + 1;
        }
        return engine_step(engine, 0);
}

static int engine_io_setup_uring(const char **ret_why) {
        return engine_io_setup(ENGINE_BACKEND_IO_URING, "io_uring", ret_why);
}

static int engine_io_setup_epoll(const char **ret_why) {
        return engine_io_setup(ENGINE_BACKEND_EPOLL, "epoll", ret_why);
}

static int engine_io_run(void) {
        return engine_run(engine);
}

static int64_t engine_io_waits(void) {
        EngineStats st;

        engine_get_stats(engine, &st);
        return (int64_t)st.iterations;
}

static int64_t engine_io_syscalls(void) {
        EngineStats st;

        engine_get_stats(engine, &st);
        return (int64_t)st.syscalls;
}

static void engine_io_teardown(void) {
        for (size_t i = 0; i < sources_n; i++)
                sources[i] = source_free(sources[i]);
        sources_n = 0;
        free(sources);
        sources = NULL;
        engine = engine_free(engine);
}

const IoContender contender_engine_uring = {
        .name = "engine(io_uring)",
        .setup = engine_io_setup_uring,
        .run = engine_io_run,
        .waits = engine_io_waits,
        .syscalls = engine_io_syscalls,
        .teardown = engine_io_teardown,
};

const IoContender contender_engine_epoll = {
        .name = "engine(epoll)",
        .setup = engine_io_setup_epoll,
        .run = engine_io_run,
        .waits = engine_io_waits,
        .syscalls = engine_io_syscalls,
        .teardown = engine_io_teardown,
};

/* timers */

static EngineSource **timers;
static size_t timers_size;
static size_t timers_live;
static size_t fired, fire_target;

static int timer_cb(EngineSource *s, uint64_t expirations, void *userdata) {
        if (++fired == fire_target)
                engine_exit(engine, 0);
        return 0;
}

static int engine_timer_setup(EngineBackend backend, const char *name, size_t n,
                              const char **ret_why) {
        int r;

        if (timers_size < n) {
                free(timers);
                timers = calloc(n, sizeof(*timers));
                if (!timers)
                        return -ENOMEM;
                bench_prefault(timers, n * sizeof(*timers));
                timers_size = n;
        }
        r = engine_setup_backend(backend, name, ret_why);
        /* The counterpart of libev's watcher array, allocated and touched before the
         * clock starts: the engine's own source memory and heap room for n timers. */
        if (r >= 0)
                r = engine_reserve(engine, n, ENGINE_CLOCK_MONOTONIC);
        return r;
}

static int engine_timer_setup_uring(size_t n, const char **ret_why) {
        return engine_timer_setup(ENGINE_BACKEND_IO_URING, "io_uring", n, ret_why);
}

static int engine_timer_setup_epoll(size_t n, const char **ret_why) {
        return engine_timer_setup(ENGINE_BACKEND_EPOLL, "epoll", n, ret_why);
}

static int engine_timer_insert(size_t n, const uint64_t *after_ns, const double *after_s) {
        for (size_t i = 0; i < n; i++) {
                int r = engine_add_timer_after(engine, &timers[i], after_ns[i], 0, timer_cb,
                                               NULL);
                if (r < 0)
                        return r;
        }
        timers_live = n;
        return 0;
}

static int engine_timer_cancel(size_t n) {
        for (size_t i = 0; i < n; i++)
                timers[i] = source_free(timers[i]);
        timers_live = 0;
        return 0;
}

static int64_t engine_timer_run(size_t n) {
        int r;

        fired = 0;
        fire_target = n;
        r = engine_run(engine);
        return r < 0 ? r : (int64_t)fired;
}

static void engine_timer_release(size_t n) {
        (void)engine_timer_cancel(n);
}

static void engine_timer_now_update(void) {
        (void)engine_step(engine, 0);
}

static void engine_timer_teardown(void) {
        (void)engine_timer_cancel(timers_live);
        engine = engine_free(engine);
}

const TimerContender timer_engine_uring = {
        .name = "engine(io_uring)",
        .setup = engine_timer_setup_uring,
        .insert = engine_timer_insert,
        .cancel = engine_timer_cancel,
        .run = engine_timer_run,
        .release = engine_timer_release,
        .now_update = engine_timer_now_update,
        .teardown = engine_timer_teardown,
};

const TimerContender timer_engine_epoll = {
        .name = "engine(epoll)",
        .setup = engine_timer_setup_epoll,
        .insert = engine_timer_insert,
        .cancel = engine_timer_cancel,
        .run = engine_timer_run,
        .release = engine_timer_release,
        .now_update = engine_timer_now_update,
        .teardown = engine_timer_teardown,
};

int bench_engine_facts(char *buf, size_t size) {
        EngineOptions opts = { .backend = ENGINE_BACKEND_IO_URING };
        Engine *e = NULL;
        size_t len = 0;
        unsigned features;
        int r;

        r = engine_new(&e, &opts);
        if (r < 0) {
                (void)snprintf(buf, size, "io_uring backend unavailable (%s)", strerror(-r));
                return r;
        }
        features = engine_features(e);
        buf[0] = '\0';
        for (unsigned bit = 0; bit < _ENGINE_FEATURE_COUNT && len < size; bit++) {
                const char *name = engine_feature_name(1u << bit);

                if (!(features & (1u << bit)))
                        continue;
                len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? " " : "",
                                        name ? name : "?");
        }
        (void)engine_free(e);
        return 0;
}

#else /* BENCH_NO_ENGINE */

static int engine_io_setup_none(const char **ret_why) {
        *ret_why = "engine compiled out (BENCH_NO_ENGINE)";
        return -EOPNOTSUPP;
}

static int engine_timer_setup_none(size_t n, const char **ret_why) {
        return engine_io_setup_none(ret_why);
}

static void engine_teardown_none(void) {
}

const IoContender contender_engine_uring = {
        .name = "engine(io_uring)",
        .setup = engine_io_setup_none,
        .teardown = engine_teardown_none,
};

const IoContender contender_engine_epoll = {
        .name = "engine(epoll)",
        .setup = engine_io_setup_none,
        .teardown = engine_teardown_none,
};

const TimerContender timer_engine_uring = {
        .name = "engine(io_uring)",
        .setup = engine_timer_setup_none,
        .teardown = engine_teardown_none,
};

const TimerContender timer_engine_epoll = {
        .name = "engine(epoll)",
        .setup = engine_timer_setup_none,
        .teardown = engine_teardown_none,
};

int bench_engine_facts(char *buf, size_t size) {
        (void)snprintf(buf, size, "engine compiled out (BENCH_NO_ENGINE)");
        return -EOPNOTSUPP;
}

#endif
