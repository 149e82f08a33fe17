// Restoring tracked structs from foreign files with the guarantees of a ckpt restore: logical shapes
// (row-major [out, in] into Eigen::MatrixXf(out, in)), name maps, transposed tensors, strict and
// partial, dtype conversion only when asked, every check before the first change, an HF-sharded model.

#include <ckpt/foreign.hpp>

#include <catch2/catch.hpp>

#include "support/foreign.hpp"

#include <unsupported/Eigen/CXX11/Tensor>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {
struct linear {
    Eigen::MatrixXf weight;  // [out, in], as torch.nn.Linear
    Eigen::VectorXf bias;
};
CKPT_FIELDS(linear, weight, bias)
struct net {
    linear fc1, fc2;
};
CKPT_FIELDS(net, fc1, fc2)

// A PyTorch-like state_dict: fc1 [3, 4], fc2 [2, 3], element (r, c) = 10 r + c, biases 0, 1, ...
const char* state_dict = R"(
def linear(out, inp):
    w = (10 * np.arange(out)[:, None] + np.arange(inp)[None, :]).astype('f4')
    return w, np.arange(out, dtype='f4')
sd = {}
for name, (o, i) in {'fc1': (3, 4), 'fc2': (2, 3)}.items():
    sd[name + '.weight'], sd[name + '.bias'] = linear(o, i)
)";

void check_weights(const net& m) {
    REQUIRE(m.fc1.weight.rows() == 3);
    REQUIRE(m.fc1.weight.cols() == 4);
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 4; ++c) CHECK(m.fc1.weight(r, c) == static_cast<float>(10 * r + c));
    CHECK(m.fc2.weight(1, 2) == 12.0f);
    CHECK(m.fc2.bias(1) == 1.0f);
}
}  // namespace

TEST_CASE("a row-major [out, in] tensor restores into Eigen::MatrixXf(out, in)", "[foreign]") {
    ckpt_test::numpy(std::string(state_dict) + "np.savez('sd.npz', **sd)\nnp.savez_compressed('sdc.npz', **sd)");
    for (const char* file : {"sd.npz", "sdc.npz"}) {
        net model;
        ckpt::checkpoint ck{ckpt::track("model", model)};
        ckpt::name_map names;
        names.rename_prefix("model/", "");
        ck.restore(file, ckpt::strict, names).assert_consumed();
        check_weights(model);
    }
}

TEST_CASE("Fortran-order arrays restore to the same logical values", "[foreign]") {
    ckpt_test::numpy(std::string(state_dict) + "np.savez('f.npz', **{k: np.asfortranarray(v) for k, v in sd.items()})");
    net model;
    ckpt::checkpoint ck{ckpt::track("model", model)};
    ck.restore("f.npz", ckpt::strict, ckpt::name_map{}.rename_prefix("model/", "")).assert_consumed();
    check_weights(model);
}

TEST_CASE("ckpt::transposed takes an [out, in] tensor into a kernel tracked as [in, out]", "[foreign]") {
    ckpt_test::numpy(std::string(state_dict) + "np.savez('sd_transposed.npz', **sd)");
    struct dense {
        Eigen::MatrixXf kernel;  // [in, out]
        Eigen::VectorXf bias;
    } head;
    Eigen::Matrix<float, 4, 3, Eigen::RowMajor> fixed_kernel;  // a row-major fixed-size one too
    ckpt::checkpoint ck{ckpt::track("head", head), ckpt::track("other", fixed_kernel)};
    ckpt::name_map names;
    names.rename("head/0", "fc1.weight", ckpt::transposed).rename("head/1", "fc1.bias");
    names.rename("other", "fc1.weight", ckpt::transposed);
    const auto status = ck.restore("sd_transposed.npz", ckpt::strict, names);
    REQUIRE(head.kernel.rows() == 4);
    REQUIRE(head.kernel.cols() == 3);
    for (int i = 0; i < 4; ++i)
        for (int o = 0; o < 3; ++o) {
            CHECK(head.kernel(i, o) == static_cast<float>(10 * o + i));
            CHECK(fixed_kernel(i, o) == static_cast<float>(10 * o + i));
        }
    auto unused = status.unused();
    std::sort(unused.begin(), unused.end());
    CHECK(unused == std::vector<std::string>{"fc2.bias", "fc2.weight"});
}

