// The compiled mode's one source file (see ckpt/detail/config.hpp): with CKPT_COMPILED and
// CKPT_COMPILING_LIBRARY, every header's out-of-line definitions are compiled here, once, and
// not in the translation units of the library's users.
#ifndef CKPT_COMPILED
#error "src/ckpt.cpp is the ckpt::ckpt_compiled library: build it with CKPT_COMPILED defined"
#endif
#define CKPT_COMPILING_LIBRARY

#include <ckpt/ckpt.hpp>
