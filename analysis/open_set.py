"""Open-set attribution: answer "none of the architectures I know" without retraining.

Unknown scores, higher = more unknown for every one of them:
- ``msp``: 1 - maximum softmax probability (Hendrycks & Gimpel, ICLR 2017), the baseline;
- ``energy``: -logsumexp of the logits (Liu et al., NeurIPS 2020, temperature 1);
- ``mahalanobis``: the smallest squared Mahalanobis distance of the pooled backbone feature
  (global average pool of the last feature map, 8w-d) to the K class means, with one
  covariance shared by all classes (Lee et al., NeurIPS 2018), estimated on the
  class-centred training features with Ledoit-Wolf shrinkage towards a scaled identity;
- ``relative_mahalanobis``: ``mahalanobis`` minus the squared Mahalanobis distance to one
  Gaussian fitted on all training features regardless of class (Ren et al. 2021, "A Simple
  Fix to Mahalanobis Distance for Improving Near-OOD Detection"): what is common to every
  known class (photo content, image statistics) cancels, what sets a class apart remains;
- ``cosine``: 1 - the largest cosine similarity of the pooled feature to the K class
  prototypes (the normalised mean of each class's L2-normalised training features);
- ``knn``: the distance of the L2-normalised pooled feature to its ``KNN_K``-th nearest
  L2-normalised training feature (Sun et al., ICML 2022, "Out-of-Distribution Detection with
  Deep Nearest Neighbors"); the training features are stored with the statistics;
- ``vim``: Virtual-logit Matching (Wang et al., CVPR 2022): the norm of the feature's
  residual outside the principal subspace (the top half of the eigenvectors of the training
  features' second moment around the origin u = -pinv(W) b of the linear classifier W, b),
  scaled by alpha = mean max training logit / mean training residual, minus logsumexp of
  the logits (a monotone form of the virtual logit's softmax probability).

``fit_open_set`` fits the statistics on training images and one threshold per score on
validation images, so that ``KEEP_RATE`` (95 %) of those are kept (score <= threshold).
They are stored beside the weights, ``model.pth`` -> ``model.openset.npz``, read with
``np.load(allow_pickle=False)``; the file records the weights' SHA-1 and the
preprocessing, and ``load_statistics`` refuses statistics of other weights or other
preprocessing (they are never refitted silently).
"""
import dataclasses
import json
import math
import os
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from data.atomic import atomic_file
from data.annotations import read_annotations
from data.content_hash import file_identity
from data.sampling import seeded_subset
from engine.inference import EvalSetup, run_items

SCORES = ("msp", "energy", "mahalanobis", "relative_mahalanobis", "cosine", "knn", "vim")
# the default score: the first of these the statistics hold (best measured first, README)
PREFERRED_SCORES = ("relative_mahalanobis", "mahalanobis", "energy")
LOGIT_SCORES = ("msp", "energy")
MODES = ("auto", "on", "off")   # --open_set: with statistics when present / required / never
KEEP_RATE = 0.95
MAX_DENSE_DIM = 2048            # beyond this feature size (the DCT baseline: 32,768) no D x D matrix
#                                 (mahalanobis, relative_mahalanobis, vim) and no N x D kNN bank is fitted
MAX_FIT_IMAGES = 10000          # training images for the class means (seeded, per-class share)
KNN_K = 10                      # the k of ``knn`` (Sun et al. use 50 for CIFAR-10's 50,000 images)
FORMAT, VERSION = "dnadet-openset", 1
FIT_COMMAND = ("python eval/fit_open_set.py --model_path {model} --config_name CONFIG "
               "--train_data_path TRAIN.txt --val_data_path VAL.txt")


def statistics_path(model_path: str) -> str:
    """``.../model.pth`` -> ``.../model.openset.npz``."""
    return os.path.splitext(model_path)[0] + ".openset.npz"


def linear_head(model: torch.nn.Module) -> Optional[tuple]:
    """(W [K, D], b [K]) of the last linear layer of the classifier head, as float64 arrays, or None."""
    linears = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)]
    if not linears or linears[-1].bias is None:
        return None
    layer = linears[-1]
    return (layer.weight.detach().double().cpu().numpy(), layer.bias.detach().double().cpu().numpy())


