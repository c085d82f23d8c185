/* test-daemon-session.c - a session: hello, ping, status, stats
 *
 * What hello negotiates and reports (limits, features, the client id), ping, and the
 * counters of status and stats as a client's actions move them.
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

/* ---- session: hello, ping, status, stats ------------------------------------------ */

START_TEST(test_hello) {
        const char *backend = getenv("EVD_TEST_BACKEND");
        TestDaemon d;
        TestClient c, c2;
        json_t *r, *limits, *f, *info;
        json_int_t id, id2;
        size_t i;

        start(&d, &c, NULL);
        /* hello is optional: a client that skips it is served. */
        ping(&c);
        r = test_client_result(&c, "hello",
                               json_pack("{s:i,s:s}", "protocol", 1, "client", "first-name"), NULL,
                               0);
        ck_assert_str_eq(str_member(r, "server"), "evd");
        ck_assert_int_gt(strlen(str_member(r, "version")), 0);
        ck_assert_int_eq(int_member(r, "protocol"), 1);
        ck_assert_msg(streq(str_member(r, "backend"), "io_uring") ||
                              streq(str_member(r, "backend"), "epoll"),
                      "backend %s", str_member(r, "backend"));
        if (backend && *backend)
                ck_assert_str_eq(str_member(r, "backend"), backend);
        ck_assert(json_is_array(member(r, "features")));
        json_array_foreach(member(r, "features"), i, f)
                ck_assert(json_is_string(f));
        limits = member(r, "limits");
        ck_assert_int_eq(int_member(limits, "max_packet"), 65536);
        ck_assert_int_eq(int_member(limits, "max_fds"), 32);
        ck_assert_int_eq(int_member(limits, "max_tag"), 1024);
        ck_assert_int_eq(int_member(limits, "max_batch"), 1024);
        {
                /* Defaults: a quarter of the daemon's fd limit, read from the daemon itself
                 * (under valgrind ours is a few fds lower than what it passes on). */
                char path[64], line[256];
                unsigned long long soft = 0, hard = 0;
                FILE *lim;

                snprintf(path, sizeof(path), "/proc/%d/limits", (int)d.pid);
                lim = fopen(path, "re");
                ck_assert_ptr_nonnull(lim);
                while (fgets(line, sizeof(line), lim))
                        if (sscanf(line, "Max open files %llu %llu", &soft, &hard) == 2)
                                break;
                fclose(lim);
                ck_assert_int_gt(hard, 0);
                ck_assert_int_eq(int_member(limits, "max_watches"), (json_int_t)(hard / 4));
        }
        ck_assert_int_eq(int_member(limits, "max_timers"), 100000);
        ck_assert_int_eq(int_member(limits, "max_queued_bytes"), 4194304);
        ck_assert(fabs(num_member(limits, "min_interval") - 0.001) < 1e-9);
        id = int_member(r, "client_id");
        ck_assert_int_gt(id, 0);
        ck_assert(bool_member(r, "admin")); /* uid 0 */
        json_decref(r);

        /* The name is shown to admins; repeated hellos update it and keep the client id. */
        info = list_item(&c, "clients", 0, "client", id);
        ck_assert_ptr_nonnull(info);
        ck_assert_str_eq(str_member(info, "name"), "first-name");
        json_decref(info);
        ck_assert_int_eq(hello(&c, "second-name"), id);
        info = list_item(&c, "clients", 0, "client", id);
        ck_assert_str_eq(str_member(info, "name"), "second-name");
        json_decref(info);

        /* Client ids differ per connection; a client without hello has no name. */
        ck_assert_int_eq(test_client_connect(&c2, d.socket), 0);
        ping(&c2);
        id2 = hello(&c2, NULL);
        ck_assert_int_ne(id2, id);
        info = list_item(&c, "clients", 0, "client", id2);
        ck_assert_ptr_nonnull(info);
        ck_assert_msg(!json_object_get(info, "name"),
                      "\"name\" present for a client that gave none");
        json_decref(info);
        test_client_close(&c2);
        stop(&d, &c);
}
END_TEST

