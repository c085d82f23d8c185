/* util-engine.c - the engine suite's helpers: engines of the backend under test, stepping
 * with a watchdog, clocks, and the io and timer recorders the tests' callbacks are
 *
 * The backend comes from $EVD_TEST_BACKEND (test-engine.c's main sets arg_backend); every
 * engine a test makes is of that backend. The recorders check on every call what holds for
 * every callback (the source's userdata and fd, revents within the requested events, timers
 * never early) and record the rest for the test to judge.
 */

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "macro.h"
#include "util-engine.h"
#include "util-fd.h"
#include "util-json.h"

EngineBackend arg_backend = ENGINE_BACKEND_AUTO;
const char *arg_backend_name; /* what engine_backend_name() must say; NULL for auto */
unsigned arg_slow = 1;        /* timing slack multiplier (valgrind) */
unsigned seq;                 /* orders callbacks of different sources */

uint64_t clock_ns(clockid_t clock) {
        struct timespec ts;

        ck_assert_int_eq(clock_gettime(clock, &ts), 0);
        return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t mono_ns(void) {
        return clock_ns(CLOCK_MONOTONIC);
}

uint64_t cpu_ns(void) {
        return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

void busy_wait(uint64_t ns) {
        uint64_t end = mono_ns() + ns;

        while (mono_ns() < end)
                ;
}

uint64_t watchdog_ns(void) {
        return 5 * NSEC_PER_SEC * arg_slow;
}

/* Upper bound on lateness for timing assertions. */
uint64_t slack_ns(void) {
        return MSEC(500) * arg_slow;
}

/* ---- engines ---- */

Engine *test_engine_new(const EngineOptions *opts) {
        EngineOptions o = opts ? *opts : (EngineOptions){ 0 };
        Engine *e = NULL;
        int r;

        o.backend = arg_backend;
        r = engine_new(&e, &o);
        ck_assert_msg(r == 0, "engine_new(%s): %s", arg_backend_name ? arg_backend_name : "auto",
                      strerror(-r));
        ck_assert_ptr_nonnull(e);
        if (arg_backend_name)
                ck_assert_str_eq(engine_backend_name(e), arg_backend_name);
        return e;
}

bool is_uring(Engine *e) {
        return streq(engine_backend_name(e), "io_uring");
}

/* Run the loop for @ns of wall time: what should not happen gets its chance. */
void step_for(Engine *e, uint64_t ns) {
        uint64_t end = mono_ns() + ns;

        for (;;) {
                uint64_t now = mono_ns();

                if (now >= end)
                        break;
                ck_assert_int_eq(engine_step(e, (int64_t)MIN(end - now, MSEC(10))), 0);
        }
}

EngineStats get_stats(Engine *e) {
        EngineStats st;

        memset(&st, 0xa5, sizeof(st));
        engine_get_stats(e, &st);
        return st;
}

int io_rec_cb(EngineSource *s, int fd, uint32_t revents, void *userdata) {
        IoRec *r = userdata;

        ck_assert_ptr_eq(source_get_userdata(s), r);
        ck_assert_int_eq(source_get_fd(s), fd);
        ck_assert_uint_ne(revents, 0);
        ck_assert_msg((revents & ~(r->events | ENGINE_ERR | ENGINE_HUP | ENGINE_NVAL)) == 0,
                      "revents 0x%x outside requested 0x%x|ERR|HUP|NVAL", revents, r->events);
        r->calls++;
        r->seq = ++seq;
        r->fd = fd;
        r->revents = revents;
        r->all |= revents;
        if (r->drain)
                (void)drain_fd(fd);
        if (r->rearm)
                ck_assert_int_eq(source_io_arm(s), 0);
        if (r->free_other && *r->free_other)
                *r->free_other = source_free(*r->free_other);
        if (r->free_self)
                *r->self = source_free(s);
        return r->ret;
}

EngineSource *add_io(Engine *e, int fd, uint32_t events, EngineMode mode, IoRec *r) {
        EngineSource *s = NULL;
        int ret;

        r->events = events;
        ret = engine_add_io(e, &s, fd, events, mode, io_rec_cb, r);
        ck_assert_msg(ret == 0, "engine_add_io(%d): %s", fd, strerror(-ret));
        ck_assert_ptr_nonnull(s);
        ck_assert_ptr_eq(source_get_engine(s), e);
        ck_assert_int_eq(source_get_fd(s), fd);
        return s;
}

void modify(EngineSource *s, IoRec *r, uint32_t events, EngineMode mode) {
        r->events = events;
        ck_assert_int_eq(source_io_modify(s, events, mode), 0);
}

int timer_rec_cb(EngineSource *s, uint64_t expirations, void *userdata) {
        TimerRec *t = userdata;
        Engine *e = source_get_engine(s);
        uint64_t at = source_timer_get_at(s);
        uint64_t real = clock_ns(t->clock == ENGINE_CLOCK_REALTIME ? CLOCK_REALTIME
                                                                   : CLOCK_MONOTONIC);
        uint64_t now = engine_now(e, t->clock);
        unsigned i = t->calls;

        ck_assert_ptr_eq(source_get_userdata(s), t);
        ck_assert_uint_ge(expirations, 1);
        /* Never early: not by the engine's clock, not by the real one. */
        ck_assert_uint_ge(now, at);
        ck_assert_uint_ge(real, at);
        ck_assert_uint_lt(i, TIMER_REC_MAX);
        t->at[i] = at;
        t->exp[i] = expirations;
        t->now[i] = now;
        t->real[i] = real;
        t->calls++;
        t->seq = ++seq;
        t->expirations += expirations;
        if (i == 0 && t->busy_first)
                busy_wait(t->busy_first);
        if (t->stop_after && t->expirations >= t->stop_after)
                ck_assert_int_eq(source_set_enabled(s, false), 0);
        if (t->exit)
                engine_exit(e, t->exit_code);
        if (t->free_other && *t->free_other)
                *t->free_other = source_free(*t->free_other);
        if (t->free_self)
                *t->self = source_free(s);
        return t->ret;
}

EngineSource *add_timer(Engine *e, EngineClock clock, uint64_t at, uint64_t interval,
                               TimerRec *t) {
        EngineSource *s = NULL;
        int r;

        t->clock = clock;
        r = engine_add_timer(e, &s, clock, at, interval, timer_rec_cb, t);
        ck_assert_msg(r == 0, "engine_add_timer: %s", strerror(-r));
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(source_timer_get_at(s), at);
        ck_assert_uint_eq(source_timer_get_interval(s), interval);
        return s;
}

EngineSource *add_timer_after(Engine *e, uint64_t after, uint64_t interval, TimerRec *t) {
        EngineSource *s = NULL;
        int r;

        t->clock = ENGINE_CLOCK_MONOTONIC;
        r = engine_add_timer_after(e, &s, after, interval, timer_rec_cb, t);
        ck_assert_msg(r == 0, "engine_add_timer_after: %s", strerror(-r));
        ck_assert_ptr_nonnull(s);
        return s;
}

/* ---- many fds: one eventfd each, counted per callback ---- */

int many_cb(EngineSource *s, int fd, uint32_t revents, void *userdata) {
        unsigned *count = userdata;

        (void)fd;
        CHECK(source_get_userdata(s) == userdata);
        CHECK(revents == ENGINE_IN);
        (*count)++;
        return 0;
}

void many_init(Many *m, unsigned n) {
        m->n = n;
        m->fds = malloc(sizeof(*m->fds) * n);
        m->counts = calloc(n, sizeof(*m->counts));
        m->src = calloc(n, sizeof(*m->src));
        ck_assert(m->fds && m->counts && m->src);
        for (unsigned i = 0; i < n; i++)
                m->fds[i] = make_eventfd();
}

void many_add(Many *m, Engine *e, EngineMode mode) {
        for (unsigned i = 0; i < m->n; i++) {
                int r = engine_add_io(e, &m->src[i], m->fds[i], ENGINE_IN, mode, many_cb,
                                      &m->counts[i]);
                if (r < 0)
                        ck_abort_msg("engine_add_io #%u: %s", i, strerror(-r));
        }
}

void many_bump(Many *m) {
        uint64_t one = 1;

        for (unsigned i = 0; i < m->n; i++)
                CHECK(write(m->fds[i], &one, sizeof(one)) == (ssize_t)sizeof(one));
}

unsigned many_sum(const Many *m) {
        unsigned sum = 0;

        for (unsigned i = 0; i < m->n; i++)
                sum += m->counts[i];
        return sum;
}

/* Every source called back exactly @times, and nothing more arrives while idle. */
void many_expect_each(Engine *e, Many *m, unsigned times) {
        STEP_UNTIL(e, many_sum(m) >= m->n * times);
        step_for(e, MSEC(50));
        for (unsigned i = 0; i < m->n; i++)
                if (m->counts[i] != times)
                        ck_abort_msg("source #%u (fd %d) called back %u times, want %u", i,
                                     m->fds[i], m->counts[i], times);
}

/* Every source called back at least @lo and at most @hi times in total, and nothing more
 * arrives while idle. */
void many_expect_between(Engine *e, Many *m, unsigned lo, unsigned hi) {
        unsigned before;

        STEP_UNTIL(e, many_sum(m) >= m->n * lo);
        step_for(e, MSEC(50));
        for (unsigned i = 0; i < m->n; i++)
                if (m->counts[i] < lo || m->counts[i] > hi)
                        ck_abort_msg("source #%u (fd %d) called back %u times, want %u..%u", i, m->fds[i],
                                     m->counts[i], lo, hi);
        before = many_sum(m);
        step_for(e, MSEC(50));
        ck_assert_uint_eq(many_sum(m), before);
}

void many_done(Many *m, Engine *e) {
        for (unsigned i = 0; i < m->n; i++)
                m->src[i] = source_free(m->src[i]);
        /* Let io_uring cancellations complete before the fds go. */
        if (e)
                step_for(e, MSEC(10));
        for (unsigned i = 0; i < m->n; i++)
                (void)safe_close(m->fds[i]);
        free(m->fds);
        free(m->counts);
        free(m->src);
        *m = (Many){ 0 };
}

/* ---- signal recorder ---- */

int sig_rec_cb(EngineSource *s, const struct signalfd_siginfo *si, void *userdata) {
        SigRec *r = userdata;

        ck_assert_ptr_eq(source_get_userdata(s), r);
        r->calls++;
        r->last = *si;
        if (r->free_self)
                *r->self = source_free(s);
        return 0;
}

bool signal_blocked(int signo) {
        sigset_t cur;

        ck_assert_int_eq(sigprocmask(SIG_BLOCK, NULL, &cur), 0);
        return sigismember(&cur, signo) == 1;
}

/* ---- defer recorder ---- */

int defer_rec_cb(EngineSource *s, void *userdata) {
        DeferRec *d = userdata;

        ck_assert_ptr_eq(source_get_userdata(s), d);
        d->calls++;
        d->seq = ++seq;
        if (d->enable)
                ck_assert_int_eq(source_set_enabled(d->enable, true), 0);
        if (d->disable_self)
                ck_assert_int_eq(source_set_enabled(s, false), 0);
        if (d->exit_code)
                engine_exit(source_get_engine(s), d->exit_code);
        if (d->free_self)
                *d->self = source_free(s);
        return 0;
}

EngineSource *add_defer(Engine *e, DeferRec *d) {
        EngineSource *s = NULL;

        ck_assert_int_eq(engine_add_defer(e, &s, defer_rec_cb, d), 0);
        ck_assert_ptr_nonnull(s);
        ck_assert(source_get_enabled(s));
        return s;
}
