#pragma once
// ckpt::mpi::detail::communicator: every MPI call ckpt makes goes through it, and every one's
// return code is checked: a failed call throws ckpt::io_error naming the call and MPI's message.
//
// Whether a failed call returns at all is the communicator's error handler's choice. On the
// caller's communicator ckpt leaves the handler as the caller set it (MPI_ERRORS_ARE_FATAL by
// default: MPI aborts the job, as before); on the duplicate ckpt makes for itself (duplicate(),
// the background thread's under MPI_THREAD_MULTIPLE) it sets MPI_ERRORS_RETURN, so a failure
// there becomes ckpt's error. A call that fails on every rank (a bad argument, a broken
// communicator) throws on every rank; the failed communication cannot itself carry the news to
// ranks where the call succeeded.

#include <chrono>
#include <climits>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <ckpt/error.hpp>
#include <ckpt/detail/format/layout.hpp>
#include <ckpt/mpi/detail/failure.hpp>
#include <ckpt/mpi/detail/mpi_h.hpp>

namespace ckpt::mpi::detail {

/// The few collectives a sharded save and restore need, over one communicator. agree() is the one
/// decision point: every rank passes its outcome, every rank gets the same answer. (A
/// checkpoint_manager over MPI needs exactly this too: all(), broadcast() and agree().)
class communicator {
public:
    explicit communicator(MPI_Comm comm) : comm_(comm) {
        check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
        check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    }
    MPI_Comm get() const noexcept { return comm_; }
    int rank() const noexcept { return rank_; }
    int size() const noexcept { return size_; }

    /// How many of the communicator's ranks run on this rank's machine (share its memory).
    /// Collective.
    int ranks_on_this_machine() const {
        MPI_Comm local = MPI_COMM_NULL;
        check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
        int n = 1;
        const int sized = MPI_Comm_size(local, &n);
        check(MPI_Comm_free(&local), "MPI_Comm_free");
        check(sized, "MPI_Comm_size");
        return n;
    }

    /// Every rank's bytes, in rank order.
    std::vector<std::string> allgather(const std::string& mine) const {
        const int n = static_cast<int>(mine.size());
        std::vector<int> counts(ckpt::detail::to_size(size_)), displs(ckpt::detail::to_size(size_));
        check(MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_), "MPI_Allgather");
        long long total = 0;
        for (int r = 0; r < size_; ++r) {
            displs[ckpt::detail::to_size(r)] = static_cast<int>(total);
            total += counts[ckpt::detail::to_size(r)];
        }
        if (total > INT32_MAX)
            throw error("the ranks' block descriptions exceed 2 GiB: too many entries for one exchange");
        std::string all(ckpt::detail::to_size(total), '\0');
        check(MPI_Allgatherv(mine.data(), n, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, comm_),
              "MPI_Allgatherv");
        std::vector<std::string> out;
        for (int r = 0; r < size_; ++r)
            out.push_back(all.substr(ckpt::detail::to_size(displs[ckpt::detail::to_size(r)]),
                                     ckpt::detail::to_size(counts[ckpt::detail::to_size(r)])));
        return out;
    }

    /// Every rank's `count` words, in rank order, into `all`; `meanwhile()` runs while they travel.
    template <class F>
    void allgather_during(const std::uint64_t* mine, int count, std::uint64_t* all, F&& meanwhile) const {
        MPI_Request request = MPI_REQUEST_NULL;
        check(MPI_Iallgather(mine, count, MPI_UINT64_T, all, count, MPI_UINT64_T, comm_, &request), "MPI_Iallgather");
        std::forward<F>(meanwhile)();
        check(MPI_Wait(&request, MPI_STATUS_IGNORE), "MPI_Wait");
    }

