// The `ckpt` command-line tool on real checkpoints: ls, inspect (text and JSON), verify, diff, and
// export, whose .npz and safetensors files python3 and numpy read back value by value.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include <complex>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <sys/wait.h>

namespace fs = std::filesystem;

namespace {

struct result {
    int status;
    std::string output;  // stdout and stderr
};

result tool(const std::string& args) {
    const std::string command = std::string(CKPT_TOOL) + " " + args + " 2>&1";
    std::FILE* p = ::popen(command.c_str(), "r");
    REQUIRE(p);
    result r{0, {}};
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
    const int status = ::pclose(p);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

std::string python() { return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

struct tensors {
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
    ckpt::checkpoint ck{ckpt::track("col_major", t.col_major), ckpt::track("row_major", t.row_major), ckpt::track("cube", t.cube),
                        ckpt::track("counts", t.counts),       ckpt::track("mask", t.mask),           ckpt::track("halves", t.halves),
                        ckpt::track("phases", t.phases),       ckpt::track("note", t.note),           ckpt::track("step", t.step)};
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
                                   Catch::Contains("cube") && Catch::Contains("[2,3,4]") && Catch::Contains("serialized"));
    const auto json = tool("inspect --json " + first.string());
    CHECK(json.status == 0);
    CHECK_THAT(json.output, Catch::Contains("\"path\":\"counts\",\"kind\":\"tensor\",\"dtype\":\"int64\",\"shape\":[4]"));

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
    CHECK_THAT(ls.output, Catch::Contains("2 checkpoints") && Catch::Contains("ckpt-3") && Catch::Contains("loss=0.333333") &&
                              Catch::Contains("[latest]"));
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
    CHECK_THAT(st.output, Catch::Contains("skipped phases"));  // complex: no safetensors dtype

    const std::string check = python() + " " + CKPT_SOURCE_DIR + "/tests/python/check_export.py tool_export/expected.txt " +
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
    CHECK_THAT(output, Catch::Contains("checked 15 tensors, 0 failures"));
}

TEST_CASE("the tool refuses bad input with a one-line error and a non-zero status", "[tool]") {
    fs::remove_all("tool_bad");
    fs::create_directories("tool_bad");
    std::ofstream("tool_bad/garbage") << std::string(500, 'g');
    for (const auto& args : {std::string("inspect tool_bad/missing"), std::string("inspect tool_bad/garbage"), std::string("verify tool_bad/garbage"),
                             std::string("inspect tool_bad"), std::string("ls tool_bad/garbage"), std::string("diff tool_bad/garbage tool_bad/garbage"),
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
    CHECK_THAT(v.output, Catch::Contains("tool_bad/ckpt") && Catch::Contains("cube") && Catch::Contains("checksum mismatch"));
}
