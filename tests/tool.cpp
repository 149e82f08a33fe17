// The `ckpt` command-line tool on real checkpoints: ls, inspect (text and JSON), verify, diff, and
// export, whose .npz and safetensors files python3 with numpy and PyTorch read back value by value.

#include <ckpt/ckpt.hpp>

#include <Eigen/SparseCore>
#include <unsupported/Eigen/CXX11/Tensor>

#include <catch2/catch.hpp>

#include "support/sanitizers.hpp"
#include "support/tool.hpp"

#include <complex>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

using ckpt_test::python;
using ckpt_test::python_script;
using ckpt_test::result;
using ckpt_test::tool;
using ckpt_test::tool_peak_kib;

struct tensors {
    Eigen::Matrix<std::uint8_t, 3, 1> small{1, 2, 3};  // first in the file: what follows is misaligned there
    Eigen::Matrix<Eigen::bfloat16, 3, 1> brain{Eigen::bfloat16(1.5f), Eigen::bfloat16(-0.0078125f),
                                               Eigen::bfloat16(3.0e38f)};
    Eigen::MatrixXf col_major = Eigen::MatrixXf::Random(3, 4);
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = Eigen::MatrixXf::Random(2, 5);
    Eigen::Tensor<double, 3> cube{2, 3, 4};
    std::vector<std::int64_t> counts{1, -2, 3, 1LL << 40};
    Eigen::Matrix<bool, Eigen::Dynamic, 1> mask = Eigen::Matrix<bool, Eigen::Dynamic, 1>::Constant(3, true);
    Eigen::Matrix<Eigen::half, 2, 2> halves;
    std::vector<std::complex<float>> phases{{1.0f, -2.0f}, {0.5f, 0.25f}};
    std::string note = "not a tensor";
    std::int64_t step = 12;
    tensors() {
        cube.setRandom();
        mask(1) = false;
        halves << Eigen::half(1.5f), Eigen::half(-2.0f), Eigen::half(0.25f), Eigen::half(8.0f);
    }
};

template <class F>
auto with_checkpoint(tensors& t, F&& f) {
    ckpt::checkpoint ck{
        ckpt::track("small", t.small),         ckpt::track("brain", t.brain),   ckpt::track("col_major", t.col_major),
        ckpt::track("row_major", t.row_major), ckpt::track("cube", t.cube),     ckpt::track("counts", t.counts),
        ckpt::track("mask", t.mask),           ckpt::track("halves", t.halves), ckpt::track("phases", t.phases),
        ckpt::track("note", t.note),           ckpt::track("step", t.step)};
    return f(ck);
}

std::string number(double v) {
    char b[40];
    std::snprintf(b, sizeof b, "%.17g", v);
    return b;
}

// name|numpy dtype|shape|values in C (row-major) order
void write_expected(const tensors& t, const fs::path& file) {
    std::ofstream out(file);
    auto matrix = [&](const char* name, const auto& m) {
        out << name << "|<f4|" << m.rows() << "," << m.cols() << "|";
        for (Eigen::Index i = 0; i < m.rows(); ++i)
            for (Eigen::Index j = 0; j < m.cols(); ++j) out << number(m(i, j)) << " ";
        out << "\n";
    };
    matrix("col_major", t.col_major);
    matrix("row_major", t.row_major);
    out << "cube|<f8|2,3,4|";
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j)
            for (int k = 0; k < 4; ++k) out << number(t.cube(i, j, k)) << " ";
    out << "\ncounts|<i8|4|";
    for (auto c : t.counts) out << c << " ";
    out << "\nsmall|<u1|3|1 2 3\nbrain|bf16|3|";
    for (int i = 0; i < 3; ++i) out << number(static_cast<float>(t.brain(i))) << " ";
    out << "\nmask|?|3|1 0 1\nhalves|<f2|2,2|1.5 -2 0.25 8\nphases|<c8|2|(1-2j) (0.5+0.25j)\nstep|<i8||12\n";
}

}  // namespace

