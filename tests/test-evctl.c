/*
 * test-evctl.c - evctl against the real daemon: every command's --json output parsed, exit
 * codes checked, human output spot-checked; `evctl wait` on a pipe the test writes, its
 * timeout, a missing daemon, a non-admin user, and the daemon going away under `monitor`;
 * the bash completion ($EVCTL_COMPLETION) where what it offers depends on the words before.
 *
 * evctl comes from $EVCTL; under the valgrind setup it runs under valgrind too (a leak or
 * memory error makes it exit 99). The daemon's side of things (watches, timers to list,
 * notifications to monitor) is made with the raw test client of util-daemon.h.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util-check.h"
#include "util-daemon.h"

static int arg_slow = 1;
static bool arg_valgrind;
/* valgrind's own temp files (a copy of the client's cmdline), for an evctl run as another
 * uid: /tmp may not be writable to it (0755 here), and valgrind then does not start. */
static char valgrind_tmp[256];

#define WAIT_MS (TEST_TIMEOUT_MS * arg_slow)

static TestDaemon daemon_;

static long long now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct Run {
        pid_t pid;
        int out, err; /* read ends */
} Run;

typedef struct Options {
        int fd3;      /* given to evctl as fd 3, or -1 */
        uid_t uid;    /* 0: as ourselves */
        bool no_sock; /* do not set EVD_SOCKET */
} Options;

/* Start evctl with @argv (NULL-terminated, without "evctl"). */
static void evctl_start(Run *run, const Options *o, const char *const *argv) {
        const char *bin = getenv("EVCTL");
        int out[2], err[2];

        ck_assert_msg(bin && *bin, "EVCTL is not set");
        ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
        run->pid = fork();
        ck_assert_int_ge(run->pid, 0);
        if (run->pid == 0) {
                const char *args[64];
                size_t n = 0;

                if (arg_valgrind) {
                        args[n++] = "valgrind";
                        args[n++] = "-q";
                        args[n++] = "--leak-check=full";
                        args[n++] = "--errors-for-leak-kinds=definite,indirect";
                        args[n++] = "--error-exitcode=99";
                }
                args[n++] = bin;
                for (size_t i = 0; argv[i] && n < 63; i++)
                        args[n++] = argv[i];
                args[n] = NULL;
                (void)dup2(out[1], STDOUT_FILENO);
                (void)dup2(err[1], STDERR_FILENO);
                if (o && o->fd3 >= 0)
                        (void)dup2(o->fd3, 3); /* dup2 clears CLOEXEC on the copy */
                if (!o || !o->no_sock)
                        setenv("EVD_SOCKET", daemon_.socket, 1);
                if (o && o->uid && arg_valgrind)
                        setenv("TMPDIR", valgrind_tmp, 1);
                if (o && o->uid &&
                    (setgroups(0, NULL) < 0 || setgid(o->uid) < 0 || setuid(o->uid) < 0))
                        _exit(126);
                execvp(args[0], (char *const *)args);
                _exit(127);
        }
        close(out[1]);
        close(err[1]);
        run->out = out[0];
        run->err = err[0];
}

/* Read @fd to EOF (bounded by @deadline) into a malloc()ed string. */
static char *slurp(int fd, long long deadline) {
        size_t len = 0, size = 4096;
        char *buf = malloc(size);

        ck_assert_ptr_nonnull(buf);
        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                ssize_t n;
                long long left = deadline - now_ms();

                ck_assert_msg(left > 0, "evctl did not finish in time");
                if (poll(&p, 1, (int)left) <= 0)
                        continue;
                if (len + 1024 > size) {
                        size *= 2;
                        buf = realloc(buf, size);
                        ck_assert_ptr_nonnull(buf);
                }
                n = read(fd, buf + len, size - len - 1);
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = 0;
        return buf;
}

/* Wait for evctl; its exit code (128 + signal if killed). Output into *@ret_out/@ret_err. */
static int evctl_finish(Run *run, char **ret_out, char **ret_err) {
        long long deadline = now_ms() + 3 * WAIT_MS;
        char *out = slurp(run->out, deadline), *err = slurp(run->err, deadline);
        int status;

        close(run->out);
        close(run->err);
        ck_assert_int_eq(waitpid(run->pid, &status, 0), run->pid);
        if (ret_out)
                *ret_out = out;
        else
                free(out);
        if (ret_err)
                *ret_err = err;
        else
                free(err);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int evctl_o(const Options *o, char **ret_out, char **ret_err, const char *const *argv) {
        Run run;

        evctl_start(&run, o, argv);
        return evctl_finish(&run, ret_out, ret_err);
}

#define EVCTL(out, err, ...) evctl_o(NULL, out, err, (const char *const[]){__VA_ARGS__, NULL})
#define EVCTL_O(o, out, err, ...) evctl_o(o, out, err, (const char *const[]){__VA_ARGS__, NULL})

/* evctl --json ... that must succeed; its single JSON document. */
static json_t *evctl_json(const char *const *argv) {
        char *out = NULL, *err = NULL;
        json_error_t e;
        json_t *v;
        int r;

        r = evctl_o(NULL, &out, &err, argv);
        ck_assert_msg(r == 0, "evctl %s exited %d: %s", argv[1], r, err);
        v = json_loads(out, 0, &e);
        ck_assert_msg(v, "not one JSON document: %s (%s)", out, e.text);
        free(out);
        free(err);
        return v;
}

#define EVCTL_JSON(...) evctl_json((const char *const[]){"--json", __VA_ARGS__, NULL})

static double now_real(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The wall-clock window in which setup() started the daemon: its start time is inside. */
static double started_after, started_before;

static void setup(void) {
        started_after = now_real();
        test_daemon_start(&daemon_, NULL);
        started_before = now_real();
}

static void teardown(void) {
        (void)test_daemon_stop(&daemon_);
}

START_TEST(test_status_version_stats_ping) {
        json_t *v;
        char *out = NULL;

        v = EVCTL_JSON("status");
        ck_assert_str_eq(json_string_value(json_object_get(v, "server")), "evd");
        ck_assert_int_eq(json_integer_value(json_object_get(v, "protocol")), 1);
        ck_assert(json_is_string(json_object_get(v, "backend")));
        json_decref(v);

        ck_assert_int_eq(EVCTL(&out, NULL, "status"), 0);
        ck_assert_ptr_nonnull(strstr(out, "Backend:"));
        ck_assert_ptr_nonnull(strstr(out, daemon_.socket));
        free(out);

        v = EVCTL_JSON("version");
        ck_assert_str_eq(json_string_value(json_object_get(v, "evctl")), "0.1.0");
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(v, "evd"), "version")),
                         "0.1.0");
        json_decref(v);
        ck_assert_int_eq(EVCTL(&out, NULL, "--version"), 0);
        ck_assert_ptr_nonnull(strstr(out, "evctl 0.1.0"));
        free(out);

        v = EVCTL_JSON("stats");
        ck_assert(json_is_object(json_object_get(v, "engine")));
        ck_assert(json_integer_value(json_object_get(json_object_get(v, "daemon"), "accepted")) >=
                  1);
        ck_assert(json_is_object(json_object_get(v, "latency")));
        json_decref(v);
        ck_assert_int_eq(EVCTL(&out, NULL, "stats"), 0);
        ck_assert_ptr_nonnull(strstr(out, "latency"));
        ck_assert_ptr_nonnull(strstr(out, "Time one packet held the daemon"));
        /* Each histogram says what it measures; buckets read as ranges. */
        ck_assert_ptr_nonnull(strstr(out, "from the event seen to the notification sent"));
        ck_assert_ptr_nonnull(strstr(out, "from its receipt to its replies queued"));
        ck_assert_msg(!strstr(out, "<= ") && strstr(out, "-") , "%s", out);
        /* What an operator looks at first, and rates in evctl's view. */
        ck_assert_msg(strstr(out, "uptime") && strstr(out, "fds held") && strstr(out, "of ") &&
                              strstr(out, "memory (RSS)") && strstr(out, "/s") && strstr(out, "Limits in force") &&
                              strstr(out, "max-queued-bytes") && strstr(out, "Timer lateness"),
                      "%s", out);
        free(out);

        v = EVCTL_JSON("ping", "-c", "3", "-i", "0");
        ck_assert_int_eq(json_integer_value(json_object_get(v, "count")), 3);
        ck_assert_uint_eq(json_array_size(json_object_get(v, "rtt_ms")), 3);
        ck_assert(json_real_value(json_object_get(v, "min_ms")) <=
                  json_real_value(json_object_get(v, "max_ms")));
        for (size_t i = 0; i < 3; i++) {
                double ms = json_real_value(json_array_get(json_object_get(v, "rtt_ms"), i));

                ck_assert_msg(fabs(ms * 1e3 - round(ms * 1e3)) < 1e-6, "rtt %.17g ms: not to the us", ms);
        }
        json_decref(v);
        ck_assert_int_eq(EVCTL(&out, NULL, "ping", "-c", "2", "-i", "10ms"), 0);
        ck_assert_ptr_nonnull(strstr(out, "seq=2"));
        free(out);
}
END_TEST

/* The line of `evctl stats` that starts with "  @key " (in @out), copied; NULL if none. */
static char *stats_line(const char *out, const char *key) {
        char want[64];
        const char *l, *end;

        snprintf(want, sizeof(want), "\n  %s ", key);
        l = strstr(out, want);
        if (!l)
                return NULL;
        l += 3;
        end = strchr(l, '\n');
        return strndup(l, end ? (size_t)(end - l) : strlen(l));
}

/* `evctl stats` says the daemon holds @open fds (with evctl's connection) of which
 * @clients ("1 connection, 0 watched") are its clients' and the rest its own, and that
 * timer lateness has @samples ("1 sample"). */
