/*
 * client.c - the libevd client object: connection, reconnect, dispatch.
 *
 * What the program polls is an epoll fd holding the socket (EPOLLIN, plus EPOLLOUT while
 * a send is blocked) and a timerfd. The timerfd is set to "now" while callbacks are queued
 * (so the epoll fd is readable although the socket may not be: a synchronous call may have
 * read the packets that queued them) and to the next attempt while reconnecting. So the fd
 * the program sees never changes, across reconnects too, and one POLLIN is all it needs.
 *
 * States: IDLE (not connected) -> CONNECTED -> on loss RECONNECTING (reconnect enabled;
 * back-off with jitter, reset once "hello" succeeds) or DEAD (every request failed with
 * the reason; evd_client_dispatch() returns it). evd_client_close() goes back to IDLE.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "build-config.h"
#include "client-internal.h"
#include "macro.h"
#include "protocol.h"

/* The public codes are the wire's (two anonymous enums: compare as int). */
_Static_assert((int)EVD_E_PARSE == (int)EVD_ERR_PARSE, "EVD_E_PARSE");
_Static_assert((int)EVD_E_INVALID_REQUEST == (int)EVD_ERR_INVALID_REQUEST, "EVD_E_INVALID_REQUEST");
_Static_assert((int)EVD_E_METHOD_NOT_FOUND == (int)EVD_ERR_METHOD_NOT_FOUND,
               "EVD_E_METHOD_NOT_FOUND");
_Static_assert((int)EVD_E_INVALID_PARAMS == (int)EVD_ERR_INVALID_PARAMS, "EVD_E_INVALID_PARAMS");
_Static_assert((int)EVD_E_INTERNAL == (int)EVD_ERR_INTERNAL, "EVD_E_INTERNAL");
_Static_assert((int)EVD_E_NO_SUCH_WATCH == (int)EVD_ERR_NO_SUCH_WATCH, "EVD_E_NO_SUCH_WATCH");
_Static_assert((int)EVD_E_NO_SUCH_TIMER == (int)EVD_ERR_NO_SUCH_TIMER, "EVD_E_NO_SUCH_TIMER");
_Static_assert((int)EVD_E_BAD_FD == (int)EVD_ERR_BAD_FD, "EVD_E_BAD_FD");
_Static_assert((int)EVD_E_QUOTA == (int)EVD_ERR_QUOTA, "EVD_E_QUOTA");
_Static_assert((int)EVD_E_PERMISSION == (int)EVD_ERR_PERMISSION, "EVD_E_PERMISSION");
_Static_assert((int)EVD_E_TOO_MANY_FDS == (int)EVD_ERR_FDS_TRUNCATED, "EVD_E_TOO_MANY_FDS");
_Static_assert((int)EVD_E_TOO_LARGE == (int)EVD_ERR_TOO_LARGE, "EVD_E_TOO_LARGE");
_Static_assert((int)EVD_E_SHUTTING_DOWN == (int)EVD_ERR_SHUTTING_DOWN, "EVD_E_SHUTTING_DOWN");
_Static_assert((int)EVD_E_NO_FDS == (int)EVD_ERR_NO_FDS, "EVD_E_NO_FDS");
_Static_assert((int)EVD_E_REPLY_BUDGET == (int)EVD_ERR_REPLY_BUDGET, "EVD_E_REPLY_BUDGET");

uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        (void)clock_gettime(clock, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Every public call starts here: the previous call's daemon error is forgotten. */
void client_begin(struct evd_client *c) {
        remote_error_clear(&c->last_remote);
        c->last_error = (struct evd_error){.code = 0};
}

/** client_set_last_error() - make @e (moved out) what evd_client_last_error() describes. */
void client_set_last_error(struct evd_client *c, RemoteError *e) {
        json_t *param, *why;

        client_begin(c);
        if (!e->code)
                return;
        c->last_remote = *e;
        *e = (RemoteError){.code = 0};
        param = json_object_get(c->last_remote.data, "param");
        why = json_object_get(c->last_remote.data, "why");
        c->last_error = (struct evd_error){
                .code = c->last_remote.code,
                .message = c->last_remote.message ? c->last_remote.message
                                                  : evd_strerror(c->last_remote.code),
                .param = json_string_value(param),
                .why = json_string_value(why),
                .data = c->last_remote.data,
        };
}

/** client_update() - point the timerfd and the socket's epoll events at what is due. */
void client_update(struct evd_client *c) {
        uint64_t want = 0;

        if (c->pending.n > 0)
                want = 1; /* an absolute time in the past: expires at once */
        else if (c->state == CLIENT_RECONNECTING)
                want = MAX(c->reconnect_at, (uint64_t)1);
        if (want != c->timer_armed) {
                struct itimerspec its = {
                        .it_value.tv_sec = (time_t)(want / 1000000u),
                        .it_value.tv_nsec = (long)(want % 1000000u) * 1000,
                };

                if (timerfd_settime(c->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
                        c->timer_armed = want;
        }
        if (c->sock >= 0) {
                uint32_t events = EPOLLIN | (c->want_out ? EPOLLOUT : 0);
                struct epoll_event ev = {.events = events, .data.fd = c->sock};

                if (events != c->sock_events &&
                    epoll_ctl(c->epoll_fd, EPOLL_CTL_MOD, c->sock, &ev) == 0)
                        c->sock_events = events;
        }
}

static void close_socket(struct evd_client *c) {
        if (c->sock >= 0)
                (void)epoll_ctl(c->epoll_fd, EPOLL_CTL_DEL, c->sock, NULL);
        c->sock = safe_close(c->sock);
        c->sock_events = 0;
        c->want_out = false;
        c->shutting_down = false;
        c->refused_code = 0;
        c->fatal = 0;
}

static void schedule_reconnect(struct evd_client *c) {
        uint64_t delay = (uint64_t)c->backoff_ms * 1000u;

        /* xorshift64: jitter without touching the program's rand() state. */
        c->rng ^= c->rng << 13;
        c->rng ^= c->rng >> 7;
        c->rng ^= c->rng << 17;
        delay = delay * 3 / 4 + c->rng % (delay / 2 + 1);
        c->reconnect_at = now_usec(CLOCK_MONOTONIC) + delay;
        c->backoff_ms = MIN(c->backoff_ms * 2, CLIENT_BACKOFF_MAX_MS);
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
        close_socket(c);
        c->state = c->reconnect ? CLIENT_RECONNECTING : CLIENT_DEAD;
        c->lost_reason = reason;
        if (c->connection_cb && (p = pending_add(c, PENDING_CONNECTION))) {
                p->event = EVD_CONNECTION_LOST;
                p->r = reason;
        }
        client_requests_reset(c, reason);
        if (c->reconnect)
                schedule_reconnect(c);
}

static int open_socket(struct evd_client *c, bool blocking) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct epoll_event ev = {.events = EPOLLIN};
        _cleanup_close_ int fd = -1;
        size_t len = strlen(c->path);

        if (len == 0 || len >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, c->path, len);
        /* A reconnect from dispatch must not block: a full listen queue (EAGAIN) is retried
         * later. The program's own evd_client_connect() may wait for room in it. */
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (blocking ? 0 : SOCK_NONBLOCK), 0);
        if (fd < 0)
                return -errno;
        while (connect(fd, (struct sockaddr *)&sa,
                       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1)) < 0)
                if (errno != EINTR)
                        return -errno;
        if (blocking && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
                return -errno;
        ev.data.fd = fd;
        if (epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        c->sock = TAKE_FD(fd);
        c->sock_events = EPOLLIN;
        return 0;
}

/* The socket is up: hello first, then the (re-)registrations, then the rest, in order. */
static void client_connected(struct evd_client *c) {
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

        r = open_socket(c, false);
        if (r < 0) {
                schedule_reconnect(c);
                return r;
        }
        client_connected(c);
        return 0;
}

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
        c->send_buf = malloc(EVD_MAX_PACKET);
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

        r = open_socket(c, true);
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
        close_socket(c);
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
                r = client_run_pending(c);
                if (r < 0) {
                        client_update(c);
                        return r;
                }
                if (c->state == CLIENT_CONNECTED)
                        (void)client_read(c, CLIENT_READ_BUDGET - 1);
        }
        if (c->state == CLIENT_CONNECTED)
                client_flush(c);
        r = client_run_pending(c);
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

const char *evd_strerror(int r) {
        const char *s;

        if (r >= 0)
                return "Success";
        if (EVD_IS_DAEMON_ERROR(r)) {
                s = evd_error_message(r);
                return s ? s : "Unknown daemon error";
        }
        s = strerrordesc_np(-r);
        return s ? s : "Unknown error";
}

const char *evd_version(void) {
        return EVD_VERSION;
}
