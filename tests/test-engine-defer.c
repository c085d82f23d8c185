/* test-engine-defer.c - deferred work: once per iteration, after io and timers, enabled from
 * a deferred callback
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

START_TEST(test_defer_per_iteration) {
        DeferRec d = { 0 };
        EngineStats st0, st1;
        EngineSource *s;

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        s = add_defer(e, &d);
        st0 = get_stats(e);
        for (unsigned k = 0; k < 10; k++)
                ck_assert_int_eq(engine_step(e, 0), 0);
        st1 = get_stats(e);
        ck_assert_uint_eq(d.calls, 10);
        ck_assert_uint_eq(st1.iterations - st0.iterations, 10);

        ck_assert_int_eq(source_set_enabled(s, false), 0);
        ck_assert(!source_get_enabled(s));
        for (unsigned k = 0; k < 3; k++)
                ck_assert_int_eq(engine_step(e, 0), 0);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(d.calls, 10);

        ck_assert_int_eq(source_set_enabled(s, true), 0);
        ck_assert_int_eq(engine_step(e, 0), 0);
        ck_assert_uint_eq(d.calls, 11);
        s = source_free(s);
        ck_assert_int_eq(engine_step(e, 0), 0);
        ck_assert_uint_eq(d.calls, 11);
}
END_TEST

START_TEST(test_defer_after_io_and_timers) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec r = { 0 };
        TimerRec t = { 0 };
        DeferRec d = { 0 };

        make_pipe(p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &r);
        add_defer(e, &d);
        step_for(e, MSEC(20));

        /* STEP_UNTIL stops right after the iteration that ran the io callback: the defer's
         * latest run is from that same iteration, after it. */
        write_byte(p[1]);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert_uint_gt(d.seq, r.seq);

        add_timer_after(e, MSEC(5), 0, &t);
        STEP_UNTIL(e, t.calls >= 1);
        ck_assert_uint_eq(t.calls, 1);
        ck_assert_uint_gt(d.seq, t.seq);
}
END_TEST

START_TEST(test_defer_enable_from_defer) {
        DeferRec a = { .disable_self = true }, b = { .disable_self = true };
        DeferRec selfish = { .free_self = true };
        EngineSource *sa, *sb, *ss;
        uint64_t t0;

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        /* b after a in creation order: a plain list walk would reach it in the same pass. */
        sa = add_defer(e, &a);
        sb = add_defer(e, &b);
        ck_assert_int_eq(source_set_enabled(sb, false), 0);
        a.enable = sb;

        ck_assert_int_eq(engine_step(e, 0), 0);
        ck_assert_uint_eq(a.calls, 1);
        ck_assert_uint_eq(b.calls, 0);
        ck_assert(source_get_enabled(sb));
        ck_assert(!source_get_enabled(sa));

        /* Nothing else pending: the step must not block before running b. */
        t0 = mono_ns();
        ck_assert_int_eq(engine_step(e, (int64_t)(5 * NSEC_PER_SEC)), 0);
        ck_assert_uint_lt(mono_ns() - t0, slack_ns());
        ck_assert_uint_eq(b.calls, 1);
        ck_assert_uint_eq(a.calls, 1);

        ss = add_defer(e, &selfish);
        selfish.self = &ss;
        ck_assert_int_eq(engine_step(e, 0), 0);
        ck_assert_int_eq(engine_step(e, 0), 0);
        ck_assert_uint_eq(selfish.calls, 1);
        ck_assert_ptr_null(ss);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void engine_defer_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "defer", 30);
        tcase_add_test(tc, test_defer_per_iteration);
        tcase_add_test(tc, test_defer_after_io_and_timers);
        tcase_add_test(tc, test_defer_enable_from_defer);
}
