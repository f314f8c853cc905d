#!/usr/bin/python3
"""The OGRLayer contract on every layer of the RSCLIP driver (tiles, hits, regions; whole index
and one scene), the checks GDAL's test_ogrsf holds drivers to, written out here because Debian
ships no test_ogrsf: counts against iteration (filters or not, force or not), random reads that
ignore both filters, missing FIDs answered by None without an error, SetNextByIndex, attribute
and spatial filters (None, field index 0 and bad indexes, infinite and huge envelopes),
GetExtent, SQL on the layers (OGRSQL, SQLite dialect with two cursors), interleaved reading,
ResetReading, capabilities that hold, a stable layer definition, update-mode opens, names that
reopen the same dataset, strings that are UTF-8."""
import math
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plugin_common import (MODEL, RSCLIP, SCENES, build_index, check, finish,  # noqa: E402
                           reexec_with_preload, run)

reexec_with_preload()  # before osgeo: importing it registers (loads) the plugin
from osgeo import gdal, ogr  # noqa: E402

gdal.DontUseExceptions()
ogr.DontUseExceptions()

work = os.path.abspath(sys.argv[1])
idx = build_index(work)
DS = "RSCLIP:" + idx
QUERY = "lake"
K = 30

errors = []


def handler(cls, num, msg):
    if cls >= gdal.CE_Warning:
        errors.append(msg)


gdal.PushErrorHandler(handler)


def quiet(what, fn):
    """fn() must emit no warning or error."""
    del errors[:]
    r = fn()
    check(not errors, "%s: no error message%s" % (what, (": " + errors[0]) if errors else ""))
    return r


def key(f):
    """Everything a feature holds (FID, fields, geometry as WKB)."""
    if f is None:
        return None
    g = f.GetGeometryRef()
    return (f.GetFID(), tuple(f.GetField(i) for i in range(f.GetFieldCount())),
            bytes(g.ExportToWkb()) if g else None)


def read_all(lyr):
    lyr.ResetReading()
    out = []
    while True:
        f = lyr.GetNextFeature()
        if f is None:
            return out
        out.append(key(f))


def envelope_poly(e, grow=0.0):
    x0, x1, y0, y1 = e[0] - grow, e[1] + grow, e[2] - grow, e[3] + grow
    return ogr.CreateGeometryFromWkt("POLYGON((%.17g %.17g,%.17g %.17g,%.17g %.17g,%.17g %.17g,"
                                     "%.17g %.17g))" % (x0, y0, x1, y0, x1, y1, x0, y1, x0, y0))


