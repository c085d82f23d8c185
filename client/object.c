/*
 * object.c - watches and timers: the program's desired state, kept across reconnects.
 * The top of the request stack: it builds the requests about objects and reads their
 * replies and notifications for request.c, through the ObjOps hooks (obj_ops) that
 * client.c installs, so request.c never calls up here. Storage is obj-table.c's.
 *
 * An Obj is what the program asked for (fd duplicate, events, mode, armed; a timer's next
 * expiry and interval), under a local id that never changes. The daemon's copy is derived
 * from it: a CREATE request is built from the Obj when it is sent, so re-registering after
 * a reconnect is "send a CREATE for every live Obj", with the timer's remaining time.
 *
 * Invariants:
 *  - A live Obj (not removed, not GONE) has a daemon id (REGISTERED), a CREATE in flight
 *    (PENDING), or a CREATE in the queue (UNREGISTERED): o->create points at it.
 *  - A MODIFY or ARM for an Obj whose CREATE is still unsent is not sent at all: the
 *    CREATE will carry the new state. REMOVE of such an Obj cancels the CREATE.
 *  - Removing makes the Obj invisible at once (no callback runs after the call); it is
 *    freed when the daemon confirmed, or when it turns out the daemon no longer has it.
 *  - Notifications find their Obj by tag (the local id) and check the daemon id, so a
 *    notification that overtakes the reply to its CREATE still finds the Obj.
 *  - Oneshot: "armed" mirrors the daemon. A re-registered watch starts armed in the
 *    daemon; if the program had not re-armed it, its first ready is suppressed, which
 *    leaves both sides disarmed until evd_watch_arm().
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connection.h"
#include "macro.h"
#include "obj-table.h"
#include "object.h"
#include "pending.h"
#include "protocol.h"
#include "request.h"

_Static_assert(EVD_IN == EVD_EVENT_IN && EVD_PRI == EVD_EVENT_PRI && EVD_OUT == EVD_EVENT_OUT &&
                       EVD_ERR == EVD_EVENT_ERR && EVD_HUP == EVD_EVENT_HUP &&
                       EVD_RDHUP == EVD_EVENT_RDHUP,
               "public event bits are the wire's");
_Static_assert((EVD_CLOSED & EVD_EVENTS_ALL) == 0, "EVD_CLOSED is no poll bit");

/* ---- building requests --------------------------------------------------------------- */

static const char *mode_name(enum evd_mode mode) {
        return mode == EVD_EDGE ? "edge" : "oneshot";
}

static json_t *timer_params(Obj *o) {
        json_t *p = json_object();
        uint64_t now;
        int r = 0;

        if (!p)
                return NULL;
        if (o->realtime)
                r |= json_object_set_new(p, "at", json_real((double)o->next_usec / 1e6));
        else {
                /* Relative to the moment it is sent: the remaining time, after a reconnect too. */
                now = now_usec(CLOCK_MONOTONIC);
                if (o->next_usec < now)
                        o->next_usec = now;
                r |= json_object_set_new(p, "after", json_real((double)(o->next_usec - now) / 1e6));
        }
        if (o->interval_usec)
                r |= json_object_set_new(p, "interval", json_real((double)o->interval_usec / 1e6));
        r |= json_object_set_new(p, "tag", json_integer((json_int_t)o->id));
        if (r < 0) {
                json_decref(p);
                return NULL;
        }
        return p;
}

/**
 * obj_build_request() - method, params and fd of a CREATE, MODIFY, ARM or REMOVE, now
 * @c: the client
 * @req: the request
 * @ret_method: static method name
 * @ret_params: a new reference
 * @ret_fd: the fd to pass (borrowed), or -1
 *
 * Return: 0 to send; 1 if it must wait (its object's CREATE is unanswered); 2 if it is
 * settled without the daemon (removing an object the daemon no longer has, now freed);
 * -ENOENT if its object is gone; -ENOMEM.
 */
