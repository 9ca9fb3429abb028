"""The 170 image transformations of stage-1 pre-training (SPEC section 5).

Stage 1 trains the network to say which transformation was applied to an image;
the label is the transformation's index in ``pretrain_transforms()``:

====================  =======  ===================================================
indices               count    transformation
====================  =======  ===================================================
0 - 23                24       JPEG, quality q = 30, 33, ..., 99
24 - 47               24       double JPEG, q1 from the same 24 values, q2 from
                               ``DOUBLE_JPEG_SECOND_QUALITIES`` (pairwise)
48 - 61               14       Gaussian blur, kernel k = 3, 5, ..., 29, sigma from k
                               as OpenCV derives it for sigma 0
62 - 75               14       median blur, kernel k = 3, 5, ..., 29
76 - 155              80       down-then-up resize, scale-major: for s in 0.15, 0.20,
                               ..., 0.90, for interpolation in OpenCV codes 0..4
                               (nearest, linear, cubic, area, lanczos4)
156 - 169             14       additive Gaussian noise, variance v = 10, 13, ..., 49
====================  =======  ===================================================

Conventions: an image is a uint8 ``np.ndarray`` of shape ``[H, W, 3]`` in RGB order.
Every transformation is a pure function ``fn(image, rng) -> image`` returning a new
C-contiguous array of the same shape and dtype; it never modifies its input. Only the
noise draws from ``rng`` (an ``np.random.Generator``); the others ignore it.

JPEG goes through OpenCV (libjpeg, default 4:2:0 chroma subsampling): the RGB image is
converted to BGR before ``cv2.imencode`` and the decoded BGR back to RGB, so the codec
sees the true colours.
"""
import functools
import math
from typing import Callable, List, Tuple

import cv2
import numpy as np

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]

JPEG_QUALITIES = tuple(range(30, 100, 3))  # 30, 33, ..., 99 (24)
DOUBLE_JPEG_SECOND_QUALITIES = (39, 99, 36, 93, 60, 75, 81, 39, 63, 69, 60, 87,
                                90, 48, 81, 75, 72, 78, 54, 33, 81, 30, 36, 99)
BLUR_KERNEL_SIZES = tuple(range(3, 30, 2))  # 3, 5, ..., 29 (14)
RESIZE_SCALES = tuple((15 + 5 * i) / 100 for i in range(16))  # 0.15, 0.20, ..., 0.90
INTERPOLATIONS = (("nearest", cv2.INTER_NEAREST), ("linear", cv2.INTER_LINEAR),
                  ("cubic", cv2.INTER_CUBIC), ("area", cv2.INTER_AREA),
                  ("lanczos4", cv2.INTER_LANCZOS4))  # OpenCV codes 0..4
NOISE_VARIANCES = tuple(range(10, 50, 3))  # 10, 13, ..., 49 (14)
PRETRAIN_NUM_CLASSES = 170


def check_image(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a C-contiguous array after checking it is uint8 ``[H, W, 3]``.

    Raises:
        ValueError: wrong type, dtype, number of dimensions or channels, or empty.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy uint8 [H, W, 3] RGB image, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f"expected a uint8 [H, W, 3] RGB image, got dtype {image.dtype} "
                         f"shape {image.shape}; convert with np.asarray(pil_image.convert('RGB'))")
    return np.ascontiguousarray(image)


