#!/usr/bin/python3
"""rsclip index against what users and files throw at it (issue 11): settings that change, scenes
that fail one by one, rasters without georeferencing, non-finite pixels, resampled grids, absurd
sizes, old index files, removing scenes. The real binary on real rasters made with GDAL.

Usage: test_robust.py GROUP   (one ctest entry per group; see CMakeLists.txt)
"""
import json
import lzma
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

BIN = os.environ.get("RSCLIP_BIN", "build/core/rsclip")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rsclip_testlib import check, failures, run  # noqa: E402  (the tests' shared helpers)
SRC = os.environ.get("RSCLIP_SOURCE_DIR", ".")
FIX = os.environ.get("RSCLIP_FIXTURES", os.path.join(SRC, "tests", "fixtures"))
MODEL = os.path.join(FIX, "siglip-tiny")
SAMPLES = os.path.join(SRC, "samples")

# the schema this rsclip writes (core/include/rsclip/index.h RSCLIP_INDEX_SCHEMA_VERSION)
CURRENT_SCHEMA = "3"


def sample(name):
    for f in sorted(os.listdir(SAMPLES)):
        if f.startswith(name) and f.endswith(".tif"):
            return os.path.join(SAMPLES, f)
    raise SystemExit("no sample " + name)


def index_run(index, inputs, extra=(), rc=None, timeout=300):
    return run(["index", "-q", "-m", MODEL, "-o", index] + list(extra) + list(inputs),
               check_rc=rc, timeout=timeout)


def scenes(index):
    db = sqlite3.connect(index)
    rows = db.execute("SELECT path, status, tiles_stored FROM scenes ORDER BY id").fetchall()
    db.close()
    return {os.path.basename(p): (s, n) for p, s, n in rows}


def tile_rows(index, scene_part=None):
    db = sqlite3.connect(index)
    rows = db.execute("SELECT t.fid, s.path, t.xoff, t.yoff, t.xsize, t.ysize, e.vec, t.lon, "
                      "t.lat, t.geom IS NULL FROM tiles t JOIN scenes s ON s.id = t.scene_id "
                      "JOIN embeddings e ON e.tile_id = t.fid ORDER BY t.fid").fetchall()
    db.close()
    return [r for r in rows if scene_part is None or scene_part in r[1]]


def write_tif(path, arrays, gt=None, epsg=None, dtype=gdal.GDT_Byte, nodata=None):
    h, w = arrays[0].shape
    ds = gdal.GetDriverByName("GTiff").Create(path, w, h, len(arrays), dtype)
    if gt is not None:
        ds.SetGeoTransform(gt)
    if epsg is not None:
        s = osr.SpatialReference()
        s.ImportFromEPSG(epsg)
        ds.SetProjection(s.ExportToWkt())
    for i, a in enumerate(arrays):
        b = ds.GetRasterBand(i + 1)
        b.WriteArray(a)
        if nodata is not None:
            b.SetNoDataValue(nodata)
    ds = None


def rgb_noise(seed, h, w):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w), dtype=np.uint8) for _ in range(3)]


# ---- groups ---------------------------------------------------------------------------------

