/* soak.c - mixed load against an evd it starts, for a given time; fails on growth
 *
 * Usage: soak [--evd PATH] [--seconds N] [--workers N] [--backend io_uring|epoll]
 *             [--pace-us N] [--rss-slack KIB] [--kill-every N] [--with-fd-cycles] [--keep]
 *
 * The daemon is $EVD_SOAK_DAEMON, else --evd PATH, else the evd of this build tree. It is
 * started on a socket in a fresh mkdtemp() directory, its stderr (log level notice) in
 * evd.log next to it; the directory is removed at the end unless the run failed or --keep.
 *
 * Load: --workers processes (default 4; 2 under EVD_UNDER_VALGRIND=1), each keeping up to 6
 * connections and doing, at random, every --pace-us microseconds (default 500): connect,
 * disconnect abruptly (with watches, timers and unread output), watch pipes and eventfds in
 * oneshot and edge mode, make them ready, read notifications and re-arm, unwatch, start
 * one-shot and repeating timers, cancel, batches, broken JSON, fds the daemon must refuse (40
 * on one packet), and stalls (a connection that stops reading for a while). A worker checks
 * every reply it waits for: no Internal error (-32603), nothing unparseable, no reply missing
 * for 5 s, no connection dropped; any of these is counted as an error. Every --kill-every
 * seconds (default 3) one worker is killed with SIGKILL and replaced. --with-fd-cycles adds a
 * hostile action (off by default): a connection that parks its own fd in the queue of a
 * socket it asks evd to watch, then is dropped; evd cannot see it go (tests/test-hostile.c,
 * test_fd_cycle_through_queue), so this shows the fd criterion failing until that is fixed.
 *
 * Once a second the daemon's fd count and RSS are printed with its status (one line per
 * second). At the end every worker is killed and the daemon given 10 s to drop them all.
 *
 * Growth, which fails the run (exit 1):
 *  - fds: with every worker gone, the daemon's fd count is above its count at the start
 *    (both taken with only this program's control connection open);
 *  - RSS (not under AddressSanitizer, whose quarantine keeps freed memory resident): with
 *    every worker gone, RSS more than --rss-slack (default 4096 KiB) above the median of the
 *    middle third of the run; or the median of the last third more than --rss-slack above
 *    the median of the middle third (growth while the load goes on).
 * Also failing: a worker error, the daemon dying or not answering the control connection's
 * ping within 5 s, or not exiting 0 on SIGTERM at the end.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fd-list.h"
#include "jsonrpc.h"
#include "macro.h"
#include "wire.h"

#ifndef EVD_SOAK_DAEMON
#define EVD_SOAK_DAEMON "evd"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define MAX_WORKERS 16
#define MAX_CONNS 6
#define MAX_WATCHES 12
#define MAX_TIMERS 8
#define REPLY_TIMEOUT_MS 5000

static const char *arg_evd;
static unsigned arg_seconds = 60;
static unsigned arg_workers = 4;
static const char *arg_backend;
static unsigned arg_pace_us = 500;
static long arg_rss_slack_kib = 4096;
static unsigned arg_kill_every = 3;
static bool arg_keep;
static bool arg_fd_cycles;

static char soak_dir[64], soak_socket[128], soak_log[128];

static long long now_ms(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- talking to the daemon --------------------------------------------------------- */

static int connect_daemon(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        strcpy(sa.sun_path, soak_socket);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}

/* Receive one packet (parsed, a new reference) within @timeout_ms; NULL on timeout, EOF or
 * error, with the reason in *@ret (0 for EOF). */
static json_t *recv_packet(int fd, int timeout_ms, int *ret) {
        static char buf[EVD_MAX_PACKET + 1];
        FdList fds = FD_LIST_NULL;
        WirePacket pkt;
        json_t *v = NULL;
        int r;

        r = wire_recv_blocking(fd, buf, sizeof(buf) - 1, &fds, &pkt, timeout_ms);
        fd_list_close(&fds);
        if (r < 0 || pkt.eof || pkt.truncated) {
                *ret = r < 0 ? r : pkt.truncated ? -EMSGSIZE : 0;
                return NULL;
        }
        if (jsonrpc_parse(buf, pkt.len, &v, NULL) < 0) {
                *ret = -EBADMSG;
                return NULL;
        }
        *ret = 1;
        return v;
}

/* Wait for the reply whose id is @id (an integer); each notification on the way is handed
 * to @on_note. Returns the reply (a new reference) or NULL, with the reason in *@ret. */
