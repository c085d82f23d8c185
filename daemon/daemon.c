/* daemon.c - lifecycle, signals, service manager integration and the per-iteration work pass
 *
 * The top of the daemon's layers (ARCHITECTURE-daemon.md): it wires the listener to the
 * connections (ServerOps), the connections to the methods and notifications (ConnOps),
 * and frees a client's watches, timers and notices before the connection itself.
 *
 * The work pass is one defer source: it runs after the io callbacks and timers of an
 * iteration, reads input that a client left over (budget, back-pressure), flushes every
 * dirty client's output in one go (so notifications of one iteration share packets), and
 * frees the clients that closed during the iteration. It disables itself on entry; anything
 * that needs it again re-enables it, which keeps the loop from blocking in between.
 *
 * systemd: READY=1 once listening; STATUS= with the counts, refreshed at most once a
 * second; RELOADING=1/READY=1 around SIGHUP; STOPPING=1 at shutdown; WATCHDOG=1 from an
 * engine timer half the watchdog interval after the last ping, so a wedged loop really
 * stops the pings.
 */

#include "daemon.h"
#include "daemon-internal.h"

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "log.h"
#include "macro.h"
#include "methods.h"
#include "notify.h"
#include "usage.h"
#include "watch.h"

#define STATUS_INTERVAL_NS NSEC_PER_SEC
#define SHUTDOWN_GRACE_NS (3 * NSEC_PER_SEC)

/* The layers below hand up through these: a connection its requests and notices, the
 * listener its connections. */
static int flush_notices(Conn *c) {
        return notify_flush(c, watch_notice_subject);
}

const ConnOps daemon_conn_ops = {
        .dispatch = methods_call,
        .flush_notices = flush_notices,
};

static int server_accept_cb(void *userdata, int fd) {
        Conn *c;
        int r = conn_new(userdata, fd, &daemon_conn_ops, &c);

        if (r >= 0)
                notify_monitors_connection(c, "connected", NULL);
        return r;
}

static void server_schedule_cb(void *userdata) {
        daemon_schedule(userdata);
}

static unsigned server_refused_cb(void *userdata) {
        Daemon *d = userdata;

        d->stats.refused++;
        return (unsigned)d->conns.n;
}

static const ServerOps server_ops = {
        .accept = server_accept_cb,
        .schedule = server_schedule_cb,
        .refused = server_refused_cb,
};

/* A client's watches, timers and notices go first (they belong to the layers above the
 * connection), in the order they always went: watches, timers, notices. */
static void client_free(Conn *c) {
        ListNode *node;

        /* Here, not in conn_close() (the connection layer knows no notices): once per
         * connection, in the pass that closes it. */
        notify_monitors_connection(c, "disconnected", c->close_reason);
        while ((node = list_first(&c->watches)))
                (void)watch_free(container_of(node, Watch, link));
        while ((node = list_first(&c->timers)))
                (void)client_timer_free(container_of(node, ClientTimer, link));
        notify_drop_all(c);
        (void)conn_free(c);
}

static void notify_status(Daemon *d) {
        d->status_dirty = false;
        (void)sd_notifyf(false, "STATUS=%s%u clients, %u watches, %u timers (%s)",
                         d->shutting_down ? "Shutting down: " : "", (unsigned)d->conns.n,
                         d->n_watches, d->n_timers, engine_backend_name(d->engine));
}

static int status_cb(EngineSource *s, uint64_t expirations, void *userdata) {
        Daemon *d = userdata;

        if (d->status_dirty)
                notify_status(d);
        return 0;
}

static int watchdog_cb(EngineSource *s, uint64_t expirations, void *userdata) {
        uint64_t interval = source_timer_get_interval(s);

        (void)sd_notify(false, "WATCHDOG=1");
        /* The next ping a full half-interval after this one, not on the original schedule:
         * after a late ping that schedule's next deadline may be microseconds away, and a
         * second ping then tells the manager nothing. */
        (void)source_timer_set(s, engine_now(source_get_engine(s), ENGINE_CLOCK_MONOTONIC) + interval, interval);
        return 0;
}

static bool all_flushed(Daemon *d) {
        Conn *c;

        LIST_FOREACH(Conn, link, c, &d->conns)
                if (!c->closing && (conn_has_output(c) || conn_in_batch(c)))
                        return false;
        return true;
}

/* At the end of a work pass, like a re-exec: nothing is read or sent after the state is. */
static void hand_over_and_exit(Daemon *d) {
        d->store_requested = false;
        if (daemon_fdstore_push(d) < 0) {
                daemon_shutdown(d, "signal");
                return;
        }
        d->shutting_down = true;
        (void)sd_notify(false, "STOPPING=1");
        engine_exit(d->engine, 0);
}

