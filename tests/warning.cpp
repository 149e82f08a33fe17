// ckpt::set_warning_handler: what the library reports without throwing reaches the hook, and only
// the hook; the default handler writes "ckpt: <message>" on stderr.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

// Everything written to file descriptor 2 while `run` runs.
template <class F>
std::string captured_stderr(F run) {
    const fs::path file = "warning_stderr.txt";
    std::fflush(stderr);
    const int saved = ::dup(2);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(saved >= 0);
    REQUIRE(fd >= 0);
    ::dup2(fd, 2);
    ::close(fd);
    run();
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    std::ifstream in(file);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Two checkpoints in `dir`, the latest damaged.
void two_checkpoints_latest_damaged(const fs::path& dir, std::int64_t& step, ckpt::any_checkpoint& ck) {
    fs::remove_all(dir);
    ckpt::checkpoint_manager mgr{ck, dir};
    step = 1;
    mgr.save();
    step = 2;
    mgr.save();
    std::fstream f(dir / "ckpt-2", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x7f');
}

struct handler_reset {
    ~handler_reset() { ckpt::set_warning_handler({}); }
};

}  // namespace

TEST_CASE("a skipped damaged checkpoint reaches the warning handler, and nothing reaches stderr", "[warning]") {
    const fs::path dir = "warning_skipped";
    Eigen::MatrixXf weights = Eigen::MatrixXf::Random(4, 3);
    std::int64_t step = 0;
    ckpt::checkpoint ck{ckpt::track("weights", weights), ckpt::track("step", step)};
    two_checkpoints_latest_damaged(dir, step, ck);

    handler_reset reset;
    std::vector<ckpt::warning> seen;
    CHECK_FALSE(ckpt::set_warning_handler([&](const ckpt::warning& w) { seen.push_back(w); }));
    std::optional<fs::path> restored;
    const std::string err = captured_stderr([&] {
        ckpt::checkpoint_manager mgr{ck, dir};
        restored = mgr.restore_or_initialize();
    });
    CHECK(err.empty());
    REQUIRE(restored);
    CHECK(*restored == dir / "ckpt-1");
    CHECK(step == 1);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].kind == ckpt::warning_kind::skipped_checkpoint);
    CHECK(seen[0].message.find("skipping a damaged checkpoint") == 0);
    CHECK(seen[0].message.find("ckpt-2") != std::string::npos);
}

TEST_CASE("the default warning handler prints on stderr with a ckpt: prefix", "[warning]") {
    const fs::path dir = "warning_default";
    Eigen::MatrixXf weights = Eigen::MatrixXf::Random(4, 3);
    std::int64_t step = 0;
    ckpt::checkpoint ck{ckpt::track("weights", weights), ckpt::track("step", step)};
    two_checkpoints_latest_damaged(dir, step, ck);

    handler_reset reset;
    ckpt::set_warning_handler([](const ckpt::warning&) {});
    // An empty handler restores the default, and set_warning_handler returns the one replaced.
    CHECK(ckpt::set_warning_handler({}));
    const std::string err = captured_stderr([&] {
        ckpt::checkpoint_manager mgr{ck, dir};
        mgr.restore_or_initialize();
    });
    CHECK(err.rfind("ckpt: skipping a damaged checkpoint: ", 0) == 0);
    CHECK(err.find("ckpt-2") != std::string::npos);
}

TEST_CASE("a handler that throws does not take the restore down", "[warning]") {
    const fs::path dir = "warning_throwing";
    Eigen::MatrixXf weights = Eigen::MatrixXf::Random(4, 3);
    std::int64_t step = 0;
    ckpt::checkpoint ck{ckpt::track("weights", weights), ckpt::track("step", step)};
    two_checkpoints_latest_damaged(dir, step, ck);

    handler_reset reset;
    ckpt::set_warning_handler([](const ckpt::warning&) { throw std::runtime_error("the log is full"); });
    ckpt::checkpoint_manager mgr{ck, dir};
    const auto restored = mgr.restore_or_initialize();
    REQUIRE(restored);
    CHECK(*restored == dir / "ckpt-1");
}

namespace {
struct layer {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
};
struct net {
    layer hidden;
    layer out;
};
CKPT_FIELDS(layer, kernel, bias)
CKPT_FIELDS(net, hidden, out)
}  // namespace

TEST_CASE("tracking one object twice, or an object and one of its members, warns at construction", "[warning]") {
    net model;
    std::int64_t step = 0;
    handler_reset reset;
    std::vector<ckpt::warning> seen;
    ckpt::set_warning_handler([&](const ckpt::warning& w) { seen.push_back(w); });

    SECTION("the same object under two names") {
        ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("step", step), ckpt::track("net", model)};
        REQUIRE(seen.size() == 1);
        CHECK(seen[0].kind == ckpt::warning_kind::overlapping_objects);
        CHECK(seen[0].message.find("'model' and 'net' are the same object") != std::string::npos);
        CHECK(seen[0].message.find("track each object once") != std::string::npos);
    }
    SECTION("an object and one of its members") {
        ckpt::checkpoint ck{ckpt::track("head", model.out), ckpt::track("model", model)};
        REQUIRE(seen.size() == 1);
        CHECK(seen[0].kind == ckpt::warning_kind::overlapping_objects);
        CHECK(seen[0].message.find("'head' is a part of 'model'") != std::string::npos);
    }
    SECTION("separate objects, and members of one object side by side, do not warn") {
        net other;
        ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("other", other), ckpt::track("step", step)};
        ckpt::checkpoint parts{ckpt::track("hidden", model.hidden), ckpt::track("out", model.out)};
        CHECK(seen.empty());
    }
}
