#pragma once
/* notify.h - notifications queued for a client, merged while queued, encoded on flush */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "list.h"
#include "tag.h"

typedef struct Conn Conn;

typedef enum NoticeKind {
        NOTICE_READY,
        NOTICE_TIMER,
        NOTICE_CLOSED,
        NOTICE_SHUTDOWN,
        _NOTICE_KIND_MAX,
} NoticeKind;

/* Kept structured until sent, so that a slow reader's edge events merge into one notice
 * per watch instead of piling up: memory stays O(watches), not O(events). */
typedef struct Notice {
        ListNode link; /* conn->notices */
        uint8_t kind;
        uint16_t tag_len;
        uint32_t events;   /* READY */
        uint64_t id;       /* watch or timer */
        uint64_t count;    /* READY: wakeups; TIMER: expirations */
        uint64_t late_ns;  /* TIMER: of the first expiration in this notice */
        uint64_t since_ns; /* monotonic: when the first event in this notice was seen */
        TagText tag;       /* CLOSED, and TIMER of a one-shot timer: the object is gone */
        const char *reason;
} Notice;

/* The queueing calls take what they need of the watch or timer (watch.h is the layer above):
 * @pending is the object's queued notice that later events merge into (Watch.pending,
 * ClientTimer.pending), set here when a new notice is queued. */

/** notify_ready() - queue `ready` for watch @id, merged into *@pending if @merge (edge
 * mode) and one is queued. */
void notify_ready(Conn *c, Notice **pending, uint64_t id, bool merge, uint32_t revents);
/** notify_timer() - queue `timer` for timer @id, merged into *@pending if one is queued. */
void notify_timer(Conn *c, Notice **pending, uint64_t id, uint64_t expirations, uint64_t late_ns);
/** notify_closed() - queue `closed` for watch @id, which the caller frees right after: its
 * tag moves into the notice. */
void notify_closed(Conn *c, uint64_t id, TagText *tag, uint16_t *tag_len, const char *reason);
void notify_shutdown(Conn *c, const char *reason);
/** notify_monitors_connection() - tell the monitors that asked for it (`monitor` with
 * `connections`) that @c came (@event "connected") or went ("disconnected", @reason). */
void notify_monitors_connection(Conn *c, const char *event, const char *reason);

/* What a queued `ready` or `timer` notice refers to, looked up when it is encoded. */
typedef struct NoticeSubject {
        Notice **pending; /* the object's merge target: cleared if it is this notice */
        const char *tag;  /* the object's encoded tag, NULL for none */
        size_t tag_len;
} NoticeSubject;
/* Find @n's watch or timer on @c. Return: false if it is gone. */
typedef bool (*NoticeResolveFn)(Conn *c, const Notice *n, NoticeSubject *ret);
/** notice_take_tag() - @n keeps the tag of a timer about to be freed (moved, not copied). */
void notice_take_tag(Notice *n, TagText *tag, uint16_t *tag_len);
/** notice_unqueue() - drop a queued notice (its watch or timer went away). */
void notice_unqueue(Conn *c, Notice *n);
/** notify_flush() - encode queued notices into packets (a batch array when several fit)
 * and send until EAGAIN; @resolve finds what `ready` and `timer` notices refer to.
 * Return: 0 all sent, -EAGAIN blocked, other -errno: broken. */
int notify_flush(Conn *c, NoticeResolveFn resolve);
/** notify_park() - encode every queued notice into packets on the connection's output
 * queue without sending any (before a re-exec: only packets cross it). Return: 0, or
 * -ENOBUFS/-ENOMEM (the connection is then being closed). */
int notify_park(Conn *c, NoticeResolveFn resolve);
/** notify_encode_ready() - the `ready` notification, encoded into @buf (not terminated).
 * @tag: the watch's tag as compact JSON, NULL for none. Return: 0, -EMSGSIZE. */
int notify_encode_ready(uint64_t watch, const char *tag, size_t tag_len, uint32_t events, uint64_t count,
                        char *buf, size_t size, size_t *ret_len);
/** notify_encode_timer() - the `timer` notification, encoded into @buf, as for
 * notify_encode_ready(). Return: 0, -EMSGSIZE. */
int notify_encode_timer(uint64_t timer, const char *tag, size_t tag_len, uint64_t expirations, uint64_t late_ns,
                        char *buf, size_t size, size_t *ret_len);
/** notify_drop_all() - free every queued notice (client going away). */
void notify_drop_all(Conn *c);
