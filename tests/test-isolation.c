/* test-isolation.c - what one client can do to evd, to itself through evd, or see of others
 *
 * - A connection to evd cannot be watched through evd, however evd got its listener: bound
 *   itself, from an activator that called listen() in another process (as systemd does),
 *   or from systemd-socket-activate (which execs evd in the process that listened).
 * - Admin rights taken away by a reload end the `monitor` subscription at once.
 * - debug-wedge is admin-only, also where EVD_DEBUG=1 makes it exist.
 * - Fds whose readiness is the poller's (signalfd) and O_PATH fds of every file type are
 *   refused with -32003.
 * - SO_PASSRIGHTS, which evd turns off on a watched AF_UNIX socket, is back as it was when
 *   the watch is refused or ends.
 *
 * Run once per backend (EVD_TEST_BACKEND). Other uids come from test_client_connect_as().
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "util-check.h"
#include "util-daemon.h"
#include "util-fd.h"
#include "util-rpc.h"

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

#define ADMIN_GID 4242

static long long now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *watch_params(const char *mode) {
        return json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", mode);
}

/* A watch request for @fd that must fail with @code; checks data.param = "fd". */
static void watch_refused(TestClient *c, int fd, int code, const char *what) {
        json_t *r = test_client_call(c, "watch", watch_params("edge"), &fd, 1);
        json_t *err = json_object_get(r, "error");
        json_t *data = json_object_get(err, "data");

        ck_assert_msg(err, "%s: watched, expected error %d", what, code);
        ck_assert_msg(json_integer_value(json_object_get(err, "code")) == code,
                      "%s: error %lld (%s), expected %d", what,
                      (long long)json_integer_value(json_object_get(err, "code")),
                      json_string_value(json_object_get(data, "why")), code);
        ck_assert_str_eq(json_string_value(json_object_get(data, "param")), "fd");
        json_decref(r);
}

static json_int_t watch_ok(TestClient *c, int fd, const char *mode, const char *what) {
        json_t *r = test_client_call(c, "watch", watch_params(mode), &fd, 1);
        json_t *res = json_object_get(r, "result");
        json_int_t id;

        ck_assert_msg(res, "%s: refused: %s", what,
                      json_string_value(json_object_get(
                              json_object_get(json_object_get(r, "error"), "data"), "why")));
        id = json_integer_value(json_object_get(res, "watch"));
        json_decref(r);
        return id;
}

/* ---- a connection to evd cannot be watched --------------------------------------- */

/* In a daemon's child: stderr to the log, no service manager or activation inherited. */
static void child_setup(const TestDaemon *d, pid_t parent) {
        int log = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(126);
        if (log < 0 || dup2(log, STDERR_FILENO) < 0)
                _exit(126);
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDNAMES");
}

