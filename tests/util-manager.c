/* util-manager.c - a service manager's notify socket with an fd store (util-manager.h) */

#include "util-manager.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Not Check's assertions: the benches use this too. A failure here is the harness's own. */
static void must(bool ok, const char *fmt, ...) {
        va_list ap;

        if (ok)
                return;
        va_start(ap, fmt);
        fprintf(stderr, "util-manager: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
        abort();
}

void manager_open(Manager *m) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

        memset(m, 0, sizeof(*m));
        must((size_t)snprintf(m->dir, sizeof(m->dir), "%s/evd-manager-XXXXXX", tmp) < sizeof(m->dir) &&
                     mkdtemp(m->dir),
             "mkdtemp in %s: %s", tmp, strerror(errno));
        snprintf(m->path, sizeof(m->path), "%s/notify", m->dir);
        memcpy(sa.sun_path, m->path, strlen(m->path));
        m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        must(m->fd >= 0 && bind(m->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "notify socket: %s",
             strerror(errno));
}

int manager_find(const Manager *m, const char *name) {
        for (unsigned i = 0; i < m->n_stored; i++)
                if (strcmp(m->names[i], name) == 0)
                        return (int)i;
        return -1;
}

void manager_drop(Manager *m, int i) {
        close(m->stored[i]);
        m->n_stored--;
        m->stored[i] = m->stored[m->n_stored];
        memcpy(m->names[i], m->names[m->n_stored], sizeof(m->names[i]));
}

/* One message: FDSTORE=1 keeps its fds under FDNAME= (as systemd: one name for all of
 * them), FDSTOREREMOVE=1 drops the name's. Return: false if none was waiting. */
static bool manager_read_one(Manager *m) {
        char buf[4096], *name = NULL;
        union {
                struct cmsghdr h;
                char b[CMSG_SPACE(sizeof(int) * 16)];
        } u;
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b) };
        int fds[16];
        size_t n_fds = 0;
        bool store, remove;
        ssize_t n = recvmsg(m->fd, &msg, MSG_CMSG_CLOEXEC);

        if (n < 0 && errno == EAGAIN)
                return false;
        must(n >= 0, "recvmsg: %s", strerror(errno));
        buf[n] = 0;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h))
                if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
                        n_fds = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        memcpy(fds, CMSG_DATA(h), n_fds * sizeof(int));
                }
        store = strstr(buf, "FDSTORE=1") != NULL;
        remove = strstr(buf, "FDSTOREREMOVE=1") != NULL;
        must(!store || strstr(buf, "FDPOLL=0"), "stored without FDPOLL=0: %s", buf);
        if (strstr(buf, "STOPPING=1"))
                m->stopping = true;
        if ((name = strstr(buf, "FDNAME=")))
                name[strcspn(name, "\n")] = 0, name += strlen("FDNAME=");
        if (store) {
                for (size_t i = 0; i < n_fds; i++) {
                        must(m->n_stored < MANAGER_MAX_STORED, "more than %d fds stored", MANAGER_MAX_STORED);
                        m->stored[m->n_stored] = fds[i];
                        snprintf(m->names[m->n_stored], sizeof(m->names[0]), "%s", name ? name : "stored");
                        m->n_stored++;
                }
        } else
                for (size_t i = 0; i < n_fds; i++)
                        close(fds[i]);
        if (remove && name) {
                m->removed++;
                for (int i; (i = manager_find(m, name)) >= 0;)
                        manager_drop(m, i);
        }
        return true;
}

void manager_read_all(Manager *m) {
        while (manager_read_one(m))
                ;
}

void manager_wait(Manager *m, bool (*done)(const Manager *m)) {
        for (int i = 0; i < MANAGER_WAIT_MS / 5 && !done(m); i++) {
                struct pollfd p = { .fd = m->fd, .events = POLLIN };

                (void)poll(&p, 1, 5);
                manager_read_all(m);
        }
        must(done(m), "what the manager waited for did not come within %d ms", MANAGER_WAIT_MS);
}

bool manager_all_removed(const Manager *m) {
        return m->removed >= 3 && m->n_stored == 0;
}

/* What systemd does at a stop with no job queued: close the whole store. */
void manager_close_store(Manager *m) {
        while (m->n_stored > 0)
                manager_drop(m, 0);
}

void manager_close(Manager *m) {
        manager_close_store(m);
        close(m->fd);
        (void)unlink(m->path);
        (void)rmdir(m->dir);
}

void manager_with_notify_socket(void *userdata) {
        setenv("NOTIFY_SOCKET", ((Manager *)userdata)->path, 1);
}

/* In the child: the store from fd 3 on, as systemd passes it. */
void manager_pass_store(void *userdata) {
        Manager *m = userdata;
        char names[512] = "", n[16];
        int high[MANAGER_MAX_STORED];

        for (unsigned i = 0; i < m->n_stored; i++)
                if ((high[i] = fcntl(m->stored[i], F_DUPFD, 100)) < 0)
                        _exit(125);
        for (unsigned i = 0; i < m->n_stored; i++) {
                if (dup2(high[i], 3 + (int)i) < 0)
                        _exit(125);
                close(high[i]);
                snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ":" : "", m->names[i]);
        }
        snprintf(n, sizeof(n), "%u", m->n_stored);
        setenv("LISTEN_FDS", n, 1);
        setenv("LISTEN_FDNAMES", names, 1);
        snprintf(n, sizeof(n), "%d", (int)getpid());
        setenv("LISTEN_PID", n, 1);
        setenv("NOTIFY_SOCKET", m->path, 1);
}

