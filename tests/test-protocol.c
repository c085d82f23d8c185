/*
 * test-protocol.c - unit tests of protocol/: constants and events, FdList,
 * SEQPACKET framing with SCM_RIGHTS, JSON-RPC parsing, validation and building.
 *
 * Wire tests run over socketpair(AF_UNIX, SOCK_SEQPACKET) and check fd hygiene by
 * counting /proc/self/fd: every fd the kernel installed on a truncated packet must
 * be closed before wire_recv() returns. Every json_t is released so the valgrind
 * setup can check for leaks.
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
#include "wire.h"

/* ---- helpers ---- */

/* Open fds of this process, not counting the directory handle used to count them. */
static int count_fds(void) {
        struct dirent *de;
        int n = 0;
        DIR *d;

        d = opendir("/proc/self/fd");
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1;
}

static bool fd_is_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

static bool fd_is_cloexec(int fd) {
        int flags = fcntl(fd, F_GETFD);

        ck_assert_int_ge(flags, 0);
        return flags & FD_CLOEXEC;
}

static void seqpacket_pair(int sv[2]) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv),
                         0);
}

/* sendmsg() without wire_send()'s limits, to play a hostile or buggy peer. */
static int raw_send(int sock, const void *buf, size_t len, int fd, size_t n_fds) {
        union {
                struct cmsghdr align;
                uint8_t buf[CMSG_SPACE(sizeof(int) * 300)];
        } control;
        struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        struct cmsghdr *c;

        ck_assert_uint_le(n_fds, 300);
        if (n_fds > 0) {
                memset(&control, 0, sizeof(control));
                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                /* The same fd n times: the kernel installs one new fd per entry. */
                for (size_t i = 0; i < n_fds; i++)
                        memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
        }
        return sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ? -errno : 0;
}

static json_t *parse_ok(const char *s) {
        json_error_t error;
        json_t *v = NULL;

        ck_assert_msg(jsonrpc_parse(s, strlen(s), &v, &error) == 0, "parse %s: %s", s, error.text);
        return v;
}

static void assert_encodes(const json_t *v, const char *expect) {
        char buf[EVD_MAX_PACKET];
        size_t len = 0;

        ck_assert_ptr_nonnull(v);
        ck_assert_int_eq(jsonrpc_encode(v, buf, sizeof(buf), &len), 0);
        ck_assert_uint_eq(len, strlen(expect));
        ck_assert_mem_eq(buf, expect, len);
}

/* ---- protocol.c: error codes, events, tags ---- */

START_TEST(test_error_messages) {
        ck_assert_int_eq(EVD_ERR_PARSE, -32700);
        ck_assert_int_eq(EVD_ERR_NO_FDS, -32009);
        ck_assert_str_eq(evd_error_message(EVD_ERR_PARSE), "Parse error");
        ck_assert_str_eq(evd_error_message(EVD_ERR_INVALID_REQUEST), "Invalid Request");
        ck_assert_str_eq(evd_error_message(EVD_ERR_METHOD_NOT_FOUND), "Method not found");
        ck_assert_str_eq(evd_error_message(EVD_ERR_INVALID_PARAMS), "Invalid params");
        ck_assert_str_eq(evd_error_message(EVD_ERR_INTERNAL), "Internal error");
        ck_assert_str_eq(evd_error_message(EVD_ERR_NO_SUCH_WATCH), "No such watch");
        ck_assert_str_eq(evd_error_message(EVD_ERR_NO_SUCH_TIMER), "No such timer");
        ck_assert_int_eq(EVD_ERR_REPLY_BUDGET, -32010);
        ck_assert_str_eq(evd_error_message(EVD_ERR_REPLY_BUDGET), "Reply budget exceeded");
        for (int code = EVD_ERR_REPLY_BUDGET; code <= EVD_ERR_NO_SUCH_WATCH; code++)
                ck_assert_ptr_nonnull(evd_error_message(code));
        ck_assert_ptr_null(evd_error_message(0));
        ck_assert_ptr_null(evd_error_message(-32000));
        ck_assert_ptr_null(evd_error_message(-32011));
        ck_assert_ptr_null(evd_error_message(-32099));
}
END_TEST

START_TEST(test_event_names) {
        ck_assert_uint_eq(protocol_event_from_name("in"), POLLIN);
        ck_assert_uint_eq(protocol_event_from_name("pri"), POLLPRI);
        ck_assert_uint_eq(protocol_event_from_name("out"), POLLOUT);
        ck_assert_uint_eq(protocol_event_from_name("err"), POLLERR);
        ck_assert_uint_eq(protocol_event_from_name("hup"), POLLHUP);
        ck_assert_uint_eq(protocol_event_from_name("rdhup"), POLLRDHUP);
        ck_assert_uint_eq(protocol_event_from_name("IN"), 0);
        ck_assert_uint_eq(protocol_event_from_name(""), 0);
        ck_assert_uint_eq(protocol_event_from_name(NULL), 0);
        ck_assert_str_eq(protocol_event_name(POLLRDHUP), "rdhup");
        ck_assert_ptr_null(protocol_event_name(POLLIN | POLLOUT));
        ck_assert_ptr_null(protocol_event_name(0));
}
END_TEST

