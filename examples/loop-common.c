/* loop-common.c - the evd side of the event-loop examples (see loop-common.h) */

#include "loop-common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TICK_USEC 200000
#define CALL_TIMEOUT_MS 5000

typedef struct Example {
        LoopQuit quit;
        void *loop;
        unsigned long ticks;
        bool input_ended; /* the loop may run more callbacks before it stops */
} Example;

static Example example;

static int on_stdin(struct evd_client *client, uint64_t watch, uint32_t revents, void *userdata) {
        char buf[4096];

        (void)client;
        (void)watch;
        (void)userdata;
        if (example.input_ended)
                return 0;
        if (revents & EVD_CLOSED) {
                fprintf(stderr, "evd dropped the watch of standard input\n");
                example.quit(example.loop, 1);
                return 0;
        }
        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

                if (n > 0) {
                        printf("read %.*s%s", (int)n, buf, buf[n - 1] == '\n' ? "" : "\n");
                        continue;
                }
                if (n == 0) {
                        example.input_ended = true;
                        printf("end of input\n");
                        example.quit(example.loop, 0);
                } else if (errno != EAGAIN && errno != EINTR) {
                        fprintf(stderr, "read: %s\n", strerror(errno));
                        example.quit(example.loop, 1);
                } else if (errno == EINTR)
                        continue;
                return 0;
        }
}

static int on_tick(struct evd_client *client, uint64_t timer, uint64_t expirations, void *userdata) {
        (void)client;
        (void)timer;
        (void)userdata;
        if (expirations == 0) { /* could not be re-registered after a reconnect */
                fprintf(stderr, "evd dropped the ticker\n");
                example.quit(example.loop, 1);
                return 0;
        }
        example.ticks += expirations;
        printf("tick %lu\n", example.ticks);
        return 0;
}

static int on_connection(struct evd_client *client, enum evd_connection_event event, int reason, void *userdata) {
        (void)client;
        (void)userdata;
        if (event == EVD_CONNECTION_LOST)
                printf("connection lost: %s\n", evd_strerror(reason));
        else
                printf("connection restored%s%s\n", reason < 0 ? ": " : "", reason < 0 ? evd_strerror(reason) : "");
        return 0;
}

int loop_example_start(const char *socket_path, LoopQuit quit, void *loop, struct evd_client **ret_client) {
        struct evd_client *client = NULL;
        uint64_t watch, timer;
        int flags, r;

        example = (Example){ .quit = quit, .loop = loop };
        /* Line-buffered even into a pipe: whoever reads the output sees each event as it happens. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        flags = fcntl(STDIN_FILENO, F_GETFL);
        if (flags < 0 || fcntl(STDIN_FILENO, F_SETFL, flags | O_NONBLOCK) < 0) {
                r = -errno;
                fprintf(stderr, "standard input: %s\n", strerror(errno));
                return r;
        }
        r = evd_client_new(&client);
        if (r < 0)
                goto fail;
        r = evd_client_set_name(client, "loop-example");
        if (r < 0)
                goto fail;
        evd_client_set_reconnect(client, true);
        evd_client_set_connection_handler(client, on_connection, NULL);
        r = evd_client_connect(client, socket_path);
        if (r < 0)
                goto fail;
        r = evd_watch_add(client, STDIN_FILENO, EVD_IN, EVD_EDGE, on_stdin, NULL, CALL_TIMEOUT_MS, &watch);
        if (r < 0)
                goto fail;
        r = evd_timer_after(client, TICK_USEC, TICK_USEC, on_tick, NULL, CALL_TIMEOUT_MS, &timer);
        if (r < 0)
                goto fail;
        printf("watching standard input, ticking every %d ms\n", TICK_USEC / 1000);
        *ret_client = client;
        return 0;
fail:
        fprintf(stderr, "evd: %s\n", evd_strerror(r));
        (void)evd_client_free(client);
        return r;
}

int loop_example_dispatch(struct evd_client *client) {
        int r = evd_client_dispatch(client);

        if (r < 0) {
                fprintf(stderr, "evd: %s\n", evd_strerror(r));
                example.quit(example.loop, 1);
        }
        return 0;
}