static int obj_build_request(struct evd_client *c, Request *req, const char **ret_method,
                             json_t **ret_params, int *ret_fd) {
        Obj *o = obj_get(c, req->obj);
        json_t *p = NULL;
        const char *key;

        *ret_fd = -1;
        if (req->kind == REQ_CREATE) {
                if (!o)
                        return -ENOENT;
                if (o->kind == OBJ_WATCH) {
                        p = json_pack("{s:i,s:o,s:s,s:I}", "fd", 0, "events",
                                      protocol_events_to_json(o->events), "mode",
                                      mode_name(o->mode), "tag", (json_int_t)o->id);
                        *ret_fd = o->fd;
                        *ret_method = "watch";
                } else {
                        p = timer_params(o);
                        *ret_method = "timer";
                }
                *ret_params = p;
                return p ? 0 : -ENOMEM;
        }

        if (!o || o->state == OBJ_GONE || o->state == OBJ_UNREGISTERED) {
                if (req->kind != REQ_REMOVE)
                        return -ENOENT;
                (void)obj_free(c, o);
                return 2;
        }
        if (o->state == OBJ_PENDING)
                return 1;

        key = o->kind == OBJ_WATCH ? "watch" : "timer";
        switch (req->kind) {
        case REQ_MODIFY:
                p = json_pack("{s:I,s:o,s:s}", "watch", (json_int_t)o->daemon_id, "events",
                              protocol_events_to_json(req->events), "mode", mode_name(req->mode));
                *ret_method = "modify";
                break;
        case REQ_ARM:
                p = json_pack("{s:I}", "watch", (json_int_t)o->daemon_id);
                *ret_method = "arm";
                break;
        case REQ_REMOVE:
                p = json_pack("{s:I}", key, (json_int_t)o->daemon_id);
                *ret_method = o->kind == OBJ_WATCH ? "unwatch" : "cancel";
                break;
        default:
                return -EINVAL;
        }
        *ret_params = p;
        return p ? 0 : -ENOMEM;
}

/* The daemon dropped @o on its own: tell the program through the object's callback. */
static void obj_gone(struct evd_client *c, Obj *o) {
        Pending *p;

        o->state = OBJ_GONE;
        p = pending_add(c, o->kind == OBJ_WATCH ? PENDING_WATCH : PENDING_TIMER);
        if (!p)
                return;
        p->obj = o->id;
        p->revents = EVD_CLOSED;
        p->expirations = 0;
}

/**
 * obj_handle_reply() - the daemon answered a CREATE, MODIFY, ARM or REMOVE
 * @c: the client
 * @req: the request, already out of the in-flight list; completed here
 * @r: 0 or the daemon's error code
 * @result: stolen
 * @err: the daemon's error, moved out
 */
static void obj_handle_reply(struct evd_client *c, Request *req, int r, json_t *result,
                             RemoteError *err) {
        Obj *o = obj_get(c, req->obj);

        switch (req->kind) {
        case REQ_CREATE: {
                json_t *id;

                if (!o)
                        break;
                if (r >= 0) {
                        id = json_object_get(result, o->kind == OBJ_WATCH ? "watch" : "timer");
                        if (json_is_integer(id) && json_integer_value(id) > 0) {
                                o->daemon_id = (uint64_t)json_integer_value(id);
                                if (o->state == OBJ_PENDING)
                                        o->state = OBJ_REGISTERED;
                                break;
                        }
                        r = -EPROTO;
                }
                if (o->removed)
                        o->state = OBJ_GONE; /* the REMOVE behind it settles and frees it */
                else if (req->sync || req->done)
                        (void)obj_free(c, o); /* the caller hears of it from the completion */
                else
                        obj_gone(c, o); /* a re-registration failed */
                break;
        }
        case REQ_MODIFY:
                if (r < 0 && o && o->events == req->events && o->mode == req->mode) {
                        o->events = req->old_events;
                        o->mode = req->old_mode;
                }
                break;
        case REQ_REMOVE:
                (void)obj_free(c, o);
                /* Already dropped by the daemon (closed, fired): removed all the same. */
                if (r == EVD_ERR_NO_SUCH_WATCH || r == EVD_ERR_NO_SUCH_TIMER) {
                        r = 0;
                        remote_error_clear(err);
                        json_decref(result);
                        result = json_object();
                }
                break;
        default:
                break;
        }
        request_complete(c, req, r, result, err);
}

