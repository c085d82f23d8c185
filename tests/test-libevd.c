/*
 * test-libevd.c - libevd against the real daemon: every call in its synchronous and
 * asynchronous form, pipelining, error surfacing, event-loop integration, and surviving
 * a daemon restart (reconnect, re-registration, remaining timer time).
 *
 * Each test starts its own evd (tests/util-daemon.h) in a private directory, with the
 * backend from $EVD_TEST_BACKEND. Waiting is always bounded: run_until() dispatches and
 * polls evd_client_fd() like a program's own event loop would.
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
#include "util-check.h"
#include "util-daemon.h"

static int arg_slow = 1; /* valgrind: everything takes longer */

#define WAIT_MS (TEST_TIMEOUT_MS * arg_slow)

static TestDaemon daemon_;
static struct evd_client *client;

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Dispatch like a program's loop would until *@flag is set or @timeout_ms passed. */
static bool run_until_c(struct evd_client *c, const bool *flag, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

        for (;;) {
                struct pollfd p = {.fd = evd_client_fd(c), .events = POLLIN};
                uint64_t now;
                int r;

                r = evd_client_dispatch(c);
                ck_assert_msg(r >= 0, "dispatch: %s", evd_strerror(r));
                if (*flag)
                        return true;
                now = now_ms();
                if (now >= deadline)
                        return false;
                (void)poll(&p, 1, (int)(deadline - now));
        }
}

static bool run_until(const bool *flag, int timeout_ms) {
        return run_until_c(client, flag, timeout_ms);
}

/* Dispatch for @ms, whatever happens (to see that nothing does). */
static void run_for(int ms) {
        bool never = false;

        (void)run_until(&never, ms);
}

static void setup_args(const char *const *args) {
        int r;

        test_daemon_start(&daemon_, args);
        ck_assert_int_eq(evd_client_new(&client), 0);
        r = evd_client_connect(client, daemon_.socket);
        ck_assert_msg(r == 0, "connect: %s", evd_strerror(r));
}

static void setup(void) {
        setup_args(NULL);
}

static void teardown(void) {
        client = evd_client_free(client);
        (void)test_daemon_stop(&daemon_);
}

static void make_pipe(int p[2]) {
        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
}

static void drain(int fd) {
        char buf[256];

        while (read(fd, buf, sizeof(buf)) > 0)
                ;
}

/* The daemon's view of this client's watches (or timers): the listing's items. */
static json_t *listing(struct evd_client *c, const char *what) {
        json_t *result = NULL, *items;
        int r;

        r = evd_call(c, what, NULL, WAIT_MS, &result);
        ck_assert_msg(r == 0, "%s: %s", what, evd_strerror(r));
        items = json_incref(json_object_get(result, what));
        ck_assert_ptr_nonnull(items);
        json_decref(result);
        return items;
}

/* Daemon-wide counts from "status" ("watches", "timers"): each test has its own daemon. */
static json_int_t status_count(struct evd_client *c, const char *what) {
        json_t *result = NULL;
        json_int_t n;

        ck_assert_int_eq(evd_call(c, "status", NULL, WAIT_MS, &result), 0);
        n = json_integer_value(json_object_get(result, what));
        json_decref(result);
        return n;
}

static size_t listing_size(struct evd_client *c, const char *what) {
        json_t *items = listing(c, what);
        size_t n = json_array_size(items);

        json_decref(items);
        return n;
}

/* ---- callbacks recording what happened ---- */

typedef struct Seen {
        unsigned calls;
        uint64_t id;
        uint32_t revents;
        uint64_t expirations;
        bool flag;
} Seen;

static int on_watch(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        Seen *s = userdata;

        s->calls++;
        s->id = watch;
        s->revents = revents;
        s->flag = true;
        return 0;
}

static int on_timer(struct evd_client *c, uint64_t timer, uint64_t expirations, void *userdata) {
        Seen *s = userdata;

        s->calls++;
        s->id = timer;
        s->expirations += expirations;
        s->flag = true;
        return 0;
}

typedef struct Done {
        unsigned calls;
        int r;
        int code;
        char message[64];
        char param[32];
        json_t *result;
        bool flag;
        unsigned *order; /* shared sequence counter, for pipelining */
        unsigned seq;
} Done;

static int on_done(struct evd_client *c, int r, json_t *result, void *userdata) {
        Done *d = userdata;
        const struct evd_error *e = evd_client_last_error(c);

        d->calls++;
        d->r = r;
        d->flag = true;
        json_decref(d->result);
        d->result = json_incref(result);
        if (d->order)
                d->seq = ++*d->order;
        if (e) {
                d->code = e->code;
                snprintf(d->message, sizeof(d->message), "%s", e->message);
                snprintf(d->param, sizeof(d->param), "%s", e->param ? e->param : "");
        }
        return 0;
}

/* ---- connect ---- */

