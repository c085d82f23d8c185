/*
 * evd-bench-timers.c - scenario 5: timer accuracy (how late timers fire) with many timers
 * across clients.
 */

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evd-bench.h"
#include "macro.h"

/* ---- 5. timers -------------------------------------------------------------------- */

/*
 * N one-shot timers over C clients, deadlines spread evenly over `spread` seconds that
 * start `lead` seconds after the clients begin registering (interleaved across clients);
 * the lead comes from a calibration (each client first registers TIMER_CALIBRATION timers
 * an hour away, which stay idle), so registration is over before the first deadline.
 * The timers are created with evd_call_async("timer", {after, tag}) rather than
 * evd_timer_after_async(): libevd's timer callback gives only the expirations, while a
 * timer libevd does not own reaches the notify handler with all its params, `late`
 * included. Both views are kept: `late` as the daemon reports it, and the client's
 * (callback time - (time before the request was sent + after)): that adds the request's
 * trip to the daemon and the notification's trip back, and it is negative only if the
 * timer fired before `after` had passed since the request was sent, i.e. early. Few
 * requests are in flight (TIMER_WINDOW per client) so that the request's trip stays short.
 */

#define TIMER_WINDOW 16u
#define TIMER_CALIBRATION 1000u /* per client */

enum { TS_DAEMON, TS_CLIENT, TS_RTT, _TS_MAX }; /* sample arrays, N each */
enum { TG_WAIT, TG_CALIBRATE, TG_REGISTER };

typedef struct TimerShared {
        atomic_int go;  /* TG_* */
        uint64_t start; /* CLOCK_MONOTONIC: deadlines are start + lead + k * spread / N */
        double lead;    /* seconds, chosen from the calibration */
        atomic_int calibrated[16];
        uint64_t cal_end[16], reg_end[16], fired[16], multi[16];
        uint64_t *sent;     /* [N] by timer: CLOCK_MONOTONIC before the request was made */
        uint64_t *deadline; /* [N] by timer: sent + after */
        int64_t samples[];  /* [_TS_MAX][N], by timer; INT64_MIN until seen */
} TimerShared;

typedef struct TimerClient {
        TimerShared *sh;
        unsigned n, idx, fired;
        uint64_t *sent, *deadline; /* sh's */
} TimerClient;

typedef struct TimerReq {
        TimerClient *tc;
        unsigned k;
        Done *done;
} TimerReq;

static int64_t *timer_sample(TimerShared *sh, unsigned n, int kind, size_t k) {
        return &sh->samples[(size_t)kind * n + k];
}

static int timer_notify(struct evd_client *c, const char *method, json_t *params, void *userdata) {
        uint64_t now = now_ns();
        TimerClient *tc = userdata;
        json_t *tag = json_object_get(params, "tag");
        json_int_t k;

        if (strcmp(method, "timer") != 0 || !json_is_integer(tag))
                return 0;
        k = json_integer_value(tag);
        if (k < 0 || (uint64_t)k >= tc->n)
                die("timers: a timer notification with an unknown tag %lld", (long long)k);
        *timer_sample(tc->sh, tc->n, TS_DAEMON, (size_t)k) =
                llround(json_number_value(json_object_get(params, "late")) * 1e9);
        *timer_sample(tc->sh, tc->n, TS_CLIENT, (size_t)k) =
                (int64_t)now - (int64_t)tc->deadline[k];
        if (json_integer_value(json_object_get(params, "expirations")) != 1)
                tc->sh->multi[tc->idx]++;
        tc->fired++;
        return 0;
}

static int timer_done(struct evd_client *c, int r, json_t *result, void *userdata) {
        TimerReq *req = userdata;

        *timer_sample(req->tc->sh, req->tc->n, TS_RTT, req->k) =
                (int64_t)(now_ns() - req->tc->sent[req->k]);
        return done_count(c, r, result, req->done);
}

/* TIMER_CALIBRATION timers an hour away, which stay idle: how fast this daemon takes
 * timer requests right now, so that the lead can be chosen to cover the registration. */
static void timer_calibrate(struct evd_client *c) {
        Done done = {.what = "timers: calibration timer"};

        for (unsigned i = 0; i < TIMER_CALIBRATION; i++) {
                int r = evd_call_async(c, "timer", json_pack("{s:i}", "after", 3600), done_count,
                                       &done);

                if (r < 0)
                        die("timers: %s", evd_strerror(r));
                while (i + 1 - done.n >= TIMER_WINDOW)
                        client_pump(c, 100);
        }
        client_pump_until(c, &done.n, TIMER_CALIBRATION, done.what);
}