static int events_from(const char *json, uint32_t mask, uint32_t *ret, const char **why) {
        json_error_t error;
        json_t *v = json_loads(json, JSON_DECODE_ANY, &error);
        int r;

        ck_assert_msg(v != NULL, "%s: %s", json, error.text);
        r = protocol_events_from_json(v, mask, ret, why);
        json_decref(v);
        return r;
}

START_TEST(test_events_from_json) {
        const char *why = NULL;
        uint32_t ev = 0xdead;

        ck_assert_int_eq(events_from("[\"in\",\"out\"]", EVD_EVENTS_REQUESTABLE, &ev, &why), 0);
        ck_assert_uint_eq(ev, POLLIN | POLLOUT);
        ck_assert_int_eq(events_from("[\"rdhup\",\"pri\",\"in\",\"out\"]", EVD_EVENTS_REQUESTABLE,
                                     &ev, NULL),
                         0);
        ck_assert_uint_eq(ev, POLLIN | POLLPRI | POLLOUT | POLLRDHUP);

        /* Failures leave the output alone and explain themselves. */
        ev = 0xdead;
        ck_assert_int_eq(events_from("[]", EVD_EVENTS_REQUESTABLE, &ev, &why), -EINVAL);
        ck_assert_str_eq(why, "must not be empty");
        ck_assert_int_eq(events_from("[\"in\",\"in\"]", EVD_EVENTS_REQUESTABLE, &ev, &why),
                         -EINVAL);
        ck_assert_str_eq(why, "duplicate event name");
        ck_assert_int_eq(events_from("[\"in\",\"foo\"]", EVD_EVENTS_REQUESTABLE, &ev, &why),
                         -EINVAL);
        ck_assert_str_eq(why, "unknown event name");
        ck_assert_int_eq(events_from("[\"err\"]", EVD_EVENTS_REQUESTABLE, &ev, &why), -EINVAL);
        ck_assert_str_eq(why, "event cannot be requested");
        ck_assert_int_eq(events_from("[\"hup\"]", EVD_EVENTS_REQUESTABLE, &ev, &why), -EINVAL);
        ck_assert_int_eq(events_from("[\"in\",1]", EVD_EVENTS_REQUESTABLE, &ev, &why), -EINVAL);
        ck_assert_str_eq(why, "event names must be strings");
        ck_assert_int_eq(events_from("\"in\"", EVD_EVENTS_REQUESTABLE, &ev, &why), -EINVAL);
        ck_assert_int_eq(events_from("{\"in\":true}", EVD_EVENTS_REQUESTABLE, &ev, &why), -EINVAL);
        ck_assert_int_eq(events_from("[\"In\"]", EVD_EVENTS_REQUESTABLE, &ev, NULL), -EINVAL);
        ck_assert_int_eq(events_from("[\"out\"]", EVD_EVENT_IN, &ev, &why), -EINVAL);
        ck_assert_uint_eq(ev, 0xdead);
        ck_assert_int_eq(protocol_events_from_json(NULL, EVD_EVENTS_ALL, &ev, &why), -EINVAL);

        /* A wider mask (a client decoding notifications) accepts err and hup. */
        ck_assert_int_eq(events_from("[\"err\",\"hup\"]", EVD_EVENTS_ALL, &ev, &why), 0);
        ck_assert_uint_eq(ev, POLLERR | POLLHUP);
}
END_TEST

START_TEST(test_events_to_json) {
        json_t *v;

        v = protocol_events_to_json(POLLRDHUP | POLLIN | POLLHUP);
        assert_encodes(v, "[\"in\",\"hup\",\"rdhup\"]");
        json_decref(v);
        v = protocol_events_to_json(0);
        assert_encodes(v, "[]");
        json_decref(v);
        /* Bits with no name (POLLNVAL, POLLMSG) are dropped, not invented. */
        v = protocol_events_to_json(POLLNVAL | 0x400 | POLLOUT);
        assert_encodes(v, "[\"out\"]");
        json_decref(v);

        /* Every non-empty requestable set survives a round trip. */
        for (uint32_t set = 1; set < 16; set++) {
                static const uint32_t bits[] = {POLLIN, POLLPRI, POLLOUT, POLLRDHUP};
                uint32_t events = 0, back = 0;

                for (unsigned i = 0; i < 4; i++)
                        if (set & (1u << i))
                                events |= bits[i];
                v = protocol_events_to_json(events);
                ck_assert_ptr_nonnull(v);
                ck_assert_int_eq(protocol_events_from_json(v, EVD_EVENTS_REQUESTABLE, &back, NULL),
                                 0);
                ck_assert_uint_eq(back, events);
                json_decref(v);
        }
}
END_TEST

static json_t *string_of(size_t n) {
        char *s = malloc(n + 1);
        json_t *v;

        ck_assert_ptr_nonnull(s);
        memset(s, 'x', n);
        s[n] = '\0';
        v = json_string(s);
        free(s);
        ck_assert_ptr_nonnull(v);
        return v;
}