START_TEST(test_connect_errors) {
        struct evd_client *c;
        char path[256];
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        ck_assert_int_eq(evd_client_new(&c), 0);
        ck_assert_ptr_null(evd_client_socket_path(c));
        ck_assert_int_eq(evd_client_dispatch(c), -ENOTCONN);
        ck_assert_int_eq(evd_call(c, "ping", NULL, 100, NULL), -ENOTCONN);
        ck_assert_int_eq(evd_watch_add(c, 0, EVD_IN, EVD_ONESHOT, on_watch, NULL, 100, NULL),
                         -ENOTCONN);

        snprintf(path, sizeof(path), "%s/nothing.sock", daemon_.dir);
        ck_assert_int_eq(evd_client_connect(c, path), -ENOENT);
        ck_assert_str_eq(evd_client_socket_path(c), path);

        /* A socket nobody listens on any more: refused. */
        snprintf(path, sizeof(path), "%s/stale.sock", daemon_.dir);
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);
        ck_assert_int_eq(evd_client_connect(c, path), -ECONNREFUSED);
        unlink(path);

        /* The default: $EVD_SOCKET. */
        setenv("EVD_SOCKET", daemon_.socket, 1);
        ck_assert_int_eq(evd_client_connect(c, NULL), 0);
        unsetenv("EVD_SOCKET");
        ck_assert_str_eq(evd_client_socket_path(c), daemon_.socket);
        ck_assert(evd_client_is_connected(c));
        ck_assert_int_eq(evd_client_connect(c, NULL), -EISCONN);
        ck_assert_int_eq(evd_call(c, "ping", NULL, WAIT_MS, NULL), 0);
        (void)evd_client_free(c);
}
END_TEST

START_TEST(test_connect_close_name) {
        int fd = evd_client_fd(client);
        json_t *clients;
        bool found = false;
        size_t i;
        json_t *it;

        ck_assert_int_ge(fd, 0);
        evd_client_close(client);
        ck_assert(!evd_client_is_connected(client));
        ck_assert_int_eq(evd_call(client, "ping", NULL, 100, NULL), -ENOTCONN);
        ck_assert_int_eq(evd_client_set_name(client, "libevd-test"), 0);
        ck_assert_int_eq(evd_client_connect(client, daemon_.socket), 0);
        ck_assert_int_eq(evd_client_fd(client), fd); /* the same fd for the client's life */

        /* We are root, so an admin: the name from "hello" shows in the listing. */
        clients = listing(client, "clients");
        json_array_foreach(clients, i,
                           it) if (json_is_string(json_object_get(it, "name")) &&
                                   strcmp(json_string_value(json_object_get(it, "name")),
                                          "libevd-test") == 0) found = true;
        json_decref(clients);
        ck_assert(found);
        ck_assert_str_eq(evd_version(), "0.1.0");
}
END_TEST

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
        drain(p[0]);
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

static void setup_quota(void) {
        static const char *const args[] = {"--max-watches-per-client", "2", NULL};

        setup_args(args);
}

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

/* ---- timers ---- */

START_TEST(test_timer_after) {
        Seen s = {0};
        uint64_t id, t0 = now_ms();

        ck_assert_int_eq(evd_timer_after(client, 50000, 0, on_timer, &s, WAIT_MS, &id), 0);
        ck_assert_uint_eq(status_count(client, "timers"), 1);
        ck_assert(run_until(&s.flag, WAIT_MS));
        ck_assert_uint_ge(now_ms() - t0, 50);
        ck_assert_uint_eq(s.id, id);
        ck_assert_uint_eq(s.expirations, 1);
        /* A one-shot timer is gone once it fired. */
        ck_assert_int_eq(evd_timer_cancel(client, id, WAIT_MS), -ENOENT);
        ck_assert_uint_eq(status_count(client, "timers"), 0);

        ck_assert_int_eq(evd_timer_after(client, 0, 10, on_timer, &s, WAIT_MS, &id), -EINVAL);
        ck_assert_int_eq(evd_timer_after(client, 0, 0, NULL, &s, WAIT_MS, &id), -EINVAL);
        ck_assert_int_eq(evd_timer_after(client, (uint64_t)1 << 62, 0, on_timer, &s, WAIT_MS, &id),
                         -EINVAL);
}
END_TEST

START_TEST(test_timer_interval_cancel) {
        Seen s = {0}, never = {0};
        uint64_t id, id2;

        ck_assert_int_eq(evd_timer_after(client, 10000, 10000, on_timer, &s, WAIT_MS, &id), 0);
        ck_assert_int_eq(evd_timer_after(client, 60000000, 0, on_timer, &never, WAIT_MS, &id2), 0);
        ck_assert_int_eq(status_count(client, "timers"), 2);
        while (s.expirations < 5) {
                s.flag = false;
                ck_assert(run_until(&s.flag, WAIT_MS));
        }
        ck_assert_int_eq(evd_timer_cancel(client, id, WAIT_MS), 0);
        s.calls = 0;
        run_for(60);
        ck_assert_uint_eq(s.calls, 0);
        ck_assert_int_eq(evd_timer_cancel(client, id, WAIT_MS), -ENOENT);
        ck_assert_int_eq(evd_timer_cancel(client, id2, WAIT_MS), 0);
        ck_assert_uint_eq(never.calls, 0);
        ck_assert_uint_eq(status_count(client, "timers"), 0);
}
END_TEST

