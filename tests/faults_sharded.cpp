// Hostile sharded checkpoints: a manifest is data, with its own valid checksum, and every number in
// it is bounded by the files before anything is sized by it. A rank count far beyond the
// directory's files, a block longer than its rank file, a global shape whose bytes overflow 64
// bits: each is corrupt_error at once (no bad_alloc, no gigabytes allocated first, no wrapped
// length), a manager falls back to the previous checkpoint, and the tiling check of a shard with
// many pieces costs what the pieces cost, not their square.
// The checkpoints are written here without MPI: rank files and a manifest as ckpt/mpi.hpp writes them.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <sys/wait.h>

namespace fs = std::filesystem;
namespace cd = ckpt::detail;

namespace {

fs::path fresh_dir(const std::string& name) {
    fs::remove_all(name);
    fs::create_directories(name);
    return name;
}

using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A sharded checkpoint of `world` ranks: a replicated "step" (int64, in rank 0's file) and a shard
// "w" of 2 rows per rank and 3 columns, split by rows. `tamper` edits the manifest before it is
// written (its file gets a valid checksum all the same: the adversary writes what it likes).
template <class Tamper>
void write_sharded(const fs::path& dir, std::uint32_t world, Tamper&& tamper) {
    fs::create_directories(dir);
    const auto now = std::chrono::system_clock::now();
    cd::sharded_manifest m;
    m.world_size = world;
    cd::manifest_entry step{"step", cd::entry_role::replicated, ckpt::entry_kind::tensor, ckpt::dtype::int64, {}, {}};
    cd::manifest_entry w{"w",
                         cd::entry_role::shard,
                         ckpt::entry_kind::tensor,
                         ckpt::dtype::float32,
                         ckpt::shape{2 * std::uint64_t{world}, 3},
                         {}};
    for (std::uint32_t r = 0; r < world; ++r) {
        cd::file_writer file(dir / cd::rank_file_name(r));
        if (r == 0) {
            const std::int64_t value = 42;
            file.block("step", ckpt::entry_kind::tensor, ckpt::dtype::int64, ckpt::shape{}, false, &value, 8);
            step.pieces.push_back({0, false, ckpt::shape{}, ckpt::shape{}, 8, file.last_checksum()});
        }
        const std::vector<float> rows{float(r), 1, 2, float(r), 3, 4};
        file.block("w", ckpt::entry_kind::tensor, ckpt::dtype::float32, ckpt::shape{2, 3}, false, rows.data(), 24);
        w.pieces.push_back(
            {r, false, ckpt::shape{2 * std::uint64_t{r}, 0}, ckpt::shape{2, 3}, 24, file.last_checksum()});
        file.finish({}, 1, now);
    }
    m.entries = {step, w};
    tamper(m);
    const std::string body = cd::encode_manifest(m);
    cd::file_writer manifest(dir / cd::sharded_manifest_name);
    manifest.block(cd::sharded_manifest_entry, ckpt::entry_kind::tensor, ckpt::dtype::uint8, ckpt::shape{body.size()},
                   false, body.data(), body.size());
    manifest.finish({}, 1, now);
}

void write_sharded(const fs::path& dir, std::uint32_t world) {
    write_sharded(dir, world, [](cd::sharded_manifest&) {});
}

struct model {
    row_major w;
    std::int64_t step = 0;
};

// Restores `dir` into a fresh model; the step it held.
std::int64_t restored_step(const fs::path& dir) {
    model m;
    ckpt::checkpoint ck{ckpt::track("w", m.w), ckpt::track("step", m.step)};
    ck.restore(dir).assert_consumed();
    return m.step;
}

}  // namespace

TEST_CASE("a sharded checkpoint written without MPI restores (the fixture of this file)", "[faults][sharded]") {
    const auto dir = fresh_dir("sharded_fixture") / "ckpt-1";
    write_sharded(dir, 3);
    model m;
    ckpt::checkpoint ck{ckpt::track("w", m.w), ckpt::track("step", m.step)};
    ck.restore(dir).assert_consumed();
    CHECK(m.step == 42);
    REQUIRE(m.w.rows() == 6);
    CHECK(m.w(4, 0) == 2.0f);
    CHECK(m.w(5, 2) == 4.0f);
}

TEST_CASE("a manifest's rank count is bounded by the rank files in its directory", "[faults][sharded]") {
    const auto dir = fresh_dir("sharded_world") / "ckpt-1";
    for (const std::uint32_t world : {3u, 500000000u, 4294967295u}) {
        DYNAMIC_SECTION("world size " << world << " with the files of 2 ranks") {
            write_sharded(dir, 2, [&](cd::sharded_manifest& m) { m.world_size = world; });
            REQUIRE_THROWS_AS(ckpt::reader(dir), ckpt::corrupt_error);
            REQUIRE_THROWS_WITH(ckpt::reader(dir), Catch::Contains("saved by " + std::to_string(world) + " ranks") &&
                                                       Catch::Contains("holds 2 of their files") &&
                                                       Catch::Contains("rank-2 is missing"));
            REQUIRE_THROWS_AS(ckpt::sharded_layout(dir), ckpt::corrupt_error);
            REQUIRE_THROWS_AS(restored_step(dir), ckpt::corrupt_error);
        }
    }
    SECTION("a rank file that is not a regular file") {
        write_sharded(dir, 2);
        fs::remove(dir / "rank-1");
        fs::create_directory(dir / "rank-1");
        REQUIRE_THROWS_WITH(ckpt::reader(dir), Catch::Contains("a directory, not a rank file"));
    }
}

TEST_CASE("a manager falls back from a sharded checkpoint whose rank count is absurd", "[faults][sharded]") {
    const auto dir = fresh_dir("sharded_fallback");
    write_sharded(dir / "ckpt-1", 2);
    write_sharded(dir / "ckpt-2", 2, [](cd::sharded_manifest& m) { m.world_size = 4000000000u; });
    model m;
    ckpt::checkpoint ck{ckpt::track("w", m.w), ckpt::track("step", m.step)};
    CHECK(ckpt::latest_checkpoint(dir) == dir / "ckpt-1");
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(3)};
    mgr.restore_or_initialize([] { FAIL("initialized instead of restoring ckpt-1"); });
    CHECK(m.step == 42);
}