def group_settings(tmp):
    """A scene is re-indexed when any tiling setting changes, saying what changed; invalid
    settings fail the scene even when its file is unchanged; VRT sources are part of the state."""
    scene = os.path.join(tmp, "s2.tif")
    shutil.copy(sample("s2_aberystwyth"), scene)
    index = os.path.join(tmp, "idx.gpkg")
    index_run(index, [scene], rc=0)
    p = run(["index", "-m", MODEL, "-o", index, scene], check_rc=0)
    check("1 unchanged" in p.stderr and "settings changed" not in p.stderr,
          "same settings: unchanged: " + p.stderr)
    cases = [(["--stride", "128"], "stride 256 \u2192 128"),
             (["--bands", "4,3,2"], "bands auto \u2192 4,3,2"),
             (["--scale", "0,3000"], "scale auto \u2192 0,3000"),
             (["--gsd", "20"], "gsd native \u2192 20"),
             (["--gsd", "20", "--resampling", "near"], "resampling auto \u2192 near"),
             (["--min-valid", "0.9"], "min_valid 0.5 \u2192 0.9")]
    prev = []
    for extra, said in cases:
        p = run(["index", "-m", MODEL, "-o", index] + extra + [scene], check_rc=0)
        check("1 scene(s) indexed" in p.stderr and "settings changed" in p.stderr,
              "%s re-indexes: %s" % (extra, p.stderr))
        if said.startswith("resampling"):
            check(said in p.stderr, "message says %r: %s" % (said, p.stderr))
        else:
            check(said.split(" ")[0] in p.stderr, "message names %r: %s" % (said, p.stderr))
        # and a second run with the same settings changes nothing
        p = run(["index", "-m", MODEL, "-o", index] + extra + [scene], check_rc=0)
        check("1 unchanged" in p.stderr, "%s then unchanged: %s" % (extra, p.stderr))
        prev = extra
    # stride 128 gives more tiles than 256; the stored grid is recorded
    index_run(index, [scene], extra=["--stride", "128"], rc=0)
    db = sqlite3.connect(index)
    tile_size, stride, settings = db.execute(
        "SELECT tile_size, stride, settings FROM scenes").fetchone()
    n128 = db.execute("SELECT count(*) FROM tiles").fetchone()[0]
    db.close()
    check(tile_size == 256 and stride == 128 and json.loads(settings)["stride"] == 128,
          "grid recorded: %s %s %s" % (tile_size, stride, settings))
    index_run(index, [scene], rc=0)
    check(len(tile_rows(index)) < n128, "back to stride 256: fewer tiles")
    # invalid settings on an unchanged file: an error for that scene, the stored tiles kept
    before = len(tile_rows(index))
    p = run(["index", "-q", "-m", MODEL, "-o", index, "--bands", "1,2,9", scene])
    check(p.returncode == 1 and "band 9" in p.stderr and "s2.tif" in p.stderr,
          "invalid bands on an unchanged scene fail it: %d %s" % (p.returncode, p.stderr))
    check(len(tile_rows(index)) == before, "failed settings keep the tiles")
    # a VRT's sources are part of its state: nested VRTs, same size, even the same mtime
    a = os.path.join(tmp, "a.tif")
    write_tif(a, rgb_noise(1, 300, 300), gt=(500000, 1, 0, 4000000, 0, -1), epsg=32632)
    inner = os.path.join(tmp, "inner.vrt")
    outer = os.path.join(tmp, "outer.vrt")
    gdal.BuildVRT(inner, [a])
    gdal.BuildVRT(outer, [inner])
    vindex = os.path.join(tmp, "vrt.gpkg")
    index_run(vindex, [outer], rc=0)
    v1 = [r[6] for r in tile_rows(vindex)]
    st = os.stat(a)
    b = os.path.join(tmp, "b.tif")
    write_tif(b, rgb_noise(2, 300, 300), gt=(500000, 1, 0, 4000000, 0, -1), epsg=32632)
    check(os.path.getsize(b) == st.st_size, "replacement has the same size")
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(b, a)  # same name, size and mtime; another file
    p = run(["index", "-m", MODEL, "-o", vindex, outer], check_rc=0)
    check("1 scene(s) indexed" in p.stderr, "replaced nested source re-indexes: " + p.stderr)
    v2 = [r[6] for r in tile_rows(vindex)]
    check(v1 != v2, "new source, new vectors")


