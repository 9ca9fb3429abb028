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
def predict(model: torch.nn.Module, loader: DataLoader, device: torch.device, image_size: int,
            amp=None, progress: bool = False, desc: str = "eval") -> dict:
    """Run the classifier over ``loader`` (items: image, label, index, ok).

    Batches of uint8 images are resized to ``image_size`` on the device first
    (the fast path); float batches are used as they are. Returns numpy arrays
    ``labels``, ``preds``, ``probs`` [n, K], ``indices`` for the readable images,
    and ``skipped`` (the indices of unreadable ones).
    """
    model.eval()
    labels, preds, probs, indices, skipped = [], [], [], [], []
    for images, batch_labels, batch_indices in ready_batches(loader, device, image_size, skipped,
                                                             progress=progress, desc=desc):
        with autocast(device, amp):
            logits = model(images)[0]
        batch_probs = torch.softmax(logits.float(), dim=1)
        probs.append(batch_probs.cpu())
        preds.append(batch_probs.argmax(dim=1).cpu())
        labels.append(batch_labels)
        indices.append(batch_indices)
    if not probs:
        return {"labels": np.zeros(0, int), "preds": np.zeros(0, int), "probs": np.zeros((0, 0)),
                "indices": np.zeros(0, int), "skipped": skipped}
    return {"labels": torch.cat(labels).numpy(), "preds": torch.cat(preds).numpy(),
            "probs": torch.cat(probs).numpy(), "indices": torch.cat(indices).numpy(),
            "skipped": skipped}


def evaluate(model: torch.nn.Module, loader: DataLoader, device: torch.device, class_num: int,
             image_size: int, amp=None, progress: bool = False, keep_outputs: bool = False,
             desc: str = "eval") -> dict:
    """Metrics (``engine.metrics.compute_metrics``) plus ``n_skipped`` unreadable images.

    With ``keep_outputs`` the dict also holds ``outputs``: the arrays of ``predict``.
    """
    outputs = predict(model, loader, device, image_size, amp=amp, progress=progress, desc=desc)
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
