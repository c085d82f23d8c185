/*
 * evd-bench-fairness.c - scenario 9: what one uid's timer flood costs another uid. A
 * bystander (uid 65534) pings the daemon once a millisecond while the flood (root, the
 * bench's uid) holds 4 connections x 25,000 timers repeating every millisecond, paced by
 * the daemon's default max-timer-rate-per-uid (PROTOCOL.md, section 9); next to the same
 * pings with no flood, on the same daemon in the same run.
 *
 * The loads are bench/fairness's (fairness-load.c: raw connections, so only the daemon is
 * measured, not libevd). Per backend, a fresh daemon: baseline pings for half of
 * --duration, the flood armed, its pings for --duration, the flood gone (the daemon holds
 * no timer and only the control connection again), baseline pings for the other half.
 * The two baseline halves bracket the flood, so a change in the machine's load during the
 * pass shows in both rows alike. The daemon's CPU is its schedstat runtime over each
 * window of pings; the flood's delivered rate is the `stats` notifications in its window.
 *
 * A second uid needs root: without it the scenario says so, in the table and the JSON,
 * and the rest of the run goes on.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evd-bench.h"
#include "fairness-load.h"
#include "macro.h"

#define FAIR_WARMUP_NS 300000000ull /* the flood at its steady state before pings count */

typedef struct FairWindow {
        Dist rtt;       /* the bystander's round trips, us */
        double evd_cpu; /* the daemon's share of one CPU */
        double notif_s; /* notifications the daemon sent per second (the flood's) */
        double held_s;  /* timer firings the pacing held back, per second */
} FairWindow;

typedef struct FairResult {
        FairWindow base, flood;
        uint64_t rate; /* max-timer-rate-per-uid in force */
        double arm_s;  /* arming the flood's timers */
} FairResult;

/* The stats counters a window reads, and the rate the daemon enforces. */
typedef struct FairCounters {
        uint64_t notifications, held, rate;
} FairCounters;

static uint64_t fair_u64(json_t *stats, const char *section, const char *key) {
        json_t *v = json_object_get(json_object_get(stats, section), key);

        if (!json_is_integer(v))
                die("stats: no %s.%s", section, key);
        return (uint64_t)json_integer_value(v);
}

static FairCounters fair_counters(BenchDaemon *d) {
        json_t *s = ctl_call(d, "stats");
        FairCounters c = {.notifications = fair_u64(s, "daemon", "notifications"),
                          .held = fair_u64(s, "daemon", "timers_held"),
                          .rate = fair_u64(s, "limits", "max-timer-rate-per-uid")};

        json_decref(s);
        return c;
}

/* Pings for @seconds into @rtt (FAIRNESS_MAX_PINGS, MAP_SHARED); adds the daemon's CPU
 * and wall time of the window to *@cpu_ns and *@wall_ns. Return: the pings. */
static size_t fair_pings(BenchDaemon *d, double seconds, int64_t *rtt, uint64_t *cpu_ns,
                         uint64_t *wall_ns) {
        uint64_t t0 = now_ns(), c0 = proc_runtime_ns(d->pid);
        FairnessPings p;

        fairness_bystander(d->socket, seconds, rtt, &p);
        *cpu_ns += proc_runtime_ns(d->pid) - c0;
        *wall_ns += now_ns() - t0;
        return p.n;
}

/* Until the daemon holds no timer and no client but the bench's own: the flood is gone. */
static void fair_wait_idle(BenchDaemon *d) {
        uint64_t deadline = now_ns() + STEP_TIMEOUT_MS * 1000000ull;

        for (;;) {
                json_t *st = ctl_call(d, "status");
                json_int_t timers = json_integer_value(json_object_get(st, "timers"));
                json_int_t clients = json_integer_value(json_object_get(st, "clients"));

                json_decref(st);
                if (timers == 0 && clients == 1)
                        return;
                if (now_ns() > deadline)
                        die("fairness: the daemon still holds %lld timers, %lld clients",
                            (long long)timers, (long long)clients);
                sleep_ns(10000000);
        }
}

static FairResult fair_run(const char *backend) {
        size_t size = 3 * FAIRNESS_MAX_PINGS * sizeof(int64_t), n_base, n_flood;
        int64_t *rtt = shm_new(size), *flood_rtt = rtt + 2 * FAIRNESS_MAX_PINGS;
        uint64_t cpu = 0, wall = 0, flood_cpu = 0, flood_wall = 0, t0;
        FairCounters c0, c1;
        double secs;
        FairResult r = {0};
        BenchDaemon d;
        pid_t flood;

        daemon_start(&d, backend, NULL);
        /* The bystander is another uid: the directory is mkdtemp()'s 0700. */
        if (chmod(d.dir, 0755) < 0 || chmod(d.socket, 0666) < 0)
                die_errno("chmod %s", d.socket);
        n_base = fair_pings(&d, arg_duration / 2, rtt, &cpu, &wall);

        t0 = now_ns();
        flood = fairness_flood_timers(d.socket);
        r.arm_s = (double)(now_ns() - t0) / 1e9;
        sleep_ns(FAIR_WARMUP_NS);
        c0 = fair_counters(&d);
        n_flood = fair_pings(&d, arg_duration, flood_rtt, &flood_cpu, &flood_wall);
        c1 = fair_counters(&d);
        secs = (double)flood_wall / 1e9;
        r.flood = (FairWindow){.rtt = dist_of(flood_rtt, n_flood),
                               .evd_cpu = (double)flood_cpu / (double)flood_wall,
                               .notif_s = (double)(c1.notifications - c0.notifications) / secs,
                               .held_s = (double)(c1.held - c0.held) / secs};
        fairness_stop(flood, "the timer flood");
        fair_wait_idle(&d);

        n_base += fair_pings(&d, arg_duration / 2, rtt + n_base, &cpu, &wall);
        r.base = (FairWindow){.rtt = dist_of(rtt, n_base), .evd_cpu = (double)cpu / (double)wall};
        r.rate = c0.rate;
        daemon_stop(&d);
        shm_free(rtt, size);
        return r;
}

