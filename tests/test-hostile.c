/* test-hostile.c - hostile clients, faults and load: evd serves on, leaks nothing, lets no one in
 *
 * What test-daemon.c proves for well-formed use and the common bad inputs, this file proves
 * for clients that mean harm, for faults (clients killed, the daemon out of fds) and for load
 * sized to this machine's limits. Every test ends the same way: the daemon is still up, a
 * bystander client (another connection with a watch on a pipe) still gets its ping answered
 * and its `ready` delivered, the daemon's fd count is back at its baseline, and the daemon
 * exits 0 on SIGTERM (under ASan, that includes LeakSanitizer's verdict on the daemon).
 * Every reply and notification read here is scanned for pointer-like text (0x and six or
 * more hex digits): an error message must never show the daemon's memory.
 *
 * Sizes come from the limits read at run time (RLIMIT_NOFILE of this process and, from
 * /proc/PID/limits, of the daemon): nothing assumes a bigger machine. RLIMIT_NOFILE is per
 * process, so the test and the daemon each have their own budget; a watched eventfd costs
 * the test 1 fd and the daemon 1, a connection 1 on each side. EVD_UNDER_VALGRIND=1 (set by
 * the valgrind test setup, which runs this binary, not the daemon, under valgrind) scales the
 * load tests down. RSS bounds are not checked under AddressSanitizer: its quarantine keeps
 * freed memory resident by design; LeakSanitizer at the daemon's exit checks leaks instead.
 *
 * To run the daemon under a low RLIMIT_NOFILE, this binary is its own wrapper: started with
 * $EVD_HOSTILE_EXEC set, main() sets the limit from $EVD_HOSTILE_NOFILE and executes the real
 * daemon (fork, setrlimit, exec: test_daemon_start() does the fork).
 *
 * Forked children never call check's asserts (in CK_FORK=no mode a failing assert would
 * longjmp the child into the runner): they report through pipes and exit codes, the parent
 * judges. Every json_t is released and every fd closed, so valgrind sees no leak here.
 */

#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <liburing.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "jsonrpc.h"
#include "macro.h"
#include "util-daemon.h"
#include "wire.h"

#define NOBODY 65534
#define TIMEOUT TEST_TIMEOUT_MS
/* Long enough for a notification that is due to arrive: used to observe that none does. */
#define QUIET_MS 100
/* Bounds documented in the tests that use them (see the report of each test). */
#define RSS_SLACK_KIB 2048L       /* client death: RSS after a round vs after the warm-up */
#define SLOW_READER_RSS_KIB 2048L /* slow reader: RSS growth while 1,000 watches are busy */
#define LATENCY_BOUND_MS 1000LL   /* a bystander's ready while another client is hostile */
#define SPIN_BOUND 0.20           /* daemon CPU time / wall time while it is out of fds */

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static char arg_self[PATH_MAX]; /* this binary, for the rlimit wrapper */

/* ---- small helpers ---------------------------------------------------------------- */

