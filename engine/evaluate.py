"""One ``evaluate()`` for model selection during training and for every eval script.

Whole images, one forward pass each, argmax of the logits (no patch voting).
"""
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from data.batched import resize_normalise, to_device
from data.datasets import collate_squares
from engine.device import autocast
from engine.metrics import compute_metrics


def ready_batches(loader: DataLoader, device: torch.device, image_size: int, skipped: list,
                  progress: bool = False, desc: str = "eval"):
    """Yield (images [n, 3, S, S] normalised on ``device``, labels [n], indices [n]) of readable items.

    ``loader`` yields (image, label, index, ok) batches of ``WholeImageDataset``-like
    datasets; uint8 batches (the fast path; a list of squares when their sides differ) are
    resized to ``image_size`` on the device;
    the indices of unreadable items are appended to ``skipped``.
    """
    for images, labels, indices, ok in tqdm(loader, desc=desc, disable=not progress,
                                            leave=False, dynamic_ncols=True):
        skipped.extend(indices[~ok].tolist())
        if not ok.any():
            continue
        if isinstance(images, list):                      # fast path, squares of several sides
            images = [image for image, good in zip(images, ok.tolist()) if good]
        else:
            images = images[ok]
        images = to_device(images, device)
        if isinstance(images, list) or images.dtype == torch.uint8:
            images = resize_normalise(images, image_size)
        yield images, labels[ok], indices[ok]


@torch.no_grad()
def forward_pass(model: torch.nn.Module, loader: DataLoader, device: torch.device, image_size: int,
                 amp=None, features: bool = False, progress: bool = False, desc: str = "eval") -> dict:
    """The one forward pass of a classifier over a loader (items: image, label, index, ok).

    Batches of uint8 images are resized to ``image_size`` on the device first (the fast
    path); float batches are used as they are. Returns numpy arrays for the readable
    images: ``labels`` [n], ``indices`` [n] (positions in the dataset), ``logits`` [n, K]
    (float32), ``probs`` [n, K] (softmax), ``preds`` [n] (argmax), with ``features`` also
    ``features`` [n, D] (the pooled feature that feeds the classifier, float32); and
    ``skipped``, the indices of unreadable items. An all-unreadable loader gives empty arrays.
    """
    model.eval()
    keys = ("labels", "indices", "logits", "probs") + (("features",) if features else ())
    out = {key: [] for key in keys}
    skipped: list = []
    for images, labels, indices in ready_batches(loader, device, image_size, skipped, progress=progress,
                                                 desc=desc):
        with autocast(device, amp):
            if features:
                pooled = model.forward_features(images)[0]
                logits = model.classify(pooled)
                out["features"].append(pooled.float().cpu())
            else:
                logits = model(images)[0]
        logits = logits.float()
        out["logits"].append(logits.cpu())
        out["probs"].append(torch.softmax(logits, dim=1).cpu())
        out["labels"].append(labels)
        out["indices"].append(indices)
    if not out["labels"]:
        arrays = {key: np.zeros(0, int) if key in ("labels", "indices") else np.zeros((0, 0), np.float32)
                  for key in keys}
        return {**arrays, "preds": np.zeros(0, int), "skipped": skipped}
    arrays = {key: torch.cat(values).numpy() for key, values in out.items()}
    return {**arrays, "preds": arrays["probs"].argmax(axis=1), "skipped": skipped}


def evaluate(model: torch.nn.Module, loader: DataLoader, device: torch.device, class_num: int,
             image_size: int, amp=None, progress: bool = False, keep_outputs: bool = False,
             desc: str = "eval") -> dict:
    """Metrics (``engine.metrics.compute_metrics``) plus ``n_skipped`` unreadable images.

    With ``keep_outputs`` the dict also holds ``outputs``: the arrays of ``forward_pass``.
    """
    outputs = forward_pass(model, loader, device, image_size, amp=amp, progress=progress, desc=desc)
    if outputs["labels"].size == 0:
        raise ValueError(f"{desc}: no readable image among {len(outputs['skipped'])} entries")
    metrics = compute_metrics(outputs["labels"], outputs["preds"], class_num)
    metrics["n_skipped"] = len(outputs["skipped"])
    if keep_outputs:
        metrics["outputs"] = outputs
    return metrics


def eval_loader(dataset, batch_size: int, num_workers: int, device: Optional[torch.device] = None,
                persistent: bool = False) -> DataLoader:
    """In-order loader for evaluation (pinned memory on CUDA); ``persistent``: workers started
    once and kept for every pass (training's validation after each epoch)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      pin_memory=device is not None and device.type == "cuda",
                      persistent_workers=persistent and num_workers > 0, collate_fn=collate_squares)
