/* test-daemon-batches.c - batches: replies in order, the batch limits, split replies, UTF-8
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

/* ---- batches ------------------------------------------------------------------------ */

START_TEST(test_batch) {
        static const char batch[] =
                "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},"
                "{\"jsonrpc\":\"2.0\",\"id\":\"two\",\"method\":\"status\"},"
                "{\"jsonrpc\":\"2.0\",\"method\":\"ping\"},"
                "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"hello\",\"params\":{\"protocol\":1}},"
                "5,"
                "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"nope\"},"
                "{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"bogus\":1},"
                "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"timer\",\"params\":{\"after\":-1}},"
                "{\"jsonrpc\":\"2.0\",\"method\":\"timer\",\"params\":{\"after\":100}},"
                "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"status\"}]";
        static const char notes[] = "[{\"jsonrpc\":\"2.0\",\"method\":\"ping\"},{\"jsonrpc\":\"2."
                                    "0\",\"method\":\"ping\"}]";
        TestDaemon d;
        TestClient c;
        json_t *r, *e;

        start(&d, &c, NULL);
        r = raw_call(&c, batch, sizeof(batch) - 1);
        ck_assert_msg(json_is_array(r), "a batch is answered with an array");
        ck_assert_int_eq(json_array_size(r), 8);
        ck_assert_ptr_nonnull(json_object_get(json_array_get(r, 0), "result"));
        assert_json(json_object_get(json_array_get(r, 0), "id"), "1");
        ck_assert_ptr_nonnull(json_object_get(json_array_get(r, 1), "result"));
        assert_json(json_object_get(json_array_get(r, 1), "id"), "\"two\"");
        ck_assert_ptr_nonnull(json_object_get(json_array_get(r, 2), "result"));
        assert_json(json_object_get(json_array_get(r, 2), "id"), "3");
        check_error(json_array_get(r, 3), -32600, NULL, "null");
        check_error(json_array_get(r, 4), -32601, NULL, "4");
        check_error(json_array_get(r, 5), -32600, NULL, "null");
        check_error(json_array_get(r, 6), -32602, "after", "6");
        /* In order: the timer notification before it already ran. */
        e = json_object_get(json_array_get(r, 7), "result");
        assert_json(json_object_get(json_array_get(r, 7), "id"), "7");
        ck_assert_int_eq(int_member(e, "timers"), 1);
        json_decref(r);

        /* A batch of notifications only gets nothing back. */
        test_client_send_raw(&c, notes, sizeof(notes) - 1, NULL, 0);
        expect_no_reply(&c);
        stop(&d, &c);
}
END_TEST

START_TEST(test_batch_limits) {
        const size_t n_big = 1025;
        TestDaemon d;
        TestClient c;
        json_t *r;
        char *buf = malloc(65536);
        size_t len = 0;
        json_int_t expect = 1;

        ck_assert_ptr_nonnull(buf);
        start(&d, &c, NULL);
        /* 1,025 requests: one -32600 object, nothing executed. */
        buf[len++] = '[';
        for (size_t i = 0; i < n_big; i++)
                len += (size_t)sprintf(
                        buf + len,
                        "%s{\"jsonrpc\":\"2.0\",\"method\":\"timer\",\"params\":{\"after\":99}}",
                        i ? "," : "");
        buf[len++] = ']';
        ck_assert_int_le(len, 65536);
        r = raw_call(&c, buf, len);
        ck_assert_msg(json_is_object(r), "an oversize batch is answered with one object");
        check_error(r, -32600, NULL, "null");
        json_decref(r);
        ck_assert_int_eq(status_int(&c, "timers"), 0);

        /* 1,024 requests: 1,024 replies, in order (in one or more packets). */
        len = 0;
        buf[len++] = '[';
        for (size_t i = 1; i <= 1024; i++)
                len += (size_t)sprintf(buf + len,
                                       "%s{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"ping\"}",
                                       i > 1 ? "," : "", i);
        buf[len++] = ']';
        ck_assert_int_le(len, 65536);
        test_client_send_raw(&c, buf, len, NULL, 0);
        while (expect <= 1024) {
                json_t *m;
                size_t i;

                r = test_client_reply(&c, TIMEOUT);
                ck_assert_msg(json_is_array(r), "batch replies come as arrays");
                json_array_foreach(r, i, m) {
                        ck_assert_int_eq(json_integer_value(json_object_get(m, "id")), expect);
                        ck_assert_ptr_nonnull(json_object_get(m, "result"));
                        expect++;
                }
                json_decref(r);
        }
        free(buf);
        stop(&d, &c);
}
END_TEST

