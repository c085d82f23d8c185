/*
 * evctl-call.c - evctl's connection to evd: connecting, calls, paged listings, and the
 * one-line error (with the exit code it implies) when any of it fails.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "evctl.h"

struct evd_client *client;

void errorf(const char *fmt, ...) {
        va_list ap;

        fputs("evctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
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
        if (r >= 0)
                return 0;

        path = evd_client_socket_path(client);
        switch (r) {
        case -ENOENT:
        case -ECONNREFUSED:
                errorf("evd is not running (%s %s); start it with \"evd%s%s\" or \"systemctl start "
                       "evd\"",
                       r == -ENOENT ? "no socket at" : "nothing listens on", path,
                       arg_socket ? " --socket " : "", arg_socket ? arg_socket : "");
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
