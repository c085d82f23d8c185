/*
 * evd-bench-throughput.c - scenario 2: notifications per second with client processes
 * in a closed loop, and the CPU the daemon spends per notification.
 */

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evd-bench.h"
#include "macro.h"

/* ---- 2. throughput ---------------------------------------------------------------- */

/*
 * C client processes with W watches each (edge), on W/K pipes: each pipe is watched K
 * times (K duplicates of its read end, K watches: what the daemon does is the same as for
 * K pipes, one wakeup and one notification per watch per write). Closed loop: a pipe
 * holds one token; when all K callbacks of a pipe ran, the last one drains it and writes
 * the next byte, so every watch always has one wakeup in flight and the daemon never runs
 * out of work while the clients keep up. K > 1 shares the client's read() + write() among
 * K notifications: on a small machine the load generator, not the daemon, is otherwise
 * the bottleneck. Counted: callbacks (one per notification), the daemon's CPU
 * (utime+stime from /proc/PID/stat) and the clients' (getrusage).
 */

enum { TP_SETUP, TP_RUN, TP_MEASURE, TP_END, TP_STOP };

typedef struct TpSlot {
        atomic_int state; /* TP_* the client has reached */
        uint64_t t0, t1, n0, n1, cpu0, cpu1;
} TpSlot;

typedef struct TpShared {
        atomic_int phase;
        TpSlot slot[];
} TpShared;

typedef struct TpPipe {
        int rfd, wfd;
        unsigned waiting; /* callbacks still due for the byte in the pipe */
        unsigned fanout;
        uint64_t *count;
} TpPipe;

static int tp_ready(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        TpPipe *p = userdata;
        char buf[256];

        (*p->count)++;
        if (--p->waiting > 0)
                return 0;
        p->waiting = p->fanout;
        (void)read(p->rfd, buf, sizeof(buf));
        if (write(p->wfd, "x", 1) != 1 && errno != EAGAIN)
                die_errno("throughput: write");
        return 0;
}

static void tp_snapshot(TpSlot *slot, int state, uint64_t count) {
        uint64_t t = now_ns(), cpu = cpu_ns_self();

        if (state == TP_MEASURE)
                slot->t0 = t, slot->n0 = count, slot->cpu0 = cpu;
        else
                slot->t1 = t, slot->n1 = count, slot->cpu1 = cpu;
        atomic_store(&slot->state, state);
}

static void tp_client(const BenchDaemon *d, TpShared *sh, TpSlot *slot, int cpu) {
        unsigned np = arg_watches / arg_fanout;
        TpPipe *pipes = calloc(np, sizeof(*pipes));
        Done done = {.what = "throughput: watch"};
        struct evd_client *c;
        uint64_t count = 0;
        int ph;

        if (!pipes)
                die("out of memory");
        pin_self(cpu);
        c = client_connect(d->socket);
        for (unsigned i = 0; i < np; i++) {
                int fds[2];

                if (pipe_nb(fds) < 0)
                        die_errno("pipe2");
                pipes[i] = (TpPipe){.rfd = fds[0],
                                    .wfd = fds[1],
                                    .waiting = arg_fanout,
                                    .fanout = arg_fanout,
                                    .count = &count};
                for (unsigned k = 0; k < arg_fanout; k++) {
                        int r = evd_watch_add_async(c, fds[0], EVD_IN, EVD_EDGE, tp_ready,
                                                    &pipes[i], done_count, &done, NULL);

                        if (r < 0)
                                die("throughput: watch: %s", evd_strerror(r));
                }
        }
        client_pump_until(c, &done.n, np * arg_fanout, done.what);
        atomic_store(&slot->state, TP_RUN);
        while (atomic_load(&sh->phase) < TP_RUN)
                sleep_ns(1000000);
        for (unsigned i = 0; i < np; i++)
                if (write(pipes[i].wfd, "x", 1) != 1)
                        die_errno("throughput: write");
        while ((ph = atomic_load(&sh->phase)) != TP_STOP) {
                if (ph >= TP_MEASURE && atomic_load(&slot->state) < TP_MEASURE)
                        tp_snapshot(slot, TP_MEASURE, count);
                if (ph >= TP_END && atomic_load(&slot->state) < TP_END)
                        tp_snapshot(slot, TP_END, count);
                client_pump(c, 10);
        }
        (void)evd_client_free(c);
        _exit(0);
}

