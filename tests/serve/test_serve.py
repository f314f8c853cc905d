#!/usr/bin/python3
"""`rsclip serve` end to end: the real server on a free loopback port, the tiny fixture model on
the samples, checked against the CLI and against GDAL.

  api      /api/search is `rsclip search -of GeoJSON` with the same arguments (texts, not,
           template, k, min_prob, bbox, scene, like/unlike tiles); GeoPackage download; chips are
           the PNGs of --chips; map tiles against gdal.Warp with the recorded scaling; info; HEAD
  browser  headless Chromium opens /?q=...: the gallery (data-rank, data-tile-id) is the CLI's
           hits; a screenshot is kept (serve_screenshot.png); clicking "more like this" and
           "not this" (DevTools protocol over a pipe) reruns the search as the CLI would
  hostile  ../ paths, huge k, a 1 MB query string, huge headers, bad tile coordinates and ids,
           bodies, other methods, a foreign Host, slow and idle clients: 4xx and the server
           stays up; SIGINT and SIGTERM stop it cleanly
  shards   a sharded index folder served: the hits of its merged file, examples across parts,
           chips and map tiles from every part; the folder is never a chips folder
  load     200 requests from 16 concurrent clients (search, chips, map tiles): no errors,
           p50/p95 latency printed (label slow)

Usage: test_serve.py GROUP"""
import http.client
import json
import math
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import numpy as np
from osgeo import gdal, ogr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "render"))
from render_common import (BIN, build_index, check, finish, read_png, run,  # noqa: E402
                           SAMPLES, sample, scene_rows, search_geojson, tile_rows)

