/* test-libevd-timers.c - timers: after, interval and cancel, at (asynchronous), cancel from
 * the callback
 *
 * Part of the libevd suite: test-libevd.c runs it with the fixtures of util-libevd.h (a
 * daemon and a connected `client` per test).
 */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evd.h"
#include "test-libevd.h"
#include "util-check.h"
#include "util-daemon.h"
#include "util-fd.h"
#include "util-libevd.h"

/* ---- timers ---- */

START_TEST(test_timer_after) {
        Seen s = {0};
        uint64_t id, t0 = now_ms();

        ck_assert_int_eq(evd_timer_after(client, 50000, 0, on_timer, &s, WAIT_MS, &id), 0);
        ck_assert_uint_eq(status_count(client, "timers"), 1);
        ck_assert(run_until(&s.flag, WAIT_MS));
        ck_assert_uint_ge(now_ms() - t0, 50);
        ck_assert_uint_eq(s.id, id);
        ck_assert_uint_eq(s.expirations, 1);
        /* A one-shot timer is gone once it fired. */
        ck_assert_int_eq(evd_timer_cancel(client, id, WAIT_MS), -ENOENT);
        ck_assert_uint_eq(status_count(client, "timers"), 0);

        ck_assert_int_eq(evd_timer_after(client, 0, 10, on_timer, &s, WAIT_MS, &id), -EINVAL);
        ck_assert_int_eq(evd_timer_after(client, 0, 0, NULL, &s, WAIT_MS, &id), -EINVAL);
        ck_assert_int_eq(evd_timer_after(client, (uint64_t)1 << 62, 0, on_timer, &s, WAIT_MS, &id),
                         -EINVAL);
}
END_TEST

START_TEST(test_timer_interval_cancel) {
        Seen s = {0}, never = {0};
        uint64_t id, id2;

        ck_assert_int_eq(evd_timer_after(client, 10000, 10000, on_timer, &s, WAIT_MS, &id), 0);
        ck_assert_int_eq(evd_timer_after(client, 60000000, 0, on_timer, &never, WAIT_MS, &id2), 0);
        ck_assert_int_eq(status_count(client, "timers"), 2);
        while (s.expirations < 5) {
                s.flag = false;
                ck_assert(run_until(&s.flag, WAIT_MS));
        }
        ck_assert_int_eq(evd_timer_cancel(client, id, WAIT_MS), 0);
        s.calls = 0;
        run_for(60);
        ck_assert_uint_eq(s.calls, 0);
        ck_assert_int_eq(evd_timer_cancel(client, id, WAIT_MS), -ENOENT);
        ck_assert_int_eq(evd_timer_cancel(client, id2, WAIT_MS), 0);
        ck_assert_uint_eq(never.calls, 0);
        ck_assert_uint_eq(status_count(client, "timers"), 0);
}
END_TEST

START_TEST(test_timer_at_async) {
        struct timespec ts;
        Seen s = {0}, s2 = {0};
        Done d = {0}, c = {0};
        uint64_t id, id2, at;

        clock_gettime(CLOCK_REALTIME, &ts);
        at = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000 + 50000;
        ck_assert_int_eq(evd_timer_at_async(client, at, 0, on_timer, &s, on_done, &d, &id), 0);
        ck_assert(run_until(&d.flag, WAIT_MS));
        ck_assert_int_eq(d.r, 0);
        ck_assert(json_is_integer(json_object_get(d.result, "timer")));
        ck_assert(run_until(&s.flag, WAIT_MS));
        clock_gettime(CLOCK_REALTIME, &ts);
        ck_assert_uint_ge((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000, at);

        /* In the past: at once. Sync form. */
        ck_assert_int_eq(evd_timer_at(client, 1000000, 0, on_timer, &s2, WAIT_MS, &id2), 0);
        ck_assert(run_until(&s2.flag, WAIT_MS));

        /* Cancelled before it fires (async): never called. */
        s2 = (Seen){0};
        ck_assert_int_eq(evd_timer_after_async(client, 30000, 0, on_timer, &s2, NULL, NULL, &id2),
                         0);
        ck_assert_int_eq(evd_timer_cancel_async(client, id2, on_done, &c), 0);
        ck_assert(run_until(&c.flag, WAIT_MS));
        ck_assert_int_eq(c.r, 0);
        run_for(80);
        ck_assert_uint_eq(s2.calls, 0);
        json_decref(d.result);
        json_decref(c.result);
}
END_TEST

/* A callback that cancels its own timer and removes its own watch. */
static int on_timer_cancel_self(struct evd_client *c, uint64_t timer, uint64_t expirations,
                                void *userdata) {
        Seen *s = userdata;

        s->calls++;
        s->flag = true;
        ck_assert_int_eq(evd_timer_cancel(c, timer, WAIT_MS), 0);
        return 0;
}

START_TEST(test_timer_cancel_from_callback) {
        Seen s = {0};
        uint64_t id;

        ck_assert_int_eq(
                evd_timer_after(client, 1000, 5000, on_timer_cancel_self, &s, WAIT_MS, &id), 0);
        ck_assert(run_until(&s.flag, WAIT_MS));
        run_for(50);
        ck_assert_uint_eq(s.calls, 1);
        ck_assert_uint_eq(status_count(client, "timers"), 0);
}
END_TEST

/* ---- tests --------------------------------------------------------------------------- */

void libevd_timers_tests(TCase *tc_timer) {
        tcase_add_test(tc_timer, test_timer_after);
        tcase_add_test(tc_timer, test_timer_interval_cancel);
        tcase_add_test(tc_timer, test_timer_at_async);
        tcase_add_test(tc_timer, test_timer_cancel_from_callback);
}
