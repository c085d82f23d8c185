#pragma once
/* clock.h - a fresh clock reading in ns, where the engine's cached time (engine_now) would be
 * stale: statistics, notify timestamps, times handed to another process */

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(clockid_t clock) {
        struct timespec ts;

        (void)clock_gettime(clock, &ts); /* cannot fail for the clocks evd uses */
        return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static inline uint64_t monotonic_ns(void) {
        return clock_ns(CLOCK_MONOTONIC);
}