LEAFLET = "/usr/share/javascript/leaflet"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Server:
    """rsclip serve on a free port; always stopped (and killed if need be) by its pid."""

    def __init__(self, index, extra=(), tmpdir=None):
        env = dict(os.environ)
        if tmpdir:
            env["TMPDIR"] = tmpdir
        self.p = subprocess.Popen([BIN, "serve", index, "--port", "0"] + list(extra),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env)
        ready, _, _ = select.select([self.p.stdout], [], [], 120)
        line = self.p.stdout.readline() if ready else ""
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not m:
            self.kill()
            raise SystemExit("server did not start: %r %s" % (line, self.p.stderr.read()))
        self.port = int(m.group(1))
        self.host = "127.0.0.1:%d" % self.port
        self.url = "http://%s" % self.host

    def get(self, path, headers=None, method="GET", body=None, timeout=120):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def raw(self, data, timeout=30):
        """Send raw bytes; the status line's code, or 0 when the server closed without one."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(data)
            got = b""
            while b"\r\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, BrokenPipeError):
            got = b""
        finally:
            s.close()
        m = re.match(rb"HTTP/1\.[01] (\d{3})", got)
        return int(m.group(1)) if m else 0

    def alive(self):
        st, _, body = self.get("/api/info")
        return self.p.poll() is None and st == 200 and b"tiles" in body

    def stop(self, sig=signal.SIGINT):
        self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            return None, ""
        return rc, self.p.stderr.read()

    def kill(self):
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait()


def query(**kw):
    """A query string from keyword arguments (lists repeat the key)."""
    pairs = []
    for k, v in kw.items():
        for x in (v if isinstance(v, list) else [v]):
            pairs.append((k, str(x)))
    return urllib.parse.urlencode(pairs)


def cli_args(kw):
    """The same search as `rsclip search` arguments."""
    args = [kw["q"]] if "q" in kw else []
    flags = {"not": "--not", "template": "--template", "k": "-k", "min_prob": "--min-prob",
             "bbox": "--bbox", "scene": "--scene", "like": "--like-tile",
             "unlike": "--unlike-tile"}
    for k, v in kw.items():
        if k == "q":
            continue
        for x in (v if isinstance(v, list) else [v]):
            args += [flags[k], str(x)]
    return args


def tile_of(lon, lat, z):
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) /
             math.pi) / 2 * n)
    return z, x, y


def merc_bounds(z, x, y):
    h = math.pi * 6378137.0
    r = 2 * h / 2 ** z
    return -h + x * r, h - (y + 1) * r, -h + (x + 1) * r, h - y * r


def reference_tile(scene, z, x, y):
    """The map tile GDAL draws itself: the scene's recorded bands warped to EPSG:3857, scaled
    with the recorded scaling: [256, 256, 3] floats and the valid mask."""
    bands = [int(b) for b in scene["bands"].split(",")]
    bands = bands * 3 if len(bands) == 1 else bands
    ds = gdal.Warp("", scene["path"], format="MEM", dstSRS="EPSG:3857",
                   outputBounds=merc_bounds(z, x, y), width=256, height=256,
                   resampleAlg="bilinear", outputType=gdal.GDT_Float64, dstNodata=float("nan"))
    out = np.zeros((256, 256, 3))
    valid = np.ones((256, 256), bool)
    s = scene["scaling"]
    for c, b in enumerate(bands):
        v = ds.GetRasterBand(b).ReadAsArray()
        valid &= np.isfinite(v)
        if s["mode"] != "none":
            v = (v - s["min"][c]) * 255.0 / (s["max"][c] - s["min"][c])
        out[..., c] = np.clip(np.floor(v + 0.5), 0, 255)
    return out, valid


# ---- api ------------------------------------------------------------------------------------

def test_api(tmp):
    idx = build_index(os.path.join(tmp, "idx.gpkg"), [SAMPLES])
    rows = tile_rows(idx)
    scenes = scene_rows(idx)
    base = search_geojson(idx, ["water", "-k", "30"])["features"]
    t = [f["properties"]["tile_id"] for f in base]
    s2 = [k for k, v in scenes.items() if "s2_aberystwyth" in v["path"]][0]
    srv = Server(idx)
    try:
        st, _, body = srv.get("/api/info")
        info = json.loads(body)
        check(st == 200 and info["tiles"] == len(rows) and info["scenes"] == len(scenes),
              "info %s" % info)
        cases = [dict(q="airport", k=10),
                 dict(q="river", **{"not": ["city", "road"]}, k=15),
                 dict(q="lake", template="{}", min_prob=0.7),
                 dict(q="field", bbox="-99.2,46.9,-99.0,47.1", k=5),
                 dict(like=t[20], k=8),
                 dict(q="water", like=[t[25], t[28]], unlike=t[0], k=12),
                 dict(q="houses", scene=s2),
                 dict(q="\u00e9tang \u00fcber \u6c34 & co?", k=7)]
        for kw in cases:
            st, hdr, body = srv.get("/api/search?" + query(**kw))
            want = search_geojson(idx, cli_args(kw))
            got = json.loads(body) if st == 200 else body
            check(st == 200 and hdr.get("Content-Type") == "application/geo+json",
                  "%s: %d %s" % (kw, st, body[:200]))
            check(got == want, "%s: /api/search differs from rsclip search -of GeoJSON" % kw)
            check(len(want["features"]) > 0 or "min_prob" in kw, "%s: no hits" % kw)
        # no hits: the GeoJSON is still the CLI's, the reason comes in a header
        st, hdr, body = srv.get("/api/search?q=lake&min_prob=0.99999")
        why = urllib.parse.unquote(hdr.get("X-Rsclip-Why-Empty", ""))
        check(st == 200 and json.loads(body)["features"] == [] and "minimum probability" in why,
              "no hits: %d %r" % (st, why))
        # GeoPackage download: the same hits
        kw = dict(q="airport", k=10)
        st, hdr, body = srv.get("/api/search?" + query(**kw, format="gpkg"))
        path = os.path.join(tmp, "dl.gpkg")
        with open(path, "wb") as f:
            f.write(body)
        ds = ogr.Open(path)
        ids = [f.GetField("tile_id") for f in ds.GetLayer(0)] if ds else []
        want = [f["properties"]["tile_id"] for f in search_geojson(idx, cli_args(kw))["features"]]
        check(st == 200 and "attachment" in hdr.get("Content-Disposition", "") and ids == want,
              "GeoPackage download: %d %s %s" % (st, ids, want))
        # chips are the PNGs of --chips
        d = os.path.join(tmp, "chips")
        run(["search", idx, "airport", "-k", "10", "--chips", d], check_rc=0)
        with open(os.path.join(d, "chips.geojson")) as f:
            for feat in json.load(f)["features"]:
                p = feat["properties"]
                st, hdr, body = srv.get("/api/chip/%d.png" % p["tile_id"])
                check(st == 200 and hdr.get("Content-Type") == "image/png" and
                      np.array_equal(read_png(body), read_png(os.path.join(d, p["view"]))),
                      "chip %d differs from %s" % (p["tile_id"], p["view"]))
        # map tiles: what GDAL draws itself, scaled as indexed
        for stem, z in (("usgs_hro", 19), ("s2_aberystwyth", 13), ("l7_rgb", 9)):
            sid = [k for k, v in scenes.items() if stem in os.path.basename(v["path"])][0]
            feats = [f for f in search_geojson(idx, ["x", "--scene", str(sid), "-k", "1"])
                     ["features"]]
            lon, lat = feats[0]["properties"]["lon"], feats[0]["properties"]["lat"]
            zxy = tile_of(lon, lat, z)
            st, hdr, body = srv.get("/tiles/%d/%d/%d.png" % zxy)
            img = read_png(body)
            check(st == 200 and img.shape[:2] == (256, 256), "tile %s: %d %s" % (zxy, st,
                                                                                img.shape))
            ref, valid = reference_tile(scenes[sid], *zxy)
            alpha = img[..., 3] > 0 if img.shape[2] == 4 else np.ones((256, 256), bool)
            both = valid & alpha
            agree = (both.sum() / max(1, (valid | alpha).sum()))
            diff = np.abs(img[..., :3].astype(float) - ref)[both].mean() if both.any() else 1e9
            check(both.sum() > 1000 and agree > 0.97 and diff < 2.0,
                  "tile %s of %s: %d valid pixels, coverage agreement %.3f, mean |diff| %.2f"
                  % (zxy, stem, both.sum(), agree, diff))
            print("map tile %s of %s: %d pixels, mean |diff| vs gdal.Warp %.3f" %
                  (zxy, stem, both.sum(), diff))
        st, _, body = srv.get("/tiles/3/0/0.png")  # Pacific: no scene
        check(st == 200 and read_png(body)[..., 3].max() == 0, "an empty tile is not clear")
        # static files and HEAD
        st, hdr, body = srv.get("/")
        check(st == 200 and b'id="gallery"' in body and "text/html" in hdr["Content-Type"],
              "index page")
        st, hdr, body = srv.get("/leaflet/leaflet.js")
        with open(os.path.join(LEAFLET, "leaflet.js"), "rb") as f:
            check(st == 200 and body == f.read(), "leaflet.js is not Debian's")
        st, hdr, body = srv.get("/api/info", method="HEAD")
        check(st == 200 and body == b"" and int(hdr["Content-Length"]) > 10, "HEAD")
        check(srv.alive(), "server died")
    finally:
        rc, err = srv.stop()
    check(rc == 0 and "stopping" in err, "SIGINT: rc %s, stderr %s" % (rc, err[-500:]))


# ---- browser --------------------------------------------------------------------------------

def chromium(args, url, timeout=120):
    prof = tempfile.mkdtemp(prefix="rsclip_chrome_")
    try:
        p = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                            "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", "--no-first-run", "--user-data-dir=" + prof] +
                           args + [url], capture_output=True, text=True, timeout=timeout)
        return p.stdout
    finally:
        shutil.rmtree(prof, ignore_errors=True)


def gallery(dom):
    return [(int(r), int(t)) for r, t in
            re.findall(r'<figure class="hit[^"]*" data-rank="(\d+)" data-tile-id="(\d+)"', dom)]


class DevTools:
    """Chromium driven over --remote-debugging-pipe (fd 3 in, fd 4 out; NUL-terminated JSON)."""

    def __init__(self, url):
        self.prof = tempfile.mkdtemp(prefix="rsclip_chrome_")
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()

        def child():  # fds 3 and 4, whatever numbers the pipes got (they may be 3 or 4 already)
            a, b = os.dup(to_r), os.dup(from_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
        self.p = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--user-data-dir=" + self.prof, "--window-size=1280,900",
             "--remote-debugging-pipe", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=child,
            close_fds=False)
        os.close(to_r)
        os.close(from_w)
        self.buf = b""
        self.n = 0
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]

    def call(self, method, params=None, session=None, timeout=60):
        self.n += 1
        msg = {"id": self.n, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        end = time.time() + timeout
        while time.time() < end:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.n:
                    if "error" in reply:
                        raise RuntimeError("%s: %s" % (method, reply["error"]))
                    return reply["result"]
            r, _, _ = select.select([self.from_r], [], [], 1)
            if r:
                chunk = os.read(self.from_r, 65536)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self.buf += chunk
        raise RuntimeError("%s: no answer in %d s" % (method, timeout))

    def js(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                           "returnByValue": True}, self.session)
        return r["result"].get("value")

    def wait_done(self, before=None, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            state = self.js("document.body.dataset.state + '|' + location.search")
            if state and state.startswith("done|") and state != before:
                return state
            time.sleep(0.2)
        raise RuntimeError("the page did not finish: %s" % state)

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait()
        os.close(self.to_w)
        os.close(self.from_r)
        shutil.rmtree(self.prof, ignore_errors=True)


def test_browser(tmp):
    if not CHROMIUM:
        raise SystemExit("chromium is not installed (scripts/install-deps installs it)")
    idx = build_index(os.path.join(tmp, "idx.gpkg"), [SAMPLES])
    srv = Server(idx)
    try:
        for kw in (dict(q="airport", k=9), dict(q="river", **{"not": "city"}, k=6),
                   dict(q="lake", like=[3, 30], unlike=7, k=11), dict(q="lake", min_prob=0.99999)):
            dom = chromium(["--dump-dom", "--virtual-time-budget=15000"],
                           srv.url + "/?" + query(**kw))
            want = [(f["properties"]["rank"], f["properties"]["tile_id"])
                    for f in search_geojson(idx, cli_args(kw))["features"]]
            got = gallery(dom)
            check(got == want, "%s: gallery %s, CLI %s" % (kw, got, want))
            status = ">%d hits<" % len(want) if want else ">no hits: "
            check('data-state="done"' in dom and status in dom,
                  "%s: the page did not finish: %s" % (kw, re.findall(r'id="status"[^<]*', dom)))
        shot = os.path.join(os.getcwd(), "serve_screenshot.png")
        if os.path.exists(shot):
            os.remove(shot)
        chromium(["--screenshot=" + shot, "--window-size=1280,900", "--virtual-time-budget=15000"],
                 srv.url + "/?q=airport&k=12")
        img = read_png(shot) if os.path.exists(shot) else np.zeros((1, 1, 3))
        check(img.shape[:2] == (900, 1280) and img.std() > 20, "screenshot %s" % (img.shape,))
        print("screenshot kept:", shot)
        # the labelling loop, clicked: "more like this" on hit 3, then "not this" on hit 1
        dt = DevTools(srv.url + "/?q=lake&k=10")
        try:
            st = dt.wait_done()
            first = json.loads(dt.js("JSON.stringify([...document.querySelectorAll('.hit')]"
                                     ".map(e => +e.dataset.tileId))"))
            dt.js("document.querySelectorAll('.hit')[2].querySelector('button.like').click()")
            st = dt.wait_done(st)
            dt.js("document.querySelectorAll('.hit')[0].querySelector('button.unlike').click()")
            st = dt.wait_done(st)
            q = urllib.parse.parse_qs(st.split("|", 1)[1].lstrip("?"))
            got = json.loads(dt.js("JSON.stringify([...document.querySelectorAll('.hit')]"
                                   ".map(e => +e.dataset.tileId))"))
            liked, unliked = first[2], None
            unliked = int(q.get("unlike", ["0"])[0])
            check(q.get("like") == [str(liked)] and unliked > 0,
                  "clicks gave the URL %s (liked %d)" % (st, liked))
            want = [f["properties"]["tile_id"] for f in search_geojson(
                idx, ["lake", "-k", "10", "--like-tile", str(liked), "--unlike-tile",
                      str(unliked)])["features"]]
            check(got == want, "after the clicks the gallery is %s, the CLI says %s" % (got, want))
            chips = json.loads(dt.js("JSON.stringify([...document.querySelectorAll('.example')]"
                                     ".map(e => e.className + ':' + e.dataset.tileId))"))
            check(chips == ["example like:%d" % liked, "example unlike:%d" % unliked],
                  "example chips %s" % chips)
            # clicking a hit selects it (and zooms the map to its footprint)
            dt.js("document.querySelectorAll('.hit')[1].click()")
            sel = dt.js("[...document.querySelectorAll('.hit.selected')].map(e => "
                        "e.dataset.rank).join()")
            check(sel == "2", "clicking hit 2 selected %r" % sel)
        finally:
            dt.close()
    finally:
        rc, err = srv.stop()
    check(rc == 0, "SIGINT: rc %s %s" % (rc, err[-300:]))


# ---- hostile --------------------------------------------------------------------------------

def test_hostile(tmp):
    idx = build_index(os.path.join(tmp, "idx.gpkg"), [sample("usgs_hro"), sample("l8_b7")])
    own_tmp = os.path.join(tmp, "server_tmp")
    os.makedirs(own_tmp)
    # a model asked for by name must load, as in every other command
    p = subprocess.run([BIN, "serve", idx, "--port", "0", "-m", os.path.join(tmp, "no_model")],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 1 and "no_model" in p.stderr, "serve -m with no such model: exit %d %s"
          % (p.returncode, p.stderr[-200:]))
    srv = Server(idx, ["--timeout", "2", "--http-threads", "2", "--max-k", "5"], tmpdir=own_tmp)
    try:
        # --max-k bounds the default k (20) too
        st, hdr, body = srv.get("/api/search?q=lake")
        n = len(json.loads(body).get("features", [])) if st == 200 else -1
        check(st == 200 and 0 < n <= 5, "--max-k 5, no k: %d hits (status %d)" % (n, st))
        for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/leaflet/../../../etc/passwd",
                     "/api/chip/../../../etc/passwd", "/leaflet/%2e%2e/%2e%2e/etc/hosts",
                     "/index.html/..", "//etc/passwd", "/tiles/../../etc/passwd",
                     "/api/chip/1.png/../../x"):
            st = srv.raw(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, srv.host)).encode())
            check(st == 404, "%s: %d" % (path, st))
        bad = {"/api/search?q=x&k=100000": 400, "/api/search?q=x&k=0": 400,
               "/api/search?q=x&k=-1": 400, "/api/search?q=x&k=1e3": 400,
               "/api/search?q=x&k=99999999999999999999999": 400, "/api/search?q=x&bbox=1,2,3": 400,
               "/api/search?q=x&bbox=10,0,0,1": 400, "/api/search?q=x&min_prob=2": 400,
               "/api/search?q=x&format=exe": 400, "/api/search?q=x&evil=1": 400,
               "/api/search?k=5": 400, "/api/search?q=%20": 400,
               "/api/search?q=x&like=0": 400, "/api/search?q=x&like=abc": 400,
               "/api/search?q=x&like=999999": 404, "/api/search?q=x&scene=999": 404,
               "/api/search?q=x&template=no+hole": 400, "/api/search?q=x&template=": 400,
               "/api/search?q=x&not=": 400, "/api/search?q=x&not=+": 400,
               "/api/search?" + query(q="x", **{"not": ["n%d" % i for i in range(17)]}): 400,
               "/api/search?" + "&".join("like=1" for _ in range(65)) + "&q=x": 400,
               "/api/search?" + "&".join("a%d=1" % i for i in range(200)): 400,
               "/api/search?q=" + "a" * 2000: 414,
               "/tiles/25/0/0.png": 400, "/tiles/3/8/0.png": 400, "/tiles/3/0/8.png": 400,
               "/tiles/-1/0/0.png": 400, "/tiles/a/b/c.png": 400, "/tiles/1/0.png": 404,
               "/tiles/1/0/0/0.png": 400, "/tiles/99999999999/0/0.png": 400,
               "/tiles/1/0/0.jpg": 404, "/tiles/": 404, "/api/chip/0.png": 404,
               "/api/chip/99999999.png": 404, "/api/chip/abc.png": 404, "/api/chip/1.jpg": 404,
               "/api/chip/-1.png": 404, "/api/chip/99999999999999999999999.png": 404,
               "/api/nothing": 404, "/favicon.ico": 404}
        for path, want in bad.items():
            st, hdr, body = srv.get(path)
            ok = st == want and hdr.get("Content-Type") == "application/json" and \
                "error" in json.loads(body)
            check(ok, "%s: %d (wanted %d) %s" % (path[:80], st, want, body[:120]))
        # a 1 MB query string and 1 MB of headers never reach a handler
        st = srv.raw(b"GET /api/search?q=" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: " +
                     srv.host.encode() + b"\r\n\r\n")
        check(st in (0, 414, 431), "1 MB query string: %d" % st)
        st = srv.raw(b"GET /api/info HTTP/1.1\r\nHost: " + srv.host.encode() + b"\r\nX-Big: " +
                     b"b" * (1 << 20) + b"\r\n\r\n")
        check(st in (0, 413, 431), "1 MB header: %d" % st)
        st, _, _ = srv.get("/api/search?q=x", method="POST", body=b"a=b")
        check(st == 405, "POST: %d" % st)
        st, _, _ = srv.get("/api/info", method="DELETE")
        check(st == 405, "DELETE: %d" % st)
        st, _, _ = srv.get("/api/info", headers={"Content-Length": "5"}, body=b"hello")
        check(st == 413, "GET with a body: %d" % st)
        st, _, _ = srv.get("/api/info", headers={"Host": "evil.example:80"})
        check(st == 403, "foreign Host: %d" % st)
        st = srv.raw(b"GET /api/info HTTP/1.1\r\n\r\n")
        check(st in (400, 403), "no Host: %d" % st)
        st = srv.raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64))
        check(st in (0, 400), "TLS hello: %d" % st)
        # slow and idle clients: others are served meanwhile; the slow one is cut off
        slow = socket.create_connection(("127.0.0.1", srv.port))
        slow.sendall(b"GET /api/info HTTP/1.1\r\nHo")
        idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(40)]
        t0 = time.time()
        for i in range(20):
            st, _, _ = srv.get("/api/info", timeout=10)
            check(st == 200, "request %d beside slow clients: %d" % (i, st))
        check(time.time() - t0 < 10, "slow clients slowed the others: %.1f s" % (time.time() - t0))
        slow.settimeout(15)
        t0 = time.time()
        try:
            cut = slow.recv(100) == b""
        except (ConnectionResetError, socket.timeout):
            cut = True
        check(cut and time.time() - t0 < 12, "a slow client was not cut off (--timeout 2)")
        for s in idle + [slow]:
            s.close()
        check(srv.alive(), "the server did not survive")
    finally:
        rc, err = srv.stop(signal.SIGTERM)
    check(rc == 0 and "terminated" in err, "SIGTERM: rc %s %s" % (rc, err[-300:]))
    check(os.listdir(own_tmp) == [], "the server left files in TMPDIR: %s" % os.listdir(own_tmp))
    # a scene file gone after indexing: its chips are a 500 naming it, the map leaves it out
    gone = os.path.join(tmp, "gone.tif")
    shutil.copy(sample("usgs_hro"), gone)
    idx2 = build_index(os.path.join(tmp, "gone.gpkg"), [gone, sample("l8_b7")])
    rows = tile_rows(idx2)
    tid = [k for k, r in rows.items() if r["scene"] == gone][0]
    os.remove(gone)
    srv = Server(idx2)
    try:
        st, _, body = srv.get("/api/chip/%d.png" % tid)
        check(st == 500 and b"gone.tif" in body, "chip of a missing file: %d %s" % (st, body))
        feats = search_geojson(idx2, ["x", "-k", "40"])["features"]
        lon, lat = [(f["properties"]["lon"], f["properties"]["lat"]) for f in feats
                    if f["properties"]["tile_id"] == tid][0]
        for _ in range(2):
            st, _, body = srv.get("/tiles/%d/%d/%d.png" % tile_of(lon, lat, 17))
            check(st == 200 and read_png(body)[..., 3].max() == 0, "tile of a missing file")
        check(srv.alive(), "a missing scene file took the server down")
    finally:
        rc, err = srv.stop()
    check(rc == 0 and err.count("left off the map") == 1 and "gone.tif" in err,
          "a missing scene is said once: %s" % err[-400:])
    # usage errors
    for args, want in ((["serve"], 2), (["serve", idx, "--port", "70000"], 2),
                       (["serve", idx, idx], 2), (["serve", idx, "--bind", "nowhere"], 2),
                       (["serve", os.path.join(tmp, "none.gpkg"), "--port", "0"], 1),
                       (["serve", idx, "--port", "0", "--leaflet", tmp], 1)):
        p = run(args, timeout=60)
        check(p.returncode == want, "%s: rc %d (wanted %d) %s" % (args[1:], p.returncode, want,
                                                                  p.stderr[-200:]))
    # a port in use is said, not hung on
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    p = run(["serve", idx, "--port", str(s.getsockname()[1])], timeout=60)
    check(p.returncode == 1 and "cannot listen" in p.stderr, "port in use: %s" % p.stderr)
    s.close()


# ---- shards -------------------------------------------------------------------------------

def by_window(fc, rows):
    """Hits as (rank, scene, window, prob): tile ids differ between a file and a plan's parts."""
    return [(f["properties"]["rank"], f["properties"]["scene"],
             tuple(rows[f["properties"]["tile_id"]]["win"]), round(f["properties"]["prob"], 5))
            for f in fc["features"]]


