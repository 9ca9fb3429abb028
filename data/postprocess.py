"""Post-processings for the robustness evaluation (SPEC section 11).

Test images, real and fake alike, are perturbed at several strengths and each level is
evaluated separately. Every perturbation is a pure function ``fn(image, level, rng)``
on a uint8 RGB ``[H, W, 3]`` image returning a new C-contiguous array of the same shape
and dtype; only the noise draws from ``rng`` (an ``np.random.Generator``).

``PERTURBATIONS`` maps a name to its function and default levels, weakest first:

==============  ==================================  ====================================
name            levels (weakest -> strongest)       rule
==============  ==================================  ====================================
jpeg            quality 95, 90, 80, 70, 60, 50,     OpenCV JPEG, RGB->BGR before encoding
                40, 30                              (same codec as stage-1 pre-training)
gaussian_blur   sigma 0.5, 1, 2, 3, 4               ``cv2.GaussianBlur(img, (0, 0), sigma)``:
                                                    OpenCV's uint8 kernel-size rule
                                                    ``k = round(6 * sigma + 1) | 1``
resize          scale 0.9, 0.75, 0.5, 0.25          bilinear down to round(scale * size),
                                                    bilinear back up
gaussian_noise  std 2, 5, 10, 20 (0..255 scale)     i.i.d. per pixel and channel, round, clip
center_crop     keep 0.95, 0.9, 0.85, 0.8 of each   centred crop of round(keep * size), then
                side                                bicubic resize back to the original size
gamma           gamma 0.9, 0.8, 0.7, 0.6            ``255 * (x / 255) ** gamma``: brightens
                                                    mid-tones; stronger = further from 1
==============  ==================================  ====================================
"""
import math
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import cv2
import numpy as np

from data.transforms import add_gaussian_noise, check_image, down_up_resize, jpeg_compress

PerturbationFn = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Perturbation:
    """One robustness post-processing.

    Attributes:
        fn: ``fn(image, level, rng) -> image``; raises ValueError for an invalid level.
        levels: default levels, ordered from weakest to strongest.
        label: the strength axis for plots, e.g. ``"JPEG quality"``.
        stronger_when_larger: True when a larger level number means a stronger change.
    """
    fn: PerturbationFn
    levels: Tuple[float, ...]
    label: str
    stronger_when_larger: bool


def _real(level, what: str) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)) \
            or not math.isfinite(level):
        raise ValueError(f"{what} must be a finite number, got {level!r}")
    return float(level)


def jpeg(image: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG re-compression at ``quality``, an integer in 1..100."""
    value = _real(quality, "JPEG quality")
    if value != int(value) or not 1 <= value <= 100:
        raise ValueError(f"JPEG quality must be an integer in 1..100, got {quality!r}")
    return jpeg_compress(image, int(value))


def gaussian_blur(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` > 0 pixels (OpenCV kernel-size rule)."""
    value = _real(sigma, "blur sigma")
    if value <= 0:
        raise ValueError(f"blur sigma must be > 0 pixels, got {sigma!r}")
    return cv2.GaussianBlur(np.ascontiguousarray(image), (0, 0), value)


def resize(image: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Bilinear down-then-up resize by ``scale`` in (0, 1]."""
    value = _real(scale, "resize scale")
    if not 0 < value <= 1:
        raise ValueError(f"resize scale must lie in (0, 1], got {scale!r}")
    return down_up_resize(image, value, cv2.INTER_LINEAR)


def gaussian_noise(image: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise of standard deviation ``std`` >= 0 on the 0..255 scale."""
    value = _real(std, "noise std")
    if value < 0:
        raise ValueError(f"noise std must be >= 0 (0..255 scale), got {std!r}")
    return add_gaussian_noise(image, value, rng)


def center_crop(image: np.ndarray, keep: float, rng: np.random.Generator) -> np.ndarray:
    """Keep the central ``keep`` fraction (0, 1] of each side, bicubic-resize back."""
    value = _real(keep, "crop fraction")
    if not 0 < value <= 1:
        raise ValueError(f"crop fraction must lie in (0, 1], got {keep!r}")
    height, width = image.shape[:2]
    crop_h, crop_w = max(1, round(value * height)), max(1, round(value * width))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    crop = np.ascontiguousarray(image[top:top + crop_h, left:left + crop_w])
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC)


def gamma(image: np.ndarray, value: float, rng: np.random.Generator) -> np.ndarray:
    """Gamma change ``255 * (x / 255) ** value`` with ``value`` > 0 (< 1 brightens)."""
    exponent = _real(value, "gamma")
    if exponent <= 0:
        raise ValueError(f"gamma must be > 0, got {value!r}")
    lut = np.clip(np.rint(255.0 * (np.arange(256) / 255.0) ** exponent), 0, 255)
    return cv2.LUT(np.ascontiguousarray(image), lut.astype(np.uint8))


PERTURBATIONS: Dict[str, Perturbation] = {
    "jpeg": Perturbation(jpeg, (95, 90, 80, 70, 60, 50, 40, 30), "JPEG quality", False),
    "gaussian_blur": Perturbation(gaussian_blur, (0.5, 1, 2, 3, 4), "blur sigma (px)", True),
    "resize": Perturbation(resize, (0.9, 0.75, 0.5, 0.25), "resize scale", False),
    "gaussian_noise": Perturbation(gaussian_noise, (2, 5, 10, 20), "noise std (0..255)", True),
    "center_crop": Perturbation(center_crop, (0.95, 0.9, 0.85, 0.8),
                                "crop: kept fraction of each side", False),
    "gamma": Perturbation(gamma, (0.9, 0.8, 0.7, 0.6), "gamma", False),
}


def apply_perturbation(name: str, image: np.ndarray, level: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Apply perturbation ``name`` at ``level`` to a uint8 RGB ``[H, W, 3]`` image.

    Raises:
        ValueError: unknown name (the message lists the valid ones), invalid level,
            or ``image`` not uint8 ``[H, W, 3]``.
    """
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; valid: {sorted(PERTURBATIONS)}")
    return PERTURBATIONS[name].fn(check_image(image), level, rng)
