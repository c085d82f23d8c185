/* snapshot-save.c - the daemon's state, written into a memfd before an exec
 *
 * JSON, as protocol/STATE.md describes: versioned, and a newer evd must read what an older
 * one wrote. Queued notices are parked first (encoded into their connection's output
 * queue), so that only packets cross the exec, never a half-merged notice; fds are named
 * by number, since exec keeps them.
 *
 * Written as text (text.h), not built as a jansson tree: the state is the gap's first
 * cost, and with 10,000 watches a tree (objects, a parse of every stored tag to put it in,
 * the encoder) took 20-30 ms where this takes a few. Strings go through jansson's encoder;
 * stored tags are already jansson-encoded and go in as they are. Watches and timers are
 * arrays, not objects: the new image parses them with jansson, three times faster so.
 */

#include "snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "build-config.h"
#include "macro.h"
#include "notify.h"
#include "text.h"
#include "watch.h"

typedef struct Out {
        char *buf;
        size_t len, cap;
        int error;
} Out;

/* Room for @n more bytes; the chain of text_put*() calls after it then cannot fail. */
static char *out_reserve(Out *o, size_t n) {
        if (o->error)
                return NULL;
        if (o->cap - o->len < n) {
                size_t cap = MAX(o->cap * 2, o->len + n + 4096);
                char *buf = realloc(o->buf, cap);

                if (!buf) {
                        o->error = -ENOMEM;
                        return NULL;
                }
                o->buf = buf;
                o->cap = cap;
        }
        return o->buf + o->len;
}

static void out_end(Out *o, char *p) {
        if (!p) {
                if (!o->error)
                        o->error = -ENOBUFS;
                return;
        }
        o->len = (size_t)(p - o->buf);
}

#define OUT_END(o) ((o)->buf + (o)->cap)

static void out_lit(Out *o, const char *lit) {
        size_t n = strlen(lit);
        char *p = out_reserve(o, n);

        out_end(o, text_put(p, OUT_END(o), lit, n));
}

/* "key":v, after a comma unless @first */
static void out_member(Out *o, const char *key, uint64_t v, bool first) {
        char *p = out_reserve(o, strlen(key) + 32);

        p = first ? text_put_lit(p, OUT_END(o), "\"") : text_put_lit(p, OUT_END(o), ",\"");
        p = text_put(p, OUT_END(o), key, strlen(key));
        p = text_put_lit(p, OUT_END(o), "\":");
        out_end(o, text_put_u64(p, OUT_END(o), MIN(v, (uint64_t)INT64_MAX)));
}

static void out_u64(Out *o, const char *key, uint64_t v) {
        out_member(o, key, v, false);
}

/* A JSON string, as jansson encodes it (at most 6 bytes per input byte, "\u00XX"). */
static void out_string(Out *o, const char *s, size_t len) {
        json_t *str = json_stringn(s, len);
        char *p = out_reserve(o, len * 6 + 2);
        size_t n;

        if (!str || !p) {
                json_decref(str);
                o->error = o->error ? o->error : -ENOMEM;
                return;
        }
        n = json_dumpb(str, p, len * 6 + 2, JSON_ENCODE_ANY);
        json_decref(str);
        if (n == 0 || n > len * 6 + 2) {
                o->error = -EINVAL;
                return;
        }
        o->len += n;
}

/* [id,fd,events,"mode",flags,wakeups(,tag)] */
static void out_histogram(Out *o, const char *key, const Histogram *h) {
        out_lit(o, ",\"");
        out_lit(o, key);
        out_lit(o, "\":{\"buckets\":[");
        for (unsigned b = 0; b < HISTOGRAM_BUCKETS; b++) {
                char *p = out_reserve(o, 24);

                p = b ? text_put_lit(p, OUT_END(o), ",") : p;
                out_end(o, text_put_u64(p, OUT_END(o), MIN(h->buckets[b], (uint64_t)INT64_MAX)));
        }
        out_lit(o, "]");
        out_u64(o, "count", h->count);
        out_u64(o, "sum_ns", h->sum_ns);
        out_u64(o, "max_ns", h->max_ns);
        out_lit(o, "}");
}

/* [id,fd,events,flags,wakeups(,tag)] (version 2): mode and fd kind ride in flags, saving the
 * reader a string and two system calls per watch. */
