// A full disk under a manager: the error says how much the save needed and how much is free,
// and that deleting old checkpoints first is the caller's decision; ckpt::rotate_before_save
// makes that decision for a disk with room for exactly the checkpoints the policies keep.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include "../support/files.hpp"
#include "../support/process.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;

namespace {

using ckpt_test::names;

struct training_state {
    Eigen::MatrixXf weights = Eigen::MatrixXf::Random(256, 256);  // 256 KiB: two fit in 600 KiB, not three
    std::int64_t step = 0;
};

fs::path fresh(const std::string& dir) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    return fs::absolute(dir);
}

bool has_temp_files(const fs::path& dir) {
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (ckpt::detail::is_temp_name(e.path())) return true;
    return false;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The message of a full disk under a manager: what was needed, what is free, whose call it is.
bool explains_full_disk(const ckpt::io_error& e) {
    const std::string what = e.what();
    const bool ok = e.code() == std::errc::no_space_on_device && contains(what, "needs about ") &&
                    contains(what, " bytes (the size of the latest checkpoint, ckpt-2)") &&
                    contains(what, " bytes are free") && contains(what, "deleting first is your call") &&
                    contains(what, "ckpt::rotate_before_save") && contains(what, "No space left on device");
    if (!ok) std::fprintf(stderr, "not explained: %s\n", what.c_str());
    return ok;
}

// A tmpfs of the child's own in `dir`, or a failure saying why (never a silent skip).
#define MOUNT_OR_FAIL(dir)                                                   \
    do {                                                                     \
        const auto why = ckpt_test::mount_private_tmpfs((dir), "size=600k"); \
        if (!why.empty()) {                                                  \
            std::fprintf(stderr, "%s\n", why.c_str());                       \
            return 20;                                                       \
        }                                                                    \
    } while (false)

}  // namespace

TEST_CASE("a full disk: the manager's error says what the save needed and what is free", "[manager][faults]") {
    if (::geteuid() != 0) WARN("not root: the private tmpfs below cannot be mounted, and the test fails");
    const auto dir = fresh("manager_full_disk_error");
    const int status = ckpt_test::in_child([&] {
        MOUNT_OR_FAIL(dir.string());
        training_state s;
        ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2)};
        mgr.save(1);
        s.step = 2;
        mgr.save(2);
        s.step = 3;
        try {
            mgr.save(3);  // no room for a third, and keep_last(2) deletes only after a save succeeded
            return 21;
        } catch (const ckpt::io_error& e) {
            if (!explains_full_disk(e)) return 22;
        }
        if (names(mgr.checkpoints()) != std::vector<std::string>{"ckpt-1", "ckpt-2"}) return 23;
        if (has_temp_files(dir)) return 24;
        return 0;
    });
    CHECK(status == 0);
}

TEST_CASE("a full disk: an asynchronous save's error explains it too, at the next wait", "[manager][faults][async]") {
    const auto dir = fresh("manager_full_disk_async");
    const int status = ckpt_test::in_child([&] {
        MOUNT_OR_FAIL(dir.string());
        training_state s;
        ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2), ckpt::asynchronous};
        for (s.step = 1; s.step <= 2; ++s.step) mgr.save_if_due(s.step, true);
        s.step = 3;
        mgr.save_if_due(3, true);
        try {
            mgr.wait();
            return 21;
        } catch (const ckpt::io_error& e) {
            if (!explains_full_disk(e)) return 22;
        }
        if (names(mgr.checkpoints()) != std::vector<std::string>{"ckpt-1", "ckpt-2"}) return 23;
        return has_temp_files(dir) ? 24 : 0;
    });
    CHECK(status == 0);
}

TEST_CASE("ckpt::rotate_before_save: a disk with room for the kept checkpoints only keeps progressing",
          "[manager][faults]") {
    const auto dir = fresh("manager_full_disk_rotate");
    const int status = ckpt_test::in_child([&] {
        MOUNT_OR_FAIL(dir.string());
        training_state s;
        ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2), ckpt::rotate_before_save};
        for (s.step = 1; s.step <= 6; ++s.step) {
            mgr.save(s.step);  // before each save, the oldest of the two goes: the new one fits
            if (mgr.checkpoints().size() > 2) return 21;
        }
        if (names(mgr.checkpoints()) != std::vector<std::string>{"ckpt-5", "ckpt-6"}) return 22;
        if (fs::exists(dir / "ckpt-4")) return 23;
        const auto on_disk = ckpt::read_manager_records(dir);
        if (!on_disk || on_disk->size() != 2) return 25;
        return has_temp_files(dir) ? 26 : 0;
    });
    CHECK(status == 0);
}

TEST_CASE("ckpt::rotate_before_save's risk: killed between the deletion and the new save", "[manager][crash]") {
    const auto dir = fresh("manager_full_disk_rotate_crash");
    const int status = ckpt_test::in_child([&] {
        training_state s;
        ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2), ckpt::rotate_before_save};
        for (s.step = 1; s.step <= 2; ++s.step) mgr.save(s.step);
        ckpt::detail::manager_test_hook = [](ckpt::detail::manager_point p) {
            if (p == ckpt::detail::manager_point::deleted) ::_exit(9);  // ckpt-1 deleted, ckpt-3 not written
        };
        mgr.save(3);
        return 1;
    });
    REQUIRE(status == 9);
    // One checkpoint fewer than keep_last(2) says, every one listed loadable, nothing unaccounted for.
    training_state s;
    ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2), ckpt::rotate_before_save};
    CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"ckpt-2"});
    CHECK_FALSE(fs::exists(dir / "ckpt-1"));
    CHECK(*mgr.restore_or_initialize() == dir / "ckpt-2");
    CHECK(s.step == 2);
    CHECK_FALSE(has_temp_files(dir));
    s.step = 3;
    mgr.save(3);
    CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"ckpt-2", "ckpt-3"});
}
