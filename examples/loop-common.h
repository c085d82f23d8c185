#pragma once
/*
 * loop-common.h - what the three event-loop examples share: the evd side
 *
 * Each example (loop-sd-event.c, loop-glib.c, loop-libuv.c) adds only its loop's glue:
 * poll evd_client_fd() for readability and call evd_client_dispatch() when it is
 * readable; nothing else (no deadline, no POLLOUT: libevd's fd covers its output and its
 * reconnect back-off, libevd(3)). What they do through evd: echo what arrives on standard
 * input (a watch, edge mode), print a tick every 200 ms (a daemon timer), and say when the
 * connection to evd is lost and restored (reconnect is on). End of input ends the program.
 */

#include <evd.h>

/** LoopQuit - ask the example's loop to stop and the program to exit with @code. */
typedef void (*LoopQuit)(void *loop, int code);

/**
 * loop_example_start() - connect (to @socket_path, or the default socket when NULL), watch
 * standard input, start the ticker.
 *
 * Standard input is switched to non-blocking (the watch is edge-triggered: the example reads
 * until EAGAIN). Return: 0, or a negative errno / EVD_E_ code (printed).
 * *@ret_client is owned by the caller (evd_client_free()).
 */
int loop_example_start(const char *socket_path, LoopQuit quit, void *loop, struct evd_client **ret_client);

/**
 * loop_example_dispatch() - what the loop calls when evd_client_fd() is readable.
 *
 * Return: 0; a dispatch error has already been handed to quit().
 */
int loop_example_dispatch(struct evd_client *client);
