/* The timer wheel: never early, never missed, in deadline order, cheap to
 * cancel and re-arm, and exact across every level and long idle jumps. */
#include "testing.h"

#include <stdlib.h>

#include "core/rand.h"
#include "core/stack.h"
#include "core/timer.h"

#define MS TERN_NS_PER_MS
#define SEC TERN_NS_PER_SEC

struct probe {
    struct tern_timer t;
    uint64_t deadline;
    uint64_t fired_at; /* the `now` of the advance call that fired it */
    int fires;
    uint64_t last_tick; /* wheel tick when fired, to check order */
};

static uint64_t g_now_for_probe; /* test-only; the library has no globals */
static uint64_t g_last_tick;
static int g_order_violations;

static void probe_fire(struct tern_stack *s, struct tern_timer *t)
{
    struct probe *p = tern_container_of(t, struct probe, t);
    p->fires++;
    p->fired_at = g_now_for_probe;
    p->last_tick = s->wheel.now_tick;
    if (s->wheel.now_tick < g_last_tick)
        g_order_violations++;
    g_last_tick = s->wheel.now_tick;
}

static void advance(struct tern_stack *s, uint64_t now)
{
    g_now_for_probe = now;
    g_last_tick = 0;
    tern_wheel_advance(s, now);
}

static struct tern_stack *new_stack(void)
{
    struct tern_stack *s = tern_stack_new(NULL);
    assert_non_null(s);
    return s;
}

static void test_fires_not_before_deadline(void **state)
{
    (void)state;
    struct tern_stack *s = new_stack();
    struct probe p = {0};
    tern_timer_init(&p.t, probe_fire, "probe");
    tern_timer_arm(s, &p.t, 200 * MS + 500); /* not on a tick boundary */
    assert_int_equal(tern_wheel_next_deadline(&s->wheel), 201 * MS);
    advance(s, 200 * MS);
    assert_int_equal(p.fires, 0);
    advance(s, 200 * MS + 499);
    assert_int_equal(p.fires, 0);
    advance(s, 201 * MS);
    assert_int_equal(p.fires, 1);
    assert_false(tern_timer_armed(&p.t));
    assert_int_equal(tern_wheel_next_deadline(&s->wheel), UINT64_MAX);
    tern_stack_free(s);
}

static void test_cancel_and_rearm(void **state)
{
    (void)state;
    struct tern_stack *s = new_stack();
    struct probe a = {0}, b = {0};
    tern_timer_init(&a.t, probe_fire, "a");
    tern_timer_init(&b.t, probe_fire, "b");
    tern_timer_arm(s, &a.t, 5 * SEC);
    tern_timer_arm(s, &b.t, 5 * SEC);
    tern_timer_cancel(s, &a.t);
    tern_timer_cancel(s, &a.t); /* idempotent */
    tern_timer_arm(s, &b.t, 10 * MS); /* re-arm moves it */
    assert_int_equal(s->wheel.armed, 1);
    advance(s, 10 * MS);
    assert_int_equal(b.fires, 1);
    advance(s, 6 * SEC);
    assert_int_equal(a.fires, 0);
    assert_int_equal(b.fires, 1);
    assert_int_equal(s->wheel.armed, 0);
    tern_stack_free(s);
}

struct chain {
    struct tern_timer t;
    struct tern_timer *victim;
    int fires;
};

static void chain_fire(struct tern_stack *s, struct tern_timer *t)
{
    struct chain *c = tern_container_of(t, struct chain, t);
    c->fires++;
    if (c->victim)
        tern_timer_cancel(s, c->victim); /* cancel a timer due in the same tick */
    if (c->fires < 3)
        tern_timer_arm(s, t, s->now); /* re-arm for "now": fires next tick */
}

static void test_callbacks_may_cancel_and_rearm(void **state)
{
    (void)state;
    struct tern_stack *s = new_stack();
    struct chain c1 = {0}, c2 = {0};
    tern_timer_init(&c1.t, chain_fire, "c1");
    tern_timer_init(&c2.t, chain_fire, "c2");
    c1.victim = &c2.t;
    tern_timer_arm(s, &c1.t, 3 * MS);
    tern_timer_arm(s, &c2.t, 3 * MS);
    s->now = 3 * MS;
    advance(s, 3 * MS);
    assert_int_equal(c1.fires, 1);
    assert_int_equal(c2.fires, 0);
    s->now = 100 * MS;
    advance(s, 100 * MS);
    assert_int_equal(c1.fires, 3); /* re-armed twice, then stopped */
    assert_int_equal(c2.fires, 0);
    assert_int_equal(s->wheel.armed, 0);
    tern_stack_free(s);
}

