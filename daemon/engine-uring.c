/* engine-uring.c - the io_uring backend (liburing only)
 *
 * Edge sources are multishot POLL_ADDs, oneshot sources oneshot POLL_ADDs; event changes
 * are poll updates; removal is an ASYNC_CANCEL by user_data. Everything queued during an
 * iteration goes to the kernel with the next wait, in one io_uring_enter, and a wait with a
 * deadline passes it as EXT_ARG: no timerfd and no extra syscall for the loop timeout.
 *
 * Requests are not made when the core asks: io_start/io_update/io_stop only record what
 * the source wants and queue it (once) for the next wait, where sync_source() compares it
 * with what the kernel has and sends the difference: at most one cancel per live poll, one
 * update or one new poll. Any number of changes between two iterations therefore costs
 * the kernel work of one, and never runs out of poll generations.
 *
 * user_data is the source pointer (sources are 64-aligned) plus a 4-bit poll generation and
 * a 2-bit request kind: the poll itself, a cancel of it, or an update of it. Every request
 * holds a reference on its source until its CQE (a poll: its last CQE, the first without
 * IORING_CQE_F_MORE; a cancelled poll ends with -ECANCELED), so a late CQE finds valid
 * memory marked dead and is dropped, and a CQE from a superseded poll is dropped by its
 * generation. Cancels and updates always post their CQE (no IOSQE_CQE_SKIP_SUCCESS: the
 * reference needs it) and every result is checked: a cancel that finds the poll busy
 * (-EALREADY: a wakeup in flight, common with DEFER_TASKRUN, where wakeups run inside
 * io_uring_enter) is sent again at the next wait, because a poll left armed keeps a
 * reference on the file after evd closed its fd; a failed update becomes a cancel plus a
 * new poll. ASYNC_CANCEL rather than POLL_REMOVE: on the kernels we know, POLL_REMOVE gives
 * up with -EALREADY during a wakeup while ASYNC_CANCEL marks the poll and lets it end.
 *
 * A live edge source whose multishot poll ended (the kernel ends multishot polls it cannot
 * post a CQE for when the CQ is full) must be re-armed, and a fresh poll reports the fd's
 * current readiness at once, including data the callback chose to leave unread. Re-arms
 * therefore go through a queue drained at most half a CQ per iteration: the reports they
 * cause fit in the CQ, the multishot polls survive, and a ring that is too small cannot
 * turn into a loop re-reporting the same unread data.
 *
 * Multishot poll (5.13) and IORING_FEAT_NODROP (5.5) are required: without them edge
 * semantics or "no event is lost" cannot be kept, and engine_new() falls back to epoll.
 *
 * The ring starts small and grows with the number of live polls: io_uring rings cannot be
 * resized with liburing 2.3, so growing means a new ring, the old one closed with its
 * requests and every source re-armed on the new (poll re-checks readiness when armed: no
 * event is lost, an edge source may see one spurious wakeup).
 */

#include "engine-internal.h"

#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include "macro.h"

#define GEN_BITS 4
#define GEN_MASK ((1u << GEN_BITS) - 1)
#define GEN_ALL ((1u << (GEN_MASK + 1)) - 1)
#define OP_SHIFT GEN_BITS
#define OP_MASK (3u << OP_SHIFT)
#define UDATA_LOW_MASK (GEN_MASK | OP_MASK)
#define SQ_ENTRIES_DEFAULT 256
#define CQ_ENTRIES_DEFAULT 1024
#define CQ_ENTRIES_MAX 65536
#define REAP_BATCH 256
#define QUEUE_KEEP 1024

/* The request kinds in user_data's bits 4-5. */
enum {
        OP_POLL = 0,
        OP_CANCEL = 1,
        OP_UPDATE = 2,
};

/* user_data values that are never source pointers */
#define UDATA_IGNORE UINT64_C(0)
#define UDATA_PROBE_POLL UINT64_C(2)
#define UDATA_PROBE_UPDATE UINT64_C(3)
#define UDATA_PROBE_REMOVE UINT64_C(4)

_Static_assert(_Alignof(EngineSource) > UDATA_LOW_MASK, "user_data needs the source's low bits");

/* Sources waiting for something; each holds a reference while it is in. */
typedef struct SourceQueue {
        EngineSource **items;
        size_t n, capacity;
} SourceQueue;

