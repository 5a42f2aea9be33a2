# PyocoPlugin.cmake - pyoco_add_plugin_module(), installed with the package
# (included by PyocoConfig.cmake; needs the Pyoco::plugin target).
#
#   pyoco_add_plugin_module(<name> SOURCES a.c b.c [LIBS lib ...]
#                           [DESTINATION dir] [NO_INSTALL])
#
# Builds the MODULE library <name>.so (no "lib" prefix: the server looks for
# <plugin_path>/<name>.so, and <name> must equal the descriptor's .name and
# the block name in pyoco.yaml):
#  - only the entry point is exported (hidden visibility by default; mark it
#    with PYOCO_PLUGIN_EXPORT),
#  - linked with -Wl,--no-undefined, so a missing library or a call into a
#    server symbol fails at link time instead of at dlopen time,
#  - C11, linked to Pyoco::plugin (headers + jansson) and LIBS.
# `install()` puts it in DESTINATION (default lib/pyoco/plugins under the
# install prefix: install with the server's prefix and the server finds it
# without a plugin_path entry).
include_guard(GLOBAL)

function(pyoco_add_plugin_module name)
  cmake_parse_arguments(P "NO_INSTALL" "DESTINATION" "SOURCES;LIBS" ${ARGN})
  if(NOT P_SOURCES)
    message(FATAL_ERROR "pyoco_add_plugin_module(${name}): no SOURCES given")
  endif()
  if(P_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR
      "pyoco_add_plugin_module(${name}): unknown arguments: ${P_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT name MATCHES "^[a-z0-9_]+$")
    message(FATAL_ERROR
      "pyoco_add_plugin_module(${name}): plugin names are [a-z0-9_]+")
  endif()
  add_library(${name} MODULE ${P_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX "" OUTPUT_NAME ${name} SUFFIX ".so"
    C_VISIBILITY_PRESET hidden
    POSITION_INDEPENDENT_CODE ON)
  target_compile_features(${name} PRIVATE c_std_11)
  target_link_libraries(${name} PRIVATE Pyoco::plugin ${P_LIBS})
  target_link_options(${name} PRIVATE -Wl,--no-undefined)
  if(NOT P_NO_INSTALL)
    if(NOT P_DESTINATION)
      include(GNUInstallDirs)
      set(P_DESTINATION ${CMAKE_INSTALL_LIBDIR}/pyoco/plugins)
    endif()
    install(TARGETS ${name} LIBRARY DESTINATION ${P_DESTINATION})
  endif()
endfunction()
