// Data positions across a change in the number of ranks.
//
// Each rank reads its own queue of sample indices and remembers how far it got: per-rank state
// (ckpt::track_per_rank). Restarted on the same number of ranks, every rank takes back its own
// queue. Restarted on another number, a rank's old queue means nothing to the new ranks, so a strict
// restore refuses it; this program then restores the rest with ckpt::partial and rebuilds the queues
// itself: ckpt::reader reads every old rank's queue from the sharded checkpoint, the samples not yet
// consumed are dealt out again, and none is lost or read twice.
//
//   mpirun -np 4 redistribute_data_mpi --dir ckpts   # reads a few samples, saves
//   mpirun -np 3 redistribute_data_mpi --dir ckpts   # resumes on 3 ranks from the 4-rank checkpoint

#include <ckpt/ckpt.hpp>
#include <ckpt/mpi.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace {

constexpr std::int64_t dataset_size = 1000;

struct data_cursor {
    std::vector<std::int64_t> queue;  // the sample indices this rank reads, in order
    std::int64_t next = 0;            // how many of them it has read
};
CKPT_FIELDS(data_cursor, queue, next)

// Deals `samples` out to `ranks` ranks in turn; returns rank `rank`'s share.
std::vector<std::int64_t> deal(const std::vector<std::int64_t>& samples, int rank, int ranks) {
    std::vector<std::int64_t> mine;
    for (std::size_t i = static_cast<std::size_t>(rank); i < samples.size(); i += static_cast<std::size_t>(ranks))
        mine.push_back(samples[i]);
    return mine;
}

}  // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    std::filesystem::path dir = "ckpts";
    for (int i = 1; i + 1 < argc; ++i)
        if (std::string(argv[i]) == "--dir") dir = argv[i + 1];

    Eigen::VectorXf model = Eigen::VectorXf::Zero(8);  // replicated: the same on every rank
    data_cursor cursor;
    ckpt::mpi::checkpoint ck{MPI_COMM_WORLD, ckpt::track("model", model), ckpt::track_per_rank("data", cursor)};

    int status = 0;
    try {
        if (const auto latest = ckpt::latest_checkpoint(dir)) {
            ckpt::reader saved(*latest);
            if (saved.ranks() == static_cast<std::uint32_t>(ranks)) {
                ck.restore(*latest).assert_consumed();  // every rank takes back its own queue
            } else {
                const auto restored = ck.restore(*latest, ckpt::partial);  // "data" is left and listed in missing()
                // Every old rank's queue, read from the checkpoint: the samples nobody read yet.
                std::vector<char> consumed(static_cast<std::size_t>(dataset_size), 0);
                std::vector<std::int64_t> left;
                for (std::uint32_t old = 0; old < saved.ranks(); ++old) {
                    data_cursor c;
                    saved.read_rank(old, "data", c);
                    for (std::int64_t i = 0; i < c.next; ++i)
                        consumed[static_cast<std::size_t>(c.queue[static_cast<std::size_t>(i)])] = 1;
                }
                for (std::int64_t s = 0; s < dataset_size; ++s)
                    if (!consumed[static_cast<std::size_t>(s)]) left.push_back(s);
                cursor.queue = deal(left, rank, ranks);
                cursor.next = 0;
                if (rank == 0)
                    std::printf(
                        "resumed %s saved by %u ranks on %d ranks: %zu samples left dealt out again (missing: %s)\n",
                        latest->c_str(), saved.ranks(), ranks, left.size(), restored.missing().front().c_str());
            }
        } else {
            std::vector<std::int64_t> all(static_cast<std::size_t>(dataset_size));
            for (std::int64_t s = 0; s < dataset_size; ++s) all[static_cast<std::size_t>(s)] = s;
            cursor.queue = deal(all, rank, ranks);
        }

        // "Train": each rank reads a few samples (a different number on each) and updates the model alike.
        const std::int64_t reads = 5 + rank;
        std::int64_t sum = 0;
        for (std::int64_t i = 0; i < reads && cursor.next < static_cast<std::int64_t>(cursor.queue.size()); ++i)
            sum += cursor.queue[static_cast<std::size_t>(cursor.next++)];
        std::int64_t total = 0;
        MPI_Allreduce(&sum, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        model.array() += static_cast<float>(total % 97);

        // Every sample is read once or still queued once: check it across ranks.
        std::int64_t counts[2] = {cursor.next, static_cast<std::int64_t>(cursor.queue.size())}, sums[2] = {};
        MPI_Allreduce(counts, sums, 2, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        const auto path = ck.save(dir / "ckpt");
        if (rank == 0)
            std::printf("saved %s on %d ranks: %lld of the %lld queued samples read\n", path.c_str(), ranks,
                        static_cast<long long>(sums[0]), static_cast<long long>(sums[1]));
    } catch (const ckpt::error& e) {
        std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
        status = 1;
    }
    MPI_Finalize();
    return status;
}
