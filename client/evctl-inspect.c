/*
 * evctl-inspect.c - the commands that ask and print: status, clients, watches, timers,
 * stats, ping, version. Human output is aligned tables and key/value blocks with units;
 * --json prints the daemon's result (listings: every page joined) as one document.
 */

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "build-config.h"
#include "evctl.h"

int cmd_status(int argc, char **argv) {
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
        if (jint(json_object_get(s, "reexec"), "generation") || jint(json_object_get(s, "reexec"), "failures"))
                printf("  %-15s generation %lld, %lld failed%s%s\n", "Re-exec:",
                       (long long)jint(json_object_get(s, "reexec"), "generation"),
                       (long long)jint(json_object_get(s, "reexec"), "failures"),
                       json_is_string(json_object_get(json_object_get(s, "reexec"), "last_error")) ? ": " : "",
                       json_is_string(json_object_get(json_object_get(s, "reexec"), "last_error"))
                               ? jstr(json_object_get(s, "reexec"), "last_error")
                               : "");
        return 0;
}

int cmd_clients(int argc, char **argv) {
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
        optind = 0; /* 0, not 1: glibc re-reads the optstring (main parsed with "+") */
        while ((c = getopt_long(argc, argv, COMMON_SHORT "c:", options, NULL)) >= 0)
                switch (c) {
                case 'c': {
                        long long v;

                        if (parse_integer(name, "--client", "a client id", 1, optarg, &v))
                                return EXIT_USAGE;
                        *ret = v;
                        break;
                }
                default: {
                        int h = common_option(c, name);

                        if (h == 2)
                                return EXIT_USAGE;
                        if (h > 0)
                                return -1;
                        if (h < 0)
                                return bad_option(name, c, argv);
                        break;
                }
                }
        if (optind < argc)
                return usage_error(name, "unexpected argument \"%s\"", argv[optind]);
        return 0;
}

/* Items of @method for one client, or for every client the caller may see ("clients":
 * an admin's all, anyone else's its own uid's; a daemon before that refuses non-admins). */
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
                if (r == EVD_E_INVALID_PARAMS || r == EVD_E_PERMISSION)
                        continue; /* the client left meanwhile (to a non-admin: "not yours") */
                if (r < 0) {
                        json_decref(all);
                        return call_failed(method, r);
                }
                json_array_extend(all, json_object_get(one, method));
        }
        *ret = json_pack("{s:o,s:I}", method, all, "total", (json_int_t)json_array_size(all));
        return *ret ? 0 : EXIT_FAIL;
}

int cmd_watches(int argc, char **argv) {
        /* No age column: the daemon does not keep when a watch was made. One word per
         * header: "FD TYPE" read as two columns. */
        static const char *const headers[] = {">WATCH", ">CLIENT", "FDTYPE", "EVENTS",
                                              "MODE",   "ARMED",   ">WAKEUPS", "TAG"};
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
        t = table_new(8, headers);
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
                table_add(t, fmt_tag(w, b));
        }
        table_print(t, "No watches.");
        return 0;
}

