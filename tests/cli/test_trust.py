#!/usr/bin/python3
"""rsclip trusts nothing it reads back (issue 11), end to end through the real binary.

Usage: test_trust.py GROUP   (one ctest each)
  readonly  searching never needs write access: a read-only folder (searched as an unprivileged
            user when the test runs as root, root ignoring permissions), an index left in WAL mode
            by an older rsclip, a read-only bind mount (in a user + mount namespace), a tampered
            cache that cannot be rewritten: same hits as a normal search, nothing written.
  cache     a tampered .rsvec cache (any section) is detected, the hits stay those of the index,
            and the cache is rewritten whole.
  model     the model identity: a checkpoint with a few changed floats anywhere is refused against
            an index built with the original; legacy (sampled) fingerprints keep working; the
            digest is cached per file version; weights rewritten during `rsclip index` stop it
            before anything is stored.
"""
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ["RSCLIP_BIN"]
FIX = os.path.join(os.environ["RSCLIP_FIXTURES"], "siglip-tiny")
SRC = os.environ["RSCLIP_SOURCE_DIR"]
SCENE = os.path.join(SRC, "samples", "l7_rgb_300m_nodata_collar_epsg32618.tif")

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, file=sys.stderr)
    return cond


def run(args, env=None, timeout=300, prefix=()):
    p = subprocess.run(list(prefix) + [BIN] + args, capture_output=True, timeout=timeout, env=env)
    check(p.returncode >= 0, "rsclip %s died from signal %d" % (args[:4], -p.returncode))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def base_env(tmp):
    env = dict(os.environ)
    env["RSCLIP_CACHE"] = os.path.join(tmp, "rsclip-cache")
    env.pop("RSCLIP_LOG", None)
    return env


def make_index(tmp, env, name="idx.gpkg"):
    d = os.path.join(tmp, name + ".d")
    os.makedirs(d)
    idx = os.path.join(d, name)
    rc, out, err = run(["index", "-q", "-m", FIX, "-o", idx, SCENE], env)
    check(rc == 0, "index: rc %d %s" % (rc, err))
    return d, idx


SEARCH = ["river", "-k", "7", "-m", FIX, "--precision", "f32"]


# ---- readonly ------------------------------------------------------------------------------

