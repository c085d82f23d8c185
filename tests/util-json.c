/* util-json.c - tests: reading replies (members by type, compact text, comparisons)
 *
 * Every reader asserts: a missing member or one of the wrong type fails the test with the
 * whole message in the failure text, so a test reads what it expects without checking.
 */

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util-json.h"

bool streq(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

/* Compact text of @v for messages and comparisons; free() it. */
char *dump(const json_t *v) {
        char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("(null)");

        ck_assert_ptr_nonnull(s);
        return s;
}

json_t *member(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);

        if (!v) {
                char *s = dump(o);
                ck_abort_msg("no member \"%s\" in %s", key, s);
        }
        return v;
}

json_int_t int_member(json_t *o, const char *key) {
        json_t *v = member(o, key);

        if (!json_is_integer(v)) {
                char *s = dump(o);
                ck_abort_msg("member \"%s\" is not an integer in %s", key, s);
        }
        return json_integer_value(v);
}

double num_member(json_t *o, const char *key) {
        json_t *v = member(o, key);

        if (!json_is_number(v)) {
                char *s = dump(o);
                ck_abort_msg("member \"%s\" is not a number in %s", key, s);
        }
        return json_number_value(v);
}

const char *str_member(json_t *o, const char *key) {
        json_t *v = member(o, key);

        if (!json_is_string(v)) {
                char *s = dump(o);
                ck_abort_msg("member \"%s\" is not a string in %s", key, s);
        }
        return json_string_value(v);
}

bool bool_member(json_t *o, const char *key) {
        json_t *v = member(o, key);

        if (!json_is_boolean(v)) {
                char *s = dump(o);
                ck_abort_msg("member \"%s\" is not a boolean in %s", key, s);
        }
        return json_is_true(v);
}

/* Whether @v's compact text is exactly @text (ids, event lists, tags). */
bool json_text_is(const json_t *v, const char *text) {
        char *s = dump(v);
        bool r = strcmp(s, text) == 0;

        free(s);
        return r;
}

void assert_json(const json_t *v, const char *text) {
        char *s = dump(v);

        ck_assert_msg(strcmp(s, text) == 0, "expected %s, got %s", text, s);
        free(s);
}
