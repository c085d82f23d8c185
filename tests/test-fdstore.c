/* test-fdstore.c - a restart through systemd's fd store keeps every client (daemon-fdstore.c)
 *
 * The test plays the service manager: a NOTIFY_SOCKET it owns keeps what evd stores
 * (FDSTORE=1 with FDNAME=, FDSTOREREMOVE=1), and the next evd gets it back the way systemd
 * passes it: the stored fds from fd 3 on, $LISTEN_FDS, $LISTEN_FDNAMES, $LISTEN_PID. The
 * real systemd user manager runs the same restart in test-systemd-manager.sh. Also the
 * carrier alone (fdcarrier.c): order, numbers, fds sharing an open file, refusals.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "evd.h"
#include "fdcarrier.h"
#include "macro.h"
#include "util-check.h"
#include "util-daemon.h"
#include "util-manager.h"
#include "util-time.h"

#define TIMEOUT TEST_TIMEOUT_MS

/* ---- the daemon ------------------------------------------------------------------------ */

static const char *const fd_store_args[] = { "--fd-store", "yes", NULL };

static json_int_t status_int(TestClient *c, const char *key) {
        json_t *s = test_client_result(c, "status", NULL, NULL, 0);
        json_int_t v = json_integer_value(json_object_get(s, key));

        json_decref(s);
        return v;
}

static json_int_t watch_pipe(TestClient *c, int fd, const char *mode) {
        json_t *r = test_client_result(c, "watch", json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", mode),
                                       &fd, 1);
        json_int_t id = json_integer_value(json_object_get(r, "watch"));

        json_decref(r);
        return id;
}

static json_int_t add_timer(TestClient *c, double after, double interval) {
        json_t *r = test_client_result(c, "timer", json_pack("{s:f,s:f}", "after", after, "interval", interval), NULL, 0);
        json_int_t id = json_integer_value(json_object_get(r, "timer"));

        json_decref(r);
        return id;
}

static bool sees_hup(int fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = 0 };

        return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLHUP);
}

/* SIGTERM with the fd store: evd stores, exits 0, and says nothing to its clients. */
static void stop_into_store(TestDaemon *d, Manager *m, TestClient *c) {
        ck_assert_int_eq(kill(d->pid, SIGTERM), 0);
        ck_assert_int_eq(test_daemon_wait_exit(d, TIMEOUT), 0);
        manager_read_all(m);
        ck_assert(m->stopping);
        ck_assert_int_eq(m->n_stored, 3);
        ck_assert_int_ge(manager_find(m, "evd-state"), 0);
        ck_assert_int_ge(manager_find(m, "evd-fds"), 0);
        ck_assert_int_ge(manager_find(m, "evd-listen"), 0);
        ck_assert_msg(test_daemon_log_contains(d, "Handed 1 clients"), "see %s", d->log);
        ck_assert_msg(!sees_hup(c->fd, 0), "the client's connection was closed");
        ck_assert_ptr_null(test_client_recv(c, 0)); /* no shutdown notification */
}

