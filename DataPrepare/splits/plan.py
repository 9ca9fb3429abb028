"""What one set of annotation lists is made of: labelled source directories and caps.

A mode (celeba, lsun, in_the_wild, toy, pretrain, fingerprint) is turned into one or
more ``Plan`` objects by the layout modules; ``generate.py`` turns plans into files.
All directories are relative to the data root, written with ``/``.
"""
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

CROSS_KINDS = ("seed", "loss", "finetune", "dataset")
TRAIN_VAL_TEST = (("train", 0.8), ("val", 0.1), ("test", 0.1))


@dataclass(frozen=True)
class Source:
    """One directory of images (recursive) and the label all its images get.

    cap: at most this many images are taken from this directory, as a seeded random
        subset (sorted afterwards); None takes them all.
    """
    rel_dir: str
    label: int
    cap: Optional[int] = None


@dataclass
class Plan:
    """The lists sharing one file-name prefix.

    prefix: names the files, e.g. ``celeba`` -> ``celeba_train/annotations/celeba_train.txt``.
    closed: sources pooled per label, then split per class by ``fractions`` (stratified).
    fractions: ``((split name, fraction), ...)`` summing to 1; default train/val/test 0.8/0.1/0.1.
    class_cap: at most this many images per closed class after pooling (seeded subset).
    cross: ``[(kind, sources), ...]``; each kind is written whole (no split) to
        ``{prefix}_test/annotations/{prefix}_test_cross_{kind}.txt``.
    balance: when True, every closed class is also capped at the smallest class's
        count (seeded subset), so all classes have the same size.
    with_labels: False for pre-training lists (``path`` only).
    unseen: sources of architectures no model is trained on, written whole to
        ``{prefix}_test/annotations/{prefix}_test_unseen_arch.txt`` with label
        ``UNKNOWN_LABEL`` (-1, "no known architecture"; an open-set test list).
    whole: ``{split name: sources}`` added whole (no split, no cap) to that closed split,
        e.g. the toy zoo's whole photos in the stage-1 train list.
    """
    prefix: str
    closed: List[Source]
    fractions: Sequence[Tuple[str, float]] = TRAIN_VAL_TEST
    class_cap: Optional[int] = None
    cross: List[Tuple[str, List[Source]]] = field(default_factory=list)
    balance: bool = False
    with_labels: bool = True
    unseen: List[Source] = field(default_factory=list)
    whole: Dict[str, List[Source]] = field(default_factory=dict)

    def all_sources(self) -> List[Source]:
        return (list(self.closed) + [s for _, sources in self.cross for s in sources] + list(self.unseen)
                + [s for sources in self.whole.values() for s in sources])


def split_list_path(save_path: str, prefix: str, split: str) -> str:
    """``{save_path}/{prefix}_{split}/annotations/{prefix}_{split}.txt`` (SPEC section 7)."""
    name = f"{prefix}_{split}"
    return os.path.join(save_path, name, "annotations", name + ".txt")


def cross_list_path(save_path: str, prefix: str, kind: str) -> str:
    """``{save_path}/{prefix}_test/annotations/{prefix}_test_cross_{kind}.txt``."""
    if kind not in CROSS_KINDS:
        raise ValueError(f"unknown cross-test kind {kind!r}; expected one of {CROSS_KINDS}")
    return os.path.join(save_path, f"{prefix}_test", "annotations",
                        f"{prefix}_test_cross_{kind}.txt")


def unseen_list_path(save_path: str, prefix: str) -> str:
    """``{save_path}/{prefix}_test/annotations/{prefix}_test_unseen_arch.txt`` (open set)."""
    return os.path.join(save_path, f"{prefix}_test", "annotations", f"{prefix}_test_unseen_arch.txt")


def with_cap(sources: Sequence[Source], cap: Optional[int]) -> List[Source]:
    """The same sources, each capped at ``cap`` images."""
    return [Source(s.rel_dir, s.label, cap) for s in sources]