def group_isolation(tmp):
    """One bad scene fails only itself (named with its reason); exit 3 when others were indexed,
    1 when none could be; footprints a little past the world's edge are clamped."""
    good = sample("naip_milwaukee")
    # EPSG:4326 over the whole world, outer pixel edges half a pixel past +-180 / +-90
    world = os.path.join(tmp, "world.tif")
    write_tif(world, rgb_noise(3, 180, 360), gt=(-180.5, 1.0, 0, 90.5, 0, -1.0), epsg=4326)
    # orthographic pixels beyond the visible disc: PROJ cannot invert them
    ortho = os.path.join(tmp, "ortho.tif")
    ds = gdal.GetDriverByName("GTiff").Create(ortho, 300, 300, 3, gdal.GDT_Byte)
    ds.SetGeoTransform((-9.0e6, 60000, 0, 9.0e6, 0, -60000))
    s = osr.SpatialReference()
    s.ImportFromProj4("+proj=ortho +lat_0=0 +lon_0=0 +datum=WGS84")
    ds.SetProjection(s.ExportToWkt())
    for i, a in enumerate(rgb_noise(4, 300, 300)):
        ds.GetRasterBand(i + 1).WriteArray(a)
    ds = None
    # a zero pixel size (GeoTIFF cannot hold one; a VRT can)
    flat_src = os.path.join(tmp, "flat_src.tif")
    write_tif(flat_src, rgb_noise(5, 64, 64), gt=(500000, 1.0, 0, 4000000, 0, -1), epsg=32632)
    flat = os.path.join(tmp, "flat.vrt")

    def write_flat(xres):
        gdal.Translate(flat, flat_src, format="VRT")
        with open(flat) as f:
            text = f.read()
        import re
        text = re.sub(r"<GeoTransform>.*</GeoTransform>",
                      "<GeoTransform>500000, %g, 0, 4000000, 0, -1</GeoTransform>" % xres, text)
        with open(flat, "w") as f:
            f.write(text)

    write_flat(0.0)
    missing = os.path.join(tmp, "missing.tif")
    index = os.path.join(tmp, "idx.gpkg")
    p = index_run(index, [good, world, ortho, flat, missing])
    check(p.returncode == 3, "partial run exits 3 (got %d): %s" % (p.returncode, p.stderr))
    for name, why in [("ortho.tif", "PROJ"), ("flat.vrt", "degenerate"),
                      ("missing.tif", "No such file")]:
        line = [l for l in p.stderr.splitlines() if name in l]
        check(line and why in line[0], "%s named with its reason: %s" % (name, p.stderr))
    sc = scenes(index)
    check(sc.get("world.tif", ("", 0))[0] == "complete", "world raster clamped and indexed: %s" % sc)
    check(sc.get(os.path.basename(good), ("", 0))[0] == "complete", "good scene indexed")
    rows = tile_rows(index, "world.tif")
    lon = [r[7] for r in rows]
    check(rows and min(lon) >= -180 and max(lon) <= 180, "clamped centres")
    db = sqlite3.connect(index)
    ext = db.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents "
                     "WHERE table_name = 'tiles'").fetchone()
    db.close()
    check(ext[0] >= -180 and ext[2] <= 180 and ext[1] >= -90 and ext[3] <= 90,
          "footprints on the world: %s" % (ext,))
    run(["search", index, "lake", "-k", "3"], check_rc=0)
    # nothing indexable at all: 1, and a fresh index file is not left behind
    fresh = os.path.join(tmp, "fresh.gpkg")
    p = index_run(fresh, [flat, missing])
    check(p.returncode == 1, "nothing indexed exits 1 (got %d)" % p.returncode)
    check(not os.path.exists(fresh) and not os.path.exists(fresh + "-wal"),
          "no empty index left behind: %s" % os.listdir(tmp))
    # a failed scene is retried on the next run once fixed
    write_flat(1.0)
    p = index_run(index, [good, world, flat])
    check(p.returncode == 0 and scenes(index).get("flat.vrt", ("",))[0] == "complete",
          "fixed scene indexed on the next run: %s" % p.stderr)
    # unreadable subfolder / file (as an unprivileged user; root reads everything)
    if os.geteuid() == 0 and shutil.which("setpriv"):
        home = os.path.join(tmp, "u")
        os.makedirs(os.path.join(home, "in", "locked"))
        os.makedirs(os.path.join(home, "out"))
        shutil.copy(good, os.path.join(home, "in", "ok.tif"))
        shutil.copy(good, os.path.join(home, "in", "locked", "hidden.tif"))
        shutil.copy(good, os.path.join(home, "in", "secret.tif"))
        for root, dirs, files in os.walk(home):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)
        os.chmod(home, 0o755)
        os.chmod(tmp, 0o755)
        os.chmod(os.path.join(home, "out"), 0o777)
        os.chmod(os.path.join(home, "in", "locked"), 0o700)
        os.chmod(os.path.join(home, "in", "secret.tif"), 0o600)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BIN,
                            "index", "-q", "-m", MODEL, "-o", os.path.join(home, "out", "u.gpkg"),
                            os.path.join(home, "in")], capture_output=True, text=True,
                           timeout=300)
        check(p.returncode == 3, "unreadable parts give a partial run (got %d): %s"
              % (p.returncode, p.stderr))
        check("locked" in p.stderr and "secret.tif" in p.stderr,
              "unreadable folder and file named: " + p.stderr)
        check("ok.tif" in scenes(os.path.join(home, "out", "u.gpkg")), "readable one indexed")
    else:
        print("skipping the unprivileged-user part: not root or no setpriv")


