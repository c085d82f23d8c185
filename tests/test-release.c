/* test-release.c - what evd lets go of, the kernel lets go of; changes never fail for lack
 * of engine state
 *
 * When evd ends a watch or a connection it closes its fd, and its poll on that file must be
 * gone too: an io_uring poll that survives a failed cancel keeps a reference on the file,
 * so the socket stays open although no fd names it. The only observer that cannot be
 * fooled is the peer: it sees EOF (POLLHUP/POLLRDHUP) exactly when the last reference goes.
 * Each check runs many rounds with readiness racing the removal, because the failure
 * needs a wakeup in flight at the moment of the cancel. meson runs the binary once per
 * backend; EVD_UNDER_VALGRIND scales the rounds down.
 */

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "util-check.h"
#include "util-daemon.h"

#define TIMEOUT TEST_TIMEOUT_MS

static unsigned rounds(unsigned normal) {
        return getenv("EVD_UNDER_VALGRIND") ? normal / 10 : normal;
}

static bool streq(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

static void stream_pair(int p[2]) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p), 0);
}

/* Whether @fd's peer is gone within @timeout_ms. */
static bool peer_closed(int fd, int timeout_ms) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDHUP };
        int r = poll(&pfd, 1, timeout_ms);

        ck_assert_int_ge(r, 0);
        return (pfd.revents & (POLLHUP | POLLRDHUP)) != 0;
}

static json_int_t watch_fd(TestClient *c, int fd, const char *mode) {
        json_t *r = test_client_result(c, "watch", json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", mode),
                                       &fd, 1);
        json_int_t id = json_integer_value(json_object_get(r, "watch"));

        ck_assert_int_gt(id, 0);
        json_decref(r);
        return id;
}

static void spin_us(unsigned us) {
        struct timespec start, now;

        ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &start), 0);
        do
                ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &now), 0);
        while ((now.tv_sec - start.tv_sec) * 1000000 + (now.tv_nsec - start.tv_nsec) / 1000 < us);
}

