// The flagship example on many processes: data- and model-parallel training over MPI that survives
// SIGTERM, SIGUSR1 and kill -9 of any rank, and resumes bit for bit with the same command.
//
//   mpirun -np 4 train_resume_mpi [--dir DIR] [--steps N] [--save-every K] [--keep N] [--async] [--seed S]
//                                 [--print-every P] [--sleep-ms-per-step MS]
//                                 [--dump PATH] [--crash-during-save N] [--crash-rank R] [--crash-point write|commit]
//
// The MLP and the task of train_resume (mlp_training.hpp), trained on N ranks:
// - data-parallel: every rank reads its own shard of the data (samples s with s % N == rank) in its
//   own shuffled order, with its own random engine: per-rank state (ckpt::track_per_rank). The
//   gradients of the replicated parameters are averaged with MPI_Allreduce; those parameters and
//   their Adam moments are the same on every rank (ckpt::track: stored once, compared at each save).
// - model-parallel: the first layer's weight matrix [64,16] and its Adam moments are split by rows
//   over the ranks (ckpt::track_shard; 64 rows over 3 ranks is 21, 21, 22). Each rank multiplies
//   its rows with the inputs of every rank's batch, and the products are gathered (MPI_Allgatherv);
//   in the backward pass the gradient of that product is gathered, and each rank forms the
//   gradient of its own rows.
//
// Checkpointed by a checkpoint_manager over the ckpt::mpi::checkpoint: every K steps, and when any
// rank gets SIGTERM, SIGINT or SIGUSR1 (the interrupt guard's request is combined over the ranks
// in the manager's save_if_due, so every rank saves the same step, and every rank stops after it).
// An interrupted run prints `interrupted at step S; saved PATH` and every rank exits with status
// 75: run the same command again to resume. Killed outright (kill -9 of any rank; mpirun then ends
// the others), even in the middle of a save, it resumes from the last complete checkpoint. Either
// way the rerun on the same number of ranks prints the final_digest of a run that was never
// interrupted: a hash of the global model and optimizer state (the sharded rows gathered), as
// train_resume prints it.
//
// On another number of ranks it resumes too: the replicated state and the step restore as saved,
// the sharded rows are re-split by the library, and the data positions, which belong to the old
// ranks, are carried over by hand: the samples that no old rank has read yet in its epoch are dealt
// out to the new ranks (read with ckpt::reader::read_rank). Every resume prints `restored_digest=`,
// the digest of the global state restored, and an interrupted run `saved_digest=`: on any number of
// ranks the two are equal, the global tensors restored are the ones saved. --dump PATH saves the
// state as restored (a sharded checkpoint of this run's ranks) to PATH and stops, for `ckpt diff`
// to compare with the checkpoint it came from. The continuation is not bit-identical to a run that
// stayed on the old number of ranks: the batches differ and the reductions sum in another order.
//
// For a given number of ranks the run is deterministic: fixed seeds per rank, one thread per rank
// for Eigen, and the same values reduced in the same order at every step. On one rank it computes
// exactly what train_resume computes (the same final_digest).
//
// --async saves in the manager's asynchronous mode: every rank copies its state and trains on while
// a background thread writes its file; the ranks then agree and the checkpoint is committed on that
// thread if MPI provides MPI_THREAD_MULTIPLE (requested), else from the training thread at the next
// save or wait(). An interrupted run waits for the commit before it says it saved.
//
// Open MPI's mpirun answers a SIGTERM of its own with SIGCONT to every rank, SIGTERM
// odls_base_sigkill_timeout seconds later (1 by default) and SIGKILL as long again after that: the
// ranks have that long to reach the next step and save (OMPI_MCA_odls_base_sigkill_timeout=10
// gives them more). SIGUSR1 mpirun forwards at once and nothing follows; SLURM signals every task
// itself. A rank killed before the save completed is the kill -9 case: the previous checkpoint is
// resumed.
//
// Testing aids: --sleep-ms-per-step slows the loop so that a signal lands mid-run;
// --crash-during-save N makes rank R (--crash-rank, default 0) SIGKILL itself in the Nth save:
// halfway through writing its file of the checkpoint (--crash-point write, the default), or, on the
// rank that keeps the manager's state file (0), once the checkpoint is committed but before the
// state file lists it (--crash-point commit).

#include <ckpt/ckpt.hpp>
#include <ckpt/mpi.hpp>
#include <ckpt/testing.hpp>

#include <algorithm>
#include <cstdarg>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mlp_fields.hpp"

