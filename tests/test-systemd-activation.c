/* test-systemd-activation.c - evd adopts a socket-activated listener
 *
 * Two activators: systemd's own systemd-socket-activate (what a service manager does, for
 * real), and a hand-made one (fd 3, LISTEN_FDS, LISTEN_PID set in the child between fork
 * and exec, LISTEN_FDNAMES) that can also get things wrong on purpose: a LISTEN_PID for
 * another process, a listener of the wrong type, an extra fd. Every daemon also gets
 * --socket pointing at a "fallback" path in the test's directory: evd must not bind it when
 * activation succeeds, and binds it (not the system path) when the fds are not for it.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

/* Every test's directory lives in one per-run directory that main() removes at the end,
 * and every daemon is killed when its test's process dies: a failing check (which ends
 * that process at once) leaves nothing behind. */
static char run_dir[64];

static void make_test_dir(char *dir, size_t size) {
        ck_assert_int_lt(snprintf(dir, size, "%s/t-XXXXXX", run_dir), (int)size);
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static long long now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A TestDaemon whose directory, socket and log paths are set up but which is not started:
 * test_daemon_stop() then stops whatever the test started and removes the directory. */
static void prepare(TestDaemon *d) {
        memset(d, 0, sizeof(*d));
        make_test_dir(d->dir, sizeof(d->dir));
        snprintf(d->socket, sizeof(d->socket), "%s/evd.sock", d->dir);
        snprintf(d->log, sizeof(d->log), "%s/evd.log", d->dir);
}

static void path_in(const TestDaemon *d, const char *name, char *buf, size_t size) {
        ck_assert_int_lt(snprintf(buf, size, "%s/%s", d->dir, name), (int)size);
}

/* In the child: @fd becomes @target, without FD_CLOEXEC. */
static void move_fd(int fd, int target) {
        if (fd == target) {
                if (fcntl(fd, F_SETFD, 0) < 0)
                        _exit(126);
        } else if (dup2(fd, target) < 0)
                _exit(126);
}

/* In the child: stderr to the log, nothing inherited from a service manager. */
static void child_setup(const TestDaemon *d, pid_t parent) {
        int log = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        test_die_with_parent(parent);
        if (log < 0 || dup2(log, STDERR_FILENO) < 0)
                _exit(126);
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        unsetenv("INVOCATION_ID");
        unsetenv("JOURNAL_STREAM");
}

typedef enum ListenPid {
        LISTEN_PID_SELF,   /* the daemon's own pid: fds are for it */
        LISTEN_PID_PARENT, /* the test's pid: fds are not for the daemon */
} ListenPid;

/* Start evd with @fds as fds 3, 4, ... and LISTEN_* describing them. Borrowed fds. */
static pid_t start_with_fds(TestDaemon *d, const int *fds, const char *const *names, unsigned n,
                            ListenPid lp) {
        char fallback[128];
        const char *bin = getenv("EVD_TEST_DAEMON");
        pid_t pid, parent = getpid();

        ck_assert_msg(bin && *bin, "EVD_TEST_DAEMON is not set");
        path_in(d, "fallback.sock", fallback, sizeof(fallback));
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char buf[256] = "", num[32];
                int tmp[8];

                child_setup(d, parent);
                /* Out of the way first, so that moving one cannot clobber another. */
                for (unsigned i = 0; i < n; i++)
                        if ((tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 64)) < 0)
                                _exit(126);
                for (unsigned i = 0; i < n; i++) {
                        move_fd(tmp[i], 3 + (int)i);
                        strcat(buf, i ? ":" : "");
                        strcat(buf, names[i]);
                }
                snprintf(num, sizeof(num), "%u", n);
                setenv("LISTEN_FDS", num, 1);
                setenv("LISTEN_FDNAMES", buf, 1);
                snprintf(num, sizeof(num), "%d",
                         lp == LISTEN_PID_SELF ? (int)getpid() : (int)parent);
                setenv("LISTEN_PID", num, 1);
                execl(bin, bin, "--socket", fallback, "--log-level", "debug", (char *)NULL);
                _exit(127);
        }
        d->pid = pid;
        return pid;
}

