#pragma once
// The leader protocol of a checkpoint_manager on many processes: rank 0, the leader, alone touches
// the directory; every decision that could differ between ranks is its, shared with the others
// through the checkpoint's ckpt::coordinator (one broadcast), and an error of the leader's is
// thrown on every rank (coordinator::agree) instead of leaving the others waiting.

#include <cstddef>
#include <exception>
#include <filesystem>
#include <mutex>
#include <string>
#include <utility>

#include <ckpt/detail/config.hpp>
#include <ckpt/checkpoint.hpp>
#include <ckpt/coordination.hpp>
#include <ckpt/detail/manager/state_file.hpp>
#include <ckpt/error.hpp>

namespace ckpt::detail {

/// A checkpoint's coordinator when it spans several processes; null for one process.
CKPT_INLINE coordinator* shared_coordinator(any_checkpoint& ck) noexcept;

// The messages a leader shares: length-prefixed parts.
CKPT_INLINE void append_part(std::string& out, const std::string& part);
CKPT_INLINE bool next_part(const std::string& in, std::size_t& at, std::string& part);

/// Runs `work` on the leader alone (with no coordinator, one process: just runs it). On several
/// processes every rank then takes the leader's `state` (guarded by `mutex`), the leader's error
/// (if any) is thrown on every rank with its type, and every rank returns what `work` returned on
/// the leader. One broadcast when all is well.
template <class Work>
std::string led(coordinator* coord, const char* during, const std::filesystem::path& dir, std::mutex& mutex,
                manager_state& state, Work&& work) {
    if (!coord) return work();
    const bool leader = coord->rank() == 0;
    std::exception_ptr failed;
    std::string result, message;
    if (leader) {
        try {
            result = work();
        } catch (...) {
            failed = std::current_exception();
        }
        std::lock_guard lock(mutex);
        append_part(message, failed ? "E" : "S");
        append_part(message, result);
        append_part(message, encode_state(state));
    }
    message = coord->share(std::move(message));
    std::size_t at = 0;
    std::string flag, shared;
    if (!next_part(message, at, flag) || !next_part(message, at, result) || !next_part(message, at, shared))
        throw error("the manager's leader sent a malformed message", dir);  // not reached
    if (!leader) {
        manager_state s;
        if (!decode_state(shared, dir, s))
            throw error("the manager's leader sent a malformed state", dir);  // not reached
        std::lock_guard lock(mutex);
        state = std::move(s);
    }
    if (flag != "S") {
        coord->agree(failed, during, dir);
        throw error(std::string("the manager's leader failed ") + during, dir);  // agree threw
    }
    return result;
}

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE coordinator* shared_coordinator(any_checkpoint& ck) noexcept {
    coordinator* c = ck.coordination();
    return c && c->size() > 1 ? c : nullptr;
}

CKPT_INLINE void append_part(std::string& out, const std::string& part) {
    out += std::to_string(part.size());
    out += ':';
    out += part;
}

CKPT_INLINE bool next_part(const std::string& in, std::size_t& at, std::string& part) {
    const auto colon = in.find(':', at);
    if (colon == std::string::npos || colon == at || colon - at > 19) return false;
    std::size_t n = 0;
    for (std::size_t i = at; i < colon; ++i) {
        if (in[i] < '0' || in[i] > '9') return false;
        n = n * 10 + static_cast<std::size_t>(in[i] - '0');
    }
    if (n > in.size() - colon - 1) return false;
    part = in.substr(colon + 1, n);
    at = colon + 1 + n;
    return true;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
