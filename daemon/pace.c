/* pace.c - GCRA pacing: see pace.h. tat advances by one emission interval per admitted or
 * reserved event; an event conforms while tat is at most one burst ahead of now. */

#include "pace.h"

#include "engine.h"
#include "macro.h"

/* Burst tolerance: a tenth of a second of the rate may come at once. */
#define PACE_BURST_NS (NSEC_PER_SEC / 10)

bool pace_admit(Pace *p, uint64_t rate, uint64_t now, uint64_t *ret_slot) {
        uint64_t interval, tat;

        if (rate == 0)
                return true;
        interval = MAX(NSEC_PER_SEC / rate, UINT64_C(1));
        tat = MAX(p->tat, now);
        p->tat = tat + interval;
        if (tat <= now + PACE_BURST_NS)
                return true;
        *ret_slot = tat - PACE_BURST_NS;
        return false;
}
