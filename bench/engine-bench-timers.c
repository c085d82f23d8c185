/*
 * engine-bench-timers.c - the timers bench: insert, cancel, insert near, fire and live
 * passes of one-shot timers, each repetition of each contender in a fresh child.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine-bench.h"
#include "macro.h"

/* timers bench */

static const char *const t_names[_T_MAX] = {
        "insert cold 1..1000s", "cancel",          "insert warm 0..100ms",
        "fire (all due)",       "fire live (cpu)", "fire live (wall)",
};

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

int timers_run(TimerResult *results, size_t n) {
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

bool timer_ok(const TimerResult *r) {
        return r->available && !r->failed && r->reps_done > 0;
}

void timers_print(const TimerResult *results, size_t n) {
        const TimerResult *base = &results[TIMER_BASELINE];

        printf("\n== timers: %zu one-shot timers, %u reps; ns per timer (median of reps), "
               "[minor page faults] ==\n",
               n, arg_timer_reps);
        printf("%-20s", "phase");
        for (size_t c = 0; c < TIMER_N; c++)
                printf(" %25s", timer_contenders[c]->name);
        for (size_t c = 0; c < TIMER_N; c++)
                if (c != TIMER_BASELINE)
                        printf(" %9s", timer_contenders[c]->ratio_label);
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
