#pragma once
/* test-engine.h - the engine suite's parts: each test-engine-*.c adds its TCases */

#include <check.h>

void engine_fd_types_tests(Suite *s);
void engine_modes_tests(Suite *s);
void engine_removal_tests(Suite *s);
void engine_add_errors_tests(Suite *s);
void engine_scale_tests(Suite *s);
void engine_timers_tests(Suite *s);
void engine_timer_mem_tests(Suite *s);
void engine_signals_tests(Suite *s);
void engine_defer_tests(Suite *s);
void engine_loop_tests(Suite *s);
void engine_uring_tests(Suite *s);
void engine_release_tests(Suite *s);
void engine_backend_tests(Suite *s);
