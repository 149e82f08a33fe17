// libFuzzer harness for a sharded checkpoint's manifest listing (docs/format.md, "Sharded
// checkpoints"): the input is the listing, written as the manifest of a directory whose two rank
// files are sound, then read by everything that reads a sharded checkpoint: ckpt::reader (every
// entry, every byte, verify), sharded_layout, and a strict and a partial restore. The manifest
// is the adversary here: rank counts, lengths and shapes it claims must be bounded by the files
// before anything is sized by them (issue 24: 4e9 ranks, 1e12-byte entries, [2^62] shards).
// A finding is anything but a ckpt::error, as for fuzz_reader.cpp.
//
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
//   -I include -I /usr/include/eigen3 tests/fuzz/fuzz_manifest.cpp -o fuzz_manifest
//   ./fuzz_manifest -max_total_time=600 -malloc_limit_mb=256 tests/fuzz/corpus_manifest
// With -DCKPT_FUZZ_MAKE_CORPUS and without -fsanitize=fuzzer it builds a program writing the seeds:
//   g++ -std=c++17 -O1 -DCKPT_FUZZ_MAKE_CORPUS -I include -I /usr/include/eigen3 tests/fuzz/fuzz_manifest.cpp -o
//   make_manifest_corpus
//   ./make_manifest_corpus tests/fuzz/corpus_manifest

#include <ckpt/ckpt.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

namespace fuzz_manifest {
namespace cd = ckpt::detail;
using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

const auto when = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));

// Writes rank-0 and rank-1 into `dir` and returns the listing that describes them: a replicated
// "step" (rank 0), a shard "w" [4, 3] split by rows, a per-rank "seen" [2] in each, and a
// replicated text "note" (rank 1).
inline cd::sharded_manifest write_rank_files(const std::filesystem::path& dir) {
    std::filesystem::create_directories(dir);
    cd::sharded_manifest m;
    m.world_size = 2;
    cd::manifest_entry step{"step", cd::entry_role::replicated, ckpt::entry_kind::tensor, ckpt::dtype::int64, {}, {}};
    cd::manifest_entry w{"w", cd::entry_role::shard, ckpt::entry_kind::tensor, ckpt::dtype::float32, ckpt::shape{4, 3},
                         {}};
    cd::manifest_entry note{
        "note", cd::entry_role::replicated, ckpt::entry_kind::text, ckpt::dtype::bytes, ckpt::shape{5}, {}};
    std::vector<cd::manifest_entry> seen;
    for (std::uint32_t r = 0; r < 2; ++r) {
        cd::file_writer file(dir / cd::rank_file_name(r));
        if (r == 0) {
            const std::int64_t value = 42;
            file.block("step", ckpt::entry_kind::tensor, ckpt::dtype::int64, ckpt::shape{}, false, &value, 8);
            step.pieces.push_back({0, false, ckpt::shape{}, ckpt::shape{}, 8, file.last_checksum()});
        } else {
            file.block("note", ckpt::entry_kind::text, ckpt::dtype::bytes, ckpt::shape{5}, false, "hello", 5);
            note.pieces.push_back({1, false, ckpt::shape{0}, ckpt::shape{5}, 5, file.last_checksum()});
        }
        const float rows[6] = {float(r), 1, 2, float(r), 3, 4};
        file.block("w", ckpt::entry_kind::tensor, ckpt::dtype::float32, ckpt::shape{2, 3}, false, rows, 24);
        w.pieces.push_back(
            {r, false, ckpt::shape{2 * std::uint64_t{r}, 0}, ckpt::shape{2, 3}, 24, file.last_checksum()});
        const std::int64_t counts[2] = {r, 2 * std::int64_t{r}};
        file.block("seen", ckpt::entry_kind::tensor, ckpt::dtype::int64, ckpt::shape{2}, false, counts, 16);
        seen.push_back(
            {"seen", cd::entry_role::per_rank, ckpt::entry_kind::tensor, ckpt::dtype::int64, ckpt::shape{2}, {}});
        seen.back().pieces.push_back({r, false, ckpt::shape{0}, ckpt::shape{2}, 16, file.last_checksum()});
        file.finish({}, 1, when);
    }
    m.entries = {step, note, w};
    m.entries.insert(m.entries.end(), seen.begin(), seen.end());
    return m;
}

inline void write_manifest(const std::filesystem::path& dir, const std::string& listing) {
    cd::file_writer manifest(dir / cd::sharded_manifest_name);
    manifest.block(cd::sharded_manifest_entry, ckpt::entry_kind::tensor, ckpt::dtype::uint8,
                   ckpt::shape{listing.size()}, false, listing.data(), listing.size());
    manifest.finish({}, 1, when);
}
}  // namespace fuzz_manifest

#ifndef CKPT_FUZZ_MAKE_CORPUS
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::filesystem::path dir = [] {
        const std::filesystem::path d = "fuzz_sharded." + std::to_string(::getpid()) + "/ckpt-1";
        fuzz_manifest::write_rank_files(d);
        return d;
    }();
    try {
        fuzz_manifest::write_manifest(dir, std::string(reinterpret_cast<const char*>(data), size));
    } catch (const ckpt::error&) {
        return 0;
    }
    try {
        ckpt::reader r(dir);
        for (const auto& e : r.entries()) {
            try {
                (void)r.read_bytes(e);
            } catch (const ckpt::error&) {}
        }
        r.verify();
    } catch (const ckpt::error&) {}
    try {
        ckpt::sharded_layout layout(dir);
        layout.verify_files();
    } catch (const ckpt::error&) {}
    for (auto mode : {ckpt::strict, ckpt::partial}) {
        fuzz_manifest::row_major w;
        std::int64_t step = 0;
        ckpt::checkpoint ck{ckpt::track("w", w), ckpt::track("step", step)};
        try {
            ck.restore(dir, mode);
        } catch (const ckpt::error&) {}
    }
    return 0;
}
#else
// Writes the listings of the rank files above (whole, and with some entries left out) as seeds.
int main(int argc, char** argv) {
    const std::filesystem::path out = argc > 1 ? argv[1] : "corpus_manifest";
    const auto dir = std::filesystem::temp_directory_path() / ("make_manifest_corpus." + std::to_string(::getpid()));
    auto m = fuzz_manifest::write_rank_files(dir);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(out);
    auto put = [&](const std::string& name, const ckpt::detail::sharded_manifest& listing) {
        const std::string bytes = ckpt::detail::encode_manifest(listing);
        if (std::FILE* f = std::fopen((out / name).c_str(), "wb")) {
            std::fwrite(bytes.data(), 1, bytes.size(), f);
            std::fclose(f);
        }
    };
    put("seed-whole", m);
    auto shards_only = m;
    shards_only.entries = {m.entries[2]};
    put("seed-shard", shards_only);
    auto replicated = m;
    replicated.entries.resize(2);
    put("seed-replicated", replicated);
    return 0;
}
#endif
