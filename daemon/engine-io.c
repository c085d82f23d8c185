/* engine-io.c - io sources: the fd table, registration, modify and arm
 *
 * fd_table[fd] is the one live io source on fd, so a second one is -EEXIST on both backends
 * and epoll's events are looked up, never trusted as pointers. The backend turns "poll this
 * fd for these events in this mode" into kernel requests; what it sees comes back through
 * engine_io_event() (inline, engine-internal.h), which filters it against what is asked now
 * and disarms oneshots.
 */

#include "engine-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "macro.h"

/* Doubling, but never past the fd limit: no fd the process opens from now on reaches it,
 * and at 20,000 fds the last doubling would have been 13 bytes per watch, 5 of them never
 * used. (A limit lowered since leaves higher fds open: @fd + 1 still fits them.) */
static int fd_table_reserve(Engine *e, int fd) {
        struct rlimit rl;
        size_t size;
        EngineSource **t;

        if ((size_t)fd < e->fd_table_size)
                return 0;
        size = MAX(e->fd_table_size * 2, (size_t)64);
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < size)
                size = (size_t)rl.rlim_cur;
        size = MAX(size, (size_t)fd + 1);
        t = realloc(e->fd_table, size * sizeof(*t));
        if (!t)
                return -ENOMEM;
        memset(t + e->fd_table_size, 0, (size - e->fd_table_size) * sizeof(*t));
        e->fd_table = t;
        e->fd_table_size = size;
        return 0;
}

void engine_for_each_io(Engine *e, void (*fn)(Engine *e, EngineSource *s, void *data), void *data) {
        for (size_t fd = 0; fd < e->fd_table_size; fd++)
                if (e->fd_table[fd])
                        fn(e, e->fd_table[fd], data);
}

static int add_io(Engine *e, EngineSource **ret, int fd, uint32_t events, EngineMode mode, engine_io_cb cb,
                  void *userdata, bool validate) {
        EngineSource *s;
        int r;

        if (!e || !cb || (events & ~(uint32_t)ENGINE_EVENTS_REQUESTABLE) || (unsigned)mode >= _ENGINE_MODE_MAX)
                return -EINVAL;
        if (fd < 0)
                return -EBADF;
        if (engine_io_lookup(e, fd))
                return -EEXIST;
        r = fd_table_reserve(e, fd);
        if (r < 0)
                return r;
        if (validate && e->backend->io_validate) {
                r = e->backend->io_validate(e, fd);
                if (r < 0)
                        return r;
        }
        s = engine_source_alloc(e, SOURCE_IO);
        if (!s)
                return -ENOMEM;
        s->userdata = userdata;
        s->io.cb = cb;
        s->io.fd = fd;
        s->io.events = events;
        s->io.mode = (uint8_t)mode;
        s->io.generation = ++e->next_generation;
        s->enabled = true;
        e->fd_table[fd] = s;
        r = e->backend->io_start(e, s);
        if (r < 0) {
                e->fd_table[fd] = NULL;
                s->enabled = false;
                s->dead = true;
                engine_source_unref(s);
                return r;
        }
        e->stats.io_sources++;
        if (ret)
                *ret = s;
        return 0;
}

int engine_add_io(Engine *e, EngineSource **ret, int fd, uint32_t events, EngineMode mode,
                  engine_io_cb cb, void *userdata) {
        return add_io(e, ret, fd, events, mode, cb, userdata, true);
}

int engine_adopt_io(Engine *e, EngineSource **ret, int fd, uint32_t events, EngineMode mode,
                    engine_io_cb cb, void *userdata) {
        return add_io(e, ret, fd, events, mode, cb, userdata, false);
}

int source_io_modify(EngineSource *s, uint32_t events, EngineMode mode) {
        uint32_t old_events;
        uint8_t old_mode;
        int r;

        if (!s || s->type != SOURCE_IO || s->dead || (events & ~(uint32_t)ENGINE_EVENTS_REQUESTABLE) ||
            (unsigned)mode >= _ENGINE_MODE_MAX)
                return -EINVAL;
        if (s->io.events == events && s->io.mode == mode)
                return 0;
        old_events = s->io.events;
        old_mode = s->io.mode;
        s->io.events = events;
        s->io.mode = (uint8_t)mode;
        if (!s->enabled)
                return 0;
        r = s->engine->backend->io_update(s->engine, s);
        if (r < 0) {
                /* A failed request changes nothing. */
                s->io.events = old_events;
                s->io.mode = old_mode;
        }
        return r;
}

int source_io_arm(EngineSource *s) {
        if (!s || s->type != SOURCE_IO || s->dead)
                return -EINVAL;
        return source_set_enabled(s, true);
}

bool source_io_is_armed(EngineSource *s) {
        return s && s->type == SOURCE_IO && !s->dead && s->enabled;
}

int source_get_fd(EngineSource *s) {
        if (!s || s->type != SOURCE_IO)
                return -EINVAL;
        return s->io.fd;
}
