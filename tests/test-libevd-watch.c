/* test-libevd-watch.c - watches: oneshot, the caller's fd, edge and modify, errors, the
 * quota, pipelined asynchronous watches
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

/* ---- watches ---- */

START_TEST(test_watch_oneshot) {
        Seen s = {0};
        uint64_t id = 0;
        int p[2];
        json_t *w;

        make_pipe(p);
        ck_assert_int_eq(
                evd_watch_add(client, p[0], EVD_IN, EVD_ONESHOT, on_watch, &s, WAIT_MS, &id), 0);
        ck_assert_uint_gt(id, 0);
        /* The library sent (and keeps) a duplicate: the caller may close its fd. */
        ck_assert_int_eq(write(p[1], "x", 1), 1);

        ck_assert(run_until(&s.flag, WAIT_MS));
        ck_assert_uint_eq(s.calls, 1);
        ck_assert_uint_eq(s.id, id);
        ck_assert_uint_eq(s.revents, EVD_IN);

        /* Oneshot: still readable, but no second callback until armed. */
        run_for(100);
        ck_assert_uint_eq(s.calls, 1);

        /* The daemon lists it with our id as the tag. */
        w = listing(client, "watches");
        ck_assert_uint_eq(json_array_size(w), 1);
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(w, 0), "tag")),
                         (json_int_t)id);
        ck_assert(!json_is_true(json_object_get(json_array_get(w, 0), "armed")));
        json_decref(w);

        s.flag = false;
        ck_assert_int_eq(evd_watch_arm(client, id, WAIT_MS), 0);
        ck_assert(run_until(&s.flag, WAIT_MS));
        ck_assert_uint_eq(s.calls, 2);

        /* Hang-up is reported with the events. */
        drain_fd(p[0]);
        close(p[1]);
        s.flag = false;
        ck_assert_int_eq(evd_watch_arm(client, id, WAIT_MS), 0);
        ck_assert(run_until(&s.flag, WAIT_MS));
        ck_assert(s.revents & EVD_HUP);

        ck_assert_int_eq(evd_watch_remove(client, id, WAIT_MS), 0);
        ck_assert_int_eq(evd_watch_remove(client, id, WAIT_MS), -ENOENT);
        ck_assert_int_eq(evd_watch_arm(client, id, WAIT_MS), -ENOENT);
        ck_assert_uint_eq(listing_size(client, "watches"), 0);
        close(p[0]);
}
END_TEST

START_TEST(test_watch_caller_closes_fd) {
        Seen s = {0};
        uint64_t id;
        int p[2], before;

        make_pipe(p);
        ck_assert_int_eq(evd_call(client, "ping", NULL, WAIT_MS, NULL), 0); /* accepted by now */
        before = test_daemon_fd_count(&daemon_);
        ck_assert_int_eq(evd_watch_add(client, p[0], EVD_IN, EVD_EDGE, on_watch, &s, WAIT_MS, &id),
                         0);
        close(p[0]);
        ck_assert_int_eq(test_daemon_fd_count(&daemon_), before + 1);
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        ck_assert(run_until(&s.flag, WAIT_MS));
        ck_assert_int_eq(evd_watch_remove(client, id, WAIT_MS), 0);
        /* The daemon closed its copy when the watch ended. */
        ck_assert_int_eq(test_daemon_fd_count(&daemon_), before);
        close(p[1]);
}
END_TEST

