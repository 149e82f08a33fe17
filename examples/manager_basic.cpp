// Seed 000, example 1: a CheckpointManager keeping 3 checkpoints, restoring the latest at start,
// saving every 2 steps of a 10-step training loop.

#include <ckpt/ckpt.hpp>

#include <cstdio>

#include "example_args.hpp"
#include "mlp_fields.hpp"

int main(int argc, char** argv) {
    const auto dir = demo::checkpoint_dir(argc, argv, "manager_basic_ckpts");
    const demo::dataset data = demo::make_dataset(2);
    demo::mlp model;
    demo::adam optimizer;
    demo::data_cursor cursor;
    std::mt19937_64 rng(2);
    std::int64_t step = 0;
    ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("optimizer", optimizer), ckpt::track("step", step),
                        ckpt::track("data", cursor), ckpt::track("rng", rng)};
    ckpt::checkpoint_manager manager{ck, dir, ckpt::keep_last(3), ckpt::save_every_n_steps(2)};

    if (auto from = manager.restore_or_initialize([&] { demo::init_model(model, optimizer, 2); }))
        std::printf("Restored from %s\n", from->c_str());
    else
        std::printf("Initializing from scratch.\n");

    for (int i = 0; i < 10; ++i) {
        const auto r = demo::train_step(model, optimizer, data, cursor, rng);
        ++step;
        if (auto saved = manager.save_if_due(step))
            std::printf("Saved checkpoint for step %lld: %s (loss %.4f)\n", static_cast<long long>(step),
                        saved->c_str(), r.loss);
    }
    std::printf("The manager keeps:");
    for (const auto& p : manager.checkpoints()) std::printf(" %s", p.filename().c_str());
    std::printf("\n");
    if (manager.checkpoints().size() != 3) demo::fail("keep_last(3) keeps three checkpoints");
    return 0;
}