START_TEST(test_tag_check) {
        json_t *v;

        ck_assert_int_eq(protocol_tag_check(NULL), -EINVAL);
        v = json_null();
        ck_assert_int_eq(protocol_tag_check(v), 0);
        v = json_integer(42);
        ck_assert_int_eq(protocol_tag_check(v), 0);
        json_decref(v);
        /* 1022 characters plus two quotes is exactly EVD_MAX_TAG. */
        v = string_of(EVD_MAX_TAG - 2);
        ck_assert_int_eq(protocol_tag_check(v), 0);
        json_decref(v);
        v = string_of(EVD_MAX_TAG - 1);
        ck_assert_int_eq(protocol_tag_check(v), -EMSGSIZE);
        json_decref(v);
        v = json_pack("{s:[i,i,i], s:s}", "a", 1, 2, 3, "b", "c");
        ck_assert_int_eq(protocol_tag_check(v), 0);
        json_decref(v);
}
END_TEST

/* ---- fd-list.c ---- */

static void fd_list_fill(FdList *l, unsigned n) {
        fd_list_init(l);
        for (unsigned i = 0; i < n; i++) {
                l->fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                ck_assert_int_ge(l->fds[i], 0);
        }
        l->n = n;
}

START_TEST(test_fd_list_take_peek) {
        FdList l = FD_LIST_NULL;
        int fd = -1, fd2 = -1, base = count_fds();

        fd_list_fill(&l, 3);
        ck_assert_uint_eq(fd_list_remaining(&l), 3);

        ck_assert_int_eq(fd_list_peek(&l, 1, &fd), 0);
        ck_assert_int_eq(fd, l.fds[1]);
        ck_assert_uint_eq(fd_list_remaining(&l), 3);

        ck_assert_int_eq(fd_list_take(&l, 1, &fd2), 0);
        ck_assert_int_eq(fd2, fd);
        ck_assert_uint_eq(fd_list_remaining(&l), 2);

        /* One index, one owner. */
        fd = -1;
        ck_assert_int_eq(fd_list_take(&l, 1, &fd), -EALREADY);
        ck_assert_int_eq(fd_list_peek(&l, 1, &fd), -EALREADY);
        ck_assert_int_eq(fd, -1);

        ck_assert_int_eq(fd_list_take(&l, 3, &fd), -ERANGE);
        ck_assert_int_eq(fd_list_take(&l, -1, &fd), -ERANGE);
        ck_assert_int_eq(fd_list_peek(&l, -1, &fd), -ERANGE);
        ck_assert_int_eq(fd_list_take(&l, INT64_MAX, &fd), -ERANGE);
        ck_assert_int_eq(fd_list_take(&l, INT64_MIN, &fd), -ERANGE);
        ck_assert_int_eq(fd_list_take(&l, (int64_t)1 << 32 | 1, &fd), -ERANGE);
        ck_assert_int_eq(fd, -1);

        /* Close leaves the taken fd to its owner and everything else shut. */
        fd_list_close(&l);
        ck_assert_uint_eq(l.n, 0);
        ck_assert_uint_eq(fd_list_remaining(&l), 0);
        ck_assert(fd_is_open(fd2));
        ck_assert_int_eq(count_fds(), base + 1);
        fd_list_close(&l);
        ck_assert_int_eq(count_fds(), base + 1);
        ck_assert_int_eq(fd_list_take(&l, 0, &fd), -ERANGE);
        close(fd2);
        ck_assert_int_eq(count_fds(), base);
}
END_TEST

START_TEST(test_fd_list_full) {
        FdList l = FD_LIST_NULL;
        int fd, last, base = count_fds();

        fd_list_fill(&l, EVD_MAX_FDS);
        ck_assert_int_eq(count_fds(), base + EVD_MAX_FDS);
        ck_assert_int_eq(fd_list_take(&l, EVD_MAX_FDS - 1, &last), 0);
        ck_assert_int_eq(fd_list_take(&l, EVD_MAX_FDS, &fd), -ERANGE);
        ck_assert_int_eq(fd_list_take(&l, 0, &fd), 0);
        close(fd);
        ck_assert_uint_eq(fd_list_remaining(&l), EVD_MAX_FDS - 2);
        fd_list_close(&l);
        ck_assert_int_eq(count_fds(), base + 1);
        ck_assert(fd_is_open(last));
        close(last);
        ck_assert_int_eq(count_fds(), base);

        /* An empty list: nothing to take, closing is a no-op. */
        FdList e = FD_LIST_NULL;
        ck_assert_uint_eq(fd_list_remaining(&e), 0);
        ck_assert_int_eq(fd_list_peek(&e, 0, &fd), -ERANGE);
        fd_list_close(&e);
}
END_TEST

START_TEST(test_fd_list_cleanup) {
        int base = count_fds();

        {
                _cleanup_fd_list_ FdList l = FD_LIST_NULL;
                fd_list_fill(&l, 4);
                ck_assert_int_eq(count_fds(), base + 4);
        }
        ck_assert_int_eq(count_fds(), base);
}
END_TEST

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

/* ---- jsonrpc.c: parse ---- */

