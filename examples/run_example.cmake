# Runs an example twice in a fresh directory: a first run, then a second that finds its checkpoints.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
foreach(round IN ITEMS first second)
  execute_process(COMMAND ${PROGRAM} --dir ckpts ${ARGS} WORKING_DIRECTORY ${WORK_DIR}
                  RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("--- ${round} run:\n${out}${err}")
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${PROGRAM} failed on its ${round} run (exit ${result})")
  endif()
endforeach()