START_TEST(test_restart_keeps_clients) {
        Manager m;
        TestDaemon d1, d2;
        TestClient c;
        TestDaemonSpawn first = { .setup = manager_with_notify_socket, .userdata = &m };
        TestDaemonSpawn next = { .setup = manager_pass_store, .userdata = &m };
        json_int_t client_id, pid, w_edge, w_once, t_rep;
        json_t *r, *n;
        int edge[2], once[2];

        manager_open(&m);
        test_daemon_start_with(&d1, fd_store_args, &first);
        ck_assert_int_eq(test_client_connect(&c, d1.socket), 0);
        r = test_client_result(&c, "hello", json_pack("{s:i,s:s}", "protocol", 1, "client", "alpha"), NULL, 0);
        client_id = json_integer_value(json_object_get(r, "client_id"));
        json_decref(r);
        pid = status_int(&c, "pid");
        ck_assert_int_eq(pipe2(edge, O_CLOEXEC | O_NONBLOCK), 0);
        ck_assert_int_eq(pipe2(once, O_CLOEXEC | O_NONBLOCK), 0);
        w_edge = watch_pipe(&c, edge[0], "edge");
        w_once = watch_pipe(&c, once[0], "oneshot");
        t_rep = add_timer(&c, 0.05, 0.05);

        stop_into_store(&d1, &m, &c);
        /* In the gap: an event on each watch, and a request that waits in the socket. */
        ck_assert_int_eq(write(edge[1], "x", 1), 1);
        ck_assert_int_eq(write(once[1], "x", 1), 1);
        test_client_send(&c, json_pack("{s:s,s:s,s:s}", "jsonrpc", "2.0", "id", "in-the-gap", "method", "ping"), NULL, 0);

        next.dir = d1.dir;
        test_daemon_start_with(&d2, fd_store_args, &next);
        r = test_client_reply(&c, TIMEOUT);
        ck_assert_ptr_nonnull(r);
        ck_assert_str_eq(json_string_value(json_object_get(r, "id")), "in-the-gap");
        json_decref(r);
        ck_assert_msg(test_daemon_log_contains(&d2, "Restored 1 clients, 2 watches, 1 timers"), "see %s", d2.log);
        n = test_client_notification_for(&c, "ready", "watch", w_edge, TIMEOUT);
        ck_assert_ptr_nonnull(n);
        json_decref(n);
        n = test_client_notification_for(&c, "ready", "watch", w_once, TIMEOUT);
        ck_assert_ptr_nonnull(n);
        json_decref(n);
        n = test_client_notification_for(&c, "timer", "timer", t_rep, TIMEOUT);
        ck_assert_ptr_nonnull(n);
        json_decref(n);
        ck_assert_int_ne(status_int(&c, "pid"), pid);
        r = test_client_result(&c, "clients", NULL, NULL, 0);
        ck_assert_int_eq(json_array_size(json_object_get(r, "clients")), 1);
        n = json_array_get(json_object_get(r, "clients"), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(n, "client")), client_id);
        ck_assert_str_eq(json_string_value(json_object_get(n, "name")), "alpha");
        json_decref(r);
        /* The store is handed back whole: nothing in it would be stale at the next start. */
        manager_wait(&m, manager_all_removed);

        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d2), 0);
        manager_close(&m);
        close(edge[0]);
        close(edge[1]);
        close(once[0]);
        close(once[1]);
}
END_TEST

/* ---- libevd across the restart ---------------------------------------------------------- */

typedef struct LibevdSeen {
        unsigned lost, restored, watch_events, ticks;
        bool pong;
} LibevdSeen;

static int on_connection(struct evd_client *client, enum evd_connection_event event, int error, void *userdata) {
        LibevdSeen *seen = userdata;

        if (event == EVD_CONNECTION_LOST)
                seen->lost++;
        else
                seen->restored++;
        return 0;
}

static int on_watch(struct evd_client *client, uint64_t watch, uint32_t revents, void *userdata) {
        ((LibevdSeen *)userdata)->watch_events++;
        return 0;
}

static int on_tick(struct evd_client *client, uint64_t timer, uint64_t expirations, void *userdata) {
        ((LibevdSeen *)userdata)->ticks++;
        return 0;
}

static int on_pong(struct evd_client *client, int r, json_t *result, void *userdata) {
        ck_assert_int_eq(r, 0);
        ((LibevdSeen *)userdata)->pong = true;
        return 0;
}

/* Dispatch @client until @done holds or TIMEOUT passes. Return: whether it held. */
static bool libevd_run_until(struct evd_client *client, const LibevdSeen *seen,
                             bool (*done)(const LibevdSeen *seen)) {
        for (long long end = ms_now() + TIMEOUT; !done(seen);) {
                struct pollfd p = { .fd = evd_client_fd(client), .events = POLLIN };
                long long left = end - ms_now();

                if (left <= 0)
                        return false;
                if (poll(&p, 1, (int)MIN(left, 50)) < 0 && errno != EINTR)
                        return false;
                ck_assert_int_eq(evd_client_dispatch(client), 0);
        }
        return true;
}

static bool ticked(const LibevdSeen *seen) {
        return seen->ticks > 0;
}

static bool gap_reported(const LibevdSeen *seen) {
        return seen->pong && seen->watch_events > 0 && seen->ticks > 0;
}

/* What issue 11 asks of a restart: a libevd program with reconnect on never hears of it
 * (the connection handler is not called), and what happened in the gap is reported. */