TEST_CASE("ckpt inspect, verify, diff and ls on real checkpoints", "[tool]") {
    fs::remove_all("tool_basic");
    tensors t;
    const auto first = with_checkpoint(t, [](auto& ck) { return ck.save("tool_basic/ckpt"); });
    t.col_major(1, 2) += 0.5f;
    const auto second = with_checkpoint(t, [](auto& ck) { return ck.save("tool_basic/ckpt"); });

    const auto inspect = tool("inspect " + first.string());
    CHECK(inspect.status == 0);
    CHECK_THAT(inspect.output, Catch::Contains("col_major") && Catch::Contains("float32") && Catch::Contains("[3,4]") &&
                                   Catch::Contains("cube") && Catch::Contains("[2,3,4]") &&
                                   Catch::Contains("serialized"));
    const auto json = tool("inspect --json " + first.string());
    CHECK(json.status == 0);
    CHECK_THAT(json.output,
               Catch::Contains("\"path\":\"counts\",\"kind\":\"tensor\",\"dtype\":\"int64\",\"shape\":[4]"));

    CHECK(tool("verify " + first.string()).status == 0);
    CHECK(tool("verify tool_basic").status == 0);
    CHECK(tool("diff " + first.string() + " " + first.string()).status == 0);
    const auto diff = tool("diff " + first.string() + " " + second.string());
    CHECK(diff.status == 1);
    CHECK_THAT(diff.output, Catch::Contains("col_major: 1 of 12 elements differ, max abs diff 0.5"));

    fs::remove_all("tool_managed");
    Eigen::VectorXf w = Eigen::VectorXf::Random(3);
    ckpt::checkpoint ck{ckpt::track("w", w)};
    ckpt::checkpoint_manager mgr{ck, "tool_managed", ckpt::keep_last(2)};
    for (int step = 1; step <= 3; ++step) {
        ckpt::save_options o;
        o.metrics["loss"] = 1.0 / step;
        mgr.save(step, o);
    }
    const auto ls = tool("ls tool_managed");
    CHECK(ls.status == 0);
    CHECK_THAT(ls.output, Catch::Contains("2 checkpoints") && Catch::Contains("ckpt-3") &&
                              Catch::Contains("loss=0.333333") && Catch::Contains("[latest]"));
    CHECK_THAT(ls.output, !Catch::Contains("ckpt-1 "));
}

TEST_CASE("exports to .npz and safetensors read back in numpy value by value", "[tool]") {
    fs::remove_all("tool_export");
    fs::create_directories("tool_export");
    tensors t;
    const auto file = with_checkpoint(t, [](auto& ck) { return ck.write("tool_export/ckpt"); });
    write_expected(t, "tool_export/expected.txt");
    const auto npz = tool("export " + file.string() + " --format npz -o tool_export/out.npz");
    CHECK(npz.status == 0);
    CHECK_THAT(npz.output, Catch::Contains("skipped note"));
    const auto st = tool("export " + file.string() + " --format safetensors -o tool_export/out.safetensors");
    CHECK(st.status == 0);
    CHECK_THAT(st.output, Catch::Contains("skipped phases"));  // complex64: readers before safetensors 0.7 refuse C64
    // check_export.py also checks that every safetensors tensor is aligned to its element size, in
    // the reference writer's order, and the PyTorch recipe for bfloat16 from numpy.

    const std::string check = python() + " " + CKPT_SOURCE_DIR +
                              "/tests/python/check_export.py tool_export/expected.txt " +
                              "tool_export/out.npz tool_export/out.safetensors 2>&1";
    std::FILE* p = ::popen(check.c_str(), "r");
    REQUIRE(p);
    std::string output;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) output.append(buf, n);
    const int status = ::pclose(p);
    INFO(output);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);  // python3 with numpy is installed by scripts/install-deps.sh
    CHECK_THAT(output, Catch::Contains("checked 19 tensors, 0 failures"));
}

