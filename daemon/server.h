#pragma once
/* server.h - the listening socket: path rules, socket activation, accept */

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

typedef struct Engine Engine;
typedef struct EngineSource EngineSource;

/* What the listener needs from whoever opened it: it knows sockets, not clients. */
typedef struct ServerOps {
        /* A connection was accepted on @fd (consumed). Return: 0, -EDQUOT (refused by a
         * client limit, already told), or -errno. */
        int (*accept)(void *userdata, int fd);
        /* More connections may be waiting: call server_accept() again at the end of this
         * iteration. */
        void (*schedule)(void *userdata);
        /* A connection was refused for lack of fds. Return: the clients connected, for the
         * log. */
        unsigned (*refused)(void *userdata);
} ServerOps;

typedef struct Server {
        Engine *engine;
        const ServerOps *ops;
        void *userdata;
        int fd;
        EngineSource *source;
        char *path;         /* what clients connect to (NULL: activated, unnamed) */
        bool activated;     /* from systemd: the manager owns the socket file */
        bool owns_path;     /* we bound it: unlink on exit */
        int reserve_fd;     /* released on EMFILE so a pending connection can be refused */
        bool accept_pending;
        /* The listener's identity, for server_is_own_connection(): its address and the
         * credentials of whoever called listen() on it (systemd, when activated). */
        bool has_identity;
        struct sockaddr_un addr;
        socklen_t addr_len;
        struct ucred listen_cred;
} Server;
#define SERVER_NULL ((Server){ .fd = -1, .reserve_fd = -1 })

/* How a re-exec hands the listener to the next image (server.c, daemon_reexec()). */
#define SERVER_INHERIT_ENV "EVD_LISTEN_FD"
/* Its name in systemd's fd store, for a restart (daemon-fdstore.c); an activated listener
 * is the socket unit's and never stored. */
#define SERVER_STORE_NAME "evd-listen"

/* The fds the service manager passed (sd_listen_fds_with_names()): socket activation, and
 * the fd store's on a restart. Each is taken by name, or adopted by server_open(). */
typedef struct ListenFds {
        int n;
        int *fds; /* -1 once taken */
        char **names;
} ListenFds;

/** listen_fds_collect() - take $LISTEN_FDS (and unset it). Return: how many, or -errno. */
int listen_fds_collect(ListenFds *ret);
/** listen_fds_take() - the first fd named @name, now the caller's. Return: it, or -1. */
int listen_fds_take(ListenFds *l, const char *name);
/** listen_fds_done() - close what nobody took (logged), and free @l. */
void listen_fds_done(ListenFds *l);

/** server_open() - adopt a listener an earlier image handed on, or a socket-activated one
 * of @passed (may be NULL; what is adopted or refused is taken out of it), else bind @path
 * (NULL: the default rules of protocol_default_socket_path(); see server.c for the stale,
 * live and symlink rules), polled on @e; accepted connections go to @ops with @userdata.
 * Return: 0 or -errno, logged. */
int server_open(Server *s, Engine *e, const ServerOps *ops, void *userdata, const char *path, ListenFds *passed);
void server_close(Server *s);
/** server_accept() - accept what is pending, up to a per-iteration bound. */
void server_accept(Server *s);
/** server_is_own_connection() - whether AF_UNIX socket @fd was connected to evd's listener:
 * one end of a connection to evd (accepted or still in the backlog). */
bool server_is_own_connection(const Server *s, int fd);
/** server_stop_listening() - at shutdown: no new clients. */
void server_stop_listening(Server *s);
