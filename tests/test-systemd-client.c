/* test-systemd-client.c - a small evd client for the systemd shell tests
 *
 * The shell tests drive a real service manager and need a client that connects to the
 * activated socket, proves the daemon works from inside its sandbox, and prints what the
 * script checks afterwards (its pid, for the journal's EVD_CLIENT_PID=). It speaks the
 * protocol through the protocol library only; every wait is bounded. Exit status: 0 on
 * success, 1 on any failure (with a message on stderr), 2 on bad usage.
 *
 *   test-systemd-client SOCKET hello          "pid=P client_id=N admin=B backend=NAME"
 *   test-systemd-client SOCKET fds            watch a pipe, a pty, a pidfd and an AF_INET
 *                                              socket; each must report `ready`; its own
 *                                              connection must be refused
 *   test-systemd-client SOCKET wedge SECONDS  debug-wedge; returns on the reply or on EOF
 *   test-systemd-client SOCKET reexec         watch a pipe, `reexec`, wait for the next
 *                                              generation: same pid, the watch (armed
 *                                              oneshot) reports after the re-exec:
 *                                              "reexec: generation N pid P watch kept"
 *   test-systemd-client SOCKET restart CMD... watch a pipe, then run CMD (systemctl restart)
 *                                              while connected; an event and a request
 *                                              sent while it runs are answered after it,
 *                                              on the same connection, by a new pid:
 *                                              "restart: pid A -> B, connection and watch kept"
 *   test-systemd-client SOCKET stop CMD...    watch a pipe, run CMD (systemctl stop): the
 *                                              daemon closes the connection: "stop: EOF"
 */

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "macro.h"
#include "wire.h"

#define TIMEOUT_MS 5000

static int conn_fd = -1;
static json_int_t next_id = 1;
static json_t *backlog; /* notifications that arrived while waiting for a reply */
static char buf[EVD_MAX_PACKET + 1];

_Noreturn __attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        fputs("test-systemd-client: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(1);
}

