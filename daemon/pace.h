#pragma once
/* pace.h - one user's timer expirations paced to a rate (GCRA, the virtual-scheduling form) */

#include <stdbool.h>
#include <stdint.h>

/*
 * A Pace admits at most `rate` events per second on average, with bursts of up to a tenth
 * of a second's worth. An event that comes too early is not dropped: it is given the next
 * free slot (each slot one emission interval after the previous one), and the caller holds
 * it until then. Slots are handed out one by one, so N held events fire N intervals apart
 * instead of all at once at the next refill: each held event costs one reschedule and one
 * firing, whatever the backlog.
 */
typedef struct Pace {
        uint64_t tat; /* theoretical arrival time of the next event, CLOCK_MONOTONIC ns */
} Pace;

/** pace_admit() - an event at @now (ns) under @rate (events/s; 0: unlimited). Return: true
 * if it may go now; false if it must wait: *@ret_slot is the time reserved for it, when it
 * goes without asking again. */
bool pace_admit(Pace *p, uint64_t rate, uint64_t now, uint64_t *ret_slot);
