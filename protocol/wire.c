/*
 * wire.c - SOCK_SEQPACKET framing: one packet is one message, fds ride along.
 *
 * SEQPACKET keeps message boundaries, so there is no length prefix and no
 * reassembly: one recvmsg() is one packet. This file owns the kernel edge
 * cases so callers never see them:
 *
 *  - The control buffer has room for exactly EVD_MAX_FDS fds. A peer sending
 *    more gets MSG_CTRUNC (the kernel installs only what fits, which also caps
 *    how many fds a hostile peer can push into our table per packet). On
 *    MSG_CTRUNC or MSG_TRUNC every fd that did arrive is closed at once: a
 *    packet is accepted whole or not at all.
 *  - MSG_CTRUNC with room left in the buffer has another cause: the kernel
 *    stopped installing fds because our own fd table is full (EMFILE in its
 *    scm receive; it installs fds in order and stops at the first failure).
 *    That is the receiver's shortage, not the peer's fault: @fds_no_room.
 *  - Only SOL_SOCKET/SCM_RIGHTS fds are accepted. Other control messages are
 *    ignored, but SCM_PIDFD (SO_PASSPIDFD, Linux 6.5) also installs an fd, so
 *    that one is closed rather than leaked. Do not set SO_PASSCRED on a socket
 *    read here: its SCM_CREDENTIALS message would use part of the fd room and
 *    a full EVD_MAX_FDS packet would then be truncated (use SO_PEERCRED).
 *  - recvmsg() returning 0 is ambiguous on SEQPACKET: a zero-length packet
 *    (possibly carrying fds) or EOF. Control data means a packet. Without it,
 *    it is EOF only if the peer is gone (POLLHUP/POLLRDHUP) and nothing with
 *    bytes is still queued behind (FIONREAD sums every queued packet on
 *    SEQPACKET); otherwise it is an empty packet. Empty packets left queued
 *    behind a hang-up carry no request, so treating them as EOF loses nothing.
 *
 * Every received fd is CLOEXEC (MSG_CMSG_CLOEXEC). Sending borrows the fds:
 * the kernel duplicates them into the peer.
 */

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include "macro.h"
#include "wire.h"

/* Linux 6.5 uapi; glibc 2.36 does not define it yet. */
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

typedef union WireControl {
        struct cmsghdr align;
        uint8_t buf[CMSG_SPACE(sizeof(int) * EVD_MAX_FDS)];
} WireControl;

/* 1 if the peer has hung up and no packet with bytes is left to read, 0 if not, -errno. */
static int wire_peer_gone(int sock) {
        struct pollfd p = {.fd = sock, .events = POLLIN | POLLRDHUP};
        int queued = 0;

        if (poll(&p, 1, 0) < 0)
                return -errno;
        if (!(p.revents & (POLLHUP | POLLRDHUP)))
                return 0;
        if (ioctl(sock, FIONREAD, &queued) < 0)
                return -errno;
        return queued == 0;
}

/* Collect SCM_RIGHTS fds into @fds; anything that cannot be kept is closed. 1 on overflow. */
static int wire_collect_fds(struct msghdr *mh, FdList *fds) {
        bool overflow = false;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                size_t n;

                if (c->cmsg_len < CMSG_LEN(0))
                        break;
                if (c->cmsg_level != SOL_SOCKET)
                        continue;
                if (c->cmsg_type != SCM_RIGHTS && c->cmsg_type != SCM_PIDFD)
                        continue;

                n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < n; i++) {
                        int fd;

                        /* CMSG_DATA is not guaranteed int-aligned for the compiler. */
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
                        if (c->cmsg_type == SCM_RIGHTS && fds->n < EVD_MAX_FDS) {
                                fds->fds[fds->n++] = fd;
                                continue;
                        }
                        if (c->cmsg_type == SCM_RIGHTS)
                                overflow = true;
                        (void)safe_close(fd);
                }
        }
        return overflow;
}

/**
 * wire_recv() - receive one packet without blocking
 * @sock: connected AF_UNIX SOCK_SEQPACKET socket (borrowed)
 * @buf: where the packet's bytes go
 * @size: size of @buf; pass EVD_MAX_PACKET so that only oversize packets truncate
 * @ret_fds: the fds that came with the packet, owned by the caller; any previous
 *           content is overwritten, not closed. NULL: the caller takes no fds and
 *           any that arrive are closed.
 * @ret: what was received; see WirePacket. A zero-length packet has len 0 and
 *       eof false; it is not EOF even when it carries no fds.
 *
 * On @ret->truncated (packet larger than @size) or @ret->fds_truncated (more than
 * EVD_MAX_FDS fds, or, with @ret->fds_no_room, fewer because this process ran out
 * of fds) every fd that arrived is already closed and @ret_fds is empty; the
 * packet is consumed and the connection is still usable.
 *
 * Return: 0 with @ret and @ret_fds written; -EAGAIN if nothing is queued; other -errno.
 */
