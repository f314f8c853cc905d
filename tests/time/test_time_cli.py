#!/usr/bin/python3
"""Time and STAC end to end (issue 15): where a scene's time comes from, STAC 1.0.0 Items,
ItemCollections and Catalog -> Collection -> Items with relative links (local and over HTTP),
time filters, --latest and change queries, with the real binary on rasters made with GDAL.

Usage: test_time_cli.py GROUP   (sources, stac, http, filters, change; see CMakeLists.txt)
"""
import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
from osgeo import gdal, ogr, osr

gdal.UseExceptions()

BIN = os.environ.get("RSCLIP_BIN", "build/core/rsclip")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rsclip_testlib import check, failures, run  # noqa: E402  (the tests' shared helpers)
SRC = os.environ.get("RSCLIP_SOURCE_DIR", ".")
FIX = os.environ.get("RSCLIP_FIXTURES", os.path.join(SRC, "tests", "fixtures"))
MODEL = os.path.join(FIX, "siglip-tiny")
S2 = os.path.join(SRC, "samples", "s2_aberystwyth_20210527_b2-b3-b4-nir_10m_epsg27700.tif")


def index(ix, inputs, extra=(), rc=0):
    return run(["index", "-q", "-m", MODEL, "-o", ix] + list(extra) + list(inputs), check_rc=rc)


def scenes(ix):
    """path -> scene of `rsclip info --json`."""
    d = json.loads(run(["info", "--json", ix], check_rc=0).stdout)
    return {os.path.basename(s["path"]): s for s in d["scene_list"]}


def raster(path, tiff_datetime=None, shift=0, invert=None, imagery=None, side=None):
    """A copy of the Sentinel-2 sample: cut from (shift, shift), optionally with a
    TIFFTAG_DATETIME, an IMAGERY-domain ACQUISITIONDATETIME, and the upper-left invert x invert
    pixels inverted (another picture of the same ground)."""
    src = gdal.Open(S2)
    w = side or src.RasterXSize - shift
    h = side or src.RasterYSize - shift
    md = ["TIFFTAG_DATETIME=" + tiff_datetime] if tiff_datetime else []
    ds = gdal.Translate(path, src, srcWin=[shift, shift, w, h], metadataOptions=md)
    if imagery:
        ds.SetMetadataItem("ACQUISITIONDATETIME", imagery, "IMAGERY")
    if invert:
        for b in range(1, ds.RasterCount + 1):
            a = ds.GetRasterBand(b).ReadAsArray()
            a[:invert, :invert] = a.max() - a[:invert, :invert]
            ds.GetRasterBand(b).WriteArray(a)
    ds = None
    return path


def footprint(path):
    """WGS84 bbox and polygon of a raster (for the STAC item's bbox and geometry)."""
    ds = gdal.Open(path)
    gt = ds.GetGeoTransform()
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(srs, wgs)
    xs, ys = [0, ds.RasterXSize], [0, ds.RasterYSize]
    pts = [ct.TransformPoint(gt[0] + x * gt[1], gt[3] + y * gt[5])[:2]
           for x, y in [(xs[0], ys[0]), (xs[1], ys[0]), (xs[1], ys[1]), (xs[0], ys[1])]]
    lons, lats = [p[0] for p in pts], [p[1] for p in pts]
    bbox = [min(lons), min(lats), max(lons), max(lats)]
    return bbox, {"type": "Polygon", "coordinates": [pts + [pts[0]]]}


def item(item_id, tif_href, tif_path, props, collection=None, links=(), extra_assets=None):
    bbox, geom = footprint(tif_path)
    assets = {
        "thumbnail": {"href": "./thumb.png", "type": "image/png", "roles": ["thumbnail"]},
        "visual": {"href": tif_href, "type": "image/tiff; application=geotiff",
                   "roles": ["visual"]},
    }
    assets.update(extra_assets or {})
    d = {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "geometry": geom,
         "bbox": bbox, "properties": props, "links": list(links), "assets": assets}
    if collection:
        d["collection"] = collection
    return d


def write_json(path, d):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(d, f, indent=1)


