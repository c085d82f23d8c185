/*
 * example.c - the smallest libevd program: wait, through evd, until standard input is
 * readable, or give up after a timeout (a daemon timer).
 *
 *   cc example.c $(pkg-config --cflags --libs libevd) -o example
 *   echo hello | ./example 5      # prints "stdin is readable", exits 0
 *   ./example 1 </dev/tty         # after a second: "timed out", exits 1
 *
 * It connects to the default socket ($EVD_SOCKET, else /run/evd/evd.sock for root, else
 * $XDG_RUNTIME_DIR/evd/evd.sock).
 */

#include <evd.h>
#include <stdio.h>
#include <stdlib.h>

static int on_ready(struct evd_client *client, uint64_t watch, uint32_t revents, void *userdata) {
        (void)watch;
        (void)userdata;
        printf("stdin is readable%s\n", revents & EVD_HUP ? " (hang-up)" : "");
        evd_client_exit(client, 0);
        return 0;
}

static int on_timeout(struct evd_client *client, uint64_t timer, uint64_t expirations,
                      void *userdata) {
        (void)timer;
        (void)expirations;
        (void)userdata;
        printf("timed out\n");
        evd_client_exit(client, 1);
        return 0;
}

int main(int argc, char **argv) {
        double seconds = argc > 1 ? atof(argv[1]) : 5;
        struct evd_client *client = NULL;
        uint64_t watch, timer;
        int r;

        r = evd_client_new(&client);
        if (r >= 0)
                r = evd_client_connect(client, NULL);
        if (r < 0) {
                fprintf(stderr, "example: cannot connect to evd at %s: %s\n",
                        client && evd_client_socket_path(client) ? evd_client_socket_path(client)
                                                                 : "?",
                        evd_strerror(r));
                evd_client_free(client);
                return 2;
        }

        /* Synchronous forms: each waits (at most 1000 ms) for the daemon's answer. */
        r = evd_watch_add(client, 0, EVD_IN, EVD_ONESHOT, on_ready, NULL, 1000, &watch);
        if (r >= 0)
                r = evd_timer_after(client, (uint64_t)(seconds * 1e6), 0, on_timeout, NULL, 1000,
                                    &timer);
        if (r < 0) {
                const struct evd_error *e = evd_client_last_error(client);

                fprintf(stderr, "example: %s%s%s\n", evd_strerror(r), e && e->why ? ": " : "",
                        e && e->why ? e->why : "");
                evd_client_free(client);
                return 2;
        }

        r = evd_client_run(client); /* until a callback calls evd_client_exit() */
        if (r < 0)
                fprintf(stderr, "example: %s\n", evd_strerror(r));
        evd_client_free(client);
        return r < 0 ? 2 : r;
}
