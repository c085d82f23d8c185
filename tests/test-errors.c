/* test-errors.c - the daemon's error replies and counts, as protocol/PROTOCOL.md states them
 *
 * End to end like test-daemon.c: each test starts the built evd ($EVD_TEST_DAEMON, backend
 * $EVD_TEST_BACKEND) in its own mkdtemp() directory and talks to it over its socket. What
 * these tests pin down is which error code, and which `data`, a client sees when the daemon
 * runs out of fds, refuses a connection, cannot poll an fd, and so on; and that the figures
 * the daemon reports about its connections agree with each other.
 *
 * Where a test needs several events to reach the daemon in one loop iteration, another
 * client holds the loop with debug-wedge (EVD_DEBUG=1) while the test causes them; the wedge's
 * reply, read after, shows whether they all happened inside it.
 *
 * Forked children never call check's asserts: they report through exit codes or sockets.
 */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "evd.h"
#include "jsonrpc.h"
#include "macro.h"
#include "util-check.h"
#include "util-daemon.h"

#define TIMEOUT TEST_TIMEOUT_MS

/* ---- helpers ---------------------------------------------------------------------- */

static char *dump(const json_t *v) {
        char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("(null)");

        ck_assert_ptr_nonnull(s);
        return s;
}

static json_t *member(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);

        if (!v) {
                char *s = dump(o);
                ck_abort_msg("no member \"%s\" in %s", key, s);
        }
        return v;
}

static json_int_t int_member(json_t *o, const char *key) {
        json_t *v = member(o, key);

        if (!json_is_integer(v)) {
                char *s = dump(o);
                ck_abort_msg("member \"%s\" is not an integer in %s", key, s);
        }
        return json_integer_value(v);
}

/* @reply is an error with @code; with @id_text, its id's compact text is that. */
static void check_error(json_t *reply, int code, const char *id_text) {
        json_t *err = json_object_get(reply, "error");
        char *s = dump(reply), *id = dump(json_object_get(reply, "id"));

        ck_assert_msg(json_is_object(err) &&
                              json_integer_value(json_object_get(err, "code")) == code,
                      "expected error %d, got %s", code, s);
        if (id_text)
                ck_assert_msg(strcmp(id, id_text) == 0, "expected id %s in %s", id_text, s);
        free(id);
        free(s);
}

static void start(TestDaemon *d, TestClient *c, const char *const *args) {
        test_daemon_start(d, args);
        ck_assert_int_eq(test_client_connect(c, d->socket), 0);
}

static void stop(TestDaemon *d, TestClient *c) {
        test_client_close(c);
        ck_assert_int_eq(test_daemon_stop(d), 0);
}

static void ping(TestClient *c) {
        json_decref(test_client_result(c, "ping", NULL, NULL, 0));
}

static json_int_t status_int(TestClient *c, const char *key) {
        json_t *r = test_client_result(c, "status", NULL, NULL, 0);
        json_int_t v = int_member(r, key);

        json_decref(r);
        return v;
}

static long long ms_now(void) {
        struct timespec ts;

        ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until status says @want clients: the start-up probe goes away asynchronously. */
static void wait_clients(TestClient *c, json_int_t want) {
        long long deadline = ms_now() + TIMEOUT;
        json_int_t v;

        while ((v = status_int(c, "clients")) != want && ms_now() < deadline)
                (void)poll(NULL, 0, 5);
        ck_assert_int_eq(v, want);
}

/* The RLIMIT_NOFILE under which the daemon has room for exactly @room more fds: fds are
 * allocated lowest first, so that is one above its @room-th free fd number (open fds need
 * not be contiguous: it may have inherited high ones). */
static rlim_t daemon_limit_for_room(const TestDaemon *d, int room) {
        bool open_fd[4096] = { false };
        char path[64];
        struct dirent *de;
        DIR *dir;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int)d->pid);
        dir = opendir(path);
        ck_assert_ptr_nonnull(dir);
        while ((de = readdir(dir))) {
                int fd = atoi(de->d_name);

                if (de->d_name[0] != '.' && fd >= 0 && fd < (int)ELEMENTSOF(open_fd))
                        open_fd[fd] = true;
        }
        closedir(dir);
        for (int fd = 0; fd < (int)ELEMENTSOF(open_fd); fd++)
                if (!open_fd[fd] && --room == 0)
                        return (rlim_t)fd + 1;
        ck_abort_msg("no room found in the daemon's fd table");
        return 0;
}

