/* test-fairness.c - one user's timers cannot take the daemon from the others
 *
 * The rule (PROTOCOL.md, section 9): each uid's timer expirations are delivered at no more
 * than max-timer-rate-per-uid per second (bursts of a tenth of a second's worth); a timer
 * over the rate is held and its expirations arrive together, counted, in one notification.
 * These checks are about the mechanism, not about speed (bench/evd-bench's fairness
 * scenario measures the other users' latency): the flood's notifications stay under what
 * the rate allows whatever the machine's speed, expirations are not lost but coalesced,
 * and another uid's timers and requests are not held with them. meson runs the binary once
 * per backend.
 */

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util-check.h"
#include "util-daemon.h"

#define TIMEOUT TEST_TIMEOUT_MS
#define NOBODY 65534
#define FLOOD_TIMERS 200
#define RATE 1000

static long long now_ms(void) {
        struct timespec ts;

        ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_int_t stat_member(TestClient *c, const char *group, const char *name) {
        json_t *r = test_client_result(c, "stats", NULL, NULL, 0);
        json_int_t v = json_integer_value(json_object_get(json_object_get(r, group), name));

        json_decref(r);
        return v;
}

static void start_flood(TestClient *c, double interval) {
        for (int i = 0; i < FLOOD_TIMERS; i++)
                json_decref(test_client_result(c, "timer", json_pack("{s:f,s:f,s:i}", "after", 0.0, "interval", interval,
                                                                     "tag", i),
                                               NULL, 0));
}

/* Read the flood's notifications for @ms; return how many, and the expirations they carry. */
static unsigned drain_flood(TestClient *c, int ms, json_int_t *ret_expirations, json_int_t *ret_max) {
        long long end = now_ms() + ms;
        unsigned n = 0;

        *ret_expirations = *ret_max = 0;
        while (now_ms() < end) {
                json_t *m = test_client_notification(c, "timer", (int)(end - now_ms()));
                json_int_t e;

                if (!m)
                        break;
                e = json_integer_value(json_object_get(json_object_get(m, "params"), "expirations"));
                ck_assert_int_ge(e, 1);
                *ret_expirations += e;
                if (e > *ret_max)
                        *ret_max = e;
                n++;
                json_decref(m);
        }
        return n;
}

START_TEST(test_timer_rate_holds_and_coalesces) {
        static const char *const args[] = { "--max-timer-rate-per-uid=1000", NULL };
        json_int_t expirations, max_exp;
        long long t0, elapsed;
        TestDaemon d;
        TestClient c;
        unsigned n;

        test_daemon_start(&d, args);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        t0 = now_ms();
        start_flood(&c, 0.001);
        n = drain_flood(&c, 1000, &expirations, &max_exp);
        elapsed = now_ms() - t0;

        /* 200 timers every millisecond ask for 200,000 a second: what arrives is the rate's
         * worth (plus its burst) however long the run took, ... */
        ck_assert_msg(n <= RATE * elapsed / 1000 + RATE / 10 + FLOOD_TIMERS, "%u notifications in %lld ms", n,
                      elapsed);
        ck_assert_uint_gt(n, 0);
        /* ... and the expirations are not lost: held timers report them together. */
        ck_assert_int_gt(max_exp, 1);
        ck_assert_int_gt(expirations, (json_int_t)n);
        ck_assert_int_gt(stat_member(&c, "daemon", "timers_held"), 0);
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* Another uid is paced on its own: its timer is not held behind the flood. */
START_TEST(test_timer_rate_is_per_uid) {
        static const char *const args[] = { "--max-timer-rate-per-uid=1000", NULL };
        json_int_t expirations, max_exp;
        TestDaemon d;
        TestClient flood, other;
        json_t *m, *p;

        test_daemon_start(&d, args);
        ck_assert_int_eq(chmod(d.dir, 0755), 0);
        ck_assert_int_eq(test_client_connect(&flood, d.socket), 0);
        ck_assert_int_eq(test_client_connect_as(&other, d.socket, NOBODY, NOBODY), 0);
        start_flood(&flood, 0.001);
        (void)drain_flood(&flood, 200, &expirations, &max_exp);
        ck_assert_int_gt(max_exp, 1); /* the flood is being held */

        json_decref(test_client_result(&other, "timer", json_pack("{s:f,s:s}", "after", 0.05, "tag", "other"), NULL, 0));
        m = test_client_notification(&other, "timer", TIMEOUT);
        ck_assert_msg(m, "the other uid's timer never came");
        p = json_object_get(m, "params");
        ck_assert_str_eq(json_string_value(json_object_get(p, "tag")), "other");
        ck_assert_int_eq(json_integer_value(json_object_get(p, "expirations")), 1);
        json_decref(m);
        json_decref(test_client_result(&other, "ping", NULL, NULL, 0));
        test_client_close(&other);
        test_client_close(&flood);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* max-timer-rate-per-uid = 0 turns pacing off: nothing is held. */
START_TEST(test_timer_rate_zero_is_unlimited) {
        static const char *const args[] = { "--max-timer-rate-per-uid=0", NULL };
        json_int_t expirations, max_exp;
        TestDaemon d;
        TestClient c;

        test_daemon_start(&d, args);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        start_flood(&c, 0.01);
        (void)drain_flood(&c, 300, &expirations, &max_exp);
        ck_assert_int_eq(stat_member(&c, "daemon", "timers_held"), 0);
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

static Suite *fairness_suite(void) {
        Suite *s = suite_create("fairness");
        TCase *tc = test_tcase(s, "timer-rate", 60);

        tcase_add_test(tc, test_timer_rate_holds_and_coalesces);
        tcase_add_test(tc, test_timer_rate_is_per_uid);
        tcase_add_test(tc, test_timer_rate_zero_is_unlimited);
        return s;
}

int main(void) {
        return test_run_suite(fairness_suite());
}
