/*
 * evd-bench-latency.c - scenario 1: notification latency, evd against the kernel floor
 * and a minimal relay, in alternating blocks per backend and pinning.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evd-bench.h"
#include "macro.h"

/* ---- 1. latency ------------------------------------------------------------------- */

/*
 * One sample at a time. evd: a writer process, woken by a byte on the "go" pipe, takes
 * CLOCK_MONOTONIC and writes it (8 bytes) into the data pipe; the client, which watches
 * the data pipe through evd (edge), takes the clock on entering its callback and drains
 * the pipe. It sends the next "go" right before it blocks in poll(), so each sample
 * starts from a sleeping daemon and a sleeping client.
 * Floor: process A takes the clock, sends it on a SOCK_SEQPACKET socketpair, B echoes it,
 * A takes the clock again: two wake-ups, like write -> evd -> client.
 * Relay: the evd set-up with evd replaced by the least a readiness daemon can do
 * (epoll_wait() on the pipe, edge, then send() of a notification-sized packet; the client
 * blocks in recv()): what the three-process topology itself costs, so that evd - relay is
 * what evd and libevd add.
 */

enum { TARGET_FLOOR, TARGET_RELAY, _TARGET_FIXED }; /* then one per backend */

#define MAX_TARGETS (_TARGET_FIXED + MAX_BACKENDS)
#define NOTIFICATION_SIZE 89 /* bytes of a `ready` as evd sends it, for the relay */

/* CPU time of the processes on the path, summed over blocks: where a sample's time goes.
 * server: the daemon (schedstat), the relay or the echo process; client: the process that
 * takes the second clock; writer: the one that takes the first (evd and relay only). */
typedef struct LatCpu {
        uint64_t server_ns, client_ns, writer_ns, samples;
} LatCpu;

static double per_sample_us(uint64_t ns, const LatCpu *c) {
        return c->samples ? (double)ns / (double)c->samples / 1e3 : 0;
}

typedef struct LatClient {
        int data_fd;
        int64_t *out;
        size_t i, n;
        bool fired;
} LatClient;

/* The data pipe holds the writer's clock; @t1 is when the client got the news. */
static void lat_record(LatClient *lc, uint64_t t1) {
        char buf[64];
        ssize_t k = read(lc->data_fd, buf, sizeof(buf));
        uint64_t t0;

        if (k != sizeof(t0))
                die("latency: read %zd bytes from the data pipe, expected 8", k);
        memcpy(&t0, buf, sizeof(t0));
        if (lc->i >= LAT_WARMUP)
                lc->out[lc->i - LAT_WARMUP] = (int64_t)(t1 - t0);
        lc->i++;
}

static int lat_ready(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        LatClient *lc = userdata;

        lat_record(lc, now_ns());
        lc->fired = true;
        return 0;
}

static void lat_writer(int cpu, int go_fd, int data_fd) {
        pin_self(cpu);
        for (;;) {
                uint64_t t0;
                char g;

                if (read(go_fd, &g, 1) != 1 || g == 'q')
                        _exit(0);
                t0 = now_ns();
                if (write(data_fd, &t0, sizeof(t0)) != sizeof(t0))
                        die_errno("latency writer: write");
        }
}

static void lat_go(int go_fd) {
        if (write(go_fd, "g", 1) != 1)
                die_errno("latency: write go");
}

static void lat_client_evd(const BenchDaemon *d, int cpu, int go_fd, int data_fd, int64_t *out,
                           size_t n) {
        LatClient lc = {.data_fd = data_fd, .out = out, .n = n};
        struct evd_client *c;
        int r;

        pin_self(cpu);
        c = client_connect(d->socket);
        r = evd_watch_add(c, data_fd, EVD_IN, EVD_EDGE, lat_ready, &lc, STEP_TIMEOUT_MS, NULL);
        if (r < 0)
                die("latency: watch: %s", evd_strerror(r));
        while (lc.i < n + LAT_WARMUP) {
                uint64_t deadline = now_ns() + 5 * NSEC_PER_SEC;

                lc.fired = false;
                lat_go(go_fd);
                while (!lc.fired) {
                        if (now_ns() > deadline)
                                die("latency: no notification within 5 s (sample %zu)", lc.i);
                        client_pump(c, 1000);
                }
        }
        (void)write(go_fd, "q", 1);
        (void)evd_client_free(c);
        _exit(0);
}