/* ---- out of fds while receiving a packet's fds -------------------------------------- */

/* The daemon's fd table has room for a few fds only (its soft RLIMIT_NOFILE lowered from
 * outside), and a packet brings 32: the kernel installs what fits and flags MSG_CTRUNC. That
 * is the daemon's shortage, -32009, not a client sending more than 32 (-32006); every fd that
 * arrived is closed, nothing runs, and once there is room again 32 fds are fine and 40 are
 * still -32006. */
START_TEST(test_out_of_fds_on_packet) {
        static const char batch[] = "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\","
                                    "\"params\":{\"fd\":0,\"events\":[\"in\"],\"mode\":\"edge\"}},"
                                    "{\"jsonrpc\":\"2.0\",\"id\":\"t\",\"method\":\"timer\","
                                    "\"params\":{\"after\":100}},"
                                    "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}]";
        static const char single[] = "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"watch\","
                                     "\"params\":{\"fd\":31,\"events\":[\"in\"],"
                                     "\"mode\":\"edge\"}}";
        static const char broken[] = "{\"jsonrpc\":\"2.0\",\"id\":5,";
        TestDaemon d;
        TestClient c;
        struct rlimit old, low;
        json_t *r;
        int fds[40], base;

        start(&d, &c, NULL);
        wait_clients(&c, 1);
        base = test_daemon_fd_count(&d);
        for (int i = 0; i < 40; i++) {
                fds[i] = eventfd(0, EFD_CLOEXEC);
                ck_assert_int_ge(fds[i], 0);
        }
        ck_assert_int_eq(prlimit(d.pid, RLIMIT_NOFILE, NULL, &old), 0);
        low = old;
        low.rlim_cur = daemon_limit_for_room(&d, 4);
        ck_assert_int_eq(prlimit(d.pid, RLIMIT_NOFILE, &low, NULL), 0);

        ck_assert_int_eq(test_client_sendmsg(&c, batch, sizeof(batch) - 1, fds, 32), 0);
        r = test_client_reply(&c, TIMEOUT);
        ck_assert_msg(json_is_array(r) && json_array_size(r) == 3, "expected 3 replies");
        check_error(json_array_get(r, 0), -32009, "1");
        check_error(json_array_get(r, 1), -32009, "\"t\"");
        check_error(json_array_get(r, 2), -32009, "3");
        json_decref(r);
        ck_assert_int_eq(test_daemon_wait_fd_count(&d, base, TIMEOUT), base);
        ck_assert_int_eq(test_client_sendmsg(&c, single, sizeof(single) - 1, fds, 32), 0);
        r = test_client_reply(&c, TIMEOUT);
        check_error(r, -32009, "4");
        json_decref(r);
        ck_assert_int_eq(test_client_sendmsg(&c, broken, sizeof(broken) - 1, fds, 32), 0);
        r = test_client_reply(&c, TIMEOUT);
        check_error(r, -32009, "null");
        json_decref(r);
        ck_assert_int_eq(test_daemon_wait_fd_count(&d, base, TIMEOUT), base);
        ck_assert_int_eq(status_int(&c, "watches"), 0);
        ck_assert_int_eq(status_int(&c, "timers"), 0);

        ck_assert_int_eq(prlimit(d.pid, RLIMIT_NOFILE, &old, NULL), 0);
        ping(&c);
        ck_assert_int_eq(test_client_sendmsg(&c, single, sizeof(single) - 1, fds, 40), 0);
        r = test_client_reply(&c, TIMEOUT);
        check_error(r, -32006, "4");
        json_decref(r);
        ck_assert_int_eq(test_client_sendmsg(&c, single, sizeof(single) - 1, fds, 32), 0);
        r = test_client_reply(&c, TIMEOUT);
        ck_assert_msg(json_object_get(r, "result"), "32 fds with room for them: not watched");
        json_decref(r);
        ck_assert_int_eq(test_daemon_wait_fd_count(&d, base + 1, TIMEOUT), base + 1);
        for (int i = 0; i < 40; i++)
                close(fds[i]);
        stop(&d, &c);
}
END_TEST

