#!/usr/bin/env bash
# The CUDA libraries are loaded only by a program that asks for a GPU.
#
# Usage: test_cuda_lazy.sh MODULE TEST_CUDA [BINARY...]
#   MODULE     librsclip_cuda.so of this build
#   TEST_CUDA  the test_cuda executable (it asks for a CUDA device: the positive control)
#   BINARY     programs and plugins linking the library (the rsclip CLI, gdal_RSCLIP.so, the
#              shared librsclip.so): none may list a CUDA library among its DT_NEEDED entries
#
# Checks, in a build with the CUDA encoder:
#   - the module itself needs cuBLASLt, cuBLAS and the CUDA runtime (what the others must not);
#   - no BINARY needs any of them;
#   - on the CPU nothing maps a CUDA library or the module (LD_DEBUG=files lists every object the
#     dynamic loader opens): `rsclip --version`, `rsclip embed --text` and `rsclip index` (CPU
#     encoders made and freed), `rsclip search`; `gdalinfo --formats` with the plugin, and
#     `ogrinfo` running a text query through the plugin;
#   - test_cuda, which asks for a device, does map the module and cuBLASLt: the loader's trace
#     sees them when they are loaded, so the checks above can fail.
# Environment: RSCLIP_FIXTURES (the tiny model), RSCLIP_SOURCE_DIR (the samples), as ctest sets.
set -u
module=$1 test_cuda=$2
shift 2
fail=0
bad() { echo "FAIL: $*"; fail=1; }
cuda_libs='lib(cublasLt|cublas|cudart)\.so'

needed() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

[ -f "$module" ] || { echo "FAIL: no module at $module"; exit 1; }
n=$(needed "$module" | grep -cE "$cuda_libs")
[ "$n" -eq 3 ] || bad "$module needs $n of cuBLASLt, cuBLAS, cudart (want 3)"

for b in "$@"; do
    [ -f "$b" ] || { bad "$b: not built"; continue; }
    if needed "$b" | grep -qE "$cuda_libs"; then
        bad "$b links CUDA: $(needed "$b" | grep -E "$cuda_libs" | tr '\n' ' ')"
    else
        echo "ok: $(basename "$b") needs no CUDA library"
    fi
done

trace=$(mktemp -d)
trap 'rm -rf "$trace"' EXIT

# $1: what; rest: the command. Sets $log to the loader's trace; returns the command's status.
run_traced() {
    local what=$1 rc=0
    shift
    log=$trace/$what.log
    LD_DEBUG=files LD_DEBUG_OUTPUT=$trace/$what "$@" >"$trace/$what.out" 2>&1 || rc=$?
    cat "$trace/$what".[0-9]* >"$log" 2>/dev/null || : >"$log"
    return $rc
}

# $1: what; rest: the command, which must succeed on the CPU without mapping CUDA.
cpu_only() {
    local what=$1
    shift
    run_traced "$what" "$@" || { bad "$what failed: $(tail -3 "$trace/$what.out")"; return; }
    grep -q 'file=' "$log" || { bad "no loader trace from $what"; return; }
    if grep -qE "file=[^ ]*($cuda_libs|librsclip_cuda)" "$log"; then
        bad "$what loads CUDA: $(grep -oE "file=[^ ]*($cuda_libs|librsclip_cuda)[^ ]*" "$log" | sort -u | tr '\n' ' ')"
    else
        echo "ok: $what maps no CUDA library"
    fi
}

model=${RSCLIP_FIXTURES:?}/siglip-tiny
scene=${RSCLIP_SOURCE_DIR:?}/samples/naip_milwaukee_airport_0.6m_epsg26916.tif
idx=$trace/idx.gpkg
for b in "$@"; do
    case $(basename "$b") in
    rsclip)
        cpu_only "rsclip --version" "$b" --version
        cpu_only "rsclip embed --text" "$b" embed -m "$model" --text "a lake"
        cpu_only "rsclip index" "$b" index -q -m "$model" -o "$idx" "$scene"
        cpu_only "rsclip search" "$b" search "$idx" "a lake" -k 3
        ;;
    gdal_RSCLIP.so)
        command -v ogrinfo >/dev/null || continue
        export GDAL_DRIVER_PATH
        GDAL_DRIVER_PATH=$(dirname "$b")
        cpu_only "gdalinfo --formats (plugin)" gdalinfo --formats
        grep -q 'file=.*gdal_RSCLIP.so' "$log" || bad "gdalinfo did not load $b"
        if [ -f "$idx" ]; then
            cpu_only "ogrinfo text query (plugin)" ogrinfo -ro -so -oo QUERY=lake "RSCLIP:$idx" hits
        fi
        unset GDAL_DRIVER_PATH
        ;;
    esac
done

# Positive control: a program asking for a device maps the module and, through it, cuBLASLt.
run_traced control "$test_cuda" || true
if grep -q 'file=[^ ]*librsclip_cuda.so' "$trace/control.log" &&
    grep -q 'file=[^ ]*libcublasLt.so' "$trace/control.log"; then
    echo "ok: test_cuda opens the module and cuBLASLt when it asks for a device"
else
    bad "test_cuda asked for a device but the trace shows no module or cuBLASLt"
fi

[ $fail -eq 0 ] && echo "test_cuda_lazy: all checks passed"
exit $fail
