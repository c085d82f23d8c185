/* test-engine-removal.c - removing sources: in callbacks, in a batch, fds reused and closed
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

/* ---- removal ---- */

START_TEST(test_free_in_own_callback) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec r = { .free_self = true };
        EngineSource *s;
        uint32_t base;

        make_pipe(p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        /* Counts are relative: the engine may count internal sources of its own. */
        base = get_stats(e).io_sources;
        s = add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &r);
        r.self = &s;
        write_byte(p[1]);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert_ptr_null(s);
        write_byte(p[1]);
        step_for(e, MSEC(30));
        ck_assert_uint_eq(r.calls, 1);
        ck_assert_uint_eq(get_stats(e).io_sources, base);

        /* The fd is free for a new source. */
        r = (IoRec){ 0 };
        s = add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &r);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
}
END_TEST

START_TEST(test_free_other_in_batch) {
        _cleanup_pair_ int p[2] = PAIR_NULL, q[2] = PAIR_NULL;
        IoRec a = { 0 }, b = { 0 };
        EngineSource *sa, *sb;
        uint32_t base;

        make_pipe(p);
        make_pipe(q);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        base = get_stats(e).io_sources;
        sa = add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &a);
        sb = add_io(e, q[0], ENGINE_IN, ENGINE_EDGE, &b);
        a.free_other = &sb;
        b.free_other = &sa;
        step_for(e, MSEC(20));

        /* Both ready before one step: whichever runs first frees the other. */
        write_byte(p[1]);
        write_byte(q[1]);
        ck_assert_int_eq(engine_step(e, (int64_t)NSEC_PER_SEC), 0);
        step_for(e, MSEC(30));
        ck_assert_uint_eq(a.calls + b.calls, 1);
        ck_assert((sa == NULL) != (sb == NULL));
        ck_assert_uint_eq(get_stats(e).io_sources, base + 1);
}
END_TEST

/* An io event and a due timer in one iteration: whichever callback runs first frees the
 * other source, which then must not run. */
typedef struct Cross {
        EngineSource *io, *timer;
        unsigned io_calls, timer_calls;
} Cross;

static int cross_io_cb(EngineSource *s, int fd, uint32_t revents, void *userdata) {
        Cross *c = userdata;

        (void)s, (void)fd, (void)revents;
        c->io_calls++;
        c->timer = source_free(c->timer);
        return 0;
}

static int cross_timer_cb(EngineSource *s, uint64_t expirations, void *userdata) {
        Cross *c = userdata;

        (void)s, (void)expirations;
        c->timer_calls++;
        c->io = source_free(c->io);
        return 0;
}

START_TEST(test_free_cross_type_in_batch) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        Cross c = { 0 };
        uint64_t at;

        make_pipe(p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        ck_assert_int_eq(engine_add_io(e, &c.io, p[0], ENGINE_IN, ENGINE_EDGE, cross_io_cb, &c), 0);
        step_for(e, MSEC(20));
        at = engine_now(e, ENGINE_CLOCK_MONOTONIC);
        ck_assert_int_eq(engine_add_timer(e, &c.timer, ENGINE_CLOCK_MONOTONIC, at, MSEC(1),
                                          cross_timer_cb, &c), 0);
        write_byte(p[1]);
        ck_assert_int_eq(engine_step(e, (int64_t)NSEC_PER_SEC), 0);
        step_for(e, MSEC(30));
        write_byte(p[1]);
        step_for(e, MSEC(20));
        /* One of them ran (and freed the other); the survivor may have run again. */
        ck_assert((c.io == NULL) != (c.timer == NULL));
        ck_assert_uint_eq(c.io ? c.timer_calls : c.io_calls, 0);
        ck_assert_uint_ge(c.io ? c.io_calls : c.timer_calls, 1);
}
END_TEST

