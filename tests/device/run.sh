#!/usr/bin/env bash
# The GPU checks of rsclip's CUDA encoder, in one run (target: under 8 minutes), for a machine
# with an NVIDIA GPU, nvcc + cuBLAS, CMake, a C compiler and python3 with PyTorch + transformers,
# and no GDAL (an H200 with CUDA 13 is what it was written for):
#   1. build the model-only library with the CUDA encoder (RSCLIP_MODEL_ONLY, RSCLIP_CUDA=ON,
#      sm_90a + compute_90 PTX; RSCLIP_CUDA_GENCODE overrides), tests and the encoder benchmark
#   2. test_cuda on the GPU: f32 parity with the fixtures (<= 1e-5), bf16 cosine >= 0.999 to f32
#   3. rsclip_bench_encoder --device cuda, base (256 px) with random weights, batch 256 images
#      (bf16 and f32), texts at batch 1 (a text query's latency) and 256
#   4. bench_transformers.py: SiglipVisionModel bf16 eager and SDPA at the base and large shapes,
#      same batch, SiglipTextModel batch 1, and the GPU's bf16 matmul rate
#   5. rsclip_bench_encoder --device cuda, large (bf16)
#   6. the model-only CPU tests (the same build must pass them there too)
#   7. summary.md: the figures side by side
#
#   tests/device/run.sh OUTDIR          (OUTDIR gets run.log, build.log, test_cuda.log,
#                                        ctest_cpu.log, bench_rsclip.txt, bench_transformers.txt,
#                                        summary.md: 7 files; the build goes to
#                                        $RSCLIP_DEVICE_BUILD, default /tmp/rsclip-device-build)
#
# Every step has its own time limit, all of them together RSCLIP_DEVICE_BUDGET seconds (default
# 540: the whole run, summary included, ends inside a 10-minute call); a failed step does not stop
# the later ones; the exit status is 0 only when every step passed.
set -euo pipefail
out=${1:?usage: tests/device/run.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bd=${RSCLIP_DEVICE_BUILD:-/tmp/rsclip-device-build}
work=${RSCLIP_DEVICE_WORK:-/tmp/rsclip-device-bench}
jobs=$(nproc 2>/dev/null || echo 8)
py=${RSCLIP_DEVICE_PYTHON:-python3}
exec > >(tee -a "$out/run.log") 2>&1
t_start=$(date +%s)
deadline=$((t_start + ${RSCLIP_DEVICE_BUDGET:-540} - 15)) # 15 s kept for the summary
failed=""

# step NAME LIMIT_SECONDS LOGFILE CMD...: run with a time limit, log to LOGFILE (and run.log).
step() {
    local name=$1 limit=$2 logf=$3
    shift 3
    local t0 rc
    t0=$(date +%s)
    local left=$((deadline - t0))
    if [ "$left" -lt 10 ]; then
        echo "=== $name: SKIPPED (the run's time budget is spent)"
        failed="$failed $name"
        echo "$name skipped 0s" >>"$out/steps.txt.tmp"
        return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "=== $name (limit ${limit}s) $(date -u +%H:%M:%S)"
    set +e
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$logf"
    rc=${PIPESTATUS[0]}
    set -e
    local el=$(($(date +%s) - t0))
    if [ "$rc" = 0 ]; then
        echo "=== $name: ok (${el}s)"
    else
        [ "$rc" = 124 ] && echo "=== $name: TIMED OUT after ${limit}s" || echo "=== $name: FAILED (exit $rc, ${el}s)"
        failed="$failed $name"
    fi
    echo "$name $rc ${el}s" >>"$out/steps.txt.tmp"
}

echo "== rsclip device run: $(date -u) on $(hostname)"
# (the copy on a device machine may have no .git: the sources' checksum identifies them then)
sum=$(cd "$src" && find CMakeLists.txt cmake core tests/cuda tests/bench tests/device -type f \
      \( -name '*.[ch]' -o -name '*.cu' -o -name '*.cuh' -o -name '*.txt' -o -name '*.cmake' \
      -o -name '*.in' -o -name '*.py' -o -name '*.sh' \) -not -path '*/node_modules/*' -print0 |
      sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
echo "source: $src (commit $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown), sources sha256 $sum)"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv || true
  command -v nvcc && nvcc --version | tail -2 || echo "nvcc not on PATH"
  cmake --version | head -1 || true
  ${CC:-cc} --version | head -1 || true
  $py -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)' || true
  lscpu | grep -E 'Model name|^CPU\(s\)' || true; } 2>&1
rm -f "$out/steps.txt.tmp"

# 1. build
nvcc_path=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
gencode=${RSCLIP_CUDA_GENCODE:-"-gencode=arch=compute_90a,code=sm_90a;-gencode=arch=compute_90,code=compute_90"}
step build 240 "$out/build.log" bash -c "
    cmake -S '$src' -B '$bd' ${gen[*]} -DCMAKE_BUILD_TYPE=Release -DRSCLIP_MODEL_ONLY=ON \
          -DRSCLIP_CUDA=ON -DCMAKE_CUDA_COMPILER='$nvcc_path' -DRSCLIP_CUDA_GENCODE='$gencode' \
          -DRSCLIP_BENCH=ON -DBUILD_TESTING=ON &&
    cmake --build '$bd' -j$jobs"

if [ -x "$bd/tests/cuda/test_cuda" ]; then
    # 2. the GPU tests (exit 77 = skipped would be a failure here: this machine has a GPU)
    step test_cuda 120 "$out/test_cuda.log" env RSCLIP_FIXTURES="$src/tests/fixtures" \
        "$bd/tests/cuda/test_cuda"
else
    echo "no test_cuda binary: the build failed (see build.log)"
    failed="$failed test_cuda"
fi

# 3. rsclip on the GPU (base), 4. transformers, same GPU, same run, 5. rsclip (large): in this
# order so that a short budget still leaves a comparison
bench=$bd/tests/bench/rsclip_bench_encoder
if [ -x "$bench" ]; then
    mkdir -p "$work"
    step bench_rsclip_base 150 "$out/bench_rsclip.txt" "$bench" --workdir "$work" --device cuda \
        --models base-256 --precision bf16,f32 --batches 256 --text-batches 1,256 --min-time 2
else
    failed="$failed bench_rsclip"
fi
step bench_transformers 180 "$out/bench_transformers.txt" "$py" \
    "$src/tests/device/bench_transformers.py" --models base-256,large --batch 256 --iters 10
if [ -x "$bench" ]; then
    step bench_rsclip_large 180 "$out/bench_rsclip.txt" "$bench" --workdir "$work" --device cuda \
        --models large --precision bf16 --batches 256 --text-batches 1,256 --min-time 2
    rm -rf "$work" # GB of random checkpoints
fi

# 6. the CPU tests of the model-only build (Python oracles and slow ones left out)
if [ -x "$bd/tests/cuda/test_cuda" ]; then
    step ctest_cpu 120 "$out/ctest_cpu.log" ctest --test-dir "$bd" --output-on-failure \
        -j"$jobs" -LE 'slow|cuda' -E 'oracle|pillow'
fi

# 7. summary
"$py" "$src/tests/device/summarize.py" "$out" >"$out/summary.md" 2>>"$out/run.log" ||
    echo "summary failed (see run.log)"
rm -f "$out/steps.txt.tmp"
cat "$out/summary.md" 2>/dev/null || true
echo "== total $(($(date +%s) - t_start)) s; failed steps:${failed:- none}"
rc=0
[ -z "$failed" ] || rc=1
sleep 1 # let tee write the end of run.log
exit $rc
