/* test-daemon-access.c - access and limits: admins, other uids, isolation, quotas
 *
 * What a non-admin uid may see and do (and that errors leak nothing of others'), and the
 * quotas: watches, timers, per uid, clients and clients per uid, refused with their limit.
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

/* ---- access: admins, other uids, isolation -------------------------------------------- */

/* Assert that no reply a client got mentions @secret (another client's data). */
static void assert_no_secret(json_t *reply, const char *secret) {
        char *s = dump(reply);

        ck_assert_msg(!strstr(s, secret), "another client's data in %s", s);
        free(s);
}

static void call_error_secret(TestClient *c, const char *method, json_t *params, int code,
                              const char *param) {
        json_t *reply = test_client_call(c, method, params, NULL, 0);

        check_error(reply, code, param, NULL);
        assert_no_secret(reply, "secret");
        json_decref(reply);
}

START_TEST(test_nonadmin) {
        TestDaemon d;
        TestClient root, root2, nb;
        json_t *r, *item;
        json_int_t rid, nid, w, t, wn, tn;
        int p[2], q[2];

        start(&d, &root, NULL);
        ck_assert_int_eq(chmod(d.dir, 0755), 0); /* let uid 65534 reach the 0666 socket */
        rid = hello(&root, "secret-name");
        make_pipe(p);
        w = watch_fd(&root, p[0], "in", "edge", json_string("secret-tag"));
        t = add_timer(&root, 100, 0, 0, json_string("secret-tag"));

        ck_assert_int_eq(test_client_connect_as(&nb, d.socket, NOBODY, NOBODY), 0);
        r = test_client_result(&nb, "hello", json_pack("{s:i}", "protocol", 1), NULL, 0);
        ck_assert(!bool_member(r, "admin"));
        nid = int_member(r, "client_id");
        json_decref(r);

        /* Another client's ids look like ids that never existed. */
        call_error_secret(&nb, "modify", json_pack("{s:I,s:[s]}", "watch", w, "events", "out"),
                          -32001, "watch");
        call_error_secret(&nb, "arm", json_pack("{s:I}", "watch", w), -32001, "watch");
        call_error_secret(&nb, "unwatch", json_pack("{s:I}", "watch", w), -32001, "watch");
        call_error_secret(&nb, "cancel", json_pack("{s:I}", "timer", t), -32002, "timer");
        /* Admin-only methods and parameters. */
        call_error_secret(&nb, "monitor", NULL, -32005, NULL);
        call_error_secret(&nb, "watches", json_pack("{s:I}", "client", rid), -32005, "client");
        call_error_secret(&nb, "timers", json_pack("{s:I}", "client", rid), -32005, "client");
        call_error_secret(&nb, "watches", json_pack("{s:I}", "client", 999999), -32005, "client");
        /* What everyone may do. */
        r = test_client_result(&nb, "status", NULL, NULL, 0);
        assert_no_secret(r, "secret");
        json_decref(r);
        r = test_client_result(&nb, "stats", NULL, NULL, 0);
        assert_no_secret(r, "secret");
        json_decref(r);
        ck_assert_int_eq(list_total(&nb, "watches", NULL), 0);
        ck_assert_int_eq(list_total(&nb, "watches", json_pack("{s:I}", "client", nid)), 0);
        make_pipe(q);
        wn = watch_fd(&nb, q[0], "in", "edge", json_string("nobody-tag"));
        tn = add_timer(&nb, 100, 0, 0, NULL);
        write_byte(q[1]);
        json_decref(expect_notification(&nb, "ready", "watch", wn));

        /* The admin sees the other uid's client and objects... */
        item = list_item(&root, "clients", 0, "client", nid);
        ck_assert_ptr_nonnull(item);
        ck_assert_int_eq(int_member(item, "uid"), NOBODY);
        ck_assert_int_eq(int_member(item, "gid"), NOBODY);
        ck_assert(!bool_member(item, "admin"));
        json_decref(item);
        item = list_item(&root, "watches", nid, "watch", wn);
        ck_assert_ptr_nonnull(item);
        ck_assert_int_eq(int_member(item, "client"), nid);
        assert_json(member(item, "tag"), "\"nobody-tag\"");
        json_decref(item);
        /* ...but acts only on its own, like anyone; so does another connection of its uid. */
        call_error(&root, "unwatch", json_pack("{s:I}", "watch", wn), NULL, 0, -32001, "watch");
        call_error(&root, "cancel", json_pack("{s:I}", "timer", tn), NULL, 0, -32002, "timer");
        ck_assert_int_eq(test_client_connect(&root2, d.socket), 0);
        call_error(&root2, "unwatch", json_pack("{s:I}", "watch", w), NULL, 0, -32001, "watch");
        call_error(&root2, "arm", json_pack("{s:I}", "watch", w), NULL, 0, -32001, "watch");
        call_error(&root2, "cancel", json_pack("{s:I}", "timer", t), NULL, 0, -32002, "timer");
        test_client_close(&root2);
        ck_assert_int_eq(list_total(&nb, "watches", NULL), 1);
        ck_assert_int_eq(list_total(&root, "watches", NULL), 1);
        ck_assert_int_eq(list_total(&root, "timers", json_pack("{s:I}", "client", nid)), 1);
        ck_assert_int_eq(list_total(&root, "timers", NULL), 1);

        /* A user sees its own uid's programs, read-only: `clients` lists them (and no
         * other uid's), their watches and timers may be listed, not touched. */
        {
                TestClient nb2;
                json_int_t nid2, wn2;
                int q2[2];

                ck_assert_int_eq(test_client_connect_as(&nb2, d.socket, NOBODY, NOBODY), 0);
                nid2 = hello(&nb2, "nobody-two");
                make_pipe(q2);
                wn2 = watch_fd(&nb2, q2[0], "in", "edge", NULL);
                r = test_client_result(&nb, "clients", NULL, NULL, 0);
                assert_no_secret(r, "secret");
                json_decref(r);
                ck_assert_int_eq(list_total(&nb, "clients", NULL), 2);
                item = list_item(&nb, "clients", 0, "client", nid2);
                ck_assert_ptr_nonnull(item);
                ck_assert_str_eq(json_string_value(member(item, "name")), "nobody-two");
                json_decref(item);
                ck_assert_ptr_null(list_item(&nb, "clients", 0, "client", rid));
                item = list_item(&nb, "watches", nid2, "watch", wn2);
                ck_assert_ptr_nonnull(item);
                json_decref(item);
                ck_assert_int_eq(list_total(&nb, "timers", json_pack("{s:I}", "client", nid2)), 0);
                call_error_secret(&nb, "unwatch", json_pack("{s:I}", "watch", wn2), -32001, "watch");
                /* The root client stays out of reach, whether its id exists or not. */
                call_error_secret(&nb, "watches", json_pack("{s:I}", "client", rid), -32005, "client");
                test_client_close(&nb2);
                close_pair(q2);
        }

        test_client_close(&nb);
        wait_status(&root, "watches", 1);
        wait_status(&root, "timers", 1);
        close_pair(p);
        close_pair(q);
        stop(&d, &root);
}
END_TEST

