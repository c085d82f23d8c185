/* stats.c - histogram arithmetic; counters are plain fields bumped where things happen */

#include "stats.h"

void histogram_add(Histogram *h, uint64_t ns) {
        unsigned b = ns ? 63u - (unsigned)__builtin_clzll(ns) : 0;

        if (b >= HISTOGRAM_BUCKETS)
                b = HISTOGRAM_BUCKETS - 1;
        h->buckets[b]++;
        h->count++;
        h->sum_ns += ns;
        if (ns > h->max_ns)
                h->max_ns = ns;
}

uint64_t histogram_percentile(const Histogram *h, double p) {
        uint64_t want, seen = 0;

        if (h->count == 0)
                return 0;
        want = (uint64_t)((double)h->count * p / 100.0);
        if (want >= h->count)
                want = h->count - 1;
        for (unsigned b = 0; b < HISTOGRAM_BUCKETS; b++) {
                seen += h->buckets[b];
                if (seen > want) {
                        uint64_t upper = UINT64_C(2) << b;
                        return upper < h->max_ns ? upper : h->max_ns;
                }
        }
        return h->max_ns;
}

json_t *histogram_to_json(const Histogram *h) {
        json_t *buckets = json_array();

        if (!buckets)
                return NULL;
        for (unsigned b = 0; b < HISTOGRAM_BUCKETS; b++) {
                if (!h->buckets[b])
                        continue;
                if (json_array_append_new(buckets, json_pack("{s:f,s:I}", "le_us", (double)(UINT64_C(2) << b) / 1e3,
                                                             "count", (json_int_t)h->buckets[b])) < 0) {
                        json_decref(buckets);
                        return NULL;
                }
        }
        return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:o}",
                         "count", (json_int_t)h->count,
                         "mean_us", h->count ? (double)h->sum_ns / (double)h->count / 1e3 : 0.0,
                         "p50_us", (double)histogram_percentile(h, 50) / 1e3,
                         "p90_us", (double)histogram_percentile(h, 90) / 1e3,
                         "p99_us", (double)histogram_percentile(h, 99) / 1e3,
                         "max_us", (double)h->max_ns / 1e3,
                         "buckets", buckets);
}

#define FIELD(f) { #f, offsetof(DaemonStats, f) }
const StatsField daemon_stats_fields[] = {
        FIELD(accepted),    FIELD(refused),       FIELD(disconnected), FIELD(requests),
        FIELD(errors),      FIELD(notifications), FIELD(coalesced),    FIELD(packets_in),
        FIELD(packets_out), FIELD(bytes_in),      FIELD(bytes_out),    FIELD(fds_in),
        FIELD(monitor_dropped), FIELD(timers_held),
};
#undef FIELD
const size_t daemon_stats_n_fields = sizeof(daemon_stats_fields) / sizeof(daemon_stats_fields[0]);
_Static_assert(sizeof(daemon_stats_fields) / sizeof(daemon_stats_fields[0]) == sizeof(DaemonStats) / sizeof(uint64_t),
               "every DaemonStats counter has a name");
