#pragma once
// ckpt::interrupt_guard: turns SIGTERM, SIGINT (and SIGUSR1, which SLURM's --signal sends before a
// job's time runs out) into a request the training loop sees at its next step boundary, where it
// can save and leave cleanly.
//
//   ckpt::interrupt_guard guard;                          // SIGTERM and SIGINT
//   for (; step < steps && !guard.requested(); ++step) { train(); mgr.save_if_due(step, guard.requested()); }
//
// The handler only stores into an atomic. A second signal of the same kind while a request is
// pending falls through to the behaviour that was there before the guard (pressing Ctrl-C twice
// still stops a stuck program). Destroying the guard restores the previous handlers exactly.
// Guards nest: an inner guard takes the signals while it lives (the outer one sees nothing of
// them) and gives them back to the outer one when destroyed. Create and destroy guards on one
// thread; signals may arrive on any.

#include <atomic>
#include <csignal>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include <signal.h>

#include <ckpt/error.hpp>

namespace ckpt {

class interrupt_guard;

namespace detail {
// Which guard owns each signal; read from the signal handler, so only lock-free atomics.
inline std::atomic<interrupt_guard*> signal_owner[NSIG] = {};
}  // namespace detail

/// Turns SIGTERM/SIGINT into a request to save and stop at the next step: `ckpt::interrupt_guard guard; ... if
/// (guard.requested()) break;`
class interrupt_guard {
public:
    /// Guards SIGTERM and SIGINT.
    interrupt_guard() : interrupt_guard({SIGTERM, SIGINT}) {}
    /// Guards the given signals: `ckpt::interrupt_guard guard{SIGTERM, SIGINT, SIGUSR1};`
    interrupt_guard(std::initializer_list<int> signals) {
        static_assert(std::atomic<interrupt_guard*>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
                      "ckpt: interrupt_guard needs lock-free atomics to be async-signal-safe");
        for (int sig : signals) {
            if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP)
                throw error("cannot guard signal " + std::to_string(sig) + ": not a signal that can be caught");
            installed old{sig, {}, detail::signal_owner[sig].load()};
            struct sigaction action {};
            action.sa_handler = &interrupt_guard::on_signal;
            sigemptyset(&action.sa_mask);
            action.sa_flags = SA_RESTART;  // a signal must not make the training's own I/O fail with EINTR
            // Own the signal before the handler can run, so that it always finds its guard.
            detail::signal_owner[sig].store(this);
            if (::sigaction(sig, &action, &old.action) != 0) {
                detail::signal_owner[sig].store(old.owner);
                restore();
                throw error("cannot install a handler for signal " + std::to_string(sig) + ": " + std::strerror(errno));
            }
            installed_.push_back(old);
        }
    }
    interrupt_guard(const interrupt_guard&) = delete;
    interrupt_guard& operator=(const interrupt_guard&) = delete;
    ~interrupt_guard() { restore(); }

    /// True once a guarded signal arrived: save at this step boundary and stop.
    bool requested() const noexcept { return signal_.load() != 0; }
    /// The signal that made the request (SIGTERM, ...), or 0.
    int signal() const noexcept { return signal_.load(); }
    /// Forgets the request; the next signal is a first one again.
    void clear() noexcept { signal_.store(0); }

private:
    struct installed {
        int sig;
        struct sigaction action;
        interrupt_guard* owner;
    };

    static void on_signal(int sig) {
        const int saved_errno = errno;
        interrupt_guard* guard = detail::signal_owner[sig].load();
        if (guard) {
            int none = 0;
            if (!guard->signal_.compare_exchange_strong(none, sig) && none == sig) guard->fall_through(sig);
        }
        errno = saved_errno;
    }

    // The second signal of a kind: give the signal back to what was there before, and deliver it.
    void fall_through(int sig) {
        for (const auto& i : installed_) {
            if (i.sig != sig) continue;
            detail::signal_owner[sig].store(i.owner);
            ::sigaction(sig, &i.action, nullptr);
            ::raise(sig);
            return;
        }
    }

    void restore() noexcept {
        for (auto it = installed_.rbegin(); it != installed_.rend(); ++it) {
            ::sigaction(it->sig, &it->action, nullptr);
            detail::signal_owner[it->sig].store(it->owner);
        }
        installed_.clear();
    }

    std::atomic<int> signal_{0};
    std::vector<installed> installed_;
};

}  // namespace ckpt
