#pragma once
/* util-hostile.h - the hostile suite's helpers: scanned replies, the bystander, low limits */

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "util-check.h"
#include "util-daemon.h"

/* Bounds documented in the tests that use them (see the report of each test). */
#define RSS_SLACK_KIB 2048L       /* client death: RSS after a round vs after the warm-up */
#define SLOW_READER_RSS_KIB 2048L /* slow reader: RSS growth while 1,000 watches are busy */
#define LATENCY_BOUND_MS 1000LL   /* a bystander's ready while another client is hostile */
#define SPIN_BOUND 0.20           /* daemon CPU time / wall time while it is out of fds */

extern char arg_self[PATH_MAX]; /* this binary, for the rlimit wrapper */

/** under_valgrind() - $EVD_UNDER_VALGRIND is 1 (the valgrind test setup). */
bool under_valgrind(void);
/** slow_build() - under ASan or valgrind: the same sizes, fewer repetitions. */
bool slow_build(void);
/** scanned() - @v, asserted to hold no pointer-like text (0x and six or more hex digits). */
json_t *scanned(json_t *v);
/** error_code() - the code of error reply @reply (0 if it is none). */
int error_code(json_t *reply);
/** call(), result() - test_client_call() and test_client_result(), scanned. */
json_t *call(TestClient *c, const char *method, json_t *params, const int *fds, size_t n_fds);
json_t *result(TestClient *c, const char *method, json_t *params, const int *fds, size_t n_fds);
/** next_reply() - the next packet holding replies, scanned; asserts one came (@what: for the
 * message). */
json_t *next_reply(TestClient *c, const char *what);
/** expect_fd_count() - the daemon gets back to @want fds within @timeout_ms. */
void expect_fd_count(TestDaemon *d, int want, int timeout_ms);
/** forget_backlog() - drop what the backlog collected (notifications and stray replies). */
void forget_backlog(TestClient *c);
/** stop_daemon() - SIGTERM, asserting the daemon exits 0. */
void stop_daemon(TestDaemon *d);
/** start_with_nofile() - start the daemon under RLIMIT_NOFILE @nofile (soft and hard): this
 * binary is the wrapper. */
void start_with_nofile(TestDaemon *d, const char *const *args, unsigned nofile);
/** daemon_nofile() - the daemon's soft RLIMIT_NOFILE, from /proc/PID/limits. */
long daemon_nofile(const TestDaemon *d);
/** daemon_cpu_seconds() - the daemon's CPU time so far (user + system), in seconds. */
double daemon_cpu_seconds(const TestDaemon *d);

/* A connection with a watch on a pipe of its own: "other clients are unaffected" means its
 * ping is answered and its watch delivers a `ready`, within bounds. */
typedef struct Bystander {
        TestClient c;
        int pipe[2];
        json_int_t watch;
} Bystander;

void bystander_init(Bystander *b, const TestDaemon *d);
/** bystander_check() - ping, then one `ready`. Return: the ready's latency in ms. */
long long bystander_check(Bystander *b);
void bystander_close(Bystander *b);
/** start_with_bystander() - start a daemon with a bystander. Return: the fd baseline. */
int start_with_bystander(TestDaemon *d, const char *const *args, Bystander *b);
/** finish() - the end of every test: the bystander works, fds are back to @base, SIGTERM
 * exits 0. */
void finish(TestDaemon *d, Bystander *b, int base);
/** nest() - text made of @prefix, @open repeated @depth times, @core, @close repeated @depth
 * times and @suffix (a new string; its length in *@ret_len). */
char *nest(const char *prefix, const char *open, const char *core, const char *close,
           size_t depth, const char *suffix, size_t *ret_len);
/** admitted() - whether the daemon admits the fresh connection @c: true (admitted, still
 * open), or false with the refusal's error code in *@ret_code (then EOF, and @c is closed). */
bool admitted(TestClient *c, int *ret_code);
/** try_connect() - connect @c to @d and admitted(). */
bool try_connect(TestClient *c, const TestDaemon *d, int *ret_code);
/** watch_until_refused() - send @n_fds fds (copies of @fds[0..n)) as @n_fds watch requests.
 * Return: how many got a watch (every error must be one of the documented out-of-resources
 * codes; the last one's code in *@ret_code). */
unsigned watch_until_refused(TestClient *c, const int *fds, unsigned n_fds, int *ret_code);
