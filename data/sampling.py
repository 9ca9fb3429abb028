"""Which items, in which order: seeded subsets of a list, and the training sampler.

``seeded_subset`` is the one way a tool takes part of a list (open-set fitting, t-SNE,
robustness, Grad-CAM, the fingerprint study, a capped validation list); the training order
comes from ``ShardedShuffleSampler``.
"""
from typing import List, Sequence

import numpy as np
import torch


def seeded_subset(items: Sequence, seed: int, total: int = 0, per_class: int = 0) -> List[int]:
    """Positions (sorted, so list order is kept) of a seeded, class-stratified subset of
    ``items`` ([(path, label)]).

    ``total > 0``: at most ``total`` items, every class keeping its share of the list
    (largest-remainder rounding, so the shares add up to ``total``). ``per_class > 0``: at
    most ``per_class`` items of every class. Both: the smaller of the two for each class.
    Within a class the items are drawn uniformly without replacement with
    ``np.random.default_rng(seed)``, classes in increasing label order. Neither limit, or a
    list within them, keeps everything.
    """
    if total < 0 or per_class < 0:
        raise ValueError(f"subset sizes must be >= 0, got total={total}, per_class={per_class}")
    labels = np.array([label for _, label in items], dtype=np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts.copy()
    if total and len(items) > total:
        exact = counts * total / len(items)
        quota = np.floor(exact).astype(int)
        for k in np.argsort(-(exact - quota), kind="stable")[: total - quota.sum()]:
            quota[k] += 1
    if per_class:
        quota = np.minimum(quota, per_class)
    if (quota == counts).all():
        return list(range(len(items)))
    rng = np.random.default_rng(seed)
    keep: List[int] = []
    for label, share in zip(classes, quota):
        keep += rng.choice(np.flatnonzero(labels == label), size=int(share), replace=False).tolist()
    return sorted(keep)


class ShardedShuffleSampler(torch.utils.data.Sampler):
    """One seeded permutation cut into global batches; rank r yields slice r of each.

    With one process this is a plain seeded shuffle (incomplete last batch dropped);
    with W processes the rank-ordered concatenation of the local batches equals the
    single-process batch, so DDP sees exactly the same global batches. The permutation
    of epoch e is seeded with ``seed * 100_003 + e``; keys are (epoch, index) pairs
    (see ``_CropGeometry.locate``).
    """

    def __init__(self, length: int, global_batch: int, rank: int, world: int, seed: int):
        self.length, self.global_batch, self.rank, self.world, self.seed = length, global_batch, rank, world, seed
        self.local = global_batch // world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (self.length // self.global_batch) * self.local

    def indices(self) -> list:
        """This rank's dataset indices of the current epoch, in order."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.length, generator=generator).tolist()
        picked = []
        for start in range(0, len(self) // self.local * self.global_batch, self.global_batch):
            first = start + self.rank * self.local
            picked += order[first:first + self.local]
        return picked

    def __iter__(self):
        return iter([(self.epoch, index) for index in self.indices()])
