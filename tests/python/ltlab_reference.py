#!/usr/bin/python3
"""Independent float64 numpy reference for the quantities of analysis.md.

This module is deliberately independent of the C++ core: it implements
/work/shared/spec/analysis.md (spec v1) literally, in vectorised numpy, and is
used both by the Python tests (tests/python/test_*.py) and as the numpy
baseline of the benchmark.  It never forms an N x N matrix in `analyze`; the
cone statistics use Gram-matrix identities.  `brute_force_cone` (explicit
N x N cosine matrix, N <= 2000) exists only to check those identities.

Conventions where analysis.md is silent (shared with the C++ side):
  * nc1, nc2_*, nc3, fdr, trace_sw, trace_sb are null when K < 2;
  * nc4 is computed whenever N >= 1;
  * the four cone statistics over samples are null with fewer than 2
    nonzero-norm samples (same/diff class: null when there is no such pair);
    class_means_mean_cos is null when K < 2;
  * implicit_la_tau is null with fewer than 2 eligible classes or when the
    eligible -log(pi) values are all equal;
  * a ratio whose denominator is 0 is null; a cosine with a zero vector makes
    the metric that needs it null;
  * logit adjustment at tau = 0 is no adjustment; additive score
    z - tau*log(pi); multiplicative score z / pi**tau.
  * nearest-class-mean ties go, like argmax ties, to the lowest class id.
  * if the FDR drop rule drops every dimension, fdr, trace_sw and trace_sb
    are null (as the C++ side does).

Usage: /usr/bin/python3 ltlab_reference.py FILE [--snapshot S] [--split X]
           [--many-threshold N] [--few-threshold N]
prints the JSON object of `ltlab analyze FILE --format json`.
"""

import argparse
import json
import math
import sys
from fractions import Fraction

import numpy as np

SPLIT_ORDER = ("test", "val", "train")
DEFAULT_MANY_THRESHOLD = 100
DEFAULT_FEW_THRESHOLD = 20
TAUS = [k / 10.0 for k in range(31)]
PINV_RTOL = 1e-8
FDR_DROP_RTOL = 1e-3

METRIC_KEYS = [
    "nc1", "nc2_equinorm_means", "nc2_equinorm_weights",
    "nc2_equiangular_means", "nc2_equiangular_weights",
    "nc2_maxangle_means", "nc2_maxangle_weights", "nc3", "nc4",
    "fdr", "trace_sw", "trace_sb",
    "cone_mean_cos", "cone_std_cos", "cone_mean_cos_same_class",
    "cone_mean_cos_diff_class", "class_means_mean_cos",
    "accuracy", "sample_accuracy", "accuracy_many", "accuracy_medium",
    "accuracy_few", "implicit_la_tau",
]
TOP_KEYS = (["snapshot", "split", "epoch", "num_classes", "feature_dim",
             "num_samples"] + METRIC_KEYS + ["per_class", "la_sweep"])
PER_CLASS_KEYS = ["train_count", "count", "weight_norm", "bias",
                  "feature_norm", "mean_norm", "accuracy"]
SWEEP_KEYS = ["accuracy", "accuracy_many", "accuracy_medium", "accuracy_few",
              "best_tau"]


# --------------------------------------------------------------------------
# small helpers

def _f(x):
    """numpy scalar -> Python float (None stays None)."""
    return None if x is None else float(x)


def _ratio(num, den):
    return None if den == 0 else float(num / den)


def pinv_sym(a):
    """Pseudo-inverse of a symmetric matrix as analysis.md prescribes:
    eigen-decompose, keep eigenvalues > 1e-8 * largest, invert those."""
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0:
        return np.zeros_like(a)
    w, v = np.linalg.eigh(a)
    largest = w.max()
    keep = w > PINV_RTOL * largest
    if largest <= 0 or not keep.any():
        return np.zeros_like(a)
    vk = v[:, keep]
    return (vk / w[keep]) @ vk.T


def _trace_prod(a, b):
    """tr(A B) for A, B of the same shape (A B need not be formed)."""
    return float(np.einsum("ij,ji->", a, b))


def _class_sums(x, y, num_classes):
    """Per-class sums of the rows of x (C x D), in a vectorised way."""
    out = np.zeros((num_classes, x.shape[1]), dtype=np.float64)
    if x.shape[0] == 0:
        return out
    order = np.argsort(y, kind="stable")
    ys = y[order]
    starts = np.flatnonzero(np.r_[True, ys[1:] != ys[:-1]])
    out[ys[starts]] = np.add.reduceat(x[order], starts, axis=0)
    return out


