/* test-engine-loop.c - the loop: exit codes, failing callbacks, now, stats and names, freeing
 * an engine with everything in it
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

/* ---- loop ---- */

START_TEST(test_exit_code) {
        TimerRec t = { .exit = true, .exit_code = 42 }, dog = { .ret = -ETIMEDOUT };
        DeferRec d = { .exit_code = 7 };
        IoRec r = { 0 };

        {
                _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);

                add_timer_after(e, MSEC(10), 0, &t);
                add_timer_after(e, watchdog_ns(), 0, &dog);
                ck_assert_int_eq(engine_run(e), 42);
                ck_assert_uint_eq(t.calls, 1);
                ck_assert_uint_eq(dog.calls, 0);
        }
        {
                _cleanup_pair_ int p[2] = PAIR_NULL;

                /* From a defer, with io in the same iteration that still gets dispatched. */
                make_pipe(p);
                _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
                add_timer_after(e, watchdog_ns(), 0, &dog);
                add_io(e, p[1], ENGINE_OUT, ENGINE_EDGE, &r);
                add_defer(e, &d);
                ck_assert_int_eq(engine_run(e), 7);
                ck_assert_uint_eq(d.calls, 1);
                ck_assert_uint_eq(dog.calls, 0);
        }
        {
                _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);

                /* Code 0 is a code too. */
                t = (TimerRec){ .exit = true, .exit_code = 0 };
                add_timer_after(e, MSEC(1), 0, &t);
                add_timer_after(e, watchdog_ns(), 0, &dog);
                ck_assert_int_eq(engine_run(e), 0);
                ck_assert_uint_eq(t.calls, 1);
        }
}
END_TEST

START_TEST(test_callback_failure) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec r = { .ret = -EIO, .drain = true };
        TimerRec t = { .ret = -ENOTRECOVERABLE }, dog = { .ret = -ETIMEDOUT };
        EngineSource *s;

        make_pipe(p);
        {
                _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);

                add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &r);
                add_timer_after(e, watchdog_ns(), 0, &dog);
                write_byte(p[1]);
                ck_assert_int_eq(engine_run(e), -EIO);
                ck_assert_uint_eq(r.calls, 1);
        }
        {
                _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
                uint64_t deadline = mono_ns() + watchdog_ns();
                int ret = 0;

                /* engine_step() reports it the same way. */
                r = (IoRec){ .ret = -EPROTO, .drain = true };
                add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &r);
                write_byte(p[1]);
                while (r.calls == 0 && ret == 0 && mono_ns() < deadline)
                        ret = engine_step(e, (int64_t)MSEC(10));
                ck_assert_uint_eq(r.calls, 1);
                ck_assert_int_eq(ret, -EPROTO);
        }
        {
                _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);

                s = add_timer_after(e, MSEC(5), 0, &t);
                add_timer_after(e, watchdog_ns(), 0, &dog);
                ck_assert_int_eq(engine_run(e), -ENOTRECOVERABLE);
                ck_assert_uint_eq(t.calls, 1);
                (void)s;
        }
}
END_TEST

typedef struct NowRec {
        Engine *e;
        unsigned calls;
        uint64_t mono[2], real[2];
} NowRec;

static int now_cb(EngineSource *s, uint64_t expirations, void *userdata) {
        NowRec *n = userdata;

        (void)expirations;
        ck_assert_uint_lt(n->calls, 2);
        n->mono[n->calls] = engine_now(n->e, ENGINE_CLOCK_MONOTONIC);
        n->real[n->calls] = engine_now(n->e, ENGINE_CLOCK_REALTIME);
        n->calls++;
        /* Time passes inside the dispatch; the cached value must not. */
        busy_wait(MSEC(3));
        return 0;
}

START_TEST(test_now) {
        NowRec n = { 0 };
        uint64_t before, after, now1, now2;
        EngineSource *a = NULL, *b = NULL;

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        n.e = e;
        now1 = engine_now(e, ENGINE_CLOCK_MONOTONIC);
        ck_assert_uint_gt(now1, 0);
        ck_assert_uint_le(now1, mono_ns());

        /* Both due: one iteration runs both, with the same cached time. */
        ck_assert_int_eq(engine_add_timer(e, &a, ENGINE_CLOCK_MONOTONIC, now1, 0, now_cb, &n), 0);
        ck_assert_int_eq(engine_add_timer(e, &b, ENGINE_CLOCK_MONOTONIC, now1, 0, now_cb, &n), 0);
        before = mono_ns();
        ck_assert_int_eq(engine_step(e, (int64_t)NSEC_PER_SEC), 0);
        after = mono_ns();
        ck_assert_uint_eq(n.calls, 2);
        ck_assert_uint_eq(n.mono[0], n.mono[1]);
        ck_assert_uint_eq(n.real[0], n.real[1]);
        /* Taken in this iteration, from CLOCK_MONOTONIC. */
        ck_assert_uint_ge(n.mono[0], before);
        ck_assert_uint_le(n.mono[0], after);

        /* Advances with the next iteration. */
        now1 = engine_now(e, ENGINE_CLOCK_MONOTONIC);
        busy_wait(MSEC(2));
        ck_assert_uint_eq(engine_now(e, ENGINE_CLOCK_MONOTONIC), now1);
        ck_assert_int_eq(engine_step(e, 0), 0);
        now2 = engine_now(e, ENGINE_CLOCK_MONOTONIC);
        ck_assert_uint_ge(now2, now1 + MSEC(2));
        ck_assert_uint_le(now2, mono_ns());
}
END_TEST