START_TEST(test_watch_edge_modify) {
        Seen s = {0};
        uint64_t id;
        int sv[2];
        char c;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        ck_assert_int_eq(evd_watch_add(client, sv[0], EVD_IN, EVD_EDGE, on_watch, &s, WAIT_MS, &id),
                         0);
        for (int i = 0; i < 3; i++) {
                s.flag = false;
                ck_assert_int_eq(write(sv[1], "x", 1), 1);
                ck_assert(run_until(&s.flag, WAIT_MS));
                ck_assert(s.revents & EVD_IN);
                ck_assert_int_eq(read(sv[0], &c, 1), 1);
        }

        /* To OUT (always writable): a callback with EVD_OUT. */
        s.flag = false;
        ck_assert_int_eq(evd_watch_modify(client, id, EVD_OUT, EVD_ONESHOT, WAIT_MS), 0);
        ck_assert_int_eq(evd_watch_arm(client, id, WAIT_MS), 0);
        ck_assert(run_until(&s.flag, WAIT_MS));
        ck_assert(s.revents & EVD_OUT);

        /* Peer closes: RDHUP when asked for. (Re-armed first, on IN, which is not ready:
         * see the report about modify from a disarmed oneshot to edge.) */
        ck_assert_int_eq(evd_watch_modify(client, id, EVD_IN, EVD_ONESHOT, WAIT_MS), 0);
        ck_assert_int_eq(evd_watch_arm(client, id, WAIT_MS), 0);
        s.flag = false;
        ck_assert_int_eq(evd_watch_modify(client, id, EVD_RDHUP, EVD_EDGE, WAIT_MS), 0);
        ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
        ck_assert(run_until(&s.flag, WAIT_MS));
        ck_assert(s.revents & EVD_RDHUP);

        /* Local checks. */
        ck_assert_int_eq(evd_watch_arm(client, id, WAIT_MS), -EINVAL); /* edge */
        ck_assert_int_eq(evd_watch_modify(client, id, 0, EVD_EDGE, WAIT_MS), -EINVAL);
        ck_assert_int_eq(evd_watch_modify(client, id, EVD_ERR, EVD_EDGE, WAIT_MS), -EINVAL);
        ck_assert_int_eq(evd_watch_modify(client, id, EVD_IN, (enum evd_mode)7, WAIT_MS), -EINVAL);
        ck_assert_int_eq(evd_watch_modify(client, id + 100, EVD_IN, EVD_EDGE, WAIT_MS), -ENOENT);
        ck_assert_int_eq(evd_watch_remove(client, id, WAIT_MS), 0);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

START_TEST(test_watch_errors) {
        const struct evd_error *e;
        char path[256];
        uint64_t id = 77;
        int fd, r;

        ck_assert_int_eq(
                evd_watch_add(client, -1, EVD_IN, EVD_ONESHOT, on_watch, NULL, WAIT_MS, &id),
                -EBADF);
        ck_assert_int_eq(evd_watch_add(client, 0, 0, EVD_ONESHOT, on_watch, NULL, WAIT_MS, &id),
                         -EINVAL);
        ck_assert_int_eq(evd_watch_add(client, 0, EVD_IN, EVD_ONESHOT, NULL, NULL, WAIT_MS, &id),
                         -EINVAL);
        ck_assert_int_eq(
                evd_watch_add(client, 999, EVD_IN, EVD_ONESHOT, on_watch, NULL, WAIT_MS, &id),
                -EBADF);
        ck_assert_ptr_null(evd_client_last_error(client));

        /* A regular file: the daemon refuses with -32602 and says why. */
        snprintf(path, sizeof(path), "%s/file", daemon_.dir);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        r = evd_watch_add(client, fd, EVD_IN, EVD_ONESHOT, on_watch, NULL, WAIT_MS, &id);
        ck_assert_int_eq(r, EVD_E_INVALID_PARAMS);
        ck_assert(EVD_IS_DAEMON_ERROR(r));
        ck_assert_uint_eq(id, 77); /* not written on failure */
        e = evd_client_last_error(client);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->code, EVD_E_INVALID_PARAMS);
        ck_assert_str_eq(e->message, "Invalid params");
        ck_assert_str_eq(e->param, "fd");
        ck_assert_ptr_nonnull(strstr(e->why, "regular"));
        ck_assert_ptr_nonnull(e->data);
        close(fd);
        unlink(path);

        /* /dev/null cannot be polled: -32003. */
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        r = evd_watch_add(client, fd, EVD_IN, EVD_ONESHOT, on_watch, NULL, WAIT_MS, &id);
        ck_assert_int_eq(r, EVD_E_BAD_FD);
        ck_assert_str_eq(evd_strerror(r), "Bad file descriptor");
        close(fd);

        /* The next call forgets the error; nothing was left behind. */
        ck_assert_uint_eq(listing_size(client, "watches"), 0);
        ck_assert_ptr_null(evd_client_last_error(client));

        ck_assert_str_eq(evd_strerror(EVD_E_NO_SUCH_WATCH), "No such watch");
        ck_assert_str_eq(evd_strerror(-ENOENT), "No such file or directory");
        ck_assert_str_eq(evd_strerror(0), "Success");
        /* libc says "Cannot send after transport endpoint shutdown"; for libevd it means evd said goodbye. */
        ck_assert_str_eq(evd_strerror(-ESHUTDOWN), "The daemon announced its shutdown");
        ck_assert_ptr_nonnull(evd_strerror(-32099));
        ck_assert_ptr_nonnull(evd_strerror(-99999));
}
END_TEST

