# checkpoint_manager and interrupt_guard over MPI (tests/mpi/manager.cpp), run through mpirun by
# manager.cmake; included by tests/mpi/CMakeLists.txt, whose mpi_env, mpi_test_libraries and
# CKPT_MPI_KILLS it uses.
add_executable(test_mpi_manager manager.cpp)
target_link_libraries(test_mpi_manager PRIVATE ${mpi_test_libraries})
set_target_properties(test_mpi_manager PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
target_compile_options(test_mpi_manager PRIVATE -O1)
ckpt_developer_target(test_mpi_manager)

function(ckpt_mpi_manager_test name)
  add_test(NAME "mpi manager: ${name}"
           COMMAND ${CMAKE_COMMAND} -DMPIEXEC=${MPIEXEC_EXECUTABLE} -DPROGRAM=$<TARGET_FILE:test_mpi_manager>
                   -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/work-manager/${name} -DKILLS=${CKPT_MPI_KILLS} ${ARGN}
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/manager.cmake)
  set_tests_properties("mpi manager: ${name}" PROPERTIES LABELS "mpi" ENVIRONMENT "${mpi_env}" TIMEOUT 300 ${mpi_schedule})
endfunction()

ckpt_mpi_manager_test("save, rotate, reopen, restore; identical records on 1 to 4 ranks" -DSCENARIO=rotate)
ckpt_mpi_manager_test("the leader's errors are thrown on every rank" -DSCENARIO=errors)
ckpt_mpi_manager_test("restore_or_initialize passes over damaged sharded checkpoints alike" -DSCENARIO=fallback)
ckpt_mpi_manager_test("asynchronous mode: the leader records in the background, every rank catches up" -DSCENARIO=async)
ckpt_mpi_manager_test("the leader's open removes temporary directories no save holds" -DSCENARIO=stale)
ckpt_mpi_manager_test("a signal on one rank stops every rank at one saved step" -DSCENARIO=signal)
ckpt_mpi_manager_test("restore_or_initialize(partial) on another number of ranks; save_every after a skewed clock" -DSCENARIO=resize)
ckpt_mpi_manager_test("kill -9 of a rank during a manager's save loop" -DSCENARIO=kill)