static bool streq(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

static bool under_valgrind(void) {
        return streq(getenv("EVD_UNDER_VALGRIND"), "1");
}

/* Under ASan or valgrind: the same sizes, fewer repetitions. */
static bool slow_build(void) {
        return UNDER_ASAN || under_valgrind();
}

static long long ms_now(void) {
        struct timespec ts;

        ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dump(const json_t *v) {
        char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("(null)");

        ck_assert_ptr_nonnull(s);
        return s;
}

/* No reply or notification may show anything that looks like an address. */
static json_t *scanned(json_t *v) {
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

static json_t *member(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);

        if (!v) {
                char *s = dump(o);
                ck_abort_msg("no member \"%s\" in %s", key, s);
        }
        return v;
}

static json_int_t int_member(json_t *o, const char *key) {
        json_t *v = member(o, key);

        ck_assert_msg(json_is_integer(v), "member \"%s\" is not an integer", key);
        return json_integer_value(v);
}

static bool json_text_is(const json_t *v, const char *text) {
        char *s = dump(v);
        bool r = strcmp(s, text) == 0;

        free(s);
        return r;
}

/* @reply is an error with @code and (if set) data.param @param and id @id_text. */
static void check_error(json_t *reply, int code, const char *param, const char *id_text) {
        json_t *err = json_object_get(reply, "error");
        char *s = dump(reply);

        ck_assert_msg(json_is_object(err) && !json_object_get(reply, "result"),
                      "expected error %d, got %s", code, s);
        ck_assert_msg(json_integer_value(json_object_get(err, "code")) == code,
                      "expected error %d, got %s", code, s);
        ck_assert_msg(json_is_string(json_object_get(err, "message")), "no message in %s", s);
        if (param)
                ck_assert_msg(streq(json_string_value(
                                            json_object_get(json_object_get(err, "data"), "param")),
                                    param),
                              "expected data.param \"%s\" in %s", param, s);
        if (id_text)
                ck_assert_msg(json_text_is(json_object_get(reply, "id"), id_text),
                              "expected id %s in %s", id_text, s);
        free(s);
}

static int error_code(json_t *reply) {
        return (int)json_integer_value(json_object_get(json_object_get(reply, "error"), "code"));
}

static json_t *call(TestClient *c, const char *method, json_t *params, const int *fds,
                    size_t n_fds) {
        return scanned(test_client_call(c, method, params, fds, n_fds));
}

static json_t *result(TestClient *c, const char *method, json_t *params, const int *fds,
                      size_t n_fds) {
        return scanned(test_client_result(c, method, params, fds, n_fds));
}

static void call_ok(TestClient *c, const char *method, json_t *params, const int *fds,
                    size_t n_fds) {
        json_decref(result(c, method, params, fds, n_fds));
}

static void ping(TestClient *c) {
        call_ok(c, "ping", NULL, NULL, 0);
}

/* The next packet holding replies (notifications go to the backlog); asserts one came. */
static json_t *next_reply(TestClient *c, const char *what) {
        json_t *r = scanned(test_client_reply(c, TIMEOUT));

        ck_assert_msg(r, "no reply to %.200s", what);
        return r;
}

static json_t *raw_call(TestClient *c, const char *text, size_t len) {
        test_client_send_raw(c, text, len, NULL, 0);
        return next_reply(c, text);
}

/* The first reply after everything sent so far answers a fresh ping: nothing before got one. */
static void expect_no_reply(TestClient *c) {
        static const char text[] = "{\"jsonrpc\":\"2.0\",\"id\":\"sync\",\"method\":\"ping\"}";
        json_t *r = raw_call(c, text, sizeof(text) - 1);
        char *s = dump(r);

        ck_assert_msg(json_is_object(r) && json_text_is(json_object_get(r, "id"), "\"sync\"") &&
                              json_object_get(r, "result"),
                      "expected no reply before the ping's, got %s", s);
        free(s);
        json_decref(r);
}

static json_int_t status_int(TestClient *c, const char *key) {
        json_t *r = result(c, "status", NULL, NULL, 0);
        json_int_t v = int_member(r, key);

        json_decref(r);
        return v;
}

static json_int_t stats_int(TestClient *c, const char *section, const char *key) {
        json_t *r = result(c, "stats", NULL, NULL, 0);
        json_int_t v = int_member(member(r, section), key);

        json_decref(r);
        return v;
}

static void wait_status(TestClient *c, const char *key, json_int_t want, int timeout_ms) {
        long long deadline = ms_now() + timeout_ms;
        json_int_t v;

        while ((v = status_int(c, key)) != want && ms_now() < deadline)
                (void)poll(NULL, 0, 5);
        ck_assert_msg(v == want, "status %s stayed %lld, expected %lld", key, (long long)v,
                      (long long)want);
}

/* The daemon's fd count once exactly @clients connections are open (the start-up probe's
 * connection goes away asynchronously). */
static int fd_baseline(TestDaemon *d, TestClient *c, json_int_t clients) {
        wait_status(c, "clients", clients, TIMEOUT);
        return test_daemon_fd_count(d);
}

static void expect_fd_count(TestDaemon *d, int want, int timeout_ms) {
        int n = test_daemon_wait_fd_count(d, want, timeout_ms);

        ck_assert_msg(n == want, "the daemon has %d fds, expected %d (its baseline)", n, want);
}

static void make_pipe(int p[2]) {
        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
}

static void close_pair(int p[2]) {
        p[0] = safe_close(p[0]);
        p[1] = safe_close(p[1]);
}

static void drain_fd(int fd) {
        char buf[4096];

        while (read(fd, buf, sizeof(buf)) > 0)
                ;
}

static int make_eventfd(void) {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

        ck_assert_int_ge(fd, 0);
        return fd;
}

static void poke_eventfd(int fd) {
        uint64_t one = 1;

        ck_assert_int_eq(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one));
}

/* Watch @fd (fd 0 of the packet) for `in` in @mode; @tag stolen, may be NULL. */
static json_int_t watch_fd(TestClient *c, int fd, const char *mode, json_t *tag) {
        json_t *params = json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", mode);
        json_t *r;
        json_int_t id;

        if (tag)
                json_object_set_new(params, "tag", tag);
        r = result(c, "watch", params, &fd, 1);
        id = int_member(r, "watch");
        json_decref(r);
        return id;
}

/* The next notification @method (with params.@key == @id if @key), backlog first; others
 * stay in the backlog. A new reference, scanned for leaks, or NULL after @timeout_ms. */
static json_t *wait_note(TestClient *c, const char *method, const char *key, json_int_t id,
                         int timeout_ms) {
        json_t *m = test_client_notification_for(c, method, key, id, timeout_ms);

        return m ? scanned(m) : NULL;
}

/* Drop what the backlog collected (notifications and stray replies). */
static void forget_backlog(TestClient *c) {
        json_array_clear(c->backlog);
}

static void start(TestDaemon *d, const char *const *args) {
        test_daemon_start(d, args);
}

static void stop(TestDaemon *d) {
        ck_assert_int_eq(test_daemon_stop(d), 0);
}

/* Start the daemon under RLIMIT_NOFILE @nofile (soft and hard): this binary is the wrapper. */
static void start_with_nofile(TestDaemon *d, const char *const *args, unsigned nofile) {
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
static long daemon_nofile(const TestDaemon *d) {
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
static double daemon_cpu_seconds(const TestDaemon *d) {
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

/* A connection with a watch on a pipe of its own: "other clients are unaffected" means its
 * ping is answered and its watch delivers a `ready`, within bounds. */
typedef struct Bystander {
        TestClient c;
        int pipe[2];
        json_int_t watch;
} Bystander;

static void bystander_init(Bystander *b, const TestDaemon *d) {
        json_t *r;

        ck_assert_int_eq(test_client_connect(&b->c, d->socket), 0);
        make_pipe(b->pipe);
        b->watch = watch_fd(&b->c, b->pipe[0], "edge", json_string("bystander"));
        /* The engine opens a timerfd for wall-clock timers at the first `at` and keeps it:
         * make it part of every baseline. */
        r = result(&b->c, "timer", json_pack("{s:f}", "at", 2e9), NULL, 0);
        call_ok(&b->c, "cancel", json_pack("{s:I}", "timer", int_member(r, "timer")), NULL, 0);
        json_decref(r);
}

/* Ping, then one `ready`: returns the ready's latency in ms (asserts it came). */
static long long bystander_check(Bystander *b) {
        long long t0;
        json_t *m;

        ping(&b->c);
        t0 = ms_now();
        ck_assert_int_eq(write(b->pipe[1], "x", 1), 1);
        m = wait_note(&b->c, "ready", "watch", b->watch, TIMEOUT);
        ck_assert_msg(m, "the bystander's watch delivered no ready within %d ms", TIMEOUT);
        ck_assert_msg(
                json_text_is(json_object_get(json_object_get(m, "params"), "tag"), "\"bystander\""),
                "the bystander got someone else's ready");
        json_decref(m);
        drain_fd(b->pipe[0]);
        return ms_now() - t0;
}

static void bystander_close(Bystander *b) {
        test_client_close(&b->c);
        close_pair(b->pipe);
}

/* Start a daemon with a bystander; returns the fd baseline with @extra more clients. */
static int start_with_bystander(TestDaemon *d, const char *const *args, Bystander *b) {
        start(d, args);
        bystander_init(b, d);
        return fd_baseline(d, &b->c, 1);
}

/* The end of every test: the bystander works, fds are back to @base, SIGTERM exits 0. */
static void finish(TestDaemon *d, Bystander *b, int base) {
        expect_fd_count(d, base, TIMEOUT);
        (void)bystander_check(b);
        bystander_close(b);
        stop(d);
}

/* Text made of @prefix, @open repeated @depth times, @core, @close repeated @depth times and
 * @suffix (a new string; its length in *@ret_len). */
static char *nest(const char *prefix, const char *open, const char *core, const char *close,
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

/* ---- bad input ---------------------------------------------------------------------- */

typedef struct NumberCase {
        const char *params; /* a timer's */
        int code;           /* 0: accepted */
        const char *param;
        bool fires; /* accepted and due at once */
} NumberCase;

static const NumberCase timer_numbers[] = {
        { "{\"after\":-0}", 0, NULL, true },     /* an integer: 0 */
        { "{\"after\":-0.0}", 0, NULL, true },   /* IEEE -0 is not below 0 */
        { "{\"after\":5e-324}", 0, NULL, true }, /* the smallest denormal */
        { "{\"after\":1e-400}", 0, NULL, true }, /* underflow is 0, not a parse error */
        { "{\"after\":1e-10}", 0, NULL, true },  /* rounds to 0 ns */
        { "{\"at\":0}", 0, NULL, true },
        { "{\"at\":-0.0}", 0, NULL, true },
        { "{\"at\":2147483648}", 0, NULL, false }, /* 2038 */
        { "{\"at\":8589934592}", 0, NULL, false }, /* 2242: the largest allowed */
        { "{\"after\":1e-9,\"interval\":2147483648}", 0, NULL, true },
        { "{\"after\":1.7976931348623157e308}", -32602, "after", false },
        { "{\"after\":-1.7976931348623157e308}", -32602, "after", false },
        { "{\"after\":9223372036854775807}", -32602, "after", false },
        { "{\"after\":-9223372036854775808}", -32602, "after", false },
        { "{\"after\":2147483648.000001}", -32602, "after", false },
        { "{\"after\":-5e-324}", -32602, "after", false },
        { "{\"after\":true}", -32602, "after", false },
        { "{\"after\":[1]}", -32602, "after", false },
        { "{\"after\":{\"s\":1}}", -32602, "after", false },
        { "{\"after\":\"\"}", -32602, "after", false },
        { "{\"after\":\"NaN\"}", -32602, "after", false },
        { "{\"after\":\"Infinity\"}", -32602, "after", false },
        { "{\"at\":1e308}", -32602, "at", false },
        { "{\"at\":-1e-300}", -32602, "at", false },
        { "{\"at\":8589934592.5}", -32602, "at", false },
        { "{\"after\":1,\"interval\":1e308}", -32602, "interval", false },
        { "{\"after\":1,\"interval\":5e-324}", -32602, "interval", false },
        { "{\"after\":1,\"interval\":-0.0}", -32602, "interval", false },
        { "{\"after\":1,\"interval\":9223372036854775807}", -32602, "interval", false },
        { "{\"after\":1,\"interval\":false}", -32602, "interval", false },
};

/* Not JSON (RFC 8259 has no NaN, no infinities, no hex, no leading + or . or 0): -32700. */
static const char *const number_parse_errors[] = {
        "NaN",  "-NaN", "nan", "Infinity", "-Infinity", "inf", "1e400", "-1e400", "1e999999999999",
        "0x10", "+1",   ".5",  "01",       "-",         "1.",  "1e",    "--1",    "1e+",
};

/* Ids that never named anything of this client, for every method that takes one. */
static const char *const never_ids[] = {
        "1",
        "2",
        "4096",
        "9007199254740991",
        "9007199254740992",
        "9007199254740993",
        "9223372036854775807",
};

START_TEST(test_extreme_numbers) {
        TestDaemon d;
        Bystander b;
        TestClient c;
        json_int_t fired[ELEMENTSOF(timer_numbers)], live[ELEMENTSOF(timer_numbers)];
        size_t n_fired = 0, n_live = 0;
        json_t *r, *m;
        char text[512];
        int base, p[2];

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);

        /* Delays: negative, zero, denormal, enormous, non-numeric. */
        for (size_t i = 0; i < ELEMENTSOF(timer_numbers); i++) {
                const NumberCase *nc = &timer_numbers[i];
                json_int_t t;

                snprintf(text, sizeof(text),
                         "{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"timer\",\"params\":%s}", i,
                         nc->params);
                r = raw_call(&c, text, strlen(text));
                if (nc->code) {
                        check_error(r, nc->code, nc->param, NULL);
                        json_decref(r);
                        continue;
                }
                ck_assert_msg(json_object_get(r, "result"), "%s refused", nc->params);
                t = int_member(member(r, "result"), "timer");
                json_decref(r);
                if (nc->fires)
                        fired[n_fired++] = t;
                if (!nc->fires || strstr(nc->params, "interval"))
                        live[n_live++] = t;
        }
        for (size_t i = 0; i < n_fired; i++) {
                m = wait_note(&c, "timer", "timer", fired[i], TIMEOUT);
                ck_assert_msg(m, "timer %lld, due at once, did not fire", (long long)fired[i]);
                json_decref(m);
        }
        ck_assert_int_eq(status_int(&c, "timers"), (json_int_t)n_live);
        for (size_t i = 0; i < n_live; i++)
                call_ok(&c, "cancel", json_pack("{s:I}", "timer", live[i]), NULL, 0);

        for (size_t i = 0; i < ELEMENTSOF(number_parse_errors); i++) {
                snprintf(text, sizeof(text),
                         "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{\"after\":"
                         "%s}}",
                         number_parse_errors[i]);
                r = raw_call(&c, text, strlen(text));
                check_error(r, -32700, NULL, "null");
                json_decref(r);
        }

        /* Request ids: -0 is the integer 0; a real -0.0 is not an id. */
        r = raw_call(&c, "{\"jsonrpc\":\"2.0\",\"id\":-0,\"method\":\"ping\"}",
                     strlen("{\"jsonrpc\":\"2.0\",\"id\":-0,\"method\":\"ping\"}"));
        ck_assert_msg(json_text_is(json_object_get(r, "id"), "0") && json_object_get(r, "result"),
                      "id -0 is not answered as 0");
        json_decref(r);
        r = raw_call(&c, "{\"jsonrpc\":\"2.0\",\"id\":-0.0,\"method\":\"ping\"}",
                     strlen("{\"jsonrpc\":\"2.0\",\"id\":-0.0,\"method\":\"ping\"}"));
        check_error(r, -32600, NULL, "null");
        json_decref(r);

        /* Watch and timer ids that never existed, as large as JSON integers go. */
        for (size_t i = 0; i < ELEMENTSOF(never_ids); i++) {
                static const char *const methods[] = { "unwatch", "arm", "modify", "cancel" };

                for (size_t j = 0; j < ELEMENTSOF(methods); j++) {
                        bool timer = streq(methods[j], "cancel");

                        snprintf(text, sizeof(text),
                                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":{"
                                 "\"%s\":%s%s}}",
                                 methods[j], timer ? "timer" : "watch", never_ids[i],
                                 streq(methods[j], "modify") ? ",\"mode\":\"edge\"" : "");
                        r = raw_call(&c, text, strlen(text));
                        check_error(r, timer ? -32002 : -32001, timer ? "timer" : "watch", "1");
                        json_decref(r);
                }
        }
        r = raw_call(&c,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"unwatch\",\"params\":{\"watch\":-"
                     "9223372036854775808}}",
                     strlen("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"unwatch\",\"params\":{"
                            "\"watch\":-9223372036854775808}}"));
        check_error(r, -32602, "watch", "1");
        json_decref(r);

        /* fd indices: -0 is index 0; the extremes name no fd; a real is not an index. */
        make_pipe(p);
        {
                static const struct {
                        const char *index;
                        int code;
                } idx[] = {
                        { "9223372036854775807", -32003 },
                        { "-9223372036854775808", -32003 },
                        { "1e0", -32602 },
                        { "-0", 0 },
                };

                for (size_t i = 0; i < ELEMENTSOF(idx); i++) {
                        snprintf(text, sizeof(text),
                                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\",\"params\":{"
                                 "\"fd\":%s,\"events\":[\"in\"],\"mode\":\"edge\"}}",
                                 idx[i].index);
                        test_client_send_raw(&c, text, strlen(text), &p[0], 1);
                        r = next_reply(&c, text);
                        if (idx[i].code)
                                check_error(r, idx[i].code, "fd", "1");
                        else
                                call_ok(&c, "unwatch",
                                        json_pack("{s:I}", "watch",
                                                  int_member(member(r, "result"), "watch")),
                                        NULL, 0);
                        json_decref(r);
                }
        }
        close_pair(p);

        /* Listings asked to skip more than could ever exist: an empty page, no overflow. */
        {
                static const char *const lists[] = { "watches", "timers", "clients" };

                for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                        snprintf(text, sizeof(text),
                                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":{"
                                 "\"offset\":9223372036854775807,\"limit\":10000}}",
                                 lists[i]);
                        r = raw_call(&c, text, strlen(text));
                        ck_assert_int_eq(json_array_size(member(member(r, "result"), lists[i])), 0);
                        ck_assert(json_is_null(member(member(r, "result"), "next")));
                        json_decref(r);
                        snprintf(text, sizeof(text),
                                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":{"
                                 "\"limit\":9223372036854775807}}",
                                 lists[i]);
                        r = raw_call(&c, text, strlen(text));
                        check_error(r, -32602, "limit", "1");
                        json_decref(r);
                }
        }
        ck_assert_int_eq(status_int(&c, "timers"), 0);
        ck_assert_int_eq(status_int(&c, "watches"), 1); /* the bystander's */
        test_client_close(&c);
        finish(&d, &b, base);
}
END_TEST

/* Nesting far beyond jansson's 2,048 levels is a parse error, never a stack overflow; up to
 * the limit it is valid JSON and handled as such, deep tags included. */
START_TEST(test_deep_nesting) {
        static const char req[] =
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":";
        static const char batch_item[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
        TestDaemon d;
        Bystander b;
        TestClient c;
        json_t *r, *m;
        char *text, *tag;
        size_t len, tag_len;
        json_int_t t;
        int base;

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        {
                struct {
                        const char *prefix, *open, *core, *close, *suffix;
                } deep[] = {
                        { "", "[", "", "]", "" },          /* 10,000 arrays */
                        { "", "[", "", "", "" },           /* never closed */
                        { "", "{\"a\":", "0", "}", "" },   /* 10,000 objects */
                        { req, "[", "", "]", "}}" },       /* inside params */
                        { "", "[", batch_item, "]", "" },  /* around a request */
                        { "", "{\"a\":[", "0", "]}", "" }, /* alternating */
                };

                for (size_t i = 0; i < ELEMENTSOF(deep); i++) {
                        size_t depth = streq(deep[i].open, "{\"a\":[") ? 5000 : 10000;

                        text = nest(deep[i].prefix, deep[i].open, deep[i].core, deep[i].close,
                                    depth, deep[i].suffix, &len);
                        ck_assert_int_le(len, EVD_MAX_PACKET);
                        r = raw_call(&c, text, len);
                        ck_assert_msg(json_is_object(r), "case %zu: not one error object", i);
                        check_error(r, -32700, NULL, "null");
                        json_decref(r);
                        free(text);
                }
        }
        /* 2,000 levels in an unknown parameter: valid JSON, the parameter is the error. */
        text = nest(req, "[", "", "]", 2000, "}}", &len);
        r = raw_call(&c, text, len);
        check_error(r, -32602, "x", "1");
        json_decref(r);
        free(text);
        /* Exactly 2,048 levels is valid: a batch whose one element is not a request. */
        text = nest("", "[", "", "]", 2048, "", &len);
        r = raw_call(&c, text, len);
        ck_assert_msg(json_is_array(r) && json_array_size(r) == 1, "2,048 levels: bad reply");
        check_error(json_array_get(r, 0), -32600, NULL, "null");
        json_decref(r);
        free(text);

        /* A tag 500 levels deep (1,000 bytes) is stored and echoed intact; 1,000 is too big. */
        tag = nest("", "[", "", "]", 500, "", &tag_len);
        text = malloc(tag_len + 128);
        ck_assert_ptr_nonnull(text);
        len = (size_t)sprintf(text,
                              "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{"
                              "\"after\":0,\"tag\":%s}}",
                              tag);
        r = raw_call(&c, text, len);
        t = int_member(member(r, "result"), "timer");
        json_decref(r);
        m = wait_note(&c, "timer", "timer", t, TIMEOUT);
        ck_assert_msg(m, "a timer with a deep tag did not fire");
        ck_assert_msg(json_text_is(json_object_get(json_object_get(m, "params"), "tag"), tag),
                      "the deep tag came back changed");
        json_decref(m);
        free(text);
        free(tag);
        tag = nest("", "[", "", "]", 1000, "", &tag_len);
        text = malloc(tag_len + 128);
        ck_assert_ptr_nonnull(text);
        len = (size_t)sprintf(text,
                              "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{"
                              "\"after\":0,\"tag\":%s}}",
                              tag);
        r = raw_call(&c, text, len);
        check_error(r, -32602, "tag", "1");
        json_decref(r);
        free(text);
        free(tag);
        ck_assert_int_eq(status_int(&c, "timers"), 0);
        test_client_close(&c);
        finish(&d, &b, base);
}
END_TEST

/* NUL bytes where test-daemon.c does not put them: before, between and instead of tokens,
 * and escaped inside a tag or a member name. Each is one -32700. */
START_TEST(test_nul_bytes) {
        static const struct {
                const char *text;
                size_t len;
        } cases[] = {
#define NUL_CASE(s) { s, sizeof(s) - 1 }
                NUL_CASE("\0{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}"),
                NUL_CASE("{\"jsonrpc\":\"2.0\",\0\"id\":1,\"method\":\"ping\"}"),
                NUL_CASE("{\"jsonrpc\":\"2.0\",\"id\":1\0,\"method\":\"ping\"}"),
                NUL_CASE("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{"
                         "\"after\":0\0,\"tag\":true\0}}"),
                NUL_CASE("[{\"jsonrpc\":\"2.0\",\"id\":null\0,\"method\":\"ping\"}]"),
                NUL_CASE("{\"json\0rpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}"),
                NUL_CASE("\0"),
                NUL_CASE("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
                NUL_CASE("[\0]"),
                NUL_CASE("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{"
                         "\"after\":1,\"tag\":\"a\\u0000b\"}}"),
                NUL_CASE("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{"
                         "\"after\":1,\"tag\":{\"k\\u0000\":1}}}"),
                NUL_CASE("{\"jsonrpc\":\"2.0\",\"id\":\"\\u0000\",\"method\":\"ping\"}"),
#undef NUL_CASE
        };
        TestDaemon d;
        Bystander b;
        TestClient c;
        int base;

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_t *r = raw_call(&c, cases[i].text, cases[i].len);
                char *s = dump(r);

                ck_assert_msg(json_is_object(r) && error_code(r) == -32700,
                              "NUL case %zu: a packet with a NUL byte outside any string is not "
                              "JSON, yet the daemon answered %s",
                              i, s);
                check_error(r, -32700, NULL, "null");
                free(s);
                json_decref(r);
        }
        ck_assert_int_eq(status_int(&c, "timers"), 0);
        test_client_close(&c);
        finish(&d, &b, base);
}
END_TEST

/* A 10,000-element batch is refused whole with one error (with 32 fds on it: all closed);
 * 1,024 invalid elements are each answered, in order, over as many packets as it takes. */
START_TEST(test_batch_sizes) {
        static const char *const elements[] = { "1", "{}", "[]", "null",
                                                "{\"jsonrpc\":\"2.0\",\"method\":\"timer\","
                                                "\"params\":{\"after\":9}}" };
        TestDaemon d;
        Bystander b;
        TestClient c;
        char *buf = malloc(EVD_MAX_PACKET);
        int fds[EVD_MAX_FDS], base;
        json_t *r;

        ck_assert_ptr_nonnull(buf);
        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = make_eventfd();
        for (size_t e = 0; e < ELEMENTSOF(elements); e++) {
                size_t len = 0, el = strlen(elements[e]);
                /* 10,000, or as many as fit in one packet (more than the limit of 1,024). */
                size_t n = MIN((size_t)10000, (EVD_MAX_PACKET - 2) / (el + 1));

                ck_assert_int_gt(n, 1024);
                buf[len++] = '[';
                for (size_t i = 0; i < n; i++) {
                        if (i)
                                buf[len++] = ',';
                        memcpy(buf + len, elements[e], el);
                        len += el;
                }
                buf[len++] = ']';
                test_client_send_raw(&c, buf, len, fds, ELEMENTSOF(fds));
                r = next_reply(&c, "a batch of more than 1,024");
                ck_assert_msg(json_is_object(r), "a batch of %zu is not answered with one object",
                              n);
                check_error(r, -32600, NULL, "null");
                json_decref(r);
        }
        ck_assert_int_eq(status_int(&c, "timers"), 0);
        expect_fd_count(&d, base + 1, TIMEOUT);

        /* 1,024 invalid requests: 1,024 errors, none with an id, in one or more packets. */
        for (size_t e = 0; e < 3; e++) {
                size_t len = 0, got = 0, packets = 0;

                buf[len++] = '[';
                for (size_t i = 0; i < 1024; i++) {
                        if (i)
                                buf[len++] = ',';
                        len += (size_t)sprintf(buf + len, "%s", elements[e]);
                }
                buf[len++] = ']';
                test_client_send_raw(&c, buf, len, NULL, 0);
                while (got < 1024) {
                        json_t *item;
                        size_t i;

                        r = next_reply(&c, "1,024 invalid requests");
                        ck_assert_msg(json_is_array(r), "a batch reply part is not an array");
                        json_array_foreach(r, i, item)
                                check_error(item, -32600, NULL, "null");
                        got += json_array_size(r);
                        packets++;
                        json_decref(r);
                }
                ck_assert_int_eq(got, 1024);
                ck_assert_int_gt(packets, 1); /* 1,024 errors do not fit one packet */
        }
        expect_no_reply(&c);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        free(buf);
        test_client_close(&c);
        finish(&d, &b, base);
}
END_TEST

/* 250 fds in one packet (MSG_CTRUNC: the daemon's buffer takes 32): -32006, nothing runs,
 * every fd that arrived is closed, again and again; 253 is the kernel's own maximum and 254
 * never leaves the client (EINVAL from sendmsg). */
START_TEST(test_fd_flood) {
        static const char watch[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\",\"params\":"
                                    "{\"fd\":0,\"events\":[\"in\"],\"mode\":\"edge\"}}";
        static const char note[] = "{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}";
        static const char pings[] = "[{\"jsonrpc\":\"2.0\",\"id\":\"f\",\"method\":\"ping\"},"
                                    "{\"jsonrpc\":\"2.0\",\"id\":\"g\",\"method\":\"ping\"}]";
        const unsigned rounds = under_valgrind() ? 5 : 40;
        TestDaemon d;
        Bystander b;
        TestClient c;
        int fds[254], base;
        json_t *r;

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = make_eventfd();
        ck_assert_int_eq(test_client_sendmsg(&c, watch, sizeof(watch) - 1, fds, 250), 0);
        r = next_reply(&c, "a watch with 250 fds");
        check_error(r, -32006, NULL, "1");
        json_decref(r);
        /* Without an id, or without any request: nothing comes back. */
        ck_assert_int_eq(test_client_sendmsg(&c, note, sizeof(note) - 1, fds, 250), 0);
        ck_assert_int_eq(test_client_sendmsg(&c, "", 0, fds, 250), 0);
        expect_no_reply(&c);
        ck_assert_int_eq(test_client_sendmsg(&c, watch, sizeof(watch) - 1, fds, 253), 0);
        r = next_reply(&c, "a watch with 253 fds");
        check_error(r, -32006, NULL, "1");
        json_decref(r);
        ck_assert_int_eq(test_client_sendmsg(&c, watch, sizeof(watch) - 1, fds, 254), -EINVAL);
        /* Pipelined: every packet answered, in order, none executed. */
        for (unsigned i = 0; i < rounds; i++)
                ck_assert_int_eq(test_client_sendmsg(&c, pings, sizeof(pings) - 1, fds, 250), 0);
        for (unsigned i = 0; i < rounds; i++) {
                r = next_reply(&c, "pings with 250 fds");
                ck_assert_msg(json_is_array(r) && json_array_size(r) == 2, "round %u", i);
                check_error(json_array_get(r, 0), -32006, NULL, "\"f\"");
                check_error(json_array_get(r, 1), -32006, NULL, "\"g\"");
                json_decref(r);
        }
        ping(&c);
        ck_assert_int_eq(status_int(&c, "watches"), 1); /* the bystander's */
        expect_fd_count(&d, base + 1, TIMEOUT);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        test_client_close(&c);
        finish(&d, &b, base);
}
END_TEST

/*
 * Unusual watch targets. An epoll fd is an ordinary pollable fd: its watch fires. An epoll
 * set holding the client's own connection does not pin that connection (epoll holds no
 * reference), so the client is still seen to go away. An io_uring fd never reaches the
 * daemon on Linux >= 6.7: the kernel refuses to pass io_uring files with SCM_RIGHTS
 * (sendmsg fails with EINVAL), so that is what is documented and checked; on an older
 * kernel that passes it, the daemon must either watch it (and a completion makes it ready)
 * or refuse it with -32003/-32602.
 */
START_TEST(test_watch_epoll_and_uring) {
        static const char watch[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\",\"params\":"
                                    "{\"fd\":0,\"events\":[\"in\"],\"mode\":\"oneshot\"}}";
        struct epoll_event ev = { .events = EPOLLIN };
        struct io_uring ring;
        TestDaemon d;
        Bystander b;
        TestClient c, self;
        json_t *r, *m;
        json_int_t w;
        int base, ep, ep_self, p[2], rc;

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);

        /* An epoll set with a pipe in it. */
        make_pipe(p);
        ep = epoll_create1(EPOLL_CLOEXEC);
        ck_assert_int_ge(ep, 0);
        ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), 0);
        w = watch_fd(&c, ep, "oneshot", json_string("epoll"));
        m = wait_note(&c, "ready", "watch", w, QUIET_MS);
        ck_assert_msg(!m, "an empty epoll set reported ready");
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        m = wait_note(&c, "ready", "watch", w, TIMEOUT);
        ck_assert_msg(m, "the epoll fd's watch did not fire");
        ck_assert_msg(json_text_is(member(member(m, "params"), "events"), "[\"in\"]"),
                      "epoll ready with other events");
        json_decref(m);
        call_ok(&c, "unwatch", json_pack("{s:I}", "watch", w), NULL, 0);
        close(ep);
        close_pair(p);

        /* An epoll set holding the watcher's own connection to evd. */
        ck_assert_int_eq(test_client_connect(&self, d.socket), 0);
        ep_self = epoll_create1(EPOLL_CLOEXEC);
        ck_assert_int_ge(ep_self, 0);
        ck_assert_int_eq(epoll_ctl(ep_self, EPOLL_CTL_ADD, self.fd, &ev), 0);
        (void)watch_fd(&self, ep_self, "edge", NULL);
        close(ep_self);
        test_client_close(&self);
        wait_status(&c, "clients", 2, TIMEOUT);
        ck_assert_int_eq(status_int(&c, "watches"), 1); /* the bystander's */

        /* An io_uring fd. */
        rc = io_uring_queue_init(4, &ring, 0);
        if (rc < 0) {
                printf("io_uring_setup refused (%s): io_uring fd case skipped\n", strerror(-rc));
        } else {
                rc = test_client_sendmsg(&c, watch, sizeof(watch) - 1, &ring.ring_fd, 1);
                if (rc == -EINVAL) {
                        printf("the kernel refuses io_uring fds in SCM_RIGHTS (EINVAL), as Linux "
                               ">= 6.7 does: the daemon never sees one\n");
                } else {
                        ck_assert_int_eq(rc, 0);
                        r = next_reply(&c, watch);
                        if (json_object_get(r, "result")) {
                                struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

                                w = int_member(member(r, "result"), "watch");
                                io_uring_prep_nop(sqe);
                                ck_assert_int_eq(io_uring_submit(&ring), 1);
                                m = wait_note(&c, "ready", "watch", w, TIMEOUT);
                                ck_assert_msg(m, "a completion did not make the ring fd ready");
                                json_decref(m);
                                call_ok(&c, "unwatch", json_pack("{s:I}", "watch", w), NULL, 0);
                        } else {
                                ck_assert_msg(error_code(r) == -32003 || error_code(r) == -32602,
                                              "an io_uring fd: unexpected error %d", error_code(r));
                        }
                        json_decref(r);
                }
                io_uring_queue_exit(&ring);
        }
        ping(&c);
        test_client_close(&c);
        finish(&d, &b, base);
}
END_TEST

/*
 * The daemon refuses to watch a connection to itself, because it would then hold its own
 * peer open and never see the client go away (PROTOCOL.md, watch). The same cycle is made
 * one step removed: the client's connection travels as SCM_RIGHTS into the receive queue of
 * a socketpair, and the other end of that pair is what the client asks evd to watch. The
 * in-flight connection stays referenced from the queue of a socket the daemon holds, so the
 * kernel's unix garbage collector cannot free it, the daemon never gets EOF, and the watch
 * (and the connection, and the client's quota) outlive the client for ever.
 */
START_TEST(test_fd_cycle_through_queue) {
        int domain_opt = 1, off = 0;
        socklen_t len = sizeof(domain_opt);
        TestDaemon d;
        Bystander b;
        TestClient c;
        int base, sv[2], tv[2], n;
        json_t *reply;
        bool have_passrights;

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);

        /* 1. sv[1]'s queue already holds a reference to the client's end of its connection:
         * watching it would keep that connection alive forever. Refused. */
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(wire_send_blocking(sv[0], "x", 1, &c.fd, 1), 0);
        reply = call(&c, "watch", json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge"), &sv[1], 1);
        check_error(reply, -32602, "fd", NULL);
        json_decref(reply);

        /* 2. Watched while empty, then the client tries to queue its connection into it:
         * the daemon turned fd passing off on it (SO_PASSRIGHTS, where the kernel has it). */
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tv), 0);
        have_passrights = getsockopt(tv[1], SOL_SOCKET, 83 /* SO_PASSRIGHTS */, &domain_opt, &len) == 0;
        (void)watch_fd(&c, tv[1], "edge", NULL);
        if (have_passrights)
                ck_assert_int_eq(wire_send_blocking(tv[0], "x", 1, &c.fd, 1), -EPERM);
        (void)off;

        close_pair(sv);
        close_pair(tv);
        test_client_close(&c);
        /* A client that closed everything is normally gone within milliseconds. */
        n = test_daemon_wait_fd_count(&d, base, 2000);
        ck_assert_msg(n == base,
                      "a client that closed every fd is still connected 2 s later: the daemon "
                      "holds %d fds (baseline %d) and %lld clients, because a watched socket's "
                      "queue holds the client's own connection",
                      n, base, (long long)status_int(&b.c, "clients"));
        finish(&d, &b, base);
}
END_TEST

/* A client that sends a large batch (32 watches, hundreds of timers, or thousands of pings)
 * and closes at once: the daemon executes it, fails to answer, and frees all of it. */
START_TEST(test_disconnect_mid_batch) {
        const unsigned rounds = under_valgrind() ? 6 : slow_build() ? 16 : 40;
        TestDaemon d;
        Bystander b;
        TestClient h;
        char *buf = malloc(EVD_MAX_PACKET);
        int fds[EVD_MAX_FDS], base;

        ck_assert_ptr_nonnull(buf);
        base = start_with_bystander(&d, NULL, &b);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = make_eventfd();
        for (unsigned round = 0; round < rounds; round++) {
                size_t len = 0;

                ck_assert_int_eq(test_client_connect(&h, d.socket), 0);
                if (round % 2 == 0) {
                        buf[len++] = '[';
                        for (int i = 0; i < EVD_MAX_FDS; i++)
                                len += (size_t)sprintf(
                                        buf + len,
                                        "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":"
                                        "\"watch\",\"params\":{\"fd\":%d,\"events\":["
                                        "\"in\"],\"mode\":\"edge\"}}",
                                        i ? "," : "", i, i);
                        for (int i = 0; len < EVD_MAX_PACKET - 200; i++)
                                len += (size_t)sprintf(buf + len,
                                                       ",{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":"
                                                       "\"timer\",\"params\":{\"after\":%d}}",
                                                       100 + i, 100 + i % 7);
                        buf[len++] = ']';
                        test_client_send_raw(&h, buf, len, fds, EVD_MAX_FDS);
                        /* Make them ready: their notices are queued when the client goes. */
                        for (size_t i = 0; i < ELEMENTSOF(fds) && round % 4 == 0; i++)
                                poke_eventfd(fds[i]);
                } else {
                        /* Replies that outgrow the socket: the daemon is mid-send at EOF. */
                        for (int k = 0; k < 4; k++) {
                                len = 0;
                                buf[len++] = '[';
                                for (int i = 0; i < 1024; i++)
                                        len += (size_t)sprintf(buf + len,
                                                               "%s{\"jsonrpc\":\"2.0\",\"id\":%d,"
                                                               "\"method\":\"status\"}",
                                                               i ? "," : "", i);
                                buf[len++] = ']';
                                test_client_send_raw(&h, buf, len, NULL, 0);
                        }
                }
                test_client_close(&h);
        }
        wait_status(&b.c, "clients", 1, TIMEOUT);
        wait_status(&b.c, "watches", 1, TIMEOUT);
        wait_status(&b.c, "timers", 0, TIMEOUT);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        free(buf);
        finish(&d, &b, base);
}
END_TEST

/*
 * Half-closes. SHUT_RD by the client: the daemon's next send to it fails (EPIPE) and it
 * drops the client with everything it owned. SHUT_WR after pipelining far more replies than
 * the socket holds (the daemon pauses reading it, back-pressure): every reply still arrives,
 * in order, then EOF. SHUT_RDWR without closing: seen as a hang-up, cleaned up.
 */
START_TEST(test_half_close) {
        const int batches = under_valgrind() ? 10 : 40, per_batch = 50;
        TestDaemon d;
        Bystander b;
        TestClient h;
        char *buf = malloc(EVD_MAX_PACKET);
        json_int_t expect = 1;
        int base, p[2];

        ck_assert_ptr_nonnull(buf);
        base = start_with_bystander(&d, NULL, &b);

        /* SHUT_RD with watches: a ready, then the daemon notices on its send. */
        ck_assert_int_eq(test_client_connect(&h, d.socket), 0);
        make_pipe(p);
        for (int i = 0; i < 3; i++)
                (void)watch_fd(&h, p[0], "edge", NULL);
        ck_assert_int_eq(shutdown(h.fd, SHUT_RD), 0);
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        expect_fd_count(&d, base, TIMEOUT);
        wait_status(&b.c, "clients", 1, TIMEOUT);
        test_client_close(&h);

        /* SHUT_WR behind 2,000 pipelined stats requests (about 2 MB of replies). */
        ck_assert_int_eq(test_client_connect(&h, d.socket), 0);
        for (int k = 0; k < batches; k++) {
                size_t len = 0;

                buf[len++] = '[';
                for (int i = 0; i < per_batch; i++)
                        len += (size_t)sprintf(
                                buf + len, "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"stats\"}",
                                i ? "," : "", k * per_batch + i + 1);
                buf[len++] = ']';
                test_client_send_raw(&h, buf, len, NULL, 0);
        }
        ck_assert_int_eq(shutdown(h.fd, SHUT_WR), 0);
        while (expect <= (json_int_t)batches * per_batch) {
                json_t *r = next_reply(&h, "stats after SHUT_WR"), *item;
                size_t i;

                ck_assert_msg(json_is_array(r), "a batch reply part is not an array");
                json_array_foreach(r, i, item) {
                        ck_assert_int_eq(json_integer_value(json_object_get(item, "id")), expect);
                        ck_assert_ptr_nonnull(json_object_get(item, "result"));
                        expect++;
                }
                json_decref(r);
        }
        ck_assert_msg(test_client_wait_eof(&h, TIMEOUT), "no EOF after the last reply");
        test_client_close(&h);

        /* SHUT_RDWR, the fd kept open. */
        ck_assert_int_eq(test_client_connect(&h, d.socket), 0);
        for (int i = 0; i < 3; i++)
                (void)watch_fd(&h, p[0], "edge", NULL);
        ck_assert_int_eq(shutdown(h.fd, SHUT_RDWR), 0);
        expect_fd_count(&d, base, TIMEOUT);
        /* Sending on it now fails here, not in the daemon. */
        ck_assert_int_eq(test_client_sendmsg(&h, "{}", 2, NULL, 0), -EPIPE);
        test_client_close(&h);
        close_pair(p);
        free(buf);
        finish(&d, &b, base);
}
END_TEST

/* Fill the daemon's output for @c until it stops reading @c (back-pressure): pipelined
 * stats batches, never read, until a send would block. */
static void stall_hard(TestClient *c) {
        char *buf = malloc(EVD_MAX_PACKET);
        long long deadline = ms_now() + TIMEOUT;
        size_t len = 0;
        int blocked = 0;

        ck_assert_ptr_nonnull(buf);
        buf[len++] = '[';
        for (int i = 0; i < 100; i++)
                len += (size_t)sprintf(buf + len,
                                       "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"stats\"}",
                                       i ? "," : "", i);
        buf[len++] = ']';
        while (blocked < 3) {
                ck_assert_msg(ms_now() < deadline,
                              "the daemon kept reading a client that reads nothing");
                if (send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
                        blocked = 0;
                        continue;
                }
                ck_assert_int_eq(errno, EAGAIN);
                blocked++;
                (void)poll(NULL, 0, 50);
        }
        free(buf);
}

/*
 * Requests after `shutdown`. A client that reads nothing (stalled, the daemon has paused
 * reading it) keeps the daemon in its grace period; meanwhile another client, told to shut
 * down, keeps sending watches with 32 fds, batches and notifications: every request with an
 * id gets -32008, none runs. The stalled client cannot hold the daemon past its grace period
 * (3 s): it logs so and exits 0 within 3 s + 2 s of SIGTERM; the bystander gets `shutdown`
 * and EOF.
 */
START_TEST(test_requests_during_shutdown) {
        static const char batch[] =
                "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\",\"params\":"
                "{\"fd\":0,\"events\":[\"in\"],\"mode\":\"edge\"}},"
                "{\"jsonrpc\":\"2.0\",\"method\":\"watch\",\"params\":"
                "{\"fd\":1,\"events\":[\"in\"],\"mode\":\"edge\"}},"
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"timer\",\"params\":"
                "{\"after\":0}},{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":"
                "\"hello\",\"params\":{\"protocol\":1}}]";
        TestDaemon d;
        Bystander b;
        TestClient stalled, h;
        json_t *m, *r;
        int fds[EVD_MAX_FDS], status = -1;
        long long t0;
        unsigned answered = 0;

        (void)start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&stalled, d.socket), 0);
        ck_assert_int_eq(test_client_connect(&h, d.socket), 0);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = make_eventfd();
        stall_hard(&stalled);
        ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
        t0 = ms_now();
        m = wait_note(&h, "shutdown", NULL, 0, TIMEOUT);
        ck_assert_msg(m, "no shutdown notification");
        json_decref(m);
        /* Until the daemon is gone: each batch with 32 fds is answered with three -32008. */
        for (;;) {
                json_t *item;
                size_t i;

                if (test_client_sendmsg(&h, batch, sizeof(batch) - 1, fds, EVD_MAX_FDS) < 0)
                        break;
                r = scanned(test_client_reply(&h, TIMEOUT));
                if (!r)
                        break;
                ck_assert_msg(json_is_array(r) && json_array_size(r) == 3, "not 3 replies");
                json_array_foreach(r, i, item)
                        check_error(item, -32008, NULL, NULL);
                json_decref(r);
                answered++;
                ck_assert_msg(ms_now() - t0 < 8000, "the daemon still answers 8 s after SIGTERM");
        }
        status = test_daemon_wait_exit(&d, (int)MAX(6000 - (ms_now() - t0), 1LL));
        ck_assert_msg(status == 0, "the daemon did not exit 0 within 6 s of SIGTERM (status %d)",
                      status);
        printf("shutdown: %u batches answered with -32008; the daemon exited %lld ms after "
               "SIGTERM\n",
               answered, ms_now() - t0);
        ck_assert_msg(answered > 0, "no request reached the daemon during its shutdown");
        ck_assert(test_daemon_log_contains(&d, "Shutdown grace period over"));
        m = wait_note(&b.c, "shutdown", NULL, 0, TIMEOUT);
        ck_assert_msg(m, "the bystander got no shutdown notification");
        json_decref(m);
        ck_assert(test_client_wait_eof(&b.c, TIMEOUT));
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        test_client_close(&h);
        test_client_close(&stalled);
        bystander_close(&b);
        stop(&d);
}
END_TEST