static int parse_n(const void *buf, size_t len, json_error_t *error) {
        json_t *v = NULL;
        int r;

        r = jsonrpc_parse(buf, len, &v, error);
        if (r == 0)
                ck_assert(json_is_object(v) || json_is_array(v));
        else
                ck_assert_ptr_null(v);
        json_decref(v);
        return r;
}

static int parse_s(const char *s, json_error_t *error) {
        return parse_n(s, strlen(s), error);
}

START_TEST(test_parse_valid) {
        json_error_t e;
        json_t *v;

        v = parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1}");
        ck_assert(json_is_object(v));
        json_decref(v);
        v = parse_ok(" [ {\"a\": 1}, 2 ] \n");
        ck_assert_uint_eq(json_array_size(v), 2);
        json_decref(v);
        ck_assert_int_eq(parse_s("{\"s\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", &e), 0);
        ck_assert_int_eq(parse_s("[9223372036854775807, -9223372036854775808]", &e), 0);
}
END_TEST

START_TEST(test_parse_invalid) {
        json_error_t e;

        ck_assert_int_eq(parse_s("{", &e), -EBADMSG);
        ck_assert_str_ne(e.text, "");
        ck_assert_int_eq(parse_s("{\"a\":}", &e), -EBADMSG);
        ck_assert_int_eq(parse_s("[1,]", &e), -EBADMSG);
        ck_assert_int_eq(parse_s("{'a':1}", &e), -EBADMSG);
        ck_assert_int_eq(parse_s("[1] [2]", &e), -EBADMSG);
        ck_assert_int_eq(parse_s("", &e), -EBADMSG);
        ck_assert_int_eq(parse_n(NULL, 0, &e), -EBADMSG);
        ck_assert_int_eq(parse_s("[NaN]", &e), -EBADMSG);
        ck_assert_int_eq(parse_s("[1e400]", &e), -EBADMSG);
        ck_assert_int_eq(parse_s("{\"a\":1}", NULL), 0);
        ck_assert_int_eq(parse_s("{", NULL), -EBADMSG);

        /* Valid JSON, but not a message or batch: Invalid Request, not Parse error. */
        ck_assert_int_eq(parse_s("1", &e), -EINVAL);
        ck_assert_int_eq(parse_s("\"str\"", &e), -EINVAL);
        ck_assert_int_eq(parse_s("null", &e), -EINVAL);
        ck_assert_int_eq(parse_s("true", NULL), -EINVAL);
}
END_TEST

START_TEST(test_parse_utf8_nul) {
        json_error_t e;

        ck_assert_int_eq(parse_s("[\"\xff\"]", &e), -EBADMSG);
        ck_assert_int_eq(json_error_code(&e), json_error_invalid_utf8);
        ck_assert_int_eq(parse_s("[\"\xc0\xaf\"]", &e), -EBADMSG);     /* overlong '/' */
        ck_assert_int_eq(parse_s("[\"\xed\xa0\x80\"]", &e), -EBADMSG); /* a surrogate */
        ck_assert_int_eq(parse_s("[\"\xc3\"]", &e), -EBADMSG);         /* cut short */
        ck_assert_int_eq(parse_s("{\"\xfe\":1}", &e), -EBADMSG);       /* in a key */

        ck_assert_int_eq(parse_s("[\"a\\u0000b\"]", &e), -EBADMSG);
        ck_assert_int_eq(json_error_code(&e), json_error_null_character);
        ck_assert_int_eq(parse_s("{\"a\\u0000b\":1}", &e), -EBADMSG);
        ck_assert_int_eq(parse_n("[\"a\0b\"]", 7, &e), -EBADMSG);
        ck_assert_int_eq(parse_n("{\"a\0\":1}", 8, &e), -EBADMSG);
        /* A NUL after a complete value is trailing garbage, not an end marker. */
        ck_assert_int_eq(parse_n("[1]\0", 4, &e), -EBADMSG);
}
END_TEST

START_TEST(test_parse_duplicates) {
        json_error_t e;

        ck_assert_int_eq(parse_s("{\"fd\":0,\"fd\":1}", &e), -EBADMSG);
        ck_assert_int_eq(json_error_code(&e), json_error_duplicate_key);
        ck_assert_int_eq(parse_s("[{\"params\":{\"a\":1,\"b\":2,\"a\":3}}]", &e), -EBADMSG);
        ck_assert_int_eq(parse_s("[{\"a\":1},{\"a\":1}]", &e), 0);
}
END_TEST

static char *nested(size_t depth, char open, char close) {
        char *s = malloc(2 * depth + 1);

        ck_assert_ptr_nonnull(s);
        memset(s, open, depth);
        memset(s + depth, close, depth);
        s[2 * depth] = '\0';
        return s;
}

