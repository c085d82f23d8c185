#pragma once
/* evctl-format.h - human output for evctl: units (durations, sizes, counts) and aligned tables */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Big enough for every formatted value below. */
#define FORMAT_MAX 64

/* "850 us", "12.3 ms", "4.21 s", "3m 20s", "2h 05m", "3d 04h"; negative: "-1.20 s". */
const char *format_duration(double seconds, char buf[static FORMAT_MAX]);
/* "512 B", "3.2 KiB", "4.0 MiB". */
const char *format_bytes(uint64_t bytes, char buf[static FORMAT_MAX]);
/* "5,120". */
const char *format_count(uint64_t n, char buf[static FORMAT_MAX]);
/* Microseconds as a duration: "12.0 us", "1.35 ms". */
const char *format_us(double us, char buf[static FORMAT_MAX]);
/* A rate, per whatever the caller says: "0", "<0.001", "0.136", "12.3", "1,234". */
const char *format_rate(double rate, char buf[static FORMAT_MAX]);
/* Bytes per whatever the caller says: "0.5 B", "901 B", "3.2 KiB". */
const char *format_byte_rate(double rate, char buf[static FORMAT_MAX]);
/* "1 connection", "0 connections", "2,048 connections". */
const char *format_quantity(uint64_t n, const char *one, const char *many, char buf[static FORMAT_MAX]);

typedef struct Table Table;

/** table_new() - a table with @n_columns; a header starting with '>' is right-aligned
 * (the '>' is not printed). Return: NULL on OOM. */
Table *table_new(size_t n_columns, const char *const *headers);
/** table_add() - append a cell (copied) to the current row; rows fill left to right. */
int table_add(Table *t, const char *cell);
/** table_print() - print aligned, two spaces between columns; nothing if no rows and
 * @empty is NULL, else @empty. */
void table_print(const Table *t, const char *empty);
Table *table_free(Table *t);