START_TEST(test_hello_errors) {
        char long_name[66];
        TestDaemon d;
        TestClient c;

        memset(long_name, 'n', 65);
        long_name[65] = 0;
        start(&d, &c, NULL);
        call_error(&c, "hello", NULL, NULL, 0, -32602, "protocol");
        call_error(&c, "hello", json_pack("{}"), NULL, 0, -32602, "protocol");
        call_error(&c, "hello", json_pack("{s:i}", "protocol", 2), NULL, 0, -32602, "protocol");
        call_error(&c, "hello", json_pack("{s:i}", "protocol", 0), NULL, 0, -32602, "protocol");
        call_error(&c, "hello", json_pack("{s:s}", "protocol", "1"), NULL, 0, -32602, "protocol");
        call_error(&c, "hello", json_pack("{s:f}", "protocol", 1.0), NULL, 0, -32602, "protocol");
        call_error(&c, "hello", json_pack("{s:i,s:i}", "protocol", 1, "client", 5), NULL, 0, -32602,
                   "client");
        call_error(&c, "hello", json_pack("{s:i,s:s}", "protocol", 1, "client", long_name), NULL, 0,
                   -32602, "client");
        call_error(&c, "hello", json_pack("{s:i,s:s}", "protocol", 1, "name", "x"), NULL, 0, -32602,
                   "name");
        /* 64 bytes is the limit, not over it. */
        long_name[64] = 0;
        call_ok(&c, "hello", json_pack("{s:i,s:s}", "protocol", 1, "client", long_name), NULL, 0);
        stop(&d, &c);
}
END_TEST

START_TEST(test_ping) {
        TestDaemon d;
        TestClient c;
        json_t *r;

        start(&d, &c, NULL);
        r = test_client_result(&c, "ping", NULL, NULL, 0);
        assert_json(r, "{}");
        json_decref(r);
        r = test_client_result(&c, "ping", json_object(), NULL, 0);
        assert_json(r, "{}");
        json_decref(r);
        call_error(&c, "ping", json_pack("{s:i}", "x", 1), NULL, 0, -32602, "x");
        stop(&d, &c);
}
END_TEST

