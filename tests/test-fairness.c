/* test-fairness.c - one user's timers cannot take the daemon from the others
 *
 * The rule (PROTOCOL.md, section 9): each uid's timer expirations are delivered at no more
 * than max-timer-rate-per-uid per second (bursts of a tenth of a second's worth); a timer
 * over the rate is held and its expirations arrive together, counted, in one notification.
 * These checks are about the mechanism, not about speed (bench/evd-bench's fairness
 * scenario measures the other users' latency): the flood's notifications stay under what
 * the rate allows whatever the machine's speed, expirations are not lost but coalesced,
 * and another uid's timers and requests are not held with them. And a client's turn
 * (max-turn-us): a batch runs a part at a time, others' requests in between, its replies
 * still one array and no notice ahead of them. meson runs the binary once per backend.
 */

#include <check.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

#define TURN_BATCH 200

/* A batch of pings, ids 0..@n-1, as one packet. */
static void send_ping_batch(TestClient *c, unsigned n) {
        json_t *batch = json_array();

        for (unsigned i = 0; i < n; i++)
                json_array_append_new(batch, json_pack("{s:s,s:I,s:s}", "jsonrpc", "2.0", "id", (json_int_t)i, "method", "ping"));
        test_client_send(c, batch, NULL, 0);
}

/* The next packet is @n replies in one array, ids @first.., each a result. */
static void expect_reply_array(TestClient *c, unsigned first, unsigned n) {
        json_t *r = test_client_recv(c, TIMEOUT), *item;
        size_t i;

        ck_assert_msg(json_is_array(r) && json_array_size(r) == n, "not one array of %u replies", n);
        json_array_foreach(r, i, item) {
                ck_assert_int_eq(json_integer_value(json_object_get(item, "id")), (json_int_t)(first + i));
                ck_assert_ptr_nonnull(json_object_get(item, "result"));
        }
        json_decref(r);
}

/* One client's batch waits on the daemon with another client's request: the other is
 * answered before the batch is through (a turn of 0 us is one request). It used to wait
 * for all of it: a batch of 1,024 listings held everyone 4-16 ms. */
