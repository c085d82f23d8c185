/* contender-libuv.c - libuv's uv_poll_t, the documented way to watch a foreign fd
 *
 * One uv_poll_t per pipe (handle->data holds the index), UV_READABLE, uv_run(UV_RUN_DEFAULT)
 * until a callback calls uv_stop(). libuv polls with level-triggered epoll on Linux.
 * Teardown closes every handle and runs the loop until the close callbacks are done, as
 * uv_loop_close() requires.
 */

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static uv_loop_t uvloop;
static bool uvloop_live;
static uv_poll_t *handles;
static unsigned handles_init;

static const char *libuv_version(void) {
        static char buf[32];

        (void)snprintf(buf, sizeof(buf), "libuv %s", uv_version_string());
        return buf;
}

static void poll_cb(uv_poll_t *h, int status, int events) {
        if (bench_pipes_readable((unsigned)(uintptr_t)h->data))
                uv_stop(h->loop);
}

static int uv_setup(const char **ret_why) {
        int r;

        r = uv_loop_init(&uvloop);
        if (r < 0)
                return r;
        uvloop_live = true;
        handles = calloc(bench_pipes.n, sizeof(*handles));
        if (!handles)
                return -ENOMEM;
        for (unsigned i = 0; i < bench_pipes.n; i++) {
                r = uv_poll_init(&uvloop, &handles[i], bench_pipes.pipes[i].r);
                if (r < 0)
                        return r;
                handles_init = i + 1;
                handles[i].data = (void *)(uintptr_t)i;
                r = uv_poll_start(&handles[i], UV_READABLE, poll_cb);
                if (r < 0)
                        return r;
        }
        (void)uv_run(&uvloop, UV_RUN_NOWAIT);
        return 0;
}

static int uv_bench_run(void) {
        (void)uv_run(&uvloop, UV_RUN_DEFAULT);
        return 0;
}

static int64_t uv_waits(void) {
        return -1;
}

static void uv_teardown(void) {
        for (unsigned i = 0; i < handles_init; i++)
                uv_close((uv_handle_t *)&handles[i], NULL);
        handles_init = 0;
        if (uvloop_live) {
                (void)uv_run(&uvloop, UV_RUN_DEFAULT);
                (void)uv_loop_close(&uvloop);
                uvloop_live = false;
        }
        free(handles);
        handles = NULL;
}

const IoContender contender_libuv = {
        .name = "libuv",
        .version = libuv_version,
        .setup = uv_setup,
        .run = uv_bench_run,
        .waits = uv_waits,
        .teardown = uv_teardown,
};
