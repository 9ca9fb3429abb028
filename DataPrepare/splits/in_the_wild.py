"""GANs in the wild: 11 classes, train directories vs cross-dataset directories.

SPEC section 7 says only that some directories of each class form train/val/closed test
(up to 5,000 images each, split 80/10/10 per class) and the remaining directories of
that class form the cross-dataset test (500 images each). Which directory goes where is
**this project's choice** wherever the SPEC is silent:

| lbl | class          | train / val / closed test             | cross-dataset                     |
|-----|----------------|---------------------------------------|-----------------------------------|
| 0   | Real           | real/celeba/celeba_align_png_cropped, | real/Flickr-Faces-HQ_10K,         |
|     |                | real/lsun/bedroom                     | real/celebA-HQ_10K                |
| 1   | ProGAN-128     | ProGAN multiseed_celeba seed_v0       | ProGAN multiseed_lsun seed_v0     |
| 2-4 | MMDGAN-128,    | GANs/<gan>/celeba_align_png_cropped   | GANs/<gan>/lsun_bedroom_200k_png  |
|     | SNGAN-128,     |  (<gan> = MMDGAN, SNGAN, InfoMax-GAN) |                                   |
|     | InfoMaxGAN-128 |                                       |                                   |
| 5   | StackGAN2-256  | GANs/StackGAN2/{cat,church,bird}      | GANs/StackGAN2/{bedroom,dog}      |
| 6   | ProGAN-256     | GANs/CNNDetect/train/<c>/1_fake, c in | the same for diningtable, dog,    |
|     |                | airplane, bicycle, bird, boat, bottle,| horse, motorbike, person,         |
|     |                | bus, car, cat, chair, cow             | pottedplant, sheep, sofa, train,  |
|     |                |                                       | tvmonitor                         |
| 7   | CycleGAN-256   | GANs/cyclegan/{winter,orange,apple}   | GANs/cyclegan/{horse,summer,zebra}|
| 8   | StyleGAN2-256  | GANs/styleGAN2/{cat,church}           | GANs/styleGAN2/horse              |
| 9   | StyleGAN-1024  | discovered under GANs/styleGAN        | (see below)                       |
| 10  | StyleGAN2-1024 | discovered under GANs/styleGAN2       | (see below)                       |

The 1024x1024 face directories are not named by the SPEC, so they are discovered: the
sorted subdirectories of ``GANs/styleGAN`` (for StyleGAN2-1024: of ``GANs/styleGAN2``
without the 256x256 ``cat``, ``church``, ``horse``); the first ceil(n/2) are train
directories, the rest cross-dataset. A folder with no subdirectory at all is used whole
as one train directory (not ``GANs/styleGAN2``, which also holds the 256x256 folders:
there ``GANs/styleGAN2/<1024-face subdirectories>`` is reported missing). A missing
folder is reported as missing like any other source.
"""
import math
import os
from typing import List, Optional, Sequence, Tuple

from .plan import Plan, Source

CLASS_NAMES = ("Real", "ProGAN-128", "MMDGAN-128", "SNGAN-128", "InfoMaxGAN-128",
               "StackGAN2-256", "ProGAN-256", "CycleGAN-256", "StyleGAN2-256",
               "StyleGAN-1024", "StyleGAN2-1024")
TRAIN_DIR_CAP = 5000
CROSS_DIR_CAP = 500

CNNDETECT_TRAIN = ("airplane", "bicycle", "bird", "boat", "bottle",
                   "bus", "car", "cat", "chair", "cow")
CNNDETECT_CROSS = ("diningtable", "dog", "horse", "motorbike", "person",
                   "pottedplant", "sheep", "sofa", "train", "tvmonitor")
STYLEGAN2_256 = ("cat", "church", "horse")


def _under(parent: str, names: Sequence[str], suffix: str = "") -> Tuple[str, ...]:
    return tuple(f"{parent}/{name}{suffix}" for name in names)


