/* test-engine-timers.c - timers: order, after, repeats without drift, held up, cancel, free,
 * set, disabled, realtime
 *
 * Part of the engine suite: test-engine.c runs it once per backend (see there for how tests
 * wait without sleeping and free what they make); helpers in util-engine.h and util-fd.h.
 */

#include "engine.h"
#include "macro.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "test-engine.h"
#include "util-check.h"
#include "util-engine.h"
#include "util-fd.h"
#include "util-json.h"

/* ---- timers ---- */

START_TEST(test_timer_order) {
        static const unsigned offsets_ms[] = { 30, 10, 20, 5, 25, 15, 1, 40 };
        TimerRec t[ELEMENTSOF(offsets_ms)];
        uint64_t base;

        memset(t, 0, sizeof(t));
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        base = engine_now(e, ENGINE_CLOCK_MONOTONIC);
        for (unsigned i = 0; i < ELEMENTSOF(t); i++)
                add_timer(e, ENGINE_CLOCK_MONOTONIC, base + MSEC(offsets_ms[i]), 0, &t[i]);
        STEP_UNTIL(e, t[7].calls >= 1);
        ck_assert_uint_eq(t[7].calls, 1);
        for (unsigned i = 0; i < ELEMENTSOF(t); i++) {
                ck_assert_uint_eq(t[i].calls, 1);
                ck_assert_uint_eq(t[i].at[0], base + MSEC(offsets_ms[i]));
                for (unsigned j = 0; j < ELEMENTSOF(t); j++)
                        if (offsets_ms[i] < offsets_ms[j])
                                ck_assert_uint_lt(t[i].seq, t[j].seq);
        }
        step_for(e, MSEC(20));
        for (unsigned i = 0; i < ELEMENTSOF(t); i++)
                ck_assert_uint_eq(t[i].calls, 1);
}
END_TEST

/* _i: the delay in ms */
START_TEST(test_timer_after) {
        uint64_t delay = MSEC(_i), t0, base;
        TimerRec t = { 0 };
        EngineSource *s;

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        /* Fresh cached time, so the delay counts from about now. */
        ck_assert_int_eq(engine_step(e, 0), 0);
        base = engine_now(e, ENGINE_CLOCK_MONOTONIC);
        t0 = mono_ns();
        ck_assert_uint_le(base, t0);
        s = add_timer_after(e, delay, 0, &t);
        ck_assert_uint_eq(source_timer_get_at(s), base + delay);
        ck_assert_uint_eq(source_timer_get_interval(s), 0);
        STEP_UNTIL(e, t.calls >= 1);
        ck_assert_uint_eq(t.calls, 1);
        ck_assert_uint_eq(t.exp[0], 1);
        ck_assert_uint_ge(t.real[0] - base, delay);
        ck_assert_uint_lt(t.real[0] - t0, delay + slack_ns());
        step_for(e, MSEC(20));
        ck_assert_uint_eq(t.calls, 1);
}
END_TEST

/* Fired deadlines lie on the grid at0 + k*interval, each period is accounted for exactly
 * once across callbacks, and the next deadline after the run is at0 + total*interval. */
static void check_grid(EngineSource *s, const TimerRec *t, uint64_t at0, uint64_t interval) {
        uint64_t prefix = 0;

        for (unsigned i = 0; i < t->calls; i++) {
                ck_assert_uint_eq((t->at[i] - at0) % interval, 0);
                ck_assert_uint_ge(t->at[i], at0 + prefix * interval);
                ck_assert_uint_le(t->at[i], at0 + (prefix + t->exp[i] - 1) * interval);
                prefix += t->exp[i];
        }
        ck_assert_uint_eq(prefix, t->expirations);
        ck_assert_uint_eq(source_timer_get_at(s), at0 + t->expirations * interval);
        ck_assert_uint_eq(source_timer_get_interval(s), interval);
}

START_TEST(test_timer_repeat_no_drift) {
        const uint64_t interval = MSEC(10);
        TimerRec t = { 0 };
        EngineSource *s;
        uint64_t at0;

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        at0 = engine_now(e, ENGINE_CLOCK_MONOTONIC) + interval;
        s = add_timer(e, ENGINE_CLOCK_MONOTONIC, at0, interval, &t);
        STEP_UNTIL(e, t.expirations >= 50);
        check_grid(s, &t, at0, interval);
        /* 50 periods took about 500 ms: the last ran no earlier than its deadline. */
        ck_assert_uint_ge(t.real[t.calls - 1], at0 + 49 * interval);
        ck_assert_uint_lt(t.real[t.calls - 1], at0 + t.expirations * interval + slack_ns());
        ck_assert(source_get_enabled(s));
        s = source_free(s);
        t.calls = 0;
        step_for(e, MSEC(30));
        ck_assert_uint_eq(t.calls, 0);
}
END_TEST

