/* methods.c - one function per JSON-RPC method (protocol/PROTOCOL.md is the contract)
 *
 * Each method validates every parameter before it changes anything, so an error reply
 * means nothing happened. A method reports failure by filling a MethodError (code, the
 * parameter to blame, a static reason) and returning -1; methods_call() turns that into
 * the error reply. Mutating methods act only on the caller's own objects, looked up in the
 * caller's own maps: another client's id is indistinguishable from one that never existed.
 *
 * Replies leave here encoded. The listings (`watches`, `timers`, `clients`) are in
 * methods-list.c and write theirs themselves; what both files share (MethodError, the
 * parameter helpers, Page) is methods-internal.h.
 */

#include "methods.h"
#include "methods-internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "build-config.h"
#include "clock.h"
#include "config.h"
#include "conn.h"
#include "macro.h"
#include "server.h"
#include "state.h"
#include "text.h"
#include "usage.h"
#include "watch.h"

/* Durations (`after`, `interval`) above this are refused: certainly a mistake. */
#define MAX_SECONDS 2147483648.0
/* `at`, in seconds since the epoch: up to 2^33 (2242-03-16). Deadlines are nanoseconds and
 * the kernel's timers end at 2^63 ns (2262); 2^31 (2038) is no limit for a date. */
#define MAX_AT_SECONDS 8589934592.0
#define MIN_INTERVAL 0.001

static int fail_quota(MethodError *err, const char *why, unsigned limit) {
        err->data = json_pack("{s:I}", "limit", (json_int_t)limit);
        return fail(err, EVD_ERR_QUOTA, NULL, why);
}

/* Seconds as a JSON number (integer or real) in [min, max]; absent: *present false. */
static int get_seconds(json_t *params, const char *key, double min, double max, bool *present,
                       uint64_t *ret_ns, MethodError *err) {
        json_t *v = params ? json_object_get(params, key) : NULL;
        double s;

        *present = v != NULL;
        if (!v)
                return 0;
        if (!json_is_number(v))
                return fail(err, EVD_ERR_INVALID_PARAMS, key, "expected a number of seconds");
        s = json_number_value(v);
        if (!isfinite(s) || s < min)
                return fail(err, EVD_ERR_INVALID_PARAMS, key,
                            min > 0 ? "must be at least 0.001 seconds" : "must not be negative");
        if (s > max)
                return fail(err, EVD_ERR_INVALID_PARAMS, key,
                            max == MAX_AT_SECONDS ? "later than 2^33 seconds after the epoch (2242)"
                                                  : "larger than 2^31 seconds");
        *ret_ns = (uint64_t)llround(s * 1e9);
        return 0;
}

static int get_mode(json_t *params, bool required, EngineMode *ret, MethodError *err) {
        json_t *v = params ? json_object_get(params, "mode") : NULL;
        const char *s;

        if (!v)
                return required ? fail(err, EVD_ERR_INVALID_PARAMS, "mode", "missing") : 0;
        s = json_string_value(v);
        if (s && strcmp(s, "oneshot") == 0)
                *ret = ENGINE_ONESHOT;
        else if (s && strcmp(s, "edge") == 0)
                *ret = ENGINE_EDGE;
        else
                return fail(err, EVD_ERR_INVALID_PARAMS, "mode", "expected \"oneshot\" or \"edge\"");
        return 0;
}

static int get_events(json_t *params, bool required, uint32_t *ret, MethodError *err) {
        json_t *v = params ? json_object_get(params, "events") : NULL;
        const char *why = NULL;

        if (!v)
                return required ? fail(err, EVD_ERR_INVALID_PARAMS, "events", "missing") : 0;
        if (protocol_events_from_json(v, EVD_EVENTS_REQUESTABLE, ret, &why) < 0)
                return fail(err, EVD_ERR_INVALID_PARAMS, "events", why);
        return 0;
}

static int get_tag(json_t *params, json_t **ret, MethodError *err) {
        json_t *v = params ? json_object_get(params, "tag") : NULL;

        if (v && protocol_tag_check(v) < 0)
                return fail(err, EVD_ERR_INVALID_PARAMS, "tag", "larger than 1024 bytes encoded");
        *ret = v; /* borrowed */
        return 0;
}

