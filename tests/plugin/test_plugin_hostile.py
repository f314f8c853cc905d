#!/usr/bin/python3
"""Hostile index rows through the GDAL tools: a tile window outside its scene (negative, huge,
past the edge, empty), a scene without pixels or with a non-finite geotransform, a scene size
that would make a grid of billions of cells, a step far below the stride. Opening the heatmap
(gdalinfo, gdal_translate: what QGIS does) must fail with one error naming the index -- never
write outside a buffer (the sanitizer build runs this: any report fails the test) and never
allocate in proportion to a size read from the file. Rows are crafted with Python's sqlite3 in
copies of a good index."""
import os
import shutil
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plugin_common import build_index, check, finish, run  # noqa: E402

work = os.path.abspath(sys.argv[1])
good = build_index(work)
QUERY = "lake"

db = sqlite3.connect(good)
# a scene with several rows and columns of tiles, and one of its tiles
sid, n_tiles = db.execute("SELECT scene_id, COUNT(*) FROM tiles GROUP BY scene_id "
                          "ORDER BY COUNT(*) DESC LIMIT 1").fetchone()
tid = db.execute("SELECT fid FROM tiles WHERE scene_id = ? ORDER BY fid LIMIT 1 OFFSET 3",
                 (sid,)).fetchone()[0]
other = db.execute("SELECT id FROM scenes WHERE id <> ? ORDER BY id LIMIT 1", (sid,)).fetchone()[0]
db.close()


def damaged(name, stmts):
    """A copy of the good index with stmts applied (R-tree triggers dropped: plain SQLite has no
    ST_ functions, and no geometry changes here)."""
    path = os.path.join(work, name + ".gpkg")
    shutil.copyfile(good, path)
    c = sqlite3.connect(path)
    for t in ["rtree_tiles_geom_update%d" % i for i in range(1, 5)]:
        c.execute("DROP TRIGGER IF EXISTS %s" % t)
    for s in stmts:
        c.execute(s.format(sid=sid, tid=tid))
    c.commit()
    c.close()
    return path


def sanitizer_clean(text):
    return "AddressSanitizer" not in text and "runtime error" not in text and \
        "LeakSanitizer" not in text


tile = "UPDATE tiles SET {} WHERE fid = {{tid}}"
scene = "UPDATE scenes SET {} WHERE id = {{sid}}"
cases = [
    ("xoff_negative", [tile.format("xoff = -300")], "tile {tid}"),
    ("yoff_negative", [tile.format("yoff = -1")], "tile {tid}"),
    ("xoff_huge", [tile.format("xoff = 2000000000")], "tile {tid}"),
    ("xoff_past_int", [tile.format("xoff = 2147483653")], "tile {tid}"),
    ("past_edge", [tile.format("xoff = xoff + 100000")], "tile {tid}"),
    ("xsize_zero", [tile.format("xsize = 0")], "tile {tid}"),
    ("ysize_negative", [tile.format("ysize = -256")], "tile {tid}"),
    ("xsize_huge", [tile.format("xsize = 2147483647")], "tile {tid}"),
    ("xoff_text", [tile.format("xoff = 'abc', xsize = 'x'")], "tile {tid}"),
    ("width_zero", [scene.format("width = 0")], "no pixels"),
    ("height_negative", [scene.format("height = -5")], "no pixels"),
    ("gt_infinite", [scene.format("gt1 = 9e999")], "geotransform"),
    # every window inside, but a grid of 8388607^2 cells: refused by the cap, not allocated
    ("huge_scene", [scene.format("width = 2147483647, height = 2147483647")], "limit of"),
]
for name, stmts, needle in cases:
    path = damaged(name, stmts)
    rc, out, err = run(["gdal_translate", "-q", "-oo", "QUERY=" + QUERY,
                        "RSCLIP:%s:%d" % (path, sid), os.path.join(work, name + ".tif")],
                       expect_ok=False)
    text = out + err
    needle = needle.format(tid=tid)  # windows: the tile named (and its window shown)
    check(rc != 0 and "ERROR" in text and path in text and needle in text and
          (not needle.startswith("tile") or "window" in text) and
          sanitizer_clean(text) and not os.path.exists(os.path.join(work, name + ".tif")),
          "%s: a clean error naming the index (rc %d): %s" % (
              name, rc, " | ".join(l for l in text.splitlines() if "ERROR" in l)[:300]))
    # the other scenes of the damaged index still open
    rc, out, err = run(["gdalinfo", "-oo", "QUERY=" + QUERY, "RSCLIP:%s:%d" % (path, other)],
                       expect_ok=False)
    check(rc == 0 and "Band 1" in out and sanitizer_clean(out + err),
          "%s: scene %d still opens" % (name, other))

