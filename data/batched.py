"""The fast data path: batched resize / crop / normalise on the training device.

The dataset decodes each image once and hands over uint8 [3, s, s] squares plus the
crop corners it drew (with the same generator as the released-style ``pil`` path);
this module resizes a whole batch at once, cuts every crop with one ``gather`` on
uint8 data and converts only the crops to float.

Resize semantics (PIL bicubic, a = -0.5, antialiased support when shrinking;
PIL rounds to uint8 after its horizontal and again after its vertical pass):
- CPU: torch's uint8 antialiased bicubic kernel, a fixed-point port of Pillow's
  resampler (fastest on channels_last input);
- other devices (CUDA has no uint8 kernel for this mode): the same filter in float,
  applied as PIL does (horizontal pass, round half up, clamp; vertical pass, round,
  clamp).
Measured against ``PIL.Image.resize(BICUBIC)``: with an integer upscaling factor (the
paper's 128 -> 512, the toy's 64 -> 128) both are within 1 grey level on <= 0.1% of
values (the CPU path is usually bit-identical); with other ratios within 2 levels on
<= 2% of values (mean difference < 0.02 levels).
Both return uint8, so crops and normalisation are bit-identical to the ``pil`` path
wherever the resized pixel is (``tests/test_batched.py`` pins these tolerances).

``CachedBalancedMultiCropDataset`` keeps every decoded training image in memory as
uint8 (decoded once, up front, with threads), so an epoch costs no PNG/JPEG decoding.
"""
import time
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F
from data.datasets import BalancedMultiCropDataset, collate_squares
from data.preprocess import to_ship


def _resize_float_like_pil(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, C, h, w] -> uint8 [N, C, size, size]: float bicubic, rounded after each pass."""
    height = images.shape[-2]
    out = images.float()
    for shape in ((height, size), (size, size)):                 # horizontal, then vertical
        out = F.interpolate(out, size=shape, mode="bicubic", align_corners=False, antialias=True)
        out = out.add_(0.5).floor_().clamp_(0.0, 255.0)          # PIL: round half up, clip8
    return out.to(torch.uint8)


def resize_batch(images, size: int) -> torch.Tensor:
    """uint8 [N, C, h, w] -> uint8 [N, C, size, size], PIL-style bicubic (see module docstring).

    ``images`` may also be a list of uint8 [C, h_i, w_i] squares of different sides (a batch
    that mixes image sizes): each side is resized straight to ``size`` in one call per side,
    and the result keeps the list's order.
    """
    if isinstance(images, (list, tuple)):
        return _resize_mixed(list(images), size)
    if images.dtype != torch.uint8:
        raise ValueError(f"resize_batch expects uint8 images (0..255), got {images.dtype}")
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    if images.device.type == "cpu":        # fastest on channels_last input; output keeps the format
        return F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return _resize_float_like_pil(images, size)


def _resize_mixed(squares: list, size: int) -> torch.Tensor:
    """List of uint8 [C, h_i, w_i] -> uint8 [N, C, size, size], one batched resize per distinct shape."""
    if not squares:
        raise ValueError("resize_batch got an empty list of images")
    first = squares[0]
    out = torch.empty(len(squares), first.shape[0], size, size, dtype=torch.uint8, device=first.device)
    by_shape: dict = {}
    for position, square in enumerate(squares):
        by_shape.setdefault(tuple(square.shape), []).append(position)
    for positions in by_shape.values():
        group = torch.stack([squares[p] for p in positions])
        if group.device.type == "cpu":
            group = group.contiguous(memory_format=torch.channels_last)   # the fast CPU kernel's layout
        out[positions] = resize_batch(group, size)
    return out


def to_device(images, device: torch.device):
    """A batch of images (one tensor, or a list of squares of different sides) on ``device``."""
    if isinstance(images, (list, tuple)):
        return [image.to(device, non_blocking=True) for image in images]
    return images.to(device, non_blocking=True)


def gather_crops(images: torch.Tensor, offsets: torch.Tensor, crop: int) -> torch.Tensor:
    """Cut crops: images [N, C, S, S], offsets [N, n, 2] (y, x) -> [N, n, C, crop, crop] (a view).

    One gather over the flattened pixels, in the images' own memory format
    (channels_last images: ``index_select`` of rows of C values, without a layout copy).
    """
    n_images, channels, side = images.shape[0], images.shape[1], images.shape[-1]
    n_crops = offsets.shape[1]
    offsets = offsets.to(images.device, non_blocking=True)
    span = torch.arange(crop, device=images.device)
    rows = offsets[..., 0, None, None] + span[:, None]                       # [N, n, crop, 1]
    cols = offsets[..., 1, None, None] + span[None, :]                       # [N, n, 1, crop]
    index = (rows * side + cols).reshape(n_images, n_crops * crop * crop)
    if not images.is_contiguous() and images.is_contiguous(memory_format=torch.channels_last):
        pixels = images.permute(0, 2, 3, 1).reshape(n_images * side * side, channels)   # rows of C
        first = torch.arange(n_images, device=images.device)[:, None] * (side * side)
        patches = pixels.index_select(0, (index + first).reshape(-1))       # [N*n*crop*crop, C]
        return patches.reshape(n_images, n_crops, crop, crop, channels).permute(0, 1, 4, 2, 3)
    flat = images.reshape(n_images, channels, side * side)
    patches = torch.gather(flat, 2, index[:, None, :].expand(-1, channels, -1))   # [N, C, n*crop*crop]
    return patches.reshape(n_images, channels, n_crops, crop, crop).transpose(1, 2)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> contiguous float32 in [-1, 1] (mean 0.5, std 0.5), same arithmetic as the pil path."""
    out = images.to(torch.float32, memory_format=torch.contiguous_format)
    return out.div_(127.5).sub_(1.0)