typedef struct Uring {
        struct io_uring ring;
        bool ring_ready;
        unsigned setup_flags;
        unsigned sq_entries;
        unsigned cq_entries;
        bool fixed;
        bool overflowed; /* since the last wait: grow before the next */
        unsigned live_polls;
        SourceQueue pending; /* what the kernel must be told at the next wait */
        SourceQueue rearm;   /* multishot polls the kernel ended: see the top of the file */
        /* An empty epoll set: asking it to ADD an fd tells whether the fd can be polled at
         * all (io_uring would report an unpollable file ready forever). */
        int probe_fd;
        unsigned disabled;
} Uring;

static inline Uring *uring_of(Engine *e) {
        return e->backend_data;
}

static unsigned round_pow2(unsigned v) {
        unsigned p = 1;

        while (p < v && p < CQ_ENTRIES_MAX)
                p <<= 1;
        return p;
}

static int queue_push(SourceQueue *q, EngineSource *s) {
        if (q->n == q->capacity) {
                size_t capacity = q->capacity ? q->capacity * 2 : 64;
                EngineSource **items = realloc(q->items, capacity * sizeof(*items));

                if (!items)
                        return -ENOMEM;
                q->items = items;
                q->capacity = capacity;
        }
        engine_source_ref(s);
        q->items[q->n++] = s;
        return 0;
}

/* Drop the first @n entries (their references were dropped by whoever took them). An
 * emptied queue keeps at most QUEUE_KEEP slots: a ring resize queues every live source
 * once, and 20,000 watches would otherwise keep 7 bytes each of a queue that is empty
 * from the next iteration on. */
static void queue_consume(SourceQueue *q, size_t n) {
        if (n == 0)
                return; /* items may be NULL: no memmove(NULL, ...) even for 0 bytes */
        memmove(q->items, q->items + n, (q->n - n) * sizeof(*q->items));
        q->n -= n;
        if (q->n == 0 && q->capacity > QUEUE_KEEP) {
                free(q->items);
                q->items = NULL;
                q->capacity = 0;
        }
}

/* Submit what is queued now (the SQ filled up, or before a ring switch). */
static int uring_flush(Engine *e, Uring *u) {
        unsigned ready = io_uring_sq_ready(&u->ring);
        int r;

        if (ready == 0)
                return 0;
        r = io_uring_submit(&u->ring);
        e->stats.syscalls++;
        if (r < 0)
                return r;
        e->stats.submissions += (unsigned)r;
        return 0;
}

static struct io_uring_sqe *uring_get_sqe(Engine *e, Uring *u) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

        if (_unlikely_(!sqe)) {
                e->stats.sq_full++;
                if (uring_flush(e, u) < 0)
                        return NULL;
                sqe = io_uring_get_sqe(&u->ring);
        }
        return sqe;
}

static inline uint64_t request_udata(EngineSource *s, unsigned gen, unsigned op) {
        return (uint64_t)(uintptr_t)s | gen | op << OP_SHIFT;
}

static inline uint64_t poll_udata(EngineSource *s, unsigned gen) {
        return request_udata(s, gen, OP_POLL);
}

/* The kernel reports PRI (urgent data) only to a poll that also asks for RDBAND. */
static uint16_t kernel_mask(EngineSource *s) {
        return (uint16_t)(s->io.events | ((s->io.events & ENGINE_PRI) ? POLLRDBAND : 0));
}

/* Queue @s for sync_source() at the next wait. */
static int sync_request(Uring *u, EngineSource *s) {
        int r;

        if (s->io.sync_queued)
                return 0;
        r = queue_push(&u->pending, s);
        if (r < 0)
                return r;
        s->io.sync_queued = true;
        return 0;
}

static bool current_poll_live(EngineSource *s) {
        return !s->io.superseded && (s->io.poll_mask & (1u << s->io.poll_gen));
}

/* A control request (cancel, update) of generation @gen's poll; NULL when none can be had
 * now (the SQ cannot be flushed, or 255 are in flight). */
static struct io_uring_sqe *ctl_sqe(Engine *e, Uring *u, EngineSource *s, unsigned gen, unsigned op) {
        struct io_uring_sqe *sqe;

        if (s->io.ctl_inflight == UINT8_MAX || !(sqe = uring_get_sqe(e, u)))
                return NULL;
        io_uring_sqe_set_data64(sqe, request_udata(s, gen, op));
        s->io.ctl_inflight++;
        engine_source_ref(s);
        return sqe;
}

/* Cancel every live poll of @s except the current one when @keep_current. Return: false if
 * some cancel could not be queued (try again at the next wait). */
