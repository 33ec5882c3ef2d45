/* What every test file needs: cmocka in its required include order, and a
 * death-test helper. */
#ifndef TERN_TEST_TESTING_H
#define TERN_TEST_TESTING_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Run fn(arg) in a child process and assert it aborts (SIGABRT) and that
 * its stderr contains `needle`. */
void expect_abort(void (*fn)(void *arg), void *arg, const char *needle);

#endif
