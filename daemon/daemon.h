#pragma once
/* daemon.h - the daemon's state: engine, server, clients, limits, lifecycle */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "engine.h"
#include "idmap.h"
#include "list.h"
#include "pace.h"
#include "protocol.h"
#include "server.h"
#include "stats.h"

typedef struct Conn Conn;

/* What one uid holds across all its connections: per-user limits are checked here. */
typedef struct UidUsage {
        uid_t uid;
        unsigned clients;
        unsigned watches;
        unsigned timers;
        Pace timer_pace; /* max-timer-rate-per-uid over all its timers */
} UidUsage;

typedef struct DaemonOptions {
        const char *socket_path;  /* NULL: default rules (server_default_path()) */
        const char *config_path;  /* NULL: none */
        const ConfigSetting *cli; /* command-line settings, re-applied on every reload */
        size_t n_cli;
        EngineBackend backend;
        bool no_listen; /* no listening socket: clients come from daemon_add_client() (fuzzing) */
} DaemonOptions;

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
        IdMap uids;    /* uid + 1 -> UidUsage */
        IdMap passrights_off; /* socket inode -> watches holding SO_PASSRIGHTS off (count) */
        uint64_t next_client_id, next_watch_id, next_timer_id;
        unsigned n_watches, n_timers;

        EngineSource *work; /* defer: reads left-over input, flushes output, frees closed clients */
        EngineSource *sig_term, *sig_int, *sig_hup;
        EngineSource *watchdog;
        EngineSource *shutdown_deadline;
        uint64_t watchdog_usec;
        uint64_t started_mono;
        uint64_t started_real;
        bool shutting_down;
        bool status_dirty; /* sd_notify STATUS= needs refreshing */
        bool wedge_requested; /* debug: stop the loop to test the watchdog */

        DaemonStats stats;
        Histogram latency; /* event seen -> notification handed to the socket */

        /* One iteration's scratch: the daemon is single-threaded. */
        char recv_buf[EVD_MAX_PACKET + 1];
        char send_buf[EVD_MAX_PACKET];
        char encode_buf[EVD_MAX_PACKET];
        char reply_buf[EVD_MAX_PACKET]; /* a batch's replies, packed as they are encoded */
} Daemon;

int daemon_new(Daemon **ret, const DaemonOptions *opts);
Daemon *daemon_free(Daemon *d);
/** daemon_run() - serve until SIGTERM/SIGINT. Return: exit status (0) or -errno. */
int daemon_run(Daemon *d);

/** daemon_add_client() - serve a client on connected socket @fd (consumed). For callers
 * that bring their own connections (the dispatcher fuzzer). Return: 0 or -errno. */
int daemon_add_client(Daemon *d, int fd);

/** daemon_usage() - the uid's usage record, created on first use. Return: NULL on OOM. */
UidUsage *daemon_usage(Daemon *d, uid_t uid);
void daemon_usage_put(Daemon *d, UidUsage *u);
/** daemon_schedule() - make sure the work pass runs at the end of this iteration. */
void daemon_schedule(Daemon *d);
/** daemon_counts_changed() - clients/watches/timers changed: refresh STATUS= soon. */
void daemon_counts_changed(Daemon *d);
/** daemon_is_admin() - uid 0, the daemon's own uid, or a member of the admin group. */
bool daemon_is_admin(Daemon *d, uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups);
/** daemon_shutdown() - tell every client, flush, exit 0 (bounded in time). */
void daemon_shutdown(Daemon *d, const char *reason);
/** daemon_uptime_ns() */
uint64_t daemon_uptime_ns(Daemon *d);
