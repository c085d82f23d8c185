#pragma once
/* state.h - the state every layer of the daemon shares: engine, server, clients, counts */

/*
 * One Daemon per process, created and wired by daemon.c (the top layer). The layers below
 * it (conn, notify, watch, methods) reach it through their connection (Conn.daemon) and
 * read or update its fields directly: the lists of clients, the id counters, the
 * configuration, the counters and one iteration's scratch buffers. What they may call on it
 * is here, as inline functions over those fields, so that no layer calls up into daemon.c.
 */

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "engine.h"
#include "fdset.h"
#include "idmap.h"
#include "list.h"
#include "pool.h"
#include "protocol.h"
#include "server.h"
#include "stats.h"

typedef struct Daemon {
        Engine *engine;
        Config config;
        char *config_path;
        const ConfigSetting *cli;
        size_t n_cli;
        Server server;

        List conns;    /* Conn.link */
        List dirty;    /* Conn.dirty_link: output to send or input left to read */
        List monitors; /* Conn.monitor_link */
        List doomed;   /* Conn.doomed_link: closing, freed at the end of the work pass */
        IdMap uids;    /* uid -> UidUsage (usage.h) */
        IdMap passrights_off; /* socket inode -> PassrightsHold (watch.c) */
        uint64_t next_client_id, next_watch_id, next_timer_id;
        unsigned n_watches, n_timers;
        Pool timer_pool; /* ClientTimer (watch.c): by the million */

        EngineSource *work; /* defer: reads left-over input, flushes output, frees closed clients */
        EngineSource *sig_term, *sig_int, *sig_hup, *sig_usr2;
        EngineSource *watchdog;
        EngineSource *shutdown_deadline;
        uint64_t watchdog_usec;
        uint64_t started_mono;
        uint64_t started_real;
        bool shutting_down;
        bool status_dirty; /* sd_notify STATUS= needs refreshing */
        bool wedge_requested; /* debug: stop the loop to test the watchdog */
        bool reexec_requested; /* SIGUSR2 or `reexec`: at the end of this work pass */
        bool store_requested;  /* SIGTERM with the fd store (daemon-fdstore.c): likewise */
        unsigned batches_running; /* Conn.batch in progress: no hand-over until they end */
        char *exe_path;        /* the binary a re-exec runs: this one's path at start */
        char **argv;
        unsigned generation;   /* re-execs survived by this process */
        uint64_t reexec_failures;
        int reexec_error;      /* of the last failed re-exec (-errno), 0 if none */

        DaemonStats stats;
        Histogram latency; /* event seen -> notification handed to the socket */
        Histogram packet_cost; /* a packet's read to its replies queued: how long one packet held the loop */
        Histogram timer_lateness; /* a client timer's deadline -> the daemon handling its expiry */
        FdCount fd_count; /* `stats`' count of open fds, where the kernel does not keep it */

        /* One iteration's scratch: the daemon is single-threaded. */
        char recv_buf[EVD_MAX_PACKET + 1];
        char send_buf[EVD_MAX_PACKET];
        char encode_buf[EVD_MAX_PACKET];
        char reply_buf[EVD_MAX_PACKET]; /* a batch's replies, packed as they are encoded */
} Daemon;

/** daemon_schedule() - make sure the work pass runs at the end of this iteration. */
static inline void daemon_schedule(Daemon *d) {
        if (d->work)
                (void)source_set_enabled(d->work, true);
}

/** daemon_counts_changed() - clients/watches/timers changed: refresh STATUS= soon. */
static inline void daemon_counts_changed(Daemon *d) {
        d->status_dirty = true;
}

/** daemon_uptime_ns() */
static inline uint64_t daemon_uptime_ns(Daemon *d) {
        return engine_now(d->engine, ENGINE_CLOCK_MONOTONIC) - d->started_mono;
}
