"""The DNA-Det training loop, both stages (SPEC sections 3-6).

Stage ``pretrain`` learns which of 170 transformations was applied; stage ``main``
learns the architecture label. Both minimise patchwise cross-entropy plus the
supervised contrastive loss over the crops of each image, combined by automatic
weighting, with Adam and a per-iteration StepLR. Each epoch ends with
``evaluate`` on the validation list, best-model selection by ``config.metric``,
early stopping, periodic snapshots and an atomic resume checkpoint.
"""
import itertools
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from tqdm import tqdm

from configs.base import Config
from data.batched import resize_crop_normalise, to_device
from data.preprocess import final_size
from engine import builders
from engine.device import amp_dtype, autocast
from engine.distributed import DistContext
from engine.rundir import RunDirectory
from models import SupConLoss, recalibrate_batchnorm


class NonFiniteLossError(RuntimeError):
    """Raised when a loss becomes NaN or infinite; the last checkpoint is left untouched."""


@dataclass
class TrainJob:
    """What to train: lists, output directory, stage and optional stage-1 weights."""
    config: Config
    config_name: str
    run_dir: str
    train_list: str
    val_list: str
    stage: str = "main"                      # main | pretrain
    pretrain_model_path: Optional[str] = None
    resume: bool = False
    device: torch.device = torch.device("cpu")


def batch_views(batch, config: Config, device):
    """The data half of a step: (views [n_images * n_views, 3, m, m] float on ``device``, labels [n_images]).

    batch: images [B, G, n, 3, m, m] float (pil; batched on CPU, made by the loader's
    ``CropCollate``) or [B, G, 3, s, s] uint8 (batched on CUDA; a list of B*G squares when
    their sides differ), offsets [B, G, n, 2],
    labels [B, G]; G = images per item (K classes or 1). Uint8 squares are resized,
    cropped and normalised here, on ``device``.
    """
    images, offsets, labels = batch
    n_images = labels.numel()
    crops = builders.crop_settings(config)
    n_views, size = crops["crop_num"], crops["multi_size"]
    image_labels = labels.reshape(n_images).to(device, non_blocking=True)
    if isinstance(images, list) or images.dtype == torch.uint8:   # squares: one tensor or mixed sides
        squares = to_device(images if isinstance(images, list) else images.reshape(n_images, *images.shape[2:]),
                            device)
        views = resize_crop_normalise(squares, offsets.reshape(n_images, n_views, 2),
                                      final_size(config.resize_size, config.second_resize_size), size)
    else:
        views = images.to(device, non_blocking=True)
    x = views.reshape(n_images * n_views, 3, size, size)        # every crop is a sample
    if device.type == "cuda" and config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, image_labels


def views_losses(model, loss_weights, x, image_labels, device, amp, supcon: SupConLoss,
                 dist: Optional[DistContext] = None) -> dict:
    """The model half of a step: x [n_images * n_views, 3, m, m], image_labels [n_images] -> losses."""
    n_images = image_labels.numel()
    n_views = x.shape[0] // n_images
    with autocast(device, amp):
        logits, projections = model(x)
    ce = F.cross_entropy(logits.float(), image_labels.repeat_interleave(n_views))
    losses = {"ce": ce, "loss": ce}
    if projections is not None:
        # crops of one image are its views: [n_images, n_views, proj_dim]
        features = projections.float().reshape(n_images, n_views, -1)
        if dist is not None and dist.world_size > 1:   # contrast against the global batch
            features, image_labels = dist.gather_with_grad(features), dist.gather(image_labels)
        losses["supcon"] = supcon(features, image_labels)
        losses["loss"] = loss_weights(ce, losses["supcon"])
    return losses


def training_step(model, loss_weights, batch, config: Config, device, amp, supcon: SupConLoss,
                  dist: Optional[DistContext] = None) -> dict:
    """Forward one batch (see ``batch_views``) and return the losses (not yet backpropagated)."""
    x, image_labels = batch_views(batch, config, device)
    return views_losses(model, loss_weights, x, image_labels, device, amp, supcon, dist)


