/*
 * soak-options.c - the soak's options: defaults, usage, parsing.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "soak.h"

const char *arg_evd;
unsigned arg_seconds = 60;
unsigned arg_workers = 4;
const char *arg_backend;
unsigned arg_pace_us = 500;
long arg_rss_slack_kib = 4096;
unsigned arg_kill_every = 3;
bool arg_keep;
bool arg_fd_cycles;

static void usage(void) {
        printf("Usage: soak [--evd PATH] [--seconds N] [--workers N] [--backend io_uring|epoll]\n"
               "            [--pace-us N] [--rss-slack KIB] [--kill-every N] [--with-fd-cycles]\n"
               "            [--keep]\n"
               "Mixed load against an evd it starts; fails (exit 1) on fd or RSS growth.\n"
               "The daemon: $EVD_SOAK_DAEMON, else --evd, else %s.\n",
               EVD_SOAK_DAEMON);
}

int parse_argv(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        usage();
                        return 0;
                }
                if (strcmp(a, "--keep") == 0) {
                        arg_keep = true;
                        continue;
                }
                if (strcmp(a, "--with-fd-cycles") == 0) {
                        arg_fd_cycles = true;
                        continue;
                }
                if (!v) {
                        fprintf(stderr, "soak: %s needs a value (see --help)\n", a);
                        return -EINVAL;
                }
                i++;
                if (strcmp(a, "--evd") == 0)
                        arg_evd = v;
                else if (strcmp(a, "--backend") == 0)
                        arg_backend = v;
                else if (strcmp(a, "--seconds") == 0)
                        arg_seconds = (unsigned)strtoul(v, NULL, 10);
                else if (strcmp(a, "--workers") == 0)
                        arg_workers = (unsigned)strtoul(v, NULL, 10);
                else if (strcmp(a, "--pace-us") == 0)
                        arg_pace_us = (unsigned)strtoul(v, NULL, 10);
                else if (strcmp(a, "--rss-slack") == 0)
                        arg_rss_slack_kib = strtol(v, NULL, 10);
                else if (strcmp(a, "--kill-every") == 0)
                        arg_kill_every = (unsigned)strtoul(v, NULL, 10);
                else {
                        fprintf(stderr, "soak: unknown option %s (see --help)\n", a);
                        return -EINVAL;
                }
        }
        if (arg_workers < 1 || arg_workers > MAX_WORKERS || arg_seconds < 3 || arg_kill_every < 1) {
                fprintf(stderr, "soak: --workers 1..%d, --seconds >= 3, --kill-every >= 1\n",
                        MAX_WORKERS);
                return -EINVAL;
        }
        return 1;
}
