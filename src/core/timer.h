/*
 * A hierarchical timer wheel with intrusive timers (Varghese and Lauck,
 * 1987; the cascading layout of classic BSD/Linux).
 *
 * Ownership: a timer is embedded in the object it serves and is armed at
 * most once. The owner must cancel it before freeing the object, and
 * calls tern_timer_retire just before the free: that asserts the timer is
 * no longer armed, naming the object, and poisons it, so that arming it
 * again through a stale pointer is caught too. An armed timer also counts
 * in the stack's live timer count (a leak when the stack is destroyed).
 *
 * Resolution is one tick (TERN_TIMER_TICK_NS); a timer never fires early,
 * and fires at most one tick late. Five levels of 64 slots cover about
 * 12 days; later deadlines are clamped to the last level and re-cascaded.
 */
#ifndef TERN_CORE_TIMER_H
#define TERN_CORE_TIMER_H

#include <stdint.h>
#include <stdbool.h>

#include "core/list.h"

struct tern_stack;
struct tern_timer;

typedef void (*tern_timer_fn)(struct tern_stack *s, struct tern_timer *t);

#define TERN_TIMER_TICK_NS 1000000ull /* 1 ms */
#define TERN_TIMER_LEVELS 5
#define TERN_TIMER_SLOTS 64

struct tern_timer {
    struct tern_list node;
    uint64_t expires_tick;
    tern_timer_fn fn;
    const char *name; /* for dumps: a string literal */
    uint32_t magic;
    uint16_t slot; /* while armed: level * TERN_TIMER_SLOTS + slot of its list */
    bool armed;
};

struct tern_timer_wheel {
    uint64_t now_tick;
    uint64_t armed;
    uint64_t occupied[TERN_TIMER_LEVELS]; /* bit per non-empty slot */
    /* The earliest expiry in each non-empty slot, so that the next
     * deadline costs no walk of a slot that holds thousands (a run of
     * TIME_WAITs). When the earliest timer leaves, the figure is only a
     * lower bound: the slot's stale bit says so, and the next question
     * walks that slot once. */
    uint64_t stale[TERN_TIMER_LEVELS];
    uint64_t slot_min[TERN_TIMER_LEVELS][TERN_TIMER_SLOTS];
    struct tern_list slots[TERN_TIMER_LEVELS][TERN_TIMER_SLOTS];
};

void tern_wheel_init(struct tern_timer_wheel *w, uint64_t now_ns);
/* Prepare a timer embedded in an object; it starts disarmed. */
void tern_timer_init(struct tern_timer *t, tern_timer_fn fn, const char *name);
/* Arm (or re-arm) t to fire at or just after absolute time expires_ns. */
void tern_timer_arm(struct tern_stack *s, struct tern_timer *t, uint64_t expires_ns);
void tern_timer_cancel(struct tern_stack *s, struct tern_timer *t);
/* The object holding t is about to be freed: abort, naming the object
 * (printf-style), if t is still armed or corrupt; then poison it. */
__attribute__((format(printf, 3, 4)))
void tern_timer_retire(struct tern_stack *s, struct tern_timer *t, const char *owner_fmt, ...);
static inline bool tern_timer_armed(const struct tern_timer *t) { return t->armed; }
/* Fire every timer due at or before now_ns, in deadline order by tick. */
void tern_wheel_advance(struct tern_stack *s, uint64_t now_ns);
/* Earliest deadline in ns (a tick boundary), or UINT64_MAX when none. */
uint64_t tern_wheel_next_deadline(struct tern_timer_wheel *w);
/* Call fn for each armed timer (for dumps). */
void tern_wheel_for_each(const struct tern_timer_wheel *w,
                         void (*fn)(const struct tern_timer *t, void *arg), void *arg);

#endif