START_TEST(test_parse_deep) {
        json_error_t e;
        char *s;

        s = nested(10000, '[', ']');
        ck_assert_int_eq(parse_s(s, &e), -EBADMSG);
        ck_assert_int_eq(json_error_code(&e), json_error_stack_overflow);
        free(s);

        /* 10,000 objects deep: {"a":{"a":...}} */
        size_t depth = 10000, off = 0;
        s = malloc(depth * 5 + depth + 2);
        ck_assert_ptr_nonnull(s);
        for (size_t i = 0; i < depth; i++, off += 5)
                memcpy(s + off, "{\"a\":", 5);
        s[off++] = '1';
        memset(s + off, '}', depth);
        off += depth;
        s[off] = '\0';
        ck_assert_int_eq(parse_s(s, &e), -EBADMSG);
        ck_assert_int_eq(json_error_code(&e), json_error_stack_overflow);
        free(s);

        /* The documented bound: JSON_PARSER_MAX_DEPTH levels parse, one more does not. */
        s = nested(JSON_PARSER_MAX_DEPTH, '[', ']');
        ck_assert_int_eq(parse_s(s, &e), 0);
        free(s);
        s = nested(JSON_PARSER_MAX_DEPTH + 1, '[', ']');
        ck_assert_int_eq(parse_s(s, &e), -EBADMSG);
        free(s);
}
END_TEST

START_TEST(test_parse_size) {
        static char buf[EVD_MAX_PACKET + 1];
        json_error_t e;

        /* A valid array of spaces: only the size decides. */
        memset(buf, ' ', sizeof(buf));
        buf[0] = '[';
        buf[EVD_MAX_PACKET - 1] = ']';
        ck_assert_int_eq(parse_n(buf, EVD_MAX_PACKET, &e), 0);
        buf[EVD_MAX_PACKET - 1] = ' ';
        buf[EVD_MAX_PACKET] = ']';
        ck_assert_int_eq(parse_n(buf, EVD_MAX_PACKET + 1, &e), -EMSGSIZE);
        ck_assert_str_ne(e.text, "");
}
END_TEST

START_TEST(test_parse_integers) {
        json_error_t e;

        /* jansson reports int64 overflow as a parse error, not as a real. */
        ck_assert_int_eq(parse_s("{\"id\":9223372036854775808}", &e), -EBADMSG);
        ck_assert_int_eq(json_error_code(&e), json_error_numeric_overflow);
        ck_assert_int_eq(parse_s("{\"id\":-9223372036854775809}", &e), -EBADMSG);
        ck_assert_int_eq(json_error_code(&e), json_error_numeric_overflow);
        ck_assert_int_eq(parse_s("{\"id\":123456789012345678901234567890}", &e), -EBADMSG);
}
END_TEST

/* ---- jsonrpc.c: request validation ---- */

static int check_req(const char *s, JsonRpcRequest *req, int *code, const char **why,
                     json_t **ret_msg) {
        json_t *msg = parse_ok(s);
        int r;

        *code = 0;
        *why = NULL;
        r = jsonrpc_request_check(msg, req, code, why);
        if (r < 0) {
                ck_assert_int_eq(r, -EINVAL);
                ck_assert_ptr_nonnull(*why);
                ck_assert(*code == EVD_ERR_INVALID_REQUEST || *code == EVD_ERR_INVALID_PARAMS);
        }
        *ret_msg = msg;
        return r;
}

/* Expect failure with @code and an id that is NULL (expect_id NULL) or encodes as @expect_id. */
static void req_fails(const char *s, int expect_code, const char *expect_id) {
        JsonRpcRequest req;
        const char *why;
        json_t *msg;
        int code;

        ck_assert_msg(check_req(s, &req, &code, &why, &msg) == -EINVAL, "accepted: %s", s);
        ck_assert_msg(code == expect_code, "%s: code %d", s, code);
        if (expect_id) {
                char buf[64];
                size_t n = json_dumpb(req.id, buf, sizeof(buf), JSON_ENCODE_ANY);
                ck_assert_msg(req.id && n == strlen(expect_id) && memcmp(buf, expect_id, n) == 0,
                              "%s: wrong id", s);
        } else
                ck_assert_msg(req.id == NULL, "%s: id should be unset", s);
        ck_assert_ptr_null(req.method);
        ck_assert_ptr_null(req.params);
        json_decref(msg);
}

START_TEST(test_request_valid) {
        JsonRpcRequest req;
        const char *why;
        json_t *msg;
        int code;

        ck_assert_int_eq(check_req("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"watch\","
                                   "\"params\":{\"fd\":0,\"events\":[\"in\"]}}",
                                   &req, &code, &why, &msg),
                         0);
        ck_assert(json_is_integer(req.id));
        ck_assert_int_eq(json_integer_value(req.id), 7);
        ck_assert_str_eq(req.method, "watch");
        ck_assert(json_is_object(req.params));
        ck_assert_ptr_eq(req.params, json_object_get(msg, "params"));
        json_decref(msg);

        ck_assert_int_eq(check_req("{\"method\":\"ping\",\"jsonrpc\":\"2.0\",\"id\":\"abc\"}", &req,
                                   &code, &why, &msg),
                         0);
        ck_assert_str_eq(json_string_value(req.id), "abc");
        ck_assert_ptr_null(req.params);
        json_decref(msg);

        /* id null is a request (answered with id null), not a notification. */
        ck_assert_int_eq(check_req("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", &req,
                                   &code, &why, &msg),
                         0);
        ck_assert_ptr_nonnull(req.id);
        ck_assert(json_is_null(req.id));
        json_decref(msg);

        /* No id: a notification, no reply. */
        ck_assert_int_eq(check_req("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"params\":{}}", &req,
                                   &code, &why, &msg),
                         0);
        ck_assert_ptr_null(req.id);
        ck_assert_str_eq(req.method, "ping");
        json_decref(msg);

        ck_assert_int_eq(check_req("{\"jsonrpc\":\"2.0\",\"id\":-9223372036854775808,"
                                   "\"method\":\"x\"}",
                                   &req, &code, &why, &msg),
                         0);
        ck_assert_int_eq(json_integer_value(req.id), INT64_MIN);
        json_decref(msg);
}
END_TEST

