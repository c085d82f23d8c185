/* engine-defer.c - defer sources: work run once per iteration, after io and timers
 *
 * Enabled defers sit on one list; the defer phase runs each once, moving it to the tail, and
 * a defer enabled during the phase waits for the next iteration (which then does not block).
 */

#include "engine-internal.h"

#include <errno.h>

#include "macro.h"

static void defer_link(Engine *e, EngineSource *s) {
        s->defer.prev = e->defer_tail;
        s->defer.next = NULL;
        if (e->defer_tail)
                e->defer_tail->defer.next = s;
        else
                e->defer_head = s;
        e->defer_tail = s;
}

void engine_defer_unlink(Engine *e, EngineSource *s) {
        if (s->defer.prev)
                s->defer.prev->defer.next = s->defer.next;
        else
                e->defer_head = s->defer.next;
        if (s->defer.next)
                s->defer.next->defer.prev = s->defer.prev;
        else
                e->defer_tail = s->defer.prev;
        s->defer.prev = s->defer.next = NULL;
}

void engine_defer_enable(Engine *e, EngineSource *s) {
        defer_link(e, s);
        if (e->in_defer_phase) {
                /* Not this phase (it would be run at the tail of the list); next one. */
                s->defer.phase = e->defer_phase;
                e->defer_again = true;
        }
}

int engine_add_defer(Engine *e, EngineSource **ret, engine_defer_cb cb, void *userdata) {
        EngineSource *s;

        if (!e || !cb)
                return -EINVAL;
        s = engine_source_alloc(e, SOURCE_DEFER);
        if (!s)
                return -ENOMEM;
        s->userdata = userdata;
        s->defer.cb = cb;
        s->enabled = true;
        engine_defer_enable(e, s);
        if (ret)
                *ret = s;
        return 0;
}

/* Each enabled defer runs once. Those already run move to the tail, as do those enabled
 * during the phase (marked with this phase), so the first marked one ends the phase. */
void engine_run_defers(Engine *e) {
        e->defer_phase++;
        e->in_defer_phase = true;
        while (e->defer_head && e->defer_head->defer.phase != e->defer_phase) {
                EngineSource *s = e->defer_head;
                int r;

                s->defer.phase = e->defer_phase;
                engine_defer_unlink(e, s);
                defer_link(e, s);
                engine_source_ref(s);
                r = s->defer.cb(s, s->userdata);
                if (r < 0)
                        engine_fail(e, r);
                engine_source_unref(s);
        }
        e->in_defer_phase = false;
}
