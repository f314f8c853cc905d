#!/usr/bin/python3
"""`rsclip search --chips DIR --sheet FILE` and query examples, end to end on the samples:

  chips     every chip's bounds are its tile's corners, its bands, type, nodata and pixels are
            the source window's; its PNG is the tile the model reads (tiler_dump) and, for
            16-bit and nodata scenes, what numpy computes from the recorded scaling
  gsd       after --gsd (fractional source windows) chips still cover exactly the footprint
  sheet     PNG and PDF of the layout's size, one cell per hit showing that hit, the title
  rules     no output replaced unasked, never the index, stale chips of a longer run removed
  regions   --merge: a chip per region covering its best tile, a sheet per region
  examples  --like-tile with a text, several like tiles, --unlike-tile, their limits

Usage: test_chips.py GROUP TILER_DUMP"""
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile

import numpy as np
from osgeo import gdal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from render_common import (build_index, check, finish, model_tiles, read_png, run,  # noqa: E402
                           sample, SAMPLES, scene_rows, search_geojson, tile_rows)

TILER_DUMP = sys.argv[2] if len(sys.argv) > 2 else "build/tests/tiler/tiler_dump"
# The contact sheet's layout (rsclip/render.h: rsclip_sheet_layout), restated as the test's spec.
MARGIN, GAP, LINE, HEADER, MIN_W, THUMB = 24, 16, 15, 52, 560, 192


def chips_of(folder):
    with open(os.path.join(folder, "chips.geojson")) as f:
        return json.load(f)["features"]


def bounds(ds):
    g = ds.GetGeoTransform()
    return (g[0], g[3], g[0] + ds.RasterXSize * g[1], g[3] + ds.RasterYSize * g[5]), g


def check_chip_bounds(tif, row, what):
    ds = gdal.Open(tif)
    (ulx, uly, lrx, lry), g = bounds(ds)
    c = row["corners"]  # UL x,y, UR, LR, LL
    tol = 1e-6 * abs(g[1]) + 1e-9
    ok = (abs(ulx - c[0]) < tol and abs(uly - c[1]) < tol and abs(lrx - c[4]) < tol
          and abs(lry - c[5]) < tol)
    check(ok, "%s: chip bounds %s != footprint corners %s" % (what, (ulx, uly, lrx, lry),
                                                             (c[0], c[1], c[4], c[5])))
    return ds


