"""Training one image-conditioned toy generator (from scratch or fine-tuning), and reconstruction.

The generator ``G`` reconstructs real crops ``x``; the loss of one step is

    D:  adv_D(D(x), D(G(x)))
    G:  adv_G(D(G(x))) + rec_weight * rec(G(x), x) + colour_weight * colour(G(x), x)

The reconstruction term (pix2pix, Isola et al. 2017) keeps the content of the photo; the
colour term (``colour_loss``: 8x8 thumbnails and per-pixel chroma) holds what an
adversarially trained decoder gets wrong first, a colour cast or colours spread by its
artefacts, either of which would be a content shortcut (see audit.py); the adversarial term
makes the decoder synthesise detail, in its family's way.

Even so, each family's reconstructions keep a colour and contrast drift of their own (the
audit scored 56 % on the closed set at 600 steps, chance 20 %). The build therefore hands
every output its input's low frequencies (``transfer_low_frequencies``, Gaussian sigma 2 px):
what is left of the generator is everything above that band, where its upsampling leaves its
trace. This is the toy zoo's stand-in for a generator that matches colours perfectly.

Adversarial losses (``d`` = discriminator logits, one per 8x8 patch, averaged):
- ``ns``: non-saturating GAN (Goodfellow et al. 2014): D: softplus(-d_real) + softplus(d_fake);
  G: softplus(-d_fake).
- ``hinge``: D: relu(1 - d_real) + relu(1 + d_fake); G: -d_fake.
- ``lsgan``: least squares (Mao et al. 2017): D: ((d_real - 1)^2 + d_fake^2) / 2; G: (d_fake - 1)^2 / 2.
Reconstruction losses: ``l1`` (mean absolute error), ``l2`` (mean squared error).

One step = one D update on a real and a reconstructed batch, then one G update through the
updated D (Adam, betas (0.5, 0.999); batches drawn with replacement, flipped left-right at
random). Both learning rates fall linearly to 0 over the last ``1 - decay_start`` of the
steps, and BatchNorm statistics are recomputed under the final weights (``recalibrate_batchnorm``):
each of the two raised the reconstructions' PSNR and removed colour casts.
Everything random comes from ``seed``: weight init through torch.manual_seed,
batch picks through an explicit torch.Generator.
"""
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from models.batchnorm import recalibrate_batchnorm

from .generators import Discriminator, build_generator, init_weights

ADVERSARIAL_LOSSES = {
    "ns": (lambda d_real, d_fake: F.softplus(-d_real).mean() + F.softplus(d_fake).mean(),
           lambda d_fake: F.softplus(-d_fake).mean()),
    "hinge": (lambda d_real, d_fake: F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean(),
              lambda d_fake: -d_fake.mean()),
    "lsgan": (lambda d_real, d_fake: 0.5 * ((d_real - 1).pow(2).mean() + d_fake.pow(2).mean()),
              lambda d_fake: 0.5 * (d_fake - 1).pow(2).mean()),
}
RECONSTRUCTION_LOSSES = {"l1": F.l1_loss, "l2": F.mse_loss}


@dataclass(frozen=True)
class TrainSettings:
    """Hyperparameters of one generator training (defaults: the default zoo's)."""
    adv_loss: str = "ns"          # key of ADVERSARIAL_LOSSES
    rec_loss: str = "l1"          # key of RECONSTRUCTION_LOSSES
    steps: int = 600
    batch_size: int = 8
    lr_g: float = 1e-3
    lr_d: float = 2e-4
    rec_weight: float = 10.0      # relative to the adversarial term (weight 1)
    colour_weight: float = 10.0   # colour_loss: 8x8 thumbnails and per-pixel chroma
    decay_start: float = 0.5      # fraction of the steps after which both rates fall linearly to 0
    bn_batches: int = 32          # batches over which BatchNorm statistics are recomputed at the end


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tensor_to_images(tensor: torch.Tensor) -> np.ndarray:
    """float [N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3] (rounded)."""
    scaled = (tensor.detach().clamp(-1, 1) + 1.0) * 127.5
    return scaled.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def make_gan(arch: str, width: int, disc_width: int, seed: int) -> tuple:
    """A freshly initialised (generator, discriminator) pair; init depends only on ``seed``."""
    torch.manual_seed(seed)
    generator, discriminator = build_generator(arch, width), Discriminator(disc_width)
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    return generator, discriminator


def _batch(crops: torch.Tensor, batch_size: int, rng: torch.Generator) -> torch.Tensor:
    """Random batch [B, 3, H, W] of ``crops``, each flipped left-right with probability 0.5."""
    batch = crops[torch.randint(0, len(crops), (batch_size,), generator=rng)]
    flip = torch.rand(batch_size, generator=rng) < 0.5
    return torch.where(flip[:, None, None, None], batch.flip(3), batch)


