"""Multi-seed experiments on the toy zoo: what to train, and the statistics of the results.

A *run* is one method trained with one seed and evaluated by ``eval/cross_test.py`` on every
toy list; its row holds one accuracy per list and, per open-set score, the AUROC / FPR95 /
OSCR of the unseen-architecture list. ``aggregate`` turns rows into n, mean, sample standard
deviation and min-max per method and column; ``compare`` tests a difference of two methods'
means with Welch's t-test (unequal variances), the question being whether the difference
exceeds the seed-to-seed spread.
"""
import csv
import json
import math
import os
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy import stats

from data.atomic import atomic_file


@dataclass(frozen=True)
class Method:
    """A row of the comparison: a stage-2 config, and whether it starts from stage 1."""
    name: str
    config: str
    stage1: bool


METHODS = (
    Method("DNA-Det", "toy", True),
    Method("no_pretrain", "toy", False),
    Method("no_contrastive", "toy_no_contrastive", True),
    Method("no_pretrain_no_con", "toy_no_contrastive", False),
    Method("ce_only", "toy_ce_only", False),
    Method("attnet", "toy_attnet", False),
    Method("dct", "toy_dct", False),
)
METHOD_NAMES = tuple(m.name for m in METHODS)

# the toy lists, in table order (``eval/cross_test.py`` names the rows after the files)
LISTS = (("closed", "toy_test.txt"), ("cross-seed", "toy_test_cross_seed.txt"),
         ("cross-loss", "toy_test_cross_loss.txt"), ("cross-finetune", "toy_test_cross_finetune.txt"),
         ("cross-dataset", "toy_test_cross_dataset.txt"), ("unseen-arch", "toy_test_unseen_arch.txt"))
ACCURACY_COLUMNS = tuple(name for name, _ in LISTS if name != "unseen-arch")
OPEN_SET_METRICS = ("auroc", "fpr95", "oscr")

# unseen families: the open-set score is selected on the validation unknowns and reported on the
# test unknowns, never on the images it was chosen with (the toy zoo has these two)
VAL_UNKNOWN, TEST_UNKNOWN = "stylegan2", "resizeblur"

# the paper's claims as pairs of methods: (claim, the method that should be better, the other)
CLAIMS = (
    ("pre-training on image transformations helps", "DNA-Det", "no_pretrain"),
    ("the contrastive (SupCon) loss helps", "DNA-Det", "no_contrastive"),
    ("patchwise training beats whole-image training", "DNA-Det", "ce_only"),
    ("DNA-Det beats the AttNet baseline", "DNA-Det", "attnet"),
    ("DNA-Det beats the DCT baseline", "DNA-Det", "dct"),
)


def method(name: str) -> Method:
    for candidate in METHODS:
        if candidate.name == name:
            return candidate
    raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHOD_NAMES)}")


def run_row(results: dict, method_name: str, seed: int) -> dict:
    """The row of one run from ``eval/cross_test.py``'s results.json: accuracy per list (%),
    and ``<score>_<auroc|fpr95|oscr>`` (%) of the unseen list."""
    row = {"method": method_name, "seed": seed}
    for entry in results["results"]:
        if entry.get("open_list"):
            for score, values in (entry.get("open_set") or {}).items():
                for key in OPEN_SET_METRICS:
                    if values.get(key) is not None:
                        row[f"{score}_{key}"] = 100 * values[key]
        elif entry["test"] in ACCURACY_COLUMNS and entry.get("acc") is not None:
            row[entry["test"]] = 100 * entry["acc"]
    missing = [name for name in ACCURACY_COLUMNS if name not in row]
    if missing:
        raise ValueError(f"{method_name} seed {seed}: no accuracy for {', '.join(missing)} in the results")
    row.update(family_metrics(results))
    return row


def family_of(path: str) -> str:
    """The generator family of a zoo image (``.../GANs/<family>/...``), else 'unknown'."""
    parts = path.replace("\\", "/").split("/")
    return parts[parts.index("GANs") + 1] if "GANs" in parts[:-1] else "unknown"


def _open_csv(record: dict) -> Optional[dict]:
    path = os.path.join(record.get("pred_dir") or "", "open_set.csv")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [row for row in reader if row]
    return {"paths": [r[0] for r in rows], "labels": np.array([int(r[1]) for r in rows]),
            "preds": np.array([int(r[2]) for r in rows]),
            "scores": {name: np.array([float(r[i]) for r in rows]) for i, name in enumerate(header) if i >= 3}}


