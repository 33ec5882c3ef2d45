#include "core/timer.h"

#include <stdarg.h>
#include <stdio.h>

#include "core/assert.h"
#include "core/stack.h"
#include "obs/probe.h"

#define TIMER_MAGIC 0x7117e12u
#define TIMER_MAGIC_RETIRED 0x7117dea0u
#define SLOT_BITS 6
#define SLOT_MASK (TERN_TIMER_SLOTS - 1)
#define LEVEL_SHIFT(l) ((l)*SLOT_BITS)
#define MAX_DELTA ((1ull << (SLOT_BITS * TERN_TIMER_LEVELS)) - 1)

void tern_wheel_init(struct tern_timer_wheel *w, uint64_t now_ns)
{
    w->now_tick = now_ns / TERN_TIMER_TICK_NS;
    w->armed = 0;
    for (int l = 0; l < TERN_TIMER_LEVELS; l++) {
        w->occupied[l] = 0;
        w->stale[l] = 0;
        for (int i = 0; i < TERN_TIMER_SLOTS; i++)
            tern_list_init(&w->slots[l][i]);
    }
}

void tern_timer_init(struct tern_timer *t, tern_timer_fn fn, const char *name)
{
    tern_list_init(&t->node);
    t->expires_tick = 0;
    t->fn = fn;
    t->name = name;
    t->magic = TIMER_MAGIC;
    t->slot = 0;
    t->armed = false;
}

/* Put t into the slot its distance from now selects: level l holds
 * timers due within 64^(l+1) ticks, indexed by the bits of its deadline at
 * that level, so that a slot is cascaded down exactly when the wheel
 * reaches the start of its range. */
static void wheel_place(struct tern_timer_wheel *w, struct tern_timer *t, uint64_t earliest)
{
    uint64_t when = t->expires_tick;
    if (when < earliest)
        when = earliest;
    if (when - w->now_tick > MAX_DELTA)
        when = w->now_tick + MAX_DELTA;
    uint64_t delta = when - w->now_tick;
    int level = 0;
    while (level < TERN_TIMER_LEVELS - 1 &&
           delta >= (1ull << (SLOT_BITS * (level + 1))))
        level++;
    unsigned slot = (unsigned)(when >> LEVEL_SHIFT(level)) & SLOT_MASK;
    uint64_t bit = 1ull << slot;
    if (!(w->occupied[level] & bit)) {
        w->slot_min[level][slot] = t->expires_tick;
        w->stale[level] &= ~bit;
    } else if (t->expires_tick < w->slot_min[level][slot]) {
        w->slot_min[level][slot] = t->expires_tick;
    }
    tern_list_push_back(&w->slots[level][slot], &t->node);
    t->slot = (uint16_t)(level * TERN_TIMER_SLOTS + slot);
    w->occupied[level] |= bit;
}

static void timer_unlink(struct tern_timer_wheel *w, struct tern_timer *t)
{
    /* The timer records its slot, so leaving it costs the same however
     * many timers share it (a run of connections puts thousands of
     * TIME_WAIT timers in one slot). */
    unsigned level = t->slot / TERN_TIMER_SLOTS, slot = t->slot % TERN_TIMER_SLOTS;
    tern_list_remove(&t->node);
    if (tern_list_empty(&w->slots[level][slot]))
        w->occupied[level] &= ~(1ull << slot);
    else if (t->expires_tick == w->slot_min[level][slot])
        w->stale[level] |= 1ull << slot; /* the earliest may have left */
}

void tern_timer_arm(struct tern_stack *s, struct tern_timer *t, uint64_t expires_ns)
{
    struct tern_timer_wheel *w = &s->wheel;
    TERN_ASSERT(s, t->magic == TIMER_MAGIC, "arming a timer that was never initialised "
                "or whose object was freed (magic %#x)", t->magic);
    if (t->armed)
        timer_unlink(w, t);
    else
        w->armed++;
    t->armed = true;
    /* Round up: a timer never fires before its deadline. */
    t->expires_tick = expires_ns / TERN_TIMER_TICK_NS +
                      (expires_ns % TERN_TIMER_TICK_NS != 0);
    /* The current tick has run already: the earliest is the next. */
    wheel_place(w, t, w->now_tick + 1);
}

void tern_timer_cancel(struct tern_stack *s, struct tern_timer *t)
{
    TERN_ASSERT(s, t->magic == TIMER_MAGIC, "cancelling timer with bad magic %#x", t->magic);
    if (!t->armed)
        return;
    timer_unlink(&s->wheel, t);
    t->armed = false;
    s->wheel.armed--;
}

void tern_timer_retire(struct tern_stack *s, struct tern_timer *t, const char *owner_fmt, ...)
{
    if (t->magic != TIMER_MAGIC || t->armed) {
        char owner[128];
        va_list ap;
        va_start(ap, owner_fmt);
        vsnprintf(owner, sizeof(owner), owner_fmt, ap);
        va_end(ap);
        TERN_ASSERT(s, t->magic == TIMER_MAGIC, "%s: its timer is corrupt or was retired "
                    "before (magic %#x)", owner, t->magic);
        TERN_ASSERT(s, !t->armed, "%s freed with its %s timer armed (due in %lld ticks): "
                    "the timer would fire on freed memory", owner, t->name ? t->name : "?",
                    (long long)t->expires_tick - (long long)s->wheel.now_tick);
    }
    t->magic = TIMER_MAGIC_RETIRED;
}

/* Move every timer of a higher-level slot to where it belongs now. This
 * runs before the tick's own level-0 slot, so a timer due this very tick
 * may land in it. */