TEST_CASE("the tool refuses bad input with a one-line error and a non-zero status", "[tool]") {
    fs::remove_all("tool_bad");
    fs::create_directories("tool_bad");
    std::ofstream("tool_bad/garbage") << std::string(500, 'g');
    for (const auto& args : {std::string("inspect tool_bad/missing"), std::string("inspect tool_bad/garbage"),
                             std::string("verify tool_bad/garbage"), std::string("inspect tool_bad"),
                             std::string("ls tool_bad/garbage"), std::string("diff tool_bad/garbage tool_bad/garbage"),
                             std::string("export tool_bad/garbage --format npz -o tool_bad/x.npz")}) {
        const auto r = tool(args);
        INFO(args << " -> " << r.output);
        CHECK(r.status != 0);
        CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
        CHECK_THAT(r.output, Catch::StartsWith("ckpt: "));
    }
    CHECK(tool("export x --format zip -o y").status != 0);
    CHECK(tool("frobnicate").status != 0);

    // A damaged file: verify names the file and the entry.
    tensors t;
    const auto file = with_checkpoint(t, [](auto& ck) { return ck.write("tool_bad/ckpt"); });
    ckpt::reader r(file);
    const auto offset = r.find("cube")->offset;
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put('\x55');
    f.close();
    const auto v = tool("verify " + file.string());
    CHECK(v.status == 1);
    CHECK_THAT(v.output,
               Catch::Contains("tool_bad/ckpt") && Catch::Contains("cube") && Catch::Contains("checksum mismatch"));
}

namespace {

bool contains_byte(const std::string& s, char c) { return s.find(c) != std::string::npos; }

}  // namespace

TEST_CASE("inspect --json and the safetensors metadata print metrics that read back exactly", "[tool]") {
    fs::remove_all("tool_numbers");
    Eigen::VectorXf w = Eigen::VectorXf::Random(3);
    ckpt::checkpoint ck{ckpt::track("w", w)};
    ckpt::save_options o;
    o.metrics = {{"loss", 3e-7}, {"third", 1.0 / 3}, {"huge", 1.5e300}, {"diverged", NAN}, {"ceiling", -INFINITY}};
    o.strings["note"] = "caf\xe9";  // Latin-1, not UTF-8: safetensors metadata gets U+00E9 for the byte
    const auto file = ck.write("tool_numbers/ckpt", o);
    const auto json = tool("inspect --json " + file.string());
    CHECK(json.status == 0);
    // Shortest text that reads back as the same double; JSON has no NaN or infinity: strings.
    CHECK_THAT(
        json.output,
        Catch::Contains("\"metrics\":{\"ceiling\":\"-inf\",\"diverged\":\"nan\",\"huge\":1.5e+300,\"loss\":3e-07,"
                        "\"third\":0.3333333333333333}"));
    CHECK_THAT(tool("inspect " + file.string()).output, Catch::Contains("metric loss = 3e-07"));
    REQUIRE(tool("export " + file.string() + " --format safetensors -o tool_numbers/out.safetensors").status == 0);
    const auto facts = python_script("export_facts.py", "tool_numbers/out.safetensors");
    INFO(facts.output);
    CHECK(facts.status == 0);
    CHECK_THAT(facts.output, Catch::Contains("metadata \"ckpt.metric.loss\" \"3e-07\"") &&
                                 Catch::Contains("metadata \"ckpt.metric.third\" \"0.3333333333333333\"") &&
                                 Catch::Contains("metadata \"ckpt.metric.diverged\" \"nan\"") &&
                                 Catch::Contains("metadata \"note\" \"caf\\u00e9\""));
}