def test_chips(tmp):
    idx = build_index(os.path.join(tmp, "idx.gpkg"), [SAMPLES])
    d = os.path.join(tmp, "chips")
    run(["search", idx, "airport", "-k", "12", "--chips", d], check_rc=0)
    ref = search_geojson(idx, ["airport", "-k", "12"])["features"]
    feats = chips_of(d)
    check(len(feats) == 12, "chips.geojson has %d features, not 12" % len(feats))
    rows = tile_rows(idx)
    dumps = {}
    for f, r in zip(feats, ref):
        p, rp = f["properties"], r["properties"]
        check(p["rank"] == rp["rank"] and p["tile_id"] == rp["tile_id"],
              "chip %s != hit %s" % (p, rp))
        name = "rank_%03d_tile_%d" % (p["rank"], p["tile_id"])
        check(p["chip"] == name + ".tif" and p["view"] == name + ".png", "names %s" % p)
        check(f["geometry"] == r["geometry"], "rank %d: chip footprint differs" % p["rank"])
        row = rows[p["tile_id"]]
        ds = check_chip_bounds(os.path.join(d, p["chip"]), row, name)
        src = gdal.Open(row["scene"])
        check(ds.RasterCount == src.RasterCount, "%s: %d bands, source %d" %
              (name, ds.RasterCount, src.RasterCount))
        check(ds.GetProjection() == src.GetProjection(), "%s: CRS differs" % name)
        x, y, w, h = row["win"]
        for b in range(1, src.RasterCount + 1):
            sb, db = src.GetRasterBand(b), ds.GetRasterBand(b)
            check(sb.DataType == db.DataType, "%s band %d: type" % (name, b))
            check(sb.GetNoDataValue() == db.GetNoDataValue(), "%s band %d: nodata" % (name, b))
            check(np.array_equal(sb.ReadAsArray(x, y, w, h), db.ReadAsArray()),
                  "%s band %d: pixels are not the source window's" % (name, b))
        # the PNG is the tile the model reads from that scene with the same settings
        if row["scene"] not in dumps:
            dumps[row["scene"]] = model_tiles(TILER_DUMP, row["scene"], tmp)
        view = read_png(os.path.join(d, p["view"]))
        tile = dumps[row["scene"]].get(tuple(row["win"]))
        check(tile is not None and view.shape == tile.shape and np.array_equal(view, tile),
              "%s: the PNG is not the model's tile" % name)
    # independent: numpy from the source and the scaling the index recorded
    scenes = scene_rows(idx)
    for stem in ("s2_aberystwyth", "l7_rgb_300m", "l8_b7"):
        sid = [k for k, v in scenes.items() if os.path.basename(v["path"]).startswith(stem)][0]
        d2 = os.path.join(tmp, "chips_" + stem)
        run(["search", idx, "water", "-k", "3", "--scene", str(sid), "--chips", d2], check_rc=0)
        sc = scenes[sid]
        src = gdal.Open(sc["path"])
        bands = [int(b) for b in sc["bands"].split(",")]
        bands = bands * 3 if len(bands) == 1 else bands
        for f in chips_of(d2):
            x, y, w, h = rows[f["properties"]["tile_id"]]["win"]
            want = np.zeros((h, w, 3), np.uint8)
            valid = np.ones((h, w), bool)
            for c, b in enumerate(bands):
                band = src.GetRasterBand(b)
                v = band.ReadAsArray(x, y, w, h).astype(np.float64)
                if band.GetNoDataValue() is not None:
                    valid &= v != band.GetNoDataValue()
                s = sc["scaling"]
                if s["mode"] == "none":
                    want[..., c] = v
                else:
                    lo, hi = s["min"][c], s["max"][c]
                    want[..., c] = np.clip(np.floor((v - lo) * (255.0 / (hi - lo)) + 0.5), 0, 255)
            want[~valid] = 0
            got = read_png(os.path.join(d2, f["properties"]["view"]))
            check(np.array_equal(got, want), "%s tile %d: PNG != numpy from the recorded scaling"
                  % (stem, f["properties"]["tile_id"]))


def test_gsd(tmp):
    # s2 at 10 m resampled to 13 m: 715 x 728 grid, windows at fractional source pixels
    idx = build_index(os.path.join(tmp, "gsd.gpkg"), [sample("s2_aberystwyth")],
                      ["--gsd", "13"])
    rows = tile_rows(idx)
    d = os.path.join(tmp, "chips")
    run(["search", idx, "harbour", "-k", "16", "--chips", d], check_rc=0)
    dump = model_tiles(TILER_DUMP, sample("s2_aberystwyth"), tmp, ["-gsd", "13"])
    fractional = 0
    src = gdal.Open(sample("s2_aberystwyth"))
    sg = src.GetGeoTransform()
    for f in chips_of(d):
        p = f["properties"]
        row = rows[p["tile_id"]]
        fx = row["src"][0] / row["grid"][0]
        sw = row["win"][2] * fx
        fractional += abs(row["win"][0] * fx - round(row["win"][0] * fx)) > 1e-6
        ds = check_chip_bounds(os.path.join(d, p["chip"]), row, p["chip"])
        g = ds.GetGeoTransform()
        check(ds.RasterXSize == int(math.floor(sw + 0.5)), "%s: %d columns for a %.3f px window"
              % (p["chip"], ds.RasterXSize, sw))
        check(abs(g[1] / sg[1] - 1) < 0.01, "%s: pixel size %g, source %g" % (p["chip"], g[1],
                                                                              sg[1]))
        check(ds.RasterCount == 4 and ds.GetRasterBand(1).DataType == gdal.GDT_UInt16,
              "%s: all 4 UInt16 bands" % p["chip"])
        view = read_png(os.path.join(d, p["view"]))
        tile = dump.get(tuple(row["win"]))
        check(tile is not None and np.array_equal(view, tile),
              "%s: the PNG is not the model's resampled tile" % p["view"])
    check(fractional > 0, "no hit had a fractional source window: the test proves nothing")


