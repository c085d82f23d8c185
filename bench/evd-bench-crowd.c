/*
 * evd-bench-crowd.c - scenario 8: what size costs. The most watches the fd limit allows,
 * spread over 1,000 clients, next to 100 watches over 4 clients, in the same run, so the
 * growth of cost with size is visible.
 *
 * Client processes (as many as the machine has CPUs, at least 2) hold the clients, each a
 * libevd connection of its own, all polled through one epoll per process. Each client has
 * one pipe and watches its read end W times (edge): one write wakes W watches, and the
 * W-th callback drains the pipe. Two passes, a fresh daemon each:
 *   rate     closed loop: the W-th callback writes the next byte, so every client always
 *            has one wakeup in flight (1,000 at once in the big case): notifications per
 *            second and the daemon's CPU per notification (/proc/PID/stat).
 *   latency  paced: the processes write to idle clients' pipes, round robin, at a fixed
 *            total of CROWD_PACED_RATE notifications a second (below what either size
 *            sustains), and time each write to the pipe's first callback. A closed loop
 *            would measure its own queue instead (Little's law: 1,000 wakeups in flight at
 *            30,000 rounds a second wait 33 ms whatever the daemon does).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "evd-bench.h"
#include "macro.h"

#define CROWD_CLIENTS 1000u
#define CROWD_SAMPLES 100000u     /* latency samples kept per process */
#define CROWD_PACED_RATE 100000.0 /* notifications a second in the latency pass */

enum { CR_SETUP, CR_RUN, CR_MEASURE, CR_END, CR_STOP };

typedef struct CrowdSlot {
        atomic_int state;
        uint64_t t0, t1, n0, n1;
        uint32_t n_samples;
        uint64_t overruns; /* paced writes due while every client was still busy */
} CrowdSlot;

typedef struct CrowdShared {
        atomic_int phase;
        CrowdSlot slot[16];
        int64_t samples[]; /* CROWD_SAMPLES per process */
} CrowdShared;

typedef struct CrowdClient {
        struct evd_client *c;
        int rfd, wfd;
        unsigned waiting, fanout;
        bool paced, busy;
        uint64_t written_ns;
        uint64_t *count;
        CrowdShared *sh;
        CrowdSlot *slot;
        int64_t *samples;
} CrowdClient;

static int crowd_ready(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        CrowdClient *k = userdata;
        char buf[64];

        (void)c, (void)watch, (void)revents;
        (*k->count)++;
        if (k->paced && k->waiting == k->fanout && atomic_load(&k->sh->phase) == CR_MEASURE &&
            k->slot->n_samples < CROWD_SAMPLES)
                k->samples[k->slot->n_samples++] = (int64_t)(now_ns() - k->written_ns);
        if (--k->waiting > 0)
                return 0;
        k->waiting = k->fanout;
        (void)read(k->rfd, buf, sizeof(buf));
        if (k->paced) {
                k->busy = false;
                return 0;
        }
        k->written_ns = now_ns();
        if (write(k->wfd, "x", 1) != 1 && errno != EAGAIN)
                die_errno("crowd: write");
        return 0;
}

static void crowd_snapshot(CrowdSlot *slot, int state, uint64_t count) {
        if (state == CR_MEASURE)
                slot->t0 = now_ns(), slot->n0 = count;
        else
                slot->t1 = now_ns(), slot->n1 = count;
        atomic_store(&slot->state, state);
}

/* One paced write, to the next idle client after @next; false if all are busy. */
static bool crowd_paced_write(CrowdClient *k, unsigned n_clients, unsigned *next) {
        for (unsigned j = 0; j < n_clients; j++) {
                CrowdClient *x = &k[(*next + j) % n_clients];

                if (x->busy)
                        continue;
                *next = (*next + j + 1) % n_clients;
                x->busy = true;
                x->written_ns = now_ns();
                if (write(x->wfd, "x", 1) != 1)
                        die_errno("crowd: write");
                return true;
        }
        return false;
}

