#!/usr/bin/python3
"""rsclip index/search/info end to end: the real binary on the bundled samples, checked against
independent computations (numpy on the stored vectors, gdal_translate crops, ogrinfo).

Usage: test_workflow.py GROUP   (one ctest entry per group; see CMakeLists.txt)
"""
import json
import os
import resource
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

BIN = os.environ.get("RSCLIP_BIN", "build/core/rsclip")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rsclip_testlib import check, failures, run  # noqa: E402  (the tests' shared helpers)
SRC = os.environ.get("RSCLIP_SOURCE_DIR", ".")
FIX = os.environ.get("RSCLIP_FIXTURES", os.path.join(SRC, "tests", "fixtures"))
MODEL = os.path.join(FIX, "siglip-tiny")
SAMPLES = os.path.join(SRC, "samples")
TEMPLATE = "a remote sensing image of {}"


def sample(name):
    for f in os.listdir(SAMPLES):
        if f.startswith(name) and f.endswith(".tif"):
            return os.path.join(SAMPLES, f)
    raise SystemExit("no sample " + name)


def stored(index):
    """tile id -> (scene path, window, unit vector) straight from the SQLite file."""
    db = sqlite3.connect(index)
    rows = db.execute(
        "SELECT t.fid, s.path, t.xoff, t.yoff, t.xsize, t.ysize, e.vec FROM tiles t "
        "JOIN scenes s ON s.id = t.scene_id JOIN embeddings e ON e.tile_id = t.fid "
        "ORDER BY t.fid").fetchall()
    meta = dict(db.execute("SELECT key, value FROM rsclip_meta").fetchall())
    db.close()
    out = {}
    for fid, path, x, y, w, h, blob in rows:
        out[fid] = (path, (x, y, w, h), np.frombuffer(blob, dtype="<f4").astype(np.float64))
    return out, meta


def embed_text(text, model=MODEL):
    p = run(["embed", "-m", model, "--normalize", "--text", text], check_rc=0)
    return np.array(json.loads(p.stdout)["embeddings"][0], dtype=np.float64)


