#!/usr/bin/python3
"""A sharded index (a folder of parts, rsclip index --shard I/3) through the RSCLIP driver: every
layer and heatmap over the folder equals the same over `rsclip merge` of it (features, FIDs,
values, metadata), the OGRLayer contract holds on the folder (plugin_contract.py, the checks of
test_plugin_layers.py), the GDAL tools take RSCLIP:folder/ and the bare folder, parts that do
not belong together fail with one error naming both files, missing parts open with a warning,
and identifying a folder opens no file."""
import glob
import os
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plugin_common import (FIXTURES, MODEL, RSCLIP, SCENES, check, finish,  # noqa: E402
                           read_geojson, reexec_with_preload, run, tool_env)

reexec_with_preload()  # before osgeo: importing it registers (loads) the plugin
from osgeo import gdal, ogr  # noqa: E402

from plugin_contract import check_dataset, errors, install_handler, key, read_all  # noqa: E402

gdal.DontUseExceptions()
ogr.DontUseExceptions()

work = os.path.abspath(sys.argv[1])
if os.path.isdir(work):
    shutil.rmtree(work)
os.makedirs(work)
QUERY = "lake"


def w(*names):
    return os.path.join(work, *names)


def shard(folder, i, n, scenes=SCENES, model=MODEL):
    rc, _, _ = run([RSCLIP, "index", "-q", "-m", model, "-o", folder + "/", "--shard",
                    "%d/%d" % (i, n)] + scenes)
    return rc == 0


folder = w("city")
if not all(shard(folder, i, 3) for i in range(3)):
    print("cannot build the sharded test index")
    sys.exit(1)
merged = w("merged.gpkg")
rc, _, _ = run([RSCLIP, "merge", "-q", "-o", merged, folder])
if rc != 0:
    print("cannot merge the sharded test index")
    sys.exit(1)
parts = sorted(glob.glob(os.path.join(folder, "*.gpkg")))
check([os.path.basename(p) for p in parts] ==
      ["part-%05d-of-00003.gpkg" % i for i in range(3)], "3 parts")


def part_tiles(p):
    db = sqlite3.connect(p)
    r = db.execute("SELECT fid, scene_id FROM tiles ORDER BY fid").fetchall()
    db.close()
    return r


by_part = [part_tiles(p) for p in parts]
holders = {}
for i, rows in enumerate(by_part):
    for _, sid in rows:
        holders.setdefault(sid, set()).add(i)
spread = sorted(s for s, h in holders.items() if len(h) > 1)
only_last = sorted(s for s, h in holders.items() if h == {2})
check(spread and all(len(r) > 0 for r in by_part),
      "the split is of tiles: scenes %s spread over parts, every part holds tiles" % spread)
F = "RSCLIP:" + folder + "/"
M = "RSCLIP:" + merged
install_handler()

# ---- the OGR contract on the folder, and every layer = the merged file's ------------------------
q = ["QUERY=" + QUERY, "TOP_K=30", "MERGE=YES"]
far_tile = by_part[2][-1][0]  # a tile of the last part: LIKE_TILE reads it from there
cases = [("", q, ["tiles", "hits", "regions"], "folder"),
         ("", [], ["tiles"], "folder without query"),
         ("", ["LIKE_TILE=%d" % far_tile, "TOP_K=6"], ["tiles", "hits"], "folder LIKE_TILE")]
cases += [(":%d" % s, q, ["tiles", "hits", "regions"], "folder scene %d (spread)" % s)
          for s in spread]
cases += [(":%d" % s, q, ["tiles", "hits", "regions"], "folder scene %d (last part only)" % s)
          for s in only_last[:1]]


def read_layers(name, opts, layers):
    ds = gdal.OpenEx(name, gdal.OF_VECTOR, open_options=opts)
    return {lname: read_all(ds.GetLayerByName(lname)) for lname in layers} if ds else {}


for suffix, opts, layers, tag in cases:
    got = check_dataset(F + suffix, opts, layers, tag)
    ref = read_layers(M + suffix, opts, layers)
    for lname in layers:
        a, b = got.get(lname), ref.get(lname)
        check(a is not None and a == b, "%s %s: the features of the merged file, FIDs included (%d)"
              % (tag, lname, len(a or [])))
