/*
 * evd-bench-dist.c - latency distributions: sorted nanosecond samples to percentiles
 * (microseconds) and their JSON.
 */

#include <math.h>
#include <stdlib.h>

#include "evd-bench.h"
#include "macro.h"

/* ---- distributions ---------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

static double rank_us(const int64_t *sorted, size_t n, double q) {
        size_t i = (size_t)ceil(q * (double)n);

        return (double)sorted[i > 0 ? i - 1 : 0] / 1e3;
}

/* Sorts @ns in place. */
Dist dist_of(int64_t *ns, size_t n) {
        Dist d = {.n = n};
        double sum = 0;

        if (n == 0)
                return d;
        qsort(ns, n, sizeof(*ns), cmp_i64);
        for (size_t i = 0; i < n; i++)
                sum += (double)ns[i];
        d.min = (double)ns[0] / 1e3;
        d.max = (double)ns[n - 1] / 1e3;
        d.mean = sum / (double)n / 1e3;
        d.p50 = rank_us(ns, n, 0.50);
        d.p99 = rank_us(ns, n, 0.99);
        d.p999 = rank_us(ns, n, 0.999);
        return d;
}

json_t *dist_json(const Dist *d) {
        json_t *j = json_object();

        jint(j, "samples", d->n);
        jreal(j, "min_us", d->min);
        jreal(j, "p50_us", d->p50);
        jreal(j, "p99_us", d->p99);
        jreal(j, "p99.9_us", d->p999);
        jreal(j, "max_us", d->max);
        jreal(j, "mean_us", d->mean);
        return j;
}