/**
 * obj_handle_notification() - "ready", "timer" or "closed" about one of our objects
 * @c: the client
 * @method: the notification
 * @params: borrowed
 *
 * Return: true if consumed; false if it is not about an object of this library (the
 * program's notify handler gets it).
 */
static bool obj_handle_notification(struct evd_client *c, const char *method, json_t *params) {
        bool ready = strcmp(method, "ready") == 0, timer = strcmp(method, "timer") == 0;
        bool closed = strcmp(method, "closed") == 0;
        ObjKind kind = timer ? OBJ_TIMER : OBJ_WATCH;
        json_t *tag = json_object_get(params, "tag");
        json_t *did = json_object_get(params, timer ? "timer" : "watch");
        uint32_t events = 0;
        Pending *p;
        Obj *o;

        if (!ready && !timer && !closed)
                return false;
        o = json_is_integer(tag) ? obj_get(c, (uint64_t)json_integer_value(tag)) : NULL;
        if (!o || o->kind != kind || !json_is_integer(did))
                return false;
        if (o->daemon_id != 0 && (uint64_t)json_integer_value(did) != o->daemon_id)
                return false;
        if (o->removed || o->state == OBJ_GONE || o->state == OBJ_UNREGISTERED)
                return true;

        if (closed) {
                obj_gone(c, o);
                return true;
        }
        if (ready) {
                if (protocol_events_from_json(json_object_get(params, "events"), EVD_EVENTS_ALL,
                                              &events, NULL) < 0)
                        return true;
                if (o->mode == EVD_ONESHOT) {
                        if (!o->armed)
                                return true; /* see the top of the file */
                        o->armed = false;
                }
                p = pending_add(c, PENDING_WATCH);
                if (p) {
                        p->obj = o->id;
                        p->revents = events;
                }
                return true;
        }

        json_t *n = json_object_get(params, "expirations");
        uint64_t expirations = json_is_integer(n) && json_integer_value(n) > 0
                                       ? (uint64_t)json_integer_value(n)
                                       : 1;

        if (o->interval_usec)
                o->next_usec += expirations * o->interval_usec;
        else
                o->state =
                        OBJ_GONE; /* fired once: the daemon forgot it; freed after the callback */
        p = pending_add(c, PENDING_TIMER);
        if (p) {
                p->obj = o->id;
                p->expirations = expirations;
        }
        return true;
}

/**
 * objects_prepare_reconnect() - CREATE requests for every live object, in creation order
 * @c: the client, after client_requests_reset() kept the CREATEs it had
 * @ret_creates: initialised here; the requests to queue first on the next connection
 */
static void objects_prepare_reconnect(struct evd_client *c, List *ret_creates) {
        Obj *o;

        list_init(ret_creates);
        LIST_FOREACH(Obj, link, o, &c->objects) {
                Request *req;

                if (o->removed) {
                        (void)obj_free(c, o);
                        continue;
                }
                if (o->state == OBJ_GONE)
                        continue;
                o->state = OBJ_UNREGISTERED;
                o->daemon_id = 0;
                req = o->create;
                if (!req) {
                        req = request_new(REQ_CREATE);
                        if (!req) {
                                obj_gone(c, o);
                                continue;
                        }
                        req->obj = o->id;
                        o->create = req;
                }
                req->sent = false;
                req->rpc_id = 0;
                list_append(ret_creates, &req->link);
        }
}

