#!/usr/bin/python3
"""Time through the RSCLIP driver: the AFTER, BEFORE, LATEST and CHANGE open options.

An index of two dates of the same ground: a sample scene as taken in 2019, and a copy cut 100 px
in with its upper-left 300x300 pixels altered, as taken in 2023 (TIFFTAG_DATETIME). The
references are `rsclip search` with --after/--before/--latest/--change (GeoJSON for the values,
GeoPackage for the field definitions) and the footprints and dates GDAL reads back."""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plugin_common import (MODEL, RSCLIP, SRC, check, finish, read_geojson,  # noqa: E402
                           reexec_with_preload, run)

reexec_with_preload()  # before osgeo: importing it registers (loads) the plugin
from osgeo import gdal, ogr  # noqa: E402

from plugin_contract import check_dataset, check_fields, install_handler, read_all  # noqa: E402

gdal.DontUseExceptions()
ogr.DontUseExceptions()

work = os.path.abspath(sys.argv[1])
if os.path.isdir(work):
    shutil.rmtree(work)
os.makedirs(work)


def w(name):
    return os.path.join(work, name)


QUERY = "buildings"
K = 100  # more than the tiles: every tile is a hit

# ---- two dates of the same ground --------------------------------------------------------------
sample = os.path.join(SRC, "samples", "s2_aberystwyth_20210527_b2-b3-b4-nir_10m_epsg27700.tif")
a_tif, b_tif = w("a.tif"), w("b.tif")
gdal.Translate(a_tif, sample, metadataOptions=["TIFFTAG_DATETIME=2019:06:01 10:00:00"])
src = gdal.Open(sample)
mem = gdal.Translate("", sample, format="MEM",
                     srcWin=[100, 100, src.RasterXSize - 100, src.RasterYSize - 100])
for i in range(1, mem.RasterCount + 1):  # something new in the upper left
    band = mem.GetRasterBand(i)
    band.WriteRaster(0, 0, 300, 300, b"\xd0\x07" * (300 * 300),
                     buf_type=gdal.GDT_UInt16)
gdal.Translate(b_tif, mem, metadataOptions=["TIFFTAG_DATETIME=2023:06:01 10:00:00"])
mem = src = None
idx = w("ix.gpkg")
rc, _, _ = run([RSCLIP, "index", "-q", "-m", MODEL, "-o", idx, a_tif, b_tif])
if not check(rc == 0, "index of two dates of the same ground"):
    finish()
DS = "RSCLIP:" + idx

install_handler()


def open_ds(opts):
    return gdal.OpenEx(DS, gdal.OF_VECTOR, open_options=["QUERY=" + QUERY, "TOP_K=%d" % K] + opts)


def features(lyr):
    lyr.ResetReading()
    return [f for f in lyr]


def ref_geojson(name, extra):
    out = w(name)
    rc, _, _ = run([RSCLIP, "search", idx, QUERY, "-k", str(K), "-of", "GeoJSON", "-o", out] +
                   extra)
    return read_geojson(out) if rc == 0 else None


# ---- the dates of the tiles ---------------------------------------------------------------------
ds = open_ds([])
hits = features(ds.GetLayerByName("hits")) if ds else []
years = sorted({(f.GetField("datetime") or "")[:4] for f in hits})
check(years == ["2019", "2023"], "hits carry the scenes' datetime (%s)" % years)
check(all(f.IsFieldNull("stac_item") and f.IsFieldNull("stac_collection") for f in hits),
      "stac_item and stac_collection are null for scenes not from STAC")
n2019 = sum(1 for f in hits if f.GetField("datetime").startswith("2019"))
n2023 = len(hits) - n2019
ds = None

# ---- AFTER, BEFORE: only scenes of that time; the same hits as rsclip search --------------------
for opt, flag, year, n in [("AFTER=2022", "--after", "2023", n2023),
                           ("BEFORE=2020", "--before", "2019", n2019)]:
    ds = open_ds([opt])
    got = features(ds.GetLayerByName("hits")) if ds else []
    check(len(got) == n and n > 0 and all(f.GetField("datetime").startswith(year) for f in got),
          "%s: the %d tiles of %s only" % (opt, n, year))
    ref = ref_geojson("ref_%s.geojson" % flag[2:], [flag, opt.split("=")[1]])
    check(ref is not None and
          [(f.GetFID(), f.GetField("tile_id"), f.GetField("datetime")) for f in got] ==
          [(r["properties"]["rank"], r["properties"]["tile_id"], r["properties"]["datetime"])
           for r in ref], "%s = rsclip search %s (rank, tile, datetime)" % (opt, flag))
    ds = None
