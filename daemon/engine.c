/* engine.c - the engine core: sources, timers, signals, defers and the loop
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

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"

#define SOURCE_POOL_CHUNK 1024

struct SourcePoolChunk {
        SourcePoolChunk *next;
        EngineSource sources[SOURCE_POOL_CHUNK];
};

/* As aligned as a source, so that the source behind it is too. */
typedef struct __attribute__((aligned(64))) SourceLink {
        struct SourceLink *prev, *next;
} SourceLink;

static const char *const feature_names[_ENGINE_FEATURE_COUNT] = {
        "single-issuer", "defer-taskrun", "coop-taskrun", "taskrun-flag",
        "multishot-poll", "poll-update", "ext-arg", "nodrop",
        "cqe-skip", "registered-ring", "submit-all", "epoll-pwait2",
};

/* ASan and valgrind catch use-after-free only in memory that really is freed. */
#if defined(__SANITIZE_ADDRESS__)
#define SOURCE_POOL_ENABLED 0
#else
#define SOURCE_POOL_ENABLED 1
#endif

/* A chunk's sources go on the free list; writing each one's link touches every page, so
 * the chunk is faulted in here, once, not source by source later. */
static int pool_grow(Engine *e) {
        SourcePoolChunk *c;

        if (posix_memalign((void **)&c, _Alignof(SourcePoolChunk), sizeof(*c)) != 0)
                return -ENOMEM;
        memset(c, 0, sizeof(*c));
        c->next = e->chunks;
        e->chunks = c;
        for (size_t i = SOURCE_POOL_CHUNK; i-- > 0;) {
                c->sources[i].userdata = e->free_sources;
                e->free_sources = &c->sources[i];
        }
        e->pool_free += SOURCE_POOL_CHUNK;
        return 0;
}

int engine_reserve(Engine *e, size_t n, EngineClock clock) {
        int r;

        if (!e || (unsigned)clock >= _ENGINE_CLOCK_MAX || n > UINT32_MAX)
                return -EINVAL;
        while (e->pool_enabled && e->pool_free < n) {
                r = pool_grow(e);
                if (r < 0)
                        return r;
        }
        return timer_heap_reserve(&e->timers[clock], (uint32_t)n);
}

static EngineSource *source_alloc(Engine *e, SourceType type) {
        EngineSource *s;

        if (!e->pool_enabled) {
                SourceLink *l;

                if (posix_memalign((void **)&l, _Alignof(SourceLink), sizeof(SourceLink) + sizeof(*s)) != 0)
                        return NULL;
                l->prev = NULL;
                l->next = e->malloced;
                if (l->next)
                        l->next->prev = l;
                e->malloced = l;
                s = (EngineSource *)(l + 1);
        } else {
                if (!e->free_sources && pool_grow(e) < 0)
                        return NULL;
                s = e->free_sources;
                e->free_sources = s->userdata;
                e->pool_free--;
        }
        memset(s, 0, sizeof(*s));
        s->engine = e;
        s->type = type;
        s->refs = 1;
        return s;
}

static void source_release(EngineSource *s) {
        Engine *e = s->engine;

        if (e->pool_enabled) {
                s->userdata = e->free_sources;
                e->free_sources = s;
                e->pool_free++;
        } else {
                SourceLink *l = (SourceLink *)s - 1;
                if (l->prev)
                        l->prev->next = l->next;
                else
                        e->malloced = l->next;
                if (l->next)
                        l->next->prev = l->prev;
                free(l);
        }
}

void engine_source_unref(EngineSource *s) {
        assert(s->refs > 0);
        if (--s->refs == 0)
                source_release(s);
}

static void engine_fail(Engine *e, int r) {
        if (e->failure == 0)
                e->failure = r;
}