def build_index(tmp, name="idx.gpkg", extra=(), inputs=None, rc=0):
    index = os.path.join(tmp, name)
    run(["index", "-q", "-m", MODEL, "-o", index] + list(extra) + (inputs or [SAMPLES]),
        check_rc=rc)
    return index


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def group_search(tmp):
    """search == brute force over the stored vectors; info; filters; negatives; like-*."""
    index = build_index(tmp)
    tiles, meta = stored(index)
    check(len(tiles) == 53, "53 tiles stored from the samples (got %d)" % len(tiles))
    info = json.loads(run(["info", index, "--json"], check_rc=0).stdout)
    check(info["tiles"] == len(tiles) and info["embeddings"] == len(tiles), "info counts")
    check(info["scenes"] == 6 and info["scenes_complete"] == 6, "info scenes")
    check(info["dim"] == 32, "info dim")
    scale, bias = float(meta["logit_scale"]), float(meta["logit_bias"])
    ids = np.array(sorted(tiles))
    vecs = np.stack([tiles[i][2] for i in ids])
    check(np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5), "stored vectors unit length")

    for text in ["lake", "airport runways", "dense residential buildings"]:
        q = embed_text(TEMPLATE.format(text))
        cos = vecs @ q
        order = sorted(range(len(ids)), key=lambda i: (-cos[i], ids[i]))[:10]
        out = run(["search", index, text, "-k", "10", "-of", "GeoJSON"], check_rc=0).stdout
        feats = json.loads(out)["features"]
        got = [f["properties"]["tile_id"] for f in feats]
        check(got == [int(ids[i]) for i in order], "ranking of %r equals brute force" % text)
        for f, i in zip(feats, order):
            p = f["properties"]
            check(abs(p["score"] - cos[i]) < 1e-5, "score of %r" % text)
            check(abs(p["prob"] - sigmoid(cos[i] * np.exp(scale) + bias)) < 1e-5,
                  "prob of %r" % text)
            path, (x, y, w, h), _ = tiles[int(ids[i])]
            check(p["scene"] == path and (p["xoff"], p["yoff"], p["xsize"], p["ysize"]) ==
                  (x, y, w, h), "window of a hit")

    # --min-prob keeps exactly the hits at or above it.
    q = embed_text(TEMPLATE.format("lake"))
    probs = np.sort(sigmoid((vecs @ q) * np.exp(scale) + bias))[::-1]
    thr = float((probs[4] + probs[5]) / 2)
    feats = json.loads(run(["search", index, "lake", "-k", "50", "--min-prob", str(thr), "-of",
                            "GeoJSON"], check_rc=0).stdout)["features"]
    check(len(feats) == 5, "--min-prob keeps the 5 hits above it (got %d)" % len(feats))

    # --bbox: only tiles whose footprint meets the box (the Memphis scene here).
    feats = json.loads(run(["search", index, "lake", "-k", "50", "--bbox",
                            "-91,34.5,-89.5,35.5", "-of", "GeoJSON"], check_rc=0).stdout)["features"]
    check(len(feats) == 12 and all("memphis" in f["properties"]["scene"] for f in feats),
          "--bbox keeps the 12 Memphis tiles (got %d)" % len(feats))

    # --aoi from a GeoJSON polygon in another CRS (Web Mercator) around the Memphis scene.
    aoi = os.path.join(tmp, "aoi.geojson")
    with open(aoi, "w") as f:
        json.dump({"type": "FeatureCollection", "crs": {"type": "name", "properties": {
            "name": "urn:ogc:def:crs:EPSG::3857"}}, "features": [{"type": "Feature",
            "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[
                [-10130000, 4150000], [-9960000, 4150000], [-9960000, 4230000],
                [-10130000, 4230000], [-10130000, 4150000]]]}}]}, f)
    feats = json.loads(run(["search", index, "lake", "-k", "50", "--aoi", aoi, "-of",
                            "GeoJSON"], check_rc=0).stdout)["features"]
    check(len(feats) == 12 and all("memphis" in f["properties"]["scene"] for f in feats),
          "--aoi keeps the Memphis tiles (got %d)" % len(feats))

    # Negatives: score = cos(q) - 0.5 max cos(neg).
    n1 = embed_text(TEMPLATE.format("farmland"))
    score = vecs @ q - 0.5 * (vecs @ n1)
    order = sorted(range(len(ids)), key=lambda i: (-score[i], ids[i]))[:5]
    feats = json.loads(run(["search", index, "lake", "--not", "farmland", "-k", "5", "-of",
                            "GeoJSON"], check_rc=0).stdout)["features"]
    check([f["properties"]["tile_id"] for f in feats] == [int(ids[i]) for i in order],
          "--not ranking equals brute force")

    # Query by example: a tile is its own best match (cosine 1).
    feats = json.loads(run(["search", index, "--like-tile", "7", "-k", "3", "-of", "GeoJSON"],
                           check_rc=0).stdout)["features"]
    check(feats[0]["properties"]["tile_id"] == 7 and abs(feats[0]["properties"]["score"] - 1) <
          1e-5, "--like-tile finds itself first")
    lon, lat = feats[0]["properties"]["lon"], feats[0]["properties"]["lat"]
    feats = json.loads(run(["search", index, "--like-point", "%.9f,%.9f" % (lon, lat), "-k", "1",
                            "-of", "GeoJSON"], check_rc=0).stdout)["features"]
    check(abs(feats[0]["properties"]["score"] - 1) < 1e-5, "--like-point uses the tile at it")
    # --like-image with the crop of the small Milwaukee scene equals that tile.
    crop = os.path.join(tmp, "mke.png")
    subprocess.run(["gdal_translate", "-q", "-b", "1", "-b", "2", "-b", "3", "-of", "PNG",
                    sample("naip_milwaukee"), crop], check=True)
    feats = json.loads(run(["search", index, "--like-image", crop, "-k", "1", "-of", "GeoJSON"],
                           check_rc=0).stdout)["features"]
    check("milwaukee" in feats[0]["properties"]["scene"] and
          feats[0]["properties"]["score"] > 0.99999, "--like-image finds the same tile")

    # --merge: regions of touching hits.
    p = run(["search", index, "--like-tile", "7", "-k", "4", "--merge", "-of", "GeoJSON"],
            check_rc=0)
    regs = json.loads(p.stdout)["features"]
    check(sum(r["properties"]["tiles"] for r in regs) == 4, "--merge keeps every hit once")
    check(all(r["properties"]["area_m2"] > 0 for r in regs), "--merge area")

    # Table output and the vector cache (second run maps INDEX.rsvec).
    out = run(["search", index, "lake", "-k", "3"], check_rc=0).stdout
    check(out.splitlines()[0].split()[:3] == ["rank", "prob", "score"] and
          len(out.splitlines()) == 4, "table output")
    check(os.path.exists(index + ".rsvec"), "vector cache written")
    out2 = run(["search", index, "lake", "-k", "3", "--no-cache"], check_rc=0).stdout
    check(out == out2, "cache and no-cache agree")