def expected_size(n, cols=None, with_map=True):
    c = cols or min(5, n)
    rows = (n + c - 1) // c
    grid_w = c * THUMB + (c - 1) * GAP
    w = 2 * MARGIN + max(grid_w, MIN_W)
    map_h = min(320, max(160, int((w - 2 * MARGIN) * 0.4))) if with_map else 0
    grid_y = MARGIN + HEADER + (map_h + GAP if with_map else 0)
    grid_x = MARGIN + (w - 2 * MARGIN - grid_w) // 2
    return w, grid_y + rows * (THUMB + 6 + 3 * LINE) + (rows - 1) * GAP + MARGIN, grid_x, grid_y, c


def test_sheet(tmp):
    idx = build_index(os.path.join(tmp, "idx.gpkg"), [SAMPLES])
    n = 7
    png, chips = os.path.join(tmp, "sheet.png"), os.path.join(tmp, "c")
    run(["search", idx, "river", "-k", str(n), "--sheet", png, "--chips", chips], check_rc=0)
    img = read_png(png)[..., :3].astype(np.float64)
    w, h, gx, gy, cols = expected_size(n)
    check(img.shape[1] == w and img.shape[0] == h,
          "sheet is %dx%d, the layout says %dx%d" % (img.shape[1], img.shape[0], w, h))
    views = [read_png(os.path.join(chips, f["properties"]["view"])).astype(np.float64)
             for f in chips_of(chips)]
    cell_h = THUMB + 6 + 3 * LINE
    for i in range(cols * ((n + cols - 1) // cols)):
        x, y = gx + (i % cols) * (THUMB + GAP), gy + (i // cols) * (cell_h + GAP)
        cell = img[y:y + cell_h, x:x + THUMB]
        if i >= n:
            check(cell.min() == 255, "slot %d past the %d hits is not empty" % (i, n))
            continue
        thumb = cell[6:THUMB - 6, 6:THUMB - 6]  # inside the coloured frame
        check(thumb.std() > 5, "cell %d shows no picture" % i)
        check((cell[THUMB + 6:] < 128).any(), "cell %d has no text" % i)
        # the thumbnail is this hit's view: it matches it better than any other hit's
        def corr(v):
            hh, ww = v.shape[:2]
            k = min(THUMB / ww, THUMB / hh)
            ys = (np.arange(THUMB - 12) + 6 - (THUMB - hh * k) / 2) / k
            xs = (np.arange(THUMB - 12) + 6 - (THUMB - ww * k) / 2) / k
            inside = (ys[:, None] >= 0) & (ys[:, None] < hh) & (xs[None] >= 0) & (xs[None] < ww)
            s = v[np.clip(ys.astype(int), 0, hh - 1)][:, np.clip(xs.astype(int), 0, ww - 1)]
            a, b = thumb[inside].ravel(), s[inside].ravel()
            return np.corrcoef(a, b)[0, 1] if a.std() > 0 and b.std() > 0 else 0
        scores = [corr(v) for v in views]
        check(int(np.argmax(scores)) == i and scores[i] > 0.8,
              "cell %d does not show hit %d (correlations %s)" % (i, i + 1,
                                                                  np.round(scores, 2)))
    check((img[MARGIN:MARGIN + 24, MARGIN:MARGIN + 200] < 128).any(), "no title")
    check((img[MARGIN + HEADER + 4:gy - GAP - 4, MARGIN + 4:w - MARGIN - 4] < 200).any(),
          "the overview map is empty")
    pdf = os.path.join(tmp, "sheet.pdf")
    run(["search", idx, "river", "-k", str(n), "--sheet", pdf], check_rc=0)
    with open(pdf, "rb") as f:
        data = f.read()
    check(data.startswith(b"%PDF-"), "not a PDF")
    m = re.search(rb"/MediaBox \[\s*0 0 ([0-9.]+) ([0-9.]+)\s*\]", data)
    check(m and float(m.group(1)) == w and float(m.group(2)) == h,
          "PDF page %s, layout %dx%d" % (m.groups() if m else None, w, h))
    check(gdal.Open(pdf) is not None, "GDAL cannot read the PDF")
    # one hit, and many columns
    one = os.path.join(tmp, "one.png")
    run(["search", idx, "river", "-k", "1", "--sheet", one], check_rc=0)
    img1 = read_png(one)
    w1, h1 = expected_size(1)[:2]
    check(img1.shape[:2] == (h1, w1), "one-hit sheet %s, layout %dx%d" % (img1.shape, w1, h1))


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def test_rules(tmp):
    idx = build_index(os.path.join(tmp, "idx.gpkg"), [sample("l8_b7"), sample("usgs_hro")])
    before = md5(idx)
    sheet = os.path.join(tmp, "s.png")
    with open(sheet, "w") as f:
        f.write("mine")
    p = run(["search", idx, "roads", "-k", "3", "--sheet", sheet])
    check(p.returncode == 1 and "exists" in p.stderr and open(sheet).read() == "mine",
          "an existing sheet was not refused: rc %d %s" % (p.returncode, p.stderr))
    check("rank" not in p.stdout, "refused only after searching")
    run(["search", idx, "roads", "-k", "3", "--sheet", sheet, "--overwrite"], check_rc=0)
    check(read_png(sheet).shape[2] >= 3, "--overwrite did not write the sheet")
    for target in (idx, idx + "-wal", idx + ".rsvec"):
        p = run(["search", idx, "roads", "-k", "3", "--sheet", target, "--overwrite"])
        check(p.returncode != 0, "the index (%s) was written as a sheet" % target)
    check(md5(idx) == before, "the index changed")
    # chips: a non-empty folder is refused; --overwrite replaces the earlier chips only
    d = os.path.join(tmp, "chips")
    run(["search", idx, "roads", "-k", "6", "--chips", d], check_rc=0)
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("keep me")
    p = run(["search", idx, "roads", "-k", "2", "--chips", d])
    check(p.returncode == 1 and "not empty" in p.stderr, "a non-empty chips folder was taken")
    check(len(chips_of(d)) == 6, "a refused run changed the chips")
    run(["search", idx, "roads", "-k", "2", "--chips", d, "--overwrite"], check_rc=0)
    names = sorted(os.listdir(d))
    feats = chips_of(d)
    want = sorted(["chips.geojson", "notes.txt"] + [f["properties"][k] for f in feats
                                                     for k in ("chip", "view")])
    check(len(feats) == 2 and names == want, "after --overwrite the folder holds %s" % names)
    check(not any(n.startswith(".rsclip-") for n in os.listdir(d)), "a temporary was left")
    p = run(["search", idx, "roads", "--chips", sheet])
    check(p.returncode == 1 and "not a folder" in p.stderr, "a file taken as a chips folder")
    p = run(["search", idx, "roads", "--chips", os.path.join(tmp, "no", "such", "d")])
    check(p.returncode == 1 and "parent folder" in p.stderr, "missing parent: %s" % p.stderr)
    p = run(["search", idx, "roads", "--sheet", os.path.join(tmp, "s.jpg")])
    check(p.returncode == 1 and ".png or .pdf" in p.stderr, "a .jpg sheet: %s" % p.stderr)
    # chips beside the index: its folder is not empty, --overwrite writes chips and nothing else
    p = run(["search", idx, "roads", "-k", "2", "--chips", tmp, "--overwrite"])
    check(p.returncode == 0, "chips beside the index: %s" % p.stderr)
    check(md5(idx) == before, "chips beside the index changed it")


def test_regions(tmp):
    idx = build_index(os.path.join(tmp, "idx.gpkg"), [SAMPLES])
    rows = tile_rows(idx)
    d, sheet = os.path.join(tmp, "r"), os.path.join(tmp, "r.png")
    run(["search", idx, "city", "-k", "15", "--merge", "--chips", d, "--sheet", sheet],
        check_rc=0)
    ref = search_geojson(idx, ["city", "-k", "15", "--merge"])["features"]
    feats = chips_of(d)
    check(len(feats) == len(ref) > 0, "%d region chips for %d regions" % (len(feats), len(ref)))
    for f, r in zip(feats, ref):
        p = f["properties"]
        check(p["region"] == r["properties"]["region"] and
              p["best_tile"] == r["properties"]["best_tile"], "region %s != %s" % (p, r))
        best = rows[p["best_tile"]]
        ds = gdal.Open(os.path.join(d, p["chip"]))
        (ulx, uly, lrx, lry), g = bounds(ds)
        c = best["corners"]
        tol = 1e-3 * abs(g[1])
        check(ulx <= c[0] + tol and uly >= c[1] - tol and lrx >= c[4] - tol and
              lry <= c[5] + tol, "region %d: chip %s does not cover its best tile %s" %
              (p["region"], (ulx, uly, lrx, lry), c[:2] + c[4:6]))
        if p["tiles"] == 1:
            check(abs(ulx - c[0]) < tol and abs(lry - c[5]) < tol,
                  "region %d of one tile: chip is not the tile" % p["region"])
        view = read_png(os.path.join(d, p["view"]))  # RGBA, RGB when nothing is transparent
        check(view.shape[2] in (3, 4) and view[..., :3].std() > 5 and
              (view.shape[2] == 3 or view[..., 3].max() == 255), "region %d view" % p["region"])
    img = read_png(sheet)
    w, h = expected_size(len(ref))[:2]
    check(img.shape[:2] == (h, w), "region sheet %s, layout %dx%d" % (img.shape, w, h))


def ranks(fc):
    return [f["properties"]["tile_id"] for f in fc["features"]]


def scores(fc):
    return {f["properties"]["tile_id"]: f["properties"]["score"] for f in fc["features"]}


def test_examples(tmp):
    idx = build_index(os.path.join(tmp, "idx.gpkg"), [SAMPLES])
    fc = search_geojson(idx, ["lake", "-k", "40"])
    base = ranks(fc)
    top, low = base[0], base[-1]
    fc2 = search_geojson(idx, ["lake", "-k", "40", "--unlike-tile", str(top)])
    got = ranks(fc2)
    # the unliked tile is its own worst negative: its score drops by exactly 0.5 * cos(t, t)
    check(got.index(top) > 0 and abs(scores(fc)[top] - 0.5 - scores(fc2)[top]) < 1e-4,
          "--unlike-tile did not push its tile down: %s, score %s -> %s" %
          (got[:8], scores(fc)[top], scores(fc2).get(top)))
    got = ranks(search_geojson(idx, ["lake", "-k", "40", "--like-tile", str(low)]))
    check(got.index(low) < base.index(low), "--like-tile with a text did not lift tile %d" % low)
    two = ranks(search_geojson(idx, ["--like-tile", str(base[7]), "--like-tile", str(base[9]),
                                     "-k", "5"]))
    check(set(two[:2]) == {base[7], base[9]}, "two like tiles are not their own best hits: %s"
          % two)
    one = ranks(search_geojson(idx, ["--like-tile", str(low), "-k", "5"]))
    check(one[0] == low, "a like tile alone is not its own best hit")
    p = run(["search", idx, "lake", "--like-tile", "999999"])
    check(p.returncode == 1 and "no tile 999999" in p.stderr, "missing like tile: %s" % p.stderr)
    p = run(["search", idx, "lake", "--unlike-tile", "0"])
    check(p.returncode == 2, "tile id 0 accepted")
    nots = sum((["--not", "t%d" % i] for i in range(16)), [])
    p = run(["search", idx, "lake", "--unlike-tile", str(top)] + nots)
    check(p.returncode == 1 and "at most 16 negatives" in p.stderr,
          "17 negatives accepted: %s" % p.stderr)
    p = run(["search", idx, "lake", "--like-point", "0,0", "--like-image", "x.png"])
    check(p.returncode == 2, "two queries accepted")


GROUPS = {"chips": test_chips, "gsd": test_gsd, "sheet": test_sheet, "rules": test_rules,
          "regions": test_regions, "examples": test_examples}

if __name__ == "__main__":
    group = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="rsclip_chips_")
    try:
        GROUPS[group](tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    finish("test_chips " + group)