static bool cancel_polls(Engine *e, Uring *u, EngineSource *s, bool keep_current) {
        unsigned todo = s->io.poll_mask & ~(unsigned)s->io.cancel_mask;

        if (keep_current)
                todo &= ~(1u << s->io.poll_gen);
        for (unsigned gen = 0; todo; gen++, todo >>= 1) {
                struct io_uring_sqe *sqe;

                if (!(todo & 1))
                        continue;
                sqe = ctl_sqe(e, u, s, gen, OP_CANCEL);
                if (!sqe)
                        return false;
                io_uring_prep_cancel64(sqe, poll_udata(s, gen), 0);
                io_uring_sqe_set_data64(sqe, request_udata(s, gen, OP_CANCEL));
                s->io.cancel_mask |= (uint16_t)(1u << gen);
        }
        return true;
}

/* Change the current poll's mask in place. Return: false if no request could be queued. */
static bool update_poll(Engine *e, Uring *u, EngineSource *s) {
        unsigned gen = s->io.poll_gen;
        struct io_uring_sqe *sqe = ctl_sqe(e, u, s, gen, OP_UPDATE);

        if (!sqe)
                return false;
        /* new_user_data 0: without IORING_POLL_UPDATE_USER_DATA any other value is EINVAL. */
        io_uring_prep_poll_update(sqe, poll_udata(s, gen), 0, kernel_mask(s), IORING_POLL_UPDATE_EVENTS);
        io_uring_sqe_set_data64(sqe, request_udata(s, gen, OP_UPDATE));
        s->io.kernel_events = kernel_mask(s);
        return true;
}

/* A new current poll. Return: false if none could be queued now (every generation is
 * still live or being cancelled, or no SQE). */
static bool start_poll(Engine *e, Uring *u, EngineSource *s) {
        unsigned busy = s->io.poll_mask | s->io.cancel_mask;
        unsigned gen = s->io.poll_gen;
        struct io_uring_sqe *sqe;

        if ((busy & GEN_ALL) == GEN_ALL)
                return false;
        do
                gen = (gen + 1) & GEN_MASK;
        while (busy & (1u << gen));
        sqe = uring_get_sqe(e, u);
        if (!sqe)
                return false;
        if (s->io.mode == ENGINE_EDGE)
                io_uring_prep_poll_multishot(sqe, s->io.fd, kernel_mask(s));
        else
                io_uring_prep_poll_add(sqe, s->io.fd, kernel_mask(s));
        io_uring_sqe_set_data64(sqe, poll_udata(s, gen));
        s->io.poll_gen = (uint8_t)gen;
        s->io.poll_mask |= (uint16_t)(1u << gen);
        s->io.superseded = false;
        s->io.kernel_armed = s->io.mode == ENGINE_EDGE; /* the live poll's mode */
        s->io.kernel_events = kernel_mask(s);
        u->live_polls++;
        engine_source_ref(s);
        return true;
}

/* Make the kernel's requests for @s match what it wants. Return: false if part of it must
 * wait for the next iteration. */
static bool sync_source(Engine *e, Uring *u, EngineSource *s) {
        bool want = !s->dead && s->enabled;
        bool keep = want && current_poll_live(s);

        if (keep && s->io.kernel_events != kernel_mask(s) && !update_poll(e, u, s))
                keep = false;
        if (!keep)
                s->io.superseded = true;
        if (!cancel_polls(e, u, s, keep))
                return false;
        return keep || !want || start_poll(e, u, s);
}

/* Everything queued since the last wait. What cannot be done now is queued again: the
 * caller then polls instead of sleeping. */
static void sync_pending(Engine *e, Uring *u) {
        size_t n = u->pending.n;

        for (size_t i = 0; i < n; i++) {
                EngineSource *s = u->pending.items[i];

                s->io.sync_queued = false;
                if (!sync_source(e, u, s) && sync_request(u, s) < 0)
                        s->io.superseded = true; /* no memory: what is armed stays, quietly */
                engine_source_unref(s);
        }
        queue_consume(&u->pending, n);
}

/* Sync @s now when it cannot wait in the queue (no memory for it). */
static int sync_soon(Engine *e, Uring *u, EngineSource *s) {
        if (sync_request(u, s) == 0)
                return 0;
        return sync_source(e, u, s) ? 0 : -ENOMEM;
}

static int uring_io_start(Engine *e, EngineSource *s) {
        Uring *u = uring_of(e);
        bool was_superseded = s->io.superseded;
        int r;

        /* Whatever poll is still live was made for an earlier state. */
        s->io.superseded = true;
        r = sync_soon(e, u, s);
        if (r < 0)
                s->io.superseded = was_superseded;
        return r;
}

