/* test-hostile-eof.c - half-close and EOF: a disconnect mid-batch, SHUT_WR, requests during
 * shutdown
 *
 * Part of the hostile suite: test-hostile.c runs it (see there for what every test proves
 * at its end: the bystander, the fd baseline, exit 0); helpers in util-hostile.h, util-rpc.h.
 */

#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <liburing.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "macro.h"
#include "test-hostile.h"
#include "util-daemon.h"
#include "util-fd.h"
#include "util-hostile.h"
#include "util-json.h"
#include "util-rpc.h"
#include "util-time.h"
#include "wire.h"

/* A client that sends a large batch (32 watches, hundreds of timers, or thousands of pings)
 * and closes at once: the daemon executes it, fails to answer, and frees all of it. */
START_TEST(test_disconnect_mid_batch) {
        const unsigned rounds = under_valgrind() ? 6 : slow_build() ? 16 : 40;
        TestDaemon d;
        Bystander b;
        TestClient h;
        char *buf = malloc(EVD_MAX_PACKET);
        int fds[EVD_MAX_FDS], base;

        ck_assert_ptr_nonnull(buf);
        base = start_with_bystander(&d, NULL, &b);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = make_eventfd();
        for (unsigned round = 0; round < rounds; round++) {
                size_t len = 0;

                ck_assert_int_eq(test_client_connect(&h, d.socket), 0);
                if (round % 2 == 0) {
                        buf[len++] = '[';
                        for (int i = 0; i < EVD_MAX_FDS; i++)
                                len += (size_t)sprintf(
                                        buf + len,
                                        "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":"
                                        "\"watch\",\"params\":{\"fd\":%d,\"events\":["
                                        "\"in\"],\"mode\":\"edge\"}}",
                                        i ? "," : "", i, i);
                        for (int i = 0; len < EVD_MAX_PACKET - 200; i++)
                                len += (size_t)sprintf(buf + len,
                                                       ",{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":"
                                                       "\"timer\",\"params\":{\"after\":%d}}",
                                                       100 + i, 100 + i % 7);
                        buf[len++] = ']';
                        test_client_send_raw(&h, buf, len, fds, EVD_MAX_FDS);
                        /* Make them ready: their notices are queued when the client goes. */
                        for (size_t i = 0; i < ELEMENTSOF(fds) && round % 4 == 0; i++)
                                poke_eventfd(fds[i]);
                } else {
                        /* Replies that outgrow the socket: the daemon is mid-send at EOF. */
                        for (int k = 0; k < 4; k++) {
                                len = 0;
                                buf[len++] = '[';
                                for (int i = 0; i < 1024; i++)
                                        len += (size_t)sprintf(buf + len,
                                                               "%s{\"jsonrpc\":\"2.0\",\"id\":%d,"
                                                               "\"method\":\"status\"}",
                                                               i ? "," : "", i);
                                buf[len++] = ']';
                                test_client_send_raw(&h, buf, len, NULL, 0);
                        }
                }
                test_client_close(&h);
        }
        wait_status_within(&b.c, "clients", 1, TIMEOUT);
        wait_status_within(&b.c, "watches", 1, TIMEOUT);
        wait_status_within(&b.c, "timers", 0, TIMEOUT);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        free(buf);
        finish(&d, &b, base);
}
END_TEST

/*
 * Half-closes. SHUT_RD by the client: the daemon's next send to it fails (EPIPE) and it
 * drops the client with everything it owned. SHUT_WR after pipelining far more replies than
 * the socket holds (the daemon pauses reading it, back-pressure): every reply still arrives,
 * in order, then EOF. SHUT_RDWR without closing: seen as a hang-up, cleaned up.
 */
START_TEST(test_half_close) {
        const int batches = under_valgrind() ? 10 : 40, per_batch = 50;
        TestDaemon d;
        Bystander b;
        TestClient h;
        char *buf = malloc(EVD_MAX_PACKET);
        json_int_t expect = 1;
        int base, p[2];

        ck_assert_ptr_nonnull(buf);
        base = start_with_bystander(&d, NULL, &b);

        /* SHUT_RD with watches: a ready, then the daemon notices on its send. */
        ck_assert_int_eq(test_client_connect(&h, d.socket), 0);
        make_pipe(p);
        for (int i = 0; i < 3; i++)
                (void)watch_fd(&h, p[0], "in", "edge", NULL);
        ck_assert_int_eq(shutdown(h.fd, SHUT_RD), 0);
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        expect_fd_count(&d, base, TIMEOUT);
        wait_status_within(&b.c, "clients", 1, TIMEOUT);
        test_client_close(&h);

        /* SHUT_WR behind 2,000 pipelined stats requests (about 2 MB of replies). */
        ck_assert_int_eq(test_client_connect(&h, d.socket), 0);
        for (int k = 0; k < batches; k++) {
                size_t len = 0;

                buf[len++] = '[';
                for (int i = 0; i < per_batch; i++)
                        len += (size_t)sprintf(
                                buf + len, "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"stats\"}",
                                i ? "," : "", k * per_batch + i + 1);
                buf[len++] = ']';
                test_client_send_raw(&h, buf, len, NULL, 0);
        }
        ck_assert_int_eq(shutdown(h.fd, SHUT_WR), 0);
        while (expect <= (json_int_t)batches * per_batch) {
                json_t *r = next_reply(&h, "stats after SHUT_WR"), *item;
                size_t i;

                ck_assert_msg(json_is_array(r), "a batch reply part is not an array");
                json_array_foreach(r, i, item) {
                        ck_assert_int_eq(json_integer_value(json_object_get(item, "id")), expect);
                        ck_assert_ptr_nonnull(json_object_get(item, "result"));
                        expect++;
                }
                json_decref(r);
        }
        ck_assert_msg(test_client_wait_eof(&h, TIMEOUT), "no EOF after the last reply");
        test_client_close(&h);

        /* SHUT_RDWR, the fd kept open. */
        ck_assert_int_eq(test_client_connect(&h, d.socket), 0);
        for (int i = 0; i < 3; i++)
                (void)watch_fd(&h, p[0], "in", "edge", NULL);
        ck_assert_int_eq(shutdown(h.fd, SHUT_RDWR), 0);
        expect_fd_count(&d, base, TIMEOUT);
        /* Sending on it now fails here, not in the daemon. */
        ck_assert_int_eq(test_client_sendmsg(&h, "{}", 2, NULL, 0), -EPIPE);
        test_client_close(&h);
        close_pair(p);
        free(buf);
        finish(&d, &b, base);
}
END_TEST

