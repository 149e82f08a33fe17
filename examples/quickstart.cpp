// The basic scenario of the TensorFlow guides: a model, its optimizer and a step counter in one
// checkpoint; restore the latest if there is one; train 10 steps, saving every 2; then check that
// fresh objects restored from the latest checkpoint equal what was saved.

#include <ckpt/ckpt.hpp>

#include <cstdio>

#include "example_args.hpp"
#include "mlp_training.hpp"

namespace demo {
CKPT_FIELDS(dense, kernel, bias)
CKPT_FIELDS(mlp, hidden, out)
}  // namespace demo

int main(int argc, char** argv) {
    const auto dir = demo::checkpoint_dir(argc, argv, "quickstart_ckpts");
    const demo::dataset data = demo::make_dataset(1);
    demo::mlp model;
    demo::adam optimizer;  // no annotation: its fields are named by position
    demo::data_cursor cursor;
    std::mt19937_64 rng(7);
    std::int64_t step = 0;
    ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("optimizer", optimizer), ckpt::track("step", step),
                        ckpt::track("data", cursor), ckpt::track("rng", rng)};

    if (auto latest = ckpt::latest_checkpoint(dir)) {
        ck.restore(*latest).assert_consumed();
        std::printf("restored from %s: step %lld\n", latest->c_str(), static_cast<long long>(step));
    } else {
        demo::init_model(model, optimizer, 1);
        std::printf("initializing from scratch\n");
    }

    for (int i = 0; i < 10; ++i) {
        const auto r = demo::train_step(model, optimizer, data, cursor, rng);
        ++step;
        if (step % 2 == 0)
            std::printf("step %lld loss %.4f: saved %s\n", static_cast<long long>(step), r.loss,
                        ck.save(dir / "ckpt").c_str());
    }

    // Rebuild the objects from nothing and restore: the weights must equal the saved ones.
    demo::mlp restored;
    demo::adam restored_optimizer;
    demo::data_cursor restored_cursor;
    std::mt19937_64 restored_rng;
    std::int64_t restored_step = 0;
    ckpt::checkpoint check{ckpt::track("model", restored), ckpt::track("optimizer", restored_optimizer),
                           ckpt::track("step", restored_step), ckpt::track("data", restored_cursor),
                           ckpt::track("rng", restored_rng)};
    const auto latest = *ckpt::latest_checkpoint(dir);
    check.restore(latest).assert_consumed();
    const bool equal = restored.hidden.kernel == model.hidden.kernel && restored.out.bias == model.out.bias &&
                       restored_optimizer.m[2] == optimizer.m[2] && restored_step == step && restored_rng == rng;
    std::printf("restored %s into fresh objects: %s\n", latest.c_str(),
                equal ? "weights, optimizer, step and rng equal the saved ones" : "MISMATCH");
    return equal ? 0 : 1;
}
