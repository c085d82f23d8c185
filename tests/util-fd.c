/* util-fd.c - tests: the pipes and eventfds tests watch, and reading or writing them
 *
 * Every fd is CLOEXEC and non-blocking, so a test never blocks on one and a forked daemon
 * never inherits one.
 */

#include <check.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "macro.h"
#include "util-fd.h"

void make_pipe(int p[2]) {
        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
}

void close_pair(int p[2]) {
        p[0] = safe_close(p[0]);
        p[1] = safe_close(p[1]);
}

void write_byte(int fd) {
        ck_assert_int_eq(write(fd, "x", 1), 1);
}

void drain_fd(int fd) {
        char buf[4096];

        while (read(fd, buf, sizeof(buf)) > 0)
                ;
}

int make_eventfd(void) {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

        ck_assert_int_ge(fd, 0);
        return fd;
}

void poke_eventfd(int fd) {
        uint64_t one = 1;

        ck_assert_int_eq(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one));
}
