#pragma once
/* watch.h - a client's watched fd and a client's timer, on top of engine sources */

#include <jansson.h>
#include <stdint.h>

#include "engine.h"
#include "list.h"

typedef struct Conn Conn;
typedef struct Notice Notice;

typedef struct Watch {
        Conn *conn;
        ListNode link; /* conn->watches */
        uint64_t id;
        int fd; /* the daemon's copy, owned: closed by watch_free() */
        EngineSource *source;
        uint32_t events;
        EngineMode mode;
        json_t *tag;     /* owned reference, or NULL */
        Notice *pending; /* queued `ready` that new edge events merge into */
        uint64_t wakeups;
        uint64_t created; /* monotonic ns */
} Watch;

typedef struct ClientTimer {
        Conn *conn;
        ListNode link; /* conn->timers */
        uint64_t id;
        EngineSource *source;
        EngineClock clock;
        json_t *tag;
        Notice *pending;
        uint64_t expirations;
} ClientTimer;

/** watch_new() - watch @fd for @conn. On success the watch owns @fd; on failure the caller
 * still does. @tag borrowed. Return: 0, or -errno from the engine (-EPERM: not pollable). */
int watch_new(Conn *conn, int fd, uint32_t events, EngineMode mode, json_t *tag, Watch **ret);
/** watch_free() - stop, drop its queued notification, close the fd. NULL-safe. */
Watch *watch_free(Watch *w);
int watch_modify(Watch *w, uint32_t events, EngineMode mode);
int watch_arm(Watch *w);
const char *watch_fd_kind(int fd);

int client_timer_new(Conn *conn, EngineClock clock, uint64_t at_ns, uint64_t interval_ns, json_t *tag,
                     ClientTimer **ret);
ClientTimer *client_timer_free(ClientTimer *t);
