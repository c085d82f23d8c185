#pragma once
/* watch.h - a client's watched fd and a client's timer, on top of engine sources */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "list.h"
#include "tag.h"

typedef struct Conn Conn;
typedef struct Notice Notice;
typedef struct NoticeSubject NoticeSubject;

/* Tags are kept encoded (tag.h): an idle watch should cost as little as possible (the
 * daemon holds one per watched fd, tens of thousands of them). The fd is the engine
 * source's (source_get_fd()): the daemon's copy, owned, closed by watch_free(). */

typedef struct Watch {
        uint64_t id; /* first: the key conn->watch_map reads (idmap.h) */
        Conn *conn;
        ListNode link; /* conn->watches */
        EngineSource *source;
        Notice *pending; /* queued `ready` that new edge events merge into */
        uint64_t wakeups;
        TagText tag;
        uint16_t tag_len; /* 0: no tag */
        uint16_t events;  /* ENGINE_IN.. (all below 1 << 16) */
        uint8_t mode;     /* EngineMode */
        bool holds_passrights; /* SO_PASSRIGHTS is off for it: watch_passrights_release() */
        uint8_t fd_kind;  /* what watch_fd_kind() said at creation: an fd never changes kind */
} Watch;

/* 128 bytes: its own fields fill the first cache line, the engine source it holds the
 * second (EngineTimerMem is 64-aligned). The connection is the source's userdata, so it
 * needs no field of its own here. */
typedef struct ClientTimer {
        uint64_t id; /* first: the key conn->timer_map reads (idmap.h) */
        ListNode link; /* conn->timers */
        TagText tag;
        Notice *pending;
        uint64_t expirations;
        /* Over its user's timer rate: waiting for the slot pace_admit() reserved, with this
         * first deadline not yet reported (in its clock); CLIENT_TIMER_NOT_HELD if not. */
        uint64_t held_due;
        uint16_t tag_len; /* 0: no tag */
        EngineTimerMem source_mem; /* the engine's timer: client_timer_source() */
} ClientTimer;


/* No deadline is this late (they are at most MAX_AT_SECONDS, or now + MAX_SECONDS). */
#define CLIENT_TIMER_NOT_HELD UINT64_MAX

static inline bool client_timer_is_held(const ClientTimer *t) {
        return t->held_due != CLIENT_TIMER_NOT_HELD;
}

/* Not const: the engine's getters take a plain EngineSource, and only read through it. */
static inline EngineSource *client_timer_source(const ClientTimer *t) {
        return engine_timer_source((EngineTimerMem *)&t->source_mem);
}

/* Its clock is the source's. */
static inline EngineClock client_timer_clock(const ClientTimer *t) {
        return source_timer_get_clock(client_timer_source(t));
}

static inline Conn *client_timer_conn(const ClientTimer *t) {
        return source_get_userdata(client_timer_source(t));
}

/* A watch or a timer as a snapshot keeps it (snapshot.h): what the client set, and the
 * state that must survive a re-exec. Borrowed fields. */
/* What kind of fd a watch holds (fd_type in PROTOCOL.md, watches). The numbers are the
 * state file's (STATE.md, version 2): append, never renumber. */
enum {
        WATCH_KIND_UNKNOWN,
        WATCH_KIND_PIPE,
        WATCH_KIND_SOCKET,
        WATCH_KIND_CHR,
        WATCH_KIND_BLK,
        WATCH_KIND_FILE,
        WATCH_KIND_DIR,
        WATCH_KIND_PIDFD,
        WATCH_KIND_ANON,
        _WATCH_KIND_MAX,
};

typedef struct WatchRecord {
        uint64_t id;
        int fd; /* the same fd, inherited: the new watch owns it */
        uint32_t events;
        EngineMode mode;
        bool armed;
        bool holds_passrights;
        uint8_t kind; /* WATCH_KIND_*; UNKNOWN (a version 1 state) is asked of the fd again */
        uint64_t wakeups;
        const json_t *tag; /* NULL: none */
} WatchRecord;

typedef struct TimerRecord {
        uint64_t id;
        EngineClock clock;
        uint64_t at_ns; /* the next deadline on @clock (the held slot, if held) */
        uint64_t interval_ns;
        uint64_t expirations;
        bool held;
        uint64_t held_due_ns;
        const json_t *tag;
} TimerRecord;

/** watch_new() - watch @fd for @conn. On success the watch owns @fd; on failure the caller
 * still does. @tag borrowed. Return: 0, or -errno from the engine (-EPERM: not pollable;
 * -ELOOP: an epoll fd nested too deep). */
int watch_new(Conn *conn, int fd, uint32_t events, EngineMode mode, json_t *tag, Watch **ret);
/** watch_free() - stop, drop its queued notification, close the fd. NULL-safe. */
Watch *watch_free(Watch *w);
int watch_modify(Watch *w, uint32_t events, EngineMode mode);
int watch_arm(Watch *w);
const char *watch_fd_kind(int fd);
/** watch_fd_is_signalfd() - whether @fd is a signalfd (from its /proc/self/fd link). */
bool watch_fd_is_signalfd(int fd);
/** watch_passrights_hold() - keep SO_PASSRIGHTS off on AF_UNIX socket @fd for a watch
 * (turned off by the first watch that holds it); *@ret_held says whether this one holds it,
 * false where it was off already or the kernel lacks the option. Return: 0 or -errno. */
int watch_passrights_hold(Conn *c, int fd, bool *ret_held);
/** watch_passrights_release() - undo one hold: the last one turns SO_PASSRIGHTS on again. */
void watch_passrights_release(Conn *c, int fd);
/** watch_kind() - watch_fd_kind() of the watch's fd, without a system call. */
const char *watch_kind(const Watch *w);
int watch_fd(const Watch *w);
/** watch_tag_text() - the encoded tag, NULL if none; @ret_len its length. */
const char *watch_tag_text(const Watch *w, size_t *ret_len);
/** watch_notice_subject() - the watch or timer a queued `ready` or `timer` notice @n of
 * @c refers to (a NoticeResolveFn, notify.h). Return: false if it is gone. */
bool watch_notice_subject(Conn *c, const Notice *n, NoticeSubject *ret);
/** watch_tag_json() - the tag parsed back, a new reference; JSON null if none. */
json_t *watch_tag_json(const Watch *w);

/** watch_restore() - a watch from a snapshot, with its id (-EEXIST: 0 or taken). On success
 * the watch owns @rec->fd; on failure the caller still does. Return: 0 or -errno. */
int watch_restore(Conn *conn, const WatchRecord *rec, Watch **ret);
/** client_timer_restore() - a timer from a snapshot, with its id. Return: 0 or -errno. */
int client_timer_restore(Conn *conn, const TimerRecord *rec, ClientTimer **ret);

int client_timer_new(Conn *conn, EngineClock clock, uint64_t at_ns, uint64_t interval_ns, json_t *tag,
                     ClientTimer **ret);
ClientTimer *client_timer_free(ClientTimer *t);
/** client_timer_tag_text() - the encoded tag, NULL if none; @ret_len its length. */
const char *client_timer_tag_text(const ClientTimer *t, size_t *ret_len);
