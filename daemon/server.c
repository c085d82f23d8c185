/* server.c - the listening socket
 *
 * A listener handed on by an earlier image first (a re-exec, or the fd store), then socket
 * activation (of the fds the service manager passed, those nobody else took: an AF_UNIX
 * SOCK_SEQPACKET listener is adopted, anything else is closed), else the daemon binds the
 * path itself:
 *  - the parent directory is created (0755 for root, 0700 otherwise) or, if it exists, must
 *    be a real directory owned by us or root and not writable by others;
 *  - the socket path is inspected with lstat(), never followed: a symlink or a non-socket
 *    is refused; a socket that answers a ping belongs to a live daemon and is refused with
 *    a clear message; one that refuses (ECONNREFUSED), or accepts and then resets (a
 *    killed daemon's lingering listener), is stale and replaced; one that accepts and
 *    stays silent for PROBE_WAIT_MS is refused;
 *  - the socket is created with its final mode through umask (0666 for root, so that any
 *    local user may connect; 0600 otherwise): there is no window with wider permissions.
 * A reserve fd is held so that EMFILE at accept() can still take the pending connection
 * off the queue and refuse it, instead of waking up for it again and again.
 *
 * The listener knows sockets, not clients: an accepted connection goes to ServerOps.accept
 * (daemon.c makes it a Conn), so this file sits below the connection layer.
 */

#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "clock.h"
#include "engine.h"
#include "jsonrpc.h"
#include "log.h"
#include "macro.h"
#include "wire.h"

#define ACCEPT_BUDGET 64

static int make_address(const char *path, struct sockaddr_un *sa, socklen_t *ret_len) {
        size_t len = strlen(path);

        if (len == 0 || len >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        *sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
        memcpy(sa->sun_path, path, len);
        *ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
        return 0;
}

static int ensure_directory(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        const char *dir;
        struct stat st;
        mode_t old_umask;
        int r;

        if (!copy)
                return -ENOMEM;
        dir = dirname(copy);
        /* The documented mode, whatever umask the daemon was started with. */
        old_umask = umask(0);
        r = mkdir(dir, geteuid() == 0 ? 0755 : 0700);
        if (r < 0)
                r = -errno;
        (void)umask(old_umask);
        if (r < 0 && r != -EEXIST)
                return log_error_errno(r, "Cannot create socket directory %s", dir);
        if (lstat(dir, &st) < 0)
                return log_error_errno(-errno, "Cannot inspect socket directory %s", dir);
        if (!S_ISDIR(st.st_mode)) {
                log_error("Socket directory %s is not a directory (a symlink?); refusing to use it", dir);
                return -ENOTDIR;
        }
        if (st.st_uid != geteuid() && st.st_uid != 0) {
                log_error("Socket directory %s belongs to uid %u; refusing to use it", dir, (unsigned)st.st_uid);
                return -EPERM;
        }
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
                log_error("Socket directory %s is writable by others; refusing to use it", dir);
                return -EPERM;
        }
        return 0;
}

/* How long a socket that accepts but has not yet answered (or reset) a probe is given. A
 * killed io_uring evd's listener outlives the process: its armed poll holds the file until
 * the ring's teardown runs in a kernel worker, so for about 100 ms connections are queued
 * on a listener nobody will accept from, then reset. A live evd answers a ping in far less
 * than this, even under valgrind. */
#define PROBE_WAIT_MS 3000

enum { PROBE_GONE, PROBE_ANSWERED, PROBE_BUSY, PROBE_SILENT };