START_TEST(test_turn_lets_others_in) {
        static const char *const args[] = { "--max-turn-us=0", NULL };
        TestDaemon d;
        TestClient a, b;
        json_int_t before, during;
        json_t *r;

        test_daemon_start(&d, args);
        ck_assert_int_eq(test_client_connect(&a, d.socket), 0);
        ck_assert_int_eq(test_client_connect(&b, d.socket), 0);
        before = stat_member(&b, "daemon", "requests");
        test_daemon_pause(&d);
        send_ping_batch(&a, TURN_BATCH); /* first: its socket wakes the daemon first */
        test_client_send(&b, json_pack("{s:s,s:s,s:s}", "jsonrpc", "2.0", "id", "b", "method", "stats"), NULL, 0);
        test_daemon_resume(&d);
        r = test_client_reply(&b, TIMEOUT);
        ck_assert_ptr_nonnull(r);
        during = json_integer_value(json_object_get(json_object_get(json_object_get(r, "result"), "daemon"), "requests"));
        json_decref(r);
        ck_assert_msg(during - before < TURN_BATCH, "the other client was answered only after %lld requests of the batch",
                      (long long)(during - before - 1));
        expect_reply_array(&a, 0, TURN_BATCH);
        test_client_close(&a);
        test_client_close(&b);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* A batch run over many turns still answers with one array, and a notice its first request
 * caused (a watch on a readable pipe) comes after that array, not between its parts. */
START_TEST(test_turns_keep_replies_whole_and_first) {
        static const char *const args[] = { "--max-turn-us=0", NULL };
        TestDaemon d;
        TestClient a;
        json_t *batch = json_array(), *m;
        int p[2];

        test_daemon_start(&d, args);
        ck_assert_int_eq(test_client_connect(&a, d.socket), 0);
        ck_assert_int_eq(pipe(p), 0);
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        json_array_append_new(batch, json_pack("{s:s,s:i,s:s,s:{s:i,s:[s],s:s}}", "jsonrpc", "2.0", "id", 0, "method",
                                               "watch", "params", "fd", 0, "events", "in", "mode", "edge"));
        for (int i = 1; i < 64; i++)
                json_array_append_new(batch, json_pack("{s:s,s:i,s:s}", "jsonrpc", "2.0", "id", i, "method", "ping"));
        test_client_send(&a, batch, p, 1);
        expect_reply_array(&a, 0, 64);
        m = test_client_recv(&a, TIMEOUT);
        ck_assert_msg(json_is_object(m) && strcmp(json_string_value(json_object_get(m, "method")), "ready") == 0,
                      "the ready did not follow the replies");
        json_decref(m);
        close(p[0]);
        close(p[1]);
        test_client_close(&a);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* The next packet holding replies; notifications on the way are dropped, not kept: a
 * flood of them must not fill this process (test_client_reply() keeps them). */
static json_t *next_replies_dropping_notifications(TestClient *c, unsigned *ret_replies) {
        long long end = now_ms() + TIMEOUT;

        while (now_ms() < end) {
                json_t *m = test_client_recv(c, (int)(end - now_ms())), *first;

                if (!m)
                        return NULL;
                first = json_is_array(m) ? json_array_get(m, 0) : m;
                if (json_object_get(first, "id")) {
                        *ret_replies = json_is_array(m) ? (unsigned)json_array_size(m) : 1;
                        return m;
                }
                json_decref(m);
        }
        return NULL;
}

/* Notices held behind a batch's replies count as output; enough of them once paused the
 * batch itself, which they waited for: neither moved again. The batch must go on. */
START_TEST(test_turns_do_not_stall_on_held_notices) {
        static const char *const args[] = { "--max-turn-us=0", "--max-timer-rate-per-uid=0", NULL };
        /* Past the pause threshold (CONN_PAUSE_BYTES / 2) at CONN_NOTICE_COST each: as many
         * repeating timers, firing from the start, each with a notice pending. */
        const unsigned timers = 1500, per_packet = 100;
        TestDaemon d;
        TestClient a;
        unsigned n = 0;
        json_t *r;

        test_daemon_start(&d, args);
        ck_assert_int_eq(test_client_connect(&a, d.socket), 0);
        for (unsigned made = 0; made < timers; made += per_packet) {
                json_t *batch = json_array();

                for (unsigned i = 0; i < per_packet; i++)
                        json_array_append_new(batch, json_pack("{s:s,s:I,s:s,s:{s:f,s:f}}", "jsonrpc", "2.0", "id",
                                                               (json_int_t)(made + i), "method", "timer", "params",
                                                               "after", 0.0, "interval", 0.001));
                test_client_send(&a, batch, NULL, 0);
                r = next_replies_dropping_notifications(&a, &n);
                ck_assert_msg(r && n == per_packet, "timer batch not answered");
                json_decref(r);
        }
        send_ping_batch(&a, 1000);
        r = next_replies_dropping_notifications(&a, &n);
        ck_assert_msg(r && n == 1000, "the batch was not answered");
        json_decref(r);
        test_client_close(&a);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

static Suite *fairness_suite(void) {
        Suite *s = suite_create("fairness");
        TCase *tc = test_tcase(s, "timer-rate", 60);

        tcase_add_test(tc, test_timer_rate_holds_and_coalesces);
        tcase_add_test(tc, test_timer_rate_is_per_uid);
        tcase_add_test(tc, test_timer_rate_zero_is_unlimited);
        tc = test_tcase(s, "turns", 60);
        tcase_add_test(tc, test_turn_lets_others_in);
        tcase_add_test(tc, test_turns_keep_replies_whole_and_first);
        tcase_add_test(tc, test_turns_do_not_stall_on_held_notices);
        return s;
}

int main(void) {
        return test_run_suite(fairness_suite());
}
