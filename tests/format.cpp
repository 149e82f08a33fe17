// Damaged and hostile files: every truncation and every single-bit flip of a small checkpoint is
// detected, hostile indexes with valid checksums are refused before any large allocation, and
// nothing ever crashes. Version 2's chunk tables: byte ranges read exactly and checked by the chunks
// they cover, and tables that lie about their size are refused.

#include <ckpt/ckpt.hpp>
#include <ckpt/detail/hash.hpp>  // XXH3 of hand-made blocks

#include <catch2/catch.hpp>

#include "support/sanitizers.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct small_state {
    Eigen::MatrixXf kernel = Eigen::MatrixXf::Random(3, 2);
    std::vector<double> bias{0.5, -1.5};
    std::string note = "hello";
    std::map<std::string, Eigen::VectorXf> heads{{"en", Eigen::VectorXf::Random(2)}};
    std::int64_t step = 7;
};

fs::path write_small(const fs::path& file) {
    small_state s;
    ckpt::checkpoint ck{ckpt::track("kernel", s.kernel), ckpt::track("bias", s.bias), ckpt::track("note", s.note),
                        ckpt::track("heads", s.heads), ckpt::track("step", s.step)};
    ckpt::save_options o;
    o.step = 7;
    o.metrics["loss"] = 0.25;
    return ck.write(file, o);
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}
void spit(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

// Opening, verifying and restoring: what a damaged file must fail. Returns how it failed.
enum class verdict { accepted, format_error, corrupt_error, other_error };
verdict check(const fs::path& file) {
    try {
        ckpt::reader r(file);
        r.verify();
        small_state s;
        ckpt::checkpoint ck{ckpt::track("kernel", s.kernel), ckpt::track("bias", s.bias), ckpt::track("note", s.note),
                            ckpt::track("heads", s.heads), ckpt::track("step", s.step)};
        ck.restore(file).assert_consumed();
        return verdict::accepted;
    } catch (const ckpt::format_error&) {
        return verdict::format_error;
    } catch (const ckpt::corrupt_error&) {
        return verdict::corrupt_error;
    } catch (...) {
        return verdict::other_error;
    }
}

// Memory for `size` bytes starting `misalignment` bytes past a 64-byte boundary; valid until the next call.
char* aligned_scratch(std::uint64_t size, std::size_t misalignment) {
    static std::vector<char> buffer;
    buffer.assign(static_cast<std::size_t>(size) + 128, '\0');
    const auto at = reinterpret_cast<std::uintptr_t>(buffer.data());
    return buffer.data() + (64 - at % 64) % 64 + misalignment;
}

// Rewrites the index and header checksums of a file whose index was edited, so that only the
// structure checks stand between the edit and the reader.
void reseal(std::string& bytes) {
    using namespace ckpt::detail;
    const auto index_offset = get<std::uint64_t>(bytes.data() + 24);
    put<std::uint64_t>(bytes.data() + 32, bytes.size() - index_offset);
    put<std::uint64_t>(bytes.data() + 16, bytes.size());
    put<std::uint64_t>(bytes.data() + 40, hash64(bytes.data() + index_offset, bytes.size() - index_offset));
    put<std::uint64_t>(bytes.data() + 120, hash64(bytes.data(), 120));
}

// A file of uint8 tensors t0, t1, ... with the given bytes, written with a small chunk size so that
// small files have chunk tables.
fs::path write_chunked(const fs::path& file, std::uint64_t chunk_size, const std::vector<std::string>& blocks) {
    ckpt::detail::file_writer w(file, chunk_size);
    for (std::size_t i = 0; i < blocks.size(); ++i)
        w.block("t" + std::to_string(i), ckpt::entry_kind::tensor, ckpt::dtype::uint8, ckpt::shape{blocks[i].size()},
                false, blocks[i].data(), blocks[i].size());
    w.finish({}, 1, std::chrono::system_clock::now());
    return file;
}

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(gen());
    return s;
}

