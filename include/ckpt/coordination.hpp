#pragma once
// ckpt::coordinator: how the processes that save one checkpoint together take every decision once.
//
// A training run on many processes must never let them decide differently: one rank that saves
// while another does not leaves the others waiting forever in a collective. Every decision that
// could differ between processes (is a save due, which checkpoints to drop, which is the latest,
// whether to fall back past a damaged one, whether any process was asked to stop) is taken by the
// leader, or combined over all processes, through this interface.
//
// A checkpoint of one process has no coordinator (any_checkpoint::coordination() is null);
// ckpt::mpi::checkpoint has one over its communicator (ckpt/mpi.hpp). checkpoint_manager depends
// only on this interface, so nothing but ckpt/mpi.hpp knows of MPI.
//
// Every call is collective: every process makes the same calls in the same order.

#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>

namespace ckpt {

/// The processes that save one checkpoint together: `if (auto* c = ck.coordination()) leader = c->rank() == 0;`
class coordinator {
public:
    virtual ~coordinator() = default;

    /// This process's index, from 0 to size() - 1. Rank 0 leads: it owns the manager's state file,
    /// lock and deletions. `if (c.rank() == 0) write_state();`
    virtual int rank() const noexcept = 0;
    /// The number of processes: `c.size() == 4`
    virtual int size() const noexcept = 0;

    /// The leader's `bytes` on every process; the others' argument is ignored.
    /// `state = c.share(c.rank() == 0 ? encode(state) : std::string());`
    virtual std::string share(std::string bytes) = 0;

    /// The bitwise OR of every process's `mine`, on every process: one small collective that can
    /// carry several decisions at once. `bool any_asked = c.combine(asked ? 1 : 0) != 0;`
    virtual std::uint64_t combine(std::uint64_t mine) = 0;

    /// Every process passes the exception it caught, or null. When any process failed, every
    /// process throws the error of the lowest failing rank, of the same ckpt::error type, its
    /// message naming that rank and `during`; otherwise every process returns.
    /// `std::exception_ptr e; try { open(); } catch (...) { e = std::current_exception(); }
    ///  c.agree(e, "to open the checkpoint directory", dir);`
    virtual void agree(std::exception_ptr mine, const std::string& during, const std::filesystem::path& file) = 0;
};

}  // namespace ckpt
