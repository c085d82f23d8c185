/* reexec-gap.c - how long clients wait while evd re-executes in place
 *
 * Starts its own evd (the built one), loads it with W edge watches on eventfds over
 * CLIENTS connections, and keeps a 1 ms repeating timer on a ticker connection. The gap
 * is the longest silence between two packets on the ticker connection: from the last
 * notification the old image sent to the first the new one sent. Each round measures it
 * over a window with a SIGUSR2 in the middle, and over a window without one (the baseline,
 * in the same run: the machine's own jitter). Also reported: the daemon's own figures from
 * its log (state written, restore time). W defaults to 1,000 and 10,000, scaled down to
 * the fd limit (the bench holds one eventfd per watch, the daemon one copy).
 *
 * --via fd-store measures a restart through systemd's fd store instead: the bench plays
 * the service manager (tests/util-manager.c: NOTIFY_SOCKET, the store, $LISTEN_FDS), sends
 * SIGTERM, waits for the old process to exit and starts the next one with the store, as
 * systemd does at `systemctl restart`. That gap includes the old process's exit and the
 * manager's own fork and exec (systemd's are slower than this bench's).
 * Usage: reexec-gap [--backend io_uring|epoll] [--via reexec|fd-store] [--watches N[,N...]]
 *                   [--rounds R] [--json FILE]
 */

#include <errno.h>
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
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-client.h"
#include "util-manager.h"

#define CLIENTS 10
#define BATCH 32 /* fds per packet: the protocol's limit */
#define WINDOW_NS (600 * 1000000ull)
#define MAX_SIZES 4

static const char *arg_backend = "io_uring";
static bool arg_fd_store;
static unsigned arg_rounds = 5;
static unsigned arg_sizes[MAX_SIZES] = { 1000, 10000 };
static unsigned arg_n_sizes = 2;
static const char *arg_json;
static char dir[80], sock_path[108], log_path[128];
static Manager manager; /* with --via fd-store */

/* Wait for one packet on @fd (a reply); abort after 10 s. */
static ssize_t recv_one(int fd, char *buf, size_t size) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, 10000) != 1)
                bench_die("no reply within 10 s");
        n = recv(fd, buf, size, 0);
        if (n <= 0)
                bench_die("recv");
        return n;
}

/* Fork and exec evd; with the fd store, the next one (@from_store: the store passed). */
static pid_t spawn_daemon(bool from_store) {
        const char *bin = EVD_BENCH_DAEMON;
        pid_t pid = fork();

        if (pid < 0)
                bench_die("fork");
        if (pid == 0) {
                FILE *log = fopen(log_path, "ae");

                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (!log || dup2(fileno(log), 2) < 0)
                        _exit(127);
                unsetenv("NOTIFY_SOCKET");
                if (from_store)
                        manager_pass_store(&manager);
                else if (arg_fd_store)
                        manager_with_notify_socket(&manager);
                execl(bin, bin, "--socket", sock_path, "--backend", arg_backend, "--max-watches-per-client",
                      "1000000", "--max-watches-per-uid", "1000000", "--fd-store", arg_fd_store ? "yes" : "no",
                      (char *)NULL);
                _exit(127);
        }
        return pid;
}

static pid_t start_daemon(void) {
        pid_t pid;

        snprintf(dir, sizeof(dir), "%s/evd-reexec-gap-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir))
                bench_die("mkdtemp");
        snprintf(sock_path, sizeof(sock_path), "%s/evd.sock", dir);
        snprintf(log_path, sizeof(log_path), "%s/evd.log", dir);
        if (arg_fd_store)
                manager_open(&manager);
        pid = spawn_daemon(false);
        for (int i = 0; i < 500; i++) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

                snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
                if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                        close(fd);
                        return pid;
                }
                if (fd >= 0)
                        close(fd);
                (void)poll(NULL, 0, 10);
        }
        fprintf(stderr, "reexec-gap: evd did not start (see %s)\n", log_path);
        exit(1);
}

static void stop_daemon(pid_t pid) {
        char cmd[512];

        (void)kill(pid, SIGTERM);
        (void)waitpid(pid, NULL, 0);
        if (arg_fd_store)
                manager_close(&manager);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "reexec-gap: cannot remove %s\n", dir);
}

