#pragma once
/* evd.h - libevd: the C client library of evd, the fd-readiness daemon */

/*
 * A program connects to evd, hands it file descriptors to watch and asks it for
 * timers; evd tells the program when an fd is ready or a timer expires, and
 * libevd runs the program's callbacks. The wire protocol is JSON-RPC 2.0 over
 * AF_UNIX SOCK_SEQPACKET (PROTOCOL.md); libevd hides it.
 *
 * Threads: a struct evd_client is not thread-safe. Use one client object per
 * thread (several objects in several threads are fine), or serialise every call
 * on one object yourself.
 *
 * Event loops: evd_client_fd() is one file descriptor that stays the same for the
 * life of the client (across reconnects). Poll it for POLLIN (EPOLLIN) in any
 * loop and call evd_client_dispatch() when it is readable: dispatch never
 * blocks. Simple programs call evd_client_run() instead.
 *
 * Calls: every operation has a synchronous form, which waits for the daemon's
 * answer (at most @timeout_ms milliseconds; negative waits forever) and runs no
 * callback meanwhile, and an asynchronous *_async() form, which returns at once
 * and reports the outcome to a completion callback run by evd_client_dispatch().
 * Requests are pipelined: any number may be outstanding, and they reach the
 * daemon in the order they were made. A watch or timer gets its id from the
 * library at once, so later requests may name it before the daemon answered.
 *
 * Ids: watch and timer ids are the library's own, positive, never reused by one
 * client object, and stable across reconnects (the daemon's ids are not).
 * libevd tags each watch and timer with that id, so `evctl watches` shows it as
 * the tag.
 *
 * Errors: functions return >= 0 on success and a negative value on failure:
 * either a negative errno (-ENOTCONN, -ETIMEDOUT, ...) for a local failure, or,
 * when the daemon answered with a JSON-RPC error, that error's code (EVD_E_*,
 * -32768..-32000; the two ranges never overlap). evd_strerror() describes both;
 * evd_client_last_error() gives the daemon's message and data. See libevd(3).
 *
 * Callbacks return int: a negative value stops the current evd_client_dispatch()
 * (the rest stays queued) and is returned from it and from evd_client_run().
 * Callbacks may call any function of the library except evd_client_free().
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the library's public interface: only these symbols leave libevd.so. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define EVD_EXPORT __attribute__((visibility("default")))
#else
#define EVD_EXPORT
#endif

/* Event bits: the Linux poll(2) values (POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLRDHUP). */
enum {
        EVD_IN = 0x0001,
        EVD_PRI = 0x0002,
        EVD_OUT = 0x0004,
        EVD_ERR = 0x0008, /* reported only */
        EVD_HUP = 0x0010, /* reported only */
        EVD_RDHUP = 0x2000,
        /* Reported only, alone: the daemon dropped the watch (it can no longer poll the
         * fd, or the watch could not be re-registered after a reconnect). The id is gone. */
        EVD_CLOSED = 0x40000000,
};

enum evd_mode {
        EVD_ONESHOT = 0, /* one callback per arm; then evd_watch_arm() */
        EVD_EDGE = 1,    /* a callback per wakeup (edge-triggered), coalesced while queued */
};

/* The daemon's JSON-RPC error codes (PROTOCOL.md, section 5). */
enum {
        EVD_E_PARSE = -32700,
        EVD_E_INVALID_REQUEST = -32600,
        EVD_E_METHOD_NOT_FOUND = -32601,
        EVD_E_INVALID_PARAMS = -32602,
        EVD_E_INTERNAL = -32603,
        EVD_E_NO_SUCH_WATCH = -32001,
        EVD_E_NO_SUCH_TIMER = -32002,
        EVD_E_BAD_FD = -32003,
        EVD_E_QUOTA = -32004,
        EVD_E_PERMISSION = -32005,
        EVD_E_TOO_MANY_FDS = -32006,
        EVD_E_TOO_LARGE = -32007,
        EVD_E_SHUTTING_DOWN = -32008,
        EVD_E_NO_FDS = -32009,
        EVD_E_REPLY_BUDGET = -32010,
};

/* True for a return value that is a daemon error code rather than a negative errno. */
#define EVD_IS_DAEMON_ERROR(r) ((r) <= -32000 && (r) >= -32768)