ds = open_ds(["AFTER=2019-06-02", "BEFORE=2023-06-01"])
got = features(ds.GetLayerByName("hits")) if ds else []
check(len(got) == n2023, "AFTER=2019-06-02 BEFORE=2023-06-01: the 2023 tiles (days, both ends in)")
ds = None

# ---- LATEST: no 2019 tile where a 2023 hit is ---------------------------------------------------
ds = open_ds(["LATEST=YES"])
got = features(ds.GetLayerByName("hits")) if ds else []
new = [f.GetGeometryRef().Clone() for f in got if f.GetField("datetime").startswith("2023")]
old = [f.GetGeometryRef().Clone() for f in got if f.GetField("datetime").startswith("2019")]
check(len(new) == n2023 and  # here every 2019 tile lies under 2023 ground
      not any(o.Intersection(g).Area() > 1e-12 * g.Area() for o in old for g in new),
      "LATEST=YES: every 2023 tile, no 2019 tile overlapping one (%d kept of %d)" % (
          len(old), n2019))
check(ds is not None and "dropped" in (ds.GetMetadataItem("NOTE") or ""),
      "LATEST=YES: metadata NOTE says what it dropped (%s)" % (ds and ds.GetMetadataItem("NOTE")))
ref = ref_geojson("ref_latest.geojson", ["--latest"])
check(ref is not None and [f.GetField("tile_id") for f in got] ==
      [r["properties"]["tile_id"] for r in ref], "LATEST=YES = rsclip search --latest")
ds = None

# ---- CHANGE: the changes layer = rsclip search --change ----------------------------------------
ds = open_ds(["CHANGE=2019/2023"])
names = [ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())] if ds else []
check(names == ["tiles", "changes"], "CHANGE: layers tiles and changes, no hits (%s)" % names)
ch = features(ds.GetLayerByName("changes")) if ds else []
check(ds is not None and "examined" in (ds.GetMetadataItem("NOTE") or "") and
      ds.GetMetadataItem("WHY_EMPTY") is None, "CHANGE: metadata NOTE (%s)" % (
          ds and ds.GetMetadataItem("NOTE")))
ref = ref_geojson("ref_changes.geojson", ["--change", "2019/2023"])
check(ref is not None and len(ch) == len(ref) and len(ch) > 0,
      "CHANGE: as many changes as rsclip search --change (%d)" % len(ch))
ok = ref is not None and len(ch) == len(ref)
for f, r in zip(ch, ref or []):
    p = r["properties"]
    ok = ok and f.GetFID() == f.GetField("rank") == p["rank"]
    ok = ok and (f.GetField("tile_id"), f.GetField("from_tile_id")) == (p["tile_id"],
                                                                      p["from_tile_id"])
    ok = ok and abs(f.GetField("rise") - p["rise"]) <= 1e-6
    for k in ["prob", "prob_from", "coverage"]:
        ok = ok and abs(f.GetField(k) - p[k]) <= 1e-6
    for k in ["from_tiles", "datetime", "from_datetime", "xoff", "yoff", "xsize", "ysize"]:
        ok = ok and f.GetField(k) == p[k]
    ok = ok and f.GetField("datetime").startswith("2023") and \
        f.GetField("from_datetime").startswith("2019")
    g = ogr.CreateGeometryFromJson(str(r["geometry"]).replace("'", '"'))
    ok = ok and f.GetGeometryRef().SymDifference(g).Area() <= 1e-12 * g.Area()
check(ok, "CHANGE: features = rsclip search --change (rank = FID, tiles, rise, probabilities, "
          "dates, window, footprint)")
ref_gpkg = w("ref_changes.gpkg")
rc, _, _ = run([RSCLIP, "search", idx, QUERY, "-k", str(K), "--change", "2019/2023", "-o",
                ref_gpkg])
if check(rc == 0, "reference: rsclip search --change -o changes.gpkg"):
    check_fields(ds.GetLayerByName("changes") if ds else None, ref_gpkg, "changes")
ds = None

# MERGE=YES: the regions of the later tiles, with max_rise and mean_rise
ds = open_ds(["CHANGE=2019/2023", "MERGE=YES"])
rg = read_all(ds.GetLayerByName("regions")) if ds else []
ref = ref_geojson("ref_change_regions.geojson", ["--change", "2019/2023", "--merge"])
ref_gpkg = w("ref_change_regions.gpkg")
rc, _, _ = run([RSCLIP, "search", idx, QUERY, "-k", str(K), "--change", "2019/2023", "--merge",
                "-o", ref_gpkg])
