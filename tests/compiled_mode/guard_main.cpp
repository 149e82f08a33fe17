// The other unit: warns through the handler the first unit set. With the two units built the
// same way, the handler sees the warning; mixed, there would be two hooks, and the program must
// not link at all.
#include <ckpt/warning.hpp>

extern int warnings_seen;
void count_warnings();

int main() {
    count_warnings();
    ckpt::detail::warn(ckpt::warning_kind::cannot_delete, "a warning the handler counts");
    return warnings_seen == 1 ? 0 : 1;
}
