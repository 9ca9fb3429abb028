"""The DNA-Det training loop, both stages (SPEC sections 3-6), in the order it runs.

Stage ``pretrain`` learns which of 170 transformations was applied; stage ``main`` learns the
architecture label. Both minimise patchwise cross-entropy plus the supervised contrastive loss
over the crops of each image, combined by automatic weighting, with Adam and a per-iteration
StepLR. Reading order:

1. ``run_training``: the run directory and the (optional) torchrun process group.
2. ``train``: lists, datasets, model and ``TrainState``, then the epochs.
3. ``train_one_epoch``: ``train_step`` over the epoch's batches.
4. ``train_step``: ``batch_views`` (crops -> tensors) -> ``views_losses`` (forward, CE +
   SupCon, weighted) -> backward -> optimiser and scheduler step.
5. ``end_epoch``: precise BatchNorm, ``validate``, best weights, snapshot, log, checkpoint.
6. Starting and resuming: ``start_state`` and its helpers.

Training ends with the weights (``model.pth``); fitting the open-set statistics is its own
step (``main.py`` runs it after stage 2, ``eval/fit_open_set.py`` for other weights).
"""
import itertools
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from tqdm import tqdm

from configs import config_to_dict, generic_class_names
from configs.base import Config
from data.atomic import atomic_file
from data.batched import resize_crop_normalise, to_device
from data.preprocess import final_size
from data.transforms import pretrain_transforms, transform_families
from engine import builders
from engine.checkpoint import (load_backbone_for_finetune, load_checkpoint, save_checkpoint,
                               save_released_weights)
from engine.device import amp_dtype, autocast, resolve_amp
from engine.distributed import DistContext
from engine.evaluate import eval_loader, evaluate
from engine.metrics import transformation_metrics
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


@dataclass
class TrainState:
    """What a training step changes and what an epoch counts; the checkpoint saves all of it.

    ``model`` is the ``TrainModel`` (DDP-wrapped under torchrun; ``net`` unwraps it), with the
    classifier at ``net.backbone`` and the automatic loss weights at ``net.loss_weights``.
    """
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    supcon: SupConLoss
    amp: Optional[torch.dtype]                # autocast dtype, None = fp32
    epoch: int = 0                            # last finished epoch
    global_step: int = 0
    best_metric: float = -math.inf
    best_epoch: int = 0
    stale_epochs: int = 0                     # epochs since the best (early stopping)
    COUNTERS = ("epoch", "best_metric", "best_epoch", "stale_epochs", "global_step")

    @property
    def net(self) -> torch.nn.Module:
        return DistContext.unwrap(self.model)

    def counters(self) -> dict:
        return {key: getattr(self, key) for key in self.COUNTERS}


# ---------------------------------------------------------------------------- 1. the run

def run_training(job: TrainJob) -> dict:
    """Train until max_epochs or early stopping; returns the best epoch and metric."""
    dist = DistContext.from_env(job.device)
    job.device = dist.device(job.device)
    run = RunDirectory(job.run_dir, enabled=dist.is_main)
    try:
        return train(job, run, dist)
    finally:
        run.close()
        dist.close()


# ---------------------------------------------------------------------------- 2. set up, then epochs

