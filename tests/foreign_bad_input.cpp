// Damaged and crafted foreign files: every reader is bounded by the file. Each case throws a typed
// ckpt::error naming the file (never a crash, never an allocation the file cannot justify), and a
// restore that fails leaves the tracked objects as they were.

#include <ckpt/foreign.hpp>

#include <catch2/catch.hpp>

#include "support/foreign.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

namespace {
// A safetensors file: 8-byte little-endian `length` (the header's own size unless given), header, data.
void safetensors(const std::string& file, const std::string& header, const std::string& data,
                 std::uint64_t length = UINT64_MAX) {
    if (length == UINT64_MAX) length = header.size();
    std::ofstream out(file, std::ios::binary);
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((length >> (8 * i)) & 0xFF));
    out << header << data;
}

// The message of what opening `file` throws as E.
template <class E>
std::string refusal(const std::string& file) {
    try {
        ckpt::foreign_file f(file);
    } catch (const E& e) {
        CHECK(std::string(e.what()).find(file) != std::string::npos);
        return e.what();
    }
    FAIL("opened " << file);
    return {};
}

bool says(const std::string& what, const std::string& part) {
    INFO(what);
    return what.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("safetensors: a header length past the file or the cap is refused before it is read", "[foreign]") {
    safetensors("long.safetensors", "{}", "", 1000);
    CHECK(says(refusal<ckpt::corrupt_error>("long.safetensors"), "claims 1000 bytes"));
    safetensors("huge.safetensors", "{}", "", std::uint64_t{1} << 62);  // never allocated
    CHECK(says(refusal<ckpt::corrupt_error>("huge.safetensors"), "the cap is 100000000"));
    safetensors("short.safetensors", "", "");
    CHECK_THROWS_AS(ckpt::foreign_file("short.safetensors"), ckpt::format_error);
}

TEST_CASE(
    "safetensors: offsets outside the data section, overlapping, leaving bytes to no tensor, or disagreeing with "
    "dtype x shape",
    "[foreign]") {
    safetensors("outside.safetensors", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234");
    CHECK(says(refusal<ckpt::corrupt_error>("outside.safetensors"), "not inside the data section of 4 bytes"));
    safetensors(
        "overlap.safetensors",
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
        "12345678");
    CHECK(says(refusal<ckpt::corrupt_error>("overlap.safetensors"),
               "tensor 'b' and tensor 'a' overlap: bytes 4 to 8 of the data section"));
    safetensors(
        "inside.safetensors",
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
        "12345678");
    CHECK(says(refusal<ckpt::corrupt_error>("inside.safetensors"),
               "tensor 'b' and tensor 'a' overlap: bytes 2 to 4 of the data section"));
    // The tensors fill the data section, as the reference reader requires: no gap, nothing after.
    safetensors(
        "gap.safetensors",
        R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
        "123456789abc");
    CHECK(says(refusal<ckpt::corrupt_error>("gap.safetensors"),
               "bytes 4 to 8 of the data section belong to no tensor: a gap between tensor 'a' and tensor 'b'"));
    safetensors("tail.safetensors", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "12345678");
    CHECK(says(refusal<ckpt::corrupt_error>("tail.safetensors"), "4 bytes after tensor 'a' belong to no tensor"));
    safetensors("lead.safetensors", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", "12345678");
    CHECK(
        says(refusal<ckpt::corrupt_error>("lead.safetensors"),
             "bytes 0 to 4 of the data section belong to no tensor: a gap between the section's start and tensor 'a'"));
    safetensors("no_tensor.safetensors", "{}", "1234");
    CHECK(says(refusal<ckpt::corrupt_error>("no_tensor.safetensors"), "4 bytes after its start belong to no tensor"));
    // In any order in the header, and with empty tensors anywhere inside the section, a full one opens.
    safetensors(
        "full.safetensors",
        R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
        "12345678");
    CHECK(ckpt::foreign_file("full.safetensors").tensors().size() == 3);
    safetensors("length.safetensors", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "12345678");
    CHECK(says(refusal<ckpt::corrupt_error>("length.safetensors"), "float32 [3] does not agree with its 8 bytes"));
    // A product of dimensions that overflows 64 bits must not wrap around to the byte length.
    safetensors("overflow.safetensors",
                R"({"a":{"dtype":"U8","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}})", "");
    CHECK(says(refusal<ckpt::corrupt_error>("overflow.safetensors"), "does not agree"));
    safetensors("negative.safetensors", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", "");
    CHECK(says(refusal<ckpt::corrupt_error>("negative.safetensors"), "not a count"));
}

TEST_CASE("safetensors: JSON that nests too deep, is not JSON, or names an unknown dtype", "[foreign]") {
    safetensors("deep.safetensors", "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}", "");
    CHECK(says(refusal<ckpt::corrupt_error>("deep.safetensors"), "deeper than 8 levels"));
    safetensors("text.safetensors", "{not json", "");
    CHECK(says(refusal<ckpt::corrupt_error>("text.safetensors"), "not valid JSON"));
    safetensors("f8.safetensors", R"({"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", "x");
    CHECK(says(refusal<ckpt::format_error>("f8.safetensors"), "\"F8_E4M3\", which ckpt has no type for"));
}

TEST_CASE("npy: object arrays, big-endian data, unknown keys and short data are refused", "[foreign]") {
    ckpt_test::numpy(
        "np.save('objects.npy', np.array([{'a': 1}, None], dtype=object), allow_pickle=True)\n"
        "np.save('big.npy', np.arange(3, dtype='>f4'))\n"
        "np.save('short.npy', np.arange(100, dtype='f8'))\n"
        "raw = open('short.npy', 'rb').read()\n"
        "open('short.npy', 'wb').write(raw[:-8])\n"
        "np.save('evil.npy', np.arange(3, dtype='f4'))\n"
        "raw = open('evil.npy', 'rb').read().replace(b\"'shape': (3,), }\", b\"'shape': (3,), 'x': 1}\")\n"
        "open('evil.npy', 'wb').write(raw)");
    CHECK(says(refusal<ckpt::format_error>("objects.npy"), "dtype=object"));
    CHECK(says(refusal<ckpt::format_error>("big.npy"), "not a little-endian numeric type"));
    CHECK(says(refusal<ckpt::corrupt_error>("short.npy"), "needs 800 bytes of data; the file has 792"));
    CHECK(says(refusal<ckpt::corrupt_error>("evil.npy"), "has key 'x'"));
}

TEST_CASE("npz: a truncated archive, a damaged central directory, sizes that lie, a failing CRC", "[foreign]") {
    ckpt_test::numpy(R"(
import struct
a = np.arange(1000, dtype='f4')
np.savez('good.npz', a=a)
np.savez_compressed('goodc.npz', a=a)
raw = open('good.npz', 'rb').read()
open('truncated.npz', 'wb').write(raw[:-30])
cd = raw.rindex(b'PK\x01\x02')
open('count.npz', 'wb').write(raw[:-12] + struct.pack('<H', 9999) + raw[-10:])  # total entries
data = bytearray(raw)
data[200] ^= 0xFF  # inside a's elements
open('crc.npz', 'wb').write(bytes(data))
rawc = open('goodc.npz', 'rb').read()
cd = rawc.rindex(b'PK\x01\x02')
size, = struct.unpack('<I', rawc[cd + 24:cd + 28])
open('bigger.npz', 'wb').write(rawc[:cd + 24] + struct.pack('<I', size + 4000) + rawc[cd + 28:])
open('bomb.npz', 'wb').write(rawc[:cd + 24] + struct.pack('<I', 0xFFFFFFF0) + rawc[cd + 28:])
np.savez('named.npz', a=a)
raw = open('named.npz', 'rb').read()
open('named.npz', 'wb').write(raw.replace(b'a.npy', b'b.npy', 1))  # the local header's name only
)");
    CHECK_THROWS_AS(ckpt::foreign_file("truncated.npz"), ckpt::format_error);
    CHECK(says(refusal<ckpt::corrupt_error>("count.npz"), "claims 9999 members"));
    CHECK(says(refusal<ckpt::corrupt_error>("bigger.npz"), "member 'a.npy'"));
    CHECK(says(refusal<ckpt::corrupt_error>("bomb.npz"), "beyond deflate's largest ratio"));
    CHECK(says(refusal<ckpt::corrupt_error>("named.npz"), "local header names 'b.npy'"));

    // A damaged element is found when the tensor is read: a restore then changes nothing.
    Eigen::VectorXf a = Eigen::VectorXf::Constant(1000, -1.0f);
    ckpt::checkpoint ck{ckpt::track("a", a)};
    try {
        ck.restore("crc.npz", ckpt::strict, ckpt::name_map{});
        FAIL("restored");
    } catch (const ckpt::corrupt_error& e) {
        CHECK(says(e.what(), "fails its CRC-32 check"));
    }
    CHECK(a(0) == -1.0f);
    ck.restore("good.npz", ckpt::strict, ckpt::name_map{}).assert_consumed();
    CHECK(a(999) == 999.0f);
}

TEST_CASE("HF index: shards outside the index's directory, names a shard lacks", "[foreign]") {
    fs::remove_all("hf");
    fs::create_directories("hf");
    Eigen::VectorXf w = Eigen::VectorXf::Ones(2);
    ckpt::checkpoint ck{ckpt::track("w", w)};
    ck.write("hf/shard.safetensors", ckpt::as_safetensors, ckpt::name_map{});
    std::ofstream("hf/escape.index.json") << R"({"weight_map": {"w": "../shard.safetensors"}})";
    CHECK(says(refusal<ckpt::corrupt_error>("hf/escape.index.json"), "not a file name beside the index"));
    std::ofstream("hf/lacking.index.json") << R"({"weight_map": {"v": "shard.safetensors"}})";
    CHECK(says(refusal<ckpt::corrupt_error>("hf/lacking.index.json"), "puts 'v' in shard 'shard.safetensors'"));
    std::ofstream("hf/nomap.index.json") << R"({"metadata": {}})";
    CHECK_THROWS_AS(ckpt::foreign_file("hf/nomap.index.json"), ckpt::format_error);
}
