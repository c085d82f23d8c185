/* test-engine-backend.c - backend selection: auto, $EVD_BACKEND, and what is reported
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

/* ---- backend selection ---- */

static bool uring_available(void) {
        EngineOptions o = { .backend = ENGINE_BACKEND_IO_URING };
        Engine *e = NULL;
        int r = engine_new(&e, &o);

        (void)engine_free(e);
        return r >= 0;
}

static void expect_auto_backend(const char *env, const char *want) {
        EngineOptions o = { .backend = ENGINE_BACKEND_AUTO };
        Engine *e = NULL;

        if (env)
                ck_assert_int_eq(setenv("EVD_BACKEND", env, 1), 0);
        else
                ck_assert_int_eq(unsetenv("EVD_BACKEND"), 0);
        ck_assert_int_eq(engine_new(&e, &o), 0);
        ck_assert_str_eq(engine_backend_name(e), want);
        e = engine_free(e);
        ck_assert_ptr_null(e);
}

START_TEST(test_backend_select) {
        EngineOptions o = { .backend = ENGINE_BACKEND_AUTO };
        Engine *e = (Engine *)(uintptr_t)0x5a5a;
        bool uring = uring_available();

        expect_auto_backend("epoll", "epoll");
        if (uring) {
                expect_auto_backend("io_uring", "io_uring");
                expect_auto_backend(NULL, "io_uring");
        } else
                expect_auto_backend(NULL, "epoll");

        ck_assert_int_eq(setenv("EVD_BACKEND", "kqueue", 1), 0);
        ck_assert_int_eq(engine_new(&e, &o), -EINVAL);
        ck_assert_ptr_eq(e, (Engine *)(uintptr_t)0x5a5a);

        /* Only AUTO consults the environment. */
        o.backend = ENGINE_BACKEND_EPOLL;
        ck_assert_int_eq(setenv("EVD_BACKEND", "io_uring", 1), 0);
        e = NULL;
        ck_assert_int_eq(engine_new(&e, &o), 0);
        ck_assert_str_eq(engine_backend_name(e), "epoll");
        e = engine_free(e);
        ck_assert_int_eq(unsetenv("EVD_BACKEND"), 0);

        o.backend = _ENGINE_BACKEND_MAX;
        e = (Engine *)(uintptr_t)0x5a5a;
        ck_assert_int_eq(engine_new(&e, &o), -EINVAL);
        ck_assert_ptr_eq(e, (Engine *)(uintptr_t)0x5a5a);

        /* NULL options: the default (auto) backend. */
        e = NULL;
        ck_assert_int_eq(engine_new(&e, NULL), 0);
        ck_assert_str_eq(engine_backend_name(e), uring ? "io_uring" : "epoll");
        e = engine_free(e);
        ck_assert_ptr_null(engine_free(NULL));
        ck_assert_ptr_null(source_free(NULL));
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void engine_backend_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "backend", 30);
        tcase_add_test(tc, test_backend_select);
}
