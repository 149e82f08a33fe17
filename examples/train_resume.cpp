// The flagship example: interruption-safe training that resumes bit for bit.
//
//   train_resume [--dir DIR] [--steps N] [--save-every K] [--keep N] [--async] [--seed S]
//                [--print-every P] [--sleep-ms-per-step MS] [--crash-during-save N]
//
// Trains a small MLP with Adam on a seeded synthetic task. Restores from DIR when it holds a
// checkpoint, saves every K steps through a checkpoint_manager, and prints `final_digest=<hex>`,
// a hash of the final model and optimizer bytes. On SIGTERM, SIGINT or SIGUSR1 it saves at the
// next step boundary, prints `interrupted at step S; saved PATH` and exits with status 75
// (EX_TEMPFAIL: run the same command again to resume). Killed outright (kill -9), even in the
// middle of a save, it resumes from the last complete checkpoint. Either way the rerun prints the
// same final_digest as a run that was never interrupted.
//
// Testing aids: --sleep-ms-per-step slows the loop so that a signal lands mid-run;
// --crash-during-save N makes the process SIGKILL itself halfway through writing its Nth save.

#include <ckpt/ckpt.hpp>
#include <ckpt/testing.hpp>

#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "mlp_fields.hpp"

namespace {

struct options {
    std::string dir = "train_resume_ckpts";
    std::int64_t steps = 2000, save_every = 100;
    std::size_t keep = 3;
    bool async = false;
    std::uint64_t seed = 1;
    std::int64_t print_every = 100;
    int sleep_ms = 0;
    int crash_during_save = 0;
};

[[noreturn]] void usage(const char* error) {
    std::fprintf(stderr,
                 "train_resume: %s\nusage: train_resume [--dir DIR] [--steps N] [--save-every K] [--keep N] [--async] "
                 "[--seed S]\n"
                 "                    [--print-every P] [--sleep-ms-per-step MS] [--crash-during-save N]\n",
                 error);
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(("missing value for " + a).c_str());
            return argv[++i];
        };
        try {
            if (a == "--dir")
                o.dir = value();
            else if (a == "--steps")
                o.steps = std::stoll(value());
            else if (a == "--save-every")
                o.save_every = std::stoll(value());
            else if (a == "--keep")
                o.keep = std::stoul(value());
            else if (a == "--async")
                o.async = true;
            else if (a == "--seed")
                o.seed = std::stoull(value());
            else if (a == "--print-every")
                o.print_every = std::stoll(value());
            else if (a == "--sleep-ms-per-step")
                o.sleep_ms = std::stoi(value());
            else if (a == "--crash-during-save")
                o.crash_during_save = std::stoi(value());
            else if (a == "--help" || a == "-h")
                usage("help");
            else
                usage(("unknown argument " + a).c_str());
        } catch (const std::logic_error&) {
            usage(("bad value for " + a).c_str());
        }
    }
    if (o.steps < 0 || o.save_every <= 0 || o.keep == 0 || o.print_every <= 0) usage("counts must be positive");
    return o;
}

// --crash-during-save: die by SIGKILL at the first write after half of the Nth save's writes.
int saves_started = 0, writes_in_save = 0;
int crash_during_save = 0;
int crash_on_write(ckpt::testing::io_op op, const std::filesystem::path& path) {
    const std::string name = path.filename().string();
    if (op == ckpt::testing::io_op::create && name.rfind("ckpt-", 0) == 0 && name.size() > 5 &&
        std::isdigit(static_cast<unsigned char>(name[5]))) {
        ++saves_started;
        writes_in_save = 0;
    }
    if (op == ckpt::testing::io_op::write && saves_started == crash_during_save && ++writes_in_save == 2)
        ::raise(SIGKILL);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const options opt = parse(argc, argv);
    Eigen::setNbThreads(1);  // bit-reproducible arithmetic
    if (opt.crash_during_save > 0) {
        crash_during_save = opt.crash_during_save;
        ckpt::testing::io_fault_injector = crash_on_write;
    }

    const demo::dataset data = demo::make_dataset(opt.seed);
    demo::mlp model;
    demo::adam optimizer;
    demo::data_cursor cursor;
    std::mt19937_64 shuffle_rng(opt.seed + 1);
    std::int64_t step = 0;

    ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("optimizer", optimizer), ckpt::track("step", step),
                        ckpt::track("data", cursor), ckpt::track("shuffle_rng", shuffle_rng)};
    // The guard first: a signal that arrives while the manager restores is kept for the loop.
    ckpt::interrupt_guard guard{SIGTERM, SIGINT, SIGUSR1};
    std::optional<ckpt::checkpoint_manager> manager;
    if (opt.async)
        manager.emplace(ck, opt.dir, ckpt::keep_last(opt.keep), ckpt::save_every_n_steps(opt.save_every),
                        ckpt::asynchronous);
    else
        manager.emplace(ck, opt.dir, ckpt::keep_last(opt.keep), ckpt::save_every_n_steps(opt.save_every));

    if (auto from = manager->restore_or_initialize([&] { demo::init_model(model, optimizer, opt.seed); }))
        std::printf("resumed from %s at step %lld\n", from->c_str(), static_cast<long long>(step));
    else
        std::printf("starting from scratch\n");
    std::fflush(stdout);

    while (step < opt.steps) {
        const auto r = demo::train_step(model, optimizer, data, cursor, shuffle_rng);
        ++step;
        if (step % opt.print_every == 0) {
            std::printf("step %lld loss %.4f batch accuracy %.3f epoch %lld\n", static_cast<long long>(step), r.loss,
                        r.accuracy, static_cast<long long>(cursor.epoch));
            std::fflush(stdout);
        }
        const bool interrupted = guard.requested();
        const auto saved = manager->save_if_due(step, interrupted || step == opt.steps);
        if (interrupted) {
            manager->wait();  // durable before we say so
            const auto path = saved ? *saved : *manager->latest_checkpoint();
            std::printf("interrupted at step %lld; saved %s\n", static_cast<long long>(step), path.c_str());
            return 75;
        }
        if (opt.sleep_ms) std::this_thread::sleep_for(std::chrono::milliseconds(opt.sleep_ms));
    }
    manager->wait();
    std::printf("accuracy %.3f after %lld steps\n", demo::evaluate(model, data), static_cast<long long>(step));
    std::printf("final_digest=%016llx\n", static_cast<unsigned long long>(demo::digest(model, optimizer)));
    return 0;
}
