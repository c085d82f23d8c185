/*
 * evd-bench-options.c - evd-bench's options: their defaults (the arg_* every part reads),
 * --help, parsing, and what --quick scales down.
 */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "evd-bench.h"
#include "macro.h"

#ifndef EVD_BENCH_DAEMON
#define EVD_BENCH_DAEMON "evd"
#endif

const char *const scenario_names[] = {"latency", "throughput", "register", "scale",
                                      "timers", "python", "client", "crowd", "fairness",
                                      "saturate"};
_Static_assert(SCEN_ALL == (1 << 10) - 1, "scenario_names: one per SCEN_* bit");

/* ---- options ------------------------------------------------------------------------ */

const char *arg_evd;
const char *arg_json;
bool arg_quick;
unsigned arg_scenarios = SCEN_ALL;
const char *arg_backends[MAX_BACKENDS] = {"io_uring", "epoll"};
size_t arg_n_backends = 2;
int arg_cpu = 0;
unsigned arg_samples = 10000; /* per target and pinning */
unsigned arg_rounds = 5;
unsigned arg_clients = 4, arg_watches = 64, arg_fanout = 8;
double arg_duration = 2.0; /* s: throughput per backend, a crowd pass, the fairness flood */
bool arg_tp_split;         /* throughput: evd alone on one CPU, the clients on the others */
unsigned arg_reg_watches = 5000, arg_reg_reps = 3;
unsigned arg_scale_watches; /* 0: as many as the fd limit allows */
unsigned arg_scale_timers = 1000000;
unsigned arg_timers = 100000, arg_timer_clients = 4;
double arg_timer_spread = 1.0, arg_timer_lead = 1.0; /* lead: at least */

/* ---- main ------------------------------------------------------------------------- */

static void help(void) {
        printf("Usage: evd-bench [OPTIONS]\n\n"
               "evd end to end against the kernel's floor, both backends (bench/README.md).\n\n"
               "  --evd PATH         the daemon (default: $EVD_BENCH_DAEMON, else the built one)\n"
               "  --json FILE        write every number to FILE\n"
               "  --quick            a ~20 s run: fewer samples, shorter runs, smaller counts\n"
               "  --only LIST        scenarios: latency,throughput,register,scale,timers,\n"
               "                     python,client,crowd,fairness,saturate\n"
               "  --backends LIST    io_uring,epoll (default both)\n"
               "latency:\n"
               "  --cpu N            the CPU of the pinned runs (default 0)\n"
               "  --samples N        samples per row (default %u)\n"
               "  --rounds N         blocks per row (default %u)\n"
               "throughput:\n"
               "  --clients C        clients (default %u)\n"
               "  --watches W        watches per client (default %u)\n"
               "  --fanout K         watches per pipe (default %u; W must be a multiple)\n"
               "  --duration S       seconds per backend (default %.1f; also crowd's passes and\n"
               "                     fairness's windows and saturate's time per backend)\n"
               "  --tp-split         evd alone on the last CPU, the clients on the others\n"
               "register:\n"
               "  --reg-watches N    watches (default %u)\n"
               "  --reg-runs N       runs per backend (default %u)\n"
               "scale:\n"
               "  --scale-watches N  watches (default: the fd limit - %u)\n"
               "  --scale-timers N   timers (default %u)\n"
               "timers:\n"
               "  --timers N         timers (default %u)\n"
               "  --timer-clients C  clients (default %u)\n"
               "  --timer-spread S   seconds the deadlines spread over (default %.1f)\n"
               "  --timer-lead S     at least S seconds before the first deadline (default\n"
               "                     %.1f; the calibration may choose more)\n",
               arg_samples, arg_rounds, arg_clients, arg_watches, arg_fanout, arg_duration,
               arg_reg_watches, arg_reg_reps, FD_SLACK, arg_scale_timers, arg_timers,
               arg_timer_clients, arg_timer_spread, arg_timer_lead);
}

static unsigned parse_uint(const char *s, const char *what, unsigned min) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v < min || v > UINT32_MAX)
                die("%s: bad value \"%s\"", what, s);
        return (unsigned)v;
}

