/*
 * evd-bench-client.c - scenario 7: what libevd costs per notification, split into its
 * parts, with nothing else on the CPU's bill.
 *
 * A stand-in daemon (a forked process on a socket of its own, not evd) answers `hello` and
 * `watch` and then, asked by a `blast` request, sends `ready` notifications exactly as evd
 * encodes them (the same bytes: tests/test-notify.c holds evd's encoder to jansson's, and
 * jansson encodes them here), B per packet, as fast as the socket takes them. The packets
 * are encoded before the clock starts, so the sender keeps ahead of the reader. The
 * reader's CPU per notification (CLOCK_PROCESS_CPUTIME_ID; one thread) is measured three
 * ways on the same packets:
 *   recvmsg   a plain socket, each packet read into libevd's buffer size and dropped;
 *   +parse    and parsed by jansson and freed, as libevd does (jsonrpc_parse());
 *   libevd    evd_client_dispatch() with a counting callback on each of W watches.
 * libevd minus +parse is libevd's own work: classify, find the watch, queue, run the
 * callback. evd-bench's throughput scenario measures the same sum with a real daemon,
 * pipes and the scheduler mixed in; this one says which part is whose.
 */

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evd-bench.h"
#include "jsonrpc.h"
#include "macro.h"
#include "protocol.h"
#include "wire.h"

#define CL_WATCHES 64u

static const unsigned cl_batches[] = {1, 8, 64};

typedef struct ClWatch {
        json_int_t id, tag;
} ClWatch;

typedef enum ClMode { CL_RECV, CL_PARSE, CL_LIBEVD, _CL_MODE_MAX } ClMode;

static const char *const cl_mode_names[_CL_MODE_MAX] = {"recvmsg", "+parse", "libevd"};

static uint64_t cpu_now_ns(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0)
                die_errno("clock_gettime");
        return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* ---- the stand-in daemon ------------------------------------------------------------- */

static char *cl_packet(const ClWatch *w, size_t n_watches, size_t first, unsigned batch, size_t *ret_len) {
        json_t *v = batch > 1 ? json_array() : NULL;
        char *buf = NULL;

        for (unsigned j = 0; j < batch; j++) {
                const ClWatch *x = &w[(first + j) % n_watches];
                json_t *m = jsonrpc_notification(
                        "ready", json_pack("{s:I,s:I,s:[s],s:I}", "watch", x->id, "tag", x->tag, "events", "in",
                                           "count", (json_int_t)1));

                if (!m)
                        die("client: out of memory");
                if (!v) {
                        v = m;
                        break;
                }
                json_array_append_new(v, m);
        }
        if (jsonrpc_encode_alloc(v, &buf, ret_len) < 0)
                die("client: cannot encode a packet of %u", batch);
        json_decref(v);
        return buf;
}

/* Until the reader hangs up: every packet of the cycle over the watches, again and again. */
static void cl_blast(int fd, ClWatch *w, size_t n_watches, unsigned batch, uint64_t total) {
        size_t n_packets = n_watches, len[CL_WATCHES];
        char *pkt[CL_WATCHES];

        for (size_t i = 0; i < n_packets; i++)
                pkt[i] = cl_packet(w, n_watches, i * batch, batch, &len[i]);
        for (uint64_t sent = 0; sent < total; sent += batch) {
                size_t i = (size_t)(sent / batch) % n_packets;
                int r = wire_send_blocking(fd, pkt[i], len[i], NULL, 0);

                if (r == -EPIPE || r == -ECONNRESET)
                        break;
                if (r < 0)
                        die("client: send: %s", strerror(-r));
        }
        for (size_t i = 0; i < n_packets; i++)
                free(pkt[i]);
}

static json_t *cl_answer(const JsonRpcRequest *req, ClWatch *w, size_t *n_watches, unsigned *ret_batch,
                         uint64_t *ret_total) {
        if (strcmp(req->method, "hello") == 0)
                return json_pack("{s:s,s:s,s:i}", "server", "evd-bench stand-in", "version", "0", "protocol",
                                 EVD_PROTOCOL_VERSION);
        if (strcmp(req->method, "watch") == 0 && *n_watches < CL_WATCHES) {
                w[*n_watches] = (ClWatch){.id = 1000 + (json_int_t)*n_watches,
                                          .tag = json_integer_value(json_object_get(req->params, "tag"))};
                return json_pack("{s:I}", "watch", w[(*n_watches)++].id);
        }
        if (strcmp(req->method, "blast") == 0) {
                *ret_batch = (unsigned)json_integer_value(json_object_get(req->params, "batch"));
                *ret_total = (uint64_t)json_integer_value(json_object_get(req->params, "total"));
                return json_object();
        }
        return NULL;
}

