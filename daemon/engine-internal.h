#pragma once
/* engine-internal.h - what the engine's pieces (engine*.c) and its two backends share */

#include "engine.h"
#include "timer-heap.h"

#include <stddef.h>

typedef enum SourceType {
        SOURCE_IO,
        SOURCE_TIMER,
        SOURCE_SIGNAL,
        SOURCE_DEFER,
        _SOURCE_TYPE_MAX,
} SourceType;

/*
 * Aligned to 64 (the size it has anyway) so that io_uring's user_data has 6 free low bits:
 * a 4-bit poll generation and a 2-bit request kind (engine-uring.c).
 *
 * Lifetime: `refs` counts the user's handle (until source_free()), each io_uring request
 * still in the kernel (a poll until its last CQE, a cancel or update until its CQE), each
 * queue the source waits in, and a running callback. Memory is released at zero, so a CQE,
 * or the rest of a batch, may still look at a source the user already freed: `dead` tells
 * them to drop it.
 */
struct __attribute__((aligned(64))) EngineSource {
        Engine *engine;
        void *userdata;
        uint16_t refs;
        uint8_t type;
        bool dead;
        bool enabled;
        bool caller_memory; /* engine_init_timer(): never released to the pool or free() */
        union {
                struct {
                        engine_io_cb cb;
                        int fd;
                        uint32_t events;
                        uint32_t generation; /* epoll: tells a stale event from a reused fd */
                        uint8_t mode;
                        /* io_uring: each poll request carries a 4-bit generation in the low
                         * bits of user_data; bit g of poll_mask is set while the poll of
                         * generation g is live (each holds a ref). Only the current one
                         * (poll_gen, unless superseded) may report: a superseded poll's late
                         * CQE is dropped. cancel_mask: generations with a cancel in flight. */
                        uint8_t poll_gen;
                        uint16_t poll_mask;
                        uint16_t cancel_mask;
                        uint16_t kernel_events; /* io_uring: the mask the current poll has */
                        uint8_t ctl_inflight;   /* io_uring: cancels + updates in the kernel */
                        bool registered : 1;    /* epoll: in the interest list */
                        bool kernel_armed : 1;  /* epoll: not spent by EPOLLONESHOT; io_uring: multishot */
                        bool rearm_queued : 1;  /* io_uring: waiting in the re-arm queue */
                        bool sync_queued : 1;   /* io_uring: waiting for the next submission */
                        bool superseded : 1;    /* io_uring: no live poll may report any more */
                } io;
                struct {
                        engine_timer_cb cb;
                        uint64_t at;
                        uint64_t interval;
                        TimerHeapItem item;
                        uint8_t clock;
                } timer;
                struct {
                        engine_signal_cb cb;
                        int signo;
                } signal;
                struct {
                        engine_defer_cb cb;
                        EngineSource *prev, *next;
                        uint32_t phase; /* last defer phase that ran (or enabled) it */
                } defer;
        };
};

_Static_assert(sizeof(EngineSource) == sizeof(EngineTimerMem) &&
                       _Alignof(EngineSource) == _Alignof(EngineTimerMem),
               "EngineTimerMem holds exactly one source");

typedef struct EngineBackendOps {
        const char *name;
        /* Return -ENOSYS/-EPERM/-EOPNOTSUPP when the backend is unavailable here. */
        int (*init)(Engine *e, const EngineOptions *opts);
        void (*done)(Engine *e);
        /* Refuse fds this backend would mis-handle (NULL: io_start finds out). */
        int (*io_validate)(Engine *e, int fd);
        /* Start polling s->io.events in s->io.mode (s->enabled is true). */
        int (*io_start)(Engine *e, EngineSource *s);
        /* Events or mode changed on an armed source. */
        int (*io_update)(Engine *e, EngineSource *s);
        /* Stop polling; the source is being disarmed or freed. */
        void (*io_stop)(Engine *e, EngineSource *s);
        /* Submit pending work, wait at most timeout_ns (-1: forever), dispatch io events
         * through engine_io_event(). Returns 0 or -errno. */
        int (*wait)(Engine *e, int64_t timeout_ns);
} EngineBackendOps;

extern const EngineBackendOps engine_backend_epoll;
extern const EngineBackendOps engine_backend_uring;

typedef struct SourcePoolChunk SourcePoolChunk;

struct Engine {
        const EngineBackendOps *backend;
        void *backend_data;
        unsigned features;
        int exit_code;
        bool exit_requested;
        bool in_defer_phase;
        bool defer_again; /* a defer was enabled while defers ran: do not block */
        bool realtime_dirty; /* the wall-clock heap's top changed: re-arm realtime_fd */
        uint32_t defer_phase;
        int failure;      /* first negative callback return */
        int fallback_reason; /* why AUTO did not get io_uring (-errno), or 0 */

        uint64_t now[_ENGINE_CLOCK_MAX];
        EngineStats stats;

        /* fd -> io source, for -EEXIST and epoll's event lookup */
        EngineSource **fd_table;
        size_t fd_table_size;
        uint32_t next_generation;

