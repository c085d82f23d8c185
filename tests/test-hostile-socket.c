/* test-hostile-socket.c - who may connect: socket and directory modes, socket path rules
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

/* ---- who may do what ---------------------------------------------------------------- */

/* Start the daemon on @sock as @uid (0: as is) under umask @mask, its stderr into @log;
 * without test_daemon_start()'s probe, so that refusals to start can be seen. */
static pid_t spawn_daemon(const char *sock, uid_t uid, mode_t mask, const char *log) {
        const char *bin = getenv("EVD_TEST_DAEMON"), *backend = getenv("EVD_TEST_BACKEND");
        pid_t parent = getpid(), pid;

        ck_assert_msg(bin && *bin, "EVD_TEST_DAEMON is not set");
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127);
                if (fd >= 0)
                        (void)dup2(fd, STDERR_FILENO);
                (void)umask(mask);
                unsetenv("NOTIFY_SOCKET");
                unsetenv("LISTEN_FDS");
                unsetenv("LISTEN_PID");
                if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0))
                        _exit(126);
                if (backend && *backend)
                        execl(bin, bin, "--socket", sock, "--log-level", "debug", "--backend",
                              backend, (char *)NULL);
                else
                        execl(bin, bin, "--socket", sock, "--log-level", "debug", (char *)NULL);
                _exit(127);
        }
        return pid;
}

/* Wait until @sock accepts a connection (true), or the daemon exits (false). */
static bool wait_listening(const char *sock, pid_t pid) {
        long long deadline = ms_now() + TIMEOUT;

        while (ms_now() < deadline) {
                TestClient probe;
                int status;

                if (test_client_connect(&probe, sock) == 0) {
                        test_client_close(&probe);
                        return true;
                }
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return false;
                (void)poll(NULL, 0, 5);
        }
        ck_abort_msg("evd neither listened on %s nor exited within %d ms", sock, TIMEOUT);
        return false;
}

static void stop_spawned(pid_t pid) {
        ck_assert_int_eq(kill(pid, SIGTERM), 0);
        ck_assert_int_eq(test_wait_pid(pid, 10000), 0);
}

static bool file_contains(const char *path, const char *needle) {
        char buf[8192];
        ssize_t n;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n < 0)
                return false;
        buf[n] = 0;
        return strstr(buf, needle) != NULL;
}

static void make_tmpdir(char *dir, size_t size) {
        test_mkdtemp(dir, size, "evd-hostile");
}

static void connect_ping_as(const char *sock, uid_t uid) {
        TestClient c;

        ck_assert_int_eq(test_client_connect_as(&c, sock, uid, uid), 0);
        ping(&c);
        test_client_close(&c);
}

/* The documented modes: the system instance (root) makes its directory 0755 and its socket
 * 0666, reachable by any user; a user instance makes 0700 and 0600, reachable by no one
 * else. Checked with stat(), and by connecting as other users. */