/* ---- faults and load ---------------------------------------------------------------- */

/* Child: @n connections to @path, each handing over 10 eventfds in one batch of watches and
 * waiting for the 10 results; then 'k' on @report and wait for SIGKILL. No asserts here:
 * any failure is reported as a letter. */
static _Noreturn void child_hold_watches(const char *path, unsigned n, int report) {
        static char buf[EVD_MAX_PACKET + 1];
        char req[2048];
        size_t len = 0;
        int *conns = calloc(n, sizeof(int));

        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!conns)
                goto fail;
        req[len++] = '[';
        for (int i = 0; i < 10; i++)
                len += (size_t)sprintf(req + len,
                                       "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"watch\","
                                       "\"params\":{\"fd\":%d,\"events\":[\"in\"],\"mode\":"
                                       "\"edge\"}}",
                                       i ? "," : "", i + 1, i);
        req[len++] = ']';
        for (unsigned i = 0; i < n; i++) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                int efd[10];

                conns[i] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                strcpy(sa.sun_path, path);
                if (conns[i] < 0 || connect(conns[i], (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        goto fail;
                for (int k = 0; k < 10; k++)
                        if ((efd[k] = eventfd(0, EFD_CLOEXEC)) < 0)
                                goto fail;
                if (wire_send_blocking(conns[i], req, len, efd, 10) < 0)
                        goto fail;
                for (int k = 0; k < 10; k++)
                        close(efd[k]); /* the daemon holds its own copies */
        }
        for (unsigned i = 0; i < n; i++) {
                FdList fl = FD_LIST_NULL;
                WirePacket pkt;
                size_t results = 0;

                if (wire_recv_blocking(conns[i], buf, sizeof(buf) - 1, &fl, &pkt, 10000) < 0 ||
                    pkt.eof || pkt.truncated)
                        goto fail;
                fd_list_close(&fl);
                buf[pkt.len] = 0;
                for (const char *s = buf; (s = strstr(s, "\"result\":{\"watch\":")); s++)
                        results++;
                if (results != 10)
                        goto fail;
        }
        if (write(report, "k", 1) != 1)
                _exit(2);
        for (;;)
                pause();
fail:
        (void)!write(report, "f", 1);
        _exit(1);
}

/* Fork @k children holding @n connections in all; wait until each reported. */
static void spawn_holders(const TestDaemon *d, pid_t *pids, unsigned k, unsigned n) {
        int report[2];
        unsigned ok = 0;

        ck_assert_int_eq(pipe2(report, O_CLOEXEC), 0);
        for (unsigned i = 0; i < k; i++) {
                pids[i] = fork();
                ck_assert_int_ge(pids[i], 0);
                if (pids[i] == 0) {
                        close(report[0]);
                        child_hold_watches(d->socket, n / k + (i < n % k), report[1]);
                }
        }
        close(report[1]);
        for (unsigned i = 0; i < k; i++) {
                struct pollfd pfd = { .fd = report[0], .events = POLLIN };
                char c = 0;

                ck_assert_msg(poll(&pfd, 1, 30000) == 1, "a child did not report within 30 s");
                ck_assert_int_eq(read(report[0], &c, 1), 1);
                if (c == 'k')
                        ok++;
        }
        close(report[0]);
        ck_assert_msg(ok == k, "%u of %u children failed to set up their clients", k - ok, k);
}

static void kill_holders(pid_t *pids, unsigned k) {
        for (unsigned i = 0; i < k; i++)
                ck_assert_int_eq(kill(pids[i], SIGKILL), 0);
        for (unsigned i = 0; i < k; i++) {
                int status;

                ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
                ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        }
}

/*
 * 1,000 clients (fewer if the daemon's fd limit cannot hold 11 fds each; 100 under valgrind),
 * each with 10 watched fds, held by 4 processes that are then killed with SIGKILL. The
 * daemon's fd count returns exactly to its baseline, every watch is forgotten, and RSS
 * returns: three rounds (two under ASan or valgrind), the first to warm up the allocator;
 * after each later round RSS is within RSS_SLACK_KIB (2 MiB) of its level after the first.
 * Memory that comes back round after round is the allocator's, not a leak: a leak of even
 * 1 KiB per client would add 1 MiB per round.
 */
START_TEST(test_mass_client_death) {
        const unsigned k = under_valgrind() ? 2 : 4, rounds = slow_build() ? 2 : 3;
        TestDaemon d;
        Bystander b;
        pid_t pids[4];
        unsigned n;
        long nofile, rss_fresh, rss_warm = 0, rss_peak = 0;
        int base;
        static const char *const args[] = { "--max-clients-per-uid=4096", "--max-watches-per-uid=1000000",
                                            "--max-watches-per-client=1000000", NULL };

        base = start_with_bystander(&d, args, &b);
        rss_fresh = test_daemon_rss_kb(&d);
        nofile = daemon_nofile(&d);
        n = under_valgrind() ? 100 : 1000;
        n = (unsigned)MIN((long)n, (nofile - base - 64) / 11);
        ck_assert_int_ge(n, 10);
        for (unsigned round = 0; round < rounds; round++) {
                long long t0 = ms_now();
                long rss;

                spawn_holders(&d, pids, k, n);
                ck_assert_int_eq(status_int(&b.c, "clients"), (json_int_t)n + 1);
                ck_assert_int_eq(status_int(&b.c, "watches"), (json_int_t)n * 10 + 1);
                ck_assert_int_eq(test_daemon_fd_count(&d), base + (int)n * 11);
                rss_peak = MAX(rss_peak, test_daemon_rss_kb(&d));
                kill_holders(pids, k);
                expect_fd_count(&d, base, 10000);
                wait_status(&b.c, "clients", 1, TIMEOUT);
                wait_status(&b.c, "watches", 1, TIMEOUT);
                (void)poll(NULL, 0, 200); /* let the allocator settle */
                rss = test_daemon_rss_kb(&d);
                printf("client death, round %u: %u clients x 10 fds killed; fds back to %d; RSS "
                       "%ld KiB (fresh %ld, peak %ld); %lld ms\n",
                       round, n, base, rss, rss_fresh, rss_peak, ms_now() - t0);
                if (round == 0)
                        rss_warm = rss;
                else if (!UNDER_ASAN)
                        ck_assert_msg(rss <= rss_warm + RSS_SLACK_KIB,
                                      "RSS grew from %ld to %ld KiB over a round of client deaths",
                                      rss_warm, rss);
                (void)bystander_check(&b);
        }
        finish(&d, &b, base);
}
END_TEST

/* Watch @n pipes on @c in edge mode, 32 per packet; fills @pipes (n x 2 fds) and @ids. */
static void watch_pipes(TestClient *c, int (*pipes)[2], json_int_t *ids, unsigned n) {
        char *buf = malloc(EVD_MAX_PACKET);

        ck_assert_ptr_nonnull(buf);
        for (unsigned i = 0; i < n; i++)
                make_pipe(pipes[i]);
        for (unsigned first = 0; first < n; first += EVD_MAX_FDS) {
                unsigned cnt = MIN(n - first, (unsigned)EVD_MAX_FDS);
                int fds[EVD_MAX_FDS];
                size_t len = 0;
                json_t *r, *item;
                size_t i;

                buf[len++] = '[';
                for (unsigned j = 0; j < cnt; j++) {
                        fds[j] = pipes[first + j][0];
                        len += (size_t)sprintf(
                                buf + len,
                                "%s{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"watch\","
                                "\"params\":{\"fd\":%u,\"events\":[\"in\"],\"mode\":"
                                "\"edge\",\"tag\":%u}}",
                                j ? "," : "", first + j, j, first + j);
                }
                buf[len++] = ']';
                test_client_send_raw(c, buf, len, fds, cnt);
                r = next_reply(c, "watches");
                ck_assert_msg(json_is_array(r) && json_array_size(r) == cnt, "watch batch reply");
                json_array_foreach(r, i, item)
                        ids[first + i] = int_member(member(item, "result"), "watch");
                json_decref(r);
        }
        free(buf);
}

/* One byte into each of @n pipes (a full pipe is skipped: its reader is stalled anyway). */
static void poke_pipes(int (*pipes)[2], unsigned n) {
        for (unsigned i = 0; i < n; i++)
                if (write(pipes[i][1], "x", 1) < 0)
                        ck_assert_int_eq(errno, EAGAIN);
}

/* Keep @n pipes busy for @ms while measuring the bystander's ready latency; returns the
 * worst latency seen. */
static long long busy_phase(int (*pipes)[2], unsigned n, Bystander *b, long long ms,
                            unsigned *ret_rounds) {
        long long end = ms_now() + ms, worst = 0, next_probe = 0;
        unsigned rounds = 0;

        while (ms_now() < end) {
                poke_pipes(pipes, n);
                rounds++;
                if (ms_now() >= next_probe) {
                        worst = MAX(worst, bystander_check(b));
                        next_probe = ms_now() + 50;
                }
        }
        *ret_rounds = rounds;
        return worst;
}

/* The client @c's entry in the admin listing of clients, or NULL (a new reference). */
static json_t *client_entry(TestClient *admin, json_int_t id) {
        json_t *r = result(admin, "clients", NULL, NULL, 0), *item, *found = NULL;
        size_t i;

        json_array_foreach(member(r, "clients"), i, item)
                if (json_integer_value(json_object_get(item, "client")) == id)
                        found = json_incref(item);
        json_decref(r);
        return found;
}

static json_int_t hello_id(TestClient *c) {
        json_t *r = result(c, "hello", json_pack("{s:i}", "protocol", 1), NULL, 0);
        json_int_t id = int_member(r, "client_id");

        json_decref(r);
        return id;
}

/*
 * A slow reader: 1,000 pipes (200 under valgrind) watched in edge mode, written to over and
 * over for 1.5 s (1 s under ASan or valgrind), and a client that never reads its socket. With
 * the default limits (4 MiB of unread output), coalescing keeps at most one queued `ready` per
 * watch: the client stays
 * connected, the daemon's RSS grows by less than SLOW_READER_RSS_KIB (2 MiB, half the default
 * output limit; the design bound is one parked packet of 64 KiB plus 1,000 queued notices),
 * `coalesced` grows by at least one per watch, the bystander's readies keep coming within
 * LATENCY_BOUND_MS, and once the slow client reads, every watch has delivered a `ready`.
 */
START_TEST(test_slow_reader_coalesced) {
        const unsigned n = under_valgrind() ? 200 : 1000;
        int(*pipes)[2] = calloc(n, sizeof(*pipes));
        json_int_t *ids = calloc(n, sizeof(*ids)), sid, coalesced0, queued;
        bool *seen = calloc(n, sizeof(bool));
        TestDaemon d;
        Bystander b;
        TestClient s, admin;
        long rss0, rss1;
        long long worst, deadline;
        unsigned rounds, n_seen = 0;
        json_t *entry;
        int base;

        ck_assert(pipes && ids && seen);
        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&admin, d.socket), 0);
        ck_assert_int_eq(test_client_connect(&s, d.socket), 0);
        sid = hello_id(&s);
        watch_pipes(&s, pipes, ids, n);
        coalesced0 = stats_int(&admin, "daemon", "coalesced");
        rss0 = test_daemon_rss_kb(&d);
        worst = busy_phase(pipes, n, &b, slow_build() ? 1000 : 1500, &rounds);
        rss1 = test_daemon_rss_kb(&d);
        entry = client_entry(&admin, sid);
        ck_assert_msg(entry, "the slow client was disconnected under the default limit");
        queued = int_member(entry, "queued_bytes");
        json_decref(entry);
        printf("slow reader: %u watches x %u rounds; coalesced %lld; slow client has %lld bytes "
               "queued; RSS %ld -> %ld KiB; bystander worst latency %lld ms\n",
               n, rounds, (long long)(stats_int(&admin, "daemon", "coalesced") - coalesced0),
               (long long)queued, rss0, rss1, worst);
        ck_assert_int_ge(stats_int(&admin, "daemon", "coalesced") - coalesced0, (json_int_t)n);
        ck_assert_msg(worst <= LATENCY_BOUND_MS, "the bystander waited %lld ms for a ready", worst);
        if (!UNDER_ASAN)
                ck_assert_msg(rss1 - rss0 <= SLOW_READER_RSS_KIB,
                              "RSS grew by %ld KiB for one slow reader", rss1 - rss0);

        /* The slow client catches up: every watch has its ready. */
        deadline = ms_now() + 10000;
        while (n_seen < n && ms_now() < deadline) {
                json_t *m = wait_note(&s, "ready", NULL, 0, (int)MAX(deadline - ms_now(), 1LL));
                json_int_t w;

                if (!m)
                        break;
                w = int_member(member(m, "params"), "watch");
                for (unsigned i = 0; i < n; i++)
                        if (ids[i] == w && !seen[i]) {
                                seen[i] = true;
                                n_seen++;
                        }
                json_decref(m);
        }
        ck_assert_msg(n_seen == n, "only %u of %u watches delivered a ready", n_seen, n);
        forget_backlog(&s);
        ping(&s);
        test_client_close(&s);
        test_client_close(&admin);
        for (unsigned i = 0; i < n; i++)
                close_pair(pipes[i]);
        free(pipes);
        free(ids);
        free(seen);
        finish(&d, &b, base);
}
END_TEST

