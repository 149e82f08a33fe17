// Damaged and hostile files: every truncation and every single-bit flip of a small checkpoint is
// detected, hostile indexes with valid checksums are refused before any large allocation, and
// nothing ever crashes.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct small_state {
    Eigen::MatrixXf kernel = Eigen::MatrixXf::Random(3, 2);
    std::vector<double> bias{0.5, -1.5};
    std::string note = "hello";
    std::map<std::string, Eigen::VectorXf> heads{{"en", Eigen::VectorXf::Random(2)}};
    std::int64_t step = 7;
};

fs::path write_small(const fs::path& file) {
    small_state s;
    ckpt::checkpoint ck{ckpt::track("kernel", s.kernel), ckpt::track("bias", s.bias), ckpt::track("note", s.note),
                        ckpt::track("heads", s.heads), ckpt::track("step", s.step)};
    ckpt::save_options o;
    o.step = 7;
    o.metrics["loss"] = 0.25;
    return ck.write(file, o);
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}
void spit(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

// Opening, verifying and restoring: what a damaged file must fail. Returns how it failed.
enum class verdict { accepted, format_error, corrupt_error, other_error };
verdict check(const fs::path& file) {
    try {
        ckpt::reader r(file);
        r.verify();
        small_state s;
        ckpt::checkpoint ck{ckpt::track("kernel", s.kernel), ckpt::track("bias", s.bias), ckpt::track("note", s.note),
                            ckpt::track("heads", s.heads), ckpt::track("step", s.step)};
        ck.restore(file).assert_consumed();
        return verdict::accepted;
    } catch (const ckpt::format_error&) {
        return verdict::format_error;
    } catch (const ckpt::corrupt_error&) {
        return verdict::corrupt_error;
    } catch (...) {
        return verdict::other_error;
    }
}

// Memory for `size` bytes starting `misalignment` bytes past a 64-byte boundary; valid until the next call.
char* aligned_scratch(std::uint64_t size, std::size_t misalignment) {
    static std::vector<char> buffer;
    buffer.assign(static_cast<std::size_t>(size) + 128, '\0');
    const auto at = reinterpret_cast<std::uintptr_t>(buffer.data());
    return buffer.data() + (64 - at % 64) % 64 + misalignment;
}

// Rewrites the index and header checksums of a file whose index was edited, so that only the
// structure checks stand between the edit and the reader.
void reseal(std::string& bytes) {
    using namespace ckpt::detail;
    const auto index_offset = get<std::uint64_t>(bytes.data() + 24);
    put<std::uint64_t>(bytes.data() + 32, bytes.size() - index_offset);
    put<std::uint64_t>(bytes.data() + 16, bytes.size());
    put<std::uint64_t>(bytes.data() + 40, hash64(bytes.data() + index_offset, bytes.size() - index_offset));
    put<std::uint64_t>(bytes.data() + 120, hash64(bytes.data(), 120));
}

}  // namespace

TEST_CASE("a good file passes every check, with its blocks 64-byte aligned", "[format]") {
    fs::create_directories("format_good");
    const auto file = write_small("format_good/ckpt");
    CHECK(check(file) == verdict::accepted);
    const ckpt::reader r(file);
    for (const auto& e : r.entries()) CHECK(e.offset % 64 == 0);
}

TEST_CASE("every truncation of a checkpoint is detected", "[format]") {
    fs::create_directories("format_truncated");
    const std::string bytes = slurp(write_small("format_truncated/good"));
    const fs::path damaged = "format_truncated/damaged";
    std::size_t detected = 0;
    for (std::size_t length = 0; length < bytes.size(); ++length) {
        spit(damaged, bytes.substr(0, length));
        const auto v = check(damaged);
        CHECK((v == verdict::corrupt_error || v == verdict::format_error));
        detected += v == verdict::corrupt_error || v == verdict::format_error;
    }
    CHECK(detected == bytes.size());
}

TEST_CASE("every single-bit flip of a checkpoint is detected", "[format]") {
    fs::create_directories("format_flips");
    const std::string bytes = slurp(write_small("format_flips/good"));
    const fs::path damaged = "format_flips/damaged";
    std::size_t flips = 0, detected = 0;
    for (std::size_t byte = 0; byte < bytes.size(); ++byte) {
        for (int bit = 0; bit < 8; ++bit) {
            std::string copy = bytes;
            copy[byte] = static_cast<char>(copy[byte] ^ (1 << bit));
            spit(damaged, copy);
            const auto v = check(damaged);
            ++flips;
            if (v == verdict::corrupt_error || v == verdict::format_error) ++detected;
            else FAIL_CHECK("undetected flip of bit " << bit << " of byte " << byte);
        }
    }
    INFO(detected << " of " << flips << " flips detected");
    CHECK(detected == flips);
}