TEST_CASE("block lengths from a manifest are bounded by the rank files before anything is allocated",
          "[faults][sharded]") {
    const auto dir = fresh_dir("sharded_lengths") / "ckpt-1";
    for (const std::uint64_t length : {std::uint64_t{4000000000}, std::uint64_t{1000000000000}}) {
        DYNAMIC_SECTION("a serialized entry of " << length << " bytes") {
            write_sharded(dir, 2, [&](cd::sharded_manifest& m) {
                m.entries.push_back({"note",
                                     cd::entry_role::replicated,
                                     ckpt::entry_kind::serialized,
                                     ckpt::dtype::bytes,
                                     ckpt::shape{length},
                                     {}});
                m.entries.back().pieces.push_back({1, false, ckpt::shape{0}, ckpt::shape{length}, length, 0});
            });
            REQUIRE_THROWS_AS(ckpt::reader(dir), ckpt::corrupt_error);
            REQUIRE_THROWS_WITH(ckpt::reader(dir), Catch::Contains("entry 'note' has a block of " +
                                                                   std::to_string(length) + " bytes in rank-1"));
        }
        DYNAMIC_SECTION("a tensor entry of " << length << " bytes") {
            write_sharded(dir, 2, [&](cd::sharded_manifest& m) {
                m.entries.push_back({"big",
                                     cd::entry_role::per_rank,
                                     ckpt::entry_kind::tensor,
                                     ckpt::dtype::uint8,
                                     ckpt::shape{length},
                                     {}});
                m.entries.back().pieces.push_back({0, false, ckpt::shape{0}, ckpt::shape{length}, length, 0});
            });
            REQUIRE_THROWS_WITH(ckpt::reader(dir), Catch::Contains("entry 'big' has a block of"));
        }
    }
    SECTION("blocks that each fit but not together") {
        write_sharded(dir, 2, [](cd::sharded_manifest& m) {
            const auto size = fs::file_size("sharded_lengths/ckpt-1/rank-1");
            for (const char* name : {"a", "b"}) {
                m.entries.push_back({name,
                                     cd::entry_role::replicated,
                                     ckpt::entry_kind::serialized,
                                     ckpt::dtype::bytes,
                                     ckpt::shape{size - 100},
                                     {}});
                m.entries.back().pieces.push_back({1, false, ckpt::shape{0}, ckpt::shape{size - 100}, size - 100, 0});
            }
        });
        REQUIRE_THROWS_WITH(ckpt::reader(dir),
                            Catch::Contains("entry 'b' has a block of") && Catch::Contains("of them for other blocks"));
    }
}

