# streamfence_add_plugin(<target> SOURCES a.cpp ...)
# Builds a plugin the host can load and unload: hidden visibility (one exported entry
# symbol), -fno-gnu-unique (otherwise dlclose is a no-op), no undefined symbols (a missing
# symbol fails the build, not the load).
function(streamfence_add_plugin target)
  cmake_parse_arguments(SFP "" "OUTPUT_DIRECTORY" "SOURCES" ${ARGN})
  add_library(${target} MODULE ${SFP_SOURCES})
  if(TARGET StreamFence::sdk)
    target_link_libraries(${target} PRIVATE StreamFence::sdk)
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fno-gnu-unique>)
  target_link_options(${target} PRIVATE -Wl,--no-undefined)
  if(SFP_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SFP_OUTPUT_DIRECTORY})
  endif()
endfunction()