/* @writes_per_s: the paced pass's rate for this process; 0: the closed loop. */
static void crowd_process(const BenchDaemon *d, CrowdShared *sh, unsigned proc, unsigned n_clients,
                          unsigned fanout, double writes_per_s) {
        CrowdClient *k = calloc(n_clients, sizeof(*k));
        struct epoll_event ev[64];
        Done done = {.what = "crowd: watch"};
        uint64_t count = 0, interval_ns = writes_per_s > 0 ? (uint64_t)(1e9 / writes_per_s) : 0, due;
        unsigned next = 0;
        int ep = epoll_create1(EPOLL_CLOEXEC), ph;

        if (!k || ep < 0)
                die_errno("crowd: setup");
        for (unsigned i = 0; i < n_clients; i++) {
                struct epoll_event e = {.events = EPOLLIN, .data.ptr = &k[i]};
                int fds[2];

                if (pipe_nb(fds) < 0)
                        die_errno("pipe2");
                k[i] = (CrowdClient){.c = client_connect(d->socket), .rfd = fds[0], .wfd = fds[1],
                                     .waiting = fanout, .fanout = fanout, .paced = interval_ns > 0,
                                     .count = &count, .sh = sh,
                                     .slot = &sh->slot[proc], .samples = sh->samples + (size_t)proc * CROWD_SAMPLES};
                (void)evd_client_batch_begin(k[i].c);
                for (unsigned w = 0; w < fanout; w++) {
                        int r = evd_watch_add_async(k[i].c, fds[0], EVD_IN, EVD_EDGE, crowd_ready, &k[i],
                                                    done_count, &done, NULL);

                        if (r < 0)
                                die("crowd: watch: %s", evd_strerror(r));
                }
                (void)evd_client_batch_end(k[i].c);
                if (epoll_ctl(ep, EPOLL_CTL_ADD, evd_client_fd(k[i].c), &e) < 0)
                        die_errno("crowd: epoll_ctl");
        }
        for (uint64_t deadline = now_ns() + STEP_TIMEOUT_MS * 1000000ull; done.n < n_clients * fanout;) {
                int n = epoll_wait(ep, ev, (int)ELEMENTSOF(ev), 100);

                if (now_ns() > deadline)
                        die("crowd: %u of %u watches registered", done.n, n_clients * fanout);
                for (int i = 0; i < n; i++)
                        if (evd_client_dispatch(((CrowdClient *)ev[i].data.ptr)->c) < 0)
                                die("crowd: dispatch while registering");
        }
        atomic_store(&sh->slot[proc].state, CR_RUN);
        while (atomic_load(&sh->phase) < CR_RUN)
                sleep_ns(1000000);
        for (unsigned i = 0; i < n_clients && !interval_ns; i++) {
                k[i].written_ns = now_ns();
                if (write(k[i].wfd, "x", 1) != 1)
                        die_errno("crowd: write");
        }
        due = now_ns();
        while ((ph = atomic_load(&sh->phase)) != CR_STOP) {
                struct timespec wait = {.tv_nsec = 10000000};
                uint64_t now;
                int n;

                if (ph >= CR_MEASURE && atomic_load(&sh->slot[proc].state) < CR_MEASURE)
                        crowd_snapshot(&sh->slot[proc], CR_MEASURE, count);
                if (ph >= CR_END && atomic_load(&sh->slot[proc].state) < CR_END)
                        crowd_snapshot(&sh->slot[proc], CR_END, count);
                if (interval_ns) {
                        for (now = now_ns(); due <= now; due += interval_ns)
                                if (!crowd_paced_write(k, n_clients, &next) && ph == CR_MEASURE)
                                        sh->slot[proc].overruns++;
                        wait.tv_nsec = (long)MIN(due - now, 10000000ull);
                }
                n = epoll_pwait2(ep, ev, (int)ELEMENTSOF(ev), &wait, NULL);
                for (int i = 0; i < n; i++) {
                        int r = evd_client_dispatch(((CrowdClient *)ev[i].data.ptr)->c);

                        if (r < 0)
                                die("crowd: dispatch: %s", evd_strerror(r));
                }
        }
        for (unsigned i = 0; i < n_clients; i++)
                (void)evd_client_free(k[i].c);
        _exit(0);
}