static json_t *features_json(Daemon *d) {
        json_t *a = json_array();
        unsigned f = engine_features(d->engine);

        for (unsigned bit = 1; a && bit; bit <<= 1)
                if ((f & bit) && engine_feature_name(bit))
                        json_array_append_new(a, json_string(engine_feature_name(bit)));
        return a;
}

/* ---- session --------------------------------------------------------------------- */

static int m_hello(Conn *c, json_t *params, FdList *fds, json_t **ret, MethodError *err) {
        static const char *const known[] = { "protocol", "client", NULL };
        Daemon *d = c->daemon;
        json_t *proto = params ? json_object_get(params, "protocol") : NULL;
        json_t *name = params ? json_object_get(params, "client") : NULL;
        const Limits *l = &d->config.limits;

        if (check_known(params, known, err) < 0)
                return -1;
        if (!proto)
                return fail(err, EVD_ERR_INVALID_PARAMS, "protocol", "missing");
        if (!json_is_integer(proto) || json_integer_value(proto) != EVD_PROTOCOL_VERSION)
                return fail(err, EVD_ERR_INVALID_PARAMS, "protocol", "unsupported protocol version (this daemon speaks 1)");
        if (name) {
                const char *s = json_string_value(name);
                char *copy;

                if (!s || json_string_length(name) > CONN_MAX_NAME)
                        return fail(err, EVD_ERR_INVALID_PARAMS, "client", "expected a string of at most 64 bytes");
                copy = strdup(s);
                if (!copy)
                        return fail_errno(err, -ENOMEM);
                free(c->name);
                c->name = copy;
        }
        *ret = json_pack("{s:s,s:s,s:i,s:s,s:o,s:{s:i,s:i,s:i,s:i,s:I,s:I,s:I,s:I,s:f},s:I,s:b}",
                         "server", "evd", "version", EVD_VERSION, "protocol", EVD_PROTOCOL_VERSION,
                         "backend", engine_backend_name(d->engine), "features", features_json(d),
                         "limits", "max_packet", EVD_MAX_PACKET, "max_fds", EVD_MAX_FDS, "max_tag", EVD_MAX_TAG,
                         "max_batch", 1024, "max_reply_bytes", (json_int_t)conn_reply_budget(d),
                         "max_watches", (json_int_t)l->watches_per_client,
                         "max_timers", (json_int_t)l->timers_per_client, "max_queued_bytes",
                         (json_int_t)l->queued_bytes, "min_interval", MIN_INTERVAL,
                         "client_id", (json_int_t)c->id, "admin", c->admin);
        return 0;
}

static int m_ping(Conn *c, json_t *params, FdList *fds, json_t **ret, MethodError *err) {
        static const char *const known[] = { NULL };

        if (check_known(params, known, err) < 0)
                return -1;
        *ret = json_object();
        return 0;
}

/* ---- watches --------------------------------------------------------------------- */

static Watch *own_watch(Conn *c, json_t *params, MethodError *err) {
        uint64_t id;
        Watch *w;

        if (get_id(params, "watch", true, &id, err) < 0)
                return NULL;
        w = idmap_get(&c->watch_map, id);
        if (!w)
                (void)fail(err, EVD_ERR_NO_SUCH_WATCH, "watch", NULL);
        return w;
}

/* An AF_UNIX socket the daemon holds must not be able to hold, in its queue, the client's
 * own connection to evd (sent there with SCM_RIGHTS): the connection would then never be
 * seen to close, with its watches and quota, a cycle the kernel's collector cannot break
 * because the daemon keeps the socket. So: not a connection to evd itself (see
 * server_is_own_connection()), not a listener (connections queued on it may carry fds), an
 * empty receive queue, and no fds from now on (SO_PASSRIGHTS, Linux 6.16; older kernels
 * lack it, and the exposure is what the user's own quotas allow). PROTOCOL.md documents
 * all three. The socket is the client's as much as evd's: a refusal puts SO_PASSRIGHTS
 * back at once, an accepted watch when it ends (*@ret_held). */
