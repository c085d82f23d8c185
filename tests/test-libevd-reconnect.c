/* test-libevd-reconnect.c - losing the daemon: reconnect and re-registration (remaining
 * timer time), and without reconnect
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

/* ---- losing the daemon ---- */

typedef struct Conn {
        unsigned lost, restored;
        int lost_error, restored_error;
        bool flag_lost, flag_restored;
} Conn;

static int on_connection(struct evd_client *c, enum evd_connection_event ev, int error,
                         void *userdata) {
        Conn *k = userdata;

        if (ev == EVD_CONNECTION_LOST) {
                k->lost++;
                k->lost_error = error;
                k->flag_lost = true;
        } else if (ev == EVD_CONNECTION_RESTORED) {
                k->restored++;
                k->restored_error = error;
                k->flag_restored = true;
        }
        return 0;
}

/* Start a new evd on the old one's socket path, like a service manager restarting it. */
static void daemon_restart(TestDaemon *d) {
        const char *bin = getenv("EVD_TEST_DAEMON");
        const char *backend = getenv("EVD_TEST_BACKEND");
        uint64_t deadline = now_ms() + (uint64_t)WAIT_MS;

        d->pid = fork();
        ck_assert_int_ge(d->pid, 0);
        if (d->pid == 0) {
                int log = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

                if (log >= 0)
                        (void)dup2(log, STDERR_FILENO);
                if (backend && *backend)
                        execl(bin, bin, "--socket", d->socket, "--backend", backend, (char *)NULL);
                else
                        execl(bin, bin, "--socket", d->socket, (char *)NULL);
                _exit(127);
        }
        for (;;) {
                TestClient probe;

                if (test_client_connect(&probe, d->socket) == 0) {
                        test_client_close(&probe);
                        return;
                }
                ck_assert_msg(now_ms() < deadline, "restarted evd did not listen");
                usleep(5000);
        }
}

START_TEST(test_reconnect) {
        Conn k = {0};
        Seen ws = {0}, fired = {0}, ticks = {0}, late = {0}, added = {0};
        Done call = {0}, inflight = {0};
        uint64_t w_fired, w_live, t_tick, t_late, w_added;
        int p1[2], p2[2], p3[2], fd;
        json_t *w;
        uint64_t t0;

        evd_client_set_reconnect(client, true);
        evd_client_set_connection_handler(client, on_connection, &k);
        fd = evd_client_fd(client);
        make_pipe(p1);
        make_pipe(p2);
        make_pipe(p3);

        /* w_fired: oneshot that fired and was not re-armed; w_live: armed, quiet. */
        ck_assert_int_eq(evd_watch_add(client, p1[0], EVD_IN, EVD_ONESHOT, on_watch, &fired,
                                       WAIT_MS, &w_fired),
                         0);
        ck_assert_int_eq(write(p1[1], "x", 1), 1);
        ck_assert(run_until(&fired.flag, WAIT_MS));
        ck_assert_int_eq(
                evd_watch_add(client, p2[0], EVD_IN, EVD_ONESHOT, on_watch, &ws, WAIT_MS, &w_live),
                0);
        ck_assert_int_eq(evd_timer_after(client, 20000, 20000, on_timer, &ticks, WAIT_MS, &t_tick),
                         0);
        ck_assert_int_eq(evd_timer_after(client, 1500000, 0, on_timer, &late, WAIT_MS, &t_late), 0);
        t0 = now_ms();
        ck_assert(run_until(&ticks.flag, WAIT_MS));

        test_daemon_kill(&daemon_);
        ck_assert(run_until(&k.flag_lost, WAIT_MS));
        ck_assert_int_eq(k.lost_error, -ECONNRESET);
        ck_assert(!evd_client_is_connected(client));

        /* While the daemon is away: a new watch and a call are queued, not refused. */
        ck_assert_int_eq(evd_watch_add_async(client, p3[0], EVD_IN, EVD_ONESHOT, on_watch, &added,
                                             NULL, NULL, &w_added),
                         0);
        ck_assert_int_eq(evd_call_async(client, "ping", NULL, on_done, &call), 0);
        ck_assert_int_eq(write(p3[1], "x", 1), 1);
        run_for(150);

        daemon_restart(&daemon_);
        ck_assert(run_until(&k.flag_restored, WAIT_MS));
        ck_assert_uint_eq(k.restored, 1);
        ck_assert_int_eq(k.restored_error, 0);
        ck_assert(evd_client_is_connected(client));
        ck_assert_int_eq(evd_client_fd(client), fd);
        ck_assert(run_until(&call.flag, WAIT_MS));
        ck_assert_int_eq(call.r, 0);
        json_decref(call.result);

        /* Everything is registered again, under the same ids (tags). */
        w = listing(client, "watches");
        ck_assert_uint_eq(json_array_size(w), 3);
        json_decref(w);
        ck_assert_uint_eq(status_count(client, "timers"), 2);

        /* The watch queued meanwhile fires; so does the live one when written. */
        ck_assert(run_until(&added.flag, WAIT_MS));
        ck_assert_uint_eq(added.id, w_added);
        ck_assert_int_eq(write(p2[1], "x", 1), 1);
        ck_assert(run_until(&ws.flag, WAIT_MS));
        ck_assert_uint_eq(ws.id, w_live);

        /* The interval timer keeps ticking. */
        ticks.flag = false;
        ck_assert(run_until(&ticks.flag, WAIT_MS));

        /* The fired oneshot stays quiet until re-armed although its pipe is readable... */
        run_for(100);
        ck_assert_uint_eq(fired.calls, 1);
        fired.flag = false;
        ck_assert_int_eq(evd_watch_arm(client, w_fired, WAIT_MS), 0);
        ck_assert(run_until(&fired.flag, WAIT_MS));
        ck_assert_uint_eq(fired.calls, 2);

        /* The one-shot timer kept its remaining time: it fires 1.5 s after it was made. */
        ck_assert(run_until(&late.flag, WAIT_MS));
        ck_assert_uint_ge(now_ms() - t0, 1400);
        ck_assert_uint_eq(late.calls, 1);

        /* A graceful stop: the call in flight fails, then everything comes back again. */
        k.flag_lost = k.flag_restored = false;
        ck_assert_int_eq(evd_timer_cancel(client, t_tick, WAIT_MS), 0);
        ck_assert_int_eq(evd_call_async(client, "ping", NULL, on_done, &inflight), 0);
        ck_assert_int_eq(kill(daemon_.pid, SIGTERM), 0);
        ck_assert(run_until(&k.flag_lost, WAIT_MS));
        ck_assert(k.lost_error == -ESHUTDOWN || k.lost_error == -ECONNRESET);
        ck_assert(run_until(&inflight.flag, WAIT_MS));
        json_decref(inflight.result);
        {
                int status;

                ck_assert_int_eq(waitpid(daemon_.pid, &status, 0), daemon_.pid);
                ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                daemon_.pid = 0;
        }
        daemon_restart(&daemon_);
        ck_assert(run_until(&k.flag_restored, WAIT_MS));
        ck_assert_uint_eq(listing_size(client, "watches"), 3);
        ck_assert_uint_eq(status_count(client, "timers"), 0);

        close(p1[0]);
        close(p1[1]);
        close(p2[0]);
        close(p2[1]);
        close(p3[0]);
        close(p3[1]);
}
END_TEST

