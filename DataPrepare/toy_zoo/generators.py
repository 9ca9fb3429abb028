"""Four small 64x64 generator architectures and one shared discriminator.

Each generator maps latent codes ``z: [N, nz]`` to images ``[N, 3, 64, 64]`` in [-1, 1]
and differs from the others only in *how it upsamples*, which is the architecture trace
DNA-Det attributes:

| label | name       | upsampling (4x4 -> 64x64, four doublings)                  |
|-------|------------|------------------------------------------------------------|
| 1     | `dcgan`    | ConvTranspose2d(k=4, s=2, p=1) + BatchNorm + ReLU          |
| 2     | `progan`   | nearest-neighbour x2 + Conv3x3 + LeakyReLU(0.2) + pixel norm |
| 3     | `bilinear` | bilinear x2 + Conv3x3 + BatchNorm + ReLU                    |
| 4     | `subpixel` | Conv3x3 to 4C channels + BatchNorm + ReLU + PixelShuffle(2)  |

Channel widths at resolutions 4, 8, 16, 32 are ``8w, 4w, 2w, w`` (``width=w``); the fourth
upsampling layer outputs RGB directly, as in the DCGAN tutorial, followed by tanh.
Weights start from the DCGAN initialisation (``init_weights``). Sub-pixel convolutions use
ICNR (their four phases start equal) and normalise before the shuffle: without both, the
subpixel generator stayed in checkerboard noise within the few hundred steps the zoo affords.
"""
import torch
from torch import nn

IMAGE_SIZE = 64
LATENT_DIM = 64


def _stage_widths(width: int) -> list:
    """Channels at resolutions 4, 8, 16, 32 (the 64x64 output has 3)."""
    return [8 * width, 4 * width, 2 * width, width]


class DCGANGenerator(nn.Module):
    """PyTorch DCGAN-tutorial structure: transposed convolutions all the way."""

    def __init__(self, width: int = 16, nz: int = LATENT_DIM):
        super().__init__()
        c = _stage_widths(width)
        layers = [nn.ConvTranspose2d(nz, c[0], 4, 1, 0, bias=False), nn.BatchNorm2d(c[0]), nn.ReLU(True)]
        for c_in, c_out in zip(c[:-1], c[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(c[-1], 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z[:, :, None, None])  # [N, nz] -> [N, nz, 1, 1] -> [N, 3, 64, 64]


class PixelNorm(nn.Module):
    """ProGAN pixel-wise feature normalisation: x / sqrt(mean_c(x^2) + eps)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class _DenseStem(nn.Module):
    """Latent -> [N, C, 4, 4] feature map through one linear layer (non-DCGAN generators)."""

    def __init__(self, nz: int, channels: int, activation: nn.Module, norm: nn.Module):
        super().__init__()
        self.channels = channels
        self.linear = nn.Linear(nz, channels * 16)
        self.post = nn.Sequential(norm, activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.linear(z).view(-1, self.channels, 4, 4)  # [N, C*16] -> [N, C, 4, 4]
        return self.post(x)


class ProGANGenerator(nn.Module):
    """ProGAN-style: pixel-normalised input, nearest upsampling, 3x3 convs, pixel norm."""

    def __init__(self, width: int = 16, nz: int = LATENT_DIM):
        super().__init__()
        c = _stage_widths(width)
        self.input_norm = PixelNorm()
        self.stem = _DenseStem(nz, c[0], nn.LeakyReLU(0.2), nn.Identity())
        blocks = [PixelNorm()]
        for c_in, c_out in zip(c[:-1], c[1:]):
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1),
                       nn.LeakyReLU(0.2), PixelNorm()]
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c[-1], 3, 3, 1, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_rgb(self.blocks(self.stem(self.input_norm(z)))))


class BilinearGenerator(nn.Module):
    """Bilinear upsampling (resize-convolution) followed by 3x3 convs."""

    def __init__(self, width: int = 16, nz: int = LATENT_DIM):
        super().__init__()
        c = _stage_widths(width)
        self.stem = _DenseStem(nz, c[0], nn.ReLU(True), nn.BatchNorm2d(c[0]))
        blocks = []
        for c_in, c_out in zip(c[:-1], c[1:]):
            blocks += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                    nn.Conv2d(c[-1], 3, 3, 1, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_rgb(self.blocks(self.stem(z))))


class SubpixelConv(nn.Module):
    """Sub-pixel convolution (ESPCN, Shi et al. 2016): Conv3x3 to 4C channels
    [+ BatchNorm + ReLU unless ``final``], then PixelShuffle(2): [N, C_in, H, W] -> [N, C, 2H, 2W]."""

    def __init__(self, c_in: int, c_out: int, final: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, 4 * c_out, 3, 1, 1, bias=final)
        self.post = nn.Identity() if final else nn.Sequential(nn.BatchNorm2d(4 * c_out), nn.ReLU(True))
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.post(self.conv(x)))

    @torch.no_grad()
    def icnr_(self, std: float) -> None:
        """ICNR (Aitken et al. 2017): one N(0, std) kernel per output channel, copied to its 4
        phases, so the layer starts as a conv followed by nearest-neighbour upsampling."""
        out_channels, in_channels, k, _ = self.conv.weight.shape
        base = torch.randn(out_channels // 4, in_channels, k, k) * std
        self.conv.weight.copy_(base.repeat_interleave(4, dim=0))  # channel c*4 + phase <- base[c]


class SubpixelGenerator(nn.Module):
    """Sub-pixel convolution upsampling all the way (PixelShuffle after a 3x3 conv)."""

    def __init__(self, width: int = 16, nz: int = LATENT_DIM):
        super().__init__()
        c = _stage_widths(width)
        self.stem = _DenseStem(nz, c[0], nn.ReLU(True), nn.BatchNorm2d(c[0]))
        self.blocks = nn.Sequential(*[SubpixelConv(c_in, c_out) for c_in, c_out in zip(c[:-1], c[1:])])
        self.to_rgb = SubpixelConv(c[-1], 3, final=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_rgb(self.blocks(self.stem(z))))


class Discriminator(nn.Module):
    """DCGAN discriminator shared by every architecture: 64 -> 32 -> 16 -> 8 -> 4 -> 1 logit.

    Conv(k=4, s=2, p=1) + LeakyReLU(0.2) (BatchNorm from the second block on), then a
    4x4 valid conv to one unnormalised score per image: ``[N, 3, 64, 64] -> [N]``.
    """

    def __init__(self, width: int = 16):
        super().__init__()
        c = [width, 2 * width, 4 * width, 8 * width]
        layers = [nn.Conv2d(3, c[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(c[:-1], c[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(c[-1], 1, 4, 1, 0)]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten()  # [N, 1, 1, 1] -> [N]


GENERATORS = {
    "dcgan": DCGANGenerator,
    "progan": ProGANGenerator,
    "bilinear": BilinearGenerator,
    "subpixel": SubpixelGenerator,
}
ARCH_LABELS = {"dcgan": 1, "progan": 2, "bilinear": 3, "subpixel": 4}


def build_generator(arch: str, width: int) -> nn.Module:
    """Instantiate generator ``arch`` (one of GENERATORS) with base width ``width``."""
    if arch not in GENERATORS:
        raise ValueError(f"unknown generator architecture {arch!r}; choose from {sorted(GENERATORS)}")
    return GENERATORS[arch](width=width)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), BatchNorm gamma N(1, 0.02), beta 0;
    sub-pixel convs ICNR with std 0.02 (``Module.apply`` visits them after their conv)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, SubpixelConv):
        module.icnr_(0.02)

