#!/usr/bin/python3
"""QGIS (headless) opens a query through the RSCLIP driver and the index file as a footprint
layer. Skipped (exit 77) when python3-qgis is not installed."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plugin_common import (MODEL, RSCLIP, SCENES, build_index, check, finish,  # noqa: E402
                           read_geojson, ref_search, run)

try:
    from qgis.core import QgsApplication, QgsRasterLayer, QgsVectorLayer
except ImportError:
    print("python3-qgis is not installed: skipped")
    sys.exit(77)
if os.environ.get("RSCLIP_PRELOAD"):
    print("sanitizer build: QGIS is not run under the sanitizer runtime: skipped")
    sys.exit(77)

os.environ["QT_QPA_PLATFORM"] = "offscreen"
work = os.path.abspath(sys.argv[1])
idx = build_index(work)
rc = ref_search(idx, "lake", 5, os.path.join(work, "ref.geojson"))
ref = read_geojson(os.path.join(work, "ref.geojson"))
check(rc == 0 and len(ref) == 5, "reference search")
ref_search(idx, "lake", 1000, os.path.join(work, "all.geojson"))
all_tiles = read_geojson(os.path.join(work, "all.geojson"))

app = QgsApplication([], False)
app.setPrefixPath("/usr", True)
app.initQgis()

# A query, as typed into the data source manager (Vector > Layer > Database/File)
uri = "RSCLIP:%s|layername=hits|option:QUERY=lake|option:TOP_K=5" % idx
hits = QgsVectorLayer(uri, "hits", "ogr")
check(hits.isValid(), "QGIS: RSCLIP hits layer is valid")
if hits.isValid():
    feats = sorted(hits.getFeatures(), key=lambda f: f["rank"])
    check(hits.featureCount() == 5 and len(feats) == 5, "QGIS: 5 features")
    check([f["tile_id"] for f in feats] == [r["properties"]["tile_id"] for r in ref],
          "QGIS: the hits of rsclip search, in rank order")
    check(all(abs(f["prob"] - r["properties"]["prob"]) < 1e-7 for f, r in zip(feats, ref)),
          "QGIS: probabilities")
    check(hits.crs().authid() == "EPSG:4326", "QGIS: layer CRS EPSG:4326")
    g = feats[0].geometry()
    check(not g.isNull() and g.area() > 0, "QGIS: footprint polygons")

# The index file itself: a GeoPackage whose tiles table is a footprint layer (GPKG driver)
tiles = QgsVectorLayer("%s|layername=tiles" % idx, "tiles", "ogr")
check(tiles.isValid() and tiles.featureCount() == len(all_tiles),
      "QGIS: plain index.gpkg opens as the tiles footprint layer")
check(tiles.dataProvider().storageType() == "GPKG", "QGIS: ... through the GPKG driver")

# The heatmap of the first scene (open options in the GDAL provider URI)
hm = QgsRasterLayer("RSCLIP:%s:1|option:QUERY=lake" % idx, "heat", "gdal")
print("QGIS raster URI with open options: %s" % ("valid" if hm.isValid() else "not valid"))
if not hm.isValid():  # older QGIS without open options in raster URIs: through a translated file
    tif = os.path.join(work, "heat.tif")
    rc, _, _ = run(["gdal_translate", "-q", "-oo", "QUERY=lake", "RSCLIP:%s:1" % idx, tif])
    hm = QgsRasterLayer(tif, "heat", "gdal")
check(hm.isValid() and hm.bandCount() == 1, "QGIS: heatmap raster layer")

# A sharded index (a folder of parts): the same connection strings with the folder's path
folder = os.path.join(work, "city")
for i in range(3):
    run([RSCLIP, "index", "-q", "-m", MODEL, "-o", folder + "/", "--shard", "%d/3" % i] + SCENES)
fhits = QgsVectorLayer("RSCLIP:%s/|layername=hits|option:QUERY=lake|option:TOP_K=5" % folder,
                       "folder hits", "ogr")
# (tile ids of parts are the plan's numbers, not those of one process: compare the windows)
win = ("scene", "xoff", "yoff", "xsize", "ysize")
check(fhits.isValid() and [tuple(f[k] for k in win) for f in sorted(fhits.getFeatures(),
                                                                    key=lambda f: f["rank"])] ==
      [tuple(r["properties"][k] for k in win) for r in ref],
      "QGIS: a folder's hits = the file's (same tiles, same order)")
ftiles = QgsVectorLayer("RSCLIP:%s/|layername=tiles" % folder, "folder tiles", "ogr")
check(ftiles.isValid() and ftiles.featureCount() == len(all_tiles),
      "QGIS: a folder's tiles layer holds every part's tiles")
fhm = QgsRasterLayer("RSCLIP:%s/:1|option:QUERY=lake" % folder, "folder heat", "gdal")
check(fhm.isValid() == hm.isValid(), "QGIS: a folder's heatmap opens as the file's")

# Layers go before QGIS does (a layer outliving exitQgis crashes at interpreter exit).
del hits, tiles, hm, fhits, ftiles, fhm
app.exitQgis()
finish()
