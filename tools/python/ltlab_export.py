"""Write ltlab run files (docs/run-format.md) from PyTorch training.

Needs only torch and h5py (numpy comes with h5py). Call it at the end of each
epoch; each call appends one snapshot (classifier, and features, labels and
optionally logits per split) and one /history row to the run file, creating
the file on the first call::

    from ltlab_export import RunExporter, extract
    run = RunExporter("run.h5", class_names, train_counts)
    for epoch in range(1, epochs + 1):
        loss = train_one_epoch(model)
        splits = {"test": extract(model, test_loader)}
        run.export_snapshot("epoch_%04d" % epoch, model.fc, splits, epoch=epoch,
                            history_row={"train_loss": loss})

Every call is one transaction: the file is copied beside itself
(``RUN.h5.partial``), the epoch is written to the copy, which is flushed to
disk (fsync) and renamed over the original, and the folder is flushed. A
reader (the ltlab workbench watching the file) sees either the previous
complete file or the new one, never half an epoch, and a kill at any moment
leaves the previous complete file.

Under torch.distributed (DistributedDataParallel with a DistributedSampler),
call the same code on every rank: ``extract`` computes the features of the
rank's shard and remembers the dataset index of each sample;
``export_snapshot`` gathers the shards on rank 0 (padded to the largest shard
and trimmed), puts the samples back in dataset order, drops the duplicates
DistributedSampler pads with, writes, and then releases the other ranks
(which wait for it and raise the same error if the write failed).

docs/exporter.md has the whole story.
"""

import json
import math
import os
import shutil

import h5py
import numpy as np
import torch

__all__ = ["RunExporter", "export_snapshot", "extract", "class_counts",
           "find_classifier", "FORMAT", "FORMAT_VERSION", "SPLITS"]

FORMAT = "ltlab-run"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
_CHUNK_BYTES = 1 << 20          # row chunks of big datasets, as ltlab writes them
_HISTORY_CHUNK = 256            # /history chunk length, as ltlab writes it
_FICLONE = 0x40049409           # ioctl: share the extents (btrfs, XFS)


def _test_hook(stage, path):
    """Called at each stage of a transaction ("copied", "snapshot", "written",
    "synced"), with the partial file's path. The tests replace it to inject a
    crash; it does nothing otherwise."""


# --------------------------------------------------------------------------
# small helpers

def class_counts(labels, num_classes):
    """Per-class counts of a label vector (tensor, array or list): the
    `train_counts` of a training set."""
    y = np.asarray(labels.cpu() if torch.is_tensor(labels) else labels).astype(np.int64).reshape(-1)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError("labels outside [0, %d)" % num_classes)
    return np.bincount(y, minlength=num_classes).astype(np.int64)


def _unwrap(model):
    """The module inside DistributedDataParallel / DataParallel wrappers."""
    while isinstance(model, (torch.nn.parallel.DistributedDataParallel,
                             torch.nn.DataParallel)):
        model = model.module
    return model


def find_classifier(model):
    """The final linear layer of a model: an nn.Linear attribute named fc,
    classifier, head, linear or last_linear (also inside an nn.Sequential),
    else the last nn.Linear among its modules."""
    model = _unwrap(model)
    if isinstance(model, torch.nn.Linear):
        return model
    for name in ("fc", "classifier", "head", "linear", "last_linear"):
        m = getattr(model, name, None)
        if isinstance(m, torch.nn.Sequential) and len(m) and isinstance(m[-1], torch.nn.Linear):
            m = m[-1]
        if isinstance(m, torch.nn.Linear):
            return m
    last = None
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            last = m
    if last is None:
        raise ValueError("no nn.Linear classifier found in %s: pass the classifier "
                         "(an nn.Linear, or (weight, bias))" % type(model).__name__)
    return last


def _to_tensor(x, what):
    if x is None:
        return None
    if torch.is_tensor(x):
        return x.detach().cpu()
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as e:
        raise TypeError("%s: expected a tensor or an array (%s)" % (what, e)) from None