static json_t *wait_reply(int fd, long long id, void (*on_note)(json_t *m, void *ud), void *ud,
                          int *ret) {
        long long deadline = now_ms() + REPLY_TIMEOUT_MS;

        for (;;) {
                long long left = deadline - now_ms();
                json_t *v, *found = NULL;
                size_t n;

                if (left <= 0) {
                        *ret = -ETIMEDOUT;
                        return NULL;
                }
                v = recv_packet(fd, (int)left, ret);
                if (!v)
                        return NULL;
                n = json_is_array(v) ? json_array_size(v) : 1;
                for (size_t i = 0; i < n; i++) {
                        json_t *m = json_is_array(v) ? json_array_get(v, i) : v;
                        json_t *mid = json_object_get(m, "id");

                        if (json_object_get(m, "method")) {
                                if (on_note)
                                        on_note(m, ud);
                        } else if (!found &&
                                   ((json_is_integer(mid) && json_integer_value(mid) == id) ||
                                    json_is_null(mid)))
                                /* One request at a time: an error with a null id is its answer. */
                                found = json_incref(m);
                }
                json_decref(v);
                if (found)
                        return found;
        }
}

/* Send @text with @fds (at most 32), then wait_reply(). */
static json_t *request(int fd, const char *text, const int *fds, size_t n_fds, long long id,
                       void (*on_note)(json_t *m, void *ud), void *ud, int *ret) {
        *ret = wire_send_blocking(fd, text, strlen(text), fds, n_fds);
        if (*ret < 0)
                return NULL;
        return wait_reply(fd, id, on_note, ud, ret);
}

static int error_code(json_t *reply) {
        return (int)json_integer_value(json_object_get(json_object_get(reply, "error"), "code"));
}

/* ---- workers ------------------------------------------------------------------------ */

typedef struct SoakWatch {
        long long id;
        int rfd, wfd; /* wfd -1: an eventfd (rfd is also written) */
        bool oneshot;
        bool fired; /* a oneshot ready came: arm it */
} SoakWatch;

typedef struct SoakConn {
        int fd;
        long long next_id;
        SoakWatch w[MAX_WATCHES];
        unsigned n_w;
        long long t[MAX_TIMERS];
        unsigned n_t;
        unsigned stalled; /* actions left before it reads again */
        long long client_id;
} SoakConn;

typedef struct Worker {
        SoakConn c[MAX_CONNS];
        unsigned n_c;
        int report; /* one byte per error */
        unsigned seed;
} Worker;

static unsigned rnd(Worker *w, unsigned n) {
        return n ? (unsigned)rand_r(&w->seed) % n : 0;
}

/* A problem with the daemon: counted by the parent, described on stderr. */
static void worker_error(Worker *w, const char *what, const char *detail) {
        fprintf(stderr, "soak: worker %d: %s%s%s\n", (int)getpid(), what, detail ? ": " : "",
                detail ? detail : "");
        (void)!write(w->report, "E", 1);
}

static void on_note(json_t *m, void *ud) {
        SoakConn *c = ud;
        const char *method = json_string_value(json_object_get(m, "method"));
        json_t *params = json_object_get(m, "params");

        if (!method || !json_is_object(params))
                return;
        if (strcmp(method, "ready") == 0) {
                long long id = json_integer_value(json_object_get(params, "watch"));

                for (unsigned i = 0; i < c->n_w; i++)
                        if (c->w[i].id == id && c->w[i].oneshot)
                                c->w[i].fired = true;
        } else if (strcmp(method, "timer") == 0) {
                /* one-shot timers go away when they fire; cancel copes with -32002 */
        }
}

static void conn_drop(SoakConn *c) {
        (void)safe_close(c->fd);
        for (unsigned i = 0; i < c->n_w; i++) {
                (void)safe_close(c->w[i].rfd);
                (void)safe_close(c->w[i].wfd);
        }
        memset(c, 0, sizeof(*c));
        c->fd = -1;
}

/* One request on @c; the reply (a new reference) or NULL after an error was reported. An
 * error reply with a code in @ok_codes (0-terminated) is fine; others are errors. */
