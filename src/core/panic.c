#include <execinfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/stack.h"

void tern_panic(const struct tern_stack *s, const char *file, int line, const char *expr,
                const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\ntern: invariant failed at %s:%d: %s\ntern: ", file, line, expr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntern: backtrace:\n");
    void *frames[64];
    int n = backtrace(frames, 64);
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
    /* The state of the stack, if it is one we can still read. */
    if (s && s->magic == TERN_STACK_MAGIC) {
        fprintf(stderr, "tern: sockets of stack %p:\n", (const void *)s);
        tern_sockets_dump_nolock(s, stderr);
        fprintf(stderr, "tern: timers:\n");
        tern_timers_dump_nolock(s, stderr);
    }
    fflush(stderr);
    abort();
}
