#!/usr/bin/python3
"""The RSCLIP GDAL driver through the real GDAL tools (ogrinfo, ogr2ogr, gdalinfo,
gdal_translate) with GDAL_DRIVER_PATH pointing at the built plugin.

References come from independent paths: `rsclip search` (-of GeoJSON, --merge, --bbox), the
GeoPackage driver reading the index file itself, and the sample rasters' own georeferencing read
by GDAL. The index is built by `rsclip index` with the tiny fixture model.
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plugin_common import (SCENES, build_index, check, finish, read_geojson,  # noqa: E402
                           reexec_with_preload, ref_search, run)

reexec_with_preload()  # before osgeo: importing it registers (loads) the plugin
from osgeo import gdal, ogr, osr  # noqa: E402

gdal.UseExceptions()

# The quick run (default) covers every feature once; --full adds the variants (every scene's
# heatmap, each option, each error case). Each GDAL tool start costs ~0.1-0.8 s.
FULL = "--full" in sys.argv
work = os.path.abspath(sys.argv[1])
idx = build_index(work)
DS = "RSCLIP:" + idx
QUERY = "lake"


def w(name):
    return os.path.join(work, name)


def ring_of(geom):
    g = geom
    if g["type"] == "MultiPolygon":
        return g["coordinates"][0][0]
    return g["coordinates"][0]


def same_ring(a, b, tol=1e-9):
    if len(a) != len(b):
        return False
    return all(abs(p[0] - q[0]) <= tol and abs(p[1] - q[1]) <= tol for p, q in zip(a, b))


# ---- the driver is there ------------------------------------------------------------------------
rc, out, _ = run(["ogrinfo", "--formats"])
check(rc == 0 and "RSCLIP" in out, "ogrinfo --formats lists RSCLIP")
if FULL:
    rc, out, _ = run(["gdalinfo", "--formats"])
    check(rc == 0 and "RSCLIP" in out, "gdalinfo --formats lists RSCLIP")
rc, out, _ = run(["gdalinfo", "--format", "RSCLIP"])
for opt in ["QUERY", "NEGATIVE", "TOP_K", "MIN_PROB", "TEMPLATE", "MODEL", "MERGE", "LIKE_TILE",
            "AFTER", "BEFORE", "LATEST", "CHANGE"]:
    check(rc == 0 and ("name=\"%s\"" % opt) in out, "gdalinfo --format RSCLIP documents " + opt)

# ---- the index file itself stays GeoPackage's --------------------------------------------------
rc, out, _ = run(["ogrinfo", "-so", idx])
check(rc == 0 and "using driver `GPKG'" in out, "plain index path opens with the GPKG driver")

# ---- tiles layer = the GeoPackage tiles table --------------------------------------------------
rc, _, _ = run(["ogr2ogr", "-preserve_fid", "-f", "GeoJSON", w("tiles_plugin.geojson"), DS, "tiles"])
rc2, _, _ = run(["ogr2ogr", "-preserve_fid", "-f", "GeoJSON", w("tiles_gpkg.geojson"), idx, "tiles"])
if check(rc == 0 and rc2 == 0, "tiles exported from RSCLIP: and from the GPKG table"):
    tp = {f["id"]: f for f in read_geojson(w("tiles_plugin.geojson"))}
    tg = {f["id"]: f for f in read_geojson(w("tiles_gpkg.geojson"))}
    check(len(tp) > 20 and sorted(tp) == sorted(tg), "tiles layer has every tile (fid = tile id)")
    bad = 0
    for fid, g in tg.items():
        p = tp.get(fid)
        if not p:
            bad += 1
            continue
        for k in ["xoff", "yoff", "xsize", "ysize", "lon", "lat", "valid_fraction", "scene_id"]:
            if k in g["properties"] and p["properties"][k] != g["properties"][k]:
                bad += 1
        if not same_ring(ring_of(p["geometry"]), ring_of(g["geometry"]), 1e-9):
            bad += 1
        if p["properties"]["scene"] not in [os.path.relpath(s) for s in SCENES] + SCENES:
            bad += 1
    check(bad == 0, "tiles features equal the GPKG tiles table (window, centre, footprint)")
    tiles = tp
if FULL:
    rc, out, _ = run(["ogrinfo", "-so", DS, "tiles"])
    check(rc == 0 and ("Feature Count: %d" % len(tg)) in out, "tiles GetFeatureCount")

# ---- hits = rsclip search ----------------------------------------------------------------------
K = 12
rc = ref_search(idx, QUERY, K, w("ref_hits.geojson"))
rc2 = ref_search(idx, QUERY, K, w("ref_regions.geojson"), merge=True)
check(rc == 0 and rc2 == 0, "reference: rsclip search, rsclip search --merge")
ref = read_geojson(w("ref_hits.geojson"))
ref_regions = read_geojson(w("ref_regions.geojson"))
rc, _, _ = run(["ogr2ogr", "-preserve_fid", "-f", "GeoJSON", w("hits.geojson"), DS, "-oo", "QUERY=" + QUERY,
                "-oo", "TOP_K=%d" % K, "hits"])
check(rc == 0, "ogr2ogr hits")
hits = read_geojson(w("hits.geojson"))
check(len(hits) == K and len(ref) == K, "hits layer has TOP_K features")
ok = len(hits) == len(ref)
for h, r in zip(hits, ref):
    hp, rp = h["properties"], r["properties"]
    for k in ["rank", "tile_id", "scene", "xoff", "yoff", "xsize", "ysize"]:
        ok = ok and hp[k] == rp[k]
    for k in ["datetime", "stac_item", "stac_collection"]:  # null when unknown
        ok = ok and hp.get(k) == rp.get(k)
    for k in ["prob", "score", "lon", "lat"]:
        ok = ok and abs(hp[k] - rp[k]) <= 1e-7
    ok = ok and h["id"] == hp["rank"]
    ok = ok and same_ring(ring_of(h["geometry"]), ring_of(r["geometry"]), 1e-9)
check(ok, "hits equal rsclip search (order, rank, prob, score, window, footprint, datetime, "
          "STAC ids)")
check(all(hits[i]["properties"]["score"] >= hits[i + 1]["properties"]["score"]
          for i in range(len(hits) - 1)), "hits ranked by score")

if FULL:
    # TOP_K default 100 (more than the tiles: every tile)
    rc, out, _ = run(["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "hits"])
    check(rc == 0 and ("Feature Count: %d" % min(100, len(tiles))) in out, "TOP_K defaults to 100")

    # MIN_PROB drops hits below it (%.17g: the threshold exactly; at %.9g it can round past the
    # K//2-th probability, and the plugin and OGR SQL then disagree with the count below)
    pmin = ref[K // 2]["properties"]["prob"]
    rc, _, _ = run(["ogr2ogr", "-preserve_fid", "-f", "GeoJSON", w("hits_min.geojson"), DS, "-oo", "QUERY=" + QUERY,
                    "-oo", "TOP_K=%d" % K, "-oo", "MIN_PROB=%.17g" % pmin, "hits"])
    hm = read_geojson(w("hits_min.geojson")) if rc == 0 else []
    check(len(hm) == sum(1 for r in ref if r["properties"]["prob"] >= float("%.17g" % pmin)) and
          all(f["properties"]["prob"] >= pmin - 1e-9 for f in hm), "MIN_PROB filters hits")

    # attribute filter and random read
    rc, out, _ = run(["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "TOP_K=%d" % K,
                      "-where", "prob >= %.17g" % pmin, "hits"])
    check(rc == 0 and ("Feature Count: %d" % len(hm)) in out, "attribute filter (-where)")
    rc, out, _ = run(["ogrinfo", DS, "-oo", "QUERY=" + QUERY, "-oo", "TOP_K=%d" % K, "-fid", "3",
                      "hits"])
    check(rc == 0 and "rank (Integer) = 3" in out and
          ("tile_id (Integer64) = %d" % ref[2]["properties"]["tile_id"]) in out,
          "GetFeature(3) is rank 3")

# ---- BBOX restricts the search before ranking; a spatial filter selects among the hits ----------
# The box of the scene whose tiles rank lowest: its best tiles are not in the global top K.
by_scene = {}
for f in tiles.values():
    by_scene.setdefault(f["properties"]["scene_id"], []).append(f)
top_tiles = {r["properties"]["tile_id"] for r in ref}
sid = max(by_scene, key=lambda s: len(by_scene[s]) - sum(1 for f in by_scene[s]
                                                         if f["id"] in top_tiles))
xs = [p[0] for f in by_scene[sid] for p in ring_of(f["geometry"])]
ys = [p[1] for f in by_scene[sid] for p in ring_of(f["geometry"])]
bb = [min(xs), min(ys), max(xs), max(ys)]
box = ogr.CreateGeometryFromWkt("POLYGON((%.10f %.10f,%.10f %.10f,%.10f %.10f,%.10f %.10f,%.10f %.10f))" % (
    bb[0], bb[1], bb[2], bb[1], bb[2], bb[3], bb[0], bb[3], bb[0], bb[1]))
KS = 3
rc, _, _ = run(["ogr2ogr", "-preserve_fid", "-f", "GeoJSON", w("hits_bbox.geojson"), DS, "-oo",
                "QUERY=" + QUERY, "-oo", "TOP_K=%d" % KS, "-oo",
                "BBOX=" + ",".join("%.10f" % v for v in bb), "hits"])
hs = read_geojson(w("hits_bbox.geojson")) if rc == 0 else []
rc = ref_search(idx, QUERY, KS, w("ref_spat.geojson"), bbox=bb)
rs = read_geojson(w("ref_spat.geojson")) if rc == 0 else []
check(len(hs) == min(KS, len(by_scene[sid])), "BBOX: TOP_K hits inside the box")
check([f["properties"]["rank"] for f in hs] == list(range(1, len(hs) + 1)),
      "BBOX: ranks 1..n (ranked after filtering)")
check(all(ogr.CreateGeometryFromJson(json.dumps(f["geometry"])).Intersects(box) for f in hs),
      "BBOX: every hit meets the box")
check([f["properties"]["tile_id"] for f in hs] == [f["properties"]["tile_id"] for f in rs],
      "BBOX: hits equal rsclip search with the same --bbox")
check(any(f["properties"]["tile_id"] not in top_tiles for f in hs),
      "BBOX: finds tiles outside the unfiltered top K")
# -spat: the hits (TOP_K of the whole index) that meet the box, with their ranks and FIDs
rc, _, _ = run(["ogr2ogr", "-preserve_fid", "-f", "GeoJSON", w("hits_spat.geojson"), DS, "-oo",
                "QUERY=" + QUERY, "-oo", "TOP_K=%d" % K, "-spat"] + ["%.10f" % v for v in bb] +
               ["hits"])
hsp = read_geojson(w("hits_spat.geojson")) if rc == 0 else []
want = [r for r in ref if ogr.CreateGeometryFromJson(json.dumps(r["geometry"])).Intersects(box)]
check(rc == 0 and [(f["id"], f["properties"]["tile_id"]) for f in hsp] ==
      [(r["properties"]["rank"], r["properties"]["tile_id"]) for r in want],
      "-spat: the hits meeting the box, FID = rank as without filter (%d of %d)" % (len(hsp), K))

# ---- regions = rsclip search --merge -----------------------------------------------------------
rc, _, _ = run(["ogr2ogr", "-preserve_fid", "-f", "GeoJSON", w("regions.geojson"), DS, "-oo", "QUERY=" + QUERY,
                "-oo", "TOP_K=%d" % K, "-oo", "MERGE=YES", "regions"])
rg = read_geojson(w("regions.geojson")) if rc == 0 else []
check(rc == 0 and len(rg) == len(ref_regions) and len(rg) > 0, "regions layer: same count")
ok = len(rg) == len(ref_regions)
for a, b in zip(rg, ref_regions):
    ap, bp = a["properties"], b["properties"]
    for k in ["region", "tiles", "best_tile"]:
        ok = ok and ap[k] == bp[k]
    for k in ["max_prob", "mean_prob", "max_score", "lon", "lat"]:
        ok = ok and abs(ap[k] - bp[k]) <= 1e-7
    ok = ok and abs(ap["area_m2"] - bp["area_m2"]) <= 1e-6 * bp["area_m2"]
    ga = ogr.CreateGeometryFromJson(str(a["geometry"]).replace("'", '"'))
    gb = ogr.CreateGeometryFromJson(str(b["geometry"]).replace("'", '"'))
    ok = ok and ga.SymDifference(gb).Area() <= 1e-12 * max(gb.Area(), 1e-30) + 1e-15
check(ok, "regions equal rsclip search --merge (properties and geometry)")
if FULL:
    rc, out, _ = run(["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY])
    check(rc == 0 and "regions" not in out and "hits" in out, "no regions layer without MERGE=YES")
    rc, out, _ = run(["ogrinfo", "-so", DS])
    check(rc == 0 and "hits" not in out and "tiles" in out, "no hits layer without QUERY")

    # NEGATIVE and LIKE_TILE are accepted and change the ranking as the C API says
    rc, out, _ = run(["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "NEGATIVE=forest|city",
                      "-oo", "NEGATIVE=river", "hits"])
    check(rc == 0 and "Feature Count" in out, "NEGATIVE (| separated and repeated)")
    t1 = ref[0]["properties"]["tile_id"]
    rc, _, _ = run(["ogr2ogr", "-preserve_fid", "-f", "GeoJSON", w("like.geojson"), DS, "-oo", "LIKE_TILE=%d" % t1,
                    "-oo", "TOP_K=3", "hits"])
    lk = read_geojson(w("like.geojson")) if rc == 0 else []
    check(len(lk) == 3 and lk[0]["properties"]["tile_id"] == t1 and
          abs(lk[0]["properties"]["score"] - 1.0) < 1e-3, "LIKE_TILE: the tile itself ranks first")

# ---- heatmap -----------------------------------------------------------------------------------
rc, out, _ = run(["gdalinfo", "-oo", "QUERY=" + QUERY, DS])
n_sub = out.count("_NAME=RSCLIP:")
check(rc == 0 and n_sub == len(SCENES), "gdalinfo lists one subdataset per scene")
rc = ref_search(idx, QUERY, 1000, w("all.geojson"))
allhits = {f["properties"]["tile_id"]: f["properties"] for f in read_geojson(w("all.geojson"))}
check(len(allhits) == len(tiles), "reference probabilities of every tile")
heat_scenes = sorted(by_scene) if FULL else [max(by_scene, key=lambda s: len(by_scene[s])),
                                             min(by_scene, key=lambda s: len(by_scene[s]))]


def grid_axis(e, t, s):
    """The heatmap grid along one axis (rsclip/query.h): cells, origin, cell size (pixels)."""
    if e <= t:
        return 1, 0.0, float(e)
    a = (t - s) / 2.0 if t > s else 0.0
    k = math.floor((e - 2 * a) / s)
    return (k, a, float(s)) if k >= 1 else (1, a, e - 2 * a)


for sid in heat_scenes:
    scene_tiles = by_scene[sid]
    scene = scene_tiles[0]["properties"]["scene"]
    heat = w("heat_%d.tif" % sid)
    rc, _, _ = run(["gdal_translate", "-q", "-oo", "QUERY=" + QUERY, "%s:%d" % (DS, sid), heat])
    if not check(rc == 0, "gdal_translate heatmap of scene %d" % sid):
        continue
    src = gdal.Open(scene if os.path.isabs(scene) else os.path.join(os.getcwd(), scene))
    hd = gdal.Open(heat)
    step = 256  # the tiling step (default stride = tile size = the model's 256 px)
    W, H = src.RasterXSize, src.RasterYSize
    ex_w, ox, cx = grid_axis(W, step, step)
    ex_h, oy, cy = grid_axis(H, step, step)
    gt, sgt = hd.GetGeoTransform(), src.GetGeoTransform()
    check((hd.RasterXSize, hd.RasterYSize) == (ex_w, ex_h) and
          hd.GetRasterBand(1).DataType == gdal.GDT_Float32 and hd.RasterCount == 1,
          "scene %d (%d x %d px): one Float32 band, %d x %d cells" % (sid, W, H, ex_w, ex_h))
    want_gt = [sgt[0] + ox * sgt[1] + oy * sgt[2], sgt[1] * cx, sgt[2] * cy,
               sgt[3] + ox * sgt[4] + oy * sgt[5], sgt[4] * cx, sgt[5] * cy]
    check(all(abs(gt[i] - want_gt[i]) <= 1e-9 * max(1, abs(want_gt[i])) for i in range(6)),
          "scene %d: geotransform = scene's, at the grid origin, scaled by the cell" % sid)
    # clipped: every corner of the heatmap lies inside the scene
    inv = gdal.InvGeoTransform(sgt)
    inside = True
    for px, py in [(0, 0), (ex_w, 0), (0, ex_h), (ex_w, ex_h)]:
        x = gt[0] + px * gt[1] + py * gt[2]
        y = gt[3] + px * gt[4] + py * gt[5]
        sx, sy = gdal.ApplyGeoTransform(inv, x, y)
        inside = inside and -1e-6 <= sx <= W + 1e-6 and -1e-6 <= sy <= H + 1e-6
    check(inside, "scene %d: no heatmap cell outside the scene" % sid)
    check(hd.GetMetadataItem("STEP") == "256" and hd.GetMetadataItem("STEP_FROM") == "index",
          "scene %d: the step is the stride the index records" % sid)
    s_srs, h_srs = src.GetSpatialRef(), hd.GetSpatialRef()
    check(h_srs is not None and h_srs.IsSame(s_srs), "scene %d: scene CRS" % sid)
    import struct
    vals = struct.unpack("%df" % (ex_w * ex_h), hd.GetRasterBand(1).ReadRaster())
    nd = hd.GetRasterBand(1).GetNoDataValue()
    check(nd is not None and math.isnan(nd), "scene %d: nodata is NaN" % sid)
    wgs = osr.SpatialReference()
    wgs.SetWellKnownGeogCS("WGS84")
    wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    s_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(wgs, s_srs)
    best = {}
    good_pos = 0
    for f in scene_tiles:
        p = allhits[f["id"]]
        # the cell holding the window's centre, clamped to the grid
        col = min(max(int(math.floor((p["xoff"] + p["xsize"] / 2 - ox) / cx)), 0), ex_w - 1)
        row = min(max(int(math.floor((p["yoff"] + p["ysize"] / 2 - oy) / cy)), 0), ex_h - 1)
        best[(col, row)] = max(best.get((col, row), -1.0), p["prob"])
        # the tile's centre (WGS84 -> scene CRS -> heatmap pixel) is in that cell, unless it
        # was clamped (a tile shifted back to the edge, in the strip past the last whole cell)
        x, y, _ = ct.TransformPoint(p["lon"], p["lat"])
        hx, hy = gdal.ApplyGeoTransform(gdal.InvGeoTransform(gt), x, y)
        clamped = not (0 <= hx < ex_w and 0 <= hy < ex_h)
        good_pos += clamped or (int(math.floor(hx)), int(math.floor(hy))) == (col, row)
    good_val = sum(abs(vals[r * ex_w + c] - v) <= 2e-3 for (c, r), v in best.items())
    check(good_val == len(best),
          "scene %d: each cell = the best probability of its tiles (%d/%d cells, %d tiles)" % (
              sid, good_val, len(best), len(scene_tiles)))
    check(good_pos == len(scene_tiles), "scene %d: tile centres fall in their cells" % sid)
    empty = [vals[r * ex_w + c] for r in range(ex_h) for c in range(ex_w) if (c, r) not in best]
    check(all(math.isnan(v) for v in empty), "scene %d: nodata where no tile (%d cells)" %
          (sid, len(empty)))

# ---- in-process API behaviour (python bindings): polygon filter, read-only, counts --------------
gdal.SetConfigOption("CPL_LOG", None)
ds = gdal.OpenEx(DS, gdal.OF_VECTOR, open_options=["QUERY=" + QUERY, "TOP_K=%d" % K])
lyr = ds.GetLayerByName("hits")
check(lyr.GetFeatureCount() == K and lyr.TestCapability(ogr.OLCRandomRead),
      "python: count and random read")
check(ds.GetLayerCount() == 2 and ds.GetLayerByName("regions") is None,
      "python: tiles and hits layers, no regions without MERGE=YES")
check(ds.GetLayerByName("tiles").GetFeatureCount() == len(tg), "python: tiles GetFeatureCount")
pcut = ref[K // 2]["properties"]["prob"]
lyr.SetAttributeFilter("prob >= %.17g" % pcut)
check(lyr.GetFeatureCount() == sum(1 for r in ref if r["properties"]["prob"] >= pcut) and
      all(f.GetField("prob") >= pcut for f in lyr), "python: attribute filter")
lyr.SetAttributeFilter(None)
f3 = lyr.GetFeature(3)
check(f3 is not None and f3.GetField("rank") == 3 and
      f3.GetField("tile_id") == ref[2]["properties"]["tile_id"], "python: GetFeature(3) is rank 3")
ext = lyr.GetExtent()
check(ext[0] < ext[1] and ext[2] < ext[3], "python: GetExtent")
f0 = ref[0]
tri_pts = [(f0["properties"]["lon"], f0["properties"]["lat"])]
tri = ogr.CreateGeometryFromWkt("POLYGON((%.9f %.9f,%.9f %.9f,%.9f %.9f,%.9f %.9f))" % (
    tri_pts[0][0] - 1e-4, tri_pts[0][1] - 1e-4, tri_pts[0][0] + 1e-4, tri_pts[0][1] - 1e-4,
    tri_pts[0][0], tri_pts[0][1] + 1e-4, tri_pts[0][0] - 1e-4, tri_pts[0][1] - 1e-4))
lyr.SetSpatialFilter(tri)
got = [f.GetField("tile_id") for f in lyr]
check(len(got) >= 1 and got[0] == f0["properties"]["tile_id"] and
      all(ogr.CreateGeometryFromJson(str(tiles[t]["geometry"]).replace("'", '"')).Intersects(tri)
          for t in got), "python: polygon spatial filter (footprints meeting the triangle)")
lyr.SetSpatialFilter(None)
check(lyr.GetFeatureCount() == K, "python: clearing the spatial filter restores the hits")
gdal.DontUseExceptions()
ogr.DontUseExceptions()
gdal.PushErrorHandler("CPLQuietErrorHandler")
gdal.ErrorReset()
feat = ogr.Feature(lyr.GetLayerDefn())
err = lyr.CreateFeature(feat)
msg = gdal.GetLastErrorMsg()
check(err == ogr.OGRERR_UNSUPPORTED_OPERATION and "read-only" in msg,
      "CreateFeature fails: " + msg)
gdal.ErrorReset()
err = lyr.CreateField(ogr.FieldDefn("x", ogr.OFTInteger))
check(err != 0 and "read-only" in gdal.GetLastErrorMsg(), "CreateField fails")
gdal.ErrorReset()
err = lyr.DeleteFeature(1)
check(err == ogr.OGRERR_UNSUPPORTED_OPERATION and "read-only" in gdal.GetLastErrorMsg(),
      "DeleteFeature fails")
tl = ds.GetLayerByName("tiles")
ft = tl.GetFeature(f0["properties"]["tile_id"])
check(ft is not None and ft.GetFID() == f0["properties"]["tile_id"], "tiles: GetFeature(tile id)")
check(tl.GetFeature(10 ** 9) is None, "tiles: GetFeature(missing) is NULL")
gdal.PopErrorHandler()
ds = None

# ---- clean errors ------------------------------------------------------------------------------
with open(w("not_an_index.gpkg"), "wb") as fh:
    fh.write(b"this is not a database\n" * 100)
run(["ogr2ogr", "-f", "GPKG", w("other.gpkg"), w("hits.geojson")])
bad = [
    (["ogrinfo", "-so", "RSCLIP:" + w("not_an_index.gpkg")], "not_an_index.gpkg"),
    (["ogrinfo", "-so", "RSCLIP:" + w("other.gpkg")], "other.gpkg"),
    (["ogrinfo", "-so", "RSCLIP:" + SCENES[0]], os.path.basename(SCENES[0])),
    (["ogrinfo", "-so", "RSCLIP:" + w("missing.gpkg")], "missing.gpkg"),
    (["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "TOP_K=0"], "TOP_K"),
    (["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "TOP_K=many"], "TOP_K"),
    (["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "MIN_PROB=2"], "MIN_PROB"),
    (["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "MERGE=perhaps"], "MERGE"),
    (["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "TEMPLATE=no slot"], "TEMPLATE"),
    (["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "MODEL=" + w("no_model")],
     "no_model"),
    (["ogrinfo", "-so", DS, "-oo", "LIKE_TILE=999999"], "999999"),
    (["ogrinfo", "-so", DS, "-oo", "MERGE=YES"], "MERGE"),
    (["gdalinfo", DS], "QUERY"),
    (["gdal_translate", "-oo", "QUERY=" + QUERY, DS + ":99999", w("x.tif")], "99999"),
]
if not FULL:
    bad = [bad[0], bad[3], bad[4], bad[9], bad[12]]
# the query's rules are the library's (rsclip_query_check): its reason, with the options given
bad += [
    (["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "TOP_K=1000001"],
     "TOP_K=1000001: k must be within 1..1000000"),
    (["ogrinfo", "-so", DS, "-oo", "QUERY= "], "the query text is empty"),
    (["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "BBOX=3,0,1,1"], "west <= east"),
    (["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "LIKE_TILE=3"], "only one query"),
    # given but empty is refused, not taken as absent
    (["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "TEMPLATE="], "TEMPLATE="),
    (["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "AFTER="], "AFTER="),
    (["ogrinfo", "-so", DS, "-oo", "AFTER="], "AFTER"),
    (["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "NEGATIVE="], "negative query 1 is empty"),
    (["ogrinfo", "-so", DS, "-oo", "QUERY=" + QUERY, "-oo", "NEGATIVE=a||b"], "negative query 2 is empty"),
]
for args, needle in bad:
    rc, out, err = run(args, expect_ok=False)
    text = out + err
    check(rc > 0 and "ERROR" in text and needle in text and "Traceback" not in text,
          "clean error for %s (rc %d): %s" % (" ".join(a if len(a) < 40 else "..." + a[-30:]
                                                      for a in args[1:]), rc,
                                             " | ".join(l for l in text.splitlines()
                                                        if "ERROR" in l)[:200]))

finish()
