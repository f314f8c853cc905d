#!/usr/bin/env bash
# Search core benchmark: rsclip's int8 scan + exact rerank against (a) a naive SQLite BLOB scan,
# (b) FAISS IndexFlatIP, (c) exact float32 sgemv, on N random unit vectors of dim 768, plus cache
# load times. Needs a build with -DRSCLIP_BENCH=ON and python3-faiss (apt) for (b).
#   tests/bench/search_bench.sh BUILD_DIR [N ...]        (default N: 100000 1000000)
set -euo pipefail
build=${1:?usage: search_bench.sh BUILD_DIR [N ...]}
shift
sizes=${*:-100000 1000000}
bin=$build/tests/bench/search_bench
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/rsclip_search_bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# OpenBLAS tuning variables would skew the sgemv baseline between machines.
run() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"; }
for n in $sizes; do
    sq=3
    [ "$n" -gt 200000 ] && sq=2
    run "$bin" --n "$n" --queries 50 --sqlite-queries "$sq" --tmp "$tmp" --dump "$tmp/d"
    if /usr/bin/python3 -c 'import faiss' 2>/dev/null; then
        run /usr/bin/python3 "$here/search_bench_faiss.py" "$tmp/d" "$(nproc)"
    else
        echo "(b) FAISS: skipped (apt-get install python3-faiss)"
    fi
    rm -rf "$tmp/d"
    echo
done