static void prepare(TestDaemon *d) {
        memset(d, 0, sizeof(*d));
        snprintf(d->dir, sizeof(d->dir), "/tmp/evd-iso-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(d->dir));
        snprintf(d->socket, sizeof(d->socket), "%s/evd.sock", d->dir);
        snprintf(d->log, sizeof(d->log), "%s/evd.log", d->dir);
}

static void wait_connectable(TestDaemon *d) {
        long long deadline = now_ms() + TIMEOUT;
        TestClient probe;
        int status;

        while (test_client_connect(&probe, d->socket) < 0) {
                ck_assert_msg(waitpid(d->pid, &status, WNOHANG) == 0, "evd exited (see %s)",
                              d->log);
                ck_assert_msg(now_ms() < deadline, "%s does not accept connections", d->socket);
                (void)poll(NULL, 0, 10);
        }
        test_client_close(&probe);
}

/* As a service manager does it: this process binds and listens (so SO_PEERCRED of every
 * connection names this process, not evd), the child gets the listener as fd 3. */
static void start_activated(TestDaemon *d) {
        const char *bin = getenv("EVD_TEST_DAEMON");
        const char *backend = getenv("EVD_TEST_BACKEND");
        pid_t parent = getpid();
        int lfd;

        ck_assert_msg(bin && *bin, "EVD_TEST_DAEMON is not set");
        prepare(d);
        lfd = unix_listener(d->socket, SOCK_SEQPACKET);
        d->pid = fork();
        ck_assert_int_ge(d->pid, 0);
        if (d->pid == 0) {
                char pid[32];

                child_setup(d, parent);
                if (dup2(lfd, 3) < 0)
                        _exit(126);
                snprintf(pid, sizeof(pid), "%d", (int)getpid());
                setenv("LISTEN_FDS", "1", 1);
                setenv("LISTEN_FDNAMES", "evd", 1);
                setenv("LISTEN_PID", pid, 1);
                execl(bin, bin, "--log-level", "debug", "--backend",
                      backend && *backend ? backend : "auto", (char *)NULL);
                _exit(127);
        }
        close(lfd);
        wait_connectable(d);
}

/* systemd-socket-activate binds, then execs evd in the same process at the first
 * connection. Returns false (the test is skipped) where it is not installed. */
static bool start_socket_activate(TestDaemon *d) {
        const char *activate = getenv("EVD_TEST_SOCKET_ACTIVATE");
        const char *bin = getenv("EVD_TEST_DAEMON");
        const char *backend = getenv("EVD_TEST_BACKEND");
        char listen_arg[160];
        pid_t parent = getpid();

        if (!activate || !*activate) {
                printf("systemd-socket-activate not found: skipping this test\n");
                return false;
        }
        prepare(d);
        snprintf(listen_arg, sizeof(listen_arg), "--listen=%s", d->socket);
        d->pid = fork();
        ck_assert_int_ge(d->pid, 0);
        if (d->pid == 0) {
                child_setup(d, parent);
                execl(activate, activate, "--seqpacket", listen_arg, "--fdname=evd", "-E",
                      "ASAN_OPTIONS", "-E", "UBSAN_OPTIONS", bin, "--log-level", "debug",
                      "--backend", backend && *backend ? backend : "auto", (char *)NULL);
                _exit(127);
        }
        wait_connectable(d);
        return true;
}

/*
 * Either end a client holds of a connection to evd, its own or another of its connections
 * (also one evd has not accepted yet, as far as a test can hold one back: a fresh one), is
 * refused: evd would hold it open and never see that connection close. Sockets that are
 * not connections to evd stay watchable: a socketpair, and a connection to another
 * listener of this process (same SO_PEERCRED as evd's connections when activated here).
 */
static void check_own_connections(TestDaemon *d) {
        char other_path[160];
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        TestClient c, c2, c3;
        int sv[2], other, conn, base;

        ck_assert_int_eq(test_client_connect(&c, d->socket), 0);
        ck_assert_int_eq(test_client_connect(&c2, d->socket), 0);
        wait_status(&c, "clients", 2); /* the start-up probe is gone */
        base = test_daemon_fd_count(d);

        watch_refused(&c, c.fd, -32602, "the caller's own connection");
        watch_refused(&c, c2.fd, -32602, "another connection of the caller");
        ck_assert_int_eq(test_client_connect(&c3, d->socket), 0);
        watch_refused(&c, c3.fd, -32602, "a connection just made");
        test_client_close(&c3);

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        call_ok(&c, "unwatch",
                json_pack("{s:I}", "watch", watch_ok(&c, sv[0], "edge", "a socketpair")), NULL, 0);
        close_pair(sv);
        snprintf(other_path, sizeof(other_path), "%s/other.sock", d->dir);
        other = unix_listener(other_path, SOCK_SEQPACKET);
        strcpy(sa.sun_path, other_path);
        conn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(conn, 0);
        ck_assert_int_eq(connect(conn, (struct sockaddr *)&sa, sizeof(sa)), 0);
        call_ok(&c, "unwatch",
                json_pack("{s:I}", "watch",
                          watch_ok(&c, conn, "edge", "a connection to another listener")), NULL, 0);
        close(conn);
        close(other);

        /* Nothing of the refused fds stayed in the daemon: c2 is seen to go away. */
        test_client_close(&c2);
        wait_status(&c, "clients", 1);
        ck_assert_int_eq(status_int(&c, "watches"), 0);
        ck_assert_int_le(test_daemon_wait_fd_count(d, base - 1, TIMEOUT), base - 1);
        test_client_close(&c);
}

START_TEST(test_own_connection_bound) {
        TestDaemon d;

        test_daemon_start(&d, NULL);
        check_own_connections(&d);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

START_TEST(test_own_connection_activated) {
        TestDaemon d;

        start_activated(&d);
        check_own_connections(&d);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

START_TEST(test_own_connection_socket_activate) {
        TestDaemon d;

        if (!start_socket_activate(&d))
                return;
        check_own_connections(&d);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* ---- admin rights taken away ------------------------------------------------------- */

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

static bool hello_admin(TestClient *c) {
        json_t *r = test_client_result(c, "hello", json_pack("{s:i}", "protocol", 1), NULL, 0);
        bool admin = json_is_true(json_object_get(r, "admin"));

        json_decref(r);
        return admin;
}

/* A `monitor` copy of a `ready` for @watch, if one is already in the backlog (no wait). */
static bool saw_copy_of(TestClient *c, json_int_t client, json_int_t watch) {
        json_t *m;
        bool seen = false;

        while ((m = test_client_notification(c, "monitor", 0))) {
                json_t *p = json_object_get(m, "params");
                json_t *msg = json_object_get(p, "message");

                if (json_integer_value(json_object_get(p, "client")) == client &&
                    json_integer_value(json_object_get(json_object_get(msg, "params"), "watch")) ==
                            watch)
                        seen = true;
                json_decref(m);
        }
        return seen;
}

/* `evctl monitor` as @uid/@gid (no supplementary groups), stdout into *@ret_out. */
static pid_t start_evctl_monitor(const char *socket_path, uid_t uid, gid_t gid, int *ret_out) {
        const char *bin = getenv("EVCTL");
        pid_t pid, parent = getpid();
        int out[2];

        ck_assert_msg(bin && *bin, "EVCTL is not set");
        ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(126);
                if (dup2(out[1], STDOUT_FILENO) < 0)
                        _exit(126);
                if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
                        _exit(126);
                setenv("EVD_SOCKET", socket_path, 1);
                execl(bin, bin, "monitor", (char *)NULL);
                _exit(127);
        }
        close(out[1]);
        *ret_out = out[0];
        return pid;
}

/* Whether (as root sees it) a connection of @uid is a monitor. */
static bool uid_is_monitor(TestClient *root, uid_t uid) {
        json_t *list = test_client_result(root, "clients", NULL, NULL, 0), *item;
        bool monitor = false;
        size_t i;

        json_array_foreach(json_object_get(list, "clients"), i,
                           item) if (json_integer_value(json_object_get(item, "uid")) ==
                                             (json_int_t)uid &&
                                     json_is_true(json_object_get(item, "monitor"))) monitor = true;
        json_decref(list);
        return monitor;
}

/*
 * An admin by its group monitors; a reload removes the admin group. The monitor gets
 * `monitor-ended` ("permission") and, from then on, no copy of another user's
 * notifications; the admin-only methods are refused to it.
 */
START_TEST(test_monitor_ends_with_admin_rights) {
        char config[128], arg[160], text[64];
        const char *args[] = {arg, NULL};
        TestDaemon d;
        TestClient admin, user, root;
        json_t *r, *m;
        json_int_t user_id, w;
        int p[2], evctl_out;
        pid_t evctl;
        bool copied = false;

        snprintf(config, sizeof(config), "/tmp/evd-iso-%d.conf", (int)getpid());
        snprintf(text, sizeof(text), "admin-group = %d\n", ADMIN_GID);
        write_file(config, text);
        snprintf(arg, sizeof(arg), "--config=%s", config);
        test_daemon_start(&d, args);
        ck_assert_int_eq(chmod(d.dir, 0755), 0);
        ck_assert_int_eq(test_client_connect_as(&admin, d.socket, 4001, ADMIN_GID), 0);
        ck_assert_int_eq(test_client_connect_as(&user, d.socket, 4002, 4002), 0);
        ck_assert_msg(hello_admin(&admin), "a member of the admin group is not an admin");
        ck_assert_msg(!hello_admin(&user), "an ordinary user is an admin");
        r = test_client_result(&user, "hello", json_pack("{s:i}", "protocol", 1), NULL, 0);
        user_id = json_integer_value(json_object_get(r, "client_id"));
        json_decref(r);
        call_ok(&admin, "monitor", NULL, NULL, 0);
        /* evctl monitor, an admin by the same group: it says so and exits 5 (permission). */
        ck_assert_int_eq(test_client_connect(&root, d.socket), 0);
        evctl = start_evctl_monitor(d.socket, 4005, ADMIN_GID, &evctl_out);
        for (long long deadline = now_ms() + TIMEOUT; !uid_is_monitor(&root, 4005);) {
                ck_assert_msg(now_ms() < deadline, "evctl monitor did not subscribe");
                (void)poll(NULL, 0, 10);
        }

        make_pipe(p);
        w = watch_ok(&user, p[0], "edge", "the user's pipe");
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        m = test_client_notification_for(&user, "ready", "watch", w, TIMEOUT);
        ck_assert_ptr_nonnull(m);
        json_decref(m);
        for (long long deadline = now_ms() + TIMEOUT; !copied && now_ms() < deadline;) {
                m = test_client_notification(&admin, "monitor", 100);
                if (m) {
                        copied = json_integer_value(json_object_get(json_object_get(m, "params"),
                                                                    "client")) == user_id;
                        json_decref(m);
                }
        }
        ck_assert_msg(copied, "the monitor got no copy while it was an admin");

        write_file(config, "# no admin group any more\n");
        ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
        m = test_client_notification(&admin, "monitor-ended", TIMEOUT);
        ck_assert_msg(m, "no monitor-ended after the reload took admin rights away");
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "params"), "reason")),
                         "permission");
        json_decref(m);
        (void)saw_copy_of(&admin, user_id, w); /* copies sent before the reload: fine */
        ck_assert_int_eq(test_wait_pid(evctl, TIMEOUT), 5);
        {
                char out[4096];
                ssize_t n = read(evctl_out, out, sizeof(out) - 1);

                ck_assert_int_gt(n, 0);
                out[n] = 0;
                ck_assert_msg(strstr(out, "evd ended monitoring (permission)"), "evctl said: %s",
                              out);
                close(evctl_out);
        }

        /* The user's next events: the user gets them, the former admin sees nothing. Its
         * ping's reply comes after any copy that was sent to it. */
        for (int i = 0; i < 3; i++) {
                char buf[8];

                ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 1);
                ck_assert_int_eq(write(p[1], "y", 1), 1);
                m = test_client_notification_for(&user, "ready", "watch", w, TIMEOUT);
                ck_assert_ptr_nonnull(m);
                json_decref(m);
        }
        call_ok(&admin, "ping", NULL, NULL, 0);
        ck_assert_msg(!saw_copy_of(&admin, user_id, w),
                      "the former admin still receives copies of another user's notifications");
        ck_assert_msg(!hello_admin(&admin), "still an admin after the reload");
        ck_assert_int_eq(test_client_error_code(&admin, "monitor", NULL, NULL, 0), -32005);
        /* `clients` now shows it only its own uid's connections: not the user's. */
        {
                json_t *list = test_client_result(&admin, "clients", NULL, NULL, 0), *item;
                size_t i;

                json_array_foreach(json_object_get(list, "clients"), i, item)
                        ck_assert_int_ne(json_integer_value(json_object_get(item, "client")), user_id);
                json_decref(list);
        }
        ck_assert_int_eq(test_client_error_code(&admin, "watches",
                                                json_pack("{s:I}", "client", user_id), NULL, 0),
                         -32005);
        /* The listing agrees (as root sees it). */
        {
                json_t *list, *item;
                size_t i;
                bool found = false;

                list = test_client_result(&root, "clients", NULL, NULL, 0);
                json_array_foreach(json_object_get(list, "clients"), i, item) {
                        if (json_integer_value(json_object_get(item, "uid")) != 4001)
                                continue;
                        found = true;
                        ck_assert(json_is_false(json_object_get(item, "monitor")));
                        ck_assert(json_is_false(json_object_get(item, "admin")));
                }
                ck_assert(found);
                json_decref(list);
                test_client_close(&root);
        }

        close_pair(p);
        test_client_close(&admin);
        test_client_close(&user);
        (void)unlink(config);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* @uid's connection's queued_bytes (as root sees it). */
