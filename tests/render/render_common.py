"""Shared by the chips/sheet tests (tests/render) and the server tests (tests/serve): the real
rsclip binary on the bundled samples with the tiny fixture model, and independent readings of
what it wrote (GDAL, SQLite, numpy)."""
import json
import os
import sqlite3
import subprocess
import sys

import numpy as np
from osgeo import gdal

gdal.UseExceptions()

BIN = os.environ.get("RSCLIP_BIN", "build/core/rsclip")
SRC = os.environ.get("RSCLIP_SOURCE_DIR", ".")
FIX = os.environ.get("RSCLIP_FIXTURES", os.path.join(SRC, "tests", "fixtures"))
MODEL = os.path.join(FIX, "siglip-tiny")
SAMPLES = os.path.join(SRC, "samples")

# check, failures, finish and run are the tests' shared ones (tests/lib), re-exported here
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rsclip_testlib import check, failures, finish, run  # noqa: E402,F401


def sample(name):
    for f in sorted(os.listdir(SAMPLES)):
        if f.startswith(name) and f.endswith(".tif"):
            return os.path.join(SAMPLES, f)
    raise SystemExit("no sample " + name)


def build_index(path, inputs, extra=()):
    run(["index", "-q", "-m", MODEL, "-o", path] + list(extra) + list(inputs), check_rc=0)
    return path


def search_geojson(index, args):
    """The hits of `rsclip search INDEX ARGS -of GeoJSON` (the reference for everything else)."""
    p = run(["search", index] + list(args) + ["-of", "GeoJSON"], check_rc=0)
    return json.loads(p.stdout)


def tile_rows(index):
    """tile id -> dict(scene_id, scene path, grid window, corners UL/UR/LR/LL) from SQLite."""
    db = sqlite3.connect(index)
    out = {}
    for r in db.execute(
            "SELECT t.fid, t.scene_id, s.path, t.xoff, t.yoff, t.xsize, t.ysize, t.ul_x, t.ul_y, "
            "t.ur_x, t.ur_y, t.lr_x, t.lr_y, t.ll_x, t.ll_y, s.width, s.src_width, s.height, "
            "s.src_height FROM tiles t JOIN scenes s ON s.id = t.scene_id"):
        out[r[0]] = {"scene_id": r[1], "scene": r[2], "win": r[3:7], "corners": r[7:15],
                     "grid": (r[15], r[17]), "src": (r[16], r[18])}
    db.close()
    return out


def scene_rows(index):
    db = sqlite3.connect(index)
    out = {}
    for r in db.execute("SELECT id, path, bands, scaling, settings FROM scenes"):
        out[r[0]] = {"path": r[1], "bands": r[2], "scaling": json.loads(r[3]),
                     "settings": json.loads(r[4]) if r[4] else None}
    db.close()
    return out


def read_png(path_or_bytes):
    """A PNG as a numpy array [h, w, bands] through GDAL."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        name = "/vsimem/render_common_%d.png" % id(path_or_bytes)
        gdal.FileFromMemBuffer(name, bytes(path_or_bytes))
        try:
            return read_png(name)
        finally:
            gdal.Unlink(name)
    ds = gdal.Open(path_or_bytes)
    a = ds.ReadAsArray()
    if a.ndim == 2:
        a = a[None]
    return np.transpose(a, (1, 2, 0))


def model_tiles(tiler_dump, scene, tmp, extra=()):
    """The RGB tiles the model reads from a scene with the tiler's own reading (tiler_dump):
    grid window -> array [h, w, 3]."""
    raw = os.path.join(tmp, "raw_%d" % abs(hash((scene,) + tuple(extra))))
    os.makedirs(raw, exist_ok=True)
    p = subprocess.run([tiler_dump, "-minvalid", "0", "-raw", raw] + list(extra) + [scene],
                       capture_output=True, text=True, check=True)
    out = {}
    for line in p.stdout.splitlines():
        d = json.loads(line)
        if "tile" not in d:
            continue
        w, h = d["out"]
        with open(os.path.join(raw, "tile_%d.rgb" % d["tile"]), "rb") as f:
            out[tuple(d["win"])] = np.frombuffer(f.read(), np.uint8)[:w * h * 3].reshape(h, w, 3)
    return out
