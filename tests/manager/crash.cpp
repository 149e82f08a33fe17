// A crash at every point of a manager's save (after the write, after recording it, after deleting
// what the policies drop) leaves a directory whose latest checkpoint loads, whose state lists only
// loadable checkpoints, with no temporary file and no checkpoint unaccounted for.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include <filesystem>

#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct training_state {
    Eigen::MatrixXf weights = Eigen::MatrixXf::Random(16, 16);
    std::int64_t step = 0;
};

ckpt::detail::manager_point crash_at;
void crash(ckpt::detail::manager_point p) {
    if (p == crash_at) ::_exit(9);
}

std::int64_t restore_step(const fs::path& file) {
    training_state s;
    ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
    ck.restore(file).assert_consumed();
    return s.step;
}

}  // namespace

TEST_CASE("a crash between any two steps of save-record-delete loses nothing", "[manager][crash]") {
    using point = ckpt::detail::manager_point;
    for (const auto where : {point::written, point::recorded, point::deleted}) {
        DYNAMIC_SECTION("crash after step " << static_cast<int>(where)) {
            const fs::path dir = "manager_crash_" + std::to_string(static_cast<int>(where));
            fs::remove_all(dir);
            const pid_t pid = ::fork();
            if (pid == 0) {
                training_state s;
                ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
                ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2)};
                for (s.step = 1; s.step <= 3; ++s.step) mgr.save(s.step);
                crash_at = where;
                ckpt::detail::manager_test_hook = crash;
                mgr.save(s.step);  // step 4: dies inside
                ::_exit(1);
            }
            int status = 0;
            ::waitpid(pid, &status, 0);
            REQUIRE(WIFEXITED(status));
            REQUIRE(WEXITSTATUS(status) == 9);

            training_state s;
            ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
            ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2)};
            // The checkpoint of step 4 was complete in every case: it is the latest.
            CHECK(*mgr.latest_checkpoint() == dir / "ckpt-4");
            CHECK(restore_step(*mgr.latest_checkpoint()) == 4);
            for (const auto& p : mgr.checkpoints()) CHECK(restore_step(p) > 0);
            // Every checkpoint file in the directory is one the manager lists.
            for (const auto& e : fs::directory_iterator(dir)) {
                const auto name = e.path().filename().string();
                CHECK(name.find(".ckpt-tmp.") == std::string::npos);
                if (name.rfind("ckpt-", 0) == 0 && name != "ckpt-state") {
                    const auto listed = mgr.checkpoints();
                    CHECK(std::find(listed.begin(), listed.end(), e.path()) != listed.end());
                }
            }
            s.step = 5;
            mgr.save(5);  // carries on, and the policy catches up
            CHECK(mgr.checkpoints().size() == 2);
            CHECK(*mgr.latest_checkpoint() == dir / "ckpt-5");
        }
    }
}