def group_embedding(tmp):
    """A stored tile embedding equals `rsclip embed` of the same crop (8-bit scene)."""
    scene = sample("usgs_hro")
    index = build_index(tmp, inputs=[scene])
    tiles, _ = stored(index)
    check(len(tiles) == 2, "usgs_hro: 383x232 gives 2 tiles (got %d)" % len(tiles))
    for tid, (path, (x, y, w, h), vec) in tiles.items():
        crop = os.path.join(tmp, "crop%d.png" % tid)
        subprocess.run(["gdal_translate", "-q", "-of", "PNG", "-srcwin", str(x), str(y), str(w),
                        str(h), scene, crop], check=True)
        p = run(["embed", "-m", MODEL, "--normalize", "--image", crop], check_rc=0)
        e = np.array(json.loads(p.stdout)["embeddings"][0])
        check(np.max(np.abs(e - vec)) < 1e-5, "tile %d embedding equals embed of its crop" % tid)
    # Windows: last column shifted back to end at the raster edge, full height of a short raster.
    wins = sorted(t[1] for t in tiles.values())
    check(wins == [(0, 0, 256, 232), (127, 0, 256, 232)], "usgs_hro windows %s" % wins)


def count_tiles(index):
    try:
        db = sqlite3.connect("file:%s?mode=ro" % index, uri=True, timeout=30)
        n = db.execute("SELECT count(*) FROM tiles").fetchone()[0]
        db.close()
        return n
    except sqlite3.Error:
        return 0


def group_resume(tmp):
    """kill -9 mid-run, then the next run completes with no tile duplicated or missing."""
    inputs = [sample("naip_nd"), sample("s2_aberystwyth")]
    extra = ["--stride", "64", "--batch", "2", "-j", "1"]
    ref = build_index(tmp, "ref.gpkg", extra, inputs)
    ref_tiles, _ = stored(ref)
    for attempt in range(3):
        index = os.path.join(tmp, "killed%d.gpkg" % attempt)
        p = subprocess.Popen([BIN, "index", "-q", "-m", MODEL, "-o", index] + extra + inputs)
        target = 20 + 60 * attempt
        t0 = time.time()
        while p.poll() is None and count_tiles(index) < target and time.time() - t0 < 120:
            time.sleep(0.02)
        if p.poll() is None:
            break
    check(p.poll() is None, "indexer still running when killed")
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    n_killed = count_tiles(index)
    check(0 < n_killed < len(ref_tiles), "killed mid-run (%d of %d stored)" % (n_killed,
                                                                              len(ref_tiles)))
    db = sqlite3.connect(index)
    check(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "integrity after kill")
    check(db.execute("SELECT count(*) FROM tiles t LEFT JOIN embeddings e ON e.tile_id = t.fid "
                     "WHERE e.tile_id IS NULL").fetchone()[0] == 0, "no tile without embedding")
    db.close()
    # Searching a half-built index works.
    run(["search", index, "lake", "-k", "3"], check_rc=0)
    run(["index", "-q", "-m", MODEL, "-o", index] + extra + inputs, check_rc=0)
    tiles, _ = stored(index)
    key = lambda t: (os.path.basename(t[0]), t[1])
    got = sorted(key(t) for t in tiles.values())
    want = sorted(key(t) for t in ref_tiles.values())
    check(len(got) == len(set(got)), "no duplicated tile after resume")
    check(got == want, "resumed index has exactly the tiles of a clean run")
    ref_vec = {key(t): t[2] for t in ref_tiles.values()}
    check(all(np.max(np.abs(t[2] - ref_vec[key(t)])) < 1e-5 for t in tiles.values()),
          "resumed embeddings equal a clean run's")
    db = sqlite3.connect(index)
    check(db.execute("SELECT count(*) FROM scenes WHERE status != 'complete'").fetchone()[0] == 0,
          "all scenes complete after resume")
    db.close()


def group_concurrent(tmp):
    """Searches run (and see committed tiles) while an index is being written."""
    inputs = [sample("naip_nd"), sample("s2_aberystwyth")]
    index = os.path.join(tmp, "live.gpkg")
    p = subprocess.Popen([BIN, "index", "-q", "-m", MODEL, "-o", index, "--stride", "64",
                          "--batch", "2", "-j", "1"] + inputs)
    t0 = time.time()
    while count_tiles(index) < 4 and time.time() - t0 < 120:
        time.sleep(0.05)
    ok = 0
    while p.poll() is None and ok < 5:
        r = run(["search", index, "lake", "-k", "3", "--no-cache"])
        check(r.returncode == 0, "search during indexing: %s" % r.stderr.strip())
        ok += 1
    check(ok >= 1, "at least one search ran while indexing")
    check(p.wait() == 0, "indexer finished")


