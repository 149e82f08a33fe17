# The API reference with Doxygen (Debian's package): target ckpt_docs; with tests, a test that
# fails on any undocumented public name or documentation error.
find_package(Doxygen)
if(NOT DOXYGEN_FOUND)
  message(STATUS "ckpt: doxygen not found, no ckpt_docs target")
  return()
endif()
set(CKPT_DOCS_OUTPUT ${PROJECT_BINARY_DIR}/docs)
set(CKPT_DOCS_WARN_AS_ERROR NO)
configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${PROJECT_BINARY_DIR}/docs/Doxyfile @ONLY)
add_custom_target(ckpt_docs COMMAND Doxygen::doxygen ${PROJECT_BINARY_DIR}/docs/Doxyfile
                  WORKING_DIRECTORY ${PROJECT_BINARY_DIR} COMMENT "API reference in ${CKPT_DOCS_OUTPUT}/html" VERBATIM)
if(CKPT_BUILD_TESTS)
  set(CKPT_DOCS_OUTPUT ${PROJECT_BINARY_DIR}/docs-check)
  set(CKPT_DOCS_WARN_AS_ERROR FAIL_ON_WARNINGS)
  configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${PROJECT_BINARY_DIR}/docs-check/Doxyfile @ONLY)
  add_test(NAME "docs: every public name is documented" COMMAND Doxygen::doxygen ${PROJECT_BINARY_DIR}/docs-check/Doxyfile
           WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  set_tests_properties("docs: every public name is documented" PROPERTIES LABELS "docs")
endif()
