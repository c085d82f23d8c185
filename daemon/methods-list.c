/* methods-list.c - the listings: `watches`, `timers` and `clients`, paged
 *
 * A listing writes its reply straight into the reply buffer, item by item (watches and
 * timers without jansson, their tags as stored: tag.h), and stops at the packet size or at
 * the byte budget left to the packet, whichever comes first: a listing never exists as a
 * jansson tree, and never costs more than one packet of memory. `offset` and `limit` page
 * through the rest; `total` and `next` say what is left.
 */

#include "methods-internal.h"

#include <assert.h>

#include "clock.h"
#include "conn.h"
#include "macro.h"
#include "state.h"
#include "text.h"
#include "watch.h"

#define LIST_DEFAULT_LIMIT 1000
#define LIST_MAX_LIMIT 10000

static int page_init(Page *p, json_t *params, MethodError *err) {
        json_t *o = params ? json_object_get(params, "offset") : NULL;
        json_t *l = params ? json_object_get(params, "limit") : NULL;

        p->limit = LIST_DEFAULT_LIMIT;
        if (o && (!json_is_integer(o) || json_integer_value(o) < 0))
                return fail(err, EVD_ERR_INVALID_PARAMS, "offset", "expected a non-negative integer");
        if (l && (!json_is_integer(l) || json_integer_value(l) < 1 || json_integer_value(l) > LIST_MAX_LIMIT))
                return fail(err, EVD_ERR_INVALID_PARAMS, "limit", "expected an integer from 1 to 10000");
        if (o)
                p->offset = (size_t)json_integer_value(o);
        if (l)
                p->limit = (size_t)json_integer_value(l);
        return 0;
}

/* `{"jsonrpc":"2.0","id":ID,"result":{"KEY":[`, as jsonrpc_reply() would encode it. */
static int page_begin(Page *p, json_t *id, const char *key, MethodError *err) {
        char *q = p->p;
        size_t n;

        q = text_put_lit(q, p->hard, "{\"jsonrpc\":\"2.0\",\"id\":");
        if (!q)
                return fail(err, EVD_ERR_TOO_LARGE, NULL, "the reply does not fit in one packet");
        n = id ? json_dumpb(id, q, (size_t)(p->hard - q), JSON_COMPACT | JSON_ENCODE_ANY) : 0;
        if (id && (n == 0 || n > (size_t)(p->hard - q)))
                return fail(err, EVD_ERR_TOO_LARGE, NULL, "the reply does not fit in one packet");
        q = id ? q + n : text_put_lit(q, p->hard, "null");
        q = text_put_lit(q, p->hard, ",\"result\":{\"");
        q = text_put(q, p->hard, key, strlen(key));
        q = text_put_lit(q, p->hard, "\":[");
        if (!q)
                return fail(err, EVD_ERR_TOO_LARGE, NULL, "the reply does not fit in one packet");
        p->p = q;
        return 0;
}

/* Whether the page wants the item at the current index; false once it is full (stop). */
static bool page_wants(Page *p) {
        if (p->full)
                return false;
        if (p->index < p->offset) {
                p->index++;
                p->skipped++;
                return false;
        }
        if (p->count >= p->limit)
                p->full = true;
        return !p->full;
}

/* The item written at p->p up to @end (NULL: it did not fit) is kept or rolled back. */
static void page_commit(Page *p, char *end) {
        if (!end || (end > p->soft && p->count > 0)) {
                p->full = true;
                return;
        }
        p->p = end;
        p->count++;
        p->index++;
}

/* Where the next item starts: after a ',' if it is not the first. */
static char *page_item_start(Page *p) {
        return p->count > 0 ? text_put_lit(p->p, p->hard, ",") : p->p;
}

static void page_add_json(Page *p, json_t *item) {
        char *q = page_item_start(p);
        size_t n = item && q ? json_dumpb(item, q, (size_t)(p->hard - q), JSON_COMPACT) : 0;

        page_commit(p, n > 0 && n <= (size_t)(p->hard - q) ? q + n : NULL);
        json_decref(item);
}

