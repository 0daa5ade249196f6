# Layering enforced by the build (docs/architecture.md).
#
# Headers are included as "<layer>/<file>.h", e.g. #include "raft/types.h".
# src/ itself is never on the include path. Instead each layer's folder is
# exposed through its own directory of one symlink,
#   <build>/layer-include/<layer>/<layer> -> src/<layer>
# which is added to the include path of that layer's library only, and reaches
# other targets only through target_link_libraries. So a layer can include
# exactly the layers it links (the ones below it); an upward #include fails with
# "No such file or directory". tests/layering proves it.
function(raftkv_expose_headers target layer)
  set(dir ${CMAKE_BINARY_DIR}/layer-include/${layer})
  file(MAKE_DIRECTORY ${dir})
  if(NOT EXISTS ${dir}/${layer})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${layer} ${dir}/${layer} SYMBOLIC)
  endif()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} INTERFACE ${dir})
  else()
    target_include_directories(${target} PUBLIC ${dir})
  endif()
endfunction()