def _float_tensor(x, what):
    t = _to_tensor(x, what)
    if t is None:
        return None
    if not t.is_floating_point():
        t = t.to(torch.float64 if t.dtype == torch.int64 else torch.float32)
    elif t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)          # float16 / bfloat16: the format has float32/64
    return t.contiguous()


def _classifier_arrays(classifier):
    """(weight [C, D], bias [C] or None) as float tensors from an nn.Linear,
    a model (its find_classifier), a (weight, bias) pair or a weight."""
    if isinstance(classifier, torch.nn.Module):
        lin = classifier if isinstance(classifier, torch.nn.Linear) else find_classifier(classifier)
        w, b = lin.weight, lin.bias
    elif isinstance(classifier, (tuple, list)) and len(classifier) == 2:
        w, b = classifier
    else:
        w, b = classifier, None
    w = _float_tensor(w, "classifier weight")
    b = _float_tensor(b, "classifier bias")
    return w, b


def _unpack_batch(batch):
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        return batch[0], batch[1], (batch[2] if len(batch) == 3 else None)
    if isinstance(batch, dict):
        def pick(*keys):
            for k in keys:
                if k in batch:
                    return batch[k]
            return None
        x, y = pick("input", "inputs", "x", "image", "images"), pick("label", "labels", "target", "targets", "y")
        if x is not None and y is not None:
            return x, y, pick("index", "indices", "idx")
    raise TypeError("extract: a batch must be (inputs, labels) or (inputs, labels, indices), "
                    "or a dict with input/label(/index) keys; got %s" % type(batch).__name__)


def _sampler_indices(loader):
    """The dataset indices a DataLoader visits, in order, when its sampler is
    deterministic (DistributedSampler, SequentialSampler); else None."""
    from torch.utils.data import DistributedSampler, SequentialSampler
    bs = getattr(loader, "batch_sampler", None)
    sampler = getattr(bs, "sampler", None) if bs is not None else getattr(loader, "sampler", None)
    if isinstance(sampler, (DistributedSampler, SequentialSampler)):
        return list(iter(sampler))
    return None


# --------------------------------------------------------------------------
# features