static void wait_connectable(TestDaemon *d, const char *path) {
        long long deadline = now_ms() + TEST_TIMEOUT_MS;
        TestClient probe;
        int status;

        while (test_client_connect(&probe, path) < 0) {
                ck_assert_msg(waitpid(d->pid, &status, WNOHANG) == 0, "evd exited (see %s)",
                              d->log);
                ck_assert_msg(now_ms() < deadline, "%s does not accept connections", path);
                (void)poll(NULL, 0, 10);
        }
        test_client_close(&probe);
}

/* The status method names the daemon's pid: the process that got the fds serves them. */
static void check_serves(const char *path, pid_t expected_pid) {
        TestClient c;
        json_t *r, *n;
        int p[2];

        ck_assert_int_eq(test_client_connect(&c, path), 0);
        r = test_client_result(&c, "status", NULL, NULL, 0);
        ck_assert_int_eq(json_integer_value(json_object_get(r, "pid")), expected_pid);
        json_decref(r);

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        r = test_client_result(
                &c, "watch",
                json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "oneshot"), &p[0], 1);
        json_decref(r);
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        n = test_client_notification(&c, "ready", TEST_TIMEOUT_MS);
        ck_assert_msg(n, "no `ready` notification through the activated socket");
        json_decref(n);
        close(p[0]);
        close(p[1]);
        test_client_close(&c);
}

static bool exists(const char *path) {
        struct stat st;

        return lstat(path, &st) == 0;
}

static int wait_exit(pid_t pid, int timeout_ms) {
        int status = test_wait_pid(pid, timeout_ms);

        ck_assert_msg(status >= 0, "evd did not exit");
        return status;
}

START_TEST(test_systemd_socket_activate) {
        const char *activate = getenv("EVD_TEST_SOCKET_ACTIVATE");
        const char *bin = getenv("EVD_TEST_DAEMON");
        char listen_arg[160], fallback[128];
        TestDaemon d;
        pid_t pid, parent = getpid();

        if (!activate || !*activate) {
                printf("systemd-socket-activate not found: skipping this test\n");
                return;
        }
        prepare(&d);
        path_in(&d, "fallback.sock", fallback, sizeof(fallback));
        snprintf(listen_arg, sizeof(listen_arg), "--listen=%s", d.socket);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                child_setup(&d, parent);
                /* It passes on only the environment it is told to: the sanitizers' too. */
                execl(activate, activate, "--seqpacket", listen_arg, "--fdname=evd", "-E",
                      "ASAN_OPTIONS", "-E", "UBSAN_OPTIONS", bin, "--socket", fallback,
                      "--log-level", "debug", (char *)NULL);
                _exit(127);
        }
        d.pid = pid;

        /* It binds at once and execs evd (same pid) at the first connection: the probe. */
        wait_connectable(&d, d.socket);
        check_serves(d.socket, pid);
        ck_assert_msg(test_daemon_log_contains(&d, "evd listening on "), "no start-up message");
        ck_assert_msg(test_daemon_log_contains(&d, d.socket),
                      "evd did not log the activated socket's path");
        ck_assert_msg(!exists(fallback), "evd bound --socket although it was socket-activated");

        /* The activator owns the path: evd must leave it in place when it exits. */
        ck_assert_int_eq(kill(pid, SIGTERM), 0);
        ck_assert_int_eq(wait_exit(pid, 10000), 0);
        d.pid = 0;
        ck_assert_msg(exists(d.socket), "evd removed a socket file it did not create");
        test_daemon_stop(&d);
}
END_TEST

