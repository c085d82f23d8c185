/* notify.c - notification queue per client
 *
 * Engine callbacks append a Notice (or merge into the watch's or timer's queued one); the
 * work pass encodes them, oldest first, into as few packets as fit (a batch array when
 * several), at most one packet ahead of the socket: what the socket does not take is
 * parked as one OutPacket and the rest stays structured, so a client that reads slowly
 * gets fewer, fuller notifications and never costs more than O(watches + timers) memory.
 *
 * A `ready` notice carries only the watch id; when it is encoded the watch is looked up
 * (through the NoticeResolveFn given to notify_flush(): watch.h is the layer above),
 * and a notice whose watch is gone is dropped (unwatch promises no notification after its
 * reply). A `timer` notice takes its tag from the timer, or, for a fired one-shot timer
 * (freed at once), holds the tag the timer handed it; a `closed` notice holds the tag of
 * its watch, which is gone by then. Tags stay encoded throughout (tag.h).
 */

#include "notify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "conn.h"
#include "engine.h"
#include "jsonrpc.h"
#include "macro.h"
#include "state.h"
#include "text.h"
#include "wire.h"

static Notice *notice_new(Conn *c, NoticeKind kind, uint64_t id) {
        Daemon *d = c->daemon;
        Notice *n;

        if (c->closing)
                return NULL;
        n = calloc(1, sizeof(*n));
        if (!n) {
                conn_close(c, "out of memory queueing a notification", true);
                return NULL;
        }
        n->kind = (uint8_t)kind;
        n->id = id;
        n->since_ns = engine_now(d->engine, ENGINE_CLOCK_MONOTONIC);
        list_append(&c->notices, &n->link);
        c->queued_bytes += CONN_NOTICE_COST;
        conn_mark_dirty(c);
        if (c->queued_bytes > d->config.limits.queued_bytes)
                conn_close(c, "output limit exceeded: the client does not read its notifications", true);
        return n;
}

static Notice *notice_free(Notice *n) {
        tag_release(&n->tag, &n->tag_len);
        free(n);
        return NULL;
}

void notice_take_tag(Notice *n, TagText *tag, uint16_t *tag_len) {
        tag_release(&n->tag, &n->tag_len);
        tag_move(&n->tag, &n->tag_len, tag, tag_len);
}

void notice_unqueue(Conn *c, Notice *n) {
        list_remove(&c->notices, &n->link);
        c->queued_bytes -= CONN_NOTICE_COST;
        (void)notice_free(n);
}

void notify_drop_all(Conn *c) {
        ListNode *node;

        while ((node = list_first(&c->notices)))
                notice_unqueue(c, container_of(node, Notice, link));
}

void notify_ready(Conn *c, Notice **pending, uint64_t id, bool merge, uint32_t revents) {
        Notice *n;

        /* Only edge wakeups merge: oneshot promises one `ready` per arm. */
        if (*pending && merge) {
                (*pending)->events |= revents;
                (*pending)->count++;
                c->daemon->stats.coalesced++;
                return;
        }
        n = notice_new(c, NOTICE_READY, id);
        if (!n)
                return;
        n->events = revents;
        n->count = 1;
        *pending = n;
}

void notify_timer(Conn *c, Notice **pending, uint64_t id, uint64_t expirations, uint64_t late_ns) {
        Notice *n;

        if (*pending) {
                (*pending)->count += expirations;
                c->daemon->stats.coalesced++;
                return;
        }
        n = notice_new(c, NOTICE_TIMER, id);
        if (!n)
                return;
        n->count = expirations;
        n->late_ns = late_ns;
        *pending = n;
}

void notify_closed(Conn *c, uint64_t id, TagText *tag, uint16_t *tag_len, const char *reason) {
        Notice *n = notice_new(c, NOTICE_CLOSED, id);

        if (!n)
                return;
        /* The caller frees the watch right after: its tag moves here. */
        tag_move(&n->tag, &n->tag_len, tag, tag_len);
        n->reason = reason;
}

void notify_shutdown(Conn *c, const char *reason) {
        Notice *n = notice_new(c, NOTICE_SHUTDOWN, 0);

        if (n)
                n->reason = reason;
}

/* `ready` goes out by the hundred thousand a second, and building it with jansson (objects,
 * an snprintf per integer, the encoder) cost two thirds of the daemon's CPU under load
 * (perf, in bench/README.md). So it is assembled from fixed text, the tag as jansson
 * encoded it when the watch was made, and the "events" array as jansson encoded it once
 * per combination of events; `timer` the same way. tests/test-notify.c holds both to
 * jansson's own encoding. */
#define READY_HEAD "{\"jsonrpc\":\"2.0\",\"method\":\"ready\",\"params\":{\"watch\":"
#define TIMER_HEAD "{\"jsonrpc\":\"2.0\",\"method\":\"timer\",\"params\":{\"timer\":"

