/* soak.c - mixed load against an evd it starts, for a given time; fails on growth
 *
 * Usage: soak [--evd PATH] [--seconds N] [--workers N] [--backend io_uring|epoll]
 *             [--pace-us N] [--rss-slack KIB] [--kill-every N] [--with-fd-cycles] [--keep]
 *
 * The daemon is $EVD_SOAK_DAEMON, else --evd PATH, else the evd of this build tree. It is
 * started on a socket in a fresh mkdtemp() directory, its stderr (log level notice) in
 * evd.log next to it; the directory is removed at the end unless the run failed or --keep.
 *
 * Load: --workers processes (default 4; 2 under EVD_UNDER_VALGRIND=1), each keeping up to 6
 * connections and doing, at random, every --pace-us microseconds (default 500): connect,
 * disconnect abruptly (with watches, timers and unread output), watch pipes and eventfds in
 * oneshot and edge mode, make them ready, read notifications and re-arm, unwatch, start
 * one-shot and repeating timers, cancel, batches, broken JSON, fds the daemon must refuse (40
 * on one packet), and stalls (a connection that stops reading for a while). A worker checks
 * every reply it waits for: no Internal error (-32603), nothing unparseable, no reply missing
 * for 5 s, no connection dropped; any of these is counted as an error. Every --kill-every
 * seconds (default 3) one worker is killed with SIGKILL and replaced. --with-fd-cycles adds a
 * hostile action (off by default): a connection that parks its own fd in the queue of a
 * socket it asks evd to watch, then is dropped; evd cannot see it go (tests/test-hostile.c,
 * test_fd_cycle_through_queue), so this shows the fd criterion failing until that is fixed.
 *
 * Once a second the daemon's fd count and RSS are printed with its status (one line per
 * second). At the end every worker is killed and the daemon given 10 s to drop them all.
 *
 * Growth, which fails the run (exit 1):
 *  - fds: with every worker gone, the daemon's fd count is above its count at the start
 *    (both taken with only this program's control connection open);
 *  - RSS (not under AddressSanitizer, whose quarantine keeps freed memory resident): with
 *    every worker gone, RSS more than --rss-slack (default 4096 KiB) above the median of the
 *    middle third of the run; or the median of the last third more than --rss-slack above
 *    the median of the middle third (growth while the load goes on).
 * Also failing: a worker error, the daemon dying or not answering the control connection's
 * ping within 5 s, or not exiting 0 on SIGTERM at the end.
 *
 * This file: the run (spawning and killing workers, sampling, the verdict) and main().
 * soak-options.c: the options; soak-client.c: the wire client (where the daemon listens,
 * connect, receive, error codes, the clock); soak-worker.c: the workers and their
 * actions; soak-daemon.c: the evd under test (start, fd count, RSS, the control
 * connection). soak.h declares what they share. Calls go downward only: main ->
 * worker, daemon -> client, options (tools/check-layers --dir bench).
 */

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "soak.h"

/* ---- the run ----------------------------------------------------------------------- */

typedef struct Sample {
        int fds;
        long rss_kib;
} Sample;

static pid_t spawn_worker(int report, unsigned seed) {
        pid_t pid = fork();

        if (pid == 0)
                worker_run(report, seed);
        return pid;
}

static int cmp_long(const void *a, const void *b) {
        long x = *(const long *)a, y = *(const long *)b;

        return (x > y) - (x < y);
}

static long median_rss(const Sample *s, size_t from, size_t to) {
        long *v;
        long m;

        if (to <= from)
                return -1;
        v = malloc((to - from) * sizeof(long));
        if (!v)
                return -1;
        for (size_t i = from; i < to; i++)
                v[i - from] = s[i].rss_kib;
        qsort(v, to - from, sizeof(long), cmp_long);
        m = v[(to - from) / 2];
        free(v);
        return m;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        (void)remove(path);
        return 0;
}

