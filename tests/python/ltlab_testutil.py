"""Shared pieces of the Python tests of ltlab.

* running the `ltlab` executable named by the environment variable LTLAB_BIN;
* writing run files (run-format.md) with h5py, including a small valid base
  file that the validation tests then break one way at a time;
* synthetic long-tailed data for the comparison tests;
* the recursive, tolerance-aware comparison of `ltlab analyze --format json`
  with the reference implementation (ltlab_reference.py).
"""

import json
import math
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import ltlab_reference as ref  # noqa: E402

PYTHON = "/usr/bin/python3"
RTOL = 1e-4
RTOL_LOOSE = {"nc1": 1e-3, "fdr": 1e-3}
ATOL = 1e-9


# --------------------------------------------------------------------------
# the executable

def ltlab_bin():
    path = os.environ.get("LTLAB_BIN")
    if not path:
        raise AssertionError(
            "LTLAB_BIN is not set: it must name the ltlab executable "
            "(ctest sets it; by hand: LTLAB_BIN=build/bin/ltlab "
            "/usr/bin/python3 -m unittest ...)")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise AssertionError("LTLAB_BIN=%r is not an executable file" % path)
    return path


def have_ui():
    """False in a build without the UI module (the sanitizer build): no `ltlab figures`."""
    return os.environ.get("LTLAB_HAVE_UI", "1") != "0"


def run_ltlab(*args, timeout=120):
    """Run ltlab with args; returns the CompletedProcess (text mode)."""
    return subprocess.run([ltlab_bin()] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, text=True,
                          env=dict(os.environ, LC_ALL="C"))


def _no_constants(name):
    raise ValueError("JSON contains the non-standard constant %s" % name)


def parse_json(text):
    """Strict JSON: NaN/Infinity are errors (the spec says never NaN)."""
    return json.loads(text, parse_constant=_no_constants)


def describe(proc):
    return "exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
        proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])


def analyze_json(testcase, path, *args):
    """`ltlab analyze path --format json args...` parsed; asserts exit 0."""
    proc = run_ltlab("analyze", path, "--format", "json", *args)
    testcase.assertEqual(proc.returncode, 0, "ltlab analyze %s %s failed: %s"
                         % (os.path.basename(path), " ".join(args), describe(proc)))
    try:
        return parse_json(proc.stdout)
    except ValueError as e:
        testcase.fail("ltlab analyze output is not strict JSON (%s):\n%s"
                      % (e, proc.stdout[:2000]))


# --------------------------------------------------------------------------
# comparison

def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def compare(expected, got, path="", rtol=None, out=None):
    """Recursive comparison; returns a list of mismatch descriptions.

    expected is the reference (its keys must all be in got; got may have
    more), nulls must match, ints exactly, floats within
    max(rtol * max(|a|, |b|), ATOL)."""
    if out is None:
        out = []
    if rtol is None:
        top = path.split(".")[0] if path else ""
        rtol = RTOL_LOOSE.get(top, RTOL)
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            out.append("%s: expected an object, got %r" % (path, got))
            return out
        for k, v in expected.items():
            sub = "%s.%s" % (path, k) if path else k
            if k not in got:
                out.append("%s: missing key" % sub)
            else:
                compare(v, got[k], sub, None if not path else rtol, out)
        return out
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            out.append("%s: expected a list of %d, got %r"
                       % (path, len(expected), got if not isinstance(got, list)
                          else "list of %d" % len(got)))
            return out
        for i, (e, g) in enumerate(zip(expected, got)):
            compare(e, g, "%s[%d]" % (path, i), rtol, out)
        return out
    if expected is None:
        if got is not None:
            out.append("%s: expected null, got %r" % (path, got))
        return out
    if isinstance(expected, str):
        if got != expected:
            out.append("%s: expected %r, got %r" % (path, expected, got))
        return out
    if _is_int(expected):
        if not _is_int(got) or got != expected:
            out.append("%s: expected integer %r, got %r" % (path, expected, got))
        return out
    if isinstance(expected, float):
        if not _is_num(got):
            out.append("%s: expected %r, got %r" % (path, expected, got))
            return out
        got = float(got)
        if not math.isfinite(got):
            out.append("%s: expected %r, got non-finite %r" % (path, expected, got))
            return out
        tol = max(rtol * max(abs(expected), abs(got)), ATOL)
        if abs(expected - got) > tol:
            rel = abs(expected - got) / max(abs(expected), abs(got))
            out.append("%s: reference %.12g, ltlab %.12g (rel. diff %.3g > %g)"
                       % (path, expected, got, rel, rtol))
        return out
    out.append("%s: unexpected reference value %r" % (path, expected))
    return out