/* The same slow reader under --max-queued-bytes=131072: past the limit it is disconnected,
 * with the reason logged, its 1,000 watches and their fds released; the bystander is never
 * delayed beyond LATENCY_BOUND_MS. */
START_TEST(test_slow_reader_dropped) {
        static const char *const args[] = { "--max-queued-bytes=131072", NULL };
        const unsigned n = 1100; /* more queued notices (128 bytes each) than 131,072 bytes */
        int(*pipes)[2] = calloc(n, sizeof(*pipes));
        json_int_t *ids = calloc(n, sizeof(*ids)), disconnected0;
        TestDaemon d;
        Bystander b;
        TestClient s, admin;
        long long worst = 0, deadline;
        unsigned rounds = 0;
        int base;

        ck_assert(pipes && ids);
        base = start_with_bystander(&d, args, &b);
        ck_assert_int_eq(test_client_connect(&admin, d.socket), 0);
        ck_assert_int_eq(test_client_connect(&s, d.socket), 0);
        watch_pipes(&s, pipes, ids, n);
        disconnected0 = stats_int(&admin, "daemon", "disconnected");
        deadline = ms_now() + 10000;
        while (stats_int(&admin, "daemon", "disconnected") == disconnected0 &&
               ms_now() < deadline) {
                unsigned r;

                worst = MAX(worst, busy_phase(pipes, n, &b, 100, &r));
                rounds += r;
        }
        ck_assert_msg(stats_int(&admin, "daemon", "disconnected") == disconnected0 + 1,
                      "the slow client was not disconnected within 10 s (%u rounds)", rounds);
        ck_assert_msg(test_daemon_log_contains(&d, "output limit exceeded"),
                      "the disconnect's reason is not in the log");
        printf("slow reader over the limit: dropped after %u rounds; bystander worst latency "
               "%lld ms\n",
               rounds, worst);
        ck_assert_msg(worst <= LATENCY_BOUND_MS, "the bystander waited %lld ms for a ready", worst);
        ck_assert_msg(test_client_wait_eof(&s, TIMEOUT), "the dropped client saw no EOF");
        test_client_close(&s);
        test_client_close(&admin);
        for (unsigned i = 0; i < n; i++)
                close_pair(pipes[i]);
        free(pipes);
        free(ids);
        finish(&d, &b, base);
}
END_TEST

