// Asynchronous saves of a ckpt::mpi::checkpoint, driven by async.cmake through mpirun: one
// scenario per invocation, every rank checks, and a failed check aborts the whole job (no rank
// waits forever in a collective; ctest sees a non-zero exit). The first argument picks the thread
// level MPI is initialised with, so each scenario runs both ways the commit can happen: on the
// background thread over the checkpoint's own communicator (multiple) or from the caller's thread
// at the next save, wait() or restore (single, funneled).
//
//   async --thread=<multiple|single|funneled> roundtrip <dir>   values, mutation after return, save+restore, save+save,
//                                                                 a rank's copy on the pool
//   async --thread=... failure <dir>     an injected I/O failure on one rank, seen on every rank
//   async --thread=... budget <dir>      under memory budgets (nothing, part, all copied; ranks differing;
//                                         divergence::off; a failure on the caller's thread)
//   async --thread=... divergent <dir>   diverged replicas refused at commit; warn commits
//   async --thread=... refused <dir>     a save refused before it returns (shards that do not tile)
//   async --thread=... measure <dir> <MiB per rank> <saves> [<budget MiB>]   blocked time of save_async vs
//                                                                            memcpy (prints)

#include <ckpt/ckpt.hpp>
#include <ckpt/mpi.hpp>
#include <ckpt/testing.hpp>

#include "support.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct model_t {
    Eigen::MatrixXf weights;
    std::vector<double> bias;
    std::map<std::string, int> vocab;
};
CKPT_FIELDS(model_t, weights, bias, vocab)

constexpr std::uint64_t emb_rows = 23, emb_cols = 5;

struct state {
    model_t model;
    Eigen::VectorXd optimizer;  // ~2.3 MiB: more than one checksum chunk
    std::int64_t cursor = 0;    // per rank
    Eigen::MatrixXf embedding;  // this rank's rows of a [23,5] tensor
    std::uint64_t emb_lo = 0;
};

std::uint64_t bound(std::uint64_t n, std::uint64_t parts, std::uint64_t p) {
    return n * p * (p + 1) / (parts * (parts + 1));
}

void fill(state& s, std::uint64_t seed) {
    s.model.weights.resize(37, 13);
    for (Eigen::Index i = 0; i < s.model.weights.size(); ++i)
        s.model.weights.data()[i] = fval(seed, 1, static_cast<std::uint64_t>(i));
    s.model.bias.resize(13);
    for (std::size_t i = 0; i < 13; ++i) s.model.bias[i] = dval(seed, 2, i);
    s.model.vocab = {{"a", static_cast<int>(seed)}, {"bb", 2}};
    s.optimizer.resize(300000);
    for (Eigen::Index i = 0; i < s.optimizer.size(); ++i) s.optimizer(i) = dval(seed, 3, static_cast<std::uint64_t>(i));
    s.cursor = static_cast<std::int64_t>(seed * 100 + static_cast<std::uint64_t>(world_rank));
    const auto r = static_cast<std::uint64_t>(world_rank), n = static_cast<std::uint64_t>(world_size);
    s.emb_lo = bound(emb_rows, n, r);
    s.embedding.resize(static_cast<Eigen::Index>(bound(emb_rows, n, r + 1) - s.emb_lo), emb_cols);
    for (Eigen::Index i = 0; i < s.embedding.rows(); ++i)
        for (Eigen::Index j = 0; j < s.embedding.cols(); ++j)
            s.embedding(i, j) =
                fval(seed, 10, (s.emb_lo + static_cast<std::uint64_t>(i)) * emb_cols + static_cast<std::uint64_t>(j));
}

template <class A, class B>
bool same_bits(const A& a, const B& b) {
    return a.size() == b.size() &&
           std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(*a.data())) == 0;
}

// The bytes of the tensors a rank copies for an asynchronous save of `s` (without a budget).
std::size_t state_bytes(const state& s) {
    return static_cast<std::size_t>(s.model.weights.size()) * sizeof(float) +
           static_cast<std::size_t>(s.optimizer.size()) * sizeof(double) +
           static_cast<std::size_t>(s.embedding.size()) * sizeof(float);
}

