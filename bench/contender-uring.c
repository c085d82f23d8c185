/* contender-uring.c - the io_uring baseline: the simplest fast liburing loop one could write
 *
 * What issue 15's poller-cost target was measured against: one multishot POLL_ADD per pipe
 * on a SINGLE_ISSUER|DEFER_TASKRUN ring, the pipe index in user_data, one
 * io_uring_submit_and_wait() per iteration, every CQE handed straight to the shared
 * callback work, a poll re-armed when its CQE comes without F_MORE. No timers, no deferred
 * work, no generations or cancels: set beside engine(io_uring) in the same run, the
 * difference is what the engine's own bookkeeping costs; the rest is the kernel's.
 */

#include "bench.h"

#include <liburing.h>
#include <poll.h>

static struct io_uring ring;
static bool ring_ready;
static int64_t iterations, enters;

static int arm(unsigned idx) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

        if (!sqe) {
                enters++;
                if (io_uring_submit(&ring) < 0 || !(sqe = io_uring_get_sqe(&ring)))
                        return -EBUSY;
        }
        io_uring_prep_poll_multishot(sqe, bench_pipes.pipes[idx].r, POLLIN);
        io_uring_sqe_set_data64(sqe, idx);
        return 0;
}

static int uring_setup(const char **ret_why) {
        struct io_uring_params p = {
                .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE,
        };
        int r;

        /* One CQE per pipe fits a whole round's worth of reports, as in the engine. */
        p.cq_entries = bench_pipes.n < 64 ? 64 : bench_pipes.n;
        r = io_uring_queue_init_params(256, &ring, &p);
        if (r < 0) {
                *ret_why = "io_uring_queue_init_params() refused SINGLE_ISSUER|DEFER_TASKRUN";
                return r == -EINVAL ? -EOPNOTSUPP : r;
        }
        ring_ready = true;
        iterations = enters = 0;
        for (unsigned i = 0; i < bench_pipes.n; i++)
                if ((r = arm(i)) < 0)
                        return r;
        enters++;
        r = io_uring_submit(&ring);
        return r < 0 ? r : 0;
}

static int uring_run(void) {
        for (;;) {
                struct io_uring_cqe *cqe;
                unsigned head, seen = 0;
                bool done = false;
                int r;

                enters++;
                r = io_uring_submit_and_wait(&ring, 1);
                if (r < 0 && r != -EINTR && r != -ETIME)
                        return r;
                iterations++;
                io_uring_for_each_cqe(&ring, head, cqe) {
                        unsigned idx = (unsigned)io_uring_cqe_get_data64(cqe);

                        seen++;
                        if (cqe->res < 0 && cqe->res != -ECANCELED)
                                return cqe->res;
                        if (!(cqe->flags & IORING_CQE_F_MORE) && arm(idx) < 0)
                                return -EBUSY;
                        if (cqe->res > 0)
                                done = bench_pipes_readable(idx);
                }
                io_uring_cq_advance(&ring, seen);
                if (done)
                        return 0;
        }
}

static int64_t uring_waits(void) {
        return iterations;
}

static int64_t uring_syscalls(void) {
        return enters;
}

static void uring_teardown(void) {
        if (ring_ready)
                io_uring_queue_exit(&ring);
        ring_ready = false;
}

const IoContender contender_raw_uring = {
        .name = "raw-uring",
        .setup = uring_setup,
        .run = uring_run,
        .waits = uring_waits,
        .syscalls = uring_syscalls,
        .teardown = uring_teardown,
};
