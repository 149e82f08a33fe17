#pragma once
// The two ways to build. By default ckpt is header-only: every function is defined in its header,
// `inline`. With CKPT_COMPILED defined (the ckpt::ckpt_compiled target defines it for its users),
// the headers declare the library's non-template functions and one source file, src/ckpt.cpp,
// compiled once into that target, defines them: a translation unit that uses a checkpoint then
// compiles only the templates its own types instantiate. Every translation unit of a program must
// be built the same way.

#if defined(CKPT_COMPILED)
#define CKPT_INLINE
#else
#define CKPT_INLINE inline
#endif

// Whether this translation unit compiles the out-of-line definitions at the end of each header:
// always when header-only, and in compiled mode only in src/ckpt.cpp.
#if !defined(CKPT_COMPILED) || defined(CKPT_COMPILING_LIBRARY)
#define CKPT_HEADER_DEFINITIONS 1
#else
#define CKPT_HEADER_DEFINITIONS 0
#endif
