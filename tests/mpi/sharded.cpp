// Sharded checkpoints over MPI, driven by run_matrix.cmake and kill_save.sh through mpirun: one
// scenario per invocation, every rank checks, and any failed check aborts the whole job (so no
// rank waits forever in a collective and ctest sees a non-zero exit).
//
//   sharded save <dir> <seed>                 save on N ranks
//   sharded restore <ckpt> <seed> <saved N>   restore on M ranks, values bit for bit
//   sharded failure <dir>                     an injected I/O failure on the last rank
//   sharded divergent <dir>                   replicas that differ between ranks
//   sharded tiling                            overlapping and gapped shards
//   sharded chunks <dir>                      a box reads only the chunks that cover it (1 rank)
//   sharded reshard-save <dir>                save two tensors split by rows, unevenly (4 ranks)
//   sharded reshard-restore <dir>             restore them by rows and by columns, then damaged (3 ranks)
//   sharded loop <dir> <saves>                saves in a loop (killed by kill_save.sh)
//   sharded check-latest <dir>                the latest committed checkpoint restores whole
//   sharded mpi-error                         a failed MPI call throws ckpt's io_error naming it
//   sharded replicated <dir>                  24 MiB of replicated tensors restored on several threads

#include <ckpt/ckpt.hpp>
#include <ckpt/mpi.hpp>

#include "../support/counting_allocator.hpp"
#include "support.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::uint32_t M_ranks() {
    int n = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return static_cast<std::uint32_t>(n);
}

struct model_t {
    Eigen::MatrixXf weights;
    std::vector<double> bias;
    std::map<std::string, int> vocab;
    std::mt19937 engine;
};
CKPT_FIELDS(model_t, weights, bias, vocab, engine)

struct cursor_t {
    std::int64_t position = 0;
    std::vector<int> seen;
};
CKPT_FIELDS(cursor_t, position, seen)

using row_major_f = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Uneven split of n into parts: part p gets [b(p), b(p+1)), b(p) = n p(p+1) / (parts(parts+1)).
std::uint64_t bound(std::uint64_t n, std::uint64_t parts, std::uint64_t p) {
    return n * p * (p + 1) / (parts * (parts + 1));
}

constexpr std::uint64_t emb_rows = 23, emb_cols = 5, col_rows = 6, col_cols = 17, vec_len = 29;

struct state {
    model_t model;
    Eigen::VectorXd optimizer;
    cursor_t cursor;
    std::mt19937_64 rng;
    Eigen::MatrixXf embedding;  // restored column-major; saved row-major (see fill)
    row_major_f embedding_rm;
    Eigen::MatrixXd columns;
    Eigen::VectorXi vec;
    std::uint64_t emb_lo = 0, col_lo = 0, vec_lo = 0;
};

// Shapes this rank's blocks for `size` ranks; garbage values unless `seed` is given.
void shape_blocks(state& s, int rank, int size, bool with_values, std::uint64_t seed) {
    const auto r = static_cast<std::uint64_t>(rank), n = static_cast<std::uint64_t>(size);
    s.emb_lo = bound(emb_rows, n, r);
    const auto emb_n = bound(emb_rows, n, r + 1) - s.emb_lo;
    s.col_lo = bound(col_cols, n, r);
    const auto col_n = bound(col_cols, n, r + 1) - s.col_lo;
    const auto vp = n - 1 - r;  // the reverse split: the big block first
    s.vec_lo = bound(vec_len, n, vp);
    const auto vec_n = bound(vec_len, n, vp + 1) - s.vec_lo;
    s.embedding.setConstant(static_cast<Eigen::Index>(emb_n), emb_cols, -1.f);
    s.embedding_rm.setConstant(static_cast<Eigen::Index>(emb_n), emb_cols, -1.f);
    s.columns.setConstant(col_rows, static_cast<Eigen::Index>(col_n), -1.0);
    s.vec.setConstant(static_cast<Eigen::Index>(vec_n), -1);
    if (!with_values) return;
    for (Eigen::Index i = 0; i < s.embedding.rows(); ++i)
        for (Eigen::Index j = 0; j < s.embedding.cols(); ++j)
            s.embedding(i, j) = s.embedding_rm(i, j) =
                fval(seed, 10, (s.emb_lo + static_cast<std::uint64_t>(i)) * emb_cols + static_cast<std::uint64_t>(j));
    for (Eigen::Index i = 0; i < s.columns.rows(); ++i)
        for (Eigen::Index j = 0; j < s.columns.cols(); ++j)
            s.columns(i, j) =
                dval(seed, 11, static_cast<std::uint64_t>(i) * col_cols + s.col_lo + static_cast<std::uint64_t>(j));
    for (Eigen::Index i = 0; i < s.vec.size(); ++i)
        s.vec(i) = static_cast<int>(mix(seed + 12 * 1000 + s.vec_lo + static_cast<std::uint64_t>(i)) % 100000);
}

void fill(state& s, std::uint64_t seed) {
    s.model.weights.resize(37, 13);
    for (Eigen::Index i = 0; i < s.model.weights.size(); ++i)
        s.model.weights.data()[i] = fval(seed, 1, static_cast<std::uint64_t>(i));
    s.model.bias.resize(13);
    for (std::size_t i = 0; i < 13; ++i) s.model.bias[i] = dval(seed, 2, i);
    s.model.vocab = {{"a", static_cast<int>(seed)}, {"bb", 2}, {"ccc", 3}};
    s.model.engine.seed(static_cast<std::uint32_t>(seed));
    s.model.engine.discard(5);
    s.optimizer.resize(300000);  // ~2.3 MiB: more than one chunk
    for (Eigen::Index i = 0; i < s.optimizer.size(); ++i) s.optimizer(i) = dval(seed, 3, static_cast<std::uint64_t>(i));
    s.cursor.position = static_cast<std::int64_t>(seed * 100 + static_cast<std::uint64_t>(world_rank));
    s.cursor.seen.assign(static_cast<std::size_t>(world_rank + 1), world_rank);
    s.rng.seed(seed * 31 + static_cast<std::uint64_t>(world_rank));
    s.rng.discard(3);
    shape_blocks(s, world_rank, world_size, true, seed);
}

