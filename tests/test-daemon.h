#pragma once
/* test-daemon.h - the daemon suite's parts: each test-daemon-*.c adds its TCases */

#include <check.h>

void daemon_session_tests(Suite *s);
void daemon_watch_tests(Suite *s);
void daemon_fds_tests(Suite *s);
void daemon_timers_tests(Suite *s);
void daemon_listings_tests(Suite *s);
void daemon_errors_tests(Suite *s);
void daemon_batches_tests(Suite *s);
void daemon_access_tests(Suite *s);
void daemon_lifecycle_tests(Suite *s);