START_TEST(test_timer_at_async) {
        struct timespec ts;
        Seen s = {0}, s2 = {0};
        Done d = {0}, c = {0};
        uint64_t id, id2, at;

        clock_gettime(CLOCK_REALTIME, &ts);
        at = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000 + 50000;
        ck_assert_int_eq(evd_timer_at_async(client, at, 0, on_timer, &s, on_done, &d, &id), 0);
        ck_assert(run_until(&d.flag, WAIT_MS));
        ck_assert_int_eq(d.r, 0);
        ck_assert(json_is_integer(json_object_get(d.result, "timer")));
        ck_assert(run_until(&s.flag, WAIT_MS));
        clock_gettime(CLOCK_REALTIME, &ts);
        ck_assert_uint_ge((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000, at);

        /* In the past: at once. Sync form. */
        ck_assert_int_eq(evd_timer_at(client, 1000000, 0, on_timer, &s2, WAIT_MS, &id2), 0);
        ck_assert(run_until(&s2.flag, WAIT_MS));

        /* Cancelled before it fires (async): never called. */
        s2 = (Seen){0};
        ck_assert_int_eq(evd_timer_after_async(client, 30000, 0, on_timer, &s2, NULL, NULL, &id2),
                         0);
        ck_assert_int_eq(evd_timer_cancel_async(client, id2, on_done, &c), 0);
        ck_assert(run_until(&c.flag, WAIT_MS));
        ck_assert_int_eq(c.r, 0);
        run_for(80);
        ck_assert_uint_eq(s2.calls, 0);
        json_decref(d.result);
        json_decref(c.result);
}
END_TEST

/* A callback that cancels its own timer and removes its own watch. */
static int on_timer_cancel_self(struct evd_client *c, uint64_t timer, uint64_t expirations,
                                void *userdata) {
        Seen *s = userdata;

        s->calls++;
        s->flag = true;
        ck_assert_int_eq(evd_timer_cancel(c, timer, WAIT_MS), 0);
        return 0;
}

START_TEST(test_timer_cancel_from_callback) {
        Seen s = {0};
        uint64_t id;

        ck_assert_int_eq(
                evd_timer_after(client, 1000, 5000, on_timer_cancel_self, &s, WAIT_MS, &id), 0);
        ck_assert(run_until(&s.flag, WAIT_MS));
        run_for(50);
        ck_assert_uint_eq(s.calls, 1);
        ck_assert_uint_eq(status_count(client, "timers"), 0);
}
END_TEST

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

static void setup_debug(void) {
        setenv("EVD_DEBUG", "1", 1);
        setup_args(NULL);
        unsetenv("EVD_DEBUG");
}

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

static Suite *libevd_suite(void) {
        Suite *s = suite_create("libevd");
        TCase *tc;

        tc = tcase_create("connect");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_connect_errors);
        tcase_add_test(tc, test_connect_close_name);
        suite_add_tcase(s, tc);

        tc = test_tcase(s, "watch", 60 * arg_slow);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_watch_oneshot);
        tcase_add_test(tc, test_watch_caller_closes_fd);
        tcase_add_test(tc, test_watch_edge_modify);
        tcase_add_test(tc, test_watch_errors);
        tcase_add_test(tc, test_watch_async_pipelined);
        tcase_add_test(tc, test_watch_many_pipelined);

        tc = tcase_create("quota");
        tcase_add_checked_fixture(tc, setup_quota, teardown);
        tcase_add_test(tc, test_watch_quota);
        suite_add_tcase(s, tc);

        tc = test_tcase(s, "timer", 60 * arg_slow);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_timer_after);
        tcase_add_test(tc, test_timer_interval_cancel);
        tcase_add_test(tc, test_timer_at_async);
        tcase_add_test(tc, test_timer_cancel_from_callback);

        tc = tcase_create("call");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_call_sync_async);
        tcase_add_test(tc, test_loop_integration);
        suite_add_tcase(s, tc);

        tc = tcase_create("debug");
        tcase_add_checked_fixture(tc, setup_debug, teardown);
        tcase_add_test(tc, test_sync_timeout);
        tcase_add_test(tc, test_lost_without_reconnect);
        suite_add_tcase(s, tc);

        tc = test_tcase(s, "reconnect", 60 * arg_slow);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_reconnect);
        return s;
}


int main(void) {
        if (test_uring_refused())
                return 77;
        if (getenv("EVD_UNDER_VALGRIND"))
                arg_slow = 10;
        (void)signal(SIGPIPE, SIG_IGN);

        return test_run_suite(libevd_suite());
}
