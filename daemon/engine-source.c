/* engine-source.c - a source's memory and lifetime, and what applies to every kind of source
 *
 * Sources come from a pool of 64-byte-aligned structs (timers by the million must not pay
 * malloc each), or, under sanitizers and valgrind, from malloc() behind a link so that
 * engine_free() can still release the ones the user holds. A source's memory lives until its
 * last reference (engine-internal.h). Enabling, disabling and freeing dispatch to the
 * source's kind: engine-io.c and the backends, engine-timer.c, engine-signal.c,
 * engine-defer.c.
 */

#include "engine-internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

#define SOURCE_POOL_CHUNK 1024

struct SourcePoolChunk {
        SourcePoolChunk *next;
        EngineSource sources[SOURCE_POOL_CHUNK];
};

/* As aligned as a source, so that the source behind it is too. */
typedef struct __attribute__((aligned(64))) SourceLink {
        struct SourceLink *prev, *next;
} SourceLink;

/* ASan and valgrind catch use-after-free only in memory that really is freed. */
#if defined(__SANITIZE_ADDRESS__)
#define SOURCE_POOL_ENABLED 0
#else
#define SOURCE_POOL_ENABLED 1
#endif

void engine_pool_init(Engine *e) {
        e->pool_enabled = SOURCE_POOL_ENABLED && !getenv("EVD_UNDER_VALGRIND");
}

void engine_pool_free(Engine *e) {
        while (e->malloced) {
                SourceLink *l = e->malloced;
                e->malloced = l->next;
                free(l);
        }
        while (e->chunks) {
                SourcePoolChunk *c = e->chunks;
                e->chunks = c->next;
                free(c);
        }
}

/* A chunk's sources go on the free list; writing each one's link touches every page, so
 * the chunk is faulted in here, once, not source by source later. */
static int pool_grow(Engine *e) {
        SourcePoolChunk *c;

        if (posix_memalign((void **)&c, _Alignof(SourcePoolChunk), sizeof(*c)) != 0)
                return -ENOMEM;
        memset(c, 0, sizeof(*c));
        c->next = e->chunks;
        e->chunks = c;
        for (size_t i = SOURCE_POOL_CHUNK; i-- > 0;) {
                c->sources[i].userdata = e->free_sources;
                e->free_sources = &c->sources[i];
        }
        e->pool_free += SOURCE_POOL_CHUNK;
        return 0;
}

int engine_reserve(Engine *e, size_t n, EngineClock clock) {
        int r;

        if (!e || (unsigned)clock >= _ENGINE_CLOCK_MAX || n > UINT32_MAX)
                return -EINVAL;
        while (e->pool_enabled && e->pool_free < n) {
                r = pool_grow(e);
                if (r < 0)
                        return r;
        }
        return timer_heap_reserve(&e->timers[clock], (uint32_t)n);
}

EngineSource *engine_source_alloc(Engine *e, SourceType type) {
        EngineSource *s;

        if (!e->pool_enabled) {
                SourceLink *l;

                if (posix_memalign((void **)&l, _Alignof(SourceLink), sizeof(SourceLink) + sizeof(*s)) != 0)
                        return NULL;
                l->prev = NULL;
                l->next = e->malloced;
                if (l->next)
                        l->next->prev = l;
                e->malloced = l;
                s = (EngineSource *)(l + 1);
        } else {
                if (!e->free_sources && pool_grow(e) < 0)
                        return NULL;
                s = e->free_sources;
                e->free_sources = s->userdata;
                e->pool_free--;
        }
        memset(s, 0, sizeof(*s));
        s->engine = e;
        s->type = type;
        s->refs = 1;
        return s;
}

static void source_release(EngineSource *s) {
        Engine *e = s->engine;

        if (s->caller_memory)
                return;
        if (e->pool_enabled) {
                s->userdata = e->free_sources;
                e->free_sources = s;
                e->pool_free++;
        } else {
                SourceLink *l = (SourceLink *)s - 1;
                if (l->prev)
                        l->prev->next = l->next;
                else
                        e->malloced = l->next;
                if (l->next)
                        l->next->prev = l->prev;
                free(l);
        }
}

/* Inline in source_free(): freeing a timer is a cost that a burst of timers pays each. */
static inline void source_unref(EngineSource *s) {
        assert(s->refs > 0);
        if (--s->refs == 0)
                source_release(s);
}

void engine_source_unref(EngineSource *s) {
        source_unref(s);
}

void engine_for_each_allocated_io(Engine *e, void (*fn)(Engine *e, EngineSource *s, void *data), void *data) {
        /* Pool entries on the free list have refs == 0 (released at the last unref). */
        for (SourcePoolChunk *c = e->chunks; c; c = c->next)
                for (size_t i = 0; i < SOURCE_POOL_CHUNK; i++)
                        if (c->sources[i].refs > 0 && c->sources[i].type == SOURCE_IO)
                                fn(e, &c->sources[i], data);
        for (SourceLink *l = e->malloced, *next; l; l = next) {
                EngineSource *s = (EngineSource *)(l + 1);

                next = l->next; /* @fn may release @s */
                if (s->type == SOURCE_IO)
                        fn(e, s, data);
        }
}


int source_set_enabled(EngineSource *s, bool enabled) {
        Engine *e;
        int r = 0;

        if (!s || s->dead)
                return -EINVAL;
        if (s->enabled == enabled)
                return 0;
        e = s->engine;
        switch (s->type) {
        case SOURCE_IO:
                s->enabled = enabled;
                if (enabled) {
                        r = e->backend->io_start(e, s);
                        if (r < 0)
                                s->enabled = false;
                } else
                        e->backend->io_stop(e, s);
                return r;
        case SOURCE_TIMER:
                if (enabled) {
                        r = engine_timer_queue(e, s);
                        if (r < 0)
                                return r;
                } else {
                        engine_timer_unqueue(e, s);
                        engine_timer_settled(e, s);
                }
                s->enabled = enabled;
                return 0;
        case SOURCE_DEFER:
                s->enabled = enabled;
                if (enabled)
                        engine_defer_enable(e, s);
                else
                        engine_defer_unlink(e, s);
                return 0;
        case SOURCE_SIGNAL:
                s->enabled = enabled;
                return 0;
        default:
                return -EINVAL;
        }
}

bool source_get_enabled(EngineSource *s) {
        return s && !s->dead && s->enabled;
}

void *source_get_userdata(EngineSource *s) {
        return s ? s->userdata : NULL;
}

void source_set_userdata(EngineSource *s, void *userdata) {
        if (s)
                s->userdata = userdata;
}

Engine *source_get_engine(EngineSource *s) {
        return s ? s->engine : NULL;
}

EngineSource *source_free(EngineSource *s) {
        Engine *e;

        if (!s || s->dead)
                return NULL;
        e = s->engine;
        switch (s->type) {
        case SOURCE_IO:
                e->fd_table[s->io.fd] = NULL;
                s->dead = true;
                e->backend->io_stop(e, s);
                s->enabled = false;
                e->stats.io_sources--;
                break;
        case SOURCE_TIMER:
                engine_timer_unqueue(e, s);
                engine_timer_settled(e, s);
                e->stats.timer_sources--;
                break;
        case SOURCE_SIGNAL:
                engine_signal_detach(e, s);
                break;
        case SOURCE_DEFER:
                if (s->enabled)
                        engine_defer_unlink(e, s);
                break;
        default:
                break;
        }
        s->dead = true;
        s->enabled = false;
        source_unref(s);
        return NULL;
}
