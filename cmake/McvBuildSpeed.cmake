# Build time. tools/test builds everything from scratch (CI: 2 cores), and most of the C++ compile
# time outside the CUDA kernels goes to the same templates (nlohmann::json, GoogleTest, CLI11, the
# tensor code) instantiated and optimised again in every file. With MCV_FAST_BUILD (the release and
# asan presets) targets compile as unity batches - a few translation units instead of one per file -
# or, where they cannot, with a precompiled header (target_precompile_headers; the ccache launcher in
# the top CMakeLists.txt accepts them). Without it every file is its own translation unit.
#
# A unity batch must not mix files whose file-local names clash or overload each other: the batched
# CLI and test files keep their helpers in a namespace named after the file, and the libraries are
# batched one source folder at a time (a model family's config, model and variants). Under
# AddressSanitizer the installed binaries (the libraries and the CLI, with the oracle harness linked
# in) are not batched: ASan's metadata names each translation unit's main file, a unity source lives
# in the build tree, and no installed binary may name the build tree (the install_package test).

set(MCV_UNITY_INSTALLED ${MCV_FAST_BUILD})
if(CMAKE_CXX_FLAGS MATCHES "-fsanitize=[^ ]*address")
  set(MCV_UNITY_INSTALLED OFF)
endif()

# mcv_unity_build(TARGET [BY_FOLDER ROOT]): unity batches of the target's C++ sources; BY_FOLDER puts
# the sources of each folder under ROOT in a batch of their own. Sources marked
# SKIP_UNITY_BUILD_INCLUSION stay on their own; CUDA sources are never batched.
function(mcv_unity_build target)
  cmake_parse_arguments(arg "" "BY_FOLDER" "" ${ARGN})
  set_target_properties(${target} PROPERTIES UNITY_BUILD ON)
  if(arg_BY_FOLDER)
    set_target_properties(${target} PROPERTIES UNITY_BUILD_MODE GROUP)
    get_filename_component(parent ${arg_BY_FOLDER} DIRECTORY)
  endif()
  get_target_property(sources ${target} SOURCES)
  foreach(src IN LISTS sources)
    if(src MATCHES "\\.cu$")
      set_source_files_properties(${src} PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
    elseif(arg_BY_FOLDER AND src MATCHES "\\.cpp$")
      get_filename_component(path ${src} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
      get_filename_component(dir ${path} DIRECTORY)
      file(RELATIVE_PATH group ${parent} ${dir})  # src, src/vmamba, ...
      string(MAKE_C_IDENTIFIER "${group}" group)
      set_source_files_properties(${src} PROPERTIES UNITY_GROUP ${group})
    endif()
  endforeach()
endfunction()
