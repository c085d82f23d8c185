/* test-protocol-fd-list.c - fd-list.c: take and peek, a full list, cleanup closes the rest
 *
 * Part of the protocol suite (test-protocol.c runs it); helpers in util-fd.h, util-json.h.
 */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-list.h"
#include "jsonrpc.h"
#include "macro.h"
#include "protocol.h"
#include "test-protocol.h"
#include "util-check.h"
#include "util-fd.h"
#include "util-json.h"
#include "wire.h"

/* ---- fd-list.c ---- */

static void fd_list_fill(FdList *l, unsigned n) {
        fd_list_init(l);
        for (unsigned i = 0; i < n; i++) {
                l->fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                ck_assert_int_ge(l->fds[i], 0);
        }
        l->n = n;
}

START_TEST(test_fd_list_take_peek) {
        FdList l = FD_LIST_NULL;
        int fd = -1, fd2 = -1, base = count_fds();

        fd_list_fill(&l, 3);
        ck_assert_uint_eq(fd_list_remaining(&l), 3);

        ck_assert_int_eq(fd_list_peek(&l, 1, &fd), 0);
        ck_assert_int_eq(fd, l.fds[1]);
        ck_assert_uint_eq(fd_list_remaining(&l), 3);

        ck_assert_int_eq(fd_list_take(&l, 1, &fd2), 0);
        ck_assert_int_eq(fd2, fd);
        ck_assert_uint_eq(fd_list_remaining(&l), 2);

        /* One index, one owner. */
        fd = -1;
        ck_assert_int_eq(fd_list_take(&l, 1, &fd), -EALREADY);
        ck_assert_int_eq(fd_list_peek(&l, 1, &fd), -EALREADY);
        ck_assert_int_eq(fd, -1);

        ck_assert_int_eq(fd_list_take(&l, 3, &fd), -ERANGE);
        ck_assert_int_eq(fd_list_take(&l, -1, &fd), -ERANGE);
        ck_assert_int_eq(fd_list_peek(&l, -1, &fd), -ERANGE);
        ck_assert_int_eq(fd_list_take(&l, INT64_MAX, &fd), -ERANGE);
        ck_assert_int_eq(fd_list_take(&l, INT64_MIN, &fd), -ERANGE);
        ck_assert_int_eq(fd_list_take(&l, (int64_t)1 << 32 | 1, &fd), -ERANGE);
        ck_assert_int_eq(fd, -1);

        /* Close leaves the taken fd to its owner and everything else shut. */
        fd_list_close(&l);
        ck_assert_uint_eq(l.n, 0);
        ck_assert_uint_eq(fd_list_remaining(&l), 0);
        ck_assert(fd_is_open(fd2));
        ck_assert_int_eq(count_fds(), base + 1);
        fd_list_close(&l);
        ck_assert_int_eq(count_fds(), base + 1);
        ck_assert_int_eq(fd_list_take(&l, 0, &fd), -ERANGE);
        close(fd2);
        ck_assert_int_eq(count_fds(), base);
}
END_TEST

START_TEST(test_fd_list_full) {
        FdList l = FD_LIST_NULL;
        int fd, last, base = count_fds();

        fd_list_fill(&l, EVD_MAX_FDS);
        ck_assert_int_eq(count_fds(), base + EVD_MAX_FDS);
        ck_assert_int_eq(fd_list_take(&l, EVD_MAX_FDS - 1, &last), 0);
        ck_assert_int_eq(fd_list_take(&l, EVD_MAX_FDS, &fd), -ERANGE);
        ck_assert_int_eq(fd_list_take(&l, 0, &fd), 0);
        close(fd);
        ck_assert_uint_eq(fd_list_remaining(&l), EVD_MAX_FDS - 2);
        fd_list_close(&l);
        ck_assert_int_eq(count_fds(), base + 1);
        ck_assert(fd_is_open(last));
        close(last);
        ck_assert_int_eq(count_fds(), base);

        /* An empty list: nothing to take, closing is a no-op. */
        FdList e = FD_LIST_NULL;
        ck_assert_uint_eq(fd_list_remaining(&e), 0);
        ck_assert_int_eq(fd_list_peek(&e, 0, &fd), -ERANGE);
        fd_list_close(&e);
}
END_TEST

START_TEST(test_fd_list_cleanup) {
        int base = count_fds();

        {
                _cleanup_fd_list_ FdList l = FD_LIST_NULL;
                fd_list_fill(&l, 4);
                ck_assert_int_eq(count_fds(), base + 4);
        }
        ck_assert_int_eq(count_fds(), base);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void protocol_fd_list_tests(Suite *s) {
        TCase *tc;

        tc = tcase_create("fd-list");
        suite_add_tcase(s, tc);
        tcase_add_test(tc, test_fd_list_take_peek);
        tcase_add_test(tc, test_fd_list_full);
        tcase_add_test(tc, test_fd_list_cleanup);
}