/* Asks what listens on @sa: a connection and a ping, answered or reset within @wait_ms. */
static int probe_listener(const struct sockaddr_un *sa, socklen_t salen, int wait_ms) {
        static const char ping[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
        _cleanup_close_ int probe = -1;
        struct pollfd pfd;
        char reply[256];
        ssize_t n;
        int r;

        /* Non-blocking: connecting to a full backlog fails with EAGAIN instead of waiting. */
        probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (probe < 0)
                return -errno;
        if (connect(probe, (const struct sockaddr *)sa, salen) < 0) {
                if (errno == ECONNREFUSED)
                        return PROBE_GONE;
                return errno == EAGAIN ? PROBE_BUSY : -errno;
        }
        if (send(probe, ping, sizeof(ping) - 1, MSG_NOSIGNAL) < 0)
                return errno == EPIPE || errno == ECONNRESET ? PROBE_GONE : -errno;
        pfd = (struct pollfd){ .fd = probe, .events = POLLIN };
        do
                r = poll(&pfd, 1, wait_ms);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (r == 0)
                return PROBE_SILENT;
        n = recv(probe, reply, sizeof(reply), MSG_DONTWAIT);
        if (n > 0)
                return PROBE_ANSWERED;
        if (n == 0 || errno == ECONNRESET || errno == EPIPE)
                return PROBE_GONE; /* the dead daemon's listener was released under us */
        return errno == EAGAIN ? PROBE_SILENT : -errno;
}

/* 0: nothing there (or a stale socket, now removed); negative: refuse, logged. A socket that
 * accepts is asked whether it is alive (probe_listener()): connect() alone takes a dying
 * listener for a live one, and a restart right after a SIGKILL was refused. */
static int clear_stale(const char *path, const struct sockaddr_un *sa, socklen_t salen) {
        long long deadline = (long long)(monotonic_ns() / 1000000) + PROBE_WAIT_MS;
        struct stat st;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : log_error_errno(-errno, "Cannot inspect %s", path);
        if (S_ISLNK(st.st_mode)) {
                log_error("%s is a symlink; refusing to follow or replace it", path);
                return -ELOOP;
        }
        if (!S_ISSOCK(st.st_mode)) {
                log_error("%s exists and is not a socket; refusing to replace it", path);
                return -EEXIST;
        }
        for (;;) {
                long long left = deadline - (long long)(monotonic_ns() / 1000000);
                int r = probe_listener(sa, salen, left > 0 ? (int)left : 0);

                if (r < 0)
                        return log_error_errno(r, "Cannot probe %s", path);
                if (r == PROBE_ANSWERED) {
                        log_error("Another evd is already listening on %s; stop it first, or pass --socket PATH",
                                  path);
                        return -EADDRINUSE;
                }
                if (r == PROBE_GONE)
                        break;
                if (left <= 0) {
                        log_error("Something listens on %s but did not answer within %d ms (%s); stop it first, or pass --socket PATH",
                                  path, PROBE_WAIT_MS, r == PROBE_BUSY ? "its queue is full" : "a ping");
                        return -EADDRINUSE;
                }
                if (r == PROBE_BUSY)
                        (void)poll(NULL, 0, 10);
        }
        if (unlink(path) < 0 && errno != ENOENT)
                return log_error_errno(-errno, "Cannot remove stale socket %s", path);
        log_info("Replaced stale socket %s", path);
        return 0;
}

static int bind_path(Server *s, const char *path) {
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa;
        socklen_t salen;
        mode_t old_umask;
        int r;

        r = make_address(path, &sa, &salen);
        if (r < 0)
                return log_error_errno(r, "Socket path %s is empty or too long (max %zu bytes)", path,
                                       sizeof(sa.sun_path) - 1);
        r = ensure_directory(path);
        if (r < 0)
                return r;
        r = clear_stale(path, &sa, salen);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(-errno, "Cannot create a socket");
        old_umask = umask(geteuid() == 0 ? 0111 : 0177);
        r = bind(fd, (const struct sockaddr *)&sa, salen);
        (void)umask(old_umask);
        if (r < 0)
                return log_error_errno(-errno, "Cannot bind %s", path);
        s->owns_path = true;
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(-errno, "Cannot listen on %s", path);
        s->fd = TAKE_FD(fd);
        return 0;
}

int listen_fds_collect(ListenFds *ret) {
        char **names = NULL;
        int n = sd_listen_fds_with_names(true, &names);

        *ret = (ListenFds){ 0 };
        if (n <= 0) {
                if (n < 0)
                        log_warning_errno(n, "Ignoring socket activation");
                return MAX(n, 0);
        }
        ret->fds = malloc((size_t)n * sizeof(int));
        if (!ret->fds) {
                for (int i = 0; i < n; i++)
                        (void)close(SD_LISTEN_FDS_START + i);
                for (int i = 0; names && names[i]; i++)
                        free(names[i]);
                free(names);
                return -ENOMEM;
        }
        for (int i = 0; i < n; i++)
                ret->fds[i] = SD_LISTEN_FDS_START + i;
        ret->n = n;
        ret->names = names;
        return n;
}

static const char *listen_fds_name(const ListenFds *l, int i) {
        return l->names && l->names[i] ? l->names[i] : "unnamed";
}

int listen_fds_take(ListenFds *l, const char *name) {
        for (int i = 0; i < l->n; i++)
                if (l->fds[i] >= 0 && strcmp(listen_fds_name(l, i), name) == 0) {
                        int fd = l->fds[i];

                        l->fds[i] = -1;
                        return fd;
                }
        return -1;
}

void listen_fds_done(ListenFds *l) {
        for (int i = 0; i < l->n; i++)
                if (l->fds[i] >= 0) {
                        log_warning("Closing passed fd %d (%s): nothing here uses it", l->fds[i], listen_fds_name(l, i));
                        (void)close(l->fds[i]);
                }
        for (int i = 0; l->names && l->names[i]; i++)
                free(l->names[i]);
        free(l->names);
        free(l->fds);
        *l = (ListenFds){ 0 };
}

static int adopt_activated(Server *s, ListenFds *l) {
        bool passed = false;

        for (int i = 0; l && i < l->n; i++) {
                int fd = l->fds[i];

                if (fd < 0)
                        continue; /* taken by someone else (the fd store's) */
                passed = true;
                l->fds[i] = -1;
                if (s->fd < 0 && sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) > 0) {
                        s->fd = fd;
                        s->activated = true;
                } else {
                        log_warning("Closing activated fd %d (%s): not an AF_UNIX SOCK_SEQPACKET listener", fd,
                                    listen_fds_name(l, i));
                        (void)close(fd);
                }
        }
        if (passed && s->fd < 0) {
                log_error("Socket activation passed no AF_UNIX SOCK_SEQPACKET listening socket");
                return -ENOTSOCK;
        }
        if (s->activated) {
                struct sockaddr_un sa;
                socklen_t len = sizeof(sa);
                int flags = fcntl(s->fd, F_GETFL);

                if (flags < 0 || fcntl(s->fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
                    fcntl(s->fd, F_SETFD, FD_CLOEXEC) < 0)
                        return log_error_errno(-errno, "Cannot set up the activated socket");
                if (getsockname(s->fd, (struct sockaddr *)&sa, &len) == 0 && len > offsetof(struct sockaddr_un, sun_path) &&
                    sa.sun_path[0])
                        s->path = strndup(sa.sun_path, len - offsetof(struct sockaddr_un, sun_path));
        }
        return 0;
}

/* A listener an earlier image of evd bound or was given, and handed on: it keeps its path
 * (and its file's owner). */
static int adopt_kept(Server *s, int fd, bool activated) {
        struct sockaddr_un sa;
        socklen_t len = sizeof(sa);
        int flags = fcntl(fd, F_GETFL);

        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
                (void)close(fd);
                return log_error_errno(-errno, "Cannot set up the inherited socket");
        }
        s->fd = fd;
        s->activated = activated;
        s->owns_path = !activated;
        if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0 && len > offsetof(struct sockaddr_un, sun_path) &&
            sa.sun_path[0] && !(s->path = strndup(sa.sun_path, len - offsetof(struct sockaddr_un, sun_path))))
                return -ENOMEM;
        return 1;
}

