/* test-fdset.c - fdset.c's count of open fds, both ways: the kernel's and the probe that
 * stands in for it before Linux 6.2 (Debian 12's own kernel), with its reuse window
 *
 * The truth is /proc/self/fd, listed (util-fd.h's count_fds()). A unit test: it links the
 * daemon's objects and starts no daemon.
 */

#include <check.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "fdset.h"
#include "util-check.h"
#include "util-fd.h"

/* Both counts see every fd, whatever its number: one far above the rest too. */
START_TEST(test_count_open) {
        FdCount c = { 0 };
        unsigned kernel, probed;
        int high = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 700), before;

        ck_assert_int_ge(high, 700);
        before = count_fds();
        ck_assert_int_eq(fdset_count_open(&c, &kernel), 0);
        ck_assert_int_eq(fdset_probe_open(&c, &probed), 0);
        ck_assert_int_eq(kernel, before);
        ck_assert_int_eq(probed, before);
        ck_assert_int_eq(close(high), 0);
        c = (FdCount){ 0 };
        ck_assert_int_eq(fdset_probe_open(&c, &probed), 0);
        ck_assert_int_eq(probed, before - 1);
        ck_assert_int_eq(fdset_count_open(&c, &kernel), 0);
        ck_assert_int_eq(kernel, before - 1);
}
END_TEST

/* A probe is reused while younger than 100 times its cost, and only then. */
START_TEST(test_probe_reuse) {
        FdCount c = { 0 };
        unsigned n, first;
        int fd;

        ck_assert_int_eq(fdset_probe_open(&c, &first), 0);
        ck_assert_int_gt(c.at_ns, 0);
        fd = dup(STDIN_FILENO);
        ck_assert_int_ge(fd, 0);
        c.cost_ns = UINT64_C(3600) * 1000000000; /* a probe that took an hour: reused */
        ck_assert_int_eq(fdset_probe_open(&c, &n), 0);
        ck_assert_uint_eq(n, first);
        c.cost_ns = 1; /* one that took 1 ns, long ago: counted again */
        ck_assert_int_eq(fdset_probe_open(&c, &n), 0);
        ck_assert_uint_eq(n, first + 1);
        ck_assert_int_eq(close(fd), 0);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("fdset");
        TCase *tc = test_tcase(s, "count", 30);

        tcase_add_test(tc, test_count_open);
        tcase_add_test(tc, test_probe_reuse);
        return s;
}

int main(void) {
        return test_run_suite(suite());
}