static int work_cb(EngineSource *s, void *userdata) {
        Daemon *d = userdata;
        ListNode *node;
        Conn *c;

        List batch;

        /* Clients made dirty while this pass runs wait for the next one (which the loop
         * then does not block before): no client can keep the pass going forever. */
        (void)source_set_enabled(s, false);
        list_init(&batch);
        list_splice(&batch, &d->dirty);
        if (d->server.accept_pending)
                server_accept(&d->server);
        while ((node = list_first(&batch))) {
                c = container_of(node, Conn, dirty_link);
                list_remove(&batch, node);
                if (c->closing)
                        continue;
                /* A client that just had its budget waits for the next pass (the loop does
                 * not block meanwhile), so that the other fds are polled in between. */
                if (c->input_pending && c->read_this_pass)
                        conn_mark_dirty(c);
                else if (c->input_pending && (c->queued_bytes < CONN_PAUSE_BYTES / 2 || conn_in_batch(c)))
                        conn_read(c);
                c->read_this_pass = false;
                conn_flush(c);
        }
        while ((node = list_first(&d->doomed)))
                client_free(container_of(node, Conn, doomed_link));
        if (d->shutting_down && all_flushed(d))
                engine_exit(d->engine, 0);
        else if (d->batches_running > 0 && (d->store_requested || d->reexec_requested))
                ; /* a batch half run cannot be handed over: the next passes finish it */
        else if (d->store_requested)
                hand_over_and_exit(d);
        else if (d->reexec_requested)
                daemon_reexec(d); /* returns only if the exec failed */
        return 0;
}

static int shutdown_deadline_cb(EngineSource *s, uint64_t expirations, void *userdata) {
        Daemon *d = userdata;

        log_warning("Shutdown grace period over; %u clients did not read everything", (unsigned)d->conns.n);
        engine_exit(d->engine, 0);
        return 0;
}

void daemon_shutdown(Daemon *d, const char *reason) {
        Conn *c;

        if (d->shutting_down)
                return;
        d->shutting_down = true;
        log_info("Shutting down (%s)", reason);
        (void)sd_notify(false, "STOPPING=1");
        notify_status(d);
        server_stop_listening(&d->server);
        LIST_FOREACH(Conn, link, c, &d->conns)
                if (!c->closing)
                        notify_shutdown(c, reason);
        (void)engine_add_timer_after(d->engine, &d->shutdown_deadline, SHUTDOWN_GRACE_NS, 0, shutdown_deadline_cb, d);
        daemon_schedule(d);
}

/* A reload can take admin rights away: whatever a connection holds because it was an
 * admin ends with them, at once. Of the admin-only methods only `monitor` leaves state on
 * the connection (the listings answer once). */
static void recompute_admins(Daemon *d) {
        Conn *c;

        LIST_FOREACH(Conn, link, c, &d->conns) {
                c->admin = usage_is_admin(&d->config, c->uid, c->gid, c->groups, c->n_groups);
                if (!c->admin && !c->closing)
                        conn_stop_monitor(c, "permission");
        }
}

static void daemon_reload(Daemon *d) {
        int r;

        (void)sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)(monotonic_ns() / 1000));
        r = config_load(&d->config, d->config_path, d->cli, d->n_cli);
        if (r < 0)
                log_error("Reload failed; keeping the running configuration");
        else {
                log_set_max_level(d->config.log_level);
                recompute_admins(d);
                log_info("Configuration reloaded%s%s", d->config_path ? " from " : "",
                         d->config_path ? d->config_path : "");
        }
        (void)sd_notify(false, "READY=1");
        notify_status(d);
}

static int signal_cb(EngineSource *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;

        if (si->ssi_signo == SIGHUP)
                daemon_reload(d);
        else if (si->ssi_signo == SIGUSR2) {
                d->reexec_requested = true;
                daemon_schedule(d);
        } else if (si->ssi_signo == SIGTERM && !d->shutting_down && daemon_fdstore_wanted(d)) {
                d->store_requested = true;
                daemon_schedule(d);
        } else
                daemon_shutdown(d, "signal");
        return 0;
}

/* The path this binary was started from, for a re-exec (after an upgrade, /proc/self/exe
 * names the deleted old file; the new one is at this path). NULL if unknown. */
static char *exe_path(void) {
        char buf[4096];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

        if (n <= 0) {
                log_warning_errno(n < 0 ? -errno : -ENOENT, "Cannot find this binary's path: no re-exec");
                return NULL;
        }
        buf[n] = 0;
        return strdup(buf);
}

/* Every watch costs the daemon an fd: take all that the hard limit allows. */
static void raise_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_warning_errno(-errno, "Cannot raise the fd limit to %llu", (unsigned long long)rl.rlim_max);
}