TEST_CASE("exports escape names the reference readers cannot take and refuse the ones they cannot open", "[tool]") {
    fs::remove_all("tool_names");
    std::map<std::string, Eigen::VectorXf> layers{{"plain", Eigen::VectorXf::Constant(2, 1.0f)},
                                                  {"bad\xff\xfeutf8", Eigen::VectorXf::Constant(2, 2.0f)},
                                                  {"esc\x1b[2J\x01", Eigen::VectorXf::Constant(2, 3.0f)},
                                                  {"caf\xc3\xa9", Eigen::VectorXf::Constant(2, 4.0f)},
                                                  {"ends.npy", Eigen::VectorXf::Constant(2, 5.0f)},
                                                  {std::string(4000, 'k'), Eigen::VectorXf::Constant(2, 6.0f)}};
    Eigen::VectorXf header_like = Eigen::VectorXf::Constant(1, 7.0f);
    ckpt::checkpoint ck{ckpt::track("layers", layers), ckpt::track("__metadata__", header_like)};
    const auto file = ck.write("tool_names/ckpt").string();
    const std::string long_entry = "layers/" + std::string(4000, 'k');

    // Refused, naming the entry and what to do, and nothing is written under the final name.
    const auto npz = tool("export " + file + " --format npz -o tool_names/all.npz");
    CHECK(npz.status == 2);
    CHECK_THAT(npz.output, Catch::Contains(long_entry) && Catch::Contains("255") && Catch::Contains("--exclude"));
    CHECK_FALSE(fs::exists("tool_names/all.npz"));
    const auto st = tool("export " + file + " --format safetensors -o tool_names/all.safetensors");
    CHECK(st.status == 2);
    CHECK_THAT(st.output, Catch::Contains("entry '__metadata__'") && Catch::Contains("--exclude"));
    CHECK_FALSE(fs::exists("tool_names/all.safetensors"));

    REQUIRE(tool("export " + file + " --format npz --exclude " + long_entry + " -o tool_names/out.npz").status == 0);
    REQUIRE(
        tool("export " + file + " --format safetensors --exclude __metadata__ -o tool_names/out.safetensors").status ==
        0);
    const auto facts = python_script("export_facts.py", "tool_names/out.npz tool_names/out.safetensors");
    INFO(facts.output);
    CHECK(facts.status == 0);  // numpy.load, zipfile.extractall and json.loads all succeed
    for (const char* format : {"npz", "safetensors"}) {
        const std::string f = format;
        CHECK_THAT(facts.output,
                   Catch::Contains(f + " \"layers/plain\"") && Catch::Contains(f + " \"layers/bad%FF%FEutf8\"") &&
                       Catch::Contains(f + " \"layers/esc%1B[2J%01\"") &&
                       Catch::Contains(f + " \"layers/caf\\u00e9\"") && Catch::Contains(f + " \"layers/ends.npy\""));
    }
    CHECK_THAT(facts.output, Catch::Contains("npz \"__metadata__\""));
    CHECK_THAT(facts.output, Catch::Contains("safetensors \"" + long_entry + "\""));  // JSON keys have no length limit

    // Two entries whose exported names would be one: refused, naming both.
    Eigen::VectorXf control = Eigen::VectorXf::Constant(1, 8.0f), percent = Eigen::VectorXf::Constant(1, 9.0f);
    ckpt::checkpoint clash{ckpt::track("v\x01", control), ckpt::track("v%01", percent)};
    const auto clash_file = clash.write("tool_names/clash").string();
    for (const char* format : {"npz", "safetensors"}) {
        const auto r = tool("export " + clash_file + " --format " + format + " -o tool_names/clash.out");
        CHECK(r.status == 2);
        CHECK_THAT(r.output, Catch::Contains("entry 'v%01'") && Catch::Contains("also that of entry 'v\\x01'"));
        CHECK_FALSE(fs::exists("tool_names/clash.out"));
    }

    // Text inspect cannot drive the terminal: control characters and invalid UTF-8 are escaped.
    const auto inspect = tool("inspect " + file);
    CHECK(inspect.status == 0);
    CHECK_FALSE(contains_byte(inspect.output, '\x1b'));
    CHECK_FALSE(contains_byte(inspect.output, '\x01'));
    CHECK_FALSE(contains_byte(inspect.output, '\xff'));
    CHECK_THAT(inspect.output, Catch::Contains("layers/esc\\x1b[2J\\x01") &&
                                   Catch::Contains("layers/bad\\xff\\xfeutf8") &&
                                   Catch::Contains("layers/caf\xc3\xa9"));
    CHECK_FALSE(contains_byte(tool("diff " + file + " tool_names/ckpt --only layers --json").output, '\x1b'));
    std::ofstream("tool_names/inspect.json") << tool("inspect --json " + file).output;
    const auto json = python_script("export_facts.py", "tool_names/inspect.json");
    INFO(json.output);
    CHECK(json.output == "json 8 entries\n");  // the map, its 6 tensors, __metadata__: valid JSON whatever the bytes
}

