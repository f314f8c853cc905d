#!/usr/bin/env bash
# One-shot `rsclip search` benchmark: one process per query, end to end (process start, model
# load, query encoding, vector load, scan, hit details), on a real index of N tiles (default
# 1,000,000) bound to a base-shaped random-weight model, with a warm page cache.
#
#   tests/bench/oneshot_search.sh BUILD_DIR WORK_DIR [N]
#
# BUILD_DIR: a build with -DRSCLIP_BENCH=ON (core/rsclip, tests/bench/oneshot_index).
# WORK_DIR:  cache for the model and the index (kept between runs; ~3.5 GB for 1M tiles, built
#            once in ~3 min; the first search also writes INDEX.rsvec, ~0.8 GB).
# Environment: MODEL (a model folder to use instead of WORK_DIR/base224, which is generated with
# baselines/make_random_model.py from tests/fixtures/configs/git-rsclip-base: 224 px, 203 M
# parameters, F32), RUNS (timed runs per precision, default 7), PRECISIONS (default "f32 auto").
# Phase times come from the library's log (RSCLIP_LOG=info: "search timing: ..." lines); the
# in-process model side is split further by `oneshot_index --profile` (weight packing vs forward).
set -euo pipefail
build=$(cd "${1:?usage: oneshot_search.sh BUILD_DIR WORK_DIR [N]}" && pwd)
work=${2:?usage: oneshot_search.sh BUILD_DIR WORK_DIR [N]}
n=${3:-1000000}
runs=${RUNS:-7}
precisions=${PRECISIONS:-f32 auto}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
rsclip=$build/core/rsclip
helper=$build/tests/bench/oneshot_index
for b in "$rsclip" "$helper"; do
    [ -x "$b" ] || { echo "missing $b (configure with -DRSCLIP_BENCH=ON and build)" >&2; exit 2; }
done
mkdir -p "$work"
work=$(cd "$work" && pwd)
# OpenBLAS tuning variables would change the numbers between machines.
run() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"; }

model=${MODEL:-$work/base224}
if [ ! -f "$model/model.safetensors" ]; then
    echo "== generating the base-shaped random model in $model"
    /usr/bin/python3 "$here/baselines/make_random_model.py" \
        "$repo/tests/fixtures/configs/git-rsclip-base/config.json" "$model"
    cp "$repo/tests/fixtures/siglip-tiny/spiece.model" \
        "$repo/tests/fixtures/siglip-tiny/tokenizer_config.json" "$model/"
fi
model=$(cd "$model" && pwd)
index=$work/oneshot_${n}.gpkg
stamp=$work/oneshot_${n}.model
# Rebuild the index when it is missing or was made for another model file.
want="$model $(stat -c '%s %Y' "$model/model.safetensors")"
if [ ! -f "$index" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "== building $index ($n tiles)"
    rm -f "$index" "$index"-wal "$index"-shm "$index.rsvec" "$stamp"
    run "$helper" "$model" "$index" "$n"
    echo "$want" > "$stamp"
fi

search() { # precision
    run "$rsclip" search "$index" "solar farms" -m "$model" -k 20 --precision "$1"
}
echo "== warming up (page cache, .rsvec cache)"
cat "$model/model.safetensors" "$model/spiece.model" > /dev/null
search f32 > /dev/null
[ -f "$index.rsvec" ] && cat "$index.rsvec" > /dev/null
search auto > /dev/null

now_ns() { date +%s%N; }
# min and median of the numbers on stdin
stats() { sort -g | awk '{v[NR]=$1} END {if (NR) printf "min %8.1f  median %8.1f", v[1], v[int((NR+1)/2)]}'; }

echo "== $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "   model $model ($(du -mL "$model/model.safetensors" | cut -f1) MB), index $index ($n tiles)"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for i in $(seq "$runs"); do
    t0=$(now_ns)
    run "$rsclip" --version > /dev/null
    t1=$(now_ns)
    echo "scale=3; ($t1 - $t0) / 1000000" | bc >> "$tmp/start"
done
printf '%-44s %s ms\n' "process start + exit (rsclip --version)" "$(stats < "$tmp/start")"

for p in $precisions; do
    : > "$tmp/wall"
    : > "$tmp/log"
    for i in $(seq "$runs"); do
        t0=$(now_ns)
        RSCLIP_LOG=info search "$p" > /dev/null 2> "$tmp/err"
        t1=$(now_ns)
        echo "scale=3; ($t1 - $t0) / 1000000" | bc >> "$tmp/wall"
        grep 'search timing:' "$tmp/err" >> "$tmp/log" || true
    done
    enc=$(grep -m1 'encoder setup' "$tmp/log" | sed 's/.*(\(.*\))/\1/')
    echo "-- rsclip search INDEX \"solar farms\" -k 20 --precision $p (encoder runs $enc), $runs runs"
    printf '   %-41s %s ms\n' "wall, end to end" "$(stats < "$tmp/wall")"
    : > "$tmp/medians"
    for phase in "index open" "vector load" "model load" "encoder setup" \
        "query encoding" "scan" "hit details"; do
        grep "search timing: $phase " "$tmp/log" | sed "s/.*search timing: $phase \([0-9.]*\) ms.*/\1/" \
            > "$tmp/phase"
        printf '   %-41s %s ms\n' "$phase" "$(stats < "$tmp/phase")"
        stats < "$tmp/phase" | awk '{print $4}' >> "$tmp/medians"
    done
    # What the phases do not cover: GDAL/OpenBLAS start-up beyond --version, argument and
    # output handling, freeing and unmapping at exit.
    rest=$(awk -v w="$(stats < "$tmp/wall" | awk '{print $4}')" \
        -v p="$(stats < "$tmp/start" | awk '{print $4}')" \
        '{s += $1} END {printf "%.1f", w - p - s}' "$tmp/medians")
    printf '   %-41s %s ms (median wall - medians above - process start)\n' "rest" "$rest"
done
echo "-- in one process (oneshot_index --profile): model side of a text query"
for p in $precisions; do run "$helper" --profile "$model" "$p"; done
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