static int check_unix_socket(Conn *c, int fd, bool *ret_held, MethodError *err) {
        int domain = 0, listening = 0, r;
        socklen_t len = sizeof(domain);
        bool held = false;
        char byte;
        struct iovec iov = { &byte, 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
                return 0;
        if (server_is_own_connection(&c->daemon->server, fd))
                return fail(err, EVD_ERR_INVALID_PARAMS, "fd", "a connection to evd cannot be watched through evd");
        len = sizeof(listening);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening)
                return fail(err, EVD_ERR_INVALID_PARAMS, "fd", "an AF_UNIX listening socket cannot be watched");
        r = watch_passrights_hold(c, fd, &held);
        if (r < 0)
                return fail(err, EVD_ERR_BAD_FD, "fd", "cannot turn off fd passing on this AF_UNIX socket");
        /* Anything queued, data or fds (which a peek without room for them flags as
         * MSG_CTRUNC), could hide fds: the client drains the socket first. */
        if (recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT) > 0 || (mh.msg_flags & MSG_CTRUNC)) {
                if (held)
                        watch_passrights_release(c, fd);
                return fail(err, EVD_ERR_INVALID_PARAMS, "fd",
                            "an AF_UNIX socket with unread data cannot be watched: read it first");
        }
        *ret_held = held;
        return 0;
}

/* Refuse what cannot sensibly be watched before the engine sees it, with a reason.
 * *@ret_held: SO_PASSRIGHTS was turned off and must be turned on again when the watch
 * ends (or now, if it is not made after all). */
static int check_watchable(Conn *c, int fd, bool *ret_held, MethodError *err) {
        struct stat st;
        int flags;

        *ret_held = false;
        /* An O_PATH fd refers to a file without opening it: nothing to poll, whatever the
         * file's type (fstat() works on it and would say "socket", "fifo", ...). */
        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return fail(err, EVD_ERR_BAD_FD, "fd", "bad file descriptor");
        if (flags & O_PATH)
                return fail(err, EVD_ERR_BAD_FD, "fd", "an O_PATH fd cannot be polled");
        if (fstat(fd, &st) < 0)
                return fail(err, EVD_ERR_BAD_FD, "fd", "cannot stat the fd");
        if (watch_fd_is_signalfd(fd))
                return fail(err, EVD_ERR_BAD_FD, "fd",
                            "a signalfd reports the signals of the process that polls it (evd), "
                            "not the client's: it cannot be watched");
        if (S_ISREG(st.st_mode))
                return fail(err, EVD_ERR_INVALID_PARAMS, "fd", "regular files are always ready and cannot be watched");
        if (S_ISDIR(st.st_mode))
                return fail(err, EVD_ERR_INVALID_PARAMS, "fd", "directories are always ready and cannot be watched");
        if (S_ISSOCK(st.st_mode))
                return check_unix_socket(c, fd, ret_held, err);
        return 0;
}

static int m_watch(Conn *c, json_t *params, FdList *fds, json_t **ret, MethodError *err) {
        static const char *const known[] = { "fd", "events", "mode", "tag", NULL };
        Daemon *d = c->daemon;
        json_t *index = params ? json_object_get(params, "fd") : NULL;
        const Limits *l = &d->config.limits;
        uint32_t events = 0;
        EngineMode mode = ENGINE_ONESHOT;
        json_t *tag = NULL;
        bool held = false;
        Watch *w;
        int fd, r;

        if (check_known(params, known, err) < 0 || get_events(params, true, &events, err) < 0 ||
            get_mode(params, true, &mode, err) < 0 || get_tag(params, &tag, err) < 0)
                return -1;
        if (!index)
                return fail(err, EVD_ERR_INVALID_PARAMS, "fd", "missing");
        if (!json_is_integer(index))
                return fail(err, EVD_ERR_INVALID_PARAMS, "fd", "expected the index of an fd on this packet");
        r = fd_list_peek(fds, json_integer_value(index), &fd);
        if (r == -EALREADY)
                return fail(err, EVD_ERR_BAD_FD, "fd", "this fd was already taken by another request of the packet");
        if (r < 0)
                return fail(err, EVD_ERR_BAD_FD, "fd", "no fd with this index on the packet");
        if (c->watches.n >= l->watches_per_client)
                return fail_quota(err, "too many watches for this client (max-watches-per-client)", l->watches_per_client);
        if (c->usage->watches >= l->watches_per_uid)
                return fail_quota(err, "too many watches for this user (max-watches-per-uid)", l->watches_per_uid);
        if (check_watchable(c, fd, &held, err) < 0)
                return -1;
        r = watch_new(c, fd, events, mode, tag, &w);
        if (r < 0 && held)
                watch_passrights_release(c, fd);
        if (r == -EPERM || r == -EINVAL)
                return fail(err, EVD_ERR_BAD_FD, "fd", "the kernel cannot poll this kind of fd");
        if (r == -EBADF)
                return fail(err, EVD_ERR_BAD_FD, "fd", "bad file descriptor");
        /* epoll_ctl() (the epoll backend, and the io_uring backend's pollability probe)
         * refuses an epoll fd nested too deep or in a loop: the fd, not the daemon, is at fault. */
        if (r == -ELOOP)
                return fail(err, EVD_ERR_BAD_FD, "fd", "epoll fds nested too deep (or in a loop)");
        if (r < 0)
                return fail_errno(err, r);
        w->holds_passrights = held;
        (void)fd_list_take(fds, json_integer_value(index), &fd); /* the watch owns it now */
        *ret = json_pack("{s:I}", "watch", (json_int_t)w->id);
        return 0;
}

