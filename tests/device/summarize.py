#!/usr/bin/env python3
"""summary.md of a tests/device/run.sh OUTDIR: the steps, the test outcome, rsclip's figures next
to transformers' from the same run, and the issue's targets (base >= 5,000 images/s, large
>= 1,500, >= 1.5x the faster transformers attention, a text query <= 5 ms). Standard library only.

    python3 tests/device/summarize.py OUTDIR > OUTDIR/summary.md
"""
import json
import os
import re
import sys

ROW = re.compile(r"^(git-rsclip-\S+)\s+(vision|text)\s+(f32|bf16)\s+(\S+)\s+(\d+)\s+([\d.]+)\s+"
                 r"([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")


def read(out, name):
    try:
        with open(os.path.join(out, name), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def main():
    out = sys.argv[1]
    p = print
    p("# rsclip CUDA encoder: device run\n")
    steps = read(out, "steps.txt.tmp").split("\n")
    p("| step | exit | time |\n|---|---|---|")
    for s in steps:
        if s.strip():
            name, rc, el = s.split()
            state = "ok" if rc == "0" else "skipped (time)" if rc == "skipped" else "FAILED " + rc
            p(f"| {name} | {state} | {el} |")
    log = read(out, "run.log")
    gpu = re.search(r"^name, driver_version.*\n(.*)$", log, re.M)
    p(f"\nGPU: {gpu.group(1) if gpu else '?'}")
    src = re.search(r"^source: .*$", log, re.M)
    p(f"{src.group(0) if src else ''}\n")
    tc = read(out, "test_cuda.log")
    m = re.search(r"worst max rel error \(f32 on the GPU\): (\S+)", tc)
    cos = re.findall(r"worst cosine (\S+)", tc)
    p("test_cuda: " + ("all checks passed" if "all checks passed" in tc else "FAILED or not run") +
      (f"; worst f32 error {m.group(1)}" if m else "") +
      (f"; worst bf16 cosine {min(float(c) for c in cos):.6f}" if cos else ""))

    tj = None
    for line in read(out, "bench_transformers.txt").splitlines():
        if line.startswith("JSON "):
            tj = json.loads(line[5:])
    peak = tj.get("bf16_matmul_tflops") if tj else None
    p("\n## Vision tower, batch 256, random weights\n")
    p("| model | engine | precision | images/s | ms/batch | TFLOP/s | % of bf16 matmul | "
      "cos vs CPU f32 |\n|---|---|---|---|---|---|---|---|")
    ours = {}
    text = []
    for line in read(out, "bench_rsclip.txt").splitlines():
        r = ROW.match(line)
        if not r:
            continue
        model, tower, prec, _, batch, per_s, ms_item, gflops, _, cosf = r.groups()
        model = model.replace("git-rsclip-", "")
        if tower == "text":
            text.append((model, prec, int(batch), float(ms_item), float(cosf)))
            continue
        tf = float(gflops) / 1e3
        pct = f"{100 * tf / peak:.0f}%" if peak and prec == "bf16" else ""
        ours[(model, prec)] = float(per_s)
        p(f"| {model} | rsclip | {prec} | {float(per_s):.0f} | {float(ms_item) * int(batch):.1f} "
          f"| {tf:.0f} | {pct} | {float(cosf):.6f} |")
    best = {}
    for r in (tj or {}).get("results", []):
        if r.get("tower") != "vision":
            continue
        if "error" in r:
            p(f"| {r['model']} | transformers {r['attn']} | bf16 | failed: {r['error'][:60]} |"
              " | | | |")
            continue
        best[r["model"]] = max(best.get(r["model"], 0), r["images_per_s"])
        pct = f"{100 * r['tflops'] / peak:.0f}%" if peak else ""
        p(f"| {r['model']} | transformers {r['attn']} ({r['attn_used']}) | bf16 | "
          f"{r['images_per_s']:.0f} | {r['ms_per_batch']:.1f} | {r['tflops']:.0f} | {pct} | |")
    if peak:
        p(f"\nbf16 matmul 8192^3 on this GPU: {peak:.0f} TFLOP/s (the % column's ceiling)")
    p("\n## Text tower\n")
    p("| model | engine | precision | batch | ms per text | cos vs CPU f32 |\n|---|---|---|---|---|---|")
    for model, prec, b, ms, c in text:
        p(f"| {model} | rsclip | {prec} | {b} | {ms:.3f} | {c:.6f} |")
    for r in (tj or {}).get("results", []):
        if r.get("tower") == "text" and "ms_per_text" in r:
            p(f"| {r['model']} | transformers | bf16 | 1 | {r['ms_per_text']:.3f} | |")
    p("\n## Targets\n")
    for model, target in (("base-256", 5000), ("large", 1500)):
        v = ours.get((model, "bf16"))
        if v is None:
            p(f"- {model}: no figure")
            continue
        line = f"- {model}: {v:.0f} images/s (target {target}: {'met' if v >= target else 'NOT met'})"
        if best.get(model):
            ratio = v / best[model]
            line += f"; {ratio:.2f}x the faster transformers ({'met' if ratio >= 1.5 else 'NOT met'})"
        p(line)
    q = [ms for model, prec, b, ms, _ in text if b == 1 and prec == "bf16"]
    if q:
        p(f"- text query (batch 1, bf16): {max(q):.2f} ms worst model "
          f"({'met' if max(q) <= 5 else 'NOT met'}: <= 5 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
