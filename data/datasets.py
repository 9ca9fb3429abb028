"""Datasets of DNA-Det (SPEC sections 4 and 5).

Every training dataset yields items shaped alike so one training step serves both
stages: ``(images, offsets, labels)`` where, for G images per item,
- pipeline ``pil`` (released): images = float crops [G, n, 3, m, m] in [-1, 1];
- pipeline ``batched`` (fast): images = uint8 squares [G, 3, c, c] to be resized and
  cropped on the device by ``data.batched``; ``offsets`` [G, n, 2] are the crop
  corners in the resized image (drawn here, so both pipelines crop alike);
labels [G]. Randomness comes from ``np.random.default_rng((seed, epoch, index))``,
so an item is the same whatever the worker count, and a resumed run sees the same
data as an uninterrupted one. Call ``set_epoch`` before each epoch.
"""
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate

from data.image_io import ImageLoadError, load_rgb
from data.preprocess import (centre_square, crop_offsets, final_size, multi_crop,
                             prepare_whole, to_normalised_tensor, to_ship)

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class _CropGeometry:
    """Shared preprocessing settings and the two output pipelines."""

    def __init__(self, crop_size: int, resize_size: int, second_resize_size: int,
                 multi_size: int, crop_num: int, pipeline: str, seed: int):
        if pipeline not in ("pil", "batched"):
            raise ValueError(f"pipeline must be 'pil' or 'batched', got {pipeline!r}")
        self.crop_size, self.resize_size = crop_size, resize_size
        self.second_resize_size, self.multi_size = second_resize_size, multi_size
        self.crop_num, self.pipeline, self.seed = crop_num, pipeline, seed
        self.epoch = 0
        self._orders: dict = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def locate(self, key) -> int:
        """An item key is an index, or (epoch, index) from an epoch-aware sampler: persistent
        DataLoader workers hold their own copy of the dataset, so the epoch travels with the key."""
        if isinstance(key, tuple):
            self.epoch, key = key
        return key

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, index))

    def pick(self, stream: int, index: int, count: int, slot: int = 0, slots: int = 1) -> int:
        """Which of ``count`` images item ``index`` of this epoch uses from ``stream`` (a class);
        an item that takes ``slots`` images of one stream asks for each ``slot``.

        Each stream reads an endless chain of seeded permutations of its images, epoch after
        epoch (slot s of item i of epoch e is position (e * len(self) + i) * slots + s): an epoch
        of any length draws fresh images, consecutive epochs cover every image before repeating
        one, and the choice depends only on (seed, stream, epoch, index), so a resumed run sees
        the same data.
        """
        cycle, offset = divmod((self.epoch * len(self) + index) * slots + slot, count)
        key = (stream, cycle, count)
        if key not in self._orders:
            if len(self._orders) >= 64:                    # only a few cycles are in use at a time
                self._orders.clear()
            self._orders[key] = np.random.default_rng((self.seed, stream, cycle)).permutation(count)
        return int(self._orders[key][offset])

    def make_views(self, array: np.ndarray, rng: np.random.Generator):
        """uint8 [h, w, 3] (already square) -> (views, offsets [n, 2])."""
        size = final_size(self.resize_size, self.second_resize_size)
        offsets = crop_offsets(size, self.multi_size, self.crop_num, rng)
        if self.pipeline == "batched":
            square = to_ship(array, self.resize_size, self.second_resize_size)
            return torch.from_numpy(square).permute(2, 0, 1), torch.from_numpy(offsets)
        whole = prepare_whole(Image.fromarray(array), self.crop_size, self.resize_size,
                              self.second_resize_size)
        return multi_crop(whole, offsets, self.multi_size), torch.from_numpy(offsets)


def stack_squares(squares: Sequence[torch.Tensor]):
    """One tensor [N, ...] when the squares share a shape, else the list itself.

    The fast path ships each square at its own side (``to_ship``); a batch that mixes sides
    stays a list, and ``data.batched.resize_batch`` resizes it side by side.
    """
    if all(square.shape == squares[0].shape for square in squares):
        return torch.stack(list(squares))
    return list(squares)