namespace {

constexpr int features = 16, hidden = 64, classes = 4, batch = 32;  // batch: per rank

struct options {
    std::string dir = "train_resume_mpi_ckpts";
    std::int64_t steps = 2000, save_every = 100;
    std::size_t keep = 3;
    bool async = false;
    std::uint64_t seed = 1;
    std::int64_t print_every = 100;
    int sleep_ms = 0;
    int crash_during_save = 0, crash_rank = 0;
    std::string crash_point = "write";
    std::string dump;
};

[[noreturn]] void usage(int rank, const char* error) {
    if (rank == 0)
        std::fprintf(stderr,
                     "train_resume_mpi: %s\nusage: mpirun -np N train_resume_mpi [--dir DIR] [--steps N] "
                     "[--save-every K] [--keep N] [--async] [--seed S]\n"
                     "                    [--print-every P] [--sleep-ms-per-step MS] [--crash-during-save N] "
                     "[--crash-rank R]\n"
                     "                    [--crash-point write|commit] [--dump PATH]\n",
                     error);
    MPI_Finalize();
    std::exit(2);
}

options parse(int argc, char** argv, int rank) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(rank, ("missing value for " + a).c_str());
            return argv[++i];
        };
        try {
            if (a == "--dir")
                o.dir = value();
            else if (a == "--steps")
                o.steps = std::stoll(value());
            else if (a == "--save-every")
                o.save_every = std::stoll(value());
            else if (a == "--keep")
                o.keep = std::stoul(value());
            else if (a == "--async")
                o.async = true;
            else if (a == "--seed")
                o.seed = std::stoull(value());
            else if (a == "--print-every")
                o.print_every = std::stoll(value());
            else if (a == "--sleep-ms-per-step")
                o.sleep_ms = std::stoi(value());
            else if (a == "--crash-during-save")
                o.crash_during_save = std::stoi(value());
            else if (a == "--crash-rank")
                o.crash_rank = std::stoi(value());
            else if (a == "--crash-point")
                o.crash_point = value();
            else if (a == "--dump")
                o.dump = value();
            else if (a == "--help" || a == "-h")
                usage(rank, "help");
            else
                usage(rank, ("unknown argument " + a).c_str());
        } catch (const std::logic_error&) {
            usage(rank, ("bad value for " + a).c_str());
        }
    }
    if (o.steps < 0 || o.save_every <= 0 || o.keep == 0 || o.print_every <= 0) usage(rank, "counts must be positive");
    if (o.crash_point != "write" && o.crash_point != "commit") usage(rank, "--crash-point is write or commit");
    return o;
}

// --crash-during-save N: die by SIGKILL at the second write into this rank's file of the Nth save
// (each save creates one file named rank-<r> in the checkpoint's temporary directory), or when the
// manager has the Nth checkpoint committed and is about to record it.
int saves_started = 0, writes_in_save = 0, saves_committed = 0;
int crash_during_save = 0;
int crash_on_write(ckpt::testing::io_op op, const std::filesystem::path& path) {
    if (op == ckpt::testing::io_op::create && path.filename().string().rfind("rank-", 0) == 0) {
        ++saves_started;
        writes_in_save = 0;
    }
    if (op == ckpt::testing::io_op::write && saves_started == crash_during_save && ++writes_in_save == 2)
        ::raise(SIGKILL);
    return 0;
}
void crash_on_commit(ckpt::testing::manager_point p) {
    if (p == ckpt::testing::manager_point::written && ++saves_committed == crash_during_save) ::raise(SIGKILL);
}

int world_rank = 0;

/// printf on rank 0, which speaks for all.
__attribute__((format(printf, 1, 2))) void say(const char* format, ...) {
    if (world_rank != 0) return;
    std::va_list args;
    va_start(args, format);
    std::vprintf(format, args);
    va_end(args);
    std::fflush(stdout);
}

/// This rank's rows of a matrix of `total` rows split over `ranks` ranks: the first row and the count.
struct row_block {
    int first, count;
};
row_block rows_of(int rank, int ranks, int total) {
    const auto at = [&](int r) { return static_cast<int>(static_cast<long long>(total) * r / ranks); };
    return {at(rank), at(rank + 1) - at(rank)};
}

