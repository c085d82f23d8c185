/* test-hostile-fd-exhaustion.c - the daemon out of fds: refusals, no spinning, recovery
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

/*
 * The daemon under RLIMIT_NOFILE 256 (set by a wrapper before it starts), flooded first with
 * connections and then with fds. Every connection and every request gets an answer: admitted
 * or refused with -32009 (out of fds) or -32004; watches fail with -32009 (out of fds, also
 * when the kernel could not install the packet's fds: MSG_CTRUNC) or -32004. While it is
 * full and clients keep knocking, the daemon does not spin: its CPU time stays under
 * SPIN_BOUND (20%) of the 2 s measured. Once the flood leaves, its fd count is back to the
 * baseline and a new client can watch.
 */
START_TEST(test_fd_exhaustion) {
        /* Limits out of the way (their defaults scale with the fd limit): this is about
         * running out of fds itself. */
        static const char *const args[] = { "--max-clients=100000", "--max-clients-per-uid=100000",
                                            "--max-watches-per-client=100000", "--max-watches-per-uid=100000",
                                            NULL };
        const unsigned nofile = 256, max_conns = 400;
        TestClient *conns = calloc(max_conns, sizeof(TestClient));
        TestDaemon d;
        Bystander b;
        TestClient flood, c;
        unsigned admitted = 0, refused = 0, watched = 0, knocks = 0;
        int fds[EVD_MAX_FDS], base, code = 0;
        double cpu0, cpu1;
        long long t0, t1;

        ck_assert_ptr_nonnull(conns);
        start_with_nofile(&d, args, nofile);
        ck_assert_int_eq(daemon_nofile(&d), nofile);
        bystander_init(&b, &d);
        base = fd_baseline(&d, &b.c, 1);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = make_eventfd();

        /* Connections until refused (and a few more: each refused, none left hanging). */
        while (admitted < max_conns && refused < 10) {
                if (try_connect(&conns[admitted], &d, &code))
                        admitted++;
                else {
                        ck_assert_msg(code == -32009 || code == -32004, "refused with %d", code);
                        refused++;
                }
        }
        ck_assert_msg(refused == 10, "%u connections and no refusal under %u fds", admitted,
                      nofile);
        printf("fd exhaustion: %u connections admitted under RLIMIT_NOFILE %u (baseline %d fds), "
               "then refused with %d\n",
               admitted, nofile, base, code);
        ck_assert_msg(test_daemon_log_contains(&d, "Out of file descriptors"),
                      "running out of fds is not logged");
        ping(&b.c);

        /* Free 40, then fill them with watched fds: 32 at a time, then one at a time. */
        for (unsigned i = admitted - 40; i < admitted; i++)
                test_client_close(&conns[i]);
        admitted -= 40;
        /* The daemon frees them asynchronously: all 40 must be free before the flood. */
        expect_fd_count(&d, base + (int)admitted, TIMEOUT);
        flood = conns[--admitted];
        code = 0;
        for (unsigned round = 0; round < 10 && code == 0; round++)
                watched += watch_until_refused(&flood, fds, EVD_MAX_FDS, &code);
        ck_assert_msg(code != 0, "%u watches and no refusal", watched);
        code = 0;
        for (unsigned round = 0; round < 64 && code == 0; round++)
                watched += watch_until_refused(&flood, fds, 1, &code);
        ck_assert_msg(code != 0, "single watches never refused");
        printf("fd exhaustion: %u fds watched, then refused with %d\n", watched, code);

        /* Full. Clients keep knocking for 2 s: refused every time, and no spinning. */
        cpu0 = daemon_cpu_seconds(&d);
        t0 = ms_now();
        while (ms_now() - t0 < 2000) {
                ck_assert_msg(!try_connect(&c, &d, &code), "admitted while out of fds");
                ck_assert_msg(code == -32009 || code == -32004, "refused with %d", code);
                (void)watch_until_refused(&flood, fds, 1, &code);
                knocks++;
                (void)poll(NULL, 0, 20);
        }
        t1 = ms_now();
        cpu1 = daemon_cpu_seconds(&d);
        printf("fd exhaustion: %u refused knocks in %lld ms cost the daemon %.3f s of CPU\n",
               knocks, t1 - t0, cpu1 - cpu0);
        ck_assert_msg(cpu1 - cpu0 <= SPIN_BOUND * (double)(t1 - t0) / 1000.0,
                      "the daemon used %.2f s of CPU in %.2f s while out of fds", cpu1 - cpu0,
                      (double)(t1 - t0) / 1000.0);
        ping(&b.c);

        /* The flood leaves: everything comes back, a new client gets in and can watch. */
        test_client_close(&flood);
        for (unsigned i = 0; i < admitted; i++)
                test_client_close(&conns[i]);
        expect_fd_count(&d, base, 10000);
        ck_assert_msg(try_connect(&c, &d, &code), "no admission after the flood left (%d)", code);
        {
                int p[2];
                json_int_t w;
                json_t *m;

                make_pipe(p);
                w = watch_fd(&c, p[0], "in", "edge", NULL);
                ck_assert_int_eq(write(p[1], "x", 1), 1);
                m = wait_for(&c, "ready", "watch", w, TIMEOUT);
                ck_assert_msg(m, "no ready after recovery");
                json_decref(m);
                close_pair(p);
        }
        test_client_close(&c);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        free(conns);
        finish(&d, &b, base);
}
END_TEST

/* ---- tests --------------------------------------------------------------------------- */

void hostile_fd_exhaustion_tests(TCase *tc) {
        tcase_add_test(tc, test_fd_exhaustion);
}
