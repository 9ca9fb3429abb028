"""The zoo's image sources (real crops, training crops, generators) and the two build scales.

Build order and directory layout under the output root (``{arch}`` in dcgan, progan,
bilinear, subpixel; labels 0 real, 1 dcgan, 2 progan, 3 bilinear, 4 subpixel; the unseen
families stylegan2 and resizeblur are labelled -1):

| role             | sources                                                             |
|------------------|---------------------------------------------------------------------|
| real class       | ``real/A``, ``real/B``, ``real/C`` (the generators' held-out inputs) |
| training crops   | ``train_crops/A``, ``train_crops/B``, ``train_crops/C`` (in no list) |
| closed set       | ``GANs/{arch}/A_seed0`` (ns + L1, domain A)                          |
| cross-seed       | ``GANs/dcgan/A_seed1``, ``GANs/dcgan/A_seed2``                       |
| cross-loss       | ``GANs/progan/A_seed0_hinge`` (hinge + L1), ``GANs/subpixel/A_seed0_lsgan`` (lsgan + L2) |
| unseen families  | ``GANs/stylegan2/A_seed0``, ``GANs/resizeblur/A_seed0``              |
| cross-finetune   | ``GANs/{arch}/ft_C`` (parent ``{arch}/A_seed0``, tuned on domain C)  |
| cross-dataset    | ``GANs/{arch}/B_seed0`` (from scratch on domain B)                   |

``cross_tests="wide"`` adds ``WIDE_CROSS``: the cross-seed and cross-loss variants for every
closed-set family (seed 1; hinge + L1 and lsgan + L2), 9 more generators, so that those two
cross tests average over 5 and 8 generators instead of 2 and 2. The standard sources are the
same files in both (each source is seeded from its own name), so a standard build widens in place.

A generator of domain D trains on ``train_crops/D`` and writes its reconstructions of the
first ``count`` crops of ``real/D``, which it never saw in training: image ``k`` of every
domain-D generator shows the content of ``real/D/00000k.png``.
"""
import zlib
from dataclasses import dataclass
from typing import Optional

from .generators import ARCH_LABELS, FAMILY_LABELS, UNSEEN_ARCHS

ARCHITECTURES = tuple(ARCH_LABELS)
CROSS_TESTS = ("standard", "wide")
REC_LOSS = {"ns": "l1", "hinge": "l1", "lsgan": "l2"}   # adversarial loss -> its reconstruction loss
# cross-seed and cross-loss generators of domain A, as (architecture, seed, adversarial loss)
STANDARD_CROSS = {"seed": (("dcgan", 1, "ns"), ("dcgan", 2, "ns")),
                  "loss": (("progan", 0, "hinge"), ("subpixel", 0, "lsgan"))}
WIDE_CROSS = {"seed": tuple((arch, 1, "ns") for arch in ARCHITECTURES if arch != "dcgan"),
              "loss": tuple((arch, 0, loss) for arch in ARCHITECTURES for loss in ("hinge", "lsgan")
                            if (arch, 0, loss) not in STANDARD_CROSS["loss"])}


def cross_variant(seed: int, loss: str) -> str:
    """The folder name of a domain-A generator: ``A_seed{seed}``, plus ``_{loss}`` unless ns."""
    return f"A_seed{seed}" + ("" if loss == "ns" else f"_{loss}")


def manifest_cross_tests(manifest: dict) -> str:
    """``standard`` or ``wide``: what a zoo's manifest records (standard zoos record nothing)."""
    return manifest.get("cross_tests", "standard")


@dataclass(frozen=True)
class Scale:
    """Sizes of one build: image counts, training steps, network width, loss weights."""
    closed_images: int     # real/A and every */A_seed0 of the closed set
    cross_images: int      # real/B, real/C and every other generator
    train_crops: int       # training crops per domain (train_crops/{A,B,C})
    steps: int             # training steps from scratch
    finetune_steps: int    # training steps when fine-tuning
    batch_size: int
    width: int             # encoder / decoder base width
    disc_width: int        # discriminator base width
    lr_g: float = 1e-3
    lr_d: float = 2e-4
    rec_weight: float = 10.0
    colour_weight: float = 10.0
    decay_start: float = 0.5  # both learning rates fall linearly to 0 over the second half
    bn_batches: int = 32      # batches of training crops over which BatchNorm statistics are recomputed
    lowpass_sigma: float = 2.0  # Gaussian sigma (px) of the input's low frequencies given to every output (0: off)


