# Finds the dependencies. Header-only ones may come from MCV_DEPS_PREFIX (extracted Debian
# packages carried to a machine without them, see tools/gpu-check).

set(_mcv_hints)
if(MCV_DEPS_PREFIX)
  list(APPEND _mcv_hints ${MCV_DEPS_PREFIX}/usr/include)
endif()

function(mcv_find_header var header)
  find_path(${var} ${header} HINTS ${_mcv_hints} PATH_SUFFIXES eigen3 stb)
  if(NOT ${var})
    message(FATAL_ERROR "mambacv needs ${header}; install the Debian package (tools/test does) or pass -DMCV_DEPS_PREFIX")
  endif()
endfunction()

mcv_find_header(MCV_JSON_INCLUDE nlohmann/json.hpp)
mcv_find_header(MCV_EIGEN_INCLUDE Eigen/Core)
mcv_find_header(MCV_CLI11_INCLUDE CLI/CLI.hpp)
mcv_find_header(MCV_STB_INCLUDE stb_image.h)

add_library(mcv_third_party INTERFACE)
target_include_directories(mcv_third_party SYSTEM INTERFACE
  ${MCV_JSON_INCLUDE} ${MCV_EIGEN_INCLUDE} ${MCV_CLI11_INCLUDE} ${MCV_STB_INCLUDE})

find_package(Threads REQUIRED)
find_package(ZLIB)

# libjpeg-turbo and libpng: the decoders PIL uses, so pixels match the official pipelines.
find_package(JPEG)
find_package(PNG)
set(MCV_HAVE_JPEG ${JPEG_FOUND})
set(MCV_HAVE_PNG ${PNG_FOUND})

macro(mcv_optional name var)
  set(${var} OFF)
  if(NOT MCV_WITH_${name} STREQUAL "OFF")
    find_package(${ARGN} QUIET)
    if(${ARGV2}_FOUND)
      set(${var} ON)
    elseif(MCV_WITH_${name} STREQUAL "ON")
      message(FATAL_ERROR "MCV_WITH_${name}=ON but ${ARGV2} was not found")
    endif()
  endif()
endmacro()

mcv_optional(QT MCV_HAVE_QT Qt6 COMPONENTS Widgets)
mcv_optional(ITK MCV_HAVE_ITK ITK)
mcv_optional(OPENCV MCV_HAVE_OPENCV OpenCV)