static double parse_seconds(const char *s, const char *what) {
        char *end;
        double v = strtod(s, &end);

        if (end == s || *end || !(v > 0) || v > 3600)
                die("%s: bad value \"%s\"", what, s);
        return v;
}

static unsigned parse_scenarios(char *list) {
        unsigned mask = 0;

        for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
                size_t i;

                for (i = 0; i < ELEMENTSOF(scenario_names); i++)
                        if (strcmp(tok, scenario_names[i]) == 0)
                                break;
                if (i == ELEMENTSOF(scenario_names))
                        die("--only: unknown scenario \"%s\"", tok);
                mask |= 1u << i;
        }
        return mask;
}

static void parse_backends(char *list) {
        arg_n_backends = 0;
        for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
                if (strcmp(tok, "io_uring") != 0 && strcmp(tok, "epoll") != 0)
                        die("--backends: unknown backend \"%s\"", tok);
                if (arg_n_backends == MAX_BACKENDS)
                        die("--backends: at most %d", MAX_BACKENDS);
                arg_backends[arg_n_backends++] =
                        strcmp(tok, "io_uring") == 0 ? "io_uring" : "epoll";
        }
        if (arg_n_backends == 0)
                die("--backends: empty list");
}

enum {
        OPT_EVD = 0x100,
        OPT_JSON,
        OPT_QUICK,
        OPT_ONLY,
        OPT_BACKENDS,
        OPT_CPU,
        OPT_SAMPLES,
        OPT_ROUNDS,
        OPT_CLIENTS,
        OPT_WATCHES,
        OPT_DURATION,
        OPT_TP_SPLIT,
        OPT_FANOUT,
        OPT_REG_WATCHES,
        OPT_REG_RUNS,
        OPT_SCALE_WATCHES,
        OPT_SCALE_TIMERS,
        OPT_TIMERS,
        OPT_TIMER_CLIENTS,
        OPT_TIMER_SPREAD,
        OPT_TIMER_LEAD,
};

/* --quick first sets smaller defaults; explicit options given with it still win. */
static void apply_quick(int argc, char **argv) {
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "--quick") == 0) {
                        arg_quick = true;
                        arg_samples = 2000;
                        arg_rounds = 2;
                        arg_duration = 1.0;
                        arg_reg_watches = 2000;
                        arg_reg_reps = 1;
                        arg_scale_watches = 8000;
                        arg_scale_timers = 200000;
                        arg_timers = 25000;
                        arg_timer_spread = 1.0;
                }
}