START_TEST(test_timer_held_up) {
        const uint64_t interval = MSEC(10);
        TimerRec t = { .busy_first = MSEC(35) };
        EngineSource *s;
        uint64_t at0;

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        at0 = engine_now(e, ENGINE_CLOCK_MONOTONIC) + interval;
        s = add_timer(e, ENGINE_CLOCK_MONOTONIC, at0, interval, &t);
        STEP_UNTIL(e, t.calls >= 2);
        /* 35 ms in the first callback: the next one reports >= 3 missed periods at once. */
        ck_assert_uint_ge(t.exp[1], 3);
        STEP_UNTIL(e, t.expirations >= 10);
        check_grid(s, &t, at0, interval);
}
END_TEST

START_TEST(test_timer_cancel) {
        TimerRec a = { 0 }, b = { 0 }, c = { 0 }, dog = { 0 };
        EngineSource *sa, *sb, *sc;

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        sa = add_timer_after(e, MSEC(20), 0, &a);
        sb = add_timer_after(e, MSEC(30), MSEC(5), &b);
        sc = add_timer_after(e, MSEC(10), 0, &c);
        add_timer_after(e, MSEC(80), 0, &dog);
        /* Freed before the engine ever looked at it, and after it was scheduled. */
        sa = source_free(sa);
        ck_assert_ptr_null(sa);
        ck_assert_int_eq(engine_step(e, 0), 0);
        sb = source_free(sb);
        STEP_UNTIL(e, dog.calls >= 1);
        ck_assert_uint_eq(dog.calls, 1);
        ck_assert_uint_eq(a.calls, 0);
        ck_assert_uint_eq(b.calls, 0);
        ck_assert_uint_eq(c.calls, 1);
        /* A fired one-shot timer stays allocated, disabled. */
        ck_assert(!source_get_enabled(sc));
        ck_assert_ptr_null(source_free(sc));
}
END_TEST

START_TEST(test_timer_free_in_callback) {
        TimerRec t = { .free_self = true }, dog = { 0 };
        EngineSource *s;

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        s = add_timer_after(e, MSEC(5), MSEC(5), &t);
        t.self = &s;
        add_timer_after(e, MSEC(60), 0, &dog);
        STEP_UNTIL(e, dog.calls >= 1);
        ck_assert_uint_eq(dog.calls, 1);
        ck_assert_uint_eq(t.calls, 1);
        ck_assert_ptr_null(s);
}
END_TEST

/* Two timers due in the same iteration: whichever runs first frees the other. */
START_TEST(test_timer_free_other_in_batch) {
        TimerRec a = { 0 }, b = { 0 }, dog = { 0 };
        EngineSource *sa, *sb;
        uint64_t at;

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        at = engine_now(e, ENGINE_CLOCK_MONOTONIC) + MSEC(10);
        sa = add_timer(e, ENGINE_CLOCK_MONOTONIC, at, MSEC(1), &a);
        sb = add_timer(e, ENGINE_CLOCK_MONOTONIC, at, MSEC(1), &b);
        a.free_other = &sb;
        b.free_other = &sa;
        add_timer_after(e, MSEC(30), 0, &dog);
        STEP_UNTIL(e, dog.calls >= 1);
        ck_assert_uint_eq(dog.calls, 1);
        /* The survivor repeats every ms; the freed one never ran. */
        ck_assert((sa == NULL) != (sb == NULL));
        ck_assert_uint_eq(sa ? b.calls : a.calls, 0);
        ck_assert_uint_ge(sa ? a.calls : b.calls, 1);
}
END_TEST

START_TEST(test_timer_set) {
        TimerRec t = { 0 }, u = { 0 };
        EngineSource *s, *su;
        uint64_t now, at;

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        now = engine_now(e, ENGINE_CLOCK_MONOTONIC);
        s = add_timer(e, ENGINE_CLOCK_MONOTONIC, now + 3600 * NSEC_PER_SEC, 0, &t);
        ck_assert_int_eq(engine_step(e, 0), 0);

        /* Earlier. */
        at = engine_now(e, ENGINE_CLOCK_MONOTONIC) + MSEC(10);
        ck_assert_int_eq(source_timer_set(s, at, 0), 0);
        ck_assert_uint_eq(source_timer_get_at(s), at);
        STEP_UNTIL(e, t.calls >= 1);
        ck_assert_uint_eq(t.calls, 1);
        ck_assert_uint_eq(t.at[0], at);
        ck_assert_uint_lt(t.real[0], at + slack_ns());

        /* Fired one-shot: disabled, stays quiet, and set() revives it, now repeating. */
        ck_assert(!source_get_enabled(s));
        step_for(e, MSEC(20));
        ck_assert_uint_eq(t.calls, 1);
        at = engine_now(e, ENGINE_CLOCK_MONOTONIC) + MSEC(5);
        ck_assert_int_eq(source_timer_set(s, at, MSEC(5)), 0);
        ck_assert(source_get_enabled(s));
        ck_assert_uint_eq(source_timer_get_interval(s), MSEC(5));
        STEP_UNTIL(e, t.expirations >= 4);
        /* On the new grid (a late first call may report the later of missed deadlines). */
        ck_assert_uint_ge(t.at[1], at);
        ck_assert_uint_eq((t.at[1] - at) % MSEC(5), 0);
        ck_assert_uint_le(t.at[1], at + (t.exp[1] - 1) * MSEC(5));

        /* Far away again: quiet. */
        ck_assert_int_eq(source_timer_set(s, now + 3600 * NSEC_PER_SEC, 0), 0);
        t.calls = 0;
        step_for(e, MSEC(30));
        ck_assert_uint_eq(t.calls, 0);

        /* Later than planned: not at the old deadline. */
        now = engine_now(e, ENGINE_CLOCK_MONOTONIC);
        su = add_timer(e, ENGINE_CLOCK_MONOTONIC, now + MSEC(10), 0, &u);
        ck_assert_int_eq(source_timer_set(su, now + MSEC(80), 0), 0);
        step_for(e, MSEC(40));
        ck_assert_uint_eq(u.calls, 0);
        STEP_UNTIL(e, u.calls >= 1);
        ck_assert_uint_eq(u.calls, 1);
        ck_assert_uint_eq(u.at[0], now + MSEC(80));
        ck_assert_uint_ge(u.real[0], now + MSEC(80));
}
END_TEST

