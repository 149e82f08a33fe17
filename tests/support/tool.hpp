#pragma once
// Running the `ckpt` tool and the Python checkers of tests/python as child processes (tests/tool.cpp,
// tests/tool_import.cpp). CKPT_TOOL and CKPT_SOURCE_DIR come from tests/CMakeLists.txt.

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ckpt_test {

struct result {
    int status;
    std::string output;  // stdout and stderr
};

/// Runs a shell command; its exit status (-1 when killed) and its stdout and stderr together.
inline result run_command(const std::string& command) {
    std::FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    REQUIRE(p);
    result r{0, {}};
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
    const int status = ::pclose(p);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

#ifdef CKPT_TOOL  // defined where the tool is built
/// `ckpt ARGS` (through the shell: quote what needs it).
inline result tool(const std::string& args) { return run_command(std::string(CKPT_TOOL) + " " + args); }

#endif

/// Debian's python3 (with python3-numpy and python3-torch) when present.
inline std::string python() { return std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

/// Runs python3 on a script of tests/python with arguments; output is stdout and stderr.
inline result python_script(const std::string& script, const std::string& args) {
    return run_command(python() + " " + CKPT_SOURCE_DIR + "/tests/python/" + script + " " + args);
}

#ifdef CKPT_TOOL
/// Runs the tool directly (fork and exec, no shell) and returns its exit status and peak resident
/// memory. fork, not vfork or posix_spawn: a child that shares the parent's memory inherits its
/// high-water mark across exec, so only a copy of a small parent measures the tool alone.
inline std::pair<int, long> tool_peak_kib(const std::vector<std::string>& args) {
    std::vector<char*> argv{const_cast<char*>(CKPT_TOOL)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::freopen("/dev/null", "w", stdout);
        ::execv(CKPT_TOOL, argv.data());
        ::_exit(127);
    }
    int status = 0;
    struct rusage usage {};
    REQUIRE(::wait4(pid, &status, 0, &usage) == pid);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, usage.ru_maxrss};
}
#endif

}  // namespace ckpt_test
