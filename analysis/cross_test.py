"""Cross tests (SPEC section 8): every model on every test list, prediction files, one record each.

For a list ``X.txt`` the predictions go to ``X/pred/`` (``X/pred/<method>/`` when several
methods are compared):
- ``result.txt``: ``path<TAB>predicted label`` for every readable image (released format);
- ``scores.csv``: ``path,label,pred,prob_0,...,prob_{K-1}`` (softmax probabilities);
- ``skipped.txt``: ``path<TAB>reason`` for unreadable images (only when there are any);
- ``open_set.csv``: ``path,label,pred,<score>...``, the unknown scores (``analysis.open_set``),
  when the run scores the open set;
- ``meta.json``: which weights, preprocessing, list contents and open-set statistics made them,
  so ``reuse`` never reads another model's predictions or stale labels.

A list whose labels are all -1 is an open-set list (images of architectures the model never
saw): it is scored against the closed list of the same call by ``analysis.open_set_report``.
"""
import csv
import hashlib
import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from data.atomic import atomic_file
from data.content_hash import file_identity, recorded_fingerprint
from analysis.open_set_report import OpenSetPlan, add_open_set_metrics, make_plan
from data.annotations import UNKNOWN_LABEL, read_annotations
from engine.inference import (EvalSetup, run_items, score,
                              unreadable_reason)

ROW_NAMES = (("_unseen_arch", "unseen-arch"), ("_cross_seed", "cross-seed"), ("_cross_loss", "cross-loss"),
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


def read_test_list(path: str, class_num: Optional[int] = None):
    """(items, is_open): a list of known labels 0..K-1, or an open-set list (every label -1)."""
    items = read_annotations(path, class_num=class_num, allow_unknown=True)
    unknown = sum(label == UNKNOWN_LABEL for _, label in items)
    if 0 < unknown < len(items):
        raise ValueError(f"{path} mixes label -1 (unknown architecture, {unknown} images) with known "
                         f"labels ({len(items) - unknown} images); put the unseen architectures in a "
                         f"list of their own")
    return items, unknown == len(items)


def pred_dir(list_path: str, method: str = "") -> str:
    """``X/pred`` (or ``X/pred/<method>``) next to the list ``X.txt``."""
    base = os.path.join(os.path.splitext(list_path)[0], "pred")
    return os.path.join(base, method) if method else base


def _meta(setup: EvalSetup, items: Sequence, plan: Optional[OpenSetPlan] = None) -> dict:
    """What the prediction files depend on: weights, preprocessing, the list's contents
    (every path and label) and the open-set statistics, so ``reuse`` never scores a list
    that changed since."""
    listing = "".join(f"{path}\t{label}\n" for path, label in items).encode("utf-8")
    return {"model": file_identity(setup.model_path), **setup.preprocessing(),
            "class_num": setup.class_num, "n_items": len(items),
            "list_sha1": hashlib.sha1(listing).hexdigest(), "precision": str(setup.amp or "fp32"),
            "open_set": plan.signature() if plan else None}


def _write_text(path: str, lines: Sequence[str]) -> None:
    with atomic_file(path, newline="\n") as handle:
        handle.writelines(lines)


def write_pred_files(folder: str, items: Sequence, outputs: dict, skipped: Sequence,
                     class_num: int, meta: dict) -> None:
    """Write result.txt, scores.csv, skipped.txt (if any) and meta.json atomically."""
    os.makedirs(folder, exist_ok=True)
    paths = [items[i][0] for i in outputs["indices"]]
    _write_text(os.path.join(folder, "result.txt"),
                [f"{path}\t{int(pred)}\n" for path, pred in zip(paths, outputs["preds"])])
    with atomic_file(os.path.join(folder, "scores.csv"), newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "label", "pred"] + [f"prob_{k}" for k in range(class_num)])
        for path, label, pred, probs in zip(paths, outputs["labels"], outputs["preds"], outputs["probs"]):
            writer.writerow([path, int(label), int(pred)] + [f"{p:.6f}" for p in probs])
    _write_unknown_scores(os.path.join(folder, "open_set.csv"), paths, outputs)
    skipped_file = os.path.join(folder, "skipped.txt")
    if skipped:
        _write_text(skipped_file, [f"{path}\t{reason}\n" for path, reason in skipped])
    elif os.path.exists(skipped_file):
        os.remove(skipped_file)
    _write_text(os.path.join(folder, "meta.json"), [json.dumps(meta, indent=2) + "\n"])


def _write_unknown_scores(path: str, paths: Sequence[str], outputs: dict) -> None:
    """``open_set.csv`` (path,label,pred,<score>...) when there are unknown scores, else removed."""
    if "unknown" not in outputs:
        if os.path.exists(path):
            os.remove(path)
        return
    names = list(outputs["unknown"])
    with atomic_file(path, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "label", "pred"] + names)
        for i, image in enumerate(paths):
            writer.writerow([image, int(outputs["labels"][i]), int(outputs["preds"][i])] +
                            [f"{outputs['unknown'][name][i]:.9g}" for name in names])