using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Every rank's row block of a [total, cols] matrix, stacked in rank order on every rank (collective).
Eigen::MatrixXf gather_rows(const Eigen::MatrixXf& mine, int total, MPI_Comm comm) {
    int ranks = 1;
    MPI_Comm_size(comm, &ranks);
    const auto cols = static_cast<int>(mine.cols());
    std::vector<int> counts(static_cast<std::size_t>(ranks)), displs(counts.size());
    for (int r = 0; r < ranks; ++r) {
        const auto b = rows_of(r, ranks, total);
        counts[static_cast<std::size_t>(r)] = b.count * cols;
        displs[static_cast<std::size_t>(r)] = b.first * cols;
    }
    const row_major block = mine;  // rows contiguous, so a row block is one span of the whole
    row_major all(total, cols);
    MPI_Allgatherv(block.data(), static_cast<int>(block.size()), MPI_FLOAT, all.data(), counts.data(), displs.data(),
                   MPI_FLOAT, comm);
    return all;
}

/// The training state of one rank. Replicated: the same on every rank. Sharded: this rank's rows.
struct state {
    demo::mlp model;                     // sharded: model.hidden.kernel holds this rank's rows only
    demo::adam optimizer;                // the moments of hidden.bias, out.kernel and out.bias (m[0..2], v[0..2])
    Eigen::MatrixXf kernel_m, kernel_v;  // sharded: the Adam moments of this rank's rows of hidden.kernel
    demo::data_cursor data;              // per rank: the global sample indices of this rank's epoch, and the position
    std::mt19937_64 rng;                 // per rank: shuffles this rank's shard at each epoch
    std::int64_t step = 0;
};

/// The global model and optimizer, the sharded rows gathered (collective), and train_resume's digest of them.
struct global_view {
    demo::mlp model;
    demo::adam optimizer;
};
global_view gather(const state& s, MPI_Comm comm) {
    global_view g{s.model, s.optimizer};
    g.model.hidden.kernel = gather_rows(s.model.hidden.kernel, hidden, comm);
    g.optimizer.m.insert(g.optimizer.m.begin(), gather_rows(s.kernel_m, hidden, comm));
    g.optimizer.v.insert(g.optimizer.v.begin(), gather_rows(s.kernel_v, hidden, comm));
    return g;
}
std::uint64_t global_digest(const state& s, MPI_Comm comm) {
    const auto g = gather(s, comm);
    return demo::digest(g.model, g.optimizer);
}

/// Every rank initializes the whole model from the seed (the same on any number of ranks) and keeps its rows.
void initialize(state& s, std::uint64_t seed, row_block mine) {
    demo::init_model(s.model, s.optimizer, seed, features, hidden, classes);
    s.model.hidden.kernel = Eigen::MatrixXf(s.model.hidden.kernel.middleRows(mine.first, mine.count));
    s.kernel_m = s.optimizer.m.front().middleRows(mine.first, mine.count);
    s.kernel_v = s.optimizer.v.front().middleRows(mine.first, mine.count);
    s.optimizer.m.erase(s.optimizer.m.begin());  // what remains is replicated
    s.optimizer.v.erase(s.optimizer.v.begin());
}

/// Starts this rank's next epoch: its shard of the data (s % ranks == rank) in a new shuffled order.
void next_epoch(demo::data_cursor& c, std::mt19937_64& rng, std::int64_t samples, int rank, int ranks) {
    if (!c.order.empty()) ++c.epoch;
    c.order.clear();
    for (std::int64_t s = rank; s < samples; s += ranks) c.order.push_back(s);
    demo::shuffle(c.order, rng);
    c.index = 0;
}

struct step_result {
    float loss, accuracy;  // over the batches of all ranks
};