#define TP_BLOCKS 4 /* per backend, alternating ABBA BAAB */

typedef struct TpResult {
        double block_rate[TP_BLOCKS];
        unsigned n_blocks;
        double seconds;       /* measured, summed over blocks */
        double notifications; /* callbacks run */
        double rate_sum;      /* per block: rate x seconds, for the time-weighted mean rate */
        uint64_t evd_user_ns, evd_sys_ns, client_ns;
        DaemonStats delta; /* summed differences of the daemon's counters */
        HistQ internal;
} TpResult;

static void tp_wait_state(TpShared *sh, unsigned n, int state) {
        uint64_t deadline = now_ns() + STEP_TIMEOUT_MS * 1000000ull;

        for (unsigned i = 0; i < n; i++)
                while (atomic_load(&sh->slot[i].state) < state) {
                        if (now_ns() > deadline)
                                die("throughput: client %u stuck before phase %d", i, state);
                        sleep_ns(1000000);
                }
}

/* What the parent saw of the daemon across one block's measured window. */
typedef struct TpWindow {
        uint64_t t0, t1, user0, sys0, user1, sys1;
        DaemonStats a, b;
} TpWindow;

static void tp_accumulate(TpResult *res, const TpShared *sh, const TpWindow *w) {
        double secs = (double)(w->t1 - w->t0) / 1e9;
        HistQ q = hist_between(&w->a, &w->b);

        res->seconds += secs;
        res->evd_user_ns += w->user1 - w->user0;
        res->evd_sys_ns += w->sys1 - w->sys0;
        res->block_rate[res->n_blocks] = 0;
        for (unsigned i = 0; i < arg_clients; i++) {
                const TpSlot *s = &sh->slot[i];
                /* Each client's count over its own window (it saw the phases a little
                 * after the parent set them), weighted by the parent's. */
                double rate = (double)(s->n1 - s->n0) / ((double)(s->t1 - s->t0) / 1e9);

                res->notifications += (double)(s->n1 - s->n0);
                res->rate_sum += rate * secs;
                res->block_rate[res->n_blocks] += rate;
                res->client_ns += s->cpu1 - s->cpu0;
        }
        res->n_blocks++;
#define ACC(f) res->delta.f += w->b.f - w->a.f
        ACC(notifications);
        ACC(packets_out);
        ACC(coalesced);
        ACC(iterations);
        ACC(events);
        ACC(syscalls);
        ACC(submissions);
#undef ACC
        /* Blocks are alike: keep the worse of their percentiles. */
        res->internal.count += q.count;
        res->internal.p50_le = MAX(res->internal.p50_le, q.p50_le);
        res->internal.p99_le = MAX(res->internal.p99_le, q.p99_le);
}

static void tp_block(BenchDaemon *d, double seconds, TpResult *res) {
        size_t size = sizeof(TpShared) + arg_clients * sizeof(TpSlot);
        TpShared *sh = shm_new(size);
        int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
        int evd_cpu = ncpu > 1 && arg_tp_split ? ncpu - 1 : -1;
        pid_t pids[arg_clients];
        TpWindow w;

        pin_process(d->pid, evd_cpu);
        for (unsigned i = 0; i < arg_clients; i++) {
                pids[i] = child_fork();
                if (pids[i] == 0)
                        tp_client(d, sh, &sh->slot[i],
                                  evd_cpu >= 0 ? (int)(i % (unsigned)(ncpu - 1)) : -1);
        }
        tp_wait_state(sh, arg_clients, TP_RUN);
        atomic_store(&sh->phase, TP_RUN);
        sleep_ns(200000000); /* warm-up: the loop reaches its steady state */
        daemon_stats(d, &w.a);
        proc_cpu_ticks(d->pid, &w.user0, &w.sys0);
        w.t0 = now_ns();
        atomic_store(&sh->phase, TP_MEASURE);
        sleep_ns((uint64_t)(seconds * 1e9));
        atomic_store(&sh->phase, TP_END);
        w.t1 = now_ns();
        proc_cpu_ticks(d->pid, &w.user1, &w.sys1);
        daemon_stats(d, &w.b);
        tp_wait_state(sh, arg_clients, TP_END);
        atomic_store(&sh->phase, TP_STOP);
        for (unsigned i = 0; i < arg_clients; i++)
                child_wait(pids[i], "throughput client");
        pin_process(d->pid, -1);
        tp_accumulate(res, sh, &w);
        shm_free(sh, size);
}

