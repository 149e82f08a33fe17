// Reading foreign files: npz as np.savez and np.savez_compressed write it (every dtype, rank 0 to 4,
// empty tensors, Fortran order, zip64 records), plain .npy files, and reading in chunks.

#include <ckpt/foreign.hpp>

#include <catch2/catch.hpp>

#include "support/foreign.hpp"

#include <complex>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

// The bytes numpy holds for `n` elements i % 100 (i % 2 for bools) of `t`, in C order.
std::vector<char> expected_bytes(ckpt::dtype t, std::size_t n) {
    std::vector<char> out(n * ckpt::dtype_size(t));
    auto fill = [&](auto zero) {
        using T = decltype(zero);
        for (std::size_t i = 0; i < n; ++i) {
            const T v = static_cast<T>(static_cast<float>(t == ckpt::dtype::boolean ? i % 2 : i % 100));
            std::memcpy(out.data() + i * sizeof(T), &v, sizeof(T));
        }
    };
    switch (t) {
        case ckpt::dtype::float16:
            fill(Eigen::half());
            break;
        case ckpt::dtype::float32:
            fill(float());
            break;
        case ckpt::dtype::float64:
            fill(double());
            break;
        case ckpt::dtype::int8:
            fill(std::int8_t());
            break;
        case ckpt::dtype::int16:
            fill(std::int16_t());
            break;
        case ckpt::dtype::int32:
            fill(std::int32_t());
            break;
        case ckpt::dtype::int64:
            fill(std::int64_t());
            break;
        case ckpt::dtype::uint8:
            fill(std::uint8_t());
            break;
        case ckpt::dtype::uint16:
            fill(std::uint16_t());
            break;
        case ckpt::dtype::uint32:
            fill(std::uint32_t());
            break;
        case ckpt::dtype::uint64:
            fill(std::uint64_t());
            break;
        case ckpt::dtype::boolean:
            fill(bool());
            break;
        case ckpt::dtype::complex64:
            fill(std::complex<float>());
            break;
        case ckpt::dtype::complex128:
            fill(std::complex<double>());
            break;
        default:
            FAIL("unexpected dtype");
    }
    return out;
}

ckpt::dtype dtype_of_prefix(const std::string& name) {
    const std::string code = name.substr(0, name.find('_'));
    const std::pair<const char*, ckpt::dtype> codes[] = {
        {"f2", ckpt::dtype::float16},   {"f4", ckpt::dtype::float32},    {"f8", ckpt::dtype::float64},
        {"i1", ckpt::dtype::int8},      {"i2", ckpt::dtype::int16},      {"i4", ckpt::dtype::int32},
        {"i8", ckpt::dtype::int64},     {"u1", ckpt::dtype::uint8},      {"u2", ckpt::dtype::uint16},
        {"u4", ckpt::dtype::uint32},    {"u8", ckpt::dtype::uint64},     {"b1", ckpt::dtype::boolean},
        {"c8", ckpt::dtype::complex64}, {"c16", ckpt::dtype::complex128}};
    for (const auto& c : codes)
        if (code == c.first) return c.second;
    FAIL("no dtype for " << name);
    return ckpt::dtype::bytes;
}

ckpt::shape shape_of_suffix(const std::string& name) {
    const std::string s = name.substr(name.find('_') + 1);
    if (s == "r0") return {};
    if (s == "r1") return {5};
    if (s == "r2") return {3, 4};
    if (s == "r3") return {2, 3, 4};
    if (s == "r4") return {2, 1, 3, 2};
    return {0, 3};
}

void check_every_dtype(const ckpt::foreign_file& f) {
    CHECK(f.format() == "npz");
    REQUIRE(f.tensors().size() == 14 * 6);
    for (const auto& t : f.tensors()) {
        INFO(t.name);
        CHECK(t.dtype == dtype_of_prefix(t.name));
        CHECK(t.shape == shape_of_suffix(t.name));
        CHECK_FALSE(t.fortran_order);
        const auto want = expected_bytes(t.dtype, static_cast<std::size_t>(t.shape.elements()));
        REQUIRE(t.bytes == want.size());
        std::vector<char> got(want.size());
        f.read(t, got.data());
        CHECK(got == want);
    }
}

}  // namespace

