/* The one source of the shared library target: librsclip.so is librsclip.a linked whole
 * (cmake/install_lib.cmake), exporting only the public API (cmake/rsclip.map). */
int rsclip__shared_library_marker;
