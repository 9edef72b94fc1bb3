# SPDX-License-Identifier: Apache-2.0
# megaring_apply_sanitizer(target): adds the MEGARING_SANITIZE instrumentation
# to a target's host code (g++ directly, and nvcc's host pass via -Xcompiler).
# Device code is never instrumented; the sanitizers check the CPU backend.
function(megaring_apply_sanitizer target)
  if(MEGARING_SANITIZE STREQUAL "")
    return()
  elseif(MEGARING_SANITIZE STREQUAL "thread")
    set(flags -fsanitize=thread)
  elseif(MEGARING_SANITIZE STREQUAL "address")
    # One sanitizer per flag: nvcc's -Xcompiler splits its value on commas,
    # so "-fsanitize=address,undefined" would reach gcc as two arguments.
    set(flags -fsanitize=address -fsanitize=undefined -fno-sanitize-recover=undefined)
  else()
    message(FATAL_ERROR "MEGARING_SANITIZE must be '', 'thread' or 'address'")
  endif()
  set(cxx_flags ${flags} -fno-omit-frame-pointer)
  set(cuda_flags)
  foreach(flag IN LISTS cxx_flags)
    list(APPEND cuda_flags "-Xcompiler=${flag}")
  endforeach()
  target_compile_options(${target} PRIVATE
    "$<$<COMPILE_LANGUAGE:CXX>:${cxx_flags}>"
    "$<$<COMPILE_LANGUAGE:C>:${cxx_flags}>"
    "$<$<COMPILE_LANGUAGE:CUDA>:${cuda_flags}>")
  target_link_options(${target} PUBLIC ${flags})
endfunction()