static int uring_io_update(Engine *e, EngineSource *s) {
        /* The kernel updates a poll's event mask, not its oneshot/multishot mode. */
        if (s->io.kernel_armed != (s->io.mode == ENGINE_EDGE) || !(e->features & ENGINE_FEATURE_POLL_UPDATE))
                return uring_io_start(e, s);
        return sync_soon(e, uring_of(e), s);
}

static void uring_io_stop(Engine *e, EngineSource *s) {
        Uring *u = uring_of(e);

        s->io.superseded = true;
        /* No memory and no SQE: the poll stays until its next CQE, which is dropped (dead or
         * disabled); the source is queued again from there. */
        (void)sync_soon(e, u, s);
}

static void rearm_queue(Engine *e, Uring *u, EngineSource *s) {
        if (s->io.rearm_queued)
                return;
        if (queue_push(&u->rearm, s) < 0) {
                /* No memory to defer it: re-arm now, as the kernel allows. */
                (void)sync_source(e, u, s);
                return;
        }
        s->io.rearm_queued = true;
}

/* Re-arm queued sources, at most half a CQ's worth: see the top of the file. */
static void rearm_run(Engine *e, Uring *u) {
        size_t budget = MIN(u->rearm.n, (size_t)MAX(u->cq_entries / 2, 1u));

        for (size_t i = 0; i < budget; i++) {
                EngineSource *s = u->rearm.items[i];

                s->io.rearm_queued = false;
                if (!s->dead && s->enabled && !s->io.superseded && !current_poll_live(s) &&
                    !sync_source(e, u, s))
                        (void)sync_request(u, s);
                engine_source_unref(s);
        }
        queue_consume(&u->rearm, budget);
}

