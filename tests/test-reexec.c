/* test-reexec.c - evd replaced in place (same PID) keeps every client, watch and timer
 *
 * The observer is a client that keeps its connection: after a re-exec (the `reexec` method
 * or SIGUSR2) it must find its ids, tags, names, modes and armed states as they were, get
 * the events that happened around the gap, and never see EOF. The other half is the new
 * image's distrust of what it inherits: a state it cannot read, or one that names an fd it
 * did not inherit, is a fresh start in which every inherited connection sees EOF. A
 * checked-in state file of format version 1 must keep loading in every later evd.
 * meson runs the binary once per backend; EVD_UNDER_VALGRIND scales the loop down.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "util-check.h"
#include "util-daemon.h"

#define TIMEOUT TEST_TIMEOUT_MS

static json_t *status(TestClient *c) {
        return test_client_result(c, "status", NULL, NULL, 0);
}

static json_int_t status_int(TestClient *c, const char *section, const char *key) {
        json_t *s = status(c);
        json_int_t v = json_integer_value(json_object_get(section ? json_object_get(s, section) : s, key));

        json_decref(s);
        return v;
}

static json_int_t stats_int(TestClient *c, const char *section, const char *key) {
        json_t *s = test_client_result(c, "stats", NULL, NULL, 0);
        json_int_t v = json_integer_value(json_object_get(json_object_get(s, section), key));

        json_decref(s);
        return v;
}

/* Wait (polling `status`, whose request waits in the socket during the gap) until the
 * daemon's re-exec generation is @want. */
static void wait_generation(TestClient *c, json_int_t want) {
        for (int i = 0; i < TIMEOUT / 10; i++) {
                if (status_int(c, "reexec", "generation") == want)
                        return;
                (void)poll(NULL, 0, 10);
        }
        ck_abort_msg("the daemon did not reach re-exec generation %lld", (long long)want);
}

static json_int_t watch_pipe(TestClient *c, int fd, const char *mode, json_t *tag) {
        json_t *r = test_client_result(c, "watch", json_pack("{s:i,s:[s],s:s,s:o}", "fd", 0, "events", "in", "mode",
                                                             mode, "tag", tag),
                                       &fd, 1);
        json_int_t id = json_integer_value(json_object_get(r, "watch"));

        ck_assert_int_gt(id, 0);
        json_decref(r);
        return id;
}

static json_int_t add_timer(TestClient *c, double after, double interval, json_t *tag) {
        json_t *params = json_pack("{s:f,s:o}", "after", after, "tag", tag);
        json_t *r;
        json_int_t id;

        if (interval > 0)
                json_object_set_new(params, "interval", json_real(interval));
        r = test_client_result(c, "timer", params, NULL, 0);
        id = json_integer_value(json_object_get(r, "timer"));
        ck_assert_int_gt(id, 0);
        json_decref(r);
        return id;
}