def collate_squares(items):
    """``collate_fn`` for items whose first element may be squares of different sides.

    Like ``default_collate``, except that first elements of different shapes (or lists of
    them) are flattened into one list of squares instead of failing.
    """
    firsts = [item[0] for item in items]
    rest = default_collate([(0, *item[1:]) for item in items])[1:]
    if all(isinstance(first, torch.Tensor) and first.shape == firsts[0].shape for first in firsts):
        return (torch.stack(firsts), *rest)
    return (_flatten_squares(firsts), *rest)


def _flatten_squares(firsts: list) -> list:
    """Items' squares, in order: a [3, s, s] square, a [G, 3, s, s] stack or a list of squares each."""
    flat = []
    for first in firsts:
        if isinstance(first, list):
            flat.extend(first)
        elif first.dim() == 4:
            flat.extend(first.unbind(0))
        else:
            flat.append(first)
    return flat


class BalancedMultiCropDataset(_CropGeometry, Dataset):
    """Stage 2: one item = one image of every class (smaller classes cycle).

    Args:
        groups: ``groups[k]`` lists the image paths of class k (all non-empty).
        length: items per epoch (default: the largest class's size). Which image of each
            class an item holds comes from ``pick``: every epoch draws fresh images and
            consecutive epochs cover all of them, whatever ``length`` is.
        augment: optional ``fn(uint8 image, rng) -> image`` applied before resizing
            (random post-processings for robustness training).
    Item: (images [K, ...], offsets [K, n, 2], labels [K] = 0..K-1).
    """

    def __init__(self, groups: Sequence[Sequence[str]], crop_size: int, resize_size: int,
                 second_resize_size: int, multi_size: int, crop_num: int, pipeline: str = "pil",
                 seed: int = 0, length: int = 0, augment: Optional[Augment] = None):
        super().__init__(crop_size, resize_size, second_resize_size, multi_size, crop_num, pipeline, seed)
        self.groups = [list(group) for group in groups]
        self.length = length or max(len(group) for group in self.groups)
        self.augment = augment
        self.failed: set = set()

    def __len__(self) -> int:
        return self.length

    def _load(self, label: int, index: int) -> np.ndarray:
        """Image ``index`` of class ``label``; an unreadable file is reported and the next one used."""
        group = self.groups[label]
        for step in range(len(group)):
            path = group[(index + step) % len(group)]
            if path in self.failed:
                continue
            try:
                return np.asarray(centre_square(load_rgb(path), self.crop_size))
            except ImageLoadError as error:
                self.failed.add(path)
                warnings.warn(f"skipping unreadable training image: {error}")
        raise ValueError(f"no readable image left in class {label} ({len(group)} files)")

    def __getitem__(self, index):
        index = self.locate(index)
        rng = self.rng(index)
        views, offsets = [], []
        for label, group in enumerate(self.groups):
            array = self._load(label, self.pick(label, index, len(group)))
            if self.augment is not None:
                array = self.augment(array, rng)
            view, offset = self.make_views(array, rng)
            views.append(view)
            offsets.append(offset)
        return stack_squares(views), torch.stack(offsets), torch.arange(len(self.groups))


