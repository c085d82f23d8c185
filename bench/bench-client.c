/* bench-client.c - the raw client side the daemon benchmarks share (bench-client.h) */

#include "bench-client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 32 /* the protocol's limit per packet */

static bool forked;

_Noreturn void bench_die(const char *what) {
        fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(errno));
        if (forked)
                _exit(1);
        exit(1);
}

void bench_forked(void) {
        forked = true;
}

uint64_t bench_now_ns(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bench_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

        if (fd < 0)
                bench_die("socket");
        if (strlen(path) >= sizeof(sa.sun_path)) {
                errno = ENAMETOOLONG;
                bench_die(path);
        }
        memcpy(sa.sun_path, path, strlen(path));
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                bench_die("connect");
        return fd;
}

void bench_send(int fd, const char *buf, size_t len, const int *fds, size_t n) {
        union {
                struct cmsghdr h;
                char b[CMSG_SPACE(MAX_FDS * sizeof(int))];
        } u;
        struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (n > MAX_FDS) {
                errno = EINVAL;
                bench_die("more than 32 fds in a packet");
        }
        if (n) {
                memset(&u, 0, sizeof(u));
                m.msg_control = u.b;
                m.msg_controllen = CMSG_SPACE(n * sizeof(int));
                CMSG_FIRSTHDR(&m)->cmsg_level = SOL_SOCKET;
                CMSG_FIRSTHDR(&m)->cmsg_type = SCM_RIGHTS;
                CMSG_FIRSTHDR(&m)->cmsg_len = CMSG_LEN(n * sizeof(int));
                memcpy(CMSG_DATA(CMSG_FIRSTHDR(&m)), fds, n * sizeof(int));
        }
        if (sendmsg(fd, &m, MSG_NOSIGNAL) != (ssize_t)len)
                bench_die("sendmsg");
}
