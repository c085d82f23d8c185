/* engine-timer.c - timer sources: one heap per clock, the wall-clock timerfd, the timer phase
 *
 * Deadlines are absolute nanoseconds in their clock, kept in a timer heap per clock. A
 * monotonic deadline bounds the loop's wait (engine.c); wall-clock ones wake it through one
 * CLOCK_REALTIME timerfd, re-armed before each wait when the heap's top changed, which also
 * reports clock steps. Periodic timers are rescheduled from the planned deadline (no drift)
 * and report how many periods passed.
 */

#include "engine-internal.h"

#include <errno.h>
#include <stdint.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"

int engine_timer_queue(Engine *e, EngineSource *s) {
        TimerHeap *h = &e->timers[s->timer.clock];
        int r = 0;

        if (timer_heap_item_queued(&s->timer.item))
                timer_heap_update(h, &s->timer.item, s->timer.at);
        else
                r = timer_heap_push(h, &s->timer.item, s->timer.at);
        if (r >= 0)
                engine_timer_touch(e, s);
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
int engine_realtime_rearm(Engine *e) {
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

/* The part of adding a timer that both kinds of memory share; @s holds the user's reference.
 * On failure @s is released (for the caller's memory: left unused). */
static int timer_start(Engine *e, EngineSource *s, EngineClock clock, uint64_t at_ns,
                       uint64_t interval_ns, engine_timer_cb cb, void *userdata) {
        int r;

        s->userdata = userdata;
        s->timer.cb = cb;
        s->timer.at = at_ns;
        s->timer.interval = interval_ns;
        s->timer.clock = (uint8_t)clock;
        s->timer.item = TIMER_HEAP_ITEM_NULL;
        s->enabled = true;
        /* New, so not queued: straight to the heap (the insert that a burst pays per timer). */
        r = timer_heap_push(&e->timers[clock], &s->timer.item, at_ns);
        if (r < 0) {
                s->dead = true;
                engine_source_unref(s);
                return r;
        }
        engine_timer_touch(e, s);
        e->stats.timer_sources++;
        return 0;
}

static int timer_check(Engine *e, EngineClock clock, engine_timer_cb cb) {
        if (!e || !cb || (unsigned)clock >= _ENGINE_CLOCK_MAX)
                return -EINVAL;
        return clock == ENGINE_CLOCK_REALTIME ? realtime_setup(e) : 0;
}

int engine_add_timer(Engine *e, EngineSource **ret, EngineClock clock, uint64_t at_ns,
                     uint64_t interval_ns, engine_timer_cb cb, void *userdata) {
        EngineSource *s;
        int r;

        r = timer_check(e, clock, cb);
        if (r < 0)
                return r;
        s = engine_source_alloc(e, SOURCE_TIMER);
        if (!s)
                return -ENOMEM;
        r = timer_start(e, s, clock, at_ns, interval_ns, cb, userdata);
        if (r < 0)
                return r;
        if (ret)
                *ret = s;
        return 0;
}

int engine_init_timer(Engine *e, EngineTimerMem *mem, EngineSource **ret, EngineClock clock,
                      uint64_t at_ns, uint64_t interval_ns, engine_timer_cb cb, void *userdata) {
        EngineSource *s = engine_timer_source(mem);
        int r;

        if (!mem)
                return -EINVAL;
        r = timer_check(e, clock, cb);
        if (r < 0)
                return r;
        *s = (EngineSource){ .engine = e, .type = SOURCE_TIMER, .refs = 1, .caller_memory = true };
        r = timer_start(e, s, clock, at_ns, interval_ns, cb, userdata);
        if (r < 0)
                return r;
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
        engine_timer_settled(s->engine, s);
        r = engine_timer_queue(s->engine, s);
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

EngineClock source_timer_get_clock(EngineSource *s) {
        return s && s->type == SOURCE_TIMER ? (EngineClock)s->timer.clock : ENGINE_CLOCK_MONOTONIC;
}

static uint64_t saturating_add(uint64_t a, uint64_t b) {
        return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

static uint64_t saturating_mul(uint64_t a, uint64_t b) {
        return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

void engine_run_timers(Engine *e, EngineClock clock) {
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
                        engine_timer_touch(e, s);
                        s->enabled = false;
                }
                /* No reference is taken: a callback that frees its timer may free the
                 * memory too (engine_init_timer()), so firing_timer tells whether it did. */
                e->firing_timer = s;
                e->stats.timers++;
                r = s->timer.cb(s, expirations, s->userdata);
                if (r < 0)
                        engine_fail(e, r);
                if (e->firing_timer != s)
                        continue;
                e->firing_timer = NULL;
                if (s->timer.interval && s->enabled) {
                        /* From the planned deadline, not from now: no drift. */
                        s->timer.at = saturating_add(at, saturating_mul(expirations, s->timer.interval));
                        timer_heap_update(h, item, s->timer.at);
                        engine_timer_touch(e, s);
                }
        }
}