/* A re-exec is not a lost connection: the handler is never called, the watch and the
 * timer go on, a call made during the gap is answered. */
START_TEST(test_reexec_is_not_a_reconnect) {
        Conn k = {0};
        Seen ws = {0}, ticks = {0};
        Done call = {0};
        uint64_t w, t;
        int p[2];

        evd_client_set_reconnect(client, true);
        evd_client_set_connection_handler(client, on_connection, &k);
        make_pipe(p);
        ck_assert_int_eq(evd_watch_add(client, p[0], EVD_IN, EVD_EDGE, on_watch, &ws, WAIT_MS, &w), 0);
        ck_assert_int_eq(evd_timer_after(client, 20000, 20000, on_timer, &ticks, WAIT_MS, &t), 0);
        ck_assert(run_until(&ticks.flag, WAIT_MS));

        ck_assert_int_eq(kill(daemon_.pid, SIGUSR2), 0);
        ck_assert_int_eq(evd_call_async(client, "ping", NULL, on_done, &call), 0);
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        ck_assert(run_until(&call.flag, WAIT_MS));
        ck_assert_int_eq(call.r, 0);
        json_decref(call.result);
        ck_assert(run_until(&ws.flag, WAIT_MS));
        ck_assert_uint_eq(ws.id, w);
        for (uint64_t end = now_ms() + (uint64_t)WAIT_MS, gen = 0; gen != 1;) {
                json_t *st = NULL;

                ck_assert_msg(now_ms() < end, "no re-exec within %d ms", WAIT_MS);
                ck_assert_int_eq(evd_call(client, "status", NULL, WAIT_MS, &st), 0);
                gen = (uint64_t)json_integer_value(json_object_get(json_object_get(st, "reexec"), "generation"));
                json_decref(st);
                if (gen != 1)
                        run_for(10);
        }
        ticks.flag = false;
        ck_assert(run_until(&ticks.flag, WAIT_MS));
        ck_assert_msg(k.lost == 0 && k.restored == 0, "the connection handler was called (%u lost, %u restored)",
                      k.lost, k.restored);
        ck_assert(evd_client_is_connected(client));
        close(p[0]);
        close(p[1]);
}
END_TEST

START_TEST(test_lost_without_reconnect) {
        Conn k = {0};
        Done call = {0};
        Seen s = {0};
        uint64_t id;
        int p[2], r = 0;

        make_pipe(p);
        evd_client_set_connection_handler(client, on_connection, &k);
        ck_assert_int_eq(
                evd_watch_add(client, p[0], EVD_IN, EVD_ONESHOT, on_watch, &s, WAIT_MS, &id), 0);
        ck_assert_int_eq(evd_call_async(client, "debug-wedge", json_pack("{s:f}", "seconds", 0.3),
                                        on_done, &call),
                         0);
        ck_assert_int_eq(evd_client_dispatch(client), 0);
        test_daemon_kill(&daemon_);
        for (int i = 0; i < 100 && r == 0; i++) {
                struct pollfd pfd = {.fd = evd_client_fd(client), .events = POLLIN};

                (void)poll(&pfd, 1, WAIT_MS);
                r = evd_client_dispatch(client);
        }
        ck_assert_int_eq(r, -ECONNRESET);
        ck_assert_uint_eq(k.lost, 1);
        ck_assert(call.flag);
        ck_assert_int_eq(call.r, -ECONNRESET);
        ck_assert_int_eq(evd_client_dispatch(client), -ECONNRESET);
        ck_assert_int_eq(evd_call(client, "ping", NULL, 100, NULL), -ENOTCONN);
        ck_assert_int_eq(evd_watch_remove(client, id, 100), -ENOTCONN);
        close(p[0]);
        close(p[1]);
}
END_TEST

/* ---- tests --------------------------------------------------------------------------- */

void libevd_reconnect_tests(TCase *tc_debug, TCase *tc_reconnect) {
        tcase_add_test(tc_debug, test_lost_without_reconnect);
        tcase_add_test(tc_reconnect, test_reconnect);
        tcase_add_test(tc_reconnect, test_reexec_is_not_a_reconnect);
}
