#pragma once
/* server.h - the listening socket: path rules, socket activation, accept */

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

typedef struct Daemon Daemon;
typedef struct EngineSource EngineSource;

typedef struct Server {
        Daemon *daemon;
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

/** server_open() - adopt a socket-activated listener, else bind @path (NULL: the default
 * rules of protocol_default_socket_path(); see server.c for the stale, live and symlink
 * rules). Return: 0 or -errno, logged. */
int server_open(Server *s, Daemon *d, const char *path);
void server_close(Server *s);
/** server_accept() - accept what is pending, up to a per-iteration bound. */
void server_accept(Server *s);
/** server_is_own_connection() - whether AF_UNIX socket @fd was connected to evd's listener:
 * one end of a connection to evd (accepted or still in the backlog). */
bool server_is_own_connection(const Server *s, int fd);
/** server_stop_listening() - at shutdown: no new clients. */
void server_stop_listening(Server *s);
