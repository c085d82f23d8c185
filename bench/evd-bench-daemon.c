/*
 * evd-bench-daemon.c - the daemon under test and the bench's way of talking to it:
 * starting and stopping evd (own mkdtemp() directory, PR_SET_PDEATHSIG), the control
 * connection (status, stats, histogram deltas), and libevd client helpers the scenarios
 * share (connect, pump, count completions, keep a window of requests in flight).
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evd-bench.h"
#include "macro.h"

/* ---- the daemon ------------------------------------------------------------------- */

static BenchDaemon *live_daemons[8];

struct evd_client *client_connect(const char *socket_path) {
        struct evd_client *c = NULL;
        int r;

        r = evd_client_new(&c);
        if (r < 0)
                die("evd_client_new: %s", evd_strerror(r));
        (void)evd_client_set_name(c, "evd-bench");
        r = evd_client_connect(c, socket_path);
        if (r < 0)
                die("connect %s: %s", socket_path, evd_strerror(r));
        return c;
}

/* Wait for the client's fd at most @timeout_ms, then dispatch. */
void client_pump(struct evd_client *c, int timeout_ms) {
        struct pollfd p = {.fd = evd_client_fd(c), .events = POLLIN};
        int r;

        r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno != EINTR)
                die_errno("poll");
        r = evd_client_dispatch(c);
        if (r < 0)
                die("evd_client_dispatch: %s", evd_strerror(r));
}

/* Dispatch until *@counter reaches @target (a bounded wait: a lost reply is an error). */
void client_pump_until(struct evd_client *c, const unsigned *counter, unsigned target,
                       const char *what) {
        uint64_t deadline = now_ns() + STEP_TIMEOUT_MS * 1000000ull;

        while (*counter < target) {
                if (now_ns() > deadline)
                        die("%s: %u of %u after %d s", what, *counter, target,
                            STEP_TIMEOUT_MS / 1000);
                client_pump(c, 100);
        }
}

int done_count(struct evd_client *c, int r, json_t *result, void *userdata) {
        Done *d = userdata;
        const struct evd_error *e;

        if (r < 0) {
                e = evd_client_last_error(c);
                die("%s: %s%s%s", d->what, evd_strerror(r), e && e->why ? ": " : "",
                    e && e->why ? e->why : "");
        }
        d->n++;
        return 0;
}

json_t *ctl_call(BenchDaemon *d, const char *method) {
        json_t *res = NULL;
        int r;

        r = evd_call(d->ctl, method, NULL, STEP_TIMEOUT_MS, &res);
        if (r < 0)
                die("%s: %s: %s", d->backend, method, evd_strerror(r));
        return res;
}

