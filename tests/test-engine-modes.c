/* test-engine-modes.c - io modes: oneshot and its arming, edge per wakeup, modify
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

/* ---- oneshot ---- */

START_TEST(test_oneshot_once_until_arm) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec r = { 0 };
        EngineSource *s;
        uint64_t t0;

        make_pipe(p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        s = add_io(e, p[0], ENGINE_IN, ENGINE_ONESHOT, &r);
        ck_assert(source_io_is_armed(s));
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 0);

        write_byte(p[1]);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert_uint_eq(r.revents, ENGINE_IN);
        ck_assert(!source_io_is_armed(s));

        /* Unread data and even new data: silence while disarmed. */
        step_for(e, MSEC(30));
        write_byte(p[1]);
        step_for(e, MSEC(30));
        ck_assert_uint_eq(r.calls, 1);
        ck_assert(!source_io_is_armed(s));

        /* Still ready: arming fires in the very next iteration, without new data. */
        ck_assert_int_eq(source_io_arm(s), 0);
        ck_assert(source_io_is_armed(s));
        t0 = mono_ns();
        ck_assert_int_eq(engine_step(e, (int64_t)(2 * NSEC_PER_SEC)), 0);
        ck_assert_uint_eq(r.calls, 2);
        ck_assert_uint_lt(mono_ns() - t0, slack_ns());
        ck_assert(!source_io_is_armed(s));

        /* Drained and armed: nothing until new data; arming an armed source is a no-op. */
        (void)drain_fd(p[0]);
        ck_assert_int_eq(source_io_arm(s), 0);
        ck_assert_int_eq(source_io_arm(s), 0);
        ck_assert(source_io_is_armed(s));
        step_for(e, MSEC(30));
        ck_assert_uint_eq(r.calls, 2);
        write_byte(p[1]);
        STEP_UNTIL(e, r.calls >= 3);
        ck_assert_uint_eq(r.calls, 3);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 3);
}
END_TEST

/* The usual pattern: drain and re-arm from inside the callback. */
START_TEST(test_oneshot_rearm_in_callback) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec r = { .drain = true, .rearm = true };
        EngineSource *s;

        make_pipe(p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        s = add_io(e, p[0], ENGINE_IN, ENGINE_ONESHOT, &r);
        for (unsigned k = 1; k <= 5; k++) {
                write_byte(p[1]);
                STEP_UNTIL(e, r.calls >= k);
                ck_assert_uint_eq(r.calls, k);
                ck_assert(source_io_is_armed(s));
        }
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 5);
}
END_TEST

/* ---- edge ---- */

/* _i: 0 pipe, 1 eventfd */
START_TEST(test_edge_per_wakeup) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec r = { 0 };
        EngineSource *s;
        EngineStats st0, st1;
        uint64_t wall, cpu;

        if (_i == 0)
                make_pipe(p);
        else
                p[0] = p[1] = make_eventfd();
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        s = add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &r);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 0);

        for (unsigned k = 1; k <= 3; k++) {
                if (_i == 0)
                        write_byte(p[1]);
                else
                        poke_eventfd(p[1]);
                STEP_UNTIL(e, r.calls >= k);
                ck_assert_uint_eq(r.calls, k);
                ck_assert(source_io_is_armed(s));
        }

        /* Data left unread, no new write: no callback, and no spinning while idle. */
        st0 = get_stats(e);
        wall = mono_ns();
        cpu = cpu_ns();
        step_for(e, MSEC(200));
        cpu = cpu_ns() - cpu;
        wall = mono_ns() - wall;
        st1 = get_stats(e);
        ck_assert_uint_eq(r.calls, 3);
        ck_assert_uint_eq(st1.events, st0.events);
        /* step_for() steps 10 ms at a time: a spinning engine returns at once, each time. */
        ck_assert_uint_le(st1.iterations - st0.iterations, 40);
        ck_assert_msg(cpu < wall / 2, "idle loop used %" PRIu64 " ns CPU in %" PRIu64 " ns",
                      cpu, wall);

        if (_i == 1)
                p[1] = -1; /* one fd, closed once */
}
END_TEST

/* ---- modify ---- */

