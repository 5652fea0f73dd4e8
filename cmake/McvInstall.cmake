# Installs the libraries, public headers and the mcv CLI, and exports find_package(mambacv) with
# the targets mcv::core, mcv::kernels and mcv::vision. The installed tree is relocatable: the
# exported files name paths relative to their own location, and the binaries find the libraries
# through $ORIGIN-relative run paths. tests/install checks all of this from a moved install.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(_mcv_targets mcv_core mcv_kernels mcv_vision)
set(MCV_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/mambacv)

# The public headers use C++20 (std::span, defaulted comparisons): say so in the usage
# requirements, so a consumer gets the right standard without knowing it.
target_compile_features(mcv_core PUBLIC cxx_std_20)

# Export names mcv::core etc. directly (the build tree's aliases have the same names), so
# consumers of the build tree and of the installed package write the same target names.
set_target_properties(mcv_core PROPERTIES EXPORT_NAME core)
set_target_properties(mcv_kernels PROPERTIES EXPORT_NAME kernels)
set_target_properties(mcv_vision PROPERTIES EXPORT_NAME vision)

# Run paths relative to the installed file, unless the packager chose their own.
if(NOT DEFINED CMAKE_INSTALL_RPATH AND NOT APPLE)
  file(RELATIVE_PATH _mcv_bin_to_lib ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}
       ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR})
  set_target_properties(${_mcv_targets} PROPERTIES INSTALL_RPATH "$ORIGIN")
  set_target_properties(mcv PROPERTIES INSTALL_RPATH "$ORIGIN/${_mcv_bin_to_lib}")
  # Plus the directories of outside libraries not on the default search path (the CUDA
  # toolkit's), as the build tree has them.
  set_target_properties(${_mcv_targets} mcv PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)
endif()

# A shared library hides its private dependencies; a static one hands them to the consumer, so
# the package config must find them again (and the CUDA libraries, whose build-only target is not
# exported, are named here through the toolkit's own imported targets).
get_target_property(_mcv_core_type mcv_core TYPE)
set(MCV_PACKAGE_STATIC OFF)
if(_mcv_core_type STREQUAL "STATIC_LIBRARY")
  set(MCV_PACKAGE_STATIC ON)
  if(MCV_HAVE_CUDA)
    # What mcv_core_cuda_headers links in the build (cuDNN through the config's mcv::cudnn).
    foreach(_mcv_lib CUDA::cudart CUDA::cublas CUDA::cublasLt mcv::cudnn)
      set_property(TARGET mcv_core APPEND PROPERTY INTERFACE_LINK_LIBRARIES
        "$<INSTALL_INTERFACE:$<LINK_ONLY:${_mcv_lib}>>")
    endforeach()
  endif()
endif()
# Plain ON/OFF for the config template (find_package leaves FALSE, NOTFOUND or nothing).
foreach(_mcv_dep ZLIB_FOUND MCV_HAVE_JPEG MCV_HAVE_PNG MCV_HAVE_CUDA)
  if(${_mcv_dep})
    set(MCV_PACKAGE_${_mcv_dep} ON)
  else()
    set(MCV_PACKAGE_${_mcv_dep} OFF)
  endif()
endforeach()

install(TARGETS ${_mcv_targets} EXPORT mambacvTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS mcv RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(dir core kernels vision)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          FILES_MATCHING PATTERN "*.h")
endforeach()
install(EXPORT mambacvTargets NAMESPACE mcv:: DESTINATION ${MCV_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mambacvConfig.cmake.in
  ${PROJECT_BINARY_DIR}/mambacvConfig.cmake INSTALL_DESTINATION ${MCV_INSTALL_CMAKEDIR}
  NO_SET_AND_CHECK_MACRO)
# Before 1.0 a minor version may break the API, so only the same major.minor matches.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mambacvConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mambacvConfig.cmake ${PROJECT_BINARY_DIR}/mambacvConfigVersion.cmake
  DESTINATION ${MCV_INSTALL_CMAKEDIR})