def group_incremental(tmp):
    """Unchanged scenes are skipped, a changed one re-indexed, --force rebuilds."""
    src = sample("usgs_hro")
    scene = os.path.join(tmp, "scene.tif")
    shutil.copy(src, scene)
    index = build_index(tmp, inputs=[scene])
    p = run(["index", "-m", MODEL, "-o", index, scene], check_rc=0)
    check("1 unchanged" in p.stderr, "second run skips the unchanged scene: " + p.stderr)
    tiles1, _ = stored(index)
    # Change the pixels (same size): flip the image vertically.
    subprocess.run(["gdalwarp", "-q", "-overwrite", "-ts", "383", "232", "-r", "near", src,
                    os.path.join(tmp, "tmp.tif")], check=True)
    subprocess.run(["gdal_calc.py", "--quiet", "-A", os.path.join(tmp, "tmp.tif"), "--allBands=A",
                    "--calc=255-A", "--outfile=" + scene, "--overwrite"], check=True,
                   capture_output=True)
    p = run(["index", "-m", MODEL, "-o", index, scene], check_rc=0)
    check("1 scene(s) indexed" in p.stderr, "changed scene re-indexed: " + p.stderr)
    tiles2, _ = stored(index)
    check(len(tiles2) == len(tiles1), "same tile count after re-index")
    v1 = sorted(t[2].tolist() for t in tiles1.values())
    v2 = sorted(t[2].tolist() for t in tiles2.values())
    check(v1 != v2, "re-indexed embeddings differ")
    p = run(["index", "-m", MODEL, "-o", index, "--force", scene], check_rc=0)
    check("1 scene(s) indexed" in p.stderr, "--force re-indexes")
    # Another model is refused, the index untouched.
    before = os.path.getsize(index)
    p = run(["index", "-q", "-m", os.path.join(FIX, "siglip-tiny-f16"), "-o", index, scene])
    check(p.returncode == 1 and "was built with model" in p.stderr,
          "another model refused: " + p.stderr)
    check(len(stored(index)[0]) == len(tiles1) and os.path.getsize(index) == before,
          "refused run wrote nothing")
    p = run(["search", index, "lake", "-m", os.path.join(FIX, "siglip-tiny-f16")])
    check(p.returncode == 1 and "was built with model" in p.stderr, "search with another model")


def group_outputs(tmp):
    """Hits export through OGR: GeoJSON, GPKG, CSV, KML, FlatGeobuf all open in ogrinfo."""
    index = build_index(tmp)
    for fmt, ext in [("GeoJSON", "geojson"), ("GPKG", "gpkg"), ("CSV", "csv"), ("KML", "kml"),
                     ("FlatGeobuf", "fgb")]:
        out = os.path.join(tmp, "hits." + ext)
        run(["search", index, "lake", "-k", "7", "-of", fmt, "-o", out], check_rc=0)
        p = subprocess.run(["ogrinfo", "-ro", "-so", "-al", out], capture_output=True, text=True)
        check(p.returncode == 0 and "Feature Count: 7" in p.stdout, "ogrinfo reads " + fmt)
    # Extension decides the format; --t_srs reprojects.
    out = os.path.join(tmp, "utm.gpkg")
    run(["search", index, "lake", "-k", "3", "-o", out, "--t_srs", "EPSG:32615"], check_rc=0)
    p = subprocess.run(["ogrinfo", "-ro", "-so", "-al", out], capture_output=True, text=True)
    check("32615" in p.stdout, "--t_srs written")
    # The index itself is a GeoPackage whose tiles layer ogrinfo reads.
    p = subprocess.run(["ogrinfo", "-ro", "-so", index, "tiles"], capture_output=True, text=True)
    check(p.returncode == 0 and "Feature Count: 53" in p.stdout, "ogrinfo reads the index")


