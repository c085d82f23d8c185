/*
 * evd-bench-saturate.c - scenario 10: the daemon, not its clients, as the bottleneck.
 *
 * Scenario 2's clients parse every notification with libevd (about 2 us each), so on a
 * small machine they, not the daemon, set the rate. Here nothing parses the notifications:
 * 4 raw connections of fairness-load.c hold 512 watches each, in one of two loads.
 *
 * edge: edge watches on eventfds, 8 watches on each eventfd (the same file sent 8 times,
 * as scenario 2's 8 watches of one pipe), one writer bumps every eventfd in turn as fast as
 * it can, and the readers drop what arrives unread. A write costs the writer one syscall
 * and the daemon 8 notifications, so the daemon saturates, wakeups it could not keep up
 * with being merged by the kernel. This is the kernel's wakeup path, per poll.
 *
 * oneshot: oneshot watches on eventfds that stay readable; the load answers each `ready`
 * with that watch's `arm`, so every arm makes the next `ready` at once. Here the backends
 * differ in syscalls: epoll re-arms each watch with an epoll_ctl(), io_uring queues a
 * POLL_ADD for the iteration's one io_uring_enter.
 *
 * The rate is what the daemon sends (`stats` notifications) and its CPU share shows that
 * it is the bottleneck (near 100% of one CPU). Per backend a fresh daemon per block,
 * blocks ABBA.
 */

#include <stdio.h>
#include <string.h>

#include "evd-bench.h"
#include "fairness-load.h"
#include "macro.h"

#define SAT_CONNS 4
#define SAT_WATCHES 512 /* per connection */
#define SAT_FANOUT 8    /* watches per eventfd */
#define SAT_BLOCKS 2    /* per backend */
#define SAT_WARMUP_NS 300000000ull

typedef struct SatResult {
        double seconds, notifications, packets, coalesced, evd_cpu_ns;
        double block_rate[SAT_BLOCKS];
        unsigned n_blocks;
} SatResult;

typedef enum SatLoad {
        SAT_EDGE,    /* a writer bumps eventfds with 8 edge watches each */
        SAT_ONESHOT, /* readable eventfds, each `ready` answered by its `arm` */
        _SAT_LOAD_MAX,
} SatLoad;

static void sat_block(SatLoad load, const char *backend, double seconds, SatResult *r) {
        BenchDaemon d;
        DaemonStats a, b;
        uint64_t t0, t1, c0, c1;
        pid_t flood;

        daemon_start(&d, backend, NULL);
        flood = load == SAT_EDGE ? fairness_flood_edge(d.socket, SAT_CONNS, SAT_WATCHES, SAT_FANOUT)
                                 : fairness_flood_oneshot(d.socket, SAT_CONNS, SAT_WATCHES);
        sleep_ns(SAT_WARMUP_NS);
        daemon_stats(&d, &a);
        c0 = proc_runtime_ns(d.pid);
        t0 = now_ns();
        sleep_ns((uint64_t)(seconds * 1e9));
        t1 = now_ns();
        c1 = proc_runtime_ns(d.pid);
        daemon_stats(&d, &b);
        fairness_stop(flood, "edge flood");
        daemon_stop(&d);

        r->seconds += (double)(t1 - t0) / 1e9;
        r->notifications += (double)(b.notifications - a.notifications);
        r->packets += (double)(b.packets_out - a.packets_out);
        r->coalesced += (double)(b.coalesced - a.coalesced);
        r->evd_cpu_ns += (double)(c1 - c0);
        r->block_rate[r->n_blocks++] = (double)(b.notifications - a.notifications) / ((double)(t1 - t0) / 1e9);
}

static double sat_rate(const SatResult *r) {
        return r->seconds > 0 ? r->notifications / r->seconds : 0;
}

static json_t *sat_json(const SatResult *r) {
        json_t *j = json_object(), *blocks = json_array();

        for (unsigned k = 0; k < r->n_blocks; k++)
                json_array_append_new(blocks, json_real(r->block_rate[k]));
        jreal(j, "seconds", r->seconds);
        jreal(j, "notifications", r->notifications);
        jreal(j, "notifications_per_s", sat_rate(r));
        json_object_set_new(j, "block_rates_per_s", blocks);
        jreal(j, "evd_cpu_fraction", r->evd_cpu_ns / (r->seconds * 1e9));
        jreal(j, "evd_us_per_notification", r->evd_cpu_ns / r->notifications / 1e3);
        jreal(j, "notifications_per_packet", r->packets > 0 ? r->notifications / r->packets : 0);
        jreal(j, "coalesced_per_s", r->coalesced / r->seconds);
        return j;
}

