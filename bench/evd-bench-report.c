/*
 * evd-bench-report.c - what evd-bench reports besides each scenario's own tables: one
 * JSON member per call (jreal(), jint(), ...), and the targets collected from every
 * scenario for the summary table printed (and returned as JSON) at the end.
 */

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "evd-bench.h"
#include "macro.h"

/* ---- JSON: one member per line keeps the field lists readable ----------------------- */

void jreal(json_t *o, const char *key, double v) {
        json_object_set_new(o, key, json_real(v));
}

void jint(json_t *o, const char *key, uint64_t v) {
        json_object_set_new(o, key, json_integer((json_int_t)v));
}

void jbool(json_t *o, const char *key, bool v) {
        json_object_set_new(o, key, json_boolean(v));
}

void jstr(json_t *o, const char *key, const char *v) {
        json_object_set_new(o, key, json_string(v));
}

const char *verdict(bool met) {
        return met ? "met" : "MISSED";
}

/* ---- the targets, collected for the summary at the end ------------------------------- */

#define MAX_SUMMARY 32

typedef struct SummaryRow {
        const char *target;
        char value[MAX_BACKENDS][24];
        bool met[MAX_BACKENDS], has[MAX_BACKENDS];
        bool across; /* one value for the backends together (a ratio) */
} SummaryRow;

static SummaryRow summary[MAX_SUMMARY];
static size_t n_summary;

static SummaryRow *summary_row(const char *target) {
        for (size_t i = 0; i < n_summary; i++)
                if (strcmp(summary[i].target, target) == 0)
                        return &summary[i];
        if (n_summary == MAX_SUMMARY)
                die("too many summary rows");
        summary[n_summary].target = target;
        return &summary[n_summary++];
}

/* @backend SIZE_MAX: a row about the backends together. */
void summary_add(const char *target, size_t backend, bool met, const char *fmt,
                 double value) {
        SummaryRow *r = summary_row(target);
        size_t b = backend == SIZE_MAX ? 0 : backend;

        r->across = backend == SIZE_MAX;
        snprintf(r->value[b], sizeof(r->value[b]), fmt, value);
        r->met[b] = met;
        r->has[b] = true;
}

json_t *summary_print(void) {
        json_t *j = json_array();

        if (n_summary == 0)
                return j;
        printf("\nTargets%-37s", "");
        for (size_t b = 0; b < arg_n_backends; b++)
                printf(" %-20s", arg_backends[b]);
        printf("\n");
        for (size_t i = 0; i < n_summary; i++) {
                const SummaryRow *r = &summary[i];

                printf("  %-42s", r->target);
                for (size_t b = 0; b < (r->across ? 1 : arg_n_backends); b++) {
                        char cell[48] = "-";

                        if (r->has[b])
                                snprintf(cell, sizeof(cell), "%s %s", r->value[b],
                                         verdict(r->met[b]));
                        printf(" %-20s", cell);
                        json_array_append_new(j, json_pack("{s:s,s:s,s:s,s:b}", "target", r->target,
                                                           "backend",
                                                           r->across ? "all" : arg_backends[b],
                                                           "value", r->value[b], "met", r->met[b]));
                }
                printf("\n");
        }
        return j;
}
