/*
 * loop-libuv.c - libevd inside a libuv loop
 *
 *   loop-libuv [SOCKET]   (see loop-common.h for what it does)
 *
 * The glue is one uv_poll_t: evd_client_fd() for UV_READABLE, evd_client_dispatch() when
 * it fires.
 */

#include <stdio.h>
#include <uv.h>

#include "loop-common.h"

typedef struct Loop {
        uv_loop_t *uv;
        uv_poll_t poll;
        int code;
} Loop;

static void quit(void *userdata, int code) {
        Loop *loop = userdata;

        loop->code = code;
        uv_stop(loop->uv);
}

static void on_evd_fd(uv_poll_t *poll, int status, int events) {
        (void)events;
        if (status < 0) {
                fprintf(stderr, "uv_poll: %s\n", uv_strerror(status));
                quit(poll->loop->data, 1);
                return;
        }
        (void)loop_example_dispatch(poll->data);
}

int main(int argc, char **argv) {
        Loop loop = { .uv = uv_default_loop() };
        struct evd_client *client = NULL;
        int r;

        loop.uv->data = &loop;
        if (loop_example_start(argc > 1 ? argv[1] : NULL, quit, &loop, &client) < 0)
                return 1;
        r = uv_poll_init(loop.uv, &loop.poll, evd_client_fd(client));
        if (r < 0) {
                fprintf(stderr, "uv_poll_init: %s\n", uv_strerror(r));
                (void)evd_client_free(client);
                return 1;
        }
        loop.poll.data = client;
        r = uv_poll_start(&loop.poll, UV_READABLE, on_evd_fd);
        if (r < 0) {
                fprintf(stderr, "uv_poll_start: %s\n", uv_strerror(r));
                loop.code = 1;
        } else
                (void)uv_run(loop.uv, UV_RUN_DEFAULT);
        /* A closed handle must be run out of the loop before the loop is closed. */
        uv_close((uv_handle_t *)&loop.poll, NULL);
        (void)uv_run(loop.uv, UV_RUN_NOWAIT);
        (void)evd_client_free(client);
        (void)uv_loop_close(loop.uv);
        return loop.code;
}
