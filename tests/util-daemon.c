/* util-daemon.c - see util-daemon.h
 *
 * Helpers abort the test (check's ck_assert) on anything unexpected, so that test bodies
 * read as the behaviour they check. Waiting is always bounded: poll() with a deadline.
 */

#include "util-daemon.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "macro.h"
#include "wire.h"

static long long now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *test_tmpdir(void) {
        const char *t = getenv("TMPDIR");

        return t && *t ? t : "/tmp";
}

void test_mkdtemp(char *buf, size_t size, const char *prefix) {
        int n = snprintf(buf, size, "%s/%s-XXXXXX", test_tmpdir(), prefix);

        ck_assert_msg(n > 0 && (size_t)n < size, "TMPDIR too long for %s", prefix);
        ck_assert_msg(mkdtemp(buf), "mkdtemp(%s): %s", buf, strerror(errno));
}

/* The start-up probe is gone from the daemon's books before the test begins: tests count
 * the daemon's fds and clients, and a probe still being closed is off by one. A ping
 * answered means it was accepted (and counted); its fd is closed when evd sees the EOF. */
static void probe_goes_away(TestDaemon *d, TestClient *probe) {
        int with_probe;

        json_decref(test_client_result(probe, "ping", NULL, NULL, 0));
        with_probe = test_daemon_fd_count(d);
        test_client_close(probe);
        ck_assert_int_eq(test_daemon_wait_fd_count(d, with_probe - 1, TEST_TIMEOUT_MS), with_probe - 1);
}

void test_daemon_start(TestDaemon *d, const char *const *extra_args) {
        test_daemon_start_with(d, extra_args, NULL);
}

