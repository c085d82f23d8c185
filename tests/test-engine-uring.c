/* test-engine-uring.c - io_uring specifics: a full SQ, an iteration's share of the CQ,
 * rounding, CQ overflow, ring growth, fallback when features are missing
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
#include <sys/prctl.h>
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

/* ---- io_uring specifics ---- */

START_TEST(test_uring_sq_full) {
        EngineOptions o = { .sq_entries = 2 };
        EngineStats st;
        Many m;

        many_init(&m, 100);
        {
                _cleanup_(engine_freep) Engine *e = test_engine_new(&o);

                if (!is_uring(e)) {
                        many_done(&m, e);
                        return;
                }
                ck_assert_uint_eq(get_stats(e).sq_entries, 2);
                /* All added within one iteration: 100 SQEs through a 2-entry SQ. */
                many_bump(&m);
                many_add(&m, e, ENGINE_EDGE);
                many_expect_each(e, &m, 1);
                st = get_stats(e);
                ck_assert_uint_gt(st.sq_full, 0);
                many_bump(&m);
                many_expect_each(e, &m, 2);
                many_done(&m, e);
        }
}
END_TEST

/* The kernel runs only ~20 deferred completions per io_uring_enter: one iteration still
 * reports every source already ready, fetching the rest of the deferred work itself. */
START_TEST(test_uring_one_iteration_takes_all_ready) {
        Many m;

        many_init(&m, 200);
        {
                _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);

                if (!is_uring(e)) {
                        many_done(&m, e);
                        return;
                }
                many_add(&m, e, ENGINE_EDGE);
                step_for(e, MSEC(30));
                ck_assert_uint_eq(many_sum(&m), 0);
                many_bump(&m);
                ck_assert_int_ge(engine_step(e, MSEC(1000)), 0);
                ck_assert_uint_eq(many_sum(&m), m.n);
                many_expect_each(e, &m, 1);
                many_done(&m, e);
        }
}
END_TEST

/* A writer that never stops (another process) re-queues the polls' wakeups while an
 * iteration fetches them: one iteration still takes about one CQE per live poll (at least
 * 256), not a whole CQ's worth. It took up to the CQ's size, so a busy fd cost the daemon
 * a CQE per wakeup: 11 merged into each notification in evd-bench's scenario 10. Each
 * write wakes all 64 polls of the one eventfd (64 fds of it, as a daemon holds a file a
 * client sent 64 times), faster than an iteration takes their CQEs. */
#define BUSY_POLLS 64

static int count_cb(EngineSource *s, int fd, uint32_t revents, void *userdata) {
        (void)s, (void)fd, (void)revents;
        (*(unsigned *)userdata)++;
        return 0;
}

START_TEST(test_uring_busy_writer_bounded) {
        EngineOptions o = { .cq_entries = 8192 };
        EngineSource *src[BUSY_POLLS];
        int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), fds[BUSY_POLLS];
        unsigned calls = 0, most = 0;
        pid_t writer;

        ck_assert_int_ge(efd, 0);
        _cleanup_(engine_freep) Engine *e = test_engine_new(&o);
        if (!is_uring(e)) {
                ck_assert_int_eq(close(efd), 0);
                return;
        }
        for (int i = 0; i < BUSY_POLLS; i++) {
                ck_assert_int_ge(fds[i] = fcntl(efd, F_DUPFD_CLOEXEC, 3), 0);
                ck_assert_int_eq(engine_add_io(e, &src[i], fds[i], ENGINE_IN, ENGINE_EDGE, count_cb, &calls), 0);
        }
        writer = fork();
        ck_assert_int_ge(writer, 0);
        if (writer == 0) {
                uint64_t one = 1;

                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                for (;;)
                        (void)!write(efd, &one, sizeof(one));
        }
        STEP_UNTIL(e, calls >= 10 * BUSY_POLLS);
        for (int i = 0; i < 50; i++) {
                unsigned before = calls;

                ck_assert_int_ge(engine_step(e, MSEC(100)), 0);
                most = MAX(most, calls - before);
        }
        ck_assert_int_eq(kill(writer, SIGKILL), 0);
        ck_assert_int_eq(waitpid(writer, NULL, 0), writer);
        ck_assert_uint_gt(most, 0);
        ck_assert_msg(most <= 256, "%u callbacks in one iteration for %d polls", most, BUSY_POLLS);
        for (int i = 0; i < BUSY_POLLS; i++) {
                ck_assert_ptr_null(source_free(src[i]));
                ck_assert_int_eq(close(fds[i]), 0);
        }
        ck_assert_int_eq(close(efd), 0);
}
END_TEST

