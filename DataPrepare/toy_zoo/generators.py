"""Image-conditioned toy generators: a shared encoder, a family decoder, no skip connections.

After AutoGAN (Zhang, Karaman and Chang, WIFS 2019, "Detecting and simulating artifacts in
GAN fake images"): a generator reconstructs a real 64x64 crop through an 8x8 bottleneck, so
its output shows the content of a real photo while every detail is synthesised by the
family's upsampling decoder, which leaves that family's trace.

``Generator(x: [N, 3, 64, 64]) -> [N, 3, 64, 64]``, both in [-1, 1]:

    encoder   Conv4x4/s2 (3 -> w) + LeakyReLU(0.2)          64 -> 32
              Conv4x4/s2 (w -> 2w) + LeakyReLU(0.2)         32 -> 16
              Conv4x4/s2 (2w -> 4w) + LeakyReLU(0.2)        16 -> 8
              Conv3x3 (4w -> 4w)                            bottleneck z: [N, 4w, 8, 8]
    decoder   the family's three doublings 8 -> 64 (decoders.py, unseen.py)

The encoder is the same for every family (no normalisation, so it behaves the same in train
and eval mode); nothing of the input reaches the decoder except ``z``.
Families: ``ARCH_LABELS`` (closed set, labels 1-4) and ``UNSEEN_ARCHS`` (open set, label -1).
The discriminator (``Discriminator``) is a PatchGAN (pix2pix) shared by every family.
"""
import torch
from torch import nn

from .decoders import BilinearDecoder, DCGANDecoder, ProGANDecoder, SubpixelConv, SubpixelDecoder
from .unseen import ResizeBlurDecoder, StyleGAN2Decoder

from data.annotations import UNKNOWN_LABEL

IMAGE_SIZE = 64

DECODERS = {
    "dcgan": DCGANDecoder,
    "progan": ProGANDecoder,
    "bilinear": BilinearDecoder,
    "subpixel": SubpixelDecoder,
    "stylegan2": StyleGAN2Decoder,
    "resizeblur": ResizeBlurDecoder,
}
ARCH_LABELS = {"dcgan": 1, "progan": 2, "bilinear": 3, "subpixel": 4}
UNSEEN_ARCHS = ("stylegan2", "resizeblur")
FAMILY_LABELS = {**ARCH_LABELS, **{arch: UNKNOWN_LABEL for arch in UNSEEN_ARCHS}}


class Encoder(nn.Module):
    """Three stride-2 convolutions and one 3x3: [N, 3, 64, 64] -> [N, 4w, 8, 8]."""

    def __init__(self, width: int):
        super().__init__()
        c = [3, width, 2 * width, 4 * width]
        layers = []
        for c_in, c_out in zip(c[:-1], c[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(c[-1], c[-1], 3, 1, 1)]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class Generator(nn.Module):
    """Encoder -> bottleneck -> family decoder, with no other path from input to output."""

    def __init__(self, arch: str, width: int):
        super().__init__()
        self.arch = arch
        self.encoder = Encoder(width)
        self.decoder = DECODERS[arch](width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class Discriminator(nn.Module):
    """PatchGAN: 64 -> 32 -> 16 -> 8, one logit per 8x8 cell: ``[N, 3, 64, 64] -> [N, 64]``.

    Conv(k=4, s=2, p=1) + LeakyReLU(0.2) (BatchNorm from the second block on), then a 3x3
    conv to one unnormalised score per cell (each sees a 46x46 receptive field).
    """

    def __init__(self, width: int):
        super().__init__()
        c = [3, width, 2 * width, 4 * width]
        layers = [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(c[1:-1], c[2:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(c[-1], 1, 3, 1, 1)]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten(1)  # [N, 1, 8, 8] -> [N, 64]


def build_generator(arch: str, width: int) -> Generator:
    """Instantiate the generator of family ``arch`` (a key of DECODERS) with base width ``width``."""
    if arch not in DECODERS:
        raise ValueError(f"unknown generator architecture {arch!r}; choose from {sorted(DECODERS)}")
    return Generator(arch, width)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv/linear weights N(0, 0.02), BatchNorm gamma N(1, 0.02), beta 0;
    sub-pixel convs ICNR with std 0.02 (``Module.apply`` visits them after their conv).
    Modulated convs keep their own N(0, 1) weights (scaled at run time)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, SubpixelConv):
        module.icnr_(0.02)