def resize_crop_normalise(images, offsets: torch.Tensor, size: int, crop: int) -> torch.Tensor:
    """uint8 [N, 3, s, s] (or a list of N squares) + offsets [N, n, 2] -> float crops [N, n, 3, crop, crop]
    of the size-px images."""
    return normalise(gather_crops(resize_batch(images, size), offsets, crop))


def resize_normalise(images, size: int) -> torch.Tensor:
    """uint8 [N, 3, s, s] (or a list of N squares) -> normalised whole images [N, 3, size, size] (evaluation)."""
    return normalise(resize_batch(images, size))


class CropCollate:
    """DataLoader ``collate_fn`` doing the batched resize/crop/normalise in the loader worker.

    Used when the training device is the CPU: every worker processes whole batches
    with single-threaded kernels, while intra-op threads of the training process
    would stall on cores the workers occupy. Items (uint8 [G, 3, s, s], offsets
    [G, n, 2], labels [G]) -> (float views [B, G, n, 3, crop, crop], offsets, labels),
    the layout of the ``pil`` pipeline's batches.
    """

    def __init__(self, size: int, crop: int):
        self.size, self.crop = size, crop

    def __call__(self, items):
        images, offsets, labels = collate_squares(items)
        batch, group = labels.shape
        if isinstance(images, torch.Tensor):                   # one side: [B, G, 3, s, s] -> [B*G, 3, s, s]
            images = images.flatten(0, 1).contiguous(memory_format=torch.channels_last)
        views = resize_crop_normalise(images, offsets.flatten(0, 1), self.size, self.crop)
        return views.reshape(batch, group, *views.shape[1:]), offsets, labels


class CachedBalancedMultiCropDataset(BalancedMultiCropDataset):
    """``BalancedMultiCropDataset`` whose decoded images stay in memory as uint8.

    ``preload`` decodes every image of every class once (threads: Pillow releases
    the GIL while decoding), up to ``limit_bytes``; images beyond the limit are
    decoded on demand as before. Unreadable files are skipped exactly as the parent
    does. Cached arrays are read-only, so an in-place augmentation fails loudly
    instead of corrupting the cache. DataLoader workers inherit the cache on fork.
    Items come from the parent's ``__getitem__`` (only ``_load`` reads the cache), so
    they equal the uncached dataset's (``tests/test_batched.py`` pins that); with the
    batched pipeline a cached square at the shipping size is copied, never resized.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cache = [[None] * len(group) for group in self.groups]
        self.cached_bytes = 0

    def preload(self, limit_bytes: int, threads: int = 4) -> dict:
        """Decode up to ``limit_bytes`` of images; returns {"images", "bytes", "seconds", "complete"}."""
        started = time.perf_counter()
        keys = [(label, index) for label, group in enumerate(self.groups) for index in range(len(group))]
        complete = True
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for start in range(0, len(keys), 256):                           # bounded memory in flight
                chunk = keys[start:start + 256]
                arrays = pool.map(lambda key: self._cacheable(BalancedMultiCropDataset._load(self, *key)), chunk)
                for (label, index), array in zip(chunk, arrays):
                    if self.cached_bytes + array.nbytes > limit_bytes:
                        complete = False
                        break
                    array.flags.writeable = False
                    self.cache[label][index] = array
                    self.cached_bytes += array.nbytes
                if not complete:
                    break
        count = sum(item is not None for group in self.cache for item in group)
        return {"images": count, "bytes": self.cached_bytes, "complete": complete,
                "seconds": time.perf_counter() - started}

    def _cacheable(self, array):
        """What the cache keeps of a decoded square: with a second resize and no augmentation,
        the square after its first (PIL) resize, the very array ``to_ship`` would make of it, so
        a 1024-px in-the-wild image takes 128 x 128 x 3 bytes instead of 1024 x 1024 x 3."""
        if self.pipeline == "batched" and self.second_resize_size and self.augment is None:
            return to_ship(array, self.resize_size, self.second_resize_size)
        return array

    def _load(self, label: int, index: int):
        array = self.cache[label][index]
        return array if array is not None else super()._load(label, index)