static int uring_io_validate(Engine *e, int fd) {
        Uring *u = uring_of(e);
        struct epoll_event ev = { .events = 0 };
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
                return 0;
        /* Regular files, directories, /dev/null and the like have no poll support: epoll
         * says EPERM, io_uring would call them ready forever. Ask epoll. */
        if (epoll_ctl(u->probe_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        (void)epoll_ctl(u->probe_fd, EPOLL_CTL_DEL, fd, NULL);
        return 0;
}

/* A poll's CQE. */
static void handle_poll_cqe(Engine *e, Uring *u, EngineSource *s, unsigned gen, int res, unsigned flags) {
        bool last = !(flags & IORING_CQE_F_MORE);
        bool current = gen == s->io.poll_gen && !s->io.superseded;

        if (last) {
                s->io.poll_mask &= (uint16_t)~(1u << gen);
                u->live_polls--;
        }
        if (current) {
                if (res > 0)
                        engine_io_event(e, s, (uint32_t)res);
                else if (res < 0 && res != -ECANCELED && !s->dead && s->enabled) {
                        /* The kernel refused the poll (ENOMEM, ...): report it once and
                         * disarm, rather than re-arm into the same failure forever. */
                        engine_io_event(e, s, ENGINE_ERR | ENGINE_NVAL);
                        if (!s->dead && s->enabled)
                                (void)source_set_enabled(s, false);
                }
                /* Still wanted, and nothing newer was asked for from the callback. */
                if (last && !s->dead && s->enabled && !s->io.superseded && !current_poll_live(s))
                        rearm_queue(e, u, s);
        }
        if (last)
                engine_source_unref(s);
}

/* A cancel's or an update's CQE: check what the kernel did. */
static void handle_ctl_cqe(Engine *e, Uring *u, EngineSource *s, unsigned gen, unsigned op, int res) {
        s->io.ctl_inflight--;
        if (op == OP_CANCEL) {
                s->io.cancel_mask &= (uint16_t)~(1u << gen);
                /* -ENOENT: the poll had ended already; its last CQE is or was in the CQ.
                 * Anything else (-EALREADY) leaves it live: cancel it again. */
                if (res < 0 && res != -ENOENT && (s->io.poll_mask & (1u << gen))) {
                        e->stats.cancel_retries++;
                        if (sync_request(u, s) < 0)
                                (void)cancel_polls(e, u, s, !s->io.superseded);
                }
        } else if (res == 0) {
                e->stats.poll_updates++;
        } else if (res != -ENOENT && gen == s->io.poll_gen && !s->io.superseded) {
                /* The poll kept its old mask (-EALREADY: mid-wakeup): replace it. -ENOENT:
                 * it had ended, and its last CQE re-arms it with the new mask. */
                s->io.superseded = true;
                if (sync_request(u, s) < 0)
                        (void)sync_source(e, u, s);
        }
        engine_source_unref(s);
}

static void handle_cqe(Engine *e, Uring *u, uint64_t ud, int res, unsigned flags) {
        EngineSource *s = (EngineSource *)(uintptr_t)(ud & ~(uint64_t)UDATA_LOW_MASK);
        unsigned gen = (unsigned)(ud & GEN_MASK);
        unsigned op = (unsigned)((ud & OP_MASK) >> OP_SHIFT);

        if (op == OP_POLL)
                handle_poll_cqe(e, u, s, gen, res, flags);
        else
                handle_ctl_cqe(e, u, s, gen, op, res);
}

/* Completions the kernel holds back: deferred task work past what the last enter ran, or
 * CQEs in its overflow list. */
static bool deferred_pending(const Uring *u) {
        return IO_URING_READ_ONCE(*u->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW);
}

/* Left alone, liburing's peek would flush deferred task work ~20 completions per enter
 * (IO_LOCAL_TW_DEFAULT_MAX; the kernel raises IORING_SQ_TASKRUN while more is queued), so
 * plain GETEVENTS enters take it 20 at a time, up to @budget CQEs. Not one enter asking
 * for a whole CQ's worth with a zero timeout, as this once did: the kernel arms an hrtimer
 * for it, and on this VM that cost a round about 9% in io_cqring_wait; five enters cost
 * less (engine-bench, poller cost: 0.91-1.27x libev-epoll's before, 0.40-0.51x after). */
static void run_deferred_completions(Engine *e, Uring *u, unsigned budget) {
        while (io_uring_cq_ready(&u->ring) < budget && deferred_pending(u)) {
                unsigned before = io_uring_cq_ready(&u->ring);

                e->stats.syscalls++;
                if (io_uring_get_events(&u->ring) < 0 || io_uring_cq_ready(&u->ring) == before)
                        break;
        }
}

typedef struct Completion {
        uint64_t user_data;
        int32_t res;
        uint32_t flags;
} Completion;

/* Take the CQEs now in the ring. Copied out and the ring advanced before any callback
 * runs, so callbacks that submit find the CQ with room. Deferred completions (task work
 * beyond the ~20 an enter runs) and the kernel's overflow list are fetched once, not again
 * for what our own callbacks make ready meanwhile: that waits for the next iteration, or
 * one iteration could last as long as clients stay busy, with stale time and timers and
 * output held back. At most @budget CQEs for the same reason; what is left stays in the
 * CQ and the next wait returns at once for it. */
static void reap(Engine *e, Uring *u, unsigned budget) {
        Completion done[REAP_BATCH];
        bool fetched = false;

        while (budget > 0) {
                struct io_uring_cqe *cqe;
                unsigned head, n = 0;

                if (io_uring_cq_has_overflow(&u->ring) && !u->overflowed) {
                        e->stats.overflows++;
                        u->overflowed = true;
                }
                if (io_uring_cq_ready(&u->ring) == 0) {
                        if (fetched || !deferred_pending(u))
                                break;
                        run_deferred_completions(e, u, budget);
                        fetched = true;
                        continue;
                }
                io_uring_for_each_cqe(&u->ring, head, cqe) {
                        done[n++] = (Completion){ cqe->user_data, cqe->res, cqe->flags };
                        if (n == MIN(budget, (unsigned)REAP_BATCH))
                                break;
                }
                io_uring_cq_advance(&u->ring, n);
                budget -= n;
                for (unsigned i = 0; i < n; i++) {
                        uint64_t ud = done[i].user_data;

                        if (ud <= UDATA_PROBE_REMOVE || ud == LIBURING_UDATA_TIMEOUT)
                                continue;
                        handle_cqe(e, u, ud, done[i].res, done[i].flags);
                }
        }
}

/* One iteration's CQEs: about one per live poll, not a whole CQ's worth. A busy fd's poll
 * posts a CQE per wakeup whose task work has run; taking them as fast as they come, up to
 * the CQ's size (65,536 once overflows had grown it), ran 23,000 CQEs an iteration for
 * 2,048 watches under a writer that never stops (evd-bench scenario 10): 11 wakeups
 * merged into each notification, 75% of the daemon in the kernel's task work, and an 8th
 * of epoll's rate. Left in the kernel until the next iteration, the wakeups of one poll
 * merge into one CQE there, which is almost free (the waker only bumps the poll's refs). */
static unsigned reap_budget(const Uring *u) {
        return MIN(u->cq_entries, MAX(u->live_polls, (unsigned)REAP_BATCH));
}

static int ring_setup(Engine *e, Uring *u, struct io_uring *ring, unsigned sq, unsigned cq) {
        /* TASKRUN_FLAG with DEFER_TASKRUN: the kernel runs at most ~20 deferred completions
         * per io_uring_enter and raises IORING_SQ_TASKRUN while more are queued; the flag
         * tells reap() to take the rest in one more enter within the same iteration. */
        static const unsigned bases[] = {
                IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
                IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
                0,
        };
        int r = -EINVAL;

        for (size_t i = 0; i < ELEMENTSOF(bases); i++) {
                unsigned base = bases[i];

                if (((base & IORING_SETUP_DEFER_TASKRUN) &&
                     (u->disabled & (ENGINE_FEATURE_DEFER_TASKRUN | ENGINE_FEATURE_SINGLE_ISSUER))) ||
                    ((base & IORING_SETUP_COOP_TASKRUN) && (u->disabled & ENGINE_FEATURE_COOP_TASKRUN)) ||
                    ((base & IORING_SETUP_TASKRUN_FLAG) && (u->disabled & ENGINE_FEATURE_TASKRUN_FLAG)))
                        continue;
                for (int submit_all = 1; submit_all >= 0; submit_all--) {
                        struct io_uring_params p = {
                                .flags = base | IORING_SETUP_CQSIZE,
                                .cq_entries = cq,
                        };

                        if (submit_all) {
                                if (u->disabled & ENGINE_FEATURE_SUBMIT_ALL)
                                        continue;
                                p.flags |= IORING_SETUP_SUBMIT_ALL;
                        }
                        r = io_uring_queue_init_params(sq, ring, &p);
                        if (r == 0) {
                                u->setup_flags = p.flags;
                                u->sq_entries = p.sq_entries;
                                u->cq_entries = p.cq_entries;
                                return 0;
                        }
                        if (r != -EINVAL)
                                return r; /* ENOSYS, EPERM, ENOMEM: no flag change helps */
                }
        }
        return r;
}

/* Tests switch features off to exercise fallbacks; liburing reads the ring's feature bits
 * to decide, for one, whether a wait timeout goes in EXT_ARG or in a timeout SQE. */
static void ring_apply_disabled(Uring *u) {
        if (u->disabled & ENGINE_FEATURE_EXT_ARG)
                u->ring.features &= ~(unsigned)IORING_FEAT_EXT_ARG;
        if (u->disabled & ENGINE_FEATURE_NODROP)
                u->ring.features &= ~(unsigned)IORING_FEAT_NODROP;
}

static void features_from_ring(Engine *e, Uring *u) {
        unsigned f = e->features & ENGINE_FEATURE_POLL_MULTISHOT;

        f |= e->features & ENGINE_FEATURE_POLL_UPDATE;
        if (u->setup_flags & IORING_SETUP_SINGLE_ISSUER)
                f |= ENGINE_FEATURE_SINGLE_ISSUER;
        if (u->setup_flags & IORING_SETUP_DEFER_TASKRUN)
                f |= ENGINE_FEATURE_DEFER_TASKRUN;
        if (u->setup_flags & IORING_SETUP_COOP_TASKRUN)
                f |= ENGINE_FEATURE_COOP_TASKRUN;
        if (u->setup_flags & IORING_SETUP_TASKRUN_FLAG)
                f |= ENGINE_FEATURE_TASKRUN_FLAG;
        if (u->setup_flags & IORING_SETUP_SUBMIT_ALL)
                f |= ENGINE_FEATURE_SUBMIT_ALL;
        if (u->ring.features & IORING_FEAT_EXT_ARG)
                f |= ENGINE_FEATURE_EXT_ARG;
        if (u->ring.features & IORING_FEAT_NODROP)
                f |= ENGINE_FEATURE_NODROP;
        if ((u->ring.features & IORING_FEAT_CQE_SKIP) && !(u->disabled & ENGINE_FEATURE_CQE_SKIP))
                f |= ENGINE_FEATURE_CQE_SKIP;
        e->features = f;
}

static void ring_register(Engine *e, Uring *u) {
        /* Saves the fd lookup on every io_uring_enter. */
        if (!(u->disabled & ENGINE_FEATURE_REGISTERED_RING) && io_uring_register_ring_fd(&u->ring) == 1)
                e->features |= ENGINE_FEATURE_REGISTERED_RING;
        else
                e->features &= ~(unsigned)ENGINE_FEATURE_REGISTERED_RING;
}

/* Multishot poll and poll update arrived together (5.13); try them on the probe epoll fd,
 * which is never ready. */
static void probe_poll_ops(Engine *e, Uring *u) {
        struct io_uring_sqe *sqe;
        struct io_uring_cqe *cqe;
        int poll_res = 0, update_res = -EINVAL;

        if (!(sqe = uring_get_sqe(e, u)))
                return;
        io_uring_prep_poll_multishot(sqe, u->probe_fd, POLLIN);
        io_uring_sqe_set_data64(sqe, UDATA_PROBE_POLL);
        if (!(sqe = uring_get_sqe(e, u)))
                return;
        io_uring_prep_poll_update(sqe, UDATA_PROBE_POLL, 0, POLLIN | POLLOUT, IORING_POLL_UPDATE_EVENTS);
        io_uring_sqe_set_data64(sqe, UDATA_PROBE_UPDATE);
        if (!(sqe = uring_get_sqe(e, u)))
                return;
        io_uring_prep_poll_remove(sqe, UDATA_PROBE_POLL);
        io_uring_sqe_set_data64(sqe, UDATA_PROBE_REMOVE);
        if (io_uring_submit_and_wait(&u->ring, 3) < 0)
                return;
        /* Three CQEs: the poll (cancelled, or refused), the update, the remove. */
        for (int seen = 0; seen < 3 && io_uring_peek_cqe(&u->ring, &cqe) == 0; seen++) {
                if (cqe->user_data == UDATA_PROBE_POLL)
                        poll_res = cqe->res;
                else if (cqe->user_data == UDATA_PROBE_UPDATE)
                        update_res = cqe->res;
                io_uring_cqe_seen(&u->ring, cqe);
        }
        if (poll_res == -ECANCELED || poll_res >= 0) {
                if (!(u->disabled & ENGINE_FEATURE_POLL_MULTISHOT))
                        e->features |= ENGINE_FEATURE_POLL_MULTISHOT;
                if (update_res == 0 && !(u->disabled & ENGINE_FEATURE_POLL_UPDATE))
                        e->features |= ENGINE_FEATURE_POLL_UPDATE;
        }
}

static int uring_init(Engine *e, const EngineOptions *opts) {
        _cleanup_free_ Uring *u = calloc(1, sizeof(*u));
        int r;

        if (!u)
                return -ENOMEM;
        u->disabled = opts->disable_features;
        u->fixed = opts->fixed_ring;
        u->probe_fd = epoll_create1(EPOLL_CLOEXEC);
        if (u->probe_fd < 0)
                return -errno;
        r = ring_setup(e, u, &u->ring, opts->sq_entries ? opts->sq_entries : SQ_ENTRIES_DEFAULT,
                       opts->cq_entries ? opts->cq_entries : CQ_ENTRIES_DEFAULT);
        if (r < 0) {
                (void)safe_close(u->probe_fd);
                return r;
        }
        u->ring_ready = true;
        ring_apply_disabled(u);
        probe_poll_ops(e, u);
        features_from_ring(e, u);
        if (!(e->features & ENGINE_FEATURE_POLL_MULTISHOT) || !(e->features & ENGINE_FEATURE_NODROP)) {
                /* See the top of the file: the epoll backend keeps the contract instead. */
                io_uring_queue_exit(&u->ring);
                (void)safe_close(u->probe_fd);
                e->features = 0;
                return -EOPNOTSUPP;
        }
        ring_register(e, u);
        e->stats.sq_entries = u->sq_entries;
        e->stats.cq_entries = u->cq_entries;
        e->backend_data = TAKE_PTR(u);
        return 0;
}

static void forget_polls(Engine *e, EngineSource *s, void *data) {
        Uring *u = data;
        unsigned polls = (unsigned)__builtin_popcount(s->io.poll_mask);
        unsigned n = polls + s->io.ctl_inflight;

        s->io.poll_mask = 0;
        s->io.cancel_mask = 0;
        s->io.ctl_inflight = 0;
        u->live_polls -= polls;
        while (n-- > 0)
                engine_source_unref(s); /* may release @s: nothing touches it after */
}

/* A ring about to be closed takes its requests with it (the kernel cancels them when the
 * ring goes, and with them their file references); their CQEs are never seen, so the
 * references the requests held are dropped here instead. No waiting for cancellations:
 * whatever the polls would have reported, a fresh poll finds again. */
static void ring_abandon(Engine *e, Uring *u) {
        engine_for_each_allocated_io(e, forget_polls, u);
        u->live_polls = 0;
}

static void rearm_on_new_ring(Engine *e, EngineSource *s, void *data) {
        if (s->enabled)
                (void)sync_soon(e, data, s);
}

/* See the top of the file: a bigger ring means a new ring. On any failure, keep the old
 * one and stop trying (events still flow, through the overflow list if need be). */
/* Grow to fit the @polls expected, in one step: every resize re-arms every poll, so 10,000
 * new sources (a restore, a bulk registration) must not cost one resize per doubling. One
 * CQE per poll is enough room (all of them firing in one iteration; re-arms are drained
 * at most half a CQ at a time, and what does not fit waits in the overflow list, which
 * grows the ring next time): twice that cost 16 bytes of mapped CQ per idle watch. */
static void ring_grow(Engine *e, Uring *u, size_t polls) {
        struct io_uring bigger;
        unsigned cq = round_pow2(MAX(polls, (size_t)u->cq_entries * 2));

        unsigned old_cq = u->cq_entries;

        if (ring_setup(e, u, &bigger, u->sq_entries, cq) < 0) {
                u->cq_entries = old_cq;
                u->fixed = true;
                return;
        }
        ring_abandon(e, u);
        io_uring_queue_exit(&u->ring);
        u->ring = bigger;
        ring_apply_disabled(u);
        ring_register(e, u);
        e->stats.ring_resizes++;
        e->stats.cq_entries = u->cq_entries;
        engine_for_each_io(e, rearm_on_new_ring, u);
}

static void uring_done(Engine *e) {
        Uring *u = uring_of(e);

        if (!u)
                return;
        for (size_t i = 0; i < u->rearm.n; i++) {
                u->rearm.items[i]->io.rearm_queued = false;
                engine_source_unref(u->rearm.items[i]);
        }
        free(u->rearm.items);
        for (size_t i = 0; i < u->pending.n; i++) {
                u->pending.items[i]->io.sync_queued = false;
                engine_source_unref(u->pending.items[i]);
        }
        free(u->pending.items);
        if (u->ring_ready) {
                ring_abandon(e, u);
                io_uring_queue_exit(&u->ring);
        }
        (void)safe_close(u->probe_fd);
        free(u);
        e->backend_data = NULL;
}

static int uring_wait(Engine *e, int64_t timeout_ns) {
        Uring *u = uring_of(e);
        struct io_uring_cqe *cqe;
        unsigned queued;
        int r;

        /* Pending sources may each start a poll: grow for them before they do. */
        if (!u->fixed && u->cq_entries < CQ_ENTRIES_MAX &&
            (u->overflowed || u->live_polls + u->pending.n > u->cq_entries))
                ring_grow(e, u, u->live_polls + u->pending.n);
        u->overflowed = false;
        if (u->rearm.n > 0) {
                /* Not while the kernel still holds overflowed CQEs: the fresh polls' reports
                 * would overflow and end them again. */
                if (!io_uring_cq_has_overflow(&u->ring))
                        rearm_run(e, u);
                if (u->rearm.n > 0)
                        timeout_ns = 0; /* more to re-arm next iteration: do not sleep on them */
        }
        sync_pending(e, u);
        if (u->pending.n > 0)
                timeout_ns = 0; /* waiting for a generation or an SQE: try again at once */

        queued = io_uring_sq_ready(&u->ring);
        if (timeout_ns == 0)
                r = io_uring_submit_and_get_events(&u->ring);
        else if (timeout_ns < 0)
                r = io_uring_submit_and_wait(&u->ring, 1);
        else {
                struct __kernel_timespec ts = {
                        .tv_sec = timeout_ns / (int64_t)NSEC_PER_SEC,
                        .tv_nsec = timeout_ns % (int64_t)NSEC_PER_SEC,
                };
                r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
        }
        e->stats.syscalls++;
        engine_update_now(e);
        if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY)
                return r;
        e->stats.submissions += queued - io_uring_sq_ready(&u->ring);
        reap(e, u, reap_budget(u));
        return 0;
}

const EngineBackendOps engine_backend_uring = {
        .name = "io_uring",
        .init = uring_init,
        .done = uring_done,
        .io_validate = uring_io_validate,
        .io_start = uring_io_start,
        .io_update = uring_io_update,
        .io_stop = uring_io_stop,
        .wait = uring_wait,
};
