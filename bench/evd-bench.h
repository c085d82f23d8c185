#pragma once
/* evd-bench.h - the harness the evd-bench scenarios share: options, processes, daemon, JSON */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "evd.h"

#define NSEC_PER_SEC 1000000000ull
#define MAX_BACKENDS 2
#define LAT_WARMUP 100u       /* latency samples dropped at the start of each block */
#define WINDOW 128u           /* async requests a client keeps in flight */
#define STEP_TIMEOUT_MS 60000 /* no single step of a scenario may take longer */
#define FD_SLACK 256u         /* fds the daemon keeps for itself at the fd limit */

enum {
        SCEN_LATENCY = 1 << 0,
        SCEN_THROUGHPUT = 1 << 1,
        SCEN_REGISTER = 1 << 2,
        SCEN_SCALE = 1 << 3,
        SCEN_TIMERS = 1 << 4,
        SCEN_PYTHON = 1 << 5,
        SCEN_CLIENT = 1 << 6,
        SCEN_CROWD = 1 << 7,
        SCEN_FAIRNESS = 1 << 8,
        SCEN_SATURATE = 1 << 9,
        SCEN_ALL = (1 << 10) - 1,
};

/* Microseconds. Percentiles are nearest-rank. Samples are signed: a timer may fire early. */
typedef struct Dist {
        size_t n;
        double min, p50, p99, p999, max, mean;
} Dist;

/* The daemon's `stats` counters the bench uses, and its latency histogram. */
typedef struct DaemonStats {
        uint64_t notifications, packets_out, coalesced;
        uint64_t iterations, events, timers, syscalls, submissions;
        struct {
                double le_us;
                uint64_t count;
        } bucket[64];
        size_t n_buckets;
} DaemonStats;

/* The daemon's own latency figure (event seen -> handed to the socket): upper bounds of
 * power-of-two buckets, over what happened between two `stats` calls. */
typedef struct HistQ {
        uint64_t count;
        double p50_le, p99_le;
} HistQ;

typedef struct BenchDaemon {
        const char *backend;
        pid_t pid;
        char dir[64], socket[96], log[96];
        struct evd_client *ctl; /* the bench's own connection: status, stats, ping */
        char features[256];
        char version[32];
} BenchDaemon;

/* Completion counter for pipelined requests: a failure is fatal, the bench measures
 * success paths only. */
typedef struct Done {
        unsigned n;
        const char *what;
} Done;

/* evd-bench-options.c */
extern const char *const scenario_names[10]; /* one per SCEN_* bit */
extern const char *arg_evd;
extern const char *arg_json;
extern bool arg_quick;
extern unsigned arg_scenarios;
extern const char *arg_backends[MAX_BACKENDS];
extern size_t arg_n_backends;
extern int arg_cpu;
extern unsigned arg_samples;
extern unsigned arg_rounds;
extern unsigned arg_clients, arg_watches, arg_fanout;
extern double arg_duration;
extern bool arg_tp_split;
extern unsigned arg_reg_watches, arg_reg_reps;
extern unsigned arg_scale_watches;
extern unsigned arg_scale_timers;
extern unsigned arg_timers, arg_timer_clients;
extern double arg_timer_spread, arg_timer_lead;
void parse_argv(int argc, char **argv);

/* evd-bench-util.c */
extern void (*die_hook)(void);
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void die_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
uint64_t now_ns(void);
void sleep_ns(uint64_t ns);
uint64_t cpu_ns_self(void);
void *shm_new(size_t size);
void shm_free(void *p, size_t size);
pid_t child_fork(void);
uint64_t child_wait_cpu(pid_t pid, const char *what);
void child_wait(pid_t pid, const char *what);
void pin_self(int cpu);
void pin_process(pid_t pid, int cpu);
long proc_rss_kb(pid_t pid);
long proc_ring_rss_kb(pid_t pid);
void proc_cpu_ticks(pid_t pid, uint64_t *ret_user_ns, uint64_t *ret_sys_ns);
uint64_t proc_runtime_ns(pid_t pid);
int pipe_nb(int fds[2]);

/* evd-bench-report.c */
void jreal(json_t *o, const char *key, double v);
void jint(json_t *o, const char *key, uint64_t v);
void jbool(json_t *o, const char *key, bool v);
void jstr(json_t *o, const char *key, const char *v);
const char *verdict(bool met);
void summary_add(const char *target, size_t backend, bool met, const char *fmt,
                 double value);
json_t *summary_print(void);

/* evd-bench-dist.c */
Dist dist_of(int64_t *ns, size_t n);
json_t *dist_json(const Dist *d);

/* evd-bench-daemon.c */
struct evd_client *client_connect(const char *socket_path);
void client_pump(struct evd_client *c, int timeout_ms);
void client_pump_until(struct evd_client *c, const unsigned *counter, unsigned target,
                       const char *what);
int done_count(struct evd_client *c, int r, json_t *result, void *userdata);
json_t *ctl_call(BenchDaemon *d, const char *method);
void daemon_stats(BenchDaemon *d, DaemonStats *ret);
HistQ hist_between(const DaemonStats *a, const DaemonStats *b);
json_t *histq_json(const HistQ *q);
void daemon_start(BenchDaemon *d, const char *backend, const char *const *extra);
void daemon_stop(BenchDaemon *d);
void cleanup_daemons(void);
int reg_noop(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata);
void window_wait(struct evd_client *c, const Done *done, unsigned issued);

/* evd-bench-latency.c */
json_t *run_latency(BenchDaemon *daemons);

/* evd-bench-throughput.c */
json_t *run_throughput(BenchDaemon *daemons);

/* evd-bench-python.c */
json_t *run_python(BenchDaemon *daemons);

/* evd-bench-client.c */
json_t *run_client(BenchDaemon *unused);

/* evd-bench-crowd.c */
json_t *run_crowd(BenchDaemon *unused);

/* evd-bench-fairness.c */
json_t *run_fairness(BenchDaemon *unused);

/* evd-bench-saturate.c */
json_t *run_saturate(BenchDaemon *unused);

/* evd-bench-register.c */
json_t *run_register(BenchDaemon *daemons);

/* evd-bench-scale.c */
unsigned scale_watch_count(void);
json_t *run_scale(BenchDaemon *unused);

/* evd-bench-timers.c */
json_t *run_timers(BenchDaemon *unused);
