"""The four closed-set decoder families (labels 1-4): how an 8x8 bottleneck becomes 64x64 RGB.

Every decoder maps ``z: [N, 4w, 8, 8]`` to ``[N, 3, 64, 64]`` in [-1, 1] in three doublings
(8 -> 16 -> 32 -> 64) and differs from the others as real GAN families do, in its
upsampling, normalisation and activation:

| label | name       | one doubling                                                  | to RGB                          |
|-------|------------|---------------------------------------------------------------|---------------------------------|
| 1     | `dcgan`    | ConvTranspose2d(k=4, s=2, p=1) + BatchNorm + ReLU              | the 3rd transposed conv         |
| 2     | `progan`   | nearest x2 + Conv3x3 + LeakyReLU(0.2) + pixel norm             | Conv1x1 (ProGAN's toRGB)        |
| 3     | `bilinear` | bilinear x2 + Conv3x3 + BatchNorm + ReLU                       | Conv3x3                         |
| 4     | `subpixel` | Conv3x3 to 4C + BatchNorm + ReLU + PixelShuffle(2) (ICNR init) | the 3rd sub-pixel conv          |

Channels after the doublings: ``2w, w`` and then either RGB (dcgan, subpixel: the third
doubling outputs the image, as in the DCGAN tutorial) or ``w/2`` features and a conv to RGB
(progan, bilinear: resize-convolutions need a conv at full resolution to make detail at
all). Every output ends in tanh.
"""
import torch
from torch import nn


def decoder_widths(width: int) -> list:
    """Channels at resolutions 8 (the bottleneck), 16, 32 and 64 (when there are features at 64)."""
    return [4 * width, 2 * width, width, max(width // 2, 1)]


class DCGANDecoder(nn.Module):
    """Transposed convolutions all the way (PyTorch DCGAN tutorial structure)."""

    def __init__(self, width: int):
        super().__init__()
        c = decoder_widths(width)
        layers = [nn.BatchNorm2d(c[0]), nn.ReLU(True)]
        for c_in, c_out in zip(c[:2], c[1:3]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(c[2], 3, 4, 2, 1), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class PixelNorm(nn.Module):
    """ProGAN pixel-wise feature normalisation: x / sqrt(mean_c(x^2) + eps)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class ProGANDecoder(nn.Module):
    """Nearest-neighbour upsampling + 3x3 conv + LeakyReLU + pixel norm; 1x1 toRGB."""

    def __init__(self, width: int):
        super().__init__()
        c = decoder_widths(width)
        blocks = [PixelNorm()]
        for c_in, c_out in zip(c[:-1], c[1:]):
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1),
                       nn.LeakyReLU(0.2), PixelNorm()]
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Conv2d(c[-1], 3, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_rgb(self.blocks(z)))


class BilinearDecoder(nn.Module):
    """Bilinear upsampling (resize-convolution) + 3x3 conv + BatchNorm + ReLU; 3x3 conv to RGB."""

    def __init__(self, width: int):
        super().__init__()
        c = decoder_widths(width)
        blocks = [nn.BatchNorm2d(c[0]), nn.ReLU(True)]
        for c_in, c_out in zip(c[:-1], c[1:]):
            blocks += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Conv2d(c[-1], 3, 3, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_rgb(self.blocks(z)))


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


class SubpixelDecoder(nn.Module):
    """Sub-pixel convolutions all the way; the third outputs RGB."""

    def __init__(self, width: int):
        super().__init__()
        c = decoder_widths(width)
        self.blocks = nn.Sequential(nn.BatchNorm2d(c[0]), nn.ReLU(True),
                                    SubpixelConv(c[0], c[1]), SubpixelConv(c[1], c[2]))
        self.to_rgb = SubpixelConv(c[2], 3, final=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_rgb(self.blocks(z)))
