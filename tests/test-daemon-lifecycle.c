/* test-daemon-lifecycle.c - lifecycle: reload, client death, disconnects, SHUT_WR (half-close
 * and EOF), shutdown by signal and the work it refuses meanwhile
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

/* ---- lifecycle: disconnects, SHUT_WR, shutdown -------------------------------------- */

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

/* SIGHUP re-reads --config and applies limits and the log level to the clients already
 * connected; a config with an error is refused and the running one kept. */
START_TEST(test_reload) {
        char config[256], arg[300];
        const char *args[] = { arg, NULL };
        TestDaemon d;
        TestClient c;
        int p[2], q[2], r[2];
        json_t *reply;
        bool applied = false;

        snprintf(config, sizeof(config), "%s/evd-reload-%d.conf", test_tmpdir(), (int)getpid());
        write_file(config, "# test\nmax-watches-per-client = 1\nlog-level = info\n");
        snprintf(arg, sizeof(arg), "--config=%s", config);
        start(&d, &c, args);
        make_pipe(p);
        make_pipe(q);
        make_pipe(r);
        (void)watch_fd(&c, p[0], "in", "edge", NULL);
        call_error(&c, "watch", json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge"), &q[0], 1,
                   -32004, NULL);

        write_file(config, "max-watches-per-client = 3\nlog-level = debug\n");
        ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
        /* The signal and this client's requests race in the daemon's loop: retry. */
        for (int i = 0; i < 500 && !applied; i++) {
                reply = test_client_call(&c, "watch",
                                         json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge"),
                                         &q[0], 1);
                applied = json_object_get(reply, "result") != NULL;
                json_decref(reply);
                if (!applied)
                        (void)poll(NULL, 0, 10);
        }
        ck_assert_msg(applied, "the raised limit was not applied after SIGHUP");
        ck_assert_msg(test_daemon_log_contains(&d, "Configuration reloaded"), "no reload in the log");

        /* A broken file: refused, logged, the running limits stay (3 watches now taken). */
        write_file(config, "max-watches-per-client = many\n");
        ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
        for (int i = 0; i < 500 && !test_daemon_log_contains(&d, "keeping the running configuration"); i++)
                (void)poll(NULL, 0, 10);
        ck_assert(test_daemon_log_contains(&d, "keeping the running configuration"));
        (void)watch_fd(&c, r[0], "in", "edge", NULL);
        call_error(&c, "watch", json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge"), &r[0], 1,
                   -32004, NULL);
        ping(&c);
        for (int i = 0; i < 2; i++) {
                close(p[i]);
                close(q[i]);
                close(r[i]);
        }
        (void)unlink(config);
        stop(&d, &c);
}
END_TEST

/*
 * Not covered: the `closed` notification. The daemon sends it only when the engine reports
 * POLLNVAL for a watched fd, which the epoll backend never does and io_uring does only for a
 * poll request that fails in the kernel; no fd a client can pass makes that happen on demand.
 */

/* Child: connect, watch 10 pipes in one packet, say 'k' on @report, wait to be killed.
 * No check asserts here (see the top of the file); failures are exit codes. */