int main(int argc, char **argv) {
        pid_t workers[MAX_WORKERS];
        Sample *samples;
        size_t n_samples = 0;
        long long next_id = 0, t0, max_ping_ms = 0, kills = 0;
        unsigned errors = 0, seed = (unsigned)time(NULL);
        const char *fail = NULL;
        int report[2], ctl, fd_start, fd_end = -1, status = 0, r;
        long rss_start, rss_end = -1, mid = -1, last = -1;
        json_t *st;
        char why[256] = "";

        setvbuf(stdout, NULL, _IOLBF, 0);
        (void)signal(SIGPIPE, SIG_IGN);
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (getenv("EVD_SOAK_DAEMON") && *getenv("EVD_SOAK_DAEMON"))
                arg_evd = getenv("EVD_SOAK_DAEMON");
        if (!arg_evd)
                arg_evd = EVD_SOAK_DAEMON;
        if (getenv("EVD_UNDER_VALGRIND") && strcmp(getenv("EVD_UNDER_VALGRIND"), "1") == 0) {
                arg_workers = arg_workers > 2 ? 2 : arg_workers;
                arg_pace_us = arg_pace_us < 2000 ? 2000 : arg_pace_us;
        }
        samples = calloc(arg_seconds + 1, sizeof(Sample));
        if (!samples || pipe2(report, O_CLOEXEC | O_NONBLOCK) < 0)
                return 2;

        r = start_daemon();
        if (r < 0) {
                fprintf(stderr, "soak: cannot start %s (%s); see %s\n", arg_evd, strerror(-r),
                        soak_log);
                return 1;
        }
        ctl = connect_daemon();
        if (ctl < 0) {
                fprintf(stderr, "soak: cannot connect: %s\n", strerror(-ctl));
                return 1;
        }
        /* The engine opens a wall-clock timerfd at the first `at` timer and keeps it: count it
         * in the start. Then wait for the start-up probe to be gone. */
        st = ctl_call(ctl, &next_id, "timer", "{\"at\":2000000000}");
        if (st) {
                char p[64];

                snprintf(p, sizeof(p), "{\"timer\":%lld}",
                         (long long)json_integer_value(
                                 json_object_get(json_object_get(st, "result"), "timer")));
                json_decref(ctl_call(ctl, &next_id, "cancel", p));
        }
        json_decref(st);
        for (int i = 0; i < 100; i++) {
                st = ctl_call(ctl, &next_id, "status", NULL);
                r = st ? (int)status_member(st, "clients") : -1;
                json_decref(st);
                if (r == 1)
                        break;
                (void)usleep(10000);
        }
        fd_start = daemon_fd_count();
        rss_start = daemon_rss_kib();
        printf("soak: evd %s (pid %d), %u workers, %u s, pace %u us, seed %u; start: fds=%d "
               "rss_kib=%ld\n",
               arg_evd, (int)daemon_pid, arg_workers, arg_seconds, arg_pace_us, seed, fd_start,
               rss_start);

        for (unsigned i = 0; i < arg_workers; i++)
                workers[i] = spawn_worker(report[1], seed + i);
        t0 = now_ms();
        for (unsigned sec = 1; sec <= arg_seconds && !fail; sec++) {
                long long t_ping, ping_ms;
                char buf[256];
                ssize_t n;

                while (now_ms() < t0 + (long long)sec * 1000)
                        (void)usleep(10000);
                while ((n = read(report[0], buf, sizeof(buf))) > 0)
                        errors += (unsigned)n;
                if (!daemon_alive(&status)) {
                        fail = "the daemon died";
                        break;
                }
                if (sec % arg_kill_every == 0) {
                        unsigned k = (unsigned)rand_r(&seed) % arg_workers;

                        (void)kill(workers[k], SIGKILL);
                        (void)waitpid(workers[k], NULL, 0);
                        workers[k] = spawn_worker(report[1], seed + sec);
                        kills++;
                }
                t_ping = now_ms();
                st = ctl_call(ctl, &next_id, "status", NULL);
                ping_ms = now_ms() - t_ping;
                if (!st || !json_object_get(st, "result")) {
                        fail = "the daemon did not answer the control connection within 5 s";
                        json_decref(st);
                        break;
                }
                max_ping_ms = ping_ms > max_ping_ms ? ping_ms : max_ping_ms;
                samples[n_samples].fds = daemon_fd_count();
                samples[n_samples].rss_kib = daemon_rss_kib();
                printf("t=%3u fds=%5d rss_kib=%6ld clients=%4lld watches=%5lld timers=%5lld "
                       "notifications=%lld status_ms=%lld errors=%u\n",
                       sec, samples[n_samples].fds, samples[n_samples].rss_kib,
                       status_member(st, "clients"), status_member(st, "watches"),
                       status_member(st, "timers"), status_member(st, "notifications"), ping_ms,
                       errors);
                n_samples++;
                json_decref(st);
        }

        /* Everyone leaves; the daemon must drop them all. */
        for (unsigned i = 0; i < arg_workers; i++) {
                (void)kill(workers[i], SIGKILL);
                (void)waitpid(workers[i], NULL, 0);
        }
        {
                char buf[256];
                ssize_t n;

                while ((n = read(report[0], buf, sizeof(buf))) > 0)
                        errors += (unsigned)n;
        }
        if (!fail) {
                long long deadline = now_ms() + 10000;

                for (;;) {
                        st = ctl_call(ctl, &next_id, "status", NULL);
                        if (!st) {
                                fail = "the daemon did not answer after the load";
                                break;
                        }
                        r = status_member(st, "clients") == 1 &&
                            status_member(st, "watches") == 0 && status_member(st, "timers") == 0;
                        json_decref(st);
                        if (r && daemon_fd_count() <= fd_start)
                                break;
                        if (now_ms() > deadline)
                                break;
                        (void)usleep(20000);
                }
                (void)usleep(500000); /* let the allocator settle */
                fd_end = daemon_fd_count();
                rss_end = daemon_rss_kib();
                mid = median_rss(samples, n_samples / 3, 2 * n_samples / 3);
                last = median_rss(samples, 2 * n_samples / 3, n_samples);
                printf("soak: end: fds=%d (start %d) rss_kib=%ld (start %ld, median of the middle "
                       "third "
                       "%ld, of the last third %ld); %lld worker kills; slowest status %lld ms; "
                       "%u worker errors\n",
                       fd_end, fd_start, rss_end, rss_start, mid, last, kills, max_ping_ms, errors);
                if (fail) {
                        /* set above */
                } else if (fd_end > fd_start) {
                        snprintf(why, sizeof(why), "fd growth: %d fds at the end, %d at the start",
                                 fd_end, fd_start);
                        fail = why;
                } else if (errors > 0) {
                        snprintf(why, sizeof(why), "%u worker errors (see stderr)", errors);
                        fail = why;
                } else if (!UNDER_ASAN && rss_end > mid + arg_rss_slack_kib) {
                        snprintf(why, sizeof(why),
                                 "RSS growth: %ld KiB at the end, median %ld KiB mid-run", rss_end,
                                 mid);
                        fail = why;
                } else if (!UNDER_ASAN && last > mid + arg_rss_slack_kib) {
                        snprintf(why, sizeof(why),
                                 "RSS growth under load: median %ld KiB in the last third, "
                                 "%ld KiB in the middle third",
                                 last, mid);
                        fail = why;
                }
                if (UNDER_ASAN)
                        printf("soak: RSS not judged under AddressSanitizer (its quarantine holds "
                               "freed memory)\n");
        }
        close(ctl);
        if (daemon_pid > 0) {
                long long deadline = now_ms() + 10000;

                (void)kill(daemon_pid, SIGTERM);
                while (waitpid(daemon_pid, &status, WNOHANG) == 0 && now_ms() < deadline)
                        (void)usleep(10000);
                if (now_ms() >= deadline) {
                        (void)kill(daemon_pid, SIGKILL);
                        (void)waitpid(daemon_pid, &status, 0);
                        if (!fail)
                                fail = "the daemon did not exit within 10 s of SIGTERM";
                } else if (!fail && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                        snprintf(why, sizeof(why), "the daemon exited with status %d on SIGTERM",
                                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
                        fail = why;
                }
        } else if (!fail) {
                fail = "the daemon died";
        }
        close(report[0]);
        close(report[1]);
        free(samples);
        if (fail) {
                printf("soak: FAIL: %s (daemon log: %s)\n", fail, soak_log);
                return 1;
        }
        printf("soak: PASS\n");
        if (!arg_keep)
                (void)nftw(soak_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}