START_TEST(test_libevd_does_not_notice) {
        Manager m;
        TestDaemon d1, d2;
        TestDaemonSpawn first = { .setup = manager_with_notify_socket, .userdata = &m };
        TestDaemonSpawn next = { .setup = manager_pass_store, .userdata = &m };
        struct evd_client *client = NULL;
        LibevdSeen seen = { 0 };
        uint64_t watch, timer;
        int p[2];

        manager_open(&m);
        test_daemon_start_with(&d1, fd_store_args, &first);
        ck_assert_int_eq(evd_client_new(&client), 0);
        evd_client_set_reconnect(client, true);
        evd_client_set_connection_handler(client, on_connection, &seen);
        ck_assert_int_eq(evd_client_connect(client, d1.socket), 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        ck_assert_int_eq(evd_watch_add(client, p[0], EVD_IN, EVD_EDGE, on_watch, &seen, TIMEOUT, &watch), 0);
        ck_assert_int_eq(evd_timer_after(client, 50000, 50000, on_tick, &seen, TIMEOUT, &timer), 0);
        ck_assert(libevd_run_until(client, &seen, ticked));

        ck_assert_int_eq(kill(d1.pid, SIGTERM), 0);
        ck_assert_int_eq(test_daemon_wait_exit(&d1, TIMEOUT), 0);
        manager_read_all(&m);
        ck_assert_int_eq(m.n_stored, 3);
        /* In the gap: a call, an event, and the library's own loop running on. */
        seen.ticks = 0;
        ck_assert_int_eq(evd_call_async(client, "ping", NULL, on_pong, &seen), 0);
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        ck_assert_int_eq(evd_client_dispatch(client), 0);

        next.dir = d1.dir;
        test_daemon_start_with(&d2, fd_store_args, &next);
        ck_assert_msg(libevd_run_until(client, &seen, gap_reported), "pong %d, %u watch events, %u ticks", seen.pong,
                      seen.watch_events, seen.ticks);
        ck_assert_msg(seen.lost == 0 && seen.restored == 0, "the connection handler was called (%u lost, %u restored)",
                      seen.lost, seen.restored);
        ck_assert(evd_client_is_connected(client));

        (void)evd_client_free(client);
        ck_assert_int_eq(test_daemon_stop(&d2), 0);
        manager_close(&m);
        close(p[0]);
        close(p[1]);
}
END_TEST

/* A stop that is not a restart: systemd closes the store, and with it every connection. */
START_TEST(test_store_closed_means_eof) {
        Manager m;
        TestDaemon d;
        TestClient c;
        TestDaemonSpawn first = { .setup = manager_with_notify_socket, .userdata = &m };
        int p[2];

        manager_open(&m);
        test_daemon_start_with(&d, fd_store_args, &first);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        (void)watch_pipe(&c, p[0], "edge");
        close(p[0]); /* evd's copy is the only reader now */
        stop_into_store(&d, &m, &c);
        manager_close_store(&m);
        ck_assert_msg(test_client_wait_eof(&c, TIMEOUT), "the client never saw EOF");
        /* The watched pipe's read end went with it: the writer sees EPIPE. */
        (void)signal(SIGPIPE, SIG_IGN);
        ck_assert_int_eq(write(p[1], "x", 1), -1);
        ck_assert_int_eq(errno, EPIPE);
        test_client_close(&c);
        (void)test_daemon_stop(&d);
        manager_close(&m);
        close(p[1]);
}
END_TEST

/* No manager listening: the store cannot be used, and SIGTERM is the usual shutdown. */
START_TEST(test_no_manager_is_plain_shutdown) {
        Manager m;
        TestDaemon d;
        TestClient c;
        TestDaemonSpawn first = { .setup = manager_with_notify_socket, .userdata = &m };

        manager_open(&m);
        close(m.fd);
        (void)unlink(m.path); /* NOTIFY_SOCKET names nothing */
        m.fd = -1;
        test_daemon_start_with(&d, fd_store_args, &first);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        json_decref(test_client_result(&c, "ping", NULL, NULL, 0));
        ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
        json_decref(test_client_notification(&c, "shutdown", TIMEOUT));
        ck_assert_msg(test_client_wait_eof(&c, TIMEOUT), "the client never saw EOF");
        ck_assert_int_eq(test_daemon_wait_exit(&d, TIMEOUT), 0);
        ck_assert_msg(test_daemon_log_contains(&d, "Cannot hand the state to systemd's fd store"), "see %s", d.log);
        test_client_close(&c);
        (void)test_daemon_stop(&d);
        test_remove_tree(m.dir);
}
END_TEST

/* A store with a state but no carrier: a fresh start that closes what it was given. */
START_TEST(test_incomplete_store_is_fresh_start) {
        Manager m;
        TestDaemon d1, d2;
        TestClient c, c2;
        TestDaemonSpawn first = { .setup = manager_with_notify_socket, .userdata = &m };
        TestDaemonSpawn next = { .setup = manager_pass_store, .userdata = &m };

        manager_open(&m);
        test_daemon_start_with(&d1, fd_store_args, &first);
        ck_assert_int_eq(test_client_connect(&c, d1.socket), 0);
        json_decref(test_client_result(&c, "ping", NULL, NULL, 0));
        stop_into_store(&d1, &m, &c);
        manager_drop(&m, manager_find(&m, "evd-fds"));
        /* The carrier held the only other reference to the connection. */
        ck_assert_msg(test_client_wait_eof(&c, TIMEOUT), "the client never saw EOF");
        next.dir = d1.dir;
        test_daemon_start_with(&d2, fd_store_args, &next);
        ck_assert_msg(test_daemon_log_contains(&d2, "Cannot take the previous process's state"), "see %s", d2.log);
        ck_assert_int_eq(test_client_connect(&c2, d2.socket), 0);
        ck_assert_int_eq(status_int(&c2, "clients"), 1);
        test_client_close(&c2);
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d2), 0);
        manager_close(&m);
}
END_TEST

