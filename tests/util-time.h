#pragma once
/* util-time.h - tests: the clocks deadlines and timers are measured on */

/** mono_now() - CLOCK_MONOTONIC in seconds. */
double mono_now(void);
/** real_now() - CLOCK_REALTIME in seconds (for `at` timers). */
double real_now(void);
/** ms_now() - CLOCK_MONOTONIC in milliseconds: deadlines of bounded waits. */
long long ms_now(void);
