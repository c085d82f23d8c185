/* util-check.c - tests: the check runner every suite's main() shares
 *
 * One Suite per binary, TCases by feature (each test-*.c file adds its own); the summary
 * lines check prints (CK_NORMAL) are what the CI reads.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "util-check.h"
#include "util-daemon.h"

TCase *test_tcase(Suite *s, const char *name, int timeout_s) {
        TCase *tc = tcase_create(name);

        tcase_set_timeout(tc, timeout_s);
        suite_add_tcase(s, tc);
        return tc;
}

bool test_uring_refused(void) {
        const char *backend = getenv("EVD_TEST_BACKEND");

        if (backend && strcmp(backend, "io_uring") == 0) {
                EngineOptions o = { .backend = ENGINE_BACKEND_IO_URING };
                Engine *e = NULL;
                int r = engine_new(&e, &o);

                if (r == -ENOSYS || r == -EPERM) {
                        printf("io_uring refused by the kernel (%s): skipping\n", strerror(-r));
                        return true;
                }
                (void)engine_free(e);
        }
        return false;
}

int test_run_suite(Suite *s) {
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}

int test_run_suite_in_dir(Suite *s, char *dir, size_t size, const char *prefix) {
        int failed;

        snprintf(dir, size, "%s/%s-XXXXXX", test_tmpdir(), prefix);
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        failed = test_run_suite(s);
        test_remove_tree(dir);
        return failed;
}

uint64_t rng_state;

uint64_t rng_next(void) {
        uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}