START_TEST(test_watch_quota) {
        const struct evd_error *e;
        uint64_t id;
        int p[2], r;

        /* setup_args() started this daemon with --max-watches-per-client 2. */
        make_pipe(p);
        ck_assert_int_eq(
                evd_watch_add(client, p[0], EVD_IN, EVD_EDGE, on_watch, NULL, WAIT_MS, &id), 0);
        ck_assert_int_eq(
                evd_watch_add(client, p[0], EVD_IN, EVD_EDGE, on_watch, NULL, WAIT_MS, &id), 0);
        r = evd_watch_add(client, p[0], EVD_IN, EVD_EDGE, on_watch, NULL, WAIT_MS, &id);
        ck_assert_int_eq(r, EVD_E_QUOTA);
        e = evd_client_last_error(client);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(json_integer_value(json_object_get(e->data, "limit")), 2);
        ck_assert_str_eq(e->message, "Quota exceeded");
        close(p[0]);
        close(p[1]);
}
END_TEST

START_TEST(test_watch_async_pipelined) {
        unsigned order = 0;
        Done add = {.order = &order}, arm = {.order = &order}, mod = {.order = &order};
        Done rm = {.order = &order}, ping = {.order = &order};
        Seen s = {0};
        uint64_t id = 0;
        int p[2];

        make_pipe(p);
        /* All five before the first reply: they must complete in order, and arm/modify/
         * remove name the watch before the daemon gave it an id. */
        ck_assert_int_eq(evd_watch_add_async(client, p[0], EVD_IN, EVD_ONESHOT, on_watch, &s,
                                             on_done, &add, &id),
                         0);
        ck_assert_uint_gt(id, 0);
        ck_assert_int_eq(evd_watch_arm_async(client, id, on_done, &arm), 0);
        ck_assert_int_eq(
                evd_watch_modify_async(client, id, EVD_IN | EVD_PRI, EVD_ONESHOT, on_done, &mod),
                0);
        ck_assert_int_eq(evd_call_async(client, "ping", NULL, on_done, &ping), 0);
        ck_assert_int_eq(evd_watch_remove_async(client, id, on_done, &rm), 0);
        ck_assert_uint_eq(order, 0); /* nothing runs before dispatch */

        ck_assert(run_until(&rm.flag, WAIT_MS));
        ck_assert_int_eq(add.r, 0);
        ck_assert_int_eq(arm.r, 0);
        ck_assert_int_eq(mod.r, 0);
        ck_assert_int_eq(ping.r, 0);
        ck_assert_int_eq(rm.r, 0);
        ck_assert_uint_eq(add.seq, 1);
        ck_assert_uint_eq(arm.seq, 2);
        ck_assert_uint_eq(mod.seq, 3);
        ck_assert_uint_eq(ping.seq, 4);
        ck_assert_uint_eq(rm.seq, 5);
        ck_assert(json_is_integer(json_object_get(add.result, "watch")));
        ck_assert_uint_eq(listing_size(client, "watches"), 0);

        /* An async failure carries the daemon's error into the completion. */
        {
                Done bad = {0};
                int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                uint64_t id2 = 0;

                ck_assert_int_eq(evd_watch_add_async(client, fd, EVD_IN, EVD_EDGE, on_watch, &s,
                                                     on_done, &bad, &id2),
                                 0);
                close(fd);
                ck_assert(run_until(&bad.flag, WAIT_MS));
                ck_assert_int_eq(bad.r, EVD_E_BAD_FD);
                ck_assert_int_eq(bad.code, EVD_E_BAD_FD);
                ck_assert_str_eq(bad.message, "Bad file descriptor");
                ck_assert_ptr_null(bad.result);
                /* The failed watch is gone from the library too. */
                ck_assert_int_eq(evd_watch_remove(client, id2, WAIT_MS), -ENOENT);
        }
        json_decref(add.result);
        json_decref(arm.result);
        json_decref(mod.result);
        json_decref(rm.result);
        json_decref(ping.result);
        close(p[0]);
        close(p[1]);
        ck_assert_uint_eq(s.calls, 0);
}
END_TEST