# A step far below the stride on a large scene (46000^2, the size of a Landsat-scale mosaic):
# billions of cells, refused by the cap with a message naming the options -- not 8 GB.
# (the shifted edge tiles move onto the stride grid, as the tiler would have placed them)
big = damaged("big_scene", [scene.format("width = 46000, height = 46000"),
                            "UPDATE tiles SET xoff = ((xoff + 255) / 256) * 256, "
                            "yoff = ((yoff + 255) / 256) * 256 WHERE scene_id = {sid}"])
rc, out, err = run(["gdalinfo", "-oo", "QUERY=" + QUERY, "-oo", "STEP=1",
                    "RSCLIP:%s:%d" % (big, sid)], expect_ok=False)
check(rc != 0 and "limit of" in err and "STEP" in err and "MAX_CELLS" in err and
      sanitizer_clean(out + err), "STEP=1 on 46000 x 46000 px: refused by the cell cap: %s" %
      " | ".join(l for l in err.splitlines() if "ERROR" in l)[:300])
rc, out, err = run(["gdalinfo", "-oo", "QUERY=" + QUERY, "RSCLIP:%s:%d" % (big, sid)])
check(rc == 0 and "Size is 179, 179" in out, "46000 x 46000 px at the stride: 179 x 179 cells")
# the cap is configurable: an open option, or a configuration option
rc, out, err = run(["gdalinfo", "-oo", "QUERY=" + QUERY, "-oo", "MAX_CELLS=1000",
                    "RSCLIP:%s:%d" % (big, sid)], expect_ok=False)
check(rc != 0 and "limit of 1000 cells" in err, "MAX_CELLS=1000 refuses 179 x 179 cells")
rc, out, err = run(["gdalinfo", "--config", "RSCLIP_HEATMAP_MAX_CELLS", "1000", "-oo",
                    "QUERY=" + QUERY, "RSCLIP:%s:%d" % (big, sid)], expect_ok=False)
check(rc != 0 and "limit of 1000 cells" in err, "RSCLIP_HEATMAP_MAX_CELLS=1000 too")
rc, out, err = run(["gdalinfo", "--config", "RSCLIP_HEATMAP_MAX_CELLS", "many", "-oo",
                    "QUERY=" + QUERY, "RSCLIP:%s:%d" % (big, sid)], expect_ok=False)
check(rc != 0 and "configuration option RSCLIP_HEATMAP_MAX_CELLS=many" in err,
      "RSCLIP_HEATMAP_MAX_CELLS=many: refused, naming the configuration option")
rc, out, err = run(["gdalinfo", "-oo", "QUERY=" + QUERY, "-oo", "STEP=16", "-oo",
                    "MAX_CELLS=9000000", "RSCLIP:%s:%d" % (big, sid)])
check(rc == 0 and "Size is 2860, 2860" in out, "a higher MAX_CELLS allows STEP=16 (2860^2)")
for bad in ["MAX_CELLS=0", "MAX_CELLS=lots", "STEP=0", "STEP=-3"]:
    rc, out, err = run(["gdalinfo", "-oo", "QUERY=" + QUERY, "-oo", bad,
                        "RSCLIP:%s:%d" % (good, sid)], expect_ok=False)
    check(rc != 0 and bad.split("=")[0] in err, "%s: refused (%s)" % (bad, err.strip()[:120]))

finish()