static void timer_client(const BenchDaemon *d, TimerShared *sh, unsigned idx, unsigned clients) {
        TimerClient tc = {.sh = sh, .n = arg_timers, .idx = idx};
        Done done = {.what = "timers: timer"};
        TimerReq *reqs = calloc(arg_timers / clients + 1, sizeof(*reqs));
        struct evd_client *c;
        unsigned mine = 0;
        uint64_t end;

        tc.sent = sh->sent;
        tc.deadline = sh->deadline;
        if (!reqs)
                die("out of memory");
        c = client_connect(d->socket);
        evd_client_set_notify_handler(c, timer_notify, &tc);
        if (evd_call(c, "ping", NULL, STEP_TIMEOUT_MS, NULL) < 0)
                die("timers: ping failed");
        while (atomic_load(&sh->go) < TG_CALIBRATE)
                sleep_ns(100000);
        timer_calibrate(c);
        sh->cal_end[idx] = now_ns();
        atomic_store(&sh->calibrated[idx], 1);
        while (atomic_load(&sh->go) < TG_REGISTER)
                sleep_ns(100000);

        for (unsigned k = idx; k < tc.n; k += clients, mine++) {
                uint64_t at = sh->start + (uint64_t)(sh->lead * 1e9) +
                              (uint64_t)((double)k * arg_timer_spread * 1e9 / tc.n);
                uint64_t now = now_ns(), after = at > now ? at - now : 0;
                json_t *params =
                        json_pack("{s:f,s:I}", "after", (double)after / 1e9, "tag", (json_int_t)k);
                int r;

                tc.sent[k] = now;
                tc.deadline[k] = now + after;
                reqs[mine] = (TimerReq){.tc = &tc, .k = k, .done = &done};
                r = evd_call_async(c, "timer", params, timer_done, &reqs[mine]);
                if (r < 0)
                        die("timers: %s", evd_strerror(r));
                while (mine + 1 - done.n >= TIMER_WINDOW)
                        client_pump(c, 100);
        }
        client_pump_until(c, &done.n, mine, done.what);
        sh->reg_end[idx] = now_ns();
        end = sh->start + (uint64_t)((sh->lead + arg_timer_spread + 5) * 1e9);
        while (tc.fired < mine && now_ns() < end)
                client_pump(c, 50);
        sh->fired[idx] = tc.fired;
        (void)evd_client_free(c);
        _exit(0);
}

/* The timer that fired earliest relative to its request: evidence for a bug report. */
typedef struct TimerEarly {
        double after_s, sent_s; /* `after` asked; when it was sent, from the scenario's start */
        double early_s;         /* callback this long before sent + after */
        double late_s;          /* the daemon's `late` for it */
} TimerEarly;

typedef struct TimerResult {
        unsigned n, fired, multi, early;
        double lead_s, cal_rate; /* the lead chosen, from the calibration's timers per second */
        TimerEarly worst;
        double reg_s, margin_s; /* registration time; first deadline - end of registration */
        Dist daemon, client, rtt;
        DaemonStats delta;
        HistQ internal;
} TimerResult;

/* The samples of @kind for the timers that fired. */
static Dist timer_dist(TimerShared *sh, unsigned n, int kind, unsigned *ret_negative) {
        int64_t *v = calloc(n, sizeof(int64_t));
        size_t m = 0;
        Dist d;

        if (!v)
                die("out of memory");
        for (unsigned k = 0; k < n; k++)
                if (*timer_sample(sh, n, TS_DAEMON, k) != INT64_MIN) {
                        v[m] = *timer_sample(sh, n, kind, k);
                        if (ret_negative && v[m] < 0)
                                (*ret_negative)++;
                        m++;
                }
        d = dist_of(v, m);
        free(v);
        return d;
}

/* Registration must be over before the first deadline, else the timers fire into a daemon
 * busy taking the rest: allow 1.5 times what the calibration predicts (and at least
 * --timer-lead). */
static void timer_choose_lead(TimerShared *sh, unsigned clients, TimerResult *res) {
        uint64_t t0 = now_ns(), t1 = 0, deadline = t0 + STEP_TIMEOUT_MS * 1000000ull;

        atomic_store(&sh->go, TG_CALIBRATE);
        for (unsigned i = 0; i < clients; i++) {
                while (!atomic_load(&sh->calibrated[i])) {
                        if (now_ns() > deadline)
                                die("timers: client %u did not calibrate", i);
                        sleep_ns(1000000);
                }
                t1 = MAX(t1, sh->cal_end[i]);
        }
        res->cal_rate = (double)clients * TIMER_CALIBRATION / ((double)(t1 - t0) / 1e9);
        res->lead_s = sh->lead = MAX(arg_timer_lead, 1.5 * arg_timers / res->cal_rate + 0.2);
}