START_TEST(test_stats_and_names) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        EngineStats base, st0, st1;
        IoRec r = { 0 };
        TimerRec t = { 0 };
        EngineSource *s, *ts;
        unsigned features;

        make_pipe(p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        if (arg_backend_name)
                ck_assert_str_eq(engine_backend_name(e), arg_backend_name);
        else
                ck_assert(is_uring(e) || streq(engine_backend_name(e), "epoll"));

        features = engine_features(e);
        if (is_uring(e)) {
                ck_assert_uint_ne(features, 0);
                ck_assert_uint_gt(get_stats(e).sq_entries, 0);
                ck_assert_uint_gt(get_stats(e).cq_entries, 0);
        }
        ck_assert_uint_eq(features >> _ENGINE_FEATURE_COUNT, 0);
        for (unsigned bit = 0; bit < _ENGINE_FEATURE_COUNT; bit++) {
                const char *name = engine_feature_name(1u << bit);

                ck_assert_ptr_nonnull(name);
                ck_assert_uint_gt(strlen(name), 0);
                for (unsigned other = 0; other < bit; other++)
                        ck_assert_str_ne(name, engine_feature_name(1u << other));
        }
        ck_assert_ptr_null(engine_feature_name(1u << _ENGINE_FEATURE_COUNT));
        ck_assert_ptr_null(engine_feature_name(0));

        base = get_stats(e);
        st0 = base;
        s = add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &r);
        st1 = get_stats(e);
        ck_assert_uint_eq(st1.io_sources, base.io_sources + 1);

        for (unsigned k = 0; k < 5; k++)
                ck_assert_int_eq(engine_step(e, 0), 0);
        st1 = get_stats(e);
        ck_assert_uint_eq(st1.iterations - st0.iterations, 5);
        ck_assert_uint_gt(st1.submissions, st0.submissions);
        ck_assert_uint_gt(st1.syscalls, st0.syscalls);
        ck_assert_uint_eq(st1.events, st0.events);

        st0 = st1;
        ts = add_timer_after(e, MSEC(1), 0, &t);
        ck_assert_uint_eq(get_stats(e).timer_sources, base.timer_sources + 1);
        write_byte(p[1]);
        STEP_UNTIL(e, r.calls >= 1 && t.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert_uint_eq(t.calls, 1);
        st1 = get_stats(e);
        ck_assert_uint_eq(st1.events - st0.events, 1);
        ck_assert_uint_eq(st1.timers - st0.timers, 1);
        ck_assert_uint_gt(st1.iterations, st0.iterations);

        s = source_free(s);
        ts = source_free(ts);
        st1 = get_stats(e);
        ck_assert_uint_eq(st1.io_sources, base.io_sources);
        ck_assert_uint_eq(st1.timer_sources, base.timer_sources);
}
END_TEST

/* engine_free() frees every source still attached, whatever its state: armed, spent,
 * disabled. Leaks show under ASan and valgrind; the signal is unblocked again. */
START_TEST(test_engine_free_all) {
        _cleanup_pair_ int p[2] = PAIR_NULL, q[2] = PAIR_NULL, w[2] = PAIR_NULL;
        IoRec armed = { 0 }, spent = { 0 }, off = { 0 };
        TimerRec pending = { 0 }, fired = { 0 }, disabled = { 0 };
        DeferRec on = { 0 }, idle = { 0 };
        SigRec sig = { 0 };
        EngineSource *s;

        make_pipe(p);
        make_pipe(q);
        make_pipe(w);
        {
                _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);

                add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &armed);
                add_io(e, q[0], ENGINE_IN, ENGINE_ONESHOT, &spent);
                s = add_io(e, w[0], ENGINE_IN, ENGINE_EDGE, &off);
                ck_assert_int_eq(source_set_enabled(s, false), 0);
                write_byte(p[1]);
                write_byte(q[1]);
                add_timer_after(e, 3600 * NSEC_PER_SEC, 0, &pending);
                add_timer_after(e, 0, 0, &fired);
                s = add_timer_after(e, MSEC(1), 0, &disabled);
                ck_assert_int_eq(source_set_enabled(s, false), 0);
                add_defer(e, &on);
                s = add_defer(e, &idle);
                ck_assert_int_eq(source_set_enabled(s, false), 0);
                ck_assert_int_eq(engine_add_signal(e, &s, SIGUSR1, sig_rec_cb, &sig), 0);
                STEP_UNTIL(e, armed.calls >= 1 && spent.calls >= 1 && fired.calls >= 1);
                ck_assert(signal_blocked(SIGUSR1));
        }
        ck_assert(!signal_blocked(SIGUSR1));
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void engine_loop_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "loop", 30);
        tcase_add_test(tc, test_exit_code);
        tcase_add_test(tc, test_callback_failure);
        tcase_add_test(tc, test_now);
        tcase_add_test(tc, test_stats_and_names);
        tcase_add_test(tc, test_engine_free_all);
}
