#!/usr/bin/env bash
# One invocation: rsclip's encoder benchmark (f32 and bf16, vision and text, batch 1/8/32,
# 1 and 2 threads, per-stage split, cosine to f32), the OpenBLAS/packed GEMM benchmark at the
# model's shapes, and the PyTorch / ONNX Runtime baselines (tests/bench/baselines), each with
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset, then the ratios rsclip/ORT and rsclip/PyTorch.
#
#   tests/bench/run_all.sh BUILD_DIR [base|large ...]
#
# BUILD_DIR must be configured with -DRSCLIP_BENCH=ON. Knobs: THREADS (1,2), BATCHES (1,8,32),
# PRECISIONS (f32,bf16; also int8, auto), MIN_TIME (3). Quote figures with the load average
# printed here: the machines are shared, and only ratios measured in the same run mean much (the
# ratios by CPU time hold up better when other work shares the cores).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run_all.sh BUILD_DIR [base|large ...]}
shift
[ $# -gt 0 ] || set -- base
threads=${THREADS:-1,2}
batches=${BATCHES:-1,8,32}
precisions=${PRECISIONS:-f32,bf16}
min_time=${MIN_TIME:-3}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
clean_env() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

for name in "$@"; do
    echo "== rsclip $name, load $(load)"
    clean_env "$build/tests/bench/rsclip_bench_encoder" --models "$name" --threads "$threads" \
        --batches "$batches" --precision "$precisions" --min-time "$min_time" | tee -a "$log"
done
if [ -x "$build/tests/bench/rsclip_bench_gemm" ]; then
    echo "== GEMM kernels at the model's shapes, load $(load)"
    clean_env "$build/tests/bench/rsclip_bench_gemm" || true
fi
if [ -x "$here/baselines/run_baselines.sh" ]; then
    for name in "$@"; do
        case $name in base) b=base224 ;; large) b=large256 ;; *) b=$name ;; esac
        echo "== baselines $b, load $(load)"
        THREADS=$threads BATCHES=$batches MIN_TIME=$min_time \
            "$here/baselines/run_baselines.sh" "$b" 2>&1 | tee -a "$log" || true
    done
else
    echo "(tests/bench/baselines not present: no PyTorch / ONNX Runtime figures)"
fi

# Ratios, per model: rsclip rows "model tower prec threads batch items/s ... items/s-by-cpu"
# against the baselines' RESULT {json} lines (engine, tower, dtype, threads, batch, per_s_median,
# per_s_cpu), by wall clock and by CPU time.
/usr/bin/python3 - "$log" <<'PY'
import json, re, sys
ours, ours_cpu, base, base_cpu = {}, {}, {}, {}
model = None
for line in open(sys.argv[1]):
    f = line.split()
    m = re.match(r"== (rsclip|baselines) (\S+),", line)
    if m:
        model = {"base224": "base", "large256": "large"}.get(m.group(2), m.group(2))
    if len(f) >= 10 and f[0].startswith("git-rsclip-") and f[1] in ("vision", "text"):
        key = (f[0][len("git-rsclip-"):], f[1], f[2], int(f[3]), int(f[4]))
        ours[key] = float(f[5])
        if len(f) >= 12:
            ours_cpu[key] = float(f[11])
    m = re.search(r"RESULT (\{.*\})", line)
    if m:
        r = json.loads(m.group(1))
        key = (model, r.get("engine"), r.get("tower"), r.get("dtype", "f32"),
               int(r.get("threads", 0)), int(r.get("batch", 0)))
        base[key] = float(r.get("per_s_median", 0) or 0)
        base_cpu[key] = float(r.get("per_s_cpu", 0) or 0)
if not base:
    sys.exit(0)
for title, o_tab, b_tab in (("items/s, wall clock", ours, base),
                            ("items/s by CPU time x threads, robust on a busy machine", ours_cpu,
                             base_cpu)):
    print("== ratios (%s; same run)" % title)
    for (mod, tower, prec, th, b), v in sorted(o_tab.items()):
        parts = []
        for eng in ("ort", "torch"):
            for dt in (("f32",) if eng == "ort" else ("f32", "bf16")):
                o = b_tab.get((mod, eng, tower, dt, th, b))
                if o:
                    parts.append("%s-%s %.2f (x%.2f)" % (eng, dt, o, v / o))
        print("%-5s %-6s %-5s %dT b%-3d rsclip %.2f  %s" % (mod, tower, prec, th, b, v,
                                                           "  ".join(parts)))
PY
