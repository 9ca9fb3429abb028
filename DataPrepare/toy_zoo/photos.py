"""Real colour photographs shipped inside pip packages, split into three disjoint domains.

Domain A plays CelebA's role (the training domain of the closed set), B plays LSUN's
(another dataset, for cross-dataset tests) and C the fine-tuning subset. Real-class images
are random multi-scale square crops of a domain's photos, resized to 64x64 with Pillow's
antialiased bicubic filter (never upsampled: a crop is at least 64 px wide).
"""
import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from data.image_io import IMAGE_EXTENSIONS, ImageLoadError, load_rgb

CROP_SIZE = 64

# photo name -> (package, loader key); every one is a colour photograph
DOMAIN_PHOTOS = {
    "A": ["skimage:astronaut", "matplotlib:grace_hopper", "skimage:chelsea", "skimage:coffee", "skimage:rocket"],
    "B": ["sklearn:china", "sklearn:flower", "skimage:stereo_motorcycle", "skimage:immunohistochemistry"],
    "C": ["skimage:retina", "skimage:hubble_deep_field"],
}
DOMAINS = tuple(DOMAIN_PHOTOS)


@dataclass
class Photo:
    name: str
    image: Image.Image  # RGB


def _load_builtin(name: str) -> Image.Image:
    """Decode one packaged photo by its ``package:key`` name."""
    package, key = name.split(":")
    if package == "skimage":
        import skimage.data
        array = getattr(skimage.data, key)()
        if key == "stereo_motorcycle":
            array = array[0]  # (left, right, disparity): the left view only
        return Image.fromarray(array).convert("RGB")
    if package == "sklearn":
        from sklearn.datasets import load_sample_images
        bunch = load_sample_images()
        stems = [os.path.splitext(os.path.basename(path))[0] for path in bunch.filenames]
        return Image.fromarray(bunch.images[stems.index(key)]).convert("RGB")
    if package == "matplotlib":
        from matplotlib import cbook
        return load_rgb(str(cbook.get_sample_data(f"{key}.jpg", asfileobj=False)))
    raise ValueError(f"unknown photo package in {name!r}")


def _list_image_files(folder: str) -> list:
    """Image files under ``folder`` (recursively), sorted for a machine-independent order."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
    return found


def load_extra_photos(folder: str) -> tuple:
    """Readable photos of a user folder, at least 64 px on the short side.

    Unreadable or too small files are warned about by path and skipped.

    Returns:
        (photos, n_skipped)
    Raises:
        ValueError: the folder does not exist or holds no usable image.
    """
    if not os.path.isdir(folder):
        raise ValueError(f"extra photos folder {folder!r} does not exist; pass an existing folder of photos")
    photos, skipped = [], 0
    for path in _list_image_files(folder):
        try:
            image = load_rgb(path)
        except ImageLoadError as error:
            warnings.warn(f"skipping unreadable photo {path!r}: {error.reason}")
            skipped += 1
            continue
        if min(image.size) < CROP_SIZE:
            warnings.warn(f"skipping photo {path!r}: {image.size} is smaller than {CROP_SIZE} px")
            skipped += 1
            continue
        photos.append(Photo(f"extra:{os.path.relpath(path, folder)}", image))
    if not photos:
        raise ValueError(f"extra photos folder {folder!r} holds no readable image of at least {CROP_SIZE} px "
                         f"(extensions {IMAGE_EXTENSIONS}, {skipped} file(s) skipped)")
    return photos, skipped


def load_domain_photos(domain: str, extra_folder: str = None) -> tuple:
    """The packaged photos of ``domain`` plus, optionally, a user folder.

    Returns:
        (photos, n_skipped): list of Photo, number of skipped extra files.
    """
    if domain not in DOMAIN_PHOTOS:
        raise ValueError(f"unknown photo domain {domain!r}; choose from {DOMAINS}")
    photos = [Photo(name, _load_builtin(name)) for name in DOMAIN_PHOTOS[domain]]
    skipped = 0
    if extra_folder is not None:
        extra, skipped = load_extra_photos(extra_folder)
        photos += extra
    return photos, skipped


def random_crop(image: Image.Image, rng: np.random.Generator, size: int = CROP_SIZE) -> np.ndarray:
    """One random square crop, side log-uniform in [size, short side], resized to ``size``.

    Returns:
        uint8 array [size, size, 3]; flipped left-right with probability 0.5.
    """
    width, height = image.size
    side = int(round(np.exp(rng.uniform(np.log(size), np.log(min(width, height))))))
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    crop = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(crop, dtype=np.uint8)


def random_crops(photos: list, count: int, rng: np.random.Generator, size: int = CROP_SIZE) -> np.ndarray:
    """``count`` crops, each from a photo chosen uniformly: uint8 [count, size, size, 3]."""
    picks = rng.integers(0, len(photos), size=count)
    return np.stack([random_crop(photos[i].image, rng, size) for i in picks])