static void cascade(struct tern_timer_wheel *w, int level, unsigned slot)
{
    struct tern_list moving;
    tern_list_splice_init(&moving, &w->slots[level][slot]);
    w->occupied[level] &= ~(1ull << slot);
    struct tern_list *n;
    while ((n = tern_list_pop_front(&moving)) != NULL)
        wheel_place(w, tern_container_of(n, struct tern_timer, node), w->now_tick);
}

/* The non-empty slot of level l whose range starts first after now, and
 * that start tick (when the slot fires or cascades); -1 if level l is empty. */
static int earliest_slot(const struct tern_timer_wheel *w, int l, uint64_t *start)
{
    unsigned shift = LEVEL_SHIFT(l);
    uint64_t base = w->now_tick >> shift;
    uint64_t best = UINT64_MAX;
    int best_slot = -1;
    for (uint64_t occ = w->occupied[l]; occ != 0; occ &= occ - 1) {
        unsigned slot = (unsigned)__builtin_ctzll(occ);
        uint64_t c = (base & ~(uint64_t)SLOT_MASK) | slot;
        if ((c << shift) <= w->now_tick)
            c += TERN_TIMER_SLOTS;
        if (c < best) {
            best = c;
            best_slot = (int)slot;
        }
    }
    if (best_slot >= 0)
        *start = best << shift;
    return best_slot;
}

/* The earliest tick after now at which the wheel has something to do:
 * fire a level-0 slot or cascade a non-empty higher slot. */
static uint64_t next_event_tick(const struct tern_timer_wheel *w)
{
    uint64_t best = UINT64_MAX;
    for (int l = 0; l < TERN_TIMER_LEVELS; l++) {
        uint64_t start;
        if (earliest_slot(w, l, &start) >= 0 && start < best)
            best = start;
    }
    return best;
}

static void run_tick(struct tern_stack *s, uint64_t tick)
{
    struct tern_timer_wheel *w = &s->wheel;
    w->now_tick = tick;
    /* Cascade from the lowest level up while the wheel sits on a boundary
     * of that level; what a higher level drops lands below it. */
    for (int l = 1; l < TERN_TIMER_LEVELS; l++) {
        if ((tick & ((1ull << LEVEL_SHIFT(l)) - 1)) != 0)
            break;
        cascade(w, l, (unsigned)(tick >> LEVEL_SHIFT(l)) & SLOT_MASK);
    }
    unsigned slot = (unsigned)tick & SLOT_MASK;
    struct tern_list *head = &w->slots[0][slot];
    /* Emptied below without timer_unlink: whatever is left (nothing, as
     * a callback arms for a later tick) is counted afresh if asked. */
    w->stale[0] |= 1ull << slot;
    while (!tern_list_empty(head)) {
        struct tern_timer *t = tern_container_of(head->next, struct tern_timer, node);
        TERN_ASSERT(s, t->magic == TIMER_MAGIC && t->armed,
                    "timer on the wheel is corrupt or freed (magic %#x)", t->magic);
        if (t->expires_tick > tick) {
            /* Clamped far timer: put it back where it now belongs. */
            tern_list_remove(&t->node);
            wheel_place(w, t, w->now_tick + 1);
            continue;
        }
        tern_list_remove(&t->node);
        t->armed = false;
        w->armed--;
        /* The callback may re-arm t or arm/cancel any other timer. */
        TERN_PROBE3(timer, s, t->name, t);
        t->fn(s, t);
    }
    if (tern_list_empty(head))
        w->occupied[0] &= ~(1ull << slot);
}

/* Cascading a higher slot can hand timers to a lower level that sorts
 * them again, so a wrong order above 0 costs a walk, not a late timer. */
void tern_wheel_advance(struct tern_stack *s, uint64_t now_ns)
{
    struct tern_timer_wheel *w = &s->wheel;
    uint64_t target = now_ns / TERN_TIMER_TICK_NS;
    while (w->now_tick < target) {
        uint64_t next = w->armed ? next_event_tick(w) : UINT64_MAX;
        if (next > target) {
            w->now_tick = target;
            break;
        }
        run_tick(s, next);
    }
}

uint64_t tern_wheel_next_deadline(struct tern_timer_wheel *w)
{
    if (w->armed == 0)
        return UINT64_MAX;
    uint64_t best = UINT64_MAX;
    /* Slot ranges of one level are disjoint and ordered, so only the first
     * non-empty slot of each level can hold the earliest deadline. */
    for (int l = 0; l < TERN_TIMER_LEVELS; l++) {
        uint64_t start;
        int slot = earliest_slot(w, l, &start);
        if (slot < 0)
            continue;
        uint64_t bit = 1ull << slot;
        if (w->stale[l] & bit) {
            uint64_t m = UINT64_MAX;
            const struct tern_list *it;
            tern_list_for_each(it, &w->slots[l][slot]) {
                const struct tern_timer *t = tern_container_of(it, struct tern_timer, node);
                if (t->expires_tick < m)
                    m = t->expires_tick;
            }
            w->slot_min[l][slot] = m;
            w->stale[l] &= ~bit;
        }
        uint64_t m = w->slot_min[l][slot];
        uint64_t tick = m > w->now_tick ? m : w->now_tick + 1;
        if (tick < best)
            best = tick;
    }
    return best == UINT64_MAX ? best : best * TERN_TIMER_TICK_NS;
}

void tern_wheel_for_each(const struct tern_timer_wheel *w,
                         void (*fn)(const struct tern_timer *t, void *arg), void *arg)
{
    for (int l = 0; l < TERN_TIMER_LEVELS; l++)
        for (unsigned slot = 0; slot < TERN_TIMER_SLOTS; slot++) {
            const struct tern_list *it;
            tern_list_for_each(it, &w->slots[l][slot])
                fn(tern_container_of(it, struct tern_timer, node), arg);
        }
}
