/*
 * request.c - libevd's requests from call to completion, and the callback queue.
 *
 * A request waits in client->queue until it is sent and then in client->inflight until
 * the daemon answers; the daemon answers in request order, so pipelining is just "send
 * now, match the reply by id later". The queue is strictly FIFO: a request that names a
 * watch or timer whose creation is still unanswered (no daemon id yet) holds up the ones
 * behind it, so the daemon always sees requests in the order the program made them.
 * Request JSON is built only when sent, from the object's state at that moment; that is
 * what lets a reconnect re-register objects from their current state.
 *
 * Completion: a synchronous caller waits in request_wait(), reading and sending but
 * running no callback; everything that arrives meanwhile only updates state and queues
 * Pending callbacks, which evd_client_dispatch() runs. So no program callback ever runs
 * inside a synchronous call, and a callback may make synchronous calls.
 *
 * The session lives here too: what a new connection sends first (hello, re-registrations)
 * and what losing one does to the requests (client_lost()). Layers: below it connection.c,
 * obj-table.c, pending.c; above it object.c, reached only through c->obj_ops (the
 * requests about watches and timers are built, and their replies read, up there).
 */

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connection.h"
#include "jsonrpc.h"
#include "macro.h"
#include "obj-table.h"
#include "pending.h"
#include "protocol.h"
#include "request.h"
#include "wire.h"

Request *request_new(RequestKind kind) {
        Request *req = calloc(1, sizeof(*req));

        if (!req)
                return NULL;
        req->kind = kind;
        return req;
}

Request *request_free(Request *req) {
        if (!req)
                return NULL;
        free(req->method);
        json_decref(req->params);
        json_decref(req->result);
        remote_error_clear(&req->error);
        free(req);
        return NULL;
}

static void restore_progress(struct evd_client *c, int r) {
        Pending *p;

        if (r < 0 && c->restore_error == 0)
                c->restore_error = r;
        if (c->restoring == 0 || --c->restoring > 0 || !c->restore_pending)
                return;
        c->restore_pending = false;
        if (!c->connection_cb)
                return;
        p = pending_add(c, PENDING_CONNECTION);
        if (p) {
                p->event = EVD_CONNECTION_RESTORED;
                p->r = c->restore_error;
        }
}

/**
 * request_complete() - settle a request that is in no list any more
 * @c: the client
 * @req: the request; freed here unless a synchronous caller waits for it
 * @r: 0 or the failure
 * @result: stolen (may be NULL)
 * @err: the daemon's error, moved out (may be NULL)
 */
void request_complete(struct evd_client *c, Request *req, int r, json_t *result, RemoteError *err) {
        Obj *o;
        Pending *p;

        if (req->kind == REQ_CREATE && (o = obj_get(c, req->obj)) && o->create == req)
                o->create = NULL;
        if (req->reregister) {
                req->reregister = false;
                restore_progress(c, r);
        }

        if (req->sync) {
                req->complete = true;
                req->r = r;
                req->result = result;
                if (err) {
                        req->error = *err;
                        *err = (RemoteError){.code = 0};
                }
                return;
        }
        if (req->done && (p = pending_add(c, PENDING_DONE))) {
                p->done = req->done;
                p->done_userdata = req->done_userdata;
                p->r = r;
                p->result = TAKE_PTR(result);
                if (err) {
                        p->error = *err;
                        *err = (RemoteError){.code = 0};
                }
        }
        json_decref(result);
        if (err)
                remote_error_clear(err);
        (void)request_free(req);
}

void request_enqueue(struct evd_client *c, Request *req) {
        list_append(&c->queue, &req->link);
        if (c->held == 0)
                client_flush(c);
}

/* A synchronous caller gave up. Its reply is ignored when it comes; an object it was
 * creating is not left behind in the daemon. */