/* ---- the carrier alone ----------------------------------------------------------------- */

static bool same_file(int a, int b) {
        struct stat sa, sb;

        return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

START_TEST(test_carrier_keeps_numbers) {
        enum { N = 600 }; /* three messages */
        int fds[N], w, r;
        FdSet got;

        /* Pipes and dups of them: fds that share an open file must all arrive. */
        for (int i = 0; i < N; i += 3) {
                int p[2];

                ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
                fds[i] = p[0];
                fds[i + 1] = p[1];
                fds[i + 2] = i + 2 < N ? fcntl(p[0], F_DUPFD_CLOEXEC, 3) : -1;
        }
        ck_assert_int_eq(fdcarrier_new(N, &w, &r), 0);
        ck_assert_int_eq(fdcarrier_send(w, fds, N), 0);
        close(w);
        ck_assert_int_eq(fdcarrier_receive(r, &got), N);
        close(r);
        for (int i = 0; i < N; i++) {
                int fd = fdset_take(&got, fds[i]);

                ck_assert_int_ge(fd, 0);
                ck_assert_int_ne(fd, fds[i]);
                ck_assert(same_file(fd, fds[i]));
                ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
                close(fd);
                close(fds[i]);
        }
        ck_assert_int_eq(got.count, 0);
        fdset_done(&got);
}
END_TEST

static int open_fds(void) {
        int n = 0;

        for (int fd = 0; fd < 4096; fd++)
                n += fcntl(fd, F_GETFD) >= 0;
        return n;
}

/* Not a carrier, cut short, a number twice: refused, with every fd that came closed. */
START_TEST(test_carrier_refusals) {
        int before = open_fds(), sp[2], fds[2], w, r;
        FdSet got;
        char junk[100] = { 0 };

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        ck_assert_int_eq(write(sp[0], junk, sizeof(junk)), (ssize_t)sizeof(junk));
        close(sp[0]);
        ck_assert_int_eq(fdcarrier_receive(sp[1], &got), -EBADMSG);
        close(sp[1]);

        ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
        ck_assert_int_eq(fdcarrier_new(2, &w, &r), 0);
        ck_assert_int_eq(fdcarrier_send(w, (int[]){ fds[0], fds[0] }, 2), 0);
        close(w);
        ck_assert_int_eq(fdcarrier_receive(r, &got), -EBADMSG);
        ck_assert_int_eq(got.count, 0);
        close(r);

        /* The writer never finished (still open): not complete, refused. */
        ck_assert_int_eq(fdcarrier_new(1, &w, &r), 0);
        ck_assert_int_eq(fdcarrier_send(w, fds, 1), 0);
        ck_assert_int_eq(fdcarrier_receive(r, &got), -EBADMSG);
        close(w);
        close(r);
        close(fds[0]);
        close(fds[1]);
        ck_assert_int_eq(open_fds(), before);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("fdstore");
        TCase *tc = test_tcase(s, "restart", 60);

        tcase_add_test(tc, test_restart_keeps_clients);
        tcase_add_test(tc, test_libevd_does_not_notice);
        tcase_add_test(tc, test_store_closed_means_eof);
        tcase_add_test(tc, test_no_manager_is_plain_shutdown);
        tcase_add_test(tc, test_incomplete_store_is_fresh_start);
        tc = test_tcase(s, "carrier", 30);
        tcase_add_test(tc, test_carrier_keeps_numbers);
        tcase_add_test(tc, test_carrier_refusals);
        return s;
}

int main(void) {
        return test_run_suite(suite());
}
