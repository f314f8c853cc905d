# The optional CUDA encoder (core/src/cuda/). RSCLIP_CUDA:
#   AUTO (default)  build it when nvcc and cuBLAS/cuBLASLt are found, else build without it
#   ON              build it, fail when nvcc or cuBLAS is missing
#   OFF             never (the CPU build and its tests do not change either way)
# Sets RSCLIP_HAVE_CUDA. Code targets: RSCLIP_CUDA_GENCODE (default Hopper sm_90a machine code plus
# compute_90 PTX, which the driver compiles for newer GPUs); e.g. add
# "-gencode=arch=compute_80,code=sm_80" for an A100.
set(RSCLIP_CUDA AUTO CACHE STRING "CUDA encoder: AUTO (when nvcc and cuBLAS are found), ON, OFF")
set_property(CACHE RSCLIP_CUDA PROPERTY STRINGS AUTO ON OFF)
set(RSCLIP_CUDA_GENCODE
    "-gencode=arch=compute_90a,code=sm_90a;-gencode=arch=compute_90,code=compute_90"
    CACHE STRING "nvcc -gencode flags of the CUDA encoder")

set(RSCLIP_HAVE_CUDA OFF)
if(NOT RSCLIP_CUDA STREQUAL "OFF" AND CMAKE_VERSION VERSION_LESS 3.18)
    if(RSCLIP_CUDA STREQUAL "ON")
        message(FATAL_ERROR "RSCLIP_CUDA=ON needs CMake >= 3.18 (this is ${CMAKE_VERSION})")
    endif()
    message(STATUS "rsclip: CUDA encoder OFF: CMake ${CMAKE_VERSION} < 3.18")
elseif(RSCLIP_CUDA STREQUAL "AUTO" AND (RSCLIP_SANITIZE OR RSCLIP_FUZZ))
    # sanitizer and fuzzer builds test the C code; nvcc objects would only slow them down
    message(STATUS "rsclip: CUDA encoder OFF in sanitizer/fuzzer builds (RSCLIP_CUDA=ON forces it)")
elseif(NOT RSCLIP_CUDA STREQUAL "OFF")
    if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
        set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
    endif()
    include(CheckLanguage)
    check_language(CUDA)
    set(_why "")
    if(CMAKE_CUDA_COMPILER)
        if(NOT DEFINED CUDAToolkit_ROOT)
            get_filename_component(_nvcc_bin ${CMAKE_CUDA_COMPILER} DIRECTORY)
            get_filename_component(CUDAToolkit_ROOT ${_nvcc_bin} DIRECTORY)
        endif()
        find_package(CUDAToolkit QUIET)
        if(CUDAToolkit_FOUND AND TARGET CUDA::cublasLt AND TARGET CUDA::cublas
           AND TARGET CUDA::cudart)
            set(RSCLIP_HAVE_CUDA ON)
        else()
            set(_why "cuBLAS/cuBLASLt or the CUDA runtime not found beside ${CMAKE_CUDA_COMPILER}")
        endif()
    else()
        set(_why "no nvcc (set CMAKE_CUDA_COMPILER or put nvcc on PATH)")
    endif()
    if(RSCLIP_HAVE_CUDA)
        # Architectures come from RSCLIP_CUDA_GENCODE, not from CMake (which only learnt the
        # "90a" spelling in 3.28).
        set(CMAKE_CUDA_ARCHITECTURES OFF)
        enable_language(CUDA)
        # The CUDA objects live in their own module (librsclip_cuda.so): nothing that links
        # librsclip.a links CUDA, so the CUDA linker preference must not propagate to it.
        set(CMAKE_CUDA_LINKER_PREFERENCE_PROPAGATES OFF)
        set(CMAKE_CUDA_STANDARD 17)
        set(CMAKE_CUDA_STANDARD_REQUIRED ON)
        message(STATUS "rsclip: CUDA encoder ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                       "${RSCLIP_CUDA_GENCODE})")
    elseif(RSCLIP_CUDA STREQUAL "ON")
        message(FATAL_ERROR "RSCLIP_CUDA=ON but ${_why}")
    else()
        message(STATUS "rsclip: CUDA encoder OFF: ${_why}")
    endif()
elseif(RSCLIP_CUDA STREQUAL "OFF")
    message(STATUS "rsclip: CUDA encoder OFF (RSCLIP_CUDA=OFF)")
endif()
