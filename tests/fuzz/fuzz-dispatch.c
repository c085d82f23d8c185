/* fuzz-dispatch.c - libFuzzer harness for the daemon's request dispatcher
 *
 * A real Daemon (no listening socket) serves one connection per input over a socketpair.
 * Input layout: byte 0 chooses the fds sent along (low 3 bits: how many, 0..7; each one's
 * type cycles through pipe, eventfd, socket, /dev/null, regular file, directory, O_PATH,
 * starting at a type chosen by the high bits), the rest is the packet. The harness runs
 * the loop until it is idle, reads whatever came back, hangs up, and runs the loop again;
 * then the daemon must hold nothing: no client, no watch, no timer, and no fd beyond the
 * ones it had at start (a leak aborts, so libFuzzer reports the input). Run libFuzzer with
 * -print_funcs=0: symbolizing new functions starts llvm-symbolizer on two pipes that stay
 * open, which this check would take for a leak (run-fuzzers.sh does).
 */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "daemon.h"
#include "fuzz-daemon.h"
#include "log.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static Daemon *fuzz_daemon;
static int baseline_fds;
static char scratch_file[] = "/tmp/evd-fuzz-XXXXXX";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        /* Daemon-side limits small enough that quota paths are reachable. */
        static const ConfigSetting cli[] = {
                { (char *)"max-watches-per-client", (char *)"4" },
                { (char *)"max-timers-per-client", (char *)"4" },
        };
        int fd;

        fuzz_daemon = fuzz_daemon_start(cli, 2);
        fd = mkstemp(scratch_file);
        if (fd < 0)
                abort();
        close(fd);
        baseline_fds = fuzz_count_fds();
        return 0;
}

static int make_fd(unsigned type, int *extra) {
        int p[2], fd = -1;

        *extra = -1;
        switch (type % 7) {
        case 0:
                if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                        return -1;
                *extra = p[1];
                return p[0];
        case 1:
                return eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
        case 2:
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
                        return -1;
                *extra = p[1];
                return p[0];
        case 3:
                return open("/dev/null", O_RDONLY | O_CLOEXEC);
        case 4:
                return open(scratch_file, O_RDONLY | O_CLOEXEC);
        case 5:
                return open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        default:
                fd = open("/tmp", O_PATH | O_CLOEXEC);
                return fd;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char buf[EVD_MAX_PACKET + 1];
        int sv[2], fds[8], extras[8];
        unsigned n_fds = 0;
        FdList got = FD_LIST_NULL;
        WirePacket pkt;

        if (size < 1 || size - 1 > EVD_MAX_PACKET)
                return -1;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
                abort();
        if (daemon_add_client(fuzz_daemon, sv[0]) < 0)
                abort();
        for (unsigned i = 0; i < (data[0] & 7u); i++) {
                fds[n_fds] = make_fd((data[0] >> 3) + i, &extras[n_fds]);
                if (fds[n_fds] >= 0)
                        n_fds++;
        }
        (void)wire_send(sv[1], data + 1, size - 1, fds, n_fds);
        for (unsigned i = 0; i < n_fds; i++) {
                close(fds[i]);
                if (extras[i] >= 0) {
                        /* Make the other end ready (pipe/socket), so watches fire. */
                        (void)!write(extras[i], "x", 1);
                        close(extras[i]);
                }
        }
        fuzz_run_until_idle(fuzz_daemon);
        while (wire_recv(sv[1], buf, sizeof(buf), &got, &pkt) == 0 && !pkt.eof)
                fd_list_close(&got);
        close(sv[1]);
        fuzz_run_until_idle(fuzz_daemon);

        fuzz_assert_holds_nothing(fuzz_daemon, baseline_fds);
        return 0;
}
