/*
 * evd-bench.c - evd end to end: latency, throughput, registration, memory, timers,
 * fairness between users, the daemon saturated
 *
 * This file: the machine and configuration JSON, main(). One file per scenario
 * (evd-bench-latency.c, -throughput.c, -register.c, -scale.c, -timers.c, -python.c,
 * -crowd.c, -client.c, -fairness.c, -saturate.c) over a shared
 * harness declared in evd-bench.h: evd-bench-util.c (processes, clocks, pinning, /proc),
 * evd-bench-daemon.c (the daemon launcher, libevd client helpers, daemon stats),
 * evd-bench-dist.c (distributions), evd-bench-report.c (JSON members, the targets table),
 * evd-bench-options.c (defaults, parsing, --quick). Calls go downward only:
 * main -> scenarios -> daemon -> report, dist -> util, options (tools/check-layers --dir bench).
 *
 * The bench starts the real daemon (EVD_BENCH_DAEMON, $EVD_BENCH_DAEMON or --evd) once per
 * backend, each in its own mkdtemp() directory, and talks to it only through libevd from
 * forked client processes: daemon, clients, writers and the bench's bookkeeping are
 * separate processes as in real use, and the bench's own connection (`ctl`, for `status`
 * and `stats`) stays idle while something is timed. What the kernel sets the floor for is
 * measured in the same run: a SOCK_SEQPACKET ping-pong between two plain processes.
 *
 * Fairness on a noisy shared machine: both daemons are up at once and the latency and
 * throughput blocks alternate between the floor and the backends (rotated, ABBA), so a
 * change of load hits every contender alike. The memory figures use a fresh daemon each,
 * so no contender inherits what another's allocator kept.
 *
 * Children report through MAP_SHARED memory set up before fork(); the parent prints the
 * tables and the JSON from it. Every child and daemon gets PR_SET_PDEATHSIG, so an
 * aborted bench leaves no process behind (and its atexit() handler removes the
 * directories).
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "evd-bench.h"
#include "macro.h"

static void read_loadavg(char *buf, size_t size) {
        _cleanup_(fclosep) FILE *f = fopen("/proc/loadavg", "re");

        double a, b, c;

        if (!f || fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3)
                snprintf(buf, size, "?");
        else
                snprintf(buf, size, "%.2f %.2f %.2f", a, b, c);
}

static json_t *machine_json(const BenchDaemon *daemons, const char *load) {
        json_t *j = json_object(), *feat = json_object();
        struct utsname u;
        struct rlimit rl;

        (void)uname(&u);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
        for (size_t b = 0; b < arg_n_backends; b++)
                jstr(feat, arg_backends[b], daemons[b].features);
        jstr(j, "kernel", u.release);
        jstr(j, "machine", u.machine);
        jint(j, "cpus", (uint64_t)sysconf(_SC_NPROCESSORS_ONLN));
        jint(j, "rlimit_nofile", rl.rlim_max);
        jstr(j, "daemon", arg_evd);
        jstr(j, "evd_version", daemons[0].version);
        jstr(j, "loadavg_start", load);
        json_object_set_new(j, "features", feat);
        jbool(j, "quick", arg_quick);
        return j;
}

static json_t *config_json(void) {
        json_t *j = json_object(), *only = json_array(), *backends = json_array();

        for (size_t i = 0; i < ELEMENTSOF(scenario_names); i++)
                if (arg_scenarios & (1u << i))
                        json_array_append_new(only, json_string(scenario_names[i]));
        for (size_t b = 0; b < arg_n_backends; b++)
                json_array_append_new(backends, json_string(arg_backends[b]));
        json_object_set_new(j, "scenarios", only);
        json_object_set_new(j, "backends", backends);
        jint(j, "latency_samples", arg_samples);
        jint(j, "latency_blocks", arg_rounds);
        jint(j, "pinned_cpu", (uint64_t)arg_cpu);
        jint(j, "clients", arg_clients);
        jint(j, "watches_per_client", arg_watches);
        jint(j, "watches_per_pipe", arg_fanout);
        jreal(j, "duration_s", arg_duration);
        jbool(j, "evd_on_own_cpu", arg_tp_split);
        jint(j, "register_watches", arg_reg_watches);
        jint(j, "register_runs", arg_reg_reps);
        jint(j, "scale_watches", scale_watch_count());
        jint(j, "scale_timers", arg_scale_timers);
        jint(j, "timers", arg_timers);
        jint(j, "timer_clients", arg_timer_clients);
        jreal(j, "timer_spread_s", arg_timer_spread);
        jreal(j, "timer_min_lead_s", arg_timer_lead);
        return j;
}

/* Run one scenario if selected; its JSON gets its wall time. */
static void run_scenario(json_t *root, unsigned which, json_t *(*run)(BenchDaemon *),
                         BenchDaemon *daemons) {
        uint64_t t0 = now_ns();
        size_t i = (size_t)__builtin_ctz(which);
        json_t *j;
        double secs;

        if (!(arg_scenarios & which))
                return;
        j = run(daemons);
        secs = (double)(now_ns() - t0) / 1e9;
        printf("   (%.1f s)\n", secs);
        json_object_set_new(j, "seconds", json_real(secs));
        json_object_set_new(root, scenario_names[i], j);
}