/* What the daemon said in its last error reply; see evd_client_last_error(). */
struct evd_error {
        int code;            /* EVD_E_* */
        const char *message; /* the daemon's short message ("No such watch") */
        const char *param;   /* data.param: the offending parameter, or NULL */
        const char *why;     /* data.why: a human-readable reason, or NULL */
        json_t *data;        /* the whole data member (borrowed), or NULL */
};

enum evd_connection_event {
        EVD_CONNECTION_LOST = 1,     /* @error: why (-ECONNRESET, -ESHUTDOWN, EVD_E_QUOTA, ...) */
        EVD_CONNECTION_RESTORED = 2, /* reconnected, everything re-registered; @error: 0, or
                                      * the first re-registration failure (that object got
                                      * its EVD_CLOSED / expirations == 0 callback) */
};

struct evd_client;

/* @revents: what occurred (EVD_IN, ..., EVD_ERR, EVD_HUP), or EVD_CLOSED alone. */
typedef int (*evd_watch_fn)(struct evd_client *client, uint64_t watch, uint32_t revents,
                            void *userdata);
/* @expirations: expiries covered (>= 1). A timer without interval is gone after its
 * callback. 0 means the timer was dropped (it could not be re-registered after a reconnect). */
typedef int (*evd_timer_fn)(struct evd_client *client, uint64_t timer, uint64_t expirations,
                            void *userdata);
/* Completion of an *_async() call. @r as the synchronous form would return. @result: the
 * daemon's result (borrowed: valid during the callback, json_incref() to keep it), NULL on
 * failure. During the callback evd_client_last_error() describes a daemon error. */
typedef int (*evd_done_fn)(struct evd_client *client, int r, json_t *result, void *userdata);
/* A notification the library does not consume itself ("monitor", future ones). @params
 * borrowed (may be NULL). */
typedef int (*evd_notify_fn)(struct evd_client *client, const char *method, json_t *params,
                             void *userdata);
typedef int (*evd_connection_fn)(struct evd_client *client, enum evd_connection_event event,
                                 int error, void *userdata);

/* ---- the client object ------------------------------------------------------------ */

/** evd_client_new() - a client object, not connected. Return: 0 or -ENOMEM, -EMFILE. */
EVD_EXPORT int evd_client_new(struct evd_client **ret);
/** evd_client_free() - close and free; NULL-safe. Pending completions are dropped without
 * being called. Not from a callback. Return: NULL. */
EVD_EXPORT struct evd_client *evd_client_free(struct evd_client *client);

/** evd_client_set_name() - the name sent to the daemon in "hello" (shown to admins; at
 * most 64 bytes are sent). Default: the program's name. Return: 0 or -ENOMEM. */
EVD_EXPORT int evd_client_set_name(struct evd_client *client, const char *name);
/** evd_client_set_reconnect() - when the connection is lost, reconnect with back-off
 * (50 ms doubling to 5 s, with jitter) and re-register every watch and timer. Off by
 * default: then a lost connection ends the client (calls return -ENOTCONN). */
EVD_EXPORT void evd_client_set_reconnect(struct evd_client *client, bool enable);
/** evd_client_set_connection_handler() - tell @cb when the connection is lost and restored. */
EVD_EXPORT void evd_client_set_connection_handler(struct evd_client *client, evd_connection_fn cb,
                                                  void *userdata);
/** evd_client_set_notify_handler() - receive the notifications libevd does not consume. */
EVD_EXPORT void evd_client_set_notify_handler(struct evd_client *client, evd_notify_fn cb,
                                              void *userdata);

/** evd_client_connect() - connect to @path, or to the default socket if NULL: $EVD_SOCKET,
 * else /run/evd/evd.sock for root, else $XDG_RUNTIME_DIR/evd/evd.sock. Sends "hello"
 * (pipelined; a refusal closes the connection later). Return: 0; -EISCONN; -ENOENT or
 * -ECONNREFUSED if evd is not running there; -EACCES; -ENXIO if no default applies. */
EVD_EXPORT int evd_client_connect(struct evd_client *client, const char *path);
/** evd_client_close() - disconnect; the daemon drops this client's watches and timers,
 * the library forgets them and drops pending completions. evd_client_connect() may
 * follow. */
