"""Tiler checks against independent computations (GDAL python bindings, OSR/PROJ, numpy,
gdaltransform): tile windows, footprints in the scene CRS and in WGS84, masks and skipped tiles,
8-bit pass-through, percentile scaling of 16-bit data, GSD resampling, bad inputs.

Usage: /usr/bin/python3 test_tiler_geo.py <path of tiler_dump>
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

DUMP = sys.argv[1]
SRC = os.environ.get("RSCLIP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SAMPLES = os.path.join(SRC, "samples")
TMP = tempfile.mkdtemp(prefix="rsclip_tiler_")
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def sample(name):
    for f in os.listdir(SAMPLES):
        if f.startswith(name) and f.endswith(".tif"):
            return os.path.join(SAMPLES, f)
    raise SystemExit("sample %s missing" % name)


def dump(path, *args, raw=None):
    cmd = [DUMP] + list(args)
    if raw:
        os.makedirs(raw, exist_ok=True)
        cmd += ["-raw", raw]
    cmd.append(path)
    p = subprocess.run(cmd, capture_output=True, text=True)
    check(p.stderr == "", "%s: the library printed to stderr: %r" % (path, p.stderr[:200]))
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    return p.returncode, lines


def expected_offsets(n, tile, stride):
    """The documented grid rule: windows every stride pixels, the last one shifted back so it
    ends at the raster edge; a raster smaller than a tile gets one window of its own size."""
    if n <= tile:
        return [0]
    count = (n - tile + stride - 1) // stride + 1
    return [min(i * stride, n - tile) for i in range(count)]


def wgs84_ct(ds_srs):
    src = ds_srs.Clone()
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return osr.CoordinateTransformation(src, dst)


def check_geometry(path, lines, tile=256, stride=256, densify=8, ds=None, label=None):
    """Windows, corners, rings and centres of every tile against GDAL/OSR in Python."""
    label = label or os.path.basename(path)
    ds = ds or gdal.Open(path)
    scene, tiles = lines[0], lines[1:]
    W, H = scene["width"], scene["height"]
    gt = scene["gt"]
    xo, yo = expected_offsets(W, tile, stride), expected_offsets(H, tile, stride)
    check(scene["tiles_x"] == len(xo) and scene["tiles_y"] == len(yo),
          "%s: grid %dx%d, expected %dx%d" % (label, scene["tiles_x"], scene["tiles_y"],
                                              len(xo), len(yo)))
    check(len(tiles) == len(xo) * len(yo), "%s: %d tiles listed" % (label, len(tiles)))
    covered = np.zeros((H, W), bool)
    srs = ds.GetSpatialRef()
    ct = wgs84_ct(srs) if srs is not None and scene["georef"] == 2 else None
    for t in tiles:
        i = t["tile"]
        r, c = divmod(i, len(xo))
        win = [xo[c], yo[r], min(tile, W), min(tile, H)]
        check(t["win"] == win, "%s tile %d: window %s, expected %s" % (label, i, t["win"], win))
        check(t["out"] == win[2:], "%s tile %d: out size %s" % (label, i, t["out"]))
        covered[win[1]:win[1] + win[3], win[0]:win[0] + win[2]] = True
        x0, y0, x1, y1 = win[0], win[1], win[0] + win[2], win[1] + win[3]
        exp = [gdal.ApplyGeoTransform(gt, x0, y0), gdal.ApplyGeoTransform(gt, x1, y0),
               gdal.ApplyGeoTransform(gt, x1, y1), gdal.ApplyGeoTransform(gt, x0, y1)]
        err = np.abs(np.array(exp) - np.array(t["corners"])).max()
        check(err < 1e-6, "%s tile %d: corners off by %g" % (label, i, err))
        if ct is None:
            check(t["has_lonlat"] == 0, "%s tile %d: lon/lat without CRS" % (label, i))
            continue
        check(t["has_lonlat"] == 1, "%s tile %d: no lon/lat" % (label, i))
        pix = []
        for (ax, ay), (bx, by) in zip([(x0, y0), (x0, y1), (x1, y1), (x1, y0)],
                                      [(x0, y1), (x1, y1), (x1, y0), (x0, y0)]):
            for j in range(densify):
                f = j / densify
                pix.append((ax + (bx - ax) * f, ay + (by - ay) * f))
        pix.append(pix[0])
        ring = np.array([ct.TransformPoint(*gdal.ApplyGeoTransform(gt, px, py))[:2]
                         for px, py in pix])
        got = np.array(t["ring"])
        check(got.shape == ring.shape, "%s tile %d: ring shape %s" % (label, i, got.shape))
        if got.shape == ring.shape:
            err = np.abs(got - ring).max()
            check(err < 1e-9, "%s tile %d: ring off by %g deg" % (label, i, err))
        cx, cy = ct.TransformPoint(*gdal.ApplyGeoTransform(gt, (x0 + x1) / 2, (y0 + y1) / 2))[:2]
        err = max(abs(cx - t["center"][0]), abs(cy - t["center"][1]))
        check(err < 1e-9, "%s tile %d: centre off by %g deg" % (label, i, err))
        # Orientation: counter-clockwise (positive shoelace area) for north-up rasters.
        if gt[5] < 0 and gt[2] == 0 and gt[4] == 0:
            x, y = got[:, 0], got[:, 1]
            area = 0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1])
            check(area > 0, "%s tile %d: ring is not counter-clockwise" % (label, i))
    check(covered.all(), "%s: the tiles do not cover the raster" % label)
    return scene, tiles


def gdaltransform_lonlat(path, pts):
    """Pixel -> lon/lat through the gdaltransform program (GDAL's own transformer chain)."""
    p = subprocess.run(["gdaltransform", "-t_srs", "EPSG:4326", "-output_xy", path],
                       input="".join("%r %r\n" % pt for pt in pts), capture_output=True, text=True)
    return np.array([[float(v) for v in l.split()[:2]] for l in p.stdout.splitlines()])


def metres(a, b):
    """Ground distance of two nearby lon,lat points (local WGS84 radii of curvature)."""
    lat = np.radians((a[1] + b[1]) / 2)
    e2 = 0.00669437999014
    w = 1 - e2 * np.sin(lat) ** 2
    m, n = 6378137 * (1 - e2) / w ** 1.5, 6378137 / np.sqrt(w)
    return np.hypot(np.radians(b[1] - a[1]) * m, np.radians(b[0] - a[0]) * n * np.cos(lat))


def mask_valid(ds, bands):
    m = None
    for b in sorted(set(bands)):
        v = ds.GetRasterBand(b).GetMaskBand().ReadAsArray() != 0
        m = v if m is None else (m & v)
    return m


def read_raw(raw, i, w, h):
    return np.fromfile(os.path.join(raw, "tile_%d.rgb" % i), np.uint8).reshape(h, w, 3)


def write_png(path, rgb):
    h, w, _ = rgb.shape
    mem = gdal.GetDriverByName("MEM").Create("", w, h, 3, gdal.GDT_Byte)
    for c in range(3):
        mem.GetRasterBand(c + 1).WriteArray(rgb[:, :, c])
    gdal.GetDriverByName("PNG").CreateCopy(path, mem)


# ---- UTM (NAD83 / UTM 14N), 8-bit pass-through with per-band nodata --------------------------
def test_naip_utm():
    path = sample("naip_nd_")
    raw = os.path.join(TMP, "naip")
    rc, lines = dump(path, raw=raw)
    check(rc == 0, "naip: dump failed %s" % lines[-1:])
    scene, tiles = check_geometry(path, lines)
    check(scene["epsg"] == 26914, "naip: epsg %d" % scene["epsg"])
    check(scene["bands"] == [1, 2, 3], "naip: default bands %s" % scene["bands"])
    check(scene["scale_mode"] == 1 and scene["scaling"] == {"mode": "none", "data_type": "Byte",
                                                  "fill": 0},
          "naip: 8-bit data must pass unchanged")
    ds = gdal.Open(path)
    valid = mask_valid(ds, [1, 2, 3])
    data = np.dstack([ds.GetRasterBand(b).ReadAsArray() for b in (1, 2, 3)])
    for t in tiles:
        x, y, w, h = t["win"]
        v = valid[y:y + h, x:x + w]
        check(abs(t["valid"] - v.mean()) < 1e-12, "naip tile %d valid %g vs %g"
              % (t["tile"], t["valid"], v.mean()))
        if t["skipped"]:
            continue
        exp = np.where(v[:, :, None], data[y:y + h, x:x + w], 0)
        got = read_raw(raw, t["tile"], w, h)
        check(np.array_equal(got, exp), "naip tile %d: bytes differ from GDAL's" % t["tile"])
    # The same corners through the gdaltransform program (independent of osr in this script).
    t = tiles[5]
    x, y, w, h = t["win"]
    ll = gdaltransform_lonlat(path, [(x, y), (x, y + h), (x + w, y + h), (x + w, y)])
    ring = np.array(t["ring"])[[0, 8, 16, 24]]
    err = np.abs(ll - ring).max() if ll.shape == ring.shape else 1.0
    check(err < 1e-7, "naip: ring vs gdaltransform off by %g deg" % err)


# ---- British National Grid, 16-bit Sentinel-2 scaled by percentiles --------------------------
def test_s2_bng_scaling():
    path = sample("s2_aberystwyth")
    raw = os.path.join(TMP, "s2")
    rc, lines = dump(path, raw=raw)
    check(rc == 0, "s2: dump failed")
    scene, tiles = check_geometry(path, lines)
    check(scene["epsg"] == 27700, "s2: epsg %d" % scene["epsg"])
    check(scene["bands"] == [3, 2, 1], "s2: bands from colour interpretation %s" % scene["bands"])
    check(scene["scale_mode"] == 3 and scene["data_type"] == "UInt16", "s2: scale mode")
    check(scene["bands_text"] == "3,2,1" and scene["scaling"]["mode"] == "percentile" and
          scene["scaling"]["min"] == scene["scale_min"] and scene["scaling"]["pct"] == [2, 98],
          "s2: scaling record %s" % scene["scaling"])
    ds = gdal.Open(path)
    arrs = [ds.GetRasterBand(b).ReadAsArray().astype(np.float64) for b in (3, 2, 1)]
    valid = mask_valid(ds, [1, 2, 3])
    lo = [np.percentile(a[valid], 2) for a in arrs]
    hi = [np.percentile(a[valid], 98) for a in arrs]
    for c in range(3):
        check(abs(scene["scale_min"][c] - lo[c]) < 1e-9 and abs(scene["scale_max"][c] - hi[c]) < 1e-9,
              "s2: channel %d scale %g..%g, numpy %g..%g" % (c, scene["scale_min"][c],
                                                             scene["scale_max"][c], lo[c], hi[c]))
    for t in tiles:
        x, y, w, h = t["win"]
        exp = np.dstack([np.clip(np.floor((a[y:y + h, x:x + w] - lo[c]) * (255.0 / (hi[c] - lo[c]))
                                          + 0.5), 0, 255) for c, a in enumerate(arrs)])
        got = read_raw(raw, t["tile"], w, h)
        check(np.array_equal(got, exp.astype(np.uint8)), "s2 tile %d: scaled bytes differ" % t["tile"])
    png = os.path.join(os.getcwd(), "s2_tile5_scaled.png")  # kept for a look
    write_png(png, read_raw(raw, 5, 256, 256))
    print("wrote", png)
    # Explicit range for all bands.
    rc, lines = dump(path, "-range", "0,1000", "-noread")
    check(lines[0]["scale_mode"] == 2 and lines[0]["scale_min"] == [0, 0, 0] and
          lines[0]["scale_max"] == [1000, 1000, 1000], "s2: -range not reported")


# ---- Landsat 7 nodata collar: valid fractions and skipped tiles -------------------------------
def test_l7_collar():
    path = sample("l7_rgb_300m")
    raw = os.path.join(TMP, "l7")
    rc, lines = dump(path, raw=raw)
    scene, tiles = check_geometry(path, lines)
    ds = gdal.Open(path)
    valid = mask_valid(ds, [1, 2, 3])
    data = np.dstack([ds.GetRasterBand(b).ReadAsArray() for b in (1, 2, 3)])
    n_skipped = 0
    for t in tiles:
        x, y, w, h = t["win"]
        frac = valid[y:y + h, x:x + w].mean()
        check(abs(t["valid"] - frac) < 1e-12, "l7 tile %d: valid %g vs numpy %g"
              % (t["tile"], t["valid"], frac))
        check(t["skipped"] == (frac < 0.5), "l7 tile %d: skipped=%d at %g" % (t["tile"], t["skipped"], frac))
        n_skipped += t["skipped"]
        if not t["skipped"]:
            exp = np.where(valid[y:y + h, x:x + w, None], data[y:y + h, x:x + w], 0)
            check(np.array_equal(read_raw(raw, t["tile"], w, h), exp), "l7 tile %d: bytes/fill" % t["tile"])
    check(n_skipped == 2, "l7: %d tiles skipped, expected the 2 below one half" % n_skipped)
    # samples/README counts 2 all-nodata and 10 partial tiles on a padded 256 grid; the tiler
    # shifts edge tiles back instead, so no tile is all nodata; check the README's own claim.
    padded = [valid[y:y + 256, x:x + 256].mean() for y in range(0, 718, 256) for x in range(0, 791, 256)]
    check(sum(f == 0 for f in padded) == 2 and sum(0 < f < 1 for f in padded) == 10,
          "l7: README's padded-grid counts do not hold")
    # min_valid 0 keeps every tile; 1 keeps only fully valid ones (none here).
    rc, lines = dump(path, "-minvalid", "0")
    check(sum(t["skipped"] for t in lines[1:]) == 0, "l7: min_valid 0 skipped tiles")
    rc, lines = dump(path, "-mask", "none")
    check(all(t["valid"] == 1.0 for t in lines[1:]), "l7: mask none")


# ---- 1-band UInt16 COG with nodata: replicated grey, percentiles excluding nodata -------------
def test_l8_cog():
    path = sample("l8_b7_memphis")
    raw = os.path.join(TMP, "l8")
    rc, lines = dump(path, raw=raw)
    scene, tiles = check_geometry(path, lines)
    check(scene["n_bands"] == 1 and scene["bands"] == [1, 1, 1] and scene["bands_text"] == "1",
          "l8: single band replicated")
    ds = gdal.Open(path)
    a = ds.GetRasterBand(1).ReadAsArray().astype(np.float64)
    valid = a != 0
    lo, hi = np.percentile(a[valid], 2), np.percentile(a[valid], 98)
    check(abs(scene["scale_min"][0] - lo) < 1e-9 and abs(scene["scale_max"][0] - hi) < 1e-9,
          "l8: scale %g..%g vs numpy %g..%g" % (scene["scale_min"][0], scene["scale_max"][0], lo, hi))
    for t in tiles:
        if t["skipped"]:
            continue
        x, y, w, h = t["win"]
        g = read_raw(raw, t["tile"], w, h)
        check(np.array_equal(g[:, :, 0], g[:, :, 1]) and np.array_equal(g[:, :, 0], g[:, :, 2]),
              "l8 tile %d: channels differ" % t["tile"])
        exp = np.clip(np.floor((a[y:y + h, x:x + w] - lo) * (255.0 / (hi - lo)) + 0.5), 0, 255)
        exp[~valid[y:y + h, x:x + w]] = 0
        check(np.array_equal(g[:, :, 0], exp.astype(np.uint8)), "l8 tile %d: bytes" % t["tile"])
    # A coarse statistics read (256 px, served from the averaged 241x189 overview) stays close;
    # averaging pulls the percentiles inwards a little.
    rc, lines = dump(path, "-stats", "256", "-noread")
    s = lines[0]
    check(abs(s["scale_min"][0] - lo) < 0.15 * (hi - lo) and abs(s["scale_max"][0] - hi) < 0.15 * (hi - lo),
          "l8: decimated statistics far off: %s %s" % (s["scale_min"], s["scale_max"]))


# ---- raster smaller than a tile; band 4 labelled Alpha ----------------------------------------
def test_small_milwaukee():
    path = sample("naip_milwaukee")
    raw = os.path.join(TMP, "milw")
    rc, lines = dump(path, raw=raw)
    scene, tiles = check_geometry(path, lines)
    check(len(tiles) == 1 and tiles[0]["win"] == [0, 0, 175, 143] and tiles[0]["out"] == [175, 143],
          "milwaukee: one native-size tile expected")
    ds = gdal.Open(path)
    nir = ds.GetRasterBand(4).ReadAsArray()
    check(abs(tiles[0]["valid"] - (nir != 0).mean()) < 1e-12, "milwaukee: alpha-as-mask rule")
    data = np.dstack([ds.GetRasterBand(b).ReadAsArray() for b in (1, 2, 3)])
    check(np.array_equal(read_raw(raw, 0, 175, 143), data), "milwaukee: bytes")
    rc, lines = dump(path, "-mask", "noalpha", "-noread")
    check(lines[0]["mask_flags"] & 4 != 0 and rc == 0, "milwaukee: alpha flag reported")
    # Explicit bands: NIR, red, green false colour.
    rc, lines = dump(path, "-b", "4,1,2", raw=os.path.join(TMP, "milw_fc"))
    check(lines[0]["bands"] == [4, 1, 2], "milwaukee: explicit bands")
    got = read_raw(os.path.join(TMP, "milw_fc"), 0, 175, 143)
    check(np.array_equal(got[:, :, 0], nir), "milwaukee: band 4 as red")


# ---- EPSG:4326 made at run time: lon,lat order, degrees -> metres gsd --------------------------
def test_epsg4326():
    path = os.path.join(TMP, "wgs84.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, 600, 400, 3, gdal.GDT_Byte)
    ds.SetGeoTransform([10.0, 0.001, 0, 50.0, 0, -0.001])
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetSpatialRef(srs)
    rng = np.random.default_rng(1)
    for b in range(3):
        ds.GetRasterBand(b + 1).WriteArray(rng.integers(0, 256, (400, 600), dtype=np.uint8))
    ds = None
    rc, lines = dump(path, "-noread")
    scene, tiles = check_geometry(path, lines)
    check(scene["epsg"] == 4326, "wgs84: epsg")
    t = tiles[0]
    check(abs(t["ring"][0][0] - 10.0) < 1e-12 and abs(t["ring"][0][1] - 50.0) < 1e-12,
          "wgs84: ring must be lon,lat: %s" % t["ring"][0])
    # ground metres of 0.001 deg at the centre latitude (49.8 N)
    exp = 0.5 * (metres((10.3, 49.8), (10.301, 49.8)) + metres((10.3, 49.8), (10.3, 49.799)))
    check(abs(scene["native_gsd"] - exp) < 0.01 * exp,
          "wgs84: native gsd %g m, expected about %g" % (scene["native_gsd"], exp))


# ---- rotated geotransform made at run time -----------------------------------------------------
def test_rotated():
    path = os.path.join(TMP, "rotated.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, 700, 300, 1, gdal.GDT_Byte)
    a, s = 10 * np.cos(np.radians(30)), 10 * np.sin(np.radians(30))
    ds.SetGeoTransform([400000.0, a, s, 5000000.0, s, -a])
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds.SetSpatialRef(srs)
    ds.GetRasterBand(1).Fill(7)
    ds = None
    rc, lines = dump(path, "-stride", "200", "-densify", "4")
    check(rc == 0, "rotated: dump failed %s" % lines[-1:])
    scene, tiles = check_geometry(path, lines, stride=200, densify=4)
    check(abs(scene["native_gsd"] - 10 * 0.9996) < 0.05, "rotated: gsd %g" % scene["native_gsd"])
    # gdaltransform of a corner of the last tile
    t = tiles[-1]
    x, y, w, h = t["win"]
    ll = gdaltransform_lonlat(path, [(x + w, y + h)])
    err = np.abs(ll[0] - np.array(t["ring"][8])).max()
    check(err < 1e-7, "rotated: LR corner vs gdaltransform off by %g" % err)
    # gsd resampling keeps the rotation
    rc, lines = dump(path, "-gsd", "20", "-noread")
    s2 = lines[0]
    check(rc == 0 and abs(s2["width"] - 350) <= 1 and abs(s2["height"] - 150) <= 1,
          "rotated: gsd 20 grid %sx%s" % (s2.get("width"), s2.get("height")))
    check_geometry(path, lines, label="rotated@20m")


# ---- GSD resampling through a VRT --------------------------------------------------------------
def test_gsd():
    path = sample("naip_nd_")
    raw = os.path.join(TMP, "gsd")
    rc, lines = dump(path, "-gsd", "10", raw=raw)
    check(rc == 0, "gsd: dump failed")
    scene = lines[0]
    ds = gdal.Open(path)
    srs = ds.GetSpatialRef()
    # independent expectation of the grid: ground size of a pixel from OSR at the centre
    ct = wgs84_ct(srs)
    gt = ds.GetGeoTransform()
    cx, cy = ds.RasterXSize / 2, ds.RasterYSize / 2
    p0 = ct.TransformPoint(*gdal.ApplyGeoTransform(gt, cx, cy))
    p1 = ct.TransformPoint(*gdal.ApplyGeoTransform(gt, cx + 1, cy))
    p2 = ct.TransformPoint(*gdal.ApplyGeoTransform(gt, cx, cy + 1))
    gx, gy = metres(p0, p1), metres(p0, p2)
    W, H = int(round(934 * gx / 10)), int(round(723 * gy / 10))
    check(scene["width"] == W and scene["height"] == H,
          "gsd: grid %dx%d, expected %dx%d" % (scene["width"], scene["height"], W, H))
    check(abs(scene["gsd"] - 10) < 0.05, "gsd: effective %g m" % scene["gsd"])
    vrt = gdal.Translate("", ds, format="VRT", width=W, height=H, resampleAlg="average")
    check(np.allclose(vrt.GetGeoTransform(), scene["gt"], rtol=0, atol=1e-6), "gsd: geotransform")
    check_geometry(path, lines, ds=vrt, label="naip@10m")
    valid = mask_valid(vrt, [1, 2, 3])
    data = np.dstack([vrt.GetRasterBand(b).ReadAsArray() for b in (1, 2, 3)])
    t = lines[1]
    x, y, w, h = t["win"]
    exp = np.where(valid[y:y + h, x:x + w, None], data[y:y + h, x:x + w], 0)
    check(np.array_equal(read_raw(raw, 0, w, h), exp), "gsd: resampled bytes differ")
    check(abs(t["src_win"][2] - 256 * 934 / W) < 1e-9, "gsd: src window %s" % t["src_win"])


# ---- a palette raster is expanded to RGB; a GCP-only raster is warped by its GCPs -------------
def test_palette_and_gcps():
    path = os.path.join(TMP, "palette.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, 300, 200, 1, gdal.GDT_Byte)
    ds.SetGeoTransform([500000.0, 2, 0, 4000000.0, 0, -2])
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds.SetSpatialRef(srs)
    ct = gdal.ColorTable()
    lut = np.array([[(i * 37) % 256, 255 - i, (i * 7) % 256] for i in range(256)], np.uint8)
    for i in range(256):
        ct.SetColorEntry(i, tuple(int(v) for v in lut[i]) + (255,))
    band = ds.GetRasterBand(1)
    band.SetRasterColorTable(ct)
    band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
    idx = np.random.default_rng(2).integers(0, 12, (200, 300), dtype=np.uint8)
    band.WriteArray(idx)
    ds = None
    raw = os.path.join(TMP, "pal")
    rc, lines = dump(path, raw=raw)
    check(rc == 0, "palette: dump failed %s" % lines[-1:])
    scene, tiles = check_geometry(path, lines)
    for t in tiles:
        x, y, w, h = t["win"]
        check(np.array_equal(read_raw(raw, t["tile"], w, h), lut[idx[y:y + h, x:x + w]]),
              "palette tile %d: colours differ from the colour table" % t["tile"])

    path = os.path.join(TMP, "gcps.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, 400, 300, 3, gdal.GDT_Byte)
    gcps = [gdal.GCP(500000 + 10 * px * 0.96 + 10 * py * 0.28, 4000000 + 10 * px * 0.28 - 10 * py * 0.96,
                     0, px, py) for px, py in [(0, 0), (400, 0), (400, 300), (0, 300), (200, 150)]]
    ds.SetGCPs(gcps, srs)
    rng = np.random.default_rng(3)
    for b in range(3):
        ds.GetRasterBand(b + 1).WriteArray(rng.integers(1, 256, (300, 400), dtype=np.uint8))
    ds = None
    rc, lines = dump(path, raw=os.path.join(TMP, "gcp"))
    check(rc == 0, "gcps: dump failed %s" % lines[-1:])
    if rc == 0:
        warped = gdal.AutoCreateWarpedVRT(gdal.Open(path), None, None, gdal.GRA_Bilinear, 0.125)
        check(np.allclose(warped.GetGeoTransform(), lines[0]["gt"], rtol=0, atol=1e-6) and
              lines[0]["width"] == warped.RasterXSize, "gcps: warped grid differs from GDAL's")
        check_geometry(path, lines, ds=warped, label="gcps.tif")
        t = lines[1]
        x, y, w, h = t["win"]
        data = np.dstack([warped.GetRasterBand(b).ReadAsArray(x, y, w, h) for b in (1, 2, 3)])
        valid = mask_valid(warped, [1, 2, 3])[y:y + h, x:x + w]
        exp = np.where(valid[:, :, None], data, 0)
        # The warped grid's corners lie outside the rotated source: an alpha band marks them.
        ref = gdal.Warp("", path, format="VRT", dstAlpha=True, resampleAlg="bilinear",
                        errorThreshold=0.125, width=warped.RasterXSize, height=warped.RasterYSize,
                        outputBounds=[lines[0]["gt"][0], lines[0]["gt"][3] + lines[0]["gt"][5] * warped.RasterYSize,
                                      lines[0]["gt"][0] + lines[0]["gt"][1] * warped.RasterXSize, lines[0]["gt"][3]])
        alpha = ref.GetRasterBand(4).ReadAsArray() != 0
        check(alpha.mean() < 0.95, "gcps: the reference warp has no outside area")
        for t in lines[1:]:
            x, y, w, h = t["win"]
            frac = alpha[y:y + h, x:x + w].mean()
            check(abs(t["valid"] - frac) < 0.01, "gcps tile %d: valid %g vs warp alpha %g"
                  % (t["tile"], t["valid"], frac))


# ---- bad inputs ---------------------------------------------------------------------------------
def test_bad_inputs():
    rc, lines = dump(os.path.join(TMP, "missing.tif"))
    check(rc == 1 and lines[0]["error"] == "RSCLIP_ERR_NOT_FOUND" and "missing.tif" in lines[0]["message"],
          "missing: %s" % lines)
    junk = os.path.join(TMP, "junk.tif")
    with open(junk, "wb") as f:
        f.write(b"II*\x00" + bytes(range(256)) * 8)
    rc, lines = dump(junk)
    check(rc == 1 and lines[0]["error"] in ("RSCLIP_ERR_FORMAT", "RSCLIP_ERR_GDAL")
          and "junk.tif" in lines[0]["message"], "corrupt: %s" % lines)
    text = os.path.join(TMP, "notes.tif")
    with open(text, "w") as f:
        f.write("not a raster\n")
    rc, lines = dump(text)
    check(rc == 1 and lines[0]["error"] == "RSCLIP_ERR_FORMAT" and "notes.tif" in lines[0]["message"],
          "text file: %s" % lines)
    # Truncated GeoTIFF: header fine, blocks missing -> a read error naming the file, no crash.
    src = sample("naip_nd_")
    trunc = os.path.join(TMP, "truncated.tif")
    with open(src, "rb") as f:
        data = f.read()
    with open(trunc, "wb") as f:
        f.write(data[:len(data) // 3])
    rc, lines = dump(trunc, "-minvalid", "0")
    last = lines[-1]
    check(rc == 1 and last.get("error") in ("RSCLIP_ERR_GDAL", "RSCLIP_ERR_FORMAT")
          and "truncated.tif" in last["message"], "truncated: %s" % last)
    rc, lines = dump(src, "-b", "1,2,5")
    check(rc == 1 and lines[0]["error"] == "RSCLIP_ERR_INVALID_ARG" and "band 5" in lines[0]["message"]
          and "naip_nd_" in lines[0]["message"], "band out of range: %s" % lines)
    # No georeferencing: refused unless allowed; then pixel coordinates, no lon/lat.
    plain = os.path.join(TMP, "plain.png")
    mem = gdal.GetDriverByName("MEM").Create("", 300, 200, 3, gdal.GDT_Byte)
    gdal.GetDriverByName("PNG").CreateCopy(plain, mem)
    rc, lines = dump(plain)
    check(rc == 1 and lines[0]["error"] == "RSCLIP_ERR_UNSUPPORTED" and "plain.png" in lines[0]["message"],
          "no georef: %s" % lines)
    rc, lines = dump(plain, "-allow")
    check(rc == 0 and lines[0]["georef"] == 0, "allow_pixel_coords: %s" % lines[:1])
    if rc == 0:
        check_geometry(plain, lines, label="plain.png")
        check(lines[2]["corners"][0] == [44, 0],
              "plain: pixel corners %s" % lines[2]["corners"])
    rc, lines = dump(plain, "-allow", "-gsd", "10")
    check(rc == 1 and lines[0]["error"] == "RSCLIP_ERR_INVALID_ARG", "gsd without CRS: %s" % lines)


for fn in [test_naip_utm, test_s2_bng_scaling, test_l7_collar, test_l8_cog, test_small_milwaukee,
           test_epsg4326, test_rotated, test_gsd, test_palette_and_gcps, test_bad_inputs]:
    print("--", fn.__name__)
    try:
        fn()
    except Exception as e:  # a crash of a check is a failure, not a pass
        import traceback
        traceback.print_exc()
        failures.append("%s raised %r" % (fn.__name__, e))

shutil.rmtree(TMP, ignore_errors=True)
if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("test_tiler_geo: all checks passed")
