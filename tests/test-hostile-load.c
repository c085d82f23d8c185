/* test-hostile-load.c - load sized to RLIMIT_NOFILE: scale, a burst of clients
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

/* How many fds this process has open. */
static int own_fd_count(void) {
        int n = 0;
        DIR *dir = opendir("/proc/self/fd");
        struct dirent *de;

        ck_assert_ptr_nonnull(dir);
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(dir);
        return n - 1; /* the directory's own fd */
}

/* Read every client that has something until @want readies arrived (or @deadline); returns
 * how many distinct watches delivered. A ready must reach the client that owns the watch. */
static unsigned collect_readies(TestClient *cl, unsigned n_clients, const int *index_of,
                                size_t max_id, bool *seen, unsigned want, long long deadline) {
        struct pollfd *pfd = calloc(n_clients, sizeof(*pfd));
        unsigned got = 0;

        ck_assert_ptr_nonnull(pfd);
        for (unsigned i = 0; i < n_clients; i++)
                pfd[i] = (struct pollfd){ .fd = cl[i].fd, .events = POLLIN };
        while (got < want && ms_now() < deadline) {
                ck_assert_int_ge(poll(pfd, n_clients, 100), 0);
                for (unsigned i = 0; i < n_clients; i++) {
                        json_t *v;

                        if (!(pfd[i].revents & POLLIN))
                                continue;
                        while ((v = test_client_recv(&cl[i], 0))) {
                                size_t n = json_is_array(v) ? json_array_size(v) : 1;

                                for (size_t k = 0; k < n; k++) {
                                        json_t *m = json_is_array(v) ? json_array_get(v, k) : v;
                                        json_int_t w;
                                        int j;

                                        ck_assert_msg(streq(json_string_value(
                                                                    json_object_get(m, "method")),
                                                            "ready"),
                                                      "a client got something else than ready");
                                        w = int_member(member(m, "params"), "watch");
                                        ck_assert(w > 0 && (size_t)w <= max_id);
                                        j = index_of[w];
                                        ck_assert_msg(j >= 0 && (unsigned)j % n_clients == i,
                                                      "client %u got a ready for a watch of "
                                                      "another client",
                                                      i);
                                        if (!seen[j]) {
                                                seen[j] = true;
                                                got++;
                                        }
                                }
                                json_decref(v);
                        }
                }
        }
        free(pfd);
        return got;
}

/*
 * As many clients and watched fds as the fd limits allow: 1,000 clients (50 under valgrind)
 * and, spread over them, as many eventfds as both this process (1 fd each, plus its
 * connections) and the daemon (1 fd each, plus connections and its baseline) can hold, minus
 * a margin of 64 on each side. Every watch must deliver its `ready`, to its own client, in
 * two rounds; afterwards the daemon's fd count is back to its baseline.
 */
