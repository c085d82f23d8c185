#pragma once
/* fdset.h - the fds a process found open at start (inherited across a re-exec) */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A bitmap: whoever takes an fd claims it, and whatever nobody claimed is closed, so that
 * every inherited fd ends up owned or closed. */
typedef struct FdSet {
        uint64_t *bits;
        int size; /* fds [0, size) */
        unsigned count;
} FdSet;

/** fdset_collect() - every open fd >= 3 of this process (probed up to the size of its fd
 * table). Call before opening anything. Return: 0, -ENOMEM. */
int fdset_collect(FdSet *s);
/** fdset_add() - put @fd (>= 0) in the set. Return: 0, -ENOMEM. */
int fdset_add(FdSet *s, int fd);
bool fdset_has(const FdSet *s, int fd);
/** fdset_claim() - take @fd out of the set. Return: whether it was in it. */
bool fdset_claim(FdSet *s, int fd);
/** fdset_close_rest() - close every fd still in the set. Return: how many. */
unsigned fdset_close_rest(FdSet *s);
void fdset_done(FdSet *s);