def _cosines(vectors):
    """Cosine matrix of the rows, or None when a row is the zero vector."""
    norms = np.linalg.norm(vectors, axis=1)
    if np.any(norms == 0):
        return None
    g = vectors @ vectors.T
    return g / np.outer(norms, norms)


def _balanced(hits, counts, mask):
    """Mean of the per-class accuracies hits_c / counts_c over mask, as an
    exact fraction (None for an empty mask). Exact, so that mathematically
    equal balanced accuracies compare equal when best_tau picks the first
    tau of the maximum, whatever the rounding of a float sum."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return None
    return sum((Fraction(int(hits[c]), int(counts[c])) for c in idx),
               Fraction(0)) / idx.size


def _argmin_rows_exact(h, means, d2):
    """argmin of squared distances with ties to the lowest index; rows whose
    two smallest expanded distances are (nearly) tied are recomputed from the
    explicit differences so that rounding of the expansion cannot decide."""
    idx = np.argmin(d2, axis=1)
    if means.shape[0] < 2 or h.shape[0] == 0:
        return idx
    part = np.partition(d2, 1, axis=1)[:, :2]
    scale = np.einsum("ij,ij->i", h, h) + np.max(np.einsum("ij,ij->i", means, means))
    close = np.flatnonzero(part[:, 1] - part[:, 0] <= 1e-9 * np.maximum(scale, 1e-300))
    for i in close:
        diff = h[i][None, :] - means
        idx[i] = np.argmin(np.einsum("ij,ij->i", diff, diff))
    return idx


# --------------------------------------------------------------------------
# the analysis

def analyze(H, y, W, b, train_counts, logits=None,
            many_threshold=DEFAULT_MANY_THRESHOLD,
            few_threshold=DEFAULT_FEW_THRESHOLD):
    """All quantities of analysis.md for one snapshot/split.

    Returns a dict with the JSON shape of `ltlab analyze --format json`
    (without snapshot/split/epoch, which `analyze_file` adds)."""
    H = np.asarray(H, dtype=np.float64)
    y = np.asarray(y).astype(np.int64).reshape(-1)
    W = np.asarray(W, dtype=np.float64)
    C, D = W.shape
    N = H.shape[0]
    if H.ndim != 2 or H.shape[1] != D or y.shape[0] != N:
        raise ValueError("inconsistent shapes")
    b = np.zeros(C) if b is None else np.asarray(b, dtype=np.float64).reshape(C)
    n_train = np.asarray(train_counts).astype(np.int64).reshape(C)
    if logits is not None:
        Z = np.asarray(logits, dtype=np.float64).reshape(N, C)
    else:
        Z = H @ W.T + b

    counts = np.bincount(y, minlength=C).astype(np.int64)
    present = counts > 0
    P = np.flatnonzero(present)
    K = int(P.size)
    r = {}

    # ---- class statistics ----------------------------------------------
    sums = _class_sums(H, y, C)
    mu_full = np.zeros((C, D))
    mu_full[P] = sums[P] / counts[P, None]
    means = mu_full[P]                                   # K x D
    mu_bar = means.mean(axis=0) if K else np.zeros(D)
    Mc = means - mu_bar                                  # centred means
    mu_global = H.mean(axis=0) if N else np.zeros(D)
    Hc = H - mu_full[y]
    S_W = Hc.T @ Hc                                      # D x D, no 1/N
    centred_norms = np.linalg.norm(Mc, axis=1)
    WP = W[P]
    wP_norms = np.linalg.norm(WP, axis=1)

    # ---- neural collapse ----------------------------------------------
    nc = dict.fromkeys(["nc1", "nc2_equinorm_means", "nc2_equinorm_weights",
                        "nc2_equiangular_means", "nc2_equiangular_weights",
                        "nc2_maxangle_means", "nc2_maxangle_weights", "nc3"])
    if K >= 2:
        sigma_w = S_W / N
        sigma_b = Mc.T @ Mc / K
        nc["nc1"] = _trace_prod(sigma_w, pinv_sym(sigma_b)) / K
        nc["nc2_equinorm_means"] = _ratio(centred_norms.std(), centred_norms.mean())
        nc["nc2_equinorm_weights"] = _ratio(wP_norms.std(), wP_norms.mean())
        iu = np.triu_indices(K, 1)
        for name, vecs in (("means", Mc), ("weights", WP)):
            cos = _cosines(vecs)
            if cos is None:
                continue
            pc = cos[iu]
            nc["nc2_equiangular_" + name] = float(pc.std())
            nc["nc2_maxangle_" + name] = float(np.abs(pc + 1.0 / (K - 1)).mean())
        wf = np.linalg.norm(WP)
        mf = np.linalg.norm(Mc)
        if wf > 0 and mf > 0:
            nc["nc3"] = float(np.sum((WP / wf - Mc / mf) ** 2))
    r.update(nc)

    pred = np.argmax(Z, axis=1) if N else np.zeros(0, dtype=np.int64)
    if N >= 1:
        hn2 = np.einsum("ij,ij->i", H, H)
        d2 = hn2[:, None] - 2.0 * (H @ means.T) + np.einsum("ij,ij->i", means, means)[None, :]
        nearest = P[_argmin_rows_exact(H, means, d2)]
        r["nc4"] = float(np.mean(pred != nearest))
    else:
        r["nc4"] = None

    # ---- Fisher's discriminant ratio ------------------------------------
    r["fdr"] = r["trace_sw"] = r["trace_sb"] = None
    if K >= 2:
        dev = np.abs(H - H[0]).max(axis=0)
        keep = ~(dev <= FDR_DROP_RTOL * abs(H.mean()))
        dB = means - mu_global
        S_B = (dB * counts[P, None]).T @ dB
        swk = S_W[np.ix_(keep, keep)]
        sbk = S_B[np.ix_(keep, keep)]
        if keep.any():
            r["trace_sw"] = float(np.trace(swk))
            r["trace_sb"] = float(np.trace(sbk))
            r["fdr"] = _trace_prod(pinv_sym(swk), sbk)

    # ---- cone effect -----------------------------------------------------
    r.update(cone_stats(H, y, C))
    r["class_means_mean_cos"] = None
    if K >= 2:
        cos = _cosines(means)
        if cos is not None:
            r["class_means_mean_cos"] = float(cos[np.triu_indices(K, 1)].mean())

    # ---- accuracy --------------------------------------------------------
    def per_class_acc(p):
        correct = p == y
        hits = np.bincount(y[correct], minlength=C)
        acc = np.full(C, np.nan)
        acc[P] = hits[P] / counts[P]
        return acc, hits, correct

    many = n_train > many_threshold
    few = n_train < few_threshold
    medium = ~many & ~few
    groups = (("accuracy_many", many), ("accuracy_medium", medium),
              ("accuracy_few", few))

    acc_c, hits, correct = per_class_acc(pred)
    r["accuracy"] = _balanced(hits, counts, present)
    r["sample_accuracy"] = float(correct.mean()) if N else None
    for key, g in groups:
        r[key] = _balanced(hits, counts, present & g)

    # ---- logit adjustment ----------------------------------------------
    w_norms = np.linalg.norm(W, axis=1)
    total = n_train.sum()
    r["implicit_la_tau"] = None
    elig = (w_norms > 0) & (n_train > 0)
    if elig.sum() >= 2:
        x = -np.log(n_train[elig] / total)
        v = np.log(w_norms[elig])
        if x.max() != x.min():
            xc = x - x.mean()
            r["implicit_la_tau"] = float(np.sum(xc * (v - v.mean())) / np.sum(xc * xc))

    with np.errstate(divide="ignore"):
        pi = n_train / total if total > 0 else np.zeros(C)
        log_pi = np.log(pi)
    sweep = {"tau": list(TAUS)}
    for mode in ("additive", "multiplicative"):
        res = {k: [] for k in SWEEP_KEYS[:-1]}
        for tau in TAUS:
            if tau == 0.0:
                s = Z
            elif mode == "additive":
                s = Z - tau * log_pi[None, :]
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    s = Z / (pi ** tau)[None, :]
            _, h, _ = per_class_acc(np.argmax(s, axis=1) if N else pred)
            res["accuracy"].append(_balanced(h, counts, present))
            for key, g in groups:
                res[key].append(_balanced(h, counts, present & g))
        accs = res["accuracy"]
        if all(a is None for a in accs):
            res["best_tau"] = None
        else:
            res["best_tau"] = TAUS[accs.index(max(accs))]   # first of the maximum
        sweep[mode] = {k: ([_f(v) for v in vals] if k != "best_tau" else vals)
                       for k, vals in res.items()}

    # ---- per-class series -----------------------------------------------
    feat_norm_sum = np.bincount(y, weights=np.linalg.norm(H, axis=1), minlength=C)
    mean_norm = np.full(C, np.nan)
    mean_norm[P] = centred_norms
    feature_norm = np.full(C, np.nan)
    feature_norm[P] = feat_norm_sum[P] / counts[P]

    def opt(arr):
        return [float(arr[c]) if present[c] else None for c in range(C)]

    out = {
        "num_classes": int(C),
        "feature_dim": int(D),
        "num_samples": int(N),
    }
    out.update({k: _f(r[k]) for k in METRIC_KEYS})
    out["per_class"] = {
        "train_count": [int(v) for v in n_train],
        "count": [int(v) for v in counts],
        "weight_norm": [float(v) for v in w_norms],
        "bias": [float(v) for v in b],
        "feature_norm": opt(feature_norm),
        "mean_norm": opt(mean_norm),
        "accuracy": opt(acc_c),
    }
    out["la_sweep"] = sweep
    return out


def cone_stats(H, y, num_classes):
    """The four sample cone statistics via Gram identities (no N x N)."""
    H = np.asarray(H, dtype=np.float64)
    y = np.asarray(y).astype(np.int64).reshape(-1)
    keys = ("cone_mean_cos", "cone_std_cos", "cone_mean_cos_same_class",
            "cone_mean_cos_diff_class")
    r = dict.fromkeys(keys)
    norms = np.linalg.norm(H, axis=1)
    nz = norms > 0
    m = int(nz.sum())
    if m < 2:
        return r
    U = H[nz] / norms[nz, None]
    yu = y[nz]
    sq = np.einsum("ij,ij->i", U, U)             # u_i . u_i (1 up to rounding)
    s = U.sum(axis=0)
    pairs = m * (m - 1) / 2.0
    sum_cos = (s @ s - sq.sum()) / 2.0
    G = U.T @ U
    sum_cos2 = (np.sum(G * G) - np.sum(sq * sq)) / 2.0
    mean = sum_cos / pairs
    r["cone_mean_cos"] = float(mean)
    r["cone_std_cos"] = float(math.sqrt(max(sum_cos2 / pairs - mean * mean, 0.0)))
    cls_sums = _class_sums(U, yu, num_classes)
    mc = np.bincount(yu, minlength=num_classes).astype(np.float64)
    sq_c = np.bincount(yu, weights=sq, minlength=num_classes)
    same_pairs = float(np.sum(mc * (mc - 1) / 2.0))
    same_sum = float(np.sum((np.einsum("ij,ij->i", cls_sums, cls_sums) - sq_c) / 2.0))
    if same_pairs > 0:
        r["cone_mean_cos_same_class"] = same_sum / same_pairs
    diff_pairs = pairs - same_pairs
    if diff_pairs > 0:
        r["cone_mean_cos_diff_class"] = float((sum_cos - same_sum) / diff_pairs)
    return r


def brute_force_cone(H, y):
    """Cone statistics from the explicit N x N cosine matrix (N <= 2000);
    used only to check `cone_stats`."""
    H = np.asarray(H, dtype=np.float64)
    y = np.asarray(y).astype(np.int64).reshape(-1)
    if H.shape[0] > 2000:
        raise ValueError("brute force is for N <= 2000")
    norms = np.linalg.norm(H, axis=1)
    keep = norms > 0
    U = H[keep] / norms[keep, None]
    yk = y[keep]
    m = U.shape[0]
    r = dict.fromkeys(("cone_mean_cos", "cone_std_cos",
                       "cone_mean_cos_same_class", "cone_mean_cos_diff_class"))
    if m < 2:
        return r
    cos = U @ U.T
    i, j = np.triu_indices(m, 1)
    vals = cos[i, j]
    same = yk[i] == yk[j]
    r["cone_mean_cos"] = float(vals.mean())
    r["cone_std_cos"] = float(vals.std())
    if same.any():
        r["cone_mean_cos_same_class"] = float(vals[same].mean())
    if (~same).any():
        r["cone_mean_cos_diff_class"] = float(vals[~same].mean())
    return r


def brute_force_cone_loops(H, y):
    """Cone statistics with explicit Python pair loops (tiny N only)."""
    H = [np.asarray(h, dtype=np.float64) for h in np.asarray(H)]
    y = [int(v) for v in np.asarray(y).reshape(-1)]
    idx = [i for i, h in enumerate(H) if math.sqrt(float(h @ h)) > 0]
    all_c, same_c, diff_c = [], [], []
    for a in range(len(idx)):
        for bb in range(a + 1, len(idx)):
            i, j = idx[a], idx[bb]
            c = float(H[i] @ H[j]) / (math.sqrt(float(H[i] @ H[i])) * math.sqrt(float(H[j] @ H[j])))
            all_c.append(c)
            (same_c if y[i] == y[j] else diff_c).append(c)
    r = dict.fromkeys(("cone_mean_cos", "cone_std_cos",
                       "cone_mean_cos_same_class", "cone_mean_cos_diff_class"))
    if all_c:
        mean = sum(all_c) / len(all_c)
        r["cone_mean_cos"] = mean
        r["cone_std_cos"] = math.sqrt(sum((c - mean) ** 2 for c in all_c) / len(all_c))
    if same_c:
        r["cone_mean_cos_same_class"] = sum(same_c) / len(same_c)
    if diff_c:
        r["cone_mean_cos_diff_class"] = sum(diff_c) / len(diff_c)
    return r


# --------------------------------------------------------------------------
# run files

def _attr_int(attrs, name):
    if name not in attrs:
        return None
    return int(np.asarray(attrs[name]).reshape(-1)[0])


def snapshot_order(f):
    """Snapshot names ordered as run-format.md says: by `epoch`, then by name;
    snapshots without an epoch come first (ordered by name)."""
    def key(name):
        ep = _attr_int(f["snapshots"][name].attrs, "epoch")
        return (0, 0, name) if ep is None else (1, ep, name)
    return sorted(f["snapshots"].keys(), key=key)


def load_run(path, snapshot=None, split=None):
    """Read the inputs of one snapshot/split of a run file with h5py."""
    import h5py
    with h5py.File(path, "r") as f:
        train_counts = np.asarray(f["classes/train_counts"][...]).astype(np.int64)
        cattrs = f["classes"].attrs
        many = _attr_int(cattrs, "many_threshold")
        few = _attr_int(cattrs, "few_threshold")
        if snapshot is None:
            snapshot = snapshot_order(f)[-1]
        g = f["snapshots"][snapshot]
        epoch = _attr_int(g.attrs, "epoch")
        if split is None:
            split = next(s for s in SPLIT_ORDER if s in g)
        sg = g[split]
        data = {
            "snapshot": snapshot,
            "split": split,
            "epoch": epoch,
            "H": np.asarray(sg["features"][...], dtype=np.float64),
            "y": np.asarray(sg["labels"][...]).astype(np.int64),
            "W": np.asarray(g["classifier_weight"][...], dtype=np.float64),
            "b": (np.asarray(g["classifier_bias"][...], dtype=np.float64)
                  if "classifier_bias" in g else None),
            "logits": (np.asarray(sg["logits"][...], dtype=np.float64)
                       if "logits" in sg else None),
            "train_counts": train_counts,
            "many_threshold": many,
            "few_threshold": few,
        }
    return data


def analyze_file(path, snapshot=None, split=None, many_threshold=None,
                 few_threshold=None):
    """The JSON object of `ltlab analyze FILE --format json` as a dict."""
    d = load_run(path, snapshot, split)
    mt = many_threshold if many_threshold is not None else d["many_threshold"]
    ft = few_threshold if few_threshold is not None else d["few_threshold"]
    mt = DEFAULT_MANY_THRESHOLD if mt is None else mt
    ft = DEFAULT_FEW_THRESHOLD if ft is None else ft
    res = analyze(d["H"], d["y"], d["W"], d["b"], d["train_counts"],
                  d["logits"], mt, ft)
    out = {"snapshot": d["snapshot"], "split": d["split"], "epoch": d["epoch"]}
    out.update(res)
    return {k: out[k] for k in TOP_KEYS}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--snapshot")
    ap.add_argument("--split", choices=SPLIT_ORDER)
    ap.add_argument("--many-threshold", type=int)
    ap.add_argument("--few-threshold", type=int)
    a = ap.parse_args(argv)
    res = analyze_file(a.file, a.snapshot, a.split, a.many_threshold,
                       a.few_threshold)
    json.dump(res, sys.stdout, indent=1, allow_nan=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
