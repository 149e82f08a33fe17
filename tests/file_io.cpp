// The files a save creates (issue 12, items 5, 11 and 12): temporary names after a restart with the
// same process id, two processes under one prefix, the lock file never reached through a symbolic
// link, new directories fsynced into their parents, and a cleaner of dead saves' temporaries that
// takes a new one before the save locks it.

#include <ckpt/ckpt.hpp>
#include <ckpt/testing.hpp>

#include <catch2/catch.hpp>

#include "support/files.hpp"
#include "support/models.hpp"
#include "support/process.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

using model = ckpt_test::small_model;

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

std::int64_t restored_step(const fs::path& file) {
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ck.restore(file).assert_consumed();
    return m.step;
}

struct hooks_reset {
    ~hooks_reset() {
        ckpt::detail::io_fault_injector = nullptr;
        ckpt::detail::manager_test_hook = nullptr;
        ckpt::testing::thread_start_injector = nullptr;
        ckpt::detail::temporary_created_hook = nullptr;
    }
};

}  // namespace

// ---- 5.: temporary names after a restart with the same process id -------------------------------

TEST_CASE("a stale temporary of a dead process with our id neither blocks nor outlives a save", "[trust][io]") {
    const auto dir = fresh("trust_stale_temp");
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    // What an earlier incarnation with our PID left when it was killed mid-save (the names the
    // old scheme, <pid>.<counter>, would give our next saves).
    const std::string pid = std::to_string(::getpid());
    for (int i = 0; i < 64; ++i) std::ofstream(dir / ("ckpt-1.ckpt-tmp." + pid + "." + std::to_string(i))) << "half";
    std::ofstream(dir / ("ckpt-7.ckpt-tmp.1.0")) << "half";             // another dead writer of our prefix
    std::ofstream(dir / ("other-1.ckpt-tmp." + pid + ".0")) << "half";  // not our prefix: not ours to remove
    // A live writer's temporary (it holds the lock on it): left alone.
    ckpt::detail::file_descriptor live(::open((dir / "ckpt-3.ckpt-tmp.12345.0").c_str(), O_WRONLY | O_CREAT, 0644));
    REQUIRE(::flock(live.get(), LOCK_EX) == 0);

    CHECK(ck.save(dir / "ckpt") == dir / "ckpt-1");
    CHECK(restored_step(dir / "ckpt-1") == 0);
    std::set<std::string> left;
    for (const auto& e : fs::directory_iterator(dir))
        if (ckpt::detail::is_temp_name(e.path())) left.insert(e.path().filename().string());
    CHECK(left == std::set<std::string>{"ckpt-3.ckpt-tmp.12345.0", "other-1.ckpt-tmp." + pid + ".0"});
}

TEST_CASE("a temporary name that exists is passed over", "[trust][io]") {
    const auto dir = fresh("trust_temp_collision");
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    // Every name this process will try next, taken (as by a racing writer of the same final name).
    hooks_reset reset;
    static std::vector<fs::path> tried;
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path& p) {
        if (op == ckpt::detail::io_op::create) {
            tried.push_back(p);
            if (tried.size() <= 3) std::ofstream(p) << "taken";  // then open(O_EXCL) finds it
        }
        return 0;
    };
    ck.save_as(dir / "exact");
    ckpt::detail::io_fault_injector = nullptr;
    REQUIRE(tried.size() == 4);
    CHECK(std::set<fs::path>(tried.begin(), tried.end()).size() == 4);
    CHECK(restored_step(dir / "exact") == 0);
}

TEST_CASE("two processes saving under one prefix never replace each other's checkpoint", "[trust][io]") {
    const auto dir = fresh("trust_prefix_race");
    model m;
    m.step = 42;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    // The other process takes ckpt-1 between this save's look for a free number and its rename.
    hooks_reset reset;
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path& p) {
        if (op == ckpt::detail::io_op::rename && p.filename() == "ckpt-1" && !fs::exists(p)) {
            model other;
            other.step = 7;
            ckpt::checkpoint theirs{ckpt::track("weights", other.weights), ckpt::track("step", other.step)};
            ckpt::detail::io_fault_injector = nullptr;  // their save is not intercepted
            theirs.write(p);
        }
        return 0;
    };
    CHECK(ck.save(dir / "ckpt") == dir / "ckpt-2");
    ckpt::detail::io_fault_injector = nullptr;
    CHECK(restored_step(dir / "ckpt-1") == 7);   // theirs, untouched
    CHECK(restored_step(dir / "ckpt-2") == 42);  // ours, under the next number, counted as such
    CHECK(ck.save_counter() == 2);
    CHECK(ckpt::reader(dir / "ckpt-2").metadata().save_counter == 2);
    CHECK_FALSE(has_temp_files(dir));
}

// ---- 11. and 12.: what the library creates ----------------------------------------------------

TEST_CASE("the lock file is never created through a symbolic link", "[trust][io]") {
    const auto dir = fresh("trust_lock_symlink");
    fs::remove("trust_lock_symlink_target");
    fs::create_symlink(fs::absolute("trust_lock_symlink_target"), dir / ".ckpt-lock");  // dangling
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    CHECK_THROWS_AS((ckpt::checkpoint_manager{ck, dir}), ckpt::io_error);
    CHECK_FALSE(fs::exists("trust_lock_symlink_target"));
}