void scramble(state& s) {
    s.model.weights.setConstant(37, 13, 0.5f);
    s.model.bias.assign(13, 0.25);
    s.model.vocab.clear();  // a sized map must have the file's keys (the rule for sizes): an empty one takes them
    s.model.engine.seed(4242);
    s.optimizer.setConstant(300000, 0.125);
    s.cursor = {-1, {}};
    s.rng.seed(777);
    shape_blocks(s, world_rank, world_size, false, 0);
}

template <class A, class B>
bool same_bits(const A& a, const B& b) {
    if (a.size() != b.size()) return false;
    for (Eigen::Index i = 0; i < a.rows(); ++i)
        for (Eigen::Index j = 0; j < a.cols(); ++j)
            if (std::memcmp(&a(i, j), &b(i, j), sizeof(a(i, j))) != 0) return false;
    return true;
}

void check_replicated_and_shards(const state& s, std::uint64_t seed) {
    state want;
    fill(want, seed);
    CHECK(same_bits(s.model.weights, want.model.weights), "model/weights differ");
    CHECK(s.model.bias == want.model.bias, "model/bias differ");
    CHECK(s.model.vocab == want.model.vocab, "model/vocab differ");
    CHECK(s.model.engine == want.model.engine, "model/engine differs");
    CHECK(same_bits(s.optimizer, want.optimizer), "optimizer differs");
    CHECK(same_bits(s.embedding, want.embedding), "embedding block differs (rows from %llu)",
          static_cast<unsigned long long>(s.emb_lo));
    CHECK(same_bits(s.columns, want.columns), "columns block differs");
    CHECK(same_bits(s.vec, want.vec), "vec block differs");
}

void check_per_rank(const state& s, std::uint64_t seed, bool restored) {
    state want;
    fill(want, seed);
    if (restored) {
        CHECK(s.cursor.position == want.cursor.position && s.cursor.seen == want.cursor.seen,
              "per-rank cursor differs");
        CHECK(s.rng == want.rng, "per-rank rng differs");
    } else {
        CHECK(s.cursor.position == -1 && s.cursor.seen.empty(), "per-rank cursor was changed");
    }
}

// The saving side tracks the row-major embedding, the restoring side the column-major one: the
// pieces are read into another element order.
auto saving_checkpoint(state& s) {
    return ckpt::mpi::checkpoint{
        MPI_COMM_WORLD,
        ckpt::track("model", s.model),
        ckpt::track("optimizer", s.optimizer),
        ckpt::track_per_rank("data", s.cursor),
        ckpt::track_per_rank("rng", s.rng),
        ckpt::track_shard("embedding", s.embedding_rm, ckpt::shape{emb_rows, emb_cols}, ckpt::shape{s.emb_lo, 0}),
        ckpt::track_shard("columns", s.columns, ckpt::shape{col_rows, col_cols}, ckpt::shape{0, s.col_lo}),
        ckpt::track_shard("vec", s.vec, ckpt::shape{vec_len}, ckpt::shape{s.vec_lo})};
}
auto restoring_checkpoint(state& s) {
    return ckpt::mpi::checkpoint{
        MPI_COMM_WORLD,
        ckpt::track("model", s.model),
        ckpt::track("optimizer", s.optimizer),
        ckpt::track_per_rank("data", s.cursor),
        ckpt::track_per_rank("rng", s.rng),
        ckpt::track_shard("embedding", s.embedding, ckpt::shape{emb_rows, emb_cols}, ckpt::shape{s.emb_lo, 0}),
        ckpt::track_shard("columns", s.columns, ckpt::shape{col_rows, col_cols}, ckpt::shape{0, s.col_lo}),
        ckpt::track_shard("vec", s.vec, ckpt::shape{vec_len}, ckpt::shape{s.vec_lo})};
}

bool has_temp(const fs::path& dir) {
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().find(".ckpt-tmp.") != std::string::npos) return true;
    return false;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The data path's default thread count: the machine's hardware threads until a checkpoint has
// counted the ranks on this machine, then this rank's share of them; CKPT_NUM_THREADS wins.
void check_default_threads(bool counted) {
    MPI_Comm local = MPI_COMM_NULL;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &local);
    int ranks_here = 1;
    MPI_Comm_size(local, &ranks_here);
    MPI_Comm_free(&local);
    const std::size_t hardware = std::max(1u, std::thread::hardware_concurrency());
    std::size_t expected =
        counted ? std::max<std::size_t>(1, hardware / static_cast<std::size_t>(ranks_here)) : hardware;
    if (const char* text = std::getenv("CKPT_NUM_THREADS")) expected = std::strtoull(text, nullptr, 10);
    CHECK(ckpt::max_threads() == expected, "max_threads() %zu, expected %zu (%d ranks on this machine, %zu threads)",
          ckpt::max_threads(), expected, ranks_here, hardware);
}

int save(const fs::path& dir, std::uint64_t seed) {
    state s;
    fill(s, seed);
    auto ck = saving_checkpoint(s);
    check_default_threads(false);
    const auto p = ck.save(dir / "ckpt", {static_cast<std::int64_t>(seed), {}, {}});
    check_default_threads(true);
    CHECK(p == dir / "ckpt-1", "saved to %s", p.c_str());
    CHECK(fs::is_regular_file(p / "manifest"), "no manifest");
    for (int r = 0; r < world_size; ++r)
        CHECK(fs::is_regular_file(p / ("rank-" + std::to_string(r))), "no file of rank %d", r);
    const auto latest = ckpt::latest_checkpoint(dir);
    CHECK(latest && *latest == p, "latest_checkpoint does not find the sharded checkpoint");
    return 0;
}

