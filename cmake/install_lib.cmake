# Installing the C library so that other programs can link it (included from core/CMakeLists.txt,
# after rsclip_core is defined). Components:
#   rsclip_lib  librsclip.so.0 (RSCLIP_SHARED): its dependencies are its own DT_NEEDED entries
#   rsclip_dev  headers, librsclip.a, rsclip.pc, lib/cmake/rsclip/ (find_package(rsclip))
# (rsclip_bin is the CLI, rsclip_cuda the CUDA module lib/rsclip/librsclip_cuda.so that the
# library, the CLI and the plugin open for --device cuda (core/CMakeLists.txt), when built; the
# plugin installs into GDAL's plugin directory on its own.)
#
#   pkg-config --cflags --libs rsclip           -> the shared library
#   pkg-config --static --cflags --libs rsclip  -> adds what librsclip.a needs (GDAL, SQLite,
#                                                  PCRE2, cairo, OpenBLAS, libcrypto, libm, pthread)
#   find_package(rsclip) -> rsclip::rsclip (shared when built, else static) and
#                           rsclip::rsclip_static (when its dependencies are found)
include(CMakePackageConfigHelpers)

set(RSCLIP_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/rsclip)
if(RSCLIP_FUZZ)
    set(RSCLIP_SHARED OFF) # fuzzer-instrumented objects do not make a usable shared library
endif()

if(RSCLIP_SHARED)
    add_library(rsclip_shared SHARED ${PROJECT_SOURCE_DIR}/cmake/rsclip_shared.c)
    set_target_properties(rsclip_shared PROPERTIES
        OUTPUT_NAME rsclip EXPORT_NAME rsclip VERSION ${PROJECT_VERSION} SOVERSION 0)
    # Everything of librsclip.a, exporting only the public API (rsclip_x, not rsclip__x).
    if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.24)
        target_link_libraries(rsclip_shared PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,rsclip_core>")
    else()
        target_link_libraries(rsclip_shared PRIVATE
            -Wl,--whole-archive $<TARGET_FILE:rsclip_core> -Wl,--no-whole-archive rsclip_core)
    endif()
    target_link_options(rsclip_shared PRIVATE
        "LINKER:--version-script=${PROJECT_SOURCE_DIR}/cmake/rsclip.map" "LINKER:--no-undefined")
    set_property(TARGET rsclip_shared APPEND PROPERTY LINK_DEPENDS
                 ${PROJECT_SOURCE_DIR}/cmake/rsclip.map)
    target_include_directories(rsclip_shared INTERFACE
        $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
        $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
    install(TARGETS rsclip_shared EXPORT rsclipTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT rsclip_lib
                NAMELINK_COMPONENT rsclip_dev)
    install(EXPORT rsclipTargets NAMESPACE rsclip:: DESTINATION ${RSCLIP_CMAKE_DIR}
            COMPONENT rsclip_dev)
endif()

install(TARGETS rsclip_core EXPORT rsclipStaticTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT rsclip_dev)
install(EXPORT rsclipStaticTargets NAMESPACE rsclip:: DESTINATION ${RSCLIP_CMAKE_DIR}
        COMPONENT rsclip_dev)
install(FILES ${RSCLIP_PUBLIC_HEADER_FILES} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rsclip
        COMPONENT rsclip_dev)

# rsclip.pc: relocatable (prefix found from the .pc file's own folder).
file(RELATIVE_PATH RSCLIP_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" RSCLIP_PC_TO_PREFIX "${RSCLIP_PC_TO_PREFIX}")
set(RSCLIP_PC_REQUIRES_PRIVATE "libcrypto")
set(RSCLIP_PC_LIBS_PRIVATE "-lm -pthread")
if(NOT RSCLIP_MODEL_ONLY)
    string(APPEND RSCLIP_PC_REQUIRES_PRIVATE " gdal sqlite3 libpcre2-8 cairo cairo-pdf cairo-png")
endif()
if(RSCLIP_HAVE_OPENBLAS)
    string(APPEND RSCLIP_PC_REQUIRES_PRIVATE " openblas")
endif()
if(RSCLIP_HAVE_CUDA)
    string(PREPEND RSCLIP_PC_LIBS_PRIVATE "-ldl ") # the CUDA module is opened with dlopen
endif()
string(STRIP "${RSCLIP_PC_REQUIRES_PRIVATE}" RSCLIP_PC_REQUIRES_PRIVATE)
configure_file(${PROJECT_SOURCE_DIR}/cmake/rsclip.pc.in ${CMAKE_CURRENT_BINARY_DIR}/rsclip.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/rsclip.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT rsclip_dev)

# find_package(rsclip)
set(RSCLIP_CFG_MODEL_ONLY ${RSCLIP_MODEL_ONLY})
set(RSCLIP_CFG_OPENBLAS ${RSCLIP_HAVE_OPENBLAS})
set(RSCLIP_CFG_CUDA ${RSCLIP_HAVE_CUDA})
set(RSCLIP_CFG_SHARED ${RSCLIP_SHARED})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/rsclipConfig.cmake.in
    ${CMAKE_CURRENT_BINARY_DIR}/rsclipConfig.cmake INSTALL_DESTINATION ${RSCLIP_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/rsclipConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/rsclipConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/rsclipConfigVersion.cmake
        DESTINATION ${RSCLIP_CMAKE_DIR} COMPONENT rsclip_dev)