/* ---- fds the kernel refuses to poll ----------------------------------------------- */

static json_t *watch_call(TestClient *c, int fd) {
        json_t *params = json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge");

        return test_client_call(c, "watch", params, &fd, 1);
}

/* An epoll fd nested as deep as the kernel allows: watching it would nest one level more,
 * which epoll_ctl() refuses with ELOOP (as it refuses loops). That is an fd the kernel will
 * not poll, -32003 (PROTOCOL.md 5), not an internal error; a shallow epoll fd is fine. */
START_TEST(test_epoll_nesting_too_deep) {
        struct epoll_event ev = { .events = EPOLLIN };
        TestDaemon d;
        TestClient c;
        int ep[16], n = 0, base;
        json_t *r;

        start(&d, &c, NULL);
        wait_clients(&c, 1);
        base = test_daemon_fd_count(&d);
        ep[n++] = epoll_create1(EPOLL_CLOEXEC);
        ck_assert_int_ge(ep[0], 0);
        for (;;) {
                ck_assert_int_lt(n, (int)ELEMENTSOF(ep));
                ep[n] = epoll_create1(EPOLL_CLOEXEC);
                ck_assert_int_ge(ep[n], 0);
                if (epoll_ctl(ep[n], EPOLL_CTL_ADD, ep[n - 1], &ev) < 0) {
                        ck_assert_int_eq(errno, ELOOP);
                        close(ep[n]);
                        break;
                }
                n++;
        }
        r = watch_call(&c, ep[n - 1]);
        check_error(r, -32003, NULL);
        ck_assert_str_eq(json_string_value(member(member(member(r, "error"), "data"),
                                                  "param")), "fd");
        json_decref(r);
        ck_assert_int_eq(test_daemon_wait_fd_count(&d, base, TIMEOUT), base);
        r = watch_call(&c, ep[0]);
        ck_assert_msg(json_object_get(r, "result"), "a plain epoll fd is not watchable");
        json_decref(r);
        for (int i = 0; i < n; i++)
                close(ep[i]);
        stop(&d, &c);
}
END_TEST

/* ---- timers at wall-clock dates after 2038 ------------------------------------------ */

static json_t *timer_at_call(TestClient *c, const char *at) {
        char text[160];
        json_t *params;

        snprintf(text, sizeof(text), "{\"at\":%s}", at);
        params = json_loads(text, 0, NULL);
        ck_assert_ptr_nonnull(params);
        return test_client_call(c, "timer", params, NULL, 0);
}

/* `at` takes any date up to the documented horizon, 2^33 s after the epoch (2242): 2^31 s
 * (2038-01-19) is not a limit. The daemon lists the timer as due that far ahead; later than
 * the horizon is -32602. */
START_TEST(test_timer_at_after_2038) {
        static const struct {
                const char *at;
                double seconds;
        } dates[] = {
                { "2147483649", 2147483649.0 },        /* 2038-01-19T03:14:09Z */
                { "4102444800.25", 4102444800.25 },    /* 2100-01-01 */
                { "8589934592", 8589934592.0 },        /* 2242-03-16T12:56:32Z: the horizon */
        };
        TestDaemon d;
        TestClient c;
        json_t *r;

        start(&d, &c, NULL);
        for (size_t i = 0; i < ELEMENTSOF(dates); i++) {
                json_t *list, *item;
                json_int_t t;
                struct timespec now;
                double next;

                r = timer_at_call(&c, dates[i].at);
                ck_assert_msg(json_object_get(r, "result"), "at %s refused", dates[i].at);
                t = int_member(member(r, "result"), "timer");
                json_decref(r);
                list = test_client_result(&c, "timers", NULL, NULL, 0);
                item = json_array_get(member(list, "timers"), 0);
                ck_assert_int_eq(json_array_size(member(list, "timers")), 1);
                ck_assert_int_eq(int_member(item, "timer"), t);
                ck_assert_str_eq(json_string_value(member(item, "clock")), "realtime");
                ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &now), 0);
                next = json_number_value(member(item, "next"));
                /* Loose: the point is "that far ahead", not the clock's precision. */
                ck_assert_msg(fabs(next - (dates[i].seconds - (double)now.tv_sec)) < 60.0,
                              "at %s: next %.0f", dates[i].at, next);
                json_decref(list);
                json_decref(test_client_result(&c, "cancel", json_pack("{s:I}", "timer", t),
                                               NULL, 0));
        }
        r = timer_at_call(&c, "8589934592.5");
        check_error(r, -32602, NULL);
        ck_assert_str_eq(json_string_value(member(member(member(r, "error"), "data"),
                                                  "param")), "at");
        json_decref(r);
        ck_assert_int_eq(status_int(&c, "timers"), 0);
        stop(&d, &c);
}
END_TEST

