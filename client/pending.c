/*
 * pending.c - the callbacks queued for evd_client_dispatch(): completions, watch and timer
 * events, notifications, connection events. Every layer queues here; only
 * client_run_pending() (called from evd_client_dispatch()) runs them, so no program
 * callback ever runs inside a synchronous call. Below it: connection.c, obj-table.c.
 */

#include <stdlib.h>

#include "connection.h"
#include "macro.h"
#include "obj-table.h"
#include "pending.h"

Pending *pending_add(struct evd_client *c, PendingKind kind) {
        Pending *p = calloc(1, sizeof(*p));

        if (!p)
                return NULL; /* out of memory: the callback is lost, the state stays right */
        p->kind = kind;
        list_append(&c->pending, &p->link);
        return p;
}

/* A completion settled without the daemon: @r, and "{}" as the result on success. */
void pending_add_done(struct evd_client *c, evd_done_fn done, void *userdata, int r) {
        Pending *p;

        if (!done)
                return;
        p = pending_add(c, PENDING_DONE);
        if (!p)
                return;
        p->done = done;
        p->done_userdata = userdata;
        p->r = r;
        p->result = r >= 0 ? json_object() : NULL;
}

Pending *pending_free(Pending *p) {
        if (!p)
                return NULL;
        json_decref(p->result);
        remote_error_clear(&p->error);
        free(p->method);
        json_decref(p->params);
        free(p);
        return NULL;
}

static int pending_run(struct evd_client *c, Pending *p) {
        Obj *o;
        int r = 0;

        switch (p->kind) {
        case PENDING_DONE:
                client_set_last_error(c, &p->error);
                return p->done(c, p->r, p->result, p->done_userdata);
        case PENDING_WATCH:
                o = obj_get(c, p->obj);
                if (!o || o->removed || o->kind != OBJ_WATCH)
                        return 0;
                r = o->watch_cb(c, o->id, p->revents, o->userdata);
                if ((p->revents & EVD_CLOSED) && (o = obj_get(c, p->obj)))
                        (void)obj_free(c, o);
                return r;
        case PENDING_TIMER:
                o = obj_get(c, p->obj);
                if (!o || o->removed || o->kind != OBJ_TIMER)
                        return 0;
                r = o->timer_cb(c, o->id, p->expirations, o->userdata);
                if ((o = obj_get(c, p->obj)) && o->state == OBJ_GONE)
                        (void)obj_free(c, o);
                return r;
        case PENDING_NOTIFY:
                return c->notify_cb ? c->notify_cb(c, p->method, p->params, c->notify_userdata) : 0;
        case PENDING_CONNECTION:
                return c->connection_cb
                               ? c->connection_cb(c, p->event, p->r, c->connection_userdata)
                               : 0;
        default:
                return 0;
        }
}

/**
 * client_run_pending() - run the callbacks queued so far (not the ones they queue)
 * @c: the client
 *
 * Return: 0, or the first negative value a callback returned (the rest stays queued).
 */
int client_run_pending(struct evd_client *c) {
        size_t budget = c->pending.n;

        while (budget-- > 0 && !c->exit_requested) {
                ListNode *n = list_first(&c->pending);
                Pending *p;
                int r;

                if (!n)
                        break;
                p = container_of(n, Pending, link);
                list_remove(&c->pending, n);
                r = pending_run(c, p);
                (void)pending_free(p);
                if (r < 0)
                        return r;
        }
        return 0;
}
