#pragma once
/* stats.h - daemon counters and a log2 latency histogram */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define HISTOGRAM_BUCKETS 32

/* Bucket i counts samples in [2^i, 2^(i+1)) ns (bucket 0 also takes 0): constant memory,
 * and a percentile estimate that is within a factor of two. */
typedef struct Histogram {
        uint64_t buckets[HISTOGRAM_BUCKETS];
        uint64_t count;
        uint64_t sum_ns;
        uint64_t max_ns;
} Histogram;

void histogram_add(Histogram *h, uint64_t ns);
/** histogram_percentile() - upper bound of the bucket holding the @p-th percentile. */
uint64_t histogram_percentile(const Histogram *h, double p);
/** histogram_to_json() - {count, mean_us, p50_us, p90_us, p99_us, max_us, buckets: [{le_us, count}]}.
 * Return: a new reference or NULL. */
json_t *histogram_to_json(const Histogram *h);

typedef struct DaemonStats {
        uint64_t accepted;
        uint64_t refused;      /* connections turned away: limits, out of fds */
        uint64_t disconnected; /* by the daemon: slow reader, protocol abuse */
        uint64_t requests;
        uint64_t errors;       /* error replies sent */
        uint64_t notifications;
        uint64_t coalesced;    /* events merged into an already queued notification */
        uint64_t packets_in;
        uint64_t packets_out;
        uint64_t bytes_in;
        uint64_t bytes_out;
        uint64_t fds_in;
        uint64_t monitor_dropped;
        uint64_t timers_held;  /* expirations held back by max-timer-rate-per-uid */
} DaemonStats;

/* Each DaemonStats counter by name, for what must carry them across a re-exec (snapshot.c). */
typedef struct StatsField {
        const char *name;
        size_t offset;
} StatsField;
extern const StatsField daemon_stats_fields[];
extern const size_t daemon_stats_n_fields;