def reader_prefix():
    """How to run a command without write access to a folder we own: as nobody when root."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv"):
        return ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    return None


def listing(d):
    return sorted(os.listdir(d))


def test_readonly():
    tmp = tempfile.mkdtemp(prefix="rsclip_test_ro_")
    os.chmod(tmp, 0o755)
    try:
        env = base_env(tmp)
        d, idx = make_index(tmp, env)
        rc, want, err = run(["search", idx] + SEARCH, env)
        check(rc == 0 and want.count("\n") == 8, "baseline search: rc %d %r %s" % (rc, want, err))
        check(os.path.exists(idx + ".rsvec"), "baseline search wrote the cache")
        prefix = reader_prefix()
        if prefix is None:
            print("readonly: SKIPPED (root without setpriv: cannot give up write access)")
            return
        if prefix:  # nobody must be able to traverse to the files
            for p in (tmp, d):
                os.chmod(p, 0o755)

        def ro_search(path, what, folder, expect_files=None):
            os.chmod(folder, 0o555)
            try:
                before = listing(folder)
                rc, out, err = run(["search", path] + SEARCH, env, prefix=prefix)
                check(rc == 0, "%s: rc %d %s" % (what, rc, err))
                check(out == want, "%s: hits differ:\n%s\nvs\n%s" % (what, out, want))
                check(listing(folder) == (expect_files or before),
                      "%s: files changed: %s -> %s" % (what, before, listing(folder)))
                rc, out, err = run(["info", path], env, prefix=prefix)
                check(rc == 0 and "Tiles" in out, "%s: info: rc %d %s" % (what, rc, err))
            finally:
                os.chmod(folder, 0o755)

        # 1. the folder of a cleanly closed index, read-only to the searcher, no cache
        os.unlink(idx + ".rsvec")
        ro_search(idx, "read-only folder", d)
        # 2. the same, the file left in WAL mode (as every index of an older rsclip): immutable
        con = sqlite3.connect(idx)
        check(con.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal", "WAL switch")
        con.close()
        check(open(idx, "rb").read(20)[18:20] == b"\x02\x02", "the header says WAL")
        ro_search(idx, "read-only folder, WAL mode", d)
        # 3. a stale / tampered cache that cannot be rewritten: vectors built in memory
        rc, _, err = run(["search", idx] + SEARCH, env)  # writes the cache (folder writable)
        cache = idx + ".rsvec"
        check(rc == 0 and os.path.exists(cache), "cache rewritten: %s" % err)
        blob = bytearray(open(cache, "rb").read())
        blob[len(blob) // 2] ^= 0x5A
        with open(cache, "wb") as f:
            f.write(blob)
        con = sqlite3.connect(idx)
        con.execute("PRAGMA journal_mode = WAL")
        con.close()
        ro_search(idx, "read-only folder, tampered cache", d)
        check(open(cache, "rb").read() == bytes(blob), "the read-only cache was left alone")
        # 4. a read-only bind mount (user + mount namespace: works as root and as a user)
        mnt = os.path.join(tmp, "mnt")
        os.makedirs(mnt)
        script = ('mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && '
                  'touch "$2/probe" 2>/dev/null && exit 97; shift 2; exec "$@"')
        p = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", d, mnt, BIN, "search",
                            os.path.join(mnt, "idx.gpkg")] + SEARCH,
                           capture_output=True, timeout=300, env=env)
        err = p.stderr.decode(errors="replace")
        if p.returncode != 0 and ("unshare" in err or "mount" in err) and "rsclip" not in err:
            print("readonly: bind mount part SKIPPED (%s)" % err.strip().splitlines()[-1])
        else:
            check(p.returncode == 0, "read-only bind mount: rc %d %s" % (p.returncode, err))
            check(p.stdout.decode() == want, "read-only bind mount: hits differ")
        check(not os.path.exists(os.path.join(d, "probe")), "the bind mount was writable")
    finally:
        for root, dirs, _ in os.walk(tmp):
            for x in dirs:
                os.chmod(os.path.join(root, x), 0o755)
        shutil.rmtree(tmp, ignore_errors=True)


# ---- cache ---------------------------------------------------------------------------------

def rsvec_sections(blob):
    """(offset, length) of ids, scales, scales4, codes, codes4 of a version-2 cache."""
    magic, version, hsize, dim, stride, count = struct.unpack_from("<8sIIIIQ", blob, 0)
    assert magic == b"RSVECSET" and version == 2, (magic, version)
    off_ids, off_sc, off_codes, off_fl, _, _, off_sc4, off_codes4 = struct.unpack_from("<8Q", blob,
                                                                                       48)
    secs = {"ids": (off_ids, 8 * count), "scales": (off_sc, 4 * count),
            "scales4": (off_sc4, 4 * count), "codes": (off_codes, stride * count),
            "codes4": (off_codes4, stride // 2 * count)}
    if off_fl:
        secs["floats"] = (off_fl, 4 * dim * count)
    return secs


def test_cache():
    tmp = tempfile.mkdtemp(prefix="rsclip_test_cache_")
    try:
        env = base_env(tmp)
        d, idx = make_index(tmp, env)
        cache = idx + ".rsvec"
        rc, want, err = run(["search", idx] + SEARCH, env)
        check(rc == 0 and os.path.exists(cache), "baseline: rc %d %s" % (rc, err))
        good = open(cache, "rb").read()
        secs = rsvec_sections(good)
        # rebuilt caches are the same bytes: the content, not the run, defines them
        os.unlink(cache)
        run(["search", idx] + SEARCH, env)
        check(open(cache, "rb").read() == good, "a rebuilt cache has the same bytes")
        for name, (off, length) in secs.items():
            for where in (0, length // 2, length - 1):
                blob = bytearray(good)
                blob[off + where] ^= 0x21
                with open(cache, "wb") as f:
                    f.write(blob)
                rc, out, err = run(["search", idx] + SEARCH, env)
                what = "tampered %s byte %d" % (name, where)
                check(rc == 0, "%s: rc %d %s" % (what, rc, err))
                check(out == want, "%s: hits changed:\n%s\nvs\n%s" % (what, out, want))
                check(open(cache, "rb").read() == good, "%s: the cache was not rewritten" % what)
        # a cache of the old format (version 1) is rebuilt
        blob = bytearray(good)
        struct.pack_into("<I", blob, 8, 1)
        with open(cache, "wb") as f:
            f.write(blob)
        rc, out, err = run(["search", idx] + SEARCH, env)
        check(rc == 0 and out == want and open(cache, "rb").read() == good,
              "an old-version cache is rebuilt: rc %d %s" % (rc, err))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

# ---- model ---------------------------------------------------------------------------------

MODEL_FILES = ["config.json", "model.safetensors", "spiece.model", "preprocessor_config.json",
               "tokenizer_config.json"]


def legacy_fingerprint(blob):
    """The legacy sampled fingerprint: FNV-1a 64 over the header and 64 blocks of 4 KiB."""
    h = 0xcbf29ce484222325

    def fnv(h, data):
        for c in data:
            h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
        return h
    (n,) = struct.unpack_from("<Q", blob, 0)
    h = fnv(h, blob[:8 + n])
    data = blob[8 + n:]
    if len(data) <= 64 * 4096:
        h = fnv(h, data)
    else:
        span = len(data) - 4096
        q, r = divmod(span, 63)
        for k in range(64):
            off = q * k + r * k // 63
            h = fnv(h, data[off:off + 4096])
    return "%016x" % h


def legacy_gaps(blob):
    """Byte offsets (in the file) between the legacy fingerprint's samples."""
    (n,) = struct.unpack_from("<Q", blob, 0)
    data = 8 + n
    span = len(blob) - data - 4096
    q, r = divmod(span, 63)
    for k in range(63):
        end = q * k + r * k // 63 + 4096
        nxt = q * (k + 1) + r * (k + 1) // 63
        for off in range(end + 64, nxt - 64, 4):
            yield data + off


