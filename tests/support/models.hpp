#pragma once
// Model types several test files use, defined once (a folder of headers only: tests/CMakeLists.txt
// makes executables only of folders holding .cpp files).

#include <ckpt/ckpt.hpp>

#include <cstdint>

namespace ckpt_test {

/// A dense layer, registered with CKPT_FIELDS.
struct dense {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
};
CKPT_FIELDS(dense, kernel, bias)

/// The smallest training state a manager test saves: random weights and a step.
struct small_model {
    Eigen::MatrixXf weights = Eigen::MatrixXf::Random(4, 3);
    std::int64_t step = 0;
};

}  // namespace ckpt_test
