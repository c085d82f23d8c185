/* main.c - evd: command line, then daemon_run() */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build-config.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "macro.h"

#define MAX_CLI_SETTINGS 64

static const char *arg_socket;
static const char *arg_config;
static EngineBackend arg_backend = ENGINE_BACKEND_AUTO;
static ConfigSetting arg_settings[MAX_CLI_SETTINGS];
static size_t arg_n_settings;

static void help(void) {
        printf("Usage: evd [OPTIONS]\n\n"
               "The fd-readiness daemon: clients pass fds over an AF_UNIX SOCK_SEQPACKET socket and\n"
               "receive JSON-RPC notifications when they are ready (see evd(8), PROTOCOL.md).\n\n"
               "  -s, --socket PATH          listen on PATH (default: $EVD_SOCKET, else\n"
               "                             /run/evd/evd.sock for root, else\n"
               "                             $XDG_RUNTIME_DIR/evd/evd.sock; socket activation wins)\n"
               "  -c, --config FILE          read settings from FILE (\"key = value\" lines),\n"
               "                             again on SIGHUP; command-line settings win\n"
               "      --backend NAME         io_uring or epoll (default: io_uring if the kernel\n"
               "                             allows it, else epoll; also $EVD_BACKEND)\n"
               "  -h, --help                 show this help\n"
               "  -V, --version              show the version\n\n"
               "Settings (also valid as \"key = value\" in the config file):\n");
        config_help();
}

/* --key=value or --key value. Returns the value, or NULL if @key takes none and is absent. */
static const char *option_value(int argc, char **argv, int *i, const char *arg, const char *name) {
        size_t n = strlen(name);

        if (strncmp(arg, name, n) != 0)
                return NULL;
        if (arg[n] == '=')
                return arg + n + 1;
        if (arg[n] == 0 && *i + 1 < argc)
                return argv[++*i];
        return NULL;
}

static int parse_argv(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v;

                if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                        help();
                        return 0;
                }
                if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
                        printf("evd %s\n", EVD_VERSION);
                        return 0;
                }
                if ((strcmp(a, "-s") == 0 && i + 1 < argc && (v = argv[++i])) || (v = option_value(argc, argv, &i, a, "--socket")))
                        arg_socket = v;
                else if ((strcmp(a, "-c") == 0 && i + 1 < argc && (v = argv[++i])) ||
                         (v = option_value(argc, argv, &i, a, "--config")))
                        arg_config = v;
                else if ((v = option_value(argc, argv, &i, a, "--backend"))) {
                        if (strcmp(v, "io_uring") == 0)
                                arg_backend = ENGINE_BACKEND_IO_URING;
                        else if (strcmp(v, "epoll") == 0)
                                arg_backend = ENGINE_BACKEND_EPOLL;
                        else {
                                fprintf(stderr, "evd: --backend: expected io_uring or epoll, got \"%s\"\n", v);
                                return -EINVAL;
                        }
                } else if (strncmp(a, "--", 2) == 0) {
                        char key[64];
                        const char *eq = strchr(a + 2, '=');
                        size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);

                        if (len >= sizeof(key) || (memcpy(key, a + 2, len), key[len] = 0, !config_is_key(key))) {
                                fprintf(stderr, "evd: unknown option %s (see --help)\n", a);
                                return -EINVAL;
                        }
                        v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
                        if (!v || arg_n_settings >= MAX_CLI_SETTINGS) {
                                fprintf(stderr, "evd: %s needs a value\n", a);
                                return -EINVAL;
                        }
                        arg_settings[arg_n_settings++] = (ConfigSetting){ .key = strdup(key), .value = (char *)v };
                        if (!arg_settings[arg_n_settings - 1].key)
                                return -ENOMEM;
                } else {
                        fprintf(stderr, "evd: unexpected argument %s (see --help)\n", a);
                        return -EINVAL;
                }
        }
        return 1;
}

/* Started by a re-exec (daemon-reexec.c): every fd open now came from the previous image.
 * Taken before anything opens one of its own. Return: the state fd, or -1. */
static int inherited_state(FdSet *inherited) {
        const char *v = getenv(DAEMON_STATE_ENV);
        char *end;
        long fd;

        if (!v)
                return -1;
        fd = strtol(v, &end, 10);
        (void)unsetenv(DAEMON_STATE_ENV);
        if (*end || end == v || fd < 3 || fd > INT32_MAX || fdset_collect(inherited) < 0 ||
            !fdset_has(inherited, (int)fd)) {
                fprintf(stderr, "evd: ignoring $" DAEMON_STATE_ENV ": not an inherited fd\n");
                fdset_done(inherited);
                return -1;
        }
        /* The previous image cleared FD_CLOEXEC on these for the exec; whatever this image
         * keeps stays close-on-exec until it re-executes in turn. One call for all
         * (Linux 5.11; before it they stay inheritable, and evd runs no other program). */
        (void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        return (int)fd;
}

int main(int argc, char **argv) {
        DaemonOptions opts;
        FdSet inherited = { 0 };
        ListenFds passed = { 0 };
        int state_fd = inherited_state(&inherited);
        Daemon *d = NULL;
        int r;

        log_setup();
        r = parse_argv(argc, argv);
        if (r <= 0) {
                for (size_t i = 0; i < arg_n_settings; i++)
                        free(arg_settings[i].key);
                return r < 0 ? 2 : 0;
        }
        (void)listen_fds_collect(&passed);
        if (state_fd < 0)
                state_fd = daemon_fdstore_collect(&passed, &inherited);
        opts = (DaemonOptions){
                .socket_path = arg_socket,
                .config_path = arg_config,
                .cli = arg_settings,
                .n_cli = arg_n_settings,
                .backend = arg_backend,
                .argv = argv,
                .passed = &passed,
                .inherited = state_fd >= 0 ? &inherited : NULL,
                .state_fd = state_fd,
        };
        r = daemon_new(&d, &opts);
        if (r >= 0)
                r = daemon_run(d);
        (void)daemon_free(d);
        listen_fds_done(&passed);
        fdset_done(&inherited);
        for (size_t i = 0; i < arg_n_settings; i++)
                free(arg_settings[i].key);
        return r < 0 ? 1 : 0;
}
