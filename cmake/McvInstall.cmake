# Installs the libraries, public headers and the mcv CLI, and exports find_package(mambacv).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(_mcv_targets mcv_core mcv_kernels mcv_vision)
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
install(EXPORT mambacvTargets NAMESPACE mcv:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mambacv)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mambacvConfig.cmake.in
  ${PROJECT_BINARY_DIR}/mambacvConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mambacv)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mambacvConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mambacvConfig.cmake ${PROJECT_BINARY_DIR}/mambacvConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mambacv)