def test_shards(tmp):
    from render_common import MODEL
    idx = build_index(os.path.join(tmp, "idx.gpkg"), [SAMPLES])
    plan, parts = os.path.join(tmp, "plan.jsonl"), os.path.join(tmp, "parts")
    run(["plan", "-m", MODEL, "-o", plan, SAMPLES], check_rc=0)
    for i in range(2):
        run(["index", "-q", "-m", MODEL, "--plan", plan, "--shard", "%d/2" % i, "-o",
             parts + "/"], check_rc=0)
    names = sorted(os.listdir(parts))
    check(names == ["part-00000-of-00002.gpkg", "part-00001-of-00002.gpkg"], "parts %s" % names)
    rows = {}
    for n in names:
        rows.update(tile_rows(os.path.join(parts, n)))
    file_rows = tile_rows(idx)
    part_of = {}
    for n in names:
        for t in tile_rows(os.path.join(parts, n)):
            part_of[t] = n
    base = search_geojson(parts, ["water", "-k", "40"])["features"]
    ids = [f["properties"]["tile_id"] for f in base]
    # a like tile from one part and an unlike tile from the other
    like = next(t for t in ids[10:] if part_of[t] == names[0])
    unlike = next(t for t in ids if part_of[t] == names[1])
    srv = Server(parts)
    try:
        for kw in (dict(q="airport", k=10), dict(q="river", **{"not": "city"}, k=12),
                   dict(q="lake", like=like, unlike=unlike, k=15)):
            st, _, body = srv.get("/api/search?" + query(**kw))
            want = search_geojson(parts, cli_args(kw))
            check(st == 200 and json.loads(body) == want, "folder %s: API != CLI" % kw)
            if "like" not in kw:  # the merged file's hits (tile ids are the plan's)
                ref = search_geojson(idx, cli_args(kw))
                check(by_window(want, rows) == by_window(ref, file_rows),
                      "folder %s: not the hits of one file" % kw)
        for t in (ids[0], ids[-1], like, unlike):
            st, _, body = srv.get("/api/chip/%d.png" % t)
            check(st == 200 and read_png(body).shape[2] == 3, "chip %d of %s: %d" %
                  (t, part_of[t], st))
        for f in base[:6]:
            zxy = tile_of(f["properties"]["lon"], f["properties"]["lat"], 12)
            st, _, body = srv.get("/tiles/%d/%d/%d.png" % zxy)
            img = read_png(body)  # RGB when no pixel is transparent
            check(st == 200 and (img.shape[2] == 3 or img[..., 3].max() == 255),
                  "map tile %s" % (zxy,))
    finally:
        rc, err = srv.stop()
    check(rc == 0, "SIGINT: %s %s" % (rc, err[-300:]))
    d = os.path.join(tmp, "chips")
    run(["search", parts, "airport", "-k", "6", "--chips", d], check_rc=0)
    with open(os.path.join(d, "chips.geojson")) as f:
        check(len(json.load(f)["features"]) == 6, "chips of a folder")
    p = run(["search", parts, "airport", "--chips", parts, "--overwrite"])
    check(p.returncode == 1 and "index folder" in p.stderr, "the index folder as chips folder: %s"
          % p.stderr)
    p = run(["search", parts, "airport", "--sheet", os.path.join(parts, "part-00000-of-00002.gpkg"),
             "--overwrite"])
    check(p.returncode == 1, "a part written as a sheet")