static double tp_rate(const TpResult *r) {
        return r->seconds > 0 ? r->rate_sum / r->seconds : 0;
}

static json_t *tp_json(const TpResult *r) {
        double n = r->notifications, evd_ns = (double)(r->evd_user_ns + r->evd_sys_ns);
        const DaemonStats *st = &r->delta;
        json_t *j = json_object(), *blocks = json_array();

        for (unsigned k = 0; k < r->n_blocks; k++)
                json_array_append_new(blocks, json_real(r->block_rate[k]));
        jreal(j, "seconds", r->seconds);
        jreal(j, "notifications", n);
        jreal(j, "notifications_per_s", tp_rate(r));
        json_object_set_new(j, "block_rates_per_s", blocks);
        jbool(j, "target_met", tp_rate(r) >= 300000);
        jreal(j, "evd_cpu_fraction", evd_ns / (r->seconds * 1e9));
        jreal(j, "evd_us_per_notification", evd_ns / n / 1e3);
        jreal(j, "evd_user_us_per_notification", (double)r->evd_user_ns / n / 1e3);
        jreal(j, "evd_sys_us_per_notification", (double)r->evd_sys_ns / n / 1e3);
        jreal(j, "evd_capacity_per_s", n / (evd_ns / 1e9));
        jreal(j, "client_us_per_notification", (double)r->client_ns / n / 1e3);
        jreal(j, "notifications_per_packet",
              st->packets_out ? (double)st->notifications / (double)st->packets_out : 0);
        jreal(j, "evd_syscalls_per_notification", (double)st->syscalls / n);
        jreal(j, "evd_iterations_per_notification", (double)st->iterations / n);
        jint(j, "evd_notifications", st->notifications);
        jint(j, "evd_packets_out", st->packets_out);
        jint(j, "evd_coalesced", st->coalesced);
        jint(j, "evd_iterations", st->iterations);
        jint(j, "evd_syscalls", st->syscalls);
        jint(j, "evd_events", st->events);
        json_object_set_new(j, "evd_internal", histq_json(&r->internal));
        return j;
}

static void tp_print_row(const char *backend, const TpResult *r) {
        double n = r->notifications, rate = tp_rate(r);
        double evd_ns = (double)(r->evd_user_ns + r->evd_sys_ns);
        double lo = r->block_rate[0], hi = r->block_rate[0];
        char split[32], range[32];

        for (unsigned k = 1; k < r->n_blocks; k++)
                lo = MIN(lo, r->block_rate[k]), hi = MAX(hi, r->block_rate[k]);
        snprintf(split, sizeof(split), "%.2f/%.2f", (double)r->evd_user_ns / n / 1e3,
                 (double)r->evd_sys_ns / n / 1e3);
        snprintf(range, sizeof(range), "%.0f-%.0f", lo / 1e3, hi / 1e3);
        printf("   %-9s %9.0f %9s %6s %7.0f%% %8.2f %9s %11.0f %9.2f %9.1f %8.3f %8.3f  "
               "<=%g/<=%g\n",
               backend, rate, range, verdict(rate >= 300000), evd_ns / (r->seconds * 1e9) * 100,
               evd_ns / n / 1e3, split, n / (evd_ns / 1e9), (double)r->client_ns / n / 1e3,
               r->delta.packets_out ? (double)r->delta.notifications / (double)r->delta.packets_out
                                    : 0,
               (double)r->delta.syscalls / n, (double)r->delta.iterations / n, r->internal.p50_le,
               r->internal.p99_le);
}

