# Run with cmake -P. Installs the nndex build tree at NNDEX_BINARY_DIR into a scratch prefix under
# WORK_DIR, builds the consumer project in CONSUMER_SOURCE_DIR against it (find_package(nndex)), and
# runs the resulting program. Any failing step fails the test.
cmake_minimum_required(VERSION 3.21)

foreach(var NNDEX_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR CONSUMER_GENERATOR CONSUMER_CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT CONSUMER_BUILD_TYPE)
  set(CONSUMER_BUILD_TYPE Release)
endif()

set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")
# Start clean so a stale install or cache cannot make the test pass.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# Runs one step, echoing its output as it goes (so a failure shows why in ctest's log).
function(run_step name)
  message(STATUS "${name}: ${ARGN}")
  execute_process(COMMAND ${ARGN}
                  RESULT_VARIABLE result
                  OUTPUT_VARIABLE out
                  ERROR_VARIABLE err
                  ECHO_OUTPUT_VARIABLE ECHO_ERROR_VARIABLE
                  COMMAND_ERROR_IS_FATAL ANY)
  if(NOT result EQUAL 0)  # COMMAND_ERROR_IS_FATAL already stops here; checked again to be explicit
    message(FATAL_ERROR "${name} failed (${result})")
  endif()
  message(STATUS "${name}: ok")
endfunction()

run_step("install nndex" "${CMAKE_COMMAND}" --install "${NNDEX_BINARY_DIR}" --prefix "${prefix}"
         --config "${CONSUMER_BUILD_TYPE}")

if(NOT EXISTS "${prefix}/include/nndex/index.hpp")
  message(FATAL_ERROR "install did not put the headers under ${prefix}/include")
endif()
file(GLOB_RECURSE config_files "${prefix}/*/nndexConfig.cmake")
if(NOT config_files)
  message(FATAL_ERROR "install did not produce nndexConfig.cmake under ${prefix}")
endif()

set(configure_args -S "${CONSUMER_SOURCE_DIR}" -B "${build}" -G "${CONSUMER_GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_CXX_COMPILER=${CONSUMER_CXX_COMPILER}"
    "-DCMAKE_BUILD_TYPE=${CONSUMER_BUILD_TYPE}" "-DNNDEX_EXPECTED_PREFIX=${prefix}"
    # Only the scratch prefix may satisfy find_package(nndex): not a user/system package registry.
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
if(CONSUMER_MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${CONSUMER_MAKE_PROGRAM}")
endif()
run_step("configure consumer" "${CMAKE_COMMAND}" ${configure_args})
run_step("build consumer" "${CMAKE_COMMAND}" --build "${build}" --config "${CONSUMER_BUILD_TYPE}")

find_program(app NAMES app PATHS "${build}" "${build}/${CONSUMER_BUILD_TYPE}" NO_DEFAULT_PATH REQUIRED)
run_step("run consumer" "${app}")
