// Compatibility: checkpoints written by earlier format versions stay readable. The fixtures under
// tests/data/ were written by tests/data/make_fixtures.cpp built at the commit of their version;
// they restore into today's types bit for bit, with their metadata, and byte ranges of their
// blocks read back checked (version 1 by its whole-block checksum, version 2 by chunks).

#include "data/fixture_state.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <sys/wait.h>

namespace fs = std::filesystem;

namespace {

// Runs a command, returns its exit status and output (stdout and stderr).
std::pair<int, std::string> run(const std::string& command) {
    std::string out;
    std::FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    REQUIRE(p);
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, p)) > 0;) out.append(buffer, n);
    const int status = ::pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

fs::path fixture(const char* version) {
    return fs::path(CKPT_SOURCE_DIR) / "tests" / "data" / version / "fixture.ckpt";
}

template <class A, class B>
bool same_bits(const A& a, const B& b) {
    return a.size() == b.size() &&
           std::memcmp(a.data(), b.data(), sizeof(*a.data()) * static_cast<std::size_t>(a.size())) == 0;
}

void check_restores_bit_for_bit(const fs::path& file) {
    const auto want = ckpt_fixture::expected();
    ckpt_fixture::state got;
    got.rng.seed(1);
    ckpt_fixture::with_checkpoint(got, [&](auto& ck) { return ck.restore(file); }).assert_consumed();
    CHECK(got.f32.rows() == 3);
    CHECK(same_bits(got.f32, want.f32));
    CHECK(got.f64.rows() == 2);
    CHECK(same_bits(got.f64, want.f64));
    CHECK(same_bits(got.i32, want.i32));
    CHECK(same_bits(got.i64, want.i64));
    CHECK(same_bits(got.u8, want.u8));
    CHECK(same_bits(got.f16, want.f16));
    CHECK(same_bits(got.c128, want.c128));
    CHECK(same_bits(got.mask, want.mask));
    CHECK(same_bits(got.big, want.big));
    CHECK(got.cube.dimensions() == want.cube.dimensions());
    CHECK(std::memcmp(got.cube.data(), want.cube.data(), sizeof(float) * 24) == 0);
    CHECK(got.sparse.rows() == 4);
    CHECK(got.sparse.cols() == 5);
    CHECK(got.sparse.nonZeros() == 3);
    CHECK(Eigen::MatrixXd(got.sparse) == Eigen::MatrixXd(want.sparse));
    CHECK(got.note == want.note);
    CHECK(got.names == want.names);
    CHECK(got.heads.size() == 2);
    for (const auto& [key, value] : want.heads) {
        INFO(key);
        REQUIRE(got.heads.count(key) == 1);
        CHECK(same_bits(got.heads[key], value));
    }
    CHECK(got.rng == want.rng);
    CHECK(got.step == want.step);
    CHECK(std::memcmp(&got.lr, &want.lr, sizeof(float)) == 0);

    const ckpt::reader r(file);
    const auto& m = r.metadata();
    CHECK(m.save_counter == 0);
    REQUIRE(m.step);
    CHECK(*m.step == 4200);
    CHECK(m.metrics == ckpt_fixture::expected_options().metrics);
    CHECK(m.strings == ckpt_fixture::expected_options().strings);
}

}  // namespace

TEST_CASE("a version 1 file restores into today's types bit for bit", "[format][compat]") {
    const auto file = fixture("v1");
    REQUIRE(fs::exists(file));
    check_restores_bit_for_bit(file);
    ckpt::reader r(file);
    r.verify();
    const auto* big = r.find("big");
    REQUIRE(big);
    CHECK(big->length == ckpt_fixture::big_size * 4);
}

TEST_CASE("a version 2 file restores bit for bit, its large tensor with one checksum per 1 MiB chunk",
          "[format][compat]") {
    const auto file = fixture("v2");
    REQUIRE(fs::exists(file));
    check_restores_bit_for_bit(file);
    ckpt::detail::file_reader r(file);
    CHECK(r.format_version() == 2);
    CHECK(r.chunk_size() == (1u << 20));
    r.verify();
    const auto* big = r.find("big");
    REQUIRE(big);
    CHECK(r.chunk_checksums(*big).second == 2);
    CHECK(r.chunk_checksums(*r.find("f32")).second == 0);
    CHECK(ckpt::detail::file_reader(fixture("v1")).format_version() == 1);
    CHECK(ckpt::detail::file_reader(fixture("v1")).chunk_size() == 0);
}

