"""``run_training``: build everything for a TrainJob, then epochs until done or stopped."""
import json
import math
import os
import time

import torch

from data.atomic import atomic_file
from configs import config_to_dict, generic_class_names
from configs.base import Config
from data.preprocess import final_size
from data.transforms import pretrain_transforms, transform_families
from engine import builders
from engine.checkpoint import (load_backbone_for_finetune, load_checkpoint, save_checkpoint,
                               save_released_weights)
from engine.device import amp_dtype, resolve_amp
from engine.distributed import DistContext
from engine.evaluate import eval_loader, evaluate
from engine.metrics import transformation_metrics
from engine.rundir import RunDirectory
from engine.trainer import TrainJob, recalibrate_on_training_batches, selection_value, train_one_epoch


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


def _start_state(job: TrainJob, model, optimizer, scheduler, scaler, run: RunDirectory) -> dict:
    """Fresh state, or the one saved in checkpoint.pth when resuming (same config required)."""
    state = {"epoch": 0, "best_metric": -math.inf, "best_epoch": 0, "stale_epochs": 0, "global_step": 0}
    checkpoint_path = run.file("checkpoint.pth")
    if not job.resume:
        if os.path.exists(checkpoint_path):
            raise ValueError(f"{run.path} already holds a run (checkpoint.pth); pass --resume to "
                             f"continue it or choose another --run_id")
        if job.pretrain_model_path:
            skipped = load_backbone_for_finetune(model.backbone, job.pretrain_model_path)
            run.log(f"initialised from stage-1 weights {job.pretrain_model_path}; skipped {skipped}")
        return state
    payload = load_checkpoint(checkpoint_path)
    check_resume_config({"config_name": payload["config_name"], **payload["config"]},
                        {"config_name": job.config_name, **config_to_dict(job.config)}, checkpoint_path)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    scaler.load_state_dict(payload["scaler"])
    for key in state:
        state[key] = payload[key]
    run.log(f"resumed from {checkpoint_path} after epoch {state['epoch']} "
            f"(best {job.config.metric} {state['best_metric']:.4f} at epoch {state['best_epoch']})")
    _truncate_metrics(run, state["epoch"])
    return state


def _truncate_metrics(run: RunDirectory, epoch: int) -> None:
    """Drop metric lines of epochs after the checkpoint (written before a crash)."""
    path = run.file("metrics.jsonl")
    if not run.enabled or not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip() and json.loads(line)["epoch"] <= epoch]
    with atomic_file(path) as handle:
        handle.writelines(lines)


def run_training(job: TrainJob) -> dict:
    """Train until max_epochs or early stopping; returns the best epoch and metric."""
    dist = DistContext.from_env(job.device)
    job.device = dist.device(job.device)
    config = job.config
    run = RunDirectory(job.run_dir, enabled=dist.is_main)
    try:
        return _train(job, config, run, dist)
    finally:
        run.close()
        dist.close()


def _train(job, config, run, dist) -> dict:
    torch.manual_seed(config.seed)
    transforms = pretrain_transforms() if job.stage == "pretrain" else None
    class_names = _class_names(job, transforms)
    train_items, val_items = _prepare_lists(job, run, dist)
    train_set = builders.build_train_dataset(config, train_items, job.stage, transforms,
                                             augment=builders.build_augment(config))
    val_set = builders.build_val_dataset(config, val_items, job.stage, transforms)
    cache_note = builders.preload_images(train_set, config)
    model = builders.TrainModel(config).to(job.device)
    builders.prepare_model_for_device(model, config, job.device, compile_now=False)
    precision = resolve_amp(config.amp, job.device)       # logged and recorded in config.json
    optimizer, scheduler = builders.build_optimizer(model, config)
    scaler = torch.amp.GradScaler(job.device.type,
                                  enabled=amp_dtype(config.amp, job.device) == torch.float16)
    state = _start_state(job, model, optimizer, scheduler, scaler, run)
    model = dist.wrap(model, job.device)
    compile_note = builders.compile_network(DistContext.unwrap(model), config, job.device)
    for note in (cache_note, compile_note, precision.describe()):
        if note:
            run.log(note)
    run.write_json("config.json", {"config_name": job.config_name, "stage": job.stage,
                                   "class_names": class_names, **config_to_dict(config),
                                   "amp_resolved": precision.name, "amp_reason": precision.reason})
    if state["epoch"] == 0:
        run.log(f"training {job.stage} stage on {job.device}: {len(train_items)} train images, "
                f"{len(val_items)} val images, {len(train_set)} items/epoch, run dir {run.path}")
    info = _weights_info(job, class_names)
    val_load = eval_loader(val_set, config.val_batch_size, config.num_workers, job.device, persistent=True)
    image_size = final_size(config.resize_size, config.second_resize_size)
    loader = None
    for epoch in range(state["epoch"] + 1, config.max_epochs + 1):
        if state["stale_epochs"] >= config.early_stop_bar:
            break
        started = time.time()
        torch.manual_seed(config.seed * 100_003 + epoch)   # dropout: same whether resumed or not
        if loader is None:                       # workers started once, kept across epochs
            loader = builders.train_loader(train_set, config, epoch, job.device, dist, persistent=True)
        builders.set_loader_epoch(loader, epoch)
        losses, state["global_step"] = train_one_epoch(job, model, loader, optimizer, scheduler,
                                                       scaler, epoch, run, dist, state["global_step"])
        # every rank recalibrates on the same batches (no collective), so all hold the same
        # BatchNorm statistics and none waits in a SyncBatchNorm for rank 0's validation
        recalibrated = recalibrate_on_training_batches(job, DistContext.unwrap(model).backbone, train_set,
                                                       epoch, loader=loader if dist.world_size == 1 else None)
        failed = False
        if dist.is_main:
            try:
                _end_epoch(job, model, (recalibrated, val_load), image_size, losses, epoch, state, run,
                           info, (optimizer, scheduler, scaler), started)
            except BaseException:
                failed = True          # tell the waiting ranks before raising, so none hangs
                dist.follow_main(state["stale_epochs"], job.device, failed=True)
                raise
        # only rank 0 validates: every rank waits for it and follows its early-stopping count
        state["stale_epochs"] = dist.follow_main(state["stale_epochs"], job.device, failed=failed)
    if dist.is_main:
        run.log(f"done: best {config.metric} {state['best_metric']:.4f} at epoch "
                f"{state['best_epoch']}; weights {run.file('model.pth')}")
    return {"best_metric": state["best_metric"], "best_epoch": state["best_epoch"],
            "run_dir": run.path, "epochs": state["epoch"], "is_main": dist.is_main}


