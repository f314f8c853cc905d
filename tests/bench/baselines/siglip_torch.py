#!/usr/bin/python3
"""Minimal SigLIP (HF SiglipModel semantics) in plain torch.nn, for benchmark baselines.

Written from /work/shared/fixtures/SIGLIP_SPEC.md (transformers is not installed here). Loads a
model folder (config.json + model.safetensors with the HF tensor names) with a safetensors parser
built on struct + numpy, so the baselines run the real computation on the same weights as rsclip.

    /usr/bin/python3 siglip_torch.py --verify tests/fixtures/siglip-tiny
        checks image/text embeddings against the fixture's reference.safetensors (rel err <= 1e-5)
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ------------------------------------------------------------------------------------------------
# safetensors (SIGLIP_SPEC.md §2): u64 LE header length, JSON header, raw LE data block

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
           "I32": np.int32, "BF16": np.uint16}


def read_safetensors(path):
    """Return (dict name -> numpy array, metadata). BF16 is widened to float32."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
    meta = header.pop("__metadata__", {})
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        raw = mm[base + a: base + b]
        dt = e["dtype"]
        if dt not in _DTYPES:
            raise ValueError(f"{path}: {name}: dtype {dt} not handled")
        arr = np.frombuffer(raw, dtype=np.dtype(_DTYPES[dt]).newbyteorder("<"))
        if dt == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.reshape(e["shape"])
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (float32/float16/int64). Header padded to 8 bytes."""
    names = list(tensors)
    header = {"__metadata__": metadata or {"format": "pt"}}
    off = 0
    codes = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
             np.dtype(np.int64): "I64"}
    for k in names:
        t = tensors[k]
        nb = t.size * t.itemsize
        header[k] = {"dtype": codes[t.dtype], "shape": list(t.shape),
                     "data_offsets": [off, off + nb]}
        off += nb
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for k in names:
            f.write(np.ascontiguousarray(tensors[k]).astype(tensors[k].dtype.newbyteorder("<"),
                                                            copy=False).tobytes())


# ------------------------------------------------------------------------------------------------
# config (SIGLIP_SPEC.md §1: missing keys take the class defaults)

_TEXT_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                      num_attention_heads=12, vocab_size=32000, max_position_embeddings=64,
                      layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh")
_VISION_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                        num_attention_heads=12, num_channels=3, image_size=224, patch_size=16,
                        layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh")


def load_config(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    t = dict(_TEXT_DEFAULTS, **{k: v for k, v in cfg.get("text_config", {}).items()
                                if k in _TEXT_DEFAULTS})
    v = dict(_VISION_DEFAULTS, **{k: v for k, v in cfg.get("vision_config", {}).items()
                                  if k in _VISION_DEFAULTS})
    for c in (t, v):
        if c["hidden_act"] != "gelu_pytorch_tanh":
            raise ValueError(f"hidden_act {c['hidden_act']} not handled")
        if c["hidden_size"] % c["num_attention_heads"]:
            raise ValueError("hidden_size not divisible by num_attention_heads")
    return t, v


# ------------------------------------------------------------------------------------------------
# model (SIGLIP_SPEC.md §3-§5)

def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm that accepts bf16 input under CPU autocast (torch 1.13 does not cast it):
    computed in the parameters' dtype, like autocast's fp32 policy."""

    def forward(self, x):
        if x.dtype != self.weight.dtype:
            x = x.to(self.weight.dtype)
        return super().forward(x)


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.hd = heads, d // heads
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):  # x: [B, T, D]
        b, t, d = x.shape
        def split(y):
            return y.view(b, t, self.heads, self.hd).transpose(1, 2)  # [B, H, T, hd]
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        s = torch.matmul(q, k.transpose(-1, -2)) * (self.hd ** -0.5)
        p = torch.softmax(s.float(), dim=-1).to(q.dtype)
        o = torch.matmul(p, v).transpose(1, 2).reshape(b, t, d)
        return self.out_proj(o)