/* Whether the daemon admits the fresh connection @c: true (admitted, still open), or false
 * with the refusal's error code in *@ret_code (then EOF, and @c is closed). */
static bool admitted(TestClient *c, int *ret_code) {
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

static bool try_connect(TestClient *c, const TestDaemon *d, int *ret_code) {
        ck_assert_int_eq(test_client_connect(c, d->socket), 0);
        return admitted(c, ret_code);
}

/* Send @n_fds fds (copies of @fds[0..n)) as @n_fds watch requests; return how many got a
 * watch; every error must be one of the documented out-of-resources codes. */
static unsigned watch_until_refused(TestClient *c, const int *fds, unsigned n_fds, int *ret_code) {
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

/*
 * The daemon under RLIMIT_NOFILE 256 (set by a wrapper before it starts), flooded first with
 * connections and then with fds. Every connection and every request gets an answer: admitted
 * or refused with -32009 (out of fds) or -32004; watches fail with -32009 (out of fds, also
 * when the kernel could not install the packet's fds: MSG_CTRUNC) or -32004. While it is
 * full and clients keep knocking, the daemon does not spin: its CPU time stays under
 * SPIN_BOUND (20%) of the 2 s measured. Once the flood leaves, its fd count is back to the
 * baseline and a new client can watch.
 */
START_TEST(test_fd_exhaustion) {
        /* Limits out of the way (their defaults scale with the fd limit): this is about
         * running out of fds itself. */
        static const char *const args[] = { "--max-clients=100000", "--max-clients-per-uid=100000",
                                            "--max-watches-per-client=100000", "--max-watches-per-uid=100000",
                                            NULL };
        const unsigned nofile = 256, max_conns = 400;
        TestClient *conns = calloc(max_conns, sizeof(TestClient));
        TestDaemon d;
        Bystander b;
        TestClient flood, c;
        unsigned admitted = 0, refused = 0, watched = 0, knocks = 0;
        int fds[EVD_MAX_FDS], base, code = 0;
        double cpu0, cpu1;
        long long t0, t1;

        ck_assert_ptr_nonnull(conns);
        start_with_nofile(&d, args, nofile);
        ck_assert_int_eq(daemon_nofile(&d), nofile);
        bystander_init(&b, &d);
        base = fd_baseline(&d, &b.c, 1);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = make_eventfd();

        /* Connections until refused (and a few more: each refused, none left hanging). */
        while (admitted < max_conns && refused < 10) {
                if (try_connect(&conns[admitted], &d, &code))
                        admitted++;
                else {
                        ck_assert_msg(code == -32009 || code == -32004, "refused with %d", code);
                        refused++;
                }
        }
        ck_assert_msg(refused == 10, "%u connections and no refusal under %u fds", admitted,
                      nofile);
        printf("fd exhaustion: %u connections admitted under RLIMIT_NOFILE %u (baseline %d fds), "
               "then refused with %d\n",
               admitted, nofile, base, code);
        ck_assert_msg(test_daemon_log_contains(&d, "Out of file descriptors"),
                      "running out of fds is not logged");
        ping(&b.c);

        /* Free 40, then fill them with watched fds: 32 at a time, then one at a time. */
        for (unsigned i = admitted - 40; i < admitted; i++)
                test_client_close(&conns[i]);
        admitted -= 40;
        /* The daemon frees them asynchronously: all 40 must be free before the flood. */
        expect_fd_count(&d, base + (int)admitted, TIMEOUT);
        flood = conns[--admitted];
        code = 0;
        for (unsigned round = 0; round < 10 && code == 0; round++)
                watched += watch_until_refused(&flood, fds, EVD_MAX_FDS, &code);
        ck_assert_msg(code != 0, "%u watches and no refusal", watched);
        code = 0;
        for (unsigned round = 0; round < 64 && code == 0; round++)
                watched += watch_until_refused(&flood, fds, 1, &code);
        ck_assert_msg(code != 0, "single watches never refused");
        printf("fd exhaustion: %u fds watched, then refused with %d\n", watched, code);

        /* Full. Clients keep knocking for 2 s: refused every time, and no spinning. */
        cpu0 = daemon_cpu_seconds(&d);
        t0 = ms_now();
        while (ms_now() - t0 < 2000) {
                ck_assert_msg(!try_connect(&c, &d, &code), "admitted while out of fds");
                ck_assert_msg(code == -32009 || code == -32004, "refused with %d", code);
                (void)watch_until_refused(&flood, fds, 1, &code);
                knocks++;
                (void)poll(NULL, 0, 20);
        }
        t1 = ms_now();
        cpu1 = daemon_cpu_seconds(&d);
        printf("fd exhaustion: %u refused knocks in %lld ms cost the daemon %.3f s of CPU\n",
               knocks, t1 - t0, cpu1 - cpu0);
        ck_assert_msg(cpu1 - cpu0 <= SPIN_BOUND * (double)(t1 - t0) / 1000.0,
                      "the daemon used %.2f s of CPU in %.2f s while out of fds", cpu1 - cpu0,
                      (double)(t1 - t0) / 1000.0);
        ping(&b.c);

        /* The flood leaves: everything comes back, a new client gets in and can watch. */
        test_client_close(&flood);
        for (unsigned i = 0; i < admitted; i++)
                test_client_close(&conns[i]);
        expect_fd_count(&d, base, 10000);
        ck_assert_msg(try_connect(&c, &d, &code), "no admission after the flood left (%d)", code);
        {
                int p[2];
                json_int_t w;
                json_t *m;

                make_pipe(p);
                w = watch_fd(&c, p[0], "edge", NULL);
                ck_assert_int_eq(write(p[1], "x", 1), 1);
                m = wait_note(&c, "ready", "watch", w, TIMEOUT);
                ck_assert_msg(m, "no ready after recovery");
                json_decref(m);
                close_pair(p);
        }
        test_client_close(&c);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        free(conns);
        finish(&d, &b, base);
}
END_TEST

/* How many fds this process has open. */
static int own_fd_count(void) {
        int n = 0;
        DIR *dir = opendir("/proc/self/fd");
        struct dirent *de;

        ck_assert_ptr_nonnull(dir);
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(dir);
        return n - 1; /* the directory's own fd */
}

/* Read every client that has something until @want readies arrived (or @deadline); returns
 * how many distinct watches delivered. A ready must reach the client that owns the watch. */
static unsigned collect_readies(TestClient *cl, unsigned n_clients, const int *index_of,
                                size_t max_id, bool *seen, unsigned want, long long deadline) {
        struct pollfd *pfd = calloc(n_clients, sizeof(*pfd));
        unsigned got = 0;

        ck_assert_ptr_nonnull(pfd);
        for (unsigned i = 0; i < n_clients; i++)
                pfd[i] = (struct pollfd){ .fd = cl[i].fd, .events = POLLIN };
        while (got < want && ms_now() < deadline) {
                ck_assert_int_ge(poll(pfd, n_clients, 100), 0);
                for (unsigned i = 0; i < n_clients; i++) {
                        json_t *v;

                        if (!(pfd[i].revents & POLLIN))
                                continue;
                        while ((v = test_client_recv(&cl[i], 0))) {
                                size_t n = json_is_array(v) ? json_array_size(v) : 1;

                                for (size_t k = 0; k < n; k++) {
                                        json_t *m = json_is_array(v) ? json_array_get(v, k) : v;
                                        json_int_t w;
                                        int j;

                                        ck_assert_msg(streq(json_string_value(
                                                                    json_object_get(m, "method")),
                                                            "ready"),
                                                      "a client got something else than ready");
                                        w = int_member(member(m, "params"), "watch");
                                        ck_assert(w > 0 && (size_t)w <= max_id);
                                        j = index_of[w];
                                        ck_assert_msg(j >= 0 && (unsigned)j % n_clients == i,
                                                      "client %u got a ready for a watch of "
                                                      "another client",
                                                      i);
                                        if (!seen[j]) {
                                                seen[j] = true;
                                                got++;
                                        }
                                }
                                json_decref(v);
                        }
                }
        }
        free(pfd);
        return got;
}

/*
 * As many clients and watched fds as the fd limits allow: 1,000 clients (50 under valgrind)
 * and, spread over them, as many eventfds as both this process (1 fd each, plus its
 * connections) and the daemon (1 fd each, plus connections and its baseline) can hold, minus
 * a margin of 64 on each side. Every watch must deliver its `ready`, to its own client, in
 * two rounds; afterwards the daemon's fd count is back to its baseline.
 */
START_TEST(test_scale) {
        static const char *const args[] = { "--max-clients-per-uid=4096", "--max-watches-per-uid=1000000",
                                            "--max-watches-per-client=1000000", NULL };
        const unsigned rounds = slow_build() ? 1 : 2;
        TestDaemon d;
        Bystander b;
        TestClient *cl;
        struct rlimit rl;
        unsigned n_clients, n_watches;
        int *efd, *index_of, base;
        json_int_t *wid;
        bool *seen;
        size_t max_id = 0;
        long d_nofile, room;
        long long t0, t1;
        char *buf = malloc(EVD_MAX_PACKET);

        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        base = start_with_bystander(&d, args, &b);
        d_nofile = daemon_nofile(&d);
        n_clients = under_valgrind() ? 50 : 1000;
        room = MIN((long)rl.rlim_cur - own_fd_count(), d_nofile - base) - (long)n_clients - 64;
        ck_assert_msg(room >= (long)n_clients, "fd limits too low for a scale test: %ld", room);
        n_watches = (unsigned)(under_valgrind() ? MIN(room, 2000L) : room);
        cl = calloc(n_clients, sizeof(*cl));
        efd = calloc(n_watches, sizeof(int));
        wid = calloc(n_watches, sizeof(json_int_t));
        seen = calloc(n_watches, sizeof(bool));
        ck_assert(cl && efd && wid && seen);

        t0 = ms_now();
        for (unsigned j = 0; j < n_watches; j++)
                efd[j] = make_eventfd();
        for (unsigned i = 0; i < n_clients; i++)
                ck_assert_int_eq(test_client_connect(&cl[i], d.socket), 0);
        /* Watch j belongs to client j % n_clients; up to 32 per packet, all sent first. */
        for (unsigned i = 0; i < n_clients; i++) {
                unsigned j = i;

                while (j < n_watches) {
                        int fds[EVD_MAX_FDS];
                        unsigned cnt = 0;
                        size_t len = 0;

                        buf[len++] = '[';
                        for (; j < n_watches && cnt < EVD_MAX_FDS; j += n_clients, cnt++) {
                                fds[cnt] = efd[j];
                                len += (size_t)sprintf(
                                        buf + len,
                                        "%s{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":"
                                        "\"watch\",\"params\":{\"fd\":%u,\"events\":["
                                        "\"in\"],\"mode\":\"edge\"}}",
                                        cnt ? "," : "", j, cnt);
                        }
                        buf[len++] = ']';
                        test_client_send_raw(&cl[i], buf, len, fds, cnt);
                }
        }
        for (unsigned i = 0; i < n_clients; i++) {
                unsigned want = (n_watches - i + n_clients - 1) / n_clients, got = 0;

                while (got < want) {
                        json_t *r = next_reply(&cl[i], "scale watches"), *item;
                        size_t k;

                        ck_assert(json_is_array(r));
                        json_array_foreach(r, k, item) {
                                json_int_t j = int_member(item, "id");

                                ck_assert(j >= 0 && j < (json_int_t)n_watches);
                                wid[j] = int_member(member(item, "result"), "watch");
                                max_id = MAX(max_id, (size_t)wid[j]);
                                got++;
                        }
                        json_decref(r);
                }
        }
        index_of = malloc((max_id + 1) * sizeof(int));
        ck_assert_ptr_nonnull(index_of);
        for (size_t k = 0; k <= max_id; k++)
                index_of[k] = -1;
        for (unsigned j = 0; j < n_watches; j++)
                index_of[wid[j]] = (int)j;
        ck_assert_int_eq(status_int(&b.c, "clients"), (json_int_t)n_clients + 1);
        ck_assert_int_eq(status_int(&b.c, "watches"), (json_int_t)n_watches + 1);
        ck_assert_int_eq(test_daemon_fd_count(&d), base + (int)(n_clients + n_watches));
        t1 = ms_now();
        printf("scale: %u clients, %u watches; the daemon holds %d of %ld fds; set up in %lld ms\n",
               n_clients, n_watches, test_daemon_fd_count(&d), d_nofile, t1 - t0);

        for (unsigned round = 0; round < rounds; round++) {
                unsigned got;

                memset(seen, 0, n_watches * sizeof(bool));
                t0 = ms_now();
                for (unsigned j = 0; j < n_watches; j++) {
                        drain_fd(efd[j]);
                        poke_eventfd(efd[j]);
                }
                got = collect_readies(cl, n_clients, index_of, max_id, seen, n_watches,
                                      ms_now() + 30000);
                printf("scale, round %u: %u of %u readies in %lld ms\n", round, got, n_watches,
                       ms_now() - t0);
                ck_assert_msg(got == n_watches, "round %u: %u of %u watches delivered", round, got,
                              n_watches);
        }
        (void)bystander_check(&b);

        for (unsigned i = 0; i < n_clients; i++)
                test_client_close(&cl[i]);
        for (unsigned j = 0; j < n_watches; j++)
                close(efd[j]);
        expect_fd_count(&d, base, 20000);
        free(index_of);
        free(cl);
        free(efd);
        free(wid);
        free(seen);
        free(buf);
        finish(&d, &b, base);
}
END_TEST

/*
 * A burst: 1,000 clients connect (600 under valgrind), then each sends one request watching
 * one eventfd, all at once. Every request must be answered, and every watch must then deliver
 * its `ready`. With the io_uring backend this crosses the engine's first ring growth (more
 * live polls than the 1,024 CQ entries it starts with), so it checks that no wakeup is lost
 * while the engine moves its polls to a bigger ring.
 */
START_TEST(test_client_burst) {
        static const char *const args[] = { "--max-clients-per-uid=4096", "--max-watches-per-uid=1000000",
                                            "--max-watches-per-client=1000000", NULL };
        static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\",\"params\":"
                                  "{\"fd\":0,\"events\":[\"in\"],\"mode\":\"edge\"}}";
        const unsigned n = under_valgrind() ? 600 : 1000;
        TestClient *cl = calloc(n, sizeof(*cl));
        struct pollfd *pfd = calloc(n, sizeof(*pfd));
        int *efd = calloc(n, sizeof(int)), *index_of = NULL;
        json_int_t *wid = calloc(n, sizeof(json_int_t));
        bool *seen = calloc(n, sizeof(bool));
        size_t max_id = 0;
        unsigned replied = 0, got;
        long long deadline;
        TestDaemon d;
        Bystander b;
        int base;

        ck_assert(cl && pfd && efd && wid && seen);
        base = start_with_bystander(&d, args, &b);
        for (unsigned i = 0; i < n; i++) {
                ck_assert_int_eq(test_client_connect(&cl[i], d.socket), 0);
                efd[i] = make_eventfd();
        }
        for (unsigned i = 0; i < n; i++)
                test_client_send_raw(&cl[i], req, sizeof(req) - 1, &efd[i], 1);
        for (unsigned i = 0; i < n; i++)
                pfd[i] = (struct pollfd){ .fd = cl[i].fd, .events = POLLIN };
        deadline = ms_now() + 10000;
        while (replied < n && ms_now() < deadline) {
                ck_assert_int_ge(poll(pfd, n, 100), 0);
                for (unsigned i = 0; i < n; i++) {
                        json_t *r;

                        if (!(pfd[i].revents & POLLIN))
                                continue;
                        r = scanned(test_client_reply(&cl[i], TIMEOUT));
                        ck_assert_msg(r && json_object_get(r, "result"), "client %u: no watch", i);
                        wid[i] = int_member(member(r, "result"), "watch");
                        max_id = MAX(max_id, (size_t)wid[i]);
                        json_decref(r);
                        pfd[i].fd = -1;
                        replied++;
                }
        }
        if (replied < n) {
                unsigned first = 0;

                while (pfd[first].fd < 0)
                        first++;
                ck_abort_msg("%u of %u clients got no reply within 10 s (the first: client %u), "
                             "although the daemon answers others: their requests were never read",
                             n - replied, n, first);
        }
        index_of = malloc((max_id + 1) * sizeof(int));
        ck_assert_ptr_nonnull(index_of);
        for (size_t k = 0; k <= max_id; k++)
                index_of[k] = -1;
        for (unsigned i = 0; i < n; i++)
                index_of[wid[i]] = (int)i;
        for (unsigned i = 0; i < n; i++)
                poke_eventfd(efd[i]);
        got = collect_readies(cl, n, index_of, max_id, seen, n, ms_now() + 10000);
        ck_assert_msg(got == n, "%u of %u watches delivered their ready", got, n);
        for (unsigned i = 0; i < n; i++) {
                test_client_close(&cl[i]);
                close(efd[i]);
        }
        free(cl);
        free(pfd);
        free(efd);
        free(wid);
        free(seen);
        free(index_of);
        finish(&d, &b, base);
}
END_TEST

/* ---- who may do what ---------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        (void)remove(path);
        return 0;
}

static void remove_tree(const char *dir) {
        (void)nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Start the daemon on @sock as @uid (0: as is) under umask @mask, its stderr into @log;
 * without test_daemon_start()'s probe, so that refusals to start can be seen. */
static pid_t spawn_daemon(const char *sock, uid_t uid, mode_t mask, const char *log) {
        const char *bin = getenv("EVD_TEST_DAEMON"), *backend = getenv("EVD_TEST_BACKEND");
        pid_t parent = getpid(), pid;

        ck_assert_msg(bin && *bin, "EVD_TEST_DAEMON is not set");
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127);
                if (fd >= 0)
                        (void)dup2(fd, STDERR_FILENO);
                (void)umask(mask);
                unsetenv("NOTIFY_SOCKET");
                unsetenv("LISTEN_FDS");
                unsetenv("LISTEN_PID");
                if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0))
                        _exit(126);
                if (backend && *backend)
                        execl(bin, bin, "--socket", sock, "--log-level", "debug", "--backend",
                              backend, (char *)NULL);
                else
                        execl(bin, bin, "--socket", sock, "--log-level", "debug", (char *)NULL);
                _exit(127);
        }
        return pid;
}