/* What request.c calls up here for; installed as c->obj_ops by evd_client_new(). */
const ObjOps obj_ops = {
        .build_request = obj_build_request,
        .handle_reply = obj_handle_reply,
        .handle_notification = obj_handle_notification,
        .prepare_reconnect = objects_prepare_reconnect,
};

/* ---- the public calls ----------------------------------------------------------------- */

/* Common checks; 0 if @c may take requests. */
static int client_check(struct evd_client *c) {
        if (!c)
                return -EINVAL;
        client_begin(c);
        if (c->state == CLIENT_IDLE || c->state == CLIENT_DEAD)
                return -ENOTCONN;
        return 0;
}

/* Done without the daemon: return at once (sync) or complete at the next dispatch. */
static int settle_local(struct evd_client *c, bool sync, evd_done_fn done, void *userdata) {
        if (!sync) {
                pending_add_done(c, done, userdata, 0);
                client_update(c);
        }
        return 0;
}

static bool events_valid(uint32_t events) {
        return events != 0 && (events & ~(uint32_t)EVD_EVENTS_REQUESTABLE) == 0;
}

static bool mode_valid(enum evd_mode mode) {
        return mode == EVD_ONESHOT || mode == EVD_EDGE;
}

/* A new watch or timer with its CREATE request, which create_finish() sends. */
static Obj *create_begin(struct evd_client *c, ObjKind kind) {
        Request *req = request_new(REQ_CREATE);
        Obj *o = req ? obj_new(c, kind) : NULL;

        if (!o) {
                (void)request_free(req);
                return NULL;
        }
        o->create = req;
        req->obj = o->id;
        return o;
}

/* The id is known before the daemon answers: an async caller gets it at once, so that it
 * can name the object in pipelined calls; a sync caller only once it exists. */
static int create_finish(struct evd_client *c, Obj *o, bool sync, int timeout_ms, evd_done_fn done,
                         void *done_userdata, uint64_t *ret_id) {
        Request *req = o->create;
        uint64_t id = o->id;
        int r;

        req->done = done;
        req->done_userdata = done_userdata;
        if (!sync && ret_id)
                *ret_id = id;
        r = request_finish(c, req, sync, timeout_ms, NULL);
        if (r >= 0 && sync && ret_id)
                *ret_id = id;
        return r;
}

static int watch_add(struct evd_client *c, int fd, uint32_t events, enum evd_mode mode,
                     evd_watch_fn cb, void *userdata, bool sync, int timeout_ms, evd_done_fn done,
                     void *done_userdata, uint64_t *ret_watch) {
        _cleanup_close_ int dup = -1;
        Obj *o;
        int r;

        r = client_check(c);
        if (r < 0)
                return r;
        if (fd < 0)
                return -EBADF;
        if (!cb || !events_valid(events) || !mode_valid(mode))
                return -EINVAL;
        /* Our own copy: re-registration needs it, and the caller may close theirs. */
        dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dup < 0)
                return -errno;
        o = create_begin(c, OBJ_WATCH);
        if (!o)
                return -ENOMEM;
        o->fd = TAKE_FD(dup);
        o->events = events;
        o->mode = mode;
        o->armed = true;
        o->watch_cb = cb;
        o->userdata = userdata;
        return create_finish(c, o, sync, timeout_ms, done, done_userdata, ret_watch);
}

int evd_watch_add(struct evd_client *client, int fd, uint32_t events, enum evd_mode mode,
                  evd_watch_fn cb, void *userdata, int timeout_ms, uint64_t *ret_watch) {
        return watch_add(client, fd, events, mode, cb, userdata, true, timeout_ms, NULL, NULL,
                         ret_watch);
}

int evd_watch_add_async(struct evd_client *client, int fd, uint32_t events, enum evd_mode mode,
                        evd_watch_fn cb, void *userdata, evd_done_fn done, void *done_userdata,
                        uint64_t *ret_watch) {
        return watch_add(client, fd, events, mode, cb, userdata, false, -1, done, done_userdata,
                         ret_watch);
}