void engine_update_now(Engine *e) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        e->now[ENGINE_CLOCK_MONOTONIC] = (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        e->now[ENGINE_CLOCK_REALTIME] = (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* ---- io ---------------------------------------------------------------------------- */

static int fd_table_reserve(Engine *e, int fd) {
        size_t size;
        EngineSource **t;

        if ((size_t)fd < e->fd_table_size)
                return 0;
        size = MAX(MAX((size_t)fd + 1, e->fd_table_size * 2), (size_t)64);
        t = realloc(e->fd_table, size * sizeof(*t));
        if (!t)
                return -ENOMEM;
        memset(t + e->fd_table_size, 0, (size - e->fd_table_size) * sizeof(*t));
        e->fd_table = t;
        e->fd_table_size = size;
        return 0;
}

void engine_io_event(Engine *e, EngineSource *s, uint32_t revents) {
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

void engine_for_each_allocated_io(Engine *e, void (*fn)(Engine *e, EngineSource *s, void *data), void *data) {
        /* Pool entries on the free list have refs == 0 (released at the last unref). */
        for (SourcePoolChunk *c = e->chunks; c; c = c->next)
                for (size_t i = 0; i < SOURCE_POOL_CHUNK; i++)
                        if (c->sources[i].refs > 0 && c->sources[i].type == SOURCE_IO)
                                fn(e, &c->sources[i], data);
        for (SourceLink *l = e->malloced, *next; l; l = next) {
                EngineSource *s = (EngineSource *)(l + 1);

                next = l->next; /* @fn may release @s */
                if (s->type == SOURCE_IO)
                        fn(e, s, data);
        }
}

void engine_for_each_io(Engine *e, void (*fn)(Engine *e, EngineSource *s, void *data), void *data) {
        for (size_t fd = 0; fd < e->fd_table_size; fd++)
                if (e->fd_table[fd])
                        fn(e, e->fd_table[fd], data);
}

int engine_add_io(Engine *e, EngineSource **ret, int fd, uint32_t events, EngineMode mode,
                  engine_io_cb cb, void *userdata) {
        EngineSource *s;
        int r;

        if (!e || !cb || (events & ~(uint32_t)ENGINE_EVENTS_REQUESTABLE) || (unsigned)mode >= _ENGINE_MODE_MAX)
                return -EINVAL;
        if (fd < 0)
                return -EBADF;
        if (engine_io_lookup(e, fd))
                return -EEXIST;
        r = fd_table_reserve(e, fd);
        if (r < 0)
                return r;
        if (e->backend->io_validate) {
                r = e->backend->io_validate(e, fd);
                if (r < 0)
                        return r;
        }
        s = source_alloc(e, SOURCE_IO);
        if (!s)
                return -ENOMEM;
        s->userdata = userdata;
        s->io.cb = cb;
        s->io.fd = fd;
        s->io.events = events;
        s->io.mode = (uint8_t)mode;
        s->io.generation = ++e->next_generation;
        s->enabled = true;
        e->fd_table[fd] = s;
        r = e->backend->io_start(e, s);
        if (r < 0) {
                e->fd_table[fd] = NULL;
                s->enabled = false;
                s->dead = true;
                engine_source_unref(s);
                return r;
        }
        e->stats.io_sources++;
        if (ret)
                *ret = s;
        return 0;
}

int source_io_modify(EngineSource *s, uint32_t events, EngineMode mode) {
        uint32_t old_events;
        uint8_t old_mode;
        int r;

        if (!s || s->type != SOURCE_IO || s->dead || (events & ~(uint32_t)ENGINE_EVENTS_REQUESTABLE) ||
            (unsigned)mode >= _ENGINE_MODE_MAX)
                return -EINVAL;
        if (s->io.events == events && s->io.mode == mode)
                return 0;
        old_events = s->io.events;
        old_mode = s->io.mode;
        s->io.events = events;
        s->io.mode = (uint8_t)mode;
        if (!s->enabled)
                return 0;
        r = s->engine->backend->io_update(s->engine, s);
        if (r < 0) {
                /* A failed request changes nothing. */
                s->io.events = old_events;
                s->io.mode = old_mode;
        }
        return r;
}

int source_io_arm(EngineSource *s) {
        if (!s || s->type != SOURCE_IO || s->dead)
                return -EINVAL;
        return source_set_enabled(s, true);
}

bool source_io_is_armed(EngineSource *s) {
        return s && s->type == SOURCE_IO && !s->dead && s->enabled;
}

int source_get_fd(EngineSource *s) {
        if (!s || s->type != SOURCE_IO)
                return -EINVAL;
        return s->io.fd;
}

/* ---- timers ------------------------------------------------------------------------ */

static void timer_touch(Engine *e, EngineSource *s) {
        if (s->timer.clock == ENGINE_CLOCK_REALTIME)
                e->realtime_dirty = true;
}

static void timer_unqueue(Engine *e, EngineSource *s) {
        if (timer_heap_item_queued(&s->timer.item)) {
                timer_heap_remove(&e->timers[s->timer.clock], &s->timer.item);
                timer_touch(e, s);
        }
}

static int timer_queue(Engine *e, EngineSource *s) {
        TimerHeap *h = &e->timers[s->timer.clock];
        int r = 0;

        if (timer_heap_item_queued(&s->timer.item))
                timer_heap_update(h, &s->timer.item, s->timer.at);
        else
                r = timer_heap_push(h, &s->timer.item, s->timer.at);
        if (r >= 0)
                timer_touch(e, s);
        return r;
}

static int realtime_cb(EngineSource *s, int fd, uint32_t revents, void *userdata) {
        Engine *e = userdata;
        uint64_t expirations;

        /* Drain: a count, or ECANCELED when the wall clock was set. Either way the heap is
         * checked against a fresh clock in the timer phase and the timerfd re-armed. */
        while (read(fd, &expirations, sizeof(expirations)) > 0)
                ;
        e->realtime_armed_at = 0;
        e->realtime_dirty = true;
        return 0;
}

static int realtime_setup(Engine *e) {
        _cleanup_close_ int fd = -1;
        int r;

        if (e->realtime_fd >= 0)
                return 0;
        fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = engine_add_io(e, &e->realtime_source, fd, ENGINE_IN, ENGINE_EDGE, realtime_cb, e);
        if (r < 0)
                return r;
        e->stats.io_sources--; /* internal */
        e->realtime_fd = TAKE_FD(fd);
        return 0;
}

/* Point the timerfd at the earliest wall-clock deadline. TFD_TIMER_CANCEL_ON_SET wakes us
 * when the clock is stepped, and an absolute CLOCK_REALTIME timer follows the step. */
static int realtime_rearm(Engine *e) {
        struct itimerspec its = { 0 };
        uint64_t at = 0;

        e->realtime_dirty = false;
        if (e->realtime_fd < 0)
                return 0;
        (void)timer_heap_peek(&e->timers[ENGINE_CLOCK_REALTIME], &at);
        if (at == e->realtime_armed_at)
                return 0;
        if (at > 0) {
                at = MAX(at, (uint64_t)1);
                its.it_value.tv_sec = (time_t)(at / NSEC_PER_SEC);
                its.it_value.tv_nsec = (long)(at % NSEC_PER_SEC);
        }
        if (timerfd_settime(e->realtime_fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0) {
                /* ECANCELED: the clock was set since the last read; drain and retry later. */
                if (errno == ECANCELED) {
                        e->realtime_dirty = true;
                        return 0;
                }
                return -errno;
        }
        e->realtime_armed_at = at;
        return 0;
}

int engine_add_timer(Engine *e, EngineSource **ret, EngineClock clock, uint64_t at_ns,
                     uint64_t interval_ns, engine_timer_cb cb, void *userdata) {
        EngineSource *s;
        int r;

        if (!e || !cb || (unsigned)clock >= _ENGINE_CLOCK_MAX)
                return -EINVAL;
        if (clock == ENGINE_CLOCK_REALTIME) {
                r = realtime_setup(e);
                if (r < 0)
                        return r;
        }
        s = source_alloc(e, SOURCE_TIMER);
        if (!s)
                return -ENOMEM;
        s->userdata = userdata;
        s->timer.cb = cb;
        s->timer.at = at_ns;
        s->timer.interval = interval_ns;
        s->timer.clock = (uint8_t)clock;
        s->timer.item = TIMER_HEAP_ITEM_NULL;
        s->enabled = true;
        r = timer_queue(e, s);
        if (r < 0) {
                s->dead = true;
                engine_source_unref(s);
                return r;
        }
        e->stats.timer_sources++;
        if (ret)
                *ret = s;
        return 0;
}

int engine_add_timer_after(Engine *e, EngineSource **ret, uint64_t after_ns, uint64_t interval_ns,
                           engine_timer_cb cb, void *userdata) {
        uint64_t now = e ? engine_now(e, ENGINE_CLOCK_MONOTONIC) : 0;
        uint64_t at = after_ns > UINT64_MAX - now ? UINT64_MAX : now + after_ns;

        return engine_add_timer(e, ret, ENGINE_CLOCK_MONOTONIC, at, interval_ns, cb, userdata);
}

int source_timer_set(EngineSource *s, uint64_t at_ns, uint64_t interval_ns) {
        int r;

        if (!s || s->type != SOURCE_TIMER || s->dead)
                return -EINVAL;
        s->timer.at = at_ns;
        s->timer.interval = interval_ns;
        s->timer.firing = false;
        r = timer_queue(s->engine, s);
        if (r < 0)
                return r;
        s->enabled = true;
        return 0;
}

uint64_t source_timer_get_at(EngineSource *s) {
        return s && s->type == SOURCE_TIMER ? s->timer.at : 0;
}

uint64_t source_timer_get_interval(EngineSource *s) {
        return s && s->type == SOURCE_TIMER ? s->timer.interval : 0;
}

static uint64_t saturating_add(uint64_t a, uint64_t b) {
        return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

static uint64_t saturating_mul(uint64_t a, uint64_t b) {
        return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static void run_timers(Engine *e, EngineClock clock) {
        TimerHeap *h = &e->timers[clock];
        uint64_t now = e->now[clock], at;
        /* Timers that callbacks add already expired wait for the next iteration, so a
         * callback that keeps adding them cannot starve io. */
        uint32_t budget = h->n;
        TimerHeapItem *item;

        while (budget-- > 0 && (item = timer_heap_peek(h, &at)) && at <= now) {
                EngineSource *s = container_of(item, EngineSource, timer.item);
                uint64_t expirations = 1;
                int r;

                if (s->timer.interval)
                        expirations += (now - at) / s->timer.interval;
                else {
                        timer_heap_remove(h, item);
                        timer_touch(e, s);
                        s->enabled = false;
                }
                engine_source_ref(s);
                s->timer.firing = true;
                e->stats.timers++;
                r = s->timer.cb(s, expirations, s->userdata);
                if (r < 0)
                        engine_fail(e, r);
                if (s->timer.firing && !s->dead && s->timer.interval && s->enabled) {
                        /* From the planned deadline, not from now: no drift. */
                        s->timer.at = saturating_add(at, saturating_mul(expirations, s->timer.interval));
                        timer_heap_update(h, item, s->timer.at);
                        timer_touch(e, s);
                }
                s->timer.firing = false;
                engine_source_unref(s);
        }
}

/* ---- signals ----------------------------------------------------------------------- */

static int signal_cb(EngineSource *source, int fd, uint32_t revents, void *userdata) {
        Engine *e = userdata;
        struct signalfd_siginfo si;

        while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                EngineSource *s;
                int r;

                if (si.ssi_signo >= _NSIG || !(s = e->signal_sources[si.ssi_signo]))
                        continue;
                engine_source_ref(s);
                if (!s->dead && s->enabled) {
                        r = s->signal.cb(s, &si, s->userdata);
                        if (r < 0)
                                engine_fail(e, r);
                }
                engine_source_unref(s);
        }
        return 0;
}

int engine_add_signal(Engine *e, EngineSource **ret, int signo, engine_signal_cb cb, void *userdata) {
        sigset_t one;
        EngineSource *s;
        int fd, r;

        if (!e || !cb || signo <= 0 || signo >= _NSIG || signo == SIGKILL || signo == SIGSTOP)
                return -EINVAL;
        if (e->signal_sources[signo])
                return -EEXIST;
        s = source_alloc(e, SOURCE_SIGNAL);
        if (!s)
                return -ENOMEM;
        sigemptyset(&one);
        sigaddset(&one, signo);
        sigaddset(&e->signal_mask, signo);
        fd = signalfd(e->signal_fd, &e->signal_mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                goto fail;
        }
        if (e->signal_fd < 0) {
                r = engine_add_io(e, &e->signal_source, fd, ENGINE_IN, ENGINE_EDGE, signal_cb, e);
                if (r < 0) {
                        (void)safe_close(fd);
                        goto fail;
                }
                e->stats.io_sources--; /* internal */
                e->signal_fd = fd;
        }
        /* Block after the signalfd exists, so no instance is delivered the old way. */
        if (sigprocmask(SIG_BLOCK, &one, NULL) < 0) {
                r = -errno;
                goto fail;
        }
        s->userdata = userdata;
        s->signal.cb = cb;
        s->signal.signo = signo;
        s->enabled = true;
        e->signal_sources[signo] = s;
        if (ret)
                *ret = s;
        return 0;
fail:
        sigdelset(&e->signal_mask, signo);
        if (e->signal_fd >= 0)
                (void)signalfd(e->signal_fd, &e->signal_mask, SFD_NONBLOCK | SFD_CLOEXEC);
        s->dead = true;
        engine_source_unref(s);
        return r;
}

static void signal_detach(Engine *e, EngineSource *s) {
        int signo = s->signal.signo;
        struct timespec zero = { 0 };
        sigset_t one;

        e->signal_sources[signo] = NULL;
        sigdelset(&e->signal_mask, signo);
        if (e->signal_fd >= 0)
                (void)signalfd(e->signal_fd, &e->signal_mask, SFD_NONBLOCK | SFD_CLOEXEC);
        /* Swallow an instance still pending, or unblocking would deliver it with its default
         * action (which, for most signals, kills the process). */
        sigemptyset(&one);
        sigaddset(&one, signo);
        while (sigtimedwait(&one, NULL, &zero) == signo)
                ;
        (void)sigprocmask(SIG_UNBLOCK, &one, NULL);
}

/* ---- defers ------------------------------------------------------------------------ */

static void defer_link(Engine *e, EngineSource *s) {
        s->defer.prev = e->defer_tail;
        s->defer.next = NULL;
        if (e->defer_tail)
                e->defer_tail->defer.next = s;
        else
                e->defer_head = s;
        e->defer_tail = s;
}

static void defer_unlink(Engine *e, EngineSource *s) {
        if (s->defer.prev)
                s->defer.prev->defer.next = s->defer.next;
        else
                e->defer_head = s->defer.next;
        if (s->defer.next)
                s->defer.next->defer.prev = s->defer.prev;
        else
                e->defer_tail = s->defer.prev;
        s->defer.prev = s->defer.next = NULL;
}

static void defer_enable(Engine *e, EngineSource *s) {
        defer_link(e, s);
        if (e->in_defer_phase) {
                /* Not this phase (it would be run at the tail of the list); next one. */
                s->defer.phase = e->defer_phase;
                e->defer_again = true;
        }
}

int engine_add_defer(Engine *e, EngineSource **ret, engine_defer_cb cb, void *userdata) {
        EngineSource *s;

        if (!e || !cb)
                return -EINVAL;
        s = source_alloc(e, SOURCE_DEFER);
        if (!s)
                return -ENOMEM;
        s->userdata = userdata;
        s->defer.cb = cb;
        s->enabled = true;
        defer_enable(e, s);
        if (ret)
                *ret = s;
        return 0;
}

/* Each enabled defer runs once. Those already run move to the tail, as do those enabled
 * during the phase (marked with this phase), so the first marked one ends the phase. */
static void run_defers(Engine *e) {
        e->defer_phase++;
        e->in_defer_phase = true;
        while (e->defer_head && e->defer_head->defer.phase != e->defer_phase) {
                EngineSource *s = e->defer_head;
                int r;

                s->defer.phase = e->defer_phase;
                defer_unlink(e, s);
                defer_link(e, s);
                engine_source_ref(s);
                r = s->defer.cb(s, s->userdata);
                if (r < 0)
                        engine_fail(e, r);
                engine_source_unref(s);
        }
        e->in_defer_phase = false;
}

/* ---- every source ------------------------------------------------------------------ */

int source_set_enabled(EngineSource *s, bool enabled) {
        Engine *e;
        int r = 0;

        if (!s || s->dead)
                return -EINVAL;
        if (s->enabled == enabled)
                return 0;
        e = s->engine;
        switch (s->type) {
        case SOURCE_IO:
                s->enabled = enabled;
                if (enabled) {
                        r = e->backend->io_start(e, s);
                        if (r < 0)
                                s->enabled = false;
                } else
                        e->backend->io_stop(e, s);
                return r;
        case SOURCE_TIMER:
                if (enabled) {
                        r = timer_queue(e, s);
                        if (r < 0)
                                return r;
                } else {
                        timer_unqueue(e, s);
                        s->timer.firing = false;
                }
                s->enabled = enabled;
                return 0;
        case SOURCE_DEFER:
                s->enabled = enabled;
                if (enabled)
                        defer_enable(e, s);
                else
                        defer_unlink(e, s);
                return 0;
        case SOURCE_SIGNAL:
                s->enabled = enabled;
                return 0;
        default:
                return -EINVAL;
        }
}

bool source_get_enabled(EngineSource *s) {
        return s && !s->dead && s->enabled;
}

void *source_get_userdata(EngineSource *s) {
        return s ? s->userdata : NULL;
}

void source_set_userdata(EngineSource *s, void *userdata) {
        if (s)
                s->userdata = userdata;
}

Engine *source_get_engine(EngineSource *s) {
        return s ? s->engine : NULL;
}

EngineSource *source_free(EngineSource *s) {
        Engine *e;

        if (!s || s->dead)
                return NULL;
        e = s->engine;
        switch (s->type) {
        case SOURCE_IO:
                e->fd_table[s->io.fd] = NULL;
                s->dead = true;
                e->backend->io_stop(e, s);
                s->enabled = false;
                e->stats.io_sources--;
                break;
        case SOURCE_TIMER:
                timer_unqueue(e, s);
                e->stats.timer_sources--;
                break;
        case SOURCE_SIGNAL:
                signal_detach(e, s);
                break;
        case SOURCE_DEFER:
                if (s->enabled)
                        defer_unlink(e, s);
                break;
        default:
                break;
        }
        s->dead = true;
        s->enabled = false;
        engine_source_unref(s);
        return NULL;
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
        e->pool_enabled = SOURCE_POOL_ENABLED && !getenv("EVD_UNDER_VALGRIND");
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
        while (e->malloced) {
                SourceLink *l = e->malloced;
                e->malloced = l->next;
                free(l);
        }
        while (e->chunks) {
                SourcePoolChunk *c = e->chunks;
                e->chunks = c->next;
                free(c);
        }
        free(e);
        return NULL;
}

static int64_t next_timeout(Engine *e, int64_t timeout_ns) {
        uint64_t at;

        if (e->defer_again || e->failure || e->exit_requested)
                return 0;
        /* A monotonic deadline bounds the wait; wall-clock ones wake us via realtime_fd. */
        if (timer_heap_peek(&e->timers[ENGINE_CLOCK_MONOTONIC], &at)) {
                uint64_t now;
                struct timespec ts;

                (void)clock_gettime(CLOCK_MONOTONIC, &ts);
                now = (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
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
                r = realtime_rearm(e);
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
        run_timers(e, ENGINE_CLOCK_MONOTONIC);
        run_timers(e, ENGINE_CLOCK_REALTIME);
        run_defers(e);
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