void test_daemon_start_with(TestDaemon *d, const char *const *extra_args, const TestDaemonSpawn *spawn) {
        const char *bin = spawn && spawn->bin ? spawn->bin : getenv("EVD_TEST_DAEMON");
        const char *backend = getenv("EVD_TEST_BACKEND");
        const char *argv[64];
        size_t n = 0;
        long long deadline;
        pid_t parent;

        ck_assert_msg(bin && *bin, "EVD_TEST_DAEMON is not set");
        memset(d, 0, sizeof(*d));
        if (spawn && spawn->dir)
                snprintf(d->dir, sizeof(d->dir), "%s", spawn->dir);
        else
                test_mkdtemp(d->dir, sizeof(d->dir), "evd-test");
        snprintf(d->socket, sizeof(d->socket), "%s/evd.sock", d->dir);
        snprintf(d->log, sizeof(d->log), "%s/evd.log", d->dir);

        for (size_t i = 0; spawn && spawn->wrapper && spawn->wrapper[i] && n < 32; i++)
                argv[n++] = spawn->wrapper[i];
        argv[n++] = bin;
        argv[n++] = "--socket";
        argv[n++] = d->socket;
        argv[n++] = "--log-level";
        argv[n++] = "debug";
        if (backend && *backend) {
                argv[n++] = "--backend";
                argv[n++] = backend;
        }
        for (size_t i = 0; extra_args && extra_args[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = extra_args[i];
        argv[n] = NULL;

        parent = getpid();
        d->pid = fork();
        ck_assert_int_ge(d->pid, 0);
        if (d->pid == 0) {
                int log = open(d->log, O_WRONLY | O_CREAT | O_CLOEXEC | (spawn && spawn->dir ? O_APPEND : O_TRUNC),
                               0600);

                /* A test that fails between start and stop (check's fork mode exits, no-fork
                 * mode longjmps on) must not leave its daemon running. */
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127);
                if (log >= 0)
                        (void)dup2(log, STDERR_FILENO);
                /* The daemon must not inherit the test's notify socket or activation. */
                unsetenv("NOTIFY_SOCKET");
                unsetenv("LISTEN_FDS");
                unsetenv("LISTEN_PID");
                if (spawn && spawn->setup)
                        spawn->setup(spawn->userdata);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }

        deadline = now_ms() + TEST_TIMEOUT_MS;
        for (;;) {
                TestClient probe;
                int status;

                if (test_client_connect(&probe, d->socket) == 0) {
                        probe_goes_away(d, &probe);
                        return;
                }
                ck_assert_msg(waitpid(d->pid, &status, WNOHANG) == 0, "evd exited during start-up (see %s)", d->log);
                ck_assert_msg(now_ms() < deadline, "evd did not start listening within 5 s");
                (void)poll(NULL, 0, 5);
        }
}

static void remove_dir(TestDaemon *d) {
        DIR *dir = opendir(d->dir);
        struct dirent *de;

        if (!dir)
                return;
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.')
                        (void)unlinkat(dirfd(dir), de->d_name, 0);
        closedir(dir);
        (void)rmdir(d->dir);
}

static int reap(pid_t pid, int timeout_ms) {
        long long deadline = now_ms() + timeout_ms;
        int status;

        for (;;) {
                pid_t r = waitpid(pid, &status, WNOHANG);
                if (r == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                if (r < 0 || now_ms() >= deadline)
                        return -1;
                (void)poll(NULL, 0, 5);
        }
}

int test_daemon_stop(TestDaemon *d) {
        int status = 0;

        if (d->pid > 0) {
                (void)kill(d->pid, SIGTERM);
                status = reap(d->pid, 10000);
                if (status < 0) {
                        (void)kill(d->pid, SIGKILL);
                        status = reap(d->pid, 10000);
                        ck_abort_msg("evd did not exit within 10 s of SIGTERM");
                }
                d->pid = 0;
        }
        remove_dir(d);
        return status;
}

int test_daemon_wait_exit(TestDaemon *d, int timeout_ms) {
        int status;

        if (d->pid <= 0)
                return -1;
        status = reap(d->pid, timeout_ms);
        if (status >= 0)
                d->pid = 0;
        return status;
}

void test_daemon_pause(const TestDaemon *d) {
        char path[64], buf[512], *state;

        ck_assert_int_eq(kill(d->pid, SIGSTOP), 0);
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)d->pid);
        for (int waited = 0;; waited++) {
                FILE *f = fopen(path, "re");
                size_t n;

                ck_assert_ptr_nonnull(f);
                n = fread(buf, 1, sizeof(buf) - 1, f);
                fclose(f);
                buf[n] = 0;
                state = strrchr(buf, ')');
                ck_assert_ptr_nonnull(state);
                if (state[2] == 'T' || state[2] == 't')
                        return;
                ck_assert_msg(waited < TEST_TIMEOUT_MS, "evd did not stop");
                (void)poll(NULL, 0, 1);
        }
}

void test_daemon_resume(const TestDaemon *d) {
        ck_assert_int_eq(kill(d->pid, SIGCONT), 0);
}

void test_daemon_kill(TestDaemon *d) {
        if (d->pid > 0) {
                (void)kill(d->pid, SIGKILL);
                (void)reap(d->pid, 10000);
                d->pid = 0;
        }
}

int test_daemon_fd_count(const TestDaemon *d) {
        char path[64];
        struct dirent *de;
        DIR *dir;
        int n = 0;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int)d->pid);
        dir = opendir(path);
        ck_assert_ptr_nonnull(dir);
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(dir);
        return n;
}

int test_daemon_wait_fd_count(const TestDaemon *d, int want, int timeout_ms) {
        long long deadline = now_ms() + timeout_ms;
        int n;

        while ((n = test_daemon_fd_count(d)) != want && now_ms() < deadline)
                (void)poll(NULL, 0, 2);
        return n;
}