START_TEST(test_request_invalid) {
        const int INV = EVD_ERR_INVALID_REQUEST;

        req_fails("[1]", INV, NULL);
        req_fails("{}", INV, NULL);
        req_fails("{\"id\":1,\"method\":\"ping\"}", INV, "1");
        req_fails("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", INV, "1");
        req_fails("{\"jsonrpc\":2.0,\"id\":1,\"method\":\"ping\"}", INV, "1");
        req_fails("{\"jsonrpc\":\"2.0 \",\"id\":1,\"method\":\"ping\"}", INV, "1");
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":\"x\"}", INV, "\"x\"");
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":5}", INV, "2");
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":null}", INV, "2");
        req_fails("{\"jsonrpc\":\"2.0\",\"method\":[\"ping\"]}", INV, NULL);
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\",\"params\":\"x\"}", INV, "3");
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\",\"params\":null}", INV, "3");
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\",\"params\":7}", INV, "3");
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\",\"extra\":1}", INV, "4");
        req_fails("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"param\":{}}", INV, NULL);

        /* Ids: fractional, real-typed, or not scalar are invalid and cannot be echoed. */
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", INV, NULL);
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":1.0,\"method\":\"ping\"}", INV, NULL);
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":1e3,\"method\":\"ping\"}", INV, NULL);
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}", INV, NULL);
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"ping\"}", INV, NULL);
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}", INV, NULL);

        /* By-position params: a valid JSON-RPC request evd cannot take. */
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"watch\",\"params\":[0,[\"in\"]]}",
                  EVD_ERR_INVALID_PARAMS, "5");
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"watch\",\"params\":[]}",
                  EVD_ERR_INVALID_PARAMS, "\"p\"");

        /* Optional outputs may be NULL. */
        json_t *msg = parse_ok("{}");
        JsonRpcRequest req;
        ck_assert_int_eq(jsonrpc_request_check(msg, &req, NULL, NULL), -EINVAL);
        json_decref(msg);
}
END_TEST

START_TEST(test_request_huge_id) {
        json_error_t e;
        json_t *v = NULL;
        const char *s = "{\"jsonrpc\":\"2.0\",\"id\":18446744073709551616,\"method\":\"ping\"}";

        /* Never reaches request_check: the whole packet is a Parse error (id null). */
        ck_assert_int_eq(jsonrpc_parse(s, strlen(s), &v, &e), -EBADMSG);
        ck_assert_ptr_null(v);
        ck_assert_int_eq(json_error_code(&e), json_error_numeric_overflow);
}
END_TEST

START_TEST(test_params_known) {
        static const char *const known[] = {"fd", "events", "mode", "tag", NULL};
        const char *key = NULL;
        json_t *p;

        ck_assert_int_eq(jsonrpc_params_check_known(NULL, known, &key), 0);
        p = parse_ok("{\"fd\":0,\"events\":[\"in\"],\"tag\":null}");
        ck_assert_int_eq(jsonrpc_params_check_known(p, known, &key), 0);
        json_decref(p);
        p = parse_ok("{\"fd\":0,\"mdoe\":\"edge\"}");
        ck_assert_int_eq(jsonrpc_params_check_known(p, known, &key), -EINVAL);
        ck_assert_str_eq(key, "mdoe");
        json_decref(p);
        p = parse_ok("[]");
        ck_assert_int_eq(jsonrpc_params_check_known(p, known, &key), -EINVAL);
        ck_assert_ptr_null(key);
        json_decref(p);
}
END_TEST

/* ---- jsonrpc.c: builders and encoding ---- */

START_TEST(test_build_reply) {
        json_t *id = json_integer(7), *m;

        m = jsonrpc_reply(id, json_pack("{s:i}", "watch", 1));
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"watch\":1}}");
        /* The id was borrowed: the reply holds its own reference. */
        ck_assert_int_eq(id->refcount, 2);
        json_decref(m);
        ck_assert_int_eq(id->refcount, 1);
        json_decref(id);

        m = jsonrpc_reply(NULL, json_true());
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":true}");
        json_decref(m);

        /* A failed json_pack() upstream propagates as NULL. */
        ck_assert_ptr_null(jsonrpc_reply(NULL, NULL));
}
END_TEST