/* Many timers over every level with random deadlines and random advance
 * steps (some huge): each fires exactly once, in the first advance whose
 * time reaches its deadline's tick, and ticks never go backwards. */
static void test_random_against_model(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct tern_stack *s = new_stack();
        struct tern_rng rng;
        tern_rng_seed(&rng, seed);
        enum { N = 3000 };
        struct probe *p = calloc(N, sizeof(*p));
        assert_non_null(p);
        uint64_t now = 0;
        for (int i = 0; i < N; i++) {
            static const uint64_t spans[] = {50 * MS, 4 * SEC, 300 * SEC, 5 * 3600 * SEC,
                                             20 * 86400 * SEC};
            uint64_t span = spans[tern_rng_below(&rng, 5)];
            p[i].deadline = tern_rng_below(&rng, span) + 1;
            tern_timer_init(&p[i].t, probe_fire, "probe");
            tern_timer_arm(s, &p[i].t, p[i].deadline);
        }
        /* Cancel a tenth of them. */
        for (int i = 0; i < N; i += 10)
            tern_timer_cancel(s, &p[i].t);
        g_order_violations = 0;
        while (s->wheel.armed > 0) {
            uint64_t step = tern_rng_below(&rng, 4) == 0 ? tern_rng_below(&rng, 3 * 86400 * SEC)
                                                         : tern_rng_below(&rng, 2 * SEC);
            uint64_t before = now;
            now += step + 1;
            /* next_deadline never lies: nothing is due before it. */
            uint64_t nd = tern_wheel_next_deadline(&s->wheel);
            advance(s, now);
            for (int i = 0; i < N; i++) {
                if (i % 10 == 0)
                    continue;
                uint64_t tick_deadline = (p[i].deadline + MS - 1) / MS * MS;
                if (tick_deadline <= before)
                    assert_int_equal(p[i].fires, 1);
                else if (tick_deadline <= now) {
                    assert_int_equal(p[i].fires, 1);
                    assert_int_equal(p[i].fired_at, now);
                    assert_true(p[i].last_tick * MS >= tick_deadline);
                    assert_true(nd <= tick_deadline);
                } else {
                    assert_int_equal(p[i].fires, 0);
                }
            }
        }
        for (int i = 0; i < N; i += 10)
            assert_int_equal(p[i].fires, 0);
        assert_int_equal(g_order_violations, 0);
        free(p);
        tern_stack_free(s);
    }
}

static void test_next_deadline_picks_earliest_across_levels(void **state)
{
    (void)state;
    struct tern_stack *s = new_stack();
    struct probe far = {0}, mid = {0}, near = {0};
    tern_timer_init(&far.t, probe_fire, "far");
    tern_timer_init(&mid.t, probe_fire, "mid");
    tern_timer_init(&near.t, probe_fire, "near");
    tern_timer_arm(s, &far.t, 3600 * SEC);
    assert_int_equal(tern_wheel_next_deadline(&s->wheel), 3600 * SEC);
    tern_timer_arm(s, &mid.t, 70 * SEC + 3 * MS);
    assert_int_equal(tern_wheel_next_deadline(&s->wheel), 70 * SEC + 3 * MS);
    tern_timer_arm(s, &near.t, 20 * MS);
    assert_int_equal(tern_wheel_next_deadline(&s->wheel), 20 * MS);
    advance(s, 3599 * SEC);
    assert_int_equal(near.fires + mid.fires + far.fires, 2);
    assert_int_equal(tern_wheel_next_deadline(&s->wheel), 3600 * SEC);
    advance(s, 3600 * SEC);
    assert_int_equal(far.fires, 1);
    tern_stack_free(s);
}

/* The next deadline is exact without walking a crowded slot: while the
 * earliest timers of a slot of thousands leave (cancelled, or re-armed
 * later) and others come, it always equals the earliest armed one. */
