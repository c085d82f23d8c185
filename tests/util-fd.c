/* util-fd.c - tests: the pipes, sockets and eventfds tests watch, and reading or writing them
 *
 * Every fd is CLOEXEC and non-blocking, so a test never blocks on one and a forked daemon
 * never inherits one.
 */

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "macro.h"
#include "util-fd.h"

void make_pipe(int p[2]) {
        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
}

void close_pairp(int (*p)[2]) {
        (void)safe_close((*p)[0]);
        (void)safe_close((*p)[1]);
}

void close_pair(int p[2]) {
        p[0] = safe_close(p[0]);
        p[1] = safe_close(p[1]);
}

void write_byte(int fd) {
        ck_assert_int_eq(write(fd, "x", 1), 1);
}

size_t drain_fd(int fd) {
        char buf[4096];
        size_t total = 0;
        ssize_t n;

        while ((n = read(fd, buf, sizeof(buf))) > 0)
                total += (size_t)n;
        return total;
}

int make_eventfd(void) {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

        ck_assert_int_ge(fd, 0);
        return fd;
}

void poke_eventfd(int fd) {
        uint64_t one = 1;

        ck_assert_int_eq(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one));
}

void make_socketpair(int type, int p[2]) {
        ck_assert_int_eq(socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p), 0);
}

/* Put a fresh pipe's read end at fd number @fd (which must be free); return the write end. */
int pipe_at(int fd) {
        int p[2];

        make_pipe(p);
        if (p[0] != fd) {
                ck_assert_int_eq(dup3(p[0], fd, O_CLOEXEC), fd);
                (void)close(p[0]);
                ck_assert_int_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
        }
        return p[1];
}

/* A connected loopback TCP pair: [0] the client, [1] the accepted side. */
void tcp_pair(int p[2]) {
        struct sockaddr_in a = {
                .sin_family = AF_INET,
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        socklen_t len = sizeof(a);
        _cleanup_close_ int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(l, 0);
        ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
        ck_assert_int_eq(listen(l, 1), 0);
        ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
        p[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(p[0], 0);
        ck_assert_int_eq(connect(p[0], (struct sockaddr *)&a, sizeof(a)), 0);
        p[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        ck_assert_int_ge(p[1], 0);
        ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
}

/* Soft RLIMIT_NOFILE to the hard limit; returns how many fds a test may open. */
unsigned raise_nofile(void) {
        struct rlimit rl;

        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
                ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        }
        /* Headroom for the engine's own fds, check's and valgrind's. */
        return rl.rlim_cur > 256 ? (unsigned)MIN(rl.rlim_cur - 256, (rlim_t)UINT32_MAX) : 0;
}


/* Open fds of this process, not counting the directory handle used to count them. */
int count_fds(void) {
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

bool fd_is_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

bool fd_is_cloexec(int fd) {
        int flags = fcntl(fd, F_GETFD);

        ck_assert_int_ge(flags, 0);
        return flags & FD_CLOEXEC;
}

void seqpacket_pair(int sv[2]) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv),
                         0);
}

/* sendmsg() without wire_send()'s limits, to play a hostile or buggy peer. */
int raw_send(int sock, const void *buf, size_t len, int fd, size_t n_fds) {
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

int unix_listener(const char *path, int type) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(listen(fd, 16), 0);
        return fd;
}