static void make_pipe(int p[2]) {
        ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

/* Whether nobody holds the read end of the pipe whose write end is @fd any more. */
static bool pipe_reader_gone(int fd) {
        (void)signal(SIGPIPE, SIG_IGN);
        return write(fd, "x", 1) < 0 && errno == EPIPE;
}

static void poke(int fd) {
        ck_assert_int_eq(write(fd, "x", 1), 1);
}

/* The item of listing @method whose @key is @id (a new reference), or NULL. */
static json_t *listed(TestClient *c, const char *method, const char *key, json_int_t id) {
        json_t *r = test_client_result(c, method, NULL, NULL, 0), *item, *found = NULL;
        size_t i;

        json_array_foreach(json_object_get(r, method), i, item)
                if (json_integer_value(json_object_get(item, key)) == id)
                        found = json_incref(item);
        json_decref(r);
        return found;
}

static void assert_tag(json_t *item, const char *want_json) {
        json_t *want = json_loads(want_json, JSON_DECODE_ANY, NULL);

        ck_assert_ptr_nonnull(item);
        ck_assert_msg(json_equal(json_object_get(item, "tag"), want), "tag %s, expected %s",
                      json_dumps(json_object_get(item, "tag"), JSON_ENCODE_ANY | JSON_COMPACT), want_json);
        json_decref(want);
}

START_TEST(test_state_survives) {
        TestDaemon d;
        TestClient c;
        int edge[2], once[2];
        json_int_t w_edge, w_once, t_rep, t_once, client_id, pid, w_new, packets, packet_costs, latencies;
        json_t *r, *item, *n;

        test_daemon_start(&d, NULL);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        r = test_client_result(&c, "hello", json_pack("{s:i,s:s}", "protocol", 1, "client", "alpha"), NULL, 0);
        client_id = json_integer_value(json_object_get(r, "client_id"));
        json_decref(r);
        pid = status_int(&c, NULL, "pid");
        make_pipe(edge);
        make_pipe(once);
        w_edge = watch_pipe(&c, edge[0], "edge", json_pack("{s:[i,i]}", "k", 1, 2));
        w_once = watch_pipe(&c, once[0], "oneshot", json_integer(7));
        t_rep = add_timer(&c, 0.05, 0.05, json_string("rep"));
        t_once = add_timer(&c, 0.5, 0, json_string("once"));
        /* The oneshot fires before the re-exec and is left disarmed (its pipe stays full). */
        poke(once[1]);
        json_decref(test_client_notification_for(&c, "ready", "watch", w_once, TIMEOUT));

        packets = stats_int(&c, "daemon", "packets_in");
        packet_costs = stats_int(&c, "packet_cost", "count");
        latencies = stats_int(&c, "latency", "count");
        ck_assert_int_gt(packet_costs, 0);
        ck_assert_int_gt(latencies, 0);
        r = test_client_result(&c, "reexec", NULL, NULL, 0);
        ck_assert_int_eq(json_integer_value(json_object_get(r, "pid")), pid);
        ck_assert_int_eq(json_integer_value(json_object_get(r, "generation")), 0);
        json_decref(r);
        wait_generation(&c, 1);
        ck_assert_int_eq(status_int(&c, NULL, "pid"), pid);
        ck_assert_msg(test_daemon_log_contains(&d, "Restored 1 clients, 2 watches, 2 timers"), "see %s", d.log);
        /* The statistics go on from where they were, histograms included. */
        ck_assert_int_gt(stats_int(&c, "daemon", "packets_in"), packets);
        ck_assert_int_gt(stats_int(&c, "packet_cost", "count"), packet_costs);
        ck_assert_int_ge(stats_int(&c, "latency", "count"), latencies);

        item = listed(&c, "clients", "client", client_id);
        ck_assert_ptr_nonnull(item);
        ck_assert_str_eq(json_string_value(json_object_get(item, "name")), "alpha");
        json_decref(item);
        item = listed(&c, "watches", "watch", w_edge);
        assert_tag(item, "{\"k\":[1,2]}");
        ck_assert_str_eq(json_string_value(json_object_get(item, "mode")), "edge");
        ck_assert(json_is_true(json_object_get(item, "armed")));
        json_decref(item);
        item = listed(&c, "watches", "watch", w_once);
        assert_tag(item, "7");
        ck_assert(json_is_false(json_object_get(item, "armed")));
        json_decref(item);
        item = listed(&c, "timers", "timer", t_rep);
        assert_tag(item, "\"rep\"");
        json_decref(item);

        /* The watches and timers work on: the edge one reports, the spent oneshot does not
         * until armed, both timers go on with their ids and tags. */
        poke(edge[1]);
        n = test_client_notification_for(&c, "ready", "watch", w_edge, TIMEOUT);
        ck_assert_ptr_nonnull(n);
        json_decref(n);
        json_decref(test_client_result(&c, "ping", NULL, NULL, 0));
        ck_assert_ptr_null(test_client_notification_for(&c, "ready", "watch", w_once, 200));
        json_decref(test_client_result(&c, "arm", json_pack("{s:I}", "watch", w_once), NULL, 0));
        n = test_client_notification_for(&c, "ready", "watch", w_once, TIMEOUT);
        ck_assert_ptr_nonnull(n);
        json_decref(n);
        n = test_client_notification_for(&c, "timer", "timer", t_rep, TIMEOUT);
        ck_assert_ptr_nonnull(n);
        json_decref(n);
        n = test_client_notification_for(&c, "timer", "timer", t_once, TIMEOUT);
        ck_assert_ptr_nonnull(n);
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(n, "params"), "tag")), "once");
        json_decref(n);
        /* Ids are not handed out twice. */
        w_new = watch_pipe(&c, edge[0], "edge", json_null());
        ck_assert_int_gt(w_new, MAX(w_edge, w_once));

        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
        close(edge[0]);
        close(edge[1]);
        close(once[0]);
        close(once[1]);
}
END_TEST