def group_pixelcoords(tmp):
    """--allow-pixel-coords works end to end: stored without WGS84, searchable, exported."""
    src = gdal.Open(sample("naip_milwaukee"))
    arrays = [src.GetRasterBand(b).ReadAsArray() for b in (1, 2, 3)]
    plain = os.path.join(tmp, "plain.tif")
    write_tif(plain, [np.tile(a, (3, 3)) for a in arrays])  # 525 x 429, no georeferencing
    index = os.path.join(tmp, "idx.gpkg")
    p = index_run(index, [plain])
    check(p.returncode == 1 and "georeferencing" in p.stderr, "refused without the flag")
    check(not os.path.exists(index), "no index left by the refused first run")
    index_run(index, [plain], extra=["--allow-pixel-coords"], rc=0)
    rows = tile_rows(index)
    check(len(rows) == 6, "3 x 2 tiles of a 525x429 raster: %d" % len(rows))
    check(all(r[9] == 1 and r[7] is None and r[8] is None for r in rows),
          "no geometry and no lon/lat in pixel coordinates")
    p = run(["search", index, "lake", "-k", "4"], check_rc=0)
    check(p.stdout.count("plain.tif") == 4, "searchable: " + p.stdout)
    p = run(["info", "--json", index], check_rc=0)
    check(json.loads(p.stdout)["scene_list"][0]["georef"] == "pixel", "info says pixel")
    pixel_exports(tmp, index, 525, 429)

    # A geotransform without a CRS: footprints in the geotransform's own coordinates.
    local = os.path.join(tmp, "local.tif")
    write_tif(local, [np.tile(a, (3, 3)) for a in arrays], gt=(1000, 2, 0, 5000, 0, -2))
    lindex = os.path.join(tmp, "local.gpkg")
    index_run(lindex, [local], extra=["--allow-pixel-coords"], rc=0)
    out = os.path.join(tmp, "local.geojson")
    run(["search", lindex, "lake", "-k", "6", "-o", out], check_rc=0)
    for f in json.load(open(out))["features"]:
        pr, ring = f["properties"], f["geometry"]["coordinates"][0]
        xs, ys = [p[0] for p in ring], [p[1] for p in ring]
        check(min(xs) == 1000 + 2 * pr["xoff"] and max(xs) == 1000 + 2 * (pr["xoff"] + 256) and
              max(ys) == 5000 - 2 * pr["yoff"] and min(ys) == 5000 - 2 * (pr["yoff"] + 256),
              "local footprint from the geotransform: %s %s" % (ring, pr))

    # Georeferenced and pixel hits in one result: WGS84 layer, the pixel hits without geometry,
    # and a warning that counts them.
    mindex = os.path.join(tmp, "mixed.gpkg")
    index_run(mindex, [plain, sample("naip_milwaukee")], extra=["--allow-pixel-coords"], rc=0)
    n_all = len(tile_rows(mindex))
    gpkg = os.path.join(tmp, "mixed_hits.gpkg")
    p = run(["search", mindex, "lake", "-k", str(n_all), "-o", gpkg], check_rc=0)
    check("6 of %d hits are in pixel coordinates" % n_all in p.stderr,
          "mixed: a warning counts the pixel hits: " + p.stderr)
    db = sqlite3.connect(gpkg)
    srs_id = db.execute("SELECT srs_id FROM gpkg_geometry_columns").fetchone()[0]
    nulls = db.execute("SELECT count(*) FROM hits WHERE geom IS NULL AND lon IS NULL").fetchone()
    geoms = db.execute("SELECT count(*) FROM hits WHERE geom IS NOT NULL AND lon IS NOT NULL "
                       "AND scene NOT LIKE '%plain.tif'").fetchone()
    db.close()
    check(srs_id == 4326 and nulls[0] == 6 and geoms[0] == n_all - 6,
          "mixed: WGS84 layer, the 6 pixel hits without geometry or lon/lat: %s %s %s"
          % (srs_id, nulls, geoms))
    p = run(["search", mindex, "lake", "-k", str(n_all), "--merge"], check_rc=0)
    check("6 of %d hits" % n_all in p.stderr and "no region" in p.stderr,
          "mixed --merge says which hits are in no region: " + p.stderr)


