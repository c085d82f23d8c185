/*
 * evd-bench-python.c - scenario 6: the Python client (python/evd) next to libevd, same
 * workload, same daemons, in the same run.
 *
 * Each client is one process that does everything itself, so the two are measured the
 * same way: latency = it writes its CLOCK_MONOTONIC time into a pipe it watches (edge)
 * and takes the clock again in the watch's callback, one sample at a time; throughput =
 * W pipes holding one byte each, every callback reads its byte and writes it back (a
 * closed loop), for --duration seconds. The Python side is bench/python-client.py; it
 * prints the same JSON line libevd_client() writes, and a profile of its throughput loop
 * (a second, shorter pass under cProfile): where its time goes.
 */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evd-bench.h"
#include "macro.h"

#ifndef EVD_BENCH_SOURCE_ROOT
#define EVD_BENCH_SOURCE_ROOT "."
#endif

#define PY_WATCHES 64
#define PYTHON "/usr/bin/python3"
#define RESULT_MAX 65536

typedef struct PyLoop {
        int rfd, wfd;
        int64_t *counter; /* throughput: notifications, shared by the pipes */
        int64_t *samples; /* latency: one per callback */
        size_t n_samples, want;
        bool done;
} PyLoop;

static int lat_ready(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        PyLoop *l = userdata;
        uint64_t sent, now = now_ns();

        while (read(l->rfd, &sent, sizeof(sent)) == sizeof(sent))
                if (l->n_samples < l->want)
                        l->samples[l->n_samples++] = (int64_t)(now - sent);
        if (l->n_samples >= l->want) {
                l->done = true;
                return 0;
        }
        sent = now_ns();
        if (write(l->wfd, &sent, sizeof(sent)) != sizeof(sent))
                die_errno("python: latency write");
        return 0;
}

static int tp_ready(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        PyLoop *l = userdata;
        char b;

        if (read(l->rfd, &b, 1) == 1) {
                (*l->counter)++;
                if (write(l->wfd, "x", 1) != 1)
                        die_errno("python: throughput write");
        }
        return 0;
}

static double rusage_s(void) {
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) < 0)
                die_errno("getrusage");
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
               (double)ru.ru_stime.tv_usec / 1e6;
}

/* The libevd side: the workload, then one JSON line on @out. */
static void libevd_client(const BenchDaemon *d, int out, unsigned samples, double duration) {
        struct evd_client *c = client_connect(d->socket);
        PyLoop lat = { .want = samples }, tp[PY_WATCHES];
        int64_t count = 0;
        uint64_t t0, id;
        double cpu0, secs, cpu;
        json_t *j;
        Dist dist;
        char *text;
        int fds[2];

        lat.samples = calloc(samples, sizeof(*lat.samples));
        if (!lat.samples || pipe_nb(fds) < 0)
                die("python: libevd side: set-up");
        lat.rfd = fds[0], lat.wfd = fds[1];
        if (evd_watch_add(c, lat.rfd, EVD_IN, EVD_EDGE, lat_ready, &lat, STEP_TIMEOUT_MS, &id) < 0)
                die("python: libevd side: watch");
        t0 = now_ns();
        if (write(lat.wfd, &t0, sizeof(t0)) != sizeof(t0))
                die_errno("python: latency write");
        while (!lat.done)
                client_pump(c, 1000);
        dist = dist_of(lat.samples, lat.n_samples);

        for (int i = 0; i < PY_WATCHES; i++) {
                if (pipe_nb(fds) < 0)
                        die_errno("pipe2");
                tp[i] = (PyLoop){ .rfd = fds[0], .wfd = fds[1], .counter = &count };
                if (evd_watch_add(c, fds[0], EVD_IN, EVD_EDGE, tp_ready, &tp[i], STEP_TIMEOUT_MS, &id) < 0)
                        die("python: libevd side: watch");
        }
        for (int i = 0; i < PY_WATCHES; i++)
                if (write(tp[i].wfd, "x", 1) != 1)
                        die_errno("write");
        t0 = now_ns(), cpu0 = rusage_s();
        while (now_ns() - t0 < (uint64_t)(duration * 1e9))
                client_pump(c, 100);
        secs = (double)(now_ns() - t0) / 1e9, cpu = rusage_s() - cpu0;

        j = json_pack("{s:f,s:f,s:I,s:f,s:f}", "lat_p50_us", dist.p50, "lat_p99_us", dist.p99, "notifications",
                      (json_int_t)count, "seconds", secs, "cpu_s", cpu);
        text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (!text || write(out, text, strlen(text)) < 0 || write(out, "\n", 1) != 1)
                die("python: libevd side: result");
        _exit(0);
}

/* Run one side in a child whose stdout is a pipe; its last line is the result. NULL if
 * it failed (the reason is printed). */