def _validate(job, backbone, val_load, image_size, epoch) -> dict:
    """``evaluate`` on the validation list; stage 1 adds cross-entropy, top-5 and family accuracy."""
    config, pretrain = job.config, job.stage == "pretrain"
    metrics = evaluate(backbone, val_load, job.device, config.class_num, image_size,
                       amp=amp_dtype(config.amp, job.device), progress=True, desc=f"val {epoch}",
                       keep_outputs=pretrain)
    if pretrain:
        outputs = metrics.pop("outputs")
        metrics["transformations"] = transformation_metrics(outputs["labels"], outputs["probs"],
                                                            transform_families())
    return metrics


def _epoch_record(epoch: int, losses: dict, lr: float, metrics: dict, state: dict, seconds: float) -> dict:
    """The metrics.jsonl line of one epoch."""
    record = {"epoch": epoch, **{f"train_{k}": round(v, 6) for k, v in losses.items()}, "lr": lr,
              "val_acc": metrics["acc"], "val_f1": metrics["f1"], "val_recall": metrics["recall"],
              "val_per_class_recall": metrics["per_class_recall"], "val_skipped": metrics["n_skipped"]}
    if "transformations" in metrics:
        found = metrics["transformations"]
        record.update({f"val_{key}": found[key] for key in ("ce", "top1", "top5", "family_acc")})
        record["val_per_family"] = found["per_family"]
    return {**record, "best_metric": state["best_metric"], "best_epoch": state["best_epoch"],
            "seconds": round(seconds, 2)}


def _end_epoch(job, model, data, image_size, losses, epoch, state, run, info, optimisation,
               started) -> None:
    """Validate, keep the best weights, snapshot, log, and write the resume checkpoint (rank 0).

    ``data``: (BatchNorm recalibration batches used this epoch, validation loader);
    ``optimisation``: (optimizer, scheduler, GradScaler), all saved in the checkpoint.
    """
    config = job.config
    optimizer, scheduler, scaler = optimisation
    recalibrated, val_load = data
    backbone = DistContext.unwrap(model).backbone
    metrics = _validate(job, backbone, val_load, image_size, epoch)
    value = selection_value(metrics, config.metric)
    state["epoch"] = epoch
    if value > state["best_metric"]:
        state.update(best_metric=value, best_epoch=epoch, stale_epochs=0)
        save_released_weights(backbone, run.file("model.pth"), {**info, "epoch": epoch})
    else:
        state["stale_epochs"] += 1
    if epoch % config.save_interval == 0:
        save_released_weights(backbone, run.file(f"snapshot_epoch{epoch}.pth"), {**info, "epoch": epoch})
    record = _epoch_record(epoch, losses, optimizer.param_groups[0]["lr"], metrics, state,
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
            f"f1 {metrics['f1']:.4f}{extra} (best {config.metric} {state['best_metric']:.4f} @ "
            f"{state['best_epoch']}) {record['seconds']:.1f}s")
    save_checkpoint(run.file("checkpoint.pth"), model=DistContext.unwrap(model).state_dict(),
                    optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict(), scaler=scaler.state_dict(),
                    config=config_to_dict(config), config_name=job.config_name,
                    class_names=info["class_names"], **state)
