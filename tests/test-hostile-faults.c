/* test-hostile-faults.c - faults: clients killed en masse, slow readers (coalesced, dropped)
 *
 * Part of the hostile suite: test-hostile.c runs it (see there for what every test proves
 * at its end: the bystander, the fd baseline, exit 0); helpers in util-hostile.h, util-rpc.h.
 */

#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <liburing.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "macro.h"
#include "test-hostile.h"
#include "util-daemon.h"
#include "util-fd.h"
#include "util-hostile.h"
#include "util-json.h"
#include "util-rpc.h"
#include "util-time.h"
#include "wire.h"

/* ---- faults and load ---------------------------------------------------------------- */

/* Child: @n connections to @path, each handing over 10 eventfds in one batch of watches and
 * waiting for the 10 results; then 'k' on @report and wait for SIGKILL. No asserts here:
 * any failure is reported as a letter. */
static _Noreturn void child_hold_watches(const char *path, unsigned n, int report) {
        static char buf[EVD_MAX_PACKET + 1];
        char req[2048];
        size_t len = 0;
        int *conns = calloc(n, sizeof(int));

        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!conns)
                goto fail;
        req[len++] = '[';
        for (int i = 0; i < 10; i++)
                len += (size_t)sprintf(req + len,
                                       "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"watch\","
                                       "\"params\":{\"fd\":%d,\"events\":[\"in\"],\"mode\":"
                                       "\"edge\"}}",
                                       i ? "," : "", i + 1, i);
        req[len++] = ']';
        for (unsigned i = 0; i < n; i++) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                int efd[10];

                conns[i] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                strcpy(sa.sun_path, path);
                if (conns[i] < 0 || connect(conns[i], (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        goto fail;
                for (int k = 0; k < 10; k++)
                        if ((efd[k] = eventfd(0, EFD_CLOEXEC)) < 0)
                                goto fail;
                if (wire_send_blocking(conns[i], req, len, efd, 10) < 0)
                        goto fail;
                for (int k = 0; k < 10; k++)
                        close(efd[k]); /* the daemon holds its own copies */
        }
        for (unsigned i = 0; i < n; i++) {
                FdList fl = FD_LIST_NULL;
                WirePacket pkt;
                size_t results = 0;

                if (wire_recv_blocking(conns[i], buf, sizeof(buf) - 1, &fl, &pkt, 10000) < 0 ||
                    pkt.eof || pkt.truncated)
                        goto fail;
                fd_list_close(&fl);
                buf[pkt.len] = 0;
                for (const char *s = buf; (s = strstr(s, "\"result\":{\"watch\":")); s++)
                        results++;
                if (results != 10)
                        goto fail;
        }
        if (write(report, "k", 1) != 1)
                _exit(2);
        for (;;)
                pause();
fail:
        (void)!write(report, "f", 1);
        _exit(1);
}

/* Fork @k children holding @n connections in all; wait until each reported. */
static void spawn_holders(const TestDaemon *d, pid_t *pids, unsigned k, unsigned n) {
        int report[2];
        unsigned ok = 0;

        ck_assert_int_eq(pipe2(report, O_CLOEXEC), 0);
        for (unsigned i = 0; i < k; i++) {
                pids[i] = fork();
                ck_assert_int_ge(pids[i], 0);
                if (pids[i] == 0) {
                        close(report[0]);
                        child_hold_watches(d->socket, n / k + (i < n % k), report[1]);
                }
        }
        close(report[1]);
        for (unsigned i = 0; i < k; i++) {
                struct pollfd pfd = { .fd = report[0], .events = POLLIN };
                char c = 0;

                ck_assert_msg(poll(&pfd, 1, 30000) == 1, "a child did not report within 30 s");
                ck_assert_int_eq(read(report[0], &c, 1), 1);
                if (c == 'k')
                        ok++;
        }
        close(report[0]);
        ck_assert_msg(ok == k, "%u of %u children failed to set up their clients", k - ok, k);
}

static void kill_holders(pid_t *pids, unsigned k) {
        for (unsigned i = 0; i < k; i++)
                ck_assert_int_eq(kill(pids[i], SIGKILL), 0);
        for (unsigned i = 0; i < k; i++) {
                int status;

                ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
                ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        }
}

/*
 * 1,000 clients (fewer if the daemon's fd limit cannot hold 11 fds each; 100 under valgrind),
 * each with 10 watched fds, held by 4 processes that are then killed with SIGKILL. The
 * daemon's fd count returns exactly to its baseline, every watch is forgotten, and RSS
 * returns: three rounds (two under ASan or valgrind), the first to warm up the allocator;
 * after each later round RSS is within RSS_SLACK_KIB (2 MiB) of its level after the first.
 * Memory that comes back round after round is the allocator's, not a leak: a leak of even
 * 1 KiB per client would add 1 MiB per round.
 */
START_TEST(test_mass_client_death) {
        const unsigned k = under_valgrind() ? 2 : 4, rounds = slow_build() ? 2 : 3;
        TestDaemon d;
        Bystander b;
        pid_t pids[4];
        unsigned n;
        long nofile, rss_fresh, rss_warm = 0, rss_peak = 0;
        int base;
        static const char *const args[] = { "--max-clients-per-uid=4096", "--max-watches-per-uid=1000000",
                                            "--max-watches-per-client=1000000", NULL };

        base = start_with_bystander(&d, args, &b);
        rss_fresh = test_daemon_rss_kb(&d);
        nofile = daemon_nofile(&d);
        n = under_valgrind() ? 100 : 1000;
        n = (unsigned)MIN((long)n, (nofile - base - 64) / 11);
        ck_assert_int_ge(n, 10);
        for (unsigned round = 0; round < rounds; round++) {
                long long t0 = ms_now();
                long rss;

                spawn_holders(&d, pids, k, n);
                ck_assert_int_eq(status_int(&b.c, "clients"), (json_int_t)n + 1);
                ck_assert_int_eq(status_int(&b.c, "watches"), (json_int_t)n * 10 + 1);
                ck_assert_int_eq(test_daemon_fd_count(&d), base + (int)n * 11);
                rss_peak = MAX(rss_peak, test_daemon_rss_kb(&d));
                kill_holders(pids, k);
                expect_fd_count(&d, base, 10000);
                wait_status_within(&b.c, "clients", 1, TIMEOUT);
                wait_status_within(&b.c, "watches", 1, TIMEOUT);
                (void)poll(NULL, 0, 200); /* let the allocator settle */
                rss = test_daemon_rss_kb(&d);
                printf("client death, round %u: %u clients x 10 fds killed; fds back to %d; RSS "
                       "%ld KiB (fresh %ld, peak %ld); %lld ms\n",
                       round, n, base, rss, rss_fresh, rss_peak, ms_now() - t0);
                if (round == 0)
                        rss_warm = rss;
                else if (!UNDER_ASAN)
                        ck_assert_msg(rss <= rss_warm + RSS_SLACK_KIB,
                                      "RSS grew from %ld to %ld KiB over a round of client deaths",
                                      rss_warm, rss);
                (void)bystander_check(&b);
        }
        finish(&d, &b, base);
}
END_TEST

/* Watch @n pipes on @c in edge mode, 32 per packet; fills @pipes (n x 2 fds) and @ids. */
static void watch_pipes(TestClient *c, int (*pipes)[2], json_int_t *ids, unsigned n) {
        char *buf = malloc(EVD_MAX_PACKET);

        ck_assert_ptr_nonnull(buf);
        for (unsigned i = 0; i < n; i++)
                make_pipe(pipes[i]);
        for (unsigned first = 0; first < n; first += EVD_MAX_FDS) {
                unsigned cnt = MIN(n - first, (unsigned)EVD_MAX_FDS);
                int fds[EVD_MAX_FDS];
                size_t len = 0;
                json_t *r, *item;
                size_t i;

                buf[len++] = '[';
                for (unsigned j = 0; j < cnt; j++) {
                        fds[j] = pipes[first + j][0];
                        len += (size_t)sprintf(
                                buf + len,
                                "%s{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"watch\","
                                "\"params\":{\"fd\":%u,\"events\":[\"in\"],\"mode\":"
                                "\"edge\",\"tag\":%u}}",
                                j ? "," : "", first + j, j, first + j);
                }
                buf[len++] = ']';
                test_client_send_raw(c, buf, len, fds, cnt);
                r = next_reply(c, "watches");
                ck_assert_msg(json_is_array(r) && json_array_size(r) == cnt, "watch batch reply");
                json_array_foreach(r, i, item)
                        ids[first + i] = int_member(member(item, "result"), "watch");
                json_decref(r);
        }
        free(buf);
}

/* One byte into each of @n pipes (a full pipe is skipped: its reader is stalled anyway). */
static void poke_pipes(int (*pipes)[2], unsigned n) {
        for (unsigned i = 0; i < n; i++)
                if (write(pipes[i][1], "x", 1) < 0)
                        ck_assert_int_eq(errno, EAGAIN);
}

/* Keep @n pipes busy for @ms while measuring the bystander's ready latency; returns the
 * worst latency seen. */
static long long busy_phase(int (*pipes)[2], unsigned n, Bystander *b, long long ms,
                            unsigned *ret_rounds) {
        long long end = ms_now() + ms, worst = 0, next_probe = 0;
        unsigned rounds = 0;

        while (ms_now() < end) {
                poke_pipes(pipes, n);
                rounds++;
                if (ms_now() >= next_probe) {
                        worst = MAX(worst, bystander_check(b));
                        next_probe = ms_now() + 50;
                }
        }
        *ret_rounds = rounds;
        return worst;
}

/* The client @c's entry in the admin listing of clients, or NULL (a new reference). */
static json_t *client_entry(TestClient *admin, json_int_t id) {
        json_t *r = result(admin, "clients", NULL, NULL, 0), *item, *found = NULL;
        size_t i;

        json_array_foreach(member(r, "clients"), i, item)
                if (json_integer_value(json_object_get(item, "client")) == id)
                        found = json_incref(item);
        json_decref(r);
        return found;
}

/*
 * A slow reader: 1,000 pipes (200 under valgrind) watched in edge mode, written to over and
 * over for 1.5 s (1 s under ASan or valgrind), and a client that never reads its socket. With
 * the default limits (4 MiB of unread output), coalescing keeps at most one queued `ready` per
 * watch: the client stays
 * connected, the daemon's RSS grows by less than SLOW_READER_RSS_KIB (2 MiB, half the default
 * output limit; the design bound is one parked packet of 64 KiB plus 1,000 queued notices),
 * `coalesced` grows by at least one per watch, the bystander's readies keep coming within
 * LATENCY_BOUND_MS, and once the slow client reads, every watch has delivered a `ready`.
 */
START_TEST(test_slow_reader_coalesced) {
        const unsigned n = under_valgrind() ? 200 : 1000;
        int(*pipes)[2] = calloc(n, sizeof(*pipes));
        json_int_t *ids = calloc(n, sizeof(*ids)), sid, coalesced0, queued;
        bool *seen = calloc(n, sizeof(bool));
        TestDaemon d;
        Bystander b;
        TestClient s, admin;
        long rss0, rss1;
        long long worst, deadline;
        unsigned rounds, n_seen = 0;
        json_t *entry;
        int base;

        ck_assert(pipes && ids && seen);
        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&admin, d.socket), 0);
        ck_assert_int_eq(test_client_connect(&s, d.socket), 0);
        sid = hello(&s, NULL);
        watch_pipes(&s, pipes, ids, n);
        coalesced0 = stats_int(&admin, "daemon", "coalesced");
        rss0 = test_daemon_rss_kb(&d);
        worst = busy_phase(pipes, n, &b, slow_build() ? 1000 : 1500, &rounds);
        rss1 = test_daemon_rss_kb(&d);
        entry = client_entry(&admin, sid);
        ck_assert_msg(entry, "the slow client was disconnected under the default limit");
        queued = int_member(entry, "queued_bytes");
        json_decref(entry);
        printf("slow reader: %u watches x %u rounds; coalesced %lld; slow client has %lld bytes "
               "queued; RSS %ld -> %ld KiB; bystander worst latency %lld ms\n",
               n, rounds, (long long)(stats_int(&admin, "daemon", "coalesced") - coalesced0),
               (long long)queued, rss0, rss1, worst);
        ck_assert_int_ge(stats_int(&admin, "daemon", "coalesced") - coalesced0, (json_int_t)n);
        ck_assert_msg(worst <= LATENCY_BOUND_MS, "the bystander waited %lld ms for a ready", worst);
        if (!UNDER_ASAN)
                ck_assert_msg(rss1 - rss0 <= SLOW_READER_RSS_KIB,
                              "RSS grew by %ld KiB for one slow reader", rss1 - rss0);

        /* The slow client catches up: every watch has its ready. */
        deadline = ms_now() + 10000;
        while (n_seen < n && ms_now() < deadline) {
                json_t *m = wait_for(&s, "ready", NULL, 0, (int)MAX(deadline - ms_now(), 1LL));
                json_int_t w;

                if (!m)
                        break;
                w = int_member(member(m, "params"), "watch");
                for (unsigned i = 0; i < n; i++)
                        if (ids[i] == w && !seen[i]) {
                                seen[i] = true;
                                n_seen++;
                        }
                json_decref(m);
        }
        ck_assert_msg(n_seen == n, "only %u of %u watches delivered a ready", n_seen, n);
        forget_backlog(&s);
        ping(&s);
        test_client_close(&s);
        test_client_close(&admin);
        for (unsigned i = 0; i < n; i++)
                close_pair(pipes[i]);
        free(pipes);
        free(ids);
        free(seen);
        finish(&d, &b, base);
}
END_TEST

