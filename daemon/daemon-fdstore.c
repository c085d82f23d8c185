/* daemon-fdstore.c - a restart (new PID) that keeps every client: systemd's fd store
 *
 * With `fd-store` on (or $FDSTORE set: systemd 254 and later) and a service manager to
 * hold them, SIGTERM does not shut down: the state goes into a memfd as for a re-exec
 * (snapshot.h), every connection and watched fd into a carrier (fdcarrier.h), and the
 * carrier, the state and the listener (unless the socket unit owns it) into the store,
 * with FDPOLL=0: the carrier's writer is gone by then, and systemd must not drop it for
 * that HUP. The state is pushed last: found at the next start, everything else is there
 * too. Then the process exits without a word to its clients; their requests wait in their
 * sockets. The next start finds the three by name among the fds systemd passes, takes
 * them out of the store, and restores as after a re-exec.
 *
 * systemd cannot tell a service whether SIGTERM is a stop or a restart. It closes the
 * store when the unit is stopped with no job queued for it: after `systemctl stop` every
 * stored connection closes and its client sees EOF (no `shutdown` notification); after
 * `systemctl restart` (or Restart=) the store survives into the new process. Tested under
 * a real systemd 252 user manager (tests/test-systemd-manager.sh).
 */

#include "daemon-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "clock.h"
#include "fdcarrier.h"
#include "log.h"
#include "macro.h"
#include "server.h"
#include "snapshot.h"
#include "watch.h"

#define STORE_STATE "evd-state"
#define STORE_FDS "evd-fds"

bool daemon_fdstore_wanted(const Daemon *d) {
        const char *max = getenv("FDSTORE");

        return (d->config.fd_store || (max && atoi(max) > 0)) && getenv("NOTIFY_SOCKET");
}

typedef struct Carried {
        int *fds;
        size_t n, size;
} Carried;

static int collect_fd(int fd, void *userdata) {
        Carried *l = userdata;

        if (l->n == l->size) {
                size_t size = MAX(l->size * 2, (size_t)256);
                int *fds = realloc(l->fds, size * sizeof(*fds));

                if (!fds)
                        return -ENOMEM;
                l->fds = fds;
                l->size = size;
        }
        l->fds[l->n++] = fd;
        return 0;
}

/* One fd into the store under @name (borrowed: systemd gets a copy). Return: 0, -errno,
 * -ENOTCONN if there is no service manager to take it. */
static int store(int fd, const char *name) {
        char msg[64];
        int r;

        (void)snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", name);
        r = sd_pid_notify_with_fds(0, false, msg, &fd, 1);
        return r < 0 ? r : r == 0 ? -ENOTCONN : 0;
}

static void unstore_all(void) {
        (void)sd_notify(false, "FDSTOREREMOVE=1\nFDNAME=" STORE_STATE);
        (void)sd_notify(false, "FDSTOREREMOVE=1\nFDNAME=" STORE_FDS);
        (void)sd_notify(false, "FDSTOREREMOVE=1\nFDNAME=" SERVER_STORE_NAME);
}

/* What the next process owns now must not be touched on the way out: the client's
 * SO_PASSRIGHTS stays as the state says, and the socket path stays bound. */
static void hand_over(Daemon *d) {
        Conn *c;

        LIST_FOREACH(Conn, link, c, &d->conns)
                for (ListNode *n = list_first(&c->watches); n; n = list_next(&c->watches, n))
                        container_of(n, Watch, link)->holds_passrights = false;
        d->server.owns_path = false;
}

int daemon_fdstore_push(Daemon *d) {
        _cleanup_close_ int state = -1, carrier_write = -1, carrier_read = -1;
        SnapshotCounts counts = { 0 };
        Carried fds = { 0 };
        uint64_t start = monotonic_ns();
        bool own_listener = d->server.fd >= 0 && !d->server.activated;
        int r;

        r = snapshot_save(d, &state, &counts);
        if (r >= 0)
                r = snapshot_for_each_fd(d, collect_fd, &fds);
        if (r >= 0)
                r = fdcarrier_new(fds.n, &carrier_write, &carrier_read);
        if (r >= 0)
                r = fdcarrier_send(carrier_write, fds.fds, fds.n);
        free(fds.fds);
        carrier_write = safe_close(carrier_write); /* the reader sees EOF after the last fd */
        if (r >= 0)
                r = store(carrier_read, STORE_FDS);
        if (r >= 0 && own_listener)
                r = store(d->server.fd, SERVER_STORE_NAME);
        if (r >= 0)
                r = store(state, STORE_STATE);
        if (r < 0) {
                unstore_all();
                return log_error_errno(r, "Cannot hand the state to systemd's fd store; shutting down instead");
        }
        hand_over(d);
        log_info("Handed %u clients, %u watches, %u timers and %u queued packets to systemd's fd store in %.1f ms",
                 counts.clients, counts.watches, counts.timers, counts.packets, (double)(monotonic_ns() - start) / 1e6);
        return 0;
}

int daemon_fdstore_collect(ListenFds *passed, FdSet *ret) {
        int state = listen_fds_take(passed, STORE_STATE), carrier = listen_fds_take(passed, STORE_FDS), r;

        *ret = (FdSet){ 0 };
        if (state < 0 && carrier < 0)
                return -1;
        /* Ours now: left in the store, they would come back, stale, at the next start. The
         * listener (server_open() takes it) goes too. */
        unstore_all();
        r = carrier >= 0 ? fdcarrier_receive(carrier, ret) : -ENOENT;
        (void)safe_close(carrier);
        if (r >= 0 && state >= 0)
                return state;
        log_error_errno(r >= 0 ? -ENOENT : r, "Cannot take the previous process's state from the fd store: "
                        "starting fresh (its clients see EOF and reconnect)");
        (void)fdset_close_rest(ret);
        fdset_done(ret);
        (void)safe_close(state);
        return -1;
}