static json_t *call(Worker *w, SoakConn *c, const char *fmt_method, const char *params,
                    const int *fds, size_t n_fds, const int *ok_codes) {
        char text[1024];
        long long id = ++c->next_id;
        json_t *r;
        int ret;

        snprintf(text, sizeof(text), "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"%s\"%s%s}", id,
                 fmt_method, params ? ",\"params\":" : "", params ? params : "");
        r = request(c->fd, text, fds, n_fds, id, on_note, c, &ret);
        if (!r) {
                char why[64];

                snprintf(why, sizeof(why), "%s (%s)", fmt_method,
                         ret == 0 ? "EOF" : strerror(-ret));
                worker_error(w, "no reply", why);
                return NULL;
        }
        if (json_object_get(r, "error")) {
                int code = error_code(r);
                bool ok = false;

                for (size_t i = 0; ok_codes && ok_codes[i]; i++)
                        ok = ok || ok_codes[i] == code;
                if (!ok) {
                        char *s = json_dumps(r, JSON_COMPACT);

                        worker_error(w, "unexpected error", s);
                        free(s);
                }
        }
        return r;
}

static SoakConn *pick_conn(Worker *w) {
        SoakConn *c;

        if (w->n_c == 0)
                return NULL;
        c = &w->c[rnd(w, w->n_c)];
        return c->stalled ? NULL : c;
}

static void act_connect(Worker *w) {
        SoakConn *c;
        int fd;

        if (w->n_c >= MAX_CONNS)
                return;
        fd = connect_daemon();
        if (fd < 0) {
                worker_error(w, "connect", strerror(-fd));
                return;
        }
        c = &w->c[w->n_c++];
        memset(c, 0, sizeof(*c));
        c->fd = fd;
        {
                static const int ok[] = { 0 };
                json_t *r =
                        call(w, c, "hello", "{\"protocol\":1,\"client\":\"soak\"}", NULL, 0, ok);

                c->client_id = json_integer_value(
                        json_object_get(json_object_get(r, "result"), "client_id"));
                json_decref(r);
        }
}

static void act_disconnect(Worker *w) {
        unsigned i;

        if (w->n_c == 0)
                return;
        i = rnd(w, w->n_c);
        conn_drop(&w->c[i]);
        w->c[i] = w->c[--w->n_c];
}

static void act_watch(Worker *w) {
        static const int ok[] = { 0 };
        SoakConn *c = pick_conn(w);
        SoakWatch *sw;
        char params[512];
        json_t *r;
        int p[2];
        bool use_pipe;

        if (!c || c->n_w >= MAX_WATCHES)
                return;
        use_pipe = rnd(w, 2);
        if (use_pipe) {
                if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                        return;
        } else {
                p[0] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                p[1] = -1;
                if (p[0] < 0)
                        return;
        }
        sw = &c->w[c->n_w];
        sw->oneshot = rnd(w, 2);
        snprintf(params, sizeof(params),
                 "{\"fd\":0,\"events\":[\"in\"],\"mode\":\"%s\",\"tag\":{\"w\":%u,\"s\":\"%0*d\"}}",
                 sw->oneshot ? "oneshot" : "edge", rnd(w, 1000), (int)rnd(w, 200), 7);
        r = call(w, c, "watch", params, &p[0], 1, ok);
        if (r && json_object_get(r, "result")) {
                sw->id = json_integer_value(json_object_get(json_object_get(r, "result"), "watch"));
                sw->rfd = p[0];
                sw->wfd = p[1];
                sw->fired = false;
                c->n_w++;
        } else {
                (void)safe_close(p[0]);
                (void)safe_close(p[1]);
        }
        json_decref(r);
}

static void act_poke(Worker *w) {
        SoakConn *c = pick_conn(w);
        SoakWatch *sw;
        uint64_t one = 1;

        if (!c || c->n_w == 0)
                return;
        sw = &c->w[rnd(w, c->n_w)];
        if (sw->wfd >= 0)
                (void)!write(sw->wfd, "x", 1);
        else
                (void)!write(sw->rfd, &one, sizeof(one));
}

/* Read what is there; drain the fds that fired and re-arm oneshots. */
static void act_read(Worker *w) {
        static const int ok[] = { -32001, 0 };
        SoakConn *c = pick_conn(w);
        char buf[256];
        int ret;

        if (!c)
                return;
        for (;;) {
                json_t *v = recv_packet(c->fd, 0, &ret), *m;
                size_t i;

                if (!v)
                        break;
                if (json_is_array(v)) {
                        json_array_foreach(v, i, m)
                                if (json_object_get(m, "method"))
                                        on_note(m, c);
                } else if (json_object_get(v, "method"))
                        on_note(v, c);
                json_decref(v);
        }
        if (ret != -ETIMEDOUT) {
                worker_error(w, "connection lost while reading", ret == 0 ? "EOF" : strerror(-ret));
                return;
        }
        for (unsigned i = 0; i < c->n_w; i++) {
                char params[64];

                while (read(c->w[i].rfd, buf, sizeof(buf)) > 0)
                        ;
                if (!c->w[i].fired)
                        continue;
                c->w[i].fired = false;
                snprintf(params, sizeof(params), "{\"watch\":%lld}", c->w[i].id);
                json_decref(call(w, c, "arm", params, NULL, 0, ok));
        }
}

