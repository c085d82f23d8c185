/*
 * client.c - the libevd client object, its top layer: new/free, connect/close, dispatch
 * and run, the handlers, evd_version(). It wires the layers below (ARCHITECTURE-client.md):
 * connection.c (socket, polled fd, back-off), obj-table.c and pending.c (storage, the
 * callback queue), request.c (requests, replies, the session), object.c (watches, timers;
 * it reaches request.c's replies and notifications through the ObjOps hooks set here).
 *
 * States: IDLE (not connected) -> CONNECTED -> on loss RECONNECTING (reconnect enabled;
 * back-off with jitter, reset once "hello" succeeds) or DEAD (every request failed with
 * the reason; evd_client_dispatch() returns it). evd_client_close() goes back to IDLE.
 */

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "build-config.h"
#include "connection.h"
#include "macro.h"
#include "obj-table.h"
#include "object.h"
#include "pending.h"
#include "protocol.h"
#include "request.h"

int evd_client_new(struct evd_client **ret) {
        struct epoll_event ev = {.events = EPOLLIN};
        struct evd_client *c;
        const char *name = program_invocation_short_name;
        int r;

        if (!ret)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->epoll_fd = c->timer_fd = c->sock = -1;
        c->obj_ops = &obj_ops;
        list_init(&c->objects);
        list_init(&c->queue);
        list_init(&c->inflight);
        list_init(&c->pending);
        c->next_rpc_id = 1;
        c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
        c->rng = now_usec(CLOCK_MONOTONIC) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)c;
        if (!c->rng)
                c->rng = 1;
        c->name = strdup(name && *name ? name : "libevd");
        c->recv_buf = malloc(EVD_MAX_PACKET);
        c->send_buf = malloc(EVD_MAX_PACKET + 2); /* request.c: '[' before, room for ']' */
        if (!c->name || !c->recv_buf || !c->send_buf) {
                r = -ENOMEM;
                goto fail;
        }
        c->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (c->epoll_fd < 0 || c->timer_fd < 0) {
                r = -errno;
                goto fail;
        }
        ev.data.fd = c->timer_fd;
        if (epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, c->timer_fd, &ev) < 0) {
                r = -errno;
                goto fail;
        }
        *ret = c;
        return 0;
fail:
        (void)evd_client_free(c);
        return r;
}

struct evd_client *evd_client_free(struct evd_client *c) {
        if (!c)
                return NULL;
        evd_client_close(c);
        (void)safe_close(c->timer_fd);
        (void)safe_close(c->epoll_fd);
        free(c->buckets);
        free(c->name);
        free(c->path);
        free(c->recv_buf);
        free(c->send_buf);
        client_begin(c);
        free(c);
        return NULL;
}

int evd_client_set_name(struct evd_client *c, const char *name) {
        char *copy;

        if (!c || !name)
                return -EINVAL;
        copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        free(c->name);
        c->name = copy;
        return 0;
}

void evd_client_set_reconnect(struct evd_client *c, bool enable) {
        if (c)
                c->reconnect = enable;
}

void evd_client_set_connection_handler(struct evd_client *c, evd_connection_fn cb, void *userdata) {
        if (!c)
                return;
        c->connection_cb = cb;
        c->connection_userdata = userdata;
}

void evd_client_set_notify_handler(struct evd_client *c, evd_notify_fn cb, void *userdata) {
        if (!c)
                return;
        c->notify_cb = cb;
        c->notify_userdata = userdata;
}

int evd_client_connect(struct evd_client *c, const char *path) {
        char *p = NULL;
        int r;

        if (!c)
                return -EINVAL;
        client_begin(c);
        if (c->state == CLIENT_CONNECTED || c->state == CLIENT_RECONNECTING)
                return -EISCONN;
        if (path)
                p = strdup(path);
        else {
                r = protocol_default_socket_path(&p);
                if (r < 0)
                        return r;
        }
        if (!p)
                return -ENOMEM;
        free(c->path);
        c->path = p;

        r = client_open_socket(c, true);
        if (r < 0)
                return r;
        c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
        c->ever_connected = false;
        client_connected(c);
        client_update(c);
        return 0;
}