static void out_watch(Out *o, const Watch *w) {
        size_t tag_len;
        const char *tag = watch_tag_text(w, &tag_len);
        unsigned flags = (source_io_is_armed(w->source) ? SNAPSHOT_WATCH_ARMED : 0u) |
                         (w->holds_passrights ? SNAPSHOT_WATCH_PASSRIGHTS : 0u) |
                         (w->mode == ENGINE_EDGE ? SNAPSHOT_WATCH_EDGE : 0u) |
                         ((unsigned)w->fd_kind << SNAPSHOT_WATCH_KIND_SHIFT);
        char *p = out_reserve(o, 128 + tag_len);
        const char *end = OUT_END(o);

        p = text_put_lit(p, end, "[");
        p = text_put_u64(p, end, w->id);
        p = text_put_lit(p, end, ",");
        p = text_put_u64(p, end, (uint64_t)watch_fd(w));
        p = text_put_lit(p, end, ",");
        p = text_put_u64(p, end, w->events);
        p = text_put_lit(p, end, ",");
        p = text_put_u64(p, end, flags);
        p = text_put_lit(p, end, ",");
        p = text_put_u64(p, end, MIN(w->wakeups, (uint64_t)INT64_MAX));
        if (tag) {
                p = text_put_lit(p, end, ",");
                p = text_put(p, end, tag, tag_len);
        }
        out_end(o, text_put_lit(p, end, "]"));
}

/* [id,"clock",at_ns,interval_ns,expirations,held_due_ns|null(,tag)] */
static void out_timer(Out *o, const ClientTimer *t) {
        size_t tag_len;
        const char *tag = client_timer_tag_text(t, &tag_len);
        char *p = out_reserve(o, 160 + tag_len);
        const char *end = OUT_END(o);

        p = text_put_lit(p, end, "[");
        p = text_put_u64(p, end, t->id);
        p = client_timer_clock(t) == ENGINE_CLOCK_REALTIME ? text_put_lit(p, end, ",\"realtime\",")
                                              : text_put_lit(p, end, ",\"monotonic\",");
        p = text_put_u64(p, end, MIN(source_timer_get_at(client_timer_source(t)), (uint64_t)INT64_MAX));
        p = text_put_lit(p, end, ",");
        p = text_put_u64(p, end, MIN(source_timer_get_interval(client_timer_source(t)), (uint64_t)INT64_MAX));
        p = text_put_lit(p, end, ",");
        p = text_put_u64(p, end, MIN(t->expirations, (uint64_t)INT64_MAX));
        if (client_timer_is_held(t)) {
                p = text_put_lit(p, end, ",");
                p = text_put_u64(p, end, MIN(t->held_due, (uint64_t)INT64_MAX));
        } else
                p = text_put_lit(p, end, ",null");
        if (tag) {
                p = text_put_lit(p, end, ",");
                p = text_put(p, end, tag, tag_len);
        }
        out_end(o, text_put_lit(p, end, "]"));
}

static void out_conn(Out *o, Conn *c) {
        ListNode *node;
        bool first;

        out_lit(o, "{\"id\":");
        out_end(o, text_put_u64(out_reserve(o, 24), OUT_END(o), c->id));
        out_u64(o, "fd", (uint64_t)c->fd);
        if (c->name) {
                out_lit(o, ",\"name\":");
                out_string(o, c->name, strlen(c->name));
        }
        out_u64(o, "connected_at_ns", c->connected_at);
        out_u64(o, "requests", c->requests);
        out_u64(o, "notifications", c->notifications);
        out_u64(o, "monitor_dropped", c->monitor_dropped);
        if (c->monitor)
                out_lit(o, c->monitor_connections ? ",\"monitor\":true,\"monitor_connections\":true"
                                                  : ",\"monitor\":true");
        out_lit(o, ",\"out\":[");
        first = true;
        for (node = list_first(&c->out); node; node = list_next(&c->out, node), first = false) {
                OutPacket *p = container_of(node, OutPacket, link);

                out_lit(o, first ? "{\"data\":" : ",{\"data\":");
                out_string(o, p->data, p->len);
                out_lit(o, p->monitor_copy ? ",\"monitor_copy\":true}" : "}");
        }
        out_lit(o, "],\"watches\":[");
        for (node = list_first(&c->watches); node; node = list_next(&c->watches, node)) {
                if (node != list_first(&c->watches))
                        out_lit(o, ",");
                out_watch(o, container_of(node, Watch, link));
        }
        out_lit(o, "],\"timers\":[");
        for (node = list_first(&c->timers); node; node = list_next(&c->timers, node)) {
                if (node != list_first(&c->timers))
                        out_lit(o, ",");
                out_timer(o, container_of(node, ClientTimer, link));
        }
        out_lit(o, "]}");
}