def group_badinput(tmp):
    """Bad inputs: clear one-line errors naming the file, right exit codes, nothing lost."""
    corrupt = os.path.join(tmp, "corrupt.tif")
    with open(sample("usgs_hro"), "rb") as f:
        data = f.read()
    with open(corrupt, "wb") as f:
        f.write(data[:4000])
    good = sample("naip_milwaukee")
    index = os.path.join(tmp, "idx.gpkg")
    p = run(["index", "-q", "-m", MODEL, "-o", index, good, corrupt])
    check(p.returncode == 3, "partial run exits 3 (got %d)" % p.returncode)
    check("corrupt.tif" in p.stderr, "corrupt file named: " + p.stderr)
    check(len(stored(index)[0]) == 1, "the good raster is indexed")
    # No georeferencing: refused unless --allow-pixel-coords.
    nogeo = os.path.join(tmp, "nogeo.png")
    subprocess.run(["gdal_translate", "-q", "-of", "PNG", "-b", "1", "-b", "2", "-b", "3", good,
                    nogeo], check=True)
    for f in os.listdir(tmp):
        if f.startswith("nogeo.png."):
            os.remove(os.path.join(tmp, f))
    p = run(["index", "-q", "-m", MODEL, "-o", index, nogeo])
    # every input failed: an error (1), not a partial run (3)
    check(p.returncode == 1 and "nogeo.png" in p.stderr, "no georeferencing refused: " + p.stderr)
    p = run(["index", "-q", "-m", MODEL, "-o", index, "--bands", "1,2,9", good, "--force"])
    check(p.returncode == 1 and "band" in p.stderr, "band out of range: " + p.stderr)
    p = run(["index", "-q", "-m", MODEL, "-o", index, good, nogeo])
    check(p.returncode == 3 and "nogeo.png" in p.stderr, "unchanged + failed is partial")
    check(len(stored(index)[0]) == 1, "nothing lost after failed runs")
    p = run(["search", index, "  "])
    check(p.returncode == 2 and "empty" in p.stderr, "empty query refused: " + p.stderr)
    p = run(["search", corrupt, "lake"])
    check(p.returncode == 1 and "corrupt.tif" in p.stderr, "not an index: " + p.stderr)
    p = run(["search", os.path.join(tmp, "missing.gpkg"), "lake"])
    check(p.returncode == 1 and "missing.gpkg" in p.stderr, "missing index: " + p.stderr)
    p = run(["info", corrupt])
    check(p.returncode == 1 and "corrupt.tif" in p.stderr, "info on a non-index: " + p.stderr)
    p = run(["search", index, "lake", "-of", "GeoJSON", "-o", "/nonexistent-dir/hits.geojson"])
    check(p.returncode == 1 and "/nonexistent-dir/hits.geojson" in p.stderr,
          "unwritable output: " + p.stderr)
    p = run(["index", "-q", "-m", MODEL, "-o", "/nonexistent-dir/x.gpkg", good])
    check(p.returncode == 1 and "/nonexistent-dir/x.gpkg" in p.stderr, "unwritable index")
    p = run(["index", "-q", "-m", MODEL, "-o", index, os.path.join(tmp, "nope.tif")])
    check(p.returncode == 1 and "nope.tif" in p.stderr, "missing input named")
    for r in (p,):
        check(r.returncode >= 0, "no crash")


def group_fulldisk(tmp):
    """A full disk (RLIMIT_FSIZE) fails the run cleanly; what was indexed stays valid."""
    index = build_index(tmp, inputs=[sample("usgs_hro")])
    n0 = len(stored(index)[0])
    size = os.path.getsize(index)

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        lim = size + 64 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (lim, lim))

    p = subprocess.run([BIN, "index", "-q", "-m", MODEL, "-o", index, "--stride", "16",
                        sample("naip_nd")], capture_output=True, text=True, preexec_fn=limit,
                       timeout=300)
    check(p.returncode == 1, "full disk exits 1 (got %d: %s)" % (p.returncode, p.stderr))
    check("idx.gpkg" in p.stderr, "full disk names the index: " + p.stderr)
    db = sqlite3.connect(index)
    check(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "valid after full disk")
    db.close()
    tiles, _ = stored(index)
    check(sum(1 for t in tiles.values() if "usgs_hro" in t[0]) == n0,
          "earlier scene intact after full disk")
    run(["search", index, "lake", "-k", "2"], check_rc=0)


def sha(path):
    import hashlib
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def no_temp_left(folder):
    return not [f for f in os.listdir(folder) if f.startswith(".rsclip-export-")]


def limited(limit):
    """preexec_fn: a file-size limit of `limit` bytes, a full disk for anything bigger."""
    def fn():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return fn


def ogr_layers(path):
    """{layer name: (geometry type, feature count)} as ogrinfo reports them."""
    p = subprocess.run(["ogrinfo", "-ro", "-so", "-al", path], capture_output=True, text=True)
    out, name, geom = {}, None, None
    for line in p.stdout.splitlines():
        if line.startswith("Layer name: "):
            name = line[len("Layer name: "):]
        elif line.startswith("Geometry: "):
            geom = line[len("Geometry: "):]
        elif line.startswith("Feature Count: ") and name:
            out[name] = (geom, int(line[len("Feature Count: "):]))
    return out


def gpkg_dump(path):
    db = sqlite3.connect(path)
    dump = list(db.iterdump())
    ok = db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    return dump, ok


