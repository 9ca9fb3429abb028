"""The embedded toy zoo (toy mode), stage-1 pre-training lists and the fingerprint study.

Toy zoo layout under the data root (64x64 PNGs): ``real/{A,B,C}``,
``GANs/{dcgan,progan,bilinear,subpixel}/A_seed0`` (labels 1..4, real = 0),
``GANs/dcgan/A_seed{1,2}``, ``GANs/progan/A_seed0_hinge``, ``GANs/subpixel/A_seed0_lsgan``,
``GANs/<arch>/ft_C``, ``GANs/<arch>/B_seed0`` and the unseen families
``GANs/{stylegan2,resizeblur}/A_seed0``. ``real/C`` is fine-tuning data only and appears in
no toy list (it does appear in the pre-training lists, which hold no image of a toy
validation, test or cross list); ``train_crops/`` (the generators'
training crops) is in no list at all.

| list            | sources                                                    |
|-----------------|------------------------------------------------------------|
| closed 80/10/10 | real/A -> 0, GANs/<arch>/A_seed0 -> 1..4 (no cap)          |
| cross_seed      | dcgan/A_seed1, dcgan/A_seed2 -> 1                          |
| cross_loss      | progan/A_seed0_hinge -> 2, subpixel/A_seed0_lsgan -> 4     |
| cross_finetune  | <arch>/ft_C -> 1..4                                        |
| cross_dataset   | real/B -> 0, <arch>/B_seed0 -> 1..4                        |
| unseen_arch     | stylegan2/A_seed0, resizeblur/A_seed0 -> -1 (open set)     |

A zoo built with ``--cross_tests wide`` (``"cross_tests": "wide"`` in its manifest.json) adds
to cross_seed <arch>/A_seed1 of progan, bilinear and subpixel, and to cross_loss every family's
A_seed0_hinge and A_seed0_lsgan not above (DataPrepare/toy_zoo/sources.py, WIDE_CROSS).
"""
import json
import os
from typing import List, Optional

from data.annotations import UNKNOWN_LABEL

from DataPrepare.toy_zoo.sources import STANDARD_CROSS, WIDE_CROSS, cross_variant, manifest_cross_tests

from .plan import Plan, Source

ARCHS = ("dcgan", "progan", "bilinear", "subpixel")
UNSEEN_ARCHS = ("stylegan2", "resizeblur")
TOY_CROSS_DIR_CAP = 2000
FINGERPRINT_SPLIT = (("train", 0.8), ("test", 0.2))
PRETRAIN_SPLIT = (("train", 0.9), ("val", 0.1))


def _gans(arch: str, model: str) -> str:
    return f"GANs/{arch}/{model}"


def zoo_cross_tests(data_root: str) -> str:
    """``standard`` or ``wide``, as recorded in the zoo's manifest.json (standard without one)."""
    try:
        with open(os.path.join(data_root, "manifest.json"), encoding="utf-8") as handle:
            return manifest_cross_tests(json.load(handle))
    except FileNotFoundError:
        return "standard"
    except ValueError as error:
        raise ValueError(f"{os.path.join(data_root, 'manifest.json')}: not valid JSON ({error}); "
                         f"rebuild the zoo with DataPrepare/make_toy_zoo.py") from None


def toy_plans(data_root: str, max_per_class: Optional[int],
              max_per_cross_dir: Optional[int]) -> List[Plan]:
    """The toy experiment: closed set on domain A, four cross tests, the unseen list (table above)."""
    cap = TOY_CROSS_DIR_CAP if max_per_cross_dir is None else max_per_cross_dir
    closed = [Source("real/A", 0)] + [Source(_gans(a, "A_seed0"), label)
                                      for label, a in enumerate(ARCHS, start=1)]
    wide = zoo_cross_tests(data_root) == "wide"

    def variants(kind: str) -> list:
        generators = STANDARD_CROSS[kind] + (WIDE_CROSS[kind] if wide else ())
        return [Source(_gans(arch, cross_variant(seed, loss)), ARCHS.index(arch) + 1, cap)
                for arch, seed, loss in generators]

    cross = [
        ("seed", variants("seed")),
        ("loss", variants("loss")),
        ("finetune", [Source(_gans(a, "ft_C"), label, cap)
                      for label, a in enumerate(ARCHS, start=1)]),
        ("dataset", [Source("real/B", 0, cap)] + [Source(_gans(a, "B_seed0"), label, cap)
                                                  for label, a in enumerate(ARCHS, start=1)]),
    ]
    unseen = [Source(_gans(a, "A_seed0"), UNKNOWN_LABEL, cap) for a in UNSEEN_ARCHS]
    return [Plan(prefix="toy", closed=closed, class_cap=max_per_class, cross=cross, unseen=unseen)]


def pretrain_plans(data_root: str, max_per_class: Optional[int],
                   max_per_cross_dir: Optional[int]) -> List[Plan]:
    """Stage-1 lists (path only), 90/10: every image under ``real/`` when it exists,
    else every image under the data root, less the images that a validation, test, cross or
    unseen list of this data root uses (``generate.held_out_images``). Stage 1 learns
    transformation traces from real images (SPEC section 5); for the toy zoo this is real/A's
    stage-2 training images and real/C (real/B is the cross_dataset real class), and the
    train list also holds every whole photo under photos/ (stage 1 crops them at random).
    ``max_per_class`` caps the total; ``max_per_cross_dir`` is unused."""
    root = "real" if os.path.isdir(os.path.join(data_root, "real")) else "."
    photos = ["photos"] if os.path.isdir(os.path.join(data_root, "photos")) else []
    return [Plan(prefix="pretrain", closed=[Source(root, 0)], fractions=PRETRAIN_SPLIT,
                 class_cap=max_per_class, with_labels=False,
                 whole={"train": [Source(rel, 0) for rel in photos]})]


ARCH_MODELS = {
    "dcgan": ("A_seed0", "A_seed1", "A_seed2", "B_seed0", "ft_C"),
    "progan": ("A_seed0", "A_seed0_hinge", "B_seed0", "ft_C"),
    "bilinear": ("A_seed0", "B_seed0", "ft_C"),
    "subpixel": ("A_seed0", "A_seed0_lsgan", "B_seed0", "ft_C"),
}


def fingerprint_plans(data_root: str, max_per_class: Optional[int],
                      max_per_cross_dir: Optional[int]) -> List[Plan]:
    """The two tasks of the fingerprint study (SPEC section 10), 80/20 per class.

    ``fingerprint_arch``: label = architecture (0 dcgan, 1 progan, 2 bilinear,
    3 subpixel), each class pooling all the models of ``ARCH_MODELS``; balanced: every
    class is cut to the smallest class's count (seeded subset of the pooled images),
    since dcgan pools five models and bilinear three.
    ``fingerprint_weight``: label = dcgan model A_seed0, A_seed1, A_seed2 (0, 1, 2), the
    same architecture and data, different seeds; balanced the same way (A_seed0 has
    1,000 images in the default zoo, the other two 300).
    ``max_per_class`` caps every class of both tasks; ``max_per_cross_dir`` is unused.
    """
    arch = [Source(_gans(a, model), label)
            for label, a in enumerate(ARCHS) for model in ARCH_MODELS[a]]
    weight = [Source(_gans("dcgan", f"A_seed{k}"), k) for k in range(3)]
    return [Plan(prefix="fingerprint_arch", closed=arch, fractions=FINGERPRINT_SPLIT,
                 class_cap=max_per_class, balance=True),
            Plan(prefix="fingerprint_weight", closed=weight, fractions=FINGERPRINT_SPLIT,
                 class_cap=max_per_class, balance=True)]
