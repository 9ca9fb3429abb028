"""Prediction for arbitrary image files: "which architecture made this image?".

Inputs are files and folders (searched recursively for ``data.image_io.IMAGE_EXTENSIONS``).
Images stream through the evaluation preprocessing and model in chunks, so a large
folder never sits in memory; each image gives one record:
``{"path", "pred", "prob", "low_confidence", "unknown_score", "unknown", "top": [{"class", "prob"}],
"probs": {name: p}, "error", "note"}`` where ``error`` is None, or the reason the file could not be
read (then the other fields are None), and ``note`` is '' or says why the preprocessing shows
the model this image unlike its training images (``data.preprocess.scale_note``). ``pred`` is always the top known class; with open-set
statistics (``analysis.open_set``), ``unknown`` says whether ``unknown_score`` exceeds the
calibrated threshold, i.e. whether the answer is "unknown architecture" (top guess ``pred``);
without them both are None.
"""
import csv
import itertools
import os
from typing import IO, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from data.image_io import IMAGE_EXTENSIONS
from data.preprocess import scale_note
from analysis import open_set
from engine.inference import EvalSetup, run_items, unreadable_reason


def resolve_open_set(setup: EvalSetup, mode: str,
                     score: str) -> Tuple[Optional[open_set.OpenSetStatistics], str, str]:
    """(statistics or None, the score used, note for stderr) for ``--open_set auto|on|off`` and
    ``--open_set_score`` (``auto``: the statistics' ``default_score``).

    auto without ``MODEL.openset.npz`` answers closed-set (with a note naming the command
    that makes the file); on without it, and a stale file in any mode, are errors.
    """
    if mode not in open_set.MODES:
        raise ValueError(f"--open_set must be one of {open_set.MODES}, got {mode!r}")
    path = open_set.statistics_path(setup.model_path)
    if mode == "off":
        return None, score, ""
    if mode == "auto" and not os.path.isfile(path):
        return None, score, (f"no open-set statistics ({path}): closed-set answers only; make them with: "
                             f"{open_set.FIT_COMMAND.format(model=setup.model_path)}")
    stats = open_set.load_statistics(setup, path)
    score = stats.default_score if score == "auto" else score
    stats.require([score])
    return stats, score, (f"open set: 'unknown architecture' when {score} > {stats.thresholds[score]:.6g} "
                   f"(keeps {100 * open_set.KEEP_RATE:.0f}% of known validation images; {path})")


def iter_image_paths(inputs: Sequence[str]) -> Iterator[str]:
    """Files as given (whatever their extension); folders walked in sorted order for image files.

    A path that does not exist is yielded too: it is reported like an unreadable file.
    """
    for entry in inputs:
        if not os.path.isdir(entry):
            yield entry
            continue
        for root, dirs, files in os.walk(entry):
            dirs.sort()
            for name in sorted(files):
                if name.lower().endswith(IMAGE_EXTENSIONS):
                    yield os.path.join(root, name)


def _chunks(iterable: Iterable, size: int) -> Iterator[list]:
    iterator = iter(iterable)
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk:
            return
        yield chunk


def make_record(path: str, probs: np.ndarray, class_names: Sequence[str], top_k: int,
                threshold: float, unknown_score: Optional[float] = None,
                unknown_threshold: Optional[float] = None) -> dict:
    """One prediction from softmax probabilities [K] (and an unknown score with its threshold)."""
    order = np.argsort(-probs, kind="stable")[:max(1, top_k)]
    best = int(order[0])
    unknown = None if unknown_score is None else bool(unknown_score > unknown_threshold)
    return {"path": path, "pred": class_names[best], "prob": float(probs[best]),
            "low_confidence": bool(probs[best] < threshold),
            "unknown_score": None if unknown_score is None else float(unknown_score), "unknown": unknown,
            "top": [{"class": class_names[k], "prob": float(probs[k])} for k in order],
            "probs": {name: float(p) for name, p in zip(class_names, probs)}, "error": None}