/* Exit status of @pid within @timeout_ms, 128 + signal if killed, -1 if still running. */
static int wait_exit(pid_t pid, int timeout_ms) {
        long long deadline = ms_now() + timeout_ms;
        int status;

        for (;;) {
                pid_t r = waitpid(pid, &status, WNOHANG);

                if (r == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                if (r < 0 || ms_now() >= deadline)
                        return -1;
                (void)poll(NULL, 0, 5);
        }
}

/* Wait until @sock accepts a connection (true), or the daemon exits (false). */
static bool wait_listening(const char *sock, pid_t pid) {
        long long deadline = ms_now() + TIMEOUT;

        while (ms_now() < deadline) {
                TestClient probe;
                int status;

                if (test_client_connect(&probe, sock) == 0) {
                        test_client_close(&probe);
                        return true;
                }
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return false;
                (void)poll(NULL, 0, 5);
        }
        ck_abort_msg("evd neither listened on %s nor exited within %d ms", sock, TIMEOUT);
        return false;
}

static void stop_spawned(pid_t pid) {
        ck_assert_int_eq(kill(pid, SIGTERM), 0);
        ck_assert_int_eq(wait_exit(pid, 10000), 0);
}

static bool file_contains(const char *path, const char *needle) {
        char buf[8192];
        ssize_t n;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n < 0)
                return false;
        buf[n] = 0;
        return strstr(buf, needle) != NULL;
}