/* A "Key: N kB" line of the daemon's /proc/PID/status; -1 if absent. */
static long status_kb(const TestDaemon *d, const char *key) {
        char path[64], line[256];
        size_t key_len = strlen(key);
        long kb = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
        f = fopen(path, "re");
        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, key_len) == 0 && line[key_len] == ':' &&
                    sscanf(line + key_len + 1, "%ld kB", &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

long test_daemon_rss_kb(const TestDaemon *d) {
        return status_kb(d, "VmRSS");
}

long test_daemon_peak_rss_kb(const TestDaemon *d) {
        return status_kb(d, "VmHWM");
}

bool test_daemon_log_contains(const TestDaemon *d, const char *needle) {
        char buf[1 << 16];
        ssize_t n;
        int fd = open(d->log, O_RDONLY | O_CLOEXEC);
        bool found = false;
        size_t len = 0;

        if (fd < 0)
                return false;
        /* The log may be larger than the buffer: keep the tail of each read for overlaps. */
        while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
                len += (size_t)n;
                buf[len] = 0;
                if (strstr(buf, needle)) {
                        found = true;
                        break;
                }
                if (len > sizeof(buf) / 2) {
                        size_t keep = strlen(needle);
                        memmove(buf, buf + len - keep, keep);
                        len = keep;
                }
        }
        close(fd);
        return found;
}

