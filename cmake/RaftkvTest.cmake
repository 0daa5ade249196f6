# raftkv_add_test(NAME name SOURCES a.cc b.cc LIBS lib1 lib2 [LABELS l1 l2])
# Builds one GoogleTest binary and registers each of its tests with CTest.
function(raftkv_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main
                        GTest::gmock raftkv_warnings)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  gtest_discover_tests(${T_NAME}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
endfunction()

# raftkv_add_python_tests(PREFIX p LABELS l1 l2 [TIMEOUT s] [ENV K=V ...] [PATH dir ...])
# Registers every test_*.py of the calling folder as one CTest test named
# <p>.<file>, run with Debian's /usr/bin/python3 (where python3-etcd3 lives).
# Each sees RAFTKV_BIN (the server, or empty while it is not built), the process
# harness on PYTHONPATH (plus PATH dirs), and ENV. Such tests start real
# servers, so they run one at a time.
function(raftkv_add_python_tests)
  cmake_parse_arguments(P "" "PREFIX;TIMEOUT" "LABELS;ENV;PATH" ${ARGN})
  if(NOT P_TIMEOUT)
    set(P_TIMEOUT 600)
  endif()
  set(raftkv_bin "")
  if(TARGET raftkv)
    set(raftkv_bin $<TARGET_FILE:raftkv>)
  endif()
  set(pythonpath ${PROJECT_SOURCE_DIR}/tests/harness ${P_PATH})
  string(REPLACE ";" ":" pythonpath "${pythonpath}")
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/test_*.py)
  foreach(t IN LISTS tests)
    get_filename_component(name ${t} NAME_WE)
    add_test(NAME ${P_PREFIX}.${name} COMMAND /usr/bin/python3 ${t})
    set_tests_properties(${P_PREFIX}.${name} PROPERTIES
      ENVIRONMENT "RAFTKV_BIN=${raftkv_bin};PYTHONDONTWRITEBYTECODE=1;PYTHONPATH=${pythonpath};${P_ENV}"
      LABELS "${P_LABELS}"
      TIMEOUT ${P_TIMEOUT}
      RUN_SERIAL TRUE)
  endforeach()
endfunction()