def extract(model, loader, feature_fn=None, classifier=None, device=None):
    """Penultimate features, logits and labels of every sample of a loader,
    computed in eval mode under torch.no_grad (the model's train/eval mode is
    restored afterwards).

    model: the network (a DistributedDataParallel or DataParallel wrapper is
      unwrapped: no collective runs during the extraction).
    loader: yields (inputs, labels) or (inputs, labels, indices). Without
      indices, they come from the loader's sampler when it is a
      DistributedSampler or a SequentialSampler (set_epoch is respected).
    feature_fn(model, inputs): returns the features [B, D], or a pair
      (features, logits). Default: the input of the classifier (``classifier``
      or find_classifier(model)), captured by a forward hook while model(inputs)
      runs, and the model's output as logits.
    classifier: the final layer; with a feature_fn that returns only features,
      logits are classifier(features) when it is given (else omitted).
    device: where inputs go (default: the device of the model's parameters).

    Returns {"features": [N, D], "labels": [N] int64, "logits": [N, C] or
    None, "indices": [N] int64 or None}, CPU tensors, in the loader's order.
    Under a process group this is the rank's shard; export_snapshot gathers.
    """
    net = _unwrap(model)
    if device is None:
        p = next(iter(net.parameters()), None)
        device = p.device if p is not None else torch.device("cpu")
    hook_store = []
    handle = None
    if feature_fn is None:
        head = find_classifier(net) if classifier is None else _unwrap(classifier)
        handle = head.register_forward_pre_hook(lambda m, inp: hook_store.append(inp[0]))
    elif classifier is not None:
        classifier = _unwrap(classifier)
    feats, logits, labels, indices = [], [], [], []
    have_idx = None
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            for batch in loader:
                x, y, idx = _unpack_batch(batch)
                if have_idx is None:
                    have_idx = idx is not None
                elif have_idx != (idx is not None):
                    raise ValueError("extract: some batches carry indices and some do not")
                x = x.to(device) if torch.is_tensor(x) else x
                if feature_fn is None:
                    hook_store.clear()
                    out = net(x)
                    if len(hook_store) != 1:
                        raise ValueError("extract: the classifier ran %d times in one forward pass; "
                                         "pass a feature_fn" % len(hook_store))
                    h = hook_store[0]
                    z = out if torch.is_tensor(out) and out.dim() == 2 else None
                else:
                    out = feature_fn(net, x)
                    if isinstance(out, (tuple, list)):
                        h, z = out[0], out[1]
                    else:
                        h = out
                        z = classifier(h) if classifier is not None else None
                h = h.detach().reshape(h.shape[0], -1).cpu()
                feats.append(h)
                if z is not None:
                    logits.append(z.detach().cpu())
                yl = torch.as_tensor(y).reshape(-1).cpu().to(torch.int64)
                if yl.numel() != h.shape[0]:
                    raise ValueError("extract: a batch has %d labels for %d feature rows"
                                     % (yl.numel(), h.shape[0]))
                labels.append(yl)
                if idx is not None:
                    indices.append(torch.as_tensor(idx).reshape(-1).cpu().to(torch.int64))
    finally:
        net.train(was_training)
        if handle is not None:
            handle.remove()
    if not feats:
        raise ValueError("extract: the loader yielded no batch")
    if logits and len(logits) != len(feats):
        raise ValueError("extract: logits were produced for some batches only")
    y = torch.cat(labels)
    if indices:
        ind = torch.cat(indices)
    else:
        si = _sampler_indices(loader)
        if si is not None and len(si) < y.numel():
            raise ValueError("extract: the sampler has %d indices for %d samples" % (len(si), y.numel()))
        ind = torch.as_tensor(si[:y.numel()], dtype=torch.int64) if si is not None else None
    return {"features": torch.cat(feats), "labels": y,
            "logits": torch.cat(logits) if logits else None, "indices": ind}


# --------------------------------------------------------------------------
# distributed gathering

def _dist_world():
    d = torch.distributed
    if d.is_available() and d.is_initialized():
        return d.get_rank(), d.get_world_size()
    return 0, 1


def _comm_device():
    d = torch.distributed
    if d.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _gather_rows(t, rows, dst, rank, world, device):
    """Gathers [rows, ...] tensors of every rank (rows may differ) on dst:
    each is padded to the largest row count, gathered, then trimmed. Returns
    the list of the ranks' tensors on dst, None elsewhere."""
    d = torch.distributed
    max_rows = max(rows)
    padded = torch.zeros((max_rows,) + tuple(t.shape[1:]), dtype=t.dtype)
    padded[:t.shape[0]] = t
    padded = padded.to(device)
    bufs = [torch.empty_like(padded) for _ in range(world)] if rank == dst else None
    d.gather(padded, bufs, dst=dst)
    if rank != dst:
        return None
    return [b[:n].cpu() for b, n in zip(bufs, rows)]


def _local_meta(splits):
    """What every rank must agree on before the gather; an error here is
    reported on every rank instead of leaving the others waiting."""
    meta = {}
    for name in SPLITS:
        s = splits.get(name)
        if s is None:
            continue
        meta[name] = {"rows": int(s["features"].shape[0]),
                      "feature_shape": tuple(s["features"].shape[1:]),
                      "feature_dtype": str(s["features"].dtype),
                      "logits": None if s["logits"] is None else (tuple(s["logits"].shape[1:]),
                                                                  str(s["logits"].dtype)),
                      "indices": s["indices"] is not None}
    return meta


