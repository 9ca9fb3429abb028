"""Safe image loading: any mode to RGB, unreadable files reported by path.

One policy for every entry point: any failure to open or decode an image, of whatever
exception type Pillow raises for a bad file (DecompressionBombError, OSError, SyntaxError,
struct errors, ...), is an ``ImageLoadError`` naming the file and the reason, which callers
turn into a named, counted skip. An image of more than ``max_pixels()`` pixels (env
``DNADET_MAX_IMAGE_PIXELS``, default 64 Mpx: an 8K photo is 33 Mpx, the paper's largest
images 1 Mpx) is refused from its header, before it is decoded.
"""
import os

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


DEFAULT_MAX_PIXELS = 64_000_000


def max_pixels() -> int:
    """The pixel cap: ``DNADET_MAX_IMAGE_PIXELS`` if set (a positive integer), else the default."""
    text = os.environ.get("DNADET_MAX_IMAGE_PIXELS", "")
    if not text:
        return DEFAULT_MAX_PIXELS
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"DNADET_MAX_IMAGE_PIXELS must be a positive integer (pixels), got {text!r}")
    return int(text)


def _check_size(image: Image.Image) -> None:
    width, height = image.size
    cap = max_pixels()
    if width * height > cap:
        raise _TooLarge(f"{width}x{height} = {width * height:,} pixels is above the cap of {cap:,} "
                        f"(set DNADET_MAX_IMAGE_PIXELS to allow larger images)")


class _TooLarge(Exception):
    pass


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
        ImageLoadError: missing, empty, not an image, truncated, above the pixel cap, or any
            other decoding failure.
    """
    _check_file(path)
    try:
        with Image.open(path) as image:
            _check_size(image)
            image.load()
            return to_rgb(image)
    except _TooLarge as error:
        raise ImageLoadError(path, str(error)) from None
    except Exception as error:  # noqa: BLE001 - any decoder failure is this file's fault
        raise ImageLoadError(path, f"{type(error).__name__}: {error}") from None


def _check_file(path: str) -> None:
    if not os.path.isfile(path):
        raise ImageLoadError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise ImageLoadError(path, "file is empty (0 bytes)")


def check_readable(path: str, decode: bool = True) -> str:
    """'' when ``path`` is an image that ``load_rgb`` will read, else the reason.

    ``decode`` (default) decodes the pixels too, which finds truncated files; without it
    only the header and the pixel cap are checked.
    """
    try:
        if decode:
            load_rgb(path)
            return ""
        _check_file(path)
        with Image.open(path) as image:
            _check_size(image)
        return ""
    except ImageLoadError as error:
        return error.reason
    except _TooLarge as error:
        return str(error)
    except Exception as error:  # noqa: BLE001
        return f"{type(error).__name__}: {error}"