static void child_watch_and_wait(const char *path, int report) {
        static char buf[EVD_MAX_PACKET + 1];
        FdList fl = FD_LIST_NULL;
        WirePacket pkt;
        TestClient c;
        json_t *v = NULL;
        char req[4096];
        size_t len = 0;
        int fds[10], p[2];

        if (test_client_connect(&c, path) < 0)
                _exit(2);
        req[len++] = '[';
        for (int i = 0; i < 10; i++) {
                if (pipe2(p, O_CLOEXEC) < 0)
                        _exit(3);
                fds[i] = p[0]; /* p[1] stays open until the child dies */
                len += (size_t)sprintf(req + len,
                                       "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"watch\","
                                       "\"params\":{\"fd\":%d,"
                                       "\"events\":[\"in\"],\"mode\":\"edge\"}}",
                                       i ? "," : "", i + 1, i);
        }
        req[len++] = ']';
        if (wire_send_blocking(c.fd, req, len, fds, 10) < 0)
                _exit(4);
        if (wire_recv_blocking(c.fd, buf, sizeof(buf), &fl, &pkt, TIMEOUT) < 0 || pkt.eof ||
            pkt.truncated)
                _exit(5);
        if (jsonrpc_parse(buf, pkt.len, &v, NULL) < 0 || json_array_size(v) != 10)
                _exit(6);
        for (size_t i = 0; i < 10; i++)
                if (!json_object_get(json_object_get(json_array_get(v, i), "result"), "watch"))
                        _exit(7);
        for (int i = 0; i < 10; i++)
                close(fds[i]); /* the daemon holds its own copies */
        if (write(report, "k", 1) != 1)
                _exit(8);
        for (;;)
                pause();
}

/* A client killed with 10 watches: the daemon closes every fd and forgets every watch. */
START_TEST(test_client_death_cleanup) {
        struct pollfd pfd;
        TestDaemon d;
        TestClient c;
        int report[2], base, status;
        pid_t child;
        char b = 0;

        start(&d, &c, NULL);
        base = fd_baseline(&d, &c, 1);
        ck_assert_int_eq(pipe2(report, O_CLOEXEC), 0);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                close(report[0]);
                child_watch_and_wait(d.socket, report[1]);
        }
        close(report[1]);
        pfd = (struct pollfd){ .fd = report[0], .events = POLLIN };
        ck_assert_int_eq(poll(&pfd, 1, TIMEOUT), 1);
        if (read(report[0], &b, 1) != 1 || b != 'k') {
                (void)kill(child, SIGKILL);
                (void)waitpid(child, &status, 0);
                ck_abort_msg("the child failed (status %d)", status);
        }
        close(report[0]);
        ck_assert_int_eq(status_int(&c, "watches"), 10);
        ck_assert_int_eq(status_int(&c, "clients"), 2);
        ck_assert_int_eq(test_daemon_fd_count(&d), base + 11); /* 10 watches + the connection */

        ck_assert_int_eq(kill(child, SIGKILL), 0);
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert_int_eq(test_daemon_wait_fd_count(&d, base, TIMEOUT), base);
        wait_status(&c, "watches", 0);
        wait_status(&c, "clients", 1);
        stop(&d, &c);
}
END_TEST

/* An ordinary close does the same for watches and timers. */
START_TEST(test_disconnect_cleanup) {
        TestDaemon d;
        TestClient c, admin;
        int p[2], base;

        start(&d, &admin, NULL);
        base = fd_baseline(&d, &admin, 1);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        make_pipe(p);
        for (int i = 0; i < 5; i++)
                (void)watch_fd(&c, p[0], "in", "edge", NULL);
        for (int i = 0; i < 5; i++)
                (void)add_timer(&c, 0.001 * i, 0, 0.001, NULL);
        write_byte(p[1]);
        ck_assert_int_eq(status_int(&admin, "watches"), 5);
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_wait_fd_count(&d, base, TIMEOUT), base);
        wait_status(&admin, "watches", 0);
        wait_status(&admin, "timers", 0);
        wait_status(&admin, "clients", 1);
        close_pair(p);
        stop(&d, &admin);
}
END_TEST