/* An event that happens while the daemon is between images is reported after the gap. */
START_TEST(test_event_in_gap) {
        TestDaemon d;
        TestClient c;
        int p[2];
        json_int_t w;
        json_t *n;

        test_daemon_start(&d, NULL);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        make_pipe(p);
        w = watch_pipe(&c, p[0], "edge", json_null());
        ck_assert_int_eq(kill(d.pid, SIGUSR2), 0);
        poke(p[1]);
        wait_generation(&c, 1);
        n = test_client_notification_for(&c, "ready", "watch", w, TIMEOUT);
        ck_assert_ptr_nonnull(n);
        json_decref(n);
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
        close(p[0]);
        close(p[1]);
}
END_TEST

/* A re-exec asked for inside a batch run over many turns (max-turn-us 0: a request a
 * turn) waits for the batch: its replies are not in the state, so going first would lose
 * them. All of them come, as one array, and then the new image answers. */
START_TEST(test_reexec_waits_for_batch) {
        static const char *const args[] = { "--max-turn-us=0", NULL };
        json_t *batch = json_array(), *r, *item;
        TestDaemon d;
        TestClient c;
        size_t i;

        test_daemon_start(&d, args);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        json_array_append_new(batch, json_pack("{s:s,s:i,s:s}", "jsonrpc", "2.0", "id", 0, "method", "reexec"));
        for (int k = 1; k <= 50; k++)
                json_array_append_new(batch, json_pack("{s:s,s:i,s:s}", "jsonrpc", "2.0", "id", k, "method", "ping"));
        test_client_send(&c, batch, NULL, 0);
        r = test_client_reply(&c, TIMEOUT);
        ck_assert_msg(json_is_array(r) && json_array_size(r) == 51, "the batch was not answered whole");
        json_array_foreach(r, i, item) {
                ck_assert_int_eq(json_integer_value(json_object_get(item, "id")), (json_int_t)i);
                ck_assert_ptr_nonnull(json_object_get(item, "result"));
        }
        json_decref(r);
        wait_generation(&c, 1);
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* Back-to-back re-execs leak nothing: the daemon's fd count stays put, the client stays. */
START_TEST(test_repeated_no_leak) {
        unsigned rounds = getenv("EVD_UNDER_VALGRIND") ? 5 : 30;
        TestDaemon d;
        TestClient c;
        int p[3][2], fds;
        long rss_first = 0;

        test_daemon_start(&d, NULL);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        for (int i = 0; i < 3; i++) {
                make_pipe(p[i]);
                (void)watch_pipe(&c, p[i][0], i ? "edge" : "oneshot", json_integer(i));
        }
        (void)add_timer(&c, 0.01, 0.01, json_null());
        /* The first re-exec also closes what the test harness let the daemon inherit. */
        ck_assert_int_eq(kill(d.pid, SIGUSR2), 0);
        wait_generation(&c, 1);
        fds = test_daemon_fd_count(&d);
        rss_first = test_daemon_rss_kb(&d);
        for (unsigned i = 2; i <= rounds; i++) {
                ck_assert_int_eq(kill(d.pid, SIGUSR2), 0);
                wait_generation(&c, (json_int_t)i);
                ck_assert_int_eq(test_daemon_fd_count(&d), fds);
        }
        ck_assert_int_eq(status_int(&c, NULL, "watches"), 3);
        ck_assert_int_eq(status_int(&c, NULL, "timers"), 1);
        /* A fresh image each time: its memory does not grow with the count of re-execs. */
        ck_assert_msg(test_daemon_rss_kb(&d) < rss_first * 2, "RSS %ld KiB after %u re-execs, %ld after the first",
                      test_daemon_rss_kb(&d), rounds, rss_first);
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
        for (int i = 0; i < 3; i++) {
                close(p[i][0]);
                close(p[i][1]);
        }
}
END_TEST

/* The daemon under valgrind (memcheck, following the exec into every new image): no
 * error in any image, nothing lost at the last one's exit, a constant fd count. */
START_TEST(test_repeated_under_valgrind) {
        const char *vg = getenv("EVD_TEST_VALGRIND");
        const char *const wrapper[] = { vg, "--trace-children=yes", "--leak-check=full",
                                        "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
                                        "--error-exitcode=99", NULL };
        TestDaemonSpawn spawn = { .wrapper = wrapper };
        TestDaemon d;
        TestClient c;
        int p[2], fds;
        json_int_t w;
        json_t *n;

        if (!vg || !*vg || getenv("EVD_UNDER_VALGRIND")) {
                printf("no valgrind for the daemon (not installed, a sanitizer build, or the test itself runs under it): skipped\n");
                return;
        }
        test_daemon_start_with(&d, NULL, &spawn);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        make_pipe(p);
        w = watch_pipe(&c, p[0], "edge", json_string("vg"));
        (void)add_timer(&c, 0.05, 0.05, json_null());
        ck_assert_int_eq(kill(d.pid, SIGUSR2), 0);
        wait_generation(&c, 1);
        fds = test_daemon_fd_count(&d);
        for (int i = 2; i <= 5; i++) {
                ck_assert_int_eq(kill(d.pid, SIGUSR2), 0);
                wait_generation(&c, i);
                ck_assert_int_eq(test_daemon_fd_count(&d), fds);
        }
        poke(p[1]);
        n = test_client_notification_for(&c, "ready", "watch", w, TIMEOUT * 4);
        ck_assert_ptr_nonnull(n);
        json_decref(n);
        test_client_close(&c);
        /* Only the last image's errors count in its exit status: the others' are in the log. */
        for (const char *const *e = (const char *const[]){ "Invalid read", "Invalid write", "Invalid free",
                                                           "uninitialised", "Syscall param", NULL };
             *e; e++)
                ck_assert_msg(!test_daemon_log_contains(&d, *e), "valgrind: %s (see %s)", *e, d.log);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
        close(p[0]);
        close(p[1]);
}
END_TEST

/* The binary is gone (an uninstall, a broken upgrade): the exec fails and this image serves on. */
START_TEST(test_exec_fails) {
        char dir[128], bin[160], buf[65536];
        TestDaemonSpawn spawn = { .bin = bin };
        TestDaemon d;
        TestClient c;
        int in, out, p[2];
        ssize_t n;
        json_int_t w;
        json_t *s, *note;

        test_mkdtemp(dir, sizeof(dir), "evd-reexec");
        snprintf(bin, sizeof(bin), "%s/evd", dir);
        in = open(getenv("EVD_TEST_DAEMON"), O_RDONLY | O_CLOEXEC);
        out = open(bin, O_WRONLY | O_CREAT | O_CLOEXEC, 0700);
        ck_assert_int_ge(in, 0);
        ck_assert_int_ge(out, 0);
        while ((n = read(in, buf, sizeof(buf))) > 0)
                ck_assert_int_eq(write(out, buf, (size_t)n), n);
        close(in);
        close(out);
        test_daemon_start_with(&d, NULL, &spawn);
        ck_assert_int_eq(unlink(bin), 0);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        make_pipe(p);
        w = watch_pipe(&c, p[0], "edge", json_null());

        /* The request after `reexec` waits for the hand-over: read on when the exec failed.
         * Both are there when evd wakes, so the second always comes during the hand-over. */
        test_daemon_pause(&d);
        test_client_send(&c, json_pack("{s:s,s:i,s:s}", "jsonrpc", "2.0", "id", 1, "method", "reexec"), NULL, 0);
        test_client_send(&c, json_pack("{s:s,s:i,s:s}", "jsonrpc", "2.0", "id", 2, "method", "ping"), NULL, 0);
        test_daemon_resume(&d);
        for (int id = 1; id <= 2; id++) {
                json_t *r = test_client_reply(&c, TIMEOUT);

                ck_assert_msg(r, "no reply to request %d after the failed exec", id);
                ck_assert_int_eq(json_integer_value(json_object_get(r, "id")), id);
                ck_assert_ptr_nonnull(json_object_get(r, "result"));
                json_decref(r);
        }
        for (int i = 0; i < TIMEOUT / 10 && status_int(&c, "reexec", "failures") == 0; i++)
                (void)poll(NULL, 0, 10);
        s = status(&c);
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(s, "reexec"), "failures")), 1);
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(s, "reexec"), "generation")), 0);
        ck_assert_ptr_nonnull(json_string_value(json_object_get(json_object_get(s, "reexec"), "last_error")));
        json_decref(s);
        poke(p[1]);
        note = test_client_notification_for(&c, "ready", "watch", w, TIMEOUT);
        ck_assert_ptr_nonnull(note);
        json_decref(note);

        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
        test_remove_tree(dir);
        close(p[0]);
        close(p[1]);
}
END_TEST

