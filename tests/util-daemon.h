#pragma once
/* util-daemon.h - tests: start the built evd in a private directory, and a blocking client */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * The daemon binary comes from $EVD_TEST_DAEMON (meson passes evd.full_path()), its
 * backend from $EVD_TEST_BACKEND ("io_uring" or "epoll"; unset: the daemon's default).
 * Every daemon gets its own mkdtemp() directory, so tests run in parallel safely.
 */
typedef struct TestDaemon {
        pid_t pid;
        char dir[80];     /* mkdtemp() directory under $TMPDIR, removed by test_daemon_stop() */
        char socket[108]; /* dir/evd.sock (sun_path's size) */
        char log[128];    /* dir/evd.log: the daemon's stderr */
} TestDaemon;

/** test_tmpdir() - $TMPDIR, or /tmp: where every test makes its temporary folders. */
const char *test_tmpdir(void);
/** test_mkdtemp() - a new private folder $TMPDIR/@prefix-XXXXXX in @buf; aborts on failure. */
void test_mkdtemp(char *buf, size_t size, const char *prefix);

/** test_daemon_start() - start evd with @extra_args (NULL-terminated, may be NULL) and wait
 * (at most 5 s) until it accepts connections and has closed the probe connection that
 * found out (fd and client counts are exact when it returns). Aborts the test on failure. The daemon gets
 * SIGKILL if the process that started it dies first (a failed test leaves none behind). */
void test_daemon_start(TestDaemon *d, const char *const *extra_args);
/* What test_daemon_start_with() changes: another binary (NULL: $EVD_TEST_DAEMON), a
 * function run in the child just before the exec (to place fds, set the environment), and
 * an earlier daemon's directory to start in (its socket path; the log is appended to). */
typedef struct TestDaemonSpawn {
        const char *bin;
        void (*setup)(void *userdata);
        void *userdata;
        const char *dir;
        const char *const *wrapper; /* NULL-terminated: run the daemon under it (valgrind) */
} TestDaemonSpawn;
/** test_daemon_start_with() - test_daemon_start() as @spawn (may be NULL) says. */
void test_daemon_start_with(TestDaemon *d, const char *const *extra_args, const TestDaemonSpawn *spawn);
/** test_daemon_stop() - SIGTERM, wait (at most 10 s, then SIGKILL), clean up the directory.
 * Return: the exit status (0..255), or 128 + signal number if it was killed. */
int test_daemon_stop(TestDaemon *d);
/** test_daemon_wait_exit() - wait (at most @timeout_ms) for a daemon that was told to stop
 * (a signal sent by the test) to exit on its own, and reap it; test_daemon_stop() then only
 * cleans up. Sending a second SIGTERM to a daemon already exiting would test something else.
 * Return: the exit status as test_daemon_stop(), or -1 on timeout (the daemon is left running). */
int test_daemon_wait_exit(TestDaemon *d, int timeout_ms);
/** test_daemon_pause() - SIGSTOP, and wait until it took effect (kill() returns before): what
 * clients send meanwhile is all there when test_daemon_resume() wakes it. */
void test_daemon_pause(const TestDaemon *d);
void test_daemon_resume(const TestDaemon *d);
/** test_daemon_kill() - SIGKILL and reap (for restart tests); the directory is kept. */
void test_daemon_kill(TestDaemon *d);
/** test_daemon_fd_count() - open fds of the daemon (from /proc/PID/fd). */
int test_daemon_fd_count(const TestDaemon *d);
/** test_daemon_rss_kb() - the daemon's VmRSS in KiB. */
long test_daemon_rss_kb(const TestDaemon *d);
/** test_daemon_log_contains() - whether the daemon's stderr so far contains @needle. */
bool test_daemon_log_contains(const TestDaemon *d, const char *needle);
/** test_daemon_wait_fd_count() - wait (at most @timeout_ms) until the daemon has @want open
 * fds: closing fds after a disconnect is asynchronous. Return: the last count seen (== @want
 * on success), so that a failing assertion shows it. */
int test_daemon_wait_fd_count(const TestDaemon *d, int want, int timeout_ms);

typedef struct TestClient {
        int fd;
        long long next_id;
        json_t *backlog; /* notifications that arrived while waiting for a reply, oldest first */
} TestClient;

#define TEST_TIMEOUT_MS 5000

/** test_client_connect() - connect to @path. Return: 0 or -errno (no abort: tests of
 * refusals use it). */
int test_client_connect(TestClient *c, const char *path);
/** test_client_connect_as() - connect to @path with the credentials of @uid/@gid (no
 * supplementary groups): a forked child switches to them, connects (SO_PEERCRED is taken
 * then) and hands the socket back over SCM_RIGHTS. The directories on @path must be
 * searchable by @uid (a mkdtemp() directory is 0700: chmod it). Return: 0 or -errno. */
int test_client_connect_as(TestClient *c, const char *path, uid_t uid, gid_t gid);
void test_client_close(TestClient *c);
/** test_client_send_raw() - send @len bytes with @fds (borrowed). Aborts on failure. */
void test_client_send_raw(TestClient *c, const void *data, size_t len, const int *fds, size_t n_fds);
/** test_client_sendmsg() - one packet of @len bytes with @n_fds fds (borrowed), without the
 * protocol's limits (more than 32 fds, more than 65,536 bytes: tests of truncation). Waits
 * while the socket is full. Return: 0 or -errno (no abort). */
int test_client_sendmsg(TestClient *c, const void *data, size_t len, const int *fds, size_t n_fds);
/** test_client_send() - encode @msg (stolen) and send it with @fds. */
void test_client_send(TestClient *c, json_t *msg, const int *fds, size_t n_fds);
/** test_client_recv() - the next packet, parsed (a new reference), or NULL on timeout or EOF.
 * Ignores the backlog. */
json_t *test_client_recv(TestClient *c, int timeout_ms);
/** test_client_reply() - the next packet that holds replies, parsed, with any notifications
 * in it moved to the backlog (a new reference: the reply object, or an array of only the
 * replies). For requests sent raw. NULL on timeout or EOF. */
json_t *test_client_reply(TestClient *c, int timeout_ms);
/** test_client_wait_eof() - read until the daemon closes the connection; messages met on the
 * way go to the backlog. Return: true on EOF, false after @timeout_ms. */
bool test_client_wait_eof(TestClient *c, int timeout_ms);
/** test_client_call() - send a request for @method with @params (stolen, may be NULL) and
 * @fds, and return the whole reply object (result or error; a new reference). Notifications
 * arriving meanwhile go to the backlog. Aborts on timeout. */
json_t *test_client_call(TestClient *c, const char *method, json_t *params, const int *fds, size_t n_fds);
/** test_client_result() - test_client_call() that asserts success and returns a new
 * reference to `result`. */
json_t *test_client_result(TestClient *c, const char *method, json_t *params, const int *fds, size_t n_fds);
/** test_client_error_code() - test_client_call() that asserts an error and returns its code. */
int test_client_error_code(TestClient *c, const char *method, json_t *params, const int *fds, size_t n_fds);
/** test_client_notification() - the next notification named @method (NULL: any), from the
 * backlog first, then the socket; others met on the way stay in the backlog. A new
 * reference to the whole message, or NULL after @timeout_ms. */
json_t *test_client_notification(TestClient *c, const char *method, int timeout_ms);
/** test_client_notification_for() - the same, for the one whose params.@key is @id (@key
 * NULL: any). */
json_t *test_client_notification_for(TestClient *c, const char *method, const char *key, long long id,
                                     int timeout_ms);
/** test_client_connect_as_groups() - test_client_connect_as() with the supplementary groups
 * @groups (@n_groups of them, up to the kernel's NGROUPS_MAX, 65536; none if 0). */
int test_client_connect_as_groups(TestClient *c, const char *path, uid_t uid, gid_t gid,
                                  const gid_t *groups, size_t n_groups);

/** test_daemon_peak_rss_kb() - the daemon's VmHWM (peak resident set) in KiB. */
long test_daemon_peak_rss_kb(const TestDaemon *d);

/** test_wait_pid() - the exit status of child @pid within @timeout_ms (as test_daemon_stop()),
 * or -1 if it is still running then (or is no child). */
int test_wait_pid(pid_t pid, int timeout_ms);
/** test_remove_tree() - remove @dir and everything below it (what is gone already is fine). */
void test_remove_tree(const char *dir);
/** test_die_with_parent() - in a forked child, before exec: SIGKILL when @parent dies;
 * _exit(126) if it died already. */
void test_die_with_parent(pid_t parent);
/** test_client_connect_admitted() - connect @c to @d's socket, retrying (within
 * TEST_TIMEOUT_MS) while refused: the daemon drops test_daemon_start()'s probe connection
 * asynchronously, so under a tight connection limit a first client may race it. */
void test_client_connect_admitted(TestClient *c, const TestDaemon *d);
