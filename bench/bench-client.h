#pragma once
/* bench-client.h - the raw client side the daemon benchmarks share (fairness, reexec-gap,
 * evd-bench's fairness scenario): they talk to evd without libevd, so that only the daemon
 * is measured */

#include <stddef.h>
#include <stdint.h>

/** bench_die() - "PROGRAM: @what: strerror(errno)" on stderr, exit 1 (_exit in a child). */
_Noreturn void bench_die(const char *what);
/** bench_forked() - tell bench_die() this is a forked child: the parent's atexit() handlers
 * (evd-bench stops its daemons in one) and stdio buffers are not the child's to run. */
void bench_forked(void);
/** bench_now_ns() - CLOCK_MONOTONIC in ns. */
uint64_t bench_now_ns(void);
/** bench_connect() - a SEQPACKET connection to @path; dies on failure. */
int bench_connect(const char *path);
/** bench_send() - one packet of @len bytes with @n fds (borrowed, at most 32); dies on failure. */
void bench_send(int fd, const char *buf, size_t len, const int *fds, size_t n);