static void out_daemon(Out *o, Daemon *d) {
        out_lit(o, "{\"format\":\"evd-state\",\"version\":");
        out_end(o, text_put_u64(out_reserve(o, 24), OUT_END(o), SNAPSHOT_VERSION));
        out_lit(o, ",\"evd\":");
        out_string(o, EVD_VERSION, strlen(EVD_VERSION));
        out_u64(o, "generation", d->generation);
        out_u64(o, "saved_at_ns", engine_now(d->engine, ENGINE_CLOCK_MONOTONIC));
        out_u64(o, "started_monotonic_ns", d->started_mono);
        out_u64(o, "started_realtime_ns", d->started_real);
        out_u64(o, "next_client_id", d->next_client_id);
        out_u64(o, "next_watch_id", d->next_watch_id);
        out_u64(o, "next_timer_id", d->next_timer_id);
        out_u64(o, "reexec_failures", d->reexec_failures);
        out_lit(o, ",\"stats\":{");
        for (size_t i = 0; i < daemon_stats_n_fields; i++)
                out_member(o, daemon_stats_fields[i].name,
                           *(const uint64_t *)((const char *)&d->stats + daemon_stats_fields[i].offset), i == 0);
        out_lit(o, "}");
        out_histogram(o, "latency", &d->latency);
        out_histogram(o, "packet_cost", &d->packet_cost);
        out_histogram(o, "timer_lateness", &d->timer_lateness);
}

static int write_all(int fd, const char *p, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int snapshot_save(Daemon *d, int *ret_fd, SnapshotCounts *ret) {
        Out o = { 0 };
        SnapshotCounts counts = { 0 };
        _cleanup_close_ int fd = -1;
        ListNode *node;
        bool first = true;
        int r;

        for (node = list_first(&d->conns); node; node = list_next(&d->conns, node)) {
                Conn *c = container_of(node, Conn, link);

                /* A connection that cannot take its notices is being closed: not saved. */
                if (!c->closing)
                        (void)notify_park(c, watch_notice_subject);
        }
        out_daemon(&o, d);
        out_lit(&o, ",\"clients\":[");
        for (node = list_first(&d->conns); node; node = list_next(&d->conns, node)) {
                Conn *c = container_of(node, Conn, link);

                if (c->closing)
                        continue;
                if (!first)
                        out_lit(&o, ",");
                first = false;
                out_conn(&o, c);
                counts.clients++;
                counts.watches += c->watches.n;
                counts.timers += c->timers.n;
                counts.packets += c->out.n;
        }
        out_lit(&o, "]}");
        r = o.error;
        if (r >= 0) {
                fd = memfd_create("evd-state", MFD_CLOEXEC);
                r = fd < 0 ? -errno : write_all(fd, o.buf, o.len);
        }
        if (r >= 0 && lseek(fd, 0, SEEK_SET) < 0)
                r = -errno;
        free(o.buf);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        if (ret)
                *ret = counts;
        return 0;
}

int snapshot_for_each_fd(Daemon *d, int (*fn)(int fd, void *userdata), void *userdata) {
        ListNode *node, *wn;
        int r;

        for (node = list_first(&d->conns); node; node = list_next(&d->conns, node)) {
                Conn *c = container_of(node, Conn, link);

                if (c->closing)
                        continue;
                if ((r = fn(c->fd, userdata)) < 0)
                        return r;
                for (wn = list_first(&c->watches); wn; wn = list_next(&c->watches, wn))
                        if ((r = fn(watch_fd(container_of(wn, Watch, link)), userdata)) < 0)
                                return r;
        }
        return 0;
}
