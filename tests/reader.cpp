// ckpt::reader: a checkpoint read without the types that wrote it.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"

#include <filesystem>

namespace {
using ckpt_test::dense;
}  // namespace

TEST_CASE("listing entries and reading them by path", "[reader]") {
    std::filesystem::remove_all("reader_basic");
    dense layer{Eigen::MatrixXf::Random(3, 5), Eigen::VectorXf::Random(5)};
    std::string note = "warm start";
    Eigen::Matrix<double, 2, 2, Eigen::RowMajor> rotation;
    rotation << 0, -1, 1, 0;
    ckpt::checkpoint ck{ckpt::track("layer", layer), ckpt::track("note", note), ckpt::track("rotation", rotation)};
    const auto file = ck.save("reader_basic/ckpt");

    ckpt::reader r(file);
    REQUIRE(r.entries().size() == 4);
    const auto& kernel = r.entries()[0];
    CHECK(kernel.path == "layer/kernel");
    CHECK(kernel.kind == ckpt::entry_kind::tensor);
    CHECK(kernel.dtype == ckpt::dtype::float32);
    CHECK(kernel.shape == ckpt::shape{3, 5});
    CHECK(kernel.column_major);
    CHECK_FALSE(r.find("rotation")->column_major);
    CHECK(r.find("note")->kind == ckpt::entry_kind::serialized);
    for (const auto& e : r.entries()) CHECK(e.offset % 64 == 0);

    CHECK(r.read<Eigen::MatrixXf>("layer/kernel") == layer.kernel);
    CHECK(r.read<std::string>("note") == note);
    dense whole;
    r.read("layer", whole);  // a subtree, into its struct
    CHECK(whole.bias == layer.bias);
    CHECK(r.read_bytes(*r.find("layer/bias")).size() == 5 * sizeof(float));
    CHECK_NOTHROW(r.verify());
    CHECK_THROWS_AS(r.read<Eigen::MatrixXf>("layer/missing"), ckpt::mismatch_error);
    CHECK_THROWS_WITH(r.read<Eigen::MatrixXd>("layer/kernel"), Catch::Contains("checkpoint has float32 [3,5]"));
}
