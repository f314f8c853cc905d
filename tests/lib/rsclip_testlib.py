"""What the Python tests share: checks that collect failures instead of stopping at the first,
and running the rsclip binary with its output kept for the report.

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    from rsclip_testlib import check, failures, run
"""
import os
import subprocess
import sys

BIN = os.environ.get("RSCLIP_BIN", "build/core/rsclip")

failures = []  # what failed, in order (one list per process: never rebind it)


def check(cond, what):
    """Record a failed condition (printed at once); returns cond."""
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)
    return cond


def run(args, check_rc=None, env=None, timeout=300, **kw):
    """rsclip ARGS, text output captured. With check_rc, any other exit status prints the command
    and the tails of its output, then stops the test."""
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True, env=env,
                       timeout=timeout, **kw)
    if check_rc is not None and p.returncode != check_rc:
        print("command:", " ".join(args), "\nstdout:", p.stdout[-3000:], "\nstderr:",
              p.stderr[-3000:], file=sys.stderr)
        raise SystemExit("unexpected exit status %d (wanted %d)" % (p.returncode, check_rc))
    return p


def finish(name):
    """Exit 1 with the count when a check failed, else say all passed."""
    if failures:
        print("%s: %d check(s) failed" % (name, len(failures)), file=sys.stderr)
        sys.exit(1)
    print("%s: all checks passed" % name)