/* The timer whose callback ran earliest relative to its request, if any did. */
static TimerEarly timer_earliest(TimerShared *sh, unsigned n) {
        TimerEarly e = {0};
        int64_t worst = 0;

        for (unsigned k = 0; k < n; k++) {
                int64_t cl = *timer_sample(sh, n, TS_CLIENT, k);

                if (*timer_sample(sh, n, TS_DAEMON, k) == INT64_MIN || cl >= worst)
                        continue;
                worst = cl;
                e = (TimerEarly){.after_s = (double)(sh->deadline[k] - sh->sent[k]) / 1e9,
                                 .sent_s = (double)(sh->sent[k] - sh->start) / 1e9,
                                 .early_s = (double)-cl / 1e9,
                                 .late_s = (double)*timer_sample(sh, n, TS_DAEMON, k) / 1e9};
        }
        return e;
}

static void timer_results(TimerShared *sh, const DaemonStats *s0, const DaemonStats *s1,
                          TimerResult *res) {
        unsigned n = res->n;

        res->internal = hist_between(s0, s1);
        res->delta.iterations = s1->iterations - s0->iterations;
        res->delta.timers = s1->timers - s0->timers;
        res->delta.events = s1->events - s0->events;
        res->delta.packets_out = s1->packets_out - s0->packets_out;
        res->delta.notifications = s1->notifications - s0->notifications;
        res->worst = timer_earliest(sh, n);
        res->daemon = timer_dist(sh, n, TS_DAEMON, NULL);
        res->client = timer_dist(sh, n, TS_CLIENT, &res->early);
        res->rtt = timer_dist(sh, n, TS_RTT, NULL);
}

static TimerResult timers_run(BenchDaemon *d) {
        unsigned clients = arg_timer_clients, n = arg_timers;
        size_t size = sizeof(TimerShared) + _TS_MAX * (size_t)n * sizeof(int64_t);
        size_t times = 2 * (size_t)n * sizeof(uint64_t);
        TimerShared *sh = shm_new(size);
        TimerResult res = {.n = n};
        uint64_t reg_end = 0;
        DaemonStats s0, s1;
        pid_t pids[16];

        sh->sent = shm_new(times);
        sh->deadline = sh->sent + n;
        for (size_t i = 0; i < _TS_MAX * (size_t)n; i++)
                sh->samples[i] = INT64_MIN;
        for (unsigned i = 0; i < clients; i++) {
                pids[i] = child_fork();
                if (pids[i] == 0)
                        timer_client(d, sh, i, clients);
        }
        timer_choose_lead(sh, clients, &res);
        daemon_stats(d, &s0);
        sh->start = now_ns();
        atomic_store(&sh->go, TG_REGISTER);
        for (unsigned i = 0; i < clients; i++) {
                child_wait(pids[i], "timer client");
                res.fired += (unsigned)sh->fired[i];
                res.multi += (unsigned)sh->multi[i];
                reg_end = MAX(reg_end, sh->reg_end[i]);
        }
        daemon_stats(d, &s1);
        res.reg_s = (double)(reg_end - sh->start) / 1e9;
        res.margin_s = sh->lead - res.reg_s;
        timer_results(sh, &s0, &s1, &res);
        shm_free(sh->sent, times);
        shm_free(sh, size);
        return res;
}

static json_t *timer_json(const TimerResult *t) {
        json_t *j = json_object(), *c = json_object();

        jint(j, "timers", t->n);
        jint(j, "fired", t->fired);
        jint(j, "expirations_gt_1", t->multi);
        jint(j, "early", t->early);
        jreal(j, "registration_s", t->reg_s);
        jreal(j, "lead_s", t->lead_s);
        jreal(j, "lead_margin_s", t->margin_s);
        jreal(j, "calibration_timers_per_s", t->cal_rate);
        json_object_set_new(j, "late_daemon", dist_json(&t->daemon));
        json_object_set_new(j, "late_client", dist_json(&t->client));
        json_object_set_new(j, "request_rtt", dist_json(&t->rtt));
        jbool(j, "target_met", t->daemon.p99 <= 200 && t->fired == t->n);
        json_object_set_new(j, "evd_internal", histq_json(&t->internal));
        jint(c, "iterations", t->delta.iterations);
        jint(c, "timer_callbacks", t->delta.timers);
        jint(c, "io_callbacks", t->delta.events);
        jint(c, "packets_out", t->delta.packets_out);
        jint(c, "notifications", t->delta.notifications);
        json_object_set_new(j, "evd_counters", c);
        if (t->early) {
                json_t *e = json_object();

                jreal(e, "after_s", t->worst.after_s);
                jreal(e, "sent_s", t->worst.sent_s);
                jreal(e, "early_s", t->worst.early_s);
                jreal(e, "late_s", t->worst.late_s);
                json_object_set_new(j, "earliest", e);
        }
        return j;
}

