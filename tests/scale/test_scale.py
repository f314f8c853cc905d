#!/usr/bin/python3
"""Index past one machine (issue 12): the tile split, plans, parts, merge, and a real Slurm
job array on a one-node cluster started here (tests/scale/slurm_cluster.sh).

Usage: test_scale.py GROUP   (one ctest entry per group; see CMakeLists.txt)
"""
import glob
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

BIN = os.environ.get("RSCLIP_BIN", "build/core/rsclip")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from rsclip_testlib import check, failures, run  # noqa: E402  (the tests' shared helpers)
SRC = os.environ.get("RSCLIP_SOURCE_DIR", ".")
FIX = os.environ.get("RSCLIP_FIXTURES", os.path.join(SRC, "tests", "fixtures"))
MODEL = os.path.join(FIX, "siglip-tiny")
SAMPLES = os.path.join(SRC, "samples")
HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77


def mosaic(tmp, samples=None):
    """Inputs: one 2048 x 1536 mosaic (a VRT of 4 rasters: 48 tiles) and the samples (all, or
    those whose names start with one of `samples`)."""
    os.makedirs(os.path.join(tmp, "in"), exist_ok=True)
    rng = np.random.default_rng(11)
    srcs = []
    for k in range(4):
        p = os.path.join(tmp, "in", "m%d.tif" % k)
        ds = gdal.GetDriverByName("GTiff").Create(p, 1024, 768, 3, gdal.GDT_Byte)
        ds.SetGeoTransform((500000 + 1024 * (k % 2), 1, 0, 4000000 - 768 * (k // 2), 0, -1))
        s = osr.SpatialReference()
        s.ImportFromEPSG(32632)
        ds.SetProjection(s.ExportToWkt())
        for b in range(3):
            ds.GetRasterBand(b + 1).WriteArray(rng.integers(0, 256, (768, 1024), dtype=np.uint8))
        ds = None
        srcs.append(p)
    vrt = os.path.join(tmp, "in", "mosaic.vrt")
    gdal.BuildVRT(vrt, srcs)
    inputs = [vrt] + [os.path.join(SAMPLES, f) for f in sorted(os.listdir(SAMPLES))
                      if f.endswith(".tif") and (samples is None or f.startswith(samples))]
    return inputs


def content(index_paths):
    """(scene path, window) -> vector bytes over one index file or the parts of a folder."""
    out = {}
    for p in index_paths:
        db = sqlite3.connect(p)
        for path, x, y, w, h, vec in db.execute(
                "SELECT s.path, t.xoff, t.yoff, t.xsize, t.ysize, e.vec FROM tiles t JOIN scenes s "
                "ON s.id = t.scene_id JOIN embeddings e ON e.tile_id = t.fid"):
            key = (path, x, y, w, h)
            check(key not in out, "tile %s in exactly one part" % (key,))
            out[key] = bytes(vec)
        db.close()
    return out


def parts(folder):
    return sorted(glob.glob(os.path.join(folder, "part-*.gpkg")))


def search_hits(index, text="solar farms", k=25):
    p = run(["search", index, text, "-k", str(k), "-of", "GeoJSON"], check_rc=0)
    fc = json.loads(p.stdout)
    return [(f["properties"]["scene"], f["properties"]["xoff"], f["properties"]["yoff"],
             round(f["properties"]["score"], 6), round(f["properties"]["prob"], 6))
            for f in fc["features"]]


# ---- groups ---------------------------------------------------------------------------------

def group_split(tmp):
    """--shard I/N splits TILES: balanced parts, each tile in exactly one, the mosaic spread over
    all; the parts equal one process bit for bit (f32), and their merge too; reruns add nothing."""
    inputs = mosaic(tmp, ("naip_milwaukee",))
    single = os.path.join(tmp, "single.gpkg")
    run(["index", "-q", "-m", MODEL, "-o", single, "--precision", "f32"] + inputs, check_rc=0)
    folder = os.path.join(tmp, "city")
    n = 5
    for i in range(n):
        run(["index", "-q", "-m", MODEL, "-o", folder + "/", "--shard", "%d/%d" % (i, n),
             "--precision", "f32"] + inputs, check_rc=0)
    ps = parts(folder)
    check([os.path.basename(p) for p in ps] == ["part-%05d-of-%05d.gpkg" % (i, n)
                                                for i in range(n)], "part names: %s" % ps)
    whole = content([single])
    split = content(ps)
    check(whole == split, "parts hold exactly the single index's tiles, vectors bit for bit "
          "(%d vs %d tiles)" % (len(whole), len(split)))
    # balance by windows (stored + skipped), each part within one tile of the mean
    sizes = []
    for p in ps:
        db = sqlite3.connect(p)
        stored = db.execute("SELECT count(*) FROM tiles").fetchone()[0]
        skipped = db.execute("SELECT coalesce(sum(tiles_skipped), 0) FROM scenes").fetchone()[0]
        meta = dict(db.execute("SELECT key, value FROM rsclip_meta").fetchall())
        mos = db.execute("SELECT count(*) FROM tiles t JOIN scenes s ON s.id = t.scene_id "
                         "WHERE s.path LIKE '%mosaic.vrt'").fetchone()[0]
        db.close()
        sizes.append(stored + skipped)
        check(meta.get("shard_count") == str(n) and meta.get("shard_complete") == "1" and
              meta.get("plan_digest"), "part meta: %s" % meta)
        check(mos > 0, "the mosaic is spread over every part (%s has %d)" % (p, mos))
    mean = sum(sizes) / n
    check(max(sizes) <= 1.1 * mean + 1, "balanced parts: %s" % sizes)
    # a merged file equals the single index too, and merging again adds nothing
    merged = os.path.join(tmp, "merged.gpkg")
    run(["merge", "-q", "-o", merged, folder], check_rc=0)
    check(content([merged]) == whole, "merge of the parts == the single index")
    before = open(merged, "rb").read()
    p = run(["merge", "-o", merged, folder], check_rc=0)
    check("0 tiles added" in p.stderr, "merging again adds nothing: " + p.stderr)
    # search over the folder == over the merged file == over the single index
    hs = search_hits(single)
    check(search_hits(folder) == search_hits(merged) == hs and len(hs) == 25,
          "same hits over the folder, the merged file and the single index")
    p = run(["info", folder], check_rc=0)
    check("Parts:" in p.stdout and "%d of %d" % (n, n) in p.stdout, "info on a folder: " + p.stdout)
    # rerunning a complete shard adds nothing
    p = run(["index", "-m", MODEL, "-o", folder, "--shard", "2/%d" % n, "--precision", "f32"] +
            inputs, check_rc=0)
    check("0 tiles added" in p.stderr, "a complete part is left alone: " + p.stderr)
    # mixing: a worker of another shard count is refused before it writes, naming a part there
    p = run(["index", "-q", "-m", MODEL, "-o", folder, "--shard", "0/3"] + inputs)
    check(p.returncode == 1 and "-of-%05d.gpkg" % n in p.stderr and "0/3" in p.stderr and
          not os.path.exists(os.path.join(folder, "part-00000-of-00003.gpkg")),
          "a worker of another shard count refused: " + p.stderr)
    # a part of another count put there anyway (made elsewhere, copied in): the folder refuses
    other = os.path.join(os.path.dirname(folder), "other3")
    run(["index", "-q", "-m", MODEL, "-o", other, "--shard", "0/3"] + inputs, check_rc=0)
    p = run(["merge", "-o", os.path.join(os.path.dirname(folder), "partial.gpkg"), other],
            check_rc=0)
    check("2 of 3 parts missing" in p.stderr, "merging an incomplete folder warns: " + p.stderr)
    shutil.copy(os.path.join(other, "part-00000-of-00003.gpkg"), folder)
    p = run(["search", folder, "lake"])
    check(p.returncode == 1 and "part-00000-of-00003" in p.stderr and "shard_count" in p.stderr,
          "parts of different N refused: " + p.stderr)


def group_plan(tmp):
    """rsclip plan once; workers read only their share (--plan --shard auto from Slurm, K8s,
    AWS Batch variables); a scene changed since the plan fails; an edited plan is refused."""
    inputs = mosaic(tmp)
    plan = os.path.join(tmp, "plan.json")
    run(["plan", "-q", "-m", MODEL, "-o", plan] + inputs, check_rc=0)
    lines = open(plan).read().splitlines()
    head = json.loads(lines[0])
    check(head["scenes"] == len(inputs) and head["tiles"] > 60 and len(lines) == len(inputs) + 1,
          "plan header: %s" % head)
    p = run(["plan", "-m", MODEL, "-o", plan] + inputs)
    check(p.returncode == 1 and "exists" in p.stderr, "an existing plan is not overwritten")
    # never an input, not even with --overwrite: found in a folder, or named by the input list
    victim = os.path.join(tmp, "in", "m0.tif")
    before = open(victim, "rb").read()
    listf = os.path.join(tmp, "inputs.txt")
    with open(listf, "w") as f:
        f.write(victim + "\n")
    for args in (["-o", victim, "--overwrite", os.path.join(tmp, "in")],
                 ["-o", victim, "--overwrite", "--input-list", listf],
                 ["-o", listf, "--overwrite", "--input-list", listf]):
        p = run(["plan", "-q", "-m", MODEL] + args)
        check(p.returncode == 1 and "refusing to write over" in p.stderr,
              "plan %s refused: %d %s" % (" ".join(args[:3]), p.returncode, p.stderr[-200:]))
    check(open(victim, "rb").read() == before and open(listf).read() == victim + "\n",
          "the inputs and the input list are untouched")
    folder = os.path.join(tmp, "k8s")
    envs = [("JOB_COMPLETION_INDEX", "auto/3"), ("AWS_BATCH_JOB_ARRAY_INDEX", "auto/3")]
    for var, shard in envs:
        for i in range(3):
            env = dict(os.environ)
            env[var] = str(i)
            run(["index", "-q", "-m", MODEL, "--plan", plan, "--shard", shard, "-o",
                 folder + "_" + var], env=env, check_rc=0)
    a = content(parts(folder + "_JOB_COMPLETION_INDEX"))
    b = content(parts(folder + "_AWS_BATCH_JOB_ARRAY_INDEX"))
    check(a and a.keys() == b.keys(), "Kubernetes and AWS Batch indices give the same split")
    # Slurm with --array=1-3: index = id - min
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="2", SLURM_ARRAY_TASK_MIN="1",
               SLURM_ARRAY_TASK_COUNT="3")
    p = run(["index", "-m", MODEL, "--plan", plan, "--shard", "auto", "-o",
             os.path.join(tmp, "sl")], env=env, check_rc=0)
    check(os.path.exists(os.path.join(tmp, "sl", "part-00001-of-00003.gpkg")),
          "Slurm task 2 of --array=1-3 is shard 1/3: " + p.stderr)
    # errors
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "JOB_COMPLETION", "AWS_BATCH"))}
    p = run(["index", "-m", MODEL, "--plan", plan, "--shard", "auto", "-o", folder], env=env)
    check(p.returncode == 1 and "no array job" in p.stderr, "--shard auto outside a job: " + p.stderr)
    env2 = dict(env, JOB_COMPLETION_INDEX="1")
    p = run(["index", "-m", MODEL, "--plan", plan, "--shard", "auto", "-o", folder], env=env2)
    check(p.returncode == 1 and "auto/N" in p.stderr, "K8s index without N: " + p.stderr)
    for bad in ["3/3", "-1/2", "1/0", "x", "auto/0"]:
        p = run(["index", "-m", MODEL, "--plan", plan, "--shard", bad, "-o", folder], env=env)
        check(p.returncode == 2, "--shard %s is a usage error (%d)" % (bad, p.returncode))
    # a plan line edited by hand is refused (digest), a scene changed since the plan fails
    edited = os.path.join(tmp, "edited.json")
    with open(edited, "w") as f:
        f.write("\n".join(lines[:2] + [lines[2].replace('"tiles": ', '"tiles": 1')] + lines[3:]))
    p = run(["index", "-m", MODEL, "--plan", edited, "--shard", "0/2", "-o", folder], env=env)
    check(p.returncode == 1 and "edited.json" in p.stderr, "edited plan refused: " + p.stderr)
    small = [x for x in inputs if "m0.tif" in x]
    m0 = os.path.join(tmp, "in", "m0.tif")
    ds = gdal.Open(m0, gdal.GA_Update)
    ds.GetRasterBand(1).Fill(7)
    ds = None
    os.utime(m0, ns=(time.time_ns(), time.time_ns()))
    p = run(["index", "-m", MODEL, "--plan", plan, "--shard", "0/1", "-o",
             os.path.join(tmp, "after")], env=env)
    check(p.returncode in (0, 3), "the run goes on: %d %s" % (p.returncode, p.stderr))
    del small