# the bare folder (no RSCLIP: prefix) opens through the driver too
bare = check_dataset(folder, [], ["tiles"], "bare folder")
ds_m = gdal.OpenEx(M, gdal.OF_VECTOR)
check(bare.get("tiles") == read_all(ds_m.GetLayerByName("tiles")) and
      len(bare["tiles"]) == sum(len(r) for r in by_part), "bare folder: every tile of every part")

# filters, counts, extents, random reads: the same on the folder as on the merged file
ds_f = gdal.OpenEx(F, gdal.OF_VECTOR)
lf, lm = ds_f.GetLayerByName("tiles"), ds_m.GetLayerByName("tiles")
check(lf.GetFeatureCount() == lm.GetFeatureCount() == sum(len(r) for r in by_part),
      "tiles: feature count = the sum over the parts (%d)" % lf.GetFeatureCount())
# The folder's extent is exact (the contract above: the envelope of the features). The merged
# file's is the envelope of its R-tree (rsclip_index_merge), float32 rounded outward: within 1e-5.
ef, em = lf.GetExtent(), lm.GetExtent()
check(all(abs(ef[i] - em[i]) <= 1e-5 for i in range(4)) and em[0] <= ef[0] and em[1] >= ef[1] and
      em[2] <= ef[2] and em[3] >= ef[3], "tiles: extent = the merged file's (%s, %s)" % (ef, em))
check(all(key(lf.GetFeature(fid)) == key(lm.GetFeature(fid)) for rows in by_part for fid, _ in rows),
      "tiles: GetFeature(fid) finds every tile in the part that holds it")
ext_spread = None
for s in spread:
    lm.SetAttributeFilter("scene_id = %d" % s)
    env = None
    for f in lm:
        e = f.GetGeometryRef().GetEnvelope()
        env = e if env is None else (min(env[0], e[0]), max(env[1], e[1]), min(env[2], e[2]),
                                     max(env[3], e[3]))
    ext_spread = ext_spread or env
for flt in [("scene_id = %d" % spread[0], None), (None, ext_spread),
            ("valid_fraction >= 0.5", ext_spread)]:
    for lyr in (lf, lm):
        lyr.SetAttributeFilter(flt[0])
        if flt[1]:
            lyr.SetSpatialFilterRect(flt[1][0], flt[1][2], flt[1][1], flt[1][3])
        else:
            lyr.SetSpatialFilter(None)
    a, b = read_all(lf), read_all(lm)
    check(a == b and len(a) > 0 and lf.GetFeatureCount() == len(b),
          "tiles with filters %s: the merged file's features (%d)" % (flt, len(b)))
ds_f = ds_m = lf = lm = None