static json_int_t uid_queued_bytes(TestClient *root, uid_t uid) {
        json_t *list = test_client_result(root, "clients", NULL, NULL, 0), *item;
        json_int_t queued = -1;
        size_t i;

        json_array_foreach(json_object_get(list, "clients"), i,
                           item) if (json_integer_value(json_object_get(item, "uid")) ==
                                     (json_int_t)uid) queued =
                json_integer_value(json_object_get(item, "queued_bytes"));
        json_decref(list);
        return queued;
}

/*
 * Copies queued for a monitor that does not read (its socket full) when it loses admin
 * rights are not sent after all: of @n copies made, fewer arrive, and none after
 * `monitor-ended`.
 */
START_TEST(test_monitor_queued_copies_dropped) {
        const int n = 2000;
        char config[128], arg[160], text[64];
        const char *args[] = {arg, NULL};
        TestDaemon d;
        TestClient admin, user, root;
        json_t *m;
        json_int_t w;
        int p[2], copies = 0;
        bool ended = false;

        snprintf(config, sizeof(config), "/tmp/evd-iso-q-%d.conf", (int)getpid());
        snprintf(text, sizeof(text), "admin-group = %d\n", ADMIN_GID);
        write_file(config, text);
        snprintf(arg, sizeof(arg), "--config=%s", config);
        test_daemon_start(&d, args);
        ck_assert_int_eq(chmod(d.dir, 0755), 0);
        ck_assert_int_eq(test_client_connect_as(&admin, d.socket, 4001, ADMIN_GID), 0);
        ck_assert_int_eq(test_client_connect_as(&user, d.socket, 4002, 4002), 0);
        ck_assert_int_eq(test_client_connect(&root, d.socket), 0);
        call_ok(&admin, "monitor", NULL, NULL, 0);

        /* n separate `ready`s (the user reads each), n copies; the monitor reads none. */
        make_pipe(p);
        w = watch_ok(&user, p[0], "edge", "the user's pipe");
        for (int i = 0; i < n; i++) {
                char b;

                ck_assert_int_eq(write(p[1], "x", 1), 1);
                m = test_client_notification_for(&user, "ready", "watch", w, TIMEOUT);
                ck_assert_ptr_nonnull(m);
                json_decref(m);
                ck_assert_int_eq(read(p[0], &b, 1), 1);
        }
        ck_assert_msg(uid_queued_bytes(&root, 4001) > 0,
                      "all %d copies fit in the monitor's socket: nothing was queued", n);

        write_file(config, "# no admin group any more\n");
        ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
        for (long long deadline = now_ms() + TIMEOUT; uid_is_monitor(&root, 4001);) {
                ck_assert_msg(now_ms() < deadline, "still a monitor after the reload");
                (void)poll(NULL, 0, 10);
        }
        while (!ended && (m = test_client_recv(&admin, TIMEOUT))) {
                json_t *one;
                size_t i;

                /* One notification or a batch of them. */
                if (json_is_object(m)) {
                        json_t *a = json_array();
                        json_array_append_new(a, m);
                        m = a;
                }
                json_array_foreach(m, i, one) {
                        const char *method = json_string_value(json_object_get(one, "method"));

                        ck_assert_msg(!ended, "a notification after monitor-ended");
                        if (method && strcmp(method, "monitor") == 0)
                                copies++;
                        else if (method && strcmp(method, "monitor-ended") == 0)
                                ended = true;
                }
                json_decref(m);
        }
        ck_assert_msg(ended, "no monitor-ended");
        ck_assert_msg(copies < n, "all %d copies were delivered after admin rights went", n);
        call_ok(&admin, "ping", NULL, NULL, 0);
        ck_assert_ptr_null(test_client_notification(&admin, "monitor", 0));

        close_pair(p);
        test_client_close(&admin);
        test_client_close(&user);
        test_client_close(&root);
        (void)unlink(config);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* ---- debug-wedge ------------------------------------------------------------------- */

START_TEST(test_debug_wedge_admin_only) {
        TestDaemon d;
        TestClient user, root;

        setenv("EVD_DEBUG", "1", 1);
        test_daemon_start(&d, NULL);
        unsetenv("EVD_DEBUG"); /* the daemon has it; later tests (CK_FORK=no) must not */
        ck_assert_int_eq(chmod(d.dir, 0755), 0);
        ck_assert_int_eq(test_client_connect_as(&user, d.socket, 4003, 4003), 0);
        ck_assert_int_eq(test_client_error_code(&user, "debug-wedge",
                                                json_pack("{s:f}", "seconds", 0.0), NULL, 0),
                         -32005);
        ck_assert_int_eq(test_client_connect(&root, d.socket), 0);
        call_ok(&root, "debug-wedge", json_pack("{s:f}", "seconds", 0.0), NULL, 0);
        test_client_close(&user);
        test_client_close(&root);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* ---- fds that cannot be watched ------------------------------------------------- */

static int open_path(const char *path) {
        int fd = open(path, O_PATH | O_CLOEXEC);

        ck_assert_msg(fd >= 0, "open(%s, O_PATH): %s", path, strerror(errno));
        return fd;
}

/* A signalfd and O_PATH fds of every file type: -32003. The same kinds opened for real
 * where that makes a watchable fd (eventfd, fifo, socket) still are. */
START_TEST(test_unwatchable_fds) {
        char file[160], fifo[160], sock[160];
        sigset_t mask;
        TestDaemon d;
        TestClient c;
        int fd, lfd, base;

        test_daemon_start(&d, NULL);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        wait_status(&c, "clients", 1);
        base = test_daemon_fd_count(&d);

        sigemptyset(&mask);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGUSR1);
        fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        ck_assert_int_ge(fd, 0);
        watch_refused(&c, fd, -32003, "a signalfd");
        close(fd);

        snprintf(file, sizeof(file), "%s/file", d.dir);
        snprintf(fifo, sizeof(fifo), "%s/fifo", d.dir);
        snprintf(sock, sizeof(sock), "%s/other.sock", d.dir);
        write_file(file, "x");
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);
        lfd = unix_listener(sock, SOCK_SEQPACKET);
        {
                const struct {
                        const char *path, *what;
                } paths[] = {
                        {file, "O_PATH: a regular file"},
                        {d.dir, "O_PATH: a directory"},
                        {fifo, "O_PATH: a fifo"},
                        {sock, "O_PATH: a socket"},
                        {"/dev/null", "O_PATH: a char device"},
                };

                for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                        fd = open_path(paths[i].path);
                        watch_refused(&c, fd, -32003, paths[i].what);
                        close(fd);
                }
        }
        ck_assert_int_eq(test_daemon_wait_fd_count(&d, base, TIMEOUT), base);

        fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ck_assert_int_ge(fd, 0);
        call_ok(&c, "unwatch", json_pack("{s:I}", "watch", watch_ok(&c, fd, "edge", "an eventfd")),
                NULL, 0);
        close(fd);
        fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        call_ok(&c, "unwatch", json_pack("{s:I}", "watch", watch_ok(&c, fd, "edge", "a fifo")),
                NULL, 0);
        close(fd);
        close(lfd);
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* ---- SO_PASSRIGHTS ----------------------------------------------------------------- */

