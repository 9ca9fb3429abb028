"""Precise BatchNorm statistics (Wu and Johnson 2021, "Rethinking 'Batch' in BatchNorm").

During training a BatchNorm layer keeps an exponential moving average of batch statistics;
when the weights still move fast (short CPU budgets, a high learning rate) that average lags
them, and eval mode then normalises with statistics of an older network. Recomputing the
statistics under the current weights, as a plain average over a number of training batches,
removes that lag. Used by the trainer before each validation (``bn_recalibrate_batches``),
by the toy zoo's generators and by the fingerprint study.
"""
from typing import Iterable

import torch


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, batches: Iterable) -> int:
    """Set every BatchNorm's running mean and variance to their average over ``batches``.

    Args:
        model: any module; each batch is passed to it as ``model(batch)``.
        batches: inputs (typically training batches) to average the statistics over.
    Returns the number of batches used. The model's momenta and train/eval mode are restored;
    a model without BatchNorm is left untouched. An empty ``batches`` is an error (the
    statistics would be reset to the identity).
    """
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