def pixel_table(stdout):
    """(lon, lat, window) of each row of the search table."""
    rows = [line.split() for line in stdout.splitlines()[1:]]
    return [(r[3], r[4], r[6]) for r in rows]


def pixel_exports(tmp, index, width, height):
    """Exports of hits in pixel coordinates: footprints within the raster, no CRS anywhere, no
    lon/lat; --t_srs and KML refused; --merge says why it has no regions."""
    rows = pixel_table(run(["search", index, "lake", "-k", "6"], check_rc=0).stdout)
    check(len(rows) == 6 and all(r[0] == "-" and r[1] == "-" for r in rows),
          "the table shows - for lon/lat: %s" % rows)
    out = os.path.join(tmp, "pix.geojson")
    run(["search", index, "lake", "-k", "6", "-o", out], check_rc=0)
    text = open(out).read()
    fc = json.loads(text)
    check('"crs"' not in text, "GeoJSON without crs")
    check(len(fc["features"]) == 6, "6 features")
    for f in fc["features"]:
        pr = f["properties"]
        check(pr["lon"] is None and pr["lat"] is None, "lon/lat null: %s" % pr)
        ring = f["geometry"]["coordinates"][0] if f["geometry"] else []
        xs, ys = [p[0] for p in ring], [p[1] for p in ring]
        check(len(ring) == 5 and min(xs) == pr["xoff"] and max(xs) == pr["xoff"] + pr["xsize"]
              and min(ys) == pr["yoff"] and max(ys) == pr["yoff"] + pr["ysize"],
              "footprint = the window in pixels: %s %s" % (ring, pr))
        check(0 <= min(xs) and max(xs) <= width and 0 <= min(ys) and max(ys) <= height,
              "footprint within the %dx%d raster: %s" % (width, height, ring))
    gpkg = os.path.join(tmp, "pix.gpkg")
    run(["search", index, "lake", "-k", "6", "-o", gpkg], check_rc=0)
    info = subprocess.run(["ogrinfo", "-so", gpkg, "hits"], capture_output=True, text=True,
                          timeout=60).stdout
    check("Feature Count: 6" in info, "ogrinfo reads the GPKG: " + info)
    check("WGS 84" not in info and "GEOGCRS" not in info and "GEOGCS" not in info and
          "PROJCRS" not in info, "GPKG layer without a geographic or projected SRS: " + info)
    db = sqlite3.connect(gpkg)
    srs_id = db.execute("SELECT srs_id FROM gpkg_geometry_columns").fetchone()[0]
    db.close()
    check(srs_id == -1, "GeoPackage: undefined Cartesian SRS (srs_id -1), got %s" % srs_id)
    shp = os.path.join(tmp, "pix.shp")
    run(["search", index, "lake", "-k", "6", "-o", shp], check_rc=0)
    check(not os.path.exists(os.path.join(tmp, "pix.prj")), "shapefile without .prj")
    for extra, what in [(["-o", os.path.join(tmp, "t.geojson"), "--t_srs", "EPSG:3857"],
                         "EPSG:3857"), (["-o", os.path.join(tmp, "p.kml")], "KML")]:
        p = run(["search", index, "lake", "-k", "2"] + extra)
        check(p.returncode == 1 and "pixel coordinates" in p.stderr and what in p.stderr and
              not os.path.exists(extra[1]), "refused: %s: %s" % (extra, p.stderr))
    p = run(["search", index, "lake", "-k", "6", "--merge"], check_rc=0)
    check("6 of 6 hits" in p.stderr and "no region" in p.stderr, "--merge says why: " + p.stderr)


