// CKPT_FIELDS written outside the type's namespace: say where it must go.
// expect: ckpt: CKPT_FIELDS(Type, ...) must be written in the namespace that declares Type
// expect: user::dense
// first-error: ckpt:
#include <ckpt/ckpt.hpp>

namespace user {
struct dense {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
};
}  // namespace user

CKPT_FIELDS(user::dense, kernel, bias)

int main() {}
