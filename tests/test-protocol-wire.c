/* test-protocol-wire.c - wire.c: SEQPACKET framing with SCM_RIGHTS, truncation (every fd
 * that arrived closed), oversize and empty packets, EOF and half-close, EPIPE, blocking
 *
 * Fd hygiene is checked by counting /proc/self/fd: every fd the kernel installed on a
 * truncated packet must be closed before wire_recv() returns.
 *
 * Part of the protocol suite (test-protocol.c runs it); helpers in util-fd.h, util-json.h.
 */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-list.h"
#include "jsonrpc.h"
#include "macro.h"
#include "protocol.h"
#include "test-protocol.h"
#include "util-check.h"
#include "util-fd.h"
#include "util-json.h"
#include "wire.h"

/* ---- wire.c ---- */

static uint8_t rbuf[EVD_MAX_PACKET];

START_TEST(test_wire_roundtrip_no_fds) {
        FdList fds = FD_LIST_NULL;
        WirePacket p;
        int sv[2];

        seqpacket_pair(sv);
        ck_assert_int_eq(wire_send(sv[0], "hello", 5, NULL, 0), 0);
        ck_assert_int_eq(wire_send(sv[0], "bye", 3, NULL, 0), 0);

        /* Message boundaries are kept: two sends, two packets. */
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert_uint_eq(p.len, 5);
        ck_assert_mem_eq(rbuf, "hello", 5);
        ck_assert(!p.eof && !p.truncated && !p.fds_truncated);
        ck_assert_uint_eq(fds.n, 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert_uint_eq(p.len, 3);
        ck_assert_mem_eq(rbuf, "bye", 3);

        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), -EAGAIN);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