static json_t *fair_window_json(const FairWindow *w, bool flood) {
        json_t *j = json_object();

        json_object_set_new(j, "ping_us", dist_json(&w->rtt));
        jreal(j, "evd_cpu", w->evd_cpu);
        if (flood) {
                jreal(j, "notifications_per_s", w->notif_s);
                jreal(j, "timers_held_per_s", w->held_s);
        }
        return j;
}

static double ratio(double a, double b) {
        return b > 0 ? a / b : 0;
}

/* NULL if a child can become the bystander's uid, else why not. */
static const char *fair_skip_reason(void) {
        int status;
        pid_t pid;

        if (geteuid() != 0)
                return "needs root: the bystander switches to uid 65534";
        pid = child_fork();
        if (pid == 0)
                _exit(setgid(FAIRNESS_BYSTANDER_UID) == 0 && setuid(FAIRNESS_BYSTANDER_UID) == 0
                              ? 0
                              : 1);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        die_errno("waitpid");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return "root, but setuid(65534) is refused here";
        return NULL;
}

json_t *run_fairness(BenchDaemon *unused) {
        FairResult r[MAX_BACKENDS];
        json_t *j = json_object();
        const char *skip;

        (void)unused;
        printf("\n9. Fairness: another uid's pings under one uid's timer flood. A bystander (uid\n"
               "   %d) pings once a millisecond; the flood: %d connections x %d timers repeating\n"
               "   every 1 ms, paced at the daemon's default max-timer-rate-per-uid. baseline: "
               "the\n"
               "   same pings without the flood, %.1f s before it and %.1f s after, same daemon;\n"
               "   flood: %.1f s. Round trips in us; evd CPU: its share of one CPU.\n",
               FAIRNESS_BYSTANDER_UID, FAIRNESS_FLOOD_CONNS, FAIRNESS_FLOOD_TIMERS,
               arg_duration / 2, arg_duration / 2, arg_duration);
        skip = fair_skip_reason();
        if (skip) {
                printf("   skipped: %s (running as uid %d)\n", skip, (int)geteuid());
                jstr(j, "skipped", skip);
                return j;
        }
        for (size_t b = 0; b < arg_n_backends; b++)
                r[b] = fair_run(arg_backends[b]);
        printf("   %-9s %-9s %7s %8s %8s %8s %8s %11s %9s\n", "", "", "pings", "p50", "p99", "max",
               "evd CPU", "notif/s", "held/s");
        for (size_t b = 0; b < arg_n_backends; b++) {
                const FairResult *x = &r[b];
                json_t *jb = json_object();

                printf("   %-9s %-9s %7zu %8.1f %8.1f %8.1f %7.0f%%\n", arg_backends[b], "baseline",
                       x->base.rtt.n, x->base.rtt.p50, x->base.rtt.p99, x->base.rtt.max,
                       x->base.evd_cpu * 100);
                printf("   %-9s %-9s %7zu %8.1f %8.1f %8.1f %7.0f%% %11.0f %9.0f\n", "", "flood",
                       x->flood.rtt.n, x->flood.rtt.p50, x->flood.rtt.p99, x->flood.rtt.max,
                       x->flood.evd_cpu * 100, x->flood.notif_s, x->flood.held_s);
                printf("   %-9s flood/baseline: p50 %.2fx, p99 %.2fx (rate %llu/s per uid, "
                       "armed in %.1f s)\n",
                       "", ratio(x->flood.rtt.p50, x->base.rtt.p50),
                       ratio(x->flood.rtt.p99, x->base.rtt.p99), (unsigned long long)x->rate,
                       x->arm_s);
                jint(jb, "max_timer_rate_per_uid", x->rate);
                jreal(jb, "arm_s", x->arm_s);
                json_object_set_new(jb, "baseline", fair_window_json(&x->base, false));
                json_object_set_new(jb, "flood", fair_window_json(&x->flood, true));
                jreal(jb, "p50_ratio", ratio(x->flood.rtt.p50, x->base.rtt.p50));
                jreal(jb, "p99_ratio", ratio(x->flood.rtt.p99, x->base.rtt.p99));
                json_object_set_new(j, arg_backends[b], jb);
        }
        jint(j, "bystander_uid", FAIRNESS_BYSTANDER_UID);
        jint(j, "flood_timers", (uint64_t)FAIRNESS_FLOOD_CONNS * FAIRNESS_FLOOD_TIMERS);
        jreal(j, "flood_interval_ms", 1.0);
        return j;
}