def group_nonfinite(tmp):
    """NaN and +-Inf pixels are invalid pixels: they never reach the scaling statistics."""
    rng = np.random.default_rng(7)
    base = rng.uniform(100, 2000, (512, 512)).astype(np.float32)
    bands = []
    for k in range(3):
        a = base * (1 + 0.1 * k)
        a[0:20, :] = -np.inf
        a[20:40, :] = np.inf
        a[40:60, :] = np.nan
        bands.append(a)
    path = os.path.join(tmp, "float.tif")
    write_tif(path, bands, gt=(500000, 10, 0, 4000000, 0, -10), epsg=32632,
              dtype=gdal.GDT_Float32)
    index = os.path.join(tmp, "idx.gpkg")
    index_run(index, [path], rc=0)
    db = sqlite3.connect(index)
    scaling = db.execute("SELECT scaling FROM scenes").fetchone()[0]
    vf = [r[0] for r in db.execute("SELECT valid_fraction FROM tiles ORDER BY fid")]
    db.close()
    check("nan" not in scaling.lower() and "inf" not in scaling.lower(),
          "scaling is finite: " + scaling)
    sc = json.loads(scaling)
    finite = base[np.isfinite(base)]
    lo = np.percentile(finite, 2)
    check(abs(sc["min"][0] - lo) / lo < 0.05, "percentiles of the finite pixels: %s vs %g"
          % (sc["min"], lo))
    vecs = [np.frombuffer(r[6], dtype="<f4") for r in tile_rows(index)]
    check(len(vecs) == 4 and not all(np.allclose(vecs[0], v) for v in vecs[1:]),
          "tiles are not one identical embedding")
    check(vf[0] < 1.0 and abs(vf[0] - (256 - 60) / 256) < 1e-9,
          "non-finite rows count as invalid: %s" % vf)


def group_gsd(tmp):
    """After --gsd a hit's window is in the scene file's pixels: gdal_translate -srcwin cuts the
    ground of the hit's footprint."""
    scene = sample("usgs_hro")  # 0.15 m
    index = os.path.join(tmp, "idx.gpkg")
    index_run(index, [scene], extra=["--gsd", "0.5"], rc=0)
    out = os.path.join(tmp, "hits.geojson")
    run(["search", index, "lake", "-k", "2", "-of", "GeoJSON", "-o", out], check_rc=0)
    fc = json.load(open(out))
    ds = gdal.Open(scene)
    gt = ds.GetGeoTransform()
    for f in fc["features"]:
        pr = f["properties"]
        x, y, w, h = pr["xoff"], pr["yoff"], pr["xsize"], pr["ysize"]
        check(x + w <= ds.RasterXSize + 1 and y + h <= ds.RasterYSize + 1,
              "window inside the source raster: %s" % pr)
        chip = os.path.join(tmp, "chip.tif")
        gdal.Translate(chip, ds, srcWin=[x, y, w, h])
        c = gdal.Open(chip)
        cg = c.GetGeoTransform()
        # corners of the chip in the scene CRS vs the footprint (WGS84) through the CRS
        s = osr.SpatialReference()
        s.ImportFromWkt(ds.GetProjection())
        wgs = osr.SpatialReference()
        wgs.ImportFromEPSG(4326)
        wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        ct = osr.CoordinateTransformation(wgs, s)
        ring = f["geometry"]["coordinates"][0]
        pts = [ct.TransformPoint(lon, lat)[:2] for lon, lat in ring]
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        px = abs(gt[1])
        check(abs(min(xs) - cg[0]) < px and abs(max(ys) - cg[3]) < px,
              "chip origin on the footprint: %s vs %s" % ((min(xs), max(ys)), cg[:4]))
        check(abs((max(xs) - min(xs)) - c.RasterXSize * cg[1]) < 2 * px,
              "chip width is the footprint's")
        c = None


