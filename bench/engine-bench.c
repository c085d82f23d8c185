/* engine-bench.c - evd's engine against libev, libuv, libevent and a raw epoll loop
 *
 * Two benches in one run, every contender interleaved so that machine noise (other builds,
 * frequency changes) spreads over all of them instead of biasing one:
 *
 * pipes: libevent's classic test/bench.c. N nonblocking pipes, A active: a round writes a
 * byte into A pipes spread over N, each read callback reads its byte and writes one into
 * the next pipe until W = 10 * A bytes went in; the round ends when all W are read (the
 * work is bench_pipes_readable(), shared by every contender, and "floor(no poll)" runs it
 * without any poller to show what the pollers add). Only
 * the event loop is timed (the A seed writes are not, as in bench.c). Each repetition runs
 * every contender once, in rotated order (rep r starts with contender r), and a contender's
 * block is: create the loop and watch N pipes (timed separately as "setup"), one untimed
 * warm-up round, R timed rounds, teardown. Only one contender is registered on the pipes
 * at any time: a second poller on the same pipe would add its wakeup to every write.
 *
 * timers: 1,000,000 one-shot timers, engine vs libev's ev_timer (user-allocated array):
 * insert with random deadlines 1..1000 s into a fresh loop ("cold": the loop's memory
 * grows), cancel all, insert with deadlines 0..100 ms into the emptied loop ("warm"),
 * wait until all are due, then run the loop until all fired; and a "live" pass where the
 * loop runs while the 0..100 ms deadlines come due (its CPU time, not its wall time, is
 * the cost). The deadlines come from a seeded PRNG and are the same for every contender.
 *
 * This file: the contender lists, options, main(). engine-bench-pipes.c and
 * engine-bench-timers.c: the two benches; engine-bench-facts.c: machine facts;
 * engine-bench-json.c: the JSON report; engine-bench-util.c: small shared helpers.
 * engine-bench.h declares what they share; bench.h is the contenders' interface.
 */

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "engine-bench.h"
#include "macro.h"

#define FD_SLACK 200u /* fds kept free for the loops' own (epoll, rings, eventfds, stdio) */
#define MAX_LIST 8

BenchPipes bench_pipes;

const IoContender *const io_contenders[] = {
        &contender_engine_uring, &contender_engine_epoll, &contender_libev_epoll,
        &contender_libev_iouring, &contender_libuv,       &contender_libevent,
        &contender_raw_epoll,     &contender_floor,
};

const TimerContender *const timer_contenders[] = {
        &timer_engine_uring,
        &timer_engine_epoll,
        &timer_libev,
};
_Static_assert(ELEMENTSOF(io_contenders) == IO_N, "IO_N: one per io contender");
_Static_assert(ELEMENTSOF(timer_contenders) == TIMER_N, "TIMER_N: one per timer contender");

static unsigned arg_reps = 7;

static unsigned arg_rounds; /* 0: 100,000 reads per block, at least 10 rounds */

static unsigned arg_n[MAX_LIST] = { 1000, 0 }; /* 0: the largest N */

static unsigned arg_n_count = 2;

static unsigned arg_a[MAX_LIST] = { 100, 0 }; /* 0: N / 10 */

static unsigned arg_a_count = 2;

static unsigned arg_timers = 1000000;

unsigned arg_timer_reps = 3;

static bool arg_io = true;

static bool arg_timer = true;

int arg_cpu = -1;

static const char *arg_json;

uint64_t arg_seed = 1;

const char *arg_only;

static bool arg_quick;

/* command line */

static int parse_list(const char *s, unsigned *ret, unsigned *ret_count, const char *zero) {
        unsigned count = 0;

        while (*s) {
                const char *end = strchrnul(s, ',');
                char *num_end;
                unsigned long v;

                if (count == MAX_LIST)
                        return -E2BIG;
                if ((size_t)(end - s) == strlen(zero) && strncmp(s, zero, strlen(zero)) == 0) {
                        v = 0;
                } else {
                        v = strtoul(s, &num_end, 10);
                        if (num_end != end || v == 0 || v > 1000000)
                                return -EINVAL;
                }
                ret[count++] = (unsigned)v;
                s = *end ? end + 1 : end;
        }
        if (count == 0)
                return -EINVAL;
        *ret_count = count;
        return 0;
}

static unsigned parse_unsigned(const char *s, const char *what) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);

        if (*s == '\0' || *end != '\0' || v > 1000000000) {
                fprintf(stderr, "engine-bench: bad %s: %s\n", what, s);
                exit(2);
        }
        return (unsigned)v;
}