START_TEST(test_socket_modes) {
        char dir[64], sock[192], log[192], nbdir[128];
        struct stat st;
        pid_t pid;
        TestClient c;

        make_tmpdir(dir, sizeof(dir));
        ck_assert_int_eq(chmod(dir, 0755), 0);
        snprintf(log, sizeof(log), "%s/root.log", dir);
        snprintf(sock, sizeof(sock), "%s/run-root/evd.sock", dir);
        pid = spawn_daemon(sock, 0, 022, log);
        ck_assert_msg(wait_listening(sock, pid), "the root instance did not start (see %s)", log);
        ck_assert_int_eq(stat(sock, &st), 0);
        ck_assert_msg(S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0666 && st.st_uid == 0,
                      "root's socket is %o uid %u, expected socket 0666 uid 0",
                      (unsigned)st.st_mode, (unsigned)st.st_uid);
        snprintf(nbdir, sizeof(nbdir), "%s/run-root", dir);
        ck_assert_int_eq(lstat(nbdir, &st), 0);
        ck_assert_msg(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755 && st.st_uid == 0,
                      "root's socket directory is %o uid %u, expected 0755 uid 0",
                      (unsigned)st.st_mode, (unsigned)st.st_uid);
        connect_ping_as(sock, NOBODY);
        stop_spawned(pid);

        /* A user instance, as nobody, in a directory nobody may create things in. */
        snprintf(nbdir, sizeof(nbdir), "%s/nobody", dir);
        ck_assert_int_eq(mkdir(nbdir, 0755), 0);
        ck_assert_int_eq(chown(nbdir, NOBODY, NOBODY), 0);
        snprintf(sock, sizeof(sock), "%s/run/evd.sock", nbdir);
        snprintf(log, sizeof(log), "%s/nobody.log", dir);
        pid = spawn_daemon(sock, NOBODY, 022, log);
        ck_assert_msg(wait_listening(sock, pid), "the user instance did not start (see %s)", log);
        ck_assert_int_eq(stat(sock, &st), 0);
        ck_assert_msg(S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0600 && st.st_uid == NOBODY,
                      "the user socket is %o uid %u, expected socket 0600 uid %u",
                      (unsigned)st.st_mode, (unsigned)st.st_uid, NOBODY);
        snprintf(nbdir, sizeof(nbdir), "%s/nobody/run", dir);
        ck_assert_int_eq(lstat(nbdir, &st), 0);
        ck_assert_msg(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700 && st.st_uid == NOBODY,
                      "the user socket directory is %o, expected 0700", (unsigned)st.st_mode);
        connect_ping_as(sock, NOBODY);
        ck_assert_int_eq(test_client_connect_as(&c, sock, NOBODY - 1, NOBODY - 1), -EACCES);
        stop_spawned(pid);
        test_remove_tree(dir);
}
END_TEST

/* The directory mode must not depend on the umask the daemon inherits: started by root with
 * umask 077 (a common hardened default), the socket directory it creates must still be the
 * documented 0755, or no other user can reach the 0666 socket inside. */