typedef struct CrowdResult {
        unsigned clients, watches, fanout;
        double rate, evd_us; /* the closed loop */
        Dist latency;        /* paced */
        uint64_t overruns;
} CrowdResult;

static void crowd_wait_state(CrowdShared *sh, unsigned n, int state) {
        uint64_t deadline = now_ns() + STEP_TIMEOUT_MS * 1000000ull;

        for (unsigned i = 0; i < n; i++)
                while (atomic_load(&sh->slot[i].state) < state) {
                        if (now_ns() > deadline)
                                die("crowd: client process %u stuck before phase %d", i, state);
                        sleep_ns(1000000);
                }
}

typedef struct CrowdPass {
        double rate, evd_us;
        Dist latency;
        uint64_t overruns;
} CrowdPass;

/* One pass on a fresh daemon; @paced: the latency pass, else the closed loop. */
static CrowdPass crowd_pass(const char *backend, unsigned clients, unsigned fanout, bool paced) {
        unsigned procs = MIN(MAX((unsigned)sysconf(_SC_NPROCESSORS_ONLN), 2u), MIN(clients, 16u));
        size_t size = sizeof(CrowdShared) + (size_t)procs * CROWD_SAMPLES * sizeof(int64_t);
        char per_uid[16], per_client[16], n_clients[16];
        const char *const extra[] = {"--max-watches-per-uid", per_uid, "--max-watches-per-client", per_client,
                                     "--max-clients-per-uid", n_clients, NULL};
        CrowdShared *sh = shm_new(size);
        CrowdPass res = {0};
        uint64_t user0, sys0, user1, sys1, n = 0;
        double secs = 0;
        int64_t *all;
        size_t n_all = 0;
        pid_t pids[16];
        BenchDaemon d;

        snprintf(per_uid, sizeof(per_uid), "%u", MAX(clients * fanout, 16u));
        snprintf(per_client, sizeof(per_client), "%u", MAX(fanout, 16u));
        snprintf(n_clients, sizeof(n_clients), "%u", MAX(clients + 16, 16u));
        daemon_start(&d, backend, extra);
        for (unsigned p = 0; p < procs; p++) {
                unsigned mine = clients / procs + (p < clients % procs ? 1 : 0);

                pids[p] = child_fork();
                if (pids[p] == 0)
                        crowd_process(&d, sh, p, mine, fanout,
                                      paced ? CROWD_PACED_RATE / fanout / procs : 0);
        }
        crowd_wait_state(sh, procs, CR_RUN);
        atomic_store(&sh->phase, CR_RUN);
        sleep_ns(300000000); /* warm-up: every client's loop in its steady state */
        proc_cpu_ticks(d.pid, &user0, &sys0);
        atomic_store(&sh->phase, CR_MEASURE);
        sleep_ns((uint64_t)(arg_duration * 1e9));
        atomic_store(&sh->phase, CR_END);
        proc_cpu_ticks(d.pid, &user1, &sys1);
        crowd_wait_state(sh, procs, CR_END);
        atomic_store(&sh->phase, CR_STOP);
        for (unsigned p = 0; p < procs; p++)
                child_wait(pids[p], "crowd client process");
        daemon_stop(&d);

        all = calloc((size_t)procs * CROWD_SAMPLES, sizeof(*all));
        if (!all)
                die("out of memory");
        for (unsigned p = 0; p < procs; p++) {
                const CrowdSlot *s = &sh->slot[p];

                n += s->n1 - s->n0;
                secs += (double)(s->t1 - s->t0) / 1e9 / procs;
                memcpy(all + n_all, sh->samples + (size_t)p * CROWD_SAMPLES, s->n_samples * sizeof(*all));
                n_all += s->n_samples;
                res.overruns += s->overruns;
        }
        res.rate = secs > 0 ? (double)n / secs : 0;
        res.evd_us = n ? (double)(user1 - user0 + sys1 - sys0) / (double)n / 1e3 : 0;
        res.latency = dist_of(all, n_all);
        free(all);
        shm_free(sh, size);
        return res;
}