void parse_argv(int argc, char **argv) {
        struct rlimit rl;
        static const struct option opts[] = {
                {"help", no_argument, NULL, 'h'},
                {"evd", required_argument, NULL, OPT_EVD},
                {"json", required_argument, NULL, OPT_JSON},
                {"quick", no_argument, NULL, OPT_QUICK},
                {"only", required_argument, NULL, OPT_ONLY},
                {"backends", required_argument, NULL, OPT_BACKENDS},
                {"cpu", required_argument, NULL, OPT_CPU},
                {"samples", required_argument, NULL, OPT_SAMPLES},
                {"rounds", required_argument, NULL, OPT_ROUNDS},
                {"clients", required_argument, NULL, OPT_CLIENTS},
                {"watches", required_argument, NULL, OPT_WATCHES},
                {"duration", required_argument, NULL, OPT_DURATION},
                {"tp-split", no_argument, NULL, OPT_TP_SPLIT},
                {"fanout", required_argument, NULL, OPT_FANOUT},
                {"reg-watches", required_argument, NULL, OPT_REG_WATCHES},
                {"reg-runs", required_argument, NULL, OPT_REG_RUNS},
                {"scale-watches", required_argument, NULL, OPT_SCALE_WATCHES},
                {"scale-timers", required_argument, NULL, OPT_SCALE_TIMERS},
                {"timers", required_argument, NULL, OPT_TIMERS},
                {"timer-clients", required_argument, NULL, OPT_TIMER_CLIENTS},
                {"timer-spread", required_argument, NULL, OPT_TIMER_SPREAD},
                {"timer-lead", required_argument, NULL, OPT_TIMER_LEAD},
                {NULL, 0, NULL, 0}};
        int c;

        arg_evd = getenv("EVD_BENCH_DAEMON");
        if (!arg_evd || !*arg_evd)
                arg_evd = EVD_BENCH_DAEMON;
        apply_quick(argc, argv);
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        exit(0);
                case OPT_EVD:
                        arg_evd = optarg;
                        break;
                case OPT_JSON:
                        arg_json = optarg;
                        break;
                case OPT_QUICK:
                        break; /* apply_quick() */
                case OPT_ONLY:
                        arg_scenarios = parse_scenarios(optarg);
                        break;
                case OPT_BACKENDS:
                        parse_backends(optarg);
                        break;
                case OPT_CPU:
                        arg_cpu = (int)parse_uint(optarg, "--cpu", 0);
                        break;
                case OPT_SAMPLES:
                        arg_samples = parse_uint(optarg, "--samples", 1);
                        break;
                case OPT_ROUNDS:
                        arg_rounds = parse_uint(optarg, "--rounds", 1);
                        break;
                case OPT_CLIENTS:
                        arg_clients = parse_uint(optarg, "--clients", 1);
                        break;
                case OPT_WATCHES:
                        arg_watches = parse_uint(optarg, "--watches", 1);
                        break;
                case OPT_DURATION:
                        arg_duration = parse_seconds(optarg, "--duration");
                        break;
                case OPT_FANOUT:
                        arg_fanout = parse_uint(optarg, "--fanout", 1);
                        break;
                case OPT_TP_SPLIT:
                        arg_tp_split = true;
                        break;
                case OPT_REG_WATCHES:
                        arg_reg_watches = parse_uint(optarg, "--reg-watches", 1);
                        break;
                case OPT_REG_RUNS:
                        arg_reg_reps = parse_uint(optarg, "--reg-runs", 1);
                        break;
                case OPT_SCALE_WATCHES:
                        arg_scale_watches = parse_uint(optarg, "--scale-watches", 1);
                        break;
                case OPT_SCALE_TIMERS:
                        arg_scale_timers = parse_uint(optarg, "--scale-timers", 1);
                        break;
                case OPT_TIMERS:
                        arg_timers = parse_uint(optarg, "--timers", 1);
                        break;
                case OPT_TIMER_CLIENTS:
                        arg_timer_clients = parse_uint(optarg, "--timer-clients", 1);
                        break;
                case OPT_TIMER_SPREAD:
                        arg_timer_spread = parse_seconds(optarg, "--timer-spread");
                        break;
                case OPT_TIMER_LEAD:
                        arg_timer_lead = parse_seconds(optarg, "--timer-lead");
                        break;
                default:
                        exit(2);
                }
        if (optind < argc)
                die("unexpected argument \"%s\" (see --help)", argv[optind]);
        if (arg_clients > 64)
                die("--clients: at most 64");
        if (arg_reg_watches > 16384)
                die("--reg-watches: at most 16384 (the daemon's default per-client quota)");
        /* The registering client holds both ends of each pipe and libevd's duplicate. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 3 * (rlim_t)arg_reg_watches + 64)
                die("--reg-watches %u needs %u fds, RLIMIT_NOFILE is %llu", arg_reg_watches,
                    3 * arg_reg_watches + 64, (unsigned long long)rl.rlim_cur);
        if (arg_watches % arg_fanout != 0)
                die("--watches %u is not a multiple of --fanout %u", arg_watches, arg_fanout);
        if (arg_timer_clients > 16)
                die("--timer-clients: at most 16");
        if (arg_cpu >= sysconf(_SC_NPROCESSORS_ONLN))
                die("--cpu %d: no such CPU", arg_cpu);
        if (access(arg_evd, X_OK) < 0)
                die_errno("%s (build it: ninja -C <builddir> daemon/evd, or pass --evd)", arg_evd);
}
