/* fairness-load.c - the loads of fairness-load.h: every one runs in a child of its own, so
 * the caller measures while it runs, and reports over a pipe. Children end with _exit()
 * (bench_forked()): the caller's atexit() handlers and stdio buffers stay the caller's. */

#include "fairness-load.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-client.h"

#define MAX_CONNS 4
#define FLOOD_CONNS FAIRNESS_FLOOD_CONNS
#define FLOOD_BATCH 500 /* requests per packet while arming */
#define ARM_TIMEOUT_MS 60000

/* Count replies ("result" or "error") in one packet; notifications carry neither. */
static unsigned replies_in(const char *buf, ssize_t n) {
        unsigned count = 0;

        for (const char *p = buf; (p = memmem(p, (size_t)(buf + n - p), "\"id\":", 5)); p += 5)
                count++;
        return count;
}

/* The N of each @key N in @buf[0..n), appended to @ids[@have..@max). Return: the new count. */
static unsigned ids_after(const char *key, const char *buf, size_t n, uint64_t *ids, unsigned have,
                          unsigned max) {
        size_t key_len = strlen(key);

        for (const char *p = buf; have < max && (p = memmem(p, (size_t)(buf + n - p), key, key_len));) {
                p += key_len;
                ids[have++] = strtoull(p, NULL, 10);
        }
        return have;
}

/* fairness_call_batch(), and when @ids is not NULL the `watch` ids of the replies appended
 * to @ids[*@n_ids..@max) (only replies': a `ready` may come in among them). */
static void call_batch(int fd, const char *buf, size_t len, const int *fds, size_t n_fds,
                       unsigned want, uint64_t *ids, unsigned *n_ids, unsigned max) {
        static char in[65536 + 1];

        bench_send(fd, buf, len, fds, n_fds);
        while (want > 0) {
                ssize_t n = recv(fd, in, sizeof(in) - 1, 0);
                unsigned got;

                if (n <= 0)
                        bench_die("recv (flood setup)");
                in[n] = 0;
                /* A load the daemon refused would measure nothing. */
                if (strstr(in, "\"error\"")) {
                        fprintf(stderr, "%s: error reply: %.200s\n", program_invocation_short_name,
                                in);
                        errno = EPROTO;
                        bench_die("a request of the load was refused");
                }
                if (ids)
                        *n_ids = ids_after("\"result\":{\"watch\":", in, (size_t)n, ids, *n_ids, max);
                got = replies_in(in, n);
                want -= got < want ? got : want;
        }
}

void fairness_call_batch(int fd, const char *buf, size_t len, const int *fds, size_t n_fds,
                         unsigned want) {
        call_batch(fd, buf, len, fds, n_fds, want, NULL, NULL, 0);
}

_Noreturn void fairness_discard(const int *fds, size_t n) {
        static char in[65536];
        struct pollfd pfd[MAX_CONNS];

        if (n > MAX_CONNS) {
                errno = EINVAL;
                bench_die("more than 4 connections to drain");
        }
        for (size_t i = 0; i < n; i++)
                pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        for (;;) {
                if (poll(pfd, (nfds_t)n, -1) < 0 && errno != EINTR)
                        bench_die("poll");
                for (size_t i = 0; i < n; i++)
                        if (pfd[i].revents && recv(pfd[i].fd, in, sizeof(in), MSG_DONTWAIT) == 0)
                                _exit(0);
        }
}

pid_t fairness_spawn(void) {
        pid_t pid = fork();

        if (pid < 0)
                bench_die("fork");
        if (pid == 0) {
                bench_forked();
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        }
        return pid;
}

void fairness_stop(pid_t pid, const char *what) {
        int status;
        pid_t r;

        if (pid <= 0)
                return;
        r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
                fprintf(stderr, "%s: %s ended before it was stopped (%s %d)\n",
                        program_invocation_short_name, what, WIFEXITED(status) ? "exit" : "signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                exit(1);
        }
        if (r < 0)
                bench_die("waitpid");
        if (kill(pid, SIGKILL) < 0)
                bench_die("kill");
        while (waitpid(pid, NULL, 0) < 0)
                if (errno != EINTR)
                        bench_die("waitpid");
}

/* Wait (bounded) for the one byte a child writes on @fd when it is ready. */
static void wait_byte(int fd, const char *what) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n = -1;
        char c;
        int r;

        while ((r = poll(&p, 1, ARM_TIMEOUT_MS)) < 0 && errno == EINTR)
                ;
        if (r > 0 && (n = read(fd, &c, 1)) == 1)
                return;
        if (r == 0)
                errno = ETIMEDOUT;
        else if (n == 0)
                errno = EPIPE; /* the child died first */
        bench_die(what);
}

/* Fork a load. In the parent: its pid, once it wrote the byte that says it is armed
 * (@what if it does not). In the child: 0, and in *@ret_armed the fd to write that byte to. */
