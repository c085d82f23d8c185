/* contender-engine.c - evd's own engine (daemon/engine.h), one contender per backend
 *
 * io: one ENGINE_EDGE source per pipe (multishot poll on io_uring, EPOLLET on epoll),
 * userdata holds the index, engine_run() until a callback calls engine_exit(). Edge mode
 * needs the callback to drain, which bench_pipes_readable() does for every contender.
 * timers: engine_init_timer() in an array of EngineTimerMem allocated once, as libev's
 * ev_timer array is (what the daemon does: its ClientTimer holds the source), then
 * source_free() / engine_run(). engine(pool) is engine_add_timer(): the engine takes each
 * source from its pool and gives it back at source_free(), and the caller keeps a handle.
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

/* One of these is used, as the contender says: caller memory, or pooled sources behind
 * handles. */
static EngineTimerMem *timer_mem;
static EngineSource **timer_handles;
static size_t timers_size;
static size_t timers_live;
static size_t fired, fire_target;
static bool timers_pooled;

static int timer_cb(EngineSource *s, uint64_t expirations, void *userdata) {
        if (++fired == fire_target)
                engine_exit(engine, 0);
        return 0;
}

static void timer_arrays_free(void) {
        free(timer_mem);
        timer_mem = NULL;
        free(timer_handles);
        timer_handles = NULL;
        timers_size = 0;
}

/* The counterpart of libev's watcher array, allocated and touched before the clock
 * starts, and, for the pool, the engine's source memory and heap room for n timers. */
static int engine_timer_setup(EngineBackend backend, const char *name, bool pooled, size_t n,
                              const char **ret_why) {
        int r;

        timer_arrays_free();
        timers_pooled = pooled;
        if (pooled) {
                timer_handles = calloc(n, sizeof(*timer_handles));
                if (!timer_handles)
                        return -ENOMEM;
                bench_prefault(timer_handles, n * sizeof(*timer_handles));
        } else {
                if (posix_memalign((void **)&timer_mem, _Alignof(EngineTimerMem), n * sizeof(*timer_mem)) != 0)
                        return -ENOMEM;
                bench_prefault(timer_mem, n * sizeof(*timer_mem));
        }
        timers_size = n;
        r = engine_setup_backend(backend, name, ret_why);
        /* Heap room for both; pool room too, which caller memory leaves unused. */
        if (r >= 0)
                r = engine_reserve(engine, n, ENGINE_CLOCK_MONOTONIC);
        return r;
}

static int engine_timer_setup_uring(size_t n, const char **ret_why) {
        return engine_timer_setup(ENGINE_BACKEND_IO_URING, "io_uring", false, n, ret_why);
}

static int engine_timer_setup_epoll(size_t n, const char **ret_why) {
        return engine_timer_setup(ENGINE_BACKEND_EPOLL, "epoll", false, n, ret_why);
}

static int engine_timer_setup_pool(size_t n, const char **ret_why) {
        return engine_timer_setup(ENGINE_BACKEND_IO_URING, "io_uring", true, n, ret_why);
}

static int engine_timer_insert(size_t n, const uint64_t *after_ns, const double *after_s) {
        uint64_t now = engine_now(engine, ENGINE_CLOCK_MONOTONIC);

        for (size_t i = 0; i < n; i++) {
                int r = timers_pooled
                                ? engine_add_timer_after(engine, &timer_handles[i], after_ns[i], 0,
                                                         timer_cb, NULL)
                                : engine_init_timer(engine, &timer_mem[i], NULL, ENGINE_CLOCK_MONOTONIC,
                                                    now + after_ns[i], 0, timer_cb, NULL);
                if (r < 0)
                        return r;
        }
        timers_live = n;
        return 0;
}

static int engine_timer_cancel(size_t n) {
        for (size_t i = 0; i < n; i++)
                if (timers_pooled)
                        timer_handles[i] = source_free(timer_handles[i]);
                else
                        (void)source_free(engine_timer_source(&timer_mem[i]));
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
        timer_arrays_free();
}

#define ENGINE_TIMER_CONTENDER(contender_name, label, setup_fn)                                \
        {                                                                                      \
                .name = contender_name, .ratio_label = label, .setup = setup_fn, .insert = engine_timer_insert,      \
                .cancel = engine_timer_cancel, .run = engine_timer_run,                        \
                .release = engine_timer_release, .now_update = engine_timer_now_update,        \
                .teardown = engine_timer_teardown,                                             \
        }

const TimerContender timer_engine_uring = ENGINE_TIMER_CONTENDER("engine(io_uring)", "uring/ev", engine_timer_setup_uring);
const TimerContender timer_engine_epoll = ENGINE_TIMER_CONTENDER("engine(epoll)", "epoll/ev", engine_timer_setup_epoll);
const TimerContender timer_engine_pool = ENGINE_TIMER_CONTENDER("engine(pool)", "pool/ev", engine_timer_setup_pool);

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

const TimerContender timer_engine_pool = {
        .name = "engine(pool)",
        .setup = engine_timer_setup_none,
        .teardown = engine_teardown_none,
};

int bench_engine_facts(char *buf, size_t size) {
        (void)snprintf(buf, size, "engine compiled out (BENCH_NO_ENGINE)");
        return -EOPNOTSUPP;
}

#endif