def fit_feature_statistics(features: np.ndarray, labels: np.ndarray, class_num: int,
                           head: Optional[tuple] = None, logits: Optional[np.ndarray] = None) -> dict:
    """Class means [K, D], prototypes [K, D], shared precision [D, D], and the background
    Gaussian of all features (mean [D], precision [D, D]); float32, the precisions None when
    D is too large.

    Each covariance is the Ledoit-Wolf estimate (class-centred features for the shared one,
    features centred on their overall mean for the background one):
    (1 - a) * S + a * (trace(S) / D) * I with the shrinkage a chosen by their formula.
    Also the ``knn`` bank (the L2-normalised features [N, D]) and, given the classifier
    ``head`` (W [K, D], b [K]) and the training ``logits`` [N, K], the ``vim`` origin [D],
    residual basis [D, D - D // 2] and alpha. Above ``MAX_DENSE_DIM`` only the means and the
    prototypes are fitted (a 32,768-d ViM eigendecomposition needs tens of GB).
    """
    from sklearn.covariance import ledoit_wolf   # imported here: only fitting needs it
    features, labels = np.asarray(features, np.float64), np.asarray(labels, int)
    missing = [k for k in range(class_num) if not np.any(labels == k)]
    if missing:
        raise ValueError(f"open-set fit: classes {missing} have no readable training image")
    means = np.stack([features[labels == k].mean(axis=0) for k in range(class_num)])
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    prototypes = np.stack([unit[labels == k].mean(axis=0) for k in range(class_num)])
    prototypes /= np.maximum(np.linalg.norm(prototypes, axis=1, keepdims=True), 1e-12)
    # float32, as stored: thresholds are calibrated on exactly the values a reloaded file gives
    stats = {"means": means.astype(np.float32), "prototypes": prototypes.astype(np.float32),
             "precision": None, "shrinkage": None, "background_mean": None, "background_precision": None,
             "knn_bank": None, "vim_origin": None, "vim_basis": None, "vim_alpha": None}
    if features.shape[1] > MAX_DENSE_DIM:
        return stats
    stats["knn_bank"] = unit.astype(np.float32)
    if head is not None and logits is not None:
        stats.update(fit_vim(features, np.asarray(logits, np.float64), *head))
    covariance, shrinkage = ledoit_wolf(features - means[labels], assume_centered=True)
    stats["precision"] = np.linalg.pinv(covariance, hermitian=True).astype(np.float32)
    stats["shrinkage"] = float(shrinkage)
    background = features.mean(axis=0)
    covariance, _ = ledoit_wolf(features - background, assume_centered=True)
    stats["background_mean"] = background.astype(np.float32)
    stats["background_precision"] = np.linalg.pinv(covariance, hermitian=True).astype(np.float32)
    return stats