START_TEST(test_wire_roundtrip_one_fd) {
        FdList fds = FD_LIST_NULL;
        struct stat a, b;
        WirePacket p;
        int sv[2], pipefd[2], fd;
        char c = 0;

        seqpacket_pair(sv);
        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
        ck_assert_int_eq(wire_send(sv[0], "{}", 2, &pipefd[0], 1), 0);
        /* Borrowed: the sender's fd is still its own. */
        ck_assert(fd_is_open(pipefd[0]));

        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert_uint_eq(p.len, 2);
        ck_assert_uint_eq(fds.n, 1);
        ck_assert_int_eq(fd_list_take(&fds, 0, &fd), 0);
        ck_assert_int_ne(fd, pipefd[0]);
        ck_assert(fd_is_cloexec(fd));
        ck_assert_int_eq(fstat(fd, &a), 0);
        ck_assert_int_eq(fstat(pipefd[0], &b), 0);
        ck_assert_uint_eq(a.st_ino, b.st_ino);
        ck_assert_int_eq(write(pipefd[1], "z", 1), 1);
        ck_assert_int_eq(read(fd, &c, 1), 1);
        ck_assert_int_eq(c, 'z');

        fd_list_close(&fds);
        close(fd);
        close(pipefd[0]);
        close(pipefd[1]);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

START_TEST(test_wire_roundtrip_max_fds) {
        FdList fds = FD_LIST_NULL;
        int sv[2], send_fds[EVD_MAX_FDS], base;
        WirePacket p;

        seqpacket_pair(sv);
        for (unsigned i = 0; i < EVD_MAX_FDS; i++) {
                send_fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                ck_assert_int_ge(send_fds[i], 0);
        }
        base = count_fds();

        ck_assert_int_eq(wire_send(sv[0], "[1]", 3, send_fds, EVD_MAX_FDS), 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert(!p.fds_truncated && !p.truncated && !p.eof);
        ck_assert_uint_eq(fds.n, EVD_MAX_FDS);
        ck_assert_int_eq(count_fds(), base + EVD_MAX_FDS);
        for (unsigned i = 0; i < fds.n; i++)
                ck_assert(fd_is_cloexec(fds.fds[i]));
        fd_list_close(&fds);
        ck_assert_int_eq(count_fds(), base);

        for (unsigned i = 0; i < EVD_MAX_FDS; i++)
                close(send_fds[i]);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

/* More fds than EVD_MAX_FDS: the payload arrives, every fd that arrived is closed. */
static void check_too_many_fds(size_t n) {
        FdList fds = FD_LIST_NULL;
        WirePacket p;
        int sv[2], fd, base;

        seqpacket_pair(sv);
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        base = count_fds();

        ck_assert_int_eq(wire_send(sv[0], "x", 1, NULL, n), -EMSGSIZE);
        ck_assert_int_eq(raw_send(sv[0], "{\"a\":1}", 7, fd, n), 0);
        fds.n = 7; /* must be overwritten, not merged */
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert_msg(p.fds_truncated, "%zu fds not flagged", n);
        ck_assert(!p.truncated && !p.eof);
        ck_assert_uint_eq(p.len, 7);
        ck_assert_uint_eq(fds.n, 0);
        ck_assert_int_eq(count_fds(), base);

        /* The connection is still good. */
        ck_assert_int_eq(wire_send(sv[0], "ok", 2, NULL, 0), 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert_uint_eq(p.len, 2);
        ck_assert(!p.fds_truncated);

        close(fd);
        close(sv[0]);
        close(sv[1]);
}

START_TEST(test_wire_33_fds) {
        check_too_many_fds(EVD_MAX_FDS + 1);
}
END_TEST

START_TEST(test_wire_40_fds) {
        check_too_many_fds(40);
}
END_TEST

START_TEST(test_wire_250_fds) {
        check_too_many_fds(250);
}
END_TEST

START_TEST(test_wire_scm_max_fd) {
        int sv[2], fd;

        /* SCM_MAX_FD is 253: the kernel refuses more in one message with EINVAL. */
        seqpacket_pair(sv);
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(raw_send(sv[0], "x", 1, fd, 253), 0);
        ck_assert_int_eq(raw_send(sv[0], "x", 1, fd, 254), -EINVAL);
        close(fd);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

START_TEST(test_wire_oversize) {
        FdList fds = FD_LIST_NULL;
        static uint8_t big[EVD_MAX_PACKET + 1];
        WirePacket p;
        int sv[2], fd, base;

        seqpacket_pair(sv);
        memset(big, ' ', sizeof(big));
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        base = count_fds();

        ck_assert_int_eq(wire_send(sv[0], big, sizeof(big), NULL, 0), -EMSGSIZE);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), -EAGAIN);

        ck_assert_int_eq(raw_send(sv[0], big, sizeof(big), fd, 3), 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert(p.truncated);
        ck_assert(!p.eof);
        ck_assert_uint_eq(p.len, EVD_MAX_PACKET + 1);
        ck_assert_uint_eq(fds.n, 0);
        ck_assert_int_eq(count_fds(), base);

        /* Exactly EVD_MAX_PACKET fits, with fds. */
        ck_assert_int_eq(wire_send(sv[0], big, EVD_MAX_PACKET, &fd, 1), 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert(!p.truncated && !p.fds_truncated);
        ck_assert_uint_eq(p.len, EVD_MAX_PACKET);
        ck_assert_uint_eq(fds.n, 1);
        fd_list_close(&fds);

        /* A short buffer truncates too, reported with the real length. */
        ck_assert_int_eq(wire_send(sv[0], "0123456789", 10, &fd, 1), 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, 4, &fds, &p), 0);
        ck_assert(p.truncated);
        ck_assert_uint_eq(p.len, 10);
        ck_assert_uint_eq(fds.n, 0);
        ck_assert_int_eq(count_fds(), base);

        close(fd);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

START_TEST(test_wire_empty_packet_with_fds) {
        FdList fds = FD_LIST_NULL;
        WirePacket p;
        int sv[2], pipefd[2];

        seqpacket_pair(sv);
        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
        ck_assert_int_eq(wire_send(sv[0], NULL, 0, pipefd, 2), 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert_uint_eq(p.len, 0);
        ck_assert(!p.eof);
        ck_assert_uint_eq(fds.n, 2);
        fd_list_close(&fds);

        /* Even when the peer has gone right after: the fds are a packet, not EOF. */
        ck_assert_int_eq(wire_send(sv[0], NULL, 0, pipefd, 1), 0);
        close(sv[0]);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert(!p.eof);
        ck_assert_uint_eq(fds.n, 1);
        fd_list_close(&fds);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert(p.eof);

        close(pipefd[0]);
        close(pipefd[1]);
        close(sv[1]);
}
END_TEST

START_TEST(test_wire_empty_packet_alive) {
        FdList fds = FD_LIST_NULL;
        WirePacket p;
        int sv[2];

        seqpacket_pair(sv);
        ck_assert_int_eq(wire_send(sv[0], NULL, 0, NULL, 0), 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert_uint_eq(p.len, 0);
        ck_assert(!p.eof);
        ck_assert_uint_eq(fds.n, 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), -EAGAIN);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

START_TEST(test_wire_eof) {
        FdList fds = FD_LIST_NULL;
        WirePacket p;
        int sv[2];

        seqpacket_pair(sv);
        ck_assert_int_eq(wire_send(sv[0], "last", 4, NULL, 0), 0);
        close(sv[0]);
        /* Queued data is delivered before EOF. */
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert_uint_eq(p.len, 4);
        ck_assert(!p.eof);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert(p.eof);
        ck_assert_uint_eq(p.len, 0);
        ck_assert_uint_eq(fds.n, 0);
        /* EOF stays EOF. */
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert(p.eof);
        close(sv[1]);
}
END_TEST

START_TEST(test_wire_empty_then_data_then_eof) {
        FdList fds = FD_LIST_NULL;
        WirePacket p;
        int sv[2];

        /* The peer is gone but a packet with bytes is still queued: not EOF yet. */
        seqpacket_pair(sv);
        ck_assert_int_eq(wire_send(sv[0], NULL, 0, NULL, 0), 0);
        ck_assert_int_eq(wire_send(sv[0], "x", 1, NULL, 0), 0);
        close(sv[0]);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert_uint_eq(p.len, 0);
        ck_assert(!p.eof);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert_uint_eq(p.len, 1);
        ck_assert(!p.eof);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert(p.eof);
        close(sv[1]);
}
END_TEST

START_TEST(test_wire_half_close) {
        FdList fds = FD_LIST_NULL;
        WirePacket p;
        int sv[2];

        /* A client may shut down its sending side and still read replies. */
        seqpacket_pair(sv);
        ck_assert_int_eq(wire_send(sv[0], "req", 3, NULL, 0), 0);
        ck_assert_int_eq(shutdown(sv[0], SHUT_WR), 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert_uint_eq(p.len, 3);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert(p.eof);
        ck_assert_int_eq(wire_send(sv[1], "reply", 5, NULL, 0), 0);
        ck_assert_int_eq(wire_recv(sv[0], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert_uint_eq(p.len, 5);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

START_TEST(test_wire_no_fd_list) {
        WirePacket p;
        int sv[2], fd, base;

        seqpacket_pair(sv);
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        base = count_fds();
        ck_assert_int_eq(wire_send(sv[0], "x", 1, (int[]){fd, fd, fd}, 3), 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), NULL, &p), 0);
        ck_assert_uint_eq(p.len, 1);
        ck_assert(!p.fds_truncated);
        ck_assert_int_eq(count_fds(), base);
        close(fd);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

START_TEST(test_wire_passcred_ignored) {
        FdList fds = FD_LIST_NULL;
        WirePacket p;
        int sv[2], fd, one = 1, base;

        seqpacket_pair(sv);
        ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        base = count_fds();

        ck_assert_int_eq(wire_send(sv[0], "x", 1, &fd, 1), 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert(!p.fds_truncated);
        ck_assert_uint_eq(fds.n, 1);
        fd_list_close(&fds);
        ck_assert_int_eq(count_fds(), base);

        /* SCM_CREDENTIALS makes an empty packet visibly a packet. */
        ck_assert_int_eq(wire_send(sv[0], NULL, 0, NULL, 0), 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert(!p.eof);
        ck_assert_uint_eq(fds.n, 0);

        close(fd);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

START_TEST(test_wire_pidfd_not_leaked) {
        FdList fds = FD_LIST_NULL;
        WirePacket p;
        int sv[2], fd, one = 1, base;

        /* SO_PASSPIDFD (Linux 6.5) installs a pidfd with every packet; it must not leak. */
        seqpacket_pair(sv);
        if (setsockopt(sv[1], SOL_SOCKET, 76 /* SO_PASSPIDFD */, &one, sizeof(one)) < 0) {
                close(sv[0]);
                close(sv[1]);
                return;
        }
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        base = count_fds();

        ck_assert_int_eq(wire_send(sv[0], "x", 1, &fd, 1), 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert(!p.fds_truncated);
        ck_assert_uint_eq(fds.n, 1);
        ck_assert_int_eq(count_fds(), base + 1);
        fd_list_close(&fds);
        ck_assert_int_eq(count_fds(), base);

        ck_assert_int_eq(wire_send(sv[0], "y", 1, NULL, 0), 0);
        ck_assert_int_eq(wire_recv(sv[1], rbuf, sizeof(rbuf), &fds, &p), 0);
        ck_assert_int_eq(count_fds(), base);

        close(fd);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

START_TEST(test_wire_epipe) {
        int sv[2];

        /* MSG_NOSIGNAL: a gone peer is an error code, not a SIGPIPE that kills us. */
        seqpacket_pair(sv);
        close(sv[1]);
        ck_assert_int_eq(wire_send(sv[0], "x", 1, NULL, 0), -EPIPE);
        ck_assert_int_eq(wire_send_blocking(sv[0], "x", 1, NULL, 0), -EPIPE);
        close(sv[0]);
}
END_TEST

START_TEST(test_wire_blocking) {
        static uint8_t chunk[60000];
        FdList fds = FD_LIST_NULL;
        WirePacket p;
        int sv[2], r, status;
        unsigned sent = 0;
        pid_t pid;

        seqpacket_pair(sv);
        ck_assert_int_eq(wire_recv_blocking(sv[1], rbuf, sizeof(rbuf), &fds, &p, 20), -ETIMEDOUT);

        while ((r = wire_send(sv[0], chunk, sizeof(chunk), NULL, 0)) == 0)
                ck_assert_uint_lt(++sent, 100000);
        ck_assert_int_eq(r, -EAGAIN);

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                /* Drain after a while, so the parent really has to wait. */
                usleep(100 * 1000);
                for (unsigned i = 0; i <= sent; i++)
                        if (wire_recv_blocking(sv[1], rbuf, sizeof(rbuf), NULL, &p, 5000) < 0)
                                _exit(1);
                _exit(p.len == 3 && memcmp(rbuf, "end", 3) == 0 ? 0 : 2);
        }
        ck_assert_int_eq(wire_send_blocking(sv[0], "end", 3, NULL, 0), 0);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void protocol_wire_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "wire", 30);
        tcase_add_test(tc, test_wire_roundtrip_no_fds);
        tcase_add_test(tc, test_wire_roundtrip_one_fd);
        tcase_add_test(tc, test_wire_roundtrip_max_fds);
        tcase_add_test(tc, test_wire_33_fds);
        tcase_add_test(tc, test_wire_40_fds);
        tcase_add_test(tc, test_wire_250_fds);
        tcase_add_test(tc, test_wire_scm_max_fd);
        tcase_add_test(tc, test_wire_oversize);
        tcase_add_test(tc, test_wire_empty_packet_with_fds);
        tcase_add_test(tc, test_wire_empty_packet_alive);
        tcase_add_test(tc, test_wire_eof);
        tcase_add_test(tc, test_wire_empty_then_data_then_eof);
        tcase_add_test(tc, test_wire_half_close);
        tcase_add_test(tc, test_wire_no_fd_list);
        tcase_add_test(tc, test_wire_passcred_ignored);
        tcase_add_test(tc, test_wire_pidfd_not_leaked);
        tcase_add_test(tc, test_wire_epipe);
        tcase_add_test(tc, test_wire_blocking);
}
