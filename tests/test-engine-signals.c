/* test-engine-signals.c - signal sources: delivery through signalfd, free restores the mask
 *
 * Part of the engine suite: test-engine.c runs it once per backend (see there for how tests
 * wait without sleeping and free what they make); helpers in util-engine.h and util-fd.h.
 */

#include "engine.h"
#include "macro.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "test-engine.h"
#include "util-check.h"
#include "util-engine.h"
#include "util-fd.h"
#include "util-json.h"

static volatile sig_atomic_t handler_hits;

static void count_handler(int signo) {
        (void)signo;
        handler_hits++;
}

START_TEST(test_signal_basic) {
        EngineSource *s1 = NULL, *s2 = NULL, *dup = (EngineSource *)(uintptr_t)0x5a5a;
        SigRec r1 = { 0 }, r2 = { 0 }, other = { 0 };

        ck_assert(!signal_blocked(SIGUSR1));
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        ck_assert_int_eq(engine_add_signal(e, &s1, SIGUSR1, sig_rec_cb, &r1), 0);
        ck_assert(signal_blocked(SIGUSR1));
        ck_assert_int_eq(engine_add_signal(e, &dup, SIGUSR1, sig_rec_cb, &other), -EEXIST);
        ck_assert_ptr_eq(dup, (EngineSource *)(uintptr_t)0x5a5a);
        ck_assert_int_eq(engine_add_signal(e, &s2, SIGUSR2, sig_rec_cb, &r2), 0);

        ck_assert_int_eq(raise(SIGUSR1), 0);
        STEP_UNTIL(e, r1.calls >= 1);
        ck_assert_uint_eq(r1.calls, 1);
        ck_assert_uint_eq(r1.last.ssi_signo, SIGUSR1);
        ck_assert_uint_eq(r2.calls, 0);

        ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
        STEP_UNTIL(e, r1.calls >= 2);
        ck_assert_uint_eq(r1.calls, 2);
        ck_assert_uint_eq(r1.last.ssi_signo, SIGUSR1);
        ck_assert_int_eq(r1.last.ssi_code, SI_USER);
        ck_assert_uint_eq(r1.last.ssi_pid, (uint32_t)getpid());

        ck_assert_int_eq(raise(SIGUSR2), 0);
        ck_assert_int_eq(raise(SIGUSR1), 0);
        STEP_UNTIL(e, r1.calls >= 3 && r2.calls >= 1);
        ck_assert_uint_eq(r1.calls, 3);
        ck_assert_uint_eq(r2.calls, 1);
        ck_assert_uint_eq(r2.last.ssi_signo, SIGUSR2);
        step_for(e, MSEC(20));
        ck_assert_uint_eq(r1.calls, 3);
        ck_assert_uint_eq(r2.calls, 1);
        ck_assert_uint_eq(other.calls, 0);

        s1 = source_free(s1);
        s2 = source_free(s2);
        ck_assert(!signal_blocked(SIGUSR1));
        ck_assert(!signal_blocked(SIGUSR2));
}
END_TEST

START_TEST(test_signal_free) {
        struct sigaction sa = { .sa_handler = count_handler }, old_sa;
        SigRec r = { 0 }, again = { 0 }, selfish = { .free_self = true };
        EngineSource *s = NULL;

        sigemptyset(&sa.sa_mask);
        ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old_sa), 0);
        handler_hits = 0;
        {
                _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);

                ck_assert_int_eq(engine_add_signal(e, &s, SIGUSR1, sig_rec_cb, &r), 0);
                step_for(e, MSEC(10));
                s = source_free(s);
                /* Unblocked again: the handler gets it, the freed callback does not. */
                ck_assert(!signal_blocked(SIGUSR1));
                ck_assert_int_eq(raise(SIGUSR1), 0);
                step_for(e, MSEC(30));
                ck_assert_int_eq(handler_hits, 1);
                ck_assert_uint_eq(r.calls, 0);

                /* Pending when freed: still never reaches the freed callback. */
                ck_assert_int_eq(engine_add_signal(e, &s, SIGUSR1, sig_rec_cb, &again), 0);
                ck_assert_int_eq(raise(SIGUSR1), 0);
                s = source_free(s);
                step_for(e, MSEC(30));
                ck_assert_uint_eq(again.calls, 0);

                /* Freed inside its own callback. */
                ck_assert_int_eq(engine_add_signal(e, &s, SIGUSR1, sig_rec_cb, &selfish), 0);
                selfish.self = &s;
                ck_assert_int_eq(raise(SIGUSR1), 0);
                STEP_UNTIL(e, selfish.calls >= 1);
                ck_assert_uint_eq(selfish.calls, 1);
                ck_assert_ptr_null(s);
                ck_assert(!signal_blocked(SIGUSR1));
                handler_hits = 0;
                ck_assert_int_eq(raise(SIGUSR1), 0);
                step_for(e, MSEC(20));
                ck_assert_uint_eq(selfish.calls, 1);
                ck_assert_int_eq(handler_hits, 1);
        }
        ck_assert_int_eq(sigaction(SIGUSR1, &old_sa, NULL), 0);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void engine_signals_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "signals", 30);
        tcase_add_test(tc, test_signal_basic);
        tcase_add_test(tc, test_signal_free);
}
