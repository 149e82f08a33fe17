# The compiled mode's promise, checked on the object files of probe.cpp: built header-only, the
# translation unit defines the library's non-template functions itself (file reader and writer,
# manifest decoding, the manager...); built against ckpt::ckpt_compiled, it defines none of them.
# Counted: functions in namespace ckpt that are not template instantiations, larger than 512
# bytes of code, other than implicitly generated destructors (small, and emitted where used).
function(large_library_functions object out)
  execute_process(COMMAND ${NM} -C -S --defined-only ${object} RESULT_VARIABLE result OUTPUT_VARIABLE symbols)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${object}")
  endif()
  string(REPLACE "\n" ";" lines "${symbols}")
  set(found "")
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "^[0-9a-f]+ ([0-9a-f]+) [TtWw] (ckpt::[^(]*)\\(")
      continue()
    endif()
    set(size_hex ${CMAKE_MATCH_1})
    set(name ${CMAKE_MATCH_2})
    math(EXPR size "0x${size_hex}")
    if(size GREATER 512 AND NOT name MATCHES "<" AND NOT name MATCHES "::~")
      list(APPEND found "${name} (${size} bytes)")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES found)
  set(${out} "${found}" PARENT_SCOPE)
endfunction()

large_library_functions(${HEADER_ONLY_OBJECT} header_only)
large_library_functions(${COMPILED_OBJECT} compiled)
list(LENGTH header_only header_only_count)
list(LENGTH compiled compiled_count)
if(header_only_count LESS 20)
  message(FATAL_ERROR "the header-only probe defines only ${header_only_count} library functions; "
                      "the check would not notice a compiled mode that compiles nothing out: ${header_only}")
endif()
if(NOT compiled_count EQUAL 0)
  string(REPLACE ";" "\n  " listed "${compiled}")
  message(FATAL_ERROR "in compiled mode the user's translation unit still defines ${compiled_count} library "
                      "functions (they belong in a CKPT_HEADER_DEFINITIONS section):\n  ${listed}")
endif()
message(STATUS "header-only: ${header_only_count} library functions defined in the user's unit; compiled mode: none")
