"""The log-magnitude DCT spectrum of Frank et al. (ICML 2020), as network layers.

"Leveraging Frequency Analysis for Deep Fake Image Recognition" feeds a classifier
the 2-D type-II discrete cosine transform of each image, log-scaled
(``log(|DCT| + eps)``) and standardised with the training set's mean and standard
deviation per coefficient. Here:

- ``dct_matrix(n)``: the orthonormal DCT-II basis ``C[k, i] = a_k cos(pi (2i + 1) k / 2n)``,
  ``a_0 = sqrt(1/n)``, ``a_k = sqrt(2/n)``; ``dct2(x) = C_H x C_W^T`` equals
  ``scipy.fft.dctn(x, type=2, norm="ortho")`` over the last two axes.
- ``LogDCT``: per colour channel, on the 0..255 pixel scale, in float32 (never under autocast).
- ``SpectrumStandardise``: per coefficient and channel, with the running mean and variance
  of every training image seen (a cumulative average, so after one epoch it estimates the
  training set's statistics, as Frank et al. precompute them); frozen in eval mode.
"""
import math
from typing import Dict, Tuple

import torch
from torch import nn


def dct_matrix(n: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """Orthonormal DCT-II basis [n, n]; row k is frequency k, column i is sample i."""
    k = torch.arange(n, dtype=dtype, device=device)[:, None]
    i = torch.arange(n, dtype=dtype, device=device)[None, :]
    basis = torch.cos(math.pi * (2 * i + 1) * k / (2 * n))
    scale = torch.full((n, 1), math.sqrt(2.0 / n), dtype=dtype, device=device)
    scale[0, 0] = math.sqrt(1.0 / n)
    return basis * scale


def dct2(x: torch.Tensor, rows: torch.Tensor = None, cols: torch.Tensor = None) -> torch.Tensor:
    """2-D orthonormal DCT-II over the last two axes: x [..., H, W] -> [..., H, W].

    ``rows`` [H, H] and ``cols`` [W, W] are ``dct_matrix`` results (built when not given).
    """
    height, width = x.shape[-2:]
    rows = dct_matrix(height, x.dtype, x.device) if rows is None else rows
    cols = dct_matrix(width, x.dtype, x.device) if cols is None else cols
    return rows @ x @ cols.transpose(0, 1)


class LogDCT(nn.Module):
    """x [N, C, H, W] in [-1, 1] -> log(|DCT-II(x on 0..255)| + eps) [N, C, H, W], float32.

    ``eps`` (1e-3 on the 0..255 scale, far below the quantisation noise floor of about
    0.3) only keeps exact zeros finite. The bases are cached per (size, device) and are
    not part of the state_dict.
    """

    def __init__(self, eps: float = 1e-3):
        super().__init__()
        self.eps = eps
        self._bases: Dict[Tuple[int, str], torch.Tensor] = {}

    def _basis(self, n: int, device: torch.device) -> torch.Tensor:
        key = (n, str(device))
        if key not in self._bases:
            self._bases[key] = dct_matrix(n, torch.float64, device).float()
        return self._bases[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            pixels = (x.float() + 1.0) * 127.5
            height, width = pixels.shape[-2:]
            spectrum = dct2(pixels, self._basis(height, x.device), self._basis(width, x.device))
            return torch.log(spectrum.abs() + self.eps)


class SpectrumStandardise(nn.Module):
    """(x - mean) / std per coefficient and channel, with statistics of the training images.

    Training mode: the batch [N, C, H, W] is first added to the running statistics (a
    cumulative average over every image seen), then standardised with them. Eval mode:
    the statistics are frozen. Before any training image (``count == 0``) the module is
    the identity. The statistics take the shape of the first training batch (state_dict
    keys ``mean``, ``sq_mean`` [C, H, W] and ``count``); a model trained at one image size
    refuses another.
    """

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(0))
        self.register_buffer("sq_mean", torch.zeros(0))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _update(self, x: torch.Tensor) -> None:
        n = x.shape[0]
        if int(self.count) == 0:
            self.mean.resize_(x.shape[1:]).zero_()       # in place: DDP keeps its references
            self.sq_mean.resize_(x.shape[1:]).zero_()
        weight = n / (int(self.count) + n)
        self.mean.add_(weight * (x.mean(dim=0) - self.mean))
        self.sq_mean.add_(weight * ((x * x).mean(dim=0) - self.sq_mean))
        self.count.add_(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._check_shape(x, allow_new=int(self.count) == 0)
            self._update(x.detach().float())
        if int(self.count) == 0:
            return x
        self._check_shape(x, allow_new=False)
        std = (self.sq_mean - self.mean * self.mean).clamp_min(0).add(self.eps).sqrt()
        return (x - self.mean) / std

    def _check_shape(self, x: torch.Tensor, allow_new: bool) -> None:
        if not allow_new and tuple(self.mean.shape) != tuple(x.shape[1:]):
            raise ValueError(f"the DCT baseline was trained on spectra of shape "
                             f"{tuple(self.mean.shape)} (channels, height, width) but got "
                             f"{tuple(x.shape[1:])}; evaluate it at its training image size")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("mean", "sq_mean"):
            incoming = state_dict.get(prefix + name)
            if incoming is not None:
                getattr(self, name).resize_(incoming.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
