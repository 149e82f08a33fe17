// file_writer's blocks handed over in pieces (begin_block, append_block, end_block: what
// ckpt::import_file streams through) make the same file as whole blocks, byte for byte, and a
// source that gives more or fewer bytes than it declared fails before anything is published.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::string contents(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST_CASE("a block written in pieces is the block written whole, chunk checksums included", "[format][stream]") {
    fs::remove_all("writer_stream");
    fs::create_directories("writer_stream");
    const auto when = std::chrono::system_clock::now();
    constexpr std::uint64_t chunk = ckpt::detail::min_chunk_size;
    // Sizes around the chunk size: one hash for the whole block up to one chunk, a table beyond.
    std::vector<std::vector<float>> blocks;
    for (std::uint64_t bytes : {std::uint64_t{0}, std::uint64_t{12}, chunk, chunk + 4, 5 * chunk - 8}) {
        std::vector<float> b(bytes / 4);
        for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i) * 0.5f;
        blocks.push_back(b);
    }
    {
        ckpt::detail::file_writer whole("writer_stream/whole", chunk);
        for (std::size_t k = 0; k < blocks.size(); ++k)
            whole.block("t" + std::to_string(k), ckpt::entry_kind::tensor, ckpt::dtype::float32,
                        ckpt::shape{blocks[k].size()}, false, blocks[k].data(), blocks[k].size() * 4);
        whole.finish(ckpt::save_options{}, 0, when);
    }
    {
        ckpt::detail::file_writer pieces("writer_stream/pieces", chunk);
        for (std::size_t k = 0; k < blocks.size(); ++k) {
            const std::size_t bytes = blocks[k].size() * 4;
            pieces.begin_block("t" + std::to_string(k), ckpt::entry_kind::tensor, ckpt::dtype::float32,
                               ckpt::shape{blocks[k].size()}, false, bytes);
            const auto* data = reinterpret_cast<const char*>(blocks[k].data());
            for (std::size_t at = 0, piece = 7; at < bytes; at += piece, piece = piece * 3 % 1000 + 1)
                pieces.append_block(data + at, std::min(piece, bytes - at));  // pieces across chunk edges
            pieces.end_block();
        }
        pieces.finish(ckpt::save_options{}, 0, when);
    }
    CHECK(contents("writer_stream/pieces") == contents("writer_stream/whole"));
    ckpt::reader r("writer_stream/pieces");
    r.verify();
    CHECK(r.read<std::vector<float>>("t4") == blocks[4]);
}

TEST_CASE("a block given more or fewer bytes than declared is refused and nothing is published", "[format][stream]") {
    fs::remove_all("writer_short");
    fs::create_directories("writer_short");
    const char bytes[16] = {};
    {
        ckpt::detail::file_writer w("writer_short/long");
        w.begin_block("t", ckpt::entry_kind::tensor, ckpt::dtype::float32, ckpt::shape{2}, false, 8);
        CHECK_THROWS_WITH(w.append_block(bytes, 12), Catch::Contains("declared") && Catch::Contains("'t'"));
    }
    {
        ckpt::detail::file_writer w("writer_short/short");
        w.begin_block("t", ckpt::entry_kind::tensor, ckpt::dtype::float32, ckpt::shape{2}, false, 8);
        w.append_block(bytes, 4);
        CHECK_THROWS_WITH(w.end_block(), Catch::Contains("4 bytes, 8 declared"));
    }
    CHECK(fs::is_empty("writer_short"));
}
