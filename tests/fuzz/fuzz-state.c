/* fuzz-state.c - libFuzzer harness for the re-exec state parser (daemon/snapshot-load.c)
 *
 * The input is a state file, restored into a real Daemon (no listening socket) as a new
 * image would: the inherited fds are a SEQPACKET connection at fd 900, a pipe at 901 and an
 * eventfd at 902 (the corpus names them). Afterwards the harness pokes the pipe, hangs up
 * the connection and runs the loop until idle; then the daemon must hold nothing (no
 * client, watch or timer) and no fd beyond its baseline: every inherited fd was either
 * owned or closed, whatever the input said.
 */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon-internal.h"
#include "fuzz-daemon.h"
#include "log.h"
#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

enum { CONN_FD = 900, PIPE_FD = 901, EVENT_FD = 902 };

static Daemon *fuzz_daemon;
static int baseline_fds;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_daemon = fuzz_daemon_start(NULL, 0);
        baseline_fds = fuzz_count_fds();
        return 0;
}

/* Move @fd to @at, which must be free. */
static void place(int fd, int at) {
        if (fd < 0 || fcntl(at, F_GETFD) >= 0 || dup3(fd, at, O_CLOEXEC) != at)
                abort();
        close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FdSet inherited = { 0 };
        SnapshotCounts counts;
        int sv[2], p[2];
        char buf[65536];

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0 ||
            pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                abort();
        place(sv[0], CONN_FD);
        place(p[0], PIPE_FD);
        place(eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK), EVENT_FD);
        if (fdset_add(&inherited, CONN_FD) < 0 || fdset_add(&inherited, PIPE_FD) < 0 ||
            fdset_add(&inherited, EVENT_FD) < 0)
                abort();

        (void)snapshot_restore(fuzz_daemon, (const char *)data, size, &inherited, &daemon_conn_ops, &counts);
        (void)fdset_close_rest(&inherited);
        fdset_done(&inherited);

        (void)!write(p[1], "x", 1);
        fuzz_run_until_idle(fuzz_daemon);
        while (recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT) > 0)
                ;
        close(sv[1]);
        close(p[1]);
        fuzz_run_until_idle(fuzz_daemon);

        fuzz_assert_holds_nothing(fuzz_daemon, baseline_fds);
        return 0;
}
