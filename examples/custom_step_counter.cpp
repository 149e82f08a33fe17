// Seeds 000 ex. 2 and 001 ex. 2: a step counter that lives in the checkpoint, so a restarted run
// continues counting where the last one stopped; a checkpoint every 3 steps.

#include <ckpt/ckpt.hpp>

#include <cstdio>

#include "example_args.hpp"
#include "mlp_fields.hpp"

int main(int argc, char** argv) {
    const auto dir = demo::checkpoint_dir(argc, argv, "custom_step_counter_ckpts");
    const demo::dataset data = demo::make_dataset(3);
    demo::mlp model;
    demo::adam optimizer;
    demo::data_cursor cursor;
    std::mt19937_64 rng(3);
    std::int64_t step = 0;  // the custom training step counter
    ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("optimizer", optimizer), ckpt::track("step", step),
                        ckpt::track("data", cursor), ckpt::track("rng", rng)};
    ckpt::checkpoint_manager manager{ck, dir, ckpt::keep_last(5), ckpt::save_every_n_steps(3)};
    manager.restore_or_initialize([&] { demo::init_model(model, optimizer, 3); });
    const std::int64_t initial = step;
    std::printf("Initial step: %lld\n", static_cast<long long>(initial));

    for (int i = 0; i < 10; ++i) {
        const auto r = demo::train_step(model, optimizer, data, cursor, rng);
        ++step;
        std::printf("step %lld loss %.4f", static_cast<long long>(step), r.loss);
        if (auto saved = manager.save_if_due(step)) std::printf("  -> saved %s", saved->filename().c_str());
        std::printf("\n");
    }
    // The step is in the checkpoint: the latest holds the step it was saved at.
    std::int64_t saved_step = 0;
    ckpt::reader(*manager.latest_checkpoint()).read("step", saved_step);
    if (saved_step % 3 != 0 || saved_step <= initial)
        demo::fail("the latest checkpoint holds a step that is a multiple of 3");
    std::printf("latest checkpoint holds step %lld\n", static_cast<long long>(saved_step));
    return 0;
}
