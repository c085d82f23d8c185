/* daemon-reexec.c - replacing the running image in place, same PID (SIGUSR2, `reexec`)
 *
 * The state goes into a memfd (snapshot.h); the fds it names, the listener and the memfd
 * lose FD_CLOEXEC; everything else (ring, signalfd, timerfds) is closed by the exec and
 * made anew. Blocked and pending signals survive an exec, so a SIGTERM sent during the gap
 * is read by the next image's signalfd. Clients notice nothing but a pause: their sockets,
 * unread requests and unsent replies are all carried over.
 *
 * The binary is the one at the path this process was started from (read at start: after a
 * package upgrade /proc/self/exe names the deleted old file, and the new one is at the
 * path). Under systemd the PID does not change: RELOADING=1 before, READY=1 after.
 */

#include "daemon-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "macro.h"
#include "snapshot.h"

static int keep_across_exec(int fd, void *userdata) {
        return fcntl(fd, F_SETFD, 0) < 0 ? -errno : 0;
}

static int close_on_exec(int fd, void *userdata) {
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        return 0;
}

void daemon_reexec(Daemon *d) {
        SnapshotCounts counts = { 0 };
        char state_env[16], listen_env[32];
        uint64_t start, saved_ns;
        struct stat st;
        int fd = -1, r;

        d->reexec_requested = false;
        if (d->shutting_down)
                return;
        if (!d->exe_path || !d->argv) {
                r = -ENOEXEC;
                goto fail;
        }
        start = monotonic_ns();
        r = snapshot_save(d, &fd, &counts);
        if (r < 0)
                goto fail;
        saved_ns = monotonic_ns() - start;
        if (fstat(fd, &st) < 0)
                st.st_size = 0;
        r = snapshot_for_each_fd(d, keep_across_exec, NULL);
        if (r >= 0 && d->server.fd >= 0)
                r = keep_across_exec(d->server.fd, NULL);
        if (r >= 0)
                r = keep_across_exec(fd, NULL);
        if (r < 0)
                goto fail_fds;
        (void)snprintf(state_env, sizeof(state_env), "%d", fd);
        (void)snprintf(listen_env, sizeof(listen_env), "%d:%d", d->server.fd, d->server.activated);
        if (setenv(DAEMON_STATE_ENV, state_env, 1) < 0 ||
            (d->server.fd >= 0 && setenv(SERVER_INHERIT_ENV, listen_env, 1) < 0)) {
                r = -errno;
                goto fail_env;
        }
        log_info("Re-executing %s (generation %u): %u clients, %u watches, %u timers, %u queued packets; "
                 "state of %lld KiB written in %.1f ms",
                 d->exe_path, d->generation + 1, counts.clients, counts.watches, counts.timers, counts.packets,
                 (long long)st.st_size / 1024, (double)saved_ns / 1e6);
        (void)sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Re-executing",
                         (unsigned long long)(monotonic_ns() / NSEC_PER_USEC));
        (void)execv(d->exe_path, d->argv);
        r = -errno;
        (void)sd_notify(false, "READY=1");
        d->status_dirty = true;
fail_env:
        (void)unsetenv(DAEMON_STATE_ENV);
        (void)unsetenv(SERVER_INHERIT_ENV);
fail_fds:
        (void)snapshot_for_each_fd(d, close_on_exec, NULL);
        if (d->server.fd >= 0)
                (void)close_on_exec(d->server.fd, NULL);
fail:
        (void)safe_close(fd);
        d->reexec_failures++;
        d->reexec_error = r;
        log_error_errno(r, "Cannot re-execute %s; this image goes on serving", d->exe_path ? d->exe_path : "evd");
}

void daemon_restore(Daemon *d, int state_fd, FdSet *inherited) {
        _cleanup_free_ char *buf = NULL;
        SnapshotCounts counts = { 0 };
        uint64_t start = monotonic_ns();
        size_t len = 0;
        unsigned stray;
        int r;

        /* After a re-exec the set holds every fd open at start, these two with them; from the
         * fd store it holds only the carried fds, by their old numbers, which these are not. */
        if (!inherited->map) {
                (void)fdset_claim(inherited, state_fd);
                if (d->server.fd >= 0)
                        (void)fdset_claim(inherited, d->server.fd);
        }
        r = snapshot_read(state_fd, &buf, &len);
        (void)safe_close(state_fd);
        if (r >= 0)
                r = snapshot_restore(d, buf, len, inherited, &daemon_conn_ops, &counts);
        stray = fdset_close_rest(inherited);
        if (r < 0) {
                log_error_errno(r, "Cannot restore the previous image's state: starting fresh (%u inherited fds "
                                "closed; their clients see EOF and reconnect)", stray);
                return;
        }
        /* Fds the first image inherited from whoever started it and never used (not close-on-
         * exec there): they end here, once. */
        if (stray > 0)
                log_info("Closed %u inherited fds that the state did not name", stray);
        if (counts.dropped > 0)
                log_warning("Could not restore %u objects of the previous image (logged above)", counts.dropped);
        log_info("Restored %u clients, %u watches, %u timers and %u queued packets (generation %u) in %.1f ms",
                 counts.clients, counts.watches, counts.timers, counts.packets, d->generation,
                 (double)(monotonic_ns() - start) / 1e6);
}