EVD_EXPORT void evd_client_close(struct evd_client *client);
/** evd_client_is_connected() - whether a connection is up now. */
EVD_EXPORT bool evd_client_is_connected(struct evd_client *client);
/** evd_client_socket_path() - the path last connected to (or tried), NULL before. */
EVD_EXPORT const char *evd_client_socket_path(struct evd_client *client);

/** evd_client_fd() - the fd to poll for POLLIN; the same for the client's whole life. */
EVD_EXPORT int evd_client_fd(struct evd_client *client);
/** evd_client_dispatch() - read what arrived, send what is queued, reconnect if due and run
 * the callbacks that are ready, without blocking. Return: 0; a callback's negative value;
 * once the connection is lost without reconnect, its reason (-ECONNRESET, -ESHUTDOWN, ...);
 * -ENOTCONN if never connected. */
EVD_EXPORT int evd_client_dispatch(struct evd_client *client);
/** evd_client_run() - dispatch until evd_client_exit() or an error. Return: the exit code,
 * or as evd_client_dispatch(). */
EVD_EXPORT int evd_client_run(struct evd_client *client);
/** evd_client_exit() - make evd_client_run() return @code (>= 0) after the current callback. */
EVD_EXPORT void evd_client_exit(struct evd_client *client, int code);
/** evd_client_batch_begin() - hold the requests made from now on and send them together at
 * evd_client_batch_end(): consecutive ones share packets (up to 32 fds and 128 requests
 * each; the daemon answers each packet with one), which costs both sides far fewer system
 * calls than one packet per request. Pairs nest. A synchronous call sends what is held
 * first. Requests made by the callbacks of one evd_client_dispatch() are held so without
 * asking. Return: 0; -EINVAL. */
EVD_EXPORT int evd_client_batch_begin(struct evd_client *client);
/** evd_client_batch_end() - end the innermost batch; the outermost sends what it held.
 * Return: 0; -EINVAL (no batch begun). */
EVD_EXPORT int evd_client_batch_end(struct evd_client *client);

/** evd_client_last_error() - the daemon's error reply behind the last call that returned an
 * EVD_E_* code (or, inside a completion callback, behind that completion). Valid until the
 * next call on @client. Return: NULL if that failure was local. */
EVD_EXPORT const struct evd_error *evd_client_last_error(struct evd_client *client);
/** evd_strerror() - a static description of a negative errno or an EVD_E_* code. */
EVD_EXPORT const char *evd_strerror(int r);
/** evd_version() - the library's version, e.g. "0.1.0". */
EVD_EXPORT const char *evd_version(void);

/* ---- watches ---------------------------------------------------------------------- */

/** evd_watch_add() - watch @fd for @events (EVD_IN, EVD_PRI, EVD_OUT, EVD_RDHUP) in @mode,
 * calling @cb. The library sends a duplicate of @fd and keeps one (for re-registration);
 * the caller keeps @fd and may close it. Regular files and directories are refused
 * (EVD_E_INVALID_PARAMS), fds the kernel cannot poll give EVD_E_BAD_FD. Return: 0 with
 * *@ret_watch; -EBADF, -EINVAL; an EVD_E_* code; -ETIMEDOUT. */
EVD_EXPORT int evd_watch_add(struct evd_client *client, int fd, uint32_t events, enum evd_mode mode,
                             evd_watch_fn cb, void *userdata, int timeout_ms, uint64_t *ret_watch);
EVD_EXPORT int evd_watch_add_async(struct evd_client *client, int fd, uint32_t events,
                                   enum evd_mode mode, evd_watch_fn cb, void *userdata,
                                   evd_done_fn done, void *done_userdata, uint64_t *ret_watch);
/** evd_watch_modify() - change a watch's events and mode (see PROTOCOL.md, modify). */
EVD_EXPORT int evd_watch_modify(struct evd_client *client, uint64_t watch, uint32_t events,
                                enum evd_mode mode, int timeout_ms);
EVD_EXPORT int evd_watch_modify_async(struct evd_client *client, uint64_t watch, uint32_t events,
                                      enum evd_mode mode, evd_done_fn done, void *done_userdata);