class TransformDataset(_CropGeometry, Dataset):
    """Stage 1: an image, a random ``pretrain_crop`` crop, one of the 170 transformations.

    Args:
        paths: source images (real photos); transforms: ``[(name, fn(image, rng))]``.
        images_per_label: source images per item that get the same transformation (1 in the
            released code). With 170 classes a batch rarely holds one transformation twice, so
            the contrastive loss only finds positives among an image's own crops; 2 gives every
            image a positive from another photo, a pull towards the transformation, not the content.
        multiscale: take a square of random side (log-uniform between ``pretrain_crop`` and the
            short side) resized to ``pretrain_crop`` instead of a plain crop, for large photos
            whose plain crops would be far smoother than the images to attribute (the toy zoo).
    Training item: (images [G, ...], offsets [G, n, 2], labels [G] = transformation index),
    G = ``images_per_label``.
    """

    def __init__(self, paths: Sequence[str], transforms: Sequence, pretrain_crop: int,
                 resize_size: int, multi_size: int, crop_num: int, pipeline: str = "pil",
                 seed: int = 0, length: int = 0, multiscale: bool = False, images_per_label: int = 1):
        super().__init__(pretrain_crop, resize_size, 0, multi_size, crop_num, pipeline, seed)
        self.paths, self.transforms, self.multiscale = list(paths), list(transforms), multiscale
        if images_per_label < 1:
            raise ValueError(f"pretrain_images_per_label must be >= 1, got {images_per_label}")
        self.images_per_label = images_per_label
        self.length = length or len(self.paths)
        self.failed: set = set()
        self.decoded: dict = {}             # path -> read-only uint8 image (``preload``)

    def preload(self, limit_bytes: int, threads: int = 4) -> dict:
        """Decode source images once, in order, up to ``limit_bytes`` (few, large photos are the
        toy case); the rest is decoded per item. Returns {"images", "bytes", "seconds", "complete"}."""
        started, used = time.perf_counter(), 0
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for path, array in zip(self.paths, pool.map(_decode_or_none, self.paths)):
                if array is None:
                    continue                 # reported when an item reads it
                if used + array.nbytes > limit_bytes:
                    break
                array.flags.writeable = False
                self.decoded[path], used = array, used + array.nbytes
        return {"images": len(self.decoded), "bytes": used, "seconds": time.perf_counter() - started,
                "complete": len(self.decoded) == len(self.paths)}

    def __len__(self) -> int:
        return self.length

    def source(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """A random ``pretrain_crop`` square of image ``index``; unreadable files are skipped."""
        for step in range(len(self.paths)):
            path = self.paths[(index + step) % len(self.paths)]
            if path in self.failed:
                continue
            try:
                array = self.decoded[path] if path in self.decoded else np.asarray(load_rgb(path))
                if self.multiscale:
                    return random_zoomed_square(array, self.crop_size, rng)
                return random_square(array, self.crop_size, rng)
            except ImageLoadError as error:
                self.failed.add(path)
                warnings.warn(f"skipping unreadable pre-training image: {error}")
        raise ValueError(f"none of the {len(self.paths)} pre-training images is readable")

    def __getitem__(self, index):
        index = self.locate(index)
        rng = self.rng(index)
        label = int(rng.integers(len(self.transforms)))
        views, offsets = [], []
        for slot in range(self.images_per_label):
            array = self.source(self.pick(0, index, len(self.paths), slot, self.images_per_label), rng)
            view, offset = self.make_views(self.transforms[label][1](array, rng), rng)
            views.append(view)
            offsets.append(offset)
        labels = torch.full((self.images_per_label,), label, dtype=torch.long)
        return stack_squares(views), torch.stack(offsets), labels


def _decode_or_none(path: str) -> Optional[np.ndarray]:
    try:
        return np.asarray(load_rgb(path))
    except ImageLoadError:
        return None


def random_zoomed_square(array: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A random square of log-uniform side in [``side``, short side], resized to ``side`` px with
    PIL bicubic (antialiased), as the toy zoo cuts its real crops."""
    height, width = array.shape[:2]
    if min(height, width) <= side:
        return random_square(array, side, rng)
    span = int(round(np.exp(rng.uniform(np.log(side), np.log(min(height, width))))))
    top, left = int(rng.integers(height - span + 1)), int(rng.integers(width - span + 1))
    square = Image.fromarray(np.ascontiguousarray(array[top:top + span, left:left + span]))
    return np.asarray(square.resize((side, side), Image.BICUBIC), dtype=np.uint8)


def random_square(array: np.ndarray, side: int, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """A ``side``-px crop, at a random place drawn from ``rng`` or centred when ``rng`` is None;
    smaller images are first upscaled bicubically."""
    height, width = array.shape[:2]
    if min(height, width) < side:
        scale = side / min(height, width)
        size = (max(side, round(width * scale)), max(side, round(height * scale)))
        array = np.asarray(Image.fromarray(array).resize(size, Image.BICUBIC))
        height, width = array.shape[:2]
    if rng is not None:
        top, left = int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1))
    else:
        top, left = (height - side) // 2, (width - side) // 2
    return np.ascontiguousarray(array[top:top + side, left:left + side])


class WholeImageDataset(Dataset):
    """Evaluation: the whole preprocessed image, one item per list entry.

    Args:
        items: ``[(path, label)]``; perturb: optional ``fn(uint8 image, rng)`` applied
            after decoding (robustness tests), deterministic per index.
        pipeline: ``pil`` -> float [3, R, R] in [-1, 1]; ``batched`` -> uint8 [3, c, c]
            to be resized on the device.
    Item: (image, label, index, ok). An unreadable file gives ok = False and a zero
    image: ``evaluate`` counts, reports and leaves it out of the metrics.
    """

    def __init__(self, items: Sequence, crop_size: int, resize_size: int, second_resize_size: int = 0,
                 pipeline: str = "pil", perturb: Optional[Augment] = None, seed: int = 0):
        self.items = list(items)
        self.crop_size, self.resize_size, self.second = crop_size, resize_size, second_resize_size
        self.pipeline, self.perturb, self.seed = pipeline, perturb, seed

    def __len__(self) -> int:
        return len(self.items)

    def _square(self, path: str, index: int) -> np.ndarray:
        array = np.asarray(centre_square(load_rgb(path), self.crop_size))
        if self.perturb is not None:
            array = self.perturb(array, np.random.default_rng((self.seed, index)))
        return array

    def __getitem__(self, index: int):
        path, label = self.items[index]
        try:
            array = self._square(path, index)
        except ImageLoadError as error:
            warnings.warn(f"skipping unreadable test image: {error}")
            return self.placeholder(), label, index, False
        if self.pipeline == "batched":
            square = to_ship(array, self.resize_size, self.second)
            return torch.from_numpy(square).permute(2, 0, 1), label, index, True
        whole = prepare_whole(Image.fromarray(array), self.crop_size, self.resize_size, self.second)
        return to_normalised_tensor(whole), label, index, True

    def placeholder(self) -> torch.Tensor:
        if self.pipeline == "pil":
            size = final_size(self.resize_size, self.second)
            return torch.zeros(3, size, size)
        side = self.resize_size if self.second else self.crop_size   # any side: never resized
        return torch.zeros(3, side, side, dtype=torch.uint8)


class TransformEvalDataset(Dataset):
    """Stage-1 validation: deterministic (image, transformation) pairs as whole images.

    Item i uses transformation t = ``i % len(transforms)`` on the centre ``pretrain_crop``
    square of image ``(i // len(transforms) + t * per_class) % len(paths)``, with a generator
    seeded by (seed, i): each transformation sees ``per_class`` consecutive images (distinct
    when there are enough), and the transformations spread over all images;
    ``length`` defaults to every transformation ten times (``pretrain_val_per_class``).
    Item: (image, label, index, ok) like ``WholeImageDataset``.
    """

    def __init__(self, paths: Sequence[str], transforms: Sequence, pretrain_crop: int,
                 resize_size: int, pipeline: str = "pil", seed: int = 0, length: int = 0):
        self.paths, self.transforms = list(paths), list(transforms)
        self.crop, self.resize_size, self.pipeline, self.seed = pretrain_crop, resize_size, pipeline, seed
        self.length = length or 10 * len(self.transforms)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        label = index % len(self.transforms)
        per_class = -(-self.length // len(self.transforms))
        path = self.paths[(index // len(self.transforms) + label * per_class) % len(self.paths)]
        try:
            array = random_square(np.asarray(load_rgb(path)), self.crop)
        except ImageLoadError as error:
            warnings.warn(f"skipping unreadable validation image: {error}")
            return self.placeholder(), label, index, False
        array = self.transforms[label][1](array, np.random.default_rng((self.seed, index)))
        if self.pipeline == "batched":
            return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1), label, index, True
        whole = prepare_whole(Image.fromarray(array), self.crop, self.resize_size)
        return to_normalised_tensor(whole), label, index, True

    def placeholder(self) -> torch.Tensor:
        if self.pipeline == "pil":
            return torch.zeros(3, self.resize_size, self.resize_size)
        return torch.zeros(3, self.crop, self.crop, dtype=torch.uint8)
