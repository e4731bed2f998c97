# faas_library(NAME SRCS ... DEPS ...): STATIC library faas_NAME with alias faas::NAME,
# public headers in NAME/include, and our warning flags.
set(FAAS_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
    -Wnon-virtual-dtor -Woverloaded-virtual -Wold-style-cast -Wimplicit-fallthrough -Werror
    # GCC 12 at -O3 reports -Wrestrict on plain std::string concatenation (GCC PR105329):
    # a known false positive, not a finding.
    $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>)

function(faas_warnings target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${FAAS_WARNINGS}>)
endfunction()

function(faas_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(faas_${name} STATIC ${ARG_SRCS})
  add_library(faas::${name} ALIAS faas_${name})
  target_include_directories(faas_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(faas_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  set_target_properties(faas_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  faas_warnings(faas_${name})
endfunction()
