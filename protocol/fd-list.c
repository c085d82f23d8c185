/*
 * fd-list.c - ownership of the fds received with one packet.
 *
 * A packet's fds are named by index from its JSON ("fd": 0 is the first). A
 * request that uses one takes it (ownership moves out), and each index can be
 * taken once only, so two requests of one batch cannot both claim fd 0 and
 * close it twice. Whatever is left when the packet has been handled is closed
 * by fd_list_close(): fds are never kept unless a request asked for them.
 */

#include <errno.h>
#include <string.h>

#include "fd-list.h"
#include "macro.h"

/**
 * fd_list_init() - make @l an empty list
 * @l: list to initialise (any previous content is forgotten, not closed)
 */
void fd_list_init(FdList *l) {
        l->n = 0;
        l->taken = 0;
}

static int fd_list_check(const FdList *l, int64_t index) {
        /* A JSON integer is int64: compare in that width before narrowing. */
        if (index < 0 || index >= (int64_t)l->n)
                return -ERANGE;
        if (l->taken & (UINT32_C(1) << index))
                return -EALREADY;
        return 0;
}

/**
 * fd_list_take() - move ownership of one fd to the caller
 * @l: list
 * @index: index as named in the request ("fd": index)
 * @ret_fd: the fd, now owned (and to be closed) by the caller
 *
 * Return: 0, -ERANGE if @index < 0 or >= n, -EALREADY if already taken.
 */
int fd_list_take(FdList *l, int64_t index, int *ret_fd) {
        int r;

        r = fd_list_check(l, index);
        if (r < 0)
                return r;
        l->taken |= UINT32_C(1) << index;
        *ret_fd = l->fds[index];
        return 0;
}

/**
 * fd_list_peek() - look at one fd without taking it
 * @l: list
 * @index: index as named in the request
 * @ret_fd: the fd, still owned by the list (valid until fd_list_close())
 *
 * Return: 0, -ERANGE if @index < 0 or >= n, -EALREADY if already taken.
 */
int fd_list_peek(const FdList *l, int64_t index, int *ret_fd) {
        int r;

        r = fd_list_check(l, index);
        if (r < 0)
                return r;
        *ret_fd = l->fds[index];
        return 0;
}

/**
 * fd_list_remaining() - number of fds not taken yet
 * @l: list
 *
 * Return: the count, 0 for an empty list.
 */
unsigned fd_list_remaining(const FdList *l) {
        return l->n - (unsigned)__builtin_popcount(l->taken);
}

/**
 * fd_list_close() - close every fd not taken and empty the list
 * @l: list; safe to call twice, usable as a cleanup function
 */
void fd_list_close(FdList *l) {
        for (unsigned i = 0; i < l->n; i++)
                if (!(l->taken & (UINT32_C(1) << i)))
                        (void)safe_close(l->fds[i]);
        l->n = 0;
        l->taken = 0;
}
