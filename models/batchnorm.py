"""Precise BatchNorm statistics (Wu and Johnson 2021, "Rethinking 'Batch' in BatchNorm").

During training a BatchNorm layer keeps an exponential moving average of batch statistics;
when the weights still move fast (short CPU budgets, a high learning rate) that average lags
them, and eval mode then normalises with statistics of an older network. Recomputing the
statistics under the current weights, as a plain average over a number of training batches,
removes that lag. Used by the trainer before each validation (``bn_recalibrate_batches``),
by the toy zoo's generators and by the fingerprint study.

Under DistributedDataParallel on CUDA the layers are SyncBatchNorm, whose train-mode forward
is a collective; the recalibration swaps them for local layers that share their parameters
and buffers, so each process can recalibrate on its own (every rank on the same batches gets
the same statistics) without waiting for the others.
"""
import contextlib
from typing import Iterable

import torch


class _LocalBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """A BatchNorm of any input rank with no cross-process synchronisation."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")


@contextlib.contextmanager
def _without_sync(model: torch.nn.Module):
    """Replace every SyncBatchNorm of ``model`` by a ``_LocalBatchNorm`` holding the very same
    parameter and buffer tensors (so updates land in the original layer); restore on exit."""
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.SyncBatchNorm):
                local = _LocalBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                        child.track_running_stats)
                for key in ("weight", "bias"):
                    setattr(local, key, getattr(child, key))
                for key in ("running_mean", "running_var", "num_batches_tracked"):
                    setattr(local, key, getattr(child, key))
                setattr(parent, name, local)
                swapped.append((parent, name, child))
    try:
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, batches: Iterable) -> int:
    """Set every BatchNorm's running mean and variance to their average over ``batches``.

    Args:
        model: any module; each batch is passed to it as ``model(batch)``.
        batches: inputs (typically training batches) to average the statistics over.
    Returns the number of batches used. The model's momenta and train/eval mode are restored;
    a model without BatchNorm is left untouched. An empty ``batches`` is an error (the
    statistics would be reset to the identity). SyncBatchNorm layers are recalibrated locally
    (no collective), see the module docstring.
    """
    with _without_sync(model):
        return _recalibrate(model, batches)


def _recalibrate(model: torch.nn.Module, batches: Iterable) -> int:
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    was_training, momenta = model.training, [norm.momentum for norm in norms]
    saved = [(norm.running_mean.clone(), norm.running_var.clone(), norm.num_batches_tracked.clone())
             for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None                      # cumulative average over the batches
    model.train()
    count = 0
    try:
        for batch in batches:
            model(batch)
            count += 1
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)
    if count == 0:
        for norm, (mean, var, tracked) in zip(norms, saved):
            norm.running_mean.copy_(mean)
            norm.running_var.copy_(var)
            norm.num_batches_tracked.copy_(tracked)
        raise ValueError("recalibrate_batchnorm got no batch: the running statistics were left as they were")
    return count