TEST_CASE("a name the file lacks fails a strict restore, names both names and the nearest, changes nothing",
          "[foreign]") {
    ckpt_test::numpy(std::string(state_dict) + "sd['fc2.weights'] = sd.pop('fc2.weight')\nnp.savez('typo.npz', **sd)");
    net model;
    model.fc1.weight = Eigen::MatrixXf::Constant(3, 4, -1.0f);
    ckpt::checkpoint ck{ckpt::track("model", model)};
    ckpt::name_map names;
    names.rename_prefix("model/", "");
    try {
        ck.restore("typo.npz", ckpt::strict, names);
        FAIL("restored");
    } catch (const ckpt::mismatch_error& e) {
        const std::string what = e.what();
        CHECK(e.entry() == "model/fc2/weight");
        CHECK(what.find("typo.npz") != std::string::npos);
        CHECK(what.find("'fc2.weight' is not in the file (did you mean 'fc2.weights'?)") != std::string::npos);
    }
    CHECK(model.fc1.weight(0, 0) == -1.0f);  // nothing changed

    const auto status = ck.restore("typo.npz", ckpt::partial, names);
    CHECK(status.missing() == std::vector<std::string>{"model/fc2/weight"});
    CHECK(status.unused() == std::vector<std::string>{"fc2.weights"});
    CHECK(model.fc1.weight(2, 3) == 23.0f);
    CHECK_THROWS_AS(status.assert_consumed(), ckpt::mismatch_error);
}

TEST_CASE("non-tensor leaves are missing under strict: restore the weights with partial, initialize the rest",
          "[foreign]") {
    ckpt_test::numpy(std::string(state_dict) + "np.savez('sd_partial.npz', **sd)");
    net model;
    std::mt19937_64 rng{1};
    ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("rng", rng)};
    ckpt::name_map names;
    names.rename_prefix("model/", "");
    try {
        ck.restore("sd_partial.npz", ckpt::strict, names);
        FAIL("restored");
    } catch (const ckpt::mismatch_error& e) {
        CHECK(e.entry() == "rng");
        CHECK(std::string(e.what()).find("ckpt::partial") != std::string::npos);
    }
    const auto status = ck.restore("sd_partial.npz", ckpt::partial, names);
    CHECK(status.missing() == std::vector<std::string>{"rng"});
    check_weights(model);
}

TEST_CASE("another dtype is an error that says how to convert, and ckpt::convert converts", "[foreign]") {
    ckpt_test::numpy(std::string(state_dict) +
                     "np.savez('half.npz', **{k: v.astype('f2') for k, v in sd.items()})\n"
                     "np.savez('ints.npz', counts=np.array([-3, 0, 100], dtype='i1'), big=np.array([7], dtype='i8'))");
    net model;
    ckpt::checkpoint ck{ckpt::track("model", model)};
    ckpt::name_map names;
    names.rename_prefix("model/", "");
    try {
        ck.restore("half.npz", ckpt::strict, names);
        FAIL("restored");
    } catch (const ckpt::mismatch_error& e) {
        const std::string what = e.what();
        CHECK(what.find("'fc1.bias' is float16, the object float32") != std::string::npos);
        CHECK(what.find("ckpt::strict | ckpt::convert") != std::string::npos);
    }
    CHECK(model.fc1.weight.size() == 0);
    ck.restore("half.npz", ckpt::strict | ckpt::convert, names).assert_consumed();
    check_weights(model);

    Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1> counts;
    std::int32_t big = 0;
    ckpt::checkpoint ints{ckpt::track("counts", counts), ckpt::track("big", big)};
    CHECK_THROWS_AS(ints.restore("ints.npz", ckpt::strict | ckpt::convert, ckpt::name_map{}),
                    ckpt::mismatch_error);  // int64 -> int32 narrows: never converted
    CHECK(counts.size() == 0);
    ints.restore("ints.npz", ckpt::partial | ckpt::convert, ckpt::name_map{}.rename("big", "absent"));
    REQUIRE(counts.size() == 3);
    CHECK(counts(0) == -3);
    CHECK(counts(2) == 100);
}

TEST_CASE("every check comes before the first change: one bad shape leaves every object as it was", "[foreign]") {
    ckpt_test::numpy(std::string(state_dict) + "np.savez('sd_one_bad_shape.npz', **sd)");
    net model;
    model.fc1.bias = Eigen::VectorXf::Constant(3, -1.0f);
    Eigen::Matrix<float, 5, 5> wrong = Eigen::Matrix<float, 5, 5>::Zero();
    ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("wrong", wrong)};
    ckpt::name_map names;
    names.rename_prefix("model/", "").rename("wrong", "fc2.weight");
    try {
        ck.restore("sd_one_bad_shape.npz", ckpt::strict, names);
        FAIL("restored");
    } catch (const ckpt::mismatch_error& e) {
        CHECK(e.entry() == "wrong");
        CHECK(std::string(e.what()).find("'fc2.weight' in the file") != std::string::npos);
    }
    CHECK(model.fc1.bias(0) == -1.0f);
    CHECK(model.fc1.weight.size() == 0);
}

TEST_CASE("std::vector of tensors: elements 0, 1, ... of the file in a row", "[foreign]") {
    ckpt_test::numpy("np.savez('layers.npz', **{'layers.%d' % i: np.full((2, 2), i, dtype='f4') for i in range(3)})");
    std::vector<Eigen::MatrixXf> layers;
    ckpt::checkpoint ck{ckpt::track("layers", layers)};
    ck.restore("layers.npz", ckpt::strict, ckpt::name_map{}).assert_consumed();
    REQUIRE(layers.size() == 3);
    CHECK(layers[2](1, 1) == 2.0f);
}

