// `ckpt import` (safetensors, an HF-sharded model, npz into a ckpt file) and the way back,
// `ckpt export --names dotted`: files written by numpy and by tests/python/write_safetensors.py
// (the published safetensors format), imported, checked byte for byte, and taken around both round
// trips, safetensors -> ckpt -> safetensors and ckpt -> safetensors -> ckpt.

#include <ckpt/ckpt.hpp>
#include <ckpt/foreign.hpp>

#include <unsupported/Eigen/CXX11/Tensor>

#include <catch2/catch.hpp>

#include "support/sanitizers.hpp"
#include "support/tool.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

using ckpt_test::python_script;
using ckpt_test::tool;
using ckpt_test::tool_peak_kib;

// The tensors of tests/python/foreign_fixtures.py, by their entry paths after import.
struct fixture {
    std::string path;
    ckpt::dtype dtype;
    ckpt::shape shape;
};
const std::vector<fixture>& fixtures() {
    using ckpt::dtype;
    static const std::vector<fixture> all{{"layers/0/weight", dtype::float32, {4, 3}},
                                          {"layers/0/bias", dtype::float32, {4}},
                                          {"layers/1/weight", dtype::float64, {2, 3, 4}},
                                          {"layers/1/scale", dtype::float16, {5}},
                                          {"layers/1/gate", dtype::bfloat16, {3, 2}},
                                          {"embed/table", dtype::float32, {2, 1, 3, 2}},
                                          {"counts/i8", dtype::int8, {7}},
                                          {"counts/i16", dtype::int16, {2, 2}},
                                          {"counts/i32", dtype::int32, {3}},
                                          {"counts/i64", dtype::int64, {}},
                                          {"counts/u8", dtype::uint8, {6}},
                                          {"counts/u16", dtype::uint16, {2}},
                                          {"counts/u32", dtype::uint32, {1, 2}},
                                          {"counts/u64", dtype::uint64, {3}},
                                          {"mask", dtype::boolean, {2, 3}},
                                          {"step", dtype::int64, {}},
                                          {"empty/rows", dtype::float32, {0, 3}},
                                          {"empty/vector", dtype::int32, {0}}};
    return all;
}

template <class T>
void append(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// A fixture's bytes in C order: element i is (i % 17) * 0.25 - 2 (floating), (i % 17) - 8 (signed),
// i % 17 (unsigned), i % 3 == 0 (bool), as foreign_fixtures.py writes them.
std::string expected_bytes(const fixture& f) {
    std::string out;
    for (std::uint64_t i = 0; i < f.shape.elements(); ++i) {
        const double x = static_cast<double>(i % 17) * 0.25 - 2;
        const auto s = static_cast<std::int64_t>(i % 17) - 8;
        const auto u = i % 17;
        switch (f.dtype) {
            case ckpt::dtype::float16:
                append(out, Eigen::half(static_cast<float>(x)));
                break;
            case ckpt::dtype::bfloat16:
                append(out, Eigen::bfloat16(static_cast<float>(x)));
                break;
            case ckpt::dtype::float32:
                append(out, static_cast<float>(x));
                break;
            case ckpt::dtype::float64:
                append(out, x);
                break;
            case ckpt::dtype::int8:
                append(out, static_cast<std::int8_t>(s));
                break;
            case ckpt::dtype::int16:
                append(out, static_cast<std::int16_t>(s));
                break;
            case ckpt::dtype::int32:
                append(out, static_cast<std::int32_t>(s));
                break;
            case ckpt::dtype::int64:
                append(out, s);
                break;
            case ckpt::dtype::uint8:
                append(out, static_cast<std::uint8_t>(u));
                break;
            case ckpt::dtype::uint16:
                append(out, static_cast<std::uint16_t>(u));
                break;
            case ckpt::dtype::uint32:
                append(out, static_cast<std::uint32_t>(u));
                break;
            case ckpt::dtype::uint64:
                append(out, u);
                break;
            case ckpt::dtype::boolean:
                append(out, static_cast<bool>(i % 3 == 0));
                break;
            default:
                FAIL("no such fixture dtype");
        }
    }
    return out;
}

void make_fixtures(const fs::path& dir) {
    fs::remove_all(dir);
    const auto made = python_script("foreign_fixtures.py", dir.string());
    INFO(made.output);
    REQUIRE(made.status == 0);  // python3 with numpy is installed by scripts/install-deps.sh
}

// Every fixture (but those `skip` names) in the ckpt file, row-major, with its dtype, shape and bytes.
void check_imported(const fs::path& file, const std::vector<std::string>& skip = {}) {
    ckpt::reader r(file);
    std::size_t checked = 0;
    for (const auto& f : fixtures()) {
        if (std::find(skip.begin(), skip.end(), f.path) != skip.end()) continue;
        INFO(file.string() << ": " << f.path);
        const ckpt::entry_info* e = r.find(f.path);
        REQUIRE(e);
        CHECK(e->kind == ckpt::entry_kind::tensor);
        CHECK(e->dtype == f.dtype);
        CHECK(e->shape == f.shape);
        CHECK_FALSE(e->column_major);
        CHECK(r.read_bytes(*e) == expected_bytes(f));
        ++checked;
    }
    CHECK(r.entries().size() == checked);
    r.verify();  // every checksum, computed while copying, matches the bytes
}

}  // namespace