static void expect_stats_fds(int open, const char *clients, int own, const char *samples) {
        char *out = NULL, *line, want[160];

        ck_assert_int_eq(EVCTL(&out, NULL, "stats"), 0);
        line = stats_line(out, "fds held");
        ck_assert_msg(line, "%s", out);
        snprintf(want, sizeof(want), " %d  of ", open);
        ck_assert_msg(strstr(line, want), "want %d fds held: %s", open, line);
        snprintf(want, sizeof(want), ": %s, %d its own", clients, own);
        ck_assert_msg(strstr(line, want), "want \"%s\": %s", want, line);
        snprintf(want, sizeof(want), "(from a timer's deadline to the daemon handling it; %s)", samples);
        ck_assert_msg(strstr(out, want), "want \"%s\": %s", want, out);
        ck_assert_msg(!strstr(out, " 1 samples") && !strstr(out, " 1 connections"), "%s", out);
        free(line);
        free(out);
}

/* "fds held": every fd the daemon has open (counted from outside, evctl's connection
 * included), of its fd limit, the clients' part and its own; "1 connection", "1 sample". */
START_TEST(test_stats_fds) {
        TestClient tc;
        int p[2], idle;

        idle = test_daemon_fd_count(&daemon_);
        expect_stats_fds(idle + 1, "1 connection, 0 watched", idle, "0 samples");

        ck_assert_int_eq(test_client_connect(&tc, daemon_.socket), 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        json_decref(test_client_result(&tc, "watch",
                                       json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge"),
                                       &p[0], 1));
        json_decref(test_client_result(&tc, "timer", json_pack("{s:i}", "after", 0), NULL, 0));
        json_decref(test_client_notification(&tc, "timer", WAIT_MS));
        idle = test_daemon_fd_count(&daemon_);
        expect_stats_fds(idle + 1, "2 connections, 1 watched", idle - 2, "1 sample");
        test_client_close(&tc);
        close(p[0]);
        close(p[1]);
}
END_TEST

/* Seconds from a duration as format_duration() prints one below a minute. */
static double parse_short_duration(const char *s) {
        char unit[8];
        double v;

        ck_assert_msg(sscanf(s, "%lf %7s", &v, unit) == 2, "not a duration: %s", s);
        if (strcmp(unit, "ms") == 0)
                return v / 1e3;
        ck_assert_msg(strcmp(unit, "s") == 0, "not a duration below a minute: %s", s);
        return v;
}

/* Significant digits of a number as printed ("0.136": 3, "1,234": 4). */
static int significant_digits(const char *s) {
        int n = 0;
        bool leading = true;

        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        continue;
                if (*s != '0')
                        leading = false;
                if (!leading)
                        n++;
        }
        return n;
}

/* Rates in evctl's view, for every cumulative counter of the engine and the daemon: the
 * counter over the uptime, three significant figures below 1,000 (1 error in over a second
 * is not "0/s" or "1/s"), whole numbers above; none for the rings' sizes. */
START_TEST(test_stats_rates) {
        static const char *const engine_counters[] = {"iterations", "events", "timers", "submissions", "syscalls",
                                                      "overflows", "ring_resizes", "sq_full", "poll_updates",
                                                      "cancel_retries"};
        static const char *const daemon_counters[] = {"accepted", "refused", "disconnected", "requests",
                                                      "errors", "notifications", "coalesced", "packets_in",
                                                      "packets_out", "fds_received", "monitor_dropped",
                                                      "timers_held"};
        TestClient tc;
        char *out = NULL, *line;
        double uptime;
        long long deadline = now_ms() + WAIT_MS;

        /* One error over more than a second: a rate between 0 and 1. */
        ck_assert_int_eq(test_client_connect(&tc, daemon_.socket), 0);
        ck_assert_int_eq(test_client_error_code(&tc, "no-such-method", NULL, NULL, 0), -32601);
        for (;;) {
                json_t *v = EVCTL_JSON("stats");
                double up = json_real_value(json_object_get(json_object_get(v, "process"), "uptime"));

                json_decref(v);
                if (up >= 1.2)
                        break;
                ck_assert_msg(now_ms() < deadline, "uptime stuck at %f s", up);
                (void)poll(NULL, 0, (int)((1.25 - up) * 1000));
        }
        ck_assert_int_eq(EVCTL(&out, NULL, "stats"), 0);
        line = stats_line(out, "uptime");
        ck_assert_ptr_nonnull(line);
        uptime = parse_short_duration(line + strlen("uptime"));
        free(line);
        ck_assert_msg(uptime >= 1.2, "%s", out);
        for (size_t i = 0; i < sizeof(engine_counters) / sizeof(engine_counters[0]) +
                                   sizeof(daemon_counters) / sizeof(daemon_counters[0]);
             i++) {
                size_t n_engine = sizeof(engine_counters) / sizeof(engine_counters[0]);
                const char *key = i < n_engine ? engine_counters[i] : daemon_counters[i - n_engine];
                char name[64], value[64], rate[64], unit[8];
                double v = 0, got, want;

                line = stats_line(out, key);
                ck_assert_msg(line, "no %s in %s", key, out);
                ck_assert_msg(sscanf(line, "%63s %63s %63[^/]%7s", name, value, rate, unit) == 4 &&
                                      strcmp(unit, "/s") == 0,
                              "no rate: %s", line);
                for (const char *c = value; *c; c++)
                        if (*c != ',')
                                v = v * 10 + (*c - '0');
                want = v / uptime;
                if (strcmp(rate, "0") == 0) {
                        ck_assert_msg(v == 0, "%s", line);
                } else if (strcmp(rate, "<0.001") == 0) {
                        ck_assert_msg(v > 0 && want < 0.0011, "%s", line);
                } else {
                        char digits[64];
                        size_t o = 0;

                        for (const char *c = rate; *c && o + 1 < sizeof(digits); c++)
                                if (*c != ',')
                                        digits[o++] = *c;
                        digits[o] = 0;
                        got = strtod(digits, NULL);
                        /* Uptime as printed has 3 figures, the rate 3: within 1.5% of each other. */
                        ck_assert_msg(fabs(got - want) <= 0.015 * want, "%s: want %.4g/s over %.3f s", line, want,
                                      uptime);
                        if (got >= 1000)
                                ck_assert_msg(!strchr(rate, '.'), "decimals on a big rate: %s", line);
                        else
                                ck_assert_msg(significant_digits(rate) <= 3, "%s", line);
                }
                if (strcmp(key, "errors") == 0)
                        ck_assert_msg(v == 1 && strncmp(rate, "0.", 2) == 0, "%s", line);
                free(line);
        }
        for (size_t i = 0; i < 2; i++) {
                line = stats_line(out, i ? "cq_entries" : "sq_entries");
                ck_assert_ptr_nonnull(line);
                ck_assert_msg(!strstr(line, "/s"), "a size has no rate: %s", line);
                free(line);
        }
        for (size_t i = 0; i < 2; i++) {
                line = stats_line(out, i ? "bytes_out" : "bytes_in");
                ck_assert_ptr_nonnull(line);
                ck_assert_msg(strstr(line, " B/s") || strstr(line, "iB/s"), "bytes without a rate: %s", line);
                free(line);
        }
        free(out);
        test_client_close(&tc);
}
END_TEST

/* "since": the daemon's start in local time with its offset, inside the window setup()
 * started it in; read in a zone that is not UTC, so that a wrong offset shows. */
START_TEST(test_stats_since) {
        char *out = NULL, *line;
        const char *since;
        struct tm tm = {0};
        time_t t;

        ck_assert_int_eq(setenv("TZ", "XST-5:30", 1), 0);
        ck_assert_int_eq(EVCTL(&out, NULL, "stats"), 0);
        ck_assert_int_eq(unsetenv("TZ"), 0);
        line = stats_line(out, "uptime");
        ck_assert_ptr_nonnull(line);
        since = strstr(line, "(since ");
        ck_assert_msg(since, "%s", line);
        ck_assert_msg(strptime(since, "(since %Y-%m-%d %H:%M:%S %z)", &tm), "%s", line);
        ck_assert_int_eq(tm.tm_gmtoff, 5 * 3600 + 30 * 60);
        t = timegm(&tm) - (5 * 3600 + 30 * 60); /* timegm() resets tm_gmtoff */
        ck_assert_msg((double)t >= floor(started_after) && (double)t <= started_before,
                      "since %lld, started in [%.3f, %.3f]: %s", (long long)t, started_after, started_before, line);
        free(line);
        free(out);
}
END_TEST

