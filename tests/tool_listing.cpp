// The `ckpt` tool on directories and on what changed: `ls --json`, `inspect DIR` on a manager's
// directory, `diff` showing the values that differ (scalars, strings, the first tensor elements,
// random engines by a hash of their state), `verify`'s verdicts in order with their details, and
// names with bidirectional controls escaped in every text output.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include "support/tool.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>

namespace fs = std::filesystem;

namespace {

using ckpt_test::result;
using ckpt_test::tool;
result run(const std::string& command) { return ckpt_test::run_command(command); }

using ckpt_test::python;

// A manager's directory of three saves, two kept, each with a loss.
void three_saves(const fs::path& dir) {
    fs::remove_all(dir);
    Eigen::VectorXf w = Eigen::VectorXf::Zero(3);
    ckpt::checkpoint ck{ckpt::track("w", w)};
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2)};
    for (int step = 1; step <= 3; ++step) {
        ckpt::save_options o;
        o.metrics["loss"] = 1.0 / step;
        o.strings["git"] = "1a2b3c";
        mgr.save(step, o);
    }
}

struct state {
    std::int64_t step = 12;
    std::string note = "before";
    Eigen::MatrixXf w = Eigen::MatrixXf::Zero(2, 3);
    std::mt19937 rng{1};
    std::uniform_real_distribution<float> noise{0.0f, 1.0f};
};

fs::path write(state& s, const fs::path& file) {
    ckpt::checkpoint ck{ckpt::track("step", s.step), ckpt::track("note", s.note), ckpt::track("w", s.w),
                        ckpt::track("rng", s.rng), ckpt::track("noise", s.noise)};
    return ck.write(file);
}

}  // namespace

TEST_CASE("ckpt ls --json lists a manager's checkpoints in a document json.loads reads", "[tool]") {
    three_saves("ls_json");
    const auto ls = tool("ls --json ls_json");
    INFO(ls.output);
    CHECK(ls.status == 0);
    CHECK_THAT(ls.output, Catch::StartsWith("{\"directory\":\"ls_json\",\"managed\":true,\"checkpoints\":[") &&
                              Catch::Contains("\"name\":\"ckpt-3\"") && Catch::Contains("\"step\":3") &&
                              Catch::Contains("\"metrics\":{\"loss\":0.3333333333333333}") &&
                              Catch::Contains("\"strings\":{\"git\":\"1a2b3c\"}") &&
                              Catch::Contains("\"latest\":true"));
    CHECK_THAT(ls.output, !Catch::Contains("\"ckpt-1\""));  // rotated away
    // Valid JSON whose metrics read back exactly.
    const auto py = run(std::string(CKPT_TOOL) + " ls --json ls_json | " + python() +
                        " -c \"import json,sys; d=json.load(sys.stdin); c=d['checkpoints']; "
                        "print(len(c), c[-1]['step'], c[-1]['metrics']['loss'] == 1/3, c[0]['bytes'] > 0)\"");
    CHECK(py.status == 0);
    CHECK(py.output == "2 3 True True\n");
}

TEST_CASE("ckpt inspect on a manager's directory lists its checkpoints instead of failing", "[tool]") {
    three_saves("inspect_dir");
    const auto text = tool("inspect inspect_dir");
    INFO(text.output);
    CHECK(text.status == 0);
    CHECK_THAT(text.output, Catch::Contains("inspect_dir: 2 checkpoints") && Catch::Contains("ckpt-2") &&
                                Catch::Contains("ckpt-3") && Catch::Contains("[latest]") &&
                                Catch::Contains("inspect one with `ckpt inspect inspect_dir/ckpt-3`"));
    const auto json = tool("inspect --json inspect_dir");
    CHECK(json.status == 0);
    CHECK_THAT(json.output, Catch::StartsWith("{\"directory\":\"inspect_dir\",\"managed\":true"));

    // A directory with no checkpoint in it stays an error, on one line.
    fs::create_directories("inspect_dir_empty");
    const auto empty = tool("inspect inspect_dir_empty");
    CHECK(empty.status == 2);
    CHECK_THAT(empty.output, Catch::StartsWith("ckpt: ") && Catch::Contains("no checkpoints"));
    CHECK(std::count(empty.output.begin(), empty.output.end(), '\n') == 1);
}