/* A connected socket or -errno; allocates nothing, so that a forked child may use it. */
static int connect_socket(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int test_client_connect(TestClient *c, const char *path) {
        int fd;

        memset(c, 0, sizeof(*c));
        c->fd = -1;
        fd = connect_socket(path);
        if (fd < 0)
                return fd;
        c->fd = fd;
        c->next_id = 1;
        c->backlog = json_array();
        return 0;
}

/* test_client_connect_as() and test_client_connect_as_groups(). */
static int connect_as(TestClient *c, const char *path, uid_t uid, gid_t gid, const gid_t *groups,
                      size_t n_groups) {
        FdList fds = FD_LIST_NULL;
        WirePacket pkt;
        int sv[2], err = 0, status, r;
        pid_t pid;

        memset(c, 0, sizeof(*c));
        c->fd = -1;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(sv[0]);
                close(sv[1]);
                return r;
        }
        if (pid == 0) {
                int fd = -1;

                /* No check asserts in here: the child only reports, the parent judges. */
                close(sv[0]);
                if (setgroups(n_groups, groups) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
                        err = errno;
                else if ((fd = connect_socket(path)) < 0)
                        err = -fd;
                (void)wire_send_blocking(sv[1], &err, sizeof(err), fd >= 0 ? &fd : NULL,
                                         fd >= 0 ? 1 : 0);
                _exit(0);
        }
        close(sv[1]);
        r = wire_recv_blocking(sv[0], &err, sizeof(err), &fds, &pkt, TEST_TIMEOUT_MS);
        close(sv[0]);
        (void)waitpid(pid, &status, 0);
        if (r < 0)
                return r;
        if (pkt.eof || pkt.len != sizeof(err)) {
                fd_list_close(&fds);
                return -EPROTO;
        }
        if (err != 0 || fds.n != 1) {
                fd_list_close(&fds);
                return err ? -err : -EPROTO;
        }
        c->fd = fds.fds[0];
        c->next_id = 1;
        c->backlog = json_array();
        return 0;
}

int test_client_connect_as(TestClient *c, const char *path, uid_t uid, gid_t gid) {
        return connect_as(c, path, uid, gid, NULL, 0);
}

void test_client_close(TestClient *c) {
        c->fd = safe_close(c->fd);
        json_decref(c->backlog);
        c->backlog = NULL;
}

void test_client_send_raw(TestClient *c, const void *data, size_t len, const int *fds, size_t n_fds) {
        int r = wire_send_blocking(c->fd, data, len, fds, n_fds);

        ck_assert_msg(r >= 0, "send failed: %s", strerror(-r));
}

int test_client_sendmsg(TestClient *c, const void *data, size_t len, const int *fds, size_t n_fds) {
        struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        long long deadline = now_ms() + TEST_TIMEOUT_MS;
        char *control = NULL;
        int r = 0;

        if (n_fds > 0) {
                struct cmsghdr *cm;

                control = calloc(1, CMSG_SPACE(sizeof(int) * n_fds));
                if (!control)
                        return -ENOMEM;
                mh.msg_control = control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
        }
        for (;;) {
                struct pollfd p = { .fd = c->fd, .events = POLLOUT };
                long long left;

                if (sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
                        break;
                if (errno != EAGAIN && errno != EINTR) {
                        r = -errno;
                        break;
                }
                left = deadline - now_ms();
                if (left <= 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                (void)poll(&p, 1, (int)left);
        }
        free(control);
        return r;
}

void test_client_send(TestClient *c, json_t *msg, const int *fds, size_t n_fds) {
        char *buf = NULL;
        size_t len;

        ck_assert_ptr_nonnull(msg);
        ck_assert_int_ge(jsonrpc_encode_alloc(msg, &buf, &len), 0);
        test_client_send_raw(c, buf, len, fds, n_fds);
        free(buf);
        json_decref(msg);
}

json_t *test_client_recv(TestClient *c, int timeout_ms) {
        static char buf[EVD_MAX_PACKET + 1];
        FdList fds = FD_LIST_NULL;
        WirePacket pkt;
        json_t *v = NULL;
        int r;

        r = wire_recv_blocking(c->fd, buf, sizeof(buf), &fds, &pkt, timeout_ms);
        fd_list_close(&fds);
        if (r < 0 || pkt.eof)
                return NULL;
        ck_assert_msg(!pkt.truncated, "daemon sent an oversize packet");
        ck_assert_int_ge(jsonrpc_parse(buf, pkt.len, &v, NULL), 0);
        return v;
}

/* Split a packet into messages: replies are returned via @ret_reply when their id is @id,
 * everything else goes to the backlog. */
static bool take_packet(TestClient *c, json_t *v, long long id, json_t **ret_reply) {
        bool found = false;
        size_t n = json_is_array(v) ? json_array_size(v) : 1;

        for (size_t i = 0; i < n; i++) {
                json_t *m = json_is_array(v) ? json_array_get(v, i) : v;
                json_t *mid = json_object_get(m, "id");

                if (!found && mid && json_is_integer(mid) && json_integer_value(mid) == id &&
                    !json_object_get(m, "method")) {
                        *ret_reply = json_incref(m);
                        found = true;
                } else
                        json_array_append(c->backlog, m);
        }
        return found;
}

json_t *test_client_reply(TestClient *c, int timeout_ms) {
        long long deadline = now_ms() + timeout_ms;

        for (;;) {
                long long left = deadline - now_ms();
                json_t *v, *replies;
                size_t n;

                if (left <= 0)
                        return NULL;
                v = test_client_recv(c, (int)left);
                if (!v)
                        return NULL;
                if (json_is_object(v)) {
                        if (!json_object_get(v, "method"))
                                return v;
                        json_array_append_new(c->backlog, v);
                        continue;
                }
                replies = json_array();
                n = json_array_size(v);
                for (size_t i = 0; i < n; i++) {
                        json_t *m = json_array_get(v, i);
                        json_array_append(json_object_get(m, "method") ? c->backlog : replies, m);
                }
                json_decref(v);
                if (json_array_size(replies) > 0 || n == 0)
                        return replies;
                json_decref(replies);
        }
}

bool test_client_wait_eof(TestClient *c, int timeout_ms) {
        static char buf[EVD_MAX_PACKET + 1];
        long long deadline = now_ms() + timeout_ms;

        for (;;) {
                FdList fds = FD_LIST_NULL;
                long long left = deadline - now_ms();
                WirePacket pkt;
                json_t *v = NULL;
                int r;

                if (left <= 0)
                        return false;
                r = wire_recv_blocking(c->fd, buf, sizeof(buf), &fds, &pkt, (int)left);
                fd_list_close(&fds);
                if (r == -ETIMEDOUT)
                        return false;
                /* ECONNRESET: the daemon closed with our requests unread; that is an end too. */
                if (r < 0 || pkt.eof)
                        return true;
                if (!pkt.truncated && jsonrpc_parse(buf, pkt.len, &v, NULL) >= 0) {
                        if (json_is_array(v))
                                json_array_extend(c->backlog, v);
                        else
                                json_array_append(c->backlog, v);
                        json_decref(v);
                }
        }
}

json_t *test_client_call(TestClient *c, const char *method, json_t *params, const int *fds, size_t n_fds) {
        long long id = c->next_id++;
        long long deadline = now_ms() + TEST_TIMEOUT_MS;
        json_t *reply = NULL;

        test_client_send(c, jsonrpc_request_new(id, method, params), fds, n_fds);
        while (!reply) {
                long long left = deadline - now_ms();
                json_t *v;

                ck_assert_msg(left > 0, "no reply to %s within 5 s", method);
                v = test_client_recv(c, (int)left);
                ck_assert_msg(v, "connection closed or timed out waiting for the reply to %s", method);
                (void)take_packet(c, v, id, &reply);
                json_decref(v);
        }
        return reply;
}

json_t *test_client_result(TestClient *c, const char *method, json_t *params, const int *fds, size_t n_fds) {
        json_t *reply = test_client_call(c, method, params, fds, n_fds);
        json_t *result = json_object_get(reply, "result");
        char *text;

        if (!result) {
                text = json_dumps(reply, JSON_COMPACT);
                ck_abort_msg("%s failed: %s", method, text);
        }
        json_incref(result);
        json_decref(reply);
        return result;
}

int test_client_error_code(TestClient *c, const char *method, json_t *params, const int *fds, size_t n_fds) {
        json_t *reply = test_client_call(c, method, params, fds, n_fds);
        json_t *code = json_object_get(json_object_get(reply, "error"), "code");
        int r;

        ck_assert_msg(json_is_integer(code), "%s did not fail", method);
        r = (int)json_integer_value(code);
        json_decref(reply);
        return r;
}

static bool notification_matches(json_t *m, const char *method, const char *key, long long id) {
        const char *name = json_string_value(json_object_get(m, "method"));

        if (!name || (method && strcmp(name, method) != 0))
                return false;
        return !key || json_integer_value(json_object_get(json_object_get(m, "params"), key)) == id;
}

json_t *test_client_notification(TestClient *c, const char *method, int timeout_ms) {
        return test_client_notification_for(c, method, NULL, 0, timeout_ms);
}

json_t *test_client_notification_for(TestClient *c, const char *method, const char *key, long long id,
                                     int timeout_ms) {
        long long deadline = now_ms() + timeout_ms;

        for (;;) {
                size_t i;
                json_t *m, *v, *none = NULL;

                json_array_foreach(c->backlog, i, m) {
                        if (notification_matches(m, method, key, id)) {
                                json_incref(m);
                                json_array_remove(c->backlog, i);
                                return m;
                        }
                }
                if (now_ms() >= deadline)
                        return NULL;
                v = test_client_recv(c, (int)(deadline - now_ms()));
                if (!v)
                        return NULL;
                /* Id 0 is never one the client used: everything goes to the backlog. */
                (void)take_packet(c, v, 0, &none);
                json_decref(v);
        }
}

int test_client_connect_as_groups(TestClient *c, const char *path, uid_t uid, gid_t gid,
                                  const gid_t *groups, size_t n_groups) {
        return connect_as(c, path, uid, gid, groups, n_groups);
}

int test_wait_pid(pid_t pid, int timeout_ms) {
        return reap(pid, timeout_ms);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        (void)remove(path);
        return 0;
}

void test_remove_tree(const char *dir) {
        (void)nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void test_die_with_parent(pid_t parent) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(126);
}

void test_client_connect_admitted(TestClient *c, const TestDaemon *d) {
        static const char text[] = "{\"jsonrpc\":\"2.0\",\"id\":\"admitted\",\"method\":\"ping\"}";
        long long deadline = now_ms() + TEST_TIMEOUT_MS;

        for (;;) {
                json_t *r = NULL;
                bool ok;

                ck_assert_int_eq(test_client_connect(c, d->socket), 0);
                if (test_client_sendmsg(c, text, sizeof(text) - 1, NULL, 0) == 0)
                        r = test_client_reply(c, TEST_TIMEOUT_MS);
                ok = r && json_object_get(r, "result");
                json_decref(r);
                if (ok)
                        return;
                test_client_close(c);
                ck_assert_msg(now_ms() < deadline, "never admitted");
                (void)poll(NULL, 0, 5);
        }
}
