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

/* Reals for people and scripts: 0.1, not jansson's 0.10000000000000001. No one precision
 * does (16 digits print 0.567 as 0.5669999999999999, 15 lose an epoch time's
 * microseconds): jansson writes them exact (17), then each is rewritten in the shortest
 * form that reads back as the same double, as Python's repr() and JavaScript do. */
#define EVCTL_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(17))

/* The fewest significant digits that read back as @v; written plainly from 1e-4 up to
 * 1e16 ("60.0", "0.567", "1764870000.123456"), else with an exponent, as Python does. */
static void put_real(double v, FILE *f) {
        char buf[48];
        int digits, exp10;

        for (digits = 1; digits < 17; digits++) {
                snprintf(buf, sizeof(buf), "%.*e", digits - 1, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        snprintf(buf, sizeof(buf), "%.*e", digits - 1, v);
        exp10 = atoi(strchr(buf, 'e') + 1);
        if (exp10 >= -4 && exp10 < 16)
                snprintf(buf, sizeof(buf), "%.*f", digits - 1 - exp10 > 0 ? digits - 1 - exp10 : 0, v);
        /* Still a real to the reader ("60.0", not "60"), as jansson writes it. */
        fprintf(f, "%s%s", buf, strpbrk(buf, ".e") ? "" : ".0");
}

/* @s, compact JSON from jansson, with every real in its shortest form. Outside strings only
 * numbers start with '-' or a digit; a real has a '.' or an exponent. */
static void put_json_text(const char *s, FILE *f) {
        bool in_string = false;

        while (*s) {
                size_t n = 1;

                if (in_string) {
                        n = *s == '\\' && s[1] ? 2 : 1;
                        in_string = *s != '"';
                } else if (*s == '"') {
                        in_string = true;
                } else if (*s == '-' || (*s >= '0' && *s <= '9')) {
                        n = strspn(s, "0123456789+-.eE");
                        if (memchr(s, '.', n) || memchr(s, 'e', n) || memchr(s, 'E', n)) {
                                put_real(strtod(s, NULL), f);
                                s += n;
                                continue;
                        }
                }
                fwrite(s, 1, n, f);
                s += n;
        }
        fputc('\n', f);
}

void print_json(json_t *v) {
        char *s = json_dumps(v, EVCTL_DUMP_FLAGS | JSON_ENCODE_ANY);

        if (s) {
                put_json_text(s, stdout);
                free(s);
        }
        fflush(stdout);
}

double round_decimals(double v, int decimals) {
        double scale = pow(10, decimals);

        return round(v * scale) / scale;
}

/* A mean is a quotient: its 16 digits would be noise past the daemon's nanoseconds, which
 * its other _us values (ns / 1000) never show. Every histogram of @stats: whichever the
 * daemon sends. */
void round_means(json_t *stats) {
        const char *key;
        json_t *h, *mean;

        json_object_foreach(stats, key, h) {
                mean = json_object_get(h, "mean_us");
                if (json_is_real(mean))
                        (void)json_real_set(mean, round_decimals(json_real_value(mean), 3));
        }
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