static void help(void) {
        printf("engine-bench [OPTIONS]\n"
               "  --quick            ~10 s smoke run (2 reps, fewer rounds, 250k timers once)\n"
               "  --reps N           repetitions of every pipes contender (default 7)\n"
               "  --rounds N         timed rounds per block (default: 100,000 reads' worth)\n"
               "  --n LIST           pipe counts, 'max' = as many as RLIMIT_NOFILE allows\n"
               "                     (default 1000,max)\n"
               "  --active LIST      active pipes, 'n/10' = N / 10 (default 100,n/10)\n"
               "  --timers N         timers in the timer bench (default 1000000)\n"
               "  --timer-reps N     repetitions of the timer bench (default 3)\n"
               "  --no-pipes         skip the pipes bench\n"
               "  --no-timers        skip the timer bench\n"
               "  --only LIST        run only these contenders (names as printed)\n"
               "  --cpu N            pin the process to CPU N\n"
               "  --seed N           PRNG seed for the timer deadlines (default 1)\n"
               "  --json FILE        also write the numbers as JSON\n");
}

static void parse_argv(int argc, char **argv) {
        enum {
                OPT_REPS = 0x100, OPT_ROUNDS, OPT_N, OPT_ACTIVE, OPT_TIMERS, OPT_TIMER_REPS,
                OPT_NO_PIPES, OPT_NO_TIMERS, OPT_ONLY, OPT_CPU, OPT_SEED, OPT_JSON, OPT_QUICK,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "quick", no_argument, NULL, OPT_QUICK },
                { "reps", required_argument, NULL, OPT_REPS },
                { "rounds", required_argument, NULL, OPT_ROUNDS },
                { "n", required_argument, NULL, OPT_N },
                { "active", required_argument, NULL, OPT_ACTIVE },
                { "timers", required_argument, NULL, OPT_TIMERS },
                { "timer-reps", required_argument, NULL, OPT_TIMER_REPS },
                { "no-pipes", no_argument, NULL, OPT_NO_PIPES },
                { "no-timers", no_argument, NULL, OPT_NO_TIMERS },
                { "only", required_argument, NULL, OPT_ONLY },
                { "cpu", required_argument, NULL, OPT_CPU },
                { "seed", required_argument, NULL, OPT_SEED },
                { "json", required_argument, NULL, OPT_JSON },
                { NULL, 0, NULL, 0 },
        };
        bool quick = false, reps_set = false, timer_reps_set = false, timers_set = false;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        exit(0);
                case OPT_QUICK:
                        quick = true;
                        break;
                case OPT_REPS:
                        arg_reps = parse_unsigned(optarg, "--reps");
                        reps_set = true;
                        break;
                case OPT_ROUNDS:
                        arg_rounds = parse_unsigned(optarg, "--rounds");
                        break;
                case OPT_N:
                        if (parse_list(optarg, arg_n, &arg_n_count, "max") < 0) {
                                fprintf(stderr, "engine-bench: bad --n: %s\n", optarg);
                                exit(2);
                        }
                        break;
                case OPT_ACTIVE:
                        if (parse_list(optarg, arg_a, &arg_a_count, "n/10") < 0) {
                                fprintf(stderr, "engine-bench: bad --active: %s\n", optarg);
                                exit(2);
                        }
                        break;
                case OPT_TIMERS:
                        arg_timers = parse_unsigned(optarg, "--timers");
                        timers_set = true;
                        break;
                case OPT_TIMER_REPS:
                        arg_timer_reps = parse_unsigned(optarg, "--timer-reps");
                        timer_reps_set = true;
                        break;
                case OPT_NO_PIPES:
                        arg_io = false;
                        break;
                case OPT_NO_TIMERS:
                        arg_timer = false;
                        break;
                case OPT_ONLY:
                        arg_only = optarg;
                        break;
                case OPT_CPU:
                        arg_cpu = (int)parse_unsigned(optarg, "--cpu");
                        break;
                case OPT_SEED:
                        arg_seed = parse_unsigned(optarg, "--seed");
                        break;
                case OPT_JSON:
                        arg_json = optarg;
                        break;
                default:
                        exit(2);
                }
        }
        if (optind < argc) {
                fprintf(stderr, "engine-bench: unexpected argument %s\n", argv[optind]);
                exit(2);
        }
        if (quick) {
                if (!reps_set)
                        arg_reps = 2;
                if (!timer_reps_set)
                        arg_timer_reps = 1;
                if (!timers_set)
                        arg_timers = 250000;
        }
        if (arg_reps < 1 || arg_reps > 64 || arg_timer_reps < 1 || arg_timer_reps > 64) {
                fprintf(stderr, "engine-bench: --reps and --timer-reps take 1..64\n");
                exit(2);
        }
        if (arg_timers < 1) {
                fprintf(stderr, "engine-bench: --timers must be at least 1\n");
                exit(2);
        }
        arg_quick = quick;
}

