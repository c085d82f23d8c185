/*
 * evd-bench-scale.c - scenario 4: daemon memory per idle watch and per timer, each on a
 * fresh daemon.
 */

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "evd-bench.h"
#include "macro.h"

/* Per idle watch and per timer: 200 B plus the tag's own encoded bytes (none here: small
 * integers are kept inline). */
#define SCALE_TARGET_BYTES 200u

/* ---- 4. scale: memory per idle watch and per timer --------------------------------- */

/*
 * A fresh daemon each time. Clients connect first (their connections are part of the
 * baseline), then register everything; RSS delta / count. The clients close their read
 * ends once the daemon has its copy (libevd keeps a duplicate): a watch costs the client
 * 2 fds (the write end, which keeps the pipe from hanging up, and libevd's copy).
 */

enum { SC_CONNECTED = 1, SC_GO, SC_DONE, SC_STOP };

typedef struct ScaleShared {
        atomic_int phase;
        atomic_int state[16];
        uint64_t t0[16], t1[16];
} ScaleShared;

static int timer_noop(struct evd_client *c, uint64_t timer, uint64_t expirations, void *userdata) {
        return 0;
}

static void scale_client(const BenchDaemon *d, ScaleShared *sh, unsigned idx, unsigned n,
                         bool timers) {
        Done done = {.what = timers ? "scale: timer" : "scale: watch"};
        int(*fds)[2] = timers ? NULL : calloc(n, sizeof(*fds));
        struct evd_client *c;

        if (!timers && !fds)
                die("out of memory");
        c = client_connect(d->socket);
        if (evd_call(c, "ping", NULL, STEP_TIMEOUT_MS, NULL) < 0)
                die("scale: ping failed");
        for (unsigned i = 0; !timers && i < n; i++)
                if (pipe_nb(fds[i]) < 0)
                        die_errno("pipe2 (%u pipes)", i);
        atomic_store(&sh->state[idx], SC_CONNECTED);
        while (atomic_load(&sh->phase) < SC_GO)
                sleep_ns(1000000);

        sh->t0[idx] = now_ns();
        for (unsigned i = 0; i < n; i++) {
                int r;

                /* Timers an hour away (spread over a second so the heap is not degenerate). */
                if (timers)
                        r = evd_timer_after_async(c, 3600 * 1000000ull + i % 1000000u, 0,
                                                  timer_noop, NULL, done_count, &done, NULL);
                else
                        r = evd_watch_add_async(c, fds[i][0], EVD_IN, EVD_EDGE, reg_noop, NULL,
                                                done_count, &done, NULL);
                if (r < 0)
                        die("%s: %s", done.what, evd_strerror(r));
                window_wait(c, &done, i + 1);
        }
        client_pump_until(c, &done.n, n, done.what);
        sh->t1[idx] = now_ns();
        for (unsigned i = 0; !timers && i < n; i++)
                (void)safe_close(fds[i][0]);
        atomic_store(&sh->state[idx], SC_DONE);
        while (atomic_load(&sh->phase) < SC_STOP)
                client_pump(c, 100);
        _exit(0);
}

typedef struct ScaleResult {
        unsigned count, clients;
        long base_kb, full_kb, ring_base_kb, ring_full_kb;
        double per_object, per_object_rings, rate;
        double evd_us, evd_cpu; /* daemon CPU per registration; its share of the wall time */
} ScaleResult;

static void scale_wait(ScaleShared *sh, unsigned n, int state) {
        uint64_t deadline = now_ns() + STEP_TIMEOUT_MS * 1000000ull;

        for (unsigned i = 0; i < n; i++)
                while (atomic_load(&sh->state[i]) < state) {
                        if (now_ns() > deadline)
                                die("scale: client %u stuck", i);
                        sleep_ns(1000000);
                }
}

static ScaleResult scale_run(const char *backend, unsigned count, unsigned clients, bool timers) {
        char per_client[32], per_uid[32];
        const char *extra[] = {
                timers ? "--max-timers-per-client" : "--max-watches-per-client", per_client,
                timers ? "--max-timers-per-uid" : "--max-watches-per-uid", per_uid, NULL};
        ScaleShared *sh = shm_new(sizeof(ScaleShared));
        ScaleResult res = {.count = count, .clients = clients};
        unsigned each = (count + clients - 1) / clients;
        uint64_t t0 = UINT64_MAX, t1 = 0, cpu0, cpu1;
        pid_t pids[16];
        BenchDaemon d;

        /* Watches keep the daemon's defaults (the fd limit binds first); timer quotas are
         * raised to the count so they never do. */
        snprintf(per_client, sizeof(per_client), "%u", timers ? MAX(each, 1000000u) : 16384u);
        snprintf(per_uid, sizeof(per_uid), "%u",
                 timers ? MAX(count, 2000000u) : MAX(count, 32768u));
        daemon_start(&d, backend, extra);
        for (unsigned i = 0; i < clients; i++) {
                unsigned n = MIN(each, count - MIN(count, i * each));

                pids[i] = child_fork();
                if (pids[i] == 0)
                        scale_client(&d, sh, i, n, timers);
        }
        scale_wait(sh, clients, SC_CONNECTED);
        (void)json_decref(ctl_call(&d, "ping"));
        res.base_kb = proc_rss_kb(d.pid);
        res.ring_base_kb = proc_ring_rss_kb(d.pid);
        cpu0 = proc_runtime_ns(d.pid);
        atomic_store(&sh->phase, SC_GO);
        scale_wait(sh, clients, SC_DONE);
        cpu1 = proc_runtime_ns(d.pid);
        (void)json_decref(ctl_call(&d, "ping"));
        res.full_kb = proc_rss_kb(d.pid);
        res.ring_full_kb = proc_ring_rss_kb(d.pid);
        atomic_store(&sh->phase, SC_STOP);
        for (unsigned i = 0; i < clients; i++) {
                child_wait(pids[i], "scale client");
                t0 = MIN(t0, sh->t0[i]);
                t1 = MAX(t1, sh->t1[i]);
        }
        daemon_stop(&d);
        res.per_object = (double)(res.full_kb - res.base_kb) * 1024.0 / count;
        res.per_object_rings = (double)(res.ring_full_kb - res.ring_base_kb) * 1024.0 / count;
        res.rate = count / ((double)(t1 - t0) / 1e9);
        res.evd_us = (double)(cpu1 - cpu0) / count / 1e3;
        res.evd_cpu = (double)(cpu1 - cpu0) / (double)(t1 - t0);
        shm_free(sh, sizeof(ScaleShared));
        return res;
}