def fit_vim(features: np.ndarray, logits: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> dict:
    """ViM's origin u = -pinv(W) b [D], the basis of the residual space [D, D - D // 2] (eigenvectors
    of the second moment of (f - u) beyond the top D // 2) and alpha (mean max logit / mean residual)."""
    weight, bias = np.asarray(weight, np.float64), np.asarray(bias, np.float64)
    origin = -np.linalg.pinv(weight) @ bias
    centred = features - origin
    _, vectors = np.linalg.eigh(centred.T @ centred / len(centred))      # ascending eigenvalues
    basis = vectors[:, :features.shape[1] - features.shape[1] // 2]      # all but the top D // 2
    residual = np.linalg.norm(centred @ basis, axis=1)
    alpha = float(logits.max(axis=1).mean() / max(residual.mean(), 1e-12))
    return {"vim_origin": origin.astype(np.float32), "vim_basis": basis.astype(np.float32), "vim_alpha": alpha}


def knn_distance(features: np.ndarray, bank: np.ndarray, k: int = KNN_K, chunk: int = 1024) -> np.ndarray:
    """Euclidean distance of each L2-normalised row of ``features`` [n, D] to its k-th nearest row of
    ``bank`` [N, D] (already normalised); [n]. k is capped at N."""
    bank = np.asarray(bank, np.float32)
    k = min(k, len(bank))
    unit = np.asarray(features, np.float32)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    out = np.empty(len(unit))
    for start in range(0, len(unit), chunk):
        similarity = unit[start:start + chunk] @ bank.T                   # [c, N]
        kth = -np.partition(-similarity, k - 1, axis=1)[:, k - 1]         # k-th largest similarity
        out[start:start + chunk] = np.sqrt(np.maximum(2.0 - 2.0 * kth.astype(np.float64), 0.0))
    return out


def vim_score(logits: np.ndarray, features: np.ndarray, origin, basis, alpha: float) -> np.ndarray:
    """alpha * ||(f - u) projected on the residual basis|| - logsumexp(logits); [n]."""
    residual = np.linalg.norm((np.asarray(features, np.float64) - np.asarray(origin, np.float64))
                              @ np.asarray(basis, np.float64), axis=1)
    lse = torch.logsumexp(torch.as_tensor(np.asarray(logits, np.float64)), dim=1).numpy()
    return alpha * residual - lse


def logit_scores(logits: np.ndarray) -> Dict[str, np.ndarray]:
    """``msp`` = 1 - max softmax probability, ``energy`` = -logsumexp(logits); each [n]."""
    logits = torch.as_tensor(np.asarray(logits, np.float64))
    return {"msp": (1.0 - torch.softmax(logits, dim=1).max(dim=1).values).numpy(),
            "energy": (-torch.logsumexp(logits, dim=1)).numpy()}


def feature_scores(features: np.ndarray, stats: dict) -> Dict[str, np.ndarray]:
    """``cosine``, ``knn`` where the bank exists, and ``mahalanobis`` / ``relative_mahalanobis``
    where their precisions exist, of features [n, D]; each [n]."""
    features = np.asarray(features, np.float64)
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    scores = {"cosine": 1.0 - (unit @ np.asarray(stats["prototypes"], np.float64).T).max(axis=1)}
    if stats.get("knn_bank") is not None:
        scores["knn"] = knn_distance(features, stats["knn_bank"])
    if stats.get("precision") is not None:
        precision = np.asarray(stats["precision"], np.float64)           # converted once for K means
        distances = [_squared_mahalanobis(features, mean, precision) for mean in stats["means"]]
        scores["mahalanobis"] = np.min(np.stack(distances, axis=1), axis=1)
        if stats.get("background_precision") is not None:
            scores["relative_mahalanobis"] = scores["mahalanobis"] - _squared_mahalanobis(
                features, stats["background_mean"], stats["background_precision"])
    return scores


def all_scores(logits: np.ndarray, features: np.ndarray, stats: dict) -> Dict[str, np.ndarray]:
    """Every score ``stats`` allows ({name: [n]}): the logit scores, the feature scores and ``vim``."""
    values = {**logit_scores(logits), **feature_scores(features, stats)}
    if stats.get("vim_basis") is not None:
        values["vim"] = vim_score(logits, features, stats["vim_origin"], stats["vim_basis"], stats["vim_alpha"])
    return values


def _squared_mahalanobis(features: np.ndarray, mean, precision) -> np.ndarray:
    """(f - mean)^T precision (f - mean) of every row of ``features`` [n, D], in float64; [n]."""
    centred = features - np.asarray(mean, np.float64)
    return np.einsum("nd,de,ne->n", centred, np.asarray(precision, np.float64), centred)


def calibrate_threshold(values: np.ndarray, keep: float = KEEP_RATE) -> float:
    """The smallest threshold t with at least ``keep`` of ``values`` <= t (the ceil(keep*n)-th smallest)."""
    values = np.sort(np.asarray(values, np.float64))
    if values.size == 0:
        raise ValueError("cannot calibrate a threshold on zero images")
    rank = min(values.size, max(1, math.ceil(keep * values.size - 1e-9)))
    return float(values[rank - 1])


@dataclasses.dataclass
class OpenSetStatistics:
    """What the feature scores need, and the calibrated thresholds.

    means, prototypes: [K, D]; precision: [D, D] or None (no ``mahalanobis``);
    thresholds: score name -> threshold (unknown when score > threshold);
    meta: JSON-able facts (format, model fingerprint, preprocessing, lists, counts);
    background_mean [D], background_precision [D, D]: the class-agnostic Gaussian of
    ``relative_mahalanobis`` (None in files written before it existed);
    knn_bank [N, D]: normalised training features of ``knn``; vim_origin [D], vim_basis
    [D, D - D // 2], vim_alpha: ``vim`` (each None in files written before they existed).
    """
    means: np.ndarray
    prototypes: np.ndarray
    precision: Optional[np.ndarray]
    thresholds: Dict[str, float]
    meta: dict
    background_mean: Optional[np.ndarray] = None
    background_precision: Optional[np.ndarray] = None
    knn_bank: Optional[np.ndarray] = None
    vim_origin: Optional[np.ndarray] = None
    vim_basis: Optional[np.ndarray] = None
    vim_alpha: Optional[float] = None

    ARRAYS = ("precision", "background_mean", "background_precision", "knn_bank", "vim_origin", "vim_basis")

    @property
    def score_names(self) -> list:
        return [name for name in SCORES if name in self.thresholds]

    @property
    def default_score(self) -> str:
        """The first of ``PREFERRED_SCORES`` these statistics hold."""
        return next(name for name in PREFERRED_SCORES + SCORES if name in self.thresholds)

    def require(self, names: Optional[Sequence[str]] = None) -> list:
        """``names`` (default: every available score), checked to be available."""
        names = list(names or self.score_names)
        unknown = [name for name in names if name not in SCORES]
        if unknown:
            raise ValueError(f"unknown open-set scores {unknown}; choose from {list(SCORES)}")
        unavailable = [name for name in names if name not in self.thresholds]
        if unavailable:
            raise ValueError(f"open-set scores {unavailable} are not in these statistics "
                             f"(available: {self.score_names}): a feature dimension above "
                             f"{MAX_DENSE_DIM} has only msp, energy and cosine, and files fitted "
                             f"before relative_mahalanobis existed lack it (refit: {FIT_COMMAND})")
        return names

    def scores(self, logits: np.ndarray, features: np.ndarray,
               names: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
        """Unknown scores (each [n]) of ``names`` (default: every available score)."""
        names = self.require(names)
        arrays = {key: getattr(self, key) for key in ("means", "prototypes", "vim_alpha") + self.ARRAYS}
        values = all_scores(logits, features, arrays)
        return {name: values[name] for name in names}

    def save(self, path: str) -> None:
        """Write the ``.npz`` atomically (plain arrays and a JSON string: no pickle)."""
        names = self.score_names
        arrays = {"means": self.means.astype(np.float32), "prototypes": self.prototypes.astype(np.float32),
                  "score_names": np.array(names), "thresholds": np.array([self.thresholds[n] for n in names]),
                  "meta": np.array(json.dumps(self.meta, sort_keys=True))}
        for key in self.ARRAYS:
            if getattr(self, key) is not None:
                arrays[key] = getattr(self, key).astype(np.float32)
        if self.vim_alpha is not None:
            arrays["vim_alpha"] = np.array(self.vim_alpha, dtype=np.float64)
        with atomic_file(path, "wb") as handle:
            np.savez(handle, **arrays)


def read_statistics(path: str) -> OpenSetStatistics:
    """Read an ``.npz`` written by ``OpenSetStatistics.save`` (``allow_pickle=False``)."""
    try:
        with np.load(path, allow_pickle=False) as blob:
            arrays = {key: blob[key] for key in blob.files}
        meta = json.loads(str(arrays["meta"]))
        names = [str(name) for name in arrays["score_names"]]
        thresholds = dict(zip(names, (float(t) for t in arrays["thresholds"])))
        means, prototypes = arrays["means"], arrays["prototypes"]
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"cannot read open-set statistics {path!r}: {error}") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{path!r} is not a version-{VERSION} {FORMAT} file")
    alpha = float(arrays["vim_alpha"]) if "vim_alpha" in arrays else None
    return OpenSetStatistics(means, prototypes, arrays.get("precision"), thresholds, meta,
                             **{key: arrays.get(key) for key in OpenSetStatistics.ARRAYS if key != "precision"},
                             vim_alpha=alpha)


def _preprocessing(setup: EvalSetup) -> dict:
    return {key: value for key, value in setup.preprocessing().items() if key != "pipeline"}


def load_statistics(setup: EvalSetup, path: Optional[str] = None) -> OpenSetStatistics:
    """The statistics of ``setup``'s weights, checked against them.

    Raises:
        ValueError: no file (naming the command that makes it), a file fitted on another
            weights file (stale: SHA-1 differs), another class count or other preprocessing.
    """
    path = path or statistics_path(setup.model_path)
    refit = FIT_COMMAND.format(model=setup.model_path)
    if not os.path.isfile(path):
        raise ValueError(f"no open-set statistics for {setup.model_path} (expected {path}); "
                         f"make them once with: {refit}")
    stats = read_statistics(path)
    fitted, now = stats.meta.get("model", {}), file_identity(setup.model_path)
    if fitted.get("sha1") != now["sha1"]:
        raise ValueError(f"open-set statistics {path} are stale: fitted on weights with SHA-1 "
                         f"{fitted.get('sha1')}, but {setup.model_path} has SHA-1 {now['sha1']}; "
                         f"refit them with: {refit}")
    if stats.means.shape[0] != setup.class_num:
        raise ValueError(f"open-set statistics {path} have {stats.means.shape[0]} classes, the model "
                         f"{setup.class_num}; refit them with: {refit}")
    if stats.meta.get("preprocessing") != _preprocessing(setup):
        raise ValueError(f"open-set statistics {path} were fitted with preprocessing "
                         f"{stats.meta.get('preprocessing')}, this evaluation uses {_preprocessing(setup)}; "
                         f"evaluate with the same settings or refit them with: {refit}")
    return stats


def fit_open_set(setup: EvalSetup, train_items: Sequence, val_items: Sequence, lists: dict,
                 max_images: int = MAX_FIT_IMAGES, progress: bool = True) -> OpenSetStatistics:
    """Fit the statistics on ``train_items`` and the thresholds on ``val_items`` ([(path, label)]).

    ``lists`` names the two lists in the metadata ({"train": path, "val": path}).
    """
    chosen = [train_items[i] for i in seeded_subset(train_items, setup.config.seed, total=max_images)]
    train = run_items(setup, chosen, "open-set fit (train)", progress=progress, features=True)
    stats = fit_feature_statistics(train["features"], train["labels"], setup.class_num,
                                   head=linear_head(setup.model), logits=train["logits"])
    val = run_items(setup, val_items, "open-set fit (val)", progress=progress, features=True)
    if val["labels"].size == 0:
        raise ValueError(f"open-set fit: no readable validation image in {lists.get('val')}")
    values = all_scores(val["logits"], val["features"], stats)
    thresholds = {name: calibrate_threshold(values[name]) for name in SCORES if name in values}
    meta = {"format": FORMAT, "version": VERSION, "keep_rate": KEEP_RATE,
            "model": {**file_identity(setup.model_path), "path": os.path.abspath(setup.model_path)},
            "method": getattr(setup.model, "info", {}).get("method", "dnadet"),
            "class_names": list(setup.class_names), "feature_dim": int(stats["means"].shape[1]),
            "preprocessing": _preprocessing(setup), "shrinkage": stats["shrinkage"],
            "train_list": lists.get("train"), "val_list": lists.get("val"),
            "n_train": int(train["labels"].size), "n_val": int(val["labels"].size),
            "n_skipped": {"train": len(train["skipped"]), "val": len(val["skipped"])},
            "val_kept": {name: float(np.mean(values[name] <= t)) for name, t in thresholds.items()}}
    return OpenSetStatistics(stats["means"], stats["prototypes"], stats["precision"], thresholds, meta,
                             **{key: stats[key] for key in OpenSetStatistics.ARRAYS if key != "precision"},
                             vim_alpha=stats["vim_alpha"])


def fit_and_save(setup: EvalSetup, train_list: str, val_list: str, max_images: int = MAX_FIT_IMAGES,
                 progress: bool = True) -> str:
    """Read both lists, ``fit_open_set``, write ``model.openset.npz`` beside the weights; returns its path."""
    train_items = read_annotations(train_list, class_num=setup.class_num)
    val_items = read_annotations(val_list, class_num=setup.class_num)
    stats = fit_open_set(setup, train_items, val_items, {"train": train_list, "val": val_list},
                         max_images, progress)
    path = statistics_path(setup.model_path)
    stats.save(path)
    return path


def describe_fit(stats: OpenSetStatistics, path: str) -> list:
    """The lines a fit prints: images used, feature size, shrinkage, each threshold, the file."""
    meta = stats.meta
    shrinkage = meta["shrinkage"] if meta["shrinkage"] is None else round(meta["shrinkage"], 4)
    lines = [f"fitted on {meta['n_train']} training images ({meta['feature_dim']}-d pooled features, "
             f"shrinkage {shrinkage}), thresholds on {meta['n_val']} validation images:"]
    lines += [f"  {name:12s} unknown if score > {threshold:.6g} (keeps {100 * meta['val_kept'][name]:.1f}% of val)"
              for name, threshold in stats.thresholds.items()]
    return lines + [f"wrote {path}"]
