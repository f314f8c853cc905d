#!/usr/bin/python3
"""The OGRLayer contract on every layer of the RSCLIP driver (tiles, hits, regions; whole index
and one scene), the checks GDAL's test_ogrsf holds drivers to, written out here because Debian
ships no test_ogrsf: counts against iteration (filters or not, force or not), random reads that
ignore both filters, missing FIDs answered by None without an error, SetNextByIndex, attribute
and spatial filters (None, field index 0 and bad indexes, infinite and huge envelopes),
GetExtent, SQL on the layers (OGRSQL, SQLite dialect with two cursors), interleaved reading,
ResetReading, capabilities that hold, a stable layer definition, update-mode opens, names that
reopen the same dataset, strings that are UTF-8."""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plugin_common import (MODEL, RSCLIP, SCENES, build_index, check, finish,  # noqa: E402
                           reexec_with_preload, run)

reexec_with_preload()  # before osgeo: importing it registers (loads) the plugin
from osgeo import gdal, ogr  # noqa: E402

from plugin_contract import check_dataset, check_fields, install_handler, read_all  # noqa: E402

gdal.DontUseExceptions()
ogr.DontUseExceptions()

work = os.path.abspath(sys.argv[1])
idx = build_index(work)
DS = "RSCLIP:" + idx
QUERY = "lake"
K = 30

install_handler()

q = ["QUERY=" + QUERY, "TOP_K=%d" % K, "MERGE=YES"]
whole = check_dataset(DS, q, ["tiles", "hits", "regions"], "index")
check_dataset(DS, [], ["tiles"], "index without query")
# the fields of hits and regions: those rsclip search writes (names, types, order)
qds = gdal.OpenEx(DS, gdal.OF_VECTOR, open_options=q)
for layer, extra in [("hits", []), ("regions", ["--merge"])]:
    ref = os.path.join(work, "ref_%s.gpkg" % layer)
    rc, _, _ = run([RSCLIP, "search", idx, QUERY, "-k", str(K), "-o", ref] + extra)
    if check(rc == 0, "reference: rsclip search -o %s" % os.path.basename(ref)):
        check_fields(qds.GetLayerByName(layer) if qds else None, ref, "index " + layer)
qds = None
check_dataset(DS, ["LIKE_TILE=3", "TOP_K=6"], ["tiles", "hits"], "LIKE_TILE")
# one scene: its tiles, and the query's hits inside it
scene_ids = sorted({k[1][1] for k in whole.get("tiles", [])})
big = max(scene_ids, key=lambda s: sum(1 for k in whole["tiles"] if k[1][1] == s)) if scene_ids else 1
one = check_dataset("%s:%d" % (DS, big), q, ["tiles", "hits", "regions"], "scene %d" % big)
check(sorted(k[0] for k in one.get("tiles", [])) ==
      sorted(k[0] for k in whole.get("tiles", []) if k[1][1] == big),
      "scene %d: the tiles layer holds the scene's tiles" % big)
check(one.get("hits") and all(k[1][5] == one["tiles"][0][1][0] for k in one["hits"]),
      "scene %d: hits of that scene only" % big)

# an index that also holds a scene in pixel coordinates (no georeferencing: tiles without
# footprint or lon/lat): listed, counted and read like the others, met by no spatial filter
mixed = os.path.join(work, "mixed")
os.makedirs(mixed, exist_ok=True)
msrc = gdal.Open([s for s in SCENES if "milwaukee" in s][0])
plain = os.path.join(mixed, "plain.tif")
pd = gdal.GetDriverByName("GTiff").Create(plain, 3 * msrc.RasterXSize, 3 * msrc.RasterYSize, 3)
for b in range(1, 4):
    a = msrc.GetRasterBand(b).ReadRaster()
    for j in range(3):
        for i in range(3):
            pd.GetRasterBand(b).WriteRaster(i * msrc.RasterXSize, j * msrc.RasterYSize,
                                            msrc.RasterXSize, msrc.RasterYSize, a)
pd = None
midx = os.path.join(mixed, "idx.gpkg")
rc, _, _ = run([RSCLIP, "index", "-q", "-m", MODEL, "-o", midx, "--allow-pixel-coords",
                msrc.GetDescription(), plain])
if check(rc == 0, "index with a scene in pixel coordinates"):
    mx = check_dataset("RSCLIP:" + midx, ["QUERY=" + QUERY, "TOP_K=8"], ["tiles", "hits"],
                       "mixed index")
    nogeo = [k for k in mx.get("tiles", []) if k[2] is None]
    check(len(nogeo) == 6 and all(k[1][6] is None and k[1][7] is None for k in nogeo),
          "mixed index: the 6 pixel-coordinate tiles, without geometry or lon/lat")

# open options in the name (QGIS's form) = open options beside it
by_name = gdal.OpenEx(DS + "|option:QUERY=" + QUERY + "|option:TOP_K=%d" % K, gdal.OF_VECTOR)
check(by_name is not None and read_all(by_name.GetLayerByName("hits")) == whole.get("hits"),
      "|option:KEY=VALUE in the name = open options")
by_name = None

# ---- the GDAL tools: ogrinfo -sql (update mode first) prints no error -------------------------
for dialect in [[], ["-dialect", "SQLITE"], ["-dialect", "OGRSQL"]]:
    rc, out, err = run(["ogrinfo", DS, "-oo", "QUERY=" + QUERY, "-oo", "TOP_K=5"] + dialect +
                       ["-sql", "SELECT rank, prob FROM hits WHERE rank <= 3"])
    check(rc == 0 and "ERROR" not in out + err and "read-only" not in out + err and
          out.count("rank (Integer) =") == 3,
          "ogrinfo -sql %s: 3 rows, no error%s" % (" ".join(dialect), (": " + err.strip()[:200])
                                                  if err.strip() else ""))
rc, out, err = run(["ogrinfo", DS, "-sql", "SELECT COUNT(*) FROM tiles"])
check(rc == 0 and not err.strip() and ("= %d" % len(whole.get("tiles", []))) in out,
      "ogrinfo -sql on the tiles layer, no error")

# ---- a scene path that is not UTF-8 (Latin-1 bytes) reads back as UTF-8 --------------------------
lat = os.path.join(work, "latin1")
os.makedirs(lat, exist_ok=True)
src = [s for s in SCENES if "milwaukee" in s][0]
bname = os.fsencode(os.path.join(lat, "")) + b"sc\xe8ne.tif"
shutil.copyfile(src, bname)
lidx = os.path.join(lat, "idx.gpkg")
rc, _, _ = run([RSCLIP, "index", "-q", "-m", MODEL, "-o", lidx, os.fsdecode(bname)])
if check(rc == 0, "index of a scene with a Latin-1 path"):
    lds = gdal.OpenEx("RSCLIP:" + lidx, gdal.OF_VECTOR)
    f = lds.GetLayer(0).GetNextFeature() if lds else None
    raw = f.GetFieldAsBinary("scene") if f else b""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    check(text is not None and text.endswith("sc\u00e8ne.tif"),
          "scene path shown as UTF-8 (%r)" % raw[-12:])
    lds = None

gdal.PopErrorHandler()
finish()
