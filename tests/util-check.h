#pragma once
/* util-check.h - tests: the check runner every suite's main() shares */

#include <check.h>
#include <stdbool.h>

/** test_tcase() - a new TCase @name with @timeout_s seconds per test, added to @s. */
TCase *test_tcase(Suite *s, const char *name, int timeout_s);
/** test_uring_refused() - whether $EVD_TEST_BACKEND is io_uring and the kernel refuses it
 * (-ENOSYS, -EPERM): then the binary exits 77 (meson's skip) and the epoll run covers all.
 * Says why on stdout. */
bool test_uring_refused(void);
/** test_run_suite() - run @s (taken) with CK_NORMAL output. Return: main()'s exit code, 0 if
 * every test passed, else 1. */
int test_run_suite(Suite *s);