/* io_uring / epoll, by the rate and by the daemon's CPU per notification. */
static void tp_ratio(const TpResult *res, json_t *j) {
        double ratio, cap[2];

        if (arg_n_backends != 2 || strcmp(arg_backends[0], "io_uring") != 0 ||
            tp_rate(&res[1]) <= 0)
                return;
        ratio = tp_rate(&res[0]) / tp_rate(&res[1]);
        for (int b = 0; b < 2; b++)
                cap[b] = res[b].notifications / (double)(res[b].evd_user_ns + res[b].evd_sys_ns);
        printf("   %s/%s: %.2fx notif/s (target >= 1.2x: %s), %.2fx capacity\n", arg_backends[0],
               arg_backends[1], ratio, verdict(ratio >= 1.2), cap[0] / cap[1]);
        summary_add("throughput io_uring/epoll >= 1.2x", SIZE_MAX, ratio >= 1.2, "%.2fx", ratio);
        jreal(j, "ratio", ratio);
        jbool(j, "ratio_target_met", ratio >= 1.2);
        jreal(j, "capacity_ratio", cap[0] / cap[1]);
}

json_t *run_throughput(BenchDaemon *daemons) {
        TpResult res[MAX_BACKENDS] = {0};
        json_t *j = json_object();

        /* ABBA BAAB: every backend runs at every position equally often. */
        for (int k = 0; k < TP_BLOCKS; k++)
                for (size_t i = 0; i < arg_n_backends; i++) {
                        bool reverse = (k == 1 || k == 2);
                        size_t b = reverse ? arg_n_backends - 1 - i : i;

                        tp_block(&daemons[b], arg_duration / TP_BLOCKS, &res[b]);
                }

        printf("\n2. Throughput: %u clients x %u edge watches (%u pipes x %u watches each),\n"
               "   closed loop: the last callback of a pipe drains it and writes the next byte;\n"
               "   %.1f s per backend in %d alternating blocks; %s. Target >= 300,000/s.\n",
               arg_clients, arg_watches, arg_watches / arg_fanout, arg_fanout, arg_duration,
               TP_BLOCKS,
               arg_tp_split ? "evd alone on the last CPU, the clients on the others"
                            : "nothing pinned");
        printf("   %-9s %9s %9s %6s %8s %8s %9s %11s %9s %9s %8s %8s  %s\n", "", "notif/s",
               "blocks k", "target", "evd CPU", "evd us/n", "usr/sys", "capacity/s", "client us",
               "notif/pkt", "sysc/n", "iter/n", "evd-internal p50/p99");
        for (size_t b = 0; b < arg_n_backends; b++) {
                tp_print_row(arg_backends[b], &res[b]);
                summary_add("notifications/s >= 300,000", b, tp_rate(&res[b]) >= 300000, "%.0f",
                            tp_rate(&res[b]));
                json_object_set_new(j, arg_backends[b], tp_json(&res[b]));
        }
        tp_ratio(res, j);
        printf("   blocks k: the slowest and fastest block, thousands per second (wide: noisy).\n"
               "   evd us/n: daemon CPU per notification (utime+stime, /proc/PID/stat; the\n"
               "   user/sys split is by ticks); capacity/s: 1 / that, what evd could reach with\n"
               "   a whole CPU if the clients kept up; client us: the clients' CPU per\n"
               "   notification (getrusage: libevd, pipe read+write); sysc/n, iter/n: the\n"
               "   engine's syscalls and loop iterations per notification (`stats`).\n");
        jint(j, "clients", arg_clients);
        jint(j, "watches_per_client", arg_watches);
        jint(j, "watches_per_pipe", arg_fanout);
        jbool(j, "evd_on_own_cpu", arg_tp_split);
        return j;
}
