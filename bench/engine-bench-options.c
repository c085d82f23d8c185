/*
 * engine-bench-options.c - what engine-bench runs: the contender lists, the options
 * (defaults, --help, parsing, --quick) and the rounds a pipes configuration gets.
 */

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "engine-bench.h"
#include "macro.h"

const IoContender *const io_contenders[] = {
        &contender_engine_uring, &contender_engine_epoll, &contender_libev_epoll,
        &contender_libev_iouring, &contender_libuv,       &contender_libevent,
        &contender_raw_epoll,     &contender_raw_uring,     &contender_floor,
};

const TimerContender *const timer_contenders[] = {
        &timer_engine_uring,
        &timer_engine_epoll,
        &timer_engine_pool,
        &timer_libev,
};
_Static_assert(ELEMENTSOF(io_contenders) == IO_N, "IO_N: one per io contender");
_Static_assert(IO_FLOOR == IO_N - 1, "IO_FLOOR: floor(no poll) is the last contender");
_Static_assert(IO_RAW_URING == IO_FLOOR - 1, "IO_RAW_URING: raw-uring comes right before the floor");
_Static_assert(ELEMENTSOF(timer_contenders) == TIMER_N, "TIMER_N: one per timer contender");

unsigned arg_reps = 7;
unsigned arg_rounds; /* 0: 100,000 reads per block, at least 10 rounds */
unsigned arg_n[MAX_LIST] = { 1000, 0 }; /* 0: the largest N */
unsigned arg_n_count = 2;
unsigned arg_a[MAX_LIST] = { 100, 0 }; /* 0: N / 10 */
unsigned arg_a_count = 2;
unsigned arg_timers = 1000000;
unsigned arg_timer_reps = 3;
bool arg_io = true;
bool arg_timer = true;
int arg_cpu = -1;
const char *arg_json;
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

void parse_argv(int argc, char **argv) {
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
        if (arg_reps < 1 || arg_reps > IO_MAX_REPS || arg_timer_reps < 1 || arg_timer_reps > 64) {
                fprintf(stderr, "engine-bench: --reps and --timer-reps take 1..64\n");
                exit(2);
        }
        if (arg_timers < 1) {
                fprintf(stderr, "engine-bench: --timers must be at least 1\n");
                exit(2);
        }
        arg_quick = quick;
}

unsigned rounds_for(uint64_t target) {
        uint64_t reads = arg_quick ? 10000 : 100000;
        uint64_t r = reads / target, min = arg_quick ? 3 : 10;

        return (unsigned)(r < min ? min : r);
}
