/* watch.c - watches and timers owned by a client
 *
 * A Watch owns the daemon's copy of the client's fd and an engine io source on it; a
 * ClientTimer owns an engine timer. Both are listed on their connection (for cleanup and
 * listing) and indexed by id (for the methods). Engine callbacks only queue notifications:
 * encoding and sending happen once per iteration, in the work pass.
 *
 * Layering: above conn and notify (a watch lives on its connection and queues notices on
 * it). notify never sees a Watch: it gets the fields it needs, and watch_notice_subject()
 * resolves a queued notice's id back to its object when the notice is encoded.
 */

#include "watch.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "macro.h"
#include "notify.h"
#include "state.h"
#include "usage.h"

_Static_assert(IDMAP_KEYED(Watch, id), "watch_map reads the key there");
_Static_assert(IDMAP_KEYED(ClientTimer, id), "timer_map reads the key there");
/* Their shares of the 200 B per watch and per timer (README.md, Performance): a Watch is
 * an 80-byte malloc chunk; timers, pooled (a million of them would pay 16 B each in malloc
 * rounding), cost their size, their engine source included. Watches are not pooled: at
 * 20,000 the malloc()ed ones fill the holes that growing the id maps and queues leaves,
 * and came out 3 B cheaper. */
_Static_assert(sizeof(Watch) <= 72, "a Watch outgrew its share");
_Static_assert(sizeof(ClientTimer) <= 128, "a ClientTimer outgrew its share");

static int watch_io_cb(EngineSource *s, int fd, uint32_t revents, void *userdata) {
        Watch *w = userdata;

        if (w->conn->closing)
                return 0;
        if (revents & ENGINE_NVAL) {
                /* The kernel gave up polling this fd: tell the client, drop the watch. */
                LogContext ctx = conn_log_context(w->conn);
                ctx.watch_id = w->id;
                log_full(LOG_NOTICE, 0, &ctx, "Dropping a watch: the kernel stopped polling its fd");
                notify_closed(w->conn, w->id, &w->tag, &w->tag_len, "error");
                (void)watch_free(w);
                return 0;
        }
        w->wakeups++;
        notify_ready(w->conn, &w->pending, w->id, w->mode == ENGINE_EDGE, revents);
        return 0;
}

const char *watch_tag_text(const Watch *w, size_t *ret_len) {
        *ret_len = w->tag_len;
        return tag_text(&w->tag, w->tag_len);
}

json_t *watch_tag_json(const Watch *w) {
        return tag_json(&w->tag, w->tag_len);
}

const char *client_timer_tag_text(const ClientTimer *t, size_t *ret_len) {
        *ret_len = t->tag_len;
        return tag_text(&t->tag, t->tag_len);
}

bool watch_notice_subject(Conn *c, const Notice *n, NoticeSubject *ret) {
        if (n->kind == NOTICE_READY) {
                Watch *w = idmap_get(&c->watch_map, n->id);

                if (!w)
                        return false;
                ret->pending = &w->pending;
                ret->tag = watch_tag_text(w, &ret->tag_len);
                return true;
        }
        if (n->kind == NOTICE_TIMER) {
                ClientTimer *t = idmap_get(&c->timer_map, n->id);

                if (!t)
                        return false;
                ret->pending = &t->pending;
                ret->tag = client_timer_tag_text(t, &ret->tag_len);
                return true;
        }
        return false;
}

int watch_fd(const Watch *w) {
        return source_get_fd(w->source);
}

/* The fd_type names of PROTOCOL.md (watches), and two a watch cannot have. */
static const char *const kind_names[_WATCH_KIND_MAX] = {
        [WATCH_KIND_UNKNOWN] = "unknown",  [WATCH_KIND_PIPE] = "pipe",        [WATCH_KIND_SOCKET] = "socket",
        [WATCH_KIND_CHR] = "char-device",  [WATCH_KIND_BLK] = "block-device", [WATCH_KIND_FILE] = "file",
        [WATCH_KIND_DIR] = "directory",    [WATCH_KIND_PIDFD] = "pidfd",      [WATCH_KIND_ANON] = "anon",
};