int daemon_new(Daemon **ret, const DaemonOptions *opts) {
        Daemon *d;
        EngineOptions eopts = { .backend = opts->backend };
        uint64_t usec = 0;
        int r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->server = SERVER_NULL;
        list_init(&d->conns);
        list_init(&d->dirty);
        list_init(&d->monitors);
        list_init(&d->doomed);
        pool_init(&d->timer_pool, sizeof(ClientTimer), _Alignof(ClientTimer));
        config_init(&d->config);
        if (opts->config_path && !(d->config_path = strdup(opts->config_path))) {
                r = -ENOMEM;
                goto fail;
        }
        d->cli = opts->cli;
        d->n_cli = opts->n_cli;
        r = config_load(&d->config, d->config_path, d->cli, d->n_cli);
        if (r < 0)
                goto fail;
        log_set_max_level(d->config.log_level);
        raise_fd_limit();
        (void)signal(SIGPIPE, SIG_IGN);

        r = engine_new(&d->engine, &eopts);
        if (r < 0) {
                log_error_errno(r, "Cannot start the event engine");
                goto fail;
        }
        if (engine_fallback_reason(d->engine) < 0)
                log_notice_errno(engine_fallback_reason(d->engine), "io_uring is not available, using epoll");
        d->started_mono = engine_now(d->engine, ENGINE_CLOCK_MONOTONIC);
        d->started_real = engine_now(d->engine, ENGINE_CLOCK_REALTIME);
        if ((r = engine_add_defer(d->engine, &d->work, work_cb, d)) < 0 ||
            (r = engine_add_signal(d->engine, &d->sig_term, SIGTERM, signal_cb, d)) < 0 ||
            (r = engine_add_signal(d->engine, &d->sig_int, SIGINT, signal_cb, d)) < 0 ||
            (r = engine_add_signal(d->engine, &d->sig_hup, SIGHUP, signal_cb, d)) < 0 ||
            (r = engine_add_signal(d->engine, &d->sig_usr2, SIGUSR2, signal_cb, d)) < 0 ||
            (r = engine_add_timer_after(d->engine, NULL, STATUS_INTERVAL_NS, STATUS_INTERVAL_NS, status_cb, d)) < 0) {
                log_error_errno(r, "Cannot set up the event loop");
                goto fail;
        }
        (void)source_set_enabled(d->work, false);
        if (sd_watchdog_enabled(false, &usec) > 0 && usec > 0) {
                d->watchdog_usec = usec;
                r = engine_add_timer_after(d->engine, &d->watchdog, 0, usec * NSEC_PER_USEC / 2, watchdog_cb, d);
                if (r < 0)
                        goto fail;
        }
        if (!opts->no_listen) {
                r = server_open(&d->server, d->engine, &server_ops, d, opts->socket_path, opts->passed);
                if (r < 0)
                        goto fail;
        }
        d->argv = opts->argv;
        d->exe_path = exe_path();
        if (opts->inherited)
                daemon_restore(d, opts->state_fd, opts->inherited);
        *ret = d;
        return 0;
fail:
        (void)daemon_free(d);
        return r;
}

Daemon *daemon_free(Daemon *d) {
        ListNode *node;

        if (!d)
                return NULL;
        while ((node = list_first(&d->conns)))
                client_free(container_of(node, Conn, link));
        server_close(&d->server);
        /* Freeing the engine unblocks the signals it handled: one arriving now (a second
         * SIGTERM while we exit) must not kill the process with its default action. */
        (void)signal(SIGTERM, SIG_IGN);
        (void)signal(SIGINT, SIG_IGN);
        (void)signal(SIGHUP, SIG_IGN);
        (void)signal(SIGUSR2, SIG_IGN);
        /* The engine frees the sources still registered (work, signals, timers). */
        d->engine = engine_free(d->engine);
        idmap_deinit(&d->uids);
        idmap_deinit(&d->passrights_off);
        pool_deinit(&d->timer_pool);
        config_deinit(&d->config);
        free(d->config_path);
        free(d->exe_path);
        free(d);
        return NULL;
}

int daemon_add_client(Daemon *d, int fd) {
        return conn_new(d, fd, &daemon_conn_ops, NULL);
}

int daemon_run(Daemon *d) {
        int r;

        log_info("evd listening on %s (%s backend)", d->server.path ? d->server.path : "an activated socket",
                 engine_backend_name(d->engine));
        (void)sd_notify(false, "READY=1");
        notify_status(d);
        r = engine_run(d->engine);
        if (r < 0)
                return log_error_errno(r, "Event loop failed");
        return 0;
}