/* ---- a new image started by hand with inherited fds and a state file ---------------------- */

#define CLIENT_FD 20
#define WATCHED_FD 21
#define STATE_FD 22

typedef struct Inherit {
        int client; /* the daemon's end of a SEQPACKET pair, placed at CLIENT_FD */
        int watched; /* placed at WATCHED_FD (-1: none) */
        int state;   /* a memfd with the state, placed at STATE_FD */
} Inherit;

static void place(int fd, int at) {
        if (fd >= 0 && dup2(fd, at) < 0)
                _exit(125);
}

static void inherit_setup(void *userdata) {
        Inherit *in = userdata;

        place(in->client, CLIENT_FD);
        place(in->watched, WATCHED_FD);
        place(in->state, STATE_FD);
        setenv("EVD_STATE_FD", "22", 1);
}

static int state_memfd(const char *text) {
        int fd = memfd_create("state", MFD_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

static char *read_file(const char *path) {
        FILE *f = fopen(path, "re");
        char *text = calloc(1, 1 << 20);
        size_t n;

        ck_assert_msg(f != NULL, "cannot open %s", path);
        ck_assert_ptr_nonnull(text);
        n = fread(text, 1, (1 << 20) - 1, f);
        text[n] = 0;
        fclose(f);
        return text;
}

/* Start evd as the image after a re-exec would be, with @state; *@peer is the client's
 * end of the inherited connection, @watched the fd placed at WATCHED_FD (-1: none). */
static void start_inheriting(TestDaemon *d, const char *state, int watched, int *peer) {
        int sp[2];
        Inherit in = { .watched = watched };
        TestDaemonSpawn spawn = { .setup = inherit_setup, .userdata = &in };

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        in.client = sp[1];
        in.state = state_memfd(state);
        test_daemon_start_with(d, NULL, &spawn);
        close(sp[1]);
        close(in.state);
        *peer = sp[0];
}

static bool peer_sees_eof(int fd, int timeout_ms) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        char buf[64];

        return poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLHUP) && recv(fd, buf, sizeof(buf), 0) == 0;
}