TEST_CASE("files that are not checkpoints, or of another version, are format errors", "[format]") {
    fs::create_directories("format_foreign");
    spit("format_foreign/empty", "");
    CHECK(check("format_foreign/empty") == verdict::corrupt_error);
    spit("format_foreign/text", std::string(300, 'x'));
    CHECK_THROWS_AS(ckpt::reader("format_foreign/text"), ckpt::format_error);
    CHECK_THROWS_WITH(ckpt::reader("format_foreign/text"), Catch::Contains("format_foreign/text") && Catch::Contains("not a ckpt checkpoint"));

    std::string bytes = slurp(write_small("format_foreign/good"));
    ckpt::detail::put<std::uint32_t>(bytes.data() + 8, 99);
    ckpt::detail::put<std::uint64_t>(bytes.data() + 120, ckpt::detail::hash64(bytes.data(), 120));
    spit("format_foreign/future", bytes);
    CHECK_THROWS_WITH(ckpt::reader("format_foreign/future"), Catch::Contains("format version 99 is not supported"));

    CHECK_THROWS_AS(ckpt::reader("format_foreign"), ckpt::io_error);          // a directory
    CHECK_THROWS_AS(ckpt::reader("format_foreign/missing"), ckpt::io_error);  // no such file
}

TEST_CASE("hostile indexes with valid checksums are refused before any large allocation", "[format]") {
    fs::create_directories("format_hostile");
    const std::string good = slurp(write_small("format_hostile/good"));
    const auto index_offset = ckpt::detail::get<std::uint64_t>(good.data() + 24);
    ckpt::reader r("format_hostile/good");
    const auto& first = r.entries().front();  // "kernel": path length at the index start

    SECTION("an entry count far beyond what the index can hold") {
        std::string bytes = good;
        ckpt::detail::put<std::uint64_t>(bytes.data() + 48, std::uint64_t{1} << 60);
        reseal(bytes);
        spit("format_hostile/f", bytes);
        CHECK_THROWS_WITH(ckpt::reader("format_hostile/f"), Catch::Contains("cannot fit in the index"));
    }
    SECTION("a path length running past the index") {
        std::string bytes = good;
        ckpt::detail::put<std::uint32_t>(bytes.data() + index_offset, 0xffffffffu);
        reseal(bytes);
        spit("format_hostile/f", bytes);
        CHECK_THROWS_AS(ckpt::reader("format_hostile/f"), ckpt::corrupt_error);
    }
    SECTION("a tensor whose shape claims 2^62 elements") {
        std::string bytes = good;
        const auto dims = index_offset + 4 + first.path.size() + 4;  // after path, kind, dtype, flags, rank
        ckpt::detail::put<std::uint64_t>(bytes.data() + dims, std::uint64_t{1} << 62);
        reseal(bytes);
        spit("format_hostile/f", bytes);
        CHECK_THROWS_WITH(ckpt::reader("format_hostile/f"), Catch::Contains("does not agree with its block length"));
    }
    SECTION("a block offset pointing elsewhere (overlapping blocks)") {
        std::string bytes = good;
        const auto offset = index_offset + 4 + first.path.size() + 4 + 8 * first.shape.rank();
        ckpt::detail::put<std::uint64_t>(bytes.data() + offset, 0);
        reseal(bytes);
        spit("format_hostile/f", bytes);
        CHECK_THROWS_WITH(ckpt::reader("format_hostile/f"), Catch::Contains("lies outside its place"));
    }
    SECTION("an entry path that escapes with '..'") {
        std::string bytes = good;
        REQUIRE(first.path == "kernel");
        std::memcpy(bytes.data() + index_offset + 4, "../../", 6);
        reseal(bytes);
        spit("format_hostile/f", bytes);
        CHECK_THROWS_WITH(ckpt::reader("format_hostile/f"), Catch::Contains("invalid entry path"));
    }
    SECTION("a duplicate entry path") {
        std::string bytes = good;
        // "bias" is the second entry; renaming it "kernel" would change the length, so rename the
        // first to "bias\0\0"... instead: give both the same 4-letter path by editing "note" to "bias".
        const auto at = bytes.find("note", index_offset);
        REQUIRE(at != std::string::npos);
        std::memcpy(bytes.data() + at, "bias", 4);
        reseal(bytes);
        spit("format_hostile/f", bytes);
        CHECK_THROWS_WITH(ckpt::reader("format_hostile/f"), Catch::Contains("duplicate entry path"));
    }
}

