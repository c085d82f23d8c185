#pragma once
/* pool.h - fixed-size objects without malloc's per-object header and size rounding */

#include <stdbool.h>
#include <stddef.h>

#include "list.h"

typedef struct PoolChunk PoolChunk;

/* glibc rounds a 74-byte request up to a 96-byte chunk: a pool hands out objects of their
 * own size (rounded to 8), from POOL_CHUNK_BYTES chunks aligned to their size, so that an
 * object's chunk is its address rounded down. A chunk whose objects are all freed is
 * unmapped (one is kept as a spare), so that the memory of a million timers, once they are
 * gone, goes back to the system as it did with malloc. Under sanitizers and valgrind every
 * object is calloc()ed and free()d, where use-after-free can be seen. */
typedef struct Pool {
        size_t size;        /* of one object */
        size_t align;       /* of every object */
        size_t offset;      /* of a chunk's first object */
        size_t per_chunk;   /* objects in one chunk */
        List partial;       /* PoolChunk.link: chunks with room (freed or never used objects) */
        PoolChunk *spare;   /* an empty chunk kept for the next allocation, or NULL */
        size_t live;        /* objects handed out and not put back */
        size_t chunks;      /* mapped, the spare included */
        bool malloc_only;
} Pool;

#define POOL_CHUNK_BYTES ((size_t)256 * 1024)

/** pool_init() - an empty pool of objects of @size bytes (at least a pointer's), each
 * aligned to @align (a power of two, 8 to 4096: a type's _Alignof, at least 8). The pool
 * must not move afterwards (its list head points at itself). */
void pool_init(Pool *p, size_t size, size_t align);
/** pool_deinit() - release the spare chunk; every object must have been put back (which
 * released the other chunks). Safe twice. */
void pool_deinit(Pool *p);
/** pool_alloc() - a zeroed object, aligned as pool_init() said. Return: NULL when out of
 * memory. */
void *pool_alloc(Pool *p);
/** pool_put() - give @obj back. NULL-safe. */
void pool_put(Pool *p, void *obj);
