/* pool.c - objects in chunks, handed out in order, freed ones reused first
 *
 * A chunk's objects are handed out one after the other (`used`), so that memory becomes
 * resident as objects are made, not when the chunk is: a 4,096-object chunk of a daemon
 * holding ten watches costs ten objects' pages. Freed objects go on a free list through
 * their first word and are taken before any new one.
 */

#include "pool.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


struct PoolChunk {
        PoolChunk *next;
        /* 8 bytes, so that the objects after it are 8-aligned like malloc's would be for
         * their members (uint64_t and pointers). */
        uint64_t objects[];
};

/* ASan and valgrind catch use-after-free only in memory that really is freed. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_ENABLED 0
#else
#define POOL_ENABLED 1
#endif

void pool_init(Pool *p, size_t size) {
        assert(size >= sizeof(void *));
        *p = (Pool){
                .size = (size + 7) & ~(size_t)7,
                .used = POOL_CHUNK_OBJECTS, /* no chunk yet: the first alloc makes one */
                .malloc_only = !POOL_ENABLED || getenv("EVD_UNDER_VALGRIND"),
        };
}

void pool_deinit(Pool *p) {
        assert(p->live == 0);
        while (p->chunks) {
                PoolChunk *c = p->chunks;
                p->chunks = c->next;
                free(c);
        }
        p->free = NULL;
        p->used = POOL_CHUNK_OBJECTS;
}

void *pool_alloc(Pool *p) {
        void *obj;

        if (p->malloc_only) {
                obj = calloc(1, p->size);
                if (obj)
                        p->live++;
                return obj;
        }
        if (p->free) {
                obj = p->free;
                memcpy(&p->free, obj, sizeof(p->free));
        } else {
                if (p->used == POOL_CHUNK_OBJECTS) {
                        /* malloc, not calloc: objects are zeroed as they are handed out,
                         * and large chunks come as untouched (not yet resident) pages. */
                        PoolChunk *c = malloc(sizeof(*c) + POOL_CHUNK_OBJECTS * p->size);

                        if (!c)
                                return NULL;
                        c->next = p->chunks;
                        p->chunks = c;
                        p->used = 0;
                }
                obj = (char *)p->chunks->objects + p->used++ * p->size;
        }
        memset(obj, 0, p->size);
        p->live++;
        return obj;
}

void pool_put(Pool *p, void *obj) {
        if (!obj)
                return;
        assert(p->live > 0);
        p->live--;
        if (p->malloc_only) {
                free(obj);
                return;
        }
        memcpy(obj, &p->free, sizeof(p->free));
        p->free = obj;
}
