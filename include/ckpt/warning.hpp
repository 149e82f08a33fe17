#pragma once
// What the library reports without throwing (a damaged checkpoint skipped, an asynchronous save's
// error nobody collected, a file a rotation could not delete) goes to one hook. A library never
// writes to the user's terminal on its own: the default handler prints "ckpt: <message>" on stderr,
// and an application routes warnings to its own log with set_warning_handler.
//
//   ckpt::set_warning_handler([](const ckpt::warning& w) { log.warn("{}", w.message); });

#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <utility>

#include <ckpt/detail/config.hpp>

namespace ckpt {

/// What a warning is about: `if (w.kind == ckpt::warning_kind::skipped_checkpoint) ...`
enum class warning_kind {
    skipped_checkpoint,   ///< restore_or_initialize passed over a damaged checkpoint and tried the one before
    async_save_failed,    ///< an asynchronous save failed where its error could not be thrown (a destructor)
    cannot_delete,        ///< a rotation could not delete a checkpoint file (the next manager tries again)
    state_not_recorded,   ///< a manager could not update its state file (a full disk; the next save does)
    diverged_replicas,    ///< replicated state differed between MPI ranks and was saved all the same (divergence::warn)
    overlapping_objects,  ///< a checkpoint tracks one object twice, or an object and a part of it
};

/// One warning: its kind and a message naming the file: `std::puts(w.message.c_str());`
struct warning {
    /// What it is about.
    warning_kind kind;
    /// The text, without the "ckpt: " prefix the default handler adds.
    std::string message;
};

/// Receives every warning; called from the thread that meets it (perhaps an asynchronous save's).
using warning_handler = std::function<void(const warning&)>;

namespace detail {

struct warning_hook {
    std::mutex mutex;
    warning_handler handler;  // empty: the default
};
CKPT_INLINE warning_hook& the_warning_hook();

inline void default_warning_handler(const warning& w) { std::fprintf(stderr, "ckpt: %s\n", w.message.c_str()); }

/// Hands a warning to the handler in place; a handler that throws does not take the library down.
CKPT_INLINE void warn(warning_kind kind, std::string message) noexcept;

}  // namespace detail

/// Routes the library's warnings to `handler` (thread-safe); an empty handler restores the default
/// (stderr, "ckpt: " first). Returns the previous handler (empty for the default).
/// `ckpt::set_warning_handler([](const ckpt::warning& w) { my_log(w.message); });`
CKPT_INLINE warning_handler set_warning_handler(warning_handler handler);

}  // namespace ckpt

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE warning_hook& the_warning_hook() {
    static warning_hook hook;
    return hook;
}

CKPT_INLINE void warn(warning_kind kind, std::string message) noexcept {
    try {
        warning_handler handler;
        {
            std::lock_guard lock(the_warning_hook().mutex);
            handler = the_warning_hook().handler;
        }
        const warning w{kind, std::move(message)};
        if (handler)
            handler(w);
        else
            default_warning_handler(w);
    } catch (...) {}
}

}  // namespace ckpt::detail
namespace ckpt {

CKPT_INLINE warning_handler set_warning_handler(warning_handler handler) {
    std::lock_guard lock(detail::the_warning_hook().mutex);
    return std::exchange(detail::the_warning_hook().handler, std::move(handler));
}

}  // namespace ckpt
#endif  // CKPT_HEADER_DEFINITIONS
