/* test-daemon-timers.c - timers: after, at, immediate, intervals without drift, cancel
 *
 * Part of the daemon suite: test-daemon.c runs it (see there for how every test starts and
 * stops its daemon); the helpers are in util-rpc.h, util-json.h, util-fd.h.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "macro.h"
#include "test-daemon.h"
#include "util-check.h"
#include "util-daemon.h"
#include "util-fd.h"
#include "util-json.h"
#include "util-rpc.h"
#include "util-time.h"
#include "wire.h"

/* ---- timers ------------------------------------------------------------------------- */

START_TEST(test_timer_after) {
        TestDaemon d;
        TestClient c;
        json_t *m, *params;
        json_int_t t;
        double t0, elapsed, late;

        start(&d, &c, NULL);
        t0 = mono_now();
        t = add_timer(&c, 0.05, 0, 0, json_pack("{s:s}", "k", "v"));
        ck_assert_int_eq(status_int(&c, "timers"), 1);
        m = expect_notification(&c, "timer", "timer", t);
        elapsed = mono_now() - t0;
        params = member(m, "params");
        ck_assert_msg(elapsed >= 0.05 - 0.001, "fired after %.4f s, asked for 0.05", elapsed);
        ck_assert_int_eq(int_member(params, "expirations"), 1);
        late = num_member(params, "late");
        ck_assert_msg(late >= 0 && late <= elapsed, "late %.6f", late);
        assert_json(member(params, "tag"), "{\"k\":\"v\"}");
        json_decref(m);
        expect_quiet(&c, "timer", "timer", t);
        /* A fired timer without interval is gone. */
        ck_assert_int_eq(status_int(&c, "timers"), 0);
        call_error(&c, "cancel", json_pack("{s:I}", "timer", t), NULL, 0, -32002, "timer");
        stop(&d, &c);
}
END_TEST

/* `after` counts from when the daemon reads the request, not from when its loop iteration
 * began: another client holds the loop (debug-wedge) while this one sends its timer late
 * in that iteration. With the iteration's cached clock the timer fired up to the wedge's
 * length before `after` had passed (seen with io_uring, which reads the second client in
 * the same iteration). */
START_TEST(test_timer_after_counts_from_request) {
        const char *const args[] = { NULL };
        TestDaemon d;
        TestClient c, wedger;
        json_t *m, *req;
        json_int_t t;
        double t0, elapsed;

        setenv("EVD_DEBUG", "1", 1);
        start(&d, &c, args);
        unsetenv("EVD_DEBUG"); /* the daemon has it; later tests (CK_FORK=no) must not */
        ck_assert_int_eq(test_client_connect(&wedger, d.socket), 0);
        test_client_send(&wedger, jsonrpc_request_new(1, "debug-wedge", json_pack("{s:f}", "seconds", 0.4)),
                         NULL, 0);
        (void)poll(NULL, 0, 250); /* well into the wedge: the point is to arrive during it */
        t0 = mono_now();
        req = jsonrpc_request_new(7, "timer", json_pack("{s:f}", "after", 0.3));
        test_client_send(&c, req, NULL, 0);
        m = test_client_recv(&c, TIMEOUT);
        ck_assert_ptr_nonnull(m);
        t = int_member(member(m, "result"), "timer");
        json_decref(m);
        m = expect_notification(&c, "timer", "timer", t);
        elapsed = mono_now() - t0;
        ck_assert_msg(elapsed >= 0.3 - 0.001, "fired %.4f s after the request, asked for 0.3", elapsed);
        json_decref(m);
        test_client_close(&wedger);
        stop(&d, &c);
}
END_TEST

START_TEST(test_timer_at) {
        TestDaemon d;
        TestClient c;
        json_t *m;
        json_int_t t;
        double at;

        start(&d, &c, NULL);
        at = real_now() + 0.05;
        t = add_timer(&c, 0, at, 0, NULL);
        m = expect_notification(&c, "timer", "timer", t);
        ck_assert_msg(real_now() >= at - 0.001, "fired %.4f s early", at - real_now());
        ck_assert_int_eq(int_member(member(m, "params"), "expirations"), 1);
        ck_assert(num_member(member(m, "params"), "late") >= 0);
        ck_assert(json_is_null(member(member(m, "params"), "tag")));
        json_decref(m);
        stop(&d, &c);
}
END_TEST

/* after 0 and an at in the past fire at once. */
START_TEST(test_timer_immediate) {
        TestDaemon d;
        TestClient c;
        json_t *m;
        json_int_t t1, t2, t3;

        start(&d, &c, NULL);
        t1 = add_timer(&c, 0, 0, 0, json_string("zero"));
        t2 = add_timer(&c, 0, real_now() - 10, 0, json_string("past"));
        t3 = add_timer(&c, 0, 1e-9, 0, NULL); /* 1970 */
        m = expect_notification(&c, "timer", "timer", t1);
        assert_json(member(member(m, "params"), "tag"), "\"zero\"");
        json_decref(m);
        m = expect_notification(&c, "timer", "timer", t2);
        assert_json(member(member(m, "params"), "tag"), "\"past\"");
        ck_assert(num_member(member(m, "params"), "late") >= 0);
        json_decref(m);
        json_decref(expect_notification(&c, "timer", "timer", t3));
        stop(&d, &c);
}
END_TEST

