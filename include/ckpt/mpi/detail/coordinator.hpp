#pragma once
// ckpt::coordinator (ckpt/coordination.hpp) over an MPI communicator.

#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>
#include <utility>

#include <ckpt/coordination.hpp>
#include <ckpt/mpi/detail/communicator.hpp>
#include <ckpt/mpi/detail/failure.hpp>

namespace ckpt::mpi::detail {

/// ckpt::coordinator over a communicator: what a checkpoint_manager of a ckpt::mpi::checkpoint
/// takes its decisions through.
class mpi_coordinator final : public coordinator {
public:
    explicit mpi_coordinator(const communicator& comm) : comm_(comm) {}
    int rank() const noexcept override { return comm_.rank(); }
    int size() const noexcept override { return comm_.size(); }
    std::string share(std::string bytes) override { return comm_.broadcast(std::move(bytes), 0); }
    std::uint64_t combine(std::uint64_t mine) override { return comm_.bitwise_or(mine); }
    void agree(std::exception_ptr mine, const std::string& during, const std::filesystem::path& file) override {
        failure f;
        if (mine) {
            try {
                std::rethrow_exception(mine);
            } catch (...) {
                f = capture();
            }
        }
        if (auto any = comm_.agree(f, during)) raise(any, file);
    }

private:
    const communicator& comm_;
};

}  // namespace ckpt::mpi::detail
