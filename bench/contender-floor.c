/* contender-floor.c - the same rounds with no poller at all: the cost floor
 *
 * The driver knows which pipes hold a byte (the A seeds, then the pipe after each one a
 * callback wrote to), so this "contender" keeps them in a FIFO and calls the shared
 * callback work on each directly, in the order a loop would see them. What remains is the
 * read() + write() per event that every real contender also pays; a contender's time
 * minus this one's is what its readiness machinery costs.
 */

#include "bench.h"

#include <stdlib.h>

static unsigned *fifo;
static size_t fifo_size;

static int floor_setup(const char **ret_why) {
        /* Never more than A bytes in flight, so never more than A queued pipes. */
        fifo_size = (size_t)bench_pipes.active + 1;
        fifo = calloc(fifo_size, sizeof(*fifo));
        return fifo ? 0 : -ENOMEM;
}

static int floor_run(void) {
        BenchPipes *p = &bench_pipes;
        size_t head = 0, tail = 0;

        for (unsigned i = 0; i < p->active; i++) {
                fifo[tail] = (unsigned)((uint64_t)i * p->n / p->active);
                tail = tail + 1 == fifo_size ? 0 : tail + 1;
        }
        while (head != tail) {
                unsigned idx = fifo[head];
                uint64_t writes = p->writes;

                head = head + 1 == fifo_size ? 0 : head + 1;
                if (bench_pipes_readable(idx))
                        return 0;
                if (p->writes != writes) {
                        fifo[tail] = idx + 1 == p->n ? 0 : idx + 1;
                        tail = tail + 1 == fifo_size ? 0 : tail + 1;
                }
        }
        return -EIO; /* a byte went missing */
}

static void floor_teardown(void) {
        free(fifo);
        fifo = NULL;
}

const IoContender contender_floor = {
        .name = "floor(no poll)",
        .setup = floor_setup,
        .run = floor_run,
        .teardown = floor_teardown,
};