def jpeg_compress(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode ``image`` as JPEG at ``quality`` (1..100) with OpenCV and decode it again."""
    bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"OpenCV failed to JPEG-encode an image of shape {image.shape}")
    return cv2.cvtColor(cv2.imdecode(buffer, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def down_up_resize(image: np.ndarray, scale: float, interpolation: int) -> np.ndarray:
    """Resize to ``round(scale*H) x round(scale*W)`` (at least 1 px), then back to H x W.

    Both resizes use the same OpenCV ``interpolation`` code.
    """
    height, width = image.shape[:2]
    small = (max(1, round(scale * width)), max(1, round(scale * height)))  # cv2 wants (w, h)
    down = cv2.resize(np.ascontiguousarray(image), small, interpolation=interpolation)
    return cv2.resize(down, (width, height), interpolation=interpolation)


def add_gaussian_noise(image: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Add i.i.d. N(0, std^2) noise (0..255 scale) per pixel and channel, round, clip."""
    noisy = image.astype(np.float64) + std * rng.standard_normal(image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _jpeg(image: np.ndarray, rng: np.random.Generator, quality: int) -> np.ndarray:
    return jpeg_compress(image, quality)


def _double_jpeg(image: np.ndarray, rng: np.random.Generator,
                 first: int, second: int) -> np.ndarray:
    return jpeg_compress(jpeg_compress(image, first), second)


def _gaussian_blur(image: np.ndarray, rng: np.random.Generator, kernel: int) -> np.ndarray:
    # sigma 0: OpenCV derives sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8 from the kernel size.
    return cv2.GaussianBlur(np.ascontiguousarray(image), (kernel, kernel), 0)


def _median_blur(image: np.ndarray, rng: np.random.Generator, kernel: int) -> np.ndarray:
    return cv2.medianBlur(np.ascontiguousarray(image), kernel)  # k > 5 needs uint8: it is


def _resize(image: np.ndarray, rng: np.random.Generator,
            scale: float, interpolation: int) -> np.ndarray:
    return down_up_resize(image, scale, interpolation)


def _noise(image: np.ndarray, rng: np.random.Generator, variance: float) -> np.ndarray:
    return add_gaussian_noise(image, math.sqrt(variance), rng)


def _build_table() -> Tuple[Tuple[str, Transform], ...]:
    table: List[Tuple[str, Transform]] = []
    for q in JPEG_QUALITIES:
        table.append((f"jpeg_q{q}", functools.partial(_jpeg, quality=q)))
    for q1, q2 in zip(JPEG_QUALITIES, DOUBLE_JPEG_SECOND_QUALITIES):
        table.append((f"double_jpeg_q{q1}_q{q2}",
                      functools.partial(_double_jpeg, first=q1, second=q2)))
    for k in BLUR_KERNEL_SIZES:
        table.append((f"gaussian_blur_k{k}", functools.partial(_gaussian_blur, kernel=k)))
    for k in BLUR_KERNEL_SIZES:
        table.append((f"median_blur_k{k}", functools.partial(_median_blur, kernel=k)))
    for s in RESIZE_SCALES:  # scale-major: all 5 interpolations of one scale are adjacent
        for name, code in INTERPOLATIONS:
            table.append((f"resize_s{s:.2f}_{name}",
                          functools.partial(_resize, scale=s, interpolation=code)))
    for v in NOISE_VARIANCES:
        table.append((f"gaussian_noise_v{v}", functools.partial(_noise, variance=v)))
    assert len(table) == PRETRAIN_NUM_CLASSES, len(table)
    return tuple(table)


_TABLE = _build_table()


def pretrain_transforms() -> List[Tuple[str, Transform]]:
    """The 170 ``(name, fn)`` pairs in SPEC order; the index is the stage-1 label."""
    return list(_TABLE)


FAMILIES = ("jpeg", "double_jpeg", "gaussian_blur", "median_blur", "resize", "noise")


def transform_families() -> List[str]:
    """The family of each of the 170 transformations, in label order (SPEC section 5's six groups)."""
    prefixes = (("double_jpeg_", "double_jpeg"), ("jpeg_", "jpeg"), ("gaussian_blur_", "gaussian_blur"),
                ("median_blur_", "median_blur"), ("resize_", "resize"), ("gaussian_noise_", "noise"))
    return [next(family for prefix, family in prefixes if name.startswith(prefix)) for name, _ in _TABLE]


def apply_transform(index: int, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply transformation ``index`` (0..169) to an RGB uint8 ``[H, W, 3]`` image.

    Raises:
        ValueError: index out of range, or ``image`` not uint8 ``[H, W, 3]``.
    """
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) \
            or not 0 <= index < PRETRAIN_NUM_CLASSES:
        raise ValueError(f"transformation index must be an int in 0..{PRETRAIN_NUM_CLASSES - 1},"
                         f" got {index!r}")
    return _TABLE[int(index)][1](check_image(image), rng)