/* Whichever callback runs first frees the other source, closes its fd, puts a new pipe
 * at the same fd number and watches it: the other's pending event (same batch) must reach
 * neither the freed source nor the new one. */
typedef struct Swap {
        IoRec rec[2];
        EngineSource *src[2];
        int fd[2];       /* watched read ends */
        int wfd[2];      /* their write ends */
        IoRec fresh;
        EngineSource *fresh_src;
        int fresh_wfd;
        unsigned calls;
} Swap;

static int swap_cb(EngineSource *s, int fd, uint32_t revents, void *userdata) {
        Swap *w = source_get_userdata(s);
        unsigned me = fd == w->fd[0] ? 0 : 1, other = 1 - me;

        (void)userdata;
        ck_assert_int_eq(fd, w->fd[me]);
        w->calls++;
        if (!w->src[other])
                return 0;
        w->src[other] = source_free(w->src[other]);
        ck_assert_int_eq(close(w->fd[other]), 0);
        w->fresh_wfd = pipe_at(w->fd[other]);
        w->fresh_src = add_io(source_get_engine(s), w->fd[other], ENGINE_IN, ENGINE_EDGE,
                              &w->fresh);
        return 0;
}

START_TEST(test_free_reuse_fd_in_batch) {
        Swap w = { .fresh_wfd = -1 };
        int p[2], q[2];

        make_pipe(p);
        make_pipe(q);
        w.fd[0] = p[0], w.wfd[0] = p[1];
        w.fd[1] = q[0], w.wfd[1] = q[1];
        {
                _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);

                for (unsigned i = 0; i < 2; i++)
                        ck_assert_int_eq(engine_add_io(e, &w.src[i], w.fd[i], ENGINE_IN,
                                                       ENGINE_EDGE, swap_cb, &w), 0);
                step_for(e, MSEC(20));
                write_byte(w.wfd[0]);
                write_byte(w.wfd[1]);
                ck_assert_int_eq(engine_step(e, (int64_t)NSEC_PER_SEC), 0);
                step_for(e, MSEC(30));
                ck_assert_uint_eq(w.calls, 1);
                ck_assert_ptr_nonnull(w.fresh_src);
                ck_assert_uint_eq(w.fresh.calls, 0);

                /* The old pipe's writer is still open: more old data, still nothing new. */
                /* EPIPE once the old read side is fully gone: also fine. */
                (void)!write(w.wfd[w.src[0] ? 1 : 0], "x", 1);
                step_for(e, MSEC(30));
                ck_assert_uint_eq(w.fresh.calls, 0);
                ck_assert_uint_eq(w.calls, 1);

                write_byte(w.fresh_wfd);
                STEP_UNTIL(e, w.fresh.calls >= 1);
                ck_assert_uint_eq(w.fresh.calls, 1);
                ck_assert_uint_eq(w.fresh.revents, ENGINE_IN);
        }
        for (unsigned i = 0; i < 2; i++) {
                (void)safe_close(w.fd[i]);
                (void)safe_close(w.wfd[i]);
        }
        (void)safe_close(w.fresh_wfd);
}
END_TEST

/* _i: 0 the old file became ready before the free (event already queued in the backend),
 * 1 after the new source was set up. */
START_TEST(test_free_reuse_fd) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        _cleanup_close_ int keep = -1, fresh_w = -1;
        IoRec old = { 0 }, fresh = { 0 };
        EngineSource *s;
        int n;

        make_pipe(p);
        n = p[0];
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        s = add_io(e, n, ENGINE_IN, ENGINE_EDGE, &old);
        step_for(e, MSEC(20));

        /* keep holds the old file open, so it can still become ready (and no SIGPIPE). */
        keep = fcntl(n, F_DUPFD_CLOEXEC, 3);
        ck_assert_int_ge(keep, 0);
        if (_i == 0)
                write_byte(p[1]);
        s = source_free(s);
        ck_assert_int_eq(close(n), 0);
        p[0] = -1;
        fresh_w = pipe_at(n);
        p[0] = n;
        add_io(e, n, ENGINE_IN, ENGINE_EDGE, &fresh);
        if (_i == 1)
                write_byte(p[1]);

        step_for(e, MSEC(50));
        ck_assert_uint_eq(old.calls, 0);
        ck_assert_uint_eq(fresh.calls, 0);
        write_byte(p[1]);
        step_for(e, MSEC(30));
        ck_assert_uint_eq(fresh.calls, 0);

        write_byte(fresh_w);
        STEP_UNTIL(e, fresh.calls >= 1);
        ck_assert_uint_eq(fresh.calls, 1);
        ck_assert_uint_eq(old.calls, 0);
}
END_TEST

