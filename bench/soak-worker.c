/*
 * soak-worker.c - a soak worker: a forked process keeping up to MAX_CONNS connections
 * and doing random actions on them (connect, drop, watch, poke, read, unwatch, timers,
 * batches, garbage, stalls, optionally fd cycles), counting every wrong reply as an error.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd-list.h"
#include "jsonrpc.h"
#include "macro.h"
#include "soak.h"
#include "wire.h"

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

_Noreturn void worker_run(int report, unsigned seed) {
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
