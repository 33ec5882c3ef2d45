/* Invariants. A failed one prints what failed, where, a backtrace and the
 * stack's sockets and timers, then aborts so a core is written
 * (DESIGN.md rule 6). They stay on in release builds: they guard the
 * lifecycle, and a wrong lifecycle must never run on. */
#ifndef TERN_CORE_ASSERT_H
#define TERN_CORE_ASSERT_H

struct tern_stack;

__attribute__((noreturn, format(printf, 5, 6), cold))
void tern_panic(const struct tern_stack *s, const char *file, int line,
                const char *expr, const char *fmt, ...);

#define TERN_ASSERT(s, cond, ...)                                              \
    do {                                                                       \
        if (__builtin_expect(!(cond), 0))                                      \
            tern_panic((s), __FILE__, __LINE__, #cond, __VA_ARGS__);           \
    } while (0)

#endif
