/*
 * evctl.c - the command line of evd, built on libevd's public API only.
 *
 * One function per command. Human output is aligned tables and key/value blocks with
 * units; --json prints exactly one JSON document per command (monitor and timer: one
 * object per line) so scripts never parse the human form. Commands that wait (monitor,
 * timer, wait, sleep) run libevd from their own poll() loop together with a signalfd, so
 * Ctrl-C ends them cleanly. Errors are one line on stderr; the exit codes are part of the
 * interface (evctl(1)):
 *   0 success, 1 failure (the daemon refused, or another error), 2 usage,
 *   3 evd cannot be reached (not running, connection lost), 4 timeout (wait),
 *   5 permission denied (admin-only), 130 interrupted (wait, sleep).
 */

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "build-config.h"
#include "evctl-format.h"
#include "evd.h"

enum {
        EXIT_FAIL = 1,
        EXIT_USAGE = 2,
        EXIT_UNREACHABLE = 3,
        EXIT_TIMEOUT = 4,
        EXIT_PERMISSION = 5,
        EXIT_INTERRUPTED = 130,
};

#define CALL_TIMEOUT_MS 10000
#define PAGE_LIMIT 1000

static const char *arg_socket;
static bool arg_json;
static struct evd_client *client;

static void freep_json(json_t **j) {
        json_decref(*j);
}
#define _cleanup_json_ __attribute__((cleanup(freep_json)))

static void tablep(Table **t) {
        (void)table_free(*t);
}
#define _cleanup_table_ __attribute__((cleanup(tablep)))

