// Nothing the reader would refuse is ever saved (issue 12, item 2): the writer refuses, at save
// time and naming the entry, what the reader's index rules would reject.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include "support/files.hpp"
#include "support/models.hpp"
#include "support/process.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

fs::path fresh(const std::string& dir) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

bool has_temp_files(const fs::path& dir) {
    for (const auto& e : fs::directory_iterator(dir))
        if (ckpt::detail::is_temp_name(e.path())) return true;
    return false;
}

}  // namespace

// ---- 2.: nothing the reader would refuse is ever saved -----------------------------------------

TEST_CASE("an entry path over the format's limit is refused at save time, naming it", "[trust][writer]") {
    const auto dir = fresh("trust_long_path");
    std::map<std::string, Eigen::VectorXf> heads;
    heads[std::string(4094, 'k')] = Eigen::VectorXf::Ones(3);
    heads["short"] = Eigen::VectorXf::Ones(2);
    ckpt::checkpoint ck{ckpt::track("heads", heads)};
    auto refused = [&](auto&& save) {
        try {
            save();
            return false;
        } catch (const ckpt::error& e) {
            CHECK_THAT(e.what(), Catch::Contains("4100 bytes") && Catch::Contains("4096"));
            CHECK(e.entry().rfind("heads/kkkk", 0) == 0);
            return true;
        }
    };
    CHECK(refused([&] { ck.save(dir / "ckpt"); }));
    CHECK(refused([&] { ck.write(dir / "exact"); }));
    CHECK(refused([&] { ck.save_async(dir / "ckpt"); }));  // on the caller's thread, before any file
    ck.wait();
    {
        ckpt::checkpoint_manager mgr{ck, dir / "managed", ckpt::keep_last(1)};
        CHECK(refused([&] { mgr.save(1); }));
        CHECK(mgr.checkpoints().empty());
    }
    CHECK_FALSE(fs::exists(dir / "ckpt-1"));
    CHECK_FALSE(fs::exists(dir / "exact"));
    CHECK_FALSE(has_temp_files(dir));
    CHECK_FALSE(has_temp_files(dir / "managed"));
    CHECK(ck.save_counter() == 0);

    // At the limit exactly it saves, and restores.
    heads.clear();
    heads[std::string(4096 - 6, 'k')] = Eigen::VectorXf::Ones(3);
    const auto saved = ck.save(dir / "ckpt");
    heads.clear();
    ck.restore(saved).assert_consumed();
    CHECK(heads.begin()->first.size() == 4090);
    const ckpt::reader r(saved);
    CHECK(r.entries().size() == 2);
}

TEST_CASE("a distribution whose state would not read back is refused at save time", "[trust][writer]") {
    const auto dir = fresh("trust_text_state");
    std::normal_distribution<double> noise(0.0, std::numeric_limits<double>::infinity());
    ckpt::checkpoint ck{ckpt::track("noise", noise)};
    CHECK_THROWS_WITH(ck.save(dir / "ckpt"), Catch::Contains("entry 'noise'") && Catch::Contains("does not read back"));
    CHECK_FALSE(fs::exists(dir / "ckpt-1"));
    CHECK_FALSE(has_temp_files(dir));
    noise = std::normal_distribution<double>(0.0, 2.0);
    const auto file = ck.save(dir / "ckpt");
    noise = std::normal_distribution<double>(5.0, 1.0);
    ck.restore(file).assert_consumed();
    CHECK(noise.stddev() == 2.0);
}

TEST_CASE("the writer's checks mirror every rule of the reader's index", "[trust][writer]") {
    using ckpt::detail::unreadable_entry;
    using kind = ckpt::entry_kind;
    const ckpt::shape scalar{};
    CHECK(unreadable_entry("a/b", kind::tensor, ckpt::dtype::float32, ckpt::shape{2}, 8).empty());
    CHECK_FALSE(unreadable_entry("", kind::tensor, ckpt::dtype::float32, scalar, 4).empty());
    CHECK_FALSE(unreadable_entry("a//b", kind::tensor, ckpt::dtype::float32, scalar, 4).empty());
    CHECK_FALSE(unreadable_entry("a/../b", kind::tensor, ckpt::dtype::float32, scalar, 4).empty());
    CHECK_FALSE(unreadable_entry(std::string("a\0b", 3), kind::tensor, ckpt::dtype::float32, scalar, 4).empty());
    CHECK_FALSE(unreadable_entry(std::string(4097, 'a'), kind::tensor, ckpt::dtype::float32, scalar, 4).empty());
    // A zero-sized tensor whose other dimensions overflow 64 bits when multiplied: the reader refuses it.
    CHECK_FALSE(
        unreadable_entry("t", kind::tensor, ckpt::dtype::float32, ckpt::shape{1ull << 40, 1ull << 40, 0}, 0).empty());
    CHECK_FALSE(unreadable_entry("t", kind::tensor, ckpt::dtype::float32, ckpt::shape{3}, 8).empty());
    CHECK_FALSE(unreadable_entry("t", kind::tensor, ckpt::dtype::bytes, ckpt::shape{3}, 3).empty());
    CHECK_FALSE(unreadable_entry("s", kind::serialized, ckpt::dtype::bytes, ckpt::shape{4}, 3).empty());
    CHECK_FALSE(unreadable_entry("s", kind::sequence, ckpt::dtype::bytes, ckpt::shape{4}, 1).empty());
    CHECK_FALSE(unreadable_entry("m", kind::mapping, ckpt::dtype::bytes, ckpt::shape{4}, 15).empty());
    CHECK_FALSE(unreadable_entry("p", kind::sparse, ckpt::dtype::float32, ckpt::shape{4}, 8).empty());
}