static void page_end(Page *p, size_t total) {
        size_t next = p->offset + p->count;
        char *q = p->p;

        /* LIST_TAIL_ROOM is kept for this. */
        q = text_put_lit(q, p->hard + LIST_TAIL_ROOM, "],\"total\":");
        q = text_put_u64(q, p->hard + LIST_TAIL_ROOM, total);
        q = text_put_lit(q, p->hard + LIST_TAIL_ROOM, ",\"next\":");
        q = next < total ? text_put_u64(q, p->hard + LIST_TAIL_ROOM, next)
                         : text_put_lit(q, p->hard + LIST_TAIL_ROOM, "null");
        q = text_put_lit(q, p->hard + LIST_TAIL_ROOM, "}}");
        assert(q);
        p->p = q;
}

static double age_seconds(Daemon *d, uint64_t since) {
        return (double)(engine_now(d->engine, ENGINE_CLOCK_MONOTONIC) - since) / 1e9;
}

/* Whether @c may look at (never act on) @t: an admin any client, anyone else the
 * connections of its own uid (the same user's other programs). */
static bool may_inspect(const Conn *c, const Conn *t) {
        return c->admin || t->uid == c->uid;
}

/* The connection whose objects to list: the caller's own, or one it may inspect. A
 * non-admin asking about a client of another uid is denied whether or not it exists. */
static Conn *target_conn(Conn *c, json_t *params, MethodError *err) {
        uint64_t id;
        Conn *t;

        if (get_id(params, "client", false, &id, err) < 0)
                return NULL;
        if (id == 0 || id == c->id)
                return c;
        LIST_FOREACH(Conn, link, t, &c->daemon->conns)
                if (t->id == id && !t->closing && may_inspect(c, t))
                        return t;
        if (!c->admin)
                (void)fail(err, EVD_ERR_PERMISSION, "client", "only admins may inspect other users' clients");
        else
                (void)fail(err, EVD_ERR_INVALID_PARAMS, "client", "no such client");
        return NULL;
}

int methods_list_watches(Conn *c, json_t *params, json_t *id, Page *p, MethodError *err) {
        static const char *const known[] = { "client", "offset", "limit", NULL };
        Conn *t;
        Watch *w;

        if (check_known(params, known, err) < 0 || !(t = target_conn(c, params, err)) || page_init(p, params, err) < 0 ||
            page_begin(p, id, "watches", err) < 0)
                return -1;
        LIST_FOREACH(Watch, link, w, &t->watches) {
                const char *kind, *events, *tag;
                size_t events_len, tag_len;
                char *q;

                if (!page_wants(p)) {
                        if (p->full)
                                break;
                        continue;
                }
                events = text_events(w->events, &events_len);
                if (!events)
                        return fail_errno(err, -ENOMEM);
                tag = watch_tag_text(w, &tag_len);
                kind = watch_kind(w);
                q = page_item_start(p);
                q = text_put_lit(q, p->hard, "{\"watch\":");
                q = text_put_u64(q, p->hard, w->id);
                q = text_put_lit(q, p->hard, ",\"client\":");
                q = text_put_u64(q, p->hard, t->id);
                q = text_put_lit(q, p->hard, ",\"events\":");
                q = text_put(q, p->hard, events, events_len);
                q = text_put_lit(q, p->hard, ",\"mode\":\"");
                q = text_put(q, p->hard, mode_name(w->mode), strlen(mode_name(w->mode)));
                q = text_put_lit(q, p->hard, "\",\"armed\":");
                q = text_put_bool(q, p->hard, source_io_is_armed(w->source));
                if (tag) {
                        q = text_put_lit(q, p->hard, ",\"tag\":");
                        q = text_put(q, p->hard, tag, tag_len);
                }
                q = text_put_lit(q, p->hard, ",\"count\":");
                q = text_put_u64(q, p->hard, w->wakeups);
                q = text_put_lit(q, p->hard, ",\"fd_type\":\"");
                q = text_put(q, p->hard, kind, strlen(kind));
                q = text_put_lit(q, p->hard, "\"}");
                page_commit(p, q);
        }
        page_end(p, t->watches.n);
        return 0;
}