if check(rc == 0 and ref is not None, "reference: rsclip search --change --merge"):
    check_fields(ds.GetLayerByName("regions") if ds else None, ref_gpkg, "change regions")
    lyr = ds.GetLayerByName("regions")
    names = [lyr.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(len(rg[0][1]))] if rg \
        else []
    got = [dict(zip(names, k[1])) for k in rg]
    check(len(got) == len(ref) > 0 and all(
        g["region"] == r["properties"]["region"] and g["tiles"] == r["properties"]["tiles"] and
        g["best_tile"] == r["properties"]["best_tile"] and
        abs(g["max_rise"] - r["properties"]["max_rise"]) <= 1e-6 and
        abs(g["mean_rise"] - r["properties"]["mean_rise"]) <= 1e-6 for g, r in zip(got, ref)),
        "CHANGE + MERGE=YES: regions = rsclip search --change --merge (%d)" % len(got))
    # independently of the CLI: the regions hold every change, with their largest and mean rise
    rises = [f.GetField("rise") for f in ch]
    check(got and sum(g["tiles"] for g in got) == len(rises) and
          abs(max(g["max_rise"] for g in got) - max(rises)) <= 1e-6 and
          abs(sum(g["tiles"] * g["mean_rise"] for g in got) - sum(rises)) <= 1e-5,
          "CHANGE + MERGE=YES: regions hold the %d changes, max_rise and mean_rise of their "
          "rises" % len(rises))
ds = None

# the OGRLayer contract on the changes layer and its regions
check_dataset(DS, ["QUERY=" + QUERY, "TOP_K=%d" % K, "CHANGE=2019/2023", "MERGE=YES"],
              ["tiles", "changes", "regions"], "change")

# ---- the GDAL tools ------------------------------------------------------------------------------
rc, _, err = run(["ogr2ogr", "-f", "GPKG", w("changes.gpkg"), DS, "-oo", "QUERY=" + QUERY, "-oo",
                  "TOP_K=%d" % K, "-oo", "CHANGE=2019/2023", "changes"])
out = gdal.OpenEx(w("changes.gpkg"), gdal.OF_VECTOR) if rc == 0 else None
lyr = out.GetLayerByName("changes") if out else None
check(lyr is not None and lyr.GetFeatureCount() == len(ch) and
      [(f.GetFID(), f.GetField("tile_id")) for f in lyr] ==
      [(f.GetFID(), f.GetField("tile_id")) for f in ch] and not err.strip(),
      "ogr2ogr -f GPKG of the changes layer (FID = rank)%s" % (": " + err.strip()[:200]
                                                               if err.strip() else ""))
out = None
rc, text, _ = run(["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "AFTER=2022", "hits"])
check(rc == 0 and "datetime: String" in text and "stac_item: String" in text and
      ("Feature Count: %d" % n2023) in text, "ogrinfo -oo AFTER=2022: the 2023 hits, datetime")

bad = [
    (["CHANGE=2023/2019"], "CHANGE=2023/2019"),
    (["CHANGE=2019"], "CHANGE=2019"),
    (["CHANGE=2019/2023", "AFTER=2019"], "AFTER"),
    (["CHANGE=2019/2023", "LATEST=YES"], "LATEST"),
    (["AFTER=2019-13"], "AFTER=2019-13"),
    (["BEFORE=yesterday"], "BEFORE=yesterday"),
    (["LATEST=perhaps"], "LATEST=perhaps"),
]
for opts, needle in bad:
    args = ["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY]
    for o in opts:
        args += ["-oo", o]
    rc, o, e = run(args, expect_ok=False)
    text = o + e
    check(rc > 0 and "ERROR" in text and needle in text and "Traceback" not in text,
          "clean error for %s (rc %d): %s" % (" ".join(opts), rc,
                                             " | ".join(l for l in text.splitlines()
                                                        if "ERROR" in l)[:200]))
# a period without scenes: no change, and the metadata says why
ds = open_ds(["CHANGE=2000/2001"])
check(ds is not None and ds.GetLayerByName("changes").GetFeatureCount() == 0 and
      "no tile of the later period" in (ds.GetMetadataItem("WHY_EMPTY") or ""),
      "CHANGE=2000/2001: no changes, WHY_EMPTY (%s)" % (ds and ds.GetMetadataItem("WHY_EMPTY")))
ds = None
rc, o, e = run(["ogrinfo", "-so", DS, "-oo", "CHANGE=2019/2023"], expect_ok=False)
check(rc > 0 and "CHANGE needs QUERY" in o + e, "CHANGE without QUERY: clean error")

gdal.PopErrorHandler()
finish()
