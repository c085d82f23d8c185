/*
 * evctl.c - the command line of evd, built on libevd's public API only.
 *
 * main() and the table of commands; the commands live by family (ARCHITECTURE-client.md):
 * evctl-inspect.c (status, clients, watches, timers, stats, ping, version), evctl-wait.c
 * (wait, sleep, timer), evctl-monitor.c (monitor), evctl-reexec.c (reexec), over evctl-call.c (connecting, errors),
 * evctl-loop.c (poll loop, signals), evctl-options.c, evctl-output.c and evctl-format.c.
 *
 * Human output is aligned tables and key/value blocks with units; --json prints exactly
 * one JSON document per command (monitor and timer: one object per line) so scripts never
 * parse the human form. Commands that wait (monitor, timer, wait, sleep) run libevd from
 * their own poll() loop together with a signalfd, so Ctrl-C ends them cleanly. Errors are
 * one line on stderr; the exit codes are part of the
 * interface (evctl(1)):
 *   0 success, 1 failure (the daemon refused, or another error), 2 usage,
 *   3 evd cannot be reached (not running, connection lost), 4 timeout (wait),
 *   5 permission denied (admin-only), 130 interrupted (wait, sleep).
 */

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "build-config.h"
#include "evctl.h"

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
        {"reexec", cmd_reexec, "",
         "Replace the running evd by the binary at its path, in place (same PID), keeping\n"
         "every client, watch and timer (admin only). Exit 0 once the new image serves.",
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
        arg_command = cmd;
        r = cmd->fn(argc - optind, argv + optind);
        client = evd_client_free(client);
        if (sigfd >= 0)
                close(sigfd);
        return r;
}
