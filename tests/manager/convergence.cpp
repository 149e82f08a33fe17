// A manager converges after a failure to record a save (issue 12, item 3): a full disk at the state
// file, and an asynchronous save whose record fails, never wedge later saves.

#include <ckpt/ckpt.hpp>
#include <ckpt/testing.hpp>

#include <catch2/catch.hpp>

#include "../support/files.hpp"
#include "../support/models.hpp"
#include "../support/process.hpp"

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

using ckpt_test::names;

using model = ckpt_test::small_model;

using ckpt_test::in_child;

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

ckpt::save_options at_step(std::int64_t step) {
    ckpt::save_options o;
    o.step = step;
    return o;
}

struct hooks_reset {
    ~hooks_reset() {
        ckpt::detail::io_fault_injector = nullptr;
        ckpt::detail::manager_test_hook = nullptr;
        ckpt::testing::thread_start_injector = nullptr;
    }
};

}  // namespace

// ---- 3.: a full disk at the state file ---------------------------------------------------------

namespace {

// Fills the file system of `dir` with empty files until exactly `left` inodes remain free.
int fill_inodes(const fs::path& dir, unsigned long left, int& made) {
    struct statvfs st {};
    for (;;) {
        if (::statvfs(dir.c_str(), &st) != 0) return 40;
        if (st.f_favail <= left) return st.f_favail == left ? 0 : 41;
        std::ofstream f(dir / ("filler-" + std::to_string(made++)));
        if (!f) return 42;
    }
}
void free_inodes(const fs::path& dir, int& made, int count) {
    for (int i = 0; i < count && made > 0; ++i) fs::remove(dir / ("filler-" + std::to_string(--made)));
}

}  // namespace

TEST_CASE("a full disk at the state file: the manager converges once there is room", "[trust][manager][faults]") {
    const auto dir = fs::absolute(fresh("trust_full_state"));
    const int status = in_child([&] {
        // A private tmpfs with few inodes: the checkpoint takes the last one, the state file's
        // temporary finds none (ENOSPC), exactly as a nearly full disk does.
        if (::unshare(CLONE_NEWNS) != 0) return 20;
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 21;
        if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=16m,nr_inodes=200") != 0) return 22;
        model m;
        ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
        int made = 0;
        {
            // With a policy to apply: rotating frees what recording needs, and the save succeeds.
            fs::create_directories(dir / "rotating");
            ckpt::checkpoint_manager mgr{ck, dir / "rotating", ckpt::keep_last(1)};
            mgr.save(1);
            if (int rc = fill_inodes(dir, 1, made)) return rc;
            m.step = 2;
            mgr.save(2);  // before the fix: ENOSPC, and every later save too
            if (names(mgr.checkpoints()) != std::vector<std::string>{"ckpt-2"}) return 23;
            if (fs::exists(dir / "rotating" / "ckpt-1")) return 24;
            const auto on_disk = ckpt::read_manager_records(dir / "rotating");
            if (!on_disk || on_disk->size() != 1 || on_disk->back().name != "ckpt-2") return 36;
        }
        free_inodes(dir, made, made);
        {
            // Nothing to rotate: the save reports that its checkpoint was written; the next save,
            // once there is room, records both.
            fs::create_directories(dir / "keeping");
            ckpt::checkpoint_manager mgr{ck, dir / "keeping"};
            mgr.save(1);
            if (int rc = fill_inodes(dir, 1, made)) return rc;
            m.step = 2;
            try {
                mgr.save(2);
                return 25;
            } catch (const ckpt::io_error& e) {
                if (e.code().value() != ENOSPC) return 26;
                if (std::string(e.what()).find("checkpoint itself was written") == std::string::npos) return 27;
            }
            if (restored_step(dir / "keeping" / "ckpt-2") != 2) return 28;
            free_inodes(dir, made, 4);
            m.step = 3;
            mgr.save(3);
            if (names(mgr.checkpoints()) != std::vector<std::string>{"ckpt-1", "ckpt-2", "ckpt-3"}) return 29;
            const auto on_disk = ckpt::read_manager_records(dir / "keeping");
            if (!on_disk || on_disk->size() != 3) return 30;

            // Failing again, then the manager goes away: the next one records it and applies its policies.
            if (int rc = fill_inodes(dir, 1, made)) return rc;
            m.step = 4;
            try {
                mgr.save(4);
                return 31;
            } catch (const ckpt::io_error&) {}
        }
        {
            // Reopened while the disk is still full and there is nothing to rotate: it opens (a
            // restarted training can restore), and lists what is on disk.
            ckpt::checkpoint_manager full{ck, dir / "keeping"};
            if (names(full.checkpoints()) != std::vector<std::string>{"ckpt-1", "ckpt-2", "ckpt-3", "ckpt-4"})
                return 37;
            m.step = 0;
            if (full.restore_or_initialize() != dir / "keeping" / "ckpt-4" || m.step != 4) return 38;
        }
        free_inodes(dir, made, 4);
        // The next manager records it at the open, and applies its policies at its first save
        // (opening never deletes).
        ckpt::checkpoint_manager reopened{ck, dir / "keeping", ckpt::keep_last(2)};
        if (names(reopened.checkpoints()) != std::vector<std::string>{"ckpt-1", "ckpt-2", "ckpt-3", "ckpt-4"})
            return 32;
        m.step = 5;
        reopened.save(5);
        if (names(reopened.checkpoints()) != std::vector<std::string>{"ckpt-4", "ckpt-5"}) return 32;
        if (fs::exists(dir / "keeping" / "ckpt-1") || fs::exists(dir / "keeping" / "ckpt-3")) return 33;
        const auto on_disk = ckpt::read_manager_records(dir / "keeping");
        if (!on_disk || on_disk->size() != 2) return 34;
        return has_temp_files(dir / "keeping") ? 35 : 0;
    });
    CHECK(status == 0);
}

TEST_CASE("an asynchronous save whose record fails keeps its number, and the next save converges",
          "[trust][manager][async]") {
    const auto dir = fresh("trust_async_record");
    hooks_reset reset;
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2)};
    mgr.save(1);
    static std::atomic<bool> fail_state{false};
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path& p) {
        return fail_state && op == ckpt::detail::io_op::create && p.filename().string().rfind("ckpt-state", 0) == 0
                   ? ENOSPC
                   : 0;
    };
    fail_state = true;
    mgr.save_async(at_step(2));
    CHECK_THROWS_WITH(mgr.wait(), Catch::Contains("checkpoint itself was written") && Catch::Contains("ckpt-2"));
    CHECK(ck.save_counter() == 2);  // the file holds save 2: the number is not given out again
    fail_state = false;
    mgr.save(3);
    CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"ckpt-2", "ckpt-3"});
    CHECK(ckpt::reader(dir / "ckpt-3").metadata().save_counter == 3);
    CHECK(ckpt::read_manager_records(dir)->size() == 2);
}
