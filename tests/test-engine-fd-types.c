/* test-engine-fd-types.c - fd types (pipes, sockets, eventfd, pidfd, signalfd, timerfd, pty) and
 * event kinds (PRI, HUP, ERR, RDHUP)
 *
 * Part of the engine suite: test-engine.c runs it once per backend (see there for how tests
 * wait without sleeping and free what they make); helpers in util-engine.h and util-fd.h.
 */

#include "engine.h"
#include "macro.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "test-engine.h"
#include "util-check.h"
#include "util-engine.h"
#include "util-fd.h"
#include "util-json.h"

/* ---- fd types ---- */

START_TEST(test_fd_pipe) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec r = { 0 }, w = { 0 };

        make_pipe(p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &r);
        add_io(e, p[1], ENGINE_OUT, ENGINE_EDGE, &w);

        STEP_UNTIL(e, w.calls >= 1);
        ck_assert_uint_eq(w.calls, 1);
        ck_assert_uint_eq(w.revents, ENGINE_OUT);
        ck_assert_int_eq(w.fd, p[1]);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 0);

        write_byte(p[1]);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert_uint_eq(r.revents, ENGINE_IN);
        ck_assert_int_eq(r.fd, p[0]);
}
END_TEST

/* _i: 0 stream, 1 seqpacket */
START_TEST(test_fd_socketpair) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec a = { 0 }, b = { 0 };
        char buf[8];

        make_socketpair(_i == 0 ? SOCK_STREAM : SOCK_SEQPACKET, p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &a);
        add_io(e, p[1], ENGINE_IN, ENGINE_EDGE, &b);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(a.calls + b.calls, 0);

        ck_assert_int_eq(send(p[0], "ab", 2, 0), 2);
        STEP_UNTIL(e, b.calls >= 1);
        ck_assert_uint_eq(b.calls, 1);
        ck_assert_uint_eq(b.revents, ENGINE_IN);
        ck_assert_int_eq(recv(p[1], buf, sizeof(buf), 0), 2);

        ck_assert_int_eq(send(p[1], "c", 1, 0), 1);
        STEP_UNTIL(e, a.calls >= 1);
        ck_assert_uint_eq(a.calls, 1);
        ck_assert_uint_eq(a.revents, ENGINE_IN);
        ck_assert_uint_eq(b.calls, 1);
}
END_TEST

START_TEST(test_fd_eventfd) {
        _cleanup_close_ int fd = make_eventfd();
        IoRec r = { 0 };
        uint64_t v;

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        add_io(e, fd, ENGINE_IN, ENGINE_EDGE, &r);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 0);
        poke_eventfd(fd);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert_uint_eq(r.revents, ENGINE_IN);
        ck_assert_int_eq(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v));
        ck_assert_uint_eq(v, 1);
}
END_TEST

START_TEST(test_fd_pidfd) {
        _cleanup_pair_ int sync[2] = PAIR_NULL;
        _cleanup_close_ int pidfd = -1;
        IoRec r = { 0 };
        int status;
        pid_t pid;

        /* Blocking: the child waits in read() until we close our end. */
        ck_assert_int_eq(pipe2(sync, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char c;

                (void)close(sync[1]);
                (void)!read(sync[0], &c, 1);
                _exit(0);
        }
        sync[0] = safe_close(sync[0]);
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0 && errno == ENOSYS && getenv("EVD_UNDER_VALGRIND")) {
                /* valgrind 3.19 does not know pidfd_open (434); the other runs cover it. */
                printf("pidfd_open unsupported under valgrind: pidfd case not run\n");
                sync[1] = safe_close(sync[1]);
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                return;
        }
        ck_assert_int_ge(pidfd, 0);

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        add_io(e, pidfd, ENGINE_IN, ENGINE_EDGE, &r);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 0);

        sync[1] = safe_close(sync[1]);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert(r.revents & ENGINE_IN);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
}
END_TEST

START_TEST(test_fd_signalfd) {
        struct signalfd_siginfo si;
        sigset_t mask, old;
        IoRec r = { 0 };

        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR2);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &mask, &old), 0);
        _cleanup_close_ int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        ck_assert_int_ge(fd, 0);

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        add_io(e, fd, ENGINE_IN, ENGINE_EDGE, &r);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 0);
        ck_assert_int_eq(raise(SIGUSR2), 0);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert_uint_eq(r.revents, ENGINE_IN);
        ck_assert_int_eq(read(fd, &si, sizeof(si)), (ssize_t)sizeof(si));
        ck_assert_uint_eq(si.ssi_signo, SIGUSR2);
        /* Consumed, so unblocking cannot kill us. */
        ck_assert_int_eq(sigprocmask(SIG_SETMASK, &old, NULL), 0);
}
END_TEST

START_TEST(test_fd_timerfd) {
        struct itimerspec its = { .it_value.tv_nsec = (long)MSEC(5) };
        _cleanup_close_ int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        IoRec r = { 0 };
        uint64_t v = 0;

        ck_assert_int_ge(fd, 0);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        add_io(e, fd, ENGINE_IN, ENGINE_EDGE, &r);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 0);
        ck_assert_int_eq(timerfd_settime(fd, 0, &its, NULL), 0);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert_uint_eq(r.revents, ENGINE_IN);
        ck_assert_int_eq(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v));
        ck_assert_uint_ge(v, 1);
}
END_TEST