static void test_next_deadline_exact_as_a_crowded_slot_changes(void **state)
{
    (void)state;
    enum { N = 2000, OPS = 3000 };
    struct tern_stack *s = new_stack();
    struct probe *p = calloc(N, sizeof(*p));
    assert_non_null(p);
    struct tern_rng rng;
    tern_rng_seed(&rng, 42);
    for (int i = 0; i < N; i++) {
        tern_timer_init(&p[i].t, probe_fire, "crowd");
        p[i].deadline = 60 * SEC + tern_rng_below(&rng, 2 * SEC);
        tern_timer_arm(s, &p[i].t, p[i].deadline);
    }
    for (int op = 0; op < OPS; op++) {
        /* Mostly the earliest one leaves: the case a cached figure gets
         * wrong. */
        int victim = (int)tern_rng_below(&rng, N);
        if (tern_rng_below(&rng, 2) == 0) {
            uint64_t best = UINT64_MAX;
            for (int i = 0; i < N; i++)
                if (tern_timer_armed(&p[i].t) && p[i].deadline < best) {
                    best = p[i].deadline;
                    victim = i;
                }
        }
        switch (tern_rng_below(&rng, 3)) {
        case 0:
            tern_timer_cancel(s, &p[victim].t);
            break;
        default:
            p[victim].deadline = 60 * SEC + tern_rng_below(&rng, 2 * SEC);
            tern_timer_arm(s, &p[victim].t, p[victim].deadline);
            break;
        }
        uint64_t want = UINT64_MAX;
        for (int i = 0; i < N; i++)
            if (tern_timer_armed(&p[i].t)) {
                uint64_t tick = (p[i].deadline + MS - 1) / MS * MS;
                if (tick < want)
                    want = tick;
            }
        assert_int_equal(tern_wheel_next_deadline(&s->wheel), want);
    }
    /* Every one still armed fires, none early. */
    for (uint64_t now = 59 * SEC; s->wheel.armed > 0; now += 7 * MS)
        advance(s, now);
    for (int i = 0; i < N; i++)
        if (p[i].fires)
            assert_true(p[i].last_tick * MS >= p[i].deadline);
    free(p);
    tern_stack_free(s);
}

static void leave_armed(void *arg)
{
    (void)arg;
    struct tern_stack *s = tern_stack_new(NULL);
    struct probe *p = malloc(sizeof(*p));
    tern_timer_init(&p->t, probe_fire, "leaked-timer");
    tern_timer_arm(s, &p->t, SEC);
    tern_stack_free(s); /* must refuse: a timer is still armed */
}

/* Thousands of timers in one slot (a run of connections all entering
 * TIME_WAIT within a second): cancelling them from the front, the back
 * and the middle leaves each slot's occupied bit right, so the wheel
 * neither reports a deadline it no longer has nor loses one it has. */
static void test_crowded_slot_cancels_in_any_order(void **state)
{
    (void)state;
    enum { N = 3000 };
    struct tern_stack *s = new_stack();
    struct probe *p = calloc(N, sizeof(*p));
    assert_non_null(p);
    for (int i = 0; i < N; i++) {
        tern_timer_init(&p[i].t, probe_fire, "crowd");
        tern_timer_arm(s, &p[i].t, 60 * SEC + (uint64_t)i * 100000); /* within 0.3 s */
    }
    /* Front half in arming order, then the back from the end, leaving one. */
    for (int i = 0; i < N / 2; i++)
        tern_timer_cancel(s, &p[i].t);
    for (int i = N - 1; i > N / 2; i--)
        tern_timer_cancel(s, &p[i].t);
    assert_int_equal(s->wheel.armed, 1);
    uint64_t left = 60 * SEC + (uint64_t)(N / 2) * 100000;
    assert_int_equal(tern_wheel_next_deadline(&s->wheel), left);
    tern_timer_cancel(s, &p[N / 2].t);
    assert_int_equal(s->wheel.armed, 0);
    for (int l = 0; l < TERN_TIMER_LEVELS; l++)
        assert_int_equal(s->wheel.occupied[l], 0);
    assert_int_equal(tern_wheel_next_deadline(&s->wheel), UINT64_MAX);
    /* The slot works as before for a newcomer. */
    tern_timer_arm(s, &p[0].t, 60 * SEC);
    advance(s, 61 * SEC);
    assert_int_equal(p[0].fires, 1);
    for (int i = 1; i < N; i++)
        assert_int_equal(p[i].fires, 0);
    free(p);
    tern_stack_free(s);
}

static void test_teardown_with_armed_timer_is_caught(void **state)
{
    (void)state;
    expect_abort(leave_armed, NULL, "leaked objects: 0 packets, 0 sockets, 1 timers");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_not_before_deadline),
        cmocka_unit_test(test_cancel_and_rearm),
        cmocka_unit_test(test_callbacks_may_cancel_and_rearm),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_next_deadline_picks_earliest_across_levels),
        cmocka_unit_test(test_next_deadline_exact_as_a_crowded_slot_changes),
        cmocka_unit_test(test_crowded_slot_cancels_in_any_order),
        cmocka_unit_test(test_teardown_with_armed_timer_is_caught),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