static void lat_client_relay(int cpu, int go_fd, int data_fd, int sock, int64_t *out, size_t n) {
        LatClient lc = {.data_fd = data_fd, .out = out, .n = n};
        char buf[256];

        pin_self(cpu);
        while (lc.i < n + LAT_WARMUP) {
                lat_go(go_fd);
                if (recv(sock, buf, sizeof(buf), 0) <= 0)
                        die_errno("relay client: recv");
                lat_record(&lc, now_ns());
        }
        (void)write(go_fd, "q", 1);
        _exit(0);
}

/* Exits when the writer is gone (the pipe hangs up). */
static void lat_relay(int cpu, int data_fd, int sock) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
        char msg[NOTIFICATION_SIZE];
        int ep;

        pin_self(cpu);
        memset(msg, ' ', sizeof(msg));
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, data_fd, &ev) < 0)
                die_errno("relay: epoll");
        for (;;) {
                if (epoll_wait(ep, &ev, 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        die_errno("relay: epoll_wait");
                }
                if (ev.events & (EPOLLHUP | EPOLLERR))
                        _exit(0);
                if (send(sock, msg, sizeof(msg), 0) != sizeof(msg))
                        die_errno("relay: send");
        }
}

/* @d NULL: the relay. */
static void lat_block_3proc(BenchDaemon *d, int cpu, int64_t *out, size_t n, LatCpu *acc) {
        int data[2], go[2], sv[2] = {-1, -1};
        pid_t writer, relay = 0, client;
        uint64_t evd0 = d ? proc_runtime_ns(d->pid) : 0;

        /* The read end is nonblocking: a spurious wakeup must never block the client. */
        if (pipe2(data, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0 ||
            fcntl(data[0], F_SETFL, O_NONBLOCK) < 0)
                die_errno("pipe2");
        if (!d && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                die_errno("socketpair");
        if (d)
                pin_process(d->pid, cpu);
        writer = child_fork();
        if (writer == 0)
                lat_writer(cpu, go[0], data[1]);
        if (!d) {
                relay = child_fork();
                if (relay == 0) {
                        close(data[1]);
                        lat_relay(cpu, data[0], sv[0]);
                }
        }
        client = child_fork();
        if (client == 0) {
                close(data[1]);
                if (d)
                        lat_client_evd(d, cpu, go[1], data[0], out, n);
                lat_client_relay(cpu, go[1], data[0], sv[1], out, n);
        }
        close(data[0]);
        close(data[1]);
        close(go[0]);
        close(go[1]);
        (void)safe_close(sv[0]);
        (void)safe_close(sv[1]);
        acc->client_ns += child_wait_cpu(client, "latency client");
        acc->writer_ns += child_wait_cpu(writer, "latency writer");
        if (relay)
                acc->server_ns += child_wait_cpu(relay, "relay");
        else
                acc->server_ns += proc_runtime_ns(d->pid) - evd0;
        acc->samples += n + LAT_WARMUP;
}

static void lat_block_floor(int cpu, int64_t *out, size_t n, LatCpu *acc) {
        int sv[2];
        pid_t echo, meas;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                die_errno("socketpair");
        echo = child_fork();
        if (echo == 0) {
                char buf[64];
                ssize_t k;

                close(sv[0]);
                pin_self(cpu);
                while ((k = recv(sv[1], buf, sizeof(buf), 0)) > 0)
                        if (send(sv[1], buf, (size_t)k, 0) != k)
                                _exit(1);
                _exit(0);
        }
        meas = child_fork();
        if (meas == 0) {
                close(sv[1]);
                pin_self(cpu);
                for (size_t i = 0; i < n + LAT_WARMUP; i++) {
                        uint64_t t0 = now_ns(), back;

                        if (send(sv[0], &t0, sizeof(t0), 0) != sizeof(t0) ||
                            recv(sv[0], &back, sizeof(back), 0) != sizeof(back))
                                die_errno("ping-pong");
                        if (i >= LAT_WARMUP)
                                out[i - LAT_WARMUP] = (int64_t)(now_ns() - t0);
                }
                _exit(0);
        }
        close(sv[0]);
        close(sv[1]);
        acc->client_ns += child_wait_cpu(meas, "ping-pong");
        acc->server_ns += child_wait_cpu(echo, "ping-pong echo");
        acc->samples += n + LAT_WARMUP;
}

typedef struct LatencyResult {
        Dist d[2][MAX_TARGETS]; /* [pinned, unpinned][floor, relay, backends...] */
        LatCpu cpu[2][MAX_TARGETS];
        HistQ internal[2][MAX_BACKENDS];
} LatencyResult;

static void lat_block(BenchDaemon *daemons, size_t target, int cpu, int64_t *out, size_t n,
                      LatCpu *acc) {
        if (target == TARGET_FLOOR)
                lat_block_floor(cpu, out, n, acc);
        else if (target == TARGET_RELAY)
                lat_block_3proc(NULL, cpu, out, n, acc);
        else
                lat_block_3proc(&daemons[target - _TARGET_FIXED], cpu, out, n, acc);
}

/* Targets take turns in blocks, the first one rotating, so drift in the machine's load
 * is shared out evenly. */
static void lat_pass(BenchDaemon *daemons, int cpu, Dist *ret, LatCpu *ret_cpu,
                     HistQ *ret_internal) {
        size_t nt = _TARGET_FIXED + arg_n_backends,
               per = (arg_samples + arg_rounds - 1) / arg_rounds;
        int64_t *buf = shm_new(per * sizeof(int64_t));
        int64_t *all[MAX_TARGETS];
        size_t have[MAX_TARGETS] = {0};
        DaemonStats s0[MAX_BACKENDS], s1[MAX_BACKENDS];

        for (size_t t = 0; t < nt; t++)
                if (!(all[t] = calloc(per * arg_rounds, sizeof(int64_t))))
                        die("out of memory");
        for (size_t b = 0; b < arg_n_backends; b++)
                daemon_stats(&daemons[b], &s0[b]);
        for (unsigned r = 0; r < arg_rounds; r++)
                for (size_t k = 0; k < nt; k++) {
                        size_t t = (k + r) % nt;

                        lat_block(daemons, t, cpu, buf, per, &ret_cpu[t]);
                        memcpy(all[t] + have[t], buf, per * sizeof(int64_t));
                        have[t] += per;
                }
        for (size_t b = 0; b < arg_n_backends; b++) {
                daemon_stats(&daemons[b], &s1[b]);
                ret_internal[b] = hist_between(&s0[b], &s1[b]);
                pin_process(daemons[b].pid, -1);
        }
        for (size_t t = 0; t < nt; t++) {
                ret[t] = dist_of(all[t], have[t]);
                free(all[t]);
        }
        shm_free(buf, per * sizeof(int64_t));
}

static void lat_print_row(const char *name, const Dist *d, const LatCpu *c, const Dist *floor) {
        printf("   %-18s %6.1f %6.1f %6.1f %6.1f %7.1f %5.1f/%4.1f", name, d->min, d->p50, d->p99,
               d->p999, d->max, per_sample_us(c->server_ns, c), per_sample_us(c->client_ns, c));
        if (d != floor)
                printf("  %8.2fx %8.2fx", d->p50 / floor->p50, d->p99 / floor->p99);
}

static json_t *lat_json(const Dist *d, const LatCpu *c, const Dist *floor) {
        json_t *j = dist_json(d);

        jreal(j, "server_cpu_us_per_sample", per_sample_us(c->server_ns, c));
        jreal(j, "client_cpu_us_per_sample", per_sample_us(c->client_ns, c));
        jreal(j, "writer_cpu_us_per_sample", per_sample_us(c->writer_ns, c));
        json_object_set_new(j, "p50_over_floor", json_real(d->p50 / floor->p50));
        json_object_set_new(j, "p99_over_floor", json_real(d->p99 / floor->p99));
        return j;
}

/* One evd row of pass @p (0 pinned, 1 unpinned): printed, judged, and as JSON. */
static json_t *lat_backend(const LatencyResult *res, int p, size_t b) {
        static const char *const t50[] = {"latency p50 <= 1.3x floor, pinned",
                                          "latency p50 <= 1.3x floor, unpinned"};
        static const char *const t99[] = {"latency p99 <= 1.5x floor, pinned",
                                          "latency p99 <= 1.5x floor, unpinned"};
        const Dist *d = &res->d[p][_TARGET_FIXED + b], *f = &res->d[p][TARGET_FLOOR];
        const LatCpu *c = &res->cpu[p][_TARGET_FIXED + b];
        const HistQ *q = &res->internal[p][b];
        bool m50 = d->p50 <= 1.3 * f->p50, m99 = d->p99 <= 1.5 * f->p99;
        char name[32], tgt[32];
        json_t *jb = lat_json(d, c, f);

        snprintf(name, sizeof(name), "  %s", arg_backends[b]);
        snprintf(tgt, sizeof(tgt), "%s/%s", verdict(m50), verdict(m99));
        lat_print_row(name, d, c, f);
        printf("  %-13s <=%g/<=%g\n", tgt, q->p50_le, q->p99_le);
        summary_add(t50[p], b, m50, "%.2fx", d->p50 / f->p50);
        summary_add(t99[p], b, m99, "%.2fx", d->p99 / f->p99);
        jbool(jb, "p50_target_met", m50);
        jbool(jb, "p99_target_met", m99);
        jreal(jb, "p50_over_relay", d->p50 / res->d[p][TARGET_RELAY].p50);
        json_object_set_new(jb, "evd_internal", histq_json(q));
        return jb;
}

static json_t *lat_print_pass(const LatencyResult *res, int p) {
        const Dist *f = &res->d[p][TARGET_FLOOR];
        json_t *jp = json_object();

        if (p == 0)
                printf("   pinned (everything on CPU %d)\n", arg_cpu);
        else
                printf("   unpinned\n");
        lat_print_row("  floor (ping-pong)", f, &res->cpu[p][TARGET_FLOOR], f);
        printf("\n");
        lat_print_row("  relay (epoll)", &res->d[p][TARGET_RELAY], &res->cpu[p][TARGET_RELAY], f);
        printf("\n");
        json_object_set_new(jp, "floor", lat_json(f, &res->cpu[p][TARGET_FLOOR], f));
        json_object_set_new(jp, "relay",
                            lat_json(&res->d[p][TARGET_RELAY], &res->cpu[p][TARGET_RELAY], f));
        for (size_t b = 0; b < arg_n_backends; b++)
                json_object_set_new(jp, arg_backends[b], lat_backend(res, p, b));
        return jp;
}

json_t *run_latency(BenchDaemon *daemons) {
        unsigned samples = arg_rounds * ((arg_samples + arg_rounds - 1) / arg_rounds);
        LatencyResult res;
        json_t *j = json_object();

        memset(&res, 0, sizeof(res));
        lat_pass(daemons, arg_cpu, res.d[0], res.cpu[0], res.internal[0]);
        lat_pass(daemons, -1, res.d[1], res.cpu[1], res.internal[1]);

        printf("\n1. Latency: write() on a pipe -> the client's callback (edge watch), one\n"
               "   sample at a time; %u samples per row in %u rotated blocks. floor:\n"
               "   SOCK_SEQPACKET ping-pong round trip between two processes; relay: evd's\n"
               "   topology with a minimal epoll relay in its place. Targets: p50 <= 1.3x\n"
               "   floor, p99 <= 1.5x floor, same pinning. Times in us.\n",
               samples, arg_rounds);
        printf("   %-18s %6s %6s %6s %6s %7s %10s  %9s %9s  %-13s %s\n", "", "min", "p50", "p99",
               "p99.9", "max", "cpu srv/cl", "p50/floor", "p99/floor", "target",
               "evd-internal p50/p99");
        json_object_set_new(j, "pinned", lat_print_pass(&res, 0));
        json_object_set_new(j, "unpinned", lat_print_pass(&res, 1));
        printf("   cpu srv/cl: CPU per sample of the middle process (evd, the relay, the echo)\n"
               "   and of the client; evd-internal: the daemon's `stats` latency (event seen ->\n"
               "   handed to the client's socket), upper bounds of power-of-two buckets.\n");
        jint(j, "samples", samples);
        jint(j, "blocks", arg_rounds);
        jint(j, "pinned_cpu", (uint64_t)arg_cpu);
        return j;
}
