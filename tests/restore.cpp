// Restore semantics: strict by default and checked before anything changes; shapes follow the file
// for empty objects; partial restores; the save counter; what a save leaves on disk.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {
using ckpt_test::dense;
struct mlp {
    dense hidden;
    dense out;
};
CKPT_FIELDS(mlp, hidden, out)

mlp make_mlp(int in, int hidden, int out) {
    return {{Eigen::MatrixXf::Random(in, hidden), Eigen::VectorXf::Random(hidden)},
            {Eigen::MatrixXf::Random(hidden, out), Eigen::VectorXf::Random(out)}};
}

bool has_temp_files(const fs::path& dir) {
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.path().filename().string().find(".ckpt-tmp.") != std::string::npos) return true;
    return false;
}
}  // namespace

TEST_CASE("a shape mismatch names the entry and both shapes, and changes nothing", "[restore]") {
    fs::remove_all("restore_mismatch");
    mlp model = make_mlp(10, 64, 4);
    std::int64_t step = 100;
    ckpt::checkpoint ck{ckpt::track("step", step), ckpt::track("model", model)};
    const auto file = ck.save("restore_mismatch/ckpt");

    std::int64_t other_step = 5;
    mlp other = make_mlp(10, 128, 4);
    const mlp before = other;
    ckpt::checkpoint wrong{ckpt::track("step", other_step), ckpt::track("model", other)};
    try {
        wrong.restore(file);
        FAIL("expected a mismatch");
    } catch (const ckpt::mismatch_error& e) {
        CHECK(e.entry() == "model/hidden/kernel");
        CHECK(e.file() == file);
        CHECK_THAT(e.what(), Catch::Contains("model/hidden/kernel") &&
                                 Catch::Contains("checkpoint has float32 [10,64]") &&
                                 Catch::Contains("object has float32 [10,128]"));
        CHECK_THAT(e.what(), Catch::Contains("model/hidden/bias"));  // every problem is listed
    }
    CHECK(other_step == 5);  // "step" comes first and matched, yet was not restored
    CHECK(other.hidden.kernel == before.hidden.kernel);
    CHECK(other.out.bias == before.out.bias);
}