FIXED_TABLE: Tuple[Tuple[int, Tuple[str, ...], Tuple[str, ...]], ...] = (
    (0, ("real/celeba/celeba_align_png_cropped", "real/lsun/bedroom"),
        ("real/Flickr-Faces-HQ_10K", "real/celebA-HQ_10K")),
    (1, ("GANs/ProGAN/multiseed_celeba/celeba_align_png_cropped_seed_v0",),
        ("GANs/ProGAN/multiseed_lsun/lsun_bedroom_200k_png_seed_v0",)),
    (2, ("GANs/MMDGAN/celeba_align_png_cropped",), ("GANs/MMDGAN/lsun_bedroom_200k_png",)),
    (3, ("GANs/SNGAN/celeba_align_png_cropped",), ("GANs/SNGAN/lsun_bedroom_200k_png",)),
    (4, ("GANs/InfoMax-GAN/celeba_align_png_cropped",),
        ("GANs/InfoMax-GAN/lsun_bedroom_200k_png",)),
    (5, _under("GANs/StackGAN2", ("cat", "church", "bird")),
        _under("GANs/StackGAN2", ("bedroom", "dog"))),
    (6, _under("GANs/CNNDetect/train", CNNDETECT_TRAIN, "/1_fake"),
        _under("GANs/CNNDetect/train", CNNDETECT_CROSS, "/1_fake")),
    (7, _under("GANs/cyclegan", ("winter", "orange", "apple")),
        _under("GANs/cyclegan", ("horse", "summer", "zebra"))),
    (8, _under("GANs/styleGAN2", ("cat", "church")), ("GANs/styleGAN2/horse",)),
)


def discover_split(data_root: str, parent: str,
                   exclude: Sequence[str] = ()) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """(train dirs, cross dirs) from the sorted subdirectories of ``parent``.

    The first ceil(n/2) subdirectories train, the rest are cross-dataset. A missing
    ``parent`` is returned as its own train directory so it is reported as missing.
    """
    full = os.path.join(data_root, parent)
    if not os.path.isdir(full):
        return (parent,), ()
    subdirs = sorted(name for name in os.listdir(full)
                     if os.path.isdir(os.path.join(full, name))
                     and not name.startswith(".") and name not in exclude)
    if not subdirs:
        if exclude:  # the parent also holds other classes' folders: never use it whole
            return (f"{parent}/<1024-face subdirectories>",), ()
        return (parent,), ()
    n_train = math.ceil(len(subdirs) / 2)
    return _under(parent, subdirs[:n_train]), _under(parent, subdirs[n_train:])


def directory_table(data_root: str) -> List[Tuple[int, Tuple[str, ...], Tuple[str, ...]]]:
    """``[(label, train dirs, cross dirs), ...]`` for all 11 classes."""
    table = list(FIXED_TABLE)
    table.append((9, *discover_split(data_root, "GANs/styleGAN")))
    table.append((10, *discover_split(data_root, "GANs/styleGAN2", exclude=STYLEGAN2_256)))
    return table


def in_the_wild_plans(data_root: str, max_per_class: Optional[int],
                      max_per_cross_dir: Optional[int]) -> List[Plan]:
    """The single plan of the in-the-wild experiment.

    ``max_per_class`` overrides the per-*train-directory* cap (5,000; SPEC: "up to 5,000
    images each"); ``max_per_cross_dir`` the per-cross-directory cap (500).
    """
    train_cap = TRAIN_DIR_CAP if max_per_class is None else max_per_class
    cross_cap = CROSS_DIR_CAP if max_per_cross_dir is None else max_per_cross_dir
    closed, cross = [], []
    for label, train_dirs, cross_dirs in directory_table(data_root):
        closed += [Source(d, label, train_cap) for d in train_dirs]
        cross += [Source(d, label, cross_cap) for d in cross_dirs]
    return [Plan(prefix="in_the_wild", closed=closed, cross=[("dataset", cross)])]