static void make_tmpdir(char *dir, size_t size) {
        test_mkdtemp(dir, size, "evd-hostile");
}

static void connect_ping_as(const char *sock, uid_t uid) {
        TestClient c;

        ck_assert_int_eq(test_client_connect_as(&c, sock, uid, uid), 0);
        ping(&c);
        test_client_close(&c);
}

/* The documented modes: the system instance (root) makes its directory 0755 and its socket
 * 0666, reachable by any user; a user instance makes 0700 and 0600, reachable by no one
 * else. Checked with stat(), and by connecting as other users. */
START_TEST(test_socket_modes) {
        char dir[64], sock[192], log[192], nbdir[128];
        struct stat st;
        pid_t pid;
        TestClient c;

        make_tmpdir(dir, sizeof(dir));
        ck_assert_int_eq(chmod(dir, 0755), 0);
        snprintf(log, sizeof(log), "%s/root.log", dir);
        snprintf(sock, sizeof(sock), "%s/run-root/evd.sock", dir);
        pid = spawn_daemon(sock, 0, 022, log);
        ck_assert_msg(wait_listening(sock, pid), "the root instance did not start (see %s)", log);
        ck_assert_int_eq(stat(sock, &st), 0);
        ck_assert_msg(S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0666 && st.st_uid == 0,
                      "root's socket is %o uid %u, expected socket 0666 uid 0",
                      (unsigned)st.st_mode, (unsigned)st.st_uid);
        snprintf(nbdir, sizeof(nbdir), "%s/run-root", dir);
        ck_assert_int_eq(lstat(nbdir, &st), 0);
        ck_assert_msg(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755 && st.st_uid == 0,
                      "root's socket directory is %o uid %u, expected 0755 uid 0",
                      (unsigned)st.st_mode, (unsigned)st.st_uid);
        connect_ping_as(sock, NOBODY);
        stop_spawned(pid);

        /* A user instance, as nobody, in a directory nobody may create things in. */
        snprintf(nbdir, sizeof(nbdir), "%s/nobody", dir);
        ck_assert_int_eq(mkdir(nbdir, 0755), 0);
        ck_assert_int_eq(chown(nbdir, NOBODY, NOBODY), 0);
        snprintf(sock, sizeof(sock), "%s/run/evd.sock", nbdir);
        snprintf(log, sizeof(log), "%s/nobody.log", dir);
        pid = spawn_daemon(sock, NOBODY, 022, log);
        ck_assert_msg(wait_listening(sock, pid), "the user instance did not start (see %s)", log);
        ck_assert_int_eq(stat(sock, &st), 0);
        ck_assert_msg(S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0600 && st.st_uid == NOBODY,
                      "the user socket is %o uid %u, expected socket 0600 uid %u",
                      (unsigned)st.st_mode, (unsigned)st.st_uid, NOBODY);
        snprintf(nbdir, sizeof(nbdir), "%s/nobody/run", dir);
        ck_assert_int_eq(lstat(nbdir, &st), 0);
        ck_assert_msg(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700 && st.st_uid == NOBODY,
                      "the user socket directory is %o, expected 0700", (unsigned)st.st_mode);
        connect_ping_as(sock, NOBODY);
        ck_assert_int_eq(test_client_connect_as(&c, sock, NOBODY - 1, NOBODY - 1), -EACCES);
        stop_spawned(pid);
        remove_tree(dir);
}
END_TEST

/* The directory mode must not depend on the umask the daemon inherits: started by root with
 * umask 077 (a common hardened default), the socket directory it creates must still be the
 * documented 0755, or no other user can reach the 0666 socket inside. */
START_TEST(test_socket_dir_mode_ignores_umask) {
        char dir[64], sock[192], log[192], sub[128];
        struct stat st;
        TestClient c;
        pid_t pid;
        int r;

        make_tmpdir(dir, sizeof(dir));
        ck_assert_int_eq(chmod(dir, 0755), 0);
        snprintf(log, sizeof(log), "%s/evd.log", dir);
        snprintf(sock, sizeof(sock), "%s/run/evd.sock", dir);
        snprintf(sub, sizeof(sub), "%s/run", dir);
        pid = spawn_daemon(sock, 0, 077, log);
        ck_assert_msg(wait_listening(sock, pid), "evd did not start (see %s)", log);
        ck_assert_int_eq(stat(sock, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0666);
        ck_assert_int_eq(lstat(sub, &st), 0);
        r = test_client_connect_as(&c, sock, NOBODY, NOBODY);
        if (r == 0)
                test_client_close(&c);
        stop_spawned(pid);
        remove_tree(dir);
        ck_assert_msg((st.st_mode & 07777) == 0755,
                      "under umask 077 the socket directory is %o, not the documented 0755: "
                      "other users cannot connect (%s)",
                      (unsigned)(st.st_mode & 07777), strerror(-r));
}
END_TEST

/* A daemon started on @sock must refuse to start (exit non-zero, quickly) and log @why. */
static void expect_refusal(const char *dir, const char *sock, const char *why) {
        char log[192];
        pid_t pid;
        int status;

        snprintf(log, sizeof(log), "%s/refusal.log", dir);
        pid = spawn_daemon(sock, 0, 022, log);
        status = wait_exit(pid, TIMEOUT);
        if (status < 0) {
                (void)kill(pid, SIGKILL);
                (void)wait_exit(pid, TIMEOUT);
        }
        ck_assert_msg(status > 0, "evd started on %s (status %d), expected a refusal", sock,
                      status);
        ck_assert_msg(file_contains(log, why), "no \"%s\" in the log for %s", why, sock);
}

static void write_file(const char *path, const char *text, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        struct timespec old[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        ck_assert_int_eq(futimens(fd, old), 0);
        close(fd);
}

/* @path is still a regular file with @text, @mode and the old mtime: untouched. */
static void expect_untouched(const char *path, const char *text, mode_t mode) {
        struct stat st;

        ck_assert_int_eq(lstat(path, &st), 0);
        ck_assert_msg(S_ISREG(st.st_mode) && (st.st_mode & 07777) == mode &&
                              st.st_size == (off_t)strlen(text) && st.st_mtime == 1000000000,
                      "%s was touched", path);
        ck_assert(file_contains(path, text));
}

static void expect_symlink(const char *link, const char *target) {
        char buf[256];
        ssize_t n = readlink(link, buf, sizeof(buf) - 1);

        ck_assert_msg(n > 0, "the symlink %s is gone", link);
        buf[n] = 0;
        ck_assert_str_eq(buf, target);
}

/*
 * The socket path is never followed: a symlink planted there (to an existing file, to
 * nothing, to another directory), or a socket directory that is a symlink, makes the daemon
 * refuse to start, and neither the symlink nor its target is created, changed or removed.
 * A regular file, a directory or a FIFO at the path: refused, left alone. A socket directory
 * writable by others (without the sticky bit) or owned by another user: refused. A stale
 * socket (nothing listening): replaced. A live one (another daemon): refused, and the live
 * daemon keeps serving on it.
 */
START_TEST(test_socket_path_rules) {
        char dir[64], path[192], target[192], other[192], log[192];
        struct stat st, st2;
        pid_t pid, pid2;
        int fd;

        make_tmpdir(dir, sizeof(dir));

        /* A symlink to an existing file. */
        snprintf(target, sizeof(target), "%s/victim", dir);
        write_file(target, "victim\n", 0600);
        snprintf(path, sizeof(path), "%s/a.sock", dir);
        ck_assert_int_eq(symlink(target, path), 0);
        expect_refusal(dir, path, "is a symlink");
        expect_symlink(path, target);
        expect_untouched(target, "victim\n", 0600);

        /* Dangling symlinks: to a missing file, and into a missing directory. */
        snprintf(path, sizeof(path), "%s/b.sock", dir);
        snprintf(target, sizeof(target), "%s/absent.sock", dir);
        ck_assert_int_eq(symlink(target, path), 0);
        expect_refusal(dir, path, "is a symlink");
        expect_symlink(path, target);
        ck_assert_int_eq(lstat(target, &st), -1);
        snprintf(path, sizeof(path), "%s/c.sock", dir);
        snprintf(target, sizeof(target), "%s/nowhere/evd.sock", dir);
        ck_assert_int_eq(symlink(target, path), 0);
        expect_refusal(dir, path, "is a symlink");
        snprintf(other, sizeof(other), "%s/nowhere", dir);
        ck_assert_int_eq(lstat(other, &st), -1);

        /* The socket's directory is a symlink to a real one. */
        snprintf(other, sizeof(other), "%s/realdir", dir);
        ck_assert_int_eq(mkdir(other, 0755), 0);
        snprintf(target, sizeof(target), "%s/linkdir", dir);
        ck_assert_int_eq(symlink(other, target), 0);
        snprintf(path, sizeof(path), "%s/linkdir/evd.sock", dir);
        expect_refusal(dir, path, "is not a directory");
        snprintf(path, sizeof(path), "%s/realdir/evd.sock", dir);
        ck_assert_int_eq(lstat(path, &st), -1);

        /* Not a socket: a file, a directory, a FIFO. */
        snprintf(path, sizeof(path), "%s/file.sock", dir);
        write_file(path, "data\n", 0644);
        expect_refusal(dir, path, "not a socket");
        expect_untouched(path, "data\n", 0644);
        snprintf(path, sizeof(path), "%s/dir.sock", dir);
        ck_assert_int_eq(mkdir(path, 0700), 0);
        expect_refusal(dir, path, "not a socket");
        ck_assert(lstat(path, &st) == 0 && S_ISDIR(st.st_mode));
        snprintf(path, sizeof(path), "%s/fifo.sock", dir);
        ck_assert_int_eq(mkfifo(path, 0600), 0);
        expect_refusal(dir, path, "not a socket");
        ck_assert(lstat(path, &st) == 0 && S_ISFIFO(st.st_mode));

        /* Socket directories others could write into, or that belong to someone else. */
        snprintf(other, sizeof(other), "%s/open", dir);
        ck_assert_int_eq(mkdir(other, 0777), 0);
        ck_assert_int_eq(chmod(other, 0777), 0);
        snprintf(path, sizeof(path), "%s/open/evd.sock", dir);
        expect_refusal(dir, path, "writable by others");
        ck_assert_int_eq(lstat(path, &st), -1);
        snprintf(other, sizeof(other), "%s/theirs", dir);
        ck_assert_int_eq(mkdir(other, 0755), 0);
        ck_assert_int_eq(chown(other, NOBODY, NOBODY), 0);
        snprintf(path, sizeof(path), "%s/theirs/evd.sock", dir);
        expect_refusal(dir, path, "belongs to uid");
        ck_assert_int_eq(lstat(path, &st), -1);
        /* With the sticky bit (like /tmp) others cannot replace our entries: accepted. */
        snprintf(other, sizeof(other), "%s/sticky", dir);
        ck_assert_int_eq(mkdir(other, 0777), 0);
        ck_assert_int_eq(chmod(other, 01777), 0);
        snprintf(path, sizeof(path), "%s/sticky/evd.sock", dir);
        snprintf(log, sizeof(log), "%s/sticky.log", dir);
        pid = spawn_daemon(path, 0, 022, log);
        ck_assert_msg(wait_listening(path, pid), "evd refused a sticky directory (see %s)", log);
        stop_spawned(pid);

        /* A stale socket: bound, nobody listening. Replaced, and then served. */
        snprintf(path, sizeof(path), "%s/stale.sock", dir);
        {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };

                fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                ck_assert_int_ge(fd, 0);
                strcpy(sa.sun_path, path);
                ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
                close(fd);
        }
        ck_assert_int_eq(lstat(path, &st), 0);
        snprintf(log, sizeof(log), "%s/stale.log", dir);
        pid = spawn_daemon(path, 0, 022, log);
        ck_assert_msg(wait_listening(path, pid), "evd did not replace a stale socket (see %s)",
                      log);
        ck_assert(file_contains(log, "Replaced stale socket"));
        ck_assert_int_eq(lstat(path, &st2), 0);
        ck_assert(S_ISSOCK(st2.st_mode));

        /* A live one: a second daemon on the same path is refused; the first keeps it. */
        snprintf(log, sizeof(log), "%s/second.log", dir);
        pid2 = spawn_daemon(path, 0, 022, log);
        ck_assert_msg(wait_exit(pid2, TIMEOUT) > 0, "a second daemon started on a live socket");
        ck_assert(file_contains(log, "Another evd is already listening"));
        ck_assert_int_eq(lstat(path, &st), 0);
        ck_assert_msg(st.st_ino == st2.st_ino, "the second daemon replaced the live socket");
        connect_ping_as(path, 0);
        stop_spawned(pid);
        remove_tree(dir);
}
END_TEST

/* Per-uid limits hold across all connections of a uid (here three), do not touch other
 * uids, and are released when the uid's connections go: it can then use all of them again. */
START_TEST(test_per_uid_limits_release) {
        static const char *const args[] = { "--max-clients-per-uid=3", "--max-watches-per-uid=4",
                                            "--max-timers-per-uid=2", NULL };
        TestDaemon d;
        Bystander b;
        TestClient nb[4];
        json_t *r;
        int base, p[2];

        base = start_with_bystander(&d, args, &b);
        ck_assert_int_eq(chmod(d.dir, 0755), 0);
        make_pipe(p);
        for (int round = 0; round < 2; round++) {
                for (int i = 0; i < 3; i++) {
                        ck_assert_int_eq(test_client_connect_as(&nb[i], d.socket, NOBODY, NOBODY),
                                         0);
                        ping(&nb[i]);
                }
                ck_assert_int_eq(test_client_connect_as(&nb[3], d.socket, NOBODY, NOBODY), 0);
                r = next_reply(&nb[3], "a fourth connection of nobody");
                check_error(r, -32004, NULL, "null");
                json_decref(r);
                ck_assert(test_client_wait_eof(&nb[3], TIMEOUT));
                test_client_close(&nb[3]);
                /* 4 watches and 2 timers across the three, then each is refused. */
                for (int i = 0; i < 4; i++)
                        (void)watch_fd(&nb[i % 3], p[0], "edge", NULL);
                for (int i = 0; i < 2; i++)
                        call_ok(&nb[i], "timer", json_pack("{s:i}", "after", 100), NULL, 0);
                for (int i = 0; i < 3; i++) {
                        r = call(&nb[i], "watch",
                                 json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode",
                                           "edge"),
                                 &p[0], 1);
                        check_error(r, -32004, NULL, NULL);
                        ck_assert_int_eq(int_member(member(member(r, "error"), "data"), "limit"),
                                         4);
                        json_decref(r);
                        r = call(&nb[i], "timer", json_pack("{s:i}", "after", 100), NULL, 0);
                        check_error(r, -32004, NULL, NULL);
                        ck_assert_int_eq(int_member(member(member(r, "error"), "data"), "limit"),
                                         2);
                        json_decref(r);
                }
                /* Root is not nobody: unaffected (its bystander already watches one). */
                if (round == 0) {
                        (void)watch_fd(&b.c, p[0], "edge", NULL);
                        call_ok(&b.c, "timer", json_pack("{s:i}", "after", 100), NULL, 0);
                        call_ok(&b.c, "timer", json_pack("{s:i}", "after", 100), NULL, 0);
                }
                for (int i = 0; i < 3; i++)
                        test_client_close(&nb[i]);
                wait_status(&b.c, "clients", 1, TIMEOUT);
                wait_status(&b.c, "watches", 2, TIMEOUT);
                wait_status(&b.c, "timers", 2, TIMEOUT);
        }
        close_pair(p);
        /* The bystander's extra watch holds one more fd. */
        finish(&d, &b, base + 1);
}
END_TEST