START_TEST(test_socket_dir_mode_ignores_umask) {
        char dir[64], sock[192], log[192], sub[128];
        struct stat st;
        TestClient c;
        pid_t pid;
        int r;

        make_tmpdir(dir, sizeof(dir));
        ck_assert_int_eq(chmod(dir, 0755), 0);
        snprintf(log, sizeof(log), "%s/evd.log", dir);
        snprintf(sock, sizeof(sock), "%s/run/evd.sock", dir);
        snprintf(sub, sizeof(sub), "%s/run", dir);
        pid = spawn_daemon(sock, 0, 077, log);
        ck_assert_msg(wait_listening(sock, pid), "evd did not start (see %s)", log);
        ck_assert_int_eq(stat(sock, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0666);
        ck_assert_int_eq(lstat(sub, &st), 0);
        r = test_client_connect_as(&c, sock, NOBODY, NOBODY);
        if (r == 0)
                test_client_close(&c);
        stop_spawned(pid);
        test_remove_tree(dir);
        ck_assert_msg((st.st_mode & 07777) == 0755,
                      "under umask 077 the socket directory is %o, not the documented 0755: "
                      "other users cannot connect (%s)",
                      (unsigned)(st.st_mode & 07777), strerror(-r));
}
END_TEST

/* A daemon started on @sock must refuse to start (exit non-zero, quickly) and log @why. */
static void expect_refusal(const char *dir, const char *sock, const char *why) {
        char log[192];
        pid_t pid;
        int status;

        snprintf(log, sizeof(log), "%s/refusal.log", dir);
        pid = spawn_daemon(sock, 0, 022, log);
        status = test_wait_pid(pid, TIMEOUT);
        if (status < 0) {
                (void)kill(pid, SIGKILL);
                (void)test_wait_pid(pid, TIMEOUT);
        }
        ck_assert_msg(status > 0, "evd started on %s (status %d), expected a refusal", sock,
                      status);
        ck_assert_msg(file_contains(log, why), "no \"%s\" in the log for %s", why, sock);
}

static void write_file(const char *path, const char *text, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        struct timespec old[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        ck_assert_int_eq(futimens(fd, old), 0);
        close(fd);
}

/* @path is still a regular file with @text, @mode and the old mtime: untouched. */
static void expect_untouched(const char *path, const char *text, mode_t mode) {
        struct stat st;

        ck_assert_int_eq(lstat(path, &st), 0);
        ck_assert_msg(S_ISREG(st.st_mode) && (st.st_mode & 07777) == mode &&
                              st.st_size == (off_t)strlen(text) && st.st_mtime == 1000000000,
                      "%s was touched", path);
        ck_assert(file_contains(path, text));
}

static void expect_symlink(const char *link, const char *target) {
        char buf[256];
        ssize_t n = readlink(link, buf, sizeof(buf) - 1);

        ck_assert_msg(n > 0, "the symlink %s is gone", link);
        buf[n] = 0;
        ck_assert_str_eq(buf, target);
}

/*
 * The socket path is never followed: a symlink planted there (to an existing file, to
 * nothing, to another directory), or a socket directory that is a symlink, makes the daemon
 * refuse to start, and neither the symlink nor its target is created, changed or removed.
 * A regular file, a directory or a FIFO at the path: refused, left alone. A socket directory
 * writable by others (without the sticky bit) or owned by another user: refused. A stale
 * socket (nothing listening): replaced. A live one (another daemon): refused, and the live
 * daemon keeps serving on it.
 */
START_TEST(test_socket_path_rules) {
        char dir[64], path[192], target[192], other[192], log[192];
        struct stat st, st2;
        pid_t pid, pid2;
        int fd;

        make_tmpdir(dir, sizeof(dir));

        /* A symlink to an existing file. */
        snprintf(target, sizeof(target), "%s/victim", dir);
        write_file(target, "victim\n", 0600);
        snprintf(path, sizeof(path), "%s/a.sock", dir);
        ck_assert_int_eq(symlink(target, path), 0);
        expect_refusal(dir, path, "is a symlink");
        expect_symlink(path, target);
        expect_untouched(target, "victim\n", 0600);

        /* Dangling symlinks: to a missing file, and into a missing directory. */
        snprintf(path, sizeof(path), "%s/b.sock", dir);
        snprintf(target, sizeof(target), "%s/absent.sock", dir);
        ck_assert_int_eq(symlink(target, path), 0);
        expect_refusal(dir, path, "is a symlink");
        expect_symlink(path, target);
        ck_assert_int_eq(lstat(target, &st), -1);
        snprintf(path, sizeof(path), "%s/c.sock", dir);
        snprintf(target, sizeof(target), "%s/nowhere/evd.sock", dir);
        ck_assert_int_eq(symlink(target, path), 0);
        expect_refusal(dir, path, "is a symlink");
        snprintf(other, sizeof(other), "%s/nowhere", dir);
        ck_assert_int_eq(lstat(other, &st), -1);

        /* The socket's directory is a symlink to a real one. */
        snprintf(other, sizeof(other), "%s/realdir", dir);
        ck_assert_int_eq(mkdir(other, 0755), 0);
        snprintf(target, sizeof(target), "%s/linkdir", dir);
        ck_assert_int_eq(symlink(other, target), 0);
        snprintf(path, sizeof(path), "%s/linkdir/evd.sock", dir);
        expect_refusal(dir, path, "is not a directory");
        snprintf(path, sizeof(path), "%s/realdir/evd.sock", dir);
        ck_assert_int_eq(lstat(path, &st), -1);

        /* Not a socket: a file, a directory, a FIFO. */
        snprintf(path, sizeof(path), "%s/file.sock", dir);
        write_file(path, "data\n", 0644);
        expect_refusal(dir, path, "not a socket");
        expect_untouched(path, "data\n", 0644);
        snprintf(path, sizeof(path), "%s/dir.sock", dir);
        ck_assert_int_eq(mkdir(path, 0700), 0);
        expect_refusal(dir, path, "not a socket");
        ck_assert(lstat(path, &st) == 0 && S_ISDIR(st.st_mode));
        snprintf(path, sizeof(path), "%s/fifo.sock", dir);
        ck_assert_int_eq(mkfifo(path, 0600), 0);
        expect_refusal(dir, path, "not a socket");
        ck_assert(lstat(path, &st) == 0 && S_ISFIFO(st.st_mode));

        /* Socket directories others could write into, or that belong to someone else. */
        snprintf(other, sizeof(other), "%s/open", dir);
        ck_assert_int_eq(mkdir(other, 0777), 0);
        ck_assert_int_eq(chmod(other, 0777), 0);
        snprintf(path, sizeof(path), "%s/open/evd.sock", dir);
        expect_refusal(dir, path, "writable by others");
        ck_assert_int_eq(lstat(path, &st), -1);
        snprintf(other, sizeof(other), "%s/theirs", dir);
        ck_assert_int_eq(mkdir(other, 0755), 0);
        ck_assert_int_eq(chown(other, NOBODY, NOBODY), 0);
        snprintf(path, sizeof(path), "%s/theirs/evd.sock", dir);
        expect_refusal(dir, path, "belongs to uid");
        ck_assert_int_eq(lstat(path, &st), -1);
        /* With the sticky bit (like /tmp) others cannot replace our entries: accepted. */
        snprintf(other, sizeof(other), "%s/sticky", dir);
        ck_assert_int_eq(mkdir(other, 0777), 0);
        ck_assert_int_eq(chmod(other, 01777), 0);
        snprintf(path, sizeof(path), "%s/sticky/evd.sock", dir);
        snprintf(log, sizeof(log), "%s/sticky.log", dir);
        pid = spawn_daemon(path, 0, 022, log);
        ck_assert_msg(wait_listening(path, pid), "evd refused a sticky directory (see %s)", log);
        stop_spawned(pid);

        /* A stale socket: bound, nobody listening. Replaced, and then served. */
        snprintf(path, sizeof(path), "%s/stale.sock", dir);
        {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };

                fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                ck_assert_int_ge(fd, 0);
                strcpy(sa.sun_path, path);
                ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
                close(fd);
        }
        ck_assert_int_eq(lstat(path, &st), 0);
        snprintf(log, sizeof(log), "%s/stale.log", dir);
        pid = spawn_daemon(path, 0, 022, log);
        ck_assert_msg(wait_listening(path, pid), "evd did not replace a stale socket (see %s)",
                      log);
        ck_assert(file_contains(log, "Replaced stale socket"));
        ck_assert_int_eq(lstat(path, &st2), 0);
        ck_assert(S_ISSOCK(st2.st_mode));

        /* A live one: a second daemon on the same path is refused; the first keeps it. */
        snprintf(log, sizeof(log), "%s/second.log", dir);
        pid2 = spawn_daemon(path, 0, 022, log);
        ck_assert_msg(test_wait_pid(pid2, TIMEOUT) > 0, "a second daemon started on a live socket");
        ck_assert(file_contains(log, "Another evd is already listening"));
        ck_assert_int_eq(lstat(path, &st), 0);
        ck_assert_msg(st.st_ino == st2.st_ino, "the second daemon replaced the live socket");
        connect_ping_as(path, 0);
        stop_spawned(pid);
        test_remove_tree(dir);
}
END_TEST

/* The pid that answers `status` on @sock; 0 while nothing does (refused, or accepted by a
 * dying listener and reset). */
static json_int_t status_pid(const char *sock) {
        static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}";
        json_int_t pid = 0;
        TestClient c;
        json_t *r;

        if (test_client_connect(&c, sock) < 0)
                return 0;
        if (test_client_sendmsg(&c, req, sizeof(req) - 1, NULL, 0) >= 0 && (r = test_client_reply(&c, TIMEOUT))) {
                pid = int_member(member(r, "result"), "pid");
                json_decref(r);
        }
        test_client_close(&c);
        return pid;
}