TEST_CASE("export --only and --exclude choose tensors by path prefix, a whole segment at a time", "[tool]") {
    fs::remove_all("tool_filter");
    Eigen::MatrixXf kernel = Eigen::MatrixXf::Random(2, 3), m = Eigen::MatrixXf::Random(2, 3);
    Eigen::VectorXf bias = Eigen::VectorXf::Random(3), models = Eigen::VectorXf::Random(1);
    std::int64_t step = 3;
    ckpt::checkpoint ck{ckpt::track("model/kernel", kernel), ckpt::track("model/bias", bias),
                        ckpt::track("models", models), ckpt::track("optimizer/m", m), ckpt::track("step", step)};
    const auto file = ck.write("tool_filter/ckpt").string();
    const auto deploy =
        tool("export " + file +
             " --format safetensors --exclude optimizer --exclude step -o tool_filter/deploy.safetensors");
    CHECK(deploy.status == 0);
    CHECK_THAT(deploy.output, Catch::Contains("(3 tensors)"));
    const auto only = tool("export " + file + " --format npz --only model -o tool_filter/model.npz");
    CHECK(only.status == 0);
    CHECK_THAT(only.output, Catch::Contains("(2 tensors)"));
    const auto facts = python_script("export_facts.py", "tool_filter/deploy.safetensors tool_filter/model.npz");
    INFO(facts.output);
    CHECK(facts.status == 0);
    CHECK_THAT(facts.output, Catch::Contains("safetensors \"model/kernel\"") &&
                                 Catch::Contains("safetensors \"models\"") && Catch::Contains("npz \"model/kernel\"") &&
                                 Catch::Contains("npz \"model/bias\""));
    CHECK_THAT(facts.output,
               !Catch::Contains("optimizer") && !Catch::Contains("npz \"models\"") && !Catch::Contains("\"step\""));
}