static void act_unwatch(Worker *w) {
        static const int ok[] = { 0 };
        SoakConn *c = pick_conn(w);
        char params[64];
        unsigned i;

        if (!c || c->n_w == 0)
                return;
        i = rnd(w, c->n_w);
        snprintf(params, sizeof(params), "{\"watch\":%lld}", c->w[i].id);
        json_decref(call(w, c, "unwatch", params, NULL, 0, ok));
        (void)safe_close(c->w[i].rfd);
        (void)safe_close(c->w[i].wfd);
        c->w[i] = c->w[--c->n_w];
}

static void act_timer(Worker *w) {
        static const int ok[] = { 0 };
        SoakConn *c = pick_conn(w);
        char params[128];
        json_t *r;

        if (!c || c->n_t >= MAX_TIMERS)
                return;
        if (rnd(w, 3) == 0)
                snprintf(params, sizeof(params),
                         "{\"after\":0.%03u,\"interval\":0.0%02u,\"tag\":%u}", rnd(w, 200),
                         1 + rnd(w, 99), rnd(w, 100));
        else
                snprintf(params, sizeof(params), "{\"after\":0.%03u,\"tag\":\"t%u\"}", rnd(w, 300),
                         rnd(w, 100));
        r = call(w, c, "timer", params, NULL, 0, ok);
        if (r && json_object_get(r, "result"))
                c->t[c->n_t++] =
                        json_integer_value(json_object_get(json_object_get(r, "result"), "timer"));
        json_decref(r);
}

static void act_cancel(Worker *w) {
        static const int ok[] = { -32002, 0 }; /* a one-shot timer may have fired */
        SoakConn *c = pick_conn(w);
        char params[64];
        unsigned i;

        if (!c || c->n_t == 0)
                return;
        i = rnd(w, c->n_t);
        snprintf(params, sizeof(params), "{\"timer\":%lld}", c->t[i]);
        json_decref(call(w, c, "cancel", params, NULL, 0, ok));
        c->t[i] = c->t[--c->n_t];
}

/* A batch with a bit of everything, answered in one go. */
static void act_batch(Worker *w) {
        SoakConn *c = pick_conn(w);
        char text[1024];
        long long id;
        json_t *r;
        int ret;

        if (!c)
                return;
        id = ++c->next_id;
        snprintf(text, sizeof(text),
                 "[{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"ping\"},"
                 "{\"jsonrpc\":\"2.0\",\"method\":\"status\"},5,"
                 "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"nope\"},"
                 "{\"jsonrpc\":\"2.0\",\"id\":\"y\",\"method\":\"unwatch\",\"params\":{\"watch\":"
                 "9007199254740991}},"
                 "{\"jsonrpc\":\"2.0\",\"id\":\"z\",\"method\":\"stats\"}]",
                 id);
        r = request(c->fd, text, NULL, 0, id, on_note, c, &ret);
        if (!r)
                worker_error(w, "no reply to a batch", ret == 0 ? "EOF" : strerror(-ret));
        json_decref(r);
}

