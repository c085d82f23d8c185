#pragma once
/* pool.h - fixed-size objects without malloc's per-object header and size rounding */

#include <stdbool.h>
#include <stddef.h>

typedef struct PoolChunk PoolChunk;

/* glibc rounds an 88-byte request up to a 96-byte chunk, a 72-byte one to 80: a pool hands
 * out objects of their own size (a multiple of 8), from chunks of POOL_CHUNK_OBJECTS.
 * Freed objects are kept for the next allocation, never given back: what a million timers
 * took stays the daemon's (the engine keeps its sources so too). Under sanitizers and
 * valgrind every object is calloc()ed and free()d, where use-after-free can be seen. */
typedef struct Pool {
        size_t size;       /* of one object */
        void *free;        /* freed objects, linked through their first word */
        PoolChunk *chunks; /* newest first */
        size_t used;       /* objects handed out of the newest chunk */
        size_t live;       /* objects handed out and not put back */
        bool malloc_only;
} Pool;

#define POOL_CHUNK_OBJECTS 4096

/** pool_init() - an empty pool of objects of @size bytes (at least a pointer's). */
void pool_init(Pool *p, size_t size);
/** pool_deinit() - release the chunks; every object must have been put back. Safe twice. */
void pool_deinit(Pool *p);
/** pool_alloc() - a zeroed object, aligned to 8. Return: NULL when out of memory. */
void *pool_alloc(Pool *p);
/** pool_put() - give @obj back. NULL-safe. */
void pool_put(Pool *p, void *obj);