START_TEST(test_scale) {
        static const char *const args[] = { "--max-clients-per-uid=4096", "--max-watches-per-uid=1000000",
                                            "--max-watches-per-client=1000000", NULL };
        const unsigned rounds = slow_build() ? 1 : 2;
        TestDaemon d;
        Bystander b;
        TestClient *cl;
        struct rlimit rl;
        unsigned n_clients, n_watches;
        int *efd, *index_of, base;
        json_int_t *wid;
        bool *seen;
        size_t max_id = 0;
        long d_nofile, room;
        long long t0, t1;
        char *buf = malloc(EVD_MAX_PACKET);

        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        base = start_with_bystander(&d, args, &b);
        d_nofile = daemon_nofile(&d);
        n_clients = under_valgrind() ? 50 : 1000;
        room = MIN((long)rl.rlim_cur - own_fd_count(), d_nofile - base) - (long)n_clients - 64;
        ck_assert_msg(room >= (long)n_clients, "fd limits too low for a scale test: %ld", room);
        n_watches = (unsigned)(under_valgrind() ? MIN(room, 2000L) : room);
        cl = calloc(n_clients, sizeof(*cl));
        efd = calloc(n_watches, sizeof(int));
        wid = calloc(n_watches, sizeof(json_int_t));
        seen = calloc(n_watches, sizeof(bool));
        ck_assert(cl && efd && wid && seen);

        t0 = ms_now();
        for (unsigned j = 0; j < n_watches; j++)
                efd[j] = make_eventfd();
        for (unsigned i = 0; i < n_clients; i++)
                ck_assert_int_eq(test_client_connect(&cl[i], d.socket), 0);
        /* Watch j belongs to client j % n_clients; up to 32 per packet, all sent first. */
        for (unsigned i = 0; i < n_clients; i++) {
                unsigned j = i;

                while (j < n_watches) {
                        int fds[EVD_MAX_FDS];
                        unsigned cnt = 0;
                        size_t len = 0;

                        buf[len++] = '[';
                        for (; j < n_watches && cnt < EVD_MAX_FDS; j += n_clients, cnt++) {
                                fds[cnt] = efd[j];
                                len += (size_t)sprintf(
                                        buf + len,
                                        "%s{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":"
                                        "\"watch\",\"params\":{\"fd\":%u,\"events\":["
                                        "\"in\"],\"mode\":\"edge\"}}",
                                        cnt ? "," : "", j, cnt);
                        }
                        buf[len++] = ']';
                        test_client_send_raw(&cl[i], buf, len, fds, cnt);
                }
        }
        for (unsigned i = 0; i < n_clients; i++) {
                unsigned want = (n_watches - i + n_clients - 1) / n_clients, got = 0;

                while (got < want) {
                        json_t *r = next_reply(&cl[i], "scale watches"), *item;
                        size_t k;

                        ck_assert(json_is_array(r));
                        json_array_foreach(r, k, item) {
                                json_int_t j = int_member(item, "id");

                                ck_assert(j >= 0 && j < (json_int_t)n_watches);
                                wid[j] = int_member(member(item, "result"), "watch");
                                max_id = MAX(max_id, (size_t)wid[j]);
                                got++;
                        }
                        json_decref(r);
                }
        }
        index_of = malloc((max_id + 1) * sizeof(int));
        ck_assert_ptr_nonnull(index_of);
        for (size_t k = 0; k <= max_id; k++)
                index_of[k] = -1;
        for (unsigned j = 0; j < n_watches; j++)
                index_of[wid[j]] = (int)j;
        ck_assert_int_eq(status_int(&b.c, "clients"), (json_int_t)n_clients + 1);
        ck_assert_int_eq(status_int(&b.c, "watches"), (json_int_t)n_watches + 1);
        ck_assert_int_eq(test_daemon_fd_count(&d), base + (int)(n_clients + n_watches));
        t1 = ms_now();
        printf("scale: %u clients, %u watches; the daemon holds %d of %ld fds; set up in %lld ms\n",
               n_clients, n_watches, test_daemon_fd_count(&d), d_nofile, t1 - t0);

        for (unsigned round = 0; round < rounds; round++) {
                unsigned got;

                memset(seen, 0, n_watches * sizeof(bool));
                t0 = ms_now();
                for (unsigned j = 0; j < n_watches; j++) {
                        drain_fd(efd[j]);
                        poke_eventfd(efd[j]);
                }
                got = collect_readies(cl, n_clients, index_of, max_id, seen, n_watches,
                                      ms_now() + 30000);
                printf("scale, round %u: %u of %u readies in %lld ms\n", round, got, n_watches,
                       ms_now() - t0);
                ck_assert_msg(got == n_watches, "round %u: %u of %u watches delivered", round, got,
                              n_watches);
        }
        (void)bystander_check(&b);

        for (unsigned i = 0; i < n_clients; i++)
                test_client_close(&cl[i]);
        for (unsigned j = 0; j < n_watches; j++)
                close(efd[j]);
        expect_fd_count(&d, base, 20000);
        free(index_of);
        free(cl);
        free(efd);
        free(wid);
        free(seen);
        free(buf);
        finish(&d, &b, base);
}
END_TEST