void check_values(const state& s, std::uint64_t seed, const char* what) {
    state want;
    fill(want, seed);
    CHECK(same_bits(s.model.weights, want.model.weights) && s.model.bias == want.model.bias &&
              s.model.vocab == want.model.vocab,
          "%s: model differs from seed %llu", what, static_cast<unsigned long long>(seed));
    CHECK(same_bits(s.optimizer, want.optimizer), "%s: optimizer differs from seed %llu", what,
          static_cast<unsigned long long>(seed));
    CHECK(s.cursor == want.cursor, "%s: cursor %lld, seed %llu", what, static_cast<long long>(s.cursor),
          static_cast<unsigned long long>(seed));
    CHECK(same_bits(s.embedding, want.embedding), "%s: embedding block differs from seed %llu", what,
          static_cast<unsigned long long>(seed));
}

auto make_checkpoint(state& s) {
    return ckpt::mpi::checkpoint{
        MPI_COMM_WORLD, ckpt::track("model", s.model), ckpt::track("optimizer", s.optimizer),
        ckpt::track_per_rank("cursor", s.cursor),
        ckpt::track_shard("embedding", s.embedding, ckpt::shape{emb_rows, emb_cols}, ckpt::shape{s.emb_lo, 0})};
}

bool has_temp(const fs::path& dir) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().filename().string().find(".ckpt-tmp.") != std::string::npos) return true;
    return false;
}
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Restores `file` into a fresh state with its own checkpoint and checks it holds seed's values.
void check_file(const fs::path& file, std::uint64_t seed) {
    state back;
    fill(back, 999);
    auto ck = make_checkpoint(back);
    ck.restore(file).assert_consumed();
    check_values(back, seed, file.c_str());
}

int provided_level = MPI_THREAD_SINGLE;

