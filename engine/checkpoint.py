"""Checkpoints, written atomically and read with ``weights_only=True`` (STYLE rule 9).

Two tiers: the versioned resume checkpoint (``checkpoint.pth``) and the best
weights as a plain state_dict in the released DNA-Det format (``model.pth``)
with a ``model.json`` sidecar naming method, classes and width.
"""
import json
import os

import torch

from data.atomic import atomic_file, atomic_write
from models.loading import CHECKPOINT_FORMAT

CHECKPOINT_VERSION = 1


def atomic_save(obj, path: str) -> None:
    """``torch.save`` through a temporary file and a rename: never a half-written file."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_checkpoint(path: str, **state) -> None:
    """Write the resume checkpoint: model, optimizer, scheduler, epoch, best metric, config.

    No random-generator state: every random draw of an epoch is seeded from
    (seed, epoch) (model dropout, sampler order, dataset crops), so the epoch number
    alone restores it.
    """
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION}
    payload.update(state)
    atomic_save(payload, path)


def load_checkpoint(path: str) -> dict:
    """Read a resume checkpoint safely; a wrong format or version is a clear error."""
    if not os.path.isfile(path):
        raise ValueError(f"no checkpoint to resume from at {path!r}; start without --resume")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"cannot read checkpoint {path!r}: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path!r} is not a DNA-Det resume checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path!r} has checkpoint version {payload.get('version')}, "
                         f"this code reads version {CHECKPOINT_VERSION}")
    return payload


def save_released_weights(backbone: torch.nn.Module, path: str, info: dict) -> None:
    """Best/snapshot weights: the plain backbone state_dict (released format) + sidecar.

    Raises ValueError, writing nothing, when a weight or statistic is NaN or infinite: a
    diverged network is never saved as a model.
    """
    state = {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"not saving {path}: {len(bad)} tensor(s) hold NaN or infinite values "
                         f"(e.g. {bad[0]}); training diverged. Lower learning_rate or use amp=off, "
                         f"then resume from the last checkpoint with --resume")
    atomic_save(state, path)
    write_sidecar(path, info)


def write_sidecar(path: str, info: dict) -> None:
    """Write ``model.json`` next to ``model.pth`` atomically."""
    with atomic_file(os.path.splitext(path)[0] + ".json") as handle:
        json.dump(info, handle, indent=2)
