#pragma once
// ckpt::interrupt_guard: turns SIGTERM, SIGINT (and SIGUSR1, which SLURM's --signal sends before a
// job's time runs out) into a request the training loop sees at its next step boundary, where it
// can save and leave cleanly.
//
//   ckpt::interrupt_guard guard;                          // SIGTERM and SIGINT
//   for (; step < steps && !guard.requested(); ++step) { train(); mgr.save_if_due(step, guard); }
//
// The handler only stores into an atomic. A second signal of the same kind while a request is
// pending falls through to the behaviour that was there before the guard (pressing Ctrl-C twice
// still stops a stuck program). Destroying the guard restores the previous handlers exactly.
// Guards nest: an inner guard takes the signals while it lives (the outer one sees nothing of
// them) and gives them back to the outer one when destroyed. Create and destroy guards on one
// thread; signals may arrive on any.
//
// On many processes (ckpt::mpi::checkpoint, docs/distributed.md) a signal may reach one rank and
// not the others, or reach them at different steps; a rank that stopped alone would leave the
// others waiting forever in a collective. So a guard can be *shared*: its requested() and
// signal() then report the request as agreed by all ranks at the last
// checkpoint_manager::save_if_due(step, guard), not this process's own signal:
//   - a signal that any rank's guard had received when that rank entered the call makes every
//     rank's guard report the request once the call returns (and every rank saves at that step);
//   - a signal that arrives later (during the call or after it) is seen by every rank at the next
//     such call, never by one rank alone in between;
//   - signal() is the lowest signal number any rank received.
// A guard becomes shared when it is given to save_if_due of a manager over several processes, or
// from the start when made with the checkpoint's coordinator, which closes the window before the
// first save_if_due (`ckpt::interrupt_guard guard{ck.coordination()};`, recommended on many
// ranks). Until then, and always in one process (a null coordinator, or one of size 1), it reports
// this process's signal as described above. clear() on a shared guard must be called on every rank
// alike. A second signal of the same kind still falls through on the rank that receives it.
//
//   ckpt::interrupt_guard guard{ck.coordination(), {SIGTERM, SIGUSR1}};
//   for (; step < steps && !guard.requested(); ++step) { train(); mgr.save_if_due(step, guard); }

#include <atomic>
#include <csignal>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include <signal.h>

#include <ckpt/detail/config.hpp>
#include <ckpt/coordination.hpp>
#include <ckpt/error.hpp>

namespace ckpt {

class interrupt_guard;
class checkpoint_manager;

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
    interrupt_guard(std::initializer_list<int> signals);
    /// Guards the given signals, shared by the processes of `shared_with` from the start (see the
    /// top of this header); with a null coordinator, or one of one process, as the constructors above.
    /// `ckpt::interrupt_guard guard{ck.coordination(), {SIGTERM, SIGUSR1}};`
    explicit interrupt_guard(coordinator* shared_with, std::initializer_list<int> signals = {SIGTERM, SIGINT});
    interrupt_guard(const interrupt_guard&) = delete;
    interrupt_guard& operator=(const interrupt_guard&) = delete;
    ~interrupt_guard() { restore(); }

    /// True once a guarded signal arrived (on a shared guard: on any rank, as agreed at the last
    /// save_if_due): save at this step boundary and stop. `if (guard.requested()) break;`
    bool requested() const noexcept { return signal() != 0; }
    /// The signal that made the request (SIGTERM, ...), or 0; on a shared guard the lowest any
    /// rank received, as agreed at the last save_if_due. `if (guard.signal() == SIGUSR1) requeue();`
    int signal() const noexcept;
    /// Forgets the request; the next signal is a first one again. On a shared guard, call it on
    /// every rank alike. `guard.clear();`
    void clear() noexcept;

private:
    struct installed {
        int sig;
        struct sigaction action;
        interrupt_guard* owner;
    };

    static void on_signal(int sig);

    // The second signal of a kind: give the signal back to what was there before, and deliver it.
    void fall_through(int sig);

    void restore() noexcept;

    // A checkpoint_manager over several processes reads this process's signal and stores what
    // the ranks agreed on.
    friend class checkpoint_manager;
    static constexpr int unshared = -1;

    std::atomic<int> signal_{0};         // this process's request
    std::atomic<int> agreed_{unshared};  // a shared guard's request, as agreed across processes
    std::vector<installed> installed_;
};

}  // namespace ckpt

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt {

CKPT_INLINE interrupt_guard::interrupt_guard(std::initializer_list<int> signals) {
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

CKPT_INLINE interrupt_guard::interrupt_guard(coordinator* shared_with, std::initializer_list<int> signals)
    : interrupt_guard(signals) {
    if (shared_with && shared_with->size() > 1) agreed_.store(0);
}

CKPT_INLINE int interrupt_guard::signal() const noexcept {
    const int agreed = agreed_.load();
    return agreed == unshared ? signal_.load() : agreed;
}

CKPT_INLINE void interrupt_guard::clear() noexcept {
    signal_.store(0);
    if (agreed_.load() != unshared) agreed_.store(0);
}

CKPT_INLINE void interrupt_guard::on_signal(int sig) {
    const int saved_errno = errno;
    interrupt_guard* guard = detail::signal_owner[sig].load();
    if (guard) {
        int none = 0;
        if (!guard->signal_.compare_exchange_strong(none, sig) && none == sig) guard->fall_through(sig);
    }
    errno = saved_errno;
}

CKPT_INLINE void interrupt_guard::fall_through(int sig) {
    for (const auto& i : installed_) {
        if (i.sig != sig) continue;
        detail::signal_owner[sig].store(i.owner);
        ::sigaction(sig, &i.action, nullptr);
        ::raise(sig);
        return;
    }
}

CKPT_INLINE void interrupt_guard::restore() noexcept {
    for (auto it = installed_.rbegin(); it != installed_.rend(); ++it) {
        ::sigaction(it->sig, &it->action, nullptr);
        detail::signal_owner[it->sig].store(it->owner);
    }
    installed_.clear();
}

}  // namespace ckpt
#endif  // CKPT_HEADER_DEFINITIONS