def train(job: TrainJob, run: RunDirectory, dist: DistContext) -> dict:
    config, device = job.config, job.device
    torch.manual_seed(config.seed)
    transforms = pretrain_transforms() if job.stage == "pretrain" else None
    class_names = _class_names(job, transforms)
    train_items, val_items = _prepare_lists(job, run, dist)
    train_set = builders.build_train_dataset(config, train_items, job.stage, transforms,
                                             augment=builders.build_augment(config))
    val_set = builders.build_val_dataset(config, val_items, job.stage, transforms)
    cache_note = builders.preload_images(train_set, config)
    model = builders.build_train_model(config).to(device)
    builders.prepare_model_for_device(model, config, device, compile_now=False)
    precision = resolve_amp(config.amp, device)       # logged and recorded in config.json
    optimizer, scheduler = builders.build_optimizer(model, config)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype(config.amp, device) == torch.float16)
    state = TrainState(model, optimizer, scheduler, scaler, SupConLoss(config.temperature, config.temperature),
                       amp_dtype(config.amp, device))
    start_state(job, state, run)
    state.model = dist.wrap(model, device)
    compile_note = builders.compile_network(state.net, config, device)
    for note in (cache_note, compile_note, precision.describe()):
        if note:
            run.log(note)
    run.write_json("config.json", {"config_name": job.config_name, "stage": job.stage,
                                   "class_names": class_names, **config_to_dict(config),
                                   "amp_resolved": precision.name, "amp_reason": precision.reason})
    if state.epoch == 0:
        run.log(f"training {job.stage} stage on {device}: {len(train_items)} train images, "
                f"{len(val_items)} val images, {len(train_set)} items/epoch, run dir {run.path}")
    info = _weights_info(job, class_names)
    val_load = eval_loader(val_set, config.val_batch_size, config.num_workers, device, persistent=True)
    loader = None
    for epoch in range(state.epoch + 1, config.max_epochs + 1):
        if state.stale_epochs >= config.early_stop_bar:
            break
        started = time.time()
        torch.manual_seed(config.seed * 100_003 + epoch)   # dropout: same whether resumed or not
        if loader is None:                       # workers started once, kept across epochs
            loader = builders.train_loader(train_set, config, epoch, device, dist, persistent=True)
        builders.set_loader_epoch(loader, epoch)
        losses = train_one_epoch(job, state, loader, epoch, run, dist)
        # every rank recalibrates on the same batches (no collective), so all hold the same
        # BatchNorm statistics and none waits in a SyncBatchNorm for rank 0's validation
        recalibrated = recalibrate_on_training_batches(job, state.net.backbone, train_set, epoch,
                                                       loader=loader if dist.world_size == 1 else None)
        failed = False
        if dist.is_main:
            try:
                end_epoch(job, state, val_load, epoch, losses, recalibrated, run, info, started)
            except BaseException:
                failed = True          # tell the waiting ranks before raising, so none hangs
                dist.follow_main(state.stale_epochs, device, failed=True)
                raise
        # only rank 0 validates: every rank waits for it and follows its early-stopping count
        state.stale_epochs = dist.follow_main(state.stale_epochs, device, failed=failed)
    if dist.is_main:
        run.log(f"done: best {config.metric} {state.best_metric:.4f} at epoch "
                f"{state.best_epoch}; weights {run.file('model.pth')}")
    return {"best_metric": state.best_metric, "best_epoch": state.best_epoch,
            "run_dir": run.path, "epochs": state.epoch, "is_main": dist.is_main}


# ---------------------------------------------------------------------------- 3. one epoch

def train_one_epoch(job: TrainJob, state: TrainState, loader, epoch: int, run: RunDirectory,
                    dist: DistContext) -> dict:
    """One pass over ``loader``; returns the mean losses.

    The losses are summed on the device and read (one host synchronisation, and on every
    rank one all-reduce of the finite flag) every ``log_interval`` steps and at the end of
    the epoch, not at every step. A non-finite loss therefore stops training at the next
    such check, before anything is saved: the weights in memory are dropped, the last
    checkpoint and model.pth are those of the last good epoch.
    """
    config = job.config
    state.model.train()
    totals, count = {}, 0
    finite = torch.ones((), dtype=torch.bool, device=job.device)
    checked_step = state.global_step
    bar = tqdm(loader, desc=f"epoch {epoch}", disable=not dist.is_main, leave=False, dynamic_ncols=True)
    for batch in bar:
        losses = train_step(job, state, batch, dist)
        finite &= torch.isfinite(losses["loss"].detach())
        for name, value in losses.items():   # float64 sums: the same as adding Python floats
            totals[name] = totals.get(name, 0.0) + value.detach().double()
        count += 1
        if state.global_step % config.log_interval == 0:
            _check_finite(finite, dist, epoch, checked_step, state.global_step, run)
            checked_step = state.global_step
            bar.set_postfix(loss=f"{losses['loss'].item():.4f}")
            if dist.is_main:
                run.scalars(state.global_step, _step_scalars(losses, state))
    if count == 0:
        raise ValueError(f"epoch {epoch} had no full batch: {len(loader.dataset)} items < "
                         f"batch_size {config.batch_size}; lower batch_size")
    _check_finite(finite, dist, epoch, checked_step, state.global_step, run)
    return {name: total.item() / count for name, total in totals.items()}


