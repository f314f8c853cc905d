#!/usr/bin/python3
"""rsclip model fetch against a local hub: a stdlib HTTP server on 127.0.0.1 serving the
siglip-tiny fixture as /<repo>/resolve/main/<file>, with Range support, 404s, a connection cut
after K bytes, a server that ignores Range, and a sharded checkpoint made here from the fixture.

Every rsclip run has a timeout and the server thread is a daemon with socket timeouts, so a bug
can fail this test but never hang it."""
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ["RSCLIP_BIN"]
FIX = os.path.join(os.environ["RSCLIP_FIXTURES"], "siglip-tiny")
SNAPSHOT = ["config.json", "model.safetensors", "spiece.model", "preprocessor_config.json",
            "tokenizer_config.json", "special_tokens_map.json"]
CUT_AT = 100_000
TOKEN = "hf_test_token"

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, file=sys.stderr)
    return cond


def read(path):
    with open(path, "rb") as f:
        return f.read()


def make_shards(tmp):
    """Split model.safetensors into two shards + index (tensors alternate between the shards)."""
    blob = read(os.path.join(FIX, "model.safetensors"))
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    names = [k for k in header if k != "__metadata__"]
    shards = {"model-00001-of-00002.safetensors": names[0::2],
              "model-00002-of-00002.safetensors": names[1::2]}
    files = {}
    weight_map = {}
    for fname, members in shards.items():
        hdr = {"__metadata__": {"format": "pt"}}
        chunks = []
        off = 0
        for name in members:
            b, e = header[name]["data_offsets"]
            hdr[name] = {"dtype": header[name]["dtype"], "shape": header[name]["shape"],
                         "data_offsets": [off, off + e - b]}
            chunks.append(data[b:e])
            off += e - b
            weight_map[name] = fname
        h = json.dumps(hdr, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        files[fname] = struct.pack("<Q", len(h)) + h + b"".join(chunks)
    index = {"metadata": {"total_size": len(data)}, "weight_map": weight_map}
    files["model.safetensors.index.json"] = json.dumps(index, indent=2).encode()
    for f in SNAPSHOT:
        if f != "model.safetensors":
            files[f] = read(os.path.join(FIX, f))
    return files


LFS_SUFFIXES = (".safetensors", "spiece.model")
HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Sign in to the network</title></head>"
             b"<body><p>Please accept the terms to continue.</p></body></html>\n")


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