/* A live watch or timer the program may still name. */
static Obj *obj_visible(struct evd_client *c, uint64_t id, ObjKind kind) {
        Obj *o = obj_get(c, id);

        return o && !o->removed && o->kind == kind ? o : NULL;
}

static int watch_modify(struct evd_client *c, uint64_t watch, uint32_t events, enum evd_mode mode,
                        bool sync, int timeout_ms, evd_done_fn done, void *done_userdata) {
        Request *req;
        Obj *o;
        int r;

        r = client_check(c);
        if (r < 0)
                return r;
        if (!events_valid(events) || !mode_valid(mode))
                return -EINVAL;
        o = obj_visible(c, watch, OBJ_WATCH);
        if (!o || o->state == OBJ_GONE)
                return -ENOENT;
        req = request_new(REQ_MODIFY);
        if (!req)
                return -ENOMEM;
        req->obj = watch;
        req->old_events = o->events;
        req->old_mode = o->mode;
        req->events = o->events = events;
        /* PROTOCOL.md, modify: to edge makes it active; edge to oneshot leaves it armed. */
        if (mode == EVD_EDGE || o->mode == EVD_EDGE)
                o->armed = true;
        req->mode = o->mode = mode;
        if (o->create && !o->create->sent) {
                (void)request_free(req);
                return settle_local(c, sync, done, done_userdata);
        }
        req->done = done;
        req->done_userdata = done_userdata;
        return request_finish(c, req, sync, timeout_ms, NULL);
}

int evd_watch_modify(struct evd_client *client, uint64_t watch, uint32_t events, enum evd_mode mode,
                     int timeout_ms) {
        return watch_modify(client, watch, events, mode, true, timeout_ms, NULL, NULL);
}

int evd_watch_modify_async(struct evd_client *client, uint64_t watch, uint32_t events,
                           enum evd_mode mode, evd_done_fn done, void *done_userdata) {
        return watch_modify(client, watch, events, mode, false, -1, done, done_userdata);
}

static int watch_arm(struct evd_client *c, uint64_t watch, bool sync, int timeout_ms,
                     evd_done_fn done, void *done_userdata) {
        Request *req;
        Obj *o;
        int r;

        r = client_check(c);
        if (r < 0)
                return r;
        o = obj_visible(c, watch, OBJ_WATCH);
        if (!o || o->state == OBJ_GONE)
                return -ENOENT;
        if (o->mode != EVD_ONESHOT)
                return -EINVAL;
        req = request_new(REQ_ARM);
        if (!req)
                return -ENOMEM;
        o->armed = true;
        if (o->create && !o->create->sent) {
                (void)request_free(req); /* a new watch starts armed */
                return settle_local(c, sync, done, done_userdata);
        }
        req->obj = watch;
        req->done = done;
        req->done_userdata = done_userdata;
        return request_finish(c, req, sync, timeout_ms, NULL);
}

int evd_watch_arm(struct evd_client *client, uint64_t watch, int timeout_ms) {
        return watch_arm(client, watch, true, timeout_ms, NULL, NULL);
}

int evd_watch_arm_async(struct evd_client *client, uint64_t watch, evd_done_fn done,
                        void *done_userdata) {
        return watch_arm(client, watch, false, -1, done, done_userdata);
}

static int obj_remove(struct evd_client *c, uint64_t id, ObjKind kind, bool sync, int timeout_ms,
                      evd_done_fn done, void *done_userdata) {
        Request *req;
        Obj *o;
        int r;

        r = client_check(c);
        if (r < 0)
                return r;
        o = obj_visible(c, id, kind);
        if (!o)
                return -ENOENT;
        if (o->state == OBJ_GONE) {
                (void)obj_free(c, o); /* the daemon has already forgotten it */
                return settle_local(c, sync, done, done_userdata);
        }
        if (o->create && !o->create->sent) {
                Request *create = o->create;

                list_remove(&c->queue, &create->link);
                request_complete(c, create, -ECANCELED, NULL, NULL);
                (void)obj_free(c, o);
                return settle_local(c, sync, done, done_userdata);
        }
        req = request_new(REQ_REMOVE);
        if (!req)
                return -ENOMEM;
        o->removed = true;
        req->obj = id;
        req->done = done;
        req->done_userdata = done_userdata;
        return request_finish(c, req, sync, timeout_ms, NULL);
}

