#pragma once
/* engine.h - the poll/timer event engine: io, timers, signals and deferred callbacks */

/*
 * One Engine per thread. Two backends with identical semantics: io_uring (multishot poll,
 * batched submission, EXT_ARG timeouts) and epoll (EPOLLET / EPOLLONESHOT).
 *
 * Sources are created with engine_add_*() and freed with source_free() at any moment,
 * including from inside their own callback or another callback of the same batch: a freed
 * source never runs again, and no event meant for it reaches a newer source on the same fd.
 *
 * Callbacks return >= 0 to continue; a negative return stops engine_run(), which then
 * returns that value.
 *
 * Draining is the callback's job: an edge source calls back once per readiness wakeup and
 * does not call back again for data it left unread (read to EAGAIN); a oneshot source calls
 * back once and stays quiet until source_io_arm(). The engine never spins on a level that a
 * callback did not consume. The engine drains only its own internal fds (signalfd, timerfd).
 * Spurious callbacks are possible and harmless to a callback that drains: on io_uring, when
 * the kernel ends a multishot poll for lack of CQ space, the re-armed poll reports the
 * current level once more (at most one extra callback per source and overflow), and a ring
 * resize re-arms every poll the same way.
 *
 * Ownership: io sources borrow their fd: the caller keeps it open while the source exists
 * and closes it after source_free(). Closing it first is a caller bug that the engine
 * survives (freeing the source stays safe), but which backend then still reports events
 * for the old file differs (io_uring's poll holds a file reference; epoll drops it).
 */

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/signalfd.h>

typedef struct Engine Engine;
typedef struct EngineSource EngineSource;

/* Room for one timer source inside a struct of the caller's (engine_init_timer()), so that
 * a timer costs neither an allocation nor a handle to follow. Opaque: only the engine reads
 * or writes it, as the EngineSource it is (the same size and alignment). */
typedef struct EngineTimerMem {
        _Alignas(64) unsigned char opaque[64];
} EngineTimerMem;

/* Event bits: the poll(2) values, so both backends pass them through unchanged. */
enum {
        ENGINE_IN = 0x001,     /* POLLIN */
        ENGINE_PRI = 0x002,    /* POLLPRI */
        ENGINE_OUT = 0x004,    /* POLLOUT */
        ENGINE_ERR = 0x008,    /* POLLERR, always reported */
        ENGINE_HUP = 0x010,    /* POLLHUP, always reported */
        ENGINE_NVAL = 0x020,   /* POLLNVAL: the kernel refused to keep polling; now disarmed */
        ENGINE_RDHUP = 0x2000, /* POLLRDHUP */
};
#define ENGINE_EVENTS_REQUESTABLE (ENGINE_IN | ENGINE_PRI | ENGINE_OUT | ENGINE_RDHUP)

typedef enum EngineMode {
        ENGINE_ONESHOT, /* one callback, then disarmed until source_io_arm() */
        ENGINE_EDGE,    /* a callback per readiness wakeup, armed until freed */
        _ENGINE_MODE_MAX,
} EngineMode;

typedef enum EngineClock {
        ENGINE_CLOCK_MONOTONIC, /* relative timers: never jump */
        ENGINE_CLOCK_REALTIME,  /* wall-clock deadlines: follow clock steps, like ev_periodic */
        _ENGINE_CLOCK_MAX,
} EngineClock;

typedef enum EngineBackend {
        ENGINE_BACKEND_AUTO, /* $EVD_BACKEND if set, else io_uring, else epoll */
        ENGINE_BACKEND_IO_URING,
        ENGINE_BACKEND_EPOLL,
        _ENGINE_BACKEND_MAX,
} EngineBackend;

/* Probed at engine_new(); engine_feature_name() names each bit. */
enum {
        ENGINE_FEATURE_SINGLE_ISSUER = 1u << 0,
        ENGINE_FEATURE_DEFER_TASKRUN = 1u << 1,
        ENGINE_FEATURE_COOP_TASKRUN = 1u << 2,
        ENGINE_FEATURE_TASKRUN_FLAG = 1u << 3,
        ENGINE_FEATURE_POLL_MULTISHOT = 1u << 4,
        ENGINE_FEATURE_POLL_UPDATE = 1u << 5,
        ENGINE_FEATURE_EXT_ARG = 1u << 6,
        ENGINE_FEATURE_NODROP = 1u << 7,
        ENGINE_FEATURE_CQE_SKIP = 1u << 8,
        ENGINE_FEATURE_REGISTERED_RING = 1u << 9,
        ENGINE_FEATURE_SUBMIT_ALL = 1u << 10,
        ENGINE_FEATURE_EPOLL_PWAIT2 = 1u << 11,
        _ENGINE_FEATURE_COUNT = 12,
};