def _gather_splits(raw_splits, rank, world, dst=0):
    d = torch.distributed
    try:
        splits = _prepare_splits(raw_splits, dedupe=False)
        meta, err = _local_meta(splits), None
    except Exception as e:              # noqa: BLE001 - reported on every rank
        meta, err = None, "%s: %s" % (type(e).__name__, e)
    metas = [None] * world
    d.all_gather_object(metas, (meta, err))
    errors = ["rank %d: %s" % (r, m[1]) for r, m in enumerate(metas) if m[1]]
    if errors:
        raise ValueError("export_snapshot: " + "; ".join(errors))
    m0 = metas[0][0]
    for r, (m, _) in enumerate(metas):
        if set(m) != set(m0):
            raise ValueError("export_snapshot: rank %d has splits %s, rank 0 has %s"
                             % (r, sorted(m), sorted(m0)))
        for name in m0:
            a, b = m[name], m0[name]
            for key in ("feature_shape", "feature_dtype", "logits", "indices"):
                if a[key] != b[key]:
                    raise ValueError("export_snapshot: split %s: rank %d has %s %r, rank 0 has %r"
                                     % (name, r, key, a[key], b[key]))
    device = _comm_device()
    out = {}
    for name in SPLITS:
        if name not in m0:
            continue
        s = splits[name]
        rows = [m[name]["rows"] for m, _ in metas]
        parts = {}
        for key in ("features", "labels", "logits", "indices"):
            if s[key] is None:
                parts[key] = None
                continue
            parts[key] = _gather_rows(s[key], rows, dst, rank, world, device)
        if rank != dst:
            continue
        joined = {k: (None if v is None else torch.cat(v)) for k, v in parts.items()}
        out[name] = _in_index_order(joined)
    return out if rank == dst else None


# --------------------------------------------------------------------------
# the run file

def _split_dict(name, s):
    if isinstance(s, (tuple, list)):
        if len(s) not in (2, 3, 4):
            raise ValueError("split %s: expected (features, labels[, logits[, indices]])" % name)
        s = dict(zip(("features", "labels", "logits", "indices"), s))
    if not isinstance(s, dict) or "features" not in s or "labels" not in s:
        raise ValueError("split %s: expected a dict with features and labels (what extract returns)" % name)
    feats = _float_tensor(s["features"], "%s/features" % name)
    if feats.dim() != 2:
        raise ValueError("split %s: features have shape %s, expected [N, D]" % (name, tuple(feats.shape)))
    labels = _to_tensor(s["labels"], "%s/labels" % name).reshape(-1)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError("split %s: labels have dtype %s, expected integers" % (name, labels.dtype))
    labels = labels.to(torch.int64)
    logits = _float_tensor(s.get("logits"), "%s/logits" % name)
    indices = _to_tensor(s.get("indices"), "%s/indices" % name)
    if indices is not None:
        indices = indices.reshape(-1).to(torch.int64)
    n = feats.shape[0]
    for what, t in (("labels", labels), ("logits", logits), ("indices", indices)):
        if t is not None and t.shape[0] != n:
            raise ValueError("split %s: %d %s rows for %d feature rows" % (name, t.shape[0], what, n))
    if logits is not None and logits.dim() != 2:
        raise ValueError("split %s: logits have shape %s, expected [N, C]" % (name, tuple(logits.shape)))
    return {"features": feats, "labels": labels, "logits": logits, "indices": indices}


def _in_index_order(s):
    """A split in dataset order (by its indices), each index once: the
    duplicates DistributedSampler pads with (the first samples again) are
    dropped, the first occurrence kept. Without indices, as it is."""
    if s["indices"] is None:
        return s
    _, first = np.unique(s["indices"].numpy(), return_index=True)
    order = torch.from_numpy(first.astype(np.int64))
    return {k: (None if v is None else v.index_select(0, order)) for k, v in s.items()}


def _prepare_splits(splits, dedupe):
    splits = {k: v for k, v in (splits or {}).items() if v is not None}
    unknown = sorted(set(splits) - set(SPLITS), key=str)
    if unknown:
        raise ValueError("unknown split name(s) %s: expected %s" % (unknown, ", ".join(SPLITS)))
    out = {}
    for k in SPLITS:
        if k in splits:
            s = _split_dict(k, splits[k])
            out[k] = _in_index_order(s) if dedupe else s
    return out