static int m_modify(Conn *c, json_t *params, FdList *fds, json_t **ret, MethodError *err) {
        static const char *const known[] = { "watch", "events", "mode", NULL };
        Watch *w;
        uint32_t events;
        EngineMode mode;
        int r;

        if (check_known(params, known, err) < 0 || !(w = own_watch(c, params, err)))
                return -1;
        events = w->events;
        mode = w->mode;
        if (get_events(params, false, &events, err) < 0 || get_mode(params, false, &mode, err) < 0)
                return -1;
        if (!json_object_get(params, "events") && !json_object_get(params, "mode"))
                return fail(err, EVD_ERR_INVALID_PARAMS, NULL, "nothing to modify: give events, mode or both");
        r = watch_modify(w, events, mode);
        if (r < 0)
                return fail_errno(err, r);
        *ret = json_object();
        return 0;
}

static int m_arm(Conn *c, json_t *params, FdList *fds, json_t **ret, MethodError *err) {
        static const char *const known[] = { "watch", NULL };
        Watch *w;
        int r;

        if (check_known(params, known, err) < 0 || !(w = own_watch(c, params, err)))
                return -1;
        if (w->mode != ENGINE_ONESHOT)
                return fail(err, EVD_ERR_INVALID_PARAMS, "watch", "only oneshot watches are armed; edge watches always are");
        r = watch_arm(w);
        if (r < 0)
                return fail_errno(err, r);
        *ret = json_object();
        return 0;
}

static int m_unwatch(Conn *c, json_t *params, FdList *fds, json_t **ret, MethodError *err) {
        static const char *const known[] = { "watch", NULL };
        Watch *w;

        if (check_known(params, known, err) < 0 || !(w = own_watch(c, params, err)))
                return -1;
        (void)watch_free(w);
        *ret = json_object();
        return 0;
}

/* ---- timers ---------------------------------------------------------------------- */

static int m_timer(Conn *c, json_t *params, FdList *fds, json_t **ret, MethodError *err) {
        static const char *const known[] = { "after", "at", "interval", "tag", NULL };
        Daemon *d = c->daemon;
        const Limits *l = &d->config.limits;
        uint64_t after = 0, at = 0, interval = 0, deadline;
        bool has_after, has_at, has_interval;
        EngineClock clock = ENGINE_CLOCK_MONOTONIC;
        json_t *tag = NULL;
        ClientTimer *t;
        int r;

        if (check_known(params, known, err) < 0 ||
            get_seconds(params, "after", 0, MAX_SECONDS, &has_after, &after, err) < 0 ||
            get_seconds(params, "at", 0, MAX_AT_SECONDS, &has_at, &at, err) < 0 ||
            get_seconds(params, "interval", MIN_INTERVAL, MAX_SECONDS, &has_interval, &interval,
                        err) < 0 ||
            get_tag(params, &tag, err) < 0)
                return -1;
        if (has_after == has_at)
                return fail(err, EVD_ERR_INVALID_PARAMS, has_after ? "at" : "after", "give exactly one of after and at");
        if (c->timers.n >= l->timers_per_client)
                return fail_quota(err, "too many timers for this client (max-timers-per-client)", l->timers_per_client);
        if (c->usage->timers >= l->timers_per_uid)
                return fail_quota(err, "too many timers for this user (max-timers-per-uid)", l->timers_per_uid);
        if (has_at)
                clock = ENGINE_CLOCK_REALTIME;
        /* From the clock now, not the loop's cached time: a timer must never fire before
         * `after` has passed since the client sent the request. */
        deadline = has_at ? at : monotonic_ns() + after;
        r = client_timer_new(c, clock, deadline, has_interval ? interval : 0, tag, &t);
        if (r < 0)
                return fail_errno(err, r);
        *ret = json_pack("{s:I}", "timer", (json_int_t)t->id);
        return 0;
}