/* The same slow reader under --max-queued-bytes=131072: past the limit it is disconnected,
 * with the reason logged, its 1,000 watches and their fds released; the bystander is never
 * delayed beyond LATENCY_BOUND_MS. */
START_TEST(test_slow_reader_dropped) {
        static const char *const args[] = { "--max-queued-bytes=131072", NULL };
        const unsigned n = 1100; /* more queued notices (128 bytes each) than 131,072 bytes */
        int(*pipes)[2] = calloc(n, sizeof(*pipes));
        json_int_t *ids = calloc(n, sizeof(*ids)), disconnected0;
        TestDaemon d;
        Bystander b;
        TestClient s, admin;
        long long worst = 0, deadline;
        unsigned rounds = 0;
        int base;

        ck_assert(pipes && ids);
        base = start_with_bystander(&d, args, &b);
        ck_assert_int_eq(test_client_connect(&admin, d.socket), 0);
        ck_assert_int_eq(test_client_connect(&s, d.socket), 0);
        watch_pipes(&s, pipes, ids, n);
        disconnected0 = stats_int(&admin, "daemon", "disconnected");
        deadline = ms_now() + 10000;
        while (stats_int(&admin, "daemon", "disconnected") == disconnected0 &&
               ms_now() < deadline) {
                unsigned r;

                worst = MAX(worst, busy_phase(pipes, n, &b, 100, &r));
                rounds += r;
        }
        ck_assert_msg(stats_int(&admin, "daemon", "disconnected") == disconnected0 + 1,
                      "the slow client was not disconnected within 10 s (%u rounds)", rounds);
        ck_assert_msg(test_daemon_log_contains(&d, "output limit exceeded"),
                      "the disconnect's reason is not in the log");
        printf("slow reader over the limit: dropped after %u rounds; bystander worst latency "
               "%lld ms\n",
               rounds, worst);
        ck_assert_msg(worst <= LATENCY_BOUND_MS, "the bystander waited %lld ms for a ready", worst);
        ck_assert_msg(test_client_wait_eof(&s, TIMEOUT), "the dropped client saw no EOF");
        test_client_close(&s);
        test_client_close(&admin);
        for (unsigned i = 0; i < n; i++)
                close_pair(pipes[i]);
        free(pipes);
        free(ids);
        finish(&d, &b, base);
}
END_TEST

/* ---- tests --------------------------------------------------------------------------- */

void hostile_faults_tests(TCase *tc) {
        tcase_add_test(tc, test_mass_client_death);
        tcase_add_test(tc, test_slow_reader_coalesced);
        tcase_add_test(tc, test_slow_reader_dropped);
}
