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
import warnings
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from data.image_io import ImageLoadError, load_rgb
from data.preprocess import (centre_square, crop_offsets, final_size, multi_crop,
                             prepare_whole, ship_size, to_normalised_tensor, to_ship)

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

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, index))

    def make_views(self, array: np.ndarray, rng: np.random.Generator):
        """uint8 [h, w, 3] (already square) -> (views, offsets [n, 2])."""
        size = final_size(self.resize_size, self.second_resize_size)
        offsets = crop_offsets(size, self.multi_size, self.crop_num, rng)
        if self.pipeline == "batched":
            square = to_ship(array, self.crop_size, self.resize_size, self.second_resize_size)
            return torch.from_numpy(square).permute(2, 0, 1), torch.from_numpy(offsets)
        whole = prepare_whole(Image.fromarray(array), self.crop_size, self.resize_size,
                              self.second_resize_size)
        return multi_crop(whole, offsets, self.multi_size), torch.from_numpy(offsets)


class BalancedMultiCropDataset(_CropGeometry, Dataset):
    """Stage 2: one item = one image of every class (smaller classes cycle).

    Args:
        groups: ``groups[k]`` lists the image paths of class k (all non-empty).
        length: items per epoch (default: the largest class's size).
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

    def __getitem__(self, index: int):
        rng = self.rng(index)
        views, offsets = [], []
        for label in range(len(self.groups)):
            array = self._load(label, index % len(self.groups[label]))
            if self.augment is not None:
                array = self.augment(array, rng)
            view, offset = self.make_views(array, rng)
            views.append(view)
            offsets.append(offset)
        return torch.stack(views), torch.stack(offsets), torch.arange(len(self.groups))


class TransformDataset(_CropGeometry, Dataset):
    """Stage 1: an image, a random ``pretrain_crop`` crop, one of the 170 transformations.

    Args:
        paths: source images (real photos); transforms: ``[(name, fn(image, rng))]``.
    Training item: (images [1, ...], offsets [1, n, 2], labels [1] = transformation index).
    """

    def __init__(self, paths: Sequence[str], transforms: Sequence, pretrain_crop: int,
                 resize_size: int, multi_size: int, crop_num: int, pipeline: str = "pil",
                 seed: int = 0, length: int = 0):
        super().__init__(pretrain_crop, resize_size, 0, multi_size, crop_num, pipeline, seed)
        self.paths, self.transforms = list(paths), list(transforms)
        self.length = length or len(self.paths)
        self.failed: set = set()

    def __len__(self) -> int:
        return self.length

    def source(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """A random ``pretrain_crop`` square of image ``index``; unreadable files are skipped."""
        for step in range(len(self.paths)):
            path = self.paths[(index + step) % len(self.paths)]
            if path in self.failed:
                continue
            try:
                return random_square(np.asarray(load_rgb(path)), self.crop_size, rng)
            except ImageLoadError as error:
                self.failed.add(path)
                warnings.warn(f"skipping unreadable pre-training image: {error}")
        raise ValueError(f"none of the {len(self.paths)} pre-training images is readable")

    def __getitem__(self, index: int):
        rng = self.rng(index)
        array = self.source(index, rng)
        label = int(rng.integers(len(self.transforms)))
        array = self.transforms[label][1](array, rng)
        view, offsets = self.make_views(array, rng)
        return view[None], offsets[None], torch.tensor([label])


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
            square = to_ship(array, self.crop_size, self.resize_size, self.second)
            return torch.from_numpy(square).permute(2, 0, 1), label, index, True
        whole = prepare_whole(Image.fromarray(array), self.crop_size, self.resize_size, self.second)
        return to_normalised_tensor(whole), label, index, True

    def placeholder(self) -> torch.Tensor:
        if self.pipeline == "pil":
            size = final_size(self.resize_size, self.second)
            return torch.zeros(3, size, size)
        side = ship_size(self.crop_size, self.resize_size, self.second)
        return torch.zeros(3, side, side, dtype=torch.uint8)


class TransformEvalDataset(Dataset):
    """Stage-1 validation: deterministic (image, transformation) pairs as whole images.

    Item i uses image ``i % len(paths)``, its centre ``pretrain_crop`` square and
    transformation ``i % len(transforms)``, with a generator seeded by (seed, i);
    ``length`` defaults to enough items for every transformation twice.
    Item: (image, label, index, ok) like ``WholeImageDataset``.
    """

    def __init__(self, paths: Sequence[str], transforms: Sequence, pretrain_crop: int,
                 resize_size: int, pipeline: str = "pil", seed: int = 0, length: int = 0):
        self.paths, self.transforms = list(paths), list(transforms)
        self.crop, self.resize_size, self.pipeline, self.seed = pretrain_crop, resize_size, pipeline, seed
        self.length = length or max(len(self.paths), 2 * len(self.transforms))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        label = index % len(self.transforms)
        path = self.paths[index % len(self.paths)]
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