static pid_t spawn_load(int *ret_armed, const char *what) {
        int armed[2];
        pid_t pid;

        if (pipe2(armed, O_CLOEXEC) < 0)
                bench_die("pipe");
        pid = fairness_spawn();
        if (pid) {
                close(armed[1]);
                wait_byte(armed[0], what);
                close(armed[0]);
                return pid;
        }
        close(armed[0]);
        *ret_armed = armed[1];
        return 0;
}

pid_t fairness_flood_timers(const char *socket_path) {
        static char buf[65536];
        int fds[FLOOD_CONNS], armed;
        pid_t pid;

        pid = spawn_load(&armed, "timer flood: not armed");
        if (pid)
                return pid;
        for (int c = 0; c < FLOOD_CONNS; c++) {
                fds[c] = bench_connect(socket_path);
                for (int k = 0; k < FAIRNESS_FLOOD_TIMERS; k += FLOOD_BATCH) {
                        size_t len = 0;

                        buf[len++] = '[';
                        for (int i = 0; i < FLOOD_BATCH; i++)
                                len += (size_t)snprintf(
                                        buf + len, sizeof(buf) - len,
                                        "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"timer\","
                                        "\"params\":{\"after\":0.001,\"interval\":0.001}}",
                                        i ? "," : "", k + i);
                        buf[len++] = ']';
                        fairness_call_batch(fds[c], buf, len, NULL, 0, FLOOD_BATCH);
                }
        }
        if (write(armed, "", 1) != 1)
                bench_die("timer flood: report");
        close(armed);
        fairness_discard(fds, FLOOD_CONNS);
}

/* A packet of 32 `watch` requests (ids @first.., fds 0-31 of the packet, events in, @mode)
 * in @buf. Return: its length. */
static size_t watch_batch(char *buf, size_t size, unsigned first, const char *mode) {
        size_t len = 0;

        buf[len++] = '[';
        for (unsigned i = 0; i < 32; i++)
                len += (size_t)snprintf(buf + len, size - len,
                                        "%s{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"watch\","
                                        "\"params\":{\"fd\":%u,\"events\":[\"in\"],\"mode\":\"%s\"}}",
                                        i ? "," : "", first + i, i, mode);
        buf[len++] = ']';
        return len;
}

