/*
 * engine-bench-util.c - small helpers the benches share: the watchdog that names a
 * stuck step, medians, the seeded PRNG, and --only contender selection.
 */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine-bench.h"
#include "macro.h"

volatile const char *watchdog_what = "";

void watchdog(int sig) {
        static const char msg[] = "\nengine-bench: watchdog: no progress in 60 s in ";
        const char *what = (const char *)watchdog_what;

        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)!write(STDERR_FILENO, what, strlen(what));
        (void)!write(STDERR_FILENO, "\n", 1);
        _exit(3);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

/* Median of @v[0..n) (sorts @v); 0 for an empty set. */
double median(uint64_t *v, size_t n) {
        if (n == 0)
                return 0;
        qsort(v, n, sizeof(*v), cmp_u64);
        return n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
}

uint64_t splitmix64(uint64_t *state) {
        uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

bool contender_selected(const char *name) {
        const char *p = arg_only;
        size_t len = strlen(name);

        if (!p)
                return true;
        while (*p) {
                const char *end = strchrnul(p, ',');

                if ((size_t)(end - p) == len && strncmp(p, name, len) == 0)
                        return true;
                p = *end ? end + 1 : end;
        }
        return false;
}