def compare_report(expected, got):
    """compare() with a diagnosis added to a best_tau mismatch: the
    reference picks the first tau of the exact (rational) maximum of the
    balanced accuracy, so a mathematical tie broken by float rounding in
    ltlab shows up here and is named as such."""
    mism = compare(expected, got)
    out = []
    for m in mism:
        for mode in ("additive", "multiplicative"):
            if m.startswith("la_sweep.%s.best_tau:" % mode):
                try:
                    taus = expected["la_sweep"]["tau"]
                    ea = expected["la_sweep"][mode]["accuracy"]
                    ga = got["la_sweep"][mode]["accuracy"]
                    gt = got["la_sweep"][mode]["best_tau"]
                    i = min(range(len(taus)), key=lambda k: abs(taus[k] - gt))
                    j = taus.index(expected["la_sweep"][mode]["best_tau"])
                    m += ("; reference accuracy at tau %g: %r, at tau %g: %r; ltlab's: %r, %r%s"
                          % (taus[j], ea[j], taus[i], ea[i], ga[j], ga[i],
                             " (a mathematical tie: ltlab broke it by float rounding, the spec "
                             "asks for the first tau)" if abs(ea[i] - ea[j]) <= 1e-12 else ""))
                except (TypeError, KeyError, ValueError, IndexError):
                    pass
        out.append(m)
    return out


def assert_matches_reference(testcase, path, *args, label=None):
    """Run ltlab on path (with args) and the reference; compare."""
    kw = {}
    a = list(args)
    for flag, key in (("--snapshot", "snapshot"), ("--split", "split")):
        if flag in a:
            kw[key] = a[a.index(flag) + 1]
    for flag, key in (("--many-threshold", "many_threshold"),
                      ("--few-threshold", "few_threshold")):
        if flag in a:
            kw[key] = int(a[a.index(flag) + 1])
    expected = ref.analyze_file(path, **kw)
    got = analyze_json(testcase, path, *args)
    for k in ref.TOP_KEYS:
        testcase.assertIn(k, got, "spec key %r missing from ltlab output" % k)
    mism = compare_report(expected, got)
    if mism:
        testcase.fail("ltlab and the reference disagree on %s (%s %s):\n  %s"
                      % (label or os.path.basename(path), os.path.basename(path),
                         " ".join(args), "\n  ".join(mism[:60])
                         + ("\n  ... %d more" % (len(mism) - 60) if len(mism) > 60 else "")))
    return expected, got


# --------------------------------------------------------------------------
# writing run files

def write_run(path, train_counts, snapshots, names=None, class_attrs=None,
              root_attrs=None, counts_dtype=np.int64):
    """Write a run file.

    snapshots: list of dicts {name, epoch (optional), attrs (optional),
    weight, bias (optional), splits: {split: {features, labels,
    logits (optional)}}}; arrays are written with their own dtypes."""
    import h5py
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "ltlab-run"
        f.attrs["format_version"] = 1
        for k, v in (root_attrs or {}).items():
            f.attrs[k] = v
        cg = f.create_group("classes")
        cg.create_dataset("train_counts", data=np.asarray(train_counts, dtype=counts_dtype))
        if names is not None:
            cg.create_dataset("names", data=list(names), dtype=h5py.string_dtype("utf-8"))
        for k, v in (class_attrs or {}).items():
            cg.attrs[k] = v
        sg = f.create_group("snapshots")
        for s in snapshots:
            g = sg.create_group(s["name"])
            if s.get("epoch") is not None:
                g.attrs["epoch"] = int(s["epoch"])
            for k, v in (s.get("attrs") or {}).items():
                g.attrs[k] = v
            g.create_dataset("classifier_weight", data=s["weight"])
            if s.get("bias") is not None:
                g.create_dataset("classifier_bias", data=s["bias"])
            for split, d in s["splits"].items():
                spg = g.create_group(split)
                spg.create_dataset("features", data=d["features"])
                spg.create_dataset("labels", data=d["labels"])
                if d.get("logits") is not None:
                    spg.create_dataset("logits", data=d["logits"])
    return path