static uint8_t fd_kind(int fd) {
        struct stat st;
        struct statfs fs;

        if (fstat(fd, &st) < 0)
                return WATCH_KIND_UNKNOWN;
        switch (st.st_mode & S_IFMT) {
        case S_IFIFO:
                return WATCH_KIND_PIPE;
        case S_IFSOCK:
                return WATCH_KIND_SOCKET;
        case S_IFCHR:
                return WATCH_KIND_CHR;
        case S_IFBLK:
                return WATCH_KIND_BLK;
        case S_IFREG:
                return WATCH_KIND_FILE;
        case S_IFDIR:
                return WATCH_KIND_DIR;
        default:
                break;
        }
        /* Anonymous inodes (eventfd, timerfd, signalfd, epoll, io_uring, ...) and pidfds. */
        if (fstatfs(fd, &fs) == 0 && fs.f_type == 0x50494446 /* PID_FS_MAGIC */)
                return WATCH_KIND_PIDFD;
        return WATCH_KIND_ANON;
}

const char *watch_fd_kind(int fd) {
        return kind_names[fd_kind(fd)];
}

const char *watch_kind(const Watch *w) {
        return kind_names[w->fd_kind];
}

/* @kind: WATCH_KIND_UNKNOWN to ask the fd (two system calls: 5 of a restore's 30 ms at
 * 10,000 watches, so the state carries it). */
static int watch_create(Conn *conn, uint64_t id, int fd, uint32_t events, EngineMode mode, uint8_t kind,
                        const json_t *tag, bool adopted, Watch **ret) {
        Daemon *d = conn->daemon;
        Watch *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->conn = conn;
        w->id = id;
        w->events = (uint16_t)events;
        w->mode = (uint8_t)mode;
        w->fd_kind = kind != WATCH_KIND_UNKNOWN && kind < _WATCH_KIND_MAX ? kind : fd_kind(fd);
        r = tag_store(&w->tag, &w->tag_len, tag);
        if (r < 0)
                goto fail;
        r = idmap_put(&conn->watch_map, w);
        if (r < 0)
                goto fail;
        r = (adopted ? engine_adopt_io : engine_add_io)(d->engine, &w->source, fd, events, mode, watch_io_cb, w);
        if (r < 0) {
                (void)idmap_remove(&conn->watch_map, w->id);
                goto fail;
        }
        list_append(&conn->watches, &w->link);
        {
                LogContext ctx = conn_log_context(conn);
                ctx.watch_id = w->id;
                log_full(LOG_DEBUG, 0, &ctx, "Watching fd %d (%s, %s)", fd, watch_kind(w),
                         mode == ENGINE_EDGE ? "edge" : "oneshot");
        }
        conn->usage->watches++;
        d->n_watches++;
        daemon_counts_changed(d);
        *ret = w;
        return 0;
fail:
        tag_release(&w->tag, &w->tag_len);
        free(w);
        return r;
}

int watch_new(Conn *conn, int fd, uint32_t events, EngineMode mode, json_t *tag, Watch **ret) {
        int r = watch_create(conn, conn->daemon->next_watch_id + 1, fd, events, mode, WATCH_KIND_UNKNOWN,
                             tag, false, ret);

        if (r >= 0)
                conn->daemon->next_watch_id++;
        return r;
}

/* How many watches hold SO_PASSRIGHTS off on one socket (watch_passrights_hold()). */
typedef struct PassrightsHold {
        uint64_t ino; /* first: the key d->passrights_off reads (idmap.h) */
        unsigned count;
} PassrightsHold;
_Static_assert(IDMAP_KEYED(PassrightsHold, ino), "passrights_off reads the key there");

static unsigned passrights_count(Daemon *d, uint64_t ino) {
        PassrightsHold *h = idmap_get(&d->passrights_off, ino);

        return h ? h->count : 0;
}

/* One more watch holds socket @ino's SO_PASSRIGHTS off. Return: 0 or -ENOMEM. */
static int passrights_add(Daemon *d, uint64_t ino) {
        PassrightsHold *h = idmap_get(&d->passrights_off, ino);
        int r;

        if (h) {
                h->count++;
                return 0;
        }
        h = malloc(sizeof(*h));
        if (!h)
                return -ENOMEM;
        *h = (PassrightsHold){ .ino = ino, .count = 1 };
        r = idmap_put(&d->passrights_off, h);
        if (r < 0)
                free(h);
        return r;
}