// Where the chunk table of entry `e`'s index record starts: after path, kind/dtype/flags/rank, dims,
// offset, length and checksum.
std::size_t chunk_table_at(const std::string& bytes, const ckpt::entry_info& e) {
    const auto index_offset = ckpt::detail::get<std::uint64_t>(bytes.data() + 24);
    std::string needle(4, '\0');
    ckpt::detail::put<std::uint32_t>(needle.data(), static_cast<std::uint32_t>(e.path.size()));
    needle += e.path;
    const auto at = bytes.find(needle, static_cast<std::size_t>(index_offset));
    REQUIRE(at != std::string::npos);
    return at + 4 + e.path.size() + 4 + 8 * e.shape.rank() + 24;
}

}  // namespace

TEST_CASE("a good file passes every check, with its blocks 64-byte aligned", "[format]") {
    fs::create_directories("format_good");
    const auto file = write_small("format_good/ckpt");
    CHECK(check(file) == verdict::accepted);
    const ckpt::reader r(file);
    for (const auto& e : r.entries()) CHECK(e.offset % 64 == 0);
}

TEST_CASE("every truncation of a checkpoint is detected", "[format]") {
    fs::create_directories("format_truncated");
    const std::string bytes = slurp(write_small("format_truncated/good"));
    const fs::path damaged = "format_truncated/damaged";
    std::size_t detected = 0;
    for (std::size_t length = 0; length < bytes.size(); ++length) {
        spit(damaged, bytes.substr(0, length));
        const auto v = check(damaged);
        CHECK((v == verdict::corrupt_error || v == verdict::format_error));
        detected += v == verdict::corrupt_error || v == verdict::format_error;
    }
    CHECK(detected == bytes.size());
}

TEST_CASE("every single-bit flip of a checkpoint is detected", "[format]") {
    fs::create_directories("format_flips");
    const std::string bytes = slurp(write_small("format_flips/good"));
    const fs::path damaged = "format_flips/damaged";
    std::size_t flips = 0, detected = 0;
    for (std::size_t byte = 0; byte < bytes.size(); ++byte) {
        for (int bit = 0; bit < 8; ++bit) {
            std::string copy = bytes;
            copy[byte] = static_cast<char>(copy[byte] ^ (1 << bit));
            spit(damaged, copy);
            const auto v = check(damaged);
            ++flips;
            if (v == verdict::corrupt_error || v == verdict::format_error)
                ++detected;
            else
                FAIL_CHECK("undetected flip of bit " << bit << " of byte " << byte);
        }
    }
    INFO(detected << " of " << flips << " flips detected");
    CHECK(detected == flips);
}

TEST_CASE("files that are not checkpoints, or of another version, are format errors", "[format]") {
    fs::create_directories("format_foreign");
    spit("format_foreign/empty", "");
    CHECK(check("format_foreign/empty") == verdict::corrupt_error);
    spit("format_foreign/text", std::string(300, 'x'));
    CHECK_THROWS_AS(ckpt::reader("format_foreign/text"), ckpt::format_error);
    CHECK_THROWS_WITH(ckpt::reader("format_foreign/text"),
                      Catch::Contains("format_foreign/text") && Catch::Contains("not a ckpt checkpoint"));

    std::string bytes = slurp(write_small("format_foreign/good"));
    ckpt::detail::put<std::uint32_t>(bytes.data() + 8, 99);
    ckpt::detail::put<std::uint64_t>(bytes.data() + 120, ckpt::detail::hash64(bytes.data(), 120));
    spit("format_foreign/future", bytes);
    CHECK_THROWS_WITH(ckpt::reader("format_foreign/future"), Catch::Contains("format version 99 is not supported"));

    CHECK_THROWS_AS(ckpt::reader("format_foreign"), ckpt::io_error);          // a directory
    CHECK_THROWS_AS(ckpt::reader("format_foreign/missing"), ckpt::io_error);  // no such file
}