/// One step of data- and model-parallel Adam (collective).
step_result train_step(state& s, const demo::dataset& data, int rank, int ranks, MPI_Comm comm) {
    const auto samples = static_cast<std::int64_t>(data.label.size());
    auto& c = s.data;
    if (c.order.empty() || c.index + batch > static_cast<std::int64_t>(c.order.size()))
        next_epoch(c, s.rng, samples, rank, ranks);
    Eigen::MatrixXf x(features, batch);
    std::vector<std::int32_t> y(batch);
    for (int b = 0; b < batch; ++b) {
        const auto sample = c.order[static_cast<std::size_t>(c.index + b)];
        x.col(b) = data.x.col(sample);
        y[static_cast<std::size_t>(b)] = data.label[static_cast<std::size_t>(sample)];
    }
    c.index += batch;

    // Model-parallel first layer: my rows times every rank's inputs, the products gathered.
    const auto mine = rows_of(rank, ranks, hidden);
    Eigen::MatrixXf x_all(features, batch * ranks);  // rank r's batch in columns [r*batch, (r+1)*batch)
    MPI_Allgather(x.data(), features * batch, MPI_FLOAT, x_all.data(), features * batch, MPI_FLOAT, comm);
    const Eigen::MatrixXf z_all = gather_rows(s.model.hidden.kernel * x_all, hidden, comm);

    // Data-parallel rest, on my batch's columns: as demo::train_step.
    Eigen::MatrixXf z1 = z_all.middleCols(rank * batch, batch);
    z1.colwise() += s.model.hidden.bias;
    const Eigen::MatrixXf h = z1.cwiseMax(0.0f);
    Eigen::MatrixXf logits = s.model.out.kernel * h;
    logits.colwise() += s.model.out.bias;
    Eigen::MatrixXf p(classes, batch);
    float loss = 0;
    int correct = 0;
    for (int b = 0; b < batch; ++b) {
        Eigen::Index argmax = 0;
        const float top = logits.col(b).maxCoeff(&argmax);
        p.col(b) = (logits.col(b).array() - top).exp();
        p.col(b) /= p.col(b).sum();
        const auto label = y[static_cast<std::size_t>(b)];
        loss -= std::log(std::max(p(label, b), 1e-12f));
        correct += argmax == label;
        p(label, b) -= 1.0f;
    }
    const float inv = 1.0f / static_cast<float>(batch);
    const Eigen::MatrixXf d_logits = p * inv;
    const Eigen::MatrixXf d_h =
        (s.model.out.kernel.transpose() * d_logits).cwiseProduct((z1.array() > 0.0f).cast<float>().matrix());

    // The replicated parameters' gradients (and the loss and hit count), summed over the ranks in
    // one MPI_Allreduce: the same values in the same order every run, so the same bits.
    const Eigen::Index n_hb = hidden, n_ok = classes * hidden, n_ob = classes;
    std::vector<float> sums(static_cast<std::size_t>(n_hb + n_ok + n_ob + 2));
    Eigen::Map<Eigen::VectorXf>(sums.data(), n_hb) = d_h.rowwise().sum();
    Eigen::Map<Eigen::MatrixXf>(sums.data() + n_hb, classes, hidden) = d_logits * h.transpose();
    Eigen::Map<Eigen::VectorXf>(sums.data() + n_hb + n_ok, n_ob) = d_logits.rowwise().sum();
    sums[static_cast<std::size_t>(n_hb + n_ok + n_ob)] = loss * inv;
    sums[static_cast<std::size_t>(n_hb + n_ok + n_ob + 1)] = static_cast<float>(correct);
    MPI_Allreduce(MPI_IN_PLACE, sums.data(), static_cast<int>(sums.size()), MPI_FLOAT, MPI_SUM, comm);
    const float mean = 1.0f / static_cast<float>(ranks);
    for (auto& v : sums) v *= mean;

    // The sharded rows' gradient: the gradient of the product, gathered from every rank's batch
    // (rank r's columns contiguous in column-major order), times the inputs, my rows only.
    Eigen::MatrixXf d_z_all(hidden, batch * ranks);
    MPI_Allgather(d_h.data(), hidden * batch, MPI_FLOAT, d_z_all.data(), hidden * batch, MPI_FLOAT, comm);
    const Eigen::MatrixXf d_kernel_rows = (d_z_all.middleRows(mine.first, mine.count) * x_all.transpose()) * mean;

    // Adam, as demo::train_step: each rank updates the replicated parameters alike and its own rows.
    auto& opt = s.optimizer;
    ++opt.iterations;
    const float t = static_cast<float>(opt.iterations);
    const float correction = std::sqrt(1.0f - std::pow(opt.beta2, t)) / (1.0f - std::pow(opt.beta1, t));
    auto update = [&](auto& param, const float* grad, Eigen::MatrixXf& m, Eigen::MatrixXf& v) {
        Eigen::Map<const Eigen::MatrixXf> g(grad, param.rows(), param.cols());
        m = opt.beta1 * m + (1.0f - opt.beta1) * g;
        v = opt.beta2 * v + (1.0f - opt.beta2) * g.cwiseProduct(g);
        Eigen::Map<Eigen::MatrixXf> w(param.data(), param.rows(), param.cols());
        w.array() -= opt.lr * correction * m.array() / (v.array().sqrt() + opt.eps);
    };
    update(s.model.hidden.kernel, d_kernel_rows.data(), s.kernel_m, s.kernel_v);
    update(s.model.hidden.bias, sums.data(), opt.m[0], opt.v[0]);
    update(s.model.out.kernel, sums.data() + n_hb, opt.m[1], opt.v[1]);
    update(s.model.out.bias, sums.data() + n_hb + n_ok, opt.m[2], opt.v[2]);
    return {sums[static_cast<std::size_t>(n_hb + n_ok + n_ob)],
            sums[static_cast<std::size_t>(n_hb + n_ok + n_ob + 1)] * inv};
}

