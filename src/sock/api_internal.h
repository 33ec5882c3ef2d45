/* Every public call enters and leaves through these. Entry checks the
 * stack is alive and, in threaded mode, takes its lock (runtime/rt.h).
 * Leaving delivers readiness (runtime/events.h), runs the reaper, drops
 * the lock, and sets errno last, so that an error return always carries
 * the errno of its own call. A failure records why, for the calling
 * thread (tern_error_detail) and for tracers (the tern:api_error probe):
 * tern_api_fail_why says which argument or check; tern_api_fail only the
 * errno, for failures whose cause is plain (EBADF for a closed handle). */
#ifndef TERN_SOCK_API_INTERNAL_H
#define TERN_SOCK_API_INTERNAL_H

#include <errno.h>
#include <sys/types.h>

#include "core/assert.h"
#include "core/stack.h"
#include "obs/probe.h"

struct tern_api_guard {
    struct tern_stack *s;
    const char *fn; /* the public call, for probes and error details */
};

/* Out of line: kept out of every call's inlined entry in owned mode. */
__attribute__((noinline)) void tern_rt_enter(struct tern_stack *s);
/* Deliver readiness, reap, unlock. */
void tern_api_leave(struct tern_stack *s);
/* Record why the call fails, leave, set errno; returns -1. */
__attribute__((format(printf, 3, 4)))
int tern_api_fail_why(struct tern_api_guard *g, int err, const char *fmt, ...);

__attribute__((always_inline)) static inline struct tern_api_guard
tern_api_enter_fn(struct tern_stack *s, const char *fn)
{
    TERN_ASSERT(s, s != NULL && s->magic == TERN_STACK_MAGIC,
                "%s on a NULL, freed or corrupt stack %p", fn, (void *)s);
    if (s->rt)
        tern_rt_enter(s);
    s->why_set = false;
    TERN_PROBE2(api_enter, s, fn);
    return (struct tern_api_guard){s, fn};
}
#define tern_api_enter(s) tern_api_enter_fn((s), __func__)

static inline int tern_api_return(struct tern_api_guard *g, int v)
{
    TERN_PROBE3(api_return, g->s, g->fn, (long)v);
    tern_api_leave(g->s);
    return v;
}

static inline ssize_t tern_api_return_sz(struct tern_api_guard *g, ssize_t v)
{
    TERN_PROBE3(api_return, g->s, g->fn, (long)v);
    tern_api_leave(g->s);
    return v;
}

static inline int tern_api_fail(struct tern_api_guard *g, int err)
{
    return tern_api_fail_why(g, err, NULL);
}

#endif
