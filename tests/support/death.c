#include "testing.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void expect_abort(void (*fn)(void *arg), void *arg, const char *needle)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child: stderr into the pipe, no core file for an expected
         * abort, and sanitizers must not turn the abort into an exit. */
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        signal(SIGABRT, SIG_DFL);
        fn(arg);
        _exit(0); /* survived: the invariant did not fire */
    }
    close(pipefd[1]);
    char out[16384];
    size_t have = 0;
    ssize_t n;
    while ((n = read(pipefd[0], out + have, sizeof(out) - 1 - have)) > 0)
        have += (size_t)n;
    out[have] = 0;
    close(pipefd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("expected an abort mentioning '%s'; child %s %d, stderr:\n%s", needle,
                 WIFSIGNALED(status) ? "died of signal" : "exited with",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), out);
    if (!strstr(out, needle))
        fail_msg("abort did not mention '%s'; stderr:\n%s", needle, out);
}
