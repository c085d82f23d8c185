#pragma once
/* wire.h - one AF_UNIX SOCK_SEQPACKET packet with its SCM_RIGHTS fds */

#include <stdbool.h>
#include <stddef.h>

#include "fd-list.h"

/*
 * What one wire_recv() saw. @len is the packet's real size as the kernel
 * reports it (MSG_TRUNC), so on @truncated it is larger than the buffer and
 * the buffer holds only its head: do not parse it. On @truncated or
 * @fds_truncated every fd that arrived has already been closed. @fds_no_room
 * (with @fds_truncated) says why fds were lost: not because the peer sent more
 * than EVD_MAX_FDS, but because the receiving process's fd table was full
 * (EMFILE), so fewer fds arrived than the buffer had room for.
 */
typedef struct WirePacket {
        size_t len;
        bool eof;
        bool truncated;
        bool fds_truncated;
        bool fds_no_room;
} WirePacket;

int wire_recv(int sock, void *buf, size_t size, FdList *ret_fds, WirePacket *ret);
int wire_recv_blocking(int sock, void *buf, size_t size, FdList *ret_fds, WirePacket *ret,
                       int timeout_ms);
int wire_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds);
int wire_send_blocking(int sock, const void *buf, size_t len, const int *fds, size_t n_fds);
