/*
 * evctl-options.c - evctl's option parsing shared by the commands: the common options
 * (--help, --json, --socket, also after the command), usage errors, a command's --help,
 * and durations ("250ms", "2m"). evctl.c sets arg_command to the command being run.
 */

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evctl.h"

const char *arg_socket;
bool arg_json;
const Command *arg_command;

int usage_error(const char *cmd, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "evctl %s: ", cmd);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (see evctl %s --help)\n", cmd);
        return EXIT_USAGE;
}

void command_help(const Command *c) {
        printf("Usage: evctl [--socket PATH] [--json] %s%s%s\n\n%s\n", c->name, *c->args ? " " : "",
               c->args, c->summary);
        if (c->help && *c->help)
                printf("\n%s", c->help);
        printf("\n  -h, --help            show this help\n");
}

/* Return: 0 handled, 1 help printed (exit 0), -1 not a common option. */
int common_option(int c, const char *name) {
        switch (c) {
        case 'h':
                command_help(arg_command); /* the command named @name */
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

int parse_simple(int argc, char **argv, const char *name, int max_args) {
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

/* "1.5", "250ms", "2s", "3m", "1h" -> seconds; -1 if invalid. */
double parse_seconds(const char *s) {
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

uint64_t to_usec(double seconds) {
        return (uint64_t)llround(seconds * 1e6);
}
