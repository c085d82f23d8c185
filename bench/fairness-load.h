#pragma once
/* fairness-load.h - the loads bench/fairness and evd-bench's scenarios 9 and 10 share: floods
 * of timers, edge wakeups and oneshot re-arms, and another uid's pings, over raw
 * connections (bench-client.h) */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FAIRNESS_BYSTANDER_UID 65534 /* nobody: any uid but the flood's (root) would do */
#define FAIRNESS_FLOOD_CONNS 4
#define FAIRNESS_FLOOD_TIMERS 25000 /* per connection, each repeating every millisecond */
#define FAIRNESS_MAX_PINGS 100000
#define FAIRNESS_ONESHOT_MAX 1024 /* oneshot watches per connection: one packet of arms */

/* A bystander's round trips, in ns (nearest rank). */
typedef struct FairnessPings {
        uint64_t p50, p99, max;
        unsigned n;
} FairnessPings;

/** fairness_spawn() - fork() a child that dies with its parent; dies on failure. */
pid_t fairness_spawn(void);
/** fairness_call_batch() - send a packet (@n_fds fds, borrowed), read until @want replies;
 * dies on an error reply. */
void fairness_call_batch(int fd, const char *buf, size_t len, const int *fds, size_t n_fds,
                         unsigned want);
/** fairness_stop() - SIGKILL and reap the child @pid (none if <= 0); exits if it had
 * already ended: what it was meant to load or serve was not there to measure. */
void fairness_stop(pid_t pid, const char *what);
/** fairness_discard() - read and drop what arrives on @fds (at most 4) until killed. */
_Noreturn void fairness_discard(const int *fds, size_t n);
/**
 * fairness_flood_timers() - a child that arms FAIRNESS_FLOOD_CONNS connections x
 * FAIRNESS_FLOOD_TIMERS timers on @socket_path, then reads and drops every notification.
 * Return: its pid, once every timer is armed.
 */
pid_t fairness_flood_timers(const char *socket_path);
/**
 * fairness_flood_edge() - a child that opens @conns connections (at most 4) to
 * @socket_path, each with @watches edge watches (a multiple of 32) on eventfds, @fanout
 * watches on each eventfd (a divisor of 32: the same file sent @fanout times, as K
 * watches of one pipe are), then reads and drops every notification while a child of its
 * own writes to every eventfd in turn, as fast as it can.
 * Return: its pid, once every watch is armed.
 */
pid_t fairness_flood_edge(const char *socket_path, unsigned conns, unsigned watches, unsigned fanout);
/**
 * fairness_flood_oneshot() - a child that opens @conns connections (at most 4) to
 * @socket_path, each with @watches oneshot watches (a multiple of 32, at most
 * FAIRNESS_ONESHOT_MAX) on eventfds that stay readable, and answers every `ready` with
 * its `arm` (one packet of JSON-RPC notifications per packet read), so every watch fires
 * again as soon as the daemon re-arms it. Return: its pid, once every watch is armed.
 */
pid_t fairness_flood_oneshot(const char *socket_path, unsigned conns, unsigned watches);
/**
 * fairness_bystander() - a child that switches to FAIRNESS_BYSTANDER_UID and pings
 * @socket_path once a millisecond for @seconds.
 * @ret_rtt: NULL, or MAP_SHARED memory for FAIRNESS_MAX_PINGS round trips (ns), which
 *           the child fills, sorted (@ret->n of them)
 * @ret: the summary. The socket must be open to that uid.
 */
void fairness_bystander(const char *socket_path, double seconds, int64_t *ret_rtt,
                        FairnessPings *ret);
