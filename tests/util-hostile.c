/* util-hostile.c - the hostile suite's helpers: replies scanned for addresses, the bystander,
 * a daemon under a low RLIMIT_NOFILE, the daemon's limits and CPU time, nested text
 *
 * scanned() is the suite's reply check (rpc_check_replies(), set by test-hostile.c's main):
 * no reply or notification may show anything that looks like an address. The bystander is
 * the client every hostile test ends by asking: still served, within bounds. See
 * test-hostile.c for the rlimit wrapper this binary is to itself.
 */

#include <check.h>
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "util-fd.h"
#include "util-hostile.h"
#include "util-json.h"
#include "util-rpc.h"
#include "util-time.h"

char arg_self[PATH_MAX];

bool under_valgrind(void) {
        return streq(getenv("EVD_UNDER_VALGRIND"), "1");
}

/* Under ASan or valgrind: the same sizes, fewer repetitions. */
bool slow_build(void) {
        return UNDER_ASAN || under_valgrind();
}

/* No reply or notification may show anything that looks like an address. */
json_t *scanned(json_t *v) {
        char *s;

        if (!v)
                return NULL;
        s = dump(v);
        for (const char *p = s; *p; p++) {
                size_t n = 0;

                if (p[0] != '0' || (p[1] != 'x' && p[1] != 'X'))
                        continue;
                while (isxdigit((unsigned char)p[2 + n]))
                        n++;
                ck_assert_msg(n < 6, "pointer-like text in %s", s);
        }
        free(s);
        return v;
}

int error_code(json_t *reply) {
        return (int)json_integer_value(json_object_get(json_object_get(reply, "error"), "code"));
}

json_t *call(TestClient *c, const char *method, json_t *params, const int *fds,
                    size_t n_fds) {
        return scanned(test_client_call(c, method, params, fds, n_fds));
}

json_t *result(TestClient *c, const char *method, json_t *params, const int *fds,
                      size_t n_fds) {
        return scanned(test_client_result(c, method, params, fds, n_fds));
}

/* The next packet holding replies (notifications go to the backlog); asserts one came. */
json_t *next_reply(TestClient *c, const char *what) {
        json_t *r = scanned(test_client_reply(c, TIMEOUT));

        ck_assert_msg(r, "no reply to %.200s", what);
        return r;
}

void expect_fd_count(TestDaemon *d, int want, int timeout_ms) {
        int n = test_daemon_wait_fd_count(d, want, timeout_ms);

        ck_assert_msg(n == want, "the daemon has %d fds, expected %d (its baseline)", n, want);
}

/* Drop what the backlog collected (notifications and stray replies). */
void forget_backlog(TestClient *c) {
        json_array_clear(c->backlog);
}
void stop_daemon(TestDaemon *d) {
        ck_assert_int_eq(test_daemon_stop(d), 0);
}

/* Start the daemon under RLIMIT_NOFILE @nofile (soft and hard): this binary is the wrapper. */
void start_with_nofile(TestDaemon *d, const char *const *args, unsigned nofile) {
        char *real = strdup(getenv("EVD_TEST_DAEMON"));
        char n[16];

        ck_assert_ptr_nonnull(real);
        ck_assert_msg(arg_self[0], "cannot find this binary to use it as the rlimit wrapper");
        snprintf(n, sizeof(n), "%u", nofile);
        ck_assert_int_eq(setenv("EVD_HOSTILE_EXEC", real, 1), 0);
        ck_assert_int_eq(setenv("EVD_HOSTILE_NOFILE", n, 1), 0);
        ck_assert_int_eq(setenv("EVD_TEST_DAEMON", arg_self, 1), 0);
        test_daemon_start(d, args);
        ck_assert_int_eq(setenv("EVD_TEST_DAEMON", real, 1), 0);
        ck_assert_int_eq(unsetenv("EVD_HOSTILE_EXEC"), 0);
        ck_assert_int_eq(unsetenv("EVD_HOSTILE_NOFILE"), 0);
        free(real);
}

/* The daemon's soft RLIMIT_NOFILE, from /proc/PID/limits. */
long daemon_nofile(const TestDaemon *d) {
        char path[64], line[256];
        long soft = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/limits", (int)d->pid);
        f = fopen(path, "re");
        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "Max open files %ld", &soft) == 1)
                        break;
        fclose(f);
        ck_assert_int_gt(soft, 0);
        return soft;
}

/* The daemon's CPU time so far (user + system), in seconds. */
double daemon_cpu_seconds(const TestDaemon *d) {
        char path[64], buf[1024], *p;
        unsigned long long utime = 0, stime = 0;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)d->pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        ck_assert_int_gt(n, 0);
        buf[n] = 0;
        /* After the command name in parentheses: state, then fields 4.., utime is 14. */
        p = strrchr(buf, ')');
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                                &utime, &stime),
                         2);
        return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}


void bystander_init(Bystander *b, const TestDaemon *d) {
        json_t *r;

        ck_assert_int_eq(test_client_connect(&b->c, d->socket), 0);
        make_pipe(b->pipe);
        b->watch = watch_fd(&b->c, b->pipe[0], "in", "edge", json_string("bystander"));
        /* The engine opens a timerfd for wall-clock timers at the first `at` and keeps it:
         * make it part of every baseline. */
        r = result(&b->c, "timer", json_pack("{s:f}", "at", 2e9), NULL, 0);
        call_ok(&b->c, "cancel", json_pack("{s:I}", "timer", int_member(r, "timer")), NULL, 0);
        json_decref(r);
}