/*
 * A burst: 1,000 clients connect (600 under valgrind), then each sends one request watching
 * one eventfd, all at once. Every request must be answered, and every watch must then deliver
 * its `ready`. With the io_uring backend this crosses the engine's first ring growth (more
 * live polls than the 1,024 CQ entries it starts with), so it checks that no wakeup is lost
 * while the engine moves its polls to a bigger ring.
 */
START_TEST(test_client_burst) {
        static const char *const args[] = { "--max-clients-per-uid=4096", "--max-watches-per-uid=1000000",
                                            "--max-watches-per-client=1000000", NULL };
        static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\",\"params\":"
                                  "{\"fd\":0,\"events\":[\"in\"],\"mode\":\"edge\"}}";
        const unsigned n = under_valgrind() ? 600 : 1000;
        TestClient *cl = calloc(n, sizeof(*cl));
        struct pollfd *pfd = calloc(n, sizeof(*pfd));
        int *efd = calloc(n, sizeof(int)), *index_of = NULL;
        json_int_t *wid = calloc(n, sizeof(json_int_t));
        bool *seen = calloc(n, sizeof(bool));
        size_t max_id = 0;
        unsigned replied = 0, got;
        long long deadline;
        TestDaemon d;
        Bystander b;
        int base;

        ck_assert(cl && pfd && efd && wid && seen);
        base = start_with_bystander(&d, args, &b);
        for (unsigned i = 0; i < n; i++) {
                ck_assert_int_eq(test_client_connect(&cl[i], d.socket), 0);
                efd[i] = make_eventfd();
        }
        for (unsigned i = 0; i < n; i++)
                test_client_send_raw(&cl[i], req, sizeof(req) - 1, &efd[i], 1);
        for (unsigned i = 0; i < n; i++)
                pfd[i] = (struct pollfd){ .fd = cl[i].fd, .events = POLLIN };
        deadline = ms_now() + 10000;
        while (replied < n && ms_now() < deadline) {
                ck_assert_int_ge(poll(pfd, n, 100), 0);
                for (unsigned i = 0; i < n; i++) {
                        json_t *r;

                        if (!(pfd[i].revents & POLLIN))
                                continue;
                        r = scanned(test_client_reply(&cl[i], TIMEOUT));
                        ck_assert_msg(r && json_object_get(r, "result"), "client %u: no watch", i);
                        wid[i] = int_member(member(r, "result"), "watch");
                        max_id = MAX(max_id, (size_t)wid[i]);
                        json_decref(r);
                        pfd[i].fd = -1;
                        replied++;
                }
        }
        if (replied < n) {
                unsigned first = 0;

                while (pfd[first].fd < 0)
                        first++;
                ck_abort_msg("%u of %u clients got no reply within 10 s (the first: client %u), "
                             "although the daemon answers others: their requests were never read",
                             n - replied, n, first);
        }
        index_of = malloc((max_id + 1) * sizeof(int));
        ck_assert_ptr_nonnull(index_of);
        for (size_t k = 0; k <= max_id; k++)
                index_of[k] = -1;
        for (unsigned i = 0; i < n; i++)
                index_of[wid[i]] = (int)i;
        for (unsigned i = 0; i < n; i++)
                poke_eventfd(efd[i]);
        got = collect_readies(cl, n, index_of, max_id, seen, n, ms_now() + 10000);
        ck_assert_msg(got == n, "%u of %u watches delivered their ready", got, n);
        for (unsigned i = 0; i < n; i++) {
                test_client_close(&cl[i]);
                close(efd[i]);
        }
        free(cl);
        free(pfd);
        free(efd);
        free(wid);
        free(seen);
        free(index_of);
        finish(&d, &b, base);
}
END_TEST

/* ---- tests --------------------------------------------------------------------------- */

void hostile_load_tests(TCase *tc) {
        tcase_add_test(tc, test_scale);
        tcase_add_test(tc, test_client_burst);
}