START_TEST(test_listings) {
        TestClient tc;
        json_t *v, *r, *w;
        char *out = NULL;
        char id[32];
        int p[2];

        /* Another client with a watch and a timer, tagged. */
        ck_assert_int_eq(test_client_connect(&tc, daemon_.socket), 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        json_decref(test_client_result(
                &tc, "hello", json_pack("{s:i,s:s}", "protocol", 1, "client", "lister"), NULL, 0));
        json_decref(test_client_result(&tc, "watch",
                                       json_pack("{s:i,s:[s],s:s,s:s}", "fd", 0, "events", "in",
                                                 "mode", "edge", "tag", "my-pipe"),
                                       &p[0], 1));
        r = test_client_result(
                &tc, "timer",
                json_pack("{s:i,s:i,s:s}", "after", 60, "interval", 60, "tag", "tick"), NULL, 0);
        json_decref(r);

        v = EVCTL_JSON("clients");
        ck_assert_int_ge(json_integer_value(json_object_get(v, "total")), 2);
        {
                size_t i;
                json_t *c;
                bool found = false;

                json_array_foreach(json_object_get(v, "clients"), i,
                                   c) if (json_is_string(json_object_get(c, "name")) &&
                                          strcmp(json_string_value(json_object_get(c, "name")),
                                                 "lister") == 0) {
                        found = true;
                        snprintf(id, sizeof(id), "%lld",
                                 json_integer_value(json_object_get(c, "client")));
                        ck_assert_int_eq(json_integer_value(json_object_get(c, "watches")), 1);
                }
                ck_assert(found);
        }
        json_decref(v);

        /* Every client's watches (we are root: admin), and one client's. */
        v = EVCTL_JSON("watches");
        ck_assert_uint_eq(json_array_size(json_object_get(v, "watches")), 1);
        w = json_array_get(json_object_get(v, "watches"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(w, "tag")), "my-pipe");
        ck_assert_str_eq(json_string_value(json_object_get(w, "fd_type")), "pipe");
        json_decref(v);
        v = EVCTL_JSON("watches", "--client", id);
        ck_assert_uint_eq(json_array_size(json_object_get(v, "watches")), 1);
        json_decref(v);
        ck_assert_int_eq(EVCTL(&out, NULL, "watches"), 0);
        ck_assert_ptr_nonnull(strstr(out, "WATCH"));
        ck_assert_ptr_nonnull(strstr(out, "\"my-pipe\""));
        free(out);

        v = EVCTL_JSON("timers");
        ck_assert_uint_eq(json_array_size(json_object_get(v, "timers")), 1);
        w = json_array_get(json_object_get(v, "timers"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(w, "tag")), "tick");
        ck_assert(json_real_value(json_object_get(w, "interval")) == 60.0);
        json_decref(v);
        ck_assert_int_eq(EVCTL(&out, NULL, "timers", "-c", id), 0);
        ck_assert_ptr_nonnull(strstr(out, "1m 00s")); /* the interval, with its unit */
        free(out);

        ck_assert_int_eq(EVCTL(NULL, NULL, "watches", "--client", "99999"), 1);
        ck_assert_int_eq(EVCTL(NULL, NULL, "watches", "--client", "x"), 2);
        test_client_close(&tc);
        close(p[0]);
        close(p[1]);
}
END_TEST

START_TEST(test_wait) {
        Options o = {.fd3 = -1};
        char *out = NULL, *err = NULL, fifo[300];
        json_t *v;
        Run run;
        int p[2];
        long long t0;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        o.fd3 = p[0];

        /* Nothing to read: times out (a daemon timer) with exit code 4. */
        t0 = now_ms();
        ck_assert_int_eq(EVCTL_O(&o, &out, NULL, "--json", "wait", "--timeout", "0.2", "3"), 4);
        ck_assert_int_ge(now_ms() - t0, 200);
        v = json_loads(out, 0, NULL);
        ck_assert(json_is_true(json_object_get(v, "timeout")));
        json_decref(v);
        free(out);
        ck_assert_int_eq(EVCTL_O(&o, &out, NULL, "wait", "--timeout", "50ms", "3"), 4);
        ck_assert_str_eq(out, "");
        free(out);

        /* Something writes while evctl waits (the command it runs once fd 3 is watched: no
         * race with the watch): it prints the fd and exits 0. */
        snprintf(fifo, sizeof(fifo), "%s/fifo", daemon_.dir);
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);
        o.fd3 = open(fifo, O_RDWR | O_CLOEXEC);
        ck_assert_int_ge(o.fd3, 0);
        evctl_start(&run, &o,
                    (const char *const[]){"--json", "wait", "--timeout", "30", "3", "--", "sh", "-c",
                                          "echo x >&3", NULL});
        ck_assert_int_eq(evctl_finish(&run, &out, &err), 0);
        v = json_loads(out, 0, NULL);
        ck_assert_msg(v, "%s / %s", out, err);
        ck_assert_int_eq(json_integer_value(json_object_get(v, "fd")), 3);
        ck_assert_str_eq(json_string_value(json_array_get(json_object_get(v, "events"), 0)), "in");
        json_decref(v);
        free(out);
        free(err);
        ck_assert_int_eq(EVCTL_O(&o, &out, NULL, "wait", "--in", "3"), 0);
        ck_assert_str_eq(out, "3 in\n");
        free(out);
        /* Options after the fds; a command that cannot run: 127, one line. */
        ck_assert_int_eq(EVCTL_O(&o, &out, NULL, "wait", "3", "--timeout", "5", "--in"), 0);
        ck_assert_str_eq(out, "3 in\n");
        free(out);
        ck_assert_int_eq(EVCTL_O(&o, NULL, &err, "wait", "3", "--", "/nonexistent/command"), 127);
        ck_assert_ptr_nonnull(strstr(err, "cannot run /nonexistent/command"));
        free(err);
        ck_assert_int_eq(EVCTL_O(&o, NULL, &err, "wait", "3", "--"), 2);
        free(err);
        close(o.fd3);
        o.fd3 = p[0];

        /* Writable at once; several fds: the ready one is named. */
        o.fd3 = p[1];
        ck_assert_int_eq(EVCTL_O(&o, &out, NULL, "wait", "--out", "3"), 0);
        ck_assert_str_eq(out, "3 out\n");
        free(out);

        /* Mistakes: no fd, an fd the shell does not have, a regular file. */
        ck_assert_int_eq(EVCTL(NULL, &err, "wait"), 2);
        free(err);
        ck_assert_int_eq(EVCTL(NULL, &err, "wait", "77"), 2);
        ck_assert_ptr_nonnull(strstr(err, "not open"));
        free(err);
        o.fd3 = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        ck_assert_int_eq(EVCTL_O(&o, NULL, &err, "wait", "3"), 1);
        ck_assert_ptr_nonnull(strstr(err, "regular files"));
        free(err);
        close(o.fd3);
        close(p[0]);
        close(p[1]);
}
END_TEST

static bool read_until(int fd, const char *needle, char *buf, size_t size);

/* A child that blocks until killed: a process to wait for. Not the test's SIGTERM
 * handler (it kills the test's process group), not beyond the test. The signals are
 * blocked over the fork: a kill that comes before the child has reset its handlers (a
 * busy machine) waits for SIG_DFL, where it ran the inherited handler and took the test
 * down ("Received signal 15"). */
static pid_t sleeper(void) {
        pid_t parent = getpid(), pid;
        sigset_t term, old;

        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        sigaddset(&term, SIGINT);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &term, &old), 0);
        pid = fork();
        if (pid == 0) {
                (void)signal(SIGTERM, SIG_DFL);
                (void)signal(SIGINT, SIG_DFL);
                (void)sigprocmask(SIG_SETMASK, &old, NULL);
                test_die_with_parent(parent);
                for (;;)
                        pause();
        }
        ck_assert_int_eq(sigprocmask(SIG_SETMASK, &old, NULL), 0);
        ck_assert_int_ge(pid, 0);
        return pid;
}

START_TEST(test_wait_for_pid) {
        Options o = {.fd3 = -1};
        char *out = NULL, *err = NULL, pid_text[16], kill_cmd[64], fifo[300];
        pid_t pid;

        /* valgrind 3.19 (Debian 12) does not know pidfd_open(): evctl under it cannot
         * open one. The plain and sanitizer runs test this. */
        if (arg_valgrind)
                return;
        pid = sleeper();

        /* Armed first, then the command kills it: exited, exit 0. The child is ours
         * (a zombie until reaped): its pidfd is readable once it has exited. */
        snprintf(pid_text, sizeof(pid_text), "%d", (int)pid);
        snprintf(kill_cmd, sizeof(kill_cmd), "kill %d", (int)pid);
        ck_assert_int_eq(EVCTL_O(&o, &out, &err, "wait", "--pid", pid_text, "--timeout", "30", "--", "sh", "-c",
                                 kill_cmd),
                         0);
        ck_assert_msg(strstr(out, "exited"), "%s / %s", out, err);
        free(out);
        free(err);
        ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
        /* Gone: an error, unless --exited. */
        ck_assert_int_eq(EVCTL_O(&o, NULL, &err, "wait", "--pid", pid_text), 1);
        ck_assert_ptr_nonnull(strstr(err, "no such process"));
        free(err);
        ck_assert_int_eq(EVCTL_O(&o, &out, NULL, "--json", "wait", "--pid", pid_text, "--exited"), 0);
        ck_assert_msg(strstr(out, "\"exited\":true"), "%s", out);
        free(out);
        /* A live one and a timeout: 4. */
        pid = sleeper();
        snprintf(pid_text, sizeof(pid_text), "%d", (int)pid);
        ck_assert_int_eq(EVCTL_O(&o, NULL, NULL, "wait", "--pid", pid_text, "-t", "0.05"), 4);
        /* --all: an fd and a process, both reported, in any order. */
        snprintf(fifo, sizeof(fifo), "%s/pid-fifo", daemon_.dir);
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);
        o.fd3 = open(fifo, O_RDWR | O_CLOEXEC);
        snprintf(kill_cmd, sizeof(kill_cmd), "echo x >&3; kill %d", (int)pid);
        ck_assert_int_eq(EVCTL_O(&o, &out, &err, "wait", "--all", "3", "--pid", pid_text, "-t", "30", "--", "sh", "-c",
                                 kill_cmd),
                         0);
        ck_assert_msg(strstr(out, "3 in\n") && strstr(out, "exited\n"), "%s / %s", out, err);
        free(out);
        free(err);
        ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
        /* --any (the default) with one ready: the first one only. */
        pid = sleeper();
        snprintf(pid_text, sizeof(pid_text), "%d", (int)pid);
        ck_assert_int_eq(EVCTL_O(&o, &out, NULL, "wait", "--any", "3", "--pid", pid_text), 0);
        ck_assert_str_eq(out, "3 in\n");
        free(out);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
        close(o.fd3);
}
END_TEST

