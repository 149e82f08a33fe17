# cmake -DCOMPILER=... -DSTANDARD=17 -DINCLUDE=.../include -DLIBRARY=libckpt_compiled.a
#       -DWORK_DIR=... [-DSANITIZE=address,undefined] -P link_guard.cmake
# The two ways to build (ckpt/detail/config.hpp) must not mix in one program: built the same way,
# header-only or compiled, the two units link and run; mixed, or in compiled mode without the
# library, the link fails with the mistake in the symbol's name.
file(MAKE_DIRECTORY ${WORK_DIR})
set(flags -std=c++${STANDARD} -I${INCLUDE})
if(SANITIZE)
  list(APPEND flags -fsanitize=${SANITIZE})
endif()
set(here ${CMAKE_CURRENT_LIST_DIR})

function(compile source mode object)
  set(defines "")
  if(mode STREQUAL "compiled")
    set(defines -DCKPT_COMPILED)
  endif()
  execute_process(COMMAND ${COMPILER} ${flags} ${defines} -c ${here}/${source} -o ${WORK_DIR}/${object}
                  RESULT_VARIABLE result ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${source} (${mode}) failed to compile:\n${err}")
  endif()
endfunction()
compile(guard_unit.cpp header_only unit_header_only.o)
compile(guard_main.cpp header_only main_header_only.o)
compile(guard_unit.cpp compiled unit_compiled.o)
compile(guard_main.cpp compiled main_compiled.o)

# Links the objects (in WORK_DIR) and the extra files into `program`; `out` gets the linker's text
# and `ok` whether it linked.
function(link program objects extra ok out)
  list(TRANSFORM objects PREPEND ${WORK_DIR}/)
  execute_process(COMMAND ${COMPILER} ${flags} ${objects} ${extra} -o ${WORK_DIR}/${program}
                  RESULT_VARIABLE result OUTPUT_VARIABLE o ERROR_VARIABLE e)
  if(result EQUAL 0)
    set(${ok} TRUE PARENT_SCOPE)
  else()
    set(${ok} FALSE PARENT_SCOPE)
  endif()
  set(${out} "${o}${e}" PARENT_SCOPE)
endfunction()

function(expect_links_and_runs program objects extra)
  link(${program} "${objects}" "${extra}" ok out)
  if(NOT ok)
    message(FATAL_ERROR "${program} (${objects}) must link:\n${out}")
  endif()
  execute_process(COMMAND ${WORK_DIR}/${program} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${program} linked, but its handler did not see the warning (exit ${result})")
  endif()
endfunction()

function(expect_link_error program objects extra symbol)
  link(${program} "${objects}" "${extra}" ok out)
  if(ok)
    message(FATAL_ERROR "${program} (${objects}) linked, but must not: the guard did not fire")
  endif()
  string(FIND "${out}" "${symbol}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${program} failed to link, but its errors do not name ${symbol}:\n${out}")
  endif()
endfunction()

expect_links_and_runs(header_only "unit_header_only.o;main_header_only.o" "")
# The library on the line of a header-only program is not pulled in: nothing references it.
expect_links_and_runs(header_only_and_library "unit_header_only.o;main_header_only.o" ${LIBRARY})
expect_links_and_runs(compiled "unit_compiled.o;main_compiled.o" ${LIBRARY})
expect_link_error(mixed "unit_header_only.o;main_compiled.o" ${LIBRARY}
                  ckpt_error_mixing_header_only_and_CKPT_COMPILED_units)
expect_link_error(mixed_other_way "unit_compiled.o;main_header_only.o" ${LIBRARY}
                  ckpt_error_mixing_header_only_and_CKPT_COMPILED_units)
expect_link_error(compiled_without_library "unit_compiled.o;main_compiled.o" ""
                  ckpt_error_CKPT_COMPILED_without_the_ckpt_compiled_library)
message(STATUS "the two ways link alone and refuse to link mixed")
