// Weights in from PyTorch and back: a small MLP trained in PyTorch (import_pytorch.py train) is
// loaded from safetensors into CKPT_FIELDS structs, fine-tuned here under a checkpoint_manager
// (interrupt it and rerun: it resumes), and exported back to safetensors, which PyTorch loads
// (import_pytorch.py check) and whose outputs it compares with this program's.
//
//   python3 import_pytorch.py train WORK
//   import_pytorch --dir WORK/ckpts --work WORK
//   python3 import_pytorch.py check WORK

#include <ckpt/ckpt.hpp>
#include <ckpt/foreign.hpp>  // safetensors, npz, npy: a separate header (it brings JSON and zlib)

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

// PyTorch's nn.Linear: weight [out, in], row-major in the file, restored into an Eigen (out x in)
// matrix by logical shape; bias [out].
struct linear {
    Eigen::MatrixXf weight;
    Eigen::VectorXf bias;
};
CKPT_FIELDS(linear, weight, bias)
struct mlp {
    linear fc1, fc2;  // entry paths model/fc1/weight, ...: "fc1.weight" in the state_dict
};
CKPT_FIELDS(mlp, fc1, fc2)

namespace {

Eigen::MatrixXf forward(const mlp& m, const Eigen::MatrixXf& x, Eigen::MatrixXf* hidden = nullptr) {
    Eigen::MatrixXf h = ((x * m.fc1.weight.transpose()).rowwise() + m.fc1.bias.transpose()).cwiseMax(0.0f);
    Eigen::MatrixXf y = (h * m.fc2.weight.transpose()).rowwise() + m.fc2.bias.transpose();
    if (hidden) *hidden = std::move(h);
    return y;
}

// One step of SGD with momentum on the mean squared error; returns the loss before the step.
float train_step(mlp& m, mlp& velocity, const Eigen::MatrixXf& x, const Eigen::MatrixXf& targets) {
    Eigen::MatrixXf h;
    const Eigen::MatrixXf y = forward(m, x, &h);
    const Eigen::MatrixXf dy = 2.0f * (y - targets) / static_cast<float>(y.size());
    const Eigen::MatrixXf dh = (dy * m.fc2.weight).cwiseProduct((h.array() > 0.0f).cast<float>().matrix());
    const linear g2{dy.transpose() * h, dy.colwise().sum().transpose()};
    const linear g1{dh.transpose() * x, dh.colwise().sum().transpose()};
    auto update = [](linear& p, linear& v, const linear& g) {
        v.weight = 0.9f * v.weight + g.weight;
        v.bias = 0.9f * v.bias + g.bias;
        p.weight -= 0.05f * v.weight;
        p.bias -= 0.05f * v.bias;
    };
    update(m.fc1, velocity.fc1, g1);
    update(m.fc2, velocity.fc2, g2);
    return (y - targets).squaredNorm() / static_cast<float>(y.size());
}

}  // namespace

int main(int argc, char** argv) {
    std::filesystem::path dir = "import_pytorch_ckpts", work = ".";
    std::int64_t steps = 100;
    for (int i = 1; i < argc; i += 2) {
        const std::string arg = argv[i];
        if (i + 1 < argc && arg == "--dir") {
            dir = argv[i + 1];
        } else if (i + 1 < argc && arg == "--work") {
            work = argv[i + 1];
        } else if (i + 1 < argc && arg == "--steps") {
            steps = std::atoll(argv[i + 1]);
        } else {
            std::fprintf(stderr, "usage: %s [--dir CKPTS] [--work DIR] [--steps N]\n", argv[0]);
            return 2;
        }
    }

    // The data PyTorch wrote with np.save: a .npy restores into one tracked tensor.
    Eigen::MatrixXf inputs, targets;
    ckpt::checkpoint{ckpt::track("inputs", inputs)}.restore(work / "inputs.npy", ckpt::strict, ckpt::name_map{});
    ckpt::checkpoint{ckpt::track("targets", targets)}.restore(work / "targets.npy", ckpt::strict, ckpt::name_map{});

    mlp model, velocity;
    std::int64_t step = 0;
    // Entry "model/fc1/weight" is "fc1.weight" in the state_dict: the default map turns '/' into '.',
    // and the prefix goes.
    ckpt::name_map names;
    names.rename_prefix("model/", "");
    ckpt::checkpoint weights{ckpt::track("model", model)};
    ckpt::checkpoint training{ckpt::track("model", model), ckpt::track("velocity", velocity),
                              ckpt::track("step", step)};
    ckpt::checkpoint_manager manager{training, dir, ckpt::keep_last(2), ckpt::save_every_n_steps(25)};

    const auto from = manager.restore_or_initialize([&] {
        // The first run: the weights from PyTorch (strict: every tensor of the model found, dtype and
        // shape checked), the optimizer's state from scratch.
        weights.restore(work / "pytorch.safetensors", ckpt::strict, names);
        velocity = model;
        for (linear* v : {&velocity.fc1, &velocity.fc2}) {
            v->weight.setZero();
            v->bias.setZero();
        }
    });
    std::printf(from ? "C++: resumed from %s\n" : "C++: loaded %s\n",
                from ? from->c_str() : (work / "pytorch.safetensors").c_str());

    float loss = 0;
    while (step < steps) {
        loss = train_step(model, velocity, inputs, targets);
        ++step;
        manager.save_if_due(step, step == steps);
    }
    std::printf("C++: fine-tuned to step %lld (loss %.5f)\n", static_cast<long long>(step), loss);

    // Back to PyTorch: the weights under their state_dict names, and this program's outputs to compare.
    weights.write(work / "finetuned.safetensors", ckpt::as_safetensors, names);
    Eigen::MatrixXf outputs = forward(model, inputs);
    ckpt::checkpoint{ckpt::track("outputs", outputs)}.write(work / "cpp_outputs.safetensors", ckpt::as_safetensors,
                                                            ckpt::name_map{});
    std::printf("C++: wrote %s\n", (work / "finetuned.safetensors").c_str());
    return 0;
}