TEST_CASE("ckpt import reads safetensors, an HF-sharded model, npz and npy; '.' in a name becomes '/'",
          "[tool][import]") {
    make_fixtures("import_formats");
    for (const char* source : {"all.safetensors", "sharded", "sharded/model.safetensors.index.json"}) {
        INFO(source);
        const auto imported = tool("import import_formats/" + std::string(source) + " -o import_formats/out.ckpt");
        INFO(imported.output);
        REQUIRE(imported.status == 0);
        check_imported("import_formats/out.ckpt");
    }
    // numpy has no bfloat16: the npz files hold every other fixture.
    for (const char* source : {"weights.npz", "weights_compressed.npz"}) {
        INFO(source);
        const auto imported = tool("import import_formats/" + std::string(source) + " -o import_formats/out.ckpt");
        INFO(imported.output);
        REQUIRE(imported.status == 0);
        check_imported("import_formats/out.ckpt", {"layers/1/gate"});
    }
    // A plain .npy: one tensor, named by the file's stem.
    const auto npy = tool("import import_formats/single.npy -o import_formats/single.ckpt");
    INFO(npy.output);
    REQUIRE(npy.status == 0);
    ckpt::reader single("import_formats/single.ckpt");
    REQUIRE(single.entries().size() == 1);
    CHECK(single.entries()[0].path == "single");
    CHECK(single.read_bytes(single.entries()[0]) == expected_bytes(fixtures()[0]));  // layers.0.weight
    // Fortran order: the same logical tensors, whatever order the blocks keep.
    REQUIRE(tool("import import_formats/weights.npz -o import_formats/c.ckpt").status == 0);
    for (const char* source : {"weights_fortran.npz", "weights_fortran_compressed.npz"}) {
        INFO(source);
        const auto imported = tool("import import_formats/" + std::string(source) + " -o import_formats/f.ckpt");
        INFO(imported.output);
        REQUIRE(imported.status == 0);
        const auto same = tool("diff import_formats/c.ckpt import_formats/f.ckpt");
        INFO(same.output);
        CHECK(same.status == 0);
        CHECK(tool("verify import_formats/f.ckpt").status == 0);
    }
}

TEST_CASE("ckpt import --rename replaces a name's prefix before the rest becomes a path", "[tool][import]") {
    make_fixtures("import_rename");
    const auto imported = tool(
        "import import_rename/all.safetensors -o import_rename/out.ckpt --rename layers.=net/ "
        "--rename embed.table=embedding");
    INFO(imported.output);
    REQUIRE(imported.status == 0);
    ckpt::reader r("import_rename/out.ckpt");
    CHECK(r.contains("net/0/weight"));
    CHECK(r.contains("net/1/gate"));
    CHECK(r.contains("embedding"));
    CHECK(r.contains("counts/i8"));
    CHECK_FALSE(r.contains("layers/0/weight"));
    CHECK(r.entries().size() == fixtures().size());
}

TEST_CASE("safetensors -> ckpt -> safetensors keeps every name, dtype, shape and byte", "[tool][import]") {
    make_fixtures("import_back");
    REQUIRE(tool("import import_back/all.safetensors -o import_back/all.ckpt").status == 0);
    const auto exported =
        tool("export import_back/all.ckpt --format safetensors --names dotted -o import_back/back.safetensors");
    INFO(exported.output);
    REQUIRE(exported.status == 0);
    const auto same =
        python_script("compare_safetensors.py", "import_back/all.safetensors import_back/back.safetensors");
    INFO(same.output);
    CHECK(same.status == 0);
    CHECK_THAT(same.output, Catch::Contains("same 18 tensors"));
    // transformers' from_pretrained refuses a safetensors file whose __metadata__ lacks "format".
    const auto facts = python_script("export_facts.py", "import_back/back.safetensors");
    INFO(facts.output);
    CHECK_THAT(facts.output, Catch::Contains("metadata \"format\" \"pt\""));
}

