# CUDA architectures: CMAKE_CUDA_ARCHITECTURES when given; else the local GPU's compute
# capability when nvidia-smi finds one; else 90 (H100), so a machine without a GPU still
# compiles all CUDA code.
if(NOT BRAID_CUDA)
  return()
endif()
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(braid_arch 90)
  find_program(braid_nvidia_smi nvidia-smi)
  if(braid_nvidia_smi)
    execute_process(COMMAND ${braid_nvidia_smi} --query-gpu=compute_cap --format=csv,noheader
                    OUTPUT_VARIABLE braid_cap RESULT_VARIABLE braid_smi_rc ERROR_QUIET
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(braid_smi_rc EQUAL 0 AND braid_cap MATCHES "^([0-9]+)\\.([0-9]+)")
      set(braid_arch "${CMAKE_MATCH_1}${CMAKE_MATCH_2}")
    endif()
  endif()
  set(CMAKE_CUDA_ARCHITECTURES ${braid_arch})
endif()
message(STATUS "braid: CUDA architectures ${CMAKE_CUDA_ARCHITECTURES}")
enable_language(CUDA)
# CMake 3.25 knows no C++20 flag for nvcc (CMAKE_CUDA_STANDARD 20 set before
# enable_language fails at configure): teach it the flag (nvcc 12+ accepts it), then ask.
if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  list(APPEND CMAKE_CUDA_COMPILE_FEATURES cuda_std_20)
endif()
set(CMAKE_CUDA_STANDARD 20)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
find_package(CUDAToolkit REQUIRED)
