#!/usr/bin/env bash
# Index past one machine (issue 12), measured: the merge of a 16-part, 1M-tile sharded index
# (tiles/s and peak memory), search over the folder against its merged file (same hits, latency
# ratio), and the CPU cost of splitting a real indexing run into shards.
#
#   tests/bench/scale_bench.sh BUILD_DIR WORK_DIR [N] [PARTS]
#
# BUILD_DIR: a build with -DRSCLIP_BENCH=ON (core/rsclip, tests/bench/oneshot_index,
#            tests/bench/folder_bench).
# WORK_DIR:  the model (generated once, as oneshot_search.sh does) and the indexes (kept between
#            runs: ~3.5 GB per million tiles, plus the merged copy and the .rsvec caches).
# Environment: RUNS (one-shot search runs per index, default 9), QUERIES (latency queries,
# default 20), SHARD_TILES (tiles of the real indexing run of part 3, default 512), SHARDS
# (workers of part 3, default 4), SKIP_SHARD=1.
set -euo pipefail
build=$(cd "${1:?usage: scale_bench.sh BUILD_DIR WORK_DIR [N] [PARTS]}" && pwd)
work=${2:?usage: scale_bench.sh BUILD_DIR WORK_DIR [N] [PARTS]}
n=${3:-1000000}
parts=${4:-16}
runs=${RUNS:-9}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
rsclip=$build/core/rsclip
helper=$build/tests/bench/oneshot_index
latency=$build/tests/bench/folder_bench
for b in "$rsclip" "$helper" "$latency"; do
    [ -x "$b" ] || { echo "missing $b (configure with -DRSCLIP_BENCH=ON and build)" >&2; exit 2; }
done
mkdir -p "$work"
work=$(cd "$work" && pwd)
run() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"; }
now_ns() { date +%s%N; }
ms_since() { echo "scale=1; ($(now_ns) - $1) / 1000000" | bc; }
stats() { sort -g | awk '{v[NR]=$1} END {if (NR) printf "min %8.1f  median %8.1f", v[1], v[int((NR+1)/2)]}'; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }

model=${MODEL:-$work/base224}
if [ ! -f "$model/model.safetensors" ]; then
    echo "== generating the base-shaped random model in $model"
    /usr/bin/python3 "$here/baselines/make_random_model.py" \
        "$repo/tests/fixtures/configs/git-rsclip-base/config.json" "$model"
    cp "$repo/tests/fixtures/siglip-tiny/spiece.model" \
        "$repo/tests/fixtures/siglip-tiny/tokenizer_config.json" "$model/"
fi
model=$(cd "$model" && pwd)
echo "== $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
     "AMX: $(grep -q amx_bf16 /proc/cpuinfo && echo yes || echo no); load $(cut -d' ' -f1-3 /proc/loadavg)"

single=$work/oneshot_${n}.gpkg
folder=$work/sharded_${n}_${parts}
merged=$work/merged_${n}_${parts}.gpkg
if [ ! -f "$single" ]; then
    echo "== building $single ($n tiles, one file)"
    run "$helper" "$model" "$single" "$n"
fi
if [ ! -d "$folder" ]; then
    echo "== building $folder ($n tiles in $parts parts; same seed, same vectors)"
    run "$helper" --parts "$parts" "$model" "$folder" "$n"
fi

echo "== 1. merge: $parts parts, $n tiles -> one GeoPackage (no .rsvec: that is the search's)"
rm -f "$merged" "$merged"-wal "$merged"-shm "$merged.rsvec"
sync
t0=$(now_ns)
run /usr/bin/time -f '%e s wall, %U s user, %S s sys, peak RSS %M KiB' \
    "$rsclip" merge -q --no-cache -o "$merged" "$folder" 2> "$work/merge.time"
wall=$(ms_since "$t0")
echo "   $(tail -1 "$work/merge.time")"
echo "   $(echo "scale=0; $n * 1000 / $wall" | bc) tiles/s; target: $n tiles in <= 120 s, <= 1 GiB"
ls -l "$merged" | awk '{printf "   merged file: %.1f GB\n", $5 / 1e9}'

