// Seed 000, example 3: the model and the optimizer in separate checkpoints with their own managers,
// then a fine-tune that reloads only the model weights and starts with a fresh optimizer.

#include <ckpt/ckpt.hpp>

#include <cstdio>

#include "example_args.hpp"
#include "mlp_fields.hpp"

int main(int argc, char** argv) {
    const auto dir = demo::checkpoint_dir(argc, argv, "separate_model_optimizer_ckpts");
    const demo::dataset data = demo::make_dataset(4);
    demo::mlp model;
    demo::adam optimizer;
    demo::data_cursor cursor;
    std::mt19937_64 rng(4);
    std::int64_t step = 0;
    ckpt::checkpoint model_ck{ckpt::track("model", model)};
    ckpt::checkpoint optimizer_ck{ckpt::track("optimizer", optimizer), ckpt::track("step", step),
                                  ckpt::track("data", cursor), ckpt::track("rng", rng)};
    {
        ckpt::checkpoint_manager model_manager{model_ck, dir / "model", ckpt::keep_last(2)};
        ckpt::checkpoint_manager optimizer_manager{optimizer_ck, dir / "optimizer", ckpt::keep_last(2)};
        demo::init_model(model, optimizer, 4);
        if (auto m = model_manager.restore_or_initialize()) std::printf("model restored from %s\n", m->c_str());
        if (auto o = optimizer_manager.restore_or_initialize()) std::printf("optimizer restored from %s\n", o->c_str());
        for (int i = 0; i < 6; ++i) {
            demo::train_step(model, optimizer, data, cursor, rng);
            ++step;
        }
        std::printf("trained to step %lld; saved %s and %s\n", static_cast<long long>(step),
                    model_manager.save(step).c_str(), optimizer_manager.save(step).c_str());
    }

    // Fine-tuning: the pretrained weights, a fresh optimizer with a smaller learning rate.
    demo::mlp tuned;
    demo::adam fresh;
    demo::init_model(tuned, fresh, 99);
    fresh.lr = 1e-4f;
    ckpt::checkpoint weights_only{ckpt::track("model", tuned)};
    const auto latest = *ckpt::latest_checkpoint(dir / "model");
    weights_only.restore(latest).assert_consumed();
    if (tuned.hidden.kernel != model.hidden.kernel) demo::fail("the fine-tune starts from the saved weights");
    if (fresh.iterations != 0) demo::fail("the fine-tune's optimizer is fresh");
    demo::data_cursor tune_cursor;
    std::mt19937_64 tune_rng(5);
    float loss = 0;
    for (int i = 0; i < 5; ++i) loss = demo::train_step(tuned, fresh, data, tune_cursor, tune_rng).loss;
    std::printf("fine-tuned from %s with a fresh optimizer: 5 steps, loss %.4f, optimizer iterations %lld\n",
                latest.c_str(), loss, static_cast<long long>(fresh.iterations));
    return 0;
}
