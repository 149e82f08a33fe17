// ckpt::safetensors_header: the layout the library's safetensors writer and `ckpt export` share,
// byte for byte, and what it refuses (with the file and the entry named) before anything is written.

#include <ckpt/safetensors.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace {

// The 8-byte little-endian length and the JSON text, as a file starts.
std::string with_length(const std::string& json) {
    std::string out;
    for (int i = 0; i < 8; ++i) out += static_cast<char>((json.size() >> (8 * i)) & 0xFF);
    return out + json;
}

// What safetensors_header throws for `tensors`, or "" when it does not throw.
ckpt::error refusal(std::vector<ckpt::safetensors_tensor> tensors, std::map<std::string, std::string> metadata = {}) {
    try {
        ckpt::safetensors_header(tensors, metadata, "out.safetensors");
    } catch (const ckpt::error& e) {
        return e;
    }
    FAIL("safetensors_header did not throw");
    return ckpt::error("");
}

}  // namespace

TEST_CASE("safetensors_header lays tensors out as the reference writer: larger elements first, then by name",
          "[safetensors]") {
    std::vector<ckpt::safetensors_tensor> tensors{{"b", ckpt::dtype::float32, ckpt::shape{2, 3}},
                                                  {"c", ckpt::dtype::uint8, ckpt::shape{3}},
                                                  {"a", ckpt::dtype::float64, ckpt::shape{2}},
                                                  {"d", ckpt::dtype::float32, ckpt::shape{}},
                                                  {"e", ckpt::dtype::int16, ckpt::shape{0, 4}}};
    const std::string header = ckpt::safetensors_header(tensors, {{"format", "pt"}}, "out.safetensors");
    const std::string json = R"({"__metadata__":{"format":"pt"},)"
                             R"("a":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},)"
                             R"("b":{"dtype":"F32","shape":[2,3],"data_offsets":[16,40]},)"
                             R"("d":{"dtype":"F32","shape":[],"data_offsets":[40,44]},)"
                             R"("e":{"dtype":"I16","shape":[0,4],"data_offsets":[44,44]},)"
                             R"("c":{"dtype":"U8","shape":[3],"data_offsets":[44,47]}})";
    const std::string padding((8 - json.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
    CHECK(header == with_length(json + padding));
    CHECK(header.size() % 8 == 0);
    // Each tensor's offset is in the file, in the order the caller gave them.
    const std::uint64_t data = header.size();
    CHECK(tensors[0].offset == data + 16);
    CHECK(tensors[1].offset == data + 44);
    CHECK(tensors[2].offset == data);
    CHECK(tensors[3].offset == data + 40);
    CHECK(tensors[4].offset == data + 44);
}

TEST_CASE("safetensors_header writes names as JSON strings and leaves out empty metadata", "[safetensors]") {
    std::vector<ckpt::safetensors_tensor> tensors{
        {"quote\" back\\ line\n tab\t ctl\x01 caf\xc3\xa9 \xe2\x82\xac", ckpt::dtype::complex64, ckpt::shape{1}}};
    const std::string header = ckpt::safetensors_header(tensors, {}, "out.safetensors");
    const std::string json = std::string(R"({"quote\" back\\ line\n tab\t ctl\u0001 caf)") + "\xc3\xa9 \xe2\x82\xac" +
                             R"(":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})";
    CHECK(header == with_length(json + std::string((8 - json.size() % 8) % 8, ' ')));
    CHECK(tensors[0].offset == header.size());
    CHECK(ckpt::safetensors_dtype(ckpt::dtype::bfloat16) == std::string("BF16"));
    CHECK(ckpt::safetensors_dtype(ckpt::dtype::complex128) == nullptr);
    CHECK(ckpt::safetensors_dtype(ckpt::dtype::bytes) == nullptr);
}

TEST_CASE("safetensors_header refuses what safetensors cannot hold, naming the file and the entry", "[safetensors]") {
    using ckpt::dtype;
    SECTION("a name that is not UTF-8 (a JSON serializer would throw its own exception)") {
        for (const char* bad : {"a\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "cut\xe2\x82"}) {
            CAPTURE(bad);
            const auto e = refusal({{bad, dtype::float32, ckpt::shape{1}, "model/a"}});
            CHECK(e.file() == "out.safetensors");
            CHECK(e.entry() == "model/a");
            CHECK_THAT(e.what(), Catch::Contains("not UTF-8"));
        }
    }
    SECTION("two tensors of one name, even of different element sizes, both named") {
        const auto e = refusal({{"same", dtype::float64, ckpt::shape{1}, "model/a"},
                                {"other", dtype::float32, ckpt::shape{1}, "model/b"},
                                {"same", dtype::uint8, ckpt::shape{1}, "model/c"}});
        CHECK(e.entry() == "model/c");
        CHECK_THAT(e.what(), Catch::Contains("'model/a' and 'model/c' would both be 'same'"));
    }
    SECTION("the name safetensors keeps for its metadata, and an empty one") {
        CHECK(refusal({{"__metadata__", dtype::float32, ckpt::shape{1}, "m"}}).entry() == "m");
        CHECK(refusal({{"", dtype::float32, ckpt::shape{1}, "m"}}).entry() == "m");
    }
    SECTION("a dtype safetensors has no name for; the entry is the name when none is given") {
        const auto e = refusal({{"phases", dtype::complex128, ckpt::shape{2}}});
        CHECK(e.entry() == "phases");
        CHECK_THAT(e.what(), Catch::Contains("complex128"));
    }
    SECTION("metadata that is not UTF-8") {
        CHECK_THAT(refusal({}, {{"note", "caf\xe9"}}).what(), Catch::Contains("'note' is not UTF-8"));
    }
    SECTION("a header over the 100 MB the reference reader accepts") {
        const auto e = refusal({{std::string(ckpt::safetensors_max_header, 'n'), dtype::uint8, ckpt::shape{1}}});
        CHECK_THAT(e.what(), Catch::Contains("over the 100000000"));
    }
}