def _check_finite(finite: torch.Tensor, dist: DistContext, epoch: int, first: int, last: int,
                  run: RunDirectory) -> None:
    """Raise ``NonFiniteLossError`` on every rank when any rank saw a non-finite loss in
    steps ``first + 1 .. last``."""
    if not dist.all_finite(finite):
        raise NonFiniteLossError(
            f"non-finite loss at epoch {epoch}, between steps {first + 1} and {last} (every rank "
            f"stops); the last good checkpoint {run.file('checkpoint.pth')} and model.pth were kept. "
            f"Lower learning_rate or use amp=off/bf16, then resume with --resume")


def _step_scalars(losses: dict, state: TrainState) -> dict:
    values = {f"train/{name}": value.item() for name, value in losses.items()}
    values["train/lr"] = state.optimizer.param_groups[0]["lr"]
    if state.net.loss_weights is not None:
        for i, name in enumerate(("ce", "supcon")):
            values[f"loss_weights/s_{name}"] = state.net.loss_weights.params[i].item()
    return values


# ---------------------------------------------------------------------------- 4. one step

def train_step(job: TrainJob, state: TrainState, batch, dist: Optional[DistContext] = None) -> dict:
    """Forward one batch, backpropagate, step the optimiser and the scheduler; returns the
    losses (tensors, not yet read on the host)."""
    losses = step_losses(state.model, batch, job.config, job.device, state.amp, state.supcon, dist)
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(losses["loss"]).backward()
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.scheduler.step()
    state.global_step += 1
    return losses


def step_losses(model, batch, config: Config, device, amp, supcon: SupConLoss,
                dist: Optional[DistContext] = None) -> dict:
    """The forward half of a step: ``batch_views`` then ``views_losses`` (no backward)."""
    x, image_labels = batch_views(batch, config, device)
    return views_losses(model, x, image_labels, device, amp, supcon, dist)


