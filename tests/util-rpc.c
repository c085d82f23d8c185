/* util-rpc.c - tests: the calls a test makes to a daemon, and what it expects back
 *
 * Built on util-daemon's blocking client: calls that assert success or a given error (code,
 * fixed message, data.param), watches, timers, status and stats counters, listings,
 * notifications awaited with a deadline or observed not to come, raw packets, and a client
 * stalled on purpose (its socket full, output queued in the daemon).
 *
 * Every reply these helpers read first passes the suite's reply check, if it set one
 * (rpc_check_replies(): the hostile suite scans every reply for pointer-like text).
 */

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>

#include "macro.h"
#include "util-json.h"
#include "util-rpc.h"
#include "util-time.h"

static json_t *(*reply_check)(json_t *v);

void rpc_check_replies(json_t *(*check)(json_t *v)) {
        reply_check = check;
}

static json_t *checked(json_t *v) {
        return v && reply_check ? reply_check(v) : v;
}

static json_t *rpc_call(TestClient *c, const char *method, json_t *params, const int *fds,
                        size_t n_fds) {
        return checked(test_client_call(c, method, params, fds, n_fds));
}

static json_t *rpc_result(TestClient *c, const char *method, json_t *params, const int *fds,
                          size_t n_fds) {
        return checked(test_client_result(c, method, params, fds, n_fds));
}

const char *error_message(int code) {
        switch (code) {
        case -32700:
                return "Parse error";
        case -32600:
                return "Invalid Request";
        case -32601:
                return "Method not found";
        case -32602:
                return "Invalid params";
        case -32603:
                return "Internal error";
        case -32001:
                return "No such watch";
        case -32002:
                return "No such timer";
        case -32003:
                return "Bad file descriptor";
        case -32004:
                return "Quota exceeded";
        case -32005:
                return "Permission denied";
        case -32006:
                return "Too many file descriptors";
        case -32007:
                return "Message too large";
        case -32008:
                return "Shutting down";
        case -32009:
                return "Out of file descriptors";
        default:
                return NULL;
        }
}

/* @reply is an error object with @code, the fixed message, and (when @param is set)
 * data.param == @param. @id_text, when set, is the compact text of the expected id. */
void check_error(json_t *reply, int code, const char *param, const char *id_text) {
        json_t *err = json_object_get(reply, "error"), *data;
        char *s = dump(reply);

        ck_assert_msg(json_is_object(err), "expected error %d, got %s", code, s);
        ck_assert_msg(!json_object_get(reply, "result"), "error and result in %s", s);
        ck_assert_msg(json_is_integer(json_object_get(err, "code")) &&
                              json_integer_value(json_object_get(err, "code")) == code,
                      "expected error %d, got %s", code, s);
        ck_assert_msg(
                streq(json_string_value(json_object_get(err, "message")), error_message(code)),
                "error %d with the wrong message: %s", code, s);
        ck_assert_msg(json_text_is(json_object_get(reply, "jsonrpc"), "\"2.0\""),
                      "no jsonrpc 2.0 in %s", s);
        ck_assert_msg(json_object_get(reply, "id"), "no id in %s", s);
        data = json_object_get(err, "data");
        ck_assert_msg(!data || json_is_object(data), "data is not an object in %s", s);
        if (param)
                ck_assert_msg(streq(json_string_value(json_object_get(data, "param")), param),
                              "expected data.param \"%s\" in %s", param, s);
        if (id_text)
                ck_assert_msg(json_text_is(json_object_get(reply, "id"), id_text),
                              "expected id %s in %s", id_text, s);
        free(s);
}

void call_error(TestClient *c, const char *method, json_t *params, const int *fds,
                       size_t n_fds, int code, const char *param) {
        json_t *reply = rpc_call(c, method, params, fds, n_fds);

        check_error(reply, code, param, NULL);
        json_decref(reply);
}

/* Call and throw the result away (asserts success). */
void call_ok(TestClient *c, const char *method, json_t *params, const int *fds,
                    size_t n_fds) {
        json_decref(rpc_result(c, method, params, fds, n_fds));
}

void ping(TestClient *c) {
        call_ok(c, "ping", NULL, NULL, 0);
}

void start(TestDaemon *d, TestClient *c, const char *const *args) {
        test_daemon_start(d, args);
        ck_assert_int_eq(test_client_connect(c, d->socket), 0);
}

void stop(TestDaemon *d, TestClient *c) {
        test_client_close(c);
        ck_assert_int_eq(test_daemon_stop(d), 0);
}

/* hello, with the client name @name if set; returns the client id. */
json_int_t hello(TestClient *c, const char *name) {
        json_t *params = json_pack("{s:i}", "protocol", 1), *r;
        json_int_t id;

        if (name)
                json_object_set_new(params, "client", json_string(name));
        r = rpc_result(c, "hello", params, NULL, 0);
        id = int_member(r, "client_id");
        json_decref(r);
        return id;
}