/* Freed and re-added on the same fd (same file) in one iteration: the new source sees the
 * current readiness once, the old one nothing. */
START_TEST(test_free_readd_same_fd) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec old = { 0 }, fresh = { 0 };
        EngineSource *s;

        make_pipe(p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        s = add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &old);
        step_for(e, MSEC(20));
        write_byte(p[1]);
        s = source_free(s);
        s = add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &fresh);
        STEP_UNTIL(e, fresh.calls >= 1);
        ck_assert_uint_eq(fresh.calls, 1);
        step_for(e, MSEC(30));
        ck_assert_uint_eq(fresh.calls, 1);
        ck_assert_uint_eq(old.calls, 0);
        write_byte(p[1]);
        STEP_UNTIL(e, fresh.calls >= 2);
        ck_assert_uint_eq(fresh.calls, 2);
}
END_TEST

/* Caller bug the engine survives: fd closed while watched, source freed afterwards.
 * _i: 0 the file dies with the fd (data queued before), 1 a dup keeps the file alive and it
 * keeps becoming ready (epoll keeps such a registration even after EPOLL_CTL_DEL fails). */
START_TEST(test_close_while_watched) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        _cleanup_close_ int keep = -1, fresh_w = -1;
        IoRec old = { 0 }, fresh = { 0 };
        EngineSource *s;
        int n;

        make_pipe(p);
        n = p[0];
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        s = add_io(e, n, ENGINE_IN, ENGINE_EDGE, &old);
        step_for(e, MSEC(20));
        if (_i == 1) {
                keep = fcntl(n, F_DUPFD_CLOEXEC, 3);
                ck_assert_int_ge(keep, 0);
        } else
                write_byte(p[1]);

        ck_assert_int_eq(close(n), 0);
        p[0] = -1;
        step_for(e, MSEC(20));
        old.calls = 0; /* may or may not have seen its file: backends differ here */
        s = source_free(s);

        fresh_w = pipe_at(n);
        p[0] = n;
        add_io(e, n, ENGINE_IN, ENGINE_EDGE, &fresh);
        if (_i == 1)
                write_byte(p[1]);
        step_for(e, MSEC(50));
        ck_assert_uint_eq(fresh.calls, 0);
        ck_assert_uint_eq(old.calls, 0);

        write_byte(fresh_w);
        STEP_UNTIL(e, fresh.calls >= 1);
        ck_assert_uint_eq(fresh.calls, 1);
        if (_i == 1) {
                write_byte(p[1]);
                step_for(e, MSEC(30));
                ck_assert_uint_eq(fresh.calls, 1);
                ck_assert_uint_eq(old.calls, 0);
        }
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void engine_removal_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "removal", 30);
        tcase_add_test(tc, test_free_in_own_callback);
        tcase_add_test(tc, test_free_other_in_batch);
        tcase_add_test(tc, test_free_cross_type_in_batch);
        tcase_add_test(tc, test_free_reuse_fd_in_batch);
        tcase_add_loop_test(tc, test_free_reuse_fd, 0, 2);
        tcase_add_test(tc, test_free_readd_same_fd);
        tcase_add_loop_test(tc, test_close_while_watched, 0, 2);
}
