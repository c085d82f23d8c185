/* test-engine-scale.c - scale: as many fds as RLIMIT_NOFILE allows, a million timers
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

START_TEST(test_many_fds) {
        unsigned n = MIN(raise_nofile(), 10000u);
        EngineStats st;
        uint32_t base;
        Many m;

        ck_assert_uint_ge(n, 1000);
        many_init(&m, n);
        {
                _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);

                base = get_stats(e).io_sources;
                many_add(&m, e, ENGINE_EDGE);
                step_for(e, MSEC(20));
                ck_assert_uint_eq(many_sum(&m), 0);
                st = get_stats(e);
                ck_assert_uint_eq(st.io_sources, base + n);

                many_bump(&m);
                many_expect_each(e, &m, 1);
                many_bump(&m);
                many_expect_each(e, &m, 2);
                st = get_stats(e);
                ck_assert_uint_ge(st.events, 2 * n);
                many_done(&m, e);
        }
}
END_TEST

typedef struct MillionCtx {
        uint32_t n;
        uint64_t last_at;
        uint32_t fired_total;
        uint8_t *fired;
        EngineSource **src;
        uint64_t *deadline;
} MillionCtx;

static MillionCtx million;

static int million_cb(EngineSource *s, uint64_t expirations, void *userdata) {
        uint32_t i = (uint32_t)(uintptr_t)userdata;
        uint64_t at = source_timer_get_at(s);

        CHECK_U(i, <, million.n);
        CHECK(million.src[i] == s);
        CHECK_U(expirations, ==, 1);
        CHECK_U(at, ==, million.deadline[i]);
        CHECK_U(at, >=, million.last_at);
        million.last_at = at;
        million.fired[i]++;
        million.fired_total++;
        million.src[i] = source_free(s);
        return 0;
}

START_TEST(test_timer_million) {
        const uint32_t n = 1000000;
        uint32_t live = 0;
        EngineStats st0, st;
        uint64_t base;

        rng_state = 0x5eed;
        million = (MillionCtx){ .n = n };
        million.fired = calloc(n, 1);
        million.src = calloc(n, sizeof(*million.src));
        million.deadline = malloc(sizeof(*million.deadline) * n);
        ck_assert(million.fired && million.src && million.deadline);
        {
                _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);

                ck_assert_int_eq(engine_step(e, 0), 0);
                st0 = get_stats(e);
                base = engine_now(e, ENGINE_CLOCK_MONOTONIC) + MSEC(300);
                for (uint32_t i = 0; i < n; i++) {
                        int r;

                        million.deadline[i] = base + rng_next() % MSEC(1000);
                        r = engine_add_timer(e, &million.src[i], ENGINE_CLOCK_MONOTONIC,
                                             million.deadline[i], 0, million_cb,
                                             (void *)(uintptr_t)i);
                        if (r < 0)
                                ck_abort_msg("engine_add_timer #%u: %s", i, strerror(-r));
                }
                st = get_stats(e);
                ck_assert_uint_eq(st.timer_sources, st0.timer_sources + n);
                for (uint32_t i = 0; i < n; i++) {
                        if (rng_next() & 1)
                                million.src[i] = source_free(million.src[i]);
                        else
                                live++;
                }
                ck_assert_uint_eq(get_stats(e).timer_sources, st0.timer_sources + live);

                {
                        uint64_t deadline = mono_ns() + 30 * NSEC_PER_SEC * arg_slow;

                        while (million.fired_total < live) {
                                ck_assert_uint_lt(mono_ns(), deadline);
                                ck_assert_int_eq(engine_step(e, (int64_t)MSEC(10)), 0);
                        }
                }
                step_for(e, MSEC(20));
                ck_assert_uint_eq(million.fired_total, live);
                for (uint32_t i = 0; i < n; i++) {
                        CHECK_U(million.fired[i], <=, 1);
                        /* Fired ones freed themselves; cancelled ones were freed above. */
                        CHECK(million.src[i] == NULL);
                }
                st = get_stats(e);
                ck_assert_uint_eq(st.timers - st0.timers, live);
                ck_assert_uint_eq(st.timer_sources, st0.timer_sources);
        }
        free(million.fired);
        free(million.src);
        free(million.deadline);
        million = (MillionCtx){ 0 };
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void engine_scale_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "scale", 120);
        tcase_add_test(tc, test_many_fds);
        tcase_add_test(tc, test_timer_million);
}
