// tests/python/read_ckpt.py, the Python reader docs/format.md points to, reads what the library
// writes: the fixtures of both format versions and a fresh file of every entry kind, value by
// value, and it refuses a damaged block naming the entry.

#include <ckpt/ckpt.hpp>

#include <Eigen/SparseCore>
#include <unsupported/Eigen/CXX11/Tensor>

#include <catch2/catch.hpp>

#include "support/tool.hpp"

#include <complex>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

using ckpt_test::result;

result read_ckpt(const std::string& files) { return ckpt_test::python_script("read_ckpt.py", files); }

// As read_ckpt.py prints a number: %.17g.
std::string g17(double v) {
    char b[40];
    std::snprintf(b, sizeof b, "%.17g", v);
    return b;
}

struct layer {
    Eigen::MatrixXf w;
    std::int32_t units = 0;
};
CKPT_FIELDS(layer, w, units)

}  // namespace

TEST_CASE("read_ckpt.py reads the fixtures of both format versions value by value", "[python]") {
    const std::string data = std::string(CKPT_SOURCE_DIR) + "/tests/data/";
    const auto r = read_ckpt(data + "v1/fixture.ckpt " + data + "v2/fixture.ckpt");
    INFO(r.output);
    REQUIRE(r.status == 0);
    // The values of tests/data/README.md, once per file.
    for (const char* line :
         {"fixture.ckpt: version 1, save counter 0, step 4200, 19 entries, every checksum ok\n",
          "fixture.ckpt: version 2, save counter 0, step 4200, 19 entries, every checksum ok\n",
          "metric loss = 0.125\n", "string run = 'fixture'\n",
          "f32: tensor float32 [3, 4] = -1 -0.25 0.5 1.25 -0.75 0 0.75 1.5 -0.5 0.25 1 1.75\n",
          "i64: tensor int64 [5] = -9223372036854775808 -3 0 7 9223372036854775807\n",
          "c128: tensor complex128 [2] = (1.5,-2.5) (-0,1e-300)\n",
          "big: tensor float32 [400000] = 0 0.5 1 1.5 2 2.5 3 3.5 4 4.5 5 5.5 6 6.5 7 7.5 ... (400000 elements)\n",
          "sparse: sparse float64 [4, 5] = (3,0)=8 (0,1)=1.25 (2,4)=-3.5\n",
          "note: serialized bytes [29] = 'format fixture: caf\xc3\xa9'\n",
          "heads: mapping bytes [2] = ['de/at', 'en']\n", "heads/de%2Fat: tensor float32 [2] = -0.5 -0.5\n",
          "rng: text bytes [6371] = 313 numbers\n", "step: tensor int64 [] = 4200\n"})
        CHECK_THAT(r.output, Catch::Contains(line));
}

TEST_CASE("read_ckpt.py reads a file the library writes, every entry kind", "[python]") {
    fs::remove_all("read_ckpt");
    Eigen::MatrixXf col = Eigen::MatrixXf::Random(3, 2);  // column-major
    Eigen::Matrix<double, 2, 3, Eigen::RowMajor> row = Eigen::Matrix<double, 2, 3, Eigen::RowMajor>::Random();
    Eigen::VectorXf large = Eigen::VectorXf::LinSpaced(300000, -1.0f, 1.0f);  // 1.2 MB: two chunks
    Eigen::Matrix<Eigen::bfloat16, 2, 1> brain{Eigen::bfloat16(1.5f), Eigen::bfloat16(-3.0f)};
    std::vector<std::complex<float>> phases{{1.0f, -2.0f}, {0.5f, 0.25f}};
    Eigen::SparseMatrix<double> sparse(3, 3);
    sparse.insert(2, 1) = 0.5;
    std::int64_t step = -7;
    std::string note = "hello";
    std::vector<layer> layers(2);
    layers[1].w = Eigen::MatrixXf::Constant(1, 2, 4.0f);
    layers[1].units = 2;
    std::map<std::string, Eigen::VectorXf> heads{{"en", Eigen::VectorXf::Constant(2, 0.25f)}};
    std::mt19937 rng(5);
    ckpt::checkpoint ck{ckpt::track("col", col),     ckpt::track("row", row),       ckpt::track("large", large),
                        ckpt::track("brain", brain), ckpt::track("phases", phases), ckpt::track("sparse", sparse),
                        ckpt::track("step", step),   ckpt::track("note", note),     ckpt::track("layers", layers),
                        ckpt::track("heads", heads), ckpt::track("rng", rng)};
    ckpt::save_options o;
    o.step = 31;
    o.metrics["loss"] = 0.1;
    o.strings["git"] = "1a2b3c";
    const auto file = ck.save("read_ckpt/ckpt", o);

    const auto r = read_ckpt(file.string());
    INFO(r.output);
    REQUIRE(r.status == 0);
    const ckpt::reader reader(file);
    const std::size_t entries = reader.entries().size();
    CHECK_THAT(r.output, Catch::Contains(file.string() + ": version 2, save counter 1, step 31, " +
                                         std::to_string(entries) + " entries, every checksum ok\n"));
    CHECK_THAT(r.output,
               Catch::Contains("metric loss = 0.10000000000000001\n") && Catch::Contains("string git = '1a2b3c'\n"));
    // Values in C (row-major) order, whatever order the file stores them in.
    std::string c = "col: tensor float32 [3, 2] =";
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 2; ++j) c += " " + g17(col(i, j));
    CHECK_THAT(r.output, Catch::Contains(c + "\n"));
    std::string w = "row: tensor float64 [2, 3] =";
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j) w += " " + g17(row(i, j));
    CHECK_THAT(r.output, Catch::Contains(w + "\n"));
    std::string l = "large: tensor float32 [300000] =";
    for (int i = 0; i < 16; ++i) l += " " + g17(large(i));
    CHECK_THAT(r.output, Catch::Contains(l + " ... (300000 elements)\n"));
    for (const char* line :
         {"brain: tensor bfloat16 [2] = 1.5 -3\n", "phases: tensor complex64 [2] = (1,-2) (0.5,0.25)\n",
          "sparse: sparse float64 [3, 3] = (2,1)=0.5\n", "step: tensor int64 [] = -7\n",
          "note: serialized bytes [13] = 'hello'\n", "layers: sequence bytes [2] = 2\n",
          "layers/1/w: tensor float32 [1, 2] = 4 4\n", "layers/1/units: tensor int32 [] = 2\n",
          "heads: mapping bytes [1] = ['en']\n", "heads/en: tensor float32 [2] = 0.25 0.25\n", "rng: text bytes ["})
        CHECK_THAT(r.output, Catch::Contains(line));
    CHECK_THAT(r.output, Catch::Contains("] = 625 numbers\n"));  // mt19937: 624 words and a position

    // A damaged chunk of the large block: refused, naming the file, the entry and the chunk.
    const auto offset = reader.find("large")->offset;
    {
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(offset + (1u << 20) + 5));  // in chunk 1
        f.put('\x7f');
    }
    const auto bad = read_ckpt(file.string());
    CHECK(bad.status == 1);
    CHECK_THAT(bad.output, Catch::Contains(file.string() + ": entry 'large': checksum mismatch in chunk 1"));
}
