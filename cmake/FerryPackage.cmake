# What `cmake --install` lays out, and the .deb CPack makes of it:
#   lib/libferry.so*, lib/libferry.a          the library, shared and static
#   include/ferry/*.h, include/tent/*.h       the public C++ headers, ferry.h (C), version.h
#   lib/cmake/Ferry/                          find_package(Ferry CONFIG): Ferry::ferry, Ferry::ferry_static
#   lib/pkgconfig/ferry.pc                    pkg-config --cflags --libs ferry
#   bin/ferry-*                               the tools (linked statically against Ferry)
include(CMakePackageConfigHelpers)

# What the static library needs at a consumer: the pkg-config modules Ferry::ferry_static
# resolves (named in FerryConfig's messages) and the libraries `pkg-config --static` adds.
# They are not Requires.private of ferry.pc: pkg-config would then insist on their -dev
# packages even to link the shared library.
set(FERRY_PC_REQUIRES "hiredis libxxhash prometheus-cpp-core libcurl libcrypto")
set(FERRY_PC_LIBS_PRIVATE "-lhiredis -lxxhash -lprometheus-cpp-core -lcurl -lcrypto -lpthread -ldl")
if(FERRY_LIBURING_FOUND)
  string(APPEND FERRY_PC_REQUIRES " liburing")
  string(APPEND FERRY_PC_LIBS_PRIVATE " -luring")
endif()

install(TARGETS ferry EXPORT FerryTargets LIBRARY DESTINATION lib)
install(TARGETS ferry_static EXPORT FerryStaticTargets ARCHIVE DESTINATION lib)
install(DIRECTORY include/ferry include/tent DESTINATION include)
install(FILES ${CMAKE_BINARY_DIR}/include/ferry/version.h DESTINATION include/ferry)
install(EXPORT FerryTargets NAMESPACE Ferry:: DESTINATION lib/cmake/Ferry)
install(EXPORT FerryStaticTargets NAMESPACE Ferry:: DESTINATION lib/cmake/Ferry)

configure_package_config_file(cmake/FerryConfig.cmake.in ${CMAKE_BINARY_DIR}/cmake/FerryConfig.cmake
                              INSTALL_DESTINATION lib/cmake/Ferry)
# 0.x: a minor release may break the API, so only the same major.minor is compatible.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/FerryConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/FerryConfig.cmake ${CMAKE_BINARY_DIR}/cmake/FerryConfigVersion.cmake
        DESTINATION lib/cmake/Ferry)

configure_file(cmake/ferry.pc.in ${CMAKE_BINARY_DIR}/pkgconfig/ferry.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/pkgconfig/ferry.pc DESTINATION lib/pkgconfig)

if(FERRY_BUILD_TOOLS)
  install(TARGETS ferry-bench ferry-info ferry-metadata ferry-pingpong RUNTIME DESTINATION bin)
  install(PROGRAMS ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/ferry-plot DESTINATION bin)
endif()

# `cpack -G DEB` (scripts/package.sh): one package with the library, headers and tools.
# dpkg-shlibdeps derives the run-time dependencies from the binaries; the development
# packages that Ferry::ferry_static and `pkg-config --static` need are suggested.
set(CPACK_PACKAGE_NAME ferry)
set(CPACK_PACKAGE_VENDOR "Ferry developers")
set(CPACK_PACKAGE_CONTACT "Ferry developers <ferry@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Ferry transfer engine: KV-cache and weight transfers (library, headers, tools)")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS
    "libhiredis-dev, libxxhash-dev, prometheus-cpp-dev, libcurl4-openssl-dev, libssl-dev, liburing-dev, pkg-config")
# rdma-core and the CUDA driver are opened at run time where present, never required;
# ferry-plot (ferry-bench --plot) draws with matplotlib.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libibverbs1, python3-matplotlib")
include(CPack)