/** evd_watch_arm() - re-arm a oneshot watch; if the fd is still ready the callback follows.
 * Return: -EINVAL for an edge watch, -ENOENT for an unknown id. */
EVD_EXPORT int evd_watch_arm(struct evd_client *client, uint64_t watch, int timeout_ms);
EVD_EXPORT int evd_watch_arm_async(struct evd_client *client, uint64_t watch, evd_done_fn done,
                                   void *done_userdata);
/** evd_watch_remove() - stop watching: no callback for @watch runs after this call, and the
 * library closes its duplicate of the fd. Return: 0, -ENOENT. */
EVD_EXPORT int evd_watch_remove(struct evd_client *client, uint64_t watch, int timeout_ms);
EVD_EXPORT int evd_watch_remove_async(struct evd_client *client, uint64_t watch, evd_done_fn done,
                                      void *done_userdata);

/* ---- timers (times in microseconds) ---------------------------------------------- */

/** evd_timer_after() - a timer that expires @usec from now (CLOCK_MONOTONIC), then every
 * @interval_usec if that is not 0 (at least 1000). Across a reconnect it keeps its
 * remaining time. Return: 0 with *@ret_timer; -EINVAL; an EVD_E_* code; -ETIMEDOUT. */
EVD_EXPORT int evd_timer_after(struct evd_client *client, uint64_t usec, uint64_t interval_usec,
                               evd_timer_fn cb, void *userdata, int timeout_ms,
                               uint64_t *ret_timer);
EVD_EXPORT int evd_timer_after_async(struct evd_client *client, uint64_t usec,
                                     uint64_t interval_usec, evd_timer_fn cb, void *userdata,
                                     evd_done_fn done, void *done_userdata, uint64_t *ret_timer);
/** evd_timer_at() - a timer that expires at @realtime_usec (CLOCK_REALTIME, microseconds
 * since the epoch; in the past: at once), then every @interval_usec if not 0. */
EVD_EXPORT int evd_timer_at(struct evd_client *client, uint64_t realtime_usec,
                            uint64_t interval_usec, evd_timer_fn cb, void *userdata, int timeout_ms,
                            uint64_t *ret_timer);
EVD_EXPORT int evd_timer_at_async(struct evd_client *client, uint64_t realtime_usec,
                                  uint64_t interval_usec, evd_timer_fn cb, void *userdata,
                                  evd_done_fn done, void *done_userdata, uint64_t *ret_timer);
/** evd_timer_cancel() - cancel: no callback for @timer runs after this call. A timer
 * without interval is gone once its callback ran (-ENOENT then). Return: 0, -ENOENT. */
EVD_EXPORT int evd_timer_cancel(struct evd_client *client, uint64_t timer, int timeout_ms);
EVD_EXPORT int evd_timer_cancel_async(struct evd_client *client, uint64_t timer, evd_done_fn done,
                                      void *done_userdata);

/* ---- any method ------------------------------------------------------------------- */

/**
 * evd_call() - call @method ("status", "stats", "watches", "ping", ...) with @params
 * @params: an object or NULL; STOLEN, like json_object_set_new(): the library owns it
 *          from the call on, even when the call fails
 * @ret_result: on success the result, a NEW reference the caller must json_decref();
 *              may be NULL
 *
 * Methods that carry fds (watch) and those that change state libevd tracks should use
 * the functions above; evd_call() neither sends fds nor re-sends after a reconnect: a call
 * in flight when the connection is lost fails with the reason (-ECONNRESET, -ESHUTDOWN);
 * one not yet sent waits for the reconnect.
 *
 * Return: 0; an EVD_E_* code (see evd_client_last_error()); -ETIMEDOUT; -ENOTCONN.
 */
EVD_EXPORT int evd_call(struct evd_client *client, const char *method, json_t *params,
                        int timeout_ms, json_t **ret_result);
/** evd_call_async() - evd_call() with a completion; @params STOLEN; the result passed to
 * @done is BORROWED. */
EVD_EXPORT int evd_call_async(struct evd_client *client, const char *method, json_t *params,
                              evd_done_fn done, void *done_userdata);

#ifdef __cplusplus
}
#endif