SCALES = {
    "tiny": Scale(closed_images=40, cross_images=20, train_crops=48, steps=4, finetune_steps=2,
                  batch_size=8, width=8, disc_width=4, bn_batches=2),
    "default": Scale(closed_images=1000, cross_images=300, train_crops=2000, steps=400,
                     finetune_steps=130, batch_size=8, width=32, disc_width=32),
}


@dataclass(frozen=True)
class Source:
    """One directory of images: crops of a photo domain or one trained generator."""
    name: str                 # "real/A", "train_crops/A" or "{arch}/{variant}"
    kind: str                 # "real" | "crops" | "gan"
    architecture: str         # "real" or a key of FAMILY_LABELS
    label: int                # 0 real, 1..4 closed-set families, -1 unseen families
    domain: str               # photo domain of the crops (of the training crops for a generator)
    seed: int                 # variant seed (0 for crops)
    loss: Optional[str]       # adversarial loss, None for crops
    rec_loss: Optional[str]   # reconstruction loss, None for crops
    parent: Optional[str]     # source fine-tuned from, else None
    count: int                # images to write
    steps: int                # training steps (0 for crops)

    @property
    def dir(self) -> str:
        """Directory relative to the zoo root."""
        return f"GANs/{self.name}" if self.kind == "gan" else self.name

    @property
    def file_stem(self) -> str:
        """Flat name for weights and grids: ``dcgan_A_seed0``, ``real_A``."""
        return self.name.replace("/", "_")


def derive_seed(zoo_seed: int, source_name: str) -> int:
    """Stable 31-bit seed from the zoo seed and a source name (which holds its variant seed)."""
    return zlib.crc32(f"{zoo_seed}/{source_name}".encode()) & 0x7FFFFFFF


def _crops(kind: str, domain: str, count: int) -> Source:
    name = f"{'real' if kind == 'real' else 'train_crops'}/{domain}"
    return Source(name, kind, "real", 0, domain, 0, None, None, None, count, 0)


def _gan(arch: str, variant: str, domain: str, seed: int, count: int, steps: int, loss: str = "ns",
         rec_loss: str = "l1", parent: Optional[str] = None) -> Source:
    return Source(f"{arch}/{variant}", "gan", arch, FAMILY_LABELS[arch], domain, seed, loss, rec_loss,
                  parent, count, steps)


def _cross_gan(arch: str, seed: int, loss: str, count: int, steps: int) -> Source:
    """A cross-seed or cross-loss generator of domain A (``STANDARD_CROSS``, ``WIDE_CROSS``)."""
    return _gan(arch, cross_variant(seed, loss), "A", seed, count, steps, loss=loss, rec_loss=REC_LOSS[loss])


def plan_sources(scale: Scale, cross_tests: str = "standard") -> list:
    """Every source of the zoo in build order (crops first, parents before their fine-tunes);
    ``cross_tests="wide"`` appends ``WIDE_CROSS``."""
    if cross_tests not in CROSS_TESTS:
        raise ValueError(f"cross_tests={cross_tests!r}: use one of {CROSS_TESTS}")
    closed, cross, steps = scale.closed_images, scale.cross_images, scale.steps
    plan = [_crops("real", "A", closed), _crops("real", "B", cross), _crops("real", "C", cross)]
    plan += [_crops("crops", domain, scale.train_crops) for domain in "ABC"]
    plan += [_gan(arch, "A_seed0", "A", 0, closed, steps) for arch in ARCHITECTURES]
    plan += [_cross_gan(*generator, cross, steps) for kind in ("seed", "loss") for generator in STANDARD_CROSS[kind]]
    plan += [_gan(arch, "A_seed0", "A", 0, cross, steps) for arch in UNSEEN_ARCHS]
    plan += [_gan(arch, "ft_C", "C", 0, cross, scale.finetune_steps, parent=f"{arch}/A_seed0")
             for arch in ARCHITECTURES]
    plan += [_gan(arch, "B_seed0", "B", 0, cross, steps) for arch in ARCHITECTURES]
    if cross_tests == "wide":
        plan += [_cross_gan(*generator, cross, steps) for kind in ("seed", "loss") for generator in WIDE_CROSS[kind]]
    return plan