/* One connection: answer every request, then blast when asked. */
static void cl_serve(int fd) {
        ClWatch w[CL_WATCHES];
        size_t n_watches = 0;
        static char buf[EVD_MAX_PACKET];

        for (;;) {
                unsigned batch = 0;
                uint64_t total = 0;
                FdList fds = FD_LIST_NULL;
                WirePacket pkt;
                json_t *v = NULL, *replies = json_array();
                size_t n, i;
                char *out;
                int r;

                r = wire_recv_blocking(fd, buf, sizeof(buf), &fds, &pkt, STEP_TIMEOUT_MS);
                fd_list_close(&fds);
                if (r < 0 || pkt.eof)
                        break;
                if (jsonrpc_parse(buf, pkt.len, &v, NULL) < 0)
                        die("client: the stand-in daemon cannot parse a request");
                n = json_is_array(v) ? json_array_size(v) : 1;
                for (i = 0; i < n; i++) {
                        JsonRpcRequest req;
                        json_t *result;
                        int code;
                        const char *why;

                        if (jsonrpc_request_check(json_is_array(v) ? json_array_get(v, i) : v, &req, &code,
                                                  &why) < 0 ||
                            !req.id)
                                continue;
                        result = cl_answer(&req, w, &n_watches, &batch, &total);
                        json_array_append_new(replies,
                                              result ? jsonrpc_reply(req.id, result)
                                                     : jsonrpc_error(req.id, EVD_ERR_METHOD_NOT_FOUND,
                                                                     "Method not found", NULL));
                }
                if (json_array_size(replies) > 0) {
                        json_t *one = json_is_array(v) ? replies : json_array_get(replies, 0);

                        if (jsonrpc_encode_alloc(one, &out, &n) < 0)
                                die("client: cannot encode a reply");
                        if (wire_send_blocking(fd, out, n, NULL, 0) < 0)
                                break;
                        free(out);
                }
                json_decref(replies);
                json_decref(v);
                if (batch == 0)
                        continue;
                if (n_watches == 0) /* a plain socket reader registers nothing */
                        for (; n_watches < CL_WATCHES; n_watches++)
                                w[n_watches] = (ClWatch){.id = 1000 + (json_int_t)n_watches,
                                                         .tag = (json_int_t)n_watches + 1};
                cl_blast(fd, w, n_watches, batch, total);
        }
}

static void cl_daemon(int listener) {
        for (;;) {
                int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);

                if (fd < 0)
                        die_errno("client: accept");
                cl_serve(fd);
                (void)close(fd);
        }
}

/* ---- the readers ---------------------------------------------------------------------- */

static json_t *cl_blast_request(unsigned batch, uint64_t total) {
        return json_pack("{s:i,s:I}", "batch", (int)batch, "total", (json_int_t)total);
}

/* recvmsg and +parse: notifications counted from the packets themselves. */
static uint64_t cl_read_plain(const char *path, ClMode mode, unsigned batch, uint64_t total) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        json_t *req = jsonrpc_request_new(1, "blast", cl_blast_request(batch, total));
        static char buf[EVD_MAX_PACKET];
        uint64_t seen = 0, t0;
        bool answered = false;
        char *out;
        size_t n;
        int fd;

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                die_errno("client: socket");
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                die_errno("client: connect %s", path);
        if (!req || jsonrpc_encode_alloc(req, &out, &n) < 0)
                die("client: cannot encode the blast request");
        t0 = cpu_now_ns();
        if (wire_send_blocking(fd, out, n, NULL, 0) < 0)
                die_errno("client: send");
        while (seen < total) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                WirePacket pkt;
                int r;

                if (poll(&p, 1, STEP_TIMEOUT_MS) <= 0)
                        die("client: the stand-in daemon went silent");
                while ((r = wire_recv(fd, buf, sizeof(buf), NULL, &pkt)) >= 0 && !pkt.eof) {
                        json_t *v;

                        if (!answered) { /* the reply to blast */
                                answered = true;
                                continue;
                        }
                        if (mode == CL_RECV) {
                                seen += batch;
                                continue;
                        }
                        if (jsonrpc_parse(buf, pkt.len, &v, NULL) < 0)
                                die("client: cannot parse a notification packet");
                        seen += json_is_array(v) ? json_array_size(v) : 1;
                        json_decref(v);
                }
                if (r < 0 && r != -EAGAIN)
                        die("client: recv: %s", strerror(-r));
        }
        t0 = cpu_now_ns() - t0;
        free(out);
        json_decref(req);
        (void)close(fd);
        return t0;
}

static int cl_count(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        (void)c, (void)watch, (void)revents;
        (*(uint64_t *)userdata)++;
        return 0;
}