/* Things the daemon must refuse: broken JSON, 40 fds on one packet. */
static void act_garbage(Worker *w) {
        static const char *const junk[] = { "{\"jsonrpc\":", "[1,2", "\xff\xfe", "{\"a\":1}}",
                                            "nul" };
        SoakConn *c = pick_conn(w);
        int fds[40], ret;
        json_t *v;

        if (!c)
                return;
        if (rnd(w, 2)) {
                const char *j = junk[rnd(w, sizeof(junk) / sizeof(junk[0]))];

                if (wire_send_blocking(c->fd, j, strlen(j), NULL, 0) < 0) {
                        worker_error(w, "send", NULL);
                        return;
                }
                /* The -32700 (id null) comes back before the reply to the next request. */
                for (;;) {
                        v = recv_packet(c->fd, REPLY_TIMEOUT_MS, &ret);
                        if (!v) {
                                worker_error(w, "no reply to broken JSON", NULL);
                                return;
                        }
                        if (json_is_object(v) && json_object_get(v, "error") &&
                            error_code(v) == -32700) {
                                json_decref(v);
                                return;
                        }
                        if (json_is_object(v) && json_object_get(v, "method"))
                                on_note(v, c);
                        else if (json_is_array(v)) {
                                json_t *m;
                                size_t i;

                                json_array_foreach(v, i, m)
                                        if (json_object_get(m, "method"))
                                                on_note(m, c);
                        } else {
                                char *s = json_dumps(v, JSON_COMPACT);

                                worker_error(w, "unexpected reply to broken JSON", s);
                                free(s);
                                json_decref(v);
                                return;
                        }
                        json_decref(v);
                }
        }
        for (int i = 0; i < 40; i++)
                fds[i] = eventfd(0, EFD_CLOEXEC);
        {
                /* wire_send refuses more than 32 fds: build the packet by hand. */
                char text[128];
                long long id = ++c->next_id;
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(fds))];
                } control;
                struct iovec iov = { .iov_base = text };
                struct msghdr mh = { .msg_iov = &iov,
                                     .msg_iovlen = 1,
                                     .msg_control = control.buf,
                                     .msg_controllen = sizeof(control.buf) };
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                json_t *r;

                iov.iov_len = (size_t)snprintf(
                        text, sizeof(text), "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"ping\"}",
                        id);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(fds));
                memcpy(CMSG_DATA(cm), fds, sizeof(fds));
                if (sendmsg(c->fd, &mh, MSG_NOSIGNAL) < 0) {
                        worker_error(w, "sendmsg with 40 fds", strerror(errno));
                } else {
                        r = wait_reply(c->fd, id, on_note, c, &ret);
                        if (!r)
                                worker_error(w, "no reply to 40 fds",
                                             ret == 0 ? "EOF" : strerror(-ret));
                        else if (error_code(r) != -32006)
                                worker_error(w, "40 fds not refused with -32006", NULL);
                        json_decref(r);
                }
        }
        for (int i = 0; i < 40; i++)
                (void)safe_close(fds[i]);
}

/* The fd cycle (see the top of the file): the connection's own fd rides in the queue of the
 * socket it watches; then the connection is dropped. */
static void act_fd_cycle(Worker *w) {
        static const int ok[] = { 0 };
        SoakConn *c = pick_conn(w);
        int sv[2];

        if (!c || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return;
        if (wire_send_blocking(sv[0], "x", 1, &c->fd, 1) == 0)
                json_decref(call(w, c, "watch", "{\"fd\":0,\"events\":[\"in\"],\"mode\":\"edge\"}",
                                 &sv[1], 1, ok));
        close(sv[0]);
        close(sv[1]);
        for (unsigned i = 0; i < w->n_c; i++)
                if (&w->c[i] == c) {
                        conn_drop(c);
                        w->c[i] = w->c[--w->n_c];
                        break;
                }
}

static void act_stall(Worker *w) {
        SoakConn *c = pick_conn(w);

        if (c)
                c->stalled = 20 + rnd(w, 200);
}

static _Noreturn void worker_run(int report, unsigned seed) {
        Worker w = { .report = report, .seed = seed };

        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
                unsigned a = rnd(&w, 100);

                for (unsigned i = 0; i < w.n_c; i++)
                        if (w.c[i].stalled)
                                w.c[i].stalled--;
                if (w.n_c == 0 || a < 4)
                        act_connect(&w);
                else if (a < 6)
                        act_disconnect(&w);
                else if (a < 20)
                        act_watch(&w);
                else if (a < 45)
                        act_poke(&w);
                else if (a < 65)
                        act_read(&w);
                else if (a < 70)
                        act_unwatch(&w);
                else if (a < 82)
                        act_timer(&w);
                else if (a < 86)
                        act_cancel(&w);
                else if (a < 92)
                        act_batch(&w);
                else if (a < 96)
                        act_garbage(&w);
                else if (a < 97 && arg_fd_cycles)
                        act_fd_cycle(&w);
                else
                        act_stall(&w);
                if (arg_pace_us)
                        (void)usleep(arg_pace_us);
        }
}

/* ---- the run ----------------------------------------------------------------------- */

typedef struct Sample {
        int fds;
        long rss_kib;
} Sample;

static pid_t daemon_pid;

static int daemon_fd_count(void) {
        char path[64];
        struct dirent *de;
        DIR *dir;
        int n = 0;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int)daemon_pid);
        dir = opendir(path);
        if (!dir)
                return -1;
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(dir);
        return n;
}

static long daemon_rss_kib(void) {
        char path[64], line[256];
        long kb = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon_pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

static bool daemon_alive(int *ret_status) {
        int status;

        if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid) {
                *ret_status = status;
                daemon_pid = 0;
                return false;
        }
        return true;
}