START_TEST(test_watch_many_pipelined) {
        enum { N = 200 };
        static int pipes[N][2];
        static uint64_t ids[N];
        static Seen seen[N];
        unsigned order = 0;
        Done done[N];
        Done last = {0};

        memset(done, 0, sizeof(done));
        memset(seen, 0, sizeof(seen));
        for (int i = 0; i < N; i++) {
                make_pipe(pipes[i]);
                done[i].order = &order;
                ck_assert_int_eq(evd_watch_add_async(client, pipes[i][0], EVD_IN, EVD_ONESHOT,
                                                     on_watch, &seen[i], on_done, &done[i],
                                                     &ids[i]),
                                 0);
                ck_assert_int_eq(write(pipes[i][1], "x", 1), 1);
        }
        ck_assert_int_eq(evd_call_async(client, "ping", NULL, on_done, &last), 0);
        ck_assert(run_until(&last.flag, WAIT_MS));
        for (int i = 0; i < N; i++) {
                ck_assert_int_eq(done[i].r, 0);
                ck_assert_uint_eq(done[i].seq, (unsigned)i + 1);
                json_decref(done[i].result);
        }
        json_decref(last.result);
        /* Every pipe was readable: every watch fires once. */
        for (int i = 0; i < N; i++) {
                ck_assert(run_until(&seen[i].flag, WAIT_MS));
                ck_assert_uint_eq(seen[i].id, ids[i]);
        }
        ck_assert_uint_eq(listing_size(client, "watches"), N);
        for (int i = 0; i < N; i++)
                ck_assert_int_eq(evd_watch_remove_async(client, ids[i], NULL, NULL), 0);
        ck_assert_uint_eq(listing_size(client, "watches"), 0);
        for (int i = 0; i < N; i++) {
                close(pipes[i][0]);
                close(pipes[i][1]);
        }
}
END_TEST

static json_int_t packets_in(void) {
        json_t *r = NULL;
        json_int_t n;

        ck_assert_int_eq(evd_call(client, "stats", NULL, WAIT_MS, &r), 0);
        ck_assert(json_is_integer(json_object_get(json_object_get(r, "daemon"), "packets_in")));
        n = json_integer_value(json_object_get(json_object_get(r, "daemon"), "packets_in"));
        json_decref(r);
        return n;
}

typedef struct AddMore {
        int first, n;
        int (*pipes)[2];
        Seen *seen;
        Done *done;
        uint64_t *ids;
        bool flag;
} AddMore;

static AddMore adding;

static int add_more(struct evd_client *c, int r, json_t *result, void *userdata) {
        AddMore *a = userdata;

        ck_assert_int_eq(r, 0);
        for (int i = a->first; i < a->first + a->n; i++)
                ck_assert_int_eq(evd_watch_add_async(c, a->pipes[i][0], EVD_IN, EVD_EDGE, on_watch, &a->seen[i],
                                                     on_done, &a->done[i], &a->ids[i]),
                                 0);
        a->flag = true;
        return 0;
}

/* The requests of a batch, and those the callbacks of one dispatch make, share packets
 * (32 fds each at most); each still gets its own completion, in order, and each watch works. */