START_TEST(test_listen_fds) {
        static const char *const names[] = {"evd"};
        char fallback[128];
        TestDaemon d;
        int lfd;
        pid_t pid;

        prepare(&d);
        path_in(&d, "fallback.sock", fallback, sizeof(fallback));
        lfd = unix_listener(d.socket, SOCK_SEQPACKET);
        pid = start_with_fds(&d, &lfd, names, 1, LISTEN_PID_SELF);
        close(lfd); /* the daemon holds the only listener now */
        wait_connectable(&d, d.socket);
        check_serves(d.socket, pid);
        ck_assert_msg(!exists(fallback), "evd bound --socket although it was socket-activated");
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* fd 3 is a stream listener (not evd's), fd 4 the SEQPACKET one: evd takes fd 4 and
 * closes fd 3, saying so. */
START_TEST(test_listen_fds_extra) {
        static const char *const names[] = {"other", "evd"};
        char other_path[128], fallback[128];
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        TestDaemon d;
        int fds[2], probe;
        pid_t pid;

        prepare(&d);
        path_in(&d, "other.sock", other_path, sizeof(other_path));
        path_in(&d, "fallback.sock", fallback, sizeof(fallback));
        fds[0] = unix_listener(other_path, SOCK_STREAM);
        fds[1] = unix_listener(d.socket, SOCK_SEQPACKET);
        pid = start_with_fds(&d, fds, names, 2, LISTEN_PID_SELF);
        close(fds[0]);
        close(fds[1]);
        wait_connectable(&d, d.socket);
        check_serves(d.socket, pid);
        ck_assert_msg(test_daemon_log_contains(&d, "Closing activated fd 3 (other)"),
                      "fd 3 was not refused");
        /* Nobody holds the stream listener any more. */
        strcpy(sa.sun_path, other_path);
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(probe, 0);
        ck_assert_int_lt(connect(probe, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(errno, ECONNREFUSED);
        close(probe);
        ck_assert_msg(!exists(fallback), "evd bound --socket although it was socket-activated");
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* LISTEN_PID names another process: the fds are not evd's, it binds --socket itself. */
START_TEST(test_listen_pid_mismatch) {
        static const char *const names[] = {"evd"};
        char fallback[128];
        TestDaemon d;
        int lfd;
        pid_t pid;

        prepare(&d);
        path_in(&d, "fallback.sock", fallback, sizeof(fallback));
        lfd = unix_listener(d.socket, SOCK_SEQPACKET);
        pid = start_with_fds(&d, &lfd, names, 1, LISTEN_PID_PARENT);
        close(lfd);
        wait_connectable(&d, fallback);
        check_serves(fallback, pid);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* Activation with nothing usable is an error, not a silent fallback to --socket. */
START_TEST(test_listen_fds_wrong_type) {
        static const char *const names[] = {"evd"};
        char fallback[128];
        TestDaemon d;
        int lfd;
        pid_t pid;

        prepare(&d);
        path_in(&d, "fallback.sock", fallback, sizeof(fallback));
        lfd = unix_listener(d.socket, SOCK_STREAM);
        pid = start_with_fds(&d, &lfd, names, 1, LISTEN_PID_SELF);
        close(lfd);
        ck_assert_int_eq(wait_exit(pid, 10000), 1);
        d.pid = 0;
        ck_assert_msg(test_daemon_log_contains(&d, "not an AF_UNIX SOCK_SEQPACKET listener"),
                      "no reason logged");
        ck_assert_msg(!exists(fallback), "evd fell back to --socket");
        test_daemon_stop(&d);
}
END_TEST

static Suite *activation_suite(void) {
        Suite *s = suite_create("systemd-activation");
        TCase *tc;

        tc = test_tcase(s, "systemd-socket-activate", 30);
        tcase_add_test(tc, test_systemd_socket_activate);

        tc = test_tcase(s, "listen-fds", 30);
        tcase_add_test(tc, test_listen_fds);
        tcase_add_test(tc, test_listen_fds_extra);
        tcase_add_test(tc, test_listen_pid_mismatch);
        tcase_add_test(tc, test_listen_fds_wrong_type);
        return s;
}

int main(void) {
        return test_run_suite_in_dir(activation_suite(), run_dir, sizeof(run_dir), "evd-sd-act");
}