static int m_cancel(Conn *c, json_t *params, FdList *fds, json_t **ret, MethodError *err) {
        static const char *const known[] = { "timer", NULL };
        ClientTimer *t;
        uint64_t id;

        if (check_known(params, known, err) < 0 || get_id(params, "timer", true, &id, err) < 0)
                return -1;
        t = idmap_get(&c->timer_map, id);
        if (!t)
                return fail(err, EVD_ERR_NO_SUCH_TIMER, "timer", NULL);
        (void)client_timer_free(t);
        *ret = json_object();
        return 0;
}

/* ---- inspection ------------------------------------------------------------------ */

static json_t *reexec_json(Daemon *d) {
        json_t *o = json_pack("{s:i,s:I,s:b}", "generation", (int)d->generation, "failures",
                              (json_int_t)d->reexec_failures, "pending", d->reexec_requested);

        if (o && d->reexec_error < 0 && json_object_set_new(o, "last_error", json_string(strerror(-d->reexec_error))) < 0)
                json_decref(TAKE_PTR(o));
        return o;
}

static int m_status(Conn *c, json_t *params, FdList *fds, json_t **ret, MethodError *err) {
        static const char *const known[] = { NULL };
        Daemon *d = c->daemon;

        if (check_known(params, known, err) < 0)
                return -1;
        *ret = json_pack("{s:s,s:s,s:i,s:i,s:f,s:s,s:o,s:I,s:I,s:I,s:I,s:b}",
                         "server", "evd", "version", EVD_VERSION, "protocol", EVD_PROTOCOL_VERSION,
                         "pid", (int)getpid(), "uptime", (double)daemon_uptime_ns(d) / 1e9,
                         "backend", engine_backend_name(d->engine), "features", features_json(d),
                         "clients", (json_int_t)d->conns.n, "watches", (json_int_t)d->n_watches,
                         "timers", (json_int_t)d->n_timers, "notifications", (json_int_t)d->stats.notifications,
                         "shutting_down", d->shutting_down);
        if (*ret && json_object_set_new(*ret, "reexec", reexec_json(d)) < 0)
                json_decref(TAKE_PTR(*ret));
        return 0;
}

/* The daemon as a process: what an operator checks first. Fds: all it has open, counted
 * (fdset_count_open(): cheap on Linux 6.2 and later, bounded before), the number the fd
 * limit applies to; and the part its clients make it hold (connections, watched fds),
 * what the per-user limits share out. */
static json_t *process_json(Daemon *d) {
        struct rlimit rl = { 0 };
        long pages = 0, resident = 0;
        unsigned open_fds;
        int r;
        FILE *f;
        json_t *o;

        /* Counted before statm is opened: that fd is this function's, for a moment. */
        r = fdset_count_open(&d->fd_count, &open_fds);
        f = fopen("/proc/self/statm", "re");
        if (f) {
                if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
                        resident = 0;
                (void)fclose(f);
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                rl.rlim_cur = 0;
        o = json_pack("{s:f,s:f,s:{s:I,s:I,s:I},s:I}", "uptime", (double)daemon_uptime_ns(d) / 1e9, "started",
                      (double)d->started_real / 1e9, "fds", "connections", (json_int_t)d->conns.n, "watched",
                      (json_int_t)d->n_watches, "limit", (json_int_t)rl.rlim_cur, "rss_bytes",
                      (json_int_t)resident * (json_int_t)sysconf(_SC_PAGESIZE));
        if (o && r >= 0 && json_object_set_new(json_object_get(o, "fds"), "open", json_integer(open_fds)) < 0)
                json_decref(TAKE_PTR(o));
        return o;
}

/* The limits in force (configuration and defaults: README.md, Configuration). */
static json_t *limits_json(const Limits *l) {
        return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "max-clients", (json_int_t)l->clients,
                         "max-clients-per-uid", (json_int_t)l->clients_per_uid, "max-watches-per-client",
                         (json_int_t)l->watches_per_client, "max-watches-per-uid", (json_int_t)l->watches_per_uid,
                         "max-timers-per-client", (json_int_t)l->timers_per_client, "max-timers-per-uid",
                         (json_int_t)l->timers_per_uid, "max-timer-rate-per-uid", (json_int_t)l->timer_rate_per_uid,
                         "max-queued-bytes", (json_int_t)l->queued_bytes, "max-turn-us", (json_int_t)l->turn_us);
}

