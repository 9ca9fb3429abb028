"""Cross tests (SPEC section 8): every model on every test list, prediction files, one record each.

For a list ``X.txt`` the predictions go to ``X/pred/`` (``X/pred/<method>/`` when several
methods are compared):
- ``result.txt``: ``path<TAB>predicted label`` for every readable image (released format);
- ``scores.csv``: ``path,label,pred,prob_0,...,prob_{K-1}`` (softmax probabilities);
- ``skipped.txt``: ``path<TAB>reason`` for unreadable images (only when there are any);
- ``meta.json``: which weights, preprocessing and list contents made them, so ``reuse`` never
  reads another model's predictions or stale labels.
"""
import csv
import hashlib
import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from data.annotations import read_annotations
from engine.inference import (EvalSetup, empty_outputs, model_signature, run_items, score,
                              unreadable_reason)

ROW_NAMES = (("_cross_seed", "cross-seed"), ("_cross_loss", "cross-loss"),
             ("_cross_finetune", "cross-finetune"), ("_cross_dataset", "cross-dataset"),
             ("_test", "closed"))


def row_name(list_path: str) -> str:
    """Row name from the file name: ``*_test.txt`` -> closed, ``*_cross_seed.txt`` -> cross-seed, ..."""
    stem = os.path.splitext(os.path.basename(list_path))[0]
    for suffix, name in ROW_NAMES:
        if stem.endswith(suffix):
            return name
    return stem


def row_names(list_paths: Sequence[str]) -> List[str]:
    """``row_name`` of each list; names that collide fall back to the file stems."""
    names = [row_name(path) for path in list_paths]
    stems = [os.path.splitext(os.path.basename(path))[0] for path in list_paths]
    names = [stem if names.count(name) > 1 else name for name, stem in zip(names, stems)]
    if len(set(names)) < len(names):
        raise ValueError(f"test lists must have distinct file names, got {list(list_paths)}")
    return names


def pred_dir(list_path: str, method: str = "") -> str:
    """``X/pred`` (or ``X/pred/<method>``) next to the list ``X.txt``."""
    base = os.path.join(os.path.splitext(list_path)[0], "pred")
    return os.path.join(base, method) if method else base


def _meta(setup: EvalSetup, items: Sequence) -> dict:
    """What the prediction files depend on: weights, preprocessing and the list's contents
    (every path and label), so ``reuse`` never scores a list that changed since."""
    listing = "".join(f"{path}\t{label}\n" for path, label in items).encode("utf-8")
    return {**model_signature(setup.model_path), **setup.preprocessing(),
            "class_num": setup.class_num, "n_items": len(items),
            "list_sha1": hashlib.sha1(listing).hexdigest()}


def _write_text(path: str, lines: Sequence[str]) -> None:
    with open(path + ".tmp", "w", encoding="utf-8", newline="\n") as handle:
        handle.writelines(lines)
    os.replace(path + ".tmp", path)


def write_pred_files(folder: str, items: Sequence, outputs: dict, skipped: Sequence,
                     class_num: int, meta: dict) -> None:
    """Write result.txt, scores.csv, skipped.txt (if any) and meta.json atomically."""
    os.makedirs(folder, exist_ok=True)
    paths = [items[i][0] for i in outputs["indices"]]
    _write_text(os.path.join(folder, "result.txt"),
                [f"{path}\t{int(pred)}\n" for path, pred in zip(paths, outputs["preds"])])
    tmp = os.path.join(folder, "scores.csv.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "label", "pred"] + [f"prob_{k}" for k in range(class_num)])
        for path, label, pred, probs in zip(paths, outputs["labels"], outputs["preds"], outputs["probs"]):
            writer.writerow([path, int(label), int(pred)] + [f"{p:.6f}" for p in probs])
    os.replace(tmp, os.path.join(folder, "scores.csv"))
    skipped_file = os.path.join(folder, "skipped.txt")
    if skipped:
        _write_text(skipped_file, [f"{path}\t{reason}\n" for path, reason in skipped])
    elif os.path.exists(skipped_file):
        os.remove(skipped_file)
    _write_text(os.path.join(folder, "meta.json"), [json.dumps(meta, indent=2) + "\n"])


def read_pred_files(folder: str, items: Sequence, meta: dict):
    """Outputs and skipped list from an earlier run, or None if absent or made otherwise."""
    try:
        with open(os.path.join(folder, "meta.json"), encoding="utf-8") as handle:
            if json.load(handle) != meta:
                return None
        with open(os.path.join(folder, "scores.csv"), encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))[1:]
        skipped = []
        if os.path.exists(os.path.join(folder, "skipped.txt")):
            with open(os.path.join(folder, "skipped.txt"), encoding="utf-8") as handle:
                skipped = [tuple(line.rstrip("\n").split("\t", 1)) for line in handle if line.strip()]
    except (OSError, ValueError):
        return None
    index = {path: i for i, (path, _) in enumerate(items)}
    if len(rows) + len(skipped) != len(items) or any(row[0] not in index for row in rows):
        return None
    outputs = {"labels": np.array([int(row[1]) for row in rows], dtype=int),
               "preds": np.array([int(row[2]) for row in rows], dtype=int),
               "probs": np.array([[float(p) for p in row[3:]] for row in rows]).reshape(len(rows), -1),
               "indices": np.array([index[row[0]] for row in rows], dtype=int),
               "skipped": [index[path] for path, _ in skipped if path in index]}
    return outputs, skipped


def evaluate_list(setup: EvalSetup, list_path: str, method: str = "", reuse: bool = False,
                  desc: Optional[str] = None) -> dict:
    """Evaluate one list (or reuse its prediction files); returns the record of one table cell.

    Record: test, list, method, metrics of ``engine.inference.score``, skipped
    [(path, reason)], pred_dir and whether the predictions were reused.
    """
    items = read_annotations(list_path, class_num=setup.class_num)
    folder = pred_dir(list_path, method)
    meta = _meta(setup, items)
    stored = read_pred_files(folder, items, meta) if reuse else None
    if stored is not None:
        outputs, skipped = stored
    else:
        outputs = run_items(setup, items, desc or row_name(list_path))
        if outputs["labels"].size == 0:
            outputs = {**empty_outputs(), "skipped": outputs["skipped"]}
        skipped = [(items[i][0], unreadable_reason(items[i][0])) for i in outputs["skipped"]]
        write_pred_files(folder, items, outputs, skipped, setup.class_num, meta)
    return {"test": row_name(list_path), "list": list_path, "method": method,
            **score(outputs, setup.class_num), "skipped": [list(s) for s in skipped],
            "pred_dir": folder, "reused": stored is not None}


def run_cross_test(setups: Dict[str, EvalSetup], list_paths: Sequence[str],
                   reuse: bool = False) -> List[dict]:
    """Every method on every list, in list order then method order.

    ``setups`` maps a method name to its model ("" for a single unnamed model, whose
    predictions go straight to ``X/pred``). Returns one record per (list, method).
    """
    names = row_names(list_paths)
    records = []
    for list_path, name in zip(list_paths, names):
        for method, setup in setups.items():
            desc = f"{name} [{method}]" if method else name
            record = evaluate_list(setup, list_path, method, reuse, desc=desc)
            record["test"] = name
            records.append(record)
    return records