TEST_CASE("a plain .npy restores a single tracked tensor", "[foreign]") {
    ckpt_test::numpy("np.save('embedding.npy', np.arange(6, dtype='f4').reshape(2, 3))");
    Eigen::MatrixXf embedding;
    ckpt::checkpoint ck{ckpt::track("embedding", embedding)};
    ck.restore("embedding.npy", ckpt::strict, ckpt::name_map{}).assert_consumed();
    CHECK(embedding(1, 2) == 5.0f);
}

TEST_CASE("an HF-sharded model of three shards restores from its directory or its index", "[foreign]") {
    fs::remove_all("sharded");
    fs::create_directories("sharded");
    // Three shards written by our own safetensors writer, the index as transformers writes it.
    const std::vector<std::pair<std::string, int>> parts{{"embed", 4}, {"block", 3}, {"head", 2}};
    std::string weight_map;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        Eigen::MatrixXf w = Eigen::MatrixXf::Constant(parts[i].second, 2, static_cast<float>(i));
        ckpt::checkpoint part{ckpt::track(parts[i].first, w)};
        const std::string shard = "model-0000" + std::to_string(i + 1) + "-of-00003.safetensors";
        part.write("sharded/" + shard, ckpt::as_safetensors,
                   ckpt::name_map{}.rename(parts[i].first, parts[i].first + ".weight"));
        weight_map += std::string(i ? ", " : "") + "\"" + parts[i].first + ".weight\": \"" + shard + "\"";
    }
    std::ofstream("sharded/model.safetensors.index.json")
        << "{\"metadata\": {\"total_size\": 72}, \"weight_map\": {" << weight_map << "}}";

    for (const char* source : {"sharded", "sharded/model.safetensors.index.json"}) {
        Eigen::MatrixXf embed, block, head;
        ckpt::checkpoint ck{ckpt::track("embed", embed), ckpt::track("block", block), ckpt::track("head", head)};
        ckpt::name_map names;
        names.rename_prefix("", "")
            .rename("embed", "embed.weight")
            .rename("block", "block.weight")
            .rename("head", "head.weight");
        ck.restore(source, ckpt::strict, names).assert_consumed();
        CHECK(embed.rows() == 4);
        CHECK(block(2, 1) == 1.0f);
        CHECK(head(1, 1) == 2.0f);
    }
    CHECK(ckpt::foreign_file("sharded").format() == "safetensors-sharded");
}

TEST_CASE("a numpy [d0, d1, d2] array restores into an Eigen::Tensor of those dimensions", "[foreign]") {
    ckpt_test::numpy(
        "a = np.arange(24, dtype='f8').reshape(2, 3, 4)\n"
        "np.savez('t.npz', c=a, f=np.asfortranarray(a))");
    Eigen::Tensor<double, 3> c, f;
    ckpt::checkpoint ck{ckpt::track("c", c), ckpt::track("f", f)};
    ck.restore("t.npz", ckpt::strict, ckpt::name_map{}).assert_consumed();
    for (const auto* t : {&c, &f}) {
        REQUIRE(t->dimension(0) == 2);
        REQUIRE(t->dimension(2) == 4);
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 3; ++j)
                for (int k = 0; k < 4; ++k) CHECK((*t)(i, j, k) == 12.0 * i + 4.0 * j + k);
    }
}

TEST_CASE("bfloat16 converts to float32 and uint8 widens to int32 when asked, in place too", "[foreign]") {
    Eigen::Matrix<Eigen::bfloat16, Eigen::Dynamic, Eigen::Dynamic> low(2, 3);
    Eigen::Matrix<std::uint8_t, Eigen::Dynamic, 1> bytes(3);
    for (int i = 0; i < 6; ++i) low(i) = Eigen::bfloat16(static_cast<float>(i) + 0.5f);
    bytes << 0, 128, 255;
    ckpt::checkpoint out{ckpt::track("w", low), ckpt::track("b", bytes)};
    out.write("low.safetensors", ckpt::as_safetensors, ckpt::name_map{});

    Eigen::MatrixXf w;
    Eigen::Matrix<std::int32_t, Eigen::Dynamic, 1> b;
    ckpt::checkpoint in{ckpt::track("w", w), ckpt::track("b", b)};
    in.restore("low.safetensors", ckpt::strict | ckpt::convert | ckpt::in_place, ckpt::name_map{}).assert_consumed();
    REQUIRE(w.rows() == 2);
    for (int i = 0; i < 6; ++i) CHECK(w(i) == static_cast<float>(i) + 0.5f);
    CHECK(b(1) == 128);
    CHECK(b(2) == 255);
}
