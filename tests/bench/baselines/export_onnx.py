#!/usr/bin/python3
"""Export the torch SigLIP towers of a model folder to ONNX (torch.onnx.export, opset 17) for the
ONNX Runtime baseline, plus a check input/output pair that bench_ort.js compares against.

    /usr/bin/python3 export_onnx.py tests/bench/out/base224 [--out DIR (default: the model folder)]

Writes vision.onnx (pixel_values [B,3,S,S] f32 -> image_embeds [B,D]), text.onnx (input_ids
[B,T] int64 -> text_embeds [B,D]), check.json and check_*.bin (raw little-endian arrays).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import siglip_torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--out")
    ap.add_argument("--opset", type=int, default=17)
    a = ap.parse_args()
    out = a.out or a.model
    os.makedirs(out, exist_ok=True)
    model, tcfg, vcfg = siglip_torch.load_model(a.model)
    s, t = vcfg["image_size"], tcfg["max_position_embeddings"]
    gen = torch.Generator().manual_seed(1)
    px = torch.rand(2, 3, s, s, generator=gen) * 2 - 1
    ids = torch.randint(0, tcfg["vocab_size"], (2, t), generator=gen)
    check = {}
    with torch.inference_mode():
        img = model.vision_model(px)
        txt = model.text_model(ids)
    for name, arr in (("pixel_values", px), ("image_embeds", img), ("input_ids", ids),
                      ("text_embeds", txt)):
        arr = arr.numpy()
        arr.astype(arr.dtype.newbyteorder("<")).tofile(os.path.join(out, f"check_{name}.bin"))
        check[name] = {"dtype": str(arr.dtype), "shape": list(arr.shape)}
    with open(os.path.join(out, "check.json"), "w") as f:
        json.dump(check, f, indent=1)
    with torch.no_grad():
        torch.onnx.export(model.vision_model, (px,), os.path.join(out, "vision.onnx"),
                          input_names=["pixel_values"], output_names=["image_embeds"],
                          dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
                          opset_version=a.opset, do_constant_folding=True)
        torch.onnx.export(model.text_model, (ids,), os.path.join(out, "text.onnx"),
                          input_names=["input_ids"], output_names=["text_embeds"],
                          dynamic_axes={"input_ids": {0: "batch"}, "text_embeds": {0: "batch"}},
                          opset_version=a.opset, do_constant_folding=True)
    print(f"{out}: vision.onnx, text.onnx (opset {a.opset}), check_*.bin")


if __name__ == "__main__":
    main()