static void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void errorf(const char *fmt, ...) {
        va_list ap;

        fputs("evctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* ---- connecting, and saying why not ---------------------------------------------------- */

static int connect_daemon(void) {
        const char *path;
        int r;

        r = evd_client_new(&client);
        if (r < 0) {
                errorf("cannot create a client: %s", evd_strerror(r));
                return EXIT_FAIL;
        }
        (void)evd_client_set_name(client, "evctl");
        r = evd_client_connect(client, arg_socket);
        if (r >= 0)
                return 0;

        path = evd_client_socket_path(client);
        switch (r) {
        case -ENOENT:
        case -ECONNREFUSED:
                errorf("evd is not running (%s %s); start it with \"evd%s%s\" or \"systemctl start "
                       "evd\"",
                       r == -ENOENT ? "no socket at" : "nothing listens on", path,
                       arg_socket ? " --socket " : "", arg_socket ? arg_socket : "");
                return EXIT_UNREACHABLE;
        case -EACCES:
        case -EPERM:
                errorf("permission denied connecting to evd at %s (check the socket's mode and "
                       "your groups)",
                       path);
                return EXIT_UNREACHABLE;
        case -ENXIO:
                errorf("no evd socket to connect to: XDG_RUNTIME_DIR is not set; pass --socket "
                       "PATH or set EVD_SOCKET");
                return EXIT_UNREACHABLE;
        case -ENAMETOOLONG:
                errorf("socket path too long: %s", path);
                return EXIT_USAGE;
        default:
                errorf("cannot connect to evd at %s: %s", path ? path : "(default socket)",
                       evd_strerror(r));
                return EXIT_UNREACHABLE;
        }
}

/* Report a failed call and pick the exit code. */
static int call_failed(const char *what, int r) {
        const struct evd_error *e = evd_client_last_error(client);
        bool bare = !what;

        if (!what)
                what = "evd";
        if (e) {
                errorf("%s: %s%s%s", what, e->message, e->why ? ": " : "", e->why ? e->why : "");
                if (e->code == EVD_E_PERMISSION)
                        return EXIT_PERMISSION;
                return EXIT_FAIL;
        }
        if (r == -ETIMEDOUT) {
                errorf("%s: evd did not answer within %d s", what, CALL_TIMEOUT_MS / 1000);
                return EXIT_FAIL;
        }
        if (r == -ENOTCONN || r == -ECONNRESET || r == -ESHUTDOWN || r == -EPIPE) {
                errorf("%s%slost the connection to evd at %s (%s)", bare ? "" : what,
                       bare ? "" : ": ", evd_client_socket_path(client),
                       r == -ESHUTDOWN ? "it is shutting down" : evd_strerror(r));
                return EXIT_UNREACHABLE;
        }
        errorf("%s: %s", what, evd_strerror(r));
        return EXIT_FAIL;
}

static int call(const char *method, json_t *params, json_t **ret) {
        int r = evd_call(client, method, params, CALL_TIMEOUT_MS, ret);

        return r < 0 ? call_failed(method, r) : 0;
}

static void print_json(json_t *v);

/* print_json() for a temporary: @v is stolen. */
static void print_json_new(json_t *v) {
        print_json(v);
        json_decref(v);
}

static void print_json(json_t *v) {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

        if (s) {
                puts(s);
                free(s);
        }
        fflush(stdout);
}

/* ---- small readers of daemon results --------------------------------------------------- */

static json_int_t jint(json_t *o, const char *key) {
        return json_integer_value(json_object_get(o, key));
}

static double jnum(json_t *o, const char *key) {
        return json_number_value(json_object_get(o, key));
}

static const char *jstr(json_t *o, const char *key) {
        const char *s = json_string_value(json_object_get(o, key));

        return s ? s : "";
}

static const char *yesno(json_t *o, const char *key) {
        return json_is_true(json_object_get(o, key)) ? "yes" : "no";
}

static const char *fmt_int(json_t *o, const char *key, char buf[static FORMAT_MAX]) {
        snprintf(buf, FORMAT_MAX, "%lld", (long long)jint(o, key));
        return buf;
}

/* A tag as compact JSON, shortened for a table cell. */
static const char *fmt_tag(json_t *o, char buf[static FORMAT_MAX]) {
        json_t *tag = json_object_get(o, "tag");
        char *s;

        if (!tag || json_is_null(tag))
                return "-";
        s = json_dumps(tag, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s)
                return "?";
        if (strlen(s) > 40)
                snprintf(buf, FORMAT_MAX, "%.37s...", s);
        else
                snprintf(buf, FORMAT_MAX, "%s", s);
        free(s);
        return buf;
}

static const char *fmt_events(json_t *array, char buf[static FORMAT_MAX]) {
        size_t i, o = 0;
        json_t *e;

        buf[0] = 0;
        json_array_foreach(array, i, e) {
                int n = snprintf(buf + o, FORMAT_MAX - o, "%s%s", i ? "," : "",
                                 json_string_value(e) ? json_string_value(e) : "?");

                if (n < 0 || (size_t)n >= FORMAT_MAX - o)
                        break;
                o += (size_t)n;
        }
        return buf;
}

/* Every page of a listing: {"<key>": [...all items...], "total": n}. Return: 0 or as
 * evd_call() (nothing printed). */
static int fetch_pages(const char *method, const char *key, json_int_t client_id, json_t **ret) {
        json_t *all = json_array();
        json_int_t offset = 0;
        int r;

        if (!all)
                return -ENOMEM;
        for (;;) {
                _cleanup_json_ json_t *page = NULL;
                json_t *params = json_pack("{s:I,s:i}", "offset", offset, "limit", PAGE_LIMIT),
                       *next;

                if (client_id > 0)
                        json_object_set_new(params, "client", json_integer(client_id));
                r = evd_call(client, method, params, CALL_TIMEOUT_MS, &page);
                if (r < 0) {
                        json_decref(all);
                        return r;
                }
                json_array_extend(all, json_object_get(page, key));
                next = json_object_get(page, "next");
                /* A page may end early (packet size): go on from where it stopped. */
                if (!json_is_integer(next) || json_integer_value(next) <= offset)
                        break;
                offset = json_integer_value(next);
        }
        *ret = json_pack("{s:o,s:I}", key, all, "total", (json_int_t)json_array_size(all));
        return *ret ? 0 : -ENOMEM;
}

static int fetch_all(const char *method, const char *key, json_int_t client_id, json_t **ret) {
        int r = fetch_pages(method, key, client_id, ret);

        return r < 0 ? call_failed(method, r) : 0;
}

/* ---- waiting: libevd in a poll() loop with Ctrl-C ------------------------------------- */

static int sigfd = -1;

static int signals_block(void) {
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        return sigfd < 0 ? -errno : 0;
}

static bool loop_done;
static int loop_exit;

/* Dispatch until a callback sets loop_done. Return: loop_exit, EXIT_INTERRUPTED on a
 * signal (or 0 if @signal_ok), EXIT_UNREACHABLE if the connection went. */
static int loop_run(bool signal_ok) {
        for (;;) {
                struct pollfd p[2] = {
                        {.fd = evd_client_fd(client), .events = POLLIN},
                        {.fd = sigfd, .events = POLLIN},
                };
                int r = evd_client_dispatch(client);

                if (loop_done)
                        return loop_exit;
                if (r < 0)
                        return call_failed(NULL, r);
                if (poll(p, 2, -1) < 0 && errno != EINTR) {
                        errorf("poll: %s", strerror(errno));
                        return EXIT_FAIL;
                }
                if (p[1].revents & POLLIN)
                        return signal_ok ? 0 : EXIT_INTERRUPTED;
        }
}

static double now_realtime(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_mono(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "1.5", "250ms", "2s", "3m", "1h" -> seconds; -1 if invalid. */
static double parse_seconds(const char *s) {
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || !isfinite(v) || v < 0)
                return -1;
        if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
                return v;
        if (strcmp(end, "ms") == 0)
                return v / 1e3;
        if (strcmp(end, "us") == 0)
                return v / 1e6;
        if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
                return v * 60;
        if (strcmp(end, "h") == 0)
                return v * 3600;
        return -1;
}

static uint64_t to_usec(double seconds) {
        return (uint64_t)llround(seconds * 1e6);
}

/* ---- commands ------------------------------------------------------------------------- */

typedef struct Command Command;
typedef int (*command_fn)(int argc, char **argv);

struct Command {
        const char *name;
        command_fn fn;
        const char *args;
        const char *summary;
        const char *help; /* options, one per line */
};

static const Command *find_command(const char *name);

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *cmd, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "evctl %s: ", cmd);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (see evctl %s --help)\n", cmd);
        return EXIT_USAGE;
}

static void command_help(const Command *c) {
        printf("Usage: evctl [--socket PATH] [--json] %s%s%s\n\n%s\n", c->name, *c->args ? " " : "",
               c->args, c->summary);
        if (c->help && *c->help)
                printf("\n%s", c->help);
        printf("\n  -h, --help            show this help\n");
}

/* Options every command takes (also before the command): --help, --json, --socket. */
#define COMMON_OPTIONS                                                                             \
        {"help", no_argument, NULL, 'h'}, {"json", no_argument, NULL, 'j'},                        \
                {"socket", required_argument, NULL, 's'},
#define COMMON_SHORT "+hjs:"

/* Return: 0 handled, 1 help printed (exit 0), -1 not a common option. */
static int common_option(int c, const char *name) {
        switch (c) {
        case 'h':
                command_help(find_command(name));
                return 1;
        case 'j':
                arg_json = true;
                return 0;
        case 's':
                arg_socket = optarg;
                return 0;
        default:
                return -1;
        }
}

#define HANDLE_COMMON(c, name)                                                                     \
        default: {                                                                                 \
                int _h = common_option(c, name);                                                   \
                if (_h > 0)                                                                        \
                        return 0;                                                                  \
                if (_h < 0)                                                                        \
                        return usage_error(name, "unknown option");                                \
                break;                                                                             \
        }

static int parse_simple(int argc, char **argv, const char *name, int max_args) {
        static const struct option options[] = {COMMON_OPTIONS{NULL, 0, NULL, 0}};
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, COMMON_SHORT, options, NULL)) >= 0) {
                int h = common_option(c, name);

                if (h > 0)
                        return -1;
                if (h < 0)
                        return usage_error(name, "unknown option");
        }
        if (argc - optind > max_args)
                return usage_error(name, "unexpected argument \"%s\"", argv[optind + max_args]);
        return 0;
}