static CrowdResult crowd_run(const char *backend, unsigned clients, unsigned fanout) {
        CrowdPass rate = crowd_pass(backend, clients, fanout, false);
        CrowdPass lat = crowd_pass(backend, clients, fanout, true);

        return (CrowdResult){.clients = clients, .watches = clients * fanout, .fanout = fanout,
                             .rate = rate.rate, .evd_us = rate.evd_us, .latency = lat.latency,
                             .overruns = lat.overruns};
}

static json_t *crowd_json(const CrowdResult *r) {
        json_t *j = json_object();

        jint(j, "clients", r->clients);
        jint(j, "watches", r->watches);
        jint(j, "watches_per_client", r->fanout);
        jreal(j, "notifications_per_s", r->rate);
        jreal(j, "evd_us_per_notification", r->evd_us);
        json_object_set_new(j, "latency_us", dist_json(&r->latency));
        jreal(j, "latency_paced_notifications_per_s", CROWD_PACED_RATE);
        jint(j, "latency_paced_overruns", r->overruns);
        return j;
}

json_t *run_crowd(BenchDaemon *unused) {
        /* The daemon's fds: one per watch and one per client, FD_SLACK for itself. */
        unsigned limit = scale_watch_count(), small_clients = 4, small_fanout = 25;
        unsigned fanout = limit > CROWD_CLIENTS ? (limit - CROWD_CLIENTS) / CROWD_CLIENTS : 1;
        CrowdResult small[MAX_BACKENDS], big[MAX_BACKENDS];
        json_t *j = json_object();

        (void)unused;
        for (size_t b = 0; b < arg_n_backends; b++) {
                small[b] = crowd_run(arg_backends[b], small_clients, small_fanout);
                big[b] = crowd_run(arg_backends[b], CROWD_CLIENTS, fanout);
        }
        printf("\n8. Crowd: the most watches the fd limit allows over %u clients, next to %u\n"
               "   watches over %u clients. Each client: one pipe watched W times (edge), the\n"
               "   W-th callback drains it; a fresh daemon per pass, %.1f s each. notif/s, evd\n"
               "   us/n: closed loop (the W-th callback writes again: one wakeup in flight per\n"
               "   client), the daemon's CPU per notification. p50..p99.9: write -> the pipe's\n"
               "   first callback (us) with writes paced at %.0f notifications/s in total.\n",
               CROWD_CLIENTS, small_clients * small_fanout, small_clients, arg_duration, CROWD_PACED_RATE);
        printf("   %-9s %8s %8s %4s %10s %9s %8s %8s %8s %8s\n", "", "clients", "watches", "W", "notif/s",
               "evd us/n", "p50", "p99", "p99.9", "overrun");
        for (size_t b = 0; b < arg_n_backends; b++) {
                json_t *jb = json_object();

                for (int big_row = 0; big_row < 2; big_row++) {
                        const CrowdResult *r = big_row ? &big[b] : &small[b];

                        printf("   %-9s %8u %8u %4u %10.0f %9.2f %8.1f %8.1f %8.1f %8" PRIu64 "\n",
                               big_row ? "" : arg_backends[b], r->clients, r->watches, r->fanout, r->rate,
                               r->evd_us, r->latency.p50, r->latency.p99, r->latency.p999, r->overruns);
                }
                printf("   %-9s big/small: %.2fx notif/s, %.2fx p99, %.2fx evd us/n\n", "",
                       small[b].rate > 0 ? big[b].rate / small[b].rate : 0,
                       small[b].latency.p99 > 0 ? big[b].latency.p99 / small[b].latency.p99 : 0,
                       small[b].evd_us > 0 ? big[b].evd_us / small[b].evd_us : 0);
                json_object_set_new(jb, "small", crowd_json(&small[b]));
                json_object_set_new(jb, "big", crowd_json(&big[b]));
                json_object_set_new(j, arg_backends[b], jb);
        }
        return j;
}
