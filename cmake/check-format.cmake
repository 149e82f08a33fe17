# Fails when a source file differs from what clang-format makes of it (the style in .clang-format,
# lines of at most 120 columns). Run by ctest as "format: the code follows .clang-format";
# `clang-format -i FILE` fixes a file. The compile-fail sources are left alone: their comments
# hold the diagnostics they expect, verbatim.
if(NOT CLANG_FORMAT)
  message(FATAL_ERROR "clang-format was not found: install it (scripts/install-deps.sh does)")
endif()
file(GLOB_RECURSE sources RELATIVE ${SOURCE_DIR}
     ${SOURCE_DIR}/include/*.hpp ${SOURCE_DIR}/tools/*.hpp ${SOURCE_DIR}/tools/*.cpp
     ${SOURCE_DIR}/examples/*.hpp ${SOURCE_DIR}/examples/*.cpp ${SOURCE_DIR}/tests/*.hpp ${SOURCE_DIR}/tests/*.cpp
     ${SOURCE_DIR}/benchmarks/*.cpp ${SOURCE_DIR}/src/*.cpp)
list(FILTER sources EXCLUDE REGEX "^tests/compile-fail/")
execute_process(COMMAND ${CLANG_FORMAT} --dry-run --Werror ${sources} WORKING_DIRECTORY ${SOURCE_DIR}
                RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "these lines differ from .clang-format's style (fix with clang-format -i):\n${out}")
endif()
list(LENGTH sources count)
message(STATUS "${count} files follow .clang-format")
