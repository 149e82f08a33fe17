// CKPT_FIELDS at namespace scope naming private members: point to CKPT_FIELDS_INTRUSIVE rather
// than leave the user with "is private within this context" inside the macro.
// expect: ckpt: CKPT_FIELDS at namespace scope cannot name private or protected members
// expect: CKPT_FIELDS_INTRUSIVE(Type, fields...) inside the class
// first-error: ckpt:
#include <ckpt/ckpt.hpp>

namespace user {
class dense {
public:
    explicit dense(int n) : kernel_(n, n), bias_(n) {}

private:
    Eigen::MatrixXf kernel_;
    Eigen::VectorXf bias_;
};
CKPT_FIELDS(dense, kernel_, bias_)
}  // namespace user

int main() {}
