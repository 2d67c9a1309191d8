# Finds the libraries that Debian or NVIDIA's Python wheels install in places CMake does not search
# by default. Each becomes an imported target hpt::<name>.

# oneDNN (Debian libdnnl-dev): CPU GEMM and convolutions. Found by path rather than through its
# CMake package, which drags in OpenCL for Debian's GPU-enabled build.
find_path(DNNL_INCLUDE_DIR dnnl.hpp)
find_library(DNNL_LIBRARY NAMES dnnl)
if(NOT DNNL_INCLUDE_DIR OR NOT DNNL_LIBRARY)
  message(FATAL_ERROR "oneDNN not found: install Debian's libdnnl-dev (see README.md)")
endif()
add_library(hpt::dnnl UNKNOWN IMPORTED)
set_target_properties(hpt::dnnl PROPERTIES IMPORTED_LOCATION ${DNNL_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${DNNL_INCLUDE_DIR})

# stb (Debian libstb-dev): headers only; image decoding, resizing and PNG writing are compiled
# into the engine (engine/data/image_decode.cpp, ssl/preview.cpp).
find_path(STB_INCLUDE_DIR stb/stb_image.h)
if(NOT STB_INCLUDE_DIR)
  message(FATAL_ERROR "stb not found: install Debian's libstb-dev (see README.md)")
endif()

# Where pip puts nvidia-cudnn-cu13 / nvidia-nccl-cu13 (the lent GPU machine has them there).
function(_hpt_wheel_hints out pkg)
  file(GLOB _dirs
    /usr/local/lib/python3*/dist-packages/nvidia/${pkg}
    /usr/local/lib/python3*/site-packages/nvidia/${pkg}
    /usr/lib/python3/dist-packages/nvidia/${pkg}
    $ENV{HOME}/.local/lib/python3*/site-packages/nvidia/${pkg}
    /opt/conda/lib/python3*/site-packages/nvidia/${pkg}
    /opt/*/.venv/lib/python3*/site-packages/nvidia/${pkg}
    /root/.pyenv/versions/*/lib/python3*/site-packages/nvidia/${pkg})
  if(DEFINED ENV{VIRTUAL_ENV})
    file(GLOB _venv $ENV{VIRTUAL_ENV}/lib/python3*/site-packages/nvidia/${pkg})
    list(APPEND _dirs ${_venv})
  endif()
  set(${out} ${_dirs} PARENT_SCOPE)
endfunction()

function(_hpt_find_cuda_lib target header libname pkg)
  string(TOUPPER ${target} _up)
  _hpt_wheel_hints(_hints ${pkg})
  find_path(${_up}_INCLUDE_DIR ${header}
    HINTS $ENV{${_up}_ROOT} ${_hints} ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda
    PATH_SUFFIXES include)
  find_library(${_up}_LIBRARY NAMES ${libname} lib${libname}.so.9 lib${libname}.so.2
    HINTS $ENV{${_up}_ROOT} ${_hints} ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda
    PATH_SUFFIXES lib lib64)
  if(${_up}_INCLUDE_DIR AND ${_up}_LIBRARY)
    add_library(hpt::${target} UNKNOWN IMPORTED)
    set_target_properties(hpt::${target} PROPERTIES IMPORTED_LOCATION ${${_up}_LIBRARY}
      INTERFACE_INCLUDE_DIRECTORIES ${${_up}_INCLUDE_DIR})
    set(${_up}_FOUND TRUE PARENT_SCOPE)
  else()
    set(${_up}_FOUND FALSE PARENT_SCOPE)
  endif()
endfunction()

macro(hpt_find_optional_deps)
  if(HPT_CUDNN)
    _hpt_find_cuda_lib(cudnn cudnn.h cudnn cudnn)
    if(NOT CUDNN_FOUND)
      message(WARNING "HPT_CUDNN is on but cuDNN was not found (set CUDNN_ROOT); turning it off")
      set(HPT_CUDNN OFF CACHE BOOL "" FORCE)
    endif()
  endif()
  if(HPT_NCCL)
    _hpt_find_cuda_lib(nccl nccl.h nccl nccl)
    if(NOT NCCL_FOUND)
      message(WARNING "HPT_NCCL is on but NCCL was not found (set NCCL_ROOT); turning it off")
      set(HPT_NCCL OFF CACHE BOOL "" FORCE)
    endif()
  endif()
  if(HPT_MPI)
    find_package(MPI COMPONENTS CXX QUIET)
    if(NOT MPI_CXX_FOUND)
      message(STATUS "MPI not found (Debian: libopenmpi-dev); building without it")
      set(HPT_MPI OFF CACHE BOOL "" FORCE)
    endif()
  endif()
endmacro()