typedef struct EngineOptions {
        EngineBackend backend;
        /* io_uring only; 0 picks the default. Entries are rounded up to powers of two. */
        unsigned sq_entries;
        unsigned cq_entries;
        bool fixed_ring;          /* never grow the ring (tests use it to force CQ overflow) */
        /* ENGINE_FEATURE_* bits to act as if the kernel lacked (tests force fallbacks).
         * io_uring requires POLL_MULTISHOT and NODROP: without either, an explicit
         * ENGINE_BACKEND_IO_URING fails with -EOPNOTSUPP and AUTO picks epoll. */
        unsigned disable_features;
} EngineOptions;

typedef struct EngineStats {
        uint64_t iterations;
        uint64_t events;      /* io callbacks invoked */
        uint64_t timers;      /* timer callbacks invoked */
        uint64_t submissions; /* SQEs submitted (io_uring) or epoll_ctl calls (epoll) */
        uint64_t syscalls;    /* io_uring_enter / epoll_wait / epoll_ctl calls made by the engine */
        uint64_t overflows;   /* io_uring CQ overflow episodes survived without losing events */
        uint64_t ring_resizes;
        uint64_t sq_full;     /* times the SQ filled up and was flushed early */
        uint64_t poll_updates;   /* io_uring: events changes applied as a poll update */
        uint64_t cancel_retries; /* io_uring: cancels the kernel refused for now (-EALREADY) */
        uint32_t io_sources;
        uint32_t timer_sources;
        uint32_t sq_entries;
        uint32_t cq_entries;
} EngineStats;

typedef int (*engine_io_cb)(EngineSource *s, int fd, uint32_t revents, void *userdata);
/* expirations >= 1: periods elapsed (a repeating timer that was held up reports the missed
 * ones here instead of being called several times). */
typedef int (*engine_timer_cb)(EngineSource *s, uint64_t expirations, void *userdata);
typedef int (*engine_signal_cb)(EngineSource *s, const struct signalfd_siginfo *si, void *userdata);
typedef int (*engine_defer_cb)(EngineSource *s, void *userdata);

#define NSEC_PER_SEC UINT64_C(1000000000)
#define NSEC_PER_MSEC UINT64_C(1000000)
#define NSEC_PER_USEC UINT64_C(1000)

/** engine_new() - create an engine. @opts may be NULL. Return: 0 or -errno. */
int engine_new(Engine **ret, const EngineOptions *opts);
/** engine_free() - free every source still attached and the engine; signals are unblocked
 * as by source_free(). NULL-safe; returns NULL. */
Engine *engine_free(Engine *e);

/** engine_run() - run until engine_exit() or a callback fails.
 * Return: the engine_exit() code, or the negative value a callback or the backend returned. */
int engine_run(Engine *e);
/** engine_step() - one iteration: wait at most @timeout_ns (-1: no limit, 0: poll), dispatch.
 * Return: 0, or negative as engine_run(). */
int engine_step(Engine *e, int64_t timeout_ns);
/** engine_exit() - make engine_run() return @code after the current iteration. */
void engine_exit(Engine *e, int code);

/** engine_now() - the cached time, in ns: taken when the wait returns (io callbacks see
 * that) and again before timers run (timer and defer callbacks see that). */
uint64_t engine_now(Engine *e, EngineClock clock);
void engine_get_stats(Engine *e, EngineStats *ret);
const char *engine_backend_name(Engine *e);
unsigned engine_features(Engine *e);
/** engine_fallback_reason() - with ENGINE_BACKEND_AUTO, why io_uring was not used
 * (-ENOSYS, -EPERM, -EOPNOTSUPP, ...), or 0. */
int engine_fallback_reason(Engine *e);
/** engine_feature_name() - a bit's name ("multishot-poll", ...), NULL for unknown bits. */
const char *engine_feature_name(unsigned feature_bit);

/** engine_add_io() - watch @fd (borrowed) for @events in @mode.
 * Return: 0; -EEXIST if @fd already has a source; -EPERM if the fd cannot be polled (regular
 * files, directories, some devices); -EBADF; -EINVAL for bad events/mode; -ENOMEM. */
int engine_add_io(Engine *e, EngineSource **ret, int fd, uint32_t events, EngineMode mode,
                  engine_io_cb cb, void *userdata);
/** engine_adopt_io() - engine_add_io() for an fd an engine of this process's previous
 * image accepted (a re-exec keeps the file): without the type check, which costs the
 * io_uring backend two epoll_ctl() calls per fd, most of a 10,000-watch restore. An fd
 * that cannot be polled is then reported ready (once per arm), never spun on. */