static int never_fires(struct evd_client *client, uint64_t timer, uint64_t expirations,
                       void *userdata) {
        return 0;
}

/* libevd takes the same dates. */
START_TEST(test_libevd_timer_at_after_2038) {
        TestDaemon d;
        struct evd_client *ec = NULL;
        uint64_t t = 0;

        test_daemon_start(&d, NULL);
        ck_assert_int_eq(evd_client_new(&ec), 0);
        ck_assert_int_eq(evd_client_connect(ec, d.socket), 0);
        ck_assert_int_eq(evd_timer_at(ec, 4102444800ull * 1000000u, 0, never_fires, NULL, TIMEOUT,
                                      &t), 0);
        ck_assert_int_eq(evd_timer_at(ec, 8589934592ull * 1000000u, 0, never_fires, NULL, TIMEOUT,
                                      &t), 0);
        ck_assert_int_eq(evd_timer_at(ec, 8589934593ull * 1000000u, 0, never_fires, NULL, TIMEOUT,
                                      &t), -EINVAL);
        ec = evd_client_free(ec);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* ---- credentials in listings ---------------------------------------------------- */

/* uid_t and gid_t are unsigned 32-bit: a uid above 2^31 is listed as itself, not negative. */
START_TEST(test_large_uid_listed_unsigned) {
        const uid_t big = 3000000000u;
        TestDaemon d;
        TestClient root, other;
        json_t *r, *item;
        json_int_t id;
        size_t i;
        bool found = false;

        start(&d, &root, NULL);
        ck_assert_int_eq(chmod(d.dir, 0755), 0);
        ck_assert_int_eq(test_client_connect_as(&other, d.socket, big, (gid_t)big), 0);
        r = test_client_result(&other, "hello", json_pack("{s:i}", "protocol", 1), NULL, 0);
        id = int_member(r, "client_id");
        json_decref(r);
        r = test_client_result(&root, "clients", NULL, NULL, 0);
        json_array_foreach(member(r, "clients"), i, item) {
                if (int_member(item, "client") != id)
                        continue;
                found = true;
                ck_assert_int_eq(int_member(item, "uid"), 3000000000ll);
                ck_assert_int_eq(int_member(item, "gid"), 3000000000ll);
        }
        ck_assert_msg(found, "client %lld not listed", (long long)id);
        json_decref(r);
        test_client_close(&other);
        stop(&d, &root);
}
END_TEST

static bool hello_admin(TestClient *c) {
        json_t *r = test_client_result(c, "hello", json_pack("{s:i}", "protocol", 1), NULL, 0);
        bool admin = json_is_true(member(r, "admin"));

        json_decref(r);
        return admin;
}

/* A peer in more than 256 supplementary groups: the daemon asks the kernel for all of them
 * (SO_PEERGROUPS says how much room it needs), so membership of the admin group counts even
 * as the last of 300 (the kernel keeps them sorted: the largest gid is last). */
START_TEST(test_admin_group_after_256_groups) {
        static const char *const args[] = { "--admin-group=20299", NULL };
        gid_t groups[300];
        TestDaemon d;
        TestClient root, in, out;

        for (size_t i = 0; i < ELEMENTSOF(groups); i++)
                groups[i] = (gid_t)(20000 + i);
        start(&d, &root, args);
        ck_assert_int_eq(chmod(d.dir, 0755), 0);
        ck_assert_int_eq(test_client_connect_as_groups(&in, d.socket, 4000, 4000, groups,
                                                       ELEMENTSOF(groups)), 0);
        ck_assert_msg(hello_admin(&in), "a member of the admin group (its 300th) is no admin");
        /* The same 300 but the admin group: not an admin. */
        groups[299] = 20300;
        ck_assert_int_eq(test_client_connect_as_groups(&out, d.socket, 4000, 4000, groups,
                                                       ELEMENTSOF(groups)), 0);
        ck_assert_msg(!hello_admin(&out), "not in the admin group, yet an admin");
        test_client_close(&out);
        test_client_close(&in);
        stop(&d, &root);
}
END_TEST

/* ---- connections refused by a quota ------------------------------------------------ */

/* A new connection is refused with one -32004 (null id) whose data.limit is @limit, then EOF. */
static void expect_refused_with_limit(const TestDaemon *d, json_int_t limit) {
        TestClient c;
        json_t *r;

        ck_assert_int_eq(test_client_connect(&c, d->socket), 0);
        r = test_client_reply(&c, TIMEOUT);
        ck_assert_msg(r, "no refusal");
        check_error(r, -32004, "null");
        ck_assert_int_eq(int_member(member(member(r, "error"), "data"), "limit"), limit);
        json_decref(r);
        ck_assert_msg(test_client_wait_eof(&c, TIMEOUT), "a refused connection stays open");
        test_client_close(&c);
}

/* PROTOCOL.md 9: a quota refusal carries data.limit, connections included. */
START_TEST(test_refused_connection_has_limit) {
        static const char *const clients[] = { "--max-clients=2", NULL };
        static const char *const per_uid[] = { "--max-clients-per-uid=3", NULL };
        TestDaemon d;
        TestClient c[3];

        test_daemon_start(&d, clients);
        test_client_connect_admitted(&c[0], &d);
        wait_clients(&c[0], 1);
        test_client_connect_admitted(&c[1], &d);
        expect_refused_with_limit(&d, 2);
        test_client_close(&c[1]);
        stop(&d, &c[0]);

        test_daemon_start(&d, per_uid);
        for (int i = 0; i < 3; i++)
                test_client_connect_admitted(&c[i], &d);
        expect_refused_with_limit(&d, 3);
        test_client_close(&c[2]);
        test_client_close(&c[1]);
        stop(&d, &c[0]);
}
END_TEST

/* ---- one loop iteration: closing connections, reply order ------------------------- */

/* Whether the daemon's thread sits in nanosleep(), i.e. inside debug-wedge. */
static bool daemon_wedged(const TestDaemon *d) {
        char path[64];
        long nr = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/syscall", (int)d->pid);
        f = fopen(path, "re");
        ck_assert_ptr_nonnull(f);
        if (fscanf(f, "%ld", &nr) != 1)
                nr = -1;
        fclose(f);
        return nr == SYS_nanosleep || nr == SYS_clock_nanosleep;
}

/* Hold the daemon's loop for @seconds through @w, and return once it is held: whatever the
 * test does next reaches the daemon as events of one later iteration. */
static void wedge_begin(const TestDaemon *d, TestClient *w, double seconds) {
        long long deadline = ms_now() + TIMEOUT;

        test_client_send(w, jsonrpc_request_new(w->next_id++, "debug-wedge",
                                                json_pack("{s:f}", "seconds", seconds)),
                         NULL, 0);
        while (!daemon_wedged(d)) {
                ck_assert_msg(ms_now() < deadline, "the daemon never entered debug-wedge");
                (void)poll(NULL, 0, 1);
        }
}

/* Whether the wedge still holds (then everything since wedge_begin() is queued behind it),
 * after which its reply is read. */
static bool wedge_end(const TestDaemon *d, TestClient *w) {
        bool held = daemon_wedged(d);
        json_t *r = test_client_reply(w, TIMEOUT);

        ck_assert_msg(r && json_object_get(r, "result"), "debug-wedge failed");
        json_decref(r);
        return held;
}

static void start_debug(TestDaemon *d, TestClient *c, const char *const *args) {
        setenv("EVD_DEBUG", "1", 1);
        start(d, c, args);
        unsetenv("EVD_DEBUG"); /* the daemon has it; later tests (CK_FORK=no) must not */
}

static json_int_t hello_id(TestClient *c) {
        json_t *r = test_client_result(c, "hello", json_pack("{s:i}", "protocol", 1), NULL, 0);
        json_int_t id = int_member(r, "client_id");

        json_decref(r);
        return id;
}

/* A connection that is closing still holds its fd until the end of the loop iteration, and
 * until then it counts everywhere (PROTOCOL.md 9): in status, in the clients listing (with
 * "closing": true) and against the connection limits. Client A hangs up and, in the same
 * iteration, B asks for status and the clients listing. */
START_TEST(test_closing_counted_alike) {
        TestDaemon d;
        TestClient a, b, w;
        bool held = false;
        json_t *r;

        start_debug(&d, &b, NULL);
        ck_assert_int_eq(test_client_connect(&w, d.socket), 0);
        wait_clients(&b, 2); /* the start-up probe is gone */
        for (double wedge = 0.5; !held; wedge *= 2) {
                json_int_t id;

                ck_assert_msg(wedge < 10, "could not get both events into one iteration");
                ck_assert_int_eq(test_client_connect(&a, d.socket), 0);
                id = hello_id(&a);
                wedge_begin(&d, &w, wedge);
                test_client_close(&a);
                test_client_send(&b, json_loads("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
                                                "\"status\"},{\"jsonrpc\":\"2.0\",\"id\":2,"
                                                "\"method\":\"clients\"}]", 0, NULL),
                                 NULL, 0);
                held = wedge_end(&d, &w);
                r = test_client_reply(&b, TIMEOUT);
                ck_assert_msg(json_is_array(r) && json_array_size(r) == 2, "no status reply");
                if (held) {
                        json_t *list = member(json_array_get(r, 1), "result"), *item;
                        bool found = false;
                        size_t i;

                        ck_assert_int_eq(int_member(member(json_array_get(r, 0), "result"),
                                                    "clients"), 3);
                        ck_assert_int_eq(int_member(list, "total"), 3);
                        ck_assert_int_eq(json_array_size(member(list, "clients")), 3);
                        json_array_foreach(member(list, "clients"), i, item) {
                                bool closing = json_is_true(member(item, "closing"));

                                ck_assert_msg(closing == (int_member(item, "client") == id),
                                              "client %lld: closing %d",
                                              (long long)int_member(item, "client"), closing);
                                found |= closing;
                        }
                        ck_assert_msg(found, "the closing client is not listed");
                }
                json_decref(r);
                wait_clients(&b, 2);
        }
        test_client_close(&w);
        stop(&d, &b);
}
END_TEST

/* Client A hangs up and, in the same iteration, a new client connects while A fills the
 * limit: A still counts, the new one is refused (and may try again). */
static void check_closing_counted_in_limit(const char *const *args) {
        static const char ping_text[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
        TestDaemon d;
        TestClient a, b, w, n;
        bool held = false;

        start_debug(&d, &b, args);
        ck_assert_int_eq(test_client_connect(&w, d.socket), 0);
        wait_clients(&b, 2); /* the start-up probe is gone */
        for (double wedge = 0.5; !held; wedge *= 2) {
                json_t *r;

                ck_assert_msg(wedge < 10, "could not get both events into one iteration");
                ck_assert_int_eq(test_client_connect(&a, d.socket), 0);
                wait_clients(&b, 3);
                wedge_begin(&d, &w, wedge);
                test_client_close(&a);
                ck_assert_int_eq(test_client_connect(&n, d.socket), 0);
                held = wedge_end(&d, &w);
                /* Refused, it may be closed already, with or without our ping unread: the
                 * send fails (EPIPE) or the first read does (ECONNRESET), and the refusal is
                 * still there to read after that. */
                (void)test_client_sendmsg(&n, ping_text, sizeof(ping_text) - 1, NULL, 0);
                r = test_client_reply(&n, TIMEOUT);
                if (!r)
                        r = test_client_reply(&n, TIMEOUT);
                ck_assert_msg(r, "no reply");
                if (held)
                        check_error(r, -32004, "null");
                json_decref(r);
                test_client_close(&n);
                wait_clients(&b, 2);
        }
        test_client_close(&w);
        stop(&d, &b);
}

START_TEST(test_closing_counted_in_max_clients) {
        static const char *const args[] = { "--max-clients=3", NULL };

        check_closing_counted_in_limit(args);
}
END_TEST

START_TEST(test_closing_counted_in_max_clients_per_uid) {
        static const char *const args[] = { "--max-clients-per-uid=3", NULL };

        check_closing_counted_in_limit(args);
}
END_TEST

/* PROTOCOL.md 4: a reply is sent as soon as it is made, notifications at the end of the loop
 * iteration, so a reply may overtake a notification about an event that happened before
 * the request was sent. Here the pipe becomes readable and then C sends a ping, both while
 * the loop is held: C gets the ping's reply first, the `ready` after it. */
START_TEST(test_reply_overtakes_notification) {
        static const char ping_text[] = "{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"ping\"}";
        TestDaemon d;
        TestClient c, w;
        bool held = false;
        int p[2];
        json_t *r;

        start_debug(&d, &c, NULL);
        ck_assert_int_eq(test_client_connect(&w, d.socket), 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        r = watch_call(&c, p[0]);
        ck_assert_msg(json_object_get(r, "result"), "watch failed");
        json_decref(r);
        for (double wedge = 0.5; !held; wedge *= 2) {
                char byte = 'x';

                ck_assert_msg(wedge < 10, "could not get both events into one iteration");
                wedge_begin(&d, &w, wedge);
                ck_assert_int_eq(write(p[1], &byte, 1), 1);
                test_client_send_raw(&c, ping_text, sizeof(ping_text) - 1, NULL, 0);
                held = wedge_end(&d, &w);
                /* Read until both came, noting which came first. */
                for (int seen_reply = 0, seen_ready = 0; !seen_reply || !seen_ready;) {
                        json_t *m;
                        size_t i;

                        r = test_client_recv(&c, TIMEOUT);
                        ck_assert_msg(r, "the ping's reply or the ready did not arrive");
                        if (json_is_object(r))
                                r = json_pack("[o]", r);
                        json_array_foreach(r, i, m) {
                                bool ready = json_object_get(m, "method") != NULL;

                                ck_assert_msg(!held || !ready || seen_reply,
                                              "a ready came before the ping's reply");
                                seen_ready |= ready;
                                seen_reply |= !ready;
                        }
                        json_decref(r);
                }
                ck_assert_int_eq(read(p[0], &byte, 1), 1);
        }
        close(p[0]);
        close(p[1]);
        test_client_close(&w);
        stop(&d, &c);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------- */

static Suite *errors_suite(void) {
        Suite *s = suite_create("errors");
        TCase *tc;

        tc = test_tcase(s, "fds", 60);
        tcase_add_test(tc, test_out_of_fds_on_packet);

        tc = test_tcase(s, "poll", 60);
        tcase_add_test(tc, test_epoll_nesting_too_deep);

        tc = test_tcase(s, "timers", 60);
        tcase_add_test(tc, test_timer_at_after_2038);
        tcase_add_test(tc, test_libevd_timer_at_after_2038);

        tc = test_tcase(s, "credentials", 60);
        tcase_add_test(tc, test_large_uid_listed_unsigned);
        tcase_add_test(tc, test_admin_group_after_256_groups);

        tc = test_tcase(s, "iteration", 120);
        tcase_add_test(tc, test_closing_counted_alike);
        tcase_add_test(tc, test_closing_counted_in_max_clients);
        tcase_add_test(tc, test_closing_counted_in_max_clients_per_uid);
        tcase_add_test(tc, test_reply_overtakes_notification);

        tc = test_tcase(s, "quotas", 60);
        tcase_add_test(tc, test_refused_connection_has_limit);

        return s;
}

int main(void) {
        (void)signal(SIGPIPE, SIG_IGN);

        /* Skip (77) only where the kernel refuses io_uring; the epoll run still covers all. */
        if (test_uring_refused())
                return 77;

        return test_run_suite(errors_suite());
}
