"""Two decoder families never trained on by the attribution models (open-set, label -1).

Same contract as decoders.py: ``z: [N, 4w, 8, 8] -> [N, 3, 64, 64]`` in [-1, 1], three
doublings, but of designs absent from the closed set:

| name         | one doubling                                                                 | output                        |
|--------------|------------------------------------------------------------------------------|-------------------------------|
| `stylegan2`  | modulated + demodulated ConvTranspose3x3 (stride 2) + [1,3,3,1] blur + LeakyReLU | sum of per-resolution toRGBs  |
| `resizeblur` | nearest x2 + fixed [1,4,6,4,1] binomial blur + Conv3x3 + GroupNorm + SiLU      | Conv3x3                       |

StyleGAN2 (Karras et al. 2020) takes its per-layer styles from a mapping MLP; here the MLP
reads the globally pooled bottleneck (there is no latent code), so the styles, too, reach
the output only through the bottleneck. No noise injection (the reconstructions stay a
function of the input alone).
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

from .decoders import decoder_widths


def _binomial_kernel(taps: list, channels: int) -> torch.Tensor:
    """Depthwise 2-D kernel [channels, 1, k, k], the outer product of ``taps``, summing to 1."""
    row = torch.tensor(taps, dtype=torch.float32)
    kernel = row[:, None] * row[None, :]
    return (kernel / kernel.sum()).expand(channels, 1, len(taps), len(taps)).clone()


class ModulatedConv(nn.Module):
    """StyleGAN2 modulated convolution: weight * style per input channel, optionally
    demodulated (unit norm per output channel), optionally upsampling x2 as a stride-2
    transposed conv followed by a [1,3,3,1] blur.

    forward(x: [N, C_in, H, W], style: [N, C_in]) -> [N, C_out, H', W'] (H' = 2H when ``up``).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, demodulate: bool = True, up: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = 1.0 / math.sqrt(c_in * kernel * kernel)
        self.demodulate, self.up, self.padding = demodulate, up, kernel // 2
        if up:
            self.register_buffer("blur", _binomial_kernel([1, 3, 3, 1], c_out) * 4.0)  # gain 4: zero-stuffing

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        n, c_in, height, width = x.shape
        weight = self.scale * self.weight[None] * style[:, None, :, None, None]  # [N, C_out, C_in, k, k]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        c_out, k = weight.shape[1], weight.shape[-1]
        x = x.reshape(1, n * c_in, height, width)  # one group per sample
        if self.up:
            weight = weight.transpose(1, 2).reshape(n * c_in, c_out, k, k)  # transposed-conv layout
            x = F.conv_transpose2d(x, weight, stride=2, groups=n)  # [1, N*C_out, 2H+1, 2W+1]
            x = x.view(n, c_out, *x.shape[2:])
            x = F.conv2d(F.pad(x, (1, 1, 1, 1)), self.blur, groups=c_out)  # -> [N, C_out, 2H, 2W]
        else:
            x = F.conv2d(x, weight.reshape(n * c_out, c_in, k, k), padding=self.padding, groups=n)
            x = x.view(n, c_out, height, width)
        return x + self.bias[None, :, None, None]


class StyleGAN2Decoder(nn.Module):
    """Mapping MLP on the pooled bottleneck -> styles; a modulated conv at 8x8, three
    modulated upsampling convs, and a toRGB (modulated 1x1, not demodulated) at every
    resolution whose outputs are upsampled bilinearly and summed (StyleGAN2's skip generator)."""

    def __init__(self, width: int):
        super().__init__()
        c = decoder_widths(width)
        self.mapping = nn.Sequential(nn.Linear(c[0], c[0]), nn.LeakyReLU(0.2), nn.Linear(c[0], c[0]))
        self.convs = nn.ModuleList([ModulatedConv(c[0], c[0], 3)] +
                                   [ModulatedConv(c_in, c_out, 3, up=True) for c_in, c_out in zip(c[:-1], c[1:])])
        self.to_rgbs = nn.ModuleList([ModulatedConv(ch, 3, 1, demodulate=False) for ch in [c[0]] + c[1:]])
        self.styles = nn.ModuleList([nn.Linear(c[0], conv.weight.shape[1]) for conv in self.convs] +
                                    [nn.Linear(c[0], rgb.weight.shape[1]) for rgb in self.to_rgbs])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        latent = self.mapping(z.mean(dim=(2, 3)))  # [N, 4w, 8, 8] -> [N, 4w]
        styles = [affine(latent) + 1.0 for affine in self.styles]  # start near unmodulated
        x, rgb = z, None
        for index, (conv, to_rgb) in enumerate(zip(self.convs, self.to_rgbs)):
            x = F.leaky_relu(conv(x, styles[index]), 0.2) * math.sqrt(2.0)
            out = to_rgb(x, styles[len(self.convs) + index])
            rgb = out if rgb is None else out + F.interpolate(rgb, scale_factor=2, mode="bilinear",
                                                              align_corners=False)
        return torch.tanh(rgb)


class BlurUpsample(nn.Module):
    """Nearest-neighbour x2 followed by a fixed 5-tap binomial low-pass (anti-aliased resize)."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("kernel", _binomial_kernel([1, 4, 6, 4, 1], channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.kernel, groups=x.shape[1])


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(channels, 8), channels)


class ResizeBlurDecoder(nn.Module):
    """Blurred resize + 3x3 conv + GroupNorm + SiLU (the resize-convolution of diffusion/VQ decoders)."""

    def __init__(self, width: int):
        super().__init__()
        c = decoder_widths(width)
        blocks = [_group_norm(c[0]), nn.SiLU()]
        for c_in, c_out in zip(c[:-1], c[1:]):
            blocks += [BlurUpsample(c_in), nn.Conv2d(c_in, c_out, 3, 1, 1), _group_norm(c_out), nn.SiLU()]
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Conv2d(c[-1], 3, 3, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_rgb(self.blocks(z)))
