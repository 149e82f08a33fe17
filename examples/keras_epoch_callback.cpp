// Seed 004, example 2: like Keras's ModelCheckpoint(filepath="epoch_{epoch:03d}", save_freq=...),
// a checkpoint every 10 epochs named after the epoch; a second run resumes after the last one.

#include <ckpt/ckpt.hpp>

#include <cstdio>

#include "example_args.hpp"
#include "mlp_fields.hpp"

int main(int argc, char** argv) {
    const auto dir = demo::checkpoint_dir(argc, argv, "keras_epoch_callback_ckpts");
    const demo::dataset data = demo::make_dataset(6, 512);
    demo::mlp model;
    demo::adam optimizer;
    demo::data_cursor cursor;
    std::mt19937_64 rng(6);
    std::int64_t epoch = 0;
    ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("optimizer", optimizer), ckpt::track("epoch", epoch),
                        ckpt::track("data", cursor), ckpt::track("rng", rng)};
    ckpt::checkpoint_manager manager{ck, dir, ckpt::name_template("epoch_{epoch:03d}")};
    if (auto from = manager.restore_or_initialize([&] { demo::init_model(model, optimizer, 6); }))
        std::printf("resuming after epoch %lld from %s\n", static_cast<long long>(epoch), from->c_str());

    const std::int64_t last = epoch + 30;
    while (epoch < last) {
        for (int batch = 0; batch < 512 / 32; ++batch) demo::train_step(model, optimizer, data, cursor, rng);
        ++epoch;
        if (epoch % 10 == 0) {
            ckpt::save_options o;
            o.step = epoch;
            o.metrics["accuracy"] = demo::evaluate(model, data);
            std::printf("epoch %lld: accuracy %.3f, saved %s\n", static_cast<long long>(epoch), o.metrics["accuracy"],
                        manager.save(o).filename().c_str());
        }
    }
    if (manager.latest_checkpoint()->filename() !=
        "epoch_" + std::string(epoch < 100 ? "0" : "") + std::to_string(epoch))
        demo::fail("the latest checkpoint is named after the last epoch");
    return 0;
}
