"""rsclip_resize_bicubic_u8 against the installed Pillow (Debian 12: 9.4.0, the version that
produced the fixtures): random L and RGB images, up- and downscaling by various factors, one or
both axes, must be byte-identical. usage: test_model_resize_pillow.py <resize_tool>"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, __version__ as pil_version

tool = sys.argv[1]
rng = np.random.default_rng(1234)
cases = [
    ((300, 200), (256, 256)), ((256, 256), (224, 224)), ((512, 512), (256, 256)),
    ((1000, 37), (256, 256)), ((10, 10), (256, 256)), ((1, 1), (5, 5)), ((7, 300), (7, 16)),
    ((300, 7), (16, 7)), ((257, 255), (256, 256)), ((4096, 3), (13, 9)), ((33, 65), (64, 31)),
]
failures = 0
with tempfile.TemporaryDirectory() as tmp:
    for mode, ch in (("L", 1), ("RGB", 3)):
        for (w, h), (ow, oh) in cases:
            # a mix of noise and smooth structure so both ringing and clamping occur
            noise = rng.integers(0, 256, size=(h, w, ch), dtype=np.uint8)
            yy, xx = np.mgrid[0:h, 0:w]
            smooth = ((xx * 255 // max(w - 1, 1)) ^ (yy * 3 % 256)).astype(np.uint8)
            arr = np.where(rng.random((h, w, ch)) < 0.5, noise, smooth[..., None]).astype(np.uint8)
            img = Image.fromarray(arr[..., 0] if ch == 1 else arr, mode)
            want = np.asarray(img.resize((ow, oh), Image.BICUBIC)).reshape(oh, ow, ch)
            src = os.path.join(tmp, "in.raw")
            dst = os.path.join(tmp, "out.raw")
            arr.tofile(src)
            subprocess.run([tool, src, str(w), str(h), str(ch), str(ow), str(oh), dst], check=True)
            got = np.fromfile(dst, dtype=np.uint8).reshape(oh, ow, ch)
            nbad = int((got != want).sum())
            if nbad:
                failures += 1
                print(f"{mode} {w}x{h} -> {ow}x{oh}: {nbad} bytes differ "
                      f"(max diff {int(np.abs(got.astype(int) - want).max())})")
print(f"Pillow {pil_version}: {2 * len(cases) - failures}/{2 * len(cases)} cases identical")
sys.exit(1 if failures else 0)
