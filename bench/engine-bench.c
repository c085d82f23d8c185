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
 */

#include "bench.h"

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/utsname.h>

#include "macro.h"

#define FD_SLACK 200u /* fds kept free for the loops' own (epoll, rings, eventfds, stdio) */
#define MAX_LIST 8

BenchPipes bench_pipes;

static const IoContender *const io_contenders[] = {
        &contender_engine_uring, &contender_engine_epoll, &contender_libev_epoll,
        &contender_libev_iouring, &contender_libuv,       &contender_libevent,
        &contender_raw_epoll,     &contender_floor,
};
#define IO_N ELEMENTSOF(io_contenders)
#define IO_BASELINE 2     /* libev-epoll */
#define IO_URING_PEER 3   /* libev-iouring */

static const TimerContender *const timer_contenders[] = {
        &timer_engine_uring,
        &timer_engine_epoll,
        &timer_libev,
};
#define TIMER_N ELEMENTSOF(timer_contenders)
#define TIMER_BASELINE 2

static unsigned arg_reps = 7;
static unsigned arg_rounds; /* 0: 100,000 reads per block, at least 10 rounds */
static unsigned arg_n[MAX_LIST] = { 1000, 0 }; /* 0: the largest N */
static unsigned arg_n_count = 2;
static unsigned arg_a[MAX_LIST] = { 100, 0 }; /* 0: N / 10 */
static unsigned arg_a_count = 2;
static unsigned arg_timers = 1000000;
static unsigned arg_timer_reps = 3;
static bool arg_io = true;
static bool arg_timer = true;
static int arg_cpu = -1;
static const char *arg_json;
static uint64_t arg_seed = 1;
static const char *arg_only;
static bool arg_quick;

static volatile const char *watchdog_what = "";

static void watchdog(int sig) {
        static const char msg[] = "\nengine-bench: watchdog: no progress in 60 s in ";
        const char *what = (const char *)watchdog_what;

        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)!write(STDERR_FILENO, what, strlen(what));
        (void)!write(STDERR_FILENO, "\n", 1);
        _exit(3);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

/* Median of @v[0..n) (sorts @v); 0 for an empty set. */
static double median(uint64_t *v, size_t n) {
        if (n == 0)
                return 0;
        qsort(v, n, sizeof(*v), cmp_u64);
        return n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
}

static uint64_t splitmix64(uint64_t *state) {
        uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static bool contender_selected(const char *name) {
        const char *p = arg_only;
        size_t len = strlen(name);

        if (!p)
                return true;
        while (*p) {
                const char *end = strchrnul(p, ',');

                if ((size_t)(end - p) == len && strncmp(p, name, len) == 0)
                        return true;
                p = *end ? end + 1 : end;
        }
        return false;
}

/* machine facts */

/* The 1-minute load average: the bench shares 2 CPUs with whatever else runs. */
static double loadavg(void) {
        double l = -1;
        FILE *f = fopen("/proc/loadavg", "re");

        if (f) {
                if (fscanf(f, "%lf", &l) != 1)
                        l = -1;
                (void)fclose(f);
        }
        return l;
}

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

static int raise_nofile(Facts *f) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        return -errno;
        }
        f->nofile_soft = rl.rlim_cur;
        f->nofile_hard = rl.rlim_max;
        return 0;
}

static void facts_collect(Facts *f) {
        struct utsname u;
        FILE *cpuinfo;
        char line[256];
        size_t len = 0;

        if (uname(&u) == 0)
                (void)snprintf(f->kernel, sizeof(f->kernel), "%s %s %s", u.sysname, u.release,
                               u.machine);
        f->cpus = sysconf(_SC_NPROCESSORS_ONLN);
        (void)snprintf(f->cpu_model, sizeof(f->cpu_model), "unknown");
        cpuinfo = fopen("/proc/cpuinfo", "re");
        if (cpuinfo) {
                while (fgets(line, sizeof(line), cpuinfo)) {
                        char *colon = strchr(line, ':');

                        if (strncmp(line, "model name", 10) != 0 || !colon)
                                continue;
                        colon += strspn(colon + 1, " \t") + 1;
                        colon[strcspn(colon, "\n")] = '\0';
                        (void)snprintf(f->cpu_model, sizeof(f->cpu_model), "%s", colon);
                        break;
                }
                (void)fclose(cpuinfo);
        }
        f->load_start = loadavg();
        f->features_r = bench_engine_facts(f->features, sizeof(f->features));
        for (size_t i = 0; i < IO_N && len < sizeof(f->versions); i++) {
                const char *v = io_contenders[i]->version ? io_contenders[i]->version() : NULL;

                if (!v || strstr(f->versions, v))
                        continue;
                len += (size_t)snprintf(f->versions + len, sizeof(f->versions) - len, "%s%s",
                                        len ? ", " : "", v);
        }
}