START_TEST(test_modify_in_to_out) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec r = { 0 };
        EngineSource *s;

        make_socketpair(SOCK_STREAM, p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        s = add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &r);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 0);

        /* Writable all along: the armed source reports it once it asks for OUT. */
        modify(s, &r, ENGINE_OUT, ENGINE_EDGE);
        ck_assert(source_io_is_armed(s));
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert_uint_eq(r.revents, ENGINE_OUT);

        /* And back: readable data is reported, OUT no longer is. */
        modify(s, &r, ENGINE_IN, ENGINE_EDGE);
        ck_assert_int_eq(send(p[1], "x", 1, 0), 1);
        STEP_UNTIL(e, r.calls >= 2);
        ck_assert_uint_eq(r.calls, 2);
        ck_assert_uint_eq(r.revents, ENGINE_IN);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 2);
}
END_TEST

START_TEST(test_modify_mode) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec r = { .drain = true };
        EngineSource *s;

        make_pipe(p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        s = add_io(e, p[0], ENGINE_IN, ENGINE_ONESHOT, &r);

        /* Armed oneshot -> edge: stays armed, and keeps calling back per wakeup. */
        modify(s, &r, ENGINE_IN, ENGINE_EDGE);
        ck_assert(source_io_is_armed(s));
        write_byte(p[1]);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert(source_io_is_armed(s));
        write_byte(p[1]);
        STEP_UNTIL(e, r.calls >= 2);
        ck_assert_uint_eq(r.calls, 2);
        ck_assert(source_io_is_armed(s));

        /* Armed edge -> oneshot: one more callback, then disarmed. */
        modify(s, &r, ENGINE_IN, ENGINE_ONESHOT);
        ck_assert(source_io_is_armed(s));
        write_byte(p[1]);
        STEP_UNTIL(e, r.calls >= 3);
        ck_assert_uint_eq(r.calls, 3);
        ck_assert(!source_io_is_armed(s));
        write_byte(p[1]);
        step_for(e, MSEC(30));
        ck_assert_uint_eq(r.calls, 3);
}
END_TEST

START_TEST(test_modify_disarmed_stays_disarmed) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec r = { 0 };
        EngineSource *s;

        make_pipe(p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        s = add_io(e, p[0], ENGINE_IN, ENGINE_ONESHOT, &r);
        write_byte(p[1]);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert(!source_io_is_armed(s));

        /* Still readable; changed events do not arm it: no callback. */
        modify(s, &r, ENGINE_IN | ENGINE_RDHUP, ENGINE_ONESHOT);
        ck_assert(!source_io_is_armed(s));
        step_for(e, MSEC(30));
        ck_assert_uint_eq(r.calls, 1);

        /* Even to edge mode. */
        modify(s, &r, ENGINE_IN, ENGINE_EDGE);
        ck_assert(!source_io_is_armed(s));
        write_byte(p[1]);
        step_for(e, MSEC(30));
        ck_assert_uint_eq(r.calls, 1);

        /* Armed: fires at once (still ready), then is an edge source. */
        ck_assert_int_eq(source_io_arm(s), 0);
        ck_assert(source_io_is_armed(s));
        STEP_UNTIL(e, r.calls >= 2);
        ck_assert_uint_eq(r.calls, 2);
        ck_assert(source_io_is_armed(s));
        write_byte(p[1]);
        STEP_UNTIL(e, r.calls >= 3);
        ck_assert_uint_eq(r.calls, 3);
        ck_assert(source_io_is_armed(s));
}
END_TEST

START_TEST(test_modify_enable) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec r = { 0 };
        EngineSource *s;

        make_pipe(p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        s = add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &r);
        ck_assert(source_get_enabled(s));

        /* Disabled io: disarmed, silent. */
        ck_assert_int_eq(source_set_enabled(s, false), 0);
        ck_assert(!source_get_enabled(s));
        ck_assert(!source_io_is_armed(s));
        write_byte(p[1]);
        step_for(e, MSEC(30));
        ck_assert_uint_eq(r.calls, 0);

        ck_assert_int_eq(source_set_enabled(s, true), 0);
        ck_assert(source_io_is_armed(s));
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
}
END_TEST

/* ---- tcases --------------------------------------------------------------------------- */

void engine_modes_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "oneshot", 30);
        tcase_add_test(tc, test_oneshot_once_until_arm);
        tcase_add_test(tc, test_oneshot_rearm_in_callback);

        tc = test_tcase(s, "edge", 30);
        tcase_add_loop_test(tc, test_edge_per_wakeup, 0, 2);

        tc = test_tcase(s, "modify", 30);
        tcase_add_test(tc, test_modify_in_to_out);
        tcase_add_test(tc, test_modify_mode);
        tcase_add_test(tc, test_modify_disarmed_stays_disarmed);
        tcase_add_test(tc, test_modify_enable);
}