/* Whether evctl's connection (named "evctl") holds a watch yet. */
static bool evctl_watching(TestClient *tc) {
        json_t *c = test_client_result(tc, "clients", NULL, NULL, 0), *it;
        bool found = false;
        size_t i;

        json_array_foreach(json_object_get(c, "clients"), i, it) {
                if (json_integer_value(json_object_get(it, "watches")) > 0 &&
                    json_string_value(json_object_get(it, "name")) &&
                    strcmp(json_string_value(json_object_get(it, "name")), "evctl") == 0)
                        found = true;
        }
        json_decref(c);
        return found;
}

/* `evctl watch`: a line per event, for `while read`; --count ends it. */
START_TEST(test_watch_stream) {
        static char buf[4096];
        Options o = {.fd3 = -1};
        char fifo[300], drain[16], *out = NULL;
        TestClient tc;
        Run run;

        snprintf(fifo, sizeof(fifo), "%s/stream-fifo", daemon_.dir);
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);
        o.fd3 = open(fifo, O_RDWR | O_CLOEXEC | O_NONBLOCK);
        ck_assert_int_ge(o.fd3, 0);
        evctl_start(&run, &o, (const char *const[]){"watch", "--count", "2", "3", NULL});
        ck_assert_int_eq(test_client_connect(&tc, daemon_.socket), 0);
        for (int i = 0; !evctl_watching(&tc); i++) {
                ck_assert_int_lt(i, 250 * arg_slow);
                usleep(20000);
        }
        ck_assert_int_eq(write(o.fd3, "a", 1), 1);
        ck_assert(read_until(run.out, "\n", buf, sizeof(buf)));
        ck_assert_str_eq(buf, "3 in\n");
        /* The consumer reads what came; the next write is a new edge, a new line. */
        ck_assert_int_eq(read(o.fd3, drain, sizeof(drain)), 1);
        ck_assert_int_eq(write(o.fd3, "b", 1), 1);
        ck_assert_int_eq(evctl_finish(&run, &out, NULL), 0);
        ck_assert_str_eq(out, "3 in\n");
        free(out);
        test_client_close(&tc);
        close(o.fd3);
}
END_TEST

START_TEST(test_call) {
        char *out = NULL, *err = NULL;

        ck_assert_int_eq(EVCTL(&out, NULL, "call", "ping"), 0);
        ck_assert_str_eq(out, "{}\n");
        free(out);
        ck_assert_int_eq(EVCTL(&out, NULL, "call", "timers", "{\"limit\": 5}"), 0);
        ck_assert_ptr_nonnull(strstr(out, "\"timers\":[]"));
        free(out);
        ck_assert_int_eq(EVCTL(NULL, &err, "call", "no-such-method"), 1);
        ck_assert_ptr_nonnull(strstr(err, "Method not found"));
        free(err);
        ck_assert_int_eq(EVCTL(NULL, &err, "call", "ping", "[1"), 2);
        ck_assert_ptr_nonnull(strstr(err, "not JSON"));
        free(err);
        ck_assert_int_eq(EVCTL(NULL, &err, "call", "ping", "[1]"), 2);
        free(err);
}
END_TEST

START_TEST(test_sleep_timer) {
        char *out = NULL;
        long long t0 = now_ms();
        json_t *v;
        char *line, *save = NULL;
        int n = 0;

        ck_assert_int_eq(EVCTL(NULL, NULL, "sleep", "0.15"), 0);
        ck_assert_int_ge(now_ms() - t0, 150);
        v = EVCTL_JSON("sleep", "50ms");
        ck_assert(json_real_value(json_object_get(v, "elapsed")) >= 0.05);
        json_decref(v);
        ck_assert_int_eq(EVCTL(NULL, NULL, "sleep", "soon"), 2);

        ck_assert_int_eq(EVCTL(&out, NULL, "--json", "timer", "--every", "0.05", "--count", "3"),
                         0);
        for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                v = json_loads(line, 0, NULL);
                ck_assert_ptr_nonnull(v);
                ck_assert_int_eq(json_integer_value(json_object_get(v, "tick")), ++n);
                json_decref(v);
        }
        ck_assert_int_eq(n, 3);
        free(out);
        ck_assert_int_eq(EVCTL(&out, NULL, "timer", "--every", "20ms", "--count", "2"), 0);
        ck_assert_ptr_nonnull(strstr(out, "tick 2"));
        free(out);
        ck_assert_int_eq(EVCTL(NULL, NULL, "timer"), 2);
        ck_assert_int_eq(EVCTL(NULL, NULL, "timer", "--every", "0"), 2);
}
END_TEST

/* Read lines from a running evctl until one contains @needle. */
static bool read_until(int fd, const char *needle, char *buf, size_t size) {
        long long deadline = now_ms() + WAIT_MS;
        size_t len = 0;

        buf[0] = 0;
        while (!strstr(buf, needle)) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                ssize_t n;

                if (now_ms() >= deadline || poll(&p, 1, (int)(deadline - now_ms())) <= 0)
                        return false;
                n = read(fd, buf + len, size - len - 1);
                if (n <= 0)
                        return false;
                len += (size_t)n;
                buf[len] = 0;
        }
        return true;
}

START_TEST(test_monitor) {
        static char buf[65536];
        TestClient tc;
        char *out = NULL, *err = NULL, *nl;
        json_t *v;
        Run run;

        /* --json: one object per line, for every notification; Ctrl-C ends it with 0. */
        evctl_start(&run, NULL, (const char *const[]){"--json", "monitor", NULL});
        ck_assert_int_eq(test_client_connect(&tc, daemon_.socket), 0);
        /* The monitor is set up once evctl's "monitor" call is in: poll the clients list. */
        for (int i = 0;; i++) {
                json_t *c = test_client_result(&tc, "clients", NULL, NULL, 0);
                size_t j;
                json_t *it;
                bool on = false;

                json_array_foreach(json_object_get(c, "clients"), j, it) on |=
                        json_is_true(json_object_get(it, "monitor"));
                json_decref(c);
                if (on)
                        break;
                ck_assert_int_lt(i, 100 * arg_slow);
                usleep(20000);
        }
        json_decref(test_client_result(&tc, "timer",
                                       json_pack("{s:i,s:s}", "after", 0, "tag", "mon"), NULL, 0));
        ck_assert(read_until(run.out, "\n", buf, sizeof(buf)));
        nl = strchr(buf, '\n');
        *nl = 0;
        v = json_loads(buf, 0, NULL);
        ck_assert_msg(v, "monitor line: %s", buf);
        ck_assert_str_eq(
                json_string_value(json_object_get(json_object_get(v, "message"), "method")),
                "timer");
        ck_assert(json_is_integer(json_object_get(v, "client")));
        json_decref(v);
        ck_assert_int_eq(kill(run.pid, SIGINT), 0);
        ck_assert_int_eq(evctl_finish(&run, &out, &err), 0);
        free(out);
        free(err);

        /* Filters: only connections; the timer copy that comes first is not printed.
         * Its "Monitoring" line comes once the subscription is in. */
        evctl_start(&run, NULL, (const char *const[]){"monitor", "--method", "connected", NULL});
        ck_assert(read_until(run.out, "Ctrl-C", buf, sizeof(buf)));
        json_decref(test_client_result(&tc, "timer",
                                       json_pack("{s:i,s:s}", "after", 0, "tag", "filtered"), NULL, 0));
        {
                TestClient late;
                char pid_text[32];

                ck_assert_int_eq(test_client_connect(&late, daemon_.socket), 0);
                ck_assert(read_until(run.out, "\n", buf, sizeof(buf)));
                snprintf(pid_text, sizeof(pid_text), "[%d]", (int)getpid());
                ck_assert_msg(strstr(buf, "connected") && strstr(buf, pid_text) && !strstr(buf, "filtered"), "%s",
                              buf);
                test_client_close(&late);
        }
        ck_assert_int_eq(kill(run.pid, SIGINT), 0);
        ck_assert_int_eq(evctl_finish(&run, &out, &err), 0);
        ck_assert_msg(!strstr(out, "timer"), "a filtered line was printed: %s", out);
        free(out);
        free(err);

        /* Human form; the daemon stopping under it: the shutdown is shown, exit 3. The
         * "Monitoring" line comes once the subscription is in. */
        evctl_start(&run, NULL, (const char *const[]){"monitor", NULL});
        ck_assert(read_until(run.out, "Ctrl-C", buf, sizeof(buf)));
        json_decref(test_client_result(&tc, "timer",
                                       json_pack("{s:i,s:s}", "after", 0, "tag", "mon"), NULL, 0));
        ck_assert(read_until(run.out, "timer", buf, sizeof(buf)));
        ck_assert_ptr_nonnull(strstr(buf, "\"mon\""));
        test_client_close(&tc);
        ck_assert_int_eq(test_daemon_stop(&daemon_), 0);
        ck_assert_int_eq(evctl_finish(&run, &out, &err), 3);
        ck_assert_msg(strstr(out, "shutting down"), "%s", out);
        ck_assert_msg(strstr(err, "lost the connection"), "%s", err);
        free(out);
        free(err);
        test_daemon_start(&daemon_, NULL); /* for teardown */
}
END_TEST

