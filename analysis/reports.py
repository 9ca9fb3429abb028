"""Tables and figures of the evaluation scripts: Markdown/CSV/JSON files, confusion PNGs, curves.

Metrics are stored as fractions (0..1) in CSV/JSON and shown as percentages in Markdown.
Figures use matplotlib's Agg backend (no display needed).
"""
import csv
import json
import os
import shlex
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

from data.atomic import atomic_file
from analysis.open_set_report import (OPEN_SET_HEADER, OPEN_SET_NOTE, open_set_csv_columns,
                                      open_set_csv_values, open_set_table)


def command_line(script: str, argv: Optional[Sequence[str]] = None) -> str:
    """How a generated table names the command that made it: ``python SCRIPT ARGS``, each argument
    shell-quoted (titles have spaces and parentheses) so that the line runs as written."""
    return shlex.join(["python", script, *(sys.argv[1:] if argv is None else argv)])


def percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{100.0 * value:.2f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub Markdown table with columns padded for reading in a terminal."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def detail_table(records: Sequence[dict], class_names: Sequence[str]) -> str:
    """One model: a row per test list with images, skipped, acc, F1, recall, per-class recall (%)."""
    header = ["test set", "images", "skipped", "acc", "macro-F1", "macro-recall"] + \
             [f"recall {name}" for name in class_names]
    rows = [[r["test"], r["n_images"], r["n_skipped"], percent(r["acc"]), percent(r["f1"]),
             percent(r["recall"])] + [percent(v) for v in r["per_class_recall"]] for r in records]
    return markdown_table(header, rows)


def comparison_table(records: Sequence[dict]) -> str:
    """Several models: rows = test sets, an acc and a macro-F1 column per method (%)."""
    methods = list(dict.fromkeys(r["method"] for r in records))
    tests = list(dict.fromkeys(r["test"] for r in records))
    cell = {(r["test"], r["method"]): r for r in records}
    header = ["test set"] + [f"{m} {what}" for m in methods for what in ("acc", "F1")]
    rows = [[test] + [percent(cell[(test, m)][key]) if (test, m) in cell else "-"
                      for m in methods for key in ("acc", "f1")] for test in tests]
    return markdown_table(header, rows)


def _method_tables(records: Sequence[dict], class_names: Sequence[str]) -> List[str]:
    """The detail table of one method, then its open-set table when it has one."""
    parts = [detail_table(records, class_names), ""]
    open_rows = open_set_table(records)
    if open_rows:
        parts += [markdown_table(OPEN_SET_HEADER, open_rows), ""]
    return parts


def results_markdown(records: Sequence[dict], class_names: Dict[str, List[str]]) -> str:
    """The cross-test report: one detail table, or a comparison plus one detail table per method
    (each followed by its open-set table when the run scored the open set)."""
    methods = list(dict.fromkeys(r["method"] for r in records))
    notes = ["Metrics in %; macro averages over the classes that are true or predicted in each list (scikit-learn)."]
    if any(r.get("open_list") for r in records):
        notes.append("An open-set list (labels -1) has no known class: '-' for its accuracy and recalls.")
    if any(r.get("open_set") for r in records):
        notes.append(OPEN_SET_NOTE)
    zoos = sorted({r["zoo_fingerprint"] for r in records if r.get("zoo_fingerprint")})
    if zoos:
        notes.append(f"Toy zoo fingerprint (its manifest.json; zoos built on other CPUs differ): {', '.join(zoos)}.")
    if len(methods) == 1:
        return "\n".join(_method_tables(records, class_names[methods[0]]) + notes) + "\n"
    parts = [comparison_table(records), ""]
    for method in methods:
        parts += [f"### {method}", ""] + _method_tables([r for r in records if r["method"] == method],
                                                          class_names[method])
    return "\n".join(parts + notes) + "\n"


def write_rows_csv(path: str, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    with atomic_file(path, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_json(path: str, obj) -> None:
    with atomic_file(path) as handle:
        json.dump(obj, handle, indent=2)
        handle.write("\n")


def write_results(out_dir: str, records: Sequence[dict], class_names: Dict[str, List[str]]) -> dict:
    """results.md, results.csv (one line per test list and method), results.json, confusion PNGs."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"md": os.path.join(out_dir, "results.md"), "csv": os.path.join(out_dir, "results.csv"),
             "json": os.path.join(out_dir, "results.json")}
    with open(paths["md"], "w", encoding="utf-8") as handle:
        handle.write(results_markdown(records, class_names))
    most = max((len(names) for names in class_names.values()), default=0)
    open_columns = open_set_csv_columns(records)
    header = ["test", "method", "list", "n_images", "n_skipped", "acc", "macro_f1", "macro_recall"] + \
             [f"recall_{k}" for k in range(most)] + (["open_list"] + open_columns if open_columns else [])
    rows = []
    for r in records:
        recalls = ["" if v is None else v for v in r["per_class_recall"]]
        recalls += [""] * (most - len(recalls))
        extra = [int(r.get("open_list", False))] + open_set_csv_values(r, open_columns) if open_columns else []
        rows.append([r["test"], r["method"], r["list"], r["n_images"], r["n_skipped"], r["acc"], r["f1"],
                     r["recall"]] + recalls + extra)
    write_rows_csv(paths["csv"], header, rows)
    payload = [{**r, "class_names": class_names[r["method"]]} for r in records]
    write_json(paths["json"], {"class_names": class_names, "results": payload})
    paths["confusion"] = []
    for r in records:
        if r["confusion"] is None:          # open-set list: no true class (see pred_counts)
            continue
        stem = f"confusion_{r['test']}" + (f"_{r['method']}" if r["method"] else "")
        title = f"{r['test']}" + (f" ({r['method']})" if r["method"] else "") + \
                f": acc {percent(r['acc'])}%, {r['n_images']} images"
        target = os.path.join(out_dir, safe_name(stem) + ".png")
        save_confusion_png(r["confusion"], class_names[r["method"]], title, target)
        paths["confusion"].append(target)
    return paths


def safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _save_figure(figure, path: str, dpi: int) -> None:
    from analysis.figures import save_figure
    save_figure(figure, path, dpi)


def _pyplot():
    from analysis.figures import plt   # matplotlib (Agg backend) only when drawing
    return plt


def save_confusion_png(confusion: Sequence[Sequence[int]], class_names: Sequence[str],
                       title: str, path: str) -> None:
    """Counts in each cell, colour = fraction of the true class (row-normalised); rows true."""
    plt = _pyplot()
    matrix = np.asarray(confusion, dtype=float)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    side = 2.0 + 0.55 * len(class_names)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, f"{int(count)}", ha="center", va="center", fontsize=8,
                    color="white" if shares[i, j] > 0.5 else "black")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, labels=class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, labels=class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    fig.tight_layout()
    _save_figure(fig, path, dpi=90)


def robustness_markdown(rows: Sequence[dict]) -> str:
    """One line per (perturbation, level), the clean pass first."""
    table = [[r["perturbation"], r["level"], r["n_images"], percent(r["acc"]), percent(r["f1"])]
             for r in rows]
    return markdown_table(["perturbation", "level", "images", "acc", "macro-F1"], table) + \
        "\n\nMetrics in %; 'none' is the clean test list.\n"


def save_robustness_png(rows: Sequence[dict], labels: Dict[str, str], larger_is_stronger: Dict[str, bool],
                        path: str, title: str = "") -> None:
    """Accuracy against strength, one panel per perturbation, clean accuracy as a dashed line."""
    plt = _pyplot()
    clean = next((r["acc"] for r in rows if r["perturbation"] == "none"), None)
    names = list(dict.fromkeys(r["perturbation"] for r in rows if r["perturbation"] != "none"))
    columns = min(3, max(1, len(names)))
    lines = max(1, -(-len(names) // columns))
    fig, axes = plt.subplots(lines, columns, figsize=(3.4 * columns, 2.7 * lines), squeeze=False)
    for ax, name in zip(axes.flat, names):
        points = [(float(r["level"]), 100.0 * r["acc"]) for r in rows
                  if r["perturbation"] == name and r["acc"] is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", color="tab:blue", label="perturbed")
        if clean is not None:
            ax.axhline(100.0 * clean, color="tab:green", linestyle="--", label=f"clean {100 * clean:.1f}")
        if not larger_is_stronger.get(name, True):
            ax.invert_xaxis()
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(labels.get(name, "level") + " (stronger ->)", fontsize=8)
        ax.set_ylabel("accuracy (%)", fontsize=8)
        ax.set_ylim(0, 102)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save_figure(fig, path, dpi=80)


def stage1_curve(records: Sequence[dict]) -> dict:
    """A stage-1 run's learning curve from its metrics.jsonl ``records``: one row per epoch
    with train CE, val CE, top-1, top-5, family accuracy and lr; the best epoch (by val top-1)
    with its per-family accuracies."""
    stage1 = [r for r in records if "val_top1" in r]
    if not stage1:
        raise ValueError("no stage-1 validation in these metrics (val_top1 missing): is this a --pretrain run?")
    best = max(stage1, key=lambda r: (r["val_top1"], -r["epoch"]))
    rows = [{"epoch": r["epoch"], "train_ce": r.get("train_ce"), "val_ce": r["val_ce"], "top1": r["val_top1"],
             "top5": r["val_top5"], "family_acc": r["val_family_acc"], "lr": r.get("lr")} for r in stage1]
    return {"rows": rows, "best": {"epoch": best["epoch"], "top1": best["val_top1"], "top5": best["val_top5"],
                                   "family_acc": best["val_family_acc"], "per_family": best["val_per_family"]},
            "last_epoch": stage1[-1]["epoch"], "saved_epoch": stage1[-1].get("best_epoch")}


def stage1_markdown(curve: dict, command: str, title: str, iters_per_epoch: int, every: int = 1) -> str:
    """``stage1_curve`` as Markdown: the curve (every ``every``-th epoch, and the first, best and
    last), then the best epoch per family."""
    ends = {curve["rows"][0]["epoch"], curve["best"]["epoch"], curve["last_epoch"]}
    shown = [r for r in curve["rows"] if r["epoch"] % every == 0 or r["epoch"] in ends]
    lines = [f"# {title}", "", f"Made by: `{command}`", "",
             f"Validation after every {iters_per_epoch} steps; accuracies in %. Best epoch by top-1: "
             f"{curve['best']['epoch']} (step {curve['best']['epoch'] * iters_per_epoch}); last epoch "
             f"{curve['last_epoch']}; the run's model.pth is epoch {curve['saved_epoch']} (its selection metric).", ""]
    lines.append(markdown_table(
        ["epoch", "step", "lr", "train CE", "val CE", "top-1", "top-5", "family acc"],
        [[r["epoch"], r["epoch"] * iters_per_epoch, f"{r['lr']:.2e}" if r["lr"] is not None else "-",
          f"{r['train_ce']:.3f}" if r["train_ce"] is not None else "-", f"{r['val_ce']:.3f}",
          percent(r["top1"]), percent(r["top5"]), percent(r["family_acc"])] for r in shown]))
    lines += ["", f"## Per family at the best epoch ({curve['best']['epoch']})", ""]
    lines.append(markdown_table(["family", "images", "top-1", "family acc"],
                                [[name, v["n"], percent(v["top1"]), percent(v["family_acc"])]
                                 for name, v in curve["best"]["per_family"].items()]))
    return "\n".join(lines) + "\n"


def write_stage1_tables(stem: str, curve: dict, command: str, title: str, iters_per_epoch: int,
                        every: int = 1) -> None:
    """``stem``.md (every ``every``-th epoch), ``stem``.csv and ``stem``.json (every epoch),
    each written atomically."""
    with atomic_file(stem + ".md") as handle:
        handle.write(stage1_markdown(curve, command, title, iters_per_epoch, every))
    with atomic_file(stem + ".csv", newline="") as handle:
        handle.write(f"# {command}\n")
        handle.write("epoch,step,lr,train_ce,val_ce,top1,top5,family_acc\n")
        for r in curve["rows"]:
            handle.write(f"{r['epoch']},{r['epoch'] * iters_per_epoch},{r['lr']},{r['train_ce']},{r['val_ce']:.6f},"
                         f"{r['top1']:.6f},{r['top5']:.6f},{r['family_acc']:.6f}\n")
    write_json(stem + ".json", {"command": command, "iters_per_epoch": iters_per_epoch, **curve})