int wire_recv(int sock, void *buf, size_t size, FdList *ret_fds, WirePacket *ret) {
        WireControl control;
        struct iovec iov = {.iov_base = buf, .iov_len = size};
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        _cleanup_fd_list_ FdList fds = FD_LIST_NULL;
        bool truncated, fds_truncated, overflow, fds_no_room, eof = false;
        ssize_t n;

        /* MSG_TRUNC: return the real length, so an oversize packet is detected, not parsed. */
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0)
                return -errno;

        overflow = wire_collect_fds(&mh, &fds) > 0;
        fds_truncated = overflow || (mh.msg_flags & MSG_CTRUNC);
        fds_no_room = !overflow && (mh.msg_flags & MSG_CTRUNC) && fds.n < EVD_MAX_FDS;
        truncated = (mh.msg_flags & MSG_TRUNC) || (size_t)n > size;
        if (truncated || fds_truncated)
                fd_list_close(&fds);

        /* Control data (fds, even truncated ones, or credentials) only rides on a packet. */
        if (n == 0 && mh.msg_controllen == 0 && !(mh.msg_flags & MSG_CTRUNC)) {
                int r = wire_peer_gone(sock);
                if (r < 0)
                        return r;
                eof = r > 0;
        }

        *ret = (WirePacket){
                .len = (size_t)n,
                .eof = eof,
                .truncated = truncated,
                .fds_truncated = fds_truncated,
                .fds_no_room = fds_no_room,
        };
        if (ret_fds) {
                *ret_fds = fds;
                fd_list_init(&fds);
        }
        return 0;
}

static int64_t now_ms(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/**
 * wire_recv_blocking() - wire_recv(), waiting for a packet
 * @sock: socket, blocking or not (borrowed)
 * @buf: see wire_recv()
 * @size: see wire_recv()
 * @ret_fds: see wire_recv()
 * @ret: see wire_recv()
 * @timeout_ms: how long to wait in total; negative waits forever
 *
 * For simple clients and tests; the daemon uses wire_recv() from its event loop.
 *
 * Return: as wire_recv(), or -ETIMEDOUT.
 */
int wire_recv_blocking(int sock, void *buf, size_t size, FdList *ret_fds, WirePacket *ret,
                       int timeout_ms) {
        int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;

        for (;;) {
                struct pollfd p = {.fd = sock, .events = POLLIN};
                int r, wait = -1;

                r = wire_recv(sock, buf, size, ret_fds, ret);
                if (r != -EAGAIN && r != -EINTR)
                        return r;

                if (deadline >= 0) {
                        int64_t left = deadline - now_ms();
                        if (left <= 0)
                                return -ETIMEDOUT;
                        wait = (int)MIN(left, (int64_t)INT32_MAX);
                }
                if (poll(&p, 1, wait) < 0 && errno != EINTR)
                        return -errno;
        }
}

static int wire_sendmsg(int sock, const void *buf, size_t len, const int *fds, size_t n_fds) {
        WireControl control;
        struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

        if (len > EVD_MAX_PACKET || n_fds > EVD_MAX_FDS)
                return -EMSGSIZE;

        if (n_fds > 0) {
                struct cmsghdr *c;

                memset(&control, 0, sizeof(control));
                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }

        /* SEQPACKET sends are atomic: all of the packet or an error, never a short write. */
        if (sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                return -errno;
        return 0;
}

/**
 * wire_send() - send one packet without blocking
 * @sock: connected AF_UNIX SOCK_SEQPACKET socket (borrowed)
 * @buf: the packet's bytes (compact JSON); may be NULL if @len is 0
 * @len: at most EVD_MAX_PACKET
 * @fds: fds to pass (borrowed: the kernel duplicates them; the caller still closes its own)
 * @n_fds: at most EVD_MAX_FDS; 0 sends no control message
 *
 * Never raises SIGPIPE (MSG_NOSIGNAL).
 *
 * Return: 0; -EMSGSIZE if @len or @n_fds exceed the protocol limits (nothing sent);
 *         -EAGAIN if the peer's queue is full; -EPIPE if the peer is gone; other -errno.
 */
int wire_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds) {
        return wire_sendmsg(sock, buf, len, fds, n_fds);
}

/**
 * wire_send_blocking() - wire_send(), waiting while the peer's queue is full
 * @sock: socket, blocking or not (borrowed)
 * @buf: see wire_send()
 * @len: see wire_send()
 * @fds: see wire_send()
 * @n_fds: see wire_send()
 *
 * For simple clients and tests; waits with poll() so it blocks even on an O_NONBLOCK socket.
 *
 * Return: as wire_send(), never -EAGAIN.
 */
int wire_send_blocking(int sock, const void *buf, size_t len, const int *fds, size_t n_fds) {
        for (;;) {
                struct pollfd p = {.fd = sock, .events = POLLOUT};
                int r;

                r = wire_sendmsg(sock, buf, len, fds, n_fds);
                if (r != -EAGAIN && r != -EINTR)
                        return r;
                if (poll(&p, 1, -1) < 0 && errno != EINTR)
                        return -errno;
        }
}
