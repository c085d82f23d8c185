#pragma once
/* test-hostile.h - the hostile suite's parts: each test-hostile-*.c adds its tests to a TCase */

#include <check.h>

void hostile_input_tests(TCase *tc);
void hostile_fds_tests(TCase *tc);
void hostile_eof_tests(TCase *tc);
void hostile_faults_tests(TCase *tc);
void hostile_fd_exhaustion_tests(TCase *tc);
void hostile_load_tests(TCase *tc);
void hostile_socket_tests(TCase *tc);
void hostile_uids_tests(TCase *tc);