START_TEST(test_missing_daemon) {
        Options o = {.fd3 = -1, .no_sock = true};
        char path[256], *err = NULL, *nl;

        snprintf(path, sizeof(path), "%s/not-here.sock", daemon_.dir);
        ck_assert_int_eq(EVCTL_O(&o, NULL, &err, "--socket", path, "status"), 3);
        /* One line, with the path and how to start evd; no bare errno. */
        nl = strchr(err, '\n');
        ck_assert_ptr_nonnull(nl);
        ck_assert_str_eq(nl + 1, "");
        ck_assert_ptr_nonnull(strstr(err, path));
        ck_assert_ptr_nonnull(strstr(err, "not running"));
        ck_assert_ptr_nonnull(strstr(err, "evd --socket"));
        free(err);
        setenv("EVD_SOCKET", path, 1);
        ck_assert_int_eq(EVCTL_O(&o, NULL, NULL, "wait", "--timeout", "1", "0"), 3);
        ck_assert_int_eq(EVCTL_O(&o, NULL, NULL, "--json", "ping"), 3);
        unsetenv("EVD_SOCKET");
        /* The option may also follow the command. */
        ck_assert_int_eq(EVCTL_O(&o, NULL, NULL, "status", "--socket", path), 3);
        /* The command it names exists (PATH's evd, else the one built next to evctl). */
        ck_assert_int_eq(EVCTL_O(&o, NULL, &err, "--socket", path, "status"), 3);
        {
                const char *q = strstr(err, "start it with \""), *end;
                char cmd[512];

                ck_assert_ptr_nonnull(q);
                q += strlen("start it with \"");
                end = strstr(q, " --socket");
                ck_assert_ptr_nonnull(end);
                snprintf(cmd, sizeof(cmd), "%.*s", (int)(end - q), q);
                ck_assert_msg(strcmp(cmd, "evd") == 0 || access(cmd, X_OK) == 0, "no such evd: %s", cmd);
        }
        free(err);
        /* The default sockets name their units: the system one for root. */
        if (geteuid() == 0 && access("/run/evd/evd.sock", F_OK) != 0) {
                ck_assert_int_eq(EVCTL_O(&o, NULL, &err, "status"), 3);
                ck_assert_msg(strstr(err, "\"systemctl start evd.socket\""), "%s", err);
                free(err);
        }
        /* --wait-daemon: gives up after the time given, or connects once evd is there. */
        ck_assert_int_eq(EVCTL_O(&o, NULL, NULL, "--socket", path, "--wait-daemon", "0.1", "status"), 3);
        {
                Run run;
                pid_t evd;

                evctl_start(&run, &o, (const char *const[]){"--socket", path, "status", "-W", "20", NULL});
                evd = fork();
                ck_assert_int_ge(evd, 0);
                if (evd == 0) {
                        int null = open("/dev/null", O_WRONLY);

                        (void)dup2(null, 2);
                        execl(getenv("EVD_TEST_DAEMON"), "evd", "--socket", path, (char *)NULL);
                        _exit(127);
                }
                ck_assert_int_eq(evctl_finish(&run, NULL, &err), 0);
                free(err);
                ck_assert_int_eq(kill(evd, SIGTERM), 0);
                ck_assert_int_eq(waitpid(evd, NULL, 0), evd);
        }
}
END_TEST

/* A user's default socket ($XDG_RUNTIME_DIR) names the user manager's unit. */
START_TEST(test_missing_user_daemon) {
        Options o = {.fd3 = -1, .no_sock = true, .uid = 65534};
        char *err = NULL;

        if (geteuid() != 0)
                return; /* needs root to become "nobody" */
        ck_assert_int_eq(chmod(daemon_.dir, 0777), 0);
        setenv("XDG_RUNTIME_DIR", daemon_.dir, 1);
        ck_assert_int_eq(EVCTL_O(&o, NULL, &err, "status"), 3);
        unsetenv("XDG_RUNTIME_DIR");
        ck_assert_msg(strstr(err, "\"systemctl --user start evd.socket\"") && strstr(err, daemon_.dir), "%s", err);
        free(err);
}
END_TEST

static bool one_line(const char *s) {
        const char *nl = strchr(s, '\n');

        return nl && nl[1] == 0;
}

START_TEST(test_usage) {
        char *out = NULL, *err = NULL;

        ck_assert_int_eq(EVCTL(NULL, &err, "frobnicate"), 2);
        ck_assert_ptr_nonnull(strstr(err, "unknown command"));
        free(err);
        /* Bare evctl: the usage, on stderr. */
        ck_assert_int_eq(evctl_o(NULL, &out, &err, (const char *const[]){NULL}), 2);
        ck_assert_str_eq(out, "");
        ck_assert_ptr_nonnull(strstr(err, "Usage: evctl"));
        free(out);
        free(err);
        /* Every command's summary in --help is whole: its last line ends a sentence (cut
         * at its first line, monitor's ended in "disconnect," and watch's in "until"). */
        ck_assert_int_eq(EVCTL(&out, NULL, "--help"), 0);
        {
                const char *p = strstr(out, "Commands:\n"), *end = strstr(out, "\n\nOptions");

                ck_assert_ptr_nonnull(p);
                ck_assert_ptr_nonnull(end);
                for (p = strchr(p, '\n') + 1; p < end;) {
                        const char *nl = strchr(p, '\n'), *next = nl + 1;

                        /* The entry's last line: the next one starts a command, or the list ends. */
                        if (next >= end || strncmp(next, "             ", 13) != 0)
                                ck_assert_msg(nl[-1] == '.' || nl[-1] == ')', "summary cut: %.*s", (int)(nl - p), p);
                        p = next;
                }
        }
        free(out);
        /* One line per mistake, naming it (getopt says nothing of its own). */
        for (const char *const *m = (const char *const[]){"--bogus", "-x", NULL}; *m; m++) {
                ck_assert_int_eq(EVCTL(NULL, &err, "status", *m), 2);
                ck_assert_msg(one_line(err) && strstr(err, *m), "status %s: %s", *m, err);
                free(err);
                ck_assert_int_eq(EVCTL(NULL, &err, *m, "status"), 2);
                ck_assert_msg(one_line(err) && strstr(err, *m), "%s status: %s", *m, err);
                free(err);
        }
        /* A monitor filter that can never match is a mistake, not a silent forever. */
        ck_assert_int_eq(EVCTL(NULL, &err, "monitor", "--method", "bogus"), 2);
        ck_assert_msg(one_line(err) && strstr(err, "\"bogus\""), "%s", err);
        free(err);
        ck_assert_int_eq(EVCTL(NULL, &err, "wait", "0", "--timeout"), 2);
        ck_assert_msg(one_line(err) && strstr(err, "\"--timeout\" needs a value"), "%s", err);
        free(err);
        /* Under --json the error is also the document on stdout. */
        ck_assert_int_eq(EVCTL(&out, NULL, "status", "--bogus", "--json"), 2);
        {
                json_t *v = json_loads(out, 0, NULL), *e = json_object_get(v, "error");

                ck_assert_msg(e, "no error document: %s", out);
                ck_assert_int_eq(json_integer_value(json_object_get(e, "exit")), 2);
                ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(e, "message")), "--bogus"));
                json_decref(v);
        }
        free(out);
        /* Global options after the command; numbers as people write them (not
         * 0.10000000000000001), what evctl measures to the microsecond. */
        ck_assert_int_eq(EVCTL(&out, NULL, "sleep", "0.1", "--json"), 0);
        ck_assert_msg(strstr(out, "{\"seconds\":0.1,\"elapsed\":0."), "%s", out);
        ck_assert_msg(strlen(strstr(out, "\"elapsed\":") + strlen("\"elapsed\":")) <= strlen("0.123456}\n"), "%s", out);
        free(out);
        ck_assert_int_eq(EVCTL(&out, NULL, "--help"), 0);
        ck_assert_ptr_nonnull(strstr(out, "wait"));
        free(out);
        ck_assert_int_eq(EVCTL(NULL, NULL, "status", "--bogus"), 2);
        ck_assert_int_eq(EVCTL(NULL, NULL, "status", "extra"), 2);
        for (const char *const *c = (const char *const[]){"status", "clients", "watches", "timers",
                                                          "stats", "monitor", "ping", "version",
                                                          "wait", "sleep", "timer", "watch", "call", NULL};
             *c; c++) {
                ck_assert_int_eq(EVCTL(&out, NULL, *c, "--help"), 0);
                ck_assert_msg(strstr(out, "Usage: evctl") && strstr(out, *c) && strstr(out, "--socket") &&
                                      strstr(out, "--wait-daemon") && strstr(out, "--json"),
                              "%s --help: %s", *c, out);
                free(out);
        }
}
END_TEST

START_TEST(test_not_admin) {
        Options o = {.fd3 = -1, .uid = 65534};
        char *err = NULL;
        json_t *v;

        if (geteuid() != 0)
                return; /* needs root to become "nobody" */
        /* Let "nobody" reach the socket (the test directory is 0700). */
        ck_assert_int_eq(chmod(daemon_.dir, 0755), 0);
        /* A user sees its own uid's clients (here: evctl's own connection), not root's. */
        {
                json_t *cl;
                char *out = NULL;
                size_t i;

                ck_assert_int_eq(EVCTL_O(&o, &out, &err, "--json", "clients"), 0);
                v = json_loads(out, 0, NULL);
                ck_assert_msg(v, "%s / %s", out, err);
                ck_assert_int_ge(json_integer_value(json_object_get(v, "total")), 1);
                json_array_foreach(json_object_get(v, "clients"), i, cl)
                        ck_assert_int_eq(json_integer_value(json_object_get(cl, "uid")), 65534);
                json_decref(v);
                free(out);
                free(err);
        }
        ck_assert_int_eq(EVCTL_O(&o, NULL, NULL, "watches"), 0);
        ck_assert_int_eq(EVCTL_O(&o, NULL, &err, "watches", "--client", "1"), 5);
        ck_assert_ptr_nonnull(strstr(err, "admin"));
        free(err);
        ck_assert_int_eq(EVCTL_O(&o, NULL, NULL, "monitor"), 5);
        ck_assert_int_eq(EVCTL_O(&o, NULL, NULL, "reexec"), 5);
        ck_assert_int_eq(EVCTL_O(&o, NULL, NULL, "status"), 0);
        v = EVCTL_JSON("status");
        json_decref(v);
}
END_TEST

