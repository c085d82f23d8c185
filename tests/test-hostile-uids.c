/* test-hostile-uids.c - between uids: per-uid limits and their release, one uid cannot take
 * all fds, error replies leak nothing
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

/* Per-uid limits hold across all connections of a uid (here three), do not touch other
 * uids, and are released when the uid's connections go: it can then use all of them again. */
START_TEST(test_per_uid_limits_release) {
        static const char *const args[] = { "--max-clients-per-uid=3", "--max-watches-per-uid=4",
                                            "--max-timers-per-uid=2", NULL };
        TestDaemon d;
        Bystander b;
        TestClient nb[4];
        json_t *r;
        int base, p[2];

        base = start_with_bystander(&d, args, &b);
        ck_assert_int_eq(chmod(d.dir, 0755), 0);
        make_pipe(p);
        for (int round = 0; round < 2; round++) {
                for (int i = 0; i < 3; i++) {
                        ck_assert_int_eq(test_client_connect_as(&nb[i], d.socket, NOBODY, NOBODY),
                                         0);
                        ping(&nb[i]);
                }
                ck_assert_int_eq(test_client_connect_as(&nb[3], d.socket, NOBODY, NOBODY), 0);
                r = next_reply(&nb[3], "a fourth connection of nobody");
                check_error(r, -32004, NULL, "null");
                json_decref(r);
                ck_assert(test_client_wait_eof(&nb[3], TIMEOUT));
                test_client_close(&nb[3]);
                /* 4 watches and 2 timers across the three, then each is refused. */
                for (int i = 0; i < 4; i++)
                        (void)watch_fd(&nb[i % 3], p[0], "in", "edge", NULL);
                for (int i = 0; i < 2; i++)
                        call_ok(&nb[i], "timer", json_pack("{s:i}", "after", 100), NULL, 0);
                for (int i = 0; i < 3; i++) {
                        r = call(&nb[i], "watch",
                                 json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode",
                                           "edge"),
                                 &p[0], 1);
                        check_error(r, -32004, NULL, NULL);
                        ck_assert_int_eq(int_member(member(member(r, "error"), "data"), "limit"),
                                         4);
                        json_decref(r);
                        r = call(&nb[i], "timer", json_pack("{s:i}", "after", 100), NULL, 0);
                        check_error(r, -32004, NULL, NULL);
                        ck_assert_int_eq(int_member(member(member(r, "error"), "data"), "limit"),
                                         2);
                        json_decref(r);
                }
                /* Root is not nobody: unaffected (its bystander already watches one). */
                if (round == 0) {
                        (void)watch_fd(&b.c, p[0], "in", "edge", NULL);
                        call_ok(&b.c, "timer", json_pack("{s:i}", "after", 100), NULL, 0);
                        call_ok(&b.c, "timer", json_pack("{s:i}", "after", 100), NULL, 0);
                }
                for (int i = 0; i < 3; i++)
                        test_client_close(&nb[i]);
                wait_status_within(&b.c, "clients", 1, TIMEOUT);
                wait_status_within(&b.c, "watches", 2, TIMEOUT);
                wait_status_within(&b.c, "timers", 2, TIMEOUT);
        }
        close_pair(p);
        /* The bystander's extra watch holds one more fd. */
        finish(&d, &b, base + 1);
}
END_TEST

/*
 * With the default limits, one unprivileged uid must not be able to take every fd the
 * daemon has: after nobody has watched as much as its quotas allow, over two connections,
 * another uid must still be able to connect and watch. The defaults allow 32,768 watches per
 * uid (16,384 per connection), each holding an fd, while the daemon's fd limit is its hard
 * RLIMIT_NOFILE (20,000 here).
 */
