"""Listing images, seeded subsets and stratified splits.

Determinism: every random draw has its own generator,
``np.random.default_rng([seed, crc32(key)])``, where ``key`` names what is drawn (a
source directory for a per-directory cap, ``prefix/label`` for a class cap or a class
split). The draws therefore depend only on ``--seed`` and the sorted file list, not on
the order sources are visited, and skipping one source (``--allow_missing``) leaves
every other draw unchanged. File lists are sorted before any draw (SPEC section 7 fix).
"""
import math
import os
import zlib
from typing import List, Optional, Sequence, Tuple

import numpy as np

from data.image_io import IMAGE_EXTENSIONS


def stable_rng(seed: int, key: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the string ``key``."""
    return np.random.default_rng([int(seed), zlib.crc32(key.encode("utf-8"))])


def is_image_name(name: str) -> bool:
    """True for a visible file whose extension (any case) is in ``IMAGE_EXTENSIONS``."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_images(directory: str) -> List[str]:
    """Every image under ``directory`` (recursive), as sorted ``/``-separated relative paths.

    Hidden files and folders (names starting with '.', e.g. macOS ``._x.png``) are skipped.
    """
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel_root = os.path.relpath(root, directory)
        for name in files:
            if is_image_name(name):
                rel = name if rel_root == "." else os.path.join(rel_root, name)
                found.append(rel.replace(os.sep, "/"))
    return sorted(found)


def seeded_subset(paths: Sequence[str], cap: Optional[int],
                  rng: np.random.Generator) -> List[str]:
    """At most ``cap`` of ``paths``: all when under the cap, else a random subset; sorted."""
    paths = sorted(paths)
    if cap is None or len(paths) <= cap:
        return paths
    chosen = rng.choice(len(paths), size=cap, replace=False)
    return sorted(paths[i] for i in chosen)


def split_by_fractions(paths: Sequence[str], fractions: Sequence[float],
                       rng: np.random.Generator) -> List[List[str]]:
    """Shuffle sorted ``paths`` with ``rng`` and cut them into parts of the given fractions.

    Cut points are cumulative and rounded half up: part ``i`` ends at
    ``floor(n * sum(fractions[:i+1]) + 0.5)``, the last part takes the rest. For 80/10/10,
    n=10 gives 8/1/1 and n=20,000 gives 16,000/2,000/2,000. Each part is sorted.
    """
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"split fractions {list(fractions)} must be >= 0 and sum to 1")
    paths = sorted(paths)
    order = rng.permutation(len(paths))
    shuffled = [paths[i] for i in order]
    cuts, total = [0], 0.0
    for fraction in fractions[:-1]:
        total += fraction
        cuts.append(math.floor(len(paths) * total + 0.5))
    cuts.append(len(paths))
    return [sorted(shuffled[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]


def find_duplicates(groups: Sequence[Tuple[str, Sequence[str]]]) -> List[Tuple[str, str, str]]:
    """``(path, first group, second group)`` for every path found in two groups (or twice)."""
    seen, clashes = {}, []
    for name, paths in groups:
        for path in paths:
            if path in seen:
                clashes.append((path, seen[path], name))
            else:
                seen[path] = name
    return clashes