/* shutdown(SHUT_WR) after the last request: every reply still comes, then EOF. */
START_TEST(test_shut_wr) {
        TestDaemon d;
        TestClient c;
        json_t *r, *m;
        json_int_t expect = 1;
        char text[128];

        start(&d, &c, NULL);
        for (int i = 1; i <= 3; i++) {
                snprintf(text, sizeof(text),
                         "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"status\"}", i);
                send_text(&c, text);
        }
        ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
        while (expect <= 3) {
                size_t i, n;

                r = test_client_reply(&c, TIMEOUT);
                ck_assert_msg(r, "reply %lld missing after SHUT_WR", (long long)expect);
                n = json_is_array(r) ? json_array_size(r) : 1;
                for (i = 0; i < n; i++) {
                        m = json_is_array(r) ? json_array_get(r, i) : r;
                        ck_assert_int_eq(json_integer_value(json_object_get(m, "id")), expect);
                        ck_assert_ptr_nonnull(json_object_get(m, "result"));
                        expect++;
                }
                json_decref(r);
        }
        ck_assert_msg(test_client_wait_eof(&c, TIMEOUT), "no EOF after SHUT_WR");
        stop(&d, &c);
}
END_TEST

/* SIGTERM: every client gets `shutdown` before EOF, and the daemon exits 0. */
START_TEST(test_shutdown_signal) {
        TestDaemon d;
        TestClient c, quiet;
        json_t *m;
        int p[2];

        start(&d, &c, NULL);
        ck_assert_int_eq(test_client_connect(&quiet, d.socket), 0);
        make_pipe(p);
        (void)watch_fd(&c, p[0], "in", "edge", NULL);
        (void)add_timer(&c, 100, 0, 0, NULL);
        wait_status(&c, "clients", 2); /* the quiet one, which never sent anything, is accepted */
        ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
        m = expect_notification(&c, "shutdown", NULL, 0);
        assert_json(member(m, "params"), "{\"reason\":\"signal\"}");
        json_decref(m);
        ck_assert_msg(test_client_wait_eof(&c, TIMEOUT), "no EOF after shutdown");
        m = expect_notification(&quiet, "shutdown", NULL, 0);
        json_decref(m);
        ck_assert_msg(test_client_wait_eof(&quiet, TIMEOUT), "no EOF after shutdown");
        ck_assert_int_eq(test_daemon_wait_exit(&d, TIMEOUT), 0);
        test_client_close(&quiet);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

/* While the daemon is stopping (here: still flushing a stalled client), new requests get
 * -32008 and change nothing; the daemon then exits 0 once the stalled client is gone. */
START_TEST(test_shutdown_rejects_new_work) {
        TestDaemon d;
        TestClient c, stalled;
        json_t *m, *r;
        json_int_t sid;
        int p[2];

        start(&d, &c, NULL);
        ck_assert_int_eq(test_client_connect(&stalled, d.socket), 0);
        sid = hello(&stalled, NULL);
        stall(&stalled, sid, &c);
        ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
        m = expect_notification(&c, "shutdown", NULL, 0);
        assert_json(member(m, "params"), "{\"reason\":\"signal\"}");
        json_decref(m);
        r = test_client_call(&c, "ping", NULL, NULL, 0);
        check_error(r, -32008, NULL, NULL);
        json_decref(r);
        make_pipe(p);
        r = test_client_call(&c, "watch",
                             json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge"),
                             &p[0], 1);
        check_error(r, -32008, NULL, NULL);
        json_decref(r);
        /* A notification is not answered, even with -32008. */
        send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}");
        r = test_client_call(&c, "status", NULL, NULL, 0);
        check_error(r, -32008, NULL, NULL);
        json_decref(r);
        test_client_close(&stalled);
        ck_assert_msg(test_client_wait_eof(&c, TIMEOUT), "no EOF once the stalled client left");
        ck_assert_int_eq(test_daemon_wait_exit(&d, TIMEOUT), 0);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void daemon_lifecycle_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "lifecycle", 60);
        tcase_add_test(tc, test_reload);
        tcase_add_test(tc, test_client_death_cleanup);
        tcase_add_test(tc, test_disconnect_cleanup);
        tcase_add_test(tc, test_shut_wr);
        tcase_add_test(tc, test_shutdown_signal);
        tcase_add_test(tc, test_shutdown_rejects_new_work);
}
