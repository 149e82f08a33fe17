// Writing safetensors from tracked objects (ck.write(p, ckpt::as_safetensors, names)) and importing
// foreign files into ckpt files (ckpt::import_file): round trips for every dtype safetensors has, rank 0
// to 4 and empty tensors; the layout checked by Python against the published format; atomic writes.

#include <ckpt/foreign.hpp>

#include <unsupported/Eigen/CXX11/Tensor>

#include <catch2/catch.hpp>

#include "support/foreign.hpp"

#include <chrono>
#include <complex>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {
template <class T>
struct all_ranks {
    T r0{};
    Eigen::Matrix<T, Eigen::Dynamic, 1> r1;
    Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> r2;
    Eigen::Tensor<T, 3> r3;
    Eigen::Tensor<T, 4> r4;
    Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> empty;
};

template <class T>
T value(std::mt19937& rng) {
    if constexpr (std::is_same_v<T, bool>)
        return rng() % 2 == 1;
    else if constexpr (std::is_same_v<T, std::complex<float>>)
        return {static_cast<float>(rng() % 1000), static_cast<float>(rng() % 1000)};
    else
        return static_cast<T>(static_cast<float>(rng() % 100));
}

template <class T>
all_ranks<T> random_ranks() {
    std::mt19937 rng(7);
    all_ranks<T> a;
    a.r0 = value<T>(rng);
    a.r1.resize(5);
    a.r2.resize(3, 4);
    a.r3.resize(2, 3, 4);
    a.r4.resize(2, 1, 3, 2);
    a.empty.resize(0, 3);
    for (Eigen::Index i = 0; i < a.r1.size(); ++i) a.r1(i) = value<T>(rng);
    for (Eigen::Index i = 0; i < a.r2.size(); ++i) a.r2(i) = value<T>(rng);
    for (Eigen::Index i = 0; i < a.r3.size(); ++i) a.r3.data()[i] = value<T>(rng);
    for (Eigen::Index i = 0; i < a.r4.size(); ++i) a.r4.data()[i] = value<T>(rng);
    return a;
}

template <class T>
bool same(const all_ranks<T>& a, const all_ranks<T>& b) {
    const auto tensors_equal = [](const auto& x, const auto& y) {
        return x.dimensions() == y.dimensions() && std::equal(x.data(), x.data() + x.size(), y.data());
    };
    return a.r0 == b.r0 && a.r1 == b.r1 && a.r2 == b.r2 && tensors_equal(a.r3, b.r3) && tensors_equal(a.r4, b.r4) &&
           a.empty.rows() == b.empty.rows() && a.empty.cols() == b.empty.cols();
}

std::string contents(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}
}  // namespace

TEMPLATE_TEST_CASE("write as safetensors, restore: every dtype, rank 0 to 4, empty tensors", "[foreign]", bool,
                   std::int8_t, std::int16_t, std::int32_t, std::int64_t, std::uint8_t, std::uint16_t, std::uint32_t,
                   std::uint64_t, Eigen::half, Eigen::bfloat16, float, double, std::complex<float>) {
    auto saved = random_ranks<TestType>();
    ckpt::checkpoint out{ckpt::track("t", saved)};
    // A file per type: ctest runs the types' cases at once.
    const std::string file = std::string("all_") + ckpt::dtype_name(ckpt::dtype_of<TestType>()) + ".safetensors";
    out.write(file, ckpt::as_safetensors, ckpt::name_map{});

    const ckpt::foreign_file f(file);
    CHECK(f.format() == "safetensors");
    REQUIRE(f.tensors().size() == 6);
    CHECK(f.find("t.2")->shape == ckpt::shape{3, 4});
    CHECK(f.find("t.4")->shape == ckpt::shape{2, 1, 3, 2});
    CHECK(f.find("t.0")->dtype == ckpt::dtype_of<TestType>());

    all_ranks<TestType> restored;
    ckpt::checkpoint in{ckpt::track("t", restored)};
    in.restore(file, ckpt::strict, ckpt::name_map{}).assert_consumed();
    CHECK(same(saved, restored));
}