def group_bounded(tmp):
    """A tiny VRT declaring 2^31-1 x 2^31-1 pixels is refused at once, with a clear message."""
    vrt = os.path.join(tmp, "huge.vrt")
    with open(vrt, "w") as f:
        f.write('<VRTDataset rasterXSize="2147483647" rasterYSize="2147483647">'
                '<SRS>EPSG:32632</SRS><GeoTransform>500000,1,0,4000000,0,-1</GeoTransform>'
                '<VRTRasterBand dataType="Byte" band="1"/></VRTDataset>')
    index = os.path.join(tmp, "idx.gpkg")
    t0 = time.time()
    p = index_run(index, [vrt, sample("naip_milwaukee")], timeout=120)
    check(time.time() - t0 < 60, "refused quickly (%.1f s)" % (time.time() - t0))
    check(p.returncode == 3 and "huge.vrt" in p.stderr and "limit" in p.stderr,
          "absurd size refused, the other scene indexed: %d %s" % (p.returncode, p.stderr))
    small = os.path.join(tmp, "small.tif")
    write_tif(small, rgb_noise(9, 600, 600), gt=(500000, 1, 0, 4000000, 0, -1), epsg=32632)
    p = index_run(index, [small], extra=["--max-tiles", "4"])
    check(p.returncode == 1 and "limit of 4" in p.stderr, "--max-tiles honoured: " + p.stderr)
    index_run(index, [small], extra=["--max-tiles", "9"], rc=0)


def fixture_v1(tmp):
    """The schema-1 fixture (tests/fixtures/index_schema1.gpkg.xz, written by rsclip 0.1.0 at
    423d9c1: naip_milwaukee and s2_aberystwyth with the defaults, l7_rgb with --stride 128),
    its scenes copied under tmp with the size and mtime it recorded, paths rewritten."""
    v1 = os.path.join(tmp, "v1.gpkg")
    with lzma.open(os.path.join(FIX, "index_schema1.gpkg.xz")) as f, open(v1, "wb") as g:
        g.write(f.read())
    db = sqlite3.connect(v1)
    paths = []
    for sid, path, mtime in db.execute("SELECT id, path, mtime_ns FROM scenes ORDER BY id"):
        new = os.path.join(tmp, os.path.basename(path))
        shutil.copy(sample(os.path.basename(path)[:10]), new)
        os.utime(new, ns=(mtime, mtime))
        db.execute("UPDATE scenes SET path = ? WHERE id = ?", (new, sid))
        paths.append(new)
    db.commit()
    db.close()
    return v1, paths


def tiles_of(index):
    db = sqlite3.connect(index)
    rows = db.execute("SELECT t.fid, s.path, t.xoff, t.yoff, e.vec FROM tiles t JOIN scenes s ON "
                      "s.id = t.scene_id JOIN embeddings e ON e.tile_id = t.fid "
                      "ORDER BY t.fid").fetchall()
    db.close()
    return rows


def schema_of(index):
    db = sqlite3.connect(index)
    v = db.execute("SELECT value FROM rsclip_meta WHERE key = 'schema_version'").fetchone()[0]
    ok = db.execute("PRAGMA integrity_check").fetchone()[0]
    db.close()
    return v, ok


