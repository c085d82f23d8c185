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
double arg_wait_daemon;
const Command *arg_command;

int usage_error(const char *cmd, const char *fmt, ...) {
        va_list ap;
        int n;

        n = snprintf(last_error, sizeof(last_error), "%s%s", cmd, *cmd ? ": " : "");
        va_start(ap, fmt);
        (void)vsnprintf(last_error + n, sizeof(last_error) - (size_t)n, fmt, ap);
        va_end(ap);
        fprintf(stderr, "evctl%s%s (see evctl%s%s --help)\n", *cmd ? " " : ": ", last_error, *cmd ? " " : "", cmd);
        return EXIT_USAGE;
}

void command_help(const Command *c) {
        printf("Usage: evctl [OPTIONS] %s%s%s\n\n%s\n", c->name, *c->args ? " " : "", c->args, c->summary);
        if (c->help && *c->help)
                printf("\n%s", c->help);
        printf("\nOptions of every command (before or after it):\n%s", GLOBAL_OPTIONS_HELP);
}

/* One line for an option getopt did not take (opterr is 0: it printed nothing). */
int bad_option(const char *name, int c, char **argv) {
        const char *given = optind > 0 ? argv[optind - 1] : "?";

        if (c == ':')
                return usage_error(name, "option \"%s\" needs a value", given);
        if (optopt && strncmp(given, "--", 2) != 0)
                return usage_error(name, "unknown option \"-%c\"", optopt);
        return usage_error(name, "unknown option \"%s\"", given);
}

/* Cut "-- CMD [ARGS...]" off @argv (before getopt sees it: GNU getopt would move the
 * operands before it to after it). *@ret_cmd: CMD's argv (NULL-terminated, argv's own
 * end), or NULL. */
int split_command(int *argc, char **argv, char ***ret_cmd) {
        *ret_cmd = NULL;
        for (int i = 1; i < *argc; i++)
                if (strcmp(argv[i], "--") == 0) {
                        *ret_cmd = i + 1 < *argc ? argv + i + 1 : NULL;
                        argv[i] = NULL;
                        *argc = i;
                        return *ret_cmd ? 1 : -1;
                }
        return 0;
}

/* Return: 0 handled, 1 help printed (exit 0), 2 a bad value (reported: exit 2), -1 not a
 * common option. */
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
        case 'W':
                arg_wait_daemon = parse_seconds(optarg);
                if (arg_wait_daemon < 0 || arg_wait_daemon > 3600) {
                        usage_error(name, "--wait-daemon: expected seconds up to 3600, got \"%s\"", optarg);
                        return 2;
                }
                return 0;
        default:
                return -1;
        }
}

int parse_simple(int argc, char **argv, const char *name, int max_args) {
        static const struct option options[] = {COMMON_OPTIONS{NULL, 0, NULL, 0}};
        int c;

        optind = 0; /* 0, not 1: glibc re-reads the optstring (main parsed with "+") */
        while ((c = getopt_long(argc, argv, COMMON_SHORT, options, NULL)) >= 0) {
                int h = common_option(c, name);

                if (h == 2)
                        return EXIT_USAGE;
                if (h > 0)
                        return -1;
                if (h < 0)
                        return bad_option(name, c, argv);
        }
        if (argc - optind > max_args)
                return usage_error(name, "unexpected argument \"%s\"", argv[optind + max_args]);
        return 0;
}

int parse_integer(const char *name, const char *option, const char *what, long long min, const char *s,
                  long long *ret) {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || *end || end == s || v < min)
                return usage_error(name, "%s: expected %s, got \"%s\"", option, what, s);
        *ret = v;
        return 0;
}

int parse_count(const char *name, const char *s, uint64_t *ret) {
        long long v = 0; /* gcc -O3 cannot see that parse_integer() sets it whenever it returns 0 */

        if (parse_integer(name, "--count", "a number from 1", 1, s, &v))
                return -EINVAL;
        *ret = (uint64_t)v;
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
