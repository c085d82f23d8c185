/* test-engine.c - the engine contract of engine.h, run once per backend
 *
 * meson runs this binary twice, with EVD_TEST_BACKEND=io_uring and EVD_TEST_BACKEND=epoll;
 * every engine a test creates uses that backend, so every test covers both. io_uring-only
 * tests return early on epoll. The io_uring run exits 77 (skip) only when the kernel refuses
 * io_uring (-ENOSYS/-EPERM).
 *
 * No test sleeps blindly: STEP_UNTIL() steps the engine with short timeouts until a condition
 * holds and fails when a watchdog deadline passes, so an engine bug fails instead of hanging;
 * "nothing happens" is observed by stepping for a fixed time (step_for()). Timing bounds
 * and watchdogs scale with EVD_UNDER_VALGRIND. Every fd is closed and every engine freed, so
 * CK_FORK=no under valgrind is leak-free. Declaration order matters for that: fds are
 * declared before the engine, so the engine (and its sources) goes first, as the ownership
 * rule in engine.h asks.
 *
 * The suite "engine", one file per concern (each adds its TCases, in this order):
 *   test-engine-fd-types.c    fd types, event kinds        (fd-types, events)
 *   test-engine-modes.c       oneshot, edge, modify        (oneshot, edge, modify)
 *   test-engine-removal.c     freeing sources              (removal)
 *   test-engine-add-errors.c  refused adds                 (add-errors)
 *   test-engine-scale.c       many fds, a million timers   (scale)
 *   test-engine-timers.c      timers                       (timers)
 *   test-engine-timer-mem.c   timers in the caller's memory (timer-mem)
 *   test-engine-signals.c     signals                      (signals)
 *   test-engine-defer.c       deferred work                (defer)
 *   test-engine-loop.c        the loop                     (loop)
 *   test-engine-uring.c       io_uring specifics           (io_uring)
 *   test-engine-release.c     what the kernel lets go of   (release)
 *   test-engine-backend.c     backend selection            (backend)
 * Helpers: util-engine.[ch] (engines, STEP_UNTIL(), recorders), util-fd, util-check.
 */

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "test-engine.h"
#include "util-check.h"
#include "util-engine.h"
#include "util-json.h"

static Suite *engine_suite(void) {
        Suite *s = suite_create("engine");

        engine_fd_types_tests(s);
        engine_modes_tests(s);
        engine_removal_tests(s);
        engine_add_errors_tests(s);
        engine_scale_tests(s);
        engine_timers_tests(s);
        engine_timer_mem_tests(s);
        engine_signals_tests(s);
        engine_defer_tests(s);
        engine_loop_tests(s);
        engine_uring_tests(s);
        engine_release_tests(s);
        engine_backend_tests(s);
        return s;
}

int main(void) {
        const char *backend = getenv("EVD_TEST_BACKEND");

        if (streq(backend, "io_uring")) {
                arg_backend = ENGINE_BACKEND_IO_URING;
                arg_backend_name = "io_uring";
        } else if (streq(backend, "epoll")) {
                arg_backend = ENGINE_BACKEND_EPOLL;
                arg_backend_name = "epoll";
        } else if (backend) {
                fprintf(stderr, "EVD_TEST_BACKEND=%s: want io_uring or epoll\n", backend);
                return 1;
        }
        if (getenv("EVD_UNDER_VALGRIND"))
                arg_slow = 10;
        /* Writes to pipes whose reader is gone must fail with EPIPE, not kill the test. */
        (void)signal(SIGPIPE, SIG_IGN);

        /* Skip (77) only where the kernel refuses io_uring; the epoll run still covers all. */
        if (test_uring_refused())
                return 77;
        return test_run_suite(engine_suite());
}