class MLP(nn.Module):
    def __init__(self, d, inter):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, inter), nn.Linear(inter, d)

    def forward(self, x):
        return self.fc2(gelu_tanh(self.fc1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.layer_norm1 = LayerNorm(d, eps=c["layer_norm_eps"])
        self.self_attn = Attention(d, c["num_attention_heads"])
        self.layer_norm2 = LayerNorm(d, eps=c["layer_norm_eps"])
        self.mlp = MLP(d, c["intermediate_size"])

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class MAPHead(nn.Module):
    """Multihead attention pooling (nn.MultiheadAttention semantics, fused in_proj)."""

    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.heads, self.hd = c["num_attention_heads"], d // c["num_attention_heads"]
        self.probe = nn.Parameter(torch.zeros(1, 1, d))
        self.attention = nn.Module()
        self.attention.in_proj_weight = nn.Parameter(torch.zeros(3 * d, d))
        self.attention.in_proj_bias = nn.Parameter(torch.zeros(3 * d))
        self.attention.out_proj = nn.Linear(d, d)
        self.layernorm = LayerNorm(d, eps=c["layer_norm_eps"])
        self.mlp = MLP(d, c["intermediate_size"])

    def forward(self, x):  # x: [B, T, D] -> [B, D]
        b, t, d = x.shape
        w, bias = self.attention.in_proj_weight, self.attention.in_proj_bias
        q = F.linear(self.probe.expand(b, 1, d), w[:d], bias[:d])
        k = F.linear(x, w[d:2 * d], bias[d:2 * d])
        v = F.linear(x, w[2 * d:], bias[2 * d:])
        q = q.view(b, 1, self.heads, self.hd).transpose(1, 2)
        k = k.view(b, t, self.heads, self.hd).transpose(1, 2)
        v = v.view(b, t, self.heads, self.hd).transpose(1, 2)
        s = torch.matmul(q, k.transpose(-1, -2)) * (self.hd ** -0.5)
        p = torch.softmax(s.float(), dim=-1).to(q.dtype)
        r = torch.matmul(p, v).transpose(1, 2).reshape(b, 1, d)
        r = self.attention.out_proj(r)
        y = r + self.mlp(self.layernorm(r))
        return y[:, 0]


class VisionTower(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, p, s = c["hidden_size"], c["patch_size"], c["image_size"]
        self.embeddings = nn.Module()
        self.embeddings.patch_embedding = nn.Conv2d(c["num_channels"], d, p, stride=p)
        self.embeddings.position_embedding = nn.Embedding((s // p) ** 2, d)
        self.encoder = Encoder(c)
        self.post_layernorm = LayerNorm(d, eps=c["layer_norm_eps"])
        self.head = MAPHead(c)

    def last_hidden_state(self, pixel_values):  # [B, 3, S, S] -> [B, T, D]
        x = self.embeddings.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        x = x + self.embeddings.position_embedding.weight
        return self.post_layernorm(self.encoder(x))

    def forward(self, pixel_values):  # -> image_embeds [B, D] (not normalized)
        return self.head(self.last_hidden_state(pixel_values))


class TextTower(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.embeddings = nn.Module()
        self.embeddings.token_embedding = nn.Embedding(c["vocab_size"], d)
        self.embeddings.position_embedding = nn.Embedding(c["max_position_embeddings"], d)
        self.encoder = Encoder(c)
        self.final_layer_norm = LayerNorm(d, eps=c["layer_norm_eps"])
        self.head = nn.Linear(d, d)

    def forward(self, input_ids):  # [B, T] int64 -> text_embeds [B, D] (not normalized)
        t = input_ids.shape[1]
        x = self.embeddings.token_embedding(input_ids)
        x = x + self.embeddings.position_embedding.weight[:t]
        x = self.final_layer_norm(self.encoder(x))
        return self.head(x[:, -1])


class Siglip(nn.Module):
    def __init__(self, tcfg, vcfg):
        super().__init__()
        self.text_model = TextTower(tcfg)
        self.vision_model = VisionTower(vcfg)
        self.logit_scale = nn.Parameter(torch.zeros(1))
        self.logit_bias = nn.Parameter(torch.zeros(1))


def load_model(folder):
    """Siglip module in eval mode with the folder's weights (every parameter must be present)."""
    tcfg, vcfg = load_config(folder)
    m = Siglip(tcfg, vcfg).eval()
    tensors, _ = read_safetensors(os.path.join(folder, "model.safetensors"))
    own = dict(m.named_parameters())
    missing = sorted(set(own) - set(tensors))
    if missing:
        raise ValueError(f"{folder}: missing tensors: {missing[:5]}")
    with torch.no_grad():
        for name, p in own.items():
            src = tensors[name]
            if tuple(src.shape) != tuple(p.shape):
                raise ValueError(f"{name}: shape {src.shape} != {tuple(p.shape)}")
            p.copy_(torch.from_numpy(np.array(src, dtype=np.float32)))
    return m, tcfg, vcfg


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def verify(folder, tol=1e-5):
    """Compare against reference.safetensors; returns the worst relative error."""
    m, _, _ = load_model(folder)
    ref, _ = read_safetensors(os.path.join(folder, "reference.safetensors"))
    worst = 0.0
    with torch.inference_mode():
        px = torch.from_numpy(np.array(ref["pixel_values"]))
        ids = torch.from_numpy(np.array(ref["input_ids"]))
        checks = {
            "image_embeds": m.vision_model(px).numpy(),
            "vision_last_hidden_state": m.vision_model.last_hidden_state(px).numpy(),
            "text_embeds": m.text_model(ids).numpy(),
            "resize_image_embeds": m.vision_model(
                torch.from_numpy(np.array(ref["resize_pixel_values"]))).numpy(),
        }
    for k, v in checks.items():
        e = _rel(v, np.array(ref[k]))
        worst = max(worst, e)
        print(f"{k:28s} max rel err {e:.2e}")
    ok = worst <= tol
    print(("OK" if ok else "FAIL") + f": worst {worst:.2e} (tolerance {tol:g})")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verify", metavar="FOLDER", required=True,
                    help="model folder with reference.safetensors")
    a = ap.parse_args()
    sys.exit(0 if verify(a.verify) else 1)


if __name__ == "__main__":
    main()