TEST_CASE("the written file follows the published format, checked by Python", "[foreign]") {
    struct layer {
        Eigen::MatrixXf weight;
        Eigen::VectorXd bias;
        Eigen::Matrix<Eigen::half, Eigen::Dynamic, Eigen::Dynamic> scale;
        std::int64_t step = 5;
    } l{Eigen::MatrixXf(3, 4), Eigen::VectorXd::LinSpaced(3, 0, 2), {}, 5};
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 4; ++c) l.weight(r, c) = static_cast<float>(10 * r + c);
    l.scale = Eigen::Matrix<Eigen::half, Eigen::Dynamic, Eigen::Dynamic>::Constant(1, 3, Eigen::half(0.5f));
    ckpt::checkpoint ck{ckpt::track("layer", l)};
    ck.write("layout.safetensors", ckpt::as_safetensors,
             ckpt::name_map{}
                 .rename("layer/0", "w")
                 .rename("layer/1", "b")
                 .rename("layer/2", "s")
                 .rename("layer/3", "step"));
    ckpt_test::numpy(R"(
import json, struct
raw = open('layout.safetensors', 'rb').read()
n, = struct.unpack('<Q', raw[:8])
assert n % 8 == 0, n
header = raw[8:8 + n].decode()
assert header == header.rstrip() + ' ' * (len(header) - len(header.rstrip())), 'padded with spaces'
meta = json.loads(header)
assert meta.pop('__metadata__') == {'format': 'pt'}
data = raw[8 + n:]
kinds = {'F32': 'f4', 'F64': 'f8', 'F16': 'f2', 'I64': 'i8'}
ends = []
for name, t in meta.items():
    b, e = t['data_offsets']
    size = np.dtype(kinds[t['dtype']]).itemsize
    assert b % size == 0, (name, b)
    ends.append((b, e))
    meta[name] = np.frombuffer(data[b:e], dtype=kinds[t['dtype']]).reshape(t['shape'])
ends.sort()
assert ends[0][0] == 0 and ends[-1][1] == len(data), ends
assert all(a[1] == b[0] for a, b in zip(ends, ends[1:])), ends
assert meta['w'].shape == (3, 4) and meta['w'][2, 1] == 21, meta['w']
assert list(meta['b']) == [0, 1, 2]
assert meta['s'].shape == (1, 3) and meta['s'][0, 2] == 0.5
assert meta['step'].shape == () and meta['step'] == 5
)");
}

TEST_CASE("a kernel renamed with ckpt::transposed is written as [out, in]", "[foreign]") {
    Eigen::MatrixXf kernel(4, 3);  // [in, out]
    for (int i = 0; i < 4; ++i)
        for (int o = 0; o < 3; ++o) kernel(i, o) = static_cast<float>(10 * o + i);
    ckpt::checkpoint ck{ckpt::track("kernel", kernel)};
    ckpt::name_map names;
    names.rename("kernel", "lm_head.weight", ckpt::transposed);
    ck.write("t.safetensors", ckpt::as_safetensors, names);
    const ckpt::foreign_file f("t.safetensors");
    const auto* w = f.find("lm_head.weight");
    REQUIRE(w);
    CHECK(w->shape == ckpt::shape{3, 4});
    std::vector<float> rows(12);
    f.read(*w, rows.data());
    CHECK(rows[4 * 2 + 1] == 21.0f);  // [o=2, i=1]

    Eigen::MatrixXf back;
    ckpt::checkpoint again{ckpt::track("kernel", back)};
    again.restore("t.safetensors", ckpt::strict, names).assert_consumed();
    CHECK(back == kernel);
}

TEST_CASE("safetensors -> tracked objects -> safetensors gives the same bytes", "[foreign]") {
    Eigen::MatrixXf a = Eigen::MatrixXf::Random(5, 7);
    Eigen::VectorXd b = Eigen::VectorXd::Random(3);
    ckpt::checkpoint first{ckpt::track("a", a), ckpt::track("b", b)};
    first.write("one.safetensors", ckpt::as_safetensors, ckpt::name_map{});
    Eigen::MatrixXf a2;
    Eigen::VectorXd b2;
    ckpt::checkpoint second{ckpt::track("a", a2), ckpt::track("b", b2)};
    second.restore("one.safetensors", ckpt::strict, ckpt::name_map{}).assert_consumed();
    second.write("two.safetensors", ckpt::as_safetensors, ckpt::name_map{});
    CHECK(contents("one.safetensors") == contents("two.safetensors"));
}

