/* test-budget.c - what one packet, and one tag, may cost the daemon
 *
 * A batch of 1,024 listings once made the daemon allocate 535 MB and stall every client for
 * seconds; a nested 1 KiB tag cost about 80 KB per timer, kept parsed. These tests hold the
 * daemon to the bounds PROTOCOL.md and README.md now give: the replies of one packet are
 * charged to a byte budget (limits.max_reply_bytes) and the rest of the batch gets -32010;
 * the daemon's peak RSS grows by at most max-queued-bytes plus a constant per packet; a
 * bystander is answered meanwhile; a listing pages at the budget left; tags cost about
 * their encoded length per watch and per timer, whatever their shape; the hand-assembled
 * `timer` notification and listings are byte for byte what jansson would encode.
 *
 * RSS is partly the tool's under ASan and valgrind. Under ASan the daemon runs without the
 * quarantine (freed memory would otherwise stay resident) and the packet bound is still
 * asserted; the per-object bounds (ASan's redzones and per-size caches add about 1 KiB an
 * object) are asserted in plain builds only, and under valgrind nothing is: the figures
 * are printed either way.
 */

#include <check.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "macro.h"
#include "notify.h"
#include "protocol.h"
#include "text.h"
#include "util-check.h"
#include "util-daemon.h"

#define TIMEOUT TEST_TIMEOUT_MS
/* The case: 420 watches, a batch of 1,024 `watches` requests (a 47 KB packet). */
#define N_LISTED 420
#define N_BATCH 1024
/* Peak RSS growth allowed for one packet on top of max-queued-bytes: code, stack, the
 * request's parse tree and allocator slack. The unbounded daemon grew by 535 MB. */
#define PACKET_SLACK_KIB 2048L
/* A bystander's ping while the batch is handled. Generous: the unbounded daemon took 6 s
 * (longer than TIMEOUT); the bounded one about 10 ms. */
#define BYSTANDER_BOUND_MS 2000LL
/* Per watch and per timer with a tag of L bytes encoded. */
#define PER_OBJECT_BASE 256L
#define PER_TAG_BYTE 2L
/* Objects measured per kind, and the RSS growth allowed once for all of them (the parse of
 * the largest request packet, allocator arenas). */
#define N_TIMERS 3000
#define N_WATCHES 2000
#define OBJECT_SLACK_KIB 1024L

static bool under_valgrind(void) {
        const char *v = getenv("EVD_UNDER_VALGRIND");
        return v && strcmp(v, "1") == 0;
}

static bool slow_build(void) {
        return UNDER_ASAN || under_valgrind();
}

static long long ms_now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *member(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);

        ck_assert_msg(v, "no member \"%s\"", key);
        return v;
}

static json_int_t int_member(json_t *o, const char *key) {
        json_t *v = member(o, key);

        ck_assert_msg(json_is_integer(v), "\"%s\" is not an integer", key);
        return json_integer_value(v);
}

static void start(TestDaemon *d, const char *const *args) {
        if (UNDER_ASAN) {
                /* Freed memory in quarantine stays resident: RSS would measure ASan. */
                const char *old = getenv("ASAN_OPTIONS");
                char opts[1024];

                snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0", old ? old : "",
                         old && *old ? ":" : "");
                ck_assert_int_eq(setenv("ASAN_OPTIONS", opts, 1), 0);
        }
        test_daemon_start(d, args);
}

static json_t *hello_limits(TestClient *c) {
        json_t *r = test_client_result(c, "hello", json_pack("{s:i}", "protocol", 1), NULL, 0);
        json_t *limits = json_incref(member(r, "limits"));

        json_decref(r);
        return limits;
}

/* @n watches on eventfds, with @tag (borrowed, may be NULL), @per_packet to a packet; the
 * test closes its copies at once (the daemon keeps its own). */
