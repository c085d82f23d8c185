/*
 * evd-bench-register.c - scenario 3: pipelined watch and unwatch requests per second.
 */

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "evd-bench.h"
#include "macro.h"

/* ---- 3. registration -------------------------------------------------------------- */

/*
 * One client pipelines N watch requests (each carrying its pipe's read end as SCM_RIGHTS,
 * WINDOW in flight) and then N unwatch requests. Timed: from the first call to the last
 * completion. The pipes exist before the clock starts.
 */

typedef struct RegShared {
        uint64_t add_ns, rm_ns, add_client_ns, rm_client_ns, add_evd_ns, rm_evd_ns;
} RegShared;

static void reg_client(const BenchDaemon *d, RegShared *out, unsigned n) {
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
                int r = evd_watch_add_async(c, fds[i][0], EVD_IN, EVD_EDGE, reg_noop, NULL,
                                            done_count, &add, &ids[i]);

                if (r < 0)
                        die("register: watch: %s", evd_strerror(r));
                window_wait(c, &add, i + 1);
        }
        client_pump_until(c, &add.n, n, add.what);
        out->add_ns = now_ns() - t0;
        out->add_client_ns = cpu_ns_self() - c0;
        out->add_evd_ns = proc_runtime_ns(d->pid) - e0;

        for (unsigned i = 0; i < n; i++)
                (void)safe_close(fds[i][0]);
        t0 = now_ns(), c0 = cpu_ns_self(), e0 = proc_runtime_ns(d->pid);
        for (unsigned i = 0; i < n; i++) {
                int r = evd_watch_remove_async(c, ids[i], done_count, &rm);

                if (r < 0)
                        die("register: unwatch: %s", evd_strerror(r));
                window_wait(c, &rm, i + 1);
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

json_t *run_register(BenchDaemon *daemons) {
        unsigned reps = arg_reg_reps, n = arg_reg_watches;
        double add[MAX_BACKENDS][16], rm[MAX_BACKENDS][16];
        RegShared sum[MAX_BACKENDS] = {0};
        RegShared *sh = shm_new(sizeof(RegShared));
        json_t *j = json_object();

        reps = MIN(reps, 16u);
        for (unsigned r = 0; r < reps; r++)
                for (size_t i = 0; i < arg_n_backends; i++) {
                        size_t b = (i + r) % arg_n_backends;
                        pid_t pid = child_fork();

                        if (pid == 0)
                                reg_client(&daemons[b], sh, n);
                        child_wait(pid, "register client");
                        add[b][r] = n / ((double)sh->add_ns / 1e9);
                        rm[b][r] = n / ((double)sh->rm_ns / 1e9);
                        sum[b].add_client_ns += sh->add_client_ns;
                        sum[b].add_evd_ns += sh->add_evd_ns;
                        sum[b].rm_client_ns += sh->rm_client_ns;
                        sum[b].rm_evd_ns += sh->rm_evd_ns;
                }
        shm_free(sh, sizeof(RegShared));

        printf("\n3. Registration: one client pipelines %u watch requests (pipe read end passed\n"
               "   with SCM_RIGHTS, %u in flight), then %u unwatch; median of %u runs; CPU per\n"
               "   request.\n",
               n, WINDOW, n, reps);
        printf("   %-9s %10s %10s %10s   %10s %10s %10s\n", "", "watch/s", "evd us", "client us",
               "unwatch/s", "evd us", "client us");
        for (size_t b = 0; b < arg_n_backends; b++) {
                double total = (double)n * reps, a = median(add[b], reps), u = median(rm[b], reps);
                double add_evd = (double)sum[b].add_evd_ns / total / 1e3;
                double add_client = (double)sum[b].add_client_ns / total / 1e3;
                double rm_evd = (double)sum[b].rm_evd_ns / total / 1e3;
                double rm_client = (double)sum[b].rm_client_ns / total / 1e3;
                json_t *jb = json_object();

                printf("   %-9s %10.0f %10.2f %10.2f   %10.0f %10.2f %10.2f\n", arg_backends[b], a,
                       add_evd, add_client, u, rm_evd, rm_client);
                jreal(jb, "watch_per_s", a);
                jreal(jb, "watch_evd_us", add_evd);
                jreal(jb, "watch_client_us", add_client);
                jreal(jb, "unwatch_per_s", u);
                jreal(jb, "unwatch_evd_us", rm_evd);
                jreal(jb, "unwatch_client_us", rm_client);
                json_object_set_new(j, arg_backends[b], jb);
        }
        printf("   evd us: the daemon's CPU (/proc/PID/task/*/schedstat) per request.\n");
        jint(j, "watches", n);
        jint(j, "runs", reps);
        jint(j, "in_flight", WINDOW);
        return j;
}
