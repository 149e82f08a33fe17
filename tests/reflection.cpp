// Which entry paths a tracked object gets: CKPT_FIELDS names, positions for plain aggregates,
// nesting, containers of structs, private members.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"

#include <filesystem>
#include <functional>
#include <mutex>

namespace user_models {
using ckpt_test::dense;

struct network {
    std::vector<dense> layers;
    std::map<std::string, dense> heads;
    std::array<dense, 2> towers;
};
CKPT_FIELDS(network, layers, heads, towers)

class scaler {
public:
    scaler() = default;
    explicit scaler(float s) : scale_(s), shift_(Eigen::VectorXf::Constant(3, s)) {}
    float scale() const { return scale_; }
    const Eigen::VectorXf& shift() const { return shift_; }
    CKPT_FIELDS_INTRUSIVE(scaler, scale_, shift_)

private:
    float scale_ = 1.0f;
    Eigen::VectorXf shift_;
};

struct adam {  // no annotation: fields by position
    float lr = 1e-3f;
    std::int64_t iterations = 0;
    std::vector<Eigen::MatrixXf> m, v;
};

// CKPT_FIELDS(swapped, second, first) does not compile (tests/compile-fail/fields_same_type_order.cpp);
// the intrusive form is checked when first used.
struct swapped {
    int first = 1;
    int second = 2;
    CKPT_FIELDS_INTRUSIVE(swapped, second, first)
};

// Fields left out of the checkpoint with CKPT_SKIP still count for the completeness check.
struct with_cache {
    Eigen::VectorXf weights;
    std::mutex lock;
    std::function<float(float)> activation;
    std::vector<float> cache;
    int* borrowed = nullptr;
    std::int64_t steps = 0;
};
CKPT_FIELDS(with_cache, weights, CKPT_SKIP(lock), CKPT_SKIP(activation), CKPT_SKIP(cache), CKPT_SKIP(borrowed), steps)
}  // namespace user_models

namespace {
std::vector<std::string> paths_of(const std::filesystem::path& file) {
    std::vector<std::string> out;
    const ckpt::reader r(file);
    for (const auto& e : r.entries()) out.push_back(e.path);
    return out;
}
}  // namespace

TEST_CASE("CKPT_FIELDS names fields, nested to any depth, in the user's namespace", "[reflection]") {
    std::filesystem::remove_all("reflection_names");
    user_models::network net;
    net.layers.resize(4);
    net.layers[3].kernel = Eigen::MatrixXf::Random(2, 2);
    net.heads["en"].bias = Eigen::VectorXf::Random(3);
    net.heads["a/b"] = {};
    ckpt::checkpoint ck{ckpt::track("model", net)};
    const auto paths = paths_of(ck.save("reflection_names/ckpt"));
    for (const char* p : {"model/layers", "model/layers/3/kernel", "model/layers/0/bias", "model/heads",
                          "model/heads/en/bias", "model/heads/a%2Fb/kernel", "model/towers/1/kernel"})
        CHECK(std::find(paths.begin(), paths.end(), p) != paths.end());

    user_models::network back;
    ckpt::checkpoint in{ckpt::track("model", back)};
    in.restore("reflection_names/ckpt-1").assert_consumed();
    CHECK(back.layers[3].kernel == net.layers[3].kernel);
    CHECK(back.heads.at("a/b").kernel.size() == 0);
}

TEST_CASE("unannotated aggregates are named by position", "[reflection]") {
    std::filesystem::remove_all("reflection_positional");
    user_models::adam opt;
    opt.iterations = 9;
    opt.m = {Eigen::MatrixXf::Random(2, 3)};
    ckpt::checkpoint ck{ckpt::track("optimizer", opt)};
    CHECK(paths_of(ck.save("reflection_positional/ckpt")) ==
          std::vector<std::string>{"optimizer/0", "optimizer/1", "optimizer/2", "optimizer/2/0", "optimizer/3"});
    user_models::adam back;
    ckpt::checkpoint in{ckpt::track("optimizer", back)};
    in.restore("reflection_positional/ckpt-1").assert_consumed();
    CHECK(back.iterations == 9);
    CHECK(back.m == opt.m);
}

TEST_CASE("classes with private members are annotated from inside", "[reflection]") {
    std::filesystem::remove_all("reflection_intrusive");
    user_models::scaler s(2.5f);
    ckpt::checkpoint ck{ckpt::track("scaler", s)};
    CHECK(paths_of(ck.save("reflection_intrusive/ckpt")) == std::vector<std::string>{"scaler/scale_", "scaler/shift_"});
    user_models::scaler back;
    ckpt::checkpoint in{ckpt::track("scaler", back)};
    in.restore("reflection_intrusive/ckpt-1").assert_consumed();
    CHECK(back.scale() == 2.5f);
    CHECK(back.shift() == s.shift());
}

TEST_CASE("CKPT_FIELDS_INTRUSIVE fields of one type listed out of order are caught at the first use", "[reflection]") {
    user_models::swapped s;
    ckpt::checkpoint ck{ckpt::track("s", s)};
    CHECK_THROWS_WITH(ck.write("reflection_swapped.ckpt"),
                      Catch::Contains("CKPT_FIELDS lists 'second' as field 0") && Catch::Contains("declaration order"));
}

TEST_CASE("CKPT_SKIP leaves a field out of the file and untouched by a restore", "[reflection]") {
    int target = 7;
    user_models::with_cache a;
    a.weights = Eigen::VectorXf::LinSpaced(4, 0.0f, 3.0f);
    a.activation = [](float x) { return x * 2.0f; };
    a.cache = {1.0f, 2.0f};
    a.borrowed = &target;
    a.steps = 12;
    ckpt::checkpoint ck{ckpt::track("layer", a)};
    const auto path = ck.write("reflection_skip.ckpt");
    CHECK(paths_of(path) == std::vector<std::string>{"layer/weights", "layer/steps"});

    user_models::with_cache b;
    b.cache = {9.0f};
    ckpt::checkpoint in{ckpt::track("layer", b)};
    in.restore(path).assert_consumed();
    CHECK(b.weights == a.weights);
    CHECK(b.steps == 12);
    CHECK(b.cache == std::vector<float>{9.0f});
    CHECK(b.borrowed == nullptr);
    CHECK(!b.activation);
}