# ---- load -----------------------------------------------------------------------------------

def test_load(tmp):
    idx = build_index(os.path.join(tmp, "idx.gpkg"), [SAMPLES])
    words = ["airport", "river", "lake", "houses", "farmland", "harbour", "roads", "forest",
             "industrial area", "beach", "parking lot", "island"]
    hits = search_geojson(idx, ["water", "-k", "60"])["features"]
    tiles = []
    for f in hits[:20]:
        z, x, y = tile_of(f["properties"]["lon"], f["properties"]["lat"], 12)
        tiles += [(zz, x >> (12 - zz), y >> (12 - zz)) for zz in (9, 11, 12)]
    reqs = []
    for i in range(200):
        kind = ("search", "chip", "tile")[i % 3]
        if kind == "search":
            reqs.append((kind, "/api/search?" + query(q=words[i % len(words)], k=10 + i % 11)))
        elif kind == "chip":
            reqs.append((kind, "/api/chip/%d.png" % hits[i % len(hits)]["properties"]["tile_id"]))
        else:
            reqs.append((kind, "/tiles/%d/%d/%d.png" % tiles[i % len(tiles)]))
    srv = Server(idx, ["--http-threads", "4"])
    results, lock = [], threading.Lock()

    def client(k):
        for i in range(k, len(reqs), 16):
            kind, path = reqs[i]
            t0 = time.perf_counter()
            try:
                st, _, body = srv.get(path, timeout=120)
            except Exception as e:  # noqa: BLE001 -- a failure is counted, not raised
                st, body = -1, str(e).encode()
            with lock:
                results.append((kind, st, time.perf_counter() - t0, len(body)))
    try:
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        check(srv.alive(), "the server did not survive the load")
    finally:
        rc, err = srv.stop()
    errors = [r for r in results if r[1] != 200]
    check(len(results) == 200 and not errors, "%d of %d requests failed: %s" %
          (len(errors), len(results), errors[:5]))
    lat = {}
    for kind, st, dt, n in results:
        lat.setdefault(kind, []).append(dt * 1000)
        lat.setdefault("all", []).append(dt * 1000)
    print("load: 200 requests, 16 clients, %.1f s wall, %.0f requests/s" % (wall, 200 / wall))
    for kind in ("search", "chip", "tile", "all"):
        v = np.array(lat.get(kind, [0]))
        print("  %-6s n=%3d  p50 %7.1f ms  p95 %7.1f ms  max %7.1f ms" %
              (kind, len(v), np.percentile(v, 50), np.percentile(v, 95), v.max()))
    check(rc == 0, "SIGINT after the load: rc %s %s" % (rc, err[-300:]))


GROUPS = {"api": test_api, "browser": test_browser, "hostile": test_hostile, "shards": test_shards,
          "load": test_load}

if __name__ == "__main__":
    group = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="rsclip_serve_")
    try:
        GROUPS[group](tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    finish("test_serve " + group)