def check_stac_fields(d, where):
    """The required fields of STAC 1.0.0 (no validator on this machine: checked by hand)."""
    t = d.get("type")
    if t == "Feature":
        need = ["stac_version", "id", "geometry", "bbox", "properties", "links", "assets"]
        p = d.get("properties", {})
        check("datetime" in p, "%s: an Item needs properties.datetime (null with start/end)" % where)
        if p.get("datetime") is None:
            check("start_datetime" in p and "end_datetime" in p,
                  "%s: datetime null needs start_datetime and end_datetime" % where)
    elif t == "FeatureCollection":
        need = ["features"]
        for i, f in enumerate(d["features"]):
            check_stac_fields(f, "%s[%d]" % (where, i))
    elif t == "Catalog":
        need = ["stac_version", "id", "description", "links"]
    elif t == "Collection":
        need = ["stac_version", "id", "description", "license", "extent", "links"]
    else:
        need = ["type"]
    for k in need:
        check(k in d, "%s: STAC %s without required field %s" % (where, t, k))


def catalog(root, rasters):
    """root/catalog.json -> root/coll/collection.json -> root/coll/ITEM/ITEM.json (relative
    links both ways, assets relative to each item). rasters: (item id, tif path, properties)."""
    write_json(os.path.join(root, "catalog.json"), {
        "type": "Catalog", "stac_version": "1.0.0", "id": "root", "description": "test catalogue",
        "links": [{"rel": "root", "href": "./catalog.json"},
                  {"rel": "child", "href": "./coll/collection.json"}]})
    coll = {"type": "Collection", "stac_version": "1.0.0", "id": "aber", "description": "two dates",
            "license": "proprietary",
            "extent": {"spatial": {"bbox": [[-4.2, 52.3, -3.9, 52.5]]},
                       "temporal": {"interval": [["2019-01-01T00:00:00Z", None]]}},
            "links": [{"rel": "root", "href": "../catalog.json"},
                      {"rel": "parent", "href": "../catalog.json"}]}
    for item_id, tif, props in rasters:
        folder = os.path.join(root, "coll", item_id)
        os.makedirs(folder, exist_ok=True)
        local = shutil.copy(tif, os.path.join(folder, item_id + ".tif"))
        coll["links"].append({"rel": "item", "href": "./%s/%s.json" % (item_id, item_id)})
        write_json(os.path.join(folder, item_id + ".json"),
                   item(item_id, "./%s.tif" % item_id, local, props, "aber",
                        [{"rel": "root", "href": "../../catalog.json"},
                         {"rel": "parent", "href": "../collection.json"},
                         {"rel": "collection", "href": "../collection.json"}]))
    write_json(os.path.join(root, "coll", "collection.json"), coll)
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".json"):
                with open(os.path.join(dirpath, f)) as fh:
                    check_stac_fields(json.load(fh), f)
    return os.path.join(root, "catalog.json")


def csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


# ---- groups ------------------------------------------------------------------------------------

