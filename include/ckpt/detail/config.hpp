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

// Link-time guards: a program that mixes the two ways fails to link, with the mistake in the
// symbol's name, instead of running with two copies of the library's statics (the warning hook,
// the fault hook) that each see half the program.
// - A header-only unit defines (inline, so once per program) a plain variable,
//   ckpt_error_mixing_header_only_and_CKPT_COMPILED_units; src/ckpt.cpp defines the same name as a
//   thread_local. A program with both has one name as TLS and non-TLS, which every ELF linker
//   refuses (GNU ld: "TLS definition ... mismatches non-TLS definition", lld: "TLS attribute
//   mismatch", gold: "used as both __thread and non-__thread"). The library's object is pulled in
//   by the second guard, so the mix fails as soon as one unit is built in compiled mode.
// - A compiled-mode unit references ckpt_error_CKPT_COMPILED_without_the_ckpt_compiled_library,
//   defined only in src/ckpt.cpp: CKPT_COMPILED without linking ckpt::ckpt_compiled is an
//   undefined reference to that name.
// `[[gnu::used]]` keeps each unit's reference although nothing calls it. The guards catch static
// linking on ELF platforms (Linux, the BSDs); they are off elsewhere, and they cannot see a mix
// across shared libraries (each resolves its own symbols) or under clang's LTO (g++'s LTO refuses it).
#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
namespace ckpt::detail {
#if defined(CKPT_COMPILED)
extern char ckpt_error_CKPT_COMPILED_without_the_ckpt_compiled_library;
#if defined(CKPT_COMPILING_LIBRARY)
char ckpt_error_CKPT_COMPILED_without_the_ckpt_compiled_library = 0;
thread_local char ckpt_error_mixing_header_only_and_CKPT_COMPILED_units = 0;
#else
[[gnu::used]] inline char* compiled_mode_link_guard() {
    return &ckpt_error_CKPT_COMPILED_without_the_ckpt_compiled_library;
}
#endif
#else
inline char ckpt_error_mixing_header_only_and_CKPT_COMPILED_units = 0;
[[gnu::used]] inline char* header_only_link_guard() { return &ckpt_error_mixing_header_only_and_CKPT_COMPILED_units; }
#endif
}  // namespace ckpt::detail
#endif