def batch_views(batch, config: Config, device):
    """The data half of a step: (views [n_images * n_views, 3, m, m] float on ``device``, labels [n_images]).

    batch: images [B, G, n, 3, m, m] float (pil; batched on CPU, made by the loader's
    ``CropCollate``) or [B, G, 3, s, s] uint8 (batched on CUDA; a list of B*G squares when
    their sides differ), offsets [B, G, n, 2], labels [B, G]; G = images per item (K classes
    or 1). Uint8 squares are resized, cropped and normalised here, on ``device``.
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


def views_losses(model, x, image_labels, device, amp, supcon: SupConLoss,
                 dist: Optional[DistContext] = None) -> dict:
    """The model half of a step: x [n_images * n_views, 3, m, m], image_labels [n_images] ->
    {ce, supcon (with the projection head), loss (their automatic weighting, else ce)}."""
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
        losses["loss"] = DistContext.unwrap(model).loss_weights(ce, losses["supcon"])
    return losses


# ---------------------------------------------------------------------------- 5. end of an epoch

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


def validate(job: TrainJob, backbone, val_load, epoch: int) -> dict:
    """``evaluate`` on the validation list; stage 1 adds cross-entropy, top-5 and family accuracy."""
    config, pretrain = job.config, job.stage == "pretrain"
    metrics = evaluate(backbone, val_load, job.device, config.class_num,
                       final_size(config.resize_size, config.second_resize_size),
                       amp=amp_dtype(config.amp, job.device), progress=True, desc=f"val {epoch}",
                       keep_outputs=pretrain)
    if pretrain:
        outputs = metrics.pop("outputs")
        metrics["transformations"] = transformation_metrics(outputs["labels"], outputs["probs"],
                                                            transform_families())
    return metrics


def selection_value(metrics: dict, metric: str) -> float:
    return metrics["acc"] if metric == "acc" else metrics["f1"]


def end_epoch(job: TrainJob, state: TrainState, val_load, epoch: int, losses: dict, recalibrated: int,
              run: RunDirectory, info: dict, started: float) -> None:
    """Validate, keep the best weights, snapshot, log, and write the resume checkpoint (rank 0).

    ``recalibrated``: BatchNorm recalibration batches used this epoch; ``info``: the
    ``model.json`` sidecar of the saved weights.
    """
    config = job.config
    backbone = state.net.backbone
    metrics = validate(job, backbone, val_load, epoch)
    value = selection_value(metrics, config.metric)
    state.epoch = epoch
    if value > state.best_metric:
        state.best_metric, state.best_epoch, state.stale_epochs = value, epoch, 0
        save_released_weights(backbone, run.file("model.pth"), {**info, "epoch": epoch})
    else:
        state.stale_epochs += 1
    if epoch % config.save_interval == 0:
        save_released_weights(backbone, run.file(f"snapshot_epoch{epoch}.pth"), {**info, "epoch": epoch})
    record = _epoch_record(epoch, losses, state.optimizer.param_groups[0]["lr"], metrics, state,
                           time.time() - started)
    if recalibrated:
        record["bn_recalibrated_batches"] = recalibrated
    run.append_metrics(record)
    scalars = {"val/acc": metrics["acc"], "val/f1": metrics["f1"], "val/recall": metrics["recall"]}
    extra = ""
    if "transformations" in metrics:
        found = metrics["transformations"]
        scalars.update({f"val/{key}": found[key] for key in ("ce", "top1", "top5", "family_acc")})
        scalars.update({f"val_family/{name}": values["family_acc"] for name, values in found["per_family"].items()})
        extra = f" ce {found['ce']:.3f} top-5 {found['top5']:.4f} family acc {found['family_acc']:.4f}"
    run.scalars(epoch, scalars)
    run.log(f"epoch {epoch}: loss {losses['loss']:.4f} val acc {metrics['acc']:.4f} "
            f"f1 {metrics['f1']:.4f}{extra} (best {config.metric} {state.best_metric:.4f} @ "
            f"{state.best_epoch}) {record['seconds']:.1f}s")
    save_checkpoint(run.file("checkpoint.pth"), model=state.net.state_dict(),
                    optimizer=state.optimizer.state_dict(), scheduler=state.scheduler.state_dict(),
                    scaler=state.scaler.state_dict(), config=config_to_dict(config),
                    config_name=job.config_name, class_names=info["class_names"], **state.counters())


def _epoch_record(epoch: int, losses: dict, lr: float, metrics: dict, state: TrainState, seconds: float) -> dict:
    """The metrics.jsonl line of one epoch."""
    record = {"epoch": epoch, **{f"train_{k}": round(v, 6) for k, v in losses.items()}, "lr": lr,
              "val_acc": metrics["acc"], "val_f1": metrics["f1"], "val_recall": metrics["recall"],
              "val_per_class_recall": metrics["per_class_recall"], "val_skipped": metrics["n_skipped"]}
    if "transformations" in metrics:
        found = metrics["transformations"]
        record.update({f"val_{key}": found[key] for key in ("ce", "top1", "top5", "family_acc")})
        record["val_per_family"] = found["per_family"]
    return {**record, "best_metric": state.best_metric, "best_epoch": state.best_epoch,
            "seconds": round(seconds, 2)}


# ---------------------------------------------------------------------------- 6. starting and resuming

def _prepare_lists(job: TrainJob, run: RunDirectory, dist: DistContext):
    """Read both lists, drop unreadable files (reported, counted, written to skipped_images.txt).

    Rank 0 alone decodes every image once (threads) and shares its verdict with the other ranks.
    """
    lists = {}
    for split, path in (("train", job.train_list), ("val", job.val_list)):
        items = builders.read_list(path, job.config, job.stage)
        scanned = builders.scan_items(items, threads=max(8, job.config.num_workers)) if dist.is_main else None
        good, bad = dist.share_from_main(scanned)
        for image, reason in bad:
            run.log(f"skipping unreadable {split} image {image}: {reason}")
        if bad and run.enabled:
            with open(run.file("skipped_images.txt"), "a", encoding="utf-8") as handle:
                handle.writelines(f"{split}\t{image}\t{reason}\n" for image, reason in bad)
        run.log(f"{split} list {path}: {len(good)} images, {len(bad)} skipped as unreadable")
        if not good:
            raise ValueError(f"{split} list {path} has no readable image")
        lists[split] = good
    return lists["train"], lists["val"]


def _class_names(job: TrainJob, transforms) -> list:
    if job.stage == "pretrain":
        return [name for name, _ in transforms]
    names = list(job.config.class_names)
    return names if len(names) == job.config.class_num else generic_class_names(job.config.class_num)


def _weights_info(job: TrainJob, class_names: list) -> dict:
    config = job.config
    return {"method": config.method, "class_num": config.class_num, "class_names": class_names,
            "width": config.width, "config_name": job.config_name, "stage": job.stage,
            "crop_size": config.crop_size, "resize_size": config.resize_size,
            "second_resize_size": config.second_resize_size, "input_filter": config.input_filter}


# keys that may differ on --resume: they change how long or where a run goes on, not what
# the epochs already trained computed (extend max_epochs, move to a machine with more cores)
RESUMABLE_CHANGES = ("max_epochs", "early_stop_bar", "num_workers", "image_cache_gb",
                     "val_batch_size", "log_interval", "save_interval", "device")


def check_resume_config(saved: dict, current: dict, path: str) -> None:
    """Refuse to resume a run whose configuration changed (other than ``RESUMABLE_CHANGES``)."""
    defaults = config_to_dict(Config())
    # a key the checkpoint lacks was added to the code later: it ran with that key's default
    saved = {**{key: value for key, value in defaults.items() if key not in saved}, **saved}
    changed = sorted(key for key in set(saved) | set(current)
                     if key not in RESUMABLE_CHANGES and saved.get(key) != current.get(key))
    if changed:
        details = "; ".join(f"{key}: {saved.get(key)!r} in the checkpoint, {current.get(key)!r} now"
                            for key in changed)
        raise ValueError(f"--resume: the configuration differs from the one {path} was trained with "
                         f"({details}). Resume with the same config and --set values, or start a new "
                         f"run (another --run_id) initialised from its weights with --pretrain_model_path; "
                         f"only {', '.join(RESUMABLE_CHANGES)} may change on resume")


def start_state(job: TrainJob, state: TrainState, run: RunDirectory) -> None:
    """A fresh start (from stage-1 weights when given), or the state saved in checkpoint.pth
    when resuming (same config required)."""
    checkpoint_path = run.file("checkpoint.pth")
    if not job.resume:
        if os.path.exists(checkpoint_path):
            raise ValueError(f"{run.path} already holds a run (checkpoint.pth); pass --resume to "
                             f"continue it or choose another --run_id")
        if job.pretrain_model_path:
            skipped = load_backbone_for_finetune(state.net.backbone, job.pretrain_model_path)
            run.log(f"initialised from stage-1 weights {job.pretrain_model_path}; skipped {skipped}")
        return
    payload = load_checkpoint(checkpoint_path)
    check_resume_config({"config_name": payload["config_name"], **payload["config"]},
                        {"config_name": job.config_name, **config_to_dict(job.config)}, checkpoint_path)
    state.net.load_state_dict(payload["model"])
    state.optimizer.load_state_dict(payload["optimizer"])
    state.scheduler.load_state_dict(payload["scheduler"])
    state.scaler.load_state_dict(payload["scaler"])
    for key in TrainState.COUNTERS:
        setattr(state, key, payload[key])
    run.log(f"resumed from {checkpoint_path} after epoch {state.epoch} "
            f"(best {job.config.metric} {state.best_metric:.4f} at epoch {state.best_epoch})")
    _truncate_metrics(run, state.epoch)


def _truncate_metrics(run: RunDirectory, epoch: int) -> None:
    """Drop metric lines of epochs after the checkpoint (written before a crash)."""
    path = run.file("metrics.jsonl")
    if not run.enabled or not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip() and json.loads(line)["epoch"] <= epoch]
    with atomic_file(path) as handle:
        handle.writelines(lines)
