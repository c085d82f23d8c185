/*
 * loop-glib.c - libevd inside GLib's main loop
 *
 *   loop-glib [SOCKET]   (see loop-common.h for what it does)
 *
 * The glue is one fd source: evd_client_fd() for G_IO_IN, evd_client_dispatch() when it
 * fires.
 */

#include <glib-unix.h>
#include <glib.h>

#include "loop-common.h"

typedef struct Loop {
        GMainLoop *main_loop;
        int code;
} Loop;

static void quit(void *userdata, int code) {
        Loop *loop = userdata;

        loop->code = code;
        g_main_loop_quit(loop->main_loop);
}

static gboolean on_evd_fd(gint fd, GIOCondition condition, gpointer userdata) {
        (void)fd;
        (void)condition;
        (void)loop_example_dispatch(userdata);
        return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv) {
        Loop loop = { .main_loop = g_main_loop_new(NULL, FALSE) };
        struct evd_client *client = NULL;

        if (loop_example_start(argc > 1 ? argv[1] : NULL, quit, &loop, &client) < 0)
                loop.code = 1;
        else {
                guint source = g_unix_fd_add(evd_client_fd(client), G_IO_IN, on_evd_fd, client);

                g_main_loop_run(loop.main_loop);
                g_source_remove(source);
        }
        (void)evd_client_free(client);
        g_main_loop_unref(loop.main_loop);
        return loop.code;
}