/// Resumes a checkpoint that another number of ranks saved. Everything but the per-rank state
/// restores as saved (the shards re-split to this run's rows); the data positions are rebuilt:
/// the samples no old rank has read yet in its epoch are dealt out to the new ranks in turn,
/// and each rank's engine is seeded anew. Returns how many samples were dealt out.
std::size_t resume_resized(ckpt::any_checkpoint& ck, state& s, const std::filesystem::path& saved, std::uint64_t seed,
                           int rank, int ranks) {
    const auto restored = ck.restore(saved, ckpt::partial);
    for (const auto& missing : restored.missing())
        if (missing != "data" && missing != "rng")
            throw ckpt::mismatch_error("the checkpoint lacks '" + missing + "'", saved, missing);
    ckpt::reader old(saved);
    std::vector<std::int64_t> left;
    std::int64_t epoch = 0;
    for (std::uint32_t r = 0; r < old.ranks(); ++r) {
        demo::data_cursor c;
        old.read_rank(r, "data", c);
        if (r == 0) epoch = c.epoch;
        for (auto i = static_cast<std::size_t>(c.index); i < c.order.size(); ++i) left.push_back(c.order[i]);
    }
    s.data = {};
    for (std::size_t i = static_cast<std::size_t>(rank); i < left.size(); i += static_cast<std::size_t>(ranks))
        s.data.order.push_back(left[i]);
    // With nothing dealt to it, the rank starts its next epoch at the next step (next_epoch counts
    // an epoch only when it ends one).
    s.data.epoch = s.data.order.empty() ? epoch + 1 : epoch;
    std::seed_seq engine_seed{seed, static_cast<std::uint64_t>(rank), static_cast<std::uint64_t>(ranks),
                              static_cast<std::uint64_t>(s.step)};
    s.rng.seed(engine_seed);
    return left.size();
}