int roundtrip(const fs::path& dir) {
    state s;
    fill(s, 1);
    auto ck = make_checkpoint(s);
    // Returns once copied: the objects change at once, and the save keeps the values of its call.
    const auto p1 = ck.save_async(dir / "ckpt", {1, {}, {}});
    CHECK(p1 == dir / "ckpt-1", "saved to %s", p1.c_str());
    fill(s, 2);
    // The caller's own collectives meanwhile, on the same communicator (with MPI_THREAD_MULTIPLE
    // the background thread's run on the checkpoint's duplicate, concurrently).
    long long sum = 0, one = 1;
    MPI_Allreduce(&one, &sum, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    CHECK(sum == world_size, "allreduce");
    if (provided_level != MPI_THREAD_MULTIPLE)
        CHECK(ck.save_in_progress() && !fs::exists(p1), "without MPI_THREAD_MULTIPLE the commit waits for wait()");
    ck.wait();
    CHECK(!ck.save_in_progress() && fs::is_regular_file(p1 / "manifest"), "not committed after wait()");
    CHECK(!has_temp(dir) && ckpt::latest_checkpoint(dir) == p1, "latest after wait");
    CHECK(ck.save_counter() == 1, "save counter %llu", static_cast<unsigned long long>(ck.save_counter()));
    check_file(p1, 1);
    check_values(s, 2, "objects after the save");
    CHECK(ck.async_memory() >= state_bytes(s), "the copies keep %zu bytes", ck.async_memory());

    // save_async then at once another save_async: the second waits for (and commits) the first.
    const auto p2 = ck.save_async(dir / "ckpt", {2, {}, {}});
    fill(s, 3);
    const auto p3 = ck.save_async(dir / "ckpt", {3, {}, {}});
    fill(s, 4);
    CHECK(p2 == dir / "ckpt-2" && p3 == dir / "ckpt-3", "names %s %s", p2.c_str(), p3.c_str());
    CHECK(fs::is_regular_file(p2 / "manifest"), "the second save_async did not commit the first");
    // ... then at once a restore: it waits for (and commits) the save, then restores it.
    const auto status = ck.restore(p3);
    CHECK(status.metadata().step == 3 && ck.save_counter() == 3, "restore after save_async");
    check_values(s, 3, "restored right after save_async");
    check_file(p2, 2);

    // The layout changes between saves (a replicated vector grows): the plan is made again.
    fill(s, 4);
    s.model.bias.resize(5000, 0.75);
    const auto grown = ck.write_async(dir / "grown");
    s.model.bias.assign(3, 0.0);
    ck.wait();
    {
        model_t back;
        ckpt::reader(grown).read("model", back);
        CHECK(back.bias.size() == 5000 && back.bias[4999] == 0.75 && back.bias[0] == dval(4, 2, 0),
              "the grown vector was not saved as it was");
    }

    // A rank's copy of 16 MiB or more is made on the pool (copy_sink::copy's parallel path; the
    // state above is ~2.3 MiB a rank): a shard of 20 MiB a rank, on 1 and 4 threads, changed at
    // once after the call, restores to the values of the call. On 2 ranks only (CI time).
    if (world_size == 2) {
        constexpr Eigen::Index part = Eigen::Index{5} << 20;  // floats: 20 MiB
        const auto lo = static_cast<std::uint64_t>(world_rank) * static_cast<std::uint64_t>(part);
        const ckpt::shape global{2 * static_cast<std::uint64_t>(part)}, at{lo};
        auto value = [&](Eigen::Index i) { return fval(20, 1, lo + static_cast<std::uint64_t>(i)); };
        for (const std::size_t threads : {1, 4}) {
            ckpt::set_max_threads(threads);
            Eigen::VectorXf big(part);
            for (Eigen::Index i = 0; i < part; ++i) big[i] = value(i);
            ckpt::mpi::checkpoint sharded{MPI_COMM_WORLD, ckpt::track_shard("big", big, global, at)};
            const auto file = sharded.write_async(dir / ("big-" + std::to_string(threads)));
            big.setConstant(-1.0f);
            sharded.wait();
            Eigen::VectorXf back = Eigen::VectorXf::Zero(part);
            ckpt::mpi::checkpoint reading{MPI_COMM_WORLD, ckpt::track_shard("big", back, global, at)};
            reading.restore(file).assert_consumed();
            bool same = true;
            for (Eigen::Index i = 0; i < part; ++i) same = same && back[i] == value(i);
            CHECK(same, "a 20 MiB shard copied on %zu threads restores to other values", threads);
        }
        ckpt::set_max_threads(0);
    }

    // save_as_async: `then` runs once, after the commit, on every rank; on the background thread
    // with MPI_THREAD_MULTIPLE, else on the caller's thread at the next wait().
    const auto caller = std::this_thread::get_id();
    int calls = 0;
    bool committed_first = false, on_caller = false;
    fill(s, 5);
    const fs::path best = dir / "best";
    ck.save_as_async(best, {5, {}, {}}, [&](const fs::path& f) {
        ++calls;
        committed_first = f == best && fs::is_regular_file(f / "manifest") && !has_temp(dir);
        on_caller = std::this_thread::get_id() == caller;
    });
    fill(s, 6);
    ck.wait();
    CHECK(calls == 1 && committed_first, "then: %d calls, after the commit: %d", calls, committed_first ? 1 : 0);
    CHECK(on_caller == (provided_level != MPI_THREAD_MULTIPLE), "then ran on the %s thread",
          on_caller ? "caller's" : "background");
    CHECK(ck.save_counter() == 4, "save_as_async counts a save");
    check_file(best, 5);

    // write_async: exactly the name given, counter unchanged; a synchronous save after it.
    const auto w = ck.write_async(dir / "export", {6, {}, {}});
    fill(s, 7);
    const auto p5 = ck.save(dir / "ckpt", {7, {}, {}});
    CHECK(fs::is_regular_file(w / "manifest") && p5 == dir / "ckpt-5", "write_async then save: %s", p5.c_str());
    check_file(w, 6);
    check_file(p5, 7);

    // A save still in flight when the checkpoint is destroyed is committed by the destructor.
    fs::path p6;
    {
        state t;
        fill(t, 8);
        auto other = make_checkpoint(t);
        other.restore(p5);
        fill(t, 8);
        p6 = other.save_async(dir / "ckpt", {8, {}, {}});
        fill(t, 9);
    }
    CHECK(p6 == dir / "ckpt-6" && fs::is_regular_file(p6 / "manifest"), "the destructor did not commit %s", p6.c_str());
    check_file(p6, 8);

    // A rank whose background thread cannot start (EAGAIN) writes on the caller's thread instead of
    // leaving the other ranks waiting in the commit; the save commits everywhere.
    {
        state t;
        fill(t, 10);
        auto other = make_checkpoint(t);
        if (world_rank == world_size - 1) ckpt::testing::thread_start_injector = [] { return EAGAIN; };
        const auto p7 = other.save_as_async(dir / "no-thread", {10, {}, {}});
        ckpt::testing::thread_start_injector = nullptr;
        fill(t, 11);
        other.wait();
        check_file(p7, 10);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(!has_temp(dir), "a temporary directory is left");
    MPI_Barrier(MPI_COMM_WORLD);  // no rank starts the next save before all looked
    return 0;
}

// Installed for the whole scenario and armed only while no save is in flight (the background
// thread reads it): the next `n` writes of a rank file on this rank, or renames into a final
// name on rank 0, fail.
std::atomic<int> write_failures{0}, rename_failures{0};
int inject(ckpt::detail::io_op op, const fs::path& p) {
    if (op == ckpt::detail::io_op::write && contains(p.string(), "rank-") && write_failures.fetch_sub(1) > 0)
        return EIO;
    if (op == ckpt::detail::io_op::rename && p.filename().string().rfind("ckpt-", 0) == 0 &&
        rename_failures.fetch_sub(1) > 0)
        return EXDEV;
    return 0;
}
void fail_writes_on(int victim) { write_failures = world_rank == victim ? 1 : 0; }

void expect_write_failure(const ckpt::io_error& e, int victim) {
    const std::string what = e.what();
    CHECK(contains(what,
                   "rank " + std::to_string(victim) + " of " + std::to_string(world_size) + " failed while writing") &&
              contains(what, "cannot write"),
          "message: %s", what.c_str());
}

int failure(const fs::path& dir) {
    state s;
    fill(s, 1);
    auto ck = make_checkpoint(s);
    ckpt::detail::io_fault_injector = inject;
    const auto first = ck.save(dir / "ckpt");
    const int victim = world_size - 1;

    // Surfaces at wait(), on every rank, as the same io_error naming the failing rank.
    fail_writes_on(victim);
    const auto p = ck.save_async(dir / "ckpt");  // returns: the write fails in the background
    CHECK(p == dir / "ckpt-2", "name %s", p.c_str());
    try {
        ck.wait();
        CHECK(false, "a save with a failing rank succeeded");
    } catch (const ckpt::io_error& e) {
        expect_write_failure(e, victim);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(!has_temp(dir) && !fs::exists(p) && ckpt::latest_checkpoint(dir) == first, "a failed save left something");
    MPI_Barrier(MPI_COMM_WORLD);  // no rank starts the next save before all looked
    CHECK(ck.save_counter() == 1, "the failed save kept its number");
    ck.wait();  // reported once

    // At the next save_async, which then does not save; the one after it does.
    fail_writes_on(0);
    ck.save_async(dir / "ckpt");
    try {
        ck.save_async(dir / "ckpt");
        CHECK(false, "the next save_async did not report the failure");
    } catch (const ckpt::io_error& e) {
        expect_write_failure(e, 0);
    }
    CHECK(!ck.save_in_progress(), "a refused save_async started a save");
    const auto again = ck.save_async(dir / "ckpt");
    ck.wait();
    CHECK(again == dir / "ckpt-2" && ckpt::latest_checkpoint(dir) == again, "the save after the failure: %s",
          again.c_str());
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(!has_temp(dir), "a temporary directory is left");
    MPI_Barrier(MPI_COMM_WORLD);  // no rank starts the next save before all looked

    // At a restore, which then restores nothing; the next restore does.
    fill(s, 2);
    const auto good = ck.save(dir / "ckpt");
    fail_writes_on(victim);
    ck.save_async(dir / "ckpt");
    fill(s, 3);
    try {
        ck.restore(good);
        CHECK(false, "a restore after a failed save_async did not report it");
    } catch (const ckpt::io_error& e) {
        expect_write_failure(e, victim);
    }
    check_values(s, 3, "objects after the refused restore");
    ck.restore(good);
    check_values(s, 2, "restored after the failure");

    // A failed commit (rank 0's rename) is reported on every rank too.
    rename_failures = world_rank == 0 ? 1 : 0;
    const auto q = ck.save_async(dir / "ckpt");
    try {
        ck.wait();
        CHECK(false, "a save whose commit failed succeeded");
    } catch (const ckpt::io_error& e) {
        CHECK(contains(e.what(), "rank 0 of") && contains(e.what(), "commit"), "message: %s", e.what());
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(!has_temp(dir) && !fs::exists(q) && ckpt::latest_checkpoint(dir) == good, "a failed commit left something");
    MPI_Barrier(MPI_COMM_WORLD);  // no rank starts the next save before all looked

    // Uncollected at destruction: every rank reports it through the warning handler.
    std::vector<ckpt::warning> warnings;
    ckpt::set_warning_handler([&](const ckpt::warning& w) { warnings.push_back(w); });
    {
        state t;
        fill(t, 4);
        auto other = make_checkpoint(t);
        fail_writes_on(victim);
        other.save_async(dir / "ckpt");
    }
    ckpt::set_warning_handler({});
    CHECK(warnings.size() == 1 && warnings[0].kind == ckpt::warning_kind::async_save_failed &&
              contains(warnings[0].message, "rank " + std::to_string(victim) + " of"),
          "%zu warnings at destruction: %s", warnings.size(), warnings.empty() ? "" : warnings[0].message.c_str());
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(!has_temp(dir) && ckpt::latest_checkpoint(dir) == good, "a failed save left something");
    MPI_Barrier(MPI_COMM_WORLD);  // no rank starts the next save before all looked
    return 0;
}

// Under a memory budget each rank writes (or hashes) from its objects, before save_async returns,
// what does not fit, and copies the rest: at most `budget` bytes of tensors, kept to the next save.
int budget(const fs::path& dir) {
    state s;
    fill(s, 1);
    auto ck = make_checkpoint(s);
    ck.save_async(dir / "ckpt");
    ck.wait();
    const std::size_t whole = ck.async_memory();  // unbounded: the rank's whole part
    CHECK(whole >= state_bytes(s), "unbounded copies keep %zu bytes", whole);

    // Nothing copied; the optimizer (2.3 MiB, one block) across the line on the rank that writes
    // it, hashed whole by the others; everything copied. Each file holds the values of its call
    // (the objects change as soon as it returns), and the copies shrink to the budget.
    constexpr std::size_t values = 64 << 10;  // encoded values (bias, vocab) are always copied
    std::uint64_t seed = 10;
    for (const std::size_t bytes : {std::size_t{0}, std::size_t{1} << 20, std::size_t{64} << 20}) {
        ck.set_async_memory_budget(bytes);
        CHECK(ck.async_memory_budget() == bytes, "the budget was not taken");
        fill(s, seed);
        const auto p = ck.save_async(dir / "ckpt");
        fill(s, seed + 1);
        long long sum = 0, one = 1;  // the caller's own collective meanwhile
        MPI_Allreduce(&one, &sum, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
        ck.wait();
        check_file(p, seed);
        CHECK(ck.async_memory() <= std::min(bytes, whole) + values,
              "under a budget of %zu bytes the copies keep %zu (%zu unbounded)", bytes, ck.async_memory(), whole);
        seed += 2;
    }

    // The ranks need not agree on a budget: rank 0 bounded to nothing, the others unbounded.
    ck.set_async_memory_budget(world_rank == 0 ? std::optional<std::size_t>(0) : std::nullopt);
    fill(s, 20);
    const auto mixed = ck.save_async(dir / "ckpt");
    fill(s, 21);
    long long sum = 0, one = 1;
    MPI_Allreduce(&one, &sum, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    ck.wait();
    check_file(mixed, 20);

    // A rank that cannot create its file on the caller's thread (budget 0: the file is begun
    // there) fails the save on every rank, at wait(), and leaves nothing; the next save works.
    const int victim = world_size - 1;
    static std::atomic<int> create_failures{0};
    create_failures = world_rank == victim ? 1 : 0;
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path& p) {
        return op == ckpt::detail::io_op::create && contains(p.string(), "rank-") && create_failures.fetch_sub(1) > 0
                   ? EIO
                   : 0;
    };
    ck.set_async_memory_budget(std::size_t{0});
    const auto latest = ckpt::latest_checkpoint(dir);
    const auto failed = ck.save_async(dir / "ckpt");
    try {
        ck.wait();
        CHECK(false, "a save with a failing rank succeeded");
    } catch (const ckpt::io_error& e) {
        CHECK(contains(e.what(), "rank " + std::to_string(victim) + " of " + std::to_string(world_size) +
                                     " failed while writing") &&
                  contains(e.what(), "cannot create"),
              "message: %s", e.what());
    }
    ckpt::detail::io_fault_injector = nullptr;
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(!has_temp(dir) && !fs::exists(failed) && ckpt::latest_checkpoint(dir) == latest,
          "a failed save left something");
    MPI_Barrier(MPI_COMM_WORLD);  // no rank starts the next save before all looked
    fill(s, 40);
    const auto after = ck.save_async(dir / "ckpt");
    fill(s, 41);
    ck.wait();
    check_file(after, 40);

    // divergence::off: a rank copies none of the replicated blocks it does not write, so some rank
    // keeps less than the optimizer (one block, written by one rank; the copies of the save above,
    // under a budget of 0, kept nothing).
    ck.on_divergent_replicas(ckpt::mpi::divergence::off);
    ck.set_async_memory_budget(std::size_t{64} << 20);
    fill(s, 30);
    const auto unchecked = ck.save_async(dir / "ckpt");
    fill(s, 31);
    ck.wait();
    check_file(unchecked, 30);
    unsigned long long kept = ck.async_memory(), least = 0;
    MPI_Allreduce(&kept, &least, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    CHECK(least < static_cast<unsigned long long>(s.optimizer.size()) * sizeof(double),
          "every rank copied the optimizer (%llu bytes at least)", least);
    ck.on_divergent_replicas(ckpt::mpi::divergence::refuse);

    return 0;
}

int divergent(const fs::path& dir) {
    state s;
    fill(s, 3);
    fs::create_directories(dir);
    if (world_rank == 1) s.model.bias[7] = 0.5;  // one element, on one rank
    auto ck = make_checkpoint(s);
    // The replicas are compared at the commit (hashing is not the caller's work): save_async
    // returns, and the save fails on every rank.
    const auto p = ck.save_async(dir / "ckpt");
    try {
        ck.wait();
        CHECK(false, "divergent replicas were saved");
    } catch (const ckpt::mismatch_error& e) {
        CHECK(e.entry() == "model/bias" && contains(e.what(), "ranks 0 and 1"), "message: %s", e.what());
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(!fs::exists(p) && !ckpt::latest_checkpoint(dir) && !has_temp(dir), "a refused save left something");
    MPI_Barrier(MPI_COMM_WORLD);  // no rank starts the next save before all looked
    CHECK(ck.save_counter() == 0, "the refused save kept its number");

    ck.on_divergent_replicas(ckpt::mpi::divergence::warn);
    std::vector<ckpt::warning> warnings;
    ckpt::set_warning_handler([&](const ckpt::warning& w) { warnings.push_back(w); });
    const auto q = ck.save_async(dir / "ckpt");
    ck.wait();
    ckpt::set_warning_handler({});
    CHECK(q == dir / "ckpt-1" && ckpt::latest_checkpoint(dir) == q, "the warned save was not committed");
    CHECK(world_rank != 0 || (warnings.size() == 1 && warnings[0].kind == ckpt::warning_kind::diverged_replicas &&
                              contains(warnings[0].message, "model/bias")),
          "rank 0 saw %zu warnings", warnings.size());
    CHECK(world_rank == 0 || warnings.empty(), "rank %d warned", world_rank);
    // The stored copy is its writer's, and restores (the manifest has the writer's checksum).
    model_t back;
    ckpt::reader(q).read("model", back);
    const ckpt::detail::sharded_reader listing(q);
    const auto* bias = listing.find("model/bias");
    state original;
    fill(original, 3);
    CHECK(bias && back.bias[7] == (listing.logical(*bias).pieces[0].file == 1 ? 0.5 : original.model.bias[7]),
          "the stored replica is not its writer's");
    ck.on_divergent_replicas(ckpt::mpi::divergence::off);
    const auto r = ck.save_async(dir / "ckpt");
    ck.wait();
    CHECK(ckpt::latest_checkpoint(dir) == r, "the save with the check off was not committed");
    return 0;
}

// A save the ranks cannot agree on (shards that do not tile) is refused on every rank alike,
// and leaves nothing: without MPI_THREAD_MULTIPLE by save_async itself (the exchange runs on the
// caller's thread), with it at wait() (the caller's thread makes no MPI call at all).
int refused(const fs::path& dir) {
    fs::create_directories(dir);
    const auto r = static_cast<std::uint64_t>(world_rank), n = static_cast<std::uint64_t>(world_size);
    Eigen::VectorXf block = Eigen::VectorXf::Zero(2);  // [3r, 3r+2) of 3n: a gap after every block
    ckpt::mpi::checkpoint ck{MPI_COMM_WORLD, ckpt::track_shard("g", block, ckpt::shape{3 * n}, ckpt::shape{3 * r})};
    bool returned = false;
    try {
        ck.save_async(dir / "gap");
        returned = true;
        ck.wait();
        CHECK(false, "gapped shards were accepted");
    } catch (const ckpt::mismatch_error& e) {
        CHECK(e.entry() == "g" && contains(e.what(), "gap"), "message: %s", e.what());
    }
    CHECK(returned == (provided_level == MPI_THREAD_MULTIPLE), "refused %s", returned ? "at wait()" : "by save_async");
    CHECK(!ck.save_in_progress() && ck.save_counter() == 0, "a refused save is in progress or counted");
    ck.wait();
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(!ckpt::latest_checkpoint(dir) && !has_temp(dir), "a refused save left something");
    MPI_Barrier(MPI_COMM_WORLD);
    // Another name on one rank (no shared view of the directory): refused the same way, also
    // after a save that agreed (whose plan the next save reuses when nothing else changed).
    block.setZero(3);
    ckpt::mpi::checkpoint ok{MPI_COMM_WORLD, ckpt::track_shard("g", block, ckpt::shape{3 * n}, ckpt::shape{3 * r})};
    ok.write_async(dir / "same");
    ok.wait();
    CHECK(fs::is_regular_file(dir / "same" / "manifest"), "the agreed save was not committed");
    try {
        ok.write_async(dir / ("rank-" + std::to_string(world_rank)));
        ok.wait();
        CHECK(false, "a save to a different name on each rank succeeded");
    } catch (const ckpt::error& e) {
        CHECK(contains(e.what(), "rank 1 of") && contains(e.what(), "agree on the checkpoint's name"), "message: %s",
              e.what());
    }
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(!fs::exists(dir / ("rank-" + std::to_string(world_rank))) && !has_temp(dir), "a refused save left something");
    return 0;
}

// Not a test: the median time save_async blocks the caller against a memcpy of the same bytes
// into a buffer that is already allocated, on every rank; rank 0 prints both and their ratio.
int measure(const fs::path& dir, std::size_t mib, int saves, std::optional<std::size_t> budget_mib) {
    const auto n = static_cast<Eigen::Index>(mib * (std::size_t{1} << 20) / sizeof(float));
    Eigen::VectorXf weights = Eigen::VectorXf::Constant(n, 1.5f);  // replicated
    Eigen::VectorXf copy(n);
    ckpt::mpi::checkpoint ck{MPI_COMM_WORLD, ckpt::track("weights", weights)};
    if (budget_mib) ck.set_async_memory_budget(*budget_mib << 20);
    std::vector<double> blocked, copied;
    using clock = std::chrono::steady_clock;
    for (int i = 0; i < saves; ++i) {
        weights(0) = static_cast<float>(i);
        ck.wait();  // the previous save's write is not this save's blocked time
        MPI_Barrier(MPI_COMM_WORLD);
        auto t0 = clock::now();
        std::memcpy(copy.data(), weights.data(), static_cast<std::size_t>(n) * sizeof(float));
        auto t1 = clock::now();
        MPI_Barrier(MPI_COMM_WORLD);
        const auto t2 = clock::now();
        ck.save_async(dir / "ckpt");
        const auto t3 = clock::now();
        copied.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        blocked.push_back(std::chrono::duration<double, std::milli>(t3 - t2).count());
        if (world_rank == 0 && i >= 2) fs::remove_all(dir / ("ckpt-" + std::to_string(i - 1)));
    }
    ck.wait();
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    double mine[2] = {median(blocked), median(copied)}, worst[2] = {0, 0};
    MPI_Reduce(mine, worst, 2, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (world_rank == 0)
        std::printf(
            "ranks=%d state=%zu MiB/rank budget=%s saves=%d thread=%s: save_async blocked median %.2f ms, memcpy "
            "%.2f ms, ratio %.2f (slowest rank of each)\n",
            world_size, mib, budget_mib ? (std::to_string(*budget_mib) + " MiB").c_str() : "none", saves,
            provided_level == MPI_THREAD_MULTIPLE ? "multiple" : "single", worst[0], worst[1], worst[0] / worst[1]);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string level = argc > 1 ? argv[1] : "";
    const int required = level == "--thread=multiple"   ? MPI_THREAD_MULTIPLE
                         : level == "--thread=funneled" ? MPI_THREAD_FUNNELED
                                                        : MPI_THREAD_SINGLE;
    MPI_Init_thread(&argc, &argv, required, &provided_level);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    // The scenario must run the path it names: MULTIPLE provided when asked for, and not otherwise.
    CHECK((provided_level == MPI_THREAD_MULTIPLE) == (required == MPI_THREAD_MULTIPLE), "asked for %s, provided %d",
          level.c_str(), provided_level);
    int rc = 2;
    try {
        const std::string mode = argc > 2 ? argv[2] : "";
        if (mode == "roundtrip" && argc == 4)
            rc = roundtrip(argv[3]);
        else if (mode == "failure" && argc == 4)
            rc = failure(argv[3]);
        else if (mode == "budget" && argc == 4)
            rc = budget(argv[3]);
        else if (mode == "divergent" && argc == 4)
            rc = divergent(argv[3]);
        else if (mode == "refused" && argc == 4)
            rc = refused(argv[3]);
        else if (mode == "measure" && (argc == 6 || argc == 7))
            rc = measure(argv[3], std::strtoull(argv[4], nullptr, 10), std::atoi(argv[5]),
                         argc == 7 ? std::optional<std::size_t>(std::strtoull(argv[6], nullptr, 10)) : std::nullopt);
        else if (world_rank == 0)
            std::fprintf(stderr, "usage: see the top of tests/mpi/async.cpp\n");
    } catch (const std::exception& e) {
        CHECK(false, "unexpected exception: %s", e.what());
    }
    MPI_Finalize();
    return rc;
}
