/*
 * USDT probes (<sys/sdt.h>, from Debian's systemtap-sdt-dev) at the points
 * a debugger wants. Each is a single nop and an ELF note until a tracer
 * (bpftrace, perf, systemtap) attaches: zero cost when nobody looks. The
 * provider is "tern"; docs/probes.md lists every probe and its arguments,
 * and the tools/ scripts ending in .bt are bpftrace scripts that use them. Without the header
 * the probes compile to nothing.
 *
 * Arguments are integers or pointers to NUL-terminated strings that live
 * as long as the program (names from tables) or the probe's own frame;
 * at most six, all bpftrace reads on x86_64.
 */
#ifndef TERN_OBS_PROBE_H
#define TERN_OBS_PROBE_H

#if defined(__has_include)
#if __has_include(<sys/sdt.h>)
#include <sys/sdt.h>
#define TERN_HAVE_SDT 1
#endif
#endif

#ifdef TERN_HAVE_SDT
#define TERN_PROBE1(n, a) DTRACE_PROBE1(tern, n, a)
#define TERN_PROBE2(n, a, b) DTRACE_PROBE2(tern, n, a, b)
#define TERN_PROBE3(n, a, b, c) DTRACE_PROBE3(tern, n, a, b, c)
#define TERN_PROBE4(n, a, b, c, d) DTRACE_PROBE4(tern, n, a, b, c, d)
#define TERN_PROBE5(n, a, b, c, d, e) DTRACE_PROBE5(tern, n, a, b, c, d, e)
#define TERN_PROBE6(n, a, b, c, d, e, f) DTRACE_PROBE6(tern, n, a, b, c, d, e, f)
#else
#define TERN_PROBE1(n, a) ((void)(a))
#define TERN_PROBE2(n, a, b) ((void)(a), (void)(b))
#define TERN_PROBE3(n, a, b, c) ((void)(a), (void)(b), (void)(c))
#define TERN_PROBE4(n, a, b, c, d) ((void)(a), (void)(b), (void)(c), (void)(d))
#define TERN_PROBE5(n, a, b, c, d, e) ((void)(a), (void)(b), (void)(c), (void)(d), (void)(e))
#define TERN_PROBE6(n, a, b, c, d, e, f)                                                     \
    ((void)(a), (void)(b), (void)(c), (void)(d), (void)(e), (void)(f))
#endif

#endif
