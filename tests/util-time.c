/* util-time.c - tests: the clocks deadlines and timers are measured on */

#include <check.h>
#include <time.h>

#include "util-time.h"

double mono_now(void) {
        struct timespec ts;

        ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double real_now(void) {
        struct timespec ts;

        ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &ts), 0);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long long ms_now(void) {
        return (long long)(mono_now() * 1000.0);
}