TEST_CASE("a write that fails leaves no file and no temporary", "[foreign]") {
    fs::remove_all("failing");
    fs::create_directories("failing");
    Eigen::VectorXcd unsupported = Eigen::VectorXcd::Zero(2);  // complex128: safetensors has no such dtype
    Eigen::VectorXf fine = Eigen::VectorXf::Zero(2);
    ckpt::checkpoint ck{ckpt::track("fine", fine), ckpt::track("c", unsupported)};
    CHECK_THROWS_AS(ck.write("failing/x.safetensors", ckpt::as_safetensors, ckpt::name_map{}), ckpt::error);
    ckpt::checkpoint twice{ckpt::track("a", fine), ckpt::track("b", fine)};
    CHECK_THROWS_AS(twice.write("failing/y.safetensors", ckpt::as_safetensors,
                                ckpt::name_map{}.rename("a", "same").rename("b", "same")),
                    ckpt::error);
    CHECK_THROWS_AS(
        twice.write("failing/z.safetensors", ckpt::as_safetensors, ckpt::name_map{}.rename("a", "__metadata__")),
        ckpt::error);
    // A map key that is not UTF-8 cannot be a safetensors name: ckpt's error, naming the entry
    // (it was nlohmann's type_error from the JSON serializer).
    std::map<std::string, Eigen::VectorXf> keyed{{"caf\xe9", fine}};
    ckpt::checkpoint latin1{ckpt::track("keyed", keyed)};
    try {
        latin1.write("failing/w.safetensors", ckpt::as_safetensors, ckpt::name_map{});
        FAIL("a name that is not UTF-8 was written");
    } catch (const ckpt::error& e) {
        CHECK(e.file() == "failing/w.safetensors");
        CHECK(e.entry() == "keyed/caf\xe9");
        CHECK_THAT(e.what(), Catch::Contains("not UTF-8"));
    }
    CHECK(fs::is_empty("failing"));
}

TEST_CASE("import_file streams a ckpt file of every tensor, '.' becoming '/', checksums made on the way", "[foreign]") {
    ckpt_test::numpy(
        "np.savez_compressed('sd.npz', **{'fc1.weight': np.arange(12, dtype='f4').reshape(3, 4),"
        " 'fc1.bias': np.arange(3, dtype='f4'),"
        " 'fc2.weight': np.asfortranarray(np.arange(6, dtype='f8').reshape(2, 3)),"
        " 'big': np.arange(600 * 700, dtype='f4').reshape(600, 700)})");  // more than one 1 MiB chunk
    ckpt::import_file("sd.npz", "sd.ckpt");
    struct linear {
        Eigen::MatrixXf weight;
        Eigen::VectorXf bias;
    } fc1;
    Eigen::MatrixXd fc2_weight;
    ckpt::checkpoint ck{ckpt::track("fc1", fc1), ckpt::track("fc2/weight", fc2_weight)};
    // The struct's fields are named by position: weight is fc1/0.
    ckpt::import_file("sd.npz", "sd2.ckpt", ckpt::name_map{}.rename("fc1/0", "fc1.weight").rename("fc1/1", "fc1.bias"));
    ck.restore("sd2.ckpt").assert_existing_objects_matched();
    CHECK(fc1.weight(2, 3) == 11.0f);
    CHECK(fc1.bias(2) == 2.0f);
    CHECK(fc2_weight(1, 2) == 5.0);
    ckpt::reader r("sd.ckpt");
    r.verify();  // every checksum, the chunked one of "big" too
    const auto big = r.read<Eigen::MatrixXf>("big");
    CHECK(big(599, 699) == 600.0f * 700.0f - 1.0f);
    CHECK(big(1, 0) == 700.0f);
}

TEST_CASE("a block written in pieces (what import_file streams) is the block written whole", "[foreign]") {
    std::vector<char> bytes(std::size_t{3} << 20 | 17);  // three chunks and a bit
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 31 % 251);
    const auto when = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
    for (const std::size_t size : {std::size_t{0}, std::size_t{1000}, bytes.size()}) {
        INFO(size);
        {
            ckpt::detail::file_writer whole("whole.ckpt");
            whole.block("t", ckpt::entry_kind::tensor, ckpt::dtype::uint8, ckpt::shape{size}, false, bytes.data(),
                        size);
            whole.finish({}, 0, when);
        }
        {
            ckpt::detail::file_writer pieces("pieces.ckpt");
            pieces.begin_block("t", ckpt::entry_kind::tensor, ckpt::dtype::uint8, ckpt::shape{size}, false, size);
            for (std::size_t at = 0; at < size; at += 4099)
                pieces.block_bytes(bytes.data() + at, std::min<std::size_t>(4099, size - at));
            CHECK_THROWS_AS(pieces.block_bytes(bytes.data(), 1), ckpt::error);  // one byte too many
            pieces.end_block();
            pieces.finish({}, 0, when);
        }
        CHECK(contents("whole.ckpt") == contents("pieces.ckpt"));
    }
}