START_TEST(test_status) {
        const char *backend = getenv("EVD_TEST_BACKEND");
        TestDaemon d;
        TestClient c, c2;
        int p[2];
        json_t *r;
        json_int_t w, notifications;

        start(&d, &c, NULL);
        wait_status(&c, "clients", 1); /* the start-up probe may still be going away */
        r = test_client_result(&c, "status", NULL, NULL, 0);
        ck_assert_str_eq(str_member(r, "server"), "evd");
        ck_assert_int_gt(strlen(str_member(r, "version")), 0);
        ck_assert_int_eq(int_member(r, "protocol"), 1);
        ck_assert_int_eq(int_member(r, "pid"), d.pid);
        ck_assert(num_member(r, "uptime") >= 0);
        if (backend && *backend)
                ck_assert_str_eq(str_member(r, "backend"), backend);
        ck_assert(json_is_array(member(r, "features")));
        ck_assert_int_eq(int_member(r, "clients"), 1);
        ck_assert_int_eq(int_member(r, "watches"), 0);
        ck_assert_int_eq(int_member(r, "timers"), 0);
        ck_assert(!bool_member(r, "shutting_down"));
        notifications = int_member(r, "notifications");
        json_decref(r);

        /* The figures move with what clients do. */
        ck_assert_int_eq(test_client_connect(&c2, d.socket), 0);
        ping(&c2);
        ck_assert_int_eq(status_int(&c, "clients"), 2);
        make_pipe(p);
        w = watch_fd(&c2, p[0], "in", "edge", NULL);
        (void)add_timer(&c2, 100, 0, 0, NULL);
        ck_assert_int_eq(status_int(&c, "watches"), 1);
        ck_assert_int_eq(status_int(&c, "timers"), 1);
        write_byte(p[1]);
        json_decref(expect_notification(&c2, "ready", "watch", w));
        ck_assert_int_gt(status_int(&c, "notifications"), notifications);
        test_client_close(&c2);
        wait_status(&c, "clients", 1);
        wait_status(&c, "watches", 0);
        wait_status(&c, "timers", 0);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

START_TEST(test_stats) {
        const char *backend = getenv("EVD_TEST_BACKEND");
        TestDaemon d;
        TestClient c;
        json_t *s1, *s2, *lat, *b;
        json_int_t w, sum = 0;
        int p[2];
        size_t i;

        start(&d, &c, NULL);
        s1 = test_client_result(&c, "stats", NULL, NULL, 0);
        if (backend && *backend)
                ck_assert_str_eq(str_member(member(s1, "engine"), "backend"), backend);
        ck_assert_int_ge(int_member(member(s1, "engine"), "iterations"), 0);
        ck_assert_int_ge(int_member(member(s1, "daemon"), "accepted"), 1);

        make_pipe(p);
        w = watch_fd(&c, p[0], "in", "oneshot", NULL);
        write_byte(p[1]);
        json_decref(expect_notification(&c, "ready", "watch", w));
        ping(&c);
        call_error(&c, "nope", NULL, NULL, 0, -32601, NULL);
        s2 = test_client_result(&c, "stats", NULL, NULL, 0);

        /* stats itself, watch, ping, nope: at least 4 more requests. */
        ck_assert_int_ge(int_member(member(s2, "daemon"), "requests"),
                         int_member(member(s1, "daemon"), "requests") + 4);
        ck_assert_int_ge(int_member(member(s2, "daemon"), "errors"),
                         int_member(member(s1, "daemon"), "errors") + 1);
        ck_assert_int_ge(int_member(member(s2, "daemon"), "notifications"),
                         int_member(member(s1, "daemon"), "notifications") + 1);
        ck_assert_int_ge(int_member(member(s2, "daemon"), "fds_received"),
                         int_member(member(s1, "daemon"), "fds_received") + 1);
        ck_assert_int_gt(int_member(member(s2, "daemon"), "packets_in"),
                         int_member(member(s1, "daemon"), "packets_in"));
        ck_assert_int_gt(int_member(member(s2, "daemon"), "bytes_in"),
                         int_member(member(s1, "daemon"), "bytes_in"));
        ck_assert_int_gt(int_member(member(s2, "daemon"), "packets_out"),
                         int_member(member(s1, "daemon"), "packets_out"));
        ck_assert_int_gt(int_member(member(s2, "daemon"), "bytes_out"),
                         int_member(member(s1, "daemon"), "bytes_out"));
        ck_assert_int_gt(int_member(member(s2, "engine"), "events"),
                         int_member(member(s1, "engine"), "events"));
        ck_assert_int_gt(int_member(member(s2, "engine"), "iterations"),
                         int_member(member(s1, "engine"), "iterations"));
        (void)int_member(member(s2, "daemon"), "refused");
        /* The process: fds held against the limit (this connection, the watched pipe),
         * memory, uptime; the limits in force; timer lateness once a timer fired. */
        {
                json_t *proc = member(s2, "process"), *fds = member(proc, "fds");
                json_int_t t;

                ck_assert_int_ge(int_member(fds, "connections"), 1);
                ck_assert_int_eq(int_member(fds, "watched"), 1); /* a fired oneshot keeps its fd */
                ck_assert_int_gt(int_member(fds, "limit"), 0);
                ck_assert_int_gt(int_member(proc, "rss_bytes"), 0);
                ck_assert(json_real_value(member(proc, "uptime")) > 0);
                ck_assert(json_real_value(member(proc, "started")) > 1.7e9);
                ck_assert_int_gt(int_member(member(s2, "limits"), "max-clients"), 0);
                ck_assert_int_gt(int_member(member(s2, "limits"), "max-queued-bytes"), 0);
                ck_assert_int_eq(int_member(member(s2, "timer_lateness"), "count"), 0);
                t = add_timer(&c, 0, 0, 0, NULL);
                json_decref(expect_notification(&c, "timer", "timer", t));
                proc = test_client_result(&c, "stats", NULL, NULL, 0);
                ck_assert_int_eq(int_member(member(proc, "timer_lateness"), "count"), 1);
                json_decref(proc);
        }
        (void)int_member(member(s2, "daemon"), "disconnected");
        (void)int_member(member(s2, "daemon"), "coalesced");
        (void)int_member(member(s2, "daemon"), "monitor_dropped");
        (void)int_member(member(s2, "engine"), "timers");
        (void)int_member(member(s2, "engine"), "submissions");
        (void)int_member(member(s2, "engine"), "syscalls");
        (void)int_member(member(s2, "engine"), "overflows");
        (void)int_member(member(s2, "engine"), "ring_resizes");
        (void)int_member(member(s2, "engine"), "sq_full");
        (void)int_member(member(s2, "engine"), "sq_entries");
        (void)int_member(member(s2, "engine"), "cq_entries");

        /* The ready was measured: latency count moved, and the buckets add up to it. */
        lat = member(s2, "latency");
        ck_assert_int_ge(int_member(lat, "count"), int_member(member(s1, "latency"), "count") + 1);
        ck_assert(num_member(lat, "max_us") >= num_member(lat, "p50_us"));
        ck_assert(num_member(lat, "p99_us") >= num_member(lat, "p50_us"));
        ck_assert(num_member(lat, "p90_us") >= 0 && num_member(lat, "mean_us") >= 0);
        ck_assert_int_gt(json_array_size(member(lat, "buckets")), 0);
        json_array_foreach(member(lat, "buckets"), i, b) {
                ck_assert(num_member(b, "le_us") > 0);
                ck_assert_int_gt(int_member(b, "count"), 0);
                sum += int_member(b, "count");
        }
        ck_assert_int_eq(sum, int_member(lat, "count"));
        /* Every packet read between the two stats requests had its cost measured: the first
         * request's packet is counted once it is answered, the second's is not yet. */
        lat = member(s2, "packet_cost");
        ck_assert_int_eq(int_member(lat, "count") - int_member(member(s1, "packet_cost"), "count"),
                         int_member(member(s2, "daemon"), "packets_in") - int_member(member(s1, "daemon"), "packets_in"));
        ck_assert(num_member(lat, "max_us") > 0 && num_member(lat, "max_us") >= num_member(lat, "p50_us"));
        sum = 0;
        json_array_foreach(member(lat, "buckets"), i, b)
                sum += int_member(b, "count");
        ck_assert_int_eq(sum, int_member(lat, "count"));
        call_error(&c, "stats", json_pack("{s:i}", "x", 1), NULL, 0, -32602, "x");
        json_decref(s1);
        json_decref(s2);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

static double realtime_s(void) {
        struct timespec ts;

        ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &ts), 0);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* stats.process: every fd the daemon has open (as /proc counts them from outside), the
 * part its clients make it hold, the fd limit it runs with, and a start time inside the
 * window in which this test started it. */
START_TEST(test_stats_process) {
        TestDaemon d;
        TestClient c, c2;
        struct rlimit rl;
        json_t *s, *proc, *fds;
        double t0, t1, t2;
        json_int_t w;
        int p[2], before, after;

        t0 = realtime_s();
        start(&d, &c, NULL);
        t1 = realtime_s();
        ck_assert_int_eq(test_client_connect(&c2, d.socket), 0);
        make_pipe(p);
        w = watch_fd(&c, p[0], "in", "oneshot", NULL);
        ping(&c2);
        before = test_daemon_fd_count(&d);
        s = test_client_result(&c, "stats", NULL, NULL, 0);
        after = test_daemon_fd_count(&d);
        t2 = realtime_s();
        proc = member(s, "process");
        fds = member(proc, "fds");
        ck_assert_int_eq(before, after);
        ck_assert_int_eq(int_member(fds, "open"), before);
        ck_assert_int_eq(int_member(fds, "connections"), 2);
        ck_assert_int_eq(int_member(fds, "watched"), 1);
        ck_assert_int_gt(int_member(fds, "open"), 3); /* its own on top: listener, engine */
        ck_assert_int_eq(prlimit(d.pid, RLIMIT_NOFILE, NULL, &rl), 0);
        ck_assert_int_eq(int_member(fds, "limit"), (json_int_t)rl.rlim_cur);
        ck_assert_msg(num_member(proc, "started") >= t0 && num_member(proc, "started") <= t1,
                      "started %.6f, not in [%.6f, %.6f]", num_member(proc, "started"), t0, t1);
        ck_assert(num_member(proc, "uptime") > 0 && num_member(proc, "uptime") <= t2 - t0 + 0.05);
        json_decref(s);

        /* An unwatched fd and a gone client are counted out at once. */
        test_client_close(&c2);
        wait_status(&c, "clients", 1);
        json_decref(test_client_result(&c, "unwatch", json_pack("{s:I}", "watch", w), NULL, 0));
        s = test_client_result(&c, "stats", NULL, NULL, 0);
        fds = member(member(s, "process"), "fds");
        ck_assert_int_eq(int_member(fds, "open"), before - 2);
        ck_assert_int_eq(int_member(fds, "open"), test_daemon_fd_count(&d));
        json_decref(s);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void daemon_session_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "session", 60);
        tcase_add_test(tc, test_hello);
        tcase_add_test(tc, test_hello_errors);
        tcase_add_test(tc, test_ping);
        tcase_add_test(tc, test_status);
        tcase_add_test(tc, test_stats);
        tcase_add_test(tc, test_stats_process);
}