static long long now_ms(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void connect_to(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        if (strlen(path) >= sizeof(sa.sun_path))
                die("socket path too long: %s", path);
        strcpy(sa.sun_path, path);
        conn_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (conn_fd < 0 || connect(conn_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                die("cannot connect to %s: %s", path, strerror(errno));
}

static void send_request(const char *method, json_t *params, const int *fds, size_t n_fds,
                         json_int_t *ret_id) {
        json_t *req = jsonrpc_request_new(next_id, method, params);
        char *out = NULL;
        size_t len;
        int r;

        if (!req || jsonrpc_encode_alloc(req, &out, &len) < 0)
                die("cannot encode %s", method);
        r = wire_send_blocking(conn_fd, out, len, fds, n_fds);
        if (r < 0)
                die("cannot send %s: %s", method, strerror(-r));
        free(out);
        json_decref(req);
        *ret_id = next_id++;
}

/* The next packet, parsed; NULL on EOF (*@ret_eof set), timeout or error. */
static json_t *recv_packet(int timeout_ms, bool *ret_eof) {
        _cleanup_fd_list_ FdList fds = FD_LIST_NULL;
        WirePacket pkt;
        json_t *v = NULL;
        int r;

        *ret_eof = false;
        r = wire_recv_blocking(conn_fd, buf, sizeof(buf), &fds, &pkt, timeout_ms);
        if (r < 0 || pkt.eof) {
                *ret_eof = r >= 0 || r == -ECONNRESET;
                return NULL;
        }
        if (pkt.truncated || jsonrpc_parse(buf, pkt.len, &v, NULL) < 0)
                die("the daemon sent a packet that does not parse");
        return v;
}

/* Sort one packet: the reply to @id goes to *@ret_reply, everything else to the backlog. */
static void sort_packet(json_t *v, json_int_t id, json_t **ret_reply) {
        size_t n = json_is_array(v) ? json_array_size(v) : 1;

        for (size_t i = 0; i < n; i++) {
                json_t *m = json_is_array(v) ? json_array_get(v, i) : v;
                json_t *mid = json_object_get(m, "id");

                if (!json_object_get(m, "method") && json_is_integer(mid) &&
                    json_integer_value(mid) == id)
                        *ret_reply = json_incref(m);
                else
                        json_array_append(backlog, m);
        }
}

/* @params stolen. Returns the whole reply (a new reference); dies without one. */
static json_t *call_reply(const char *method, json_t *params, const int *fds, size_t n_fds) {
        long long deadline = now_ms() + TIMEOUT_MS;
        json_t *reply = NULL;
        json_int_t id;

        send_request(method, params, fds, n_fds, &id);
        while (!reply) {
                bool eof;
                json_t *v =
                        now_ms() < deadline ? recv_packet((int)(deadline - now_ms()), &eof) : NULL;

                if (!v)
                        die("no reply to %s", method);
                sort_packet(v, id, &reply);
                json_decref(v);
        }
        return reply;
}

/* @params stolen. Returns the `result` (a new reference); dies on an error reply. */
static json_t *call(const char *method, json_t *params, const int *fds, size_t n_fds) {
        json_t *reply = call_reply(method, params, fds, n_fds), *result;

        result = json_object_get(reply, "result");
        if (!result) {
                char *text = json_dumps(reply, JSON_COMPACT);
                die("%s failed: %s", method, text ? text : "?");
        }
        json_incref(result);
        json_decref(reply);
        return result;
}

/* Wait for `ready` on watch @watch_id (from the backlog first). */
static void expect_ready(json_int_t watch_id, const char *what) {
        long long deadline = now_ms() + TIMEOUT_MS;

        for (;;) {
                size_t i;
                json_t *m, *v, *none = NULL;
                bool eof;

                json_array_foreach(backlog, i, m) {
                        const char *name = json_string_value(json_object_get(m, "method"));
                        json_t *w = json_object_get(json_object_get(m, "params"), "watch");

                        if (name && strcmp(name, "ready") == 0 &&
                            json_integer_value(w) == watch_id) {
                                json_array_remove(backlog, i);
                                return;
                        }
                }
                if (now_ms() >= deadline)
                        die("no `ready` for the %s watch", what);
                v = recv_packet((int)(deadline - now_ms()), &eof);
                if (!v)
                        die("no `ready` for the %s watch (%s)", what, eof ? "EOF" : "timeout");
                sort_packet(v, 0, &none);
                json_decref(v);
        }
}

static json_int_t watch(int fd, const char *event, const char *what) {
        json_t *result = call("watch",
                              json_pack("{s:i,s:[s],s:s,s:s}", "fd", 0, "events", event, "mode",
                                        "oneshot", "tag", what),
                              &fd, 1);
        json_int_t id = json_integer_value(json_object_get(result, "watch"));

        json_decref(result);
        if (id <= 0)
                die("watch for the %s returned no id", what);
        return id;
}

static void hello(void) {
        json_t *r = call("hello",
                         json_pack("{s:i,s:s}", "protocol", 1, "client", "test-systemd-client"),
                         NULL, 0);
        const char *backend = json_string_value(json_object_get(r, "backend"));

        printf("pid=%d client_id=%lld admin=%s backend=%s\n", (int)getpid(),
               (long long)json_integer_value(json_object_get(r, "client_id")),
               json_is_true(json_object_get(r, "admin")) ? "true" : "false",
               backend ? backend : "?");
        json_decref(r);
}

/* Fds of kinds the daemon's sandbox could not open itself: they must still be watchable. */
static void fds(void) {
        int p[2], gate[2], master, slave, pidfd, inet;
        json_int_t w_pipe, w_pty, w_pidfd, w_inet;
        pid_t child;

        hello();
        if (pipe2(p, O_CLOEXEC) < 0 || pipe2(gate, O_CLOEXEC) < 0)
                die("pipe: %s", strerror(errno));
        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
                die("cannot open a pty: %s", strerror(errno));
        slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0)
                die("cannot open the pty's slave: %s", strerror(errno));
        child = fork();
        if (child < 0)
                die("fork: %s", strerror(errno));
        if (child == 0) {
                char c;
                (void)read(gate[0], &c, 1);
                _exit(0);
        }
        pidfd = (int)syscall(SYS_pidfd_open, child, 0);
        if (pidfd < 0)
                die("pidfd_open: %s", strerror(errno));
        inet = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (inet < 0)
                die("cannot create an AF_INET socket: %s", strerror(errno));

        w_pipe = watch(p[0], "in", "pipe");
        w_pty = watch(master, "in", "pty");
        w_pidfd = watch(pidfd, "in", "pidfd");
        w_inet = watch(inet, "out", "AF_INET socket");

        if (write(p[1], "x", 1) != 1 || write(slave, "x\n", 2) != 2 || write(gate[1], "x", 1) != 1)
                die("write: %s", strerror(errno));
        expect_ready(w_pipe, "pipe");
        expect_ready(w_pty, "pty");
        expect_ready(w_pidfd, "pidfd");
        expect_ready(w_inet, "AF_INET socket");
        (void)waitpid(child, NULL, 0);
        printf("ready: pipe pty pidfd inet\n");

        /* The client's own connection: refused (evd would hold it open for ever), also
         * when the manager, not evd, called listen() on the socket. */
        {
                json_t *r = call_reply("watch",
                                       json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in",
                                                 "mode", "edge"),
                                       &conn_fd, 1);
                json_int_t code = json_integer_value(
                        json_object_get(json_object_get(r, "error"), "code"));

                json_decref(r);
                if (code != -32602)
                        die("watching its own connection: %s",
                            code ? "unexpected error" : "accepted");
                printf("own connection: refused\n");
        }
}

/* Blocks the daemon's loop; the watchdog kills it before it answers, so EOF is expected. */
static void wedge(const char *seconds) {
        char *end;
        double s = strtod(seconds, &end);
        long long deadline;
        json_int_t id;

        if (*end || s <= 0)
                die("wedge: bad number of seconds: %s", seconds);
        send_request("debug-wedge", json_pack("{s:f}", "seconds", s), NULL, 0, &id);
        deadline = now_ms() + (long long)(s * 1000) + TIMEOUT_MS;
        for (;;) {
                json_t *v, *reply = NULL;
                bool eof;

                if (now_ms() >= deadline)
                        die("debug-wedge: neither a reply nor EOF");
                v = recv_packet((int)(deadline - now_ms()), &eof);
                if (!v) {
                        if (!eof)
                                die("debug-wedge: neither a reply nor EOF");
                        printf("wedge: EOF\n");
                        return;
                }
                sort_packet(v, id, &reply);
                json_decref(v);
                if (reply) {
                        bool ok = json_object_get(reply, "result") != NULL;
                        json_decref(reply);
                        if (!ok)
                                die("debug-wedge failed (is EVD_DEBUG=1 set for the daemon?)");
                        printf("wedge: replied\n");
                        return;
                }
        }
}

static json_int_t status_field(const char *section, const char *key) {
        json_t *st = call("status", NULL, NULL, 0);
        json_int_t v = json_integer_value(json_object_get(section ? json_object_get(st, section) : st, key));

        json_decref(st);
        return v;
}

/* The connection and the watch live through the re-exec; the sandbox must allow it. */
static void reexec(void) {
        json_int_t pid = status_field(NULL, "pid"), gen = status_field("reexec", "generation"), w;
        long long deadline = now_ms() + TIMEOUT_MS;
        json_t *r;
        int p[2];

        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                die("pipe: %s", strerror(errno));
        w = watch(p[0], "in", "pipe");
        json_decref(call("reexec", NULL, NULL, 0));
        while (status_field("reexec", "generation") == gen) {
                if (status_field("reexec", "failures") > 0)
                        die("the re-exec failed");
                if (now_ms() >= deadline)
                        die("no new generation within %d ms", TIMEOUT_MS);
                (void)poll(NULL, 0, 20);
        }
        if (status_field(NULL, "pid") != pid)
                die("the pid changed");
        if (write(p[1], "x", 1) != 1)
                die("write: %s", strerror(errno));
        expect_ready(w, "pipe");
        r = call("ping", NULL, NULL, 0);
        json_decref(r);
        printf("reexec: generation %lld pid %lld watch kept\n", (long long)status_field("reexec", "generation"),
               (long long)pid);
        close(p[0]);
        close(p[1]);
}

/* Run @argv (a service manager command) to its end, while our connection stays open. */
static void run_command(char **argv) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                die("fork: %s", strerror(errno));
        if (pid == 0) {
                (void)close(conn_fd);
                execvp(argv[0], argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("%s failed", argv[0]);
}

/* Through a restart by the fd store: the same connection (client id), a new process. */
static void restart(char **argv) {
        json_t *r = call("hello", json_pack("{s:i,s:s}", "protocol", 1, "client", "restart"), NULL, 0);
        json_int_t client_id = json_integer_value(json_object_get(r, "client_id")), pid, new_pid, w, id;
        int p[2];

        json_decref(r);
        pid = status_field(NULL, "pid");
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                die("pipe: %s", strerror(errno));
        w = watch(p[0], "in", "pipe");
        run_command(argv);
        if (write(p[1], "x", 1) != 1)
                die("write: %s", strerror(errno));
        expect_ready(w, "pipe");
        send_request("ping", NULL, NULL, 0, &id);
        r = NULL;
        for (long long deadline = now_ms() + TIMEOUT_MS; !r;) {
                bool eof;
                json_t *v = recv_packet((int)MAX(deadline - now_ms(), 0), &eof);

                if (!v)
                        die(eof ? "the connection was closed by the restart" : "no reply after the restart");
                sort_packet(v, id, &r);
                json_decref(v);
        }
        json_decref(r);
        r = call("hello", json_pack("{s:i}", "protocol", 1), NULL, 0);
        if (json_integer_value(json_object_get(r, "client_id")) != client_id)
                die("the client id changed: not the same connection");
        json_decref(r);
        new_pid = status_field(NULL, "pid");
        if (new_pid == pid)
                die("the pid did not change: not a restart");
        printf("restart: pid %lld -> %lld, connection and watch kept\n", (long long)pid, (long long)new_pid);
        close(p[0]);
        close(p[1]);
}

/* A stop that is not a restart: every stored connection is closed. */
static void stop(char **argv) {
        int p[2];

        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                die("pipe: %s", strerror(errno));
        (void)watch(p[0], "in", "pipe");
        run_command(argv);
        for (long long deadline = now_ms() + TIMEOUT_MS;;) {
                bool eof;
                json_t *v = recv_packet((int)MAX(deadline - now_ms(), 0), &eof);

                if (!v && eof)
                        break;
                if (!v)
                        die("the connection stayed open after the stop");
                json_decref(v);
        }
        printf("stop: EOF\n");
        close(p[0]);
        close(p[1]);
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: %s SOCKET hello|fds|reexec|wedge SECONDS|restart CMD...|stop CMD...\n", argv[0]);
                return 2;
        }
        (void)signal(SIGPIPE, SIG_IGN);
        backlog = json_array();
        connect_to(argv[1]);
        if (strcmp(argv[2], "hello") == 0)
                hello();
        else if (strcmp(argv[2], "fds") == 0)
                fds();
        else if (strcmp(argv[2], "wedge") == 0 && argc == 4)
                wedge(argv[3]);
        else if (strcmp(argv[2], "reexec") == 0)
                reexec();
        else if (strcmp(argv[2], "restart") == 0 && argc > 3)
                restart(argv + 3);
        else if (strcmp(argv[2], "stop") == 0 && argc > 3)
                stop(argv + 3);
        else {
                fprintf(stderr, "%s: unknown command %s\n", argv[0], argv[2]);
                return 2;
        }
        fflush(stdout);
        json_decref(backlog);
        (void)safe_close(conn_fd);
        return 0;
}