static unsigned rounds_for(uint64_t target) {
        uint64_t reads = arg_quick ? 10000 : 100000;
        uint64_t r = reads / target, min = arg_quick ? 3 : 10;

        return (unsigned)(r < min ? min : r);
}

int main(int argc, char **argv) {
        IoConfig cfgs[MAX_LIST * MAX_LIST];
        TimerResult *timers = NULL;
        size_t ncfg = 0;
        unsigned max_n;
        Facts facts = { .cpus = 0 };
        int r;

        parse_argv(argc, argv);
        if (arg_cpu >= 0) {
                cpu_set_t set;

                CPU_ZERO(&set);
                CPU_SET(arg_cpu, &set);
                if (sched_setaffinity(0, sizeof(set), &set) < 0) {
                        fprintf(stderr, "engine-bench: sched_setaffinity(%d): %s\n", arg_cpu,
                                strerror(errno));
                        return 1;
                }
        }
        r = raise_nofile(&facts);
        if (r < 0) {
                fprintf(stderr, "engine-bench: RLIMIT_NOFILE: %s\n", strerror(-r));
                return 1;
        }
        (void)signal(SIGALRM, watchdog);
        (void)signal(SIGPIPE, SIG_IGN);
        facts_collect(&facts);
        facts_print(&facts);
        max_n = facts.nofile_soft > 2 * FD_SLACK ? (unsigned)((facts.nofile_soft - FD_SLACK) / 2)
                                                 : 1;
        max_n = MIN(max_n, 1000000u);

        if (arg_io) {
                for (unsigned i = 0; i < arg_n_count; i++) {
                        unsigned n = arg_n[i] ? MIN(arg_n[i], max_n) : max_n;

                        for (unsigned j = 0; j < arg_a_count; j++) {
                                unsigned a = arg_a[j] ? arg_a[j] : MAX(n / 10, 1u);
                                bool dup = false;

                                a = MIN(a, n);
                                for (size_t k = 0; k < ncfg; k++)
                                        dup |= cfgs[k].n == n && cfgs[k].active == a;
                                if (dup)
                                        continue;
                                cfgs[ncfg] = (IoConfig){ .n = n, .active = a, .reps = arg_reps,
                                                         .target = 10 * (uint64_t)a };
                                cfgs[ncfg].rounds = arg_rounds ? arg_rounds
                                                               : rounds_for(cfgs[ncfg].target);
                                ncfg++;
                        }
                }
                printf("  pipes: pipe2(O_NONBLOCK), largest N here %u; engine contenders edge-"
                       "triggered, the rest level-triggered\n",
                       max_n);
                fflush(stdout);
                for (size_t i = 0; i < ncfg; i++) {
                        r = pipes_open(cfgs[i].n);
                        if (r < 0)
                                return 1;
                        fprintf(stderr, "pipes N=%u A=%u ", cfgs[i].n, cfgs[i].active);
                        io_config_run(&cfgs[i]);
                        pipes_close(cfgs[i].n);
                        io_config_print(&cfgs[i]);
                        fflush(stdout);
                }
        }
        if (arg_timer) {
                timers = calloc(TIMER_N, sizeof(*timers));
                if (!timers)
                        return 1;
                fprintf(stderr, "timers ");
                r = timers_run(timers, arg_timers);
                if (r < 0) {
                        fprintf(stderr, "engine-bench: timers: %s\n", strerror(-r));
                        return 1;
                }
                timers_print(timers, arg_timers);
        }
        printf("\nload average %.2f at the end (this bench adds ~1; well above 1 means other "
               "processes shared the CPUs: rerun)\n",
               loadavg());
        if (arg_json) {
                FILE *f = fopen(arg_json, "we");

                if (!f) {
                        fprintf(stderr, "engine-bench: %s: %s\n", arg_json, strerror(errno));
                        return 1;
                }
                json_write(f, &facts, cfgs, ncfg, timers, arg_timers);
                if (fclose(f) != 0) {
                        fprintf(stderr, "engine-bench: %s: %s\n", arg_json, strerror(errno));
                        return 1;
                }
        }
        for (size_t i = 0; i < ncfg; i++)
                for (size_t c = 0; c < IO_N; c++) {
                        free(cfgs[i].results[c].samples);
                        free(cfgs[i].results[c].cpu_samples);
                }
        free(timers);
        return 0;
}