def group_overwrite(tmp):
    """-o never destroys a user's file: the index (any path to it), existing files without
    --overwrite, a project GeoPackage's other layers; a failed export leaves the old file."""
    index = build_index(tmp)
    run(["search", index, "lake", "-k", "1"], check_rc=0)  # the .rsvec cache exists from here
    before = sha(index)
    sub = os.path.join(tmp, "sub")
    os.mkdir(sub)
    os.symlink(index, os.path.join(tmp, "link.gpkg"))
    os.link(index, os.path.join(tmp, "hard.gpkg"))
    for target in [index, os.path.join(tmp, "link.gpkg"), os.path.join(tmp, "hard.gpkg"),
                   os.path.join(sub, "..", "idx.gpkg"), "idx.gpkg", index + "-wal",
                   index + "-shm", index + ".rsvec"]:
        for extra in [[], ["--overwrite"], ["--overwrite", "-nln", "other"]]:
            p = run(["search", index, "lake", "-k", "3", "-of", "GPKG", "-o", target] + extra,
                    cwd=tmp)
            check(p.returncode == 1 and "refusing" in p.stderr,
                  "-o %s %s refused: %d %s" % (target, extra, p.returncode, p.stderr))
    check(sha(index) == before, "the index is byte-identical after every refused -o")
    info = json.loads(run(["info", index, "--json"], check_rc=0).stdout)
    check(info["tiles"] == 53, "the index still reads as an index")

    # An existing raster: refused, then replaced with --overwrite.
    tif = os.path.join(tmp, "scene.tif")
    shutil.copy(sample("usgs_hro"), tif)
    tif_sha = sha(tif)
    p = run(["search", index, "lake", "-of", "GeoJSON", "-o", tif])
    check(p.returncode == 1 and "exists" in p.stderr and "--overwrite" in p.stderr,
          "existing .tif refused: " + p.stderr)
    p = run(["search", index, "lake", "-o", tif])
    check(p.returncode == 2 and "-of" in p.stderr, ".tif is no vector format: " + p.stderr)
    check(sha(tif) == tif_sha, "the .tif is untouched")
    run(["search", index, "lake", "-k", "7", "-of", "GeoJSON", "-o", tif, "--overwrite"],
        check_rc=0)
    check(ogr_layers(tif) == {"hits": ("Polygon", 7)}, "--overwrite replaced the .tif")
    check(no_temp_left(tmp), "no temporary folder left")

    # A project GeoPackage: -nln adds a layer beside the others; --overwrite replaces only it.
    proj = os.path.join(tmp, "project.gpkg")
    roads = os.path.join(tmp, "roads.geojson")
    with open(roads, "w") as f:
        json.dump({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {
            "name": "A1"}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}]},
            f)
    subprocess.run(["ogr2ogr", "-f", "GPKG", proj, roads, "-nln", "roads"], check=True)
    proj_sha = sha(proj)
    p = run(["search", index, "lake", "-o", proj])
    check(p.returncode == 1 and "-nln" in p.stderr, "existing GPKG without -nln: " + p.stderr)
    check(sha(proj) == proj_sha, "refused GPKG untouched")
    run(["search", index, "lake", "-k", "5", "-o", proj, "-nln", "lakes"], check_rc=0)
    check(ogr_layers(proj) == {"roads": ("Line String", 1), "lakes": ("Polygon", 5)},
          "-nln adds a layer: %s" % ogr_layers(proj))
    p = run(["search", index, "lake", "-k", "2", "-o", proj, "-nln", "lakes"])
    check(p.returncode == 1 and "lakes" in p.stderr, "existing layer refused: " + p.stderr)
    run(["search", index, "lake", "-k", "2", "-o", proj, "-nln", "lakes", "--overwrite"],
        check_rc=0)
    run(["search", index, "farmland", "-k", "4", "--merge", "-o", proj, "--overwrite"],
        check_rc=0)
    layers = ogr_layers(proj)
    check(layers.get("roads") == ("Line String", 1) and layers.get("lakes") == ("Polygon", 2) and
          layers.get("regions", ("", 0))[0] == "Multi Polygon",
          "--overwrite replaced one layer, kept the others: %s" % layers)

    # rsclip index -o on a GeoPackage that is not an index: refused, the file byte-identical
    # (not even switched to WAL).
    proj_sha = sha(proj)
    p = run(["index", "-q", "-m", MODEL, "-o", proj, sample("usgs_hro")])
    check(p.returncode == 1 and "not an rsclip index" in p.stderr, "index -o project: " + p.stderr)
    check(sha(proj) == proj_sha and not os.path.exists(proj + "-wal"),
          "a GeoPackage refused as an index is byte-identical")

    # rsclip merge -o: never an input, one of its -wal/-shm/.rsvec files (existing or not), or a
    # file inside an input folder.
    for target in [index + "-wal", index + "-shm", index + "-journal", index + ".rsvec",
                   os.path.join(tmp, "link.gpkg"), os.path.join(tmp, "hard.gpkg")]:
        p = run(["merge", "-q", "-o", target, index])
        check(p.returncode == 1 and "refusing" in p.stderr, "merge -o %s: %s" % (target, p.stderr))
    check(sha(index) == before and not os.path.exists(index + "-journal"),
          "the index is untouched by refused merges")
    parts = os.path.join(tmp, "parts")
    run(["index", "-q", "-m", MODEL, "--shard", "0/1", "-o", parts + "/", sample("usgs_hro")],
        check_rc=0)
    p = run(["merge", "-q", "-o", os.path.join(parts, "all.gpkg"), parts])
    check(p.returncode == 1 and "refusing" in p.stderr and
          not os.path.exists(os.path.join(parts, "all.gpkg")),
          "merge -o into an input folder: " + p.stderr)

    # INDEX.rsvec that is a user's file: the search works, says why it keeps no cache, and the
    # file is untouched.
    copy = os.path.join(tmp, "copy.gpkg")
    shutil.copy(index, copy)
    with open(copy + ".rsvec", "w") as f:
        f.write("my notes\n")
    p = run(["search", copy, "lake", "-k", "2"])
    check(p.returncode == 0 and "not replaced" in p.stderr and copy + ".rsvec" in p.stderr,
          "a foreign .rsvec: search works and warns: " + p.stderr)
    check(open(copy + ".rsvec").read() == "my notes\n", "a foreign .rsvec is left as it was")

    # Full disk (RLIMIT_FSIZE) while exporting: the old file is byte-identical, no temp left.
    # (The limit leaves room for what a search itself writes: the index's 32 KiB -shm.)
    old = os.path.join(tmp, "old.geojson")
    run(["search", index, "lake", "-k", "2", "-o", old], check_rc=0)
    old_sha = sha(old)
    for args in [["-o", old, "--overwrite"], ["-o", os.path.join(tmp, "new.fgb")],
                 ["-o", os.path.join(tmp, "new.kml")], ["-o", os.path.join(tmp, "new.gpkg")]]:
        p = subprocess.run([BIN, "search", index, "lake", "-k", "53"] + args, text=True,
                           capture_output=True, preexec_fn=limited(40000), timeout=300)
        check(p.returncode == 1 and args[1] in p.stderr,
              "full disk %s: exit %d %s" % (args, p.returncode, p.stderr))
    check(sha(old) == old_sha, "a failed export leaves the old file byte-identical")
    check(not any(os.path.exists(os.path.join(tmp, f)) for f in ["new.fgb", "new.kml", "new.gpkg"]),
          "a failed export leaves no new file")
    check(no_temp_left(tmp), "a failed export leaves no temporary folder")
    # ... and inside a GeoPackage, the transaction leaves its content as it was.
    dump0, _ = gpkg_dump(proj)
    for extra in [["-nln", "more"], ["-nln", "lakes", "--overwrite"]]:
        limit = os.path.getsize(proj) + 4096
        p = subprocess.run([BIN, "search", index, "lake", "-k", "53", "-o", proj] + extra,
                           text=True, capture_output=True, preexec_fn=limited(limit), timeout=300)
        check(p.returncode == 1 and "project.gpkg" in p.stderr,
              "full disk in a GPKG %s: %d %s" % (extra, p.returncode, p.stderr))
        dump, ok = gpkg_dump(proj)
        check(ok and dump == dump0, "GPKG content unchanged after a failed %s" % extra)
        check(not os.path.exists(proj + "-journal"), "no journal left behind")
    check(ogr_layers(proj) == layers, "ogrinfo sees the same layers and counts after failures")

    # rsclip plan -o follows the same rule: never over one of its inputs, an existing plan
    # only with --overwrite.
    raster = os.path.join(tmp, "raster.tif")
    shutil.copy(sample("usgs_hro"), raster)
    raster_sha = sha(raster)
    p = run(["plan", "-q", "-m", MODEL, "-o", raster, raster, "--overwrite"])
    check(p.returncode == 1 and "refusing" in p.stderr and sha(raster) == raster_sha,
          "plan -o INPUT refused: " + p.stderr)
    plan = os.path.join(tmp, "plan.jsonl")
    run(["plan", "-q", "-m", MODEL, "-o", plan, sample("usgs_hro")], check_rc=0)
    p = run(["plan", "-q", "-m", MODEL, "-o", plan, sample("usgs_hro")])
    check(p.returncode == 1 and "--overwrite" in p.stderr, "existing plan refused: " + p.stderr)

    # Usage: the new options need -o; --help documents them.
    for extra in [["--overwrite"], ["-nln", "x"]]:
        p = run(["search", index, "lake"] + extra)
        check(p.returncode == 2 and "-o" in p.stderr, "%s without -o: %s" % (extra, p.stderr))
    usage = run(["search", "--help"], check_rc=0).stdout
    check("--overwrite" in usage and "-nln" in usage, "usage documents --overwrite and -nln")