static int m_stats(Conn *c, json_t *params, FdList *fds, json_t **ret, MethodError *err) {
        static const char *const known[] = { NULL };
        Daemon *d = c->daemon;
        const DaemonStats *s = &d->stats;
        EngineStats e;

        if (check_known(params, known, err) < 0)
                return -1;
        engine_get_stats(d->engine, &e);
        *ret = json_pack("{s:{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},"
                         "s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:o}",
                         "engine", "backend", engine_backend_name(d->engine),
                         "iterations", (json_int_t)e.iterations, "events", (json_int_t)e.events,
                         "timers", (json_int_t)e.timers, "submissions", (json_int_t)e.submissions,
                         "syscalls", (json_int_t)e.syscalls, "overflows", (json_int_t)e.overflows,
                         "ring_resizes", (json_int_t)e.ring_resizes, "sq_full", (json_int_t)e.sq_full,
                         "sq_entries", (json_int_t)e.sq_entries, "cq_entries", (json_int_t)e.cq_entries,
                         "daemon", "accepted", (json_int_t)s->accepted, "refused", (json_int_t)s->refused,
                         "disconnected", (json_int_t)s->disconnected, "requests", (json_int_t)s->requests,
                         "errors", (json_int_t)s->errors, "notifications", (json_int_t)s->notifications,
                         "coalesced", (json_int_t)s->coalesced, "packets_in", (json_int_t)s->packets_in,
                         "packets_out", (json_int_t)s->packets_out, "bytes_in", (json_int_t)s->bytes_in,
                         "bytes_out", (json_int_t)s->bytes_out, "fds_received", (json_int_t)s->fds_in,
                         "monitor_dropped", (json_int_t)s->monitor_dropped,
                         "latency", histogram_to_json(&d->latency));
        if (!*ret)
                return 0; /* answered as out of memory */
        (void)json_object_set_new(json_object_get(*ret, "engine"), "poll_updates", json_integer((json_int_t)e.poll_updates));
        (void)json_object_set_new(json_object_get(*ret, "engine"), "cancel_retries",
                                  json_integer((json_int_t)e.cancel_retries));
        (void)json_object_set_new(json_object_get(*ret, "daemon"), "timers_held", json_integer((json_int_t)s->timers_held));
        (void)json_object_set_new(*ret, "packet_cost", histogram_to_json(&d->packet_cost));
        (void)json_object_set_new(*ret, "timer_lateness", histogram_to_json(&d->timer_lateness));
        (void)json_object_set_new(*ret, "process", process_json(d));
        (void)json_object_set_new(*ret, "limits", limits_json(&d->config.limits));
        return 0;
}

static int m_monitor(Conn *c, json_t *params, FdList *fds, json_t **ret, MethodError *err) {
        static const char *const known[] = { "connections", NULL };
        json_t *connections = params ? json_object_get(params, "connections") : NULL;

        if (check_known(params, known, err) < 0)
                return -1;
        if (connections && !json_is_boolean(connections))
                return fail(err, EVD_ERR_INVALID_PARAMS, "connections", "expected true or false");
        if (!c->admin)
                return fail(err, EVD_ERR_PERMISSION, NULL, "only admins may monitor");
        c->monitor_connections = json_is_true(connections);
        if (!c->monitor) {
                c->monitor = true;
                list_append(&c->daemon->monitors, &c->monitor_link);
        }
        *ret = json_object();
        return 0;
}

/* Replace the running image by the binary at its path, keeping every client, watch and
 * timer (daemon-reexec.c). Admin only. Answered at once; the exec happens at the end of
 * this iteration, and `status`.reexec.generation (or .failures) tells how it went. */
static int m_reexec(Conn *c, json_t *params, FdList *fds, json_t **ret, MethodError *err) {
        static const char *const known[] = { NULL };
        Daemon *d = c->daemon;

        if (check_known(params, known, err) < 0)
                return -1;
        if (!c->admin)
                return fail(err, EVD_ERR_PERMISSION, NULL, "only admins may re-execute the daemon");
        if (d->shutting_down)
                return fail(err, EVD_ERR_SHUTTING_DOWN, NULL, "the daemon is shutting down");
        d->reexec_requested = true;
        daemon_schedule(d);
        *ret = json_pack("{s:i,s:i}", "pid", (int)getpid(), "generation", (int)d->generation);
        return 0;
}

