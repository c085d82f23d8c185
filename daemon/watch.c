/* watch.c - watches and timers owned by a client
 *
 * A Watch owns the daemon's copy of the client's fd and an engine io source on it; a
 * ClientTimer owns an engine timer. Both are listed on their connection (for cleanup and
 * listing) and indexed by id (for the methods). Engine callbacks only queue notifications:
 * encoding and sending happen once per iteration, in the work pass.
 */

#include "watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "conn.h"
#include "log.h"
#include "daemon.h"
#include "macro.h"
#include "notify.h"

static int watch_io_cb(EngineSource *s, int fd, uint32_t revents, void *userdata) {
        Watch *w = userdata;

        if (w->conn->closing)
                return 0;
        if (revents & ENGINE_NVAL) {
                /* The kernel gave up polling this fd: tell the client, drop the watch. */
                LogContext ctx = conn_log_context(w->conn);
                ctx.watch_id = w->id;
                log_full(LOG_NOTICE, 0, &ctx, "Dropping a watch: the kernel stopped polling its fd");
                notify_closed(w, "error");
                (void)watch_free(w);
                return 0;
        }
        w->wakeups++;
        notify_ready(w, revents);
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

int watch_fd(const Watch *w) {
        return source_get_fd(w->source);
}

/* The fd_type names of PROTOCOL.md (watches), and two a watch cannot have. */
enum { KIND_UNKNOWN, KIND_PIPE, KIND_SOCKET, KIND_CHR, KIND_BLK, KIND_FILE, KIND_DIR, KIND_PIDFD, KIND_ANON };
static const char *const kind_names[] = {
        [KIND_UNKNOWN] = "unknown", [KIND_PIPE] = "pipe",           [KIND_SOCKET] = "socket",
        [KIND_CHR] = "char-device", [KIND_BLK] = "block-device",    [KIND_FILE] = "file",
        [KIND_DIR] = "directory",   [KIND_PIDFD] = "pidfd",         [KIND_ANON] = "anon",
};

static uint8_t fd_kind(int fd) {
        struct stat st;
        struct statfs fs;

        if (fstat(fd, &st) < 0)
                return KIND_UNKNOWN;
        switch (st.st_mode & S_IFMT) {
        case S_IFIFO:
                return KIND_PIPE;
        case S_IFSOCK:
                return KIND_SOCKET;
        case S_IFCHR:
                return KIND_CHR;
        case S_IFBLK:
                return KIND_BLK;
        case S_IFREG:
                return KIND_FILE;
        case S_IFDIR:
                return KIND_DIR;
        default:
                break;
        }
        /* Anonymous inodes (eventfd, timerfd, signalfd, epoll, io_uring, ...) and pidfds. */
        if (fstatfs(fd, &fs) == 0 && fs.f_type == 0x50494446 /* PID_FS_MAGIC */)
                return KIND_PIDFD;
        return KIND_ANON;
}

const char *watch_fd_kind(int fd) {
        return kind_names[fd_kind(fd)];
}

const char *watch_kind(const Watch *w) {
        return kind_names[w->fd_kind];
}

int watch_new(Conn *conn, int fd, uint32_t events, EngineMode mode, json_t *tag, Watch **ret) {
        Daemon *d = conn->daemon;
        Watch *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->conn = conn;
        w->id = ++d->next_watch_id;
        w->events = (uint16_t)events;
        w->mode = (uint8_t)mode;
        w->fd_kind = fd_kind(fd);
        r = tag_store(&w->tag, &w->tag_len, tag);
        if (r < 0)
                goto fail;
        r = idmap_put(&conn->watch_map, w->id, w);
        if (r < 0)
                goto fail;
        r = engine_add_io(d->engine, &w->source, fd, events, mode, watch_io_cb, w);
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
        w->events = (uint16_t)events;
        w->mode = (uint8_t)mode;
        /* Unlike the engine's, an edge watch is armed by definition (PROTOCOL.md, modify):
         * a spent oneshot switched to edge starts watching again. */
        if (mode == ENGINE_EDGE && !source_io_is_armed(w->source))
                return source_io_arm(w->source);
        return 0;
}

int watch_arm(Watch *w) {
        return source_io_arm(w->source);
}

static int client_timer_cb(EngineSource *s, uint64_t expirations, void *userdata) {
        ClientTimer *t = userdata;
        uint64_t at = source_timer_get_at(s), now = engine_now(source_get_engine(s), t->clock);

        if (t->conn->closing)
                return 0;
        t->expirations += expirations;
        notify_timer(t, expirations, now > at ? now - at : 0);
        if (source_timer_get_interval(s) == 0) {
                /* A fired one-shot timer is done: its id goes away, its notice stays queued
                 * and takes the tag along. */
                if (t->pending)
                        notice_take_tag(t->pending, &t->tag, &t->tag_len);
                t->pending = NULL;
                (void)client_timer_free(t);
        }
        return 0;
}

int client_timer_new(Conn *conn, EngineClock clock, uint64_t at_ns, uint64_t interval_ns, json_t *tag,
                     ClientTimer **ret) {
        Daemon *d = conn->daemon;
        ClientTimer *t;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->conn = conn;
        t->id = ++d->next_timer_id;
        t->clock = clock;
        r = tag_store(&t->tag, &t->tag_len, tag);
        if (r < 0)
                goto fail;
        r = idmap_put(&conn->timer_map, t->id, t);
        if (r < 0)
                goto fail;
        r = engine_add_timer(d->engine, &t->source, clock, at_ns, interval_ns, client_timer_cb, t);
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
        free(t);
        return r;
}

ClientTimer *client_timer_free(ClientTimer *t) {
        Conn *c;
        Daemon *d;

        if (!t)
                return NULL;
        c = t->conn;
        d = c->daemon;
        if (t->pending)
                notice_unqueue(c, t->pending);
        (void)source_free(t->source);
        (void)idmap_remove(&c->timer_map, t->id);
        list_remove(&c->timers, &t->link);
        c->usage->timers--;
        d->n_timers--;
        daemon_counts_changed(d);
        tag_release(&t->tag, &t->tag_len);
        free(t);
        return NULL;
}
