#pragma once
/* test-protocol.h - the protocol suite's parts: each test-protocol-*.c adds its TCase */

#include <check.h>

void protocol_constants_tests(Suite *s);
void protocol_fd_list_tests(Suite *s);
void protocol_wire_tests(Suite *s);
void protocol_parse_tests(Suite *s);
void protocol_request_tests(Suite *s);
void protocol_build_tests(Suite *s);
void protocol_response_tests(Suite *s);