START_TEST(test_fd_pty) {
        _cleanup_close_ int master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        _cleanup_close_ int slave = -1;
        struct termios t;
        char name[64], buf[16];
        IoRec r = { 0 };

        ck_assert_int_ge(master, 0);
        ck_assert_int_eq(grantpt(master), 0);
        ck_assert_int_eq(unlockpt(master), 0);
        ck_assert_int_eq(ptsname_r(master, name, sizeof(name)), 0);
        slave = open(name, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        ck_assert_int_ge(slave, 0);
        /* Raw: no echo, no line discipline editing, bytes pass as written. */
        ck_assert_int_eq(tcgetattr(slave, &t), 0);
        cfmakeraw(&t);
        ck_assert_int_eq(tcsetattr(slave, TCSANOW, &t), 0);

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        add_io(e, master, ENGINE_IN, ENGINE_EDGE, &r);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls, 0);

        ck_assert_int_eq(write(slave, "ping", 4), 4);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert(r.all & ENGINE_IN);
        ck_assert_int_eq(read(master, buf, sizeof(buf)), 4);
        ck_assert(memcmp(buf, "ping", 4) == 0);

        r.all = 0;
        slave = safe_close(slave);
        STEP_UNTIL(e, r.all & ENGINE_HUP);
}
END_TEST

/* ---- event kinds ---- */

START_TEST(test_events_pri) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec r = { 0 };
        char c;

        tcp_pair(p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        add_io(e, p[1], ENGINE_PRI, ENGINE_EDGE, &r);
        ck_assert_int_eq(send(p[0], "a", 1, 0), 1);
        step_for(e, MSEC(30));
        /* In-band data is not PRI. */
        ck_assert_uint_eq(r.calls, 0);

        ck_assert_int_eq(send(p[0], "!", 1, MSG_OOB), 1);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert_uint_eq(r.revents, ENGINE_PRI);
        ck_assert_int_eq(recv(p[1], &c, 1, MSG_OOB), 1);
        ck_assert_int_eq(c, '!');
}
END_TEST

START_TEST(test_events_hup) {
        _cleanup_pair_ int p[2] = PAIR_NULL, q[2] = PAIR_NULL;
        IoRec r = { 0 }, pri = { 0 };

        make_pipe(p);
        make_pipe(q);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &r);
        /* Asks for nothing a pipe can do: HUP must come anyway. */
        add_io(e, q[0], ENGINE_PRI, ENGINE_EDGE, &pri);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls + pri.calls, 0);

        p[1] = safe_close(p[1]);
        q[1] = safe_close(q[1]);
        STEP_UNTIL(e, r.calls >= 1 && pri.calls >= 1);
        ck_assert(r.all & ENGINE_HUP);
        ck_assert_uint_eq(pri.all, ENGINE_HUP);
}
END_TEST

START_TEST(test_events_err) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        IoRec w = { 0 };

        make_pipe(p);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        /* The write end is writable all along, but OUT was not asked for. */
        add_io(e, p[1], ENGINE_IN, ENGINE_EDGE, &w);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(w.calls, 0);

        p[0] = safe_close(p[0]);
        STEP_UNTIL(e, w.calls >= 1);
        ck_assert(w.all & ENGINE_ERR);
        ck_assert_uint_eq(w.all & ~(uint32_t)(ENGINE_ERR | ENGINE_HUP), 0);
}
END_TEST

START_TEST(test_events_rdhup) {
        _cleanup_pair_ int p[2] = PAIR_NULL, q[2] = PAIR_NULL;
        IoRec r = { 0 }, plain = { 0 };

        make_socketpair(SOCK_STREAM, p);
        make_socketpair(SOCK_STREAM, q);
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        add_io(e, p[0], ENGINE_IN | ENGINE_RDHUP, ENGINE_EDGE, &r);
        add_io(e, q[0], ENGINE_IN, ENGINE_EDGE, &plain);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r.calls + plain.calls, 0);

        ck_assert_int_eq(shutdown(p[1], SHUT_WR), 0);
        ck_assert_int_eq(shutdown(q[1], SHUT_WR), 0);
        STEP_UNTIL(e, r.calls >= 1 && plain.calls >= 1);
        ck_assert(r.all & ENGINE_RDHUP);
        ck_assert(r.all & ENGINE_IN);
        /* Not requested: io_rec_cb() already fails on RDHUP here; EOF is readable. */
        ck_assert(plain.all & ENGINE_IN);
}
END_TEST

/* ---- tcases --------------------------------------------------------------------------- */

void engine_fd_types_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "fd-types", 30);
        tcase_add_test(tc, test_fd_pipe);
        tcase_add_loop_test(tc, test_fd_socketpair, 0, 2);
        tcase_add_test(tc, test_fd_eventfd);
        tcase_add_test(tc, test_fd_pidfd);
        tcase_add_test(tc, test_fd_signalfd);
        tcase_add_test(tc, test_fd_timerfd);
        tcase_add_test(tc, test_fd_pty);

        tc = test_tcase(s, "events", 30);
        tcase_add_test(tc, test_events_pri);
        tcase_add_test(tc, test_events_hup);
        tcase_add_test(tc, test_events_err);
        tcase_add_test(tc, test_events_rdhup);
}
