#pragma once
/* evctl.h - what evctl's files share: exit codes, options, the client, helpers, commands */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

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

typedef struct Command Command;
typedef int (*command_fn)(int argc, char **argv);

struct Command {
        const char *name;
        command_fn fn;
        const char *args;
        const char *summary;
        const char *help; /* options, one per line */
};

static inline void freep_json(json_t **j) {
        json_decref(*j);
}
#define _cleanup_json_ __attribute__((cleanup(freep_json)))

static inline void tablep(Table **t) {
        (void)table_free(*t);
}
#define _cleanup_table_ __attribute__((cleanup(tablep)))

/* evctl-options.c: the options and their parsing */
extern const char *arg_socket;
extern bool arg_json;
extern const Command *arg_command; /* the command main() runs */

extern double arg_wait_daemon; /* seconds to keep trying to connect; 0: once */

int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void command_help(const Command *c);
int common_option(int c, const char *name);
int bad_option(const char *name, int c, char **argv);
int split_command(int *argc, char **argv, char ***ret_cmd);
int parse_simple(int argc, char **argv, const char *name, int max_args);
double parse_seconds(const char *s);
/** parse_integer() - @s as an integer >= @min into *@ret; else the usage error "@option:
 * expected @what" (reported). Return: 0 or EXIT_USAGE. */
int parse_integer(const char *name, const char *option, const char *what, long long min, const char *s,
                  long long *ret);
/** parse_count() - a --count value (>= 1) into *@ret; else a usage error (reported) and -EINVAL. */
int parse_count(const char *name, const char *s, uint64_t *ret);
uint64_t to_usec(double seconds);

/* Options every command takes, before or after it, between or after its arguments:
 * --help, --json, --socket, --wait-daemon. ':' first: getopt reports a missing value as
 * ':' and prints nothing itself (opterr is 0), so each mistake is one line, ours. */
#define COMMON_OPTIONS                                                                             \
        {"help", no_argument, NULL, 'h'}, {"json", no_argument, NULL, 'j'},                        \
                {"socket", required_argument, NULL, 's'},                                          \
                {"wait-daemon", required_argument, NULL, 'W'},
#define COMMON_SHORT ":hjs:W:"
#define GLOBAL_OPTIONS_HELP                                                                        \
        "  -s, --socket PATH     evd's socket (default: $EVD_SOCKET, else /run/evd/evd.sock for\n"  \
        "                        root, else $XDG_RUNTIME_DIR/evd/evd.sock)\n"                       \
        "  -W, --wait-daemon SEC if evd is not there yet, keep trying to connect for SEC\n"        \
        "  -j, --json            print JSON for scripts\n"                                         \
        "  -h, --help            show this help\n"

#define HANDLE_COMMON(c, name)                                                                     \
        default: {                                                                                 \
                int _h = common_option(c, name);                                                   \
                if (_h == 2)                                                                       \
                        return EXIT_USAGE;                                                         \
                if (_h > 0)                                                                        \
                        return 0;                                                                  \
                if (_h < 0)                                                                        \
                        return bad_option(name, c, argv);                                          \
                break;                                                                             \
        }

#define PARSE_SIMPLE(name, max)                                                                    \
        do {                                                                                       \
                int _r = parse_simple(argc, argv, name, max);                                      \
                if (_r)                                                                            \
                        return _r < 0 ? 0 : _r;                                                    \
        } while (0)

/* evctl-call.c: the connection to evd and its errors */
extern struct evd_client *client;

/* The last error line (without "evctl: "), for --json's {"error": ...}. */
extern char last_error[512];
void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int connect_daemon(void);
int call_failed(const char *what, int r);
int call(const char *method, json_t *params, json_t **ret);
int fetch_pages(const char *method, const char *key, json_int_t client_id, json_t **ret);
int fetch_all(const char *method, const char *key, json_int_t client_id, json_t **ret);

/* evctl-output.c: JSON output, result readers, table cells */
void print_json(json_t *v);
void print_json_new(json_t *v);
/* What evctl measures itself goes out to the microsecond (seconds: 6 decimals, ms: 3),
 * not to the double's last digit. */
double round_decimals(double v, int decimals);
/* round_means() - every histogram's mean_us in the stats result @stats to the nanosecond. */
void round_means(json_t *stats);
json_int_t jint(json_t *o, const char *key);
double jnum(json_t *o, const char *key);
const char *jstr(json_t *o, const char *key);
const char *yesno(json_t *o, const char *key);
const char *fmt_int(json_t *o, const char *key, char buf[static FORMAT_MAX]);
const char *fmt_tag(json_t *o, char buf[static FORMAT_MAX]);
const char *fmt_events(json_t *array, char buf[static FORMAT_MAX]);

/* evctl-loop.c: waiting in a poll() loop with Ctrl-C */
extern int sigfd;
extern bool loop_done;
extern int loop_exit;

int signals_block(void);
int loop_run(bool signal_ok);
double now_realtime(void);
double now_mono(void);

/* The commands: evctl-inspect.c, evctl-monitor.c, evctl-wait.c */
int cmd_status(int argc, char **argv);
int cmd_clients(int argc, char **argv);
int cmd_watches(int argc, char **argv);
int cmd_timers(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_sleep(int argc, char **argv);
int cmd_timer(int argc, char **argv);
int cmd_reexec(int argc, char **argv);
int cmd_call(int argc, char **argv);