def group_merge(tmp):
    """merge: refuses another model and the output as an input; killed at random moments and
    rerun it ends with the same content; memory bounded."""
    inputs = mosaic(tmp)
    folder = os.path.join(tmp, "city")
    for i in range(3):
        run(["index", "-q", "-m", MODEL, "-o", folder, "--shard", "%d/3" % i] + inputs,
            check_rc=0)
    want = content(parts(folder))
    merged = os.path.join(tmp, "m.gpkg")
    for attempt in range(6):
        p = subprocess.Popen([BIN, "merge", "-q", "-o", merged, folder])
        time.sleep(0.05 + 0.07 * attempt)
        p.send_signal(signal.SIGKILL)
        p.wait()
    run(["merge", "-q", "-o", merged, folder], check_rc=0)
    check(content([merged]) == want, "killed merges then one more: same content")
    db = sqlite3.connect(merged)
    check(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "merged file valid")
    check(db.execute("SELECT count(*) FROM scenes WHERE status != 'complete'").fetchone()[0] == 0,
          "every scene complete after the merge")
    check(db.execute("SELECT count(*) FROM rtree_tiles_geom").fetchone()[0] == len(want),
          "R-tree holds every tile")
    db.close()
    p = run(["merge", "-o", os.path.join(folder, "part-00001-of-00003.gpkg"), folder])
    check(p.returncode == 1 and "input" in p.stderr, "output = input refused: " + p.stderr)
    link = os.path.join(tmp, "link.gpkg")
    os.symlink(os.path.join(folder, "part-00000-of-00003.gpkg"), link)
    p = run(["merge", "-o", link, folder])
    check(p.returncode == 1, "output = input through a symlink refused: " + p.stderr)
    other = os.path.join(tmp, "other.gpkg")
    run(["index", "-q", "-m", os.path.join(FIX, "siglip-tiny-f16"), "-o", other,
         os.path.join(SAMPLES, sorted(os.listdir(SAMPLES))[2])], check_rc=0)
    size = os.path.getsize(merged)
    p = run(["merge", "-o", merged, other])
    check(p.returncode == 1 and "other.gpkg" in p.stderr and "m.gpkg" in p.stderr,
          "another model refused naming both: " + p.stderr)
    check(os.path.getsize(merged) == size and content([merged]) == want, "refused merge wrote nothing")
    # a new output whose merge fails part-way (a scene indexed with other settings in the second
    # input) is not left behind half-built
    strided = os.path.join(tmp, "strided.gpkg")
    run(["index", "-q", "-m", MODEL, "-o", strided, "--stride", "128", inputs[0]], check_rc=0)
    half = os.path.join(tmp, "half.gpkg")
    p = run(["merge", "-o", half, folder, strided])
    check(p.returncode == 1 and "other settings" in p.stderr and not os.path.exists(half) and
          not glob.glob(half + "-*"), "a failed merge leaves no new file: " + p.stderr)


