"""Shared helpers of the plugin tests: environment, running the GDAL tools, the test index."""
import glob
import json
import os
import shutil
import subprocess
import sys

SRC = os.environ["RSCLIP_SOURCE_DIR"]
FIXTURES = os.environ["RSCLIP_FIXTURES"]
RSCLIP = os.environ["RSCLIP_BIN"]
MODEL = os.path.join(FIXTURES, "siglip-tiny")
SCENES = sorted(glob.glob(os.path.join(SRC, "samples", "*.tif")))

failures = []


def check(cond, what):
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what)
        failures.append(what)
    return cond


def finish():
    if failures:
        print("%d check(s) failed:" % len(failures))
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def tool_env():
    env = dict(os.environ)
    # Sanitizer builds: the uninstrumented GDAL tools load an instrumented plugin, so the
    # sanitizer runtime must be preloaded. Children keep the caller's ASAN_OPTIONS (leak checks
    # on: the GDAL tools leak nothing); only this Python process runs without leak detection.
    pre = os.environ.get("RSCLIP_PRELOAD")
    if pre:
        env["LD_PRELOAD"] = pre
        env["ASAN_OPTIONS"] = os.environ.get("RSCLIP_ASAN_OPTIONS", "")
    return env


def reexec_with_preload():
    """Sanitizer builds: this Python process loads the instrumented plugin too (osgeo), so it
    must start with the sanitizer runtime preloaded: re-exec once with it. Python itself leaks a
    little at exit: no leak detection for this process."""
    pre = os.environ.get("RSCLIP_PRELOAD")
    if pre and os.environ.get("LD_PRELOAD") != pre:
        env = dict(os.environ)
        env["RSCLIP_ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "")
        env["ASAN_OPTIONS"] = env["RSCLIP_ASAN_OPTIONS"] + ":detect_leaks=0"
        env["LD_PRELOAD"] = pre
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def run(args, expect_ok=True, cwd=None):
    """Run a tool; returns (rc, stdout, stderr). Prints the command when it fails."""
    p = subprocess.run(args, capture_output=True, text=True, env=tool_env(), cwd=cwd)
    if expect_ok and p.returncode != 0:
        print("command failed (rc %d): %s\n%s\n%s" % (p.returncode, " ".join(args), p.stdout,
                                                      p.stderr))
    return p.returncode, p.stdout, p.stderr


def build_index(work):
    """A fresh index of the sample scenes with the tiny fixture model."""
    if os.path.isdir(work):
        shutil.rmtree(work)
    os.makedirs(work)
    idx = os.path.join(work, "idx.gpkg")
    rc, out, err = run([RSCLIP, "index", "-q", "-m", MODEL, "-o", idx] + SCENES)
    if rc != 0:
        print("cannot build the test index")
        sys.exit(1)
    return idx


def ref_search(idx, text, k, out, merge=False, bbox=None):
    """The reference: `rsclip search` writing GeoJSON (hits, or regions with merge)."""
    args = [RSCLIP, "search", idx, text, "-k", str(k), "-of", "GeoJSON", "-o", out]
    if merge:
        args.append("--merge")
    if bbox:
        args += ["--bbox", ",".join("%.10f" % v for v in bbox)]
    rc, _, _ = run(args)
    return rc


def read_geojson(path):
    with open(path) as f:
        return json.load(f)["features"]
