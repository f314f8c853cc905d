#!/usr/bin/env bash
# cmake --install of the library (components rsclip_lib and rsclip_dev) into a temporary prefix,
# then consumer/consumer.c built against that prefix and run, four ways:
#   pkg-config (shared), pkg-config --static (librsclip.a + Libs.private/Requires.private),
#   find_package(rsclip) -> rsclip::rsclip, and rsclip::rsclip_static.
# Also: librsclip.so exports the public API only (no rsclip__ internals), the installed headers
# compile on their own. Usage: test_install.sh BUILD_DIR SOURCE_DIR C_COMPILER FIXTURES
set -euo pipefail
build=$1 src=$2 cc=$3 fixtures=$4
model=$fixtures/siglip-tiny
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rsclip_install_XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" --component rsclip_lib >/dev/null
cmake --install "$build" --prefix "$prefix" --component rsclip_dev >/dev/null
pc=$(find "$prefix" -name rsclip.pc | head -1)
[ -n "$pc" ] || { echo "FAIL: no rsclip.pc installed"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
for f in include/rsclip/model.h include/rsclip/status.h; do
    [ -f "$prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
[ -f "$libdir/librsclip.a" ] || { echo "FAIL: librsclip.a not installed"; exit 1; }
[ -f "$libdir/cmake/rsclip/rsclipConfig.cmake" ] || { echo "FAIL: no CMake package config"; exit 1; }
shared=0
if [ -e "$libdir/librsclip.so" ]; then
    shared=1
    # (the symbol list in a variable: grep -q closing a pipe early would fail nm under pipefail)
    syms=$(nm -D --defined-only "$libdir/librsclip.so")
    if grep -q ' rsclip__' <<<"$syms"; then
        echo "FAIL: librsclip.so exports library-private rsclip__ symbols"; exit 1
    fi
    grep -q ' rsclip_model_load$' <<<"$syms" ||
        { echo "FAIL: librsclip.so does not export rsclip_model_load"; exit 1; }
fi
expect="embedding of 32 floats"

run() { # name, binary
    out=$(LD_LIBRARY_PATH= "$2" "$model") || { echo "FAIL: $1: the program failed: $out"; exit 1; }
    case $out in *"$expect"*) echo "ok: $1: $out" ;; *) echo "FAIL: $1: $out"; exit 1 ;; esac
}

if command -v pkg-config >/dev/null; then
    export PKG_CONFIG_PATH=$libdir/pkgconfig
    if [ $shared = 1 ]; then
        # shellcheck disable=SC2046
        "$cc" -o "$tmp/pc_shared" "$src/tests/install/consumer/consumer.c" \
            $(pkg-config --cflags --libs rsclip) -Wl,-rpath,"$libdir"
        run "pkg-config (shared)" "$tmp/pc_shared"
    fi
    # the archive by name, then everything it needs from Libs.private / Requires.private
    libs=$(pkg-config --static --libs rsclip | sed 's/-lrsclip\b/-l:librsclip.a/')
    # shellcheck disable=SC2046,SC2086
    "$cc" -o "$tmp/pc_static" "$src/tests/install/consumer/consumer.c" \
        $(pkg-config --cflags rsclip) $libs
    run "pkg-config --static" "$tmp/pc_static"
else
    echo "note: no pkg-config here: the rsclip.pc checks are skipped"
fi

cmake -S "$src/tests/install/consumer" -B "$tmp/cm" -DCMAKE_C_COMPILER="$cc" \
      -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >"$tmp/cm.log" 2>&1 ||
    { cat "$tmp/cm.log"; echo "FAIL: find_package(rsclip)"; exit 1; }
cmake --build "$tmp/cm" >"$tmp/cmb.log" 2>&1 || { cat "$tmp/cmb.log"; echo "FAIL: build"; exit 1; }
run "find_package: rsclip::rsclip" "$tmp/cm/consumer_default"
[ -x "$tmp/cm/consumer_static" ] || { echo "FAIL: rsclip::rsclip_static not defined"; exit 1; }
run "find_package: rsclip::rsclip_static" "$tmp/cm/consumer_static"
# The CUDA module (a build with CUDA, component rsclip_cuda): installed in <libdir>/rsclip/ and
# opened from this prefix, though it is not the configured one, by the shared library and by the
# CLI, the latter also when started through PATH (the loader's trace names the file opened).
if [ -f "$build/core/librsclip_cuda.so" ]; then
    cmake --install "$build" --prefix "$prefix" --component rsclip_cuda >/dev/null
    cmake --install "$build" --prefix "$prefix" --component rsclip_bin >/dev/null
    mod=$libdir/rsclip/librsclip_cuda.so
    [ -f "$mod" ] || { echo "FAIL: librsclip_cuda.so not installed in $libdir/rsclip"; exit 1; }
    opens_module() { # what, command...: the command must open $mod
        local what=$1
        shift
        rm -f "$tmp"/ld.*
        LD_LIBRARY_PATH= LD_DEBUG=files LD_DEBUG_OUTPUT=$tmp/ld "$@" >"$tmp/out" 2>&1 || true
        if grep -q "file=$mod " "$tmp"/ld.*; then
            echo "ok: $what opens $mod ($(tail -1 "$tmp/out"))"
        else
            echo "FAIL: $what did not open $mod: $(tail -1 "$tmp/out")"; exit 1
        fi
    }
    if [ $shared = 1 ] && [ -x "$tmp/pc_shared" ]; then
        opens_module "librsclip.so" "$tmp/pc_shared" "$model" --cuda
    fi
    if [ -x "$prefix/bin/rsclip" ]; then
        opens_module "the installed CLI" "$prefix/bin/rsclip" embed -m "$model" --device cuda --text x
        (cd "$tmp" && PATH="$prefix/bin:$PATH" opens_module "the installed CLI from PATH" \
            rsclip embed -m "$model" --device cuda --text x) || exit 1
    fi
fi
echo "test_install: all checks passed"
