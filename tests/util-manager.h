#pragma once
/* util-manager.h - tests and benches: playing a service manager's notify socket with an fd store
 *
 * It keeps what evd stores (FDSTORE=1 with FDNAME=, FDSTOREREMOVE=1) and hands it to the
 * next evd as systemd passes it: the stored fds from fd 3 on, $LISTEN_FDS,
 * $LISTEN_FDNAMES, $LISTEN_PID (pass_store(), a TestDaemonSpawn setup).
 */

#include <stdbool.h>

#define MANAGER_MAX_STORED 8
#define MANAGER_WAIT_MS 5000 /* TEST_TIMEOUT_MS */

typedef struct Manager {
        char dir[80];
        char path[108];
        int fd;
        int stored[MANAGER_MAX_STORED];
        char names[MANAGER_MAX_STORED][64];
        unsigned n_stored;
        unsigned removed; /* FDSTOREREMOVE=1 messages */
        bool stopping;    /* STOPPING=1 seen */
} Manager;

/** manager_open() - bind a notify socket in a new private folder; aborts on failure. */
void manager_open(Manager *m);
/** manager_find() - the index of the first fd stored as @name, or -1. */
int manager_find(const Manager *m, const char *name);
/** manager_drop() - close stored fd @i and forget it. */
void manager_drop(Manager *m, int i);
/** manager_read_all() - take every message waiting (FDSTORE=1 must come with FDPOLL=0). */
void manager_read_all(Manager *m);
/** manager_wait() - read until @done holds, at most MANAGER_WAIT_MS (aborts after). */
void manager_wait(Manager *m, bool (*done)(const Manager *m));
/** manager_all_removed() - evd took the three back out of the store (for manager_wait()). */
bool manager_all_removed(const Manager *m);
/** manager_close_store() - what systemd does at a stop with no job queued: close it all. */
void manager_close_store(Manager *m);
/** manager_close() - close the store and the socket, remove the folder. */
void manager_close(Manager *m);
/** manager_with_notify_socket() - TestDaemonSpawn setup (userdata: the Manager): set
 * $NOTIFY_SOCKET. */
void manager_with_notify_socket(void *userdata);
/** manager_pass_store() - TestDaemonSpawn setup (userdata: the Manager): the store from
 * fd 3 on, $LISTEN_*, $NOTIFY_SOCKET. */
void manager_pass_store(void *userdata);