int restore(const fs::path& file, std::uint64_t seed, int saved_ranks) {
    state s;
    scramble(s);
    auto ck = restoring_checkpoint(s);
    if (saved_ranks == world_size) {
        const auto status = ck.restore(file);
        status.assert_consumed();
        CHECK(status.metadata().step == static_cast<std::int64_t>(seed), "metadata step");
        CHECK(ck.save_counter() == 1, "save counter %llu", static_cast<unsigned long long>(ck.save_counter()));
        check_replicated_and_shards(s, seed);
        check_per_rank(s, seed, true);
        return 0;
    }
    // Strict: refused on every rank, nothing changed.
    try {
        ck.restore(file);
        CHECK(false, "a strict restore on another number of ranks succeeded");
    } catch (const ckpt::mismatch_error& e) {
        const std::string what = e.what();
        CHECK(contains(what, "saved by " + std::to_string(saved_ranks) + " ranks") &&
                  contains(what, "restored on " + std::to_string(world_size)),
              "message: %s", what.c_str());
    }
    CHECK(s.model.weights(0, 0) == 0.5f && (s.embedding.size() == 0 || s.embedding(0, 0) == -1.f),
          "strict refusal changed an object");
    check_per_rank(s, seed, false);
    // Partial: replicated and shards restored, per-rank state left and listed.
    const auto status = ck.restore(file, ckpt::partial);
    const auto& missing = status.missing();
    CHECK(missing.size() == 2 && missing[0] == "data" && missing[1] == "rng", "missing() lists %zu", missing.size());
    check_replicated_and_shards(s, seed);
    check_per_rank(s, seed, false);
    // Across roles: a shard into a whole tracked tensor, a replicated vector into shards.
    {
        row_major_f whole_embedding;
        Eigen::VectorXd optimizer_block(
            static_cast<Eigen::Index>(bound(300000, M_ranks(), static_cast<std::uint64_t>(world_rank) + 1) -
                                      bound(300000, M_ranks(), static_cast<std::uint64_t>(world_rank))));
        const auto lo = bound(300000, M_ranks(), static_cast<std::uint64_t>(world_rank));
        ckpt::mpi::checkpoint across{
            MPI_COMM_WORLD, ckpt::track("embedding", whole_embedding),
            ckpt::track_shard("optimizer", optimizer_block, ckpt::shape{300000}, ckpt::shape{lo})};
        across.restore(file, ckpt::partial);
        state want;
        fill(want, seed);
        CHECK(whole_embedding.rows() == static_cast<Eigen::Index>(emb_rows) &&
                  whole_embedding(emb_rows - 1, 2) == fval(seed, 10, (emb_rows - 1) * emb_cols + 2),
              "a shard restored into a whole tensor differs");
        CHECK(same_bits(optimizer_block, want.optimizer.segment(static_cast<Eigen::Index>(lo), optimizer_block.size())),
              "a replicated tensor restored into shards differs");
    }
    // The reader reads any rank's per-rank state.
    ckpt::reader r(file);
    if (world_rank == 0) {
        // One process without MPI's help: ckpt::checkpoint restores the replicated state and whole shards.
        model_t model;
        Eigen::MatrixXf embedding;
        cursor_t cursor;
        ckpt::checkpoint single{ckpt::track("model", model), ckpt::track("embedding", embedding),
                                ckpt::track("data", cursor)};
        const auto status = single.restore(file, ckpt::partial);
        state want;
        fill(want, seed);
        CHECK(same_bits(model.weights, want.model.weights) && model.engine == want.model.engine &&
                  embedding.rows() == static_cast<Eigen::Index>(emb_rows) &&
                  embedding(emb_rows - 1, 4) == fval(seed, 10, emb_rows * emb_cols - 1),
              "a single-process restore of a sharded checkpoint differs");
        // Per-rank state restores in one process only from a checkpoint one rank saved.
        CHECK(saved_ranks == 1 ? status.missing().empty() && cursor.position == static_cast<std::int64_t>(seed * 100)
                               : status.missing().size() == 2 && status.missing()[0] == "data/position" &&
                                     status.missing()[1] == "data/seen",
              "per-rank state in one process (saved by %d ranks)", saved_ranks);
        // Whole global tensors, as `ckpt export` reads them: row-major bytes assembled from the pieces.
        state whole;
        world_size = 1;  // the values of a single rank holding everything
        shape_blocks(whole, 0, 1, true, seed);
        world_size = static_cast<int>(M_ranks());
        const auto* e = r.find("embedding");
        CHECK(e && e->shape == (ckpt::shape{emb_rows, emb_cols}), "reader: embedding entry");
        const std::string bytes = r.read_bytes(*e);
        CHECK(std::memcmp(bytes.data(), whole.embedding_rm.data(), bytes.size()) == 0,
              "reader: assembled embedding differs");
        Eigen::MatrixXd columns;
        r.read("columns", columns);
        CHECK(same_bits(columns, whole.columns), "reader: assembled columns differ");
        // The global tensors in row-major order, for run.cmake to compare with `ckpt export`'s npz.
        std::string stem = file.string();
        std::replace(stem.begin(), stem.end(), '/', '-');
        const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> columns_rm = whole.columns;
        std::ofstream(stem + ".embedding.f32", std::ios::binary)
            .write(reinterpret_cast<const char*>(whole.embedding_rm.data()),
                   static_cast<std::streamsize>(whole.embedding_rm.size() * sizeof(float)));
        std::ofstream(stem + ".columns.f64", std::ios::binary)
            .write(reinterpret_cast<const char*>(columns_rm.data()),
                   static_cast<std::streamsize>(columns_rm.size() * sizeof(double)));
    }
    CHECK(r.ranks() == static_cast<std::uint32_t>(saved_ranks), "reader ranks");
    for (int k = 0; k < saved_ranks; ++k) {
        cursor_t c;
        r.read_rank(static_cast<std::uint32_t>(k), "data", c);
        CHECK(c.position == static_cast<std::int64_t>(seed * 100 + static_cast<std::uint64_t>(k)),
              "reader: rank %d's cursor", k);
    }
    return 0;
}