/* Ping, then one `ready`: returns the ready's latency in ms (asserts it came). */
long long bystander_check(Bystander *b) {
        long long t0;
        json_t *m;

        ping(&b->c);
        t0 = ms_now();
        ck_assert_int_eq(write(b->pipe[1], "x", 1), 1);
        m = wait_for(&b->c, "ready", "watch", b->watch, TIMEOUT);
        ck_assert_msg(m, "the bystander's watch delivered no ready within %d ms", TIMEOUT);
        ck_assert_msg(
                json_text_is(json_object_get(json_object_get(m, "params"), "tag"), "\"bystander\""),
                "the bystander got someone else's ready");
        json_decref(m);
        drain_fd(b->pipe[0]);
        return ms_now() - t0;
}

void bystander_close(Bystander *b) {
        test_client_close(&b->c);
        close_pair(b->pipe);
}

/* Start a daemon with a bystander; returns the fd baseline with @extra more clients. */
int start_with_bystander(TestDaemon *d, const char *const *args, Bystander *b) {
        test_daemon_start(d, args);
        bystander_init(b, d);
        return fd_baseline(d, &b->c, 1);
}

/* The end of every test: the bystander works, fds are back to @base, SIGTERM exits 0. */
void finish(TestDaemon *d, Bystander *b, int base) {
        expect_fd_count(d, base, TIMEOUT);
        (void)bystander_check(b);
        bystander_close(b);
        stop_daemon(d);
}

/* Text made of @prefix, @open repeated @depth times, @core, @close repeated @depth times and
 * @suffix (a new string; its length in *@ret_len). */
char *nest(const char *prefix, const char *open, const char *core, const char *close,
                  size_t depth, const char *suffix, size_t *ret_len) {
        const char *parts[] = { prefix, open, core, close, suffix };
        size_t lens[ELEMENTSOF(parts)], total = 1, len = 0;
        char *s;

        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                lens[i] = strlen(parts[i]);
                total += lens[i] * (i == 1 || i == 3 ? depth : 1);
        }
        s = malloc(total);
        if (!s)
                ck_abort_msg("out of memory");
        for (size_t i = 0; i < ELEMENTSOF(parts); i++)
                for (size_t k = 0; k < (i == 1 || i == 3 ? depth : 1); k++, len += lens[i])
                        memcpy(s + len, parts[i], lens[i]);
        s[len] = 0;
        *ret_len = len;
        return s;
}
/* Whether the daemon admits the fresh connection @c: true (admitted, still open), or false
 * with the refusal's error code in *@ret_code (then EOF, and @c is closed). */
bool admitted(TestClient *c, int *ret_code) {
        static const char text[] = "{\"jsonrpc\":\"2.0\",\"id\":\"in\",\"method\":\"ping\"}";
        json_t *r;
        bool ok;

        /* A refused connection may be closed before this arrives: that is fine. If it arrives
         * first, the daemon closes with it unread and the kernel reports ECONNRESET before
         * the refusal queued ahead of it: read once more. */
        (void)test_client_sendmsg(c, text, sizeof(text) - 1, NULL, 0);
        r = test_client_reply(c, TIMEOUT);
        if (!r)
                r = test_client_reply(c, TIMEOUT);
        (void)scanned(r);
        ck_assert_msg(r, "a new connection got neither a reply nor a refusal within %d ms",
                      TIMEOUT);
        ok = json_object_get(r, "result") != NULL;
        if (!ok) {
                check_error(r, error_code(r), NULL, "null");
                *ret_code = error_code(r);
                ck_assert_msg(test_client_wait_eof(c, TIMEOUT), "a refused connection stays open");
                test_client_close(c);
        }
        json_decref(r);
        return ok;
}

bool try_connect(TestClient *c, const TestDaemon *d, int *ret_code) {
        ck_assert_int_eq(test_client_connect(c, d->socket), 0);
        return admitted(c, ret_code);
}

/* Send @n_fds fds (copies of @fds[0..n)) as @n_fds watch requests; return how many got a
 * watch; every error must be one of the documented out-of-resources codes. */
unsigned watch_until_refused(TestClient *c, const int *fds, unsigned n_fds, int *ret_code) {
        char buf[8192];
        size_t len = 0;
        unsigned ok = 0;
        json_t *r, *item;
        size_t i;

        buf[len++] = '[';
        for (unsigned j = 0; j < n_fds; j++)
                len += (size_t)sprintf(buf + len,
                                       "%s{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"watch\","
                                       "\"params\":{\"fd\":%u,\"events\":[\"in\"],\"mode\":"
                                       "\"edge\"}}",
                                       j ? "," : "", j, j);
        buf[len++] = ']';
        test_client_send_raw(c, buf, len, fds, n_fds);
        r = next_reply(c, "watches at the fd limit");
        ck_assert(json_is_array(r));
        json_array_foreach(r, i, item) {
                int code;

                if (json_object_get(item, "result")) {
                        ok++;
                        continue;
                }
                code = error_code(item);
                ck_assert_msg(code == -32004 || code == -32006 || code == -32009,
                              "out of fds: error %d is not a documented one", code);
                *ret_code = code;
        }
        json_decref(r);
        return ok;
}