def group_sources(tmp):
    """Where a scene's time comes from, in order; unknown stays unknown."""
    a = raster(os.path.join(tmp, "tiff.tif"), "2019:06:01 10:11:12", side=300)
    b = raster(os.path.join(tmp, "imagery.tif"), imagery="2020-07-02T03:04:05Z", side=300)
    c = raster(os.path.join(tmp, "S2B_MSIL2A_20210527T112119_N0300_R037_T30UVD.tif"), side=300)
    d = raster(os.path.join(tmp, "plain.tif"), side=300)
    ix = os.path.join(tmp, "a.gpkg")
    index(ix, [a, b, c, d], ["--datetime-from-name", "sentinel2"])
    sc = scenes(ix)
    check(sc["tiff.tif"]["datetime"] == "2019-06-01T10:11:12Z" and
          sc["tiff.tif"]["datetime_source"] == "metadata", "TIFFTAG_DATETIME read: %s" % sc["tiff.tif"])
    check(sc["imagery.tif"]["datetime"] == "2020-07-02T03:04:05Z",
          "IMAGERY ACQUISITIONDATETIME read: %s" % sc["imagery.tif"]["datetime"])
    s2 = sc["S2B_MSIL2A_20210527T112119_N0300_R037_T30UVD.tif"]
    check(s2["datetime"] == "2021-05-27T11:21:19Z" and s2["datetime_source"] == "name",
          "Sentinel-2 product name read: %s" % s2)
    check(sc["plain.tif"]["datetime"] is None and sc["plain.tif"]["start_datetime"] is None,
          "no time known stays NULL (never the file's mtime): %s" % sc["plain.tif"])
    # --datetime (an interval) wins over the file's metadata, for every input of the run
    ix2 = os.path.join(tmp, "b.gpkg")
    index(ix2, [a, d], ["--datetime", "2018-05-01/2018-05-31"])
    sc = scenes(ix2)
    for n in ("tiff.tif", "plain.tif"):
        check(sc[n]["start_datetime"] == "2018-05-01T00:00:00Z" and
              sc[n]["end_datetime"].startswith("2018-05-31T23:59:59") and
              sc[n]["datetime_source"] == "option", "--datetime interval stored: %s" % sc[n])
    # a user pattern with named groups
    e = raster(os.path.join(tmp, "scene_2017-03-04.tif"), side=300)
    ix3 = os.path.join(tmp, "c.gpkg")
    index(ix3, [e], ["--datetime-from-name", r"scene_(?<year>\d{4})-(?<month>\d\d)-(?<day>\d\d)"])
    got = scenes(ix3)["scene_2017-03-04.tif"]
    check(got["start_datetime"] == "2017-03-04T00:00:00Z" and
          got["end_datetime"].startswith("2017-03-04T23:59:59") and got["datetime_source"] == "name",
          "named-group pattern read (a day is that whole day): %s" % got)
    # bad values are usage errors naming the problem
    p = run(["index", "-q", "-m", MODEL, "-o", ix3, "--datetime", "2019-13-01", e])
    check(p.returncode == 2 and "2019-13-01" in p.stderr, "bad --datetime refused: %s" % p.stderr)
    p = run(["index", "-q", "-m", MODEL, "-o", ix3, "--datetime-from-name", "(?<year>", e])
    check(p.returncode == 2 and "datetime-from-name" in p.stderr, "bad pattern refused: %s" % p.stderr)
    # the info table shows the time
    out = run(["info", ix], check_rc=0).stdout
    check("datetime" in out and "2019-06-01T10:11:12Z" in out, "info table shows times")