/* @n edge watches on new eventfds over one connection, in batches of BATCH. */
static void add_watches(int conn, int *efds, unsigned n) {
        char buf[65536];

        for (unsigned done = 0; done < n;) {
                unsigned k = n - done < BATCH ? n - done : BATCH;
                size_t len = 0;

                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "[");
                for (unsigned i = 0; i < k; i++) {
                        efds[done + i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                        if (efds[done + i] < 0)
                                bench_die("eventfd");
                        len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                                                "%s{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"watch\",\"params\":"
                                                "{\"fd\":%u,\"events\":[\"in\"],\"mode\":\"edge\",\"tag\":%u}}",
                                                i ? "," : "", done + i + 1, i, done + i);
                }
                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "]");
                bench_send(conn, buf, len, efds + done, k);
                (void)recv_one(conn, buf, sizeof(buf));
                if (strstr(buf, "\"error\""))
                        bench_die("a watch was refused");
                done += k;
        }
}

static bool stored_all(const Manager *m) {
        return m->n_stored == 3;
}

/* `systemctl restart` with the fd store: SIGTERM, the old process stores and exits, the
 * next one starts with the store. Return: the new pid. */
static pid_t restart_through_store(pid_t pid) {
        if (kill(pid, SIGTERM) < 0)
                bench_die("kill");
        if (waitpid(pid, NULL, 0) != pid)
                bench_die("waitpid");
        manager_wait(&manager, stored_all);
        return spawn_daemon(true);
}

/* The longest silence between packets on @ticker over @window_ns, re-executing (SIGUSR2)
 * or restarting *@pid halfway if @restart. */