static int start_daemon(void) {
        pid_t parent = getpid();
        long long deadline;

        snprintf(soak_dir, sizeof(soak_dir), "%s/evd-soak-XXXXXX",
                 getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(soak_dir))
                return -errno;
        snprintf(soak_socket, sizeof(soak_socket), "%s/evd.sock", soak_dir);
        snprintf(soak_log, sizeof(soak_log), "%s/evd.log", soak_dir);
        daemon_pid = fork();
        if (daemon_pid < 0)
                return -errno;
        if (daemon_pid == 0) {
                int log = open(soak_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                const char *argv[16];
                size_t n = 0;

                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127);
                if (log >= 0)
                        (void)dup2(log, STDERR_FILENO);
                unsetenv("NOTIFY_SOCKET");
                unsetenv("LISTEN_FDS");
                unsetenv("LISTEN_PID");
                argv[n++] = arg_evd;
                argv[n++] = "--socket";
                argv[n++] = soak_socket;
                argv[n++] = "--log-level";
                argv[n++] = "notice";
                argv[n++] = "--max-clients-per-uid=4096";
                if (arg_backend) {
                        argv[n++] = "--backend";
                        argv[n++] = arg_backend;
                }
                argv[n] = NULL;
                execv(arg_evd, (char *const *)argv);
                _exit(127);
        }
        deadline = now_ms() + 5000;
        for (;;) {
                int fd = connect_daemon(), status;

                if (fd >= 0) {
                        close(fd);
                        return 0;
                }
                if (!daemon_alive(&status) || now_ms() > deadline)
                        return -ECHILD;
                (void)usleep(5000);
        }
}

static json_t *ctl_call(int ctl, long long *next_id, const char *method, const char *params) {
        char text[256];
        long long id = ++*next_id;
        int ret;

        snprintf(text, sizeof(text), "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"%s\"%s%s}", id,
                 method, params ? ",\"params\":" : "", params ? params : "");
        return request(ctl, text, NULL, 0, id, NULL, NULL, &ret);
}

static long long status_member(json_t *status, const char *key) {
        return json_integer_value(json_object_get(json_object_get(status, "result"), key));
}

static pid_t spawn_worker(int report, unsigned seed) {
        pid_t pid = fork();

        if (pid == 0)
                worker_run(report, seed);
        return pid;
}

static int cmp_long(const void *a, const void *b) {
        long x = *(const long *)a, y = *(const long *)b;

        return (x > y) - (x < y);
}

static long median_rss(const Sample *s, size_t from, size_t to) {
        long *v;
        long m;

        if (to <= from)
                return -1;
        v = malloc((to - from) * sizeof(long));
        if (!v)
                return -1;
        for (size_t i = from; i < to; i++)
                v[i - from] = s[i].rss_kib;
        qsort(v, to - from, sizeof(long), cmp_long);
        m = v[(to - from) / 2];
        free(v);
        return m;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        (void)remove(path);
        return 0;
}

static void usage(void) {
        printf("Usage: soak [--evd PATH] [--seconds N] [--workers N] [--backend io_uring|epoll]\n"
               "            [--pace-us N] [--rss-slack KIB] [--kill-every N] [--with-fd-cycles]\n"
               "            [--keep]\n"
               "Mixed load against an evd it starts; fails (exit 1) on fd or RSS growth.\n"
               "The daemon: $EVD_SOAK_DAEMON, else --evd, else %s.\n",
               EVD_SOAK_DAEMON);
}

static int parse_argv(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        usage();
                        return 0;
                }
                if (strcmp(a, "--keep") == 0) {
                        arg_keep = true;
                        continue;
                }
                if (strcmp(a, "--with-fd-cycles") == 0) {
                        arg_fd_cycles = true;
                        continue;
                }
                if (!v) {
                        fprintf(stderr, "soak: %s needs a value (see --help)\n", a);
                        return -EINVAL;
                }
                i++;
                if (strcmp(a, "--evd") == 0)
                        arg_evd = v;
                else if (strcmp(a, "--backend") == 0)
                        arg_backend = v;
                else if (strcmp(a, "--seconds") == 0)
                        arg_seconds = (unsigned)strtoul(v, NULL, 10);
                else if (strcmp(a, "--workers") == 0)
                        arg_workers = (unsigned)strtoul(v, NULL, 10);
                else if (strcmp(a, "--pace-us") == 0)
                        arg_pace_us = (unsigned)strtoul(v, NULL, 10);
                else if (strcmp(a, "--rss-slack") == 0)
                        arg_rss_slack_kib = strtol(v, NULL, 10);
                else if (strcmp(a, "--kill-every") == 0)
                        arg_kill_every = (unsigned)strtoul(v, NULL, 10);
                else {
                        fprintf(stderr, "soak: unknown option %s (see --help)\n", a);
                        return -EINVAL;
                }
        }
        if (arg_workers < 1 || arg_workers > MAX_WORKERS || arg_seconds < 3 || arg_kill_every < 1) {
                fprintf(stderr, "soak: --workers 1..%d, --seconds >= 3, --kill-every >= 1\n",
                        MAX_WORKERS);
                return -EINVAL;
        }
        return 1;
}