TEST_CASE("ckpt diff shows the values that differ, and random engines by a hash of their state", "[tool]") {
    fs::remove_all("diff_values");
    state s;
    const auto a = write(s, "diff_values/a");
    s.step = 13;
    s.note = "after";
    s.w(0, 1) = 1.5f;    // column-major: the 3rd element stored
    s.w(1, 2) = -0.25f;  // the 6th
    s.rng.discard(1);
    s.noise = std::uniform_real_distribution<float>(0.0f, 2.0f);
    const auto b = write(s, "diff_values/b");

    const auto d = tool("diff " + a.string() + " " + b.string());
    INFO(d.output);
    CHECK(d.status == 1);
    CHECK_THAT(d.output, Catch::Contains("~ step: 12 -> 13\n"));
    CHECK_THAT(d.output, Catch::Contains("~ note: \"before\" -> \"after\"\n"));
    CHECK_THAT(d.output, Catch::Contains("~ w: 2 of 6 elements differ, max abs diff 1.5, max rel diff 1; first at "
                                         "[0,1] 0 -> 1.5, [1,2] 0 -> -0.25\n"));
    CHECK_THAT(d.output, Catch::Contains("~ noise: '0.000000000e+00 1.000000000e+00' -> '0.000000000e+00 "
                                         "2.000000000e+00'\n"));
    // The engine's 625 numbers are summarized: a line, not kilobytes.
    const auto rng = d.output.find("~ rng: random engine state: 625 numbers, checksum ");
    REQUIRE(rng != std::string::npos);
    const auto line = d.output.substr(rng, d.output.find('\n', rng) - rng);
    CHECK(line.size() < 100);
    CHECK_THAT(line, Catch::Contains(" -> checksum "));

    const auto json = tool("diff --json " + a.string() + " " + b.string());
    CHECK(json.status == 1);
    CHECK_THAT(json.output, Catch::Contains("\"first_differences\":[{\"index\":[0,1],\"a\":\"0\",\"b\":\"1.5\"},"
                                            "{\"index\":[1,2],\"a\":\"0\",\"b\":\"-0.25\"}]"));
    CHECK_THAT(json.output, Catch::Contains("\"a_value\":\"\\\"before\\\"\",\"b_value\":\"\\\"after\\\"\""));
}

TEST_CASE("ckpt verify prints each file's verdict after its details, in order on one stream", "[tool]") {
    fs::remove_all("verify_order");
    state s;
    write(s, "verify_order/a");
    const auto bad = write(s, "verify_order/b");
    write(s, "verify_order/c");
    const auto offset = ckpt::reader(bad).find("w")->offset;
    {
        std::fstream f(bad, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(offset));
        f.put('\x55');
    }
    // Through a pipe stdout is fully buffered: a verdict on another stream would come out of order.
    const auto v = tool("verify verify_order");
    INFO(v.output);
    CHECK(v.status == 1);
    const auto a_ok = v.output.find("verify_order/a: ok");
    const auto detail = v.output.find("checksum mismatch");
    const auto b_bad = v.output.find("verify_order/b: BAD (1 of 5 entries damaged)");
    const auto c_ok = v.output.find("verify_order/c: ok");
    REQUIRE(a_ok != std::string::npos);
    REQUIRE(detail != std::string::npos);
    REQUIRE(b_bad != std::string::npos);
    REQUIRE(c_ok != std::string::npos);
    CHECK(a_ok < detail);
    CHECK(detail < b_bad);
    CHECK(b_bad < c_ok);
}

TEST_CASE("names with bidirectional controls are escaped in inspect, ls and diff", "[tool]") {
    fs::remove_all("bidi");
    // U+202E RIGHT-TO-LEFT OVERRIDE: printed raw, "evil\u202Eexe.txt" shows as "eviltxt.exe".
    const std::string rlo = "\xe2\x80\xae", lri = "\xe2\x81\xa6";
    std::map<std::string, Eigen::Vector2f> m{{"evil" + rlo + "exe.txt", {1.0f, 0.0f}}, {"plain", {2.0f, 0.0f}}};
    ckpt::checkpoint ck{ckpt::track("m", m)};
    const auto a = ck.write("bidi/a");
    m["evil" + rlo + "exe.txt"](0) = 3.0f;
    const auto b = ck.write("bidi/b");

    const auto inspect = tool("inspect " + a.string());
    INFO(inspect.output);
    CHECK(inspect.status == 0);
    CHECK_THAT(inspect.output, Catch::Contains("m/evil\\u202eexe.txt") && Catch::Contains("m/plain"));
    CHECK_THAT(inspect.output, !Catch::Contains(rlo));
    const auto json = tool("inspect --json " + a.string());
    CHECK_THAT(json.output, Catch::Contains("\"path\":\"m/evil\\u202eexe.txt\"") && !Catch::Contains(rlo));

    const auto diff = tool("diff " + a.string() + " " + b.string());
    CHECK(diff.status == 1);
    CHECK_THAT(diff.output, Catch::Contains("~ m/evil\\u202eexe.txt: 1 of 2 elements differ") && !Catch::Contains(rlo));

    fs::remove_all("bidi_run");
    Eigen::VectorXf w = Eigen::VectorXf::Zero(2);
    ckpt::checkpoint run{ckpt::track("w", w)};
    ckpt::checkpoint_manager mgr{run, "bidi_run"};
    ckpt::save_options o;
    o.metrics["loss" + lri] = 0.5;
    mgr.save(1, o);
    const auto ls = tool("ls bidi_run");
    CHECK(ls.status == 0);
    CHECK_THAT(ls.output, Catch::Contains("loss\\u2066=0.5") && !Catch::Contains(lri));
    CHECK_THAT(tool("ls --json bidi_run").output, Catch::Contains("\"loss\\u2066\":0.5") && !Catch::Contains(lri));
}
