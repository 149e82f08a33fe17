// Faults during a save: whatever the system refuses, the save throws ckpt::io_error naming the path
// and the system's reason, the previous checkpoint stays intact, no temporary file is left, and
// the next save works once the cause is gone.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include "support/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct training_state {
    Eigen::MatrixXf weights = Eigen::MatrixXf::Random(256, 256);  // 256 KiB
    std::int64_t step = 0;
};

fs::path fresh_dir(const std::string& name) {
    fs::remove_all(name);
    fs::create_directories(name);
    return name;
}

bool has_temp_files(const fs::path& dir) {
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (ckpt::detail::is_temp_name(e.path())) return true;
    return false;
}

// Restores `file` into fresh objects and returns the step it held.
std::int64_t restored_step(const fs::path& file, const Eigen::MatrixXf& expected_weights) {
    training_state s;
    s.weights.resize(0, 0);
    ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
    ck.restore(file).assert_consumed();
    REQUIRE(s.weights == expected_weights);
    return s.step;
}

ckpt::detail::io_op failing_op;
int failing_errno = 0;
int inject(ckpt::detail::io_op op, const fs::path&) { return op == failing_op ? failing_errno : 0; }

struct injector_reset {
    ~injector_reset() { ckpt::detail::io_fault_injector = nullptr; }
};

using ckpt_test::in_child;

}  // namespace

TEST_CASE("every failing system call during a save gives io_error and keeps the previous checkpoint", "[faults]") {
    using op = ckpt::detail::io_op;
    const struct {
        op which;
        int err;
        const char* reason;
    } cases[] = {
        {op::create, EACCES, "Permission denied"},  {op::write, ENOSPC, "No space left on device"},
        {op::write, EDQUOT, "Disk quota exceeded"}, {op::fsync, EIO, "Input/output error"},
        {op::close, EIO, "Input/output error"},     {op::rename, EXDEV, "Invalid cross-device link"},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION("failing " << static_cast<int>(c.which) << " with " << c.reason) {
            const auto dir = fresh_dir("faults_syscalls");
            training_state s;
            ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
            s.step = 1;
            const auto first = ck.save(dir / "ckpt");
            const Eigen::MatrixXf first_weights = s.weights;

            s.step = 2;
            s.weights.setRandom();
            injector_reset reset;
            failing_op = c.which;
            failing_errno = c.err;
            ckpt::detail::io_fault_injector = inject;
            try {
                ck.save(dir / "ckpt");
                FAIL("the save should have failed");
            } catch (const ckpt::io_error& e) {
                CHECK(e.code().value() == c.err);
                CHECK_THAT(e.what(), Catch::Contains(c.reason) && Catch::Contains("faults_syscalls/ckpt-2"));
            }
            ckpt::detail::io_fault_injector = nullptr;

            CHECK_FALSE(has_temp_files(dir));
            CHECK_FALSE(fs::exists(dir / "ckpt-2"));
            CHECK(ck.save_counter() == 1);
            CHECK(restored_step(first, first_weights) == 1);
            CHECK(*ckpt::latest_checkpoint(dir) == first);

            const auto second = ck.save(dir / "ckpt");  // the cause is gone: saving works again
            CHECK(second == dir / "ckpt-2");
            CHECK(restored_step(second, s.weights) == 2);
        }
    }
}

TEST_CASE("a failing directory fsync after the rename is reported, and the file is complete", "[faults]") {
    const auto dir = fresh_dir("faults_dir_fsync");
    training_state s;
    ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
    injector_reset reset;
    failing_op = ckpt::detail::io_op::fsync_directory;
    failing_errno = EIO;
    ckpt::detail::io_fault_injector = inject;
    CHECK_THROWS_AS(ck.write(dir / "exact"), ckpt::io_error);
    ckpt::detail::io_fault_injector = nullptr;
    CHECK_FALSE(has_temp_files(dir));
    CHECK(restored_step(dir / "exact", s.weights) == 0);
}

TEST_CASE("the file size limit (EFBIG) fails the save cleanly", "[faults]") {
    const auto dir = fresh_dir("faults_fsize");
    const int status = in_child([&] {
        training_state s;
        ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
        s.weights = Eigen::MatrixXf::Constant(8, 8, 1.0f);  // small: fits under the limit
        const auto small = ck.save(dir / "ckpt");
        std::signal(SIGXFSZ, SIG_IGN);
        rlimit limit{64 << 10, 64 << 10};
        if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 10;
        s.weights = Eigen::MatrixXf::Random(256, 256);
        try {
            ck.save(dir / "ckpt");
            return 11;
        } catch (const ckpt::io_error& e) {
            if (e.code().value() != EFBIG) return 12;
        }
        if (has_temp_files(dir) || fs::exists(dir / "ckpt-2")) return 13;
        training_state back;
        back.weights.resize(0, 0);
        ckpt::checkpoint restore{ckpt::track("weights", back.weights), ckpt::track("step", back.step)};
        restore.restore(small);
        return back.weights == Eigen::MatrixXf::Constant(8, 8, 1.0f) ? 0 : 14;
    });
    CHECK(status == 0);
}

TEST_CASE("a full and then read-only file system (a private tmpfs)", "[faults]") {
    const auto dir = fs::absolute(fresh_dir("faults_tmpfs"));
    const int status = in_child([&] {
        // A mount namespace of the child's own: the tmpfs disappears with it.
        if (::unshare(CLONE_NEWNS) != 0) return 20;
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 21;
        if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=600k") != 0) return 22;
        training_state s;  // 256 KiB of weights: two checkpoints fit, the third does not
        ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
        ck.save(dir / "ckpt");
        s.step = 2;
        const auto second = ck.save(dir / "ckpt");
        const Eigen::MatrixXf second_weights = s.weights;
        s.step = 3;
        s.weights.setRandom();
        try {
            ck.save(dir / "ckpt");
            return 23;
        } catch (const ckpt::io_error& e) {
            if (e.code().value() != ENOSPC ||
                std::string(e.what()).find("No space left on device") == std::string::npos)
                return 24;
        }
        if (has_temp_files(dir)) return 25;
        {
            training_state back;
            ckpt::checkpoint restore{ckpt::track("weights", back.weights), ckpt::track("step", back.step)};
            restore.restore(second);
            if (back.step != 2 || back.weights != second_weights) return 26;
        }
        fs::remove(dir / "ckpt-1");
        if (::mount(nullptr, dir.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) != 0) return 27;
        try {
            ck.save(dir / "ckpt");
            return 28;
        } catch (const ckpt::io_error& e) {
            if (e.code().value() != EROFS) return 29;
        }
        if (::mount(nullptr, dir.c_str(), nullptr, MS_REMOUNT, "size=600k") != 0) return 30;
        ck.save(dir / "ckpt");  // writable again: the manager of this state carries on
        return has_temp_files(dir) ? 31 : 0;
    });
    CHECK(status == 0);
}

TEST_CASE("a checkpoint directory replaced by a file", "[faults]") {
    const auto dir = fresh_dir("faults_replaced");
    training_state s;
    ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
    ck.save(dir / "run" / "ckpt");
    fs::remove_all(dir / "run");
    std::ofstream(dir / "run") << "not a directory";
    try {
        ck.save(dir / "run" / "ckpt");
        FAIL("the save should have failed");
    } catch (const ckpt::io_error& e) {
        CHECK_THAT(e.what(), Catch::Contains("faults_replaced/run"));
    }
    fs::remove(dir / "run");
    CHECK(ck.save(dir / "run" / "ckpt") == dir / "run" / "ckpt-2");  // a removed directory is made again
}
