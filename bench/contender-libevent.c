/* contender-libevent.c - libevent 2.1: an event_base with one persistent EV_READ event per
 * pipe (event_new() + event_add(ev, NULL)), event_base_dispatch() until a callback calls
 * event_base_loopbreak(). select and poll are avoided so the base runs on epoll; the
 * method actually chosen is checked. Persistent events are level-triggered (no EV_ET).
 *
 * libev.so exports libevent-1.4 look-alikes of event_add(), event_base_loop() and more:
 * the program must link libevent before libev, or the dynamic linker binds those names
 * (also libevent's own internal calls) to libev. setup() refuses to run if that happened.
 */

#include "bench.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct event_base *base;
static struct event **events;
static unsigned events_n;

static const char *libevent_version(void) {
        static char buf[32];

        (void)snprintf(buf, sizeof(buf), "libevent %s", event_get_version());
        return buf;
}

static void read_cb(evutil_socket_t fd, short what, void *arg) {
        if (bench_pipes_readable((unsigned)(uintptr_t)arg))
                (void)event_base_loopbreak(base);
}

static int libevent_setup(const char **ret_why) {
        struct event_config *cfg;

        /* libev exports a libevent 1.4 emulation (event_add, event_base_loop, ...): linked
         * ahead of libevent, it would take over half of these calls. */
        if (strncmp(event_get_version(), "2.", 2) != 0) {
                *ret_why = "libevent's symbols resolve to libev's emulation: link libevent first";
                return -EOPNOTSUPP;
        }
        cfg = event_config_new();
        if (!cfg)
                return -ENOMEM;
        (void)event_config_avoid_method(cfg, "select");
        (void)event_config_avoid_method(cfg, "poll");
        base = event_base_new_with_config(cfg);
        event_config_free(cfg);
        if (!base) {
                *ret_why = "event_base_new_with_config() failed";
                return -EOPNOTSUPP;
        }
        if (strcmp(event_base_get_method(base), "epoll") != 0) {
                *ret_why = "libevent did not pick epoll";
                return -EOPNOTSUPP;
        }
        events = calloc(bench_pipes.n, sizeof(*events));
        if (!events)
                return -ENOMEM;
        for (unsigned i = 0; i < bench_pipes.n; i++) {
                events[i] = event_new(base, bench_pipes.pipes[i].r, EV_READ | EV_PERSIST, read_cb,
                                      (void *)(uintptr_t)i);
                if (!events[i])
                        return -ENOMEM;
                events_n = i + 1;
                if (event_add(events[i], NULL) < 0)
                        return -EIO;
        }
        (void)event_base_loop(base, EVLOOP_NONBLOCK);
        return 0;
}

static int libevent_run(void) {
        return event_base_dispatch(base) < 0 ? -EIO : 0;
}

static int64_t libevent_waits(void) {
        return -1;
}

static void libevent_teardown(void) {
        for (unsigned i = 0; i < events_n; i++)
                event_free(events[i]);
        events_n = 0;
        free(events);
        events = NULL;
        if (base)
                event_base_free(base);
        base = NULL;
}

const IoContender contender_libevent = {
        .name = "libevent",
        .version = libevent_version,
        .setup = libevent_setup,
        .run = libevent_run,
        .waits = libevent_waits,
        .teardown = libevent_teardown,
};