/* Kept across a re-exec ($EVD_LISTEN_FD, "FD:ACTIVATED", set by daemon_reexec()), or
 * through the fd store (named SERVER_STORE_NAME, by daemon-fdstore.c). */
static int adopt_inherited(Server *s, ListenFds *l) {
        const char *v = getenv(SERVER_INHERIT_ENV);
        int fd = -1, activated = 0;

        if (!v) {
                fd = l ? listen_fds_take(l, SERVER_STORE_NAME) : -1;
                if (fd >= 0 && sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
                        log_warning("Closing the stored listener, fd %d: not an AF_UNIX SOCK_SEQPACKET listener", fd);
                        fd = safe_close(fd);
                }
                return fd >= 0 ? adopt_kept(s, fd, false) : 0;
        }
        if (sscanf(v, "%d:%d", &fd, &activated) != 2 || fd < 3 ||
            sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
                log_warning("Ignoring $" SERVER_INHERIT_ENV "=%s: not an AF_UNIX SOCK_SEQPACKET listener", v);
                (void)unsetenv(SERVER_INHERIT_ENV);
                return 0;
        }
        (void)unsetenv(SERVER_INHERIT_ENV);
        return adopt_kept(s, fd, activated != 0);
}

/* Out of fds: accept4() says EMFILE whether or not a connection waits (the fd is taken
 * first). Returns false when none was waiting: the caller stops instead of spinning. */