/* Whether daemon @pid comes to answer on @sock (false: it exited first). */
static bool wait_served_by(const char *sock, pid_t pid) {
        long long deadline = ms_now() + TIMEOUT;
        int status;

        while (ms_now() < deadline) {
                if (status_pid(sock) == pid)
                        return true;
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return false;
                (void)poll(NULL, 0, 5);
        }
        ck_abort_msg("evd %d did not answer on %s within %d ms", (int)pid, sock, TIMEOUT);
        return false;
}

/* Restarting right after a SIGKILL: a killed io_uring daemon's listener lingers for about
 * 100 ms (its armed poll holds the file until the ring's teardown), accepting connections
 * it will only reset; the next daemon took it for a live one and refused to start (5 of 5
 * by hand). It must probe, see the reset, and take the socket over. Several rounds, since
 * the window is short. */
START_TEST(test_socket_of_killed_daemon_is_replaced) {
        char dir[64], path[192], log[192];
        pid_t pid, next;
        int round;

        make_tmpdir(dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/evd.sock", dir);
        snprintf(log, sizeof(log), "%s/first.log", dir);
        pid = spawn_daemon(path, 0, 022, log);
        ck_assert_msg(wait_listening(path, pid), "evd did not start (see %s)", log);
        for (round = 0; round < 5; round++) {
                connect_ping_as(path, 0);
                ck_assert_int_eq(kill(pid, SIGKILL), 0);
                ck_assert_int_eq(test_wait_pid(pid, 10000), 128 + SIGKILL);
                snprintf(log, sizeof(log), "%s/round%d.log", dir, round);
                next = spawn_daemon(path, 0, 022, log);
                /* Served by the new daemon: a connection alone may reach the lingering listener. */
                ck_assert_msg(wait_served_by(path, next), "round %d: evd refused the socket of a killed daemon (see %s)",
                              round, log);
                pid = next;
        }
        stop_spawned(pid);
        test_remove_tree(dir);
}
END_TEST

/* Something that accepts but never answers (a stuck daemon, another program) is not
 * replaced: the daemon gives it the probe's wait, then refuses, saying so. */
START_TEST(test_silent_listener_is_not_replaced) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[64], log[192];
        struct stat st, st2;
        pid_t pid;
        int fd;

        make_tmpdir(dir, sizeof(dir));
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/evd.sock", dir);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(listen(fd, 8), 0);
        ck_assert_int_eq(lstat(sa.sun_path, &st), 0);
        snprintf(log, sizeof(log), "%s/evd.log", dir);
        pid = spawn_daemon(sa.sun_path, 0, 022, log);
        ck_assert_msg(test_wait_pid(pid, TIMEOUT) > 0, "evd started on a socket another program listens on");
        ck_assert(file_contains(log, "did not answer within"));
        ck_assert_int_eq(lstat(sa.sun_path, &st2), 0);
        ck_assert_msg(st.st_ino == st2.st_ino, "evd replaced a socket someone listens on");
        close(fd);
        test_remove_tree(dir);
}
END_TEST

/* ---- tests --------------------------------------------------------------------------- */

void hostile_socket_tests(TCase *tc) {
        tcase_add_test(tc, test_socket_modes);
        tcase_add_test(tc, test_socket_dir_mode_ignores_umask);
        tcase_add_test(tc, test_socket_path_rules);
        tcase_add_test(tc, test_socket_of_killed_daemon_is_replaced);
        tcase_add_test(tc, test_silent_listener_is_not_replaced);
}