/* Readiness arrives while the daemon removes the watch; afterwards the peer sees EOF. */
START_TEST(test_unwatch_releases_the_file) {
        const char *mode = _i ? "oneshot" : "edge";
        TestDaemon d;
        TestClient c;

        test_daemon_start(&d, NULL);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        for (unsigned i = 0; i < rounds(1000); i++) {
                _cleanup_close_ int peer = -1;
                char req[128];
                json_int_t id;
                json_t *r;
                int p[2], len;

                stream_pair(p);
                peer = p[1];
                id = watch_fd(&c, p[0], mode);
                ck_assert_int_eq(close(p[0]), 0);
                len = snprintf(req, sizeof(req),
                               "{\"jsonrpc\":\"2.0\",\"id\":\"u\",\"method\":\"unwatch\","
                               "\"params\":{\"watch\":%lld}}",
                               (long long)id);
                test_client_send_raw(&c, req, (size_t)len, NULL, 0);
                /* The readiness lands somewhere in the daemon's handling of the unwatch. */
                spin_us(i % 97);
                /* EPIPE: the daemon was quicker and the file is gone already. */
                ck_assert(write(peer, "x", 1) == 1 || errno == EPIPE);
                r = test_client_reply(&c, TIMEOUT);
                ck_assert_msg(r && json_object_get(r, "result"), "round %u: unwatch failed", i);
                json_decref(r);
                ck_assert_msg(peer_closed(peer, TIMEOUT), "round %u: the %s watch's socket outlived unwatch", i,
                              mode);
                json_array_clear(c.backlog);
        }
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* The same when the connection ends with its watches. */
START_TEST(test_disconnect_releases_the_files) {
        TestDaemon d;

        test_daemon_start(&d, NULL);
        for (unsigned i = 0; i < rounds(300); i++) {
                int peers[3];
                TestClient c;

                ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
                for (size_t k = 0; k < ELEMENTSOF(peers); k++) {
                        int p[2];

                        stream_pair(p);
                        peers[k] = p[1];
                        (void)watch_fd(&c, p[0], k % 2 ? "oneshot" : "edge");
                        ck_assert_int_eq(close(p[0]), 0);
                }
                for (size_t k = 0; k < ELEMENTSOF(peers); k++)
                        ck_assert_int_eq(write(peers[k], "x", 1), 1);
                test_client_close(&c);
                for (size_t k = 0; k < ELEMENTSOF(peers); k++) {
                        ck_assert_msg(peer_closed(peers[k], TIMEOUT), "round %u: socket %zu outlived its client", i,
                                      k);
                        ck_assert_int_eq(close(peers[k]), 0);
                }
        }
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* A client that half-closes after its request gets the reply, then EOF: every time. */
START_TEST(test_half_close_gets_eof) {
        TestDaemon d;

        test_daemon_start(&d, NULL);
        for (unsigned i = 0; i < rounds(1000); i++) {
                static const char ping[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
                TestClient c;
                json_t *r;

                ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
                test_client_send_raw(&c, ping, sizeof(ping) - 1, NULL, 0);
                ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
                r = test_client_reply(&c, TIMEOUT);
                ck_assert_msg(r && json_object_get(r, "result"), "round %u: no reply", i);
                json_decref(r);
                ck_assert_msg(test_client_wait_eof(&c, TIMEOUT), "round %u: no EOF after half-close", i);
                test_client_close(&c);
        }
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* Events changes are poll updates on io_uring, and hello says so. */
START_TEST(test_hello_reports_poll_update) {
        TestDaemon d;
        TestClient c;
        json_t *r, *f;
        bool found = false;
        size_t i;

        test_daemon_start(&d, NULL);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        r = test_client_result(&c, "hello", json_pack("{s:i}", "protocol", 1), NULL, 0);
        if (streq(json_string_value(json_object_get(r, "backend")), "io_uring")) {
                json_array_foreach(json_object_get(r, "features"), i, f)
                        found = found || streq(json_string_value(f), "poll-update");
                ck_assert_msg(found, "io_uring without poll-update");
        }
        json_decref(r);
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* One packet of 40 mode changes (each once used up an io_uring poll generation, and the
 * 16th failed with -32603): every one succeeds, and the watch does what the last said. */
START_TEST(test_modify_batch_of_mode_changes) {
        char buf[8192];
        size_t len = 0, i;
        TestDaemon d;
        TestClient c;
        json_t *r, *item, *w;
        json_int_t id;
        int p[2];

        test_daemon_start(&d, NULL);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        id = watch_fd(&c, p[0], "oneshot");
        buf[len++] = '[';
        for (int k = 0; k < 40; k++)
                len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                                        "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"modify\","
                                        "\"params\":{\"watch\":%lld,\"mode\":\"%s\"}}",
                                        k ? "," : "", k + 1, (long long)id, k % 2 ? "edge" : "oneshot");
        buf[len++] = ']';
        ck_assert_uint_lt(len, sizeof(buf));
        test_client_send_raw(&c, buf, len, NULL, 0);
        r = test_client_reply(&c, TIMEOUT);
        ck_assert_ptr_nonnull(r);
        ck_assert_uint_eq(json_array_size(r), 40);
        json_array_foreach(r, i, item)
                ck_assert_msg(json_object_get(item, "result"), "request %zu failed", i + 1);
        json_decref(r);

        r = test_client_result(&c, "watches", NULL, NULL, 0);
        w = json_array_get(json_object_get(r, "watches"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(w, "mode")), "edge");
        ck_assert(json_is_true(json_object_get(w, "armed")));
        json_decref(r);

        /* Edge: a ready per wakeup, still armed after each. */
        for (int k = 0; k < 2; k++) {
                char byte;

                ck_assert_int_eq(write(p[1], "x", 1), 1);
                r = test_client_notification_for(&c, "ready", "watch", id, TIMEOUT);
                ck_assert_msg(r, "wakeup %d not reported", k + 1);
                json_decref(r);
                ck_assert_int_eq(read(p[0], &byte, 1), 1);
        }
        (void)close(p[0]);
        (void)close(p[1]);
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

static Suite *release_suite(void) {
        Suite *s = suite_create("release");
        TCase *tc = test_tcase(s, "release", 240);

        tcase_add_loop_test(tc, test_unwatch_releases_the_file, 0, 2);
        tcase_add_test(tc, test_disconnect_releases_the_files);
        tcase_add_test(tc, test_half_close_gets_eof);
        tcase_add_test(tc, test_hello_reports_poll_update);
        tcase_add_test(tc, test_modify_batch_of_mode_changes);
        return s;
}

int main(void) {
        (void)signal(SIGPIPE, SIG_IGN);
        return test_run_suite(release_suite());
}