static bool refuse_for_fds(Server *s) {
        static uint64_t last_log;
        uint64_t now = engine_now(s->engine, ENGINE_CLOCK_MONOTONIC);
        char buf[512]; /* the error below, encoded */
        bool refused = false;
        unsigned clients = 0;
        int fd;

        /* Give the reserve fd back for a moment: enough to accept and tell the client. */
        s->reserve_fd = safe_close(s->reserve_fd);
        fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
                refused = true;
                json_t *err = jsonrpc_error(NULL, EVD_ERR_NO_FDS, NULL,
                                            jsonrpc_error_data(NULL, "the daemon is out of file descriptors"));
                size_t len;

                if (err && jsonrpc_encode(err, buf, sizeof(buf), &len) >= 0)
                        (void)wire_send(fd, buf, len, NULL, 0);
                json_decref(err);
                (void)close(fd);
                clients = s->ops->refused(s->userdata);
        }
        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (refused && (now - last_log > NSEC_PER_SEC || !last_log)) {
                last_log = now;
                log_warning("Out of file descriptors: refusing new clients (%u connected)", clients);
        }
        return refused;
}

void server_accept(Server *s) {
        if (s->fd < 0)
                return;
        for (int i = 0; i < ACCEPT_BUDGET; i++) {
                int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                int r;

                if (fd < 0) {
                        switch (errno) {
                        case EAGAIN:
                                s->accept_pending = false;
                                return;
                        case EINTR:
                        case ECONNABORTED:
                                continue;
                        case EMFILE:
                        case ENFILE:
                                if (refuse_for_fds(s))
                                        continue;
                                s->accept_pending = false;
                                return;
                        default:
                                log_warning_errno(-errno, "accept() failed");
                                s->accept_pending = false;
                                return;
                        }
                }
                r = s->ops->accept(s->userdata, fd);
                if (r < 0 && r != -EDQUOT)
                        log_warning_errno(r, "Cannot set up a new client");
        }
        /* More may be waiting: the listener is an edge source, so the work pass goes on. */
        s->accept_pending = true;
        s->ops->schedule(s->userdata);
}

static int listen_cb(EngineSource *source, int fd, uint32_t revents, void *userdata) {
        server_accept(userdata);
        return 0;
}

