/* test-engine-release.c - removal: what the engine let go of, the kernel lets go of
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

/* ---- removal: what the engine let go of, the kernel lets go of ---- */

static bool peer_closed(int fd) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDHUP };

        ck_assert_int_ge(poll(&pfd, 1, 0), 0);
        return (pfd.revents & (POLLHUP | POLLRDHUP)) != 0;
}

/* A source freed while its poll has a wakeup in flight. With DEFER_TASKRUN the wakeup waits
 * for the next io_uring_enter, and a POLL_REMOVE met there finds the poll owned by it and
 * fails with -EALREADY: a remove that is not checked leaves the poll armed, holding the
 * file, so closing the last fd does not close the socket and its peer never sees EOF. */
START_TEST(test_release_free_with_wakeup_in_flight) {
        unsigned rounds = arg_slow > 1 ? 100 : 1000;
        EngineMode mode = _i ? ENGINE_ONESHOT : ENGINE_EDGE;
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);

        for (unsigned i = 0; i < rounds; i++) {
                _cleanup_close_ int peer = -1;
                IoRec r = { 0 };
                EngineSource *s;
                int p[2];

                make_socketpair(SOCK_STREAM, p);
                peer = p[1];
                s = add_io(e, p[0], ENGINE_IN, mode, &r);
                ck_assert_int_eq(engine_step(e, 0), 0); /* the poll is in the kernel */
                write_byte(peer);                       /* and now has a wakeup pending */
                s = source_free(s);
                ck_assert_int_eq(close(p[0]), 0);
                STEP_UNTIL(e, peer_closed(peer));
                ck_assert_uint_eq(r.calls, 0);
        }
}
END_TEST

/* The same for a mode change (a new poll replaces the old one) followed by the free. */
START_TEST(test_release_modify_then_free_in_flight) {
        unsigned rounds = arg_slow > 1 ? 100 : 1000;
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);

        for (unsigned i = 0; i < rounds; i++) {
                _cleanup_close_ int peer = -1;
                IoRec r = { 0 };
                EngineSource *s;
                int p[2];

                make_socketpair(SOCK_STREAM, p);
                peer = p[1];
                s = add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &r);
                ck_assert_int_eq(engine_step(e, 0), 0);
                write_byte(peer);
                modify(s, &r, ENGINE_IN, ENGINE_ONESHOT);
                ck_assert_int_eq(engine_step(e, 0), 0);
                s = source_free(s);
                ck_assert_int_eq(close(p[0]), 0);
                STEP_UNTIL(e, peer_closed(peer));
        }
}
END_TEST

/* Any sequence of requests that is valid on epoll is valid on io_uring: here 40 changes of
 * mode, events and arming between two iterations (each once took a 4-bit poll generation
 * of its own, and the 16th failed), five times over. */
START_TEST(test_modify_many_between_iterations) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec r = { .drain = true };
        EngineSource *s;

        make_pipe(p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        s = add_io(e, p[0], ENGINE_IN, ENGINE_ONESHOT, &r);
        for (unsigned round = 0; round < 5; round++) {
                for (unsigned i = 0; i < 40; i++) {
                        modify(s, &r, (i % 3) ? ENGINE_IN : ENGINE_IN | ENGINE_RDHUP,
                               (i % 2) ? ENGINE_ONESHOT : ENGINE_EDGE);
                        if (i % 5 == 0) {
                                ck_assert_int_eq(source_set_enabled(s, false), 0);
                                ck_assert_int_eq(source_set_enabled(s, true), 0);
                        }
                }
                modify(s, &r, ENGINE_IN, ENGINE_EDGE);
                ck_assert(source_io_is_armed(s));
                ck_assert_int_eq(engine_step(e, 0), 0);
        }
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 0);

        /* It behaves as the last request said: edge, IN, armed. */
        write_byte(p[1]);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert(source_io_is_armed(s));
        write_byte(p[1]);
        STEP_UNTIL(e, r.calls >= 2);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 2);
        ck_assert_uint_eq(r.all, ENGINE_IN);
        s = source_free(s);
}
END_TEST

/* An events change on an armed poll is one poll update (5.13+), not a remove and an add. */
START_TEST(test_uring_poll_update) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec r = { 0 };
        EngineStats st0, st1;
        EngineSource *s;

        make_socketpair(SOCK_STREAM, p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        if (!is_uring(e))
                return;
        ck_assert_msg(engine_features(e) & ENGINE_FEATURE_POLL_UPDATE, "features 0x%x",
                      engine_features(e));
        s = add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &r);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 0);

        st0 = get_stats(e);
        modify(s, &r, ENGINE_OUT, ENGINE_EDGE);
        STEP_UNTIL(e, r.calls >= 1);
        st1 = get_stats(e);
        ck_assert_uint_eq(r.revents, ENGINE_OUT);
        ck_assert_uint_eq(st1.poll_updates - st0.poll_updates, 1);
        ck_assert_uint_eq(st1.submissions - st0.submissions, 1);

        /* The updated poll is still multishot and now reports IN only. */
        modify(s, &r, ENGINE_IN, ENGINE_EDGE);
        ck_assert_int_eq(send(p[1], "x", 1, 0), 1);
        STEP_UNTIL(e, r.calls >= 2);
        ck_assert_uint_eq(r.revents, ENGINE_IN);
        ck_assert_int_eq(send(p[1], "y", 1, 0), 1);
        STEP_UNTIL(e, r.calls >= 3);
        ck_assert_uint_eq(get_stats(e).poll_updates - st0.poll_updates, 2);
        s = source_free(s);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void engine_release_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "release", 60);
        tcase_add_loop_test(tc, test_release_free_with_wakeup_in_flight, 0, 2);
        tcase_add_test(tc, test_release_modify_then_free_in_flight);
        tcase_add_test(tc, test_modify_many_between_iterations);
        tcase_add_test(tc, test_uring_poll_update);
}