static uint64_t cl_read_libevd(const char *path, unsigned batch, uint64_t total) {
        struct evd_client *c = client_connect(path);
        Done done = {.what = "client: watch"};
        uint64_t seen = 0, t0;
        int fds[2], r;

        if (pipe_nb(fds) < 0)
                die_errno("pipe2");
        for (unsigned i = 0; i < CL_WATCHES; i++)
                if ((r = evd_watch_add_async(c, fds[0], EVD_IN, EVD_EDGE, cl_count, &seen, done_count, &done,
                                             NULL)) < 0)
                        die("client: watch: %s", evd_strerror(r));
        client_pump_until(c, &done.n, CL_WATCHES, done.what);
        done = (Done){.what = "client: blast"};
        t0 = cpu_now_ns();
        r = evd_call_async(c, "blast", cl_blast_request(batch, total), done_count, &done);
        if (r < 0)
                die("client: blast: %s", evd_strerror(r));
        while (seen < total)
                client_pump(c, STEP_TIMEOUT_MS);
        t0 = cpu_now_ns() - t0;
        (void)evd_client_free(c);
        (void)close(fds[0]);
        (void)close(fds[1]);
        return t0;
}

/* ---- the scenario ---------------------------------------------------------------------- */

#define CL_BLOCKS 3 /* per row: the blocks rotate through the modes, the best of each is kept */

json_t *run_client(BenchDaemon *unused) {
        uint64_t total = arg_quick ? 50000 : 300000;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char dir[] = "/tmp/evd-bench-client.XXXXXX";
        double us[ELEMENTSOF(cl_batches)][_CL_MODE_MAX];
        json_t *j = json_object(), *rows = json_array();
        pid_t pid;
        int listener;

        (void)unused;
        if (!mkdtemp(dir))
                die_errno("mkdtemp");
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/stand-in.sock", dir);
        listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (listener < 0 || bind(listener, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(listener, 4) < 0)
                die_errno("client: listen on %s", sa.sun_path);
        pid = child_fork();
        if (pid == 0)
                cl_daemon(listener);
        (void)close(listener);

        printf("\n7. What libevd costs per notification (a stand-in daemon sends evd's `ready`\n"
               "   packets as fast as the socket takes them; %d watches, %llu notifications a row,\n"
               "   the best of %d blocks; client CPU only)\n\n",
               CL_WATCHES, (unsigned long long)total, CL_BLOCKS);
        printf("   %-8s %10s %10s %10s %12s %12s\n", "batch", "recvmsg", "+parse", "libevd", "jansson", "libevd own");
        for (size_t b = 0; b < ELEMENTSOF(cl_batches); b++) {
                json_t *row = json_object();

                for (int m = 0; m < _CL_MODE_MAX; m++)
                        us[b][m] = 1e300;
                for (int k = 0; k < CL_BLOCKS; k++)
                        for (int i = 0; i < _CL_MODE_MAX; i++) {
                                int m = (i + k) % _CL_MODE_MAX; /* rotated: load drifts hit each alike */
                                uint64_t ns = m == CL_LIBEVD ? cl_read_libevd(sa.sun_path, cl_batches[b], total)
                                                             : cl_read_plain(sa.sun_path, (ClMode)m,
                                                                             cl_batches[b], total);

                                us[b][m] = MIN(us[b][m], (double)ns / 1e3 / (double)total);
                        }
                printf("   %-8u %10.3f %10.3f %10.3f %12.3f %12.3f\n", cl_batches[b], us[b][CL_RECV],
                       us[b][CL_PARSE], us[b][CL_LIBEVD], us[b][CL_PARSE] - us[b][CL_RECV],
                       us[b][CL_LIBEVD] - us[b][CL_PARSE]);
                jint(row, "batch", cl_batches[b]);
                for (int m = 0; m < _CL_MODE_MAX; m++)
                        jreal(row, cl_mode_names[m], us[b][m]);
                json_array_append_new(rows, row);
                if (cl_batches[b] == 64)
                        summary_add("libevd CPU/notification <= 1.0 us (batch 64)", SIZE_MAX, us[b][CL_LIBEVD] <= 1.0,
                                    "%.3f us", us[b][CL_LIBEVD]);
        }
        printf("   microseconds of client CPU per notification; jansson: +parse - recvmsg;\n"
               "   libevd own: libevd - +parse (classify, find the watch, queue, run the callback).\n");
        (void)kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        (void)unlink(sa.sun_path);
        (void)rmdir(dir);
        json_object_set_new(j, "rows", rows);
        jint(j, "watches", CL_WATCHES);
        jint(j, "notifications_per_row", total);
        return j;
}
