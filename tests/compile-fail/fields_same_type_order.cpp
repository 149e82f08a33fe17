// Two fields of the same type listed in swapped order: caught at compile time by their offsets,
// naming the struct and the first field listed too early.
// expect: ckpt: CKPT_FIELDS must list the fields in declaration order
// expect: ckpt_field_first
// expect: user::swapped
// first-error: ckpt:
#include <ckpt/ckpt.hpp>

namespace user {
struct swapped {
    int first = 1;
    int second = 2;
};
CKPT_FIELDS(swapped, second, first)
}  // namespace user

int main() {}