/* Debug only ($EVD_DEBUG=1 in the daemon's environment): block the event loop for
 * `seconds`, so that tests can see the service manager's watchdog fire. Not part of the
 * protocol. Admin only: it stops the daemon for everyone. */
static int m_debug_wedge(Conn *c, json_t *params, FdList *fds, json_t **ret, MethodError *err) {
        static const char *const known[] = { "seconds", NULL };
        uint64_t ns = 0;
        bool present;
        struct timespec ts;

        if (!getenv("EVD_DEBUG") || strcmp(getenv("EVD_DEBUG"), "1") != 0)
                return fail(err, EVD_ERR_METHOD_NOT_FOUND, NULL, NULL);
        if (!c->admin)
                return fail(err, EVD_ERR_PERMISSION, NULL, "only admins may wedge the daemon");
        if (check_known(params, known, err) < 0 ||
            get_seconds(params, "seconds", 0, MAX_SECONDS, &present, &ns, err) < 0)
                return -1;
        ts.tv_sec = (time_t)(ns / NSEC_PER_SEC);
        ts.tv_nsec = (long)(ns % NSEC_PER_SEC);
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        *ret = json_object();
        return 0;
}

static const struct {
        const char *name;
        method_fn fn;
        list_fn list; /* a listing: writes its encoded reply itself */
} methods[] = {
        { "hello", m_hello, NULL },
        { "watch", m_watch, NULL },
        { "modify", m_modify, NULL },
        { "arm", m_arm, NULL },
        { "unwatch", m_unwatch, NULL },
        { "timer", m_timer, NULL },
        { "cancel", m_cancel, NULL },
        { "ping", m_ping, NULL },
        { "status", m_status, NULL },
        { "stats", m_stats, NULL },
        { "clients", NULL, methods_list_clients },
        { "watches", NULL, methods_list_watches },
        { "timers", NULL, methods_list_timers },
        { "monitor", m_monitor, NULL },
        { "reexec", m_reexec, NULL },
        { "debug-wedge", m_debug_wedge, NULL },
};

size_t methods_call(Conn *c, const JsonRpcRequest *req, FdList *fds, size_t budget, char *buf, size_t size,
                    size_t *ret_cost) {
        MethodError err = { 0 };
        json_t *result = NULL, *data;
        size_t n;
        int i = -1;

        *ret_cost = 0;
        for (size_t k = 0; k < ELEMENTSOF(methods); k++)
                if (strcmp(methods[k].name, req->method) == 0) {
                        i = (int)k;
                        break;
                }
        if (i < 0)
                (void)fail(&err, EVD_ERR_METHOD_NOT_FOUND, NULL, NULL);
        else if (methods[i].list) {
                Page p = {
                        .buf = buf,
                        .p = buf,
                        .soft = buf + MIN(MIN((size_t)LIST_BYTE_BUDGET, budget), size),
                        .hard = buf + size - LIST_TAIL_ROOM,
                };

                assert(size > LIST_TAIL_ROOM);
                if (methods[i].list(c, req->params, req->id, &p, &err) >= 0) {
                        /* Items walked past to reach `offset` cost time too: a byte each. */
                        *ret_cost = (size_t)(p.p - buf) + p.skipped;
                        return req->id ? (size_t)(p.p - buf) : 0;
                }
        } else if (methods[i].fn(c, req->params, fds, &result, &err) >= 0 && !result)
                (void)fail_errno(&err, -ENOMEM);

        if (!req->id) {
                /* A notification: done, reply or not. */
                json_decref(result);
                json_decref(err.data);
                return 0;
        }
        if (result)
                n = conn_encode_reply(c, req->id, jsonrpc_reply(req->id, result), buf, size);
        else {
                c->daemon->stats.errors++;
                data = err.param || err.why ? jsonrpc_error_data(err.param, err.why) : NULL;
                if (err.data) {
                        if (!data)
                                data = json_object();
                        if (data)
                                json_object_update(data, err.data);
                        json_decref(err.data);
                }
                n = conn_encode_reply(c, req->id, jsonrpc_error(req->id, err.code, NULL, data), buf, size);
        }
        *ret_cost = n;
        return n;
}
