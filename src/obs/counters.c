#include <pthread.h>
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

uint64_t tern_counter_get(const struct tern_stack *s, size_t i)
{
    return i < TERN_COUNTER__COUNT ? s->counters[i] : 0;
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
    return i < 0 ? 0 : s->counters[i];
}

void tern_counters_reset(struct tern_stack *s) { memset(s->counters, 0, sizeof(s->counters)); }

void tern_counters_dump(const struct tern_stack *s, FILE *f, bool nonzero_only)
{
    /* A started stack counts under its lock: read them under it too. */
    struct tern_runtime *rt = s->rt;
    if (rt)
        pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < TERN_COUNTER__COUNT; i++) {
        if (nonzero_only && s->counters[i] == 0)
            continue;
        fprintf(f, "%-32s %12llu  %s\n", counter_descs[i].name,
                (unsigned long long)s->counters[i], counter_descs[i].help);
    }
    if (rt)
        pthread_mutex_unlock(&rt->lock);
}