int cmd_timers(int argc, char **argv) {
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

/* "8.19-16.4 us": a bucket's range [@le_us / 2, @le_us) (buckets are powers of two of
 * nanoseconds), both ends in the upper end's unit, three digits. */
static const char *bucket_label(double le_us, char buf[static FORMAT_MAX]) {
        static const struct {
                double scale; /* units per microsecond */
                const char *unit;
        } units[] = {{1e3, "ns"}, {1, "us"}, {1e-3, "ms"}, {1e-6, "s"}};
        size_t u = 0;

        while (u + 1 < sizeof(units) / sizeof(units[0]) && le_us * units[u].scale >= 1000)
                u++;
        snprintf(buf, FORMAT_MAX, "%.3g-%.3g %s", le_us / 2 * units[u].scale, le_us * units[u].scale,
                 units[u].unit);
        return buf;
}

static void print_histogram(const char *title, const char *measures, json_t *h) {
        json_t *bucket;
        char b[FORMAT_MAX];
        size_t i;

        printf("%s (%s; %s):\n", title, measures,
               format_quantity((uint64_t)jint(h, "count"), "sample", "samples", b));
        printf("  %-16s %15s\n", "mean", format_us(jnum(h, "mean_us"), b));
        printf("  %-16s %15s\n", "p50", format_us(jnum(h, "p50_us"), b));
        printf("  %-16s %15s\n", "p90", format_us(jnum(h, "p90_us"), b));
        printf("  %-16s %15s\n", "p99", format_us(jnum(h, "p99_us"), b));
        printf("  %-16s %15s\n", "max", format_us(jnum(h, "max_us"), b));
        json_array_foreach(json_object_get(h, "buckets"), i, bucket) {
                char c[FORMAT_MAX];

                printf("  %-16s %15s\n", bucket_label(jnum(bucket, "le_us"), b),
                       format_count((uint64_t)jint(bucket, "count"), c));
        }
}

/* Uptime and start, fds against the limit, memory: what an operator looks at first. The
 * fds are all the daemon has open (an older daemon tells only the clients' part). */
static void print_process(json_t *proc) {
        json_t *fds = json_object_get(proc, "fds");
        uint64_t conns = (uint64_t)jint(fds, "connections"), watched = (uint64_t)jint(fds, "watched");
        uint64_t held = conns + watched, limit = (uint64_t)jint(fds, "limit");
        uint64_t used = json_is_integer(json_object_get(fds, "open")) ? (uint64_t)jint(fds, "open") : held;
        time_t started = (time_t)jnum(proc, "started");
        char b[FORMAT_MAX], c[FORMAT_MAX], n_conns[FORMAT_MAX], n_watched[FORMAT_MAX], when[64];
        struct tm tm;

        localtime_r(&started, &tm);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm);
        printf("Process:\n");
        printf("  %-16s %15s  (since %s)\n", "uptime", format_duration(jnum(proc, "uptime"), b), when);
        printf("  %-16s %15s  of %s (%.1f%%): %s, %s watched", "fds held", format_count(used, b),
               format_count(limit, c), limit ? 100.0 * (double)used / (double)limit : 0.0,
               format_quantity(conns, "connection", "connections", n_conns), format_count(watched, n_watched));
        if (json_is_integer(json_object_get(fds, "open")))
                printf(", %s its own", format_count(used > held ? used - held : 0, b));
        printf("\n");
        printf("  %-16s %15s\n", "memory (RSS)", format_bytes((uint64_t)jint(proc, "rss_bytes"), b));
}

typedef enum RowKind {
        ROW_COUNTER, /* cumulative: a rate since the start */
        ROW_BYTES,   /* cumulative bytes: a rate in bytes */
        ROW_SIZE,    /* a size now (the rings' entries): no rate */
} RowKind;

typedef struct Row {
        const char *key;
        RowKind kind;
} Row;

/* One section of counters; with @uptime (> 0), each cumulative one's rate in evctl's view:
 * the counter over the daemon's uptime. A member the daemon does not send (an older one)
 * is left out. */
static void print_counters(const char *title, json_t *o, const Row *rows, size_t n, double uptime) {
        if (uptime > 0)
                printf("%-35s%s\n", title, "average since the start");
        else
                printf("%s\n", title);
        for (size_t i = 0; i < n; i++) {
                uint64_t v = (uint64_t)jint(o, rows[i].key);
                char b[FORMAT_MAX];

                if (!json_object_get(o, rows[i].key))
                        continue;
                printf("  %-16s %15s", rows[i].key,
                       rows[i].kind == ROW_BYTES ? format_bytes(v, b) : format_count(v, b));
                if (uptime > 0 && rows[i].kind == ROW_COUNTER)
                        printf("  %12s/s", format_rate((double)v / uptime, b));
                else if (uptime > 0 && rows[i].kind == ROW_BYTES)
                        printf("  %12s/s", format_byte_rate((double)v / uptime, b));
                printf("\n");
        }
}