def lt_counts(num_classes, n_max, imbalance):
    """Exponential long-tailed profile n_c = round(n_max IF^(-c/(C-1)))."""
    return np.array([max(1, int(round(n_max * imbalance ** (-c / (num_classes - 1)))))
                     for c in range(num_classes)], dtype=np.int64)


def make_split(rng, class_means, per_class, noise=1.0, dtype=np.float32,
               shuffle=True):
    """Features/labels: per_class[c] samples of class c around its mean."""
    C, D = class_means.shape
    y = np.repeat(np.arange(C), np.asarray(per_class, dtype=np.int64))
    if shuffle:
        y = y[rng.permutation(y.size)]
    H = class_means[y] + noise * rng.standard_normal((y.size, D))
    return H.astype(dtype), y.astype(np.int64)


def make_snapshot(rng, name, train_counts, splits, D, epoch=None,
                  dtype=np.float32, bias=True, logits=False, noise=1.0,
                  offset=1.0, spread=3.0):
    """A snapshot with a long-tail flavoured classifier (norms grow with n_c)
    and features clustered around class means inside a cone (offset).

    splits: {split_name: per-class sample counts (length C)}."""
    n = np.asarray(train_counts, dtype=np.float64)
    C = n.size
    means = 0.5 * spread * rng.standard_normal((C, D)) + offset
    scale = 0.5 + 0.25 * np.log1p(n)
    W = (scale[:, None] * (means - offset) / spread + 0.2 * rng.standard_normal((C, D)))
    W = W.astype(dtype)
    b = (0.1 * np.log(n / n.sum()) + 0.05 * rng.standard_normal(C)).astype(dtype) if bias else None
    snap = {"name": name, "epoch": epoch, "weight": W, "bias": b, "splits": {}}
    for split, per_class in splits.items():
        H, y = make_split(rng, means, per_class, noise, dtype)
        d = {"features": H, "labels": y}
        if logits:
            Z = H.astype(np.float64) @ W.astype(np.float64).T
            if b is not None:
                Z = Z + b
            Z = Z + 0.3 * rng.standard_normal(Z.shape)   # differs from H W^T + b
            d["logits"] = Z.astype(dtype)
        snap["splits"][split] = d
    return snap


def write_base(path, mutate=None, C=4, D=3, N=20, seed=0, with_bias=True,
               with_logits=True, with_names=True, snapshot="final"):
    """A small valid run file (one snapshot `snapshot`, split `test`), then
    mutate(f) is called with the open h5py.File (mode r+) to break it."""
    import h5py
    rng = np.random.default_rng(seed)
    y = np.arange(N) % C
    H = (rng.standard_normal((N, D)) + 2.0).astype(np.float32)
    W = rng.standard_normal((C, D)).astype(np.float32)
    s = {"name": snapshot, "epoch": 3, "weight": W,
         "bias": rng.standard_normal(C).astype(np.float32) if with_bias else None,
         "splits": {"test": {"features": H, "labels": y.astype(np.int64),
                             "logits": (H @ W.T).astype(np.float32) if with_logits else None}}}
    write_run(path, np.arange(C, 0, -1) * 10, [s],
              names=[str(c) for c in range(C)] if with_names else None)
    if mutate is not None:
        with h5py.File(path, "r+") as f:
            mutate(f)
    return path


def replace_dataset(f, path, data, **kw):
    """Delete the dataset at path (if any) and write data there."""
    if path in f:
        del f[path]
    f.create_dataset(path, data=data, **kw)
