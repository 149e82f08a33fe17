// Seed 001, example 3: an encoder and a decoder, each with its own checkpoint and manager, trained
// together as a linear autoencoder and restored separately.

#include <ckpt/ckpt.hpp>

#include <cstdio>
#include <random>

#include "example_args.hpp"

struct linear {
    Eigen::MatrixXf weights;
    std::int64_t updates = 0;
};
CKPT_FIELDS(linear, weights, updates)

int main(int argc, char** argv) {
    const auto dir = demo::checkpoint_dir(argc, argv, "encoder_decoder_ckpts");
    std::mt19937 gen(11);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto random_matrix = [&](int rows, int cols, float scale) {
        Eigen::MatrixXf m(rows, cols);
        for (int i = 0; i < m.size(); ++i) m.data()[i] = scale * normal(gen);
        return m;
    };
    linear encoder{random_matrix(4, 12, 0.3f)}, decoder{random_matrix(12, 4, 0.3f)};
    ckpt::checkpoint encoder_ck{ckpt::track("encoder", encoder)};
    ckpt::checkpoint decoder_ck{ckpt::track("decoder", decoder)};
    ckpt::checkpoint_manager encoder_manager{encoder_ck, dir / "encoder", ckpt::keep_last(3)};
    ckpt::checkpoint_manager decoder_manager{decoder_ck, dir / "decoder", ckpt::keep_last(3)};
    if (auto e = encoder_manager.restore_or_initialize()) std::printf("encoder restored from %s\n", e->c_str());
    if (auto d = decoder_manager.restore_or_initialize()) std::printf("decoder restored from %s\n", d->c_str());
    if (encoder.updates != decoder.updates) demo::fail("encoder and decoder were saved together");

    // Data on a 4-dimensional subspace of R^12: the autoencoder can learn it exactly.
    const Eigen::MatrixXf basis = random_matrix(12, 4, 1.0f);
    float loss = 0;
    for (int i = 0; i < 200; ++i) {
        const Eigen::MatrixXf x = basis * random_matrix(4, 16, 1.0f);
        const Eigen::MatrixXf h = encoder.weights * x, y = decoder.weights * h, dy = 2.0f * (y - x) / 16.0f;
        loss = (y - x).squaredNorm() / 16.0f;
        const Eigen::MatrixXf d_decoder = dy * h.transpose(),
                              d_encoder = (decoder.weights.transpose() * dy) * x.transpose();
        decoder.weights -= 0.002f * d_decoder;
        encoder.weights -= 0.002f * d_encoder;
        ++encoder.updates;
        ++decoder.updates;
    }
    std::printf("after %lld updates, reconstruction loss %.4f\n", static_cast<long long>(encoder.updates), loss);
    std::printf("saved %s and %s\n", encoder_manager.save(encoder.updates).c_str(),
                decoder_manager.save(decoder.updates).c_str());
    return 0;
}