/* ---- quotas ------------------------------------------------------------------------- */

/* A connection over a limit gets one -32004 with a null id, then EOF. */
static void expect_refused(TestClient *c) {
        json_t *r = test_client_reply(c, TIMEOUT);

        ck_assert_msg(r, "no refusal");
        check_error(r, -32004, NULL, "null");
        json_decref(r);
        ck_assert_msg(test_client_wait_eof(c, TIMEOUT), "a refused connection stays open");
        test_client_close(c);
}

static void check_limit(json_t *reply, json_int_t limit) {
        check_error(reply, -32004, NULL, NULL);
        ck_assert_int_eq(int_member(member(member(reply, "error"), "data"), "limit"), limit);
}

START_TEST(test_quota_watches) {
        static const char *const args[] = { "--max-watches-per-client=2", NULL };
        TestDaemon d;
        TestClient c, c2;
        json_t *r;
        json_int_t w;
        int p[2], base;

        start(&d, &c, args);
        r = test_client_result(&c, "hello", json_pack("{s:i}", "protocol", 1), NULL, 0);
        ck_assert_int_eq(int_member(member(r, "limits"), "max_watches"), 2);
        json_decref(r);
        make_pipe(p);
        base = fd_baseline(&d, &c, 1);
        w = watch_fd(&c, p[0], "in", "edge", NULL);
        (void)watch_fd(&c, p[0], "in", "edge", NULL);
        r = test_client_call(&c, "watch",
                             json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge"),
                             &p[0], 1);
        check_limit(r, 2);
        json_decref(r);
        ping(&c);
        ck_assert_int_eq(test_daemon_wait_fd_count(&d, base + 2, TIMEOUT), base + 2);
        /* Per connection: another one has its own quota; a freed slot can be used again. */
        ck_assert_int_eq(test_client_connect(&c2, d.socket), 0);
        (void)watch_fd(&c2, p[0], "in", "edge", NULL);
        test_client_close(&c2);
        call_ok(&c, "unwatch", json_pack("{s:I}", "watch", w), NULL, 0);
        (void)watch_fd(&c, p[0], "in", "edge", NULL);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

START_TEST(test_quota_timers) {
        static const char *const args[] = { "--max-timers-per-client=1", NULL };
        TestDaemon d;
        TestClient c;
        json_t *r;
        json_int_t t;

        start(&d, &c, args);
        r = test_client_result(&c, "hello", json_pack("{s:i}", "protocol", 1), NULL, 0);
        ck_assert_int_eq(int_member(member(r, "limits"), "max_timers"), 1);
        json_decref(r);
        t = add_timer(&c, 100, 0, 0, NULL);
        r = test_client_call(&c, "timer", json_pack("{s:i}", "after", 100), NULL, 0);
        check_limit(r, 1);
        json_decref(r);
        call_ok(&c, "cancel", json_pack("{s:I}", "timer", t), NULL, 0);
        /* A one-shot timer that fired frees its slot. */
        t = add_timer(&c, 0, 0, 0, NULL);
        json_decref(expect_notification(&c, "timer", "timer", t));
        (void)add_timer(&c, 100, 0, 0, NULL);
        stop(&d, &c);
}
END_TEST

START_TEST(test_quota_per_uid) {
        static const char *const args[] = { "--max-watches-per-uid=2", "--max-timers-per-uid=1",
                                            NULL };
        TestDaemon d;
        TestClient a, b, nb;
        json_t *r;
        int p[2];

        start(&d, &a, args);
        ck_assert_int_eq(chmod(d.dir, 0755), 0);
        ck_assert_int_eq(test_client_connect(&b, d.socket), 0);
        make_pipe(p);
        (void)watch_fd(&a, p[0], "in", "edge", NULL);
        (void)watch_fd(&a, p[0], "in", "edge", NULL);
        r = test_client_call(&b, "watch",
                             json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge"),
                             &p[0], 1);
        check_limit(r, 2);
        json_decref(r);
        (void)add_timer(&a, 100, 0, 0, NULL);
        r = test_client_call(&b, "timer", json_pack("{s:i}", "after", 100), NULL, 0);
        check_limit(r, 1);
        json_decref(r);
        /* Another uid has its own. */
        ck_assert_int_eq(test_client_connect_as(&nb, d.socket, NOBODY, NOBODY), 0);
        (void)watch_fd(&nb, p[0], "in", "edge", NULL);
        (void)add_timer(&nb, 100, 0, 0, NULL);
        test_client_close(&nb);
        test_client_close(&b);
        close_pair(p);
        stop(&d, &a);
}
END_TEST

START_TEST(test_quota_clients) {
        static const char *const args[] = { "--max-clients=1", NULL };
        TestDaemon d;
        TestClient c, extra;

        test_daemon_start(&d, args);
        test_client_connect_admitted(&c, &d);
        ck_assert_int_eq(test_client_connect(&extra, d.socket), 0);
        expect_refused(&extra);
        ping(&c);
        ck_assert_int_ge(stats_int(&c, "daemon", "refused"), 1);
        ck_assert_int_eq(status_int(&c, "clients"), 1);
        /* The slot is free again once the client is gone. */
        test_client_close(&c);
        test_client_connect_admitted(&c, &d);
        stop(&d, &c);
}
END_TEST

START_TEST(test_quota_clients_per_uid) {
        static const char *const args[] = { "--max-clients-per-uid=1", NULL };
        TestDaemon d;
        TestClient c, extra, nb;

        test_daemon_start(&d, args);
        ck_assert_int_eq(chmod(d.dir, 0755), 0);
        test_client_connect_admitted(&c, &d);
        ck_assert_int_eq(test_client_connect(&extra, d.socket), 0);
        expect_refused(&extra);
        /* Per uid: another user still gets in. */
        ck_assert_int_eq(test_client_connect_as(&nb, d.socket, NOBODY, NOBODY), 0);
        ping(&nb);
        test_client_close(&nb);
        ping(&c);
        stop(&d, &c);
}
END_TEST

/* ---- tcases --------------------------------------------------------------------------- */

void daemon_access_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "access", 60);
        tcase_add_test(tc, test_nonadmin);

        tc = test_tcase(s, "quota", 60);
        tcase_add_test(tc, test_quota_watches);
        tcase_add_test(tc, test_quota_timers);
        tcase_add_test(tc, test_quota_per_uid);
        tcase_add_test(tc, test_quota_clients);
        tcase_add_test(tc, test_quota_clients_per_uid);
}
