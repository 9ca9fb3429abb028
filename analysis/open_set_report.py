"""Open-set rows of the cross tests: which scores, AUROC, FPR at 95 % TPR, OSCR, rejection shares.

Scores are those of ``analysis.open_set`` (higher = more unknown). Known images (labels
0..K-1) are the negatives, the images of an open-set list (every label -1: architectures
the model never saw) the positives, and the known side of every open-set comparison is the
closed test list (``*_test.txt``) of the same call.
- AUROC: probability that a random unknown image scores above a random known one (ties 1/2).
- FPR95: share of unknown images *kept* (score <= t) at the threshold t that keeps 95 % of
  the known closed-test images (TPR = known kept = 95 %, the convention of Hendrycks &
  Gimpel and ODIN); lower is better.
- OSCR (Dhamija et al., NeurIPS 2018; Chen et al., ECCV 2020): area under CCR(t) against
  FPR(t) over every threshold t, where CCR(t) = share of the known images that are both
  kept and correctly classified and FPR(t) = share of the unknown images kept; from (0, 0)
  to (1, closed-set accuracy), trapezoids. It is at most the closed accuracy, and equals
  AUROC when every known image is classified correctly.
- flagged unknown: share with score > the calibrated threshold (``model.openset.npz``, fitted
  to keep 95 % of the known validation images); on known lists these are wrong rejections.
- acc kept / CCR: accuracy over the kept known images / share of known images kept and correct.
"""
import dataclasses
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from analysis.open_set import (FIT_COMMAND, LOGIT_SCORES, KEEP_RATE, MODES, OpenSetStatistics,
                             calibrate_threshold, load_statistics, logit_scores,
                             statistics_path)
from data.content_hash import file_identity
from engine.inference import EvalSetup



@dataclasses.dataclass
class OpenSetPlan:
    """Which unknown scores one model reports and with what (statistics None: logit scores only)."""
    names: List[str]
    stats: Optional[OpenSetStatistics]
    stats_sha1: Optional[str] = None

    def scores(self, outputs: dict) -> Dict[str, np.ndarray]:
        """Each score [n] of ``outputs`` (``engine.inference.run_items``' logits and features)."""
        if self.stats is not None:
            return self.stats.scores(outputs["logits"], outputs["features"], self.names)
        values = logit_scores(outputs["logits"])
        return {name: values[name] for name in self.names}

    def threshold(self, name: str) -> Optional[float]:
        return None if self.stats is None else self.stats.thresholds.get(name)

    def signature(self) -> dict:
        return {"scores": self.names, "statistics_sha1": self.stats_sha1}


def make_plan(setup: EvalSetup, mode: str = "auto", names: Optional[Sequence[str]] = None,
              needed: bool = False) -> Optional[OpenSetPlan]:
    """The open-set plan of one model, or None for a closed-set run.

    ``mode`` auto: open set when the statistics file exists or ``needed`` (an open-set list
    is in the call); on: always; off: never (an error when ``needed``). Without a
    statistics file it is an error naming the command that makes the file, unless ``names``
    asks only for ``msp``/``energy`` (scored from the logits, but with no calibrated
    threshold, so no "flagged" share).
    A stale or mismatching file is always an error (``analysis.open_set.load_statistics``).
    """
    if mode not in MODES:
        raise ValueError(f"--open_set must be one of {MODES}, got {mode!r}")
    path = statistics_path(setup.model_path)
    if mode == "off":
        if needed:
            raise ValueError("an open-set list (labels -1) needs open-set scores; drop --open_set off")
        return None
    if os.path.isfile(path):
        stats = load_statistics(setup, path)
        return OpenSetPlan(stats.require(names), stats, file_identity(path)["sha1"])
    if mode == "auto" and not needed:
        return None
    if not names or not set(names) <= set(LOGIT_SCORES):
        raise ValueError(f"no open-set statistics for {setup.model_path} (expected {path}); make them "
                         f"once with: {FIT_COMMAND.format(model=setup.model_path)} (or pass "
                         f"--open_set_scores msp energy: they need no statistics, but have no "
                         f"calibrated threshold)")
    return OpenSetPlan(list(names), None)


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """P(unknown score > known score) + 0.5 P(equal): the ROC area with unknown as positive."""
    from sklearn.metrics import roc_auc_score
    labels = np.r_[np.zeros(len(known)), np.ones(len(unknown))]
    return float(roc_auc_score(labels, np.r_[known, unknown]))


def fpr_at_tpr(known: np.ndarray, unknown: np.ndarray, tpr: float = KEEP_RATE) -> float:
    """Share of unknown images kept at the threshold keeping ``tpr`` of the known images."""
    return float(np.mean(np.asarray(unknown) <= calibrate_threshold(known, tpr)))


