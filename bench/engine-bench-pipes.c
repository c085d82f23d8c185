/*
 * engine-bench-pipes.c - the pipes bench: N pipes, A active, each contender in turn
 * (rotated per repetition); setup, rounds, CPU time and the ratios against the baseline.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine-bench.h"
#include "macro.h"

/* pipes bench */

int pipes_open(unsigned n) {
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

void pipes_close(unsigned n) {
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

void io_config_run(IoConfig *cfg) {
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

bool io_result_ok(const IoResult *r) {
        return r->available && !r->failed && r->samples_n > 0;
}

double io_ratio(const IoConfig *cfg, size_t c, size_t base) {
        if (!io_result_ok(&cfg->results[c]) || !io_result_ok(&cfg->results[base]))
                return 0;
        return cfg->results[c].median_ns / cfg->results[base].median_ns;
}

double io_ratio_best(const IoConfig *cfg, size_t c, size_t base) {
        if (!io_result_ok(&cfg->results[c]) || !io_result_ok(&cfg->results[base]))
                return 0;
        return cfg->results[c].best_ns / cfg->results[base].best_ns;
}

double io_ratio_cpu(const IoConfig *cfg, size_t c, size_t base) {
        if (!io_result_ok(&cfg->results[c]) || !io_result_ok(&cfg->results[base]))
                return 0;
        return cfg->results[c].cpu_median_ns / cfg->results[base].cpu_median_ns;
}

/* What a poller costs is its time above the floor (the callbacks' own read + write, no
 * poll at all), measured in the same run: whole rounds hide it under the floor. Per read,
 * from the medians; 0 if either is missing. */
double io_poll_cost_ns(const IoConfig *cfg, size_t c) {
        if (!io_result_ok(&cfg->results[c]) || !io_result_ok(&cfg->results[IO_FLOOR]))
                return 0;
        return (cfg->results[c].median_ns - cfg->results[IO_FLOOR].median_ns) / (double)cfg->target;
}

/* @c's poller cost over @base's; 0 if it cannot be told (a poller no dearer than the floor
 * in this run is noise, not a ratio). */
double io_poll_cost_ratio(const IoConfig *cfg, size_t c, size_t base) {
        double a = io_poll_cost_ns(cfg, c), b = io_poll_cost_ns(cfg, base);

        return b > 0 ? a / b : 0;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

/* The same ratio rep by rep: each rep's poller cost over its own floor's and @base's, the
 * median of those. Slow drift in the machine (A=990's rep medians spread 30-60% on this
 * VM, the floor's own among them) moves a rep's three numbers together, and the
 * difference of two medians over the whole run does not cancel it. 0 if no rep has all
 * three, or none is told apart (a denominator at or below the floor). */
double io_poll_cost_ratio_paired(const IoConfig *cfg, size_t c, size_t base) {
        const IoResult *x = &cfg->results[c], *b = &cfg->results[base], *f = &cfg->results[IO_FLOOR];
        double ratios[IO_MAX_REPS];
        size_t n = 0;

        if (!io_result_ok(x) || !io_result_ok(b) || !io_result_ok(f))
                return 0;
        for (unsigned r = 0; r < x->reps_done && r < b->reps_done && r < f->reps_done; r++) {
                double below = (double)b->rep_median[r] - (double)f->rep_median[r];

                if (below > 0)
                        ratios[n++] = ((double)x->rep_median[r] - (double)f->rep_median[r]) / below;
        }
        if (n == 0)
                return 0;
        qsort(ratios, n, sizeof(*ratios), cmp_double);
        return n % 2 ? ratios[n / 2] : (ratios[n / 2 - 1] + ratios[n / 2]) / 2;
}

void io_config_print(const IoConfig *cfg) {
        printf("\n== pipes N=%u A=%u W=%" PRIu64 ": %u reps x %u rounds; median over all rounds "
               "==\n",
               cfg->n, cfg->active, cfg->target, cfg->reps, cfg->rounds);
        printf("%-17s %9s %7s %9s %7s %8s %7s %6s %5s %8s %6s %6s %7s %6s\n", "contender", "us/round",
               "ns/read", "cpu us/r", "spread", "setup ms", "free ms", "iter/r", "sys/r",
               "/libev-ep", "best", "cpu", "poll ns", "/ev-ep");
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
                if (c == IO_FLOOR)
                        printf(" %7s %6s", "-", "-");
                else
                        printf(" %7.1f %5.2fx", io_poll_cost_ns(cfg, c), io_poll_cost_ratio(cfg, c, IO_BASELINE));
                if (res->spurious)
                        printf("  (%" PRIu64 " empty wakeups)", res->spurious);
                printf("\n");
        }
        printf("poll ns: ns/read above floor(no poll)'s; /ev-ep: that over libev-epoll's.\n"
               "poller cost: engine(io_uring) %.2fx libev-epoll's (target <= 0.55x: %s), "
               "engine(epoll) %.2fx (target <= 1.0x: %s)\n",
               io_poll_cost_ratio(cfg, 0, IO_BASELINE), io_poll_cost_ratio(cfg, 0, IO_BASELINE) <= 0.55 ? "met" : "MISSED",
               io_poll_cost_ratio(cfg, 1, IO_BASELINE), io_poll_cost_ratio(cfg, 1, IO_BASELINE) <= 1.0 ? "met" : "MISSED");
        printf("paired by rep (each rep's own floor and libev-epoll, median of reps): "
               "engine(io_uring) %.2fx, engine(epoll) %.2fx, raw-uring %.2fx\n",
               io_poll_cost_ratio_paired(cfg, 0, IO_BASELINE), io_poll_cost_ratio_paired(cfg, 1, IO_BASELINE),
               io_poll_cost_ratio_paired(cfg, IO_RAW_URING, IO_BASELINE));
        if (io_ratio(cfg, 0, IO_URING_PEER) > 0)
                printf("engine(io_uring) / libev-iouring: %.2fx (best reps %.2fx, cpu %.2fx)\n",
                       io_ratio(cfg, 0, IO_URING_PEER), io_ratio_best(cfg, 0, IO_URING_PEER),
                       io_ratio_cpu(cfg, 0, IO_URING_PEER));
}
