"""Batched resize / crop / normalise on the training device (the fast data path).

The dataset decodes each image once and hands over uint8 [3, c, c] images plus the
crop corners it drew; this module resizes a whole batch at once with torch's
antialiased bicubic filter (a = -0.5, PIL's kernel), cuts all crops with one
gather and normalises. Compared with PIL's uint8 bicubic output, values differ by
rounding only (PIL rounds and clamps to uint8 after each resize; here the result
stays in float and is clamped to [0, 255]): at most a few grey levels, mean below 0.5.
"""
import torch
import torch.nn.functional as F


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 or float [N, 3, h, w] (0..255) -> float [N, 3, size, size] (0..255), PIL-style bicubic."""
    images = images.float()
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0.0, 255.0)


def gather_crops(images: torch.Tensor, offsets: torch.Tensor, crop: int) -> torch.Tensor:
    """Cut crops: images [N, C, S, S], offsets [N, n, 2] (y, x) -> [N, n, C, crop, crop]."""
    n_images, n_crops = offsets.shape[:2]
    span = torch.arange(crop, device=images.device)
    offsets = offsets.to(images.device)
    rows = (offsets[..., 0, None] + span)[:, :, :, None]                    # [N, n, crop, 1]
    cols = (offsets[..., 1, None] + span)[:, :, None, :]                    # [N, n, 1, crop]
    batch = torch.arange(n_images, device=images.device)[:, None, None, None]
    patches = images[batch, :, rows, cols]                                  # [N, n, crop, crop, C]
    return patches.permute(0, 1, 4, 2, 3)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """0..255 -> [-1, 1] (mean 0.5, std 0.5)."""
    return images / 127.5 - 1.0


def resize_crop_normalise(images: torch.Tensor, offsets: torch.Tensor, size: int,
                          crop: int) -> torch.Tensor:
    """uint8 [N, 3, s, s] + offsets [N, n, 2] -> normalised crops [N, n, 3, crop, crop] of the size-px image."""
    return normalise(gather_crops(resize_batch(images, size), offsets, crop))


def resize_normalise(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, 3, s, s] -> normalised whole images [N, 3, size, size] (evaluation)."""
    return normalise(resize_batch(images, size))