int notify_encode_ready(uint64_t watch, const char *tag, size_t tag_len, uint32_t events, uint64_t count,
                        char *buf, size_t size, size_t *ret_len) {
        const char *end = buf + size, *ev;
        size_t ev_len;
        char *p = buf;

        ev = text_events(events, &ev_len);
        if (!ev)
                return -EINVAL;
        p = text_put_lit(p, end, READY_HEAD);
        p = text_put_u64(p, end, watch);
        p = text_put_lit(p, end, ",\"tag\":");
        p = tag ? text_put(p, end, tag, tag_len) : text_put_lit(p, end, "null");
        p = text_put_lit(p, end, ",\"events\":");
        p = text_put(p, end, ev, ev_len);
        p = text_put_lit(p, end, ",\"count\":");
        p = text_put_u64(p, end, count);
        p = text_put_lit(p, end, "}}");
        if (!p)
                return -EMSGSIZE;
        *ret_len = (size_t)(p - buf);
        return 0;
}

int notify_encode_timer(uint64_t timer, const char *tag, size_t tag_len, uint64_t expirations, uint64_t late_ns,
                        char *buf, size_t size, size_t *ret_len) {
        const char *end = buf + size;
        char *p = buf;

        p = text_put_lit(p, end, TIMER_HEAD);
        p = text_put_u64(p, end, timer);
        p = text_put_lit(p, end, ",\"tag\":");
        p = tag ? text_put(p, end, tag, tag_len) : text_put_lit(p, end, "null");
        p = text_put_lit(p, end, ",\"expirations\":");
        p = text_put_u64(p, end, expirations);
        p = text_put_lit(p, end, ",\"late\":");
        p = text_put_real(p, end, (double)late_ns / 1e9);
        p = text_put_lit(p, end, "}}");
        if (!p)
                return -EMSGSIZE;
        *ret_len = (size_t)(p - buf);
        return 0;
}

/* The notification for @n, or NULL when it is moot. `ready` and `timer` never come here:
 * see notify_encode_ready(). */
static json_t *notice_to_json(Conn *c, Notice *n) {
        switch (n->kind) {
        case NOTICE_CLOSED:
                return jsonrpc_notification("closed", json_pack("{s:I,s:o,s:s}", "watch", (json_int_t)n->id, "tag",
                                                                tag_json(&n->tag, n->tag_len), "reason", n->reason));
        case NOTICE_SHUTDOWN:
                return jsonrpc_notification("shutdown", json_pack("{s:s}", "reason", n->reason));
        default:
                return NULL;
        }
}

/* What every monitor line says of the client it is about: id, pid, uid and (from hello)
 * name, so a monitor needs no listing to tell who it was; plus @key: @value (stolen). */
static json_t *monitor_params(const Conn *about, const char *key, json_t *value) {
        json_t *p = json_pack("{s:I,s:i,s:I,s:o}", "client", (json_int_t)about->id, "pid", (int)about->pid, "uid",
                              (json_int_t)about->uid, key, value);

        if (p && about->name && json_object_set_new(p, "name", json_string(about->name)) < 0) {
                json_decref(p);
                return NULL;
        }
        return p;
}

/* Queue @copy (stolen) for monitor @m, or count it dropped if @m lags (then the next one
 * it gets carries `dropped`). */
static void monitor_queue(Daemon *d, Conn *m, json_t *copy) {
        char *buf = NULL;
        size_t len;

        if (m->queued_bytes > d->config.limits.queued_bytes / 2) {
                m->monitor_dropped++;
                d->stats.monitor_dropped++;
                json_decref(copy);
                return;
        }
        if (copy && m->monitor_dropped > 0 &&
            json_object_set_new(json_object_get(copy, "params"), "dropped", json_integer((json_int_t)m->monitor_dropped)) ==
                    0)
                m->monitor_dropped = 0;
        if (copy && jsonrpc_encode_alloc(copy, &buf, &len) >= 0)
                (void)conn_queue_monitor_copy(m, buf, len);
        free(buf);
        json_decref(copy);
}

void notify_monitors_connection(Conn *c, const char *event, const char *reason) {
        Daemon *d = c->daemon;
        Conn *m;

        LIST_FOREACH(Conn, monitor_link, m, &d->monitors) {
                json_t *p;

                if (m->closing || m == c || !m->monitor_connections)
                        continue;
                p = monitor_params(c, "event", json_string(event));
                if (p && reason && json_object_set_new(p, "reason", json_string(reason)) < 0) {
                        json_decref(p);
                        p = NULL;
                }
                if (p)
                        monitor_queue(d, m, jsonrpc_notification("monitor", p));
        }
}

/* Monitors get a wrapped copy of every notification. A monitor that falls behind loses
 * copies (counted, and reported in the next one it gets), never the daemon's memory. */
static void monitor_copy(Daemon *d, Conn *from, json_t *msg) {
        Conn *m;

        LIST_FOREACH(Conn, monitor_link, m, &d->monitors) {
                if (m->closing || m == from)
                        continue;
                /* Lagging: counted, without building the copy. */
                if (m->queued_bytes > d->config.limits.queued_bytes / 2)
                        monitor_queue(d, m, NULL);
                else
                        monitor_queue(d, m, jsonrpc_notification("monitor", monitor_params(from, "message",
                                                                                             json_incref(msg))));
        }
}

