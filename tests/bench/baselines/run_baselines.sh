#!/usr/bin/env bash
# Build and run the PyTorch and ONNX Runtime baselines on random weights with the shapes of the
# real checkpoints, the same files rsclip's own benchmark reads.
#
#   tests/bench/baselines/run_baselines.sh [base224|base256|large256 ...]   (default: base224)
#
# Environment: OUT (model folders, default tests/bench/out), THREADS (1,2), BATCHES (1,8,32),
# TEXT_BATCHES (1,32), DTYPES (torch: f32,bf16; add bf16w for all-bf16 weights), MIN_TIME (3 s
# of timed runs per point), ENGINES (torch,ort).
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for every run: forcing Haswell halves OpenBLAS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
out=${OUT:-$repo/tests/bench/out}
py=/usr/bin/python3
threads=${THREADS:-1,2}
batches=${BATCHES:-1,8,32}
text_batches=${TEXT_BATCHES:-1,32}
dtypes=${DTYPES:-f32,bf16}
min_time=${MIN_TIME:-3}
engines=${ENGINES:-torch,ort}
clean_env() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"; }
# PyTorch at its best here (measured, base vision b8, 2 threads: 1.5 img/s as installed, 3.7 with
# glibc malloc keeping freed memory -- fresh pages cost ~16 us each on these VMs -- and 6.5 with
# OpenMP's idle threads sleeping instead of spinning against OpenBLAS's pool).
torch_env=(MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736
           MALLOC_TOP_PAD_=1073741824 OMP_WAIT_POLICY=PASSIVE)

# The torch model must reproduce the transformers fixture before it is timed.
$py "$here/siglip_torch.py" --verify "$repo/tests/fixtures/siglip-tiny"

if [[ $engines == *ort* && ! -d $here/node_modules/onnxruntime-node ]]; then
    (cd "$here" && npm install --ignore-scripts --no-audit --no-fund)
fi

[ $# -gt 0 ] || set -- base224
for name in "$@"; do
    case $name in
    base224) cfg=git-rsclip-base ;;
    base256) cfg=git-rsclip-base-256 ;;
    large256) cfg=git-rsclip-large ;;
    *) echo "unknown model $name (base224, base256, large256)" >&2; exit 2 ;;
    esac
    dir=$out/$name
    if [ ! -f "$dir/model.safetensors" ]; then
        $py "$here/make_random_model.py" "$repo/tests/fixtures/configs/$cfg/config.json" "$dir"
    fi
    echo "== $name ($dir), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [[ $engines == *torch* ]]; then
        # one process per thread count: Debian's torch runs its matrix products on OpenBLAS,
        # whose pool ignores torch.set_num_threads (a "1 thread" run used both cores)
        for t in ${threads//,/ }; do
            clean_env "${torch_env[@]}" OPENBLAS_NUM_THREADS="$t" OMP_NUM_THREADS="$t" \
                $py "$here/bench_torch.py" "$dir" --threads "$t" --batches "$batches" \
                --text-batches "$text_batches" --dtypes "$dtypes" --min-time "$min_time"
        done
    fi
    if [[ $engines == *ort* ]]; then
        if [ ! -f "$dir/vision.onnx" ] || [ "$dir/model.safetensors" -nt "$dir/vision.onnx" ]; then
            $py "$here/export_onnx.py" "$dir"
        fi
        clean_env node "$here/bench_ort.js" "$dir" --threads "$threads" --batches "$batches" \
            --text-batches "$text_batches" --min-time "$min_time"
    fi
done
