# ctest `install.find_package`: install the build tree into a scratch prefix, then configure,
# build and run tests/install/consumer against it (find_package(soma) + soma::soma).
# Run as: cmake -DSOMA_BINARY_DIR=... -DSOMA_SOURCE_DIR=... -DSOMA_WORK_DIR=...
#               [-DSOMA_GENERATOR=Ninja] [-DSOMA_CXX_COMPILER=...] -P run_install_test.cmake
foreach(var SOMA_BINARY_DIR SOMA_SOURCE_DIR SOMA_WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_install_test.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT SOMA_GENERATOR)
  set(SOMA_GENERATOR Ninja)
endif()

set(prefix ${SOMA_WORK_DIR}/prefix)
set(consumer_build ${SOMA_WORK_DIR}/consumer-build)
file(REMOVE_RECURSE ${SOMA_WORK_DIR})
file(MAKE_DIRECTORY ${SOMA_WORK_DIR})

function(step name)
  list(JOIN ARGN " " command_line)
  message(STATUS "install test: ${name}: ${command_line}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install test: step '${name}' failed (exit ${rc})")
  endif()
endfunction()

step(install ${CMAKE_COMMAND} --install ${SOMA_BINARY_DIR} --prefix ${prefix})

set(configure_args
  -S ${SOMA_SOURCE_DIR}/tests/install/consumer
  -B ${consumer_build}
  -G ${SOMA_GENERATOR}
  -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_PREFIX_PATH=${prefix}
  # Only the installed package may be found: no user/system package registry.
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
if(SOMA_CXX_COMPILER)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER=${SOMA_CXX_COMPILER})
endif()
step(configure ${CMAKE_COMMAND} ${configure_args})
step(build ${CMAKE_COMMAND} --build ${consumer_build})
step(run ${consumer_build}/consumer)
# The command-line tool is installed as bin/soma and runs from the prefix.
if(EXISTS ${prefix}/bin/soma)
  step(cli ${prefix}/bin/soma --help)
else()
  message(FATAL_ERROR "install test: ${prefix}/bin/soma was not installed")
endif()
message(STATUS "install test: passed")