/* Encode @n into @buf, and copy it to the monitors. Detaches @n from its watch or timer:
 * from here on new events start a new notice. Returns -ENOENT when it is moot (its watch
 * went away: unwatch promises no notification after its reply). */
static int notice_encode(Conn *c, Notice *n, NoticeResolveFn resolve, char *buf, size_t size,
                         size_t *ret_len) {
        Daemon *d = c->daemon;
        json_t *msg = NULL;
        NoticeSubject sub;
        bool alive;
        int r;

        if (n->kind == NOTICE_READY) {
                if (!resolve(c, n, &sub))
                        return -ENOENT;
                if (*sub.pending == n)
                        *sub.pending = NULL;
                r = notify_encode_ready(n->id, sub.tag, sub.tag_len, n->events, n->count, buf, size, ret_len);
                if (r >= 0 && list_first(&d->monitors))
                        msg = json_loadb(buf, *ret_len, 0, NULL);
        } else if (n->kind == NOTICE_TIMER) {
                alive = resolve(c, n, &sub);
                if (alive && *sub.pending == n)
                        *sub.pending = NULL;
                /* A live timer keeps its tag; a fired one-shot timer gave it to @n. */
                if (!alive) {
                        sub.tag = tag_text(&n->tag, n->tag_len);
                        sub.tag_len = n->tag_len;
                }
                r = notify_encode_timer(n->id, sub.tag, sub.tag_len, n->count, n->late_ns, buf, size, ret_len);
                if (r >= 0 && list_first(&d->monitors))
                        msg = json_loadb(buf, *ret_len, 0, NULL);
        } else {
                msg = notice_to_json(c, n);
                r = msg ? jsonrpc_encode(msg, buf, size, ret_len) : -ENOENT;
        }
        if (msg && r >= 0 && list_first(&d->monitors))
                monitor_copy(d, c, msg);
        json_decref(msg);
        return r;
}

/* Send one packet of @count notifications (or only queue it, if !@send); park it on EAGAIN.
 * Returns 0, -EAGAIN, -errno. */
static int send_packet(Conn *c, char *buf, size_t len, unsigned count, bool send) {
        Daemon *d = c->daemon;
        const char *data = buf + 1; /* buf[0] is reserved for '[' */
        int r;

        if (count == 0)
                return 0;
        if (count > 1) {
                buf[0] = '[';
                buf[len++] = ']';
                data = buf;
        } else
                len--;
        d->stats.notifications += count;
        c->notifications += count;
        r = send ? wire_send(c->fd, data, len, NULL, 0) : -EAGAIN;
        if (r == -EAGAIN)
                return conn_queue_packet(c, data, len) < 0 ? -ENOBUFS : -EAGAIN;
        if (r < 0)
                return r;
        d->stats.packets_out++;
        d->stats.bytes_out += len;
        return 0;
}

static int flush_notices(Conn *c, NoticeResolveFn resolve, bool send) {
        Daemon *d = c->daemon;
        char *buf = d->send_buf;
        size_t len = 1; /* room for '[' */
        unsigned count = 0;
        uint64_t sent_at = monotonic_ns();
        ListNode *node;
        int r;

        while ((node = list_first(&c->notices))) {
                Notice *n = container_of(node, Notice, link);
                char *item = d->encode_buf;
                size_t item_len;

                r = notice_encode(c, n, resolve, item, sizeof(d->encode_buf), &item_len);
                if (r >= 0 && n->kind != NOTICE_SHUTDOWN)
                        histogram_add(&d->latency, sent_at > n->since_ns ? sent_at - n->since_ns : 0);
                notice_unqueue(c, n);
                if (r < 0)
                        continue; /* moot, or cannot be encoded: nothing to send */

                /* '[' + items joined by ',' + ']' must fit one packet. */
                if (count > 0 && len + 1 + item_len + 1 > EVD_MAX_PACKET) {
                        r = send_packet(c, buf, len, count, send);
                        len = 1;
                        count = 0;
                        if (r == -EAGAIN && !send)
                                r = 0; /* parked, as asked: this item starts the next packet */
                        if (r < 0) {
                                /* This item is encoded but not sent: keep it in order. */
                                if (r == -EAGAIN && conn_queue_packet(c, item, item_len) < 0)
                                        return -ENOBUFS;
                                return r;
                        }
                }
                if (count > 0)
                        buf[len++] = ',';
                memcpy(buf + len, item, item_len);
                len += item_len;
                count++;
        }
        return send_packet(c, buf, len, count, send);
}

int notify_flush(Conn *c, NoticeResolveFn resolve) {
        return flush_notices(c, resolve, true);
}

int notify_park(Conn *c, NoticeResolveFn resolve) {
        int r = flush_notices(c, resolve, false);

        return r == -EAGAIN ? 0 : r;
}
