#pragma once
/* daemon.h - the daemon: creation, wiring of its layers, lifecycle (the state: state.h) */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "engine.h"
#include "fdset.h"
#include "server.h"
#include "state.h"

/* How the image before a re-exec tells the next one where its state is: the fd number of
 * the memfd snapshot_save() wrote (daemon-reexec.c). */
#define DAEMON_STATE_ENV "EVD_STATE_FD"

typedef struct DaemonOptions {
        const char *socket_path;  /* NULL: default rules (server_default_path()) */
        const char *config_path;  /* NULL: none */
        const ConfigSetting *cli; /* command-line settings, re-applied on every reload */
        size_t n_cli;
        EngineBackend backend;
        bool no_listen; /* no listening socket: clients come from daemon_add_client() (fuzzing) */
        char **argv;    /* what a re-exec runs again (borrowed; NULL: no re-exec) */
        /* The fds the service manager passed (may be NULL): activation, the fd store. */
        ListenFds *passed;
        /* Started by a re-exec or from the fd store: the fds handed on, and the state. */
        FdSet *inherited;
        int state_fd;
} DaemonOptions;

/** daemon_fdstore_collect() - at start, take the fd store's state and carrier out of
 * @passed (and out of the store), the carried fds into *@ret by their old numbers.
 * Return: the state fd (for daemon_restore() with @ret), or -1: nothing stored, or a store
 * that cannot be read (logged; what it held is closed). */
int daemon_fdstore_collect(ListenFds *passed, FdSet *ret);

int daemon_new(Daemon **ret, const DaemonOptions *opts);
Daemon *daemon_free(Daemon *d);
/** daemon_run() - serve until SIGTERM/SIGINT. Return: exit status (0) or -errno. */
int daemon_run(Daemon *d);

/** daemon_add_client() - serve a client on connected socket @fd (consumed). For callers
 * that bring their own connections (the dispatcher fuzzer). Return: 0 or -errno. */
int daemon_add_client(Daemon *d, int fd);

/** daemon_shutdown() - tell every client, flush, exit 0 (bounded in time). */
void daemon_shutdown(Daemon *d, const char *reason);