/* Watch @fd (sent as fd 0 of the packet) for one event; @tag stolen, may be NULL. */
json_int_t watch_fd(TestClient *c, int fd, const char *event, const char *mode,
                           json_t *tag) {
        json_t *params = json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", event, "mode", mode);
        json_t *r;
        json_int_t id;

        if (tag)
                json_object_set_new(params, "tag", tag);
        r = rpc_result(c, "watch", params, &fd, 1);
        id = int_member(r, "watch");
        ck_assert_int_gt(id, 0);
        ck_assert_int_lt(id, (json_int_t)1 << 53);
        json_decref(r);
        return id;
}

/* A timer: @after (or, if @at > 0, @at) and @interval (0: none); @tag stolen, may be NULL. */
json_int_t add_timer(TestClient *c, double after, double at, double interval, json_t *tag) {
        json_t *params = at > 0 ? json_pack("{s:f}", "at", at) : json_pack("{s:f}", "after", after);
        json_t *r;
        json_int_t id;

        if (interval > 0)
                json_object_set_new(params, "interval", json_real(interval));
        if (tag)
                json_object_set_new(params, "tag", tag);
        r = rpc_result(c, "timer", params, NULL, 0);
        id = int_member(r, "timer");
        ck_assert_int_gt(id, 0);
        json_decref(r);
        return id;
}

json_int_t status_int(TestClient *c, const char *key) {
        json_t *r = rpc_result(c, "status", NULL, NULL, 0);
        json_int_t v = int_member(r, key);

        json_decref(r);
        return v;
}

json_int_t stats_int(TestClient *c, const char *section, const char *key) {
        json_t *r = rpc_result(c, "stats", NULL, NULL, 0);
        json_int_t v = int_member(member(r, section), key);

        json_decref(r);
        return v;
}

/* Poll `status` until @key is @want (connections close asynchronously). */
void wait_status_within(TestClient *c, const char *key, json_int_t want, int timeout_ms) {
        long long deadline = ms_now() + timeout_ms;
        json_int_t v;

        while ((v = status_int(c, key)) != want && ms_now() < deadline)
                (void)poll(NULL, 0, 5);
        ck_assert_msg(v == want, "status %s stayed %lld, expected %lld", key, (long long)v,
                      (long long)want);
}

void wait_status(TestClient *c, const char *key, json_int_t want) {
        wait_status_within(c, key, want, TIMEOUT);
}

/* The daemon's fd count once exactly @clients connections are open: the start-up probe's
 * connection goes away asynchronously and must not be counted. */
int fd_baseline(TestDaemon *d, TestClient *c, json_int_t clients) {
        wait_status(c, "clients", clients);
        return test_daemon_fd_count(d);
}

/* The item of listing @method (watches, timers, clients) whose @key is @id; a new reference
 * or NULL. Lists the caller's own objects, or @client's if > 0. */
json_t *list_item(TestClient *c, const char *method, json_int_t client, const char *key,
                         json_int_t id) {
        json_t *params = client > 0 ? json_pack("{s:I}", "client", client) : NULL;
        json_t *r = rpc_result(c, method, params, NULL, 0);
        json_t *items = member(r, method), *item, *found = NULL;
        size_t i;

        json_array_foreach(items, i, item)
                if (json_integer_value(json_object_get(item, key)) == id)
                        found = json_incref(item);
        json_decref(r);
        return found;
}

json_t *watch_item(TestClient *c, json_int_t w) {
        json_t *item = list_item(c, "watches", 0, "watch", w);

        ck_assert_msg(item, "watch %lld is not listed", (long long)w);
        return item;
}

json_int_t list_total(TestClient *c, const char *method, json_t *params) {
        json_t *r = rpc_result(c, method, params, NULL, 0);
        json_int_t total = int_member(r, "total");

        ck_assert_int_le((json_int_t)json_array_size(member(r, method)), total);
        json_decref(r);
        return total;
}

/* The next notification @method (whose params.@key is @id, if @key is set), from the
 * backlog first; others stay in the backlog. A new reference to the whole message, or NULL
 * after @timeout_ms or at EOF. */
json_t *wait_for(TestClient *c, const char *method, const char *key, json_int_t id,
                        int timeout_ms) {
        return checked(test_client_notification_for(c, method, key, id, timeout_ms));
}

json_t *expect_notification(TestClient *c, const char *method, const char *key,
                                   json_int_t id) {
        json_t *m = wait_for(c, method, key, id, TIMEOUT);

        ck_assert_msg(m, "no \"%s\" notification for %s %lld within %d ms", method, key ? key : "-",
                      (long long)id, TIMEOUT);
        ck_assert_msg(!json_object_get(m, "id"), "a notification with an id");
        ck_assert_msg(json_text_is(json_object_get(m, "jsonrpc"), "\"2.0\""),
                      "no jsonrpc 2.0 in a notification");
        ck_assert_msg(json_is_object(json_object_get(m, "params")), "notification without params");
        return m;
}

/* Take every matching notification that arrives within @window_ms; return how many, and
 * the sum of their params.@sum_key (if set) in *@ret_sum. */