/* One watch fewer holds it. Return: how many held it before. */
static unsigned passrights_drop(Daemon *d, uint64_t ino) {
        PassrightsHold *h = idmap_get(&d->passrights_off, ino);

        if (!h)
                return 0;
        if (h->count-- > 1)
                return h->count + 1;
        free(idmap_remove(&d->passrights_off, ino));
        return 1;
}

int watch_restore(Conn *conn, const WatchRecord *rec, Watch **ret) {
        Daemon *d = conn->daemon;
        struct stat st;
        Watch *w;
        int r;

        if (rec->id == 0 || idmap_get(&conn->watch_map, rec->id))
                return -EEXIST;
        r = watch_create(conn, rec->id, rec->fd, rec->events, rec->mode, rec->kind, rec->tag, true, &w);
        if (r < 0)
                return r;
        w->wakeups = rec->wakeups;
        if (!rec->armed)
                (void)source_set_enabled(w->source, false);
        /* SO_PASSRIGHTS is still off on the socket (it is the same one): only the count
         * of watches holding it is rebuilt. */
        if (rec->holds_passrights && fstat(rec->fd, &st) == 0 && passrights_add(d, st.st_ino) >= 0)
                w->holds_passrights = true;
        d->next_watch_id = MAX(d->next_watch_id, rec->id);
        *ret = w;
        return 0;
}

Watch *watch_free(Watch *w) {
        Conn *c;
        Daemon *d;
        int fd;

        if (!w)
                return NULL;
        c = w->conn;
        d = c->daemon;
        if (w->pending)
                notice_unqueue(c, w->pending);
        fd = watch_fd(w);
        (void)source_free(w->source);
        /* The client shares the socket: leave it as it came. */
        if (w->holds_passrights)
                watch_passrights_release(c, fd);
        (void)safe_close(fd);
        (void)idmap_remove(&c->watch_map, w->id);
        list_remove(&c->watches, &w->link);
        c->usage->watches--;
        d->n_watches--;
        daemon_counts_changed(d);
        tag_release(&w->tag, &w->tag_len);
        free(w);
        return NULL;
}

int watch_modify(Watch *w, uint32_t events, EngineMode mode) {
        int r = source_io_modify(w->source, events, mode);

        if (r < 0)
                return r;
        /* Unlike the engine's, an edge watch is armed by definition (PROTOCOL.md, modify):
         * a spent oneshot switched to edge starts watching again. */
        if (mode == ENGINE_EDGE && !source_io_is_armed(w->source)) {
                r = source_io_arm(w->source);
                if (r < 0) {
                        /* A failed request changes nothing: back to what it was. */
                        (void)source_io_modify(w->source, w->events, (EngineMode)w->mode);
                        return r;
                }
        }
        w->events = (uint16_t)events;
        w->mode = (uint8_t)mode;
        return 0;
}

int watch_arm(Watch *w) {
        return source_io_arm(w->source);
}

/*
 * Fds whose readiness depends on who polls them report evd's state, not the client's, and
 * are refused at watch. Of those Linux has, only the signalfd reaches evd: it reports the
 * signals pending for the polling process (evd blocks its own SIGTERM, SIGINT and SIGHUP
 * for its signalfds, so a client's signalfd for those would fire on evd's signals and never
 * on the client's). The others are judged on their own object, whoever polls: pidfd
 * (the process), eventfd, timerfd, inotify, fanotify, userfaultfd (the faults of the memory
 * it was created for), epoll (its ready list; evd does not look inside the set, so a
 * signalfd put in an epoll set that evd watches is judged by evd too), and io_uring fds
 * (the ring's completions; Linux 6.7 and later refuse to pass them with SCM_RIGHTS).
 * The anon inode's name is the only way to tell a signalfd from an eventfd; without /proc
 * (not mounted) it cannot be told and is let through.
 */
