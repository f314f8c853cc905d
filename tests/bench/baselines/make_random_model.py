#!/usr/bin/python3
"""Write a random SigLIP checkpoint folder (config.json + model.safetensors, HF tensor names).

Shared by rsclip's C benchmark and the PyTorch / ONNX Runtime baselines, so that every engine
runs the same weights and shapes. Needs only numpy.

    /usr/bin/python3 make_random_model.py tests/fixtures/configs/git-rsclip-base-256/config.json \
        tests/bench/out/base256 [--seed 0] [--dtype F32|F16]

Weights: Linear/embedding ~ N(0, 0.02^2) (the SigLIP init scale), biases ~ N(0, 0.01^2),
LayerNorm weight 1 + N(0, 0.02^2), bias N(0, 0.02^2), probe ~ N(0, 1). The same seed and config
give the same bytes.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

TEXT = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
            num_attention_heads=12, vocab_size=32000, max_position_embeddings=64)
VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
              num_attention_heads=12, num_channels=3, image_size=224, patch_size=16)


def tensor_specs(cfg):
    """[(name, shape, kind)] in checkpoint order; kind picks the distribution."""
    t = dict(TEXT, **{k: v for k, v in cfg.get("text_config", {}).items() if k in TEXT})
    v = dict(VISION, **{k: v for k, v in cfg.get("vision_config", {}).items() if k in VISION})
    out = [("logit_scale", [1], "scale"), ("logit_bias", [1], "lbias")]

    def layers(prefix, c):
        d, i = c["hidden_size"], c["intermediate_size"]
        for n in range(c["num_hidden_layers"]):
            p = f"{prefix}.encoder.layers.{n}"
            out.append((f"{p}.layer_norm1.weight", [d], "ln_w"))
            out.append((f"{p}.layer_norm1.bias", [d], "ln_b"))
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                out.append((f"{p}.self_attn.{proj}.weight", [d, d], "w"))
                out.append((f"{p}.self_attn.{proj}.bias", [d], "b"))
            out.append((f"{p}.layer_norm2.weight", [d], "ln_w"))
            out.append((f"{p}.layer_norm2.bias", [d], "ln_b"))
            out.append((f"{p}.mlp.fc1.weight", [i, d], "w"))
            out.append((f"{p}.mlp.fc1.bias", [i], "b"))
            out.append((f"{p}.mlp.fc2.weight", [d, i], "w"))
            out.append((f"{p}.mlp.fc2.bias", [d], "b"))

    d = t["hidden_size"]
    out.append(("text_model.embeddings.token_embedding.weight", [t["vocab_size"], d], "w"))
    out.append(("text_model.embeddings.position_embedding.weight",
                [t["max_position_embeddings"], d], "w"))
    layers("text_model", t)
    out.append(("text_model.final_layer_norm.weight", [d], "ln_w"))
    out.append(("text_model.final_layer_norm.bias", [d], "ln_b"))
    out.append(("text_model.head.weight", [d, d], "w"))
    out.append(("text_model.head.bias", [d], "b"))

    d, i, p = v["hidden_size"], v["intermediate_size"], v["patch_size"]
    g = v["image_size"] // p
    out.append(("vision_model.embeddings.patch_embedding.weight", [d, v["num_channels"], p, p],
                "w"))
    out.append(("vision_model.embeddings.patch_embedding.bias", [d], "b"))
    out.append(("vision_model.embeddings.position_embedding.weight", [g * g, d], "w"))
    layers("vision_model", v)
    out.append(("vision_model.post_layernorm.weight", [d], "ln_w"))
    out.append(("vision_model.post_layernorm.bias", [d], "ln_b"))
    out.append(("vision_model.head.probe", [1, 1, d], "probe"))
    out.append(("vision_model.head.attention.in_proj_weight", [3 * d, d], "w"))
    out.append(("vision_model.head.attention.in_proj_bias", [3 * d], "b"))
    out.append(("vision_model.head.attention.out_proj.weight", [d, d], "w"))
    out.append(("vision_model.head.attention.out_proj.bias", [d], "b"))
    out.append(("vision_model.head.layernorm.weight", [d], "ln_w"))
    out.append(("vision_model.head.layernorm.bias", [d], "ln_b"))
    out.append(("vision_model.head.mlp.fc1.weight", [i, d], "w"))
    out.append(("vision_model.head.mlp.fc1.bias", [i], "b"))
    out.append(("vision_model.head.mlp.fc2.weight", [d, i], "w"))
    out.append(("vision_model.head.mlp.fc2.bias", [d], "b"))
    return out


def sample(rng, shape, kind):
    n = int(np.prod(shape))
    if kind == "w":
        x = rng.standard_normal(n, dtype=np.float32) * np.float32(0.02)
    elif kind == "b":
        x = rng.standard_normal(n, dtype=np.float32) * np.float32(0.01)
    elif kind == "ln_w":
        x = np.float32(1) + rng.standard_normal(n, dtype=np.float32) * np.float32(0.02)
    elif kind == "ln_b":
        x = rng.standard_normal(n, dtype=np.float32) * np.float32(0.02)
    elif kind == "probe":
        x = rng.standard_normal(n, dtype=np.float32)
    elif kind == "scale":
        x = np.full(n, np.log(10.0), dtype=np.float32)
    else:  # logit bias
        x = np.full(n, -10.0, dtype=np.float32)
    return x.reshape(shape)


def write(config_path, out_dir, seed=0, dtype="F32"):
    with open(config_path) as f:
        cfg = json.load(f)
    specs = tensor_specs(cfg)
    np_dt = {"F32": np.float32, "F16": np.float16}[dtype]
    itemsize = np.dtype(np_dt).itemsize
    header = {"__metadata__": {"format": "pt", "producer": "rsclip make_random_model.py",
                               "seed": str(seed)}}
    off = 0
    for name, shape, _ in specs:
        nb = int(np.prod(shape)) * itemsize
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + nb]}
        off += nb
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, "model.safetensors.tmp")
    rng = np.random.default_rng(seed)
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name, shape, kind in specs:
            f.write(sample(rng, shape, kind).astype(np.dtype(np_dt).newbyteorder("<")).tobytes())
    os.replace(tmp, os.path.join(out_dir, "model.safetensors"))
    cfg_out = dict(cfg)
    cfg_out["torch_dtype"] = "float32" if dtype == "F32" else "float16"
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg_out, f, indent=2)
    pre = os.path.join(os.path.dirname(config_path), "preprocessor_config.json")
    if os.path.exists(pre):
        shutil.copy(pre, os.path.join(out_dir, "preprocessor_config.json"))
    n_params = sum(int(np.prod(s)) for _, s, _ in specs)
    print(f"{out_dir}: {len(specs)} tensors, {n_params} parameters, {dtype}, seed {seed}")
    return n_params


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", help="config.json (HF SiglipConfig; missing keys = defaults)")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["F32", "F16"], default="F32")
    a = ap.parse_args()
    write(a.config, a.out_dir, a.seed, a.dtype)


if __name__ == "__main__":
    sys.exit(main())