# ---- heatmaps: each scene once, the merged file's values ----------------------------------------
def subdatasets(name):
    ds = gdal.OpenEx(name, gdal.OF_RASTER, open_options=["QUERY=" + QUERY])
    md = ds.GetMetadata("SUBDATASETS") if ds else {}
    return [md["SUBDATASET_%d_NAME" % i] for i in range(1, len(md) // 2 + 1)], ds


subs_f, dsf = subdatasets(F)
subs_m, dsm = subdatasets(M)
check(len(subs_f) == len(holders) == len(SCENES) and
      [s.replace(F, M, 1) for s in subs_f] == subs_m,
      "one heatmap subdataset per scene, each once (%d), as for the merged file" % len(subs_f))
check(dsf is not None and dsf.GetMetadataItem("SCENES") == dsm.GetMetadataItem("SCENES") ==
      str(len(SCENES)) and dsf.GetMetadataItem("TILES") == dsm.GetMetadataItem("TILES") and
      dsf.GetMetadataItem("PARTS") == "3 of 3" and dsm.GetMetadataItem("PARTS") is None,
      "dataset metadata: SCENES and TILES of the merged file, PARTS=3 of 3")
dsf = dsm = None
for sid in sorted(holders):
    a = gdal.OpenEx("%s:%d" % (F, sid), gdal.OF_RASTER, open_options=["QUERY=" + QUERY])
    b = gdal.OpenEx("%s:%d" % (M, sid), gdal.OF_RASTER, open_options=["QUERY=" + QUERY])
    ok = a is not None and b is not None
    if ok:
        ma, mb = a.GetMetadata(), b.GetMetadata()
        ok = ((a.RasterXSize, a.RasterYSize) == (b.RasterXSize, b.RasterYSize) and
              a.GetGeoTransform() == b.GetGeoTransform() and
              a.GetProjectionRef() == b.GetProjectionRef() and
              a.GetRasterBand(1).ReadRaster() == b.GetRasterBand(1).ReadRaster() and
              {k: v for k, v in ma.items() if k != "PARTS"} == mb)
    check(ok, "heatmap of scene %d%s: the merged file's grid, values and metadata" % (
        sid, " (over parts %s)" % sorted(holders[sid]) if sid in spread else ""))

# ---- the GDAL tools on the folder ---------------------------------------------------------------
n_tiles = sum(len(r) for r in by_part)
rc, out, err = run(["ogrinfo", "-so", F, "tiles"])
check(rc == 0 and ("Feature Count: %d" % n_tiles) in out and not err.strip(),
      "ogrinfo RSCLIP:folder/ tiles: %d features" % n_tiles)
rc, out, err = run(["ogrinfo", "-ro", "-so", folder])
check(rc == 0 and "using driver `RSCLIP'" in out and "1: tiles" in out,
      "ogrinfo on the bare folder: the RSCLIP driver")
for dialect in [[], ["-dialect", "SQLITE"], ["-dialect", "OGRSQL"]]:
    rc, out, err = run(["ogrinfo", F, "-oo", "QUERY=" + QUERY, "-oo", "TOP_K=5"] + dialect +
                       ["-sql", "SELECT rank, prob FROM hits WHERE rank <= 3"])
    check(rc == 0 and "ERROR" not in out + err and out.count("rank (Integer) =") == 3,
          "ogrinfo -sql %s on the folder: 3 rows, no error" % " ".join(dialect))
rc, out, err = run(["ogrinfo", F, "-sql", "SELECT COUNT(*) FROM tiles"])
check(rc == 0 and not err.strip() and ("= %d" % n_tiles) in out, "ogrinfo -sql COUNT(*) tiles")
for layer, opts in [("hits", ["-oo", "QUERY=" + QUERY, "-oo", "TOP_K=20"]), ("tiles", [])]:
    outs = []
    for name, src in [("f", F), ("m", M)]:
        dst = w("%s_%s.geojson" % (layer, name))
        rc, _, _ = run(["ogr2ogr", "-preserve_fid", "-f", "GeoJSON", dst, src, layer] + opts)
        outs.append(read_geojson(dst) if rc == 0 else None)
    check(outs[0] is not None and outs[0] == outs[1] and len(outs[0]) > 0,
          "ogr2ogr %s from the folder = from the merged file (%d features)" % (
              layer, len(outs[0] or [])))
rc, out, _ = run(["gdalinfo", "-oo", "QUERY=" + QUERY, F])
check(rc == 0 and out.count("_NAME=RSCLIP:") == len(SCENES), "gdalinfo: one subdataset per scene")
for sid in spread:
    tifs = [w("heat_%s_%d.tif" % (n, sid)) for n in "fm"]
    rc1, _, _ = run(["gdal_translate", "-q", "-oo", "QUERY=" + QUERY, "%s:%d" % (F, sid), tifs[0]])
    rc2, _, _ = run(["gdal_translate", "-q", "-oo", "QUERY=" + QUERY, "%s:%d" % (M, sid), tifs[1]])
    a, b = (gdal.Open(t) if os.path.exists(t) else None for t in tifs)
    check(rc1 == rc2 == 0 and a and b and
          a.GetRasterBand(1).ReadRaster() == b.GetRasterBand(1).ReadRaster() and
          a.GetGeoTransform() == b.GetGeoTransform(),
          "gdal_translate RSCLIP:folder/:%d (tiles in parts %s) = the merged file's heatmap" % (
              sid, sorted(holders[sid])))
    a = b = None

# ---- parts that do not belong together: one error naming both files -----------------------------
def one_error(path, needles, tag):
    for opts, flags, suffix, what in [
            ([], gdal.OF_VECTOR, "", "tiles"), (["QUERY=" + QUERY], gdal.OF_VECTOR, "", "hits"),
            (["QUERY=" + QUERY], gdal.OF_RASTER, ":%d" % spread[0], "heatmap")]:
        del errors[:]
        ds = gdal.OpenEx("RSCLIP:" + path + suffix, flags, open_options=opts)
        check(ds is None and len(errors) == 1 and all(n in errors[0] for n in needles),
              "%s (%s): refused with one error naming %s: %s" % (tag, what, needles, errors))
    # -ro: without it ogrinfo tries an update-mode open first and reports each failed open
    rc, out, err = run(["ogrinfo", "-ro", "-so", "RSCLIP:" + path], expect_ok=False)
    lines = [ln for ln in (out + err).splitlines() if "ERROR" in ln]
    check(rc != 0 and len(lines) == 1 and all(n in lines[0] for n in needles),
          "%s: ogrinfo prints one error: %s" % (tag, lines))


other_n = w("other_n")
shutil.copytree(folder, other_n)
# rsclip index refuses to add it there (tests/scale); made elsewhere and copied in
two = w("two")
if check(shard(two, 0, 2, SCENES[:1]), "a part of another shard count in the folder"):
    shutil.copy(os.path.join(two, "part-00000-of-00002.gpkg"), other_n)
    one_error(other_n, ["part-00000-of-00002.gpkg", "part-00000-of-00003.gpkg"],
              "a part of another shard count")
other_m = w("other_model")
shutil.copytree(folder, other_m)
os.remove(os.path.join(other_m, "part-00002-of-00003.gpkg"))
if check(shard(other_m, 2, 3, model=os.path.join(FIXTURES, "siglip-tiny-f16")),
         "a part made with another model"):
    one_error(other_m, ["part-00000-of-00003.gpkg", "part-00002-of-00003.gpkg"],
              "a part of another model")
stray = w("stray")
shutil.copytree(folder, stray)
shutil.copyfile(merged, os.path.join(stray, "extra.gpkg"))
one_error(stray, ["extra.gpkg"], "another .gpkg in the folder")

# ---- a part missing (a worker not done): the tiles that are there, with a warning --------------
partial = w("partial")
shutil.copytree(folder, partial)
os.remove(os.path.join(partial, "part-00001-of-00003.gpkg"))
del errors[:]
ds = gdal.OpenEx("RSCLIP:" + partial, gdal.OF_VECTOR)
warned = list(errors)
lyr = ds.GetLayerByName("tiles") if ds else None
want = [k for k in read_layers(M, [], ["tiles"])["tiles"]
        if k[0] not in {fid for fid, _ in by_part[1]}]
check(lyr is not None and read_all(lyr) == want and lyr.GetFeatureCount() == len(want) and
      len(warned) == 1 and "2 of 3 parts" in warned[0],
      "a part missing: the other parts' tiles (%d), one warning: %s" % (len(want), warned))
ds = lyr = None

# ---- Identify: cheap (names only, no file opened) -----------------------------------------------
check((gdal.IdentifyDriverEx(folder) or ogr.GetDriverByName("Memory")).ShortName == "RSCLIP",
      "a folder of parts is identified as RSCLIP")
for name, files in [("no_parts", ["other.gpkg"]), ("bad_name", ["part-1-of-3.gpkg"]),
                    ("past_n", ["part-00003-of-00003.gpkg"]), ("empty", [])]:
    d = w("ident", name)
    os.makedirs(d)
    for f in files:
        shutil.copyfile(merged, os.path.join(d, f))
    drv = gdal.IdentifyDriverEx(d)
    check(drv is None or drv.ShortName != "RSCLIP", "a folder with %s is not RSCLIP's" % files)
# a part that is a FIFO: any open of it would block; identifying the folder must not
fifo_dir = w("ident", "fifo")
os.makedirs(fifo_dir)
os.mkfifo(os.path.join(fifo_dir, "part-00000-of-00001.gpkg"))
try:
    p = subprocess.run([sys.executable, "-c", "from osgeo import gdal; "
                        "d = gdal.IdentifyDriverEx(%r); print(d.ShortName if d else None)" % fifo_dir],
                       capture_output=True, text=True, env=tool_env(), timeout=60)
    ident = p.stdout.strip()
except subprocess.TimeoutExpired:
    ident = "timed out (a file was opened)"
check(ident == "RSCLIP", "identifying a folder opens none of its files: %s" % ident)

gdal.PopErrorHandler()
finish()