TEST_CASE("new directories are fsynced into their parents", "[trust][io]") {
    fs::remove_all("trust_new_dirs");
    hooks_reset reset;
    static std::vector<fs::path> synced;
    synced.clear();
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path& p) {
        if (op == ckpt::detail::io_op::fsync_directory) synced.push_back(p);
        return 0;
    };
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ck.save(fs::path("trust_new_dirs") / "a" / "b" / "ckpt");
    const std::set<fs::path> got(synced.begin(), synced.end());
    for (const fs::path p : {".", "trust_new_dirs", "trust_new_dirs/a", "trust_new_dirs/a/b"}) {
        INFO(p);
        CHECK(got.count(p) == 1);
    }
    synced.clear();
    { ckpt::checkpoint_manager mgr{ck, fs::path("trust_new_dirs") / "managed" / "run"}; }
    CHECK(std::count(synced.begin(), synced.end(), fs::path("trust_new_dirs")) == 1);
    CHECK(std::count(synced.begin(), synced.end(), fs::path("trust_new_dirs/managed")) == 1);
}

// ---- a cleaner between a temporary's creation and its lock ----------------------------------------
// A cleaner of dead saves' temporaries (a manager's open, save() under a prefix, a sharded save's
// commit) locks every temporary nobody holds and removes it. A save's new temporary is not held
// for a moment after its creation: a cleaner that takes it then must cost the save a retry, never
// the save, whether it removes it at once or holds it a while.

namespace {

int created_temporaries = 0;
std::thread cleaner;

// The first temporary created is taken by a cleaner: at once, or held for 100 ms and then removed
// (or, with Leaves, released as it is: a cleaner that only looked at it).
template <bool Holds, bool Leaves = false>
void take_first_temporary(const fs::path& temp) {
    if (created_temporaries++ != 0) return;
    if (!Holds) {
        if (fs::is_directory(temp))
            ckpt::detail::remove_stale_temporary_directories(temp.parent_path());
        else
            ckpt::detail::remove_stale_temporaries(temp.parent_path(), [](const std::string&) { return true; });
        return;
    }
    const int fd = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
    cleaner = std::thread([fd, temp] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        std::error_code ec;
        if (!Leaves) fs::remove_all(temp, ec);
        ::close(fd);
    });
}

struct cleaner_joined {
    ~cleaner_joined() {
        if (cleaner.joinable()) cleaner.join();
    }
};

}  // namespace

TEST_CASE("a cleaner that takes a save's new temporary file before it is locked costs another name", "[trust][io]") {
    const auto dir = fresh("trust_cleaner_file");
    hooks_reset reset;
    model m;
    m.step = 7;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    for (const bool holds : {false, true}) {
        INFO((holds ? "the cleaner holds it a while" : "the cleaner removes it at once"));
        cleaner_joined joined;
        created_temporaries = 0;
        ckpt::detail::temporary_created_hook = holds ? take_first_temporary<true> : take_first_temporary<false>;
        const auto file = dir / (holds ? "held" : "removed");
        CHECK(ck.save_as(file) == file);
        ckpt::detail::temporary_created_hook = nullptr;
        if (cleaner.joinable()) cleaner.join();
        CHECK(created_temporaries == 2);
        CHECK(restored_step(file) == 7);
        CHECK_FALSE(has_temp_files(dir));
    }
}

TEST_CASE("a cleaner that takes a sharded save's new temporary directory before it is held costs a wait, not the save",
          "[trust][io]") {
    const auto dir = fresh("trust_cleaner_directory");
    hooks_reset reset;
    for (const bool holds : {false, true}) {
        INFO((holds ? "the cleaner holds it a while" : "the cleaner removes it at once"));
        cleaner_joined joined;
        created_temporaries = 0;
        ckpt::detail::temporary_created_hook = holds ? take_first_temporary<true> : take_first_temporary<false>;
        // The name a sharded save's ranks agreed on: made again under the same name.
        const auto temp = dir / (std::string(holds ? "held" : "removed") + ckpt::detail::temp_marker + "1.0");
        const auto held = ckpt::detail::make_held_directory(temp);
        ckpt::detail::temporary_created_hook = nullptr;
        if (cleaner.joinable()) cleaner.join();
        CHECK(static_cast<bool>(held));
        CHECK(created_temporaries == 2);
        CHECK(fs::is_directory(temp));
        ckpt::detail::remove_stale_temporary_directories(dir);  // held: left alone
        CHECK(fs::is_directory(temp));
    }
}

TEST_CASE("a sharded save's new temporary directory that a cleaner locked and left is held as it is", "[trust][io]") {
    // Seen on 4 ranks: another rank's cleaner of temporary files (save_async under a prefix) locked
    // rank 0's new directory for a moment, and rank 0 then failed to create it again.
    const auto dir = fresh("trust_cleaner_leaves");
    hooks_reset reset;
    cleaner_joined joined;
    created_temporaries = 0;
    ckpt::detail::temporary_created_hook = take_first_temporary<true, true>;
    const auto temp = dir / (std::string("left") + ckpt::detail::temp_marker + "1.0");
    const auto held = ckpt::detail::make_held_directory(temp);
    ckpt::detail::temporary_created_hook = nullptr;
    if (cleaner.joinable()) cleaner.join();
    CHECK(static_cast<bool>(held));
    CHECK(created_temporaries == 1);
    CHECK(fs::is_directory(temp));
}
