/* test-hostile-fds.c - hostile fds: floods past MSG_CTRUNC, epoll and io_uring fds watched,
 * fds cycled through the daemon's queue
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

/* 250 fds in one packet (MSG_CTRUNC: the daemon's buffer takes 32): -32006, nothing runs,
 * every fd that arrived is closed, again and again; 253 is the kernel's own maximum and 254
 * never leaves the client (EINVAL from sendmsg). */
START_TEST(test_fd_flood) {
        static const char watch[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\",\"params\":"
                                    "{\"fd\":0,\"events\":[\"in\"],\"mode\":\"edge\"}}";
        static const char note[] = "{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}";
        static const char pings[] = "[{\"jsonrpc\":\"2.0\",\"id\":\"f\",\"method\":\"ping\"},"
                                    "{\"jsonrpc\":\"2.0\",\"id\":\"g\",\"method\":\"ping\"}]";
        const unsigned rounds = under_valgrind() ? 5 : 40;
        TestDaemon d;
        Bystander b;
        TestClient c;
        int fds[254], base;
        json_t *r;

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = make_eventfd();
        ck_assert_int_eq(test_client_sendmsg(&c, watch, sizeof(watch) - 1, fds, 250), 0);
        r = next_reply(&c, "a watch with 250 fds");
        check_error(r, -32006, NULL, "1");
        json_decref(r);
        /* Without an id, or without any request: nothing comes back. */
        ck_assert_int_eq(test_client_sendmsg(&c, note, sizeof(note) - 1, fds, 250), 0);
        ck_assert_int_eq(test_client_sendmsg(&c, "", 0, fds, 250), 0);
        expect_no_reply(&c);
        ck_assert_int_eq(test_client_sendmsg(&c, watch, sizeof(watch) - 1, fds, 253), 0);
        r = next_reply(&c, "a watch with 253 fds");
        check_error(r, -32006, NULL, "1");
        json_decref(r);
        ck_assert_int_eq(test_client_sendmsg(&c, watch, sizeof(watch) - 1, fds, 254), -EINVAL);
        /* Pipelined: every packet answered, in order, none executed. */
        for (unsigned i = 0; i < rounds; i++)
                ck_assert_int_eq(test_client_sendmsg(&c, pings, sizeof(pings) - 1, fds, 250), 0);
        for (unsigned i = 0; i < rounds; i++) {
                r = next_reply(&c, "pings with 250 fds");
                ck_assert_msg(json_is_array(r) && json_array_size(r) == 2, "round %u", i);
                check_error(json_array_get(r, 0), -32006, NULL, "\"f\"");
                check_error(json_array_get(r, 1), -32006, NULL, "\"g\"");
                json_decref(r);
        }
        ping(&c);
        ck_assert_int_eq(status_int(&c, "watches"), 1); /* the bystander's */
        expect_fd_count(&d, base + 1, TIMEOUT);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        test_client_close(&c);
        finish(&d, &b, base);
}
END_TEST

/*
 * Unusual watch targets. An epoll fd is an ordinary pollable fd: its watch fires. An epoll
 * set holding the client's own connection does not pin that connection (epoll holds no
 * reference), so the client is still seen to go away. An io_uring fd never reaches the
 * daemon on Linux >= 6.7: the kernel refuses to pass io_uring files with SCM_RIGHTS
 * (sendmsg fails with EINVAL), so that is what is documented and checked; on an older
 * kernel that passes it, the daemon must either watch it (and a completion makes it ready)
 * or refuse it with -32003/-32602.
 */
START_TEST(test_watch_epoll_and_uring) {
        static const char watch[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\",\"params\":"
                                    "{\"fd\":0,\"events\":[\"in\"],\"mode\":\"oneshot\"}}";
        struct epoll_event ev = { .events = EPOLLIN };
        struct io_uring ring;
        TestDaemon d;
        Bystander b;
        TestClient c, self;
        json_t *r, *m;
        json_int_t w;
        int base, ep, ep_self, p[2], rc;

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);

        /* An epoll set with a pipe in it. */
        make_pipe(p);
        ep = epoll_create1(EPOLL_CLOEXEC);
        ck_assert_int_ge(ep, 0);
        ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), 0);
        w = watch_fd(&c, ep, "in", "oneshot", json_string("epoll"));
        m = wait_for(&c, "ready", "watch", w, QUIET_MS);
        ck_assert_msg(!m, "an empty epoll set reported ready");
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        m = wait_for(&c, "ready", "watch", w, TIMEOUT);
        ck_assert_msg(m, "the epoll fd's watch did not fire");
        ck_assert_msg(json_text_is(member(member(m, "params"), "events"), "[\"in\"]"),
                      "epoll ready with other events");
        json_decref(m);
        call_ok(&c, "unwatch", json_pack("{s:I}", "watch", w), NULL, 0);
        close(ep);
        close_pair(p);

        /* An epoll set holding the watcher's own connection to evd. */
        ck_assert_int_eq(test_client_connect(&self, d.socket), 0);
        ep_self = epoll_create1(EPOLL_CLOEXEC);
        ck_assert_int_ge(ep_self, 0);
        ck_assert_int_eq(epoll_ctl(ep_self, EPOLL_CTL_ADD, self.fd, &ev), 0);
        (void)watch_fd(&self, ep_self, "in", "edge", NULL);
        close(ep_self);
        test_client_close(&self);
        wait_status_within(&c, "clients", 2, TIMEOUT);
        ck_assert_int_eq(status_int(&c, "watches"), 1); /* the bystander's */

        /* An io_uring fd. */
        rc = io_uring_queue_init(4, &ring, 0);
        if (rc < 0) {
                printf("io_uring_setup refused (%s): io_uring fd case skipped\n", strerror(-rc));
        } else {
                rc = test_client_sendmsg(&c, watch, sizeof(watch) - 1, &ring.ring_fd, 1);
                if (rc == -EINVAL) {
                        printf("the kernel refuses io_uring fds in SCM_RIGHTS (EINVAL), as Linux "
                               ">= 6.7 does: the daemon never sees one\n");
                } else {
                        ck_assert_int_eq(rc, 0);
                        r = next_reply(&c, watch);
                        if (json_object_get(r, "result")) {
                                struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

                                w = int_member(member(r, "result"), "watch");
                                io_uring_prep_nop(sqe);
                                ck_assert_int_eq(io_uring_submit(&ring), 1);
                                m = wait_for(&c, "ready", "watch", w, TIMEOUT);
                                ck_assert_msg(m, "a completion did not make the ring fd ready");
                                json_decref(m);
                                call_ok(&c, "unwatch", json_pack("{s:I}", "watch", w), NULL, 0);
                        } else {
                                ck_assert_msg(error_code(r) == -32003 || error_code(r) == -32602,
                                              "an io_uring fd: unexpected error %d", error_code(r));
                        }
                        json_decref(r);
                }
                io_uring_queue_exit(&ring);
        }
        ping(&c);
        test_client_close(&c);
        finish(&d, &b, base);
}
END_TEST