static const struct {
        const char *name, *title;
} sat_loads[_SAT_LOAD_MAX] = {
        [SAT_EDGE] = {"edge", "edge watches, 8 on each eventfd, one writer\n"
                              "   bumping every eventfd in turn, readers dropping what arrives unread"},
        [SAT_ONESHOT] = {"oneshot", "oneshot watches on eventfds that stay\n"
                                    "   readable, each `ready` answered by its `arm` (one packet of arms per\n"
                                    "   packet read): epoll re-arms with a syscall each, io_uring in the ring"},
};

static void sat_table(SatLoad load, json_t *j) {
        SatResult res[MAX_BACKENDS] = {0};
        double seconds = arg_duration / SAT_BLOCKS;
        static char labels[_SAT_LOAD_MAX][64]; /* summary_add() keeps the pointer */
        char *label = labels[load];

        for (int k = 0; k < SAT_BLOCKS; k++)
                for (size_t i = 0; i < arg_n_backends; i++) {
                        size_t b = k % 2 ? arg_n_backends - 1 - i : i;

                        sat_block(load, arg_backends[b], seconds, &res[b]);
                }
        printf("\n   %s: %d raw connections x %d %s.\n", sat_loads[load].name, SAT_CONNS, SAT_WATCHES,
               sat_loads[load].title);
        printf("   %-9s %10s %13s %8s %8s %9s %12s\n", "", "notif/s", "blocks k", "evd CPU",
               "evd us/n", "notif/pkt", "coalesced/s");
        for (size_t b = 0; b < arg_n_backends; b++) {
                const SatResult *r = &res[b];
                double lo = r->block_rate[0], hi = r->block_rate[0];
                char range[32];

                for (unsigned k = 1; k < r->n_blocks; k++)
                        lo = MIN(lo, r->block_rate[k]), hi = MAX(hi, r->block_rate[k]);
                snprintf(range, sizeof(range), "%.0f-%.0f", lo / 1e3, hi / 1e3);
                printf("   %-9s %10.0f %13s %7.0f%% %8.3f %9.1f %12.0f\n", arg_backends[b], sat_rate(r),
                       range, r->evd_cpu_ns / (r->seconds * 1e9) * 100,
                       r->evd_cpu_ns / r->notifications / 1e3,
                       r->packets > 0 ? r->notifications / r->packets : 0, r->coalesced / r->seconds);
                json_object_set_new(j, arg_backends[b], sat_json(r));
        }
        if (arg_n_backends == 2 && strcmp(arg_backends[0], "io_uring") == 0 && sat_rate(&res[1]) > 0) {
                double ratio = sat_rate(&res[0]) / sat_rate(&res[1]);

                printf("   %s/%s: %.2fx notif/s (target >= 1.2x: %s)\n", arg_backends[0], arg_backends[1],
                       ratio, verdict(ratio >= 1.2));
                snprintf(label, sizeof(labels[load]), "saturated, %s: io_uring/epoll >= 1.2x",
                         sat_loads[load].name);
                summary_add(label, SIZE_MAX, ratio >= 1.2, "%.2fx", ratio);
                jreal(j, "ratio", ratio);
                jbool(j, "ratio_target_met", ratio >= 1.2);
        }
}

json_t *run_saturate(BenchDaemon *unused) {
        json_t *j = json_object();

        (void)unused;
        printf("\n10. Saturated daemon: raw connections (nothing parses the notifications), two\n"
               "   loads, each %.1f s per backend in %d blocks (ABBA), a fresh daemon each. evd CPU\n"
               "   near 100%% of one CPU: the daemon sets the rate. Target io_uring/epoll >= 1.2x.\n",
               arg_duration, SAT_BLOCKS);
        for (SatLoad load = 0; load < _SAT_LOAD_MAX; load++) {
                json_t *t = json_object();

                sat_table(load, t);
                json_object_set_new(j, sat_loads[load].name, t);
        }
        printf("   blocks k: the slower and faster block, thousands per second; evd CPU: its\n"
               "   schedstat runtime over the window; coalesced/s: edge notices merged into one\n"
               "   still queued (the readers fell behind).\n");
        jint(j, "connections", SAT_CONNS);
        jint(j, "watches_per_connection", SAT_WATCHES);
        jint(j, "edge_watches_per_eventfd", SAT_FANOUT);
        return j;
}