TEST_CASE("hostile indexes with valid checksums are refused before any large allocation", "[format]") {
    fs::create_directories("format_hostile");
    const std::string good = slurp(write_small("format_hostile/good"));
    const auto index_offset = ckpt::detail::get<std::uint64_t>(good.data() + 24);
    ckpt::reader r("format_hostile/good");
    const auto& first = r.entries().front();  // "kernel": path length at the index start

    SECTION("an entry count far beyond what the index can hold") {
        std::string bytes = good;
        ckpt::detail::put<std::uint64_t>(bytes.data() + 48, std::uint64_t{1} << 60);
        reseal(bytes);
        spit("format_hostile/f", bytes);
        CHECK_THROWS_WITH(ckpt::reader("format_hostile/f"), Catch::Contains("cannot fit in the index"));
    }
    SECTION("a path length running past the index") {
        std::string bytes = good;
        ckpt::detail::put<std::uint32_t>(bytes.data() + index_offset, 0xffffffffu);
        reseal(bytes);
        spit("format_hostile/f", bytes);
        CHECK_THROWS_AS(ckpt::reader("format_hostile/f"), ckpt::corrupt_error);
    }
    SECTION("a tensor whose shape claims 2^62 elements") {
        std::string bytes = good;
        const auto dims = index_offset + 4 + first.path.size() + 4;  // after path, kind, dtype, flags, rank
        ckpt::detail::put<std::uint64_t>(bytes.data() + dims, std::uint64_t{1} << 62);
        reseal(bytes);
        spit("format_hostile/f", bytes);
        CHECK_THROWS_WITH(ckpt::reader("format_hostile/f"), Catch::Contains("does not agree with its block length"));
    }
    SECTION("a block offset pointing elsewhere (overlapping blocks)") {
        std::string bytes = good;
        const auto offset = index_offset + 4 + first.path.size() + 4 + 8 * first.shape.rank();
        ckpt::detail::put<std::uint64_t>(bytes.data() + offset, 0);
        reseal(bytes);
        spit("format_hostile/f", bytes);
        CHECK_THROWS_WITH(ckpt::reader("format_hostile/f"), Catch::Contains("lies outside its place"));
    }
    SECTION("an entry path that escapes with '..'") {
        std::string bytes = good;
        REQUIRE(first.path == "kernel");
        std::memcpy(bytes.data() + index_offset + 4, "../../", 6);
        reseal(bytes);
        spit("format_hostile/f", bytes);
        CHECK_THROWS_WITH(ckpt::reader("format_hostile/f"), Catch::Contains("invalid entry path"));
    }
    SECTION("a duplicate entry path") {
        std::string bytes = good;
        // "bias" is the second entry; renaming it "kernel" would change the length, so rename the
        // first to "bias\0\0"... instead: give both the same 4-letter path by editing "note" to "bias".
        const auto at = bytes.find("note", index_offset);
        REQUIRE(at != std::string::npos);
        std::memcpy(bytes.data() + at, "bias", 4);
        reseal(bytes);
        spit("format_hostile/f", bytes);
        CHECK_THROWS_WITH(ckpt::reader("format_hostile/f"), Catch::Contains("duplicate entry path"));
    }
}

