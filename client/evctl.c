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
        {"clients", cmd_clients, "", "List the connected clients (yours; an admin's: everyone's).", ""},
        {"watches", cmd_watches, "[--client ID]",
         "List watches: of every client you may see (yours; an admin: all), or of one.",
         "  -c, --client ID       only this client's watches\n"},
        {"timers", cmd_timers, "[--client ID]",
         "List timers: of every client you may see (yours; an admin: all), or of one.",
         "  -c, --client ID       only this client's timers\n"},
        {"stats", cmd_stats, "", "Show the daemon's process, counters and rates, latencies and limits.", ""},
        {"monitor", cmd_monitor, "[--client ID] [--uid UID] [--method NAME]",
         "Print every notification evd sends, and every client's connect and disconnect,\n"
         "live, until Ctrl-C (admin only). Each line names the client, its name and pid.\n"
         "With --json, one JSON object per line.",
         "  -c, --client ID       only this client's\n"
         "  -u, --uid UID         only the clients of this uid\n"
         "  -m, --method NAME     only ready, timer, closed, connected or disconnected\n"
         "                        (again: any of the names given)\n"},
        {"ping", cmd_ping, "[-c N] [-i SECONDS]", "Measure round-trip times to the daemon.",
         "  -c, --count N         send N pings (default 4)\n"
         "  -i, --interval SEC    pause between pings (default 0.1)\n"},
        {"version", cmd_version, "", "Show the versions of evctl, libevd and the running evd.", ""},
        {"wait", cmd_wait, "[--in|--out] [--pid PID]... [--any|--all] [--timeout SECONDS] [FD...] [-- COMMAND [ARGS...]]",
         "Wait through evd until the shell's fds are ready or processes exit; print each.\n"
         "--any (the default): the first one; --all: every one. With -- COMMAND: run it once\n"
         "everything is watched, so nothing it causes is missed (it runs alongside; its exit\n"
         "status is not evctl's).\n"
         "Exit 0 when ready, 4 on timeout, 130 if interrupted, 126/127 if COMMAND cannot run.",
         "      --in              wait for readable (the default)\n"
         "      --out             wait for writable\n"
         "  -p, --pid PID         wait for process PID to exit (a pidfd: race-free; repeatable)\n"
         "      --exited          a PID already gone counts as exited (else an error)\n"
         "      --any             return at the first (the default)\n"
         "      --all             return once every fd and process is done\n"
         "  -t, --timeout SEC     give up after SEC (a daemon timer)\n"},
        {"watch", cmd_watch, "[--in|--out] [--count N] FD...",
         "Print a line (\"3 in\") each time one of the shell's fds becomes ready, until\n"
         "Ctrl-C or N lines: an edge watch, so read what is there before the next line comes.",
         "      --in              readable (the default)\n"
         "      --out             writable\n"
         "  -c, --count N         stop after N lines\n"},
        {"sleep", cmd_sleep, "SECONDS", "Sleep on a daemon timer (SECONDS may be 1.5, 250ms, 2m).",
         ""},
        {"reexec", cmd_reexec, "",
         "Replace the running evd by the binary at its path, in place (same PID), keeping\n"
         "every client, watch and timer (admin only). Exit 0 once the new image serves.",
         ""},
        {"call", cmd_call, "METHOD [PARAMS]",
         "Call any method by name (PARAMS: a JSON object) and print its result as\n"
         "JSON. Exit 1 if evd answers with an error (5: permission), its message on stderr.",
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

static void help(FILE *f) {
        fprintf(f, "Usage: evctl [OPTIONS] COMMAND [ARGS]\n\n"
                   "Talk to evd, the fd-readiness daemon.\n\n"
                   "Commands:\n");
        /* The whole summary, its later lines under its first: cut at the first line, four
         * of them ended mid-sentence. */
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
                const char *s = commands[i].summary;

                fprintf(f, "  %-10s ", commands[i].name);
                for (const char *nl; (nl = strchr(s, '\n')); s = nl + 1)
                        fprintf(f, "%.*s\n%13s", (int)(nl - s), s, "");
                fprintf(f, "%s\n", s);
        }
        fprintf(f, "\nOptions (before or after the command; COMMAND --help lists its own):\n%s"
                   "  -V, --version         show evctl's version\n\n"
                   "Exit status: 0 success, 1 failure, 2 usage, 3 evd unreachable, 4 timeout,\n"
                   "5 permission denied, 130 interrupted. See evctl(1).\n",
                GLOBAL_OPTIONS_HELP);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"socket", required_argument, NULL, 's'},
                {"json", no_argument, NULL, 'j'},
                {"wait-daemon", required_argument, NULL, 'W'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {NULL, 0, NULL, 0},
        };
        const Command *cmd;
        int c, r;

        opterr = 0; /* every mistake is one line of ours: bad_option() */
        /* --json anywhere asks for JSON errors too, even for a mistake parsed before it. */
        for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
                if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
                        arg_json = true;
        /* "+": stop at the command; its own options are parsed by the command. */
        while ((c = getopt_long(argc, argv, "+:s:jW:hV", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help(stdout);
                        return 0;
                case 'V':
                        printf("evctl %s (libevd %s)\n", EVD_VERSION, evd_version());
                        return 0;
                case 's':
                case 'j':
                case 'W':
                        if (common_option(c, "") == 2)
                                return EXIT_USAGE;
                        break;
                default:
                        r = bad_option("", c, argv);
                        goto out;
                }
        if (optind >= argc) {
                help(stderr);
                return EXIT_USAGE;
        }
        cmd = find_command(argv[optind]);
        if (!cmd) {
                r = usage_error("", "unknown command \"%s\"", argv[optind]);
                goto out;
        }
        arg_command = cmd;
        r = cmd->fn(argc - optind, argv + optind);
out:
        /* Scripts read stdout only: the error there too, as the one JSON document (a
         * timeout has printed its own). */
        if (r != 0 && arg_json && last_error[0])
                print_json_new(json_pack("{s:{s:s,s:i}}", "error", "message", last_error, "exit", r));
        client = evd_client_free(client);
        if (sigfd >= 0)
                close(sigfd);
        return r;
}