namespace {

struct layer {
    Eigen::MatrixXf weight = Eigen::MatrixXf::Random(5, 3);  // column-major
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = Eigen::MatrixXd::Random(2, 4);
    Eigen::VectorXf bias = Eigen::VectorXf::Random(5);
};
CKPT_FIELDS(layer, weight, row_major, bias)

struct state {
    layer encoder, decoder;
    Eigen::Tensor<float, 4> cube{2, 3, 1, 4};
    Eigen::Matrix<Eigen::half, 2, 3> halves = Eigen::Matrix<float, 2, 3>::Random().cast<Eigen::half>();
    Eigen::Matrix<Eigen::bfloat16, 3, 1> brain = Eigen::Matrix<float, 3, 1>::Random().cast<Eigen::bfloat16>();
    std::vector<std::int32_t> counts{1, -2, 3};
    std::array<std::uint16_t, 2> small{7, 65535};
    Eigen::Matrix<bool, 2, 2> mask;
    Eigen::MatrixXf empty = Eigen::MatrixXf(0, 3);
    std::int64_t step = 42;
    state() {
        cube.setRandom();
        mask << true, false, false, true;
    }
};
CKPT_FIELDS(state, encoder, decoder, cube, halves, brain, counts, small, mask, empty, step)

}  // namespace

TEST_CASE("ckpt -> safetensors -> ckpt restores the same state, tensor by tensor", "[tool][import]") {
    fs::remove_all("import_round");
    fs::create_directories("import_round");
    state saved;
    ckpt::checkpoint{ckpt::track("model", saved)}.write("import_round/first.ckpt");
    const auto exported =
        tool("export import_round/first.ckpt --format safetensors --names dotted -o import_round/model.safetensors");
    INFO(exported.output);
    REQUIRE(exported.status == 0);
    const auto imported = tool("import import_round/model.safetensors -o import_round/second.ckpt");
    INFO(imported.output);
    REQUIRE(imported.status == 0);

    // The same entries, dtypes, shapes and values (column-major blocks come back row-major).
    const auto same = tool("diff import_round/first.ckpt import_round/second.ckpt");
    INFO(same.output);
    CHECK(same.status == 0);
    ckpt::reader first("import_round/first.ckpt"), second("import_round/second.ckpt");
    REQUIRE(first.entries().size() == second.entries().size());
    for (const auto& e : first.entries()) {
        const auto* back = second.find(e.path);
        REQUIRE(back);
        CHECK(back->dtype == e.dtype);
        CHECK(back->shape == e.shape);
    }
    // The library's writer (ck.write as_safetensors, the default name map) writes the same tensors,
    // laid out alike.
    ckpt::checkpoint{ckpt::track("model", saved)}.write("import_round/library.safetensors", ckpt::as_safetensors,
                                                        ckpt::name_map{});
    const auto agree = python_script("compare_safetensors.py",
                                     "--layout import_round/model.safetensors import_round/library.safetensors");
    INFO(agree.output);
    CHECK(agree.status == 0);
    // And strictly restorable into the structs it came from.
    state restored;
    restored.encoder.weight.setZero();
    restored.step = 0;
    ckpt::checkpoint{ckpt::track("model", restored)}.restore("import_round/second.ckpt", ckpt::strict);
    CHECK(restored.encoder.weight == saved.encoder.weight);
    CHECK(restored.decoder.row_major == saved.decoder.row_major);
    CHECK(restored.halves == saved.halves);
    CHECK(restored.counts == saved.counts);
    CHECK(restored.small == saved.small);
    CHECK(restored.mask == saved.mask);
    CHECK(restored.step == 42);
    const Eigen::Tensor<bool, 0> cube_equal = (restored.cube == saved.cube).all();
    CHECK(cube_equal());
}

TEST_CASE("export --names dotted refuses a path segment holding '.', which would not come back", "[tool][import]") {
    fs::remove_all("import_dot");
    fs::create_directories("import_dot");
    std::map<std::string, Eigen::VectorXf> versions{{"v1.2", Eigen::VectorXf::Ones(2)}};
    ckpt::checkpoint{ckpt::track("versions", versions)}.write("import_dot/ckpt");
    const auto refused =
        tool("export import_dot/ckpt --format safetensors --names dotted -o import_dot/out.safetensors");
    CHECK(refused.status == 2);
    CHECK_THAT(refused.output, Catch::Contains("versions/v1.2") && Catch::Contains("--names paths"));
    CHECK_FALSE(fs::exists("import_dot/out.safetensors"));
    CHECK(tool("export import_dot/ckpt --format safetensors -o import_dot/out.safetensors").status == 0);
}

