# The import_pytorch round trip in a fresh directory: PyTorch trains and writes safetensors, the
# C++ program fine-tunes and exports (twice: the second run resumes from the first's checkpoints
# and trains further), PyTorch loads the export and compares its outputs with the C++ ones.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(steps # arguments separated by '|'
    "${PYTHON}|${SCRIPT}|train|${WORK_DIR}" "${PROGRAM}|--dir|${WORK_DIR}/ckpts|--work|${WORK_DIR}|--steps|60"
    "${PROGRAM}|--dir|${WORK_DIR}/ckpts|--work|${WORK_DIR}|--steps|100" "${PYTHON}|${SCRIPT}|check|${WORK_DIR}")
foreach(step IN LISTS steps)
  string(REPLACE "|" ";" command "${step}")
  string(REPLACE "|" " " shown "${step}")
  execute_process(COMMAND ${command} WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE result OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  message("--- ${shown}\n${out}${err}")
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (exit ${result}): ${shown}")
  endif()
endforeach()
