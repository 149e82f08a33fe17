// ckpt::interrupt_guard: a signal becomes a request; a second one of the same kind falls through;
// handlers are restored exactly; guards nest.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include <csignal>
#include <cstring>

#include <sys/wait.h>
#include <unistd.h>

namespace {

struct sigaction current(int sig) {
    struct sigaction a {};
    ::sigaction(sig, nullptr, &a);
    return a;
}

// Only the handler: the C library may add flags of its own (SA_RESTORER) when one is installed.
bool same_handler(const struct sigaction& a, const struct sigaction& b) { return a.sa_handler == b.sa_handler; }

volatile std::sig_atomic_t custom_calls = 0;
void custom_handler(int) { custom_calls = custom_calls + 1; }

template <class F>
int child_status(F&& body) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        body();
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
}

}  // namespace

TEST_CASE("a guarded signal becomes a request, and the old handlers come back", "[interrupt]") {
    const auto term_before = current(SIGTERM), int_before = current(SIGINT), usr1_before = current(SIGUSR1);
    {
        ckpt::interrupt_guard guard{SIGTERM, SIGINT, SIGUSR1};
        CHECK_FALSE(same_handler(current(SIGUSR1), usr1_before));
        CHECK_FALSE(guard.requested());
        CHECK(guard.signal() == 0);
        std::raise(SIGUSR1);
        CHECK(guard.requested());
        CHECK(guard.signal() == SIGUSR1);
        guard.clear();
        CHECK_FALSE(guard.requested());
        std::raise(SIGTERM);
        CHECK(guard.signal() == SIGTERM);
        std::raise(SIGUSR1);  // a different signal while one is pending: the first one is kept
        CHECK(guard.signal() == SIGTERM);
    }
    CHECK(same_handler(current(SIGTERM), term_before));
    CHECK(same_handler(current(SIGINT), int_before));
    CHECK(same_handler(current(SIGUSR1), usr1_before));
}

TEST_CASE("the default guard takes SIGTERM and SIGINT", "[interrupt]") {
    ckpt::interrupt_guard guard;
    std::raise(SIGINT);
    CHECK(guard.signal() == SIGINT);
}

TEST_CASE("a second signal of the same kind falls through to the previous behaviour", "[interrupt]") {
    SECTION("the default action: the process dies by the signal") {
        const int status = child_status([] {
            std::signal(SIGTERM, SIG_DFL);
            ckpt::interrupt_guard guard;
            std::raise(SIGTERM);  // absorbed: a request
            if (!guard.requested()) ::_exit(3);
            std::raise(SIGTERM);  // falls through: SIG_DFL terminates
            ::_exit(4);
        });
        CHECK(WIFSIGNALED(status));
        CHECK(WTERMSIG(status) == SIGTERM);
    }
    SECTION("a handler the program had installed before is called") {
        const int status = child_status([] {
            std::signal(SIGUSR1, custom_handler);
            {
                ckpt::interrupt_guard guard{SIGUSR1};
                std::raise(SIGUSR1);
                if (custom_calls != 0 || !guard.requested()) ::_exit(3);
                std::raise(SIGUSR1);
                if (custom_calls != 1) ::_exit(4);
            }
            std::raise(SIGUSR1);  // the guard is gone: the old handler is back
            ::_exit(custom_calls == 2 ? 0 : 5);
        });
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
}

TEST_CASE("nested guards: the inner one takes the signals while it lives", "[interrupt]") {
    ckpt::interrupt_guard outer{SIGUSR1};
    {
        ckpt::interrupt_guard inner{SIGUSR1};
        std::raise(SIGUSR1);
        CHECK(inner.requested());
        CHECK_FALSE(outer.requested());
    }
    std::raise(SIGUSR1);
    CHECK(outer.requested());
}

TEST_CASE("signals that cannot be guarded are refused", "[interrupt]") {
    CHECK_THROWS_AS(ckpt::interrupt_guard({SIGKILL}), ckpt::error);
    CHECK_THROWS_WITH(ckpt::interrupt_guard({0}), Catch::Contains("cannot guard signal 0"));
    CHECK_THROWS_AS(ckpt::interrupt_guard({SIGTERM, 100000}), ckpt::error);
    CHECK(same_handler(current(SIGTERM), current(SIGTERM)));
}

TEST_CASE("a signal during a save: the save completes and the request is seen after it", "[interrupt]") {
    std::filesystem::remove_all("interrupt_save");
    Eigen::MatrixXf weights = Eigen::MatrixXf::Random(512, 512);
    std::int64_t step = 5;
    ckpt::checkpoint ck{ckpt::track("weights", weights), ckpt::track("step", step)};
    ckpt::interrupt_guard guard{SIGUSR1};
    static bool raised = false;  // once: a second SIGUSR1 would fall through and end the process
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const std::filesystem::path&) {
        if (op == ckpt::detail::io_op::write && !raised) {
            raised = true;
            std::raise(SIGUSR1);
        }
        return 0;
    };
    const auto path = ck.save("interrupt_save/ckpt");
    ckpt::detail::io_fault_injector = nullptr;
    CHECK(guard.requested());
    Eigen::MatrixXf back;
    std::int64_t back_step = 0;
    ckpt::checkpoint restore{ckpt::track("weights", back), ckpt::track("step", back_step)};
    restore.restore(path).assert_consumed();
    CHECK(back == weights);
    CHECK(back_step == 5);
}