/* Children inherit it, and the daemon raises its own soft limit likewise. */
static void raise_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
}

int main(int argc, char **argv) {
        BenchDaemon daemons[MAX_BACKENDS];
        json_t *root = json_object();
        uint64_t t_start = now_ns();
        char load[128], load_end[128];
        struct utsname u;
        struct rlimit rl;

        raise_fd_limit();
        parse_argv(argc, argv);
        (void)signal(SIGPIPE, SIG_IGN);
        (void)atexit(cleanup_daemons);
        read_loadavg(load, sizeof(load));
        (void)uname(&u);

        for (size_t b = 0; b < arg_n_backends; b++)
                daemon_start(&daemons[b], arg_backends[b], NULL);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
        printf("evd-bench: evd %s (%s), kernel %s, %ld CPUs,\n"
               "   RLIMIT_NOFILE %llu, load average %s%s\n",
               daemons[0].version, arg_evd, u.release, sysconf(_SC_NPROCESSORS_ONLN),
               (unsigned long long)rl.rlim_max, load, arg_quick ? " [--quick]" : "");
        for (size_t b = 0; b < arg_n_backends; b++)
                printf("  %s features: %s\n", arg_backends[b],
                       *daemons[b].features ? daemons[b].features : "-");
        json_object_set_new(root, "machine", machine_json(daemons, load));
        json_object_set_new(root, "config", config_json());

        run_scenario(root, SCEN_LATENCY, run_latency, daemons);
        run_scenario(root, SCEN_THROUGHPUT, run_throughput, daemons);
        run_scenario(root, SCEN_REGISTER, run_register, daemons);
        run_scenario(root, SCEN_PYTHON, run_python, daemons);
        /* Scale and timers start daemons of their own: the shared ones go first. */
        for (size_t b = 0; b < arg_n_backends; b++)
                daemon_stop(&daemons[b]);
        run_scenario(root, SCEN_SCALE, run_scale, NULL);
        run_scenario(root, SCEN_TIMERS, run_timers, NULL);
        run_scenario(root, SCEN_CROWD, run_crowd, NULL);
        run_scenario(root, SCEN_CLIENT, run_client, NULL);
        run_scenario(root, SCEN_FAIRNESS, run_fairness, NULL);
        run_scenario(root, SCEN_SATURATE, run_saturate, NULL);
        json_object_set_new(root, "targets", summary_print());
        read_loadavg(load_end, sizeof(load_end));
        printf("\nload average %s -> %s; %.1f s\n", load, load_end,
               (double)(now_ns() - t_start) / 1e9);
        json_object_set_new(json_object_get(root, "machine"), "loadavg_end", json_string(load_end));
        json_object_set_new(root, "seconds", json_real((double)(now_ns() - t_start) / 1e9));
        if (arg_json && json_dump_file(root, arg_json, JSON_INDENT(2)) < 0)
                die("cannot write %s", arg_json);
        json_decref(root);
        return 0;
}