TEST_CASE("a serialized entry whose size tag claims 2^60 elements fails cleanly", "[format]") {
    fs::create_directories("format_size_tag");
    std::vector<std::string> names{"a", "b"};
    ckpt::checkpoint ck{ckpt::track("names", names)};
    const auto file = ck.write("format_size_tag/ckpt");
    std::string bytes = slurp(file);
    ckpt::reader r(file);
    const auto& e = *r.find("names");
    // Rewrite the size tag, then the block's checksum in the index, then the seals.
    ckpt::detail::put<std::uint64_t>(bytes.data() + e.offset, std::uint64_t{1} << 60);
    const auto index_offset = ckpt::detail::get<std::uint64_t>(bytes.data() + 24);
    const auto checksum_at = index_offset + 4 + e.path.size() + 4 + 8 * e.shape.rank() + 16;
    ckpt::detail::put<std::uint64_t>(bytes.data() + checksum_at,
                                     ckpt::detail::hash64(bytes.data() + e.offset, e.length));
    reseal(bytes);
    spit(file, bytes);
    ckpt::reader(file).verify();  // the bytes match their checksum: only the content is a lie
    std::vector<std::string> back;
    ckpt::checkpoint restore{ckpt::track("names", back)};
    CHECK_THROWS_WITH(restore.restore(file), Catch::Contains("exceeds the") && Catch::Contains("names"));
    CHECK(back.empty());  // nothing half-restored

    // And the attempt allocated next to nothing: measured in a child, whose peak RSS is its own.
    const pid_t pid = ::fork();
    if (pid == 0) {
        rusage before{};
        ::getrusage(RUSAGE_SELF, &before);
        std::vector<std::string> v;
        ckpt::checkpoint c{ckpt::track("names", v)};
        try {
            c.restore(file);
        } catch (const ckpt::error&) {}
        rusage after{};
        ::getrusage(RUSAGE_SELF, &after);
        ::_exit(after.ru_maxrss - before.ru_maxrss < 16 * 1024 ? 0 : 1);  // KiB: under 16 MiB more
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("blocks read straight into the object: damage in their bytes or padding is caught", "[format]") {
    // Above the read-ahead window's size a block is read directly, in chunks, with its padding in
    // the same call: a 20 KB block and a 5 MB block of several chunks, both followed by padding.
    fs::create_directories("format_direct");
    Eigen::VectorXf medium = Eigen::VectorXf::Random(5003), large = Eigen::VectorXf::Random((5 << 20) / 4 + 1);
    ckpt::checkpoint saver{ckpt::track("medium", medium), ckpt::track("large", large)};
    const auto good = saver.write("format_direct/good");
    const std::string bytes = slurp(good);

    Eigen::VectorXf medium_back, large_back;
    ckpt::checkpoint loader{ckpt::track("medium", medium_back), ckpt::track("large", large_back)};
    loader.restore(good).assert_consumed();
    CHECK(medium_back == medium);
    CHECK(large_back == large);

    const ckpt::reader r(good);
    const auto m = *r.find("medium");
    const auto l = *r.find("large");
    REQUIRE(m.length % 64 != 0);
    REQUIRE(l.length % 64 != 0);
    const fs::path damaged = "format_direct/damaged";
    auto restore_damaged = [&] {
        Eigen::VectorXf a, b;
        ckpt::checkpoint ck{ckpt::track("medium", a), ckpt::track("large", b)};
        ck.restore(damaged);
    };
    for (const std::uint64_t at : {m.offset, m.offset + m.length - 1, m.offset + m.length, l.offset,
                                   l.offset + (4 << 20) + 7, l.offset + l.length - 1, l.offset + l.length + 3}) {
        INFO("byte " << at << " flipped");
        std::string copy = bytes;
        copy[at] = static_cast<char>(copy[at] ^ 0x10);
        spit(damaged, copy);
        CHECK_THROWS_AS(restore_damaged(), ckpt::corrupt_error);
        // Straight into memory in step with the file's alignment, and through the aligned buffer.
        ckpt::reader opened(damaged);
        const auto& e = at < l.offset ? m : l;
        for (const std::size_t misalignment : {0, 16}) {
            INFO("destination " << misalignment << " bytes past 64-byte alignment");
            CHECK_THROWS_AS(opened.read_bytes(e, aligned_scratch(e.length, misalignment)), ckpt::corrupt_error);
        }
    }
    for (const std::size_t misalignment : {0, 16}) {
        ckpt::reader opened(good);
        char* dest = aligned_scratch(l.length, misalignment);
        opened.read_bytes(l, dest);
        CHECK(std::memcmp(dest, large.data(), l.length) == 0);
    }
    // A file that shrinks after it was opened (the header's size check has passed): short reads.
    for (const std::uint64_t length :
         {m.offset + 100, m.offset + m.length + 1, l.offset + (4 << 20) + 1, l.offset + l.length + 1}) {
        INFO("truncated to " << length << " bytes after opening");
        spit(damaged, bytes);
        ckpt::reader opened(damaged);
        fs::resize_file(damaged, length);
        CHECK_THROWS_AS(opened.read<Eigen::VectorXf>(length < l.offset ? "medium" : "large"), ckpt::corrupt_error);
    }
}

TEST_CASE("entry paths: '/'-separated segments, none empty, '.' or '..', no NUL", "[format]") {
    using ckpt::detail::is_valid_entry_path;
    for (const std::string_view good :
         {"a", "model/hidden/kernel", "a.b", "..a", "a..", ".a/b.", "heads/en%2Fus/bias"}) {
        INFO(good);
        CHECK(is_valid_entry_path(good));
    }
    for (const std::string_view bad : {"", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "a/..", "../a"}) {
        INFO(bad);
        CHECK_FALSE(is_valid_entry_path(bad));
    }
    CHECK_FALSE(is_valid_entry_path(std::string_view("a\0b", 3)));
    CHECK_FALSE(is_valid_entry_path(std::string(ckpt::detail::max_path_length + 1, 'a')));
    CHECK(is_valid_entry_path(std::string(ckpt::detail::max_path_length, 'a')));
}

TEST_CASE("read_range returns exactly the bytes asked for, at any offset, for any chunk size", "[format][range]") {
    fs::create_directories("range_exact");
    const std::vector<std::string> blocks = {
        random_bytes(0, 1),  random_bytes(1, 2),    random_bytes(63, 3),    random_bytes(64, 4),
        random_bytes(65, 5), random_bytes(5000, 6), random_bytes(12293, 7), random_bytes((3 << 20) + 17, 8)};
    std::mt19937_64 gen(11);
    for (const std::uint64_t chunk_size : {64u, 4096u, 1u << 20}) {
        INFO("chunk size " << chunk_size);
        const auto file = write_chunked("range_exact/c" + std::to_string(chunk_size), chunk_size, blocks);
        ckpt::reader r(file);
        r.verify();
        ckpt::detail::file_reader raw(file);
        CHECK(raw.chunk_size() == chunk_size);
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            const auto& want = blocks[i];
            const auto e = *r.find("t" + std::to_string(i));  // a copy: read_range finds the file's own entry
            CHECK(raw.chunk_checksums(e).second == ckpt::detail::chunk_count(want.size(), chunk_size));
            CHECK(r.read_bytes(e) == want);
            std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges = {{0, want.size()}, {want.size(), 0}};
            if (!want.empty()) ranges.push_back({want.size() - 1, 1});
            for (std::uint64_t edge = chunk_size; edge < want.size(); edge += chunk_size * 7)
                ranges.push_back({edge - 1, std::min<std::uint64_t>(2 * chunk_size + 2, want.size() - edge + 1)});
            for (int k = 0; k < 20 && !want.empty(); ++k) {
                const auto offset = gen() % want.size();
                ranges.push_back({offset, gen() % (want.size() - offset + 1)});
            }
            for (const auto& [offset, count] : ranges) {
                for (const std::size_t misalignment : {0, 16, 3}) {
                    INFO("t" << i << ": bytes " << offset << " + " << count << ", destination " << misalignment
                             << " past alignment");
                    // In step with the file (its blocks start at multiples of 64) or not.
                    char* dest = aligned_scratch(count, (misalignment + offset) % 64);
                    r.read_range(e, offset, count, dest);
                    CHECK(std::memcmp(dest, want.data() + offset, static_cast<std::size_t>(count)) == 0);
                }
            }
            CHECK_THROWS_AS(r.read_range(e, want.size() + 1, 0, nullptr), ckpt::error);
            CHECK_THROWS_AS(r.read_range(e, 1, want.size(), nullptr), ckpt::error);
        }
    }
    // Chunk sizes the reader would refuse are refused by the writer, leaving no file behind.
    for (const std::uint64_t bad : {0u, 32u, 100u})
        CHECK_THROWS_WITH(ckpt::detail::file_writer("range_exact/bad", bad), Catch::Contains("chunk size"));
    CHECK(std::distance(fs::directory_iterator("range_exact"), fs::directory_iterator()) == 3);
    // An entry of another file is refused, not looked up by position.
    ckpt::reader a("range_exact/c64");
    ckpt::entry_info stranger = *a.find("t7");
    stranger.length -= 1;
    CHECK_THROWS_WITH(a.read_range(stranger, 0, 1, aligned_scratch(1, 0)), Catch::Contains("not one of this file"));
}

TEST_CASE("read_range checks the chunks it covers: damage inside them is caught, damage elsewhere is not read",
          "[format][range]") {
    fs::create_directories("range_damage");
    const std::uint64_t c = 4096;
    const std::string block = random_bytes(10 * c + 100, 21);  // 11 chunks, the last one short, then padding
    const std::string good = slurp(write_chunked("range_damage/good", c, {block, random_bytes(50, 22)}));
    const ckpt::entry_info e = *ckpt::reader("range_damage/good").find("t0");
    const fs::path damaged = "range_damage/damaged";
    std::string bytes = good;
    bytes[static_cast<std::size_t>(e.offset + 3 * c + 5)] ^= 0x01;     // in chunk 3
    bytes[static_cast<std::size_t>(e.offset + e.length + 2)] ^= 0x40;  // in the padding after the last chunk
    spit(damaged, bytes);
    ckpt::reader r(damaged);
    char* dest = aligned_scratch(e.length, 0);
    r.read_range(e, 0, 3 * c, dest);  // chunks 0..2
    CHECK(std::memcmp(dest, block.data(), 3 * c) == 0);
    r.read_range(e, 4 * c + 1, 5 * c, dest);  // chunks 4..9
    CHECK(std::memcmp(dest, block.data() + 4 * c + 1, 5 * c) == 0);
    CHECK_THROWS_WITH(r.read_range(e, 3 * c + 100, 1, dest), Catch::Contains("range_damage/damaged") &&
                                                                 Catch::Contains("t0") &&
                                                                 Catch::Contains("checksum mismatch in chunk 3"));
    CHECK_THROWS_AS(r.read_range(e, 2 * c, 3 * c, dest), ckpt::corrupt_error);
    CHECK_THROWS_WITH(r.read_range(e, e.length - 1, 1, dest), Catch::Contains("padding") && Catch::Contains("t0"));
    CHECK_THROWS_AS(r.read_bytes(e, dest), ckpt::corrupt_error);
    CHECK_THROWS_AS(r.verify(), ckpt::corrupt_error);

    // Version 1 has one checksum per block: any range reads and checks all of it.
    const fs::path v1 = fs::path(CKPT_SOURCE_DIR) / "tests/data/v1/fixture.ckpt";
    std::string old = slurp(v1);
    const ckpt::entry_info big = *ckpt::reader(v1).find("big");
    old[static_cast<std::size_t>(big.offset + big.length - 10)] ^= 0x02;
    spit("range_damage/v1", old);
    ckpt::reader r1("range_damage/v1");
    CHECK_THROWS_WITH(r1.read_range(big, 0, 4, dest), Catch::Contains("checksum mismatch") && Catch::Contains("big"));
}

TEST_CASE("verify reads chunks longer than its buffer piece by piece and still catches any damage", "[format][range]") {
    // Chunks of 1 MiB are verified in pieces of 256 KiB: damage in a later piece of a chunk, in
    // the short last chunk and in the padding after it must each be found, and a sound file passes.
    fs::create_directories("verify_pieces");
    const std::uint64_t c = std::uint64_t{1} << 20;
    const std::string block = random_bytes(3 * c + 300 * 1024 + 7, 41);  // 4 chunks, the last of 2 pieces
    const std::string good = slurp(write_chunked("verify_pieces/good", c, {random_bytes(100, 42), block}));
    const ckpt::entry_info e = *ckpt::reader("verify_pieces/good").find("t1");
    REQUIRE(e.length == block.size());
    ckpt::reader("verify_pieces/good").verify();
    struct damage {
        std::uint64_t at;
        const char* expected;
    };
    for (const damage d :
         {damage{c + 700 * 1024 + 3, "checksum mismatch in chunk 1"},
          damage{3 * c + 290 * 1024, "checksum mismatch in chunk 3"}, damage{e.length + 1, "padding"}}) {
        std::string bytes = good;
        bytes[static_cast<std::size_t>(e.offset + d.at)] ^= 0x10;
        spit("verify_pieces/damaged", bytes);
        ckpt::reader r("verify_pieces/damaged");
        CHECK_THROWS_WITH(r.verify(), Catch::Contains("verify_pieces/damaged") && Catch::Contains("t1") &&
                                          Catch::Contains(d.expected));
        // The same bytes read whole are refused alike.
        CHECK_THROWS_WITH(r.read_bytes(e, aligned_scratch(e.length, 0)), Catch::Contains(d.expected));
    }
}

TEST_CASE("every single-bit flip of a file with chunk tables is detected", "[format][range]") {
    fs::create_directories("range_flips");
    const std::vector<std::string> blocks = {random_bytes(200, 31), random_bytes(30, 32), random_bytes(129, 33)};
    const std::string bytes = slurp(write_chunked("range_flips/good", 64, blocks));
    const fs::path damaged = "range_flips/damaged";
    std::size_t undetected = 0;
    for (std::size_t byte = 0; byte < bytes.size(); ++byte) {
        for (int bit = 0; bit < 8; ++bit) {
            std::string copy = bytes;
            copy[byte] = static_cast<char>(copy[byte] ^ (1 << bit));
            spit(damaged, copy);
            try {
                ckpt::reader r(damaged);
                r.verify();
                ++undetected;
                FAIL_CHECK("undetected flip of bit " << bit << " of byte " << byte);
            } catch (const ckpt::corrupt_error&) {
            } catch (const ckpt::format_error&) {}
        }
    }
    CHECK(undetected == 0);
}

TEST_CASE("hostile chunk tables with valid seals are refused before any large allocation", "[format][range]") {
    fs::create_directories("range_hostile");
    const std::string good =
        slurp(write_chunked("range_hostile/good", 64, {random_bytes(1000, 41), random_bytes(40, 42)}));
    ckpt::reader r("range_hostile/good");
    const auto& big = *r.find("t0");
    const auto table_at = chunk_table_at(good, big);
    REQUIRE(ckpt::detail::get<std::uint32_t>(good.data() + table_at + 16 * 8) == 2);  // the next record: path "t1"
    auto refused = [](std::string bytes, const char* message) {
        reseal(bytes);
        spit("range_hostile/f", bytes);
        CHECK_THROWS_AS(ckpt::reader("range_hostile/f"), ckpt::corrupt_error);
        CHECK_THROWS_WITH(ckpt::reader("range_hostile/f"),
                          Catch::Contains(message) && Catch::Contains("range_hostile/f"));
    };
    SECTION("a table whose hash is not the block checksum") {
        std::string bytes = good;
        bytes[table_at + 5 * 8 + 2] ^= 0x08;  // the checksum of chunk 5
        refused(bytes, "does not match its chunk table");
    }
    SECTION("an index that ends inside a chunk table") {
        refused(good.substr(0, table_at + 3 * 8), "runs past the end of the index");
    }
    SECTION("a header chunk size that is not a power of two in range") {
        for (const std::uint64_t size :
             {std::uint64_t{0}, std::uint64_t{96}, std::uint64_t{32}, std::uint64_t{1} << 40}) {
            INFO(size);
            std::string bytes = good;
            ckpt::detail::put<std::uint64_t>(bytes.data() + 80, size);
            refused(bytes, "chunk size");
        }
    }
    SECTION("a valid header chunk size other than the one the tables were made for") {
        std::string bytes = good;
        ckpt::detail::put<std::uint64_t>(bytes.data() + 80, 128);  // t0 would have 8 chunk checksums, not 16
        refused(bytes, "");
    }
    SECTION("a chunk size under which a table would be larger than the index: refused, next to nothing allocated") {
        // A 3 MiB block of 3 chunks, then chunk size 64: it would need a 384 KiB table.
        std::string bytes = slurp(write_chunked("range_hostile/large", 1 << 20, {random_bytes(3 << 20, 43)}));
        ckpt::detail::put<std::uint64_t>(bytes.data() + 80, 64);
        refused(bytes, "runs past the end of the index");
        const pid_t pid = ::fork();
        if (pid == 0) {
            rusage before{};
            ::getrusage(RUSAGE_SELF, &before);
            for (int i = 0; i < 100; ++i) {
                try {
                    ckpt::reader hostile("range_hostile/f");
                    ::_exit(2);
                } catch (const ckpt::corrupt_error&) {}
            }
            rusage after{};
            ::getrusage(RUSAGE_SELF, &after);
            // 100 tables of 384 KiB would be 38 MiB; under AddressSanitizer, which reuses no freed
            // memory, the opens' small allocations add up to a few MiB.
            const long bound_kib = ckpt_test::under_address_sanitizer ? 16 * 1024 : 4 * 1024;
            ::_exit(after.ru_maxrss - before.ru_maxrss < bound_kib ? 0 : 1);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
}

TEST_CASE("checksums are XXH3-64 whichever vector loop computes them", "[format]") {
    // hash.hpp may pick an AVX2 loop at run time; the digests must stay those of the format.
    std::mt19937_64 rng(7);
    std::vector<unsigned char> bytes(3 << 20);
    for (auto& b : bytes) b = static_cast<unsigned char>(rng());
    std::vector<std::size_t> lengths;
    for (std::size_t n = 0; n < 2100; n += 7) lengths.push_back(n);
    for (int i = 0; i < 40; ++i) lengths.push_back(static_cast<std::size_t>(rng() % bytes.size()));
    lengths.push_back(bytes.size());
    for (const std::size_t n : lengths) {
        const std::uint64_t expected = XXH3_64bits(bytes.data(), n);  // xxhash's compile-time loop
        CHECK(ckpt::detail::hash64(bytes.data(), n) == expected);
        ckpt::detail::hasher h;
        for (std::size_t at = 0; at < n;) {
            const std::size_t k = std::min<std::size_t>(n - at, static_cast<std::size_t>(rng() % 5000));
            h.update(bytes.data() + at, k);
            at += k;
        }
        CHECK(h.digest() == expected);
    }
}

TEST_CASE("a large block's chunks are hashed on 1, 2 or many threads into the same file", "[format][threads]") {
    struct limit_reset {
        ~limit_reset() { ckpt::set_max_threads(0); }
    } reset;
    fs::create_directories("format_threads");
    // 17 MiB and a bit: over the 16 MiB from which the chunks are hashed in parallel, with a short last chunk.
    std::vector<std::uint64_t> words(((std::size_t{17} << 20) + 4096) / 8);
    std::mt19937_64 rng(11);
    for (auto& w : words) w = rng();
    const std::size_t size = words.size() * 8 - 3;
    const auto when = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
    auto write = [&](const fs::path& file, std::size_t threads, bool one_thread) {
        ckpt::set_max_threads(threads);
        ckpt::detail::file_writer w(file);
        if (one_thread) w.hash_on_one_thread();
        w.block("big", ckpt::entry_kind::tensor, ckpt::dtype::uint8, ckpt::shape{size}, false, words.data(), size);
        w.finish({}, 1, when);
        std::ifstream in(file, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    const std::string one = write("format_threads/one", 1, false);
    // The checksum is the format's: the hash of the table of the chunks' hashes, in order.
    const std::uint64_t chunk = ckpt::detail::default_chunk_size;
    std::vector<std::uint64_t> sums;
    for (std::uint64_t at = 0; at < size; at += chunk)
        sums.push_back(
            XXH3_64bits(reinterpret_cast<const char*>(words.data()) + at, std::min<std::uint64_t>(chunk, size - at)));
    const ckpt::reader r("format_threads/one");
    REQUIRE(r.entries().size() == 1);
    CHECK(r.entries()[0].checksum == XXH3_64bits(sums.data(), sums.size() * 8));
    for (const std::size_t threads : {2, 3, 64}) {
        CAPTURE(threads);
        CHECK(write("format_threads/many", threads, false) == one);
    }
    CHECK(write("format_threads/many", 64, true) == one);
    std::vector<std::uint8_t> back(size);
    ckpt::reader("format_threads/many").read("big", back);
    CHECK(std::memcmp(back.data(), words.data(), size) == 0);
}
