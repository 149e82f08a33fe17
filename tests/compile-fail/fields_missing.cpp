// CKPT_FIELDS must name every field of an aggregate: leaving out `bias` does not compile.
// expect: ckpt: CKPT_FIELDS must name every field of the struct, in declaration order
// expect: fields_listed_of_declared<user::dense, 1, 2>
// expect: CKPT_SKIP(field)
// first-error: ckpt:
#include <ckpt/ckpt.hpp>

namespace user {
struct dense {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
};
CKPT_FIELDS(dense, kernel)
}  // namespace user

int main() {}
