/* test-notify.c - the daemon's hand-assembled `ready` notification against jansson's
 *
 * notify_encode_ready() builds the hottest message without jansson (daemon/notify.c says
 * why); these tests hold it byte for byte to what jansson encodes for the same object,
 * over event combinations, id and count extremes and tags of every JSON type.
 */

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonrpc.h"
#include "notify.h"
#include "protocol.h"
#include "util-check.h"

static json_t *expected_ready(uint64_t watch, json_t *tag, uint32_t events, uint64_t count) {
        return jsonrpc_notification("ready", json_pack("{s:I,s:O,s:o,s:I}", "watch", (json_int_t)watch, "tag",
                                                       tag ? tag : json_null(), "events",
                                                       protocol_events_to_json(events), "count", (json_int_t)count));
}

static void check_one(uint64_t watch, const char *tag_text, uint32_t events, uint64_t count) {
        json_t *tag = tag_text ? json_loads(tag_text, JSON_DECODE_ANY, NULL) : NULL;
        json_t *want = expected_ready(watch, tag, events, count);
        char *want_text = json_dumps(want, JSON_COMPACT);
        char buf[4096];
        size_t len = 0;

        ck_assert_ptr_nonnull(want_text);
        ck_assert_int_eq(notify_encode_ready(watch, tag_text, tag_text ? strlen(tag_text) : 0, events, count, buf,
                                             sizeof(buf), &len),
                         0);
        ck_assert_msg(len == strlen(want_text) && memcmp(buf, want_text, len) == 0, "got %.*s\nwant %s", (int)len, buf,
                      want_text);
        /* Every shorter buffer is refused, never overrun. */
        for (size_t size = 0; size < len; size += 1 + size / 8) {
                size_t got = 0;
                ck_assert_int_eq(notify_encode_ready(watch, tag_text, tag_text ? strlen(tag_text) : 0, events, count,
                                                     buf, size, &got),
                                 -EMSGSIZE);
        }
        free(want_text);
        json_decref(want);
        json_decref(tag);
}

START_TEST(test_event_combinations) {
        static const uint32_t bits[] = { EVD_EVENT_IN,  EVD_EVENT_PRI, EVD_EVENT_OUT,
                                         EVD_EVENT_ERR, EVD_EVENT_HUP, EVD_EVENT_RDHUP };

        for (unsigned mask = 1; mask < 64; mask++) {
                uint32_t events = 0;

                for (unsigned b = 0; b < 6; b++)
                        if (mask & (1u << b))
                                events |= bits[b];
                check_one(mask, NULL, events, mask);
                /* Twice: the second comes from the per-combination cache. */
                check_one(mask + 1000, "7", events, 1);
        }
}
END_TEST

START_TEST(test_numbers) {
        static const uint64_t values[] = { 0, 1, 9, 10, 99, 100, 12345, UINT32_MAX, (UINT64_C(1) << 53) - 1,
                                           INT64_MAX };

        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
                for (size_t j = 0; j < sizeof(values) / sizeof(values[0]); j++)
                        check_one(values[i], NULL, EVD_EVENT_IN, values[j]);
}
END_TEST

START_TEST(test_tags) {
        static const char *const tags[] = {
                "0", "-1", "1.5", "true", "false", "null", "\"x\"", "\"\\u00e9\\n\\\"q\\\"\"", "[]", "{}",
                "[1,\"a\",{\"b\":[null]}]", "{\"k\":\"v\",\"n\":{\"m\":2}}",
        };
        char big[EVD_MAX_TAG + 1];

        for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
                json_t *v = json_loads(tags[i], JSON_DECODE_ANY, NULL);
                char *compact = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

                /* The daemon stores the tag as jansson encodes it; so does the test. */
                ck_assert_ptr_nonnull(compact);
                check_one(42, compact, EVD_EVENT_IN | EVD_EVENT_HUP, 3);
                free(compact);
                json_decref(v);
        }
        memset(big, 'a', sizeof(big) - 1);
        big[0] = big[sizeof(big) - 3] = '"';
        big[sizeof(big) - 2] = 0;
        check_one(7, big, EVD_EVENT_OUT, 1);
}
END_TEST

int main(void) {
        Suite *s = suite_create("notify");
        TCase *tc = tcase_create("encode-ready");

        tcase_add_test(tc, test_event_combinations);
        tcase_add_test(tc, test_numbers);
        tcase_add_test(tc, test_tags);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