echo "== 2. search: the $parts-part folder against its merged file (and the one-file index)"
q() { run "$rsclip" search "$1" "solar farms" -m "$model" -k 20 --precision f32 -of CSV; }
for ix in "$single" "$merged" "$folder"; do q "$ix" > /dev/null; done # caches, page cache
q "$folder" | cut -d, -f1-10 > "$work/hits_folder.csv"
q "$merged" | cut -d, -f1-10 > "$work/hits_merged.csv"
if cmp -s "$work/hits_folder.csv" "$work/hits_merged.csv"; then
    echo "   same hits (rank, tile id, scene, window, score, probability) over folder and merge"
else
    echo "   DIFFERENT hits over folder and merge:"; diff "$work/hits_folder.csv" "$work/hits_merged.csv" | head
fi
# The target: query latency in one process (a server, QGIS through the driver), each index
# opened once and warmed, the same "more like this tile" queries on both (no text encoder).
echo "   query latency in one process (median over queries of the median of 5 runs):"
run "$latency" "$folder" "$merged" --queries "${QUERIES:-20}" --runs 5 -k 20 | sed 's/^/   /' ||
    echo "   folder_bench FAILED (different hits or an error: see above)"
# For information: a one-shot CLI search per process, whose scan includes the first reading of
# the mapped .rsvec codes in that process (~400 MB of 4-bit codes for 1M tiles, checksummed).
for ix in "$merged" "$folder"; do
    : > "$work/scan"
    : > "$work/wall"
    for i in $(seq "$runs"); do
        t0=$(now_ns)
        RSCLIP_LOG=info run "$rsclip" search "$ix" "solar farms" -m "$model" -k 20 \
            --precision f32 > /dev/null 2> "$work/err"
        ms_since "$t0" >> "$work/wall"
        sed -n 's/.*search timing: scan \([0-9.]*\) ms.*/\1/p' "$work/err" >> "$work/scan"
    done
    printf '   one-shot %-10s scan %s ms   whole process %s ms\n' "$(basename "$ix")" \
        "$(stats < "$work/scan")" "$(stats < "$work/wall")"
    median < "$work/scan" > "$work/scan_$(basename "$ix")"
done
ratio=$(echo "scale=2; $(cat "$work/scan_$(basename "$folder")") / $(cat "$work/scan_$(basename "$merged")")" | bc)
echo "   one-shot folder / merged scan: ${ratio}x (first reading of the codes included)"

if [ "${SKIP_SHARD:-0}" != 1 ]; then
    tiles=${SHARD_TILES:-512}
    shards=${SHARDS:-4}
    echo "== 3. splitting overhead: $tiles tiles of real rasters, one process vs $shards shards (CPU time)"
    src=$work/shard_src_$tiles
    if [ ! -d "$src" ]; then
        mkdir -p "$src"
        /usr/bin/python3 - "$src" "$tiles" <<'PY'
import sys, numpy as np
from osgeo import gdal, osr
out, tiles = sys.argv[1], int(sys.argv[2])
side = 8                                 # 8 x 8 tiles per raster
rng = np.random.default_rng(5)
for k in range((tiles + side * side - 1) // (side * side)):
    ds = gdal.GetDriverByName("GTiff").Create("%s/r%03d.tif" % (out, k), 256 * side, 256 * side, 3)
    ds.SetGeoTransform((500000 + 3000 * k, 1, 0, 4000000, 0, -1))
    s = osr.SpatialReference(); s.ImportFromEPSG(32632); ds.SetProjection(s.ExportToWkt())
    for b in range(3):
        ds.GetRasterBand(b + 1).WriteArray(rng.integers(0, 256, (256 * side, 256 * side), dtype=np.uint8))
PY
    fi
    cpu() { awk '{print $1 + $2}' "$1"; }
    rm -rf "$work/shard_one.gpkg"* "$work/shard_parts"
    run /usr/bin/time -f '%U %S' -o "$work/t_one" "$rsclip" index -q -m "$model" \
        -o "$work/shard_one.gpkg" "$src"
    one=$(cpu "$work/t_one")
    sum=0
    for i in $(seq 0 $((shards - 1))); do
        run /usr/bin/time -f '%U %S' -o "$work/t_$i" "$rsclip" index -q -m "$model" \
            -o "$work/shard_parts" --shard "$i/$shards" "$src"
        sum=$(echo "$sum + $(cpu "$work/t_$i")" | bc)
    done
    echo "   one process: ${one} s CPU; $shards shards together: ${sum} s CPU:" \
         "$(echo "scale=3; $sum / $one" | bc)x (target <= 1.05x)"
fi
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
