#pragma once
// Which of this process's threads ran, and for how long: the CPU time of each thread of a name from
// /proc/self/task/<tid>/schedstat and comm (Linux, nanoseconds). ckpt names its pool's threads
// "ckpt-pool": a copy or a hash handed to the pool shows as their CPU time, and an idle pool thread
// sleeps and gains none.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace ckpt_test {

/// The CPU time, in nanoseconds, that each thread of this process named `name` has run so far.
inline std::map<long, std::uint64_t> thread_cpu_ns(const std::string& name) {
    std::map<long, std::uint64_t> times;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream comm(task.path() / "comm");
        std::string its_name;
        std::getline(comm, its_name);
        std::ifstream schedstat(task.path() / "schedstat");
        std::uint64_t ns = 0;
        if (its_name == name && schedstat >> ns)  // a thread that ended meanwhile is skipped
            times[std::stol(task.path().filename().string())] = ns;
    }
    return times;
}

/// The most CPU time that one thread named `name` ran since `before` was taken (a thread started
/// since then counts from zero).
inline std::uint64_t most_cpu_ns_since(const std::map<long, std::uint64_t>& before, const std::string& name) {
    std::uint64_t most = 0;
    for (const auto& [tid, ns] : thread_cpu_ns(name)) {
        const auto was = before.find(tid);
        const std::uint64_t ran = was == before.end() ? ns : ns - was->second;
        if (ran > most) most = ran;
    }
    return most;
}

/// Whether a thread of this process is named `name`.
inline bool has_thread_named(const std::string& name) { return !thread_cpu_ns(name).empty(); }

}  // namespace ckpt_test