static void facts_print(const Facts *f) {
        printf("engine-bench: kernel %s, %ld CPUs (%s), RLIMIT_NOFILE %llu/%llu\n", f->kernel,
               f->cpus, f->cpu_model, (unsigned long long)f->nofile_soft,
               (unsigned long long)f->nofile_hard);
        printf("  engine io_uring features: %s\n", f->features);
        printf("  libraries: %s\n", f->versions);
        if (arg_cpu >= 0)
                printf("  pinned to CPU %d", arg_cpu);
        else
                printf("  not pinned");
        printf(", load average %.2f at start\n", f->load_start);
}

/* pipes bench */

typedef struct IoResult {
        bool available;
        bool failed;
        const char *why;
        uint64_t *samples;     /* wall ns per round, reps * rounds */
        uint64_t *cpu_samples; /* CPU ns per round: blind to time lost to other processes */
        size_t samples_n;
        uint64_t rep_median[64];
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

static int pipes_open(unsigned n) {
        bench_pipes.pipes = calloc(n, sizeof(*bench_pipes.pipes));
        if (!bench_pipes.pipes)
                return -ENOMEM;
        for (unsigned i = 0; i < n; i++) {
                int fds[2];

                if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
                        fprintf(stderr, "engine-bench: pipe2() #%u: %s\n", i, strerror(errno));
                        return -errno;
                }
                bench_pipes.pipes[i] = (BenchPipe){ .r = fds[0], .w = fds[1] };
        }
        return 0;
}

static void pipes_close(unsigned n) {
        for (unsigned i = 0; i < n && bench_pipes.pipes; i++) {
                (void)close(bench_pipes.pipes[i].r);
                (void)close(bench_pipes.pipes[i].w);
        }
        free(bench_pipes.pipes);
        bench_pipes.pipes = NULL;
}

/* Empty every pipe; returns how many held leftover bytes (a contender lost a byte). */
static unsigned pipes_drain(void) {
        unsigned dirty = 0;
        char buf[256];

        for (unsigned i = 0; i < bench_pipes.n; i++) {
                bool was_dirty = false;

                while (read(bench_pipes.pipes[i].r, buf, sizeof(buf)) > 0)
                        was_dirty = true;
                dirty += was_dirty;
        }
        return dirty;
}

/* Seed a round: one byte into each of A pipes spread evenly over N. */
static void pipes_round_start(void) {
        BenchPipes *p = &bench_pipes;

        p->reads = p->writes = 0;
        for (unsigned i = 0; i < p->active; i++) {
                unsigned idx = (unsigned)((uint64_t)i * p->n / p->active);

                if (write(p->pipes[idx].w, "e", 1) != 1)
                        p->failures++;
                p->writes++;
        }
}

