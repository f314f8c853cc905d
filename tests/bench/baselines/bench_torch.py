#!/usr/bin/python3
"""PyTorch baseline: images/s (vision tower -> image_embeds) and texts/s (text tower) of the plain
torch SigLIP in siglip_torch.py on a model folder, float32, bf16 autocast (and optionally all-bf16 weights: bf16w), inference_mode.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench_torch.py tests/bench/out/base224 \
        [--threads 1,2] [--batches 1,8,32] [--text-batches 1,32] [--dtypes f32,bf16] [--min-time 3]

Prints one line per (tower, dtype, threads, batch): median and best throughput over the timed
runs (after one warm-up run), and a JSON line per result for scripts.
"""
import argparse
import copy
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import siglip_torch  # noqa: E402


def timed(fn, min_time, min_runs=3, max_runs=50):
    """(median wall s, best wall s, runs, median process CPU s) per run, after one warm-up."""
    fn()  # warm-up (allocator, oneDNN primitive caches)
    times, cpu = [], []
    while (sum(times) < min_time or len(times) < min_runs) and len(times) < max_runs:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(times), min(times), len(times), statistics.median(cpu)


def ints(s):
    return [int(x) for x in s.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--text-batches", default="1,32")
    ap.add_argument("--dtypes", default="f32,bf16",
                    help="f32, bf16 (autocast), bf16w (weights and activations cast to bf16)")
    ap.add_argument("--min-time", type=float, default=3.0, help="seconds of timed runs per point")
    a = ap.parse_args()

    model, tcfg, vcfg = siglip_torch.load_model(a.model)
    model_bf16 = None
    if "bf16w" in a.dtypes.split(","):
        model_bf16 = copy.deepcopy(model).to(torch.bfloat16)
    s = vcfg["image_size"]
    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, model {a.model}: vision {vcfg['hidden_size']}x"
          f"{vcfg['num_hidden_layers']} @ {s}px, text {tcfg['hidden_size']}x"
          f"{tcfg['num_hidden_layers']} @ {tcfg['max_position_embeddings']} tokens")
    for threads in ints(a.threads):
        torch.set_num_threads(threads)
        for dtype in a.dtypes.split(","):
            for tower, batches in (("vision", ints(a.batches)), ("text", ints(a.text_batches))):
                for b in batches:
                    if tower == "vision":
                        x = torch.rand(b, 3, s, s, generator=gen) * 2 - 1
                        mod = (model_bf16 if dtype == "bf16w" else model).vision_model
                    else:
                        x = torch.randint(0, tcfg["vocab_size"],
                                          (b, tcfg["max_position_embeddings"]), generator=gen)
                        mod = (model_bf16 if dtype == "bf16w" else model).text_model
                    if dtype == "bf16w" and x.is_floating_point():
                        x = x.to(torch.bfloat16)

                    def run():
                        with torch.inference_mode():
                            if dtype == "bf16":
                                with torch.autocast("cpu", dtype=torch.bfloat16):
                                    y = mod(x)
                            else:
                                y = mod(x)
                        return y

                    med, best, n, cpu = timed(run, a.min_time)
                    unit = "images/s" if tower == "vision" else "texts/s"
                    # On a shared machine wall time includes other processes; batch * threads /
                    # CPU seconds is what the run would give on idle cores (spinning counts).
                    print(f"torch {tower:6s} {dtype:4s} threads={threads} batch={b:3d}: "
                          f"{b / med:7.2f} {unit} (median of {n}; best {b / best:.2f}; "
                          f"by CPU time {b * threads / cpu:.2f})", flush=True)
                    print("RESULT " + json.dumps(dict(engine="torch", tower=tower, dtype=dtype,
                                                      threads=threads, batch=b,
                                                      per_s_median=b / med, per_s_best=b / best,
                                                      per_s_cpu=b * threads / cpu)), flush=True)


if __name__ == "__main__":
    main()
