/*
 * Planted bugs, for the death tests in tests/planted/ and nothing else.
 *
 * TERN_PLANTED(name) marks a place where a deliberate bug can be switched
 * on: a reference drop skipped, a reference released twice, a timer left
 * armed on an object about to be freed. The death tests switch one on and
 * check that an invariant reports it, naming the object, before anything
 * worse happens (DESIGN.md rule 6).
 *
 * Only the test target tern_planted is compiled with TERN_PLANT_BUGS; it
 * reads the bug to plant from the environment variable TERN_PLANT_BUG
 * where the bug is, so the library keeps no state for it. In every other
 * build TERN_PLANTED(name) is the constant false and the bug goes with the
 * branch: the library users get carries none (a test checks its archive
 * does not even hold the variable's name).
 */
#ifndef TERN_CORE_PLANT_H
#define TERN_CORE_PLANT_H

#include <stdbool.h>

#ifdef TERN_PLANT_BUGS
#include <stdlib.h>
#include <string.h>

static inline bool tern_planted(const char *name)
{
    const char *want = getenv("TERN_PLANT_BUG");
    return want != NULL && strcmp(want, name) == 0;
}
#define TERN_PLANTED(name) tern_planted(#name)
#else
#define TERN_PLANTED(name) false
#endif

#endif