def group_stac(tmp):
    """Item, ItemCollection and Catalog -> Collection -> Items; assets; ids on hits; bad items."""
    a = raster(os.path.join(tmp, "src_a.tif"), "2000:01:01 00:00:00", side=512)
    b = raster(os.path.join(tmp, "src_b.tif"), shift=100, invert=300, side=512)
    root = os.path.join(tmp, "cat")
    cat = catalog(root, [("a2019", a, {"datetime": "2019-06-01T10:00:00Z"}),
                         ("b2023", b, {"datetime": None, "start_datetime": "2023-06-01T00:00:00Z",
                                       "end_datetime": "2023-06-30T23:59:59Z"})])
    ix = os.path.join(tmp, "cat.gpkg")
    index(ix, [cat])
    sc = {s["stac_item"]: s for s in scenes(ix).values()}
    check(set(sc) == {"a2019", "b2023"}, "catalogue walked to both items: %s" % list(sc))
    if set(sc) == {"a2019", "b2023"}:
        check(sc["a2019"]["datetime"] == "2019-06-01T10:00:00Z" and
              sc["a2019"]["datetime_source"] == "stac",
              "the item's datetime wins over the raster's TIFFTAG_DATETIME: %s" % sc["a2019"])
        check(sc["b2023"]["start_datetime"] == "2023-06-01T00:00:00Z" and
              sc["b2023"]["datetime"] is None, "start/end_datetime of an item: %s" % sc["b2023"])
        check(all(s["stac_collection"] == "aber" and s["stac_asset"] == "visual"
                  for s in sc.values()), "collection and asset recorded")
        check(sc["a2019"]["path"].endswith("coll/a2019/a2019.tif"),
              "asset href resolved against the item: %s" % sc["a2019"]["path"])
    # hits carry the item, collection and time
    rows = csv_rows(run(["search", ix, "coast", "-k", "50", "-of", "CSV"], check_rc=0).stdout)
    check(rows and all(r["stac_item"] in ("a2019", "b2023") and r["stac_collection"] == "aber"
                       for r in rows), "hits carry STAC ids")
    check(any(r["datetime"] == "2019-06-01T10:00:00Z" for r in rows), "hits carry datetime")
    # an ItemCollection (a saved search result) of the same items; --asset picks another asset
    items = []
    for i in ("a2019", "b2023"):
        with open(os.path.join(root, "coll", i, i + ".json")) as f:
            d = json.load(f)
        d["assets"]["data"] = dict(d["assets"]["visual"])
        d["assets"]["data"]["href"] = os.path.abspath(os.path.join(root, "coll", i, i + ".tif"))
        del d["assets"]["visual"]
        items.append(d)
    ic = os.path.join(tmp, "search.json")
    write_json(ic, {"type": "FeatureCollection", "features": items})
    check_stac_fields(json.load(open(ic)), "search.json")
    ix2 = os.path.join(tmp, "ic.gpkg")
    index(ix2, [ic], ["--asset", "data"])
    sc2 = scenes(ix2)
    check(len(sc2) == 2 and all(s["stac_asset"] == "data" for s in sc2.values()),
          "ItemCollection with --asset data: %s" % [s["stac_asset"] for s in sc2.values()])
    # default asset without "visual": the first that says it is an image the tiler reads
    ix3 = os.path.join(tmp, "ic3.gpkg")
    index(ix3, [ic])
    check(all(s["stac_asset"] == "data" for s in scenes(ix3).values()),
          "default asset falls back to the first raster asset (not the PNG thumbnail)")
    # one Item file alone
    ix4 = os.path.join(tmp, "one.gpkg")
    index(ix4, [os.path.join(root, "coll", "a2019", "a2019.json")])
    check([s["stac_item"] for s in scenes(ix4).values()] == ["a2019"], "a single Item indexes")
    # bad STAC fails that item only: missing asset, unreachable href, not JSON, wrong type
    bad = os.path.join(tmp, "bad")
    good = json.load(open(os.path.join(root, "coll", "a2019", "a2019.json")))
    good["assets"]["visual"]["href"] = os.path.abspath(os.path.join(root, "coll", "a2019",
                                                                    "a2019.tif"))
    noasset = dict(good, id="noasset", assets={"thumbnail": good["assets"]["thumbnail"]})
    gone = json.loads(json.dumps(good))
    gone["id"] = "gone"
    gone["assets"]["visual"]["href"] = os.path.join(tmp, "missing.tif")
    write_json(os.path.join(bad, "good.json"), good)
    write_json(os.path.join(bad, "noasset.json"), noasset)
    write_json(os.path.join(bad, "gone.json"), gone)
    with open(os.path.join(bad, "notjson.json"), "w") as f:
        f.write("<html>captive portal</html>")
    write_json(os.path.join(bad, "wrongtype.json"), {"type": "Point", "coordinates": [0, 0]})
    ix5 = os.path.join(tmp, "bad.gpkg")
    p = index(ix5, [os.path.join(bad, n) for n in
                    ("good.json", "noasset.json", "gone.json", "notjson.json", "wrongtype.json")],
              rc=3)
    check([s["stac_item"] for s in scenes(ix5).values()] == ["a2019"],
          "the good item is indexed beside the bad ones")
    for n in ("noasset", "gone", "notjson", "wrongtype"):
        check(n in p.stderr, "bad item %s named on stderr: %s" % (n, p.stderr[-1500:]))
    # items in a deterministic order: two shards of the catalogue hold both items, once each
    parts = os.path.join(tmp, "parts")
    for i in range(2):
        index(parts, [cat], ["--shard", "%d/2" % i])
    got = sorted(s["stac_item"] for s in scenes(parts).values())
    check(got == ["a2019", "b2023"], "sharded catalogue holds each item once: %s" % got)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