def slurm_env(tmp):
    cl = os.path.join(tmp, "cluster")
    os.makedirs(cl)
    p = subprocess.run([os.path.join(HERE, "slurm_cluster.sh"), "start", cl], capture_output=True,
                       text=True, timeout=120)
    if p.returncode == SKIP:
        return None, cl
    if p.returncode != 0:
        raise SystemExit("cannot start the Slurm cluster: " + p.stderr)
    env = dict(os.environ, SLURM_CONF=os.path.join(cl, "slurm.conf"))
    return env, cl


def group_slurm(tmp):
    """A real Slurm job array (scripts/slurm/*.sbatch) indexes a sharded index that searches and
    merges to exactly what one process gives; a task killed mid-run resumes; requeued tasks of a
    complete index add nothing."""
    env, cl = slurm_env(tmp)
    if env is None:
        print("SKIP: slurm-wlm/munge not installed (scripts/install-deps installs them)")
        return SKIP
    try:
        inputs = mosaic(tmp)
        single = os.path.join(tmp, "single.gpkg")
        run(["index", "-q", "-m", MODEL, "-o", single, "--precision", "f32"] + inputs, check_rc=0)
        out = os.path.join(tmp, "city")
        os.makedirs(out)
        plan = os.path.join(out, "plan.json")
        run(["plan", "-q", "-m", MODEL, "-o", plan] + inputs, check_rc=0)
        jenv = dict(env, RSCLIP=os.path.abspath(BIN), RSCLIP_MODEL=MODEL, RSCLIP_PLAN=plan,
                    RSCLIP_OUT=out, RSCLIP_MERGED=os.path.join(tmp, "merged.gpkg"),
                    RSCLIP_ARGS="--precision f32 --batch 2")
        scripts = os.path.join(SRC, "scripts", "slurm")
        # task 1 is killed mid-run first (as a node loss would), outside the array
        wenv = dict(jenv, SLURM_ARRAY_TASK_ID="1", SLURM_ARRAY_TASK_MIN="0",
                    SLURM_ARRAY_TASK_COUNT="4")
        p = subprocess.Popen(["bash", os.path.join(scripts, "rsclip-index.sbatch")], env=wenv,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        part1 = os.path.join(out, "part-00001-of-00004.gpkg")
        t0 = time.time()
        n1 = 0
        # The task runs in slices of a few ms and is stopped while its part is read, so that it
        # is caught with some tiles stored however fast it runs (polling a running task could
        # miss its whole run: CI saw it finish unobserved).
        while time.time() - t0 < 120 and p.poll() is None:
            p.send_signal(signal.SIGSTOP)
            try:  # (read-only: never creates the part before the task does)
                db = sqlite3.connect("file:%s?mode=ro" % part1, uri=True, timeout=1)
                n1 = db.execute("SELECT count(*) FROM tiles").fetchone()[0]
                db.close()
            except sqlite3.Error:
                n1 = 0
            if n1 >= 2:
                break
            p.send_signal(signal.SIGCONT)
            time.sleep(0.003)
        p.send_signal(signal.SIGKILL)
        p.wait()
        check(n1 >= 2, "task 1 stored some tiles before it was killed (%d)" % n1)
        s = subprocess.run(["sbatch", "--wait", "--array=0-3", "--chdir", out,
                            os.path.join(scripts, "rsclip-index.sbatch")], env=jenv,
                           capture_output=True, text=True, timeout=900)
        check(s.returncode == 0, "the array job succeeded: %s %s" % (s.stdout, s.stderr))
        jobid = s.stdout.strip().split()[-1]
        check(len(parts(out)) == 4, "4 parts: %s" % os.listdir(out))
        check(content(parts(out)) == content([single]),
              "the 4 parts == one process (same tiles, bitwise-equal f32 vectors)")
        log1 = open(os.path.join(out, "rsclip-index-%s_1.log" % jobid)).read() \
            if os.path.exists(os.path.join(out, "rsclip-index-%s_1.log" % jobid)) else ""
        check("rsclip:" not in log1 or "error" not in log1, "task 1 log clean: " + log1)
        # the merge as a dependent job of a second (complete: nothing to do) array run
        s2 = subprocess.run(["sbatch", "--parsable", "--array=0-3", "--chdir", out,
                             os.path.join(scripts, "rsclip-index.sbatch")], env=jenv,
                            capture_output=True, text=True, timeout=60)
        arr = s2.stdout.strip().split(";")[0]
        m = subprocess.run(["sbatch", "--wait", "--dependency=afterok:" + arr, "--chdir", out,
                            os.path.join(scripts, "rsclip-merge.sbatch")], env=jenv,
                           capture_output=True, text=True, timeout=900)
        check(m.returncode == 0, "the dependent merge job ran: %s %s" % (m.stdout, m.stderr))
        check(content([jenv["RSCLIP_MERGED"]]) == content([single]),
              "the merge of the Slurm parts == one process")
        check(search_hits(out) == search_hits(single) == search_hits(jenv["RSCLIP_MERGED"]),
              "same search results over the folder, the merge and one process")
        for p_ in parts(out):
            db = sqlite3.connect(p_)
            check(db.execute("SELECT value FROM rsclip_meta WHERE key = 'shard_complete'")
                  .fetchone()[0] == "1", "part complete: " + p_)
            db.close()
    finally:
        subprocess.run([os.path.join(HERE, "slurm_cluster.sh"), "stop", cl], timeout=60)


def group_jobfiles(tmp):
    """The job files under scripts/ are valid: the Kubernetes manifests parse as Indexed Jobs whose
    completions match --shard auto/N, the Slurm scripts and the submit helper are valid bash and
    use the options the test above runs for real."""
    import yaml
    k8s = os.path.join(SRC, "scripts", "k8s")
    with open(os.path.join(k8s, "rsclip-index-job.yaml")) as f:
        job = yaml.safe_load(f)
    spec = job["spec"]
    cmd = spec["template"]["spec"]["containers"][0]["command"]
    check(job["kind"] == "Job" and job["apiVersion"] == "batch/v1", "a batch/v1 Job")
    check(spec["completionMode"] == "Indexed" and spec["backoffLimitPerIndex"] >= 1,
          "Indexed, retried per index")
    check("--shard" in cmd and cmd[cmd.index("--shard") + 1] == "auto/%d" % spec["completions"],
          "--shard auto/N with N = completions: %s" % cmd)
    check(spec["template"]["spec"]["restartPolicy"] == "Never", "restartPolicy Never (required "
          "with backoffLimitPerIndex)")
    check("--plan" in cmd and cmd[0] == "rsclip" and cmd[1] == "index", "indexes from a plan")
    with open(os.path.join(k8s, "rsclip-merge-job.yaml")) as f:
        merge = yaml.safe_load(f)
    mcmd = merge["spec"]["template"]["spec"]["containers"][0]["command"]
    check(mcmd[:2] == ["rsclip", "merge"], "the merge job merges")
    # the commands are real rsclip command lines: parse them with the binary's own option parser
    p = run(cmd[1:4] + ["--help"])
    check(p.returncode == 0, "rsclip index accepts the manifest's options")
    for script in ["rsclip-index.sbatch", "rsclip-merge.sbatch", "submit"]:
        path = os.path.join(SRC, "scripts", "slurm", script)
        r = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
        check(r.returncode == 0, "%s is valid bash: %s" % (script, r.stderr))
    sb = open(os.path.join(SRC, "scripts", "slurm", "rsclip-index.sbatch")).read()
    check("#SBATCH --requeue" in sb and "--shard auto" in sb, "array script requeues, shard auto")
    sub = open(os.path.join(SRC, "scripts", "slurm", "submit")).read()
    check("--dependency=afterok" in sub, "the merge waits for the array")


def main():
    group = sys.argv[1] if len(sys.argv) > 1 else "split"
    tmp = tempfile.mkdtemp(prefix="rsclip_sc_")
    try:
        rc = globals()["group_" + group](tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if rc == SKIP:
        return SKIP
    if failures:
        print("%d check(s) failed" % len(failures), file=sys.stderr)
        return 1
    print("test_scale %s: all checks passed" % group)
    return 0


if __name__ == "__main__":
    sys.exit(main())
