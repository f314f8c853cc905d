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
import os
import shutil
import sqlite3
import stat
import struct
import subprocess
import sys
import tempfile

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


def main():
    group = sys.argv[1] if len(sys.argv) > 1 else ""
    tests = {"readonly": test_readonly, "cache": test_cache}
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
