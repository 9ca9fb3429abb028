"""Counts of the written lists, and the table printed at the end of a run."""
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple


@dataclass
class GenerationReport:
    """What one run wrote.

    counts: list file path -> {label: images} (label -1 for path-only lists and for
        images of unseen architectures), in writing order.
    path_only: the lists without labels (their -1 is not a column of the table).
    missing: source directories skipped under ``--allow_missing``.
    not_written: list files skipped because none of their sources had an image.
    held_out: images left out of the stage-1 lists because a validation, test or cross
        list of the same data root uses them.
    """
    mode: str
    seed: int
    save_path: str
    counts: Dict[str, Dict[int, int]] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)
    not_written: List[str] = field(default_factory=list)
    path_only: List[str] = field(default_factory=list)
    held_out: int = 0

    def add(self, path: str, items: Sequence[Tuple[str, int]], path_only: bool = False) -> None:
        self.counts[path] = dict(sorted(Counter(label for _, label in items).items()))
        if path_only:
            self.path_only.append(path)


def _list_name(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def format_report(report: GenerationReport) -> str:
    """A table: one row per written list, one column per label ('-': label absent; -1: unseen
    architecture), total."""
    labels = sorted({label for path, counts in report.counts.items() for label in counts
                     if path not in report.path_only})
    width = max([len(_list_name(p)) for p in report.counts] + [4])
    header = f"{'list':<{width}}" + "".join(f"{label:>8}" for label in labels) + f"{'total':>9}"
    lines = [f"mode {report.mode}, seed {report.seed}: images per list and label", header]
    for path, counts in report.counts.items():
        cells = "".join(f"{counts.get(label, '-'):>8}" for label in labels)
        lines.append(f"{_list_name(path):<{width}}{cells}{sum(counts.values()):>9}")
    lines.append(f"{len(report.counts)} list(s) written under {os.path.abspath(report.save_path)}")
    if report.held_out:
        lines.append(f"left out of stage 1: {report.held_out} image(s) that validation, test, cross or "
                     f"unseen lists of this data root use")
    for path in report.not_written:
        lines.append(f"not written (no source image): {path}")
    if report.missing:
        lines.append(f"missing source directories skipped ({len(report.missing)}):")
        lines += [f"  {rel_dir}" for rel_dir in report.missing]
    return "\n".join(lines)