TEST_CASE("byte ranges of the fixtures' blocks read back exactly, in both versions", "[format][compat][range]") {
    const auto want = ckpt_fixture::expected();
    const char* expected = reinterpret_cast<const char*>(want.big.data());
    const std::uint64_t length = ckpt_fixture::big_size * 4, mib = 1 << 20;
    for (const char* version : {"v1", "v2"}) {
        INFO(version);
        ckpt::reader r(fixture(version));
        const auto& big = *r.find("big");
        REQUIRE(big.length == length);
        const std::pair<std::uint64_t, std::uint64_t> ranges[] = {
            {0, 1},       {0, length},           {length - 1, 1}, {mib - 3, 6}, {mib, 4},
            {mib - 4, 4}, {12345, 2 * 4 * 1000}, {4, length - 8}, {length, 0}};
        for (const auto& [offset, count] : ranges) {
            INFO("bytes " << offset << " + " << count);
            std::vector<char> got(static_cast<std::size_t>(count) + 1, '\x5a');
            r.read_range(big, offset, count, got.data());
            CHECK(std::memcmp(got.data(), expected + offset, static_cast<std::size_t>(count)) == 0);
            CHECK(got.back() == '\x5a');  // nothing past the range
        }
        // Small blocks, through the read-ahead window.
        const auto& f32 = *r.find("f32");
        float two[2];
        r.read_range(f32, 8, 8, two);
        CHECK(std::memcmp(two, want.f32.data() + 2, 8) == 0);
        CHECK_THROWS_AS(r.read_range(big, length, 1, nullptr), ckpt::error);
        CHECK_THROWS_WITH(r.read_range(big, 8, UINT64_MAX, nullptr),
                          Catch::Contains("outside the block") && Catch::Contains("big"));
    }
}

TEST_CASE("the Python reader printed in docs/format.md reads both versions and checks every chunk",
          "[format][compat][python]") {
    // Python 3 with numpy and libxxhash are installed by scripts/install-deps.sh.
    const std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
    const std::string script =
        python + " " + CKPT_SOURCE_DIR + "/tests/python/check_format_doc.py " + CKPT_SOURCE_DIR + "/docs/format.md ";
    const auto [status, out] = run(script + fixture("v1").string() + " " + fixture("v2").string());
    INFO(out);
    CHECK(status == 0);
    CHECK(out.find("v2/fixture.ckpt: ok") != std::string::npos);

    // A flipped bit in the second chunk of the large tensor: the sketch names the chunk.
    std::string bytes;
    {
        std::ifstream in(fixture("v2"), std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    const auto big = *ckpt::reader(fixture("v2")).find("big");
    bytes[static_cast<std::size_t>(big.offset + (1 << 20) + 100)] ^= 0x01;
    std::ofstream("damaged_v2.ckpt", std::ios::binary) << bytes;
    const auto [damaged_status, damaged_out] = run(script + "damaged_v2.ckpt");
    INFO(damaged_out);
    CHECK(damaged_status == 1);
    CHECK(damaged_out.find("big: chunk 1 damaged") != std::string::npos);
}

TEST_CASE("today's writer produces the version 2 fixture byte for byte (but for wall time and header checksum)",
          "[format][compat]") {
    // A change of the bytes written is a format change: bump format_version, keep reading the old
    // one, and add a fixture of the new version (tests/data/README.md).
    auto s = ckpt_fixture::expected();
    const auto file = ckpt_fixture::with_checkpoint(
        s, [](auto& ck) { return ck.write("today.ckpt", ckpt_fixture::expected_options()); });
    auto slurp = [](const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    std::string today = slurp(file), committed = slurp(fixture("v2"));
    REQUIRE(today.size() == committed.size());
    for (std::string* bytes : {&today, &committed}) {
        std::memset(bytes->data() + 64, 0, 8);   // wall_time_ns
        std::memset(bytes->data() + 120, 0, 8);  // header checksum
    }
    CHECK(today == committed);
}