static json_t *run_side(const BenchDaemon *d, bool python, unsigned samples, double duration, uint64_t *ret_evd_ns) {
        static char buf[RESULT_MAX];
        char samples_s[16], duration_s[32];
        uint64_t e0 = proc_runtime_ns(d->pid);
        size_t len = 0;
        int p[2], status;
        pid_t pid;
        char *line;

        if (pipe(p) < 0)
                die_errno("pipe");
        snprintf(samples_s, sizeof(samples_s), "%u", samples);
        snprintf(duration_s, sizeof(duration_s), "%.3f", duration);
        pid = child_fork();
        if (pid == 0) {
                close(p[0]);
                if (!python)
                        libevd_client(d, p[1], samples, duration);
                if (dup2(p[1], STDOUT_FILENO) < 0)
                        _exit(126);
                (void)setenv("PYTHONPATH", EVD_BENCH_SOURCE_ROOT "/python", 1);
                (void)setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
                execl(PYTHON, PYTHON, EVD_BENCH_SOURCE_ROOT "/bench/python-client.py", "--socket", d->socket,
                      "--samples", samples_s, "--duration", duration_s, "--watches", "64", (char *)NULL);
                _exit(127);
        }
        close(p[1]);
        for (;;) {
                ssize_t n = read(p[0], buf + len, sizeof(buf) - 1 - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        close(p[0]);
        buf[len] = 0;
        if (waitpid(pid, &status, 0) < 0)
                die_errno("waitpid");
        *ret_evd_ns = proc_runtime_ns(d->pid) - e0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                printf("   %s client failed (status %d)%s\n", python ? "python" : "libevd", status,
                       python && WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ": no " PYTHON : "");
                return NULL;
        }
        while (len > 0 && buf[len - 1] == '\n')
                buf[--len] = 0;
        line = strrchr(buf, '\n');
        return json_loads(line ? line + 1 : buf, 0, NULL);
}

static double num(json_t *o, const char *key) {
        return json_number_value(json_object_get(o, key));
}

json_t *run_python(BenchDaemon *daemons) {
        unsigned samples = MAX(arg_samples / 5, 200u);
        double duration = arg_duration;
        json_t *j = json_object(), *res[MAX_BACKENDS][2] = { { NULL } };
        uint64_t evd_ns[MAX_BACKENDS][2] = { { 0 } };

        printf("\n6. Python client (python/evd) next to libevd: one process each, on the same\n"
               "   daemons. Latency: it writes the time into a pipe it watches (edge) and reads\n"
               "   the clock in the callback, %u samples; throughput: %d pipes with one byte\n"
               "   each, every callback reads it and writes it back, %.1f s. CPU per\n"
               "   notification: the client's (getrusage) and the daemon's (schedstat).\n",
               samples, PY_WATCHES, duration);
        for (size_t b = 0; b < arg_n_backends; b++)
                for (int k = 0; k < 2; k++) {
                        int side = (int)((b + (size_t)k) % 2); /* alternate which goes first */

                        res[b][side] = run_side(&daemons[b], side == 1, samples, duration, &evd_ns[b][side]);
                }
        printf("   %-17s %9s %9s %12s %10s %9s\n", "", "p50 us", "p99 us", "notif/s", "client us", "evd us");
        for (size_t b = 0; b < arg_n_backends; b++) {
                json_t *jb = json_object();

                for (int side = 0; side < 2; side++) {
                        json_t *r = res[b][side];
                        double n;
                        char row[32];

                        snprintf(row, sizeof(row), "%s %s", arg_backends[b], side ? "python" : "libevd");
                        if (!r) {
                                printf("   %-17s %9s\n", row, "failed");
                                continue;
                        }
                        n = num(r, "notifications");
                        jreal(r, "evd_us_per_notification", n > 0 ? (double)evd_ns[b][side] / 1e3 / n : 0);
                        printf("   %-17s %9.1f %9.1f %12.0f %10.2f %9.2f\n", row, num(r, "lat_p50_us"),
                               num(r, "lat_p99_us"), n / num(r, "seconds"), n > 0 ? num(r, "cpu_s") * 1e6 / n : 0,
                               num(r, "evd_us_per_notification"));
                        json_object_set_new(jb, side ? "python" : "libevd", r);
                }
                if (res[b][0] && res[b][1])
                        printf("   %-17s %8.2fx %8.2fx %11.2fx %9.2fx\n", "  python/libevd",
                               num(res[b][1], "lat_p50_us") / num(res[b][0], "lat_p50_us"),
                               num(res[b][1], "lat_p99_us") / num(res[b][0], "lat_p99_us"),
                               (num(res[b][1], "notifications") / num(res[b][1], "seconds")) /
                                       (num(res[b][0], "notifications") / num(res[b][0], "seconds")),
                               (num(res[b][1], "cpu_s") / num(res[b][1], "notifications")) /
                                       (num(res[b][0], "cpu_s") / num(res[b][0], "notifications")));
                json_object_set_new(j, arg_backends[b], jb);
        }
        /* Where the Python client's time goes (the first backend's profile). */
        for (size_t b = 0; b < arg_n_backends; b++) {
                json_t *prof = res[b][1] ? json_object_get(res[b][1], "profile") : NULL;
                size_t i;
                json_t *item;

                if (!json_is_array(prof))
                        continue;
                printf("   where the Python client's throughput time goes (%s, cProfile, own time):\n",
                       arg_backends[b]);
                json_array_foreach(prof, i, item)
                        printf("     %5.1f%%  %s\n", num(item, "share") * 100,
                               json_string_value(json_object_get(item, "what")));
                break;
        }
        jint(j, "latency_samples", samples);
        jreal(j, "duration_s", duration);
        jint(j, "pipes", PY_WATCHES);
        return j;
}