def model_copy(tmp, name, blob=None):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    for f in MODEL_FILES:
        shutil.copy(os.path.join(FIX, f), os.path.join(d, f))
    if blob is not None:
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(blob)
    return d


def embeddings_of(idx):
    con = sqlite3.connect(idx)
    rows = con.execute("SELECT s.path, t.xoff, t.yoff, e.vec FROM tiles t JOIN embeddings e ON "
                       "e.tile_id = t.fid JOIN scenes s ON s.id = t.scene_id").fetchall()
    fp = con.execute("SELECT value FROM rsclip_meta WHERE key = 'model_fingerprint'").fetchone()
    con.close()
    return {(p, x, y): v for p, x, y, v in rows}, fp[0] if fp else None


def info_json(idx, env):
    rc, out, err = run(["info", idx, "--json"], env)
    check(rc == 0, "info: rc %d %s" % (rc, err))
    return json.loads(out) if rc == 0 else {}


def test_model():
    tmp = tempfile.mkdtemp(prefix="rsclip_test_model_")
    try:
        env = base_env(tmp)
        a_blob = open(os.path.join(FIX, "model.safetensors"), "rb").read()
        b_blob = bytearray(a_blob)
        changed = 0
        for off in legacy_gaps(a_blob):  # 1,741 floats where the sampled fingerprint never looks
            if changed == 1741:
                break
            (x,) = struct.unpack_from("<f", b_blob, off)
            if not abs(x) < 1e6:
                continue
            struct.pack_into("<f", b_blob, off, x * 1.5 + 0.01)
            changed += 1
        b_blob = bytes(b_blob)
        check(changed == 1741, "1741 floats changed")
        check(legacy_fingerprint(a_blob) == legacy_fingerprint(b_blob), "legacy blind spot")
        ma, mb = model_copy(tmp, "model-a"), model_copy(tmp, "model-b", b_blob)
        sha_a = "sha256:" + hashlib.sha256(a_blob).hexdigest()
        sha_b = "sha256:" + hashlib.sha256(b_blob).hexdigest()

        # 1. an index records the SHA-256 of the checkpoint; the changed one is refused
        d = os.path.join(tmp, "i1")
        os.makedirs(d)
        idx = os.path.join(d, "a.gpkg")
        rc, _, err = run(["index", "-q", "-m", ma, "-o", idx, "--precision", "f32", SCENE], env)
        check(rc == 0, "index with a: %s" % err)
        check(info_json(idx, env).get("fingerprint") == sha_a,
              "info shows the sha256 fingerprint: %s" % info_json(idx, env))
        rc, out, err = run(["search", idx, "river", "-m", mb], env)
        check(rc == 1 and "was built with model" in err and sha_a in err and sha_b in err,
              "a checkpoint with 1741 changed floats is refused: rc %d %r" % (rc, err))
        rc, out, err = run(["index", "-q", "-m", mb, "-o", idx, SCENE], env)
        check(rc == 1 and sha_b in err, "and cannot add to it: rc %d %r" % (rc, err))
        rc, want, err = run(["search", idx] + SEARCH[:3] + ["-m", ma], env)
        check(rc == 0, "the original still searches: %s" % err)

        # 2. an index of an older rsclip (legacy fingerprint) keeps working, and stays legacy
        legacy = legacy_fingerprint(a_blob)
        con = sqlite3.connect(idx)
        con.execute("UPDATE rsclip_meta SET value = ? WHERE key = 'model_fingerprint'", (legacy,))
        con.commit()
        con.close()
        rc, out, err = run(["search", idx] + SEARCH[:3] + ["-m", ma], env)
        check(rc == 0 and out == want, "legacy index, same model: rc %d %s" % (rc, err))
        f16 = os.path.join(os.environ["RSCLIP_FIXTURES"], "siglip-tiny-f16")
        rc, out, err = run(["search", idx, "river", "-m", f16], env)
        check(rc == 1 and legacy in err, "legacy index, other model refused: rc %d %r" % (rc, err))
        rc, _, err = run(["index", "-q", "-m", ma, "-o", idx, "--force", SCENE], env)
        check(rc == 0, "indexing into a legacy index: %s" % err)
        check(embeddings_of(idx)[1] == legacy, "a legacy index keeps its fingerprint")

        # 3. the digest is computed once per file version: a planted entry is believed
        time.sleep(1.2)  # digests of files changed within the last second are not cached
        run(["search", idx] + SEARCH[:3] + ["-m", ma], env)
        digests = os.path.join(env["RSCLIP_CACHE"], ".sha256-digests")
        text = open(digests).read()
        check(sha_a[7:] in text, "the digest cache holds model-a: %r" % text)

        # 4. weights rewritten in place during `rsclip index`: never a crash, never a mix
        # (b's changes are all in the text tower: here every tensor changes)
        (n,) = struct.unpack_from("<Q", a_blob, 0)
        c_blob = bytearray(a_blob)
        for off in range(8 + n, len(c_blob) - 3, 64):
            (x,) = struct.unpack_from("<f", c_blob, off)
            if abs(x) < 1e6:
                struct.pack_into("<f", c_blob, off, x * 1.25 + 0.01)
        b_blob = bytes(c_blob)
        sha_b = "sha256:" + hashlib.sha256(b_blob).hexdigest()
        refs = {}
        for name, blob in (("ra", a_blob), ("rb", b_blob)):
            m = model_copy(tmp, "ref-" + name, blob)
            ri = os.path.join(tmp, name + ".gpkg")
            rc, _, err = run(["index", "-q", "-m", m, "-o", ri, "--precision", "f32",
                              os.path.join(SRC, "samples")], env)
            check(rc == 0, "reference index %s: %s" % (name, err))
            refs[name] = embeddings_of(ri)
        check(refs["ra"][1] == sha_a and refs["rb"][1] == sha_b, "reference fingerprints")
        check(refs["ra"][0] != refs["rb"][0], "the changed floats change the vectors")
        mc = model_copy(tmp, "model-c")
        target = os.path.join(mc, "model.safetensors")
        samples = os.path.join(SRC, "samples")

        def race(writer, it):
            """Index the samples with model-c while writer() rewrites its checkpoint."""
            stop = threading.Event()
            th = threading.Thread(target=writer, args=(stop,), daemon=True)
            ri = os.path.join(tmp, "race%d.gpkg" % it)
            th.start()
            rc, _, err = run(["index", "-q", "-m", mc, "-o", ri, "--precision", "f32", samples],
                             env)
            stop.set()
            th.join()
            with open(target, "wb") as f:
                f.write(a_blob)
            check(rc in (0, 1), "rewritten weights: rc %d %s" % (rc, err))
            if rc == 1:
                # "changed while it was being read", or what a truncated file then looks like
                check("model.safetensors" in err and err.count("\n") == 1 and
                      err.startswith("rsclip: "), "clear message: %r" % err)
                if os.path.exists(ri):
                    check(not embeddings_of(ri)[0], "nothing stored when refused")
                return "refused"
            vecs, fp = embeddings_of(ri)
            ref = refs["ra"] if fp == sha_a else refs["rb"] if fp == sha_b else None
            if ref:
                check(vecs == ref[0], "run %d: every vector from the version recorded" % it)
                return "A" if fp == sha_a else "B"
            # a torn snapshot of the file read whole: recorded as what it is, matching neither
            rc, _, err = run(["search", ri, "river", "-m", ma], env)
            check(rc == 1 and "was built with model" in err, "a torn read is not taken for A")
            return "other"

        # a new version copied over the old one in place (cp) once, some time into the run
        outcomes = {}
        for it, delay in enumerate((0.0, 0.2, 0.5, 1.0)):
            def cp_over(stop, delay=delay):
                time.sleep(delay)
                with open(target, "r+b") as f:
                    f.write(b_blob)
            o = race(cp_over, it)
            outcomes[o] = outcomes.get(o, 0) + 1

        # hostile: rewritten without pause, truncated now and then
        def flip(stop):
            k = 0
            while not stop.is_set():
                with open(target, "wb" if k % 3 == 0 else "r+b") as f:
                    f.write(b_blob if k % 2 else a_blob)
                k += 1
        for it in range(4, 7):
            o = race(flip, it)
            outcomes[o] = outcomes.get(o, 0) + 1
        print("rewritten during index: %s" % outcomes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    group = sys.argv[1] if len(sys.argv) > 1 else ""
    tests = {"readonly": test_readonly, "cache": test_cache, "model": test_model}
    if group not in tests:
        print("usage: test_trust.py %s" % "|".join(tests), file=sys.stderr)
        return 2
    tests[group]()
    if failures:
        print("test_trust %s: %d check(s) failed" % (group, failures), file=sys.stderr)
        return 1
    print("test_trust %s: all checks passed" % group)
    return 0


if __name__ == "__main__":
    sys.exit(main())