def train_one_epoch(job: TrainJob, model, loader, optimizer, scheduler, scaler, epoch: int,
                    run: RunDirectory, dist: DistContext, global_step: int):
    """One pass over ``loader``; returns (mean losses, global step after the epoch).

    The losses are summed on the device and read (one host synchronisation, and on every
    rank one all-reduce of the finite flag) every ``log_interval`` steps and at the end of
    the epoch, not at every step. A non-finite loss therefore stops training at the next
    such check, before anything is saved: the weights in memory are dropped, the last
    checkpoint and model.pth are those of the last good epoch.
    """
    config, device = job.config, job.device
    amp, supcon = amp_dtype(config.amp, device), SupConLoss(config.temperature, config.temperature)
    model.train()
    loss_weights = dist.unwrap(model).loss_weights
    totals, count, finite = {}, 0, torch.ones((), dtype=torch.bool, device=device)
    checked_step = global_step
    bar = tqdm(loader, desc=f"epoch {epoch}", disable=not dist.is_main, leave=False, dynamic_ncols=True)
    for batch in bar:
        losses = training_step(model, loss_weights, batch, config, device, amp, supcon, dist)
        finite &= torch.isfinite(losses["loss"].detach())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses["loss"]).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        global_step += 1
        for name, value in losses.items():   # float64 sums: the same as adding Python floats
            totals[name] = totals.get(name, 0.0) + value.detach().double()
        count += 1
        if global_step % config.log_interval == 0:
            _check_finite(finite, dist, epoch, checked_step, global_step, run)
            checked_step = global_step
            bar.set_postfix(loss=f"{losses['loss'].item():.4f}")
            if dist.is_main:
                run.scalars(global_step, _step_scalars(losses, optimizer, dist.unwrap(model)))
    if count == 0:
        raise ValueError(f"epoch {epoch} had no full batch: {len(loader.dataset)} items < "
                         f"batch_size {config.batch_size}; lower batch_size")
    _check_finite(finite, dist, epoch, checked_step, global_step, run)
    return {name: total.item() / count for name, total in totals.items()}, global_step


def _check_finite(finite: torch.Tensor, dist: DistContext, epoch: int, first: int, last: int,
                  run: RunDirectory) -> None:
    """Raise ``NonFiniteLossError`` on every rank when any rank saw a non-finite loss in
    steps ``first + 1 .. last``."""
    if not dist.all_finite(finite):
        raise NonFiniteLossError(
            f"non-finite loss at epoch {epoch}, between steps {first + 1} and {last} (every rank "
            f"stops); the last good checkpoint {run.file('checkpoint.pth')} and model.pth were kept. "
            f"Lower learning_rate or use amp=off/bf16, then resume with --resume")


def recalibrate_on_training_batches(job: TrainJob, backbone, train_set, epoch: int, loader=None) -> int:
    """Precise BatchNorm before validation: recompute the running statistics of ``backbone``
    over the first ``bn_recalibrate_batches`` batches of epoch ``epoch``'s training order
    (the single-process order and full global batches on every rank, without collectives, so
    all ranks get the same statistics; deterministic, so a resumed run gets them too).
    ``loader``: the single-process training loader (persistent workers) to draw them from
    instead of starting a new one; under DDP it is sharded, so a full loader is made.
    Returns the number of batches used (0 when the setting is 0)."""
    config, device = job.config, job.device
    wanted = config.bn_recalibrate_batches
    if wanted <= 0:
        return 0
    if loader is None:
        loader = builders.train_loader(train_set, config, epoch, device)
    else:
        builders.set_loader_epoch(loader, epoch)
    batches = itertools.islice(loader, wanted)
    with autocast(device, amp_dtype(config.amp, device)):
        return recalibrate_batchnorm(backbone, (batch_views(batch, config, device)[0] for batch in batches))


def _step_scalars(losses: dict, optimizer, model) -> dict:
    values = {f"train/{name}": value.item() for name, value in losses.items()}
    values["train/lr"] = optimizer.param_groups[0]["lr"]
    if model.loss_weights is not None:
        for i, name in enumerate(("ce", "supcon")):
            values[f"loss_weights/s_{name}"] = model.loss_weights.params[i].item()
    return values


def selection_value(metrics: dict, metric: str) -> float:
    return metrics["acc"] if metric == "acc" else metrics["f1"]