int engine_adopt_io(Engine *e, EngineSource **ret, int fd, uint32_t events, EngineMode mode,
                    engine_io_cb cb, void *userdata);
/** source_io_modify() - change events and mode of a live io source; an armed source stays
 * armed (poll update on io_uring, EPOLL_CTL_MOD on epoll), a disarmed oneshot stays disarmed. */
int source_io_modify(EngineSource *s, uint32_t events, EngineMode mode);
/** source_io_arm() - re-arm a oneshot source (fires at once if still ready). No-op if armed. */
int source_io_arm(EngineSource *s);
bool source_io_is_armed(EngineSource *s);
int source_get_fd(EngineSource *s);

/** engine_reserve() - make room for @n more sources (typically timers on @clock) now:
 * source memory and timer heap capacity are allocated and touched here, so that adding
 * them later neither allocates nor faults pages in (what a daemon about to create many
 * timers, or a benchmark, wants). The heap room stays reserved (the once-a-second trim
 * keeps it) until engine_reserve(e, 0, clock). Return: 0 or -ENOMEM. */
int engine_reserve(Engine *e, size_t n, EngineClock clock);

/** engine_add_timer() - a timer at absolute @at_ns on @clock, repeating every @interval_ns
 * (0: once). Repeats are scheduled from the planned deadline, so they never drift.
 * A fired one-shot timer stays allocated and disabled until source_timer_set() or freed. */
int engine_add_timer(Engine *e, EngineSource **ret, EngineClock clock, uint64_t at_ns,
                     uint64_t interval_ns, engine_timer_cb cb, void *userdata);
/** engine_init_timer() - engine_add_timer() in memory the caller owns: the source is @mem,
 * also returned in *@ret. @mem must stay where it is, and be left alone, until
 * source_free(); once that returns the memory is the caller's again, even inside the
 * timer's own callback (the engine does not look at a freed timer again). engine_free()
 * detaches a timer still in @mem; the caller then just releases the memory.
 * Return: 0, -EINVAL or -ENOMEM (heap room). */
int engine_init_timer(Engine *e, EngineTimerMem *mem, EngineSource **ret, EngineClock clock,
                      uint64_t at_ns, uint64_t interval_ns, engine_timer_cb cb, void *userdata);
/** engine_timer_mem() - the memory a source of engine_init_timer() lives in. */
static inline EngineTimerMem *engine_timer_mem(EngineSource *s) {
        return (EngineTimerMem *)(void *)s;
}
/** engine_timer_source() - the source engine_init_timer() made in @mem (its inverse). */
static inline EngineSource *engine_timer_source(EngineTimerMem *mem) {
        return (EngineSource *)(void *)mem;
}
/** engine_add_timer_after() - a monotonic timer @after_ns from engine_now(). */
int engine_add_timer_after(Engine *e, EngineSource **ret, uint64_t after_ns, uint64_t interval_ns,
                           engine_timer_cb cb, void *userdata);
/** source_timer_set() - reschedule (and enable) a timer. */
int source_timer_set(EngineSource *s, uint64_t at_ns, uint64_t interval_ns);
/** source_timer_get_at() - the deadline; inside the callback, the one being fired. */
uint64_t source_timer_get_at(EngineSource *s);
uint64_t source_timer_get_interval(EngineSource *s);
/** source_timer_get_clock() - the clock the timer's deadlines are on. */
EngineClock source_timer_get_clock(EngineSource *s);

/** engine_add_signal() - deliver @signo through a signalfd; blocks it with sigprocmask()
 * while the source exists (the engine's thread must be the only one, or all threads must
 * block it). Return: -EEXIST if @signo already has a source. */
int engine_add_signal(Engine *e, EngineSource **ret, int signo, engine_signal_cb cb, void *userdata);

/** engine_add_defer() - a callback that runs once per iteration, after io and timers, while
 * enabled (created enabled). One enabled while defers run runs in the next iteration, and
 * the loop does not block before it. */
int engine_add_defer(Engine *e, EngineSource **ret, engine_defer_cb cb, void *userdata);

/** source_set_enabled() - defer: run or not; timer: disabled timers do not fire (enable
 * reschedules at the stored deadline); io: disarm or arm. */
int source_set_enabled(EngineSource *s, bool enabled);
bool source_get_enabled(EngineSource *s);
void *source_get_userdata(EngineSource *s);
void source_set_userdata(EngineSource *s, void *userdata);
Engine *source_get_engine(EngineSource *s);

/** source_free() - detach and free; safe inside any callback. NULL-safe; returns NULL. */
EngineSource *source_free(EngineSource *s);

static inline void engine_freep(Engine **e) {
        if (*e)
                (void)engine_free(*e);
}
static inline void source_freep(EngineSource **s) {
        if (*s)
                (void)source_free(*s);
}
