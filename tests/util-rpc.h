#pragma once
/* util-rpc.h - tests: the calls a test makes to a daemon, and what it expects back */

#include <jansson.h>
#include <stddef.h>

#include "util-daemon.h"

#define NOBODY 65534
#define TIMEOUT TEST_TIMEOUT_MS
/* Long enough for a notification that is due to arrive, short enough to keep tests fast:
 * used to observe that nothing (more) arrives. */
#define QUIET_MS 100

/** rpc_check_replies() - pass every reply and notification these helpers read through
 * @check (it asserts what it must and returns its argument); NULL: none. */
void rpc_check_replies(json_t *(*check)(json_t *v));

/** error_message() - the fixed message of error @code (PROTOCOL.md), NULL if unknown. */
const char *error_message(int code);
/** check_error() - @reply is an error object with @code, the fixed message, and (when @param
 * is set) data.param == @param; @id_text, when set, is the compact text of the expected id. */
void check_error(json_t *reply, int code, const char *param, const char *id_text);
/** call_error() - call @method and check_error() its reply. */
void call_error(TestClient *c, const char *method, json_t *params, const int *fds,
                size_t n_fds, int code, const char *param);
/** call_ok() - call and throw the result away (asserts success). */
void call_ok(TestClient *c, const char *method, json_t *params, const int *fds, size_t n_fds);
void ping(TestClient *c);
/** start() - start a daemon with @args and connect @c to it. */
void start(TestDaemon *d, TestClient *c, const char *const *args);
/** stop() - close @c and stop the daemon, asserting it exits 0. */
void stop(TestDaemon *d, TestClient *c);
/** hello() - hello, with the client name @name if set. Return: the client id. */
json_int_t hello(TestClient *c, const char *name);
/** watch_fd() - watch @fd (sent as fd 0 of the packet) for @event in @mode; @tag stolen, may
 * be NULL. Return: the watch id. */
json_int_t watch_fd(TestClient *c, int fd, const char *event, const char *mode, json_t *tag);
/** add_timer() - a timer: @after (or, if @at > 0, @at) and @interval (0: none); @tag stolen,
 * may be NULL. Return: the timer id. */
json_int_t add_timer(TestClient *c, double after, double at, double interval, json_t *tag);
/** status_int(), stats_int() - one integer of `status`, or of `stats`' @section. */
json_int_t status_int(TestClient *c, const char *key);
json_int_t stats_int(TestClient *c, const char *section, const char *key);
/** wait_status_within() - poll `status` until @key is @want (connections close
 * asynchronously), at most @timeout_ms; wait_status() - the same within TIMEOUT. */
void wait_status_within(TestClient *c, const char *key, json_int_t want, int timeout_ms);
void wait_status(TestClient *c, const char *key, json_int_t want);
/** fd_baseline() - the daemon's fd count once exactly @clients connections are open. */
int fd_baseline(TestDaemon *d, TestClient *c, json_int_t clients);
/** list_item() - the item of listing @method whose @key is @id (a new reference or NULL);
 * the caller's own objects, or @client's if > 0. */
json_t *list_item(TestClient *c, const char *method, json_int_t client, const char *key,
                  json_int_t id);
/** watch_item() - list_item() of watch @w, asserted to exist. */
json_t *watch_item(TestClient *c, json_int_t w);
/** list_total() - `total` of listing @method with @params (stolen). */
json_int_t list_total(TestClient *c, const char *method, json_t *params);
/** wait_for() - test_client_notification_for(): a new reference or NULL after @timeout_ms. */
json_t *wait_for(TestClient *c, const char *method, const char *key, json_int_t id,
                 int timeout_ms);
/** expect_notification() - wait_for() within TIMEOUT, asserted to come and well formed. */
json_t *expect_notification(TestClient *c, const char *method, const char *key, json_int_t id);
/** collect() - take every matching notification that arrives within @window_ms. Return: how
 * many; the sum of their params.@sum_key (if set) in *@ret_sum. */
unsigned collect(TestClient *c, const char *method, const char *key, json_int_t id,
                 int window_ms, const char *sum_key, json_int_t *ret_sum);
/** expect_quiet() - no matching notification arrives within QUIET_MS. */
void expect_quiet(TestClient *c, const char *method, const char *key, json_int_t id);
/** drop_replies() - drop the replies (messages with an id) the backlog collected. */
void drop_replies(TestClient *c);
/** send_text() - send the string @text raw. */
void send_text(TestClient *c, const char *text);
/** raw_call() - send @len bytes of @text raw and return the next packet holding replies. */
json_t *raw_call(TestClient *c, const char *text, size_t len);
/** expect_no_reply() - nothing sent so far got a reply (the next one answers a fresh ping). */
void expect_no_reply(TestClient *c);
/** client_counters() - client @c_id's `requests` and `queued_bytes` as @admin sees them. */
void client_counters(TestClient *admin, json_int_t c_id, json_int_t *ret_requests,
                     json_int_t *ret_queued);
/** stall() - make the daemon hold output for @c that @c's socket does not take, observed
 * through @admin; @c's replies then have the id "fill". */
void stall(TestClient *c, json_int_t c_id, TestClient *admin);
/** unstall() - read everything a stalled client has waiting. */
void unstall(TestClient *c);