#define PARSE_SIMPLE(name, max)                                                                    \
        do {                                                                                       \
                int _r = parse_simple(argc, argv, name, max);                                      \
                if (_r)                                                                            \
                        return _r < 0 ? 0 : _r;                                                    \
        } while (0)

static int cmd_status(int argc, char **argv) {
        _cleanup_json_ json_t *s = NULL;
        char b[FORMAT_MAX];
        json_t *f;
        size_t i;
        int r;

        PARSE_SIMPLE("status", 0);
        if ((r = connect_daemon()) || (r = call("status", NULL, &s)))
                return r;
        if (arg_json) {
                print_json(s);
                return 0;
        }
        printf("evd %s (protocol %lld), pid %lld\n", jstr(s, "version"),
               (long long)jint(s, "protocol"), (long long)jint(s, "pid"));
        printf("  %-15s %s\n", "Socket:", evd_client_socket_path(client));
        printf("  %-15s %s\n", "Uptime:", format_duration(jnum(s, "uptime"), b));
        printf("  %-15s %s", "Backend:", jstr(s, "backend"));
        json_array_foreach(json_object_get(s, "features"), i, f)
                printf("%s%s", i ? ", " : " (", json_string_value(f));
        printf("%s\n", json_array_size(json_object_get(s, "features")) ? ")" : "");
        printf("  %-15s %s\n", "Clients:", format_count((uint64_t)jint(s, "clients"), b));
        printf("  %-15s %s\n", "Watches:", format_count((uint64_t)jint(s, "watches"), b));
        printf("  %-15s %s\n", "Timers:", format_count((uint64_t)jint(s, "timers"), b));
        printf("  %-15s %s\n",
               "Notifications:", format_count((uint64_t)jint(s, "notifications"), b));
        printf("  %-15s %s\n", "State:",
               json_is_true(json_object_get(s, "shutting_down")) ? "shutting down" : "running");
        return 0;
}

static int cmd_clients(int argc, char **argv) {
        static const char *const headers[] = {">CLIENT", ">PID",      ">UID",      "NAME",
                                              "ADMIN",   "MONITOR",   ">WATCHES",  ">TIMERS",
                                              ">QUEUED", ">REQUESTS", ">NOTIFIED", ">CONNECTED"};
        _cleanup_json_ json_t *all = NULL;
        _cleanup_table_ Table *t = NULL;
        char b[FORMAT_MAX];
        json_t *c;
        size_t i;
        int r;

        PARSE_SIMPLE("clients", 0);
        if ((r = connect_daemon()) || (r = fetch_all("clients", "clients", 0, &all)))
                return r;
        if (arg_json) {
                print_json(all);
                return 0;
        }
        t = table_new(12, headers);
        if (!t)
                return EXIT_FAIL;
        json_array_foreach(json_object_get(all, "clients"), i, c) {
                table_add(t, fmt_int(c, "client", b));
                table_add(t, fmt_int(c, "pid", b));
                table_add(t, fmt_int(c, "uid", b));
                table_add(t, json_is_string(json_object_get(c, "name")) ? jstr(c, "name") : "-");
                table_add(t, yesno(c, "admin"));
                table_add(t, yesno(c, "monitor"));
                table_add(t, format_count((uint64_t)jint(c, "watches"), b));
                table_add(t, format_count((uint64_t)jint(c, "timers"), b));
                table_add(t, format_bytes((uint64_t)jint(c, "queued_bytes"), b));
                table_add(t, format_count((uint64_t)jint(c, "requests"), b));
                table_add(t, format_count((uint64_t)jint(c, "notifications"), b));
                table_add(t, format_duration(jnum(c, "connected"), b));
        }
        table_print(t, "No clients.");
        return 0;
}

/* "--client ID", or every client (admin). */
static int parse_client_option(int argc, char **argv, const char *name, json_int_t *ret) {
        static const struct option options[] = {
                COMMON_OPTIONS{"client", required_argument, NULL, 'c'}, {NULL, 0, NULL, 0}};
        int c;

        *ret = 0;
        optind = 1;
        while ((c = getopt_long(argc, argv, COMMON_SHORT "c:", options, NULL)) >= 0)
                switch (c) {
                case 'c': {
                        char *end;
                        long long v = strtoll(optarg, &end, 10);

                        if (*end || end == optarg || v <= 0)
                                return usage_error(
                                        name, "--client: expected a client id, got \"%s\"", optarg);
                        *ret = v;
                        break;
                }
                default: {
                        int h = common_option(c, name);

                        if (h > 0)
                                return -1;
                        if (h < 0)
                                return usage_error(name, "unknown option");
                        break;
                }
                }
        if (optind < argc)
                return usage_error(name, "unexpected argument \"%s\"", argv[optind]);
        return 0;
}

