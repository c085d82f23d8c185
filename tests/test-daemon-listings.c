/* test-daemon-listings.c - listings (watches, timers, clients): paging, packet budget; monitor
 *
 * The listing methods page by offset and limit and stop at the reply budget of one packet;
 * `monitor` streams what listings show, as it changes.
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

/* ---- listings ----------------------------------------------------------------------- */

/* One page of @method: checks total and next, appends the item ids (@key) to @ids. */
static size_t page(TestClient *c, const char *method, const char *key, json_int_t offset,
                   json_int_t limit, json_int_t total, json_int_t next, json_int_t *ids,
                   size_t n_ids) {
        json_t *params = json_object(), *r, *items, *item;
        size_t i;

        if (offset >= 0)
                json_object_set_new(params, "offset", json_integer(offset));
        if (limit > 0)
                json_object_set_new(params, "limit", json_integer(limit));
        r = test_client_result(c, method, params, NULL, 0);
        items = member(r, method);
        ck_assert_int_eq(int_member(r, "total"), total);
        if (next < 0)
                ck_assert_msg(json_is_null(member(r, "next")), "next is not null at the end");
        else
                ck_assert_int_eq(int_member(r, "next"), next);
        json_array_foreach(items, i, item)
                ids[n_ids++] = int_member(item, key);
        json_decref(r);
        return n_ids;
}

static void assert_same_ids(const json_int_t *a, const json_int_t *b, size_t n) {
        for (size_t i = 0; i < n; i++) {
                bool found = false;

                for (size_t j = 0; j < n; j++)
                        found = found || a[i] == b[j];
                ck_assert_msg(found, "id %lld missing from the pages", (long long)a[i]);
        }
}

