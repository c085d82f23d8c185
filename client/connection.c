/*
 * connection.c - libevd's bottom layer: the socket, the fd the program polls, the clock,
 * the reconnect back-off, the last daemon error and what error codes say (evd_strerror()).
 * It calls nothing else in client/.
 *
 * What the program polls is an epoll fd holding the socket (EPOLLIN, plus EPOLLOUT while
 * a send is blocked) and a timerfd. The timerfd is set to "now" while callbacks are queued
 * (so the epoll fd is readable although the socket may not be: a synchronous call may have
 * read the packets that queued them) and to the next attempt while reconnecting. So the fd
 * the program sees never changes, across reconnects too, and one POLLIN is all it needs.
 * What a lost or new connection means for requests and objects is request.c's business.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "connection.h"
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

void remote_error_clear(RemoteError *e) {
        free(e->message);
        json_decref(e->data);
        *e = (RemoteError){.code = 0};
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

void client_close_socket(struct evd_client *c) {
        if (c->sock >= 0)
                (void)epoll_ctl(c->epoll_fd, EPOLL_CTL_DEL, c->sock, NULL);
        c->sock = safe_close(c->sock);
        c->sock_events = 0;
        c->want_out = false;
        c->shutting_down = false;
        c->refused_code = 0;
        c->fatal = 0;
}

void client_schedule_reconnect(struct evd_client *c) {
        uint64_t delay = (uint64_t)c->backoff_ms * 1000u;

        /* xorshift64: jitter without touching the program's rand() state. */
        c->rng ^= c->rng << 13;
        c->rng ^= c->rng >> 7;
        c->rng ^= c->rng << 17;
        delay = delay * 3 / 4 + c->rng % (delay / 2 + 1);
        c->reconnect_at = now_usec(CLOCK_MONOTONIC) + delay;
        c->backoff_ms = MIN(c->backoff_ms * 2, CLIENT_BACKOFF_MAX_MS);
}

int client_open_socket(struct evd_client *c, bool blocking) {
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

const char *evd_strerror(int r) {
        const char *s;

        if (r >= 0)
                return "Success";
        if (EVD_IS_DAEMON_ERROR(r)) {
                s = evd_error_message(r);
                return s ? s : "Unknown daemon error";
        }
        /* The library's own meanings, where libc's text would mislead. */
        if (r == -ESHUTDOWN)
                return "The daemon announced its shutdown";
        s = strerrordesc_np(-r);
        return s ? s : "Unknown error";
}
