#pragma once
// The training workload of the flagship example: a small MLP with Adam on a seeded synthetic
// classification task. Everything is deterministic and depends only on the state that a
// checkpoint holds (model, optimizer, data cursor, shuffle engine), so a run that is stopped,
// saved and resumed ends bit for bit where an uninterrupted run ends.

#include <Eigen/Core>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace demo {

struct dense {
    Eigen::MatrixXf kernel;  // [out, in]
    Eigen::VectorXf bias;    // [out]
};
struct mlp {
    dense hidden;
    dense out;
};
struct adam {
    float lr = 3e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-7f;
    std::int64_t iterations = 0;
    std::vector<Eigen::MatrixXf> m,
        v;  // one per parameter, in the order hidden.kernel, hidden.bias, out.kernel, out.bias
};
/// Where the training is in the data: epoch, position in this epoch's shuffled order.
struct data_cursor {
    std::int64_t epoch = 0;
    std::int64_t index = 0;
    std::vector<std::int64_t> order;
};

struct dataset {
    Eigen::MatrixXf x;  // [features, samples]
    std::vector<std::int32_t> label;
};

// Uniform in [-1, 1) from raw engine output: the standard distributions are not specified bit
// for bit across library versions, this is.
inline float uniform(std::mt19937_64& rng) { return static_cast<float>(rng() >> 40) * (2.0f / 16777216.0f) - 1.0f; }

/// A seeded task: class = argmax of a fixed random projection of the features, with 5% label noise.
inline dataset make_dataset(std::uint64_t seed, int samples = 4096, int features = 16, int classes = 4) {
    std::mt19937_64 rng(seed);
    Eigen::MatrixXf projection(classes, features);
    for (int i = 0; i < projection.size(); ++i) projection.data()[i] = uniform(rng);
    dataset d;
    d.x.resize(features, samples);
    d.label.resize(static_cast<std::size_t>(samples));
    for (int s = 0; s < samples; ++s) {
        for (int f = 0; f < features; ++f) d.x(f, s) = uniform(rng);
        Eigen::Index best = 0;
        (projection * d.x.col(s)).maxCoeff(&best);
        d.label[static_cast<std::size_t>(s)] = static_cast<std::int32_t>(best);
        if ((rng() % 20) == 0)
            d.label[static_cast<std::size_t>(s)] =
                static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(classes));
    }
    return d;
}

inline void init_model(mlp& model, adam& opt, std::uint64_t seed, int features = 16, int hidden = 64, int classes = 4) {
    std::mt19937_64 rng(seed);
    auto fill = [&](Eigen::MatrixXf& m, int rows, int cols, float scale) {
        m.resize(rows, cols);
        for (int i = 0; i < m.size(); ++i) m.data()[i] = scale * uniform(rng);
    };
    fill(model.hidden.kernel, hidden, features, std::sqrt(6.0f / static_cast<float>(features + hidden)));
    model.hidden.bias = Eigen::VectorXf::Zero(hidden);
    fill(model.out.kernel, classes, hidden, std::sqrt(6.0f / static_cast<float>(hidden + classes)));
    model.out.bias = Eigen::VectorXf::Zero(classes);
    opt.iterations = 0;
    opt.m = {Eigen::MatrixXf::Zero(hidden, features), Eigen::MatrixXf::Zero(hidden, 1),
             Eigen::MatrixXf::Zero(classes, hidden), Eigen::MatrixXf::Zero(classes, 1)};
    opt.v = opt.m;
}

/// Fisher-Yates written out, so the order does not depend on std::shuffle's implementation.
inline void shuffle(std::vector<std::int64_t>& order, std::mt19937_64& rng) {
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
}

struct step_result {
    float loss;
    float accuracy;
};

