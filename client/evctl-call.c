/*
 * evctl-call.c - evctl's connection to evd: connecting, calls, paged listings, and the
 * one-line error (with the exit code it implies) when any of it fails.
 */

#include <errno.h>
#include <poll.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build-config.h"
#include "evctl.h"

/* How the user would start this evd: "evd" if PATH finds it, else the one built next to
 * this evctl (a build tree: client/evctl, daemon/evd), else the installed one. */
static const char *evd_command(char buf[static PATH_MAX]) {
        const char *path = getenv("PATH");
        char self[PATH_MAX];
        ssize_t n;

        for (const char *p = path; p && *p;) {
                size_t len = strcspn(p, ":");

                if (len > 0 && (size_t)snprintf(buf, PATH_MAX, "%.*s/evd", (int)len, p) < PATH_MAX &&
                    access(buf, X_OK) == 0)
                        return "evd";
                p += len + (p[len] == ':');
        }
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                char *slash;

                self[n] = 0;
                slash = strrchr(self, '/');
                if (slash) {
                        *slash = 0;
                        if ((size_t)snprintf(buf, PATH_MAX, "%s/../daemon/evd", self) < PATH_MAX &&
                            access(buf, X_OK) == 0) {
                                char *real = realpath(buf, NULL);

                                if (real) {
                                        snprintf(buf, PATH_MAX, "%s", real);
                                        free(real);
                                }
                                return buf;
                        }
                }
        }
        snprintf(buf, PATH_MAX, "%s/evd", EVD_SBINDIR);
        return access(buf, X_OK) == 0 ? buf : "evd";
}

/* The line that says how to start evd for @path: the unit where @path is a default
 * socket (the system one for /run/evd, the user manager's for $XDG_RUNTIME_DIR), the
 * command line with --socket for any other path (no unit serves it). */
static void not_running(const char *path, int r) {
        const char *runtime = getenv("XDG_RUNTIME_DIR");
        char evd[PATH_MAX], user_default[PATH_MAX] = "";
        const char *why = r == -ENOENT ? "no socket at" : "nothing listens on";

        if (runtime && *runtime)
                snprintf(user_default, sizeof(user_default), "%s/evd/evd.sock", runtime);
        if (path && strcmp(path, "/run/evd/evd.sock") == 0)
                errorf("evd is not running (%s %s); start it with \"systemctl start evd.socket\" or \"%s\"", why,
                       path, evd_command(evd));
        else if (path && *user_default && strcmp(path, user_default) == 0)
                errorf("evd is not running (%s %s); start it with \"systemctl --user start evd.socket\" or "
                       "\"%s\"",
                       why, path, evd_command(evd));
        else
                errorf("evd is not running (%s %s); start it with \"%s --socket %s\"", why, path ? path : "?",
                       evd_command(evd), path ? path : "PATH");
}

struct evd_client *client;

char last_error[512];

void errorf(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(last_error, sizeof(last_error), fmt, ap);
        va_end(ap);
        fprintf(stderr, "evctl: %s\n", last_error);
}

int connect_daemon(void) {
        const char *path;
        int r;

        r = evd_client_new(&client);
        if (r < 0) {
                errorf("cannot create a client: %s", evd_strerror(r));
                return EXIT_FAIL;
        }
        (void)evd_client_set_name(client, "evctl");
        r = evd_client_connect(client, arg_socket);
        /* --wait-daemon: a script that just started evd waits for its socket rather than
         * racing it. Only "not there yet" is retried. */
        for (double end = now_mono() + arg_wait_daemon; (r == -ENOENT || r == -ECONNREFUSED) && now_mono() < end;) {
                (void)poll(NULL, 0, 20);
                r = evd_client_connect(client, arg_socket);
        }
        if (r >= 0)
                return 0;

        path = evd_client_socket_path(client);
        switch (r) {
        case -ENOENT:
        case -ECONNREFUSED:
                not_running(path, r);
                return EXIT_UNREACHABLE;
        case -EACCES:
        case -EPERM:
                errorf("permission denied connecting to evd at %s (check the socket's mode and "
                       "your groups)",
                       path);
                return EXIT_UNREACHABLE;
        case -ENXIO:
                errorf("no evd socket to connect to: XDG_RUNTIME_DIR is not set; pass --socket "
                       "PATH or set EVD_SOCKET");
                return EXIT_UNREACHABLE;
        case -ENAMETOOLONG:
                errorf("socket path too long: %s", path);
                return EXIT_USAGE;
        default:
                errorf("cannot connect to evd at %s: %s", path ? path : "(default socket)",
                       evd_strerror(r));
                return EXIT_UNREACHABLE;
        }
}

/* Report a failed call and pick the exit code. */
int call_failed(const char *what, int r) {
        const struct evd_error *e = evd_client_last_error(client);
        bool bare = !what;

        if (!what)
                what = "evd";
        if (e) {
                errorf("%s: %s%s%s", what, e->message, e->why ? ": " : "", e->why ? e->why : "");
                if (e->code == EVD_E_PERMISSION)
                        return EXIT_PERMISSION;
                return EXIT_FAIL;
        }
        if (r == -ETIMEDOUT) {
                errorf("%s: evd did not answer within %d s", what, CALL_TIMEOUT_MS / 1000);
                return EXIT_FAIL;
        }
        if (r == -ENOTCONN || r == -ECONNRESET || r == -ESHUTDOWN || r == -EPIPE) {
                errorf("%s%slost the connection to evd at %s (%s)", bare ? "" : what,
                       bare ? "" : ": ", evd_client_socket_path(client),
                       r == -ESHUTDOWN ? "it is shutting down" : evd_strerror(r));
                return EXIT_UNREACHABLE;
        }
        errorf("%s: %s", what, evd_strerror(r));
        return EXIT_FAIL;
}

int call(const char *method, json_t *params, json_t **ret) {
        int r = evd_call(client, method, params, CALL_TIMEOUT_MS, ret);

        return r < 0 ? call_failed(method, r) : 0;
}

/* Every page of a listing: {"<key>": [...all items...], "total": n}. Return: 0 or as
 * evd_call() (nothing printed). */
int fetch_pages(const char *method, const char *key, json_int_t client_id, json_t **ret) {
        json_t *all = json_array();
        json_int_t offset = 0;
        int r;

        if (!all)
                return -ENOMEM;
        for (;;) {
                _cleanup_json_ json_t *page = NULL;
                json_t *params = json_pack("{s:I,s:i}", "offset", offset, "limit", PAGE_LIMIT),
                       *next;

                if (client_id > 0)
                        json_object_set_new(params, "client", json_integer(client_id));
                r = evd_call(client, method, params, CALL_TIMEOUT_MS, &page);
                if (r < 0) {
                        json_decref(all);
                        return r;
                }
                json_array_extend(all, json_object_get(page, key));
                next = json_object_get(page, "next");
                /* A page may end early (packet size): go on from where it stopped. */
                if (!json_is_integer(next) || json_integer_value(next) <= offset)
                        break;
                offset = json_integer_value(next);
        }
        *ret = json_pack("{s:o,s:I}", key, all, "total", (json_int_t)json_array_size(all));
        return *ret ? 0 : -ENOMEM;
}

int fetch_all(const char *method, const char *key, json_int_t client_id, json_t **ret) {
        int r = fetch_pages(method, key, client_id, ret);

        return r < 0 ? call_failed(method, r) : 0;
}