static const char *const refused_states[] = {
        "not json",
        "{\"format\":\"evd-state\",\"version\":99,\"clients\":[]}",
        /* Well-formed, but the watch names an fd that was not inherited. */
        "{\"format\":\"evd-state\",\"version\":1,\"generation\":0,\"stats\":{},"
        "\"latency\":{\"buckets\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]},"
        "\"clients\":[{\"id\":1,\"fd\":20,\"out\":[],\"timers\":[],"
        "\"watches\":[[1,400,1,\"edge\",1,0]]}]}",
        /* The same fd for the connection and a watch. */
        "{\"format\":\"evd-state\",\"version\":1,\"generation\":0,\"stats\":{},"
        "\"latency\":{\"buckets\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]},"
        "\"clients\":[{\"id\":1,\"fd\":20,\"out\":[],\"timers\":[],"
        "\"watches\":[[1,20,1,\"edge\",1,0]]}]}",
        /* A valid client, but the optional packet_cost histogram is malformed (31 buckets). */
        "{\"format\":\"evd-state\",\"version\":1,\"generation\":0,\"stats\":{},"
        "\"latency\":{\"buckets\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]},"
        "\"packet_cost\":{\"buckets\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]},"
        "\"clients\":[{\"id\":1,\"fd\":20,\"out\":[],\"timers\":[],\"watches\":[]}]}",
        /* Version 2 watches carry the mode in their flags: a version 1 record is foreign. */
        "{\"format\":\"evd-state\",\"version\":2,\"generation\":0,\"stats\":{},"
        "\"latency\":{\"buckets\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]},"
        "\"clients\":[{\"id\":1,\"fd\":20,\"out\":[],\"timers\":[],"
        "\"watches\":[[1,21,1,\"edge\",1,0]]}]}",
        /* A version 2 fd kind no evd has (15). */
        "{\"format\":\"evd-state\",\"version\":2,\"generation\":0,\"stats\":{},"
        "\"latency\":{\"buckets\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]},"
        "\"clients\":[{\"id\":1,\"fd\":20,\"out\":[],\"timers\":[],"
        "\"watches\":[[1,21,1,245,0]]}]}",
        /* Version 1 flags knew no fd kind. */
        "{\"format\":\"evd-state\",\"version\":1,\"generation\":0,\"stats\":{},"
        "\"latency\":{\"buckets\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]},"
        "\"clients\":[{\"id\":1,\"fd\":20,\"out\":[],\"timers\":[],"
        "\"watches\":[[1,21,1,\"edge\",17,0]]}]}",
};

