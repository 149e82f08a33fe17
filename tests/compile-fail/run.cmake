# cmake -DCOMPILER=... -DSTANDARD=17 -DSOURCE=file.cpp -DFLAGS="-I...;-I..." -P run.cmake
# Passes when SOURCE fails to compile and the diagnostics contain every "// expect: <text>" of it.
file(STRINGS ${SOURCE} expectations REGEX "^// expect: ")
if(NOT expectations)
  message(FATAL_ERROR "${SOURCE} has no '// expect:' line")
endif()
execute_process(COMMAND ${COMPILER} -std=c++${STANDARD} -fsyntax-only ${FLAGS} ${SOURCE}
                RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but must not")
endif()
foreach(line IN LISTS expectations)
  string(REGEX REPLACE "^// expect: " "" text "${line}")
  string(FIND "${out}${err}" "${text}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the diagnostics of ${SOURCE} lack '${text}':\n${out}${err}")
  endif()
endforeach()
message(STATUS "failed to compile as expected: ${SOURCE}")
