#pragma once
/* test-libevd.h - the libevd suite's parts: each test-libevd-*.c adds its tests to TCases */

#include <check.h>

void libevd_connect_tests(TCase *tc_connect);
void libevd_watch_tests(TCase *tc_watch, TCase *tc_quota);
void libevd_timers_tests(TCase *tc_timer);
void libevd_calls_tests(TCase *tc_call, TCase *tc_debug);
void libevd_reconnect_tests(TCase *tc_debug, TCase *tc_reconnect);