void evd_client_close(struct evd_client *c) {
        ListNode *n;

        if (!c)
                return;
        client_begin(c);
        client_close_socket(c);
        c->state = CLIENT_IDLE;
        c->restoring = 0;
        c->restore_pending = false;
        c->ever_connected = false;
        c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
        while ((n = list_first(&c->queue))) {
                list_remove(&c->queue, n);
                (void)request_free(container_of(n, Request, link));
        }
        while ((n = list_first(&c->inflight))) {
                list_remove(&c->inflight, n);
                (void)request_free(container_of(n, Request, link));
        }
        objects_free_all(c);
        while ((n = list_first(&c->pending))) {
                list_remove(&c->pending, n);
                (void)pending_free(container_of(n, Pending, link));
        }
        client_update(c);
}

bool evd_client_is_connected(struct evd_client *c) {
        return c && c->state == CLIENT_CONNECTED;
}

const char *evd_client_socket_path(struct evd_client *c) {
        return c ? c->path : NULL;
}

int evd_client_fd(struct evd_client *c) {
        return c ? c->epoll_fd : -EINVAL;
}

/* The requests the callbacks make go out together once they have run (as in a batch). */
static int run_callbacks(struct evd_client *c) {
        int r;

        c->held++;
        r = client_run_pending(c);
        c->held--;
        if (c->held == 0 && c->state == CLIENT_CONNECTED)
                client_flush(c);
        return r;
}

int evd_client_batch_begin(struct evd_client *c) {
        if (!c || c->held == UINT_MAX)
                return -EINVAL;
        c->held++;
        return 0;
}

int evd_client_batch_end(struct evd_client *c) {
        if (!c || c->held == 0)
                return -EINVAL;
        c->held--;
        if (c->held == 0 && c->state == CLIENT_CONNECTED) {
                client_flush(c);
                client_update(c);
        }
        return 0;
}

int evd_client_dispatch(struct evd_client *c) {
        uint64_t ticks;
        int r;

        if (!c)
                return -EINVAL;
        client_begin(c);
        if (!c->running)
                c->exit_requested = false;
        /* The timerfd is only ever armed by client_update(): no read() while it is not. */
        if (c->timer_armed && read(c->timer_fd, &ticks, sizeof(ticks)) > 0)
                c->timer_armed = 0; /* one-shot: it is disarmed now */
        if (c->state == CLIENT_RECONNECTING && now_usec(CLOCK_MONOTONIC) >= c->reconnect_at)
                (void)client_try_reconnect(c);
        /* The first packet's callbacks run before looking for more, so that a lone
         * notification does not wait for the read that finds the socket empty. */
        if (c->state == CLIENT_CONNECTED && client_read(c, 1) > 0) {
                r = run_callbacks(c);
                if (r < 0) {
                        client_update(c);
                        return r;
                }
                if (c->state == CLIENT_CONNECTED)
                        (void)client_read(c, CLIENT_READ_BUDGET - 1);
        }
        if (c->state == CLIENT_CONNECTED)
                client_flush(c);
        r = run_callbacks(c);
        client_update(c);
        if (r < 0)
                return r;
        if (c->state == CLIENT_DEAD)
                return c->lost_reason;
        if (c->state == CLIENT_IDLE)
                return -ENOTCONN;
        return 0;
}

int evd_client_run(struct evd_client *c) {
        int r;

        if (!c)
                return -EINVAL;
        c->running = true;
        c->exit_requested = false;
        for (;;) {
                struct pollfd p = {.fd = c->epoll_fd, .events = POLLIN};

                r = evd_client_dispatch(c);
                if (c->exit_requested) {
                        r = c->exit_code;
                        break;
                }
                if (r < 0)
                        break;
                if (poll(&p, 1, -1) < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
        }
        c->running = false;
        c->exit_requested = false;
        return r;
}

void evd_client_exit(struct evd_client *c, int code) {
        if (!c)
                return;
        c->exit_requested = true;
        c->exit_code = code;
}

const struct evd_error *evd_client_last_error(struct evd_client *c) {
        return c && c->last_remote.code ? &c->last_error : NULL;
}

const char *evd_version(void) {
        return EVD_VERSION;
}
