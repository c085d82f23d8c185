/* test-libevd-connect.c - connecting: errors, close, the client name
 *
 * Part of the libevd suite: test-libevd.c runs it with the fixtures of util-libevd.h (a
 * daemon and a connected `client` per test).
 */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evd.h"
#include "test-libevd.h"
#include "util-check.h"
#include "util-daemon.h"
#include "util-fd.h"
#include "util-libevd.h"

/* ---- connect ---- */

START_TEST(test_connect_errors) {
        struct evd_client *c;
        char path[256];
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        ck_assert_int_eq(evd_client_new(&c), 0);
        ck_assert_ptr_null(evd_client_socket_path(c));
        ck_assert_int_eq(evd_client_dispatch(c), -ENOTCONN);
        ck_assert_int_eq(evd_call(c, "ping", NULL, 100, NULL), -ENOTCONN);
        ck_assert_int_eq(evd_watch_add(c, 0, EVD_IN, EVD_ONESHOT, on_watch, NULL, 100, NULL),
                         -ENOTCONN);

        snprintf(path, sizeof(path), "%s/nothing.sock", daemon_.dir);
        ck_assert_int_eq(evd_client_connect(c, path), -ENOENT);
        ck_assert_str_eq(evd_client_socket_path(c), path);

        /* A socket nobody listens on any more: refused. */
        snprintf(path, sizeof(path), "%s/stale.sock", daemon_.dir);
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);
        ck_assert_int_eq(evd_client_connect(c, path), -ECONNREFUSED);
        unlink(path);

        /* The default: $EVD_SOCKET. */
        setenv("EVD_SOCKET", daemon_.socket, 1);
        ck_assert_int_eq(evd_client_connect(c, NULL), 0);
        unsetenv("EVD_SOCKET");
        ck_assert_str_eq(evd_client_socket_path(c), daemon_.socket);
        ck_assert(evd_client_is_connected(c));
        ck_assert_int_eq(evd_client_connect(c, NULL), -EISCONN);
        ck_assert_int_eq(evd_call(c, "ping", NULL, WAIT_MS, NULL), 0);
        (void)evd_client_free(c);
}
END_TEST

START_TEST(test_connect_close_name) {
        int fd = evd_client_fd(client);
        json_t *clients;
        bool found = false;
        size_t i;
        json_t *it;

        ck_assert_int_ge(fd, 0);
        evd_client_close(client);
        ck_assert(!evd_client_is_connected(client));
        ck_assert_int_eq(evd_call(client, "ping", NULL, 100, NULL), -ENOTCONN);
        ck_assert_int_eq(evd_client_set_name(client, "libevd-test"), 0);
        ck_assert_int_eq(evd_client_connect(client, daemon_.socket), 0);
        ck_assert_int_eq(evd_client_fd(client), fd); /* the same fd for the client's life */

        /* We are root, so an admin: the name from "hello" shows in the listing. */
        clients = listing(client, "clients");
        json_array_foreach(clients, i,
                           it) if (json_is_string(json_object_get(it, "name")) &&
                                   strcmp(json_string_value(json_object_get(it, "name")),
                                          "libevd-test") == 0) found = true;
        json_decref(clients);
        ck_assert(found);
        ck_assert_str_eq(evd_version(), "0.1.0");
}
END_TEST

/* ---- tests --------------------------------------------------------------------------- */

void libevd_connect_tests(TCase *tc_connect) {
        tcase_add_test(tc_connect, test_connect_errors);
        tcase_add_test(tc_connect, test_connect_close_name);
}