/// The run on this rank (collective throughout); returns the exit status: 0 done, 75 interrupted.
int train(const options& opt, int rank, int ranks) {
    const demo::dataset data = demo::make_dataset(opt.seed, 4096, features, classes);
    const row_block mine = rows_of(rank, ranks, hidden);
    state s;
    s.rng.seed(opt.seed + 1 + static_cast<std::uint64_t>(rank));  // each rank its own engine
    // The shards must have their block's shape before a restore: the initial model gives it.
    initialize(s, opt.seed, mine);

    const ckpt::shape kernel_shape{hidden, features}, my_offset{static_cast<std::uint64_t>(mine.first), 0};
    ckpt::mpi::checkpoint ck{MPI_COMM_WORLD,
                             // Model-parallel: this rank's rows of the first layer and of its Adam moments.
                             ckpt::track_shard("model/hidden/kernel", s.model.hidden.kernel, kernel_shape, my_offset),
                             ckpt::track_shard("optimizer_shard/m", s.kernel_m, kernel_shape, my_offset),
                             ckpt::track_shard("optimizer_shard/v", s.kernel_v, kernel_shape, my_offset),
                             // Replicated: the same on every rank, written once.
                             ckpt::track("model/hidden/bias", s.model.hidden.bias),
                             ckpt::track("model/out", s.model.out), ckpt::track("optimizer", s.optimizer),
                             ckpt::track("step", s.step),
                             // Per rank: where this rank is in its data, and its engine.
                             ckpt::track_per_rank("data", s.data), ckpt::track_per_rank("rng", s.rng)};

    // The guard first: a signal that arrives while the manager restores is kept for the loop.
    // Shared by the ranks from the start: its request is the one they agree on at each
    // save_if_due, never one rank's alone.
    ckpt::interrupt_guard guard{ck.coordination(), {SIGTERM, SIGINT, SIGUSR1}};
    std::optional<ckpt::checkpoint_manager> manager;
    if (opt.async)
        manager.emplace(ck, opt.dir, ckpt::keep_last(opt.keep), ckpt::save_every_n_steps(opt.save_every),
                        ckpt::asynchronous);
    else
        manager.emplace(ck, opt.dir, ckpt::keep_last(opt.keep), ckpt::save_every_n_steps(opt.save_every));

    const auto latest = manager->latest_checkpoint();
    const std::uint32_t saved_by = latest ? ckpt::reader(*latest).ranks() : 0;
    if (latest && saved_by != static_cast<std::uint32_t>(ranks)) {
        const auto dealt = resume_resized(ck, s, *latest, opt.seed, rank, ranks);
        say("resumed from %s at step %lld: saved by %u ranks, restored on %d; the shards re-split, %zu unread "
            "samples of the epoch dealt out again\n",
            latest->c_str(), static_cast<long long>(s.step), saved_by, ranks, dealt);
        const auto d = global_digest(s, MPI_COMM_WORLD);
        say("restored_digest=%016llx\n", static_cast<unsigned long long>(d));
    } else if (auto from = manager->restore_or_initialize([&] { initialize(s, opt.seed, mine); })) {
        say("resumed from %s at step %lld on %d ranks\n", from->c_str(), static_cast<long long>(s.step), ranks);
        const auto d = global_digest(s, MPI_COMM_WORLD);
        say("restored_digest=%016llx\n", static_cast<unsigned long long>(d));
    } else {
        say("starting from scratch on %d ranks (first layer split by rows: rank 0 has %d of %d)\n", ranks, mine.count,
            hidden);
    }

    if (!opt.dump.empty()) {
        const auto p = ck.save_as(opt.dump);
        say("dumped the state at step %lld to %s\n", static_cast<long long>(s.step), p.c_str());
        return 0;
    }

    while (s.step < opt.steps) {
        const auto r = train_step(s, data, rank, ranks, MPI_COMM_WORLD);
        ++s.step;
        if (s.step % opt.print_every == 0)
            say("step %lld loss %.4f batch accuracy %.3f epoch %lld\n", static_cast<long long>(s.step), r.loss,
                r.accuracy, static_cast<long long>(s.data.epoch));
        // Collective: combines every rank's interrupt request with the schedule, so all ranks
        // save at this step or none does, and afterwards all see guard.requested().
        const auto saved = manager->save_if_due(s.step, guard);
        if (guard.requested()) {
            manager->wait();  // committed before we say so
            const auto path = saved ? saved : manager->latest_checkpoint();
            const auto d = global_digest(s, MPI_COMM_WORLD);
            say("interrupted at step %lld; saved %s\nsaved_digest=%016llx\n", static_cast<long long>(s.step),
                path ? path->c_str() : "(nothing)", static_cast<unsigned long long>(d));
            return 75;  // EX_TEMPFAIL: run the same command again to resume
        }
        if (opt.sleep_ms) std::this_thread::sleep_for(std::chrono::milliseconds(opt.sleep_ms));
    }
    manager->save_if_due(s.step, true);  // the last step, unless the schedule saved it
    manager->wait();
    const auto g = gather(s, MPI_COMM_WORLD);
    say("accuracy %.3f after %lld steps on %d ranks\n", demo::evaluate(g.model, data), static_cast<long long>(s.step),
        ranks);
    say("final_digest=%016llx\n", static_cast<unsigned long long>(demo::digest(g.model, g.optimizer)));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // Asynchronous saves commit on their background thread when MPI allows calls from any thread;
    // with less, the library finishes each commit from this thread at the next save or wait().
    bool async = false;
    for (int i = 1; i < argc; ++i) async = async || std::string(argv[i]) == "--async";
    int provided = MPI_THREAD_SINGLE;
    if (async)
        MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    else
        MPI_Init(&argc, &argv);
    int rank = 0, ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    world_rank = rank;
    const options opt = parse(argc, argv, rank);
    Eigen::setNbThreads(1);  // bit-reproducible arithmetic
    if (opt.crash_during_save > 0 && rank == opt.crash_rank) {
        crash_during_save = opt.crash_during_save;
        if (opt.crash_point == "write")
            ckpt::testing::io_fault_injector = crash_on_write;
        else
            ckpt::testing::manager_test_hook = crash_on_commit;
    }
    if (async && provided < MPI_THREAD_MULTIPLE)
        say("asynchronous saves without MPI_THREAD_MULTIPLE: each commit finishes at the next save\n");

    int status = 0;
    try {
        status = train(opt, rank, ranks);
    } catch (const std::exception& e) {
        // The library's collective operations agree on their errors, so every rank usually
        // fails alike here; but a rank that fails alone must not leave the others waiting in a
        // collective forever: abort the job.
        std::fprintf(stderr, "train_resume_mpi: rank %d: %s\n", rank, e.what());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Finalize();
    return status;
}
