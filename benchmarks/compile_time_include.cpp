// Compile-time benchmark: the include alone (see README.md, "What a translation unit costs").
#include <ckpt/ckpt.hpp>