START_TEST(test_watch_batch_shares_packets) {
        enum { N = 100, PER_CALLBACK = 40 };
        static int pipes[N + PER_CALLBACK][2];
        static uint64_t ids[N + PER_CALLBACK];
        static Seen seen[N + PER_CALLBACK];
        unsigned order = 0;
        Done done[N + PER_CALLBACK], last = {0};
        json_int_t before, after;

        memset(done, 0, sizeof(done));
        memset(seen, 0, sizeof(seen));
        for (int i = 0; i < N + PER_CALLBACK; i++) {
                make_pipe(pipes[i]);
                done[i].order = &order;
        }
        before = packets_in();
        ck_assert_int_eq(evd_client_batch_begin(client), 0);
        ck_assert_int_eq(evd_client_batch_begin(client), 0); /* nests */
        for (int i = 0; i < N; i++)
                ck_assert_int_eq(evd_watch_add_async(client, pipes[i][0], EVD_IN, EVD_ONESHOT, on_watch, &seen[i],
                                                     on_done, &done[i], &ids[i]),
                                 0);
        ck_assert_int_eq(evd_call_async(client, "ping", NULL, on_done, &last), 0);
        ck_assert_int_eq(evd_client_batch_end(client), 0);
        ck_assert_int_eq(evd_client_batch_end(client), 0);
        ck_assert_int_eq(evd_client_batch_end(client), -EINVAL);
        ck_assert(run_until(&last.flag, WAIT_MS));
        json_decref(last.result);
        after = packets_in();
        /* 100 watches with an fd each: 4 packets of at most 32; the ping (a method call goes
         * alone) and the stats request itself. One packet per request would be 102. */
        ck_assert_int_le(after - before, 4 + 1 + 1);
        for (int i = 0; i < N; i++) {
                ck_assert_int_eq(done[i].r, 0);
                ck_assert_uint_eq(done[i].seq, (unsigned)i + 1);
                json_decref(done[i].result);
        }

        /* Made by a callback (the completion of a ping), without asking. */
        before = packets_in();
        adding = (AddMore){ .first = N, .n = PER_CALLBACK, .pipes = pipes, .seen = seen, .done = done, .ids = ids };
        ck_assert_int_eq(evd_call_async(client, "ping", NULL, add_more, &adding), 0);
        ck_assert(run_until(&adding.flag, WAIT_MS));
        memset(&last, 0, sizeof(last));
        ck_assert_int_eq(evd_call_async(client, "ping", NULL, on_done, &last), 0);
        ck_assert(run_until(&last.flag, WAIT_MS));
        json_decref(last.result);
        /* The first ping, the 40 watches (2 packets), the second ping, the stats call. */
        ck_assert_int_le(packets_in() - before, 1 + 2 + 1 + 1);
        for (int i = N; i < N + PER_CALLBACK; i++) {
                ck_assert_int_eq(done[i].r, 0);
                json_decref(done[i].result);
        }

        for (int i = 0; i < N + PER_CALLBACK; i++)
                ck_assert_int_eq(write(pipes[i][1], "x", 1), 1);
        for (int i = 0; i < N + PER_CALLBACK; i++) {
                ck_assert(run_until(&seen[i].flag, WAIT_MS));
                ck_assert_uint_eq(seen[i].id, ids[i]);
        }
        ck_assert_uint_eq(listing_size(client, "watches"), N + PER_CALLBACK);
        for (int i = 0; i < N + PER_CALLBACK; i++) {
                close(pipes[i][0]);
                close(pipes[i][1]);
        }
}
END_TEST

/* ---- tests --------------------------------------------------------------------------- */

void libevd_watch_tests(TCase *tc_watch, TCase *tc_quota) {
        tcase_add_test(tc_watch, test_watch_oneshot);
        tcase_add_test(tc_watch, test_watch_caller_closes_fd);
        tcase_add_test(tc_watch, test_watch_edge_modify);
        tcase_add_test(tc_watch, test_watch_errors);
        tcase_add_test(tc_watch, test_watch_async_pipelined);
        tcase_add_test(tc_watch, test_watch_many_pipelined);
        tcase_add_test(tc_watch, test_watch_batch_shares_packets);
        tcase_add_test(tc_quota, test_watch_quota);
}