def family_metrics(results: dict) -> dict:
    """``<score>_<auroc|fpr95|oscr>@<family>`` (%) of every unseen family against the closed
    list's known images, read from the two lists' ``open_set.csv`` ({} when they are missing)."""
    from analysis.open_set_report import auroc, fpr_at_tpr, oscr
    closed = next((r for r in results["results"] if r.get("test") == "closed" and not r.get("open_list")), None)
    unseen = next((r for r in results["results"] if r.get("open_list")), None)
    known, unknown = (_open_csv(closed) if closed else None), (_open_csv(unseen) if unseen else None)
    if known is None or unknown is None:
        return {}
    correct = known["labels"] == known["preds"]
    families = np.array([family_of(path) for path in unknown["paths"]])
    out = {}
    for score in [s for s in unknown["scores"] if s in known["scores"]]:
        for family in sorted(set(families)):
            values = unknown["scores"][score][families == family]
            out[f"{score}_auroc@{family}"] = 100 * auroc(known["scores"][score], values)
            out[f"{score}_fpr95@{family}"] = 100 * fpr_at_tpr(known["scores"][score], values)
            out[f"{score}_oscr@{family}"] = 100 * oscr(known["scores"][score], correct, values)
    return out


def select_open_set(rows: Sequence[dict], method_name: str, val: str = VAL_UNKNOWN,
                    test: str = TEST_UNKNOWN) -> Optional[dict]:
    """The score with the best mean AUROC on the validation-unknown family ``val`` over the
    method's seeds, and its AUROC / FPR95 / OSCR on the test-unknown family ``test`` (summaries),
    next to MSP's; None when the rows lack per-family metrics."""
    runs = [r for r in rows if r["method"] == method_name]
    scores = [key.split("_auroc@")[0] for key in (runs[0] if runs else {}) if key.endswith(f"_auroc@{val}")]
    scores = [s for s in scores if all(f"{s}_auroc@{val}" in r and f"{s}_auroc@{test}" in r for r in runs)]
    if not runs or not scores:
        return None
    val_auroc = {s: float(np.mean([r[f"{s}_auroc@{val}"] for r in runs])) for s in scores}
    chosen = max(scores, key=lambda s: val_auroc[s])
    report = {s: {m: summary([r[f"{s}_{m}@{test}"] for r in runs]) for m in OPEN_SET_METRICS}
              for s in dict.fromkeys([chosen, "msp"]) if s in scores}
    above = all(r[f"{chosen}_auroc@{test}"] > r[f"msp_auroc@{test}"] for r in runs) if "msp" in scores else None
    return {"method": method_name, "val_family": val, "test_family": test, "val_auroc": val_auroc,
            "selected": chosen, "test": report, "above_msp_every_seed": above, "n": len(runs)}


ROW_LABELS = ("method", "seed", "code")     # what names a run; every other key of a row is a number


def columns(rows: Sequence[dict]) -> List[str]:
    """Accuracy columns in list order, then the open-set columns in first-seen order."""
    extra = []
    for row in rows:
        extra += [key for key in row if key not in ROW_LABELS + ACCURACY_COLUMNS and key not in extra]
    return list(ACCURACY_COLUMNS) + extra


def summary(values: Sequence[float]) -> dict:
    """n, mean, sample standard deviation (ddof 1; 0 for one value), min and max."""
    array = np.asarray(values, dtype=float)
    return {"n": int(array.size), "mean": float(array.mean()),
            "std": float(array.std(ddof=1)) if array.size > 1 else 0.0,
            "min": float(array.min()), "max": float(array.max())}


def aggregate(rows: Sequence[dict]) -> Dict[str, Dict[str, dict]]:
    """{method: {column: summary}} over the seeds of each method (columns a run lacks are skipped)."""
    by_method: Dict[str, List[dict]] = {}
    for row in rows:
        by_method.setdefault(row["method"], []).append(row)
    return {name: {column: summary([r[column] for r in runs if column in r])
                   for column in columns(runs) if any(column in r for r in runs)}
            for name, runs in by_method.items()}