/*
 * A repeating timer does not drift: its n-th expiry is at first + n * interval. With a 2 ms
 * interval over 300 ms, a schedule taken from "now" at each expiry would lose the daemon's
 * wake-up latency every time (tens of microseconds at least: several milliseconds in all).
 * The `timers` listing gives n (expirations) and `next` (seconds to the next expiry); both
 * ends of each interval below are measured on this side, with a millisecond of slack.
 */
START_TEST(test_timer_interval_no_drift) {
        const double after = 0.002, interval = 0.002, slack = 0.0015;
        TestDaemon d;
        TestClient c;
        json_t *item, *m;
        json_int_t t, n, notified = 0;
        double t0, t1, ts, tr, next, first_lo, first_hi, expect;
        long long window_end;

        start(&d, &c, NULL);
        t0 = mono_now();
        t = add_timer(&c, after, 0, interval, json_string("tick"));
        t1 = mono_now();
        window_end = ms_now() + 300;
        while (ms_now() < window_end) {
                m = wait_for(&c, "timer", "timer", t, (int)MAX(window_end - ms_now(), 0LL));
                if (!m)
                        break;
                ck_assert_int_ge(int_member(member(m, "params"), "expirations"), 1);
                ck_assert(num_member(member(m, "params"), "late") >= 0);
                assert_json(member(member(m, "params"), "tag"), "\"tick\"");
                notified += int_member(member(m, "params"), "expirations");
                json_decref(m);
        }
        ts = mono_now();
        item = list_item(&c, "timers", 0, "timer", t);
        tr = mono_now();
        ck_assert_ptr_nonnull(item);
        n = int_member(item, "expirations");
        next = num_member(item, "next");
        ck_assert(fabs(num_member(item, "interval") - interval) < 1e-9);
        json_decref(item);

        /* Every notified expiry is counted; it really repeated (at least half the ticks). */
        ck_assert_int_le(notified, n);
        expect = (ts - t1 - after) / interval;
        ck_assert_msg((double)n >= expect / 2, "%lld expirations in %.3f s", (long long)n, ts - t0);
        ck_assert_msg((double)n <= (tr - t0 - after) / interval + 1, "%lld expirations: too many",
                      (long long)n);
        /* The next deadline, as the daemon saw it (between ts and tr), minus n intervals,
         * is the first deadline, which was set between t0 and t1. */
        first_lo = ts + next - (double)n * interval;
        first_hi = tr + next - (double)n * interval;
        ck_assert_msg(first_hi >= t0 + after - slack && first_lo <= t1 + after + slack,
                      "drift: expiry %lld is due %.6f..%.6f s after the first was set, expected "
                      "%.6f..%.6f",
                      (long long)n, first_lo + (double)n * interval - t0,
                      first_hi + (double)n * interval - t0, after + (double)n * interval,
                      t1 - t0 + after + (double)n * interval);
        call_ok(&c, "cancel", json_pack("{s:I}", "timer", t), NULL, 0);
        stop(&d, &c);
}
END_TEST

START_TEST(test_timer_cancel) {
        TestDaemon d;
        TestClient c;
        json_t *r;
        json_int_t t1, t2;

        start(&d, &c, NULL);
        t1 = add_timer(&c, 0.05, 0, 0, NULL);
        r = test_client_result(&c, "cancel", json_pack("{s:I}", "timer", t1), NULL, 0);
        assert_json(r, "{}");
        json_decref(r);
        ck_assert_int_eq(status_int(&c, "timers"), 0);
        call_error(&c, "cancel", json_pack("{s:I}", "timer", t1), NULL, 0, -32002, "timer");
        call_error(&c, "cancel", json_pack("{s:I}", "timer", t1 + 1000), NULL, 0, -32002, "timer");
        expect_quiet(&c, "timer", "timer", t1);

        /* A repeating timer: no notification after the cancel reply. */
        t2 = add_timer(&c, 0.002, 0, 0.002, NULL);
        ck_assert_int_ne(t2, t1);
        json_decref(expect_notification(&c, "timer", "timer", t2));
        json_decref(expect_notification(&c, "timer", "timer", t2));
        call_ok(&c, "cancel", json_pack("{s:I}", "timer", t2), NULL, 0);
        /* Those that arrived before the reply are in the backlog: drop them. */
        while ((r = wait_for(&c, "timer", "timer", t2, 0)))
                json_decref(r);
        expect_quiet(&c, "timer", "timer", t2);
        ck_assert_int_eq(status_int(&c, "timers"), 0);
        stop(&d, &c);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void daemon_timers_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "timer", 60);
        tcase_add_test(tc, test_timer_after);
        tcase_add_test(tc, test_timer_after_counts_from_request);
        tcase_add_test(tc, test_timer_at);
        tcase_add_test(tc, test_timer_immediate);
        tcase_add_test(tc, test_timer_interval_no_drift);
        tcase_add_test(tc, test_timer_cancel);
}
