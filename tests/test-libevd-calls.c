/* test-libevd-calls.c - evd_call synchronous and asynchronous, the synchronous timeout, the
 * client in a program's own event loop
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

/* ---- evd_call ---- */

START_TEST(test_call_sync_async) {
        json_t *result = NULL, *params;
        Done d = {0}, e = {0};
        const struct evd_error *err;
        int r;

        ck_assert_int_eq(evd_call(client, "status", NULL, WAIT_MS, &result), 0);
        ck_assert_str_eq(json_string_value(json_object_get(result, "server")), "evd");
        ck_assert_int_ge(json_integer_value(json_object_get(result, "clients")), 1);
        json_decref(result); /* a new reference: ours to drop */

        ck_assert_int_eq(evd_call(client, "stats", NULL, WAIT_MS, NULL), 0);

        r = evd_call(client, "no-such-method", NULL, WAIT_MS, &result);
        ck_assert_int_eq(r, EVD_E_METHOD_NOT_FOUND);
        err = evd_client_last_error(client);
        ck_assert_ptr_nonnull(err);
        ck_assert_str_eq(err->message, "Method not found");

        /* params are stolen even on failure (valgrind checks there is no leak). */
        params = json_pack("{s:i}", "nonsense", 1);
        r = evd_call(client, "status", params, WAIT_MS, NULL);
        ck_assert_int_eq(r, EVD_E_INVALID_PARAMS);
        ck_assert_str_eq(evd_client_last_error(client)->param, "nonsense");
        ck_assert_int_eq(evd_call(client, "status", json_array(), WAIT_MS, NULL), -EINVAL);
        ck_assert_int_eq(evd_call(client, NULL, NULL, WAIT_MS, NULL), -EINVAL);

        ck_assert_int_eq(evd_call_async(client, "status", NULL, on_done, &d), 0);
        ck_assert_int_eq(evd_call_async(client, "watches", json_pack("{s:i}", "client", 999999),
                                        on_done, &e),
                         0);
        ck_assert(run_until(&e.flag, WAIT_MS));
        ck_assert_int_eq(d.r, 0);
        ck_assert_str_eq(json_string_value(json_object_get(d.result, "server")), "evd");
        ck_assert_int_eq(e.r, EVD_E_INVALID_PARAMS);
        ck_assert_str_eq(e.param, "client");
        json_decref(d.result);
}
END_TEST

START_TEST(test_sync_timeout) {
        Done wedge = {0};
        uint64_t id = 5;
        int p[2], r;

        /* The daemon stops answering for a moment: the synchronous calls time out. */
        make_pipe(p);
        ck_assert_int_eq(evd_call_async(client, "debug-wedge", json_pack("{s:f}", "seconds", 0.6),
                                        on_done, &wedge),
                         0);
        r = evd_watch_add(client, p[0], EVD_IN, EVD_EDGE, on_watch, NULL, 100, &id);
        ck_assert_int_eq(r, -ETIMEDOUT);
        ck_assert_uint_eq(id, 5);
        ck_assert_int_eq(evd_call(client, "ping", NULL, 50, NULL), -ETIMEDOUT);
        /* Once it answers again, the abandoned watch is removed from the daemon, and the
         * late replies are ignored. */
        ck_assert(run_until(&wedge.flag, WAIT_MS));
        ck_assert_int_eq(wedge.r, 0);
        ck_assert_uint_eq(listing_size(client, "watches"), 0);
        ck_assert_int_eq(evd_call(client, "ping", NULL, WAIT_MS, NULL), 0);
        json_decref(wedge.result);
        close(p[0]);
        close(p[1]);
}
END_TEST

/* ---- event loop integration ---- */

static int on_watch_fail(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        return -ECANCELED;
}

static int on_timer_exit(struct evd_client *c, uint64_t timer, uint64_t expirations,
                         void *userdata) {
        evd_client_exit(c, 42);
        return 0;
}

START_TEST(test_loop_integration) {
        struct pollfd pfd = {.fd = evd_client_fd(client), .events = POLLIN};
        Seen s = {0};
        uint64_t id;
        int p[2];

        make_pipe(p);
        ck_assert_int_eq(
                evd_watch_add(client, p[0], EVD_IN, EVD_ONESHOT, on_watch, &s, WAIT_MS, &id), 0);
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        /* A synchronous call reads the "ready" off the socket but runs no callback... */
        usleep(50000);
        ck_assert_int_eq(evd_call(client, "ping", NULL, WAIT_MS, NULL), 0);
        ck_assert_uint_eq(s.calls, 0);
        /* ...and the client's fd stays readable until dispatch ran it. */
        ck_assert_int_eq(poll(&pfd, 1, WAIT_MS), 1);
        ck_assert_int_eq(evd_client_dispatch(client), 0);
        ck_assert_uint_eq(s.calls, 1);
        ck_assert_int_eq(poll(&pfd, 1, 0), 0);

        /* A callback's negative value stops dispatch and is returned. */
        ck_assert_int_eq(evd_watch_remove(client, id, WAIT_MS), 0);
        ck_assert_int_eq(
                evd_watch_add(client, p[0], EVD_IN, EVD_ONESHOT, on_watch_fail, NULL, WAIT_MS, &id),
                0);
        ck_assert_int_eq(poll(&pfd, 1, WAIT_MS), 1);
        for (int i = 0; i < 100; i++) {
                int r = evd_client_dispatch(client);

                if (r == -ECANCELED)
                        break;
                ck_assert_int_eq(r, 0);
                ck_assert_int_eq(poll(&pfd, 1, WAIT_MS), 1);
                ck_assert_int_lt(i, 99);
        }

        /* evd_client_run() until evd_client_exit(). */
        ck_assert_int_eq(evd_timer_after(client, 20000, 0, on_timer_exit, NULL, WAIT_MS, &id), 0);
        ck_assert_int_eq(evd_client_run(client), 42);
        close(p[0]);
        close(p[1]);
}
END_TEST

/* ---- tests --------------------------------------------------------------------------- */

void libevd_calls_tests(TCase *tc_call, TCase *tc_debug) {
        tcase_add_test(tc_call, test_call_sync_async);
        tcase_add_test(tc_call, test_loop_integration);
        tcase_add_test(tc_debug, test_sync_timeout);
}
