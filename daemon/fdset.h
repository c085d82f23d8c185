#pragma once
/* fdset.h - the fds a process was handed at start (across a re-exec, or from systemd's fd
 * store), by the numbers the previous image knew them by; how many fds it has open */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A bitmap of numbers: whoever takes an fd claims it, and whatever nobody claimed is
 * closed, so that every inherited fd ends up owned or closed. A number is the fd itself
 * after a re-exec; after a restart through the fd store (fdcarrier.h) the fds arrived
 * elsewhere, and @map gives each number's fd in this process. */
typedef struct FdSet {
        uint64_t *bits;
        int size; /* numbers [0, size) */
        unsigned count;
        int *map; /* NULL: number = fd; else map[number], for numbers below size */
} FdSet;

/** fdset_collect() - every open fd >= 3 of this process (probed up to the size of its fd
 * table). Call before opening anything. Return: 0, -ENOMEM. */
int fdset_collect(FdSet *s);
/** fdset_add() - put @fd (>= 0) in the set, as its own number. Return: 0, -ENOMEM. */
int fdset_add(FdSet *s, int fd);
/** fdset_add_as() - put @fd in the set as @number (>= 0; a set holds either only fds added
 * with fdset_add() or only these). Return: 0, -EEXIST (@number is taken: @fd is not added),
 * -ENOMEM. */
int fdset_add_as(FdSet *s, int number, int fd);
bool fdset_has(const FdSet *s, int number);
/** fdset_claim() - take @number out of the set. Return: whether it was in it. */
bool fdset_claim(FdSet *s, int number);
/** fdset_take() - claim @number. Return: its fd in this process (now the caller's), or -1
 * if it was not in the set. */
int fdset_take(FdSet *s, int number);
/** fdset_close_rest() - close every fd still in the set. Return: how many. */
unsigned fdset_close_rest(FdSet *s);
void fdset_done(FdSet *s);

/* What fdset_probe_open() last counted: reused while younger than 100 times what that
 * probe took, so that however often the count is asked for (a batch of `stats` requests),
 * probing takes at most 1% of the process's time. */
typedef struct FdCount {
        uint64_t at_ns; /* CLOCK_MONOTONIC; 0: never probed */
        uint64_t cost_ns;
        unsigned n;
} FdCount;

/** fdset_count_open() - how many fds this process has open: the kernel's count (Linux 6.2
 * and later), else fdset_probe_open()'s. Return: 0 and *@ret, -errno. */
int fdset_count_open(FdCount *c, unsigned *ret);
/** fdset_probe_open() - how many fds this process has open, probed number by number up to
 * the size of its fd table (4-9 ms at 10,000 fds), or @c's count while it is recent
 * enough. Return: 0 and *@ret, -errno. */
int fdset_probe_open(FdCount *c, unsigned *ret);