/*
 * The daemon refuses to watch a connection to itself, because it would then hold its own
 * peer open and never see the client go away (PROTOCOL.md, watch). The same cycle is made
 * one step removed: the client's connection travels as SCM_RIGHTS into the receive queue of
 * a socketpair, and the other end of that pair is what the client asks evd to watch. The
 * in-flight connection stays referenced from the queue of a socket the daemon holds, so the
 * kernel's unix garbage collector cannot free it, the daemon never gets EOF, and the watch
 * (and the connection, and the client's quota) outlive the client for ever.
 */
START_TEST(test_fd_cycle_through_queue) {
        int domain_opt = 1, off = 0;
        socklen_t len = sizeof(domain_opt);
        TestDaemon d;
        Bystander b;
        TestClient c;
        int base, sv[2], tv[2], n;
        json_t *reply;
        bool have_passrights;

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);

        /* 1. sv[1]'s queue already holds a reference to the client's end of its connection:
         * watching it would keep that connection alive forever. Refused. */
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(wire_send_blocking(sv[0], "x", 1, &c.fd, 1), 0);
        reply = call(&c, "watch", json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge"), &sv[1], 1);
        check_error(reply, -32602, "fd", NULL);
        json_decref(reply);

        /* 2. Watched while empty, then the client tries to queue its connection into it:
         * the daemon turned fd passing off on it (SO_PASSRIGHTS, where the kernel has it). */
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tv), 0);
        have_passrights = getsockopt(tv[1], SOL_SOCKET, 83 /* SO_PASSRIGHTS */, &domain_opt, &len) == 0;
        (void)watch_fd(&c, tv[1], "in", "edge", NULL);
        if (have_passrights)
                ck_assert_int_eq(wire_send_blocking(tv[0], "x", 1, &c.fd, 1), -EPERM);
        (void)off;

        close_pair(sv);
        close_pair(tv);
        test_client_close(&c);
        /* A client that closed everything is normally gone within milliseconds. */
        n = test_daemon_wait_fd_count(&d, base, 2000);
        ck_assert_msg(n == base,
                      "a client that closed every fd is still connected 2 s later: the daemon "
                      "holds %d fds (baseline %d) and %lld clients, because a watched socket's "
                      "queue holds the client's own connection",
                      n, base, (long long)status_int(&b.c, "clients"));
        finish(&d, &b, base);
}
END_TEST

/* ---- tests --------------------------------------------------------------------------- */

void hostile_fds_tests(TCase *tc) {
        tcase_add_test(tc, test_fd_flood);
        tcase_add_test(tc, test_watch_epoll_and_uring);
        tcase_add_test(tc, test_fd_cycle_through_queue);
}