def failed_record(path: str, reason: str) -> dict:
    return {"path": path, "pred": None, "prob": None, "low_confidence": None, "unknown_score": None,
            "unknown": None, "top": [], "probs": None, "error": reason, "note": ""}


def predict_paths(setup: EvalSetup, paths: Iterable[str], batch_size: int = 32, top_k: int = 3,
                  threshold: float = 0.5, chunk_batches: int = 8,
                  stats: Optional[open_set.OpenSetStatistics] = None, score: str = "") -> Iterator[dict]:
    """Yield one record per path, in input order, ``batch_size * chunk_batches`` images at a time.

    With ``stats`` every record carries the unknown ``score`` and whether it crosses the
    calibrated threshold.
    """
    if batch_size < 1 or top_k < 1:
        raise ValueError(f"--batch_size and --top_k must be >= 1, got {batch_size} and {top_k}")
    cut = stats.thresholds[score] if stats is not None else None
    for chunk in _chunks(paths, batch_size * chunk_batches):
        items = [(path, -1) for path in chunk]
        outputs = run_items(setup, items, desc="predict", batch_size=batch_size, features=stats is not None)
        if stats is None:
            values = [None] * len(outputs["indices"])
        else:
            values = (stats.scores(outputs["logits"], outputs["features"], [score])[score]
                      if outputs["indices"].size else [])
        found = {int(i): (p, v) for i, p, v in zip(outputs["indices"], outputs["probs"], values)}
        for index, path in enumerate(chunk):
            if index in found:
                probs, value = found[index]
                record = make_record(path, probs, setup.class_names, top_k, threshold, value, cut)
                record["note"] = _scale_note(path, setup.config)
                yield record
            else:
                yield failed_record(path, unreadable_reason(path))


def _scale_note(path: str, config) -> str:
    """``scale_note`` of the image's header size (the image was just decoded, so it opens)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception:  # noqa: BLE001 - gone or changed since it was decoded: no note
        return ""
    return scale_note(width, height, config.crop_size, config.resize_size)


def format_record(record: dict) -> str:
    """``path: progan 93.1% | dcgan 4.2% | real 1.9%`` (+ ``  [low confidence]``), or
    ``path: unknown architecture (top guess: progan, p=0.93)`` when the unknown score crosses
    its threshold."""
    note = f"  [note: {record['note']}]" if record.get("note") else ""
    if record["unknown"]:
        return (f"{record['path']}: unknown architecture (top guess: {record['pred']}, "
                f"p={record['prob']:.2f}){note}")
    ranked = " | ".join(f"{entry['class']} {100 * entry['prob']:.1f}%" for entry in record["top"])
    flag = "  [low confidence]" if record["low_confidence"] else ""
    return f"{record['path']}: {ranked}{flag}{note}"


class CsvSink:
    """Streams records to CSV: path,pred,prob,low_confidence,unknown_score,unknown,top1,prob1,...,error,note."""

    def __init__(self, handle: IO, top_k: int):
        self.writer = csv.writer(handle, lineterminator="\n")
        self.top_k = top_k
        tops: List[str] = []
        for k in range(1, top_k + 1):
            tops += [f"top{k}", f"prob{k}"]
        self.writer.writerow(["path", "pred", "prob", "low_confidence", "unknown_score", "unknown"] +
                             tops + ["error", "note"])

    def write(self, record: dict) -> None:
        tops: list = []
        for entry in record["top"][:self.top_k]:
            tops += [entry["class"], f"{entry['prob']:.6f}"]
        tops += [""] * (2 * self.top_k - len(tops))
        prob = "" if record["prob"] is None else f"{record['prob']:.6f}"
        flag = "" if record["low_confidence"] is None else int(record["low_confidence"])
        value = "" if record["unknown_score"] is None else f"{record['unknown_score']:.6g}"
        unknown = "" if record["unknown"] is None else int(record["unknown"])
        self.writer.writerow([record["path"], record["pred"] or "", prob, flag, value, unknown] + tops +
                             [record["error"] or "", record.get("note", "")])