START_TEST(test_build_error) {
        json_t *id = json_string("a"), *m;

        m = jsonrpc_error(id, EVD_ERR_NO_SUCH_WATCH, NULL,
                          jsonrpc_error_data("watch", "not one of yours"));
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"error\":{\"code\":-32001,"
                          "\"message\":\"No such watch\",\"data\":{\"param\":\"watch\","
                          "\"why\":\"not one of yours\"}}}");
        json_decref(m);
        json_decref(id);

        m = jsonrpc_error(NULL, EVD_ERR_PARSE, NULL, NULL);
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                          "\"message\":\"Parse error\"}}");
        json_decref(m);

        m = jsonrpc_error(NULL, -32050, NULL, NULL);
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32050,"
                          "\"message\":\"Server error\"}}");
        json_decref(m);

        m = jsonrpc_error(json_null(), EVD_ERR_QUOTA, "Too many watches",
                          json_pack("{s:i}", "max", 4));
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32004,"
                          "\"message\":\"Too many watches\",\"data\":{\"max\":4}}}");
        json_decref(m);

        m = jsonrpc_error_data(NULL, "why only");
        assert_encodes(m, "{\"why\":\"why only\"}");
        json_decref(m);
        m = jsonrpc_error_data("fd", NULL);
        assert_encodes(m, "{\"param\":\"fd\"}");
        json_decref(m);
}
END_TEST

START_TEST(test_build_notification_request) {
        json_t *m;

        m = jsonrpc_notification("ready", json_pack("{s:i,s:n,s:[s],s:i}", "watch", 3, "tag",
                                                    "events", "in", "count", 1));
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"method\":\"ready\",\"params\":{\"watch\":3,"
                          "\"tag\":null,\"events\":[\"in\"],\"count\":1}}");
        json_decref(m);
        ck_assert_ptr_null(jsonrpc_notification("ready", NULL));

        m = jsonrpc_request_new(1, "ping", NULL);
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}");
        json_decref(m);
        m = jsonrpc_request_new(INT64_MAX, "unwatch", json_pack("{s:i}", "watch", 9));
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":9223372036854775807,\"method\":\"unwatch\","
                          "\"params\":{\"watch\":9}}");
        json_decref(m);
}
END_TEST

START_TEST(test_build_roundtrip) {
        char buf[EVD_MAX_PACKET];
        JsonRpcRequest req;
        const char *why;
        json_t *m, *back;
        size_t len;
        int code;

        /* What a client builds, the server accepts. */
        m = jsonrpc_request_new(42, "timer",
                                json_pack("{s:f,s:s}", "after", 0.25, "tag", "t\xc3\xa9"));
        ck_assert_int_eq(jsonrpc_encode(m, buf, sizeof(buf), &len), 0);
        ck_assert_int_eq(jsonrpc_parse(buf, len, &back, NULL), 0);
        ck_assert_int_eq(jsonrpc_request_check(back, &req, &code, &why), 0);
        ck_assert_int_eq(json_integer_value(req.id), 42);
        ck_assert_str_eq(req.method, "timer");
        ck_assert(json_equal(req.params, json_object_get(m, "params")));
        /* UTF-8 on the wire, not \u escapes. */
        ck_assert_ptr_nonnull(memmem(buf, len, "t\xc3\xa9", 3));
        json_decref(back);
        json_decref(m);
}
END_TEST

START_TEST(test_encode) {
        static char buf[EVD_MAX_PACKET];
        char *a = NULL, small[8];
        size_t len = 12345;
        json_t *v;

        v = json_pack("[i]", 1234);
        ck_assert_int_eq(jsonrpc_encode(v, small, 6, &len), 0);
        ck_assert_uint_eq(len, 6);
        ck_assert_mem_eq(small, "[1234]", 6);
        len = 12345;
        ck_assert_int_eq(jsonrpc_encode(v, small, 5, &len), -EMSGSIZE);
        ck_assert_uint_eq(len, 12345);
        ck_assert_int_eq(jsonrpc_encode_alloc(v, &a, &len), 0);
        ck_assert_uint_eq(len, 6);
        ck_assert_str_eq(a, "[1234]");
        free(a);
        json_decref(v);

        /* A 70 KB value does not fit a packet. */
        v = json_pack("{s:o}", "tag", string_of(70 * 1024));
        ck_assert_int_eq(jsonrpc_encode(v, buf, sizeof(buf), &len), -EMSGSIZE);
        a = NULL;
        ck_assert_int_eq(jsonrpc_encode_alloc(v, &a, &len), -EMSGSIZE);
        ck_assert_ptr_null(a);
        json_decref(v);

        /* Messages are objects or arrays; a bare scalar is a programming error. */
        v = json_integer(1);
        ck_assert_int_eq(jsonrpc_encode(v, buf, sizeof(buf), &len), -EINVAL);
        ck_assert_int_eq(jsonrpc_encode_alloc(v, &a, &len), -EINVAL);
        json_decref(v);
}
END_TEST

/* ---- jsonrpc.c: client-side classification ---- */

static int check_resp(const char *s, JsonRpcResponse *r, json_t **ret_msg) {
        json_t *msg = parse_ok(s);
        int ret = jsonrpc_response_check(msg, r);

        *ret_msg = msg;
        return ret;
}