int main(int argc, char **argv) {
        pid_t workers[MAX_WORKERS];
        Sample *samples;
        size_t n_samples = 0;
        long long next_id = 0, t0, max_ping_ms = 0, kills = 0;
        unsigned errors = 0, seed = (unsigned)time(NULL);
        const char *fail = NULL;
        int report[2], ctl, fd_start, fd_end = -1, status = 0, r;
        long rss_start, rss_end = -1, mid = -1, last = -1;
        json_t *st;
        char why[256] = "";

        setvbuf(stdout, NULL, _IOLBF, 0);
        (void)signal(SIGPIPE, SIG_IGN);
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (getenv("EVD_SOAK_DAEMON") && *getenv("EVD_SOAK_DAEMON"))
                arg_evd = getenv("EVD_SOAK_DAEMON");
        if (!arg_evd)
                arg_evd = EVD_SOAK_DAEMON;
        if (getenv("EVD_UNDER_VALGRIND") && strcmp(getenv("EVD_UNDER_VALGRIND"), "1") == 0) {
                arg_workers = arg_workers > 2 ? 2 : arg_workers;
                arg_pace_us = arg_pace_us < 2000 ? 2000 : arg_pace_us;
        }
        samples = calloc(arg_seconds + 1, sizeof(Sample));
        if (!samples || pipe2(report, O_CLOEXEC | O_NONBLOCK) < 0)
                return 2;

        r = start_daemon();
        if (r < 0) {
                fprintf(stderr, "soak: cannot start %s (%s); see %s\n", arg_evd, strerror(-r),
                        soak_log);
                return 1;
        }
        ctl = connect_daemon();
        if (ctl < 0) {
                fprintf(stderr, "soak: cannot connect: %s\n", strerror(-ctl));
                return 1;
        }
        /* The engine opens a wall-clock timerfd at the first `at` timer and keeps it: count it
         * in the start. Then wait for the start-up probe to be gone. */
        st = ctl_call(ctl, &next_id, "timer", "{\"at\":2000000000}");
        if (st) {
                char p[64];

                snprintf(p, sizeof(p), "{\"timer\":%lld}",
                         (long long)json_integer_value(
                                 json_object_get(json_object_get(st, "result"), "timer")));
                json_decref(ctl_call(ctl, &next_id, "cancel", p));
        }
        json_decref(st);
        for (int i = 0; i < 100; i++) {
                st = ctl_call(ctl, &next_id, "status", NULL);
                r = st ? (int)status_member(st, "clients") : -1;
                json_decref(st);
                if (r == 1)
                        break;
                (void)usleep(10000);
        }
        fd_start = daemon_fd_count();
        rss_start = daemon_rss_kib();
        printf("soak: evd %s (pid %d), %u workers, %u s, pace %u us, seed %u; start: fds=%d "
               "rss_kib=%ld\n",
               arg_evd, (int)daemon_pid, arg_workers, arg_seconds, arg_pace_us, seed, fd_start,
               rss_start);

        for (unsigned i = 0; i < arg_workers; i++)
                workers[i] = spawn_worker(report[1], seed + i);
        t0 = now_ms();
        for (unsigned sec = 1; sec <= arg_seconds && !fail; sec++) {
                long long t_ping, ping_ms;
                char buf[256];
                ssize_t n;

                while (now_ms() < t0 + (long long)sec * 1000)
                        (void)usleep(10000);
                while ((n = read(report[0], buf, sizeof(buf))) > 0)
                        errors += (unsigned)n;
                if (!daemon_alive(&status)) {
                        fail = "the daemon died";
                        break;
                }
                if (sec % arg_kill_every == 0) {
                        unsigned k = (unsigned)rand_r(&seed) % arg_workers;

                        (void)kill(workers[k], SIGKILL);
                        (void)waitpid(workers[k], NULL, 0);
                        workers[k] = spawn_worker(report[1], seed + sec);
                        kills++;
                }
                t_ping = now_ms();
                st = ctl_call(ctl, &next_id, "status", NULL);
                ping_ms = now_ms() - t_ping;
                if (!st || !json_object_get(st, "result")) {
                        fail = "the daemon did not answer the control connection within 5 s";
                        json_decref(st);
                        break;
                }
                max_ping_ms = ping_ms > max_ping_ms ? ping_ms : max_ping_ms;
                samples[n_samples].fds = daemon_fd_count();
                samples[n_samples].rss_kib = daemon_rss_kib();
                printf("t=%3u fds=%5d rss_kib=%6ld clients=%4lld watches=%5lld timers=%5lld "
                       "notifications=%lld status_ms=%lld errors=%u\n",
                       sec, samples[n_samples].fds, samples[n_samples].rss_kib,
                       status_member(st, "clients"), status_member(st, "watches"),
                       status_member(st, "timers"), status_member(st, "notifications"), ping_ms,
                       errors);
                n_samples++;
                json_decref(st);
        }

        /* Everyone leaves; the daemon must drop them all. */
        for (unsigned i = 0; i < arg_workers; i++) {
                (void)kill(workers[i], SIGKILL);
                (void)waitpid(workers[i], NULL, 0);
        }
        {
                char buf[256];
                ssize_t n;

                while ((n = read(report[0], buf, sizeof(buf))) > 0)
                        errors += (unsigned)n;
        }
        if (!fail) {
                long long deadline = now_ms() + 10000;

                for (;;) {
                        st = ctl_call(ctl, &next_id, "status", NULL);
                        if (!st) {
                                fail = "the daemon did not answer after the load";
                                break;
                        }
                        r = status_member(st, "clients") == 1 &&
                            status_member(st, "watches") == 0 && status_member(st, "timers") == 0;
                        json_decref(st);
                        if (r && daemon_fd_count() <= fd_start)
                                break;
                        if (now_ms() > deadline)
                                break;
                        (void)usleep(20000);
                }
                (void)usleep(500000); /* let the allocator settle */
                fd_end = daemon_fd_count();
                rss_end = daemon_rss_kib();
                mid = median_rss(samples, n_samples / 3, 2 * n_samples / 3);
                last = median_rss(samples, 2 * n_samples / 3, n_samples);
                printf("soak: end: fds=%d (start %d) rss_kib=%ld (start %ld, median of the middle "
                       "third "
                       "%ld, of the last third %ld); %lld worker kills; slowest status %lld ms; "
                       "%u worker errors\n",
                       fd_end, fd_start, rss_end, rss_start, mid, last, kills, max_ping_ms, errors);
                if (fail) {
                        /* set above */
                } else if (fd_end > fd_start) {
                        snprintf(why, sizeof(why), "fd growth: %d fds at the end, %d at the start",
                                 fd_end, fd_start);
                        fail = why;
                } else if (errors > 0) {
                        snprintf(why, sizeof(why), "%u worker errors (see stderr)", errors);
                        fail = why;
                } else if (!UNDER_ASAN && rss_end > mid + arg_rss_slack_kib) {
                        snprintf(why, sizeof(why),
                                 "RSS growth: %ld KiB at the end, median %ld KiB mid-run", rss_end,
                                 mid);
                        fail = why;
                } else if (!UNDER_ASAN && last > mid + arg_rss_slack_kib) {
                        snprintf(why, sizeof(why),
                                 "RSS growth under load: median %ld KiB in the last third, "
                                 "%ld KiB in the middle third",
                                 last, mid);
                        fail = why;
                }
                if (UNDER_ASAN)
                        printf("soak: RSS not judged under AddressSanitizer (its quarantine holds "
                               "freed memory)\n");
        }
        close(ctl);
        if (daemon_pid > 0) {
                long long deadline = now_ms() + 10000;

                (void)kill(daemon_pid, SIGTERM);
                while (waitpid(daemon_pid, &status, WNOHANG) == 0 && now_ms() < deadline)
                        (void)usleep(10000);
                if (now_ms() >= deadline) {
                        (void)kill(daemon_pid, SIGKILL);
                        (void)waitpid(daemon_pid, &status, 0);
                        if (!fail)
                                fail = "the daemon did not exit within 10 s of SIGTERM";
                } else if (!fail && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                        snprintf(why, sizeof(why), "the daemon exited with status %d on SIGTERM",
                                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
                        fail = why;
                }
        } else if (!fail) {
                fail = "the daemon died";
        }
        close(report[0]);
        close(report[1]);
        free(samples);
        if (fail) {
                printf("soak: FAIL: %s (daemon log: %s)\n", fail, soak_log);
                return 1;
        }
        printf("soak: PASS\n");
        if (!arg_keep)
                (void)nftw(soak_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}