/* The daemon needs one fd per watch: take the fd limit it will run with (it raises its
 * soft limit to the hard one), minus slack for its own sockets and files. */
unsigned scale_watch_count(void) {
        struct rlimit rl;

        if (arg_scale_watches)
                return arg_scale_watches;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY ||
            rl.rlim_max > 1u << 20)
                return 16384;
        return rl.rlim_max > FD_SLACK * 2 ? (unsigned)rl.rlim_max - FD_SLACK
                                          : (unsigned)rl.rlim_max / 2;
}

static json_t *scale_json(const ScaleResult *r, const char *per_name) {
        json_t *j = json_object();

        jint(j, "count", r->count);
        jint(j, "clients", r->clients);
        jint(j, "base_rss_kb", (uint64_t)r->base_kb);
        jint(j, "rss_kb", (uint64_t)r->full_kb);
        jint(j, "base_ring_rss_kb", (uint64_t)r->ring_base_kb);
        jint(j, "ring_rss_kb", (uint64_t)r->ring_full_kb);
        jreal(j, per_name, r->per_object);
        jreal(j, "bytes_each_in_rings", r->per_object_rings);
        jbool(j, "target_met", r->per_object <= SCALE_TARGET_BYTES);
        jreal(j, "registered_per_s", r->rate);
        jreal(j, "evd_us_per_registration", r->evd_us);
        jreal(j, "evd_cpu_fraction", r->evd_cpu);
        return j;
}

static void scale_print_row(const char *backend, const char *what, const ScaleResult *r) {
        printf("   %-9s %-7s %8u %8ld %8ld %8.0f %9.0f %7s %10.0f %8.2f %7.0f%%\n", backend, what,
               r->count, r->base_kb, r->full_kb, r->per_object, r->per_object_rings,
               verdict(r->per_object <= SCALE_TARGET_BYTES), r->rate, r->evd_us, r->evd_cpu * 100);
}

json_t *run_scale(BenchDaemon *unused) {
        unsigned nw = scale_watch_count(), nt = arg_scale_timers;
        /* Clients within the per-client watch quota, and each within its own fd limit
         * (3 fds per watch while registering). */
        unsigned cw = MAX((nw + 4999) / 5000, 1u), ct = 4;
        ScaleResult w[MAX_BACKENDS], t[MAX_BACKENDS];
        json_t *j = json_object();

        for (size_t b = 0; b < arg_n_backends; b++) {
                w[b] = scale_run(arg_backends[b], nw, cw, false);
                t[b] = scale_run(arg_backends[b], nt, ct, true);
        }
        printf("\n4. Scale: daemon RSS per idle watch (%u clients) and per timer (%u clients), a\n"
               "   fresh daemon each: (VmRSS after registering - VmRSS with the clients\n"
               "   connected) / count. Kernel objects (pipes, poll entries) are not in RSS; the\n"
               "   io_uring rings the kernel maps into the daemon are, and are shown apart.\n"
               "   Target <= %u bytes each (the tags here are small integers, kept inline).\n",
               cw, ct, SCALE_TARGET_BYTES);
        printf("   %-9s %-7s %8s %8s %8s %8s %9s %7s %10s %8s %8s\n", "", "", "count", "base kB",
               "RSS kB", "B each", "in rings", "target", "added/s", "evd us", "evd CPU");
        for (size_t b = 0; b < arg_n_backends; b++) {
                summary_add("daemon bytes per idle watch <= 200", b, w[b].per_object <= SCALE_TARGET_BYTES, "%.0f",
                            w[b].per_object);
                summary_add("daemon bytes per timer <= 200", b, t[b].per_object <= SCALE_TARGET_BYTES, "%.0f",
                            t[b].per_object);
                scale_print_row(arg_backends[b], "watches", &w[b]);
                scale_print_row("", "timers", &t[b]);
                json_object_set_new(j, arg_backends[b],
                                    json_pack("{s:o,s:o}", "watches",
                                              scale_json(&w[b], "bytes_per_watch"), "timers",
                                              scale_json(&t[b], "bytes_per_timer")));
        }
        printf("   in rings: the part of \"B each\" in the io_uring ring mappings; added/s:\n"
               "   registration rate of all the clients together, through libevd (the pipes\n"
               "   are made before the clock starts); evd us, evd CPU: the daemon's CPU per\n"
               "   registration (schedstat), its share of the wall time.\n");
        return j;
}
