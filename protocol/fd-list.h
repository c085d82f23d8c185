#pragma once
/* fd-list.h - the file descriptors that arrived with one packet, each consumable once */

#include <stdint.h>

#include "protocol.h"

/*
 * fds[0..n) are owned by the list until taken; bit i of @taken marks fds[i] as
 * handed out (ownership moved to a request). Entries at or beyond @n are unused.
 */
typedef struct FdList {
        int fds[EVD_MAX_FDS];
        unsigned n;
        uint32_t taken;
} FdList;

#define FD_LIST_NULL                                                                               \
        { .n = 0, .taken = 0 }

void fd_list_init(FdList *l);
int fd_list_take(FdList *l, int64_t index, int *ret_fd);
int fd_list_peek(const FdList *l, int64_t index, int *ret_fd);
unsigned fd_list_remaining(const FdList *l);
void fd_list_close(FdList *l);

/* fd_list_close() has the cleanup signature: _cleanup_fd_list_ FdList fds = FD_LIST_NULL; */
#define _cleanup_fd_list_ __attribute__((cleanup(fd_list_close)))