def welch(first: Sequence[float], second: Sequence[float]) -> dict:
    """Difference of means (first - second) with Welch's t-test (two-sided) and its 95 %
    confidence interval (Welch-Satterthwaite degrees of freedom)."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"Welch's test needs at least 2 values a side, got {a.size} and {b.size}")
    diff = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb == 0:
        return {"diff": diff, "p": 0.0 if diff else 1.0, "low": diff, "high": diff, "df": math.inf}
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    half = float(stats.t.ppf(0.975, df) * math.sqrt(va + vb))
    with warnings.catch_warnings():       # near-identical values (e.g. 100 % on every seed)
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return {"diff": diff, "p": p, "low": diff - half, "high": diff + half, "df": float(df)}


def compare(rows: Sequence[dict], better: str, other: str, column: str) -> Optional[dict]:
    """``welch`` of ``column`` between two methods' seeds, or None when either has < 2 seeds."""
    a = [r[column] for r in rows if r["method"] == better and column in r]
    b = [r[column] for r in rows if r["method"] == other and column in r]
    if len(a) < 2 or len(b) < 2:
        return None
    return {"better": better, "other": other, "column": column, "n": [len(a), len(b)], **welch(a, b)}


def paired(rows: Sequence[dict], first: str, second: str, column: str) -> Optional[dict]:
    """Paired t-test (two-sided) of ``first - second`` over the seeds both methods have, with the
    95 % confidence interval of the mean difference; for two evaluations of the same runs (e.g.
    the same weights in bf16 and in fp32). None when fewer than 2 seeds match."""
    a = {r["seed"]: r[column] for r in rows if r["method"] == first and column in r}
    b = {r["seed"]: r[column] for r in rows if r["method"] == second and column in r}
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    d = np.asarray([a[s] - b[s] for s in seeds], dtype=float)
    diff, sd = float(d.mean()), float(d.std(ddof=1))
    half = float(stats.t.ppf(0.975, d.size - 1) * sd / math.sqrt(d.size))
    p = (0.0 if diff else 1.0) if sd == 0 else float(stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue)
    return {"first": first, "second": second, "column": column, "seeds": seeds, "diff": diff, "sd": sd,
            "p": p, "low": diff - half, "high": diff + half}


def claim_tests(rows: Sequence[dict], claims) -> List[tuple]:
    """(claim, ``compare`` result) for every claim and accuracy list where both sides have >= 2 seeds."""
    return [(claim, result) for claim, better, other in claims for column in ACCURACY_COLUMNS
            for result in [compare(rows, better, other, column)] if result]


def paired_tests(rows: Sequence[dict], pairs) -> List[dict]:
    """``paired`` for every (first, second) pair and accuracy list where >= 2 seeds match."""
    return [result for first, second in pairs for column in ACCURACY_COLUMNS
            for result in [paired(rows, first, second, column)] if result]


def spread_cell(s: dict) -> str:
    """``summary`` as ``mean ± sd [min-max]``, one decimal."""
    return f"{s['mean']:.1f} ± {s['std']:.1f} [{s['min']:.1f}-{s['max']:.1f}]"


