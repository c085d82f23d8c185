/* test-daemon-watch.c - watches: the scenario, modes, modify, arm, unwatch
 *
 * A watch from `watch` to `ready` and back: level, oneshot and edge modes, edge coalescing
 * (unread and stalled clients), modify, unwatch and what it does to queued notifications.
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

/* ---- watches: the scenario, modes, modify, arm, unwatch ---------------------------- */

/* The scenario: a client passes a pipe, the test writes "x", the client is told. */
START_TEST(test_watch_pipe_scenario) {
        TestDaemon d;
        TestClient c;
        json_t *r, *m, *params;
        json_int_t w;
        int p[2];

        start(&d, &c, NULL);
        make_pipe(p);
        r = test_client_result(&c, "watch",
                               json_pack("{s:i,s:[s],s:s,s:{s:s,s:i}}", "fd", 0, "events", "in",
                                         "mode", "oneshot", "tag", "name", "pipe", "n", 7),
                               &p[0], 1);
        w = int_member(r, "watch");
        json_decref(r);
        /* The daemon holds its own copy: the client may close its own at once. */
        p[0] = safe_close(p[0]);
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        m = expect_notification(&c, "ready", "watch", w);
        params = member(m, "params");
        ck_assert_int_eq(int_member(params, "watch"), w);
        assert_json(member(params, "tag"), "{\"name\":\"pipe\",\"n\":7}");
        assert_json(member(params, "events"), "[\"in\"]");
        ck_assert_int_eq(int_member(params, "count"), 1);
        json_decref(m);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

START_TEST(test_watch_listing) {
        TestDaemon d;
        TestClient c;
        json_t *item, *r;
        json_int_t w1, w2, id;
        int p[2], sv[2];

        start(&d, &c, NULL);
        id = hello(&c, NULL);
        make_pipe(p);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        w1 = watch_fd(&c, p[0], "in", "oneshot", json_string("t1"));
        r = test_client_result(&c, "watch",
                               json_pack("{s:i,s:[s,s,s],s:s}", "fd", 0, "events", "out", "in",
                                         "rdhup", "mode", "edge"),
                               &sv[0], 1);
        w2 = int_member(r, "watch");
        json_decref(r);
        ck_assert_int_ne(w1, w2);

        item = watch_item(&c, w1);
        ck_assert_int_eq(int_member(item, "client"), id);
        assert_json(member(item, "events"), "[\"in\"]");
        ck_assert_str_eq(str_member(item, "mode"), "oneshot");
        ck_assert(bool_member(item, "armed"));
        assert_json(member(item, "tag"), "\"t1\"");
        ck_assert_int_eq(int_member(item, "count"), 0);
        ck_assert_str_eq(str_member(item, "fd_type"), "pipe");
        ck_assert_ptr_null(json_object_get(item, "age")); /* not kept: PROTOCOL.md, watches */
        json_decref(item);

        /* Events as requested (in the table's order), no tag: no "tag" member. */
        item = watch_item(&c, w2);
        assert_json(member(item, "events"), "[\"in\",\"out\",\"rdhup\"]");
        ck_assert_str_eq(str_member(item, "mode"), "edge");
        ck_assert_str_eq(str_member(item, "fd_type"), "socket");
        ck_assert_msg(!json_object_get(item, "tag"), "\"tag\" present on a watch without one");
        json_decref(item);
        ck_assert_int_eq(list_total(&c, "watches", NULL), 2);
        close_pair(p);
        close_pair(sv);
        stop(&d, &c);
}
END_TEST

START_TEST(test_oneshot) {
        TestDaemon d;
        TestClient c;
        json_t *m, *item, *r;
        json_int_t w;
        int p[2];

        start(&d, &c, NULL);
        make_pipe(p);
        w = watch_fd(&c, p[0], "in", "oneshot", json_string("one"));

        /* Two writes without arming: exactly one ready. */
        write_byte(p[1]);
        write_byte(p[1]);
        m = expect_notification(&c, "ready", "watch", w);
        ck_assert_int_eq(int_member(member(m, "params"), "count"), 1);
        assert_json(member(member(m, "params"), "tag"), "\"one\"");
        assert_json(member(member(m, "params"), "events"), "[\"in\"]");
        json_decref(m);
        expect_quiet(&c, "ready", "watch", w);
        item = watch_item(&c, w);
        ck_assert(!bool_member(item, "armed"));
        ck_assert_int_eq(int_member(item, "count"), 1);
        json_decref(item);
        write_byte(p[1]);
        expect_quiet(&c, "ready", "watch", w);

        /* arm while still readable: ready at once, and disarmed again. */
        r = test_client_result(&c, "arm", json_pack("{s:I}", "watch", w), NULL, 0);
        assert_json(r, "{}");
        json_decref(r);
        json_decref(expect_notification(&c, "ready", "watch", w));
        expect_quiet(&c, "ready", "watch", w);

        /* Drained, armed: quiet until the next write, which fires once. Arming an armed
         * watch does nothing. */
        drain_fd(p[0]);
        call_ok(&c, "arm", json_pack("{s:I}", "watch", w), NULL, 0);
        item = watch_item(&c, w);
        ck_assert(bool_member(item, "armed"));
        json_decref(item);
        expect_quiet(&c, "ready", "watch", w);
        call_ok(&c, "arm", json_pack("{s:I}", "watch", w), NULL, 0);
        write_byte(p[1]);
        json_decref(expect_notification(&c, "ready", "watch", w));
        expect_quiet(&c, "ready", "watch", w);
        item = watch_item(&c, w);
        ck_assert(!bool_member(item, "armed"));
        ck_assert_int_eq(int_member(item, "count"), 3);
        json_decref(item);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

START_TEST(test_edge) {
        TestDaemon d;
        TestClient c;
        json_t *m, *item;
        json_int_t w, counts = 0;
        int p[2];

        start(&d, &c, NULL);
        make_pipe(p);
        w = watch_fd(&c, p[0], "in", "edge", json_integer(5));
        write_byte(p[1]);
        m = expect_notification(&c, "ready", "watch", w);
        assert_json(member(member(m, "params"), "events"), "[\"in\"]");
        assert_json(member(member(m, "params"), "tag"), "5");
        ck_assert_int_ge(int_member(member(m, "params"), "count"), 1);
        counts += int_member(member(m, "params"), "count");
        json_decref(m);
        /* Readiness that persists is not reported again... */
        expect_quiet(&c, "ready", "watch", w);
        /* ...readiness that appears is, even without draining. */
        write_byte(p[1]);
        m = expect_notification(&c, "ready", "watch", w);
        counts += int_member(member(m, "params"), "count");
        json_decref(m);
        expect_quiet(&c, "ready", "watch", w);

        /* Edge watches are always armed: arm is an error. */
        call_error(&c, "arm", json_pack("{s:I}", "watch", w), NULL, 0, -32602, "watch");
        item = watch_item(&c, w);
        ck_assert(bool_member(item, "armed"));
        ck_assert_int_eq(int_member(item, "count"), counts);
        json_decref(item);

        /* A hang-up is reported as hup in ready (with the unread data's in), not as closed. */
        p[1] = safe_close(p[1]);
        m = expect_notification(&c, "ready", "watch", w);
        assert_json(member(member(m, "params"), "events"), "[\"in\",\"hup\"]");
        json_decref(m);
        expect_quiet(&c, "closed", "watch", w);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

/* Edge coalescing, the simple way: 1000 wakeups while the client reads nothing. */
START_TEST(test_edge_coalesce_unread) {
        TestDaemon d;
        TestClient c, other;
        json_t *item, *m;
        json_int_t w, wakeups, sum = 0, coalesced0;
        unsigned readies = 0;
        long long deadline;
        int p[2];

        start(&d, &c, NULL);
        ck_assert_int_eq(test_client_connect(&other, d.socket), 0);
        make_pipe(p);
        w = watch_fd(&c, p[0], "in", "edge", NULL);
        coalesced0 = stats_int(&other, "daemon", "coalesced");
        for (int i = 0; i < 1000; i++)
                write_byte(p[1]);
        /* Written before the other client's ping, which the daemon could only learn of from a
         * poll that also reported the pipe: by the ping's reply every wakeup is counted (no
         * client here sends so much that the daemon reads on without polling). */
        ping(&other);
        item = watch_item(&c, w);
        wakeups = int_member(item, "count");
        json_decref(item);
        ck_assert_int_ge(wakeups, 1);
        ck_assert_int_le(wakeups, 1000);

        deadline = ms_now() + TIMEOUT;
        while (sum < wakeups &&
               (m = wait_for(&c, "ready", "watch", w, (int)MAX(deadline - ms_now(), 0LL)))) {
                sum += int_member(member(m, "params"), "count");
                readies++;
                json_decref(m);
        }
        expect_quiet(&c, "ready", "watch", w);
        ck_assert_msg(sum == wakeups, "ready counts sum to %lld, the daemon saw %lld wakeups",
                      (long long)sum, (long long)wakeups);
        ck_assert_msg(readies < 1000, "%u readies for 1000 writes", readies);
        /* Every wakeup not sent on its own was merged into a queued ready. */
        ck_assert_int_eq(stats_int(&other, "daemon", "coalesced") - coalesced0,
                         wakeups - (json_int_t)readies);
        test_client_close(&other);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

/* Wait until the daemon has counted @count wakeups of @client's watch @w (seen by an admin). */
static void wait_watch_count(TestClient *admin, json_int_t client, json_int_t w, json_int_t count) {
        long long deadline = ms_now() + TIMEOUT;

        for (;;) {
                json_t *item = list_item(admin, "watches", client, "watch", w);
                json_int_t n;

                ck_assert_ptr_nonnull(item);
                n = int_member(item, "count");
                json_decref(item);
                if (n >= count)
                        return;
                ck_assert_msg(ms_now() < deadline, "watch %lld: %lld wakeups, waiting for %lld",
                              (long long)w, (long long)n, (long long)count);
                (void)poll(NULL, 0, 1);
        }
}

/* Edge coalescing made certain: the client's socket is full, so the ready stays queued in
 * the daemon while wakeups keep coming, and they all merge into it. */
START_TEST(test_edge_coalesce_stalled) {
        TestDaemon d;
        TestClient c, admin;
        json_t *m, *item;
        json_int_t w, id, count, coalesced0;
        int p[2];

        start(&d, &c, NULL);
        ck_assert_int_eq(test_client_connect(&admin, d.socket), 0);
        id = hello(&c, NULL);
        make_pipe(p);
        w = watch_fd(&c, p[0], "in", "edge", json_string("stalled"));
        coalesced0 = stats_int(&admin, "daemon", "coalesced");
        stall(&c, id, &admin);
        for (json_int_t i = 1; i <= 20; i++) {
                write_byte(p[1]);
                /* One wakeup per write: the next write waits until the daemon counted this
                 * one (a ping would not do: the daemon may read many packets of one client
                 * before it polls the others). */
                wait_watch_count(&admin, id, w, i);
        }
        unstall(&c);
        m = expect_notification(&c, "ready", "watch", w);
        count = int_member(member(m, "params"), "count");
        assert_json(member(member(m, "params"), "events"), "[\"in\"]");
        assert_json(member(member(m, "params"), "tag"), "\"stalled\"");
        json_decref(m);
        expect_quiet(&c, "ready", "watch", w);
        item = watch_item(&c, w);
        ck_assert_int_eq(int_member(item, "count"), count);
        json_decref(item);
        ck_assert_msg(count >= 20, "one ready covers %lld wakeups of 20: not all were coalesced",
                      (long long)count);
        ck_assert_int_eq(stats_int(&admin, "daemon", "coalesced") - coalesced0, count - 1);
        test_client_close(&admin);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

START_TEST(test_modify) {
        TestDaemon d;
        TestClient c;
        json_t *m, *item, *r;
        json_int_t w, w2, w3;
        int p[2], sv[2];

        start(&d, &c, NULL);

        /* events: a oneshot watch for in on a writable socket, switched to out, fires. */
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        w = watch_fd(&c, sv[0], "in", "oneshot", NULL);
        expect_quiet(&c, "ready", "watch", w);
        r = test_client_result(&c, "modify", json_pack("{s:I,s:[s]}", "watch", w, "events", "out"),
                               NULL, 0);
        assert_json(r, "{}");
        json_decref(r);
        m = expect_notification(&c, "ready", "watch", w);
        assert_json(member(member(m, "params"), "events"), "[\"out\"]");
        json_decref(m);
        item = watch_item(&c, w);
        assert_json(member(item, "events"), "[\"out\"]");
        ck_assert_str_eq(str_member(item, "mode"), "oneshot");
        ck_assert(!bool_member(item, "armed"));
        json_decref(item);
        /* A disarmed oneshot stays disarmed across an events change. */
        call_ok(&c, "modify", json_pack("{s:I,s:[s,s]}", "watch", w, "events", "in", "out"), NULL,
                0);
        expect_quiet(&c, "ready", "watch", w);

        /* Switching a fired (disarmed) oneshot watch to edge makes it active. */
        make_pipe(p);
        w2 = watch_fd(&c, p[0], "in", "oneshot", NULL);
        write_byte(p[1]);
        json_decref(expect_notification(&c, "ready", "watch", w2));
        call_ok(&c, "modify", json_pack("{s:I,s:s}", "watch", w2, "mode", "edge"), NULL, 0);
        item = watch_item(&c, w2);
        ck_assert_str_eq(str_member(item, "mode"), "edge");
        ck_assert_msg(bool_member(item, "armed"), "a oneshot watch switched to edge is not active");
        json_decref(item);
        write_byte(p[1]);
        m = wait_for(&c, "ready", "watch", w2, TIMEOUT);
        ck_assert_msg(m, "a oneshot watch switched to edge does not fire");
        json_decref(m);
        close_pair(p);

        /* Switching edge to oneshot leaves it armed: the next wakeup fires, once. */
        make_pipe(p);
        w3 = watch_fd(&c, p[0], "in", "edge", NULL);
        call_ok(&c, "modify", json_pack("{s:I,s:s}", "watch", w3, "mode", "oneshot"), NULL, 0);
        item = watch_item(&c, w3);
        ck_assert_str_eq(str_member(item, "mode"), "oneshot");
        ck_assert(bool_member(item, "armed"));
        json_decref(item);
        write_byte(p[1]);
        json_decref(expect_notification(&c, "ready", "watch", w3));
        write_byte(p[1]);
        expect_quiet(&c, "ready", "watch", w3);

        call_error(&c, "modify", json_pack("{s:I}", "watch", w3), NULL, 0, -32602, NULL);
        call_error(&c, "modify", json_pack("{s:I,s:s}", "watch", w3 + 1000, "mode", "edge"), NULL,
                   0, -32001, "watch");
        close_pair(p);
        close_pair(sv);
        stop(&d, &c);
}
END_TEST

START_TEST(test_unwatch) {
        TestDaemon d;
        TestClient c;
        json_t *r;
        json_int_t w, w2;
        int p[2], base;

        start(&d, &c, NULL);
        base = fd_baseline(&d, &c, 1);
        make_pipe(p);
        w = watch_fd(&c, p[0], "in", "edge", NULL);
        ck_assert_int_eq(test_daemon_fd_count(&d), base + 1);
        r = test_client_result(&c, "unwatch", json_pack("{s:I}", "watch", w), NULL, 0);
        assert_json(r, "{}");
        json_decref(r);
        /* The daemon's copy of the fd is closed, the watch is gone. */
        ck_assert_int_eq(test_daemon_fd_count(&d), base);
        ck_assert_int_eq(list_total(&c, "watches", NULL), 0);
        ck_assert_int_eq(status_int(&c, "watches"), 0);
        write_byte(p[1]);
        expect_quiet(&c, "ready", "watch", w);
        call_error(&c, "unwatch", json_pack("{s:I}", "watch", w), NULL, 0, -32001, "watch");
        call_error(&c, "arm", json_pack("{s:I}", "watch", w), NULL, 0, -32001, "watch");
        call_error(&c, "modify", json_pack("{s:I,s:[s]}", "watch", w, "events", "in"), NULL, 0,
                   -32001, "watch");
        /* Ids are never reused: a stale id cannot hit a newer watch. */
        w2 = watch_fd(&c, p[0], "in", "edge", NULL);
        ck_assert_int_ne(w2, w);
        call_error(&c, "unwatch", json_pack("{s:I}", "watch", w), NULL, 0, -32001, "watch");
        json_decref(expect_notification(&c, "ready", "watch", w2)); /* the pipe is readable */
        close_pair(p);
        stop(&d, &c);
}
END_TEST

/* A ready queued but not yet sent is discarded by unwatch: none after the reply. */
START_TEST(test_unwatch_discards_queued) {
        TestDaemon d;
        TestClient c, admin;
        json_t *m, *reply = NULL;
        json_int_t w, id;
        long long deadline;
        char text[128];
        size_t i;
        int p[2];

        start(&d, &c, NULL);
        ck_assert_int_eq(test_client_connect(&admin, d.socket), 0);
        id = hello(&c, NULL);
        make_pipe(p);
        w = watch_fd(&c, p[0], "in", "edge", NULL);
        stall(&c, id, &admin);
        write_byte(p[1]);
        /* The ready is queued behind the stall once the daemon counted the wakeup. */
        wait_watch_count(&admin, id, w, 1);
        /* Unwatch without reading (reading would let the queued ready out first, legitimately),
         * and let the admin see that the watch is gone before the client reads anything. */
        snprintf(text, sizeof(text),
                 "{\"jsonrpc\":\"2.0\",\"id\":\"unwatch\",\"method\":\"unwatch\",\"params\":{"
                 "\"watch\":%lld}}",
                 (long long)w);
        send_text(&c, text);
        deadline = ms_now() + TIMEOUT;
        while (list_total(&admin, "watches", json_pack("{s:I}", "client", id)) > 0) {
                ck_assert_msg(ms_now() < deadline, "the unwatch was not handled");
                (void)poll(NULL, 0, 2);
        }
        ping(&c); /* reads everything that was waiting */
        json_array_foreach(c.backlog, i, m)
                if (json_text_is(json_object_get(m, "id"), "\"unwatch\""))
                        reply = m;
        ck_assert_msg(reply && json_object_get(reply, "result"), "no successful reply to unwatch");
        drop_replies(&c);
        m = wait_for(&c, "ready", "watch", w, QUIET_MS);
        ck_assert_msg(!m, "a ready queued before unwatch arrived");
        test_client_close(&admin);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void daemon_watch_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "watch", 60);
        tcase_add_test(tc, test_watch_pipe_scenario);
        tcase_add_test(tc, test_watch_listing);
        tcase_add_test(tc, test_oneshot);
        tcase_add_test(tc, test_edge);
        tcase_add_test(tc, test_edge_coalesce_unread);
        tcase_add_test(tc, test_edge_coalesce_stalled);
        tcase_add_test(tc, test_modify);
        tcase_add_test(tc, test_unwatch);
        tcase_add_test(tc, test_unwatch_discards_queued);
}