/* `evctl reexec` returns once the new image serves; the daemon keeps its PID. */
START_TEST(test_reexec) {
        json_t *before = EVCTL_JSON("status"), *v;
        char *out = NULL;

        ck_assert_int_eq(EVCTL(&out, NULL, "reexec"), 0);
        ck_assert_ptr_nonnull(strstr(out, "generation 1"));
        free(out);
        v = EVCTL_JSON("reexec");
        ck_assert_int_eq(json_integer_value(json_object_get(v, "generation")), 2);
        json_decref(v);
        v = EVCTL_JSON("status");
        ck_assert_int_eq(json_integer_value(json_object_get(v, "pid")),
                         json_integer_value(json_object_get(before, "pid")));
        json_decref(v);
        json_decref(before);
}
END_TEST

/* ---- issue 12 audit: monitor filters and connection lines, a user's own uid, wait's
 * --any/--all, the call completion, the watch columns, the stats means ---------------- */

/* @tc's hello as @name; its client id. */
static json_int_t hello_as(TestClient *tc, const char *name) {
        json_t *r = test_client_result(
                tc, "hello", json_pack("{s:i,s:s}", "protocol", 1, "client", name), NULL, 0);
        json_int_t id = json_integer_value(json_object_get(r, "client_id"));

        json_decref(r);
        ck_assert_int_gt(id, 0);
        return id;
}

/* Whether @tc's `clients` lists client @id (as @tc may see them). */
static bool client_listed(TestClient *tc, json_int_t id) {
        json_t *c = test_client_result(tc, "clients", NULL, NULL, 0), *it;
        bool found = false;
        size_t i;

        json_array_foreach(json_object_get(c, "clients"), i, it) found |=
                json_integer_value(json_object_get(it, "client")) == id;
        json_decref(c);
        return found;
}

/* Wait until the daemon has dropped client @id: its disconnect went out to the monitors. */
static void wait_client_gone(TestClient *tc, json_int_t id) {
        for (int i = 0; client_listed(tc, id); i++) {
                ck_assert_int_lt(i, 250 * arg_slow);
                usleep(20000);
        }
}

/* Wait until some connection is a monitor (evctl's "monitor" call is in). */
static void wait_monitoring(TestClient *tc) {
        for (int i = 0;; i++) {
                json_t *c = test_client_result(tc, "clients", NULL, NULL, 0), *it;
                bool on = false;
                size_t j;

                json_array_foreach(json_object_get(c, "clients"), j, it) on |=
                        json_is_true(json_object_get(it, "monitor"));
                json_decref(c);
                if (on)
                        return;
                ck_assert_int_lt(i, 250 * arg_slow);
                usleep(20000);
        }
}

/* A timer that fires at once, tagged @tag; returns once @tc has its notification, so the
 * monitors' copy went out before anything the test does next. */
static void fire_timer(TestClient *tc, const char *tag) {
        json_decref(test_client_result(tc, "timer", json_pack("{s:i,s:s}", "after", 0, "tag", tag),
                                       NULL, 0));
        json_decref(test_client_notification(tc, "timer", WAIT_MS));
}

/* A connection that says hello and leaves; returns once the daemon has dropped it (seen
 * by @tc, an admin): both its lines went out to the monitors. */
static void come_and_go(TestClient *tc) {
        TestClient late;
        json_int_t id;

        ck_assert_int_eq(test_client_connect(&late, daemon_.socket), 0);
        id = hello_as(&late, "come-and-go");
        test_client_close(&late);
        wait_client_gone(tc, id);
}

/* read_until() appending at *@len in @buf (what came before stays). */
static void read_more(int fd, const char *needle, char *buf, size_t size, size_t *len) {
        ck_assert_msg(read_until(fd, needle, buf + *len, size - *len), "no \"%s\" after: %s",
                      needle, buf);
        *len += strlen(buf + *len);
}

/* Close @leaver, read @run's lines up to its disconnect, stop @run (Ctrl-C: exit 0) and
 * append the rest it printed to @buf. */
static void monitor_finish(Run *run, TestClient *leaver, char *buf, size_t size, size_t *len) {
        char *out = NULL;

        test_client_close(leaver);
        read_more(run->out, "disconnected", buf, size, len);
        ck_assert_int_eq(kill(run->pid, SIGINT), 0);
        ck_assert_int_eq(evctl_finish(run, &out, NULL), 0);
        ck_assert_uint_lt(*len + strlen(out), size);
        strcat(buf, out);
        free(out);
}

/* `monitor --client ID`: that client's lines, its notifications and its disconnect, and
 * no other's (a notification, a connect, a disconnect) though they came first. */
START_TEST(test_monitor_client_filter) {
        static char buf[65536];
        TestClient a, b;
        json_int_t ida;
        char id[32], *line, *save = NULL;
        size_t len = 0;
        int matched = 0;
        Run run;

        ck_assert_int_eq(test_client_connect(&a, daemon_.socket), 0);
        ck_assert_int_eq(test_client_connect(&b, daemon_.socket), 0);
        ida = hello_as(&a, "filter-a");
        (void)hello_as(&b, "filter-b");
        snprintf(id, sizeof(id), "%lld", (long long)ida);
        evctl_start(&run, NULL, (const char *const[]){"monitor", "--client", id, NULL});
        read_more(run.out, "Ctrl-C", buf, sizeof(buf), &len);
        fire_timer(&b, "from-b");
        come_and_go(&b);
        fire_timer(&a, "from-a");
        read_more(run.out, "\"from-a\"", buf, sizeof(buf), &len);
        monitor_finish(&run, &a, buf, sizeof(buf), &len);
        /* Every line after the "Monitoring" one is client a's. */
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                long long who = -1;

                if (strncmp(line, "Monitoring", 10) == 0)
                        continue;
                ck_assert_msg(sscanf(line, "%*s client %lld", &who) == 1 && who == ida,
                              "not client %s's: %s", id, line);
                ck_assert_msg(strstr(line, "filter-a["), "no name: %s", line);
                matched++;
        }
        ck_assert_int_eq(matched, 2); /* its timer, its disconnect */
        test_client_close(&b);
}
END_TEST

/* `monitor --method` given twice: lines of either kind, none of the others (it used to keep
 * only the last one given, silently). */
START_TEST(test_monitor_methods) {
        static char buf[65536];
        char *line, *save = NULL;
        size_t len = 0;
        int timers = 0, gone = 0;
        TestClient a;
        Run run;

        ck_assert_int_eq(test_client_connect(&a, daemon_.socket), 0);
        (void)hello_as(&a, "methods");
        evctl_start(&run, NULL, (const char *const[]){"monitor", "--method", "timer", "--method", "disconnected", NULL});
        read_more(run.out, "Ctrl-C", buf, sizeof(buf), &len);
        come_and_go(&a);
        fire_timer(&a, "either");
        read_more(run.out, "\"either\"", buf, sizeof(buf), &len);
        monitor_finish(&run, &a, buf, sizeof(buf), &len);
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (strncmp(line, "Monitoring", 10) == 0)
                        continue;
                ck_assert_msg(!strstr(line, " connected uid"), "a connected line: %s", line);
                timers += strstr(line, " timer ") != NULL;
                gone += strstr(line, " disconnected") != NULL;
        }
        ck_assert_int_eq(timers, 1);
        ck_assert_int_eq(gone, 2); /* come-and-go's, then a's */
}
END_TEST

/* `monitor --uid UID` (--json): that uid's clients' lines only, the matching ones all. */
START_TEST(test_monitor_uid_filter) {
        static char buf[65536];
        const uid_t nobody = 65534;
        TestClient root, nb;
        json_int_t idn;
        char *line, *save = NULL;
        size_t len = 0;
        int timers = 0, disconnects = 0;
        Run run;

        if (geteuid() != 0)
                return;                                /* needs root to connect as "nobody" */
        ck_assert_int_eq(chmod(daemon_.dir, 0755), 0); /* let uid 65534 reach the socket */
        ck_assert_int_eq(test_client_connect(&root, daemon_.socket), 0);
        ck_assert_int_eq(test_client_connect_as(&nb, daemon_.socket, nobody, nobody), 0);
        (void)hello_as(&root, "uid-root");
        idn = hello_as(&nb, "uid-nobody");
        evctl_start(&run, NULL, (const char *const[]){"--json", "monitor", "--uid", "65534", NULL});
        wait_monitoring(&root);
        /* Root's first (a notification, a connect, a disconnect), then nobody's. */
        fire_timer(&root, "from-root");
        come_and_go(&root);
        fire_timer(&nb, "from-nobody");
        read_more(run.out, "\"from-nobody\"", buf, sizeof(buf), &len);
        monitor_finish(&run, &nb, buf, sizeof(buf), &len);
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                json_t *v = json_loads(line, 0, NULL), *msg;

                ck_assert_msg(v, "not JSON: %s", line);
                ck_assert_msg(json_integer_value(json_object_get(v, "uid")) == nobody,
                              "another uid's: %s", line);
                ck_assert_int_eq(json_integer_value(json_object_get(v, "client")), idn);
                msg = json_object_get(v, "message");
                if (msg) {
                        ck_assert_str_eq(json_string_value(json_object_get(msg, "method")),
                                         "timer");
                        ck_assert_str_eq(json_string_value(json_object_get(
                                                 json_object_get(msg, "params"), "tag")),
                                         "from-nobody");
                        timers++;
                } else {
                        ck_assert_str_eq(json_string_value(json_object_get(v, "event")),
                                         "disconnected");
                        disconnects++;
                }
                json_decref(v);
        }
        ck_assert_int_eq(timers, 1);
        ck_assert_int_eq(disconnects, 1);
        test_client_close(&root);
}
END_TEST