TEST_CASE("export streams: peak memory stays far below a large tensor's size, and large tensors transpose right",
          "[tool]") {
    fs::remove_all("tool_stream");
    fs::create_directories("tool_stream");
    // The 64 MiB checkpoint is made in a child process, so that this process stays small (see tool_peak_kib).
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Column-major, values = row-major index. Sizes are not multiples of the transposition's
        // tiles (512 rows, 1 MiB), so partial tiles are exercised.
        Eigen::MatrixXd pattern_matrix(2050, 4093);  // 64 MiB
        for (Eigen::Index j = 0; j < pattern_matrix.cols(); ++j)
            for (Eigen::Index i = 0; i < pattern_matrix.rows(); ++i)
                pattern_matrix(i, j) = static_cast<double>(i * 4093 + j);
        Eigen::Tensor<float, 3> pattern_cube(600, 3, 1100);  // 7.6 MiB: tiled too, with a middle axis
        for (int i = 0; i < 600; ++i)
            for (int j = 0; j < 3; ++j)
                for (int k = 0; k < 1100; ++k) pattern_cube(i, j, k) = static_cast<float>((i * 3 + j) * 1100 + k);
        Eigen::Tensor<float, 3> pattern_thin(1000, 300, 2);  // 2.3 MiB, a short last axis: written in bands of axis 0
        for (int i = 0; i < 1000; ++i)
            for (int j = 0; j < 300; ++j)
                for (int k = 0; k < 2; ++k) pattern_thin(i, j, k) = static_cast<float>((i * 300 + j) * 2 + k);
        Eigen::Matrix<float, 3, 2> pattern_small;  // column-major, reordered in memory
        pattern_small << 0, 1, 2, 3, 4, 5;
        ckpt::checkpoint ck{ckpt::track("pattern_matrix", pattern_matrix), ckpt::track("pattern_cube", pattern_cube),
                            ckpt::track("pattern_thin", pattern_thin), ckpt::track("pattern_small", pattern_small)};
        ck.write("tool_stream/ckpt");
        ::_exit(0);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);

    const long tensor_kib = 2050L * 4093 * 8 / 1024;
    const auto [npz_status, npz_peak] =
        tool_peak_kib({"export", "tool_stream/ckpt", "--format", "npz", "-o", "tool_stream/out.npz"});
    const auto [st_status, st_peak] =
        tool_peak_kib({"export", "tool_stream/ckpt", "--format", "safetensors", "-o", "tool_stream/out.safetensors"});
    const auto [inspect_status, baseline] = tool_peak_kib({"inspect", "tool_stream/ckpt"});
    CHECK(npz_status == 0);
    CHECK(st_status == 0);
    CHECK(inspect_status == 0);
    INFO("peak KiB: npz " << npz_peak << ", safetensors " << st_peak << ", inspect " << baseline << ", tensor "
                          << tensor_kib);
    // The tool alone (inspect) takes ~5 MiB; under AddressSanitizer 12 to 31 MiB, depending on the
    // machine (its shadow memory and runtime), which is not the export's: there the bound is above
    // the tool's own. Export adds a few MiB.
    const long runtime_kib = ckpt_test::under_address_sanitizer ? baseline : 0;
    CHECK(npz_peak < runtime_kib + tensor_kib / 2);
    CHECK(st_peak < runtime_kib + tensor_kib / 2);
    CHECK(npz_peak < baseline + 8 * 1024);
    CHECK(st_peak < baseline + 8 * 1024);

    const auto facts = python_script("export_facts.py", "tool_stream/out.npz tool_stream/out.safetensors");
    INFO(facts.output);
    CHECK(facts.status == 0);
    for (const char* name : {"pattern_matrix", "pattern_cube", "pattern_thin", "pattern_small"})
        CHECK_THAT(facts.output, Catch::Contains("pattern \"" + std::string(name) + "\" ok"));
    CHECK(std::count(facts.output.begin(), facts.output.end(), '\n') >= 16);  // 8 tensor lines, 8 pattern lines
    CHECK_THAT(facts.output, !Catch::Contains("BAD"));

    // A damaged block fails the export (checksum checked while streaming); nothing is left behind.
    ckpt::reader r("tool_stream/ckpt");
    const auto offset = r.find("pattern_matrix")->offset + 12345;
    std::fstream f("tool_stream/ckpt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put('\x55');
    f.close();
    for (const char* format : {"npz", "safetensors"}) {
        const auto bad =
            tool("export tool_stream/ckpt --format " + std::string(format) + " -o tool_stream/bad." + format);
        CHECK(bad.status == 2);
        CHECK_THAT(bad.output, Catch::Contains("pattern_matrix") && Catch::Contains("checksum mismatch"));
        CHECK_FALSE(fs::exists("tool_stream/bad." + std::string(format)));
    }
    for (const auto& e : fs::directory_iterator("tool_stream"))
        CHECK_THAT(e.path().string(), !Catch::Contains(".ckpt-tmp."));
}

