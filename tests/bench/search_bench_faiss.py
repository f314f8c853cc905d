#!/usr/bin/python3
"""Baseline (b) of search_bench: FAISS IndexFlatIP (exact inner product) on the vectors that
search_bench --dump DIR wrote. Prints ms/query (one query per call, as a CLI search does, and
batched) and recall@k against search_bench's exact ranking, then the ratio to rsclip's figure from
the same run (DIR/rsclip.txt)."""
import sys
import time

import faiss
import numpy as np


def main():
    d = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    n, dim, nq, k, rs_ms, sgemv_ms = open(f"{d}/rsclip.txt").read().split()
    n, dim, nq, k = int(n), int(dim), int(nq), int(k)
    rs_ms, sgemv_ms = float(rs_ms), float(sgemv_ms)
    faiss.omp_set_num_threads(threads)
    t = time.perf_counter()
    x = np.fromfile(f"{d}/vecs.f32", dtype=np.float32).reshape(n, dim)
    index = faiss.IndexFlatIP(dim)
    index.add(x)
    del x
    build = (time.perf_counter() - t) * 1e3
    q = np.fromfile(f"{d}/queries.f32", dtype=np.float32).reshape(nq, dim)
    truth = np.fromfile(f"{d}/truth.i64", dtype=np.int64).reshape(nq, k)
    times, found = [], 0
    index.search(q[:1], k)  # warm-up
    for i in range(nq):
        t = time.perf_counter()
        _, ids = index.search(q[i:i + 1], k)
        times.append((time.perf_counter() - t) * 1e3)
        found += len(set(ids[0].tolist()) & set(truth[i].tolist()))
    t = time.perf_counter()
    index.search(q, k)
    batch = (time.perf_counter() - t) * 1e3 / nq
    single, best = float(np.median(times)), float(np.min(times))
    print(f"(b) FAISS {faiss.__version__} IndexFlatIP, {threads} threads: {single:.2f} ms/query "
          f"(median; min {best:.2f}; one query per call), {batch:.2f} ms/query batched "
          f"({nq} at once), recall@{k} = {found / (nq * k):.4f}; load+add {build:.0f} ms")
    print(f"ratio (minimum times): faiss flat / rsclip = {best / rs_ms:.1f}x (single queries), "
          f"{batch / rs_ms:.1f}x (batched)")


if __name__ == "__main__":
    main()