/* A fresh daemon per backend: a heap and a loop that served nothing before. */
static void timer_print_row(const char *backend, const TimerResult *t) {
        bool met = t->daemon.p99 <= 200 && t->fired == t->n;

        printf("   %-9s %8.1f %8.1f %8.1f %8.1f %7s  %9.1f %8.1f %8.1f %8.1f %6u  %7u %6.2f "
               "%6.2f %7.1f  <=%g/<=%g\n",
               backend, t->daemon.p50, t->daemon.p99, t->daemon.p999, t->daemon.max, verdict(met),
               t->client.min, t->client.p50, t->client.p99, t->client.max, t->early, t->fired,
               t->reg_s, t->lead_s, t->rtt.p50, t->internal.p50_le, t->internal.p99_le);
        if (t->margin_s < 0)
                printf("   %-9s registration ran %.2f s into the firing window\n"
                       "   %-9s (busier than calibrated): rerun, or raise --timer-lead\n",
                       "", -t->margin_s, "");
        if (t->multi)
                printf("   %-9s %u notifications covered more than one expiry\n", "", t->multi);
        if (t->early)
                printf("   %-9s EARLY: e.g. {\"after\": %.6f} sent at +%.3f s fired\n"
                       "   %-9s %.3f ms before sent + after, with \"late\": %.6f\n",
                       "", t->worst.after_s, t->worst.sent_s, "", t->worst.early_s * 1e3,
                       t->worst.late_s);
}

/* A fresh daemon per backend: a heap and a loop that served nothing before. */
json_t *run_timers(BenchDaemon *unused) {
        TimerResult r[MAX_BACKENDS];
        json_t *j = json_object();

        /* One uid's 100,000 timers a second are over the default pace (50,000/s per uid),
         * which holds the rest back by design (the fairness rule; bench/fairness measures
         * it): timer accuracy is measured with pacing off. */
        static const char *const unpaced[] = {"--max-timer-rate-per-uid", "0", NULL};

        for (size_t b = 0; b < arg_n_backends; b++) {
                BenchDaemon d;

                daemon_start(&d, arg_backends[b], unpaced);
                r[b] = timers_run(&d);
                daemon_stop(&d);
        }
        printf("\n5. Timers: %u one-shot timers over %u clients (%u requests in flight each),\n"
               "   deadlines spread over %.1f s, starting `lead` s after registration begins\n"
               "   (1.5x the registration time a calibration predicts). late: the daemon's\n"
               "   `late` field (deadline -> noticed); client: callback - (send time + after),\n"
               "   < 0 = fired early. Pacing off (--max-timer-rate-per-uid 0). Target: late\n"
               "   p99 <= 200 us. Times in us.\n",
               arg_timers, arg_timer_clients, TIMER_WINDOW, arg_timer_spread);
        printf("   %-9s %8s %8s %8s %8s %7s  %9s %8s %8s %8s %6s  %7s %6s %6s %7s  %s\n", "",
               "late p50", "p99", "p99.9", "max", "target", "client min", "p50", "p99", "max",
               "early", "fired", "reg s", "lead s", "rtt p50", "evd-internal p50/p99");
        for (size_t b = 0; b < arg_n_backends; b++) {
                const TimerResult *t = &r[b];

                timer_print_row(arg_backends[b], t);
                summary_add("timer late p99 <= 200 us (daemon's `late`)", b,
                            t->daemon.p99 <= 200 && t->fired == t->n, "%.0f us", t->daemon.p99);
                summary_add("timers never fire early", b, t->early == 0, "%.0f early", t->early);
                json_object_set_new(j, arg_backends[b], timer_json(t));
        }
        printf("   early: timers whose callback ran before `after` had passed since the request\n"
               "   was sent; rtt: request -> reply as the client saw it; reg s: registration\n"
               "   time.\n");
        jint(j, "clients", arg_timer_clients);
        jint(j, "in_flight", TIMER_WINDOW);
        jreal(j, "spread_s", arg_timer_spread);
        jreal(j, "min_lead_s", arg_timer_lead);
        return j;
}
