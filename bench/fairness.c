/* fairness.c - what one user's load costs another user: ping latency of a bystander uid
 *
 * Starts its own evd (the built one) and measures, for each scenario in the same run, the
 * round trip of `ping` requests from a bystander connected as another uid (65534), one every
 * millisecond, while a "flood" uid (root) loads the daemon:
 *   baseline      nothing else
 *   timers        4 connections x 25,000 timers repeating every 1 ms (the case)
 *   timers-nopace the same with max-timer-rate-per-uid = 0 (what it was before pacing)
 *   edge          2,048 edge watches on eventfds that a writer bumps as fast as it can
 *   big packets   420 watches with 1 KiB tags, and one packet after another holding a batch
 *                 of 1,024 `watches` listings (47 KB; each packet's replies would be 430 MB
 *                 without the reply budget)
 * The flood's clients read and discard everything they get, as fast as they can. Reported:
 * bystander p50/p99/max, p50's ratio to the baseline's, the daemon's CPU share, and the
 * longest one packet held the daemon's loop (stats.packet_cost.max_us: read to replies
 * queued), meant to stay under 10 ms. The timer flood and the bystander are
 * fairness-load.c's, which evd-bench's scenario 9 (fairness) runs too.
 * Usage: fairness [--backend io_uring|epoll] [--seconds S] [--rate N] [--json FILE]
 * (--rate: max-timer-rate-per-uid for the paced scenarios; default the daemon's default)
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-client.h"
#include "fairness-load.h"

#define EDGE_WATCHES 2048 /* a multiple of 32: one packet of 32 fds at a time */
#define ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))
#define BIG_WATCHES 420
#define BIG_LISTINGS 1024 /* MAX_BATCH */

static const char *arg_backend = "io_uring";
static const char *arg_rate = "50000"; /* the daemon's default */
static double arg_seconds = 3;
static const char *arg_json;
static char dir[80], sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* The case (fairness-load.c, shared with evd-bench's scenario 9): 4 connections x
 * 25,000 timers every millisecond. */
static pid_t flood_timers(void) {
        pid_t pid = fairness_flood_timers(sock_path);

        fprintf(stderr, "fairness: timer flood armed\n");
        return pid;
}

/* 2,048 edge watches on eventfds, a writer bumping them all in a loop. */
static pid_t flood_edge(void) {
        pid_t pid = fairness_flood_edge(sock_path, 1, EDGE_WATCHES, 1);

        fprintf(stderr, "fairness: edge flood armed\n");
        return pid;
}

/* Read packets on @fd until one holds @marker. */
static void read_until(int fd, const char *marker) {
        static char in[65536 + 1];

        for (;;) {
                ssize_t n = recv(fd, in, sizeof(in) - 1, 0);

                if (n <= 0)
                        bench_die("recv (big packets)");
                in[n] = 0;
                if (strstr(in, marker))
                        return;
        }
}

/* 420 watches with 1 KiB tags on one connection, then listings of all of them, 1,024 to a
 * packet, as fast as the replies are read. A ping after each packet marks its last reply. */
static pid_t flood_big_packets(void) {
        static char buf[65536], tag[1001];
        static int efd[BIG_WATCHES];
        pid_t pid = fairness_spawn();
        size_t len;
        int conn;

        if (pid)
                return pid;
        conn = bench_connect(sock_path);
        memset(tag, 'x', sizeof(tag) - 1);
        for (int i = 0; i < BIG_WATCHES; i++)
                if ((efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
                        bench_die("eventfd");
        for (int k = 0; k < BIG_WATCHES; k += 32) {
                int n = BIG_WATCHES - k < 32 ? BIG_WATCHES - k : 32;

                len = 0;
                buf[len++] = '[';
                for (int i = 0; i < n; i++)
                        len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                                                "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"watch\","
                                                "\"params\":{\"fd\":%d,\"events\":[\"in\"],\"mode\":\"edge\","
                                                "\"tag\":\"%s\"}}",
                                                i ? "," : "", k + i, i, tag);
                buf[len++] = ']';
                fairness_call_batch(conn, buf, len, efd + k, (size_t)n, (unsigned)n);
        }
        fprintf(stderr, "fairness: big packets armed\n");
        for (unsigned round = 0;; round++) {
                char marker[64];

                len = 0;
                buf[len++] = '[';
                for (int i = 0; i < BIG_LISTINGS; i++)
                        len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                                                "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"watches\"}",
                                                i ? "," : "", i);
                buf[len++] = ']';
                bench_send(conn, buf, len, NULL, 0);
                len = (size_t)snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"id\":\"end-%u\",\"method\":\"ping\"}",
                                       round);
                bench_send(conn, buf, len, NULL, 0);
                snprintf(marker, sizeof(marker), "\"end-%u\"", round);
                read_until(conn, marker);
        }
}

/* stats.packet_cost.max_us, in ns, asked on a new connection (0 if it cannot be read). */
static uint64_t longest_packet_ns(void) {
        static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"stats\"}";
        static char in[65536 + 1];
        int fd = bench_connect(sock_path);
        ssize_t n;
        const char *p;

        if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0 || (n = recv(fd, in, sizeof(in) - 1, 0)) <= 0)
                bench_die("status");
        close(fd);
        in[n] = 0;
        p = strstr(in, "\"packet_cost\"");
        p = p ? strstr(p, "\"max_us\":") : NULL;
        return p ? (uint64_t)(strtod(p + 9, NULL) * 1e3) : 0;
}