/* Items of @method for one client, or for every client (listing "clients" needs admin). */
static int fetch_per_client(const char *method, json_int_t client_id, json_t **ret) {
        _cleanup_json_ json_t *clients = NULL;
        json_t *all, *c;
        size_t i;
        int r;

        if (client_id > 0)
                return fetch_all(method, method, client_id, ret);
        r = fetch_pages("clients", "clients", 0, &clients);
        if (r == EVD_E_PERMISSION) {
                errorf("%s: listing every client's %s needs admin rights (root, evd's own user, or "
                       "--admin-group); use --client ID for one client",
                       method, method);
                return EXIT_PERMISSION;
        }
        if (r < 0)
                return call_failed("clients", r);
        all = json_array();
        json_array_foreach(json_object_get(clients, "clients"), i, c) {
                _cleanup_json_ json_t *one = NULL;

                r = fetch_pages(method, method, jint(c, "client"), &one);
                if (r == EVD_E_INVALID_PARAMS)
                        continue; /* the client left meanwhile */
                if (r < 0) {
                        json_decref(all);
                        return call_failed(method, r);
                }
                json_array_extend(all, json_object_get(one, method));
        }
        *ret = json_pack("{s:o,s:I}", method, all, "total", (json_int_t)json_array_size(all));
        return *ret ? 0 : EXIT_FAIL;
}

static int cmd_watches(int argc, char **argv) {
        static const char *const headers[] = {">WATCH", ">CLIENT",  "FD TYPE", "EVENTS", "MODE",
                                              "ARMED",  ">WAKEUPS", ">AGE",    "TAG"};
        _cleanup_json_ json_t *all = NULL;
        _cleanup_table_ Table *t = NULL;
        json_int_t client_id;
        char b[FORMAT_MAX];
        json_t *w;
        size_t i;
        int r;

        r = parse_client_option(argc, argv, "watches", &client_id);
        if (r)
                return r < 0 ? 0 : r;
        if ((r = connect_daemon()) || (r = fetch_per_client("watches", client_id, &all)))
                return r;
        if (arg_json) {
                print_json(all);
                return 0;
        }
        t = table_new(9, headers);
        if (!t)
                return EXIT_FAIL;
        json_array_foreach(json_object_get(all, "watches"), i, w) {
                table_add(t, fmt_int(w, "watch", b));
                table_add(t, fmt_int(w, "client", b));
                table_add(t, jstr(w, "fd_type"));
                table_add(t, fmt_events(json_object_get(w, "events"), b));
                table_add(t, jstr(w, "mode"));
                table_add(t, strcmp(jstr(w, "mode"), "edge") == 0 ? "-" : yesno(w, "armed"));
                table_add(t, format_count((uint64_t)jint(w, "count"), b));
                table_add(t, format_duration(jnum(w, "age"), b));
                table_add(t, fmt_tag(w, b));
        }
        table_print(t, "No watches.");
        return 0;
}

static int cmd_timers(int argc, char **argv) {
        static const char *const headers[] = {">TIMER",    ">CLIENT",      "CLOCK", ">NEXT",
                                              ">INTERVAL", ">EXPIRATIONS", "TAG"};
        _cleanup_json_ json_t *all = NULL;
        _cleanup_table_ Table *t = NULL;
        json_int_t client_id;
        char b[FORMAT_MAX];
        json_t *tm;
        size_t i;
        int r;

        r = parse_client_option(argc, argv, "timers", &client_id);
        if (r)
                return r < 0 ? 0 : r;
        if ((r = connect_daemon()) || (r = fetch_per_client("timers", client_id, &all)))
                return r;
        if (arg_json) {
                print_json(all);
                return 0;
        }
        t = table_new(7, headers);
        if (!t)
                return EXIT_FAIL;
        json_array_foreach(json_object_get(all, "timers"), i, tm) {
                table_add(t, fmt_int(tm, "timer", b));
                table_add(t, fmt_int(tm, "client", b));
                table_add(t, jstr(tm, "clock"));
                table_add(t, format_duration(jnum(tm, "next"), b));
                table_add(t, json_is_number(json_object_get(tm, "interval"))
                                     ? format_duration(jnum(tm, "interval"), b)
                                     : "-");
                table_add(t, format_count((uint64_t)jint(tm, "expirations"), b));
                table_add(t, fmt_tag(tm, b));
        }
        table_print(t, "No timers.");
        return 0;
}

