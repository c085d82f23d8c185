/*
 * test-protocol.c - unit tests of protocol/: constants and events, FdList,
 * SEQPACKET framing with SCM_RIGHTS, JSON-RPC parsing, validation and building.
 *
 * Wire tests run over socketpair(AF_UNIX, SOCK_SEQPACKET) and check fd hygiene by
 * counting /proc/self/fd: every fd the kernel installed on a truncated packet must
 * be closed before wire_recv() returns. Every json_t is released so the valgrind
 * setup can check for leaks.
 *
 * The suite "protocol", one file per concern (each adds its TCase, in this order):
 *   test-protocol-constants.c  error codes, events, tags        (constants)
 *   test-protocol-fd-list.c    FdList                           (fd-list)
 *   test-protocol-wire.c       framing, SCM_RIGHTS, truncation  (wire)
 *   test-protocol-parse.c      JSON parsing                     (parse)
 *   test-protocol-request.c    request validation               (request)
 *   test-protocol-build.c      builders and encoding            (build)
 *   test-protocol-response.c   client-side classification       (response)
 * Helpers: util-fd (fd counts, raw sendmsg), util-json (parse_ok, assert_encodes).
 */

#include <check.h>

#include "test-protocol.h"
#include "util-check.h"

static Suite *protocol_suite(void) {
        Suite *s = suite_create("protocol");

        protocol_constants_tests(s);
        protocol_fd_list_tests(s);
        protocol_wire_tests(s);
        protocol_parse_tests(s);
        protocol_request_tests(s);
        protocol_build_tests(s);
        protocol_response_tests(s);
        return s;
}

int main(void) {
        return test_run_suite(protocol_suite());
}
