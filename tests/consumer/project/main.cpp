// A user's program that instantiates most of ckpt's templates, built with the user's strict
// warnings (see CMakeLists.txt) and ckpt's include directory not marked SYSTEM.
#include <ckpt/ckpt.hpp>

#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <Eigen/SparseCore>
#include <unsupported/Eigen/CXX11/Tensor>

namespace user {
struct dense {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
};
CKPT_FIELDS(dense, kernel, bias)

class scaler {
public:
    float scale = 1.0f;
    CKPT_FIELDS_INTRUSIVE(scaler, scale, shift_)

private:
    Eigen::VectorXd shift_ = Eigen::VectorXd::Zero(2);
};

struct model {
    std::vector<dense> layers;
    std::map<std::string, dense> heads;
    std::unordered_map<int, Eigen::RowVectorXf> embeddings;
    std::optional<Eigen::VectorXf> ema;
    std::unique_ptr<dense> adapter;
    Eigen::Tensor<float, 3> attention;
    Eigen::Matrix<double, 2, 2, Eigen::RowMajor> fixed;
    Eigen::SparseMatrix<float> mask;
    scaler norm;
    std::vector<float> cache;
};
CKPT_FIELDS(model, layers, heads, embeddings, ema, adapter, attention, fixed, mask, norm, CKPT_SKIP(cache))

struct optimizer {  // no annotation: fields by position
    float lr = 1e-3f;
    std::int64_t iterations = 0;
    std::vector<Eigen::MatrixXf> moments;
    std::optional<int> warmup;
};
}  // namespace user

int main() {
    user::model m;
    m.layers.push_back({Eigen::MatrixXf::Random(3, 4), Eigen::VectorXf::Random(3)});
    m.heads["out"] = {Eigen::MatrixXf::Random(1, 3), Eigen::VectorXf::Random(1)};
    m.embeddings[7] = Eigen::RowVectorXf::Random(5);
    m.ema = Eigen::VectorXf::Ones(3);
    m.adapter = std::make_unique<user::dense>();
    m.attention.resize(2, 3, 4);
    m.attention.setRandom();
    m.fixed << 1, 2, 3, 4;
    m.mask.resize(3, 3);
    m.mask.insert(1, 2) = 0.5f;
    user::optimizer opt;
    opt.moments.push_back(Eigen::MatrixXf::Zero(2, 2));
    std::mt19937_64 rng(42);
    std::normal_distribution<float> noise;
    std::int64_t step = 42;

    ckpt::interrupt_guard guard;
    ckpt::checkpoint ck{ckpt::track("model", m), ckpt::track("optimizer", opt), ckpt::track("rng", rng),
                        ckpt::track("noise", noise), ckpt::track("step", step)};
    ckpt::checkpoint_manager mgr{ck, "consumer-run", ckpt::keep_last(2), ckpt::keep_best(1, "loss", ckpt::minimize)};
    ckpt::save_options options;
    options.metrics["loss"] = 0.5;
    mgr.save(step, options);
    options.metrics["loss"] = 0.25;
    mgr.save_async(options);
    mgr.wait();
    (void)mgr.save_if_due(step + 1, guard.requested());
    if (!mgr.best_checkpoint("loss")) return 1;
    for (const auto& r : mgr.records()) (void)r.metrics.size();

    const auto path = ck.write("consumer.ckpt");
    ckpt::reader reader(path);
    std::size_t bytes = 0;
    for (const auto& e : reader.entries()) bytes += static_cast<std::size_t>(e.length);
    reader.verify();
    const auto kernel = reader.read<Eigen::MatrixXf>("model/layers/0/kernel");

    user::model back;
    user::optimizer back_opt;
    std::mt19937_64 back_rng;
    std::normal_distribution<float> back_noise;
    std::int64_t restored = 0;
    ckpt::checkpoint in{ckpt::track("model", back), ckpt::track("optimizer", back_opt), ckpt::track("rng", back_rng),
                        ckpt::track("noise", back_noise), ckpt::track("step", restored)};
    in.restore(path, ckpt::partial | ckpt::verify_first).assert_consumed();
    if (kernel != m.layers[0].kernel || back.layers[0].kernel != m.layers[0].kernel || !back.ema || !back.adapter ||
        back_rng() != rng() || bytes == 0)
        return 1;
    std::cout << "restored step " << restored << "\n";
    return restored == 42 ? 0 : 1;
}
