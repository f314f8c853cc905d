#!/usr/bin/python3
"""rsclip model fetch against a local hub: a stdlib HTTP server on 127.0.0.1 serving the
siglip-tiny fixture as /<repo>/resolve/main/<file>, with Range support, 404s, a connection cut
after K bytes, a server that ignores Range, and a sharded checkpoint made here from the fixture.

Every rsclip run has a timeout and the server thread is a daemon with socket timeouts, so a bug
can fail this test but never hang it."""
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


class Hub:
    """repos: {repo_id: {file: bytes}}; per-repo modes: cut (first GET of model.safetensors
    stops after CUT_AT bytes), norange (Range headers ignored)."""

    def __init__(self, repos, modes):
        self.repos = repos
        self.modes = modes
        self.log = []  # (repo, file, range header or None, status)
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

            def respond(self, head):
                m = re.match(r"^/([^/]+/[^/]+)/resolve/main/([^/]+)$", self.path)
                rng = self.headers.get("Range")
                body = None
                if m and m.group(1) in hub.repos:
                    repo, fname = m.group(1), m.group(2)
                    body = hub.repos[repo].get(fname)
                else:
                    repo, fname = None, None
                if body is None:
                    hub.record(repo, fname, rng, 404, head)
                    msg = b"Entry not found"
                    self.send_response(404)
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    if not head:
                        self.wfile.write(msg)
                    return
                modes = hub.modes.get(repo, ())
                if "auth" in modes and self.headers.get("Authorization") != "Bearer " + TOKEN:
                    hub.record(repo, fname, rng, 401, head)
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                if rng and "norange" not in modes:
                    r = re.match(r"^bytes=(\d+)-$", rng)
                    start = int(r.group(1)) if r else 0
                    if start >= len(body):
                        hub.record(repo, fname, rng, 416, head)
                        self.send_response(416)
                        self.send_header("Content-Range", "bytes */%d" % len(body))
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     "bytes %d-%d/%d" % (start, len(body) - 1, len(body)))
                    hub.record(repo, fname, rng, 206, head)
                else:
                    self.send_response(200)
                    hub.record(repo, fname, rng, 200, head)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if head:
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
    leftovers = [f for f in os.listdir(dirpath) if f.endswith(".part") or f.endswith(".lock")]
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
    hub = Hub({"test/tiny": tiny, "test/minimal": minimal, "test/cut": tiny,
               "test/norange": tiny, "test/sharded": sharded, "test/evil": evil, "test/auth": tiny},
              {"test/cut": ("cut",), "test/norange": ("cut", "norange"),
               "test/auth": ("cut", "auth")})
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