int failure(const fs::path& dir) {
    state s;
    fill(s, 1);
    auto ck = saving_checkpoint(s);
    const auto first = ck.save(dir / "ckpt");
    const int victim = world_size - 1;
    if (world_rank == victim)
        ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path& p) {
            return op == ckpt::detail::io_op::write && contains(p.string(), "rank-") ? EIO : 0;
        };
    try {
        ck.save(dir / "ckpt");
        CHECK(false, "a save with a failing rank succeeded");
    } catch (const ckpt::io_error& e) {
        const std::string what = e.what();
        CHECK(contains(what, "rank " + std::to_string(victim) + " of " + std::to_string(world_size)) &&
                  contains(what, "cannot write"),
              "message: %s", what.c_str());
    }
    ckpt::detail::io_fault_injector = nullptr;
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(!has_temp(dir), "a temporary directory was left behind");
    CHECK(!fs::exists(dir / "ckpt-2"), "the failed save left a checkpoint");
    // The agreed error keeps the failing rank's error code: every rank tells a full disk apart
    // (a checkpoint_manager explains it), and the reason is in the message once.
    if (world_rank == victim)
        ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path& p) {
            return op == ckpt::detail::io_op::write && contains(p.string(), "rank-") ? ENOSPC : 0;
        };
    try {
        ck.save(dir / "ckpt");
        CHECK(false, "a save with a full disk on one rank succeeded");
    } catch (const ckpt::io_error& e) {
        const std::string what = e.what();
        const std::string reason = std::make_error_code(std::errc::no_space_on_device).message();
        CHECK(e.code() == std::errc::no_space_on_device, "code: '%s' in %s", e.code().message().c_str(), what.c_str());
        CHECK(what.find(reason) != std::string::npos && what.find(reason) == what.rfind(reason),
              "the reason not exactly once: %s", what.c_str());
    }
    ckpt::detail::io_fault_injector = nullptr;
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(!has_temp(dir) && ckpt::latest_checkpoint(dir) == first, "a full disk left something");
    const auto latest = ckpt::latest_checkpoint(dir);
    CHECK(latest && *latest == first, "the previous checkpoint is not the latest");
    // A failure in the commit (rank 0's rename) is reported on every rank too.
    if (world_rank == 0)
        ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path& p) {
            return op == ckpt::detail::io_op::rename && p.filename().string().rfind("ckpt-", 0) == 0 ? EXDEV : 0;
        };
    try {
        ck.save(dir / "ckpt");
        CHECK(false, "a save whose commit failed succeeded");
    } catch (const ckpt::io_error& e) {
        CHECK(contains(e.what(), "rank 0 of"), "message: %s", e.what());
    }
    ckpt::detail::io_fault_injector = nullptr;
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(!has_temp(dir) && ckpt::latest_checkpoint(dir) == first, "a failed commit left something");
    state back;
    scramble(back);
    auto rk = restoring_checkpoint(back);
    rk.restore(first).assert_consumed();
    check_replicated_and_shards(back, 1);
    return 0;
}