unsigned collect(TestClient *c, const char *method, const char *key, json_int_t id,
                        int window_ms, const char *sum_key, json_int_t *ret_sum) {
        long long deadline = ms_now() + window_ms;
        json_int_t sum = 0;
        unsigned n = 0;
        json_t *m;

        while ((m = wait_for(c, method, key, id, (int)MAX(deadline - ms_now(), 0LL)))) {
                if (sum_key)
                        sum += int_member(member(m, "params"), sum_key);
                n++;
                json_decref(m);
        }
        if (ret_sum)
                *ret_sum = sum;
        return n;
}

void expect_quiet(TestClient *c, const char *method, const char *key, json_int_t id) {
        unsigned n = collect(c, method, key, id, QUIET_MS, NULL, NULL);

        ck_assert_msg(n == 0, "%u unexpected \"%s\" notifications for %lld", n, method,
                      (long long)id);
}

/* Drop the replies (messages with an id) the backlog collected, e.g. after a stall. */
void drop_replies(TestClient *c) {
        for (size_t i = 0; i < json_array_size(c->backlog);)
                if (json_object_get(json_array_get(c->backlog, i), "method"))
                        i++;
                else
                        json_array_remove(c->backlog, i);
}

void send_text(TestClient *c, const char *text) {
        test_client_send_raw(c, text, strlen(text), NULL, 0);
}

/* Send @text raw and return the next packet holding replies. */
json_t *raw_call(TestClient *c, const char *text, size_t len) {
        json_t *r;

        test_client_send_raw(c, text, len, NULL, 0);
        r = checked(test_client_reply(c, TIMEOUT));
        ck_assert_msg(r, "no reply to %.200s", text);
        return r;
}

/* The first reply after everything sent so far is the answer to a fresh ping: proves that
 * what was sent before got no reply. */
void expect_no_reply(TestClient *c) {
        static const char text[] = "{\"jsonrpc\":\"2.0\",\"id\":\"sync\",\"method\":\"ping\"}";
        json_t *r = raw_call(c, text, strlen(text));
        char *s = dump(r);

        ck_assert_msg(json_is_object(r) && json_text_is(json_object_get(r, "id"), "\"sync\"") &&
                              json_object_get(r, "result"),
                      "expected no reply before the ping's, got %s", s);
        free(s);
        json_decref(r);
}

/* @c's `requests` and `queued_bytes` as an admin sees them. */
void client_counters(TestClient *admin, json_int_t c_id, json_int_t *ret_requests,
                            json_int_t *ret_queued) {
        json_t *info = list_item(admin, "clients", 0, "client", c_id);

        ck_assert_ptr_nonnull(info);
        *ret_requests = int_member(info, "requests");
        *ret_queued = int_member(info, "queued_bytes");
        json_decref(info);
}

/*
 * Make the daemon hold output for @c that @c's socket does not take: @c asks for more than a
 * socket buffer holds (stats replies, about 100 KB per batch) and reads nothing. From then on
 * nothing the daemon queues for @c leaves until @c reads: replies wait in order,
 * notifications wait and coalesce. @admin (another, admin connection) watches @c's
 * counters, so the stall is observed, not assumed; batches stop at the first output queued,
 * well below the 256 KiB at which the daemon would stop reading @c's requests. @c's replies
 * have the id "fill"; drop_replies() discards them.
 */
void stall(TestClient *c, json_int_t c_id, TestClient *admin) {
        static const char item[] = "{\"jsonrpc\":\"2.0\",\"id\":\"fill\",\"method\":\"stats\"}";
        const unsigned per_batch = 100;
        long long deadline = ms_now() + TIMEOUT;
        size_t len = 0;
        char *batch = malloc(per_batch * (sizeof(item) + 1) + 2);
        json_int_t base, queued;

        ck_assert_ptr_nonnull(batch);
        batch[len++] = '[';
        for (unsigned i = 0; i < per_batch; i++) {
                if (i > 0)
                        batch[len++] = ',';
                memcpy(batch + len, item, sizeof(item) - 1);
                len += sizeof(item) - 1;
        }
        batch[len++] = ']';

        client_counters(admin, c_id, &base, &queued);
        ck_assert_int_eq(queued, 0);
        for (unsigned round = 0; round < 32; round++) {
                test_client_send_raw(c, batch, len, NULL, 0);
                for (;;) {
                        json_int_t requests;

                        client_counters(admin, c_id, &requests, &queued);
                        if (queued > 0) {
                                free(batch);
                                return;
                        }
                        if (requests >= base + (json_int_t)(per_batch * (round + 1)))
                                break; /* all read and sent: ask for more */
                        ck_assert_msg(ms_now() < deadline,
                                      "the daemon did not queue output for a stalled client");
                        (void)poll(NULL, 0, 2);
                }
        }
        free(batch);
        ck_abort_msg("the socket took everything: no output was ever queued");
}

/* Read everything a stalled client has waiting (a ping's reply comes after all of it). */
void unstall(TestClient *c) {
        ping(c);
        drop_replies(c);
}
