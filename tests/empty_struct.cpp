// A vector of an empty struct (issue 12, item 7): its elements have no entries of their own, so the
// container's size alone says how many there are.

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

}  // namespace

// ---- 7.: a vector of an empty struct -------------------------------------------------------------

namespace {
struct tag {};
struct with_tags {
    std::vector<tag> tags;
    std::vector<std::array<tag, 2>> pairs;
    Eigen::VectorXf v;
};
CKPT_FIELDS(with_tags, tags, pairs, v)
}  // namespace

TEST_CASE("a vector of an empty struct saves and restores", "[trust][restore]") {
    const auto dir = fresh("trust_empty_struct");
    with_tags s;
    s.tags.resize(100);  // more elements than the file has entries
    s.pairs.resize(3);
    s.v = Eigen::VectorXf::Ones(2);
    ckpt::checkpoint ck{ckpt::track("s", s)};
    const auto file = ck.save(dir / "ckpt");
    with_tags back;
    ckpt::checkpoint ck2{ckpt::track("s", back)};
    ck2.restore(file).assert_consumed();
    CHECK(back.tags.size() == 100);
    CHECK(back.pairs.size() == 3);
    CHECK(back.v == s.v);
}