START_TEST(test_uring_sq_rounding) {
        EngineOptions o = { .sq_entries = 3, .cq_entries = 9 };

        _cleanup_(engine_freep) Engine *e = test_engine_new(&o);
        if (!is_uring(e))
                return;
        ck_assert_uint_eq(get_stats(e).sq_entries, 4);
        ck_assert_uint_eq(get_stats(e).cq_entries, 16);
}
END_TEST

START_TEST(test_uring_cq_overflow) {
        EngineOptions o = { .sq_entries = 2, .cq_entries = 4, .fixed_ring = true };
        EngineStats st;
        Many m;

        many_init(&m, 200);
        {
                _cleanup_(engine_freep) Engine *e = test_engine_new(&o);

                if (!is_uring(e)) {
                        many_done(&m, e);
                        return;
                }
                ck_assert_uint_eq(get_stats(e).cq_entries, 4);
                many_add(&m, e, ENGINE_EDGE);
                step_for(e, MSEC(30));
                ck_assert_uint_eq(many_sum(&m), 0);
                /* 200 completions for a 4-entry CQ that may not grow. No event is lost;
                 * a multishot poll the kernel ended for lack of CQ space is re-armed, and
                 * the new poll reports the (unread) level once more: at most one extra
                 * callback per source and overflow, and none while idle (engine.h). */
                many_bump(&m);
                many_expect_between(e, &m, 1, 2);
                st = get_stats(e);
                ck_assert_uint_gt(st.overflows, 0);
                ck_assert_uint_eq(st.ring_resizes, 0);
                ck_assert_uint_eq(st.cq_entries, 4);
                for (unsigned i = 0; i < m.n; i++)
                        m.counts[i] = 0;
                many_bump(&m);
                many_expect_between(e, &m, 1, 2);
                many_done(&m, e);
        }
}
END_TEST

START_TEST(test_uring_ring_growth) {
        unsigned n = MIN(raise_nofile(), 5000u);
        EngineStats st;
        Many m;

        ck_assert_uint_eq(n, 5000);
        many_init(&m, n);
        {
                _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);

                if (!is_uring(e)) {
                        many_done(&m, e);
                        return;
                }
                many_add(&m, e, ENGINE_EDGE);
                step_for(e, MSEC(30));
                many_bump(&m);
                many_expect_each(e, &m, 1);
                st = get_stats(e);
                ck_assert_msg(st.ring_resizes > 0 || st.cq_entries >= n,
                              "ring_resizes %" PRIu64 ", cq_entries %" PRIu32, st.ring_resizes,
                              st.cq_entries);
                /* One CQE per poll, rounded up to a power of two: not twice that (every
                 * idle watch paid for the mapped headroom). */
                ck_assert_msg(st.cq_entries < 2 * n, "cq_entries %" PRIu32 " for %u polls", st.cq_entries, n);
                many_bump(&m);
                many_expect_each(e, &m, 2);
                many_done(&m, e);
        }
}
END_TEST

/* With features switched off the engine must behave the same: a smoke run over edge,
 * oneshot, modify, free, timers and step timeouts. */
static const unsigned fallback_masks[] = {
        ENGINE_FEATURE_DEFER_TASKRUN | ENGINE_FEATURE_SINGLE_ISSUER,
        ENGINE_FEATURE_POLL_MULTISHOT,
        ENGINE_FEATURE_POLL_UPDATE,
        ENGINE_FEATURE_POLL_MULTISHOT | ENGINE_FEATURE_POLL_UPDATE,
        ENGINE_FEATURE_EXT_ARG,
        ENGINE_FEATURE_COOP_TASKRUN | ENGINE_FEATURE_TASKRUN_FLAG,
        ENGINE_FEATURE_CQE_SKIP,
        ENGINE_FEATURE_REGISTERED_RING,
        ENGINE_FEATURE_SUBMIT_ALL,
        ENGINE_FEATURE_NODROP,
        (1u << _ENGINE_FEATURE_COUNT) - 1,
};

