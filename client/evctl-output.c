/*
 * evctl-output.c - evctl's formatting of daemon results: JSON printed for --json, readers
 * of result fields and the short cell texts (ids, tags, event lists) of the human tables.
 * Units and tables themselves are evctl-format.c's.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evctl.h"

/* Reals with 16 significant digits, for people and scripts: 0.1, not jansson's
 * 0.10000000000000001 (the wire keeps all 17, exact; a real that needs the 17th, as a tag
 * may, is shown rounded: evctl(1)). */
#define EVCTL_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(16))

void print_json(json_t *v) {
        char *s = json_dumps(v, EVCTL_DUMP_FLAGS | JSON_ENCODE_ANY);

        if (s) {
                puts(s);
                free(s);
        }
        fflush(stdout);
}

double round_decimals(double v, int decimals) {
        double scale = pow(10, decimals);

        return round(v * scale) / scale;
}

/* print_json() for a temporary: @v is stolen. */
void print_json_new(json_t *v) {
        print_json(v);
        json_decref(v);
}

json_int_t jint(json_t *o, const char *key) {
        return json_integer_value(json_object_get(o, key));
}

double jnum(json_t *o, const char *key) {
        return json_number_value(json_object_get(o, key));
}

const char *jstr(json_t *o, const char *key) {
        const char *s = json_string_value(json_object_get(o, key));

        return s ? s : "";
}

const char *yesno(json_t *o, const char *key) {
        return json_is_true(json_object_get(o, key)) ? "yes" : "no";
}

const char *fmt_int(json_t *o, const char *key, char buf[static FORMAT_MAX]) {
        snprintf(buf, FORMAT_MAX, "%lld", (long long)jint(o, key));
        return buf;
}

/* A tag as compact JSON, shortened for a table cell. */
const char *fmt_tag(json_t *o, char buf[static FORMAT_MAX]) {
        json_t *tag = json_object_get(o, "tag");
        char *s;

        if (!tag || json_is_null(tag))
                return "-";
        s = json_dumps(tag, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s)
                return "?";
        if (strlen(s) > 40)
                snprintf(buf, FORMAT_MAX, "%.37s...", s);
        else
                snprintf(buf, FORMAT_MAX, "%s", s);
        free(s);
        return buf;
}

const char *fmt_events(json_t *array, char buf[static FORMAT_MAX]) {
        size_t i, o = 0;
        json_t *e;

        buf[0] = 0;
        json_array_foreach(array, i, e) {
                int n = snprintf(buf + o, FORMAT_MAX - o, "%s%s", i ? "," : "",
                                 json_string_value(e) ? json_string_value(e) : "?");

                if (n < 0 || (size_t)n >= FORMAT_MAX - o)
                        break;
                o += (size_t)n;
        }
        return buf;
}