def _table(table: dict, order: List[str], cols: List[str]) -> List[str]:
    lines = ["| method | n | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for name in order:
        present = [table[name][c]["n"] for c in cols if c in table[name]]
        if present:
            lines.append(f"| {name} | {max(present)} | " + " | ".join(
                spread_cell(table[name][c]) if c in table[name] else "-" for c in cols) + " |")
    return lines


def split_group(name: str):
    """``"DNA-Det@zoo1"`` -> ("DNA-Det", "zoo1"); a name without ``@`` has no group."""
    base, _, group = name.partition("@")
    return base, group or None


def between_within(rows: Sequence[dict], column: str) -> Dict[str, dict]:
    """For each base method with rows in two or more groups (``METHOD@GROUP``, e.g. one group
    per zoo seed): the standard deviation of the group means (between), the pooled standard
    deviation inside the groups (within, over the groups with >= 2 runs) and the one-way ANOVA
    p-value of "the groups have equal means" (None when a group has a single run)."""
    groups: Dict[str, Dict[str, List[float]]] = {}
    for row in rows:
        base, group = split_group(row["method"])
        if group and column in row:
            groups.setdefault(base, {}).setdefault(group, []).append(row[column])
    out = {}
    for base, by_group in groups.items():
        if len(by_group) < 2:
            continue
        means = [float(np.mean(v)) for v in by_group.values()]
        spread = [v for v in by_group.values() if len(v) > 1]
        within = (math.sqrt(sum((len(v) - 1) * np.var(v, ddof=1) for v in spread) /
                            sum(len(v) - 1 for v in spread)) if spread else None)
        p = None
        if all(len(v) > 1 for v in by_group.values()):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                p = float(stats.f_oneway(*by_group.values()).pvalue)
        out[base] = {"groups": {g: summary(v) for g, v in by_group.items()}, "between_sd": float(np.std(means, ddof=1)),
                     "within_sd": within, "anova_p": None if p is None or math.isnan(p) else p}
    return out


def markdown(rows: Sequence[dict], command: str, title: str, claims=CLAIMS,
             fingerprint: str = "", pairs=()) -> str:
    """The report: accuracy per method as mean ± sd [min-max] (n), the pooled open-set AUROC of
    every score, the open-set score selected on the validation unknowns and its test-unknown
    metrics, Welch's tests of the paper's claims, and the per-seed accuracies."""
    table = aggregate(rows)
    order = [m for m in METHOD_NAMES if m in table] + sorted(m for m in table if m not in METHOD_NAMES)
    lines = [f"# {title}", "", f"Made by: `{command}`", ""]
    if fingerprint:
        lines += [f"Toy zoo fingerprint: `{fingerprint}`", ""]
    versions = code_versions(rows)
    if versions:
        lines += ["Code that wrote the rows (git describe): " + ", ".join(
            f"`{version}` ({count} run{'s' if count > 1 else ''})" for version, count in versions.items()), ""]
    lines += ["Accuracy in %: mean ± sample standard deviation [min-max] over the seeds (n).", ""]
    lines += _table(table, order, list(ACCURACY_COLUMNS))
    pooled = [c for c in columns(rows) if c.endswith("_auroc")]
    if pooled:
        lines += ["", "## Open set: AUROC (%) of each unknown score on the whole unseen-architecture list", "",
                  "Both unseen families pooled; for reading only: the score is selected in the next table, "
                  "on validation unknowns.", ""] + _table(table, order, pooled)
    selections = [s for s in (select_open_set(rows, name) for name in order) if s]
    if selections:
        first = selections[0]
        lines += ["", f"## Open set, selected honestly: score chosen on the {first['val_family']} images "
                      f"(validation unknowns), reported on the {first['test_family']} images (test unknowns)", "",
                  "| method | n | selected score (its validation AUROC) | test AUROC | test FPR95 | test OSCR | "
                  "MSP test AUROC | selected above MSP on every seed |", "|---|---|---|---|---|---|---|---|"]
        for s in selections:
            chosen, msp = s["test"][s["selected"]], s["test"].get("msp")
            lines.append(f"| {s['method']} | {s['n']} | {s['selected']} ({s['val_auroc'][s['selected']]:.1f}) | "
                         f"{spread_cell(chosen['auroc'])} | {spread_cell(chosen['fpr95'])} | {spread_cell(chosen['oscr'])} | "
                         f"{spread_cell(msp['auroc']) if msp else '-'} | "
                         f"{'-' if s['above_msp_every_seed'] is None else 'yes' if s['above_msp_every_seed'] else 'no'} |")
    tests = claim_tests(rows, claims)
    if tests:
        lines += ["", "## The paper's claims: Welch's t-test of the difference in means", "",
                  "Difference = first method - second, in points, with its 95 % confidence interval; "
                  "'exceeds the spread' when p < 0.05.", "",
                  "| claim | list | difference | 95 % CI | p | exceeds the spread |", "|---|---|---|---|---|---|"]
        for claim, result in tests:
            verdict = ("yes, first better" if result["p"] < 0.05 and result["diff"] > 0 else
                       "yes, second better" if result["p"] < 0.05 else "no")
            lines.append(f"| {claim} ({result['better']} vs {result['other']}, n {result['n'][0]}/{result['n'][1]}) | "
                         f"{result['column']} | {result['diff']:+.1f} | [{result['low']:+.1f}, {result['high']:+.1f}] | "
                         f"{result['p']:.3f} | {verdict} |")
    matched = paired_tests(rows, pairs)
    if matched:
        lines += ["", "## Paired t-test over matching seeds (the same runs measured two ways)", "",
                  "Difference = first - second per seed, in points: mean, its sd over the seeds, 95 % CI; "
                  "'exceeds the spread' when p < 0.05.", "",
                  "| pair | list | seeds | difference | sd | 95 % CI | p | exceeds the spread |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in matched:
            verdict = "yes" if r["p"] < 0.05 else "no"
            lines.append(f"| {r['first']} - {r['second']} | {r['column']} | {len(r['seeds'])} | {r['diff']:+.2f} | "
                         f"{r['sd']:.2f} | [{r['low']:+.2f}, {r['high']:+.2f}] | {r['p']:.3f} | {verdict} |")
    spread = {column: between_within(rows, column) for column in ACCURACY_COLUMNS}
    if any(spread.values()):
        lines += ["", "## Between groups against within groups", "",
                  "Per method: the standard deviation of the group means (e.g. one group per zoo seed), the "
                  "pooled standard deviation of the runs inside a group, and the one-way ANOVA p-value of equal "
                  "group means (- when a group has one run).", "",
                  "| method | list | group means | between sd | within sd | ANOVA p |", "|---|---|---|---|---|---|"]
        for column, by_base in spread.items():
            for base, result in by_base.items():
                means = ", ".join(f"{g} {v['mean']:.1f} (n {v['n']})" for g, v in result["groups"].items())
                within = "-" if result["within_sd"] is None else f"{result['within_sd']:.1f}"
                p = "-" if result["anova_p"] is None else f"{result['anova_p']:.3f}"
                lines.append(f"| {base} | {column} | {means} | {result['between_sd']:.1f} | {within} | {p} |")
    cols = list(ACCURACY_COLUMNS)
    lines += ["", "## Per seed (accuracy %; every metric of every run is in the .csv and .json)", "",
              "| method | seed | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for row in sorted(rows, key=lambda r: (order.index(r["method"]), r["seed"])):
        lines.append(f"| {row['method']} | {row['seed']} | " +
                     " | ".join(f"{row[c]:.1f}" if c in row else "-" for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_tables(rows: Sequence[dict], stem: str, command: str, title: str, fingerprint: str = "",
                 claims=CLAIMS, pairs=()) -> None:
    """``stem``.md, .csv (per seed) and .json (per seed, aggregate, claims; paired tests of
    ``pairs``, (first, second) labels, when given), each atomically."""
    cols = columns(rows)
    with atomic_file(stem + ".md") as handle:
        handle.write(markdown(rows, command, title, claims=claims, fingerprint=fingerprint, pairs=pairs))
    with atomic_file(stem + ".csv", newline="") as handle:
        handle.write(f"# {command}\n")
        handle.write(",".join(["method", "seed"] + cols) + "\n")
        for row in rows:
            handle.write(",".join([row["method"], str(row["seed"])] +
                                  [f"{row[c]:.4f}" if row.get(c) is not None else "" for c in cols]) + "\n")
    spread = {column: between_within(rows, column) for column in ACCURACY_COLUMNS}
    record = {"command": command, "title": title, "fingerprint": fingerprint, "runs": list(rows),
              "aggregate": aggregate(rows), "claims": [result for _, result in claim_tests(rows, claims)],
              "open_set_selection": [s for s in (select_open_set(rows, name)
                                                 for name in sorted({r["method"] for r in rows})) if s],
              "between_within": {c: v for c, v in spread.items() if v}}
    if pairs:
        record["paired"] = paired_tests(rows, pairs)
    with atomic_file(stem + ".json") as handle:
        json.dump(record, handle, indent=1)


def code_versions(rows: Sequence[dict]) -> Dict[str, int]:
    """{code version: number of runs} over the rows that record one: ``eval/run_seeds.py``
    writes into every row it writes (training, re-evaluation, rescoring; since 2026-12-05) the
    ``git describe --always --dirty`` of its checkout."""
    versions: Dict[str, int] = {}
    for row in rows:
        if row.get("code"):
            versions[row["code"]] = versions.get(row["code"], 0) + 1
    return dict(sorted(versions.items()))


def read_rows(folder: str) -> List[dict]:
    """The rows of the finished runs under ``folder`` (one ``<method>_s<seed>.json`` each)."""
    rows = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.endswith(".json"):
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                rows.append(json.load(handle))
    return rows



def standing(row: dict, summaries: Dict[str, dict], table: str) -> List[str]:
    """Lines saying where one run's accuracies and pooled open-set AUROCs fall against the
    multi-seed ``summaries`` of its method ({column: summary}, as in ``aggregate``) read from ``table``."""
    lines = [f"this run against the multi-seed results of the same recipe ({table}):"]
    shown = [c for c in columns([row]) if c in summaries and (c in ACCURACY_COLUMNS or c.endswith("_auroc"))]
    for column in shown:
        s = summaries[column]
        inside = "inside" if s["min"] <= row[column] <= s["max"] else "OUTSIDE"
        lines.append(f"  {column:<28} {row[column]:5.1f}   seeds: n {s['n']}, mean {s['mean']:.1f} ± {s['std']:.1f}, "
                     f"range {s['min']:.1f}-{s['max']:.1f} ({inside} the range)")
    return lines
