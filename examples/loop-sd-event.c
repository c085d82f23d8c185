/*
 * loop-sd-event.c - libevd inside systemd's sd-event loop
 *
 *   loop-sd-event [SOCKET]   (see loop-common.h for what it does)
 *
 * The glue is one I/O source: evd_client_fd() for EPOLLIN, evd_client_dispatch() when it
 * fires. sd-event's fd is an epoll fd and so is libevd's: nesting them is fine.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <systemd/sd-event.h>

#include "loop-common.h"

static void quit(void *loop, int code) {
        (void)sd_event_exit(loop, code);
}

static int on_evd_fd(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        (void)source;
        (void)fd;
        (void)revents;
        return loop_example_dispatch(userdata);
}

int main(int argc, char **argv) {
        sd_event *event = NULL;
        struct evd_client *client = NULL;
        int r;

        r = sd_event_default(&event);
        if (r < 0) {
                fprintf(stderr, "sd_event_default: %s\n", strerror(-r));
                return 1;
        }
        r = loop_example_start(argc > 1 ? argv[1] : NULL, quit, event, &client);
        if (r < 0)
                goto out;
        r = sd_event_add_io(event, NULL, evd_client_fd(client), EPOLLIN, on_evd_fd, client);
        if (r < 0) {
                fprintf(stderr, "sd_event_add_io: %s\n", strerror(-r));
                goto out;
        }
        r = sd_event_loop(event); /* the exit code given to quit() */
out:
        (void)evd_client_free(client);
        (void)sd_event_unref(event);
        return r == 0 ? 0 : 1;
}