int evd_watch_remove(struct evd_client *client, uint64_t watch, int timeout_ms) {
        return obj_remove(client, watch, OBJ_WATCH, true, timeout_ms, NULL, NULL);
}

int evd_watch_remove_async(struct evd_client *client, uint64_t watch, evd_done_fn done,
                           void *done_userdata) {
        return obj_remove(client, watch, OBJ_WATCH, false, -1, done, done_userdata);
}

int evd_timer_cancel(struct evd_client *client, uint64_t timer, int timeout_ms) {
        return obj_remove(client, timer, OBJ_TIMER, true, timeout_ms, NULL, NULL);
}

int evd_timer_cancel_async(struct evd_client *client, uint64_t timer, evd_done_fn done,
                           void *done_userdata) {
        return obj_remove(client, timer, OBJ_TIMER, false, -1, done, done_userdata);
}

static int timer_add(struct evd_client *c, bool realtime, uint64_t when, uint64_t interval,
                     evd_timer_fn cb, void *userdata, bool sync, int timeout_ms, evd_done_fn done,
                     void *done_userdata, uint64_t *ret_timer) {
        Obj *o;
        int r;

        r = client_check(c);
        if (r < 0)
                return r;
        if (!cb || when > (realtime ? CLIENT_MAX_AT_USEC : CLIENT_MAX_TIMER_USEC) ||
            interval > CLIENT_MAX_TIMER_USEC ||
            (interval != 0 && interval < CLIENT_MIN_INTERVAL_USEC))
                return -EINVAL;
        o = create_begin(c, OBJ_TIMER);
        if (!o)
                return -ENOMEM;
        o->realtime = realtime;
        o->next_usec = realtime ? when : now_usec(CLOCK_MONOTONIC) + when;
        o->interval_usec = interval;
        o->timer_cb = cb;
        o->userdata = userdata;
        return create_finish(c, o, sync, timeout_ms, done, done_userdata, ret_timer);
}

int evd_timer_after(struct evd_client *client, uint64_t usec, uint64_t interval_usec,
                    evd_timer_fn cb, void *userdata, int timeout_ms, uint64_t *ret_timer) {
        return timer_add(client, false, usec, interval_usec, cb, userdata, true, timeout_ms, NULL,
                         NULL, ret_timer);
}

int evd_timer_after_async(struct evd_client *client, uint64_t usec, uint64_t interval_usec,
                          evd_timer_fn cb, void *userdata, evd_done_fn done, void *done_userdata,
                          uint64_t *ret_timer) {
        return timer_add(client, false, usec, interval_usec, cb, userdata, false, -1, done,
                         done_userdata, ret_timer);
}

int evd_timer_at(struct evd_client *client, uint64_t realtime_usec, uint64_t interval_usec,
                 evd_timer_fn cb, void *userdata, int timeout_ms, uint64_t *ret_timer) {
        return timer_add(client, true, realtime_usec, interval_usec, cb, userdata, true, timeout_ms,
                         NULL, NULL, ret_timer);
}

int evd_timer_at_async(struct evd_client *client, uint64_t realtime_usec, uint64_t interval_usec,
                       evd_timer_fn cb, void *userdata, evd_done_fn done, void *done_userdata,
                       uint64_t *ret_timer) {
        return timer_add(client, true, realtime_usec, interval_usec, cb, userdata, false, -1, done,
                         done_userdata, ret_timer);
}