static int io_run_block(IoConfig *cfg, size_t c, unsigned rep) {
        const IoContender *k = io_contenders[c];
        IoResult *res = &cfg->results[c];
        uint64_t t0, c0, waits0 = 0, sys0 = 0, *samples = res->samples + res->samples_n;
        uint64_t *cpu_samples = res->cpu_samples + res->samples_n;
        const char *why = NULL;
        unsigned dirty;
        int r;

        watchdog_what = k->name;
        (void)alarm(60);
        bench_pipes.empty = bench_pipes.failures = 0;
        t0 = bench_now_ns();
        r = k->setup(&why);
        res->setup[rep] = bench_now_ns() - t0;
        if (r == -EOPNOTSUPP) {
                res->available = false;
                res->why = why;
                k->teardown();
                return 0;
        }
        if (r < 0) {
                fprintf(stderr, "engine-bench: %s: setup failed: %s\n", k->name, strerror(-r));
                goto fail;
        }

        pipes_round_start(); /* warm-up */
        r = k->run();
        if (r < 0 || bench_pipes.reads != bench_pipes.target)
                goto round_fail;

        if (k->waits && k->waits() >= 0) {
                waits0 = (uint64_t)k->waits();
                res->has_waits = true;
        }
        if (k->syscalls && k->syscalls() >= 0) {
                sys0 = (uint64_t)k->syscalls();
                res->has_syscalls = true;
        }
        for (unsigned i = 0; i < cfg->rounds; i++) {
                pipes_round_start();
                c0 = bench_cpu_ns();
                t0 = bench_now_ns();
                r = k->run();
                samples[i] = bench_now_ns() - t0;
                cpu_samples[i] = bench_cpu_ns() - c0;
                if (r < 0 || bench_pipes.reads != bench_pipes.target)
                        goto round_fail;
        }
        if (res->has_waits)
                res->waits += (uint64_t)k->waits() - waits0;
        if (res->has_syscalls)
                res->syscalls += (uint64_t)k->syscalls() - sys0;
        res->rounds_done += cfg->rounds;
        res->rep_median[res->reps_done++] = (uint64_t)median(samples, cfg->rounds);
        res->samples_n += cfg->rounds;
        res->spurious += bench_pipes.empty;
        t0 = bench_now_ns();
        k->teardown();
        res->teardown[rep] = bench_now_ns() - t0;
        (void)alarm(0);
        if (bench_pipes.failures) {
                fprintf(stderr, "engine-bench: %s: %" PRIu64 " read/write failures\n", k->name,
                        bench_pipes.failures);
                res->failed = true;
        }
        dirty = pipes_drain();
        if (dirty) {
                fprintf(stderr, "engine-bench: %s: %u pipes not drained after the block\n",
                        k->name, dirty);
                res->failed = true;
        }
        return 0;

round_fail:
        fprintf(stderr, "engine-bench: %s: round failed (r=%d, read %" PRIu64 " of %" PRIu64 ")\n",
                k->name, r, bench_pipes.reads, bench_pipes.target);
fail:
        res->failed = true;
        k->teardown();
        (void)alarm(0);
        (void)pipes_drain();
        return r < 0 ? r : -EIO;
}

static void io_config_run(IoConfig *cfg) {
        bench_pipes.n = cfg->n;
        bench_pipes.active = cfg->active;
        bench_pipes.target = cfg->target;
        for (size_t c = 0; c < IO_N; c++) {
                IoResult *res = &cfg->results[c];

                res->available = contender_selected(io_contenders[c]->name);
                res->why = "not selected";
                res->samples = calloc((size_t)cfg->reps * cfg->rounds, sizeof(uint64_t));
                res->cpu_samples = calloc((size_t)cfg->reps * cfg->rounds, sizeof(uint64_t));
                if (!res->samples || !res->cpu_samples)
                        abort();
        }
        for (unsigned rep = 0; rep < cfg->reps; rep++) {
                for (size_t i = 0; i < IO_N; i++) {
                        size_t c = (rep + i) % IO_N;
                        IoResult *res = &cfg->results[c];

                        if (!res->available || res->failed)
                                continue;
                        (void)io_run_block(cfg, c, rep);
                }
                fprintf(stderr, ".");
        }
        fprintf(stderr, "\n");
        for (size_t c = 0; c < IO_N; c++) {
                IoResult *res = &cfg->results[c];
                uint64_t tmp[64];

                res->median_ns = median(res->samples, res->samples_n);
                res->cpu_median_ns = median(res->cpu_samples, res->samples_n);
                res->best_ns = 0;
                for (unsigned i = 0; i < res->reps_done; i++)
                        if (res->best_ns == 0 || (double)res->rep_median[i] < res->best_ns)
                                res->best_ns = (double)res->rep_median[i];
                memcpy(tmp, res->setup, sizeof(tmp));
                res->setup_ns = median(tmp, res->reps_done);
                memcpy(tmp, res->teardown, sizeof(tmp));
                res->teardown_ns = median(tmp, res->reps_done);
        }
}

static bool io_result_ok(const IoResult *r) {
        return r->available && !r->failed && r->samples_n > 0;
}

static double io_ratio(const IoConfig *cfg, size_t c, size_t base) {
        if (!io_result_ok(&cfg->results[c]) || !io_result_ok(&cfg->results[base]))
                return 0;
        return cfg->results[c].median_ns / cfg->results[base].median_ns;
}