static int cmd_stats(int argc, char **argv) {
        static const char *const engine_keys[] = {
                "iterations", "events",       "timers",  "submissions", "syscalls",
                "overflows",  "ring_resizes", "sq_full", "sq_entries",  "cq_entries"};
        static const char *const daemon_keys[] = {"accepted",     "refused",        "disconnected",
                                                  "requests",     "errors",         "notifications",
                                                  "coalesced",    "packets_in",     "packets_out",
                                                  "fds_received", "monitor_dropped"};
        _cleanup_json_ json_t *s = NULL;
        json_t *e, *d, *l, *bucket;
        char b[FORMAT_MAX];
        size_t i;
        int r;

        PARSE_SIMPLE("stats", 0);
        if ((r = connect_daemon()) || (r = call("stats", NULL, &s)))
                return r;
        if (arg_json) {
                print_json(s);
                return 0;
        }
        e = json_object_get(s, "engine");
        d = json_object_get(s, "daemon");
        l = json_object_get(s, "latency");
        printf("Engine (%s):\n", jstr(e, "backend"));
        for (i = 0; i < sizeof(engine_keys) / sizeof(engine_keys[0]); i++)
                printf("  %-16s %15s\n", engine_keys[i],
                       format_count((uint64_t)jint(e, engine_keys[i]), b));
        printf("Daemon:\n");
        for (i = 0; i < sizeof(daemon_keys) / sizeof(daemon_keys[0]); i++)
                printf("  %-16s %15s\n", daemon_keys[i],
                       format_count((uint64_t)jint(d, daemon_keys[i]), b));
        printf("  %-16s %15s\n", "bytes_in", format_bytes((uint64_t)jint(d, "bytes_in"), b));
        printf("  %-16s %15s\n", "bytes_out", format_bytes((uint64_t)jint(d, "bytes_out"), b));
        printf("Notification latency (%s samples):\n", format_count((uint64_t)jint(l, "count"), b));
        printf("  %-16s %15s\n", "mean", format_us(jnum(l, "mean_us"), b));
        printf("  %-16s %15s\n", "p50", format_us(jnum(l, "p50_us"), b));
        printf("  %-16s %15s\n", "p90", format_us(jnum(l, "p90_us"), b));
        printf("  %-16s %15s\n", "p99", format_us(jnum(l, "p99_us"), b));
        printf("  %-16s %15s\n", "max", format_us(jnum(l, "max_us"), b));
        json_array_foreach(json_object_get(l, "buckets"), i, bucket) {
                char label[FORMAT_MAX + 8], c[FORMAT_MAX];

                snprintf(label, sizeof(label), "<= %s", format_us(jnum(bucket, "le_us"), b));
                printf("  %-16s %15s\n", label, format_count((uint64_t)jint(bucket, "count"), c));
        }
        return 0;
}

/* monitor: a wrapped copy of every notification the daemon sends. */
static int on_monitor(struct evd_client *c, const char *method, json_t *params, void *userdata) {
        json_t *msg, *p, *ev;
        char when[32], b[FORMAT_MAX], e[FORMAT_MAX];
        double now = now_realtime();
        time_t secs = (time_t)now;
        struct tm tm;
        const char *m;

        if (strcmp(method, "shutdown") == 0) {
                if (arg_json)
                        print_json_new(json_pack("{s:s,s:f,s:O}", "event", "shutdown", "time", now,
                                                 "params", params));
                else
                        printf("evd is shutting down (%s)\n", jstr(params, "reason"));
                fflush(stdout);
                return 0;
        }
        if (strcmp(method, "monitor-ended") == 0) {
                /* evd took the subscription back: admin rights gone with a reload. */
                if (arg_json)
                        print_json_new(json_pack("{s:s,s:f,s:O}", "event", "monitor-ended", "time",
                                                 now, "params", params));
                else
                        printf("evd ended monitoring (%s)\n", jstr(params, "reason"));
                fflush(stdout);
                loop_done = true;
                loop_exit = EXIT_PERMISSION;
                return 0;
        }
        if (strcmp(method, "monitor") != 0)
                return 0;
        if (arg_json) {
                json_t *line = json_deep_copy(params);

                json_object_set_new(line, "time", json_real(now));
                print_json(line);
                json_decref(line);
                return 0;
        }
        localtime_r(&secs, &tm);
        strftime(when, sizeof(when), "%H:%M:%S", &tm);
        msg = json_object_get(params, "message");
        p = json_object_get(msg, "params");
        m = jstr(msg, "method");
        printf("%s.%03d  client %-5lld %-7s", when, (int)((now - (double)secs) * 1000),
               (long long)jint(params, "client"), m);
        if (strcmp(m, "ready") == 0) {
                ev = json_object_get(p, "events");
                printf(" watch %lld  %s  count %lld", (long long)jint(p, "watch"),
                       fmt_events(ev, e), (long long)jint(p, "count"));
        } else if (strcmp(m, "timer") == 0)
                printf(" timer %lld  expirations %lld  late %s", (long long)jint(p, "timer"),
                       (long long)jint(p, "expirations"), format_duration(jnum(p, "late"), e));
        else if (strcmp(m, "closed") == 0)
                printf(" watch %lld  reason %s", (long long)jint(p, "watch"), jstr(p, "reason"));
        if (json_object_get(p, "tag") && !json_is_null(json_object_get(p, "tag")))
                printf("  tag %s", fmt_tag(p, b));
        if (jint(params, "dropped") > 0)
                printf("  (%lld dropped before this)", (long long)jint(params, "dropped"));
        printf("\n");
        fflush(stdout);
        return 0;
}

static int cmd_monitor(int argc, char **argv) {
        int r;

        PARSE_SIMPLE("monitor", 0);
        if (signals_block() < 0) {
                errorf("cannot set up signal handling: %s", strerror(errno));
                return EXIT_FAIL;
        }
        if ((r = connect_daemon()))
                return r;
        evd_client_set_notify_handler(client, on_monitor, NULL);
        if ((r = call("monitor", NULL, NULL)))
                return r;
        if (!arg_json) {
                printf("Monitoring evd at %s; Ctrl-C to stop.\n", evd_client_socket_path(client));
                fflush(stdout);
        }
        return loop_run(true);
}