/* What the io_uring backend cannot do without: it refuses to start (and AUTO picks epoll). */
#define URING_REQUIRED (ENGINE_FEATURE_POLL_MULTISHOT | ENGINE_FEATURE_NODROP)

START_TEST(test_uring_fallback) {
        EngineOptions o = { .disable_features = fallback_masks[_i] };
        _cleanup_pair_ int p[2] = PAIR_NULL, q[2] = PAIR_NULL;
        IoRec edge = { 0 }, once = { 0 };
        TimerRec t = { 0 };
        EngineSource *se, *so;
        EngineStats st;
        uint64_t t0;

        make_pipe(p);
        make_socketpair(SOCK_STREAM, q);
        if ((fallback_masks[_i] & URING_REQUIRED) && arg_backend == ENGINE_BACKEND_IO_URING) {
                Engine *refused = NULL;

                o.backend = ENGINE_BACKEND_IO_URING;
                ck_assert_int_eq(engine_new(&refused, &o), -EOPNOTSUPP);
                ck_assert_ptr_null(refused);
                o.backend = ENGINE_BACKEND_AUTO;
                unsetenv("EVD_BACKEND");
                ck_assert_int_eq(engine_new(&refused, &o), 0);
                ck_assert_str_eq(engine_backend_name(refused), "epoll");
                (void)engine_free(refused);
                return;
        }
        _cleanup_(engine_freep) Engine *e = test_engine_new(&o);
        if (!is_uring(e))
                return;

        /* Edge: a callback per write, none for data left unread. */
        se = add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &edge);
        step_for(e, MSEC(20));
        for (unsigned k = 1; k <= 3; k++) {
                write_byte(p[1]);
                STEP_UNTIL(e, edge.calls >= k);
                ck_assert_uint_eq(edge.calls, k);
        }
        step_for(e, MSEC(50));
        ck_assert_uint_eq(edge.calls, 3);

        /* Oneshot and modify. */
        so = add_io(e, q[0], ENGINE_IN, ENGINE_ONESHOT, &once);
        modify(so, &once, ENGINE_OUT, ENGINE_ONESHOT);
        STEP_UNTIL(e, once.calls >= 1);
        ck_assert_uint_eq(once.calls, 1);
        ck_assert_uint_eq(once.revents, ENGINE_OUT);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(once.calls, 1);
        ck_assert_int_eq(source_io_arm(so), 0);
        STEP_UNTIL(e, once.calls >= 2);
        ck_assert_uint_eq(once.calls, 2);

        /* Free with data pending. */
        write_byte(p[1]);
        se = source_free(se);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(edge.calls, 3);

        /* A timer, and step timeouts that are honoured: not stuck, not spinning. */
        add_timer_after(e, MSEC(10), 0, &t);
        STEP_UNTIL(e, t.calls >= 1);
        ck_assert_uint_eq(t.calls, 1);
        t0 = mono_ns();
        ck_assert_int_eq(engine_step(e, (int64_t)MSEC(50)), 0);
        ck_assert_uint_lt(mono_ns() - t0, MSEC(50) + slack_ns());
        st = get_stats(e);
        step_for(e, MSEC(200));
        ck_assert_uint_le(get_stats(e).iterations - st.iterations, 40);

        /* Last, so that the behaviour above is checked even when this fails. */
        ck_assert_msg((engine_features(e) & fallback_masks[_i]) == 0,
                      "features 0x%x, disabled 0x%x", engine_features(e), fallback_masks[_i]);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void engine_uring_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "io_uring", 60);
        tcase_add_test(tc, test_uring_sq_full);
        tcase_add_test(tc, test_uring_one_iteration_takes_all_ready);
        tcase_add_test(tc, test_uring_busy_writer_bounded);
        tcase_add_test(tc, test_uring_sq_rounding);
        tcase_add_test(tc, test_uring_cq_overflow);
        tcase_add_test(tc, test_uring_ring_growth);
        tcase_add_loop_test(tc, test_uring_fallback, 0, (int)ELEMENTSOF(fallback_masks));
}
