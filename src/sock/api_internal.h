/* Every public call enters and leaves through these. Entry checks the
 * stack is alive and, in threaded mode, takes its lock (runtime/rt.h).
 * Leaving delivers readiness (runtime/events.h), runs the reaper, drops
 * the lock, and sets errno last, so that an error return always carries
 * the errno of its own call. */
#ifndef TERN_SOCK_API_INTERNAL_H
#define TERN_SOCK_API_INTERNAL_H

#include <errno.h>
#include <sys/types.h>

#include "core/assert.h"
#include "core/stack.h"

struct tern_api_guard {
    struct tern_stack *s;
};

void tern_rt_enter(struct tern_stack *s);
/* Deliver readiness, reap, unlock. */
void tern_api_leave(struct tern_stack *s);

static inline struct tern_api_guard tern_api_enter(struct tern_stack *s)
{
    TERN_ASSERT(s, s != NULL && s->magic == TERN_STACK_MAGIC,
                "call on a NULL, freed or corrupt stack %p", (void *)s);
    if (s->rt)
        tern_rt_enter(s);
    return (struct tern_api_guard){s};
}

static inline int tern_api_return(struct tern_api_guard *g, int v)
{
    tern_api_leave(g->s);
    return v;
}

static inline ssize_t tern_api_return_sz(struct tern_api_guard *g, ssize_t v)
{
    tern_api_leave(g->s);
    return v;
}

static inline int tern_api_fail(struct tern_api_guard *g, int err)
{
    tern_api_leave(g->s);
    errno = err;
    return -1;
}

#endif
