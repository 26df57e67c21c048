# Installs the SDK (component dev) from the build tree into a scratch prefix, then configures
# and builds examples/validator-example against it, exactly as a plugin author would.
foreach(v CMAKE_COMMAND SF_BUILD_DIR SF_EXAMPLE_DIR SF_OOT_DIR)
  if(NOT ${v})
    message(FATAL_ERROR "${v} not set")
  endif()
endforeach()

file(REMOVE_RECURSE ${SF_OOT_DIR})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}\n${err}")
  endif()
endfunction()

run(${CMAKE_COMMAND} --install ${SF_BUILD_DIR} --prefix ${SF_OOT_DIR}/prefix --component dev)
# Only the SDK, nothing of the host, may be needed: configure with just that prefix.
run(${CMAKE_COMMAND} -S ${SF_EXAMPLE_DIR} -B ${SF_OOT_DIR}/build -DCMAKE_PREFIX_PATH=${SF_OOT_DIR}/prefix
    -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${SF_OOT_DIR}/build)
if(NOT EXISTS ${SF_OOT_DIR}/build/validator_example.so)
  message(FATAL_ERROR "the example build produced no validator_example.so")
endif()
message(STATUS "out-of-tree plugin built: ${SF_OOT_DIR}/build/validator_example.so")
