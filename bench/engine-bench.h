#pragma once
/* engine-bench.h - what engine-bench's files share: contenders, options, results */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>

#include "bench.h"

#define FD_SLACK 200u /* fds kept free for the loops' own (epoll, rings, eventfds, stdio) */
#define MAX_LIST 8
#define IO_MAX_REPS 64 /* --reps */
#define IO_N 9 /* io_contenders[]: checked where it is defined (engine-bench-options.c) */
#define IO_BASELINE 2     /* libev-epoll */
#define IO_URING_PEER 3   /* libev-iouring */
#define IO_RAW_URING 7    /* raw-uring: a hand-written liburing loop */
#define IO_FLOOR 8        /* floor(no poll): the callbacks' read + write alone */
#define TIMER_N 4 /* timer_contenders[], likewise */
#define TIMER_BASELINE 3

typedef struct Facts {
        char kernel[256];
        char cpu_model[128];
        long cpus;
        rlim_t nofile_soft, nofile_hard;
        char features[512];
        int features_r;
        char versions[256];
        double load_start;
} Facts;

typedef struct IoResult {
        bool available;
        bool failed;
        const char *why;
        uint64_t *samples;     /* wall ns per round, reps * rounds */
        uint64_t *cpu_samples; /* CPU ns per round: blind to time lost to other processes */
        size_t samples_n;
        uint64_t rep_median[IO_MAX_REPS];
        uint64_t setup[64];
        uint64_t teardown[64];
        unsigned reps_done;
        uint64_t waits, syscalls;
        bool has_waits, has_syscalls;
        uint64_t spurious;
        uint64_t rounds_done;
        double median_ns;
        double best_ns; /* the fastest repetition's median: the least disturbed by noise */
        double cpu_median_ns;
        double setup_ns;
        double teardown_ns;
} IoResult;

typedef struct IoConfig {
        unsigned n, active, rounds, reps;
        uint64_t target;
        IoResult results[IO_N];
} IoConfig;

enum {
        T_INSERT,      /* random deadlines 1..1000 s, into a fresh loop */
        T_CANCEL,
        T_INSERT_NEAR, /* deadlines 0..100 ms, into the loop the cancel emptied */
        T_FIRE,        /* all due, run until all fired */
        T_LIVE_CPU,    /* the loop running while 0..100 ms deadlines come due: CPU time */
        T_LIVE_WALL,
        _T_MAX,
};

typedef struct TimerResult {
        bool available;
        bool failed;
        const char *why;
        uint64_t ns[_T_MAX][64];
        uint64_t faults[_T_MAX][64];
        unsigned reps_done;
        double median[_T_MAX];        /* ns per timer (live wall: ns in all) */
        double median_faults[_T_MAX]; /* minor page faults in the phase */
} TimerResult;

/* engine-bench-options.c */
extern const IoContender *const io_contenders[];
extern const TimerContender *const timer_contenders[];
extern unsigned arg_reps;
extern unsigned arg_rounds;
extern unsigned arg_n[MAX_LIST];
extern unsigned arg_n_count;
extern unsigned arg_a[MAX_LIST];
extern unsigned arg_a_count;
extern unsigned arg_timers;
extern unsigned arg_timer_reps;
extern bool arg_io;
extern bool arg_timer;
extern int arg_cpu;
extern const char *arg_json;
extern uint64_t arg_seed;
extern const char *arg_only;
void parse_argv(int argc, char **argv);
unsigned rounds_for(uint64_t target);

/* engine-bench-util.c */
extern volatile const char *watchdog_what;
void watchdog(int sig);
double median(uint64_t *v, size_t n);
uint64_t splitmix64(uint64_t *state);
bool contender_selected(const char *name);

/* engine-bench-facts.c */
double loadavg(void);
int raise_nofile(Facts *f);
void facts_collect(Facts *f);
void facts_print(const Facts *f);

/* engine-bench-pipes.c */
int pipes_open(unsigned n);
void pipes_close(unsigned n);
void io_config_run(IoConfig *cfg);
bool io_result_ok(const IoResult *r);
double io_ratio(const IoConfig *cfg, size_t c, size_t base);
double io_ratio_best(const IoConfig *cfg, size_t c, size_t base);
double io_ratio_cpu(const IoConfig *cfg, size_t c, size_t base);
double io_poll_cost_ns(const IoConfig *cfg, size_t c);
double io_poll_cost_ratio(const IoConfig *cfg, size_t c, size_t base);
/** io_poll_cost_ratio_paired() - io_poll_cost_ratio() rep by rep, the median of the reps' ratios. */
double io_poll_cost_ratio_paired(const IoConfig *cfg, size_t c, size_t base);
void io_config_print(const IoConfig *cfg);

/* engine-bench-timers.c */
int timers_run(TimerResult *results, size_t n);
bool timer_ok(const TimerResult *r);
void timers_print(const TimerResult *results, size_t n);

/* engine-bench-json.c */
void json_write(FILE *f, const Facts *facts, const IoConfig *cfgs, size_t ncfg,
                const TimerResult *timers, size_t n_timers);
