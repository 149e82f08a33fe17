#pragma once
// Which threads of this process ran, and for how long: the CPU time of each thread from
// /proc/self/task/<tid>/schedstat (Linux, nanoseconds). A copy or a hash that the library hands to
// its pool shows as CPU time on threads other than the caller's; nothing else in a test's process
// runs then (an idle pool thread sleeps and gains nothing).

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include <sys/syscall.h>
#include <unistd.h>

namespace ckpt_test {

/// This thread's id as the kernel knows it (the names under /proc/self/task).
inline long this_thread_tid() { return static_cast<long>(::syscall(SYS_gettid)); }

/// The CPU time, in nanoseconds, that each thread of this process has run so far.
inline std::map<long, std::uint64_t> thread_cpu_ns() {
    std::map<long, std::uint64_t> times;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream in(task.path() / "schedstat");
        std::uint64_t ns = 0;
        if (in >> ns) times[std::stol(task.path().filename().string())] = ns;  // a thread that ended is skipped
    }
    return times;
}

/// The most CPU time that any thread but those in `excluded` ran since `before` was taken (a thread
/// started since then counts from zero).
inline std::uint64_t most_cpu_ns_since(const std::map<long, std::uint64_t>& before, const std::set<long>& excluded) {
    std::uint64_t most = 0;
    for (const auto& [tid, ns] : thread_cpu_ns()) {
        if (excluded.count(tid)) continue;
        const auto was = before.find(tid);
        const std::uint64_t ran = was == before.end() ? ns : ns - was->second;
        if (ran > most) most = ran;
    }
    return most;
}

}  // namespace ckpt_test