int cmd_stats(int argc, char **argv) {
        static const Row engine_rows[] = {
                {"iterations", ROW_COUNTER}, {"events", ROW_COUNTER},       {"timers", ROW_COUNTER},
                {"submissions", ROW_COUNTER}, {"syscalls", ROW_COUNTER},    {"overflows", ROW_COUNTER},
                {"ring_resizes", ROW_COUNTER}, {"sq_full", ROW_COUNTER},    {"poll_updates", ROW_COUNTER},
                {"cancel_retries", ROW_COUNTER}, {"sq_entries", ROW_SIZE}, {"cq_entries", ROW_SIZE}};
        static const Row daemon_rows[] = {
                {"accepted", ROW_COUNTER},      {"refused", ROW_COUNTER},       {"disconnected", ROW_COUNTER},
                {"requests", ROW_COUNTER},      {"errors", ROW_COUNTER},        {"notifications", ROW_COUNTER},
                {"coalesced", ROW_COUNTER},     {"packets_in", ROW_COUNTER},    {"packets_out", ROW_COUNTER},
                {"fds_received", ROW_COUNTER},  {"monitor_dropped", ROW_COUNTER}, {"timers_held", ROW_COUNTER},
                {"bytes_in", ROW_BYTES},        {"bytes_out", ROW_BYTES}};
        _cleanup_json_ json_t *s = NULL;
        json_t *proc;
        char title[FORMAT_MAX];
        double uptime;
        int r;

        PARSE_SIMPLE("stats", 0);
        if ((r = connect_daemon()) || (r = call("stats", NULL, &s)))
                return r;
        if (arg_json) {
                round_means(s);
                print_json(s);
                return 0;
        }
        proc = json_object_get(s, "process");
        uptime = proc ? jnum(proc, "uptime") : 0;
        if (proc)
                print_process(proc);
        snprintf(title, sizeof(title), "Engine (%s):", jstr(json_object_get(s, "engine"), "backend"));
        print_counters(title, json_object_get(s, "engine"), engine_rows, sizeof(engine_rows) / sizeof(engine_rows[0]),
                       uptime);
        print_counters("Daemon:", json_object_get(s, "daemon"), daemon_rows, sizeof(daemon_rows) / sizeof(daemon_rows[0]),
                       uptime);
        print_histogram("Notification latency", "from the event seen to the notification sent",
                        json_object_get(s, "latency"));
        /* An older daemon has no packet_cost: nothing to show. */
        if (json_object_get(s, "packet_cost"))
                print_histogram("Time one packet held the daemon", "from its receipt to its replies queued",
                                json_object_get(s, "packet_cost"));
        if (json_object_get(s, "timer_lateness"))
                print_histogram("Timer lateness", "from a timer's deadline to the daemon handling it",
                                json_object_get(s, "timer_lateness"));
        if (json_object_get(s, "limits")) {
                const char *key;
                char b[FORMAT_MAX];
                json_t *v;

                printf("Limits in force:\n");
                json_object_foreach(json_object_get(s, "limits"), key, v)
                        printf("  %-24s %15s\n", key,
                               strcmp(key, "max-queued-bytes") == 0 ? format_bytes((uint64_t)json_integer_value(v), b)
                                                                     : format_count((uint64_t)json_integer_value(v), b));
        }
        return 0;
}

int cmd_ping(int argc, char **argv) {
        static const struct option options[] = {
                COMMON_OPTIONS{"count", required_argument, NULL, 'c'},
                {"interval", required_argument, NULL, 'i'},
                {NULL, 0, NULL, 0}};
        _cleanup_json_ json_t *rtts = json_array();
        double min = INFINITY, max = 0, sum = 0, interval = 0.1;
        long count = 4;
        char b[FORMAT_MAX];
        int c, r;

        optind = 0; /* 0, not 1: glibc re-reads the optstring (main parsed with "+") */
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
                json_array_append_new(rtts, json_real(round_decimals(rtt * 1e3, 3)));
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
                                         "rtt_ms", rtts, "min_ms", round_decimals(min * 1e3, 3), "avg_ms",
                                         round_decimals(sum / (double)count * 1e3, 3), "max_ms",
                                         round_decimals(max * 1e3, 3)));
                return 0;
        }
        printf("%ld pings to %s: min %s", count, evd_client_socket_path(client),
               format_duration(min, b));
        printf(", avg %s", format_duration(sum / (double)count, b));
        printf(", max %s\n", format_duration(max, b));
        return 0;
}

int cmd_version(int argc, char **argv) {
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