static int cmd_ping(int argc, char **argv) {
        static const struct option options[] = {
                COMMON_OPTIONS{"count", required_argument, NULL, 'c'},
                {"interval", required_argument, NULL, 'i'},
                {NULL, 0, NULL, 0}};
        _cleanup_json_ json_t *rtts = json_array();
        double min = INFINITY, max = 0, sum = 0, interval = 0.1;
        long count = 4;
        char b[FORMAT_MAX];
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, COMMON_SHORT "c:i:", options, NULL)) >= 0)
                switch (c) {
                case 'c': {
                        char *end;

                        count = strtol(optarg, &end, 10);
                        if (*end || end == optarg || count < 1 || count > 1000000)
                                return usage_error(
                                        "ping", "-c: expected a count from 1, got \"%s\"", optarg);
                        break;
                }
                case 'i':
                        interval = parse_seconds(optarg);
                        if (interval < 0)
                                return usage_error("ping", "-i: expected seconds, got \"%s\"",
                                                   optarg);
                        break;
                        HANDLE_COMMON(c, "ping")
                }
        if (optind < argc)
                return usage_error("ping", "unexpected argument \"%s\"", argv[optind]);
        if ((r = connect_daemon()))
                return r;
        for (long i = 0; i < count; i++) {
                double t0 = now_mono(), rtt;

                if ((r = call("ping", NULL, NULL)))
                        return r;
                rtt = now_mono() - t0;
                min = rtt < min ? rtt : min;
                max = rtt > max ? rtt : max;
                sum += rtt;
                json_array_append_new(rtts, json_real(rtt * 1e3));
                if (!arg_json)
                        printf("reply from evd: seq=%ld time=%s\n", i + 1, format_duration(rtt, b));
                fflush(stdout);
                if (i + 1 < count && interval > 0) {
                        struct timespec ts = {.tv_sec = (time_t)interval,
                                              .tv_nsec =
                                                      (long)((interval - floor(interval)) * 1e9)};
                        nanosleep(&ts, NULL);
                }
        }
        if (arg_json) {
                print_json_new(json_pack("{s:s,s:I,s:O,s:f,s:f,s:f}", "socket",
                                         evd_client_socket_path(client), "count", (json_int_t)count,
                                         "rtt_ms", rtts, "min_ms", min * 1e3, "avg_ms",
                                         sum / (double)count * 1e3, "max_ms", max * 1e3));
                return 0;
        }
        printf("%ld pings to %s: min %s", count, evd_client_socket_path(client),
               format_duration(min, b));
        printf(", avg %s", format_duration(sum / (double)count, b));
        printf(", max %s\n", format_duration(max, b));
        return 0;
}

static int cmd_version(int argc, char **argv) {
        _cleanup_json_ json_t *s = NULL;
        int r;

        PARSE_SIMPLE("version", 0);
        r = connect_daemon();
        if (!r)
                r = call("status", NULL, &s);
        if (arg_json) {
                json_t *v = json_pack("{s:s,s:s}", "evctl", EVD_VERSION, "libevd", evd_version());

                if (s)
                        json_object_set_new(v, "evd",
                                            json_pack("{s:O,s:O,s:O}", "version",
                                                      json_object_get(s, "version"), "protocol",
                                                      json_object_get(s, "protocol"), "backend",
                                                      json_object_get(s, "backend")));
                print_json(v);
                json_decref(v);
                return r;
        }
        printf("evctl %s (libevd %s)\n", EVD_VERSION, evd_version());
        if (s)
                printf("evd %s (protocol %lld, %s backend) at %s\n", jstr(s, "version"),
                       (long long)jint(s, "protocol"), jstr(s, "backend"),
                       evd_client_socket_path(client));
        return r;
}

/* wait: the first of the fds to become ready. */
typedef struct WaitState {
        uint64_t *watches;
        int *fds;
        size_t n;
} WaitState;

static int on_wait_ready(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        WaitState *w = userdata;
        static const struct {
                uint32_t bit;
                const char *name;
        } names[] = {{EVD_IN, "in"},        {EVD_PRI, "pri"}, {EVD_OUT, "out"},
                     {EVD_ERR, "err"},      {EVD_HUP, "hup"}, {EVD_RDHUP, "rdhup"},
                     {EVD_CLOSED, "closed"}};
        json_t *events = json_array();
        char text[FORMAT_MAX];
        int fd = -1;

        if (loop_done)
                return 0;
        for (size_t i = 0; i < w->n; i++)
                if (w->watches[i] == watch)
                        fd = w->fds[i];
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (revents & names[i].bit)
                        json_array_append_new(events, json_string(names[i].name));
        if (arg_json)
                print_json_new(json_pack("{s:i,s:o}", "fd", fd, "events", events));
        else {
                printf("%d %s\n", fd, fmt_events(events, text));
                json_decref(events);
        }
        loop_done = true;
        loop_exit = 0;
        return 0;
}

static int on_wait_timeout(struct evd_client *c, uint64_t timer, uint64_t expirations,
                           void *userdata) {
        if (loop_done)
                return 0;
        if (arg_json)
                print_json_new(json_pack("{s:b}", "timeout", true));
        loop_done = true;
        loop_exit = EXIT_TIMEOUT;
        return 0;
}