TEST_CASE("an npz written by np.savez: every dtype, rank 0 to 4, empty tensors", "[foreign]") {
    ckpt_test::numpy(ckpt_test::every_dtype_arrays() + "np.savez('stored.npz', **arrays())");
    check_every_dtype(ckpt::foreign_file("stored.npz"));
}

TEST_CASE("an npz written by np.savez_compressed (deflate): every dtype, rank 0 to 4, empty", "[foreign]") {
    ckpt_test::numpy(ckpt_test::every_dtype_arrays() + "np.savez_compressed('deflated.npz', **arrays())");
    check_every_dtype(ckpt::foreign_file("deflated.npz"));
}

TEST_CASE("Fortran-order arrays keep their element order, flagged fortran_order", "[foreign]") {
    ckpt_test::numpy(
        "a = np.asfortranarray(np.arange(12, dtype='f4').reshape(3, 4))\n"
        "np.savez_compressed('fortran.npz', w=a, v=np.arange(3, dtype='f4'))");
    const ckpt::foreign_file f("fortran.npz");
    const auto* w = f.find("w");
    REQUIRE(w);
    CHECK(w->fortran_order);
    CHECK(w->shape == ckpt::shape{3, 4});
    std::vector<float> got(12);
    f.read(*w, got.data());
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 4; ++c) CHECK(got[static_cast<std::size_t>(c * 3 + r)] == static_cast<float>(r * 4 + c));
    CHECK_FALSE(f.find("v")->fortran_order);
}

TEST_CASE("zip64 end records and extra fields, as zipfile writes for large archives, are read", "[foreign]") {
    // Lowering zipfile's limits makes it write every zip64 record a >4 GiB archive would have.
    ckpt_test::numpy(
        "import zipfile\nzipfile.ZIP64_LIMIT = 0\nzipfile.ZIP_FILECOUNT_LIMIT = 0\n"
        "np.savez('zip64.npz', a=np.arange(6, dtype='i8').reshape(2, 3), b=np.ones(4, dtype='f8'))\n"
        "np.savez_compressed('zip64c.npz', a=np.arange(6, dtype='i8').reshape(2, 3))");
    for (const char* name : {"zip64.npz", "zip64c.npz"}) {
        const ckpt::foreign_file f(name);
        const auto* a = f.find("a");
        REQUIRE(a);
        CHECK(a->shape == ckpt::shape{2, 3});
        std::vector<std::int64_t> got(6);
        f.read(*a, got.data());
        CHECK(got == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5});
    }
}

TEST_CASE("a plain .npy file is one tensor named by the file's stem", "[foreign]") {
    ckpt_test::numpy("np.save('embedding.npy', np.arange(6, dtype='f8').reshape(3, 2))");
    const ckpt::foreign_file f("embedding.npy");
    CHECK(f.format() == "npy");
    REQUIRE(f.tensors().size() == 1);
    CHECK(f.tensors()[0].name == "embedding");
    CHECK(f.tensors()[0].shape == ckpt::shape{3, 2});
    std::vector<double> got(6);
    f.read(f.tensors()[0], got.data());
    CHECK(got == std::vector<double>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("a tensor is read in pieces of at most the chunk size, the same bytes", "[foreign]") {
    ckpt_test::numpy("a = np.arange(1000, dtype='f4')\nnp.savez('s.npz', a=a)\nnp.savez_compressed('c.npz', a=a)");
    for (const char* name : {"s.npz", "c.npz"}) {
        const ckpt::foreign_file f(name);
        const auto& t = f.tensors().at(0);
        std::vector<char> whole(t.bytes), pieces;
        f.read(t, whole.data());
        std::size_t largest = 0;
        f.read(
            t,
            [&](const void* p, std::size_t n) {
                largest = std::max(largest, n);
                pieces.insert(pieces.end(), static_cast<const char*>(p), static_cast<const char*>(p) + n);
            },
            333);
        CHECK(largest <= 333);
        CHECK(pieces == whole);
    }
}

TEST_CASE("a file of no foreign format is refused by its content, whatever its name", "[foreign]") {
    std::ofstream("weights.safetensors") << "hello, this is text";
    CHECK_THROWS_AS(ckpt::foreign_file("weights.safetensors"), ckpt::format_error);
}