/*
 * Telling evd's own connections apart from other sockets, for the watch method: a client
 * must not have evd hold the client's end of a connection to evd (its own, or another
 * one's), or that connection is never seen to close and pins its watches and quota.
 *
 * Every socket connected to the listener, accepted or still in the backlog, has the
 * listener's address as its peer name (the kernel gives the new connection the listener's
 * address) and the credentials of whoever called listen() as its SO_PEERCRED (copied from
 * the listener at connect()). Under socket activation that is the service manager, not
 * evd: comparing SO_PEERCRED with getpid() misses every connection. Both are compared with
 * the listener's own, taken once here; together they name this listener, in any mount,
 * network or pid namespace, without privileges or extra sockets.
 *
 * Not used: the peer's inode through NETLINK_SOCK_DIAG (unix_diag, UDIAG_SHOW_PEER)
 * matched against the inodes of evd's own sockets. evd.service has
 * RestrictAddressFamilies=AF_UNIX (no AF_NETLINK) and PrivateNetwork=yes (unix_diag only
 * finds sockets of the caller's network namespace, and a connection lives in its client's),
 * and a connection still in the backlog has no inode yet. The price of names: a socket
 * connected to another listener with the same address and the same listen() credentials
 * (another evd, in another mount namespace, activated by the same process) is refused too.
 */
static void record_identity(Server *s) {
        socklen_t len = sizeof(s->addr);

        s->has_identity = false;
        if (getsockname(s->fd, (struct sockaddr *)&s->addr, &len) < 0 ||
            len <= offsetof(struct sockaddr_un, sun_path) || len > sizeof(s->addr)) {
                log_warning_errno(-errno, "Cannot read the listening socket's address");
                return;
        }
        s->addr_len = len;
        len = sizeof(s->listen_cred);
        if (getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &s->listen_cred, &len) < 0) {
                log_warning_errno(-errno, "Cannot read the listening socket's credentials");
                return;
        }
        s->has_identity = true;
}

bool server_is_own_connection(const Server *s, int fd) {
        struct sockaddr_un peer;
        socklen_t len = sizeof(peer);
        struct ucred cred;

        if (!s->has_identity)
                return false;
        if (getpeername(fd, (struct sockaddr *)&peer, &len) < 0 || len != s->addr_len ||
            memcmp(&peer, &s->addr, len) != 0)
                return false;
        len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return false;
        return cred.pid == s->listen_cred.pid && cred.uid == s->listen_cred.uid &&
               cred.gid == s->listen_cred.gid;
}

int server_open(Server *s, Engine *e, const ServerOps *ops, void *userdata, const char *path, ListenFds *passed) {
        _cleanup_free_ char *default_path = NULL;
        int r;

        *s = SERVER_NULL;
        s->engine = e;
        s->ops = ops;
        s->userdata = userdata;
        r = adopt_inherited(s, passed);
        if (r == 0)
                r = adopt_activated(s, passed);
        if (r < 0)
                return r;
        if (s->fd < 0) {
                if (!path) {
                        r = protocol_default_socket_path(&default_path);
                        if (r == -ENXIO) {
                                log_error("No socket path: pass --socket PATH, or set EVD_SOCKET or XDG_RUNTIME_DIR");
                                return r;
                        }
                        if (r < 0)
                                return log_error_errno(r, "Cannot determine the socket path");
                        path = default_path;
                }
                s->path = strdup(path);
                if (!s->path)
                        return -ENOMEM;
                r = bind_path(s, path);
                if (r < 0)
                        return r;
        }
        record_identity(s);
        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (s->reserve_fd < 0)
                return log_error_errno(-errno, "Cannot open /dev/null");
        r = engine_add_io(s->engine, &s->source, s->fd, ENGINE_IN, ENGINE_EDGE, listen_cb, s);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the listening socket");
        return 0;
}

void server_stop_listening(Server *s) {
        s->source = source_free(s->source);
        s->fd = safe_close(s->fd);
        s->accept_pending = false;
        if (s->owns_path && s->path) {
                (void)unlink(s->path);
                s->owns_path = false;
        }
}

void server_close(Server *s) {
        server_stop_listening(s);
        s->reserve_fd = safe_close(s->reserve_fd);
        free(s->path);
        s->path = NULL;
}
