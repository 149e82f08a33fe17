#pragma once
// Running a piece of a test in a forked child, for what must not touch the test process itself
// (mount namespaces, resource limits, crashes).

#include <cstdio>
#include <exception>
#include <string>

#include <sched.h>
#include <sys/mount.h>
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

/// In a forked child (in_child): mounts a private tmpfs of `options` ("size=600k") on `dir`, in a
/// mount namespace of the child's own, so that it disappears with the child. An empty string when
/// it is mounted, else why not (not root, no user namespaces: the caller says so, never skips).
inline std::string mount_private_tmpfs(const std::string& dir, const std::string& options) {
    if (::unshare(CLONE_NEWNS) != 0) return "cannot make a mount namespace (not root?)";
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return "cannot make mounts private";
    if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) != 0) return "cannot mount a tmpfs";
    return {};
}

/// Remounts a tmpfs of mount_private_tmpfs read-only (`read_only`) or writable again.
inline bool remount_tmpfs(const std::string& dir, bool read_only, const std::string& options) {
    return ::mount(nullptr, dir.c_str(), nullptr, MS_REMOUNT | (read_only ? MS_RDONLY : 0), options.c_str()) == 0;
}

}  // namespace ckpt_test