def group_migrate(tmp):
    """A schema-1 index (written by the rsclip before schema 2) is upgraded in place, atomically:
    same tiles and vectors, searchable at once; its scenes stay unchanged, except the one indexed
    with another stride, which a run with the default re-indexes."""
    v1, paths = fixture_v1(tmp)
    check(schema_of(v1)[0] == "1", "fixture is schema 1")
    before = tiles_of(v1)
    # a failed upgrade (file size limit) leaves the file as it was
    copy = os.path.join(tmp, "copy.gpkg")
    shutil.copy(v1, copy)

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    p = subprocess.run([BIN, "remove", copy, "999"], capture_output=True, text=True,
                       preexec_fn=limit, timeout=120)
    check(p.returncode == 1, "upgrade under a file size limit fails: %s" % p.stderr)
    check(schema_of(copy) == ("1", "ok") and tiles_of(copy) == before,
          "a failed upgrade leaves schema 1 and every tile: %s" % (schema_of(copy),))
    # a search upgrades a writable file and answers
    p = run(["search", copy, "lake", "-k", "3"], check_rc=0)
    check(schema_of(copy) == (CURRENT_SCHEMA, "ok") and tiles_of(copy) == before,
          "search upgraded it in place, tiles and vectors unchanged")
    # indexing the same scenes: unchanged, but the one cut with stride 128 is re-indexed
    p = run(["index", "-m", MODEL, "-o", v1] + paths)
    check(p.returncode == 0, "index over the old file: %s" % p.stderr)
    check(schema_of(v1) == (CURRENT_SCHEMA, "ok"), "upgraded to the current schema")
    db = sqlite3.connect(v1)
    check(db.execute("PRAGMA foreign_key_check").fetchall() == [], "foreign keys intact")
    db.close()
    after = tiles_of(v1)
    kept = [r for r in before if "l7_rgb" not in r[1]]
    check(kept and all(r in after for r in kept), "unchanged scenes kept tiles and vectors")
    check("settings changed" in p.stderr and "stride 128" in p.stderr and "l7_rgb" in p.stderr,
          "the scene cut with --stride 128 is re-indexed with the default: " + p.stderr)
    check("2 unchanged" in p.stderr, "the other scenes are unchanged: " + p.stderr)
    p = run(["index", "-m", MODEL, "-o", v1] + paths, check_rc=0)
    check("3 unchanged" in p.stderr, "then everything is unchanged: " + p.stderr)


def group_remove(tmp):
    """rsclip remove takes scenes out (by id or path, all or none); --prune drops vanished ones."""
    a = os.path.join(tmp, "a.tif")
    b = os.path.join(tmp, "b.tif")
    c = os.path.join(tmp, "c.tif")
    for i, f in enumerate((a, b, c)):
        write_tif(f, rgb_noise(20 + i, 300, 300), gt=(500000 + 1000 * i, 1, 0, 4000000, 0, -1),
                  epsg=32632)
    index = os.path.join(tmp, "idx.gpkg")
    index_run(index, [a, b, c], rc=0)
    run(["search", index, "lake"], check_rc=0)  # builds the vector cache
    n0 = len(tile_rows(index))
    p = run(["remove", index, "1", os.path.join(tmp, "nope.tif")])
    check(p.returncode == 1 and "nope.tif" in p.stderr, "unknown scene refused: " + p.stderr)
    check(len(tile_rows(index)) == n0, "nothing removed when one scene is unknown")
    p = run(["remove", index, "1", b], check_rc=0)
    sc = scenes(index)
    check(set(sc) == {"c.tif"}, "a (by id) and b (by path) removed: %s" % sc)
    rows = tile_rows(index)
    check(all("c.tif" in r[1] for r in rows) and rows, "only c's tiles remain")
    db = sqlite3.connect(index)
    check(db.execute("SELECT count(*) FROM embeddings").fetchone()[0] == len(rows),
          "vectors removed with their tiles")
    check(db.execute("SELECT count(*) FROM rtree_tiles_geom").fetchone()[0] == len(rows),
          "footprints removed from the R-tree")
    db.close()
    p = run(["search", index, "lake", "-k", "50"], check_rc=0)
    check("a.tif" not in p.stdout and "b.tif" not in p.stdout, "search (cache) forgets them")
    index_run(index, [a, b], rc=0)
    os.remove(a)
    p = run(["index", "-o", index, "--prune"], check_rc=0)
    check("a.tif" in p.stderr and set(scenes(index)) == {"b.tif", "c.tif"},
          "--prune drops the vanished file: %s %s" % (p.stderr, scenes(index)))
    p = run(["info", "--json", index], check_rc=0)
    check(json.loads(p.stdout)["scenes"] == 2, "info agrees")


def main():
    group = sys.argv[1] if len(sys.argv) > 1 else "settings"
    tmp = tempfile.mkdtemp(prefix="rsclip_rb_")
    try:
        globals()["group_" + group](tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d check(s) failed" % len(failures), file=sys.stderr)
        return 1
    print("test_robust %s: all checks passed" % group)
    return 0


if __name__ == "__main__":
    sys.exit(main())