/* A connection's line as `monitor` prints it, text and --json: who (id, name, pid) on
 * each; before its hello a client has no name ("?", no "name"). */
START_TEST(test_monitor_connection_lines) {
        static char buf[65536];
        TestClient tc, c;
        json_int_t id;
        char *out = NULL, *err = NULL, *nl, want[64];
        json_t *v;
        long long who = -1;
        Run run;

        ck_assert_int_eq(test_client_connect(&tc, daemon_.socket), 0);

        /* --json: {"client", "pid", "uid", ["name"], "event", ["reason"], "time"}. */
        evctl_start(&run, NULL, (const char *const[]){"--json", "monitor", NULL});
        wait_monitoring(&tc);
        ck_assert_int_eq(test_client_connect(&c, daemon_.socket), 0);
        ck_assert(read_until(run.out, "\n", buf, sizeof(buf)));
        id = hello_as(&c, "shape");
        nl = strchr(buf, '\n');
        *nl = 0;
        v = json_loads(buf, 0, NULL);
        ck_assert_msg(v, "%s", buf);
        ck_assert_str_eq(json_string_value(json_object_get(v, "event")), "connected");
        ck_assert_int_eq(json_integer_value(json_object_get(v, "client")), id);
        ck_assert_int_eq(json_integer_value(json_object_get(v, "pid")), getpid());
        ck_assert_int_eq(json_integer_value(json_object_get(v, "uid")), getuid());
        ck_assert_msg(!json_object_get(v, "name") && !json_object_get(v, "reason") &&
                              json_is_real(json_object_get(v, "time")),
                      "%s", buf);
        json_decref(v);
        test_client_close(&c);
        ck_assert(read_until(run.out, "\n", buf, sizeof(buf)));
        nl = strchr(buf, '\n');
        *nl = 0;
        v = json_loads(buf, 0, NULL);
        ck_assert_msg(v, "%s", buf);
        ck_assert_str_eq(json_string_value(json_object_get(v, "event")), "disconnected");
        ck_assert_int_eq(json_integer_value(json_object_get(v, "client")), id);
        ck_assert_int_eq(json_integer_value(json_object_get(v, "pid")), getpid());
        ck_assert_int_eq(json_integer_value(json_object_get(v, "uid")), getuid());
        ck_assert_str_eq(json_string_value(json_object_get(v, "name")), "shape");
        ck_assert_str_eq(json_string_value(json_object_get(v, "reason")), "disconnected");
        ck_assert(json_is_real(json_object_get(v, "time")));
        json_decref(v);
        ck_assert_int_eq(kill(run.pid, SIGINT), 0);
        ck_assert_int_eq(evctl_finish(&run, &out, &err), 0);
        free(out);
        free(err);
        /* Text: "HH:MM:SS.mmm  client ID  NAME[PID]  connected uid UID". Second: it waits
         * for its own "Monitoring" line, where the clients list may still show the first. */
        evctl_start(&run, NULL, (const char *const[]){"monitor", NULL});
        ck_assert(read_until(run.out, "Ctrl-C", buf, sizeof(buf)));
        ck_assert_int_eq(test_client_connect(&c, daemon_.socket), 0);
        ck_assert(read_until(run.out, "\n", buf, sizeof(buf)));
        id = hello_as(&c, "shape");
        snprintf(want, sizeof(want), "?[%d]  connected uid %d\n", (int)getpid(), (int)getuid());
        ck_assert_msg(sscanf(buf, "%*s client %lld", &who) == 1 && who == id && strstr(buf, want),
                      "%s", buf);
        test_client_close(&c);
        ck_assert(read_until(run.out, "\n", buf, sizeof(buf)));
        snprintf(want, sizeof(want), "shape[%d]  disconnected\n", (int)getpid());
        ck_assert_msg(sscanf(buf, "%*s client %lld", &who) == 1 && who == id && strstr(buf, want),
                      "%s", buf);
        ck_assert_int_eq(kill(run.pid, SIGINT), 0);
        ck_assert_int_eq(evctl_finish(&run, &out, &err), 0);
        free(out);
        free(err);

        test_client_close(&tc);
}
END_TEST

/* The one item of @list's @key array, or fail. */
static json_t *only_item(json_t *list, const char *key) {
        json_t *items = json_object_get(list, key);

        ck_assert_msg(json_array_size(items) == 1, "%s: %zu, not 1", key, json_array_size(items));
        return json_array_get(items, 0);
}

/* A non-admin evctl lists another connection of its own uid (clients, watches, timers),
 * read-only, and nothing of root's. */
START_TEST(test_not_admin_own_uid) {
        Options o = {.fd3 = -1, .uid = 65534};
        TestClient root, peer;
        json_int_t idp;
        json_t *v, *it;
        char *out = NULL, *err = NULL, id[32], unwatch[64];
        long long wp;
        size_t i;
        int p[2];
        bool seen = false;

        if (geteuid() != 0)
                return;                                /* needs root to become "nobody" */
        ck_assert_int_eq(chmod(daemon_.dir, 0755), 0); /* let uid 65534 reach the socket */
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        ck_assert_int_eq(test_client_connect(&root, daemon_.socket), 0);
        (void)hello_as(&root, "root-secret");
        json_decref(test_client_result(&root, "watch",
                                       json_pack("{s:i,s:[s],s:s,s:s}", "fd", 0, "events", "in",
                                                 "mode", "edge", "tag", "root-secret"),
                                       &p[0], 1));
        json_decref(test_client_result(&root, "timer",
                                       json_pack("{s:i,s:s}", "after", 60, "tag", "root-secret"),
                                       NULL, 0));
        ck_assert_int_eq(test_client_connect_as(&peer, daemon_.socket, 65534, 65534), 0);
        idp = hello_as(&peer, "nobody-peer");
        v = test_client_result(&peer, "watch",
                               json_pack("{s:i,s:[s],s:s,s:s}", "fd", 0, "events", "in", "mode",
                                         "edge", "tag", "peer-pipe"),
                               &p[0], 1);
        wp = json_integer_value(json_object_get(v, "watch"));
        json_decref(v);
        json_decref(test_client_result(
                &peer, "timer", json_pack("{s:i,s:s}", "after", 60, "tag", "peer-tick"), NULL, 0));
        snprintf(id, sizeof(id), "%lld", (long long)idp);

        /* clients: the peer (and evctl itself), never root's. */
        ck_assert_int_eq(EVCTL_O(&o, &out, &err, "--json", "clients"), 0);
        v = json_loads(out, 0, NULL);
        ck_assert_msg(v, "%s / %s", out, err);
        json_array_foreach(json_object_get(v, "clients"), i, it) {
                ck_assert_int_eq(json_integer_value(json_object_get(it, "uid")), 65534);
                seen |= json_integer_value(json_object_get(it, "client")) == idp &&
                        strcmp(json_string_value(json_object_get(it, "name")), "nobody-peer") == 0;
        }
        ck_assert_msg(seen, "the peer is not listed: %s", out);
        json_decref(v);
        free(out);
        free(err);
        /* watches and timers: every one it may see, and the peer's by its id. */
        for (const char *const *what = (const char *const[]){"watches", "timers", NULL}; *what;
             what++) {
                const char *tag = strcmp(*what, "watches") == 0 ? "peer-pipe" : "peer-tick";

                ck_assert_int_eq(EVCTL_O(&o, &out, &err, "--json", *what), 0);
                v = json_loads(out, 0, NULL);
                ck_assert_msg(v, "%s / %s", out, err);
                it = only_item(v, *what);
                ck_assert_str_eq(json_string_value(json_object_get(it, "tag")), tag);
                ck_assert_int_eq(json_integer_value(json_object_get(it, "client")), idp);
                json_decref(v);
                free(out);
                free(err);
                ck_assert_int_eq(EVCTL_O(&o, &out, &err, "--json", *what, "--client", id), 0);
                v = json_loads(out, 0, NULL);
                ck_assert_msg(v, "%s / %s", out, err);
                ck_assert_str_eq(json_string_value(json_object_get(only_item(v, *what), "tag")),
                                 tag);
                json_decref(v);
                free(out);
                free(err);
                ck_assert_int_eq(EVCTL_O(&o, &out, &err, *what), 0);
                ck_assert_msg(strstr(out, tag) && !strstr(out, "root-secret"), "%s", out);
                free(out);
                free(err);
        }
        /* Read-only: the peer's watch is not evctl's to remove, and stays. */
        snprintf(unwatch, sizeof(unwatch), "{\"watch\": %lld}", wp);
        ck_assert_int_eq(EVCTL_O(&o, NULL, &err, "call", "unwatch", unwatch), 1);
        free(err);
        ck_assert_int_eq(EVCTL_O(&o, &out, NULL, "watches", "--client", id), 0);
        ck_assert_msg(strstr(out, "peer-pipe"), "%s", out);
        free(out);
        test_client_close(&peer);
        test_client_close(&root);
        close(p[0]);
        close(p[1]);
}
END_TEST