/* Replies that outgrow one packet come as several arrays of complete replies, in order. */
START_TEST(test_batch_split) {
        const unsigned n_req = 30;
        TestDaemon d;
        TestClient c;
        json_t *r, *tag;
        char *buf = malloc(8192);
        char big[1001];
        size_t len = 0;
        unsigned expect = 1, packets = 0;
        int fds[8];

        ck_assert_ptr_nonnull(buf);
        start(&d, &c, NULL);
        memset(big, 'b', 1000);
        big[1000] = 0;
        tag = json_string(big);
        for (int i = 0; i < 8; i++) {
                fds[i] = eventfd(0, EFD_CLOEXEC);
                (void)watch_fd(&c, fds[i], "in", "edge", json_incref(tag));
        }
        json_decref(tag);
        buf[len++] = '[';
        for (unsigned i = 1; i <= n_req; i++)
                len += (size_t)sprintf(buf + len,
                                       "%s{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"watches\"}",
                                       i > 1 ? "," : "", i);
        buf[len++] = ']';
        test_client_send_raw(&c, buf, len, NULL, 0);
        while (expect <= n_req) {
                json_t *m;
                size_t i;

                r = test_client_reply(&c, TIMEOUT);
                ck_assert_msg(r, "replies %u.. missing", expect);
                ck_assert_msg(json_is_array(r), "a part of a batch reply is not an array");
                json_array_foreach(r, i, m) {
                        ck_assert_int_eq(json_integer_value(json_object_get(m, "id")), expect);
                        ck_assert_int_eq(json_array_size(member(member(m, "result"), "watches")),
                                         8);
                        expect++;
                }
                packets++;
                json_decref(r);
        }
        ck_assert_msg(packets > 1, "%u replies of 8 KiB came in one packet", n_req);
        for (int i = 0; i < 8; i++)
                close(fds[i]);
        free(buf);
        stop(&d, &c);
}
END_TEST

/* The daemon sends UTF-8 as is, compact: the bytes on the wire, not only their meaning. */
START_TEST(test_utf8_on_the_wire) {
        static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watches\"}";
        static char buf[EVD_MAX_PACKET + 1];
        FdList fds = FD_LIST_NULL;
        WirePacket pkt;
        TestDaemon d;
        TestClient c;
        int p[2];

        start(&d, &c, NULL);
        make_pipe(p);
        (void)watch_fd(&c, p[0], "in", "edge", json_string("caf\xc3\xa9 \xe2\x82\xac"));
        test_client_send_raw(&c, req, sizeof(req) - 1, NULL, 0);
        ck_assert_int_eq(wire_recv_blocking(c.fd, buf, sizeof(buf), &fds, &pkt, TIMEOUT), 0);
        fd_list_close(&fds);
        ck_assert(!pkt.eof && !pkt.truncated);
        buf[pkt.len] = 0;
        ck_assert_msg(strstr(buf, "\"caf\xc3\xa9 \xe2\x82\xac\""), "tag not sent as UTF-8: %s",
                      buf);
        ck_assert_msg(!strstr(buf, "\\u"), "escapes in %s", buf);
        ck_assert_msg(!strchr(buf, '\n') && !strstr(buf, ": "), "not compact: %s", buf);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void daemon_batches_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "batch", 60);
        tcase_add_test(tc, test_batch);
        tcase_add_test(tc, test_batch_limits);
        tcase_add_test(tc, test_batch_split);
        tcase_add_test(tc, test_utf8_on_the_wire);
}