/*
 * With the default limits, one unprivileged uid must not be able to take every fd the
 * daemon has: after nobody has watched as much as its quotas allow, over two connections,
 * another uid must still be able to connect and watch. The defaults allow 32,768 watches per
 * uid (16,384 per connection), each holding an fd, while the daemon's fd limit is its hard
 * RLIMIT_NOFILE (20,000 here).
 */
START_TEST(test_one_uid_cannot_take_all_fds) {
        TestDaemon d;
        Bystander b;
        TestClient nb[2], other;
        int fds[EVD_MAX_FDS], efd, base, code = 0;
        unsigned watched = 0, conn = 0;
        long nofile;
        json_t *r;

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(chmod(d.dir, 0755), 0);
        nofile = daemon_nofile(&d);
        efd = make_eventfd();
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = efd; /* 32 copies of one fd: the daemon gets 32 fds per packet */
        for (int i = 0; i < 2; i++)
                ck_assert_int_eq(test_client_connect_as(&nb[i], d.socket, NOBODY, NOBODY), 0);
        while (conn < 2 && watched < 40000) {
                unsigned got = watch_until_refused(&nb[conn], fds, EVD_MAX_FDS, &code);

                watched += got;
                if (got < EVD_MAX_FDS) {
                        if (code != -32004)
                                break; /* the daemon itself is out of fds */
                        conn++;        /* the per-connection quota: carry on with the other */
                }
        }
        /* The last free fds, one at a time. */
        while (conn < 2 && code != -32004 && watch_until_refused(&nb[conn], fds, 1, &code) == 1)
                watched++;
        printf("one uid: nobody watched %u fds (the daemon's limit is %ld), stopped by %d\n",
               watched, nofile, code);
        ck_assert_int_eq(test_client_connect_as(&other, d.socket, NOBODY - 1, NOBODY - 1), 0);
        ck_assert_msg(admitted(&other, &code),
                      "one uid holding %u watches locked out every other user: a new connection "
                      "of another uid was refused with %d",
                      watched, code);
        r = call(&other, "watch",
                 json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge"), &efd, 1);
        ck_assert_msg(json_object_get(r, "result"),
                      "one uid holding %u watches left none for another uid: error %d", watched,
                      error_code(r));
        json_decref(r);
        test_client_close(&other);
        for (int i = 0; i < 2; i++)
                test_client_close(&nb[i]);
        close(efd);
        finish(&d, &b, base);
}
END_TEST

/* Whether @v (an error object, recursively) holds the integer @n anywhere. */
static bool holds_integer(json_t *v, json_int_t n) {
        const char *key;
        json_t *item;
        size_t i;

        if (json_is_integer(v))
                return json_integer_value(v) == n;
        if (json_is_object(v)) {
                json_object_foreach(v, key, item)
                        if (holds_integer(item, n))
                                return true;
        }
        if (json_is_array(v)) {
                json_array_foreach(v, i, item)
                        if (holds_integer(item, n))
                                return true;
        }
        return false;
}

/*
 * Error replies never show another client's data or the daemon's addresses. Root holds a
 * watch and a timer tagged "secret-..." under the name "secret-name" and has just sent a
 * large packet full of a secret string (it sits in the daemon's receive buffer, shared by
 * all clients). Nobody then sends everything that fails: short broken JSON (whose parse error
 * quotes the input), invalid requests, methods and parameters aimed at root's ids, admin-only
 * calls, bad fds, too many fds, an oversize packet. No error it receives holds "secret", a
 * pointer-like hex number, or root's watch, timer or client id.
 */
START_TEST(test_error_replies_leak_nothing) {
        static const char *const broken[] = {
                "{",
                "{\"a\":",
                "[1,",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"",
                "\"unterminated",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}}",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",}",
                "tru",
                "[,]",
                "{\"x\"}",
        };
        TestDaemon d;
        Bystander b;
        TestClient root, nb;
        json_int_t rw, rt, rc, ids[3];
        json_t *replies = json_array(), *r, *item;
        char *big;
        size_t len, i;
        int base, p[2], fds[40];

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(chmod(d.dir, 0755), 0);
        ck_assert_int_eq(test_client_connect(&root, d.socket), 0);
        r = result(&root, "hello", json_pack("{s:i,s:s}", "protocol", 1, "client", "secret-name"),
                   NULL, 0);
        rc = int_member(r, "client_id");
        json_decref(r);
        make_pipe(p);
        rw = watch_fd(&root, p[0], "edge", json_string("secret-watch"));
        r = result(&root, "timer", json_pack("{s:i,s:s}", "after", 100, "tag", "secret-timer"),
                   NULL, 0);
        rt = int_member(r, "timer");
        json_decref(r);
        ids[0] = rw;
        ids[1] = rt;
        ids[2] = rc;
        big = malloc(EVD_MAX_PACKET + 2);
        ck_assert_ptr_nonnull(big);
        len = (size_t)sprintf(big, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{"
                                   "\"x\":\"");
        while (len < EVD_MAX_PACKET - 16)
                len += (size_t)sprintf(big + len, "secret-");
        len += (size_t)sprintf(big + len, "\"}}");
        r = raw_call(&root, big, len);
        check_error(r, -32602, "x", "1");
        json_decref(r);

        ck_assert_int_eq(test_client_connect_as(&nb, d.socket, NOBODY, NOBODY), 0);
        for (i = 0; i < ELEMENTSOF(broken); i++)
                json_array_append_new(replies, raw_call(&nb, broken[i], strlen(broken[i])));
        /* The same broken prefix as root's packet, cut short. */
        json_array_append_new(replies, raw_call(&nb, big, 80));
        json_array_append_new(replies,
                              call(&nb, "unwatch", json_pack("{s:I}", "watch", rw), NULL, 0));
        json_array_append_new(replies, call(&nb, "arm", json_pack("{s:I}", "watch", rw), NULL, 0));
        json_array_append_new(replies, call(&nb, "modify",
                                            json_pack("{s:I,s:s}", "watch", rw, "mode", "oneshot"),
                                            NULL, 0));
        json_array_append_new(replies,
                              call(&nb, "cancel", json_pack("{s:I}", "timer", rt), NULL, 0));
        json_array_append_new(replies,
                              call(&nb, "watches", json_pack("{s:I}", "client", rc), NULL, 0));
        json_array_append_new(replies,
                              call(&nb, "timers", json_pack("{s:I}", "client", rc), NULL, 0));
        json_array_append_new(replies, call(&nb, "clients", NULL, NULL, 0));
        json_array_append_new(replies, call(&nb, "monitor", NULL, NULL, 0));
        json_array_append_new(replies, call(&nb, "nope", json_pack("{s:I}", "watch", rw), NULL, 0));
        json_array_append_new(replies, call(&nb, "watch",
                                            json_pack("{s:I,s:[s],s:s}", "fd", rw, "events", "in",
                                                      "mode", "edge"),
                                            NULL, 0));
        json_array_append_new(
                replies, call(&nb, "watch",
                              json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge"),
                              &root.fd, 1));
        for (i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = make_eventfd();
        ck_assert_int_eq(test_client_sendmsg(&nb, big, 100, fds, 40), 0);
        json_array_append_new(replies, next_reply(&nb, "40 fds"));
        for (i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        big[len] = ' ';
        memset(big + len, ' ', EVD_MAX_PACKET + 1 - len);
        ck_assert_int_eq(test_client_sendmsg(&nb, big, EVD_MAX_PACKET + 1, NULL, 0), 0);
        json_array_append_new(replies, next_reply(&nb, "an oversize packet"));

        json_array_foreach(replies, i, item) {
                char *s = dump(item);

                ck_assert_msg(json_object_get(item, "error"), "reply %zu is not an error: %s", i,
                              s);
                ck_assert_msg(!strstr(s, "secret"), "another client's data in %s", s);
                for (size_t k = 0; k < ELEMENTSOF(ids); k++)
                        ck_assert_msg(!holds_integer(json_object_get(item, "error"), ids[k]),
                                      "root's id %lld in %s", (long long)ids[k], s);
                free(s);
        }
        json_decref(replies);
        free(big);
        test_client_close(&nb);
        test_client_close(&root);
        close_pair(p);
        finish(&d, &b, base);
}
END_TEST

/* ---- suite ---------------------------------------------------------------------------- */

static TCase *tcase(Suite *s, const char *name, int timeout) {
        TCase *tc = tcase_create(name);

        tcase_set_timeout(tc, timeout);
        suite_add_tcase(s, tc);
        return tc;
}

static Suite *hostile_suite(void) {
        Suite *s = suite_create("hostile");
        TCase *tc;

        tc = tcase(s, "input", 60);
        tcase_add_test(tc, test_extreme_numbers);
        tcase_add_test(tc, test_deep_nesting);
        tcase_add_test(tc, test_nul_bytes);
        tcase_add_test(tc, test_batch_sizes);
        tcase_add_test(tc, test_fd_flood);
        tcase_add_test(tc, test_watch_epoll_and_uring);
        tcase_add_test(tc, test_fd_cycle_through_queue);
        tcase_add_test(tc, test_disconnect_mid_batch);
        tcase_add_test(tc, test_half_close);
        tcase_add_test(tc, test_requests_during_shutdown);

        tc = tcase(s, "faults", 120);
        tcase_add_test(tc, test_mass_client_death);
        tcase_add_test(tc, test_slow_reader_coalesced);
        tcase_add_test(tc, test_slow_reader_dropped);
        tcase_add_test(tc, test_fd_exhaustion);
        tcase_add_test(tc, test_scale);
        tcase_add_test(tc, test_client_burst);

        tc = tcase(s, "access", 60);
        tcase_add_test(tc, test_socket_modes);
        tcase_add_test(tc, test_socket_dir_mode_ignores_umask);
        tcase_add_test(tc, test_socket_path_rules);
        tcase_add_test(tc, test_per_uid_limits_release);
        tcase_add_test(tc, test_one_uid_cannot_take_all_fds);
        tcase_add_test(tc, test_error_replies_leak_nothing);
        return s;
}

/* The rlimit wrapper (see the top of the file): never returns. */
static _Noreturn void exec_with_nofile(const char *real, char **argv) {
        const char *n = getenv("EVD_HOSTILE_NOFILE");
        struct rlimit rl;

        if (n) {
                rl.rlim_cur = rl.rlim_max = strtoul(n, NULL, 10);
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                        perror("setrlimit");
                        _exit(127);
                }
        }
        argv[0] = (char *)real;
        unsetenv("EVD_HOSTILE_NOFILE");
        execv(real, argv);
        perror("execv");
        _exit(127);
}

int main(int argc, char **argv) {
        const char *backend = getenv("EVD_TEST_BACKEND");
        const char *wrap = getenv("EVD_HOSTILE_EXEC");
        struct rlimit rl;
        SRunner *sr;
        ssize_t n;
        int failed;

        if (wrap) {
                char *real = strdup(wrap);

                unsetenv("EVD_HOSTILE_EXEC");
                exec_with_nofile(real ? real : wrap, argv);
        }
        (void)argc;
        n = readlink("/proc/self/exe", arg_self, sizeof(arg_self) - 1);
        if (n > 0)
                arg_self[n] = 0;
        else if (!realpath(argv[0], arg_self))
                arg_self[0] = 0;

        /* The measurements printed by the tests must survive a failing (forked) test. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        /* Writes to pipes and sockets whose reader is gone must fail, not kill the test. */
        (void)signal(SIGPIPE, SIG_IGN);
        /* Load tests size themselves to this limit: take all of it. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }

        /* Skip (77) only where the kernel refuses io_uring; the epoll run still covers all. */
        if (backend && strcmp(backend, "io_uring") == 0) {
                EngineOptions o = { .backend = ENGINE_BACKEND_IO_URING };
                Engine *e = NULL;
                int r = engine_new(&e, &o);

                if (r == -ENOSYS || r == -EPERM) {
                        printf("io_uring refused by the kernel (%s): skipping\n", strerror(-r));
                        return 77;
                }
                (void)engine_free(e);
        }

        sr = srunner_create(hostile_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