def colour_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Colour and low-frequency consistency of ``fake`` with ``real`` (both [N, 3, H, W]):

    - L1 between the 8x8 average-pooled images (layout and local mean colour), plus
    - L1 between their chroma, every pixel's deviation from its own grey level
      (``x - mean_c(x)``): errors that differ between the colour channels. Independent
      per-channel errors decorrelate the colours and spread an image's joint colour
      histogram (a shortcut, audit.py) far more than the same error in brightness does.
    """
    pooled = F.l1_loss(F.adaptive_avg_pool2d(fake, 8), F.adaptive_avg_pool2d(real, 8))
    chroma = F.l1_loss(fake - fake.mean(dim=1, keepdim=True), real - real.mean(dim=1, keepdim=True))
    return pooled + chroma


def _check_settings(settings: TrainSettings) -> None:
    if settings.adv_loss not in ADVERSARIAL_LOSSES:
        raise ValueError(f"unknown GAN loss {settings.adv_loss!r}; choose from {sorted(ADVERSARIAL_LOSSES)}")
    if settings.rec_loss not in RECONSTRUCTION_LOSSES:
        raise ValueError(f"unknown reconstruction loss {settings.rec_loss!r}; "
                         f"choose from {sorted(RECONSTRUCTION_LOSSES)}")


def train_generator(generator, discriminator, crops: torch.Tensor, settings: TrainSettings, seed: int,
                    progress=None) -> dict:
    """Train ``generator`` to reconstruct ``crops`` against ``discriminator``, in place.

    Args:
        crops: float [N, 3, 64, 64] in [-1, 1], the training crops of the domain.
        progress: optional callable(step, d_loss, g_loss, rec_loss) called after every step.
    Returns:
        {"d_loss": [...], "g_adv": [...], "rec": [...], "colour": [...]}: one float per step.
    Raises:
        FloatingPointError: a loss became NaN or infinite.
    """
    _check_settings(settings)
    d_loss_fn, g_loss_fn = ADVERSARIAL_LOSSES[settings.adv_loss]
    rec_fn = RECONSTRUCTION_LOSSES[settings.rec_loss]
    rng = torch.Generator().manual_seed(seed)
    opt_g = torch.optim.Adam(generator.parameters(), lr=settings.lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=settings.lr_d, betas=(0.5, 0.999))
    schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, _linear_decay(settings)) for opt in (opt_g, opt_d)]
    generator.train()
    discriminator.train()
    history = {"d_loss": [], "g_adv": [], "rec": [], "colour": []}
    for step in range(settings.steps):
        real = _batch(crops, settings.batch_size, rng)
        fake = generator(real)
        d_loss = d_loss_fn(discriminator(real), discriminator(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        g_adv, rec, colour = g_loss_fn(discriminator(fake)), rec_fn(fake, real), colour_loss(fake, real)
        g_loss = g_adv + settings.rec_weight * rec + settings.colour_weight * colour
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for scheduler in schedulers:
            scheduler.step()

        values = {"d_loss": d_loss.item(), "g_adv": g_adv.item(), "rec": rec.item(), "colour": colour.item()}
        if not all(math.isfinite(v) for v in values.values()):
            raise FloatingPointError(f"non-finite generator training loss at step {step}: {values}")
        for key, value in values.items():
            history[key].append(value)
        if progress is not None:
            progress(step, values["d_loss"], values["g_adv"], values["rec"])
    if settings.bn_batches > 0:   # BatchNorm statistics under the final weights (models.batchnorm)
        recalibrate_batchnorm(generator, (_batch(crops, settings.batch_size, rng) for _ in range(settings.bn_batches)))
    return history


def _linear_decay(settings: TrainSettings):
    """Learning-rate factor of step t: 1 until ``decay_start * steps``, then linearly to 0."""
    start = settings.decay_start * settings.steps

    def factor(step: int) -> float:
        return 1.0 if step < start else max(0.0, (settings.steps - step) / max(settings.steps - start, 1.0))
    return factor


@torch.no_grad()
def reconstruct_images(generator, images: np.ndarray, batch_size: int = 100) -> np.ndarray:
    """The generator's reconstructions (eval mode) of uint8 [N, 64, 64, 3]: uint8, same shape."""
    generator.eval()
    chunks = [tensor_to_images(generator(images_to_tensor(images[i:i + batch_size])))
              for i in range(0, len(images), batch_size)]
    return np.concatenate(chunks)


def transfer_low_frequencies(outputs: np.ndarray, inputs: np.ndarray, sigma: float) -> np.ndarray:
    """``outputs - blur(outputs) + blur(inputs)`` (Gaussian blur of ``sigma`` px, reflected borders),
    rounded to uint8; both uint8 [N, H, W, 3], paired image by image.

    The generator's own low frequencies (colour cast, brightness and contrast drift, what a
    colour histogram and a thumbnail see) are replaced by its input's; its high frequencies,
    where the upsampling traces live (checkerboards at 2-4 px, blocks, missing detail), are
    kept. ``sigma <= 0`` returns ``outputs`` unchanged.
    """
    if sigma <= 0:
        return outputs
    if outputs.shape != inputs.shape:
        raise ValueError(f"outputs {outputs.shape} and inputs {inputs.shape} must pair image by image")
    result = np.empty(outputs.shape, dtype=np.uint8)
    for index, (output, source) in enumerate(zip(outputs.astype(np.float32), inputs.astype(np.float32))):
        low_out = cv2.GaussianBlur(output, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        low_in = cv2.GaussianBlur(source, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        result[index] = np.clip(np.rint(output - low_out + low_in), 0, 255).astype(np.uint8)
    return result


def psnr(reconstructed: np.ndarray, original: np.ndarray) -> float:
    """Mean over images of the PSNR (dB, peak 255) between two uint8 [N, H, W, 3] stacks."""
    error = (reconstructed.astype(np.float64) - original.astype(np.float64)) ** 2
    mse = np.maximum(error.reshape(len(error), -1).mean(axis=1), 1e-10)
    return float(np.mean(10.0 * np.log10(255.0 ** 2 / mse)))