def _read_unknown_scores(folder: str, names: Sequence[str], n_rows: int) -> dict:
    with open(os.path.join(folder, "open_set.csv"), encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    if rows[0][3:] != list(names) or len(rows) - 1 != n_rows:
        raise ValueError("open_set.csv does not match")
    return {name: np.array([float(row[3 + k]) for row in rows[1:]]) for k, name in enumerate(names)}


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
    if meta["open_set"]:
        try:
            outputs["unknown"] = _read_unknown_scores(folder, meta["open_set"]["scores"], len(rows))
        except (OSError, ValueError, IndexError):
            return None
    return outputs, skipped


def _predict(setup: EvalSetup, items: Sequence, desc: str, plan: Optional[OpenSetPlan]) -> dict:
    """``run_items``' arrays, plus ``unknown`` ({score: [n]}) when ``plan`` scores the open set."""
    outputs = run_items(setup, items, desc, features=plan is not None)
    if plan is not None:
        outputs["unknown"] = (plan.scores(outputs) if outputs["labels"].size else
                              {name: np.zeros(0) for name in plan.names})
        del outputs["features"]
    return outputs


def open_list_metrics(outputs: dict, class_num: int) -> dict:
    """An open-set list has no correct class: counts of the known class each image was called."""
    preds = outputs["preds"]
    return {"acc": None, "f1": None, "recall": None, "per_class_recall": [None] * class_num,
            "confusion": None, "n_images": int(preds.size), "n_skipped": len(outputs["skipped"]),
            "pred_counts": np.bincount(preds, minlength=class_num).tolist()}


def evaluate_list(setup: EvalSetup, list_path: str, method: str = "", reuse: bool = False,
                  desc: Optional[str] = None, plan: Optional[OpenSetPlan] = None) -> dict:
    """Evaluate one list (or reuse its prediction files); returns the record of one table cell.

    Record: test, list, method, open_list, metrics of ``engine.inference.score`` (or
    ``open_list_metrics``), skipped [(path, reason)], pred_dir, whether the predictions were
    reused and, with a ``plan``, ``_outputs`` for ``add_open_set_metrics``.
    """
    items, is_open = read_test_list(list_path, setup.class_num)
    if is_open and plan is None:
        raise ValueError(f"{list_path} is an open-set list (labels -1) but open-set scoring is off")
    folder = pred_dir(list_path, method)
    meta = _meta(setup, items, plan)
    stored = read_pred_files(folder, items, meta) if reuse else None
    if stored is not None:
        outputs, skipped = stored
    else:
        outputs = _predict(setup, items, desc or row_name(list_path), plan)
        skipped = [(items[i][0], unreadable_reason(items[i][0])) for i in outputs["skipped"]]
        write_pred_files(folder, items, outputs, skipped, setup.class_num, meta)
    metrics = open_list_metrics(outputs, setup.class_num) if is_open else score(outputs, setup.class_num)
    record = {"test": row_name(list_path), "list": list_path, "method": method, "open_list": is_open,
              **metrics, "skipped": [list(s) for s in skipped], "pred_dir": folder,
              "reused": stored is not None}
    if plan is not None:
        record["_outputs"] = {key: outputs[key] for key in ("labels", "preds", "unknown")}
    return record


def _zoo_fingerprint(list_path: str):
    """The fingerprint recorded in the manifest.json of the zoo the list's first image is from, or None."""
    with open(list_path, encoding="utf-8") as handle:
        first = handle.readline().split("\t")[0].strip()
    return recorded_fingerprint(first) if first else None


def run_cross_test(setups: Dict[str, EvalSetup], list_paths: Sequence[str], reuse: bool = False,
                   open_set_mode: str = "auto", scores: Optional[Sequence[str]] = None) -> List[dict]:
    """Every method on every list, in list order then method order.

    ``setups`` maps a method name to its model ("" for a single unnamed model, whose
    predictions go straight to ``X/pred``). Returns one record per (list, method); with
    open-set scoring (``analysis.open_set_report.make_plan`` of ``open_set_mode`` and
    ``scores``) each record has ``open_set``: {score: metrics}.

    Raises:
        ValueError: an open-set list without the closed list (``*_test.txt``) in the call,
            or open-set statistics that are missing (for feature scores) or stale.
    """
    names = row_names(list_paths)
    open_lists = [path for path in list_paths if read_test_list(path)[1]]
    if open_lists and "closed" not in names:
        raise ValueError(f"open-set list(s) {open_lists} need the closed test list (*_test.txt) "
                         f"in the same call: its known images are the other side of AUROC, FPR95 "
                         f"and OSCR")
    plans = {method: make_plan(setup, open_set_mode, scores, needed=bool(open_lists))
             for method, setup in setups.items()}
    records = []
    for list_path, name in zip(list_paths, names):
        for method, setup in setups.items():
            desc = f"{name} [{method}]" if method else name
            record = evaluate_list(setup, list_path, method, reuse, desc=desc, plan=plans[method])
            record["test"] = name
            record["zoo_fingerprint"] = _zoo_fingerprint(list_path)
            records.append(record)
    add_open_set_metrics(records, plans)
    return records
