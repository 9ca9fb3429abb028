"""Safe image loading: any mode to RGB, unreadable files reported by path."""
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageLoadError(ValueError):
    """An image file that cannot be decoded; ``path`` names it."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"cannot read image {path!r}: {reason}")
        self.path = path
        self.reason = reason


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert grey, grey+alpha, RGBA, palette, CMYK and 16-bit images to 8-bit RGB.

    Alpha is dropped (composited on black would invent content; the paper's data
    has none). 16-bit grey (``I;16``/``I``) is scaled to 8 bits by its full range.
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(array / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(array, mode="L").convert("RGB")
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0) + 0.5, 0, 255)
        return Image.fromarray(array.astype(np.uint8), mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def load_rgb(path: str) -> Image.Image:
    """Decode ``path`` fully and return an RGB image.

    Raises:
        ImageLoadError: missing, empty, not an image, or truncated.
    """
    if not os.path.isfile(path):
        raise ImageLoadError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise ImageLoadError(path, "file is empty (0 bytes)")
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageLoadError(path, f"{type(error).__name__}: {error}") from None


def check_readable(path: str) -> str:
    """Cheap header check: return '' when ``path`` looks like an image, else the reason."""
    try:
        if os.path.getsize(path) == 0:
            return "file is empty (0 bytes)"
        with Image.open(path) as image:
            image.size  # header parsed by open(); size access keeps lint quiet
        return ""
    except FileNotFoundError:
        return "file not found"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