def _count_nonfinite(where, t):
    if t is None:
        return None
    bad = ~torch.isfinite(t)
    k = int(bad.sum())
    if not k:
        return None
    first = tuple(int(i) for i in bad.nonzero()[0])
    return "%s: %d non-finite value%s (first at %s)" % (where, k, "s" if k > 1 else "", first)


def _check_snapshot(name, weight, bias, splits, num_classes):
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError("snapshot name %r: expected a non-empty name without '/'" % (name,))
    if weight.dim() != 2:
        raise ValueError("classifier weight has shape %s, expected [C, D]" % (tuple(weight.shape),))
    C, D = weight.shape
    if C != num_classes:
        raise ValueError("classifier has %d classes, train_counts has %d" % (C, num_classes))
    if bias is not None and tuple(bias.shape) != (C,):
        raise ValueError("classifier bias has shape %s, expected [%d]" % (tuple(bias.shape), C))
    if not splits:
        raise ValueError("snapshot %s: no split (give at least one of %s)" % (name, ", ".join(SPLITS)))
    problems = [p for p in (_count_nonfinite("classifier_weight", weight),
                            _count_nonfinite("classifier_bias", bias)) if p]
    for s, d in splits.items():
        if d["features"].shape[1] != D:
            raise ValueError("split %s: features have D=%d, the classifier D=%d" % (s, d["features"].shape[1], D))
        if d["logits"] is not None and d["logits"].shape[1] != C:
            raise ValueError("split %s: logits have %d columns, expected C=%d" % (s, d["logits"].shape[1], C))
        y = d["labels"]
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= C):
            bad = int(((y < 0) | (y >= C)).sum())
            raise ValueError("split %s: %d labels outside [0, %d)" % (s, bad, C))
        problems += [p for p in (_count_nonfinite("%s/features" % s, d["features"]),
                                 _count_nonfinite("%s/logits" % s, d["logits"])) if p]
    if problems:
        raise ValueError("snapshot %s not written: %s" % (name, "; ".join(problems)))


