/* test-engine-add-errors.c - what engine_add_io() refuses, and with which error
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

/* ---- add errors ---- */

static int nop_io_cb(EngineSource *s, int fd, uint32_t revents, void *userdata) {
        (void)s, (void)fd, (void)revents, (void)userdata;
        return 0;
}

static void expect_add_fails(Engine *e, int fd, uint32_t events, EngineMode mode, int error) {
        EngineSource *sentinel = (EngineSource *)(uintptr_t)0x5a5a;
        EngineSource *s = sentinel;
        int r = engine_add_io(e, &s, fd, events, mode, nop_io_cb, NULL);

        ck_assert_msg(r == error,
                      "engine_add_io(fd %d, events 0x%x, mode %d) = %d (%s), want %d (%s)",
                      fd, events, (int)mode, r, strerror(-r), error, strerror(-error));
        /* ret_ parameters are written only on success. */
        ck_assert_ptr_eq(s, sentinel);
}

START_TEST(test_add_errors) {
        _cleanup_pair_ int p[2] = PAIR_NULL;
        _cleanup_close_ int file = -1, dir = -1, null = -1;
        const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        char path[PATH_MAX];
        IoRec r = { 0 };
        EngineSource *s;
        uint32_t base;
        int closed;

        make_pipe(p);
        ck_assert_int_lt(snprintf(path, sizeof(path), "%s/evd-test-engine-XXXXXX", tmp), (int)sizeof(path));
        file = mkostemp(path, O_CLOEXEC);
        ck_assert_int_ge(file, 0);
        ck_assert_int_eq(unlink(path), 0);
        dir = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(dir, 0);
        null = open("/dev/null", O_RDWR | O_CLOEXEC);
        ck_assert_int_ge(null, 0);

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        base = get_stats(e).io_sources;
        s = add_io(e, p[0], ENGINE_IN, ENGINE_EDGE, &r);
        expect_add_fails(e, p[0], ENGINE_IN, ENGINE_EDGE, -EEXIST);
        expect_add_fails(e, p[0], ENGINE_OUT, ENGINE_ONESHOT, -EEXIST);
        expect_add_fails(e, file, ENGINE_IN, ENGINE_EDGE, -EPERM);
        expect_add_fails(e, dir, ENGINE_IN, ENGINE_EDGE, -EPERM);
        /* io_uring would call /dev/null always ready; it must be refused like on epoll. */
        expect_add_fails(e, null, ENGINE_IN, ENGINE_EDGE, -EPERM);
        expect_add_fails(e, -1, ENGINE_IN, ENGINE_EDGE, -EBADF);
        /* A number that was just closed (taken after the engine made its own fds). */
        closed = fcntl(p[0], F_DUPFD_CLOEXEC, 3);
        ck_assert_int_ge(closed, 0);
        ck_assert_int_eq(close(closed), 0);
        expect_add_fails(e, closed, ENGINE_IN, ENGINE_EDGE, -EBADF);
        expect_add_fails(e, 1 << 20, ENGINE_IN, ENGINE_EDGE, -EBADF);
        expect_add_fails(e, p[1], ENGINE_IN | 0x100, ENGINE_EDGE, -EINVAL);
        expect_add_fails(e, p[1], 0x40000000, ENGINE_EDGE, -EINVAL);
        expect_add_fails(e, p[1], ENGINE_IN, _ENGINE_MODE_MAX, -EINVAL);
        expect_add_fails(e, p[1], ENGINE_IN, (EngineMode)77, -EINVAL);
        ck_assert_int_eq(source_io_modify(s, ENGINE_IN | 0x100, ENGINE_EDGE), -EINVAL);
        ck_assert_int_eq(source_io_modify(s, ENGINE_IN, _ENGINE_MODE_MAX), -EINVAL);

        /* Nothing half-registered: the failures left no source behind, the good one works. */
        ck_assert_uint_eq(get_stats(e).io_sources, base + 1);
        write_byte(p[1]);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert_uint_eq(r.revents, ENGINE_IN);
        s = source_free(s);
        ck_assert_uint_eq(get_stats(e).io_sources, base);
        r = (IoRec){ 0 };
        add_io(e, p[1], ENGINE_OUT, ENGINE_EDGE, &r);
        STEP_UNTIL(e, r.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void engine_add_errors_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "add-errors", 30);
        tcase_add_test(tc, test_add_errors);
}
