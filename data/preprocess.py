"""Per-image preprocessing of SPEC section 4, in Pillow/NumPy (the released path).

Whole image: centre-crop non-square images to ``crop_size``, resize to
``resize_size`` with PIL bicubic, optionally resize again to ``second_resize_size``.
Training: ``crop_num`` random crops of ``multi_size`` px. Pixels are normalised
with mean 0.5 and std 0.5 per channel, i.e. to [-1, 1].
"""
from typing import Optional

import numpy as np
import torch
from PIL import Image


def centre_square(image: Image.Image, crop_size: int) -> Image.Image:
    """Centre-crop a non-square image to ``crop_size`` (or its shorter side if smaller).

    Square images are returned unchanged, as in the released pipeline.
    """
    width, height = image.size
    if width == height:
        return image
    side = min(crop_size, width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))


def resize_whole(image: Image.Image, resize_size: int, second_resize_size: int = 0) -> Image.Image:
    """PIL bicubic resize to ``resize_size`` square, then to ``second_resize_size`` if > 0."""
    image = image.resize((resize_size, resize_size), Image.BICUBIC)
    if second_resize_size:
        image = image.resize((second_resize_size, second_resize_size), Image.BICUBIC)
    return image


def crop_offsets(size: int, crop: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random top-left corners [count, 2] (y, x) of ``crop``-px crops in a ``size``-px image."""
    return rng.integers(0, size - crop + 1, size=(count, 2))


def to_normalised_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [3, H, W] in [-1, 1] (mean 0.5, std 0.5)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float()
    return tensor.div_(127.5).sub_(1.0)


def multi_crop(array: np.ndarray, offsets: np.ndarray, crop: int) -> torch.Tensor:
    """Cut crops at ``offsets`` [n, 2] from uint8 [H, W, 3]; returns [n, 3, crop, crop] in [-1, 1]."""
    patches = np.stack([array[y:y + crop, x:x + crop] for y, x in offsets])  # [n, crop, crop, 3]
    return torch.from_numpy(patches).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def prepare_whole(image: Image.Image, crop_size: int, resize_size: int,
                  second_resize_size: int = 0) -> np.ndarray:
    """Square, resize (twice if asked): the uint8 [R, R, 3] image the network sees."""
    image = resize_whole(centre_square(image, crop_size), resize_size, second_resize_size)
    return np.array(image, dtype=np.uint8)  # writable copy


def final_size(resize_size: int, second_resize_size: Optional[int]) -> int:
    """Side of the image the network sees."""
    return second_resize_size or resize_size


def to_ship(array: np.ndarray, resize_size: int, second_resize_size: int) -> np.ndarray:
    """Square uint8 [h, h, 3] -> the uint8 image the fast path hands to the device, which does the last resize.

    Without a second resize that is the square itself, at whatever side it has, so the device
    resizes it straight to ``resize_size`` as PIL does (squares of other sides than
    ``crop_size`` are not resized twice); with one, the first resize (to ``resize_size``)
    happens here with PIL and only the second on the device. Always a writable copy (cached
    arrays are read-only), safe for ``torch.from_numpy``.
    """
    if second_resize_size and array.shape[:2] != (resize_size, resize_size):
        return np.array(Image.fromarray(array).resize((resize_size, resize_size), Image.BICUBIC), dtype=np.uint8)
    return np.array(array, dtype=np.uint8)


def scale_note(width: int, height: int, crop_size: int, resize_size: int, limit: float = 2.0) -> str:
    """Why the model may not see an image as it saw its training images, or ''.

    Training images are ``crop_size``-px squares, resized by ``resize_size / crop_size``. An
    image is resized by ``resize_size / side`` instead, where ``side`` is its side (square) or
    the centre crop's; when that differs from the training factor by more than ``limit``
    times, the resize itself changes the traces the model reads (the robustness curves show
    resizing erases them). A non-square image is cut to its centre ``crop_size`` square; when
    that keeps less than ``1 / limit`` of its area the note says so.
    """
    side = width if width == height else min(crop_size, width, height)
    notes = []
    relative = crop_size / side          # this image's resize factor / the training images'
    if relative > limit or relative < 1 / limit:
        notes.append(f"resized by {resize_size / side:.2g}x where training images were resized by "
                     f"{resize_size / crop_size:.2g}x ({width}x{height} px; the model was trained on "
                     f"{crop_size}-px images)")
    if width != height and side * side < width * height / limit:
        notes.append(f"only the centre {side}x{side} px ({100 * side * side / (width * height):.0f}% of "
                     f"the {width}x{height} image) is looked at")
    return "; ".join(notes)