static double io_ratio_best(const IoConfig *cfg, size_t c, size_t base) {
        if (!io_result_ok(&cfg->results[c]) || !io_result_ok(&cfg->results[base]))
                return 0;
        return cfg->results[c].best_ns / cfg->results[base].best_ns;
}

static double io_ratio_cpu(const IoConfig *cfg, size_t c, size_t base) {
        if (!io_result_ok(&cfg->results[c]) || !io_result_ok(&cfg->results[base]))
                return 0;
        return cfg->results[c].cpu_median_ns / cfg->results[base].cpu_median_ns;
}

static void io_config_print(const IoConfig *cfg) {
        printf("\n== pipes N=%u A=%u W=%" PRIu64 ": %u reps x %u rounds; median over all rounds "
               "==\n",
               cfg->n, cfg->active, cfg->target, cfg->reps, cfg->rounds);
        printf("%-17s %9s %7s %9s %7s %8s %7s %6s %5s %8s %6s %6s\n", "contender", "us/round",
               "ns/read", "cpu us/r", "spread", "setup ms", "free ms", "iter/r", "sys/r",
               "/libev-ep", "best", "cpu");
        for (size_t c = 0; c < IO_N; c++) {
                const IoResult *res = &cfg->results[c];
                uint64_t lo = UINT64_MAX, hi = 0;
                char waits[16] = "-", sys[16] = "-";

                if (!res->available) {
                        printf("%-17s unavailable: %s\n", io_contenders[c]->name, res->why);
                        continue;
                }
                if (!io_result_ok(res)) {
                        printf("%-17s FAILED (see stderr)\n", io_contenders[c]->name);
                        continue;
                }
                for (unsigned i = 0; i < res->reps_done; i++) {
                        lo = MIN(lo, res->rep_median[i]);
                        hi = MAX(hi, res->rep_median[i]);
                }
                if (res->has_waits)
                        (void)snprintf(waits, sizeof(waits), "%.1f",
                                       (double)res->waits / (double)res->rounds_done);
                if (res->has_syscalls)
                        (void)snprintf(sys, sizeof(sys), "%.1f",
                                       (double)res->syscalls / (double)res->rounds_done);
                printf("%-17s %9.1f %7.1f %9.1f %6.0f%% %8.2f %7.2f %6s %5s %8.2fx %5.2fx %5.2fx",
                       io_contenders[c]->name, res->median_ns / 1e3,
                       res->median_ns / (double)cfg->target, res->cpu_median_ns / 1e3,
                       100.0 * (double)(hi - lo) / res->median_ns, res->setup_ns / 1e6,
                       res->teardown_ns / 1e6, waits, sys, io_ratio(cfg, c, IO_BASELINE),
                       io_ratio_best(cfg, c, IO_BASELINE), io_ratio_cpu(cfg, c, IO_BASELINE));
                if (res->spurious)
                        printf("  (%" PRIu64 " empty wakeups)", res->spurious);
                printf("\n");
        }
        if (io_ratio(cfg, 0, IO_URING_PEER) > 0)
                printf("engine(io_uring) / libev-iouring: %.2fx (best reps %.2fx, cpu %.2fx)\n",
                       io_ratio(cfg, 0, IO_URING_PEER), io_ratio_best(cfg, 0, IO_URING_PEER),
                       io_ratio_cpu(cfg, 0, IO_URING_PEER));
}

/* timers bench */

enum {
        T_INSERT,      /* random deadlines 1..1000 s, into a fresh loop */
        T_CANCEL,
        T_INSERT_NEAR, /* deadlines 0..100 ms, into the loop the cancel emptied */
        T_FIRE,        /* all due, run until all fired */
        T_LIVE_CPU,    /* the loop running while 0..100 ms deadlines come due: CPU time */
        T_LIVE_WALL,
        _T_MAX,
};