def _write_array(group, name, t):
    a = t.numpy() if torch.is_tensor(t) else np.asarray(t)
    kw = {}
    if a.nbytes > _CHUNK_BYTES and a.shape[0] > 0:
        row = a.itemsize * (a.shape[1] if a.ndim > 1 else 1)
        kw["chunks"] = (max(1, min(a.shape[0], _CHUNK_BYTES // max(row, 1))),) + a.shape[1:]
    group.create_dataset(name, data=a, **kw)


def _history_value(name, v):
    if torch.is_tensor(v):
        if v.numel() != 1:
            raise ValueError("history %s: a tensor of %d values, expected one" % (name, v.numel()))
        v = v.item()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError("history %s: %r is not a number" % (name, v))
    return v


def _append_history(f, row):
    """One row of /history: every series grows by one (NaN, or -1 for epoch,
    where the row has no value); a series that starts late is padded the same
    way for the epochs before it (as ltlab does)."""
    hist = f.require_group("history")
    lengths = {n: hist[n].shape[0] for n in hist}
    if len(set(lengths.values())) > 1:
        raise ValueError("/history has series of different lengths: %s" % lengths)
    old = next(iter(lengths.values()), 0)
    for name in row:
        if name in hist:
            continue
        if "/" in name or not name:
            raise ValueError("history name %r: expected a name without '/'" % name)
        integer = name == "epoch"
        ds = hist.create_dataset(name, shape=(old,), maxshape=(None,), chunks=(_HISTORY_CHUNK,),
                                 dtype="<i8" if integer else "<f8")
        if old:
            ds[...] = -1 if integer else np.nan
    for name in hist:
        ds = hist[name]
        v = row.get(name)
        if v is None:
            v = old if name == "epoch" else math.nan
        ds.resize((old + 1,))
        if np.issubdtype(ds.dtype, np.integer):
            if isinstance(v, float) and not v.is_integer():
                raise ValueError("history %s: %r is not an integer" % (name, v))
            ds[old] = int(v)
        else:
            ds[old] = float(v)


def _fsync_path(path, directory=False):
    flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise                       # some file systems refuse fsync on folders
    finally:
        os.close(fd)


def _copy_file(src, dst):
    """dst = a copy of src: a reflink where the file system shares extents,
    else the kernel's copy (shutil: sendfile); keeps the permission bits."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        try:
            import fcntl
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
        except (OSError, ImportError):
            fout.seek(0)
            fout.truncate()
            shutil.copyfileobj(fin, fout, 1 << 20)
    shutil.copymode(src, dst)


def _commit(path, copy_existing, change):
    """One transaction: change(h5py.File) on a copy of path (or a new file),
    fsync, rename over path, fsync the folder. On any error the copy is
    removed and path is as it was."""
    partial = path + ".partial"
    try:
        if copy_existing:
            _copy_file(path, partial)
            _test_hook("copied", partial)
        with h5py.File(partial, "r+" if copy_existing else "w") as f:
            change(f)
        _test_hook("written", partial)
        _fsync_path(partial)
        _test_hook("synced", partial)
        os.replace(partial, path)
    except BaseException:
        try:
            os.remove(partial)
        except OSError:
            pass
        raise
    _fsync_path(os.path.dirname(os.path.abspath(path)), directory=True)


def _read_attr_int(attrs, name):
    if name not in attrs:
        return None
    return int(np.asarray(attrs[name]).reshape(-1)[0])


def _attr_str(v):
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


class RunExporter:
    """A run file that grows by one snapshot per call.

    path: the run file (created on the first export; with mode "a" an
      existing ltlab run file with the same train_counts is appended to).
    class_names: C names (optional: None for "0".."C-1").
    train_counts: training-set size of each class (C >= 2); class_counts()
      computes it from the training labels. Optional only when appending to
      an existing file.
    config: the run's configuration, a dict (stored as JSON) or a JSON string.
    many_threshold, few_threshold: the shot-group thresholds of the dataset
      (ltlab's defaults 100 and 20 when omitted; 1000 and 200 for 10-class
      datasets).
    mode: "a" (append to an existing file, else create it) or "w" (the first
      export replaces any existing file; later ones append).

    Under torch.distributed, construct it on every rank with the same
    arguments and call export_snapshot on every rank; only rank 0 touches the
    file.
    """

    def __init__(self, path, class_names=None, train_counts=None, config=None,
                 many_threshold=None, few_threshold=None, mode="a"):
        if mode not in ("a", "w"):
            raise ValueError("mode must be 'a' or 'w', not %r" % (mode,))
        self.path = os.fspath(path)
        self.mode = mode
        self.train_counts = None
        if train_counts is not None:
            tc = np.asarray(train_counts.cpu() if torch.is_tensor(train_counts) else train_counts)
            if tc.ndim != 1 or tc.size < 2:
                raise ValueError("train_counts: expected a vector of C >= 2 counts, got shape %s" % (tc.shape,))
            if not np.issubdtype(tc.dtype, np.integer):
                if not np.all(np.isfinite(tc)) or np.any(tc != np.round(tc)):
                    raise ValueError("train_counts: expected integers")
            tc = tc.astype(np.int64)
            if np.any(tc < 0):
                raise ValueError("train_counts: %d negative counts" % int((tc < 0).sum()))
            self.train_counts = tc
        self.class_names = None if class_names is None else [str(n) for n in class_names]
        if self.class_names is not None and self.train_counts is not None \
                and len(self.class_names) != self.train_counts.size:
            raise ValueError("%d class names for %d classes" % (len(self.class_names), self.train_counts.size))
        if config is not None and not isinstance(config, str):
            config = json.dumps(config, sort_keys=True)
        elif config is not None:
            json.loads(config)          # must be JSON
        self.config = config
        for n, v in (("many_threshold", many_threshold), ("few_threshold", few_threshold)):
            if v is not None and (isinstance(v, bool) or int(v) != v or v < 0):
                raise ValueError("%s: expected a non-negative integer, got %r" % (n, v))
        self.many_threshold = None if many_threshold is None else int(many_threshold)
        self.few_threshold = None if few_threshold is None else int(few_threshold)
        if (self.many_threshold is not None and self.few_threshold is not None
                and self.many_threshold < self.few_threshold):   # ltlab refuses such a file
            raise ValueError("many_threshold (%d) must be >= few_threshold (%d)"
                             % (self.many_threshold, self.few_threshold))
        self._started = False

    # -- the file ----------------------------------------------------------
    def _create(self, f):
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        if self.config is not None:
            f.attrs["config"] = self.config
        c = f.create_group("classes")
        c.create_dataset("train_counts", data=self.train_counts)
        if self.class_names is not None:
            c.create_dataset("names", data=self.class_names, dtype=h5py.string_dtype("utf-8"))
        if self.many_threshold is not None:
            c.attrs["many_threshold"] = np.int64(self.many_threshold)
        if self.few_threshold is not None:
            c.attrs["few_threshold"] = np.int64(self.few_threshold)
        f.create_group("snapshots")

    def _check_existing(self):
        """Reads the class info of the existing file (and refuses another run)."""
        try:
            with h5py.File(self.path, "r") as f:
                fmt = _attr_str(f.attrs.get("format", ""))
                ver = _read_attr_int(f.attrs, "format_version")
                if fmt != FORMAT or ver != FORMAT_VERSION:
                    raise ValueError("%s is not an ltlab run file of format version %d (format=%r, "
                                     "format_version=%r); not appending to it"
                                     % (self.path, FORMAT_VERSION, fmt, ver))
                if "classes/train_counts" not in f:
                    raise ValueError("%s: /classes/train_counts missing; not appending to it" % self.path)
                tc = np.asarray(f["classes/train_counts"][...]).astype(np.int64)
        except OSError as e:
            raise ValueError("%s: cannot read the existing run file (%s); pass mode='w' to replace it"
                             % (self.path, e)) from None
        if self.train_counts is None:
            self.train_counts = tc
        elif not np.array_equal(tc, self.train_counts):
            raise ValueError("%s holds a run with other train_counts (C=%d); not appending to it"
                             % (self.path, tc.size))

    def _transaction(self, change):
        exists = os.path.exists(self.path)
        if exists and not (self.mode == "w" and not self._started):
            self._check_existing()
            _commit(self.path, True, change)
        else:
            if self.train_counts is None:
                raise ValueError("%s: train_counts is needed to create the run file" % self.path)

            def create_and_change(f):
                self._create(f)
                change(f)
            _commit(self.path, False, create_and_change)
        self._started = True

    def _on_writer(self, work):
        """work() on rank 0; every rank returns or raises with rank 0."""
        rank, world = _dist_world()
        if world == 1:
            return work()
        d = torch.distributed
        err = None
        if rank == 0:
            try:
                work()
            except Exception as e:      # noqa: BLE001 - re-raised on every rank
                err = e
        status = [None]
        if rank == 0:
            status = ["%s: %s" % (type(err).__name__, err) if err else None]
        d.broadcast_object_list(status, src=0)   # the other ranks wait here for the write
        if err is not None:
            raise err
        if status[0]:
            raise RuntimeError("rank 0 could not write %s: %s" % (self.path, status[0]))
        return None

    # -- public API ----------------------------------------------------------
    def export_snapshot(self, name, classifier, splits, epoch=None, stage=None, label=None,
                        history_row=None, replace=False):
        """Append one snapshot and one /history row (one atomic transaction).

        name: the snapshot's name, e.g. "epoch_%04d" % epoch.
        classifier: an nn.Linear (model.fc), a model (its final nn.Linear), a
          (weight [C, D], bias [C] or None) pair, or a weight.
        splits: {"train"|"val"|"test": what extract() returns, or a dict /
          tuple (features [N, D], labels [N][, logits [N, C][, indices [N]]])}.
          Tensors or arrays; float32 stays float32, float64 stays float64.
          Under a process group each rank passes its shard; with indices the
          file holds the samples in index order, each once.
        epoch, stage (1 or 2), label: the snapshot's attributes.
        history_row: {metric: number} for /history (train_loss,
          train_accuracy, test_accuracy, lr, seconds, ...); "epoch" is added
          from epoch. None: a row with the epoch only (when epoch is given);
          False: no history row. Under a process group rank 0's row is used.
        replace: an existing snapshot of that name is replaced (else an error).
        """
        rank, world = _dist_world()
        if world > 1:
            gathered = _gather_splits(splits, rank, world)
        else:
            gathered = _prepare_splits(splits, dedupe=True)

        def work():
            row = self._history_row(epoch, history_row)
            weight, bias = _classifier_arrays(classifier)
            if self.train_counts is not None:     # refuse before copying the file
                _check_snapshot(name, weight, bias, gathered, int(self.train_counts.size))

            def change(f):
                C = int(f["classes/train_counts"].shape[0])
                _check_snapshot(name, weight, bias, gathered, C)
                snaps = f.require_group("snapshots")
                if name in snaps:
                    if not replace:
                        raise ValueError("%s: snapshot %s exists (pass replace=True to replace it)"
                                         % (self.path, name))
                    del snaps[name]
                g = snaps.create_group(name)
                if epoch is not None:
                    g.attrs["epoch"] = np.int64(epoch)
                if stage is not None:
                    if stage not in (1, 2):
                        raise ValueError("stage must be 1 or 2, not %r" % (stage,))
                    g.attrs["stage"] = np.int64(stage)
                if label is not None:
                    g.attrs["label"] = str(label)
                _write_array(g, "classifier_weight", weight)
                if bias is not None:
                    _write_array(g, "classifier_bias", bias)
                for s in SPLITS:
                    if s not in gathered:
                        continue
                    d = gathered[s]
                    sg = g.create_group(s)
                    _write_array(sg, "features", d["features"])
                    _write_array(sg, "labels", d["labels"])
                    if d["logits"] is not None:
                        _write_array(sg, "logits", d["logits"])
                _test_hook("snapshot", f.filename)
                if row is not None:
                    _append_history(f, row)
            self._transaction(change)
        self._on_writer(work)

    def append_history(self, row, epoch=None):
        """Append one /history row without a snapshot (one transaction)."""
        r = self._history_row(epoch, row)
        if r is None:
            raise ValueError("append_history: an empty row")
        self._on_writer(lambda: self._transaction(lambda f: _append_history(f, r)))

    @staticmethod
    def _history_row(epoch, history_row):
        if history_row is False:
            return None
        row = {}
        for k, v in (history_row or {}).items():
            if not isinstance(k, str):
                raise TypeError("history names must be strings, not %r" % (k,))
            row[k] = _history_value(k, v)
        if epoch is not None:
            if "epoch" in row and row["epoch"] != epoch:
                raise ValueError("history_row epoch %r differs from epoch %r" % (row["epoch"], epoch))
            row["epoch"] = int(epoch)
        return row or None


def export_snapshot(run_or_path, name, classifier, splits, epoch=None, stage=None, label=None,
                    history_row=None, replace=False, **exporter_kwargs):
    """One-call form: run_or_path is a RunExporter, or a path (an existing run
    file is appended to; a new one needs train_counts=..., and may take
    class_names, config, many_threshold, few_threshold as for RunExporter).
    The other arguments are those of RunExporter.export_snapshot."""
    if isinstance(run_or_path, RunExporter):
        if exporter_kwargs:
            raise TypeError("export_snapshot: %s given with a RunExporter" % sorted(exporter_kwargs))
        run = run_or_path
    else:
        run = RunExporter(run_or_path, **exporter_kwargs)
    run.export_snapshot(name, classifier, splits, epoch=epoch, stage=stage, label=label,
                        history_row=history_row, replace=replace)
    return run