TEST_CASE("a tensor's byte length follows one checked rule: [2^62] float64 is corrupt everywhere",
          "[faults][sharded]") {
    const std::uint64_t huge = std::uint64_t{1} << 62;
    CHECK_FALSE(cd::tensor_byte_length(ckpt::shape{huge}, ckpt::dtype::float64));
    CHECK_FALSE(cd::tensor_byte_length(ckpt::shape{huge, 4}, ckpt::dtype::uint8));
    CHECK(cd::tensor_byte_length(ckpt::shape{huge / 4}, ckpt::dtype::float64) == std::uint64_t{1} << 63);
    CHECK(cd::tensor_byte_length(ckpt::shape{}, ckpt::dtype::int64) == 8u);

    const auto dir = fresh_dir("sharded_overflow") / "ckpt-1";
    // Four pieces of 2^60 elements each tile [2^62], and each piece's own bytes fit in 64 bits.
    write_sharded(dir, 4, [&](cd::sharded_manifest& m) {
        cd::manifest_entry e{
            "huge", cd::entry_role::shard, ckpt::entry_kind::tensor, ckpt::dtype::float64, ckpt::shape{huge}, {}};
        for (std::uint32_t r = 0; r < 4; ++r)
            e.pieces.push_back({r, false, ckpt::shape{r * (huge / 4)}, ckpt::shape{huge / 4}, huge * 2, 0});
        m.entries.push_back(e);
    });
    REQUIRE_THROWS_AS(ckpt::reader(dir), ckpt::corrupt_error);
    REQUIRE_THROWS_WITH(ckpt::reader(dir),
                        Catch::Contains("shard 'huge'") && Catch::Contains("more bytes than 64 bits can count"));
    REQUIRE_THROWS_AS(restored_step(dir), ckpt::corrupt_error);
}

