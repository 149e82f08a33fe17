// A shared_ptr member: shared ownership does not survive a restore; the message says what does.
// expect: ckpt: a std::shared_ptr/weak_ptr member cannot be checkpointed
// expect: std::unique_ptr<T>
// expect: ckpt_field_encoder
// first-error: ckpt:
#include <ckpt/ckpt.hpp>

#include <memory>

namespace user {
struct model {
    std::shared_ptr<Eigen::MatrixXf> encoder;
};
CKPT_FIELDS(model, encoder)
}  // namespace user

int main() {}
