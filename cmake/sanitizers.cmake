# BRAID_SANITIZE=address builds with AddressSanitizer and UndefinedBehaviorSanitizer,
# BRAID_SANITIZE=thread with ThreadSanitizer. Host code only: nvcc does not take them.
if(BRAID_SANITIZE STREQUAL "address")
  set(braid_sanitize_flags -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
elseif(BRAID_SANITIZE STREQUAL "thread")
  set(braid_sanitize_flags -fsanitize=thread -fno-omit-frame-pointer)
elseif(NOT BRAID_SANITIZE STREQUAL "")
  message(FATAL_ERROR "BRAID_SANITIZE must be '', 'address' or 'thread', not '${BRAID_SANITIZE}'")
endif()
if(braid_sanitize_flags)
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${braid_sanitize_flags}>")
  add_link_options(${braid_sanitize_flags})
endif()