TEST_CASE("ckpt diff compares tensor values in logical order, with tolerances, JSON and a path filter", "[tool]") {
    fs::remove_all("tool_diff");
    Eigen::MatrixXf col = Eigen::MatrixXf::Random(3, 4);
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row = col;
    Eigen::VectorXf other = Eigen::VectorXf::Constant(2, 1.0f);
    std::vector<std::int64_t> ids{1, 2, 3};
    ckpt::checkpoint a{ckpt::track("w", col), ckpt::track("other", other), ckpt::track("ids", ids)};
    const auto fa = a.write("tool_diff/a").string();
    other(1) = 1.001f;
    ckpt::checkpoint b{ckpt::track("w", row), ckpt::track("other", other), ckpt::track("ids", ids)};
    const auto fb = b.write("tool_diff/b").string();
    REQUIRE(ckpt::reader(fa).find("w")->column_major != ckpt::reader(fb).find("w")->column_major);

    const auto plain = tool("diff " + fa + " " + fb);
    CHECK(plain.status == 1);
    CHECK_THAT(plain.output, !Catch::Contains("~ w") && Catch::Contains("~ other: 1 of 2 elements differ"));
    CHECK(tool("diff " + fa + " " + fb + " --exclude other").status == 0);
    CHECK_THAT(tool("diff " + fa + " " + fb + " --only w").output, Catch::Contains("identical: 1 entries"));
    const auto within = tool("diff " + fa + " " + fb + " --atol 0.01");
    CHECK(within.status == 0);
    CHECK(within.output == "equal within atol 0.01, rtol 0: 3 entries\n");
    CHECK(tool("diff " + fa + " " + fb + " --rtol 0.01").status == 0);
    CHECK(tool("diff " + fa + " " + fb + " --rtol 0.0001").status == 1);
    const auto json = tool("diff " + fa + " " + fb + " --json --only other --only ids");
    CHECK(json.status == 1);
    CHECK_THAT(
        json.output,
        Catch::StartsWith("{\"a\":\"" + fa + "\",\"b\":\"" + fb +
                          "\",\"atol\":0,\"rtol\":0,\"compared\":2,\"equal\":false,"
                          "\"differences\":[{\"path\":\"other\",\"change\":\"values\",\"elements\":2,\"differing\":1,"
                          "\"max_abs_diff\":"));
    CHECK(tool("diff " + fa + " " + fa + " --json").output ==
          "{\"a\":\"" + fa + "\",\"b\":\"" + fa +
              "\",\"atol\":0,\"rtol\":0,\"compared\":3,\"equal\":true,\"differences\":[]}\n");
    CHECK(tool("diff " + fa + " " + fb + " --atol -1").status == 2);
}

TEST_CASE("the tool is built on the public API alone", "[tool]") {
    // docs/architecture.md promises it: what the tool needs, users writing their own tools need too.
    for (const auto& entry : std::filesystem::directory_iterator(std::string(CKPT_SOURCE_DIR) + "/tools/ckpt")) {
        std::ifstream in(entry.path());
        const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        INFO(entry.path().string());
        CHECK(text.find("ckpt::detail") == std::string::npos);
        CHECK(text.find("<ckpt/detail") == std::string::npos);
        CHECK(text.find("<ckpt/format") == std::string::npos);
        CHECK(text.find("<ckpt/io") == std::string::npos);
    }
}

TEST_CASE("export checks each chunk as it streams it: damage found mid-block publishes nothing", "[tool]") {
    fs::remove_all("tool_once");
    fs::create_directories("tool_once");
    // Row-major and over three 1 MiB chunks: streamed as stored, each chunk checked as it is read.
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rows(1000, 800);
    for (Eigen::Index i = 0; i < rows.size(); ++i) rows.data()[i] = static_cast<float>(i);
    ckpt::checkpoint ck{ckpt::track("rows", rows)};
    ck.write("tool_once/ckpt");
    REQUIRE(tool("export tool_once/ckpt --format npz -o tool_once/good.npz").status == 0);

    // Damage in the last chunk: found after the first chunks were streamed, and still nothing is published.
    const auto offset = ckpt::reader("tool_once/ckpt").find("rows")->offset + 3 * (1 << 20) - 100;
    std::fstream f("tool_once/ckpt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put('\x55');
    f.close();
    for (const char* format : {"npz", "safetensors"}) {
        const auto bad = tool("export tool_once/ckpt --format " + std::string(format) + " -o tool_once/bad." + format);
        CHECK(bad.status == 2);
        CHECK_THAT(bad.output, Catch::Contains("rows") && Catch::Contains("checksum mismatch"));
        CHECK_FALSE(fs::exists("tool_once/bad." + std::string(format)));
    }
    for (const auto& e : fs::directory_iterator("tool_once"))
        CHECK_THAT(e.path().string(), !Catch::Contains(".ckpt-tmp."));
}