def oscr(known: np.ndarray, known_correct: np.ndarray, unknown: np.ndarray) -> float:
    """Area under CCR against FPR over all thresholds (module docstring), in [0, accuracy]."""
    known, unknown = np.asarray(known, float), np.asarray(unknown, float)
    thresholds = np.unique(np.r_[known, unknown])                      # ascending
    correct = np.sort(known[np.asarray(known_correct, bool)])
    ccr = np.r_[0.0, np.searchsorted(correct, thresholds, side="right") / known.size]
    fpr = np.r_[0.0, np.searchsorted(np.sort(unknown), thresholds, side="right") / unknown.size]
    return float(np.sum(np.diff(fpr) * (ccr[1:] + ccr[:-1]) / 2.0))


def known_row(values: np.ndarray, correct: np.ndarray, threshold: Optional[float]) -> dict:
    """Rejection of known images at the calibrated threshold (None without one)."""
    if threshold is None or values.size == 0:
        return {"threshold": threshold, "flagged": None, "acc_kept": None, "ccr": None}
    kept = values <= threshold
    return {"threshold": threshold, "flagged": float(np.mean(~kept)),
            "acc_kept": float(np.mean(correct[kept])) if kept.any() else None,
            "ccr": float(np.mean(correct & kept))}


def unknown_row(values: np.ndarray, closed: dict, threshold: Optional[float]) -> dict:
    """AUROC/FPR95/OSCR against the closed list's known images, and the share flagged."""
    known, correct = closed["values"], closed["correct"]
    return {"threshold": threshold,
            "flagged": None if threshold is None else float(np.mean(values > threshold)),
            "auroc": auroc(known, values), "fpr95": fpr_at_tpr(known, values),
            "oscr": oscr(known, correct, values)}


def add_open_set_metrics(records: List[dict], plans: Dict[str, Optional[OpenSetPlan]]) -> None:
    """Fill ``record["open_set"]`` ({score: row}) from each record's ``_outputs``, then drop those.

    Raises:
        ValueError: an open-set list without the closed list (``*_test.txt``) of its model.
    """
    by_method: Dict[str, dict] = {}
    for record in records:
        if record["test"] == "closed" and "_outputs" in record:
            by_method[record["method"]] = record["_outputs"]
    for record in records:
        outputs, plan = record.pop("_outputs", None), plans.get(record["method"])
        if outputs is None or plan is None:
            continue
        rows = {}
        for name in plan.names:
            values = outputs["unknown"][name]
            if not record["open_list"]:
                correct = outputs["preds"] == outputs["labels"]
                rows[name] = known_row(values, correct, plan.threshold(name))
                continue
            closed = by_method.get(record["method"])
            if closed is None:
                raise ValueError(f"open-set list {record['list']} needs the closed test list "
                                 f"(*_test.txt) in the same call: its known images are the other "
                                 f"side of AUROC, FPR95 and OSCR")
            known = {"values": closed["unknown"][name], "correct": closed["preds"] == closed["labels"]}
            if values.size == 0 or known["values"].size == 0:     # every image unreadable
                rows[name] = dict.fromkeys(("flagged", "auroc", "fpr95", "oscr"), None)
                rows[name]["threshold"] = plan.threshold(name)
                continue
            rows[name] = unknown_row(values, known, plan.threshold(name))
        record["open_set"] = rows


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{100.0 * value:.2f}"


def open_set_table(records: Sequence[dict]) -> List[List[str]]:
    """Rows (test set, score, images, flagged, acc kept, CCR, AUROC, FPR95, OSCR), in %."""
    rows = []
    for record in records:
        for name, row in record.get("open_set", {}).items():
            rows.append([record["test"], name, record["n_images"], _percent(row["flagged"]),
                         _percent(row.get("acc_kept")), _percent(row.get("ccr")),
                         _percent(row.get("auroc")), _percent(row.get("fpr95")), _percent(row.get("oscr"))])
    return rows


OPEN_SET_HEADER = ["test set", "score", "images", "flagged unknown", "acc kept", "CCR", "AUROC",
                   "FPR95", "OSCR"]
OPEN_SET_NOTE = (f"Open set in %: flagged = score above the threshold that keeps {KEEP_RATE:.0%} of the "
                 f"known validation images; acc kept / CCR: accuracy of the kept known images / share "
                 f"kept and correct; AUROC, FPR95 (unknown kept at {KEEP_RATE:.0%} of the closed test "
                 f"kept) and OSCR against the closed test list.")


def open_set_csv_columns(records: Sequence[dict]) -> List[str]:
    names = list(dict.fromkeys(n for r in records for n in r.get("open_set", {})))
    return [f"{n}_{key}" for n in names for key in ("flagged", "acc_kept", "ccr", "auroc", "fpr95", "oscr")]


def open_set_csv_values(record: dict, columns: Sequence[str]) -> list:
    values = []
    for column in columns:
        name, key = column.split("_", 1)
        value = record.get("open_set", {}).get(name, {}).get(key)
        values.append("" if value is None else value)
    return values
