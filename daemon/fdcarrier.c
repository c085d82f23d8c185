/* fdcarrier.c - fds with their numbers through a stream socket pair (fdcarrier.h)
 *
 * A message is fixed-size: a 32-bit count, then FDCARRIER_CHUNK 32-bit numbers (the first
 * count used), with the count's fds attached. The reader asks for exactly one message at a
 * time, so a read never reaches into the next one, whose fds are attached to its first byte.
 */

#include "fdcarrier.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"

typedef struct Chunk {
        uint32_t count;
        int32_t numbers[FDCARRIER_CHUNK];
} Chunk;

typedef union ChunkControl {
        struct cmsghdr align;
        char buf[CMSG_SPACE(FDCARRIER_CHUNK * sizeof(int))];
} ChunkControl;

int fdcarrier_new(size_t n, int *ret_write, int *ret_read) {
        int sp[2], size;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) < 0)
                return -errno;
        /* Each message costs its buffer about 2.3 KiB (1 KiB of numbers, skb overhead); the
         * kernel caps this at twice net.core.wmem_max. Asking is all an unprivileged process
         * can do: a carrier too small says EAGAIN, and the caller stops the usual way. */
        size = (int)MIN((n / FDCARRIER_CHUNK + 1) * 4096 + 65536, (size_t)INT32_MAX / 2);
        (void)setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        (void)setsockopt(sp[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        *ret_write = sp[0];
        *ret_read = sp[1];
        return 0;
}

int fdcarrier_send(int write_fd, const int *fds, size_t n) {
        for (size_t at = 0; at < n; at += FDCARRIER_CHUNK) {
                Chunk chunk = { .count = (uint32_t)MIN(n - at, (size_t)FDCARRIER_CHUNK) };
                ChunkControl control;
                struct iovec iov = { .iov_base = &chunk, .iov_len = sizeof(chunk) };
                struct msghdr m = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buf,
                        .msg_controllen = CMSG_SPACE(chunk.count * sizeof(int)),
                };
                struct cmsghdr *h = CMSG_FIRSTHDR(&m);
                ssize_t sent;

                memset(&control, 0, sizeof(control));
                for (uint32_t i = 0; i < chunk.count; i++)
                        chunk.numbers[i] = fds[at + i];
                h->cmsg_level = SOL_SOCKET;
                h->cmsg_type = SCM_RIGHTS;
                h->cmsg_len = CMSG_LEN(chunk.count * sizeof(int));
                memcpy(CMSG_DATA(h), fds + at, chunk.count * sizeof(int));
                do
                        sent = sendmsg(write_fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
                while (sent < 0 && errno == EINTR);
                if (sent < 0)
                        return -errno;
                if ((size_t)sent != sizeof(chunk))
                        return -EAGAIN; /* a partial message: the buffer is full */
        }
        return 0;
}

/* The fds of one message, closed unless they all go into @set. */
static int take_chunk(struct msghdr *m, const Chunk *chunk, FdSet *set) {
        struct cmsghdr *h = CMSG_FIRSTHDR(m);
        size_t n = 0;
        int *fds = NULL, r = 0;

        if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
                fds = (int *)CMSG_DATA(h);
                n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        }
        if ((m->msg_flags & (MSG_CTRUNC | MSG_TRUNC)) || chunk->count == 0 || chunk->count > FDCARRIER_CHUNK ||
            n != chunk->count)
                r = -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                int fd;

                memcpy(&fd, fds + i, sizeof(fd));
                if (r >= 0 && chunk->numbers[i] >= 0)
                        r = fdset_add_as(set, chunk->numbers[i], fd);
                else if (r >= 0)
                        r = -EBADMSG;
                if (r == -EEXIST)
                        r = -EBADMSG;
                if (r < 0)
                        (void)close(fd); /* this one, and every one after it */
        }
        return r;
}

int fdcarrier_receive(int read_fd, FdSet *ret) {
        FdSet set = { 0 };
        int r = 0;

        for (;;) {
                Chunk chunk = { 0 };
                ChunkControl control;
                struct iovec iov = { .iov_base = &chunk, .iov_len = sizeof(chunk) };
                struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                                    .msg_controllen = sizeof(control.buf) };
                ssize_t got = recvmsg(read_fd, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT | MSG_WAITALL);

                if (got < 0 && errno == EINTR)
                        continue;
                if (got == 0)
                        break; /* the writer is gone and everything is read */
                if (got < 0) {
                        r = errno == EAGAIN ? -EBADMSG : -errno; /* the writer never finished */
                        break;
                }
                if ((size_t)got != sizeof(chunk))
                        m.msg_flags |= MSG_TRUNC; /* refused, and its fds closed */
                if ((r = take_chunk(&m, &chunk, &set)) < 0)
                        break;
        }
        if (r < 0) {
                (void)fdset_close_rest(&set);
                fdset_done(&set);
                *ret = (FdSet){ 0 };
                return r;
        }
        *ret = set;
        return (int)set.count;
}
