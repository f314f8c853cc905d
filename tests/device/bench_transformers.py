#!/usr/bin/env python3
"""The same-run anchor for rsclip's CUDA encoder: transformers' SiglipVisionModel (random weights,
the shapes of tests/fixtures/configs/<name>/config.json) in bf16 on the GPU, eager and SDPA
attention, images/s at one batch size; SiglipTextModel's latency for one text; and the GPU's
measured dense bf16 matmul rate (8192^3), the ceiling GEMM efficiency is quoted against.

    python3 tests/device/bench_transformers.py --models base-256,large --batch 256 \\
        [--iters 10] [--json OUT.json]

Prints one line per measurement and a JSON document at the end (also to --json).
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = os.path.join(HERE, "..", "fixtures", "configs")


def cuda_time(fn, iters, warmup=2):
    """Median milliseconds per call over `iters` timed calls (CUDA events), after warm-ups."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def matmul_peak():
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    ms = cuda_time(lambda: a @ b, 10, warmup=3)
    return 2 * n ** 3 / (ms * 1e-3) / 1e12


def make(cls, cfg_cls, cfg_dict, impl):
    cfg = cfg_cls(**cfg_dict)
    try:
        cfg._attn_implementation = impl
    except Exception:  # noqa: BLE001 - older/newer config classes
        pass
    with torch.device("cuda"):
        try:
            model = cls._from_config(cfg, attn_implementation=impl)
        except TypeError:
            model = cls(cfg)
    model = model.to(dtype=torch.bfloat16).eval()
    used = getattr(model.config, "_attn_implementation", "?")
    return model, used


def vision_flops(v):
    t = (v["image_size"] // v["patch_size"]) ** 2
    d, f, L = v["hidden_size"], v["intermediate_size"], v["num_hidden_layers"]
    k = 3 * v["patch_size"] ** 2
    layer = 2 * t * d * d * 4 + 2 * t * d * f * 2 + 2 * t * t * d * 2
    return 2 * t * k * d + L * layer + 2 * t * d * d * 2 + 2 * d * d * 2 + 2 * t * d * 2 + 2 * d * f * 2


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="base-256,large")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    import transformers
    from transformers import (SiglipTextConfig, SiglipTextModel, SiglipVisionConfig,
                              SiglipVisionModel)

    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.cuda.get_device_name(0)
    res = {"gpu": dev, "torch": torch.__version__, "transformers": transformers.__version__,
           "batch": a.batch, "results": []}
    print(f"GPU {dev}, torch {torch.__version__}, transformers {transformers.__version__}",
          flush=True)
    peak = matmul_peak()
    res["bf16_matmul_tflops"] = peak
    print(f"bf16 matmul 8192^3: {peak:.0f} TFLOP/s", flush=True)

    for name in a.models.split(","):
        with open(os.path.join(CONFIGS, "git-rsclip-" + name, "config.json")) as f:
            cfg = json.load(f)
        keep = (lambda k: not k.startswith("_") and k != "model_type")
        vc = {k: v for k, v in cfg["vision_config"].items() if keep(k)}
        tc = {k: v for k, v in cfg["text_config"].items() if keep(k)}
        s = vc["image_size"]
        x = torch.rand(a.batch, 3, s, s, device="cuda", dtype=torch.bfloat16) * 2 - 1
        gflop = vision_flops(vc) * 1e-9
        for impl in ("eager", "sdpa"):
            try:
                model, used = make(SiglipVisionModel, SiglipVisionConfig, vc, impl)
                with torch.inference_mode():
                    ms = cuda_time(lambda: model(pixel_values=x).pooler_output, a.iters)
                ips = a.batch / (ms * 1e-3)
                r = dict(model=name, tower="vision", attn=impl, attn_used=used, batch=a.batch,
                         ms_per_batch=ms, images_per_s=ips, tflops=ips * gflop * 1e-3)
                print(f"transformers {name} vision bf16 {impl} (used {used}) batch {a.batch}: "
                      f"{ips:.0f} images/s, {ms:.1f} ms/batch, {r['tflops']:.0f} TFLOP/s",
                      flush=True)
                del model
            except Exception as e:  # noqa: BLE001 - report and go on
                r = dict(model=name, tower="vision", attn=impl, error=repr(e))
                print(f"transformers {name} vision {impl}: FAILED {e!r}", flush=True)
            res["results"].append(r)
            torch.cuda.empty_cache()
        try:
            model, used = make(SiglipTextModel, SiglipTextConfig, tc, "sdpa")
            ids = torch.randint(0, tc["vocab_size"], (1, tc.get("max_position_embeddings", 64)),
                                device="cuda")
            with torch.inference_mode():
                ms = cuda_time(lambda: model(input_ids=ids).pooler_output, 20, warmup=3)
            r = dict(model=name, tower="text", attn=used, batch=1, ms_per_text=ms)
            print(f"transformers {name} text bf16 batch 1: {ms:.2f} ms", flush=True)
            del model
        except Exception as e:  # noqa: BLE001
            r = dict(model=name, tower="text", error=repr(e))
            print(f"transformers {name} text: FAILED {e!r}", flush=True)
        res["results"].append(r)
        torch.cuda.empty_cache()

    doc = json.dumps(res, indent=1)
    print("JSON " + json.dumps(res), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            f.write(doc + "\n")
    return 0


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    print(f"bench_transformers: {time.time() - t0:.0f} s", flush=True)
    sys.exit(rc)