/* --any and --all ask for opposite things: a usage error, not the last one winning. */
START_TEST(test_wait_any_all) {
        Options o = {.fd3 = -1};
        char *out = NULL, *err = NULL;
        int p[2];

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        o.fd3 = p[1]; /* writable at once: either would return 0 */
        for (const char *const *order = (const char *const[]){"--any", "--all", "--any", NULL};
             order[1]; order++) {
                ck_assert_int_eq(EVCTL_O(&o, &out, &err, "wait", "--out", order[0], order[1], "3"),
                                 2);
                ck_assert_str_eq(out, "");
                ck_assert_msg(one_line(err) && strstr(err, "--any") && strstr(err, "--all"), "%s",
                              err);
                free(out);
                free(err);
        }
        ck_assert_int_eq(EVCTL_O(&o, &out, NULL, "wait", "--out", "--all", "--all", "3"), 0);
        ck_assert_str_eq(out, "3 out\n");
        free(out);
        close(p[0]);
        close(p[1]);
}
END_TEST

/* What the bash completion offers for the words @argv (the last: the one being completed),
 * one per line. $EVCTL_COMPLETION is the script; bash without bash-completion uses its
 * fallback. */
static char *complete(const char *const *argv) {
        const char *script = getenv("EVCTL_COMPLETION");
        const char *args[32] = {"bash", "--norc", "--noprofile", "-c",
                                "source \"$0\" || exit 1; COMP_WORDS=(\"$@\"); "
                                "COMP_CWORD=$(($# - 1)); _evctl; "
                                "printf '%s\\n' \"${COMPREPLY[@]}\"",
                                script, "evctl"};
        size_t n = 7;
        int out[2], status;
        char *text;
        pid_t pid;

        ck_assert_msg(script && *script, "EVCTL_COMPLETION is not set");
        for (; *argv && n < 31; argv++)
                args[n++] = *argv;
        args[n] = NULL;
        ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                (void)dup2(out[1], STDOUT_FILENO);
                execvp(args[0], (char *const *)args);
                _exit(127);
        }
        close(out[1]);
        text = slurp(out[0], now_ms() + WAIT_MS);
        close(out[0]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "bash: status %d, %s", status,
                      text);
        return text;
}

#define COMPLETE(...) complete((const char *const[]){__VA_ARGS__, NULL})

/* `evctl call METHOD [PARAMS]`: method names for METHOD, nothing where PARAMS go. */
START_TEST(test_completion_call) {
        char *c;

        c = COMPLETE("call", "");
        ck_assert_msg(strstr(c, "status\n") && strstr(c, "ping\n"), "%s", c);
        free(c);
        c = COMPLETE("call", "sta");
        ck_assert_str_eq(c, "status\nstats\n");
        free(c);
        c = COMPLETE("--socket", "/tmp/x", "call", "");
        ck_assert_msg(strstr(c, "status\n"), "%s", c);
        free(c);
        for (const char *const *const *w =
                     (const char *const *const[]){
                             (const char *const[]){"call", "status", "", NULL},
                             (const char *const[]){"call", "status", "s", NULL},
                             (const char *const[]){"--json", "call", "timers", "", NULL},
                             (const char *const[]){"call", "-s", "/tmp/x", "timers", "{}", "",
                                                   NULL},
                             NULL};
             *w; w++) {
                c = complete(*w);
                ck_assert_msg(strcmp(c, "\n") == 0 || strcmp(c, "") == 0,
                              "after the method (%s ...): %s", (*w)[1], c);
                free(c);
        }
        c = COMPLETE("call", "status", "--js");
        ck_assert_str_eq(c, "--json\n");
        free(c);
}
END_TEST

/* The watch listing: one word per column header, as many as a row has cells. */
START_TEST(test_watch_columns) {
        TestClient tc;
        char *out = NULL, *nl, *save = NULL;
        int p[2], headers = 0, cells = 0;

        ck_assert_int_eq(test_client_connect(&tc, daemon_.socket), 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        json_decref(test_client_result(&tc, "watch",
                                       json_pack("{s:i,s:[s],s:s,s:s}", "fd", 0, "events", "in",
                                                 "mode", "edge", "tag", "one-word"),
                                       &p[0], 1));
        ck_assert_int_eq(EVCTL(&out, NULL, "watches"), 0);
        nl = strchr(out, '\n');
        ck_assert_ptr_nonnull(nl);
        *nl = 0;
        ck_assert_msg(strstr(out, "FDTYPE"), "%s", out);
        for (char *w = strtok_r(out, " ", &save); w; w = strtok_r(NULL, " ", &save))
                headers++;
        for (char *w = strtok_r(nl + 1, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
                cells++;
        ck_assert_int_eq(headers, 8);
        ck_assert_int_eq(cells, 8);
        free(out);
        test_client_close(&tc);
        close(p[0]);
        close(p[1]);
}
END_TEST

/* stats --json: every histogram's mean_us to the nanosecond (its other times' precision),
 * not a quotient's 16 digits. Samples first, so that the means are not whole. */
START_TEST(test_stats_means) {
        TestClient tc;
        char *out = NULL, *q;
        json_t *v;
        int means = 0;

        ck_assert_int_eq(test_client_connect(&tc, daemon_.socket), 0);
        for (int i = 0; i < 3; i++)
                fire_timer(&tc, "sample");
        ck_assert_int_eq(EVCTL(NULL, NULL, "ping", "-c", "5", "-i", "0"), 0);
        ck_assert_int_eq(EVCTL(&out, NULL, "--json", "stats"), 0);
        v = json_loads(out, 0, NULL);
        ck_assert_msg(v, "%s", out);
        ck_assert(json_integer_value(
                          json_object_get(json_object_get(v, "timer_lateness"), "count")) >= 3);
        json_decref(v);
        for (q = strstr(out, "\"mean_us\":"); q; q = strstr(q, "\"mean_us\":")) {
                const char *dot;
                size_t decimals = 0;

                q += strlen("\"mean_us\":");
                dot = q + strspn(q, "0123456789");
                if (*dot == '.')
                        decimals = strspn(dot + 1, "0123456789");
                ck_assert_msg(decimals <= 3 && dot[decimals ? decimals + 1 : 0] != 'e',
                              "mean_us %.24s", q);
                means++;
        }
        ck_assert_int_ge(means, 3);
        free(out);
        test_client_close(&tc);
}
END_TEST

/* --json reals: the shortest form that reads back the same (no one precision does: 16
 * digits wrote 0.567 as 0.5669999999999999), a tag's 17 digits kept, strings untouched. */
START_TEST(test_json_reals) {
        TestClient tc;
        char *out = NULL;

        ck_assert_int_eq(EVCTL(&out, NULL, "--json", "sleep", "0.567"), 0);
        ck_assert_msg(strstr(out, "{\"seconds\":0.567,\"elapsed\":0.") == out, "%s", out);
        free(out);
        ck_assert_int_eq(test_client_connect(&tc, daemon_.socket), 0);
        json_decref(test_client_result(
                &tc, "timer",
                json_pack("{s:i,s:i,s:[f,f,f,s]}", "after", 60, "interval", 60, "tag", 0.1 + 0.2,
                          60.0, 1e-7, "\"1.50\\\"-2.0e3"),
                NULL, 0));
        ck_assert_int_eq(EVCTL(&out, NULL, "--json", "timers"), 0);
        ck_assert_msg(strstr(out, "\"interval\":60.0,") &&
                              strstr(out, "\"tag\":[0.30000000000000004,60.0,1e-07,"
                                          "\"\\\"1.50\\\\\\\"-2.0e3\"]"),
                      "%s", out);
        free(out);
        test_client_close(&tc);
}
END_TEST

static Suite *evctl_suite(void) {
        Suite *s = suite_create("evctl");
        TCase *tc = test_tcase(s, "commands", 60 * arg_slow);

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_status_version_stats_ping);
        tcase_add_test(tc, test_stats_fds);
        tcase_add_test(tc, test_stats_rates);
        tcase_add_test(tc, test_stats_since);
        tcase_add_test(tc, test_listings);
        tcase_add_test(tc, test_wait);
        tcase_add_test(tc, test_sleep_timer);
        tcase_add_test(tc, test_wait_for_pid);
        tcase_add_test(tc, test_watch_stream);
        tcase_add_test(tc, test_call);
        tcase_add_test(tc, test_monitor);
        tcase_add_test(tc, test_missing_daemon);
        tcase_add_test(tc, test_missing_user_daemon);
        tcase_add_test(tc, test_usage);
        tcase_add_test(tc, test_not_admin);
        tcase_add_test(tc, test_reexec);
        tcase_add_test(tc, test_monitor_client_filter);
        tcase_add_test(tc, test_monitor_methods);
        tcase_add_test(tc, test_monitor_uid_filter);
        tcase_add_test(tc, test_monitor_connection_lines);
        tcase_add_test(tc, test_not_admin_own_uid);
        tcase_add_test(tc, test_wait_any_all);
        tcase_add_test(tc, test_completion_call);
        tcase_add_test(tc, test_watch_columns);
        tcase_add_test(tc, test_stats_means);
        tcase_add_test(tc, test_json_reals);
        return s;
}


int main(void) {
        if (test_uring_refused())
                return 77;
        int r;

        if (getenv("EVD_UNDER_VALGRIND")) {
                arg_slow = 10;
                arg_valgrind = true;
                snprintf(valgrind_tmp, sizeof(valgrind_tmp), "%s/evctl-valgrind-XXXXXX", test_tmpdir());
                if (!mkdtemp(valgrind_tmp) || chmod(valgrind_tmp, 01777) < 0) {
                        fprintf(stderr, "cannot make a temp directory for valgrind: %s\n", strerror(errno));
                        return 1;
                }
        }
        (void)signal(SIGPIPE, SIG_IGN);

        r = test_run_suite(evctl_suite());
        if (arg_valgrind)
                test_remove_tree(valgrind_tmp);
        return r;
}