static void request_abandon(struct evd_client *c, Request *req) {
        Request *rm;
        Obj *o;

        req->sync = false;
        if (req->kind != REQ_CREATE || !(o = obj_get(c, req->obj)))
                return;
        if (!req->sent) {
                list_remove(&c->queue, &req->link);
                request_complete(c, req, -ETIMEDOUT, NULL, NULL);
                (void)obj_free(c, o);
                return;
        }
        o->removed = true;
        rm = request_new(REQ_REMOVE);
        if (!rm)
                return; /* the daemon drops it when the connection ends */
        rm->obj = o->id;
        request_enqueue(c, rm);
}

/**
 * request_wait() - wait until @req completes, at most @timeout_ms (negative: forever)
 * @c: the client
 * @req: a queued or sent request with ->sync set; freed here
 * @timeout_ms: the limit
 * @ret_result: the result on success, a new reference (may be NULL)
 *
 * Return: the request's outcome, or -ETIMEDOUT (the request is then abandoned).
 */
int request_wait(struct evd_client *c, Request *req, int timeout_ms, json_t **ret_result) {
        uint64_t deadline = timeout_ms < 0
                                    ? UINT64_MAX
                                    : now_usec(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000;
        int r;

        while (!req->complete) {
                struct pollfd p = {.fd = -1};
                uint64_t now = now_usec(CLOCK_MONOTONIC), until = deadline;
                int wait_ms;

                if (now >= deadline) {
                        request_abandon(c, req);
                        return -ETIMEDOUT;
                }
                if (c->state == CLIENT_RECONNECTING) {
                        if (now >= c->reconnect_at) {
                                (void)client_try_reconnect(c);
                                continue;
                        }
                        until = MIN(until, c->reconnect_at);
                } else if (c->state == CLIENT_CONNECTED) {
                        p.fd = c->sock;
                        p.events = POLLIN | (c->want_out ? POLLOUT : 0);
                } else {
                        /* Cannot happen: losing the connection completes every request. */
                        request_abandon(c, req);
                        return -ENOTCONN;
                }
                wait_ms = until == UINT64_MAX
                                  ? -1
                                  : (int)MIN((until - now + 999) / 1000, (uint64_t)INT_MAX);
                if (poll(&p, 1, wait_ms) < 0 && errno != EINTR) {
                        r = -errno;
                        request_abandon(c, req);
                        return r;
                }
                if (c->state == CLIENT_CONNECTED) {
                        (void)client_read(c, CLIENT_READ_BUDGET);
                        client_flush(c);
                }
        }

        r = req->r;
        if (r < 0 && req->error.code)
                client_set_last_error(c, &req->error);
        if (r >= 0 && ret_result)
                *ret_result = TAKE_PTR(req->result);
        (void)request_free(req);
        return r;
}

/* Queue @req and either return (async) or wait for it (sync). */
int request_finish(struct evd_client *c, Request *req, bool sync, int timeout_ms,
                   json_t **ret_result) {
        int r = 0;

        req->sync = sync;
        request_enqueue(c, req);
        if (sync) {
                client_flush(c); /* a batch holds it and what came before */
                r = request_wait(c, req, timeout_ms, ret_result);
        }
        client_update(c);
        return r;
}

/* Method and params for @req now. Return: as obj_build_request(). */
static int request_build(struct evd_client *c, Request *req, json_t **ret_msg, int *ret_fd) {
        const char *method = NULL;
        json_t *params = NULL;
        int r;

        *ret_fd = -1;
        switch (req->kind) {
        case REQ_HELLO: {
                char name[CLIENT_MAX_NAME + 1];
                size_t n = strlen(c->name);

                /* Cut at CLIENT_MAX_NAME bytes, but never inside a UTF-8 sequence. */
                if (n > CLIENT_MAX_NAME) {
                        n = CLIENT_MAX_NAME;
                        while (n > 0 && ((unsigned char)c->name[n] & 0xc0) == 0x80)
                                n--;
                }
                memcpy(name, c->name, n);
                name[n] = 0;
                method = "hello";
                params = json_pack("{s:i,s:s}", "protocol", EVD_PROTOCOL_VERSION, "client", name);
                if (!params)
                        return -ENOMEM;
                break;
        }
        case REQ_CALL:
                method = req->method;
                params = json_incref(req->params);
                break;
        case REQ_CREATE:
        case REQ_MODIFY:
        case REQ_ARM:
        case REQ_REMOVE:
                r = c->obj_ops->build_request(c, req, &method, &params, ret_fd);
                if (r != 0)
                        return r;
                break;
        default:
                return -EINVAL;
        }

        if (req->rpc_id == 0)
                req->rpc_id = c->next_rpc_id++;
        *ret_msg = jsonrpc_request_new(req->rpc_id, method, params);
        return *ret_msg ? 0 : -ENOMEM;
}

/* The request reached the daemon. */
static void request_sent(struct evd_client *c, Request *req) {
        Obj *o;

        req->sent = true;
        list_append(&c->inflight, &req->link);
        if (req->kind == REQ_CREATE && (o = obj_get(c, req->obj)))
                o->state = OBJ_PENDING;
        if (req->kind == REQ_CALL) {
                json_decref(req->params); /* never sent again */
                req->params = NULL;
        }
}

/**
 * client_lost() - the connection is gone (EOF, send or receive error, protocol violation)
 * @c: the client
 * @reason: a negative errno or a daemon error code (the refusal that preceded the close)
 */
void client_lost(struct evd_client *c, int reason) {
        Pending *p;

        if (c->state != CLIENT_CONNECTED)
                return;
        client_close_socket(c);
        c->state = c->reconnect ? CLIENT_RECONNECTING : CLIENT_DEAD;
        c->lost_reason = reason;
        if (c->connection_cb && (p = pending_add(c, PENDING_CONNECTION))) {
                p->event = EVD_CONNECTION_LOST;
                p->r = reason;
        }
        client_requests_reset(c, reason);
        if (c->reconnect)
                client_schedule_reconnect(c);
}

/** client_connected() - the socket is up: hello first, then the (re-)registrations, then
 * the rest, in order. */
void client_connected(struct evd_client *c) {
        Request *hello = request_new(REQ_HELLO), *req;
        Pending *p;

        c->state = CLIENT_CONNECTED;
        c->restoring = 0;
        c->restore_error = 0;
        LIST_FOREACH(Request, link, req, &c->queue)
                if (req->kind == REQ_CREATE) {
                        req->reregister = true;
                        c->restoring++;
                }
        if (hello) {
                hello->reregister = true;
                c->restoring++;
                list_prepend(&c->queue, &hello->link);
        }
        c->restore_pending = c->ever_connected;
        if (c->ever_connected && c->restoring == 0 && c->connection_cb &&
            (p = pending_add(c, PENDING_CONNECTION))) {
                c->restore_pending = false;
                p->event = EVD_CONNECTION_RESTORED;
        }
        c->ever_connected = true;
        client_flush(c);
}

/** client_try_reconnect() - one reconnect attempt; on failure the next is scheduled. */
int client_try_reconnect(struct evd_client *c) {
        int r;

        r = client_open_socket(c, false);
        if (r < 0) {
                client_schedule_reconnect(c);
                return r;
        }
        client_connected(c);
        return 0;
}

/* Requests that may share a packet with others: their replies are small. (The replies to
 * one packet share the daemon's reply budget, which a listing alone may use up.) */
static bool request_batchable(const Request *req) {
        return req->kind != REQ_CALL;
}

#define PACKET_MAX_REQUESTS 128

/*
 * One packet from the head of the queue: a lone request as an object, or consecutive
 * batchable ones as a batch (PROTOCOL.md section 4) of at most PACKET_MAX_REQUESTS, with
 * at most EVD_MAX_FDS fds, that fits EVD_MAX_PACKET. c->send_buf[0] is kept for the '['
 * (the buffer has EVD_MAX_PACKET + 2 bytes).
 * Requests settled without the daemon on the way are completed (as when sent one by one,
 * their completion does not wait for the replies to those before them).
 * Return: the number of requests in *@ret_packet, 0 if none can go now.
 */
static unsigned packet_build(struct evd_client *c, Request **ret_packet, size_t *ret_len, int *fds,
                             size_t *ret_n_fds) {
        char *buf = c->send_buf + 1; /* EVD_MAX_PACKET + 1 bytes from here */
        size_t len = 0, n_fds = 0;
        unsigned n = 0;
        ListNode *node, *next;

        for (node = list_first(&c->queue); node && n < PACKET_MAX_REQUESTS; node = next) {
                Request *req = container_of(node, Request, link);
                json_t *msg = NULL;
                size_t item_len, comma = n > 0;
                int fd, r;

                next = list_next(&c->queue, node);
                if (n > 0 && !request_batchable(req))
                        break;
                r = request_build(c, req, &msg, &fd);
                if (r == 1)
                        break; /* names an object whose creation is unanswered */
                if (r != 0) {
                        list_remove(&c->queue, node);
                        /* 2: settled without the daemon (removing what it already dropped) */
                        request_complete(c, req, r == 2 ? 0 : r, r == 2 ? json_object() : NULL, NULL);
                        continue;
                }
                if (fd >= 0 && n_fds == EVD_MAX_FDS) {
                        json_decref(msg);
                        break;
                }
                /* The daemon finds a request's fd by its index in the packet's fd array. */
                if (fd >= 0 && json_object_set_new(json_object_get(msg, "params"), "fd", json_integer((json_int_t)n_fds)) < 0)
                        r = -ENOMEM;
                if (r == 0)
                        r = jsonrpc_encode(msg, buf + len + comma, EVD_MAX_PACKET - len - comma, &item_len);
                /* A lone request may fill the packet; a batch has its brackets too. */
                if (r == 0 && n > 0 && 1 + len + comma + item_len + 1 > EVD_MAX_PACKET)
                        r = -EMSGSIZE;
                json_decref(msg);
                if (r < 0 && n > 0)
                        break; /* the next packet, on its own */
                if (r < 0) {
                        list_remove(&c->queue, node);
                        request_complete(c, req, r, NULL, NULL);
                        continue;
                }
                if (comma)
                        buf[len] = ',';
                len += comma + item_len;
                if (fd >= 0)
                        fds[n_fds++] = fd;
                ret_packet[n++] = req;
        }
        *ret_len = len;
        *ret_n_fds = n_fds;
        return n;
}

/** client_flush() - send queued requests until the queue is empty, blocked or full;
 * consecutive ones share packets (packet_build()). */
void client_flush(struct evd_client *c) {
        c->want_out = false;
        while (c->state == CLIENT_CONNECTED && !c->shutting_down && list_first(&c->queue)) {
                Request *packet[PACKET_MAX_REQUESTS];
                int fds[EVD_MAX_FDS];
                size_t len, n_fds;
                unsigned n = packet_build(c, packet, &len, fds, &n_fds);
                const char *data = c->send_buf + 1;
                int r;

                if (n == 0)
                        break; /* nothing left, or the head waits for an answer */
                if (n > 1) {
                        c->send_buf[0] = '[';
                        c->send_buf[1 + len] = ']';
                        data = c->send_buf;
                        len += 2;
                }
                r = wire_send(c->sock, data, len, n_fds > 0 ? fds : NULL, n_fds);
                if (r == -EINTR)
                        continue;
                if (r == -EAGAIN) {
                        c->want_out = true;
                        break;
                }
                if (r < 0) {
                        client_lost(c, r == -EPIPE ? -ECONNRESET : r);
                        return;
                }
                for (unsigned i = 0; i < n; i++) {
                        list_remove(&c->queue, &packet[i]->link);
                        request_sent(c, packet[i]);
                }
        }
}

static Request *inflight_find(struct evd_client *c, json_int_t id) {
        Request *req;

        LIST_FOREACH(Request, link, req, &c->inflight)
                if (req->rpc_id == id)
                        return req;
        return NULL;
}

static void handle_reply(struct evd_client *c, const JsonRpcResponse *resp) {
        RemoteError err = {.code = 0};
        json_t *result = NULL;
        Request *req;
        int r = 0;

        if (!json_is_integer(resp->id)) {
                /* "id": null: the daemon could not tie it to a request, e.g. it refuses the
                 * connection (too many clients) and is about to close it. */
                if (resp->kind == JSONRPC_ERROR)
                        c->refused_code = resp->code;
                return;
        }
        req = inflight_find(c, json_integer_value(resp->id));
        if (!req)
                return; /* not ours: ignore */
        list_remove(&c->inflight, &req->link);

        if (resp->kind == JSONRPC_RESULT)
                result = json_incref(resp->result);
        else {
                r = resp->code;
                err.code = resp->code;
                err.message = strdup(resp->message);
                err.data = json_incref(resp->data);
        }

        switch (req->kind) {
        case REQ_HELLO:
                if (r < 0)
                        c->fatal = r; /* the daemon does not speak our protocol */
                else
                        c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
                request_complete(c, req, r, result, &err);
                break;
        case REQ_CALL:
                request_complete(c, req, r, result, &err);
                break;
        default:
                c->obj_ops->handle_reply(c, req, r, result, &err);
                break;
        }
}

static void handle_notification(struct evd_client *c, const char *method, json_t *params) {
        Pending *p;

        if (c->obj_ops->handle_notification(c, method, params))
                return;
        if (strcmp(method, "shutdown") == 0)
                c->shutting_down = true; /* and the program hears of it too */
        if (!c->notify_cb || !(p = pending_add(c, PENDING_NOTIFY)))
                return;
        p->method = strdup(method);
        p->params = json_incref(params);
        if (!p->method) {
                list_remove(&c->pending, &p->link);
                (void)pending_free(p);
        }
}

static void handle_message(struct evd_client *c, json_t *m) {
        JsonRpcResponse resp;

        if (jsonrpc_response_check(m, &resp) < 0)
                return; /* liberal in what we accept: a message we cannot classify is skipped */
        if (resp.kind == JSONRPC_NOTIFICATION)
                handle_notification(c, resp.method, resp.params);
        else
                handle_reply(c, &resp);
}

/** client_read() - read and handle at most @max packets. Return: how many were read. */
unsigned client_read(struct evd_client *c, unsigned max) {
        unsigned i;

        for (i = 0; i < max && c->state == CLIENT_CONNECTED; i++) {
                WirePacket pkt;
                json_t *v = NULL;
                int r;

                r = wire_recv(c->sock, c->recv_buf, EVD_MAX_PACKET, NULL, &pkt);
                if (r == -EAGAIN)
                        return i;
                if (r == -EINTR)
                        continue;
                if (r < 0) {
                        client_lost(c, r);
                        return i;
                }
                if (pkt.eof) {
                        client_lost(c, c->refused_code    ? c->refused_code
                                       : c->shutting_down ? -ESHUTDOWN
                                                          : -ECONNRESET);
                        return i;
                }
                if (pkt.truncated || pkt.fds_truncated) {
                        client_lost(c, -EPROTO); /* the daemon broke the wire limits */
                        return i;
                }
                if (pkt.len == 0)
                        continue;
                if (jsonrpc_parse(c->recv_buf, pkt.len, &v, NULL) < 0) {
                        client_lost(c, -EPROTO);
                        return i;
                }
                if (json_is_array(v)) {
                        size_t j;
                        json_t *m;

                        json_array_foreach(v, j, m) handle_message(c, m);
                } else
                        handle_message(c, v);
                json_decref(v);
                if (c->fatal) {
                        r = c->fatal;
                        c->fatal = 0;
                        client_lost(c, r);
                        return i + 1;
                }
        }
        return i;
}

/**
 * client_requests_reset() - the connection is gone: settle or keep every request
 * @c: the client, no longer CONNECTED
 * @reason: why, for the requests that fail
 *
 * Without reconnect everything fails with @reason and every object is dropped. With it,
 * the desired state survives: MODIFY, ARM and REMOVE are settled (re-registration
 * applies them), CREATEs are kept to be sent again, calls not yet sent stay queued, and
 * calls in flight fail (they may have taken effect; libevd does not repeat them).
 */
void client_requests_reset(struct evd_client *c, int reason) {
        List old, calls, creates;
        ListNode *n;
        Obj *o;

        list_init(&old);
        list_init(&calls);
        list_splice(&old, &c->inflight);
        list_splice(&old, &c->queue);
        c->restoring = 0;
        c->restore_pending = false;

        while ((n = list_first(&old))) {
                Request *req = container_of(n, Request, link);

                list_remove(&old, n);
                req->reregister = false;
                switch (req->kind) {
                case REQ_CALL:
                        if (!req->sent && c->reconnect) {
                                list_append(&calls, n);
                                break;
                        }
                        request_complete(c, req, reason, NULL, NULL);
                        break;
                case REQ_CREATE:
                        o = obj_get(c, req->obj);
                        if (c->reconnect && o && !o->removed && o->state != OBJ_GONE) {
                                req->sent = false; /* collected below, through o->create */
                                req->rpc_id = 0;
                                break;
                        }
                        request_complete(c, req, c->reconnect ? -ECANCELED : reason, NULL, NULL);
                        break;
                case REQ_MODIFY:
                case REQ_ARM:
                        if (c->reconnect)
                                request_complete(c, req, 0, json_object(), NULL);
                        else
                                request_complete(c, req, reason, NULL, NULL);
                        break;
                case REQ_REMOVE:
                        /* The daemon dropped it with the connection: removal is done. */
                        if ((o = obj_get(c, req->obj)))
                                (void)obj_free(c, o);
                        request_complete(c, req, 0, json_object(), NULL);
                        break;
                default:
                        request_complete(c, req, reason, NULL, NULL);
                        break;
                }
        }

        if (!c->reconnect) {
                objects_free_all(c);
                return;
        }
        c->obj_ops->prepare_reconnect(c, &creates);
        list_splice(&c->queue, &creates);
        list_splice(&c->queue, &calls);
}

static int call(struct evd_client *c, const char *method, json_t *params, bool sync, int timeout_ms,
                json_t **ret_result, evd_done_fn done, void *userdata) {
        Request *req;

        if (!c || !method || !*method || (params && !json_is_object(params))) {
                json_decref(params);
                return -EINVAL;
        }
        client_begin(c);
        if (c->state == CLIENT_IDLE || c->state == CLIENT_DEAD) {
                json_decref(params);
                return -ENOTCONN;
        }
        req = request_new(REQ_CALL);
        if (!req || !(req->method = strdup(method))) {
                (void)request_free(req);
                json_decref(params);
                return -ENOMEM;
        }
        req->params = params;
        req->done = done;
        req->done_userdata = userdata;
        return request_finish(c, req, sync, timeout_ms, ret_result);
}

/**
 * evd_call() - call any method and wait for its result
 * @client: the client
 * @method: the method name
 * @params: an object, or NULL; stolen even on failure
 * @timeout_ms: how long to wait; negative: forever
 * @ret_result: the result, a new reference (may be NULL)
 *
 * Return: 0, a negative errno or an EVD_E_* code.
 */
int evd_call(struct evd_client *client, const char *method, json_t *params, int timeout_ms,
             json_t **ret_result) {
        return call(client, method, params, true, timeout_ms, ret_result, NULL, NULL);
}

/**
 * evd_call_async() - call any method; @done gets the borrowed result
 * @client: the client
 * @method: the method name
 * @params: an object, or NULL; stolen even on failure
 * @done: completion (may be NULL: the outcome is ignored)
 * @done_userdata: for @done
 *
 * Return: 0 once queued, or a negative errno (then @done is not called).
 */
int evd_call_async(struct evd_client *client, const char *method, json_t *params, evd_done_fn done,
                   void *done_userdata) {
        return call(client, method, params, false, -1, NULL, done, done_userdata);
}
