"""Turn a mode into annotation lists on disk (SPEC sections 4, 7 and 10).

Modes: celeba, lsun (real_layout.py), in_the_wild (in_the_wild.py), toy, pretrain and
fingerprint (toy_layout.py). Each closed class is pooled from its sources (each source
already capped), capped again per class if the plan says so, shuffled and cut
80/10/10 (90/10 for pretrain, 80/20 for fingerprint), see collect.py for the seeding.
Cross-test lists and the open-set list of unseen architectures (label -1, toy mode)
are written whole. Every list is sorted by (label, path), so running
twice gives byte-identical files.
"""
import functools
import os
from collections import defaultdict
import warnings
from typing import Callable, Dict, FrozenSet, List, Optional, Tuple

from data.annotations import UNKNOWN_LABEL, write_annotations

from .collect import find_duplicates, seeded_subset, split_by_fractions, stable_rng
from .in_the_wild import in_the_wild_plans
from .plan import Plan, cross_list_path, split_list_path, unseen_list_path
from .real_layout import real_layout_plans
from .report import GenerationReport, format_report
from .sources import SourceReader
from .toy_layout import fingerprint_plans, pretrain_plans, toy_plans

Item = Tuple[str, int]
PlanBuilder = Callable[[str, Optional[int], Optional[int]], List[Plan]]

MODES: Dict[str, PlanBuilder] = {
    "celeba": functools.partial(real_layout_plans, "celeba"),
    "lsun": functools.partial(real_layout_plans, "lsun"),
    "in_the_wild": in_the_wild_plans,
    "toy": toy_plans,
    "pretrain": pretrain_plans,
    "fingerprint": fingerprint_plans,
}


def _check_arguments(mode: str, data_root: str, seed: int,
                     caps: Dict[str, Optional[int]]) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}")
    if not os.path.isdir(data_root):
        raise ValueError(f"mode {mode!r}: data root {os.path.abspath(data_root)} is not a "
                         f"directory; check --data_root")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed!r}")
    for name, cap in caps.items():
        if cap is not None and (not isinstance(cap, int) or cap < 1):
            raise ValueError(f"--{name} must be a positive integer, got {cap!r}")


def closed_lists(plan: Plan, reader: SourceReader,
                 exclude: FrozenSet[str] = frozenset()) -> Dict[str, List[Item]]:
    """``{split name: [(path, label), ...]}``: stratified per-class split of the closed set,
    leaving out the paths in ``exclude`` before splitting."""
    by_label: Dict[int, List[str]] = defaultdict(list)
    per_source = [(s.rel_dir, [p for p in reader.read(s) if p not in exclude]) for s in plan.closed]
    for source, (_, paths) in zip(plan.closed, per_source):
        by_label[source.label] += paths
    _raise_on_overlap(plan.prefix, find_duplicates(per_source))
    by_label = {label: paths for label, paths in by_label.items() if paths}
    cap = plan.class_cap
    if plan.balance and by_label:
        smallest = min(len(paths) for paths in by_label.values())
        cap = smallest if cap is None else min(cap, smallest)
    names = [name for name, _ in plan.fractions]
    fractions = [fraction for _, fraction in plan.fractions]
    splits: Dict[str, List[Item]] = {name: [] for name in names}
    for label in sorted(by_label):
        key = f"{plan.prefix}/class{label}"
        paths = seeded_subset(by_label[label], cap, stable_rng(reader.seed, key + "/cap"))
        parts = split_by_fractions(paths, fractions, stable_rng(reader.seed, key + "/split"))
        for name, part in zip(names, parts):
            splits[name] += [(path, label) for path in part]
    for name, sources in plan.whole.items():
        splits[name] += [(path, s.label) for s in sources for path in reader.read(s)]
    return splits


def cross_lists(plan: Plan, reader: SourceReader,
                closed: Dict[str, List[Item]]) -> Dict[str, List[Item]]:
    """``{kind: [(path, label), ...]}``; no cross image may be in the closed set."""
    closed_paths = [path for items in closed.values() for path, _ in items]
    lists = {}
    for kind, sources in plan.cross:
        items = [(path, s.label) for s in sources for path in reader.read(s)]
        groups = [("closed set", closed_paths), (f"cross_{kind}", [p for p, _ in items])]
        _raise_on_overlap(plan.prefix, find_duplicates(groups))
        lists[kind] = items
    return lists


def unseen_list(plan: Plan, reader: SourceReader, closed: Dict[str, List[Item]]) -> List[Item]:
    """``[(path, -1), ...]`` of the plan's unseen-architecture sources; none may be in the closed set."""
    if any(s.label != UNKNOWN_LABEL for s in plan.unseen):
        raise ValueError(f"{plan.prefix}: unseen-architecture sources must carry label {UNKNOWN_LABEL}")
    items = [(path, UNKNOWN_LABEL) for s in plan.unseen for path in reader.read(s)]
    closed_paths = [path for split in closed.values() for path, _ in split]
    _raise_on_overlap(plan.prefix, find_duplicates([("closed set", closed_paths),
                                                    ("unseen_arch", [p for p, _ in items])]))
    return items


