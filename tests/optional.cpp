// std::optional and std::unique_ptr of any checkpointable value: stored as a sequence entry of 0 or
// 1 elements with the value under path/0; an empty one in the file resets the object.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"

#include <filesystem>
#include <memory>
#include <optional>

namespace opt_models {
using ckpt_test::dense;

struct model {
    std::optional<Eigen::VectorXf> ema;  // PFR cannot count this struct: only the order is checked
    std::optional<dense> head;
    std::unique_ptr<dense> adapter;
    std::unique_ptr<float> temperature;
    std::optional<int> plain;  // scalars stay one cereal entry, as before
};
CKPT_FIELDS(model, ema, head, adapter, temperature, plain)
}  // namespace opt_models

namespace {
std::vector<std::string> paths_of(const std::filesystem::path& file) {
    std::vector<std::string> out;
    const ckpt::reader r(file);
    for (const auto& e : r.entries()) out.push_back(e.path + ":" + std::to_string(e.shape.rank() ? e.shape[0] : 0));
    return out;
}
}  // namespace

TEST_CASE("present optionals and unique_ptrs round-trip into empty ones", "[optional]") {
    opt_models::model a;
    a.ema = Eigen::VectorXf::LinSpaced(5, -1.0f, 1.0f);
    a.head = opt_models::dense{Eigen::MatrixXf::Random(2, 3), Eigen::VectorXf::Random(2)};
    a.adapter = std::make_unique<opt_models::dense>(
        opt_models::dense{Eigen::MatrixXf::Random(3, 3), Eigen::VectorXf::Random(3)});
    a.temperature = std::make_unique<float>(0.7f);
    a.plain = 4;
    ckpt::checkpoint ck{ckpt::track("m", a)};
    const auto path = ck.write("optional_present.ckpt");
    CHECK(paths_of(path) == std::vector<std::string>{"m/ema:1", "m/ema/0:5", "m/head:1", "m/head/0/kernel:2",
                                                     "m/head/0/bias:2", "m/adapter:1", "m/adapter/0/kernel:3",
                                                     "m/adapter/0/bias:3", "m/temperature:1", "m/temperature/0:0",
                                                     "m/plain:5"});

    opt_models::model b;
    ckpt::checkpoint in{ckpt::track("m", b)};
    in.restore(path).assert_consumed();
    REQUIRE(b.ema);
    CHECK(*b.ema == *a.ema);
    REQUIRE(b.head);
    CHECK(b.head->kernel == a.head->kernel);
    CHECK(b.head->bias == a.head->bias);
    REQUIRE(b.adapter);
    CHECK(b.adapter->kernel == a.adapter->kernel);
    REQUIRE(b.temperature);
    CHECK(*b.temperature == 0.7f);
    CHECK(b.plain == 4);
}

TEST_CASE("an empty optional in the file resets a present one", "[optional]") {
    opt_models::model empty;
    ckpt::checkpoint ck{ckpt::track("m", empty)};
    const auto path = ck.write("optional_empty.ckpt");

    opt_models::model b;
    b.ema = Eigen::VectorXf::Ones(3);
    b.head = opt_models::dense{};
    b.adapter = std::make_unique<opt_models::dense>();
    b.temperature = std::make_unique<float>(1.0f);
    b.plain = 1;
    ckpt::checkpoint in{ckpt::track("m", b)};
    in.restore(path).assert_consumed();
    CHECK(!b.ema);
    CHECK(!b.head);
    CHECK(!b.adapter);
    CHECK(!b.temperature);
    CHECK(!b.plain);
}

TEST_CASE("a present optional restores into the existing value, checked before anything changes", "[optional]") {
    std::optional<Eigen::Matrix2f> fixed = Eigen::Matrix2f::Identity();
    ckpt::checkpoint ck{ckpt::track("w", fixed)};
    const auto path = ck.write("optional_fixed.ckpt");

    std::optional<Eigen::Matrix3f> wrong_shape = Eigen::Matrix3f::Zero();
    ckpt::checkpoint bad{ckpt::track("w", wrong_shape)};
    CHECK_THROWS_AS(bad.restore(path), ckpt::mismatch_error);
    CHECK(wrong_shape->isZero());

    std::optional<Eigen::Matrix2f> back;
    ckpt::checkpoint in{ckpt::track("w", back)};
    in.restore(path).assert_consumed();
    REQUIRE(back);
    CHECK(*back == Eigen::Matrix2f::Identity());
}

TEST_CASE("a sequence of more than one element does not restore into an optional", "[optional]") {
    std::vector<opt_models::dense> layers(2);
    ckpt::checkpoint ck{ckpt::track("x", layers)};
    const auto path = ck.write("optional_seq.ckpt");
    std::optional<opt_models::dense> one;
    ckpt::checkpoint in{ckpt::track("x", one)};
    CHECK_THROWS_WITH(in.restore(path), Catch::Contains("sequence of 2 elements") && Catch::Contains("optional"));
    CHECK(!one);
}

TEST_CASE("the reader reads an optional subtree", "[optional]") {
    std::optional<opt_models::dense> head = opt_models::dense{Eigen::MatrixXf::Ones(1, 2), Eigen::VectorXf::Zero(1)};
    ckpt::checkpoint ck{ckpt::track("head", head)};
    const auto path = ck.write("optional_reader.ckpt");
    ckpt::reader r(path);
    const auto back = r.read<std::optional<opt_models::dense>>("head");
    REQUIRE(back);
    CHECK(back->kernel == head->kernel);
}
