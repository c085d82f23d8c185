#pragma once
/* util-fd.h - tests: the pipes, sockets and eventfds tests watch, and reading or writing them */

#include <stdbool.h>
#include <stddef.h>

/** make_pipe() - a CLOEXEC, non-blocking pipe in @p; fails the test on error. */
void make_pipe(int p[2]);
/** make_socketpair() - a CLOEXEC, non-blocking AF_UNIX socketpair of @type in @p. */
void make_socketpair(int type, int p[2]);
/** close_pair() - close both ends of @p (either may be -1) and set them to -1. */
void close_pair(int p[2]);
/** close_pairp() - the cleanup function of _cleanup_pair_: close both ends of *@p. */
void close_pairp(int (*p)[2]);
#define _cleanup_pair_ _cleanup_(close_pairp)
#define PAIR_NULL { -1, -1 }
/** write_byte() - write one byte to @fd (makes a pipe readable). */
void write_byte(int fd);
/** drain_fd() - read @fd (non-blocking) until it has nothing more. Return: the bytes read. */
size_t drain_fd(int fd);
/** make_eventfd() - a CLOEXEC, non-blocking eventfd at 0. */
int make_eventfd(void);
/** poke_eventfd() - add 1 to eventfd @fd (makes it readable). */
void poke_eventfd(int fd);
/** pipe_at() - put a fresh pipe's read end at fd number @fd (which must be free). Return: the
 * write end. */
int pipe_at(int fd);
/** tcp_pair() - a connected loopback TCP pair: [0] the client, [1] the accepted side. */
void tcp_pair(int p[2]);
/** raise_nofile() - soft RLIMIT_NOFILE to the hard limit. Return: how many fds a test may
 * open (the limit less headroom for the engine's, check's and valgrind's own). */
unsigned raise_nofile(void);
/** count_fds() - open fds of this process (from /proc/self/fd). */
int count_fds(void);
bool fd_is_open(int fd);
bool fd_is_cloexec(int fd);
/** seqpacket_pair() - a CLOEXEC, non-blocking AF_UNIX SOCK_SEQPACKET pair in @sv. */
void seqpacket_pair(int sv[2]);
/** raw_send() - one packet of @len bytes with @fd repeated @n_fds times (at most 300), by
 * sendmsg() without wire_send()'s limits, to play a hostile or buggy peer. Return: 0 or
 * -errno. */
int raw_send(int sock, const void *buf, size_t len, int fd, size_t n_fds);
/** unix_listener() - a CLOEXEC AF_UNIX socket of @type bound to @path, listening. */
int unix_listener(const char *path, int type);