static uint64_t json_u64(json_t *o, const char *section, const char *key) {
        json_t *v = json_object_get(json_object_get(o, section), key);

        return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

void daemon_stats(BenchDaemon *d, DaemonStats *ret) {
        json_t *s = ctl_call(d, "stats"), *b;
        size_t i;

        *ret = (DaemonStats){0};
        ret->notifications = json_u64(s, "daemon", "notifications");
        ret->packets_out = json_u64(s, "daemon", "packets_out");
        ret->coalesced = json_u64(s, "daemon", "coalesced");
        ret->iterations = json_u64(s, "engine", "iterations");
        ret->events = json_u64(s, "engine", "events");
        ret->timers = json_u64(s, "engine", "timers");
        ret->syscalls = json_u64(s, "engine", "syscalls");
        ret->submissions = json_u64(s, "engine", "submissions");
        json_array_foreach(json_object_get(json_object_get(s, "latency"), "buckets"), i, b) {
                if (ret->n_buckets >= ELEMENTSOF(ret->bucket))
                        break;
                ret->bucket[ret->n_buckets].le_us = json_number_value(json_object_get(b, "le_us"));
                ret->bucket[ret->n_buckets].count =
                        (uint64_t)json_integer_value(json_object_get(b, "count"));
                ret->n_buckets++;
        }
        json_decref(s);
}

static uint64_t stats_bucket(const DaemonStats *s, double le) {
        for (size_t i = 0; i < s->n_buckets; i++)
                if (s->bucket[i].le_us == le)
                        return s->bucket[i].count;
        return 0;
}

/* Percentiles of what the daemon recorded between @a and @b. */
HistQ hist_between(const DaemonStats *a, const DaemonStats *b) {
        HistQ q = {0};
        uint64_t diff[64], total = 0, run = 0;

        for (size_t i = 0; i < b->n_buckets; i++) {
                diff[i] = b->bucket[i].count - stats_bucket(a, b->bucket[i].le_us);
                total += diff[i];
        }
        q.count = total;
        for (size_t i = 0; i < b->n_buckets && total > 0; i++) {
                run += diff[i];
                if (q.p50_le == 0 && run * 2 >= total)
                        q.p50_le = b->bucket[i].le_us;
                if (run * 100 >= total * 99) {
                        q.p99_le = b->bucket[i].le_us;
                        break;
                }
        }
        return q;
}

json_t *histq_json(const HistQ *q) {
        json_t *j = json_object();

        jint(j, "count", q->count);
        jreal(j, "p50_le_us", q->p50_le);
        jreal(j, "p99_le_us", q->p99_le);
        return j;
}

static void daemon_exec(const BenchDaemon *d, const char *const *extra) {
        const char *argv[32];
        size_t n = 0;
        int log;

        argv[n++] = arg_evd;
        argv[n++] = "--socket";
        argv[n++] = d->socket;
        argv[n++] = "--backend";
        argv[n++] = d->backend;
        argv[n++] = "--log-level";
        argv[n++] = "warning";
        for (size_t i = 0; extra && extra[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;
        log = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (log >= 0)
                (void)dup2(log, STDERR_FILENO);
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        unsetenv("NOTIFY_SOCKET");
        execv(arg_evd, (char *const *)argv);
        _exit(127);
}

static void daemon_register(BenchDaemon *d, bool add) {
        for (size_t i = 0; i < ELEMENTSOF(live_daemons); i++)
                if (add ? !live_daemons[i] : live_daemons[i] == d) {
                        live_daemons[i] = add ? d : NULL;
                        die_hook = cleanup_daemons;
                        return;
                }
}

/* Start evd for @backend; return once it answers `status` with that backend. */
void daemon_start(BenchDaemon *d, const char *backend, const char *const *extra) {
        uint64_t deadline = now_ns() + 10 * NSEC_PER_SEC;
        const char *running, *version;
        json_t *st, *f;
        size_t i;

        *d = (BenchDaemon){.backend = backend};
        snprintf(d->dir, sizeof(d->dir), "%s/evd-bench-XXXXXX",
                 getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(d->dir))
                die_errno("mkdtemp");
        snprintf(d->socket, sizeof(d->socket), "%s/evd.sock", d->dir);
        snprintf(d->log, sizeof(d->log), "%s/evd.log", d->dir);
        d->pid = child_fork();
        if (d->pid == 0)
                daemon_exec(d, extra);
        daemon_register(d, true);

        for (;;) {
                int status, r;

                if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
                        d->pid = 0;
                        die("evd (%s) exited during start-up; see %s", backend, d->log);
                }
                r = evd_client_new(&d->ctl);
                if (r >= 0)
                        r = evd_client_connect(d->ctl, d->socket);
                if (r >= 0)
                        break;
                d->ctl = evd_client_free(d->ctl);
                if (now_ns() > deadline)
                        die("evd (%s) is not listening after 10 s; see %s", backend, d->log);
                sleep_ns(5000000);
        }
        /* The daemon falls back to epoll where io_uring is refused: that would compare epoll
         * with itself. */
        st = ctl_call(d, "status");
        running = json_string_value(json_object_get(st, "backend"));
        if (!running || strcmp(running, backend) != 0)
                die("evd was asked for %s but runs %s; see %s", backend, running ? running : "?",
                    d->log);
        version = json_string_value(json_object_get(st, "version"));
        snprintf(d->version, sizeof(d->version), "%s", version ? version : "?");
        json_array_foreach(json_object_get(st, "features"), i, f) {
                const char *name = json_string_value(f);
                size_t len = strlen(d->features);

                if (name && len + strlen(name) + 2 < sizeof(d->features))
                        snprintf(d->features + len, sizeof(d->features) - len, "%s%s",
                                 len ? " " : "", name);
        }
        json_decref(st);
}

void daemon_stop(BenchDaemon *d) {
        uint64_t deadline = now_ns() + 5 * NSEC_PER_SEC;
        int status = 0;
        bool clean = false;

        if (!d->pid)
                return;
        d->ctl = evd_client_free(d->ctl);
        (void)kill(d->pid, SIGTERM);
        for (;;) {
                pid_t r = waitpid(d->pid, &status, WNOHANG);

                if (r == d->pid) {
                        clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                        break;
                }
                if (r < 0 || now_ns() > deadline) {
                        (void)kill(d->pid, SIGKILL);
                        (void)waitpid(d->pid, &status, 0);
                        break;
                }
                sleep_ns(2000000);
        }
        d->pid = 0;
        daemon_register(d, false);
        (void)unlink(d->socket);
        if (!clean) {
                fprintf(stderr, "evd-bench: evd (%s) did not exit cleanly; its log is %s\n",
                        d->backend, d->log);
                return;
        }
        (void)unlink(d->log);
        (void)rmdir(d->dir);
}

void cleanup_daemons(void) {
        for (size_t i = 0; i < ELEMENTSOF(live_daemons); i++)
                if (live_daemons[i])
                        daemon_stop(live_daemons[i]);
}

int reg_noop(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        return 0;
}

void window_wait(struct evd_client *c, const Done *done, unsigned issued) {
        while (issued - done->n >= WINDOW)
                client_pump(c, 100);
}