static const char *const t_names[_T_MAX] = {
        "insert cold 1..1000s", "cancel",          "insert warm 0..100ms",
        "fire (all due)",       "fire live (cpu)", "fire live (wall)",
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

static void sleep_ns(uint64_t ns) {
        struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
                               .tv_nsec = (long)(ns % 1000000000u) };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static uint64_t minor_faults(void) {
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 0;
        return (uint64_t)ru.ru_minflt;
}

/* One repetition of one timer contender, as the child that ran it reports it. */
typedef struct TimerSample {
        int r; /* 0, -EOPNOTSUPP (then why), or the failure */
        const char *why; /* a string literal: the same address in parent and child */
        uint64_t ns[_T_MAX];
        uint64_t faults[_T_MAX];
} TimerSample;

/* A timed phase: wall time, CPU time and minor page faults between begin and end. */
typedef struct Phase {
        uint64_t wall, cpu, faults;
} Phase;

static Phase phase_begin(void) {
        return (Phase){ .faults = minor_faults(), .cpu = bench_cpu_ns(), .wall = bench_now_ns() };
}

static void phase_end(const Phase *p, TimerSample *out, unsigned t) {
        uint64_t wall = bench_now_ns(), cpu = bench_cpu_ns();

        out->ns[t] = t == T_LIVE_CPU ? cpu - p->cpu : wall - p->wall;
        out->faults[t] = minor_faults() - p->faults;
}

static int timer_run_block(TimerSample *out, const TimerContender *k, size_t n,
                           const uint64_t *far_ns, const double *far_s, const uint64_t *near_ns,
                           const double *near_s) {
        int64_t fired;
        Phase p;
        int r;

        r = k->setup(n, &out->why);
        if (r < 0)
                return r;

        k->now_update();
        p = phase_begin();
        r = k->insert(n, far_ns, far_s);
        phase_end(&p, out, T_INSERT);
        if (r < 0)
                return r;
        p = phase_begin();
        r = k->cancel(n);
        phase_end(&p, out, T_CANCEL);
        if (r < 0)
                return r;

        k->now_update();
        p = phase_begin();
        r = k->insert(n, near_ns, near_s);
        phase_end(&p, out, T_INSERT_NEAR);
        if (r < 0)
                return r;
        sleep_ns(110 * 1000000u); /* past every deadline: the run below only dispatches */
        p = phase_begin();
        fired = k->run(n);
        phase_end(&p, out, T_FIRE);
        if (fired != (int64_t)n)
                return fired < 0 ? (int)fired : -EIO;
        k->release(n);

        k->now_update();
        r = k->insert(n, near_ns, near_s);
        if (r < 0)
                return r;
        p = phase_begin();
        fired = k->run(n);
        phase_end(&p, out, T_LIVE_WALL);
        phase_end(&p, out, T_LIVE_CPU);
        if (fired != (int64_t)n)
                return fired < 0 ? (int)fired : -EIO;
        k->release(n);
        return 0;
}

/* Run one block in a fresh child, so every contender starts from the same memory state:
 * a loop's first growth really is cold (page faults included), and no contender inherits
 * what another one's allocator kept. */
static int timer_run_forked(TimerResult *res, const TimerContender *k, size_t n,
                            const uint64_t *far_ns, const double *far_s, const uint64_t *near_ns,
                            const double *near_s) {
        TimerSample sample = { .r = -EIO };
        int fds[2], status;
        ssize_t got;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        fflush(stdout);
        pid = fork();
        if (pid < 0) {
                (void)close(fds[0]);
                (void)close(fds[1]);
                return -errno;
        }
        if (pid == 0) {
                (void)close(fds[0]);
                watchdog_what = k->name;
                (void)alarm(60);
                sample.r = timer_run_block(&sample, k, n, far_ns, far_s, near_ns, near_s);
                k->teardown();
                (void)!write(fds[1], &sample, sizeof(sample));
                _exit(0);
        }
        (void)close(fds[1]);
        do
                got = read(fds[0], &sample, sizeof(sample));
        while (got < 0 && errno == EINTR);
        (void)close(fds[0]);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (got != (ssize_t)sizeof(sample))
                sample.r = -EIO;
        if (sample.r == -EOPNOTSUPP) {
                res->available = false;
                res->why = sample.why;
                return 0;
        }
        if (sample.r < 0) {
                fprintf(stderr, "engine-bench: timers %s failed: %s\n", k->name,
                        strerror(-sample.r));
                res->failed = true;
                return sample.r;
        }
        for (unsigned t = 0; t < _T_MAX; t++) {
                res->ns[t][res->reps_done] = sample.ns[t];
                res->faults[t][res->reps_done] = sample.faults[t];
        }
        res->reps_done++;
        return 0;
}

static int timers_run(TimerResult *results, size_t n) {
        _cleanup_free_ uint64_t *far_ns = NULL, *near_ns = NULL;
        _cleanup_free_ double *far_s = NULL, *near_s = NULL;
        uint64_t seed = arg_seed;

        far_ns = malloc(n * sizeof(*far_ns));
        near_ns = malloc(n * sizeof(*near_ns));
        far_s = malloc(n * sizeof(*far_s));
        near_s = malloc(n * sizeof(*near_s));
        if (!far_ns || !near_ns || !far_s || !near_s)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                far_ns[i] = 1000000000u + splitmix64(&seed) % (999 * UINT64_C(1000000000) + 1);
                near_ns[i] = splitmix64(&seed) % (100 * UINT64_C(1000000) + 1);
                far_s[i] = (double)far_ns[i] / 1e9;
                near_s[i] = (double)near_ns[i] / 1e9;
        }
        for (size_t c = 0; c < TIMER_N; c++) {
                results[c].available = contender_selected(timer_contenders[c]->name);
                results[c].why = "not selected";
        }
        for (unsigned rep = 0; rep < arg_timer_reps; rep++) {
                for (size_t i = 0; i < TIMER_N; i++) {
                        size_t c = (rep + i) % TIMER_N;

                        if (!results[c].available || results[c].failed)
                                continue;
                        (void)timer_run_forked(&results[c], timer_contenders[c], n, far_ns,
                                               far_s, near_ns, near_s);
                }
                fprintf(stderr, ".");
        }
        fprintf(stderr, "\n");
        for (size_t c = 0; c < TIMER_N; c++)
                for (unsigned t = 0; t < _T_MAX; t++) {
                        TimerResult *res = &results[c];

                        res->median[t] = median(res->ns[t], res->reps_done) /
                                         (t == T_LIVE_WALL ? 1 : (double)n);
                        res->median_faults[t] = median(res->faults[t], res->reps_done);
                }
        return 0;
}

