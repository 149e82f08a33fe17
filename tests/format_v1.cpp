// Compatibility: checkpoints written by earlier format versions stay readable. The fixtures under
// tests/data/ were written by tests/data/make_fixtures.cpp built at the commit of their version;
// they restore into today's types bit for bit, with their metadata.

#include "data/fixture_state.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;

namespace {

fs::path fixture(const char* version) { return fs::path(CKPT_SOURCE_DIR) / "tests" / "data" / version / "fixture.ckpt"; }

template <class A, class B>
bool same_bits(const A& a, const B& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(*a.data()) * static_cast<std::size_t>(a.size())) == 0;
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
