"""Prediction for arbitrary image files: "which architecture made this image?".

Inputs are files and folders (searched recursively for ``data.image_io.IMAGE_EXTENSIONS``).
Images stream through the evaluation preprocessing and model in chunks, so a large
folder never sits in memory; each image gives one record:
``{"path", "pred", "prob", "low_confidence", "top": [{"class", "prob"}], "probs": {name: p},
"error"}`` where ``error`` is None, or the reason the file could not be read (then
the other fields are None).
"""
import csv
import itertools
import os
from typing import IO, Iterable, Iterator, List, Sequence

import numpy as np

from data.image_io import IMAGE_EXTENSIONS
from engine.inference import EvalSetup, run_items, unreadable_reason


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
                threshold: float) -> dict:
    """One prediction from softmax probabilities [K]."""
    order = np.argsort(-probs, kind="stable")[:max(1, top_k)]
    best = int(order[0])
    return {"path": path, "pred": class_names[best], "prob": float(probs[best]),
            "low_confidence": bool(probs[best] < threshold),
            "top": [{"class": class_names[k], "prob": float(probs[k])} for k in order],
            "probs": {name: float(p) for name, p in zip(class_names, probs)}, "error": None}


def failed_record(path: str, reason: str) -> dict:
    return {"path": path, "pred": None, "prob": None, "low_confidence": None, "top": [],
            "probs": None, "error": reason}


def predict_paths(setup: EvalSetup, paths: Iterable[str], batch_size: int = 32, top_k: int = 3,
                  threshold: float = 0.5, chunk_batches: int = 8) -> Iterator[dict]:
    """Yield one record per path, in input order, ``batch_size * chunk_batches`` images at a time."""
    if batch_size < 1 or top_k < 1:
        raise ValueError(f"--batch_size and --top_k must be >= 1, got {batch_size} and {top_k}")
    for chunk in _chunks(paths, batch_size * chunk_batches):
        outputs = run_items(setup, [(path, -1) for path in chunk], desc="predict",
                            batch_size=batch_size)
        probs = {int(i): p for i, p in zip(outputs["indices"], outputs["probs"])}
        for index, path in enumerate(chunk):
            if index in probs:
                yield make_record(path, probs[index], setup.class_names, top_k, threshold)
            else:
                yield failed_record(path, unreadable_reason(path))


def format_record(record: dict) -> str:
    """``path: progan 93.1% | dcgan 4.2% | real 1.9%`` (+ ``  [low confidence]``)."""
    ranked = " | ".join(f"{entry['class']} {100 * entry['prob']:.1f}%" for entry in record["top"])
    flag = "  [low confidence]" if record["low_confidence"] else ""
    return f"{record['path']}: {ranked}{flag}"


class CsvSink:
    """Streams records to CSV: path,pred,prob,low_confidence,top1,prob1,...,error."""

    def __init__(self, handle: IO, top_k: int):
        self.writer = csv.writer(handle, lineterminator="\n")
        self.top_k = top_k
        tops: List[str] = []
        for k in range(1, top_k + 1):
            tops += [f"top{k}", f"prob{k}"]
        self.writer.writerow(["path", "pred", "prob", "low_confidence"] + tops + ["error"])

    def write(self, record: dict) -> None:
        tops: list = []
        for entry in record["top"][:self.top_k]:
            tops += [entry["class"], f"{entry['prob']:.6f}"]
        tops += [""] * (2 * self.top_k - len(tops))
        prob = "" if record["prob"] is None else f"{record['prob']:.6f}"
        flag = "" if record["low_confidence"] is None else int(record["low_confidence"])
        self.writer.writerow([record["path"], record["pred"] or "", prob, flag] + tops +
                             [record["error"] or ""])