bool watch_fd_is_signalfd(int fd) {
        static const char name[] = "anon_inode:[signalfd]";
        char path[64], link[sizeof(name) + 1];
        struct statfs fs;
        ssize_t n;

        if (fstatfs(fd, &fs) < 0 || fs.f_type != ANON_INODE_FS_MAGIC)
                return false;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof(link));
        return n == (ssize_t)strlen(name) && memcmp(link, name, (size_t)n) == 0;
}

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

/* Several watches may hold one socket (several fds, or one sent twice): the first turns
 * SO_PASSRIGHTS off, the last one to go turns it on again. Counted per socket inode in
 * d->passrights_off; a socket is in there only while evd holds an fd of it. */
int watch_passrights_hold(Conn *c, int fd, bool *ret_held) {
        Daemon *d = c->daemon;
        struct stat st;
        int on = 0, off = 0, r;
        socklen_t len = sizeof(on);

        *ret_held = false;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (passrights_count(d, st.st_ino) > 0) {
                r = passrights_add(d, st.st_ino);
                if (r < 0)
                        return r;
                *ret_held = true;
                return 0;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &on, &len) < 0)
                /* ENOPROTOOPT: a kernel before 6.16, which always passes fds. */
                return errno == ENOPROTOOPT || errno == EINVAL ? 0 : -errno;
        if (!on)
                return 0; /* the client's choice: nothing to restore */
        r = passrights_add(d, st.st_ino);
        if (r < 0)
                return r;
        if (setsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &off, sizeof(off)) < 0) {
                r = -errno;
                (void)passrights_drop(d, st.st_ino);
                return r;
        }
        *ret_held = true;
        return 0;
}

void watch_passrights_release(Conn *c, int fd) {
        Daemon *d = c->daemon;
        struct stat st;
        int on = 1;

        if (fstat(fd, &st) < 0)
                return;
        if (passrights_drop(d, st.st_ino) == 1 && setsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &on, sizeof(on)) < 0)
                log_full(LOG_DEBUG, errno, NULL, "Cannot turn SO_PASSRIGHTS on again on fd %d", fd);
}

/* Slots of timers held past their deadline are rounded up to this: they fire together, a
 * thousand wakeups a second at most, instead of one wakeup per slot. */
#define HOLD_QUANTUM_NS NSEC_PER_MSEC

/* Pace the expiry due at @due (in @t's clock) under the user's timer rate. Over the rate,
 * the timer is held at the slot pace_admit() gives (rounded up to HOLD_QUANTUM_NS); within
 * it, it is held at its own time only if @reserve (a reservation made ahead of time), else
 * left as it is. The slot is on the monotonic clock; a wall-clock timer gets the same
 * distance from now. Return: whether the expiry may go at its own time. */
static bool client_timer_pace(ClientTimer *t, EngineSource *s, Conn *c, uint64_t due, bool reserve) {
        Engine *e = source_get_engine(s);
        uint64_t now = engine_now(e, client_timer_clock(t)), mono = engine_now(e, ENGINE_CLOCK_MONOTONIC);
        uint64_t due_mono = mono + (due > now ? due - now : 0), slot;
        bool admitted = pace_admit(&c->usage->timer_pace, c->daemon->config.limits.timer_rate_per_uid,
                                   due_mono, &slot);

        if (admitted) {
                if (!reserve)
                        return true;
                slot = due_mono;
        } else {
                slot = (slot + HOLD_QUANTUM_NS - 1) / HOLD_QUANTUM_NS * HOLD_QUANTUM_NS;
                c->daemon->stats.timers_held++;
        }
        t->held_due = due;
        (void)source_timer_set(s, now + (slot - mono), source_timer_get_interval(s));
        return admitted;
}