class Hub:
    """A local imitation of huggingface.co's /<repo>/resolve/main/<file>.

    LFS files (*.safetensors, spiece.model) answer 302 to /cdn/<repo>/<file> with the hub's
    X-Linked-Etag (the SHA-256), X-Linked-Size and ETag, as the real hub does; the "CDN" sends the
    bytes with its own ETag and honours Range + If-Range. Other files are served directly with a
    git-style ETag. repos: {repo_id: {file: bytes}}. Per-repo modes:
      cut       the first GET of model.safetensors stops after CUT_AT bytes (connection cut)
      norange   Range headers are ignored (200 with the whole file)
      auth      the hub wants "Authorization: Bearer TOKEN"
      html      model.safetensors is an HTML page served with 200 (a captive portal)
      nolength  model.safetensors: no length anywhere, the body cut after CUT_AT, no LFS headers
      badsha    X-Linked-Etag announces the SHA-256 of other bytes
      trickle   the CDN sends model.safetensors at 2 bytes per second
      stalehead HEAD answers with the headers of hub.old[repo][file] (a stale cache in front)"""

    def __init__(self, repos, modes):
        self.repos = repos
        self.modes = modes
        self.old = {}
        self.log = []      # (repo, file, range header or None, status) of GET requests
        self.if_range = []  # (repo, file, If-Range header) of GET requests that had one
        self.cut_done = set()
        self.lock = threading.Lock()
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.respond(head=True)

            def do_GET(self):
                self.respond(head=False)

            def reply(self, status, headers, body=b"", head=False):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                if not head and body:
                    self.wfile.write(body)

            def respond(self, head):
                rng = self.headers.get("Range")
                m = re.match(r"^/(cdn/)?([^/]+/[^/]+)/(?:resolve/main/)?([^/]+)$", self.path)
                cdn = bool(m and m.group(1))
                repo, fname = (m.group(2), m.group(3)) if m else (None, None)
                if m and not cdn and not re.match(r"^/[^/]+/[^/]+/resolve/main/[^/]+$",
                                                  self.path):
                    repo = None
                body = hub.repos.get(repo, {}).get(fname) if repo else None
                if body is None:
                    hub.record(repo, fname, rng, 404, head)
                    self.reply(404, [("Content-Length", "15")], b"Entry not found", head)
                    return
                modes = hub.modes.get(repo, ())
                if (not cdn and "auth" in modes and
                        self.headers.get("Authorization") != "Bearer " + TOKEN):
                    hub.record(repo, fname, rng, 401, head)
                    self.reply(401, [("Content-Length", "0")], head=head)
                    return
                big = fname == "model.safetensors"
                if big and "html" in modes:
                    self.serve(repo, fname, HTML_PAGE, '"portal"', head, rng, (),
                               ctype="text/html; charset=utf-8")
                    return
                if big and "nolength" in modes:
                    self.serve(repo, fname, body, None, head, rng, ("nolength",))
                    return
                lfs = fname.endswith(LFS_SUFFIXES)
                if lfs and not cdn:
                    shown = hub.old.get(repo, {}).get(fname, body) if (
                        head and "stalehead" in modes) else body
                    sha = sha256_hex(shown if "badsha" not in modes else shown + b"x")
                    hub.record(repo, fname, rng, 302, head)
                    self.reply(302, [("Location", "/cdn/%s/%s" % (repo, fname)),
                                     ("X-Linked-Etag", '"%s"' % sha),
                                     ("X-Linked-Size", str(len(shown))),
                                     ("ETag", '"%s"' % sha), ("Content-Length", "0")], head=head)
                    return
                if head and "stalehead" in modes and fname in hub.old.get(repo, {}):
                    body = hub.old[repo][fname]
                etag = '"%s%s"' % ("cdn-" if lfs else "", hashlib.sha1(body).hexdigest())
                self.serve(repo, fname, body, etag, head, rng, modes)

            def serve(self, repo, fname, body, etag, head, rng, modes, ctype=None):
                start = 0
                if_range = self.headers.get("If-Range")
                if rng and not head and if_range:
                    with hub.lock:
                        hub.if_range.append((repo, fname, if_range))
                honour = rng and "norange" not in modes and "nolength" not in modes and (
                    not if_range or if_range == etag)
                headers = [("Content-Type", ctype or "application/octet-stream")]
                if etag:
                    headers.append(("ETag", etag))
                if honour:
                    r = re.match(r"^bytes=(\d+)-$", rng)
                    start = int(r.group(1)) if r else 0
                    if start >= len(body):
                        hub.record(repo, fname, rng, 416, head)
                        self.reply(416, headers + [("Content-Range", "bytes */%d" % len(body)),
                                                   ("Content-Length", "0")], head=head)
                        return
                    status = 206
                    headers.append(("Content-Range",
                                    "bytes %d-%d/%d" % (start, len(body) - 1, len(body))))
                else:
                    status = 200
                hub.record(repo, fname, rng, status, head)
                part = body[start:]
                if "nolength" in modes:
                    self.close_connection = True
                    headers.append(("Connection", "close"))
                else:
                    headers.append(("Content-Length", str(len(part))))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                if head:
                    return
                if "nolength" in modes:
                    self.wfile.write(part[:CUT_AT])
                    return
                if "trickle" in modes and fname == "model.safetensors":
                    try:
                        for i in range(0, len(part), 2):
                            self.wfile.write(part[i:i + 2])
                            self.wfile.flush()
                            time.sleep(1.0)
                    except OSError:  # the client gave up: what this mode is for
                        self.close_connection = True
                    return
                key = (repo, fname)
                with hub.lock:
                    cut = ("cut" in modes and fname == "model.safetensors" and
                           key not in hub.cut_done)
                    if cut:
                        hub.cut_done.add(key)
                if cut:
                    self.wfile.write(part[:CUT_AT])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(part)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.timeout = 10
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def record(self, repo, fname, rng, status, head):
        if not head:  # the log holds GET requests only
            with self.lock:
                self.log.append((repo, fname, rng, status))

    def gets(self, repo, fname, since=0):
        return [e for e in self.log[since:] if e[0] == repo and e[1] == fname and e[3] != 302]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run(args, env, timeout=120):
    p = subprocess.run([BIN] + args, env=env, capture_output=True, timeout=timeout)
    check(p.returncode >= 0, "rsclip %s died from signal %d" % (args, -p.returncode))
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def same_files(dirpath, files, what):
    ok = True
    for f, content in files.items():
        path = os.path.join(dirpath, f)
        ok &= check(os.path.isfile(path) and read(path) == content, "%s: %s differs" % (what, f))
    leftovers = [f for f in os.listdir(dirpath) if f.endswith((".part", ".lock", ".meta")) or
                 f.startswith(".rsclip-meta")]
    ok &= check(not leftovers, "%s: leftovers %s" % (what, leftovers))
    return ok