int divergent(const fs::path& dir) {
    state s;
    fill(s, 3);
    fs::create_directories(dir);
    if (world_rank == 1) s.model.bias[7] = 0.5;  // one element, on one rank
    auto ck = saving_checkpoint(s);
    try {
        ck.save(dir / "ckpt");
        CHECK(false, "divergent replicas were saved");
    } catch (const ckpt::mismatch_error& e) {
        CHECK(e.entry() == "model/bias" && contains(e.what(), "ranks 0 and 1"), "message: %s", e.what());
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(!ckpt::latest_checkpoint(dir) && !has_temp(dir), "a refused save left something");
    ck.on_divergent_replicas(ckpt::mpi::divergence::warn);
    std::vector<ckpt::warning> warnings;
    ckpt::set_warning_handler([&](const ckpt::warning& w) { warnings.push_back(w); });
    const auto p = ck.save(dir / "ckpt");
    ckpt::set_warning_handler({});
    CHECK(ckpt::latest_checkpoint(dir) == p, "the warned save was not committed");
    // Rank 0 reports the divergence through the warning handler, never on its own to stderr.
    CHECK(world_rank != 0 || (warnings.size() == 1 && warnings[0].kind == ckpt::warning_kind::diverged_replicas &&
                              contains(warnings[0].message, "model/bias")),
          "rank 0 saw %zu warnings", warnings.size());
    CHECK(world_rank == 0 || warnings.empty(), "rank %d warned", world_rank);
    ck.on_divergent_replicas(ckpt::mpi::divergence::off);
    const auto q = ck.save(dir / "ckpt");
    CHECK(ckpt::latest_checkpoint(dir) == q, "the save with the check off was not committed");
    // The copy stored is the one of the rank the manifest names as its writer.
    model_t back;
    ckpt::reader(q).read("model", back);
    const ckpt::detail::sharded_reader listing(q);
    const auto* bias = listing.find("model/bias");
    state original;
    fill(original, 3);
    CHECK(bias && back.bias[7] == (listing.logical(*bias).pieces[0].file == 1 ? 0.5 : original.model.bias[7]),
          "the stored replica is not its writer's");
    return 0;
}

int tiling() {
    const auto r = static_cast<std::uint64_t>(world_rank), n = static_cast<std::uint64_t>(world_size);
    fs::create_directories("tiling");
    {
        Eigen::MatrixXf block = Eigen::MatrixXf::Zero(3, 4);  // rows [2r, 2r+3) of 2n+1: neighbours share a row
        ckpt::mpi::checkpoint ck{MPI_COMM_WORLD,
                                 ckpt::track_shard("t", block, ckpt::shape{2 * n + 1, 4}, ckpt::shape{2 * r, 0})};
        try {
            ck.save("tiling/overlap");
            CHECK(false, "overlapping shards were saved");
        } catch (const ckpt::mismatch_error& e) {
            CHECK(e.entry() == "t" && contains(e.what(), "ranks 0 and 1") && contains(e.what(), "overlap"),
                  "message: %s", e.what());
        }
    }
    {
        Eigen::VectorXf block = Eigen::VectorXf::Zero(2);  // [3r, 3r+2) of 3n: a gap after every block
        ckpt::mpi::checkpoint ck{MPI_COMM_WORLD, ckpt::track_shard("g", block, ckpt::shape{3 * n}, ckpt::shape{3 * r})};
        try {
            ck.save("tiling/gap");
            CHECK(false, "gapped shards were saved");
        } catch (const ckpt::mismatch_error& e) {
            CHECK(e.entry() == "g" && contains(e.what(), "gap") && contains(e.what(), "rank 0"), "message: %s",
                  e.what());
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(!ckpt::latest_checkpoint("tiling") && !has_temp("tiling"), "a refused save left something");
    return 0;
}

// A problem on one rank is reported on every rank, and no rank changes an object.
int problems(const fs::path& dir) {
    state s;
    fill(s, 5);
    const auto file = saving_checkpoint(s).save(dir / "ckpt");
    {
        state t;
        scramble(t);
        if (world_rank == world_size - 1) t.embedding.resize(t.embedding.rows() + 1, emb_cols);  // one row past the end
        t.embedding.setConstant(-1.f);
        auto ck = restoring_checkpoint(t);
        try {
            ck.restore(file);
            CHECK(false, "a block outside the global tensor was restored");
        } catch (const ckpt::mismatch_error& e) {
            CHECK(contains(e.what(), "rank " + std::to_string(world_size - 1) + " of") && e.entry() == "embedding",
                  "message: %s", e.what());
        }
        CHECK(t.model.weights(0, 0) == 0.5f && t.optimizer(0) == 0.125, "an object changed");
    }
    // A damaged byte in the last rank's file: every rank refuses before changing anything, with or
    // without verify_first (the check pass reads and checks every block it stages).
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank == 0) {
        ckpt::reader last(file / ("rank-" + std::to_string(world_size - 1)));
        const auto& e = last.entries().back();
        std::FILE* f = std::fopen((file / ("rank-" + std::to_string(world_size - 1))).c_str(), "r+b");
        CHECK(f && std::fseek(f, static_cast<long>(e.offset), SEEK_SET) == 0, "open");
        const int c = std::fgetc(f);
        std::fseek(f, static_cast<long>(e.offset), SEEK_SET);
        std::fputc(c ^ 0x5a, f);
        std::fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    for (const auto mode : {ckpt::strict, ckpt::verify_first, ckpt::in_place}) {
        state t;
        scramble(t);
        auto ck = restoring_checkpoint(t);
        try {
            ck.restore(file, mode);
            CHECK(false, "a damaged checkpoint was restored");
        } catch (const ckpt::corrupt_error& e) {
            CHECK(contains(e.what(), "checksum"), "message: %s", e.what());
        }
        CHECK(t.model.weights(0, 0) == 0.5f && t.optimizer(0) == 0.125 && t.cursor.position == -1, "an object changed");
    }
    return 0;
}

// A shard's box reads only the pieces, and within them only the checksum chunks, that cover it: a
// damaged byte in the last chunk of a piece leaves a restore of the first rows (another split
// than the save's) intact, and refuses one of the last rows without changing the object.
int chunks(const fs::path& dir) {
    constexpr std::uint64_t rows = 6144, cols = 128;  // 3 MiB of float: three 1 MiB chunks
    fs::path file;
    {
        Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> whole(rows, cols);
        for (Eigen::Index i = 0; i < whole.size(); ++i) whole.data()[i] = static_cast<float>(i);
        ckpt::mpi::checkpoint ck{MPI_COMM_WORLD,
                                 ckpt::track_shard("w", whole, ckpt::shape{rows, cols}, ckpt::shape{0, 0})};
        file = ck.save(dir / "ckpt");
    }
    {
        ckpt::reader piece(file / "rank-0");
        const auto* e = piece.find("w");
        CHECK(e && e->length == rows * cols * 4, "piece");
        std::FILE* f = std::fopen((file / "rank-0").c_str(), "r+b");
        CHECK(f && std::fseek(f, static_cast<long>(e->offset + e->length - 1), SEEK_SET) == 0, "open");
        const int c = std::fgetc(f);
        std::fseek(f, static_cast<long>(e->offset + e->length - 1), SEEK_SET);
        std::fputc(c ^ 0x5a, f);
        std::fclose(f);
    }
    using block = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    block first(1000, cols);
    first.setConstant(-1.f);
    {
        ckpt::mpi::checkpoint ck{MPI_COMM_WORLD,
                                 ckpt::track_shard("w", first, ckpt::shape{rows, cols}, ckpt::shape{0, 0})};
        ck.restore(file);
    }
    for (Eigen::Index i = 0; i < first.size(); ++i)
        CHECK(first.data()[i] == static_cast<float>(i), "element %lld", static_cast<long long>(i));
    block last(1000, cols);
    last.setConstant(-1.f);
    try {
        ckpt::mpi::checkpoint ck{MPI_COMM_WORLD,
                                 ckpt::track_shard("w", last, ckpt::shape{rows, cols}, ckpt::shape{rows - 1000, 0})};
        ck.restore(file);
        CHECK(false, "a box over the damaged chunk was restored");
    } catch (const ckpt::corrupt_error& e) {
        CHECK(contains(e.what(), "checksum") && e.entry() == "w", "message: %s", e.what());
    }
    CHECK(last(0, 0) == -1.f && last(999, cols - 1) == -1.f, "the object changed");
    // The same through ckpt::reader: a range in the first chunk reads, one in the last does not.
    ckpt::reader r(file);
    std::vector<float> row(cols);
    const ckpt::entry_info copy = *r.find("w");  // a copy of the entry reads too
    r.read_range(copy, 4 * cols * 5, 4 * cols, row.data());
    CHECK(row[0] == static_cast<float>(5 * cols), "row 5");
    try {
        r.read_range(*r.find("w"), 4 * cols * (rows - 1), 4 * cols, row.data());
        CHECK(false, "a range over the damaged chunk was read");
    } catch (const ckpt::corrupt_error&) {}
    return 0;
}

// Resharding, 4 ranks to 3, both splits uneven. "a" [4000, 512] float, saved and restored by rows
// in row-major order: each overlap is read straight into the staged tensor, ranges that cross
// chunk boundaries and start mid-chunk. "b" [4, 2^20] float (4 MiB rows), saved by rows, restored
// by columns into column-major and into row-major blocks: through the reusable buffer, a window of
// chunks at a time, the windows between one row's columns and the next skipped. Then a byte
// inside a chunk that two ranks read straight into their staging is damaged: every rank refuses,
// and no rank's objects change.
constexpr std::uint64_t ra_rows = 4000, ra_cols = 512, rb_rows = 4, rb_cols = std::uint64_t{1} << 20;

int reshard_save(const fs::path& dir) {
    CHECK(world_size == 4, "reshard-save runs on 4 ranks");
    const auto r = static_cast<std::uint64_t>(world_rank);
    const auto a_lo = bound(ra_rows, 4, r), a_n = bound(ra_rows, 4, r + 1) - a_lo;
    const auto b_lo = bound(rb_rows, 4, r), b_n = bound(rb_rows, 4, r + 1) - b_lo;  // rank 0: no rows
    row_major_f a(static_cast<Eigen::Index>(a_n), ra_cols), b(static_cast<Eigen::Index>(b_n), rb_cols);
    for (Eigen::Index i = 0; i < a.rows(); ++i)
        for (Eigen::Index j = 0; j < a.cols(); ++j)
            a(i, j) = fval(7, 1, (a_lo + static_cast<std::uint64_t>(i)) * ra_cols + static_cast<std::uint64_t>(j));
    for (Eigen::Index i = 0; i < b.rows(); ++i)
        for (Eigen::Index j = 0; j < b.cols(); ++j)
            b(i, j) = fval(7, 2, (b_lo + static_cast<std::uint64_t>(i)) * rb_cols + static_cast<std::uint64_t>(j));
    ckpt::mpi::checkpoint ck{MPI_COMM_WORLD,
                             ckpt::track_shard("a", a, ckpt::shape{ra_rows, ra_cols}, ckpt::shape{a_lo, 0}),
                             ckpt::track_shard("b", b, ckpt::shape{rb_rows, rb_cols}, ckpt::shape{b_lo, 0})};
    ck.save(dir / "ckpt");
    return 0;
}

int reshard_restore(const fs::path& dir) {
    CHECK(world_size == 3, "reshard-restore runs on 3 ranks");
    const fs::path file = dir / "ckpt-1";
    const auto r = static_cast<std::uint64_t>(world_rank);
    const auto a_lo = bound(ra_rows, 3, r), a_n = bound(ra_rows, 3, r + 1) - a_lo;
    const auto b_lo = bound(rb_cols, 3, r), b_n = bound(rb_cols, 3, r + 1) - b_lo;
    const auto a_rows = static_cast<Eigen::Index>(a_n), b_cols = static_cast<Eigen::Index>(b_n);
    auto a_ok = [&](const row_major_f& a) {
        for (Eigen::Index i = 0; i < a.rows(); ++i)
            for (Eigen::Index j = 0; j < a.cols(); ++j)
                if (a(i, j) !=
                    fval(7, 1, (a_lo + static_cast<std::uint64_t>(i)) * ra_cols + static_cast<std::uint64_t>(j)))
                    return false;
        return true;
    };
    auto b_ok = [&](const auto& b) {
        for (Eigen::Index i = 0; i < b.rows(); ++i)
            for (Eigen::Index j = 0; j < b.cols(); ++j)
                if (b(i, j) !=
                    fval(7, 2, static_cast<std::uint64_t>(i) * rb_cols + b_lo + static_cast<std::uint64_t>(j)))
                    return false;
        return true;
    };
    {
        row_major_f a = row_major_f::Constant(a_rows, ra_cols, -1.f);
        Eigen::MatrixXf b = Eigen::MatrixXf::Constant(rb_rows, b_cols, -1.f);  // column-major
        ckpt::mpi::checkpoint ck{MPI_COMM_WORLD,
                                 ckpt::track_shard("a", a, ckpt::shape{ra_rows, ra_cols}, ckpt::shape{a_lo, 0}),
                                 ckpt::track_shard("b", b, ckpt::shape{rb_rows, rb_cols}, ckpt::shape{0, b_lo})};
        ck.restore(file).assert_consumed();
        CHECK(a_ok(a), "rows of a restored on 3 ranks");
        CHECK(b_ok(b), "columns of b restored column-major on 3 ranks");
    }
    {
        row_major_f b = row_major_f::Constant(rb_rows, b_cols, -1.f);
        ckpt::mpi::checkpoint ck{MPI_COMM_WORLD,
                                 ckpt::track_shard("b", b, ckpt::shape{rb_rows, rb_cols}, ckpt::shape{0, b_lo})};
        ck.restore(file);
        CHECK(b_ok(b), "columns of b restored row-major on 3 ranks");
    }
    // Damage a byte 1.5 MiB into rank 2's piece of "a" (its rows 1200 to 2400, 2 KiB each): in the
    // second chunk, which ranks 1 and 2 of 3 read straight into their staged tensors.
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank == 0) {
        ckpt::reader piece(file / "rank-2");
        const auto* e = piece.find("a");
        CHECK(e && e->length == 1200 * ra_cols * 4, "rank 2's piece of a");
        const long at = static_cast<long>(e->offset + (std::uint64_t{3} << 19));
        std::FILE* f = std::fopen((file / "rank-2").c_str(), "r+b");
        CHECK(f && std::fseek(f, at, SEEK_SET) == 0, "open");
        const int c = std::fgetc(f);
        std::fseek(f, at, SEEK_SET);
        std::fputc(c ^ 0x5a, f);
        std::fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    row_major_f a = row_major_f::Constant(a_rows, ra_cols, -1.f);
    Eigen::MatrixXf b = Eigen::MatrixXf::Constant(rb_rows, b_cols, -1.f);
    ckpt::mpi::checkpoint ck{MPI_COMM_WORLD,
                             ckpt::track_shard("a", a, ckpt::shape{ra_rows, ra_cols}, ckpt::shape{a_lo, 0}),
                             ckpt::track_shard("b", b, ckpt::shape{rb_rows, rb_cols}, ckpt::shape{0, b_lo})};
    try {
        ck.restore(file);
        CHECK(false, "a checkpoint with a damaged chunk was restored");
    } catch (const ckpt::corrupt_error& e) {
        CHECK(contains(e.what(), "checksum") && contains(e.what(), "rank 1 of 3") && e.entry() == "a", "message: %s",
              e.what());
    }
    CHECK((a.array() == -1.f).all() && (b.array() == -1.f).all(), "an object changed");
    return 0;
}

int loop(const fs::path& dir, int saves) {
    for (int i = 0; i < saves; ++i) {
        state s;
        fill(s, static_cast<std::uint64_t>(100 + i));
        auto ck = saving_checkpoint(s);
        const auto p = ck.save(dir / "ckpt", {static_cast<std::int64_t>(100 + i), {}, {}});
        // Keep the last two: the disk stays small however long the loop runs before its kill.
        const auto n = std::stoull(p.filename().string().substr(5));
        if (world_rank == 0 && n > 2) fs::remove_all(dir / ("ckpt-" + std::to_string(n - 2)));
    }
    return 0;
}

// Every MPI call of ckpt goes through its communicator, which checks the return code: where the
// communicator's errors return (ckpt's own duplicate; here one set up alike), a failed call throws
// io_error naming the call on every rank that made it. A broadcast from a rank that does not exist
// fails on every rank, deterministically.
int mpi_error() {
    MPI_Comm dup = MPI_COMM_NULL;
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
    {
        ckpt::mpi::detail::communicator comm(dup);
        ckpt::mpi::detail::communicator own = comm.duplicate();  // as an asynchronous save makes it
        for (const auto* c : {&comm, &own}) {
            bool thrown = false;
            try {
                c->broadcast("x", c->size());
            } catch (const ckpt::io_error& e) {
                thrown = true;
                CHECK(contains(e.what(), "MPI_Bcast failed: "), "message: %s", e.what());
            }
            CHECK(thrown, "a broadcast from rank %d of %d did not throw", c->size(), c->size());
        }
        CHECK(own.free(), "the duplicate was not freed");
    }
    MPI_Comm_free(&dup);
    return 0;
}

int check_latest(const fs::path& dir) {
    const auto latest = ckpt::latest_checkpoint(dir);
    CHECK(latest.has_value(), "no committed checkpoint in %s", dir.c_str());
    state s;
    scramble(s);
    auto ck = restoring_checkpoint(s);
    const auto status = ck.restore(*latest, ckpt::partial);
    CHECK(status.metadata().step.has_value(), "no step");
    check_replicated_and_shards(s, static_cast<std::uint64_t>(*status.metadata().step));
    if (world_rank == 0)
        std::printf("restored %s (step %lld)\n", latest->c_str(), static_cast<long long>(*status.metadata().step));
    return 0;
}

}  // namespace

// Replicated tensors of 24 MiB, more than the parallel reader's threshold: a restore reads each
// rank file's blocks on several threads (the second restore into the storage the first swapped
// out, so on the pool; the first into new memory, on one), bit for bit, with and without
// ckpt::single_threaded; from the third restore on, nothing is allocated (the spares); a damaged
// chunk in the middle of one tensor refuses the restore on every rank, naming the entry, and
// changes nothing.
struct layers_t {
    std::vector<Eigen::MatrixXf> layers;
    Eigen::VectorXd scale;
};
CKPT_FIELDS(layers_t, layers, scale)

void fill_layers(layers_t& l, std::uint64_t seed) {
    l.layers.resize(6);
    for (std::size_t k = 0; k < l.layers.size(); ++k) {
        l.layers[k].resize(1024, 1024);  // 4 MiB each
        for (Eigen::Index i = 0; i < l.layers[k].size(); ++i)
            l.layers[k].data()[i] = seed == 0 ? 0.5f : fval(seed, 20 + k, static_cast<std::uint64_t>(i));
    }
    l.scale.resize(2000);  // 16 KiB
    for (Eigen::Index i = 0; i < l.scale.size(); ++i)
        l.scale(i) = seed == 0 ? 0.25 : dval(seed, 30, static_cast<std::uint64_t>(i));
}

bool same_layers(const layers_t& a, const layers_t& b) {
    if (a.layers.size() != b.layers.size() || !same_bits(a.scale, b.scale)) return false;
    for (std::size_t k = 0; k < a.layers.size(); ++k)
        if (!same_bits(a.layers[k], b.layers[k])) return false;
    return true;
}

int replicated(const fs::path& dir) {
    ckpt::set_max_threads(4);
    layers_t saved;
    fill_layers(saved, 9);
    const auto file = ckpt::mpi::checkpoint{MPI_COMM_WORLD, ckpt::track("net", saved)}.save(dir / "ckpt");
    layers_t l, untouched;
    fill_layers(untouched, 0);
    ckpt::mpi::checkpoint ck{MPI_COMM_WORLD, ckpt::track("net", l)};
    for (const auto mode : {ckpt::strict, ckpt::strict, ckpt::single_threaded, ckpt::strict}) {
        l = untouched;
        ck.restore(file, mode).assert_consumed();
        CHECK(same_layers(l, saved), "the restored layers differ");
    }
    // A replicated tensor whose storage has the file's size is verified, then landed in place: no
    // restore allocates it, on several threads or one. One that must take the file's size (empty)
    // is staged in new storage, which the object takes: one allocation.
    ckpt_test::counted_vector v(1 << 20), v2(1 << 20);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = fval(9, 40, i);
    const auto counted_file = ckpt::mpi::checkpoint{MPI_COMM_WORLD, ckpt::track("v", v)}.save(dir / "counted");
    ckpt::mpi::checkpoint counted{MPI_COMM_WORLD, ckpt::track("v", v2)};
    for (int round = 0; round < 4; ++round) {
        const bool empty = round == 3;
        if (empty)
            ckpt_test::counted_vector().swap(v2);
        else
            std::fill(v2.begin(), v2.end(), 0.0f);
        ckpt_test::heap_count::reset();
        counted.restore(counted_file, round == 1 ? ckpt::single_threaded : ckpt::strict);
        const std::size_t allocated = ckpt_test::heap_count::allocations;
        CHECK(v2 == v, "restore %d of the counted vector differs", round);
        CHECK(allocated == (empty ? 1u : 0u), "restore %d allocated %zu times", round, allocated);
    }

    // The ranks share the check of the replicated layers: on several ranks each makes fewer reads
    // in a default restore than in a single-threaded one, whose walk checks every block itself
    // (the landings read alike in both; a 4 MiB layer is checked in 16 reads).
    static std::atomic<long> read_calls{0};
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path&) {
        if (op == ckpt::detail::io_op::read) ++read_calls;
        return 0;
    };
    l = untouched;
    read_calls = 0;
    ck.restore(file, ckpt::single_threaded);
    const long alone = read_calls.load();
    l = untouched;
    read_calls = 0;
    ck.restore(file);
    const long shared = read_calls.load();
    ckpt::detail::io_fault_injector = nullptr;
    CHECK(same_layers(l, saved), "the restore with shared checks differs");
    CHECK(world_size == 1 || shared + 16 <= alone, "reads: %ld in a default restore, %ld single-threaded", shared,
          alone);

    // A landing that fails (the file changed between the check and the landing; here the last
    // rank's last read, which is a landing's, fails) fails the restore on every rank as the same
    // error, which says that objects changed.
    static std::atomic<long> reads{0}, countdown{0};
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path&) {
        if (op == ckpt::detail::io_op::read) ++reads;
        return 0;
    };
    l = untouched;
    ck.restore(file, ckpt::single_threaded);
    countdown = world_rank == world_size - 1 ? reads.load() : 0;
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path&) {
        return op == ckpt::detail::io_op::read && countdown.fetch_sub(1) == 1 ? EIO : 0;
    };
    l = untouched;
    try {
        ck.restore(file, ckpt::single_threaded);
        CHECK(false, "a restore whose landing failed succeeded");
    } catch (const ckpt::io_error& e) {
        CHECK(contains(e.what(), "rank " + std::to_string(world_size - 1) + " of " + std::to_string(world_size)) &&
                  contains(e.what(), "some of which now hold"),
              "message: %s", e.what());
    }
    ckpt::detail::io_fault_injector = nullptr;
    l = untouched;
    ck.restore(file).assert_consumed();
    CHECK(same_layers(l, saved), "the restore after a failed landing differs");

    // One byte in the middle of a layer, in whichever rank file holds it: every rank refuses
    // before changing anything, whichever rank's share of the check the layer falls in (the ranks
    // share the check of the replicated blocks they all land: the first layer is rank 0's, the
    // last the last rank's). Flipped twice, the byte is as it was.
    auto flip = [&](const std::string& entry) {
        MPI_Barrier(MPI_COMM_WORLD);
        if (world_rank == 0) {
            bool damaged = false;
            for (int r = 0; r < world_size && !damaged; ++r) {
                const fs::path rank_file = file / ("rank-" + std::to_string(r));
                ckpt::reader reader(rank_file);
                const auto* e = reader.find(entry);
                if (!e) continue;
                std::FILE* f = std::fopen(rank_file.c_str(), "r+b");
                const long at = static_cast<long>(e->offset + e->length / 2);
                CHECK(f && std::fseek(f, at, SEEK_SET) == 0, "open");
                const int c = std::fgetc(f);
                std::fseek(f, at, SEEK_SET);
                std::fputc(c ^ 0x5a, f);
                std::fclose(f);
                damaged = true;
            }
            CHECK(damaged, "no rank file holds %s", entry.c_str());
        }
        MPI_Barrier(MPI_COMM_WORLD);
    };
    for (const char* entry : {"net/layers/0", "net/layers/5", "net/layers/3"}) {
        flip(entry);
        for (const auto mode : {ckpt::strict, ckpt::single_threaded}) {
            l = untouched;
            try {
                ck.restore(file, mode);
                CHECK(false, "a damaged checkpoint was restored");
            } catch (const ckpt::corrupt_error& e) {
                CHECK(contains(e.what(), "checksum") && e.entry() == entry && !contains(e.what(), "now hold"),
                      "message: %s (entry %s)", e.what(), e.entry().c_str());
            }
            CHECK(same_layers(l, untouched), "a refused restore changed the layers");
        }
        flip(entry);
    }
    l = untouched;
    ck.restore(file).assert_consumed();
    CHECK(same_layers(l, saved), "the restore after the damage was undone differs");
    return 0;
}

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    int rc = 2;
    try {
        const std::string mode = argc > 1 ? argv[1] : "";
        if (mode == "save" && argc == 4)
            rc = save(argv[2], std::strtoull(argv[3], nullptr, 10));
        else if (mode == "restore" && argc == 5)
            rc = restore(argv[2], std::strtoull(argv[3], nullptr, 10), std::atoi(argv[4]));
        else if (mode == "failure" && argc == 3)
            rc = failure(argv[2]);
        else if (mode == "divergent" && argc == 3)
            rc = divergent(argv[2]);
        else if (mode == "tiling" && argc == 2)
            rc = tiling();
        else if (mode == "problems" && argc == 3)
            rc = problems(argv[2]);
        else if (mode == "chunks" && argc == 3)
            rc = chunks(argv[2]);
        else if (mode == "reshard-save" && argc == 3)
            rc = reshard_save(argv[2]);
        else if (mode == "reshard-restore" && argc == 3)
            rc = reshard_restore(argv[2]);
        else if (mode == "loop" && argc == 4)
            rc = loop(argv[2], std::atoi(argv[3]));
        else if (mode == "check-latest" && argc == 3)
            rc = check_latest(argv[2]);
        else if (mode == "mpi-error" && argc == 2)
            rc = mpi_error();
        else if (mode == "replicated" && argc == 3)
            rc = replicated(argv[2]);
        else if (world_rank == 0)
            std::fprintf(stderr, "usage: see the top of tests/mpi/sharded.cpp\n");
    } catch (const std::exception& e) {
        CHECK(false, "unexpected exception: %s", e.what());
    }
    MPI_Finalize();
    return rc;
}
