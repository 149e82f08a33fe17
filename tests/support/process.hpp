#pragma once
// Running a piece of a test in a forked child, for what must not touch the test process itself
// (mount namespaces, resource limits, crashes).

#include <cstdio>
#include <exception>

#include <sys/wait.h>
#include <unistd.h>

namespace ckpt_test {

/// Runs `body` in a forked child; its exit status is the result (0 = every check passed, 99 = it
/// threw, 128 + n = killed by signal n).
template <class F>
int in_child(F&& body) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        int code = 1;
        try {
            code = body();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "child: %s\n", e.what());
            code = 99;
        } catch (...) {
            code = 99;
        }
        ::_exit(code);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace ckpt_test