TEST_CASE("a serialized entry whose size tag claims 2^60 elements fails cleanly", "[format]") {
    fs::create_directories("format_size_tag");
    std::vector<std::string> names{"a", "b"};
    ckpt::checkpoint ck{ckpt::track("names", names)};
    const auto file = ck.write("format_size_tag/ckpt");
    std::string bytes = slurp(file);
    ckpt::reader r(file);
    const auto& e = *r.find("names");
    // Rewrite the size tag, then the block's checksum in the index, then the seals.
    ckpt::detail::put<std::uint64_t>(bytes.data() + e.offset, std::uint64_t{1} << 60);
    const auto index_offset = ckpt::detail::get<std::uint64_t>(bytes.data() + 24);
    const auto checksum_at = index_offset + 4 + e.path.size() + 4 + 8 * e.shape.rank() + 16;
    ckpt::detail::put<std::uint64_t>(bytes.data() + checksum_at, ckpt::detail::hash64(bytes.data() + e.offset, e.length));
    reseal(bytes);
    spit(file, bytes);
    ckpt::reader(file).verify();  // the bytes match their checksum: only the content is a lie
    std::vector<std::string> back;
    ckpt::checkpoint restore{ckpt::track("names", back)};
    CHECK_THROWS_WITH(restore.restore(file), Catch::Contains("exceeds the") && Catch::Contains("names"));
    CHECK(back.empty());  // nothing half-restored

    // And the attempt allocated next to nothing: measured in a child, whose peak RSS is its own.
    const pid_t pid = ::fork();
    if (pid == 0) {
        rusage before{};
        ::getrusage(RUSAGE_SELF, &before);
        std::vector<std::string> v;
        ckpt::checkpoint c{ckpt::track("names", v)};
        try {
            c.restore(file);
        } catch (const ckpt::error&) {
        }
        rusage after{};
        ::getrusage(RUSAGE_SELF, &after);
        ::_exit(after.ru_maxrss - before.ru_maxrss < 16 * 1024 ? 0 : 1);  // KiB: under 16 MiB more
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("blocks read straight into the object: damage in their bytes or padding is caught", "[format]") {
    // Above the read-ahead window's size a block is read directly, in chunks, with its padding in
    // the same call: a 20 KB block and a 5 MB block of several chunks, both followed by padding.
    fs::create_directories("format_direct");
    Eigen::VectorXf medium = Eigen::VectorXf::Random(5003), large = Eigen::VectorXf::Random((5 << 20) / 4 + 1);
    ckpt::checkpoint saver{ckpt::track("medium", medium), ckpt::track("large", large)};
    const auto good = saver.write("format_direct/good");
    const std::string bytes = slurp(good);

    Eigen::VectorXf medium_back, large_back;
    ckpt::checkpoint loader{ckpt::track("medium", medium_back), ckpt::track("large", large_back)};
    loader.restore(good).assert_consumed();
    CHECK(medium_back == medium);
    CHECK(large_back == large);

    const ckpt::reader r(good);
    const auto m = *r.find("medium");
    const auto l = *r.find("large");
    REQUIRE(m.length % 64 != 0);
    REQUIRE(l.length % 64 != 0);
    const fs::path damaged = "format_direct/damaged";
    auto restore_damaged = [&] {
        Eigen::VectorXf a, b;
        ckpt::checkpoint ck{ckpt::track("medium", a), ckpt::track("large", b)};
        ck.restore(damaged);
    };
    for (const std::uint64_t at : {m.offset, m.offset + m.length - 1, m.offset + m.length, l.offset, l.offset + (4 << 20) + 7,
                                   l.offset + l.length - 1, l.offset + l.length + 3}) {
        INFO("byte " << at << " flipped");
        std::string copy = bytes;
        copy[at] = static_cast<char>(copy[at] ^ 0x10);
        spit(damaged, copy);
        CHECK_THROWS_AS(restore_damaged(), ckpt::corrupt_error);
        // Straight into memory in step with the file's alignment, and through the aligned buffer.
        ckpt::reader opened(damaged);
        const auto& e = at < l.offset ? m : l;
        for (const std::size_t misalignment : {0, 16}) {
            INFO("destination " << misalignment << " bytes past 64-byte alignment");
            CHECK_THROWS_AS(opened.read_bytes(e, aligned_scratch(e.length, misalignment)), ckpt::corrupt_error);
        }
    }
    for (const std::size_t misalignment : {0, 16}) {
        ckpt::reader opened(good);
        char* dest = aligned_scratch(l.length, misalignment);
        opened.read_bytes(l, dest);
        CHECK(std::memcmp(dest, large.data(), l.length) == 0);
    }
    // A file that shrinks after it was opened (the header's size check has passed): short reads.
    for (const std::uint64_t length : {m.offset + 100, m.offset + m.length + 1, l.offset + (4 << 20) + 1, l.offset + l.length + 1}) {
        INFO("truncated to " << length << " bytes after opening");
        spit(damaged, bytes);
        ckpt::reader opened(damaged);
        fs::resize_file(damaged, length);
        CHECK_THROWS_AS(opened.read<Eigen::VectorXf>(length < l.offset ? "medium" : "large"), ckpt::corrupt_error);
    }
}

TEST_CASE("entry paths: '/'-separated segments, none empty, '.' or '..', no NUL", "[format]") {
    using ckpt::detail::is_valid_entry_path;
    for (const std::string_view good : {"a", "model/hidden/kernel", "a.b", "..a", "a..", ".a/b.", "heads/en%2Fus/bias"}) {
        INFO(good);
        CHECK(is_valid_entry_path(good));
    }
    for (const std::string_view bad : {"", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "a/..", "../a"}) {
        INFO(bad);
        CHECK_FALSE(is_valid_entry_path(bad));
    }
    CHECK_FALSE(is_valid_entry_path(std::string_view("a\0b", 3)));
    CHECK_FALSE(is_valid_entry_path(std::string(ckpt::detail::max_path_length + 1, 'a')));
    CHECK(is_valid_entry_path(std::string(ckpt::detail::max_path_length, 'a')));
}