TEST_CASE("the tiling check of a shard with many pieces is right and bounded by the pieces", "[faults][sharded]") {
    // 160k pieces: what once took `ckpt verify` 53 s. Correctness is asserted here; the time is
    // whatever a sort and a sweep cost.
    const std::uint64_t n = 160000;
    std::vector<ckpt::shape> lo, ext;
    std::vector<std::uint32_t> owners;
    auto add = [&](ckpt::shape l, ckpt::shape e) {
        owners.push_back(static_cast<std::uint32_t>(lo.size()));
        lo.push_back(l);
        ext.push_back(e);
    };
    SECTION("split by rows, in shuffled order") {
        std::vector<std::uint64_t> order(n);
        for (std::uint64_t i = 0; i < n; ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), std::mt19937_64{5});
        for (const auto i : order) add(ckpt::shape{i, 0}, ckpt::shape{1, 8});
        CHECK(cd::tiling_problem(ckpt::shape{n, 8}, lo, ext, owners).empty());
        SECTION("one piece moved onto its neighbour") {
            lo[77] = ckpt::shape{order[77] + 1, 0};
            CHECK_THAT(cd::tiling_problem(ckpt::shape{n, 8}, lo, ext, owners), Catch::Contains("overlap"));
        }
        SECTION("one piece missing") {
            ext[1234] = ckpt::shape{0, 8};
            CHECK_THAT(cd::tiling_problem(ckpt::shape{n, 8}, lo, ext, owners),
                       Catch::Contains("leave a gap: they cover " + std::to_string((n - 1) * 8) + " of the " +
                                       std::to_string(n * 8)));
        }
    }
    SECTION("split by columns: swept along the columns") {
        for (std::uint64_t i = 0; i < n; ++i) add(ckpt::shape{0, i}, ckpt::shape{8, 1});
        CHECK(cd::tiling_problem(ckpt::shape{8, n}, lo, ext, owners).empty());
        ext[n - 1] = ckpt::shape{8, 2};  // reaches outside
        CHECK_THAT(cd::tiling_problem(ckpt::shape{8, n}, lo, ext, owners), Catch::Contains("lies outside"));
    }
    SECTION("a layout whose check would exceed the cap is refused, not checked for minutes") {
        // Blocks of one column each, every one reaching 100 rows below its start: along either
        // dimension each block is compared with all before it, so n^2 / 2 comparisons in all.
        for (std::uint64_t i = 0; i < 100; ++i) add(ckpt::shape{i, i}, ckpt::shape{100, 1});
        CHECK_THAT(cd::tiling_problem(ckpt::shape{200, 100}, lo, ext, owners, 1000),
                   Catch::Contains("would take more than 1000 comparisons"));
        // Under the real cap the same layout is checked: no overlap, but a gap.
        CHECK_THAT(cd::tiling_problem(ckpt::shape{200, 100}, lo, ext, owners), Catch::Contains("leave a gap"));
    }
    SECTION("a grid of 100 x 100 blocks, and one block that covers four") {
        for (std::uint64_t i = 0; i < 100; ++i)
            for (std::uint64_t j = 0; j < 100; ++j) add(ckpt::shape{2 * i, 3 * j}, ckpt::shape{2, 3});
        CHECK(cd::tiling_problem(ckpt::shape{200, 300}, lo, ext, owners).empty());
        add(ckpt::shape{50, 60}, ckpt::shape{4, 6});
        CHECK_THAT(cd::tiling_problem(ckpt::shape{200, 300}, lo, ext, owners), Catch::Contains("overlap"));
    }
}

#ifdef CKPT_TOOL
namespace {
// The tool's exit status and output.
std::pair<int, std::string> tool(const std::string& args) {
    std::FILE* p = ::popen((std::string(CKPT_TOOL) + " " + args + " 2>&1").c_str(), "r");
    REQUIRE(p);
    std::string out;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    const int status = ::pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}
}  // namespace

TEST_CASE("the tool refuses hostile manifests with an error, not an allocation", "[faults][sharded][tool]") {
    const auto dir = fresh_dir("sharded_tool");
    write_sharded(dir / "ckpt-1", 2, [](cd::sharded_manifest& m) { m.world_size = 500000000; });
    const std::uint64_t huge = std::uint64_t{1} << 62;
    write_sharded(dir / "ckpt-2", 4, [&](cd::sharded_manifest& m) {
        cd::manifest_entry e{
            "huge", cd::entry_role::shard, ckpt::entry_kind::tensor, ckpt::dtype::float64, ckpt::shape{huge}, {}};
        for (std::uint32_t r = 0; r < 4; ++r)
            e.pieces.push_back({r, false, ckpt::shape{r * (huge / 4)}, ckpt::shape{huge / 4}, huge * 2, 0});
        m.entries.push_back(e);
    });
    write_sharded(dir / "ckpt-3", 2);

    const auto inspect = tool("inspect " + (dir / "ckpt-1").string());
    CHECK(inspect.first == 2);
    CHECK_THAT(inspect.second, Catch::Contains("rank-2 is missing"));
    const auto exported =
        tool("export " + (dir / "ckpt-2").string() + " --format npz -o " + (dir / "out.npz").string());
    CHECK(exported.first == 2);
    CHECK_THAT(exported.second, Catch::Contains("more bytes than 64 bits can count"));
    CHECK_FALSE(fs::exists(dir / "out.npz"));
    CHECK(tool("verify " + (dir / "ckpt-2").string()).first != 0);
    CHECK(tool("verify " + (dir / "ckpt-3").string()).first == 0);
    const auto listed = tool("ls " + dir.string());
    CHECK(listed.first == 0);
    CHECK_THAT(listed.second, Catch::Contains("ckpt-3"));
}
#endif