START_TEST(test_refused_state_is_fresh_start) {
        TestDaemon d;
        TestClient c;
        int peer, p[2];

        /* A pipe at fd 21 for the states that name it: refused for what they say, not for
         * naming an fd that was not inherited. */
        make_pipe(p);
        start_inheriting(&d, refused_states[_i], p[0], &peer);
        close(p[0]);
        ck_assert_msg(peer_sees_eof(peer, TIMEOUT), "the inherited connection was kept (state %d)", _i);
        ck_assert_msg(test_daemon_log_contains(&d, "Cannot restore the previous image's state"), "see %s", d.log);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        ck_assert_int_eq(status_int(&c, NULL, "clients"), 1);
        ck_assert_int_eq(status_int(&c, "reexec", "generation"), 0);
        ck_assert_msg(pipe_reader_gone(p[1]), "the inherited pipe was kept (state %d)", _i);
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
        close(peer);
        close(p[1]);
}
END_TEST

/* What evd 0.x wrote as each format version (tests/reexec-state-vN.json, N = _i + 1): a
 * client at fd 20 with a queued reply, an edge watch on fd 21 (a pipe: version 2 says so,
 * version 1 leaves it to be asked) and a one-shot timer long overdue, tagged "vN". */
START_TEST(test_reads_older_versions) {
        char path[512], version_tag[16];
        char *state;
        TestDaemon d;
        TestClient c = { .next_id = 1 };
        int p[2];
        json_t *r, *item, *n;

        snprintf(path, sizeof(path), "%s/reexec-state-v%d.json", getenv("EVD_TEST_FIXTURES"), _i + 1);
        snprintf(version_tag, sizeof(version_tag), "v%d", _i + 1);
        state = read_file(path);
        make_pipe(p);
        start_inheriting(&d, state, p[0], &c.fd);
        free(state);
        close(p[0]);
        c.backlog = json_array();

        /* The reply that was queued when the old image saved its state comes first. */
        r = test_client_reply(&c, TIMEOUT);
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(json_integer_value(json_object_get(r, "id")), 1000);
        json_decref(r);
        c.next_id = 2000;
        item = listed(&c, "clients", "client", 5);
        ck_assert_ptr_nonnull(item);
        ck_assert_str_eq(json_string_value(json_object_get(item, "name")), "fixture");
        json_decref(item);
        item = listed(&c, "watches", "watch", 41);
        assert_tag(item, "{\"fixture\":true}");
        ck_assert_str_eq(json_string_value(json_object_get(item, "fd_type")), "pipe");
        ck_assert_str_eq(json_string_value(json_object_get(item, "mode")), "edge");
        json_decref(item);
        ck_assert_int_eq(status_int(&c, "reexec", "generation"), 4);
        poke(p[1]);
        n = test_client_notification_for(&c, "ready", "watch", 41, TIMEOUT);
        ck_assert_ptr_nonnull(n);
        json_decref(n);
        n = test_client_notification_for(&c, "timer", "timer", 9, TIMEOUT);
        ck_assert_ptr_nonnull(n);
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(n, "params"), "tag")), version_tag);
        json_decref(n);
        /* New ids continue after the state's counters. */
        ck_assert_int_gt(watch_pipe(&c, p[1], "edge", json_null()), 41);

        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
        close(p[1]);
}
END_TEST