# the modes whose validation, test, cross and unseen lists stage 1 must never see
STAGE2_MODES = ("toy", "celeba", "lsun", "in_the_wild")


def held_out_images(data_root: str, seed: int) -> FrozenSet[str]:
    """Every image that a stage-2 mode would put in a validation, test, cross-test or
    unseen list when run on ``data_root`` with ``seed`` and its default caps.

    Stage 1 (``pretrain``) leaves these out: on the toy zoo they are real/A's validation and
    test images and real/B (cross_dataset); on the authors' layout the real CelebA/LSUN
    images of the closed test splits and of the other dataset's cross_dataset list, and the
    in-the-wild real test folders. Modes whose layout is absent contribute nothing.
    """
    held: set = set()
    for mode in STAGE2_MODES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # absent directories of other layouts
            try:
                plans = MODES[mode](data_root, None, None)
            except ValueError:                        # not this mode's layout at all
                continue
            reader = SourceReader(mode, data_root, seed, allow_missing=True)
            sources = [s for plan in plans for s in plan.all_sources()]
            reader.check_exist(sources)
            if all(s.rel_dir in reader.missing for s in sources):
                continue
            for plan in plans:
                closed = closed_lists(plan, reader)
                lists = [items for name, items in closed.items() if name != "train"]
                lists += list(cross_lists(plan, reader, closed).values())
                if plan.unseen:
                    lists.append(unseen_list(plan, reader, closed))
                held.update(path for items in lists for path, _ in items)
    return frozenset(held)


def _raise_on_overlap(prefix: str, clashes: List[Tuple[str, str, str]]) -> None:
    if clashes:
        path, first, second = clashes[0]
        raise ValueError(f"{prefix}: {len(clashes)} image(s) would appear twice, e.g. {path} "
                         f"in {first} and in {second}; source directories must not overlap")


def _write(path: str, items: List[Item], plan: Plan, report: GenerationReport) -> None:
    if not items:
        report.not_written.append(path)
        return
    items = sorted(items, key=lambda item: (item[1], item[0]))
    labelled = items if plan.with_labels else [(p, -1) for p, _ in items]
    write_annotations(path, labelled, with_labels=plan.with_labels)
    report.add(path, labelled, path_only=not plan.with_labels)


def generate_lists(mode: str, data_root: str, save_path: str, seed: int = 0,
                   allow_missing: bool = False, max_per_class: Optional[int] = None,
                   max_per_cross_dir: Optional[int] = None,
                   echo: Callable[[str], None] = print) -> GenerationReport:
    """Write every list of ``mode`` under ``save_path`` and return the counts.

    Args:
        mode: one of ``MODES``.
        data_root: the dataset root the layout is relative to.
        save_path: where ``{prefix}_{split}/annotations/{prefix}_{split}.txt`` go.
        seed: seeds every cap subset and split (see collect.py).
        allow_missing: a missing/empty source directory warns and is skipped instead
            of raising; lists left empty are not written. Both are summarised.
        max_per_class, max_per_cross_dir: override the mode's caps (None keeps them).
        echo: receives the count table and the summary (``print`` by default).
    Raises:
        ValueError: bad argument, missing or empty source directory (naming it and the
            mode), or an image that would be in two lists (overlapping sources).
    """
    caps = {"max_per_class": max_per_class, "max_per_cross_dir": max_per_cross_dir}
    _check_arguments(mode, data_root, seed, caps)
    plans = MODES[mode](data_root, max_per_class, max_per_cross_dir)
    reader = SourceReader(mode, data_root, seed, allow_missing)
    reader.check_exist([s for plan in plans for s in plan.all_sources()])
    report = GenerationReport(mode=mode, seed=seed, save_path=save_path)
    exclude = held_out_images(data_root, seed) if mode == "pretrain" else frozenset()
    for plan in plans:
        closed = closed_lists(plan, reader, exclude)
        for name, items in closed.items():
            _write(split_list_path(save_path, plan.prefix, name), items, plan, report)
        for kind, items in cross_lists(plan, reader, closed).items():
            _write(cross_list_path(save_path, plan.prefix, kind), items, plan, report)
        if plan.unseen:
            _write(unseen_list_path(save_path, plan.prefix), unseen_list(plan, reader, closed), plan, report)
    report.missing = list(reader.missing)
    if exclude:
        pool = {path for plan in plans for s in plan.all_sources() for path in reader.read(s)}
        report.held_out = len(pool & exclude)
    echo(format_report(report))
    return report
