"""Adversarial training of one toy generator (from scratch or fine-tuning), and sampling.

Losses (``d`` = discriminator logits):
- ``ns``: non-saturating GAN (Goodfellow et al. 2014): D: softplus(-d_real) + softplus(d_fake);
  G: softplus(-d_fake).
- ``hinge``: D: relu(1 - d_real) + relu(1 + d_fake); G: -d_fake.
- ``lsgan``: least squares (Mao et al. 2017): D: ((d_real - 1)^2 + d_fake^2) / 2; G: (d_fake - 1)^2 / 2.

One step = one D update on a real and a fake batch, then one G update through the updated D
on the same fake batch (PyTorch DCGAN tutorial recipe; Adam betas (0.5, 0.999); real batches
flipped left-right at random). Learning rates: D 2e-4; G ``G_LEARNING_RATES[loss]``: 5e-4 for
ns and hinge (G faster, because in a few hundred CPU steps the discriminator otherwise wins
outright), the standard 2e-4 for lsgan (whose quadratic G loss collapsed the subpixel
generator to flat grey at 5e-4).
Everything random comes from ``seed``: weight init through torch.manual_seed, latents and
batch picks through an explicit torch.Generator.
"""
import math

import numpy as np
import torch
from torch.nn import functional as F

from .generators import LATENT_DIM, Discriminator, build_generator, init_weights

G_LEARNING_RATES = {"ns": 5e-4, "hinge": 5e-4, "lsgan": 2e-4}
LOSSES = {
    "ns": (lambda d_real, d_fake: F.softplus(-d_real).mean() + F.softplus(d_fake).mean(),
           lambda d_fake: F.softplus(-d_fake).mean()),
    "hinge": (lambda d_real, d_fake: F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean(),
              lambda d_fake: -d_fake.mean()),
    "lsgan": (lambda d_real, d_fake: 0.5 * ((d_real - 1).pow(2).mean() + d_fake.pow(2).mean()),
              lambda d_fake: 0.5 * (d_fake - 1).pow(2).mean()),
}


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tensor_to_images(tensor: torch.Tensor) -> np.ndarray:
    """float [N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3] (rounded)."""
    scaled = (tensor.detach().clamp(-1, 1) + 1.0) * 127.5
    return scaled.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def make_gan(arch: str, width: int, seed: int) -> tuple:
    """A freshly initialised (generator, discriminator) pair; init depends only on ``seed``."""
    torch.manual_seed(seed)
    generator, discriminator = build_generator(arch, width), Discriminator(width)
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    return generator, discriminator


def _real_batch(real: torch.Tensor, batch_size: int, rng: torch.Generator) -> torch.Tensor:
    """Random real batch [B, 3, H, W], each image flipped left-right with probability 0.5."""
    batch = real[torch.randint(0, len(real), (batch_size,), generator=rng)]
    flip = torch.rand(batch_size, generator=rng) < 0.5
    return torch.where(flip[:, None, None, None], batch.flip(3), batch)


def train_gan(generator, discriminator, real: torch.Tensor, loss: str, steps: int, batch_size: int,
              seed: int, lr_d: float = 2e-4, progress=None) -> dict:
    """Train ``generator`` against ``discriminator`` on ``real`` images, in place.

    Args:
        real: float [N, 3, 64, 64] in [-1, 1], the domain's real images.
        loss: key of LOSSES.
        progress: optional callable(step, d_loss, g_loss) called after every step.
    Returns:
        {"d_loss": [...], "g_loss": [...]} one float per step.
    Raises:
        FloatingPointError: a loss became NaN or infinite.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown GAN loss {loss!r}; choose from {sorted(LOSSES)}")
    d_loss_fn, g_loss_fn = LOSSES[loss]
    rng = torch.Generator().manual_seed(seed)
    opt_g = torch.optim.Adam(generator.parameters(), lr=G_LEARNING_RATES[loss], betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=(0.5, 0.999))
    generator.train()
    discriminator.train()
    history = {"d_loss": [], "g_loss": []}
    for step in range(steps):
        fake = generator(torch.randn(batch_size, LATENT_DIM, generator=rng))
        d_loss = d_loss_fn(discriminator(_real_batch(real, batch_size, rng)), discriminator(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        g_loss = g_loss_fn(discriminator(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

        d_value, g_value = d_loss.item(), g_loss.item()
        if not (math.isfinite(d_value) and math.isfinite(g_value)):
            raise FloatingPointError(f"non-finite GAN loss at step {step}: D {d_value}, G {g_value}")
        history["d_loss"].append(d_value)
        history["g_loss"].append(g_value)
        if progress is not None:
            progress(step, d_value, g_value)
    return history


@torch.no_grad()
def generate_images(generator, count: int, seed: int, batch_size: int = 200) -> np.ndarray:
    """Sample ``count`` images with the generator in eval mode: uint8 [count, 64, 64, 3]."""
    generator.eval()
    rng = torch.Generator().manual_seed(seed)
    latents = torch.randn(count, LATENT_DIM, generator=rng)
    chunks = [tensor_to_images(generator(latents[i:i + batch_size])) for i in range(0, count, batch_size)]
    return np.concatenate(chunks)