static int cmd_wait(int argc, char **argv) {
        static const struct option options[] = {COMMON_OPTIONS{"in", no_argument, NULL, 'I'},
                                                {"out", no_argument, NULL, 'O'},
                                                {"timeout", required_argument, NULL, 't'},
                                                {NULL, 0, NULL, 0}};
        uint32_t events = 0;
        double timeout = -1;
        WaitState w = {0};
        uint64_t timer;
        int c, r = EXIT_FAIL;

        optind = 1;
        while ((c = getopt_long(argc, argv, COMMON_SHORT "t:", options, NULL)) >= 0)
                switch (c) {
                case 'I':
                        events |= EVD_IN;
                        break;
                case 'O':
                        events |= EVD_OUT;
                        break;
                case 't':
                        timeout = parse_seconds(optarg);
                        if (timeout < 0 || timeout > 2147483647.0)
                                return usage_error(
                                        "wait", "--timeout: expected seconds, got \"%s\"", optarg);
                        break;
                        HANDLE_COMMON(c, "wait")
                }
        if (optind >= argc)
                return usage_error("wait", "which fds? give at least one");
        if (!events)
                events = EVD_IN;
        w.n = (size_t)(argc - optind);
        w.fds = calloc(w.n, sizeof(int));
        w.watches = calloc(w.n, sizeof(uint64_t));
        if (!w.fds || !w.watches)
                return EXIT_FAIL;
        for (size_t i = 0; i < w.n; i++) {
                const char *a = argv[optind + (int)i];
                char *end;
                long fd = strtol(a, &end, 10);
                struct stat st;

                if (*end || end == a || fd < 0 || fd > 1 << 20) {
                        r = usage_error("wait", "expected an fd number, got \"%s\"", a);
                        goto out;
                }
                if (fstat((int)fd, &st) < 0) {
                        errorf("wait: fd %ld is not open in this shell (%s)", fd, strerror(errno));
                        r = EXIT_USAGE;
                        goto out;
                }
                w.fds[i] = (int)fd;
        }
        if (signals_block() < 0 || (r = connect_daemon()))
                goto out;
        for (size_t i = 0; i < w.n; i++) {
                r = evd_watch_add(client, w.fds[i], events, EVD_ONESHOT, on_wait_ready, &w,
                                  CALL_TIMEOUT_MS, &w.watches[i]);
                if (r < 0) {
                        char what[32];

                        snprintf(what, sizeof(what), "wait: fd %d", w.fds[i]);
                        r = call_failed(what, r);
                        goto out;
                }
        }
        if (timeout >= 0) {
                r = evd_timer_after(client, to_usec(timeout), 0, on_wait_timeout, NULL,
                                    CALL_TIMEOUT_MS, &timer);
                if (r < 0) {
                        r = call_failed("wait: timer", r);
                        goto out;
                }
        }
        r = loop_run(false);
out:
        free(w.fds);
        free(w.watches);
        return r;
}

static int on_sleep_done(struct evd_client *c, uint64_t timer, uint64_t expirations,
                         void *userdata) {
        loop_done = true;
        loop_exit = 0;
        return 0;
}

static int cmd_sleep(int argc, char **argv) {
        double seconds, t0;
        uint64_t timer;
        int r = 0;

        PARSE_SIMPLE("sleep", 1);
        if (optind >= argc)
                return usage_error("sleep", "how long? give SECONDS");
        seconds = parse_seconds(argv[optind]);
        if (seconds < 0 || seconds > 2147483647.0)
                return usage_error("sleep", "expected seconds, got \"%s\"", argv[optind]);
        if (signals_block() < 0 || (r = connect_daemon()))
                return r ? r : EXIT_FAIL;
        t0 = now_mono();
        r = evd_timer_after(client, to_usec(seconds), 0, on_sleep_done, NULL, CALL_TIMEOUT_MS,
                            &timer);
        if (r < 0)
                return call_failed("sleep", r);
        r = loop_run(false);
        if (r == 0 && arg_json)
                print_json_new(
                        json_pack("{s:f,s:f}", "seconds", seconds, "elapsed", now_mono() - t0));
        return r;
}

typedef struct Ticker {
        uint64_t ticks, count, expirations;
        double start;
} Ticker;

static int on_tick(struct evd_client *c, uint64_t timer, uint64_t expirations, void *userdata) {
        Ticker *k = userdata;
        double elapsed = now_mono() - k->start;
        char b[FORMAT_MAX];

        k->ticks++;
        k->expirations += expirations;
        if (arg_json)
                print_json_new(json_pack("{s:I,s:I,s:f}", "tick", (json_int_t)k->ticks,
                                         "expirations", (json_int_t)expirations, "elapsed",
                                         elapsed));
        else {
                printf("tick %llu  at +%s", (unsigned long long)k->ticks,
                       format_duration(elapsed, b));
                if (expirations > 1)
                        printf("  (%llu expirations: evctl was late)",
                               (unsigned long long)expirations);
                printf("\n");
                fflush(stdout);
        }
        if (k->count && k->ticks >= k->count) {
                loop_done = true;
                loop_exit = 0;
        }
        return 0;
}

