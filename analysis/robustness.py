"""Robustness sweep (SPEC section 11): every post-processing at every level on one test list.

Each image (real and fake alike) is decoded, centre-cropped to a square, perturbed in
memory by ``data.postprocess`` with a generator seeded by (config.seed, list index),
then resized and normalised as usual; so a sweep is deterministic and the same image
gets the same noise at every run. The clean pass comes first (perturbation ``none``).
"""
import functools
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from data.postprocess import PERTURBATIONS, apply_perturbation
from engine.inference import EvalSetup, run_items, score, unreadable_reason
from analysis.reports import robustness_markdown, save_robustness_png, write_json, write_rows_csv

CSV_HEADER = ["perturbation", "level", "acc", "macro_f1", "macro_recall", "n_images", "n_skipped"]


def _perturb(name: str, level: float, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return apply_perturbation(name, image, level, rng)


def make_perturb(name: str, level: float):
    """A picklable ``fn(uint8 [H, W, 3], rng) -> uint8`` for ``WholeImageDataset(perturb=...)``."""
    return functools.partial(_perturb, name, level)


def parse_levels(specs: Sequence[str]) -> Dict[str, tuple]:
    """``["jpeg=90,50", "gamma=0.5"]`` -> {"jpeg": (90.0, 50.0), "gamma": (0.5,)} (order kept)."""
    levels = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        if not sep or name not in PERTURBATIONS:
            raise ValueError(f"--levels expects name=l1,l2 with name one of {sorted(PERTURBATIONS)}, "
                             f"got {spec!r}")
        try:
            values = [float(part) for part in text.split(",") if part.strip()]
            levels[name] = tuple(int(v) if v.is_integer() else v for v in values)
        except ValueError:
            raise ValueError(f"--levels {spec!r}: levels must be numbers") from None
        if not levels[name]:
            raise ValueError(f"--levels {spec!r}: no level given")
    return levels


def sweep_plan(names: Optional[Sequence[str]] = None,
               levels: Optional[Dict[str, tuple]] = None) -> List[tuple]:
    """[(name, level)] for the chosen perturbations (all by default), default levels unless given."""
    names = list(names) if names else list(PERTURBATIONS)
    unknown = [name for name in names if name not in PERTURBATIONS]
    if unknown:
        raise ValueError(f"unknown perturbation(s) {unknown}; choose from {sorted(PERTURBATIONS)}")
    levels = levels or {}
    return [(name, level) for name in names for level in levels.get(name, PERTURBATIONS[name].levels)]


def run_robustness(setup: EvalSetup, items: Sequence, plan: Sequence[tuple],
                   progress: bool = True) -> List[dict]:
    """Evaluate the clean list then each (perturbation, level) of ``plan``.

    Returns rows: perturbation, level, acc, f1, recall, n_images, n_skipped,
    per_class_recall (fractions; acc is None when no image was readable); the clean
    row also names the unreadable files: ``skipped`` [(path, reason)].
    """
    rows = []
    for name, level in [("none", "")] + list(plan):
        perturb = None if name == "none" else make_perturb(name, level)
        outputs = run_items(setup, items, desc=f"{name} {level}".strip(), perturb=perturb,
                            progress=progress)
        metrics = score(outputs, setup.class_num)
        rows.append({"perturbation": name, "level": level, **{k: metrics[k] for k in (
            "acc", "f1", "recall", "n_images", "n_skipped", "per_class_recall")}})
        if name == "none":
            rows[0]["skipped"] = [(items[i][0], unreadable_reason(items[i][0])) for i in outputs["skipped"]]
    return rows


def write_robustness(out_dir: str, rows: Sequence[dict], title: str = "") -> dict:
    """robustness.csv / .md / .json and robustness.png (accuracy against strength)."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {key: os.path.join(out_dir, f"robustness.{key}") for key in ("csv", "md", "json", "png")}
    write_rows_csv(paths["csv"], CSV_HEADER, [[r["perturbation"], r["level"], r["acc"], r["f1"],
                                               r["recall"], r["n_images"], r["n_skipped"]] for r in rows])
    with open(paths["md"], "w", encoding="utf-8") as handle:
        handle.write(robustness_markdown(rows))
    write_json(paths["json"], list(rows))
    labels = {name: entry.label for name, entry in PERTURBATIONS.items()}
    stronger = {name: entry.stronger_when_larger for name, entry in PERTURBATIONS.items()}
    save_robustness_png(rows, labels, stronger, paths["png"], title=title)
    return paths