int methods_list_timers(Conn *c, json_t *params, json_t *id, Page *p, MethodError *err) {
        static const char *const known[] = { "client", "offset", "limit", NULL };
        ClientTimer *t;
        Conn *owner;
        uint64_t now[_ENGINE_CLOCK_MAX];

        if (check_known(params, known, err) < 0 || !(owner = target_conn(c, params, err)) ||
            page_init(p, params, err) < 0 || page_begin(p, id, "timers", err) < 0)
                return -1;
        /* The clock now, as m_timer() counts deadlines: the loop's cached time can predate a
         * timer made earlier in this iteration, and `next` would exceed its `after`. */
        now[ENGINE_CLOCK_MONOTONIC] = clock_ns(CLOCK_MONOTONIC);
        now[ENGINE_CLOCK_REALTIME] = clock_ns(CLOCK_REALTIME);
        LIST_FOREACH(ClientTimer, link, t, &owner->timers) {
                uint64_t at, interval;
                const char *tag;
                size_t tag_len;
                char *q;

                if (!page_wants(p)) {
                        if (p->full)
                                break;
                        continue;
                }
                /* A held timer is due since its first unreported deadline (overdue). */
                at = client_timer_is_held(t) ? t->held_due : source_timer_get_at(client_timer_source(t));
                interval = source_timer_get_interval(client_timer_source(t));
                tag = client_timer_tag_text(t, &tag_len);
                q = page_item_start(p);
                q = text_put_lit(q, p->hard, "{\"timer\":");
                q = text_put_u64(q, p->hard, t->id);
                q = text_put_lit(q, p->hard, ",\"client\":");
                q = text_put_u64(q, p->hard, owner->id);
                q = client_timer_clock(t) == ENGINE_CLOCK_REALTIME ? text_put_lit(q, p->hard, ",\"clock\":\"realtime\"")
                                                      : text_put_lit(q, p->hard, ",\"clock\":\"monotonic\"");
                q = text_put_lit(q, p->hard, ",\"next\":");
                q = text_put_real(q, p->hard, ((double)at - (double)now[client_timer_clock(t)]) / 1e9);
                q = text_put_lit(q, p->hard, ",\"interval\":");
                q = interval ? text_put_real(q, p->hard, (double)interval / 1e9) : text_put_lit(q, p->hard, "null");
                if (tag) {
                        q = text_put_lit(q, p->hard, ",\"tag\":");
                        q = text_put(q, p->hard, tag, tag_len);
                }
                q = text_put_lit(q, p->hard, ",\"expirations\":");
                q = text_put_u64(q, p->hard, t->expirations);
                q = text_put_lit(q, p->hard, "}");
                page_commit(p, q);
        }
        page_end(p, owner->timers.n);
        return 0;
}

int methods_list_clients(Conn *c, json_t *params, json_t *id, Page *p, MethodError *err) {
        static const char *const known[] = { "offset", "limit", NULL };
        Daemon *d = c->daemon;
        Conn *t;

        size_t total = 0;

        if (check_known(params, known, err) < 0)
                return -1;
        if (page_init(p, params, err) < 0 || page_begin(p, id, "clients", err) < 0)
                return -1;
        LIST_FOREACH(Conn, link, t, &d->conns)
                total += may_inspect(c, t);
        /* Closing connections too: until the end of the iteration they hold their fd and
         * count, in status and against the limits alike (PROTOCOL.md 9). A non-admin sees
         * its own uid's only. */
        LIST_FOREACH(Conn, link, t, &d->conns) {
                if (!may_inspect(c, t))
                        continue;
                if (!page_wants(p)) {
                        if (p->full)
                                break;
                        continue;
                }
                /* uid_t and gid_t are unsigned: through json_int_t, not int. */
                page_add_json(p, json_pack("{s:I,s:i,s:I,s:I,s:s*,s:b,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:f}", "client",
                                           (json_int_t)t->id, "pid", (int)t->pid, "uid", (json_int_t)t->uid, "gid",
                                           (json_int_t)t->gid, "name", t->name, "admin", t->admin, "monitor",
                                           t->monitor, "closing", t->closing, "watches", (json_int_t)t->watches.n,
                                           "timers", (json_int_t)t->timers.n, "queued_bytes", (json_int_t)t->queued_bytes,
                                           "requests", (json_int_t)t->requests, "notifications",
                                           (json_int_t)t->notifications, "connected", age_seconds(d, t->connected_at)));
        }
        page_end(p, total);
        return 0;
}
