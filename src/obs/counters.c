#include <string.h>

#include "core/stack.h"
#include "runtime/rt.h"

/* Names and help live in fixed-size char arrays, not pointer tables, so
 * the table is plain read-only data with no relocations. */
struct counter_desc {
    char name[40];
    char help[72];
};

static const struct counter_desc counter_descs[TERN_COUNTER__COUNT] = {
#define X(id, n, h) {n, h},
    TERN_COUNTERS(X)
#undef X
};

size_t tern_counter_count(void) { return TERN_COUNTER__COUNT; }

const char *tern_counter_name(size_t i)
{
    return i < TERN_COUNTER__COUNT ? counter_descs[i].name : NULL;
}

const char *tern_counter_help(size_t i)
{
    return i < TERN_COUNTER__COUNT ? counter_descs[i].help : NULL;
}

/* The observers read a started stack under its lock (runtime/rt.h). */
uint64_t tern_counter_get(const struct tern_stack *s, size_t i)
{
    if (i >= TERN_COUNTER__COUNT)
        return 0;
    tern_rt_observe_begin(s);
    uint64_t v = s->counters[i];
    tern_rt_observe_end(s);
    return v;
}

long tern_counter_find(const char *name)
{
    for (size_t i = 0; i < TERN_COUNTER__COUNT; i++)
        if (strcmp(counter_descs[i].name, name) == 0)
            return (long)i;
    return -1;
}

uint64_t tern_counter_by_name(const struct tern_stack *s, const char *name)
{
    long i = tern_counter_find(name);
    return i < 0 ? 0 : tern_counter_get(s, (size_t)i);
}

void tern_counters_reset(struct tern_stack *s)
{
    tern_rt_observe_begin(s);
    memset(s->counters, 0, sizeof(s->counters));
    tern_rt_observe_end(s);
}

void tern_counters_dump(const struct tern_stack *s, FILE *f, bool nonzero_only)
{
    tern_rt_observe_begin(s);
    for (size_t i = 0; i < TERN_COUNTER__COUNT; i++) {
        if (nonzero_only && s->counters[i] == 0)
            continue;
        fprintf(f, "%-32s %12llu  %s\n", counter_descs[i].name,
                (unsigned long long)s->counters[i], counter_descs[i].help);
    }
    tern_rt_observe_end(s);
}