    /// `root`'s bytes on every rank.
    std::string broadcast(std::string bytes, int root) const {
        unsigned long long n = bytes.size();
        check(MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, root, comm_), "MPI_Bcast");
        bytes.resize(ckpt::detail::to_size(n));
        if (n) check(MPI_Bcast(bytes.data(), static_cast<int>(n), MPI_BYTE, root, comm_), "MPI_Bcast");
        return bytes;
    }

    /// True on every rank when `mine` is true on every rank.
    bool all(bool mine) const {
        int in = mine ? 1 : 0, out = 0;
        check(MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MIN, comm_), "MPI_Allreduce");
        return out == 1;
    }

    /// The bitwise OR of every rank's `mine`, on every rank.
    std::uint64_t bitwise_or(std::uint64_t mine) const {
        unsigned long long in = mine, out = 0;
        check(MPI_Allreduce(&in, &out, 1, MPI_UNSIGNED_LONG_LONG, MPI_BOR, comm_), "MPI_Allreduce");
        return out;
    }

    /// Every rank passes its outcome; when any failed, every rank gets the failure of the lowest
    /// failing rank, its message naming that rank and `during`.
    failure agree(const failure& mine, const std::string& during) const {
        const int kind = static_cast<int>(mine.kind);
        std::vector<int> kinds(ckpt::detail::to_size(size_));
        check(MPI_Allgather(&kind, 1, MPI_INT, kinds.data(), 1, MPI_INT, comm_), "MPI_Allgather");
        int failed = -1;
        for (int r = 0; r < size_ && failed < 0; ++r)
            if (kinds[ckpt::detail::to_size(r)] != failure::none) failed = r;
        if (failed < 0) return {};
        ckpt::detail::index_builder out;
        if (rank_ == failed) encode_failure(out, mine);
        const std::string bytes = broadcast(out.bytes(), failed);
        ckpt::detail::index_parser in(bytes, {});
        return blame(decode_failure(in), failed, size_, during);
    }

    /// Returns once every rank has called it.
    void barrier() const { check(MPI_Barrier(comm_), "MPI_Barrier"); }

    /// A barrier polled between sleeps: a blocking collective spins while it waits for the slowest
    /// rank, which on a background thread would take a core from the training.
    void arrive() const {
        MPI_Request request = MPI_REQUEST_NULL;
        check(MPI_Ibarrier(comm_, &request), "MPI_Ibarrier");
        for (int done = 0;;) {
            check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
            if (done) return;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    }

    /// A duplicate of this communicator for ckpt's own use, whose failed calls return (and throw
    /// here) rather than abort; free() it.
    communicator duplicate() const {
        MPI_Comm dup = MPI_COMM_NULL;
        check(MPI_Comm_dup(comm_, &dup), "MPI_Comm_dup");
        communicator c(dup, rank_, size_);
        check(MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
        return c;
    }
    /// Frees a duplicate; from a destructor, where a failure is not worth throwing: false then.
    bool free() noexcept {
        if (comm_ == MPI_COMM_NULL) return true;
        return MPI_Comm_free(&comm_) == MPI_SUCCESS;
    }

    /// Whether MPI_Finalize was called (true also when MPI cannot say: then no MPI call is safe).
    static bool finalized() noexcept {
        int done = 0;
        return MPI_Finalized(&done) != MPI_SUCCESS || done != 0;
    }
    /// Whether MPI provides MPI_THREAD_MULTIPLE: any thread may make MPI calls.
    static bool thread_multiple() {
        int level = MPI_THREAD_SINGLE;
        check(MPI_Query_thread(&level), "MPI_Query_thread");
        return level == MPI_THREAD_MULTIPLE;
    }

    /// Throws io_error naming `call` and MPI's message for `code` unless it is MPI_SUCCESS.
    static void check(int code, const char* call) {
        if (code == MPI_SUCCESS) return;
        char text[MPI_MAX_ERROR_STRING] = {};
        int length = 0;
        std::string why = MPI_Error_string(code, text, &length) == MPI_SUCCESS
                              ? std::string(text, ckpt::detail::to_size(length))
                              : "MPI error " + std::to_string(code);
        throw io_error(std::string(call) + " failed: " + why, {});
    }

private:
    communicator(MPI_Comm comm, int rank, int size) : comm_(comm), rank_(rank), size_(size) {}

    MPI_Comm comm_;
    int rank_ = 0, size_ = 1;
};

}  // namespace ckpt::mpi::detail