static uint64_t longest_silence(int ticker, pid_t *pid, bool restart) {
        char buf[65536];
        uint64_t start = bench_now_ns(), last = start, gap = 0, now;
        bool sent = false;

        while ((now = bench_now_ns()) - start < WINDOW_NS) {
                struct pollfd p = { .fd = ticker, .events = POLLIN };

                if (restart && !sent && now - start >= WINDOW_NS / 3) {
                        if (arg_fd_store)
                                *pid = restart_through_store(*pid);
                        else if (kill(*pid, SIGUSR2) < 0)
                                bench_die("kill");
                        sent = true;
                }
                if (poll(&p, 1, 50) == 1) {
                        if (recv(ticker, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
                                bench_die("the ticker connection ended");
                        now = bench_now_ns();
                        if (now - last > gap)
                                gap = now - last;
                        last = now;
                }
        }
        /* The new process took the store back (FDSTOREREMOVE): drop the manager's copies,
         * as systemd does, before the next round stores anew. */
        if (restart && arg_fd_store)
                manager_wait(&manager, manager_all_removed);
        return gap;
}

/* The last "in X ms" figure of the daemon's log line starting with @prefix, or -1. */
static double log_ms(const char *prefix) {
        FILE *f = fopen(log_path, "re");
        char line[512];
        double v = -1;

        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f)) {
                const char *p = strstr(line, prefix), *in;

                if (p && (in = strstr(p, " in ")))
                        v = strtod(in + 4, NULL);
        }
        fclose(f);
        return v;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

static void run(unsigned watches, FILE *json, bool first) {
        pid_t pid = start_daemon();
        int conns[CLIENTS], ticker, *efds = calloc(watches, sizeof(int));
        uint64_t gaps[32], base[32];
        const char *tick = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":"
                           "{\"after\":0.001,\"interval\":0.001}}";
        char buf[65536];
        double save_ms, restore_ms;

        if (!efds)
                bench_die("calloc");
        for (unsigned c = 0; c < CLIENTS; c++) {
                unsigned from = watches * c / CLIENTS, to = watches * (c + 1) / CLIENTS;

                conns[c] = bench_connect(sock_path);
                add_watches(conns[c], efds + from, to - from);
        }
        ticker = bench_connect(sock_path);
        bench_send(ticker, tick, strlen(tick), NULL, 0);
        (void)recv_one(ticker, buf, sizeof(buf));
        for (unsigned r = 0; r < arg_rounds; r++) {
                base[r] = longest_silence(ticker, &pid, false);
                gaps[r] = longest_silence(ticker, &pid, true);
        }
        save_ms = log_ms(arg_fd_store ? "Handed" : "Re-executing");
        restore_ms = log_ms("Restored");
        qsort(gaps, arg_rounds, sizeof(gaps[0]), cmp_u64);
        qsort(base, arg_rounds, sizeof(base[0]), cmp_u64);
        printf("%-9s %-9s %8u %10.1f %10.1f %10.1f %10.1f %10.1f\n", arg_backend, arg_fd_store ? "fd-store" : "reexec",
               watches,
               (double)base[arg_rounds / 2] / 1e6, (double)gaps[arg_rounds / 2] / 1e6,
               (double)gaps[arg_rounds - 1] / 1e6, save_ms, restore_ms);
        if (json)
                fprintf(json,
                        "%s{\"backend\":\"%s\",\"via\":\"%s\",\"watches\":%u,\"rounds\":%u,\"baseline_p50_ms\":%.3f,"
                        "\"gap_p50_ms\":%.3f,\"gap_max_ms\":%.3f,\"save_ms\":%.3f,\"restore_ms\":%.3f}",
                        first ? "" : ",", arg_backend, arg_fd_store ? "fd-store" : "reexec", watches, arg_rounds, (double)base[arg_rounds / 2] / 1e6,
                        (double)gaps[arg_rounds / 2] / 1e6, (double)gaps[arg_rounds - 1] / 1e6, save_ms,
                        restore_ms);
        for (unsigned c = 0; c < CLIENTS; c++)
                close(conns[c]);
        close(ticker);
        for (unsigned i = 0; i < watches; i++)
                close(efds[i]);
        free(efds);
        stop_daemon(pid);
}

int main(int argc, char **argv) {
        struct rlimit rl;
        unsigned max_watches;
        FILE *json = NULL;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
                        arg_backend = argv[++i];
                else if (strcmp(argv[i], "--via") == 0 && i + 1 < argc &&
                         (strcmp(argv[i + 1], "reexec") == 0 || strcmp(argv[i + 1], "fd-store") == 0))
                        arg_fd_store = strcmp(argv[++i], "fd-store") == 0;
                else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
                        arg_rounds = (unsigned)atoi(argv[++i]);
                else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
                        arg_json = argv[++i];
                else if (strcmp(argv[i], "--watches") == 0 && i + 1 < argc) {
                        char *s = argv[++i], *tok;

                        arg_n_sizes = 0;
                        for (tok = strtok(s, ","); tok && arg_n_sizes < MAX_SIZES; tok = strtok(NULL, ","))
                                arg_sizes[arg_n_sizes++] = (unsigned)atoi(tok);
                } else {
                        fprintf(stderr, "usage: reexec-gap [--backend io_uring|epoll] [--via reexec|fd-store] "
                                        "[--watches N[,N...]] [--rounds R] [--json FILE]\n");
                        return 2;
                }
        }
        if (arg_rounds < 1 || arg_rounds > 32) {
                fprintf(stderr, "reexec-gap: --rounds: 1 to 32\n");
                return 2;
        }
        /* The bench holds one eventfd per watch, the daemon its copy: both under the limit. */
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                bench_die("getrlimit");
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                bench_die("setrlimit");
        max_watches = rl.rlim_cur > 1000 ? (unsigned)(rl.rlim_cur - 500) : 100;
        if (arg_json && !(json = fopen(arg_json, "we")))
                bench_die(arg_json);
        if (json)
                fprintf(json, "[");
        printf("%-9s %-9s %8s %10s %10s %10s %10s %10s\n", "backend", "via", "watches", "base_ms", "gap_p50", "gap_max",
               "save_ms", "restore_ms");
        for (unsigned i = 0; i < arg_n_sizes; i++)
                run(arg_sizes[i] < max_watches ? arg_sizes[i] : max_watches, json, i == 0);
        if (json) {
                fprintf(json, "]\n");
                fclose(json);
        }
        return 0;
}