/// One mini-batch of Adam. Advances the cursor; reshuffles at the start of every epoch.
inline step_result train_step(mlp& model, adam& opt, const dataset& data, data_cursor& cursor,
                              std::mt19937_64& shuffle_rng, int batch_size = 32) {
    const auto samples = static_cast<std::int64_t>(data.label.size());
    if (cursor.order.empty() || cursor.index + batch_size > samples) {
        if (!cursor.order.empty()) ++cursor.epoch;
        cursor.order.resize(static_cast<std::size_t>(samples));
        for (std::int64_t i = 0; i < samples; ++i) cursor.order[static_cast<std::size_t>(i)] = i;
        shuffle(cursor.order, shuffle_rng);
        cursor.index = 0;
    }
    const int features = static_cast<int>(data.x.rows());
    Eigen::MatrixXf x(features, batch_size);
    std::vector<std::int32_t> y(static_cast<std::size_t>(batch_size));
    for (int b = 0; b < batch_size; ++b) {
        const auto s = cursor.order[static_cast<std::size_t>(cursor.index + b)];
        x.col(b) = data.x.col(s);
        y[static_cast<std::size_t>(b)] = data.label[static_cast<std::size_t>(s)];
    }
    cursor.index += batch_size;

    // Forward.
    Eigen::MatrixXf z1 = model.hidden.kernel * x;
    z1.colwise() += model.hidden.bias;
    const Eigen::MatrixXf h = z1.cwiseMax(0.0f);
    Eigen::MatrixXf logits = model.out.kernel * h;
    logits.colwise() += model.out.bias;
    Eigen::MatrixXf p(logits.rows(), batch_size);
    float loss = 0;
    int correct = 0;
    for (int b = 0; b < batch_size; ++b) {
        Eigen::Index argmax = 0;
        const float top = logits.col(b).maxCoeff(&argmax);
        p.col(b) = (logits.col(b).array() - top).exp();
        p.col(b) /= p.col(b).sum();
        const auto label = y[static_cast<std::size_t>(b)];
        loss -= std::log(std::max(p(label, b), 1e-12f));
        correct += argmax == label;
        p(label, b) -= 1.0f;  // d loss / d logits, before the 1/batch factor
    }
    // Backward.
    const float inv = 1.0f / static_cast<float>(batch_size);
    const Eigen::MatrixXf d_logits = p * inv;
    const Eigen::MatrixXf d_out_kernel = d_logits * h.transpose();
    const Eigen::VectorXf d_out_bias = d_logits.rowwise().sum();
    const Eigen::MatrixXf d_h =
        (model.out.kernel.transpose() * d_logits).cwiseProduct((z1.array() > 0.0f).cast<float>().matrix());
    const Eigen::MatrixXf d_hidden_kernel = d_h * x.transpose();
    const Eigen::VectorXf d_hidden_bias = d_h.rowwise().sum();

    // Adam.
    ++opt.iterations;
    const float t = static_cast<float>(opt.iterations);
    const float correction = std::sqrt(1.0f - std::pow(opt.beta2, t)) / (1.0f - std::pow(opt.beta1, t));
    auto update = [&](auto& param, const auto& grad, std::size_t i) {
        Eigen::Map<const Eigen::MatrixXf> g(grad.data(), param.rows(), param.cols());
        opt.m[i] = opt.beta1 * opt.m[i] + (1.0f - opt.beta1) * g;
        opt.v[i] = opt.beta2 * opt.v[i] + (1.0f - opt.beta2) * g.cwiseProduct(g);
        Eigen::Map<Eigen::MatrixXf> w(param.data(), param.rows(), param.cols());
        w.array() -= opt.lr * correction * opt.m[i].array() / (opt.v[i].array().sqrt() + opt.eps);
    };
    update(model.hidden.kernel, d_hidden_kernel, 0);
    update(model.hidden.bias, d_hidden_bias, 1);
    update(model.out.kernel, d_out_kernel, 2);
    update(model.out.bias, d_out_bias, 3);
    return {loss * inv, static_cast<float>(correct) * inv};
}

/// The model's output for every column of `x` (inference only: no activations kept for a backward pass).
inline Eigen::MatrixXf logits_of(const mlp& model, const Eigen::MatrixXf& x) {
    Eigen::MatrixXf z1 = model.hidden.kernel * x;
    z1.colwise() += model.hidden.bias;
    Eigen::MatrixXf logits = model.out.kernel * z1.cwiseMax(0.0f);
    logits.colwise() += model.out.bias;
    return logits;
}

/// Accuracy over the whole dataset.
inline float evaluate(const mlp& model, const dataset& data) {
    const Eigen::MatrixXf logits = logits_of(model, data.x);
    int correct = 0;
    for (Eigen::Index s = 0; s < logits.cols(); ++s) {
        Eigen::Index argmax = 0;
        logits.col(s).maxCoeff(&argmax);
        correct += argmax == data.label[static_cast<std::size_t>(s)];
    }
    return static_cast<float>(correct) / static_cast<float>(logits.cols());
}

/// FNV-1a over the bytes of every tensor and scalar of the model and optimizer.
inline std::uint64_t digest(const mlp& model, const adam& opt) {
    std::uint64_t h = 1469598103934665603ull;
    auto bytes = [&](const void* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<const unsigned char*>(p)[i]) * 1099511628211ull;
    };
    auto matrix = [&](const auto& m) { bytes(m.data(), static_cast<std::size_t>(m.size()) * sizeof(float)); };
    matrix(model.hidden.kernel);
    matrix(model.hidden.bias);
    matrix(model.out.kernel);
    matrix(model.out.bias);
    for (const auto& m : opt.m) matrix(m);
    for (const auto& v : opt.v) matrix(v);
    bytes(&opt.iterations, sizeof opt.iterations);
    bytes(&opt.lr, sizeof opt.lr);
    return h;
}

}  // namespace demo
