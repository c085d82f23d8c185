/*
 * test-libevd.c - libevd against the real daemon: every call in its synchronous and
 * asynchronous form, pipelining, error surfacing, event-loop integration, and surviving
 * a daemon restart (reconnect, re-registration, remaining timer time).
 *
 * Each test starts its own evd (tests/util-daemon.h) in a private directory, with the
 * backend from $EVD_TEST_BACKEND. Waiting is always bounded: run_until() dispatches and
 * polls evd_client_fd() like a program's own event loop would.
 *
 * The suite "libevd", one file per concern; TCases with their fixtures are made here, in
 * this order: connect, watch, quota, timer, call, debug, reconnect.
 *   test-libevd-connect.c    connecting                       (connect)
 *   test-libevd-watch.c      watches and their quota          (watch, quota)
 *   test-libevd-timers.c     timers                           (timer)
 *   test-libevd-calls.c      evd_call, timeouts, event loops  (call, debug)
 *   test-libevd-reconnect.c  losing the daemon                (debug, reconnect)
 * Helpers: util-libevd.[ch] (fixtures, run_until(), recorders), util-daemon, util-fd.
 */

#include <check.h>
#include <signal.h>
#include <stdlib.h>

#include "test-libevd.h"
#include "util-check.h"
#include "util-libevd.h"

static TCase *fixture_tcase(Suite *s, const char *name, int timeout_s, void (*setup_fn)(void)) {
        TCase *tc = timeout_s ? test_tcase(s, name, timeout_s) : tcase_create(name);

        if (!timeout_s)
                suite_add_tcase(s, tc);
        tcase_add_checked_fixture(tc, setup_fn, teardown);
        return tc;
}

static Suite *libevd_suite(void) {
        Suite *s = suite_create("libevd");
        TCase *tc_connect = fixture_tcase(s, "connect", 0, setup);
        TCase *tc_watch = fixture_tcase(s, "watch", 60 * arg_slow, setup);
        TCase *tc_quota = fixture_tcase(s, "quota", 0, setup_quota);
        TCase *tc_timer = fixture_tcase(s, "timer", 60 * arg_slow, setup);
        TCase *tc_call = fixture_tcase(s, "call", 0, setup);
        TCase *tc_debug = fixture_tcase(s, "debug", 0, setup_debug);
        TCase *tc_reconnect = fixture_tcase(s, "reconnect", 60 * arg_slow, setup);

        libevd_connect_tests(tc_connect);
        libevd_watch_tests(tc_watch, tc_quota);
        libevd_timers_tests(tc_timer);
        libevd_calls_tests(tc_call, tc_debug);
        libevd_reconnect_tests(tc_debug, tc_reconnect);
        return s;
}

int main(void) {
        if (test_uring_refused())
                return 77;
        if (getenv("EVD_UNDER_VALGRIND"))
                arg_slow = 10;
        (void)signal(SIGPIPE, SIG_IGN);

        return test_run_suite(libevd_suite());
}
