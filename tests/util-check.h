#pragma once
/* util-check.h - tests: the check runner every suite's main() shares */

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** test_tcase() - a new TCase @name with @timeout_s seconds per test, added to @s. */
TCase *test_tcase(Suite *s, const char *name, int timeout_s);
/** test_uring_refused() - whether $EVD_TEST_BACKEND is io_uring and the kernel refuses it
 * (-ENOSYS, -EPERM): then the binary exits 77 (meson's skip) and the epoll run covers all.
 * Says why on stdout. */
bool test_uring_refused(void);
/** test_run_suite() - run @s (taken) with CK_NORMAL output. Return: main()'s exit code, 0 if
 * every test passed, else 1. */
int test_run_suite(Suite *s);
/** test_run_suite_in_dir() - test_run_suite() with a new private folder $TMPDIR/@prefix-XXXXXX
 * in @dir (@size bytes) for its tests, removed with all in it when the suite is done.
 * Return: as test_run_suite(), 1 if the folder cannot be made. */
int test_run_suite_in_dir(Suite *s, char *dir, size_t size, const char *prefix);

/* ck_assert_*() records a mark point per call (about 2 us): loops over a million timers
 * check with these, which call into check only on failure. */
#define CHECK(c)                                                                \
        do {                                                                    \
                if (!(c))                                                       \
                        ck_abort_msg("Assertion '%s' failed", #c);              \
        } while (0)
#define CHECK_U(a, op, b)                                                       \
        do {                                                                    \
                uintmax_t _a = (a), _b = (b);                                   \
                if (!(_a op _b))                                                \
                        ck_abort_msg("Assertion '%s %s %s' failed: %ju, %ju",   \
                                     #a, #op, #b, _a, _b);                      \
        } while (0)

/* Under AddressSanitizer (its quarantine keeps freed memory resident: no RSS bounds). */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/** rng_next() - splitmix64 over rng_state: tiny, good enough, and identical everywhere so
 * seeds replay. */
extern uint64_t rng_state;
uint64_t rng_next(void);