static uint64_t cpu_ticks(pid_t pid) {
        char path[64], buf[1024], *p;
        unsigned long utime = 0, stime = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (!(f = fopen(path, "re")))
                return 0;
        if (!fgets(buf, sizeof(buf), f))
                buf[0] = 0;
        fclose(f);
        p = strrchr(buf, ')');
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) == 2)
                return utime + stime;
        return 0;
}

static pid_t start_daemon(const char *rate) {
        pid_t pid;

        if (snprintf(sock_path, sizeof(sock_path), "%s/evd.sock", dir) >= (int)sizeof(sock_path))
                bench_die("socket path too long");
        (void)unlink(sock_path);
        pid = fairness_spawn();
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

                if (null >= 0)
                        (void)dup2(null, STDERR_FILENO);
                execl(EVD_BENCH_DAEMON, "evd", "--socket", sock_path, "--backend", arg_backend,
                      "--log-level", "warning", "--max-timer-rate-per-uid", rate, (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 500; i++) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

                memcpy(sa.sun_path, sock_path, sizeof(sa.sun_path));
                if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                        close(fd);
                        (void)chmod(sock_path, 0777);
                        return pid;
                }
                if (fd >= 0)
                        close(fd);
                (void)poll(NULL, 0, 10);
        }
        fprintf(stderr, "fairness: evd did not start\n");
        exit(1);
}

typedef struct Row {
        const char *name;
        uint64_t p50, p99, max;
        uint64_t longest_packet; /* ns */
        unsigned pings;
        double cpu; /* daemon CPU, share of one CPU */
} Row;

static Row run(const char *name, const char *rate, pid_t (*flood)(void)) {
        pid_t evd = start_daemon(rate), load = 0;
        long hz = sysconf(_SC_CLK_TCK);
        uint64_t t0, c0;
        Row row = { .name = name };
        FairnessPings pings;

        if (flood) {
                load = flood();
                (void)poll(NULL, 0, 1000); /* setup done and the flood at its steady state */
        }
        c0 = cpu_ticks(evd);
        t0 = bench_now_ns();
        fairness_bystander(sock_path, arg_seconds, NULL, &pings);
        row.cpu = (double)(cpu_ticks(evd) - c0) / (double)hz / ((double)(bench_now_ns() - t0) / 1e9);
        row.p50 = pings.p50, row.p99 = pings.p99, row.max = pings.max, row.pings = pings.n;
        row.longest_packet = longest_packet_ns();
        fairness_stop(load, name);
        fairness_stop(evd, "evd");
        return row;
}

int main(int argc, char **argv) {
        Row rows[5];
        double load[1] = { 0 };
        FILE *json = NULL;

        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--backend") && i + 1 < argc)
                        arg_backend = argv[++i];
                else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
                        arg_seconds = atof(argv[++i]);
                else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
                        arg_rate = argv[++i];
                else if (!strcmp(argv[i], "--json") && i + 1 < argc)
                        arg_json = argv[++i];
                else {
                        fprintf(stderr, "usage: fairness [--backend io_uring|epoll] [--seconds S] [--rate N] [--json FILE]\n");
                        return 2;
                }
        }
        {
                struct rlimit rl;

                /* The edge flood holds 2,048 eventfds. */
                if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                        rl.rlim_cur = rl.rlim_max;
                        (void)setrlimit(RLIMIT_NOFILE, &rl);
                }
        }
        if (geteuid() != 0) {
                fprintf(stderr, "fairness: needs root (the bystander switches to uid 65534)\n");
                return 77;
        }
        snprintf(dir, sizeof(dir), "%s/evd-fairness-XXXXXX",
                 getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir) || chmod(dir, 0755) < 0)
                bench_die("mkdtemp");
        (void)getloadavg(load, 1);
        rows[0] = run("baseline", arg_rate, NULL);
        rows[1] = run("timers (paced)", arg_rate, flood_timers);
        rows[2] = run("timers (pacing off)", "0", flood_timers);
        rows[3] = run("edge watches", arg_rate, flood_edge);
        rows[4] = run("big packets", arg_rate, flood_big_packets);
        (void)unlink(sock_path);
        (void)rmdir(dir);

        printf("fairness, backend %s, max-timer-rate-per-uid %s, %.0f s per scenario, load average %.2f at start\n",
               arg_backend, arg_rate, arg_seconds, load[0]);
        printf("| scenario | bystander p50 | p99 | max | p50 / baseline | pings | daemon CPU | longest packet |\n"
               "|---|---|---|---|---|---|---|---|\n");
        for (size_t i = 0; i < ELEMENTS(rows); i++)
                printf("| %s | %.3f ms | %.3f ms | %.3f ms | %.2fx | %u | %.0f%% | %.3f ms |\n", rows[i].name,
                       (double)rows[i].p50 / 1e6, (double)rows[i].p99 / 1e6, (double)rows[i].max / 1e6,
                       (double)rows[i].p50 / (double)rows[0].p50, rows[i].pings, rows[i].cpu * 100,
                       (double)rows[i].longest_packet / 1e6);
        if (arg_json && (json = fopen(arg_json, "we"))) {
                fprintf(json, "{\"backend\":\"%s\",\"loadavg\":%.2f,\"scenarios\":[", arg_backend, load[0]);
                for (size_t i = 0; i < ELEMENTS(rows); i++)
                        fprintf(json,
                                "%s{\"name\":\"%s\",\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f,\"cpu\":%.3f,"
                                "\"longest_packet_ms\":%.4f}",
                                i ? "," : "", rows[i].name, (double)rows[i].p50 / 1e6, (double)rows[i].p99 / 1e6,
                                (double)rows[i].max / 1e6, rows[i].cpu, (double)rows[i].longest_packet / 1e6);
                fprintf(json, "]}\n");
                fclose(json);
        }
        return 0;
}
