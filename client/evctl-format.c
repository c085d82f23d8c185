/*
 * evctl-format.c - units and tables for evctl's human output.
 *
 * Durations pick the unit that keeps three significant figures readable (us, ms, s) and
 * switch to compound forms from a minute up, like uptime(1) and systemctl do. Rates keep
 * three significant figures (a counter of 9 in 66 s is 0.136/s, not 0) and stop at whole
 * numbers, where decimals would be noise. Tables are rows of copied strings; widths are
 * computed at print time, so callers just add cells.
 */

#include "evctl-format.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *format_duration(double s, char buf[static FORMAT_MAX]) {
        const char *sign = s < 0 ? "-" : "";
        double a = fabs(s);

        if (!isfinite(s))
                snprintf(buf, FORMAT_MAX, "-");
        else if (a < 0.001)
                snprintf(buf, FORMAT_MAX, "%s%.0f us", sign, a * 1e6);
        else if (a < 1)
                snprintf(buf, FORMAT_MAX, "%s%.*f ms", sign, a < 0.01 ? 2 : 1, a * 1e3);
        else if (a < 60)
                snprintf(buf, FORMAT_MAX, "%s%.*f s", sign, a < 10 ? 2 : 1, a);
        else if (a < 3600)
                snprintf(buf, FORMAT_MAX, "%s%um %02us", sign, (unsigned)(a / 60),
                         (unsigned)fmod(a, 60));
        else if (a < 86400)
                snprintf(buf, FORMAT_MAX, "%s%uh %02um", sign, (unsigned)(a / 3600),
                         (unsigned)fmod(a / 60, 60));
        else
                snprintf(buf, FORMAT_MAX, "%s%llud %02uh", sign, (unsigned long long)(a / 86400),
                         (unsigned)fmod(a / 3600, 24));
        return buf;
}

const char *format_us(double us, char buf[static FORMAT_MAX]) {
        if (us < 1000)
                snprintf(buf, FORMAT_MAX, "%.1f us", us);
        else
                return format_duration(us / 1e6, buf);
        return buf;
}

const char *format_bytes(uint64_t b, char buf[static FORMAT_MAX]) {
        static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
        double v = (double)b;
        size_t i = 0;

        if (b < 1024) {
                snprintf(buf, FORMAT_MAX, "%llu B", (unsigned long long)b);
                return buf;
        }
        v /= 1024;
        while (v >= 1024 && i + 1 < sizeof(units) / sizeof(units[0])) {
                v /= 1024;
                i++;
        }
        snprintf(buf, FORMAT_MAX, "%.1f %s", v, units[i]);
        return buf;
}

const char *format_count(uint64_t n, char buf[static FORMAT_MAX]) {
        char digits[32];
        size_t len, o = 0;

        len = (size_t)snprintf(digits, sizeof(digits), "%llu", (unsigned long long)n);
        for (size_t i = 0; i < len; i++) {
                if (i > 0 && (len - i) % 3 == 0)
                        buf[o++] = ',';
                buf[o++] = digits[i];
        }
        buf[o] = 0;
        return buf;
}

const char *format_rate(double v, char buf[static FORMAT_MAX]) {
        if (!isfinite(v))
                snprintf(buf, FORMAT_MAX, "-");
        else if (v <= 0)
                snprintf(buf, FORMAT_MAX, "0");
        else if (v < 0.001)
                snprintf(buf, FORMAT_MAX, "<0.001"); /* %g would switch to an exponent */
        else if (v < 999.5)
                snprintf(buf, FORMAT_MAX, "%.3g", v);
        else
                return format_count((uint64_t)llround(v), buf);
        return buf;
}

/* "@a @b": a number and its unit always fit, and the return value is looked at so that
 * gcc -O3 (-Wformat-truncation) does not object to an @a as long as the whole buffer. */
static const char *join_words(const char *a, const char *b, char buf[static FORMAT_MAX]) {
        if (snprintf(buf, FORMAT_MAX, "%s %s", a, b) < 0)
                buf[0] = 0;
        return buf;
}

const char *format_byte_rate(double v, char buf[static FORMAT_MAX]) {
        char n[FORMAT_MAX];

        if (v >= 1024)
                return format_bytes((uint64_t)llround(v), buf);
        return join_words(format_rate(v, n), "B", buf);
}

const char *format_quantity(uint64_t n, const char *one, const char *many, char buf[static FORMAT_MAX]) {
        char c[FORMAT_MAX];

        return join_words(format_count(n, c), n == 1 ? one : many, buf);
}

struct Table {
        size_t n_columns;
        char **headers;
        bool *right;
        char **cells;
        size_t n_cells, allocated;
};

Table *table_new(size_t n_columns, const char *const *headers) {
        Table *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        t->n_columns = n_columns;
        t->headers = calloc(n_columns, sizeof(char *));
        t->right = calloc(n_columns, sizeof(bool));
        if (!t->headers || !t->right)
                return table_free(t);
        for (size_t i = 0; i < n_columns; i++) {
                const char *h = headers[i];

                t->right[i] = h[0] == '>';
                t->headers[i] = strdup(h + t->right[i]);
                if (!t->headers[i])
                        return table_free(t);
        }
        return t;
}

int table_add(Table *t, const char *cell) {
        char *copy = strdup(cell ? cell : "");

        if (!copy)
                return -ENOMEM;
        if (t->n_cells == t->allocated) {
                size_t n = t->allocated ? t->allocated * 2 : 64;
                char **c = realloc(t->cells, n * sizeof(char *));

                if (!c) {
                        free(copy);
                        return -ENOMEM;
                }
                t->cells = c;
                t->allocated = n;
        }
        t->cells[t->n_cells++] = copy;
        return 0;
}

static void print_row(const Table *t, char *const *row, size_t n, const size_t *width) {
        for (size_t i = 0; i < n; i++) {
                bool last = i + 1 == t->n_columns;
                int w = (int)width[i];

                if (t->right[i])
                        printf("%*s", w, row[i]);
                else if (last)
                        printf("%s", row[i]);
                else
                        printf("%-*s", w, row[i]);
                if (!last)
                        printf("  ");
        }
        printf("\n");
}

void table_print(const Table *t, const char *empty) {
        size_t *width = calloc(t->n_columns, sizeof(size_t));

        if (!width)
                return;
        if (t->n_cells == 0) {
                if (empty)
                        printf("%s\n", empty);
                free(width);
                return;
        }
        for (size_t i = 0; i < t->n_columns; i++)
                width[i] = strlen(t->headers[i]);
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t len = strlen(t->cells[i]);

                if (len > width[i % t->n_columns])
                        width[i % t->n_columns] = len;
        }
        print_row(t, t->headers, t->n_columns, width);
        for (size_t i = 0; i < t->n_cells; i += t->n_columns)
                print_row(t, t->cells + i,
                          t->n_cells - i < t->n_columns ? t->n_cells - i : t->n_columns, width);
        free(width);
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; t->headers && i < t->n_columns; i++)
                free(t->headers[i]);
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->headers);
        free(t->right);
        free(t->cells);
        free(t);
        return NULL;
}