pid_t fairness_flood_edge(const char *socket_path, unsigned conns, unsigned watches, unsigned fanout) {
        static char buf[65536];
        int fds[MAX_CONNS], armed, *efd;
        unsigned per_conn = watches / fanout;
        pid_t pid;

        if (conns == 0 || conns > MAX_CONNS || watches % 32 || fanout == 0 || 32 % fanout) {
                errno = EINVAL;
                bench_die("edge flood: connections, watches or fanout");
        }
        pid = spawn_load(&armed, "edge flood: not armed");
        if (pid)
                return pid;
        efd = calloc((size_t)conns * per_conn, sizeof(*efd));
        if (!efd)
                bench_die("calloc");
        for (unsigned i = 0; i < conns * per_conn; i++)
                if ((efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
                        bench_die("eventfd");
        for (unsigned c = 0; c < conns; c++) {
                fds[c] = bench_connect(socket_path);
                for (unsigned k = 0; k < watches; k += 32) {
                        int sent[32];

                        for (unsigned i = 0; i < 32; i++)
                                sent[i] = efd[c * per_conn + (k + i) / fanout];
                        fairness_call_batch(fds[c], buf, watch_batch(buf, sizeof(buf), k, "edge"), sent, 32, 32);
                }
        }
        if (fairness_spawn() == 0) {
                uint64_t one = 1;

                for (;;)
                        for (unsigned i = 0; i < conns * per_conn; i++)
                                (void)!write(efd[i], &one, sizeof(one));
        }
        if (write(armed, "", 1) != 1)
                bench_die("edge flood: report");
        close(armed);
        fairness_discard(fds, conns);
}

/* Send @n oneshot re-arms (JSON-RPC notifications: nothing comes back) in one packet. */
static void send_arms(int fd, const uint64_t *ids, unsigned n) {
        static char buf[65536];
        size_t len = 0;

        if (n == 0)
                return;
        buf[len++] = '[';
        for (unsigned i = 0; i < n; i++)
                len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                                        "%s{\"jsonrpc\":\"2.0\",\"method\":\"arm\",\"params\":{\"watch\":%llu}}",
                                        i ? "," : "", (unsigned long long)ids[i]);
        buf[len++] = ']';
        bench_send(fd, buf, len, NULL, 0);
}

pid_t fairness_flood_oneshot(const char *socket_path, unsigned conns, unsigned watches) {
        static char buf[65536], in[65536 + 1];
        static uint64_t ids[FAIRNESS_ONESHOT_MAX];
        struct pollfd pfd[MAX_CONNS];
        int fds[MAX_CONNS], armed;
        pid_t pid;

        if (conns == 0 || conns > MAX_CONNS || watches % 32 || watches > FAIRNESS_ONESHOT_MAX) {
                errno = EINVAL;
                bench_die("oneshot flood: connections or watches");
        }
        pid = spawn_load(&armed, "oneshot flood: not armed");
        if (pid)
                return pid;
        for (unsigned c = 0; c < conns; c++) {
                unsigned n_ids = 0;

                fds[c] = bench_connect(socket_path);
                pfd[c] = (struct pollfd){.fd = fds[c], .events = POLLIN};
                for (unsigned k = 0; k < watches; k += 32) {
                        int sent[32];

                        /* Readable for good: nothing ever reads the count. */
                        for (unsigned i = 0; i < 32; i++)
                                if ((sent[i] = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
                                        bench_die("eventfd");
                        call_batch(fds[c], buf, watch_batch(buf, sizeof(buf), k, "oneshot"), sent, 32, 32,
                                   ids, &n_ids, watches);
                        for (unsigned i = 0; i < 32; i++)
                                close(sent[i]);
                }
                if (n_ids != watches) {
                        errno = EPROTO;
                        bench_die("oneshot flood: a `watch` reply without its id");
                }
                /* The `ready`s that came in among the replies were dropped: arm every
                 * watch (arming an armed one does nothing), so that all of them cycle. */
                send_arms(fds[c], ids, watches);
        }
        if (write(armed, "", 1) != 1)
                bench_die("oneshot flood: report");
        close(armed);
        /* Every watch fired at once (its eventfd is readable); from now on each `ready`
         * that arrives is answered with its `arm`, one packet of arms per packet read. */
        for (;;) {
                if (poll(pfd, conns, -1) < 0 && errno != EINTR)
                        bench_die("poll");
                for (unsigned c = 0; c < conns; c++) {
                        ssize_t n;

                        if (!pfd[c].revents)
                                continue;
                        n = recv(fds[c], in, sizeof(in) - 1, MSG_DONTWAIT);
                        if (n == 0)
                                _exit(0);
                        if (n < 0) {
                                if (errno == EAGAIN || errno == EINTR)
                                        continue;
                                bench_die("oneshot flood: recv");
                        }
                        send_arms(fds[c], ids, ids_after("\"params\":{\"watch\":", in, (size_t)n, ids, 0, FAIRNESS_ONESHOT_MAX));
                }
        }
}

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

static _Noreturn void bystander_run(const char *socket_path, double seconds, int64_t *rtt,
                                    int report) {
        uint64_t end;
        FairnessPings res = {0};
        unsigned n = 0;
        char in[4096], req[128];
        int fd;

        if (setgid(FAIRNESS_BYSTANDER_UID) < 0 || setuid(FAIRNESS_BYSTANDER_UID) < 0)
                bench_die("setuid");
        fd = bench_connect(socket_path);
        end = bench_now_ns() + (uint64_t)(seconds * 1e9);
        while (bench_now_ns() < end && n < FAIRNESS_MAX_PINGS) {
                int len = snprintf(req, sizeof(req),
                                   "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"ping\"}", n);
                uint64_t t0 = bench_now_ns();

                if (send(fd, req, (size_t)len, MSG_NOSIGNAL) < 0 ||
                    recv(fd, in, sizeof(in), 0) <= 0)
                        bench_die("bystander ping");
                rtt[n++] = (int64_t)(bench_now_ns() - t0);
                (void)poll(NULL, 0, 1);
        }
        qsort(rtt, n, sizeof(*rtt), cmp_i64);
        if (n)
                res = (FairnessPings){.p50 = (uint64_t)rtt[n / 2],
                                      .p99 = (uint64_t)rtt[(size_t)((double)n * 0.99)],
                                      .max = (uint64_t)rtt[n - 1],
                                      .n = n};
        if (write(report, &res, sizeof(res)) != (ssize_t)sizeof(res))
                bench_die("bystander: report");
        _exit(0);
}

void fairness_bystander(const char *socket_path, double seconds, int64_t *ret_rtt,
                        FairnessPings *ret) {
        static int64_t own[FAIRNESS_MAX_PINGS];
        FairnessPings res;
        int report[2];
        pid_t pid;

        if (pipe2(report, O_CLOEXEC) < 0)
                bench_die("pipe");
        pid = fairness_spawn();
        if (pid == 0) {
                close(report[0]);
                bystander_run(socket_path, seconds, ret_rtt ? ret_rtt : own, report[1]);
        }
        close(report[1]);
        if (read(report[0], &res, sizeof(res)) != (ssize_t)sizeof(res))
                bench_die("bystander: no report");
        close(report[0]);
        (void)waitpid(pid, NULL, 0);
        *ret = res;
}