static void add_watches(TestClient *c, unsigned n, json_t *tag, unsigned per_packet) {
        for (unsigned done = 0; done < n;) {
                unsigned k = MIN(per_packet, n - done);
                json_t *batch = json_array();
                json_t *r;
                int fds[32];

                ck_assert_uint_le(k, 32);
                for (unsigned i = 0; i < k; i++) {
                        json_t *params = json_pack("{s:i,s:[s],s:s}", "fd", (int)i, "events", "in",
                                                   "mode", "edge");

                        fds[i] = eventfd(0, EFD_CLOEXEC);
                        ck_assert_int_ge(fds[i], 0);
                        if (tag)
                                json_object_set(params, "tag", tag);
                        json_array_append_new(batch, jsonrpc_request_new((json_int_t)(done + i + 1),
                                                                         "watch", params));
                }
                test_client_send(
                        c, k == 1 ? json_incref(json_array_get(batch, 0)) : json_incref(batch), fds,
                        k);
                json_decref(batch);
                for (unsigned i = 0; i < k; i++)
                        close(fds[i]);
                r = test_client_reply(c, TIMEOUT);
                ck_assert_msg(r, "no reply to a watch");
                if (json_is_object(r)) {
                        json_t *one = r;
                        r = json_array();
                        json_array_append_new(r, one);
                }
                ck_assert_uint_eq(json_array_size(r), k);
                for (unsigned i = 0; i < k; i++)
                        ck_assert_msg(json_object_get(json_array_get(r, i), "result"),
                                      "a watch failed");
                json_decref(r);
                done += k;
        }
}

static void add_timers(TestClient *c, unsigned n, json_t *tag) {
        for (unsigned i = 0; i < n; i++) {
                json_t *params = json_pack("{s:i}", "after", 3600);
                json_t *r;

                json_object_set(params, "tag", tag);
                r = test_client_result(c, "timer", params, NULL, 0);
                json_decref(r);
        }
}

static char *batch_of(const char *method, unsigned n, size_t *ret_len) {
        size_t size = (size_t)n * 64 + 2, len = 0;
        char *buf = malloc(size);

        ck_assert_ptr_nonnull(buf);
        buf[len++] = '[';
        for (unsigned i = 1; i <= n; i++)
                len += (size_t)snprintf(buf + len, size - len,
                                        "%s{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"%s\"}",
                                        i > 1 ? "," : "", i, method);
        buf[len++] = ']';
        ck_assert_uint_le(len, EVD_MAX_PACKET);
        *ret_len = len;
        return buf;
}

/* ---- the reply budget ------------------------------------------------------------- */