def group_nohits(tmp):
    """Searches that find nothing say why; tile ids in the table; typed, named exports."""
    index = build_index(tmp)
    # The table's tile column is the id --like-tile takes.
    table = run(["search", index, "lake", "-k", "3"], check_rc=0).stdout.splitlines()
    head = table[0].split()
    check("tile" in head, "table has a tile column: %r" % table[0])
    feats = json.loads(run(["search", index, "lake", "-k", "3", "-of", "GeoJSON"],
                           check_rc=0).stdout)["features"]
    if "tile" in head:
        col = head.index("tile")
        ids = [int(line.split()[col]) for line in table[1:]]
        check(ids == [f["properties"]["tile_id"] for f in feats], "table tile ids = GeoJSON's")
        p = run(["search", index, "--like-tile", str(ids[0]), "-k", "1", "-of", "GeoJSON"],
                check_rc=0)
        check(json.loads(p.stdout)["features"][0]["properties"]["tile_id"] == ids[0],
              "--like-tile takes the table's id")

    def nohits(args, needles, what):
        p = run(["search", index, "lake"] + args)
        check(p.returncode == 0 and "no hits" in p.stderr and
              all(n in p.stderr for n in needles), "%s: %d %r" % (what, p.returncode, p.stderr))
        check(len(p.stdout.splitlines()) == 1, "%s: only the table header" % what)

    far = os.path.join(tmp, "far.geojson")
    gap = os.path.join(tmp, "gap.geojson")
    for path, (x, y) in [(far, (100, -40)), (gap, (-40, 40))]:
        with open(path, "w") as f:
            json.dump({"type": "FeatureCollection", "features": [{"type": "Feature",
                "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[
                    [x, y], [x + 1, y], [x + 1, y + 1], [x, y + 1], [x, y]]]}}]}, f)
    nohits(["--aoi", far], ["area of interest", "outside the index extent"], "AOI far away")
    nohits(["--aoi", gap], ["between its scenes"], "AOI in a gap")
    nohits(["--bbox", "100,-40,101,-39"], ["outside the index extent"], "bbox far away")
    nohits(["--bbox", "35,-90,35.5,-89.5"], ["lon/lat swapped?"], "bbox with lat/lon swapped")
    nohits(["--min-prob", "0.99999"], ["minimum probability"], "min-prob above every hit")
    nohits(["--scene", "3", "--bbox", "-91,34.5,-89.5,35.5"], ["all the filters"],
           "scene and bbox disjoint")
    p = run(["search", index, "lake", "--scene", "999"])
    check(p.returncode == 1 and "no such scene" in p.stderr and "999" in p.stderr,
          "unknown scene is an error: " + p.stderr)
    # An empty result still writes the (empty) file asked for, and says why.
    out = os.path.join(tmp, "none.geojson")
    p = run(["search", index, "lake", "--aoi", far, "-o", out])
    check(p.returncode == 0 and "no hits" in p.stderr and
          [c for _, c in ogr_layers(out).values()] == [0], "empty export: %s" % p.stderr)

    # A query longer than the model's 64 tokens is cut, with a warning.
    p = run(["search", index, " ".join(["lake"] * 80), "-k", "1"], check_rc=0)
    check("warning" in p.stderr and "64" in p.stderr and "tokens" in p.stderr,
          "long query warns: " + p.stderr)
    p = run(["search", index, "lake", "-k", "1"], check_rc=0)
    check(p.stderr == "", "a short query does not warn: " + p.stderr)

    # Typed layers, KML names, formats from GDAL's extension list.
    for ext, geom in [("gpkg", "Polygon"), ("fgb", "Polygon"), ("shp", "Polygon")]:
        out = os.path.join(tmp, "typed." + ext)
        p = run(["search", index, "lake", "-k", "4", "-o", out])
        check(p.returncode == 0, "-o typed.%s: %s" % (ext, p.stderr))
        got = list(ogr_layers(out).values())
        check(got == [(geom, 4)], "%s typed %s: %s" % (ext, geom, got))
    for ext in ["gpkg", "fgb"]:
        out = os.path.join(tmp, "regions." + ext)
        p = run(["search", index, "lake", "-k", "6", "--merge", "-o", out])
        check(p.returncode == 0, "-o regions.%s: %s" % (ext, p.stderr))
        got = list(ogr_layers(out).values())
        check(len(got) == 1 and got[0][0] == "Multi Polygon", "%s regions typed: %s" % (ext, got))
    kml = os.path.join(tmp, "hits.kml")
    run(["search", index, "lake", "-k", "3", "-o", kml], check_rc=0)
    with open(kml) as f:
        text = f.read()
    check(all("<name>%d</name>" % r in text for r in (1, 2, 3)), "KML placemarks named by rank")


def main():
    group = sys.argv[1] if len(sys.argv) > 1 else "search"
    tmp = tempfile.mkdtemp(prefix="rsclip_wf_")
    try:
        globals()["group_" + group](tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d check(s) failed" % len(failures), file=sys.stderr)
        return 1
    print("test_workflow %s: all checks passed" % group)
    return 0


if __name__ == "__main__":
    sys.exit(main())