START_TEST(test_listing_paging) {
        TestDaemon d;
        TestClient c;
        json_int_t w[5], got[8];
        size_t n;
        int p[2];

        start(&d, &c, NULL);
        make_pipe(p);
        for (int i = 0; i < 5; i++)
                w[i] = watch_fd(&c, p[0], "in", "edge", NULL);

        n = page(&c, "watches", "watch", -1, 2, 5, 2, got, 0);
        ck_assert_int_eq(n, 2);
        n = page(&c, "watches", "watch", 2, 2, 5, 4, got, n);
        ck_assert_int_eq(n, 4);
        n = page(&c, "watches", "watch", 4, 2, 5, -1, got, n);
        ck_assert_int_eq(n, 5);
        assert_same_ids(w, got, 5);
        ck_assert_int_eq(page(&c, "watches", "watch", 9, -1, 5, -1, got, 0), 0);
        ck_assert_int_eq(page(&c, "watches", "watch", -1, -1, 5, -1, got, 0), 5);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

/* The timers listing: members, clocks, paging, another client's for an admin. */
START_TEST(test_listing_timers) {
        TestDaemon d;
        TestClient c, admin;
        json_t *item;
        json_int_t t[3], got[3], id;
        double at;
        size_t n;

        start(&d, &c, NULL);
        ck_assert_int_eq(test_client_connect(&admin, d.socket), 0);
        id = hello(&c, NULL);
        t[0] = add_timer(&c, 100, 0, 0, json_pack("{s:s}", "k", "v"));
        at = real_now() + 200;
        t[1] = add_timer(&c, 0, at, 0, NULL);
        t[2] = add_timer(&c, 0.002, 0, 0.002, json_string("tick"));
        json_decref(expect_notification(&c, "timer", "timer", t[2]));

        item = list_item(&c, "timers", 0, "timer", t[0]);
        ck_assert_ptr_nonnull(item);
        ck_assert_int_eq(int_member(item, "client"), id);
        ck_assert_str_eq(str_member(item, "clock"), "monotonic");
        ck_assert(json_is_null(member(item, "interval")));
        ck_assert(num_member(item, "next") > 99 && num_member(item, "next") <= 100 + 1e-6);
        ck_assert_int_eq(int_member(item, "expirations"), 0);
        assert_json(member(item, "tag"), "{\"k\":\"v\"}");
        json_decref(item);
        item = list_item(&c, "timers", 0, "timer", t[1]);
        ck_assert_str_eq(str_member(item, "clock"), "realtime");
        ck_assert(num_member(item, "next") > 199 && num_member(item, "next") <= 200 + 1e-3);
        ck_assert_msg(!json_object_get(item, "tag"), "\"tag\" present on a timer without one");
        json_decref(item);
        item = list_item(&admin, "timers", id, "timer", t[2]);
        ck_assert_ptr_nonnull(item);
        ck_assert(fabs(num_member(item, "interval") - 0.002) < 1e-9);
        ck_assert_int_ge(int_member(item, "expirations"), 1);
        ck_assert(num_member(item, "next") <= 0.002 + 1e-6);
        assert_json(member(item, "tag"), "\"tick\"");
        json_decref(item);

        n = page(&c, "timers", "timer", -1, 1, 3, 1, got, 0);
        n = page(&c, "timers", "timer", 1, 1, 3, 2, got, n);
        n = page(&c, "timers", "timer", 2, 10000, 3, -1, got, n);
        ck_assert_int_eq(n, 3);
        assert_same_ids(t, got, 3);
        ck_assert_int_eq(page(&c, "timers", "timer", 3, 1, 3, -1, got, 0), 0);
        test_client_close(&admin);
        stop(&d, &c);
}
END_TEST

/* A listing made in the loop iteration that created a timer must not count from the
 * iteration's cached time: `next` came out as 100.000005 for `after: 100` (the deadline is
 * counted from the clock when the request is handled). */
START_TEST(test_listing_timer_next_never_exceeds_after) {
        static const char batch[] =
                "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{\"after\":100}},"
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"timers\"}]";
        TestDaemon d;
        TestClient c;
        json_t *r, *timers;
        double next;

        start(&d, &c, NULL);
        r = raw_call(&c, batch, sizeof(batch) - 1);
        ck_assert_int_eq(json_array_size(r), 2);
        timers = member(member(json_array_get(r, 1), "result"), "timers");
        ck_assert_int_eq(json_array_size(timers), 1);
        next = num_member(json_array_get(timers, 0), "next");
        ck_assert_msg(next > 99 && next <= 100.0, "next %.9f for after 100", next);
        json_decref(r);
        stop(&d, &c);
}
END_TEST

START_TEST(test_listing_clients) {
        TestDaemon d;
        TestClient c, more[2];
        json_t *item;
        json_int_t ids[3], got[3];
        size_t n;
        int p[2];

        start(&d, &c, NULL);
        ids[0] = hello(&c, "lister");
        for (int i = 0; i < 2; i++) {
                ck_assert_int_eq(test_client_connect(&more[i], d.socket), 0);
                ids[i + 1] = hello(&more[i], NULL);
        }
        wait_status(&c, "clients", 3);
        n = page(&c, "clients", "client", -1, 2, 3, 2, got, 0);
        n = page(&c, "clients", "client", 2, 2, 3, -1, got, n);
        ck_assert_int_eq(n, 3);
        assert_same_ids(ids, got, 3);

        make_pipe(p);
        (void)watch_fd(&more[0], p[0], "in", "edge", NULL);
        (void)add_timer(&more[0], 100, 0, 0, NULL);
        item = list_item(&c, "clients", 0, "client", ids[1]);
        ck_assert_ptr_nonnull(item);
        ck_assert_int_eq(int_member(item, "pid"), getpid());
        ck_assert_int_eq(int_member(item, "uid"), getuid());
        ck_assert_int_eq(int_member(item, "gid"), getgid());
        ck_assert(bool_member(item, "admin"));
        ck_assert(!bool_member(item, "monitor"));
        ck_assert_int_eq(int_member(item, "watches"), 1);
        ck_assert_int_eq(int_member(item, "timers"), 1);
        ck_assert_int_ge(int_member(item, "queued_bytes"), 0);
        ck_assert_int_ge(int_member(item, "requests"), 3);
        ck_assert_int_ge(int_member(item, "notifications"), 0);
        ck_assert(num_member(item, "connected") >= 0);
        json_decref(item);
        for (int i = 0; i < 2; i++)
                test_client_close(&more[i]);
        wait_status(&c, "clients", 1);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

/* A page ends early when its reply would outgrow a packet: listings never fail for size. */
START_TEST(test_listing_packet_budget) {
        const int n_watches = 96;
        TestDaemon d;
        TestClient c;
        json_t *r, *item;
        json_int_t offset = 0, seen = 0;
        char big[1001];
        int fds[32];
        unsigned pages = 0;
        size_t i;

        start(&d, &c, NULL);
        memset(big, 'q', 1000);
        big[1000] = 0;
        for (int k = 0; k < n_watches / 32; k++) {
                json_t *batch = json_array();

                for (int j = 0; j < 32; j++) {
                        fds[j] = eventfd(0, EFD_CLOEXEC);
                        json_array_append_new(batch,
                                              json_pack("{s:s,s:i,s:s,s:{s:i,s:[s],s:s,s:s}}",
                                                        "jsonrpc", "2.0", "id", 100 + j, "method",
                                                        "watch", "params", "fd", j, "events", "in",
                                                        "mode", "edge", "tag", big));
                }
                test_client_send(&c, batch, fds, 32);
                r = test_client_reply(&c, TIMEOUT);
                ck_assert_msg(json_is_array(r), "no batch reply");
                json_array_foreach(r, i, item)
                        ck_assert_ptr_nonnull(json_object_get(item, "result"));
                json_decref(r);
                for (int j = 0; j < 32; j++)
                        close(fds[j]);
        }
        do {
                r = test_client_result(&c, "watches", json_pack("{s:I}", "offset", offset), NULL,
                                       0);
                ck_assert_int_eq(int_member(r, "total"), n_watches);
                seen += (json_int_t)json_array_size(member(r, "watches"));
                ck_assert_int_gt(json_array_size(member(r, "watches")), 0);
                if (pages == 0)
                        ck_assert_msg(json_array_size(member(r, "watches")) < (size_t)n_watches,
                                      "96 KiB of watches in one page");
                offset = json_is_null(member(r, "next")) ? -1 : int_member(r, "next");
                ck_assert_int_eq(offset < 0 ? n_watches : offset, seen);
                json_decref(r);
                pages++;
        } while (offset >= 0 && pages < 10);
        ck_assert_int_eq(seen, n_watches);
        ck_assert_int_ge(pages, 2);
        stop(&d, &c);
}
END_TEST

/* ---- monitor ------------------------------------------------------------------------ */

START_TEST(test_monitor) {
        TestDaemon d;
        TestClient mon, c;
        json_t *r, *m, *copy, *info;
        json_int_t cid, mid, w, t;
        int p[2];

        start(&d, &mon, NULL);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        mid = hello(&mon, "monitor");
        cid = hello(&c, "watched");
        r = test_client_result(&mon, "monitor", NULL, NULL, 0);
        assert_json(r, "{}");
        json_decref(r);
        info = list_item(&mon, "clients", 0, "client", mid);
        ck_assert(bool_member(info, "monitor"));
        json_decref(info);

        make_pipe(p);
        w = watch_fd(&c, p[0], "in", "oneshot", json_string("mon"));
        write_byte(p[1]);
        m = expect_notification(&c, "ready", "watch", w);
        copy = expect_notification(&mon, "monitor", "client", cid);
        ck_assert_int_eq(int_member(member(copy, "params"), "client"), cid);
        /* Who the client is, without a listing: its pid, uid and hello name. */
        ck_assert_int_eq(int_member(member(copy, "params"), "pid"), getpid());
        ck_assert_int_eq(int_member(member(copy, "params"), "uid"), getuid());
        ck_assert_str_eq(json_string_value(member(member(copy, "params"), "name")), "watched");
        /* The copy is the whole message the client got. */
        ck_assert_msg(json_equal(member(member(copy, "params"), "message"), m),
                      "the monitor's copy differs");
        json_decref(copy);
        json_decref(m);

        t = add_timer(&c, 0, 0, 0, NULL);
        m = expect_notification(&c, "timer", "timer", t);
        copy = expect_notification(&mon, "monitor", "client", cid);
        ck_assert_msg(json_equal(member(member(copy, "params"), "message"), m),
                      "the monitor's copy differs");
        json_decref(copy);
        json_decref(m);
        /* The monitor can still make requests. */
        ping(&mon);
        close_pair(p);
        test_client_close(&c);
        stop(&d, &mon);
}
END_TEST

/* `monitor` with `connections`: a line when a client comes and when it goes; without it,
 * none (what monitors written before it expect). */
START_TEST(test_monitor_connections) {
        TestDaemon d;
        TestClient mon, plain, c;
        json_t *m;
        json_int_t cid;

        start(&d, &mon, NULL);
        ck_assert_int_eq(test_client_connect(&plain, d.socket), 0);
        call_error(&mon, "monitor", json_pack("{s:s}", "connections", "yes"), NULL, 0, -32602, "connections");
        json_decref(test_client_result(&mon, "monitor", json_pack("{s:b}", "connections", true), NULL, 0));
        json_decref(test_client_result(&plain, "monitor", NULL, NULL, 0));

        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        cid = hello(&c, "comes-and-goes");
        m = expect_notification(&mon, "monitor", "client", cid);
        ck_assert_str_eq(json_string_value(member(member(m, "params"), "event")), "connected");
        ck_assert_int_eq(int_member(member(m, "params"), "pid"), getpid());
        ck_assert_int_eq(int_member(member(m, "params"), "uid"), getuid());
        ck_assert_ptr_null(json_object_get(member(m, "params"), "message"));
        json_decref(m);
        test_client_close(&c);
        m = expect_notification(&mon, "monitor", "client", cid);
        ck_assert_str_eq(json_string_value(member(member(m, "params"), "event")), "disconnected");
        ck_assert_str_eq(json_string_value(member(member(m, "params"), "name")), "comes-and-goes");
        ck_assert_ptr_nonnull(member(member(m, "params"), "reason"));
        json_decref(m);
        /* The plain monitor heard nothing of it: anything sent to it would have come
         * before its ping's reply. */
        ping(&plain);
        ck_assert_ptr_null(test_client_notification_for(&plain, "monitor", "client", cid, 0));
        test_client_close(&plain);
        stop(&d, &mon);
}
END_TEST

/* ---- tcases --------------------------------------------------------------------------- */

void daemon_listings_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "listings", 60);
        tcase_add_test(tc, test_listing_paging);
        tcase_add_test(tc, test_listing_timers);
        tcase_add_test(tc, test_listing_timer_next_never_exceeds_after);
        tcase_add_test(tc, test_listing_clients);
        tcase_add_test(tc, test_listing_packet_budget);

        tc = test_tcase(s, "monitor", 60);
        tcase_add_test(tc, test_monitor);
        tcase_add_test(tc, test_monitor_connections);
}
