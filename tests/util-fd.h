#pragma once
/* util-fd.h - tests: the pipes and eventfds tests watch, and reading or writing them */

/** make_pipe() - a CLOEXEC, non-blocking pipe in @p; fails the test on error. */
void make_pipe(int p[2]);
/** close_pair() - close both ends of @p (either may be -1) and set them to -1. */
void close_pair(int p[2]);
/** write_byte() - write one byte to @fd (makes a pipe readable). */
void write_byte(int fd);
/** drain_fd() - read @fd (non-blocking) until it has nothing more. */
void drain_fd(int fd);
/** make_eventfd() - a CLOEXEC, non-blocking eventfd at 0. */
int make_eventfd(void);
/** poke_eventfd() - add 1 to eventfd @fd (makes it readable). */
void poke_eventfd(int fd);