TEST_CASE("verify_first: damaged bytes leave every object as it was", "[restore]") {
    fs::remove_all("restore_verify");
    mlp model = make_mlp(10, 64, 4);
    ckpt::checkpoint ck{ckpt::track("model", model)};
    const auto good = ck.write("restore_verify/good");
    // One flipped bit in the last block, out/bias: its checksum fails, everything else is sound.
    std::string bytes;
    {
        std::ifstream in(good, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    const auto bias = *ckpt::reader(good).find("model/out/bias");
    bytes[bias.offset + 1] = static_cast<char>(bytes[bias.offset + 1] ^ 0x04);
    const fs::path damaged = "restore_verify/damaged";
    std::ofstream(damaged, std::ios::binary) << bytes;

    mlp other = make_mlp(10, 64, 4);
    const mlp before = other;
    ckpt::checkpoint loader{ckpt::track("model", other)};
    try {
        loader.restore(damaged, ckpt::verify_first);
        FAIL("expected a corrupt_error");
    } catch (const ckpt::corrupt_error& e) {
        CHECK(e.entry() == "model/out/bias");
        CHECK(e.file() == damaged);
        CHECK_THAT(e.what(), Catch::Contains("checksum"));
    }
    CHECK(other.hidden.kernel == before.hidden.kernel);
    CHECK(other.out.kernel == before.out.kernel);
    CHECK(other.out.bias == before.out.bias);

    // The default restore checks every block before any object changes as well.
    CHECK_THROWS_AS(loader.restore(damaged), ckpt::corrupt_error);
    CHECK(other.hidden.kernel == before.hidden.kernel);

    // It combines with a partial restore, and a sound file restores as usual.
    const mlp saved = model;
    mlp fresh = make_mlp(10, 64, 4);
    std::int64_t not_saved = 3;
    ckpt::checkpoint partial{ckpt::track("model", fresh), ckpt::track("not_saved", not_saved)};
    const auto status = partial.restore(good, ckpt::partial | ckpt::verify_first);
    CHECK(status.missing() == std::vector<std::string>{"not_saved"});
    CHECK(fresh.hidden.kernel == saved.hidden.kernel);
    CHECK(fresh.out.bias == saved.out.bias);
    CHECK(not_saved == 3);
}

TEST_CASE("dtype mismatches and missing objects are errors in a strict restore", "[restore]") {
    fs::remove_all("restore_strict");
    Eigen::MatrixXd weights = Eigen::MatrixXd::Random(2, 2);
    ckpt::checkpoint ck{ckpt::track("weights", weights)};
    const auto file = ck.save("restore_strict/ckpt");
    Eigen::MatrixXf floats;
    ckpt::checkpoint as_float{ckpt::track("weights", floats)};
    CHECK_THROWS_WITH(as_float.restore(file),
                      Catch::Contains("checkpoint has float64 [2,2], object has float32 [0,0]"));
    std::int64_t step = 0;
    ckpt::checkpoint more{ckpt::track("weights", weights), ckpt::track("step", step)};
    CHECK_THROWS_WITH(more.restore(file), Catch::Contains("entry 'step': not found in the checkpoint"));
}

TEST_CASE("empty objects take the saved shapes and keys", "[restore]") {
    fs::remove_all("restore_shapes");
    std::vector<Eigen::MatrixXf> moments{Eigen::MatrixXf::Random(2, 3), Eigen::MatrixXf::Random(4, 1)};
    std::map<std::string, dense> heads{{"en", {Eigen::MatrixXf::Random(3, 2), Eigen::VectorXf::Random(2)}},
                                       {"fr", {Eigen::MatrixXf::Random(3, 2), Eigen::VectorXf::Random(2)}}};
    std::vector<float> history{1, 2, 3};
    ckpt::checkpoint ck{ckpt::track("moments", moments), ckpt::track("heads", heads), ckpt::track("history", history)};
    const auto file = ck.save("restore_shapes/ckpt");

    std::vector<Eigen::MatrixXf> m2;  // empty containers take the file's size and keys
    std::map<std::string, dense> h2;
    std::vector<float> hist2;  // a tensor: empty, it takes the file's size
    ckpt::checkpoint back{ckpt::track("moments", m2), ckpt::track("heads", h2), ckpt::track("history", hist2)};
    back.restore(file).assert_consumed();
    CHECK(m2 == moments);
    CHECK(h2.size() == 2);
    CHECK(h2.at("fr").kernel == heads.at("fr").kernel);
    CHECK(hist2 == history);
    // Non-empty ones of another size or keys are mismatches (see restore_atomic.cpp).
    std::vector<Eigen::MatrixXf> m3(5);
    ckpt::checkpoint five{ckpt::track("moments", m3)};
    CHECK_THROWS_AS(five.restore(file), ckpt::mismatch_error);
    CHECK(m3.size() == 5);
}

TEST_CASE("a partial restore leaves missing objects alone and lists them", "[restore]") {
    fs::remove_all("restore_partial");
    mlp model = make_mlp(3, 4, 2);
    ckpt::checkpoint ck{ckpt::track("model", model)};
    const auto file = ck.save("restore_partial/ckpt");

    mlp restored;
    std::int64_t step = 77;
    ckpt::checkpoint more{ckpt::track("model", restored), ckpt::track("step", step)};
    const auto status = more.restore(file, ckpt::partial);
    CHECK(status.missing() == std::vector<std::string>{"step"});
    CHECK(step == 77);
    CHECK(restored.out.kernel == model.out.kernel);
    CHECK_THROWS_AS(status.assert_existing_objects_matched(), ckpt::mismatch_error);
    CHECK_THROWS_WITH(status.assert_consumed(), Catch::Contains("step"));

    dense only_hidden;
    ckpt::checkpoint fewer{ckpt::track("model/hidden", only_hidden)};
    const auto s2 = fewer.restore(file);
    CHECK(only_hidden.kernel == model.hidden.kernel);
    CHECK_NOTHROW(s2.assert_existing_objects_matched());
    CHECK(s2.unused() == std::vector<std::string>{"model/out/kernel", "model/out/bias"});
    CHECK_THROWS_WITH(s2.assert_consumed(), Catch::Contains("2 entries of the checkpoint were not restored") &&
                                                Catch::Contains("model/out/kernel"));
}

TEST_CASE("the save counter numbers checkpoints and is restored with them", "[restore]") {
    fs::remove_all("restore_counter");
    std::int64_t step = 1;
    ckpt::checkpoint ck{ckpt::track("step", step)};
    CHECK(ck.save("restore_counter/ckpt") == fs::path("restore_counter/ckpt-1"));
    CHECK(ck.save("restore_counter/ckpt") == fs::path("restore_counter/ckpt-2"));
    CHECK(ck.save_counter() == 2);

    std::int64_t other = 0;
    ckpt::checkpoint fresh{ckpt::track("step", other)};
    fresh.restore("restore_counter/ckpt-1");
    CHECK(fresh.save_counter() == 1);
    CHECK(fresh.save("restore_counter/ckpt") == fs::path("restore_counter/ckpt-3"));  // ckpt-2 is not overwritten
    CHECK(ckpt::reader("restore_counter/ckpt-3").metadata().save_counter == 3);
    CHECK(*ckpt::latest_checkpoint("restore_counter") == fs::path("restore_counter/ckpt-3"));
}

TEST_CASE("saving creates directories, leaves no temporary file, and fails cleanly", "[restore]") {
    fs::remove_all("restore_files");
    Eigen::VectorXf v = Eigen::VectorXf::Random(8);
    ckpt::checkpoint ck{ckpt::track("v", v)};
    CHECK(fs::exists(ck.write("restore_files/a/b/c/exact.ckpt")));
    ck.save("restore_files/d/ckpt");
    CHECK_FALSE(has_temp_files("restore_files"));
    std::ofstream("restore_files/file") << "x";
    CHECK_THROWS_AS(ck.write("restore_files/file/inside.ckpt"), ckpt::io_error);
    CHECK_FALSE(has_temp_files("restore_files"));
}

TEST_CASE("an asynchronous save holds the state at the moment of the call", "[restore][async]") {
    fs::remove_all("restore_async");
    Eigen::MatrixXf w = Eigen::MatrixXf::Constant(300, 300, 1.0f);
    std::int64_t step = 1;
    ckpt::checkpoint ck{ckpt::track("w", w), ckpt::track("step", step)};
    const auto first = ck.save_async("restore_async/ckpt");
    w.setConstant(2.0f);  // training goes on while the file is written
    step = 2;
    const auto second = ck.save_async("restore_async/ckpt");  // waits for the first
    w.setConstant(3.0f);
    ck.wait();
    CHECK_FALSE(ck.save_in_progress());
    Eigen::MatrixXf back;
    std::int64_t back_step = 0;
    ckpt::checkpoint in{ckpt::track("w", back), ckpt::track("step", back_step)};
    in.restore(first);
    CHECK(back_step == 1);
    CHECK((back.array() == 1.0f).all());
    in.restore(second);
    CHECK(back_step == 2);
    CHECK((back.array() == 2.0f).all());
}

TEST_CASE("an asynchronous save's error surfaces at wait() and at the next save", "[restore][async]") {
    fs::remove_all("restore_async_error");
    fs::create_directories("restore_async_error");
    std::ofstream("restore_async_error/file") << "x";
    std::int64_t step = 1;
    ckpt::checkpoint ck{ckpt::track("step", step)};
    ck.save_async("restore_async_error/file/ckpt");
    CHECK_THROWS_AS(ck.wait(), ckpt::io_error);
    CHECK_NOTHROW(ck.wait());  // reported once
    ck.save_async("restore_async_error/file/ckpt");
    CHECK_THROWS_AS(ck.save("restore_async_error/ok/ckpt"), ckpt::io_error);
    CHECK(ck.save("restore_async_error/ok/ckpt").filename() == "ckpt-1");
}

TEST_CASE("metadata round-trips through the reader", "[restore]") {
    fs::remove_all("restore_metadata");
    std::int64_t step = 0;
    ckpt::checkpoint ck{ckpt::track("step", step)};
    ckpt::save_options o;
    o.step = 1200;
    o.metrics["val_loss"] = 0.25;
    o.strings["git"] = "abc123";
    const auto before = std::chrono::system_clock::now();
    const auto file = ck.save("restore_metadata/ckpt", o);
    const auto m = ckpt::reader(file).metadata();
    CHECK(*m.step == 1200);
    CHECK(m.metrics.at("val_loss") == 0.25);
    CHECK(m.strings.at("git") == "abc123");
    CHECK(m.save_counter == 1);
    CHECK(m.wall_time >= before - std::chrono::seconds(1));
    CHECK(m.wall_time <= std::chrono::system_clock::now());
}

TEST_CASE("track names must be valid and distinct", "[restore]") {
    int a = 0, b = 0;
    CHECK_THROWS_WITH((ckpt::checkpoint{ckpt::track("x", a), ckpt::track("x", b)}), Catch::Contains("overlap"));
    CHECK_THROWS_WITH((ckpt::checkpoint{ckpt::track("model", a), ckpt::track("model/head", b)}),
                      Catch::Contains("overlap"));
    CHECK_THROWS_WITH((ckpt::checkpoint{ckpt::track("../up", a)}), Catch::Contains("invalid track name"));
    CHECK_THROWS_AS((ckpt::checkpoint{ckpt::track("", a)}), ckpt::error);
    CHECK_NOTHROW((ckpt::checkpoint{ckpt::track("model", a), ckpt::track("model2", b)}));
}
