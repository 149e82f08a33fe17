// The other translation unit: restores what save_side.cpp wrote, through ckpt.hpp as well.
#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include <filesystem>

std::filesystem::path save_layer(const std::filesystem::path& file);

TEST_CASE("two translation units that include ckpt.hpp link and work together", "[link]") {
    std::filesystem::remove_all("two_tu");
    const auto file = save_layer("two_tu/layer.ckpt");
    ckpt::reader r(file);
    Eigen::MatrixXf kernel;
    r.read("layer/kernel", kernel);
    CHECK(kernel == Eigen::MatrixXf::Constant(2, 3, 1.5f));
    CHECK(r.read<Eigen::VectorXf>("layer/bias") == Eigen::VectorXf::Constant(3, -1.0f));
}