        TimerHeap timers[_ENGINE_CLOCK_MAX];
        /* The timer whose callback runs, until that callback frees, disables or reschedules
         * it: then the timer phase does not touch it again (its memory may be gone). */
        EngineSource *firing_timer;
        uint64_t last_trim;
        /* Wakes the loop at the earliest wall-clock deadline, and on clock steps. */
        int realtime_fd;
        EngineSource *realtime_source;
        uint64_t realtime_armed_at;

        int signal_fd;
        EngineSource *signal_source;
        sigset_t signal_mask;
        EngineSource *signal_sources[_NSIG];

        EngineSource *defer_head, *defer_tail;

        /* Free list of source structs: timers by the million must not pay malloc each.
         * Without the pool (sanitizers, valgrind) each source is malloc()ed behind a link
         * in `malloced`, so that engine_free() can release those the user still holds
         * (disabled timers and defers are reachable from nowhere else). */
        bool pool_enabled;
        size_t pool_free;
        struct SourceLink *malloced;
        EngineSource *free_sources;
        SourcePoolChunk *chunks;
};

/** engine_fail() - remember the first negative callback return: engine_step() returns it. */
void engine_fail(Engine *e, int r);
/** engine_io_event() - a backend saw @revents for @s. Filters, disarms oneshot sources and
 * runs the callback. The caller holds a reference on @s across the call. Inline: it is
 * the step every event takes, between a backend's loop and the callback. */
static inline void engine_io_event(Engine *e, EngineSource *s, uint32_t revents) {
        int r;

        if (s->dead || !s->enabled)
                return;
        /* A poll update may race a completion: never report what is no longer asked for. */
        revents &= s->io.events | ENGINE_ERR | ENGINE_HUP | ENGINE_NVAL;
        if (revents == 0)
                return;
        if (s->io.mode == ENGINE_ONESHOT)
                s->enabled = false;
        e->stats.events++;
        r = s->io.cb(s, s->io.fd, revents, s->userdata);
        if (r < 0)
                engine_fail(e, r);
}
/** engine_update_now() - backends call this right after their wait returns. */
void engine_update_now(Engine *e);
/** engine_source_unref() - drop a reference (backends: a finished in-flight poll). */
void engine_source_unref(EngineSource *s);
static inline void engine_source_ref(EngineSource *s) {
        s->refs++;
}
/** engine_io_lookup() - the live io source registered on @fd, or NULL. */
static inline EngineSource *engine_io_lookup(Engine *e, int fd) {
        if (fd < 0 || (size_t)fd >= e->fd_table_size)
                return NULL;
        return e->fd_table[fd];
}
/** engine_for_each_io() - call @fn on every live io source (ring migration). */
void engine_for_each_io(Engine *e, void (*fn)(Engine *e, EngineSource *s, void *data), void *data);
/** engine_for_each_allocated_io() - also the freed ones whose memory still waits for a
 * backend's last reference. @fn may release the source it is given, nothing else. */
void engine_for_each_allocated_io(Engine *e, void (*fn)(Engine *e, EngineSource *s, void *data), void *data);

/* Between the engine's own pieces (engine.c and its engine-<kind>.c files), not backends. */

/** engine_pool_init() - choose pool or malloc() for sources (malloc under sanitizers). */
void engine_pool_init(Engine *e);
/** engine_pool_free() - release the pool's chunks and the malloc()ed sources still held. */
void engine_pool_free(Engine *e);
/** engine_source_alloc() - a zeroed source of @type holding the user's reference. */
EngineSource *engine_source_alloc(Engine *e, SourceType type);
/** engine_timer_queue() - (re)queue a timer at s->timer.at. Return: 0 or -ENOMEM. */
int engine_timer_queue(Engine *e, EngineSource *s);
/* Inline, as the heap's own insert is: cancelling is what a burst of timers pays per timer. */
/** engine_timer_touch() - the heap of @s changed: a wall-clock one re-arms the timerfd. */
static inline void engine_timer_touch(Engine *e, EngineSource *s) {
        if (s->timer.clock == ENGINE_CLOCK_REALTIME)
                e->realtime_dirty = true;
}
static inline void engine_timer_unqueue(Engine *e, EngineSource *s) {
        if (timer_heap_item_queued(&s->timer.item)) {
                timer_heap_remove(&e->timers[s->timer.clock], &s->timer.item);
                engine_timer_touch(e, s);
        }
}
/** engine_timer_settled() - a callback freed, disabled or rescheduled its own timer: the
 * timer phase must not reschedule it (or touch it) after the callback. */
static inline void engine_timer_settled(Engine *e, EngineSource *s) {
        if (e->firing_timer == s)
                e->firing_timer = NULL;
}
/** engine_realtime_rearm() - point the wall-clock timerfd at the earliest deadline. */
int engine_realtime_rearm(Engine *e);
/** engine_run_timers() - the timer phase of one clock. */
void engine_run_timers(Engine *e, EngineClock clock);
/** engine_signal_detach() - forget a signal source's signal and unblock it. */
void engine_signal_detach(Engine *e, EngineSource *s);
void engine_defer_enable(Engine *e, EngineSource *s);
void engine_defer_unlink(Engine *e, EngineSource *s);
/** engine_run_defers() - the defer phase: each enabled defer once. */
void engine_run_defers(Engine *e);
