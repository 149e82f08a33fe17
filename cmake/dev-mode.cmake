# What only ckpt's own targets get: warnings as errors. Never applied to consumers.
function(ckpt_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
endfunction()

# Sanitizers for the whole tree of our own targets, e.g. -DCKPT_SANITIZE=address,undefined or thread.
set(CKPT_SANITIZE "" CACHE STRING "Sanitizers for ckpt's tests, examples and tools (address,undefined | thread)")
function(ckpt_set_sanitizers target)
  if(CKPT_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${CKPT_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${CKPT_SANITIZE})
  endif()
endfunction()

function(ckpt_developer_target target)
  ckpt_set_warnings(${target})
  ckpt_set_sanitizers(${target})
endfunction()
