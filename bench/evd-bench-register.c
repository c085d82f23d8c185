/*
 * evd-bench-register.c - scenario 3: pipelined watch and unwatch requests per second.
 */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "evd-bench.h"
#include "macro.h"

/* ---- 3. registration -------------------------------------------------------------- */

/*
 * One client pipelines N watch requests (each carrying its pipe's read end as SCM_RIGHTS,
 * WINDOW in flight) and then N unwatch requests. Timed: from the first call to the last
 * completion. The pipes exist before the clock starts. Twice: one packet per request, and
 * batched (evd_client_batch_begin/end() around each BATCH requests: a packet of 32 fds,
 * one reply packet for it).
 */

#define BATCH 32

typedef struct RegShared {
        uint64_t add_ns, rm_ns, add_client_ns, rm_client_ns, add_evd_ns, rm_evd_ns;
} RegShared;

/* @i: the request just made; wait for the window only between batches. */
static void reg_issued(struct evd_client *c, const Done *done, unsigned i, unsigned n, bool batched) {
        if (batched && i % BATCH != BATCH - 1 && i != n - 1)
                return;
        if (batched)
                (void)evd_client_batch_end(c);
        window_wait(c, done, i + 1);
}

static void reg_client(const BenchDaemon *d, RegShared *out, unsigned n, bool batched) {
        int(*fds)[2] = calloc(n, sizeof(*fds));
        uint64_t *ids = calloc(n, sizeof(*ids));
        Done add = {.what = "register: watch"}, rm = {.what = "register: unwatch"};
        struct evd_client *c;
        uint64_t t0, c0, e0;

        if (!fds || !ids)
                die("out of memory");
        c = client_connect(d->socket);
        if (evd_call(c, "ping", NULL, STEP_TIMEOUT_MS, NULL) < 0)
                die("register: ping failed");
        for (unsigned i = 0; i < n; i++)
                if (pipe_nb(fds[i]) < 0)
                        die_errno("pipe2 (%u pipes)", i);

        t0 = now_ns(), c0 = cpu_ns_self(), e0 = proc_runtime_ns(d->pid);
        for (unsigned i = 0; i < n; i++) {
                int r;

                if (batched && i % BATCH == 0)
                        (void)evd_client_batch_begin(c);
                r = evd_watch_add_async(c, fds[i][0], EVD_IN, EVD_EDGE, reg_noop, NULL, done_count, &add, &ids[i]);
                if (r < 0)
                        die("register: watch: %s", evd_strerror(r));
                reg_issued(c, &add, i, n, batched);
        }
        client_pump_until(c, &add.n, n, add.what);
        out->add_ns = now_ns() - t0;
        out->add_client_ns = cpu_ns_self() - c0;
        out->add_evd_ns = proc_runtime_ns(d->pid) - e0;

        for (unsigned i = 0; i < n; i++)
                (void)safe_close(fds[i][0]);
        t0 = now_ns(), c0 = cpu_ns_self(), e0 = proc_runtime_ns(d->pid);
        for (unsigned i = 0; i < n; i++) {
                int r;

                if (batched && i % BATCH == 0)
                        (void)evd_client_batch_begin(c);
                r = evd_watch_remove_async(c, ids[i], done_count, &rm);
                if (r < 0)
                        die("register: unwatch: %s", evd_strerror(r));
                reg_issued(c, &rm, i, n, batched);
        }
        client_pump_until(c, &rm.n, n, rm.what);
        out->rm_ns = now_ns() - t0;
        out->rm_client_ns = cpu_ns_self() - c0;
        out->rm_evd_ns = proc_runtime_ns(d->pid) - e0;
        (void)evd_client_free(c);
        _exit(0);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct RegResult {
        double add, rm, add_evd, add_client, rm_evd, rm_client; /* per s; us per request */
} RegResult;

/* Median rates of @reps runs per backend, alternating which backend goes first. */
static void reg_measure(BenchDaemon *daemons, unsigned n, unsigned reps, bool batched, RegResult *ret) {
        double add[MAX_BACKENDS][16], rm[MAX_BACKENDS][16];
        RegShared sum[MAX_BACKENDS] = {0};
        RegShared *sh = shm_new(sizeof(RegShared));

        for (unsigned r = 0; r < reps; r++)
                for (size_t i = 0; i < arg_n_backends; i++) {
                        size_t b = (i + r) % arg_n_backends;
                        pid_t pid = child_fork();

                        if (pid == 0)
                                reg_client(&daemons[b], sh, n, batched);
                        child_wait(pid, "register client");
                        add[b][r] = n / ((double)sh->add_ns / 1e9);
                        rm[b][r] = n / ((double)sh->rm_ns / 1e9);
                        sum[b].add_client_ns += sh->add_client_ns;
                        sum[b].add_evd_ns += sh->add_evd_ns;
                        sum[b].rm_client_ns += sh->rm_client_ns;
                        sum[b].rm_evd_ns += sh->rm_evd_ns;
                }
        shm_free(sh, sizeof(RegShared));
        for (size_t b = 0; b < arg_n_backends; b++) {
                double total = (double)n * reps;

                ret[b] = (RegResult){
                        .add = median(add[b], reps),
                        .rm = median(rm[b], reps),
                        .add_evd = (double)sum[b].add_evd_ns / total / 1e3,
                        .add_client = (double)sum[b].add_client_ns / total / 1e3,
                        .rm_evd = (double)sum[b].rm_evd_ns / total / 1e3,
                        .rm_client = (double)sum[b].rm_client_ns / total / 1e3,
                };
        }
}

json_t *run_register(BenchDaemon *daemons) {
        unsigned reps = MIN(arg_reg_reps, 16u), n = arg_reg_watches;
        RegResult res[2][MAX_BACKENDS];
        json_t *j = json_object();

        for (int batched = 0; batched < 2; batched++)
                reg_measure(daemons, n, reps, batched, res[batched]);

        printf("\n3. Registration: one client pipelines %u watch requests (pipe read end passed\n"
               "   with SCM_RIGHTS, %u in flight), then %u unwatch; median of %u runs; CPU per\n"
               "   request. One packet per request, then batched: %u requests (and fds) per\n"
               "   packet (evd_client_batch_begin/end()), one reply packet each.\n",
               n, WINDOW, n, reps, BATCH);
        printf("   %-18s %10s %10s %10s   %10s %10s %10s\n", "", "watch/s", "evd us", "client us",
               "unwatch/s", "evd us", "client us");
        for (int batched = 0; batched < 2; batched++)
                for (size_t b = 0; b < arg_n_backends; b++) {
                        const RegResult *x = &res[batched][b];
                        char row[32];
                        json_t *jb = json_object();

                        snprintf(row, sizeof(row), "%s%s", arg_backends[b], batched ? " batched" : "");
                        printf("   %-18s %10.0f %10.2f %10.2f   %10.0f %10.2f %10.2f\n", row, x->add, x->add_evd,
                               x->add_client, x->rm, x->rm_evd, x->rm_client);
                        jreal(jb, "watch_per_s", x->add);
                        jreal(jb, "watch_evd_us", x->add_evd);
                        jreal(jb, "watch_client_us", x->add_client);
                        jreal(jb, "unwatch_per_s", x->rm);
                        jreal(jb, "unwatch_evd_us", x->rm_evd);
                        jreal(jb, "unwatch_client_us", x->rm_client);
                        if (batched) {
                                json_t *jo = json_object_get(j, arg_backends[b]);

                                json_object_set_new(jo, "batched", jb);
                        } else
                                json_object_set_new(j, arg_backends[b], jb);
                        if (batched)
                                summary_add("batched watch/s >= 100000", b, x->add >= 100000, "%.0f", x->add);
                }
        if (arg_n_backends == 2)
                printf("   io_uring/epoll watch/s: %.2fx one per packet, %.2fx batched\n",
                       res[0][0].add / res[0][1].add, res[1][0].add / res[1][1].add);
        printf("   evd us: the daemon's CPU (/proc/PID/task/*/schedstat) per request.\n");
        jint(j, "watches", n);
        jint(j, "runs", reps);
        jint(j, "in_flight", WINDOW);
        jint(j, "batch", BATCH);
        return j;
}
