/*
 * soak-client.c - how the soak talks to evd without libevd: where it listens (set by
 * soak-daemon.c), connecting, receiving one packet (replies and notifications, with a
 * timeout), reading error codes; and the millisecond clock everything times with.
 */

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "macro.h"
#include "soak.h"
#include "wire.h"

char soak_dir[64], soak_socket[128], soak_log[128];

long long now_ms(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- talking to the daemon --------------------------------------------------------- */

int connect_daemon(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        strcpy(sa.sun_path, soak_socket);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}

/* Receive one packet (parsed, a new reference) within @timeout_ms; NULL on timeout, EOF or
 * error, with the reason in *@ret (0 for EOF). */
json_t *recv_packet(int fd, int timeout_ms, int *ret) {
        static char buf[EVD_MAX_PACKET + 1];
        FdList fds = FD_LIST_NULL;
        WirePacket pkt;
        json_t *v = NULL;
        int r;

        r = wire_recv_blocking(fd, buf, sizeof(buf) - 1, &fds, &pkt, timeout_ms);
        fd_list_close(&fds);
        if (r < 0 || pkt.eof || pkt.truncated) {
                *ret = r < 0 ? r : pkt.truncated ? -EMSGSIZE : 0;
                return NULL;
        }
        if (jsonrpc_parse(buf, pkt.len, &v, NULL) < 0) {
                *ret = -EBADMSG;
                return NULL;
        }
        *ret = 1;
        return v;
}

/* Wait for the reply whose id is @id (an integer); each notification on the way is handed
 * to @on_note. Returns the reply (a new reference) or NULL, with the reason in *@ret. */
json_t *wait_reply(int fd, long long id, void (*on_note)(json_t *m, void *ud), void *ud,
                   int *ret) {
        long long deadline = now_ms() + REPLY_TIMEOUT_MS;

        for (;;) {
                long long left = deadline - now_ms();
                json_t *v, *found = NULL;
                size_t n;

                if (left <= 0) {
                        *ret = -ETIMEDOUT;
                        return NULL;
                }
                v = recv_packet(fd, (int)left, ret);
                if (!v)
                        return NULL;
                n = json_is_array(v) ? json_array_size(v) : 1;
                for (size_t i = 0; i < n; i++) {
                        json_t *m = json_is_array(v) ? json_array_get(v, i) : v;
                        json_t *mid = json_object_get(m, "id");

                        if (json_object_get(m, "method")) {
                                if (on_note)
                                        on_note(m, ud);
                        } else if (!found &&
                                   ((json_is_integer(mid) && json_integer_value(mid) == id) ||
                                    json_is_null(mid)))
                                /* One request at a time: an error with a null id is its answer. */
                                found = json_incref(m);
                }
                json_decref(v);
                if (found)
                        return found;
        }
}

/* Send @text with @fds (at most 32), then wait_reply(). */
json_t *request(int fd, const char *text, const int *fds, size_t n_fds, long long id,
                void (*on_note)(json_t *m, void *ud), void *ud, int *ret) {
        *ret = wire_send_blocking(fd, text, strlen(text), fds, n_fds);
        if (*ret < 0)
                return NULL;
        return wait_reply(fd, id, on_note, ud, ret);
}

int error_code(json_t *reply) {
        return (int)json_integer_value(json_object_get(json_object_get(reply, "error"), "code"));
}