def check_layer(ds, name, tag):
    lyr = ds.GetLayerByName(name)
    if not check(lyr is not None, "%s: layer %s" % (tag, name)):
        return
    t = "%s %s" % (tag, name)
    defn = lyr.GetLayerDefn()
    fields = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
    gtype = defn.GetGeomType()

    # ---- sequential reading, counts ----
    feats = quiet(t + " read", lambda: read_all(lyr))
    n = len(feats)
    check(n > 0, "%s: has features (%d)" % (t, n))
    fids = [k[0] for k in feats]
    check(len(set(fids)) == n and all(fid >= 1 for fid in fids), "%s: distinct FIDs" % t)
    check(read_all(lyr) == feats, "%s: a second reading gives the same features" % t)
    check(lyr.GetFeatureCount(True) == n and lyr.GetFeatureCount(False) in (n, -1),
          "%s: GetFeatureCount(force, not force) = %d" % (t, n))
    check(lyr.TestCapability(ogr.OLCFastFeatureCount) in (0, 1), "%s: OLCFastFeatureCount" % t)
    lyr.ResetReading()
    a = key(lyr.GetNextFeature())
    check(lyr.GetFeatureCount() == n and key(lyr.GetNextFeature()) == (feats + [None])[1],
          "%s: GetFeatureCount does not move the reading" % t)
    lyr.ResetReading()
    check(key(lyr.GetNextFeature()) == a == feats[0], "%s: ResetReading starts again" % t)

    # ---- random read: ignores both filters; missing FIDs are None, quietly ----
    check(lyr.TestCapability(ogr.OLCRandomRead), "%s: OLCRandomRead" % t)
    check(all(key(lyr.GetFeature(k[0])) == k for k in feats[:5] + feats[-3:]),
          "%s: GetFeature(fid) = the feature read sequentially" % t)
    for bad in [-1, 0, max(fids) + 1, 10 ** 9, 2 ** 62]:
        got = quiet("%s: GetFeature(%d)" % (t, bad), lambda: lyr.GetFeature(bad))
        check(got is None, "%s: GetFeature(%d) is None" % (t, bad))
    geo = [k for k in feats if k[2] is not None]  # tiles in pixel coordinates have none
    first_env = ogr.CreateGeometryFromWkb(geo[0][2]).GetEnvelope()
    far = ogr.CreateGeometryFromWkt("POLYGON((170 -80,171 -80,171 -79,170 -79,170 -80))")
    lyr.SetSpatialFilter(far)
    check(lyr.GetFeatureCount() == 0 and read_all(lyr) == [],
          "%s: a spatial filter far away selects nothing" % t)
    check(key(lyr.GetFeature(fids[0])) == feats[0], "%s: GetFeature ignores the spatial filter" % t)
    lyr.SetSpatialFilter(None)
    lyr.SetAttributeFilter("0 = 1")
    check(lyr.GetFeatureCount() == 0 and read_all(lyr) == [],
          "%s: attribute filter 0 = 1 selects nothing" % t)
    check(key(lyr.GetFeature(fids[-1])) == feats[-1],
          "%s: GetFeature ignores the attribute filter" % t)
    lyr.SetAttributeFilter(None)
    check(read_all(lyr) == feats, "%s: clearing the filters restores every feature" % t)

    # ---- attribute filters ----
    col = fields[0]
    lyr.ResetReading()
    v = lyr.GetFeature(fids[n // 2]).GetField(col)
    lyr.SetAttributeFilter("%s = %r" % (col, v) if isinstance(v, str) else "%s = %.17g" % (col, v))
    sel = read_all(lyr)
    want = [k for k in feats if k[1][0] == v]
    check(sel == want and lyr.GetFeatureCount() == len(want) and len(want) >= 1,
          "%s: attribute filter %s = value (%d)" % (t, col, len(want)))
    check(not lyr.TestCapability(ogr.OLCFastFeatureCount) or lyr.GetFeatureCount(False) == len(want),
          "%s: OLCFastFeatureCount holds under a filter" % t)
    lyr.SetAttributeFilter(None)

    # ---- SetNextByIndex ----
    for i in sorted({i for i in (0, 1, 3, n // 2, n - 1) if i < n}):
        err = lyr.SetNextByIndex(i)
        check(err == 0 and key(lyr.GetNextFeature()) == feats[i],
              "%s: SetNextByIndex(%d) then the %d-th feature" % (t, i, i))
    check(lyr.SetNextByIndex(n) == 0 and lyr.GetNextFeature() is None,
          "%s: SetNextByIndex(count) is the end" % t)
    for bad in [n + 1, 10 ** 12, -1, -10]:
        err = quiet("%s: SetNextByIndex(%d)" % (t, bad), lambda: lyr.SetNextByIndex(bad))
        check(err != 0 and lyr.GetNextFeature() is None,
              "%s: SetNextByIndex(%d) fails and the reading is over" % (t, bad))
    lyr.SetAttributeFilter("%s <> %s" % (fields[0], "'x'" if isinstance(v, str) else "-12345"))
    check(lyr.SetNextByIndex(n - 1) == 0 and key(lyr.GetNextFeature()) == feats[n - 1],
          "%s: SetNextByIndex through an attribute filter" % t)
    lyr.SetAttributeFilter(None)

    # ---- spatial filters ----
    inc = envelope_poly(first_env, 1e-9)
    lyr.SetSpatialFilter(inc)
    got = [k[0] for k in read_all(lyr)]
    check(geo[0][0] in got and lyr.GetFeatureCount() == len(got),
          "%s: spatial filter on a feature's envelope returns it (%d)" % (t, len(got)))
    check(all(ogr.CreateGeometryFromWkb(k[2]).Intersects(inc) for k in read_all(lyr)),
          "%s: every feature returned meets the filter" % t)
    lyr.SetSpatialFilter(0, inc)
    check([k[0] for k in read_all(lyr)] == got, "%s: SetSpatialFilter(0, g) = SetSpatialFilter(g)" % t)
    for bad in [1, -1]:
        del errors[:]
        lyr.SetSpatialFilter(bad, far)
        check(errors and [k[0] for k in read_all(lyr)] == got,
              "%s: SetSpatialFilter(%d, g) is an error and keeps the filter" % (t, bad))
    for what, lo, hi in [("infinite", -math.inf, math.inf), ("huge", -1e300, 1e300)]:
        lyr.SetSpatialFilterRect(lo, lo, hi, hi)
        got_all = quiet("%s: %s spatial filter" % (t, what), lambda: read_all(lyr))
        check(got_all == geo and lyr.GetFeatureCount() == len(geo),
              "%s: a %s spatial filter returns every feature with a geometry (%d)" % (
                  t, what, len(geo)))
    lyr.SetSpatialFilter(None)
    check(lyr.GetSpatialFilter() is None and read_all(lyr) == feats,
          "%s: SetSpatialFilter(None) restores every feature" % t)
    check(lyr.TestCapability(ogr.OLCFastSpatialFilter) in (0, 1), "%s: OLCFastSpatialFilter" % t)

    # ---- extent: the envelope of every feature, filters aside ----
    e = [math.inf, -math.inf, math.inf, -math.inf]
    for k in geo:
        fe = ogr.CreateGeometryFromWkb(k[2]).GetEnvelope()
        e = [min(e[0], fe[0]), max(e[1], fe[1]), min(e[2], fe[2]), max(e[3], fe[3])]
    ext = lyr.GetExtent(force=1)
    check(all(abs(ext[i] - e[i]) <= 1e-9 for i in range(4)),
          "%s: GetExtent = the envelope of the features %s" % (t, ext))
    lyr.SetSpatialFilter(inc)
    check(lyr.GetExtent(force=0) == ext, "%s: GetExtent is the layer's, filters aside" % t)
    lyr.SetSpatialFilter(None)
    del errors[:]
    check(lyr.GetExtent(force=1, can_return_null=True, geom_field=1) is None and errors,
          "%s: GetExtent of a missing geometry field fails" % t)
    check(lyr.TestCapability(ogr.OLCFastGetExtent), "%s: OLCFastGetExtent" % t)

    # ---- strings, capabilities, definition ----
    if lyr.TestCapability(ogr.OLCStringsAsUTF8):
        ok = True
        for fid in fids:
            f = lyr.GetFeature(fid)
            for i in range(f.GetFieldCount()):
                if f.GetFieldType(i) == ogr.OFTString:
                    try:
                        f.GetFieldAsBinary(i).decode("utf-8")
                    except UnicodeDecodeError:
                        ok = False
        check(ok, "%s: OLCStringsAsUTF8 holds" % t)
    for cap in [ogr.OLCSequentialWrite, ogr.OLCRandomWrite, ogr.OLCCreateField,
                ogr.OLCDeleteFeature, ogr.OLCDeleteField, ogr.OLCTransactions]:
        check(not lyr.TestCapability(cap), "%s: no %s" % (t, cap))
    check(not lyr.TestCapability("fake_capability"), "%s: unknown capability is false" % t)
    check(lyr.GetLayerDefn().GetFieldCount() == len(fields) and
          lyr.GetLayerDefn().GetGeomType() == gtype and lyr.GetName() == name and
          lyr.GetGeomType() == gtype and lyr.GetSpatialRef() is not None and
          lyr.GetSpatialRef().GetAuthorityCode(None) == "4326",
          "%s: stable definition (%d fields, geometry %s, EPSG:4326)" % (
              t, len(fields), ogr.GeometryTypeToName(gtype)))
    del errors[:]
    f = lyr.GetFeature(fids[0])
    check(lyr.SetFeature(f) != 0 and lyr.CreateFeature(f) != 0 and lyr.DeleteFeature(fids[0]) != 0
          and errors and all("read-only" in m for m in errors), "%s: writes refused clearly" % t)

    # ---- SQL on the layer ----
    sq = ds.ExecuteSQL('SELECT * FROM "%s"' % name)
    check(sq is not None and read_all(sq) == feats, "%s: OGRSQL SELECT * = the layer" % t)
    if sq:
        ds.ReleaseResultSet(sq)
    sq = ds.ExecuteSQL('SELECT * FROM "%s" WHERE "%s" = %s' % (
        name, col, ("'%s'" % v.replace("'", "''")) if isinstance(v, str) else "%.17g" % v))
    check(sq is not None and [k[0] for k in read_all(sq)] == [k[0] for k in want],
          "%s: OGRSQL WHERE" % t)
    if sq:
        ds.ReleaseResultSet(sq)
    del errors[:]
    sq = ds.ExecuteSQL('SELECT COUNT(*) AS n, MIN(a.%s) FROM "%s" a JOIN "%s" b ON a.%s = b.%s'
                       % (fields[1], name, name, fields[1], fields[1]), dialect="SQLITE")
    row = sq.GetNextFeature() if sq else None
    check(row is not None and row.GetField("n") >= n and not errors,
          "%s: SQLite dialect self-join (two cursors on the layer)%s" % (
              t, (": " + errors[0]) if errors else ""))
    if sq:
        ds.ReleaseResultSet(sq)
    return feats


def check_dataset(name, opts, layers, tag):
    ds = quiet(tag + ": open", lambda: gdal.OpenEx(name, gdal.OF_VECTOR, open_options=opts))
    if not check(ds is not None, "%s: opens" % tag):
        return {}
    check([ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())] == layers and
          ds.GetLayer(-1) is None and ds.GetLayer(len(layers)) is None and
          ds.GetLayerByName("nope") is None, "%s: layers %s" % (tag, layers))
    out = {}
    for lname in layers:
        out[lname] = check_layer(ds, lname, tag)
    # interleaved reading of every pair of layers
    for i, a in enumerate(layers):
        for b in layers[i + 1:]:
            la, lb = ds.GetLayerByName(a), ds.GetLayerByName(b)
            la.ResetReading()
            lb.ResetReading()
            ga, gb = [], []
            while True:
                fa, fb = la.GetNextFeature(), lb.GetNextFeature()
                if fa is None and fb is None:
                    break
                if fa:
                    ga.append(key(fa))
                if fb:
                    gb.append(key(fb))
            check(ga == out[a] and gb == out[b], "%s: interleaved reading of %s and %s" % (tag, a, b))
    # the dataset's name reopens the same dataset (GDAL does so, e.g. for a second SQL cursor)
    ds2 = gdal.OpenEx(ds.GetDescription(), gdal.OF_VECTOR)
    check(ds2 is not None and all(ds2.GetLayerByName(l) is not None and
                                  read_all(ds2.GetLayerByName(l)) == out[l] for l in layers),
          "%s: its name %s reopens it" % (tag, ds.GetDescription()[-60:]))
    ds2 = None
    # an update-mode open works (ogrinfo -sql asks for it), the layers stay read-only
    ds3 = quiet(tag + ": update-mode open",
                lambda: gdal.OpenEx(name, gdal.OF_VECTOR | gdal.OF_UPDATE, open_options=opts))
    check(ds3 is not None and ds3.GetLayerCount() == len(layers) and
          ds3.GetLayer(0).TestCapability(ogr.OLCSequentialWrite) == 0,
          "%s: opens in update mode, read-only" % tag)
    return out


q = ["QUERY=" + QUERY, "TOP_K=%d" % K, "MERGE=YES"]
whole = check_dataset(DS, q, ["tiles", "hits", "regions"], "index")
check_dataset(DS, [], ["tiles"], "index without query")
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