static void resp_bad(const char *s) {
        JsonRpcResponse r;
        json_t *msg;

        ck_assert_msg(check_resp(s, &r, &msg) == -EBADMSG, "accepted: %s", s);
        json_decref(msg);
}

START_TEST(test_response_check) {
        JsonRpcResponse r;
        json_t *msg;

        ck_assert_int_eq(
                check_resp("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"watch\":4}}", &r, &msg), 0);
        ck_assert_int_eq(r.kind, JSONRPC_RESULT);
        ck_assert_int_eq(json_integer_value(r.id), 1);
        ck_assert_int_eq(json_integer_value(json_object_get(r.result, "watch")), 4);
        json_decref(msg);

        ck_assert_int_eq(check_resp("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                                    "\"message\":\"Parse error\"}}",
                                    &r, &msg),
                         0);
        ck_assert_int_eq(r.kind, JSONRPC_ERROR);
        ck_assert(json_is_null(r.id));
        ck_assert_int_eq(r.code, EVD_ERR_PARSE);
        ck_assert_str_eq(r.message, "Parse error");
        ck_assert_ptr_null(r.data);
        json_decref(msg);

        ck_assert_int_eq(check_resp("{\"jsonrpc\":\"2.0\",\"id\":\"q\",\"error\":{\"code\":-32602,"
                                    "\"message\":\"Invalid params\",\"data\":{\"param\":\"fd\"}},"
                                    "\"future\":1}",
                                    &r, &msg),
                         0);
        ck_assert_int_eq(r.kind, JSONRPC_ERROR);
        ck_assert_str_eq(json_string_value(json_object_get(r.data, "param")), "fd");
        json_decref(msg);

        ck_assert_int_eq(check_resp("{\"jsonrpc\":\"2.0\",\"method\":\"ready\",\"params\":{"
                                    "\"watch\":1,\"tag\":null,\"events\":[\"in\"],\"count\":1}}",
                                    &r, &msg),
                         0);
        ck_assert_int_eq(r.kind, JSONRPC_NOTIFICATION);
        ck_assert_str_eq(r.method, "ready");
        ck_assert_ptr_null(r.id);
        ck_assert(json_is_object(r.params));
        json_decref(msg);

        ck_assert_int_eq(check_resp("{\"jsonrpc\":\"2.0\",\"method\":\"shutdown\"}", &r, &msg), 0);
        ck_assert_int_eq(r.kind, JSONRPC_NOTIFICATION);
        ck_assert_ptr_null(r.params);
        json_decref(msg);

        resp_bad("[]");
        resp_bad("{}");
        resp_bad("{\"id\":1,\"result\":1}");
        resp_bad("{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":1}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"result\":1}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,"
                 "\"error\":{\"code\":1,\"message\":\"\"}}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"result\":1}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":{},\"result\":1}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"bad\"}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"x\"}}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-1.5,\"message\":\"x\"}}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1,"
                 "\"error\":{\"code\":4294967296,\"message\":\"x\"}}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1}}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ready\",\"params\":{}}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"method\":7}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"method\":\"ready\",\"params\":3}");
}
END_TEST

static Suite *protocol_suite(void) {
        Suite *s = suite_create("protocol");
        TCase *tc;

        tc = tcase_create("constants");
        tcase_add_test(tc, test_error_messages);
        tcase_add_test(tc, test_event_names);
        tcase_add_test(tc, test_events_from_json);
        tcase_add_test(tc, test_events_to_json);
        tcase_add_test(tc, test_tag_check);
        suite_add_tcase(s, tc);

        tc = tcase_create("fd-list");
        tcase_add_test(tc, test_fd_list_take_peek);
        tcase_add_test(tc, test_fd_list_full);
        tcase_add_test(tc, test_fd_list_cleanup);
        suite_add_tcase(s, tc);

        tc = tcase_create("wire");
        tcase_set_timeout(tc, 30);
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
        suite_add_tcase(s, tc);

        tc = tcase_create("parse");
        tcase_add_test(tc, test_parse_valid);
        tcase_add_test(tc, test_parse_invalid);
        tcase_add_test(tc, test_parse_utf8_nul);
        tcase_add_test(tc, test_parse_duplicates);
        tcase_add_test(tc, test_parse_deep);
        tcase_add_test(tc, test_parse_size);
        tcase_add_test(tc, test_parse_integers);
        suite_add_tcase(s, tc);

        tc = tcase_create("request");
        tcase_add_test(tc, test_request_valid);
        tcase_add_test(tc, test_request_invalid);
        tcase_add_test(tc, test_request_huge_id);
        tcase_add_test(tc, test_params_known);
        suite_add_tcase(s, tc);

        tc = tcase_create("build");
        tcase_add_test(tc, test_build_reply);
        tcase_add_test(tc, test_build_error);
        tcase_add_test(tc, test_build_notification_request);
        tcase_add_test(tc, test_build_roundtrip);
        tcase_add_test(tc, test_encode);
        suite_add_tcase(s, tc);

        tc = tcase_create("response");
        tcase_add_test(tc, test_response_check);
        suite_add_tcase(s, tc);

        return s;
}

int main(void) {
        SRunner *sr = srunner_create(protocol_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