START_TEST(test_listing_batch) {
        TestDaemon d;
        TestClient a, b;
        json_t *limits, *r;
        json_int_t budget, max_queued;
        long peak0, peak1;
        long long t0, waited, bound = slow_build() ? 5 * BYSTANDER_BOUND_MS : BYSTANDER_BOUND_MS;
        unsigned expect = 1, results = 0, refused = 0;
        size_t len, result_bytes = 0;
        char *batch;

        start(&d, NULL);
        ck_assert_int_eq(test_client_connect(&a, d.socket), 0);
        ck_assert_int_eq(test_client_connect(&b, d.socket), 0);
        limits = hello_limits(&a);
        budget = int_member(limits, "max_reply_bytes");
        max_queued = int_member(limits, "max_queued_bytes");
        json_decref(limits);
        ck_assert_int_ge(budget, EVD_MAX_PACKET);
        ck_assert_int_le(budget, max_queued);
        {
                json_t *tag = json_integer(1234567);
                add_watches(&a, N_LISTED, tag, 32);
                json_decref(tag);
        }
        json_decref(test_client_result(&b, "ping", NULL, NULL, 0));

        batch = batch_of("watches", N_BATCH, &len);
        peak0 = test_daemon_peak_rss_kb(&d);
        t0 = ms_now();
        test_client_send_raw(&a, batch, len, NULL, 0);
        free(batch);
        /* The bystander asks at once: answered after at most one packet's worth of work. */
        test_client_send(&b, jsonrpc_request_new(1, "ping", NULL), NULL, 0);
        r = test_client_reply(&b, 6 * TIMEOUT);
        waited = ms_now() - t0;
        ck_assert_msg(r, "the bystander's ping was not answered");
        json_decref(r);

        while (expect <= N_BATCH) {
                json_t *m;
                size_t i;

                r = test_client_reply(&a, 6 * TIMEOUT);
                ck_assert_msg(r, "replies %u.. missing (disconnected?)", expect);
                ck_assert_msg(json_is_array(r), "batch replies come as arrays");
                json_array_foreach(r, i, m) {
                        json_t *res = json_object_get(m, "result");

                        ck_assert_int_eq(int_member(m, "id"), expect);
                        if (res) {
                                char *text = json_dumps(m, JSON_COMPACT);

                                ck_assert_msg(refused == 0,
                                              "reply %u ran after the budget was spent", expect);
                                ck_assert_int_eq(int_member(res, "total"), N_LISTED);
                                ck_assert_uint_gt(json_array_size(member(res, "watches")), 0);
                                result_bytes += strlen(text);
                                free(text);
                                results++;
                        } else {
                                json_t *err = member(m, "error");

                                ck_assert_int_eq(int_member(err, "code"), EVD_ERR_REPLY_BUDGET);
                                ck_assert_int_eq(int_member(member(err, "data"), "limit"), budget);
                                refused++;
                        }
                        expect++;
                }
                json_decref(r);
        }
        peak1 = test_daemon_peak_rss_kb(&d);
        printf("listing batch: %u listings answered (%zu bytes, budget %lld), %u refused; "
               "bystander "
               "answered after %lld ms; peak RSS %ld -> %ld KiB\n",
               results, result_bytes, (long long)budget, refused, waited, peak0, peak1);
        ck_assert_uint_gt(results, 0);
        ck_assert_uint_gt(refused, 0);
        /* The reply that crosses the budget is sent whole; nothing after it runs. */
        ck_assert_uint_le(result_bytes, (size_t)budget + EVD_MAX_PACKET);
        ck_assert_msg(waited <= bound, "the bystander waited %lld ms (bound %lld)", waited, bound);
        if (!under_valgrind())
                ck_assert_msg(peak1 - peak0 <= max_queued / 1024 + PACKET_SLACK_KIB,
                              "one packet grew the daemon's peak RSS by %ld KiB", peak1 - peak0);
        /* The client is still served: the refused requests may be sent again. */
        json_decref(test_client_result(&a, "ping", NULL, NULL, 0));
        test_client_close(&a);
        test_client_close(&b);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* A listing pages at the budget the packet has left: `next` says where to go on, and the
 * next packet, with a budget of its own, goes on from there. */
START_TEST(test_listing_paged_by_budget) {
        static const char *const args[] = {"--max-queued-bytes=131072", NULL};
        const unsigned n = 300;
        TestDaemon d;
        TestClient c;
        json_t *limits, *r, *tag, *page;
        json_int_t budget, next;
        char tagtext[101];
        const char *batch;

        start(&d, args);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        limits = hello_limits(&c);
        budget = int_member(limits, "max_reply_bytes");
        json_decref(limits);
        ck_assert_int_eq(budget, EVD_MAX_PACKET); /* a quarter of 128 KiB, raised to a packet */
        memset(tagtext, 't', 100);
        tagtext[100] = 0;
        tag = json_string(tagtext);
        add_watches(&c, n, tag, 32);
        json_decref(tag);

        /* 300 items of about 200 bytes fit one packet; the second listing gets what is left. */
        batch = "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watches\"},"
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"watches\"},"
                "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"watches\"},"
                "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\"}]";
        test_client_send_raw(&c, batch, strlen(batch), NULL, 0);
        r = test_client_reply(&c, TIMEOUT);
        ck_assert_msg(json_is_array(r) && json_array_size(r) >= 1, "no batch reply");
        while (json_array_size(r) < 4) {
                json_t *more = test_client_reply(&c, TIMEOUT), *m;
                size_t i;

                ck_assert_msg(json_is_array(more), "batch replies missing");
                json_array_foreach(more, i, m) json_array_append(r, m);
                json_decref(more);
        }
        ck_assert_uint_eq(json_array_size(r), 4);
        page = member(json_array_get(r, 0), "result");
        ck_assert_uint_eq(json_array_size(member(page, "watches")), n);
        ck_assert(json_is_null(member(page, "next")));
        page = member(json_array_get(r, 1), "result");
        ck_assert_int_eq(int_member(page, "total"), n);
        next = int_member(page, "next");
        ck_assert_int_gt(next, 0);
        ck_assert_int_lt(next, n);
        ck_assert_uint_eq(json_array_size(member(page, "watches")), (size_t)next);
        /* The third still runs (its page has at least one item), which spends the budget. */
        page = member(json_array_get(r, 2), "result");
        ck_assert_uint_ge(json_array_size(member(page, "watches")), 1);
        ck_assert_int_eq(int_member(member(json_array_get(r, 3), "error"), "code"),
                         EVD_ERR_REPLY_BUDGET);
        {
                json_t *items = member(member(json_array_get(r, 0), "result"), "watches");
                json_t *expected = json_array_get(items, (size_t)next);

                page = test_client_result(&c, "watches", json_pack("{s:I}", "offset", next), NULL,
                                          0);
                ck_assert_int_eq(int_member(json_array_get(member(page, "watches"), 0), "watch"),
                                 int_member(expected, "watch"));
                ck_assert(json_is_null(member(page, "next")));
                ck_assert_uint_eq(json_array_size(member(page, "watches")), n - (size_t)next);
                json_decref(page);
        }
        json_decref(r);
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* ---- tags ------------------------------------------------------------------------- */

/* A 1 KiB tag of shape @deep (arrays nested 500 deep) or wide (hundreds of small members). */
static json_t *big_tag(bool deep) {
        char text[EVD_MAX_TAG + 1];
        size_t len = 0;
        json_t *v;

        if (deep) {
                for (unsigned i = 0; i < 510; i++)
                        text[len++] = '[';
                text[len++] = '1';
                for (unsigned i = 0; i < 510; i++)
                        text[len++] = ']';
        } else {
                text[len++] = '{';
                for (unsigned i = 0; len + 10 < EVD_MAX_TAG; i++)
                        len += (size_t)sprintf(text + len, "%s\"%x\":0", i ? "," : "", i);
                text[len++] = '}';
        }
        text[len] = 0;
        ck_assert_uint_le(len, EVD_MAX_TAG);
        v = json_loads(text, JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(v);
        return v;
}

static size_t encoded_len(json_t *v) {
        return json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* The bytes of the next packet, and that they are exactly jansson's compact encoding. */
static json_t *recv_canonical(TestClient *c) {
        static char buf[EVD_MAX_PACKET + 1];
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        json_t *v;
        char *again;
        ssize_t n;

        ck_assert_int_eq(poll(&p, 1, TIMEOUT), 1);
        n = recv(c->fd, buf, sizeof(buf) - 1, 0);
        ck_assert_int_gt(n, 0);
        buf[n] = 0;
        v = json_loadb(buf, (size_t)n, 0, NULL);
        ck_assert_ptr_nonnull(v);
        again = json_dumps(v, JSON_COMPACT);
        ck_assert_msg(strlen(again) == (size_t)n && memcmp(again, buf, (size_t)n) == 0,
                      "not jansson's encoding:\n%s\nwant\n%s", buf, again);
        free(again);
        return v;
}

static void tag_memory(bool deep) {
        TestDaemon d;
        TestClient c;
        json_t *tag = big_tag(deep), *m, *r;
        long len = (long)encoded_len(tag), rss0, rss1, rss2, per_timer, per_watch;
        long bound = PER_OBJECT_BASE + PER_TAG_BYTE * len;
        unsigned n_timers = N_TIMERS, n_watches = N_WATCHES;

        start(&d, NULL);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        json_decref(hello_limits(&c));
        /* Warm up: the allocator's arenas and the daemon's maps exist before measuring. */
        add_timers(&c, 100, tag);
        add_watches(&c, 100, tag, 1);
        rss0 = test_daemon_rss_kb(&d);
        add_timers(&c, n_timers, tag);
        rss1 = test_daemon_rss_kb(&d);
        add_watches(&c, n_watches, tag, 1);
        rss2 = test_daemon_rss_kb(&d);
        per_timer = (rss1 - rss0) * 1024 / n_timers;
        per_watch = (rss2 - rss1) * 1024 / n_watches;
        printf("%s tag of %ld bytes: %ld B per timer, %ld B per watch (bound %ld B + %ld KiB "
               "once)\n",
               deep ? "deep" : "wide", len, per_timer, per_watch, bound, OBJECT_SLACK_KIB);
        if (!slow_build()) {
                ck_assert_msg((rss1 - rss0) * 1024 <= n_timers * bound + OBJECT_SLACK_KIB * 1024,
                              "%u timers grew RSS by %ld KiB", n_timers, rss1 - rss0);
                ck_assert_msg((rss2 - rss1) * 1024 <= n_watches * bound + OBJECT_SLACK_KIB * 1024,
                              "%u watches grew RSS by %ld KiB", n_watches, rss2 - rss1);
        }

        /* Stored encoded, echoed intact: a one-shot timer (its notice takes the tag along), a
         * repeating one (the notice reads the timer's), and the listing. */
        r = test_client_result(&c, "timer", json_pack("{s:i,s:O}", "after", 0, "tag", tag), NULL,
                               0);
        m = test_client_notification_for(&c, "timer", "timer", int_member(r, "timer"), TIMEOUT);
        ck_assert_msg(m, "no timer notification");
        ck_assert(json_equal(member(member(m, "params"), "tag"), tag));
        json_decref(m);
        json_decref(r);
        r = test_client_result(
                &c, "timer",
                json_pack("{s:f,s:f,s:O}", "after", 0.001, "interval", 0.5, "tag", tag), NULL, 0);
        m = test_client_notification_for(&c, "timer", "timer", int_member(r, "timer"), TIMEOUT);
        ck_assert_msg(m, "no timer notification");
        ck_assert(json_equal(member(member(m, "params"), "tag"), tag));
        json_decref(m);
        test_client_send(&c,
                         jsonrpc_request_new(77, "timers",
                                             json_pack("{s:I,s:i}", "offset",
                                                       (json_int_t)(100 + n_timers), "limit", 5)),
                         NULL, 0);
        m = recv_canonical(&c);
        {
                json_t *items = member(member(m, "result"), "timers"), *last;

                ck_assert_uint_eq(json_array_size(items), 1);
                last = json_array_get(items, 0);
                ck_assert_int_eq(int_member(last, "timer"), int_member(r, "timer"));
                ck_assert(json_equal(member(last, "tag"), tag));
                ck_assert(json_is_real(member(last, "interval")));
        }
        json_decref(m);
        json_decref(r);
        test_client_send(&c, jsonrpc_request_new(78, "watches", json_pack("{s:i}", "limit", 3)),
                         NULL, 0);
        m = recv_canonical(&c);
        ck_assert(json_equal(
                member(json_array_get(member(member(m, "result"), "watches"), 0), "tag"), tag));
        json_decref(m);
        json_decref(tag);
        test_client_close(&c);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}

START_TEST(test_tag_memory_deep) {
        tag_memory(true);
}
END_TEST

START_TEST(test_tag_memory_wide) {
        tag_memory(false);
}
END_TEST

/* ---- the hand-assembled pieces against jansson ------------------------------------ */

static void check_real(double v) {
        json_t *j = json_real(v);
        char want[64], got[64];
        size_t n = json_dumpb(j, want, sizeof(want), JSON_COMPACT | JSON_ENCODE_ANY);
        char *end = text_put_real(got, got + sizeof(got), v);

        ck_assert_ptr_nonnull(end);
        ck_assert_msg((size_t)(end - got) == n && memcmp(got, want, n) == 0,
                      "%.17g: got %.*s want %.*s", v, (int)(end - got), got, (int)n, want);
        json_decref(j);
}

START_TEST(test_reals) {
        static const double values[] = {0.0,          -0.0,     1.0,      0.1,
                                        0.5,          1e-7,     1e-300,   5e-324,
                                        1e21,         1e22,     1e300,    123456789012345678.0,
                                        2147483648.0, -3600.25, 0.000123, 1.5e-5};
        unsigned seed = 1;

        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
                check_real(values[i]);
        for (int i = 0; i < 20000; i++) {
                seed = seed * 1103515245u + 12345u;
                check_real(ldexp((double)(seed >> 8), (int)(seed % 200) - 120) *
                           ((seed & 1) ? -1 : 1));
        }
}
END_TEST

START_TEST(test_encode_timer) {
        static const uint64_t late[] = {0,      1,         999,        1000,
                                        300000, 123456789, 1000000000, UINT64_C(86400000000000)};
        static const char *const tags[] = {NULL, "7", "\"x\"", "{\"k\":[1,{\"m\":null}]}"};
        char buf[4096];

        for (size_t i = 0; i < sizeof(late) / sizeof(late[0]); i++)
                for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++) {
                        json_t *tag =
                                tags[t] ? json_loads(tags[t], JSON_DECODE_ANY, NULL) : json_null();
                        json_t *want = jsonrpc_notification(
                                "timer",
                                json_pack("{s:I,s:o,s:I,s:f}", "timer", (json_int_t)(i + 1), "tag",
                                          tag, "expirations", (json_int_t)(t * 1000 + 1), "late",
                                          (double)late[i] / 1e9));
                        char *want_text = json_dumps(want, JSON_COMPACT);
                        size_t len = 0;

                        ck_assert_int_eq(
                                notify_encode_timer(i + 1, tags[t], tags[t] ? strlen(tags[t]) : 0,
                                                    t * 1000 + 1, late[i], buf, sizeof(buf), &len),
                                0);
                        ck_assert_msg(len == strlen(want_text) && memcmp(buf, want_text, len) == 0,
                                      "got %.*s\nwant %s", (int)len, buf, want_text);
                        /* Every shorter buffer is refused, never overrun. */
                        for (size_t size = 0; size < len; size += 1 + size / 8) {
                                size_t got = 0;

                                ck_assert_int_eq(notify_encode_timer(i + 1, tags[t],
                                                                     tags[t] ? strlen(tags[t]) : 0,
                                                                     t * 1000 + 1, late[i], buf,
                                                                     size, &got),
                                                 -EMSGSIZE);
                        }
                        free(want_text);
                        json_decref(want);
                }
}
END_TEST

int main(void) {
        Suite *s = suite_create("budget");
        TCase *tc;

        tc = test_tcase(s, "reply-budget", 240);
        tcase_add_test(tc, test_listing_batch);
        tcase_add_test(tc, test_listing_paged_by_budget);
        tc = test_tcase(s, "tags", 240);
        tcase_add_test(tc, test_tag_memory_deep);
        tcase_add_test(tc, test_tag_memory_wide);
        tc = tcase_create("encode");
        tcase_add_test(tc, test_reals);
        tcase_add_test(tc, test_encode_timer);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