TEST_CASE("ckpt import streams: peak memory stays a few MiB for a 200 MiB tensor", "[tool][import]") {
    fs::remove_all("import_stream");
    fs::create_directories("import_stream");
    // One I32 tensor [200 Mi / 4 / 1024, 1024], element i = i, written a MiB at a time.
    const std::uint64_t rows = 200 * 256, cols = 1024, bytes = rows * cols * 4;
    std::string header = "{\"big.weight\":{\"dtype\":\"I32\",\"shape\":[" + std::to_string(rows) + "," +
                         std::to_string(cols) + "],\"data_offsets\":[0," + std::to_string(bytes) + "]}}";
    header.append((8 - header.size() % 8) % 8, ' ');
    {
        std::ofstream out("import_stream/big.safetensors", std::ios::binary);
        const std::uint64_t length = header.size();
        out.write(reinterpret_cast<const char*>(&length), 8);
        out << header;
        std::vector<std::int32_t> block(1 << 18);
        for (std::uint64_t first = 0; first < rows * cols; first += block.size()) {
            for (std::size_t k = 0; k < block.size(); ++k) block[k] = static_cast<std::int32_t>(first + k);
            out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(block.size() * 4));
        }
        REQUIRE(out.good());
    }
    const auto [status, peak] =
        tool_peak_kib({"import", "import_stream/big.safetensors", "-o", "import_stream/big.ckpt"});
    const auto [inspect_status, baseline] = tool_peak_kib({"inspect", "import_stream/big.ckpt"});
    REQUIRE(status == 0);
    REQUIRE(inspect_status == 0);
    INFO("peak KiB: import " << peak << ", inspect " << baseline << ", tensor " << bytes / 1024);
    // The tool alone (inspect) takes ~5 MiB, 12-23 MiB under AddressSanitizer; import adds a few MiB.
    CHECK(peak < static_cast<long>(bytes / 1024 / (ckpt_test::under_address_sanitizer ? 4 : 8)));
    CHECK(peak < baseline + 8 * 1024);

    ckpt::reader r("import_stream/big.ckpt");
    const auto* e = r.find("big/weight");
    REQUIRE(e);
    CHECK(e->shape == ckpt::shape{rows, cols});
    r.verify(*e);  // the checksums computed while copying match the bytes
    for (std::uint64_t i : {std::uint64_t{0}, std::uint64_t{12345}, rows * cols / 2 + 7, rows * cols - 1}) {
        std::int32_t v = -1;
        r.read_range(*e, i * 4, 4, &v);
        CHECK(v == static_cast<std::int32_t>(i));
    }
}

TEST_CASE("ckpt import refuses bad input with a one-line error naming the file, and writes nothing", "[tool][import]") {
    make_fixtures("import_bad");
    const auto missing = tool("import import_bad/nothing.safetensors -o import_bad/out.ckpt");
    CHECK(missing.status == 2);
    CHECK_THAT(missing.output, Catch::Contains("import_bad/nothing.safetensors"));

    std::ofstream("import_bad/text.safetensors") << "this is not a weights file\n";
    const auto text = tool("import import_bad/text.safetensors -o import_bad/out.ckpt");
    CHECK(text.status == 2);
    CHECK_THAT(text.output, Catch::Contains("import_bad/text.safetensors"));

    // Cut short inside the data: refused before a byte is published.
    fs::copy_file("import_bad/all.safetensors", "import_bad/cut.safetensors");
    fs::resize_file("import_bad/cut.safetensors", fs::file_size("import_bad/all.safetensors") - 10);
    const auto cut = tool("import import_bad/cut.safetensors -o import_bad/out.ckpt");
    CHECK(cut.status == 2);
    CHECK_THAT(cut.output, Catch::Contains("import_bad/cut.safetensors"));

    // A shard of an HF model missing.
    fs::remove("import_bad/sharded/model-00002-of-00003.safetensors");
    const auto shard = tool("import import_bad/sharded -o import_bad/out.ckpt");
    CHECK(shard.status == 2);
    CHECK_THAT(shard.output, Catch::Contains("model-00002-of-00003.safetensors"));

    CHECK_FALSE(fs::exists("import_bad/out.ckpt"));
    for (const auto& e : fs::directory_iterator("import_bad"))
        CHECK_THAT(e.path().string(), !Catch::Contains(".ckpt-tmp."));
}