/* SO_PASSRIGHTS of @fd: 0 or 1, or -1 where the kernel lacks it (before Linux 6.16). */
static int passrights(int fd) {
        int v = -1;
        socklen_t len = sizeof(v);

        if (getsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &v, &len) < 0) {
                ck_assert_msg(errno == ENOPROTOOPT || errno == EINVAL, "SO_PASSRIGHTS: %s",
                              strerror(errno));
                return -1;
        }
        return v ? 1 : 0;
}

START_TEST(test_passrights_restored) {
        TestDaemon d;
        TestClient c, c2;
        int sv[2], off = 0, base;
        json_int_t w;

        test_daemon_start(&d, NULL);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        if (passrights(sv[1]) < 0) {
                /* Nothing to turn off or restore: watching still works. */
                printf("SO_PASSRIGHTS is not supported by this kernel: checking only that "
                       "AF_UNIX sockets are watched\n");
                call_ok(&c, "unwatch",
                        json_pack("{s:I}", "watch", watch_ok(&c, sv[1], "edge", "a socketpair")), NULL, 0);
                close_pair(sv);
                test_client_close(&c);
                ck_assert_int_eq(test_daemon_stop(&d), 0);
                return;
        }
        ck_assert_int_eq(passrights(sv[1]), 1);

        /* Watched: off; unwatched: on again (the reply comes after the watch is gone). */
        w = watch_ok(&c, sv[1], "edge", "a socketpair");
        ck_assert_int_eq(passrights(sv[1]), 0);
        call_ok(&c, "unwatch", json_pack("{s:I}", "watch", w), NULL, 0);
        ck_assert_msg(passrights(sv[1]) == 1, "SO_PASSRIGHTS still off after unwatch");

        /* Refused (unread data): left as it was. */
        ck_assert_int_eq(write(sv[0], "x", 1), 1);
        watch_refused(&c, sv[1], -32602, "a socket with unread data");
        ck_assert_msg(passrights(sv[1]) == 1, "SO_PASSRIGHTS left off by a refused watch");
        {
                char b;
                ck_assert_int_eq(read(sv[1], &b, 1), 1);
        }

        /* Already off: stays off after the watch. */
        ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_PASSRIGHTS, &off, sizeof(off)), 0);
        w = watch_ok(&c, sv[1], "edge", "a socket without SO_PASSRIGHTS");
        call_ok(&c, "unwatch", json_pack("{s:I}", "watch", w), NULL, 0);
        ck_assert_int_eq(passrights(sv[1]), 0);
        close_pair(sv);

        /* Two watches of one socket: on again only once the last one is gone. */
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        w = watch_ok(&c, sv[1], "edge", "a socketpair, first watch");
        json_int_t w2 = watch_ok(&c, sv[1], "edge", "a socketpair, second watch");
        call_ok(&c, "unwatch", json_pack("{s:I}", "watch", w2), NULL, 0);
        ck_assert_msg(passrights(sv[1]) == 0, "SO_PASSRIGHTS on while a watch remains");
        call_ok(&c, "unwatch", json_pack("{s:I}", "watch", w), NULL, 0);
        ck_assert_int_eq(passrights(sv[1]), 1);

        /* The watch ends with its client. */
        ck_assert_int_eq(test_client_connect(&c2, d.socket), 0);
        wait_status(&c, "clients", 2);
        base = test_daemon_fd_count(&d);
        (void)watch_ok(&c2, sv[1], "edge", "a socketpair of a client that leaves");
        ck_assert_int_eq(passrights(sv[1]), 0);
        test_client_close(&c2);
        ck_assert_int_eq(test_daemon_wait_fd_count(&d, base - 1, TIMEOUT), base - 1);
        ck_assert_msg(passrights(sv[1]) == 1, "SO_PASSRIGHTS still off after the client left");
        close_pair(sv);
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

static Suite *isolation_suite(void) {
        Suite *s = suite_create("isolation");
        TCase *tc;

        tc = test_tcase(s, "own-connection", 30);
        tcase_add_test(tc, test_own_connection_bound);
        tcase_add_test(tc, test_own_connection_activated);
        tcase_add_test(tc, test_own_connection_socket_activate);

        tc = test_tcase(s, "admin", 30);
        tcase_add_test(tc, test_monitor_ends_with_admin_rights);
        tcase_add_test(tc, test_monitor_queued_copies_dropped);
        tcase_add_test(tc, test_debug_wedge_admin_only);

        tc = test_tcase(s, "fds", 30);
        tcase_add_test(tc, test_unwatchable_fds);
        tcase_add_test(tc, test_passrights_restored);
        return s;
}

int main(void) {
        return test_run_suite(isolation_suite());
}
