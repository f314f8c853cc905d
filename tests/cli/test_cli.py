#!/usr/bin/python3
"""The rsclip binary against the siglip-tiny reference (transformers' own outputs): tokenize,
embed (images, texts, --normalize), classify, plus bad inputs, usage errors and help.

Usage: test_cli.py GROUP   (GROUP = reference | errors | usage | options; one ctest each)"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

BIN = os.environ["RSCLIP_BIN"]
FIX = os.path.join(os.environ["RSCLIP_FIXTURES"], "siglip-tiny")
TOL = 1e-5  # max |a - b| / max |b|

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, file=sys.stderr)
    return cond


def load_reference():
    with open(os.path.join(FIX, "reference.safetensors"), "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return out


def run(args, timeout=300, env=None):
    p = subprocess.run([BIN] + args, capture_output=True, timeout=timeout,
                       env=dict(os.environ, **env) if env else None)
    check(p.returncode >= 0, "rsclip %s died from signal %d" % (args[:4], -p.returncode))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def close(a, b, what, tol=TOL):
    e = rel_err(a, b)
    return check(e <= tol, "%s: relative error %.3g > %g" % (what, e, tol))


def embed(args):
    rc, out, err = run(["embed", "-m", FIX, "--precision", "f32"] + args)  # parity: f32
    if not check(rc == 0, "embed %s: rc %d: %s" % (args[:3], rc, err)):
        return None
    doc = json.loads(out)
    check(doc["model"] == FIX and doc["dim"] == 32, "embed header: %s %s" % (doc["model"],
                                                                               doc["dim"]))
    return np.array(doc["embeddings"], dtype=np.float32)


def test_reference():
    ref = load_reference()
    with open(os.path.join(FIX, "texts.json"), encoding="utf-8") as f:
        texts = json.load(f)
    images = [os.path.join(FIX, "img%d.png" % i) for i in range(6)]
    resize = os.path.join(FIX, "resize_in.png")

    # tokenize: one JSON array of text_ctx ids per text
    rc, out, err = run(["tokenize", "-m", FIX, "--"] + texts)
    if check(rc == 0, "tokenize: rc %d: %s" % (rc, err)):
        rows = [json.loads(line) for line in out.splitlines()]
        check(len(rows) == len(texts), "tokenize: %d lines for %d texts" % (len(rows), len(texts)))
        for i, row in enumerate(rows):
            check(row == ref["input_ids"][i].tolist(), "tokenize: text %d ids differ" % i)

    # images, in one run through batches of 4 (7 inputs: a full and a partial batch)
    e = embed(["--image", "-b", "4"] + images + [resize])
    if e is not None:
        close(e[:6], ref["image_embeds"], "image_embeds")
        close(e[6:], ref["resize_image_embeds"], "resize_image_embeds")
    e = embed(["--image", "--normalize"] + images)
    if e is not None:
        close(e, ref["image_embeds_normalized"], "image_embeds_normalized")
        check(np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-6), "unit vectors")

    # texts (the empty text among them)
    e = embed(["--text", "-j", "1", "--"] + texts)
    if e is not None:
        close(e, ref["text_embeds"], "text_embeds")
    e = embed(["--text", "--normalize", "--"] + texts)
    if e is not None:
        close(e, ref["text_embeds_normalized"], "text_embeds_normalized")

    # classify img0 against the 12 texts as labels: sigmoid(reference logits), highest first
    logits = ref["logits_per_image"][0].astype(np.float64)
    probs = 1.0 / (1.0 + np.exp(-logits))
    args = ["classify", "-m", FIX, "--json", "--template", "{}", "--precision", "f32"]
    for t in texts:
        args += ["-l", t]
    rc, out, err = run(args + [images[0]])
    if check(rc == 0, "classify: rc %d: %s" % (rc, err)):
        doc = json.loads(out)
        check(doc["image"] == images[0], "classify image: %r" % doc["image"])
        got = doc["labels"]
        check(sorted(g["label"] for g in got) == sorted(texts), "classify: all labels back")
        got_p = [g["prob"] for g in got]
        check(got_p == sorted(got_p, reverse=True), "classify: highest first")
        by_label = {g["label"]: g for g in got}
        close([by_label[t]["logit"] for t in texts], logits, "classify logits", 1e-5)
        check(max(abs(by_label[t]["prob"] - p) for t, p in zip(texts, probs)) <= 1e-5,
              "classify probabilities")

    # the default template is "a remote sensing image of {}"
    labels = ["river", "farmland", "airport"]
    base = ["classify", "-m", FIX, "--json", "--precision", "f32", "-l", labels[0], "-l", labels[1],
            "-l", labels[2], images[2]]
    rc1, out1, _ = run(base)
    rc2, out2, _ = run(base[:3] + ["--template", "a remote sensing image of {}"] + base[3:])
    check(rc1 == 0 and rc2 == 0 and out1 == out2, "default template")
    e_text = embed(["--text"] + ["a remote sensing image of " + x for x in labels])
    e_img = embed(["--image", images[2]])
    if rc1 == 0 and e_text is not None and e_img is not None:
        cos = (e_text @ e_img[0]) / (np.linalg.norm(e_text, axis=1) * np.linalg.norm(e_img[0]))
        scale = float(np.exp(np.float64(ref["logit_scale"][0])))
        want = {x: c * scale + float(ref["logit_bias"][0]) for x, c in zip(labels, cos)}
        got = {g["label"]: g["logit"] for g in json.loads(out1)["labels"]}
        check(all(abs(got[x] - want[x]) <= 1e-4 * max(1.0, abs(want[x])) for x in labels),
              "classify logits = cos * exp(scale) + bias: %s vs %s" % (got, want))
    # table output: header + one line per label
    rc, out, err = run(base[:3] + base[4:])
    check(rc == 0 and len(out.strip().splitlines()) == 2 + len(labels), "table output: %r" % out)
    # several images: one JSON object per line
    rc, out, err = run(base + [images[3]])
    check(rc == 0 and [json.loads(x)["image"] for x in out.splitlines()] == [images[2], images[3]],
          "classify two images")


def gdal_translate(args):
    subprocess.run(["gdal_translate", "-q"] + args, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def expect_failure(args, needle, what, code=1):
    rc, out, err = run(args)
    ok = check(rc == code, "%s: exit %d, expected %d (%s)" % (what, rc, code, err.strip()))
    ok &= check(out == "", "%s: stdout not empty: %r" % (what, out[:200]))
    if code == 1:
        ok &= check(err.startswith("rsclip: ") and err.count("\n") == 1,
                    "%s: not one 'rsclip: ' line: %r" % (what, err))
    for n in needle if isinstance(needle, (list, tuple)) else [needle]:
        ok &= check(n in err, "%s: %r not in %r" % (what, n, err))
    return ok


def test_device(tmp, img0):
    """--device cuda: on a machine with a GPU and a CUDA build, the same embeddings as the CPU
    (f32); everywhere else one clear error naming CUDA, exit 1, nothing on stdout."""
    rc, out, err = run(["embed", "-m", FIX, "--precision", "f32", "--device", "cuda", "--image",
                        img0])
    if rc == 0:
        cpu = embed(["--image", img0])
        close(np.array(json.loads(out)["embeddings"], dtype=np.float32), cpu, "embed on cuda")
        return
    for args in (["embed", "-m", FIX, "--device", "cuda", "--image", img0],
                 ["embed", "-m", FIX, "--device", "cuda:0", "--text", "river"],
                 ["classify", "-m", FIX, "--device", "cuda", "-l", "river", img0],
                 ["index", "-q", "-m", FIX, "--device", "cuda", "-o", os.path.join(tmp, "g.gpkg"),
                  os.path.join(FIX, "img0.png")]):
        rc, out, err = run(args)
        check(rc == 1 and out == "", "%s --device cuda: rc %d, stdout %r" % (args[0], rc, out))
        check("CUDA" in err and err.startswith("rsclip"),
              "%s --device cuda: the error does not name CUDA: %r" % (args[0], err))


def test_errors():
    tmp = tempfile.mkdtemp(prefix="rsclip_test_cli_")
    img0 = os.path.join(FIX, "img0.png")
    try:
        def p(name):
            return os.path.join(tmp, name)

        missing = p("missing.png")
        expect_failure(["embed", "-m", FIX, "--image", img0, missing], missing, "missing image")
        expect_failure(["classify", "-m", FIX, "-l", "a", missing], missing, "classify missing")
        with open(p("text.png"), "w") as f:
            f.write("this is not an image\n")
        expect_failure(["embed", "-m", FIX, "--image", p("text.png")], p("text.png"),
                       "text file as image")
        with open(img0, "rb") as f:
            head = f.read(5000)
        with open(p("truncated.png"), "wb") as f:
            f.write(head)
        expect_failure(["embed", "-m", FIX, "--image", p("truncated.png")], p("truncated.png"),
                       "truncated PNG")
        with open(p("empty.png"), "wb"):
            pass
        expect_failure(["embed", "-m", FIX, "--image", p("empty.png")], p("empty.png"),
                       "empty file")
        expect_failure(["embed", "-m", FIX, "--image", tmp], tmp, "folder as image")
        gdal_translate(["-ot", "UInt16", img0, p("u16.tif")])
        expect_failure(["embed", "-m", FIX, "--image", p("u16.tif")],
                       [p("u16.tif"), "band type UInt16 is not 8-bit", "rsclip index --scale"],
                       "UInt16")
        gdal_translate(["-ot", "Float32", img0, p("f32.tif")])
        expect_failure(["classify", "-m", FIX, "-l", "x", p("f32.tif")],
                       [p("f32.tif"), "Float32"], "Float32")
        gdal_translate(["-b", "1", "-b", "2", img0, p("two.tif")])
        expect_failure(["embed", "-m", FIX, "--image", p("two.tif")], [p("two.tif"), "2 bands"],
                       "two bands")

        # grey: one band is replicated, same as the explicit three-band copy
        gdal_translate(["-b", "1", img0, p("grey.tif")])
        gdal_translate(["-b", "1", "-b", "1", "-b", "1", img0, p("grey3.png")])
        # (one run each: the encoder's sums may round differently at another batch position)
        rc1, out1, err1 = run(["embed", "-m", FIX, "--image", p("grey.tif")])
        rc2, out2, err2 = run(["embed", "-m", FIX, "--image", p("grey3.png")])
        if check(rc1 == 0 and rc2 == 0, "grey image: %s %s" % (err1, err2)):
            check(json.loads(out1)["embeddings"] == json.loads(out2)["embeddings"],
                  "grey == replicated RGB")

        # models
        os.mkdir(p("empty_model"))
        expect_failure(["embed", "-m", p("empty_model"), "--text", "x"], p("empty_model"),
                       "folder without a model")
        bad = p("bad_model")
        shutil.copytree(FIX, bad)
        with open(os.path.join(bad, "model.safetensors"), "r+b") as f:
            f.truncate(1000)
        expect_failure(["embed", "-m", bad, "--text", "x"],
                       os.path.join(bad, "model.safetensors"), "truncated checkpoint")
        expect_failure(["tokenize", "-m", img0, "x"], img0, "file as model")
        expect_failure(["tokenize", "-m", "no/such-model", "x"],
                       ["no/such-model", "rsclip model fetch"], "model not fetched")

        # texts: invalid UTF-8 is an error, empty text is fine
        rc = subprocess.run([BIN, "embed", "-m", FIX, "--text", "ok", b"bad \xff text"],
                            capture_output=True, timeout=120)
        check(rc.returncode == 1 and b"UTF-8" in rc.stderr and rc.stdout == b"" and
              rc.stderr.count(b"\n") == 1, "non-UTF-8 text: %d %r" % (rc.returncode, rc.stderr))
        rc = subprocess.run([BIN, "tokenize", "-m", FIX, b"\xc3\x28"], capture_output=True,
                            timeout=120)
        check(rc.returncode == 1 and b"UTF-8" in rc.stderr, "tokenize non-UTF-8: %r" % rc.stderr)
        rc, out, err = run(["embed", "-m", FIX, "--text", ""])
        check(rc == 0 and len(json.loads(out)["embeddings"]) == 1, "empty text: %s" % err)
        rc, out, err = run(["classify", "-m", FIX, "-l", "", "--template", "{}", img0])
        check(rc == 0, "empty label: %s" % err)
        test_device(tmp, img0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_usage():
    rc, out, err = run(["--version"])
    check(rc == 0 and out.startswith("rsclip ") and len(out.split()) == 2, "--version: %r" % out)
    # --verbose: the CPU, its usable paths and what each precision runs, and why
    rc, out, err = run(["--version", "--verbose"])
    check(rc == 0 and "cpu: " in out and "paths: amx " in out and "precision auto -> " in out and
          "precision int8 -> " in out and "\ncuda: " in out, "--version --verbose: %r" % out)
    # the CUDA line says why a module that cannot be used is unusable (a build without CUDA says so)
    rc, out, err = run(["--version", "--verbose"],
                       env={"RSCLIP_CUDA_MODULE": "/nonexistent/librsclip_cuda.so"})
    check(rc == 0 and ("cuda: the CUDA module /nonexistent/librsclip_cuda.so is missing" in out or
                       "cuda: this rsclip was built without CUDA" in out),
          "--version --verbose, no CUDA module: %r" % out)
    rc, out, err = run(["--version", "--verbose"], env={"RSCLIP_ISA": "scalar"})
    check(rc == 0 and "RSCLIP_ISA: set; kernels may use up to scalar" in out and
          "precision auto -> scalar (f32)" in out, "RSCLIP_ISA=scalar report: %r" % out)
    # a path that does not exist (or that this CPU cannot run): a clear error, not a silent fallback
    rc, out, err = run(["--version", "--verbose"], env={"RSCLIP_ISA": "avx1024"})
    check(rc == 0 and "RSCLIP_ISA: error: RSCLIP_ISA='avx1024' is not one of" in out,
          "RSCLIP_ISA=avx1024 report: %r" % out)
    rc, out, err = run(["embed", "-m", FIX, "--text", "x"], env={"RSCLIP_ISA": "avx1024"})
    check(rc == 1 and "RSCLIP_ISA='avx1024'" in err, "RSCLIP_ISA=avx1024 embed: rc %d %r" % (rc, err))
    rc, out, err = run(["help"])
    check(rc == 0 and "embed" in out and "classify" in out and "model" in out, "help: %r" % out)
    for cmd in ["tokenize", "embed", "classify", "model"]:
        rc, out, err = run([cmd, "--help"])
        check(rc == 0 and out.startswith("usage: rsclip " + cmd), "%s --help: %r" % (cmd, out))
        rc2, out2, _ = run(["help", cmd])
        check(rc2 == 0 and out2 == out, "help %s" % cmd)
    rc, out, err = run([])
    check(rc == 2 and out == "", "no arguments: rc %d" % rc)
    for args, what in [
        (["frobnicate"], "unknown command"),
        (["embed", "--text", "x"], "no -m"),
        (["embed", "-m", FIX, "x"], "neither --image nor --text"),
        (["embed", "-m", FIX, "--image", "--text", "x"], "both --image and --text"),
        (["embed", "-m", FIX, "--image"], "no inputs"),
        (["embed", "-m", FIX, "--bogus", "--text", "x"], "unknown option"),
        (["embed", "-m", FIX, "-j", "many", "--text", "x"], "bad -j"),
        (["embed", "-m"], "-m without a value"),
        (["classify", "-m", FIX, os.path.join(FIX, "img0.png")], "classify without labels"),
        (["classify", "-m", FIX, "-l", "a"], "classify without images"),
        (["classify", "-m", FIX, "-l", "a", "-t", "no hole", os.path.join(FIX, "img0.png")],
         "template without {}"),
        (["tokenize", "-m", FIX], "tokenize without texts"),
        (["model"], "model without subcommand"),
        (["model", "fetch"], "fetch without a name"),
        (["model", "frob"], "unknown model subcommand"),
        (["embed", "-m", FIX, "--device", "gpu", "--text", "x"], "embed --device gpu"),
        (["classify", "-m", FIX, "--device", "cuda:x", "-l", "a", os.path.join(FIX, "img0.png")],
         "classify --device cuda:x"),
        (["index", "-m", FIX, "--device", "tpu", "-o", "x.gpkg", "y.tif"], "index --device tpu"),
        (["search", "--device", "cuda:", "x.gpkg", "river"], "search --device cuda:"),
    ]:
        rc, out, err = run(args)
        check(rc == 2 and out == "" and err.startswith("rsclip"), "%s: rc %d %r" % (what, rc, err))


def test_options():
    """The shared options (-m, -j, --precision, --batch, -q): one spelling, one range, one
    message and one help line in every command that takes them; query rules are the library's
    (rsclip_query_check), so search refuses a bad query with its reason, as a usage error."""
    img = os.path.join(FIX, "img0.png")
    # what each command needs besides the option so that only the option can be wrong
    rest = {"tokenize": ["x"], "embed": ["--text", "x"], "classify": ["-l", "a", img],
            "index": ["-o", "x.gpkg", img], "plan": ["-o", "x.plan", img],
            "search": ["x.gpkg", "river"], "serve": ["x.gpkg"], "merge": ["-o", "x.gpkg", "y"],
            "remove": ["x.gpkg", "1"]}
    takes = {"-m": ["tokenize", "embed", "classify", "index", "plan", "search", "serve"],
             "-j": ["embed", "classify", "index", "search", "serve"],
             "--precision": ["embed", "classify", "index", "search", "serve"],
             "--batch": ["embed", "index"]}
    bad = {"-j": (["-j", "0"], "-j/--threads: expected an integer in [1, 1024], got '0'"),
           "--threads": (["--threads", "2000"], "-j/--threads: expected an integer in [1, 1024], got '2000'"),
           "--precision": (["--precision", "bogus"], "--precision: "),
           "--batch": (["--batch", "0"], "--batch: expected an integer in [1, 256], got '0'"),
           "-b": (["-b", "257"], "--batch: expected an integer in [1, 256], got '257'"),
           "-m": (["-m", ""], "-m wants a model")}
    for opt, (args, msg) in bad.items():
        key = {"--threads": "-j", "-b": "--batch"}.get(opt, opt)
        first = None
        for cmd in takes[key]:
            pre = ["-m", FIX] if cmd in ("embed", "classify", "index", "plan", "tokenize") and \
                opt != "-m" else []
            rc, out, err = run([cmd] + pre + args + rest[cmd])
            line = err.splitlines()[0] if err else ""
            check(rc == 2 and out == "" and line == "rsclip %s: %s" % (cmd, line.split(": ", 1)[-1])
                  and msg in line, "%s %s: rc %d %r" % (cmd, " ".join(args), rc, err))
            first = first or line.split(": ", 1)[-1]
            check(line.split(": ", 1)[-1] == first, "%s %s: the same message as the others: %r"
                  % (cmd, " ".join(args), line))
    # the help of every command shows the shared lines it takes, word for word
    lines = {"-m": "  -m, --model MODEL", "-j": "  -j, --threads N         threads, 1..1024",
             "--precision": "  --precision P           auto (default: the fastest path",
             "--batch": "  -b, --batch N           items per encoder batch, 1..256",
             "-q": "  -q, --quiet             no progress"}
    takes["-q"] = ["index", "plan", "merge", "model", "remove"]
    for key, cmds in takes.items():
        for cmd in cmds:
            rc, out, _ = run([cmd, "--help"])
            check(rc == 0 and lines[key] in out, "%s --help lists %s: %r" % (cmd, key, out[-400:]))
    # -q and --quiet are the same option wherever -q is taken
    for cmd in ["merge", "remove"]:
        for q in ["-q", "--quiet"]:
            rc, _, err = run([cmd, q] + rest[cmd])
            check(rc == 1 and "unknown option" not in err, "%s %s: rc %d %r" % (cmd, q, rc, err))
    # serve: --threads is -j as everywhere; the HTTP pool is --http-threads (1..64)
    rc, _, err = run(["serve", "--http-threads", "65", "x.gpkg"])
    check(rc == 2 and "--http-threads: expected an integer in [1, 64]" in err,
          "serve --http-threads 65: rc %d %r" % (rc, err))
    # search: the query's rules are the library's, refused before the index is opened (exit 2)
    for args, reason in [([], "give a query"), (["river", "--like-point", "1,2"], "only one query"),
                         (["river", "-k", "0"], "k must be within 1..1000000, not 0"),
                         (["river", "-k", "1000001"], "k must be within 1..1000000"),
                         (["river", "-k", "many"], "-k wants a number"),
                         (["river", "-k", "99999999999"], "-k 99999999999 is out of range (1..1000000)"),
                         (["river", "--min-prob", "2"], "min_prob must be within 0..1"),
                         (["river", "--bbox", "3,0,1,1"], "west <= east"),
                         (["--like-point", "200,0"], "lon,lat"),
                         (["river", "--template", "no hole"], "{}"),
                         (["river", "--change", "2019/2023", "--latest"], "own two periods"),
                         (["river", "--change", "2019/2023", "--after", "2020"],
                          "own two periods")]:
        rc, out, err = run(["search", "no_such.gpkg"] + args)
        check(rc == 2 and out == "" and err.startswith("rsclip search: ") and reason in err,
              "search %s: rc %d %r" % (" ".join(args), rc, err))


def main():
    group = sys.argv[1] if len(sys.argv) > 1 else "all"
    if group in ("reference", "all"):
        test_reference()
    if group in ("errors", "all"):
        test_errors()
    if group in ("usage", "all"):
        test_usage()
    if group in ("options", "all"):
        test_options()
    name = "test_cli_" + group
    if failures:
        print("%s: %d check(s) failed" % (name, failures), file=sys.stderr)
        return 1
    print("%s: all checks passed" % name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