START_TEST(test_one_uid_cannot_take_all_fds) {
        TestDaemon d;
        Bystander b;
        TestClient nb[2], other;
        int fds[EVD_MAX_FDS], efd, base, code = 0;
        unsigned watched = 0, conn = 0;
        long nofile;
        json_t *r;

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(chmod(d.dir, 0755), 0);
        nofile = daemon_nofile(&d);
        efd = make_eventfd();
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = efd; /* 32 copies of one fd: the daemon gets 32 fds per packet */
        for (int i = 0; i < 2; i++)
                ck_assert_int_eq(test_client_connect_as(&nb[i], d.socket, NOBODY, NOBODY), 0);
        while (conn < 2 && watched < 40000) {
                unsigned got = watch_until_refused(&nb[conn], fds, EVD_MAX_FDS, &code);

                watched += got;
                if (got < EVD_MAX_FDS) {
                        if (code != -32004)
                                break; /* the daemon itself is out of fds */
                        conn++;        /* the per-connection quota: carry on with the other */
                }
        }
        /* The last free fds, one at a time. */
        while (conn < 2 && code != -32004 && watch_until_refused(&nb[conn], fds, 1, &code) == 1)
                watched++;
        printf("one uid: nobody watched %u fds (the daemon's limit is %ld), stopped by %d\n",
               watched, nofile, code);
        ck_assert_int_eq(test_client_connect_as(&other, d.socket, NOBODY - 1, NOBODY - 1), 0);
        ck_assert_msg(admitted(&other, &code),
                      "one uid holding %u watches locked out every other user: a new connection "
                      "of another uid was refused with %d",
                      watched, code);
        r = call(&other, "watch",
                 json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge"), &efd, 1);
        ck_assert_msg(json_object_get(r, "result"),
                      "one uid holding %u watches left none for another uid: error %d", watched,
                      error_code(r));
        json_decref(r);
        test_client_close(&other);
        for (int i = 0; i < 2; i++)
                test_client_close(&nb[i]);
        close(efd);
        finish(&d, &b, base);
}
END_TEST

/* Whether @v (an error object, recursively) holds the integer @n anywhere. */
static bool holds_integer(json_t *v, json_int_t n) {
        const char *key;
        json_t *item;
        size_t i;

        if (json_is_integer(v))
                return json_integer_value(v) == n;
        if (json_is_object(v)) {
                json_object_foreach(v, key, item)
                        if (holds_integer(item, n))
                                return true;
        }
        if (json_is_array(v)) {
                json_array_foreach(v, i, item)
                        if (holds_integer(item, n))
                                return true;
        }
        return false;
}

/*
 * Error replies never show another client's data or the daemon's addresses. Root holds a
 * watch and a timer tagged "secret-..." under the name "secret-name" and has just sent a
 * large packet full of a secret string (it sits in the daemon's receive buffer, shared by
 * all clients). Nobody then sends everything that fails: short broken JSON (whose parse error
 * quotes the input), invalid requests, methods and parameters aimed at root's ids, admin-only
 * calls, bad fds, too many fds, an oversize packet. No error it receives holds "secret", a
 * pointer-like hex number, or root's watch, timer or client id.
 */
START_TEST(test_error_replies_leak_nothing) {
        static const char *const broken[] = {
                "{",
                "{\"a\":",
                "[1,",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"",
                "\"unterminated",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}}",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",}",
                "tru",
                "[,]",
                "{\"x\"}",
        };
        TestDaemon d;
        Bystander b;
        TestClient root, nb;
        json_int_t rw, rt, rc, ids[3];
        json_t *replies = json_array(), *r, *item;
        char *big;
        size_t len, i;
        int base, p[2], fds[40];

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(chmod(d.dir, 0755), 0);
        ck_assert_int_eq(test_client_connect(&root, d.socket), 0);
        r = result(&root, "hello", json_pack("{s:i,s:s}", "protocol", 1, "client", "secret-name"),
                   NULL, 0);
        rc = int_member(r, "client_id");
        json_decref(r);
        make_pipe(p);
        rw = watch_fd(&root, p[0], "in", "edge", json_string("secret-watch"));
        r = result(&root, "timer", json_pack("{s:i,s:s}", "after", 100, "tag", "secret-timer"),
                   NULL, 0);
        rt = int_member(r, "timer");
        json_decref(r);
        ids[0] = rw;
        ids[1] = rt;
        ids[2] = rc;
        big = malloc(EVD_MAX_PACKET + 2);
        ck_assert_ptr_nonnull(big);
        len = (size_t)sprintf(big, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{"
                                   "\"x\":\"");
        while (len < EVD_MAX_PACKET - 16)
                len += (size_t)sprintf(big + len, "secret-");
        len += (size_t)sprintf(big + len, "\"}}");
        r = raw_call(&root, big, len);
        check_error(r, -32602, "x", "1");
        json_decref(r);

        ck_assert_int_eq(test_client_connect_as(&nb, d.socket, NOBODY, NOBODY), 0);
        for (i = 0; i < ELEMENTSOF(broken); i++)
                json_array_append_new(replies, raw_call(&nb, broken[i], strlen(broken[i])));
        /* The same broken prefix as root's packet, cut short. */
        json_array_append_new(replies, raw_call(&nb, big, 80));
        json_array_append_new(replies,
                              call(&nb, "unwatch", json_pack("{s:I}", "watch", rw), NULL, 0));
        json_array_append_new(replies, call(&nb, "arm", json_pack("{s:I}", "watch", rw), NULL, 0));
        json_array_append_new(replies, call(&nb, "modify",
                                            json_pack("{s:I,s:s}", "watch", rw, "mode", "oneshot"),
                                            NULL, 0));
        json_array_append_new(replies,
                              call(&nb, "cancel", json_pack("{s:I}", "timer", rt), NULL, 0));
        json_array_append_new(replies,
                              call(&nb, "watches", json_pack("{s:I}", "client", rc), NULL, 0));
        json_array_append_new(replies,
                              call(&nb, "timers", json_pack("{s:I}", "client", rc), NULL, 0));
        json_array_append_new(replies, call(&nb, "monitor", NULL, NULL, 0));
        json_array_append_new(replies, call(&nb, "nope", json_pack("{s:I}", "watch", rw), NULL, 0));
        json_array_append_new(replies, call(&nb, "watch",
                                            json_pack("{s:I,s:[s],s:s}", "fd", rw, "events", "in",
                                                      "mode", "edge"),
                                            NULL, 0));
        json_array_append_new(
                replies, call(&nb, "watch",
                              json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge"),
                              &root.fd, 1));
        for (i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = make_eventfd();
        ck_assert_int_eq(test_client_sendmsg(&nb, big, 100, fds, 40), 0);
        json_array_append_new(replies, next_reply(&nb, "40 fds"));
        for (i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        big[len] = ' ';
        memset(big + len, ' ', EVD_MAX_PACKET + 1 - len);
        ck_assert_int_eq(test_client_sendmsg(&nb, big, EVD_MAX_PACKET + 1, NULL, 0), 0);
        json_array_append_new(replies, next_reply(&nb, "an oversize packet"));

        json_array_foreach(replies, i, item) {
                char *s = dump(item);

                ck_assert_msg(json_object_get(item, "error"), "reply %zu is not an error: %s", i,
                              s);
                ck_assert_msg(!strstr(s, "secret"), "another client's data in %s", s);
                for (size_t k = 0; k < ELEMENTSOF(ids); k++)
                        ck_assert_msg(!holds_integer(json_object_get(item, "error"), ids[k]),
                                      "root's id %lld in %s", (long long)ids[k], s);
                free(s);
        }
        json_decref(replies);
        /* `clients` answers a non-admin, with its own uid's connections only: none of root's
         * data or ids. */
        item = call(&nb, "clients", NULL, NULL, 0);
        {
                char *s = dump(item);
                json_t *cl;

                ck_assert_msg(!strstr(s, "secret"), "another client's data in %s", s);
                ck_assert_msg(json_object_get(item, "result"), "%s", s);
                json_array_foreach(json_object_get(json_object_get(item, "result"), "clients"), i, cl)
                        ck_assert_msg(json_integer_value(json_object_get(cl, "uid")) == NOBODY &&
                                              json_integer_value(json_object_get(cl, "client")) != rc,
                                      "%s", s);
                free(s);
        }
        json_decref(item);
        free(big);
        test_client_close(&nb);
        test_client_close(&root);
        close_pair(p);
        finish(&d, &b, base);
}
END_TEST

/* ---- tests --------------------------------------------------------------------------- */

void hostile_uids_tests(TCase *tc) {
        tcase_add_test(tc, test_per_uid_limits_release);
        tcase_add_test(tc, test_one_uid_cannot_take_all_fds);
        tcase_add_test(tc, test_error_replies_leak_nothing);
}
