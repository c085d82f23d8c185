/* pool.c - a slab allocator: objects in size-aligned chunks, each with its own free list
 *
 * A chunk hands out its never-used objects in order (`used`), so memory becomes resident
 * as objects are made, not when the chunk is mapped; freed objects go on the chunk's own
 * free list (linked through their first word) and are taken first. Chunks with room are
 * on the pool's `partial` list; a full one is off it until an object of it is freed. When
 * a chunk's last object is freed it is unmapped, unless the pool has no spare yet: one
 * empty chunk is kept so that a count going back and forth across a chunk boundary does
 * not map and unmap each time.
 */

#include "pool.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "macro.h"

struct PoolChunk {
        ListNode link;          /* pool->partial, while it has room */
        void *free;             /* its freed objects */
        size_t used;            /* objects handed out of it in order (never-used ones follow) */
        size_t live;
        uint64_t objects[];     /* from pool->offset on, aligned to pool->align */
};

/* ASan and valgrind catch use-after-free only in memory that really is freed. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_ENABLED 0
#else
#define POOL_ENABLED 1
#endif

void pool_init(Pool *p, size_t size, size_t align) {
        size_t offset;

        assert(size >= sizeof(void *));
        align = MAX(align, (size_t)8);
        assert((align & (align - 1)) == 0 && align <= 4096);
        size = (size + align - 1) & ~(align - 1);
        offset = (offsetof(PoolChunk, objects) + align - 1) & ~(align - 1);
        *p = (Pool){
                .size = size,
                .align = align,
                .offset = offset,
                .per_chunk = (POOL_CHUNK_BYTES - offset) / size,
                .malloc_only = !POOL_ENABLED || getenv("EVD_UNDER_VALGRIND"),
        };
        list_init(&p->partial);
}

static PoolChunk *chunk_of(void *obj) {
        return (PoolChunk *)((uintptr_t)obj & ~(uintptr_t)(POOL_CHUNK_BYTES - 1));
}

/* Twice the size mapped, the unaligned head and tail unmapped again. */
static PoolChunk *chunk_map(Pool *p) {
        uintptr_t base, start;
        void *m = mmap(NULL, 2 * POOL_CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (m == MAP_FAILED)
                return NULL;
        base = (uintptr_t)m;
        start = (base + POOL_CHUNK_BYTES - 1) & ~(uintptr_t)(POOL_CHUNK_BYTES - 1);
        if (start > base)
                (void)munmap(m, start - base);
        if (start + POOL_CHUNK_BYTES < base + 2 * POOL_CHUNK_BYTES)
                (void)munmap((void *)(start + POOL_CHUNK_BYTES), base + POOL_CHUNK_BYTES - start);
        p->chunks++;
        return (PoolChunk *)start; /* zero-filled: no list links, nothing used */
}

static void chunk_unmap(Pool *p, PoolChunk *c) {
        (void)munmap(c, POOL_CHUNK_BYTES);
        p->chunks--;
}

static bool chunk_full(const Pool *p, const PoolChunk *c) {
        return !c->free && c->used == p->per_chunk;
}

void pool_deinit(Pool *p) {
        assert(p->live == 0);
        if (p->spare)
                chunk_unmap(p, p->spare);
        p->spare = NULL;
        list_init(&p->partial);
}

void *pool_alloc(Pool *p) {
        PoolChunk *c;
        void *obj;

        if (p->malloc_only) {
                if (posix_memalign(&obj, p->align, p->size) != 0)
                        return NULL;
                memset(obj, 0, p->size);
                p->live++;
                return obj;
        }
        if (list_first(&p->partial))
                c = container_of(list_first(&p->partial), PoolChunk, link);
        else {
                c = p->spare ? p->spare : chunk_map(p);
                if (!c)
                        return NULL;
                p->spare = NULL;
                list_prepend(&p->partial, &c->link);
        }
        if (c->free) {
                obj = c->free;
                memcpy(&c->free, obj, sizeof(c->free));
        } else
                obj = (char *)c + p->offset + c->used++ * p->size;
        c->live++;
        p->live++;
        if (chunk_full(p, c))
                list_remove(&p->partial, &c->link);
        memset(obj, 0, p->size);
        return obj;
}

void pool_put(Pool *p, void *obj) {
        PoolChunk *c;
        bool was_full;

        if (!obj)
                return;
        assert(p->live > 0);
        p->live--;
        if (p->malloc_only) {
                free(obj);
                return;
        }
        c = chunk_of(obj);
        assert(c->live > 0);
        was_full = chunk_full(p, c);
        memcpy(obj, &c->free, sizeof(c->free));
        c->free = obj;
        c->live--;
        if (was_full)
                list_prepend(&p->partial, &c->link);
        if (c->live > 0)
                return;
        list_remove(&p->partial, &c->link);
        if (p->spare) {
                chunk_unmap(p, c);
                return;
        }
        /* Every object is free: start it over, in order, as a fresh chunk would. */
        c->free = NULL;
        c->used = 0;
        p->spare = c;
}