/* Fill the daemon's output for @c until it stops reading @c (back-pressure): pipelined
 * stats batches, never read, until a send would block. */
static void stall_hard(TestClient *c) {
        char *buf = malloc(EVD_MAX_PACKET);
        long long deadline = ms_now() + TIMEOUT;
        size_t len = 0;
        int blocked = 0;

        ck_assert_ptr_nonnull(buf);
        buf[len++] = '[';
        for (int i = 0; i < 100; i++)
                len += (size_t)sprintf(buf + len,
                                       "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"stats\"}",
                                       i ? "," : "", i);
        buf[len++] = ']';
        while (blocked < 3) {
                ck_assert_msg(ms_now() < deadline,
                              "the daemon kept reading a client that reads nothing");
                if (send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
                        blocked = 0;
                        continue;
                }
                ck_assert_int_eq(errno, EAGAIN);
                blocked++;
                (void)poll(NULL, 0, 50);
        }
        free(buf);
}

/*
 * Requests after `shutdown`. A client that reads nothing (stalled, the daemon has paused
 * reading it) keeps the daemon in its grace period; meanwhile another client, told to shut
 * down, keeps sending watches with 32 fds, batches and notifications: every request with an
 * id gets -32008, none runs. The stalled client cannot hold the daemon past its grace period
 * (3 s): it logs so and exits 0 within 3 s + 2 s of SIGTERM; the bystander gets `shutdown`
 * and EOF.
 */
START_TEST(test_requests_during_shutdown) {
        static const char batch[] =
                "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\",\"params\":"
                "{\"fd\":0,\"events\":[\"in\"],\"mode\":\"edge\"}},"
                "{\"jsonrpc\":\"2.0\",\"method\":\"watch\",\"params\":"
                "{\"fd\":1,\"events\":[\"in\"],\"mode\":\"edge\"}},"
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"timer\",\"params\":"
                "{\"after\":0}},{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":"
                "\"hello\",\"params\":{\"protocol\":1}}]";
        TestDaemon d;
        Bystander b;
        TestClient stalled, h;
        json_t *m, *r;
        int fds[EVD_MAX_FDS], status = -1;
        long long t0;
        unsigned answered = 0;

        (void)start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&stalled, d.socket), 0);
        ck_assert_int_eq(test_client_connect(&h, d.socket), 0);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = make_eventfd();
        stall_hard(&stalled);
        ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
        t0 = ms_now();
        m = wait_for(&h, "shutdown", NULL, 0, TIMEOUT);
        ck_assert_msg(m, "no shutdown notification");
        json_decref(m);
        /* Until the daemon is gone: each batch with 32 fds is answered with three -32008. */
        for (;;) {
                json_t *item;
                size_t i;

                if (test_client_sendmsg(&h, batch, sizeof(batch) - 1, fds, EVD_MAX_FDS) < 0)
                        break;
                r = scanned(test_client_reply(&h, TIMEOUT));
                if (!r)
                        break;
                ck_assert_msg(json_is_array(r) && json_array_size(r) == 3, "not 3 replies");
                json_array_foreach(r, i, item)
                        check_error(item, -32008, NULL, NULL);
                json_decref(r);
                answered++;
                ck_assert_msg(ms_now() - t0 < 8000, "the daemon still answers 8 s after SIGTERM");
        }
        status = test_daemon_wait_exit(&d, (int)MAX(6000 - (ms_now() - t0), 1LL));
        ck_assert_msg(status == 0, "the daemon did not exit 0 within 6 s of SIGTERM (status %d)",
                      status);
        printf("shutdown: %u batches answered with -32008; the daemon exited %lld ms after "
               "SIGTERM\n",
               answered, ms_now() - t0);
        ck_assert_msg(answered > 0, "no request reached the daemon during its shutdown");
        ck_assert(test_daemon_log_contains(&d, "Shutdown grace period over"));
        m = wait_for(&b.c, "shutdown", NULL, 0, TIMEOUT);
        ck_assert_msg(m, "the bystander got no shutdown notification");
        json_decref(m);
        ck_assert(test_client_wait_eof(&b.c, TIMEOUT));
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        test_client_close(&h);
        test_client_close(&stalled);
        bystander_close(&b);
        stop_daemon(&d);
}
END_TEST

/* ---- tests --------------------------------------------------------------------------- */

void hostile_eof_tests(TCase *tc) {
        tcase_add_test(tc, test_disconnect_mid_batch);
        tcase_add_test(tc, test_half_close);
        tcase_add_test(tc, test_requests_during_shutdown);
}
