/*
 * evctl-monitor.c - evctl monitor: a live copy of every notification evd sends (admin),
 * one line each (--json: one object per line), until Ctrl-C or evd ends the subscription.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "evctl.h"

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

                json_object_set_new(line, "time", json_real(round_decimals(now, 6)));
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

int cmd_monitor(int argc, char **argv) {
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
