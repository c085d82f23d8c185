#pragma once
/* bench.h - what engine-bench's driver shares with its contenders: the pipe set, the
 * per-callback work every contender does, and the two contender interfaces */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

/* One pipe: the contenders watch `r`, the chain writes into the next pipe's `w`. */
typedef struct BenchPipe {
        int r;
        int w;
} BenchPipe;

/*
 * The classic libevent bench state, shared by every contender (only one runs at a time).
 * A round: A bytes are written into A pipes spread over N, then each callback reads what
 * its pipe holds and writes as many bytes into the next pipe, until W bytes went in; the
 * round ends when all W are read.
 */
typedef struct BenchPipes {
        BenchPipe *pipes;
        unsigned n;
        unsigned active;
        uint64_t target; /* W: bytes written (and read) per round */
        uint64_t writes;
        uint64_t reads;
        uint64_t callbacks;
        uint64_t empty;    /* callbacks that found no byte (EAGAIN): spurious wakeups */
        uint64_t failures; /* read/write errors other than EAGAIN, short writes */
} BenchPipes;

extern BenchPipes bench_pipes;

/** bench_pipes_readable() - the work of one read callback, identical in every contender:
 * read what pipe @idx holds (the buffer is larger than anything a round can queue, so one
 * read drains the pipe, which edge-triggered contenders need), write as many bytes into
 * the next pipe while the round is short of W.
 * Return: true once the round is complete (all W bytes read). */
static inline bool bench_pipes_readable(unsigned idx) {
        BenchPipes *p = &bench_pipes;
        char buf[64];
        ssize_t n;

        p->callbacks++;
        for (;;) {
                n = read(p->pipes[idx].r, buf, sizeof(buf));
                if (n > 0) {
                        uint64_t m = p->target - p->writes;
                        unsigned next = idx + 1 == p->n ? 0 : idx + 1;

                        p->reads += (uint64_t)n;
                        if (m > (uint64_t)n)
                                m = (uint64_t)n;
                        if (m > 0) {
                                if (write(p->pipes[next].w, buf, m) != (ssize_t)m)
                                        p->failures++;
                                p->writes += m;
                        }
                        if (n < (ssize_t)sizeof(buf))
                                break;
                        continue;
                }
                if (n < 0 && errno == EAGAIN)
                        p->empty++;
                else
                        p->failures++;
                break;
        }
        return p->reads >= p->target;
}

/* An io contender: a loop with N read watchers on bench_pipes, edge or level as it likes. */
typedef struct IoContender {
        const char *name;
        /** version() - the library's run-time version, or NULL. */
        const char *(*version)(void);
        /** setup() - create the loop, watch every pipe's read end, and run one non-blocking
         * iteration so lazy registrations reach the kernel.
         * Return: 0, -EOPNOTSUPP when unavailable here (with *ret_why set), or -errno. */
        int (*setup)(const char **ret_why);
        /** run() - dispatch until bench_pipes_readable() reports the round complete. */
        int (*run)(void);
        /** waits() - loop iterations so far, or -1 if the library hides it. */
        int64_t (*waits)(void);
        /** syscalls() - loop syscalls so far, or NULL if the library hides it. */
        int64_t (*syscalls)(void);
        void (*teardown)(void);
} IoContender;

extern const IoContender contender_engine_uring;
extern const IoContender contender_engine_epoll;
extern const IoContender contender_libev_epoll;
extern const IoContender contender_libev_iouring;
extern const IoContender contender_libuv;
extern const IoContender contender_libevent;
extern const IoContender contender_raw_epoll;
extern const IoContender contender_raw_uring;
extern const IoContender contender_floor;

/* A timer contender; the driver times each call, which does @n operations. */
typedef struct TimerContender {
        const char *name;
        const char *ratio_label; /* the column of its ratio to the baseline ("uring/ev") */
        int (*setup)(size_t n, const char **ret_why);
        /* Insert n one-shot timers, deadline i @after_ns[i] (== @after_s[i]) from now. */
        int (*insert)(size_t n, const uint64_t *after_ns, const double *after_s);
        /* Cancel (and, where the library owns them, free) the n inserted timers. */
        int (*cancel)(size_t n);
        /* Run the loop until all n inserted timers fired; returns how many fired. */
        int64_t (*run)(size_t n);
        /* Release fired timers that the library keeps (not timed). */
        void (*release)(size_t n);
        /* Refresh the loop's cached time (not timed). */
        void (*now_update)(void);
        void (*teardown)(void);
} TimerContender;

extern const TimerContender timer_engine_uring;
extern const TimerContender timer_engine_epoll;
extern const TimerContender timer_engine_pool;
extern const TimerContender timer_libev;

/** bench_engine_facts() - the io_uring engine's feature names, space-separated, into @buf.
 * Return: 0 or -errno (then @buf says why). */
int bench_engine_facts(char *buf, size_t size);

/** bench_prefault() - touch every page of @p so later phases take no page faults on it
 * (a memset() after malloc() may be turned into calloc(), which touches nothing). */
static inline void bench_prefault(void *p, size_t size) {
        for (size_t i = 0; i < size; i += 4096)
                ((volatile char *)p)[i] = 0;
        if (size)
                ((volatile char *)p)[size - 1] = 0;
}

static inline uint64_t bench_now_ns(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t bench_cpu_ns(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