static bool timer_ok(const TimerResult *r) {
        return r->available && !r->failed && r->reps_done > 0;
}

static void timers_print(const TimerResult *results, size_t n) {
        const TimerResult *base = &results[TIMER_BASELINE];

        printf("\n== timers: %zu one-shot timers, %u reps; ns per timer (median of reps), "
               "[minor page faults] ==\n",
               n, arg_timer_reps);
        printf("%-20s", "phase");
        for (size_t c = 0; c < TIMER_N; c++)
                printf(" %25s", timer_contenders[c]->name);
        for (size_t c = 0; c < TIMER_N; c++)
                if (c != TIMER_BASELINE)
                        printf(" %9s", c == 0 ? "uring/ev" : "epoll/ev");
        printf("\n");
        for (unsigned t = 0; t < _T_MAX; t++) {
                bool wall = t == T_LIVE_WALL;

                printf("%-20s", wall ? "fire live (wall ms)" : t_names[t]);
                for (size_t c = 0; c < TIMER_N; c++) {
                        const TimerResult *res = &results[c];

                        if (!timer_ok(res))
                                printf(" %25s", res->failed ? "FAILED" : "unavailable");
                        else if (wall)
                                printf(" %25.1f", res->median[t] / 1e6);
                        else if (t == T_LIVE_CPU)
                                printf(" %25.1f", res->median[t]);
                        else
                                printf(" %15.1f [%7.0f]", res->median[t], res->median_faults[t]);
                }
                for (size_t c = 0; c < TIMER_N; c++) {
                        if (c == TIMER_BASELINE)
                                continue;
                        if (timer_ok(&results[c]) && timer_ok(base) && !wall)
                                printf(" %8.2fx", results[c].median[t] / base->median[t]);
                        else
                                printf(" %9s", "-");
                }
                printf("\n");
        }
        for (size_t c = 0; c < TIMER_N; c++)
                if (!timer_ok(&results[c]) && !results[c].failed)
                        printf("%s unavailable: %s\n", timer_contenders[c]->name, results[c].why);
}

/* JSON */