def embed_first_image(model, env):
    rc, out, err = run(["embed", "-m", model, "--image", os.path.join(FIX, "img0.png")], env)
    if not check(rc == 0, "embed -m %s: rc %d: %s" % (model, rc, err)):
        return None
    return json.loads(out)["embeddings"][0]


def main():
    tiny = {f: read(os.path.join(FIX, f)) for f in SNAPSHOT}
    minimal = {f: tiny[f] for f in ["config.json", "model.safetensors", "spiece.model"]}
    sharded = make_shards(tempfile.gettempdir())
    evil = dict(sharded)
    evil_index = json.loads(sharded["model.safetensors.index.json"])
    first = next(iter(evil_index["weight_map"]))
    evil_index["weight_map"][first] = "../escaped.safetensors"
    evil["model.safetensors.index.json"] = json.dumps(evil_index).encode()
    # a second version of the weights: same size, other bytes
    (hlen,) = struct.unpack("<Q", tiny["model.safetensors"][:8])
    other = bytearray(tiny["model.safetensors"])
    for off in range(8 + hlen, len(other) - 3, 4096):
        other[off] ^= 0x01
    tiny2 = dict(tiny, **{"model.safetensors": bytes(other)})
    hub = Hub({"test/tiny": tiny, "test/minimal": minimal, "test/cut": tiny,
               "test/norange": tiny, "test/sharded": sharded, "test/evil": evil, "test/auth": tiny,
               "test/html": dict(minimal), "test/nolength": dict(minimal),
               "test/change": dict(tiny), "test/stale": dict(tiny), "test/badsha": dict(minimal),
               "test/trickle": dict(minimal)},
              {"test/cut": ("cut",), "test/norange": ("cut", "norange"),
               "test/auth": ("cut", "auth"), "test/html": ("html",),
               "test/nolength": ("nolength",), "test/change": ("cut",), "test/stale": ("cut",),
               "test/badsha": ("badsha",), "test/trickle": ("trickle",)})
    tmp = tempfile.mkdtemp(prefix="rsclip_test_hub_")
    try:
        # no proxy may stand between curl and 127.0.0.1; no user settings leak in
        base_env = {k: v for k, v in os.environ.items()
                    if k not in ("RSCLIP_CACHE", "XDG_CACHE_HOME", "HF_TOKEN") and
                    not k.lower().endswith("_proxy") and not k.startswith("GDAL_HTTP")}
        base_env["NO_PROXY"] = base_env["no_proxy"] = "127.0.0.1,localhost"
        base_env["HF_ENDPOINT"] = "http://127.0.0.1:%d" % hub.port
        base_env["RSCLIP_CACHE"] = os.path.join(tmp, "cache")

        # 1. plain fetch into -o DIR, with GDAL-style progress on stderr
        d1 = os.path.join(tmp, "d1")
        rc, out, err = run(["model", "fetch", "test/tiny", "-o", d1], base_env)
        check(rc == 0, "fetch test/tiny: rc %d: %s" % (rc, err))
        check(out.strip() == d1, "fetch prints the folder: %r" % out)
        check("0...10...20...30...40...50...60...70...80...90...100 - done." in err,
              "progress on stderr: %r" % err)
        same_files(d1, tiny, "fetch test/tiny")
        # a second run downloads nothing
        n_before = len(hub.log)
        rc, out, err = run(["model", "fetch", "-q", "test/tiny", "-o", d1], base_env)
        check(rc == 0 and err == "", "refetch -q: rc %d, stderr %r" % (rc, err))
        check(len(hub.log) == n_before, "refetch downloaded %s" % hub.log[n_before:])

        # 2. optional files may 404
        d2 = os.path.join(tmp, "d2")
        rc, out, err = run(["model", "fetch", "-q", "test/minimal", "-o", d2], base_env)
        check(rc == 0, "fetch test/minimal: rc %d: %s" % (rc, err))
        same_files(d2, minimal, "fetch test/minimal")
        check(sorted(os.listdir(d2)) == sorted(minimal), "minimal: %s" % os.listdir(d2))

        # 3. cut connection: .part kept, second run resumes with a Range request
        d3 = os.path.join(tmp, "d3")
        rc, out, err = run(["model", "fetch", "-q", "test/cut", "-o", d3], base_env)
        check(rc == 1, "interrupted fetch exits 1 (got %d)" % rc)
        check(err.count("\n") == 1 and err.startswith("rsclip: ") and "model.safetensors" in err,
              "interrupted fetch: one line naming the file: %r" % err)
        part = os.path.join(d3, "model.safetensors.part")
        check(os.path.isfile(part) and os.path.getsize(part) == CUT_AT,
              ".part of %d bytes kept (%s)" % (CUT_AT, os.path.getsize(part)
                                               if os.path.exists(part) else "missing"))
        check(not os.path.exists(os.path.join(d3, "model.safetensors")), "no partial final file")
        rc, out, err = run(["model", "fetch", "-q", "test/cut", "-o", d3], base_env)
        check(rc == 0, "resumed fetch: rc %d: %s" % (rc, err))
        check(("test/cut", "model.safetensors", "bytes=%d-" % CUT_AT, 206) in hub.log,
              "server saw the Range request: %s" % [e for e in hub.log if e[0] == "test/cut"])
        same_files(d3, tiny, "resumed fetch")

        # 4. a server that answers 200 to a Range request: restart from byte 0
        d4 = os.path.join(tmp, "d4")
        rc, out, err = run(["model", "fetch", "-q", "test/norange", "-o", d4], base_env)
        check(rc == 1, "norange: first run interrupted (rc %d)" % rc)
        rc, out, err = run(["model", "fetch", "-q", "test/norange", "-o", d4], base_env)
        check(rc == 0, "norange: second run: rc %d: %s" % (rc, err))
        same_files(d4, tiny, "fetch after a 200 answer to Range")

        # 4b. $HF_TOKEN is sent as a bearer token, together with Range when resuming
        d4b = os.path.join(tmp, "d4b")
        rc, out, err = run(["model", "fetch", "-q", "test/auth", "-o", d4b], base_env)
        check(rc == 1 and "401" in err, "no token: rc %d %r" % (rc, err))
        auth_env = dict(base_env, HF_TOKEN=TOKEN)
        rc, out, err = run(["model", "fetch", "-q", "test/auth", "-o", d4b], auth_env)
        check(rc == 1 and "interrupted" in err, "token, cut: rc %d %r" % (rc, err))
        rc, out, err = run(["model", "fetch", "-q", "test/auth", "-o", d4b], auth_env)
        check(rc == 0, "token, resumed: rc %d %r" % (rc, err))
        check(("test/auth", "model.safetensors", "bytes=%d-" % CUT_AT, 206) in hub.log,
              "resumed with token + Range: %s" % [e for e in hub.log if e[0] == "test/auth"])
        same_files(d4b, tiny, "fetch with a token")

        # 5. unknown repo / bad names
        rc, out, err = run(["model", "fetch", "-q", "nobody/nothing", "-o",
                            os.path.join(tmp, "d5")], base_env)
        check(rc == 1 and "config.json" in err and err.count("\n") == 1,
              "unknown repo: rc %d: %r" % (rc, err))
        rc, out, err = run(["model", "fetch", "-q", "../../etc"], base_env)
        check(rc == 1 and "repo id" in err, "bad repo id: rc %d: %r" % (rc, err))
        rc, out, err = run(["model", "fetch"], base_env)
        check(rc == 2, "fetch without a name is a usage error (rc %d)" % rc)

        # 6. default cache folders: $RSCLIP_CACHE, then ~/.cache/rsclip/models
        rc, out, err = run(["model", "fetch", "-q", "test/tiny"], base_env)
        cached = os.path.join(tmp, "cache", "test", "tiny")
        check(rc == 0 and out.strip() == cached, "fetch into RSCLIP_CACHE: %d %r %r" %
              (rc, out, err))
        same_files(cached, tiny, "RSCLIP_CACHE")
        rc, out, err = run(["model", "path", "test/tiny"], base_env)
        check(rc == 0 and out.strip() == cached, "model path: %r %r" % (out, err))
        home_env = {k: v for k, v in base_env.items() if k != "RSCLIP_CACHE"}
        home_env["HOME"] = os.path.join(tmp, "home")
        rc, out, err = run(["model", "fetch", "-q", "test/minimal"], home_env)
        home_dir = os.path.join(tmp, "home", ".cache", "rsclip", "models", "test", "minimal")
        check(rc == 0 and out.strip() == home_dir, "fetch into ~/.cache: %r %r" % (out, err))
        same_files(home_dir, minimal, "~/.cache")
        rc, out, err = run(["model", "path", "not/fetched"], base_env)
        check(rc == 1 and "rsclip model fetch not/fetched" in err, "not cached: %r" % err)
        rc, out, err = run(["embed", "-m", "not/fetched", "--text", "x"], base_env)
        check(rc == 1 and "rsclip model fetch" in err and err.count("\n") == 1,
              "embed with an unfetched model: %r" % err)

        # 7. sharded checkpoint: model.safetensors 404s, the index and its shards are fetched
        d7 = os.path.join(tmp, "d7")
        rc, out, err = run(["model", "fetch", "-q", "test/sharded", "-o", d7], base_env)
        check(rc == 0, "fetch test/sharded: rc %d: %s" % (rc, err))
        same_files(d7, sharded, "sharded")
        check(not os.path.exists(os.path.join(d7, "model.safetensors")), "no model.safetensors")

        # 8. a hostile index cannot write outside the folder
        d8 = os.path.join(tmp, "d8", "inner")
        rc, out, err = run(["model", "fetch", "-q", "test/evil", "-o", d8], base_env)
        check(rc == 1 and "model.safetensors.index.json" in err, "evil index: %d %r" % (rc, err))
        check(not os.path.exists(os.path.join(tmp, "d8", "escaped.safetensors")),
              "evil index escaped the folder")

        # 9. models resolved from the cache work; the sharded copy gives the same numbers
        e_cache = embed_first_image("test/tiny", base_env)
        e_dir = embed_first_image(FIX, base_env)
        e_shard = embed_first_image(d7, base_env)
        check(e_cache is not None and e_cache == e_dir, "embed via the cache == via the folder")
        check(e_shard is not None and e_shard == e_dir, "sharded == single-file embeddings")

        # ---- nothing the server sends is trusted ----------------------------------------------
        def no_model(d, what):
            check(not os.path.exists(os.path.join(d, "model.safetensors")),
                  "%s: a model.safetensors was installed" % what)
            left = [f for f in os.listdir(d) if f.startswith("model.safetensors.")]
            check(not left, "%s: leftovers %s" % (what, left))

        # 10. an HTML page served with 200 is never installed; a damaged file already present
        # is downloaded again instead of being kept
        d10 = os.path.join(tmp, "d10")
        rc, out, err = run(["model", "fetch", "-q", "test/html", "-o", d10], base_env)
        check(rc == 1 and "model.safetensors" in err and "not installed" in err and
              err.count("\n") == 1, "HTML page: rc %d %r" % (rc, err))
        no_model(d10, "HTML page")
        with open(os.path.join(d10, "model.safetensors"), "wb") as f:
            f.write(HTML_PAGE)  # as an older rsclip installed it
        rc, out, err = run(["model", "fetch", "-q", "test/minimal", "-o", d10], base_env)
        check(rc == 0, "damaged file present, fetched again: rc %d %r" % (rc, err))
        same_files(d10, minimal, "repaired")

        # 11. a body cut short without any length: not installed, and again next time; then the
        # fixed server's file is installed
        d11 = os.path.join(tmp, "d11")
        for attempt in range(2):
            rc, out, err = run(["model", "fetch", "-q", "test/nolength", "-o", d11], base_env)
            check(rc == 1 and "not installed" in err, "cut without length: rc %d %r" % (rc, err))
            no_model(d11, "cut without length")
        hub.modes["test/nolength"] = ()
        rc, out, err = run(["model", "fetch", "-q", "test/nolength", "-o", d11], base_env)
        check(rc == 0, "fixed server: rc %d %r" % (rc, err))
        same_files(d11, minimal, "after a cut without length")

        # 12. the upstream file changes between two attempts: no splice, the new version whole
        d12 = os.path.join(tmp, "d12")
        rc, out, err = run(["model", "fetch", "-q", "test/change", "-o", d12], base_env)
        check(rc == 1 and os.path.getsize(os.path.join(d12, "model.safetensors.part")) == CUT_AT,
              "change: first attempt cut: rc %d %r" % (rc, err))
        hub.repos["test/change"] = tiny2
        n0 = len(hub.log)
        rc, out, err = run(["model", "fetch", "-q", "test/change", "-o", d12], base_env)
        check(rc == 0, "change: second attempt: rc %d %r" % (rc, err))
        same_files(d12, tiny2, "upstream changed between attempts")
        check(not [e for e in hub.gets("test/change", "model.safetensors", n0) if e[2]],
              "change: no Range request for another version: %s" % hub.log[n0:])

        # 13. ... and changes between HEAD and GET (a stale HEAD): If-Range makes the server send
        # the whole new file, which starts the .part over
        d13 = os.path.join(tmp, "d13")
        rc, out, err = run(["model", "fetch", "-q", "test/stale", "-o", d13], base_env)
        check(rc == 1, "stale: first attempt cut: rc %d" % rc)
        hub.old["test/stale"] = {"model.safetensors": tiny["model.safetensors"]}
        hub.repos["test/stale"] = tiny2
        hub.modes["test/stale"] = ("stalehead",)
        n0 = len(hub.log)
        rc, out, err = run(["model", "fetch", "-q", "test/stale", "-o", d13], base_env)
        check(rc == 0, "stale: second attempt: rc %d %r" % (rc, err))
        same_files(d13, tiny2, "upstream changed between HEAD and GET")
        old_cdn_tag = '"cdn-%s"' % hashlib.sha1(tiny["model.safetensors"]).hexdigest()
        check(("test/stale", "model.safetensors", old_cdn_tag) in hub.if_range,
              "stale: resumed with If-Range on the old ETag: %s" % hub.if_range)
        got = hub.gets("test/stale", "model.safetensors", n0)
        check(len(got) >= 2 and got[0][2] == "bytes=%d-" % CUT_AT and got[0][3] == 200 and
              got[-1][2] is None, "stale: 200 to the ranged request, then from byte 0: %s" % got)

        # 14. a SHA-256 that does not match: not installed; the next run starts afresh
        d14 = os.path.join(tmp, "d14")
        rc, out, err = run(["model", "fetch", "-q", "test/badsha", "-o", d14], base_env)
        check(rc == 1 and "SHA-256" in err and "not installed" in err,
              "wrong sha256: rc %d %r" % (rc, err))
        no_model(d14, "wrong sha256")
        hub.modes["test/badsha"] = ()
        n0 = len(hub.log)
        rc, out, err = run(["model", "fetch", "-q", "test/badsha", "-o", d14], base_env)
        check(rc == 0, "sha256 fixed: rc %d %r" % (rc, err))
        same_files(d14, minimal, "after a wrong sha256")
        check([e[2] for e in hub.gets("test/badsha", "model.safetensors", n0)] == [None],
              "refetched from byte 0: %s" % hub.log[n0:])

        # 15. a 2 B/s trickle with a short deadline stops on time
        d15 = os.path.join(tmp, "d15")
        t0 = time.time()
        rc, out, err = run(["model", "fetch", "-q", "test/trickle", "-o", d15],
                           dict(base_env, RSCLIP_FETCH_TIMEOUT="3"), timeout=60)
        took = time.time() - t0
        check(rc == 1 and "deadline" in err and "RSCLIP_FETCH_TIMEOUT" in err,
              "trickle: rc %d %r" % (rc, err))
        check(took < 15, "trickle: stopped after %.1f s (deadline 3 s)" % took)
        check(not os.path.exists(os.path.join(d15, "model.safetensors")), "trickle installed")
        rc, out, err = run(["model", "fetch", "-q", "--timeout", "2", "test/trickle", "-o", d15],
                           base_env, timeout=60)
        check(rc == 1 and "deadline of 2 s" in err, "--timeout: rc %d %r" % (rc, err))
        rc, out, err = run(["model", "fetch", "-q", "test/tiny", "-o", d15],
                           dict(base_env, RSCLIP_FETCH_TIMEOUT="soon"))
        check(rc == 1 and "RSCLIP_FETCH_TIMEOUT" in err, "bad timeout: rc %d %r" % (rc, err))

        # 16. the size cap: announced sizes are refused before any byte, unannounced ones stop
        d16 = os.path.join(tmp, "d16")
        rc, out, err = run(["model", "fetch", "-q", "test/tiny", "-o", d16],
                           dict(base_env, RSCLIP_FETCH_MAX_BYTES="300K"))
        check(rc == 1 and "size cap" in err and "model.safetensors" in err,
              "cap: rc %d %r" % (rc, err))
        no_model(d16, "cap")
        hub.modes["test/nolength"] = ("nolength",)
        rc, out, err = run(["model", "fetch", "-q", "--max-size", "50000", "test/nolength", "-o",
                            os.path.join(tmp, "d16b")], base_env)
        check(rc == 1 and "size cap of 50000" in err, "cap without length: rc %d %r" % (rc, err))
        no_model(os.path.join(tmp, "d16b"), "cap without length")

        # 17. links planted where the .part files go are removed, never followed
        d17 = os.path.join(tmp, "d17")
        os.makedirs(d17)
        outside = os.path.join(tmp, "precious.txt")
        with open(outside, "w") as f:
            f.write("precious")
        os.symlink(outside, os.path.join(d17, "model.safetensors.part"))
        os.symlink(outside, os.path.join(d17, "model.safetensors.part.meta"))
        os.symlink(outside, os.path.join(d17, "config.json.part"))
        os.link(outside, os.path.join(d17, "spiece.model.part"))
        rc, out, err = run(["model", "fetch", "-q", "test/minimal", "-o", d17], base_env)
        check(rc == 0, "planted links: rc %d %r" % (rc, err))
        check(open(outside).read() == "precious", "a file outside the folder was written")
        same_files(d17, minimal, "planted links")

        # 18. the fetch remembers the weights' SHA-256 for the model loader
        digests = os.path.join(base_env["RSCLIP_CACHE"], ".sha256-digests")
        check(os.path.exists(digests) and
              sha256_hex(tiny["model.safetensors"]) in open(digests).read(),
              "the digest of a fetched checkpoint is remembered")
    finally:
        hub.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("test_hub: %d check(s) failed" % failures, file=sys.stderr)
        return 1
    print("test_hub: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
