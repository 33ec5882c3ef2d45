/* Shared definitions of the public API. */
#ifndef TERN_COMMON_H
#define TERN_COMMON_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#if defined(__GNUC__)
#define TERN_API __attribute__((visibility("default")))
#else
#define TERN_API
#endif

/* Time in Tern is monotonic nanoseconds, always passed in by the caller. */
typedef uint64_t tern_time_t;
#define TERN_TIME_NEVER UINT64_MAX
#define TERN_NS_PER_MS 1000000ull
#define TERN_NS_PER_SEC 1000000000ull

#endif