static void json_write(FILE *f, const Facts *facts, const IoConfig *cfgs, size_t ncfg,
                       const TimerResult *timers, size_t n_timers) {
        fprintf(f, "{\n  \"machine\": {\"kernel\": \"%s\", \"cpus\": %ld, \"cpu_model\": \"%s\", "
                   "\"nofile\": %llu, \"engine_features\": \"%s\", \"libraries\": \"%s\", "
                   "\"pinned_cpu\": %d, \"loadavg_start\": %.2f, \"loadavg_end\": %.2f},\n",
                facts->kernel, facts->cpus, facts->cpu_model,
                (unsigned long long)facts->nofile_soft, facts->features, facts->versions,
                arg_cpu, facts->load_start, loadavg());
        fprintf(f, "  \"pipes\": [");
        for (size_t i = 0; i < ncfg; i++) {
                const IoConfig *cfg = &cfgs[i];

                fprintf(f, "%s\n    {\"n\": %u, \"active\": %u, \"writes\": %" PRIu64
                           ", \"reps\": %u, \"rounds\": %u, \"contenders\": [",
                        i ? "," : "", cfg->n, cfg->active, cfg->target, cfg->reps, cfg->rounds);
                for (size_t c = 0; c < IO_N; c++) {
                        const IoResult *res = &cfg->results[c];

                        fprintf(f, "%s\n      {\"name\": \"%s\", ", c ? "," : "",
                                io_contenders[c]->name);
                        if (!io_result_ok(res)) {
                                fprintf(f, "\"available\": false, \"failed\": %s}",
                                        res->failed ? "true" : "false");
                                continue;
                        }
                        fprintf(f, "\"available\": true, \"median_round_ns\": %.0f, "
                                   "\"setup_ns\": %.0f, \"teardown_ns\": %.0f, "
                                   "\"ratio_libev_epoll\": %.4f, "
                                   "\"best_rep_ratio_libev_epoll\": %.4f, "
                                   "\"cpu_median_round_ns\": %.0f, "
                                   "\"cpu_ratio_libev_epoll\": %.4f, \"rep_median_ns\": [",
                                res->median_ns, res->setup_ns, res->teardown_ns,
                                io_ratio(cfg, c, IO_BASELINE), io_ratio_best(cfg, c, IO_BASELINE),
                                res->cpu_median_ns, io_ratio_cpu(cfg, c, IO_BASELINE));
                        for (unsigned r = 0; r < res->reps_done; r++)
                                fprintf(f, "%s%" PRIu64, r ? ", " : "", res->rep_median[r]);
                        fprintf(f, "]");
                        if (res->has_waits)
                                fprintf(f, ", \"iterations_per_round\": %.2f",
                                        (double)res->waits / (double)res->rounds_done);
                        if (res->has_syscalls)
                                fprintf(f, ", \"syscalls_per_round\": %.2f",
                                        (double)res->syscalls / (double)res->rounds_done);
                        fprintf(f, ", \"empty_wakeups\": %" PRIu64 "}", res->spurious);
                }
                fprintf(f, "\n    ], \"engine_uring_vs_libev_iouring\": %.4f}",
                        io_ratio(cfg, 0, IO_URING_PEER));
        }
        fprintf(f, "\n  ],\n  \"timers\": {\"count\": %zu, \"reps\": %u, \"contenders\": [",
                n_timers, arg_timer_reps);
        for (size_t c = 0; timers && c < TIMER_N; c++) {
                static const char *const keys[_T_MAX] = {
                        "insert_cold", "cancel",        "insert_warm",
                        "fire_due",    "fire_live_cpu", "fire_live_wall_total",
                };
                const TimerResult *res = &timers[c];

                fprintf(f, "%s\n    {\"name\": \"%s\", \"available\": %s", c ? "," : "",
                        timer_contenders[c]->name, timer_ok(res) ? "true" : "false");
                for (unsigned t = 0; timer_ok(res) && t < _T_MAX; t++) {
                        fprintf(f, ", \"%s_ns\": %.2f", keys[t], res->median[t]);
                        if (t != T_LIVE_WALL && t != T_LIVE_CPU)
                                fprintf(f, ", \"%s_minor_faults\": %.0f", keys[t],
                                        res->median_faults[t]);
                        if (t != T_LIVE_WALL && timer_ok(&timers[TIMER_BASELINE]))
                                fprintf(f, ", \"%s_ratio_libev\": %.4f", keys[t],
                                        res->median[t] / timers[TIMER_BASELINE].median[t]);
                }
                fprintf(f, "}");
        }
        fprintf(f, "\n  ]}\n}\n");
}

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
