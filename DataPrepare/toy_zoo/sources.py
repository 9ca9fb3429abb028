"""The zoo's image sources (real domains and trained generators) and the two build scales.

Build order and directory layout under the output root (``{arch}`` in dcgan, progan,
bilinear, subpixel; labels 0 real, 1 dcgan, 2 progan, 3 bilinear, 4 subpixel):

| role            | sources                                                         |
|-----------------|-----------------------------------------------------------------|
| real images     | ``real/A``, ``real/B``, ``real/C``                              |
| closed set      | ``GANs/{arch}/A_seed0`` (ns loss, domain A)                      |
| cross-seed      | ``GANs/dcgan/A_seed1``, ``GANs/dcgan/A_seed2``                   |
| cross-loss      | ``GANs/progan/A_seed0_hinge``, ``GANs/subpixel/A_seed0_lsgan``   |
| cross-finetune  | ``GANs/{arch}/ft_C`` (parent ``{arch}/A_seed0``, tuned on real/C) |
| cross-dataset   | ``GANs/{arch}/B_seed0`` (from scratch on domain B)               |

Every generator trains on the real images of its domain (``real/{domain}``).
"""
import zlib
from dataclasses import dataclass
from typing import Optional

from .generators import ARCH_LABELS

ARCHITECTURES = tuple(ARCH_LABELS)


@dataclass(frozen=True)
class Scale:
    """Sizes of one build: image counts, training steps and network width."""
    closed_images: int     # real/A and every */A_seed0
    cross_images: int      # every other source but real/C
    finetune_images: int   # real/C, the fine-tuning set
    steps: int             # adversarial steps from scratch
    finetune_steps: int    # adversarial steps when fine-tuning
    batch_size: int
    width: int             # generator / discriminator base width
    lr_d: float = 2e-4     # discriminator; G's rate depends on the loss (train_gan.G_LEARNING_RATES)


SCALES = {
    "tiny": Scale(closed_images=40, cross_images=20, finetune_images=20, steps=6, finetune_steps=3,
                  batch_size=8, width=8),
    "default": Scale(closed_images=1000, cross_images=300, finetune_images=300, steps=300,
                     finetune_steps=120, batch_size=32, width=12),
}


@dataclass(frozen=True)
class Source:
    """One directory of images: a real domain or one trained generator."""
    name: str                 # "real/A" or "{arch}/{variant}"
    kind: str                 # "real" | "gan"
    architecture: str         # "real" or a key of ARCH_LABELS
    label: int
    domain: str               # photo domain of the training / cropped images
    seed: int                 # variant seed (0 for real images)
    loss: Optional[str]       # GAN loss, None for real images
    parent: Optional[str]     # source fine-tuned from, else None
    count: int                # images to write
    steps: int                # training steps (0 for real images)

    @property
    def dir(self) -> str:
        """Directory relative to the zoo root."""
        return self.name if self.kind == "real" else f"GANs/{self.name}"

    @property
    def file_stem(self) -> str:
        """Flat name for weights and grids: ``dcgan_A_seed0``, ``real_A``."""
        return self.name.replace("/", "_")


def derive_seed(zoo_seed: int, source_name: str) -> int:
    """Stable 31-bit seed from the zoo seed and a source name (which holds its variant seed)."""
    return zlib.crc32(f"{zoo_seed}/{source_name}".encode()) & 0x7FFFFFFF


def _gan(arch: str, variant: str, domain: str, seed: int, loss: str, count: int, steps: int,
         parent: Optional[str] = None) -> Source:
    return Source(f"{arch}/{variant}", "gan", arch, ARCH_LABELS[arch], domain, seed, loss, parent, count, steps)


def plan_sources(scale: Scale) -> list:
    """Every source of the zoo in build order (parents before their fine-tunes)."""
    closed, cross = scale.closed_images, scale.cross_images
    plan = [Source("real/A", "real", "real", 0, "A", 0, None, None, closed, 0),
            Source("real/B", "real", "real", 0, "B", 0, None, None, cross, 0),
            Source("real/C", "real", "real", 0, "C", 0, None, None, scale.finetune_images, 0)]
    plan += [_gan(arch, "A_seed0", "A", 0, "ns", closed, scale.steps) for arch in ARCHITECTURES]
    plan += [_gan("dcgan", f"A_seed{seed}", "A", seed, "ns", cross, scale.steps) for seed in (1, 2)]
    plan += [_gan("progan", "A_seed0_hinge", "A", 0, "hinge", cross, scale.steps),
             _gan("subpixel", "A_seed0_lsgan", "A", 0, "lsgan", cross, scale.steps)]
    plan += [_gan(arch, "ft_C", "C", 0, "ns", cross, scale.finetune_steps, parent=f"{arch}/A_seed0")
             for arch in ARCHITECTURES]
    plan += [_gan(arch, "B_seed0", "B", 0, "ns", cross, scale.steps) for arch in ARCHITECTURES]
    return plan