/* A timer held over its user's rate keeps both of its times across a re-exec: the slot it
 * waits for (the engine's deadline) and the deadline it was held for, which `next` reports
 * (overdue). Read back as not held, `next` would be the slot, 30 s ahead. */
START_TEST(test_held_timer_survives) {
        char path[512];
        char *fixture, *state;
        struct timespec ts;
        uint64_t now;
        TestDaemon d;
        TestClient c = { .next_id = 1 };
        json_t *root, *timers, *item;
        double next;
        int p[2];

        snprintf(path, sizeof(path), "%s/reexec-state-v2.json", getenv("EVD_TEST_FIXTURES"));
        fixture = read_file(path);
        root = json_loads(fixture, 0, NULL);
        free(fixture);
        ck_assert_ptr_nonnull(root);
        ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        timers = json_object_get(json_array_get(json_object_get(root, "clients"), 0), "timers");
        ck_assert_int_eq(json_array_clear(timers), 0);
        ck_assert_int_eq(json_array_append_new(timers, json_pack("[i,s,I,i,i,I,s]", 9, "monotonic",
                                                                 (json_int_t)(now + 30000000000u), 0, 0,
                                                                 (json_int_t)(now - 5000000000u), "held")),
                         0);
        state = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        ck_assert_ptr_nonnull(state);
        make_pipe(p);
        start_inheriting(&d, state, p[0], &c.fd);
        free(state);
        close(p[0]);
        c.backlog = json_array();

        json_decref(test_client_reply(&c, TIMEOUT)); /* the reply queued in the state */
        c.next_id = 2000;
        item = listed(&c, "timers", "timer", 9);
        ck_assert_ptr_nonnull(item);
        assert_tag(item, "\"held\"");
        next = json_real_value(json_object_get(item, "next"));
        ck_assert_msg(next < -4.0 && next > -60.0, "next %.3f s: the held deadline was 5 s ago", next);
        json_decref(item);
        /* And it is written out held again: a second re-exec still reports the old deadline. */
        json_decref(test_client_result(&c, "reexec", NULL, NULL, 0));
        wait_generation(&c, 5);
        item = listed(&c, "timers", "timer", 9);
        ck_assert_ptr_nonnull(item);
        next = json_real_value(json_object_get(item, "next"));
        ck_assert_msg(next < -4.0 && next > -60.0, "next %.3f s after a second re-exec", next);
        json_decref(item);

        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
        close(p[1]);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("reexec");
        TCase *tc = tcase_create("reexec");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_state_survives);
        tcase_add_test(tc, test_event_in_gap);
        tcase_add_test(tc, test_repeated_no_leak);
        tcase_add_test(tc, test_repeated_under_valgrind);
        tcase_add_test(tc, test_exec_fails);
        tcase_add_test(tc, test_reexec_waits_for_batch);
        tcase_add_loop_test(tc, test_refused_state_is_fresh_start, 0, (int)ELEMENTSOF(refused_states));
        tcase_add_loop_test(tc, test_reads_older_versions, 0, 2);
        tcase_add_test(tc, test_held_timer_survives);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(suite());
}
