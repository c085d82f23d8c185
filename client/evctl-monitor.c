/*
 * evctl-monitor.c - evctl monitor: a live copy of every notification evd sends (admin),
 * one line each (--json: one object per line), until Ctrl-C or evd ends the subscription.
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evctl.h"

/* Filters (--client, --uid, --method), applied here: the daemon sends everything. */
typedef struct MonitorFilter {
        json_int_t client, uid; /* -1: any */
        unsigned methods;       /* bits of monitor_kinds[]: any of them; 0: any at all */
} MonitorFilter;

/* What --method can select: evctl(1) and the bash completion list the same. */
#define MONITOR_KINDS "ready, timer, closed, connected, disconnected"

static const char *const monitor_kinds[] = {"ready", "timer", "closed", "connected", "disconnected"};

/* The bit of @name in MonitorFilter.methods, 0 if it is not a kind. */
static unsigned monitor_kind_bit(const char *name) {
        for (size_t i = 0; i < sizeof(monitor_kinds) / sizeof(monitor_kinds[0]); i++)
                if (strcmp(name, monitor_kinds[i]) == 0)
                        return 1u << i;
        return 0;
}

static bool wanted(const MonitorFilter *f, json_t *params) {
        const char *what = json_object_get(params, "event") ? jstr(params, "event")
                                                             : jstr(json_object_get(params, "message"), "method");

        return (f->client < 0 || jint(params, "client") == f->client) &&
               (f->uid < 0 || json_integer_value(json_object_get(params, "uid")) == f->uid) &&
               (!f->methods || (monitor_kind_bit(what) & f->methods));
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
        if (strcmp(method, "monitor") != 0 || !wanted(userdata, params))
                return 0;
        if (arg_json) {
                json_t *line = json_deep_copy(params);

                json_object_set_new(line, "time", json_real(round_decimals(now, 6)));
                print_json(line);
                json_decref(line);
                return 0;
        }
        localtime_r(&secs, &tm);
        strftime(when, sizeof(when), "%H:%M:%S", &tm);
        msg = json_object_get(params, "message");
        p = json_object_get(msg, "params");
        m = json_object_get(params, "event") ? jstr(params, "event") : jstr(msg, "method");
        /* Who: the client's id, then its name (from hello) and pid, as the daemon says. */
        printf("%s.%03d  client %-5lld %s[%lld]  %-7s", when, (int)((now - (double)secs) * 1000),
               (long long)jint(params, "client"), json_object_get(params, "name") ? jstr(params, "name") : "?",
               (long long)jint(params, "pid"), m);
        if (strcmp(m, "connected") == 0)
                printf(" uid %lld", (long long)jint(params, "uid"));
        else if (strcmp(m, "disconnected") == 0 && json_object_get(params, "reason") &&
                 strcmp(jstr(params, "reason"), "disconnected") != 0)
                printf(" (%s)", jstr(params, "reason"));
        else if (strcmp(m, "ready") == 0) {
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

int cmd_monitor(int argc, char **argv) {
        static const struct option options[] = {COMMON_OPTIONS{"client", required_argument, NULL, 'c'},
                                                {"uid", required_argument, NULL, 'u'},
                                                {"method", required_argument, NULL, 'm'},
                                                {NULL, 0, NULL, 0}};
        MonitorFilter f = { .client = -1, .uid = -1 };
        int c, r;

        optind = 0; /* 0, not 1: glibc re-reads the optstring (main parsed with "+") */
        while ((c = getopt_long(argc, argv, COMMON_SHORT "c:u:m:", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        if ((r = parse_integer("monitor", "--client", "a number", 0, optarg, &f.client)))
                                return r;
                        break;
                case 'u':
                        if ((r = parse_integer("monitor", "--uid", "a number", 0, optarg, &f.uid)))
                                return r;
                        break;
                case 'm': {
                        /* A name that never matches would print nothing, forever. Given
                         * again, it adds a kind: the last one winning said nothing. */
                        unsigned bit = monitor_kind_bit(optarg);

                        if (!bit)
                                return usage_error("monitor", "--method: \"%s\" is not one of %s", optarg,
                                                   MONITOR_KINDS);
                        f.methods |= bit;
                        break;
                }
                        HANDLE_COMMON(c, "monitor")
                }
        if (optind < argc)
                return usage_error("monitor", "unexpected argument \"%s\"", argv[optind]);
        if (signals_block() < 0) {
                errorf("cannot set up signal handling: %s", strerror(errno));
                return EXIT_FAIL;
        }
        if ((r = connect_daemon()))
                return r;
        evd_client_set_notify_handler(client, on_monitor, &f);
        /* Connection events too; a daemon before them refuses the param: without. */
        r = evd_call(client, "monitor", json_pack("{s:b}", "connections", true), CALL_TIMEOUT_MS, NULL);
        if (r == EVD_E_INVALID_PARAMS)
                r = evd_call(client, "monitor", NULL, CALL_TIMEOUT_MS, NULL);
        if (r < 0)
                return call_failed("monitor", r);
        if (!arg_json) {
                printf("Monitoring evd at %s; Ctrl-C to stop.\n", evd_client_socket_path(client));
                fflush(stdout);
        }
        return loop_run(true);
}