START_TEST(test_timer_disabled) {
        TimerRec t = { 0 }, r = { .stop_after = 3 };
        EngineSource *s, *sr;
        uint64_t at;

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        at = engine_now(e, ENGINE_CLOCK_MONOTONIC) + MSEC(10);
        s = add_timer(e, ENGINE_CLOCK_MONOTONIC, at, 0, &t);
        ck_assert(source_get_enabled(s));
        ck_assert_int_eq(source_set_enabled(s, false), 0);
        ck_assert(!source_get_enabled(s));
        step_for(e, MSEC(60));
        ck_assert_uint_eq(t.calls, 0);

        /* Re-enabled at the stored deadline, which has passed: fires right away. */
        ck_assert_int_eq(source_set_enabled(s, true), 0);
        ck_assert_uint_eq(source_timer_get_at(s), at);
        STEP_UNTIL(e, t.calls >= 1);
        ck_assert_uint_eq(t.calls, 1);
        ck_assert_uint_eq(t.at[0], at);

        /* A repeating timer disabled from its callback stops. */
        sr = add_timer_after(e, MSEC(2), MSEC(2), &r);
        STEP_UNTIL(e, r.expirations >= 3);
        ck_assert(!source_get_enabled(sr));
        r.calls = 0;
        step_for(e, MSEC(30));
        ck_assert_uint_eq(r.calls, 0);
}
END_TEST

START_TEST(test_timer_realtime) {
        TimerRec t = { 0 }, past = { 0 }, rep = { 0 };
        uint64_t at, real = clock_ns(CLOCK_REALTIME);
        EngineSource *s;

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        ck_assert_int_eq(engine_step(e, 0), 0);
        /* engine_now(REALTIME) is the wall clock. */
        ck_assert_uint_ge(engine_now(e, ENGINE_CLOCK_REALTIME), real);
        ck_assert_uint_le(engine_now(e, ENGINE_CLOCK_REALTIME), clock_ns(CLOCK_REALTIME));

        at = clock_ns(CLOCK_REALTIME) + MSEC(50) * arg_slow;
        add_timer(e, ENGINE_CLOCK_REALTIME, at, 0, &t);
        add_timer(e, ENGINE_CLOCK_REALTIME, at - 10 * NSEC_PER_SEC, 0, &past);
        STEP_UNTIL(e, past.calls >= 1);
        ck_assert_uint_eq(past.calls, 1);
        ck_assert_uint_eq(t.calls, 0);
        STEP_UNTIL(e, t.calls >= 1);
        ck_assert_uint_eq(t.calls, 1);
        ck_assert_uint_ge(t.real[0], at);
        ck_assert_uint_lt(t.real[0], at + slack_ns());

        at = clock_ns(CLOCK_REALTIME) + MSEC(10);
        s = add_timer(e, ENGINE_CLOCK_REALTIME, at, MSEC(10), &rep);
        STEP_UNTIL(e, rep.expirations >= 3);
        check_grid(s, &rep, at, MSEC(10));
}
END_TEST

/* A million timers: random deadlines, a random half cancelled, the rest fire exactly once,
 * in non-decreasing deadline order, each freeing itself. */

/* ---- tcase ---------------------------------------------------------------------------- */

void engine_timers_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "timers", 30);
        tcase_add_test(tc, test_timer_order);
        tcase_add_loop_test(tc, test_timer_after, 1, 2);
        tcase_add_loop_test(tc, test_timer_after, 20, 21);
        tcase_add_loop_test(tc, test_timer_after, 50, 51);
        tcase_add_test(tc, test_timer_repeat_no_drift);
        tcase_add_test(tc, test_timer_held_up);
        tcase_add_test(tc, test_timer_cancel);
        tcase_add_test(tc, test_timer_free_in_callback);
        tcase_add_test(tc, test_timer_free_other_in_batch);
        tcase_add_test(tc, test_timer_set);
        tcase_add_test(tc, test_timer_disabled);
        tcase_add_test(tc, test_timer_realtime);
}