static int cmd_timer(int argc, char **argv) {
        static const struct option options[] = {
                COMMON_OPTIONS{"every", required_argument, NULL, 'e'},
                {"count", required_argument, NULL, 'c'},
                {NULL, 0, NULL, 0}};
        Ticker k = {0};
        double every = -1;
        uint64_t timer;
        int c, r = 0;

        optind = 1;
        while ((c = getopt_long(argc, argv, COMMON_SHORT "e:c:", options, NULL)) >= 0)
                switch (c) {
                case 'e':
                        every = parse_seconds(optarg);
                        if (every < 0.001 || every > 2147483647.0)
                                return usage_error(
                                        "timer",
                                        "--every: expected seconds (at least 0.001), got \"%s\"",
                                        optarg);
                        break;
                case 'c': {
                        char *end;
                        long long v = strtoll(optarg, &end, 10);

                        if (*end || end == optarg || v < 1)
                                return usage_error("timer",
                                                   "--count: expected a number from 1, got \"%s\"",
                                                   optarg);
                        k.count = (uint64_t)v;
                        break;
                }
                        HANDLE_COMMON(c, "timer")
                }
        if (optind < argc)
                return usage_error("timer", "unexpected argument \"%s\"", argv[optind]);
        if (every < 0)
                return usage_error("timer", "how often? give --every SECONDS");
        if (signals_block() < 0 || (r = connect_daemon()))
                return r ? r : EXIT_FAIL;
        k.start = now_mono();
        r = evd_timer_after(client, to_usec(every), to_usec(every), on_tick, &k, CALL_TIMEOUT_MS,
                            &timer);
        if (r < 0)
                return call_failed("timer", r);
        return loop_run(true);
}

static const Command commands[] = {
        {"status", cmd_status, "", "Show the daemon's state: version, backend, uptime, counts.",
         ""},
        {"clients", cmd_clients, "", "List the connected clients (admin only).", ""},
        {"watches", cmd_watches, "[--client ID]",
         "List watches: every client's (admin only), or one client's.",
         "  -c, --client ID       only this client's watches\n"},
        {"timers", cmd_timers, "[--client ID]",
         "List timers: every client's (admin only), or one client's.",
         "  -c, --client ID       only this client's timers\n"},
        {"stats", cmd_stats, "", "Show the daemon's counters and notification latency.", ""},
        {"monitor", cmd_monitor, "",
         "Print every notification evd sends, live, until Ctrl-C (admin only).\n"
         "With --json, one JSON object per line.",
         ""},
        {"ping", cmd_ping, "[-c N] [-i SECONDS]", "Measure round-trip times to the daemon.",
         "  -c, --count N         send N pings (default 4)\n"
         "  -i, --interval SEC    pause between pings (default 0.1)\n"},
        {"version", cmd_version, "", "Show the versions of evctl, libevd and the running evd.", ""},
        {"wait", cmd_wait, "[--in|--out] [--timeout SECONDS] FD...",
         "Wait through evd until one of the shell's fds is ready; print it and its events.\n"
         "Exit 0 when ready, 4 on timeout, 130 if interrupted.",
         "      --in              wait for readable (the default)\n"
         "      --out             wait for writable\n"
         "  -t, --timeout SEC     give up after SEC (a daemon timer)\n"},
        {"sleep", cmd_sleep, "SECONDS", "Sleep on a daemon timer (SECONDS may be 1.5, 250ms, 2m).",
         ""},
        {"timer", cmd_timer, "--every SECONDS [--count N]",
         "Print a line on every expiry of a repeating daemon timer, until Ctrl-C.",
         "  -e, --every SEC       the interval (at least 0.001)\n"
         "  -c, --count N         stop after N ticks\n"},
};

static const Command *find_command(const char *name) {
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(commands[i].name, name) == 0)
                        return &commands[i];
        return NULL;
}

static void help(void) {
        printf("Usage: evctl [--socket PATH] [--json] COMMAND [OPTIONS]\n\n"
               "Talk to evd, the fd-readiness daemon.\n\n"
               "Commands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
                const char *s = commands[i].summary, *nl = strchr(s, '\n');

                printf("  %-10s %.*s\n", commands[i].name, nl ? (int)(nl - s) : (int)strlen(s), s);
        }
        printf("\nOptions:\n"
               "  -s, --socket PATH     evd's socket (default: $EVD_SOCKET, else /run/evd/evd.sock "
               "for\n"
               "                        root, else $XDG_RUNTIME_DIR/evd/evd.sock)\n"
               "  -j, --json            print JSON for scripts\n"
               "  -h, --help            show this help (COMMAND --help: the command's)\n"
               "  -V, --version         show evctl's version\n\n"
               "Exit status: 0 success, 1 failure, 2 usage, 3 evd unreachable, 4 timeout,\n"
               "5 permission denied, 130 interrupted. See evctl(1).\n");
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"socket", required_argument, NULL, 's'},
                {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {NULL, 0, NULL, 0},
        };
        const Command *cmd;
        int c, r;

        /* "+": stop at the command; its own options are parsed by the command. */
        while ((c = getopt_long(argc, argv, "+s:jhV", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        arg_socket = optarg;
                        break;
                case 'j':
                        arg_json = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("evctl %s (libevd %s)\n", EVD_VERSION, evd_version());
                        return 0;
                default:
                        fprintf(stderr, "evctl: see evctl --help\n");
                        return EXIT_USAGE;
                }
        if (optind >= argc) {
                help();
                return EXIT_USAGE;
        }
        cmd = find_command(argv[optind]);
        if (!cmd) {
                fprintf(stderr, "evctl: unknown command \"%s\" (see evctl --help)\n", argv[optind]);
                return EXIT_USAGE;
        }
        r = cmd->fn(argc - optind, argv + optind);
        client = evd_client_free(client);
        if (sigfd >= 0)
                close(sigfd);
        return r;
}
