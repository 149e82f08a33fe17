// A raw pointer member: ckpt's message, naming the struct and the field, before cereal's.
// expect: ckpt: a raw pointer member cannot be checkpointed
// expect: CKPT_SKIP(field)
// expect: ckpt_field_parent
// expect: user::node
// first-error: ckpt:
#include <ckpt/ckpt.hpp>

namespace user {
struct node {
    Eigen::VectorXf value;
    node* parent = nullptr;
};
CKPT_FIELDS(node, value, parent)
}  // namespace user

int main() {
    user::node n;
    ckpt::checkpoint ck{ckpt::track("node", n)};
    (void)ck;
}