static int client_timer_cb(EngineSource *s, uint64_t expirations, void *userdata) {
        ClientTimer *t = container_of(engine_timer_mem(s), ClientTimer, source_mem);
        Conn *c = userdata;
        Engine *e = source_get_engine(s);
        uint64_t at = source_timer_get_at(s), now = engine_now(e, client_timer_clock(t));
        uint64_t interval = source_timer_get_interval(s);
        bool paced = c->daemon->config.limits.timer_rate_per_uid > 0;

        if (c->closing)
                return 0;
        if (client_timer_is_held(t)) {
                /* Its reserved slot: everything since the deadline it was held for, in one.
                 * The next expiry, on its own undrifted schedule, is reserved at once: a
                 * timer over the rate then costs one wakeup per notification, not two. */
                at = t->held_due;
                t->held_due = CLIENT_TIMER_NOT_HELD;
                if (interval) {
                        expirations = 1 + (now - MIN(at, now)) / interval;
                        at += (expirations - 1) * interval;
                        if (paced)
                                (void)client_timer_pace(t, s, c, at + interval, true);
                        else
                                (void)source_timer_set(s, at + interval, interval);
                }
        } else if (paced && !client_timer_pace(t, s, c, at, false)) {
                return 0; /* over the rate: held at the slot reserved for it */
        }
        t->expirations += expirations;
        histogram_add(&c->daemon->timer_lateness, now > at ? now - at : 0);
        notify_timer(c, &t->pending, t->id, expirations, now > at ? now - at : 0);
        if (interval == 0) {
                /* A fired one-shot timer is done: its id goes away, its notice stays queued
                 * and takes the tag along. */
                if (t->pending)
                        notice_take_tag(t->pending, &t->tag, &t->tag_len);
                t->pending = NULL;
                (void)client_timer_free(t);
        }
        return 0;
}

static int client_timer_create(Conn *conn, uint64_t id, EngineClock clock, uint64_t at_ns, uint64_t interval_ns,
                               const json_t *tag, ClientTimer **ret) {
        Daemon *d = conn->daemon;
        ClientTimer *t;
        int r;

        t = pool_alloc(&d->timer_pool);
        if (!t)
                return -ENOMEM;
        t->id = id;
        t->held_due = CLIENT_TIMER_NOT_HELD;
        r = tag_store(&t->tag, &t->tag_len, tag);
        if (r < 0)
                goto fail;
        r = idmap_put(&conn->timer_map, t);
        if (r < 0)
                goto fail;
        r = engine_init_timer(d->engine, &t->source_mem, NULL, clock, at_ns, interval_ns, client_timer_cb, conn);
        if (r < 0) {
                (void)idmap_remove(&conn->timer_map, t->id);
                goto fail;
        }
        list_append(&conn->timers, &t->link);
        conn->usage->timers++;
        d->n_timers++;
        daemon_counts_changed(d);
        *ret = t;
        return 0;
fail:
        tag_release(&t->tag, &t->tag_len);
        pool_put(&d->timer_pool, t);
        return r;
}

int client_timer_new(Conn *conn, EngineClock clock, uint64_t at_ns, uint64_t interval_ns, json_t *tag,
                     ClientTimer **ret) {
        int r = client_timer_create(conn, conn->daemon->next_timer_id + 1, clock, at_ns, interval_ns, tag, ret);

        if (r >= 0)
                conn->daemon->next_timer_id++;
        return r;
}

int client_timer_restore(Conn *conn, const TimerRecord *rec, ClientTimer **ret) {
        Daemon *d = conn->daemon;
        ClientTimer *t;
        int r;

        if (rec->id == 0 || idmap_get(&conn->timer_map, rec->id))
                return -EEXIST;
        r = client_timer_create(conn, rec->id, rec->clock, rec->at_ns, rec->interval_ns, rec->tag, &t);
        if (r < 0)
                return r;
        t->expirations = rec->expirations;
        t->held_due = rec->held ? rec->held_due_ns : CLIENT_TIMER_NOT_HELD;
        d->next_timer_id = MAX(d->next_timer_id, rec->id);
        *ret = t;
        return 0;
}

ClientTimer *client_timer_free(ClientTimer *t) {
        Conn *c;
        Daemon *d;

        if (!t)
                return NULL;
        c = client_timer_conn(t);
        d = c->daemon;
        if (t->pending)
                notice_unqueue(c, t->pending);
        (void)source_free(client_timer_source(t));
        (void)idmap_remove(&c->timer_map, t->id);
        list_remove(&c->timers, &t->link);
        c->usage->timers--;
        d->n_timers--;
        daemon_counts_changed(d);
        tag_release(&t->tag, &t->tag_len);
        pool_put(&d->timer_pool, t);
        return NULL;
}