RANGE_SERVER = r"""
import http.server, os, re, sys
class H(http.server.SimpleHTTPRequestHandler):
    def send_head(self):
        m = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
        path = self.translate_path(self.path)
        if not m or not os.path.isfile(path):
            return super().send_head()
        data = open(path, "rb").read()
        a = int(m.group(1)); b = int(m.group(2)) if m.group(2) else len(data) - 1
        b = min(b, len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", "bytes %d-%d/%d" % (a, b, len(data)))
        self.send_header("Content-Length", str(b - a + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        import io
        return io.BytesIO(data[a:b + 1])
    def log_message(self, *a):
        pass
os.chdir(sys.argv[2])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def group_http(tmp):
    """A static catalogue over HTTP (GDAL's /vsicurl/), relative links resolved against URLs."""
    a = raster(os.path.join(tmp, "src_a.tif"), side=300)
    root = os.path.join(tmp, "www")
    catalog(root, [("a2019", a, {"datetime": "2019-06-01T10:00:00Z"})])
    port = free_port()
    srv = subprocess.Popen([sys.executable, "-c", RANGE_SERVER, str(port), root],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        ix = os.path.join(tmp, "http.gpkg")
        index(ix, ["http://127.0.0.1:%d/catalog.json" % port])
        sc = list(scenes(ix).values())
        check(len(sc) == 1 and sc[0]["stac_item"] == "a2019" and
              sc[0]["path"] == "/vsicurl/http://127.0.0.1:%d/coll/a2019/a2019.tif" % port,
              "catalogue over HTTP: %s" % [(s["stac_item"], s["path"]) for s in sc])
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(timeout=10)


def two_dates(tmp, untimed=False):
    a = raster(os.path.join(tmp, "a2019.tif"), "2019:06:01 10:00:00")
    b = raster(os.path.join(tmp, "b2023.tif"), "2023:06:01 10:00:00", shift=100, invert=300)
    inputs = [a, b]
    if untimed:
        inputs.append(raster(os.path.join(tmp, "c_untimed.tif"), side=512))
    ix = os.path.join(tmp, "two.gpkg")
    index(ix, inputs)
    return ix


def group_filters(tmp):
    """--after/--before (untimed scenes left out and counted), --latest."""
    ix = two_dates(tmp, untimed=True)
    sc = scenes(ix)
    ids = {n: s["id"] for n, s in sc.items()}

    def hits(*extra):
        p = run(["search", ix, "coast", "-k", "200", "-of", "CSV"] + list(extra), check_rc=0)
        return csv_rows(p.stdout), p.stderr

    every, _ = hits()
    check(len(every) == sum(s["tiles"] for s in sc.values()), "no filter: every tile")
    after, err = hits("--after", "2022")
    check(after and all(r["datetime"].startswith("2023") for r in after),
          "--after 2022: only 2023 tiles")
    check("1 scene without a time was left out" in err, "untimed scene counted: %s" % err)
    before, _ = hits("--before", "2019-06")
    check(before and all(r["datetime"].startswith("2019") for r in before),
          "--before 2019-06 (the whole month included): only 2019 tiles")
    both, _ = hits("--after", "2019-06-01T10:00:00Z", "--before", "2019-06-01T10:00:00Z")
    check(len(both) == sc["a2019.tif"]["tiles"], "an instant matches itself (closed bounds)")
    none, err = hits("--after", "2024")
    check(not none and "no hits" in err, "a window with no scene: no hits, said why: %s" % err)
    check("no scene's time meets the time filter" in err and "1 scene without a time left out" in err,
          "the reason counts the untimed scenes over every part: %s" % err)
    p = run(["search", ix, "coast", "--after", "2023", "--before", "2019"])
    check(p.returncode == 2 or "later than" in p.stderr, "after later than before refused")
    p = run(["search", ix, "coast", "--after", "yesterday"])
    check(p.returncode == 2 and "yesterday" in p.stderr, "a bad time is a usage error")
    # --latest: no 2019 tile survives where a 2023 tile overlaps it among the hits
    latest, err = hits("--latest", "-k", "200")
    geoms = {}
    for r in latest:
        geoms[r["tile_id"]] = (r["datetime"], ogr.CreateGeometryFromWkt(r["WKT"]))
    for tid, (dt, g) in geoms.items():
        if dt and dt.startswith("2019"):
            for tid2, (dt2, g2) in geoms.items():
                if dt2 and dt2.startswith("2023") and g.Intersects(g2):
                    inter = g.Intersection(g2).GetArea()
                    check(inter < 0.1 * min(g.GetArea(), g2.GetArea()),
                          "--latest kept 2019 tile %s under 2023 tile %s" % (tid, tid2))
    check(len(latest) < len(every) and "--latest" in err, "--latest dropped older tiles: %s" % err)
    # an untimed tile counts as the oldest: none survives under a dated one
    for r in latest:
        if r["scene"].endswith("c_untimed.tif"):
            g = ogr.CreateGeometryFromWkt(r["WKT"])
            for dt2, g2 in geoms.values():
                if dt2:
                    check(g.Intersection(g2).GetArea() < 0.1 * g.GetArea(),
                          "--latest kept an untimed tile under a dated one")
    del ids


def group_change(tmp):
    """--change: the altered corner rises first; fields; filters; merge; export; errors."""
    ix = two_dates(tmp)
    sc = scenes(ix)
    # the query: the later scene's altered upper-left tile itself, so that its place rises most
    every = csv_rows(run(["search", ix, "coast", "-k", "100", "-of", "CSV"], check_rc=0).stdout)
    ul_tile = [r["tile_id"] for r in every if r["scene"].endswith("b2023.tif") and
               r["xoff"] == "0" and r["yoff"] == "0"]
    check(len(ul_tile) == 1, "the later scene has an upper-left tile")
    q = ["--like-tile", ul_tile[0]]
    p = run(["search", ix] + q + ["--change", "2019/2023", "-k", "50", "-of", "CSV"], check_rc=0)
    rows = csv_rows(p.stdout)
    check(rows, "changes found")
    if not rows:
        return
    for r in rows:
        check(r["datetime"].startswith("2023") and r["from_datetime"].startswith("2019"),
              "both datetimes: %s %s" % (r["datetime"], r["from_datetime"]))
        check(abs(float(r["prob"]) - float(r["prob_from"]) - float(r["rise"])) < 1e-5,
              "rise = prob - prob_from")
        check(0.5 <= float(r["coverage"]) <= 1.0, "coverage at least half: %s" % r["coverage"])
    rises = [float(r["rise"]) for r in rows]
    check(rises == sorted(rises, reverse=True), "ranked by rise")
    # the rise agrees with the exact vectors (brute force over the stored embeddings)
    check(len(rows) <= sc["b2023.tif"]["tiles"], "one change per later tile at most")
    # the altered ground rose the most (its later tile is the query: probability at its top)
    check(rows[0]["tile_id"] == ul_tile[0] and rises[0] > 0 and
          rows[0]["scene"].endswith("b2023.tif") and rows[0]["from_scene"].endswith("a2019.tif"),
          "the altered corner rises first: %s" % [(r["tile_id"], r["rise"]) for r in rows[:3]])
    # its earlier coverage, recomputed here: the 2019 tiles meeting it, weighted by shared area
    early = {r["tile_id"]: r for r in every if r["scene"].endswith("a2019.tif")}
    g0 = ogr.CreateGeometryFromWkt(rows[0]["WKT"])
    probs = {r["tile_id"]: float(r["prob"]) for r in csv_rows(run(
        ["search", ix] + q + ["-k", "100", "-of", "CSV"], check_rc=0).stdout)}
    wsum = psum = 0.0
    for tid, r in early.items():
        a = g0.Intersection(ogr.CreateGeometryFromWkt(r["WKT"])).GetArea()
        if a > 1e-9 * g0.GetArea():
            wsum += a
            psum += a * probs[tid]
    check(wsum > 0 and abs(psum / wsum - float(rows[0]["prob_from"])) < 2e-3,
          "prob_from is the area-weighted earlier probability: %.5f vs %s"
          % (psum / wsum if wsum else -1, rows[0]["prob_from"]))
    # both tile ids name real tiles of the right scenes
    tid = {int(r["tile_id"]) for r in rows}
    fid = {int(r["from_tile_id"]) for r in rows}
    check(not (tid & fid), "later and earlier tile ids differ")
    # with --bbox: only later tiles meeting the box
    g = ogr.CreateGeometryFromWkt(rows[0]["WKT"])
    env = g.GetEnvelope()
    box = "%f,%f,%f,%f" % (env[0] + 1e-4, env[2] + 1e-4, env[1] - 1e-4, env[3] - 1e-4)
    p = run(["search", ix, "coast", "--change", "2019/2023", "--bbox", box, "-of", "CSV"], check_rc=0)
    boxed = csv_rows(p.stdout)
    check(boxed and all(ogr.CreateGeometryFromWkt(r["WKT"]).Intersects(g) for r in boxed) and
          len(boxed) < len(rows), "--bbox restricts the later tiles")
    # --not changes the scores, still ranked by rise
    p = run(["search", ix, "coast", "--not", "clouds", "--change", "2019/2023", "-of", "CSV"], check_rc=0)
    neg = csv_rows(p.stdout)
    check(neg and [float(r["rise"]) for r in neg] == sorted([float(r["rise"]) for r in neg],
                                                           reverse=True), "--not with --change")
    # --merge: regions with the largest and mean rise
    out = os.path.join(tmp, "regions.gpkg")
    run(["search", ix, "coast", "--change", "2019/2023", "--merge", "-o", out], check_rc=0)
    ds = ogr.Open(out)
    lyr = ds.GetLayerByName("regions")
    names = [lyr.GetLayerDefn().GetFieldDefn(i).GetName()
             for i in range(lyr.GetLayerDefn().GetFieldCount())]
    check("max_rise" in names and "mean_rise" in names and lyr.GetFeatureCount() >= 1,
          "--merge regions carry rises: %s" % names)
    ds = None
    # export to GeoPackage: a "changes" layer QGIS opens
    out = os.path.join(tmp, "changes.gpkg")
    run(["search", ix, "coast", "--change", "2019/2023", "-k", "5", "-o", out], check_rc=0)
    ds = ogr.Open(out)
    lyr = ds.GetLayerByName("changes")
    check(lyr is not None and lyr.GetFeatureCount() == min(5, len(rows)),
          "changes layer exported")
    ds = None
    p = run(["search", ix, "coast", "--change", "2019/2023", "-o", out])
    check(p.returncode == 1 and "already" in p.stderr and "--overwrite" in p.stderr,
          "an existing layer is not overwritten: %s" % p.stderr)
    # errors: reversed or overlapping periods, open ends, mixing with --after
    for bad in ("2023/2019", "2019/2019", "2019", "../2023", "2019/2023/2024"):
        p = run(["search", ix, "coast", "--change", bad])
        check(p.returncode == 2 and "change" in p.stderr, "--change %s refused: %s" % (bad, p.stderr))
    p = run(["search", ix, "coast", "--change", "2019/2023", "--after", "2020"])
    check(p.returncode == 2, "--change with --after refused")
    # periods with no scene: no changes, said why, exit 0
    p = run(["search", ix, "coast", "--change", "2010/2011"], check_rc=0)
    check("no changes" in p.stderr, "empty change query says why: %s" % p.stderr)
    # spans with three slashes
    p = run(["search", ix, "coast", "--change", "2019-01/2019-12/2023-01/2023-12", "-of", "CSV"],
            check_rc=0)
    check(len(csv_rows(p.stdout)) == min(20, len(csv_rows(run(
        ["search", ix, "coast", "--change", "2019/2023", "-of", "CSV"], check_rc=0).stdout))),
        "two spans A/B/C/D")


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    fn = globals().get("group_" + sys.argv[1])
    if not fn:
        raise SystemExit("unknown group " + sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="rsclip_time_")
    try:
        fn(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        raise SystemExit("%d failure(s)" % len(failures))
    print("ok")


if __name__ == "__main__":
    main()
